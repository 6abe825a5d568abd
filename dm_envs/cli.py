"""``dmd demo``: run trials of every task and print their structure and reference accuracies (``--save-pictures DIR``:
and save a picture of a trial of each task)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from .config import LEVELS, STAGES, TaskConfig, make_config
from .env import DecisionMakingEnv
from .observers import bayes_accuracy, integrator_accuracy
from .render import save_png
from .scoring import oracle_policy, random_policy, run_closed_loop
from .trials import sample_trials


def add_commands(sub: Any) -> None:
    """Register ``dmd demo``."""
    p = sub.add_parser("demo", help="run trials of every task; print structure and oracle/random/observer accuracy")
    p.add_argument("--trials", type=int, default=2000, help="trials per task and policy (default 2000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tasks", nargs="*", default=None, help="levels 1-4 and/or 'neurogym' (default: all)")
    p.add_argument(
        "--save-pictures",
        metavar="DIR",
        default=None,
        help="also save a PNG picture (render_mode='rgb_array') of one trial of each task, played by the oracle",
    )
    p.set_defaults(func=run_demo)


def save_trial_picture(env_kwargs: dict[str, Any], path: Path, seed: int = 0) -> Path:
    """Play one trial of the task with the oracle (fixate, then the correct choice) and save its last frame."""
    env = DecisionMakingEnv(render_mode="rgb_array", **env_kwargs)
    env.reset(seed=seed)
    terminated = False
    while not terminated:
        _, _, terminated, _, _ = env.step(int(env._engine.current_gt()[0]))
    frame = env.render()
    env.close()
    return save_png(path, frame)


def describe(cfg: TaskConfig) -> str:
    """A few lines describing a task's structure."""
    stages = []
    for name in STAGES:
        lo, hi = cfg.stage_step_range(name)
        stages.append(f"{name} {lo}" + (f"-{hi}" if hi != lo else "") + " steps")
    lines = [
        f"  stages: {', '.join(stages)} (dt = {cfg.dt:g} ms; at most {cfg.max_trial_steps} steps)",
        f"  inputs ({cfg.obs_dim}): {', '.join(cfg.observation_names)}",
        f"  actions: {cfg.n_actions} (0 = fixate, 1..{cfg.n_choices} = choices); streams: {cfg.n_streams}",
        f"  coherences: {', '.join(f'{c:g}' for c in cfg.coherences)}; noise: {cfg.noise} "
        f"(amplitude {cfg.noise_amplitude:g}, on {cfg.noise_on})",
    ]
    return "\n".join(lines)


def run_demo(args: argparse.Namespace) -> int:
    """Print every task's structure and the accuracy of reference observers and policies."""
    keys: list[Any] = list(LEVELS) + ["neurogym"]
    if args.tasks:
        keys = [int(t) if t.isdigit() else t for t in args.tasks]
    for key in keys:
        cfg = make_config(preset=key) if isinstance(key, str) else make_config(key)
        title = f"level {key}" if not isinstance(key, str) else f"preset {key!r}"
        print(f"== {title}: {cfg.name}")
        print(describe(cfg))
        trial = sample_trials(cfg, 1, np.random.default_rng(args.seed))
        print("  one trial, stage per step: " + "".join("FSDR"[s] for s in trial.stage[0]))
        if args.save_pictures:
            kwargs = {"preset": key} if isinstance(key, str) else {"level": key}
            name = f"trial_{key}.png" if isinstance(key, str) else f"trial_level{key}.png"
            print(f"  picture of a trial: {save_trial_picture(kwargs, Path(args.save_pictures) / name, args.seed)}")
        n = args.trials
        integ = integrator_accuracy(cfg, n, args.seed)
        bayes = bayes_accuracy(cfg, n, args.seed)
        oracle = run_closed_loop(cfg, oracle_policy, n, seed=args.seed)
        rand = run_closed_loop(cfg, random_policy(args.seed), n, seed=args.seed)
        chance = 1.0 / cfg.n_choices
        print(
            f"  accuracy over {n} trials: oracle {oracle.accuracy:.3f} | integrator {integ.accuracy:.3f} | "
            f"Bayes observer {bayes.accuracy:.3f} | random policy {rand.accuracy:.3f} "
            f"(among its choices {rand.choice_accuracy:.3f}, chance {chance:.3f})"
        )
    return 0


__all__ = ["add_commands", "describe", "run_demo", "save_trial_picture"]
