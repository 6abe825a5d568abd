"""Evaluation on schedule and the stopping rule: the accuracy curve and the criterion of a run.

Every ``eval_every`` env steps (and at step 0) the policy is scored with greedy actions on fresh trials by the
shared :class:`~agents.evaluation.Evaluator` (evaluation ``k`` of a run draws the same trials for RL and SL); each
evaluation is appended to the curve (``accuracy_curve`` in the metadata), and the stopping rule
(:class:`~agents.evaluation.StoppingRule`) decides from the curve whether training stops. The first evaluation at
which the rule's criterion holds is the run's ``criterion`` (steps, trials, updates and wall time to criterion).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Optional

from ..evaluation import Evaluation, Evaluator, StoppingRule
from .schedule import Every

if TYPE_CHECKING:
    from .monitor import TrainingMonitor


class EvaluationAndStopping:
    """Evaluates a run's policy on schedule and applies the stopping rule to the curve.

    Args:
        monitor: The run's monitor (its counters, clock and model).
        evaluator: The shared evaluator.
        rule: The stopping rule.
        every: Evaluate every this many env steps (and at step 0).
        resumed: Metadata of the checkpoint a resumed run continues (its curve, criterion and evaluation time), or
            None.
    """

    def __init__(self, monitor: "TrainingMonitor", evaluator: Evaluator, rule: StoppingRule, every: int,
                 resumed: Optional[dict[str, Any]] = None) -> None:
        r = resumed or {}
        self.monitor = monitor
        self.evaluator = evaluator
        self.rule = rule
        self.curve: list[dict[str, Any]] = list(r.get("accuracy_curve", []))
        self.criterion: Optional[dict[str, Any]] = r.get("criterion")
        self.time = float(r.get("eval_time", 0.0))
        """Seconds spent evaluating, over all segments."""
        evaluator.index = len(self.curve)  # carry on the evaluation stream where the run left it
        self.schedule = Every(every, after=int(self.curve[-1]["env_steps"]) if self.curve else -1)

    @property
    def due(self) -> bool:
        """Whether an evaluation is due at the current env step."""
        return self.schedule.due(self.monitor.env_steps)

    def evaluate(self) -> Evaluation:
        """Evaluate the current policy on the next fresh trials and append the record to the curve.

        Raises:
            TrainingDiverged: the policy produced non-finite outputs.
        """
        mon = self.monitor
        t = time.perf_counter()
        ev = self.evaluator(mon.model.policy)
        self.time += time.perf_counter() - t
        if not ev.finite:
            mon.diverged("non-finite action logits at evaluation")
        self.curve.append({
            "env_steps": mon.env_steps,
            "trials": mon.trials,
            "updates": mon.updates,
            "wall_time": round(mon.wall_time, 3),
            **ev.to_dict(),
        })
        return ev

    def judge(self, ev: Evaluation) -> bool:
        """Apply the stopping rule after the newest evaluation ``ev``; record the criterion the first time it holds.

        Returns:
            Whether training must stop.
        """
        mon = self.monitor
        stop = self.rule.should_stop(self.curve)
        if self.criterion is None and (stop or self.rule.reached(self.curve)):
            self.criterion = {
                "evaluation": len(self.curve) - 1,
                "env_steps": mon.env_steps,
                "trials": mon.trials,
                "updates": mon.updates,
                "wall_time": round(mon.wall_time, 3),
                "accuracy": ev.accuracy,
                "lower": self.rule.lower_bound(ev.accuracy, ev.n_trials),
            }
        return stop

    def evaluated_now(self) -> bool:
        """Whether the newest evaluation is of the model at the current env step."""
        return bool(self.curve) and int(self.curve[-1]["env_steps"]) == self.monitor.env_steps

    def metadata(self) -> dict[str, Any]:
        """The criterion's part of the run's metadata."""
        crit = self.criterion
        return {
            "reached_target": crit is not None,
            "steps_to_criterion": crit["env_steps"] if crit else None,
            "trials_to_criterion": crit["trials"] if crit else None,
            "updates_to_criterion": crit["updates"] if crit else None,
            "wall_time_to_criterion": crit["wall_time"] if crit else None,
            "criterion": crit,
            "final_accuracy": self.curve[-1]["accuracy"] if self.curve else None,
        }


__all__ = ["EvaluationAndStopping"]
