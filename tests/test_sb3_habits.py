"""Issue 12: what a Gymnasium / Stable-Baselines3 user writes works as written (SB3's vector-env wrappers,
callbacks and video recorder on `make_vec_env` with no kwargs), `dmd analyze populations` shows progress from its
start, and `scripts/install.sh` leaves the user's package index alone."""

import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import dm_envs  # noqa: F401  (registers the tasks)
from analysis.network import Network

ROOT = Path(__file__).resolve().parents[1]


def test_subproc_vecnormalize_eval_and_checkpoint_callbacks_on_make_vec_env(tmp_path):
    """The wrappers and callbacks the issue had to pass env_kwargs=dict(render_mode=None) for, without it."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv, VecNormalize

    # worker processes start fresh (forkserver): Gymnasium's "module:id" imports the package that registers the task
    venv = VecNormalize(make_vec_env("dm_envs:DecisionMaking-v0", n_envs=2, seed=0, vec_env_cls=SubprocVecEnv,
                                     env_kwargs=dict(level=1)))
    eval_env = VecNormalize(make_vec_env("DecisionMaking-v0", n_envs=1, seed=9, env_kwargs=dict(level=1)),
                            training=False, norm_reward=False)
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=32, n_epochs=1, policy_kwargs=dict(net_arch=[8]), seed=0)
    evaluate = EvalCallback(eval_env, n_eval_episodes=4, eval_freq=32, log_path=str(tmp_path / "eval"), warn=False)
    model.learn(128, callback=[evaluate, CheckpointCallback(32, str(tmp_path / "ckpt"), name_prefix="step")])
    venv.close()
    assert venv.render_mode == "rgb_array" and len(list((tmp_path / "ckpt").glob("step_*_steps.zip"))) == 2
    assert evaluate.evaluations_successes and all(len(s) == 4 for s in evaluate.evaluations_successes)


def test_vec_video_recorder_on_make_vec_env_writes_a_readable_video(tmp_path, video_frames):
    """SB3's VecVideoRecorder (what EvalCallback video recipes use) on make_vec_env's default render_mode."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecVideoRecorder

    venv = VecVideoRecorder(make_vec_env("DecisionMaking-v0", n_envs=2, seed=0, env_kwargs=dict(level=1)),
                            str(tmp_path), record_video_trigger=lambda step: step == 0, video_length=12)
    venv.reset()
    for _ in range(12):
        venv.step(np.zeros(2, dtype=np.int64))
    venv.close()
    frames, _ = video_frames(tmp_path)  # asserts there is exactly one video
    assert len(frames) >= 12 and frames[0].std() > 20  # a picture: SB3 tiles the two envs' trials, one above the other
    single = gym.make("DecisionMaking-v0", level=1, render_mode="rgb_array")
    single.reset(seed=0)
    h, w, _ = single.render().shape
    assert frames[0].shape == (2 * h, w, 3)


def test_populations_shows_a_step_bar_from_its_start(tmp_path, capsys):
    """`dmd analyze populations` used to print nothing for about 30 s: a bar over its steps starts at once and
    names the running step."""
    from analysis.cli import main

    Network.random(16, 7, 3, seed=0).save(tmp_path / "w.npz")
    assert main(["analyze", "populations", str(tmp_path / "w.npz"), "--out", str(tmp_path / "out"), "-c", "3",
                 "--trials", "30", "--shuffles", "20", "--skip", "connectivity", "robustness_noise",
                 "robustness_ablation", "--no-figures"]) == 0
    err = capsys.readouterr().err
    first = err.index("populations:")
    assert first < err.index("selectivity") and "0/7" in err[first:] and "7/7" in err
    assert main(["analyze", "populations", str(tmp_path / "w.npz"), "--out", str(tmp_path / "quiet"), "-c", "3",
                 "--trials", "30", "--shuffles", "20", "--skip", "connectivity", "robustness_noise",
                 "robustness_ablation", "--no-figures", "--no-progress"]) == 0
    assert "populations:" not in capsys.readouterr().err


def test_install_script_adds_only_the_pytorch_cpu_index():
    """The user's pip configuration (mirrors, proxies) stays in charge: no --index-url, no default index address."""
    text = (ROOT / "scripts" / "install.sh").read_text()
    commands = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert not re.search(r"--index-url|(?<!extra-)index-url|pypi\.org|-i\s+http", commands)
    assert re.findall(r"--extra-index-url\s+(\S+)", commands) == ["https://download.pytorch.org/whl/cpu"]
