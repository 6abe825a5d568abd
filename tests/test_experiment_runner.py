"""The experiment runner's mechanics (skip finished cells, failures, interrupt/resume, index) on fake cells."""

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analysis.experiments import ExperimentSpec, preset, resolve_spec, run_experiment
from analysis.experiments.runner import cell_dir

import fake_cells

TESTS = Path(__file__).parent


def _spec(**kw):
    base = dict(name="t", rules=["rl", "sl"], deltas=[0.1, 0.2], seeds=[0, 13], levels=[1], analyses=[])
    base.update(kw)
    return ExperimentSpec.from_dict(base)


def test_spec_validation_and_presets(tmp_path):
    spec = _spec()
    assert len(spec.cells()) == 8
    cells = spec.cells()
    assert cells[0].pair_id() == cells[1].pair_id() and {cells[0].rule, cells[1].rule} == {"rl", "sl"}
    with pytest.raises(ValueError, match="rules must be"):
        _spec(rules=["rl", "dl"])
    with pytest.raises(TypeError, match="unknown experiment setting"):
        ExperimentSpec.from_dict({"seed": [1]})
    with pytest.raises(ValueError, match="unknown experiment preset"):
        preset("huge")
    quick = preset("quick")
    assert set(quick.rules) == {"rl", "sl"} and len(quick.deltas) == 2
    path = tmp_path / "s.toml"
    path.write_text('name = "x"\nrules = ["sl"]\nseeds = [1, 2]\n[sl]\nbatch_size = 8\n')
    spec = resolve_spec(str(path), levels=[2])
    assert spec.seeds == (1, 2) and spec.levels == (2,) and spec.sl == {"batch_size": 8}


def test_local_pool_runs_cells_in_parallel_records_failures_and_skips_finished(tmp_path):
    spec = _spec()
    rows = run_experiment(spec, tmp_path, workers=2, cell_fn=fake_cells.quick_cell, progress=False)
    status = {json.dumps(r["cell"], sort_keys=True): r["status"] for r in rows}
    assert sorted(status.values()) == ["done"] * 4 + ["failed"] * 4
    failed = [r for r in rows if r["status"] == "failed"]
    assert all("this cell always fails" in r["error"] for r in failed)
    assert all((cell_dir(tmp_path, c) / "error.json").exists() for c in spec.cells() if c.seed == 13)
    assert len({r["pid"] for r in rows if r["status"] == "done"}) >= 1
    # index: one row per network, nested results flattened
    with open(tmp_path / "index.csv") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 8 and "nested.value" in table[0] and "score" in table[0]
    # a second run redoes only the failed cells
    run_experiment(spec, tmp_path, backend="serial", cell_fn=fake_cells.quick_cell, progress=False)
    for c in spec.cells():
        assert (cell_dir(tmp_path, c) / "runs.txt").read_text() == ("1" if c.seed == 0 else "2")


def test_interrupt_then_resume(tmp_path):
    script = (
        "import sys; sys.path.insert(0, %r)\n"
        "import fake_cells\n"
        "from analysis.experiments import ExperimentSpec, run_experiment\n"
        "spec = ExperimentSpec.from_dict(dict(name='i', rules=['rl'], deltas=[0.1], seeds=[0, 1], levels=[1], analyses=[]))\n"
        "run_experiment(spec, %r, backend='serial', cell_fn=fake_cells.slow_cell, progress=False)\n"
    ) % (str(TESTS), str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    spec = ExperimentSpec.from_dict(dict(name="i", rules=["rl"], deltas=[0.1], seeds=[0, 1], levels=[1], analyses=[]))
    first, second = spec.cells()
    deadline = time.time() + 60
    while not (cell_dir(tmp_path, second) / "checkpoint.json").exists():  # the second cell is under way
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "interrupted" in err
    assert (cell_dir(tmp_path, first) / "result.json").exists()
    assert not (cell_dir(tmp_path, second) / "result.json").exists()
    rows = run_experiment(spec, tmp_path, backend="serial", cell_fn=fake_cells.slow_cell, progress=False)
    assert [r["status"] for r in rows] == ["done", "done"]
    assert json.loads((cell_dir(tmp_path, first) / "starts.json").read_text()) == [0]  # not redone
    starts = json.loads((cell_dir(tmp_path, second) / "starts.json").read_text())
    assert starts[0] == 0 and 0 < starts[1] < 10  # resumed from its checkpoint


def test_ray_backend_on_a_local_instance(tmp_path):
    pytest.importorskip("ray")
    spec = _spec(deltas=[0.1])
    rows = run_experiment(spec, tmp_path, backend="ray", cell_fn=fake_cells.quick_cell, progress=False)
    assert sorted(r["status"] for r in rows) == ["done", "done", "failed", "failed"]
    assert all((cell_dir(tmp_path, c) / "result.json").exists() for c in spec.cells() if c.seed == 0)


def test_report_verdicts_follow_the_data(tmp_path):
    from analysis.experiments.report import write_report

    # 12 paired seeds x deltas: enough pairs for an exact paired p to survive Holm over the report's ~17 tests
    spec = ExperimentSpec.from_dict(dict(name="synthetic", rules=["rl", "sl"], deltas=[0.05, 0.2],
                                         seeds=[0, 1, 2, 3, 4, 5], levels=[3], analyses=[]))
    run_experiment(spec, tmp_path, backend="serial", cell_fn=fake_cells.synthetic_cell, progress=False)
    paths = write_report(tmp_path)
    verdicts = {v["claim"]: v for v in json.loads(paths["verdicts"].read_text())}
    qp = verdicts["RL networks have a larger quasi-periodic fraction than their SL twins"]
    # one RL network missed the criterion: its pair is left out (11 of 12 pairs)
    assert qp["verdict"] == "reproduced" and qp["n"] == 11 and qp["ci"][0] > 0
    assert qp["p_adjusted"] >= qp["p_value"] and qp["p_adjusted"] < 0.05
    assert verdicts["SL converges (almost) exclusively to fixed points: QP fraction below 0.05"]["verdict"] == "reproduced"
    assert verdicts["RL populations are more balanced than their SL twins (balance index)"]["verdict"] == "reproduced"
    assert verdicts["RL: quasi-periodicity concentrates at low |coherence| (within each network)"]["verdict"] \
        == "reproduced"
    assert verdicts["RL loses less accuracy to input noise than its SL twin (drop from x1 to x1.5-x4 noise)"][
        "verdict"] == "reproduced"
    delta = verdicts["RL: broader initialisation (larger delta) gives more quasi-periodicity"]
    assert delta["verdict"] == "reproduced" and delta["estimate"] > 0.5
    # kicks are equal by construction: no difference may be claimed
    assert verdicts["RL decisions survive hidden-state kicks more often (R9)"]["verdict"] == "inconclusive"
    assert verdicts["RL and SL reach the same accuracy (within 2 points)"]["verdict"] == "reproduced"
    html_text = paths["html"].read_text()
    assert html_text.count("data:image/png;base64") >= 4 and "reproduced" in html_text
    md = paths["markdown"].read_text()
    assert "| RL networks have a larger quasi-periodic fraction than their SL twins | **reproduced** |" in md
    assert "Finished without reaching the criterion (left out of every comparison, listed below): RL 1." in md
    assert (tmp_path / "report_figures").is_dir()
