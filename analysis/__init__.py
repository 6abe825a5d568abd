"""analysis: measure the dynamics that RL- and SL-trained RNN policies discovered.

Layers, bottom to top (``docs/DESIGN.md`` draws them):

* :mod:`analysis.network` - :class:`Network`, the one network type every analysis takes (arrays, task, provenance,
  its map and its forward pass over trials), loaded from any saved model;
* :mod:`analysis.dynamics` - fixed points, attractors, attractor maps over the stimulus space, tracking over
  training, figures;
* :mod:`analysis.populations` - functional populations and balance, information, connectivity, crystallization,
  dimensionality, robustness, figures;
* :mod:`analysis.experiments` - paired RL/SL ensembles, their statistics and the comparison report;
* :mod:`analysis.cli` - the ``dmd`` command line (no library code).

Public names are imported lazily, so ``import analysis`` stays light.

Example:
    >>> import analysis
    >>> net = analysis.Network.load("runs/rl/final_model.zip")       # doctest: +SKIP
    >>> amap = analysis.attractor_map(net, grid=11)                   # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__version__ = "0.1.0"  # the distribution's version, as dm_envs.__version__ (tests/test_versions.py checks)

# public name -> module that defines it (imported on first access)
_EXPORTS: dict[str, str] = {
    # --- the network
    "Network": "analysis.network",
    "Rollout": "analysis.network",
    "rollout": "analysis.network",
    # --- dynamics
    "fixed_points": "analysis.dynamics.fixed_point",
    "FixedPoint": "analysis.dynamics.fixed_point",
    "find_attractors": "analysis.dynamics.attractors",
    "Attractor": "analysis.dynamics.attractors",
    "lyapunov_exponents": "analysis.dynamics.attractors",
    "StimulusGrid": "analysis.dynamics.grid",
    "stimulus_grid": "analysis.dynamics.grid",
    "attractor_map": "analysis.dynamics.maps",
    "AttractorMap": "analysis.dynamics.maps",
    "DecisionBasins": "analysis.dynamics.maps",
    "choice_readout": "analysis.dynamics.maps",
    "attractor_label": "analysis.dynamics.maps",
    "fixed_point_exponents": "analysis.dynamics.maps",
    "track": "analysis.dynamics.tracking",
    "Tracking": "analysis.dynamics.tracking",
    "run_dynamics_analysis": "analysis.dynamics.pipeline",
    "DynamicsProbe": "analysis.dynamics.probe",
    "TorchDynamics": "analysis.dynamics.generic",
    "load_dynamics": "analysis.dynamics.generic",
    "plot_attractor_map": "analysis.dynamics.figures",
    "plot_lyapunov": "analysis.dynamics.figures",
    "plot_qp_by_coherence": "analysis.dynamics.figures",
    "plot_trajectories_pca": "analysis.dynamics.figures",
    "plot_decision_basins": "analysis.dynamics.figures",
    "plot_qp_track": "analysis.dynamics.figures",
    # --- populations, information, robustness
    "mutual_information": "analysis.populations.information",
    "selectivity": "analysis.populations.information",
    "Selectivity": "analysis.populations.information",
    "task_variables": "analysis.populations.information",
    "copnorm": "analysis.populations.information",
    "holm": "analysis.populations.information",
    "mi_shift_null": "analysis.populations.information",
    "shift_pvalues": "analysis.populations.information",
    "population_information": "analysis.populations.information",
    "assign_populations": "analysis.populations.groups",
    "Populations": "analysis.populations.groups",
    "balance_index": "analysis.populations.groups",
    "readout_symmetry": "analysis.populations.groups",
    "membership_jaccard": "analysis.populations.groups",
    "ensemble_summary": "analysis.populations.groups",
    "population_metrics": "analysis.populations.groups",
    "rollout_signatures": "analysis.populations.groups",
    "network_signatures": "analysis.populations.groups",
    "delay_end_signatures": "analysis.populations.groups",
    "end_of_stimulus_states": "analysis.populations.groups",
    "label_attractors": "analysis.populations.groups",
    "functional_connectivity": "analysis.populations.connectivity",
    "FunctionalConnectivity": "analysis.populations.connectivity",
    "graph_statistics": "analysis.populations.connectivity",
    "community_alignment": "analysis.populations.connectivity",
    "adjusted_rand_index": "analysis.populations.connectivity",
    "normalized_mutual_information": "analysis.populations.connectivity",
    "structural_blocks": "analysis.populations.connectivity",
    "decision_crystallization": "analysis.populations.crystallization",
    "Crystallization": "analysis.populations.crystallization",
    "readout_commitment": "analysis.populations.crystallization",
    "decoder_accuracy": "analysis.populations.crystallization",
    "training_crystallization": "analysis.populations.crystallization",
    "participation_ratio": "analysis.populations.dimensionality",
    "pca_variance": "analysis.populations.dimensionality",
    "PCA": "analysis.populations.dimensionality",
    "noise_robustness": "analysis.populations.robustness",
    "kick_robustness": "analysis.populations.robustness",
    "ablation_curve": "analysis.populations.robustness",
    "track_populations": "analysis.populations.tracking",
    "run_population_analysis": "analysis.populations.pipeline",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")


class _Package(types.ModuleType):
    """The ``analysis`` module type: an exported name stays the exported object.

    Importing a submodule binds it on its package under its own name; were a submodule ever named like an exported
    function (``analysis.fixed_points`` once was both), touching another export would turn the function into the
    module. That binding is skipped for exported names, which resolve through ``__getattr__``.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _EXPORTS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = sorted(_EXPORTS)
