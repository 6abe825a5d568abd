"""Verdicts on the paper's claims, computed from the data: effect size, bootstrap confidence interval, test, n.

Three kinds of claims, each with one rule (``alpha`` = 0.05, 95% intervals, ``min_n`` networks per group):

* **difference** ("A is larger than B"): effect = mean(A) - mean(B), percentile-bootstrap CI of that difference,
  one-sided Mann-Whitney U test in the expected direction, Cliff's delta as the standardised effect.
  *reproduced* if p < alpha and the CI excludes 0 on the expected side; *not reproduced* if the CI excludes 0 on
  the other side, or if the CI lies within the ``equivalence`` margin of 0 (a negligible effect); otherwise
  *inconclusive* (too few networks, or an interval that straddles 0).
* **association** ("x rises with y"): Spearman's rho, bootstrap CI of rho, its p-value (one-sided).
  Same rule with rho in place of the difference.
* **equivalence** ("A and B are similar", e.g. both reach the same accuracy): bootstrap CI of mean(A) - mean(B);
  *reproduced* if the CI lies within +-``margin``, *not reproduced* if it lies entirely outside, else *inconclusive*.
* **bound** ("the mean of A stays below / above a level", e.g. SL's quasi-periodic fraction near 0, both learning
  rules reaching the criterion): bootstrap CI of the mean; *reproduced* if the CI lies on the claimed side of the
  level, *not reproduced* if it lies on the other side, else *inconclusive*.

A verdict never says more than its numbers: with fewer than ``min_n`` networks per group it is *inconclusive*.

**Paired design** (the RL and SL network of one (seed, delta) start from the same weights): :func:`paired_difference`,
:func:`within_network`, :func:`one_sample` and :func:`rank_association` each return a :class:`Finding` (estimate,
bootstrap CI, two-sided permutation p-value, TOST p-value with a margin); :func:`decide` adjusts all p-values of the
family together (Holm by default, :func:`adjust_p`) and only then gives the verdicts.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Optional, Sequence

import numpy as np
from scipy import stats

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"


@dataclass
class Verdict:
    """The outcome of testing one claim."""

    claim: str
    verdict: str
    effect: float = float("nan")
    ci: tuple[float, float] = (float("nan"), float("nan"))
    p_value: float = float("nan")
    test: str = ""
    n: dict[str, int] = field(default_factory=dict)
    effect_name: str = ""
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line: verdict, effect with CI, test and n."""
        ns = ", ".join(f"n_{k}={v}" for k, v in self.n.items())
        ci = f"[{self.ci[0]:.3g}, {self.ci[1]:.3g}]" if np.all(np.isfinite(self.ci)) else "n/a"
        p = f"p={self.p_value:.3g}" if np.isfinite(self.p_value) else "p=n/a"
        return f"{self.verdict}: {self.effect_name} {self.effect:.3g} (95% CI {ci}), {self.test} {p}; {ns}"


def _clean(x: Sequence[float]) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    return a[np.isfinite(a)]


def bootstrap_ci(statistic, samples: Sequence[np.ndarray], n_resamples: int = 5000, seed: int = 0,
                 paired: bool = False) -> tuple[float, float]:
    """Percentile bootstrap 95% CI of ``statistic(*samples)`` (scipy.stats.bootstrap); NaNs if degenerate."""
    if any(len(s) < 2 for s in samples):
        return float("nan"), float("nan")
    with warnings.catch_warnings():  # resamples of tied data make some statistics undefined; NaNs are handled below
        warnings.simplefilter("ignore")
        res = stats.bootstrap(tuple(samples), statistic, n_resamples=n_resamples, method="percentile",
                              vectorized=False, paired=paired, random_state=np.random.default_rng(seed))
    lo, hi = res.confidence_interval
    if not (np.isfinite(lo) and np.isfinite(hi)):  # constant data: the interval is the point
        point = statistic(*samples)
        return float(point), float(point)
    return float(lo), float(hi)


def cliffs_delta(a: np.ndarray, b: np.ndarray) -> float:
    """P(a > b) - P(a < b) over all pairs: a rank-based effect size in [-1, 1]."""
    diff = np.sign(a[:, None] - b[None, :])
    return float(diff.mean())


