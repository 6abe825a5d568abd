"""Training-loop machinery shared by the RL and SL trainers.

* :class:`TrainingMonitor` - the bookkeeping both learning rules share: counters (env steps, trials, optimizer
  updates), evaluation on schedule with the shared :class:`~agents.evaluation.Evaluator`, the stopping rule, the
  checkpoint schedule (``step_<env steps>.zip`` every ``checkpoint_every`` env steps, starting with the initial
  network at step 0, and ``acc_050/070/090/target.zip`` at the first crossings), TensorBoard scalars, the metadata
  and the progress bar.
* :class:`RLCallback` - an SB3 callback that drives a monitor from ``RecurrentPPO.learn``.
* :class:`InterruptGuard` - turns Ctrl-C / SIGTERM into a request to stop (SL: before the next update; RL: at the
  next step, rewound to the start of its rollout), after which the trainers save a checkpoint that resumes exactly;
  a second Ctrl-C interrupts at once.
* :func:`check_finite` - the divergence check.

**Collapse guard.** A PPO-trained bias-free ReLU core can run away (its hidden state growing through the trial until
the fixate logit wins everywhere): the policy then never chooses, its softmax is saturated and it never recovers
(``Evaluation.collapsed``). The monitor keeps the weights and optimizer state of the last healthy evaluation in memory
(and in every checkpoint, so a resumed run keeps them); when an evaluation finds the policy collapsed it restores them
and the trainer switches to fresh training trials (a new seeded stream), at most ``max_rollbacks`` times, after which
the run stops with status ``"collapsed"``. An evaluation counts as a collapse when

* the policy is saturated onto not choosing (``Evaluation.collapsed``: greedy misses >= 99% and the probability of a
  choice at the go cue < 0.01), or
* its accuracy fell to at most a tenth of chance (``1 / n_choices``) after the run had learned: an earlier evaluation,
  after training began, put the Wilson lower bound of accuracy above chance. A policy that chooses at all scores
  about chance or better, so this is a policy that (almost) never chooses correctly. It catches the falls the
  saturation test misses: greedy misses every trial while the stochastic policy still chooses at the go cue now and
  then (a level-3 run measured accuracy 0.04, misses 0.90, choice probability 0.06 on its way down), or a few wrong
  choices keep the misses under 99%. Such an evaluation used to pass as healthy: no rollback, or a rollback to it.

A policy that has never been healthy (a broad initialisation that starts saturated) is not rolled back: there is
nothing to roll back to, and it trains on. The healthy weights are those of the last evaluation that was not a
collapse; an evaluation at a tenth of chance or below (a policy on its way down) does not replace earlier ones.
Every rollback is recorded in the metadata (``rollbacks``, with the ``reason``) and in TensorBoard
(``eval/rollbacks``); env steps and wall time keep counting through it. The learning rule is unchanged: the final
network is trained by PPO (or SL) alone.

**Exact resume.** Every checkpoint carries the state that decides how training goes on (:mod:`agents.resume`): the
monitor's counters, the evaluator's index, the healthy weights, the global generators, and the trainer's part (its
:attr:`TrainingMonitor.path_state` hook). Checkpoints are saved at safe points only; the RL callback marks the start of
each rollout as one (:meth:`TrainingMonitor.mark_safe_point`), and a run stopped mid-rollout is rewound to it
(:meth:`TrainingMonitor.rewind`) before its checkpoint is saved.

TensorBoard layout (the same for both rules; ``tensorboard --logdir`` on a parent folder shows them side by side):
``eval/*`` (accuracy, its Wilson lower bound, accuracy per coherence, outcome rates, greedy reward) and ``time/*``
(``trials``, ``trials_per_s``, ``fps`` in env steps/s) against env steps; the same ``eval/*`` scalars under
``eval_vs_trials/*`` against trials seen; ``train/*``: each learning rule's own loss tags (RL: SB3's PPO tags,
``train/loss``, ``train/policy_gradient_loss``, ``train/value_loss``, ``train/entropy_loss``, ``train/approx_kl``,
...; SL: ``train/cross_entropy``, ``train/grad_norm``, ``train/batch_accuracy``), so no tag means two things;
``rollout/*`` (SB3's episode reward and success rate; RL only). At every regular checkpoint (step 0 included) and for
the final model the trainer's :class:`~agents.tensorboard.TensorBoardExtras` (:attr:`TrainingMonitor.tensorboard`)
runs its checkpoint hooks: histograms ``weights/W_rec``, ``weights/W_in``, ``weights/W_out`` and
``activity/hidden*`` (hidden activity on a fixed batch of trials) with ``activity/*`` scalars, and, when passed (by
``dmd train`` and the experiment cells by default), the dynamics probe's ``dynamics/*`` scalars (spectral radius of
``W_rec``; trial-reachable quasi-periodic, fixed-point and divergent fractions) and ``dynamics/attractor_map`` and
``dynamics/trajectories`` images (``analysis.dynamics.probe``); ``time/checkpoint_hooks_s`` is their cumulative
time. At the end, the ``hparams`` plugin's summary: the run's settings with ``hparams/*`` final metrics (accuracy,
steps and trials to criterion, wall time) and the newest ``dynamics/*`` values.
"""

