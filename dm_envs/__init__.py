"""dm_envs: perceptual decision-making tasks of graded complexity as Gymnasium environments.

Importing the package registers the environments::

    import gymnasium as gym
    import dm_envs

    env = gym.make("DecisionMaking-v0", level=3)            # the paper's context-dependent task
    env = gym.make("DecisionMaking-v0", level=1, coherences=[0.05, 0.5], noise="gaussian")
    envs = gym.make_vec("DecisionMaking-v0", num_envs=64, vectorization_mode="vector_entry_point")
    env = gym.make("dm_envs:ContextDecisionMaking-v0")            # no prior import needed

One trial generator (:func:`sample_trials`) feeds the single env, the batched vector env, the SB3 adapter
(:mod:`dm_envs.sb3`: ``dm_envs.sb3.make_sb3_vec_env(...)`` imports it, and Stable-Baselines3, on first access) and
the supervised :class:`TrialDataset`, so reinforcement and supervised learning see identically distributed trials.
All front ends share one info schema (:mod:`dm_envs.info`), render trials with :mod:`dm_envs.render` and check
their input with :mod:`dm_envs.validation`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import gymnasium as gym

from ._engine import OUTCOMES, TRIALS_PER_BLOCK, TrialEngine
from .config import (
    LEVELS,
    DEFAULT_LEVEL,
    PRESETS,
    STAGES,
    TaskConfig,
    make_config,
)
from .dataset import SupervisedBatch, TrialDataset
from .env import DecisionMakingEnv
from .info import END_KEYS, INFO_SCHEMA, STEP_KEYS, TRIAL_KEYS
from .observers import ObserverResult, bayes_accuracy, integrator_accuracy
from .scoring import TrialScores, oracle_policy, random_policy, run_closed_loop, score_actions
from .trials import TrialBatch, sample_trials, stage_input
from .validation import InvalidTypeError, InvalidValueError, ResetNeededError
from .vector import DecisionMakingVectorEnv

__version__ = "0.1.0"

ENV_IDS: dict[str, dict] = {
    "DecisionMaking-v0": {},
    "PerceptualDecisionMaking-v0": {"level": 1},
    "DelayedDecisionMaking-v0": {"level": 2},
    "ContextDecisionMaking-v0": {"level": 3},
    "MultiChoiceContextDecisionMaking-v0": {"level": 4},
    "NeuroGymContextDecisionMaking-v0": {"preset": "neurogym"},
}
"""Registered ids and the keyword arguments each passes to :class:`DecisionMakingEnv`."""


def _register() -> None:
    for env_id, kwargs in ENV_IDS.items():
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point="dm_envs.env:DecisionMakingEnv",
            vector_entry_point="dm_envs.vector:DecisionMakingVectorEnv",
            kwargs=dict(kwargs),
            disable_env_checker=False,
        )


_register()

_LAZY_SUBMODULES = ("sb3",)  # submodules that import heavy dependencies (Stable-Baselines3, torch)


def __getattr__(name: str) -> ModuleType:
    """``dm_envs.sb3``: import the SB3 adapter (and Stable-Baselines3) on first access, not at ``import dm_envs``."""
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_SUBMODULES))


__all__ = [
    "LEVELS",
    "DEFAULT_LEVEL",
    "END_KEYS",
    "ENV_IDS",
    "INFO_SCHEMA",
    "OUTCOMES",
    "PRESETS",
    "STAGES",
    "STEP_KEYS",
    "TRIAL_KEYS",
    "TRIALS_PER_BLOCK",
    "DecisionMakingEnv",
    "DecisionMakingVectorEnv",
    "InvalidTypeError",
    "InvalidValueError",
    "ResetNeededError",
    "ObserverResult",
    "SupervisedBatch",
    "TaskConfig",
    "TrialBatch",
    "TrialDataset",
    "TrialEngine",
    "TrialScores",
    "bayes_accuracy",
    "integrator_accuracy",
    "make_config",
    "oracle_policy",
    "random_policy",
    "run_closed_loop",
    "sample_trials",
    "score_actions",
    "stage_input",
]
