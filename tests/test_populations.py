"""Population assignment, balance, readout symmetry and ensemble summaries on networks whose groups are known."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

from analysis.populations.groups import (
    Populations,
    activity_vector,
    assign_populations,
    balance_index,
    delay_end_signatures,
    ensemble_summary,
    label_attractors,
    membership_jaccard,
    network_signatures,
    population_metrics,
    readout_symmetry,
    rollout_signatures,
    state_signature,
    signature_groups,
)

# Hand-built network on the level-3 inputs [fix, s1c1, s1c2, s2c1, s2c2, ctx1, ctx2]:
#   units 0..n+-1      G+  : winner-take-all block driven by the fixation input, inhibits G-
#   next n- units      G-  : the mirror block
#   2 units            Ga  : driven by the fixation input only (active on both decision attractors)
#   2 units            Gs  : driven by the stimulus channels only (active only under stimulus input)
#   2 units            silent: negative drive, never active
A_SELF, B_CROSS = 0.5, 1.5


def hand_network(n_plus: int = 4, n_minus: int = 4):
    H = n_plus + n_minus + 6
    P, M = np.arange(n_plus), np.arange(n_plus, n_plus + n_minus)
    ga, gs, silent = n_plus + n_minus + np.arange(2), n_plus + n_minus + 2 + np.arange(2), H - 2 + np.arange(2)
    W = np.zeros((H, H))
    W[np.ix_(P, P)] = A_SELF / n_plus
    W[np.ix_(M, M)] = A_SELF / n_minus
    W[np.ix_(P, M)] = -B_CROSS / n_minus
    W[np.ix_(M, P)] = -B_CROSS / n_plus
    W_in = np.zeros((H, 7))
    W_in[np.r_[P, M, ga], 0] = 1.0
    W_in[np.ix_(gs, [1, 2, 3, 4])] = 1.0
    W_in[silent, 0] = -1.0
    W_out = np.zeros((3, H))
    W_out[0, ga] = 10.0
    W_out[1, P] = 1.0
    W_out[2, M] = 1.0
    groups = {"G+": P, "G-": M, "Ga": ga, "Gs_stimulus": gs, "silent": silent}
    return W, W_in, W_out, groups


def _iterate(W, W_in, x, h, steps=300):
    for _ in range(steps):
        h = np.maximum(W @ h + W_in @ x, 0.0)
    return h


def hand_attractors(n_plus: int = 4, n_minus: int = 4):
    from dm_envs import make_config, stage_input

    W, W_in, W_out, groups = hand_network(n_plus, n_minus)
    cfg = make_config(3)
    H = W.shape[0]
    start_plus, start_minus = np.zeros(H), np.zeros(H)
    start_plus[groups["G+"]] = 1.0
    start_minus[groups["G-"]] = 1.0
    delay = stage_input(cfg, "delay", context=0)
    stim = stage_input(cfg, "stimulus", signed_coherence=[0.0, 0.0], context=0)
    return {
        "FP+": _iterate(W, W_in, delay, start_plus),
        "FP-": _iterate(W, W_in, delay, start_minus),
        "stim": _iterate(W, W_in, stim, start_plus),
    }, groups


def test_hand_built_network_has_the_expected_fixed_points():
    atts, g = hand_attractors()
    fp = atts["FP+"]
    # G+ units settle at 1 / (1 - a) = 2, G- are silenced by the cross-inhibition, Ga at 1
    np.testing.assert_allclose(fp[g["G+"]], 2.0)
    assert (fp[g["G-"]] == 0).all() and (fp[g["Gs_stimulus"]] == 0).all() and (fp[g["silent"]] == 0).all()
    np.testing.assert_allclose(fp[g["Ga"]], 1.0)


@pytest.mark.parametrize("gs", ["silent", "stimulus"])
def test_assignment_recovers_the_known_groups(gs):
    atts, g = hand_attractors()
    pops = assign_populations(atts, gs=gs)
    assert pops.indices("G+").tolist() == g["G+"].tolist()
    assert pops.indices("G-").tolist() == g["G-"].tolist()
    assert pops.indices("Ga").tolist() == g["Ga"].tolist()
    if gs == "silent":
        assert pops.indices("Gs").tolist() == g["silent"].tolist()
        assert pops.indices("none").tolist() == g["Gs_stimulus"].tolist()
        assert pops.sizes == {"G+": 4, "G-": 4, "Ga": 2, "Gs": 2, "silent": 0, "none": 2}
    else:  # the paper's Gs (stimulus population); silent units are a group of their own (issue 10)
        assert pops.indices("Gs").tolist() == g["Gs_stimulus"].tolist()
        assert pops.indices("silent").tolist() == g["silent"].tolist()
        assert pops.sizes == {"G+": 4, "G-": 4, "Ga": 2, "Gs": 2, "silent": 2, "none": 0}
    assert pops.balance == 1.0


def test_imbalanced_network_gives_the_expected_balance_index():
    atts, _ = hand_attractors(n_plus=6, n_minus=2)
    pops = assign_populations(atts)
    assert (pops.sizes["G+"], pops.sizes["G-"]) == (6, 2)
    assert pops.balance == pytest.approx(1 - 4 / 8)


def test_rollout_signatures_find_the_decision_and_stimulus_attractors():
    from dm_envs import make_config

    W, W_in, W_out, g = hand_network()
    H = W.shape[0]
    starts = np.zeros((6, H))
    starts[:3, g["G+"]] = np.array([[1.0], [0.5], [2.0]])
    starts[3:, g["G-"]] = np.array([[1.0], [0.5], [2.0]])
    sig = rollout_signatures(W, W_in, W_out, make_config(3), starts, n_transient=200, n_average=20)
    assert set(sig) == {"FP+", "FP-", "stim_ctx1", "stim_ctx2"}
    atts, _ = hand_attractors()
    # read state by state: 1 where a unit is on in most FP+ states (issue 10; before: the mean state)
    np.testing.assert_array_equal(sig["FP+"], (atts["FP+"] > 1e-6).astype(float))
    pops = assign_populations(sig, gs="stimulus")
    assert pops.indices("Gs").tolist() == g["Gs_stimulus"].tolist()
    assert pops.indices("G+").tolist() == g["G+"].tolist()


def test_each_context_map_starts_from_its_own_trials_states():
    from dm_envs import make_config

    W, W_in, W_out, g = hand_network()
    H = W.shape[0]
    starts = np.zeros((5, H))
    starts[:3, g["G+"]] = 1.0  # context 0: trials that ended on the choice-1 side
    starts[3:, g["G-"]] = 1.0  # context 1: choice 2
    ctx = np.array([0, 0, 0, 1, 1])
    sig, states = rollout_signatures(W, W_in, W_out, make_config(3), starts, start_contexts=ctx, n_transient=200,
                                     n_average=20, return_states=True)
    assert len(states["stim_ctx1"]) == 3 and len(states["stim_ctx2"]) == 2  # not all five in each context
    assert len(states["FP+"]) == 3 and len(states["FP-"]) == 2
    _, mixed = rollout_signatures(W, W_in, W_out, make_config(3), starts, n_transient=200, n_average=20,
                                  return_states=True)
    assert len(mixed["stim_ctx1"]) == 5 and len(mixed["FP+"]) == 6  # without contexts: every start everywhere


def test_state_signature_reads_units_state_by_state():
    states = np.array([[1.0, 0.3, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.2, 5.0]])
    # the mean state is positive for all three units; state by state only unit 0 is on in most states
    assert state_signature(states).tolist() == [1.0, 0.0, 0.0]
    assert state_signature(states, majority=0.2).tolist() == [1.0, 1.0, 1.0]
    assert state_signature(np.zeros((0, 3))).tolist() == [0.0, 0.0, 0.0]


def test_orbits_attractor_objects_and_thresholds():
    orbit = np.array([[0.0, 2.0, 0.0], [0.0, 0.0, 1e-9]])  # unit 1 active half the time; unit 2 below threshold
    assert activity_vector(orbit).tolist() == [0.0, 1.0, 5e-10]
    assert activity_vector(orbit, "max").tolist() == [0.0, 2.0, 1e-9]
    obj = SimpleNamespace(kind="quasiperiodic", orbit=orbit, mean_state=orbit.mean(0))
    pops = assign_populations({"FP+": [1.0, 0.0, 0.0], "FP-": [0.0, 0.0, 0.3], "QP": obj}, gs="stimulus")
    assert pops.labels.tolist() == ["G+", "Gs", "G-"]
    # a relative threshold of 50% of each attractor's peak drops weakly active units
    pops = assign_populations({"FP+": [1.0, 0.4, 0.0], "FP-": [0.0, 1.0, 0.0]}, threshold=0.5, relative=True)
    assert pops.labels.tolist() == ["G+", "G-", "silent"]
    assert pops.active.tolist() == [[True, False], [False, True], [False, False]]
    with pytest.raises(ValueError, match="not among"):
        assign_populations({"FP+": [1.0]}, minus="FP-")
    with pytest.raises(ValueError, match="same number of units"):
        assign_populations({"FP+": [1.0], "FP-": [1.0, 0.0]})


def test_several_decision_attractors_per_choice_and_explicit_stimulus_set():
    atts = {
        "FP+a": [1, 0, 0, 0, 0],
        "FP+b": [0, 1, 0, 0, 0],
        "FP-": [0, 1, 1, 0, 0],
        "stim": [0, 0, 0, 1, 0],
        "other": [0, 0, 0, 0, 1],
    }
    pops = assign_populations(atts, plus=["FP+a", "FP+b"], minus="FP-", stimulus=["stim"], gs="stimulus")
    assert pops.labels.tolist() == ["G+", "Ga", "G-", "Gs", "none"]


def test_balance_index_and_signature_groups():
    assert balance_index(10, 10) == 1.0
    assert balance_index(30, 10) == 0.5
    assert balance_index(5, 0) == 0.0
    assert np.isnan(balance_index(0, 0))
    sig = np.array([[1, 0], [0, 1], [1, 0], [0, 0]], bool)
    groups = signature_groups(sig, ["FP+", "FP-"])
    assert {k: v.tolist() for k, v in groups.items()} == {("FP+",): [0, 2], ("FP-",): [1], (): [3]}


def test_readout_symmetry_counts_and_masses():
    W_out = np.array([[9.0, 9, 9, 9, 9], [1.0, 0.5, 0.0, 0.2, 0.0], [0.0, 0.0, 0.7, 0.2, 0.1]])
    r = readout_symmetry(W_out, labels=np.array(["G+", "G+", "G-", "Ga", "G-"]))
    assert (r["n_plus"], r["n_minus"]) == (2, 2)  # unit 3 has d = 0
    assert r["mass_plus"] == pytest.approx(1.5) and r["mass_minus"] == pytest.approx(0.8)
    assert r["count_balance"] == 1.0
    assert r["mass_balance"] == pytest.approx(1 - 0.7 / 2.3)
    assert r["mean_difference_by_population"]["G-"] == pytest.approx(-0.4)
    r = readout_symmetry(W_out, units=np.array([0, 1]))
    assert (r["n_plus"], r["n_minus"], r["n_units"]) == (2, 0, 2)


def test_membership_jaccard_hand_values():
    a = ["G+", "G+", "G-", "G-", "Ga", "Gs"]
    b = ["G+", "G-", "G-", "G-", "Gs", "Gs"]
    j = membership_jaccard(a, b)
    assert j["G+"] == 0.5  # {0,1} vs {0}
    assert j["G-"] == pytest.approx(2 / 3)  # {2,3} vs {1,2,3}
    assert j["Ga"] == 0.0  # {4} vs {}
    assert j["Gs"] == 0.5  # {5} vs {4,5}
    assert j["mean"] == pytest.approx((0.5 + 2 / 3 + 0.0 + 0.5) / 4)
    assert membership_jaccard(a, a)["mean"] == 1.0


def test_ensemble_summary_matches_t_interval():
    vals = [0.9, 0.95, 0.7, 1.0, 0.85]
    s = ensemble_summary({"balance": vals})["balance"]
    v = np.array(vals)
    lo, hi = stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=stats.sem(v))
    assert s["mean"] == pytest.approx(v.mean()) and s["std"] == pytest.approx(v.std(ddof=1))
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((lo, hi))
    assert s["n"] == 5
    # a list of Populations summarises sizes and balance
    p1 = assign_populations({"FP+": [1, 1, 0], "FP-": [0, 0, 1]})
    p2 = assign_populations({"FP+": [1, 0, 0], "FP-": [0, 1, 1]})
    s = ensemble_summary([p1, p2])
    assert s["n_G+"]["mean"] == 1.5 and s["balance"]["mean"] == pytest.approx(2 / 3)
    assert population_metrics(p1, W_out=np.eye(3))["readout_count_balance"] == 1.0


def test_populations_to_dict_is_json_serialisable():
    import json

    atts, _ = hand_attractors()
    d = assign_populations(atts).to_dict()
    json.dumps(d)
    assert d["sizes"]["G+"] == 4 and isinstance(assign_populations(atts), Populations)


def test_attractor_objects_from_the_attractor_analysis():
    """Adapter check: attractors found by analysis.dynamics.attractors, labelled by the readout, give the known groups."""
    import analysis.dynamics.attractors as attractors
    from analysis.network import Network
    from dm_envs import make_config, stage_input

    W, W_in, W_out, g = hand_network()
    dyn = Network(W, W_in, W_out=W_out)
    cfg = make_config(3)
    starts = np.zeros((2, W.shape[0]))
    starts[0, g["G+"]] = starts[1, g["G-"]] = 1.0
    dec = attractors.find_attractors(dyn, stage_input(cfg, "delay", context=0), init_states=starts, n_init=8)
    stim = attractors.find_attractors(dyn, stage_input(cfg, "stimulus", signed_coherence=[0.0, 0.0], context=0),
                                      init_states=starts, n_init=8)
    atts, plus, minus = label_attractors(dec, stim, W_out=W_out)  # fixate wins at the delay fixed points: ignored
    assert (plus, minus) == (["FP+"], ["FP-"])
    pops = assign_populations(atts, plus=plus, minus=minus, gs="stimulus")
    assert pops.indices("G+").tolist() == g["G+"].tolist() and pops.indices("G-").tolist() == g["G-"].tolist()
    assert pops.indices("Gs").tolist() == g["Gs_stimulus"].tolist()
    with pytest.raises(ValueError, match="without a choice"):
        label_attractors([SimpleNamespace(decision=0, mean=np.zeros(3))])


# ---------------------------------------------------------------------------------------------------- pipeline / CLI
def test_pipeline_with_given_attractors_reports_the_known_groups():
    from dm_envs import make_config

    from analysis.populations.pipeline import run_population_analysis
    from analysis.network import Network

    W, W_in, W_out, g = hand_network()
    atts, _ = hand_attractors()
    rep = run_population_analysis(Network(W, W_in, W_out), make_config(3), n_trials=40, attractors=atts,
                                  gs="stimulus", n_shuffles=200, n_shuffles_connectivity=20, ablation_ks=(1, 2),
                                  ablation_repeats=2)
    s = rep.summary()
    assert s["populations"]["sizes"] == {"G+": 4, "G-": 4, "Ga": 2, "Gs": 2, "silent": 2, "none": 0}
    assert s["readout_symmetry"]["n_plus"] == 4 and s["readout_symmetry"]["n_minus"] == 4
    assert s["robustness"]["ablation"]["groups"] == ["random", "G+", "G-"]
    assert s["connectivity"]["structural_blocks"]["mean"][0][1] == pytest.approx(-B_CROSS / 4)  # G- -> G+
    import json

    json.dumps(s)


def test_cli_writes_the_report_for_a_weights_file(tmp_path):
    import json

    from analysis.cli import main
    from analysis.network import Network

    Network.random(24, 7, 3, seed=0).save(tmp_path / "w.npz")
    out = tmp_path / "out"
    rc = main(["analyze", "populations", str(tmp_path / "w.npz"), "--out", str(out), "--level", "3",
               "--trials", "40", "--shuffles", "100", "--skip", "connectivity", "robustness_ablation",
               "--no-figures"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_trials"] == 40 and "selectivity" in summary and "connectivity" not in summary
    assert (out / "units.csv").read_text().splitlines()[0].startswith("unit,population")
    # the same through the attractor analysis (analysis.dynamics.attractors) instead of the rollout stand-in
    rc = main(["analyze", "populations", str(tmp_path / "w.npz"), "--out", str(tmp_path / "out2"), "--trials", "40",
               "--attractors", "analysis", "--skip", "selectivity", "connectivity", "crystallization",
               "robustness_ablation", "--no-figures"])
    summary2 = json.loads((tmp_path / "out2" / "summary.json").read_text())
    assert rc == 0 and sum(summary2["populations"]["sizes"].values()) == 24


def test_cli_gives_a_clear_error_for_a_missing_model(tmp_path, capsys):
    from analysis.cli import main
    from analysis.network import Network

    assert main(["analyze", "populations", str(tmp_path / "missing.zip"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.strip() == f"dmd: error: no model file at {tmp_path / 'missing.zip'}"
    with pytest.raises(FileNotFoundError, match="no weights file"):
        Network.load(tmp_path / "missing.npz")


def _held_decision_trials(g: dict, H: int, n: int = 40):
    """Level-3 trials whose hidden states hold G+ (first half) or G- (second half) at every step."""
    from dm_envs import make_config, sample_trials

    trials = sample_trials(make_config(3), n, np.random.default_rng(0))
    hidden = np.zeros((n, trials.obs.shape[1], H))
    hidden[: n // 2, :, g["G+"]] = 1.0
    hidden[n // 2 :, :, g["G-"]] = 1.0
    choice = np.r_[np.zeros(n // 2, int), np.ones(n - n // 2, int)]
    return trials, hidden, choice


def test_delay_end_signatures_read_each_choice_and_label_missing_choices_by_readout():
    W, W_in, W_out, g = hand_network()
    H = W.shape[0]
    trials, hidden, choice = _held_decision_trials(g, H)
    hidden[0, :, g["Ga"][0]] = 1.0  # on in 1 of 20 G+ trials: under the majority
    sig = delay_end_signatures(hidden, trials, choice)
    assert np.flatnonzero(sig["FP+"]).tolist() == g["G+"].tolist()
    assert np.flatnonzero(sig["FP-"]).tolist() == g["G-"].tolist()
    # trials that ended without a choice: dropped without a readout, labelled by it with one
    none = np.full_like(choice, -1)
    assert delay_end_signatures(hidden, trials, none) == {}
    sig = delay_end_signatures(hidden, trials, none, W_out=W_out)
    assert np.flatnonzero(sig["FP+"]).tolist() == g["G+"].tolist()
    assert np.flatnonzero(sig["FP-"]).tolist() == g["G-"].tolist()


def test_network_signatures_fall_back_to_delay_end_states_when_an_attractor_is_unbounded():
    from analysis.network import Network
    from dm_envs import make_config

    W, W_in, W_out, g = hand_network()
    H = W.shape[0]
    trials, hidden, choice = _held_decision_trials(g, H)
    cfg = make_config(3)
    sig, source = network_signatures(Network(W, W_in, W_out), cfg, trials, hidden, choice)
    assert source == "attractors"
    np.testing.assert_array_equal(sig["FP+"], (hand_attractors()[0]["FP+"] > 1e-6).astype(float))

    W_div = W.copy()
    W_div[np.ix_(g["G+"], g["G+"])] = 2.0 / len(g["G+"])  # the G+ block now grows without bound
    w = Network(W_div, W_in, W_out)
    sig, source = network_signatures(w, cfg, trials, hidden, choice)
    assert source == "delay_end"
    assert np.flatnonzero(sig["FP+"]).tolist() == g["G+"].tolist()
    assert {"stim_ctx1", "stim_ctx2"} <= set(sig)
    assert network_signatures(w, cfg, trials, hidden, choice, decision="attractors")[1] == "attractors"
    assert network_signatures(Network(W, W_in, W_out), cfg, trials, hidden, choice,
                              decision="delay_end")[1] == "delay_end"
    with pytest.raises(ValueError, match="decision must be one of"):
        network_signatures(w, cfg, trials, hidden, choice, decision="fixed")
