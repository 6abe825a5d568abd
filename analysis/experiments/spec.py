"""Experiment specifications: which networks to train and analyse.

An experiment is the grid ``learning rules x delta values x seeds x levels``; each point is a
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
import difflib
import functools
import json
import math
import numbers
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

RULES = ("rl", "sl")
ANALYSES = ("dynamics", "populations")
LEVELS = (1, 2, 3, 4)

SET_BY_EXPERIMENT = ("level", "task_overrides", "seed", "delta", "hidden_size", "target_accuracy", "out_dir",
                     "resume", "progress", "preset", "config", "callback")
"""Trainer arguments an experiment sets itself (from its grid, its top-level settings and its [task] table), so
not allowed in [rl] / [sl]."""


class SpecError(ValueError, TypeError):
    """An invalid experiment spec; the message names the setting, the value given and what is allowed.

    Both a ``ValueError`` (a bad value) and a ``TypeError`` (a bad key or type), as these errors always were.
    """


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
        levels: Task levels (1-4).
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
        if not isinstance(self.name, str):
            raise SpecError(f"name must be a string, got {self.name!r}")
        self.rules = _values("rules", self.rules, lambda v: v in RULES, f"rules from {list(RULES)}", '["sl"]')
        self.analyses = _values("analyses", self.analyses, lambda v: v in ANALYSES, f"analyses from {list(ANALYSES)}",
                                '["dynamics"]', empty=True)
        self.deltas = tuple(float(d) for d in _values("deltas", self.deltas, lambda v: _number(v) and v > 0,
                                                       "positive numbers", "[0.1]"))
        self.seeds = tuple(int(k) for k in _values("seeds", self.seeds, lambda v: _integer(v) and v >= 0,
                                                    "non-negative integers", "[0, 1]"))
        self.levels = tuple(int(k) for k in _values("levels", self.levels, lambda v: _integer(v) and v in LEVELS,
                                                     f"integers in {list(LEVELS)}", "[3]"))
        if not (_integer(self.hidden_size) and self.hidden_size >= 1):
            raise SpecError(f"hidden_size must be a positive integer, got {self.hidden_size!r}")
        if not (_number(self.target_accuracy) and 0 < self.target_accuracy <= 1):
            raise SpecError(f"target_accuracy must be a number in (0, 1], got {self.target_accuracy!r}")
        if not isinstance(self.track_checkpoints, bool):
            raise SpecError(f"track_checkpoints must be true or false, got {self.track_checkpoints!r}")
        for table, allowed in (("rl", _trainer_keys), ("sl", _trainer_keys), ("task", _task_keys),
                               ("analysis", _analysis_keys)):
            value = getattr(self, table)
            if not isinstance(value, dict):
                raise SpecError(f"[{table}] must be a table of settings, got {value!r}")
            if value:
                _check_keys(f"[{table}]", value, allowed(table))
        for key, value in self.analysis.items():
            _check_analysis_value(key, value)
        if self.task:
            _check_task(self.task, self.levels)

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
        """Build a spec from a dict (e.g. parsed TOML); an unknown key or a bad value raises :class:`SpecError`."""
        if not isinstance(data, dict):
            raise SpecError(f"an experiment spec must be a table of settings, got {type(data).__name__} {data!r}")
        _check_keys("experiment", data, [f.name for f in dataclasses.fields(cls)])
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> "ExperimentSpec":
        """Read a TOML (or JSON) spec file; every error names the file (see :func:`read_spec_file`)."""
        data = read_spec_file(path)
        try:
            return cls.from_dict(data)
        except SpecError as err:
            raise SpecError(f"{path}: {err}") from None


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """The table of settings in a TOML (or ``.json``) file.

    Raises:
        FileNotFoundError: no file at ``path``.
        SpecError: a folder, a binary file, a syntax error, or not a table; the message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no spec file at {path}")
    if not path.is_file():
        raise SpecError(f"{path} is a folder, not a spec file")
    try:
        text = path.read_bytes().decode("utf-8")
        if "\x00" in text:
            raise UnicodeError
    except UnicodeError:
        raise SpecError(f"{path} is not a text file (a TOML or JSON spec was expected)") from None
    kind = "JSON" if path.suffix == ".json" else "TOML"
    try:
        data = json.loads(text) if kind == "JSON" else tomllib.loads(text)
    except json.JSONDecodeError as err:
        raise SpecError(f"{path}: invalid JSON: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{path}: invalid TOML: {err}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a spec must be a table of settings (a {kind} object), got a {type(data).__name__}")
    return data


