"""Mutual information between unit activity and task variables: Gaussian-copula MI with circular-shift tests.

The estimator is GCMI (Ince et al. 2017, *Hum. Brain Mapp.* 38:1541): every variable is copula-normalised (ranked,
then mapped to standard-normal quantiles) and the MI of the resulting Gaussian model is computed in closed form:

* continuous-continuous: ``I = -1/2 log(1 - r^2)`` with ``r`` the correlation of the normalised variables;
* continuous-discrete: ``I = H(X) - sum_k p_k H(X | Y=k)`` with Gaussian (class-conditional) entropies.

Both are lower bounds on the true MI, exact for Gaussian data. Values are in **nats**. By default Ince's analytic
bias correction (the ``psi`` terms of the Gaussian entropy of ``n`` samples) is applied, as in the reference
``gcmi`` code (``biascorrect=True``); pass ``biascorrect=False`` for the plug-in value.

Ties. ReLU units are exactly 0 on many samples. Ranks of tied values are broken at random (``ties="random"``, the
default, seeded), independently for every unit, so a unit silent on a whole class does not get a zero within-class
variance (which would make the discrete MI infinite), and two units silent on the same samples do not become
artificially correlated. ``ties="average"`` gives tied values their average rank instead. The target variable ``y``
always uses average ranks: its ties (coherence levels held over a trial) are real.

Significance follows INTENSE (DRIADA; Pospelov et al.): the null distribution of each unit's MI comes from
**circular time shifts** of the variable against the activity, which keep both autocorrelations. Two stages: every
unit is screened with ``n_shuffles_stage1`` shifts (the observed MI must beat the ``topk1``-th largest), then the
candidates are tested against ``n_shuffles`` shifts: the observed MI must beat the ``topk2``-th largest *and* its
p-value (a gamma distribution fitted to the null by maximum likelihood, or the empirical rank) must pass Holm's
correction over all candidates at level ``alpha``. Circular cross-correlations for *every* shift come from one FFT
per unit block, so thousands of shifts cost about as much as one.

Example:
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((5000, 3))
    >>> y = 0.8 * x[:, 0] + 0.6 * rng.standard_normal(5000)       # corr(x0, y) = 0.8
    >>> mi = mutual_information(x, y)
    >>> bool(abs(mi[0] - (-0.5 * np.log(1 - 0.8**2))) < 0.03), bool(abs(mi[1]) < 0.01)
    (True, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from agents.files import json_safe
from scipy import fft as sp_fft
from scipy import special, stats

ArrayLike = Union[np.ndarray, Sequence[float]]
Seed = Union[int, np.random.Generator, None]

__all__ = [
    "Selectivity",
    "copnorm",
    "gamma_sf",
    "holm",
    "mi_shift_null",
    "mutual_information",
    "population_information",
    "selectivity",
    "shift_pvalues",
    "task_variables",
]


# ---------------------------------------------------------------------------------------------------- copula
def _rng(seed: Seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _ranks_random(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """0-based ranks along axis 0 with ties broken by an independent random order per column."""
    n, m = x.shape
    # A random permutation per column, then a stable sort: equal values keep the permuted (random) order.
    perm = rng.permuted(np.broadcast_to(np.arange(n), (m, n)), axis=1)
    xt = np.take_along_axis(np.ascontiguousarray(x.T), perm, axis=1)
    order = np.argsort(xt, axis=1, kind="stable")
    ranks = np.empty((m, n), dtype=np.int64)
    np.put_along_axis(ranks, np.take_along_axis(perm, order, axis=1), np.broadcast_to(np.arange(n), (m, n)), axis=1)
    return ranks.T


def copnorm(x: ArrayLike, *, ties: str = "random", seed: Seed = 0) -> np.ndarray:
    """Copula-normalise each column: rank it, then map ranks to standard-normal quantiles.

    ``x_tilde = Phi^-1((rank + 1) / (n + 1))`` with 0-based ranks (Ince et al. 2017, ``copnorm``).

    Args:
        x: ``(n,)`` or ``(n, m)`` samples (samples along axis 0).
        ties: ``"random"`` (ties broken at random, independently per column; seeded) or ``"average"``.
        seed: Seed or generator for the random tie-breaking.

    Returns:
        Float64 array of the same shape.

    Example:
        >>> copnorm(np.array([3.0, 1.0, 2.0])).round(3)
        array([ 0.674, -0.674,  0.   ])
    """
    a = np.asarray(x, dtype=np.float64)
    vec = a.ndim == 1
    a2 = a[:, None] if vec else a
    if a2.ndim != 2:
        raise ValueError(f"x must be 1-D or 2-D (samples x variables), got shape {a.shape}")
    n = a2.shape[0]
    if ties == "random":
        ranks = _ranks_random(a2, _rng(seed)).astype(np.float64)
    elif ties == "average":
        ranks = stats.rankdata(a2, axis=0, method="average") - 1.0
    else:
        raise ValueError(f"ties must be 'random' or 'average', got {ties!r}")
    out = special.ndtri((ranks + 1.0) / (n + 1.0))
    return out[:, 0] if vec else out


# ---------------------------------------------------------------------------------------------------- Gaussian MI
def _ent_bias(d: int, n: np.ndarray | float) -> np.ndarray | float:
    """Ince's bias correction of the Gaussian entropy ``1/2 log det C`` of ``d`` variables from ``n`` samples."""
    n = np.asarray(n, dtype=np.float64)
    dterm = (np.log(2.0) - np.log(n - 1.0)) / 2.0
    psi = sum(special.psi((n - i) / 2.0) for i in range(1, d + 1)) / 2.0
    return -d * dterm - psi


def _bias_cc(n: int) -> float:
    """Bias correction of the univariate continuous-continuous GCMI (negative, about ``-1/(2n)``)."""
    return float(_ent_bias(1, n) + _ent_bias(1, n) - _ent_bias(2, n))


