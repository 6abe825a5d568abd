"""Supervised learning of the same network: Adam and cross-entropy on the ground-truth actions of whole trials.

:func:`train_sl` builds exactly the model :func:`~agents.train_rl` builds (the same ``RecurrentPPO(RNNPolicy, venv,
seed=seed, policy_kwargs=...)`` object, so a seed gives bit-identical initial weights), then trains its recurrent core
and action readout on batches of whole trials from :class:`dm_envs.TrialDataset` (the generator the envs use). The
value head is untouched. Evaluation, stopping rule, checkpoint schedule, metadata and TensorBoard layout are the
RL trainer's (:mod:`agents.callbacks`), and the saved zips open with ``RecurrentPPO.load``.

**Loss.** The network runs teacher-free over each trial from ``h0 = 0`` (as when acting); at every step the
cross-entropy of its action logits against the ground-truth action (fixate before the decision stage, the correct
choice during it) is weighted by ``fixate_weight`` on the steps before the decision stage and ``decision_weight`` on
decision-stage steps (padding: 0), and the loss is the weighted mean. The default 0.1 : 1 weighting (NeuroGym down
weights the fixate class to 0.05) focuses learning on the choice, which is all the accuracy measures, while still
teaching the network to hold fixation as the RL agent must (a choice before the go cue costs reward in RL).

**Tuning** (2-core shared CPU, 1 torch thread, 250 units, delta 0.1; env steps to the stopping rule; every run
reached the target): the defaults (Adam lr 1e-3, 64 trials per batch, weights 0.1 : 1, gradient norm clipped at 1)
took a median of 1.05M env steps (0.8-1.3M, 6 seeds; about 35k trials, 16 s) at level 3, 0.2M at level 1 and 0.4M
at level 2; 4.0M at delta 0.05 and 0.5M at delta 0.15. Alternatives at level 3 (3-6 seeds): lr 5e-4 1.0M (but slower
at levels 1-2), lr 3e-4 1.1M, lr 3e-3 2.5M, batch 32 1.0M (noisier), batch 128 1.2M, fixate weight 0.03 1.0M,
fixate weight 1 (unweighted) 2.2M. Evaluation (2000 trials every 100k env steps, the RL schedule) is about a
quarter of the wall time.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import torch as th
from torch.nn import functional as F

from dm_envs import SupervisedBatch, TaskConfig, TrialDataset, score_actions

from .callbacks import InterruptGuard, TrainingMonitor
from .defaults import PPO_DEFAULTS, SL_DEFAULTS, SL_SCHEDULE
from .evaluation import Evaluator, StoppingRule
from .io import actor_forward
from .resume import ResumeStateError
from .runs import (
    ROLLBACK_STREAM,
    TRAIN_STREAM,
    PathLike,
    RunStart,
    TrainResult,
    build_model,
    finish_message,
    open_run,
    policy_kwargs,
    stream_seed,
    task_config,
)
from .tensorboard import default_extras

def supervised_loss(
    policy: Any, batch: SupervisedBatch, fixate_weight: float = 0.1, decision_weight: float = 1.0
) -> tuple[th.Tensor, th.Tensor]:
    """Weighted cross-entropy of the policy's action logits against the ground-truth actions of a batch.

    Args:
        policy: An :class:`~agents.RNNPolicy`.
        batch: Whole trials, time-major.
        fixate_weight: Weight of the steps before the decision stage (target: fixate).
        decision_weight: Weight of the decision-stage steps (target: the correct choice).

    Returns:
        ``(loss, logits (T, B, A))``; the loss is the weighted mean over real (non-padding) steps.
    """
    obs = th.as_tensor(batch.obs, device=policy.device)
    target = th.as_tensor(batch.target, device=policy.device)
    weight = th.as_tensor(batch.loss_weights(fixate_weight, decision_weight), device=policy.device)
    _, logits = actor_forward(policy, obs)
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none")
    return (ce * weight.reshape(-1)).sum() / weight.sum(), logits


def train_sl(
    complexity: Optional[int] = None,
    *,
    preset: Optional[str] = None,
    config: TaskConfig | dict | None = None,
    task_overrides: Optional[dict[str, Any]] = None,
    seed: int = 0,
    delta: float = 0.1,
    hidden_size: int = 250,
    critic: str = "shared",
    learning_rate: float = SL_DEFAULTS["learning_rate"],
    batch_size: int = SL_DEFAULTS["batch_size"],
    fixate_weight: float = SL_DEFAULTS["fixate_weight"],
    decision_weight: float = SL_DEFAULTS["decision_weight"],
    max_grad_norm: float = SL_DEFAULTS["max_grad_norm"],
    weight_decay: float = SL_DEFAULTS["weight_decay"],
    target_accuracy: float = 0.95,
    confidence_z: float = 1.645,
    consecutive: int = 1,
    train_past: float = 1.0,
    max_steps: int = SL_SCHEDULE["max_steps"],
    eval_every: int = SL_SCHEDULE["eval_every"],
    eval_trials: int = 2000,
    checkpoint_every: int = SL_SCHEDULE["checkpoint_every"],
    max_time: Optional[float] = None,
    max_rollbacks: int = 3,
    out_dir: Optional[PathLike] = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    device: str = "cpu",
    checkpoint_hooks: Sequence[Any] = (),
    tensorboard_extras: bool = True,
) -> TrainResult:
    """Train the paper's RNN by supervised learning until it reaches the target accuracy (or the budget runs out).

    Arguments shared with :func:`~agents.train_rl` mean the same; ``critic`` only shapes the (untrained) value head
    so that the network object is the RL one.

    Args:
        complexity: Task complexity level 1-4 (default 3).
        preset: A named task preset instead (``"neurogym"``).
        config: A full task config (or its dict) instead.
        task_overrides: Task fields to override.
        seed: Seed of the initial weights (identical to the RL run's), the training trials and the evaluation trials.
        delta: Half-width of the ``U(-delta, delta)`` initialisation of the recurrent and input weights.
        hidden_size: Number of recurrent units.
        critic: The value head's mode (as in RL; the value head is not trained).
        learning_rate: Adam learning rate.
        batch_size: Trials per update.
        fixate_weight: Loss weight of the steps before the decision stage.
        decision_weight: Loss weight of the decision-stage steps.
        max_grad_norm: Gradient-norm clipping (exploding gradients of ReLU RNNs).
        weight_decay: Adam weight decay.
        target_accuracy: Target accuracy of the stopping rule.
        confidence_z: Normal quantile of the rule's Wilson lower bound.
        consecutive: Evaluations in a row that must clear the target.
        train_past: Train on after the criterion until the trials reach this multiple of the trials to criterion
            (1: stop at the criterion).
        max_steps: Budget in env steps (the steps of the trials trained on).
        eval_every: Evaluate every this many env steps.
        eval_trials: Fresh trials per evaluation.
        checkpoint_every: Save ``checkpoints/step_<env steps>.zip`` every this many env steps.
        max_time: Wall-time budget in seconds (over all segments of a resumed run); None for no limit.
        max_rollbacks: Collapse rollbacks allowed (as in RL; SL runs have not been seen to collapse).
        out_dir: The run folder (default ``runs/sl_<task>_d<delta>_s<seed>``).
        resume: Continue the run in ``out_dir`` from its newest checkpoint: exactly as the uninterrupted run would
            have gone on (Adam's state, the training-trial generator and the monitor's state travel in the
            checkpoint; see :mod:`agents.resume`). A checkpoint saved without that state (an older version) resumes on
            a fresh trial stream, with a warning.
        overwrite: Delete a previous run in ``out_dir`` first.
        progress: Show a progress bar and a summary line.
        device: Torch device.
        checkpoint_hooks: Hooks run at every regular checkpoint and on the final model (as in
            :func:`~agents.train_rl`; e.g. ``analysis.dynamics.probe.DynamicsProbe()``).
        tensorboard_extras: Histograms at checkpoints and the hyperparameters at the end (:mod:`agents.tensorboard`).

    Returns:
        A :class:`~agents.runs.TrainResult`.

    Raises:
        TrainingDiverged: the loss or its gradient became non-finite (the last good checkpoint is kept).
        FileExistsError: ``out_dir`` holds a run and neither ``resume`` nor ``overwrite`` was given.

    Example:
        >>> result = train_sl(complexity=3, seed=0, out_dir="runs/sl_l3_s0")   # doctest: +SKIP
    """
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.logger import configure

    th.set_num_threads(1)
    cfg = task_config(complexity, preset, config, task_overrides)
    rule = StoppingRule(target_accuracy, confidence_z, consecutive, train_past)
    hp = dict(learning_rate=learning_rate, batch_size=batch_size, fixate_weight=fixate_weight,
              decision_weight=decision_weight, max_grad_norm=max_grad_norm, weight_decay=weight_decay,
              optimizer="Adam", loss="weighted cross-entropy on ground-truth actions, whole trials, h0 = 0")
    pk = policy_kwargs(hidden_size, delta, seed, critic)
    schedule = dict(max_steps=max_steps, max_time=max_time, eval_every=eval_every, eval_trials=eval_trials,
                    checkpoint_every=checkpoint_every)
    start = open_run("sl", cfg, seed, pk, hp, schedule, rule.to_dict(), out_dir, resume, overwrite, device)
    run = start.run

    if start.checkpoint is None:
        # Exactly the RL trainer's default model; SL replaces the optimizer (Adam over the same parameters: the value
        # head gets no gradient, so Adam leaves it alone). Its state is saved in the checkpoint zips, and with it the
        # training-trial generator and the monitor's state (agents.resume): a resumed run continues bit for bit as
        # the uninterrupted one would have.
        model = build_model(cfg, seed, pk, PPO_DEFAULTS["n_envs"],
                            {k: v for k, v in PPO_DEFAULTS.items() if k != "n_envs"}, device)
        model.policy.optimizer = th.optim.Adam(model.policy.parameters(), lr=learning_rate, weight_decay=weight_decay)
    else:
        model = RecurrentPPO.load(start.checkpoint, device=device)
        for group in model.policy.optimizer.param_groups:
            group.update(lr=learning_rate, weight_decay=weight_decay)
    policy, optimizer = model.policy, model.policy.optimizer
    policy.set_training_mode(True)
    data = TrialDataset(config=cfg, batch_size=batch_size, seed=seed)
    logger = configure(str(run.tb), ["tensorboard"])
    model.set_logger(logger)

    monitor = TrainingMonitor(
        run, start.metadata, model, Evaluator(cfg, eval_trials, seed, z=confidence_z), rule, logger,
        eval_every, checkpoint_every, max_steps, max_time, max_rollbacks, progress, resumed=start.resumed,
    )
    monitor.on_rollback = lambda k: setattr(data, "rng", np.random.default_rng(stream_seed(seed, ROLLBACK_STREAM, k)))
    monitor.path_state = lambda: {"data_rng": data.rng.bit_generator.state}
    monitor.tensorboard = default_extras(checkpoint_hooks, tensorboard_extras)
    if start.checkpoint is not None:
        _resume(start, data, monitor, seed)
    if start.resumed is not None and rule.should_stop(start.resumed.get("accuracy_curve", [])):
        return finish_message(run, model, monitor.finish("reached_target"), progress)

    guard = InterruptGuard()
    monitor.start()
    with guard:
        while True:
            if monitor.evaluate_and_checkpoint():
                status = "reached_target" if monitor.criterion else "collapsed"
                break
            if guard.requested:
                status = "interrupted"
                break
            if monitor.out_of_budget:
                if not monitor.last_evaluated_at_current_step():  # evaluate the final model
                    monitor.evaluate()
                status = ("reached_target" if monitor.criterion else "collapsed" if monitor.collapsed
                          else "budget_exhausted")
                break
            # ---- one supervised update on a batch of whole trials
            batch = data.sample()
            loss, logits = supervised_loss(policy, batch, fixate_weight, decision_weight)
            if not bool(th.isfinite(loss)):
                monitor.diverged("the loss")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = th.nn.utils.clip_grad_norm_(policy.parameters(), max_grad_norm)
            if not bool(th.isfinite(grad_norm)):
                monitor.diverged("the gradient")
            optimizer.step()
            monitor.advance(env_steps=int(batch.mask.sum()), trials=batch_size, updates=1)
            # training-batch accuracy of the greedy policy (free: the logits are at hand)
            actions = logits.detach().argmax(-1).T.cpu().numpy()
            logger.record_mean("train/cross_entropy", loss.item())  # not train/loss: that tag is PPO's loss in RL
            logger.record_mean("train/grad_norm", grad_norm.item())
            logger.record_mean("train/batch_accuracy", score_actions(batch.trials, actions).accuracy)
    return finish_message(run, model, monitor.finish(status), progress)


def _resume(start: RunStart, data: TrialDataset, monitor: TrainingMonitor, seed: int) -> None:
    """Put the training-trial generator and the monitor where the checkpoint's run stood; without a saved resume state,
    go on with a fresh trial stream instead."""
    why = "the checkpoint holds no saved training state (saved by an older version)"
    if start.state is not None:
        try:
            trainer = start.state.get("trainer") or {}
            if "data_rng" not in trainer:
                raise ResumeStateError("the checkpoint's state has no training-trial generator")
            data.rng.bit_generator.state = trainer["data_rng"]
            monitor.restore_state(start.state)
            start.announce(True, "training-trial generator and monitor restored; continuing exactly")
            return
        except (ResumeStateError, TypeError, ValueError) as err:
            why = f"the checkpoint's training state does not fit: {err}"
    data.rng = np.random.default_rng(stream_seed(seed, TRAIN_STREAM, start.segment))
    start.announce(False, f"{why}; training goes on with a fresh trial stream")


__all__: Sequence[str] = ["SL_DEFAULTS", "SL_SCHEDULE", "supervised_loss", "train_sl"]