def _decide(lo: float, hi: float, p: float, larger: bool, alpha: float, equivalence: Optional[float]) -> str:
    sign = 1 if larger else -1
    lo_s, hi_s = sorted((sign * lo, sign * hi))
    if not (np.isfinite(lo_s) and np.isfinite(hi_s)):
        return INCONCLUSIVE
    if lo_s > 0 and p < alpha:
        return REPRODUCED
    if hi_s < 0:
        return NOT_REPRODUCED
    if equivalence is not None and -equivalence < lo_s and hi_s < equivalence:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def _mean_difference(
    claim: str, a: Sequence[float], b: Sequence[float], test: str, names: tuple[str, str], min_n: int, seed: int
) -> tuple[Verdict, np.ndarray, np.ndarray, bool]:
    """The start of a two-group verdict: an inconclusive :class:`Verdict` with the difference of means and its
    bootstrap CI, the cleaned groups, and whether the test can go on (``False``, the reason in ``note``, when a group
    is empty or has fewer than ``min_n`` networks)."""
    a, b = _clean(a), _clean(b)
    v = Verdict(claim, INCONCLUSIVE, test=test, n={names[0]: len(a), names[1]: len(b)},
                effect_name=f"mean({names[0]}) - mean({names[1]})")
    if len(a) == 0 or len(b) == 0:
        v.note = "no data"
        return v, a, b, False
    v.effect = float(a.mean() - b.mean())
    if min(len(a), len(b)) < min_n:
        v.note = f"fewer than {min_n} networks in a group"
        return v, a, b, False
    v.ci = bootstrap_ci(lambda x, y: np.mean(x) - np.mean(y), [a, b], seed=seed)
    return v, a, b, True


def compare_groups(
    claim: str,
    a: Sequence[float],
    b: Sequence[float],
    *,
    larger: bool = True,
    names: tuple[str, str] = ("RL", "SL"),
    alpha: float = 0.05,
    min_n: int = 3,
    equivalence: Optional[float] = None,
    seed: int = 0,
) -> Verdict:
    """Verdict on "group ``a`` is larger (``larger=True``) or smaller than group ``b``"."""
    v, a, b, ready = _mean_difference(claim, a, b, "Mann-Whitney U (one-sided)", names, min_n, seed)
    if not ready:
        return v
    if np.ptp(np.r_[a, b]) == 0:
        v.p_value = 1.0
    else:
        v.p_value = float(stats.mannwhitneyu(a, b, alternative="greater" if larger else "less").pvalue)
    v.note = f"Cliff's delta {cliffs_delta(a, b):+.2f}"
    v.verdict = _decide(*v.ci, v.p_value, larger, alpha, equivalence)
    return v


def equivalence(
    claim: str,
    a: Sequence[float],
    b: Sequence[float],
    margin: float,
    *,
    names: tuple[str, str] = ("RL", "SL"),
    min_n: int = 3,
    seed: int = 0,
) -> Verdict:
    """Verdict on "groups ``a`` and ``b`` have the same mean, within ``+-margin``" (two one-sided CI check)."""
    v, a, b, ready = _mean_difference(claim, a, b, f"bootstrap CI within +-{margin:g}", names, min_n, seed)
    if not ready:
        return v
    lo, hi = v.ci
    if -margin < lo and hi < margin:
        v.verdict = REPRODUCED
    elif lo > margin or hi < -margin:
        v.verdict = NOT_REPRODUCED
    return v


