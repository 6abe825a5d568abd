"""Attractor-map speed: the stimulus-stage attractor map of a 250-unit network, batched vs a one-state-at-a-time loop.

    OMP_NUM_THREADS=1 python benchmarks/bench_analysis.py                       # hybrid + random networks
    OMP_NUM_THREADS=1 python benchmarks/bench_analysis.py --network random --delta 0.08 0.12 0.16
    OMP_NUM_THREADS=1 python benchmarks/bench_analysis.py --model runs/rl_seed0/final_model.zip
    OMP_NUM_THREADS=1 python benchmarks/bench_analysis.py --model runs/sl/final_model.zip --transient-dtype float64

Workload (issue 4): the level-3 task's noise-free stimulus-stage input ``dm_envs.stage_input(cfg, "stimulus",
signed_coherence=(c1, c2), context=k)`` over a ``G x G`` grid of signed coherences in ``[-c_max, c_max]`` (default
21 x 21) in both contexts (882 inputs), 32 random initial states each, classified by
:func:`analysis.find_attractors` with its defaults (2,000 transient + 2,000 recorded steps, 2 Lyapunov exponents).

The batched search runs on every CPU (``--jobs``, default -1: ``find_attractors(n_jobs=-1)``, one process per CPU);
the summary gives the speed-up in wall time and in CPU seconds (this process and its workers), the latter free of
the parallelism. Baseline: the same recipe run by a straightforward loop, one initial state at a time (numpy mat-vec products;
per-step fixed-point and divergence checks, then the recording with QR Lyapunov frame and first-return period test).
It is timed on a random subset of the (input, initial state) pairs (``--baseline-states``) and **extrapolated** to
the whole workload; the output says so. Also compared: the exact fixed-point solver against the gradient speed
minimiser (time, number found, residuals, distance between matched points).

With ``--model`` the whole map is also timed end to end through :func:`analysis.attractor_map` (the same
workload: 32 random states per input, no observed states; plus the map's bookkeeping). ``--transient-dtype``
chooses the arithmetic of the batched transient (default ``auto``: float32 for 250 units, see
:func:`analysis.find_attractors`; ``float64`` is the paper's recipe); the loop baseline is always float64.

Networks:

* ``random``: ``W_rec, W_in ~ U(-delta, delta)`` (``delta * sqrt(250 / 3)`` is about the spectral radius). Such
  networks have only fixed points (small delta) or diverge (large delta): the cheap end of the workload.
* ``hybrid``: a synthetic stand-in for an RL network's landscape: a 10-unit piecewise-linear oscillator (an expanding
  rotation confined by ReLU "walls": an attracting invariant curve) whose centre is shifted by the evidence
  ``c1 + c2``, driving a 240-unit random bulk (``delta = 0.08``). Low ``|c1 + c2|`` gives quasi-periodic attractors,
  larger ones mode-locked cycles, the largest fixed points: the expensive end (almost every input has a
  non-stationary attractor).
* ``--model PATH``: a saved policy (``analysis.Network.load``).
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import sys
import time
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from analysis.dynamics.attractors import _initial_states, find_attractors  # noqa: E402
from analysis.network import Network  # noqa: E402
from analysis.dynamics.fixed_point import fixed_points  # noqa: E402

H = 250


# ---------------------------------------------------------------------------------------------- networks
def random_network(delta: float, D: int, seed: int = 0) -> Network:
    rng = np.random.default_rng(seed)
    return Network(rng.uniform(-delta, delta, (H, H)), rng.uniform(-delta, delta, (H, D)))


def _rot(th: float) -> np.ndarray:
    return np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])


def hybrid_network(D: int, seed: int = 0, delta: float = 0.08, beta: float = 1.5) -> Network:
    """The ``hybrid`` stand-in (see the module docstring); input channel 0 (fixation, 1 in the stimulus stage)
    carries the oscillator's constants and channels 1-4 the evidence ``(s1a - s1b) + (s2a - s2b) = c1 + c2``."""
    rng = np.random.default_rng(seed)
    nf, offset = 8, 3.0
    ang = np.arange(nf) * 2 * np.pi / nf + 0.3
    N = np.stack([np.cos(ang), np.sin(ang)], 1)  # wall normals
    A = 1.1 * _rot(1.0)  # expanding rotation
    V = -A @ N.T  # push back through a wall: x' = A (x - N^T relu(N x - 1))
    o = np.full(2, offset)  # x lives in units p = x + o > 0 (always active)
    n = 2 + nf
    W = np.zeros((H, H))
    W_in = np.zeros((H, D))
    W[:2, :2], W[:2, 2:n] = A, V
    W[2:n, :2], W[2:n, 2:n] = N @ A, N @ V
    W_in[:2, 0] = o - A @ o
    W_in[2:n, 0] = -N @ (A @ o) - 1.0
    ev = np.zeros(D)
    ev[1:5] = [1.0, -1.0, 1.0, -1.0]
    u = beta * np.array([1.0, 0.3])  # drift of the oscillator's centre per unit of evidence
    W_in[:2] += np.outer(u, ev)
    W_in[2:n] += np.outer(N @ u, ev)
    W[n:, n:] = rng.uniform(-delta, delta, (H - n, H - n))
    W[n:, :n] = rng.uniform(-delta, delta, (H - n, n))
    W_in[n:] = rng.uniform(-delta, delta, (H - n, D))
    return Network(W, W_in)


