"""Populations over training: when does population membership "crystallise"?

For every checkpoint of a run folder the units are assigned to ``G+``, ``G-``, ``Ga``, ``Gs`` exactly as for a
final network (:func:`analysis.populations.groups.assign_populations` on the decision and stimulus-stage states of
:func:`analysis.populations.groups.network_signatures`, from the same fixed set of trials at every checkpoint); consecutive
checkpoints are compared by the Jaccard similarity of each group, and the crystallisation checkpoint is the first
after which every transition is stable (:func:`analysis.populations.crystallization.training_crystallization`). Attractor types
from :func:`analysis.dynamics.maps.track` can be added to the stability criterion.

Example:
    >>> tracking = track_populations("runs/rl_level3_d0.1_s0")        # doctest: +SKIP
    >>> tracking.summary["crystallized_at"]["progress"]                # doctest: +SKIP
    0.62
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from tqdm.auto import tqdm

from agents.files import write_json, write_rows

GROUPS = ("G+", "G-", "Ga", "Gs")


@dataclass
class PopulationTracking:
    """Population membership over a run's checkpoints.

    Attributes:
        rows: Per checkpoint, in training order: name, env steps, progress (0..1), group sizes, balance index,
            Jaccard similarity of each group with the previous checkpoint, accuracy when known.
        labels: ``(C, H)`` group label of each unit at each checkpoint.
        summary: The crystallisation checkpoint (index, name, env steps, progress), the threshold used, and the
            final sizes and balance.
    """

    rows: list[dict[str, Any]]
    labels: np.ndarray
    summary: dict[str, Any] = field(default_factory=dict)

    def save(self, out_dir: str | Path) -> None:
        """Write ``population_track.json`` and ``population_track.csv`` into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "population_track.json", {"rows": self.rows, "summary": self.summary})
        flat = []
        for r in self.rows:  # one column per group size and per group's Jaccard similarity
            row = {k: v for k, v in r.items() if k not in ("sizes", "jaccard", "decision_attractors")}
            row["decision_attractors"] = " ".join(r["decision_attractors"])
            row.update({f"size_{g}": n for g, n in r["sizes"].items()})
            row.update({f"jaccard_{g}": v for g, v in (r.get("jaccard") or {}).items()})
            flat.append(row)
        write_rows(out / "population_track.csv", flat)


def track_populations(
    run_folder: str | Path,
    *,
    n_trials: int = 200,
    seed: int = 0,
    gs: str = "stimulus",
    threshold: Optional[float] = None,
    jaccard_threshold: float = 0.9,
    attractor_kinds: Optional[Sequence[Any]] = None,
    decision: str = "auto",
    progress: bool = True,
    config: Any = None,
) -> PopulationTracking:
    """Assign populations at every checkpoint of ``run_folder`` and find when membership stops changing.

    Args:
        run_folder: A run folder written by :func:`agents.train_rl` or :func:`agents.train_sl`, or of plain SB3 zips
            of any recurrent policy (as :func:`analysis.dynamics.tracking.track` reads them; units: the core's ``h``,
            :mod:`analysis.populations.generic`).
        n_trials: Trials whose end-of-stimulus states seed the attractor search (the same trials at every
            checkpoint).
        seed: Seed of those trials.
        gs: Reading of ``Gs`` (``"silent"`` or ``"stimulus"``; see :func:`~analysis.populations.groups.assign_populations`).
        threshold: Activity threshold of the assignment (default 1e-6; 0.1 on ``|h|`` for other cores).
        jaccard_threshold: Minimum Jaccard similarity of every group for a stable transition.
        attractor_kinds: Optional, per checkpoint, the attractor types (e.g. from :func:`analysis.dynamics.maps.track`) that
            must also stop changing.
        decision: Source of the decision signatures (see :func:`analysis.populations.groups.network_signatures`).
        progress: Show a progress bar over checkpoints.
        config: The task (default: the checkpoints' metadata; needed for plain SB3 zips).

    Returns:
        The :class:`PopulationTracking`.
    """
    from agents.runs import RunDir
    from analysis.network import Network
    from analysis.populations.crystallization import training_crystallization
    from analysis.populations.groups import assign_populations, balance_index, membership_jaccard, network_signatures
    from dm_envs import sample_trials, score_actions

    from analysis.dynamics.tracking import _run_models
    from analysis.populations.generic import GENERIC_THRESHOLD, generic_map, generic_signatures

    run_dir = RunDir(run_folder)
    checkpoints = _run_models(run_dir)
    last_steps = max(c.env_steps for c in checkpoints) or 1
    accuracy = run_dir.accuracy_curve()
    trials = None
    rows: list[dict[str, Any]] = []
    labels: list[np.ndarray] = []
    for ckpt in tqdm(checkpoints, desc="populations over training", unit="ckpt", disable=not progress):
        w = generic_map(ckpt.path, config)  # any other recurrent policy; else the ReLU RNN's exact Network
        generic = w is not None
        w = w if generic else Network.load(ckpt.path, config=config)
        if trials is None:
            config = w.config
            if config is None:
                raise ValueError(f"{ckpt.path} carries no task config: pass config= (--level N)")
            trials = sample_trials(config, n_trials, np.random.default_rng([seed, 0x909]))
        thr = (GENERIC_THRESHOLD if generic else 1e-6) if threshold is None else threshold
        run = w.forward(trials.obs)
        choice = score_actions(trials, run.actions).choice
        if generic:
            attractors, source = generic_signatures(w, config, trials, run.hidden, choice, decision=decision,
                                                    threshold=thr)
        else:
            attractors, source = network_signatures(w, config, trials, run.hidden, choice, decision=decision)
        plus = [k for k in attractors if k in ("FP+", "FP1")]
        minus = [k for k in attractors if k in ("FP-", "FP2")]
        pops = assign_populations(attractors, plus=plus, minus=minus, gs=gs, threshold=thr)
        row: dict[str, Any] = {
            "checkpoint": ckpt.name,
            "env_steps": ckpt.env_steps,
            "progress": ckpt.env_steps / last_steps,
            "accuracy": accuracy.get(ckpt.env_steps),
            "decision_attractors": sorted(plus + minus),
            "decision_source": source,
            "sizes": {g: int(n) for g, n in pops.sizes.items()},
            "balance_index": float(balance_index(pops)),
        }
        if labels:
            row["jaccard"] = {g: _nan_to_none(v) for g, v in membership_jaccard(labels[-1], pops.labels).items()}
        labels.append(np.asarray(pops.labels))
        rows.append(row)
    crys = training_crystallization(labels, attractor_kinds=attractor_kinds, threshold=jaccard_threshold)
    index = crys.index
    summary: dict[str, Any] = {
        "n_checkpoints": len(rows),
        "jaccard_threshold": jaccard_threshold,
        "crystallized_at": None if index is None else {k: rows[index][k] for k in ("checkpoint", "env_steps", "progress")},
        "final_sizes": rows[-1]["sizes"],
        "final_balance_index": rows[-1]["balance_index"],
    }
    return PopulationTracking(rows=rows, labels=np.stack(labels), summary=summary)


def _nan_to_none(x: Any) -> Optional[float]:
    x = float(x)
    return x if np.isfinite(x) else None


__all__ = ["PopulationTracking", "track_populations"]
