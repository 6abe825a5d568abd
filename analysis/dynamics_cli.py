"""``dmd analyze dynamics MODEL.zip --out DIR``: the attractor landscape of one saved policy (RL or SL alike).

For the task the model was trained on (from its metadata):

* **stimulus stage**: the attractors of the map over a grid of stimulus conditions (signed coherences of every
  stream, ``--grid`` values in ``[-c_max, c_max]``; for multi-choice tasks, every coherence level and direction)
  in every context, from the states observed at stimulus onset in trials plus random states
  (:func:`analysis.find_attractors`);
* **delay and decision stages** (one input per context): the attractors reached from the end-of-stimulus states of
  trials (the decision basins), whether each trial's attractor reads out its correct choice, and every fixed point of
  the map (:func:`analysis.fixed_points`, exact).

Writes ``DIR/summary.json`` (counts per kind, the quasi-periodic fraction overall and per ``|coherence|``,
multistability, decision-basin accuracy, timings), ``DIR/attractors.csv`` (one row per attractor),
``DIR/fixed_points.csv``, and figures (unless ``--no-figures``): ``attractor_map.png`` (the dominant kind over the
coherence plane), ``lyapunov.png`` (the largest Lyapunov exponent against the relevant coherence) and
``trajectories_pca.png`` (trial trajectories in PCA space with the fixed points and attractor orbits).

Example:
    dmd analyze dynamics runs/rl_seed0/final_model.zip --out runs/rl_seed0/dynamics --progress
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

KIND_COLORS = {
    "fixed_point": "#4c72b0",
    "periodic": "#55a868",
    "quasi_periodic": "#c44e52",
    "chaotic": "#8172b2",
    "divergent": "#7f7f7f",
}


def add_analyze_commands(asub: Any) -> None:
    """Register ``dmd analyze dynamics``."""
    p = asub.add_parser(
        "dynamics",
        help="attractor landscape of a saved policy: fixed points, attractor types, Lyapunov exponents",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("model", help="a saved model zip (RL or SL)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--grid", type=int, default=21, help="signed-coherence values per stream (default 21)")
    p.add_argument("--n-init", type=int, default=32, help="random initial states per input (default 32)")
    p.add_argument("--observed", type=int, default=16, help="observed trial states added per input (default 16)")
    p.add_argument("--trials", type=int, default=256, help="trials run for observed states and basins")
    p.add_argument("--n-transient", type=int, default=2000)
    p.add_argument("--n-record", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("--progress", action="store_true", help="show progress bars")
    p.set_defaults(func=run_dynamics_command)


# ---------------------------------------------------------------------------------------------- conditions
def stimulus_conditions(cfg: Any, n_grid: int) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """The stimulus-stage inputs ``(N, D)`` of the map and a description of each (columns of the CSV)."""
    from dm_envs import stage_input

    contexts = list(range(cfg.n_streams)) if cfg.has_context else [None]
    c_max = max(cfg.coherences)
    rows: list[dict[str, Any]] = []
    xs = []
    if cfg.n_choices == 2:
        values = np.linspace(-c_max, c_max, n_grid)
        for ctx in contexts:
            for combo in itertools.product(values, repeat=cfg.n_streams):
                xs.append(stage_input(cfg, "stimulus", signed_coherence=np.array(combo), context=ctx))
                row = {f"c{s + 1}": float(v) for s, v in enumerate(combo)}
                row["context"] = ctx
                row["relevant"] = float(combo[ctx if ctx is not None else 0])
                rows.append(row)
    else:
        levels = [(c, d) for c in cfg.coherences for d in range(cfg.n_choices)]
        for ctx in contexts:
            for combo in itertools.product(levels, repeat=cfg.n_streams):
                coh, dirs = np.array([c for c, _ in combo]), np.array([d for _, d in combo])
                xs.append(stage_input(cfg, "stimulus", coherence=coh, direction=dirs, context=ctx))
                row = {f"coh{s + 1}": float(c) for s, (c, _) in enumerate(combo)}
                row.update({f"dir{s + 1}": int(d) for s, (_, d) in enumerate(combo)})
                row["context"] = ctx
                row["relevant"] = float(combo[ctx if ctx is not None else 0][0])
                rows.append(row)
    return np.asarray(xs), rows


def _subsample(states: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    if len(states) <= n:
        return states
    return states[np.sort(rng.choice(len(states), n, replace=False))]


def _attractor_row(stage: str, cond: dict[str, Any], a: Any) -> dict[str, Any]:
    lam = np.asarray(a.lyapunov, dtype=float)
    return {
        "stage": stage,
        **cond,
        "kind": a.kind,
        "period": a.period if a.period is not None else "",
        "lambda1": float(lam[0]) if lam.size else float("nan"),
        "lambda2": float(lam[1]) if lam.size > 1 else float("nan"),
        "basin_count": a.basin_count,
        "decision": a.decision if a.decision is not None else "",
        "norm": a.norm,
        "converged": a.converged,
    }


def _json_float(v: float) -> Optional[float]:
    return float(v) if np.isfinite(v) else None


# ---------------------------------------------------------------------------------------------- analysis
def analyze_dynamics(model: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Run the whole analysis of ``model`` (a path or a loaded model) and write the outputs to ``args.out``."""
    from analysis.attractors import find_attractors
    from analysis.dynamics import load_dynamics, rollout
    from analysis.fixed_points import fixed_points
    from dm_envs import stage_input

    out = Path(args.out)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    dyn = load_dynamics(model)
    if dyn.config is None:
        raise SystemExit("dmd analyze dynamics: the model carries no task config (dmd_metadata['task_config'])")
    out.mkdir(parents=True, exist_ok=True)
    cfg = dyn.config
    rng = np.random.default_rng(args.seed)
    run = rollout(model, args.trials, seed=args.seed, noise=True)
    tr = run.trials
    onset = run.stage_states("stimulus", "first").astype(np.float64)
    end = run.stage_states("stimulus", "last").astype(np.float64)
    timings["rollout"] = time.perf_counter() - t0
    kw = dict(n_transient=args.n_transient, n_record=args.n_record, progress=args.progress)

    # stimulus stage over the coherence grid
    t0 = time.perf_counter()
    X, conds = stimulus_conditions(cfg, args.grid)
    stim = find_attractors(dyn, X, n_init=args.n_init, seed=args.seed,
                           init_states=_subsample(onset, args.observed, rng), **kw)
    timings["stimulus_attractors"] = time.perf_counter() - t0
    rows = [_attractor_row("stimulus", cond, a) for cond, atts in zip(conds, stim) for a in atts]

    # delay and decision stages: basins of the end-of-stimulus states, and every fixed point
    t0 = time.perf_counter()
    contexts = list(range(cfg.n_streams)) if cfg.has_context else [None]
    basins: dict[str, Any] = {}
    fp_rows: list[dict[str, Any]] = []
    fps_for_plot: list[np.ndarray] = []
    for stage in ("delay", "decision"):
        correct = n = 0
        for ctx in contexts:
            sel = np.ones(len(tr.context), dtype=bool) if ctx is None else tr.context == ctx
            if not sel.any():
                continue
            x = stage_input(cfg, stage, context=ctx)
            atts = find_attractors(dyn, x, n_init=0, seed=args.seed, init_states=end[sel], **kw)
            choice_of = np.full(int(sel.sum()), -1)
            for a in atts:
                choice_of[a.members] = -1 if a.decision is None else a.decision
                rows.append(_attractor_row(stage, {"context": ctx}, a))
            correct += int((choice_of == tr.correct_choice[sel] + 1).sum())
            n += int(sel.sum())
            for fp in fixed_points(dyn, x, init_states=_subsample(end[sel], 64, rng), n_init=32, seed=args.seed):
                fp_rows.append({"stage": stage, "context": ctx, "stable": fp.stable,
                                "spectral_radius": fp.spectral_radius, "n_active": fp.n_active,
                                "decision": fp.decision, "norm": fp.norm, "residual": fp.residual})
                if fp.stable:
                    fps_for_plot.append(fp.state)
        basins[stage] = {"trials": n, "basin_matches_correct_choice": correct / n if n else None}
    timings["decision_stages"] = time.perf_counter() - t0

    summary = summarize(rows, basins, [len(s) for s in stim])
    summary.update(model=str(model), learning_rule=dyn.metadata.get("learning_rule"), task=cfg.to_dict(),
                   grid=args.grid, n_init=args.n_init, observed=min(args.observed, len(onset)),
                   n_transient=args.n_transient, n_record=args.n_record, timings_s=timings)
    _write_csv(out / "attractors.csv", rows)
    _write_csv(out / "fixed_points.csv", fp_rows)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default))
    if not args.no_figures:
        t0 = time.perf_counter()
        figures(out, cfg, conds, stim, run, np.asarray(fps_for_plot))
        timings["figures"] = time.perf_counter() - t0
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default))
    return summary


