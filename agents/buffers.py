"""A faster drop-in for sb3-contrib's ``RecurrentRolloutBuffer``: the same minibatches, padded in one numpy step.

``RecurrentPPO`` cuts each minibatch into sequences (at episode starts and env changes) and pads them to a common
length. sb3-contrib builds one small tensor per sequence and stacks them with ``pad_sequence``: about 20 ``torch.tensor``
calls per sequence and minibatch, which took 15-17% of a level-3 training run (``cProfile``, 250 units, 128 envs).
:class:`SequenceRolloutBuffer` scatters the minibatch into a preallocated padded array instead. It draws the same random
split, yields the same sequences in the same order with the same padding, and so gives bit-identical training
(``tests/test_buffers.py``). :class:`~agents.policy.RNNPPO` installs it; models it saves open with plain
``RecurrentPPO.load``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch as th
from sb3_contrib.common.recurrent.buffers import RecurrentRolloutBuffer
from sb3_contrib.common.recurrent.type_aliases import RecurrentRolloutBufferSamples, RNNStates


class Sequences:
    """The sequences of one minibatch and their padded layout.

    A sequence starts at the minibatch's first transition, at every episode start and wherever the data switch to
    another env (the rule of sb3-contrib's ``create_sequencers``).

    Args:
        episode_starts: ``(B,)`` episode-start flags of the minibatch's transitions, in minibatch order.
        env_change: ``(B,)`` flags of transitions that come from another env than the one before.
    """

    def __init__(self, episode_starts: np.ndarray, env_change: np.ndarray) -> None:
        is_start = np.logical_or(episode_starts, env_change).ravel()
        is_start[0] = True
        self.starts = np.flatnonzero(is_start)
        n = is_start.size
        lengths = np.diff(np.append(self.starts, n))
        self.n_seq, self.max_length = len(self.starts), int(lengths.max())
        # where each transition goes in the (n_seq, max_length) padded layout
        self.row = np.repeat(np.arange(self.n_seq), lengths)
        self.col = np.arange(n) - np.repeat(self.starts, lengths)

    def pad(self, values: np.ndarray, padding_value: float = 0.0) -> th.Tensor:
        """``(B, *shape)`` -> ``(n_seq, max_length, *shape)``, zero padded after each sequence's end."""
        out = np.full((self.n_seq, self.max_length, *values.shape[1:]), padding_value, dtype=values.dtype)
        out[self.row, self.col] = values
        return th.from_numpy(out)

    def pad_and_flatten(self, values: np.ndarray, padding_value: float = 0.0) -> th.Tensor:
        """``(B,)`` or ``(B, 1)`` -> ``(n_seq * max_length,)``."""
        return self.pad(values, padding_value).flatten()


class SequenceRolloutBuffer(RecurrentRolloutBuffer):
    """``RecurrentRolloutBuffer`` whose minibatches are padded by :class:`Sequences` (same samples, less overhead)."""

    def _get_samples(  # type: ignore[override]
        self, batch_inds: np.ndarray, env_change: np.ndarray, env: Optional[object] = None
    ) -> RecurrentRolloutBufferSamples:
        seqs = Sequences(self.episode_starts[batch_inds], env_change[batch_inds])
        self.seq_start_indices = seqs.starts
        first = batch_inds[seqs.starts]  # each sequence's first transition: its stored recurrent state

        def states(hidden: np.ndarray, cell: np.ndarray) -> tuple[th.Tensor, th.Tensor]:
            # (n_seq, n_layers, dim) -> (n_layers, n_seq, dim)
            return (self.to_torch(hidden[first].swapaxes(0, 1)).contiguous(),
                    self.to_torch(cell[first].swapaxes(0, 1)).contiguous())

        device = self.device

        def pad(values: np.ndarray) -> th.Tensor:
            return seqs.pad(values).to(device)

        def flat(values: np.ndarray) -> th.Tensor:
            return seqs.pad_and_flatten(values).to(device)

        padded = seqs.n_seq * seqs.max_length
        returns = self.returns[batch_inds]
        return RecurrentRolloutBufferSamples(
            observations=pad(self.observations[batch_inds]).reshape((padded, *self.obs_shape)),
            actions=pad(self.actions[batch_inds]).reshape((padded, *self.actions.shape[1:])),
            old_values=flat(self.values[batch_inds]),
            old_log_prob=flat(self.log_probs[batch_inds]),
            advantages=flat(self.advantages[batch_inds]),
            returns=flat(returns),
            lstm_states=RNNStates(states(self.hidden_states_pi, self.cell_states_pi),
                                  states(self.hidden_states_vf, self.cell_states_vf)),
            episode_starts=flat(self.episode_starts[batch_inds]),
            mask=flat(np.ones_like(returns)),
        )


def install_sequence_buffer(model: object) -> None:
    """Give a ``RecurrentPPO`` model a :class:`SequenceRolloutBuffer` of the same size in place of its
    ``RecurrentRolloutBuffer`` (a dict-observation buffer is left alone)."""
    old = getattr(model, "rollout_buffer", None)
    if type(old) is not RecurrentRolloutBuffer:
        return
    model.rollout_buffer = SequenceRolloutBuffer(  # type: ignore[attr-defined]
        old.buffer_size, old.observation_space, old.action_space, old.hidden_state_shape, device=old.device,
        gamma=old.gamma, gae_lambda=old.gae_lambda, n_envs=old.n_envs,
    )


__all__ = ["SequenceRolloutBuffer", "Sequences", "install_sequence_buffer"]
