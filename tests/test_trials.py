"""The trial generator: structure, channel contents, noise and determinism."""

import numpy as np
import pytest

from dm_envs import STAGES, make_config, sample_trials, stage_input
from dm_envs.config import DECISION, DELAY, FIXATION, PADDING, STIMULUS


def test_shapes_and_stage_structure():
    cfg = make_config(3)
    tr = sample_trials(cfg, 200, rng=1)
    n, t_max, d = tr.obs.shape
    assert (n, d) == (200, cfg.obs_dim) and tr.obs.dtype == np.float32
    assert t_max == tr.length.max() <= cfg.max_trial_steps
    assert np.array_equal(tr.length, tr.duration.sum(1))
    for i in range(0, 200, 37):
        expected = np.concatenate([np.full(dur, k) for k, dur in enumerate(tr.duration[i])])
        assert np.array_equal(tr.stage[i, : tr.length[i]], expected)
        assert (tr.stage[i, tr.length[i] :] == PADDING).all()
        assert np.array_equal(tr.onset[i], np.concatenate([[0], np.cumsum(tr.duration[i])[:-1]]))
    lo, hi = cfg.stage_step_range("delay")
    assert tr.duration[:, DELAY].min() == lo and tr.duration[:, DELAY].max() <= hi
    uni = sample_trials(make_config(3, delay=("uniform", 300, 1000)), 300, rng=1).duration[:, DELAY]
    assert (uni.min(), uni.max()) == (3, 10)  # both ends of a uniform delay are reachable
    # ground truth: fixate until the decision stage, then the correct action
    assert (tr.gt[tr.stage != DECISION] == 0).all()
    dec = tr.stage == DECISION
    assert np.array_equal(tr.gt[dec], np.broadcast_to(tr.correct_choice[:, None] + 1, tr.gt.shape)[dec])


def test_same_seed_same_trials_and_different_seed_differs():
    cfg = make_config(3)
    a, b, c = (sample_trials(cfg, 50, rng=s) for s in (7, 7, 8))
    for field in ("obs", "gt", "stage", "coherence", "direction", "context"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.obs, c.obs)


def test_channels_carry_what_the_docstring_says():
    cfg = make_config(3, noise="none")
    tr = sample_trials(cfg, 300, rng=2)
    stim = tr.stage == STIMULUS
    # fixation input: on through fixation, stimulus and delay (go cue at decision), off in the padding
    assert (tr.obs[..., 0][tr.stage == DECISION] == 0).all()
    assert (tr.obs[..., 0][np.isin(tr.stage, [FIXATION, STIMULUS, DELAY])] == 1).all()
    # context one-hot on the whole trial, matching the context that decides
    ctx = tr.obs[:, 0, cfg.context_slice]
    assert np.array_equal(ctx.argmax(1), tr.context) and np.allclose(ctx.sum(1), 1)
    assert (tr.obs[..., cfg.context_slice][tr.stage == PADDING] == 0).all()
    # evidence only in the stimulus stage; channel1 - channel2 of stream s is its signed coherence
    assert (tr.obs[..., cfg.stimulus_slice][~stim] == 0).all()
    for s in range(cfg.n_streams):
        diff = tr.obs[..., 1 + 2 * s] - tr.obs[..., 2 + 2 * s]
        mean = (diff * stim).sum(1) / stim.sum(1)
        np.testing.assert_allclose(mean, tr.signed_coherence[:, s], atol=1e-6)
    # the correct choice follows the stream picked by the context
    np.testing.assert_array_equal(tr.correct_choice, tr.direction[np.arange(300), tr.context])


def test_noisy_mean_evidence_matches_signed_coherence():
    cfg = make_config(3)  # uniform noise, amplitude 0.25
    tr = sample_trials(cfg, 4000, rng=3)
    stim = tr.stage == STIMULUS
    diff = tr.obs[..., 1] - tr.obs[..., 2]
    err = (diff * stim).sum(1) / stim.sum(1) - tr.signed_coherence[:, 0]
    assert abs(err.mean()) < 0.003
    # the difference of two independent U(-a, a) has variance 2 a^2 / 3 per step
    per_step = (tr.obs[..., 1] - (1 + tr.signed_coherence[:, :1]) / 2)[stim]
    assert abs(per_step.var() - 0.25**2 / 3) < 5e-4
    assert np.abs(per_step).max() <= 0.25 + 1e-6


