"""The single-trial Gymnasium environment of the decision-making suite."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ._engine import TrialEngine, trial_conditions
from .config import STAGES, TaskConfig, make_config
from .info import end_info, trial_info, unbatch
from .render import RENDER_MODES, EngineRenderer
from .validation import ResetNeededError, as_choice, as_int


def _spaces(cfg: TaskConfig) -> tuple[spaces.Box, spaces.Discrete]:
    """Observation bounds: every noise-free input lies in [0, 1]; uniform noise widens the noisy channels by alpha,
    Gaussian noise makes them unbounded."""
    low = np.zeros(cfg.obs_dim, dtype=np.float32)
    high = np.ones(cfg.obs_dim, dtype=np.float32)
    noisy = cfg.stimulus_slice if cfg.noise_on == "stimulus" else slice(0, cfg.obs_dim)
    if cfg.noise == "uniform":
        low[noisy] -= cfg.noise_amplitude
        high[noisy] += cfg.noise_amplitude
    elif cfg.noise == "gaussian" and cfg.noise_amplitude > 0:
        low[noisy], high[noisy] = -np.inf, np.inf
    obs = spaces.Box(low, high, shape=(cfg.obs_dim,), dtype=np.float32)
    return obs, spaces.Discrete(cfg.n_actions)


def check_action(action: Any, n_actions: int) -> int:
    """Return ``action`` as an int, or raise ``ValueError``/``TypeError`` naming the allowed range.

    An integer (Python or NumPy, or a NumPy array holding one) in ``[0, n_actions - 1]``; floats, booleans and
    strings are rejected (Gymnasium's ``Discrete.contains`` accepts the same values).
    """
    if isinstance(action, np.ndarray) and action.size == 1:
        action = action.reshape(())
    return as_int("action", action, low=0, high=n_actions - 1, allowed=f"an integer in [0, {n_actions - 1}] (0 = fixate)")


class DecisionMakingEnv(gym.Env):
    """Perceptual decision making with noisy evidence streams, a context cue and a delay: one trial per episode.

    Each trial runs through four stages: **fixation** (hold fixation), **stimulus** (noisy evidence on every stream),
    **delay** (evidence off; hold the decision in memory) and **decision** (fixation input off: report the choice).
    With several streams a context cue says which stream decides; the others are distractors. Every task of the
    suite is a :class:`~dm_envs.TaskConfig`; the levels are presets of it:

    =====  ==========================================================  ===========  ========  =========
    level  task                                                        coherences   noise α   choices
    =====  ==========================================================  ===========  ========  =========
    1      perceptual decision on one stream, no delay                 .1 .2 .4     0.25      2
    2      level 1 + a variable delay 300-3000 ms (memory)             .1 .2 .4     0.25      2
    3      context-dependent: two streams, context cue, delay (paper)  .1 .2 .4     0.25      2
    4      level 3 with weaker evidence, longer stimulus, 3 choices    .08 .16 .32  0.28      3
    =====  ==========================================================  ===========  ========  =========

    (dt = 100 ms; fixation 300 ms, stimulus 1500 ms (3000 at level 4), decision 300 ms; uniform noise
    ``alpha * U(-1, 1)`` on the stimulus channels.)

    **Observation space** ``Box(low, high, (obs_dim,), float32)``: ``[fixation, stream1 channels, ..., context
    one-hot]``, each noise-free input in ``[0, 1]`` (noisy channels widened by ``alpha``; unbounded under Gaussian
    noise); see :mod:`dm_envs.trials` for the exact encoding and ``config.observation_names`` for the names.
    With two choices, stream ``s`` shows ``(1 + c_s)/2`` on its first channel and ``(1 - c_s)/2`` on its second for
    signed coherence ``c_s``.

    **Action space** ``Discrete(1 + n_choices)``: 0 = fixate, ``k`` = choose alternative ``k``. An action is an
    integer (Python or NumPy; a one-element integer array is accepted); floats, booleans and strings such as ``"1"``
    raise ``ValueError``/``TypeError`` naming the allowed range (:mod:`dm_envs.validation`).

    **Rewards** (configurable): ``reward_correct`` (+1) for the correct choice in the decision stage,
    ``reward_fail`` (0) for a wrong one, ``reward_abort`` (-0.1) on every step that breaks fixation before the
    decision stage, ``reward_miss`` (0) if no choice is made.

    **Episode end**: the first choice in the decision stage (``terminated``), the end of the decision stage without a
    choice (``terminated``, a miss), or a fixation break when ``abort_ends_trial``. Episodes are never truncated.
    The env does not autoreset: ``step()`` after the episode ended (or before the first ``reset()``) raises
    :class:`~dm_envs.validation.ResetNeededError` (Gymnasium's ``ResetNeeded``); ``reset()`` starts the next trial
    of the sequence. The vector front ends autoreset instead (see :mod:`dm_envs.info`).

    **Info** (the schema every front end shares; :data:`dm_envs.info.INFO_SCHEMA`):

    * ``reset()`` and every step - the trial: ``coherence`` and ``direction`` of each stream,
      ``signed_coherence`` (two-choice tasks), ``context``, ``correct_choice`` (0-based);
    * every step - the step just taken: ``gt`` (its ground-truth action), ``stage`` (its stage id; names in
      ``dm_envs.STAGES``), ``new_trial`` (the trial ended with it);
    * the step that ends the trial - ``outcome`` (``"correct"``, ``"wrong"``, ``"miss"`` or ``"abort"``), ``correct``
      and ``is_success`` (bool; ``is_success`` is what SB3's ``EvalCallback`` and ``Monitor`` record), ``choice``
      (0-based, -1 for none), ``performance`` (1.0 if correct, NeuroGym's key).

    **Reset options** (``reset(options={...})``, all optional) draw the next trial with given conditions:
    ``coherence``, ``direction``, ``signed_coherence`` (two-choice tasks), ``context``, ``durations`` (steps of the
    four stages); see :func:`dm_envs._engine.trial_conditions`. Unknown keys and invalid values raise ``ValueError``.

    **Rendering** (``render_mode``): ``"rgb_array"`` returns a picture of the trial so far, an ``(H, W, 3)`` uint8
    array of a fixed size per task drawn with numpy (input channels over time on their stages' shading, the actions
    taken, the correct choice, the outcome as a coloured border; :mod:`dm_envs.render`), so
    ``gymnasium.wrappers.RecordVideo`` records trials; ``"human"`` shows the same picture in a matplotlib window
    on every step (without a display it warns once and shows nothing); ``"ansi"`` returns a one-line text summary.

    **Randomness**: everything comes from ``self.np_random``; ``reset(seed=s)`` reproduces the trial sequence
    exactly, and it is the same sequence env ``i`` of :class:`~dm_envs.DecisionMakingVectorEnv` runs when seeded
    ``s``.

    Args:
        level: Level ``1..4`` (default 3).
        preset: A named preset instead (``"neurogym"``).
        config: A full :class:`~dm_envs.TaskConfig` (or its dict) instead.
        render_mode: ``None``, ``"rgb_array"``, ``"human"`` or ``"ansi"``.
        **overrides: Any ``TaskConfig`` field, e.g. ``coherences=[0.05, 0.5]``, ``noise="gaussian"``, ``dt=20``.

    Example:
        >>> import gymnasium as gym, dm_envs
        >>> env = gym.make("DecisionMaking-v0", level=1, render_mode="rgb_array")
        >>> obs, info = env.reset(seed=0)
        >>> obs.shape, env.action_space, env.render().dtype.name
        ((3,), Discrete(3), 'uint8')
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 10}

    def __init__(
        self,
        level: Optional[int] = None,
        *,
        preset: Optional[str] = None,
        config: TaskConfig | dict | None = None,
        render_mode: Optional[str] = None,
        **overrides: Any,
    ) -> None:
        self.config = make_config(level, preset=preset, config=config, **overrides)
        self.observation_space, self.action_space = _spaces(self.config)
        self.render_mode = check_render_mode(render_mode, RENDER_MODES)
        # one frame per step: the video of a trial plays in real time
        self.metadata = {**type(self).metadata, "render_fps": 1000.0 / self.config.dt}
        self._engine = TrialEngine(self.config, 1)
        self._started = False
        self._ended = False  # the episode ended: step() needs a reset()
        self._last: dict[str, Any] = {}
        self._info_key: tuple[int, int] = (-1, -1)
        self._info: dict[str, Any] = {}
        drawn = self.render_mode in ("rgb_array", "human")
        self._frames = EngineRenderer(self._engine, self.render_mode, "DecisionMakingEnv") if drawn else None

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None) -> tuple[np.ndarray, dict]:
        """Start the next trial (with ``seed``: a fresh trial sequence from that seed; with ``options``: a trial
        with the given conditions, see the class docstring)."""
        conditions = trial_conditions(self.config, options)
        super().reset(seed=None if seed is None else as_int("seed", seed, low=0))
        e = self._engine
        if seed is not None or not self._started or e.rngs[0] is not self.np_random:
            e.rngs[0] = self.np_random
            e.reset()
            self._started = True
        elif e.step_in_trial()[0] != 0:  # reset mid-trial: abandon it and move on
            e.end_trial(0)
        if conditions:
            e.force_trial(0, conditions)
            self._info_key = (-1, -1)  # the trial on this tape row changed
        self._ended = False
        self._last = {}
        if self._frames is not None:
            self._frames.clear()
            self._frames.show()  # a no-op unless render_mode == "human"
        return e.obs[int(e.pos[0])].copy(), self._trial_info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Take one step of the running trial; see the class docstring for rewards, episode end and info."""
        if not self._started or self._ended:
            when = "before the first reset()" if not self._started else "after the episode ended (terminated=True)"
            raise ResetNeededError(f"step() called {when}; call reset() to start a trial")
        a = check_action(action, self.config.n_actions)
        e = self._engine
        pos = int(e.pos[0])
        idx = int(e.key[pos]) + a
        reward = float(e.reward_table[idx])
        done = bool(e.done_table[idx])
        info = {**self._trial_info(), "gt": int(e.gt[pos]), "stage": int(e.stage[pos]), "new_trial": done}
        if self._frames is not None:
            self._frames.record(a)
        if done:
            o = e.outcome_table[idx : idx + 1]
            info.update(unbatch(end_info(o, e.choice_table[idx : idx + 1]), 0))
            obs = e.obs[int(e.final_pos[pos])].copy()
            if self._frames is not None:
                self._frames.finish(0, info["outcome"])
            e.end_trial(0)
            self._ended = True
        else:
            e.pos[0] = pos + 1
            obs = e.obs[pos + 1].copy()
        self._last = {"action": a, "reward": reward, **info}
        if self._frames is not None:
            self._frames.show()
        return obs, reward, done, False, info

    def render(self) -> Optional[str | np.ndarray]:
        """The current frame: ``"rgb_array"`` an ``(H, W, 3)`` uint8 picture of the trial so far (the finished trial
        until the next ``reset()``); ``"ansi"`` a one-line summary; ``"human"`` shows the picture and returns
        ``None``; no render mode: ``None``."""
        if self.render_mode == "ansi":
            return self._ansi()
        if self.render_mode == "rgb_array":
            return self._frames.frames()[0]
        if self.render_mode == "human" and self._started:
            self._frames.show()
        return None

    def close(self) -> None:
        """Close the ``"human"`` window, if any."""
        if self._frames is not None:
            self._frames.close()
        super().close()

    # ------------------------------------------------------------------ helpers
    def _ansi(self) -> str:
        if not self._started:
            return "no trial yet: call reset()"
        e, i = self._engine, self._trial_info() if not self._ended else self._last
        stage = STAGES[int(e.stage[int(e.pos[0])])] if not self._ended else "end"
        coh = ", ".join(f"{c:+.2f}" for c in i.get("signed_coherence", i["coherence"]))
        last = f" last action={self._last['action']} reward={self._last['reward']:+.2f}" if self._last else ""
        t = int(e.step_in_trial()[0]) if not self._ended else "end"
        return f"t={t} stage={stage} coherence=[{coh}] context={i['context']} gt={i['correct_choice'] + 1}{last}"

    def _trial_info(self) -> dict[str, Any]:
        """A fresh copy of the running trial's :data:`~dm_envs.info.TRIAL_KEYS` (built once per trial, copied on
        every call because users keep the infos they are given)."""
        e = self._engine
        key = (int(e.pos[0]) // e.t_max, int(e.blocks_drawn[0]))
        if self._info_key != key:
            rows = slice(key[0], key[0] + 1)
            batched = trial_info(self.config, e.coherence[rows], e.direction[rows], e.context[rows], e.correct_choice[rows])
            self._info_key, self._info = key, unbatch(batched, 0)
        return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in self._info.items()}


def check_render_mode(render_mode: Optional[str], allowed: Sequence[str]) -> Optional[str]:
    """``render_mode`` if it is ``None`` or one of ``allowed``; else a ``ValueError`` naming them."""
    return None if render_mode is None else as_choice("render_mode", render_mode, allowed)
