"""Crystallization times on constructed trajectories, training stability, and PCA / participation ratio."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from analysis.populations.crystallization import (
    decision_crystallization,
    decoder_accuracy,
    lda_fit,
    lda_predict,
    readout_commitment,
    training_crystallization,
)
from analysis.populations.dimensionality import condition_average, participation_ratio, pca_variance
from analysis.populations.groups import assign_populations


# ---------------------------------------------------------------------------------------------------- readout
def _logits_from_preference(pref: np.ndarray) -> np.ndarray:
    """Logits (N, T, 3) whose choice argmax is ``pref`` (0 = choice 1, 1 = choice 2); fixate is always larger."""
    lg = np.zeros(pref.shape + (3,))
    lg[..., 0] = 100.0  # a large fixate logit must be ignored
    lg[..., 1] = np.where(pref == 0, 1.0, -1.0)
    lg[..., 2] = -lg[..., 1]
    return lg


def test_readout_commitment_on_constructed_trajectories():
    pref = np.array(
        [
            [0, 1, 0, 1, 1, 1, 1, 1],  # settles on choice 2 at step 3
            [1, 1, 1, 1, 1, 1, 1, 1],  # never changes: commits at the window start
            [0, 0, 1, 1, 1, 0, 0, 1],  # flips at the very end (last valid step 6): commits at 5
            [1, 0, 1, 0, 1, 0, 0, 0],  # settles on choice 1 at step 5
        ]
    )
    mask = np.ones(pref.shape, bool)
    mask[2, 7:] = False  # trial 2 is one step shorter; its last step is 6
    start = np.array([0, 2, 0, 1])
    com = readout_commitment(_logits_from_preference(pref), mask, start=start)
    assert com.step.tolist() == [3, 2, 5, 5]
    assert com.time.tolist() == [3, 0, 5, 4]
    assert com.final.tolist() == [1, 1, 0, 0]
    assert (com.argmax[1, :2] == -1).all() and com.argmax[2, 7] == -1  # outside the window
    # an explicit end ignores later steps
    com = readout_commitment(_logits_from_preference(pref), mask, end=np.array([3, 8, 8, 8]))
    assert com.step[0] == 2 and com.final[0] == 0


# ---------------------------------------------------------------------------------------------------- decoder
def test_lda_separates_separable_classes_and_handles_silent_units():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 50)
    X = rng.standard_normal((150, 5)) * 0.1
    X[:, 0] += y
    X[:, 3] = 0.0  # silent unit: singular covariance without shrinkage
    W, b, classes = lda_fit(X, y)
    assert (lda_predict(X, W, b, classes) == y).all()
    assert classes.tolist() == [0, 1, 2]


def _signal_trajectories(seed=0, N=240, T=14, H=6, onsets=(4, 8)):
    """The choice appears in the state at a group-dependent step (group 0 at 4, group 1 at 8)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, N)
    group = np.repeat([0.1, 0.4], N // 2)
    h = rng.standard_normal((N, T, H))
    t = np.arange(T)
    onset = np.where(group == 0.1, onsets[0], onsets[1])
    h[:, :, 0] += 6.0 * (2 * y[:, None] - 1) * (t[None, :] >= onset[:, None])
    return h, y, group


def test_decoder_crystallization_per_group():
    h, y, group = _signal_trajectories()
    dec = decoder_accuracy(h, y, groups=group)
    assert dec.crystallization == {"all": 8.0, 0.1: 4.0, 0.4: 8.0}
    assert np.all(dec.accuracy[dec.times >= 8] > 0.99)
    assert np.all(dec.accuracy[dec.times < 4] < 0.7)  # chance before the signal
    # aligned on a per-trial step, the same crossing moves by the offset
    dec = decoder_accuracy(h, y, groups=group, align=np.full(len(y), 2))
    assert dec.crystallization[0.1] == 2.0
    assert dec.n_trials.max() == len(y)


def test_decoder_respects_mask_and_sustained_criterion():
    h, y, group = _signal_trajectories(seed=1)
    h[:, 10, 0] = 0.0  # the signal vanishes at step 10 only
    dec = decoder_accuracy(h, y, sustained=True)
    assert dec.crystallization["all"] == 11.0
    mask = np.ones(h.shape[:2], bool)
    mask[:200, 12:] = False  # few trials remain late
    dec = decoder_accuracy(h, y, mask, min_trials=50)
    assert dec.times.max() == 11


def test_crystallization_wrapper_uses_the_readout():
    h, y, group = _signal_trajectories(seed=2, H=3)
    W_out = np.array([[0.0, 0, 0], [1.0, 0, 0], [-1.0, 0, 0]])  # choice 1 iff unit 0 > 0
    cr = decision_crystallization(h, W_out, groups=group, seed=0)
    assert cr.decoder.crystallization[0.1] == 4.0 and cr.decoder.crystallization[0.4] == 8.0
    by = cr.commitment_by_group()
    # once the signal is on, unit 0 keeps its sign (6 sigma), so commitment is at the onset (or earlier by chance)
    assert by[0.1]["mean"] <= 4.0 and by[0.4]["mean"] <= 8.0 and by[0.4]["mean"] > by[0.1]["mean"]
    np.testing.assert_array_equal(cr.choice, 1 - y)  # y = 1 -> unit 0 positive -> choice 1 (index 0)
    import json

    json.dumps(cr.to_dict())


# ---------------------------------------------------------------------------------------------------- training
def test_training_crystallization_index():
    H = 20
    rng = np.random.default_rng(0)
    final = rng.choice(["G+", "G-", "Ga", "Gs"], H)
    early = rng.choice(["G+", "G-", "Ga", "Gs"], H)
    late = final.copy()
    late[0] = "G+" if final[0] != "G+" else "G-"  # one unit still moving
    seq = [early, early, late, final, final, final]
    tc = training_crystallization(seq, threshold=0.9)
    # transitions: e->e stable, e->late not, late->final not (one unit of a small group), then stable
    assert tc.stable.tolist()[0] and tc.stable.tolist()[-2:] == [True, True]
    assert tc.index == 3
    # attractor types that change at the last transition postpone it
    kinds = [["FP", "FP"], ["FP", "FP"], ["FP", "QP"], ["FP", "QP"], ["FP", "QP"], ["FP", "QP", "QP"]]
    assert training_crystallization(seq, attractor_kinds=kinds).index is None
    kinds = [["FP"]] * 4 + [[SimpleNamespace(kind="FP")]] * 2  # Attractor-like objects read through .kind
    assert training_crystallization(seq, attractor_kinds=kinds).index == 3
    mapping = [{"FP+": "fixed_point", "stim": "quasi_periodic"}] * 6
    assert training_crystallization(seq, attractor_kinds=mapping).index == 3
    # Populations objects work too, and a single checkpoint has no transition
    pops = assign_populations({"FP+": [1, 0], "FP-": [0, 1]})
    assert training_crystallization([pops, pops]).index == 0
    assert training_crystallization([pops]).index is None


# ---------------------------------------------------------------------------------------------------- dimensionality
def test_pca_recovers_a_known_spectrum():
    rng = np.random.default_rng(0)
    n = 50000
    sd = np.array([3.0, 2.0, 1.0, 0.0])
    Q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    X = (rng.standard_normal((n, 4)) * sd) @ Q.T + 5.0
    pca = pca_variance(X)
    np.testing.assert_allclose(pca.explained_variance, sd**2, rtol=0.03, atol=1e-9)
    np.testing.assert_allclose(pca.explained_variance_ratio, sd**2 / 14, atol=0.01)
    np.testing.assert_allclose(np.abs(pca.components[0] @ Q[:, 0]), 1.0, atol=1e-3)
    assert (pca.n_components(0.95), pca.n_components(0.9), pca.n_components(0.6)) == (3, 2, 1)  # 9, 13, 14 of 14
    # PR of the spectrum (9, 4, 1, 0): 14^2 / 98 = 2
    assert participation_ratio(X) == pytest.approx(2.0, rel=0.03)
    assert pca.participation_ratio == pytest.approx(participation_ratio(X), rel=1e-9)
    small = pca_variance(X[:10])  # SVD path
    big = pca_variance(X[:10].copy(), n_components=2)
    np.testing.assert_allclose(small.explained_variance[:2], big.explained_variance)


def test_pca_on_masked_trials_and_condition_average():
    h = np.zeros((2, 3, 2))
    h[0, :, 0] = [1.0, 2.0, 3.0]
    h[1, :, 0] = [10.0, 20.0, 99.0]
    mask = np.array([[True, True, True], [True, True, False]])
    pca = pca_variance(h, mask)
    assert pca.n_samples == 5
    vals, mean, count = condition_average(h, np.array([0, 0]), mask)
    assert mean[0, :, 0].tolist() == [5.5, 11.0, 3.0] and count[0].tolist() == [2, 2, 1]
