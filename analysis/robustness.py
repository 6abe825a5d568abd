"""Robustness of a trained network: input noise, hidden-state kicks, and silencing units.

Everything runs the paper's map from plain weights (:class:`NetworkWeights`, e.g. from ``agents.rnn_weights``)
over whole trials of :mod:`dm_envs` with a small numpy forward (:func:`rnn_forward`), and scores greedy actions
with :func:`dm_envs.score_actions`, the evaluator RL and SL share. The forward follows SB3's order: at step ``t``
the network reads ``x_t``, updates ``h_t = relu(W_rec h_{t-1} + W_in x_t + b_rec)`` from ``h_{-1} = 0``, then acts
``argmax(W_out h_t + b_out)`` (the convention of ``agents.run_policy``).

Tests (``shared/reference/paper.md`` 5.7, defaults of this project):

* :func:`noise_robustness`: accuracy at ``x0.5 .. x4`` the training noise amplitude (same seed, so the trials and the
  noise draws are the same, only scaled);
* :func:`kick_robustness`: a kick of norm ``size * ||h_t||`` in a random direction to the state in the middle of the
  delay; the fraction of decisions that survive (same choice as without the kick);
* :func:`ablation_curve`: accuracy with ``k`` units silenced (clamped to 0 at every step), chosen at random among all
  units or among one population (targeted), ``k = 1 .. 50``.

Example:
    >>> from dm_envs import make_config, sample_trials
    >>> w = NetworkWeights.random(64, obs_dim=7, n_actions=3, seed=0)
    >>> trials = sample_trials(make_config(3), 50, 0)
    >>> run = rnn_forward(w, trials.obs, unit_mask=np.arange(64) >= 5)      # silence units 0..4
    >>> float(np.abs(run.hidden[:, :, :5]).max())
    0.0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

__all__ = [
    "AblationCurve",
    "KickCurve",
    "NetworkWeights",
    "NoiseCurve",
    "RNNRun",
    "ablation_curve",
    "ablation_masks",
    "evaluate",
    "kick_robustness",
    "noise_robustness",
    "rnn_forward",
]

DEFAULT_KS: tuple[int, ...] = (1, 2, 3, 5, 7, 10, 15, 20, 30, 40, 50)
"""Default numbers of silenced units (log-spaced over 1..50; pass ``range(1, 51)`` for every k)."""


# ---------------------------------------------------------------------------------------------------- weights
@dataclass(frozen=True)
class NetworkWeights:
    """The arrays of the paper's network (``H`` units, ``D`` inputs, ``A`` actions).

    Attributes:
        W_rec: ``(H, H)`` recurrent weights (``W_rec[i, j]``: from unit ``j`` to unit ``i``).
        W_in: ``(H, D)`` input weights.
        W_out: ``(A, H)`` action readout (action 0 = fixate).
        b_rec: ``(H,)`` recurrent bias (zeros for the bias-free network).
        b_out: ``(A,)`` readout bias.

    Example:
        >>> w = NetworkWeights.random(10, obs_dim=7, n_actions=3, delta=0.1, seed=0)
        >>> w.hidden_size, w.W_in.shape, float(np.abs(w.W_rec).max()) <= 0.1
        (10, (10, 7), True)
    """

    W_rec: np.ndarray
    W_in: np.ndarray
    W_out: np.ndarray
    b_rec: Optional[np.ndarray] = None
    b_out: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        H = np.asarray(self.W_rec).shape[0]
        A = np.asarray(self.W_out).shape[0]
        for name, value in (("W_rec", self.W_rec), ("W_in", self.W_in), ("W_out", self.W_out)):
            object.__setattr__(self, name, np.asarray(value, dtype=np.float64))
        object.__setattr__(self, "b_rec", np.zeros(H) if self.b_rec is None else np.asarray(self.b_rec, np.float64))
        object.__setattr__(self, "b_out", np.zeros(A) if self.b_out is None else np.asarray(self.b_out, np.float64))
        if self.W_rec.shape != (H, H) or self.W_in.shape[0] != H or self.W_out.shape[1] != H:
            raise ValueError(
                f"inconsistent shapes: W_rec {self.W_rec.shape}, W_in {self.W_in.shape}, W_out {self.W_out.shape}"
            )

    @property
    def hidden_size(self) -> int:
        return int(self.W_rec.shape[0])

    @property
    def obs_dim(self) -> int:
        return int(self.W_in.shape[1])

    @property
    def n_actions(self) -> int:
        return int(self.W_out.shape[0])

    @classmethod
    def from_any(cls, obj: Any) -> "NetworkWeights":
        """From an object with ``W_rec, W_in, W_out`` (and optional ``b_rec, b_out``) attributes or keys
        (``agents.RNNWeights``, a dict, an ``np.load``-ed ``.npz``), or a path to such an ``.npz``.

        Example:
            >>> w = NetworkWeights.from_any({"W_rec": np.zeros((2, 2)), "W_in": np.zeros((2, 1)),
            ...                              "W_out": np.zeros((3, 2))})
            >>> w.b_out.tolist()
            [0.0, 0.0, 0.0]
        """
        if isinstance(obj, cls):
            return obj
        if isinstance(obj, (str, bytes)) or hasattr(obj, "__fspath__"):
            with np.load(obj) as data:
                return cls.from_any({k: data[k] for k in data.files})
        get = (lambda k: obj[k] if k in obj else None) if isinstance(obj, Mapping) or hasattr(obj, "files") else (
            lambda k: getattr(obj, k, None)
        )
        missing = [k for k in ("W_rec", "W_in", "W_out") if get(k) is None]
        if missing:
            raise TypeError(f"cannot read network weights from {type(obj).__name__}: missing {missing}")
        return cls(get("W_rec"), get("W_in"), get("W_out"), get("b_rec"), get("b_out"))

    @classmethod
    def random(
        cls, hidden_size: int, obs_dim: int, n_actions: int, *, delta: float = 0.1, readout: float = 0.1,
        seed: int = 0,
    ) -> "NetworkWeights":
        """The paper's initialisation: ``W_rec, W_in ~ U(-delta, delta)``, ``W_out ~ U(-readout, readout)``."""
        rng = np.random.default_rng(seed)
        return cls(
            rng.uniform(-delta, delta, (hidden_size, hidden_size)),
            rng.uniform(-delta, delta, (hidden_size, obs_dim)),
            rng.uniform(-readout, readout, (n_actions, hidden_size)),
        )

    def save(self, path: Any) -> None:
        """Write the arrays to an ``.npz`` file (readable by :meth:`from_any`)."""
        np.savez(path, W_rec=self.W_rec, W_in=self.W_in, W_out=self.W_out, b_rec=self.b_rec, b_out=self.b_out)


