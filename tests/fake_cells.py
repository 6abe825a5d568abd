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