def grid_inputs(cfg: Any, n_grid: int) -> np.ndarray:
    import dm_envs

    c_max = max(cfg.coherences)
    g = np.linspace(-c_max, c_max, n_grid)
    c1, c2 = np.meshgrid(g, g, indexing="ij")
    sc = np.stack([c1.ravel(), c2.ravel()], -1)
    contexts = range(cfg.n_streams) if cfg.has_context else [0]
    return np.concatenate([dm_envs.stage_input(cfg, "stimulus", signed_coherence=sc, context=k) for k in contexts])


# ---------------------------------------------------------------------------------------------- baseline
def loop_one(dyn: Network, x: np.ndarray, h0: np.ndarray, rng: np.random.Generator, kw: dict) -> str:
    """One initial state, the straightforward way: the recipe step by step with mat-vec products."""
    W, c = dyn.W_rec, dyn.drive(x)
    h = h0.copy()
    for _ in range(kw["n_transient"]):
        h_new = np.maximum(W @ h + c, 0.0)
        norm = np.linalg.norm(h_new)
        if not np.isfinite(norm) or norm > kw["divergence_norm"]:
            return "divergent"
        if np.linalg.norm(h_new - h) < kw["fp_tol"] * (1.0 + norm):
            return "fixed_point"
        h = h_new
    k, n_rec, qr_every = kw["n_lyap"], kw["n_record"], kw["qr_every"]
    Q = np.linalg.qr(rng.standard_normal((len(h), k)))[0]
    growth = np.zeros(k)
    n_acc = 0
    j_ref = max(0, n_rec - kw["max_period"])
    h_ref, period = h.copy(), None
    for j in range(1, n_rec + 1):
        pre = W @ h + c
        h_new = np.maximum(pre, 0.0)
        Q = (pre > 0)[:, None] * (W @ Q)
        if j % qr_every == 0:
            Q, R = np.linalg.qr(Q)
            if j > kw["lyap_warmup"]:
                growth += np.log(np.abs(np.diag(R)) + 1e-300)
                n_acc += qr_every
        norm = np.linalg.norm(h_new)
        if not np.isfinite(norm) or norm > kw["divergence_norm"]:
            return "divergent"
        if np.linalg.norm(h_new - h) < kw["fp_tol"] * (1.0 + norm):
            return "fixed_point"
        if j == j_ref:
            h_ref = h_new.copy()
        elif j > j_ref and period is None and np.linalg.norm(h_new - h_ref) < kw["period_tol"] * (1 + norm):
            period = j - j_ref
        h = h_new
    lam1 = growth.max() / max(1, n_acc)
    if period is not None:
        return "periodic"
    return "chaotic" if lam1 > kw["lyap_eps"] else "quasi_periodic" if lam1 >= -kw["lyap_eps"] else "periodic"


DEFAULTS = dict(n_transient=2000, n_record=2000, divergence_norm=1e6, fp_tol=1e-8, n_lyap=2, qr_every=5,
                max_period=1000, lyap_warmup=200, period_tol=1e-6, lyap_eps=2e-3)


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the attractor search's worker processes)."""
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + ch.ru_utime + ch.ru_stime


