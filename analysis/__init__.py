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
    # --- populations, information, robustness (issue: analysis II)
    "mutual_information": "analysis.information",
    "selectivity": "analysis.information",
    "assign_populations": "analysis.populations",
    "Populations": "analysis.populations",
    "balance_index": "analysis.populations",
    "functional_connectivity": "analysis.connectivity",
    "crystallization": "analysis.crystallization",
    "participation_ratio": "analysis.dimensionality",
    "pca_variance": "analysis.dimensionality",
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
