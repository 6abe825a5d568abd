"""Rendering: rgb_array pictures of the trial so far, human mode without a display, every vectorisation mode,
SB3's make_vec_env and VecEnv images, RecordVideo, PNG pictures and ``dmd demo --save-pictures``."""

import time
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import dm_envs
from dm_envs import DecisionMakingEnv, make_config, sample_trials
from dm_envs.render import CHOICE_COLORS, TrialRenderer, TrialView, save_png, tile_frames


def play_trial(env, policy):
    """Step one trial with ``policy(step_index, gt_now) -> action``; return the frames after reset and every step."""
    engine = env.unwrapped._engine
    frames = [env.render()]
    t, terminated = 0, False
    while not terminated:
        _, _, terminated, _, info = env.step(policy(t, int(engine.current_gt()[0])))
        frames.append(env.render())
        t += 1
    return frames, info


def colors_in(region: np.ndarray) -> set:
    return {tuple(c) for c in region.reshape(-1, 3)}


@pytest.mark.parametrize("level", [1, 3, 4])
def test_rgb_array_is_a_picture_of_the_trial_so_far(level):
    env = gym.make("DecisionMaking-v0", level=level, render_mode="rgb_array")
    env.reset(seed=level)
    renderer = env.unwrapped._frames.renderer
    frames, info = play_trial(env, lambda t, gt: gt)
    shapes = {f.shape for f in frames}
    assert shapes == {renderer.shape} and frames[0].dtype == np.uint8
    assert renderer.shape[0] % 16 == 0 and renderer.shape[1] % 16 == 0  # video encoders want even sizes
    # the drawn part grows by one step per frame: count the plot columns that are not white on the FIX row
    row = int(renderer.channel_top[0]) + 1
    x0, sw = renderer.x0, renderer.step_width
    drawn = [int((f[row, x0 : x0 + renderer.plot_width] != 255).any(axis=1).sum()) for f in frames]
    assert drawn == [min(k + 1, len(frames) - 1) * sw for k in range(len(frames))]
    # every input channel's trace is drawn in its colour
    last = frames[-1]
    for c, color in enumerate(renderer.colors):
        band = last[int(renderer.channel_top[c]) : int(renderer.channel_top[c]) + renderer.row_height, x0:]
        assert tuple(color) in colors_in(band), f"channel {c} not drawn"
    # stage shading: stimulus (yellow) and decision (green) backgrounds are present
    assert (255, 242, 200) in colors_in(last) and (218, 243, 218) in colors_in(last)
    # the correct choice's swatch and the chosen action, and a green border for a correct trial
    choice_color = tuple(CHOICE_COLORS[info["correct_choice"]])
    gt_swatch = last[renderer.gt_top : renderer.gt_top + renderer.cell, renderer.swatch_x : renderer.swatch_x + 4]
    assert colors_in(gt_swatch) == {choice_color}
    act_last = last[renderer.act_top + 2, x0 + (len(frames) - 2) * sw]
    assert tuple(act_last) == choice_color
    assert info["outcome"] == "correct" and tuple(last[0, 0]) == (44, 160, 44)
    # frames of a running trial have no outcome border
    assert tuple(frames[1][0, 0]) == (255, 255, 255)


def test_wrong_and_fixation_break_are_drawn():
    env = DecisionMakingEnv(level=1, render_mode="rgb_array")
    env.reset(seed=0)
    r = env._frames.renderer
    frames, info = play_trial(env, lambda t, gt: 3 - gt if gt else (1 if t == 4 else 0))
    last = frames[-1]
    assert info["outcome"] == "wrong" and tuple(last[0, 0]) == (214, 39, 40)
    # step 4 broke fixation with action 1: a cell of choice 1's colour in the action row, grey cells elsewhere
    assert tuple(last[r.act_top + 2, r.x0 + 4 * r.step_width]) == tuple(CHOICE_COLORS[0])
    assert tuple(last[r.act_top + 2, r.x0 + 3 * r.step_width]) == (200, 200, 200)
    # the frame stays on the finished trial until reset, then starts the next one
    np.testing.assert_array_equal(env.render(), last)
    env.reset()
    assert tuple(env.render()[0, 0]) == (255, 255, 255)


