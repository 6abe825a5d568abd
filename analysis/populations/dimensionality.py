"""Dimensionality of hidden-state activity: PCA variance spectrum and participation ratio.

Example:
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((2000, 2)) @ np.array([[3.0, 0, 0], [0, 1.0, 0]])   # 2-D data in 3-D
    >>> pca = pca_variance(X)
    >>> pca.explained_variance_ratio.round(2).tolist(), round(participation_ratio(X), 2)
    ([0.9, 0.1, 0.0], 1.22)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from scipy import linalg

__all__ = ["PCA", "condition_average", "participation_ratio", "pca_variance"]


def _samples(x: np.ndarray, mask: Optional[np.ndarray]) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim == 3:
        m = np.ones(a.shape[:2], bool) if mask is None else np.asarray(mask, bool)
        return a[m].astype(np.float64)
    if a.ndim == 2:
        return (a if mask is None else a[np.asarray(mask, bool)]).astype(np.float64)
    raise ValueError(f"expected (n, H) samples or (N, T, H) states, got shape {a.shape}")


@dataclass
class PCA:
    """Principal components of a set of states.

    Attributes:
        mean: ``(H,)`` mean state (zeros if not centred).
        components: ``(k, H)`` principal axes (rows, unit norm), by decreasing variance.
        explained_variance: ``(k,)`` variance along each axis.
        explained_variance_ratio: ``(k,)`` fraction of the total variance.
        n_samples: Samples used.
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray
    n_samples: int

    def transform(self, x: np.ndarray, k: Optional[int] = None) -> np.ndarray:
        """Project states ``(..., H)`` on the first ``k`` axes (default all)."""
        comps = self.components if k is None else self.components[:k]
        return (np.asarray(x, np.float64) - self.mean) @ comps.T

    def n_components(self, fraction: float = 0.9) -> int:
        """Smallest number of axes explaining at least ``fraction`` of the variance."""
        return int(np.searchsorted(np.cumsum(self.explained_variance_ratio), fraction - 1e-12) + 1)

    @property
    def participation_ratio(self) -> float:
        """``(sum lambda)^2 / sum lambda^2`` of the variance spectrum."""
        return participation_ratio(eigenvalues=self.explained_variance)

    def to_dict(self, n: int = 20) -> dict[str, Any]:
        """JSON-serialisable summary (first ``n`` ratios)."""
        return {
            "n_samples": self.n_samples,
            "explained_variance_ratio": self.explained_variance_ratio[:n].tolist(),
            "cumulative": np.cumsum(self.explained_variance_ratio)[:n].tolist(),
            "n_components_90": self.n_components(0.9),
            "n_components_95": self.n_components(0.95),
            "participation_ratio": self.participation_ratio,
        }


def pca_variance(
    x: np.ndarray,
    mask: Optional[np.ndarray] = None,
    *,
    n_components: Optional[int] = None,
    center: bool = True,
) -> PCA:
    """PCA of states by SVD (numpy/scipy), with the variance explained by each component.

    Args:
        x: ``(n, H)`` samples or ``(N, T, H)`` states (the ``mask``-ed steps of all trials are pooled).
        mask: ``(N, T)`` (or ``(n,)``) bool, the samples to use.
        n_components: Keep only this many axes (the ratios stay relative to the total variance).
        center: Subtract the mean first.

    Returns:
        The :class:`PCA`.

    Example:
        >>> pca_variance(np.array([[0.0, 0.0], [2.0, 0.0], [4.0, 0.0]])).explained_variance.round(6).tolist()
        [4.0, 0.0]
    """
    X = _samples(x, mask)
    n = X.shape[0]
    mean = X.mean(axis=0) if center else np.zeros(X.shape[1])
    Xc = X - mean
    if n > 4 * X.shape[1]:
        # many samples: eigen-decompose the (H, H) covariance instead of an SVD of (n, H)
        cov = Xc.T @ Xc / max(n - 1, 1)
        w, v = linalg.eigh(cov)
        order = np.argsort(w)[::-1]
        var, comps = np.maximum(w[order], 0.0), v[:, order].T
    else:
        _, s, vt = linalg.svd(Xc, full_matrices=False)
        var, comps = s**2 / max(n - 1, 1), vt
    # sign convention: the largest loading of each axis is positive (deterministic output)
    flip = np.sign(comps[np.arange(len(comps)), np.argmax(np.abs(comps), axis=1)])
    comps = comps * np.where(flip == 0, 1.0, flip)[:, None]
    total = var.sum()
    ratio = var / total if total > 0 else np.zeros_like(var)
    k = len(var) if n_components is None else int(n_components)
    return PCA(mean, comps[:k], var[:k], ratio[:k], n)


def participation_ratio(
    x: Optional[np.ndarray] = None,
    mask: Optional[np.ndarray] = None,
    *,
    eigenvalues: Optional[np.ndarray] = None,
) -> float:
    """Participation ratio ``PR = (sum lambda)^2 / sum lambda^2`` of the covariance spectrum (1 to ``H``).

    Args:
        x: ``(n, H)`` samples or ``(N, T, H)`` states (with ``mask``).
        mask: Valid samples.
        eigenvalues: The covariance eigenvalues directly, instead of ``x``.

    Example:
        >>> participation_ratio(eigenvalues=np.ones(5)), participation_ratio(eigenvalues=[1.0, 0, 0])
        (5.0, 1.0)
    """
    if eigenvalues is None:
        if x is None:
            raise TypeError("give x or eigenvalues")
        X = _samples(x, mask)
        Xc = X - X.mean(axis=0)
        cov = Xc.T @ Xc / max(X.shape[0] - 1, 1)
        # PR from traces: (tr C)^2 / tr(C^2), no eigendecomposition needed
        tr, tr2 = np.trace(cov), float(np.sum(cov * cov))
        return float(tr * tr / tr2) if tr2 > 0 else float("nan")
    lam = np.asarray(eigenvalues, np.float64)
    s2 = float(np.sum(lam * lam))
    return float(lam.sum() ** 2 / s2) if s2 > 0 else float("nan")


def condition_average(
    hidden: np.ndarray,
    conditions: np.ndarray,
    mask: Optional[np.ndarray] = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trial-averaged trajectories per condition (for PCA of condition means or trajectory plots).

    Args:
        hidden: ``(N, T, H)`` states.
        conditions: ``(N,)`` condition of each trial (e.g. signed relevant coherence x context codes).
        mask: ``(N, T)`` valid steps; averages use only valid steps.

    Returns:
        ``(values (C,), mean (C, T, H), count (C, T))``; steps with no valid trial are NaN.

    Example:
        >>> h = np.arange(12.0).reshape(3, 2, 2)
        >>> vals, mean, count = condition_average(h, np.array([0, 0, 1]))
        >>> vals.tolist(), mean[0, 0].tolist()
        ([0, 1], [2.0, 3.0])
    """
    h = np.asarray(hidden, np.float64)
    m = np.ones(h.shape[:2], bool) if mask is None else np.asarray(mask, bool)
    vals, codes = np.unique(np.asarray(conditions), return_inverse=True)
    codes = codes.reshape(-1)
    C = len(vals)
    onehot = np.zeros((C, h.shape[0]))
    onehot[codes, np.arange(h.shape[0])] = 1.0
    count = onehot @ m.astype(np.float64)  # (C, T)
    total = np.einsum("cn,nth->cth", onehot, h * m[:, :, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count[:, :, None]
    return vals, np.where(count[:, :, None] > 0, mean, np.nan), count
