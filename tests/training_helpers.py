"""What the training tests share: tiny run settings and ways to interrupt a run (imported as a plain module, like
``fake_cells``)."""

from __future__ import annotations

import os
import signal

import torch as th
from stable_baselines3.common.callbacks import BaseCallback

from dm_envs import TrialDataset

# Tiny networks and budgets: each run takes a second or two (RL: 256-step rollouts; SL: 16-trial batches).
RL_TINY = dict(hidden_size=16, n_envs=8, n_steps=32, batch_size=128, n_epochs=1, target_kl=None, max_steps=2048,
               eval_every=512, eval_trials=200, checkpoint_every=1024, progress=False)
SL_TINY = dict(hidden_size=16, batch_size=16, max_steps=4000, eval_every=1000, eval_trials=200,
               checkpoint_every=2000, progress=False)


class SignalAt(BaseCallback):
    """Sends a signal to this process once, at the first step at or past ``at`` env steps."""

    def __init__(self, at: int, sig: int = signal.SIGINT) -> None:
        super().__init__()
        self.at, self.sig, self.sent = at, sig, False

    def _on_step(self) -> bool:
        if not self.sent and self.num_timesteps >= self.at:
            self.sent = True
            os.kill(os.getpid(), self.sig)
        return True


def sl_interrupted_at(call: int, sig: int = signal.SIGTERM) -> type:
    """A ``TrialDataset`` that sends ``sig`` to this process while drawing its ``call``-th batch (patch it into
    ``agents.train_sl`` to interrupt an SL run there)."""

    class Interrupting(TrialDataset):
        calls = 0

        def sample(self, batch_size=None):
            Interrupting.calls += 1
            if Interrupting.calls == call:
                os.kill(os.getpid(), sig)
            return super().sample(batch_size)

    return Interrupting


class ReadoutAt(BaseCallback):
    """At the first rollout end at or past ``at`` env steps, sets the action readout's fixate row to ``fixate`` and its
    choice rows to ``choose`` everywhere (hidden states are >= 0, so the fixate logit leads when ``fixate > choose``).

    ``ReadoutAt(at, 1e3, -1e3)`` saturates the policy onto fixating (what a hidden-state runaway does);
    ``ReadoutAt(at, 0.1, 0.09)`` makes the greedy policy always fixate while the stochastic one still chooses at the
    go cue in about two trials of three (accuracy 0, not saturated).
    """

    def __init__(self, at: int, fixate: float, choose: float) -> None:
        super().__init__()
        self.at, self.fixate, self.choose, self.done = at, fixate, choose, False

    def _on_rollout_end(self) -> None:
        if not self.done and self.num_timesteps >= self.at:
            self.done = True
            with th.no_grad():
                w = self.model.policy.action_net.weight
                w[0].fill_(self.fixate)
                w[1:].fill_(self.choose)

    def _on_step(self) -> bool:
        return True
