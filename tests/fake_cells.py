"""Cell functions for testing the experiment runner's mechanics without training (importable by worker processes)."""

import json
import os
import time
from pathlib import Path


def _count(folder: Path, name: str) -> int:
    path = folder / name
    n = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(n))
    return n


def quick_cell(spec: dict, cell: dict, cell_dir: str) -> dict:
    """Finishes at once; fails for seed 13; records how often it ran and in which process."""
    folder = Path(cell_dir)
    runs = _count(folder, "runs.txt")
    if cell["seed"] == 13:
        raise RuntimeError("this cell always fails")
    score = cell["delta"] * (2.0 if cell["rule"] == "rl" else 1.0) + 0.01 * cell["seed"]
    return {"runs": runs, "pid": os.getpid(), "score": score, "nested": {"value": cell["seed"]}}


def slow_cell(spec: dict, cell: dict, cell_dir: str) -> dict:
    """Ten 'training steps' of 0.2 s with a checkpoint after each; resumes from the last checkpoint."""
    folder = Path(cell_dir)
    ckpt = folder / "checkpoint.json"
    start = json.loads(ckpt.read_text())["step"] if ckpt.exists() else 0
    starts = json.loads((folder / "starts.json").read_text()) if (folder / "starts.json").exists() else []
    (folder / "starts.json").write_text(json.dumps(starts + [start]))
    for step in range(start, 10):
        time.sleep(0.2)
        ckpt.write_text(json.dumps({"step": step + 1}))
    return {"starts": starts + [start]}


def synthetic_cell(spec: dict, cell: dict, cell_dir: str) -> dict:
    """A result in the schema of analysis.experiments.cell, with effects built in: RL has more quasi-periodic
    attractors (more at low coherence and at larger delta), better balance and robustness; SL none of it. The RL
    network of seed 5 at the largest delta misses the criterion (it must be left out of every comparison)."""
    import numpy as np

    rng = np.random.default_rng([cell["seed"], int(cell["delta"] * 1000), cell["rule"] == "rl"])
    rl = cell["rule"] == "rl"
    qp = (0.3 + 1.5 * cell["delta"] + 0.05 * rng.standard_normal()) if rl else 0.01 * rng.random()
    cohs = [0.0, 0.1, 0.2, 0.4]
    by_coh = {f"{c:g}": max(0.0, qp * (1.5 - 2 * c)) for c in cohs}
    if cell["seed"] == 1 and rl:
        by_coh["0.4"] = None  # every trial state of this bin diverges: no QP fraction (as written by the cells)
    grid = np.linspace(-0.4, 0.4, 5)
    qp_present = rng.random((2, 5, 5)) < (qp if rl else 0.0)
    np.savez(Path(cell_dir) / "attractor_map.npz", qp_present=qp_present, coherences=grid)
    low_acc = 0.85 + 0.2 * qp + 0.01 * rng.standard_normal() if rl else 0.9
    reached = not (rl and cell["seed"] == 5 and cell["delta"] >= 0.2)
    acc = 0.96 + 0.003 * rng.random()
    return {
        "training": {"reached_target": reached, "final_accuracy": acc, "accuracy": acc if reached else 0.6,
                     "sampled_accuracy": acc - 0.01, "eval_trials": 10000,
                     "steps_to_criterion": int(1e5 * (3 if rl else 1)),
                     "low_coherence_accuracy": low_acc, "accuracy_by_coherence": {"0.1": low_acc, "0.4": 1.0}},
        "dynamics": {"qp_fraction_reachable": qp, "qp_fraction": qp, "qp_fraction_reachable_by_coherence": by_coh,
                     "qp_fraction_reachable_low_coherence": by_coh["0"],
                     "qp_fraction_reachable_high_coherence": by_coh["0.4"], "divergent_fraction_reachable": 0.0,
                     "unresolved_fraction_reachable": 0.0, "decision_basin_match": 0.97},
        "populations": {"balance_index": (0.92 if rl else 0.6) + 0.03 * rng.standard_normal()},
        "robustness": {"noise_drop": (0.05 if rl else 0.15) + 0.01 * rng.standard_normal(),
                       "kick_mean_survival": 0.7, "ablation_drop": 0.1,
                       "noise_curve": {"0.5": 0.97, "1": 0.96, "2": 0.9, "4": 0.7}},
        "information": {"coherence_mi_stimulus": 0.2},
        "sculpting": [{"progress": p, "accuracy": 0.5 + 0.45 * p, "qp_fraction_reachable": qp * p}
                      for p in (0.0, 0.5, 1.0)],
        "sculpting_summary": {"qp_range": qp},
    }
