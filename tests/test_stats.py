"""Paired-design statistics on data whose answer is known: exact sign-flip p-values, calibration under the null,
strata, TOST, multiplicity adjustment and the three verdicts."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from analysis.experiments import stats
from analysis.experiments.stats import (
    EXACT_MAX_PAIRS,
    INCONCLUSIVE,
    NOT_REPRODUCED,
    PENDING,
    REPRODUCED,
    Finding,
    adjust_p,
    decide,
    one_sample,
    paired_difference,
    rank_association,
    within_network,
)

FAST = dict(n_bootstrap=300)


def paired_data(n: int = 12, effect: float = 1.0, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Pairs whose baselines differ a lot (sd 10) while a - b = effect + small noise (sd 0.3)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0.0, 10.0, n)
    return base + effect + rng.normal(0.0, 0.3, n), base + rng.normal(0.0, 0.3, n)


def test_paired_effect_found_where_unpaired_testing_misses_it():
    a, b = paired_data()
    assert np.all(a > b)  # every pair has the effect: exact two-sided p = 2 / 2**12
    f = paired_difference("a > b", a, b, **FAST)
    assert f.n == 12 and f.p_value == pytest.approx(2 / 2 ** 12) and f.p_value < 0.01
    assert f.estimate == pytest.approx(np.mean(a - b)) and f.ci[0] > 0.5
    # the same values, the pairing broken: between-pair variance hides the effect
    shuffled = np.random.default_rng(7).permutation(b)
    assert paired_difference("a > b, unpaired", a, shuffled, **FAST).p_value > 0.05
    assert sps.mannwhitneyu(a, b).pvalue > 0.05
    assert stats.compare_groups("a > b (groups)", a, b).verdict == INCONCLUSIVE


def test_null_p_values_are_calibrated():
    rng = np.random.default_rng(0)
    p = np.array([paired_difference("null", rng.normal(size=12), rng.normal(size=12), n_bootstrap=10).p_value
                  for _ in range(200)])
    assert 0.02 <= np.mean(p < 0.05) <= 0.09
    assert 0.35 < np.mean(p) < 0.65  # roughly uniform


def test_exact_enumeration_gives_the_known_p():
    d = np.arange(1.0, 9.0)  # all 8 differences positive
    f = paired_difference("a > b", d, np.zeros(8), **FAST)
    assert "exact, 2^8" in f.test
    assert f.p_value == pytest.approx(2 / 256)
    assert stats._sign_flip_p(d, "greater", 10, np.random.SeedSequence(0)) == pytest.approx(1 / 256)
    # the smallest of the 8 negative (sum 34): of the 256 sign patterns of |d|, two reach a sum >= 34 (the observed one
    # and all positive, 36), so p = 2 * 2 / 256; checked against brute-force enumeration too
    d2 = d.copy()
    d2[0] = -1.0
    signs = np.array(np.meshgrid(*[[-1, 1]] * 8)).reshape(8, -1).T
    null = (signs * np.abs(d2)).mean(axis=1)
    expected = 2 * min(np.mean(null >= d2.mean() - 1e-12), np.mean(null <= d2.mean() + 1e-12))
    assert expected == pytest.approx(4 / 256)
    assert paired_difference("a > b", d2, np.zeros(8), **FAST).p_value == pytest.approx(expected)


def test_monte_carlo_beyond_exact_max_pairs_and_determinism():
    a, b = paired_data(n=EXACT_MAX_PAIRS + 4, effect=0.05, seed=3)
    f1 = paired_difference("a > b", a, b, margin=0.5, n_permutations=2000, seed=5, **FAST)
    f2 = paired_difference("a > b", a, b, margin=0.5, n_permutations=2000, seed=5, **FAST)
    f3 = paired_difference("a > b", a, b, margin=0.5, n_permutations=2000, seed=6, **FAST)
    assert "Monte Carlo" in f1.test
    assert f1 == f2
    assert (f1.p_value, f1.ci) != (f3.p_value, f3.ci)
    r1 = rank_association("r", a, b, n_permutations=500, seed=5, **FAST)
    assert r1 == rank_association("r", a, b, n_permutations=500, seed=5, **FAST)


def test_strata_keep_their_size_in_the_bootstrap():
    # d = 1 in one stratum, 0 in the other, no noise: resampling within strata always gives mean 0.5
    d = np.r_[np.ones(6), np.zeros(6)]
    delta = np.r_[np.full(6, 0.5), np.full(6, 1.5)]
    f = paired_difference("a > b", d, np.zeros(12), strata=delta, **FAST)
    assert f.estimate == 0.5 and f.ci == pytest.approx((0.5, 0.5))
    plain = paired_difference("a > b", d, np.zeros(12), **FAST)
    assert plain.ci[0] < 0.4 and plain.ci[1] > 0.6
    with pytest.raises(ValueError):
        paired_difference("a > b", d, np.zeros(12), strata=delta[:5])


def test_rank_association_within_strata_ignores_a_confounded_association():
    rng = np.random.default_rng(11)
    delta = np.repeat([0.5, 1.0, 1.5, 2.0], 8)
    x = 5 * delta + rng.normal(size=32)  # delta moves both x and y; within a delta they are independent
    y = 5 * delta + rng.normal(size=32)
    pooled = rank_association("y rises with x", x, y, n_permutations=2000, **FAST)
    assert pooled.estimate == pytest.approx(sps.spearmanr(x, y).statistic)
    assert pooled.p_value < 0.01 and pooled.ci[0] > 0
    within = rank_association("y rises with x", x, y, strata=delta, n_permutations=2000, **FAST)
    assert within.p_value > 0.05 and abs(within.estimate) < 0.3
    # a within-stratum association is found despite strata that pull the other way
    y2 = -5 * delta + x + 0.3 * rng.normal(size=32)
    found = rank_association("y rises with x", x, y2, strata=delta, n_permutations=2000, **FAST)
    assert found.estimate > 0.8 and found.p_value < 0.01 and found.ci[0] > 0.5


def test_tost_declares_equivalence_only_with_a_wide_margin():
    rng = np.random.default_rng(4)
    base = rng.normal(size=12)
    a, b = base + rng.normal(0.0, 0.01, 12), base
    wide = paired_difference("a = b", a, b, margin=0.1, **FAST)
    narrow = paired_difference("a = b", a, b, margin=0.001, **FAST)
    assert wide.p_equivalence == pytest.approx(1 / 2 ** 12)  # every shifted difference on the same side
    assert narrow.p_equivalence > 0.05
    assert math.isnan(paired_difference("a = b", a, b, **FAST).p_equivalence)


def test_within_network_and_one_sample():
    low = np.array([0.5, 0.6, 0.4, 0.7, 0.55, 0.65, 0.45, 0.5])
    high = low - 0.3
    f = within_network("QP at low > high coherence", low, high, **FAST)
    assert f.estimate == pytest.approx(0.3) and f.p_value == pytest.approx(2 / 256) and f.expected_sign == 1
    assert within_network("x < y", low, high, larger="y", **FAST).expected_sign == -1
    sl = np.array([0.0, 0.01, 0.0, 0.02, 0.0, 0.01, 0.0, 0.0])
    g = one_sample("SL QP fraction below 0.05", sl, 0.05, **FAST)
    assert g.expected_sign == -1 and g.estimate == pytest.approx(sl.mean() - 0.05) and g.p_value == 2 / 256
    eq = one_sample("SL QP fraction about 0", sl, 0.0, margin=0.05, **FAST)
    assert eq.p_equivalence == pytest.approx(1 / 256)
    [h] = decide([g])
    assert h.verdict == REPRODUCED


def test_adjust_p_matches_hand_computed_values():
    p = [0.01, 0.04, 0.03, 0.005, np.nan]
    # Holm, m = 4: sorted 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 -> running max 0.06
    np.testing.assert_allclose(adjust_p(p, "holm"), [0.03, 0.06, 0.06, 0.02, np.nan])
    # BH: sorted p*m/rank = 0.02, 0.02, 0.04, 0.04; running min from the top keeps them
    np.testing.assert_allclose(adjust_p(p, "bh"), [0.02, 0.04, 0.04, 0.02, np.nan])
    np.testing.assert_allclose(adjust_p([0.5, 0.6], "holm"), [1.0, 1.0])
    assert adjust_p([np.nan]).tolist()[0] != adjust_p([np.nan]).tolist()[0]  # NaN stays NaN
    with pytest.raises(ValueError):
        adjust_p(p, "bonferroni")


def test_decide_gives_each_verdict():
    a, b = paired_data(n=12, effect=1.0)
    rng = np.random.default_rng(9)
    base = rng.normal(size=12)
    findings = [
        paired_difference("a > b, true", a, b, **FAST),  # reproduced
        paired_difference("b > a, false", a, b, larger="b", **FAST),  # significant the other way
        paired_difference("a > b, negligible", base + rng.normal(0, 0.01, 12), base, margin=0.2, **FAST),
        paired_difference("a > b, noise", rng.normal(size=12), rng.normal(size=12), **FAST),
        paired_difference("a > b, too few", a[:4], b[:4], **FAST),
    ]
    assert all(f.verdict == PENDING for f in findings)
    decided = decide(findings)
    assert [f.verdict for f in decided] == [REPRODUCED, NOT_REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, INCONCLUSIVE]
    # one family: every finite p and TOST p adjusted together
    raw = np.array([[f.p_value, f.p_equivalence] for f in findings]).ravel()
    expected = adjust_p(raw).reshape(-1, 2)
    np.testing.assert_allclose([[f.p_adjusted, f.p_equivalence_adjusted] for f in decided], expected)
    assert decided[4].note == "too few pairs (n=4)" and math.isnan(decided[4].p_adjusted)
    # significant but the CI straddles 0: inconclusive
    odd = Finding("c", "t", 12, 0.1, (-0.05, 0.3), 0.001, np.nan, None, 1)
    assert decide([odd])[0].verdict == INCONCLUSIVE


def test_incomplete_pairs_are_dropped_and_too_few_is_inconclusive():
    a, b = paired_data(n=8)
    a[1], b[5] = np.nan, np.nan
    f = paired_difference("a > b", a, b, **FAST)
    assert f.n == 6 and "dropped 2 incomplete pairs" in f.note and f.p_value == pytest.approx(2 / 64)
    g = paired_difference("a > b", a, b, min_pairs=7, **FAST)
    assert g.note.startswith("too few pairs (n=6)") and math.isnan(g.p_value) and math.isnan(g.ci[0])
    assert decide([g])[0].verdict == INCONCLUSIVE
    r = rank_association("r", a[:4], b[:4], **FAST)
    assert r.note.startswith("too few networks") and decide([r])[0].verdict == INCONCLUSIVE


def test_finding_to_dict_is_json_friendly():
    f = paired_difference("a > b", *paired_data(n=8), **FAST)
    d = decide([f])[0].to_dict()
    assert d["p_equivalence"] is None and d["margin"] is None and isinstance(d["ci"], list)
    assert json.loads(json.dumps(d, allow_nan=False))["verdict"] == REPRODUCED
    with pytest.raises(ValueError):
        Finding("c", "t", 1, 0.0, (0.0, 0.0), 0.5, np.nan, None, 0)
