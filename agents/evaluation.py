"""The one evaluator RL and SL share, and the stopping rule.

**Evaluation.** A policy is scored on fresh trials, closed loop, by the environment's own rules: the recurrent core
runs over whole trials from ``h0 = 0`` in one batched pass, the policy acts **greedily** (argmax of the action
logits, SB3's ``deterministic=True``), and :func:`dm_envs.score_actions` applies the env's step rules to those actions.
Observations never depend on actions, so this is exactly what stepping the env would give (and thousands of trials
cost a fraction of a second). Accuracy is the fraction of trials that end with the correct choice (misses and
aborts that end a trial count as errors).

**Trials.** :class:`Evaluator` draws evaluation ``k`` of a run from its own generator,
``numpy.random.default_rng([seed, EVAL_STREAM, k])``: a stream separate from the training trials (the training envs
use integer seeds ``seed + i``, the supervised dataset ``seed``), fresh at every evaluation, and reproducible: the
RL and the SL run with the same seed are evaluated on the same trials, and a resumed run carries on the sequence.

**Stopping rule** (:class:`StoppingRule`). A single evaluation is noisy (on 500 trials, one standard error at 92%
is 1.2 points: a draft task read 95.0% once while the ten evaluations before averaged 91.8%). Training stops when
the **Wilson lower confidence bound** of accuracy (one-sided, ``z = 1.645``: 95% confidence) clears the target on
each of the last ``consecutive`` evaluations (default 1), each on ``n_trials`` fresh trials (default 2000). With 2000
trials the bound clears 0.95 only when the measured accuracy is >= 0.9585 (500 trials: >= 0.968); an evaluation of
a policy whose true accuracy is 0.945 passes with probability 0.4%, one at 0.94 0.02%, one at 0.92 never in practice
(binomial tail). The price is that a run stops somewhat above the target (measured 0.958-0.98 in the tuning runs),
the same for both learning rules.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Iterable, Mapping, Sequence, Union

import numpy as np
import torch as th

from dm_envs import TaskConfig, TrialBatch, sample_trials, score_actions
from dm_envs.config import DECISION

from .io import actor_forward

EVAL_STREAM = 0x5EED_E7A1
"""Key that separates the evaluation trial stream of a seed from its training streams."""


def wilson_interval(successes: float, n: int, z: float = 1.645) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion.

    Args:
        successes: Number of successes (may be fractional, e.g. ``accuracy * n``).
        n: Number of trials.
        z: Normal quantile (1.645: one-sided 95%; 1.96: two-sided 95%).

    Returns:
        ``(lower, upper)``; ``(0, 1)`` when ``n == 0``.
    """
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Evaluation:
    """Closed-loop scores of a policy on a set of trials (greedy actions).

    Attributes:
        n_trials: Number of trials.
        accuracy: Fraction of trials ending with the correct choice.
        lower: Wilson lower bound of ``accuracy`` (at the evaluator's ``z``).
        upper: Wilson upper bound.
        by_coherence: Accuracy per unsigned coherence of the deciding stream.
        rates: Fraction of trials of each outcome (``correct``, ``wrong``, ``miss``, ``abort``).
        reward: Mean total reward per trial.
        choice_accuracy: Accuracy among the trials that ended with a choice.
        fixation_break_rate: Fraction of trials in which the policy chose before the decision stage at least once
            (a fixation break: it costs reward, and ends the trial only if the task says so).
        go_choice_prob: Mean probability that the (stochastic) policy chooses at the first decision step. Near 0
            together with a miss rate near 1 means a collapsed policy (see :meth:`collapsed`).
        finite: False if the policy produced non-finite logits (a diverged network).
    """

    n_trials: int
    accuracy: float
    lower: float
    upper: float
    by_coherence: dict[float, float] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)
    reward: float = 0.0
    choice_accuracy: float = float("nan")
    fixation_break_rate: float = 0.0
    go_choice_prob: float = float("nan")
    finite: bool = True

    def collapsed(self, max_choice_prob: float = 0.01) -> bool:
        """Whether the policy has collapsed onto never choosing: the greedy policy misses (almost) every trial and the
        stochastic one chooses at the go cue with probability below ``max_choice_prob``, so its softmax is saturated
        and policy gradients can no longer bring the choice back (a runaway of the hidden state does this)."""
        return self.rates.get("miss", 0.0) >= 0.99 and self.go_choice_prob < max_choice_prob

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (coherence keys become strings)."""
        d = asdict(self)
        d["by_coherence"] = {f"{c:g}": a for c, a in self.by_coherence.items()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Evaluation":
        """The evaluation of a :meth:`to_dict` (e.g. a record of a run's accuracy curve; other keys are ignored and
        JSON's ``null`` becomes NaN)."""
        nan = lambda v: float("nan") if v is None else v  # noqa: E731
        kwargs = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        kwargs["by_coherence"] = {float(c): nan(a) for c, a in dict(d.get("by_coherence") or {}).items()}
        kwargs["rates"] = {k: nan(v) for k, v in dict(d.get("rates") or {}).items()}
        for key in ("accuracy", "lower", "upper", "reward", "choice_accuracy", "fixation_break_rate", "go_choice_prob"):
            if key in kwargs:
                kwargs[key] = nan(kwargs[key])
        return cls(**kwargs)


@th.no_grad()
def greedy_actions(policy: Any, trials: TrialBatch, chunk: int = 1024) -> tuple[np.ndarray, bool]:
    """Greedy (argmax) actions of a policy over whole trials, from ``h0 = 0``: what SB3's
    ``predict(..., deterministic=True)`` would do stepping each trial with ``episode_start`` resets.

    Only the actions leave the function (no hidden-state copies), and trials are processed in chunks that stay in
    cache, so thousands of trials take a fraction of a second.

    Args:
        policy: An :class:`~agents.RNNPolicy` (or a model holding one).
        trials: The trials.
        chunk: Trials per batched pass.

    Returns:
        ``(actions (N, T) int64, finite)``; ``finite`` is False if any logit was NaN or infinite.
    """
    actions, finite, _ = _greedy_pass(policy, trials, chunk)
    return actions, finite


@th.no_grad()
def _greedy_pass(policy: Any, trials: TrialBatch, chunk: int = 1024) -> tuple[np.ndarray, bool, np.ndarray]:
    """Greedy actions, the finiteness flag, and each trial's probability of a choice at its first decision step."""
    policy = getattr(policy, "policy", policy)
    obs = th.as_tensor(trials.obs.transpose(1, 0, 2), device=policy.device)  # (T, N, D)
    T, N = obs.shape[:2]
    go = th.as_tensor(trials.onset[:, DECISION], device=policy.device)
    out = np.empty((N, T), dtype=np.int64)
    p_choose = np.empty(N)
    finite = True
    for start in range(0, N, chunk):
        _, logits = actor_forward(policy, obs[:, start : start + chunk])
        n = logits.shape[1]
        finite = finite and bool(th.isfinite(logits).all())
        out[start : start + n] = logits.argmax(dim=-1).T.cpu().numpy()
        at_go = logits[go[start : start + n], th.arange(n, device=policy.device)]  # (n, A)
        p_choose[start : start + n] = (1.0 - th.softmax(at_go.double(), dim=-1)[:, 0]).cpu().numpy()
    return out, finite, p_choose


def evaluate_policy(policy: Any, trials: TrialBatch, z: float = 1.645) -> Evaluation:
    """Score a policy (greedy actions) on the given trials with the environment's rules.

    Args:
        policy: An :class:`~agents.RNNPolicy` (or a model holding one).
        trials: The trials to play.
        z: Normal quantile of the Wilson bounds.

    Returns:
        The :class:`Evaluation`.
    """
    actions, finite, p_choose = _greedy_pass(policy, trials)
    scores = score_actions(trials, actions)
    steps = np.arange(trials.n_steps)[None, :]
    before_go = (trials.stage >= 0) & (trials.stage < DECISION) & (steps <= scores.end_step[:, None])
    breaks = (before_go & (actions != 0)).any(axis=1)
    n = len(trials)
    acc = scores.accuracy
    lo, hi = wilson_interval(acc * n, n, z)
    return Evaluation(
        n_trials=n,
        accuracy=acc,
        lower=lo,
        upper=hi,
        by_coherence=scores.accuracy_by_coherence(),
        rates=scores.rates(),
        reward=float(scores.reward.mean()),
        choice_accuracy=scores.choice_accuracy,
        fixation_break_rate=float(breaks.mean()),
        go_choice_prob=float(np.nanmean(p_choose)) if finite else float("nan"),
        finite=finite,
    )


class Evaluator:
    """Evaluates a policy on fresh trials of a task at every call, from a seeded stream of its own.

    Evaluation ``k`` (0-based) plays ``n_trials`` trials drawn by ``default_rng([seed, EVAL_STREAM, k])``.

    Args:
        config: The task.
        n_trials: Trials per evaluation.
        seed: Seed of the evaluation stream (the run's seed).
        z: Normal quantile of the Wilson bounds reported (the stopping rule uses its own ``z``).
        start_index: Index of the next evaluation (a resumed run passes the number of evaluations done).

    Example:
        >>> ev = Evaluator(make_config(3), n_trials=2000, seed=0)   # doctest: +SKIP
        >>> ev(model.policy).accuracy                                 # doctest: +SKIP
        0.957
    """

    def __init__(
        self, config: TaskConfig, n_trials: int = 2000, seed: int = 0, z: float = 1.645, start_index: int = 0
    ) -> None:
        if int(n_trials) < 1:
            raise ValueError(f"n_trials must be >= 1, got {n_trials}")
        self.config = config
        self.n_trials = int(n_trials)
        self.seed = int(seed)
        self.z = float(z)
        self.index = int(start_index)

    def trials(self, index: int) -> TrialBatch:
        """The trials of evaluation ``index`` (deterministic)."""
        rng = np.random.default_rng([self.seed, EVAL_STREAM, int(index)])
        return sample_trials(self.config, self.n_trials, rng)

    def __call__(self, policy: Any) -> Evaluation:
        """Evaluate ``policy`` on the next fresh set of trials."""
        result = evaluate_policy(policy, self.trials(self.index), z=self.z)
        self.index += 1
        return result


AccuracyRecord = Union[Evaluation, Mapping[str, Any], tuple[float, int]]


@dataclass(frozen=True)
class StoppingRule:
    """Stop when the Wilson lower bound of accuracy clears the target on the last ``consecutive`` evaluations.

    The rule is a pure function of the evaluation history (so a resumed run applies it exactly as an uninterrupted
    one), and RL and SL share it.

    Args:
        target: Target accuracy (the paper's 0.95).
        z: Normal quantile of the lower bound (1.645: one-sided 95% confidence that accuracy >= target).
        consecutive: Number of consecutive evaluations that must clear the target.
        train_past: Keep training after the criterion is first met until the trials seen reach ``train_past`` times
            the trials to criterion (1: stop at the criterion; 3: train three times as long). The criterion itself
            (``reached``) is unchanged, so steps to criterion mean the same thing for every run.

    Example:
        >>> rule = StoppingRule(0.95)
        >>> rule.should_stop([(0.950, 500)]), rule.should_stop([(0.962, 2000)])
        (False, True)
    """

    target: float = 0.95
    z: float = 1.645
    consecutive: int = 1
    train_past: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.target <= 1.0:
            raise ValueError(f"target must lie in (0, 1], got {self.target}")
        if not self.z >= 0:
            raise ValueError(f"z must be >= 0, got {self.z}")
        if int(self.consecutive) < 1:
            raise ValueError(f"consecutive must be >= 1, got {self.consecutive}")
        if not (isinstance(self.train_past, (int, float)) and 1.0 <= self.train_past < float("inf")):
            raise ValueError(f"train_past must be a finite number >= 1, got {self.train_past!r}")

    def lower_bound(self, accuracy: float, n_trials: int) -> float:
        """The Wilson lower bound this rule compares with the target."""
        return wilson_interval(accuracy * n_trials, n_trials, self.z)[0]

    def passes(self, record: AccuracyRecord) -> bool:
        """Whether one evaluation clears the target."""
        acc, n = _accuracy_and_n(record)
        return self.lower_bound(acc, n) >= self.target

    def reached(self, history: Sequence[AccuracyRecord]) -> bool:
        """Whether the criterion holds after the evaluations in ``history`` (oldest first)."""
        k = int(self.consecutive)
        if len(history) < k:
            return False
        return all(self.passes(r) for r in history[-k:])

    def should_stop(self, history: Sequence[AccuracyRecord]) -> bool:
        """Whether training should stop after the evaluations in ``history`` (oldest first).

        With ``train_past == 1`` this is :meth:`reached`; otherwise the history must hold trial counts (mappings
        with ``"trials"``), and training stops once the trials reach ``train_past`` times those at the first
        evaluation where the criterion held.
        """
        if self.train_past == 1.0:
            return self.reached(history)
        for i in range(len(history)):
            if self.reached(history[: i + 1]):
                return int(history[-1]["trials"]) >= self.train_past * int(history[i]["trials"])
        return False

    def describe(self) -> str:
        """One line describing the rule (for logs and metadata)."""
        times = "" if self.consecutive == 1 else f" on {self.consecutive} consecutive evaluations"
        past = "" if self.train_past == 1.0 else f"; then train on to {self.train_past:g}x the trials to criterion"
        return f"Wilson lower bound (z={self.z:g}) of accuracy >= {self.target:g}{times}{past}"

    def to_dict(self) -> dict[str, Any]:
        """The rule's parameters and description."""
        out = {"target": self.target, "z": self.z, "consecutive": self.consecutive, "rule": self.describe()}
        if self.train_past != 1.0:  # only when used, so the metadata of ordinary runs stays as it was
            out["train_past"] = self.train_past
        return out


def _accuracy_and_n(record: AccuracyRecord) -> tuple[float, int]:
    if isinstance(record, Evaluation):
        return record.accuracy, record.n_trials
    if isinstance(record, Mapping):
        return float(record["accuracy"]), int(record["n_trials"])
    acc, n = record
    return float(acc), int(n)


def first_crossings(history: Iterable[AccuracyRecord], levels: Sequence[float]) -> dict[float, int]:
    """Index of the first evaluation whose (point) accuracy reaches each level (levels never reached are absent)."""
    out: dict[float, int] = {}
    for i, record in enumerate(history):
        acc, _ = _accuracy_and_n(record)
        for level in levels:
            if level not in out and acc >= level:
                out[level] = i
    return out


__all__ = [
    "EVAL_STREAM",
    "Evaluation",
    "Evaluator",
    "StoppingRule",
    "evaluate_policy",
    "first_crossings",
    "greedy_actions",
    "wilson_interval",
]
