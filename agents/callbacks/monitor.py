"""The coordinator of a training run: counters, clock, safe points and the run's metadata.

:class:`TrainingMonitor` holds what every part of the training loop reads (env steps, trials, optimizer updates, wall
time, the budget) and drives the parts, one concern each:

* :class:`~agents.callbacks.stopping.EvaluationAndStopping` - evaluation on schedule, the curve and the stopping rule;
* :class:`~agents.callbacks.checkpoints.CheckpointSaver` - regular and first-crossing checkpoints;
* :class:`~agents.callbacks.rollback.CollapseGuard` - the collapse guard (rollback to the last healthy weights);
* :class:`~agents.callbacks.logs.RunLogger` - TensorBoard scalars and the progress bar.

**Exact resume.** Every checkpoint carries the state that decides how training goes on (:mod:`agents.resume`): the
monitor's counters, the evaluator's index, the healthy weights, the global generators, and the trainer's part (its
:attr:`TrainingMonitor.path_state` hook). Checkpoints are saved at safe points only; the RL callback marks the start of
each rollout as one (:meth:`TrainingMonitor.mark_safe_point`), and a run stopped mid-rollout is rewound to it
(:meth:`TrainingMonitor.rewind`) before its checkpoint is saved.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, NoReturn, Optional

from ..evaluation import Evaluator
from ..resume import global_rng_state, set_global_rng_state
from ..runs import RunStart, TrainingDiverged, now
from .checkpoints import CheckpointSaver
from .logs import RunLogger
from .rollback import CollapseGuard
from .stopping import EvaluationAndStopping


class TrainingMonitor:
    """Evaluation, stopping, checkpoints, collapse guard, logging and metadata of one training run (RL or SL).

    The trainer owns the loop and calls :meth:`advance` as it consumes env steps and trials, and
    :meth:`evaluate_and_checkpoint` at its safe points (between updates); the monitor decides when an evaluation or a
    checkpoint is due.

    Args:
        start: The opened run (:func:`~agents.runs.open_run`): its folder, fixed metadata, settings
            (:class:`~agents.config.RunConfig`: evaluation, stopping rule, schedule, budget, rollbacks, progress bar)
            and task, and the metadata of the checkpoint a resumed run continues (its counters, curve and times).
        model: The ``RecurrentPPO`` model being trained (saved as checkpoints; its ``policy`` is evaluated; its
            ``logger`` writes TensorBoard files in the run's ``tb/``).
    """

    def __init__(self, start: RunStart, model: Any) -> None:
        settings = start.settings
        resumed = start.resumed
        r = resumed or {}
        self.run = start.run
        self.base = dict(start.metadata)
        self.model = model
        self.settings = settings
        self.max_steps = int(settings.max_steps)
        self.max_time = settings.max_time
        self.env_steps = int(r.get("env_steps", 0))
        self.trials = int(r.get("trials", 0))
        self.updates = int(r.get("updates", 0))
        self.resumes: list[dict[str, Any]] = list(r.get("resumes", []))
        self.created = r.get("created", now())
        self.status = "running"
        self._resumed = resumed is not None
        self.path_state: Optional[Callable[[], Optional[dict[str, Any]]]] = None
        """The trainer's hook: its part of the resume state, captured now (see :mod:`agents.resume`)."""
        self.tensorboard: Any = None
        """The trainer's :class:`~agents.tensorboard.TensorBoardExtras`: checkpoint hooks and hyperparameters."""
        self.task = start.task
        self._safe: Optional[dict[str, Any]] = None  # the resume state of the last safe point; None: now is one
        self._time_before = float(r.get("wall_time", 0.0))
        self.started = time.perf_counter()
        evaluator = Evaluator(start.task, settings.eval_trials, settings.seed, z=settings.confidence_z)
        self.evaluation = EvaluationAndStopping(self, evaluator, settings.stopping_rule(), settings.eval_every, resumed)
        self.checkpoints = CheckpointSaver(self, settings.checkpoint_every, resumed)
        self.guard = CollapseGuard(self, settings.max_rollbacks, 1.0 / start.task.n_choices, resumed)
        self.log = RunLogger(self, model.logger, settings.progress)

    # ------------------------------------------------------------------ what the trainers read
    @property
    def curve(self) -> list[dict[str, Any]]:
        """The evaluations so far (``accuracy_curve``)."""
        return self.evaluation.curve

    @property
    def criterion(self) -> Optional[dict[str, Any]]:
        """The evaluation at which the stopping rule's criterion first held, or None."""
        return self.evaluation.criterion

    @property
    def collapsed(self) -> bool:
        """Whether the policy collapsed with no rollback left."""
        return self.guard.collapsed

    def finished_before(self) -> bool:
        """Whether a resumed run had already met its stopping rule (there is nothing left to train)."""
        return self._resumed and self.evaluation.rule.should_stop(self.curve)

    def budget_status(self) -> str:
        """The status of a run whose budget ran out (after its final evaluation)."""
        return "reached_target" if self.criterion else "collapsed" if self.collapsed else "budget_exhausted"

    # ------------------------------------------------------------------ counters and time
    @property
    def wall_time(self) -> float:
        """Seconds of training so far, over all segments (evaluation and checkpoints included)."""
        return self._time_before + time.perf_counter() - self.started

    @property
    def out_of_time(self) -> bool:
        """Whether the wall-time budget is spent."""
        return self.max_time is not None and self.wall_time >= self.max_time

    @property
    def out_of_budget(self) -> bool:
        """Whether the env-step or the wall-time budget is spent."""
        return self.env_steps >= self.max_steps or self.out_of_time

    def start(self) -> None:
        """Start the clock and the progress bar (call right before the training loop)."""
        self.started = time.perf_counter()
        self.log.start()
        self.run.write_metadata(self.metadata())

    def advance(self, env_steps: int = 0, trials: int = 0, updates: int = 0) -> None:
        """Count consumed env steps, finished trials and optimizer updates."""
        self.env_steps += int(env_steps)
        self.trials += int(trials)
        self.updates += int(updates)

    def set_counters(self, env_steps: int, updates: Optional[int] = None) -> None:
        """Set the env-step (and update) counters to a trainer's own totals (RL reads them from SB3)."""
        self.env_steps = int(env_steps)
        if updates is not None:
            self.updates = int(updates)

    # ------------------------------------------------------------------ schedule
    def evaluate_and_checkpoint(self) -> bool:
        """Evaluate if an evaluation is due, then checkpoint if one is due; True when training must stop."""
        stop = False
        if self.evaluation.due:
            stop = self.evaluate()
            self.evaluation.schedule.done_at(self.env_steps)
        self.checkpoints.on_schedule()
        return stop

    def evaluate(self) -> bool:
        """Evaluate the current policy on fresh trials, log, guard against collapse, apply the stopping rule and
        checkpoint first crossings.

        Returns:
            True when training must stop: the stopping rule fired (:attr:`criterion` is set), or the policy collapsed
            with no rollback left (:attr:`collapsed`).

        Raises:
            TrainingDiverged: the policy produced non-finite outputs.
        """
        ev = self.evaluation.evaluate()
        self.log.evaluation(ev)
        stop = self.guard.on_evaluation(ev)
        if stop is not None:  # a collapse, rolled back (or past its last rollback)
            self.run.write_metadata(self.metadata())
            return stop
        # the criterion first, so that the crossing checkpoints of this evaluation carry it
        stop = self.evaluation.judge(ev)
        self.checkpoints.on_evaluation(ev, self.evaluation.rule.target)
        self.run.write_metadata(self.metadata())
        self.log.refresh()
        return stop

    def last_evaluated_at_current_step(self) -> bool:
        """Whether the newest evaluation is of the model at the current env step."""
        return self.evaluation.evaluated_now()

    # ------------------------------------------------------------------ resume state
    def capture_state(self) -> dict[str, Any]:
        """The resume state as of now (:mod:`agents.resume`; the healthy snapshot by reference)."""
        return {
            "learning_rule": self.base.get("learning_rule"),
            "counters": {"env_steps": self.env_steps, "trials": self.trials, "updates": self.updates},
            "evaluator_index": self.evaluation.evaluator.index,
            "healthy": self.guard.healthy,
            "rng": global_rng_state(),
            "trainer": self.path_state() if self.path_state is not None else None,
        }

    def mark_safe_point(self) -> None:
        """Record the state now as the one checkpoints carry until :meth:`release_safe_point` (RL: the start of a
        rollout, whose state is all a resumed run needs; weights and optimizer do not change until its update)."""
        self._safe = self.capture_state()

    def release_safe_point(self) -> None:
        """Checkpoints capture the state when they are saved again (call at a safe point)."""
        self._safe = None

    def rewind(self) -> Optional[dict[str, Any]]:
        """Put the counters and generators back to the last marked safe point; returns the trainer's part of its
        state (to put the model back too), or None when no safe point is marked (the state now is one)."""
        return None if self._safe is None else self.restore_state(self._safe)

    def restore_state(self, state: dict[str, Any]) -> Optional[dict[str, Any]]:
        """Continue from a resume state (:meth:`capture_state`, or one read from a checkpoint whose weights and
        optimizer state the model holds); returns the trainer's part."""
        c = state["counters"]
        self.env_steps, self.trials, self.updates = int(c["env_steps"]), int(c["trials"]), int(c["updates"])
        self.checkpoints.restart()
        self.evaluation.evaluator.index = int(state["evaluator_index"])
        self.guard.restore(state["healthy"])
        set_global_rng_state(state["rng"])
        return state["trainer"]

    def saved_state(self) -> dict[str, Any]:
        """The resume state a checkpoint saved now carries: the last safe point's (or now's, at a safe point)."""
        state = dict(self._safe if self._safe is not None else self.capture_state())
        state["healthy"] = self.guard.saved(state["healthy"])
        return state

    # ------------------------------------------------------------------ metadata and the end
    @property
    def last_checkpoint(self) -> Optional[Path]:
        """The last checkpoint saved in this segment, or None."""
        return self.checkpoints.last

    def save_checkpoint(self, path: Path) -> Path:
        """Save the model with the metadata as of now (and the resume state) to ``path``."""
        return self.checkpoints.save(path)

    def metadata(self) -> dict[str, Any]:
        """The run's metadata as of now."""
        return {
            **self.base,
            "status": self.status,
            **self.evaluation.metadata(),
            "env_steps": self.env_steps,
            "trials": self.trials,
            "updates": self.updates,
            "wall_time": round(self.wall_time, 3),
            "eval_time": round(self.evaluation.time, 3),
            "checkpoint_time": round(self.checkpoints.time, 3),
            "created": self.created,
            "updated": now(),
            "resumes": self.resumes,
            "max_rollbacks": self.guard.max_rollbacks,
            "rollbacks": self.guard.rollbacks,
            "crossings": self.checkpoints.crossings,
            "accuracy_curve": self.curve,
        }

    def finish(self, status: str) -> dict[str, Any]:
        """End the run: save the final model (or, when interrupted, a checkpoint) and ``metadata.json``.

        Args:
            status: ``"reached_target"``, ``"budget_exhausted"``, ``"interrupted"``, ``"collapsed"`` (these two
                save ``step_<env steps>.zip`` instead of a final model) or ``"diverged"`` (nothing is saved; the last
                good checkpoint stays).

        Returns:
            The final metadata.
        """
        self.status = status
        if status in ("reached_target", "budget_exhausted"):
            self.save_checkpoint(self.run.final_model)
        elif status in ("interrupted", "collapsed"):
            self.save_checkpoint(self.run.step_checkpoint(self.env_steps))
        meta = self.metadata()
        self.run.write_metadata(meta)
        if self.tensorboard is not None and status != "diverged":
            self.tensorboard.finish(self, meta)
        self.close()
        return meta

    @property
    def tb_writer(self) -> Any:
        """The run's ``SummaryWriter`` on ``RUN/tb`` (:attr:`RunLogger.writer <agents.callbacks.logs.RunLogger.writer>`)."""
        return self.log.writer

    def close(self) -> None:
        """Close the progress bar and the TensorBoard writers."""
        self.log.close()

    def diverged(self, what: str) -> NoReturn:
        """Record the divergence and raise :class:`~agents.runs.TrainingDiverged` with a clear message."""
        self.finish("diverged")
        good = self.last_checkpoint or self.run.newest_checkpoint()
        keep = f"the last good checkpoint is {good}" if good else "no checkpoint was saved"
        raise TrainingDiverged(
            f"training diverged at {self.env_steps} env steps: {what} is not finite (NaN or inf); stopped, {keep}. "
            "A smaller learning rate or delta usually helps."
        )


__all__ = ["TrainingMonitor"]
