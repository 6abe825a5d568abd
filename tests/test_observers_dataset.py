"""Reference observers (integrator, Bayes), the supervised dataset and ``dmd demo``."""

import numpy as np
import pytest
from scipy.stats import norm

from dm_envs import TrialDataset, bayes_accuracy, integrator_accuracy, make_config
from dm_envs.config import DECISION


@pytest.mark.parametrize("level", [1, 2, 3])
def test_levels_1_to_3_are_calibrated_for_integration(level):
    acc = integrator_accuracy(make_config(level), n_trials=20000, seed=0)
    assert acc.accuracy >= 0.98
    assert acc.accuracy - 4 * acc.stderr() > 0.975


def test_level_4_is_harder_but_still_reachable_by_integration():
    lvl3 = integrator_accuracy(make_config(3), 20000, seed=0).accuracy
    lvl4 = integrator_accuracy(make_config(4), 20000, seed=0)
    assert 0.95 <= lvl4.accuracy < lvl3
    assert min(lvl4.by_coherence.values()) < 0.9  # the weakest evidence is genuinely hard


def test_integrator_matches_closed_form_under_gaussian_noise():
    # per step, channel1 - channel2 ~ N(c, 2 sigma^2); over T steps the sum's sign is right with prob Phi(c sqrt(T/2)/sigma)
    sigma, T = 0.5, 15
    cfg = make_config(1, noise="gaussian", noise_amplitude=sigma, coherences=[0.1, 0.3])
    res = integrator_accuracy(cfg, n_trials=40000, seed=1)
    for c, acc in res.by_coherence.items():
        expected = norm.cdf(c * np.sqrt(T / 2) / sigma)
        assert abs(acc - expected) < 0.012, (c, acc, expected)
    # under Gaussian noise the summed evidence is sufficient: the Bayes observer equals the integrator
    bayes = bayes_accuracy(cfg, n_trials=40000, seed=1)
    assert abs(bayes.accuracy - res.accuracy) < 0.004


def test_bayes_exploits_bounded_noise():
    # the draft task of the issue: 10 stimulus steps, coherences .05/.15/.5, uniform noise 0.5
    cfg = make_config(3, stimulus=1000, coherences=[0.05, 0.15, 0.5], noise_amplitude=0.5)
    integ = integrator_accuracy(cfg, 20000, seed=2).accuracy
    bayes = bayes_accuracy(cfg, 20000, seed=2).accuracy
    assert 0.82 < integ < 0.86 and 0.91 < bayes < 0.95
    none = make_config(3, noise="none", coherences=[0.05])
    assert integrator_accuracy(none, 500).accuracy == 1.0 and bayes_accuracy(none, 500).accuracy == 1.0


def test_zero_coherence_is_chance_for_both_observers():
    cfg = make_config(1, coherences=[0.0])
    assert abs(integrator_accuracy(cfg, 20000, seed=3).accuracy - 0.5) < 0.015
    assert abs(bayes_accuracy(cfg, 20000, seed=3).accuracy - 0.5) < 0.015


def test_dataset_batches():
    data = TrialDataset(level=3, batch_size=16, seed=4)
    b = data.sample()
    T = b.obs.shape[0]
    assert b.obs.shape == (T, 16, 7) and b.target.shape == (T, 16) and b.mask.dtype == bool
    np.testing.assert_array_equal(b.mask.sum(0), b.trials.length)
    np.testing.assert_array_equal(b.target, b.trials.gt.T)
    w = b.loss_weights(fixate_weight=0.1, decision_weight=2.0)
    assert set(np.unique(w[b.stage == DECISION])) == {2.0}
    assert np.allclose(w[(b.stage >= 0) & (b.stage != DECISION)], 0.1) and (w[~b.mask] == 0).all()
    again = TrialDataset(level=3, batch_size=16, seed=4).sample()
    np.testing.assert_array_equal(again.obs, b.obs)
    inputs, target = data()
    assert inputs.shape[1:] == (16, 7) and target.shape[1] == 16
    with pytest.raises(ValueError, match="batch_size"):
        TrialDataset(batch_size=0)


def test_dmd_demo_runs(capsys):
    from analysis.cli import main

    assert main(["demo", "--trials", "300", "--tasks", "1", "neurogym"]) == 0
    out = capsys.readouterr().out
    assert "level 1" in out and "preset 'neurogym'" in out and "oracle 1.000" in out
