"""The trial state machine shared by the single env and the batched vector envs.

Rules of a step (the same for every env of the suite):

* In the decision stage, a choice (action ``a > 0``) ends the trial: ``reward_correct`` if ``a`` is the correct
  action, else ``reward_fail``. Fixating through the last decision step ends the trial with ``reward_miss``.
* Before the decision stage, a choice in a stage where fixation is required (``TaskConfig.fixation_required``) earns
  ``reward_abort``; it ends the trial only if ``abort_ends_trial``.

Each step of a trial gets a code (``FREE``, ``HOLD``, ``DECIDE``, ``DECIDE_LAST``); the outcome of an action is a
lookup in small tables indexed by ``(code * A + ground truth) * A + action`` (``A`` actions). Both the scalar
single env and the vectorised engine read the same tables, so they cannot disagree.

Trials are drawn in blocks of :data:`TRIALS_PER_BLOCK` by :func:`~dm_envs.trials.sample_trials` from each env's
own generator: the ``i``-th trial an env seeded ``s`` runs is the same whether it runs alone or inside a vector env.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Optional, Sequence

import numpy as np
from gymnasium.utils import seeding

from .config import DECISION, DELAY, FIXATION, STAGES, STIMULUS, TaskConfig
from .trials import TrialBatch, sample_trials
from .validation import (
    InvalidTypeError,
    InvalidValueError,
    as_float_sequence,
    as_int,
    as_int_sequence,
    check_keys,
    describe_value,
)

TRIALS_PER_BLOCK = 64
"""Trials drawn per call of the generator by an env (amortises the call over many steps)."""

FREE, HOLD, DECIDE, DECIDE_LAST = range(4)
NONE, ABORT, CORRECT, WRONG, MISS = range(5)
OUTCOMES = ("none", "abort", "correct", "wrong", "miss")


def outcome_tables(cfg: TaskConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reward, trial-end flag and outcome of every ``(code, ground truth, action)``, flattened (see also
    :func:`choice_table`).

    The entry for a step with code ``c`` and ground-truth action ``g`` under action ``a`` sits at
    ``(c * A + g) * A + a`` with ``A = cfg.n_actions`` (see :func:`step_keys`).
    """
    n_act = cfg.n_actions
    size = 4 * n_act * n_act
    reward = np.zeros(size, dtype=np.float32)
    done = np.zeros(size, dtype=bool)
    outcome = np.zeros(size, dtype=np.int8)
    for code in range(4):
        for gt in range(n_act):
            for a in range(n_act):
                i = (code * n_act + gt) * n_act + a
                if code == HOLD and a != 0:
                    reward[i], done[i], outcome[i] = cfg.reward_abort, cfg.abort_ends_trial, ABORT
                elif code in (DECIDE, DECIDE_LAST) and a != 0:
                    reward[i] = cfg.reward_correct if a == gt else cfg.reward_fail
                    done[i], outcome[i] = True, CORRECT if a == gt else WRONG
                elif code == DECIDE_LAST:
                    reward[i], done[i], outcome[i] = cfg.reward_miss, True, MISS
    return reward, done, outcome


def choice_table(cfg: TaskConfig) -> np.ndarray:
    """The choice (0-based) a trial ends with for each :func:`outcome_tables` entry; -1 where none is made."""
    _, _, outcome = outcome_tables(cfg)
    action = np.arange(outcome.size) % cfg.n_actions
    return np.where((outcome == CORRECT) | (outcome == WRONG), action - 1, -1)


def step_keys(trials: TrialBatch) -> np.ndarray:
    """``(N, T)`` int64 offset of every step into the :func:`outcome_tables` (add the action to index them)."""
    n_act = trials.config.n_actions
    return (step_codes(trials).astype(np.int64) * n_act + trials.gt) * n_act


