"""The fast sequence buffer yields exactly sb3-contrib's minibatches, and training with it is bit-identical."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.buffers import RecurrentRolloutBuffer
from sb3_contrib.common.recurrent.type_aliases import RNNStates

from agents import RNNPolicy
from agents.buffers import SequenceRolloutBuffer, Sequences
from agents.policy import RNNPPO
from dm_envs.sb3 import make_sb3_vec_env


def _filled(cls: type, n_steps: int, n_envs: int, seed: int) -> RecurrentRolloutBuffer:
    """A buffer of ``cls`` filled with random transitions, episode starts about every 6 steps."""
    rng = np.random.default_rng(seed)
    obs_space = spaces.Box(-1.0, 1.0, (5,), np.float32)
    buf = cls(n_steps, obs_space, spaces.Discrete(3), (n_steps, 1, n_envs, 4), device="cpu", n_envs=n_envs)
    for _ in range(n_steps):
        h = th.as_tensor(rng.standard_normal((1, n_envs, 4)), dtype=th.float32)
        states = RNNStates((h, h * 2), (h * 3, h * 4))
        buf.add(rng.standard_normal((n_envs, 5)).astype(np.float32), rng.integers(0, 3, (n_envs, 1)),
                rng.standard_normal(n_envs), rng.random(n_envs) < 0.17,
                th.as_tensor(rng.standard_normal((n_envs, 1)), dtype=th.float32),
                th.as_tensor(rng.standard_normal(n_envs), dtype=th.float32), lstm_states=states)
    buf.compute_returns_and_advantage(th.zeros(n_envs), np.zeros(n_envs, dtype=bool))
    return buf


@pytest.mark.parametrize("batch_size", [16, 50, 96])
def test_sequence_buffer_yields_sb3_contribs_minibatches(batch_size: int) -> None:
    stock, fast = _filled(RecurrentRolloutBuffer, 12, 8, seed=3), _filled(SequenceRolloutBuffer, 12, 8, seed=3)
    np.random.seed(11)
    ref = list(stock.get(batch_size))
    np.random.seed(11)
    got = list(fast.get(batch_size))
    assert len(got) == len(ref) == -(-96 // batch_size)
    for a, b in zip(ref, got):
        for field in a._fields:
            x, y = getattr(a, field), getattr(b, field)
            pairs = [(x.pi[0], y.pi[0]), (x.pi[1], y.pi[1]), (x.vf[0], y.vf[0]), (x.vf[1], y.vf[1])] \
                if field == "lstm_states" else [(x, y)]
            for u, v in pairs:
                assert u.dtype == v.dtype and u.shape == v.shape, field
                assert th.equal(u, v), field


def test_sequences_cut_at_starts_and_env_changes() -> None:
    starts = np.array([0, 0, 1, 0, 0, 0, 1, 0], dtype=np.float32)
    change = np.array([1, 0, 0, 0, 1, 0, 0, 0], dtype=np.float32)
    seqs = Sequences(starts, change)
    assert seqs.starts.tolist() == [0, 2, 4, 6] and seqs.max_length == 2
    padded = seqs.pad(np.arange(8, dtype=np.float32)[:, None], padding_value=-1.0)
    assert padded[:, :, 0].tolist() == [[0, 1], [2, 3], [4, 5], [6, 7]]
    ragged = Sequences(np.array([0, 0, 0, 1, 0]), np.zeros(5))
    assert ragged.pad(np.arange(5.0)).tolist() == [[0, 1, 2], [3, 4, 0]]


def test_rnnppo_trains_bit_identically_to_stock_recurrent_ppo() -> None:
    def weights(cls: type) -> list[th.Tensor]:
        model = cls(RNNPolicy, make_sb3_vec_env(8, level=3, seed=2), n_steps=32, batch_size=64, n_epochs=2,
                    seed=2, policy_kwargs=dict(hidden_size=16, init_seed=2))
        model.learn(3 * 8 * 32)
        return [p.detach().clone() for p in model.policy.parameters()]

    stock, fast = weights(RecurrentPPO), weights(RNNPPO)
    assert all(th.equal(a, b) for a, b in zip(stock, fast))
    assert any(not th.equal(a, b) for a, b in zip(fast, weights(lambda *a, **k: RNNPPO(*a, **{**k, "seed": 3}))))
