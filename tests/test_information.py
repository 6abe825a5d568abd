"""GCMI estimator, circular-shift significance, Holm correction and per-unit selectivity on data with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, special, stats

from analysis.populations.information import (
    copnorm,
    holm,
    mi_shift_null,
    mutual_information,
    selectivity,
    shift_pvalues,
    task_variables,
)


# ---------------------------------------------------------------------------------------------------- estimator
@pytest.mark.parametrize("rho", [0.2, 0.5, 0.8, 0.95])
def test_gcmi_matches_closed_form_for_correlated_gaussians(rho):
    rng = np.random.default_rng(0)
    n = 20000
    x = rng.standard_normal(n)
    y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal(n)
    true = -0.5 * np.log(1 - rho**2)  # nats
    mi = mutual_information(x, y)
    # A bits/nats mix-up (x1.44) or a missing 1/2 (x2) is far outside this band.
    assert abs(mi - true) < 0.01 + 0.03 * true


def test_gcmi_is_invariant_to_monotone_transforms():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3000, 4))
    y = x[:, 0] + rng.standard_normal(3000)
    a = mutual_information(x, y)
    b = mutual_information(np.exp(x) * 3.0 + 1.0, y**3)
    np.testing.assert_allclose(a, b, atol=1e-12)


def test_gcmi_independent_is_zero_and_bias_correction_removes_the_offset():
    rng = np.random.default_rng(2)
    n, m = 10000, 400
    x = rng.standard_normal((n, m))
    y = rng.standard_normal(n)
    plug_in = mutual_information(x, y, biascorrect=False)
    corrected = mutual_information(x, y)
    # plug-in MI of independent data is chi2_1 / (2n) on average: 1 / (2n) = 5e-5
    assert 3.5e-5 < plug_in.mean() < 6.5e-5
    assert abs(corrected.mean()) < 1.5e-5
    assert np.abs(corrected).max() < 1.5e-3


def _mixture_mi(mu: float) -> float:
    """True MI (nats) between a fair binary label and x | label ~ N(+-mu, 1)."""

    def integrand(x: float) -> float:
        p1, p2 = stats.norm.pdf(x, mu), stats.norm.pdf(x, -mu)
        mix = 0.5 * (p1 + p2)
        return 0.5 * p1 * np.log(p1 / mix) + 0.5 * p2 * np.log(p2 / mix)

    return integrate.quad(integrand, -12 - mu, 12 + mu)[0]


@pytest.mark.parametrize("mu", [0.25, 0.5, 1.0])
def test_discrete_gcmi_is_a_tight_lower_bound_for_a_gaussian_mixture(mu):
    rng = np.random.default_rng(3)
    n = 40000
    y = rng.integers(0, 2, n)
    x = rng.standard_normal(n) + mu * (2 * y - 1)
    true = _mixture_mi(mu)
    mi = mutual_information(x, y)
    assert mi <= true + 0.005  # a lower bound (up to sampling error)
    assert mi >= 0.85 * true  # and a tight one for overlapping classes


def _ince_mi_model_gd(x: np.ndarray, y: np.ndarray) -> float:
    """Reference: Ince et al.'s ``mi_model_gd`` (bias-corrected, nats) on already copula-normalised 1-D ``x``."""
    classes = np.unique(y)
    ln2 = np.log(2)

    def ent(v: np.ndarray) -> float:
        m = v.size
        h = 0.5 * np.log(np.var(v, ddof=1))
        return h - (ln2 - np.log(m - 1.0)) / 2.0 - special.psi((m - 1) / 2.0) / 2.0

    return ent(x) - sum(np.mean(y == c) * ent(x[y == c]) for c in classes)


def test_vectorised_discrete_gcmi_equals_the_reference_formula():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 900)
    x = rng.standard_normal((900, 5)) + np.array([0.0, 0.3, 1.0, -0.5, 2.0]) * y[:, None]
    gx = copnorm(x, seed=0)
    ours = mutual_information(x, y, seed=0)
    ref = [_ince_mi_model_gd(gx[:, j], y) for j in range(5)]
    np.testing.assert_allclose(ours, ref, atol=1e-10)


def test_copnorm_gives_normal_scores_and_breaks_ties_independently_per_unit():
    z = copnorm(np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0]]), seed=0)
    # each column is a permutation of the normal quantiles of ranks 1..4 / 5
    q = special.ndtri(np.arange(1, 5) / 5)
    for j in range(2):
        np.testing.assert_allclose(np.sort(z[:, j]), q)
    assert z[2, 0] == q[-1]  # the single non-zero value is the largest
    avg = copnorm(np.array([0.0, 0.0, 1.0]), ties="average")
    assert avg[0] == avg[1] < avg[2]


