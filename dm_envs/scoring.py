"""Scoring behaviour: the outcome of a trial given the agent's actions, and a closed-loop runner.

Observations never depend on the agent's actions (only the moment a trial ends does), so a policy's actions over
whole padded trials determine every outcome: :func:`score_actions` applies the env's step rules to ``(N, T)``
actions, vectorised over trials, and gives exactly what stepping the env would. This is the evaluator RL and SL
share. :func:`run_closed_loop` steps the batched engine with any policy callable (used for the oracle and random
reference policies, and to check :func:`score_actions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ._engine import CORRECT, MISS, NONE, OUTCOMES, WRONG, TrialEngine, outcome_tables, step_keys
from .config import TaskConfig
from .info import end_info
from .trials import TrialBatch
from .vector import seeds_for


@dataclass
class TrialScores:
    """Outcome of each trial.

    Attributes:
        outcome: ``(N,)`` int8 index into ``dm_envs.OUTCOMES`` (``"correct"``, ``"wrong"``, ``"miss"``, ``"abort"``).
        choice: ``(N,)`` chosen alternative (0-based), -1 if none.
        end_step: ``(N,)`` step at which the trial ended.
        reward: ``(N,)`` total reward of the trial.
        relevant_coherence: ``(N,)`` unsigned coherence of the deciding stream (for per-coherence accuracy).
    """

    outcome: np.ndarray
    choice: np.ndarray
    end_step: np.ndarray
    reward: np.ndarray
    relevant_coherence: np.ndarray

    @property
    def correct(self) -> np.ndarray:
        """``(N,)`` bool: the trial ended with the correct choice."""
        return self.outcome == CORRECT

    @property
    def accuracy(self) -> float:
        """Fraction of trials that ended with the correct choice (misses and aborts count as errors)."""
        return float(self.correct.mean())

    @property
    def choice_accuracy(self) -> float:
        """Fraction correct among the trials that ended with a choice."""
        chose = (self.outcome == CORRECT) | (self.outcome == WRONG)
        return float(self.correct[chose].mean()) if chose.any() else float("nan")

    def info(self) -> dict[str, np.ndarray]:
        """The trial-end keys of the env info schema (:data:`dm_envs.info.END_KEYS`), one row per trial: what an
        env's info says on the step that ends each trial."""
        return end_info(self.outcome, self.choice)

    def rates(self) -> dict[str, float]:
        """Fraction of trials of each outcome."""
        return {name: float((self.outcome == i).mean()) for i, name in enumerate(OUTCOMES) if i != NONE}

    def accuracy_by_coherence(self) -> dict[float, float]:
        """Accuracy per relevant (unsigned) coherence."""
        out = {}
        for c in np.unique(self.relevant_coherence):
            sel = self.relevant_coherence == c
            out[float(c)] = float(self.correct[sel].mean())
        return out


def score_actions(trials: TrialBatch, actions: np.ndarray) -> TrialScores:
    """Outcome of every trial if the agent took ``actions`` ``(N, T)`` (entries after the trial's end are ignored).

    Applies the environment's rules exactly: the trial ends at its first terminating event (a choice in the decision
    stage, the last decision step without a choice, or a fixation break when ``abort_ends_trial``).
    """
    actions = np.asarray(actions)
    if actions.shape != trials.gt.shape:
        raise ValueError(f"actions must have shape {trials.gt.shape} (trials x steps), got {actions.shape}")
    valid = trials.mask
    n_act = trials.config.n_actions
    if actions.dtype.kind not in "iu" or (valid & ((actions < 0) | (actions >= n_act))).any():
        raise ValueError(f"actions must be integers in [0, {n_act - 1}] (0 = fixate)")
    reward_t, done_t, outcome_t = outcome_tables(trials.config)
    idx = step_keys(trials) + np.where(valid, actions, 0)
    done = done_t[idx] & valid
    # Every trial ends by its last decision step at the latest, so each row has a terminating step.
    end = np.argmax(done, axis=1)
    rows = np.arange(len(trials))
    before_end = np.arange(trials.n_steps)[None, :] <= end[:, None]
    reward = (reward_t[idx] * (before_end & valid)).sum(axis=1)
    outcome = outcome_t[idx[rows, end]]
    chose = (outcome == CORRECT) | (outcome == WRONG)
    choice = np.where(chose, actions[rows, end] - 1, -1)
    return TrialScores(
        outcome=outcome,
        choice=choice,
        end_step=end,
        reward=reward,
        relevant_coherence=trials.relevant_coherence,
    )


Policy = Callable[[np.ndarray, np.ndarray, TrialEngine], np.ndarray]
"""``policy(obs (N, D), trial_start (N,) bool, engine) -> actions (N,)``."""


def oracle_policy(obs: np.ndarray, trial_start: np.ndarray, engine: TrialEngine) -> np.ndarray:
    """Answers the ground truth at every step (fixates, then chooses correctly at the first decision step)."""
    return engine.current_gt()


def random_policy(seed: Optional[int] = None) -> Policy:
    """A policy that picks a uniformly random action at every step."""
    rng = np.random.default_rng(seed)

    def policy(obs: np.ndarray, trial_start: np.ndarray, engine: TrialEngine) -> np.ndarray:
        return rng.integers(0, engine.config.n_actions, size=len(obs))

    return policy


def run_closed_loop(
    config: TaskConfig,
    policy: Policy,
    n_trials: int = 1000,
    *,
    num_envs: int = 64,
    seed: Optional[int] = 0,
) -> TrialScores:
    """Run ``policy`` on the batched env until ``n_trials`` trials have ended (the first ``n_trials`` to end).

    Returns:
        The :class:`TrialScores` of the finished trials, in the order they ended.
    """
    engine = TrialEngine(config, num_envs)
    engine.seed(seeds_for(seed, num_envs))
    engine.reset()
    outcome, choice, end, coh = [], [], [], []
    ret = np.zeros(num_envs)
    rewards: list[np.ndarray] = []
    start = np.ones(num_envs, dtype=bool)
    n_done = 0
    while n_done < n_trials:
        obs = engine.current_obs()
        actions = np.asarray(policy(obs, start, engine), dtype=np.int64)
        r = engine.step(actions)
        ret += r.reward
        if r.any_done:
            d = r.done
            outcome.append(r.outcome[d])
            choice.append(r.choice[d])
            end.append(r.end_step[d])
            coh.append(r.coherence[d, r.context[d]])
            rewards.append(ret[d])
            ret[d] = 0.0
            n_done += int(d.sum())
        start = r.done
    cat = lambda xs: np.concatenate(xs)[:n_trials]  # noqa: E731
    return TrialScores(cat(outcome), cat(choice), cat(end), cat(rewards), cat(coh))


__all__ = ["TrialScores", "score_actions", "run_closed_loop", "oracle_policy", "random_policy", "MISS"]
