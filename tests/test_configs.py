"""The trainers' settings as data (agents.config): defaults, validation, the keyword form, the CLI and spec keys."""

from __future__ import annotations

import dataclasses

import pytest

from agents.config import PPOConfig, RunConfig, SLConfig, config_fields, make_configs
from agents.defaults import PPO_DEFAULTS, RL_SCHEDULE, RUN_DEFAULTS, SL_DEFAULTS, SL_SCHEDULE


def test_defaults_come_from_agents_defaults():
    assert PPOConfig().to_dict() == PPO_DEFAULTS
    assert SLConfig().to_dict() == SL_DEFAULTS
    run = RunConfig()
    assert {k: getattr(run, k) for k in RUN_DEFAULTS if k != "level"} == {
        k: v for k, v in RUN_DEFAULTS.items() if k != "level"}
    assert run.task_config().name == RunConfig(level=RUN_DEFAULTS["level"]).task_config().name
    assert run.max_steps is None and run.for_rule("rl").schedule() == {**RL_SCHEDULE, "max_time": None,
                                                                       "eval_trials": 2000}
    assert run.for_rule("sl").max_steps == SL_SCHEDULE["max_steps"]
    assert RunConfig(max_steps=10).for_rule("sl").max_steps == 10
    assert "n_envs" not in PPOConfig().sb3_kwargs()


@pytest.mark.parametrize("cls, field, value, message", [
    (RunConfig, "seed", -1, "seed must be an integer >= 0, got -1 (int)"),
    (RunConfig, "seed", "1", "seed must be an integer >= 0, got '1' (str)"),
    (RunConfig, "delta", 0, "delta must be a finite number > 0, got 0 (int)"),
    (RunConfig, "critic", "mlp", "critic must be one of ('shared', 'rnn', 'linear'), got 'mlp' (str)"),
    (RunConfig, "max_steps", 2.0, "max_steps must be an integer >= 1, got 2.0 (float)"),
    (RunConfig, "target_accuracy", 1.5, "target_accuracy must be a finite number in (0, 1], got 1.5 (float)"),
    (RunConfig, "progress", 1, "progress must be True or False, got 1 (int)"),
    (RunConfig, "level", 7, "level must be an integer in (1, 2, 3, 4), got 7 (int)"),
    (RunConfig, "task_overrides", {"bogus": 1}, "unknown task parameter(s) ['bogus']"),
    (PPOConfig, "n_envs", 0, "n_envs must be an integer >= 1, got 0 (int)"),
    (PPOConfig, "gamma", 1.5, "gamma must be a finite number in [0, 1], got 1.5 (float)"),
    (PPOConfig, "target_kl", -0.1, "target_kl must be a finite number > 0, got -0.1 (float)"),
    (SLConfig, "fixate_weight", float("nan"), "fixate_weight must be a finite number >= 0, got nan (float)"),
])
def test_configs_reject_bad_values_naming_field_value_and_what_is_allowed(cls, field, value, message):
    with pytest.raises(ValueError) as err:
        cls(**{field: value})
    assert message in str(err.value)


def test_configs_are_frozen_and_canonical():
    run = RunConfig(seed=1, delta=1, task_overrides={"noise_amplitude": 0.3})
    assert run.delta == 1.0 and isinstance(run.delta, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.seed = 2  # type: ignore[misc]
    assert PPOConfig(target_kl=None).target_kl is None
    assert run.replace(seed=3).seed == 3 and run.seed == 1
    with pytest.raises(ValueError, match="seed must be"):
        run.replace(seed=-3)


def test_the_keyword_form_builds_the_same_configs():
    by_keywords = make_configs("rl", 3, seed=1, hidden_size=24, n_envs=8, out_dir="x", progress=False)
    by_configs = make_configs("rl", RunConfig(level=3, seed=1, hidden_size=24, out_dir="x", progress=False),
                              PPOConfig(n_envs=8))
    assert by_keywords == by_configs
    run, ppo = make_configs("rl", by_configs[0], by_configs[1], seed=2, n_steps=16)  # keywords replace fields
    assert (run.seed, run.hidden_size, ppo.n_envs, ppo.n_steps) == (2, 24, 8, 16)
    run, sl = make_configs("sl", level=1, batch_size=16)
    assert isinstance(sl, SLConfig) and sl.batch_size == 16 and run.eval_every == SL_SCHEDULE["eval_every"]
    with pytest.raises(TypeError, match=r"train_sl\(\) got an unexpected keyword argument 'n_envs'"):
        make_configs("sl", caller="train_sl", n_envs=8)
    with pytest.raises(TypeError, match="multiple values for argument 'level'"):
        make_configs("rl", 3, level=2)
    with pytest.raises(TypeError, match="must be a PPOConfig"):
        make_configs("rl", None, SLConfig())


def test_trainer_settings_are_the_config_fields():
    run = [f.name for f in dataclasses.fields(RunConfig)]
    assert config_fields("rl") == tuple(run + list(PPO_DEFAULTS))
    assert config_fields("sl") == tuple(run + list(SL_DEFAULTS))


def test_the_cli_builds_the_configs():
    from analysis.cli import build_parser

    from agents.cli import train_configs

    args = build_parser().parse_args(["train", "rl", "-c", "1", "--seed", "2", "--n-envs", "8", "--lr", "1e-3",
                                      "--max-time", "60", "--out", "runs/x", "--no-progress"])
    run, ppo = train_configs(args)
    assert run == RunConfig(level=1, seed=2, max_time=60.0, out_dir="runs/x", progress=False).for_rule("rl")
    assert ppo == PPOConfig(n_envs=8, learning_rate=1e-3)
    args = build_parser().parse_args(["train", "sl", "-o", "noise_amplitude=0.3", "--batch-size", "16"])
    run, sl = train_configs(args)
    assert run.task_overrides == {"noise_amplitude": 0.3} and sl == SLConfig(batch_size=16)


def test_spec_tables_accept_the_config_fields_the_experiment_does_not_set():
    from analysis.experiments.spec import SET_BY_EXPERIMENT, _trainer_keys

    for rule in ("rl", "sl"):
        assert set(_trainer_keys(rule)) == set(config_fields(rule)) - set(SET_BY_EXPERIMENT)
    assert {"n_envs", "target_kl", "max_time", "overwrite", "device"} <= set(_trainer_keys("rl"))
    assert "n_envs" not in _trainer_keys("sl") and "fixate_weight" in _trainer_keys("sl")
