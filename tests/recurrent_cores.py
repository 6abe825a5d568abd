"""A GRU-core sb3-contrib policy for the tests (sb3-contrib ships LSTM policies only).

``GRUPolicy`` is a stock ``RecurrentActorCriticPolicy`` whose actor and critic cores are ``nn.GRU`` modules that
accept and return sb3-contrib's ``(h, c)`` state pair (``c`` stays zero): ``RecurrentPPO(GRUPolicy, venv)`` trains,
saves and loads as any recurrent policy, and :mod:`analysis.dynamics.generic` reads its core as a GRU.
"""

from __future__ import annotations

from typing import Any, Optional

import torch as th
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from torch import nn


class GRUCore(nn.GRU):
    """``nn.GRU`` with sb3-contrib's LSTM state interface: ``forward(x, (h, c)) -> (out, (h_n, 0))``."""

    def forward(  # type: ignore[override]
        self, x: th.Tensor, state: Optional[tuple[th.Tensor, th.Tensor]] = None
    ) -> Any:
        out, h_n = super().forward(x, None if state is None else state[0].contiguous())
        return out, (h_n, th.zeros_like(h_n))


class GRUPolicy(RecurrentActorCriticPolicy):
    """sb3-contrib's recurrent actor-critic with GRU cores of ``lstm_hidden_size`` units (``n_lstm_layers`` layers)."""

    def __init__(self, observation_space: Any, action_space: Any, lr_schedule: Any, **kwargs: Any) -> None:
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)
        L, _, H = self.lstm_hidden_state_shape
        self.lstm_actor = GRUCore(self.features_dim, H, num_layers=L)
        if self.lstm_critic is not None:
            self.lstm_critic = GRUCore(self.features_dim, H, num_layers=L)
        self.to(self.device)
        # the parent built the optimizer over the LSTMs it made: rebuild it over the modules in use
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)
