"""Populations over training checkpoints (training crystallization) on a tiny real run."""

import json

import numpy as np
import pytest

from analysis.populations.tracking import track_populations


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from agents import train_sl

    out = tmp_path_factory.mktemp("run")
    train_sl(level=3, hidden_size=16, seed=0, max_steps=60000, eval_every=15000, checkpoint_every=15000,
             eval_trials=200, out_dir=out, progress=False)
    return out


def test_tracking_rows_follow_the_checkpoints(tiny_run):
    from agents.runs import RunDir

    tracking = track_populations(tiny_run, n_trials=40, progress=False)
    ckpts = RunDir(tiny_run).models()
    assert [r["checkpoint"] for r in tracking.rows] == [c.name for c in ckpts]
    progress = [r["progress"] for r in tracking.rows]
    assert progress[0] == 0.0 and progress[-1] == 1.0 and progress == sorted(progress)
    assert tracking.labels.shape == (len(ckpts), 16)
    for r, lab in zip(tracking.rows, tracking.labels):
        assert sum(r["sizes"].values()) == 16
        assert r["sizes"]["G+"] == int((lab == "G+").sum())
    for prev, r in zip(tracking.labels[:-1], tracking.rows[1:]):  # Jaccard recomputed by hand
        a, b = set(np.flatnonzero(prev == "Gs")), set(np.flatnonzero(tracking.labels[tracking.rows.index(r)] == "Gs"))
        expected = 1.0 if not (a | b) else len(a & b) / len(a | b)
        assert r["jaccard"]["Gs"] == pytest.approx(expected)
    at = tracking.summary["crystallized_at"]
    if at is not None:  # every later transition is stable
        i = [r["checkpoint"] for r in tracking.rows].index(at["checkpoint"])
        for r in tracking.rows[i + 1 :]:
            assert min(v for k, v in r["jaccard"].items() if k != "mean") >= 0.9


def test_cli_writes_tables_and_figure(tiny_run, tmp_path):
    from analysis.cli import main

    assert main(["analyze", "crystallization", str(tiny_run), "--out", str(tmp_path), "--trials", "30"]) == 0
    data = json.loads((tmp_path / "population_track.json").read_text())
    assert data["rows"] and "crystallized_at" in data["summary"]
    assert (tmp_path / "population_track.csv").read_text().startswith("checkpoint,")
    assert (tmp_path / "population_track.png").stat().st_size > 1000
