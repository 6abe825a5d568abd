"""The paper's vanilla ReLU RNN as an sb3-contrib ``RecurrentPPO`` policy.

``RecurrentPPO`` hard-codes an LSTM whose state is an ``(h, c)`` pair. :class:`ReLURNN` is ``torch.nn.RNN`` with a
ReLU that speaks that protocol (it returns a zero "cell state"), so stock ``RecurrentPPO``, its rollout buffer,
``predict`` and save/load all work unchanged; :class:`RNNPolicy` swaps it in and applies the paper's initialisation.

Example:
    >>> from sb3_contrib import RecurrentPPO
    >>> from agents import RNNPolicy
    >>> from dm_envs.sb3 import make_sb3_vec_env
    >>> model = RecurrentPPO(RNNPolicy, make_sb3_vec_env(16, level=3, seed=0),
    ...                      policy_kwargs=dict(hidden_size=250, delta=0.1), seed=0)
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch as th
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from .buffers import install_sequence_buffer
from .defaults import CRITIC_MODES


class ReLURNN(nn.RNN):
    """A single-layer ``nn.RNN(nonlinearity="relu")`` that takes and returns LSTM-style ``(h, c)`` states.

    ``h_t = relu(W_ih x_t + W_hh h_{t-1} (+ biases))``; ``c`` is ignored on input and returned as zeros, which is
    all sb3-contrib's recurrent machinery needs.

    Args:
        input_size: Number of input channels.
        hidden_size: Number of recurrent units.
        bias: Whether the recurrent layer has biases (the paper's network has none).
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = False) -> None:
        super().__init__(input_size, hidden_size, num_layers=1, nonlinearity="relu", bias=bias)

    def forward(  # type: ignore[override]
        self, x: th.Tensor, state: Optional[tuple[th.Tensor, th.Tensor]] = None
    ) -> tuple[th.Tensor, tuple[th.Tensor, th.Tensor]]:
        h0 = None if state is None else state[0]
        out, h_n = super().forward(x, h0)
        return out, (h_n, th.zeros_like(h_n))


