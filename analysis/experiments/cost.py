"""A rough cost estimate of an experiment, printed before it starts.

The per-cell figures are measurements on a 2-core machine (one torch thread per worker), scaled by the network
size; they are estimates, not promises: RL's time to criterion varies several-fold between seeds.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from .spec import ExperimentSpec

# Seconds per cell at 250 units with two cells sharing two cores, measured on the paper preset (48 networks, level 3;
# results/paper): RL mean 275 s to criterion or budget (runs that collapse or use up their 480 s budget included;
# part of it under CPU contention), SL mean 38 s; analyses (maps, populations, checkpoint tracks) 58-70 s per network
# with the paper's settings, of which the checkpoint track is about a third. Levels 1, 2 and 4 are extrapolated from
# their trial lengths and difficulty.
RL_SECONDS_250 = {1: 90.0, 2: 180.0, 3: 275.0, 4: 900.0}
SL_SECONDS_250 = {1: 10.0, 2: 25.0, 3: 38.0, 4: 150.0}
ANALYSIS_SECONDS_250 = 42.0
CHECKPOINT_TRACK_SECONDS_250 = 22.0


def _size_factor(hidden_size: int) -> float:
    # Small recurrent nets are dominated by per-step overhead, large ones by H^2 matrix work.
    return max(0.25, (hidden_size / 250) ** 1.5)


def estimate_cost(spec: ExperimentSpec, workers: Optional[int] = None) -> dict[str, Any]:
    """Estimated CPU time and wall time of running ``spec`` (all cells, from scratch)."""
    f = _size_factor(spec.hidden_size)
    cpu = 0.0
    for cell in spec.cells():
        train = RL_SECONDS_250 if cell.rule == "rl" else SL_SECONDS_250
        cpu += f * train[cell.level]
        if spec.analyses:
            cpu += f * ANALYSIS_SECONDS_250
        if spec.track_checkpoints:
            cpu += f * CHECKPOINT_TRACK_SECONDS_250
    n_workers = workers or os.cpu_count() or 1
    return {"cells": len(spec.cells()), "cpu_hours": cpu / 3600, "hours": cpu / 3600 / n_workers, "workers": n_workers}


def format_cost(spec: ExperimentSpec, est: dict[str, Any]) -> str:
    """One line describing the estimate."""
    return (
        f"experiment {spec.name!r}: {est['cells']} networks ({len(spec.rules)} rules x {len(spec.deltas)} deltas x "
        f"{len(spec.seeds)} seeds x {len(spec.levels)} levels, {spec.hidden_size} units); estimated "
        f"{est['cpu_hours']:.1f} CPU-hours, about {est['hours']:.1f} h on {est['workers']} workers"
    )
