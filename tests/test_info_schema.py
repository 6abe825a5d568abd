"""One info schema for every front end: the single env, the Gymnasium vector env (equal to SyncVectorEnv of single
envs under same-step autoreset), the SB3 VecEnv (equal to SB3's DummyVecEnv of Monitor-wrapped single envs), the
supervised batches; is_success reaches SB3's EvalCallback and Monitor."""

import csv

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import dm_envs
from dm_envs import END_KEYS, INFO_SCHEMA, STEP_KEYS, TRIAL_KEYS, DecisionMakingEnv, DecisionMakingVectorEnv
from dm_envs._engine import rng_from_seed
from dm_envs.sb3 import make_sb3_vec_env

TYPES = {
    "coherence": np.ndarray, "direction": np.ndarray, "signed_coherence": np.ndarray, "context": int,
    "correct_choice": int, "gt": int, "stage": int, "new_trial": bool, "outcome": str, "correct": bool,
    "is_success": bool, "choice": int, "performance": float,
}  # fmt: skip


def trial_keys(level):
    return set(TRIAL_KEYS) - ({"signed_coherence"} if level == 4 else set())


def actions_for(rng, n, n_actions):
    """Mostly fixate (so trials reach the decision), sometimes act at random."""
    return np.where(rng.random(n) < 0.85, 0, rng.integers(0, n_actions, n))


def test_schema_is_documented_in_the_env_docstring():
    assert set(INFO_SCHEMA) == set(TRIAL_KEYS) | set(STEP_KEYS) | set(END_KEYS)
    for key in INFO_SCHEMA:
        assert f"``{key}``" in DecisionMakingEnv.__doc__, key
    for front_end in (DecisionMakingVectorEnv, dm_envs.sb3.TrialVecEnv):
        assert "INFO_SCHEMA" in front_end.__doc__


@pytest.mark.parametrize("level", [1, 3, 4])
def test_single_env_keys_types_and_timing(level):
    env = DecisionMakingEnv(level=level)
    rng = np.random.default_rng(level)
    obs, info = env.reset(seed=0)
    assert set(info) == trial_keys(level)
    outcomes = set()
    for _ in range(3000):
        obs, reward, terminated, truncated, step = env.step(int(actions_for(rng, 1, env.action_space.n)[0]))
        expected = trial_keys(level) | set(STEP_KEYS) | (set(END_KEYS) if terminated else set())
        assert set(step) == expected
        assert all(isinstance(step[k], TYPES[k]) for k in step), {k: type(v) for k, v in step.items()}
        for key in trial_keys(level):  # the step describes the trial its reset announced
            np.testing.assert_array_equal(step[key], info[key])
        assert step["new_trial"] == terminated
        if terminated:
            assert step["is_success"] == step["correct"] == (step["outcome"] == "correct")
            assert step["performance"] == float(step["correct"])
            assert step["choice"] == (-1 if step["outcome"] in ("miss", "abort") else step["choice"])
            outcomes.add(step["outcome"])
            obs, info = env.reset()
    assert outcomes >= {"correct", "wrong"}


def assert_vector_infos_equal(ours, theirs):
    """Same keys (a key absent on one side counts as all-masked), same masks, same values where masked."""
    keys = {k for k in set(ours) | set(theirs) if not k.startswith("_") and k != "final_obs"}
    for key in keys:
        if key == "final_info":
            assert_vector_infos_equal(ours.get(key, {}), theirs.get(key, {}))
            continue
        n = len(next(v for k, v in {**ours, **theirs}.items() if k.startswith("_")))
        mask_a = ours.get("_" + key, np.zeros(n, bool))
        mask_b = theirs.get("_" + key, np.zeros(n, bool))
        np.testing.assert_array_equal(mask_a, mask_b, err_msg=f"mask of {key}")
        for i in np.flatnonzero(mask_a):
            np.testing.assert_array_equal(ours[key][i], theirs[key][i], err_msg=key)


@pytest.mark.parametrize("level", [1, 4])
def test_vector_env_infos_equal_sync_vector_env_of_single_envs(level):
    n = 5
    ours = gym.make_vec("DecisionMaking-v0", num_envs=n, vectorization_mode="vector_entry_point", level=level)
    sync = SyncVectorEnv([lambda: DecisionMakingEnv(level=level) for _ in range(n)],
                         autoreset_mode=AutoresetMode.SAME_STEP)
    o1, i1 = ours.reset(seed=11)
    o2, i2 = sync.reset(seed=11)
    np.testing.assert_array_equal(o1, o2)
    assert_vector_infos_equal(i1, i2)
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(400):
        a = actions_for(rng, n, ours.single_action_space.n)
        o1, r1, t1, _, i1 = ours.step(a)
        o2, r2, t2, _, i2 = sync.step(a)
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(t1, t2)
        assert_vector_infos_equal(i1, i2)
        for i in np.flatnonzero(t1):
            ended += 1
            np.testing.assert_array_equal(i1["final_obs"][i], i2["final_obs"][i])
    assert ended > 30


