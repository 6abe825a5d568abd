"""Reinforcement learning: sb3-contrib ``RecurrentPPO`` with :class:`~agents.RNNPolicy` on the batched trial env.

:func:`train_rl` trains the paper's network with stock ``RecurrentPPO`` on :func:`dm_envs.sb3.make_sb3_vec_env`
(``n_envs`` trials stepped together in numpy), evaluates it on fresh trials on a schedule, stops when the shared
stopping rule fires, and writes the run folder (``docs/DESIGN.md``). The defaults in :data:`PPO_DEFAULTS` were tuned
on levels 1-3 with 250 units (see the module's ``Tuning`` notes below and ``benchmarks/bench_training.py``).

Tuning notes (2-core shared CPU, torch 1 thread, 250 units, delta 0.1; "steps" are env steps to the stopping rule;
levels 2-3 with NeuroGym's 0.3-3 s delay law unless said otherwise; ``benchmarks/bench_training.py`` reproduces the
headline numbers):

* **The failure mode is a runaway hidden state, not slow learning.** The bias-free ReLU core can cross into an
  unstable regime: ``|h|`` grows ~1.2x per step through the trial (to hundreds by the decision stage), the fixate
  logit wins at every step, the policy stops choosing (accuracy 0, miss rate 1) and, its softmax saturated, never
  recovers. A single update tips it over (the weights barely move: the spectral radius of ``W_rec`` went
  1.28 -> 1.34). It struck at Adam lr 1e-3 (wild accuracy swings or collapse in 4 of 5 runs, on a first version of
  the task with 0.3-1 s delays), and at lr 3e-4 with SB3-like ``ent_coef=0.01`` and no KL limit in 3 of 3 runs on
  the current task. Each of a larger entropy bonus (0.02: keeps the logit margins, hence the pressure to grow ``h``,
  small) and ``target_kl=0.02`` (stops an update's epochs when the policy moves too far) brought 6 of 6 seeds to 95%
  at level 3. The defaults use both: 6/6 seeds at level 3 (median 1.1M steps, 0.5-1.8M), 3/3 at level 1 (0.7M),
  3/3 at delta 0.05 (1.6M) and 0.15 (0.7M), and at level 2 two of three directly (0.3-0.5M) while the third
  collapsed at 0.2M. Such rare collapses are caught by the monitor's guard (:mod:`agents.callbacks`): it rolls back
  to the last healthy evaluation and goes on with fresh trials (that run then reached 95% at 0.7M steps; the three
  lr 3e-4 / ``ent_coef=0.01`` runs above, each after one rollback).
* Throughput is set by the PPO update (>85% of the time: the backward pass through the core over the padded trial
  sequences). The batched env makes acting cheap (~150k env steps/s), so 128 envs per step cost little.
  ``n_epochs`` trades samples for speed: 8 epochs needed fewer steps but ran at half the speed; 2 epochs ran twice as
  fast but needed more steps and collapsed more often. 4 epochs of 2048-step minibatches (16 optimizer steps per
  8192-step rollout) gave the best wall time; 4096-step minibatches needed more steps (0.9-2.1M).
* ``n_steps=64`` spans about two trials (24-50 steps at level 3), so few trials are cut at rollout edges, where
  gradients stop (truncated backpropagation through time would hurt integrating the 15-step stimulus).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import torch as th

from .callbacks import InterruptGuard, RLCallback, TrainingMonitor, check_finite
from .config import PPOConfig, RunConfig, make_configs
from .defaults import PPO_DEFAULTS, RL_SCHEDULE
from .resume import ResumeStateError, restore_rl_state, rl_state
from .runs import (
    ROLLBACK_STREAM,
    TRAIN_STREAM,
    RunStart,
    TrainingDiverged,
    TrainResult,
    build_model,
    finish_message,
    open_run,
    stream_seed,
)
from .tensorboard import default_extras


def train_rl(
    run: RunConfig | int | None = None,
    ppo: Optional[PPOConfig] = None,
    *,
    callback: Any = None,
    checkpoint_hooks: Sequence[Any] = (),
    **settings: Any,
) -> TrainResult:
    """Train the paper's RNN with PPO until it reaches the target accuracy (or the step budget runs out).

    The settings come as configs, as keywords, or both (keywords replace the configs' fields)::

        train_rl(RunConfig(level=1, seed=0, out_dir="runs/rl"), PPOConfig(n_envs=64))
        train_rl(1, seed=0, out_dir="runs/rl", n_envs=64)                  # the same run

    Args:
        run: The run's settings (:class:`~agents.config.RunConfig`: task, network, stopping rule, budget and
            schedule, run folder; None: the defaults, with :data:`RL_SCHEDULE`'s budget and schedule), or the
            task's level 1-4 (the default 3 is the context-dependent task). The ``seed`` seeds
            everything: initial weights (as in :func:`~agents.train_sl`), env trials, PPO sampling, evaluation
            trials. With ``resume``, the run in ``out_dir`` continues from its newest checkpoint (the task, seed and
            network must match; hyperparameters and budget given here apply from now on; a fresh run if there is no
            checkpoint), exactly as the uninterrupted one (bit-identical weights and evaluations, same
            hyperparameters and machine): the checkpoint holds the vector env's trial streams, SB3's last
            observations and recurrent states, the generators and the monitor's state (:mod:`agents.resume`). A
            checkpoint saved without that state (an older version) resumes on fresh trial streams, with a warning.
            A policy that collapses (stops choosing, its hidden state run away) is rolled back to the last healthy
            evaluation and trained on with fresh trials, at most ``max_rollbacks`` times, before the run gives up
            with status ``"collapsed"`` (see :mod:`agents.callbacks`).
        ppo: The PPO hyperparameters (:class:`~agents.config.PPOConfig`; None: :data:`PPO_DEFAULTS`).
        callback: Extra SB3 callback(s) passed to ``learn``.
        checkpoint_hooks: Hooks run at every regular checkpoint and on the final model, e.g. the dynamics probe
            ``analysis.dynamics.probe.DynamicsProbe()`` (``dmd train`` and the experiment cells pass it by default;
            see :mod:`agents.tensorboard`). They never change training.
        **settings: Fields of :class:`~agents.config.RunConfig` or :class:`~agents.config.PPOConfig` (e.g.
            ``seed=1, n_envs=8``), applied over ``run`` and ``ppo``.

    Returns:
        A :class:`~agents.runs.TrainResult` (status ``"reached_target"``, ``"budget_exhausted"``, ``"interrupted"``
        or ``"collapsed"``).

    Raises:
        TrainingDiverged: parameters, hidden states or losses became non-finite (the last good checkpoint is kept).
        FileExistsError: ``out_dir`` holds a run and neither ``resume`` nor ``overwrite`` was given.
        TypeError, ValueError: a setting that does not exist or is not allowed (the message names it).

    Example:
        >>> result = train_rl(level=1, seed=0, out_dir="runs/rl_l1_s0")   # doctest: +SKIP
        >>> result.metadata["steps_to_criterion"], result.accuracy                # doctest: +SKIP
    """
    th.set_num_threads(1)
    run, ppo = make_configs("rl", run, ppo, caller="train_rl", **settings)
    start = open_run("rl", run, ppo.to_dict())
    model = _open_model(start, ppo)
    monitor = TrainingMonitor(start, model)
    monitor.guard.on_rollback = lambda k: _fresh_trials(model, stream_seed(run.seed, ROLLBACK_STREAM, k))
    monitor.path_state = lambda: rl_state(model)
    monitor.tensorboard = default_extras(checkpoint_hooks, run.tensorboard_extras)
    if start.checkpoint is not None:
        _resume(start, model, monitor, run.seed)
    if monitor.finished_before():
        return finish_message(start.run, model, monitor.finish("reached_target"), run.progress)
    status = _learn(start, model, monitor, callback)
    return finish_message(start.run, model, monitor.finish(status), run.progress)


def _open_model(start: RunStart, ppo: PPOConfig) -> Any:
    """The run's model: built (a fresh run), or loaded from the checkpoint to resume (SB3 restores weights, optimizer
    state and ``num_timesteps``; :func:`_resume` the rest); it logs to the run's ``tb/``."""
    from stable_baselines3.common.logger import configure

    from dm_envs.sb3 import make_sb3_vec_env

    from .policy import RNNPPO

    settings = start.settings
    if start.checkpoint is None:
        model = build_model(start.task, settings.seed, start.policy_kwargs, ppo.n_envs, ppo.sb3_kwargs(),
                            settings.device)
    else:
        model = RNNPPO.load(start.checkpoint, env=make_sb3_vec_env(ppo.n_envs, config=start.task),
                                  device=settings.device, **ppo.sb3_kwargs())
    model.set_logger(configure(str(start.run.tb), ["tensorboard"]))
    return model


