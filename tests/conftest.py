"""Shared test helpers, as pytest fixtures.

Helpers that are plain modules (imported by name, since pytest puts this folder on ``sys.path``):
``training_helpers`` (tiny run settings, interrupting a run), ``fake_cells`` (stand-in experiment cells) and
``recurrent_cores`` (a GRU policy for the generic path).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread() -> None:
    """One torch thread per process, as the package runs (two threads run up to 10x slower on a busy 2-core CPU)."""
    import torch

    torch.set_num_threads(1)


def _ar1(rng: np.random.Generator, n: int, m: int, rho: float) -> np.ndarray:
    """``m`` independent AR(1) series of length ``n`` with unit variance and lag-1 correlation ``rho``."""
    e = rng.standard_normal((n, m))
    x = np.empty_like(e)
    x[0] = e[0]
    for t in range(1, n):
        x[t] = rho * x[t - 1] + np.sqrt(1 - rho**2) * e[t]
    return x


@pytest.fixture
def ar1() -> Callable[[np.random.Generator, int, int, float], np.ndarray]:
    """``ar1(rng, n, m, rho)``: autocorrelated unit activity, the null data of the shift tests."""
    return _ar1


def _video_frames(folder: Path) -> tuple[list[np.ndarray], float]:
    """The frames and frame rate of the one ``.mp4`` video in ``folder``."""
    from moviepy import VideoFileClip

    videos = list(Path(folder).glob("*.mp4"))
    assert len(videos) == 1, f"expected one video in {folder}, found {len(videos)}"
    clip = VideoFileClip(str(videos[0]))
    frames = list(clip.iter_frames())
    fps = clip.fps
    clip.close()
    return frames, fps


@pytest.fixture
def video_frames() -> Callable[[Path], tuple[list[np.ndarray], float]]:
    """``video_frames(folder)``: the frames and fps of the one video a recorder wrote (skips without moviepy)."""
    pytest.importorskip("moviepy")
    return _video_frames
