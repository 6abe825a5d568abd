"""Supervised-learning batches of whole trials, from the same generator that feeds the environments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Optional

import numpy as np

from .config import DECISION, TaskConfig, make_config
from .trials import TrialBatch, sample_trials
from .validation import as_bool, as_int


@dataclass
class SupervisedBatch:
    """One batch of whole trials, time-major (the layout ``torch.nn.RNN`` consumes).

    Attributes:
        obs: Inputs ``(T, B, obs_dim)`` float32.
        target: Ground-truth action per step ``(T, B)`` int64 (0 = fixate; ``choice + 1`` in the decision stage).
        mask: ``(T, B)`` bool, True on real steps, False on the padding after a trial's end.
        stage: ``(T, B)`` int8 stage ids (-1 in the padding).
        trials: The :class:`~dm_envs.TrialBatch` the batch was built from (metadata, batch-major arrays).
    """

    obs: np.ndarray
    target: np.ndarray
    mask: np.ndarray
    stage: np.ndarray
    trials: TrialBatch

    def loss_weights(self, fixate_weight: float = 1.0, decision_weight: float = 1.0) -> np.ndarray:
        """Per-step loss weights ``(T, B)`` float32: ``decision_weight`` on decision steps, ``fixate_weight`` on the
        steps before, 0 on the padding."""
        w = np.where(self.stage == DECISION, decision_weight, fixate_weight).astype(np.float32)
        return w * self.mask


class TrialDataset:
    """An endless, seeded stream of :class:`SupervisedBatch` es of whole trials (no trial is cut at a window edge).

    Args:
        level, preset, config, **overrides: The task, as for :class:`~dm_envs.DecisionMakingEnv`.
        batch_size: Trials per batch.
        seed: Seed of the stream: the same seed gives the same batches.
        noise: If False, inputs are noise-free.

    Example:
        >>> from dm_envs import TrialDataset
        >>> data = TrialDataset(level=3, batch_size=32, seed=0)
        >>> batch = data.sample()
        >>> batch.obs.shape[1:], batch.target.shape[1]
        ((32, 7), 32)
    """

    def __init__(
        self,
        level: Optional[int] = None,
        *,
        preset: Optional[str] = None,
        config: TaskConfig | dict | None = None,
        batch_size: int = 64,
        seed: Optional[int] = None,
        noise: bool = True,
        **overrides: Any,
    ) -> None:
        self.config = make_config(level, preset=preset, config=config, **overrides)
        self.batch_size = as_int("batch_size", batch_size, low=1)
        self.noise = as_bool("noise", noise)
        self.rng = np.random.default_rng(seed)

    def sample(self, batch_size: Optional[int] = None) -> SupervisedBatch:
        """Draw the next batch (``batch_size`` trials; default the dataset's)."""
        n = self.batch_size if batch_size is None else as_int("batch_size", batch_size, low=1)
        trials = sample_trials(self.config, n, self.rng, noise=self.noise)
        obs, target, stage = trials.time_major()
        return SupervisedBatch(obs=obs, target=target, mask=stage >= 0, stage=stage, trials=trials)

    def __iter__(self) -> Iterator[SupervisedBatch]:
        while True:
            yield self.sample()

    def __call__(self) -> tuple[np.ndarray, np.ndarray]:
        """NeuroGym's ``Dataset`` call convention: ``(inputs (T, B, D), target (T, B))``."""
        b = self.sample()
        return b.obs, b.target
