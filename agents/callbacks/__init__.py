"""Training-loop machinery shared by the RL and SL trainers, one concern per module (in the style of SB3's callbacks).

* :class:`TrainingMonitor` (``monitor``) - the coordinator both learning rules share: counters (env steps, trials,
  optimizer updates), clock and budget, safe points and the exact-resume state, the metadata; it drives the parts:

  * :class:`EvaluationAndStopping` (``stopping``) - evaluation on schedule with the shared
    :class:`~agents.evaluation.Evaluator`, the accuracy curve and the stopping rule;
  * :class:`CheckpointSaver` (``checkpoints``) - ``step_<env steps>.zip`` every ``checkpoint_every`` env steps,
    starting with the initial network at step 0, and ``acc_050/070/090/target.zip`` at the first crossings;
  * :class:`CollapseGuard` (``rollback``) - the collapse guard (below);
  * :class:`RunLogger` (``logs``) - TensorBoard scalars and the progress bar: the one place a run logs.

* :class:`RLCallback` (``rl``) - an SB3 callback that drives a monitor from ``RecurrentPPO.learn``.
* :class:`InterruptGuard` (``interrupts``) - turns Ctrl-C / SIGTERM into a request to stop (SL: before the next
  update; RL: at the next step, rewound to the start of its rollout), after which the trainers save a checkpoint that
  resumes exactly; a second Ctrl-C interrupts at once.
* :func:`check_finite` (``interrupts``) - the divergence check.

**Collapse guard** (:mod:`agents.callbacks.rollback`). A PPO-trained bias-free ReLU core can run away (its hidden
state growing through the trial until the fixate logit wins everywhere) and never recover. The guard keeps the weights
and optimizer state of the last healthy evaluation (in memory and in every checkpoint); when an evaluation finds the
policy collapsed (saturated onto not choosing, or at a tenth of chance after the run had learned) it restores them and
the trainer switches to fresh training trials, at most ``max_rollbacks`` times, after which the run stops with status
``"collapsed"``. Every rollback is recorded in the metadata (``rollbacks``) and in TensorBoard (``eval/rollbacks``).

**Exact resume** (:mod:`agents.callbacks.monitor`, :mod:`agents.resume`). Every checkpoint carries the state that
decides how training goes on: the monitor's counters, the evaluator's index, the healthy weights, the global
generators, and the trainer's part (its :attr:`TrainingMonitor.path_state` hook). Checkpoints are saved at safe points
only; the RL callback marks the start of each rollout as one (:meth:`TrainingMonitor.mark_safe_point`), and a run
stopped mid-rollout is rewound to it (:meth:`TrainingMonitor.rewind`) before its checkpoint is saved.

**TensorBoard layout** (:mod:`agents.callbacks.logs`; the same for both rules, so ``tensorboard --logdir`` on a
parent folder shows them side by side): ``eval/*`` (accuracy, its Wilson lower bound, accuracy per coherence, outcome
rates, greedy reward) and ``time/*`` (``trials``, ``trials_per_s``, ``fps`` in env steps/s) against env steps; the
same ``eval/*`` scalars under ``eval_vs_trials/*`` against trials seen; ``train/*`` losses (SB3's PPO losses for RL;
the cross-entropy for SL); ``rollout/*`` (SB3's episode reward and success rate; RL only).
"""

from __future__ import annotations

from .checkpoints import CheckpointSaver
from .interrupts import InterruptGuard, check_finite
from .logs import RunLogger
from .monitor import TrainingMonitor
from .rl import RLCallback, optimizer_steps
from .rollback import COLLAPSE_FRACTION_OF_CHANCE, CollapseGuard
from .stopping import EvaluationAndStopping

__all__ = ["COLLAPSE_FRACTION_OF_CHANCE", "CheckpointSaver", "CollapseGuard", "EvaluationAndStopping",
           "InterruptGuard", "RLCallback", "RunLogger", "TrainingMonitor", "check_finite", "optimizer_steps"]