def _learn(start: RunStart, model: Any, monitor: TrainingMonitor, callback: Any) -> str:
    """Run ``RecurrentPPO.learn`` under the monitor until the budget is spent or something stops it; the run's
    status (an interrupted run is rewound to the start of the rollout it stopped in, redone when resumed)."""
    guard = InterruptGuard()
    cb = RLCallback(monitor, guard)
    monitor.start()
    with guard:
        try:
            model.learn(
                max(0, monitor.max_steps - model.num_timesteps),
                callback=[cb, *_as_list(callback)],
                reset_num_timesteps=start.checkpoint is None,
            )
        except TrainingDiverged:
            raise
        except (ValueError, RuntimeError):  # e.g. torch rejecting NaN logits while acting
            bad = check_finite(model.policy, model._last_lstm_states.pi[0])
            if bad is None:
                monitor.close()
                raise
            monitor.diverged(bad)
    cb.sync()
    if not cb.in_rollout:  # learn() ran to its end (after an update): the state now is where the next rollout starts
        monitor.release_safe_point()
    if monitor.criterion is not None and monitor.evaluation.rule.should_stop(monitor.curve):
        return "reached_target"
    if monitor.collapsed:
        return "collapsed"
    if guard.requested or not monitor.out_of_budget:  # a signal, or an extra callback stopped learning
        state = monitor.rewind()  # back to the start of the rollout it stopped in (redone when resumed)
        if state is not None:
            restore_rl_state(model, state)
        return "interrupted"
    monitor.evaluate()  # the budget ran out (after an update): evaluate the final model
    return monitor.budget_status()


