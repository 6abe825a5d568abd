"""RNNPolicy under stock sb3-contrib RecurrentPPO: construction, init, optimizer, sequence path, save/load, predict."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kstest
import torch as th
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from torch import nn

from agents import RNNPPO, RNNPolicy, run_policy
from analysis.network import Network
from dm_envs import make_config, sample_trials
from dm_envs.sb3 import make_sb3_vec_env

th.set_num_threads(1)

H = 24


def make_model(critic: str = "shared", n_envs: int = 4, hidden: int = H, seed: int = 0, **kw) -> RecurrentPPO:
    venv = make_sb3_vec_env(n_envs, 3, seed=seed)
    kw = {"n_steps": 32, "batch_size": 64, "n_epochs": 1, **kw}
    return RecurrentPPO(RNNPolicy, venv, seed=seed, policy_kwargs=dict(hidden_size=hidden, critic=critic), **kw)


@pytest.fixture(scope="module")
def trained() -> RecurrentPPO:
    model = make_model()
    model.learn(256)
    return model


def test_learns_a_few_steps_in_every_critic_mode() -> None:
    for critic in ("shared", "rnn", "linear"):
        model = make_model(critic)
        before = [p.detach().clone() for p in model.policy.parameters()]
        model.learn(128)
        assert model.num_timesteps >= 128
        after = list(model.policy.parameters())
        assert any(not th.equal(a, b) for a, b in zip(after, before))
        assert all(bool(th.isfinite(p).all()) for p in after)


def test_alias_and_policy_class() -> None:
    model = RNNPPO("MlpRnnPolicy", make_sb3_vec_env(2, 1, seed=0), policy_kwargs=dict(hidden_size=8), n_steps=8,
                   batch_size=16)
    assert isinstance(model.policy, RNNPolicy)


@pytest.mark.parametrize("critic", ["shared", "rnn", "linear"])
def test_no_lstm_left_and_optimizer_covers_exactly_the_parameters(critic: str) -> None:
    policy = make_model(critic).policy
    assert not any(isinstance(m, nn.LSTM) for m in policy.modules())
    in_opt = {id(p) for g in policy.optimizer.param_groups for p in g["params"]}
    assert in_opt == {id(p) for p in policy.parameters()}
    assert sum(len(g["params"]) for g in policy.optimizer.param_groups) == len(list(policy.parameters()))
    assert (policy.lstm_critic is not None) == (critic == "rnn")


def test_init_distributions_bias_free_and_seeded() -> None:
    delta = 0.07
    venv = make_sb3_vec_env(2, 3, seed=0)
    kw = dict(hidden_size=250, delta=delta, init_seed=5)
    policy = RecurrentPPO(RNNPolicy, venv, policy_kwargs=kw, n_steps=8, batch_size=16).policy
    rnn = policy.lstm_actor
    assert not rnn.bias and policy.action_net.bias is None
    assert not [n for n, _ in policy.named_parameters() if "bias" in n and "value_net" not in n]
    for w, half in ((rnn.weight_hh_l0, delta), (rnn.weight_ih_l0, delta), (policy.action_net.weight, 0.1),
                    (policy.value_net.weight, 0.1)):
        x = w.detach().numpy().ravel()
        assert np.abs(x).max() <= half
        if x.size > 1000:  # a uniform on [-h, h] (Kolmogorov-Smirnov), not PyTorch's or SB3's init
            assert kstest(x, "uniform", args=(-half, 2 * half)).pvalue > 1e-3
            assert x.std() == pytest.approx(half / np.sqrt(3), rel=0.05)
    assert policy.value_net.bias.item() == 0.0
    # Same init_seed -> the same weights, whatever the global generator did in between.
    th.manual_seed(123)
    again = RecurrentPPO(RNNPolicy, venv, policy_kwargs=kw, n_steps=8, batch_size=16).policy
    for a, b in zip(policy.parameters(), again.parameters()):
        assert th.equal(a, b)


def test_with_bias_option() -> None:
    venv = make_sb3_vec_env(2, 3, seed=0)
    policy = RecurrentPPO(RNNPolicy, venv, policy_kwargs=dict(hidden_size=8, bias=True), n_steps=8,
                          batch_size=16).policy
    assert policy.lstm_actor.bias and policy.action_net.bias is not None
    assert policy.lstm_actor.bias_hh_l0.abs().sum().item() == 0.0


def _reference_sequence(rnn: nn.RNN, feats: th.Tensor, h0: th.Tensor, starts: th.Tensor) -> th.Tensor:
    """Step-by-step ReLU RNN over (n_seq, T) sequences, state zeroed where an episode starts."""
    n_seq, T, _ = feats.shape
    h = h0[0]
    out = []
    for t in range(T):
        h = h * (1.0 - starts[:, t : t + 1])
        h = th.relu(feats[:, t] @ rnn.weight_ih_l0.T + h @ rnn.weight_hh_l0.T)
        out.append(h)
    return th.stack(out, dim=1).reshape(n_seq * T, -1)


@pytest.mark.parametrize("mid_starts", [False, True])
def test_fused_sequence_path_equals_stepping(mid_starts: bool) -> None:
    policy = make_model().policy
    rnn = policy.lstm_actor
    gen = th.Generator().manual_seed(0)
    n_seq, T, D = 6, 9, rnn.input_size
    feats = th.rand((n_seq, T, D), generator=gen)
    h0 = th.rand((1, n_seq, H), generator=gen)
    starts = th.zeros((n_seq, T))
    starts[::2, 0] = 1.0  # some sequences begin an episode
    if mid_starts:
        starts[1, 4] = starts[3, 7] = 1.0  # episodes starting inside a sequence
    with th.no_grad():
        fused, (h_n, _) = RNNPolicy._process_sequence(feats.reshape(n_seq * T, D), (h0, th.zeros_like(h0)),
                                                      starts.reshape(-1), rnn)
        parent, (hp_n, _) = RecurrentActorCriticPolicy._process_sequence(
            feats.reshape(n_seq * T, D), (h0, th.zeros_like(h0)), starts.reshape(-1), rnn)
    ref = _reference_sequence(rnn, feats, h0, starts)
    th.testing.assert_close(fused, ref, rtol=1e-5, atol=1e-6)
    th.testing.assert_close(parent, ref, rtol=1e-5, atol=1e-6)
    th.testing.assert_close(h_n[0], ref.reshape(n_seq, T, -1)[:, -1], rtol=1e-5, atol=1e-6)
    th.testing.assert_close(hp_n, h_n, rtol=1e-5, atol=1e-6)


def test_update_path_reproduces_the_rollout_log_probs() -> None:
    """PPO's sequence path (buffer sequences + fused core) gives the log-probs recorded while acting step by step."""
    model = make_model(n_envs=6, n_steps=48, batch_size=100)
    model.learn(6 * 48)  # one rollout; then recompute before the buffer is reused
    buf = model.rollout_buffer
    model.policy.set_training_mode(False)
    # learn() trained on this buffer already: collect a fresh one without training
    from stable_baselines3.common.callbacks import BaseCallback

    class Noop(BaseCallback):
        def _on_step(self) -> bool:
            return True

    cb = Noop()
    cb.init_callback(model)
    model.collect_rollouts(model.env, cb, buf, model.n_steps)
    n_checked = 0
    with th.no_grad():
        for data in buf.get(100):
            mask = data.mask > 1e-8
            _, log_prob, _ = model.policy.evaluate_actions(data.observations, data.actions.long().flatten(),
                                                           data.lstm_states, data.episode_starts)
            th.testing.assert_close(log_prob[mask], data.old_log_prob[mask], rtol=1e-4, atol=1e-5)
            n_checked += int(mask.sum())
    assert n_checked == 6 * 48


