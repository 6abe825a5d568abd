"""Settings as data: the frozen configs of a training run.

* :class:`RunConfig` - what both learning rules share: the task, the network (seed, delta, size, critic), the
  stopping rule, the budget and schedule, and the run folder.
* :class:`PPOConfig` - the PPO hyperparameters of :func:`agents.train_rl`.
* :class:`SLConfig` - the hyperparameters of :func:`agents.train_sl`.

Defaults come from :mod:`agents.defaults`. Every field is checked when a config is made (``__post_init__``), in the
style of :mod:`dm_envs.validation`: a ``ValueError`` (also a ``TypeError`` for a wrong type) whose one-line message
names the field, the value and what is allowed, and the value is kept in its canonical type (``int``, ``float``,
``bool``). The trainers take the configs, or build them from keyword arguments (:func:`make_configs`), so
``train_rl(3, seed=1, n_envs=8)`` and ``train_rl(RunConfig(level=3, seed=1), PPOConfig(n_envs=8))`` are the same
run. Importing this module does not load torch.

Example:
    >>> run = RunConfig(level=1, seed=2, max_steps=50_000)
    >>> run.for_rule("rl").eval_every, PPOConfig(n_envs=8).sb3_kwargs()["n_steps"]
    (100000, 64)
    >>> RunConfig(seed=-1)
    Traceback (most recent call last):
    ...
    dm_envs.validation.InvalidValueError: seed must be an integer >= 0, got -1 (int)
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from dm_envs import TaskConfig, make_config
from dm_envs.validation import InvalidTypeError, as_bool, as_choice, as_float, as_int, describe_value

from .defaults import CRITIC_MODES, PPO_DEFAULTS, RL_SCHEDULE, RUN_DEFAULTS, SL_DEFAULTS, SL_SCHEDULE
from .files import PathLike

SCHEDULES: dict[str, dict[str, int]] = {"rl": RL_SCHEDULE, "sl": SL_SCHEDULE}
"""Each learning rule's default budget and schedule (the :class:`RunConfig` fields left ``None``)."""


def _optional(check: Any, name: str, value: Any, **kw: Any) -> Any:
    """``check(name, value, **kw)``, or None when ``value`` is None."""
    return None if value is None else check(name, value, **kw)


def _set(obj: Any, **values: Any) -> None:
    """Store canonical values on a frozen dataclass (from its ``__post_init__``)."""
    for name, value in values.items():
        object.__setattr__(obj, name, value)


