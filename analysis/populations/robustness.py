"""Robustness of a trained network: input noise, hidden-state kicks, and silencing units.

Everything runs the network (:class:`analysis.network.Network`) over whole trials of :mod:`dm_envs` with its numpy
forward pass (:meth:`~analysis.network.Network.forward`, which can silence units and kick states), and scores greedy
actions with :func:`dm_envs.score_actions`, the evaluator RL and SL share.

Tests (``shared/reference/paper.md`` 5.7, defaults of this project):

* :func:`noise_robustness`: accuracy at ``x0.5 .. x4`` the training noise amplitude (same seed, so the trials and the
  noise draws are the same, only scaled);
* :func:`kick_robustness`: a kick of norm ``size * ||h_t||`` in a random direction to the state in the middle of the
  delay; the fraction of decisions that survive (same choice as without the kick);
* :func:`ablation_curve`: accuracy with ``k`` units silenced (clamped to 0 at every step), chosen at random among all
  units or among one population (targeted), ``k = 1 .. 50``.

Example:
    >>> from dm_envs import make_config, sample_trials
    >>> from analysis.network import Network
    >>> net = Network.random(64, obs_dim=7, n_actions=3, seed=0)
    >>> ablated = ablation_curve(net, sample_trials(make_config(3), 50, 0), ks=(5,), n_repeats=2)
    >>> ablated.ks.tolist()
    [5]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from analysis.network import Network

__all__ = [
    "AblationCurve",
    "KickCurve",
    "NoiseCurve",
    "ablation_curve",
    "ablation_masks",
    "evaluate",
    "kick_robustness",
    "noise_robustness",
]

DEFAULT_KS: tuple[int, ...] = (1, 2, 3, 5, 7, 10, 15, 20, 30, 40, 50)
"""Default numbers of silenced units (log-spaced over 1..50; pass ``range(1, 51)`` for every k)."""


def _binomial_se(p: np.ndarray, n: Optional[int]) -> np.ndarray:
    p = np.asarray(p, np.float64)
    if not n:
        return np.full(p.shape, np.nan)
    return np.sqrt(np.clip(p * (1 - p), 0.0, None) / n)


# ---------------------------------------------------------------------------------------------------- scoring
def _model(network: Any) -> Any:
    """The map to run: a :class:`~analysis.dynamics.generic.TorchDynamics` (any other recurrent policy, whose units
    are its ``h``) as it is, else :meth:`Network.load`."""
    if hasattr(network, "unit_states") and hasattr(network, "step_fn"):
        return network
    return Network.load(network)


def evaluate(network: Any, trials: Any, **forward_kwargs: Any) -> Any:
    """Score the greedy policy of ``network`` on ``trials`` (:func:`dm_envs.score_actions`).

    Args:
        network: A :class:`~analysis.network.Network` (or anything :meth:`Network.load` reads).
        trials: The trials.
        **forward_kwargs: Passed to :meth:`Network.forward` (``unit_mask``, ``dtype``, ...).

    Example:
        >>> from dm_envs import make_config, sample_trials
        >>> net = Network.random(32, 7, 3, seed=1)
        >>> 0.0 <= evaluate(net, sample_trials(make_config(3), 20, 0)).accuracy <= 1.0
        True
    """
    from dm_envs import score_actions

    run = _model(network).forward(trials.obs, return_hidden=False, **forward_kwargs)
    return score_actions(trials, run.actions)


# ---------------------------------------------------------------------------------------------------- noise
@dataclass
class NoiseCurve:
    """Accuracy against the test-time input-noise amplitude.

    Attributes:
        scales: Multipliers of the training amplitude.
        amplitude: The amplitudes tested (``scale * training amplitude``).
        accuracy: Accuracy at each scale.
        by_coherence: Per scale, ``{coherence: accuracy}``.
        rates: Per scale, the outcome rates (correct/wrong/miss/abort).
        n_trials: Trials per scale (``None`` if unknown).
    """

    scales: np.ndarray
    amplitude: np.ndarray
    accuracy: np.ndarray
    by_coherence: list[dict[float, float]]
    rates: list[dict[str, float]]
    n_trials: Optional[int] = None

    def standard_error(self) -> np.ndarray:
        """Binomial standard error of each accuracy, ``sqrt(p (1 - p) / n)`` (NaN without ``n_trials``)."""
        return _binomial_se(self.accuracy, self.n_trials)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scales": self.scales.tolist(),
            "amplitude": self.amplitude.tolist(),
            "accuracy": self.accuracy.tolist(),
            "n_trials": self.n_trials,
            "by_coherence": [{f"{k:g}": v for k, v in d.items()} for d in self.by_coherence],
            "rates": self.rates,
        }


def noise_robustness(
    network: Any,
    config: Any,
    *,
    scales: Sequence[float] = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0),
    n_trials: int = 1000,
    seed: int = 0,
    progress: bool = False,
    dtype: Any = np.float64,
) -> NoiseCurve:
    """Accuracy when the input noise is scaled at test time.

    The same seed draws the same trials and noise for every scale (``dm_envs.sample_trials`` draws the noise before
    scaling it), so the curve differs only by the amplitude.

    Args:
        network: The network (:class:`~analysis.network.Network` or anything :meth:`Network.load` reads).
        config: The training :class:`dm_envs.TaskConfig` (its ``noise_amplitude`` is the x1 reference).
        scales: Multipliers of the amplitude.
        n_trials: Trials per scale.
        seed: Trial seed.
        progress: Progress bar.
        dtype: Forward dtype.

    Example:
        >>> from dm_envs import make_config
        >>> nc = noise_robustness(Network.random(16, 7, 3), make_config(3), scales=(1, 2), n_trials=20)
        >>> nc.amplitude.tolist()
        [0.25, 0.5]
    """
    from tqdm.auto import tqdm

    from dm_envs import sample_trials

    if config.noise == "none" or config.noise_amplitude == 0:
        raise ValueError("the task has no input noise to scale (noise='none' or noise_amplitude=0)")
    sc = np.asarray(scales, np.float64)
    acc, by_coh, rates = [], [], []
    for s in tqdm(sc, desc="noise", disable=not progress):
        trials = sample_trials(config.replace(noise_amplitude=float(config.noise_amplitude * s)), n_trials, seed)
        scores = evaluate(network, trials, dtype=dtype)
        acc.append(scores.accuracy)
        by_coh.append(scores.accuracy_by_coherence())
        rates.append(scores.rates())
    return NoiseCurve(sc, sc * config.noise_amplitude, np.asarray(acc), by_coh, rates, int(n_trials))


# ---------------------------------------------------------------------------------------------------- kicks
@dataclass
class KickCurve:
    """Decision survival under kicks to the hidden state.

    Attributes:
        sizes: Kick sizes (relative to the state norm if ``relative``).
        survival: Fraction of eligible trials whose choice is unchanged by the kick (over repeats).
        accuracy: Accuracy over eligible trials under the kick.
        n_eligible: Trials with a choice (without kick) and a kick step inside the stage.
        relative: Whether sizes are relative to ``||h_t||``.
        stage: The stage kicked.
        n_repeats: Kicks per eligible trial.
    """

    sizes: np.ndarray
    survival: np.ndarray
    accuracy: np.ndarray
    n_eligible: int
    relative: bool
    stage: str
    n_repeats: int = 1

    def standard_error(self) -> np.ndarray:
        """Binomial standard error of each survival fraction over the ``n_eligible * n_repeats`` kicks."""
        return _binomial_se(self.survival, self.n_eligible * self.n_repeats)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sizes": self.sizes.tolist(),
            "survival": self.survival.tolist(),
            "accuracy": self.accuracy.tolist(),
            "n_eligible": self.n_eligible,
            "relative": self.relative,
            "stage": self.stage,
            "n_repeats": self.n_repeats,
        }


def kick_robustness(
    network: Any,
    trials: Any,
    sizes: Sequence[float] = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0),
    *,
    stage: str = "delay",
    position: float = 0.5,
    relative: bool = True,
    n_repeats: int = 1,
    seed: int = 0,
    progress: bool = False,
    dtype: Any = np.float64,
) -> KickCurve:
    """Probability that a decision survives a random kick of growing size to the hidden state.

    Each eligible trial is kicked once, at step ``onset + floor(position * duration)`` of ``stage``, by
    ``size * u`` (times ``||h_t||`` if ``relative``) with ``u`` a random unit vector; the directions are drawn once
    and reused for every size (common random numbers), so survival changes only with the size.

    Args:
        network: The network (:class:`~analysis.network.Network` or anything :meth:`Network.load` reads).
        trials: The trials (:class:`dm_envs.TrialBatch`); trials whose stage is empty are not eligible.
        sizes: Kick sizes.
        stage: Stage to kick in (``"delay"``: the decision is held in memory).
        position: Where in the stage, as a fraction of its duration.
        relative: Sizes relative to the state norm.
        n_repeats: Independent directions per trial.
        seed: Seed of the directions.
        progress: Progress bar.
        dtype: Forward dtype.

    Example:
        >>> from dm_envs import make_config, sample_trials
        >>> kc = kick_robustness(Network.random(16, 7, 3), sample_trials(make_config(3), 20, 0), sizes=(0,))
        >>> bool(kc.n_eligible == 0 or kc.survival[0] == 1.0)                     # a zero kick changes nothing
        True
    """
    from tqdm.auto import tqdm

    from dm_envs import STAGES, score_actions

    sid = STAGES.index(stage)
    net = _model(network)
    base = score_actions(trials, net.forward(trials.obs, return_hidden=False, dtype=dtype).actions)
    dur = trials.duration[:, sid]
    step = trials.onset[:, sid] + np.minimum(np.floor(position * dur).astype(np.int64), np.maximum(dur - 1, 0))
    eligible = (base.choice >= 0) & (dur > 0)
    N, H = len(trials), net.hidden_size
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((n_repeats, N, H))
    u /= np.linalg.norm(u, axis=2, keepdims=True)
    obs = np.concatenate([trials.obs] * n_repeats)
    kick_step = np.tile(np.where(eligible, step, -1), n_repeats)
    survival, accuracy = [], []
    for size in tqdm(np.asarray(sizes, np.float64), desc="kicks", disable=not progress):
        run = net.forward(obs, kick=size * u.reshape(-1, H), kick_step=kick_step, kick_relative=relative,
                          return_hidden=False, dtype=dtype)
        same, correct = [], []
        for r in range(n_repeats):
            sc = score_actions(trials, run.actions[r * N : (r + 1) * N])
            same.append(sc.choice[eligible] == base.choice[eligible])
            correct.append(sc.correct[eligible])
        survival.append(float(np.mean(same)) if eligible.any() else float("nan"))
        accuracy.append(float(np.mean(correct)) if eligible.any() else float("nan"))
    return KickCurve(np.asarray(sizes, np.float64), np.asarray(survival), np.asarray(accuracy), int(eligible.sum()),
                     relative, stage, int(n_repeats))


# ---------------------------------------------------------------------------------------------------- ablation
def ablation_masks(
    hidden_size: int,
    k: int,
    members: Sequence[int],
    n_repeats: int,
    rng: Union[int, np.random.Generator],
) -> Optional[np.ndarray]:
    """Keep-masks that silence ``k`` units drawn at random (without replacement) from ``members``.

    Args:
        hidden_size: ``H``.
        k: Units to silence per mask.
        members: The pool (e.g. all units, or one population).
        n_repeats: Number of masks (independent draws).
        rng: Seed or generator.

    Returns:
        ``(n_repeats, H)`` bool (False = silenced), or None if the pool has fewer than ``k`` units.

    Example:
        >>> m = ablation_masks(6, 2, [1, 3, 5], n_repeats=4, rng=0)
        >>> (~m).sum(axis=1).tolist(), bool((~m)[:, [0, 2, 4]].any())
        ([2, 2, 2, 2], False)
    """
    pool = np.asarray(members, np.int64)
    if k > pool.size:
        return None
    g = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    masks = np.ones((n_repeats, hidden_size), bool)
    for r in range(n_repeats):
        masks[r, g.choice(pool, size=k, replace=False)] = False
    return masks


@dataclass
class AblationCurve:
    """Accuracy after silencing ``k`` units, per pool (random = all units; targeted = one population).

    Attributes:
        ks: Numbers of silenced units.
        groups: Pool names.
        accuracy: ``(G, K, R)`` accuracy per pool, k and repeat (NaN where the pool has fewer than k units).
        baseline: Accuracy with nothing silenced.
        pool_sizes: Units in each pool.
    """

    ks: np.ndarray
    groups: tuple[str, ...]
    accuracy: np.ndarray
    baseline: float
    pool_sizes: dict[str, int] = field(default_factory=dict)

    def mean(self) -> np.ndarray:
        """``(G, K)`` accuracy averaged over repeats."""
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: pool smaller than k
            return np.nanmean(self.accuracy, axis=2) if self.accuracy.size else self.accuracy

    def sd(self) -> np.ndarray:
        """``(G, K)`` standard deviation of the accuracy over repeats (the spread of which units are silenced)."""
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanstd(self.accuracy, axis=2) if self.accuracy.size else self.accuracy

    def to_dict(self) -> dict[str, Any]:
        m = self.mean()
        nan = lambda v: None if not np.isfinite(v) else float(v)  # noqa: E731
        return {
            "ks": self.ks.tolist(),
            "groups": list(self.groups),
            "baseline": self.baseline,
            "pool_sizes": self.pool_sizes,
            "mean_accuracy": {g: [nan(v) for v in m[i]] for i, g in enumerate(self.groups)},
            "accuracy": {g: [[nan(v) for v in row] for row in self.accuracy[i]] for i, g in enumerate(self.groups)},
        }


def ablation_curve(
    network: Any,
    trials: Any,
    ks: Sequence[int] = DEFAULT_KS,
    *,
    groups: Optional[Mapping[str, Sequence[int]]] = None,
    include_random: bool = True,
    n_repeats: int = 5,
    seed: int = 0,
    progress: bool = False,
    dtype: Any = np.float64,
) -> AblationCurve:
    """Accuracy after silencing ``k`` units drawn at random from all units or from given populations.

    Each (pool, k) draws its masks from its own generator ``default_rng([seed, pool index, k])``, so adding pools or
    k values leaves the others unchanged.

    Args:
        network: The network (:class:`~analysis.network.Network` or anything :meth:`Network.load` reads).
        trials: The trials to score on (the same for every mask).
        ks: Numbers of silenced units.
        groups: Targeted pools, ``{name: unit indices}`` (e.g. ``{"G+": pops.indices("G+"), ...}``).
        include_random: Add the pool ``"random"`` (all units) first.
        n_repeats: Random draws per (pool, k).
        seed: Seed.
        progress: Progress bar over (pool, k).
        dtype: Forward dtype.

    Example:
        >>> from dm_envs import make_config, sample_trials
        >>> ab = ablation_curve(Network.random(16, 7, 3), sample_trials(make_config(3), 20, 0), ks=(1, 20),
        ...                     groups={"G+": [0, 1, 2]}, n_repeats=2)
        >>> ab.groups, ab.accuracy.shape, bool(np.isnan(ab.accuracy[1, 1]).all())
        (('random', 'G+'), (2, 2, 2), True)
    """
    from tqdm.auto import tqdm

    from dm_envs import score_actions

    w = _model(network)
    H, N = getattr(w, "n_units", w.hidden_size), len(trials)
    pools: dict[str, np.ndarray] = {}
    if include_random:
        pools["random"] = np.arange(H)
    for name, idx in (groups or {}).items():
        pools[str(name)] = np.asarray(idx, np.int64)
    ks_a = np.asarray(list(ks), np.int64)
    acc = np.full((len(pools), len(ks_a), n_repeats), np.nan)
    base = score_actions(trials, w.forward(trials.obs, return_hidden=False, dtype=dtype).actions).accuracy
    obs = np.concatenate([trials.obs] * n_repeats)
    jobs = [(gi, ki) for gi in range(len(pools)) for ki in range(len(ks_a))]
    names = list(pools)
    for gi, ki in tqdm(jobs, desc="ablation", disable=not progress):
        rng = np.random.default_rng([seed, gi, int(ks_a[ki])])
        masks = ablation_masks(H, int(ks_a[ki]), pools[names[gi]], n_repeats, rng)
        if masks is None:
            continue
        run = w.forward(obs, unit_mask=np.repeat(masks, N, axis=0), return_hidden=False, dtype=dtype)
        for r in range(n_repeats):
            acc[gi, ki, r] = score_actions(trials, run.actions[r * N : (r + 1) * N]).accuracy
    return AblationCurve(ks_a, tuple(names), acc, float(base), {g: int(len(p)) for g, p in pools.items()})
