"""Stable-Baselines3 adapter: the batched trial engine as an SB3 ``VecEnv``.

SB3 cannot consume Gymnasium vector envs, so this module subclasses SB3's own ``VecEnv``. It imports
stable-baselines3, which is why ``dm_envs`` itself never imports it: only ``import dm_envs.sb3`` does.

Example:
    >>> from dm_envs.sb3 import make_sb3_vec_env
    >>> venv = make_sb3_vec_env(num_envs=16, level=3, seed=0)
    >>> venv.reset().shape
    (16, 7)
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Iterable, Optional, Sequence

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from ._engine import TrialEngine, trial_conditions
from .config import TaskConfig, make_config
from .env import _spaces, check_render_mode
from .info import end_info, engine_trial_info, read_only, split, unbatch
from .render import EngineRenderer, tile_frames
from .validation import ResetNeededError, as_choice, as_int
from .vector import VECTOR_RENDER_MODES, check_actions, seeds_for


class TrialVecEnv(VecEnv):
    """``num_envs`` decision-making trials stepped together, with SB3's ``VecEnv`` semantics.

    Same trials, rules and rewards as :class:`~dm_envs.DecisionMakingEnv` (env ``i`` seeded ``s + i`` runs exactly
    the trials of a single env reset with that seed). Auto-reset follows SB3: a finished trial's last observation is
    ``infos[i]["terminal_observation"]`` and the returned observation starts the next trial.

    **Info**: the single env's keys (:data:`dm_envs.info.INFO_SCHEMA`) where SB3's ``DummyVecEnv`` of
    ``Monitor``-wrapped single envs (``make_vec_env("DecisionMaking-v0")``) puts them, so the two give the same
    infos: ``infos[i]`` is env ``i``'s step info (trial keys, ``gt``, ``stage``, ``new_trial``; on the step that ends
    a trial also ``outcome``, ``correct``, ``is_success``, ``choice``, ``performance``), plus
    ``TimeLimit.truncated`` (always False) and, when a trial ends, ``terminal_observation`` and ``episode``
    (``r`` rounded to 6 decimals, ``l``, ``t``: what ``Monitor`` writes, so ``rollout/ep_rew_mean`` is logged and ``is_success`` feeds
    ``EvalCallback``'s success rate). ``venv.reset_infos[i]`` holds the trial keys of env ``i``'s current trial from
    ``reset()`` and each autoreset on (the single env's ``reset()`` info). The arrays of the trial keys are
    read-only: the steps of a trial share them.

    **Reset options**: ``venv.set_options({...})`` before ``reset()`` (SB3's convention; one dict for all envs or a
    list of one per env): the single env's reset options, the conditions of each env's first trial.

    **Rendering** (``render_mode``): ``"rgb_array"`` - ``get_images()`` returns one frame per env (the single env's
    picture of the running trial) and ``render()`` tiles them into one image; ``"human"`` - ``render()`` (and every
    step) shows the first 16 envs' frames tiled in a matplotlib window.

    Args:
        num_envs: Number of parallel trials.
        level, preset, config, **overrides: as for :class:`~dm_envs.DecisionMakingEnv`.
        render_mode: ``None``, ``"rgb_array"`` or ``"human"``.
    """

    def __init__(
        self,
        num_envs: int = 16,
        level: Optional[int] = None,
        *,
        preset: Optional[str] = None,
        config: TaskConfig | dict | None = None,
        render_mode: Optional[str] = None,
        **overrides: Any,
    ) -> None:
        self.config = make_config(level, preset=preset, config=config, **overrides)
        num_envs = as_int("num_envs", num_envs, low=1)
        self.render_mode = check_render_mode(render_mode, VECTOR_RENDER_MODES)
        self._engine = TrialEngine(self.config, num_envs)
        obs_space, act_space = _spaces(self.config)
        super().__init__(num_envs, obs_space, act_space)
        self._actions: Optional[np.ndarray] = None
        self._ep_return = np.zeros(num_envs, dtype=np.float64)
        self._ep_length = np.zeros(num_envs, dtype=np.int64)
        self._t0 = time.time()
        self._frames = EngineRenderer(self._engine, self.render_mode, "TrialVecEnv") if self.render_mode else None
        self._trials: list[dict[str, Any]] = [{} for _ in range(num_envs)]  # trial keys of each env's trial

    @property
    def engine(self) -> TrialEngine:
        """The underlying trial engine (current ground truth and trial metadata of every env)."""
        return self._engine

    def reset(self) -> np.ndarray:
        """Start fresh trial sequences (seeded by the last ``seed()`` call, else from entropy; the options of the
        last ``set_options()`` call set the first trials' conditions)."""
        e = self._engine
        conditions = [trial_conditions(self.config, o) for o in self._options]
        e.seed(seeds_for(list(self._seeds), self.num_envs))
        e.reset()
        for i, c in enumerate(conditions):
            if c:
                e.force_trial(i, c)
        self._reset_seeds()
        self._reset_options()
        self._ep_return[:] = 0.0
        self._ep_length[:] = 0
        self._trials = split(read_only(engine_trial_info(e, e.current_rows())), self.num_envs)
        self.reset_infos = [dict(t) for t in self._trials]
        self._show()
        return e.current_obs()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = check_actions(actions, self.num_envs, self.config.n_actions)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise ResetNeededError("step_wait() called before step_async(); call step_async(actions) first")
        e = self._engine
        a, self._actions = self._actions, None
        pos = e.pos
        gt, stage = e.gt[pos].tolist(), e.stage[pos].tolist()
        if self._frames is not None:
            self._frames.record(a)
        r = e.step(a)
        self._ep_return += r.reward
        self._ep_length += 1
        # the trial keys of each env's trial (cached per trial: its arrays are read-only and shared by its steps)
        infos = [
            {**trial, "gt": g, "stage": st, "new_trial": d, "TimeLimit.truncated": False}
            for trial, g, st, d in zip(self._trials, gt, stage, r.done.tolist())
        ]
        if r.any_done:
            elapsed = round(time.time() - self._t0, 6)
            ended = np.flatnonzero(r.done)
            end = end_info(r.outcome, r.choice)
            next_trials = split(read_only(engine_trial_info(e, e.current_rows()[ended])), len(ended))
            for i, trial in zip(ended.tolist(), next_trials):
                infos[i].update(unbatch(end, i))
                infos[i]["terminal_observation"] = r.final_obs[i]
                infos[i]["episode"] = {"r": round(float(self._ep_return[i]), 6), "l": int(self._ep_length[i]), "t": elapsed}
                self._trials[i] = trial
                self.reset_infos[i] = dict(trial)
            self._ep_return[r.done] = 0.0
            self._ep_length[r.done] = 0
        self._show()
        return e.current_obs(), r.reward.astype(np.float32), r.done.copy(), infos

    def get_state(self) -> dict[str, Any]:
        """Where every env stands, as plain Python data: the engine's trial streams and positions
        (:meth:`~dm_envs._engine.TrialEngine.get_state`) and the running episodes' returns and lengths.

        A ``TrialVecEnv`` of the same task and size given it by :meth:`set_state` steps exactly as this one does from
        here (observations, rewards, dones, infos; only the wall time in ``info["episode"]["t"]`` differs).
        """
        return {
            "engine": self._engine.get_state(),
            "ep_return": self._ep_return.tolist(),
            "ep_length": self._ep_length.tolist(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`get_state` (instead of :meth:`reset`); pending seeds and options are dropped."""
        e = self._engine
        e.set_state(state["engine"])
        self._ep_return[:] = state["ep_return"]
        self._ep_length[:] = state["ep_length"]
        self._reset_seeds()
        self._reset_options()
        self._trials = split(read_only(engine_trial_info(e, e.current_rows())), self.num_envs)
        self.reset_infos = [dict(t) for t in self._trials]

    def close(self) -> None:
        if self._frames is not None:
            self._frames.close()

    # ------------------------------------------------------------------ rendering
    def get_images(self) -> Sequence[Optional[np.ndarray]]:
        """One ``(H, W, 3)`` uint8 frame per env (``render_mode="rgb_array"``; otherwise ``None`` s and a warning,
        as SB3's ``DummyVecEnv``)."""
        if self.render_mode != "rgb_array" or self._frames is None:
            warnings.warn(f"The render mode is {self.render_mode}, but get_images() needs render_mode='rgb_array'")
            return [None for _ in range(self.num_envs)]
        return self._frames.frames()

    def render(self, mode: Optional[str] = None) -> Optional[np.ndarray]:
        """``"rgb_array"``: every env's frame tiled into one image; ``"human"``: show the first 16 in a window.

        ``mode`` defaults to the ``render_mode`` the env was built with; without one there is nothing to draw (a
        warning, ``None``)."""
        mode = self.render_mode if mode is None else as_choice("mode", mode, VECTOR_RENDER_MODES)
        if self._frames is None or mode is None:
            warnings.warn("render() needs a render_mode ('rgb_array' or 'human') passed to the env constructor")
            return None
        if mode == "human":
            self._frames.show()
            return None
        return tile_frames(self._frames.frames(), max_frames=self.num_envs)

    def _show(self) -> None:
        if self._frames is not None and self.render_mode == "human":
            self._frames.show()

    # ------------------------------------------------------------------ attribute access (one shared config)
    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise AttributeError("TrialVecEnv shares one config across its envs; build a new env to change it")

    def env_method(self, method_name: str, *args: Any, indices: VecEnvIndices = None, **kwargs: Any) -> list[Any]:
        method = getattr(self, method_name)
        return [method(*args, **kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def _get_indices(self, indices: VecEnvIndices) -> Iterable[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return indices


def make_sb3_vec_env(
    num_envs: int = 16,
    level: Optional[int] = None,
    *,
    seed: Optional[int] = None,
    preset: Optional[str] = None,
    config: TaskConfig | dict | None = None,
    render_mode: Optional[str] = None,
    **overrides: Any,
) -> TrialVecEnv:
    """Build a :class:`TrialVecEnv` and seed it (env ``i`` gets ``seed + i``)."""
    venv = TrialVecEnv(num_envs, level, preset=preset, config=config, render_mode=render_mode, **overrides)
    if seed is not None:
        venv.seed(seed)
    return venv


__all__: Sequence[str] = ["TrialVecEnv", "make_sb3_vec_env"]
