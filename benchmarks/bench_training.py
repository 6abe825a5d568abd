"""Training benchmarks: RL throughput against stock RecurrentPPO, and time to 95% for RL and SL.

Parts (run all, or pick with ``--part``):

* ``speed`` - env steps/s of ``agents.train_rl``'s setup (``RecurrentPPO(RNNPolicy)`` with ``PPO_DEFAULTS`` on the
  batched ``TrialVecEnv``) against stock ``RecurrentPPO("MlpLstmPolicy")`` with sb3-contrib's defaults on SB3's
  ``DummyVecEnv`` of 8 ``gym.make("DecisionMaking-v0")`` envs (Monitor-wrapped, as ``make_vec_env`` does), same
  task, one torch thread each, after a warm-up; measured twice, alternating, and the ratio of medians printed.
* ``buffer`` - the PPO minibatch padding: ``agents.train_rl``'s model (``RNNPPO``, whose
  ``SequenceRolloutBuffer`` pads each minibatch in one numpy scatter) against the same model with sb3-contrib's
  ``RecurrentRolloutBuffer`` (one tensor per sequence), same seed and settings, fresh models per repeat, alternating;
  the ratio of medians of env steps/s, and a check that both trained bit-identical weights.
* ``criterion`` - wall time, env steps and trials for ``train_rl`` and ``train_sl`` to reach 95% (the trainers'
  stopping rule) at the given levels, for several seeds at one delta; the median over seeds. RL runs get a
  wall-time budget (``--rl-budget``, default 30 min); a run that does not reach the target reports where it got.

Examples::

    python benchmarks/bench_training.py --part speed
    python benchmarks/bench_training.py --part buffer --repeats 3
    python benchmarks/bench_training.py --part criterion --levels 1 3 --seeds 3
    python benchmarks/bench_training.py --part criterion --rules sl --levels 3 --seeds 3 --delta 0.15

Numbers are for the machine they run on (the CPU may be shared: compare the ratios within one run). Results are
also appended as JSON lines to ``bench_out/bench_training.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch as th  # noqa: E402

OUT = Path("bench_out")


def _record(entry: dict[str, Any]) -> None:
    OUT.mkdir(exist_ok=True)
    with open(OUT / "bench_training.jsonl", "a") as f:
        f.write(json.dumps({"time": time.strftime("%Y-%m-%d %H:%M:%S"), "host": platform.node(), **entry}) + "\n")


def _steps_per_s(model: Any, steps: int) -> float:
    t = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    return steps / (time.perf_counter() - t)


def bench_speed(level: int, repeats: int, lstm_steps: int, rnn_rollouts: int) -> dict[str, Any]:
    """RL env steps/s: train_rl's setup vs stock RecurrentPPO(MlpLstmPolicy) on DummyVecEnv x 8."""
    import gymnasium as gym
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv

    import dm_envs
    from agents import PPO_DEFAULTS
    from agents.runs import build_model, policy_kwargs
    from dm_envs import make_config

    gym.register_envs(dm_envs)  # importing dm_envs registers DecisionMaking-v0
    th.set_num_threads(1)
    ppo = {k: v for k, v in PPO_DEFAULTS.items() if k != "n_envs"}
    ours = build_model(make_config(level), 0, policy_kwargs(250, 0.1, 0), PPO_DEFAULTS["n_envs"], ppo)
    rollout = PPO_DEFAULTS["n_envs"] * PPO_DEFAULTS["n_steps"]
    stock_env = make_vec_env(lambda: gym.make("DecisionMaking-v0", level=level), n_envs=8, seed=0,
                             vec_env_cls=DummyVecEnv)
    stock = RecurrentPPO("MlpLstmPolicy", stock_env, seed=0)  # sb3-contrib defaults: LSTM 256, n_steps 128, ...
    print(f"== speed (level {level}): warm-up...", flush=True)
    ours.learn(2 * rollout)
    stock.learn(2 * 8 * 128)
    ours_sps, stock_sps = [], []
    for r in range(repeats):
        ours_sps.append(_steps_per_s(ours, rnn_rollouts * rollout))
        stock_sps.append(_steps_per_s(stock, lstm_steps))
        print(f"  repeat {r + 1}: train_rl setup {ours_sps[-1]:,.0f} steps/s | stock MlpLstmPolicy "
              f"{stock_sps[-1]:,.0f} steps/s | ratio {ours_sps[-1] / stock_sps[-1]:.1f}x", flush=True)
    a, b = statistics.median(ours_sps), statistics.median(stock_sps)
    print(f"  median: {a:,.0f} vs {b:,.0f} env steps/s -> {a / b:.1f}x (goal >= 30x)")
    print(f"  train_rl setup: RNNPolicy(250 units, shared core), TrialVecEnv x {PPO_DEFAULTS['n_envs']}, "
          f"n_steps {PPO_DEFAULTS['n_steps']}, batch {PPO_DEFAULTS['batch_size']}, {PPO_DEFAULTS['n_epochs']} epochs; "
          "stock: MlpLstmPolicy (LSTM 256, separate critic LSTM), DummyVecEnv x 8, n_steps 128, batch 128, 10 epochs")
    entry = {"part": "speed", "level": level, "ours_steps_per_s": ours_sps, "stock_steps_per_s": stock_sps,
             "ratio": a / b}
    _record(entry)
    return entry


