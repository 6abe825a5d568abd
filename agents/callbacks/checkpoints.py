"""Checkpoints: the regular ``step_<env steps>.zip`` and the first crossings of accuracy levels.

``checkpoints/step_<env steps>.zip`` is saved every ``checkpoint_every`` env steps, starting with the initial network
at step 0, and ``acc_050/070/090/target.zip`` at the first evaluation whose accuracy reaches 0.5, 0.7, 0.9 and the
target (each zip saved at an evaluation carries every crossing of it). Every zip holds the model, the metadata as of
its step and the resume state of the last safe point (:mod:`agents.resume`); the newest is the run's last good
checkpoint.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ..evaluation import Evaluation
from ..runs import CROSSING_LEVELS, save_model
from .schedule import Every

if TYPE_CHECKING:
    from .monitor import TrainingMonitor


class CheckpointSaver:
    """Saves a run's checkpoints on schedule and at first crossings.

    Args:
        monitor: The run's monitor (its model, metadata and resume state).
        every: Save ``step_<env steps>.zip`` every this many env steps (and at step 0 of a fresh run).
        resumed: Metadata of the checkpoint a resumed run continues (its crossings and checkpoint time), or None.
    """

    def __init__(self, monitor: "TrainingMonitor", every: int, resumed: Optional[dict[str, Any]] = None) -> None:
        r = resumed or {}
        self.monitor = monitor
        self.crossings: dict[str, Any] = dict(r.get("crossings", {}))
        self.time = float(r.get("checkpoint_time", 0.0))
        """Seconds spent saving, over all segments."""
        self.last: Optional[Path] = None
        """The last checkpoint saved in this segment (the last good one)."""
        self.schedule = Every(every, after=monitor.env_steps if resumed else -1)

    def on_schedule(self) -> None:
        """Save ``step_<env steps>.zip`` if one is due."""
        steps = self.monitor.env_steps
        if self.schedule.due(steps):
            self.save(self.monitor.run.step_checkpoint(steps))
            self.schedule.done_at(steps)
            if self.monitor.tensorboard is not None:  # histograms, the dynamics probe: never change training
                self.monitor.tensorboard.checkpoint(self.monitor)

    def restart(self) -> None:
        """The counters were set back (a resume or a rewind): the next is due after the current env step."""
        self.schedule.done_at(self.monitor.env_steps)

    def on_evaluation(self, ev: Evaluation, target: float) -> None:
        """Record the first crossings of :data:`~agents.runs.CROSSING_LEVELS` and ``target`` by the newest
        evaluation ``ev`` and save their checkpoints."""
        mon = self.monitor
        levels = [(lv, False) for lv in CROSSING_LEVELS if lv < target] + [(target, True)]
        crossed = []
        for level, is_target in levels:
            key = "target" if is_target else f"{level:g}"
            if key not in self.crossings and ev.accuracy >= level:
                path = mon.run.crossing_checkpoint(level, target=is_target)
                self.crossings[key] = {
                    "level": level,
                    "evaluation": len(mon.curve) - 1,
                    "env_steps": mon.env_steps,
                    "trials": mon.trials,
                    "accuracy": ev.accuracy,
                    "checkpoint": mon.run.relative(path),
                }
                crossed.append(path)
        for path in crossed:  # each carries every crossing of this evaluation
            self.save(path)

    def save(self, path: Path) -> Path:
        """Save the model with the metadata as of now (and the resume state) to ``path``; it becomes the last good
        checkpoint."""
        mon = self.monitor
        t = time.perf_counter()
        save_model(mon.model, path, mon.metadata(), resume_state=mon.saved_state())
        self.time += time.perf_counter() - t
        self.last = path
        return path


__all__ = ["CheckpointSaver"]