def test_sb3_vec_env_infos_equal_dummy_vec_env_of_monitored_single_envs():
    from stable_baselines3.common.env_util import make_vec_env

    n = 4
    ours = make_sb3_vec_env(n, level=3, seed=21)
    dummy = make_vec_env("DecisionMaking-v0", n_envs=n, seed=21, env_kwargs={"level": 3})
    np.testing.assert_array_equal(ours.reset(), dummy.reset())

    def same(a, b):
        assert set(a) == set(b), set(a) ^ set(b)
        for key in a:
            if key == "episode":
                assert (a[key]["r"], a[key]["l"]) == (b[key]["r"], b[key]["l"])
            else:
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)
                assert type(a[key]) is type(b[key]) or isinstance(a[key], np.ndarray), key

    for a, b in zip(ours.reset_infos, dummy.reset_infos):
        same(a, b)
    rng = np.random.default_rng(1)
    ended = 0
    for _ in range(300):
        a = actions_for(rng, n, 3)
        o1, r1, d1, infos1 = ours.step(a)
        o2, r2, d2, infos2 = dummy.step(a)
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(d1, d2)
        for x, y in zip(infos1, infos2):
            same(x, y)
        for x, y in zip(ours.reset_infos, dummy.reset_infos):
            same(x, y)
        ended += int(d1.sum())
    assert ended > 20


def test_supervised_batches_and_scores_use_the_same_keys():
    from dm_envs import score_actions, sample_trials

    cfg = dm_envs.make_config(2, abort_ends_trial=True)
    # an env seeded s first runs the block sample_trials draws from the generator reset(seed=s) makes
    trials = sample_trials(cfg, dm_envs.TRIALS_PER_BLOCK, rng_from_seed(4))
    rng = np.random.default_rng(2)
    actions = np.where(rng.random(trials.gt.shape) < 0.95, 0, rng.integers(0, 3, trials.gt.shape))
    batch_info, end = trials.info(), score_actions(trials, actions).info()
    assert set(batch_info) == set(TRIAL_KEYS) and set(end) == set(END_KEYS)
    env = DecisionMakingEnv(config=cfg)
    _, info = env.reset(seed=4)
    for i in range(len(trials)):
        for key in TRIAL_KEYS:
            np.testing.assert_array_equal(batch_info[key][i], info[key])
        t = 0
        while True:
            _, _, terminated, _, step = env.step(int(actions[i, t]))
            t += 1
            if terminated:
                break
        assert {k: step[k] for k in END_KEYS} == {k: end[k][i] for k in END_KEYS}
        _, info = env.reset()
    assert {"correct", "abort"} <= set(end["outcome"])


@pytest.mark.filterwarnings("ignore:Training and eval env are not of the same type")
def test_eval_callback_and_monitor_record_is_success(tmp_path):
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import EvalCallback
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    model = PPO("MlpPolicy", make_sb3_vec_env(4, level=1, seed=0), n_steps=32, batch_size=64, n_epochs=1,
                policy_kwargs=dict(net_arch=[8]), seed=0)
    callbacks = [
        EvalCallback(make_sb3_vec_env(2, level=1, seed=100), n_eval_episodes=6, eval_freq=32, verbose=0,
                     log_path=str(tmp_path / "ours"), warn=False),
        EvalCallback(DummyVecEnv([lambda: Monitor(gym.make("DecisionMaking-v0", level=1))]), n_eval_episodes=6,
                     eval_freq=32, verbose=0, log_path=str(tmp_path / "stock"), warn=False),
    ]
    model.learn(128, callback=callbacks)
    for cb in callbacks:
        assert cb.evaluations_successes and all(len(s) == 6 for s in cb.evaluations_successes)
        assert all(isinstance(x, bool) for s in cb.evaluations_successes for x in s)
        assert "successes" in np.load(cb.log_path + ".npz")
    monitored = Monitor(gym.make("DecisionMaking-v0", level=1), str(tmp_path / "m"), info_keywords=("is_success",))
    monitored.reset(seed=0)
    for _ in range(3):
        terminated = False
        while not terminated:
            _, _, terminated, _, _ = monitored.step(int(monitored.unwrapped._engine.current_gt()[0]))
        monitored.reset()
    monitored.close()
    with open(tmp_path / "m.monitor.csv") as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    assert [r["is_success"] for r in rows] == ["True"] * 3
