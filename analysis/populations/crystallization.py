"""Crystallization: when a decision becomes fixed, within a trial and over training.

Within a trial (the paper's definition is unknown; two operationalisations from ``shared/reference/paper.md`` 5.5):

* **readout commitment** (:func:`readout_commitment`): the first step after which the argmax of the choice logits
  (fixate ignored) no longer changes until the end of the window;
* **decoder crystallization** (:func:`decoder_accuracy`): the first step at which a cross-validated linear decoder
  (shrinkage LDA, numpy) of the final choice from ``h_t`` reaches 90 % accuracy, per coherence.

:func:`decision_crystallization` runs both. Over training (:func:`training_crystallization`): the checkpoint after
which the population membership (Jaccard similarity of each group between consecutive checkpoints) and the attractor
types stop changing.

Example:
    >>> logits = np.zeros((1, 6, 3)); logits[0, :, 1] = [1, 0, 1, 0, 1, 1]      # choice 1 vs choice 2 (= 0.5)
    >>> logits[0, :, 2] = 0.5
    >>> readout_commitment(logits).time.tolist()                                 # fixed from step 4 on
    [4]
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np
from scipy import linalg

__all__ = [
    "Commitment",
    "Crystallization",
    "DecoderCurve",
    "TrainingCrystallization",
    "decision_crystallization",
    "decoder_accuracy",
    "lda_fit",
    "lda_predict",
    "readout_commitment",
    "training_crystallization",
]


# ---------------------------------------------------------------------------------------------------- readout
@dataclass
class Commitment:
    """Readout commitment of each trial.

    Attributes:
        time: ``(N,)`` commitment step, relative to ``start`` (``-1`` for an empty window).
        step: ``(N,)`` the same, in absolute steps.
        final: ``(N,)`` the committed choice (0-based), the argmax at the window's last step.
        argmax: ``(N, T)`` argmax over choices at every step (``-1`` outside the window).
    """

    time: np.ndarray
    step: np.ndarray
    final: np.ndarray
    argmax: np.ndarray


def readout_commitment(
    logits: np.ndarray,
    mask: Optional[np.ndarray] = None,
    *,
    start: Optional[np.ndarray] = None,
    end: Optional[np.ndarray] = None,
    choices: slice = slice(1, None),
) -> Commitment:
    """The step from which the readout's preferred choice stays fixed until the end of the window.

    Args:
        logits: ``(N, T, A)`` action logits (``W_out h_t + b_out``).
        mask: ``(N, T)`` valid steps (default all); the window ends at the last valid step.
        start: ``(N,)`` first step of the window (e.g. stimulus onset); default 0.
        end: ``(N,)`` one past the window's last step; default the end of the valid steps.
        choices: The choice logits among the actions (default: all but action 0, fixate).

    Returns:
        The :class:`Commitment`.

    Example:
        >>> lg = np.zeros((2, 5, 3)); lg[:, :, 1] = [[0, 1, 1, 1, 1], [1, 0, 1, 0, 0]]; lg[:, :, 2] = 0.5
        >>> c = readout_commitment(lg, start=np.array([1, 0]))
        >>> c.time.tolist(), c.final.tolist()            # trial 1 ends on choice 2 (index 1), fixed from step 3
        ([0, 3], [0, 1])
    """
    lg = np.asarray(logits)
    N, T = lg.shape[:2]
    m = np.ones((N, T), bool) if mask is None else np.asarray(mask, bool)
    t = np.arange(T)[None, :]
    s0 = np.zeros(N, np.int64) if start is None else np.asarray(start, np.int64)
    last_valid = np.where(m.any(1), T - np.argmax(m[:, ::-1], axis=1), 0)
    e = last_valid if end is None else np.minimum(np.asarray(end, np.int64), last_valid)
    window = m & (t >= s0[:, None]) & (t < e[:, None])
    a = np.where(window, np.argmax(lg[:, :, choices], axis=2), -1)
    rows = np.arange(N)
    has = window.any(1)
    final = np.where(has, a[rows, np.clip(e - 1, 0, T - 1)], -1)
    differs = window & (a != final[:, None])
    # the last step that disagrees with the final choice; commitment is the step after it
    last_diff = np.where(differs.any(1), T - 1 - np.argmax(differs[:, ::-1], axis=1), -1)
    step = np.where(has, np.maximum(last_diff + 1, s0), -1)
    time = np.where(has, step - s0, -1)
    return Commitment(time=time, step=step, final=final, argmax=a)


# ---------------------------------------------------------------------------------------------------- decoder
def lda_fit(X: np.ndarray, y: np.ndarray, shrinkage: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit a linear discriminant (shared covariance, shrunk towards a scaled identity).

    ``S = (1 - shrinkage) S_pooled + shrinkage * tr(S_pooled)/d * I``; class scores ``x W + b``.

    Args:
        X: ``(n, d)`` features.
        y: ``(n,)`` labels.
        shrinkage: In ``[0, 1]``; > 0 handles silent (constant) units and ``d > n``.

    Returns:
        ``(W (d, K), b (K,), classes (K,))``.

    Example:
        >>> X = np.array([[0.0], [0.2], [1.0], [1.2]]); y = np.array([0, 0, 1, 1])
        >>> W, b, cl = lda_fit(X, y)
        >>> lda_predict(np.array([[0.1], [1.1]]), W, b, cl).tolist()
        [0, 1]
    """
    X = np.asarray(X, np.float64)
    classes, codes = np.unique(y, return_inverse=True)
    codes = codes.reshape(-1)
    K, (n, d) = len(classes), X.shape
    counts = np.bincount(codes, minlength=K).astype(np.float64)
    means = np.zeros((K, d))
    np.add.at(means, codes, X)
    means /= counts[:, None]
    Xc = X - means[codes]
    S = Xc.T @ Xc / max(n - K, 1)
    scale = np.trace(S) / d if np.trace(S) > 0 else 1.0
    S = (1.0 - shrinkage) * S + shrinkage * scale * np.eye(d)
    W = linalg.solve(S, means.T, assume_a="pos")
    b = -0.5 * np.sum(means.T * W, axis=0) + np.log(counts / n)
    return W, b, classes


