"""Cost of the TensorBoard extras: a level-3 RL run with and without histograms, hparams and the dynamics probe.

    OMP_NUM_THREADS=1 python benchmarks/bench_tensorboard.py                  # 3 pairs, the paper's network
    OMP_NUM_THREADS=1 python benchmarks/bench_tensorboard.py --repeats 5      # more pairs
    OMP_NUM_THREADS=1 python benchmarks/bench_tensorboard.py --max-steps 300000 --hidden-size 64   # a quick look

Workload: ``agents.train_rl`` on the level-3 task with every default (250 units, delta 0.1, 128 envs, the default
schedule: evaluation every 100k env steps, a checkpoint every 500k) and seed 0, which reaches the stopping rule after
about 0.5M env steps (``--max-steps`` caps it). Each pair runs the same training twice in this process, in
alternating order so that load on the machine falls on both alike:

* **bare**: ``tensorboard_extras=False`` and no checkpoint hooks (the scalars only, as before issue 12);
* **full**: the defaults of ``dmd train`` (histograms of ``W_rec``, ``W_in``, the readout and the hidden activity,
  the hyperparameters, and :class:`analysis.dynamics.probe.DynamicsProbe` with its default settings: ``dynamics/*``
  scalars and the two images) at every checkpoint and for the final model.

Every run is a fresh process (as ``dmd train``: imports and first-use costs, such as matplotlib's for the images,
are paid once per run). Training is bit-identical in both (checked: the hashes of the final weights are compared).
Printed per pair: both wall times (the whole process, and the training call inside it) and the time the hooks took
inside the full run (``time/checkpoint_hooks_s``); then the medians, the ratio of the median wall times and the
overhead. Goal (issue 12): at most 10% of a level-3 RL run's wall time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def one_run(mode: str, out: Path, args: argparse.Namespace) -> dict:
    """Train once in this process; print ``{"wall", "hooks", "weights"}`` as JSON (the child of :func:`run_child`)."""
    import hashlib

    import torch

    from agents import train_rl

    torch.set_num_threads(1)
    full = mode == "full"
    hooks_list = []
    if full:
        from analysis.dynamics.probe import DynamicsProbe

        hooks_list = [DynamicsProbe()]
    t0 = time.perf_counter()
    result = train_rl(args.level, seed=args.seed, hidden_size=args.hidden_size, max_steps=args.max_steps,
                      out_dir=out, progress=False, tensorboard_extras=full, checkpoint_hooks=hooks_list)
    wall = time.perf_counter() - t0
    hooks = 0.0
    if full:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        acc = EventAccumulator(str(out / "tb"), size_guidance={"scalars": 0})
        acc.Reload()
        hooks = acc.Scalars("time/checkpoint_hooks_s")[-1].value
    h = hashlib.sha256()
    for k, v in sorted(result.model.policy.state_dict().items()):
        h.update(k.encode())
        h.update(v.numpy().tobytes())
    meta = result.metadata
    return dict(wall=wall, hooks=hooks, weights=h.hexdigest(), status=meta["status"], env_steps=meta["env_steps"])


def run_child(mode: str, out: Path, args: argparse.Namespace) -> dict:
    """One training in a fresh process (as ``dmd train`` runs: every import and first-use cost is paid once per
    run); its wall time is the whole process's."""
    import json
    import subprocess

    cmd = [sys.executable, __file__, "--child", mode, "--out", str(out), "--level", str(args.level),
           "--seed", str(args.seed), "--hidden-size", str(args.hidden_size), "--max-steps", str(args.max_steps)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["process"] = time.perf_counter() - t0
    print(f"  {mode:4s}: process {res['process']:7.1f} s, training {res['wall']:7.1f} s  ({res['status']}, "
          f"{res['env_steps']:,} env steps" + (f", hooks {res['hooks']:.1f} s)" if mode == "full" else ")"),
          flush=True)
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="pairs of runs (3)")
    p.add_argument("--level", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden-size", type=int, default=250)
    p.add_argument("--max-steps", type=int, default=2_000_000, help="env-step cap (the run usually stops earlier)")
    p.add_argument("--child", choices=("bare", "full"), help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        import json

        print(json.dumps(one_run(args.child, Path(args.out), args)))
        return 0

    runs: dict[str, list[dict]] = {"bare": [], "full": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            order = ("bare", "full") if r % 2 == 0 else ("full", "bare")
            print(f"pair {r + 1}/{args.repeats}", flush=True)
            for mode in order:
                runs[mode].append(run_child(mode, Path(tmp) / f"{mode}_{r}", args))
            same = runs["bare"][-1]["weights"] == runs["full"][-1]["weights"]
            print(f"  final weights bit-identical: {same}", flush=True)
            if not same:
                print("ERROR: the extras changed training", file=sys.stderr)
                return 1
    med = {m: {k: statistics.median(x[k] for x in runs[m]) for k in ("process", "wall", "hooks")} for m in runs}
    bare, full = med["bare"]["process"], med["full"]["process"]
    hook = med["full"]["hooks"]
    print(f"\nlevel {args.level}, {args.hidden_size} units, seed {args.seed}, {args.repeats} pairs "
          f"(load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print(f"median wall time per run (whole process): bare {bare:.1f} s, full {full:.1f} s; "
          f"ratio full / bare {full / bare:.3f} (overhead {100 * (full / bare - 1):+.1f}%)")
    pairs = [f["process"] / b["process"] for b, f in zip(runs["bare"], runs["full"])]
    print("ratio per pair: " + ", ".join(f"{r:.3f}" for r in pairs) + f" (median {statistics.median(pairs):.3f})")
    print(f"median training time: bare {med['bare']['wall']:.1f} s, full {med['full']['wall']:.1f} s; "
          f"ratio {med['full']['wall'] / med['bare']['wall']:.3f}")
    print(f"median time in the hooks: {hook:.1f} s = {100 * hook / bare:.1f}% of the bare run (goal: <= 10%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
