"""The numpy forward, silencing exactly the units asked for, kicks, and robustness curves of a hand-built integrator."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.network import Network
from analysis.populations.robustness import (
    ablation_curve,
    ablation_masks,
    evaluate,
    kick_robustness,
    noise_robustness,
)
from dm_envs import make_config, sample_trials, score_actions


def integrator_network(n_silent: int = 3) -> Network:
    """A ReLU network that solves the one-stream delayed task (level 2, inputs [fix, choice1, choice2]).

    Unit 0 copies the fixation input (a huge fixate logit until the go cue); units 1 and 2 integrate the evidence
    ``choice1 - choice2`` and its opposite with self-weight 1 (they hold it through the delay); the rest are silent.
    """
    H = 3 + n_silent
    W = np.zeros((H, H))
    W[1, 1] = W[2, 2] = 1.0
    W_in = np.zeros((H, 3))
    W_in[0, 0] = 1.0
    W_in[1, 1:] = [1.0, -1.0]
    W_in[2, 1:] = [-1.0, 1.0]
    W_in[3:, 0] = -1.0
    W_out = np.zeros((3, H))
    W_out[0, 0] = 100.0
    W_out[1, 1:3] = [1.0, -1.0]
    W_out[2, 1:3] = [-1.0, 1.0]
    return Network(W, W_in, W_out)


def _reference_forward(w: Network, obs: np.ndarray, keep=None):
    N, T, _ = obs.shape
    h = np.zeros((N, w.hidden_size))
    out = np.zeros((N, T, w.hidden_size))
    for t in range(T):
        h = np.maximum(h @ w.W_rec.T + obs[:, t] @ w.W_in.T + w.b_rec, 0.0)
        if keep is not None:
            h = h * keep
        out[:, t] = h
    return out


def test_forward_matches_the_map_and_the_sb3_step_order():
    w = Network.random(20, 7, 3, delta=0.3, seed=0)
    w = Network(w.W_rec, w.W_in, w.W_out, b_rec=np.full(20, 0.01), b_out=np.array([0.1, 0.0, -0.1]))
    trials = sample_trials(make_config(3), 30, 1)
    run = w.forward(trials.obs)
    np.testing.assert_allclose(run.hidden, _reference_forward(w, trials.obs), atol=1e-12)
    # h_0 is computed from x_0 (state after reading the first input), logits from the same state
    np.testing.assert_allclose(run.hidden[:, 0], np.maximum(trials.obs[:, 0] @ w.W_in.T + 0.01, 0), atol=1e-12)
    np.testing.assert_allclose(run.logits, run.hidden @ w.W_out.T + w.b_out, atol=1e-12)
    assert run.actions.dtype == np.int64 and (run.actions == run.logits.argmax(-1)).all()
    run32 = w.forward(trials.obs, dtype=np.float32)
    np.testing.assert_allclose(run32.hidden, run.hidden, rtol=1e-4, atol=1e-5)


def test_silencing_clamps_exactly_the_requested_units_and_equals_the_reduced_network():
    w = Network.random(30, 7, 3, delta=0.3, seed=2)
    trials = sample_trials(make_config(3), 25, 3)
    silenced = np.array([0, 7, 8, 29])
    keep = np.ones(30, bool)
    keep[silenced] = False
    run = w.forward(trials.obs, unit_mask=keep)
    assert np.all(run.hidden[:, :, silenced] == 0.0)
    full = w.forward(trials.obs)
    assert np.all(np.any(full.hidden[:, :, silenced] > 0, axis=(0, 1)))  # they were active before
    # the remaining units behave exactly as the network with those units deleted
    kept = np.flatnonzero(keep)
    reduced = Network(w.W_rec[np.ix_(kept, kept)], w.W_in[kept], w.W_out[:, kept])
    np.testing.assert_allclose(run.hidden[:, :, kept], reduced.forward(trials.obs).hidden, atol=1e-12)
    np.testing.assert_allclose(run.logits, reduced.forward(trials.obs).logits, atol=1e-12)
    # per-trial masks: trial 0 silences unit 1 only, the others nothing
    masks = np.ones((25, 30), bool)
    masks[0, 1] = False
    run = w.forward(trials.obs, unit_mask=masks)
    assert np.all(run.hidden[0, :, 1] == 0) and np.allclose(run.hidden[1:], full.hidden[1:])


def test_ablation_masks_draw_exactly_k_units_from_the_pool():
    pool = np.array([3, 5, 8, 13, 21])
    for k in range(1, 6):
        m = ablation_masks(25, k, pool, n_repeats=7, rng=k)
        silenced = ~m
        assert (silenced.sum(axis=1) == k).all()
        assert not silenced[:, np.setdiff1d(np.arange(25), pool)].any()
    assert ablation_masks(25, 6, pool, 3, 0) is None
    np.testing.assert_array_equal(ablation_masks(25, 3, pool, 4, 9), ablation_masks(25, 3, pool, 4, 9))


def test_ablation_curve_reproduces_manual_silencing():
    w = integrator_network()
    cfg = make_config(2)
    trials = sample_trials(cfg, 200, 0)
    groups = {"integrators": [1, 2], "silent": [3, 4, 5]}
    ab = ablation_curve(w, trials, ks=(1, 2, 3), groups=groups, n_repeats=3, seed=5, dtype=np.float64)
    assert ab.groups == ("random", "integrators", "silent")
    assert ab.baseline == evaluate(w, trials).accuracy > 0.8
    # silencing silent units changes nothing; silencing both integrators leaves no choice at all
    np.testing.assert_array_equal(ab.accuracy[2], ab.baseline)
    np.testing.assert_array_equal(ab.accuracy[1, 1], 0.0)
    assert np.isnan(ab.accuracy[1, 2]).all()  # k = 3 > 2 units in the pool
    # each entry equals scoring the same masks by hand (same generator stream)
    masks = ablation_masks(6, 2, np.arange(6), 3, np.random.default_rng([5, 0, 2]))
    manual = [score_actions(trials, w.forward(trials.obs, unit_mask=m).actions).accuracy for m in masks]
    np.testing.assert_allclose(ab.accuracy[0, 1], manual)


def test_kicks_hit_the_requested_step_only():
    w = Network.random(12, 7, 3, delta=0.3, seed=4)
    trials = sample_trials(make_config(3), 6, 0)
    rng = np.random.default_rng(0)
    kick = rng.standard_normal((6, 12))
    step = np.array([3, 5, -1, 10, 0, 7])
    base = w.forward(trials.obs)
    run = w.forward(trials.obs, kick=kick, kick_step=step)
    for n in range(6):
        s = step[n]
        if s < 0:
            np.testing.assert_array_equal(run.hidden[n], base.hidden[n])
            continue
        np.testing.assert_array_equal(run.hidden[n, :s], base.hidden[n, :s])
        np.testing.assert_allclose(run.hidden[n, s], np.maximum(base.hidden[n, s] + kick[n], 0.0), atol=1e-12)
    rel = w.forward(trials.obs, kick=kick, kick_step=step, kick_relative=True)
    norm = np.linalg.norm(base.hidden[0, 3])
    np.testing.assert_allclose(rel.hidden[0, 3], np.maximum(base.hidden[0, 3] + norm * kick[0], 0.0), atol=1e-12)


def test_integrator_robustness_curves():
    w = integrator_network()
    cfg = make_config(2)
    nc = noise_robustness(w, cfg, scales=(0.5, 1.0, 4.0), n_trials=400, seed=0, dtype=np.float64)
    assert nc.amplitude.tolist() == [0.125, 0.25, 1.0]
    assert nc.accuracy[1] > 0.85 and nc.accuracy[0] >= nc.accuracy[1] > nc.accuracy[2] + 0.05
    again = noise_robustness(w, cfg, scales=(0.5, 1.0, 4.0), n_trials=400, seed=0, dtype=np.float64)
    np.testing.assert_array_equal(nc.accuracy, again.accuracy)  # same seed, same numbers
    trials = sample_trials(cfg, 300, 1)
    kc = kick_robustness(w, trials, sizes=(0.0, 0.05, 20.0), n_repeats=2, seed=0, dtype=np.float64)
    assert kc.n_eligible == int((evaluate(w, trials).choice >= 0).sum()) > 250
    assert kc.survival[0] == 1.0 and kc.survival[1] > 0.9 and kc.survival[2] < 0.8
    with pytest.raises(ValueError, match="no input noise"):
        noise_robustness(w, cfg.replace(noise="none"))