def lda_predict(X: np.ndarray, W: np.ndarray, b: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Predicted labels of a fitted :func:`lda_fit` model."""
    return classes[np.argmax(np.asarray(X, np.float64) @ W + b, axis=1)]


def _folds(y: np.ndarray, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    """Stratified fold index of every sample."""
    fold = np.empty(len(y), np.int64)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        fold[rng.permutation(idx)] = np.arange(len(idx)) % n_folds
    return fold


@dataclass
class DecoderCurve:
    """Cross-validated accuracy of decoding a label from the state at each (aligned) step.

    Attributes:
        times: ``(T',)`` steps relative to the alignment.
        accuracy: ``(T',)`` out-of-fold accuracy over all trials (NaN where too few trials).
        n_trials: ``(T',)`` trials available at each step.
        groups: Group values (e.g. coherences), in order.
        group_accuracy: ``(G, T')`` accuracy within each group (out-of-fold predictions of the same decoders).
        threshold: The crystallization threshold.
        crystallization: ``{"all": time, group: time}``: first time the accuracy reaches the threshold (NaN never).
    """

    times: np.ndarray
    accuracy: np.ndarray
    n_trials: np.ndarray
    groups: tuple[Any, ...] = ()
    group_accuracy: Optional[np.ndarray] = None
    threshold: float = 0.9
    crystallization: dict[Any, float] = field(default_factory=dict)


def _first_crossing(times: np.ndarray, acc: np.ndarray, threshold: float, sustained: bool) -> float:
    ok = np.isfinite(acc)
    above = ok & (acc >= threshold)
    if not above.any():
        return float("nan")
    if not sustained:
        return float(times[np.argmax(above)])
    # first time after which every defined accuracy stays at or above the threshold
    below = ok & ~above
    if not below.any():
        return float(times[np.argmax(above)])
    last_below = np.flatnonzero(below)[-1]
    after = np.flatnonzero(above[last_below + 1 :])
    return float(times[last_below + 1 + after[0]]) if after.size else float("nan")


def decoder_accuracy(
    hidden: np.ndarray,
    labels: np.ndarray,
    mask: Optional[np.ndarray] = None,
    *,
    align: Optional[np.ndarray] = None,
    times: Optional[Sequence[int]] = None,
    groups: Optional[np.ndarray] = None,
    n_folds: int = 5,
    shrinkage: float = 0.1,
    threshold: float = 0.9,
    sustained: bool = False,
    min_trials: int = 20,
    seed: int = 0,
    progress: bool = False,
) -> DecoderCurve:
    """Cross-validated LDA accuracy of ``labels`` decoded from ``h_t``, at each step, overall and per group.

    At relative time ``tau`` every trial ``n`` valid at step ``align[n] + tau`` contributes ``h[n, align[n] + tau]``.
    Folds are stratified by label and fixed across times (same seed, same folds).

    Args:
        hidden: ``(N, T, H)`` states.
        labels: ``(N,)`` label to decode (e.g. the final choice); trials with a negative label are left out.
        mask: ``(N, T)`` valid steps.
        align: ``(N,)`` step that is time 0 of each trial (e.g. stimulus onset); default 0.
        times: Relative times to evaluate (default: every time with at least ``min_trials`` trials).
        groups: ``(N,)`` group of each trial (e.g. unsigned relevant coherence) for per-group accuracy.
        n_folds: Cross-validation folds.
        shrinkage: LDA covariance shrinkage.
        threshold: Crystallization threshold on accuracy.
        sustained: If True, crystallization is the first time after which the accuracy stays above threshold.
        min_trials: Fewer valid trials (or a single class) at a time gives NaN.
        seed: Seed of the folds.
        progress: Progress bar over times.

    Returns:
        The :class:`DecoderCurve`.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> y = rng.integers(0, 2, 100); h = rng.standard_normal((100, 8, 3))
        >>> h[:, 5:, 0] += 8 * (2 * y[:, None] - 1)                       # the choice appears at step 5
        >>> decoder_accuracy(h, y).crystallization["all"]
        5.0
    """
    from tqdm.auto import tqdm

    h = np.asarray(hidden)
    N, T, H = h.shape
    y = np.asarray(labels)
    m = np.ones((N, T), bool) if mask is None else np.asarray(mask, bool)
    al = np.zeros(N, np.int64) if align is None else np.asarray(align, np.int64)
    use = y >= 0 if y.dtype.kind in "iu" else np.ones(N, bool)
    rng = np.random.default_rng(seed)
    fold = np.full(N, -1, np.int64)
    fold[use] = _folds(y[use], n_folds, rng)
    rel_lo, rel_hi = int(-al.max()), int(T - al.min())
    all_times = np.arange(rel_lo, rel_hi)
    step = al[:, None] + all_times[None, :]  # (N, T')
    inside = (step >= 0) & (step < T)
    valid = inside & m[np.arange(N)[:, None], np.clip(step, 0, T - 1)] & use[:, None]
    counts = valid.sum(0)
    keep = counts >= min_trials if times is None else np.isin(all_times, np.asarray(times))
    tt = all_times[keep]
    acc = np.full(len(tt), np.nan)
    g_vals: tuple[Any, ...] = ()
    g_acc = None
    if groups is not None:
        g = np.asarray(groups)
        g_vals = tuple(np.unique(g[use]).tolist())
        g_acc = np.full((len(g_vals), len(tt)), np.nan)
    for k, tau in enumerate(tqdm(tt, desc="decoder", disable=not progress)):
        j = int(np.flatnonzero(all_times == tau)[0])
        rows = np.flatnonzero(valid[:, j])
        if len(rows) < min_trials or np.unique(y[rows]).size < 2:
            continue
        X = h[rows, step[rows, j]].astype(np.float64)
        pred = np.empty(len(rows), dtype=y.dtype)
        for f in range(n_folds):
            test = fold[rows] == f
            train = ~test
            if not test.any():
                continue
            if np.unique(y[rows][train]).size < 2:
                pred[test] = y[rows][train][0]
                continue
            W, b, cl = lda_fit(X[train], y[rows][train], shrinkage)
            pred[test] = lda_predict(X[test], W, b, cl)
        hit = pred == y[rows]
        acc[k] = hit.mean()
        if g_acc is not None:
            for gi, gv in enumerate(g_vals):
                sel = g[rows] == gv
                if sel.sum() >= max(1, min_trials // 4):
                    g_acc[gi, k] = hit[sel].mean()
    cryst: dict[Any, float] = {"all": _first_crossing(tt, acc, threshold, sustained)}
    if g_acc is not None:
        for gi, gv in enumerate(g_vals):
            cryst[gv] = _first_crossing(tt, g_acc[gi], threshold, sustained)
    return DecoderCurve(tt, acc, counts[keep], g_vals, g_acc, threshold, cryst)


# ---------------------------------------------------------------------------------------------------- both
@dataclass
class Crystallization:
    """Within-trial crystallization of the decision, by the readout and by a decoder.

    Attributes:
        commitment: Readout commitment per trial (:class:`Commitment`), relative to ``align``.
        decoder: Decoder accuracy curve (:class:`DecoderCurve`), relative to ``align``.
        groups: ``(N,)`` group of each trial (e.g. coherence), or None.
        choice: ``(N,)`` the decoded final choice.
    """

    commitment: Commitment
    decoder: DecoderCurve
    groups: Optional[np.ndarray]
    choice: np.ndarray

    def commitment_by_group(self) -> dict[Any, dict[str, float]]:
        """Mean, median and count of the readout commitment time per group (and ``"all"``)."""
        t = self.commitment.time.astype(np.float64)
        ok = t >= 0
        out = {"all": _describe(t[ok])}
        if self.groups is not None:
            for gv in np.unique(self.groups).tolist():
                out[gv] = _describe(t[ok & (self.groups == gv)])
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary."""
        d = self.decoder
        key = lambda k: k if isinstance(k, str) else f"{k:g}"  # noqa: E731
        return {
            "readout_commitment": {key(k): v for k, v in self.commitment_by_group().items()},
            "decoder": {
                "times": d.times.tolist(),
                "accuracy": _nan_list(d.accuracy),
                "n_trials": d.n_trials.tolist(),
                "groups": [key(g) for g in d.groups],
                "group_accuracy": [_nan_list(r) for r in d.group_accuracy] if d.group_accuracy is not None else None,
                "threshold": d.threshold,
                "crystallization": {key(k): v for k, v in d.crystallization.items()},
            },
        }


def _nan_list(a: np.ndarray) -> list[Optional[float]]:
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, np.float64)]


def _describe(t: np.ndarray) -> dict[str, float]:
    if t.size == 0:
        return {"n": 0, "mean": float("nan"), "median": float("nan"), "std": float("nan")}
    return {"n": int(t.size), "mean": float(t.mean()), "median": float(np.median(t)), "std": float(t.std())}


def decision_crystallization(
    hidden: np.ndarray,
    W_out: np.ndarray,
    mask: Optional[np.ndarray] = None,
    *,
    b_out: Optional[np.ndarray] = None,
    choice: Optional[np.ndarray] = None,
    groups: Optional[np.ndarray] = None,
    align: Optional[np.ndarray] = None,
    end: Optional[np.ndarray] = None,
    threshold: float = 0.9,
    n_folds: int = 5,
    shrinkage: float = 0.1,
    sustained: bool = False,
    seed: int = 0,
    progress: bool = False,
) -> Crystallization:
    """Within-trial decision crystallization: readout commitment and decoder crossing time, per group.

    Args:
        hidden: ``(N, T, H)`` hidden states (``h_t`` after reading ``x_t``).
        W_out: ``(A, H)`` readout (action 0 = fixate); ``b_out`` its bias.
        mask: ``(N, T)`` valid steps.
        choice: ``(N,)`` final choice to decode (0-based; ``-1`` = none, left out). Default: the readout's choice at
            the end of the window.
        groups: ``(N,)`` e.g. unsigned relevant coherence, for per-group times.
        align: ``(N,)`` time 0 of each trial (e.g. stimulus onset ``trials.onset[:, 1]``); readout commitment
            windows start there.
        end: ``(N,)`` end of the readout window (default: end of the trial).
        threshold, n_folds, shrinkage, sustained, seed, progress: See :func:`decoder_accuracy`.

    Returns:
        The :class:`Crystallization`.

    Example:
        >>> cr = decision_crystallization(run.hidden, W_out, trials.mask, align=trials.onset[:, 1],
        ...                               groups=trials.relevant_coherence)        # doctest: +SKIP
        >>> cr.decoder.crystallization                                     # doctest: +SKIP
    """
    h = np.asarray(hidden)
    Wo = np.asarray(W_out, np.float64)
    logits = h @ Wo.T.astype(h.dtype)
    if b_out is not None:
        logits = logits + np.asarray(b_out, h.dtype)
    com = readout_commitment(logits, mask, start=align, end=end)
    y = com.final if choice is None else np.asarray(choice, np.int64)
    dec = decoder_accuracy(
        h, y, mask, align=align, groups=groups, n_folds=n_folds, shrinkage=shrinkage, threshold=threshold,
        sustained=sustained, seed=seed, progress=progress,
    )
    return Crystallization(com, dec, None if groups is None else np.asarray(groups), y)


# ---------------------------------------------------------------------------------------------------- training
@dataclass
class TrainingCrystallization:
    """Stability of populations and attractor types between consecutive checkpoints.

    Attributes:
        similarity: ``(C-1, G)`` Jaccard similarity of each group between checkpoints ``c`` and ``c+1``.
        groups: The group names (columns of ``similarity``).
        mean_similarity: ``(C-1,)`` mean over groups non-empty in either checkpoint.
        kinds_similarity: ``(C-1,)`` multiset Jaccard of attractor types (NaN when not given).
        stable: ``(C-1,)`` bool, the transition passes both thresholds.
        index: First checkpoint from which every later transition is stable (None if the last is not).
    """

    similarity: np.ndarray
    groups: tuple[str, ...]
    mean_similarity: np.ndarray
    kinds_similarity: np.ndarray
    stable: np.ndarray
    index: Optional[int]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary."""
        return {
            "groups": list(self.groups),
            "similarity": [_nan_list(r) for r in self.similarity],
            "mean_similarity": _nan_list(self.mean_similarity),
            "kinds_similarity": _nan_list(self.kinds_similarity),
            "stable": self.stable.tolist(),
            "index": self.index,
        }


def _multiset(kinds: Union[Mapping[Any, Any], Sequence[Any]]) -> Counter:
    if isinstance(kinds, Mapping):
        return Counter((str(k), str(v)) for k, v in kinds.items())
    return Counter(str(getattr(v, "kind", v)) for v in kinds)


def _multiset_jaccard(a: Counter, b: Counter) -> float:
    union = sum((a | b).values())
    return 1.0 if union == 0 else sum((a & b).values()) / union


def training_crystallization(
    assignments: Sequence[Any],
    *,
    attractor_kinds: Optional[Sequence[Union[Mapping[Any, Any], Sequence[Any]]]] = None,
    groups: Sequence[str] = ("G+", "G-", "Ga", "Gs"),
    threshold: float = 0.9,
    kinds_threshold: float = 1.0,
    criterion: str = "each",
) -> TrainingCrystallization:
    """The checkpoint after which population membership and attractor types stop changing.

    Args:
        assignments: Per checkpoint, in training order: a :class:`~analysis.populations.groups.Populations` or ``(H,)``
            labels.
        attractor_kinds: Optional, per checkpoint: the attractor types (a list of kinds or ``Attractor`` objects,
            compared as multisets; or ``{label: kind}``, compared as (label, kind) pairs).
        groups: Groups compared.
        threshold: Minimum Jaccard similarity for a stable transition.
        kinds_threshold: Minimum multiset Jaccard of attractor types (1.0: identical types).
        criterion: ``"each"``: every group's similarity must pass; ``"mean"``: their mean must.

    Returns:
        The :class:`TrainingCrystallization`; ``index`` is the first checkpoint ``c`` such that every transition
        ``c -> c+1 -> ...`` to the end is stable.

    Example:
        >>> a = ["G+", "G-", "G+", "Gs"]; b = ["G+", "G-", "G-", "Gs"]
        >>> training_crystallization([a, b, b, b]).index
        1
    """
    from analysis.populations.groups import membership_jaccard

    if criterion not in ("each", "mean"):
        raise ValueError(f"criterion must be 'each' or 'mean', got {criterion!r}")
    C = len(assignments)
    if attractor_kinds is not None and len(attractor_kinds) != C:
        raise ValueError(f"attractor_kinds has {len(attractor_kinds)} entries for {C} checkpoints")
    groups = tuple(groups)
    sim = np.full((max(C - 1, 0), len(groups)), np.nan)
    mean = np.full(max(C - 1, 0), np.nan)
    ksim = np.full(max(C - 1, 0), np.nan)
    stable = np.zeros(max(C - 1, 0), bool)
    for c in range(C - 1):
        j = membership_jaccard(assignments[c], assignments[c + 1], groups)
        sim[c] = [j[g] for g in groups]
        mean[c] = j["mean"]
        ok = bool(np.all(sim[c] >= threshold)) if criterion == "each" else mean[c] >= threshold
        if attractor_kinds is not None:
            ksim[c] = _multiset_jaccard(_multiset(attractor_kinds[c]), _multiset(attractor_kinds[c + 1]))
            ok = ok and ksim[c] >= kinds_threshold
        stable[c] = ok
    index: Optional[int] = None
    if C >= 2 and stable[-1]:
        unstable = np.flatnonzero(~stable)
        index = int(unstable[-1] + 1) if unstable.size else 0
    return TrainingCrystallization(sim, groups, mean, ksim, stable, index)