def test_drawing_is_fast_and_needs_no_matplotlib():
    cfg = make_config(4)
    tr = sample_trials(cfg, 1, rng=0)
    n = int(tr.length[0])
    view = TrialView(tr.obs[0, :n], tr.stage[0, :n], tr.gt[0, :n], tr.gt[0, : n - 1], int(tr.correct_choice[0]))
    renderer = TrialRenderer(cfg)
    t0 = time.perf_counter()
    for _ in range(50):
        frame = renderer.draw(view)
    assert (time.perf_counter() - t0) / 50 < 0.02  # well under a millisecond on a quiet machine
    assert len(colors_in(frame)) > 10
    import subprocess
    import sys

    code = (
        "import sys, gymnasium as gym, dm_envs\n"
        "env = gym.make('DecisionMaking-v0', render_mode='rgb_array'); env.reset(seed=0); env.step(0)\n"
        "assert env.render().shape[2] == 3\n"
        "assert 'matplotlib' not in sys.modules, 'rgb_array imported matplotlib'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_human_mode_without_display_warns_once_and_runs(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    env = gym.make("DecisionMaking-v0", level=1, render_mode="human")
    with pytest.warns(UserWarning, match="no window is shown"):
        env.reset(seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once only
        for _ in range(5):
            env.step(0)
        assert env.render() is None
    env.close()


def test_ansi_and_no_render_mode():
    env = DecisionMakingEnv(level=3, render_mode="ansi")
    assert env.render() == "no trial yet: call reset()"
    env.reset(seed=0)
    env.step(0)
    assert env.render().startswith("t=1 stage=fixation")
    assert DecisionMakingEnv().render() is None


@pytest.mark.parametrize("mode", ["vector_entry_point", "sync", "async"])
def test_make_vec_accepts_render_mode_in_every_vectorization_mode(mode):
    kwargs = {} if mode == "vector_entry_point" else {"vector_kwargs": {"autoreset_mode": AutoresetMode.SAME_STEP}}
    envs = gym.make_vec("DecisionMaking-v0", num_envs=3, vectorization_mode=mode, render_mode="rgb_array",
                        level=1, **kwargs)
    ref = dm_envs.DecisionMakingVectorEnv(3, level=1, render_mode="rgb_array")
    envs.reset(seed=5)
    ref.reset(seed=5)
    rng = np.random.default_rng(0)
    for _ in range(30):
        a = np.where(rng.random(3) < 0.9, 0, rng.integers(0, 3, 3))
        envs.step(a)
        ref.step(a)
    frames, expected = envs.render(), ref.render()
    assert isinstance(frames, tuple) and len(frames) == 3
    for f, g in zip(frames, expected):  # the same picture whichever way the envs are vectorised
        np.testing.assert_array_equal(f, g)
    envs.close()


def test_sb3_make_vec_env_without_env_kwargs_and_sb3_vec_env_images():
    from stable_baselines3.common.env_util import make_vec_env

    from dm_envs.sb3 import make_sb3_vec_env

    venv = make_vec_env("DecisionMaking-v0", n_envs=4)  # SB3 passes render_mode="rgb_array"
    assert venv.render_mode == "rgb_array" and venv.reset().shape == (4, 7)
    images = venv.get_images()
    ours = make_sb3_vec_env(4, level=3, seed=0, render_mode="rgb_array")
    ours.reset()
    mine = ours.get_images()
    assert len(images) == len(mine) == 4 and images[0].shape == mine[0].shape
    tiled = ours.render()
    assert tiled.shape == (2 * mine[0].shape[0], 2 * mine[0].shape[1], 3)
    np.testing.assert_array_equal(tiled, tile_frames(mine))
    with pytest.warns(UserWarning, match="render_mode"):
        assert make_sb3_vec_env(2, seed=0).render() is None


def test_record_video_writes_a_readable_video(tmp_path, video_frames):
    from gymnasium.wrappers import RecordVideo

    folder = tmp_path / "videos"
    env = RecordVideo(gym.make("DecisionMaking-v0", level=1, render_mode="rgb_array"), str(folder),
                      episode_trigger=lambda episode: episode == 0, disable_logger=True)
    env.reset(seed=0)
    terminated, steps = False, 0
    while not terminated:
        _, _, terminated, _, _ = env.step(int(env.unwrapped._engine.current_gt()[0]))
        steps += 1
    env.close()
    frames, fps = video_frames(folder)  # asserts there is exactly one video
    assert fps == pytest.approx(10.0)  # one frame per step of dt = 100 ms: real time
    assert len(frames) == steps + 1
    first, last = frames[0].astype(int), frames[-1].astype(int)
    assert last.std() > 20 and np.abs(last - first).mean() > 1  # not blank, and the trial moved on
    # the last frame shows the correct trial's green border (up to compression)
    assert np.abs(last[1, 1] - np.array([44, 160, 44])).max() < 40


def test_save_png_round_trip(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    frame = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    path = save_png(tmp_path / "sub" / "f.png", frame)
    np.testing.assert_array_equal(np.asarray(Image.open(path).convert("RGB")), frame)


def test_dmd_demo_saves_pictures(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    from analysis.cli import main

    assert main(["demo", "--trials", "100", "--tasks", "1", "neurogym", "--save-pictures", str(tmp_path)]) == 0
    pictures = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pictures == ["trial_level1.png", "trial_neurogym.png"]
    image = np.asarray(Image.open(tmp_path / "trial_level1.png").convert("RGB"))
    assert {(30, 30, 30), tuple(CHOICE_COLORS[0]), tuple(CHOICE_COLORS[1]), (44, 160, 44)} <= colors_in(image)


def test_readme_picture_is_committed_and_small():
    path = Path(__file__).resolve().parents[1] / "docs" / "img" / "trial_render.png"
    assert path.exists() and path.stat().st_size < 200_000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