def summarize(rows: list[dict[str, Any]], basins: dict[str, Any], n_per_input: list[int]) -> dict[str, Any]:
    """Counts per kind and stage, QP fraction overall and per relevant ``|coherence|``, multistability."""
    out: dict[str, Any] = {"decision_basins": basins}
    for stage in ("stimulus", "delay", "decision"):
        st = [r for r in rows if r["stage"] == stage]
        if not st:
            continue
        kinds = [r["kind"] for r in st]
        counts = {k: kinds.count(k) for k in KIND_COLORS}
        entry: dict[str, Any] = {"n_attractors": len(st), "counts": counts,
                                 "qp_fraction": counts["quasi_periodic"] / len(st)}
        if stage == "stimulus":
            by_abs: dict[float, list[str]] = {}
            for r in st:
                by_abs.setdefault(round(abs(r["relevant"]), 6), []).append(r["kind"])
            entry["qp_fraction_by_abs_relevant_coherence"] = {
                f"{k:g}": v.count("quasi_periodic") / len(v) for k, v in sorted(by_abs.items())
            }
            n_per = np.asarray(n_per_input)
            entry["multistability"] = {f"{k} attractors": int((n_per == k).sum()) for k in np.unique(n_per)}
            lam = np.array([r["lambda1"] for r in st if r["kind"] not in ("fixed_point", "divergent")])
            entry["lambda1_non_stationary"] = {"mean": _json_float(lam.mean()) if lam.size else None,
                                               "max": _json_float(lam.max()) if lam.size else None}
        out[stage] = entry
    return out


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields or ["empty"])
        w.writeheader()
        w.writerows(rows)