def _resume(start: RunStart, model: Any, monitor: TrainingMonitor, seed: int) -> None:
    """Put a model loaded from ``start.checkpoint`` and its monitor where the checkpoint's run stood; without a saved
    resume state (or when it does not fit, e.g. another ``n_envs``), go on with fresh trial streams instead."""
    why = "the checkpoint holds no saved training state (saved by an older version)"
    if start.state is not None:
        try:
            if start.state.get("trainer") is None:
                raise ResumeStateError("the checkpoint's state has no vector-env part")
            restore_rl_state(model, start.state["trainer"])
            monitor.restore_state(start.state)
            start.announce(True, "vector env, recurrent states, generators and monitor restored; continuing exactly")
            return
        except ResumeStateError as err:
            why = f"the checkpoint's training state does not fit: {err}"
    env_seed = stream_seed(seed, TRAIN_STREAM, start.segment)
    model.set_random_seed(env_seed)  # seeds the vector env too, reset by learn()
    start.announce(False, f"{why}; training goes on with fresh trial streams")


def _fresh_trials(model: Any, env_seed: int) -> None:
    """Restart every env of a model's vector env on a new trial stream (after a rollback), from ``h0 = 0``.

    Called between rollouts (from the callback's ``on_rollout_start``, before SB3 copies the recurrent state).
    """
    env = model.env
    env.seed(env_seed)
    model._last_obs = env.reset()
    model._last_episode_starts = np.ones(env.num_envs, dtype=bool)
    model._last_lstm_states = type(model._last_lstm_states)(
        *(tuple(th.zeros_like(t) for t in states) for states in model._last_lstm_states)
    )


def _as_list(callback: Any) -> list[Any]:
    if callback is None:
        return []
    return list(callback) if isinstance(callback, (list, tuple)) else [callback]


__all__: Sequence[str] = ["PPO_DEFAULTS", "RL_SCHEDULE", "train_rl"]
