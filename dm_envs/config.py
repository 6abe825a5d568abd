"""Task configuration: one frozen dataclass describes every decision task of the suite.

A :class:`TaskConfig` fixes the trial structure (stage durations), the evidence (coherence set, noise model and
amplitude), the response (number of choices), the context (number of evidence streams) and the rewards. The graded
levels and the NeuroGym-parity preset are instances of it (:data:`PRESETS`), built with
:func:`make_config`.

Durations are given in milliseconds and converted to steps of ``dt`` ms by flooring (as NeuroGym does). A duration is
either a number (fixed) or a tuple describing a distribution, sampled independently for every trial:

========================================  =======================================================================
``300``                                   fixed 300 ms
``("uniform", lo, hi)``                   integer number of steps, uniform on ``[ceil(lo/dt), floor(hi/dt)]``
``("choice", (a, b, ...))``               one of the listed durations, with equal probability
``("truncexp", mean, lo, hi)``            exponential with the given mean truncated to ``[lo, hi)`` (NeuroGym's
                                          ``TruncExp``), then floored to steps
========================================  =======================================================================
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Union

import numpy as np

from .validation import (
    InvalidTypeError,
    InvalidValueError,
    as_bool,
    as_choice,
    as_float,
    as_float_sequence,
    as_int,
    check_keys,
    describe_value,
)

Duration = Union[float, int, tuple]

STAGES: tuple[str, ...] = ("fixation", "stimulus", "delay", "decision")
"""Stage names, in trial order; a stage's id is its index here (padding after a trial's end is ``-1``)."""
FIXATION, STIMULUS, DELAY, DECISION = range(4)
PADDING = -1

NOISE_MODELS = ("uniform", "gaussian", "none")
NOISE_ON = ("stimulus", "all")
FIXATION_SPANS = ("until_decision", "fixation_stage")
DURATION_KINDS = ("uniform", "choice", "truncexp")


@dataclass(frozen=True)
class TaskConfig:
    """Parameters of a perceptual decision-making task (all times in ms).

    Args:
        dt: Duration of one environment step (one RNN update), in ms.
        fixation: Fixation-stage duration (see the module docstring for the duration forms).
        stimulus: Stimulus-stage duration. Evidence is present only in this stage.
        delay: Delay-stage duration (memory period; 0 for none).
        decision: Decision-stage duration: the window in which a choice is accepted.
        coherences: Unsigned coherences in ``[0, 1]``; each stream draws one uniformly per trial, and a direction
            (the choice it favours) uniformly among ``n_choices``.
        noise: Noise model on the inputs: ``"uniform"`` adds ``noise_amplitude * U(-1, 1)`` (the paper's model),
            ``"gaussian"`` adds ``noise_amplitude * N(0, 1)``, ``"none"`` adds nothing.
        noise_amplitude: ``alpha``, the noise amplitude (half-width for uniform, standard deviation for Gaussian).
        noise_on: ``"stimulus"``: noise on the stimulus channels during the stimulus stage only; ``"all"``: on every
            channel at every step of the trial.
        n_choices: Number of alternatives (actions ``1..n_choices``; action 0 is fixate).
        n_streams: Number of evidence streams. With more than one, a context cue (one-hot, on for the whole trial)
            says which stream decides; the others are distractors.
        fixation_input: ``"until_decision"``: the fixation input is on through fixation, stimulus and delay and its
            offset is the go cue (Mante et al. 2013); ``"fixation_stage"``: on during the fixation stage only
            (NeuroGym 2.x).
        fixation_required: Stages in which a non-fixate action counts as breaking fixation: ``"until_decision"``
            (fixation, stimulus and delay) or ``"fixation_stage"`` (NeuroGym).
        reward_correct: Reward for a correct choice.
        reward_fail: Reward for a wrong choice.
        reward_abort: Reward on every step that breaks fixation.
        reward_miss: Reward when the decision stage ends without a choice.
        abort_ends_trial: If True, breaking fixation ends the trial (with ``reward_abort``).
    """

    dt: float = 100.0
    fixation: Duration = 300.0
    stimulus: Duration = 1500.0
    delay: Duration = ("truncexp", 600.0, 300.0, 3000.0)
    decision: Duration = 300.0
    coherences: tuple[float, ...] = (0.1, 0.2, 0.4)
    noise: str = "uniform"
    noise_amplitude: float = 0.25
    noise_on: str = "stimulus"
    n_choices: int = 2
    n_streams: int = 2
    fixation_input: str = "until_decision"
    fixation_required: str = "until_decision"
    reward_correct: float = 1.0
    reward_fail: float = 0.0
    reward_abort: float = -0.1
    reward_miss: float = 0.0
    abort_ends_trial: bool = False
    name: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        # Every field in its canonical type (tuples, floats, ints, bools), so that configs built from JSON (lists)
        # equal and hash like the presets; a wrong type or value raises here, naming the field.
        for key, value in _canonical_fields(self).items():
            object.__setattr__(self, key, value)
        self._validate_durations()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise ``ValueError`` (``TypeError`` for a wrong type; see :mod:`dm_envs.validation`) naming the parameter,
        its value and what is allowed if any field is invalid."""
        _canonical_fields(self)
        self._validate_durations()

    def _validate_durations(self) -> None:
        for stage in STAGES:
            _validate_duration(stage, getattr(self, stage), self.dt, allow_zero=(stage == "delay"))

    # ------------------------------------------------------------------ derived quantities
    @property
    def n_actions(self) -> int:
        """Size of the discrete action space: fixate plus one action per choice."""
        return 1 + self.n_choices

    @property
    def has_context(self) -> bool:
        """Whether the observation carries a context cue (more than one stream)."""
        return self.n_streams > 1

    @property
    def obs_dim(self) -> int:
        """Number of input channels: fixation, ``n_choices`` per stream, and the context cue if any."""
        return 1 + self.n_streams * self.n_choices + (self.n_streams if self.has_context else 0)

    @property
    def observation_names(self) -> tuple[str, ...]:
        """Name of every input channel, in order."""
        names = ["fixation"]
        for s in range(self.n_streams):
            names += [f"stream{s + 1}_choice{j + 1}" for j in range(self.n_choices)]
        if self.has_context:
            names += [f"context{s + 1}" for s in range(self.n_streams)]
        return tuple(names)

    @property
    def stimulus_slice(self) -> slice:
        """Channels of all evidence streams (stream ``s`` is ``1 + s*n_choices ... 1 + (s+1)*n_choices``)."""
        return slice(1, 1 + self.n_streams * self.n_choices)

    @property
    def context_slice(self) -> slice:
        """Channels of the context cue (empty without context)."""
        start = 1 + self.n_streams * self.n_choices
        return slice(start, start + (self.n_streams if self.has_context else 0))

    def stage_step_range(self, stage: str) -> tuple[int, int]:
        """Smallest and largest number of steps the given stage can last."""
        return _duration_step_range(getattr(self, stage), self.dt)

    @property
    def max_trial_steps(self) -> int:
        """Longest possible trial, in steps (the padded length of a batch never exceeds it)."""
        return sum(self.stage_step_range(s)[1] for s in STAGES)

    # ------------------------------------------------------------------ (de)serialisation
    def replace(self, **changes: Any) -> "TaskConfig":
        """A copy with some fields changed (validated; unknown names raise ``TypeError``)."""
        _check_fields(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict; ``TaskConfig.from_dict(cfg.to_dict()) == cfg``."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = _to_json(v)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TaskConfig":
        """Rebuild a config from :meth:`to_dict` output (lists are accepted wherever tuples are)."""
        _check_fields(data)
        return cls(**data)


# ---------------------------------------------------------------------- duration helpers
DURATION_FORMS = "a number of ms or a tuple like ('uniform', lo, hi)"


def _normalise_duration(stage: str, d: Any) -> Duration:
    """A duration as a float (ms) or a tuple ``(kind, floats...)`` (``("choice", (floats...))``); bad types raise."""
    if isinstance(d, (list, tuple)):
        if len(d) == 0:
            raise InvalidValueError(f"{stage} must be {DURATION_FORMS}, got {describe_value(d)}")
        kind = as_choice(f"{stage} distribution", d[0], DURATION_KINDS)
        if kind == "choice":
            values = d[1] if len(d) == 2 and isinstance(d[1], (list, tuple, np.ndarray)) else d[1:]
            return ("choice", as_float_sequence(f"{stage} choice durations", values, min_len=0))
        return (kind, *as_float_sequence(f"{stage} {kind} parameters", d[1:], min_len=0))
    if not isinstance(d, (int, float, np.integer, np.floating, np.ndarray)) or isinstance(d, bool):
        raise InvalidTypeError(f"{stage} must be {DURATION_FORMS}, got {describe_value(d)}")
    return as_float(stage, d)


def _validate_duration(stage: str, d: Duration, dt: float, allow_zero: bool) -> None:
    lo_ms_allowed = "0" if allow_zero else f"dt={dt:g}"
    if isinstance(d, tuple):
        kind = d[0]
        if kind == "uniform" and (len(d) != 3 or d[1] > d[2]):
            raise InvalidValueError(f"{stage}: ('uniform', lo, hi) needs lo <= hi, got {d!r}")
        if kind == "truncexp" and (len(d) != 4 or d[1] <= 0 or d[2] >= d[3]):
            raise InvalidValueError(f"{stage}: ('truncexp', mean, lo, hi) needs mean > 0 and lo < hi, got {d!r}")
        if kind == "choice" and len(d[1]) == 0:
            raise InvalidValueError(f"{stage}: ('choice', values) needs at least one value, got {d!r}")
    lo, hi = _duration_step_range(d, dt)
    if lo < 0 or (not allow_zero and lo < 1) or hi < lo:
        raise InvalidValueError(
            f"{stage} duration must be >= {lo_ms_allowed} ms (at least one step of dt={dt:g} ms"
            f"{'' if not allow_zero else ', or 0'}), got {d!r}"
        )


def _steps(ms: float, dt: float) -> int:
    # Floor to whole steps as NeuroGym does; the epsilon protects 300/100 from becoming 2.999...
    return int(math.floor(ms / dt + 1e-9))


def _duration_step_range(d: Duration, dt: float) -> tuple[int, int]:
    if not isinstance(d, tuple):
        n = _steps(d, dt)
        return n, n
    kind = d[0]
    if kind == "uniform":
        return int(math.ceil(d[1] / dt - 1e-9)), _steps(d[2], dt)
    if kind == "choice":
        steps = [_steps(v, dt) for v in d[1]]
        return min(steps), max(steps)
    # truncexp on [lo, hi): the largest value stays below hi
    return _steps(d[2], dt), _steps(d[3] - 1e-6 * dt, dt)


def _canonical_fields(cfg: "TaskConfig") -> dict[str, Any]:
    """Every field of ``cfg`` checked and in its canonical type (raises naming the first bad field)."""
    if not isinstance(cfg.name, str):
        raise InvalidTypeError(f"name must be a string, got {describe_value(cfg.name)}")
    out: dict[str, Any] = {"dt": as_float("dt", cfg.dt, low=0.0, low_open=True)}
    for stage in STAGES:
        out[stage] = _normalise_duration(stage, getattr(cfg, stage))
    out["coherences"] = as_float_sequence("coherences", cfg.coherences, low=0.0, high=1.0)
    out["noise"] = as_choice("noise", cfg.noise, NOISE_MODELS)
    out["noise_amplitude"] = as_float("noise_amplitude", cfg.noise_amplitude, low=0.0)
    out["noise_on"] = as_choice("noise_on", cfg.noise_on, NOISE_ON)
    out["n_choices"] = as_int("n_choices", cfg.n_choices, low=2)
    out["n_streams"] = as_int("n_streams", cfg.n_streams, low=1)
    out["fixation_input"] = as_choice("fixation_input", cfg.fixation_input, FIXATION_SPANS)
    out["fixation_required"] = as_choice("fixation_required", cfg.fixation_required, FIXATION_SPANS)
    for key in ("reward_correct", "reward_fail", "reward_abort", "reward_miss"):
        out[key] = as_float(key, getattr(cfg, key))
    out["abort_ends_trial"] = as_bool("abort_ends_trial", cfg.abort_ends_trial)
    return out


def _check_fields(names: Any) -> None:
    known = [f.name for f in dataclasses.fields(TaskConfig)]
    check_keys("task parameter(s)", names, known, error=InvalidTypeError)


def _to_json(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_to_json(x) for x in v]
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v


# ---------------------------------------------------------------------- presets
MEMORY_DELAY = ("truncexp", 600.0, 300.0, 3000.0)
"""Delay of levels 2-4: exponential with mean 600 ms truncated to [300, 3000) ms, as NeuroGym's context task. With
delays of at most 1 s, trained networks held the decision in transients that collapse or diverge a few steps later;
delays of up to 3 s make them hold it in stable fixed points (the attractors the analysis looks for)."""

PRESETS: dict[Any, TaskConfig] = {
    # Level 1: perceptual 2-choice decision on one stream, no delay.
    1: TaskConfig(name="level1", n_streams=1, delay=0.0),
    # Level 2: adds a variable delay (working memory of the decision). NeuroGym's delay law: long enough (up to 3 s)
    # that holding the decision takes an attractor, not a slow transient.
    2: TaskConfig(name="level2", n_streams=1, delay=MEMORY_DELAY),
    # Level 3: the paper's context-dependent task (two streams, a context cue, variable delay).
    3: TaskConfig(name="level3", n_streams=2, delay=MEMORY_DELAY),
    # Level 4: harder evidence (lower coherences, more noise) and three choices.
    4: TaskConfig(
        name="level4",
        n_streams=2,
        n_choices=3,
        coherences=(0.08, 0.16, 0.32),
        noise_amplitude=0.28,
        stimulus=3000.0,
        delay=MEMORY_DELAY,
    ),
    # NeuroGym ContextDecisionMaking (explicit context, 2 choices): its timing, coherences, noise and rewards.
    "neurogym": TaskConfig(
        name="neurogym",
        dt=100.0,
        fixation=300.0,
        stimulus=750.0,
        delay=("truncexp", 600.0, 300.0, 3000.0),
        decision=100.0,
        coherences=(0.05, 0.15, 0.5),
        noise="gaussian",
        noise_amplitude=0.1,  # sigma / sqrt(dt) with sigma = 1, dt = 100
        n_streams=2,
        fixation_input="fixation_stage",
        fixation_required="fixation_stage",
        reward_correct=1.0,
        reward_fail=0.0,
        reward_abort=-0.1,
    ),
}
"""The preset configs: levels ``1..4`` and the ``"neurogym"`` parity preset."""

LEVELS: tuple[int, ...] = (1, 2, 3, 4)
DEFAULT_LEVEL = 3
COMPLEXITY_LEVELS, DEFAULT_COMPLEXITY = LEVELS, DEFAULT_LEVEL  # the former names


def make_config(
    level: int | None = None,
    *,
    preset: str | None = None,
    config: TaskConfig | dict | None = None,
    **overrides: Any,
) -> TaskConfig:
    """Build a :class:`TaskConfig` from a level or preset, with field overrides.

    Args:
        level: Level, one of ``1..4`` (default 3, the paper's context-dependent task).
        preset: A named preset instead of a level (``"neurogym"``).
        config: A full config (or its dict) to start from instead of a preset.
        **overrides: Any :class:`TaskConfig` field, e.g. ``coherences=[0.05, 0.5]``, ``noise="gaussian"``.

    Returns:
        The validated config.

    Raises:
        ValueError: level out of range, unknown preset, or an invalid field value.
        TypeError: an unknown field name.

    Example:
        >>> cfg = make_config(2, noise_amplitude=0.3)
        >>> cfg.n_streams, cfg.noise_amplitude
        (1, 0.3)
    """
    if "complexity" in overrides:  # the level's former name, still accepted
        if level is not None:
            raise InvalidValueError("give level or complexity (its former name), not both")
        level = overrides.pop("complexity")
    given = sum(x is not None for x in (level, preset, config))
    if given > 1:
        raise InvalidValueError("give at most one of level, preset and config")
    if config is not None:
        if not isinstance(config, (TaskConfig, Mapping)):
            raise InvalidTypeError(f"config must be a TaskConfig or a dict of its fields, got {describe_value(config)}")
        base = config if isinstance(config, TaskConfig) else TaskConfig.from_dict(dict(config))
    elif preset is not None:
        base = PRESETS[as_choice("preset", preset, [k for k in PRESETS if isinstance(k, str)])]
    else:
        level = DEFAULT_LEVEL if level is None else level
        allowed = f"an integer in {LEVELS}"
        base = PRESETS[as_int("level", level, low=min(LEVELS), high=max(LEVELS), allowed=allowed)]
    if not overrides:
        return base
    _check_fields(overrides)
    if "name" not in overrides:
        overrides["name"] = f"{base.name}+custom"
    return dataclasses.replace(base, **overrides)
