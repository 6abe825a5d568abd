"""Produce results/paper and results/sensitivity: the paper preset and the factor study, analysed and exported.

Equivalent to::

    dmd experiment run --preset paper --out OUT/paper
    dmd experiment run --preset sensitivity --out OUT/sensitivity
    dmd experiment export OUT/paper results/paper
    dmd experiment export OUT/sensitivity results/sensitivity

run in one process pool, experiment by experiment (paper first, then the study's factors in the given priority), with
one shortcut that changes no number (training is deterministic for a given seed): ``--trained DIR`` copies networks
trained beforehand (their run folders and ``training.json``) into OUT, and a finished training run returns at once.
``--export-only`` exports what OUT holds now (unfinished cells are listed as pending in the reports).

Run it from a clean ``git worktree`` of the commit being published; the commit goes into ``provenance.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Optional

PRIORITY = ("baseline", "long_stimulus", "sl_past_criterion", "gaussian_noise", "level1", "rl_no_entropy_no_kl")
"""The order in which the study's factors run (when time is short, the first ones finish)."""


def _commit() -> str:
    here = Path(__file__).resolve().parent
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True).stdout.strip()
    return sha + ("-dirty" if dirty else "")


def _seed_cells(trained: Path, out: Path, names: Optional[set] = None) -> int:
    """Copy the trained run folders (and their training.json) of ``trained/cells`` into ``out/cells`` (only the
    cells named in ``names``, if given)."""
    n = 0
    for cell in sorted((trained / "cells").glob("*")):
        if not (cell / "training.json").is_file() or (names is not None and cell.name not in names):
            continue
        dest = out / "cells" / cell.name
        if not (dest / "run").exists():
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copytree(cell / "run", dest / "run")
            shutil.copy2(cell / "training.json", dest / "training.json")
            n += 1
    return n


def main() -> None:
    from agents.files import write_json
    from analysis.experiments.export import export_results
    from analysis.experiments.report import write_report
    from analysis.experiments.runner import run_experiments
    from analysis.experiments.spec import preset
    from analysis.experiments.study import study
    from analysis.experiments.study_report import write_study_report

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="working folder (model zips and logs stay here)")
    ap.add_argument("--trained", default=None, help="a folder of trained runs: paper/ and sensitivity/<factor>/")
    ap.add_argument("--results", default="results", help="where the exported results go")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--export-only", action="store_true")
    args = ap.parse_args()
    out, results = Path(args.out), Path(args.results)
    st = study("sensitivity")
    factors = [f for f in PRIORITY if f in st.factors] + [f for f in st.factors if f not in PRIORITY]
    experiments = [(preset("paper"), out / "paper")] + [(st.spec(f), out / "sensitivity" / f) for f in factors]
    if not args.export_only:
        if args.trained:
            for _, folder in experiments:
                _seed_cells(Path(args.trained) / folder.relative_to(out), folder)
            # the study's baseline is the paper preset at delta 0.125, seeds 0-3: the same training runs
            base = {c.cell_id for c in st.spec("baseline").cells()}
            _seed_cells(Path(args.trained) / "paper", out / "sensitivity" / "baseline", base)
        (out / "sensitivity").mkdir(parents=True, exist_ok=True)
        write_json(out / "sensitivity" / "study.json", st.to_dict())
        t0 = time.time()
        run_experiments(experiments, workers=args.workers, order="given")
        write_json(out / "analysis_time.json", {"wall_time_s": round(time.time() - t0, 1)})
    for _, folder in experiments:
        if (folder / "spec.json").is_file():
            write_report(folder)
    write_study_report(out / "sensitivity")
    provenance = {"commit": _commit(), "command": "python scripts/publish_results.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v not in (None, False))}
    for name in ("analysis_time.json",):
        if (out / name).is_file():
            provenance["analysis_phase"] = json.loads((out / name).read_text())
    if args.trained and (Path(args.trained) / "provenance.json").is_file():
        provenance["training_phase"] = json.loads((Path(args.trained) / "provenance.json").read_text())
    for name in ("paper", "sensitivity"):
        done = export_results(out / name, results / name, provenance=provenance)
        print(f"{name}: {done['files']} files, {done['bytes'] / 2**20:.2f} MiB -> {results / name}")


if __name__ == "__main__":
    main()
