"""Environments: API checks, registration, rewards, vector = single, SB3 adapter, scoring."""

import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import dm_envs
from dm_envs import (
    OUTCOMES,
    DecisionMakingEnv,
    DecisionMakingVectorEnv,
    make_config,
    oracle_policy,
    random_policy,
    run_closed_loop,
    sample_trials,
    score_actions,
)
from dm_envs.config import DECISION, STIMULUS


@pytest.mark.parametrize("env_id", list(dm_envs.ENV_IDS))
def test_gymnasium_and_sb3_env_checkers(env_id):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # unbounded Box under Gaussian noise
        check_env(gym.make(env_id).unwrapped)
        sb3_check_env(gym.make(env_id).unwrapped)


def test_registration_without_prior_import():
    code = (
        "import gymnasium as gym, sys\n"
        "env = gym.make('dm_envs:DecisionMaking-v0', level=2)\n"
        "obs, _ = env.reset(seed=0)\n"
        "assert obs.shape == (3,), obs.shape\n"
        "assert 'stable_baselines3' not in sys.modules and 'torch' not in sys.modules\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_named_ids_and_make_vec():
    assert gym.make("PerceptualDecisionMaking-v0").unwrapped.config == make_config(1)
    assert gym.make("ContextDecisionMaking-v0").unwrapped.config == make_config(3)
    assert gym.make("NeuroGymContextDecisionMaking-v0").unwrapped.config == make_config(preset="neurogym")
    env = gym.make("DecisionMaking-v0", level=4, coherences=[0.5])
    assert env.unwrapped.config.coherences == (0.5,) and env.action_space.n == 4
    venv = gym.make_vec("DecisionMaking-v0", num_envs=8, vectorization_mode="vector_entry_point", level=1)
    assert isinstance(venv, DecisionMakingVectorEnv) and venv.observation_space.shape == (8, 3)
    with pytest.raises(TypeError, match="unknown task parameter"):
        gym.make("DecisionMaking-v0", coherence=0.3)


def _play(env, actions_fn, n_steps, seed):
    obs, info = env.reset(seed=seed)
    log = []
    for _ in range(n_steps):
        a = actions_fn(info)
        obs, r, term, trunc, info = env.step(a)
        log.append((obs.copy(), r, term, trunc))
        if term:
            obs, info = env.reset()
    return log


def test_reset_seed_reproduces_the_trial_sequence():
    env = DecisionMakingEnv(level=3)
    rng = np.random.default_rng(0)
    acts = rng.integers(0, 3, 500)
    it = iter(acts)
    first = _play(env, lambda info: int(next(it)), 500, seed=42)
    it = iter(acts)
    second = _play(env, lambda info: int(next(it)), 500, seed=42)
    for (o1, r1, t1, _), (o2, r2, t2, _) in zip(first, second):
        assert np.array_equal(o1, o2) and r1 == r2 and t1 == t2


def test_rewards_and_episode_end():
    cfg = make_config(1, reward_abort=-0.25, reward_fail=-1.0, reward_miss=-0.5)
    env = DecisionMakingEnv(config=cfg)
    obs, info = env.reset(seed=1)
    correct = info["correct_choice"] + 1
    # break fixation during the stimulus: penalty every such step, the trial goes on
    for _ in range(3):
        obs, r, term, trunc, info = env.step(0)
    obs, r, term, trunc, info = env.step(correct)
    assert (r, term, trunc, info["stage"]) == (-0.25, False, False, STIMULUS)
    while info["stage"] != DECISION or not term:
        nxt = env.unwrapped._engine.current_stage()[0]
        obs, r, term, trunc, info = env.step(correct if nxt == DECISION else 0)
    assert term and r == 1.0 and info["outcome"] == "correct" and info["correct"] and info["performance"] == 1.0
    # a wrong choice
    env.reset()
    wrong = 3 - (env.unwrapped._trial_info()["correct_choice"] + 1)
    while True:
        nxt = env.unwrapped._engine.current_stage()[0]
        obs, r, term, trunc, info = env.step(wrong if nxt == DECISION else 0)
        if term:
            break
    assert r == -1.0 and info["outcome"] == "wrong" and info["choice"] == wrong - 1
    # no response: the trial ends with the last decision step
    env.reset()
    steps = 0
    while True:
        obs, r, term, trunc, info = env.step(0)
        steps += 1
        if term:
            break
    assert r == -0.5 and info["outcome"] == "miss" and info["choice"] == -1 and steps == cfg.max_trial_steps


def test_abort_ends_trial_when_configured():
    env = DecisionMakingEnv(level=1, abort_ends_trial=True)
    env.reset(seed=0)
    obs, r, term, trunc, info = env.step(1)
    assert term and r == pytest.approx(-0.1) and info["outcome"] == "abort"


@pytest.mark.parametrize("bad", [3, -1, 1.5, "a", None])
def test_invalid_action_raises(bad):
    env = DecisionMakingEnv(level=3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must be an integer in \[0, 2\]"):
        env.step(bad)
    venv = DecisionMakingVectorEnv(4, level=3)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"in \[0, 2\]"):
        venv.step(np.array([0, 0, 0, 3]))
    with pytest.raises(ValueError, match="expected 4 actions"):
        venv.step(np.zeros(3, dtype=int))


@pytest.mark.parametrize("overrides", [{}, {"abort_ends_trial": True}, {"level": 4}, {"preset": "neurogym"}])
def test_vector_env_equals_single_envs(overrides):
    n = 6
    kwargs = dict(overrides)
    venv = DecisionMakingVectorEnv(n, **kwargs)
    envs = [DecisionMakingEnv(**kwargs) for _ in range(n)]
    obs, _ = venv.reset(seed=100)
    singles = [e.reset(seed=100 + i)[0] for i, e in enumerate(envs)]
    np.testing.assert_array_equal(obs, np.stack(singles))
    n_act = venv.single_action_space.n
    rng = np.random.default_rng(0)
    ended, steps = 0, 0
    while ended <= n * (dm_envs.TRIALS_PER_BLOCK + 2):  # past one block of trials per env: blocks are redrawn
        steps += 1
        assert steps < 20000
        # mostly fixate so trials reach the decision stage; sometimes act at random
        a = np.where(rng.random(n) < 0.8, 0, rng.integers(0, n_act, n))
        obs, r, term, trunc, info = venv.step(a)
        for i, e in enumerate(envs):
            o1, r1, t1, tr1, i1 = e.step(int(a[i]))
            if t1:
                ended += 1
                assert info["_final_obs"][i] and info["_final_info"][i]
                np.testing.assert_array_equal(info["final_obs"][i], o1)
                assert_row_equals(info["final_info"], i, i1)  # the finished trial's last step info
                o1, i1 = e.reset()  # the next trial's reset info is the vector env's top level
            assert_row_equals(info, i, i1)
            np.testing.assert_array_equal(obs[i], o1)
            assert r[i] == np.float32(r1) and term[i] == t1 and not trunc[i]


def assert_row_equals(batched, i, single):
    """Env ``i``'s entries of a vector-env info (dict of arrays with ``_key`` masks) are the single env's info."""
    present = {k for k in batched if not k.startswith("_") and k not in ("final_obs", "final_info") and batched["_" + k][i]}
    assert present == set(single), (present ^ set(single))
    for key in present:
        np.testing.assert_array_equal(batched[key][i], single[key], err_msg=key)


def test_sb3_vec_env_matches_vector_env():
    from dm_envs.sb3 import make_sb3_vec_env

    n = 5
    sb3_env = make_sb3_vec_env(n, level=3, seed=9)
    venv = DecisionMakingVectorEnv(n, level=3)
    np.testing.assert_array_equal(sb3_env.reset(), venv.reset(seed=9)[0])
    rng = np.random.default_rng(1)
    n_trials = 0
    for _ in range(600):
        a = np.where(rng.random(n) < 0.85, 0, rng.integers(0, 3, n))
        o1, r1, d1, infos = sb3_env.step(a)
        o2, r2, d2, _, info = venv.step(a)
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(d1, d2)
        for i in np.flatnonzero(d1):
            n_trials += 1
            np.testing.assert_array_equal(infos[i]["terminal_observation"], info["final_obs"][i])
            assert infos[i]["is_success"] == (infos[i]["outcome"] == "correct")
            assert infos[i]["episode"]["l"] >= 1
    assert n_trials > 50


def test_sb3_vec_env_trains_with_stock_recurrent_ppo():
    from sb3_contrib import RecurrentPPO

    from dm_envs.sb3 import make_sb3_vec_env

    model = RecurrentPPO("MlpLstmPolicy", make_sb3_vec_env(4, level=1, seed=0), n_steps=16, batch_size=32,
                         n_epochs=1, policy_kwargs=dict(lstm_hidden_size=8, net_arch=[]), seed=0)
    model.learn(128)
    assert model.num_timesteps >= 128 and len(model.ep_info_buffer) > 0


def test_oracle_scores_100_and_random_scores_chance():
    for key in (1, 3, 4):
        cfg = make_config(key)
        assert run_closed_loop(cfg, oracle_policy, 1000, seed=0).accuracy == 1.0
        rand = run_closed_loop(cfg, random_policy(1), 3000, seed=0)
        assert abs(rand.choice_accuracy - 1 / cfg.n_choices) < 0.03
        assert rand.rates()["abort"] == 0.0  # breaking fixation does not end trials by default
    tr = sample_trials(make_config(3), 500, rng=0)
    assert score_actions(tr, tr.gt).accuracy == 1.0


def test_score_actions_equals_stepping_the_env():
    from dm_envs._engine import rng_from_seed

    cfg = make_config(2, abort_ends_trial=True, reward_abort=-0.3)
    # An env seeded s runs, first, the block of trials sample_trials draws from the generator reset(seed=s) makes.
    trials = sample_trials(cfg, dm_envs.TRIALS_PER_BLOCK, rng_from_seed(5))
    rng = np.random.default_rng(3)
    actions = np.where(rng.random(trials.gt.shape) < 0.93, 0, rng.integers(0, 3, trials.gt.shape))
    scores = score_actions(trials, actions)
    venv = DecisionMakingVectorEnv(1, config=cfg)
    obs, _ = venv.reset(seed=5)
    for i in range(len(trials)):
        np.testing.assert_array_equal(obs[0], trials.obs[i, 0])
        total, t = 0.0, 0
        while True:
            obs, r, term, _, info = venv.step(actions[i, t : t + 1])
            total += r[0]
            if term[0]:
                break
            t += 1
        assert OUTCOMES[scores.outcome[i]] == info["final_info"]["outcome"][0]
        assert scores.end_step[i] == t and scores.reward[i] == pytest.approx(total)
    assert {OUTCOMES[o] for o in scores.outcome} >= {"abort", "correct", "wrong", "miss"}


def test_closed_loop_and_batched_scoring_agree_on_a_fixed_policy():
    cfg = make_config(3)

    def late_random(obs, start, engine):  # fixate until the go cue, then a random-but-deterministic choice
        choose = 1 + (obs[:, 1] > obs[:, 2]).astype(int)
        return np.where(obs[:, 0] > 0.5, 0, choose)

    closed = run_closed_loop(cfg, late_random, 400, seed=3)
    assert closed.rates()["miss"] == 0.0 and closed.rates()["abort"] == 0.0
    assert abs(closed.choice_accuracy - 0.5) < 0.08
