"""analysis.populations: what the units of a network do, alone and together.

=====================  ===========================================================================================
``groups``             functional populations G+/G-/Ga/Gs from activity on labelled decision and stimulus states,
                       the balance index, readout symmetry, ensemble summaries
``information``        Gaussian-copula mutual information, circular-shift significance (Holm), selectivity
``connectivity``       functional connectivity graphs, communities, structural blocks of ``W_rec``
``crystallization``    when a trial's decision becomes fixed; when population membership stops changing
``dimensionality``     PCA and participation ratio of the hidden states
``robustness``         accuracy under input noise, hidden-state kicks and silenced units
``tracking``           :func:`track_populations`: populations over a run's checkpoints
``pipeline``           :func:`run_population_analysis`: every step on one network, and its files
``generic``            the same report for any other recurrent policy (LSTM, GRU, tanh RNN): units = the core's ``h``
``figures``            the figures of all of the above
=====================  ===========================================================================================

Every analysis takes an :class:`analysis.network.Network` and trials from :mod:`dm_envs` (``generic`` a
:class:`~analysis.dynamics.generic.TorchDynamics`).
"""

from analysis.populations.groups import (
    GROUPS,
    Populations,
    assign_populations,
    balance_index,
    delay_end_signatures,
    end_of_stimulus_states,
    ensemble_summary,
    label_attractors,
    membership_jaccard,
    network_signatures,
    population_metrics,
    readout_symmetry,
    rollout_signatures,
)

__all__ = [
    "GROUPS",
    "Populations",
    "assign_populations",
    "balance_index",
    "delay_end_signatures",
    "end_of_stimulus_states",
    "ensemble_summary",
    "label_attractors",
    "membership_jaccard",
    "network_signatures",
    "population_metrics",
    "readout_symmetry",
    "rollout_signatures",
]
