"""Reading trained policies: loading saved models safely, their metadata, and running them on trials in torch.

(The network as numpy arrays is :class:`analysis.network.Network`.)
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch as th
from sb3_contrib import RecurrentPPO

from dm_envs import TaskConfig, TrialBatch

from .policy import RNNPolicy

PathLike = Union[str, os.PathLike]


class ModelLoadError(ValueError):
    """A file that is not a readable model of this project (missing, corrupt, or a foreign policy)."""


def policy_of(obj: Any) -> RNNPolicy:
    """The :class:`~agents.RNNPolicy` of a model (or the policy itself).

    Raises:
        ModelLoadError: ``obj`` holds another kind of policy.
    """
    policy = getattr(obj, "policy", obj)
    if not isinstance(policy, RNNPolicy):
        raise ModelLoadError(f"expected an agents.RNNPolicy (or a model holding one), got {type(policy).__name__}")
    return policy


def load_model(path: PathLike, device: str = "cpu", *, rnn_only: bool = True) -> RecurrentPPO:
    """Load a saved RNN policy model (RL or SL), with clear errors for missing, corrupt or foreign files.

    Args:
        path: The model zip.
        device: Torch device.
        rnn_only: Refuse policies other than :class:`~agents.RNNPolicy` (``False``: any sb3-contrib recurrent
            policy, e.g. a stock ``MlpLstmPolicy``, for :mod:`analysis.dynamics.generic`).

    Raises:
        FileNotFoundError: no file at ``path``.
        ModelLoadError: not a zip, not a Stable-Baselines3 model, unreadable, or (``rnn_only``) a policy other
            than RNNPolicy.
    """
    path = Path(path)
    if not path.exists() and path.suffix != ".zip" and path.with_suffix(".zip").exists():
        path = path.with_suffix(".zip")
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    if not zipfile.is_zipfile(path):
        raise ModelLoadError(f"{path} is not a model file (not a zip archive; it may be corrupt or truncated)")
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
    if not {"data", "policy.pth"} <= names:
        raise ModelLoadError(f"{path} is a zip but not a Stable-Baselines3 model (no 'data' / 'policy.pth' inside)")
    try:
        model = RecurrentPPO.load(path, device=device)
    except Exception as err:  # SB3 raises a variety of errors on bad archives
        raise ModelLoadError(f"could not load {path} as a RecurrentPPO model: {type(err).__name__}: {err}") from err
    if rnn_only:
        policy_of(model)
    return model


def load_metadata(path_or_model: Any) -> dict[str, Any]:
    """The ``dmd_metadata`` dict a model carries (learning rule, task config, seed, delta, ...).

    Accepts a loaded model or a path; for a path, only the archive's ``data`` entry is read (no weights, no torch).
    """
    if isinstance(path_or_model, (str, os.PathLike)):
        path = Path(path_or_model)
        if not path.is_file():
            raise FileNotFoundError(f"no model file at {path}")
        try:
            with zipfile.ZipFile(path) as zf:
                data = json.loads(zf.read("data"))
        except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as err:
            raise ModelLoadError(f"{path} is not a readable model file: {err}") from err
        meta = data.get("dmd_metadata")
    else:
        meta = getattr(path_or_model, "dmd_metadata", None)
    if not isinstance(meta, dict):
        raise ModelLoadError("the model carries no dmd_metadata (it was not saved by agents.train_rl/train_sl)")
    return meta


def task_config_of(path_or_model: Any) -> TaskConfig:
    """The task a saved model was trained on."""
    return TaskConfig.from_dict(load_metadata(path_or_model)["task_config"])


@dataclass
class PolicyRun:
    """A policy run over whole trials from ``h0 = 0``.

    Attributes:
        hidden: ``(N, T, H)`` hidden states ``h_t`` after reading input ``x_t`` (float32).
        logits: ``(N, T, A)`` action logits.
        actions: ``(N, T)`` greedy (argmax) actions.
        values: ``(N, T)`` the critic's value estimates.
    """

    hidden: np.ndarray
    logits: np.ndarray
    actions: np.ndarray
    values: np.ndarray


def actor_forward(policy_or_model: Any, obs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """The actor path of the policy over whole sequences from ``h0 = 0``: hidden states and action logits.

    This is what SB3 computes step by step (features extractor, recurrent core, action head), in one call.

    Args:
        policy_or_model: An :class:`~agents.RNNPolicy` or a model holding one.
        obs: Time-major inputs ``(T, B, D)`` on the policy's device.

    Returns:
        ``(hidden (T, B, H), logits (T, B, A))`` (with gradients unless called under ``torch.no_grad``).
    """
    policy = policy_of(policy_or_model)
    T, B = obs.shape[:2]
    feats = policy.extract_features(obs.reshape(T * B, -1), policy.pi_features_extractor)
    hidden, _ = policy.lstm_actor(feats.reshape(T, B, -1))
    logits = policy.action_net(policy.mlp_extractor.forward_actor(hidden))
    return hidden, logits


@th.no_grad()
def run_policy(policy_or_model: Any, trials: TrialBatch, batch_size: int = 1024) -> PolicyRun:
    """Run the policy's recurrent core over whole trials, exactly as SB3 steps it (state reset at each trial start).

    Observations never depend on actions, so one pass over the padded trials gives every hidden state and greedy
    action of closed-loop play; score them with :func:`dm_envs.score_actions`.

    Args:
        policy_or_model: An :class:`~agents.RNNPolicy` or a model holding one.
        trials: The trials.
        batch_size: Trials per batched pass (about a thousand keeps the recurrent matmuls in cache).
    """
    policy = policy_of(policy_or_model)
    obs_tm = th.as_tensor(trials.obs.transpose(1, 0, 2), device=policy.device)  # (T, N, D)
    hs, ls = [], []
    for start in range(0, obs_tm.shape[1], batch_size):
        h, lg = actor_forward(policy, obs_tm[:, start : start + batch_size])
        hs.append(h)
        ls.append(lg)
    hidden, logits = th.cat(hs, dim=1), th.cat(ls, dim=1)  # (T, N, H), (T, N, A)
    if policy.lstm_critic is not None:
        feats = policy.extract_features(obs_tm.reshape(-1, obs_tm.shape[-1]), policy.vf_features_extractor)
        latent_vf, _ = policy.lstm_critic(feats.reshape(*obs_tm.shape[:2], -1))
    elif policy.critic is not None:
        latent_vf = policy.critic(obs_tm)
    else:
        latent_vf = hidden
    values = policy.value_net(policy.mlp_extractor.forward_critic(latent_vf)).squeeze(-1)
    to_np = lambda t: t.transpose(0, 1).cpu().numpy()  # noqa: E731
    return PolicyRun(
        hidden=to_np(hidden),
        logits=to_np(logits),
        actions=to_np(logits.argmax(dim=-1)).astype(np.int64),
        values=to_np(values),
    )


__all__ = [
    "ModelLoadError",
    "actor_forward",
    "PolicyRun",
    "policy_of",
    "load_metadata",
    "load_model",
    "run_policy",
    "task_config_of",
]
