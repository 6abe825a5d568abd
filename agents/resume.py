"""Exact resume: the state that drives a training run's path, saved inside every checkpoint.

A checkpoint zip holds what Stable-Baselines3 saves (weights, optimizer state, ``num_timesteps``, ...) and, as the
extra entry :data:`RESUME_ENTRY`, the rest of what decides how training goes on from there:

* the global random generators (Python's ``random``, numpy's legacy one, torch's CPU one): PPO's action sampling
  (torch) and its minibatch split (numpy);
* the monitor's counters (env steps, trials, updates), the evaluator's index and the collapse guard's last healthy
  weights and optimizer state (stored only when they differ from the checkpoint's own);
* RL: the vector env's trial streams and positions (:meth:`dm_envs.sb3.TrialVecEnv.get_state`), ``RecurrentPPO``'s
  ``_last_obs``, ``_last_episode_starts`` and ``_last_lstm_states``, its ``num_timesteps`` and episode-info buffers;
  SL: the training-trial generator of the dataset.

Every checkpoint is taken at a *safe point*, where this is all there is: between PPO iterations (the start of a
rollout; an RL run stopped in the middle of a rollout saves the state of that rollout's start, and redoes the rollout
when resumed) and between supervised updates. A run resumed from a checkpoint therefore continues exactly as the
uninterrupted run did: same weights, same evaluations, bit for bit (same seed, same machine and library versions).
Checkpoints written before this entry existed still resume, on fresh trial streams (see the trainers).

Not saved, because none of it changes a weight or an evaluation: wall-clock quantities (``wall_time``, TensorBoard's
``time/*``, SB3's fps, the ``t`` of episode infos) and torch's CUDA generators (the trainers run on the CPU; on a GPU,
exactness would also depend on CUDA's own determinism).

The entry is a ``torch.save`` of plain data and tensors (read back with ``weights_only=True``); its name does not end
in ``.pth``, which SB3's loader would take for parameters.
"""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch as th

from .files import json_safe

RESUME_ENTRY = "dmd_resume.pt"
"""Name of the resume state inside a checkpoint zip."""
RESUME_FORMAT = 1


class ResumeStateError(ValueError):
    """A checkpoint's resume state cannot be read or does not fit the run being resumed."""


# ---------------------------------------------------------------------- global generators
def global_rng_state() -> dict[str, Any]:
    """The states of Python's, numpy's (legacy) and torch's (CPU) global generators."""
    np_state = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),
        "numpy": {**np_state, "state": {"key": np_state["state"]["key"].tolist(), "pos": int(np_state["state"]["pos"])}},
        "torch": th.get_rng_state(),
    }


def set_global_rng_state(state: dict[str, Any]) -> None:
    """Put the global generators in a :func:`global_rng_state`."""
    random.setstate(_as_tuples(state["python"]))
    np_state = dict(state["numpy"])
    np_state["state"] = {"key": np.asarray(np_state["state"]["key"], dtype=np.uint32), "pos": np_state["state"]["pos"]}
    np.random.set_state(np_state)
    th.set_rng_state(state["torch"])


def _as_tuples(x: Any) -> Any:
    """Lists back to tuples (``random.setstate`` wants its nested tuples)."""
    return tuple(_as_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


# ---------------------------------------------------------------------- RL: RecurrentPPO and its vector env
def rl_state(model: Any) -> Optional[dict[str, Any]]:
    """What drives a ``RecurrentPPO`` model's next rollout besides weights and generators (None when its env cannot
    report its state, e.g. not a :class:`~dm_envs.sb3.TrialVecEnv`)."""
    env = model.get_env()
    if env is None or not hasattr(env, "get_state") or model._last_obs is None:
        return None
    return {
        "n_envs": int(model.n_envs),
        "num_timesteps": int(model.num_timesteps),
        "last_obs": th.as_tensor(np.array(model._last_obs)),
        "last_episode_starts": th.as_tensor(np.array(model._last_episode_starts, dtype=bool)),
        "lstm_states": [[t.detach().clone() for t in pair] for pair in model._last_lstm_states],
        "ep_info_buffer": json_safe(list(model.ep_info_buffer or [])),
        "ep_success_buffer": json_safe(list(model.ep_success_buffer or [])),
        "env": env.get_state(),
    }


def restore_rl_state(model: Any, state: dict[str, Any]) -> None:
    """Put a ``RecurrentPPO`` model (weights already loaded) and its env where :func:`rl_state` found them.

    Raises:
        ResumeStateError: the state is of another number of envs, or the env cannot take it.
    """
    env = model.get_env()
    if int(state["n_envs"]) != int(model.n_envs):
        raise ResumeStateError(f"it was saved with n_envs={state['n_envs']}, the run now has n_envs={model.n_envs}")
    if env is None or not hasattr(env, "set_state"):
        raise ResumeStateError(f"the model's env ({type(env).__name__}) cannot restore trial streams")
    try:
        env.set_state(state["env"])
    except (KeyError, ValueError) as err:
        raise ResumeStateError(f"the env could not take it: {err}") from err
    model.num_timesteps = int(state["num_timesteps"])
    model._last_obs = state["last_obs"].numpy().copy()
    model._last_episode_starts = state["last_episode_starts"].numpy().copy()
    model._last_lstm_states = type(model._last_lstm_states)(
        *(tuple(t.clone().to(model.device) for t in pair) for pair in state["lstm_states"])
    )
    model.ep_info_buffer.clear()
    model.ep_info_buffer.extend(state["ep_info_buffer"])
    model.ep_success_buffer.clear()
    model.ep_success_buffer.extend(state["ep_success_buffer"])


# ---------------------------------------------------------------------- comparing states
def same_state(a: Any, b: Any) -> bool:
    """Whether two (nested) state dicts are equal, tensors bit for bit."""
    if isinstance(a, th.Tensor) or isinstance(b, th.Tensor):
        return isinstance(a, th.Tensor) and isinstance(b, th.Tensor) and a.shape == b.shape and th.equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_state(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


# ---------------------------------------------------------------------- the zip entry
def add_resume_state(zip_path: Path, state: dict[str, Any]) -> None:
    """Add ``state`` to a saved model zip as :data:`RESUME_ENTRY` (call on the temporary file before it is moved
    into place, so the checkpoint appears whole or not at all)."""
    buf = io.BytesIO()
    th.save({"format": RESUME_FORMAT, **state}, buf)
    with zipfile.ZipFile(zip_path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(RESUME_ENTRY, buf.getvalue())


def read_resume_state(zip_path: Path) -> Optional[dict[str, Any]]:
    """The resume state in a checkpoint zip, or None if it has none (saved before exact resume existed).

    Raises:
        ResumeStateError: the entry is there but unreadable, or of an unknown format.
    """
    with zipfile.ZipFile(zip_path) as zf:
        if RESUME_ENTRY not in zf.namelist():
            return None
        raw = zf.read(RESUME_ENTRY)
    try:
        state = th.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several kinds on bad bytes
        raise ResumeStateError(f"its resume state is unreadable ({type(err).__name__}: {err})") from err
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
        raise ResumeStateError(f"its resume state has an unknown format ({state.get('format') if isinstance(state, dict) else type(state).__name__})")
    return state


__all__ = [
    "RESUME_ENTRY",
    "ResumeStateError",
    "add_resume_state",
    "global_rng_state",
    "read_resume_state",
    "restore_rl_state",
    "rl_state",
    "same_state",
    "set_global_rng_state",
]
