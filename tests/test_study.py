"""Factor studies: each factor is an experiment of its own, built from the base, run in one pool, resumable."""

import json

import fake_cells
import pytest

from analysis.experiments.study import Study, is_study_file, run_study, study


def _study() -> Study:
    return Study(
        name="why",
        base=dict(rules=["rl", "sl"], deltas=[0.1], seeds=[0, 1], levels=[3], rl={"max_time": 9.0},
                  task={"noise_amplitude": 0.2}),
        factors={"baseline": {}, "noise": {"task": {"noise": "gaussian"}}, "sl_only": {"rules": ["sl"]}},
    )


def test_factor_specs_update_tables_and_replace_values() -> None:
    s = _study()
    assert s.spec("baseline").task == {"noise_amplitude": 0.2}
    assert s.spec("noise").task == {"noise_amplitude": 0.2, "noise": "gaussian"}  # merged, not replaced
    assert s.spec("sl_only").rules == ("sl",) and s.spec("sl_only").rl == {"max_time": 9.0}
    assert s.spec("noise").name == "why/noise"
    with pytest.raises(KeyError, match="unknown factor"):
        s.spec("nope")
    with pytest.raises(TypeError, match="gridd"):  # a bad factor fails when the study is built, before any run
        Study(name="x", base={}, factors={"a": {"gridd": 3}})
    assert Study.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_run_study_writes_one_experiment_per_factor_and_resumes(tmp_path) -> None:
    rows = run_study(_study(), tmp_path, backend="serial", cell_fn=fake_cells.quick_cell, progress=False)
    assert {f: len(r) for f, r in rows.items()} == {"baseline": 4, "noise": 4, "sl_only": 2}
    assert all(r["status"] == "done" for rs in rows.values() for r in rs)
    assert json.loads((tmp_path / "noise" / "spec.json").read_text())["task"]["noise"] == "gaussian"
    assert is_study_file(tmp_path / "study.json") and not is_study_file(tmp_path / "noise" / "spec.json")
    run_study(_study(), tmp_path, backend="serial", cell_fn=fake_cells.quick_cell, progress=False)
    runs = sorted(p.read_text() for p in tmp_path.glob("*/cells/*/runs.txt"))
    assert runs == ["1"] * 10  # nothing redone


def test_builtin_sensitivity_study_covers_the_issue_factors() -> None:
    s = study("sensitivity")
    specs = s.specs()
    assert set(specs) >= {"baseline", "long_stimulus", "sl_past_criterion", "rl_no_entropy_no_kl", "gaussian_noise",
                          "level1"}
    assert all(len(sp.seeds) >= 4 for sp in specs.values())
    assert specs["rl_no_entropy_no_kl"].rl["ent_coef"] == 0.0 and specs["rl_no_entropy_no_kl"].rl["target_kl"] is None
    assert specs["level1"].levels == (1,) and specs["baseline"].levels == (3,)