def association(
    claim: str,
    x: Sequence[float],
    y: Sequence[float],
    *,
    positive: bool = True,
    alpha: float = 0.05,
    min_n: int = 5,
    seed: int = 0,
) -> Verdict:
    """Verdict on "``y`` rises (``positive=True``) or falls with ``x``" by Spearman's rank correlation."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    v = Verdict(claim, INCONCLUSIVE, test="Spearman (one-sided)", n={"networks": len(x)}, effect_name="rho")
    if len(x) < min_n or np.ptp(x) == 0 or np.ptp(y) == 0:
        v.note = "too few networks or no variation"
        return v
    res = stats.spearmanr(x, y, alternative="greater" if positive else "less")
    v.effect, v.p_value = float(res.statistic), float(res.pvalue)
    v.ci = bootstrap_ci(lambda a, b: stats.spearmanr(a, b).statistic, [x, y], paired=True, seed=seed)
    v.verdict = _decide(*v.ci, v.p_value, positive, alpha, None)
    return v


def bound(
    claim: str,
    a: Sequence[float],
    level: float,
    *,
    below: bool = True,
    name: str = "RL",
    min_n: int = 3,
    seed: int = 0,
) -> Verdict:
    """Verdict on "the mean of ``a`` lies below (``below=True``) or above ``level``" from its bootstrap CI."""
    a = _clean(a)
    v = Verdict(claim, INCONCLUSIVE, test=f"bootstrap CI vs {level:g}", n={name: len(a)}, effect_name=f"mean({name})")
    if len(a) == 0:
        v.note = "no data"
        return v
    v.effect = float(a.mean())
    if len(a) < min_n:
        v.note = f"fewer than {min_n} networks"
        return v
    v.ci = bootstrap_ci(np.mean, [a], seed=seed)
    lo, hi = v.ci
    if (below and hi < level) or (not below and lo > level):
        v.verdict = REPRODUCED
    elif (below and lo > level) or (not below and hi < level):
        v.verdict = NOT_REPRODUCED
    return v


# ---------------------------------------------------------------------------------------------------------------------
# Paired design: the RL and SL network of one (seed, delta) start from the same weights, so they are compared as a
# pair. Each claim becomes a Finding (effect, bootstrap CI, two-sided p, TOST p); decide() adjusts the whole family of
# p-values together and only then gives the verdicts.
# ---------------------------------------------------------------------------------------------------------------------

PENDING = "pending"
MIN_N = 6  # the smallest n at which an exact two-sided sign-flip p (2 / 2**n) can fall below 0.05
EXACT_MAX_PAIRS = 16  # up to 2**16 sign patterns are enumerated; beyond, Monte Carlo
ALPHA = 0.05
_NAN = float("nan")


@dataclass(frozen=True)
class Finding:
    """The numbers behind one claim under the paired design; :func:`decide` fills the adjusted p-values and verdict.

    Attributes:
        claim: The claim in words.
        test: The test used (e.g. "sign-flip permutation test of the mean paired difference (exact, 2^12 sign
            patterns)").
        n: Complete pairs (or networks) used.
        estimate: The effect on the scale where 0 is "no effect" (e.g. mean paired difference, rho).
        ci: Percentile-bootstrap 95% interval of ``estimate``.
        p_value: Two-sided p-value of "no effect"; nan if not computable.
        p_equivalence: TOST p-value that the effect lies within ``+-margin``; nan without a margin.
        margin: The equivalence margin, or None.
        expected_sign: +1 if the paper predicts a positive ``estimate``, -1 if negative.
        p_adjusted: ``p_value`` adjusted over the family (by :func:`decide`).
        p_equivalence_adjusted: ``p_equivalence`` adjusted over the family (by :func:`decide`).
        verdict: REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, or PENDING before :func:`decide`.
        note: Anything the numbers need said (dropped pairs, too few pairs).

    Example:
        >>> f = Finding("RL > SL", "t", 12, 0.3, (0.1, 0.5), 0.001, float("nan"), None, +1)
        >>> f.verdict, f.to_dict()["p_equivalence"]
        ('pending', None)
    """

    claim: str
    test: str
    n: int
    estimate: float
    ci: tuple[float, float]
    p_value: float
    p_equivalence: float
    margin: Optional[float]
    expected_sign: int
    p_adjusted: float = _NAN
    p_equivalence_adjusted: float = _NAN
    verdict: str = PENDING
    note: str = ""

    def __post_init__(self) -> None:
        if self.expected_sign not in (1, -1):
            raise ValueError(f"expected_sign must be +1 or -1, not {self.expected_sign!r}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict: NaN becomes None, the interval a list.

        Example:
            >>> nan = float("nan")
            >>> Finding("c", "t", 0, nan, (nan, nan), nan, nan, None, -1).to_dict()["ci"]
            [None, None]
        """
        return {k: _json_value(v) for k, v in asdict(self).items()}

    def summary(self) -> str:
        """One line: verdict, estimate with CI, test, raw and adjusted p, n.

        Example:
            >>> Finding("c", "sign-flip", 8, 1.0, (0.5, 1.5), 0.0078, float("nan"), None, 1).summary()
            'pending: estimate 1 (95% CI [0.5, 1.5]), sign-flip p=0.0078 (adj. n/a); n=8'
        """
        ci = f"[{self.ci[0]:.3g}, {self.ci[1]:.3g}]" if np.all(np.isfinite(self.ci)) else "n/a"
        eq = f", TOST +-{self.margin:g} p={_fmt_p(self.p_equivalence)}" if self.margin is not None else ""
        return (f"{self.verdict}: estimate {self.estimate:.3g} (95% CI {ci}), {self.test} p={_fmt_p(self.p_value)} "
                f"(adj. {_fmt_p(self.p_adjusted)}){eq}; n={self.n}" + (f"; {self.note}" if self.note else ""))


