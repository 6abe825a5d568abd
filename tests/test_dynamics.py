"""The ReLU map as a dynamical system: evaluation, batching, Jacobian, readout, and saved policies (SB3 parity)."""

import numpy as np
import pytest

from analysis.network import Network, rollout
from dm_envs import make_config, sample_trials


def random_dynamics(H=12, D=3, A=3, seed=0, scale=1.2):
    rng = np.random.default_rng(seed)
    return Network(
        rng.normal(0, scale / np.sqrt(H), (H, H)),
        rng.normal(0, 1.0, (H, D)),
        W_out=rng.normal(0, 1.0, (A, H)),
        b_rec=rng.normal(0, 0.1, H),
        b_out=rng.normal(0, 0.1, A),
    )


def test_map_matches_its_formula_and_copies_the_weights():
    rng = np.random.default_rng(1)
    W, Win, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 2)), rng.normal(size=5)
    dyn = Network(W, Win, b_rec=b)
    h, x = rng.random(5), rng.normal(size=2)
    np.testing.assert_allclose(dyn.pre(h, x), W @ h + Win @ x + b)
    np.testing.assert_allclose(dyn.step(h, x), np.maximum(W @ h + Win @ x + b, 0))
    assert dyn.W_rec.dtype == np.float64 and not dyn.W_rec.flags.writeable
    W[0, 0] += 100.0  # the caller's array is not shared
    assert dyn.W_rec[0, 0] != W[0, 0]
    assert (dyn.hidden_size, dyn.input_size, dyn.n_actions) == (5, 2, 0)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(W_rec=np.zeros((3, 4)), W_in=np.zeros((3, 1))),
        dict(W_rec=np.zeros((3, 3)), W_in=np.zeros((4, 1))),
        dict(W_rec=np.zeros((3, 3)), W_in=np.zeros((3, 1)), b_rec=np.zeros(4)),
        dict(W_rec=np.zeros((3, 3)), W_in=np.zeros((3, 1)), W_out=np.zeros((2, 4))),
        dict(W_rec=np.full((3, 3), np.nan), W_in=np.zeros((3, 1))),
        dict(W_rec=np.zeros((3, 3)), W_in=np.zeros((3, 1)), b_out=np.zeros(2)),
    ],
)
def test_bad_shapes_are_rejected(kwargs):
    with pytest.raises(ValueError):
        Network(**kwargs)


def test_simulate_is_the_iterated_step_and_broadcasts():
    dyn = random_dynamics()
    rng = np.random.default_rng(2)
    h0 = rng.random((4, 12))
    xs = rng.normal(size=(4, 3))
    traj, pre = dyn.simulate(h0, xs, 15, return_pre=True)
    assert traj.shape == (4, 16, 12) and pre.shape == (4, 15, 12)
    h = h0.copy()
    for t in range(15):
        np.testing.assert_array_equal(traj[:, t], h)
        np.testing.assert_allclose(pre[:, t], dyn.pre(h, xs), rtol=1e-12, atol=1e-12)
        h = dyn.step(h, xs)
    np.testing.assert_allclose(traj[:, -1], h, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dyn.simulate(h0, xs, 15, record=False), h, rtol=1e-12, atol=1e-12)
    # one state, many inputs; many states, one input; one state, one input
    assert dyn.simulate(h0[0], xs, 3).shape == (4, 4, 12)
    assert dyn.simulate(h0, xs[0], 3).shape == (4, 4, 12)
    single = dyn.simulate(h0[1], xs[1], 15)
    assert single.shape == (16, 12)
    np.testing.assert_allclose(single, traj[1], rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError):
        dyn.simulate(h0, xs[:3], 2)  # 4 states, 3 inputs


def test_jacobian_is_the_derivative_off_the_kinks():
    dyn = random_dynamics(seed=3)
    rng = np.random.default_rng(3)
    h, x = rng.random(12), rng.normal(size=3)
    J = dyn.jacobian(h, x)
    pre = dyn.pre(h, x)
    np.testing.assert_array_equal(J, (pre > 0)[:, None] * dyn.W_rec)
    eps = 1e-7 * np.abs(pre).min() / np.abs(dyn.W_rec).max()  # small enough that no unit changes sign
    fd = np.stack([(dyn.step(h + eps * e, x) - dyn.step(h - eps * e, x)) / (2 * eps) for e in np.eye(12)], axis=1)
    np.testing.assert_allclose(fd, J, atol=1e-6)
    assert dyn.jacobian(np.stack([h, h]), x).shape == (2, 12, 12)


def test_speed_readout_and_decision():
    dyn = random_dynamics(seed=4)
    rng = np.random.default_rng(4)
    h, x = rng.random((6, 12)), rng.normal(size=3)
    np.testing.assert_allclose(dyn.speed(h, x), 0.5 * ((dyn.step(h, x) - h) ** 2).sum(1))
    logits = dyn.readout(h)
    np.testing.assert_allclose(logits, h @ dyn.W_out.T + dyn.b_out)
    np.testing.assert_array_equal(dyn.decision(h), logits.argmax(1))
    with pytest.raises(ValueError, match="readout"):
        Network(np.eye(2), np.eye(2)).readout(np.ones(2))


