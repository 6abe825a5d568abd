"""Produce results/paper and results/sensitivity: the paper preset and the factor study, analysed and exported.

Equivalent to::

    dmd experiment run --preset paper --out OUT/paper
    dmd experiment run --preset sensitivity --out OUT/sensitivity
    dmd experiment export OUT/paper results/paper
    dmd experiment export OUT/sensitivity results/sensitivity

with two shortcuts that change no number (every step is deterministic for a given seed):

* ``--trained DIR``: the networks were trained beforehand (a run of both specs with ``analyses = []``); their run
  folders and ``training.json`` are copied into OUT, and the experiment resumes from them (a finished training run
  returns at once), so only the analyses run here.
* the study's ``baseline`` factor has exactly the paper preset's settings at delta 0.125, seeds 0-3: its cells are
  copied from OUT/paper (run folder and every analysis file), not computed twice.

Run it from a clean ``git worktree`` of the commit being published; the commit goes into ``provenance.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
from pathlib import Path

from analysis.experiments.export import export_results
from analysis.experiments.report import write_report
from analysis.experiments.runner import run_experiment
from analysis.experiments.spec import preset
from analysis.experiments.study import BASELINE, run_study, study
from analysis.experiments.study_report import write_study_report

ANALYSIS_FILES = ("accuracy.json", "dynamics.json", "initial.json", "populations.json", "population_summary.json",
                  "attractor_map.npz", "sculpting.json")


def _commit() -> str:
    here = Path(__file__).resolve().parent
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True).stdout.strip()
    return sha + ("-dirty" if dirty else "")


def _seed_cells(trained: Path, out: Path) -> int:
    """Copy the trained run folders (and their training.json) of ``trained/cells`` into ``out/cells``."""
    n = 0
    for cell in sorted((trained / "cells").glob("*")):
        if not (cell / "training.json").is_file():
            continue
        dest = out / "cells" / cell.name
        if not (dest / "run").exists():
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copytree(cell / "run", dest / "run")
            shutil.copy2(cell / "training.json", dest / "training.json")
            n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="working folder (model zips and logs stay here)")
    ap.add_argument("--trained", default=None, help="a folder of trained runs: paper/ and sensitivity/<factor>/")
    ap.add_argument("--results", default="results", help="where the exported results go")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    out, results = Path(args.out), Path(args.results)
    commit = _commit()
    times: dict[str, float] = {}

    paper = preset("paper")
    if args.trained:
        _seed_cells(Path(args.trained) / "paper", out / "paper")
    t0 = time.time()
    run_experiment(paper, out / "paper", workers=args.workers)
    times["paper_analysis_s"] = round(time.time() - t0, 1)
    write_report(out / "paper")

    st = study("sensitivity")
    base = st.spec(BASELINE)
    for cell in base.cells():  # identical to the paper preset's cell of the same rule, delta and seed
        src, dest = out / "paper" / "cells" / cell.cell_id, out / "sensitivity" / BASELINE / "cells" / cell.cell_id
        if (src / "result.json").is_file() and not (dest / "run").exists():
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copytree(src / "run", dest / "run")
            for name in ("training.json",) + ANALYSIS_FILES:
                if (src / name).exists():
                    shutil.copy2(src / name, dest / name)
    if args.trained:
        for factor in st.factors:
            if factor != BASELINE:
                _seed_cells(Path(args.trained) / "sensitivity" / factor, out / "sensitivity" / factor)
    t0 = time.time()
    run_study(st, out / "sensitivity", workers=args.workers)
    times["sensitivity_analysis_s"] = round(time.time() - t0, 1)
    for factor in st.factors:
        write_report(out / "sensitivity" / factor)
    write_study_report(out / "sensitivity")

    provenance = {"commit": commit, "command": "python scripts/publish_results.py " + " ".join(
        f"--{k} {v}" for k, v in vars(args).items() if v is not None), **times}
    if args.trained and (Path(args.trained) / "provenance.json").is_file():
        provenance["training"] = json.loads((Path(args.trained) / "provenance.json").read_text())
    for name in ("paper", "sensitivity"):
        done = export_results(out / name, results / name, provenance=provenance)
        print(f"{name}: {done['files']} files, {done['bytes'] / 2**20:.2f} MiB -> {results / name}")


if __name__ == "__main__":
    main()
