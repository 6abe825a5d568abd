"""``dmd analyze dynamics MODEL.zip --out DIR`` and ``dmd analyze track RUN_DIR --out DIR``.

``dynamics``: the attractor landscape of one saved policy (RL or SL alike), for the task it was trained on:

* **stimulus stage**: :func:`analysis.attractor_map` over the coherence grid (``--grid`` values per stream) in every
  context, from ``--observed`` states observed at stimulus onset plus ``--n-init`` random states per input;
* **delay and decision stages**: :func:`analysis.attractor_map` per context from the end-of-stimulus states of the
  ``--trials`` trials (decision attractors ``FP+``/``FP-``, each trial's basin against its correct choice and the
  network's own choice), plus every fixed point the exact solver finds (:func:`analysis.fixed_points`).

Writes ``DIR/summary.json`` (every map's numbers: counts per kind, QP fraction overall / per ``|coherence|`` / low and
high halves, multistability, Lyapunov exponents, decision-basin match; timings), ``DIR/attractors.csv`` (one row per
attractor, all stages), ``DIR/basins.csv`` (one row per trial and stage), ``DIR/fixed_points.csv``, the maps
(``attractor_map.{json,npz}``, ``attractor_map_delay.*``, ``attractor_map_decision.*``: :meth:`AttractorMap.save`) and
figures (unless ``--no-figures``): ``attractor_map.png``, ``lyapunov.png``, ``qp_by_coherence.png``,
``trajectories_pca.png``, ``decision_basins.png``.

``track``: :func:`analysis.track` over every checkpoint of a run folder; writes ``DIR/track.json``, ``DIR/track.csv``
and ``DIR/qp_fraction_track.png`` (and every checkpoint's map under ``DIR/maps/`` with ``--save-maps``).

Example:
    dmd analyze dynamics runs/rl_seed0/final_model.zip --out runs/rl_seed0/dynamics
    dmd analyze track runs/rl_seed0 --out runs/rl_seed0/track
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from analysis.outputs import write_rows


def _common(p: argparse.ArgumentParser, grid: int, n_init: int, observed: int, trials: int) -> None:
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--grid", type=int, default=grid, help=f"signed-coherence values per stream (default {grid})")
    p.add_argument("--n-init", type=int, default=n_init, help=f"random initial states per input (default {n_init})")
    p.add_argument("--observed", type=int, default=observed,
                   help=f"observed stimulus-onset states per input (default {observed})")
    p.add_argument("--trials", type=int, default=trials, help=f"trials run (observed states, basins; default {trials})")
    p.add_argument("--n-transient", type=int, default=2000, help="discarded steps (find_attractors)")
    p.add_argument("--n-record", type=int, default=2000, help="recorded steps (find_attractors)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=-1,
                   help="worker processes of the attractor search (default -1: one per CPU; the numbers do not "
                        "depend on it)")
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("--progress", dest="progress", action="store_true", default=True,
                   help="show progress bars (default)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")


def add_analyze_commands(asub: Any) -> None:
    """Register ``dmd analyze dynamics`` and ``dmd analyze track``."""
    p = asub.add_parser(
        "dynamics",
        help="attractor landscape of a saved policy: attractor maps, decision basins, fixed points, Lyapunov exponents",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("model", help="a saved model zip (RL or SL)")
    _common(p, grid=21, n_init=32, observed=16, trials=256)
    p.set_defaults(func=run_dynamics_command)

    t = asub.add_parser(
        "track",
        help="attractor landscape over a run's checkpoints, beside accuracy (progressive sculpting)",
        description="analysis.track over every checkpoint of a run folder",
    )
    t.add_argument("run_dir", help="a run folder (checkpoints/, final_model.zip, metadata.json)")
    _common(t, grid=11, n_init=16, observed=8, trials=128)
    t.add_argument("--stage", nargs="+", default=["stimulus"], choices=["stimulus", "delay", "decision"],
                   help="stage(s) to map; the first gives the main columns (default: stimulus)")
    t.add_argument("--checkpoints", nargs="+", help="checkpoint names to include (default: all)")
    t.add_argument("--evaluate", choices=["missing", "always", "never"], default="missing",
                   help="evaluate accuracy: only checkpoints missing from the accuracy curve (default), all, none")
    t.add_argument("--eval-trials", type=int, default=1000)
    t.add_argument("--change-tol", type=float, default=0.0,
                   help="fraction of grid points whose dominant kind may change between checkpoints and still count "
                        "as no change (summary: map_stable_from; default 0)")
    t.add_argument("--save-maps", action="store_true", help="also save every checkpoint's map under OUT/maps/")
    t.set_defaults(func=run_track_command)


# ---------------------------------------------------------------------------------------------- dynamics
def _basin_rows(dmap: Any) -> list[dict[str, Any]]:
    b = dmap.basins
    labels = dmap.labels()
    rows = []
    for n in range(len(b)):
        row: dict[str, Any] = {"stage": dmap.stage, "trial": n, "context": int(b.context[n])}
        for s in range(b.coherence.shape[1]):
            row[f"c{s + 1}"] = float(b.signed[n, s]) if np.isfinite(b.signed[n, s]) else float(b.coherence[n, s])
        a = int(b.attractor[n])
        row.update(relevant=float(b.relevant[n]), correct_choice=int(b.correct_choice[n]),
                   own_choice=int(b.own_choice[n]), basin=labels[a] if a >= 0 else "", basin_choice=int(b.choice[n]),
                   match=bool(b.match[n]))
        rows.append(row)
    return rows


def _fixed_point_rows(dyn: Any, stage: str, ctx: int, x: np.ndarray, seeds: np.ndarray, seed: int) -> list[dict]:
    from analysis.fixed_points import fixed_points
    from analysis.maps import attractor_label, choice_readout

    out = []
    for fp in fixed_points(dyn, x, init_states=seeds, n_init=32, seed=seed):
        choice = int(choice_readout(dyn, fp.state))
        out.append({"stage": stage, "context": ctx, "stable": fp.stable, "spectral_radius": fp.spectral_radius,
                    "n_active": fp.n_active, "choice": choice,
                    "label": ("" if fp.stable else "unstable ") + attractor_label("fixed_point", choice,
                                                                                  dyn.config.n_choices),
                    "action": fp.decision, "norm": fp.norm, "residual": fp.residual})
    return out


def analyze_dynamics(model_path: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Compute every map of ``model_path`` and write the outputs to ``args.out``; return the summary."""
    import agents
    from analysis.dynamics import load_dynamics, rollout
    from analysis.maps import _json_safe, attractor_map
    from dm_envs import stage_input

    out = Path(args.out)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    model = agents.load_model(model_path)
    dyn = load_dynamics(model)
    if dyn.config is None:
        raise SystemExit("dmd analyze dynamics: the model carries no task config (dmd_metadata['task_config'])")
    out.mkdir(parents=True, exist_ok=True)
    cfg = dyn.config
    run = rollout(model, args.trials, seed=args.seed, noise=True)
    timings["rollout"] = time.perf_counter() - t0
    kw = dict(n_transient=args.n_transient, n_record=args.n_record, n_jobs=args.jobs)
    maps = {}
    for stage in ("stimulus", "delay", "decision"):
        t0 = time.perf_counter()
        maps[stage] = attractor_map(model, args.grid, stage, n_init=args.n_init, seed=args.seed,
                                    observed=args.observed > 0, n_observed=args.observed, rollout=run,
                                    progress=args.progress, **kw)
        maps[stage].info["model"] = str(model_path)
        maps[stage].save(out)
        timings[f"{stage}_map"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    end = run.stage_states("stimulus", "last").astype(np.float64)
    rng = np.random.default_rng(args.seed)
    contexts = maps["delay"].contexts
    fp_rows: list[dict[str, Any]] = []
    for stage in ("delay", "decision"):
        for ctx in contexts:
            sel = np.flatnonzero(run.trials.context == ctx)
            seeds = end[np.sort(rng.choice(sel, min(64, sel.size), replace=False))] if sel.size else None
            fp_rows += _fixed_point_rows(dyn, stage, int(ctx), stage_input(cfg, stage, context=int(ctx)), seeds,
                                         args.seed)
    timings["fixed_points"] = time.perf_counter() - t0

    basins = {
        stage: {"trials": len(maps[stage].basins), "basin_matches_correct_choice": maps[stage].basins.basin_match,
                "basin_match_own_choice": maps[stage].basins.basin_match_own_choice}
        for stage in ("delay", "decision")
    }
    summary: dict[str, Any] = dict(
        model=str(model_path), learning_rule=dyn.metadata.get("learning_rule"), env_steps=dyn.metadata.get("env_steps"),
        task=cfg.to_dict(), grid=args.grid, n_init=args.n_init, observed=args.observed, trials=args.trials,
        n_transient=args.n_transient, n_record=args.n_record, seed=args.seed,
        **{stage: m.to_dict() for stage, m in maps.items()}, decision_basins=basins,
        fixed_points={stage: {"stable": sum(r["stable"] for r in fp_rows if r["stage"] == stage),
                              "unstable": sum(not r["stable"] for r in fp_rows if r["stage"] == stage)}
                      for stage in ("delay", "decision")},
        timings_s=timings,
    )
    write_rows(out / "attractors.csv", [r for m in maps.values() for r in m.rows()])
    write_rows(out / "basins.csv", _basin_rows(maps["delay"]) + _basin_rows(maps["decision"]))
    write_rows(out / "fixed_points.csv", fp_rows)
    if not args.no_figures:
        t0 = time.perf_counter()
        write_figures(out, maps, run)
        timings["figures"] = time.perf_counter() - t0
    (out / "summary.json").write_text(json.dumps(_json_safe(summary), indent=1) + "\n")
    return summary


def write_figures(out: Path, maps: dict[str, Any], run: Any) -> list[Path]:
    """Write the dynamics figures of ``maps`` (``stimulus``, ``delay``, ``decision``) into ``out``."""
    from analysis import figures_dynamics as fd

    paths = []
    stim = maps.get("stimulus")
    if stim is not None:
        for name, fn in (("attractor_map.png", fd.plot_attractor_map), ("lyapunov.png", fd.plot_lyapunov),
                         ("qp_by_coherence.png", fd.plot_qp_by_coherence)):
            fn(stim, out / name)
            paths.append(out / name)
    fd.plot_trajectories_pca(run, [m for m in maps.values() if m is not None], out / "trajectories_pca.png")
    paths.append(out / "trajectories_pca.png")
    dec = maps.get("decision") or maps.get("delay")
    if dec is not None and dec.basins is not None:
        fd.plot_decision_basins(run, dec, out / "decision_basins.png")
        paths.append(out / "decision_basins.png")
    return paths


def _set_threads() -> None:
    import torch

    torch.set_num_threads(1)


def run_dynamics_command(args: argparse.Namespace) -> int:
    """``dmd analyze dynamics`` handler."""
    _set_threads()
    t0 = time.perf_counter()
    from agents import ModelLoadError

    try:
        summary = analyze_dynamics(args.model, args)
    except (FileNotFoundError, ModelLoadError) as err:
        print(f"dmd analyze dynamics: {err}", file=sys.stderr)
        return 2
    s = summary["stimulus"]
    print(f"stimulus stage: {s['n_attractors']} attractors {s['counts']}, QP fraction {s['qp_fraction']:.3f} "
          f"(low-coherence half {_fmt(s.get('qp_fraction_low_coherence'))}, high half "
          f"{_fmt(s.get('qp_fraction_high_coherence'))}), mean multistability {s['mean_multistability']:.2f}")
    for stage in ("delay", "decision"):
        d = summary[stage]
        labels = sorted({a["label"] for a in d["decision_attractors"] if a["trials"]})
        print(f"{stage} stage: attractors {', '.join(labels)}; the trial's basin reads out the correct choice in "
              f"{_fmt(d['basin_match'])} of {d['n_trials']} trials (the network's own choice in "
              f"{_fmt(d['basin_match_own_choice'])})")
    print(f"wrote {args.out} ({time.perf_counter() - t0:.1f} s)")
    return 0


def _fmt(v: Optional[float]) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.3f}"


