"""analysis.dynamics: the network as a dynamical system.

Within a trial stage the input is constant, so the network is an autonomous piecewise-linear map; this subpackage
finds and classifies what that map does, one network at a time or over a run's training checkpoints.

=====================  ===========================================================================================
``fixed_point``        exact piecewise-linear fixed points (one solve per activation pattern) and speed minimisation
``attractors``         :func:`find_attractors`: simulate, classify (fixed point, periodic, quasi-periodic, chaotic,
                       divergent), QR Lyapunov exponents
``grid``               :func:`stimulus_grid`: the stimulus space a map covers
``maps``               :func:`attractor_map`: attractors over the stimulus grid (stimulus stage) or per context
                       (delay/decision stages, with the trials' decision basins); :class:`AttractorMap`
``tracking``           :func:`track`: the landscape over a run's checkpoints (progressive sculpting)
``generic``            any other recurrent policy (LSTM, GRU, tanh RNN) as a torch map: autograd Jacobians, Newton
                       fixed points, the same attractor search and maps (imported on demand: it loads torch)
``pipeline``           :func:`run_dynamics_analysis`: every map of one saved policy, written to a folder
``probe``              :class:`~analysis.dynamics.probe.DynamicsProbe`: a small attractor map at every training
                       checkpoint, logged to TensorBoard (``dynamics/*``); a checkpoint hook of the trainers
``figures``            the figures of all of the above
=====================  ===========================================================================================

Every function takes an :class:`analysis.network.Network` (or a saved model, which it loads into one).
"""

from analysis.dynamics.attractors import KINDS, Attractor, find_attractors, lyapunov_exponents
from analysis.dynamics.fixed_point import FixedPoint, fixed_points
from analysis.dynamics.grid import StimulusGrid, stimulus_grid
from analysis.dynamics.maps import AttractorMap, DecisionBasins, attractor_label, attractor_map, choice_readout

__all__ = [
    "KINDS",
    "Attractor",
    "AttractorMap",
    "DecisionBasins",
    "FixedPoint",
    "StimulusGrid",
    "attractor_label",
    "attractor_map",
    "choice_readout",
    "find_attractors",
    "fixed_points",
    "lyapunov_exponents",
    "stimulus_grid",
]
