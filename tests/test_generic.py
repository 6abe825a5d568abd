"""The generic path (analysis.dynamics.generic): known answers on hand-made torch maps, any sb3-contrib policy."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from analysis.dynamics.generic import (  # noqa: E402
    TorchDynamics,
    find_attractors,
    fixed_points,
    load_dynamics,
    newton,
    recurrent_cell,
)
from analysis.dynamics.maps import attractor_map  # noqa: E402
from dm_envs import make_config, sample_trials  # noqa: E402

F64 = torch.float64
FAST = dict(n_transient=300, n_record=600)


def rotation(theta):
    c, s = np.cos(theta), np.sin(theta)
    return torch.tensor([[c, -s], [s, c]], dtype=F64)


def linear(A):
    A = torch.as_tensor(A, dtype=F64)
    return TorchDynamics(lambda s, u: s @ A.T + u, state_size=A.shape[0])


def circle_map(step_angle, lock=0.0, n=7):
    """Radius -> sqrt(radius) (attracted to the unit circle, transverse exponent log 1/2), angle -> angle +
    ``step_angle`` - ``lock`` sin(n angle) (``lock > 0``: the rotation locks onto one cycle of period ``n``)."""

    def step(s, u):
        r = torch.linalg.vector_norm(s, dim=1)
        a = torch.atan2(s[:, 1], s[:, 0])
        a = a + step_angle - lock * torch.sin(n * a)
        return torch.stack([torch.cos(a), torch.sin(a)], dim=1) * torch.sqrt(r)[:, None]

    return TorchDynamics(step, 2)


def sb3_steps(model, trials):
    """``(t, actions, state)`` of SB3's ``predict`` at every step of the trials (reset at their start)."""
    state, starts = None, np.ones(len(trials), dtype=bool)
    for t in range(trials.obs.shape[1]):
        actions, state = model.predict(trials.obs[:, t], state=state, episode_start=starts, deterministic=True)
        starts[:] = False
        yield t, actions, state


# ---------------------------------------------------------------------------------------------- known answers
def test_linear_contraction_has_its_one_fixed_point_with_the_matrix_eigenvalues():
    A = np.array([[0.5, 0.2], [0.0, 0.8]])
    dyn, u = linear(A), np.array([1.0, 0.2])
    star = np.linalg.solve(np.eye(2) - A, u)
    for method in ("adam", "lbfgs"):
        fps = fixed_points(dyn, u, n_init=16, seed=1, method=method)
        assert len(fps) == 1 and fps[0].stable and fps[0].pattern is None and fps[0].n_active is None
        np.testing.assert_allclose(fps[0].state, star, atol=1e-10)
        np.testing.assert_allclose(np.sort(np.abs(fps[0].eigenvalues)), [0.5, 0.8], atol=1e-12)
    atts = find_attractors(dyn, u, n_init=16, seed=0, **FAST)
    assert [a.kind for a in atts] == ["fixed_point"] and atts[0].basin_count == 16
    np.testing.assert_allclose(atts[0].state, star, atol=1e-9)
    np.testing.assert_allclose(atts[0].lyapunov, np.log([0.8, 0.5]), atol=1e-10)


def test_an_unstable_focus_is_found_but_not_an_attractor():
    R = 1.2 * rotation(0.3)
    dyn = TorchDynamics(lambda s, u: s @ R.T + u, 2)
    fps = fixed_points(dyn, np.array([0.1, 0.0]), n_init=4)
    assert len(fps) == 1 and not fps[0].stable and fps[0].spectral_radius == pytest.approx(1.2)
    assert [a.kind for a in find_attractors(dyn, np.array([0.1, 0.0]), n_init=4, **FAST)] == ["divergent"]


