"""Functional connectivity graph, its statistics, partition agreement and structural blocks, on known structure."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from analysis.populations.connectivity import (
    adjusted_rand_index,
    community_alignment,
    functional_connectivity,
    graph_statistics,
    normalized_mutual_information,
    structural_blocks,
)


def _modules(ar1, seed=0, n=4000, rho=0.8):
    """Units 0-5 share latent a, units 6-11 share latent b, units 12-19 independent; all autocorrelated."""
    rng = np.random.default_rng(seed)
    latent = ar1(rng, n, 2, rho)
    noise = ar1(rng, n, 20, rho)
    x = noise.copy()
    x[:, :6] += 1.0 * latent[:, [0]]
    x[:, 6:12] += 1.0 * latent[:, [1]]
    return np.maximum(x, 0.0)  # ReLU activity: ties at zero


def test_planted_modules_are_recovered_exactly(ar1):
    x = _modules(ar1)
    fc = functional_connectivity(x, n_shuffles=100, min_shift=50)
    expected = np.zeros((20, 20), bool)
    expected[:6, :6] = expected[6:12, 6:12] = True
    np.fill_diagonal(expected, False)
    np.testing.assert_array_equal(fc.adjacency, expected)
    assert (fc.weight == fc.weight.T).all() and (np.diag(fc.weight) == 0).all()
    s = fc.stats()
    assert s["n_edges"] == 2 * 15
    assert s["density"] == pytest.approx(30 / 190)
    assert s["n_isolated"] == 8 and s["average_clustering"] == pytest.approx(12 / 20)
    labels = np.array(["A"] * 6 + ["B"] * 6 + ["C"] * 8)
    comm = np.asarray(s["communities"])
    assert community_alignment(comm, labels, include=["A", "B"])["ari"] == 1.0
    assert s["modularity"] == pytest.approx(0.5, abs=0.01)  # two equal cliques (MI-weighted: nearly equal weights)


def test_spearman_weights_equal_scipy_and_find_the_same_graph(ar1):
    x = _modules(ar1)  # same data as above; exact recovery fails with probability <= alpha (FWER, tested below)
    fc = functional_connectivity(x, method="spearman", n_shuffles=100, min_shift=50)
    rho = stats.spearmanr(x).statistic
    np.fill_diagonal(rho, 0.0)
    np.testing.assert_allclose(fc.weight, rho, atol=1e-10)
    assert fc.adjacency[:6, :6].sum() == 30 and fc.adjacency[12:].sum() == 0


def test_independent_autocorrelated_units_keep_nominal_false_positive_rate(ar1):
    rng = np.random.default_rng(2)
    x = ar1(rng, 4000, 30, 0.9)
    fc = functional_connectivity(x, n_shuffles=200, min_shift=50, alpha=0.05)
    iu = np.triu_indices(30, 1)
    frac = (fc.pvalue[iu] < 0.05).mean()  # 435 pairs
    assert 0.02 <= frac <= 0.09
    assert fc.adjacency.sum() <= 2  # Holm: almost never an edge


def test_three_dimensional_input_with_mask_and_silent_units():
    rng = np.random.default_rng(3)
    h = np.maximum(rng.standard_normal((40, 25, 5)), 0.0)
    h[:, :, 1] = h[:, :, 0] * 2.0  # a perfect copy (monotone): maximal dependence
    h[:, :, 4] = 0.0  # a silent unit
    mask = np.ones((40, 25), bool)
    mask[:, 20:] = False
    fc = functional_connectivity(h, mask, method="spearman", n_shuffles=50)
    assert fc.n_samples == 40 * 20
    assert fc.settings["min_shift"] == 25
    assert fc.adjacency[0, 1] and fc.weight[0, 1] == pytest.approx(1.0)
    assert not fc.adjacency[4].any() and (fc.pvalue[4, :4] == 1.0).all()


def test_ari_and_nmi_against_reference_values():
    # reference values of sklearn.metrics.adjusted_rand_score / normalized_mutual_info_score
    assert adjusted_rand_index([0, 0, 1, 1], [1, 1, 0, 0]) == 1.0
    assert adjusted_rand_index([0, 0, 1, 1], [0, 0, 1, 2]) == pytest.approx(4 / 7)
    assert adjusted_rand_index([0, 0, 0, 0], [0, 1, 2, 3]) == 0.0
    assert adjusted_rand_index([0, 0, 1, 2], [0, 0, 1, 1]) == pytest.approx(4 / 7)
    assert adjusted_rand_index([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(-0.5)
    assert normalized_mutual_information([0, 0, 1, 1], [0, 0, 1, 2]) == pytest.approx(0.8)
    assert normalized_mutual_information(["a", "a", "b", "b"], [5, 5, 7, 7]) == 1.0
    assert normalized_mutual_information([0, 0, 1, 1], [0, 1, 0, 1]) == 0.0
    # chance level for independent random partitions
    rng = np.random.default_rng(4)
    aris = [adjusted_rand_index(rng.integers(0, 3, 300), rng.integers(0, 3, 300)) for _ in range(20)]
    assert abs(np.mean(aris)) < 0.01


def test_graph_statistics_of_two_triangles():
    A = np.zeros((7, 7))
    A[:3, :3] = A[3:6, 3:6] = 1
    np.fill_diagonal(A, 0)
    s = graph_statistics(A)
    assert s["n_edges"] == 6 and s["n_isolated"] == 1 and s["n_components"] == 3
    assert s["degree"] == [2, 2, 2, 2, 2, 2, 0]
    assert s["n_communities"] == 3 and s["modularity"] == pytest.approx(0.5)
    assert s["communities"][:3] == [s["communities"][0]] * 3
    empty = graph_statistics(np.zeros((3, 3)))
    assert empty["n_edges"] == 0 and np.isnan(empty["modularity"])


def test_structural_blocks_by_population():
    W = np.array(
        [
            [0.5, 1.0, -1.0, 0.0],
            [3.0, 0.5, -3.0, 0.0],
            [-2.0, -2.0, 9.0, 1.0],
            [0.0, 0.0, 2.0, 0.0],
        ]
    )  # W[post, pre]
    b = structural_blocks(W, ["G+", "G+", "G-", "Gs"], groups=["G+", "G-", "Gs"])
    assert b["mean"][0][0] == pytest.approx(2.0)  # G+ -> G+ off-diagonal: 1 and 3
    assert b["mean"][0][1] == pytest.approx(-2.0)  # G- -> G+: -1, -3
    assert b["mean"][1][0] == pytest.approx(-2.0)  # G+ -> G-
    assert np.isnan(b["mean"][1][1])  # only the (excluded) self-connection
    assert b["n"][0][0] == 2 and b["positive_fraction"][2][1] == 1.0
    b = structural_blocks(W, ["G+", "G+", "G-", "Gs"], exclude_self=False)
    assert b["mean"][b["groups"].index("G-")][b["groups"].index("G-")] == 9.0