def bench_buffer(level: int, repeats: int, rollouts: int) -> dict[str, Any]:
    """RL env steps/s of train_rl's model with the sequence buffer vs sb3-contrib's buffer (same training)."""
    from sb3_contrib import RecurrentPPO

    from agents import PPO_DEFAULTS, RNNPolicy
    from agents.runs import build_model, policy_kwargs
    from dm_envs import make_config
    from dm_envs.sb3 import make_sb3_vec_env

    th.set_num_threads(1)
    ppo = {k: v for k, v in PPO_DEFAULTS.items() if k != "n_envs"}
    steps = rollouts * PPO_DEFAULTS["n_envs"] * PPO_DEFAULTS["n_steps"]

    def run(stock: bool) -> tuple[float, list[th.Tensor]]:
        cfg, kwargs = make_config(level), policy_kwargs(250, 0.1, 0)
        if stock:  # what build_model does, with plain RecurrentPPO (sb3-contrib's buffer)
            venv = make_sb3_vec_env(PPO_DEFAULTS["n_envs"], config=cfg, seed=0)
            model = RecurrentPPO(RNNPolicy, venv, seed=0, policy_kwargs=kwargs, **ppo)
        else:
            model = build_model(cfg, 0, kwargs, PPO_DEFAULTS["n_envs"], ppo)
        t = time.perf_counter()
        model.learn(steps)
        return steps / (time.perf_counter() - t), [p.detach().clone() for p in model.policy.parameters()]

    print(f"== buffer (level {level}, {steps:,} env steps per run)", flush=True)
    ours, stock, same = [], [], True
    for r in range(repeats):
        a, wa = run(False)
        b, wb = run(True)
        ours.append(a)
        stock.append(b)
        same &= all(th.equal(x, y) for x, y in zip(wa, wb))
        print(f"  repeat {r + 1}: sequence buffer {a:,.0f} steps/s | sb3-contrib buffer {b:,.0f} steps/s | "
              f"ratio {a / b:.2f}x", flush=True)
    a, b = statistics.median(ours), statistics.median(stock)
    print(f"  median: {a:,.0f} vs {b:,.0f} env steps/s -> {a / b:.2f}x; weights bit-identical: {same}")
    entry = {"part": "buffer", "level": level, "ours_steps_per_s": ours, "stock_steps_per_s": stock,
             "ratio": a / b, "identical": same}
    _record(entry)
    return entry


