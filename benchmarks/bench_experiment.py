"""Experiment runner speed: the quick preset's wall time, and the local pool against running cells one by one.

    python benchmarks/bench_experiment.py                 # quick preset on the pool, then serially; ratio
    python benchmarks/bench_experiment.py --pool-only     # just the quick preset's wall time (the README's job)
    python benchmarks/bench_experiment.py --seeds 0       # a smaller grid for both runs

Both runs start from empty folders under ``bench_out/`` and do the same work (training, analyses, report).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from analysis.experiments import preset, run_experiment
from analysis.experiments.report import write_report

ROOT = Path(__file__).resolve().parents[1]


def timed_run(spec, out: Path, backend: str, workers: int | None) -> tuple[float, list[dict]]:
    if out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    rows = run_experiment(spec, out, backend=backend, workers=workers, progress=True)
    write_report(out)
    return time.perf_counter() - t0, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="override the preset's seeds")
    parser.add_argument("--workers", type=int, default=None, help="pool size (default: one per core)")
    parser.add_argument("--pool-only", action="store_true", help="skip the serial baseline")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    overrides = {"seeds": args.seeds} if args.seeds else {}
    spec = preset(args.preset, **overrides)
    n = len(spec.cells())
    print(f"{args.preset}: {n} networks ({', '.join(spec.rules)} x deltas {list(spec.deltas)} x seeds "
          f"{list(spec.seeds)} x levels {list(spec.levels)}, {spec.hidden_size} units), {os.cpu_count()} cores")

    pool_s, rows = timed_run(spec, ROOT / "bench_out" / "exp_pool", "local", args.workers)
    done = sum(r["status"] == "done" for r in rows)
    reached = sum(bool((r.get("training") or {}).get("reached_target")) for r in rows)
    print(f"local pool:  {pool_s / 60:6.1f} min  ({done}/{n} cells done, {reached} reached the criterion; "
          f"goal for the quick preset: under 15 min)")
    if args.pool_only:
        return
    serial_s, _ = timed_run(spec, ROOT / "bench_out" / "exp_serial", "serial", None)
    print(f"serial:      {serial_s / 60:6.1f} min")
    print(f"speed-up of the local pool over one cell after another: {serial_s / pool_s:.2f}x")


if __name__ == "__main__":
    main()