def test_newton_and_jacobian_agree_with_the_formula():
    W = torch.tensor([[0.3, -0.4], [0.5, 0.1]], dtype=F64)
    dyn = TorchDynamics(lambda s, u: torch.tanh(s @ W.T + u), 2)
    s, x = np.array([0.2, -0.3]), np.array([0.1, 0.4])
    pre = W.numpy() @ s + x
    np.testing.assert_allclose(dyn.jacobian(s, x), (1 - np.tanh(pre) ** 2)[:, None] * W.numpy(), atol=1e-14)
    pts, res = newton(dyn, np.zeros((1, 2)), dyn.drive(x[None]), tol=1e-14)
    assert res[0] < 1e-13
    np.testing.assert_allclose(dyn.step(pts[0], x), pts[0], atol=1e-13)


def test_a_locked_rotation_is_one_period_7_cycle_from_every_start():
    atts = find_attractors(circle_map(2 * np.pi / 7, lock=0.05), np.zeros(1), n_init=12, seed=0, **FAST)
    assert [(a.kind, a.period) for a in atts] == [("periodic", 7)]
    assert atts[0].basin_count == 12 and len(atts[0].orbit) == 7
    np.testing.assert_allclose(np.linalg.norm(atts[0].orbit, axis=1), 1.0, atol=1e-6)
    assert atts[0].lyapunov[0] < -2e-3  # a locked (attracting) cycle


def test_an_irrational_rotation_is_quasi_periodic_with_a_transverse_gap():
    golden = np.pi * (np.sqrt(5) - 1)
    atts = find_attractors(circle_map(golden), np.zeros(1), n_init=6, seed=0, **FAST)
    assert [a.kind for a in atts] == ["quasi_periodic"] and atts[0].basin_count == 6
    lam = atts[0].lyapunov
    assert abs(lam[0]) < 1e-6 and lam[1] == pytest.approx(np.log(0.5), abs=1e-3) and atts[0].transverse_stable


def test_chaos_divergence_and_a_slow_focus():
    logistic = TorchDynamics(lambda s, u: 3.9 * s * (1.0 - s), 1)  # chaotic, lambda about 0.49
    atts = find_attractors(logistic, np.zeros(1), n_init=0, init_states=[[0.123], [0.77], [-0.1]], seed=0,
                           **FAST)
    kinds = sorted(a.kind for a in atts)
    assert kinds == ["chaotic", "divergent"]
    chaos = next(a for a in atts if a.kind == "chaotic")
    assert chaos.basin_count == 2 and 0.4 < chaos.lyapunov[0] < 0.6
    # a focus contracting by 5e-4 per step: never snapped within the transient, yet a fixed point (settled)
    R = 0.9995 * rotation(0.3)
    slow = TorchDynamics(lambda s, u: s @ R.T + u, 2)
    atts = find_attractors(slow, np.array([0.01, 0.0]), n_init=3, seed=0, **FAST)
    assert [a.kind for a in atts] == ["fixed_point"] and atts[0].basin_count == 3


def test_a_relu_policy_through_the_generic_path_matches_the_exact_path():
    from sb3_contrib import RecurrentPPO

    import agents
    from analysis.network import Network
    from dm_envs.sb3 import make_sb3_vec_env

    cfg = make_config(1)
    model = RecurrentPPO(agents.RNNPolicy, make_sb3_vec_env(2, config=cfg, seed=0),
                         policy_kwargs=dict(hidden_size=6, delta=0.6), n_steps=8, seed=0)
    net, gen = Network.from_policy(model, config=cfg), TorchDynamics.from_policy(model, config=cfg)
    assert gen.kind == "rnn_relu" and gen.state_size == 6 and gen.n_actions == 3
    rng = np.random.default_rng(0)
    h, x = rng.random((5, 6)), rng.random((5, cfg.obs_dim))
    np.testing.assert_allclose(gen.step(h, x), net.step(h, x), atol=1e-6)  # float32 weights, float64 maps
    np.testing.assert_allclose(gen.readout(h), net.readout(h), atol=1e-6)
    for stage in ("stimulus", "delay"):
        a = attractor_map(net, 5, stage, n_init=6, n_observed=4, trials=24, progress=False, **FAST).summary()
        b = attractor_map(gen, 5, stage, n_init=6, n_observed=4, trials=24, progress=False, **FAST).summary()
        assert a["counts"] == b["counts"] and a["n_points"] == b["n_points"]