# ---------------------------------------------------------------------------------------------- track
def run_track_command(args: argparse.Namespace) -> int:
    """``dmd analyze track`` handler."""
    _set_threads()
    t0 = time.perf_counter()
    from analysis.figures_dynamics import plot_qp_track
    from analysis.maps import track

    try:
        tr = track(args.run_dir, args.grid, args.stage, n_init=args.n_init, n_observed=args.observed,
                   trials=args.trials, seed=args.seed, checkpoints=args.checkpoints, evaluate=args.evaluate,
                   eval_trials=args.eval_trials, change_tol=args.change_tol, progress=args.progress,
                   n_transient=args.n_transient, n_record=args.n_record, n_jobs=args.jobs)
    except (FileNotFoundError, ValueError) as err:
        print(f"dmd analyze track: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    tr.save(out, save_maps=args.save_maps)
    if not args.no_figures:
        plot_qp_track(tr, out / "qp_fraction_track.png")
    for r in tr.rows:
        print(f"{r['checkpoint']:>16} progress {r['progress']:.2f}  accuracy {_fmt(r['accuracy'])}  "
              f"QP fraction {_fmt(r['qp_fraction'])}  attractors {r['n_attractors']}")
    s = tr.summary
    print(f"QP fraction {_fmt(s['qp_fraction']['initial'])} -> {_fmt(s['qp_fraction']['final'])} "
          f"(range {_fmt(s['qp_range'])}); dominant-kind map stable from {s['map_stable_from']['checkpoint']} "
          f"(progress {s['map_stable_from']['progress']:.2f}); wrote {out} ({time.perf_counter() - t0:.1f} s)")
    return 0
