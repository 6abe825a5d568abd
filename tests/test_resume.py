"""Exact resume (issue 13): an interrupted and resumed run ends bit-identical to the uninterrupted one; faults say
what happened (corrupt checkpoints and metadata set aside, resumes named); the collapse guard catches accuracy falls."""

from __future__ import annotations

import importlib
import io
import json
import shutil
import signal
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import BaseCallback

from agents import load_metadata, train_rl, train_sl
from agents.files import json_safe
from agents.resume import RESUME_ENTRY, read_resume_state
from agents.runs import RunDir, save_model
from dm_envs.sb3 import make_sb3_vec_env
from training_helpers import RL_TINY, SL_TINY, ReadoutAt, SignalAt, sl_interrupted_at

th.set_num_threads(1)
train_sl_module = importlib.import_module("agents.train_sl")

SEED = 1  # level 1, seed 1: the tiny RL run is above chance from 1024 env steps on (for the collapse guard)


class StopAt(BaseCallback):
    """Stops learning (an extra callback returning False) at ``at`` env steps."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def _on_step(self) -> bool:
        return self.num_timesteps < self.at


def FixateAt(at: int) -> ReadoutAt:
    """From the first rollout end at or past ``at``: accuracy 0, but not saturated (see ``ReadoutAt``)."""
    return ReadoutAt(at, 0.1, 0.09)


def assert_same_run(a, b) -> None:
    """Bit-identical weights, and the same evaluations, counters and rollbacks (wall times aside)."""
    pa, pb = a.model.policy.state_dict(), b.model.policy.state_dict()
    assert pa.keys() == pb.keys()
    for k in pa:
        assert th.equal(pa[k], pb[k]), k
    drop = lambda records: json_safe([{k: v for k, v in r.items() if k != "wall_time"} for r in records])  # noqa
    ma, mb = a.metadata, b.metadata
    assert drop(ma["accuracy_curve"]) == drop(mb["accuracy_curve"])
    for key in ("status", "env_steps", "trials", "updates", "rollbacks", "crossings"):
        assert ma[key] == mb[key], key


@pytest.fixture(scope="module")
def rl_full(tmp_path_factory):
    return train_rl(1, seed=SEED, out_dir=tmp_path_factory.mktemp("rl") / "full", **RL_TINY)


@pytest.fixture(scope="module")
def sl_full(tmp_path_factory):
    return train_sl(1, seed=SEED, out_dir=tmp_path_factory.mktemp("sl") / "full", **SL_TINY)


# ---------------------------------------------------------------------- the vector env's state
def test_vector_env_state_continues_exactly() -> None:
    a = make_sb3_vec_env(5, 3, seed=4)
    a.set_options([{}, {"context": 1, "signed_coherence": [0.4, -0.1]}, {}, {}, {}])  # a forced first trial
    a.reset()
    rng = np.random.default_rng(0)
    for _ in range(40):  # mid-trial, with the forced trial still in env 1's block
        a.step(rng.integers(0, 3, 5))
    buf = io.BytesIO()
    th.save(a.get_state(), buf)  # plain data: it travels in a checkpoint and loads with weights_only
    b = make_sb3_vec_env(5, 3)
    b.set_state(th.load(io.BytesIO(buf.getvalue()), weights_only=True))
    assert [i["context"] for i in b.reset_infos] == [i["context"] for i in a.reset_infos]
    for _ in range(3000):  # through many block refills
        act = rng.integers(0, 3, 5)
        (oa, ra, da, ia), (ob, rb, db, ib) = a.step(act), b.step(act)
        assert np.array_equal(oa, ob) and np.array_equal(ra, rb) and np.array_equal(da, db)
        for x, y in zip(ia, ib):
            assert {k: v for k, v in x.items() if k != "episode"}.keys() == y.keys() - {"episode"}
            assert all(np.array_equal(x[k], y[k]) for k in x if k not in ("episode", "terminal_observation"))
    with pytest.raises(ValueError, match="of an engine of 5 envs"):
        make_sb3_vec_env(3, 3).set_state(a.get_state())
    with pytest.raises(RuntimeError, match="reset"):
        make_sb3_vec_env(3, 3).get_state()


# ---------------------------------------------------------------------- exact resume
@pytest.mark.parametrize("sig, at", [(signal.SIGINT, 700), (signal.SIGTERM, 1030), (signal.SIGTERM, 8)])
def test_rl_interrupted_and_resumed_is_bit_identical(rl_full, tmp_path, sig, at) -> None:
    # 700: mid-rollout, between evaluations; 1030: just after an evaluation and a checkpoint; 8: the first step
    out = tmp_path / "rl"
    r = train_rl(1, seed=SEED, out_dir=out, callback=SignalAt(at, sig), **RL_TINY)
    assert r.status == "interrupted" and r.metadata["env_steps"] == at // 256 * 256  # the rollout's start
    state = read_resume_state(out / "checkpoints" / f"step_{r.metadata['env_steps']}.zip")
    assert state["counters"]["env_steps"] == r.metadata["env_steps"] and state["trainer"]["n_envs"] == 8
    done = train_rl(1, seed=SEED, out_dir=out, resume=True, **RL_TINY)
    assert_same_run(done, rl_full)
    assert done.metadata["resumes"][-1]["exact"] is True


def test_rl_twice_interrupted_and_an_extra_callback_stop_resume_exactly(rl_full, tmp_path) -> None:
    out = tmp_path / "rl"
    train_rl(1, seed=SEED, out_dir=out, callback=StopAt(600), **RL_TINY)
    second = train_rl(1, seed=SEED, out_dir=out, resume=True, callback=SignalAt(1400, signal.SIGTERM), **RL_TINY)
    assert second.status == "interrupted" and second.metadata["env_steps"] == 1280
    done = train_rl(1, seed=SEED, out_dir=out, resume=True, **RL_TINY)
    assert_same_run(done, rl_full)
    assert [(x["from"], x["exact"]) for x in done.metadata["resumes"]] == [
        ("checkpoints/step_512.zip", True), ("checkpoints/step_1280.zip", True)]


def test_rl_resume_keeps_the_collapse_guard(tmp_path) -> None:
    # The collapse at 1536 rolls back to the healthy weights of 1024; interrupted at 1300 (rewound to 1280, no
    # evaluation there), the resumed run must know those weights from the checkpoint.
    full = train_rl(1, seed=SEED, out_dir=tmp_path / "full", callback=FixateAt(1100), **RL_TINY)
    assert [rb["restored_env_steps"] for rb in full.metadata["rollbacks"]] == [1024]
    out = tmp_path / "rl"
    train_rl(1, seed=SEED, out_dir=out, callback=[FixateAt(1100), SignalAt(1300)], **RL_TINY)
    state = read_resume_state(out / "checkpoints" / "step_1280.zip")
    assert state["healthy"]["env_steps"] == 1024 and "policy" in state["healthy"]  # stored: not the model's weights
    done = train_rl(1, seed=SEED, out_dir=out, resume=True, **RL_TINY)
    assert_same_run(done, full)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sl_interrupted_and_resumed_is_bit_identical(sl_full, tmp_path, monkeypatch, sig) -> None:
    out = tmp_path / "sl"
    monkeypatch.setattr(train_sl_module, "TrialDataset", sl_interrupted_at(5, sig))
    r = train_sl(1, seed=SEED, out_dir=out, **SL_TINY)
    monkeypatch.undo()
    assert r.status == "interrupted" and r.metadata["updates"] == 5
    done = train_sl(1, seed=SEED, out_dir=out, resume=True, **SL_TINY)
    assert_same_run(done, sl_full)
    assert done.metadata["resumes"][-1]["exact"] is True


@pytest.mark.parametrize("which, kept", [("rl", 1024), ("sl", 2100)])
def test_resumed_from_a_regular_checkpoint_is_bit_identical(rl_full, sl_full, tmp_path, which, kept) -> None:
    # a run killed outright (SIGKILL, power cut) after its checkpoint at about `kept` env steps: the later saves are lost
    full = rl_full if which == "rl" else sl_full
    out = tmp_path / which
    shutil.copytree(full.run_dir, out)
    (out / "final_model.zip").unlink()
    for path in (out / "checkpoints").glob("*.zip"):
        if load_metadata(path)["env_steps"] > kept:
            path.unlink()
    newest = RunDir(out).newest_checkpoint()
    done = (train_rl if which == "rl" else train_sl)(1, seed=SEED, out_dir=out, resume=True,
                                                     **(RL_TINY if which == "rl" else SL_TINY))
    assert done.metadata["resumes"][-1]["from"] == f"checkpoints/{newest.name}"
    assert 0 < done.metadata["resumes"][-1]["env_steps"] <= kept
    assert_same_run(done, full)


def strip_resume_state(path: Path) -> None:
    """Rewrite a checkpoint as an older version saved it (no resume state)."""
    with zipfile.ZipFile(path) as zf:
        entries = {n: zf.read(n) for n in zf.namelist() if n != RESUME_ENTRY}
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)


@pytest.mark.parametrize("which", ["rl", "sl", "rl_other_n_envs"])
def test_resume_without_a_fitting_state_warns_and_goes_on(tmp_path, monkeypatch, capsys, which) -> None:
    # a checkpoint of an older version (no resume state), or an RL resume with another n_envs (the state does not fit)
    out = tmp_path / which
    if which.startswith("rl"):
        train_rl(1, seed=SEED, out_dir=out, callback=SignalAt(700), **RL_TINY)
    else:
        monkeypatch.setattr(train_sl_module, "TrialDataset", sl_interrupted_at(5, signal.SIGINT))
        train_sl(1, seed=SEED, out_dir=out, **SL_TINY)
        monkeypatch.undo()
    ckpt = RunDir(out).newest_checkpoint()
    if which == "rl_other_n_envs":
        kwargs, why = {**RL_TINY, "n_envs": 4}, "saved with n_envs=8, the run now has n_envs=4"
    else:
        strip_resume_state(ckpt)
        assert read_resume_state(ckpt) is None
        kwargs, why = (RL_TINY if which == "rl" else SL_TINY), "no saved training state"
    capsys.readouterr()
    done = (train_sl if which == "sl" else train_rl)(1, seed=SEED, out_dir=out, resume=True, **kwargs)
    err = capsys.readouterr().err
    assert f"warning: resuming {out} from checkpoints/{ckpt.name}" in err and "not exactly" in err and why in err
    assert done.status == "budget_exhausted"
    last = done.metadata["resumes"][-1]
    assert last["exact"] is False and why in last["note"]


# ---------------------------------------------------------------------- faults say what happened
def test_corrupt_newest_checkpoint_is_set_aside_and_the_resume_names_its_checkpoint(tmp_path, monkeypatch,
                                                                                    capsys) -> None:
    out = tmp_path / "sl"
    monkeypatch.setattr(train_sl_module, "TrialDataset", sl_interrupted_at(5, signal.SIGTERM))
    r = train_sl(1, seed=SEED, out_dir=out, **SL_TINY)
    monkeypatch.undo()
    newest = out / "checkpoints" / f"step_{r.metadata['env_steps']}.zip"
    raw = bytearray(newest.read_bytes())
    with zipfile.ZipFile(newest) as zf:  # damage the weights, leave the metadata readable
        offset = zf.getinfo("policy.pth").header_offset
    name_len, extra_len = struct.unpack("<HH", raw[offset + 26 : offset + 30])  # the entry's local header
    raw[offset + 30 + name_len + extra_len + 10] ^= 0xFF
    newest.write_bytes(bytes(raw))
    truncated = out / "checkpoints" / "step_999999.zip"  # a zip cut short
    truncated.write_bytes(bytes(raw[: len(raw) // 2]))
    capsys.readouterr()
    done = train_sl(1, seed=SEED, out_dir=out, resume=True, **SL_TINY)
    err = capsys.readouterr().err
    assert f"warning: checkpoints/{newest.name} is corrupt (entry 'policy.pth' is damaged" in err
    assert "warning: checkpoints/step_999999.zip is corrupt (" in err
    assert not newest.exists() and len(list((out / "checkpoints").glob(f"{newest.name}.corrupt-*"))) == 1
    assert not truncated.exists() and len(list((out / "checkpoints").glob("step_999999.zip.corrupt-*"))) == 1
    assert f"resuming {out} from checkpoints/step_0.zip (0 env steps)" in err
    assert done.metadata["resumes"][-1]["from"] == "checkpoints/step_0.zip"
    assert done.status == "budget_exhausted"


def test_garbage_metadata_is_set_aside_and_rebuilt(tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "sl"
    monkeypatch.setattr(train_sl_module, "TrialDataset", sl_interrupted_at(5, signal.SIGTERM))
    r = train_sl(1, seed=SEED, out_dir=out, **SL_TINY)
    monkeypatch.undo()
    (out / "metadata.json").write_text('{"learning_rule": "sl", "accura')
    capsys.readouterr()
    done = train_sl(1, seed=SEED, out_dir=out, resume=True, **SL_TINY)
    err = capsys.readouterr().err
    step = f"step_{r.metadata['env_steps']}.zip"
    assert f"metadata.json was unreadable (JSONDecodeError" in err and f"rebuilt from checkpoint checkpoints/{step}" in err
    assert len(list(out.glob("metadata.json.corrupt-*"))) == 1
    assert json.loads((out / "metadata.json").read_text())["status"] == done.status == "budget_exhausted"


def test_a_failed_save_leaves_the_previous_checkpoint_whole(tmp_path, sl_full, monkeypatch) -> None:
    path = tmp_path / "step_0.zip"
    shutil.copy(Path(sl_full.run_dir) / "checkpoints" / "step_0.zip", path)
    before = path.read_bytes()

    def broken(zip_path, state):
        raise OSError("disk full")

    monkeypatch.setattr("agents.resume.add_resume_state", broken)
    with pytest.raises(OSError, match="disk full"):
        save_model(sl_full.model, path, {"env_steps": 1}, resume_state={"x": 1})
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]


# ---------------------------------------------------------------------- the collapse guard
def test_an_accuracy_fall_that_is_not_saturated_is_rolled_back(tmp_path) -> None:
    r = train_rl(1, seed=SEED, out_dir=tmp_path / "rl", callback=FixateAt(1100), **RL_TINY)
    curve = r.metadata["accuracy_curve"]
    assert curve[2]["env_steps"] == 1024 and curve[2]["lower"] > 0.5  # learned: above chance
    fell = curve[3]
    assert fell["accuracy"] == 0.0 and fell["rates"]["miss"] == 1.0
    assert fell["go_choice_prob"] > 0.3  # not saturated: Evaluation.collapsed() alone would train on
    (rb,) = r.metadata["rollbacks"]
    assert (rb["evaluation"], rb["restored_env_steps"]) == (3, 1024) and "accuracy fell to 0.000" in rb["reason"]
    assert curve[-1]["accuracy"] > 0.5  # trained on from the restored weights


def test_a_policy_that_never_learned_is_not_rolled_back(tmp_path) -> None:
    # The same fall from the start (seed 0 stays below chance): never healthy, nothing to roll back to, it trains on.
    r = train_rl(1, seed=0, out_dir=tmp_path / "rl", callback=FixateAt(0), **RL_TINY)
    curve = r.metadata["accuracy_curve"]
    assert curve[1]["accuracy"] == 0.0 and curve[1]["go_choice_prob"] > 0.3
    assert r.metadata["rollbacks"] == [] and r.status == "budget_exhausted"


def test_a_run_killed_before_its_final_model_ends_as_it_did(tmp_path) -> None:
    # killed at the criterion before the final model (and that step's checkpoint) were written: the resumed run
    # trains from the previous checkpoint to the same criterion, the same network
    kw = dict(target_accuracy=0.75, **{**SL_TINY, "max_steps": 3_000_000})
    r = train_sl(1, seed=0, out_dir=tmp_path / "sl", **kw)
    assert r.status == "reached_target"
    (tmp_path / "sl" / "final_model.zip").unlink()
    (tmp_path / "sl" / "checkpoints" / f"step_{r.metadata['env_steps']}.zip").unlink()
    again = train_sl(1, seed=0, out_dir=tmp_path / "sl", resume=True, **kw)
    assert again.metadata["resumes"][-1]["env_steps"] < r.metadata["env_steps"]
    assert_same_run(again, r)
    drop = lambda c: {k: v for k, v in c.items() if k != "wall_time"}  # noqa: E731
    assert drop(again.metadata["criterion"]) == drop(r.metadata["criterion"])
