"""Population-analysis speed: the full populations / information / robustness analysis of one network.

    OMP_NUM_THREADS=1 python benchmarks/bench_populations.py
    OMP_NUM_THREADS=1 python benchmarks/bench_populations.py --model runs/rl_seed0/final_model.zip
    OMP_NUM_THREADS=1 python benchmarks/bench_populations.py --out bench_out/populations     # also write the report

Workload (issue 5): :func:`analysis.populations.pipeline.run_population_analysis` with its defaults on 1,000 trials of the
network's task: decision/stimulus attractors by iterating the stage maps from 200 end-of-stimulus states, population
assignment, per-unit GCMI with 7 task variables and the two-stage circular-shift test (100 + 10,000 shifts, Holm),
MI per stage, the functional-connectivity graph (100 shifts, 31,125 pairs, Holm) with Louvain communities, the
readout and decoder crystallization, PCA, and the robustness curves (6 noise levels x 1,000 trials, 7 kick sizes,
11 values of k, or every k = 1..50 with ``--full-ablation``, x 3 pools x 5 draws of silenced units). Goal: under 2
minutes.

Network until a trained one exists: ``W_rec, W_in ~ U(-delta, delta)`` and ``W_out ~ U(-0.1, 0.1)`` (the paper's
initialisation, 250 units, ``delta = 0.1``) on level-3 trials; ``--model PATH`` reads a saved model (``.zip``, via
``agents``) or weights (``.npz``).

Ratios against baselines measured in the same run:

* every step against **one forward pass** of the network over the 1,000 trials (the cheapest thing one can do);
* the selectivity shift test against a **straightforward loop** over shifts: the units are copula-normalised once,
  then for every shift the variable is rolled (``np.roll``) and the MI of every unit recomputed (the same vectorised
  estimator), timed on ``--baseline-shifts`` shifts of one discrete and one continuous variable and
  **extrapolated** to the whole test (the output says so).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from analysis.populations.information import _centre, _mi_columns, copnorm, task_variables  # noqa: E402
from analysis.network import Network  # noqa: E402
from analysis.populations.pipeline import run_population_analysis, write_report  # noqa: E402
from dm_envs import make_config, sample_trials  # noqa: E402

GOAL_S = 120.0


def naive_shift_seconds(hidden: np.ndarray, mask: np.ndarray, variables: dict, n_shifts: int, seed: int) -> float:
    """Seconds per (variable, shift) of the straightforward null: roll the variable, recompute every unit's MI."""
    gx = _centre(copnorm(hidden[mask].astype(np.float64), seed=seed))  # once, outside the loop
    rng = np.random.default_rng(seed)
    per = []
    for name in ("context", "relevant_coherence"):
        v = np.asarray(variables[name])
        y = np.broadcast_to(v[:, None], mask.shape)[mask] if v.ndim == 1 else v[mask]
        shifts = rng.integers(hidden.shape[1], len(y) - hidden.shape[1], n_shifts)
        t0 = time.perf_counter()
        discrete = y.dtype.kind in "iu"
        for s in shifts:
            _mi_columns(gx, np.roll(y, s), discrete, biascorrect=False)
        per.append((time.perf_counter() - t0) / n_shifts)
    return float(np.mean(per))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="saved model (.zip) or weights (.npz); default: a random network")
    ap.add_argument("--level", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=250)
    ap.add_argument("--delta", type=float, default=0.1)
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shuffles", type=int, default=10000, help="stage-2 shifts of the selectivity test")
    ap.add_argument("--baseline-shifts", type=int, default=20, help="shifts timed for the naive-null baseline")
    ap.add_argument("--full-ablation", action="store_true", help="silence every k = 1..50 (default: 11 values)")
    ap.add_argument("--attractors", choices=("rollout", "analysis"), default="rollout")
    ap.add_argument("--out", default=None, help="also write the report (JSON, CSV, PNG) here and time it")
    args = ap.parse_args(argv)

    if args.model:
        weights = Network.load(args.model, config=make_config(args.level))
        cfg = weights.config
        net = args.model
    else:
        cfg = make_config(args.level)
        weights = Network.random(args.hidden, cfg.obs_dim, cfg.n_actions, delta=args.delta, seed=args.seed)
        net = f"random U(-{args.delta:g}, {args.delta:g}), {args.hidden} units"
    print(f"network: {net}; task: {cfg.name}; {args.trials} trials; python {platform.python_version()}, "
          f"numpy {np.__version__}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")

    # baseline 1: one forward pass
    trials = sample_trials(cfg, args.trials, args.seed)
    weights.forward(trials.obs[:10])  # warm-up
    t0 = time.perf_counter()
    weights.forward(trials.obs)
    t_forward = time.perf_counter() - t0

    t0 = time.perf_counter()
    rep = run_population_analysis(weights, cfg, n_trials=args.trials, seed=args.seed, n_shuffles=args.shuffles,
                                  ablation_ks=range(1, 51) if args.full_ablation else None,
                                  attractor_source=args.attractors)
    total = time.perf_counter() - t0
    if args.out:
        t1 = time.perf_counter()
        paths = write_report(rep, args.out)
        rep.timings["write report + figures"] = time.perf_counter() - t1
        total += rep.timings["write report + figures"]

    print(f"\n{'step':<26}{'seconds':>9}{'share':>8}{'x forward':>11}")
    for step, sec in rep.timings.items():
        print(f"{step:<26}{sec:>9.2f}{100 * sec / total:>7.1f}%{sec / t_forward:>11.1f}")
    print(f"{'total':<26}{total:>9.2f}{100.0:>7.1f}%{total / t_forward:>11.1f}")
    print(f"baseline: one forward pass over {args.trials} trials = {t_forward:.3f} s")
    verdict = "PASS" if total < GOAL_S else "FAIL"
    print(f"goal: under {GOAL_S:.0f} s -> {verdict} ({total:.1f} s)")

    # baseline 2: the shift test done naively (extrapolated)
    sel = rep.selectivity
    n_tests = len(sel.variables) * (sel.settings["n_shuffles_stage1"] + sel.settings["n_shuffles"])
    per = naive_shift_seconds(rep.hidden, trials.mask, task_variables(trials, choice=rep.scores.choice),
                              args.baseline_shifts, args.seed)
    naive = per * n_tests
    print(f"\nselectivity shift test: {rep.timings['selectivity']:.2f} s for {n_tests} (variable, shift) nulls of "
          f"{rep.hidden.shape[2]} units; a per-shift recomputation takes {per:.3f} s each "
          f"(timed on {2 * args.baseline_shifts}), i.e. ~{naive:.0f} s EXTRAPOLATED "
          f"-> x{naive / rep.timings['selectivity']:.0f} faster")

    s = rep.summary()
    pops = s.get("populations", {})
    print(f"\naccuracy {s['accuracy']:.3f}; populations {pops.get('sizes')}; balance {pops.get('balance')}")
    print(f"fraction selective: { {k: round(v, 2) for k, v in s['selectivity']['fraction_selective'].items()} }")
    print(f"connectivity: {s['connectivity']['n_edges']} edges, modularity {s['connectivity']['graph']['modularity']}")
    if args.out:
        print(f"wrote {len(paths)} files to {args.out}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