def _bias_cd(n: int, counts: np.ndarray) -> float:
    """Bias correction of the univariate continuous-discrete GCMI for class sizes ``counts``."""
    w = counts / n
    return float(_ent_bias(1, n) - np.sum(w * _ent_bias(1, counts)))


def _mi_cc(r: np.ndarray) -> np.ndarray:
    """Plug-in Gaussian MI from correlations."""
    r2 = np.minimum(np.square(r), 1.0 - 1e-15)
    return -0.5 * np.log1p(-r2)


def _mi_cd(s_k: np.ndarray, q_k: np.ndarray, counts: np.ndarray, s: np.ndarray, q: np.ndarray, n: int) -> np.ndarray:
    """Plug-in Gaussian MI from class sums ``s_k`` and sums of squares ``q_k`` (``(K, ...)``) and totals ``s, q``.

    Classes with fewer than 2 samples have no variance estimate; they contribute the unconditional entropy (no
    information). Within-class variances are floored at ``1e-12`` of the total so that a constant class (possible
    with ``ties="average"``) gives a large, finite MI.
    """
    v = (q - s * s / n) / (n - 1)
    c = counts.reshape((-1,) + (1,) * (s_k.ndim - 1)).astype(np.float64)
    ok = c >= 2
    cc = np.where(ok, c, 2.0)
    v_k = (q_k - s_k * s_k / cc) / (cc - 1.0)
    v_k = np.maximum(v_k, 1e-12 * v)
    h_unc = 0.5 * np.log(v)
    h_k = np.where(ok, 0.5 * np.log(v_k), h_unc)
    return h_unc - np.sum((c / n) * h_k, axis=0)


