"""TensorBoard as the place to watch a network learn: distinct loss tags, histograms, hparams, the dynamics probe
(``dynamics/*`` scalars and images at every checkpoint), read back with TensorBoard's own event reader."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch as th
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from agents import load_metadata, train_rl, train_sl
from agents.tensorboard import HISTOGRAM_STREAM, TrainingHistograms
from analysis import Network, attractor_map
from analysis.dynamics.probe import DynamicsProbe, reachable_fractions
from dm_envs import make_config
from training_helpers import RL_TINY, SL_TINY

th.set_num_threads(1)

# level 3 (two contexts: the probe's grid has 2 x 3 x 3 inputs); a few checkpoints each
RL_TB = {**RL_TINY, "max_steps": 2048, "checkpoint_every": 1024}
SL_TB = {**SL_TINY, "max_steps": 4000, "checkpoint_every": 2000}
DYNAMICS = ("spectral_radius", "qp_fraction", "fixed_point_fraction", "periodic_fraction", "chaotic_fraction",
            "divergent_fraction", "unresolved_fraction", "n_attractors")
HISTOGRAMS = ("weights/W_rec", "weights/W_in", "weights/W_out", "activity/hidden", "activity/hidden_stimulus")


def events(run_dir) -> EventAccumulator:
    acc = EventAccumulator(str(Path(run_dir) / "tb"),
                           size_guidance={"scalars": 0, "histograms": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def step_checkpoints(run_dir) -> list[int]:
    return sorted(int(p.stem.split("_")[1]) for p in (Path(run_dir) / "checkpoints").glob("step_*.zip"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tb")
    probe = DynamicsProbe()
    rl = train_rl(3, seed=2, out_dir=root / "rl", checkpoint_hooks=[probe], **RL_TB)
    sl = train_sl(3, seed=2, out_dir=root / "sl", checkpoint_hooks=[DynamicsProbe()], **SL_TB)
    return {"rl": rl, "sl": sl, "probe": probe}


def test_each_learning_rule_has_its_own_loss_tags(runs) -> None:
    rl, sl = (set(events(runs[k].run_dir).Tags()["scalars"]) for k in ("rl", "sl"))
    assert {"train/loss", "train/policy_gradient_loss", "train/value_loss", "train/entropy_loss",
            "train/approx_kl"} <= rl  # SB3's own PPO tags
    assert {"train/cross_entropy", "train/grad_norm", "train/batch_accuracy"} <= sl
    assert "train/cross_entropy" not in rl
    assert not {t for t in sl if t.startswith("train/")} & {t for t in rl if t.startswith("train/")}


@pytest.mark.parametrize("which", ["rl", "sl"])
def test_histograms_and_dynamics_at_every_checkpoint(runs, which) -> None:
    result = runs[which]
    acc = events(result.run_dir)
    tags = acc.Tags()
    steps = step_checkpoints(result.run_dir)
    final = result.metadata["env_steps"]
    assert steps[0] == 0 and len(steps) >= 2
    expected = sorted(set(steps) | {final})  # every regular checkpoint, and the final model
    for tag in HISTOGRAMS:
        assert tag in tags["histograms"], tag
        assert [e.step for e in acc.Histograms(tag)] == expected
    h = acc.Histograms("weights/W_rec")[0].histogram_value
    assert h.num == 16 * 16 and h.min < 0 < h.max  # U(-delta, delta) at step 0
    assert acc.Histograms("activity/hidden")[0].histogram_value.min >= 0  # ReLU units
    for name in DYNAMICS:
        assert [e.step for e in acc.Scalars(f"dynamics/{name}")] == expected, name
    for tag in ("dynamics/attractor_map", "dynamics/trajectories"):
        imgs = acc.Images(tag)
        assert [e.step for e in imgs] == expected
        assert imgs[0].width > 100 and imgs[0].height > 100 and imgs[0].encoded_image_string[:4] == b"\x89PNG"
    radius = acc.Scalars("dynamics/spectral_radius")[0].value
    W = Network.load(Path(result.run_dir) / "checkpoints" / "step_0.zip").W_rec
    assert radius == pytest.approx(np.abs(np.linalg.eigvals(W)).max(), rel=1e-6)
    hooks = acc.Scalars("time/checkpoint_hooks_s")
    assert len(hooks) == len(expected) and all(a.value < b.value for a, b in zip(hooks, hooks[1:]))


@pytest.mark.parametrize("which", ["rl", "sl"])
def test_hparams_hold_settings_and_final_metrics(runs, which) -> None:
    from tensorboard.plugins.hparams import plugin_data_pb2

    result = runs[which]
    meta = result.metadata
    acc = events(result.run_dir)
    content = acc.PluginTagToContent("hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"} <= set(content)
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    hp = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items()}
    assert hp["learning_rule"] == which and hp["seed"] == 2 and hp["hidden_size"] == 16 and hp["task"] == "level3"
    assert hp[f"{which}.learning_rate"] == pytest.approx(meta["hyperparameters"]["learning_rate"])
    exp = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    metric_tags = {m.name.tag for m in exp.metric_infos}
    assert {"hparams/final_accuracy", "hparams/steps_to_criterion", "hparams/wall_time",
            "dynamics/qp_fraction", "dynamics/spectral_radius", "activity/mean"} <= metric_tags
    assert acc.Scalars("hparams/final_accuracy")[-1].value == pytest.approx(meta["final_accuracy"], rel=1e-6)
    assert math.isnan(acc.Scalars("hparams/steps_to_criterion")[-1].value)  # the tiny run misses the criterion


@pytest.mark.parametrize("which", ["rl", "sl"])
def test_probe_scalars_are_the_attractor_map_of_the_checkpoint(runs, which) -> None:
    """The probe is the analysis: attractor_map of the saved checkpoint, with the probe's settings, gives the logged
    numbers at every checkpoint."""
    result, probe = runs[which], runs["probe"]
    acc = events(result.run_dir)
    logged = {name: {e.step: e.value for e in acc.Scalars(f"dynamics/{name}")} for name in DYNAMICS}
    for step in step_checkpoints(result.run_dir):
        path = Path(result.run_dir) / "checkpoints" / f"step_{step}.zip"
        amap = attractor_map(path, **probe.map_settings())
        s, frac = amap.summary(), reachable_fractions(amap)
        expect = {
            "qp_fraction": s["qp_fraction_reachable"], "divergent_fraction": s["divergent_fraction_reachable"],
            "unresolved_fraction": s["unresolved_fraction_reachable"], "fixed_point_fraction": frac["fixed_point"],
            "periodic_fraction": frac["periodic"], "chaotic_fraction": frac["chaotic"],
            "n_attractors": float(amap.n_attractors.mean()),
        }
        for name, value in expect.items():
            if math.isnan(value):
                assert math.isnan(logged[name][step]), (step, name)
            else:
                assert logged[name][step] == pytest.approx(value, rel=1e-6, abs=1e-7), (step, name)
        assert s["n_reachable_states"] == 2 * 9 * probe.n_observed  # two contexts x 3 x 3 inputs x states
    final = DynamicsProbe(images=False).measure(Path(result.run_dir) / "final_model.zip")  # a zip, as the analysis
    end = result.metadata["env_steps"]
    for name in DYNAMICS:
        value = final.scalars[f"dynamics/{name}"]
        assert logged[name][end] == pytest.approx(value, rel=1e-6, abs=1e-7) or math.isnan(value), name


def test_probe_on_known_networks() -> None:
    """A contracting network settles on fixed points everywhere; an expanding one diverges everywhere; a rotation
    by an irrational angle on an invariant circle is quasi-periodic. The probe reports what attractor_map finds."""
    cfg = make_config(3)
    D = 7
    rng = np.random.default_rng(0)
    W_in = np.abs(rng.normal(size=(4, D)))
    probe = DynamicsProbe(images=False)
    calm = probe.measure(Network(0.5 * np.eye(4), W_in, W_out=np.ones((3, 4)), config=cfg))
    assert calm.scalars["dynamics/spectral_radius"] == pytest.approx(0.5)
    assert calm.scalars["dynamics/fixed_point_fraction"] == 1.0 and calm.scalars["dynamics/qp_fraction"] == 0.0
    assert calm.scalars["dynamics/divergent_fraction"] == 0.0
    wild = probe.measure(Network(1.5 * np.eye(4), W_in, W_out=np.ones((3, 4)), config=cfg))
    assert wild.scalars["dynamics/divergent_fraction"] == 1.0 and math.isnan(wild.scalars["dynamics/qp_fraction"])
    for res in (calm, wild):  # the same numbers as the analysis' map with the probe's settings
        net = res.network
        amap = attractor_map(net, rollout=res.rollout, **{k: v for k, v in probe.map_settings().items()
                                                          if k != "trials"})
        s = amap.summary()
        assert s["divergent_fraction_reachable"] == res.scalars["dynamics/divergent_fraction"]
        assert (s["qp_fraction_reachable"] == res.scalars["dynamics/qp_fraction"]
                or math.isnan(s["qp_fraction_reachable"]) and math.isnan(res.scalars["dynamics/qp_fraction"]))


def test_hooks_never_change_training(tmp_path) -> None:
    """Weights are bit-identical with and without every extra, even with a hook that draws from the global
    generators (the monitor puts them back)."""

    def greedy_hook(ctx):
        np.random.rand(10)
        th.rand(10)
        ctx.writer.add_scalar("custom/x", 1.0, ctx.env_steps)
        return {"custom/x": 1.0}

    tiny = {**RL_TB, "max_steps": 1024, "checkpoint_every": 512}
    a = train_rl(3, seed=5, out_dir=tmp_path / "a", checkpoint_hooks=[DynamicsProbe(images=False), greedy_hook],
                 **tiny)
    b = train_rl(3, seed=5, out_dir=tmp_path / "b", tensorboard_extras=False, **tiny)
    sa, sb = a.model.policy.state_dict(), b.model.policy.state_dict()
    assert all(th.equal(sa[k], sb[k]) for k in sa)
    curve = lambda r: [c["accuracy"] for c in r.metadata["accuracy_curve"]]  # noqa: E731
    assert curve(a) == curve(b)
    assert "custom/x" in events(a.run_dir).Tags()["scalars"]
    bare = events(b.run_dir).Tags()
    assert not bare["histograms"] and not bare["images"] and not any(t.startswith("dynamics/") for t in bare["scalars"])


def test_histogram_trials_are_their_own_stream() -> None:
    from dm_envs import sample_trials

    cfg = make_config(3)
    h = TrainingHistograms(n_trials=8)
    mine = h.trials(cfg, seed=1)
    again = sample_trials(cfg, 8, np.random.default_rng([1, HISTOGRAM_STREAM]))
    assert np.array_equal(mine.obs, again.obs) and h.trials(cfg, seed=1) is mine


@pytest.mark.parametrize("flag", [[], ["--no-probe"]])
def test_dmd_train_runs_the_probe_by_default(tmp_path, flag) -> None:
    from analysis.cli import main

    out = tmp_path / "run"
    code = main(["train", "sl", "-c", "3", "--hidden-size", "16", "--batch-size", "16", "--max-steps", "2000",
                 "--eval-every", "1000", "--eval-trials", "100", "--checkpoint-every", "1000", "--no-progress",
                 "--out", str(out), *flag])
    assert code == 3  # budget exhausted
    tags = events(out).Tags()
    has_dynamics = any(t.startswith("dynamics/") for t in tags["scalars"])
    assert has_dynamics == (not flag)
    assert "weights/W_rec" in tags["histograms"] and "train/cross_entropy" in tags["scalars"]
    assert load_metadata(out / "final_model.zip")["status"] == "budget_exhausted"


def test_experiment_cells_pass_the_probe(monkeypatch, tmp_path) -> None:
    import agents
    from analysis.experiments.spec import Cell, ExperimentSpec

    cell_module = importlib.import_module("analysis.experiments.cell")
    seen = []

    class Stop(Exception):
        pass

    def fake_trainer(run, hyperparameters, **kwargs):
        seen.append(kwargs)
        raise Stop

    specs = [(ExperimentSpec.from_dict({"rules": ["sl"], "analysis": analysis}), expect)
             for analysis, expect in (({}, True), ({"dynamics_probe": False}, False))]
    monkeypatch.setattr(agents, "train_sl", fake_trainer)
    for spec, expect in specs:
        with pytest.raises(Stop):
            cell_module._train(spec, Cell("sl", 0.1, 0, 3), tmp_path / "run")
        hooks = seen[-1]["checkpoint_hooks"]
        assert any(isinstance(h, DynamicsProbe) for h in hooks) == expect


def test_a_failing_hook_warns_and_training_goes_on(tmp_path) -> None:
    calls = []

    def broken(ctx):
        calls.append(ctx.env_steps)
        raise ZeroDivisionError("oops")

    tiny = {**SL_TB, "max_steps": 2000, "checkpoint_every": 1000}
    with pytest.warns(RuntimeWarning, match="checkpoint hook broken failed at 0 env steps.*ZeroDivisionError"):
        result = train_sl(3, seed=1, out_dir=tmp_path / "run", checkpoint_hooks=[broken], **tiny)
    assert result.status == "budget_exhausted" and calls == [0]  # dropped after its failure
    assert "weights/W_rec" in events(result.run_dir).Tags()["histograms"]  # the other hooks went on