class _Config:
    """What the three configs share: ``to_dict`` and ``replace``."""

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict, in their order (``type(self)(**d)`` rebuilds the config)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def replace(self, **changes: Any) -> Any:
        """A copy with ``changes`` (checked like a new config)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


@dataclass(frozen=True)
class RunConfig(_Config):
    """The settings of a training run that both learning rules share.

    Args:
        level: Task level 1-4 (None: the default, 3, the context-dependent task).
        preset: A named task preset instead (``"neurogym"``).
        config: A full task config (or its dict) instead.
        task_overrides: Task fields to override, e.g. ``{"noise_amplitude": 0.3}``.
        seed: Seed of everything: initial weights (the same for RL and SL), training trials, evaluation trials.
        delta: Half-width of the ``U(-delta, delta)`` initialisation of the recurrent and input weights.
        hidden_size: Number of recurrent units (the paper's 250).
        critic: The value head: ``"shared"`` (reads the actor's core, detached), ``"rnn"`` or ``"linear"``.
        target_accuracy: Target accuracy of the stopping rule.
        confidence_z: Normal quantile of the rule's Wilson lower bound (1.645: one-sided 95%).
        consecutive: Evaluations in a row that must clear the target.
        train_past: Train on after the criterion until the trials reach this multiple of the trials to criterion
            (1: stop at the criterion).
        max_steps: Budget in env steps, over all segments of a resumed run (None: the learning rule's default,
            :data:`~agents.defaults.RL_SCHEDULE` / :data:`~agents.defaults.SL_SCHEDULE`).
        eval_every: Evaluate every this many env steps (None: the learning rule's default).
        eval_trials: Fresh trials per evaluation.
        checkpoint_every: Save ``checkpoints/step_<env steps>.zip`` every this many env steps (None: the learning
            rule's default).
        max_time: Wall-time budget in seconds, over all segments of a resumed run; None for no limit.
        max_rollbacks: How often a collapsed policy is rolled back to its last healthy evaluation before the run
            gives up with status ``"collapsed"`` (:mod:`agents.callbacks`).
        out_dir: The run folder (None: ``runs/<rule>_<task>_d<delta>_s<seed>``).
        resume: Continue the run in ``out_dir`` from its newest checkpoint (a fresh run if there is none).
        overwrite: Delete a previous run in ``out_dir`` first.
        progress: Show a progress bar and a summary line.
        device: Torch device (``"cpu"``; the small network is fastest there).
        tensorboard_extras: Weight and hidden-activity histograms at every checkpoint and the hyperparameters at the
            end of the run (:mod:`agents.tensorboard`); the checkpoint hooks a trainer is given run either way.
    """

    level: Optional[int] = None
    preset: Optional[str] = None
    config: TaskConfig | dict | None = None
    task_overrides: Optional[dict[str, Any]] = None
    seed: int = RUN_DEFAULTS["seed"]
    delta: float = RUN_DEFAULTS["delta"]
    hidden_size: int = RUN_DEFAULTS["hidden_size"]
    critic: str = RUN_DEFAULTS["critic"]
    target_accuracy: float = RUN_DEFAULTS["target_accuracy"]
    confidence_z: float = RUN_DEFAULTS["confidence_z"]
    consecutive: int = RUN_DEFAULTS["consecutive"]
    train_past: float = RUN_DEFAULTS["train_past"]
    max_steps: Optional[int] = None
    eval_every: Optional[int] = None
    eval_trials: int = RUN_DEFAULTS["eval_trials"]
    checkpoint_every: Optional[int] = None
    max_time: Optional[float] = None
    max_rollbacks: int = RUN_DEFAULTS["max_rollbacks"]
    out_dir: Optional[PathLike] = None
    resume: bool = False
    overwrite: bool = False
    progress: bool = True
    device: str = RUN_DEFAULTS["device"]
    tensorboard_extras: bool = True

    def __post_init__(self) -> None:
        if self.task_overrides is not None and not isinstance(self.task_overrides, Mapping):
            raise InvalidTypeError(f"task_overrides must be a dict of task fields or None, got "
                                   f"{describe_value(self.task_overrides)}")
        if self.out_dir is not None and not isinstance(self.out_dir, (str, os.PathLike)):
            raise InvalidTypeError(f"out_dir must be a folder path or None, got {describe_value(self.out_dir)}")
        if not isinstance(self.device, str):
            raise InvalidTypeError(f"device must be a torch device name such as 'cpu', got "
                                   f"{describe_value(self.device)}")
        _set(
            self,
            task_overrides=None if self.task_overrides is None else dict(self.task_overrides),
            seed=as_int("seed", self.seed, low=0),
            delta=as_float("delta", self.delta, low=0, low_open=True),
            hidden_size=as_int("hidden_size", self.hidden_size, low=1),
            critic=as_choice("critic", self.critic, CRITIC_MODES),
            target_accuracy=as_float("target_accuracy", self.target_accuracy, low=0, high=1, low_open=True),
            confidence_z=as_float("confidence_z", self.confidence_z, low=0),
            consecutive=as_int("consecutive", self.consecutive, low=1),
            train_past=as_float("train_past", self.train_past, low=1),
            max_steps=_optional(as_int, "max_steps", self.max_steps, low=1),
            eval_every=_optional(as_int, "eval_every", self.eval_every, low=1),
            eval_trials=as_int("eval_trials", self.eval_trials, low=1),
            checkpoint_every=_optional(as_int, "checkpoint_every", self.checkpoint_every, low=1),
            max_time=_optional(as_float, "max_time", self.max_time, low=0, low_open=True),
            max_rollbacks=as_int("max_rollbacks", self.max_rollbacks, low=0),
            resume=as_bool("resume", self.resume),
            overwrite=as_bool("overwrite", self.overwrite),
            progress=as_bool("progress", self.progress),
            tensorboard_extras=as_bool("tensorboard_extras", self.tensorboard_extras),
        )
        self.task_config()  # the task must be valid too (make_config's errors name the field)

    def task_config(self) -> TaskConfig:
        """The task: a level, a preset or a config, with the overrides (:func:`dm_envs.make_config`)."""
        return make_config(self.level, preset=self.preset, config=self.config, **dict(self.task_overrides or {}))

    def for_rule(self, rule: str) -> "RunConfig":
        """This config with the budget and schedule left None set to the learning rule's defaults."""
        schedule = SCHEDULES[as_choice("learning rule", rule, tuple(SCHEDULES))]
        unset = {k: v for k, v in schedule.items() if getattr(self, k) is None}
        return self.replace(**unset) if unset else self

    def schedule(self) -> dict[str, Any]:
        """Budget and schedule, as recorded in a run's metadata (after :meth:`for_rule`)."""
        return dict(max_steps=self.max_steps, max_time=self.max_time, eval_every=self.eval_every,
                    eval_trials=self.eval_trials, checkpoint_every=self.checkpoint_every)

    def stopping_rule(self) -> Any:
        """The :class:`~agents.evaluation.StoppingRule` of these settings."""
        from .evaluation import StoppingRule

        return StoppingRule(self.target_accuracy, self.confidence_z, self.consecutive, self.train_past)


@dataclass(frozen=True)
class PPOConfig(_Config):
    """The PPO hyperparameters of :func:`agents.train_rl` (defaults: :data:`~agents.defaults.PPO_DEFAULTS`).

    Args:
        n_envs: Trials stepped in parallel.
        n_steps: Env steps per env per rollout (rollout = ``n_envs * n_steps`` env steps).
        batch_size: Minibatch size in env steps.
        n_epochs: Passes over each rollout.
        learning_rate: Adam learning rate.
        ent_coef: Entropy bonus coefficient.
        gamma: Discount factor.
        gae_lambda: GAE lambda.
        clip_range: PPO clipping range.
        vf_coef: Value-loss coefficient.
        max_grad_norm: Gradient-norm clipping.
        target_kl: Stop an update's epochs early when the approximate KL divergence exceeds ``1.5 * target_kl``
            (None: never).
    """

    n_envs: int = PPO_DEFAULTS["n_envs"]
    n_steps: int = PPO_DEFAULTS["n_steps"]
    batch_size: int = PPO_DEFAULTS["batch_size"]
    n_epochs: int = PPO_DEFAULTS["n_epochs"]
    learning_rate: float = PPO_DEFAULTS["learning_rate"]
    ent_coef: float = PPO_DEFAULTS["ent_coef"]
    gamma: float = PPO_DEFAULTS["gamma"]
    gae_lambda: float = PPO_DEFAULTS["gae_lambda"]
    clip_range: float = PPO_DEFAULTS["clip_range"]
    vf_coef: float = PPO_DEFAULTS["vf_coef"]
    max_grad_norm: float = PPO_DEFAULTS["max_grad_norm"]
    target_kl: Optional[float] = PPO_DEFAULTS["target_kl"]

    def __post_init__(self) -> None:
        positive = dict(low=0, low_open=True)
        _set(
            self,
            n_envs=as_int("n_envs", self.n_envs, low=1),
            n_steps=as_int("n_steps", self.n_steps, low=1),
            batch_size=as_int("batch_size", self.batch_size, low=1),
            n_epochs=as_int("n_epochs", self.n_epochs, low=1),
            learning_rate=as_float("learning_rate", self.learning_rate, **positive),
            ent_coef=as_float("ent_coef", self.ent_coef, low=0),
            gamma=as_float("gamma", self.gamma, low=0, high=1),
            gae_lambda=as_float("gae_lambda", self.gae_lambda, low=0, high=1),
            clip_range=as_float("clip_range", self.clip_range, **positive),
            vf_coef=as_float("vf_coef", self.vf_coef, low=0),
            max_grad_norm=as_float("max_grad_norm", self.max_grad_norm, **positive),
            target_kl=_optional(as_float, "target_kl", self.target_kl, **positive),
        )

    def sb3_kwargs(self) -> dict[str, Any]:
        """The ``RecurrentPPO`` keyword arguments (every field but ``n_envs``, which sizes the vector env)."""
        return {k: v for k, v in self.to_dict().items() if k != "n_envs"}


@dataclass(frozen=True)
class SLConfig(_Config):
    """The hyperparameters of :func:`agents.train_sl` (defaults: :data:`~agents.defaults.SL_DEFAULTS`).

    Args:
        learning_rate: Adam learning rate.
        batch_size: Trials per update.
        fixate_weight: Loss weight of the steps before the decision stage.
        decision_weight: Loss weight of the decision-stage steps.
        max_grad_norm: Gradient-norm clipping (exploding gradients of ReLU RNNs).
        weight_decay: Adam weight decay.
    """

    learning_rate: float = SL_DEFAULTS["learning_rate"]
    batch_size: int = SL_DEFAULTS["batch_size"]
    fixate_weight: float = SL_DEFAULTS["fixate_weight"]
    decision_weight: float = SL_DEFAULTS["decision_weight"]
    max_grad_norm: float = SL_DEFAULTS["max_grad_norm"]
    weight_decay: float = SL_DEFAULTS["weight_decay"]

    def __post_init__(self) -> None:
        _set(
            self,
            learning_rate=as_float("learning_rate", self.learning_rate, low=0, low_open=True),
            batch_size=as_int("batch_size", self.batch_size, low=1),
            fixate_weight=as_float("fixate_weight", self.fixate_weight, low=0),
            decision_weight=as_float("decision_weight", self.decision_weight, low=0),
            max_grad_norm=as_float("max_grad_norm", self.max_grad_norm, low=0, low_open=True),
            weight_decay=as_float("weight_decay", self.weight_decay, low=0),
        )


HYPERPARAMETERS: dict[str, type] = {"rl": PPOConfig, "sl": SLConfig}
"""Each learning rule's hyperparameter config."""


def config_fields(rule: str) -> tuple[str, ...]:
    """Every setting a learning rule's trainer takes by keyword: :class:`RunConfig`'s fields, then its
    hyperparameters' (:class:`PPOConfig` or :class:`SLConfig`)."""
    configs = (RunConfig, HYPERPARAMETERS[as_choice("learning rule", rule, tuple(HYPERPARAMETERS))])
    return tuple(f.name for cls in configs for f in dataclasses.fields(cls))


def make_configs(
    rule: str, run: RunConfig | int | None = None, hyperparameters: Any = None, *, caller: str = "make_configs",
    **settings: Any,
) -> tuple[RunConfig, Any]:
    """The ``(RunConfig, PPOConfig | SLConfig)`` of a trainer call: the configs given (or the defaults) with the
    keyword ``settings`` applied, and the budget and schedule left unset filled with the rule's defaults.

    Args:
        rule: ``"rl"`` or ``"sl"``.
        run: The run settings (None: the defaults); anything else is the task's level (the trainers'
            first positional argument, as in ``train_rl(3, seed=1)``).
        hyperparameters: The rule's hyperparameters (None: the defaults).
        caller: The trainer's name, for the error of an unknown keyword (as Python words it).
        **settings: Fields of either config, e.g. ``seed=1, n_envs=8``.

    Raises:
        TypeError: a keyword that is no field of either config, or a config of the wrong class.
        ValueError: a field value that is not allowed (see the configs).
    """
    hp_class = HYPERPARAMETERS[as_choice("learning rule", rule, tuple(HYPERPARAMETERS))]
    if "complexity" in settings:  # the level's former name, still accepted
        if "level" in settings:
            raise TypeError(f"{caller}() got both 'level' and 'complexity' (its former name)")
        settings["level"] = settings.pop("complexity")
    if run is not None and not isinstance(run, RunConfig):  # the level, given by position
        if "level" in settings:
            raise TypeError(f"{caller}() got multiple values for argument 'level'")
        run, settings = None, {"level": run, **settings}
    if hyperparameters is not None and not isinstance(hyperparameters, hp_class):
        raise InvalidTypeError(f"the {rule.upper()} hyperparameters must be a {hp_class.__name__} or None, got "
                               f"{describe_value(hyperparameters)}")
    run_keys = {f.name for f in dataclasses.fields(RunConfig)}
    hp_keys = {f.name for f in dataclasses.fields(hp_class)}
    for key in settings:
        if key not in run_keys | hp_keys:
            raise TypeError(f"{caller}() got an unexpected keyword argument {key!r}")
    run_changes = {k: v for k, v in settings.items() if k in run_keys}
    hp_changes = {k: v for k, v in settings.items() if k in hp_keys}
    run = run.replace(**run_changes) if run is not None else RunConfig(**run_changes)
    hp = hyperparameters.replace(**hp_changes) if hyperparameters is not None else hp_class(**hp_changes)
    return run.for_rule(rule), hp


__all__ = ["HYPERPARAMETERS", "PPOConfig", "RunConfig", "SCHEDULES", "SLConfig", "config_fields", "make_configs"]