def test_stage_input_uses_the_attached_task():
    cfg = make_config(3)
    dyn = Network(np.zeros((4, 4)), np.zeros((4, cfg.obs_dim)), config=cfg)
    x = dyn.stage_input("stimulus", signed_coherence=[0.4, -0.2], context=1)
    assert x.shape == (cfg.obs_dim,) and x[0] == 1.0 and x[-1] == 1.0
    with pytest.raises(ValueError, match="config"):
        Network(np.zeros((4, 4)), np.zeros((4, 7))).stage_input("stimulus", signed_coherence=[0.1, 0.1])


# ---------------------------------------------------------------------------------------------- saved policies
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """An untrained 8-unit RNNPolicy model, saved with its task config (no learning: tests stay fast)."""
    import torch
    torch.set_num_threads(1)
    from sb3_contrib import RecurrentPPO

    import agents
    from dm_envs.sb3 import make_sb3_vec_env

    cfg = make_config(3)
    venv = make_sb3_vec_env(4, config=cfg, seed=0)
    model = RecurrentPPO(agents.RNNPolicy, venv, policy_kwargs=dict(hidden_size=8, delta=0.4), n_steps=8, seed=0)
    model.dmd_metadata = {"learning_rule": "rl", "task_config": cfg.to_dict(), "seed": 0}
    path = tmp_path_factory.mktemp("model") / "tiny.zip"
    model.save(path)
    return model, path, cfg


def test_load_dynamics_reads_weights_and_task(tiny_model):
    import agents

    model, path, cfg = tiny_model
    dyn = Network.load(path)
    w = Network.from_policy(model)
    np.testing.assert_array_equal(dyn.W_rec, w.W_rec)
    np.testing.assert_array_equal(dyn.W_in, w.W_in)
    np.testing.assert_array_equal(dyn.W_out, w.W_out)
    assert dyn.config == cfg and dyn.metadata["learning_rule"] == "rl" and dyn.metadata["path"] == str(path)
    assert (dyn.hidden_size, dyn.input_size, dyn.n_actions) == (8, cfg.obs_dim, cfg.n_actions)
    assert Network.load(model).config == cfg  # a loaded model works too
    with pytest.raises(FileNotFoundError):
        Network.load(path.with_name("missing.zip"))


def test_rollout_equals_sb3_stepping(tiny_model):
    """The hidden states are exactly those SB3's ``predict`` carries from step to step (reset at trial start)."""
    model, path, cfg = tiny_model
    run = rollout(path, 6, seed=3, noise=True)
    tr = run.trials
    assert run.hidden.shape == (6, tr.obs.shape[1], 8) and run.config == cfg
    state, starts = None, np.ones(6, dtype=bool)
    for t in range(tr.obs.shape[1]):
        actions, state = model.predict(tr.obs[:, t], state=state, episode_start=starts, deterministic=True)
        starts = np.zeros(6, dtype=bool)
        np.testing.assert_allclose(state[0][0], run.hidden[:, t], rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(actions, run.actions[:, t])
    # the float64 map reproduces the float32 policy
    dyn = Network.load(path)
    h = np.zeros((6, 8))
    for t in range(tr.obs.shape[1]):
        h = dyn.step(h, tr.obs[:, t].astype(np.float64))
        np.testing.assert_allclose(h, run.hidden[:, t], rtol=1e-4, atol=1e-5)
    # stage states: the last stimulus step of each trial
    last = run.stage_states("stimulus", "last")
    t_end = tr.onset[:, 1] + tr.duration[:, 1] - 1
    np.testing.assert_array_equal(last, run.hidden[np.arange(6), t_end])


def test_rollout_noise_off_and_given_trials(tiny_model):
    model, _, cfg = tiny_model
    a = rollout(model, 4, seed=1, noise=False)
    b = rollout(model, sample_trials(cfg, 4, 1, noise=False))
    np.testing.assert_array_equal(a.hidden, b.hidden)
    stim = a.trials.stage == 1
    assert np.allclose(np.diff(a.trials.obs[:, :, 1][stim].reshape(4, -1), axis=1), 0)  # noise-free: constant
    with pytest.raises(TypeError):
        rollout(model, a.trials, context=0)


def test_cli_analyze_dynamics_writes_numbers_and_figures(tiny_model, tmp_path):
    import json

    from analysis.cli import main

    _, path, _ = tiny_model
    out = tmp_path / "dyn"
    rc = main(["analyze", "dynamics", str(path), "--out", str(out), "--grid", "3", "--n-init", "4", "--observed",
               "4", "--trials", "16", "--n-transient", "100", "--n-record", "100"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stimulus"]["n_attractors"] >= 18  # 3 x 3 grid x 2 contexts, at least one each
    assert sum(summary["stimulus"]["multistability"].values()) == 18
    assert 0 <= summary["decision_basins"]["delay"]["basin_matches_correct_choice"] <= 1
    header = (out / "attractors.csv").read_text().splitlines()[0].split(",")
    assert {"stage", "c1", "c2", "context", "kind", "lambda1", "basin_count"} <= set(header)
    for name in ("attractor_map.png", "lyapunov.png", "trajectories_pca.png", "fixed_points.csv"):
        assert (out / name).stat().st_size > 0
    assert main(["analyze", "dynamics", str(tmp_path / "missing.zip"), "--out", str(out)]) == 2
