"""Strict validation: task parameters, actions, reset options, seeds and stepping a finished episode are rejected
with one-line messages naming the field, the value and what is allowed."""

import gymnasium as gym
import numpy as np
import pytest

import dm_envs
from dm_envs import DecisionMakingEnv, DecisionMakingVectorEnv, TrialDataset, make_config, sample_trials
from dm_envs.validation import (
    InvalidTypeError,
    InvalidValueError,
    ResetNeededError,
    as_bool,
    as_choice,
    as_float,
    as_float_sequence,
    as_int,
    as_int_sequence,
)


def check_message(err: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(err.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


# (gym.make keyword arguments, error type, fragments of the message: field, what is allowed, the value)
MAKE_CASES = [
    ({"noise_amplitude": "0.3"}, TypeError, ["noise_amplitude must be a finite number >= 0", "got '0.3' (str)"]),
    ({"noise_amplitude": float("inf")}, ValueError, ["noise_amplitude must be a finite number >= 0", "got inf"]),
    ({"noise_amplitude": -0.1}, ValueError, ["noise_amplitude must be a finite number >= 0", "-0.1"]),
    ({"reward_correct": "x"}, TypeError, ["reward_correct must be a finite number", "got 'x' (str)"]),
    ({"reward_abort": None}, TypeError, ["reward_abort must be a finite number", "got None"]),
    ({"reward_fail": True}, TypeError, ["reward_fail must be a finite number", "got True (bool)"]),
    ({"fixation": float("nan")}, ValueError, ["fixation must be a finite number", "got nan (float)"]),
    ({"fixation": "300"}, TypeError, ["fixation must be a number of ms or a tuple", "got '300' (str)"]),
    ({"stimulus": True}, TypeError, ["stimulus must be a number of ms or a tuple", "True (bool)"]),
    ({"delay": ("uniform", "a", 500)}, TypeError, ["delay uniform parameters must be", "'a'"]),
    ({"delay": ("gamma", 1, 2)}, ValueError, ["delay distribution must be one of ('uniform', 'choice', 'truncexp')"]),
    ({"coherences": "abc"}, TypeError, ["coherences must be a list of finite numbers in [0, 1]", "got 'abc' (str)"]),
    ({"coherences": [0.1, float("nan")]}, ValueError, ["coherences must be a list of finite numbers in [0, 1]"]),
    ({"coherences": [0.1, "0.2"]}, TypeError, ["coherences must be", "[0.1, '0.2']"]),
    ({"coherences": []}, ValueError, ["coherences must be a list of finite numbers", "got [] (list)"]),
    ({"coherences": {"a": 1}}, TypeError, ["coherences must be", "(dict)"]),
    ({"abort_ends_trial": "no"}, TypeError, ["abort_ends_trial must be True or False", "got 'no' (str)"]),
    ({"abort_ends_trial": 1}, TypeError, ["abort_ends_trial must be True or False", "got 1 (int)"]),
    ({"n_choices": True}, TypeError, ["n_choices must be an integer >= 2", "got True (bool)"]),
    ({"n_choices": 3.0}, TypeError, ["n_choices must be an integer >= 2", "got 3.0 (float)"]),
    ({"n_choices": 1}, ValueError, ["n_choices must be an integer >= 2", "got 1 (int)"]),
    ({"n_streams": "2"}, TypeError, ["n_streams must be an integer >= 1", "got '2' (str)"]),
    ({"dt": 0}, ValueError, ["dt must be a finite number > 0", "got 0 (int)"]),
    ({"dt": "100"}, TypeError, ["dt must be a finite number > 0", "'100' (str)"]),
    ({"noise": 1}, TypeError, ["noise must be one of ('uniform', 'gaussian', 'none')", "got 1 (int)"]),
    ({"noise": "pink"}, ValueError, ["noise must be one of ('uniform', 'gaussian', 'none')", "got 'pink' (str)"]),
    ({"noise_on": "everywhere"}, ValueError, ["noise_on must be one of ('stimulus', 'all')", "'everywhere'"]),
    ({"fixation_required": None}, TypeError, ["fixation_required must be one of", "got None"]),
    ({"name": 3}, TypeError, ["name must be a string", "got 3 (int)"]),
    ({"coherence": [0.1]}, TypeError, ["unknown task parameter(s) ['coherence']", "allowed: ["]),
    ({"level": True}, TypeError, ["level must be an integer in (1, 2, 3, 4)", "got True (bool)"]),
    ({"level": 5}, ValueError, ["level must be an integer in (1, 2, 3, 4)", "got 5 (int)"]),
    ({"preset": "ibl"}, ValueError, ["preset must be one of ('neurogym',)", "got 'ibl' (str)"]),
    ({"render_mode": "rgb"}, ValueError, ["render_mode must be one of ('ansi', 'rgb_array', 'human')", "'rgb'"]),
    ({"config": "level3"}, TypeError, ["config must be a TaskConfig or a dict of its fields", "'level3' (str)"]),
]


@pytest.mark.filterwarnings("ignore:.*not in the possible render_modes")
@pytest.mark.parametrize("kwargs, error, fragments", MAKE_CASES, ids=[next(iter(c[0])) for c in MAKE_CASES])
def test_gym_make_rejects_bad_task_parameters(kwargs, error, fragments):
    with pytest.raises(error) as err:
        gym.make("DecisionMaking-v0", **kwargs)
    check_message(err, *fragments)
    assert isinstance(err.value, ValueError)  # one `except ValueError` catches every rejected input


@pytest.mark.parametrize("kwargs, error, fragments", MAKE_CASES[:6], ids=[next(iter(c[0])) for c in MAKE_CASES[:6]])
def test_every_front_end_rejects_them_alike(kwargs, error, fragments):
    from dm_envs.sb3 import make_sb3_vec_env

    for build in (
        lambda: gym.make_vec("DecisionMaking-v0", num_envs=2, vectorization_mode="vector_entry_point", **kwargs),
        lambda: make_sb3_vec_env(2, **kwargs),
        lambda: TrialDataset(**kwargs),
        lambda: make_config(**kwargs),
    ):
        with pytest.raises(error) as err:
            build()
        check_message(err, *fragments)


def test_valid_values_are_canonicalised():
    cfg = make_config(1, noise_amplitude=np.float32(0.5), n_choices=np.int64(3), coherences=np.array([0.1, 0.3]),
                      reward_correct=2, abort_ends_trial=np.bool_(True), fixation=np.int64(200))
    assert type(cfg.noise_amplitude) is float and type(cfg.n_choices) is int and cfg.coherences == (0.1, 0.3)
    assert cfg.reward_correct == 2.0 and type(cfg.reward_correct) is float and cfg.abort_ends_trial is True
    assert cfg.fixation == 200.0 and make_config(1, coherences=0.2).coherences == (0.2,)
    assert make_config(3, delay=("choice", [200, 500])) == make_config(3, delay=("choice", 200.0, 500.0))


# actions: (value, error type, fragment)
ACTION_CASES = [
    ("1", TypeError, "got '1' (str)"),
    (1.0, TypeError, "got 1.0 (float)"),
    (np.float32(1), TypeError, "(float32)"),
    (True, TypeError, "got True (bool)"),
    (None, TypeError, "got None"),
    ([1, 2], TypeError, "got [1, 2] (list)"),
    (3, ValueError, "got 3 (int)"),
    (-1, ValueError, "got -1 (int)"),
]


@pytest.mark.parametrize("action, error, fragment", ACTION_CASES, ids=[repr(c[0]) for c in ACTION_CASES])
def test_invalid_actions(action, error, fragment):
    env = gym.make("DecisionMaking-v0")
    env.reset(seed=0)
    with pytest.raises(error) as err:
        env.step(action)
    check_message(err, "action must be an integer in [0, 2] (0 = fixate)", fragment)


@pytest.mark.parametrize("action", [1, np.int64(1), np.int8(1), np.array(1), np.array([1])])
def test_valid_actions(action):
    env = DecisionMakingEnv()
    env.reset(seed=0)
    assert env.step(action)[1] == pytest.approx(-0.1)  # a fixation break, accepted


@pytest.mark.parametrize(
    "actions, error, fragment",
    [
        (np.array([0.0, 1.0]), TypeError, "actions must be integers in [0, 2] (0 = fixate)"),
        (np.array([True, False]), TypeError, "actions must be integers in [0, 2]"),
        (np.array(["1", "0"]), TypeError, "actions must be integers in [0, 2]"),
        (np.array([0, 3]), ValueError, "got array([0, 3]) (ndarray)"),
        (np.zeros(3, dtype=int), ValueError, "expected 2 actions, got shape (3,)"),
    ],
)
def test_invalid_vector_actions(actions, error, fragment):
    from dm_envs.sb3 import make_sb3_vec_env

    venv = DecisionMakingVectorEnv(2)
    venv.reset(seed=0)
    with pytest.raises(error) as err:
        venv.step(actions)
    check_message(err, fragment)
    sb3 = make_sb3_vec_env(2, seed=0)
    sb3.reset()
    with pytest.raises(error):
        sb3.step(actions)


# reset options: (options, error type, fragments) on the level-3 task (two streams, two choices)
OPTION_CASES = [
    ({"foo": 1}, ValueError, ["unknown reset option(s) ['foo']", "allowed: ['coherence', 'context'"]),
    ("context=1", TypeError, ["options must be a dict with keys from", "'context=1' (str)"]),
    ({"context": 2}, ValueError, ["context must be an integer in [0, 1]", "got 2 (int)"]),
    ({"context": "1"}, TypeError, ["context must be an integer in [0, 1]", "got '1' (str)"]),
    ({"context": True}, TypeError, ["context must be an integer in [0, 1]", "got True (bool)"]),
    ({"coherence": [0.2]}, ValueError, ["coherence must be 2 finite numbers in [0, 1]", "got [0.2] (list)"]),
    ({"coherence": [0.2, 1.5]}, ValueError, ["coherence must be 2 finite numbers in [0, 1]"]),
    ({"direction": [0, 2]}, ValueError, ["direction must be 2 integers in [0, 1]", "got [0, 2] (list)"]),
    ({"signed_coherence": "0.2"}, TypeError, ["signed_coherence must be 2 finite numbers in [-1, 1]"]),
    ({"signed_coherence": [0.1, 0.1], "coherence": [0.1, 0.1]}, ValueError, ["not both"]),
    ({"durations": [3, 15, 100, 3]}, ValueError, ["durations must be steps within the task's ranges", "delay 3-29"]),
    ({"durations": [3, 15, 3]}, ValueError, ["durations must be 4 integers >= 0", "got [3, 15, 3] (list)"]),
]


@pytest.mark.parametrize("options, error, fragments", OPTION_CASES, ids=[str(c[0])[:30] for c in OPTION_CASES])
def test_invalid_reset_options(options, error, fragments):
    from dm_envs.sb3 import make_sb3_vec_env

    env = gym.make("DecisionMaking-v0")
    with pytest.raises(error) as err:
        env.reset(seed=0, options=options)
    check_message(err, *fragments)
    with pytest.raises(error):
        DecisionMakingVectorEnv(2).reset(seed=0, options=options)
    if isinstance(options, dict):
        venv = make_sb3_vec_env(2, seed=0)
        venv.set_options(options)
        with pytest.raises(error):
            venv.reset()


def test_signed_coherence_option_needs_two_choices():
    with pytest.raises(ValueError, match="signed_coherence is a reset option of two-choice tasks"):
        DecisionMakingEnv(level=4).reset(options={"signed_coherence": [0.1, 0.2]})


def test_reset_options_set_the_next_trial_and_leave_the_sequence_alone():
    conditions = {"signed_coherence": [0.4, -0.1], "context": 1, "durations": [3, 15, 5, 3]}
    plain, forced = DecisionMakingEnv(level=3), DecisionMakingEnv(level=3)
    plain.reset(seed=8)
    obs, info = forced.reset(seed=8, options=conditions)
    assert info["context"] == 1 and info["correct_choice"] == 1  # stream 2 decides; it favours choice 2
    np.testing.assert_allclose(info["signed_coherence"], [0.4, -0.1])
    results = [forced.step(0) for _ in range(3 + 15 + 5 + 3)]  # fixate throughout: a miss at the last step
    assert [r[2] for r in results] == [False] * 25 + [True] and results[-1][4]["outcome"] == "miss"
    while not plain.step(0)[2]:  # the plain env plays its (different) first trial too
        pass
    # the trials after the forced one are those the env would have run anyway
    for _ in range(3):
        np.testing.assert_array_equal(forced.reset()[0], plain.reset()[0])
        for key, value in forced._trial_info().items():
            np.testing.assert_array_equal(value, plain._trial_info()[key])
    # reproducible from the seed, and the same in the vector env
    again = DecisionMakingEnv(level=3)
    np.testing.assert_array_equal(again.reset(seed=8, options=conditions)[0], forced.reset(seed=8, options=conditions)[0])
    venv = DecisionMakingVectorEnv(3, level=3)
    _, vinfo = venv.reset(seed=8, options=conditions)
    np.testing.assert_array_equal(vinfo["context"], [1, 1, 1])
    np.testing.assert_allclose(vinfo["signed_coherence"], [[0.4, -0.1]] * 3)


def test_stepping_after_the_episode_ended_raises():
    env = gym.make("DecisionMaking-v0", level=1, abort_ends_trial=True)
    env.reset(seed=0)
    assert env.step(1)[2]  # a fixation break ends the trial
    with pytest.raises(ResetNeededError) as err:
        env.step(0)
    check_message(err, "step() called after the episode ended (terminated=True); call reset()")
    assert isinstance(err.value, gym.error.ResetNeeded)
    assert isinstance(err.value, RuntimeError) and isinstance(err.value, ValueError)
    env.reset()
    env.step(0)  # fine again
    with pytest.raises(ResetNeededError, match="before the first reset"):
        DecisionMakingEnv().step(0)
    with pytest.raises(ResetNeededError, match="before the first reset"):
        DecisionMakingVectorEnv(2).step(np.zeros(2, dtype=np.int64))


@pytest.mark.parametrize(
    "call, fragments",
    [
        (lambda: DecisionMakingEnv().reset(seed="1"), ["seed must be an integer >= 0", "'1' (str)"]),
        (lambda: DecisionMakingEnv().reset(seed=1.5), ["seed must be an integer >= 0", "1.5 (float)"]),
        (lambda: DecisionMakingVectorEnv(2).reset(seed=True), ["seed must be an integer >= 0", "True (bool)"]),
        (lambda: DecisionMakingVectorEnv(2).reset(seed=[1]), ["seed must be an integer or 2 seeds"]),
        (lambda: DecisionMakingVectorEnv(2.0), ["num_envs must be an integer >= 1", "2.0 (float)"]),
        (lambda: TrialDataset(batch_size=True), ["batch_size must be an integer >= 1", "True (bool)"]),
        (lambda: TrialDataset(batch_size="8"), ["batch_size must be an integer >= 1", "'8' (str)"]),
        (lambda: TrialDataset(noise="yes"), ["noise must be True or False", "'yes' (str)"]),
        (lambda: sample_trials(make_config(1), 2.5), ["n must be an integer >= 1", "2.5 (float)"]),
    ],
)
def test_other_inputs(call, fragments):
    with pytest.raises(ValueError) as err:
        call()
    check_message(err, *fragments)


def test_validation_functions():
    assert as_int("k", np.int16(3), low=0) == 3 and type(as_int("k", np.int16(3))) is int
    assert as_float("x", np.float32(0.5)) == 0.5 and as_float("x", 2) == 2.0
    assert as_float("x", float("inf"), finite=False) == float("inf")
    assert as_bool("b", np.bool_(False)) is False
    assert as_choice("c", np.str_("a"), ["a", "b"]) == "a"
    assert as_float_sequence("s", (1, np.float64(0.5))) == (1.0, 0.5)
    assert as_int_sequence("s", np.array([1, 2]), length=2) == (1, 2)
    for call, error in [
        (lambda: as_int("k", 2.0), InvalidTypeError),
        (lambda: as_int("k", False), InvalidTypeError),
        (lambda: as_int("k", 5, high=4), InvalidValueError),
        (lambda: as_float("x", "1"), InvalidTypeError),
        (lambda: as_float("x", 0.0, low=0.0, low_open=True), InvalidValueError),
        (lambda: as_bool("b", 0), InvalidTypeError),
        (lambda: as_float_sequence("s", b"ab"), InvalidTypeError),
        (lambda: as_float_sequence("s", np.zeros((2, 2))), InvalidValueError),
        (lambda: as_float_sequence("s", (x for x in [1.0])), InvalidTypeError),
    ]:
        with pytest.raises(error):
            call()
    long = list(range(100))
    with pytest.raises(InvalidTypeError) as err:
        as_float_sequence("s", long + ["x"])
    assert len(str(err.value)) < 200 and "..." in str(err.value)  # long values are shortened
    assert dm_envs.InvalidTypeError is InvalidTypeError and dm_envs.ResetNeededError is ResetNeededError
