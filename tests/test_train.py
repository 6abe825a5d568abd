"""The RL and SL trainers: run folders, matched initial weights, determinism, stopping rule, resume, errors."""

from __future__ import annotations

import importlib
import json
import signal
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch as th
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.callbacks import BaseCallback

from agents import (
    Evaluator,
    ModelLoadError,
    StoppingRule,
    TrainingDiverged,
    evaluate_policy,
    load_metadata,
    load_model,
    run_policy,
    train_rl,
    train_sl,
    wilson_interval,
)
from agents.evaluation import first_crossings
from agents.runs import RunDir, build_model, policy_kwargs
from dm_envs import TrialDataset, make_config, score_actions
from training_helpers import RL_TINY, SL_TINY, ReadoutAt, SignalAt, sl_interrupted_at

th.set_num_threads(1)
train_sl_module = importlib.import_module("agents.train_sl")



def params(model) -> dict[str, th.Tensor]:
    return {k: v.clone() for k, v in model.policy.state_dict().items()}


def assert_same_weights(a, b) -> None:
    pa, pb = params(a), params(b)
    assert pa.keys() == pb.keys()
    for k in pa:
        assert th.equal(pa[k], pb[k]), k


@pytest.fixture(scope="module")
def rl_run(tmp_path_factory):
    return train_rl(1, seed=3, out_dir=tmp_path_factory.mktemp("rl") / "run", **RL_TINY)


@pytest.fixture(scope="module")
def sl_run(tmp_path_factory):
    return train_sl(1, seed=3, out_dir=tmp_path_factory.mktemp("sl") / "run", **SL_TINY)


