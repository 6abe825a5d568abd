"""Attractor maps, decision basins, tracking over checkpoints, figures and the CLI, on networks whose landscape is
known by construction.

* ``gated_oscillator``: a two-stream, two-context network whose stimulus map has an attracting invariant curve
  (quasi-periodic) while the relevant coherence is small and a single fixed point when it is large. A piecewise-linear
  oscillator (an expanding rotation folded back by ReLU "walls", as in ``test_attractors``) runs freely unless one of
  four detector units ``relu(kappa (+-c_k) - theta - M * other_context)`` fires, i.e. unless ``|c_relevant| >
  theta / kappa``; a firing detector silences every oscillator unit. Extra contracting units are driven by the
  oscillator and never feed back.
* ``winner_take_all``: a one-stream network that integrates evidence into two mutually inhibiting units; under the
  delay and decision inputs the map is bistable (``FP+`` at ``(2, 0)``, ``FP-`` at ``(0, 2)``), and the basin of a
  state is its larger unit. With self-excitation 1.2 instead of 0.5 the winner runs away instead (``DIV+``/``DIV-``).
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from analysis.dynamics.attractors import KINDS
from analysis.network import Network
from agents.runs import RunDir
from analysis.dynamics.grid import stimulus_grid
from analysis.dynamics.maps import AttractorMap, attractor_label, attractor_map, choice_readout, fixed_point_exponents
from analysis.dynamics.tracking import Tracking, track
from dm_envs import make_config, sample_trials

QP, FP, DIV = KINDS.index("quasi_periodic"), KINDS.index("fixed_point"), KINDS.index("divergent")
FAST = dict(n_transient=600, n_record=1500)  # enough for the constructions below; keeps the tests quick


# ---------------------------------------------------------------------------------------------- constructions
def rot(theta):
    return np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])


def walled_oscillator(theta=1.0, rho=1.1, n_walls=8, offset=2.0):
    """``x' = rho R(theta) (x - N^T relu(N x - 1))`` as a 10-unit ReLU map ``h' = relu(W h + c)``."""
    ang = np.arange(n_walls) * 2 * np.pi / n_walls + 0.3
    N = np.stack([np.cos(ang), np.sin(ang)], 1)
    A = rho * rot(theta)
    V = -A @ N.T
    o = np.full(2, offset)
    lin = np.hstack([A, V])
    W = np.vstack([lin, N @ lin])
    c = np.concatenate([o - A @ o, -N @ (A @ o) - 1.0])
    return W, c


def gated_oscillator(kappa=10.0, theta=3.0, M=200.0, n_extra=20, seed=0):
    """Level-3 task (inputs: fixation, s1a, s1b, s2a, s2b, ctx1, ctx2); QP iff ``|c_relevant| < theta / kappa``."""
    cfg = make_config(3)
    rng = np.random.default_rng(seed)
    Wo, co = walled_oscillator()
    n_osc, n_det = len(co), 4
    H = n_osc + n_det + n_extra
    W = np.zeros((H, H))
    W_in = np.zeros((H, cfg.obs_dim))
    W[:n_osc, :n_osc] = Wo
    W[:n_osc, n_osc:n_osc + n_det] = -M  # a firing detector silences the oscillator
    W_in[:n_osc, 0] = co  # the oscillator's constants ride on the fixation channel (1 during the stimulus)
    d = n_osc
    for k, (a, b, other) in enumerate([(1, 2, 6), (2, 1, 6), (3, 4, 5), (4, 3, 5)]):
        W_in[d + k, a], W_in[d + k, b] = kappa, -kappa  # kappa * (+-c_stream)
        W_in[d + k, 0] = -theta
        W_in[d + k, other] = -M  # only the relevant stream's detectors can fire
    e = n_osc + n_det
    E = rng.normal(size=(n_extra, n_extra))
    W[e:, e:] = 0.5 * E / np.linalg.norm(E, 2)
    W[e:, :n_osc] = rng.normal(0, 0.3, (n_extra, n_osc))
    W_in[e:, 0] = rng.normal(0, 0.5, n_extra)
    W_out = rng.normal(0, 0.3, (cfg.n_actions, H))
    return Network(W, W_in, W_out=W_out, config=cfg)


def winner_take_all(self_excitation=0.5, n_extra=5, seed=0):
    """Level-2 task (inputs: fixation, s_a, s_b). Units: two integrators, a fixation unit, extra contracting units.

    Integrators: ``h1' = relu(a h1 - h2 + 1 + (s_a - s_b))``, ``h2' = relu(a h2 - h1 + 1 - (s_a - s_b))``; the
    fixation unit copies the fixation input and drives the fixate logit, so the network commits only in the decision
    stage; choice logits read the integrators (choice 1 <- unit 1).
    """
    cfg = make_config(2)
    rng = np.random.default_rng(seed)
    H = 3 + n_extra
    W = np.zeros((H, H))
    W[:2, :2] = [[self_excitation, -1.0], [-1.0, self_excitation]]
    E = rng.normal(size=(n_extra, n_extra))
    W[3:, 3:] = 0.4 * E / np.linalg.norm(E, 2)
    W[3:, :2] = rng.normal(0, 0.3, (n_extra, 2))
    W_in = np.zeros((H, cfg.obs_dim))
    W_in[0, 1:3] = [1.0, -1.0]
    W_in[1, 1:3] = [-1.0, 1.0]
    W_in[2, 0] = 1.0
    b_rec = np.zeros(H)
    b_rec[:2] = 1.0
    b_rec[3:] = rng.uniform(0.2, 0.6, n_extra)
    W_out = np.zeros((3, H))
    W_out[0, 2] = 100.0  # fixate while the fixation input is on
    W_out[1, 0] = W_out[2, 1] = 1.0
    return Network(W, W_in, W_out=W_out, b_rec=b_rec, config=cfg)


@pytest.fixture(scope="module")
def osc_map():
    return attractor_map(gated_oscillator(), grid=5, n_init=6, n_observed=3, trials=24, seed=0, progress=False, **FAST)


# ---------------------------------------------------------------------------------------------- grids and helpers
def test_stimulus_grid_layouts():
    g = stimulus_grid(make_config(3), 5)
    assert g.shape == (2, 5, 5) and g.axis.tolist() == [-0.4, -0.2, 0.0, 0.2, 0.4]
    p = g.points()
    assert p["signed"].shape == (50, 2)
    # C order: context slowest, then stream 1, then stream 2; the relevant stream follows the context
    assert p["signed"][1].tolist() == [-0.4, -0.2] and p["relevant"][1] == pytest.approx(0.4)
    assert p["context"][25] == 1 and p["relevant"][25 + 1] == pytest.approx(0.2)
    x = g.inputs(make_config(3))
    assert x.shape == (50, 7) and np.allclose(x[:, 1] - x[:, 2], p["signed"][:, 0])
    assert np.all(x[:25, 5] == 1) and np.all(x[25:, 6] == 1)
    one = stimulus_grid(make_config(1), [0.3, -0.1, 0.0])
    assert one.shape == (1, 3) and one.axis.tolist() == [-0.1, 0.0, 0.3]
    three = stimulus_grid(make_config(4), 5)  # coherence 0 once, then 2 levels in each of 3 directions
    assert three.shape == (2, 7, 7) and three.direction.tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert three.inputs(make_config(4)).shape == (98, make_config(4).obs_dim)
    with pytest.raises(ValueError):
        stimulus_grid(make_config(3), 0)


def test_choice_readout_ignores_fixate_and_labels():
    dyn = Network(np.eye(2), np.eye(2), W_out=[[9.0, 9.0], [1.0, 0.0], [0.0, 1.0]])
    assert choice_readout(dyn, np.array([[3.0, 1.0], [0.0, 2.0], [np.nan, 1.0]])).tolist() == [0, 1, -1]
    assert choice_readout(Network(np.eye(2), np.eye(2)), np.ones((4, 2))).tolist() == [-1] * 4
    assert [attractor_label(k, c) for k, c in [("fixed_point", 0), ("fixed_point", 1), ("divergent", -1)]] == [
        "FP+", "FP-", "DIV"]
    assert attractor_label("quasi_periodic", 2, n_choices=3) == "QP3"


def test_fixed_point_exponents_match_eigenvalues():
    rng = np.random.default_rng(1)
    W = rng.normal(0, 1.0 / np.sqrt(40), (40, 40))
    pats = rng.random((12, 40)) < 0.6
    pats[0] = False  # nothing active: a nilpotent (zero) Jacobian
    est = fixed_point_exponents(W, pats, n_iter=2000, n_warmup=200, dtype=np.float64)
    exact = [np.log(np.abs(np.linalg.eigvals(W[np.ix_(p, p)])).max()) if p.any() else -np.inf for p in pats]
    assert est[0] == -np.inf
    np.testing.assert_allclose(est[1:], exact[1:], atol=5e-3)


# ---------------------------------------------------------------------------------------------- stimulus map
def test_stimulus_map_kinds_follow_the_gate(osc_map):
    m = osc_map
    assert m.shape == (2, 5, 5) and m.stage == "stimulus"
    low = np.abs(m.grid.axis) < 0.3  # the gate opens at |c| = theta / kappa = 0.3
    expected_qp = np.stack([np.broadcast_to(low[:, None], (5, 5)), np.broadcast_to(low[None, :], (5, 5))])
    np.testing.assert_array_equal(m.qp_present, expected_qp)
    np.testing.assert_array_equal(m.dominant, np.where(expected_qp, QP, FP))
    assert (m.n_attractors == 1).all()  # one attractor everywhere: a curve or a fixed point
    assert m.kind_counts.sum() == 50 and (m.basin_fraction.max(axis=-1) == 1).all()
    t = m.table
    assert set(t["kind"].tolist()) == {QP, FP}
    assert np.all(np.abs(t["lambda1"][t["kind"] == QP]) < 1e-3)
    assert np.all(t["transverse_stable"][t["kind"] == QP] == 1)  # an attracting invariant curve
    assert np.all(t["lambda1"][t["kind"] == FP] < -0.05)
    assert np.all(t["basin_count"] == 9) and np.all(t["basin_given"] == 3)  # 6 random + 3 observed states
    np.testing.assert_allclose(m.lambda1_dominant, m.lambda1_max)


def test_stimulus_map_summary_numbers(osc_map):
    s = osc_map.summary()
    assert s["n_attractors"] == 50 and s["counts"]["quasi_periodic"] == 30 and s["counts"]["fixed_point"] == 20
    assert s["qp_fraction"] == pytest.approx(0.6) and s["qp_point_fraction"] == pytest.approx(0.6)
    assert s["qp_fraction_reachable"] == pytest.approx(0.6) and s["n_reachable_states"] == 150
    assert s["divergent_fraction_reachable"] == 0 and s["unresolved_fraction_reachable"] == 0
    assert s["qp_fraction_reachable_low_coherence"] == 1.0 and s["qp_fraction_reachable_high_coherence"] == 0.0
    assert s["qp_basin_fraction"] == pytest.approx(0.6)
    assert s["qp_fraction_by_coherence"] == {"0": 1.0, "0.2": 1.0, "0.4": 0.0}
    # stream 1 decides in context 1 only; in context 2, 3 of its 5 points have |c2| < 0.3
    assert s["qp_fraction_by_stream_coherence"]["stream1"] == pytest.approx({"0": 0.8, "0.2": 0.8, "0.4": 0.3})
    assert s["qp_fraction_by_stream_coherence"]["stream2"] == pytest.approx({"0": 0.8, "0.2": 0.8, "0.4": 0.3})
    assert s["qp_fraction_low_coherence"] == 1.0 and s["qp_fraction_high_coherence"] == 0.0
    assert s["low_coherence_levels"] == [0.0] and s["high_coherence_levels"] == [0.4]
    assert s["qp_fraction_by_context"] == {"0": 0.6, "1": 0.6}
    assert s["multistability"] == {"1": 50} and s["mean_multistability"] == 1.0
    assert s["dominant_counts"]["quasi_periodic"] == 30
    assert abs(s["lambda1"]["max_non_stationary"]) < 1e-3 and s["unconverged"] == 0
    assert s["lambda1_by_coherence"]["0.4"] < -0.05
    json.dumps(osc_map.to_dict(), allow_nan=False)  # strict JSON


def test_reachable_fraction_weights_trial_states_and_leaves_out_divergent_and_unresolved():
    # Point 0: a QP attractor reached by 1 trial state, a fixed point by 3, divergence by 4; point 1: an unresolved
    # orbit (2 trial states) and a fixed point (6). Known answers by hand.
    K = {k: i for i, k in enumerate(KINDS)}
    kind = np.array([K["quasi_periodic"], K["fixed_point"], K["divergent"], K["unresolved"], K["fixed_point"]])
    n = len(kind)
    table = dict(point=np.array([0, 0, 0, 1, 1]), context=np.array([0, 0, 0, 1, 1]), kind=kind,
                 period=np.zeros(n, int), lambda1=np.zeros(n), lambda2=np.zeros(n),
                 basin_count=np.array([5, 5, 8, 4, 9]), basin_given=np.array([1, 3, 4, 2, 6]),
                 choice=np.zeros(n, int), action=np.zeros(n, int), norm=np.ones(n), converged=kind != K["unresolved"],
                 transverse_stable=np.full(n, -1))
    m = AttractorMap(stage="delay", contexts=np.array([0, 1]), grid=None, n_attractors=np.array([3, 2]),
                     dominant=np.array([0, 0]), kind_counts=np.zeros((2, len(KINDS)), int),
                     basin_fraction=np.zeros((2, len(KINDS))), lambda1_max=np.zeros(2), lambda1_dominant=np.zeros(2),
                     table=table, states=np.zeros((n, 3), np.float32))
    s = m.summary()
    assert s["qp_fraction_reachable"] == pytest.approx(1 / 10)  # 1 of the 10 trial states with a bounded attractor
    assert s["divergent_fraction_reachable"] == pytest.approx(4 / 16)
    assert s["unresolved_fraction_reachable"] == pytest.approx(2 / 16) and s["n_reachable_states"] == 16
    assert s["qp_fraction"] == pytest.approx(1 / 3)  # distinct bounded attractors: QP, FP, FP
    assert s["divergent_fraction"] == pytest.approx(1 / 5) and s["unresolved_fraction"] == pytest.approx(1 / 5)


def test_observed_states_come_from_the_stimulus_stage_of_the_points_context():
    from analysis.dynamics.maps import _observed_states

    dyn = gated_oscillator()
    run = dyn.forward(sample_trials(dyn.config, 40, np.random.default_rng(1)))
    obs = _observed_states(run, np.array([0, 1]), 12, seed=0)
    assert obs.shape == (2, 12, dyn.hidden_size)
    stim = run.trials.stage == 1  # every (trial, step) of the stimulus stage
    for k in (0, 1):
        pool = run.hidden[stim & (run.trials.context[:, None] == k)]
        d = np.abs(obs[k][:, None, :] - pool[None]).max(axis=2).min(axis=1)
        assert (d == 0).all()  # each observed state is a stimulus-stage state of a trial of that context
    onset = _observed_states(run, np.array([0, 1]), 12, seed=0, where="onset")
    first = run.stage_states("stimulus", "first")
    assert all((np.abs(onset[k][:, None] - first[None]).max(axis=2).min(axis=1) == 0).all() for k in (0, 1))
    with pytest.raises(ValueError, match="observed_from"):
        _observed_states(run, np.array([0, 1]), 12, seed=0, where="end")


def test_fixed_point_exponents_in_the_map_agree_with_exact():
    dyn = gated_oscillator()
    a = attractor_map(dyn, grid=[-0.4, 0.4], n_init=4, observed=False, progress=False, **FAST)
    b = attractor_map(dyn, grid=[-0.4, 0.4], n_init=4, observed=False, progress=False, exact_fp_exponents=True,
                      **FAST)
    assert (a.table["kind"] == FP).all()
    np.testing.assert_allclose(a.table["lambda1"], b.table["lambda1"], atol=1e-2)


def test_save_load_round_trip(osc_map, tmp_path):
    path = osc_map.save(tmp_path)
    assert path.name == "attractor_map.npz" and (tmp_path / "attractor_map.json").exists()
    with np.load(path) as z:  # what the experiment report reads
        assert z["qp_present"].shape == (2, 5, 5) and z["qp_present"].dtype == bool
        np.testing.assert_allclose(z["coherences"], [-0.4, -0.2, 0.0, 0.2, 0.4])
    back = AttractorMap.load(tmp_path)
    assert back.summary() == osc_map.summary()
    assert back.attractors is None and back.grid.labels() == osc_map.grid.labels()
    for k, v in osc_map.table.items():
        np.testing.assert_array_equal(back.table[k], v)
    np.testing.assert_array_equal(back.dominant, osc_map.dominant)
    assert AttractorMap.load(path).summary() == osc_map.summary()
    assert json.loads((tmp_path / "attractor_map.json").read_text())["qp_fraction"] == pytest.approx(0.6)


def test_observed_states_are_optional_and_results_deterministic():
    dyn = gated_oscillator()
    kw = dict(grid=[0.0, 0.4], n_init=3, progress=False, **FAST)
    a = attractor_map(dyn, observed=False, seed=3, **kw)
    b = attractor_map(dyn, observed=False, seed=3, **kw)
    assert a.settings["n_given"] == 0 and (a.table["basin_given"] == 0).all()
    for k in a.table:
        np.testing.assert_array_equal(a.table[k], b.table[k])
    with pytest.raises(ValueError, match="stage"):
        attractor_map(dyn, stage="fixation")
    with pytest.raises(ValueError, match="config"):
        attractor_map(Network(np.eye(2), np.eye(2)))


# ---------------------------------------------------------------------------------------------- decision basins
@pytest.mark.parametrize("stage", ["delay", "decision"])
def test_decision_basins_of_a_winner_take_all_network(stage, tmp_path):
    dyn = winner_take_all()
    trials = sample_trials(dyn.config, 60, np.random.default_rng(0))
    run = dyn.forward(trials)
    m = attractor_map(dyn, stage=stage, rollout=run, n_init=8, progress=False, **FAST)
    assert m.shape == (1,) and m.grid is None
    labels = m.labels()
    assert sorted(labels.tolist()) == ["FP+", "FP-"]
    fp_plus = m.states[labels.tolist().index("FP+")]
    np.testing.assert_allclose(fp_plus[:2], [2.0, 0.0], atol=1e-9)
    b = m.basins
    end = run.stage_states("stimulus", "last")
    winner = np.where(end[:, 0] > end[:, 1], 0, 1)  # the basin of a state is its larger integrator
    np.testing.assert_array_equal(b.choice, winner)
    np.testing.assert_array_equal(labels[b.attractor], np.where(winner == 0, "FP+", "FP-"))
    assert b.basin_match == pytest.approx(np.mean(winner == trials.correct_choice))
    assert 0.6 < b.basin_match < 1.0  # noisy evidence: mostly, not always, the correct side
    assert b.basin_match_own_choice == 1.0  # the network commits to the attractor it sits in
    s = m.summary()
    assert s["n_trials"] == 60 and {a["label"] for a in s["decision_attractors"]} == {"FP+", "FP-"}
    assert sum(a["trials"] for a in s["decision_attractors"]) == 60
    assert set(s["basin_match_by_coherence"]) <= {"0.1", "0.2", "0.4"}
    m.save(tmp_path)
    back = AttractorMap.load(tmp_path, stage=stage)
    np.testing.assert_array_equal(back.basins.attractor, b.attractor)
    assert back.summary() == s


def test_runaway_decisions_are_split_by_escape_direction():
    dyn = winner_take_all(self_excitation=1.2)
    trials = sample_trials(dyn.config, 40, np.random.default_rng(1))
    run = dyn.forward(trials)
    m = attractor_map(dyn, stage="delay", rollout=run, n_init=4, progress=False, **FAST)
    labels = m.labels()
    assert set(labels.tolist()) == {"DIV+", "DIV-"} and (m.table["kind"] == DIV).all()
    end = run.stage_states("stimulus", "last")
    np.testing.assert_array_equal(m.basins.choice, np.where(end[:, 0] > end[:, 1], 0, 1))
    assert m.table["basin_count"].sum() == 44  # 40 trials + 4 random states, each in exactly one escape


# ---------------------------------------------------------------------------------------------- tracking and the CLI
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    import torch

    import agents

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("run") / "sl"
    agents.train_sl(3, seed=1, hidden_size=12, batch_size=16, max_steps=4000, eval_every=1000, eval_trials=200,
                    checkpoint_every=2000, out_dir=out, progress=False)
    return out


TRACK_FAST = dict(grid=3, n_init=3, n_observed=2, trials=12, n_transient=200, n_record=300, progress=False)


def test_track_over_checkpoints(tiny_run):
    ckpts = RunDir(tiny_run).models()
    steps = [c.env_steps for c in ckpts]
    assert steps == sorted(steps) and len(set(steps)) == len(steps) and steps[0] == 0
    assert ckpts[-1].name == "final_model"
    tr = track(tiny_run, stage=["stimulus", "decision"], **TRACK_FAST)
    rows, summary = tr  # a (rows, summary) pair
    assert rows is tr.rows and summary is tr.summary
    assert len(rows) == len(ckpts) and [r["env_steps"] for r in rows] == steps
    assert rows[0]["progress"] == 0.0 and rows[-1]["progress"] == 1.0
    meta = json.loads((tiny_run / "metadata.json").read_text())
    curve = {e["env_steps"]: e["accuracy"] for e in meta["accuracy_curve"]}
    for r in rows:
        assert r["accuracy_source"] == "curve" and r["accuracy"] == curve[r["env_steps"]]
        assert 0.0 <= r["qp_fraction"] <= 1.0 and r["n_attractors"] >= 18  # 3 x 3 grid x 2 contexts
        assert 0.0 <= r["decision_basin_match"] <= 1.0  # the second stage's columns are prefixed
    assert np.isnan(rows[0]["map_change"]) and rows[-1]["map_change_to_final"] == 0.0
    s = summary
    assert s["n_checkpoints"] == len(ckpts) and s["qp_fraction"]["final"] == rows[-1]["qp_fraction"]
    assert s["accuracy"]["final"] == curve[steps[-1]]
    assert s["map_stable_from"]["checkpoint"] in [c.name for c in ckpts]
    assert len(tr.maps) == len(ckpts) and tr.maps[-1].qp_present.shape == (2, 3, 3)


def test_track_reuses_the_maps_of_a_checkpoint_with_the_same_weights(tiny_run, tmp_path):
    import shutil

    import agents

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    ckpts = RunDir(run).models()
    first, twin = ckpts[1], ckpts[2]  # give ``twin`` the weights of ``first``, at its own env steps
    model = agents.load_model(twin.path)
    model.policy.load_state_dict(agents.load_model(first.path).policy.state_dict())
    model.save(twin.path)
    rows = track(run, checkpoints=[first.name, twin.name], **TRACK_FAST).rows
    assert [r["env_steps"] for r in rows] == [first.env_steps, twin.env_steps]
    assert rows[1]["same_weights_as"] == first.name and "same_weights_as" not in rows[0]
    assert rows[1]["map_wall_time_s"] == 0.0 < rows[0]["map_wall_time_s"]
    alone = track(run, checkpoints=[twin.name], **TRACK_FAST).rows[0]  # computed afresh: the very same numbers
    for key in ("qp_fraction", "qp_fraction_reachable", "n_attractors", "lambda1_max", "mean_multistability"):
        assert rows[1][key] == alone[key] == rows[0][key], key
    assert "same_weights_as" not in alone


def test_track_evaluates_and_selects(tiny_run, tmp_path):
    tr = track(tiny_run, checkpoints=["step_0", "final_model"], evaluate="always", eval_trials=100, **TRACK_FAST)
    assert [r["checkpoint"] for r in tr.rows] == ["step_0", "final_model"]
    assert all(r["accuracy_source"] == "evaluated" and 0 <= r["accuracy"] <= 1 for r in tr.rows)
    assert pickle.loads(pickle.dumps(tr)).rows[1]["checkpoint"] == "final_model"
    tr.save(tmp_path, save_maps=True)
    back_tr = Tracking.load(tmp_path)
    assert [r["checkpoint"] for r in back_tr.rows] == ["step_0", "final_model"] and back_tr.maps == []
    back = json.loads((tmp_path / "track.json").read_text())
    assert [r["checkpoint"] for r in back["checkpoints"]] == ["step_0", "final_model"]
    assert (tmp_path / "track.csv").read_text().splitlines()[0].startswith("checkpoint,")
    assert (tmp_path / "maps" / "final_model" / "attractor_map.npz").exists()
    with pytest.raises(ValueError, match="unknown checkpoints"):
        track(tiny_run, checkpoints=["step_7"], **TRACK_FAST)
    with pytest.raises(FileNotFoundError):
        RunDir(tmp_path).models()


def test_figures_write_pngs(osc_map, tmp_path):
    from analysis.dynamics import figures as fd

    dyn = winner_take_all()
    run = dyn.forward(sample_trials(dyn.config, 30, np.random.default_rng(0)))
    dec = attractor_map(dyn, stage="decision", rollout=run, n_init=4, progress=False, **FAST)
    osc_run = gated_oscillator().forward(sample_trials(make_config(3), 20, np.random.default_rng(0)))
    fd.plot_attractor_map(osc_map, tmp_path / "map.png")
    fd.plot_lyapunov(osc_map, tmp_path / "lyap.png")
    fd.plot_qp_by_coherence(osc_map, tmp_path / "qp.png")
    fd.plot_trajectories_pca(osc_run, [osc_map], tmp_path / "pca.png")
    fd.plot_trajectories_pca(run, [dec], tmp_path / "pca_dec.png", color_by="context")
    fd.plot_decision_basins(run, dec, tmp_path / "basins.png")
    rows = [dict(progress=p, accuracy=0.5 + 0.4 * p, qp_fraction=0.3 * p) for p in (0.0, 0.5, 1.0)]
    fd.plot_qp_track(rows, tmp_path / "track.png")
    for name in ("map", "lyap", "qp", "pca", "pca_dec", "basins", "track"):
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError):
        fd.plot_attractor_map(dec)


def test_cli_dynamics_and_track_write_their_files(tiny_run, tmp_path):
    from analysis.cli import main

    out = tmp_path / "dyn"
    fast = ["--grid", "3", "--n-init", "3", "--observed", "2", "--trials", "12", "--n-transient", "200",
            "--n-record", "300", "--no-progress"]
    assert main(["analyze", "dynamics", str(tiny_run / "final_model.zip"), "--out", str(out), *fast]) == 0
    for name in ("summary.json", "attractors.csv", "basins.csv", "fixed_points.csv", "attractor_map.npz",
                 "attractor_map_delay.npz", "attractor_map_decision.json", "attractor_map.png", "lyapunov.png",
                 "qp_by_coherence.png", "trajectories_pca.png", "decision_basins.png"):
        assert (out / name).stat().st_size > 0, name
    s = json.loads((out / "summary.json").read_text())
    assert s["stimulus"]["n_points"] == 18 and 0 <= s["decision"]["basin_match"] <= 1
    assert s["decision_basins"]["delay"]["trials"] == 12
    assert len((out / "basins.csv").read_text().splitlines()) == 1 + 2 * 12
    assert AttractorMap.load(out).qp_present.shape == (2, 3, 3)
    tout = tmp_path / "track"
    assert main(["analyze", "track", str(tiny_run), "--out", str(tout), *fast]) == 0
    for name in ("track.json", "track.csv", "qp_fraction_track.png"):
        assert (tout / name).stat().st_size > 0, name
    assert main(["analyze", "track", str(tmp_path / "nothing"), "--out", str(tout), "--no-progress"]) == 2