class RNNPolicy(RecurrentActorCriticPolicy):
    """Actor-critic policy on the paper's network: a bias-free ReLU RNN with a linear action readout.

    ``h_{t+1} = relu(W_rec h_t + W_in x_t)``; action logits ``W_out h``; value ``w_v . h + b_v``. ``W_rec`` and
    ``W_in`` are drawn from ``U(-delta, delta)``, ``W_out`` (and ``w_v``) from ``U(-readout_init, readout_init)``.
    SB3's orthogonal initialisation is off and there are no hidden layers between the core and the heads.

    By default actor and critic read the same recurrent core (``critic="shared"``): as in sb3-contrib's
    ``shared_lstm``, the value loss does not train the core (the critic reads a detached copy of the hidden state),
    so the recurrent weights are shaped by the policy gradient alone. ``critic="rnn"`` gives the critic its own ReLU
    RNN; ``critic="linear"`` a linear map of the observation.

    Args:
        observation_space: Observation space (a flat ``Box``).
        action_space: ``Discrete`` action space.
        lr_schedule: Learning-rate schedule (passed by the algorithm).
        hidden_size: Number of recurrent units (the paper's 250).
        delta: Half-width of the uniform initialisation of ``W_rec`` and ``W_in`` (``delta * sqrt(H/3)`` is about the
            initial spectral radius of ``W_rec``).
        readout_init: Half-width of the uniform initialisation of the action readout and the value head.
        bias: Whether the recurrent layer and the action readout have biases (default False, as in the paper).
        critic: ``"shared"``, ``"rnn"`` or ``"linear"`` (see above).
        init_seed: Seed of a private generator for the initial weights, so that a seed gives the same network
            whatever else consumed torch's global generator (the RL and SL trainers pass the run's seed). ``None``
            draws from torch's global generator.
        **kwargs: Other :class:`~sb3_contrib.common.recurrent.policies.RecurrentActorCriticPolicy` arguments
            (``net_arch`` defaults to ``[]``, ``ortho_init`` to ``False``).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        hidden_size: int = 250,
        delta: float = 0.1,
        readout_init: float = 0.1,
        bias: bool = False,
        critic: str = "shared",
        init_seed: Optional[int] = None,
        **kwargs: Any,
    ) -> None:
        if critic not in CRITIC_MODES:
            raise ValueError(f"critic must be one of {CRITIC_MODES}, got {critic!r}")
        if not (int(hidden_size) >= 1):
            raise ValueError(f"hidden_size must be >= 1, got {hidden_size}")
        if not (delta > 0 and np.isfinite(delta)):
            raise ValueError(f"delta must be a positive number, got {delta}")
        if not isinstance(action_space, spaces.Discrete):
            raise ValueError(f"RNNPolicy needs a Discrete action space, got {action_space}")
        for key in ("lstm_hidden_size", "n_lstm_layers", "shared_lstm", "enable_critic_lstm"):
            if key in kwargs:
                raise TypeError(f"{key} is set by RNNPolicy (use hidden_size / critic)")
        self.hidden_size = int(hidden_size)
        self.delta = float(delta)
        self.readout_init = float(readout_init)
        self.bias = bool(bias)
        self.critic_mode = critic
        self.init_seed = init_seed
        kwargs.setdefault("net_arch", [])
        kwargs.setdefault("ortho_init", False)
        lstm_kwargs = kwargs.pop("lstm_kwargs", None)
        if lstm_kwargs:
            raise TypeError("lstm_kwargs are not supported by RNNPolicy")
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            lstm_hidden_size=self.hidden_size,
            n_lstm_layers=1,
            shared_lstm=critic == "shared",
            enable_critic_lstm=critic == "rnn",
            **kwargs,
        )
        # Swap the LSTMs built by the parent for ReLU RNNs, and the readout for a bias-free one.
        self.lstm_actor = ReLURNN(self.features_dim, self.hidden_size, bias=self.bias)
        if self.lstm_critic is not None:
            self.lstm_critic = ReLURNN(self.features_dim, self.hidden_size, bias=self.bias)
        self.action_net = nn.Linear(self.hidden_size, int(action_space.n), bias=self.bias)
        self.init_weights()
        self.to(self.device)
        # The parent built the optimizer over the discarded modules: rebuild it over the parameters in use.
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def init_weights(self) -> None:
        """Draw the paper's initial weights: ``U(-delta, delta)`` for the core, ``U(-r, r)`` for the heads."""
        gen = th.Generator().manual_seed(int(self.init_seed)) if self.init_seed is not None else None

        def uniform_(t: th.Tensor, half_width: float) -> None:
            with th.no_grad():
                t.copy_((th.rand(t.shape, generator=gen) * 2 - 1) * half_width)

        for rnn in (self.lstm_actor, self.lstm_critic):
            if rnn is None:
                continue
            uniform_(rnn.weight_hh_l0, self.delta)
            uniform_(rnn.weight_ih_l0, self.delta)
            if self.bias:
                nn.init.zeros_(rnn.bias_hh_l0)
                nn.init.zeros_(rnn.bias_ih_l0)
        uniform_(self.action_net.weight, self.readout_init)
        if self.action_net.bias is not None:
            nn.init.zeros_(self.action_net.bias)
        uniform_(self.value_net.weight, self.readout_init)
        nn.init.zeros_(self.value_net.bias)

    @staticmethod
    def _process_sequence(
        features: th.Tensor,
        lstm_states: tuple[th.Tensor, th.Tensor],
        episode_starts: th.Tensor,
        lstm: nn.Module,
    ) -> tuple[th.Tensor, tuple[th.Tensor, th.Tensor]]:
        """Run the core over ``(n_seq, T)`` sequences in one fused call when resets happen only at ``t = 0``.

        The rollout buffer cuts sequences at episode starts, so during PPO updates (and when acting, where ``T = 1``)
        a reset can only fall on a sequence's first step: zeroing those initial states and making one call over the
        whole sequence is exactly the parent's step-by-step loop. Resets anywhere else fall back to that loop.
        """
        n_seq = lstm_states[0].shape[1]
        starts = episode_starts.reshape((n_seq, -1)).swapaxes(0, 1)  # (T, n_seq)
        if th.any(starts[1:] != 0):
            return RecurrentActorCriticPolicy._process_sequence(features, lstm_states, episode_starts, lstm)
        keep = (1.0 - starts[0]).view(1, n_seq, 1)
        seq = features.reshape((n_seq, -1, lstm.input_size)).swapaxes(0, 1)
        out, states = lstm(seq, (keep * lstm_states[0], keep * lstm_states[1]))
        return th.flatten(out.transpose(0, 1), start_dim=0, end_dim=1), states

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            hidden_size=self.hidden_size,
            delta=self.delta,
            readout_init=self.readout_init,
            bias=self.bias,
            critic=self.critic_mode,
            init_seed=self.init_seed,
        )
        return data


class RNNPPO(RecurrentPPO):
    """``sb3_contrib.RecurrentPPO`` that knows the ``"MlpRnnPolicy"`` alias for :class:`RNNPolicy` and pads its
    minibatches faster (:class:`~agents.buffers.SequenceRolloutBuffer`: the same samples, bit-identical training).

    Nothing else changes; its saved files open with plain ``RecurrentPPO.load``.

    Example:
        >>> model = RNNPPO("MlpRnnPolicy", venv, policy_kwargs=dict(hidden_size=250))  # doctest: +SKIP
    """

    policy_aliases = {**RecurrentPPO.policy_aliases, "MlpRnnPolicy": RNNPolicy}

    def _setup_model(self) -> None:
        super()._setup_model()
        install_sequence_buffer(self)
