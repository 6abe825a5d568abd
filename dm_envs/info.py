"""The one info schema of every front end: the single env, the Gymnasium vector env, the SB3 ``VecEnv`` and (for the
trial and trial-end keys) the supervised batches.

Three groups of keys, with the same names, types and meaning everywhere:

* :data:`TRIAL_KEYS` describe a trial. They come with the trial's first observation (the single env's ``reset()``
  info) and with every step of it.
* :data:`STEP_KEYS` describe the step just taken (every ``step()``).
* :data:`END_KEYS` come only with the step that ends a trial.

Where each front end puts them follows its framework's own convention, so that each equals what the framework's
generic wrapper around the single env would give:

============================  ============================================  ==========================================
front end                     the step that ends a trial                    the next trial's ``TRIAL_KEYS``
============================  ============================================  ==========================================
``DecisionMakingEnv``         ``info`` (trial + step + end keys)            ``reset()`` info (a step after the end
                                                                            raises: call ``reset()``)
``DecisionMakingVectorEnv``   ``info["final_info"]`` (masks ``_key``), the  top-level ``info`` of that same step
(same-step autoreset)         last observation in ``info["final_obs"]``     (Gymnasium's ``SAME_STEP`` convention)
``dm_envs.sb3.TrialVecEnv``   ``infos[i]``, plus ``terminal_observation``,  ``venv.reset_infos[i]`` (SB3's
(SB3 autoreset)               ``episode`` (Monitor's) and                   ``DummyVecEnv`` convention)
                              ``TimeLimit.truncated``
``TrialBatch.info()``,        ``TrialScores.info()`` (end keys of scored    ``TrialBatch.info()`` (trial keys, one row
``TrialScores.info()``        trials)                                       per trial)
============================  ============================================  ==========================================

The functions here build the keys from batched arrays (one row per env or trial); :func:`unbatch` and :func:`split`
turn them into the per-env dicts of the single env and SB3.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np

from ._engine import CORRECT, OUTCOMES, StepResult, TrialEngine
from .config import TaskConfig

TRIAL_KEYS: dict[str, str] = {
    "coherence": "unsigned coherence of each stream, (n_streams,) float64",
    "direction": "the choice (0-based) each stream favours, (n_streams,) int64",
    "signed_coherence": "two-choice tasks only: coherence signed positive for choice 1, (n_streams,) float64",
    "context": "index of the stream that decides (0 without context), int",
    "correct_choice": "the correct choice, 0-based (the correct action is correct_choice + 1), int",
}
"""Keys describing a trial (present from its first observation on)."""

STEP_KEYS: dict[str, str] = {
    "gt": "ground-truth action of the step just taken (0 = fixate, correct_choice + 1 in the decision stage), int",
    "stage": "stage id of the step just taken (names in dm_envs.STAGES), int",
    "new_trial": "the trial ended with this step, bool",
}
"""Keys describing the step just taken (every step)."""

END_KEYS: dict[str, str] = {
    "outcome": "how the trial ended: 'correct', 'wrong', 'miss' or 'abort', str",
    "correct": "the trial ended with the correct choice, bool",
    "is_success": "same as correct (SB3's key: EvalCallback and Monitor record the success rate from it), bool",
    "choice": "the choice the trial ended with, 0-based, -1 for none, int",
    "performance": "1.0 if correct else 0.0 (NeuroGym's key), float",
}
"""Keys describing how a trial ended (only on the step that ends it)."""

INFO_SCHEMA: dict[str, str] = {**TRIAL_KEYS, **STEP_KEYS, **END_KEYS}
"""Every info key and its meaning."""

# outcome index -> name, as an object array so that indexing it gives Python strings
_OUTCOME_NAMES = np.array(OUTCOMES, dtype=object)


def trial_info(
    config: TaskConfig,
    coherence: np.ndarray,
    direction: np.ndarray,
    context: np.ndarray,
    correct_choice: np.ndarray,
) -> dict[str, np.ndarray]:
    """:data:`TRIAL_KEYS` of ``N`` trials as arrays (``coherence``/``direction`` ``(N, n_streams)``, others ``(N,)``);
    ``signed_coherence`` only for two-choice tasks."""
    info = {
        "coherence": coherence,
        "direction": direction,
        "context": context,
        "correct_choice": correct_choice,
    }
    if config.n_choices == 2:
        info["signed_coherence"] = np.where(direction == 0, coherence, -coherence)
    return info


def engine_trial_info(
    engine: TrialEngine, rows: Optional[np.ndarray], ended: Optional[StepResult] = None
) -> dict[str, np.ndarray]:
    """:data:`TRIAL_KEYS` of the engine's metadata ``rows`` (one per env), or, with ``ended``, of the trials the
    engine's last step was in (as :meth:`TrialEngine.step` gathered them before moving on). Two gathers."""
    if ended is not None:
        coherence, signed = ended.coherence, ended.signed_coherence
        direction, context, correct_choice = ended.direction, ended.context, ended.correct_choice
    else:
        s = engine.config.n_streams
        fmeta, meta = np.take(engine.fmeta, rows, axis=0), np.take(engine.meta, rows, axis=0)
        coherence, signed = fmeta[:, :s], fmeta[:, s:]
        direction, context, correct_choice = meta[:, 2:], meta[:, 1], meta[:, 0]
    info = {"coherence": coherence, "direction": direction, "context": context, "correct_choice": correct_choice}
    if engine.config.n_choices == 2:
        info["signed_coherence"] = signed
    return info