# ---------------------------------------------------------------------------------------------------- forward
@dataclass
class RNNRun:
    """A forward pass over whole trials.

    Attributes:
        hidden: ``(N, T, H)`` states ``h_t`` after reading ``x_t`` (None if not requested).
        logits: ``(N, T, A)`` action logits.
        actions: ``(N, T)`` greedy actions (int64).
    """

    hidden: Optional[np.ndarray]
    logits: np.ndarray
    actions: np.ndarray


def _unit_mask(mask: Optional[np.ndarray], N: int, H: int, dtype: Any) -> Optional[np.ndarray]:
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype != bool:
        m = m != 0
    if m.shape not in ((H,), (N, H)):
        raise ValueError(f"unit_mask must have shape ({H},) or ({N}, {H}), got {m.shape}")
    return np.broadcast_to(m, (N, H)).astype(dtype)


def rnn_forward(
    weights: Any,
    obs: np.ndarray,
    *,
    unit_mask: Optional[np.ndarray] = None,
    kick: Optional[np.ndarray] = None,
    kick_step: Optional[np.ndarray] = None,
    kick_relative: bool = False,
    h0: Optional[np.ndarray] = None,
    return_hidden: bool = True,
    dtype: Any = np.float64,
) -> RNNRun:
    """Run the ReLU RNN over whole trials from plain weights, with optional silenced units and state kicks.

    Args:
        weights: :class:`NetworkWeights` or anything :meth:`NetworkWeights.from_any` reads.
        obs: ``(N, T, D)`` inputs (e.g. ``trials.obs``).
        unit_mask: ``(H,)`` or ``(N, H)``: units to keep (True/1); the others are **silenced**: clamped to 0 at every
            step (they neither fire nor drive anything).
        kick: ``(N, H)`` perturbation added to the state of trial ``n`` at step ``kick_step[n]`` (after the update);
            the kicked state is rectified (states of a ReLU network are non-negative) and re-masked.
        kick_step: ``(N,)`` step of each trial's kick (``-1``: no kick).
        kick_relative: Scale each kick by the norm of the state it perturbs (``kick`` then gives the direction and
            the relative size).
        h0: ``(H,)`` or ``(N, H)`` initial state (default 0).
        return_hidden: Keep the ``(N, T, H)`` states (memory: ``N T H`` floats).
        dtype: Computation dtype (float64, or float32 for speed).

    Returns:
        The :class:`RNNRun`.

    Example:
        >>> w = NetworkWeights(np.zeros((2, 2)), np.eye(2), np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
        >>> rnn_forward(w, np.array([[[1.0, 0.0], [0.0, 2.0]]])).actions.tolist()
        [[1, 2]]
    """
    w = NetworkWeights.from_any(weights)
    x = np.asarray(obs)
    if x.ndim != 3 or x.shape[2] != w.obs_dim:
        raise ValueError(f"obs must be (N, T, {w.obs_dim}), got shape {x.shape}")
    N, T, _ = x.shape
    H, A = w.hidden_size, w.n_actions
    Wr, Wi, Wo = (w.W_rec.T.astype(dtype), w.W_in.T.astype(dtype), w.W_out.T.astype(dtype))
    br, bo = w.b_rec.astype(dtype), w.b_out.astype(dtype)
    keep = _unit_mask(unit_mask, N, H, dtype)
    h = np.zeros((N, H), dtype) if h0 is None else np.broadcast_to(np.asarray(h0, dtype), (N, H)).copy()
    if keep is not None:
        h *= keep
    ks = None
    if kick is not None:
        kick_a = np.asarray(kick, dtype)
        if kick_a.shape != (N, H):
            raise ValueError(f"kick must have shape ({N}, {H}), got {kick_a.shape}")
        ks = np.full(N, -1, np.int64) if kick_step is None else np.asarray(kick_step, np.int64)
    hidden = np.empty((N, T, H), dtype) if return_hidden else None
    logits = np.empty((N, T, A), dtype)
    for t in range(T):
        h = h @ Wr
        h += x[:, t].astype(dtype, copy=False) @ Wi
        h += br
        np.maximum(h, 0.0, out=h)
        if keep is not None:
            h *= keep
        if ks is not None:
            rows = np.flatnonzero(ks == t)
            if rows.size:
                k = kick_a[rows]
                if kick_relative:
                    k = k * np.linalg.norm(h[rows], axis=1, keepdims=True)
                hk = np.maximum(h[rows] + k, 0.0)
                h[rows] = hk if keep is None else hk * keep[rows]
        if hidden is not None:
            hidden[:, t] = h
        logits[:, t] = h @ Wo + bo
    return RNNRun(hidden, logits, np.argmax(logits, axis=2).astype(np.int64))


