"""The trial generator: the single source of truth for every env, the vector env and the supervised dataset.

:func:`sample_trials` draws a batch of ``N`` whole trials at once, vectorised in numpy. Every consumer (the single
env, the batched vector env, the SB3 adapter, the supervised :class:`~dm_envs.dataset.TrialDataset`, the observers
and the analysis) calls it, so reinforcement and supervised learning see identically distributed trials.

Observation layout (``TaskConfig.observation_names``)::

    [fixation, stream1_choice1 .. stream1_choiceK, stream2_choice1 .. , context1 .. contextS]

* ``fixation`` is 1 while the agent must hold fixation (see ``TaskConfig.fixation_input``); its offset is the go cue.
* Stream ``s`` carries, during the stimulus stage only, ``0.5 + 0.5 * c_s * cos(2 pi (j - d_s) / K)`` on channel
  ``j`` for coherence ``c_s`` and direction ``d_s``; with two choices this is ``(1 + c)/2`` on the favoured channel
  and ``(1 - c)/2`` on the other, so ``channel1 - channel2`` is the signed coherence.
* The context one-hot (only with ``n_streams > 1``) is on for the whole trial; context ``k`` means stream ``k``
  decides.
* Noise is added on top (``TaskConfig.noise``, ``noise_on``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from typing import Any, Optional

import numpy as np

from .config import DECISION, DELAY, FIXATION, PADDING, STAGES, STIMULUS, TaskConfig, _steps
from .validation import as_int

__all__ = ["TrialBatch", "sample_trials", "sample_durations", "stage_input", "stimulus_means"]


@dataclass
class TrialBatch:
    """A batch of ``N`` trials padded to a common length ``T``.

    Attributes:
        config: The task the trials come from.
        obs: Inputs, ``(N, T, obs_dim)`` float32 (zeros after a trial's end).
        gt: Ground-truth action per step, ``(N, T)`` int64: 0 (fixate) before the decision stage, the correct action
            ``correct_choice + 1`` during it, 0 in the padding.
        stage: Stage id per step, ``(N, T)`` int8 (0 fixation, 1 stimulus, 2 delay, 3 decision, -1 padding).
        length: Trial length in steps, ``(N,)`` int64.
        onset: First step of each stage, ``(N, 4)`` int64.
        duration: Steps in each stage, ``(N, 4)`` int64.
        coherence: Unsigned coherence of each stream, ``(N, n_streams)`` float64.
        direction: Choice index (0-based) each stream favours, ``(N, n_streams)`` int64.
        context: Index of the stream that decides, ``(N,)`` int64 (0 without context).
        correct_choice: The correct choice (0-based; the correct action is ``correct_choice + 1``), ``(N,)`` int64.
    """

    config: TaskConfig
    obs: np.ndarray
    gt: np.ndarray
    stage: np.ndarray
    length: np.ndarray
    onset: np.ndarray
    duration: np.ndarray
    coherence: np.ndarray
    direction: np.ndarray
    context: np.ndarray
    correct_choice: np.ndarray

    def __len__(self) -> int:
        return int(self.obs.shape[0])

    @property
    def n_steps(self) -> int:
        """Padded length ``T``."""
        return int(self.obs.shape[1])

    @property
    def signed_coherence(self) -> np.ndarray:
        """Signed coherence of each stream, ``(N, n_streams)``: positive favours choice 1 (two-choice tasks only)."""
        if self.config.n_choices != 2:
            raise ValueError("signed coherence is defined for two-choice tasks; use coherence and direction")
        return np.where(self.direction == 0, self.coherence, -self.coherence)

    @property
    def relevant_coherence(self) -> np.ndarray:
        """Unsigned coherence of the stream that decides, ``(N,)``."""
        return self.coherence[np.arange(len(self)), self.context]

    @property
    def mask(self) -> np.ndarray:
        """``(N, T)`` bool, True on the steps that belong to a trial (not padding)."""
        return self.stage != PADDING

    def __getitem__(self, idx: Any) -> "TrialBatch":
        """Select trials (an index array, slice or boolean mask); the padding is trimmed to the new longest."""
        if isinstance(idx, (int, np.integer)):
            idx = [idx]
        sub = {f.name: getattr(self, f.name)[idx] for f in fields(self) if f.name != "config"}
        t_max = int(sub["length"].max()) if len(sub["length"]) else 0
        for key in ("obs", "gt", "stage"):
            sub[key] = sub[key][:, :t_max]
        return TrialBatch(config=self.config, **sub)

    def time_major(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(obs (T, N, D), gt (T, N), stage (T, N))``: the layout recurrent networks consume (no copy when the
        batch came from :func:`sample_trials`, which builds it time-major)."""
        return (
            np.ascontiguousarray(self.obs.transpose(1, 0, 2)),
            np.ascontiguousarray(self.gt.T),
            np.ascontiguousarray(self.stage.T),
        )

    def info(self) -> dict[str, np.ndarray]:
        """The trial keys of the env info schema (:data:`dm_envs.info.TRIAL_KEYS`), one row per trial: what an env's
        ``reset()`` info says about each of these trials."""
        from .info import trial_info  # dm_envs.info builds on the engine, which builds on this module

        return trial_info(self.config, self.coherence, self.direction, self.context, self.correct_choice)

    def metadata(self) -> dict[str, np.ndarray]:
        """Per-trial metadata as a dict of arrays (signed coherence included for two-choice tasks)."""
        out = {
            "coherence": self.coherence,
            "direction": self.direction,
            "context": self.context,
            "correct_choice": self.correct_choice,
            "length": self.length,
            "relevant_coherence": self.relevant_coherence,
        }
        if self.config.n_choices == 2:
            out["signed_coherence"] = self.signed_coherence
        return out


def sample_durations(config: TaskConfig, n: int, rng: np.random.Generator) -> np.ndarray:
    """Number of steps of each stage for ``n`` trials, ``(n, 4)`` int64 (one column per stage, in trial order)."""
    return _durations(config, rng.random((n, len(STAGES))))


def _categorical(u: np.ndarray, count: int) -> np.ndarray:
    """Uniform integers in ``[0, count)`` from uniforms in ``[0, 1)``."""
    return np.minimum((u * count).astype(np.int64), count - 1)


class _Plan:
    """Per-config constants of the generator, computed once (configs are frozen and hashable)."""

    def __init__(self, cfg: TaskConfig) -> None:
        self.durations = []  # per stage: ("fixed", steps) | ("int", lo, count) | ("table", steps) | ("exp", ...)
        for name in STAGES:
            d = getattr(cfg, name)
            if not isinstance(d, tuple):
                self.durations.append(("fixed", _steps(d, cfg.dt)))
            elif d[0] == "uniform":
                lo, hi = cfg.stage_step_range(name)
                self.durations.append(("int", lo, hi - lo + 1))
            elif d[0] == "choice":
                self.durations.append(("table", np.array([_steps(v, cfg.dt) for v in d[1]], dtype=np.int64)))
            else:
                mean, lo, hi = d[1], d[2], d[3]
                self.durations.append(("exp", mean, np.exp(-lo / mean), np.exp(-hi / mean), cfg.dt))
        self.coherences = np.asarray(cfg.coherences, dtype=np.float64)
        self.eye = np.eye(cfg.n_streams, dtype=np.float32)
        fix_stages = [FIXATION, STIMULUS, DELAY] if cfg.fixation_input == "until_decision" else [FIXATION]
        self.fixation_on = np.zeros(len(STAGES) + 1, dtype=np.float32)
        self.fixation_on[fix_stages] = 1.0


@functools.lru_cache(maxsize=128)
def _plan(cfg: TaskConfig) -> _Plan:
    return _Plan(cfg)


def _durations(config: TaskConfig, u: np.ndarray) -> np.ndarray:
    """Stage durations in steps from one uniform per trial and stage, ``u`` of shape ``(n, 4)``."""
    out = np.empty(u.shape, dtype=np.int64)
    for k, spec in enumerate(_plan(config).durations):
        if spec[0] == "fixed":
            out[:, k] = spec[1]
        elif spec[0] == "int":
            out[:, k] = spec[1] + _categorical(u[:, k], spec[2])
        elif spec[0] == "table":
            out[:, k] = spec[1][_categorical(u[:, k], len(spec[1]))]
        else:
            # Truncated exponential on [lo, hi) by inverse CDF: the law of NeuroGym's rejection sampler.
            _, mean, a, b, dt = spec
            out[:, k] = np.floor(-mean * np.log(a - u[:, k] * (a - b)) / dt + 1e-9)
    return out


def stimulus_means(config: TaskConfig, coherence: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Noise-free evidence channels, ``(..., n_streams * n_choices)``, for coherences/directions ``(..., n_streams)``."""
    k = config.n_choices
    j = np.arange(k)
    # cos(2 pi (j - d) / K): +1 on the favoured channel, -1 on the opposite one for K = 2.
    phase = 2.0 * np.pi * (j - np.asarray(direction)[..., None]) / k
    means = 0.5 + 0.5 * np.asarray(coherence)[..., None] * np.cos(phase)
    return means.reshape(*means.shape[:-2], -1)


def _directions_from_signed(signed: np.ndarray, rng_fallback: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    signed = np.asarray(signed, dtype=np.float64)
    direction = np.where(signed > 0, 0, np.where(signed < 0, 1, rng_fallback))
    return np.abs(signed), direction.astype(np.int64)


def _add_noise(
    cfg: TaskConfig,
    obs_tm: np.ndarray,
    stage_tm: np.ndarray,
    stim_onset: np.ndarray,
    stim_len: np.ndarray,
    rng: np.random.Generator,
    apply: bool,
) -> None:
    """Draw the input noise (always, so the random stream does not depend on ``apply``) and add it in place."""
    amp = np.float32(cfg.noise_amplitude)
    if cfg.noise_on == "stimulus":
        # Only the stimulus window is noisy: draw (longest stimulus, N, stimulus channels).
        chans, width = cfg.stimulus_slice, int(stim_len.max())
    else:
        chans, width = slice(0, cfg.obs_dim), obs_tm.shape[0]
    shape = (width, obs_tm.shape[1], chans.stop - chans.start)
    if cfg.noise == "uniform":
        eps = rng.random(shape, dtype=np.float32)
        eps *= 2 * amp
        eps -= amp
    else:
        eps = rng.standard_normal(shape, dtype=np.float32)
        eps *= amp
    if not apply or amp == 0:
        return
    if cfg.noise_on == "all":
        eps *= (stage_tm >= 0)[:, :, None]
        obs_tm += eps
    elif (stim_onset == stim_onset[0]).all() and (stim_len == stim_len[0]).all():
        on = int(stim_onset[0])
        obs_tm[on : on + width, :, chans] += eps
    else:  # trials differ in stimulus timing: scatter each trial's window
        j, i = np.nonzero(np.arange(width)[:, None] < stim_len)
        obs_tm[stim_onset[i] + j, i, chans] += eps[j, i]


def sample_trials(
    config: TaskConfig,
    n: int,
    rng: np.random.Generator | int | None = None,
    *,
    noise: bool = True,
    coherence: Optional[np.ndarray] = None,
    direction: Optional[np.ndarray] = None,
    signed_coherence: Optional[np.ndarray] = None,
    context: Optional[np.ndarray] = None,
    durations: Optional[np.ndarray] = None,
) -> TrialBatch:
    """Sample ``n`` whole trials, vectorised over trials.

    Every random quantity is drawn from ``rng`` in a fixed order (one block of uniforms for the durations, context,
    directions and coherences, then the noise) whatever is overridden, so the same seed always gives the same trials.

    Args:
        config: The task.
        n: Number of trials.
        rng: A ``numpy.random.Generator`` or a seed.
        noise: If False, inputs are noise-free (the noise draws are still made).
        coherence: Optional unsigned coherences, broadcastable to ``(n, n_streams)``, instead of drawing from
            ``config.coherences``.
        direction: Optional favoured choices (0-based), broadcastable to ``(n, n_streams)``.
        signed_coherence: Two-choice tasks: optional signed coherences ``(n, n_streams)``; sets both coherence and
            direction (positive favours choice 1; zero keeps the random direction).
        context: Optional contexts ``(n,)``.
        durations: Optional stage durations in steps, broadcastable to ``(n, 4)``.

    Returns:
        The :class:`TrialBatch`.

    Example:
        >>> from dm_envs import make_config, sample_trials
        >>> trials = sample_trials(make_config(3), 4, rng=0)
        >>> trials.obs.shape[0], trials.obs.shape[2]
        (4, 7)
    """
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    n = as_int("n", n, low=1)
    cfg = config
    n_streams, k = cfg.n_streams, cfg.n_choices

    # ---- random draws: one uniform per trial for each stage duration, the context, and each stream's direction
    # and coherence (always all of them, whatever is overridden), then the noise.
    u = rng.random((n, len(STAGES) + 1 + 2 * n_streams))
    dur = _durations(cfg, u[:, : len(STAGES)])
    ctx = _categorical(u[:, len(STAGES)], n_streams)
    dirs = _categorical(u[:, len(STAGES) + 1 : len(STAGES) + 1 + n_streams], k)
    plan = _plan(cfg)
    cohs = plan.coherences[_categorical(u[:, len(STAGES) + 1 + n_streams :], len(plan.coherences))]

    # ---- overrides
    if durations is not None:
        dur = np.broadcast_to(np.asarray(durations, dtype=np.int64), (n, 4)).copy()
        if (dur[:, [FIXATION, STIMULUS, DECISION]] < 1).any() or (dur < 0).any():
            raise ValueError("durations must be >= 1 step (delay >= 0)")
    if context is not None:
        ctx = np.broadcast_to(np.asarray(context, dtype=np.int64), (n,)).copy()
        if ((ctx < 0) | (ctx >= n_streams)).any():
            raise ValueError(f"context must lie in [0, {n_streams - 1}]")
    if signed_coherence is not None:
        if k != 2:
            raise ValueError("signed_coherence is for two-choice tasks; pass coherence and direction")
        sc = np.broadcast_to(np.asarray(signed_coherence, dtype=np.float64), (n, n_streams))
        cohs, dirs = _directions_from_signed(sc, dirs)
    if coherence is not None:
        cohs = np.broadcast_to(np.asarray(coherence, dtype=np.float64), (n, n_streams)).copy()
    if direction is not None:
        dirs = np.broadcast_to(np.asarray(direction, dtype=np.int64), (n, n_streams)).copy()
        if ((dirs < 0) | (dirs >= k)).any():
            raise ValueError(f"direction must lie in [0, {k - 1}]")
    if (coherence is not None or signed_coherence is not None) and ((cohs < 0) | (cohs > 1)).any():
        raise ValueError("coherence must lie in [0, 1]")

    # ---- stage of every step: the number of stage boundaries passed (padding after the trial's end).
    # Arrays are built time-major (T, N, ...), the layout recurrent networks consume; the batch-major fields of the
    # TrialBatch are transposed views of them.
    length = dur.sum(axis=1)
    t_max = int(length.max())
    onset = np.zeros((n, len(STAGES)), dtype=np.int64)
    np.cumsum(dur[:, :-1], axis=1, out=onset[:, 1:])
    t = np.arange(t_max)[:, None]
    stage_tm = np.zeros((t_max, n), dtype=np.int8)
    for k_stage in range(1, len(STAGES)):
        stage_tm += t >= onset[:, k_stage]
    stage_tm[t >= length] = PADDING

    # ---- inputs: each trial has one noise-free input vector per stage; gather it for every step
    templates = np.zeros((n, len(STAGES) + 1, cfg.obs_dim), dtype=np.float32)  # the padding (-1) is row 4
    templates[:, :, 0] = plan.fixation_on
    templates[:, STIMULUS, cfg.stimulus_slice] = stimulus_means(cfg, cohs, dirs)
    if cfg.has_context:
        templates[:, : len(STAGES), cfg.context_slice] = plan.eye[ctx][:, None, :]
    # stage -1 (padding) indexes row 4 of each trial's templates
    rows = np.arange(n) * (len(STAGES) + 1) + (stage_tm % (len(STAGES) + 1))
    obs_tm = templates.reshape(-1, cfg.obs_dim)[rows]

    if cfg.noise != "none":
        _add_noise(cfg, obs_tm, stage_tm, onset[:, STIMULUS], dur[:, STIMULUS], rng, noise)

    correct = dirs[np.arange(n), ctx]
    gt_tm = np.where(stage_tm == DECISION, correct + 1, 0)
    obs, gt, stage = obs_tm.transpose(1, 0, 2), gt_tm.T, stage_tm.T
    return TrialBatch(
        config=cfg,
        obs=obs,
        gt=gt,
        stage=stage,
        length=length,
        onset=onset,
        duration=dur,
        coherence=cohs,
        direction=dirs,
        context=ctx,
        correct_choice=correct.astype(np.int64),
    )


def stage_input(
    config: TaskConfig,
    stage: str | int,
    *,
    coherence: Optional[np.ndarray] = None,
    direction: Optional[np.ndarray] = None,
    signed_coherence: Optional[np.ndarray] = None,
    context: Optional[np.ndarray | int] = None,
) -> np.ndarray:
    """The noise-free input held constant during a stage, for one or many conditions.

    Within a stage the input is constant up to noise, so the network is an autonomous map with this input as a
    parameter (the basis of the attractor analysis).

    Args:
        config: The task.
        stage: Stage name or id.
        coherence, direction: Unsigned coherences and directions, ``(..., n_streams)`` (stimulus stage only).
        signed_coherence: Two-choice tasks: signed coherences ``(..., n_streams)`` instead of the two above.
        context: Context index, broadcastable to the leading shape (default 0).

    Returns:
        ``(..., obs_dim)`` float64 array.

    Example:
        >>> from dm_envs import make_config
        >>> stage_input(make_config(3), "stimulus", signed_coherence=[0.2, -0.1], context=1).round(2)
        array([1.  , 0.6 , 0.4 , 0.45, 0.55, 0.  , 1.  ])
    """
    cfg = config
    sid = STAGES.index(stage) if isinstance(stage, str) else int(stage)
    if sid not in range(len(STAGES)):
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    if signed_coherence is not None:
        if cfg.n_choices != 2:
            raise ValueError("signed_coherence is for two-choice tasks")
        sc = np.asarray(signed_coherence, dtype=np.float64)
        coherence, direction = np.abs(sc), np.where(sc >= 0, 0, 1)
    lead: tuple[int, ...] = ()
    for a in (coherence, direction):
        if a is not None:
            lead = np.broadcast_shapes(lead, np.shape(a)[:-1])
    if context is not None:
        lead = np.broadcast_shapes(lead, np.shape(context))
    out = np.zeros(lead + (cfg.obs_dim,), dtype=np.float64)
    fix_on = (FIXATION, STIMULUS, DELAY) if cfg.fixation_input == "until_decision" else (FIXATION,)
    out[..., 0] = 1.0 if sid in fix_on else 0.0
    if sid == STIMULUS:
        if coherence is None:
            raise ValueError("the stimulus-stage input needs coherence (or signed_coherence)")
        coh = np.broadcast_to(np.asarray(coherence, dtype=np.float64), lead + (cfg.n_streams,))
        dirs = np.broadcast_to(np.asarray(0 if direction is None else direction), lead + (cfg.n_streams,))
        out[..., cfg.stimulus_slice] = stimulus_means(cfg, coh, dirs)
    if cfg.has_context:
        ctx = np.broadcast_to(np.asarray(0 if context is None else context, dtype=np.int64), lead)
        if ((ctx < 0) | (ctx >= cfg.n_streams)).any():
            raise ValueError(f"context must lie in [0, {cfg.n_streams - 1}]")
        out[..., cfg.context_slice] = np.eye(cfg.n_streams)[ctx]
    return out
