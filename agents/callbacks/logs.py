"""Logging of a training run: TensorBoard scalars and the progress bar (the one place a run logs).

TensorBoard layout (the same for both rules; ``tensorboard --logdir`` on a parent folder shows them side by side):
``eval/*`` (accuracy, its Wilson lower bound, accuracy per coherence, outcome rates, greedy reward, ``rollbacks``) and
``time/*`` (``trials``, ``trials_per_s``, ``fps`` in env steps/s) against env steps; the same ``eval/*`` scalars
under ``eval_vs_trials/*`` against trials seen; ``train/*`` losses (SB3's PPO losses for RL; the cross-entropy,
gradient norm and batch accuracy for SL); ``rollout/*`` (SB3's episode reward and success rate; RL only).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ..evaluation import Evaluation

if TYPE_CHECKING:
    from .monitor import TrainingMonitor


class RunLogger:
    """Writes a run's TensorBoard scalars and draws its progress bar.

    Args:
        monitor: The run's monitor (its counters, curve, budget and folder).
        logger: An SB3 ``Logger`` writing TensorBoard files in the run's ``tb/`` (SB3's own ``train/*`` and
            ``rollout/*`` go there too).
        progress: Show a tqdm progress bar.
    """

    def __init__(self, monitor: "TrainingMonitor", logger: Any, progress: bool = True) -> None:
        self.monitor = monitor
        self.logger = logger
        self.progress = progress
        self._writer: Any = None  # eval_vs_trials/*: a step axis of its own (trials), so a writer of its own
        self._bar: Any = None
        self._speed_mark = (time.perf_counter(), monitor.env_steps, monitor.trials)

    def start(self) -> None:
        """Open the progress bar and start measuring speed (right before the training loop)."""
        from tqdm.auto import tqdm

        mon = self.monitor
        self._speed_mark = (mon.started, mon.env_steps, mon.trials)
        base = mon.base
        self._bar = tqdm(
            total=mon.max_steps,
            initial=min(mon.env_steps, mon.max_steps),
            unit="step",
            unit_scale=True,
            dynamic_ncols=True,
            mininterval=1.0,
            desc=f"{base.get('learning_rule', '').upper()} {base.get('task', '')} s{base.get('seed', '')}",
            disable=not self.progress,
        )

    def speed(self) -> None:
        """Record ``time/trials``, ``time/trials_per_s`` and ``time/fps`` since the last call; refresh the bar."""
        mon = self.monitor
        t, steps, trials = time.perf_counter(), mon.env_steps, mon.trials
        t_prev, steps_prev, trials_prev = self._speed_mark
        dt = max(t - t_prev, 1e-9)
        self.logger.record("time/trials", trials)
        self.logger.record("time/trials_per_s", (trials - trials_prev) / dt)
        self.logger.record("time/fps", int((steps - steps_prev) / dt))
        self._speed_mark = (t, steps, trials)
        self.refresh()

    def train(self, **scalars: float) -> None:
        """Record training scalars as ``train/<name>``, averaged until the next dump (SL's loss and friends)."""
        for key, value in scalars.items():
            self.logger.record_mean(f"train/{key}", value)

    def evaluation(self, ev: Evaluation) -> None:
        """Write an evaluation's ``eval/*`` scalars (against env steps and, as ``eval_vs_trials/*``, trials) and the
        speed since the last record."""
        mon = self.monitor
        scalars = {
            "accuracy": ev.accuracy,
            "accuracy_lower": ev.lower,
            "choice_accuracy": ev.choice_accuracy,
            "reward": ev.reward,
            "fixation_break_rate": ev.fixation_break_rate,
            "go_choice_prob": ev.go_choice_prob,
            **{f"rate_{k}": v for k, v in ev.rates.items()},
            **{f"accuracy_coh_{c:g}": v for c, v in ev.by_coherence.items()},
        }
        for key, value in scalars.items():
            if np.isfinite(value):
                self.logger.record(f"eval/{key}", value)
        self.speed()
        self.logger.dump(step=mon.env_steps)
        writer = self.writer
        for key, value in scalars.items():
            if np.isfinite(value):
                writer.add_scalar(f"eval_vs_trials/{key}", value, mon.trials)
        writer.flush()

    @property
    def writer(self) -> Any:
        """The run's own ``SummaryWriter`` on ``RUN/tb`` (opened on first use, closed by :meth:`close`): the
        ``eval_vs_trials/*`` scalars and the checkpoint hooks' histograms, images and hyperparameters."""
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.monitor.run.tb))
        return self._writer

    def rollback(self, count: int, message: str) -> None:
        """Record ``eval/rollbacks`` and say on the progress bar what happened."""
        self.logger.record("eval/rollbacks", count)
        self.logger.dump(step=self.monitor.env_steps)
        if self._bar is not None and self.progress:
            self._bar.write(message)

    def refresh(self) -> None:
        """Bring the progress bar up to date (redraws at most every second)."""
        if self._bar is None:
            return
        mon = self.monitor
        if mon.curve:
            last = mon.curve[-1]
            self._bar.set_postfix(acc=f"{last['accuracy']:.3f}", lo=f"{last['lower']:.3f}", trials=mon.trials,
                                  refresh=False)
        self._bar.update(min(mon.env_steps, mon.max_steps) - self._bar.n)

    def close(self) -> None:
        """Close the progress bar and the TensorBoard writers."""
        if self._bar is not None:
            self.refresh()
            self._bar.refresh()
            self._bar.close()
            self._bar = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.logger.close()


__all__ = ["RunLogger"]
