"""Stable-Baselines3 adapter: the batched trial engine as an SB3 ``VecEnv``.

SB3 cannot consume Gymnasium vector envs, so this module subclasses SB3's own ``VecEnv``. It imports
stable-baselines3, which is why ``dm_envs`` itself never imports it: only ``import dm_envs.sb3`` does.

Example:
    >>> from dm_envs.sb3 import make_sb3_vec_env
    >>> venv = make_sb3_vec_env(num_envs=16, complexity=3, seed=0)
    >>> venv.reset().shape
    (16, 7)
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Optional, Sequence

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from ._engine import CORRECT, OUTCOMES, TrialEngine
from .config import TaskConfig, make_config
from .env import _spaces
from .vector import check_actions, seeds_for


class TrialVecEnv(VecEnv):
    """``num_envs`` decision-making trials stepped together, with SB3's ``VecEnv`` semantics.

    Same trials, rules and rewards as :class:`~dm_envs.DecisionMakingEnv` (env ``i`` seeded ``s + i`` runs exactly
    the trials of a single env reset with that seed). Auto-reset follows SB3: a finished trial's last observation is
    ``infos[i]["terminal_observation"]`` and the returned observation starts the next trial. Finished trials also
    report ``episode`` (``r``, ``l``, ``t``: what SB3's ``Monitor`` would write, so ``rollout/ep_rew_mean`` is
    logged), ``is_success`` (SB3's success-rate key: the choice was correct), ``outcome``, ``correct``, ``choice``,
    ``coherence``, ``direction``, ``context`` and ``correct_choice``.

    Args:
        num_envs: Number of parallel trials.
        complexity, preset, config, **overrides: as for :class:`~dm_envs.DecisionMakingEnv`.
    """

    def __init__(
        self,
        num_envs: int = 16,
        complexity: Optional[int] = None,
        *,
        preset: Optional[str] = None,
        config: TaskConfig | dict | None = None,
        **overrides: Any,
    ) -> None:
        self.config = make_config(complexity, preset=preset, config=config, **overrides)
        self.render_mode = None
        self._engine = TrialEngine(self.config, num_envs)
        obs_space, act_space = _spaces(self.config)
        super().__init__(num_envs, obs_space, act_space)
        self._actions: Optional[np.ndarray] = None
        self._ep_return = np.zeros(num_envs, dtype=np.float64)
        self._ep_length = np.zeros(num_envs, dtype=np.int64)
        self._t0 = time.time()

    @property
    def engine(self) -> TrialEngine:
        """The underlying trial engine (current ground truth and trial metadata of every env)."""
        return self._engine

    def reset(self) -> np.ndarray:
        """Start fresh trial sequences (seeded by the last ``seed()`` call, else from entropy)."""
        e = self._engine
        e.seed(seeds_for(list(self._seeds), self.num_envs))
        e.reset()
        self._reset_seeds()
        self._reset_options()
        self._ep_return[:] = 0.0
        self._ep_length[:] = 0
        return e.current_obs()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = check_actions(actions, self.num_envs, self.config.n_actions)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("call step_async() before step_wait()")
        e = self._engine
        a, self._actions = self._actions, None
        r = e.step(a)
        self._ep_return += r.reward
        self._ep_length += 1
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if r.any_done:
            elapsed = round(time.time() - self._t0, 6)
            for i in np.flatnonzero(r.done):
                o = int(r.outcome[i])
                correct = o == CORRECT
                infos[i] = {
                    "terminal_observation": r.final_obs[i],
                    "TimeLimit.truncated": False,
                    "episode": {"r": float(self._ep_return[i]), "l": int(self._ep_length[i]), "t": elapsed},
                    "is_success": correct,
                    "outcome": OUTCOMES[o],
                    "correct": correct,
                    "choice": int(r.choice[i]),
                    "coherence": r.coherence[i],
                    "direction": r.direction[i],
                    "context": int(r.context[i]),
                    "correct_choice": int(r.correct_choice[i]),
                }
            self._ep_return[r.done] = 0.0
            self._ep_length[r.done] = 0
        return e.current_obs(), r.reward.astype(np.float32), r.done.copy(), infos

    def close(self) -> None:
        pass

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
    complexity: Optional[int] = None,
    *,
    seed: Optional[int] = None,
    preset: Optional[str] = None,
    config: TaskConfig | dict | None = None,
    **overrides: Any,
) -> TrialVecEnv:
    """Build a :class:`TrialVecEnv` and seed it (env ``i`` gets ``seed + i``)."""
    venv = TrialVecEnv(num_envs, complexity, preset=preset, config=config, **overrides)
    if seed is not None:
        venv.seed(seed)
    return venv


__all__: Sequence[str] = ["TrialVecEnv", "make_sb3_vec_env"]
