"""Environment speed: our single env, vector env and supervised batches against NeuroGym, in one run.

    python benchmarks/bench_envs.py [--repeats 3] [--no-neurogym]

Prints env steps/s of the single env and of the vector env at N = 1, 16, 64, 256 (uniformly random actions, the
same action stream for every env), trials/s and time steps/s of the supervised batch API, and the same for
NeuroGym's ``ContextDecisionMaking`` (explicit context) and its ``Dataset``, with the ratios. NeuroGym is never a
dependency of the project: it is installed here with ``--no-deps`` into ``bench_out/neurogym`` (its own pins would
downgrade gymnasium and numpy), with the few pure-Python packages it imports. Each figure is the median of
``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NEUROGYM_DIR = ROOT / "bench_out" / "neurogym"
NEUROGYM_PACKAGES = ["neurogym==2.3.1", "natsort", "loguru", "pydantic", "pydantic-settings", "pydantic-core",
                     "annotated-types", "typing-inspection", "python-dotenv"]


def median_rate(fn: Callable[[], float], repeats: int) -> float:
    return statistics.median(fn() for _ in range(repeats))


# ---------------------------------------------------------------------- ours
def ours_single(n_steps: int = 100_000) -> float:
    from dm_envs import DecisionMakingEnv

    env = DecisionMakingEnv(level=3)
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 3, n_steps).tolist()
    t0 = time.perf_counter()
    for a in actions:
        _, _, term, _, _ = env.step(a)
        if term:
            env.reset()
    return n_steps / (time.perf_counter() - t0)


def ours_vector(num_envs: int, n_env_steps: int = 1_000_000) -> float:
    from dm_envs import DecisionMakingVectorEnv

    venv = DecisionMakingVectorEnv(num_envs, level=3)
    venv.reset(seed=0)
    n_calls = max(2000, n_env_steps // num_envs)
    actions = np.random.default_rng(0).integers(0, 3, (n_calls, num_envs))
    t0 = time.perf_counter()
    for a in actions:
        venv.step(a)
    return n_calls * num_envs / (time.perf_counter() - t0)


def ours_dataset(batch_size: int = 64, n_batches: int = 300) -> tuple[float, float]:
    from dm_envs import TrialDataset

    data = TrialDataset(level=3, batch_size=batch_size, seed=0)
    steps = 0
    t0 = time.perf_counter()
    for _ in range(n_batches):
        b = data.sample()
        steps += int(b.mask.sum())
    dt = time.perf_counter() - t0
    return n_batches * batch_size / dt, steps / dt


# ---------------------------------------------------------------------- NeuroGym
def ensure_neurogym() -> Optional[str]:
    """Install NeuroGym (no deps) into bench_out/neurogym; return an error message if that fails."""
    if not (NEUROGYM_DIR / "neurogym").exists():
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(NEUROGYM_DIR),
               *NEUROGYM_PACKAGES]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            return res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "pip failed"
    sys.path.insert(0, str(NEUROGYM_DIR))
    try:
        warnings.filterwarnings("ignore")
        import neurogym  # noqa: F401
    except Exception as err:  # pragma: no cover - depends on the machine
        return f"{type(err).__name__}: {err}"
    return None


def neurogym_single(n_steps: int = 100_000) -> float:
    from neurogym.envs.native.contextdecisionmaking import ContextDecisionMaking

    env = ContextDecisionMaking(use_expl_context=True)
    env.reset()
    actions = np.random.default_rng(0).integers(0, 3, n_steps).tolist()
    t0 = time.perf_counter()
    for a in actions:
        env.step(a)  # NeuroGym's episodes never end: trials follow each other inside step()
    return n_steps / (time.perf_counter() - t0)


def neurogym_dataset(batch_size: int = 64, seq_len: int = 100, n_batches: int = 20) -> float:
    import neurogym as ngym
    from neurogym.envs.native.contextdecisionmaking import ContextDecisionMaking

    data = ngym.Dataset(ContextDecisionMaking(use_expl_context=True), batch_size=batch_size, seq_len=seq_len)
    t0 = time.perf_counter()
    for _ in range(n_batches):
        data()
    return n_batches * batch_size * seq_len / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-neurogym", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    r = args.repeats

    rows: list[tuple[str, float]] = [("ours single env", median_rate(ours_single, r))]
    for n in (1, 16, 64, 256):
        rows.append((f"ours vector env N={n}", median_rate(lambda: ours_vector(n), r)))
    ds = [ours_dataset() for _ in range(r)]
    ours_trials = statistics.median(d[0] for d in ds)
    ours_ds_steps = statistics.median(d[1] for d in ds)

    ng_error = "skipped (--no-neurogym)" if args.no_neurogym else ensure_neurogym()
    ng_single = ng_ds = None
    if ng_error is None:
        ng_single = median_rate(neurogym_single, r)
        ng_ds = median_rate(neurogym_dataset, r)

    print(f"Environment speed, level-3 context task, random actions, median of {r} runs "
          f"(numpy {np.__version__}, 1 thread)")
    print(f"{'what':34s} {'env steps/s':>14s} {'x NeuroGym single':>18s}")
    for name, rate in rows:
        ratio = f"{rate / ng_single:18.1f}" if ng_single else f"{'-':>18s}"
        print(f"{name:34s} {rate:14,.0f} {ratio}")
    if ng_single:
        print(f"{'NeuroGym ContextDecisionMaking':34s} {ng_single:14,.0f} {1.0:18.1f}")
    print()
    print(f"{'supervised batches (batch 64)':34s} {'trials/s':>14s} {'time steps/s':>14s} {'x NeuroGym Dataset':>19s}")
    ratio = f"{ours_ds_steps / ng_ds:19.1f}" if ng_ds else f"{'-':>19s}"
    print(f"{'ours TrialDataset':34s} {ours_trials:14,.0f} {ours_ds_steps:14,.0f} {ratio}")
    if ng_ds:
        print(f"{'NeuroGym Dataset (seq_len 100)':34s} {'-':>14s} {ng_ds:14,.0f} {1.0:19.1f}")
    if ng_error:
        print(f"\nNeuroGym not measured: {ng_error}")
    else:
        n64 = dict(rows)["ours vector env N=64"]
        print(f"\nvector env N=64 vs NeuroGym single env: {n64 / ng_single:.1f}x (goal 50x); "
              f"supervised batches vs NeuroGym Dataset, per time step: {ours_ds_steps / ng_ds:.1f}x (goal 50x)")


if __name__ == "__main__":
    main()
