"""The stimulus space of a task: the grid of constant stimulus-stage inputs an attractor map covers.

Within the stimulus stage the input is constant up to noise, so each grid point ``(context, c_1, ..., c_S)`` (one
coherence per evidence stream) is one autonomous map of the network (paper.md section 5.1).

Example:
    >>> from dm_envs import make_config
    >>> stimulus_grid(make_config(3), 5).shape
    (2, 5, 5)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence, Union

import numpy as np

if TYPE_CHECKING:
    from dm_envs import TaskConfig

__all__ = ["StimulusGrid", "coherence_key", "contexts_of", "stimulus_grid"]

ROUND = 9
"""Coherences are grouped after rounding to this many decimals (linspace leaves 1e-17 residues)."""


def coherence_key(c: float) -> str:
    """The JSON key of a coherence value (``0.1`` -> ``"0.1"``)."""
    return f"{round(float(c), ROUND):g}"


@dataclass(frozen=True, eq=False)
class StimulusGrid:
    """The stimulus conditions of a map: every context times a product of per-stream coherence axes.

    Each stream's axis is a sequence of (unsigned coherence, direction) pairs; a grid point is one pair per stream
    plus a context, and its input is ``dm_envs.stage_input(config, "stimulus", coherence=..., direction=...,
    context=...)``. Grid arrays have :attr:`shape` ``(n_contexts, n_axis, ..., n_axis)`` (one axis per stream) and
    are flattened in C order (context slowest).

    * Two-choice tasks: the axis is a list of *signed* coherences (:attr:`axis`; positive favours choice 1, the
      direction-0 choice).
    * Tasks with ``K > 2`` choices: a signed coherence does not exist, so the axis lists coherence 0 once and then,
      for each direction ``d = 0 .. K-1``, the positive coherence levels: ``(0, -), (c_1, 0), ..., (c_m, 0),
      (c_1, 1), ...``. :attr:`axis` is then the unsigned coherence and :attr:`direction` the direction.

    The *relevant* stream of context ``k`` is stream ``k`` (stream 0 for one-stream tasks).

    Attributes:
        n_streams: Number of evidence streams ``S``.
        n_choices: Number of choices ``K``.
        contexts: Context indices, ``(n_contexts,)``.
        coherence: Unsigned coherence along a stream's axis, ``(n_axis,)``.
        direction: Direction (favoured choice, 0-based) along a stream's axis, ``(n_axis,)``.

    Example:
        >>> from dm_envs import make_config
        >>> g = stimulus_grid(make_config(3), 5)
        >>> g.axis.tolist(), g.shape
        ([-0.4, -0.2, 0.0, 0.2, 0.4], (2, 5, 5))
        >>> pts = g.points()
        >>> pts["signed"][7].tolist(), int(pts["context"][7]), float(pts["relevant"][7])
        ([-0.2, 0.0], 0, 0.2)
    """

    n_streams: int
    n_choices: int
    contexts: np.ndarray
    coherence: np.ndarray
    direction: np.ndarray

    @property
    def n_axis(self) -> int:
        """Number of values along each stream's axis."""
        return int(len(self.coherence))

    @property
    def axis(self) -> np.ndarray:
        """The axis values: signed coherences (two choices) or unsigned coherences (more choices)."""
        if self.n_choices == 2:
            return np.where(self.direction == 0, self.coherence, -self.coherence)
        return self.coherence.copy()

    @property
    def shape(self) -> tuple[int, ...]:
        """``(n_contexts,) + (n_axis,) * n_streams``."""
        return (len(self.contexts),) + (self.n_axis,) * self.n_streams

    @property
    def size(self) -> int:
        """Number of grid points."""
        return int(np.prod(self.shape))

    def points(self) -> dict[str, np.ndarray]:
        """Per grid point (flat, C order): ``context (N,)``, ``coherence (N, S)``, ``direction (N, S)``,
        ``signed (N, S)`` (two-choice tasks; NaN otherwise), ``relevant (N,)`` (unsigned coherence of the relevant
        stream) and ``index (N, 1 + S)`` (the grid index of each point)."""
        index = np.stack(np.unravel_index(np.arange(self.size), self.shape), axis=1)
        ax = index[:, 1:]
        coh, dirs = self.coherence[ax], self.direction[ax]
        ctx = self.contexts[index[:, 0]]
        rel_stream = ctx if self.n_streams > 1 else np.zeros_like(ctx)
        signed = np.where(dirs == 0, coh, -coh) if self.n_choices == 2 else np.full(coh.shape, np.nan)
        return dict(context=ctx, coherence=coh, direction=dirs, signed=signed,
                    relevant=coh[np.arange(len(ctx)), rel_stream], index=index)

    def inputs(self, config: "TaskConfig") -> np.ndarray:
        """The stimulus-stage inputs of every grid point, ``(N, D)``."""
        from dm_envs import stage_input

        p = self.points()
        return stage_input(config, "stimulus", coherence=p["coherence"], direction=p["direction"],
                           context=p["context"])

    def labels(self) -> list[str]:
        """Tick labels of a stream's axis (``"-0.2"``, or ``"0.2@1"`` = coherence 0.2 towards choice 2)."""
        if self.n_choices == 2:
            return [coherence_key(v) for v in self.axis]
        return [coherence_key(c) if c == 0 else f"{coherence_key(c)}@{d + 1}" for c, d in zip(self.coherence, self.direction)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (:meth:`from_dict` inverts it)."""
        return dict(n_streams=self.n_streams, n_choices=self.n_choices, contexts=self.contexts.tolist(),
                    coherence=self.coherence.tolist(), direction=self.direction.tolist(), axis=self.axis.tolist())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "StimulusGrid":
        """Rebuild a grid from :meth:`to_dict`."""
        return cls(int(d["n_streams"]), int(d["n_choices"]), np.asarray(d["contexts"], dtype=np.int64),
                   np.asarray(d["coherence"], dtype=np.float64), np.asarray(d["direction"], dtype=np.int64))


def contexts_of(config: "TaskConfig") -> np.ndarray:
    return np.arange(config.n_streams) if config.has_context else np.zeros(1, dtype=np.int64)


def stimulus_grid(config: "TaskConfig", grid: Union[int, Sequence[float], np.ndarray] = 21) -> StimulusGrid:
    """The stimulus grid of a task (see :class:`StimulusGrid`).

    Args:
        config: The task.
        grid: Two-choice tasks: the number of signed coherences per stream, evenly spaced in
            ``[-c_max, c_max]`` (``c_max`` the task's largest coherence; use an odd number to include 0), or the
            signed values themselves. ``K > 2`` choices: the number ``G`` of a two-choice grid it stands in for
            (coherence levels ``linspace(0, c_max, (G + 1) // 2)``, each positive level in every direction), or
            the unsigned levels themselves.

    Returns:
        The :class:`StimulusGrid` (every context of the task).

    Raises:
        ValueError: an empty grid or coherences outside ``[-1, 1]``.

    Example:
        >>> from dm_envs import make_config
        >>> stimulus_grid(make_config(1), 3).shape
        (1, 3)
        >>> g = stimulus_grid(make_config(4), 5)         # 3 choices: 0 once, then 2 levels x 3 directions
        >>> g.labels()
        ['0', '0.16@1', '0.32@1', '0.16@2', '0.32@2', '0.16@3', '0.32@3']
    """
    c_max = float(max(config.coherences))
    explicit = not isinstance(grid, (int, np.integer))
    if not explicit and int(grid) < 1:
        raise ValueError(f"grid must be >= 1 or a list of coherences, got {grid}")
    if config.n_choices == 2:
        vals = np.asarray(grid, dtype=np.float64).ravel() if explicit else np.linspace(-c_max, c_max, int(grid))
        vals = np.round(np.sort(vals), 12) + 0.0  # + 0.0 turns -0.0 into 0.0
        coherence, direction = np.abs(vals), np.where(vals >= 0, 0, 1)
    else:
        levels = (np.unique(np.abs(np.asarray(grid, dtype=np.float64).ravel())) if explicit
                  else np.linspace(0.0, c_max, (int(grid) + 1) // 2))
        levels = np.round(levels, 12)
        pos = levels[levels > 0]
        zero = [0.0] if (levels == 0).any() else []
        coherence = np.array(zero + [c for _ in range(config.n_choices) for c in pos])
        direction = np.array([0] * len(zero) + [d for d in range(config.n_choices) for _ in pos], dtype=np.int64)
    if not len(coherence):
        raise ValueError("the grid is empty")
    if (coherence > 1).any():
        raise ValueError(f"coherences must lie in [-1, 1], got {coherence.max()}")
    return StimulusGrid(int(config.n_streams), int(config.n_choices), contexts_of(config),
                        coherence.astype(np.float64), direction.astype(np.int64))
