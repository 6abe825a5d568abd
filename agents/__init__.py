"""agents: the paper's ReLU RNN as a Stable-Baselines3 (sb3-contrib ``RecurrentPPO``) policy, and its trainers.

* :class:`RNNPolicy` - ``RecurrentPPO(RNNPolicy, venv, policy_kwargs=dict(hidden_size=250, delta=0.1))``, or the
  alias ``RNNPPO("MlpRnnPolicy", ...)``.
* :func:`train_rl`, :func:`train_sl` - the matched trainers (PPO; Adam + cross-entropy) that write run folders.
* :class:`RunConfig`, :class:`PPOConfig`, :class:`SLConfig` - their settings as frozen, validated data
  (:mod:`agents.config`).
* :class:`Evaluator`, :class:`StoppingRule`, :func:`evaluate_policy` - the evaluator and stopping rule they share.
* :func:`load_model`, :func:`load_metadata`, :func:`run_policy` - read saved policies (their arrays:
  ``analysis.network.Network.load``).

Public names are imported on first access, so ``import agents`` (and ``dmd --help``) does not load torch.

Example:
    >>> from sb3_contrib import RecurrentPPO
    >>> from agents import RNNPolicy
    >>> from dm_envs.sb3 import make_sb3_vec_env
    >>> model = RecurrentPPO(RNNPolicy, make_sb3_vec_env(16, seed=0), policy_kwargs=dict(hidden_size=32))
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__version__ = "0.1.0"  # the distribution's version, as dm_envs.__version__ (tests/test_versions.py checks)

# public name -> module that defines it (imported on first access)
_EXPORTS: dict[str, str] = {
    "RNNPolicy": "agents.policy",
    "RNNPPO": "agents.policy",
    "ReLURNN": "agents.policy",
    "ModelLoadError": "agents.io",
    "PolicyRun": "agents.io",
    "actor_forward": "agents.io",
    "load_metadata": "agents.io",
    "load_model": "agents.io",
    "run_policy": "agents.io",
    "policy_of": "agents.io",
    "task_config_of": "agents.io",
    "Evaluation": "agents.evaluation",
    "Evaluator": "agents.evaluation",
    "StoppingRule": "agents.evaluation",
    "evaluate_policy": "agents.evaluation",
    "wilson_interval": "agents.evaluation",
    "PPOConfig": "agents.config",
    "RunConfig": "agents.config",
    "SLConfig": "agents.config",
    "TrainResult": "agents.runs",
    "TrainingDiverged": "agents.runs",
    "PPO_DEFAULTS": "agents.train_rl",
    "train_rl": "agents.train_rl",
    "SL_DEFAULTS": "agents.train_sl",
    "train_sl": "agents.train_sl",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'agents' has no attribute {name!r}")


class _Package(types.ModuleType):
    """The ``agents`` module type: ``agents.train_rl`` and ``agents.train_sl`` stay the *functions*.

    Importing a submodule binds it on its package under its own name, and the trainers live in submodules of the
    same names (``agents/train_rl.py``); that binding is skipped, so the functions resolve through ``__getattr__``.
    Reach the modules themselves with ``importlib.import_module("agents.train_rl")``.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("train_rl", "train_sl") and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = sorted(_EXPORTS)
