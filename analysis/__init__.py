"""analysis: measure the dynamics that RL- and SL-trained RNN policies discovered.

Everything reads saved policies (RL or SL alike) or plain weight arrays. Public names are imported lazily, so
``import analysis`` stays light; see ``docs/DESIGN.md`` for the module map.

Example:
    >>> import analysis
    >>> dyn = analysis.RNNDynamics(W_rec, W_in)            # doctest: +SKIP
    >>> attractors = analysis.find_attractors(dyn, x)      # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it (imported on first access)
_EXPORTS: dict[str, str] = {
    # --- dynamics (issue: analysis I)
    "RNNDynamics": "analysis.dynamics",
    "load_dynamics": "analysis.dynamics",
    "rollout": "analysis.dynamics",
    "Rollout": "analysis.dynamics",
    "fixed_points": "analysis.fixed_points",
    "FixedPoint": "analysis.fixed_points",
    "find_attractors": "analysis.attractors",
    "Attractor": "analysis.attractors",
    "lyapunov_exponents": "analysis.attractors",
    "attractor_map": "analysis.maps",
    "AttractorMap": "analysis.maps",
    "track": "analysis.maps",
    "Tracking": "analysis.maps",
    "Checkpoint": "analysis.maps",
    "list_checkpoints": "analysis.maps",
    "DecisionBasins": "analysis.maps",
    "StimulusGrid": "analysis.maps",
    "stimulus_grid": "analysis.maps",
    "rollout_dynamics": "analysis.maps",
    "choice_readout": "analysis.maps",
    "attractor_label": "analysis.maps",
    "fixed_point_exponents": "analysis.maps",
    "plot_attractor_map": "analysis.figures_dynamics",
    "plot_lyapunov": "analysis.figures_dynamics",
    "plot_qp_by_coherence": "analysis.figures_dynamics",
    "plot_trajectories_pca": "analysis.figures_dynamics",
    "plot_decision_basins": "analysis.figures_dynamics",
    "plot_qp_track": "analysis.figures_dynamics",
    # --- populations, information, robustness (issue: analysis II)
    "mutual_information": "analysis.information",
    "selectivity": "analysis.information",
    "Selectivity": "analysis.information",
    "task_variables": "analysis.information",
    "copnorm": "analysis.information",
    "holm": "analysis.information",
    "mi_shift_null": "analysis.information",
    "shift_pvalues": "analysis.information",
    "population_information": "analysis.information",
    "assign_populations": "analysis.populations",
    "Populations": "analysis.populations",
    "balance_index": "analysis.populations",
    "readout_symmetry": "analysis.populations",
    "membership_jaccard": "analysis.populations",
    "ensemble_summary": "analysis.populations",
    "population_metrics": "analysis.populations",
    "rollout_signatures": "analysis.populations",
    "network_signatures": "analysis.populations",
    "delay_end_signatures": "analysis.populations",
    "end_of_stimulus_states": "analysis.populations",
    "label_attractors": "analysis.populations",
    "functional_connectivity": "analysis.connectivity",
    "FunctionalConnectivity": "analysis.connectivity",
    "graph_statistics": "analysis.connectivity",
    "community_alignment": "analysis.connectivity",
    "adjusted_rand_index": "analysis.connectivity",
    "normalized_mutual_information": "analysis.connectivity",
    "structural_blocks": "analysis.connectivity",
    "decision_crystallization": "analysis.crystallization",
    "Crystallization": "analysis.crystallization",
    "readout_commitment": "analysis.crystallization",
    "decoder_accuracy": "analysis.crystallization",
    "training_crystallization": "analysis.crystallization",
    "participation_ratio": "analysis.dimensionality",
    "pca_variance": "analysis.dimensionality",
    "PCA": "analysis.dimensionality",
    "NetworkWeights": "analysis.robustness",
    "rnn_forward": "analysis.robustness",
    "noise_robustness": "analysis.robustness",
    "kick_robustness": "analysis.robustness",
    "ablation_curve": "analysis.robustness",
    "run_population_analysis": "analysis.populations_cli",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = sorted(_EXPORTS)
