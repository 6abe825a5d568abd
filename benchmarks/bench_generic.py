"""Generic-path speed: the default attractor map of a stock LSTM-64 policy against the ReLU path, same size, same run.

    OMP_NUM_THREADS=1 python benchmarks/bench_generic.py                      # train both briefly, then time
    OMP_NUM_THREADS=1 python benchmarks/bench_generic.py --train-steps 0      # untrained networks
    OMP_NUM_THREADS=1 python benchmarks/bench_generic.py --jobs 1 --grid 11   # one process, a smaller grid

Workload: :func:`analysis.attractor_map` with its defaults (level-3 task, stimulus stage, 21 x 21 signed coherences x
2 contexts = 882 inputs, 16 observed + 32 random initial states each, 2,000 transient + 2,000 recorded steps, 2
Lyapunov exponents), on

* a stock ``RecurrentPPO("MlpLstmPolicy", policy_kwargs=dict(lstm_hidden_size=64))`` (sb3-contrib's LSTM actor, a
  64-unit ``(h, c)`` state: 128 dimensions; a 64-64 tanh MLP before the action head): the generic path
  (:mod:`analysis.dynamics.generic`: torch, autograd Jacobians, Newton refinement);
* the package's ``RNNPolicy`` with 64 ReLU units (``delta = 0.1``): the exact piecewise-linear path.

Both are trained for ``--train-steps`` env steps of PPO with the same settings and seed (a few thousand steps: the
landscape of a policy that has begun to learn; 0 leaves them at initialisation), then mapped with ``--jobs`` worker
processes (default -1: one per CPU, as ``dmd analyze dynamics``). Printed: each map's wall time, its counts per
kind, and the ratio generic / ReLU. Goal (issue 12): the LSTM map in under 2 minutes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")



def build(kind: str, train_steps: int, seed: int) -> object:
    """A briefly trained stock LSTM-64 or ReLU-64 model on the level-3 task."""
    import torch
    from sb3_contrib import RecurrentPPO

    import agents
    from dm_envs import make_config
    from dm_envs.sb3 import make_sb3_vec_env

    torch.set_num_threads(1)
    cfg = make_config(3)
    venv = make_sb3_vec_env(8, config=cfg, seed=seed)
    if kind == "lstm":
        model = RecurrentPPO("MlpLstmPolicy", venv, policy_kwargs=dict(lstm_hidden_size=64), n_steps=128,
                             batch_size=256, seed=seed)
    else:
        model = RecurrentPPO(agents.RNNPolicy, venv, policy_kwargs=dict(hidden_size=64, delta=0.1), n_steps=128,
                             batch_size=256, seed=seed)
    if train_steps:
        model.learn(train_steps)
    model.dmd_metadata = {"task_config": cfg.to_dict(), "learning_rule": "rl", "seed": seed}
    return model


def time_map(model: object, grid: int, jobs: int) -> tuple[float, dict]:
    from analysis.dynamics.maps import attractor_map

    t0 = time.perf_counter()
    amap = attractor_map(model, grid, n_jobs=jobs, progress=False)
    return time.perf_counter() - t0, amap.summary()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train-steps", type=int, default=4096, help="PPO env steps before mapping (default 4096)")
    ap.add_argument("--grid", type=int, default=21, help="signed coherences per stream (default 21)")
    ap.add_argument("--jobs", type=int, default=-1, help="worker processes of the search (default -1: one per CPU)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    times = {}
    for kind in ("relu", "lstm"):
        t0 = time.perf_counter()
        model = build(kind, args.train_steps, args.seed)
        print(f"{kind}: built and trained for {args.train_steps} env steps in {time.perf_counter() - t0:.1f} s",
              flush=True)
        times[kind], s = time_map(model, args.grid, args.jobs)
        counts = {k: v for k, v in s["counts"].items() if v}
        print(f"{kind:>4}-64 map ({s['n_points']} inputs): {times[kind]:7.1f} s  {counts}  QP fraction "
              f"{s['qp_fraction']:.3f}", flush=True)
    print(f"ratio generic (LSTM-64) / ReLU (64 units): {times['lstm'] / times['relu']:.1f}x; LSTM map "
          f"{'under' if times['lstm'] < 120 else 'OVER'} the 2-minute goal ({times['lstm']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