# ---------------------------------------------------------------------- run folders and metadata
@pytest.mark.parametrize("which", ["rl", "sl"])
def test_run_folder_layout_and_metadata(which, rl_run, sl_run) -> None:
    result = rl_run if which == "rl" else sl_run
    root = Path(result.run_dir)
    assert (root / "final_model.zip").is_file() and (root / "metadata.json").is_file()
    ckpts = sorted(p.name for p in (root / "checkpoints").glob("*.zip"))
    assert "step_0.zip" in ckpts and len([c for c in ckpts if c.startswith("step_")]) >= 2
    assert any((root / "tb").glob("events.out.tfevents.*"))
    meta = json.loads((root / "metadata.json").read_text())
    assert meta == json.loads(json.dumps(result.metadata))
    assert meta["learning_rule"] == which and meta["status"] == "budget_exhausted" and not meta["reached_target"]
    assert meta["task_config"] == make_config(1).to_dict()
    assert (meta["seed"], meta["delta"], meta["hidden_size"]) == (3, 0.1, 16)
    assert meta["steps_to_criterion"] is None and meta["env_steps"] >= meta["max_steps"]
    assert meta["trials"] > 0 and meta["wall_time"] > 0
    if which == "rl":  # optimizer steps: 2 minibatches of 128 per 256-step rollout, 1 epoch
        assert meta["updates"] == 2 * (meta["env_steps"] // 256)
    else:
        assert meta["updates"] == meta["trials"] // SL_TINY["batch_size"]
    assert {"torch", "stable-baselines3", "sb3-contrib", "numpy", "python"} <= set(meta["versions"])
    curve = meta["accuracy_curve"]
    assert curve[0]["env_steps"] == 0 and curve[-1]["env_steps"] == meta["env_steps"]
    assert [c["env_steps"] for c in curve] == sorted(c["env_steps"] for c in curve)
    assert {"accuracy", "lower", "by_coherence", "rates", "trials", "wall_time", "n_trials"} <= set(curve[0])
    assert meta["stopping_rule"]["target"] == 0.95
    # The zips carry the metadata and open with plain RecurrentPPO.load.
    carried = load_metadata(root / "final_model.zip")
    assert carried["learning_rule"] == which and carried["env_steps"] == meta["env_steps"]
    model = RecurrentPPO.load(root / "final_model.zip")
    assert model.dmd_metadata["seed"] == 3
    assert load_metadata(root / "checkpoints" / "step_0.zip")["env_steps"] == 0
    assert_same_weights(model, result.model)


def test_tensorboard_layout_is_shared(rl_run, sl_run) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = {}
    for which, result in (("rl", rl_run), ("sl", sl_run)):
        acc = EventAccumulator(str(Path(result.run_dir) / "tb"))
        acc.Reload()
        tags[which] = set(acc.Tags()["scalars"])
    shared = {"eval/accuracy", "eval/accuracy_lower", "eval/reward", "eval/rate_miss", "eval/fixation_break_rate",
              "eval_vs_trials/accuracy", "time/trials", "time/trials_per_s", "time/fps"}
    for which in ("rl", "sl"):
        assert shared <= tags[which], shared - tags[which]
        assert any(t.startswith("eval/accuracy_coh_") for t in tags[which])
    assert {"train/value_loss", "train/policy_gradient_loss", "rollout/ep_rew_mean"} <= tags["rl"]
    assert {"train/cross_entropy", "train/batch_accuracy"} <= tags["sl"]  # issue 12: not train/loss, PPO's tag


def test_same_seed_gives_bit_identical_initial_weights(rl_run, sl_run, tmp_path) -> None:
    rl0 = load_model(Path(rl_run.run_dir) / "checkpoints" / "step_0.zip")
    sl0 = load_model(Path(sl_run.run_dir) / "checkpoints" / "step_0.zip")
    assert_same_weights(rl0, sl0)
    direct = build_model(make_config(1), 3, policy_kwargs(16, 0.1, 3), n_envs=4)
    assert_same_weights(rl0, direct)
    other = build_model(make_config(1), 4, policy_kwargs(16, 0.1, 4), n_envs=4)
    assert not th.equal(params(other)["lstm_actor.weight_hh_l0"], params(direct)["lstm_actor.weight_hh_l0"])


def test_same_training_run_twice_is_identical(rl_run, sl_run, tmp_path) -> None:
    again_rl = train_rl(1, seed=3, out_dir=tmp_path / "rl", **RL_TINY)
    again_sl = train_sl(1, seed=3, out_dir=tmp_path / "sl", **SL_TINY)
    assert_same_weights(again_rl.model, rl_run.model)
    assert_same_weights(again_sl.model, sl_run.model)
    for a, b in ((again_rl, rl_run), (again_sl, sl_run)):
        assert [c["accuracy"] for c in a.metadata["accuracy_curve"]] == [
            c["accuracy"] for c in b.metadata["accuracy_curve"]]


def test_reaching_the_target_stops_and_checkpoints_crossings(tmp_path) -> None:
    # A target the tiny SL net reaches quickly: the run stops early, with crossing checkpoints.
    r = train_sl(1, seed=0, out_dir=tmp_path / "sl", target_accuracy=0.75, **{**SL_TINY, "max_steps": 3_000_000})
    m = r.metadata
    assert r.status == "reached_target" and r.reached_target and m["env_steps"] < 3_000_000
    assert m["steps_to_criterion"] == m["env_steps"] and m["trials_to_criterion"] == m["trials"]
    last = m["accuracy_curve"][-1]
    assert StoppingRule(0.75).passes(last) and m["criterion"]["lower"] >= 0.75
    ck = Path(r.run_dir) / "checkpoints"
    assert (ck / "acc_050.zip").exists() and (ck / "acc_070.zip").exists() and (ck / "acc_target.zip").exists()
    assert not (ck / "acc_090.zip").exists()  # 0.9 is above the target: not a crossing level of this run
    assert set(m["crossings"]) == {"0.5", "0.7", "target"}
    # the final model is the evaluated one: re-evaluating it on the same trials gives the same accuracy
    ev = Evaluator(make_config(1), 200, seed=0)
    again = evaluate_policy(load_model(Path(r.run_dir) / "final_model.zip"), ev.trials(len(m["accuracy_curve"]) - 1))
    assert again.accuracy == last["accuracy"]


def test_train_past_keeps_the_criterion_and_trains_on(tmp_path) -> None:
    # The same run, stopped at the criterion and trained on to 3x its trials: identical up to the criterion.
    kw = dict(target_accuracy=0.75, **{**SL_TINY, "max_steps": 3_000_000})
    at = train_sl(1, seed=0, out_dir=tmp_path / "at", **kw).metadata
    past = train_sl(1, seed=0, out_dir=tmp_path / "past", train_past=3.0, **kw).metadata
    drop = lambda c: {k: v for k, v in c.items() if k != "wall_time"}  # noqa: E731
    assert past["status"] == "reached_target" and drop(past["criterion"]) == drop(at["criterion"])
    assert past["trials_to_criterion"] == at["trials_to_criterion"]
    assert 3 * at["trials_to_criterion"] <= past["trials"] < 3 * at["trials_to_criterion"] + 1000 * 16
    assert past["stopping_rule"]["train_past"] == 3.0 and "train_past" not in at["stopping_rule"]


def test_stopping_rule_train_past() -> None:
    rule = StoppingRule(0.9, train_past=2.0)
    hist = [{"accuracy": a, "n_trials": 2000, "trials": t} for a, t in ((0.5, 100), (0.97, 200), (0.8, 300))]
    assert rule.reached(hist[:2]) and not rule.should_stop(hist[:2])  # criterion at 200 trials, stop at >= 400
    assert not rule.should_stop(hist)  # a later failing evaluation does not move the criterion
    assert rule.should_stop(hist + [{"accuracy": 0.5, "n_trials": 2000, "trials": 400}])
    with pytest.raises(ValueError, match="train_past"):
        StoppingRule(0.9, train_past=0.5)


def test_sl_learns_level1_quickly_with_a_small_net(tmp_path) -> None:
    r = train_sl(1, seed=0, hidden_size=32, out_dir=tmp_path / "sl", max_steps=4_000_000, eval_every=100_000,
                 eval_trials=1000, checkpoint_every=2_000_000, progress=False)
    assert r.reached_target, r.metadata["accuracy_curve"][-1]
    assert r.accuracy >= 0.95
    final = Evaluator(make_config(1), 4000, seed=99)(r.model)
    assert final.accuracy > 0.93 and final.by_coherence[0.4] > 0.99


# ---------------------------------------------------------------------- evaluator and stopping rule
def test_wilson_interval() -> None:
    lo, hi = wilson_interval(95, 100, z=1.96)
    assert lo == pytest.approx(0.8882, abs=1e-4) and hi == pytest.approx(0.9785, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(1900, 2000)
    assert lo < 0.95 < hi


def test_stopping_rule_ignores_evaluation_noise() -> None:
    rule = StoppingRule(0.95)
    # The draft task: ten 500-trial evaluations averaging 0.918, then a lucky 0.950.
    draft = [(a, 500) for a in (0.91, 0.92, 0.93, 0.914, 0.922, 0.91, 0.926, 0.918, 0.912, 0.928)] + [(0.950, 500)]
    assert not any(rule.should_stop(draft[: i + 1]) for i in range(len(draft)))
    rng = np.random.default_rng(0)
    # A policy stuck at 94%, evaluated 300 times on 2000 fresh trials: the rule never fires.
    stuck = [(k / 2000, 2000) for k in rng.binomial(2000, 0.94, size=300)]
    assert not any(rule.passes(r) for r in stuck)
    # A policy at 97% passes at once.
    good = [(k / 2000, 2000) for k in rng.binomial(2000, 0.97, size=50)]
    assert all(rule.passes(r) for r in good)
    # The bound sits at ~0.958 for 2000 trials, ~0.968 for 500.
    assert not rule.passes((0.957, 2000)) and rule.passes((0.959, 2000)) and not rule.passes((0.966, 500))


def test_stopping_rule_consecutive_and_records() -> None:
    rule = StoppingRule(0.9, consecutive=2)
    assert not rule.should_stop([(0.97, 2000)])
    assert not rule.should_stop([(0.97, 2000), (0.85, 2000), (0.97, 2000)])
    assert rule.should_stop([(0.85, 2000), (0.97, 2000), (0.96, 2000)])
    assert rule.should_stop([{"accuracy": 0.97, "n_trials": 2000}] * 2)
    assert "2 consecutive" in rule.describe()
    with pytest.raises(ValueError):
        StoppingRule(1.5)
    assert first_crossings([(0.4, 10), (0.72, 10), (0.6, 10), (0.95, 10)], (0.5, 0.7, 0.9)) == {0.5: 1, 0.7: 1, 0.9: 3}


def test_evaluator_streams_and_greedy_scores(rl_run) -> None:
    cfg = make_config(1)
    ev = Evaluator(cfg, 300, seed=3)
    a, b = ev.trials(0), ev.trials(1)
    np.testing.assert_array_equal(a.obs, Evaluator(cfg, 300, seed=3).trials(0).obs)
    assert not np.array_equal(a.obs[:, :5], b.obs[:, :5])
    training = TrialDataset(config=cfg, batch_size=300, seed=3).sample().trials  # the training stream of seed 3
    assert not np.array_equal(a.obs[:, :5], training.obs[:, :5])
    first = ev(rl_run.model)
    assert ev.index == 1
    scores = score_actions(a, run_policy(rl_run.model, a).actions)  # the same greedy actions as run_policy
    assert first.accuracy == scores.accuracy and first.n_trials == 300
    assert first.lower <= first.accuracy <= first.upper
    assert sum(first.rates.values()) == pytest.approx(1.0)


# ---------------------------------------------------------------------- interruption, resume, errors
def test_rl_interrupt_saves_a_checkpoint_and_resume_continues(tmp_path) -> None:
    out = tmp_path / "rl"
    r = train_rl(1, seed=1, out_dir=out, callback=SignalAt(700), **RL_TINY)
    # stopped mid-rollout: the checkpoint is of the rollout's start (256-step rollouts), which a resume redoes
    assert r.status == "interrupted" and r.metadata["env_steps"] == 512
    saved = Path(out) / "checkpoints" / f"step_{r.metadata['env_steps']}.zip"
    assert saved.exists() and not (Path(out) / "final_model.zip").exists()
    assert_same_weights(load_model(saved), r.model)
    assert load_metadata(saved)["status"] == "interrupted"
    n_curve = len(r.metadata["accuracy_curve"])
    with pytest.raises(FileExistsError):
        train_rl(1, seed=1, out_dir=out, **RL_TINY)
    with pytest.raises(ValueError, match="different run"):
        train_rl(1, seed=2, out_dir=out, resume=True, **RL_TINY)
    done = train_rl(1, seed=1, out_dir=out, resume=True, **RL_TINY)
    m = done.metadata
    assert done.status == "budget_exhausted" and m["env_steps"] >= 2048
    assert [x["from"] for x in m["resumes"]] == [f"checkpoints/{saved.name}"]
    assert len(m["accuracy_curve"]) > n_curve
    steps = [c["env_steps"] for c in m["accuracy_curve"]]
    assert steps == sorted(steps) and m["wall_time"] > r.metadata["wall_time"]
    # resuming a finished run that reached its target is a no-op; resuming with a larger budget continues
    more = train_rl(1, seed=1, out_dir=out, resume=True, **{**RL_TINY, "max_steps": 3072})
    assert more.metadata["env_steps"] >= 3072 and len(more.metadata["resumes"]) == 2


def test_sl_sigterm_saves_a_checkpoint_and_resume_continues(tmp_path, monkeypatch) -> None:
    out = tmp_path / "sl"
    monkeypatch.setattr(train_sl_module, "TrialDataset", sl_interrupted_at(4, signal.SIGTERM))
    r = train_sl(1, seed=1, out_dir=out, **SL_TINY)
    monkeypatch.undo()
    assert r.status == "interrupted" and r.metadata["updates"] == 4
    saved = Path(out) / "checkpoints" / f"step_{r.metadata['env_steps']}.zip"
    assert saved.exists()
    done = train_sl(1, seed=1, out_dir=out, resume=True, **SL_TINY)
    assert done.status == "budget_exhausted" and done.metadata["updates"] > 4
    assert done.metadata["trials"] == done.metadata["updates"] * SL_TINY["batch_size"]
    # Adam's state travelled in the zip: its step count continues
    state = done.model.policy.optimizer.state_dict()["state"]
    assert max(int(s["step"]) for s in state.values()) == done.metadata["updates"]


def test_rl_divergence_stops_cleanly(tmp_path) -> None:
    class Poison(BaseCallback):
        def _on_rollout_end(self) -> None:
            if self.num_timesteps >= 512:
                with th.no_grad():
                    self.model.policy.lstm_actor.weight_hh_l0.fill_(float("nan"))

        def _on_step(self) -> bool:
            return True

    out = tmp_path / "rl"
    with pytest.raises(TrainingDiverged, match="not finite.*last good checkpoint"):
        train_rl(1, seed=0, out_dir=out, callback=Poison(), **RL_TINY)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["status"] == "diverged" and not (out / "final_model.zip").exists()
    good = load_model(out / "checkpoints" / "step_0.zip")
    assert all(bool(th.isfinite(p).all()) for p in good.policy.parameters())


def test_sl_divergence_stops_cleanly(tmp_path, monkeypatch) -> None:
    class NaNData(TrialDataset):
        calls = 0

        def sample(self, batch_size=None):
            NaNData.calls += 1
            b = super().sample(batch_size)
            if NaNData.calls == 3:
                b.obs[:] = np.nan
            return b

    monkeypatch.setattr(train_sl_module, "TrialDataset", NaNData)
    out = tmp_path / "sl"
    with pytest.raises(TrainingDiverged, match="loss is not finite"):
        train_sl(1, seed=0, out_dir=out, **SL_TINY)
    assert json.loads((out / "metadata.json").read_text())["status"] == "diverged"
    assert (out / "checkpoints" / "step_0.zip").exists()


def test_corrupt_and_foreign_files(tmp_path, rl_run) -> None:
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.zip")
    text = tmp_path / "notes.zip"
    text.write_text("not a model")
    with pytest.raises(ModelLoadError, match="not a zip"):
        load_model(text)
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("hello.txt", "hi")
    with pytest.raises(ModelLoadError, match="not a Stable-Baselines3 model"):
        load_model(other)
    final = Path(rl_run.run_dir) / "final_model.zip"
    cut = tmp_path / "truncated.zip"
    cut.write_bytes(final.read_bytes()[: final.stat().st_size // 2])
    with pytest.raises(ModelLoadError):
        load_model(cut)
    stock = RecurrentPPO("MlpLstmPolicy", rl_run.model.env, n_steps=8, batch_size=16,
                         policy_kwargs=dict(lstm_hidden_size=8))
    stock.save(tmp_path / "lstm.zip")
    with pytest.raises(ModelLoadError, match="RNNPolicy"):
        load_model(tmp_path / "lstm.zip")
    with pytest.raises(ModelLoadError, match="dmd_metadata"):
        load_metadata(tmp_path / "lstm.zip")
    # A run folder whose newest checkpoint is corrupt resumes from the newest readable one.
    run = RunDir(tmp_path / "run")
    run.make()
    (run.checkpoints / "step_0.zip").write_bytes((Path(rl_run.run_dir) / "checkpoints" / "step_0.zip").read_bytes())
    (run.checkpoints / "step_99999.zip").write_bytes(cut.read_bytes())
    assert run.newest_checkpoint() == run.checkpoints / "step_0.zip"


def test_cli_trains_and_resumes(tmp_path) -> None:
    from analysis.cli import main

    out = str(tmp_path / "sl")
    args = ["train", "sl", "-c", "1", "--hidden-size", "8", "--seed", "2", "--max-steps", "3000", "--eval-every",
            "1000", "--eval-trials", "100", "--checkpoint-every", "1e3", "--out", out, "--no-progress",
            "-o", "noise_amplitude=0.2", "--lr", "0.003"]
    assert main(args) == 3  # budget exhausted
    meta = json.loads((Path(out) / "metadata.json").read_text())
    assert meta["hidden_size"] == 8 and meta["task_config"]["noise_amplitude"] == 0.2
    assert meta["hyperparameters"]["learning_rate"] == 0.003
    assert main(["train", "sl", "--out", out, "--resume", "--max-steps", "5000", "--no-progress"]) == 3
    meta = json.loads((Path(out) / "metadata.json").read_text())
    assert meta["env_steps"] >= 5000 and meta["hidden_size"] == 8 and len(meta["resumes"]) == 1
    assert meta["task_config"]["noise_amplitude"] == 0.2 and meta["hyperparameters"]["learning_rate"] == 0.003
    assert main(["train", "sl", "-c", "1", "--out", out, "--no-progress"]) == 2  # folder holds a run


def Collapse(at: int) -> ReadoutAt:
    """Saturates the readout onto 'fixate' once (what a hidden-state runaway does to the policy)."""
    return ReadoutAt(at, 1e3, -1e3)


def test_collapsed_policy_is_rolled_back_then_given_up(tmp_path) -> None:
    r = train_rl(1, seed=0, out_dir=tmp_path / "rb", callback=Collapse(700), **RL_TINY)
    m = r.metadata
    assert len(m["rollbacks"]) == 1 and r.status == "budget_exhausted"
    rb = m["rollbacks"][0]
    collapsed_eval = m["accuracy_curve"][rb["evaluation"]]
    assert collapsed_eval["accuracy"] == 0.0 and collapsed_eval["go_choice_prob"] < 0.01
    assert rb["restored_env_steps"] < rb["env_steps"]
    assert m["accuracy_curve"][-1]["go_choice_prob"] > 0.01  # training went on from the restored weights
    assert r.model.policy.action_net.weight.abs().max().item() < 1.0
    # with no rollback allowed the run stops at the collapse, keeping a checkpoint to inspect
    r0 = train_rl(1, seed=0, out_dir=tmp_path / "stop", callback=Collapse(700), max_rollbacks=0, **RL_TINY)
    assert r0.status == "collapsed" and r0.metadata["env_steps"] < RL_TINY["max_steps"]
    assert not (tmp_path / "stop" / "final_model.zip").exists()
    assert (tmp_path / "stop" / "checkpoints" / f"step_{r0.metadata['env_steps']}.zip").exists()
