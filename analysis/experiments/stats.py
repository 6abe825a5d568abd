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
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
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
