"""The single-trial Gymnasium environment of the decision-making suite."""

from __future__ import annotations

from typing import Any, Optional

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ._engine import OUTCOMES, TrialEngine
from .config import STAGES, TaskConfig, make_config


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
    """Return ``action`` as an int, or raise ``ValueError`` naming the allowed range."""
    try:
        a = int(np.asarray(action).reshape(()))
        ok = float(np.asarray(action).reshape(())) == a
    except (TypeError, ValueError):
        ok = False
    if not ok or not 0 <= a < n_actions:
        raise ValueError(f"action must be an integer in [0, {n_actions - 1}] (0 = fixate), got {action!r}")
    return a


class DecisionMakingEnv(gym.Env):
    """Perceptual decision making with noisy evidence streams, a context cue and a delay: one trial per episode.

    Each trial runs through four stages: **fixation** (hold fixation), **stimulus** (noisy evidence on every stream),
    **delay** (evidence off; hold the decision in memory) and **decision** (fixation input off: report the choice).
    With several streams a context cue says which stream decides; the others are distractors. Every task of the
    suite is a :class:`~dm_envs.TaskConfig`; the complexity levels are presets of it:

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

    **Action space** ``Discrete(1 + n_choices)``: 0 = fixate, ``k`` = choose alternative ``k``.

    **Rewards** (configurable): ``reward_correct`` (+1) for the correct choice in the decision stage,
    ``reward_fail`` (0) for a wrong one, ``reward_abort`` (-0.1) on every step that breaks fixation before the
    decision stage, ``reward_miss`` (0) if no choice is made.

    **Episode end**: the first choice in the decision stage (``terminated``), the end of the decision stage without a
    choice (``terminated``, a miss), or a fixation break when ``abort_ends_trial``. Episodes are never truncated.

    **Info** (every step): ``gt`` (ground-truth action of the step taken), ``stage`` (its stage id; names in
    ``dm_envs.STAGES``), ``coherence``, ``direction`` and ``signed_coherence`` (two choices) of each stream,
    ``context``, ``correct_choice`` (0-based), ``new_trial`` (the trial ended); on the last step also ``outcome``
    (``"correct"``, ``"wrong"``, ``"miss"`` or ``"abort"``), ``correct`` (bool), ``choice`` (0-based, -1 for none)
    and ``performance`` (1.0 if correct, NeuroGym's key).

    **Randomness**: everything comes from ``self.np_random``; ``reset(seed=s)`` reproduces the trial sequence
    exactly, and it is the same sequence env ``i`` of :class:`~dm_envs.DecisionMakingVectorEnv` runs when seeded
    ``s``.

    Args:
        complexity: Complexity level ``1..4`` (default 3).
        preset: A named preset instead (``"neurogym"``).
        config: A full :class:`~dm_envs.TaskConfig` (or its dict) instead.
        render_mode: ``None`` or ``"ansi"`` (a one-line text summary of the current step).
        **overrides: Any ``TaskConfig`` field, e.g. ``coherences=[0.05, 0.5]``, ``noise="gaussian"``, ``dt=20``.

    Example:
        >>> import gymnasium as gym, dm_envs
        >>> env = gym.make("DecisionMaking-v0", complexity=1)
        >>> obs, info = env.reset(seed=0)
        >>> obs.shape, env.action_space
        ((3,), Discrete(3))
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 10}

    def __init__(
        self,
        complexity: Optional[int] = None,
        *,
        preset: Optional[str] = None,
        config: TaskConfig | dict | None = None,
        render_mode: Optional[str] = None,
        **overrides: Any,
    ) -> None:
        self.config = make_config(complexity, preset=preset, config=config, **overrides)
        self.observation_space, self.action_space = _spaces(self.config)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.render_mode = render_mode
        self._engine = TrialEngine(self.config, 1)
        self._started = False
        self._last: dict[str, Any] = {}
        self._info_key: tuple[int, int] = (-1, -1)
        self._info: dict[str, Any] = {}

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None) -> tuple[np.ndarray, dict]:
        """Start the next trial (with ``seed``: a fresh trial sequence from that seed)."""
        super().reset(seed=seed)
        e = self._engine
        if seed is not None or not self._started or e.rngs[0] is not self.np_random:
            e.rngs[0] = self.np_random
            e.reset()
            self._started = True
        elif e.step_in_trial()[0] != 0:  # reset mid-trial: abandon it and move on
            e.end_trial(0)
        self._last = {}
        return e.obs[int(e.pos[0])].copy(), self._trial_info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Take one step of the running trial; see the class docstring for rewards and episode end."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        a = check_action(action, self.config.n_actions)
        e = self._engine
        pos = int(e.pos[0])
        idx = int(e.key[pos]) + a
        reward = float(e.reward_table[idx])
        done = bool(e.done_table[idx])
        info = {**self._trial_info(), "gt": int(e.gt[pos]), "stage": int(e.stage[pos]), "new_trial": done}
        if done:
            outcome = OUTCOMES[int(e.outcome_table[idx])]
            obs = e.obs[int(e.final_pos[pos])].copy()
            info.update(
                outcome=outcome,
                correct=outcome == "correct",
                choice=a - 1 if outcome in ("correct", "wrong") else -1,
                performance=float(outcome == "correct"),
            )
            e.end_trial(0)
        else:
            e.pos[0] = pos + 1
            obs = e.obs[pos + 1].copy()
        self._last = {"action": a, "reward": reward, **info}
        return obs, reward, done, False, info

    def render(self) -> Optional[str]:
        """``"ansi"``: a one-line summary of the trial and the last step."""
        if self.render_mode != "ansi":
            return None
        e, i = self._engine, self._trial_info()
        stage = STAGES[int(e.stage[int(e.pos[0])])] if not self._last.get("new_trial") else "end"
        coh = ", ".join(f"{c:+.2f}" for c in i.get("signed_coherence", i["coherence"]))
        last = f" last action={self._last['action']} reward={self._last['reward']:+.2f}" if self._last else ""
        return f"t={int(e.step_in_trial()[0])} stage={stage} coherence=[{coh}] context={i['context']} gt={i['correct_choice'] + 1}{last}"

    # ------------------------------------------------------------------ helpers
    def _trial_info(self) -> dict[str, Any]:
        """A fresh copy of the running trial's metadata (built once per trial, copied on every call because users
        keep the infos they are given)."""
        e = self._engine
        key = (int(e.pos[0]) // e.t_max, int(e.blocks_drawn[0]))
        if self._info_key != key:
            row = key[0]
            info: dict[str, Any] = {
                "coherence": e.coherence[row].copy(),
                "direction": e.direction[row].copy(),
                "context": int(e.context[row]),
                "correct_choice": int(e.correct_choice[row]),
            }
            if self.config.n_choices == 2:
                info["signed_coherence"] = np.where(e.direction[row] == 0, e.coherence[row], -e.coherence[row])
            self._info_key, self._info = key, info
        return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in self._info.items()}
