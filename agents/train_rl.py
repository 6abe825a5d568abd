"""Reinforcement learning: sb3-contrib ``RecurrentPPO`` with :class:`~agents.RNNPolicy` on the batched trial env.

:func:`train_rl` trains the paper's network with stock ``RecurrentPPO`` on :func:`dm_envs.sb3.make_sb3_vec_env`
(``n_envs`` trials stepped together in numpy), evaluates it on fresh trials on a schedule, stops when the shared
stopping rule fires, and writes the run folder (``docs/DESIGN.md``). The defaults in :data:`PPO_DEFAULTS` were tuned
on complexity levels 1-3 with 250 units (see the module's ``Tuning`` notes below and ``benchmarks/bench_training.py``).

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

from dm_envs import TaskConfig

from .callbacks import InterruptGuard, RLCallback, TrainingMonitor, check_finite
from .defaults import PPO_DEFAULTS, RL_SCHEDULE
from .evaluation import Evaluator, StoppingRule
from .resume import ResumeStateError, restore_rl_state, rl_state
from .runs import (
    ROLLBACK_STREAM,
    TRAIN_STREAM,
    PathLike,
    RunStart,
    TrainingDiverged,
    TrainResult,
    build_model,
    finish_message,
    open_run,
    policy_kwargs,
    stream_seed,
    task_config,
)
from .tensorboard import default_extras

def train_rl(
    complexity: Optional[int] = None,
    *,
    preset: Optional[str] = None,
    config: TaskConfig | dict | None = None,
    task_overrides: Optional[dict[str, Any]] = None,
    seed: int = 0,
    delta: float = 0.1,
    hidden_size: int = 250,
    critic: str = "shared",
    n_envs: int = PPO_DEFAULTS["n_envs"],
    n_steps: int = PPO_DEFAULTS["n_steps"],
    batch_size: int = PPO_DEFAULTS["batch_size"],
    n_epochs: int = PPO_DEFAULTS["n_epochs"],
    learning_rate: float = PPO_DEFAULTS["learning_rate"],
    ent_coef: float = PPO_DEFAULTS["ent_coef"],
    gamma: float = PPO_DEFAULTS["gamma"],
    gae_lambda: float = PPO_DEFAULTS["gae_lambda"],
    clip_range: float = PPO_DEFAULTS["clip_range"],
    vf_coef: float = PPO_DEFAULTS["vf_coef"],
    max_grad_norm: float = PPO_DEFAULTS["max_grad_norm"],
    target_kl: Optional[float] = PPO_DEFAULTS["target_kl"],
    target_accuracy: float = 0.95,
    confidence_z: float = 1.645,
    consecutive: int = 1,
    train_past: float = 1.0,
    max_steps: int = RL_SCHEDULE["max_steps"],
    eval_every: int = RL_SCHEDULE["eval_every"],
    eval_trials: int = 2000,
    checkpoint_every: int = RL_SCHEDULE["checkpoint_every"],
    max_time: Optional[float] = None,
    max_rollbacks: int = 3,
    out_dir: Optional[PathLike] = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    device: str = "cpu",
    callback: Any = None,
    checkpoint_hooks: Sequence[Any] = (),
    tensorboard_extras: bool = True,
) -> TrainResult:
    """Train the paper's RNN with PPO until it reaches the target accuracy (or the step budget runs out).

    Args:
        complexity: Task complexity level 1-4 (default 3, the context-dependent task).
        preset: A named task preset instead (``"neurogym"``).
        config: A full task config (or its dict) instead.
        task_overrides: Task fields to override, e.g. ``{"noise_amplitude": 0.3}``.
        seed: Seed of everything: initial weights (as in :func:`~agents.train_sl`), env trials, PPO sampling,
            evaluation trials.
        delta: Half-width of the ``U(-delta, delta)`` initialisation of the recurrent and input weights.
        hidden_size: Number of recurrent units (the paper's 250).
        critic: ``"shared"`` (the value head reads the actor's core, detached), ``"rnn"`` or ``"linear"``.
        n_envs: Trials stepped in parallel.
        n_steps: Env steps per env per rollout (rollout = ``n_envs * n_steps`` env steps).
        batch_size: Minibatch size in env steps.
        n_epochs: Passes over each rollout.
        learning_rate: Adam learning rate.
        ent_coef: Entropy bonus coefficient.
        gamma: Discount factor.
        gae_lambda: GAE lambda.
        clip_range: PPO clipping range.
        vf_coef: Value-loss coefficient.
        max_grad_norm: Gradient-norm clipping.
        target_kl: Stop an update's epochs early when the approximate KL divergence exceeds ``1.5 * target_kl``
            (None: never).
        target_accuracy: Target accuracy of the stopping rule.
        confidence_z: Normal quantile of the rule's Wilson lower bound (1.645: one-sided 95%).
        consecutive: Evaluations in a row that must clear the target.
        train_past: Train on after the criterion until the trials reach this multiple of the trials to criterion
            (1: stop at the criterion).
        max_steps: Budget in env steps (over all segments of a resumed run).
        eval_every: Evaluate every this many env steps (at the first rollout boundary past each multiple).
        eval_trials: Fresh trials per evaluation.
        checkpoint_every: Save ``checkpoints/step_<env steps>.zip`` every this many env steps.
        max_time: Wall-time budget in seconds (over all segments of a resumed run); None for no limit.
        max_rollbacks: How often a collapsed policy (one that stopped choosing, its hidden state run away) is rolled
            back to the last healthy evaluation and trained on with fresh trials before the run gives up with status
            ``"collapsed"`` (see :mod:`agents.callbacks`).
        out_dir: The run folder (default ``runs/rl_<task>_d<delta>_s<seed>``).
        resume: Continue the run in ``out_dir`` from its newest checkpoint (the task, seed and network must match;
            hyperparameters and budget given here apply from now on). A fresh run if there is no checkpoint. The
            resumed run continues exactly as the uninterrupted one (bit-identical weights and evaluations, same
            hyperparameters and machine): the checkpoint holds the vector env's trial streams, SB3's last
            observations and recurrent states, the generators and the monitor's state (:mod:`agents.resume`). A
            checkpoint saved without that state (an older version) resumes on fresh trial streams, with a warning.
        overwrite: Delete a previous run in ``out_dir`` first.
        progress: Show a progress bar and a summary line.
        device: Torch device (``"cpu"``; the small network is fastest there).
        callback: Extra SB3 callback(s) passed to ``learn``.
        checkpoint_hooks: Hooks run at every regular checkpoint and on the final model, e.g. the dynamics probe
            ``analysis.dynamics.probe.DynamicsProbe()`` (``dmd train`` passes it by default; see
            :mod:`agents.tensorboard`). They never change training.
        tensorboard_extras: Weight and hidden-activity histograms at checkpoints and the hyperparameters at the end
            (:mod:`agents.tensorboard`).

    Returns:
        A :class:`~agents.runs.TrainResult` (status ``"reached_target"``, ``"budget_exhausted"``, ``"interrupted"``
        or ``"collapsed"``).

    Raises:
        TrainingDiverged: parameters, hidden states or losses became non-finite (the last good checkpoint is kept).
        FileExistsError: ``out_dir`` holds a run and neither ``resume`` nor ``overwrite`` was given.

    Example:
        >>> result = train_rl(complexity=1, seed=0, out_dir="runs/rl_l1_s0")   # doctest: +SKIP
        >>> result.metadata["steps_to_criterion"], result.accuracy                # doctest: +SKIP
    """
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.logger import configure

    from dm_envs.sb3 import make_sb3_vec_env

    th.set_num_threads(1)
    cfg = task_config(complexity, preset, config, task_overrides)
    rule = StoppingRule(target_accuracy, confidence_z, consecutive, train_past)
    ppo = dict(n_steps=n_steps, batch_size=batch_size, n_epochs=n_epochs, learning_rate=learning_rate,
               ent_coef=ent_coef, gamma=gamma, gae_lambda=gae_lambda, clip_range=clip_range, vf_coef=vf_coef,
               max_grad_norm=max_grad_norm, target_kl=target_kl)
    pk = policy_kwargs(hidden_size, delta, seed, critic)
    schedule = dict(max_steps=max_steps, max_time=max_time, eval_every=eval_every, eval_trials=eval_trials,
                    checkpoint_every=checkpoint_every)
    start = open_run("rl", cfg, seed, pk, {"n_envs": n_envs, **ppo}, schedule, rule.to_dict(), out_dir,
                     resume, overwrite, device)
    run = start.run

    if start.checkpoint is None:
        model = build_model(cfg, seed, pk, n_envs, ppo, device)
    else:  # SB3 restores weights, optimizer state and num_timesteps; _resume restores the rest
        model = RecurrentPPO.load(start.checkpoint, env=make_sb3_vec_env(n_envs, config=cfg), device=device, **ppo)
    model.set_logger(configure(str(run.tb), ["tensorboard"]))

    monitor = TrainingMonitor(
        run, start.metadata, model, Evaluator(cfg, eval_trials, seed, z=confidence_z), rule, model.logger,
        eval_every, checkpoint_every, max_steps, max_time, max_rollbacks, progress, resumed=start.resumed,
    )
    monitor.on_rollback = lambda k: _fresh_trials(model, stream_seed(seed, ROLLBACK_STREAM, k))
    monitor.path_state = lambda: rl_state(model)
    monitor.tensorboard = default_extras(checkpoint_hooks, tensorboard_extras)
    if start.checkpoint is not None:
        _resume(start, model, monitor, seed)
    if start.resumed is not None and rule.should_stop(start.resumed.get("accuracy_curve", [])):  # it had finished
        return finish_message(run, model, monitor.finish("reached_target"), progress)

    guard = InterruptGuard()
    cb = RLCallback(monitor, guard)
    monitor.start()
    with guard:
        try:
            model.learn(
                max(0, max_steps - model.num_timesteps),
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
    if monitor.criterion is not None and rule.should_stop(monitor.curve):
        status = "reached_target"
    elif monitor.collapsed:
        status = "collapsed"
    elif guard.requested or not monitor.out_of_budget:  # a signal, or an extra callback stopped learning
        status = "interrupted"
        state = monitor.rewind()  # back to the start of the rollout it stopped in (redone when resumed)
        if state is not None:
            restore_rl_state(model, state)
    else:  # the budget ran out (after an update): evaluate the final model
        monitor.evaluate()
        status = "reached_target" if monitor.criterion else "collapsed" if monitor.collapsed else "budget_exhausted"
    return finish_message(run, model, monitor.finish(status), progress)


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
