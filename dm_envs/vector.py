"""A batched Gymnasium ``VectorEnv``: ``num_envs`` trials stepped together in numpy, with same-step autoreset."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from ._engine import CORRECT, OUTCOMES, TrialEngine
from .config import TaskConfig, make_config
from .env import _spaces


def seeds_for(seed: int | Sequence[int | None] | None, num_envs: int) -> list[int | None]:
    """Per-env seeds: an int ``s`` gives ``s, s+1, ...`` (Gymnasium's ``SyncVectorEnv`` convention)."""
    if seed is None:
        return [None] * num_envs
    if isinstance(seed, (int, np.integer)):
        return [int(seed) + i for i in range(num_envs)]
    seeds = list(seed)
    if len(seeds) != num_envs:
        raise ValueError(f"expected {num_envs} seeds, got {len(seeds)}")
    return seeds


def check_actions(actions: Any, num_envs: int, n_actions: int) -> np.ndarray:
    """Return ``actions`` as an int64 array of shape ``(num_envs,)`` or raise ``ValueError`` naming the range."""
    a = actions
    if not (isinstance(a, np.ndarray) and a.dtype == np.int64 and a.shape == (num_envs,)):
        a = np.asarray(actions)
        if a.size != num_envs:
            raise ValueError(f"expected {num_envs} actions, got shape {np.shape(actions)}")
        a = a.reshape(num_envs)
        if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
            a = a.astype(np.int64)
        if a.dtype.kind not in "iu":
            raise ValueError(f"actions must be integers in [0, {n_actions - 1}] (0 = fixate), got {actions!r}")
        a = a.astype(np.int64)
    # One reduction checks both bounds: negative actions become huge as unsigned integers.
    if a.view(np.uint64).max() >= n_actions:
        raise ValueError(f"actions must be integers in [0, {n_actions - 1}] (0 = fixate), got {actions!r}")
    return a


class DecisionMakingVectorEnv(VectorEnv):
    """``num_envs`` independent :class:`~dm_envs.DecisionMakingEnv` trials, stepped together in numpy.

    Same spaces, rules and rewards as the single env (one trial per episode). Autoreset is **same-step**
    (``metadata["autoreset_mode"] = AutoresetMode.SAME_STEP``): when a trial ends, the returned observation is already
    the first one of the env's next trial, and the last observation of the finished trial is in
    ``info["final_obs"]`` (masked by ``info["_final_obs"]``).

    **Seeding**: ``reset(seed=s)`` seeds env ``i`` with ``s + i`` (or pass one seed per env); env ``i`` then runs
    exactly the trials a single ``DecisionMakingEnv`` reset with that seed runs.

    **Info** (dict of arrays, Gymnasium's vector convention; empty on steps where no trial ends): ``final_obs``,
    ``outcome`` (index into ``dm_envs.OUTCOMES``), ``correct``, ``choice`` (0-based, -1 for none),
    ``correct_choice``, ``context``, ``coherence`` and ``direction`` of the finished trials, each with a ``_key``
    mask marking the envs whose trial ended (entries of other envs are meaningless). The running trials' ground truth and stage are
    ``envs.engine.current_gt()`` and ``envs.engine.current_stage()``.

    Args:
        num_envs: Number of parallel trials.
        complexity, preset, config, **overrides: as for :class:`~dm_envs.DecisionMakingEnv`.

    Example:
        >>> import gymnasium as gym, dm_envs
        >>> envs = gym.make_vec("DecisionMaking-v0", num_envs=64, vectorization_mode="vector_entry_point")
        >>> obs, info = envs.reset(seed=0)
        >>> obs.shape
        (64, 7)
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int = 1,
        complexity: Optional[int] = None,
        *,
        preset: Optional[str] = None,
        config: TaskConfig | dict | None = None,
        **overrides: Any,
    ) -> None:
        self.config = make_config(complexity, preset=preset, config=config, **overrides)
        self.num_envs = int(num_envs)
        self._engine = TrialEngine(self.config, self.num_envs)
        self.single_observation_space, self.single_action_space = _spaces(self.config)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._started = False

    @property
    def engine(self) -> TrialEngine:
        """The underlying trial engine (current ground truth, stages and trial metadata of every env)."""
        return self._engine

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: Optional[dict] = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a fresh trial sequence on every env (seeded ``seed + i``, or from entropy)."""
        super().reset(seed=seed if isinstance(seed, (int, np.integer)) or seed is None else None)
        e = self._engine
        e.seed(seeds_for(seed, self.num_envs))
        e.reset()
        self._started = True
        return e.current_obs(), {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every env; finished trials are replaced by the env's next trial in the same call."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        e = self._engine
        a = check_actions(actions, self.num_envs, self.config.n_actions)
        r = e.step(a)
        info = self._trial_end_info(r, a) if r.any_done else {}
        return e.current_obs(), r.reward, r.done, np.zeros(self.num_envs, dtype=bool), info

    @staticmethod
    def _trial_end_info(r: Any, a: np.ndarray) -> dict[str, Any]:
        """Info arrays describing the trials that just ended (Gymnasium's masked-dict convention)."""
        values = {
            "final_obs": r.final_obs,
            "outcome": r.outcome,
            "correct": r.outcome == CORRECT,
            "choice": r.choice,
            "correct_choice": r.correct_choice,
            "context": r.context,
            "coherence": r.coherence,
            "direction": r.direction,
        }
        info = dict(values)
        info.update({"_" + key: r.done for key in values})
        return info

    def close_extras(self, **kwargs: Any) -> None:  # nothing to release
        pass


__all__ = ["DecisionMakingVectorEnv", "OUTCOMES", "seeds_for", "check_actions"]
