"""TaskConfig, presets and input validation."""

import json

import numpy as np
import pytest

from dm_envs import LEVELS, PRESETS, STAGES, TaskConfig, make_config


def test_presets_are_valid_and_graded():
    levels = [make_config(k) for k in LEVELS]
    assert [c.n_streams for c in levels] == [1, 1, 2, 2]
    assert levels[0].stage_step_range("delay") == (0, 0)
    assert levels[1].stage_step_range("delay")[1] > 0
    assert levels[3].n_choices == 3
    assert min(levels[3].coherences) < min(levels[2].coherences)
    assert levels[3].noise_amplitude > levels[2].noise_amplitude
    assert make_config() == PRESETS[3]  # the paper's task is the default
    for cfg in levels:
        assert cfg.stage_step_range("stimulus")[0] >= 10  # long constant stimulus for the dynamical analysis


def test_overrides_and_names():
    cfg = make_config(1, coherences=[0.05, 0.5], noise="gaussian", dt=20)
    assert cfg.coherences == (0.05, 0.5)
    assert cfg.noise == "gaussian"
    assert cfg.stage_step_range("stimulus") == (75, 75)  # 1500 ms at 20 ms
    assert cfg.observation_names == ("fixation", "stream1_choice1", "stream1_choice2")
    assert make_config(3).observation_names[-2:] == ("context1", "context2")
    assert make_config(4).obs_dim == 1 + 2 * 3 + 2


def test_json_round_trip():
    for key in list(LEVELS) + ["neurogym"]:
        cfg = make_config(key) if isinstance(key, int) else make_config(preset=key)
        again = TaskConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
        assert again == cfg
        assert again.max_trial_steps == cfg.max_trial_steps


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"coherence": [0.1]}, "unknown task parameter"),
        ({"stimulus": 0}, "stimulus duration"),
        ({"fixation": -100}, "fixation duration"),
        ({"decision": 50}, "decision duration"),  # shorter than one step
        ({"delay": -1}, "delay duration"),
        ({"coherences": [0.2, 1.5]}, r"coherences must be a list of finite numbers in \[0, 1\], got \[0.2, 1.5\]"),
        ({"coherences": [-0.1]}, r"coherences must be a list of finite numbers in \[0, 1\]"),
        ({"noise": "pink"}, "noise must be one of"),
        ({"noise_amplitude": -0.1}, "noise_amplitude"),
        ({"n_choices": 1}, "n_choices"),
        ({"n_streams": 0}, "n_streams"),
        ({"dt": 0}, "dt must be"),
        ({"delay": ("uniform", 500, 100)}, "lo <= hi"),
        ({"delay": ("poisson", 3)}, r"delay distribution must be one of \('uniform', 'choice', 'truncexp'\), got 'poisson'"),
        ({"fixation_input": "always"}, "fixation_input"),
    ],
)
def test_bad_parameters_raise_clear_errors(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make_config(3, **kwargs)


@pytest.mark.parametrize("level", [0, 5, -1, 2.5, "3", True])
def test_complexity_out_of_range(level):
    with pytest.raises(ValueError, match=r"level must be an integer in \(1, 2, 3, 4\)"):
        make_config(level)


def test_unknown_preset_and_conflicting_arguments():
    with pytest.raises(ValueError, match=r"preset must be one of \('neurogym',\), got 'ibl'"):
        make_config(preset="ibl")
    with pytest.raises(ValueError, match="at most one"):
        make_config(2, preset="neurogym")


def test_duration_forms():
    cfg = make_config(3, delay=("choice", [200, 500]), fixation=("truncexp", 300, 200, 800))
    assert cfg.stage_step_range("delay") == (2, 5)
    assert cfg.stage_step_range("fixation") == (2, 7)  # truncated exponential on [200, 800): below 8 steps
    assert cfg.max_trial_steps == 7 + 15 + 5 + 3
    assert set(STAGES) == {"fixation", "stimulus", "delay", "decision"}
    assert np.isclose(make_config(preset="neurogym").noise_amplitude, 0.1)


def test_complexity_is_still_accepted_as_the_former_name_of_level():
    """The task level was called ``complexity`` before; every way in still takes it, with the same meaning."""
    import gymnasium as gym

    from agents.config import make_configs

    assert make_config(complexity=2) == make_config(2) == make_config(level=2)
    with pytest.raises(ValueError, match="former name"):
        make_config(2, complexity=3)
    env = gym.make("DecisionMaking-v0", complexity=1)
    assert env.unwrapped.config == make_config(1)
    run, _ = make_configs("sl", complexity=4, seed=3)
    assert run.level == 4 and run.task_config() == make_config(4)


def test_the_cli_takes_complexity_as_an_alias_of_level():
    from analysis.cli import build_parser

    parser = build_parser()
    for flag in ("--level", "--complexity", "-c"):
        assert parser.parse_args(["train", "sl", flag, "2"]).level == 2
        assert parser.parse_args(["analyze", "dynamics", "m.zip", "--out", "o", flag, "4"]).level == 4