def bench_map(dyn: Network, X: np.ndarray, n_init: int, n_base: int, label: str, **kw: Any) -> dict:
    N = len(X)
    print(f"\n== {label}: {N} inputs x {n_init} initial states = {N * n_init} orbits, H = {dyn.hidden_size}"
          f"{'; ' + str(kw) if kw else ''}")
    t0, c0 = time.perf_counter(), _cpu()
    res = find_attractors(dyn, X, n_init=n_init, seed=0, **kw)
    t_batch, c_batch = time.perf_counter() - t0, _cpu() - c0
    kinds = collections.Counter(a.kind for r in res for a in r)
    n_att = np.array([len(r) for r in res])
    qp = kinds["quasi_periodic"] / max(1, sum(kinds.values()))
    print(f"batched find_attractors: {t_batch:.1f} s wall, {c_batch:.1f} s CPU (this process and its workers)")
    print(f"  attractors: {dict(kinds)}; per input: mean {n_att.mean():.2f}, max {n_att.max()}; QP fraction {qp:.3f}")
    # baseline on a random subset of (input, initial state) pairs, the same initial states as the batched run
    seqs = np.random.SeedSequence(0).spawn(N)
    rng = np.random.default_rng(123)
    pick = rng.choice(N * n_init, size=min(n_base, N * n_init), replace=False)
    inputs = np.unique(pick // n_init)
    pos = {int(i): n for n, i in enumerate(inputs)}
    h0 = _initial_states(dyn, dyn.drive(X[inputs]), None, n_init, None, [seqs[i] for i in inputs])
    agree = 0
    t0, c0 = time.perf_counter(), time.process_time()
    base_kinds = []
    for p in pick:
        i, m = divmod(int(p), n_init)
        base_kinds.append(loop_one(dyn, X[i], h0[pos[i], m], rng, DEFAULTS))
    t_loop, c_loop = time.perf_counter() - t0, time.process_time() - c0
    confusion: collections.Counter = collections.Counter()
    for p, kind in zip(pick, base_kinds):
        i, m = divmod(int(p), n_init)
        batched = next((a.kind for a in res[i] if m in a.members), None)
        agree += batched == kind
        confusion[(batched, kind)] += batched != kind
    t_full = t_loop / len(pick) * N * n_init
    c_full = c_loop / len(pick) * N * n_init
    print(f"loop baseline: {t_loop:.1f} s wall, {c_loop:.1f} s CPU for {len(pick)} randomly chosen orbits "
          f"(of {N * n_init}); EXTRAPOLATED to the whole workload: {t_full:.0f} s wall, {c_full:.0f} s CPU")
    print(f"  classification agreement with the batched run on those orbits: {agree}/{len(pick)}")
    if agree < len(pick):
        print("  disagreements (batched <- loop): " + ", ".join(
            f"{a} <- {b}: {n}" for (a, b), n in confusion.most_common() if n))
    print(f"speed-up (extrapolated loop / batched): {t_full / t_batch:.1f}x wall, {c_full / c_batch:.1f}x CPU")
    return dict(label=label, t_batch=t_batch, c_batch=c_batch, t_loop_extrapolated=t_full,
                speedup=t_full / t_batch, cpu_speedup=c_full / c_batch, kinds=kinds)


def bench_attractor_map(model: str, grid: int, n_init: int, kw: dict) -> None:
    """The same workload end to end through analysis.attractor_map (loading, bookkeeping, exponents of the fixed
    points included)."""
    from analysis.dynamics.maps import attractor_map

    t0, c0 = time.perf_counter(), _cpu()
    amap = attractor_map(model, grid, "stimulus", n_init=n_init, seed=0, observed=False, progress=False, **kw)
    t, c = time.perf_counter() - t0, _cpu() - c0
    s = amap.summary()
    print(f"\n== analysis.attractor_map end to end: {t:.1f} s wall, {c:.1f} s CPU; {s['n_attractors']} attractors "
          f"{s['counts']}; QP fraction {s['qp_fraction']:.3f} (low-coherence half "
          f"{s['qp_fraction_low_coherence']:.3f}, high half {s['qp_fraction_high_coherence']:.3f}); mean "
          f"multistability {s['mean_multistability']:.2f}")


def bench_fixed_points(dyn: Network, X: np.ndarray, n_points: int, label: str) -> None:
    pick = np.linspace(0, len(X) - 1, n_points).astype(int)
    t_ex = t_gr = 0.0
    n_ex = n_gr = n_match = 0
    res_ex: list[float] = []
    res_gr: list[float] = []
    dist: list[float] = []
    for i in pick:
        t0 = time.perf_counter()
        ex = fixed_points(dyn, X[i], n_init=64, seed=0, method="exact")
        t_ex += time.perf_counter() - t0
        t0 = time.perf_counter()
        gr = fixed_points(dyn, X[i], n_init=64, seed=0, method="gradient", tol=1e-7)
        t_gr += time.perf_counter() - t0
        n_ex += len(ex)
        n_gr += len(gr)
        res_ex += [p.residual for p in ex]
        res_gr += [p.residual for p in gr]
        for g in gr:
            if ex:
                d = min(np.linalg.norm(g.state - e.state) for e in ex)
                dist.append(d)
                n_match += d < 1e-5
    mx = lambda v: f"{max(v):.1e}" if v else "-"  # noqa: E731
    print(f"\n== fixed points, {label}: {n_points} inputs, 64 seeds each")
    print(f"exact solver:      {t_ex:.2f} s, {n_ex} fixed points, max residual {mx(res_ex)}")
    print(f"gradient (Adam):   {t_gr:.2f} s, {n_gr} fixed points, max residual {mx(res_gr)}; "
          f"{n_match}/{n_gr} within 1e-5 of an exact one (max distance {mx(dist)})")
    if t_ex > 0:
        print(f"exact / gradient time: 1 : {t_gr / t_ex:.1f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--network", choices=["all", "hybrid", "random"], default="all")
    p.add_argument("--delta", type=float, nargs="+", default=[0.08, 0.12, 0.16])
    p.add_argument("--model", help="a saved policy zip (replaces the synthetic networks)")
    p.add_argument("--grid", type=int, default=21)
    p.add_argument("--n-init", type=int, default=32)
    p.add_argument("--baseline-states", type=int, default=48, help="orbits timed by the loop baseline")
    p.add_argument("--fp-inputs", type=int, default=5, help="inputs for the exact-vs-gradient comparison")
    p.add_argument("--transient-dtype", choices=["auto", "float64", "float32"], default="auto",
                   help="arithmetic of the batched transient (find_attractors' transient_dtype; default auto)")
    p.add_argument("--no-map", action="store_true", help="with --model: skip the end-to-end attractor_map timing")
    p.add_argument("--jobs", type=int, default=-1,
                   help="worker processes of the batched search (find_attractors' n_jobs; default -1: one per CPU)")
    args = p.parse_args(argv)
    kw = {} if args.transient_dtype == "auto" else dict(transient_dtype=args.transient_dtype)
    kw["n_jobs"] = args.jobs

    import dm_envs

    cfg = dm_envs.make_config(level=3)
    nets: list[tuple[str, Network]] = []
    if args.model:
        dyn = Network.load(args.model)
        cfg = dyn.config or cfg
        nets.append((f"model {args.model}", dyn))
    else:
        if args.network in ("all", "hybrid"):
            nets.append(("hybrid (synthetic QP/periodic/FP landscape)", hybrid_network(cfg.obs_dim)))
        if args.network in ("all", "random"):
            nets += [(f"random U(-{d}, {d})", random_network(d, cfg.obs_dim)) for d in args.delta]
    X = grid_inputs(cfg, args.grid)
    print(f"workload: {cfg.name} stimulus stage, {args.grid}x{args.grid} signed coherences in "
          f"[-{max(cfg.coherences)}, {max(cfg.coherences)}], {len(X) // (args.grid ** 2)} context(s); "
          f"numpy {np.__version__}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, {os.cpu_count()} CPUs, "
          f"n_jobs {args.jobs}; the loop baseline runs in this process alone")
    results = [bench_map(dyn, X, args.n_init, args.baseline_states, label, **kw) for label, dyn in nets]
    if args.model and not args.no_map:
        bench_attractor_map(args.model, args.grid, args.n_init, kw)
    for label, dyn in nets:
        bench_fixed_points(dyn, X, args.fp_inputs, label)
    print("\n== summary")
    print(f"{'network':<48} {'wall':>8} {'CPU':>8} {'x loop (wall)':>14} {'x loop (CPU)':>13}")
    for r in results:
        ok = "OK" if r["t_batch"] < 60 and r["speedup"] >= 20 else "MISSED"
        print(f"{r['label']:<48} {r['t_batch']:7.1f}s {r['c_batch']:7.1f}s {r['speedup']:13.1f}x "
              f"{r['cpu_speedup']:12.1f}x  (goal < 60 s wall, >= 20x: {ok})")
    print("(the machine may be shared: CPU seconds (this process and its workers) are the load-independent figure;"
          " x loop (CPU) is the speed-up without the worker processes' parallelism)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
