"""Reference observers: how well can a task be solved by integrating evidence, and how well at all?

* :func:`integrator_accuracy` - the **integrating observer** sums each channel of the relevant stream over the stimulus
  stage and picks the largest sum (for two choices: the sign of the summed difference). This is the mechanism the
  study is about, so the 95 % training criterion must be reachable by it.
* :func:`bayes_accuracy` - the **Bayes-optimal observer** for the noise model: the exact likelihood of the relevant
  stream's samples under every (direction, coherence) hypothesis, marginalised over coherence with the task's prior.
  With bounded (uniform) noise a single sample outside the range one hypothesis allows rules it out, so this observer
  can beat the integrator by far: a network trained on such a task can win by exploiting the noise bounds rather
  than by integrating.

Both are Monte Carlo estimates on trials from :func:`~dm_envs.sample_trials`; ties are split evenly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from .config import STIMULUS, TaskConfig
from .trials import TrialBatch, sample_trials, stimulus_means


@dataclass
class ObserverResult:
    """Accuracy of an observer: overall, per relevant coherence, and the number of trials used."""

    accuracy: float
    by_coherence: dict[float, float]
    n_trials: int

    def stderr(self) -> float:
        """Binomial standard error of ``accuracy``."""
        p = self.accuracy
        return float(np.sqrt(p * (1 - p) / self.n_trials))


def _relevant_stimulus(trials: TrialBatch) -> tuple[np.ndarray, np.ndarray]:
    """The relevant stream's channels ``(N, T, K)`` and the stimulus-step mask ``(N, T)``."""
    cfg = trials.config
    k = cfg.n_choices
    start = 1 + trials.context * k
    chans = start[:, None] + np.arange(k)[None, :]
    x = np.take_along_axis(trials.obs, chans[:, None, :].repeat(trials.n_steps, axis=1), axis=2)
    return x.astype(np.float64), trials.stage == STIMULUS


def _credit(scores: np.ndarray, correct: np.ndarray, tol: float = 0.0) -> np.ndarray:
    """Expected correctness of picking the argmax of ``scores`` ``(N, K)`` with ties broken at random."""
    best = scores.max(axis=1, keepdims=True)
    winners = scores >= best - tol
    return winners[np.arange(len(scores)), correct] / winners.sum(axis=1)


def _result(credit: np.ndarray, trials: TrialBatch) -> ObserverResult:
    coh = trials.relevant_coherence
    by = {float(c): float(credit[coh == c].mean()) for c in np.unique(coh)}
    return ObserverResult(float(credit.mean()), by, len(credit))


def integrator_accuracy(config: TaskConfig, n_trials: int = 20000, seed: int = 0) -> ObserverResult:
    """Accuracy of the integrating observer (argmax of the relevant stream's channel sums over the stimulus).

    Example:
        >>> from dm_envs import make_config
        >>> integrator_accuracy(make_config(1), n_trials=2000).accuracy > 0.95
        True
    """
    trials = sample_trials(config, n_trials, np.random.default_rng(seed))
    x, stim = _relevant_stimulus(trials)
    evidence = (x * stim[:, :, None]).sum(axis=1)
    return _result(_credit(evidence, trials.correct_choice), trials)


def bayes_accuracy(config: TaskConfig, n_trials: int = 20000, seed: int = 0) -> ObserverResult:
    """Accuracy of the Bayes-optimal observer of the relevant stream under the task's noise model.

    The hypotheses are every (direction, coherence) pair with the task's uniform prior; the decision is the direction
    with the largest posterior mass. Noise models: uniform (the likelihood is flat inside the allowed box and zero
    outside), Gaussian (exact Gaussian likelihood from sufficient statistics), none (exact match).
    """
    cfg = config
    trials = sample_trials(cfg, n_trials, np.random.default_rng(seed))
    x, stim = _relevant_stimulus(trials)
    k = cfg.n_choices
    cohs = np.asarray(cfg.coherences)
    d_grid, c_grid = np.meshgrid(np.arange(k), cohs, indexing="ij")  # (K, C)
    mu = stimulus_means(cfg.replace(n_streams=1), c_grid[..., None], d_grid[..., None])  # (K, C, K channels)
    n_stim = stim.sum(axis=1)  # (N,)
    alpha = cfg.noise_amplitude
    if cfg.noise == "gaussian" and alpha > 0:
        s1 = (x * stim[:, :, None]).sum(axis=1)  # (N, K)
        s2 = (x**2 * stim[:, :, None]).sum(axis=1)
        # sum_t (x - mu)^2 = s2 - 2 mu s1 + n mu^2, per channel, summed over channels
        sq = s2[:, None, None, :] - 2 * mu[None] * s1[:, None, None, :] + n_stim[:, None, None, None] * mu[None] ** 2
        loglik = -sq.sum(axis=-1) / (2 * alpha**2)  # (N, K, C)
    else:
        big = np.where(stim[:, :, None], x, -np.inf).max(axis=1)  # (N, K) largest sample per channel
        small = np.where(stim[:, :, None], x, np.inf).min(axis=1)
        half = alpha if cfg.noise == "uniform" else 0.0
        tol = 1e-5  # observations are float32
        ok = (big[:, None, None, :] <= mu[None] + half + tol) & (small[:, None, None, :] >= mu[None] - half - tol)
        loglik = np.where(ok.all(axis=-1), 0.0, -np.inf)
    with np.errstate(divide="ignore"):
        posterior = logsumexp(loglik, axis=2)  # (N, K): mass per direction (uniform prior over coherence)
    posterior = np.where(np.isfinite(posterior), posterior, -1e300)
    return _result(_credit(posterior, trials.correct_choice, tol=1e-9), trials)
