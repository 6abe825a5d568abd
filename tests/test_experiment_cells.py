"""The experiment pipeline on real (tiny) trainings: run, interrupt and resume, a failing cell, the report."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analysis.experiments import ExperimentSpec, run_experiment
from analysis.experiments.report import write_report
from analysis.experiments.runner import cell_dir

TINY = dict(
    name="tiny",
    rules=["rl", "sl"],
    deltas=[0.1],
    seeds=[0],
    levels=[1],
    hidden_size=12,
    rl={"max_steps": 16384, "n_envs": 32, "n_steps": 32, "batch_size": 512, "eval_every": 4096,
        "checkpoint_every": 4096, "eval_trials": 200},
    sl={"max_steps": 40000, "batch_size": 16, "eval_every": 10000, "checkpoint_every": 10000, "eval_trials": 200},
    analysis={"grid": 3, "n_init": 2, "track_grid": 3, "track_n_init": 1, "population_trials": 60, "n_shuffles": 50,
              "analyse_misses": True},  # the tiny networks miss the criterion; the mechanics are under test
)


@pytest.fixture(scope="module")
def tiny_experiment(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    spec = ExperimentSpec.from_dict(TINY)
    rows = run_experiment(spec, out, backend="serial", progress=False)
    return spec, out, rows


def test_cells_train_and_analyse(tiny_experiment):
    spec, out, rows = tiny_experiment
    assert [r["status"] for r in rows] == ["done", "done"], [r.get("traceback") for r in rows]
    for r in rows:
        folder = cell_dir(out, spec.cells()[0].__class__(**r["cell"]))
        assert (folder / "run" / "final_model.zip").exists() and (folder / "run" / "metadata.json").exists()
        assert (folder / "attractor_map.npz").exists()
        assert 0.0 <= r["training"]["final_accuracy"] <= 1.0
        assert set(r["training"]["accuracy_by_coherence"]) == {"0.1", "0.2", "0.4"}
        assert 0.0 <= r["dynamics"]["qp_fraction"] <= 1.0
        assert r["sculpting"] and r["sculpting"][-1]["progress"] == 1.0
        assert "balance_index" in r["populations"] and r["robustness"]["noise_curve"]
    rl, sl = rows
    # paired design: the RL and SL networks of a seed start from the same weights
    assert rl["training"]["final_accuracy"] is not None and sl["training"]["final_accuracy"] is not None
    with open(out / "index.csv") as fh:
        header = fh.readline()
    assert "dynamics.qp_fraction" in header and "training.final_accuracy" in header


def test_rerun_skips_finished_cells(tiny_experiment):
    spec, out, rows = tiny_experiment
    stamps = {p: p.stat().st_mtime for p in out.glob("cells/*/result.json")}
    t0 = time.time()
    again = run_experiment(spec, out, backend="serial", progress=False)
    assert time.time() - t0 < 10
    assert [r["status"] for r in again] == ["done", "done"]
    assert {p: p.stat().st_mtime for p in out.glob("cells/*/result.json")} == stamps


def test_report_on_real_cells(tiny_experiment):
    spec, out, rows = tiny_experiment
    paths = write_report(out)
    verdicts = json.loads(paths["verdicts"].read_text())
    # one network per learning rule: nothing can be concluded, and the report must say so
    assert verdicts and all(v["verdict"] == "inconclusive" for v in verdicts)
    assert "rl_L1_d0.1_s0" in paths["markdown"].read_text()


def test_a_failing_cell_does_not_stop_the_others(tmp_path):
    spec = ExperimentSpec.from_dict({**TINY, "rules": ["sl"], "seeds": [0, 1], "sl": {**TINY["sl"], "batch_size": 0},
                                     "analyses": []})
    rows = run_experiment(spec, tmp_path, backend="serial", progress=False)
    assert [r["status"] for r in rows] == ["failed", "failed"]
    assert all("batch_size" in r["error"] for r in rows)
    fixed = ExperimentSpec.from_dict({**spec.to_dict(), "sl": TINY["sl"], "seeds": [0]})
    rows = run_experiment(fixed, tmp_path, backend="serial", progress=False)
    assert [r["status"] for r in rows] == ["done"]


def test_interrupted_training_resumes_from_its_checkpoint(tmp_path):
    spec_d = {**TINY, "rules": ["sl"], "analyses": [], "track_checkpoints": False,
              "sl": {**TINY["sl"], "max_steps": 400000},
              "target_accuracy": 1.0}  # never reached: the run goes on until interrupted or out of budget
    script = (
        "from analysis.experiments import ExperimentSpec, run_experiment\n"
        f"run_experiment(ExperimentSpec.from_dict({spec_d!r}), {str(tmp_path)!r}, backend='serial', progress=False)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    spec = ExperimentSpec.from_dict(spec_d)
    ckpts = cell_dir(tmp_path, spec.cells()[0]) / "run" / "checkpoints"
    deadline = time.time() + 120
    while not list(ckpts.glob("step_*.zip")) or len(list(ckpts.glob("step_*.zip"))) < 3:
        assert time.time() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() is not None else ""
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    meta = json.loads((ckpts.parent / "metadata.json").read_text())
    before = meta["accuracy_curve"]
    steps_at_interrupt = before[-1]["env_steps"]
    assert steps_at_interrupt > 0 and not (cell_dir(tmp_path, spec.cells()[0]) / "result.json").exists()
    spec_short = ExperimentSpec.from_dict({**spec_d, "sl": {**spec_d["sl"], "max_steps": steps_at_interrupt + 20000}})
    rows = run_experiment(spec_short, tmp_path, backend="serial", progress=False)
    assert rows[0]["status"] == "done"
    meta = json.loads((ckpts.parent / "metadata.json").read_text())
    curve = [c["env_steps"] for c in meta["accuracy_curve"]]
    assert curve == sorted(curve) and curve[-1] >= steps_at_interrupt
    # resumed, not restarted: the evaluations from before the interrupt are kept as they were
    kept = [c for c in meta["accuracy_curve"] if c["env_steps"] <= before[-2]["env_steps"]]
    assert kept == before[: len(kept)] and len(kept) >= 2
    assert Path(ckpts.parent / "final_model.zip").exists()


def test_cli_run_status_report(tiny_experiment, tmp_path, capsys):
    from analysis.cli import main

    spec, out, rows = tiny_experiment
    spec_file = tmp_path / "tiny.json"
    spec_file.write_text(json.dumps(spec.to_dict()))
    assert main(["experiment", "run", str(spec_file), "--out", str(out), "--backend", "serial"]) == 0  # all done
    text = capsys.readouterr().out
    assert "experiment 'tiny': 2 networks" in text and "2 done" in text and "report:" in text
    assert main(["experiment", "status", str(out)]) == 0
    status = capsys.readouterr().out
    assert "rl_L1_d0.1_s0" in status and "done" in status
    assert main(["experiment", "report", str(out)]) == 0
    assert (out / "report.html").exists()