from __future__ import annotations

import copy
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable, NoReturn, Optional

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback

from .evaluation import Evaluation, Evaluator, StoppingRule
from .resume import global_rng_state, same_state, set_global_rng_state
from .runs import CROSSING_LEVELS, RunDir, TrainingDiverged, now, save_model

COLLAPSE_FRACTION_OF_CHANCE = 0.1
"""An evaluation at or below this fraction of chance accuracy, after the run had learned, is a collapse."""


class InterruptGuard:
    """Context manager: SIGINT (Ctrl-C) and SIGTERM set :attr:`signal` instead of killing the process.

    The training loops poll :attr:`requested` at safe points and stop there; a second Ctrl-C raises
    ``KeyboardInterrupt`` at once. Outside the main thread (where Python cannot install handlers) it does nothing.
    """

    def __init__(self) -> None:
        self.signal: Optional[str] = None
        self._old: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        """Whether a stop was requested."""
        return self.signal is not None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name

    def __enter__(self) -> "InterruptGuard":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        self._old.clear()


def check_finite(policy: Any, hidden: Optional[th.Tensor] = None) -> Optional[str]:
    """Name what is non-finite in a policy's parameters (or a hidden state), or None if all is finite."""
    for name, p in policy.named_parameters():
        if not bool(th.isfinite(p).all()):
            return f"parameter {name}"
    if hidden is not None and not bool(th.isfinite(hidden).all()):
        return "hidden state"
    return None


def optimizer_steps(policy: Any) -> int:
    """Optimizer steps taken so far: Adam's step count of the recurrent weights (saved and restored with the model,
    so it carries over a resume; exact also when PPO stops an update early on ``target_kl``)."""
    state = policy.optimizer.state.get(policy.lstm_actor.weight_hh_l0, {})
    step = state.get("step", 0)
    return int(step.item() if isinstance(step, th.Tensor) else step)