def _fmt_p(p: float) -> str:
    return f"{p:.3g}" if np.isfinite(p) else "n/a"


def _json_value(v: Any) -> Any:
    if isinstance(v, (tuple, list)):
        return [_json_value(x) for x in v]
    if isinstance(v, (float, np.floating)):
        return float(v) if np.isfinite(v) else None
    return v


def _strata_codes(strata: Optional[Sequence[Any]], n: int) -> np.ndarray:
    """Integer stratum codes 0..S-1 (all 0 without strata)."""
    if strata is None:
        return np.zeros(n, dtype=int)
    labels = np.asarray(strata)
    if labels.shape != (n,):
        raise ValueError(f"strata must have one label per pair ({n}), got shape {labels.shape}")
    return np.unique(labels, return_inverse=True)[1].ravel()


def _resample_within(codes: np.ndarray, n_resamples: int, rng: np.random.Generator, replace: bool) -> np.ndarray:
    """Index matrix (n_resamples, n): each row draws, within every stratum, that stratum's members (with replacement:
    a bootstrap resample; without: a permutation), so each stratum keeps its size."""
    idx = np.empty((n_resamples, len(codes)), dtype=int)
    for s in np.unique(codes):
        members = np.flatnonzero(codes == s)
        if replace:
            idx[:, members] = members[rng.integers(0, len(members), size=(n_resamples, len(members)))]
        else:
            idx[:, members] = rng.permuted(np.broadcast_to(members, (n_resamples, len(members))), axis=1)
    return idx


def _percentile_ci(values: np.ndarray) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return _NAN, _NAN
    lo, hi = np.quantile(values, [0.025, 0.975])
    return float(lo), float(hi)