def _codes(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class codes ``0..K-1`` and counts of a discrete variable."""
    _, codes, counts = np.unique(y, return_inverse=True, return_counts=True)
    return codes.reshape(-1), counts


def _is_discrete(y: np.ndarray) -> bool:
    return y.dtype.kind in "biu"


def _centre(g: np.ndarray) -> np.ndarray:
    return g - g.mean(axis=0)


def _gauss_logdet(c: np.ndarray) -> float:
    """``1/2 log det`` of a covariance (tiny ridge against rank deficiency)."""
    d = c.shape[0]
    ridge = 1e-10 * max(np.trace(c) / max(d, 1), 1e-300)
    sign, logdet = np.linalg.slogdet(c + ridge * np.eye(d))
    return 0.5 * logdet


def _mi_multivariate(gx: np.ndarray, y: np.ndarray, discrete: bool, biascorrect: bool) -> float:
    """Joint GCMI of copula-normalised ``gx (n, d)`` with one variable."""
    n, d = gx.shape
    gx = _centre(gx)
    hx = _gauss_logdet(np.atleast_2d(np.cov(gx, rowvar=False)))
    if not discrete:
        gy = _centre(copnorm(y, ties="average"))[:, None]
        cxy = np.atleast_2d(np.cov(np.hstack([gx, gy]), rowvar=False))
        hy, hxy = _gauss_logdet(cxy[-1:, -1:]), _gauss_logdet(cxy)
        mi = hx + hy - hxy
        if biascorrect:
            mi += float(_ent_bias(d, n) + _ent_bias(1, n) - _ent_bias(d + 1, n))
        return float(mi)
    codes, counts = _codes(y)
    if len(counts) < 2:
        return 0.0
    h_cond = 0.0
    bias = float(_ent_bias(d, n)) if biascorrect else 0.0
    for k, nk in enumerate(counts):
        xk = gx[codes == k]
        if nk <= d + 1:  # no covariance estimate: contributes no information
            h_cond += nk / n * hx
            if biascorrect:
                bias -= nk / n * float(_ent_bias(d, n))
            continue
        h_cond += nk / n * _gauss_logdet(np.atleast_2d(np.cov(xk, rowvar=False)))
        if biascorrect:
            bias -= nk / n * float(_ent_bias(d, nk))
    return float(hx - h_cond + bias)


def mutual_information(
    x: ArrayLike,
    y: ArrayLike,
    discrete_y: Optional[bool] = None,
    *,
    biascorrect: bool = True,
    multivariate: bool = False,
    ties: str = "random",
    seed: Seed = 0,
) -> Union[float, np.ndarray]:
    """Gaussian-copula mutual information (nats) between each column of ``x`` and ``y``.

    Args:
        x: ``(n,)`` or ``(n, m)``: ``n`` samples of ``m`` continuous variables (e.g. units).
        y: ``(n,)`` one variable.
        discrete_y: Treat ``y`` as discrete (classes) or continuous. Default: discrete for integer/bool dtypes.
        biascorrect: Apply Ince's analytic bias correction (can make values slightly negative for independent data).
        multivariate: If True, the joint MI of all columns of ``x`` with ``y`` (a float) instead of one per column.
        ties: Tie handling of ``x`` in the copula transform (see :func:`copnorm`).
        seed: Seed for the random tie-breaking.

    Returns:
        A float for 1-D ``x`` or ``multivariate=True``, else ``(m,)`` MI per column.

    Example:
        >>> rng = np.random.default_rng(1)
        >>> y = rng.integers(0, 2, 4000)
        >>> x = np.column_stack([y + rng.standard_normal(4000), rng.standard_normal(4000)])
        >>> mi = mutual_information(x, y)            # int y: discrete
        >>> bool(mi[0] > 0.1), bool(abs(mi[1]) < 0.01)
        (True, True)
    """
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y)
    vec = xa.ndim == 1
    x2 = xa[:, None] if vec else xa
    if ya.ndim != 1 or ya.shape[0] != x2.shape[0]:
        raise ValueError(f"y must be 1-D with one value per sample ({x2.shape[0]}), got shape {ya.shape}")
    n = x2.shape[0]
    if n < 4:
        raise ValueError(f"need at least 4 samples, got {n}")
    discrete = _is_discrete(ya) if discrete_y is None else bool(discrete_y)
    gx = copnorm(x2, ties=ties, seed=seed)
    if multivariate:
        return _mi_multivariate(gx, ya, discrete, biascorrect)
    mi = _mi_columns(_centre(gx), ya, discrete, biascorrect)
    return float(mi[0]) if vec else mi


def _mi_columns(gx: np.ndarray, y: np.ndarray, discrete: bool, biascorrect: bool) -> np.ndarray:
    """GCMI of each column of copula-normalised, centred ``gx (n, m)`` with ``y``."""
    n = gx.shape[0]
    if discrete:
        codes, counts = _codes(y)
        if len(counts) < 2:
            return np.zeros(gx.shape[1])
        onehot = np.zeros((len(counts), n))
        onehot[codes, np.arange(n)] = 1.0
        mi = _mi_cd(onehot @ gx, onehot @ (gx * gx), counts, gx.sum(0), (gx * gx).sum(0), n)
        return mi + _bias_cd(n, counts) if biascorrect else mi
    gy = _centre(copnorm(np.asarray(y, dtype=np.float64), ties="average"))
    if not np.any(gy):
        return np.zeros(gx.shape[1])
    return _mi_cc(_corr(gx, gy)) + (_bias_cc(n) if biascorrect else 0.0)


def _corr(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Correlation of each (centred) column of ``gx`` with centred ``gy``; 0 where a variance is 0."""
    sx = np.sqrt(np.sum(gx * gx, axis=0))
    sy = np.sqrt(np.sum(gy * gy))
    denom = sx * sy
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(denom > 0, (gy @ gx) / np.where(denom > 0, denom, 1.0), 0.0)
    return r


# ---------------------------------------------------------------------------------------------------- shift nulls
def _fast_length(n: int) -> int:
    """The largest ``m <= n`` whose prime factors are all in {2, 3, 5, 7, 11} (fast pocketfft sizes)."""
    m = n
    while m > 1:
        k = m
        for p in (2, 3, 5, 7, 11):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m -= 1
    return n


class _Spectra:
    """Spectra of copula-normalised, centred units, to get their MI with one variable at every circular shift.

    ``xcorr(v)[s, u] = sum_t gx[t, u] * v[t - s]``: unit ``u`` against ``v`` rolled forward by ``s`` (``np.roll(v,
    s)``). Computed in float32 (the null needs ~1e-6 relative precision, not float64).
    """

    def __init__(self, gx: np.ndarray) -> None:
        self.n = gx.shape[0]
        self.gx = gx
        self._fx = sp_fft.rfft(gx.T.astype(np.float32), axis=1)  # (U, F)
        self._fx2: Optional[np.ndarray] = None

    @property
    def fx2(self) -> np.ndarray:
        if self._fx2 is None:
            self._fx2 = sp_fft.rfft(np.square(self.gx).T.astype(np.float32), axis=1)
        return self._fx2

    def xcorr(self, spec: np.ndarray, v: np.ndarray, shifts: np.ndarray) -> np.ndarray:
        fv = np.conj(sp_fft.rfft(v.astype(np.float32)))
        cc = sp_fft.irfft(spec * fv[None, :], n=self.n, axis=1)  # (U, n)
        return cc[:, shifts].T.astype(np.float64)  # (S, U)

    def null_continuous(self, gy: np.ndarray, shifts: np.ndarray) -> np.ndarray:
        denom = np.sqrt(np.sum(self.gx * self.gx, axis=0) * np.sum(gy * gy))
        r = self.xcorr(self._fx, gy, shifts) / np.where(denom > 0, denom, np.inf)
        return _mi_cc(r)

    def null_discrete(self, codes: np.ndarray, counts: np.ndarray, shifts: np.ndarray) -> np.ndarray:
        k_classes = len(counts)
        s_tot, q_tot = self.gx.sum(0), np.square(self.gx).sum(0)
        s_k = np.empty((k_classes, len(shifts), self.gx.shape[1]))
        q_k = np.empty_like(s_k)
        for k in range(k_classes - 1):  # the last class is the total minus the others
            ind = (codes == k).astype(np.float64)
            s_k[k] = self.xcorr(self._fx, ind, shifts)
            q_k[k] = self.xcorr(self.fx2, ind, shifts)
        s_k[-1] = s_tot - s_k[:-1].sum(0)
        q_k[-1] = q_tot - q_k[:-1].sum(0)
        return _mi_cd(s_k, q_k, counts, s_tot, q_tot, self.n)


def mi_shift_null(
    x: ArrayLike,
    y: ArrayLike,
    shifts: ArrayLike,
    discrete_y: Optional[bool] = None,
    *,
    ties: str = "random",
    seed: Seed = 0,
) -> np.ndarray:
    """Plug-in GCMI of each column of ``x`` with ``np.roll(y, s)`` for every shift ``s`` (the circular-shift null).

    The values equal ``mutual_information(x, np.roll(y, s), biascorrect=False)`` (up to float32 rounding of the FFT),
    computed for all shifts at once.

    Args:
        x: ``(n, m)`` samples of ``m`` units.
        y: ``(n,)`` variable.
        shifts: Integer shifts.
        discrete_y: As in :func:`mutual_information`.
        ties, seed: Copula tie handling of ``x``.

    Returns:
        ``(len(shifts), m)`` MI values (nats, no bias correction).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x, y = rng.standard_normal((1000, 2)), rng.standard_normal(1000)
        >>> null = mi_shift_null(x, y, [5, 17])
        >>> ref = mutual_information(x, np.roll(y, 17), biascorrect=False)
        >>> bool(np.allclose(null[1], ref, atol=1e-6))
        True
    """
    xa = np.asarray(x, dtype=np.float64)
    x2 = xa[:, None] if xa.ndim == 1 else xa
    ya = np.asarray(y)
    sh = np.asarray(shifts, dtype=np.int64) % x2.shape[0]
    gx = _centre(copnorm(x2, ties=ties, seed=seed))
    spectra = _Spectra(gx)
    discrete = _is_discrete(ya) if discrete_y is None else bool(discrete_y)
    if discrete:
        codes, counts = _codes(ya)
        if len(counts) < 2:
            return np.zeros((len(sh), x2.shape[1]))
        return spectra.null_discrete(codes, counts, sh)
    gy = _centre(copnorm(ya.astype(np.float64), ties="average"))
    return spectra.null_continuous(gy, sh)


def shift_pvalues(observed: np.ndarray, null: np.ndarray, method: str = "gamma") -> np.ndarray:
    """P-values of observed MI values against their shift nulls.

    Args:
        observed: ``(m,)`` plug-in MI per test.
        null: ``(S, m)`` null MI values per test.
        method: ``"empirical"``: ``(1 + #{null >= obs}) / (1 + S)``; ``"gamma"``: the upper tail of a gamma
            distribution fitted to the null by maximum likelihood (:func:`gamma_sf`; INTENSE's parametric p-value,
            which can go below ``1/S``; falls back to the empirical value where the fit is degenerate).

    Returns:
        ``(m,)`` p-values.

    Example:
        >>> null = np.random.default_rng(0).gamma(0.5, 1e-3, size=(1000, 2))
        >>> shift_pvalues(np.array([3e-3, 0.0]), null).round(3)     # P(chi2_1 > 6) = 0.014
        array([0.014, 1.   ])
    """
    obs = np.asarray(observed, dtype=np.float64)
    null = np.asarray(null, dtype=np.float64)
    s = null.shape[0]
    emp = (1.0 + np.sum(null >= obs[None, :], axis=0)) / (1.0 + s)
    if method == "empirical":
        return emp
    if method != "gamma":
        raise ValueError(f"method must be 'gamma' or 'empirical', got {method!r}")
    floor = _null_floor(null)
    mean, meanlog = null.mean(axis=0), np.log(np.maximum(null, floor)).mean(axis=0)
    return gamma_sf(obs, mean, meanlog, emp)


def _null_floor(null: np.ndarray) -> float:
    """Floor for null MI values before taking logs (plug-in MI can be exactly 0 or a rounding-negative)."""
    return 1e-12 * max(float(np.max(null, initial=0.0)), 1e-300)


def gamma_sf(obs: np.ndarray, mean: np.ndarray, meanlog: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Upper tail at ``obs`` of gamma distributions (location 0) fitted by maximum likelihood to null samples.

    The MLE needs only the mean and the mean log of the samples: the shape ``k`` solves
    ``log k - digamma(k) = log(mean) - meanlog`` (Minka's initial value, then Newton steps; vectorised), and the
    scale is ``mean / k``. INTENSE fits its nulls the same way (``scipy.stats.gamma.fit`` with ``floc=0``).

    Args:
        obs: Observed statistics.
        mean, meanlog: Mean and mean log of each test's null samples.
        fallback: P-values used where the fit is degenerate (e.g. the empirical ones).

    Example:
        >>> x = np.random.default_rng(0).gamma(0.5, 2.0, size=(20000, 1))
        >>> p = gamma_sf(np.array([4.0]), x.mean(0), np.log(x).mean(0), np.array([np.nan]))
        >>> round(float(p[0]), 3)      # P(chi2_1 > 4) = 0.0455
        0.045
    """
    obs = np.asarray(obs, np.float64)
    s = np.log(np.where(mean > 0, mean, 1.0)) - meanlog
    ok = (mean > 0) & np.isfinite(s) & (s > 1e-12) & np.isfinite(obs)
    s = np.where(ok, s, 1.0)
    k = (3.0 - s + np.sqrt((s - 3.0) ** 2 + 24.0 * s)) / (12.0 * s)
    for _ in range(6):  # Newton on f(k) = log k - digamma(k) - s
        f = np.log(k) - special.digamma(k) - s
        k = np.maximum(k - f / (1.0 / k - special.polygamma(1, k)), 1e-8)
    scale = np.where(ok, mean, 1.0) / k
    p = np.where(ok, stats.gamma.sf(np.maximum(obs, 0.0), k, scale=scale), fallback)
    return np.where(obs <= 0, 1.0, p)


def holm(pvalues: ArrayLike, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Holm-Bonferroni step-down correction for a family of tests.

    NaN p-values are not tests: they are left out of the family and never rejected.

    Args:
        pvalues: P-values, any shape.
        alpha: Family-wise error rate.

    Returns:
        ``(reject, p_adjusted)`` with the shape of ``pvalues``; ``reject = p_adjusted <= alpha``.

    Example:
        >>> reject, adj = holm([0.01, 0.04, 0.03, 0.005], alpha=0.05)
        >>> reject.tolist(), adj.round(3).tolist()
        ([True, False, False, True], [0.03, 0.06, 0.06, 0.02])
    """
    p = np.asarray(pvalues, dtype=np.float64)
    flat = p.reshape(-1)
    adj = np.full(flat.shape, np.nan)
    idx = np.flatnonzero(~np.isnan(flat))
    m = len(idx)
    if m:
        order = idx[np.argsort(flat[idx], kind="stable")]
        scaled = np.minimum(1.0, (m - np.arange(m)) * flat[order])
        adj[order] = np.maximum.accumulate(scaled)  # step-down: adjusted p-values never decrease
    reject = np.where(np.isnan(adj), False, adj <= alpha)
    return reject.reshape(p.shape), adj.reshape(p.shape)


# ---------------------------------------------------------------------------------------------------- selectivity
@dataclass
class Selectivity:
    """Per-unit information about task variables and its significance.

    Attributes:
        variables: Variable names (rows of the arrays).
        discrete: Whether each variable was treated as discrete.
        mi: ``(V, H)`` GCMI in nats (bias-corrected unless ``settings["biascorrect"]`` is False).
        pvalue: ``(V, H)`` p-values: stage-2 (or single-stage) p for tested pairs, the empirical stage-1 p for pairs
            screened out in stage 1.
        significant: ``(V, H)`` bool: significant after Holm's correction.
        n_samples: Number of samples (masked time steps of all trials, concatenated).
        stage_mi: Optional ``{stage name: (V, H)}``: MI computed within the samples of each trial stage (NaN for a
            variable constant within the stage).
        labels: Optional ``(H,)`` population label of each unit (for the per-population summaries).
        settings: The test settings (shuffles, alpha, shifts, ...).

    Example:
        >>> sel = selectivity(hidden, variables, mask)          # doctest: +SKIP
        >>> sel.fraction_selective()["context"]                 # doctest: +SKIP
        0.42
    """

    variables: tuple[str, ...]
    discrete: tuple[bool, ...]
    mi: np.ndarray
    pvalue: np.ndarray
    significant: np.ndarray
    n_samples: int
    stage_mi: Optional[dict[str, np.ndarray]] = None
    labels: Optional[np.ndarray] = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def n_units(self) -> int:
        """Number of units ``H``."""
        return int(self.mi.shape[1])

    def fraction_selective(self) -> dict[str, float]:
        """Fraction of units significantly selective for each variable."""
        return {v: float(self.significant[i].mean()) for i, v in enumerate(self.variables)}

    def n_selective_variables(self) -> np.ndarray:
        """``(H,)`` number of variables each unit is selective for."""
        return self.significant.sum(axis=0)

    def mixed_fraction(self, min_variables: int = 2) -> float:
        """Fraction of units selective for at least ``min_variables`` variables (mixed selectivity)."""
        return float((self.n_selective_variables() >= min_variables).mean())

    def by_population(self, labels: Optional[ArrayLike] = None) -> dict[str, dict[str, dict[str, float]]]:
        """Information per population: ``{population: {variable: {mean_mi, fraction_selective, n_units}}}``.

        Args:
            labels: ``(H,)`` population label of each unit (default: the labels stored in the result).
        """
        lab = self._labels(labels)
        out: dict[str, dict[str, dict[str, float]]] = {}
        for pop in _unique_labels(lab):
            sel = lab == pop
            out[pop] = {
                v: {
                    "mean_mi": float(self.mi[i, sel].mean()),
                    "fraction_selective": float(self.significant[i, sel].mean()),
                    "n_units": int(sel.sum()),
                }
                for i, v in enumerate(self.variables)
            }
        return out

    def stage_by_population(self, labels: Optional[ArrayLike] = None) -> dict[str, dict[str, dict[str, float]]]:
        """Mean per-unit MI within each trial stage and population: ``{stage: {population: {variable: mi}}}``."""
        if not self.stage_mi:
            return {}
        lab = self._labels(labels)
        pops = ["all"] + _unique_labels(lab)
        out: dict[str, dict[str, dict[str, float]]] = {}
        for stage, arr in self.stage_mi.items():
            out[stage] = {}
            for pop in pops:
                sel = np.ones(self.n_units, bool) if pop == "all" else lab == pop
                with np.errstate(invalid="ignore"):
                    out[stage][pop] = {
                        v: (float(np.mean(arr[i, sel])) if sel.any() else float("nan"))
                        for i, v in enumerate(self.variables)
                    }
        return out

    def _labels(self, labels: Optional[ArrayLike]) -> np.ndarray:
        lab = self.labels if labels is None else np.asarray(labels)
        if lab is None:
            raise ValueError("no population labels: pass labels=(H,) or build the result with populations=...")
        lab = np.asarray(lab).astype(str)
        if lab.shape != (self.n_units,):
            raise ValueError(f"labels must have shape ({self.n_units},), got {lab.shape}")
        return lab

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary (per-unit arrays as lists)."""
        out: dict[str, Any] = {
            "variables": list(self.variables),
            "discrete": list(self.discrete),
            "n_samples": self.n_samples,
            "n_units": self.n_units,
            "fraction_selective": self.fraction_selective(),
            "mixed_fraction": self.mixed_fraction(),
            "n_selective_variables_hist": np.bincount(
                self.n_selective_variables(), minlength=len(self.variables) + 1
            ).tolist(),
            "mean_mi": {v: float(self.mi[i].mean()) for i, v in enumerate(self.variables)},
            "mi": self.mi.tolist(),
            "pvalue": self.pvalue.tolist(),
            "significant": self.significant.astype(int).tolist(),
            "settings": json_safe(self.settings),
        }
        if self.labels is not None:
            out["by_population"] = self.by_population()
            out["stage_by_population"] = self.stage_by_population()
        elif self.stage_mi:
            out["stage_mean_mi"] = {
                s: {v: float(np.nanmean(a[i])) if np.isfinite(a[i]).any() else float("nan")
                    for i, v in enumerate(self.variables)}
                for s, a in self.stage_mi.items()
            }
        return out


def _unique_labels(lab: np.ndarray) -> list[str]:
    return sorted({str(v) for v in lab.tolist()})


def _flatten_variable(v: ArrayLike, shape: tuple[int, int], mask: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(v)
    if a.shape == (shape[0],):
        a = np.broadcast_to(a[:, None], shape)
    if a.shape != shape:
        raise ValueError(f"variable {name!r} must have shape ({shape[0]},) or {shape}, got {a.shape}")
    return a[mask]


def _draw_shifts(n: int, count: int, min_shift: int, rng: np.random.Generator) -> np.ndarray:
    lo, hi = min_shift, n - min_shift
    if hi < lo:
        raise ValueError(f"min_shift={min_shift} leaves no admissible shift for {n} samples")
    avail = hi - lo + 1
    return lo + rng.choice(avail, size=min(count, avail), replace=False)


def _checked_series_inputs(hidden: np.ndarray, variables: Mapping[str, ArrayLike],
                           mask: Optional[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``hidden`` as an ``(N, T, H)`` array and the ``(N, T)`` bool mask (all steps by default), checked."""
    h = np.asarray(hidden)
    if h.ndim != 3:
        raise ValueError(f"hidden must be (N, T, H), got shape {h.shape}")
    N, T, H = h.shape
    m = np.ones((N, T), bool) if mask is None else np.asarray(mask, bool)
    if m.shape != (N, T):
        raise ValueError(f"mask must have shape {(N, T)}, got {m.shape}")
    if not variables:
        raise ValueError("give at least one variable")
    return h, m


def _series(h: np.ndarray, m: np.ndarray, variables: Mapping[str, ArrayLike], stage: Optional[np.ndarray],
            trim_fast_length: bool) -> tuple[np.ndarray, dict[str, np.ndarray], Optional[np.ndarray]]:
    """The masked steps of all trials as one series: activity ``(n, H)`` float64, each variable ``(n,)`` and the
    stage ids (or ``None``), cut to a fast FFT length if ``trim_fast_length``."""
    N, T, _ = h.shape
    x = h[m].astype(np.float64)
    flat = {name: _flatten_variable(v, (N, T), m, name) for name, v in variables.items()}
    stage_flat = None if stage is None else _flatten_variable(stage, (N, T), m, "stage").astype(np.int64)
    if trim_fast_length:
        n = _fast_length(x.shape[0])
        x = x[:n]
        flat = {k: v[:n] for k, v in flat.items()}
        stage_flat = None if stage_flat is None else stage_flat[:n]
    return x, flat, stage_flat


def _shift_tests(gx: np.ndarray, flat: dict[str, np.ndarray], names: tuple[str, ...], disc: tuple[bool, ...],
                 shifts1: np.ndarray, shifts2: np.ndarray, *, two_stage: bool, topk1: int, topk2: int, pvalue: str,
                 biascorrect: bool, progress: bool) -> tuple[np.ndarray, ...]:
    """Each variable's MI with every unit (copula-normalised activity ``gx``) against its circular-shift nulls
    (stage 1: ``shifts1``, stage 2: ``shifts2``). Returns ``(mi, p1, p2, pass1, pass2)``, each ``(V, H)``: the
    reported MI, the stage-1 and stage-2 p-values and which pairs pass each stage's top-k screen."""
    from tqdm.auto import tqdm

    n, H = gx.shape
    V = len(names)
    spectra = _Spectra(gx)
    mi_rep = np.zeros((V, H))
    p1 = np.ones((V, H))
    p2 = np.full((V, H), np.nan)
    pass1 = np.ones((V, H), bool)
    pass2 = np.ones((V, H), bool)
    for i, name in enumerate(tqdm(names, desc="selectivity", disable=not progress)):
        y = flat[name]
        shifts = np.concatenate([shifts1, shifts2])
        obs = _mi_columns(gx, y, disc[i], biascorrect=False)
        if disc[i]:
            codes, counts = _codes(y)
            if len(counts) < 2:
                continue  # a constant variable carries no information: never selective
            null = spectra.null_discrete(codes, counts, shifts)
            bias = _bias_cd(n, counts)
        else:
            gy = _centre(copnorm(np.asarray(y, np.float64), ties="average"))
            if not np.any(gy):
                continue
            null = spectra.null_continuous(gy, shifts)
            bias = _bias_cc(n)
        mi_rep[i] = obs + (bias if biascorrect else 0.0)
        null1, null2 = null[: len(shifts1)], null[len(shifts1) :]
        if two_stage:
            p1[i] = shift_pvalues(obs, null1, "empirical")
            pass1[i] = obs > _kth_largest(null1, topk1)
            pass2[i] = obs > _kth_largest(null2, topk2)
        p2[i] = shift_pvalues(obs, null2, pvalue)
    return mi_rep, p1, p2, pass1, pass2


def selectivity(
    hidden: np.ndarray,
    variables: Mapping[str, ArrayLike],
    mask: Optional[np.ndarray] = None,
    *,
    discrete: Optional[Mapping[str, bool]] = None,
    stage: Optional[np.ndarray] = None,
    stage_names: Optional[Mapping[int, str]] = None,
    populations: Optional[Any] = None,
    two_stage: bool = True,
    n_shuffles_stage1: int = 100,
    n_shuffles: int = 10000,
    topk1: int = 1,
    topk2: int = 5,
    alpha: float = 0.01,
    pvalue: str = "gamma",
    min_shift: Optional[int] = None,
    biascorrect: bool = True,
    ties: str = "random",
    trim_fast_length: bool = True,
    seed: Seed = 0,
    progress: bool = False,
) -> Selectivity:
    """Per-unit GCMI with task variables, tested by circular time shifts with Holm's correction (INTENSE-style).

    The masked time steps of all trials are concatenated (trial after trial) into one series of ``n`` samples; each
    variable is shifted circularly against the activity by at least ``min_shift`` samples (default: the padded trial
    length, so a shifted variable always comes from other trials).

    Args:
        hidden: ``(N, T, H)`` hidden states.
        variables: ``{name: (N,) per-trial or (N, T) per-step values}`` (see :func:`task_variables`).
        mask: ``(N, T)`` bool, the steps to use (default: all).
        discrete: ``{name: bool}`` overrides; default: integer/bool variables are discrete, floats continuous.
        stage: Optional ``(N, T)`` stage id per step: adds the MI computed within each stage (``stage_mi``).
        stage_names: Names of the stage ids (default ``dm_envs.STAGES`` order: fixation, stimulus, delay, decision).
        populations: Optional population labels, ``(H,)`` or a :class:`~analysis.populations.groups.Populations`, stored
            for :meth:`Selectivity.by_population`.
        two_stage: INTENSE's two stages (screen with ``n_shuffles_stage1``, then test the candidates with
            ``n_shuffles``); if False, every pair is tested once with ``n_shuffles``.
        n_shuffles_stage1: Shifts of stage 1.
        n_shuffles: Shifts of stage 2 (or the single stage). Capped by the number of admissible shifts.
        topk1: Stage 1: the observed MI must exceed the ``topk1``-th largest null value.
        topk2: Stage 2: the observed MI must exceed the ``topk2``-th largest null value (two-stage mode only).
        alpha: Family-wise error rate of Holm's correction (over all tested unit-variable pairs).
        pvalue: ``"gamma"`` (parametric, INTENSE) or ``"empirical"``.
        min_shift: Smallest shift, in samples.
        biascorrect: Report bias-corrected MI (the test is unaffected: the correction is shift-invariant).
        ties: Tie handling of unit activity (see :func:`copnorm`).
        trim_fast_length: Drop the last few samples so that ``n`` is a fast FFT size (11-smooth); at most a few
            samples out of thousands.
        seed: Seed for the shifts and the random tie-breaking.
        progress: Show a progress bar over variables.

    Returns:
        The :class:`Selectivity`.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> ctx = rng.integers(0, 2, 200)                                      # per-trial variable
        >>> hidden = rng.random((200, 20, 6)); hidden[:, :, 0] += 2 * ctx[:, None]
        >>> sel = selectivity(hidden, {"context": ctx}, n_shuffles=500)
        >>> sel.significant[0].tolist()
        [True, False, False, False, False, False]
    """
    h, m = _checked_series_inputs(hidden, variables, mask)
    N, T, H = h.shape
    rng = _rng(seed)
    x, flat, stage_flat = _series(h, m, variables, stage, trim_fast_length)
    n = x.shape[0]
    min_shift = T if min_shift is None else int(min_shift)

    names = tuple(flat)
    disc = tuple(
        bool(discrete[k]) if discrete and k in discrete else _is_discrete(np.asarray(flat[k])) for k in names
    )
    gx = _centre(copnorm(x, ties=ties, seed=rng))
    n1 = n_shuffles_stage1 if two_stage else 0
    shifts1 = _draw_shifts(n, n1, min_shift, rng) if two_stage else np.zeros(0, np.int64)
    shifts2 = _draw_shifts(n, n_shuffles, min_shift, rng)
    V = len(names)
    mi_rep, p1, p2, pass1, pass2 = _shift_tests(gx, flat, names, disc, shifts1, shifts2, two_stage=two_stage,
                                                topk1=topk1, topk2=topk2, pvalue=pvalue, biascorrect=biascorrect,
                                                progress=progress)
    tested = pass1 if two_stage else np.ones((V, H), bool)
    reject, _ = holm(np.where(tested, p2, np.nan), alpha)
    significant = reject & tested & pass2
    pval = np.where(tested, p2, p1)
    pval = np.where(np.isnan(pval), 1.0, pval)  # constant variables: no test, no information

    stage_mi = None
    if stage_flat is not None:
        stage_mi = _stage_information(x, flat, names, disc, stage_flat, stage_names, biascorrect, ties, rng)
    labels = None
    if populations is not None:
        labels = np.asarray(getattr(populations, "labels", populations)).astype(str)
    settings = dict(
        two_stage=two_stage,
        n_shuffles_stage1=int(len(shifts1)),
        n_shuffles=int(len(shifts2)),
        topk1=topk1,
        topk2=topk2,
        alpha=alpha,
        pvalue=pvalue,
        min_shift=min_shift,
        biascorrect=biascorrect,
        ties=ties,
        estimator="gcmi",
    )
    return Selectivity(names, disc, mi_rep, pval, significant, n, stage_mi, labels, settings)


def _kth_largest(null: np.ndarray, k: int) -> np.ndarray:
    if null.shape[0] == 0:
        return np.full(null.shape[1], -np.inf)
    k = min(max(int(k), 1), null.shape[0])
    return np.partition(null, null.shape[0] - k, axis=0)[null.shape[0] - k]


def _stage_information(
    x: np.ndarray,
    flat: Mapping[str, np.ndarray],
    names: tuple[str, ...],
    disc: tuple[bool, ...],
    stage: np.ndarray,
    stage_names: Optional[Mapping[int, str]],
    biascorrect: bool,
    ties: str,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    if stage_names is None:
        from dm_envs import STAGES

        stage_names = dict(enumerate(STAGES))
    out = {}
    for sid in np.unique(stage):
        sel = stage == sid
        if sel.sum() < 10:
            continue
        gx = _centre(copnorm(x[sel], ties=ties, seed=rng))  # once per stage, shared by the variables
        arr = np.full((len(names), x.shape[1]), np.nan)
        for i, name in enumerate(names):
            y = np.asarray(flat[name])[sel]
            if np.unique(y).size < 2:
                continue  # constant within the stage: undefined
            arr[i] = _mi_columns(gx, y, disc[i], biascorrect)
        out[str(stage_names.get(int(sid), int(sid)))] = arr
    return out


def population_information(
    hidden: np.ndarray,
    variables: Mapping[str, ArrayLike],
    labels: Any,
    mask: Optional[np.ndarray] = None,
    *,
    discrete: Optional[Mapping[str, bool]] = None,
    stage: Optional[np.ndarray] = None,
    stage_names: Optional[Mapping[int, str]] = None,
    include_all: bool = True,
    biascorrect: bool = True,
    ties: str = "random",
    seed: Seed = 0,
) -> dict[str, dict[str, dict[str, float]]]:
    """Joint GCMI (nats) between each population's activity, as one multivariate signal, and each task variable.

    The joint information of a population is not the sum of its units' (they share and combine information); it is
    the Gaussian-copula MI of the ``d``-dimensional activity of its units with the variable (:func:`mutual_information`
    with ``multivariate=True``), each unit copula-normalised once over all samples. Caveat: a noise-free code (the
    network's state is a deterministic function of a trial variable, e.g. of the context cue) makes class-conditional
    covariances nearly singular and the joint MI very large (tens of nats); compare populations and networks on the
    same task, trials and settings. Cost: one ``d x d`` covariance per population, variable, class and stage.

    Args:
        hidden: ``(N, T, H)`` hidden states.
        variables: ``{name: (N,) or (N, T)}`` (see :func:`task_variables`).
        labels: ``(H,)`` population labels (or a :class:`~analysis.populations.groups.Populations`).
        mask: ``(N, T)`` steps to use.
        discrete: Per-variable overrides of the discrete/continuous choice.
        stage: Optional ``(N, T)`` stage ids: adds the same within each stage.
        stage_names: Names of the stage ids (default ``dm_envs.STAGES``).
        include_all: Add the population ``"all"`` (every unit).
        biascorrect, ties, seed: As in :func:`mutual_information`.

    Returns:
        ``{"all stages" or stage name: {population: {variable: MI}}}`` (NaN for a variable constant in a stage).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> ctx = rng.integers(0, 2, 300); h = rng.random((300, 10, 4)); h[:, :, :2] += ctx[:, None, None]
        >>> info = population_information(h, {"context": ctx}, ["A", "A", "B", "B"])["all stages"]
        >>> bool(info["A"]["context"] > 0.5 > 0.01 > abs(info["B"]["context"]))
        True
    """
    h = np.asarray(hidden)
    N, T, H = h.shape
    m = np.ones((N, T), bool) if mask is None else np.asarray(mask, bool)
    lab = np.asarray(getattr(labels, "labels", labels)).astype(str)
    if lab.shape != (H,):
        raise ValueError(f"labels must have shape ({H},), got {lab.shape}")
    flat = {k: _flatten_variable(v, (N, T), m, k) for k, v in variables.items()}
    disc = {k: bool(discrete[k]) if discrete and k in discrete else _is_discrete(np.asarray(v))
            for k, v in flat.items()}
    gx = copnorm(h[m].astype(np.float64), ties=ties, seed=seed)
    pops = {p: lab == p for p in _unique_labels(lab)}
    if include_all:
        pops = {"all": np.ones(H, bool), **pops}
    subsets = {"all stages": np.ones(gx.shape[0], bool)}
    if stage is not None:
        if stage_names is None:
            from dm_envs import STAGES

            stage_names = dict(enumerate(STAGES))
        st = _flatten_variable(stage, (N, T), m, "stage").astype(np.int64)
        for sid in np.unique(st):
            subsets[str(stage_names.get(int(sid), int(sid)))] = st == sid
    out: dict[str, dict[str, dict[str, float]]] = {}
    for sname, rows in subsets.items():
        out[sname] = {}
        for pname, cols in pops.items():
            res = {}
            for var, y in flat.items():
                yy = np.asarray(y)[rows]
                if not cols.any() or rows.sum() < cols.sum() + 10 or np.unique(yy).size < 2:
                    res[var] = float("nan")
                    continue
                res[var] = _mi_multivariate(gx[np.ix_(rows, cols)], yy, disc[var], biascorrect)
            out[sname][pname] = res
    return out


# ---------------------------------------------------------------------------------------------------- variables
def task_variables(
    trials: Any,
    *,
    actions: Optional[np.ndarray] = None,
    choice: Optional[np.ndarray] = None,
) -> dict[str, np.ndarray]:
    """The task variables of a :class:`dm_envs.TrialBatch` for :func:`selectivity`.

    Integer arrays are treated as discrete, floats as continuous:

    ==========================  ================================================================================
    ``context``                 ``(N,)`` int: the stream that decides (only with more than one stream)
    ``coherence_<s>``           ``(N,)`` float: signed coherence of stream ``s`` (two choices; unsigned otherwise)
    ``direction_<s>``           ``(N,)`` int: the choice stream ``s`` favours (only with more than two choices)
    ``relevant_coherence``      ``(N,)`` float: signed (two choices) coherence of the deciding stream
    ``correct_choice``          ``(N,)`` int
    ``chosen_action``           ``(N,)`` int: the choice the network made (``-1``: none), from ``choice`` or
                                scored from ``actions`` with :func:`dm_envs.score_actions`
    ``stage``                   ``(N, T)`` int: trial stage of each step
    ==========================  ================================================================================

    Args:
        trials: The trials.
        actions: ``(N, T)`` the network's actions (to derive ``chosen_action``).
        choice: ``(N,)`` the network's choice per trial (0-based, ``-1`` for none); overrides ``actions``.

    Returns:
        ``{name: array}``.

    Example:
        >>> from dm_envs import make_config, sample_trials
        >>> sorted(task_variables(sample_trials(make_config(3), 8, 0)))
        ['coherence_1', 'coherence_2', 'context', 'correct_choice', 'relevant_coherence', 'stage']
    """
    cfg = trials.config
    out: dict[str, np.ndarray] = {}
    if cfg.n_streams > 1:
        out["context"] = np.asarray(trials.context, dtype=np.int64)
    two = cfg.n_choices == 2
    coh = trials.signed_coherence if two else trials.coherence
    for s in range(cfg.n_streams):
        out[f"coherence_{s + 1}"] = np.asarray(coh[:, s], dtype=np.float64)
        if not two:
            out[f"direction_{s + 1}"] = np.asarray(trials.direction[:, s], dtype=np.int64)
    rows = np.arange(len(trials))
    out["relevant_coherence"] = np.asarray(coh[rows, trials.context], dtype=np.float64)
    out["correct_choice"] = np.asarray(trials.correct_choice, dtype=np.int64)
    if choice is None and actions is not None:
        from dm_envs import score_actions

        choice = score_actions(trials, np.asarray(actions, dtype=np.int64)).choice
    if choice is not None:
        out["chosen_action"] = np.asarray(choice, dtype=np.int64)
    out["stage"] = np.asarray(trials.stage, dtype=np.int64)
    return out