def _multiple_after(x: int, every: int) -> int:
    """The smallest multiple of ``every`` strictly greater than ``x`` (0 when ``x`` is negative)."""
    return (x // every + 1) * every if x >= 0 else 0


class TrainingMonitor:
    """Evaluation, stopping, checkpoints, logging and metadata of one training run (RL or SL).

    The trainer owns the loop and calls :meth:`advance` as it consumes env steps and trials, and
    :meth:`evaluate_and_checkpoint` at its safe points (between updates); the monitor decides when an evaluation or a
    checkpoint is due.

    Args:
        run: The run folder.
        metadata: The run's fixed facts (learning rule, task config, seed, hyperparameters...).
        model: The ``RecurrentPPO`` model being trained (saved as checkpoints; its ``policy`` is evaluated).
        evaluator: The shared evaluator.
        rule: The stopping rule.
        logger: An SB3 ``Logger`` writing TensorBoard files in ``run.tb``.
        eval_every: Evaluate every this many env steps (and at step 0).
        checkpoint_every: Save ``step_<env steps>.zip`` every this many env steps (and at step 0).
        max_steps: The env-step budget (for the progress bar).
        max_time: The wall-time budget in seconds (over all segments of a resumed run), or None.
        max_rollbacks: Rollbacks allowed when the policy collapses (see the module docstring); 0 stops at once.
        progress: Show a tqdm progress bar.
        resumed: Metadata of the checkpoint a resumed run continues (its counters, curve and times), or None.
    """

    def __init__(
        self,
        run: RunDir,
        metadata: dict[str, Any],
        model: Any,
        evaluator: Evaluator,
        rule: StoppingRule,
        logger: Any,
        eval_every: int,
        checkpoint_every: int,
        max_steps: int,
        max_time: Optional[float] = None,
        max_rollbacks: int = 3,
        progress: bool = True,
        resumed: Optional[dict[str, Any]] = None,
    ) -> None:
        self.run = run
        self.base = dict(metadata)
        self.model = model
        self.evaluator = evaluator
        self.rule = rule
        self.logger = logger
        self.eval_every = int(eval_every)
        self.checkpoint_every = int(checkpoint_every)
        self.max_steps = int(max_steps)
        self.max_time = None if max_time is None else float(max_time)
        r = resumed or {}
        self.env_steps = int(r.get("env_steps", 0))
        self.trials = int(r.get("trials", 0))
        self.updates = int(r.get("updates", 0))
        self.curve: list[dict[str, Any]] = list(r.get("accuracy_curve", []))
        self.crossings: dict[str, Any] = dict(r.get("crossings", {}))
        self.criterion: Optional[dict[str, Any]] = r.get("criterion")
        self.resumes: list[dict[str, Any]] = list(r.get("resumes", []))
        self.rollbacks: list[dict[str, Any]] = list(r.get("rollbacks", []))
        self.max_rollbacks = int(max_rollbacks)
        self.on_rollback: Optional[Callable[[int], None]] = None
        """The trainer's hook, called after a rollback with the rollback count: switch to fresh training trials."""
        self.path_state: Optional[Callable[[], Optional[dict[str, Any]]]] = None
        """The trainer's hook: its part of the resume state, captured now (see :mod:`agents.resume`)."""
        self.tensorboard: Any = None
        """The trainer's :class:`~agents.tensorboard.TensorBoardExtras`: checkpoint hooks and hyperparameters."""
        self.collapsed = False
        self._healthy: Optional[dict[str, Any]] = None
        self._safe: Optional[dict[str, Any]] = None  # the resume state of the last safe point; None: now is one
        self.created = r.get("created", now())
        self._time_before = float(r.get("wall_time", 0.0))
        self._eval_time = float(r.get("eval_time", 0.0))
        self._ckpt_time = float(r.get("checkpoint_time", 0.0))
        evaluator.index = len(self.curve)  # carry on the evaluation stream where the run left it
        last_eval = int(self.curve[-1]["env_steps"]) if self.curve else -1
        self._next_eval = _multiple_after(last_eval, self.eval_every)
        self._next_ckpt = _multiple_after(self.env_steps if resumed else -1, self.checkpoint_every)
        self.status = "running"
        self.last_checkpoint: Optional[Path] = None
        self._t0 = time.perf_counter()
        self._speed_mark = (self._t0, self.env_steps, self.trials)
        self._writer: Any = None
        self._bar: Any = None
        self._progress = progress
        if resumed and self.curve and self._collapse_reason(Evaluation.from_dict(self.curve[-1])) is None:
            # a checkpoint without saved healthy weights: its own were saved at or after a healthy evaluation
            self._snapshot()

    # ------------------------------------------------------------------ counters and time
    @property
    def wall_time(self) -> float:
        """Seconds of training so far, over all segments (evaluation and checkpoints included)."""
        return self._time_before + time.perf_counter() - self._t0

    @property
    def out_of_budget(self) -> bool:
        """Whether the env-step or the wall-time budget is spent."""
        return self.env_steps >= self.max_steps or (self.max_time is not None and self.wall_time >= self.max_time)

    def start(self) -> None:
        """Start the clock and the progress bar (call right before the training loop)."""
        from tqdm.auto import tqdm

        self._t0 = time.perf_counter()
        self._speed_mark = (self._t0, self.env_steps, self.trials)
        rule = self.base.get("learning_rule", "").upper()
        self._bar = tqdm(
            total=self.max_steps,
            initial=min(self.env_steps, self.max_steps),
            unit="step",
            unit_scale=True,
            dynamic_ncols=True,
            mininterval=1.0,
            desc=f"{rule} {self.base.get('task', '')} s{self.base.get('seed', '')}",
            disable=not self._progress,
        )
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

    def log_speed(self) -> None:
        """Record ``time/trials``, ``time/trials_per_s`` and ``time/fps`` since the last call; refresh the bar."""
        t, steps, trials = time.perf_counter(), self.env_steps, self.trials
        t_prev, steps_prev, trials_prev = self._speed_mark
        dt = max(t - t_prev, 1e-9)
        self.logger.record("time/trials", trials)
        self.logger.record("time/trials_per_s", (trials - trials_prev) / dt)
        self.logger.record("time/fps", int((steps - steps_prev) / dt))
        self._speed_mark = (t, steps, trials)
        self._refresh_bar()

    # ------------------------------------------------------------------ schedule
    def evaluate_and_checkpoint(self) -> bool:
        """Evaluate if an evaluation is due, then checkpoint if one is due; True when training must stop."""
        stop = False
        if self.env_steps >= self._next_eval:
            stop = self.evaluate()
            self._next_eval = _multiple_after(self.env_steps, self.eval_every)
        if self.env_steps >= self._next_ckpt:
            self.save_checkpoint(self.run.step_checkpoint(self.env_steps))
            self._next_ckpt = _multiple_after(self.env_steps, self.checkpoint_every)
            if self.tensorboard is not None:
                self.tensorboard.checkpoint(self)
        return stop

    def evaluate(self) -> bool:
        """Evaluate the current policy on fresh trials, log, checkpoint first crossings, guard against collapse.

        Returns:
            True when training must stop: the stopping rule fired (:attr:`criterion` is set), or the policy collapsed
            with no rollback left (:attr:`collapsed`).

        Raises:
            TrainingDiverged: the policy produced non-finite outputs.
        """
        t = time.perf_counter()
        ev = self.evaluator(self.model.policy)
        self._eval_time += time.perf_counter() - t
        if not ev.finite:
            self.diverged("non-finite action logits at evaluation")
        record = {
            "env_steps": self.env_steps,
            "trials": self.trials,
            "updates": self.updates,
            "wall_time": round(self.wall_time, 3),
            **ev.to_dict(),
        }
        self.curve.append(record)
        self._log_evaluation(ev)
        reason = self._collapse_reason(ev)
        if reason is not None:
            if self._healthy is not None:
                stop = not self._rollback(reason)
                self.run.write_metadata(self.metadata())
                return stop
            # never healthy yet (e.g. a broad initialisation that starts saturated): nothing to roll back to, train on
        elif self._healthy is None or not self._failing(ev):
            self._snapshot()
        # the criterion first, so that the crossing checkpoints of this evaluation carry it
        stop = self.rule.should_stop(self.curve)
        if self.criterion is None and (stop or self.rule.reached(self.curve)):
            self.criterion = {
                "evaluation": len(self.curve) - 1,
                "env_steps": self.env_steps,
                "trials": self.trials,
                "updates": self.updates,
                "wall_time": round(self.wall_time, 3),
                "accuracy": ev.accuracy,
                "lower": self.rule.lower_bound(ev.accuracy, ev.n_trials),
            }
        target = self.rule.target
        levels = [(lv, False) for lv in CROSSING_LEVELS if lv < target] + [(target, True)]
        crossed = []
        for level, is_target in levels:
            key = "target" if is_target else f"{level:g}"
            if key not in self.crossings and ev.accuracy >= level:
                path = self.run.crossing_checkpoint(level, target=is_target)
                self.crossings[key] = {
                    "level": level,
                    "evaluation": len(self.curve) - 1,
                    "env_steps": self.env_steps,
                    "trials": self.trials,
                    "accuracy": ev.accuracy,
                    "checkpoint": self.run.relative(path),
                }
                crossed.append(path)
        for path in crossed:  # each carries every crossing of this evaluation
            self.save_checkpoint(path)
        self.run.write_metadata(self.metadata())
        self._refresh_bar()
        return stop

    # ------------------------------------------------------------------ collapse guard
    @property
    def _chance(self) -> float:
        return 1.0 / self.evaluator.config.n_choices

    def _failing(self, ev: Evaluation) -> bool:
        """Accuracy at or below a tenth of chance: the policy (almost) never chooses correctly."""
        return ev.accuracy <= COLLAPSE_FRACTION_OF_CHANCE * self._chance

    def _collapse_reason(self, ev: Evaluation) -> Optional[str]:
        """Why the newest evaluation ``ev`` counts as a collapse (see the module docstring), or None."""
        if ev.collapsed():
            return (f"saturated: greedy misses {ev.rates.get('miss', 0.0):.3f} of trials and the policy chooses at "
                    f"the go cue with probability {ev.go_choice_prob:.2g}")
        if self._failing(ev):
            learned = [c for c in self.curve[:-1] if c["env_steps"] > 0 and (c.get("lower") or 0.0) > self._chance]
            if learned:
                best = max(learned, key=lambda c: c["accuracy"])
                return (f"accuracy fell to {ev.accuracy:.3f} (chance {self._chance:.3g}) after reaching "
                        f"{best['accuracy']:.3f} at {best['env_steps']:,} env steps")
        return None

    def _snapshot(self) -> None:
        policy = self.model.policy
        self._healthy = {
            "policy": copy.deepcopy(policy.state_dict()),
            "optimizer": copy.deepcopy(policy.optimizer.state_dict()),
            "env_steps": self.env_steps,
            "evaluation": len(self.curve) - 1,
        }

    def _rollback(self, reason: str) -> bool:
        """Restore the last healthy weights and optimizer state; False if no rollback is possible (collapsed)."""
        if self._healthy is None or len(self.rollbacks) >= self.max_rollbacks:
            self.collapsed = True
            return False
        policy = self.model.policy
        policy.load_state_dict(self._healthy["policy"])
        policy.optimizer.load_state_dict(copy.deepcopy(self._healthy["optimizer"]))
        self.rollbacks.append({
            "env_steps": self.env_steps,
            "evaluation": len(self.curve) - 1,
            "restored_env_steps": self._healthy["env_steps"],
            "restored_evaluation": self._healthy["evaluation"],
            "reason": reason,
        })
        self.logger.record("eval/rollbacks", len(self.rollbacks))
        self.logger.dump(step=self.env_steps)
        if self._bar is not None and self._progress:
            self._bar.write(f"policy collapsed at {self.env_steps:,} env steps ({reason}); rolled back to the "
                            f"weights of {self._healthy['env_steps']:,} env steps, with fresh training trials")
        if self.on_rollback is not None:
            self.on_rollback(len(self.rollbacks))
        return True

    def last_evaluated_at_current_step(self) -> bool:
        """Whether the newest evaluation is of the model at the current env step."""
        return bool(self.curve) and int(self.curve[-1]["env_steps"]) == self.env_steps

    # ------------------------------------------------------------------ logging
    def _log_evaluation(self, ev: Evaluation) -> None:
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
        self.log_speed()
        self.logger.dump(step=self.env_steps)
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.run.tb))
        for key, value in scalars.items():
            if np.isfinite(value):
                self._writer.add_scalar(f"eval_vs_trials/{key}", value, self.trials)
        self._writer.flush()

    @property
    def tb_writer(self) -> Any:
        """The run's ``SummaryWriter`` on ``RUN/tb`` (opened on first use, closed by :meth:`close`)."""
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.run.tb))
        return self._writer

    def _refresh_bar(self) -> None:
        if self._bar is None:
            return
        if self.curve:
            last = self.curve[-1]
            self._bar.set_postfix(acc=f"{last['accuracy']:.3f}", lo=f"{last['lower']:.3f}", trials=self.trials,
                                  refresh=False)
        self._bar.update(min(self.env_steps, self.max_steps) - self._bar.n)  # redraws at most every mininterval

    # ------------------------------------------------------------------ resume state
    def capture_state(self) -> dict[str, Any]:
        """The resume state as of now (:mod:`agents.resume`; the healthy snapshot by reference)."""
        return {
            "learning_rule": self.base.get("learning_rule"),
            "counters": {"env_steps": self.env_steps, "trials": self.trials, "updates": self.updates},
            "evaluator_index": self.evaluator.index,
            "healthy": self._healthy,
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
        self._next_ckpt = _multiple_after(self.env_steps, self.checkpoint_every)
        self.evaluator.index = int(state["evaluator_index"])
        healthy = state["healthy"]
        if healthy is not None and healthy.get("same_as_model"):
            self._snapshot()
            self._healthy.update(env_steps=healthy["env_steps"], evaluation=healthy["evaluation"])
        else:
            self._healthy = healthy
        set_global_rng_state(state["rng"])
        return state["trainer"]

    def _saved_state(self) -> dict[str, Any]:
        """The resume state a checkpoint saved now carries (healthy weights equal to the model's are not stored)."""
        state = dict(self._safe if self._safe is not None else self.capture_state())
        healthy = state["healthy"]
        policy = self.model.policy
        if healthy is not None and same_state(healthy["policy"], policy.state_dict()) and same_state(
            healthy["optimizer"], policy.optimizer.state_dict()
        ):
            state["healthy"] = {"same_as_model": True, "env_steps": healthy["env_steps"],
                                "evaluation": healthy["evaluation"]}
        return state

    # ------------------------------------------------------------------ saving
    def save_checkpoint(self, path: Path) -> Path:
        """Save the model with the metadata as of now (and the resume state) to ``path``; it becomes the last good
        checkpoint."""
        t = time.perf_counter()
        save_model(self.model, path, self.metadata(), resume_state=self._saved_state())
        self._ckpt_time += time.perf_counter() - t
        self.last_checkpoint = path
        return path

    def metadata(self) -> dict[str, Any]:
        """The run's metadata as of now."""
        crit = self.criterion
        last = self.curve[-1] if self.curve else None
        return {
            **self.base,
            "status": self.status,
            "reached_target": crit is not None,
            "steps_to_criterion": crit["env_steps"] if crit else None,
            "trials_to_criterion": crit["trials"] if crit else None,
            "updates_to_criterion": crit["updates"] if crit else None,
            "wall_time_to_criterion": crit["wall_time"] if crit else None,
            "criterion": crit,
            "final_accuracy": last["accuracy"] if last else None,
            "env_steps": self.env_steps,
            "trials": self.trials,
            "updates": self.updates,
            "wall_time": round(self.wall_time, 3),
            "eval_time": round(self._eval_time, 3),
            "checkpoint_time": round(self._ckpt_time, 3),
            "created": self.created,
            "updated": now(),
            "resumes": self.resumes,
            "max_rollbacks": self.max_rollbacks,
            "rollbacks": self.rollbacks,
            "crossings": self.crossings,
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

    def close(self) -> None:
        """Close the progress bar and the TensorBoard writers."""
        if self._bar is not None:
            self._refresh_bar()
            self._bar.refresh()
            self._bar.close()
            self._bar = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.logger.close()

    def diverged(self, what: str) -> NoReturn:
        """Record the divergence and raise :class:`~agents.runs.TrainingDiverged` with a clear message."""
        self.finish("diverged")
        good = self.last_checkpoint or self.run.newest_checkpoint()
        keep = f"the last good checkpoint is {good}" if good else "no checkpoint was saved"
        raise TrainingDiverged(
            f"training diverged at {self.env_steps} env steps: {what} is not finite (NaN or inf); stopped, {keep}. "
            "A smaller learning rate or delta usually helps."
        )


class RLCallback(BaseCallback):
    """Drives a :class:`TrainingMonitor` from ``RecurrentPPO.learn``.

    Between PPO iterations (at the start of each rollout, when the weights are those the last update produced) it
    checks that parameters and hidden states are finite, evaluates and checkpoints on schedule, and stops learning
    before the next update when the stopping rule fires, the policy collapsed for good, the wall-time budget is spent
    or a stop was requested; it counts finished trials. The start of each rollout is the run's safe point
    (:meth:`TrainingMonitor.mark_safe_point`): a stop inside a rollout is saved as that point (the weights have not
    changed since), and the resumed run redoes the rollout.

    Args:
        monitor: The run's monitor.
        guard: The interrupt guard polled at every step.
    """

    def __init__(self, monitor: TrainingMonitor, guard: InterruptGuard) -> None:
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
        mon.trials += int(np.count_nonzero(self.locals["dones"]))
        out_of_time = mon.max_time is not None and mon.wall_time >= mon.max_time
        return not (self.stop or self.guard.requested or out_of_time)

    def _on_rollout_end(self) -> None:
        self.in_rollout = False
        self.monitor.set_counters(self.num_timesteps)
        self.monitor.log_speed()


__all__ = ["InterruptGuard", "RLCallback", "TrainingMonitor", "check_finite", "optimizer_steps"]