# ---------------------------------------------------------------------------------------------------- shift test
@pytest.mark.parametrize("discrete", [False, True])
def test_fft_shift_null_equals_explicit_rolls(discrete):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((600, 4))
    y = rng.integers(0, 3, 600) if discrete else rng.standard_normal(600)
    shifts = [0, 1, 37, 599]
    null = mi_shift_null(x, y, shifts)
    ref = np.array([mutual_information(x, np.roll(y, s), biascorrect=False) for s in shifts])
    np.testing.assert_allclose(null, ref, atol=1e-6)


def test_holm_against_hand_computed_example():
    # sorted p: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> 0.06 by monotonicity)
    reject, adj = holm([0.01, 0.04, 0.03, 0.005], alpha=0.05)
    assert reject.tolist() == [True, False, False, True]
    np.testing.assert_allclose(adj, [0.03, 0.06, 0.06, 0.02])
    reject, adj = holm(np.array([[0.001, np.nan], [0.5, 0.02]]), alpha=0.05)
    assert reject.tolist() == [[True, False], [False, True]]  # NaN is not a test: family of 3
    np.testing.assert_allclose(adj[~np.isnan(adj)], [0.003, 0.5, 0.04])


def test_shift_pvalues_empirical_and_gamma():
    null = np.random.default_rng(6).gamma(0.5, 1e-3, size=(2000, 3))
    obs = np.array([1e-2, 5e-4, -1.0])
    emp = shift_pvalues(obs, null, "empirical")
    assert emp[0] == 1 / 2001 and emp[2] == 1.0
    gam = shift_pvalues(obs, null, "gamma")
    assert gam[0] < 1e-4  # parametric tail goes below 1/(S+1)
    assert abs(gam[1] - stats.gamma.sf(5e-4, 0.5, scale=1e-3)) < 0.03
    assert gam[2] == 1.0


def _trial_data(ar1, seed: int, N: int = 300, T: int = 20, H: int = 100, rho: float = 0.9):
    """Autocorrelated unit activity (AR(1) over the concatenated trials) and per-trial variables, independent."""
    rng = np.random.default_rng(seed)
    x = ar1(rng, N * T, H, rho).reshape(N, T, H)
    variables = {"context": rng.integers(0, 2, N), "coherence": rng.choice([-0.4, -0.1, 0.1, 0.4], N)}
    return x, variables


@pytest.mark.parametrize("pvalue", ["empirical", "gamma"])
def test_shift_test_keeps_false_positive_rate_near_nominal_on_autocorrelated_data(pvalue, ar1):
    x, variables = _trial_data(ar1, 7)
    sel = selectivity(x, variables, two_stage=False, n_shuffles=500, pvalue=pvalue, alpha=0.05)
    frac = (sel.pvalue < 0.05).mean()  # 200 tests (100 units x 2 variables)
    assert 0.015 <= frac <= 0.09
    assert sel.significant.sum() <= 1  # Holm keeps the family-wise rate
    # An invalid null (i.i.d. permutations, ignoring autocorrelation) inflates the rate several-fold on the same data.
    rng = np.random.default_rng(0)
    g = copnorm(x.reshape(-1, x.shape[2]))
    y = np.repeat(variables["context"], x.shape[1]).astype(np.float64)
    y -= y.mean()
    obs = np.abs(y @ g)
    perm = np.abs(np.stack([rng.permutation(y) for _ in range(200)]) @ g)
    p_perm = (1 + (perm >= obs).sum(0)) / 201
    assert (p_perm < 0.05).mean() > 3 * 0.05


# ---------------------------------------------------------------------------------------------------- selectivity
def _planted(seed: int = 8):
    rng = np.random.default_rng(seed)
    N, T, H = 200, 15, 12
    ctx = rng.integers(0, 2, N)
    coh = rng.choice([-0.4, -0.2, 0.2, 0.4], N)
    h = np.maximum(rng.standard_normal((N, T, H)), 0.0)  # ReLU-like: many exact zeros
    h[:, :, 0] += 1.5 * ctx[:, None]
    h[:, :, 1] += 3.0 * coh[:, None]
    h[:, :, 2] += 1.5 * ctx[:, None] + 3.0 * coh[:, None]
    stage = np.broadcast_to(np.repeat([0, 1, 2], 5), (N, T))
    h[:, 5:10, 3] += 4.0 * coh[:, None]  # coherence only in stage 1
    return h, {"context": ctx, "coherence": coh}, stage


