"""Reading trained policies: loading saved models safely, their weights as arrays, and running them on trials."""

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


@dataclass
class RNNWeights:
    """The network's parameters as float64 arrays (``H`` units, ``D`` inputs, ``A`` actions).

    The recurrent map is ``h -> relu(W_rec h + W_in x + b_rec)``; action logits are ``W_out h + b_out``; the value
    is ``w_value . h + b_value``.
    """

    W_rec: np.ndarray  # (H, H)
    W_in: np.ndarray  # (H, D)
    b_rec: np.ndarray  # (H,) zeros for the bias-free network
    W_out: np.ndarray  # (A, H)
    b_out: np.ndarray  # (A,)
    w_value: np.ndarray  # (H,)
    b_value: float

    @property
    def hidden_size(self) -> int:
        return int(self.W_rec.shape[0])


def _policy_of(obj: Any) -> RNNPolicy:
    policy = getattr(obj, "policy", obj)
    if not isinstance(policy, RNNPolicy):
        raise ModelLoadError(f"expected an agents.RNNPolicy (or a model holding one), got {type(policy).__name__}")
    return policy


def rnn_weights(policy_or_model: Any) -> RNNWeights:
    """The actor's recurrent core and heads as float64 numpy arrays.

    Example:
        >>> w = rnn_weights(model)          # doctest: +SKIP
        >>> w.W_rec.shape
        (250, 250)
    """
    policy = _policy_of(policy_or_model)
    rnn = policy.lstm_actor
    as_np = lambda t: t.detach().cpu().double().numpy().copy()  # noqa: E731
    H = rnn.hidden_size
    b_rec = as_np(rnn.bias_ih_l0 + rnn.bias_hh_l0) if rnn.bias else np.zeros(H)
    head = policy.action_net
    b_out = as_np(head.bias) if head.bias is not None else np.zeros(head.out_features)
    return RNNWeights(
        W_rec=as_np(rnn.weight_hh_l0),
        W_in=as_np(rnn.weight_ih_l0),
        b_rec=b_rec,
        W_out=as_np(head.weight),
        b_out=b_out,
        w_value=as_np(policy.value_net.weight)[0],
        b_value=float(policy.value_net.bias.detach().cpu()[0]),
    )


def load_model(path: PathLike, device: str = "cpu") -> RecurrentPPO:
    """Load a saved RNN policy model (RL or SL), with clear errors for missing, corrupt or foreign files.

    Raises:
        FileNotFoundError: no file at ``path``.
        ModelLoadError: not a zip, not a Stable-Baselines3 model, unreadable, or a policy other than RNNPolicy.
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
    _policy_of(model)
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
    policy = _policy_of(policy_or_model)
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
    policy = _policy_of(policy_or_model)
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
    "RNNWeights",
    "load_metadata",
    "load_model",
    "rnn_weights",
    "run_policy",
    "task_config_of",
]
