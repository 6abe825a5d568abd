"""Experiment specifications: which networks to train and analyse.

An experiment is the grid ``learning rules x delta values x seeds x complexity levels``; each point is a
:class:`Cell` (one network). A spec is a TOML file, a built-in preset, or CLI flags::

    # study.toml
    name = "rl-vs-sl"
    rules = ["rl", "sl"]
    deltas = [0.05, 0.15]
    seeds = [0, 1, 2]
    levels = [3]
    hidden_size = 250
    target_accuracy = 0.95
    analyses = ["dynamics", "populations"]

    [rl]                      # keyword arguments for agents.train_rl
    max_steps = 3_000_000

    [sl]                      # keyword arguments for agents.train_sl
    max_trials = 2_000_000

    [task]                    # TaskConfig overrides applied to every level
    noise_amplitude = 0.25

RL and SL cells with the same seed and delta start from the same initial weights (paired design): both trainers
build the policy from the run's seed.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

RULES = ("rl", "sl")
ANALYSES = ("dynamics", "populations")


@dataclass(frozen=True)
class Cell:
    """One network of an experiment: a learning rule, an initialisation width, a seed and a task level."""

    rule: str
    delta: float
    seed: int
    level: int

    @property
    def cell_id(self) -> str:
        """A folder-safe identifier, e.g. ``rl_L3_d0.1_s0``."""
        return f"{self.rule}_L{self.level}_d{self.delta:g}_s{self.seed}"

    def pair_id(self) -> str:
        """The identifier shared by the RL and SL cells of a pair."""
        return f"L{self.level}_d{self.delta:g}_s{self.seed}"


@dataclass
class ExperimentSpec:
    """The grid of an experiment and the settings of its trainers and analyses.

    Args:
        name: A label for the report.
        rules: Learning rules, a subset of ``("rl", "sl")``.
        deltas: Initialisation widths (``W_rec, W_in ~ U(-delta, delta)``).
        seeds: Seeds; the RL and SL cells of a seed start from the same weights.
        levels: Task complexity levels (1-4).
        hidden_size: Units of the recurrent core.
        target_accuracy: The stopping criterion of both trainers.
        analyses: Which analyses to run on each trained network (``"dynamics"``, ``"populations"``).
        rl: Extra keyword arguments for :func:`agents.train_rl`.
        sl: Extra keyword arguments for :func:`agents.train_sl`.
        task: :class:`~dm_envs.TaskConfig` overrides applied to every level.
        analysis: Extra keyword arguments for the analyses (e.g. ``{"grid": 11, "n_init": 16}``).
        track_checkpoints: Also measure the attractor landscape on each run's checkpoints (progressive sculpting).
    """

    name: str = "experiment"
    rules: Sequence[str] = RULES
    deltas: Sequence[float] = (0.1,)
    seeds: Sequence[int] = (0,)
    levels: Sequence[int] = (3,)
    hidden_size: int = 250
    target_accuracy: float = 0.95
    analyses: Sequence[str] = ANALYSES
    rl: dict[str, Any] = field(default_factory=dict)
    sl: dict[str, Any] = field(default_factory=dict)
    task: dict[str, Any] = field(default_factory=dict)
    analysis: dict[str, Any] = field(default_factory=dict)
    track_checkpoints: bool = True

    def __post_init__(self) -> None:
        self.rules = tuple(self.rules)
        self.deltas = tuple(float(d) for d in self.deltas)
        self.seeds = tuple(int(s) for s in self.seeds)
        self.levels = tuple(int(k) for k in self.levels)
        self.analyses = tuple(self.analyses)
        for r in self.rules:
            if r not in RULES:
                raise ValueError(f"rules must be a subset of {RULES}, got {r!r}")
        for a in self.analyses:
            if a not in ANALYSES:
                raise ValueError(f"analyses must be a subset of {ANALYSES}, got {a!r}")
        for d in self.deltas:
            if not d > 0:
                raise ValueError(f"deltas must be positive, got {d}")
        for k in self.levels:
            if k not in (1, 2, 3, 4):
                raise ValueError(f"levels must lie in 1..4, got {k}")
        if not (0 < self.target_accuracy <= 1):
            raise ValueError(f"target_accuracy must lie in (0, 1], got {self.target_accuracy}")
        if not (self.rules and self.deltas and self.seeds and self.levels):
            raise ValueError("rules, deltas, seeds and levels must each hold at least one value")

    def cells(self) -> list[Cell]:
        """Every cell of the grid, pairs adjacent (level, delta, seed, then rule)."""
        return [
            Cell(rule, delta, seed, level)
            for level in self.levels
            for delta in self.deltas
            for seed in self.seeds
            for rule in self.rules
        ]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``ExperimentSpec.from_dict`` inverts it)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ExperimentSpec":
        """Build a spec from a dict (e.g. parsed TOML); unknown keys raise ``TypeError`` naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TypeError(f"unknown experiment setting(s) {unknown}; allowed: {sorted(known)}")
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> "ExperimentSpec":
        """Read a TOML (or JSON) spec file."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no experiment spec at {path}")
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        return cls.from_dict(data)


PRESETS: dict[str, dict[str, Any]] = {
    # The README's main job: a small paired ensemble that finishes in minutes on a 2-core machine.
    "quick": dict(
        name="quick",
        rules=["rl", "sl"],
        deltas=[0.05, 0.15],
        seeds=[0, 1],
        levels=[3],
        hidden_size=250,
        analysis={"grid": 11, "n_init": 16, "track_grid": 7, "track_n_init": 8, "population_trials": 500,
                  "n_shuffles": 1000},
    ),
    # The paper-scale paired ensemble (issue 11): the context-dependent task, three widths from narrow to broad
    # (spectral radius of W_rec about 0.46, 1.1 and 1.8), eight paired seeds, 250 units; 48 networks, about an hour on
    # 2 cores. RL's time to criterion has a long tail: each RL run gets at most 8 min of wall time (SL 5 min); a run
    # that misses the criterion is kept, counted and reported, and left out of the comparisons.
    "paper": dict(
        name="paper",
        rules=["rl", "sl"],
        deltas=[0.05, 0.125, 0.2],
        seeds=list(range(8)),
        levels=[3],
        hidden_size=250,
        rl={"max_time": 480.0},
        sl={"max_time": 300.0},
        analysis={"grid": 11, "n_init": 16, "track_grid": 7, "track_n_init": 8, "population_trials": 500,
                  "n_shuffles": 1000},
    ),
    # A larger sweep: 250 units, six widths, ten paired seeds, three complexity levels.
    "full": dict(
        name="full",
        rules=["rl", "sl"],
        deltas=[0.05, 0.075, 0.1, 0.125, 0.15, 0.2],
        seeds=list(range(10)),
        levels=[1, 3, 4],
        hidden_size=250,
    ),
}
"""Built-in experiments (``dmd experiment run --preset quick``)."""


def preset(name: str, **overrides: Any) -> ExperimentSpec:
    """A built-in spec, with settings overridden (e.g. ``seeds=[0]``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown experiment preset {name!r}; allowed: {sorted(PRESETS)}")
    return ExperimentSpec.from_dict({**PRESETS[name], **overrides})


def resolve_spec(path_or_preset: Optional[str], **overrides: Any) -> ExperimentSpec:
    """A spec from a file path or preset name, with non-None overrides applied."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if path_or_preset is None:
        return ExperimentSpec.from_dict(overrides)
    if path_or_preset in PRESETS:
        return preset(path_or_preset, **overrides)
    spec = ExperimentSpec.load(path_or_preset)
    return ExperimentSpec.from_dict({**spec.to_dict(), **overrides}) if overrides else spec
