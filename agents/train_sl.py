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

from dm_envs import SupervisedBatch, TrialDataset, score_actions

from .callbacks import InterruptGuard, TrainingMonitor
from .config import RunConfig, SLConfig, make_configs
from .defaults import PPO_DEFAULTS, SL_DEFAULTS, SL_SCHEDULE
from .io import actor_forward
from .resume import ResumeStateError
from .runs import (
    ROLLBACK_STREAM,
    TRAIN_STREAM,
    RunStart,
    TrainResult,
    build_model,
    finish_message,
    open_run,
    stream_seed,
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
    run: RunConfig | int | None = None,
    sl: Optional[SLConfig] = None,
    *,
    checkpoint_hooks: Sequence[Any] = (),
    **settings: Any,
) -> TrainResult:
    """Train the paper's RNN by supervised learning until it reaches the target accuracy (or the budget runs out).

    The settings come as configs, as keywords, or both (keywords replace the configs' fields), as for
    :func:`~agents.train_rl`; the run settings mean the same. ``critic`` only shapes the (untrained) value head so that
    the network object is the RL one; the budget is counted in env steps (the steps of the trials trained on).

    Args:
        run: The run's settings (:class:`~agents.config.RunConfig`; None: the defaults, with :data:`SL_SCHEDULE`'s
            budget and schedule), or the task's level 1-4 (default 3). The ``seed`` seeds the initial
            weights (identical to the RL run's), the training trials and the evaluation trials. With ``resume``, the
            run in ``out_dir`` continues from its newest checkpoint exactly as the uninterrupted run would have gone
            on (Adam's state, the training-trial generator and the monitor's state travel in the checkpoint; see
            :mod:`agents.resume`); a checkpoint saved without that state (an older version) resumes on a fresh trial
            stream, with a warning. ``max_rollbacks``: collapse rollbacks allowed (as in RL; SL runs have not been
            seen to collapse).
        sl: The SL hyperparameters (:class:`~agents.config.SLConfig`; None: :data:`SL_DEFAULTS`).
        checkpoint_hooks: Hooks run at every regular checkpoint and on the final model (as in
            :func:`~agents.train_rl`; e.g. ``analysis.dynamics.probe.DynamicsProbe()``).
        **settings: Fields of :class:`~agents.config.RunConfig` or :class:`~agents.config.SLConfig` (e.g.
            ``seed=1, batch_size=16``), applied over ``run`` and ``sl``.

    Returns:
        A :class:`~agents.runs.TrainResult`.

    Raises:
        TrainingDiverged: the loss or its gradient became non-finite (the last good checkpoint is kept).
        FileExistsError: ``out_dir`` holds a run and neither ``resume`` nor ``overwrite`` was given.
        TypeError, ValueError: a setting that does not exist or is not allowed (the message names it).

    Example:
        >>> result = train_sl(level=3, seed=0, out_dir="runs/sl_l3_s0")   # doctest: +SKIP
    """
    th.set_num_threads(1)
    run, sl = make_configs("sl", run, sl, caller="train_sl", **settings)
    start = open_run("sl", run, {**sl.to_dict(), "optimizer": "Adam",
                                 "loss": "weighted cross-entropy on ground-truth actions, whole trials, h0 = 0"})
    model = _open_model(start, sl)
    data = TrialDataset(config=start.task, batch_size=sl.batch_size, seed=run.seed)
    monitor = TrainingMonitor(start, model)
    monitor.guard.on_rollback = lambda k: setattr(data, "rng",
                                                  np.random.default_rng(stream_seed(run.seed, ROLLBACK_STREAM, k)))
    monitor.path_state = lambda: {"data_rng": data.rng.bit_generator.state}
    monitor.tensorboard = default_extras(checkpoint_hooks, run.tensorboard_extras)
    if start.checkpoint is not None:
        _resume(start, data, monitor, run.seed)
    if monitor.finished_before():
        return finish_message(start.run, model, monitor.finish("reached_target"), run.progress)
    status = _train(model.policy, data, monitor, sl)
    return finish_message(start.run, model, monitor.finish(status), run.progress)


def _open_model(start: RunStart, sl: SLConfig) -> Any:
    """The run's model, in training mode and logging to the run's ``tb/``: built (a fresh run) or loaded from the
    checkpoint to resume.

    A fresh model is exactly the RL trainer's default model; SL replaces the optimizer (Adam over the same parameters:
    the value head gets no gradient, so Adam leaves it alone). Its state is saved in the checkpoint zips, and with it
    the training-trial generator and the monitor's state (:mod:`agents.resume`): a resumed run continues bit for bit
    as the uninterrupted one would have.
    """
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.logger import configure

    settings = start.settings
    if start.checkpoint is None:
        model = build_model(start.task, settings.seed, start.policy_kwargs, PPO_DEFAULTS["n_envs"],
                            {k: v for k, v in PPO_DEFAULTS.items() if k != "n_envs"}, settings.device)
        model.policy.optimizer = th.optim.Adam(model.policy.parameters(), lr=sl.learning_rate,
                                               weight_decay=sl.weight_decay)
    else:
        model = RecurrentPPO.load(start.checkpoint, device=settings.device)
        for group in model.policy.optimizer.param_groups:
            group.update(lr=sl.learning_rate, weight_decay=sl.weight_decay)
    model.policy.set_training_mode(True)
    model.set_logger(configure(str(start.run.tb), ["tensorboard"]))
    return model


def _train(policy: Any, data: TrialDataset, monitor: TrainingMonitor, sl: SLConfig) -> str:
    """The training loop: evaluate and checkpoint on schedule between updates until something stops it; the run's
    status."""
    guard = InterruptGuard()
    monitor.start()
    with guard:
        while True:
            if monitor.evaluate_and_checkpoint():
                return "reached_target" if monitor.criterion else "collapsed"
            if guard.requested:
                return "interrupted"
            if monitor.out_of_budget:
                if not monitor.last_evaluated_at_current_step():  # evaluate the final model
                    monitor.evaluate()
                return monitor.budget_status()
            _update(policy, data, monitor, sl)


def _update(policy: Any, data: TrialDataset, monitor: TrainingMonitor, sl: SLConfig) -> None:
    """One supervised update on a batch of whole trials; counts it and logs ``train/*``."""
    optimizer = policy.optimizer
    batch = data.sample()
    loss, logits = supervised_loss(policy, batch, sl.fixate_weight, sl.decision_weight)
    if not bool(th.isfinite(loss)):
        monitor.diverged("the loss")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = th.nn.utils.clip_grad_norm_(policy.parameters(), sl.max_grad_norm)
    if not bool(th.isfinite(grad_norm)):
        monitor.diverged("the gradient")
    optimizer.step()
    monitor.advance(env_steps=int(batch.mask.sum()), trials=sl.batch_size, updates=1)
    # training-batch accuracy of the greedy policy (free: the logits are at hand)
    actions = logits.detach().argmax(-1).T.cpu().numpy()
    monitor.log.train(cross_entropy=loss.item(), grad_norm=grad_norm.item(),
                      batch_accuracy=score_actions(batch.trials, actions).accuracy)


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
