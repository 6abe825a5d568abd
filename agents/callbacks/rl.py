"""The SB3 callback that drives a :class:`~agents.callbacks.monitor.TrainingMonitor` from ``RecurrentPPO.learn``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback

from .interrupts import InterruptGuard, check_finite

if TYPE_CHECKING:
    from .monitor import TrainingMonitor


def optimizer_steps(policy: Any) -> int:
    """Optimizer steps taken so far: Adam's step count of the recurrent weights (saved and restored with the model,
    so it carries over a resume; exact also when PPO stops an update early on ``target_kl``)."""
    state = policy.optimizer.state.get(policy.lstm_actor.weight_hh_l0, {})
    step = state.get("step", 0)
    return int(step.item() if isinstance(step, th.Tensor) else step)


class RLCallback(BaseCallback):
    """Drives a :class:`~agents.callbacks.monitor.TrainingMonitor` from ``RecurrentPPO.learn``.

    Between PPO iterations (at the start of each rollout, when the weights are those the last update produced) it
    checks that parameters and hidden states are finite, evaluates and checkpoints on schedule, and stops learning
    before the next update when the stopping rule fires, the policy collapsed for good, the wall-time budget is spent
    or a stop was requested; it counts finished trials. The start of each rollout is the run's safe point
    (:meth:`~agents.callbacks.monitor.TrainingMonitor.mark_safe_point`): a stop inside a rollout is saved as that
    point (the weights have not changed since), and the resumed run redoes the rollout.

    Args:
        monitor: The run's monitor.
        guard: The interrupt guard polled at every step.
    """

    def __init__(self, monitor: "TrainingMonitor", guard: InterruptGuard) -> None:
        super().__init__()
        self.monitor = monitor
        self.guard = guard
        self.stop = False
        self.in_rollout = False
        """Whether learning is inside a rollout (from its start to its end): a stop there is mid-rollout."""

    def sync(self) -> None:
        """Copy SB3's env-step count and the optimizer's step count to the monitor."""
        self.monitor.set_counters(self.model.num_timesteps, optimizer_steps(self.model.policy))

    def _on_rollout_start(self) -> None:
        mon = self.monitor
        mon.release_safe_point()  # checkpoints saved here capture the state as it is
        self.sync()
        bad = check_finite(self.model.policy, self.model._last_lstm_states.pi[0])
        if bad is not None:
            mon.diverged(bad)
        self.stop = mon.evaluate_and_checkpoint()
        mon.mark_safe_point()  # the state this rollout starts from, after any rollback
        self.in_rollout = True

    def _on_step(self) -> bool:
        mon = self.monitor
        mon.advance(trials=int(np.count_nonzero(self.locals["dones"])))
        return not (self.stop or self.guard.requested or mon.out_of_time)

    def _on_rollout_end(self) -> None:
        self.in_rollout = False
        self.monitor.set_counters(self.num_timesteps)
        self.monitor.log.speed()


__all__ = ["RLCallback", "optimizer_steps"]
