"""``dmd analyze dynamics|track|populations|crystallization``: the analyses of saved policies, from the shell.

Each handler parses its options, calls the library and prints a summary line:

=================================  =========================================================================
``dmd analyze dynamics MODEL``     :func:`analysis.dynamics.pipeline.run_dynamics_analysis`: attractor maps,
                                   decision basins, fixed points, Lyapunov exponents
``dmd analyze track RUN``          :func:`analysis.dynamics.tracking.track`: the landscape over checkpoints
``dmd analyze populations MODEL``  :func:`analysis.populations.pipeline.run_population_analysis`: G+/G-/Ga/Gs
                                   and balance, information, connectivity, crystallization, PCA, robustness
``dmd analyze crystallization RUN``  :func:`analysis.populations.tracking.track_populations`: when population
                                   membership stops changing over training
=================================  =========================================================================

``dynamics`` and ``populations`` take any sb3-contrib recurrent policy (the package's ReLU RNN exactly, LSTM/GRU
policies by :mod:`analysis.dynamics.generic` and :mod:`analysis.populations.generic`, whose units are the core's
``h``); ``dynamics`` and ``populations`` take the task of a model saved without metadata
from ``--level N`` / ``-o KEY=VALUE``; every command that draws figures takes ``--format png|pdf|svg``.

Examples::

    dmd analyze dynamics runs/rl_seed0/final_model.zip --out runs/rl_seed0/dynamics
    dmd analyze dynamics lstm.zip --level 3 --out out/lstm --format pdf
    dmd analyze track runs/rl_seed0 --out runs/rl_seed0/track
    dmd analyze track runs/lstm -c 3 --out out/lstm_track             # plain SB3 checkpoints of an LSTM policy
    dmd analyze populations runs/rl_seed0/final_model.zip --out runs/rl_seed0/populations
    dmd analyze crystallization runs/rl_seed0 --out runs/rl_seed0/crystallization
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Optional

from agents.cli import COUNT, FRACTION, NON_NEGATIVE, POSITIVE_INT, existing_folder, output_folder, task_override
from analysis.populations.pipeline import STEPS as POPULATION_STEPS


def add_commands(sub: Any) -> None:
    """Register ``dmd analyze`` and its subcommands."""
    p = sub.add_parser("analyze", help="measure the dynamics of saved policies (RL or SL)")
    asub = p.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)
    _add_dynamics(asub)
    _add_track(asub)
    _add_populations(asub)
    _add_crystallization(asub)


def _map_options(p: argparse.ArgumentParser, grid: int, n_init: int, observed: int, trials: int) -> None:
    _out_option(p)
    p.add_argument("--grid", type=POSITIVE_INT, default=grid,
                   help=f"signed-coherence values per stream (default {grid})")
    p.add_argument("--n-init", type=POSITIVE_INT, default=n_init,
                   help=f"random initial states per input (default {n_init})")
    p.add_argument("--observed", type=COUNT, default=observed,
                   help=f"observed stimulus-onset states per input (default {observed})")
    p.add_argument("--trials", type=POSITIVE_INT, default=trials,
                   help=f"trials run (observed states, basins; default {trials})")
    p.add_argument("--n-transient", type=COUNT, default=2000, help="discarded steps (find_attractors)")
    p.add_argument("--n-record", type=POSITIVE_INT, default=2000, help="recorded steps (find_attractors)")
    _seed_option(p)
    p.add_argument("--jobs", type=int, default=-1,
                   help="worker processes of the attractor search (default -1: one per CPU; the numbers do not "
                        "depend on it)")
    p.add_argument("--no-figures", action="store_true")
    _format_option(p)
    _progress_options(p)


def _format_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", dest="fmt", choices=("png", "pdf", "svg"), default="png",
                   help="file format of the figures (default png)")


def _task_options(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--level", "--complexity", "-c", type=int, choices=(1, 2, 3, 4), default=None,
                   help=f"task level (default: {default})")
    p.add_argument("--task-override", "-o", action="append", default=[], metavar="KEY=VALUE", type=task_override,
                   help="task field override, value as JSON (e.g. noise_amplitude=0.3), on --level or the "
                        "model's own task; repeatable")


def _task_config(args: argparse.Namespace, fallback: Optional[int] = None) -> Any:
    """The task of ``--level`` / ``-o`` (overrides apply to the level given, else to the model's own task,
    else to level ``fallback``); ``None`` when neither flag is given."""
    from agents.cli import parse_overrides
    from dm_envs import make_config

    overrides = parse_overrides(args.task_override)
    if args.level is not None:
        return make_config(args.level, **overrides)
    if not overrides:
        return None
    import agents

    try:
        return agents.task_config_of(args.model).replace(**overrides)
    except (ValueError, KeyError, FileNotFoundError):  # no metadata: overrides on the fallback level
        if fallback is None:
            raise ValueError(f"{args.model} carries no task config: -o needs --level N") from None
        return make_config(fallback, **overrides)


def _out_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=output_folder, help="output folder")


def _seed_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=COUNT, default=0, help="seed of every random draw (default 0)")


def _progress_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--progress", dest="progress", action="store_true", default=True,
                   help="show progress bars (default)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")


# ---------------------------------------------------------------------------------------------- dynamics
def _add_dynamics(asub: Any) -> None:
    p = asub.add_parser(
        "dynamics",
        help="attractor landscape of a saved policy: attractor maps, decision basins, fixed points, Lyapunov exponents",
        description="The attractors of every stage of a saved policy (analysis.dynamics.pipeline).",
    )
    p.add_argument("model", help="a saved model zip (RL or SL; any sb3-contrib RecurrentPPO model: the package's "
                                 "ReLU RNN exactly, LSTM/GRU policies by the generic path)")
    _task_options(p, "the model's own; required for models saved without it")
    _map_options(p, grid=21, n_init=32, observed=16, trials=256)
    p.set_defaults(func=_run_dynamics)


def _run_dynamics(args: argparse.Namespace) -> int:
    from analysis.dynamics.generic import load_dynamics
    from analysis.dynamics.pipeline import run_dynamics_analysis

    _one_torch_thread()
    t0 = time.perf_counter()
    config = _task_config(args)
    load_dynamics(args.model)  # a missing, corrupt or non-finite model fails here, in one line naming the file
    _make_folder(args.out)
    summary = run_dynamics_analysis(
        args.model, args.out, config=config, grid=args.grid, n_init=args.n_init, observed=args.observed,
        trials=args.trials, n_transient=args.n_transient, n_record=args.n_record, seed=args.seed, jobs=args.jobs,
        figures=not args.no_figures, fmt=args.fmt, progress=args.progress,
    )
    if summary["dynamics"] != "relu_exact":
        print(f"{summary['dynamics'].removeprefix('generic_').upper()} policy, state size {summary['state_size']}: "
              "generic path (analysis.dynamics.generic)")
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


# ---------------------------------------------------------------------------------------------- track
def _add_track(asub: Any) -> None:
    t = asub.add_parser(
        "track",
        help="attractor landscape over a run's checkpoints, beside accuracy (progressive sculpting)",
        description="analysis.dynamics.tracking.track over every checkpoint of a run folder",
    )
    t.add_argument("run_dir", type=existing_folder,
                   help="a run folder (checkpoints/, final_model.zip, metadata.json), or a folder of plain SB3 zips of "
                        "any recurrent policy (checkpoints/*.zip from CheckpointCallback, final_model.zip; with -c)")
    _task_options(t, "the run's own; required for plain SB3 zips")
    _map_options(t, grid=11, n_init=16, observed=8, trials=128)
    t.add_argument("--stage", nargs="+", default=["stimulus"], choices=["stimulus", "delay", "decision"],
                   help="stage(s) to map; the first gives the main columns (default: stimulus)")
    t.add_argument("--checkpoints", nargs="+", help="checkpoint names to include (default: all)")
    t.add_argument("--evaluate", choices=["missing", "always", "never"], default="missing",
                   help="evaluate accuracy: only checkpoints missing from the accuracy curve (default), all, none")
    t.add_argument("--eval-trials", type=POSITIVE_INT, default=1000)
    t.add_argument("--change-tol", type=FRACTION, default=0.0,
                   help="fraction of grid points whose dominant kind may change between checkpoints and still count "
                        "as no change (summary: map_stable_from; default 0)")
    t.add_argument("--save-maps", action="store_true", help="also save every checkpoint's map under OUT/maps/")
    t.set_defaults(func=_run_track)


def _run_track(args: argparse.Namespace) -> int:
    from analysis.dynamics.figures import plot_qp_track
    from analysis.dynamics.tracking import track

    _one_torch_thread()
    t0 = time.perf_counter()
    args.model = str(Path(args.run_dir) / "final_model.zip")  # whose task -o overrides without --level
    config = _task_config(args)
    out = _make_folder(args.out)
    tr = track(args.run_dir, args.grid, args.stage, config=config, n_init=args.n_init, n_observed=args.observed,
               trials=args.trials, seed=args.seed, checkpoints=args.checkpoints, evaluate=args.evaluate,
               eval_trials=args.eval_trials, change_tol=args.change_tol, progress=args.progress,
               n_transient=args.n_transient, n_record=args.n_record, n_jobs=args.jobs)
    tr.save(out, save_maps=args.save_maps)
    if not args.no_figures:
        plot_qp_track(tr, out / f"qp_fraction_track.{args.fmt}")
    for r in tr.rows:
        print(f"{r['checkpoint']:>16} progress {r['progress']:.2f}  accuracy {_fmt(r['accuracy'])}  "
              f"QP fraction {_fmt(r['qp_fraction'])}  attractors {r['n_attractors']}")
    s = tr.summary
    print(f"QP fraction {_fmt(s['qp_fraction']['initial'])} -> {_fmt(s['qp_fraction']['final'])} "
          f"(range {_fmt(s['qp_range'])}); dominant-kind map stable from {s['map_stable_from']['checkpoint']} "
          f"(progress {s['map_stable_from']['progress']:.2f}); wrote {out} ({time.perf_counter() - t0:.1f} s)")
    return 0


# ---------------------------------------------------------------------------------------------- populations
def _add_populations(asub: Any) -> None:
    p = asub.add_parser(
        "populations",
        help="populations (G+/G-/Ga/Gs, balance), selectivity (GCMI), connectivity, crystallization, PCA, robustness",
        description="Reads a saved model (MODEL.zip; its task comes from the model's metadata) or plain weights "
                    "(MODEL.npz with W_rec, W_in, W_out and optional b_rec, b_out; pass --level), and writes "
                    "OUT/summary.json, CSV tables and figures.",
    )
    p.add_argument("model", help="saved model (.zip) or weights (.npz with W_rec, W_in, W_out)")
    _out_option(p)
    _task_options(p, "the model's own task; 3 for .npz and models saved without one")
    p.add_argument("--trials", type=POSITIVE_INT, default=1000, help="evaluation trials (default 1000)")
    _seed_option(p)
    p.add_argument("--gs", choices=("silent", "stimulus"), default="stimulus",
                   help="reading of the Gs group: stimulus-selective (default, the paper's) or silent (before issue 10)")
    p.add_argument("--attractors", choices=("rollout", "analysis"), default="rollout",
                   help="how decision/stimulus attractors are found: iterate the stage maps (rollout, default) or "
                        "the attractor analysis (analysis.dynamics.attractors)")
    p.add_argument("--decision-states", choices=("auto", "attractors", "delay_end"), default="auto",
                   help="decision signatures: delay-map attractors, end-of-delay states, or auto (attractors when "
                        "every choice has a bounded one)")
    p.add_argument("--threshold", type=NON_NEGATIVE, default=None,
                   help="activity threshold on attractors (default 1e-6 for the ReLU RNN; 0.1 on |h| for LSTM, GRU "
                        "and tanh cores, whose units are signed)")
    p.add_argument("--shuffles", type=COUNT, default=10000, help="stage-2 circular shifts of the selectivity test")
    p.add_argument("--joint-information", action="store_true",
                   help="also the joint GCMI of each population with each variable (per stage)")
    p.add_argument("--skip", nargs="*", default=[], choices=POPULATION_STEPS[2:], help="steps to skip")
    p.add_argument("--no-figures", action="store_true")
    _format_option(p)
    _progress_options(p)
    p.set_defaults(func=_run_populations)


def _run_populations(args: argparse.Namespace) -> int:
    from analysis.network import Network
    from analysis.populations.pipeline import run_population_analysis, step_progress, write_report
    from dm_envs import make_config

    from analysis.populations.generic import generic_map

    config = _task_config(args, fallback=3)
    net = generic_map(args.model, config)  # any other recurrent policy: its units are the core's h
    if net is None:
        net = Network.load(args.model, config=config)
    out = _make_folder(args.out)
    if net.config is None:  # plain weights or a model without --level: the paper's task
        net = net.with_config(make_config(3))
    if not isinstance(net, Network):
        print(f"{net.kind.upper()} policy: units = {_unit_text(net)}, active when |h| > "
              f"{_threshold_text(args.threshold)}; {net.n_units} units (generic path, analysis.populations.generic)")
    with step_progress(len(POPULATION_STEPS) - len(set(args.skip)), enabled=args.progress):  # a bar from the start
        rep = run_population_analysis(net, n_trials=args.trials, seed=args.seed, skip=args.skip, gs=args.gs,
                                      threshold=args.threshold, n_shuffles=args.shuffles, progress=args.progress,
                                      attractor_source=args.attractors, decision_states=args.decision_states,
                                      joint_information=args.joint_information)
    paths = write_report(rep, out, figures=not args.no_figures, fmt=args.fmt)
    s = rep.summary()
    line = f"accuracy {s['accuracy']:.3f}"
    if "populations" in s:
        sizes = s["populations"]["sizes"]
        line += f" | G+ {sizes['G+']} G- {sizes['G-']} Ga {sizes['Ga']} Gs {sizes['Gs']} | balance " + (
            f"{s['populations']['balance']:.2f}" if s["populations"]["balance"] is not None else "n/a")
    print(line)
    for note in rep.notes:
        print(f"note: {note}")
    print(f"wrote {len(paths)} files to {args.out} in {sum(rep.timings.values()):.1f} s")
    return 0


# ---------------------------------------------------------------------------------------------- crystallization
def _add_crystallization(asub: Any) -> None:
    p = asub.add_parser("crystallization", help="population membership over a run's checkpoints: when it stops changing")
    p.add_argument("run", type=existing_folder, help="a run folder (final_model.zip, checkpoints/), or of plain SB3 "
                                                     "zips of any recurrent policy (with -c)")
    _out_option(p)
    _task_options(p, "the run's own; required for plain SB3 zips")
    p.add_argument("--trials", type=POSITIVE_INT, default=200)
    _seed_option(p)
    p.add_argument("--gs", choices=["silent", "stimulus"], default="stimulus")
    p.add_argument("--jaccard", type=FRACTION, default=0.9, help="Jaccard threshold of a stable transition")
    _format_option(p)
    _progress_options(p)
    p.set_defaults(func=_run_crystallization)


def _run_crystallization(args: argparse.Namespace) -> int:
    from analysis.populations.figures import plot_population_track
    from analysis.populations.tracking import track_populations

    args.model = str(Path(args.run) / "final_model.zip")  # whose task -o overrides without --level
    config = _task_config(args)
    out = _make_folder(args.out)
    tracking = track_populations(args.run, n_trials=args.trials, seed=args.seed, gs=args.gs, config=config,
                                 jaccard_threshold=args.jaccard, progress=args.progress)
    tracking.save(out)
    plot_population_track(tracking, out / f"population_track.{args.fmt}")
    at = tracking.summary["crystallized_at"]
    where = "never (membership still changes at the last checkpoint)" if at is None else (
        f"at {at['checkpoint']} ({at['env_steps']} env steps, {at['progress']:.0%} of training)")
    print(f"population membership crystallised {where}; written to {args.out}")
    return 0


# ---------------------------------------------------------------------------------------------- helpers
def _unit_text(dyn: Any) -> str:
    from analysis.populations.generic import UNIT_TEXT

    return UNIT_TEXT.get(dyn.kind, UNIT_TEXT["custom"])


def _threshold_text(threshold: Optional[float]) -> str:
    from analysis.populations.generic import GENERIC_THRESHOLD

    return f"{GENERIC_THRESHOLD if threshold is None else threshold:g}"


def _make_folder(path: str) -> Path:
    """Create an output folder before the work starts (so an unwritable one fails at once, not after it)."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)


def _fmt(v: Optional[float]) -> str:
    import math

    return "n/a" if v is None or not math.isfinite(v) else f"{v:.3f}"
