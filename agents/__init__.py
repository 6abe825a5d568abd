"""agents: the paper's ReLU RNN as a Stable-Baselines3 (sb3-contrib ``RecurrentPPO``) policy, and its trainers.

* :class:`RNNPolicy` - ``RecurrentPPO(RNNPolicy, venv, policy_kwargs=dict(hidden_size=250, delta=0.1))``, or the
  alias ``RNNPPO("MlpRnnPolicy", ...)``.
* :func:`rnn_weights`, :func:`load_model`, :func:`load_metadata`, :func:`run_policy` - read saved policies.

Example:
    >>> from sb3_contrib import RecurrentPPO
    >>> from agents import RNNPolicy
    >>> from dm_envs.sb3 import make_sb3_vec_env
    >>> model = RecurrentPPO(RNNPolicy, make_sb3_vec_env(16, seed=0), policy_kwargs=dict(hidden_size=32))
"""

from __future__ import annotations

from .io import (
    ModelLoadError,
    PolicyRun,
    RNNWeights,
    load_metadata,
    load_model,
    rnn_weights,
    run_policy,
    task_config_of,
)
from .policy import RNNPPO, ReLURNN, RNNPolicy

__all__ = [
    "ModelLoadError",
    "PolicyRun",
    "RNNPPO",
    "RNNPolicy",
    "RNNWeights",
    "ReLURNN",
    "load_metadata",
    "load_model",
    "rnn_weights",
    "run_policy",
    "task_config_of",
]