def step_codes(trials: TrialBatch) -> np.ndarray:
    """``(N, T)`` int8 code of every step (padding gets ``FREE``; it is never visited)."""
    cfg = trials.config
    hold_stages = (FIXATION, STIMULUS, DELAY) if cfg.fixation_required == "until_decision" else (FIXATION,)
    t = np.arange(trials.n_steps)
    last = t[None, :] == (trials.length[:, None] - 1)
    by_stage = np.full(5, FREE, dtype=np.int8)  # indexed by stage id, the padding (-1) last
    by_stage[list(hold_stages)] = HOLD
    by_stage[DECISION] = DECIDE
    codes = by_stage[trials.stage]
    codes[(trials.stage == DECISION) & last] = DECIDE_LAST
    return codes


TRIAL_CONDITIONS: tuple[str, ...] = ("coherence", "direction", "signed_coherence", "context", "durations")
"""The ``reset(options=...)`` keys of every env: conditions that the next trial is drawn with."""


def trial_conditions(config: TaskConfig, options: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """Check ``reset(options=...)`` and return them as :func:`~dm_envs.trials.sample_trials` overrides for one trial.

    Keys (all optional; :data:`TRIAL_CONDITIONS`): ``coherence`` (``n_streams`` numbers in [0, 1]), ``direction``
    (``n_streams`` integers in ``[0, n_choices - 1]``), ``signed_coherence`` (two-choice tasks: ``n_streams``
    numbers in [-1, 1]; not with ``coherence``/``direction``), ``context`` (an integer in ``[0, n_streams - 1]``),
    ``durations`` (steps of the four stages, each within the range the task allows).
    """
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise InvalidTypeError(f"options must be a dict with keys from {list(TRIAL_CONDITIONS)}, got {describe_value(options)}")
    check_keys("reset option(s)", options, TRIAL_CONDITIONS)
    s, k = config.n_streams, config.n_choices
    out: dict[str, Any] = {}
    if "signed_coherence" in options:
        if k != 2:
            raise InvalidValueError(f"signed_coherence is a reset option of two-choice tasks; this task has {k} choices: use coherence and direction")
        if "coherence" in options or "direction" in options:
            raise InvalidValueError("give signed_coherence or coherence/direction as reset options, not both")
        out["signed_coherence"] = as_float_sequence("signed_coherence", options["signed_coherence"], low=-1.0, high=1.0, length=s)
    if "coherence" in options:
        out["coherence"] = as_float_sequence("coherence", options["coherence"], low=0.0, high=1.0, length=s)
    if "direction" in options:
        out["direction"] = as_int_sequence("direction", options["direction"], low=0, high=k - 1, length=s)
    if "context" in options:
        out["context"] = as_int("context", options["context"], low=0, high=s - 1)
    if "durations" in options:
        ranges = [config.stage_step_range(name) for name in STAGES]
        durations = as_int_sequence("durations", options["durations"], low=0, length=len(STAGES))
        if any(not lo <= d <= hi for d, (lo, hi) in zip(durations, ranges)):
            allowed = ", ".join(f"{name} {lo}-{hi}" for name, (lo, hi) in zip(STAGES, ranges))
            raise InvalidValueError(f"durations must be steps within the task's ranges ({allowed}), got {describe_value(options['durations'])}")
        out["durations"] = durations
    return out


def rng_from_seed(seed: int | None) -> np.random.Generator:
    """The generator Gymnasium's ``reset(seed=...)`` creates, so vector and single envs draw identically."""
    return seeding.np_random(seed)[0]


def _generator_at(state: Mapping[str, Any]) -> np.random.Generator:
    """A numpy generator whose bit generator is in ``state`` (a ``bit_generator.state`` dict)."""
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


class StepResult(NamedTuple):
    """What :meth:`TrialEngine.step` returns.

    ``reward`` and ``done`` always; the trial fields are ``None`` unless a trial ended (``any_done``), and then are
    ``(N, ...)`` arrays meaningful where ``done``: they describe the trial that just ended, read before the env moved
    on (its tape may since have been overwritten by a new block).
    """

    reward: np.ndarray  # (N,) float32
    done: np.ndarray  # (N,) bool: the env's trial ended at this step (the env is already on its next trial)
    any_done: bool
    outcome: Optional[np.ndarray] = None  # (N,) int8 index into OUTCOMES
    choice: Optional[np.ndarray] = None  # (N,) the choice (0-based) the trial ended with, -1 for none
    final_obs: Optional[np.ndarray] = None  # (N, obs_dim) the observation that followed the trial's last step
    end_step: Optional[np.ndarray] = None  # (N,) index within the trial of its last step
    correct_choice: Optional[np.ndarray] = None  # (N,) 0-based
    context: Optional[np.ndarray] = None  # (N,)
    coherence: Optional[np.ndarray] = None  # (N, n_streams)
    direction: Optional[np.ndarray] = None  # (N, n_streams)
    signed_coherence: Optional[np.ndarray] = None  # (N, n_streams), two-choice tasks (zeros otherwise)


class TrialEngine:
    """``num_envs`` independent trial streams stepped together in numpy.

    Each env owns a region of a flat "tape" holding ``TRIALS_PER_BLOCK`` trials, each in ``max_trial_steps`` slots
    (trial ``r`` starts at slot ``r * max_trial_steps``), drawn in one call of the generator from the env's own
    ``numpy`` generator. An env's state is one position on the tape. A step is a
    few vectorised lookups: the outcome table entry of (step, action), then ``pos + 1``, or the start of the next
    trial where the trial ended. When an env runs past its block, a new block is drawn.

    Per-trial metadata (``length``, ``coherence``, ``direction``, ``context``, ``correct_choice``) has one row per
    tape trial; the trial at tape position ``pos`` is row ``pos // max_trial_steps``.
    """

    def __init__(self, config: TaskConfig, num_envs: int) -> None:
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.config = config
        self.num_envs = n = int(num_envs)
        self.k = TRIALS_PER_BLOCK
        self.t_max = config.max_trial_steps  # tape slots per trial
        self.region = self.k * self.t_max  # tape slots reserved per env
        self.rngs: list[np.random.Generator] = [rng_from_seed(None) for _ in range(n)]
        self.reward_table, self.done_table, self.outcome_table = outcome_tables(config)
        self.choice_table = choice_table(config)
        slots = n * self.region
        self.obs = np.zeros((slots, config.obs_dim), dtype=np.float32)
        self.gt = np.zeros(slots, dtype=np.int64)
        self.stage = np.full(slots, -1, dtype=np.int8)
        self.key = np.zeros(slots, dtype=np.int64)  # outcome-table offset of the step (add the action)
        self.final_pos = np.zeros(slots, dtype=np.int64)  # the observation after each step, clipped to its trial
        rows = n * self.k
        self.start = np.zeros(rows, dtype=np.int64)  # tape position of each trial's first step
        self.last = np.zeros(rows, dtype=np.int64)  # tape position of each trial's last step
        self.next_start = np.zeros(rows, dtype=np.int64)  # the following trial's start (-1: the block's last)
        self.length = np.zeros(rows, dtype=np.int64)
        self.coherence = np.zeros((rows, config.n_streams))
        self.direction = np.zeros((rows, config.n_streams), dtype=np.int64)
        self.context = np.zeros(rows, dtype=np.int64)
        self.correct_choice = np.zeros(rows, dtype=np.int64)
        # the integer metadata as one matrix, gathered in one go at trial ends:
        # [correct_choice, context, direction (n_streams)]
        self.meta = np.zeros((rows, 2 + config.n_streams), dtype=np.int64)
        # and the float metadata: [coherence (n_streams), signed coherence (n_streams; zeros beyond two choices)]
        self.fmeta = np.zeros((rows, 2 * config.n_streams))
        self.pos = np.zeros(n, dtype=np.int64)
        self.blocks_drawn = np.zeros(n, dtype=np.int64)  # how many blocks each env has drawn (identifies a block)
        # what each env's current block was drawn from (see get_state): the generator state before the draw, and
        # the trials force_trial() put into it since, as (row, conditions, generator state)
        self.block_rng: list[Optional[dict[str, Any]]] = [None] * n
        self.forced: list[list[tuple[int, dict[str, Any], dict[str, Any]]]] = [[] for _ in range(n)]

    # ------------------------------------------------------------------ blocks
    def _fill_block(self, env: int) -> None:
        """Draw a new block of trials for ``env`` and put the env at its first step."""
        k = self.k
        self.block_rng[env] = self.rngs[env].bit_generator.state
        self.forced[env] = []
        self._write_trials(env * k, sample_trials(self.config, k, self.rngs[env]))
        rows = slice(env * k, (env + 1) * k)
        self.next_start[rows] = np.append(self.start[rows][1:], -1)
        self.pos[env] = env * self.region
        self.blocks_drawn[env] += 1

    def _write_trials(self, first_row: int, b: TrialBatch) -> None:
        """Put the trials of ``b`` on the tape rows ``first_row, first_row + 1, ...`` (their steps and metadata)."""
        k, t_max, T = len(b), self.t_max, b.n_steps
        span = slice(first_row * t_max, (first_row + k) * t_max)

        def put(tape: np.ndarray, values: np.ndarray) -> None:
            # trial j occupies tape slots [j * t_max, j * t_max + length_j) of the span
            tape[span].reshape(k, t_max, *tape.shape[1:])[:, :T] = values

        put(self.obs, b.obs)
        put(self.gt, b.gt)
        put(self.stage, b.stage)
        put(self.key, step_keys(b))
        rows = slice(first_row, first_row + k)
        start = span.start + np.arange(k) * t_max
        last = start + b.length - 1
        put(self.final_pos, np.minimum(start[:, None] + np.arange(1, T + 1), last[:, None]))
        self.start[rows] = start
        self.last[rows] = last
        self.length[rows] = b.length
        self.coherence[rows] = b.coherence
        self.direction[rows] = b.direction
        self.context[rows] = b.context
        self.correct_choice[rows] = b.correct_choice
        self.meta[rows] = np.column_stack([b.correct_choice, b.context, b.direction])
        signed = b.signed_coherence if self.config.n_choices == 2 else np.zeros_like(b.coherence)
        self.fmeta[rows] = np.column_stack([b.coherence, signed])

    def force_trial(self, env: int, conditions: dict[str, Any]) -> None:
        """Replace ``env``'s running trial, which must be at its first step, by one drawn with the given
        :func:`~dm_envs.trials.sample_trials` overrides (``coherence``, ``direction``, ``signed_coherence``,
        ``context``, ``durations``; checked by :func:`trial_conditions`).

        The trial is drawn from a generator spawned from the env's own, so it is reproducible from the env's seed
        and the trials after it are those the env would have run anyway.
        """
        if int(self.pos[env]) % self.t_max != 0:
            raise RuntimeError("force_trial() needs the env at the first step of a trial")
        rng = self.rngs[env].spawn(1)[0]
        row = int(self.pos[env]) // self.t_max
        self.forced[env].append((row, dict(conditions), rng.bit_generator.state))
        self._write_trials(row, sample_trials(self.config, 1, rng, **conditions))

    def seed(self, seeds: Sequence[int | None]) -> None:
        """Give env ``i`` a fresh generator seeded ``seeds[i]`` (``None``: from OS entropy)."""
        if len(seeds) != self.num_envs:
            raise ValueError(f"expected {self.num_envs} seeds, got {len(seeds)}")
        self.rngs = [rng_from_seed(None if s is None else int(s)) for s in seeds]

    def reset(self, envs: Sequence[int] | None = None) -> None:
        """Draw a fresh block on the given envs (all by default) and start its first trial."""
        for e in range(self.num_envs) if envs is None else envs:
            self._fill_block(int(e))

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, Any]:
        """Where every env is, as plain Python data (small: the tape itself is not copied).

        For each env: the generator state its current block was drawn from, the trials :meth:`force_trial` put into
        the block, the position within the block and the generator's state now. :meth:`set_state` redraws those
        blocks, so an engine given this state runs exactly the steps and trials this one runs from here.

        Raises:
            RuntimeError: an env has not drawn a block yet (call :meth:`reset` first).
        """
        if any(b is None for b in self.block_rng):
            raise RuntimeError("get_state() needs every env to have drawn its trials; reset() first")
        return {
            "num_envs": self.num_envs,
            "max_trial_steps": self.t_max,
            "block_rng": list(self.block_rng),
            "forced": [list(f) for f in self.forced],
            "offset": (self.pos - np.arange(self.num_envs) * self.region).tolist(),
            "blocks_drawn": self.blocks_drawn.tolist(),
            "rng": [g.bit_generator.state for g in self.rngs],
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`get_state` of an engine with the same task and number of envs.

        Raises:
            ValueError: the state is of another shape of engine, or redrawing its blocks does not reproduce the
                generators' states (it was not taken with the same task).
        """
        if int(state["num_envs"]) != self.num_envs or int(state["max_trial_steps"]) != self.t_max:
            raise ValueError(f"the state is of an engine of {state['num_envs']} envs and trials of up to "
                             f"{state['max_trial_steps']} steps, this one has {self.num_envs} and {self.t_max}")
        for env in range(self.num_envs):
            self.rngs[env] = _generator_at(state["block_rng"][env])
            self._fill_block(env)
            for row, conditions, rng_state in state["forced"][env]:
                self.forced[env].append((int(row), dict(conditions), rng_state))
                self._write_trials(int(row), sample_trials(self.config, 1, _generator_at(rng_state), **conditions))
            if self.rngs[env].bit_generator.state != state["rng"][env]:
                raise ValueError(f"redrawing env {env}'s trials did not reproduce its generator state: the state "
                                 "was taken with another task")
        self.pos = np.arange(self.num_envs, dtype=np.int64) * self.region + np.asarray(state["offset"], np.int64)
        self.blocks_drawn = np.asarray(state["blocks_drawn"], dtype=np.int64)

    # ------------------------------------------------------------------ stepping
    def step(self, actions: np.ndarray) -> StepResult:
        """Advance every env by one step (``actions``: valid int64 actions, ``(N,)``)."""
        pos = self.pos
        idx = self.key[pos]
        idx += actions
        reward = self.reward_table[idx]
        done = self.done_table[idx]
        if not np.count_nonzero(done):
            self.pos = pos + 1
            return StepResult(reward, done, False)
        row = pos // self.t_max
        meta = self.meta[row]  # one gather for the trial's integer metadata, one for its floats
        fmeta = self.fmeta[row]
        n_streams = self.config.n_streams
        ended = StepResult(
            reward,
            done,
            True,
            outcome=self.outcome_table[idx],
            choice=self.choice_table[idx],
            final_obs=self.obs[self.final_pos[pos]],
            end_step=pos - self.start[row],
            correct_choice=meta[:, 0],
            context=meta[:, 1],
            coherence=fmeta[:, :n_streams],
            direction=meta[:, 2:],
            signed_coherence=fmeta[:, n_streams:],
        )
        self.pos = nxt = np.where(done, self.next_start[row], pos + 1)
        if np.count_nonzero(nxt < 0):  # some env finished its block: draw the next one
            for e in np.flatnonzero(nxt < 0):
                self._fill_block(int(e))
        return ended

    def end_trial(self, env: int) -> None:
        """Abandon ``env``'s running trial and move it to its next trial."""
        nxt = int(self.next_start[self.pos[env] // self.t_max])
        if nxt < 0:
            self._fill_block(env)
        else:
            self.pos[env] = nxt

    # ------------------------------------------------------------------ views
    def current_obs(self) -> np.ndarray:
        """``(N, obs_dim)`` observation each env shows now (a copy)."""
        return self.obs[self.pos]

    def current_gt(self) -> np.ndarray:
        """``(N,)`` ground-truth action for the observation each env shows now (what an oracle would answer)."""
        return self.gt[self.pos]

    def current_stage(self) -> np.ndarray:
        """``(N,)`` stage id of the step each env is at."""
        return self.stage[self.pos]

    def current_rows(self) -> np.ndarray:
        """``(N,)`` metadata row of each env's running trial."""
        return self.pos // self.t_max

    def step_in_trial(self) -> np.ndarray:
        """``(N,)`` index of the current step within each env's running trial."""
        return self.pos % self.t_max


