"""Published results: the exported folder alone rebuilds the same report and verdicts (issue 11)."""

import json
import shutil
from pathlib import Path

import fake_cells

from analysis.cli import main
from analysis.experiments import ExperimentSpec, run_experiment
from analysis.experiments.export import export_results
from analysis.experiments.study import Study, run_study

FIXTURE = Path(__file__).parent / "data" / "results_fixture"


def _verdicts(folder: Path) -> list[dict]:
    return json.loads((folder / "verdicts.json").read_text())


def test_committed_fixture_rebuilds_its_verdicts(tmp_path):
    copy = tmp_path / "results"
    shutil.copytree(FIXTURE, copy)
    before = _verdicts(copy)
    (copy / "verdicts.json").unlink()
    assert main(["experiment", "report", str(copy)]) == 0
    assert _verdicts(copy) == before
    assert not list(copy.rglob("*.zip"))  # no models in published results


def test_export_keeps_what_the_report_needs_and_nothing_else(tmp_path):
    spec = ExperimentSpec.from_dict(dict(name="synthetic", rules=["rl", "sl"], deltas=[0.05, 0.2],
                                         seeds=[0, 1, 2], levels=[3], analyses=[]))
    run_experiment(spec, tmp_path / "run", backend="serial", cell_fn=fake_cells.synthetic_cell, progress=False)
    (tmp_path / "run" / "cells" / "rl_L3_d0.05_s0" / "model.zip").write_bytes(b"PK")  # must not be exported
    main(["experiment", "report", str(tmp_path / "run")])
    done = export_results(tmp_path / "run", tmp_path / "pub", provenance={"commit": "abc"})
    assert done["files"] > 12 and json.loads((tmp_path / "pub" / "provenance.json").read_text()) == {"commit": "abc"}
    assert not list((tmp_path / "pub").rglob("*.zip"))
    before = _verdicts(tmp_path / "pub")
    main(["experiment", "report", str(tmp_path / "pub")])
    assert _verdicts(tmp_path / "pub") == before


def test_study_folder_report_and_export(tmp_path):
    st = Study(name="why", base=dict(rules=["rl", "sl"], deltas=[0.05], seeds=[0, 1, 2, 3, 4, 5], levels=[3],
                                     analyses=[]),
               factors={"baseline": {}, "wider": {"deltas": [0.2]}})
    run_study(st, tmp_path / "run", backend="serial", cell_fn=fake_cells.synthetic_cell, progress=False)
    assert main(["experiment", "report", str(tmp_path / "run")]) == 0
    text = (tmp_path / "run" / "study_report.md").read_text()
    assert "| baseline | rl |" in text and "baseline: RL has a larger QP fraction than SL" in text
    export_results(tmp_path / "run", tmp_path / "pub")
    assert (tmp_path / "pub" / "wider" / "cells").is_dir() and (tmp_path / "pub" / "study.json").is_file()
    assert main(["experiment", "report", str(tmp_path / "pub")]) == 0
    assert (tmp_path / "pub" / "study_report.md").read_text() == text
