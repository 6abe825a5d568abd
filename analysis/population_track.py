"""Populations over training: when does population membership "crystallise"?

For every checkpoint of a run folder the units are assigned to ``G+``, ``G-``, ``Ga``, ``Gs`` exactly as for a
final network (:func:`analysis.populations.assign_populations` on the decision and stimulus-stage states of
:func:`analysis.populations.network_signatures`, from the same fixed set of trials at every checkpoint); consecutive
checkpoints are compared by the Jaccard similarity of each group, and the crystallisation checkpoint is the first
after which every transition is stable (:func:`analysis.crystallization.training_crystallization`). Attractor types
from :func:`analysis.maps.track` can be added to the stability criterion.

Example:
    >>> tracking = track_populations("runs/rl_level3_d0.1_s0")        # doctest: +SKIP
    >>> tracking.summary["crystallized_at"]["progress"]                # doctest: +SKIP
    0.62
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from tqdm.auto import tqdm

from .outputs import write_rows

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
        (out / "population_track.json").write_text(json.dumps({"rows": self.rows, "summary": self.summary},
                                                              indent=1, default=float))
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
    gs: str = "silent",
    threshold: float = 1e-6,
    jaccard_threshold: float = 0.9,
    attractor_kinds: Optional[Sequence[Any]] = None,
    decision: str = "auto",
    progress: bool = True,
) -> PopulationTracking:
    """Assign populations at every checkpoint of ``run_folder`` and find when membership stops changing.

    Args:
        run_folder: A run folder written by :func:`agents.train_rl` or :func:`agents.train_sl`.
        n_trials: Trials whose end-of-stimulus states seed the attractor search (the same trials at every
            checkpoint).
        seed: Seed of those trials.
        gs: Reading of ``Gs`` (``"silent"`` or ``"stimulus"``; see :func:`~analysis.populations.assign_populations`).
        threshold: Activity threshold of the assignment.
        jaccard_threshold: Minimum Jaccard similarity of every group for a stable transition.
        attractor_kinds: Optional, per checkpoint, the attractor types (e.g. from :func:`analysis.maps.track`) that
            must also stop changing.
        decision: Source of the decision signatures (see :func:`analysis.populations.network_signatures`).
        progress: Show a progress bar over checkpoints.

    Returns:
        The :class:`PopulationTracking`.
    """
    from agents import load_model, rnn_weights, task_config_of
    from dm_envs import sample_trials, score_actions

    from .crystallization import training_crystallization
    from .maps import list_checkpoints
    from .populations import assign_populations, balance_index, membership_jaccard, network_signatures
    from .robustness import rnn_forward

    checkpoints = list_checkpoints(run_folder)
    last_steps = max(c.env_steps for c in checkpoints) or 1
    accuracy = _accuracy_by_steps(Path(run_folder))
    trials = None
    rows: list[dict[str, Any]] = []
    labels: list[np.ndarray] = []
    for ckpt in tqdm(checkpoints, desc="populations over training", unit="ckpt", disable=not progress):
        model = load_model(ckpt.path)
        w = rnn_weights(model)
        if trials is None:
            config = task_config_of(model)
            trials = sample_trials(config, n_trials, np.random.default_rng([seed, 0x909]))
        run = rnn_forward(w, trials.obs)
        choice = score_actions(trials, run.actions).choice
        attractors, source = network_signatures(w, config, trials, run.hidden, choice, decision=decision)
        plus = [k for k in attractors if k in ("FP+", "FP1")]
        minus = [k for k in attractors if k in ("FP-", "FP2")]
        pops = assign_populations(attractors, plus=plus, minus=minus, gs=gs, threshold=threshold)
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


def _accuracy_by_steps(run: Path) -> dict[int, float]:
    meta = run / "metadata.json"
    if not meta.exists():
        return {}
    curve = json.loads(meta.read_text()).get("accuracy_curve", [])
    return {int(c["env_steps"]): float(c["accuracy"]) for c in curve if c.get("accuracy") is not None}


# ---------------------------------------------------------------------- CLI
def add_analyze_commands(asub: Any) -> None:
    """Register ``dmd analyze crystallization RUN --out DIR``."""
    p = asub.add_parser("crystallization", help="population membership over a run's checkpoints: when it stops changing")
    p.add_argument("run", help="a run folder (final_model.zip, checkpoints/)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gs", choices=["silent", "stimulus"], default="silent")
    p.add_argument("--jaccard", type=float, default=0.9, help="Jaccard threshold of a stable transition")
    p.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    tracking = track_populations(args.run, n_trials=args.trials, seed=args.seed, gs=args.gs,
                                 jaccard_threshold=args.jaccard)
    tracking.save(args.out)
    _plot(tracking, Path(args.out) / "population_track.png")
    at = tracking.summary["crystallized_at"]
    where = "never (membership still changes at the last checkpoint)" if at is None else (
        f"at {at['checkpoint']} ({at['env_steps']} env steps, {at['progress']:.0%} of training)")
    print(f"population membership crystallised {where}; written to {args.out}")
    return 0


def _plot(tracking: PopulationTracking, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prog = [r["progress"] for r in tracking.rows]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), constrained_layout=True)
    for g in GROUPS:
        axes[0].plot(prog, [r["sizes"].get(g, 0) for r in tracking.rows], "o-", label=g)
        axes[1].plot(prog[1:], [(r.get("jaccard") or {}).get(g) or np.nan for r in tracking.rows[1:]], "o-", label=g)
    at = tracking.summary["crystallized_at"]
    for ax in axes:
        ax.set_xlabel("training progress")
        if at is not None:
            ax.axvline(at["progress"], color="k", ls=":", lw=1)
    axes[0].set_ylabel("units")
    axes[0].set_title("Population sizes")
    axes[1].set_ylabel("Jaccard with previous checkpoint")
    axes[1].set_title("Membership stability")
    axes[0].legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)


__all__ = ["PopulationTracking", "track_populations", "add_analyze_commands"]
