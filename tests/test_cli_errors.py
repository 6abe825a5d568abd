"""``dmd`` never shows a traceback for a user error: one line ``dmd: error: ...`` on stderr and its exit status.

Table-driven: each case is a command line (or a spec file's text) run in-process through ``analysis.cli.main``, the
fragment its one-line message must hold, and the exit status. Also: a corrupt cell result is moved aside and redone,
signals give 130 / 143, genuine bugs keep their traceback, ``--version``, and the lazy exports of ``analysis``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

import fake_cells
from analysis.cli import EXIT_CODES, main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, str]:
    """Tiny inputs: a saved 8-unit model, the same with a NaN weight, a corrupt zip, a plain file, a run folder
    (a folder without models) and a folder where nothing may be created."""
    import torch
    torch.set_num_threads(1)
    from sb3_contrib import RecurrentPPO

    import agents
    from dm_envs import make_config
    from dm_envs.sb3 import make_sb3_vec_env

    d = tmp_path_factory.mktemp("inputs")
    cfg = make_config(3)
    model = RecurrentPPO(agents.RNNPolicy, make_sb3_vec_env(4, config=cfg, seed=0),
                         policy_kwargs=dict(hidden_size=8, delta=0.4), n_steps=8, seed=0)
    model.dmd_metadata = {"learning_rule": "rl", "task_config": cfg.to_dict(), "seed": 0}
    model.save(d / "model.zip")
    with torch.no_grad():
        model.policy.lstm_actor.weight_hh_l0[0, 0] = float("nan")
    model.save(d / "nan_weights.zip")
    (d / "corrupt.zip").write_text("garbage")
    (d / "a_file").write_text("not a folder")
    (d / "run").mkdir()
    (d / "locked").mkdir()
    return {k: str(d / v) for k, v in dict(model="model.zip", nan="nan_weights.zip", corrupt="corrupt.zip",
                                             file="a_file", run="run", locked="locked", dir=".").items()}


@pytest.fixture
def locked_folder(inputs, monkeypatch):
    """``inputs['locked']`` reads as unwritable (chmod does not stop root, who may run the tests)."""
    import agents.cli

    real = os.access
    monkeypatch.setattr(agents.cli.os, "access",
                        lambda p, mode: Path(p) != Path(inputs["locked"]) and real(p, mode))


def run_main(argv: list[str], capsys) -> tuple[int, str]:
    """Exit status and the stderr lines of ``dmd argv``."""
    code = main(argv)
    return code, capsys.readouterr().err


def stub_command(monkeypatch, handler) -> None:
    """Make ``dmd experiment status`` run ``handler`` (a stand-in for any library call)."""
    import analysis.cli.experiment

    monkeypatch.setattr(analysis.cli.experiment, "_status", handler)


def assert_one_line_error(err: str, fragment: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dmd: error: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in err


MAP = ["--grid", "2", "--n-init", "2", "--observed", "2", "--trials", "8", "--n-transient", "10", "--n-record", "10",
       "--no-figures", "--no-progress"]

CASES = [
    # --out: an existing file, or a folder that cannot be created
    ("analyze dynamics {model} --out {file}", "is a file, not a folder", 2),
    ("analyze populations {model} --out {file}", "is a file, not a folder", 2),
    ("analyze track {run} --out {file}", "is a file, not a folder", 2),
    ("analyze crystallization {run} --out {file}", "is a file, not a folder", 2),
    ("experiment run --preset quick --out {file}", "is a file, not a folder", 2),
    ("train rl --out {file}", "is a file, not a folder", 2),
    ("train sl --out {file}/sub", "is a file", 2),
    ("analyze dynamics {model} --out {locked}/out", "not writable", 2),
    ("analyze populations {model} --out {locked}/out", "not writable", 2),
    ("analyze track {run} --out {locked}/out", "not writable", 2),
    ("analyze crystallization {run} --out {locked}/out", "not writable", 2),
    ("experiment run --preset quick --out {locked}/out", "not writable", 2),
    ("train rl --out {locked}/out", "not writable", 2),
    # missing inputs
    ("analyze crystallization {dir}/missing --out {dir}/o", "no folder", 2),
    ("analyze track {dir}/missing --out {dir}/o", "no folder", 2),
    ("experiment report {dir}/missing", "no folder", 2),
    ("experiment status {dir}/missing", "no folder", 2),
    ("experiment report {run}", "not an experiment folder", 2),
    ("experiment status {run}", "not an experiment folder", 2),
    ("analyze crystallization {run} --out {dir}/o", "no readable model", 2),
    ("analyze dynamics {dir}/missing.zip --out {dir}/o", "no model file", 2),
    ("analyze populations {dir}/missing.zip --out {dir}/o", "no model file", 2),
    # bad models: corrupt (2 for both analyses) and non-finite weights (named, with the file)
    ("analyze dynamics {corrupt} --out {dir}/o", "corrupt.zip is not a model file", 2),
    ("analyze populations {corrupt} --out {dir}/o", "corrupt.zip is not a model file", 2),
    ("analyze dynamics {nan} --out {dir}/o", "nan_weights.zip: W_rec has 1 non-finite", 2),
    ("analyze populations {nan} --out {dir}/o", "nan_weights.zip: W_rec has 1 non-finite", 2),
    # option values
    ("analyze dynamics {model} --out {dir}/o --seed -1", "argument --seed: expected an integer >= 0, got '-1'", 2),
    ("analyze populations {model} --out {dir}/o --seed -1", "argument --seed", 2),
    ("analyze crystallization {run} --out {dir}/o --seed -1", "argument --seed", 2),
    ("analyze dynamics {model} --out {dir}/o --trials 0", "argument --trials: expected an integer >= 1", 2),
    ("analyze populations {model} --out {dir}/o --trials 0", "argument --trials", 2),
    ("analyze crystallization {run} --out {dir}/o --trials 0", "argument --trials", 2),
    ("analyze dynamics {model} --out {dir}/o --grid 0", "argument --grid", 2),
    ("analyze track {run} --out {dir}/o --grid 0", "argument --grid", 2),
    ("analyze dynamics {model} --out {dir}/o --n-record 0", "argument --n-record", 2),
    ("analyze dynamics {model} --out {dir}/o --grid 2.5", "expected an integer >= 1, got '2.5'", 2),
    ("analyze populations {model} --out {dir}/o --shuffles -1", "argument --shuffles", 2),
    ("analyze populations {model} --out {dir}/o --threshold nan", "argument --threshold: expected a finite", 2),
    ("analyze populations {model} --out {dir}/o --level 7", "argument --level", 2),
    ("analyze crystallization {run} --out {dir}/o --jaccard 1.5", "argument --jaccard", 2),
    ("train rl --eval-every 0", "argument --eval-every: expected an integer >= 1, got '0'", 2),
    ("train sl --eval-every 0", "argument --eval-every", 2),
    ("train sl -o bogus=1", "unknown task field 'bogus'", 2),
    ("train rl -o noise_amplitude", "expected KEY=VALUE", 2),
    ("train sl --max-steps -5", "argument --max-steps: expected an integer >= 1, got '-5'", 2),
    ("train rl --target 1.5", "argument --target", 2),
    ("train rl --seed 0.5", "argument --seed", 2),
    ("experiment run --preset quick --out {dir}/e --seeds -1", "argument --seeds", 2),
    ("experiment run --preset quick --out {dir}/e --deltas 0", "argument --deltas", 2),
    ("experiment run nope --out {dir}/e", "'nope' is not a preset", 2),
    ("analyze nonsense", "invalid choice", 2),
    ("", "required: COMMAND", 2),
]


@pytest.mark.parametrize("command, fragment, code", CASES, ids=[c[0] or "(nothing)" for c in CASES])
def test_user_errors_are_one_line_with_their_exit_status(command, fragment, code, inputs, locked_folder, capsys):
    argv = [part.format(**inputs) for part in command.split()]
    status, err = run_main(argv, capsys)
    assert status == code
    assert_one_line_error(err, fragment)


SPECS = [
    ("bad.toml", "name = \n", "invalid TOML", 2),
    ("bad.json", '{ "name": ', "invalid JSON", 2),
    ("list.json", "[1, 2]", "a spec must be a table of settings (a JSON object), got a list", 2),
    ("binary.toml", b"\x00\x9f\x92\x96\xff" * 20, "is not a text file", 2),
    ("unknown.toml", "seedz = [1]\n", "unknown experiment setting(s) ['seedz'] (did you mean 'seeds'?)", 2),
    ("types1.toml", 'hidden_size = "abc"\n', "hidden_size must be a positive integer, got 'abc'", 2),
    ("types2.toml", 'target_accuracy = "high"\n', "target_accuracy must be a number in (0, 1], got 'high'", 2),
    ("types3.toml", "hidden_size = true\n", "hidden_size must be a positive integer, got True", 2),
    ("seeds1.toml", 'seeds = "01"\n', "seeds must be a list of non-negative integers, such as seeds = [0, 1]; "
                                      "got '01'", 2),
    ("seeds2.toml", "seeds = [0.7]\n", "got 0.7 in [0.7]", 2),
    ("seeds3.toml", "seeds = [true]\n", "got True in [True]", 2),
    ("seeds4.toml", "seeds = []\n", "seeds must hold at least one value", 2),
    ("rules.toml", 'rules = "sl"\n', "rules must be a list of rules from ['rl', 'sl'], such as rules = [\"sl\"]; "
                                     "got 'sl'", 2),
    ("levels.toml", "levels = [5]\n", "levels must be a list of integers in [1, 2, 3, 4]; got 5", 2),
    ("deltas.toml", "deltas = [-0.1]\n", "deltas must be a list of positive numbers", 2),
    ("rl.toml", "[rl]\nmax_stepz = 10\n", "unknown setting(s) in [rl] ['max_stepz'] (did you mean 'max_steps'?)", 2),
    ("sl.toml", "[sl]\nseed = 1\n", "unknown setting(s) in [sl] ['seed']", 2),
    ("sl2.toml", "[sl]\nn_envs = 8\n", "unknown setting(s) in [sl] ['n_envs']", 2),
    ("task.toml", "[task]\nnoise_amp = 0.2\n", "unknown setting(s) in [task] ['noise_amp']", 2),
    ("task2.toml", '[task]\nnoise = "gausian"\n', "[task] at level 3: noise must be one of", 2),
    ("analysis.toml", "[analysis]\ngridd = 3\n", "unknown setting(s) in [analysis] ['gridd'] (did you mean 'grid'?)",
     2),
    ("analysis2.toml", "[analysis]\ngrid = 0\n", "[analysis] grid must be a positive integer, got 0", 2),
    ("table.toml", 'rl = "fast"\n', "[rl] must be a table of settings, got 'fast'", 2),
    ("study.toml", "[base]\nseeds = [0]\n[factors.a]\nseeds = [0.5]\n", "got 0.5 in [0.5]", 2),
    ("study2.toml", "[base]\n[factors]\na = 3\n", "factors must be a table of tables", 2),
    ("missing.toml", None, "no spec file at", 2),
]


@pytest.mark.parametrize("name, text, fragment, code", SPECS, ids=[s[0] for s in SPECS])
def test_bad_spec_files_are_one_line_errors_naming_the_file(name, text, fragment, code, tmp_path, capsys):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text)
    status, err = run_main(["experiment", "run", str(path), "--out", str(tmp_path / "out")], capsys)
    assert status == code
    assert_one_line_error(err, fragment)
    assert name in err and not (tmp_path / "out").exists()  # nothing started


def test_spec_api_rejects_what_it_used_to_coerce():
    from analysis.experiments import ExperimentSpec, preset
    from analysis.experiments.spec import SpecError

    for bad in (dict(seeds="01"), dict(seeds=[0.7]), dict(rules="sl"), dict(levels=[True]), dict(deltas="0.1")):
        with pytest.raises(SpecError):
            ExperimentSpec.from_dict(bad)
    with pytest.raises(ValueError, match="rules must be"):  # SpecError is both a ValueError and a TypeError
        ExperimentSpec(rules=["dl"])
    with pytest.raises(TypeError, match="unknown experiment setting"):
        ExperimentSpec.from_dict({"seed": [1]})
    spec = ExperimentSpec(seeds=[0, 1], deltas=[1], rl={"max_steps": 10}, task={"noise_amplitude": 0.2},
                          analysis={"grid": 3})
    assert spec.deltas == (1.0,) and ExperimentSpec.from_dict(spec.to_dict()) == spec
    assert preset("paper").rl == {"max_steps": 4_000_000} and preset("paper").sl == {}


# ---------------------------------------------------------------------------------------------- corrupt cell results
def test_a_corrupt_cell_result_is_moved_aside_reported_and_redone(tmp_path, capsys, monkeypatch):
    import analysis.experiments.cell
    from analysis.experiments import ExperimentSpec, load_records, run_experiment
    from analysis.experiments.runner import cell_dir

    spec = ExperimentSpec(name="c", rules=["rl", "sl"], deltas=[0.1], seeds=[0], levels=[1], analyses=[])
    run_experiment(spec, tmp_path, backend="serial", cell_fn=fake_cells.synthetic_cell, progress=False)
    bad = spec.cells()[0]
    result = cell_dir(tmp_path, bad) / "result.json"
    result.write_text("{ garbage")

    assert main(["experiment", "status", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    warning = [line for line in captured.err.splitlines() if line.strip()]
    assert len(warning) == 1 and "corrupt" in warning[0] and bad.cell_id in warning[0]
    assert f"{bad.cell_id:28s} pending" in captured.out
    aside = list(result.parent.glob("result.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == "{ garbage" and not result.exists()

    assert main(["experiment", "report", str(tmp_path)]) == 0  # the report counts the cell as pending
    assert "Traceback" not in capsys.readouterr().err

    monkeypatch.setattr(analysis.experiments.cell, "run_cell", fake_cells.synthetic_cell)
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text('name = "c"\nrules = ["rl", "sl"]\ndeltas = [0.1]\nseeds = [0]\nlevels = [1]\nanalyses = []\n')
    assert main(["experiment", "run", str(spec_file), "--out", str(tmp_path), "--backend", "serial",
                 "--no-report"]) == 0
    assert "2 done" in capsys.readouterr().out
    assert [r["status"] for r in load_records(spec, tmp_path)] == ["done", "done"]
    assert json.loads(result.read_text())["status"] == "done"

    (cell_dir(tmp_path, bad) / "result.json").write_text("[]")  # valid JSON, but not a cell record
    assert load_records(spec, tmp_path)[0]["status"] == "pending"
    assert len(list(result.parent.glob("result.json.corrupt-*"))) == 2


# ---------------------------------------------------------------------------------------------- one error path
@pytest.mark.parametrize("error, code", [
    (ValueError("bad value"), 2), (FileNotFoundError("no such thing"), 2), (FileExistsError(17, "File exists", "x"), 2),
    (PermissionError(13, "Permission denied", "/x"), 2), (IsADirectoryError(21, "Is a directory", "d"), 2),
    (NotADirectoryError(20, "Not a directory", "f"), 2), (json.JSONDecodeError("Expecting value", "{", 1), 2),
    (OSError(28, "No space left on device", "out"), 1), (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"), 2),
])
def test_library_errors_map_to_one_line_and_exit_status(error, code, monkeypatch, capsys):
    def fail(args):
        raise error

    stub_command(monkeypatch, fail)
    status, err = run_main(["experiment", "status", "."], capsys)
    assert status == code
    assert_one_line_error(err, "")


def test_training_divergence_is_a_failure(monkeypatch, capsys):
    from agents.runs import TrainingDiverged

    def fail(args):
        raise TrainingDiverged("loss became NaN at step 7")

    stub_command(monkeypatch, fail)
    status, err = run_main(["experiment", "status", "."], capsys)
    assert status == 1
    assert_one_line_error(err, "loss became NaN at step 7")


def test_bugs_keep_their_traceback_and_debug_shows_every_traceback(monkeypatch, capsys, inputs):
    def bug(args):
        return {}["missing"]

    def type_bug(args):
        return len(3)

    stub_command(monkeypatch, bug)
    with pytest.raises(KeyError):
        main(["experiment", "status", "."])
    stub_command(monkeypatch, type_bug)
    with pytest.raises(TypeError):  # a TypeError not raised by the project's own validation is a bug
        main(["experiment", "status", "."])
    status, err = run_main(["--debug", "analyze", "dynamics", inputs["corrupt"], "--out", inputs["dir"] + "/o"],
                           capsys)
    assert status == 2 and "Traceback" in err and err.strip().splitlines()[-1].startswith("dmd: error: ")


def test_validation_type_errors_from_the_library_are_usage_errors(monkeypatch, capsys):
    def unknown_field(args):
        from dm_envs import make_config

        make_config(3, bogus=1)

    stub_command(monkeypatch, unknown_field)
    status, err = run_main(["experiment", "status", "."], capsys)
    assert status == 2
    assert_one_line_error(err, "unknown task parameter(s) ['bogus']")


def test_version_help_and_exit_code_table(capsys):
    import agents
    import dm_envs

    import analysis

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"dmd {analysis.__version__}"
    assert analysis.__version__ == agents.__version__ == dm_envs.__version__
    assert main(["--help"]) == 0
    assert "143 SIGTERM" in capsys.readouterr().out
    assert {0, 1, 2, 3, 130, 143} <= set(EXIT_CODES)
    readme = (ROOT / "README.md").read_text()
    for code in EXIT_CODES:
        assert f"| {code} |" in readme


def test_exported_functions_are_never_shadowed_by_submodules():
    import pkgutil

    import analysis

    analysis.attractor_map  # loads analysis.dynamics.* (once, a module named like an export replaced it)
    import analysis.dynamics.fixed_point  # noqa: F401

    assert isinstance(analysis.fixed_points, types.FunctionType)
    assert analysis.fixed_points.__module__ == "analysis.dynamics.fixed_point"
    assert not {m.name for m in pkgutil.iter_modules(analysis.__path__)} & set(analysis._EXPORTS)
    analysis.fixed_points = types.ModuleType("analysis.fixed_points")  # what importing such a submodule would do
    assert isinstance(analysis.fixed_points, types.FunctionType)


# ---------------------------------------------------------------------------------------------- signals
def test_sigint_and_sigterm_stop_training_with_130_and_143(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    procs = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        out = tmp_path / sig.name
        cmd = [sys.executable, "-m", "analysis.cli", "train", "sl", "-c", "1", "--hidden-size", "8", "--max-steps",
               "1e9", "--eval-every", "1000", "--eval-trials", "50", "--checkpoint-every", "1000", "--target", "1",
               "--out", str(out), "--no-progress"]
        procs[sig] = (subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True), out / "checkpoints")
    deadline = time.time() + 120
    for sig, (proc, ckpts) in procs.items():
        while len(list(ckpts.glob("step_*.zip"))) < 2:  # under way
            assert time.time() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else ""
            time.sleep(0.1)
        proc.send_signal(sig)
    for sig, (proc, _) in procs.items():
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[sig], err
        assert "Traceback" not in err and "rerun the same command to resume" in err