@pytest.mark.parametrize("core", ["lstm2", "gru", "rnn_tanh"])
def test_recurrent_cells_step_like_their_torch_modules(core):
    nn = torch.nn
    torch.manual_seed(0)
    module = {"lstm2": nn.LSTM(3, 5, num_layers=2), "gru": nn.GRU(3, 5), "rnn_tanh": nn.RNN(3, 5)}[core]
    step, project, S, units, output = recurrent_cell(module)
    L = module.num_layers
    assert units == 5 and S == (2 if core == "lstm2" else 1) * L * 5
    x, h0 = torch.randn(4, 3), torch.randn(L, 4, 5)
    state = (h0, torch.randn(L, 4, 5)) if core == "lstm2" else h0
    out, new = module(x[None], state)
    s = torch.cat([h0[i] for i in range(L)] + ([state[1][i] for i in range(L)] if core == "lstm2" else []), 1)
    got = step(s.double(), project(x.double()))
    want = (torch.cat([new[0][i] for i in range(L)] + [new[1][i] for i in range(L)], 1) if core == "lstm2"
            else torch.cat([new[i] for i in range(L)], 1))
    torch.testing.assert_close(got, want.double(), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(output(got), out[0].double(), atol=1e-6, rtol=1e-6)


# ---------------------------------------------------------------------------------------------- a stock LSTM policy
@pytest.fixture(scope="module")
def lstm_model(tmp_path_factory):
    """A stock RecurrentPPO("MlpLstmPolicy") with a 16-unit LSTM, trained for a few hundred steps, saved without
    the package's metadata (as plain SB3 code saves it)."""
    from sb3_contrib import RecurrentPPO

    from dm_envs.sb3 import make_sb3_vec_env

    cfg = make_config(3)
    model = RecurrentPPO("MlpLstmPolicy", make_sb3_vec_env(4, config=cfg, seed=0),
                         policy_kwargs=dict(lstm_hidden_size=16, net_arch=dict(pi=[16], vf=[16])), n_steps=32,
                         batch_size=64, n_epochs=2, seed=0)
    model.learn(256)
    path = tmp_path_factory.mktemp("lstm") / "lstm16.zip"
    model.save(path)
    return model, path, cfg


def test_a_stock_lstm_policy_is_a_torch_map_with_the_states_sb3_computes(lstm_model):
    model, path, cfg = lstm_model
    dyn = load_dynamics(path, config=cfg)
    assert isinstance(dyn, TorchDynamics) and dyn.kind == "lstm" and dyn.state_size == 32 and dyn.units == 16
    assert dyn.metadata["path"] == str(path) and dyn.input_size == cfg.obs_dim
    tr = sample_trials(cfg, 5, np.random.default_rng(3))
    run = dyn.forward(tr)
    for t, actions, state in sb3_steps(model, tr):
        np.testing.assert_allclose(run.hidden[:, t], np.concatenate([state[0][0], state[1][0]], 1), atol=1e-5)
        np.testing.assert_array_equal(actions, run.actions[:, t])


def test_the_attractor_map_of_a_saved_lstm_policy(lstm_model, tmp_path):
    _, path, cfg = lstm_model
    dyn = load_dynamics(path, config=cfg)
    amap = attractor_map(dyn, 3, n_init=4, n_observed=4, trials=16, progress=False, **FAST)
    s = amap.summary()
    assert amap.qp_present.shape == (2, 3, 3) and s["n_points"] == 18
    assert sum(s["counts"].values()) == s["n_attractors"] >= 18
    assert amap.info["dynamics"] == "generic_lstm" and amap.info["hidden_size"] == 32
    fps = amap.table["kind"] == 0
    assert np.isfinite(amap.table["lambda1"][fps]).all()  # from the fixed points' spectra
    dec = attractor_map(dyn, stage="delay", n_init=4, trials=16, progress=False, **FAST)
    assert len(dec.basins) == 16 and (dec.basins.attractor >= 0).all()
    amap.save(tmp_path)
    assert (tmp_path / "attractor_map.npz").exists()
    # workers rebuild the map from the policy's modules: the same numbers
    par = attractor_map(dyn, 3, n_init=4, n_observed=4, trials=16, progress=False, n_jobs=2, block_size=9, **FAST)
    np.testing.assert_array_equal(par.table["kind"], amap.table["kind"])
    np.testing.assert_allclose(par.states, amap.states, atol=1e-6)


def test_cli_dynamics_on_models_without_metadata(lstm_model, tmp_path, capsys):
    from analysis.cli import main

    _, path, _ = lstm_model
    fast = ["--grid", "3", "--n-init", "3", "--observed", "2", "--trials", "12", "--n-transient", "100",
            "--n-record", "200", "--no-progress", "--jobs", "1"]
    out = tmp_path / "dyn"
    assert main(["analyze", "dynamics", str(path), "--out", str(out), *fast]) == 2
    assert "--level" in capsys.readouterr().err  # no task: the flags are named
    assert main(["analyze", "dynamics", str(path), "--out", str(out), "-c", "1", *fast]) == 2
    assert "reads 7 inputs" in capsys.readouterr().err
    assert main(["analyze", "dynamics", str(path), "--out", str(out), "-c", "3", "-o", "noise_amplitude=0.2",
                 "--format", "svg", *fast]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["dynamics"] == "generic_lstm" and s["task"]["noise_amplitude"] == 0.2 and s["stimulus"]["n_points"] == 18
    assert (out / "attractor_map.svg").read_text().lstrip().startswith("<?xml")
    assert not list(out.glob("*.png"))
    assert "generic path" in capsys.readouterr().out
    rows = (out / "fixed_points.csv").read_text().splitlines()
    assert rows[0].startswith("stage,context,stable") and len(rows) > 1
    # populations reads the LSTM's units h (was refused in one line before issue 12's generic populations)
    code = main(["analyze", "populations", str(path), "--out", str(tmp_path / "pop"), "-c", "3", "--no-progress",
                 "--trials", "40", "--shuffles", "20", "--skip", "robustness_noise", "robustness_ablation",
                 "--format", "svg"])
    printed = capsys.readouterr().out
    assert code == 0 and "LSTM policy: units = the LSTM's h" in printed and "W_rec" in printed
    s = json.loads((tmp_path / "pop" / "summary.json").read_text())
    assert s["units"]["kind"] == "lstm" and s["units"]["n_units"] == 16 and s["units"]["state_size"] == 32
    assert sum(s["populations"]["sizes"].values()) == 16 and (tmp_path / "pop" / "populations.svg").exists()


def test_an_rnn_policy_saved_by_plain_sb3_code_takes_its_task_from_the_flags(tmp_path, capsys):
    """No dmd_metadata in the zip: dynamics needs --level (named in its one-line error), populations too."""
    from sb3_contrib import RecurrentPPO

    import agents
    from analysis.cli import main
    from dm_envs.sb3 import make_sb3_vec_env

    cfg = make_config(1)
    model = RecurrentPPO(agents.RNNPolicy, make_sb3_vec_env(2, config=cfg, seed=0),
                         policy_kwargs=dict(hidden_size=8, delta=0.4), n_steps=8, seed=0)
    path = tmp_path / "plain.zip"
    model.save(path)
    fast = ["--grid", "3", "--n-init", "3", "--observed", "2", "--trials", "12", "--n-transient", "100",
            "--n-record", "200", "--no-progress", "--jobs", "1", "--no-figures"]
    assert main(["analyze", "dynamics", str(path), "--out", str(tmp_path / "a"), *fast]) == 2
    assert "no task config" in capsys.readouterr().err
    assert main(["analyze", "dynamics", str(path), "--out", str(tmp_path / "a"), "--level", "1", *fast]) == 0
    s = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert s["dynamics"] == "relu_exact" and s["task"]["name"] == cfg.name and s["stimulus"]["n_points"] == 3
    assert main(["analyze", "populations", str(path), "--out", str(tmp_path / "p"), "-c", "1", "--trials", "30",
                 "--shuffles", "50", "--skip", "connectivity", "robustness_ablation", "--no-figures",
                 "--no-progress"]) == 0
    assert json.loads((tmp_path / "p" / "summary.json").read_text())["task"]["name"] == cfg.name
    # non-finite weights of any policy are one-line errors naming the file
    lstm = RecurrentPPO("MlpLstmPolicy", make_sb3_vec_env(2, config=cfg, seed=0),
                        policy_kwargs=dict(lstm_hidden_size=4), n_steps=8, seed=0)
    with torch.no_grad():
        lstm.policy.lstm_actor.weight_hh_l0[0, 0] = float("nan")
    lstm.save(tmp_path / "nan.zip")
    with pytest.raises(ValueError, match="nan.zip: lstm_actor.weight_hh_l0 has 1 non-finite"):
        load_dynamics(tmp_path / "nan.zip")


# ---------------------------------------------------------------------------------------------- populations
def test_populations_of_a_stock_lstm_policy_read_its_h_units(lstm_model):
    """run_population_analysis on a saved MlpLstmPolicy zip: units are the LSTM's h (16 of the 32-dim (h, c)), signed,
    active when |h| > 0.1; every step runs but the ReLU-only structural blocks of W_rec, which are named in a note."""
    from analysis.populations.generic import GENERIC_THRESHOLD, effective_readout
    from analysis.populations.pipeline import run_population_analysis, write_report

    model, path, cfg = lstm_model
    rep = run_population_analysis(path, cfg, n_trials=60, n_shuffles=20, n_shuffles_connectivity=5,
                                  ablation_ks=(1, 4, 40), ablation_repeats=2)
    assert rep.hidden.shape[2] == 16 and rep.info["kind"] == "lstm" and rep.info["threshold"] == GENERIC_THRESHOLD
    assert len(rep.notes) == 1 and "W_rec" in rep.notes[0] and rep.blocks is None
    dyn = load_dynamics(path, config=cfg)
    run = dyn.forward(rep.trials)
    np.testing.assert_allclose(rep.hidden, run.hidden[..., :16])  # h, not c
    assert rep.scores.accuracy == pytest.approx(float(np.mean(rep.scores.correct)))
    sizes = rep.populations.sizes
    assert sum(sizes.values()) == 16 and rep.decision_source in ("attractors", "delay_end")
    assert rep.selectivity.mi.shape[1] == 16 and rep.pca is not None and rep.connectivity is not None
    assert rep.crystallization.decoder.accuracy.size and rep.noise.accuracy.shape == (6,)
    assert rep.kicks.survival[0] == 1.0  # a zero kick changes no decision
    assert rep.ablation.ks.tolist() == [1, 4] and rep.ablation.groups[0] == "random"  # k <= 16 units only
    # the linearised readout of a linear head on h is the head's matrix: here a 16-16 tanh MLP, so it differs by
    # state; it has the actions' rows and the units' columns
    W = effective_readout(dyn, run.hidden[:5, -1])
    assert W.shape == (3, 16) and np.isfinite(W).all()
    s = rep.summary()
    assert s["units"]["what"].startswith("the LSTM's h") and s["notes"] == rep.notes


def test_the_generic_forward_silences_units_and_kicks_states(lstm_model):
    _, path, cfg = lstm_model
    dyn = load_dynamics(path, config=cfg)
    tr = sample_trials(cfg, 6, np.random.default_rng(1))
    base = dyn.forward(tr)
    np.testing.assert_array_equal(dyn.forward(tr, unit_mask=np.ones(16, bool)).actions, base.actions)
    off = dyn.forward(tr, unit_mask=np.arange(16) >= 4)
    assert np.all(off.hidden[:, :, :4] == 0) and np.all(off.hidden[:, :, 16:20] == 0)  # h_i and c_i of units 0-3
    assert np.any(off.hidden[:, :, 4:16] != base.hidden[:, :, 4:16])
    kick = np.zeros((6, 32))
    kick[:, 0] = 1.0
    steps = np.full(6, 5)
    kicked = dyn.forward(tr, kick=kick, kick_step=steps)
    np.testing.assert_allclose(kicked.hidden[:, :5], base.hidden[:, :5])
    np.testing.assert_allclose(kicked.hidden[:, 5, 0], base.hidden[:, 5, 0] + 1.0)
    f32 = dyn.forward(tr, dtype=np.float32, return_hidden=False)
    assert f32.hidden is None and np.abs(f32.logits - base.logits).max() < 1e-4


# ---------------------------------------------------------------------------------------------- a GRU policy
def test_a_gru_policy_end_to_end_attractor_map_and_populations(tmp_path, capsys):
    """A GRU-core RecurrentPPO policy (tests/recurrent_cores.py) trained a few steps by stock RecurrentPPO: the generic
    path reads its core as a GRU with the states SB3 computes, maps its attractors, and dmd analyze populations reads
    its units."""
    from recurrent_cores import GRUPolicy
    from sb3_contrib import RecurrentPPO

    from analysis.cli import main
    from dm_envs.sb3 import make_sb3_vec_env

    cfg = make_config(3)
    model = RecurrentPPO(GRUPolicy, make_sb3_vec_env(4, config=cfg, seed=0),
                         policy_kwargs=dict(lstm_hidden_size=12, net_arch=dict(pi=[12], vf=[12])), n_steps=32,
                         batch_size=64, n_epochs=2, seed=0)
    model.learn(128)
    path = tmp_path / "gru12.zip"
    model.save(path)
    loaded = RecurrentPPO.load(path)
    dyn = load_dynamics(path, config=cfg)
    assert dyn.kind == "gru" and dyn.state_size == 12 and dyn.n_units == 12
    tr = sample_trials(cfg, 4, np.random.default_rng(2))
    run = dyn.forward(tr)
    for t, actions, state in sb3_steps(loaded, tr):
        np.testing.assert_allclose(run.hidden[:, t], state[0][0], atol=1e-5)
        np.testing.assert_array_equal(actions, run.actions[:, t])
    amap = attractor_map(dyn, 3, n_init=4, n_observed=4, trials=16, progress=False, **FAST)
    s = amap.summary()
    assert amap.info["dynamics"] == "generic_gru" and s["n_points"] == 18 and s["n_attractors"] >= 18
    fast = ["--grid", "3", "--n-init", "3", "--observed", "2", "--trials", "12", "--n-transient", "100",
            "--n-record", "200", "--no-progress", "--jobs", "1", "--no-figures"]
    assert main(["analyze", "dynamics", str(path), "-c", "3", "--out", str(tmp_path / "dyn"), *fast]) == 0
    assert json.loads((tmp_path / "dyn" / "summary.json").read_text())["dynamics"] == "generic_gru"
    assert main(["analyze", "populations", str(path), "-c", "3", "--out", str(tmp_path / "pop"), "--trials", "40",
                 "--shuffles", "20", "--skip", "connectivity", "robustness_noise", "robustness_ablation",
                 "--attractors", "analysis", "--no-figures", "--no-progress"]) == 0
    assert "GRU policy: units = the GRU's h" in capsys.readouterr().out
    pop = json.loads((tmp_path / "pop" / "summary.json").read_text())
    assert pop["units"]["kind"] == "gru" and sum(pop["populations"]["sizes"].values()) == 12


# ---------------------------------------------------------------------------------------------- tracking
def test_track_over_plain_sb3_checkpoints_of_an_lstm_run(tmp_path, capsys):
    """dmd analyze track on a folder an SB3 user writes (CheckpointCallback into checkpoints/, then final_model.zip;
    no metadata): the task from -c, accuracy evaluated by the map's forward pass, one row per checkpoint."""
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.callbacks import CheckpointCallback

    from analysis.cli import main
    from analysis.dynamics.tracking import track
    from dm_envs.sb3 import make_sb3_vec_env

    cfg = make_config(1)
    run = tmp_path / "lstm_run"
    model = RecurrentPPO("MlpLstmPolicy", make_sb3_vec_env(2, config=cfg, seed=0),
                         policy_kwargs=dict(lstm_hidden_size=6, net_arch=dict(pi=[], vf=[])), n_steps=16,
                         batch_size=32, n_epochs=1, seed=0)
    model.learn(64, callback=CheckpointCallback(save_freq=16, save_path=str(run / "checkpoints"), name_prefix="step"))
    model.save(run / "final_model")
    fast = dict(n_init=3, n_observed=2, trials=12, n_transient=100, n_record=200, progress=False, eval_trials=50)
    with pytest.raises(ValueError, match="carries no task config"):
        track(run, 3, **fast)
    tr = track(run, 3, config=cfg, **fast)
    assert [r["env_steps"] for r in tr.rows] == [32, 64] and tr.rows[-1]["checkpoint"] == "final_model"
    assert all(r["accuracy_source"] == "evaluated" and 0.0 <= r["accuracy"] <= 1.0 for r in tr.rows)
    assert tr.maps[0].info["dynamics"] == "generic_lstm" and tr.summary["n_checkpoints"] == 2
    out = tmp_path / "track"
    assert main(["analyze", "track", str(run), "-c", "1", "--out", str(out), "--grid", "3", "--n-init", "3",
                 "--observed", "2", "--trials", "12", "--n-transient", "100", "--n-record", "200", "--eval-trials",
                 "50", "--no-progress", "--jobs", "1"]) == 0
    assert (out / "track.json").exists() and (out / "qp_fraction_track.png").exists()
    assert main(["analyze", "track", str(run), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "carries no task config" in err and len(err.strip().splitlines()) == 1
    # population membership over the same checkpoints (dmd analyze crystallization): units = the LSTM's h
    from analysis.populations.tracking import track_populations

    pt = track_populations(run, config=cfg, n_trials=30, progress=False)
    assert [r["env_steps"] for r in pt.rows] == [32, 64] and pt.labels.shape == (2, 6)
    assert main(["analyze", "crystallization", str(run), "-c", "1", "--out", str(tmp_path / "cryst"), "--trials",
                 "30", "--no-progress"]) == 0
    assert (tmp_path / "cryst" / "population_track.png").exists()


# ---------------------------------------------------------------------------------------------- the example
def test_the_lstm_vs_relu_example_compares_both_maps(tmp_path, capsys):
    """examples/compare_lstm_relu.py, tiny: both networks trained by the same PPO on the same trials, both mapped."""
    import runpy
    from pathlib import Path

    example = runpy.run_path(str(Path(__file__).resolve().parents[1] / "examples" / "compare_lstm_relu.py"))
    rows = example["main"](["--steps", "128", "--grid", "3", "--hidden", "4", "--envs", "2", "--n-steps", "32",
                            "--eval-trials", "20", "--out", str(tmp_path)])
    assert rows["relu"]["dynamics"] == "relu_exact" and rows["lstm"]["dynamics"] == "generic_lstm"
    assert rows["relu"]["state_size"] == 4 and rows["lstm"]["state_size"] == 8
    assert all(sum(r["counts"].values()) >= 18 for r in rows.values())  # 3 x 3 x 2 contexts, every point mapped
    saved = json.loads((tmp_path / "comparison.json").read_text())
    assert set(saved["networks"]) == {"relu", "lstm"} and (tmp_path / "lstm_attractor_map.png").exists()
    assert "QP fraction (reachable)" in capsys.readouterr().out
