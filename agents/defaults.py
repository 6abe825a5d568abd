"""Default hyperparameters and schedules of the trainers (plain data: the CLI reads them without importing torch).

The values were tuned on levels 1-3 with 250 units at delta 0.1 (see ``agents/train_rl.py``,
``agents/train_sl.py`` and ``benchmarks/bench_training.py`` for the measurements).
"""

from __future__ import annotations

from typing import Any

PPO_DEFAULTS: dict[str, Any] = dict(
    n_envs=128,
    n_steps=64,
    batch_size=2048,
    n_epochs=4,
    learning_rate=3e-4,
    ent_coef=0.02,
    gamma=0.99,
    gae_lambda=0.95,
    clip_range=0.2,
    vf_coef=0.5,
    max_grad_norm=0.5,
    target_kl=0.02,
)
"""Default PPO hyperparameters of :func:`agents.train_rl`."""

SL_DEFAULTS: dict[str, Any] = dict(
    learning_rate=1e-3,
    batch_size=64,
    fixate_weight=0.1,
    decision_weight=1.0,
    max_grad_norm=1.0,
    weight_decay=0.0,
)
"""Default hyperparameters of :func:`agents.train_sl`."""

RL_SCHEDULE: dict[str, int] = dict(max_steps=30_000_000, eval_every=100_000, checkpoint_every=500_000)
"""Default budget and schedule of :func:`agents.train_rl`, in env steps."""

SL_SCHEDULE: dict[str, int] = dict(max_steps=20_000_000, eval_every=100_000, checkpoint_every=500_000)
"""Default budget and schedule of :func:`agents.train_sl`, in env steps (a trial of ``L`` steps counts ``L``)."""

CRITIC_MODES: tuple[str, ...] = ("shared", "rnn", "linear")
"""Value-head modes of :class:`~agents.RNNPolicy` (``critic``)."""

RUN_DEFAULTS: dict[str, Any] = dict(
    level=3, seed=0, delta=0.1, hidden_size=250, critic="shared", target_accuracy=0.95, confidence_z=1.645,
    consecutive=1, train_past=1.0, eval_trials=2000, max_rollbacks=3, device="cpu",
)
"""Defaults shared by both trainers."""

__all__ = ["CRITIC_MODES", "PPO_DEFAULTS", "RL_SCHEDULE", "RUN_DEFAULTS", "SL_DEFAULTS", "SL_SCHEDULE"]