def evaluate(weights: Any, trials: Any, **forward_kwargs: Any) -> Any:
    """Score the greedy policy of ``weights`` on ``trials`` (:func:`dm_envs.score_actions`).

    Example:
        >>> from dm_envs import make_config, sample_trials
        >>> w = NetworkWeights.random(32, 7, 3, seed=1)
        >>> 0.0 <= evaluate(w, sample_trials(make_config(3), 20, 0)).accuracy <= 1.0
        True
    """
    from dm_envs import score_actions

    run = rnn_forward(weights, trials.obs, return_hidden=False, **forward_kwargs)
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
    """

    scales: np.ndarray
    amplitude: np.ndarray
    accuracy: np.ndarray
    by_coherence: list[dict[float, float]]
    rates: list[dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "scales": self.scales.tolist(),
            "amplitude": self.amplitude.tolist(),
            "accuracy": self.accuracy.tolist(),
            "by_coherence": [{f"{k:g}": v for k, v in d.items()} for d in self.by_coherence],
            "rates": self.rates,
        }


def noise_robustness(
    weights: Any,
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
        weights: The network (see :func:`rnn_forward`).
        config: The training :class:`dm_envs.TaskConfig` (its ``noise_amplitude`` is the x1 reference).
        scales: Multipliers of the amplitude.
        n_trials: Trials per scale.
        seed: Trial seed.
        progress: Progress bar.
        dtype: Forward dtype.

    Example:
        >>> from dm_envs import make_config
        >>> nc = noise_robustness(NetworkWeights.random(16, 7, 3), make_config(3), scales=(1, 2), n_trials=20)
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
        scores = evaluate(weights, trials, dtype=dtype)
        acc.append(scores.accuracy)
        by_coh.append(scores.accuracy_by_coherence())
        rates.append(scores.rates())
    return NoiseCurve(sc, sc * config.noise_amplitude, np.asarray(acc), by_coh, rates)


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
    """

    sizes: np.ndarray
    survival: np.ndarray
    accuracy: np.ndarray
    n_eligible: int
    relative: bool
    stage: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "sizes": self.sizes.tolist(),
            "survival": self.survival.tolist(),
            "accuracy": self.accuracy.tolist(),
            "n_eligible": self.n_eligible,
            "relative": self.relative,
            "stage": self.stage,
        }