# ---------------------------------------------------------------------- validation
def _integer(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _values(name: str, value: Any, ok: Callable[[Any], bool], what: str, example: str,
            empty: bool = False) -> tuple:
    """``value`` as a tuple, checked to be a list of values that are ``ok``."""
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, (list, tuple)):
        raise SpecError(f"{name} must be a list of {what}, such as {name} = {example}; got {value!r}")
    for v in value:
        if not ok(v):
            raise SpecError(f"{name} must be a list of {what}; got {v!r} in {list(value)!r}")
    if not (value or empty):
        raise SpecError(f"{name} must hold at least one value, such as {name} = {example}")
    return tuple(value)


def _check_keys(where: str, data: dict, allowed: Sequence[str]) -> None:
    unknown = sorted(str(k) for k in set(data) - set(allowed))
    if unknown:
        hints = [m for k in unknown for m in difflib.get_close_matches(k, allowed, n=1)]
        hint = f" (did you mean {', '.join(repr(h) for h in hints)}?)" if hints else ""
        if where in ("[rl]", "[sl]") and set(unknown) & set(SET_BY_EXPERIMENT):
            hint += " (the experiment sets seed, delta, hidden_size, target_accuracy and the task itself)"
        what = "experiment setting(s)" if where == "experiment" else f"setting(s) in {where}"
        raise SpecError(f"unknown {what} {unknown}{hint}; allowed: {sorted(allowed)}")


@functools.lru_cache(maxsize=None)
def _trainer_keys(rule: str) -> tuple[str, ...]:
    """Settings of ``agents.train_rl`` / ``agents.train_sl`` that a spec's [rl] / [sl] table may set: the fields of
    their configs (:mod:`agents.config`) that the experiment does not set itself."""
    from agents.config import config_fields

    return tuple(k for k in config_fields(rule) if k not in SET_BY_EXPERIMENT)


def _task_keys(table: str) -> tuple[str, ...]:
    from dm_envs import TaskConfig

    return tuple(f.name for f in dataclasses.fields(TaskConfig))


def _analysis_keys(table: str) -> tuple[str, ...]:
    from .cell import DEFAULT_ANALYSIS

    return tuple(DEFAULT_ANALYSIS)


def _check_analysis_value(key: str, value: Any) -> None:
    from .cell import DEFAULT_ANALYSIS

    default = DEFAULT_ANALYSIS[key]
    if isinstance(default, bool) and not isinstance(value, bool):
        raise SpecError(f"[analysis] {key} must be true or false, got {value!r}")
    if _integer(default) and not (_integer(value) and value >= 1):
        raise SpecError(f"[analysis] {key} must be a positive integer, got {value!r}")
    if isinstance(default, str) and not isinstance(value, str):
        raise SpecError(f"[analysis] {key} must be a string such as {default!r}, got {value!r}")


def _check_task(task: dict, levels: Sequence[int]) -> None:
    """Every level's task with the overrides must be a valid :class:`~dm_envs.TaskConfig`."""
    from dm_envs import make_config

    for level in levels:
        try:
            make_config(level, **task)
        except (TypeError, ValueError) as err:
            raise SpecError(f"[task] at level {level}: {err}") from None


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
    # 2 cores. RL's time to criterion has a long tail: each RL run gets at most 4M env steps (about 7 min; the slowest
    # RL run that reached the criterion in the first paper run needed 3.8M), SL the trainer's default 20M (the slowest
    # SL run needed 4.8M). Budgets in steps, not seconds, so that the same seeds give the same networks on a busy
    # machine. A run that misses the criterion is kept, counted and reported, and left out of the comparisons.
    "paper": dict(
        name="paper",
        rules=["rl", "sl"],
        deltas=[0.05, 0.125, 0.2],
        seeds=list(range(8)),
        levels=[3],
        hidden_size=250,
        rl={"max_steps": 4_000_000},
        analysis={"grid": 11, "n_init": 16, "track_grid": 7, "track_n_init": 8, "population_trials": 500,
                  "n_shuffles": 1000,
                  # TensorBoard logs are not part of the results: the probe would only cost training time
                  "dynamics_probe": False},
    ),
    # A larger sweep: 250 units, six widths, ten paired seeds, three levels.
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
