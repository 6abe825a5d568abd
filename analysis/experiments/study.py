"""Studies: vary one factor at a time against a baseline experiment, with the same paired seeds.

A study is a base :class:`~analysis.experiments.spec.ExperimentSpec` and named *factors*, each a set of overrides of
it. Every factor is an experiment of its own, in ``OUT/<factor>/`` (so ``dmd experiment report OUT/<factor>``
works on it), and all their cells run in one process pool; ``OUT/study.json`` records the study. The tables ``rl``,
``sl``, ``task`` and ``analysis`` of a factor update the base's tables; any other key replaces the base's value::

    study = Study(
        name="why",
        base=dict(rules=["rl", "sl"], deltas=[0.125], seeds=[0, 1, 2, 3], levels=[3]),
        factors={"baseline": {}, "gaussian_noise": {"task": {"noise": "gaussian"}}, "level1": {"levels": [1]}},
    )
    run_study(study, "runs/why")
    # runs/why/baseline/, runs/why/gaussian_noise/, runs/why/level1/: one experiment folder each

The built-in ``sensitivity`` study (:data:`STUDIES`) is the issue-11 factor study of the paper's question.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from agents.files import write_json
from .spec import PRESETS, ExperimentSpec

MERGED = ("rl", "sl", "task", "analysis")
"""Factor keys that update the base's table instead of replacing it."""

BASELINE = "baseline"
"""The factor every other one is compared with (no overrides)."""


@dataclass(frozen=True)
class Study:
    """A base experiment and factors that each change it in one way.

    Args:
        name: A label.
        base: The base experiment (:class:`ExperimentSpec` fields).
        factors: ``{factor: overrides}``; ``"baseline"`` (no overrides) is the comparison row.
        notes: ``{factor: one line}`` saying what each factor changes and why (for the report).
    """

    name: str
    base: dict[str, Any]
    factors: dict[str, dict[str, Any]]
    notes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.factors:
            raise ValueError("a study needs at least one factor")
        for name in self.factors:
            if not name or "/" in name or name.startswith("."):
                raise ValueError(f"factor names must be folder-safe, got {name!r}")
        self.specs()  # every factor must build a valid spec before anything runs

    def spec(self, factor: str) -> ExperimentSpec:
        """The experiment of one factor."""
        if factor not in self.factors:
            raise KeyError(f"unknown factor {factor!r}; this study has {sorted(self.factors)}")
        merged = dict(self.base)
        for key, value in self.factors[factor].items():
            merged[key] = {**merged.get(key, {}), **value} if key in MERGED else value
        merged["name"] = f"{self.name}/{factor}"
        return ExperimentSpec.from_dict(merged)

    def specs(self) -> dict[str, ExperimentSpec]:
        """Every factor's experiment, in the study's order."""
        return {f: self.spec(f) for f in self.factors}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (:meth:`from_dict` inverts it)."""
        return {"name": self.name, "base": self.base, "factors": self.factors, "notes": self.notes}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Study":
        """Build a study from a dict; unknown keys raise ``TypeError`` naming them."""
        unknown = sorted(set(data) - {"name", "base", "factors", "notes"})
        if unknown:
            raise TypeError(f"unknown study setting(s) {unknown}; allowed: ['base', 'factors', 'name', 'notes']")
        return cls(name=str(data.get("name", "study")), base=dict(data.get("base", {})),
                   factors={k: dict(v) for k, v in dict(data.get("factors", {})).items()},
                   notes=dict(data.get("notes", {})))

    @classmethod
    def load(cls, path: str | Path) -> "Study":
        """Read a study from a TOML or JSON file (a ``study.json`` written by :func:`run_study` too)."""
        path = Path(path)
        text = path.read_text()
        return cls.from_dict(json.loads(text) if path.suffix == ".json" else tomllib.loads(text))


def _sensitivity() -> dict[str, Any]:
    """The factor study of issue 11: what decides the dynamics RL and SL find?"""
    paper = PRESETS["paper"]
    base = {k: v for k, v in paper.items() if k != "name"}
    # the final networks answer the factor question; progressive sculpting over checkpoints is the paper preset's
    # the published study (results/sensitivity) ran before the paper preset's step budgets and probe switch: its
    # wall-time budgets, and the probe left at its default
    base.update(rl={"max_time": 480.0}, sl={"max_time": 300.0})
    analysis = {k: v for k, v in base.get("analysis", {}).items() if k != "dynamics_probe"}
    base.update(deltas=[0.125], seeds=[0, 1, 2, 3], track_checkpoints=False,
                analysis={**analysis, "initial": True})  # step 0: what training added
    return dict(
        name="sensitivity",
        base=base,
        factors={
            BASELINE: {},
            # 12 paired seeds: 0-3 the first run (where the paper's pattern appeared, n too small to test), 4-11
            # fresh ones to confirm or refute it; step budgets as the paper preset's, so load cannot change them
            "long_stimulus": {"task": {"stimulus": ["truncexp", 2000.0, 500.0, 6100.0]}, "seeds": list(range(12)),
                              "rl": {"max_time": None, "max_steps": 4_000_000}, "sl": {"max_time": None},
                              "analysis": {"dynamics_probe": False}},
            "sl_past_criterion": {"rules": ["sl"], "sl": {"train_past": 3.0}},
            "rl_no_entropy_no_kl": {"rules": ["rl"], "rl": {"ent_coef": 0.0, "target_kl": None}},
            "gaussian_noise": {"task": {"noise": "gaussian", "noise_amplitude": 0.25 / 3 ** 0.5}},
            "level1": {"levels": [1]},
        },
        notes={
            BASELINE: "the paper preset's level-3 task at delta 0.125, seeds 0-3",
            "long_stimulus": "stimulus 5-60 steps (truncated exponential, mean 20 steps) instead of a fixed 15; 12 "
                             "paired seeds (4-11 a confirmation set), budgets in env steps (RL 4M, SL 20M)",
            "sl_past_criterion": "SL trained on to 3x its trials to criterion",
            "rl_no_entropy_no_kl": "PPO with ent_coef = 0 and no target_kl",
            "gaussian_noise": "Gaussian input noise with the uniform noise's standard deviation (0.25 / sqrt 3)",
            "level1": "task level 1 (one evidence stream, no context, fixed delay)",
        },
    )


STUDIES: dict[str, Any] = {"sensitivity": _sensitivity}
"""Built-in studies (``dmd experiment run --preset sensitivity``), built on demand from :data:`PRESETS`."""


def study(name: str) -> Study:
    """A built-in study by name."""
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; allowed: {sorted(STUDIES)}")
    return Study.from_dict(STUDIES[name]())


def is_study_file(path: str | Path) -> bool:
    """Whether a spec file holds a study (a ``factors`` table) rather than one experiment."""
    path = Path(path)
    if not path.is_file():
        return False
    text = path.read_text()
    data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    return isinstance(data, dict) and "factors" in data


def run_study(study: Study, out_dir: str | Path, *, workers: Optional[int] = None, backend: str = "local",
              address: Optional[str] = None, cell_fn: Any = None, progress: bool = True) -> dict[str, list[dict]]:
    """Run every factor of a study (resumable) into ``out_dir/<factor>``; return each factor's index rows."""
    from .runner import run_experiments

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "study.json", study.to_dict())
    specs = study.specs()
    rows = run_experiments([(spec, out / f) for f, spec in specs.items()], backend=backend, workers=workers,
                           address=address, cell_fn=cell_fn, progress=progress)
    return dict(zip(specs, rows))


__all__ = ["BASELINE", "STUDIES", "Study", "is_study_file", "run_study", "study"]