def kick_robustness(
    weights: Any,
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
        weights: The network.
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
        >>> kc = kick_robustness(NetworkWeights.random(16, 7, 3), sample_trials(make_config(3), 20, 0), sizes=(0,))
        >>> bool(kc.n_eligible == 0 or kc.survival[0] == 1.0)                     # a zero kick changes nothing
        True
    """
    from tqdm.auto import tqdm

    from dm_envs import STAGES, score_actions

    sid = STAGES.index(stage)
    base = score_actions(trials, rnn_forward(weights, trials.obs, return_hidden=False, dtype=dtype).actions)
    dur = trials.duration[:, sid]
    step = trials.onset[:, sid] + np.minimum(np.floor(position * dur).astype(np.int64), np.maximum(dur - 1, 0))
    eligible = (base.choice >= 0) & (dur > 0)
    N, H = len(trials), NetworkWeights.from_any(weights).hidden_size
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((n_repeats, N, H))
    u /= np.linalg.norm(u, axis=2, keepdims=True)
    obs = np.concatenate([trials.obs] * n_repeats)
    kick_step = np.tile(np.where(eligible, step, -1), n_repeats)
    survival, accuracy = [], []
    for size in tqdm(np.asarray(sizes, np.float64), desc="kicks", disable=not progress):
        run = rnn_forward(weights, obs, kick=size * u.reshape(-1, H), kick_step=kick_step, kick_relative=relative,
                          return_hidden=False, dtype=dtype)
        same, correct = [], []
        for r in range(n_repeats):
            sc = score_actions(trials, run.actions[r * N : (r + 1) * N])
            same.append(sc.choice[eligible] == base.choice[eligible])
            correct.append(sc.correct[eligible])
        survival.append(float(np.mean(same)) if eligible.any() else float("nan"))
        accuracy.append(float(np.mean(correct)) if eligible.any() else float("nan"))
    return KickCurve(np.asarray(sizes, np.float64), np.asarray(survival), np.asarray(accuracy), int(eligible.sum()),
                     relative, stage)


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
    weights: Any,
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
        weights: The network.
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
        >>> ab = ablation_curve(NetworkWeights.random(16, 7, 3), sample_trials(make_config(3), 20, 0), ks=(1, 20),
        ...                     groups={"G+": [0, 1, 2]}, n_repeats=2)
        >>> ab.groups, ab.accuracy.shape, bool(np.isnan(ab.accuracy[1, 1]).all())
        (('random', 'G+'), (2, 2, 2), True)
    """
    from tqdm.auto import tqdm

    from dm_envs import score_actions

    w = NetworkWeights.from_any(weights)
    H, N = w.hidden_size, len(trials)
    pools: dict[str, np.ndarray] = {}
    if include_random:
        pools["random"] = np.arange(H)
    for name, idx in (groups or {}).items():
        pools[str(name)] = np.asarray(idx, np.int64)
    ks_a = np.asarray(list(ks), np.int64)
    acc = np.full((len(pools), len(ks_a), n_repeats), np.nan)
    base = score_actions(trials, rnn_forward(w, trials.obs, return_hidden=False, dtype=dtype).actions).accuracy
    obs = np.concatenate([trials.obs] * n_repeats)
    jobs = [(gi, ki) for gi in range(len(pools)) for ki in range(len(ks_a))]
    names = list(pools)
    for gi, ki in tqdm(jobs, desc="ablation", disable=not progress):
        rng = np.random.default_rng([seed, gi, int(ks_a[ki])])
        masks = ablation_masks(H, int(ks_a[ki]), pools[names[gi]], n_repeats, rng)
        if masks is None:
            continue
        run = rnn_forward(w, obs, unit_mask=np.repeat(masks, N, axis=0), return_hidden=False, dtype=dtype)
        for r in range(n_repeats):
            acc[gi, ki, r] = score_actions(trials, run.actions[r * N : (r + 1) * N]).accuracy
    return AblationCurve(ks_a, tuple(names), acc, float(base), {g: int(len(p)) for g, p in pools.items()})