def _mean_last(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def _sign_flip_p(d: np.ndarray, alternative: str, n_permutations: int, seed: np.random.SeedSequence) -> float:
    """p-value of the sign-flip permutation test of mean(d) (scipy.stats.permutation_test, 'samples' on one sample);
    exact over all 2**n sign patterns when n <= EXACT_MAX_PAIRS."""
    n_resamples = np.inf if len(d) <= EXACT_MAX_PAIRS else n_permutations
    res = stats.permutation_test((d,), _mean_last, permutation_type="samples", vectorized=True,
                                 n_resamples=n_resamples, alternative=alternative, rng=np.random.default_rng(seed))
    return float(res.pvalue)


def _sign_flip_name(what: str, n: int, n_permutations: int) -> str:
    how = f"exact, 2^{n} sign patterns" if n <= EXACT_MAX_PAIRS else f"Monte Carlo, {n_permutations} sign patterns"
    return f"sign-flip permutation test of {what} ({how})"


def _signed_effect(
    claim: str,
    d: Sequence[float],
    strata: Optional[Sequence[Any]],
    expected_sign: int,
    margin: Optional[float],
    what: str,
    unit: str,
    n_permutations: int,
    n_bootstrap: int,
    seed: int,
    min_pairs: int,
) -> Finding:
    """The shared machinery of :func:`paired_difference`, :func:`within_network` and :func:`one_sample`: sign-flip
    test, stratified bootstrap CI and TOST on the differences ``d`` (non-finite entries dropped)."""
    d = np.asarray(d, dtype=float)
    codes = _strata_codes(strata, len(d))
    ok = np.isfinite(d)
    d, codes = d[ok], codes[ok]
    n = len(d)
    notes = [f"dropped {int((~ok).sum())} incomplete {unit}"] if not ok.all() else []
    estimate = float(d.mean()) if n else _NAN
    if margin is not None and not margin > 0:
        raise ValueError(f"margin must be positive, got {margin}")
    test = _sign_flip_name(what, n, n_permutations)
    if n < min_pairs:
        return Finding(claim, test, n, estimate, (_NAN, _NAN), _NAN, _NAN, margin,
                       expected_sign, note="; ".join([f"too few {unit} (n={n})"] + notes))
    perm_seed, boot_seed = np.random.SeedSequence(seed).spawn(2)  # the same sign patterns for all three tests
    p = _sign_flip_p(d, "two-sided", n_permutations, perm_seed)
    p_eq = _NAN
    if margin is not None:  # TOST: H0 mean <= -margin and H0 mean >= +margin must both be rejected
        p_eq = max(_sign_flip_p(d + margin, "greater", n_permutations, perm_seed),
                   _sign_flip_p(d - margin, "less", n_permutations, perm_seed))
    boot = d[_resample_within(codes, n_bootstrap, np.random.default_rng(boot_seed), replace=True)].mean(axis=1)
    return Finding(claim, test, n, estimate, _percentile_ci(boot), p, p_eq, margin, expected_sign,
                   note="; ".join(notes))


def _aligned(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"the two arrays must be 1-d and aligned by pair, got shapes {x.shape} and {y.shape}")
    return x, y


def paired_difference(
    claim: str,
    a: Sequence[float],
    b: Sequence[float],
    *,
    strata: Optional[Sequence[Any]] = None,
    larger: str = "a",
    margin: Optional[float] = None,
    n_permutations: int = 10000,
    n_bootstrap: int = 2000,
    seed: int = 0,
    min_pairs: int = MIN_N,
) -> Finding:
    """Paired test of "``a`` is larger (``larger="a"``) or smaller than ``b``", e.g. RL vs SL of the same (seed, delta).

    Test: sign-flip permutation test of the mean of ``d = a - b`` (under "no effect" each pair's difference is as
    likely to have either sign), two-sided; exact over all ``2**n`` sign patterns when ``n <= EXACT_MAX_PAIRS``,
    else ``n_permutations`` seeded Monte Carlo patterns (p = (k + 1) / (n_permutations + 1)).

    Estimate: the stratified mean difference, sum over strata of (stratum size / n) x (mean of d in the stratum).
    With these size weights it equals the plain mean of ``d`` over complete pairs, and since signs flip within pairs
    the test needs no stratum adjustment; ``strata`` (e.g. each pair's delta) matter for the CI: a percentile
    bootstrap that resamples pairs within each stratum, keeping every stratum's size.

    Equivalence (with ``margin``): TOST, ``p_equivalence = max(p(d + margin > 0), p(d - margin < 0))``, each a
    one-sided sign-flip test on the shifted differences (which assumes the differences are symmetric about the
    margin under its null).

    Args:
        claim: The claim in words.
        a: One value per pair (e.g. the RL network's metric); NaN marks a missing network.
        b: The other network of each pair, aligned with ``a``. A pair with a NaN on either side is dropped.
        strata: Optional stratum label per pair (e.g. delta).
        larger: "a" if the paper predicts ``a > b`` (expected sign +1), "b" if ``a < b``.
        margin: Equivalence margin on the scale of ``a - b``; None for no equivalence test.
        n_permutations: Monte Carlo sign patterns when there are more than EXACT_MAX_PAIRS pairs.
        n_bootstrap: Bootstrap resamples for the CI.
        seed: Seeds the Monte Carlo patterns and the bootstrap.
        min_pairs: Fewer complete pairs give nan p-values and the note "too few pairs (n=..)".

    Returns:
        A :class:`Finding` with verdict PENDING (see :func:`decide`).

    Example:
        >>> f = paired_difference("RL > SL", [3, 4, 5, 6, 7, 8, 9, 10], [2, 3, 4, 5, 6, 7, 8, 9])
        >>> f.estimate, f.p_value, f.ci
        (1.0, 0.0078125, (1.0, 1.0))
    """
    if larger not in ("a", "b"):
        raise ValueError(f"larger must be 'a' or 'b', not {larger!r}")
    a, b = _aligned(a, b)
    return _signed_effect(claim, a - b, strata, 1 if larger == "a" else -1, margin, "the mean paired difference",
                          "pairs", n_permutations, n_bootstrap, seed, min_pairs)


def within_network(claim: str, x: Sequence[float], y: Sequence[float], *, larger: str = "x",
                   **options: Any) -> Finding:
    """Paired test of two values measured on the same network, e.g. QP fraction at low vs high |coherence|.

    :func:`paired_difference` on ``d = x - y``, one pair per network: sign-flip permutation test of the mean (exact
    up to EXACT_MAX_PAIRS networks), estimate the (stratified) mean of ``d``, bootstrap CI within strata, TOST with
    ``margin``. A separate name so that a report says which design it tests.

    Args:
        claim: The claim in words.
        x: First value of each network; NaN drops the network.
        y: Second value of each network, aligned with ``x``.
        larger: "x" if the paper predicts ``x > y`` (expected sign +1), "y" if ``x < y``.
        **options: ``strata``, ``margin``, ``n_permutations``, ``n_bootstrap``, ``seed``, ``min_pairs``, as in
            :func:`paired_difference`.

    Returns:
        A :class:`Finding` with verdict PENDING.

    Example:
        >>> f = within_network("QP at low > high coherence", [0.5] * 6, [0.1] * 6)
        >>> round(f.estimate, 3), f.p_value
        (0.4, 0.03125)
    """
    if larger not in ("x", "y"):
        raise ValueError(f"larger must be 'x' or 'y', not {larger!r}")
    return paired_difference(claim, x, y, larger="a" if larger == "x" else "b", **options)


def one_sample(
    claim: str,
    a: Sequence[float],
    level: float,
    *,
    below: bool = True,
    margin: Optional[float] = None,
    strata: Optional[Sequence[Any]] = None,
    n_permutations: int = 10000,
    n_bootstrap: int = 2000,
    seed: int = 0,
    min_pairs: int = MIN_N,
) -> Finding:
    """Test of "the values of ``a`` lie below (``below=True``) or above ``level``", e.g. SL's QP fraction near 0.

    Sign-flip permutation test of the mean of ``d = a - level`` (it assumes ``a`` is symmetric about ``level`` under
    "no effect", so for bounded, skewed metrics prefer a level away from the bound), estimate ``mean(a) - level``
    (0 is "no effect"), bootstrap CI within strata, and with ``margin`` a TOST that ``mean(a)`` lies within
    ``level +- margin`` (e.g. ``level=0, margin=0.05`` for "about zero").

    Args:
        claim: The claim in words.
        a: One value per network; NaN drops the network.
        level: The level the claim compares with.
        below: True if the paper predicts ``a < level`` (expected sign -1), False if above.
        margin: Equivalence margin around ``level``; None for no equivalence test.
        strata: Optional stratum label per network.
        n_permutations: Monte Carlo sign patterns when there are more than EXACT_MAX_PAIRS networks.
        n_bootstrap: Bootstrap resamples for the CI.
        seed: Seeds the Monte Carlo patterns and the bootstrap.
        min_pairs: Fewer networks give nan p-values.

    Returns:
        A :class:`Finding` with verdict PENDING.

    Example:
        >>> f = one_sample("SL QP fraction below 0.05", [0.0, 0.01, 0.0, 0.02, 0.0, 0.01], 0.05)
        >>> f.expected_sign, round(f.estimate, 3), f.p_value
        (-1, -0.043, 0.03125)
    """
    return _signed_effect(claim, np.asarray(a, dtype=float) - level, strata, -1 if below else 1, margin,
                          f"mean(a) - {level:g}", "networks", n_permutations, n_bootstrap, seed, min_pairs)


def _stratified_rho(x: np.ndarray, y: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Size-weighted mean over strata of Spearman's rho within each stratum, along the last axis (``x`` and ``y`` of
    shape (..., n)); strata without variation in x or y are left out; nan if none is left."""
    num = np.zeros(np.broadcast_shapes(x.shape, y.shape)[:-1])
    den = np.zeros_like(num)
    for s in np.unique(codes):
        members = np.flatnonzero(codes == s)
        rx = stats.rankdata(x[..., members], axis=-1)
        ry = stats.rankdata(y[..., members], axis=-1)
        rx = rx - rx.mean(axis=-1, keepdims=True)
        ry = ry - ry.mean(axis=-1, keepdims=True)
        scale = np.sqrt((rx ** 2).sum(axis=-1) * (ry ** 2).sum(axis=-1))
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = (rx * ry).sum(axis=-1) / scale
        valid = scale > 0
        num = num + np.where(valid, rho, 0.0) * len(members)
        den = den + valid * len(members)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def rank_association(
    claim: str,
    x: Sequence[float],
    y: Sequence[float],
    *,
    strata: Optional[Sequence[Any]] = None,
    positive: bool = True,
    n_permutations: int = 10000,
    n_bootstrap: int = 2000,
    seed: int = 0,
    min_pairs: int = MIN_N,
) -> Finding:
    """Test of "``y`` rises (``positive=True``) or falls with ``x``" by Spearman's rank correlation.

    Estimate: Spearman's rho (scipy.stats.spearmanr's value); with ``strata``, the stratum-size-weighted mean of the
    within-stratum rhos, so an association that only runs between strata (e.g. delta moving both x and y) does not
    count. Test: two-sided permutation test, ``y`` permuted within strata, ``n_permutations`` seeded Monte Carlo
    permutations (p = 2 min(k_greater + 1, k_less + 1) / (n_permutations + 1), at most 1). CI: percentile bootstrap
    of (x, y) pairs resampled within strata.

    Args:
        claim: The claim in words.
        x: One value per network; NaN in x or y drops the network.
        y: The other value, aligned with ``x``.
        strata: Optional stratum label per network.
        positive: True if the paper predicts a positive rho.
        n_permutations: Monte Carlo permutations of ``y``.
        n_bootstrap: Bootstrap resamples for the CI.
        seed: Seeds permutations and bootstrap.
        min_pairs: Fewer complete networks give nan p-values and the note "too few networks (n=..)".

    Returns:
        A :class:`Finding` (no equivalence test: ``p_equivalence`` nan) with verdict PENDING.

    Example:
        >>> f = rank_association("y rises with x", [1, 2, 3, 4, 5, 6, 7, 8], [2, 1, 4, 3, 6, 5, 8, 7])
        >>> round(f.estimate, 3), f.p_value < 0.05
        (0.905, True)
    """
    x, y = _aligned(x, y)
    codes = _strata_codes(strata, len(x))
    ok = np.isfinite(x) & np.isfinite(y)
    x, y, codes = x[ok], y[ok], codes[ok]
    n = len(x)
    test = f"Spearman rank correlation, permutation test{' within strata' if strata is not None else ''} " \
           f"(Monte Carlo, {n_permutations} permutations)"
    notes = [f"dropped {int((~ok).sum())} incomplete networks"] if not ok.all() else []
    estimate = float(_stratified_rho(x, y, codes)) if n else _NAN
    sign = 1 if positive else -1
    if n < min_pairs or not np.isfinite(estimate):
        reason = f"too few networks (n={n})" if n < min_pairs else "no variation within any stratum"
        return Finding(claim, test, n, estimate, (_NAN, _NAN), _NAN, _NAN, None, sign,
                       note="; ".join([reason] + notes))
    perm_seed, boot_seed = np.random.SeedSequence(seed).spawn(2)
    null = _stratified_rho(x, y[_resample_within(codes, n_permutations, np.random.default_rng(perm_seed), False)],
                           codes)
    tol = 1e-12 * max(1.0, abs(estimate))  # ties of the statistic count as "at least as extreme"
    k_greater, k_less = np.sum(null >= estimate - tol), np.sum(null <= estimate + tol)
    p = min(1.0, 2 * (min(k_greater, k_less) + 1) / (n_permutations + 1))
    idx = _resample_within(codes, n_bootstrap, np.random.default_rng(boot_seed), replace=True)
    ci = _percentile_ci(_stratified_rho(x[idx], y[idx], codes))
    return Finding(claim, test, n, estimate, ci, float(p), _NAN, None, sign, note="; ".join(notes))


def adjust_p(p: Sequence[float], method: str = "holm") -> np.ndarray:
    """Multiplicity-adjusted p-values over one family; NaN entries are ignored (not counted) and stay NaN.

    Args:
        p: Raw p-values (any shape).
        method: "holm" (Holm-Bonferroni, family-wise error) or "bh" (Benjamini-Hochberg, false discovery rate,
            scipy.stats.false_discovery_control).

    Returns:
        Adjusted p-values, same shape as ``p``, each at most 1.

    Example:
        >>> adjust_p([0.01, 0.04, float("nan"), 0.03]).round(3).tolist()
        [0.03, 0.06, nan, 0.06]
    """
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    q = p[ok]
    if method == "holm":
        order = np.argsort(q, kind="stable")
        adjusted = np.empty_like(q)
        adjusted[order] = np.minimum(1.0, np.maximum.accumulate((len(q) - np.arange(len(q))) * q[order]))
    elif method == "bh":
        adjusted = stats.false_discovery_control(q, method="bh") if q.size else q
    else:
        raise ValueError(f"method must be 'holm' or 'bh', not {method!r}")
    out[ok] = adjusted
    return out


def _verdict_of(f: Finding, p_adj: float, p_eq_adj: float, alpha: float) -> str:
    side = f.expected_sign * np.sign(f.estimate)
    ci_low = min(f.expected_sign * f.ci[0], f.expected_sign * f.ci[1])  # the CI on the expected scale
    if p_adj < alpha and side > 0 and ci_low > 0:
        return REPRODUCED
    if (p_adj < alpha and side < 0) or p_eq_adj < alpha:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def decide(findings: Sequence[Finding], alpha: float = ALPHA, method: str = "holm") -> list[Finding]:
    """Adjust all p-values of the family together and give each finding its verdict.

    One family: every finite ``p_value`` and ``p_equivalence`` of ``findings`` is adjusted together by
    :func:`adjust_p`. Then, per finding:

    * REPRODUCED if ``p_adjusted < alpha``, the estimate lies on the expected side and the CI excludes 0;
    * NOT_REPRODUCED if ``p_adjusted < alpha`` with the estimate on the opposite side, or
      ``p_equivalence_adjusted < alpha`` (the effect lies within the margin: negligible). A significant effect on
      the expected side is REPRODUCED even when it also lies within the margin (checked first);
    * INCONCLUSIVE otherwise, also when p is nan (too few pairs).

    Args:
        findings: The family (e.g. all claims of one report).
        alpha: Level for the adjusted p-values.
        method: "holm" or "bh".

    Returns:
        New findings (the inputs are frozen) with p_adjusted, p_equivalence_adjusted and verdict filled.

    Example:
        >>> f = paired_difference("RL > SL", [3, 4, 5, 6, 7, 8, 9, 10], [2, 3, 4, 5, 6, 7, 8, 9])
        >>> [g.verdict for g in decide([f])]
        ['reproduced']
    """
    findings = list(findings)
    raw = np.array([[f.p_value, f.p_equivalence] for f in findings], dtype=float).reshape(-1, 2)
    adjusted = adjust_p(raw.ravel(), method).reshape(-1, 2)
    return [replace(f, p_adjusted=float(pa), p_equivalence_adjusted=float(pe), verdict=_verdict_of(f, pa, pe, alpha))
            for f, (pa, pe) in zip(findings, adjusted)]