def test_gaussian_noise_and_noise_on_all_channels():
    cfg = make_config(1, noise="gaussian", noise_amplitude=0.3, noise_on="all")
    tr = sample_trials(cfg, 3000, rng=4)
    fix = tr.stage == FIXATION
    resid = tr.obs[..., 0][fix] - 1.0
    assert abs(resid.std() - 0.3) < 0.01 and abs(resid.mean()) < 0.01
    clean = sample_trials(cfg, 3000, rng=4, noise=False)
    assert np.array_equal(clean.stage, tr.stage) and (clean.obs[..., 0][fix] == 1).all()


def test_overrides_of_conditions():
    cfg = make_config(3)
    tr = sample_trials(cfg, 4, rng=0, signed_coherence=[[0.3, -0.2]], context=[1, 0, 1, 0], noise=False)
    np.testing.assert_allclose(tr.signed_coherence, [[0.3, -0.2]] * 4)
    np.testing.assert_array_equal(tr.correct_choice, [1, 0, 1, 0])
    with pytest.raises(ValueError, match="context must lie"):
        sample_trials(cfg, 2, rng=0, context=[2, 0])
    with pytest.raises(ValueError, match=r"coherence must lie in \[0, 1\]"):
        sample_trials(cfg, 2, rng=0, coherence=1.2)
    with pytest.raises(ValueError, match="n must be"):
        sample_trials(cfg, 0)
    fixed = sample_trials(cfg, 3, rng=0, durations=[2, 12, 0, 1])
    assert fixed.n_steps == 15 and (fixed.stage[:, -1] == DECISION).all()


def test_stage_input_is_the_noise_free_input_of_each_stage():
    cfg = make_config(3)
    tr = sample_trials(cfg, 20, rng=5, noise=False)
    for stage_id, name in enumerate(STAGES):
        x = stage_input(cfg, name, signed_coherence=tr.signed_coherence, context=tr.context)
        for i in range(20):
            steps = np.flatnonzero(tr.stage[i] == stage_id)
            if len(steps):
                np.testing.assert_allclose(tr.obs[i, steps], np.broadcast_to(x[i], (len(steps), cfg.obs_dim)), atol=1e-7)
    with pytest.raises(ValueError, match="needs coherence"):
        stage_input(cfg, "stimulus")


def test_multichoice_ring_encoding():
    cfg = make_config(4, noise="none")
    tr = sample_trials(cfg, 50, rng=6)
    stim = tr.stage == STIMULUS
    chans = tr.obs[:, :, 1:4][stim.any(1)]  # any stimulus step of stream 1
    first = tr.obs[np.arange(50), tr.onset[:, STIMULUS], 1:4]
    np.testing.assert_array_equal(first.argmax(1), tr.direction[:, 0])
    assert chans.shape[-1] == 3
    with pytest.raises(ValueError, match="two-choice"):
        _ = tr.signed_coherence


def test_batch_indexing_trims_padding():
    tr = sample_trials(make_config(2), 30, rng=7)
    short = np.argsort(tr.length)[:3]
    sub = tr[short]
    assert len(sub) == 3 and sub.n_steps == tr.length[short].max()
    obs_tm, gt_tm, stage_tm = sub.time_major()
    assert obs_tm.shape == (sub.n_steps, 3, sub.obs.shape[2]) and gt_tm.shape == (sub.n_steps, 3)


def test_noise_lands_exactly_on_the_stimulus_window_when_timing_varies():
    cfg = make_config(3, fixation=("uniform", 200, 600), stimulus=("uniform", 800, 1500))
    noisy = sample_trials(cfg, 300, rng=8)
    clean = sample_trials(cfg, 300, rng=8, noise=False)
    stim = noisy.stage == STIMULUS
    diff = noisy.obs - clean.obs
    assert (diff[~stim] == 0).all()
    d = diff[stim][:, cfg.stimulus_slice]
    assert (np.abs(d) <= 0.25 + 1e-6).all() and (d != 0).all()
    assert abs(d.std() - 0.25 / np.sqrt(3)) < 0.005
    assert len(np.unique(noisy.onset[:, STIMULUS])) > 1 and len(np.unique(noisy.duration[:, STIMULUS])) > 1