def bench_criterion(levels: list[int], rules: list[str], seeds: int, delta: float, rl_budget: float,
                    sl_budget: float, keep: bool) -> list[dict[str, Any]]:
    """Wall time / env steps / trials to 95% for each level, rule and seed; medians over seeds."""
    from agents import train_rl, train_sl

    rows = []
    for level in levels:
        for rule in rules:
            runs = []
            for seed in range(seeds):
                out = OUT / "criterion" / f"{rule}_l{level}_d{delta:g}_s{seed}"
                trainer = train_rl if rule == "rl" else train_sl
                budget = rl_budget if rule == "rl" else sl_budget
                t = time.perf_counter()
                res = trainer(level, seed=seed, delta=delta, out_dir=out, overwrite=True, progress=False,
                              max_time=budget)
                m = res.metadata
                run = {
                    "level": level, "rule": rule, "seed": seed, "delta": delta,
                    "reached": m["reached_target"],
                    "wall_time_to_criterion": m["wall_time_to_criterion"],
                    "steps_to_criterion": m["steps_to_criterion"],
                    "trials_to_criterion": m["trials_to_criterion"],
                    "final_accuracy": m["final_accuracy"],
                    "best_accuracy": max(c["accuracy"] for c in m["accuracy_curve"]),
                    "env_steps": m["env_steps"], "wall_time": m["wall_time"],
                    "process_time": time.perf_counter() - t,
                    "last_evaluation": m["accuracy_curve"][-1],
                }
                runs.append(run)
                _record({"part": "criterion", **run})
                if run["reached"]:
                    print(f"  {rule.upper()} level {level} seed {seed}: 95% reached in "
                          f"{run['wall_time_to_criterion']:.0f} s, {run['steps_to_criterion']:,} env steps, "
                          f"{run['trials_to_criterion']:,} trials "
                          f"(accuracy {run['final_accuracy']:.3f})", flush=True)
                else:
                    coh = run["last_evaluation"]["by_coherence"]
                    print(f"  {rule.upper()} level {level} seed {seed}: NOT reached within {budget:.0f} s: final "
                          f"{run['final_accuracy']:.3f}, best {run['best_accuracy']:.3f} after {run['env_steps']:,} "
                          f"env steps; by coherence {coh}", flush=True)
                if not keep:
                    for f in sorted(out.glob("checkpoints/step_*.zip")):
                        f.unlink()
            reached = [r for r in runs if r["reached"]]
            row = {"level": level, "rule": rule, "seeds": seeds, "reached": len(reached)}
            if reached:
                for key in ("wall_time_to_criterion", "steps_to_criterion", "trials_to_criterion"):
                    row[key] = statistics.median(r[key] for r in reached)
            rows.append(row)
    print(f"\n== time to 95% (median over the seeds that reached it; delta {delta:g})")
    print(f"{'level':>5} {'rule':>4} {'reached':>8} {'wall s':>8} {'env steps':>12} {'trials':>10}")
    for r in rows:
        if r["reached"]:
            print(f"{r['level']:>5} {r['rule']:>4} {r['reached']:>5}/{r['seeds']:<2} "
                  f"{r['wall_time_to_criterion']:>8.0f} {r['steps_to_criterion']:>12,.0f} "
                  f"{r['trials_to_criterion']:>10,.0f}")
        else:
            print(f"{r['level']:>5} {r['rule']:>4} {0:>5}/{r['seeds']:<2} {'-':>8} {'-':>12} {'-':>10}")
    print("goals on a 2-core machine: SL under 60 s and RL under 600 s at level 3")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=("speed", "buffer", "criterion", "all"), default="all")
    p.add_argument("--levels", type=int, nargs="+", default=[1, 3], help="levels (criterion part)")
    p.add_argument("--rules", nargs="+", choices=("rl", "sl"), default=["rl", "sl"])
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per level and rule")
    p.add_argument("--delta", type=float, default=0.1)
    p.add_argument("--rl-budget", type=float, default=1800.0, help="wall-time budget of an RL run, s")
    p.add_argument("--sl-budget", type=float, default=600.0, help="wall-time budget of an SL run, s")
    p.add_argument("--keep", action="store_true", help="keep the step checkpoints of the criterion runs")
    p.add_argument("--speed-level", type=int, default=3)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--lstm-steps", type=int, default=8192, help="env steps timed for the stock LSTM per repeat")
    p.add_argument("--rnn-rollouts", type=int, default=12, help="rollouts timed for train_rl's setup per repeat")
    p.add_argument("--buffer-rollouts", type=int, default=20, help="rollouts per run (buffer part)")
    args = p.parse_args()
    th.set_num_threads(1)
    print(f"torch {th.__version__}, {th.get_num_threads()} thread(s), {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.2f}")
    if args.part in ("speed", "all"):
        bench_speed(args.speed_level, args.repeats, args.lstm_steps, args.rnn_rollouts)
    if args.part in ("buffer", "all"):
        bench_buffer(args.speed_level, args.repeats, args.buffer_rollouts)
    if args.part in ("criterion", "all"):
        bench_criterion(args.levels, args.rules, args.seeds, args.delta, args.rl_budget, args.sl_budget, args.keep)


if __name__ == "__main__":
    main()
