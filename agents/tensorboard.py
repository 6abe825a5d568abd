"""TensorBoard beyond scalars: checkpoint hooks, weight and hidden-activity histograms, hyperparameters.

Both trainers run the same extras (:class:`TensorBoardExtras`, owned by the run's
:class:`~agents.callbacks.TrainingMonitor`):

* **at every regular checkpoint** (``step_<env steps>.zip``, the initial network at step 0 included) and once more
  for the final model (when it is at a step not yet probed), each *checkpoint hook* in turn. A hook is any callable
  ``hook(ctx: CheckpointContext) -> Optional[Mapping[str, float]]``: it reads the policy being trained
  (``ctx.policy``), the task (``ctx.config``) and the step (``ctx.env_steps``), writes what it likes through
  ``ctx.writer`` (a ``torch.utils.tensorboard.SummaryWriter`` on the run's ``tb/`` folder) and may return the scalars
  it logged, the newest of which join the run's hyperparameter metrics. The trainers' own hook is
  :class:`TrainingHistograms`; the dynamics probe (``analysis.dynamics.probe.DynamicsProbe``: ``dynamics/*``
  scalars, an attractor-map and a trajectory image) is a hook of the ``analysis`` package, which ``dmd train`` and
  the experiment cells pass by default. ``agents`` never imports ``analysis``, so plain library users add it
  themselves: ``train_rl(..., checkpoint_hooks=[DynamicsProbe()])``.
* **at the end of the run**, the hyperparameters (``hparams`` plugin): the run's settings (task, seed, network,
  learning rule and its hyperparameters, stopping rule) with the final metrics (``hparams/final_accuracy``,
  ``hparams/steps_to_criterion``, ``hparams/trials_to_criterion``, ``hparams/wall_time``, ``hparams/reached_target``,
  and the newest value of every scalar the hooks returned, e.g. ``dynamics/qp_fraction``).

A hook that raises is reported (a ``RuntimeWarning`` naming it and the error) and dropped for the rest of the run:
a diagnostic never ends a training run.

**Training is not touched.** A hook reads the weights and never writes them, and the global random generators
(Python, numpy, torch) are saved before the hooks run and put back after them, so a run with hooks trains exactly
(bit for bit) as one without, and exact resume is unaffected; hooks that need randomness take their own seeded
generator (:class:`TrainingHistograms` draws its trials once from ``default_rng([seed, HISTOGRAM_STREAM])``).
The time the hooks take is logged as ``time/checkpoint_hooks_s`` (cumulative seconds) and counts in the run's wall
time.

Example:
    >>> from agents import train_rl
    >>> from analysis.dynamics.probe import DynamicsProbe          # the dynamics probe lives in analysis
    >>> result = train_rl(3, seed=0, checkpoint_hooks=[DynamicsProbe()])   # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence

import numpy as np

if TYPE_CHECKING:
    from dm_envs import TaskConfig, TrialBatch

HISTOGRAM_STREAM = 0x7B157
"""Stream id of the trials :class:`TrainingHistograms` runs (``default_rng([seed, HISTOGRAM_STREAM])``)."""

HPARAM_METRICS = ("final_accuracy", "steps_to_criterion", "trials_to_criterion", "wall_time", "reached_target")
"""Metadata keys logged as ``hparams/<key>`` metrics at the end of a run."""


@dataclass
class CheckpointContext:
    """What a checkpoint hook is given.

    Attributes:
        model: The ``RecurrentPPO`` model being trained (read it, never write it).
        config: The task.
        seed: The run's seed.
        learning_rule: ``"rl"`` or ``"sl"``.
        env_steps: Env steps so far (the TensorBoard step).
        trials: Trials seen so far.
        writer: The run's ``SummaryWriter`` (``RUN/tb``).
        run_dir: The run folder.
        final: Whether this is the final model (the end of the run) rather than a regular checkpoint.
    """

    model: Any
    config: "TaskConfig"
    seed: int
    learning_rule: str
    env_steps: int
    trials: int
    writer: Any
    run_dir: Path
    final: bool = False

    @property
    def policy(self) -> Any:
        """The policy being trained (an :class:`~agents.RNNPolicy`)."""
        return self.model.policy


CheckpointHook = Callable[[CheckpointContext], Optional[Mapping[str, float]]]
"""``hook(ctx) -> scalars or None``: run at every regular checkpoint and for the final model."""


class TrainingHistograms:
    """Checkpoint hook: histograms of the weights and of the hidden activity on a fixed batch of trials.

    Logs ``weights/W_rec``, ``weights/W_in``, ``weights/W_out`` (the action readout) and ``activity/hidden`` (every
    unit's activation at every real step of ``n_trials`` trials), ``activity/hidden_<stage>`` per trial stage
    (fixation, stimulus, delay, decision), and the scalars ``activity/mean``, ``activity/max`` and
    ``activity/active_fraction`` (activations above zero). The trials are drawn once, with noise, from
    ``default_rng([seed, HISTOGRAM_STREAM])`` (the run's seed), so every checkpoint of a run, and the RL and SL runs
    of a seed, are seen on the same trials; the policy runs as in SB3 (:func:`agents.run_policy`).

    Args:
        n_trials: Trials of the activity histograms.
    """

    def __init__(self, n_trials: int = 64) -> None:
        self.n_trials = int(n_trials)
        self._trials: Optional["TrialBatch"] = None

    def trials(self, config: "TaskConfig", seed: int) -> "TrialBatch":
        """The fixed batch of trials (drawn on first use)."""
        from dm_envs import sample_trials

        if self._trials is None:
            self._trials = sample_trials(config, self.n_trials, np.random.default_rng([int(seed), HISTOGRAM_STREAM]))
        return self._trials

    def __call__(self, ctx: CheckpointContext) -> dict[str, float]:
        from dm_envs import STAGES

        from .io import run_policy

        policy, w, step = ctx.policy, ctx.writer, ctx.env_steps
        rnn = policy.lstm_actor
        w.add_histogram("weights/W_rec", rnn.weight_hh_l0.detach().cpu().numpy(), step)
        w.add_histogram("weights/W_in", rnn.weight_ih_l0.detach().cpu().numpy(), step)
        w.add_histogram("weights/W_out", policy.action_net.weight.detach().cpu().numpy(), step)
        trials = self.trials(ctx.config, ctx.seed)
        hidden = run_policy(policy, trials).hidden  # (N, T, H)
        stage = np.asarray(trials.stage)
        real = hidden[stage >= 0]
        w.add_histogram("activity/hidden", real, step)
        for k, name in enumerate(STAGES):
            h = hidden[stage == k]
            if h.size:
                w.add_histogram(f"activity/hidden_{name}", h, step)
        scalars = {
            "activity/mean": float(real.mean()),
            "activity/max": float(real.max()),
            "activity/active_fraction": float((real > 0).mean()),
        }
        for tag, value in scalars.items():
            if math.isfinite(value):
                w.add_scalar(tag, value, step)
        return scalars


def hparam_settings(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The run's settings as flat hyperparameters (int, float, str or bool values) for the ``hparams`` plugin."""
    m = metadata
    out: dict[str, Any] = {
        "learning_rule": m.get("learning_rule"),
        "task": m.get("task"),
        "seed": m.get("seed"),
        "delta": m.get("delta"),
        "hidden_size": m.get("hidden_size"),
        "critic": (m.get("policy_kwargs") or {}).get("critic"),
        "target_accuracy": m.get("target_accuracy"),
        "max_steps": m.get("max_steps"),
        "checkpoint_every": m.get("checkpoint_every"),
        "eval_trials": (m.get("evaluation") or {}).get("n_trials"),
        "eval_every": (m.get("evaluation") or {}).get("every_env_steps"),
    }
    cfg = m.get("task_config") or {}
    for key in ("n_streams", "n_choices", "noise", "noise_amplitude", "dt"):
        if key in cfg:
            out[f"task.{key}"] = cfg[key]
    for key, value in (m.get("hyperparameters") or {}).items():
        out[f"{m.get('learning_rule', 'hp')}.{key}"] = value
    clean: dict[str, Any] = {}
    for key, value in out.items():
        if isinstance(value, (bool, str)) or (isinstance(value, (int, float)) and math.isfinite(value)):
            clean[key] = value
        elif isinstance(value, (np.integer, np.floating)):
            clean[key] = value.item()
        else:  # None, lists, dicts: as text
            clean[key] = str(value)
    return clean


def write_hparams(writer: Any, metadata: Mapping[str, Any], metrics: Mapping[str, float], step: int) -> None:
    """Write the ``hparams`` plugin's summaries for one run into its own event folder, and the metrics as scalars.

    Unlike ``SummaryWriter.add_hparams`` (which opens a sub-run), this keeps the hyperparameters in the run's folder,
    so ``tensorboard --logdir runs`` lists one session per run with its curves.

    Args:
        writer: The run's ``SummaryWriter``.
        metadata: The run's metadata (:meth:`~agents.callbacks.TrainingMonitor.metadata`).
        metrics: ``tag -> value`` (NaN where a value is missing, e.g. steps to a criterion never reached); tags
            under ``hparams/`` are logged as scalars here, the others must be logged scalars already.
        step: The step to log the metric scalars at.
    """
    from torch.utils.tensorboard.summary import hparams

    metrics = {k: float(v) for k, v in metrics.items()}
    exp, ssi, sei = hparams(hparam_settings(metadata), metrics)
    fw = writer._get_file_writer()
    for summary in (exp, ssi, sei):
        fw.add_summary(summary)
    for tag, value in metrics.items():
        if tag.startswith("hparams/"):  # the others are scalars already (the plugin reads their newest value)
            writer.add_scalar(tag, value, step)


def _name(hook: Any) -> str:
    return getattr(hook, "__name__", None) or type(hook).__name__


def _as_metric(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


class TensorBoardExtras:
    """The checkpoint hooks and hyperparameters of one run (see the module docstring).

    Args:
        hooks: Checkpoint hooks, run in order.
        hparams: Write the hyperparameters at the end of the run.
    """

    def __init__(self, hooks: Sequence[CheckpointHook] = (), hparams: bool = True) -> None:
        self.hooks = list(hooks)
        self.hparams = bool(hparams)
        self.time = 0.0
        """Seconds spent in the hooks and the hyperparameter summary."""
        self.latest: dict[str, float] = {}
        """The newest value of every scalar the hooks returned."""
        self._last_step: Optional[int] = None

    def checkpoint(self, monitor: Any, final: bool = False) -> None:
        """Run every hook on the monitor's model as of now (once per env step)."""
        if not self.hooks or monitor.env_steps == self._last_step:
            return
        from .resume import global_rng_state, set_global_rng_state

        t = time.perf_counter()
        writer = monitor.tb_writer
        ctx = CheckpointContext(
            model=monitor.model, config=monitor.task, seed=int(monitor.base.get("seed", 0)),
            learning_rule=str(monitor.base.get("learning_rule", "")), env_steps=int(monitor.env_steps),
            trials=int(monitor.trials), writer=writer, run_dir=Path(monitor.run.root), final=final,
        )
        rng = global_rng_state()
        try:
            for hook in list(self.hooks):
                try:
                    scalars = hook(ctx)
                except Exception as err:  # a diagnostic must not end a training run
                    self.hooks.remove(hook)
                    warnings.warn(f"checkpoint hook {_name(hook)} failed at {ctx.env_steps:,} env steps "
                                  f"({type(err).__name__}: {err}); training goes on without it", RuntimeWarning,
                                  stacklevel=2)
                    continue
                if scalars:
                    self.latest.update({k: float(v) for k, v in scalars.items()})
        finally:
            set_global_rng_state(rng)  # whatever a hook drew, training goes on from the same generators
        self._last_step = monitor.env_steps
        self.time += time.perf_counter() - t
        writer.add_scalar("time/checkpoint_hooks_s", self.time, monitor.env_steps)
        writer.flush()

    def finish(self, monitor: Any, metadata: Mapping[str, Any]) -> None:
        """At the end of a run: the hooks on the final model (if its step was not probed) and the hyperparameters."""
        if metadata.get("status") in ("reached_target", "budget_exhausted"):
            self.checkpoint(monitor, final=True)
        if not self.hparams:
            return
        t = time.perf_counter()
        metrics = {f"hparams/{k}": _as_metric(metadata.get(k)) for k in HPARAM_METRICS}
        metrics.update(self.latest)
        writer = monitor.tb_writer
        write_hparams(writer, metadata, metrics, monitor.env_steps)
        writer.flush()
        self.time += time.perf_counter() - t


def default_extras(checkpoint_hooks: Sequence[CheckpointHook] = (), histograms: bool = True) -> TensorBoardExtras:
    """The trainers' extras: :class:`TrainingHistograms` (unless ``histograms`` is False), then ``checkpoint_hooks``;
    hyperparameters unless both are off (the bare baseline of ``benchmarks/bench_tensorboard.py``)."""
    hooks = ([TrainingHistograms()] if histograms else []) + list(checkpoint_hooks)
    return TensorBoardExtras(hooks, hparams=histograms or bool(checkpoint_hooks))


__all__ = [
    "CheckpointContext",
    "CheckpointHook",
    "HISTOGRAM_STREAM",
    "TensorBoardExtras",
    "TrainingHistograms",
    "default_extras",
    "hparam_settings",
    "write_hparams",
]