def test_save_load_round_trip(trained: RecurrentPPO, tmp_path) -> None:
    path = tmp_path / "model.zip"
    trained.save(path)
    loaded = RecurrentPPO.load(path)
    assert isinstance(loaded.policy, RNNPolicy)
    for (n, a), (_, b) in zip(trained.policy.state_dict().items(), loaded.policy.state_dict().items()):
        assert th.equal(a, b), n
    assert loaded.policy.hidden_size == H and loaded.policy.critic_mode == "shared"
    obs = trained.env.reset()
    a1, s1 = trained.predict(obs, deterministic=True)
    a2, s2 = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_allclose(s1[0], s2[0])
    w = Network.from_policy(loaded)
    assert w.W_rec.shape == (H, H) and w.W_in.shape == (H, 7) and w.W_out.shape == (3, H)


def test_predict_with_states_and_episode_starts(trained: RecurrentPPO) -> None:
    venv = make_sb3_vec_env(5, 3, seed=3)
    obs = venv.reset()
    actions, state = trained.predict(obs, deterministic=True)
    assert actions.shape == (5,)
    assert isinstance(state, tuple) and len(state) == 2 and state[0].shape == (1, 5, H)
    assert np.abs(state[1]).max() == 0.0  # the dummy cell state
    obs2, *_ = venv.step(actions)
    _, s_cont = trained.predict(obs2, state=state, episode_start=np.zeros(5, bool), deterministic=True)
    _, s_reset = trained.predict(obs2, state=state, episode_start=np.ones(5, bool), deterministic=True)
    _, s_fresh = trained.predict(obs2, deterministic=True)
    np.testing.assert_allclose(s_reset[0], s_fresh[0])  # an episode start zeroes the state
    assert not np.allclose(s_cont[0], s_fresh[0])


def test_run_policy_equals_predict_stepping(trained: RecurrentPPO) -> None:
    cfg = make_config(3)
    trials = sample_trials(cfg, 12, np.random.default_rng(0))
    run = run_policy(trained, trials)
    for i in range(len(trials)):
        state = None
        for t in range(int(trials.length[i])):
            obs = trials.obs[i, t][None]
            action, state = trained.predict(obs, state=state, episode_start=np.array([t == 0]), deterministic=True)
            assert int(action[0]) == run.actions[i, t]
            np.testing.assert_allclose(state[0][0, 0], run.hidden[i, t], rtol=1e-5, atol=1e-6)
    assert run.hidden.shape == (12, trials.n_steps, H) and run.values.shape == (12, trials.n_steps)