def test_selectivity_finds_planted_units_and_mixed_selectivity():
    h, variables, stage = _planted()
    sel = selectivity(h, variables, stage=stage, stage_names={0: "a", 1: "b", 2: "c"}, n_shuffles=2000)
    expected_ctx = [True, False, True] + [False] * 9
    expected_coh = [False, True, True, True] + [False] * 8
    assert sel.significant[0].tolist() == expected_ctx
    assert sel.significant[1].tolist() == expected_coh
    assert sel.fraction_selective() == {"context": 2 / 12, "coherence": 3 / 12}
    assert sel.mixed_fraction() == 1 / 12
    assert sel.discrete == (True, False)
    # stage-resolved information: unit 3 carries coherence in stage "b" only
    assert sel.stage_mi["b"][1, 3] > 0.3
    assert abs(sel.stage_mi["a"][1, 3]) < 0.02 and abs(sel.stage_mi["c"][1, 3]) < 0.02
    labels = np.array(["G+"] * 3 + ["G-"] * 9)
    pop = sel.by_population(labels)
    assert pop["G+"]["context"]["fraction_selective"] == 2 / 3
    assert pop["G-"]["context"]["n_units"] == 9
    stage_pop = sel.stage_by_population(labels)
    assert stage_pop["b"]["G-"]["coherence"] > stage_pop["a"]["G-"]["coherence"]


def test_selectivity_is_deterministic_for_a_seed():
    h, variables, _ = _planted(9)
    a = selectivity(h, variables, n_shuffles=300, seed=3)
    b = selectivity(h, variables, n_shuffles=300, seed=3)
    np.testing.assert_array_equal(a.mi, b.mi)
    np.testing.assert_array_equal(a.pvalue, b.pvalue)


def test_task_variables_from_dm_envs_trials():
    from dm_envs import make_config, sample_trials

    trials = sample_trials(make_config(3), 16, 0)
    actions = np.zeros(trials.gt.shape, np.int64)
    actions[trials.stage == 3] = 1  # always choose 1
    v = task_variables(trials, actions=actions)
    assert set(v) == {"context", "coherence_1", "coherence_2", "relevant_coherence", "correct_choice",
                      "chosen_action", "stage"}
    assert v["context"].dtype.kind == "i" and v["coherence_1"].dtype.kind == "f"
    assert (v["chosen_action"] == 0).all()
    np.testing.assert_array_equal(v["relevant_coherence"],
                                  trials.signed_coherence[np.arange(16), trials.context])
    sel = selectivity(np.random.default_rng(0).random((16, trials.n_steps, 3)), v, trials.mask, n_shuffles=50,
                      n_shuffles_stage1=20)
    assert sel.variables == tuple(v)
    i = list(v).index("chosen_action")
    assert not sel.significant[i].any() and (sel.pvalue[i] == 1.0).all()  # a constant variable: never selective


def test_joint_gcmi_matches_closed_form_and_population_information():
    from analysis.populations.information import population_information

    rng = np.random.default_rng(10)
    n = 20000
    x = rng.standard_normal((n, 2))
    y = 0.6 * x[:, 0] + 0.5 * x[:, 1] + 0.6 * rng.standard_normal(n)
    r2 = (0.36 + 0.25) / (0.36 + 0.25 + 0.36)  # squared multiple correlation
    joint = mutual_information(x, y, multivariate=True)
    assert abs(joint - (-0.5 * np.log(1 - r2))) < 0.02
    assert joint > mutual_information(x, y).max() + 0.1  # more than either unit alone
    # per population: only population A carries the context
    ctx = rng.integers(0, 2, 400)
    h = rng.random((400, 10, 4))
    h[:, :, :2] += 0.5 * ctx[:, None, None]
    stage = np.broadcast_to(np.repeat([0, 1], 5), (400, 10))
    info = population_information(h, {"context": ctx}, ["A", "A", "B", "B"], stage=stage, stage_names={0: "x", 1: "y"})
    assert set(info) == {"all stages", "x", "y"}
    assert info["all stages"]["A"]["context"] > 0.3 and abs(info["all stages"]["B"]["context"]) < 0.01
    assert info["x"]["all"]["context"] >= info["x"]["A"]["context"] - 0.01