# ---------------------------------------------------------------------------------------------- figures
def figures(out: Path, cfg: Any, conds: list[dict[str, Any]], stim: list[list[Any]], run: Any, fps: np.ndarray) -> None:
    """Attractor-type map, largest Lyapunov exponent against coherence, PCA trajectories."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    kinds = list(KIND_COLORS)
    contexts = sorted({c["context"] for c in conds}, key=lambda v: -1 if v is None else v)
    two_d = cfg.n_choices == 2 and cfg.n_streams == 2
    # 1. dominant kind (largest basin) over the coherence plane
    if cfg.n_choices == 2:
        fig, axes = plt.subplots(1, len(contexts), figsize=(4.2 * len(contexts), 3.8), squeeze=False)
        for ax, ctx in zip(axes[0], contexts):
            idx = [i for i, c in enumerate(conds) if c["context"] == ctx]
            dom = np.array([kinds.index(stim[i][0].kind) if stim[i] else 0 for i in idx])
            vals = np.unique([conds[i]["c1"] for i in idx])
            img = dom.reshape(len(vals), len(vals)).T if two_d else dom[None]
            half = (vals[1] - vals[0]) / 2 if len(vals) > 1 else 0.5  # cells centred on the grid values
            lo, hi = vals[0] - half, vals[-1] + half
            ax.imshow(img, origin="lower", cmap=ListedColormap(list(KIND_COLORS.values())), vmin=0,
                      vmax=len(kinds) - 1, extent=(lo, hi, lo if two_d else 0, hi if two_d else 1), aspect="auto")
            ax.set_xlabel("c1")
            ax.set_ylabel("c2" if two_d else "")
            ax.set_title(f"context {ctx}" if ctx is not None else "stimulus stage")
        handles = [plt.Rectangle((0, 0), 1, 1, color=col) for col in KIND_COLORS.values()]
        fig.legend(handles, kinds, loc="lower center", ncol=len(kinds), fontsize=8)
        fig.tight_layout(rect=(0, 0.08, 1, 1))
        fig.savefig(out / "attractor_map.png", dpi=120)
        plt.close(fig)
    # 2. largest Lyapunov exponent of the dominant attractor against the relevant coherence
    fig, ax = plt.subplots(figsize=(5, 3.5))
    rel = np.array([c["relevant"] for c in conds])
    lam = np.array([float(s[0].lyapunov[0]) if s else np.nan for s in stim])
    col = [KIND_COLORS[s[0].kind] if s else "k" for s in stim]
    finite = np.isfinite(lam)
    ax.scatter(rel[finite], lam[finite], c=np.asarray(col)[finite], s=10)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("relevant coherence")
    ax.set_ylabel("largest Lyapunov exponent (ln / step)")
    fig.tight_layout()
    fig.savefig(out / "lyapunov.png", dpi=120)
    plt.close(fig)
    # 3. PCA of trial trajectories, with stable fixed points and stimulus-stage orbits
    H = run.hidden.reshape(-1, run.hidden.shape[-1]).astype(np.float64)
    valid = (run.trials.stage.reshape(-1) >= 0)
    mu = H[valid].mean(0)
    _, _, Vt = np.linalg.svd(H[valid] - mu, full_matrices=False)
    P = Vt[:2].T
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for n in range(min(40, len(run.hidden))):
        L = int(run.trials.length[n])
        z = (run.hidden[n, :L] - mu) @ P
        ax.plot(z[:, 0], z[:, 1], color="#bbbbbb", lw=0.6)
    for s in stim[:: max(1, len(stim) // 40)]:
        for a in s:
            if a.kind in ("quasi_periodic", "periodic", "chaotic"):
                z = (a.orbit - mu) @ P
                ax.plot(z[:, 0], z[:, 1], ".", ms=1.5, color=KIND_COLORS[a.kind])
    if len(fps):
        z = (fps - mu) @ P
        ax.plot(z[:, 0], z[:, 1], "k*", ms=8, label="stable fixed points (delay/decision)")
        ax.legend(fontsize=8)
    ax.set_xlabel("PC1")
    ax.set_ylabel("PC2")
    fig.tight_layout()
    fig.savefig(out / "trajectories_pca.png", dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------- entry point
def run_dynamics_command(args: argparse.Namespace) -> int:
    """``dmd analyze dynamics`` handler."""
    import torch

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    from agents import ModelLoadError

    try:
        summary = analyze_dynamics(args.model, args)
    except (FileNotFoundError, ModelLoadError) as err:
        print(f"dmd analyze dynamics: {err}", file=sys.stderr)
        return 2
    stim = summary.get("stimulus", {})
    print(f"stimulus stage: {stim.get('n_attractors', 0)} attractors {stim.get('counts', {})}, "
          f"QP fraction {stim.get('qp_fraction', 0):.3f}")
    for stage, b in summary["decision_basins"].items():
        if b["basin_matches_correct_choice"] is not None:
            print(f"{stage} stage: basin of the end-of-stimulus state reads out the correct choice in "
                  f"{b['basin_matches_correct_choice']:.3f} of {b['trials']} trials")
    print(f"wrote {args.out} ({time.perf_counter() - t0:.1f} s)")
    return 0