def step_info(gt: np.ndarray, stage: np.ndarray, new_trial: np.ndarray) -> dict[str, np.ndarray]:
    """:data:`STEP_KEYS` of ``N`` steps as ``(N,)`` arrays (int64, int64, bool)."""
    return {"gt": gt.astype(np.int64, copy=False), "stage": stage.astype(np.int64), "new_trial": new_trial}


def end_info(outcome: np.ndarray, choice: np.ndarray) -> dict[str, np.ndarray]:
    """:data:`END_KEYS` of ``N`` finished trials from their outcome indices (into ``dm_envs.OUTCOMES``) and choices."""
    correct = outcome == CORRECT
    return {
        "outcome": _OUTCOME_NAMES[outcome],
        "correct": correct,
        "is_success": correct,
        "choice": choice.astype(np.int64, copy=False),
        "performance": correct.astype(np.float64),
    }


def unbatch(info: Mapping[str, np.ndarray], i: int) -> dict[str, Any]:
    """Row ``i`` of a batched info as one env's info: Python scalars, arrays copied."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        item = value[i]
        out[key] = item.copy() if value.ndim > 1 else item.item() if isinstance(item, np.generic) else item
    return out


def split(info: Mapping[str, np.ndarray], n: int) -> list[dict[str, Any]]:
    """A batched info as ``n`` per-env dicts (Python scalars; rows of 2-d arrays as arrays)."""
    if not info:
        return [{} for _ in range(n)]
    keys = list(info)
    columns = [v.tolist() if v.ndim == 1 else list(v) for v in info.values()]
    return [dict(zip(keys, row)) for row in zip(*columns)]


def read_only(info: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``info`` with every array made read-only (in place), for infos whose arrays several steps share."""
    for value in info.values():
        value.flags.writeable = False
    return info


def with_masks(info: Mapping[str, np.ndarray], mask: np.ndarray) -> dict[str, Any]:
    """Gymnasium's vector-info convention: every key ``k`` paired with a boolean mask ``_k`` (``mask``, shared)."""
    out: dict[str, Any] = dict(info)
    out.update({"_" + k: mask for k in info})
    return out


__all__ = [
    "END_KEYS",
    "INFO_SCHEMA",
    "engine_trial_info",
    "read_only",
    "STEP_KEYS",
    "TRIAL_KEYS",
    "end_info",
    "split",
    "step_info",
    "trial_info",
    "unbatch",
    "with_masks",
]
