"""A batched Gymnasium ``VectorEnv``: ``num_envs`` trials stepped together in numpy, with same-step autoreset."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from ._engine import OUTCOMES, TrialEngine, trial_conditions
from .config import TaskConfig, make_config
from .env import _spaces, check_render_mode
from .info import engine_trial_info, end_info, step_info, with_masks
from .render import EngineRenderer
from .validation import InvalidTypeError, InvalidValueError, ResetNeededError, as_int, describe_value

VECTOR_RENDER_MODES: tuple[str, ...] = ("rgb_array", "human")
"""Render modes of the vector front ends."""


def seeds_for(seed: int | Sequence[int | None] | None, num_envs: int) -> list[int | None]:
    """Per-env seeds: an int ``s`` gives ``s, s+1, ...`` (Gymnasium's ``SyncVectorEnv`` convention); a sequence
    gives one seed (an int or ``None``) per env."""
    if seed is None:
        return [None] * num_envs
    if isinstance(seed, (list, tuple, np.ndarray)):
        seeds = list(seed)
        if len(seeds) != num_envs:
            raise InvalidValueError(f"seed must be an integer or {num_envs} seeds (one per env), got {describe_value(seed)}")
        return [None if s is None else as_int("seed", s, low=0) for s in seeds]
    return [as_int("seed", seed, low=0) + i for i in range(num_envs)]


def check_actions(actions: Any, num_envs: int, n_actions: int) -> np.ndarray:
    """Return ``actions`` as an int64 array of shape ``(num_envs,)`` or raise ``ValueError``/``TypeError`` naming
    the allowed range. Integer arrays (or lists of ints) only: floats, booleans and strings are rejected."""
    a = actions
    allowed = f"integers in [0, {n_actions - 1}] (0 = fixate)"
    if not (isinstance(a, np.ndarray) and a.dtype == np.int64 and a.shape == (num_envs,)):
        a = np.asarray(actions)
        if a.size != num_envs:
            raise InvalidValueError(f"expected {num_envs} actions, got shape {np.shape(actions)}")
        if a.dtype.kind not in "iu":
            raise InvalidTypeError(f"actions must be {allowed}, got {describe_value(actions)}")
        a = a.reshape(num_envs).astype(np.int64)
    # One reduction checks both bounds: negative actions become huge as unsigned integers.
    if a.view(np.uint64).max() >= n_actions:
        raise InvalidValueError(f"actions must be {allowed}, got {describe_value(actions)}")
    return a


class DecisionMakingVectorEnv(VectorEnv):
    """``num_envs`` independent :class:`~dm_envs.DecisionMakingEnv` trials, stepped together in numpy.

    Same spaces, rules and rewards as the single env (one trial per episode). Autoreset is **same-step**
    (``metadata["autoreset_mode"] = AutoresetMode.SAME_STEP``): when a trial ends, the returned observation is already
    the first one of the env's next trial, and the last observation of the finished trial is in
    ``info["final_obs"]`` (an ``(num_envs, obs_dim)`` array, masked by ``info["_final_obs"]``).

    **Seeding**: ``reset(seed=s)`` seeds env ``i`` with ``s + i`` (or pass one seed per env); env ``i`` then runs
    exactly the trials a single ``DecisionMakingEnv`` reset with that seed runs.

    **Info**: the single env's keys (:data:`dm_envs.info.INFO_SCHEMA`) as arrays over envs, each key ``k`` with a
    boolean mask ``_k`` (entries where the mask is False are meaningless), placed as Gymnasium's ``SyncVectorEnv``
    places the infos of single envs under same-step autoreset, so the two give the same infos:

    * ``reset()`` info and, on every step, the top level - the trial keys (``coherence``, ``direction``,
      ``signed_coherence``, ``context``, ``correct_choice``) of each env's *current* trial (for an env whose trial
      just ended: its next trial, i.e. the single env's ``reset()`` info), and the step keys (``gt``, ``stage``,
      ``new_trial``) of the step just taken, masked to the envs whose trial goes on;
    * ``info["final_info"]`` (present when some trial ended; masked by ``info["_final_info"]``) - the complete
      step info of the finished trials: trial, step and end keys (``outcome``, ``correct``, ``is_success``,
      ``choice``, ``performance``), as the single env returns on its last step.

    **Reset options**: those of the single env (conditions of the next trial), applied to every env.

    **Rendering** (``render_mode``): ``"rgb_array"`` - ``render()`` returns a tuple of one frame per env (the
    single env's picture of the running trial); ``"human"`` - a matplotlib window shows the first 16 envs' frames
    tiled, on every step.

    Args:
        num_envs: Number of parallel trials.
        level, preset, config, **overrides: as for :class:`~dm_envs.DecisionMakingEnv`.
        render_mode: ``None``, ``"rgb_array"`` or ``"human"``.

    Example:
        >>> import gymnasium as gym, dm_envs
        >>> envs = gym.make_vec("DecisionMaking-v0", num_envs=64, vectorization_mode="vector_entry_point")
        >>> obs, info = envs.reset(seed=0)
        >>> obs.shape, info["correct_choice"].shape
        ((64, 7), (64,))
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": list(VECTOR_RENDER_MODES), "render_fps": 10}

    def __init__(
        self,
        num_envs: int = 1,
        level: Optional[int] = None,
        *,
        preset: Optional[str] = None,
        config: TaskConfig | dict | None = None,
        render_mode: Optional[str] = None,
        **overrides: Any,
    ) -> None:
        self.config = make_config(level, preset=preset, config=config, **overrides)
        self.num_envs = as_int("num_envs", num_envs, low=1)
        self.render_mode = check_render_mode(render_mode, VECTOR_RENDER_MODES)
        self.metadata = {**type(self).metadata, "render_fps": 1000.0 / self.config.dt}
        self._engine = TrialEngine(self.config, self.num_envs)
        self.single_observation_space, self.single_action_space = _spaces(self.config)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._started = False
        self._everyone = np.ones(self.num_envs, dtype=bool)
        self._everyone.flags.writeable = False
        self._frames = EngineRenderer(self._engine, self.render_mode, "DecisionMakingVectorEnv") if self.render_mode else None

    @property
    def engine(self) -> TrialEngine:
        """The underlying trial engine (current ground truth, stages and trial metadata of every env)."""
        return self._engine

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: Optional[dict] = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a fresh trial sequence on every env (seeded ``seed + i``, or from entropy); ``options`` set the
        conditions of every env's first trial."""
        seeds = seeds_for(seed, self.num_envs)
        conditions = trial_conditions(self.config, options)
        super().reset(seed=seed if isinstance(seed, (int, np.integer)) or seed is None else None)
        e = self._engine
        e.seed(seeds)
        e.reset()
        if conditions:
            for i in range(self.num_envs):
                e.force_trial(i, conditions)
        self._started = True
        if self._frames is not None:
            self._frames.show()
        return e.current_obs(), with_masks(engine_trial_info(e, e.current_rows()), self._everyone)

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every env; finished trials are replaced by the env's next trial in the same call."""
        if not self._started:
            raise ResetNeededError("step() called before the first reset(); call reset() to start the trials")
        e = self._engine
        a = check_actions(actions, self.num_envs, self.config.n_actions)
        pos = e.pos
        gt, stage = e.gt[pos], e.stage[pos]
        if self._frames is not None:
            self._frames.record(a)
        r = e.step(a)
        info = with_masks(engine_trial_info(e, e.current_rows()), self._everyone)
        steps = step_info(gt, stage, r.done)
        if not r.any_done:
            info.update(with_masks(steps, self._everyone))
        else:
            done = r.done.copy()
            info.update(with_masks(steps, ~done))
            final = engine_trial_info(e, None, r)
            final.update(steps)
            final.update(end_info(r.outcome, r.choice))
            info.update(final_obs=r.final_obs, _final_obs=done, final_info=with_masks(final, done), _final_info=done)
        if self._frames is not None:
            self._frames.show()
        return e.current_obs(), r.reward, r.done, np.zeros(self.num_envs, dtype=bool), info

    def render(self) -> Optional[tuple[np.ndarray, ...]]:
        """``"rgb_array"``: one ``(H, W, 3)`` uint8 frame per env; ``"human"``: show them (returns ``None``)."""
        if self._frames is None:
            return None
        if self.render_mode == "rgb_array":
            return tuple(self._frames.frames())
        self._frames.show()
        return None

    def close_extras(self, **kwargs: Any) -> None:
        """Close the ``"human"`` window, if any."""
        if self._frames is not None:
            self._frames.close()


__all__ = ["DecisionMakingVectorEnv", "OUTCOMES", "VECTOR_RENDER_MODES", "check_actions", "seeds_for"]
