"""Trial generation must not change: these hashes were computed on the code before the rendering / info / validation
work (issues 12 and 13); the same seed must keep giving bit-identical trials, env rollouts and supervised batches."""

import hashlib

import numpy as np
import pytest

from dm_envs import DecisionMakingEnv, DecisionMakingVectorEnv, TrialDataset, make_config, sample_trials


def digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


TRIAL_HASHES = {
    (1, 0): "7d0a5f79b93c8dc13dd7e13db990a24884b2cc3f6fccb13aed181166c8d49200",
    (1, 12345): "9d614aa502d733b0604bc4f8f99ffe5abc64b1e311c782b738b7b940f3c330d9",
    (2, 0): "f791616764ddb69a180bf048673174fc8d6aecfd5ee5d1f4b1550848a560c458",
    (2, 12345): "536b2dd8c436bef03a53652f2c642c65c0f6021fff4ad47f118f285d785f20ab",
    (3, 0): "ff7880e3535be0fd1da54b5c8d6c5e87ea5816a28683d43064926a3e7a884f58",
    (3, 12345): "7840820ab59e224472816862bbab2f14e0f791a91231473ddc88e8392281c6c5",
    (4, 0): "17c057eb940c121229fab9c9c73d56b4f383eb14aed89d01754295ac360a2fe7",
    (4, 12345): "2e25ad2e95d2b22443a22e2cfedcf3baa2ef820bad2f31044c0a18618ca25d40",
}

ROLLOUT_HASHES = {
    1: (
        "8f79f97cedf10cd6cbe75d1c89fab962714490b7566c9447dbd495a5580d8a24",
        "9b255ac54f7341636ab402726a1decd7b135fb99e47be83ed59607d7821c2a8f",
        "f05c7cfe703b9e92b05c22b5d6c83de0be8adff13370f87b753f39cf0dd38832",
    ),
    3: (
        "85f17ab3cff6fcd7b809dc00e8b415c01e30dd6db16f4cd5ec7bbe5a3ebaf29a",
        "e557b1bbfbf38116785384d71e396c3f51ec2a752e780d46b673a5385c4057e1",
        "aebf96f48de622ed4cf43cca4028dd54f39c356ac63b88d8268bf695a6aa01d2",
    ),
    4: (
        "50b314c440318a2d02be783ff287beb142c7d4825ddcd228ed0c959ce50e3a32",
        "d8ac452bdacadfe01f5514baffb6e730513da9e8d5739ae334b5c3414bca7fdd",
        "bf1411a79e6e531228d7228eaa0c39e099f97e88ad1f8923078acd075508aea1",
    ),
}


@pytest.mark.parametrize("level, seed", sorted(TRIAL_HASHES))
def test_sample_trials_bit_identical(level, seed):
    trials = sample_trials(make_config(level), 64, seed)
    assert digest(trials.obs, trials.gt) == TRIAL_HASHES[level, seed]


@pytest.mark.parametrize("level", sorted(ROLLOUT_HASHES))
def test_env_rollouts_and_batches_bit_identical(level):
    """A fixed action sequence through the single env, the vector env and one supervised batch."""
    rng = np.random.default_rng(1)
    env = DecisionMakingEnv(level)
    obs, _ = env.reset(seed=7)
    observations, rewards = [obs], []
    for _ in range(400):
        action = int(rng.integers(0, env.action_space.n)) if rng.random() < 0.2 else 0
        obs, reward, terminated, _, _ = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        if terminated:
            obs, _ = env.reset()
            observations.append(obs)
    single = digest(np.array(observations), np.array(rewards, dtype=np.float64))

    venv = DecisionMakingVectorEnv(8, level)
    obs, _ = venv.reset(seed=7)
    observations, rewards = [obs], []
    for _ in range(300):
        actions = np.where(rng.random(8) < 0.2, rng.integers(0, venv.single_action_space.n, 8), 0)
        obs, reward, _, _, _ = venv.step(actions)
        observations.append(obs)
        rewards.append(reward)
    vector = digest(np.array(observations), np.array(rewards))

    batch = TrialDataset(level, batch_size=16, seed=3).sample()
    assert (single, vector, digest(batch.obs, batch.target)) == ROLLOUT_HASHES[level]
