"""Attractor maps across the stimulus space (stimulus stage) and per context (delay and decision stages).

Within a trial stage the input is constant, so the network is the autonomous map ``F_x(h) = relu(W_rec h + W_in x)``
with the stage's noise-free input ``x`` as a parameter (paper.md section 5.1). :func:`attractor_map` runs
:func:`analysis.find_attractors` over a grid of such inputs and tabulates what it finds:

* **stimulus stage**: one input per grid point ``(context, c_1, ..., c_S)`` (:func:`stimulus_grid`: signed
  coherences of every stream in ``[-c_max, c_max]`` for two-choice tasks; see :class:`StimulusGrid` for tasks with
  more choices), from the states observed at stimulus onset in real trials plus random states. Per grid point: the
  distinct attractors with their kinds, the *dominant* kind (the kind whose attractors collect the most initial
  states), the multistability count (number of distinct attractors) and the largest Lyapunov exponent; summarised as
  the fraction of quasi-periodic attractors overall, per ``|relevant coherence|``, per ``|coherence|`` of each stream,
  and in the low- and high-coherence halves of the grid.
* **delay and decision stages**: one input per context (the stimulus is off). The attractors reached from the
  end-of-stimulus states of real trials (and random states) are the *decision attractors*, labelled by the readout
  over the choices (``FP+``/``FP-`` for fixed points of two-choice tasks: which choice the logits of the choice
  actions favour, the fixate action left out); each trial's end-of-stimulus state is assigned the basin it falls
  into (:class:`DecisionBasins`), compared with the trial's correct choice and with the network's own choice.
  A network may instead hold its decision by runaway activity: ``find_attractors`` pools all diverging orbits of an
  input into one ``divergent`` attractor, so here they are split by the choice their escape direction reads out
  (``DIV+``/``DIV-``), and a trial counts as matching when its escape favours the correct choice.

(:func:`analysis.dynamics.tracking.track` repeats the measurement on every checkpoint of a run folder.)

Lyapunov exponents of fixed points are ``log rho(D W_rec)`` (the Jacobian's spectral radius). The eigendecomposition
of thousands of Jacobians would cost more than the whole map, so by default ``rho`` is estimated by a batched power
iteration over all fixed points at once (:func:`fixed_point_exponents`, typically within a few 1e-3 of the exact value;
``exact_fp_exponents=True`` uses the eigenvalues).

Example:
    >>> amap = attractor_map("runs/rl_seed0/final_model.zip", grid=21)          # doctest: +SKIP
    >>> amap.summary()["qp_fraction"], amap.qp_present.shape                      # doctest: +SKIP
    (0.31, (2, 21, 21))
    >>> amap.save("runs/rl_seed0/dynamics")                                       # doctest: +SKIP
    >>> dec = attractor_map("runs/rl_seed0/final_model.zip", stage="decision")    # doctest: +SKIP
    >>> dec.basins.basin_match                                                    # doctest: +SKIP
    0.97
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

import numpy as np

from agents.files import json_safe, write_json, write_rows

from analysis.dynamics.attractors import KINDS, Attractor, find_attractors
from analysis.dynamics.grid import ROUND, StimulusGrid, coherence_key, contexts_of, stimulus_grid
from analysis.network import Network, Rollout

if TYPE_CHECKING:
    from dm_envs import TaskConfig, TrialBatch

__all__ = [
    "MAP_STAGES",
    "AttractorMap",
    "DecisionBasins",
    "attractor_label",
    "attractor_map",
    "choice_readout",
    "fixed_point_exponents",
]

PathLike = Union[str, "os.PathLike[str]"]

MAP_STAGES = ("stimulus", "delay", "decision")
"""Stages :func:`attractor_map` maps."""

KIND_ABBREV = {"fixed_point": "FP", "periodic": "P", "quasi_periodic": "QP", "chaotic": "CH", "divergent": "DIV",
               "unresolved": "UN"}
"""Short names of the kinds, used in attractor labels (``FP+``, ``QP-``, ...)."""

QP = KINDS.index("quasi_periodic")
FP = KINDS.index("fixed_point")
DIV = KINDS.index("divergent")
UNRESOLVED = KINDS.index("unresolved")
BOUNDED = [KINDS.index(k) for k in ("fixed_point", "periodic", "quasi_periodic", "chaotic")]
"""Kinds that are bounded, classified attractors: the denominator of every QP fraction."""

OBSERVED_FROM = ("stimulus", "onset")


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")


# ---------------------------------------------------------------------------------------------- readout helpers
def choice_readout(dyn: Network, states: np.ndarray, n_choices: Optional[int] = None) -> np.ndarray:
    """The choice each state's readout favours: ``argmax`` over the *choice* logits only (fixate left out).

    Args:
        dyn: The map with its readout (``W_out``; the first ``A - n_choices`` actions are not choices).
        states: ``(..., H)``.
        n_choices: Number of choices (default: the task's, else ``A - 1``).

    Returns:
        ``(...)`` int, the 0-based choice (choice ``k`` is action ``k + 1``); -1 everywhere without a readout or for
        non-finite states.

    Example:
        >>> dyn = Network(np.eye(2), np.eye(2), W_out=[[5.0, 5.0], [1.0, 0.0], [0.0, 1.0]])
        >>> choice_readout(dyn, np.array([[2.0, 1.0], [0.0, 3.0]])).tolist()   # fixate has the largest logit
        [0, 1]
    """
    states = np.asarray(states, dtype=np.float64)
    if not dyn.n_actions:
        return np.full(states.shape[:-1], -1, dtype=np.int64)
    k = n_choices if n_choices is not None else (dyn.config.n_choices if dyn.config is not None else dyn.n_actions - 1)
    with np.errstate(over="ignore", invalid="ignore"):
        logits = dyn.readout(np.nan_to_num(states, nan=0.0, posinf=0.0, neginf=0.0))
    out = np.argmax(logits[..., dyn.n_actions - k:], axis=-1).astype(np.int64)
    return np.where(np.isfinite(states).all(axis=-1), out, -1)


def attractor_label(kind: str, choice: int, n_choices: int = 2) -> str:
    """Short label of an attractor: kind abbreviation plus the choice it reads out.

    Two-choice tasks: ``+`` for choice 1 (favoured by positive signed coherence) and ``-`` for choice 2, e.g.
    ``FP+``/``FP-``, the decision fixed points; more choices: the choice number (``FP3``). No suffix when there is
    no choice (``choice < 0``: no readout, or a divergent attractor whose escape direction was not read).

    Example:
        >>> attractor_label("fixed_point", 0), attractor_label("quasi_periodic", 1), attractor_label("periodic", 2, 3)
        ('FP+', 'QP-', 'P3')
        >>> attractor_label("divergent", -1), attractor_label("divergent", 0)
        ('DIV', 'DIV+')
    """
    base = KIND_ABBREV[kind]
    if choice < 0:
        return base
    if n_choices == 2:
        return base + ("+" if choice == 0 else "-")
    return f"{base}{choice + 1}"


def fixed_point_exponents(
    W_rec: np.ndarray,
    patterns: np.ndarray,
    n_iter: int = 300,
    n_warmup: int = 60,
    seed: int = 0,
    dtype: Any = np.float32,
) -> np.ndarray:
    """``log rho(diag(p) W_rec)`` for many activation patterns at once, by batched power iteration.

    All patterns share ``W_rec``, so one ``(H, H) @ (H, F)`` product per iteration advances every vector; the
    estimate is the mean log growth of the renormalised vector after ``n_warmup`` iterations (the largest Lyapunov
    exponent of the linearisation). Its error is ``O(1 / n_iter)`` (a few 1e-3 for well-separated spectra, more
    when the two largest moduli are close); ``-inf`` when the active block is nilpotent (e.g. no active unit).

    Args:
        W_rec: ``(H, H)``.
        patterns: Active units, ``(F, H)`` bool.
        n_iter: Iterations averaged over.
        n_warmup: Iterations discarded first.
        seed: Seed of the start vectors.
        dtype: Arithmetic precision (float32 suffices for an estimate and is twice as fast).

    Returns:
        ``(F,)`` float64.

    Example:
        >>> W = np.diag([0.5, -0.9, 0.2])
        >>> fixed_point_exponents(W, np.array([[1, 1, 1], [1, 0, 1], [0, 0, 0]], bool)).round(4).tolist()
        [-0.1054, -0.6931, -inf]
    """
    P = np.asarray(patterns, dtype=bool)
    F, H = P.shape
    if F == 0:
        return np.zeros(0)
    W = np.asarray(W_rec, dtype=dtype)
    mask = P.T.astype(dtype)  # (H, F)
    V = np.abs(np.random.default_rng(seed).standard_normal((H, F))).astype(dtype) * mask
    V /= np.maximum(np.linalg.norm(V, axis=0), np.finfo(dtype).tiny)
    acc = np.zeros(F)
    dead = ~P.any(axis=1)
    for it in range(n_warmup + n_iter):
        V = (W @ V) * mask
        n = np.linalg.norm(V, axis=0)
        dead |= n == 0
        if it >= n_warmup:
            with np.errstate(divide="ignore"):
                acc += np.log(n.astype(np.float64))
        V /= np.where(n > 0, n, 1.0)
    out = acc / n_iter
    out[dead] = -np.inf
    return out


# ---------------------------------------------------------------------------------------------- basins
@dataclass
class DecisionBasins:
    """Which delay/decision-stage attractor each real trial's end-of-stimulus state falls into.

    Attributes:
        context: Each trial's context, ``(n,)``.
        coherence: Unsigned coherence of each stream, ``(n, S)``.
        signed: Signed coherence of each stream (two-choice tasks; NaN otherwise), ``(n, S)``.
        relevant: Unsigned coherence of the relevant stream, ``(n,)``.
        correct_choice: The correct choice (0-based), ``(n,)``.
        own_choice: The choice the network made in the trial (0-based; -1 if none), ``(n,)``.
        attractor: Row of the map's attractor table the state converged to, ``(n,)`` (-1: none).
        choice: The choice that attractor reads out (-1: none, e.g. divergent), ``(n,)``.

    Example:
        >>> b = dec.basins                                         # doctest: +SKIP
        >>> b.basin_match, b.basin_match_own_choice                # doctest: +SKIP
        (0.98, 0.99)
    """

    context: np.ndarray
    coherence: np.ndarray
    signed: np.ndarray
    relevant: np.ndarray
    correct_choice: np.ndarray
    own_choice: np.ndarray
    attractor: np.ndarray
    choice: np.ndarray

    def __len__(self) -> int:
        return int(len(self.context))

    @property
    def match(self) -> np.ndarray:
        """``(n,)`` bool: the basin's choice is the correct choice."""
        return self.choice == self.correct_choice

    @property
    def basin_match(self) -> float:
        """Fraction of trials whose end-of-stimulus state falls into an attractor of the correct choice."""
        return float(self.match.mean()) if len(self) else float("nan")

    @property
    def basin_match_own_choice(self) -> float:
        """Fraction of the trials in which the network chose whose basin reads out that same choice."""
        chose = self.own_choice >= 0
        return float((self.choice[chose] == self.own_choice[chose]).mean()) if chose.any() else float("nan")

    def by_coherence(self) -> dict[str, float]:
        """``basin_match`` per ``|relevant coherence|`` (keys as strings)."""
        rel = np.round(self.relevant, ROUND)
        return {coherence_key(c): float(self.match[rel == c].mean()) for c in np.unique(rel)}

    def arrays(self) -> dict[str, np.ndarray]:
        """The fields as arrays (for saving)."""
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


# ---------------------------------------------------------------------------------------------- the map
TABLE_COLUMNS = ("point", "context", "kind", "period", "lambda1", "lambda2", "basin_count", "basin_given", "choice",
                 "action", "norm", "converged", "transverse_stable")
"""Columns of :attr:`AttractorMap.table` (one row per distinct attractor)."""


@dataclass
class AttractorMap:
    """The attractors of a stage's map over a grid of inputs, with per-point and summary measures.

    Per-point arrays have :attr:`shape`: ``grid.shape`` for the stimulus stage, ``(n_contexts,)`` for the delay and
    decision stages.

    Attributes:
        stage: ``"stimulus"``, ``"delay"`` or ``"decision"``.
        contexts: Context indices, ``(n_contexts,)``.
        grid: The :class:`StimulusGrid` (stimulus stage; ``None`` otherwise).
        n_attractors: Distinct attractors per point (multistability count), int.
        dominant: Index into :data:`~analysis.dynamics.attractors.KINDS` of the kind whose attractors collect the most initial
            states (ties: the earlier kind in ``KINDS``), int.
        kind_counts: Distinct attractors of each kind per point, ``shape + (len(KINDS),)`` int.
        basin_fraction: Fraction of the point's initial states ending on each kind, ``shape + (len(KINDS),)``.
        lambda1_max: The largest ``lambda_1`` among the point's attractors (NaN if all diverge).
        lambda1_dominant: ``lambda_1`` of the attractor with the largest basin.
        table: One row per distinct attractor (:data:`TABLE_COLUMNS`): ``point`` (flat index into :attr:`shape`),
            ``context``, ``kind`` (index into ``KINDS``), ``period`` (0 if none), ``lambda1``, ``lambda2``,
            ``basin_count`` (initial states reaching it), ``basin_given`` (of which observed/trial states),
            ``choice`` (:func:`choice_readout` at the fixed point, or the most frequent along the orbit; -1: none),
            ``action`` (greedy action including fixate; -1: none), ``norm`` (``|mean state|``), ``converged``,
            ``transverse_stable`` (-1 unknown, 0, 1).
        states: Mean state of each attractor, ``(n_attractors_total, H)`` float32 (the fixed point itself for fixed
            points).
        basins: The trials' :class:`DecisionBasins` (delay/decision stages with trials; else ``None``).
        settings: How the map was computed (grid, initial states, thresholds, seed).
        info: About the network (model path, learning rule, env steps) and the wall time.
        attractors: The :class:`~analysis.dynamics.attractors.Attractor` objects per point (flat), when computed in this
            process (``None`` after :meth:`load`).

    Example:
        >>> amap = attractor_map(dyn, grid=5, n_init=8, progress=False)          # doctest: +SKIP
        >>> amap.qp_present.shape, amap.summary()["qp_fraction_by_coherence"]   # doctest: +SKIP
        ((2, 5, 5), {'0': 1.0, '0.2': 1.0, '0.4': 0.0})
    """

    stage: str
    contexts: np.ndarray
    grid: Optional[StimulusGrid]
    n_attractors: np.ndarray
    dominant: np.ndarray
    kind_counts: np.ndarray
    basin_fraction: np.ndarray
    lambda1_max: np.ndarray
    lambda1_dominant: np.ndarray
    table: dict[str, np.ndarray]
    states: np.ndarray
    basins: Optional[DecisionBasins] = None
    settings: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    attractors: Optional[list[list[Attractor]]] = field(default=None, repr=False)

    # ------------------------------------------------------------------ shapes and grids
    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the per-point arrays."""
        return tuple(self.n_attractors.shape)

    @property
    def n_points(self) -> int:
        """Number of inputs mapped."""
        return int(self.n_attractors.size)

    @property
    def qp_present(self) -> np.ndarray:
        """Whether a point has a quasi-periodic attractor (bool, :attr:`shape`)."""
        return self.kind_counts[..., QP] > 0

    @property
    def n_choices(self) -> int:
        """Number of choices of the task (2 if unknown)."""
        return int(self.settings.get("n_choices", 2))

    def point_values(self) -> dict[str, np.ndarray]:
        """Per flat point: ``context``, and for the stimulus stage also ``coherence``, ``direction``, ``signed``,
        ``relevant`` (see :meth:`StimulusGrid.points`)."""
        if self.grid is not None:
            return self.grid.points()
        return dict(context=self.contexts.copy())

    def labels(self) -> np.ndarray:
        """:func:`attractor_label` of every table row, ``(n,)`` str."""
        return np.array([attractor_label(KINDS[k], int(c), self.n_choices)
                         for k, c in zip(self.table["kind"], self.table["choice"])], dtype=object)

    def rows(self) -> list[dict[str, Any]]:
        """The attractor table as dicts (CSV rows), with the kind's name, the label and the point's coordinates
        (``c1, c2, ...`` signed coherences for two-choice tasks, else ``coh1, dir1, ...``; ``relevant``)."""
        pv = self.point_values()
        t = self.table
        labels = self.labels()
        out = []
        for r in range(len(t["kind"])):
            p = int(t["point"][r])
            row: dict[str, Any] = {"stage": self.stage}
            if self.grid is not None:
                for s in range(self.grid.n_streams):
                    if self.grid.n_choices == 2:
                        row[f"c{s + 1}"] = float(pv["signed"][p, s])
                    else:
                        row[f"coh{s + 1}"] = float(pv["coherence"][p, s])
                        row[f"dir{s + 1}"] = int(pv["direction"][p, s])
                row["relevant"] = float(pv["relevant"][p])
            row.update(
                context=int(t["context"][r]), kind=KINDS[int(t["kind"][r])], label=labels[r],
                period=int(t["period"][r]) or "", lambda1=float(t["lambda1"][r]), lambda2=float(t["lambda2"][r]),
                basin_count=int(t["basin_count"][r]), basin_given=int(t["basin_given"][r]),
                choice=int(t["choice"][r]), action=int(t["action"][r]), norm=float(t["norm"][r]),
                converged=bool(t["converged"][r]), transverse_stable=int(t["transverse_stable"][r]),
            )
            out.append(row)
        return out

    # ------------------------------------------------------------------ summary numbers
    def kind_fractions(self, reachable: bool = True, rows: Optional[np.ndarray] = None) -> dict[str, float]:
        """The fraction of every kind in :data:`~analysis.dynamics.attractors.KINDS`: the bounded kinds (fixed
        point, periodic, quasi-periodic, chaotic) of the bounded weight, divergent and unresolved of all of it (NaN
        without weight).

        Args:
            reachable: Weight each attractor by the trial-visited states in its basin (``basin_given``; the
                headline ``qp_fraction_reachable``), else count distinct attractors once each.
            rows: Only these attractors (bool mask over :attr:`table`; default all).
        """
        w, k = self._weights(rows, reachable)
        total, bounded = w.sum(), w[np.isin(k, BOUNDED)].sum()
        return {name: _ratio(w[k == i].sum(), bounded if i in BOUNDED else total) for i, name in enumerate(KINDS)}

    def _weights(self, rows: Optional[np.ndarray], reachable: bool) -> tuple[np.ndarray, np.ndarray]:
        """Each attractor's weight (its trial-visited basin states, or 1; 0 outside ``rows``) and its kind."""
        t = self.table
        w = (t["basin_given"] if reachable else np.ones(len(t["kind"]))).astype(float)
        if rows is not None:
            w = w * rows
        return w, t["kind"]

    def _fractions(self, rows: Optional[np.ndarray] = None, reachable: bool = False) -> dict[str, float]:
        """QP fraction of the bounded attractors among ``rows`` (bool mask; default all), and the divergent and
        unresolved fractions of all of them (:meth:`kind_fractions`), with their total weight."""
        f = self.kind_fractions(reachable, rows)
        return dict(qp=f[KINDS[QP]], divergent=f[KINDS[DIV]], unresolved=f[KINDS[UNRESOLVED]],
                    weight=float(self._weights(rows, reachable)[0].sum()))

    def _group_fraction(self, group_of_point: np.ndarray, reachable: bool = False) -> dict[str, float]:
        """QP fraction per group of points (keys: the rounded group value)."""
        g = np.round(group_of_point, ROUND)
        rows_g = g[self.table["point"]]
        return {coherence_key(v): self._fractions(rows_g == v, reachable)["qp"] for v in np.unique(g)}

    def _halves(self, rel: np.ndarray, reachable: bool = False) -> tuple[float, float, list[float], list[float]]:
        """QP fraction over the points in the low and high halves of the ``|relevant coherence|`` levels."""
        levels = np.unique(np.round(rel, ROUND))
        h = len(levels) // 2
        if h == 0:
            return float("nan"), float("nan"), [], []
        low, high = levels[:h], levels[len(levels) - h:]
        rows_rel = np.round(rel, ROUND)[self.table["point"]]
        lo = self._fractions(np.isin(rows_rel, low), reachable)["qp"]
        hi = self._fractions(np.isin(rows_rel, high), reachable)["qp"]
        return lo, hi, low.tolist(), high.tolist()

    def summary(self) -> dict[str, Any]:
        """The map's numbers (:meth:`to_dict` gives them as strict JSON, with NaN as ``None``).

        Keys: ``stage``, ``n_points``, ``n_attractors`` (distinct attractors over all points), ``counts`` (per kind),
        ``qp_fraction_reachable`` (the headline: the fraction of the trial-visited initial states whose bounded
        attractor is quasi-periodic, pooled over points; states that diverge or stay unresolved are left out of the
        denominator and reported as ``divergent_fraction_reachable`` and ``unresolved_fraction_reachable`` of all
        trial-visited states; ``n_reachable_states``), ``qp_fraction`` (QP attractors / bounded distinct attractors,
        over points x attractors, from random and trial-visited states alike: the paper's count, secondary),
        ``divergent_fraction`` and ``unresolved_fraction`` (of all distinct attractors),
        ``qp_point_fraction`` (points with a QP attractor), ``qp_basin_fraction`` (initial states ending on one),
        ``dominant_counts`` (points per dominant kind), ``multistability`` (histogram: number of attractors ->
        points), ``mean_multistability``, ``multistable_fraction``, ``lambda1`` (max and mean over non-stationary
        attractors, max over points), ``unconverged`` (provisional labels), ``qp_fraction_by_context``. Stimulus
        stage also: ``qp_fraction_by_coherence`` (per ``|relevant coherence|``), ``qp_fraction_by_stream_coherence``
        (per ``|coherence|`` of each stream), ``qp_fraction_low_coherence`` / ``qp_fraction_high_coherence`` (the
        lower and upper halves of the ``|relevant coherence|`` levels; with an odd number of levels the middle
        one is in neither), the same trial-weighted (``qp_fraction_reachable_by_coherence``,
        ``qp_fraction_reachable_low_coherence`` / ``_high_coherence``), ``low_coherence_levels`` / ``high_coherence_levels``, ``lambda1_by_coherence`` (mean
        ``lambda_1`` of the dominant attractor per ``|relevant coherence|``). Delay/decision stages also:
        ``decision_attractors`` (one entry per attractor: context, label, kind, choice, trials in its basin, norm,
        ``lambda_1``), and with trials ``basin_match``, ``basin_match_own_choice``, ``basin_match_by_coherence``,
        ``n_trials``.
        """
        t = self.table
        kind = t["kind"]
        n = int(len(kind))
        counts = {k: int((kind == i).sum()) for i, k in enumerate(KINDS)}
        hist = np.bincount(self.n_attractors.ravel())
        nonstat = ~np.isin(kind, [FP, DIV])
        lam = t["lambda1"][nonstat]
        lam = lam[np.isfinite(lam)]
        lmax = self.lambda1_max[np.isfinite(self.lambda1_max)]
        total = self.basin_fraction.reshape(-1, len(KINDS))
        pv = self.point_values()
        reach, every = self._fractions(reachable=True), self._fractions()
        out: dict[str, Any] = dict(
            stage=self.stage,
            n_points=self.n_points,
            n_attractors=n,
            counts=counts,
            qp_fraction_reachable=reach["qp"],
            divergent_fraction_reachable=reach["divergent"],
            unresolved_fraction_reachable=reach["unresolved"],
            n_reachable_states=int(reach["weight"]),
            qp_fraction=every["qp"],
            divergent_fraction=every["divergent"],
            unresolved_fraction=every["unresolved"],
            qp_point_fraction=float(self.qp_present.mean()) if self.n_points else float("nan"),
            qp_basin_fraction=float(total[:, QP].mean()) if self.n_points else float("nan"),
            dominant_counts={k: int((self.dominant == i).sum()) for i, k in enumerate(KINDS)},
            multistability={str(k): int(v) for k, v in enumerate(hist) if v},
            mean_multistability=float(self.n_attractors.mean()) if self.n_points else float("nan"),
            multistable_fraction=float((self.n_attractors > 1).mean()) if self.n_points else float("nan"),
            lambda1=dict(max_non_stationary=float(lam.max()) if lam.size else None,
                         mean_non_stationary=float(lam.mean()) if lam.size else None,
                         max_over_points=float(lmax.max()) if lmax.size else None),
            unconverged=int((~t["converged"].astype(bool)).sum()),
            qp_fraction_by_context=self._group_fraction(pv["context"].astype(float)),
        )
        if self.grid is not None:
            rel = pv["relevant"]
            out["qp_fraction_by_coherence"] = self._group_fraction(rel)
            out["qp_fraction_by_stream_coherence"] = {
                f"stream{s + 1}": self._group_fraction(pv["coherence"][:, s]) for s in range(self.grid.n_streams)
            }
            lo, hi, lo_lv, hi_lv = self._halves(rel)
            out.update(qp_fraction_low_coherence=lo, qp_fraction_high_coherence=hi,
                       low_coherence_levels=lo_lv, high_coherence_levels=hi_lv)
            out["qp_fraction_reachable_by_coherence"] = self._group_fraction(rel, reachable=True)
            lo, hi, _, _ = self._halves(rel, reachable=True)
            out.update(qp_fraction_reachable_low_coherence=lo, qp_fraction_reachable_high_coherence=hi)
            ld = self.lambda1_dominant.ravel()
            rr = np.round(rel, ROUND)
            out["lambda1_by_coherence"] = {
                coherence_key(v): float(np.mean(ld[(rr == v) & np.isfinite(ld)])) if ((rr == v) & np.isfinite(ld)).any()
                else None for v in np.unique(rr)
            }
        else:
            labels = self.labels()
            out["decision_attractors"] = [
                dict(context=int(t["context"][r]), label=str(labels[r]), kind=KINDS[int(t["kind"][r])],
                     choice=int(t["choice"][r]), action=int(t["action"][r]), trials=int(t["basin_given"][r]),
                     basin_count=int(t["basin_count"][r]), norm=float(t["norm"][r]), lambda1=float(t["lambda1"][r]))
                for r in range(n)
            ]
        if self.basins is not None:
            b = self.basins
            out.update(n_trials=len(b), basin_match=b.basin_match, basin_match_own_choice=b.basin_match_own_choice,
                       basin_match_by_coherence=b.by_coherence())
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: :meth:`summary` plus ``grid``, ``contexts``, ``settings`` and ``info``."""
        d = self.summary()
        d.update(grid=None if self.grid is None else self.grid.to_dict(), contexts=self.contexts.tolist(),
                 settings=self.settings, info=self.info)
        return json_safe(d)

    # ------------------------------------------------------------------ persistence
    def default_name(self) -> str:
        """``attractor_map`` (stimulus stage) or ``attractor_map_<stage>``."""
        return "attractor_map" if self.stage == "stimulus" else f"attractor_map_{self.stage}"

    def save(self, out_dir: PathLike, name: Optional[str] = None) -> Path:
        """Write ``<name>.json`` (:meth:`to_dict`) and ``<name>.npz`` (the arrays) into ``out_dir``.

        The npz holds ``coherences`` (the grid axis; empty for delay/decision maps), ``directions``,
        ``contexts``, ``kinds``, the per-point arrays (``qp_present`` ``(n_contexts, n_grid, n_grid)`` for a
        two-stream task, ``dominant``, ``n_attractors``, ``kind_counts``, ``basin_fraction``, ``lambda1_max``,
        ``lambda1_dominant``), the table as ``att_<column>``, ``att_states`` and the basins as ``basins_<field>``.

        Args:
            out_dir: Folder (created if needed).
            name: File stem (default :meth:`default_name`).

        Returns:
            The npz path.

        Example:
            >>> amap.save("out")   # out/attractor_map.json, out/attractor_map.npz      # doctest: +SKIP
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        name = name or self.default_name()
        arrays: dict[str, np.ndarray] = dict(
            coherences=self.grid.axis if self.grid is not None else np.zeros(0),
            directions=self.grid.direction if self.grid is not None else np.zeros(0, dtype=np.int64),
            contexts=self.contexts, kinds=np.array(KINDS), qp_present=self.qp_present, dominant=self.dominant,
            n_attractors=self.n_attractors, kind_counts=self.kind_counts, basin_fraction=self.basin_fraction,
            lambda1_max=self.lambda1_max, lambda1_dominant=self.lambda1_dominant,
            att_states=self.states.astype(np.float32),
        )
        arrays.update({f"att_{k}": v for k, v in self.table.items()})
        if self.basins is not None:
            arrays.update({f"basins_{k}": v for k, v in self.basins.arrays().items()})
        path = out / f"{name}.npz"
        np.savez_compressed(path, **arrays)
        meta = self.to_dict()
        meta["stage"] = self.stage
        write_json(out / f"{name}.json", meta)
        return path

    @classmethod
    def load(cls, path: PathLike, stage: str = "stimulus") -> "AttractorMap":
        """Read a map written by :meth:`save`.

        Args:
            path: The folder (the map of ``stage`` is read: ``attractor_map.npz`` or ``attractor_map_<stage>.npz``)
                or the ``.npz``/``.json`` file itself.
            stage: Which map to read from a folder.

        Returns:
            The map (``attractors`` is ``None``: the Attractor objects are not saved).

        Example:
            >>> AttractorMap.load("out").summary()["qp_fraction"]      # doctest: +SKIP
            0.31
        """
        p = Path(path)
        if p.is_dir():
            p = p / ("attractor_map" if stage == "stimulus" else f"attractor_map_{stage}")
        stem = p.with_suffix("") if p.suffix in (".npz", ".json") else p
        meta = json.loads(stem.with_suffix(".json").read_text())
        with np.load(stem.with_suffix(".npz"), allow_pickle=False) as z:
            arr = {k: z[k] for k in z.files}
        if tuple(arr["kinds"].tolist()) != KINDS:
            raise ValueError(f"{p}: saved with kinds {arr['kinds'].tolist()}, expected {list(KINDS)}")
        basins = None
        if any(k.startswith("basins_") for k in arr):
            basins = DecisionBasins(**{f: arr[f"basins_{f}"] for f in DecisionBasins.__dataclass_fields__})
        return cls(
            stage=meta["stage"],
            contexts=arr["contexts"],
            grid=StimulusGrid.from_dict(meta["grid"]) if meta.get("grid") else None,
            n_attractors=arr["n_attractors"],
            dominant=arr["dominant"],
            kind_counts=arr["kind_counts"],
            basin_fraction=arr["basin_fraction"],
            lambda1_max=arr["lambda1_max"],
            lambda1_dominant=arr["lambda1_dominant"],
            table={c: arr[f"att_{c}"] for c in TABLE_COLUMNS},
            states=arr["att_states"],
            basins=basins,
            settings=meta.get("settings", {}),
            info=meta.get("info", {}),
        )


# ---------------------------------------------------------------------------------------------- building a map
def _as_dynamics(obj: Any) -> tuple[Network, Any]:
    """``(network, policy or None)`` from a path, a loaded model / policy, or a :class:`~analysis.network.Network`.

    When an ``agents.RNNPolicy`` is at hand, trials run through it in torch (the exact states of the policy in
    SB3). Any other recurrent policy becomes a :class:`~analysis.dynamics.generic.TorchDynamics` (whose
    ``forward`` gives the full states, ``(h, c)`` for an LSTM)."""
    from analysis.dynamics import generic

    if isinstance(obj, (Network, generic.TorchDynamics)):
        return obj, None
    import agents

    model = agents.load_model(obj, rnn_only=False) if isinstance(obj, (str, os.PathLike)) else obj
    if not isinstance(getattr(model, "policy", model), agents.RNNPolicy):  # any other recurrent policy
        return generic.load_dynamics(obj), None
    net = Network.from_policy(model)
    if isinstance(obj, (str, os.PathLike)):
        net.metadata["path"] = os.fspath(obj)
    return net, model


def _get_rollout(dyn: Network, source: Any, trials: Union[int, "TrialBatch"], seed: int) -> Rollout:
    """Trials run through the policy (exact SB3 states) when there is one, else through the float64 map."""
    from dm_envs import sample_trials

    if isinstance(trials, (int, np.integer)):
        trials = sample_trials(dyn.config, int(trials), np.random.default_rng(seed), noise=True)
    if source is not None:
        from analysis.network import rollout

        return rollout(source, trials)
    return dyn.forward(trials)


def _observed_states(run: Rollout, contexts: np.ndarray, n: int, seed: int, where: str = "stimulus") -> np.ndarray:
    """``(n_contexts, m, H)`` states that trials of each context visit (``m <= n``: the smallest count).

    ``where="stimulus"``: states drawn uniformly from every step of the stimulus stage of the context's trials (what
    the stimulus-stage map acts on in real trials); ``"onset"``: the states at stimulus onset, one per trial."""
    from dm_envs import STAGES

    if where not in OBSERVED_FROM:
        raise ValueError(f"observed_from must be one of {OBSERVED_FROM}, got {where!r}")
    ctx = np.asarray(run.trials.context)
    rng = np.random.default_rng([seed, 0x0B5])
    sid = STAGES.index("stimulus")
    onset, dur = run.trials.onset[:, sid], np.maximum(run.trials.duration[:, sid], 1)
    if where == "onset":
        dur = np.ones_like(dur)
    trial = np.repeat(np.arange(len(ctx)), dur)  # one entry per visited (trial, step)
    step = np.clip(onset[trial] + np.arange(len(trial)) - np.repeat(np.cumsum(dur) - dur, dur), 0,
                   run.hidden.shape[1] - 1)
    per = [np.flatnonzero(ctx[trial] == k) if (ctx == k).any() else np.arange(len(trial)) for k in contexts]
    m = min(n, min(len(p) for p in per))
    picks = [np.sort(rng.choice(p, m, replace=False)) for p in per]
    return np.stack([run.hidden[trial[p], step[p]].astype(np.float64) for p in picks])


def _orbit_choice(dyn: Network, a: Attractor, n_choices: int) -> int:
    if a.kind == "divergent" or not dyn.n_actions:
        return -1
    ch = choice_readout(dyn, a.orbit, n_choices)
    ch = ch[ch >= 0]
    return int(np.bincount(ch).argmax()) if ch.size else -1


def _escape_states(
    dyn: Network, x: np.ndarray, h0: np.ndarray, divergence_norm: float, max_steps: int
) -> np.ndarray:
    """Iterate ``h0 (m, H)`` until each state's norm exceeds ``divergence_norm`` (at most ``max_steps`` steps);
    the states at that moment (NaN rows for states that did not escape)."""
    c = dyn.drive(x)
    h = np.array(h0, dtype=np.float64)
    out = np.full_like(h, np.nan)
    live = np.arange(len(h))
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(max_steps):
            if not live.size:
                break
            h_new = np.maximum(h[live] @ dyn.W_rec.T + c, 0.0)
            norm = np.linalg.norm(h_new, axis=1)
            esc = norm > divergence_norm  # checked every step, so the escaping state is still finite
            out[live[esc]] = np.where(np.isfinite(h_new[esc]), h_new[esc], np.nan)
            h[live] = h_new
            live = live[~esc & np.isfinite(norm)]
    return out


def _split_divergent(
    dyn: Network, x: np.ndarray, atts: list[Attractor], h0: np.ndarray, n_choices: int, kw: dict[str, Any]
) -> tuple[list[Attractor], list[Optional[int]]]:
    """Split each divergent attractor by the choice its members' escape directions read out.

    ``find_attractors`` pools every diverging trajectory of an input into one ``divergent`` attractor. A network may
    hold its decision by runaway activity along a choice-specific direction; for decision basins that direction
    matters, so the members are iterated again from their initial states ``h0`` until they cross the divergence
    threshold and grouped by :func:`choice_readout` of that state (where the readout's bias is negligible).
    """
    import inspect

    if dyn.W_out is None or not any(a.kind == "divergent" for a in atts):
        return atts, [None] * len(atts)
    defaults = inspect.signature(find_attractors).parameters
    div_norm = float(kw.get("divergence_norm", defaults["divergence_norm"].default))
    max_steps = int(kw.get("n_transient", defaults["n_transient"].default)) + int(
        kw.get("n_record", defaults["n_record"].default)) * (1 + int(kw.get("max_extensions",
                                                                            defaults["max_extensions"].default)))
    out: list[tuple[Attractor, Optional[int]]] = []
    for a in atts:
        if a.kind != "divergent":
            out.append((a, None))
            continue
        esc = _escape_states(dyn, x, h0[a.members], div_norm, max_steps)
        ch = choice_readout(dyn, esc, n_choices)
        for c in np.unique(ch):
            sel = ch == c
            hs = esc[sel] if c >= 0 else a.state[None]
            state = hs.mean(axis=0)
            out.append((replace(a, members=a.members[sel], basin_count=int(sel.sum()), state=state, mean=state,
                                orbit=state[None]), int(c)))
    out.sort(key=lambda t: (-t[0].basin_count, KINDS.index(t[0].kind), t[0].norm))
    return [a for a, _ in out], [c for _, c in out]


def _tabulate(
    dyn: Network,
    atts: list[list[Attractor]],
    shape: tuple[int, ...],
    point_context: np.ndarray,
    n_given: Sequence[int],
    n_choices: int,
    exact_fp_exponents: bool,
    seed: int,
    choices: Optional[list[list[Optional[int]]]] = None,
) -> dict[str, Any]:
    """Per-point arrays, the attractor table and the mean states, from ``find_attractors``' output (``choices``:
    per attractor, a choice that overrides the readout, or ``None``)."""
    K = len(KINDS)
    N = len(atts)
    flat = [(p, a) for p, point in enumerate(atts) for a in point]
    n = len(flat)
    kind = np.array([KINDS.index(a.kind) for _, a in flat], dtype=np.int64)
    lam = np.full((n, 2), np.nan)
    fp_rows = np.flatnonzero(kind == FP)
    if exact_fp_exponents or getattr(dyn, "W_rec", None) is None:  # smooth maps: from the fixed point's spectrum
        for r in fp_rows:
            lv = flat[r][1].lyapunov
            lam[r, : min(2, lv.size)] = lv[:2]
    elif fp_rows.size:
        pats = np.stack([flat[r][1].pattern for r in fp_rows])
        lam[fp_rows, 0] = fixed_point_exponents(dyn.W_rec, pats, seed=seed)
    for r, (_, a) in enumerate(flat):
        if a.kind not in ("fixed_point", "divergent") and a.lyapunov_estimate is not None:
            lv = np.asarray(a.lyapunov_estimate)
            lam[r, : min(2, lv.size)] = lv[:2]
    states = np.stack([a.mean for _, a in flat]) if n else np.zeros((0, dyn.hidden_size))
    with np.errstate(over="ignore", invalid="ignore"):
        norms = np.array([a.norm for _, a in flat])
    has_out = dyn.n_actions > 0
    table = dict(
        point=np.array([p for p, _ in flat], dtype=np.int64),
        context=point_context[[p for p, _ in flat]].astype(np.int64) if n else np.zeros(0, dtype=np.int64),
        kind=kind,
        period=np.array([a.period or 0 for _, a in flat], dtype=np.int64),
        lambda1=lam[:, 0],
        lambda2=lam[:, 1],
        basin_count=np.array([a.basin_count for _, a in flat], dtype=np.int64),
        basin_given=np.array([int((a.members < n_given[p]).sum()) for p, a in flat], dtype=np.int64),
        choice=np.array([_orbit_choice(dyn, a, n_choices) if a.kind != "fixed_point" else
                         int(choice_readout(dyn, a.state, n_choices)) for _, a in flat], dtype=np.int64),
        action=np.array([a.decision if (has_out and a.decision is not None) else -1 for _, a in flat],
                        dtype=np.int64),
        norm=norms,
        converged=np.array([a.converged for _, a in flat], dtype=bool),
        transverse_stable=np.array([-1 if a.transverse_stable is None else int(a.transverse_stable)
                                    for _, a in flat], dtype=np.int8),
    )
    if choices is not None:
        over = [c for point in choices for c in point]
        for r, c in enumerate(over):
            if c is not None:
                table["choice"][r] = c
    n_att = np.bincount(table["point"], minlength=N)
    kind_counts = np.zeros((N, K), dtype=np.int64)
    np.add.at(kind_counts, (table["point"], kind), 1)
    basin = np.zeros((N, K))
    np.add.at(basin, (table["point"], kind), table["basin_count"])
    basin /= np.maximum(basin.sum(axis=1, keepdims=True), 1)
    dominant = np.where(n_att > 0, np.argmax(basin, axis=1), -1)
    lmax = np.full(N, np.nan)
    ldom = np.full(N, np.nan)
    for p in range(N):
        sel = np.flatnonzero(table["point"] == p) if n else np.zeros(0, dtype=np.int64)
        if sel.size:
            ldom[p] = lam[sel[np.argmax(table["basin_count"][sel])], 0]  # rows come sorted by basin already
            finite = lam[sel, 0][~np.isnan(lam[sel, 0])]
            lmax[p] = finite.max() if finite.size else np.nan
    return dict(
        n_attractors=n_att.reshape(shape), dominant=dominant.reshape(shape),
        kind_counts=kind_counts.reshape(shape + (K,)), basin_fraction=basin.reshape(shape + (K,)),
        lambda1_max=lmax.reshape(shape), lambda1_dominant=ldom.reshape(shape), table=table,
        states=states.astype(np.float32),
    )


def attractor_map(
    path_or_dyn: Any,
    grid: Union[int, Sequence[float], np.ndarray] = 21,
    stage: str = "stimulus",
    *,
    n_init: int = 32,
    seed: int = 0,
    observed: bool = True,
    n_observed: int = 16,
    observed_from: str = "stimulus",
    trials: Union[int, "TrialBatch"] = 256,
    rollout: Optional[Rollout] = None,
    exact_fp_exponents: bool = False,
    progress: bool = True,
    **attractor_kwargs: Any,
) -> AttractorMap:
    """The attractors of a stage's map over the stimulus space (stimulus stage) or per context (delay/decision).

    **Stimulus stage.** One input per point of :func:`stimulus_grid` ``(config, grid)``: every context, every
    combination of the streams' coherences (one-stream tasks: a 1-D grid; ``K > 2`` choices: coherence x direction
    per stream, see :class:`StimulusGrid`). Initial states per input: ``n_observed`` states that real trials of the
    point's context visit during the stimulus stage (``observed=True``; the same states for every point of a
    context; they weight the headline ``qp_fraction_reachable``) plus
    ``n_init`` random states ``|N(0, s^2)|`` (``s``: the RMS of the observed states, see
    :func:`~analysis.dynamics.attractors.find_attractors`).

    **Delay / decision stage.** One input per context (the stage's noise-free input). Initial states: the
    end-of-stimulus states of every real trial of that context plus ``n_init`` random states (which only help find
    attractors; basins count trials). Each trial is assigned the attractor its state converges to
    (:class:`DecisionBasins`); attractors are labelled by the readout over the choices (:func:`attractor_label`:
    ``FP+``/``FP-``). Diverging orbits are grouped by the choice their state reads out when it crosses
    ``divergence_norm`` (``DIV+``/``DIV-``: one attractor per escape direction).

    Args:
        path_or_dyn: A saved model zip, a loaded model / ``agents.RNNPolicy``, or an :class:`Network` with a
            task config (trials then run through the float64 map, :func:`rollout_dynamics`). Any other
            sb3-contrib recurrent policy (a stock ``MlpLstmPolicy``, a GRU core), or a
            :class:`~analysis.dynamics.generic.TorchDynamics`, is mapped by the generic path
            (:func:`analysis.dynamics.generic.find_attractors`; same kinds, thresholds and summary).
        grid: Grid size or values (see :func:`stimulus_grid`); ignored for the delay/decision stages.
        stage: ``"stimulus"``, ``"delay"`` or ``"decision"``.
        n_init: Random initial states per input.
        seed: Seed of the trials, the choice of observed states, the random states and the Lyapunov frames.
        observed: Stimulus stage: include observed stimulus-onset states.
        n_observed: How many observed states per input (at most the number of trials of the context).
        observed_from: ``"stimulus"`` (default): drawn from every step of the stimulus stage; ``"onset"``: the
            states at stimulus onset (before issue 10's trial-reachable fraction, the only choice).
        trials: Number of trials to draw from the model's task (with noise), or a ``dm_envs.TrialBatch``.
        rollout: A precomputed :class:`~analysis.network.Rollout` of the network (reused across stages; overrides
            ``trials``).
        exact_fp_exponents: Fixed points' ``lambda_1`` from the Jacobian's eigenvalues instead of the batched power
            iteration (:func:`fixed_point_exponents`); slower (one eigendecomposition per fixed point).
        progress: Show a progress bar (initial states resolved).
        **attractor_kwargs: Passed to :func:`~analysis.dynamics.attractors.find_attractors` (``n_transient``, ``n_record``,
            ``lyap_eps``, ``merge_tol``, ... : every classification threshold).

    Returns:
        The :class:`AttractorMap`.

    Raises:
        ValueError: unknown stage, or a network without a task config.

    Example:
        >>> amap = attractor_map("runs/rl_seed0/final_model.zip", grid=21, n_init=32)    # doctest: +SKIP
        >>> s = amap.summary()                                                           # doctest: +SKIP
        >>> s["qp_fraction"], s["qp_fraction_low_coherence"], s["qp_fraction_high_coherence"]  # doctest: +SKIP
        (0.31, 0.52, 0.08)
        >>> dec = attractor_map("runs/rl_seed0/final_model.zip", stage="decision")     # doctest: +SKIP
        >>> [a["label"] for a in dec.summary()["decision_attractors"]]                 # doctest: +SKIP
        ['FP+', 'FP-', 'FP-', 'FP+']
    """
    if stage not in MAP_STAGES:
        raise ValueError(f"stage must be one of {MAP_STAGES}, got {stage!r}")
    t0 = time.perf_counter()
    dyn, source = _as_dynamics(path_or_dyn)
    cfg = dyn.config
    if cfg is None:
        raise ValueError("the network carries no task config (save it with the trainers, or pass config= to "
                         "Network)")
    n_init = int(n_init)
    exact = isinstance(dyn, Network)
    if exact:
        finder = find_attractors
    else:
        from analysis.dynamics.generic import find_attractors as finder
    need_trials = stage != "stimulus" or (observed and n_observed > 0)
    run = rollout
    if run is None and need_trials:
        run = _get_rollout(dyn, source, trials, seed)
    contexts = contexts_of(cfg)
    kw = dict(attractor_kwargs)
    basins: Optional[DecisionBasins] = None
    if stage == "stimulus":
        g, point_ctx, atts, shape, n_given = _stimulus_attractors(
            dyn, finder, run, grid, contexts, n_init, seed, observed, n_observed, observed_from, progress, kw)
    else:
        g = None
        point_ctx, shape = contexts, (len(contexts),)
        atts, n_given, members_of, choices = _context_attractors(dyn, finder, exact, run, stage, contexts, n_init,
                                                                 seed, progress, kw)
    tab = _tabulate(dyn, atts, shape, point_ctx, n_given, int(cfg.n_choices), exact_fp_exponents, seed,
                    choices=None if stage == "stimulus" else choices)
    if stage != "stimulus":
        basins = _decision_basins(dyn, run, atts, n_given, members_of, tab["table"]["choice"])
    settings = dict(
        stage=stage, grid=None if g is None else g.axis.tolist(), n_init=n_init, seed=int(seed),
        observed=bool(observed) if stage == "stimulus" else None,
        observed_from=observed_from if stage == "stimulus" else None,
        n_given=int(n_given[0]) if stage == "stimulus" and n_given else None,
        n_trials=None if run is None else len(run.trials), n_choices=int(cfg.n_choices),
        exact_fp_exponents=bool(exact_fp_exponents), find_attractors=json_safe(kw),
    )
    info = dict(
        model=dyn.metadata.get("path"), learning_rule=dyn.metadata.get("learning_rule"),
        env_steps=dyn.metadata.get("env_steps"), hidden_size=dyn.hidden_size, task=getattr(cfg, "name", None),
        dynamics="relu_exact" if exact else f"generic_{dyn.kind}",
        wall_time_s=round(time.perf_counter() - t0, 3),
    )
    return AttractorMap(stage=stage, contexts=np.asarray(contexts, dtype=np.int64), grid=g, basins=basins,
                        settings=settings, info=info, attractors=atts, **tab)


def _stimulus_attractors(
    dyn: Any, finder: Any, run: Optional[Rollout], grid: Any, contexts: np.ndarray, n_init: int, seed: int,
    observed: bool, n_observed: int, observed_from: str, progress: bool, kw: dict[str, Any],
) -> tuple[StimulusGrid, np.ndarray, list, tuple[int, ...], list[int]]:
    """The stimulus stage of :func:`attractor_map`: the attractors at every grid point, started from the states
    trials of the point's context visit (if ``observed``) and ``n_init`` random ones. Returns ``(grid, context per
    point, attractors per point, shape, given states per point)``."""
    cfg = dyn.config
    g = stimulus_grid(cfg, grid)
    X = g.inputs(cfg)
    point_ctx = g.points()["context"]
    init = None
    if run is not None and observed and n_observed > 0:
        per_ctx = _observed_states(run, contexts, int(n_observed), seed, observed_from)
        init = per_ctx[np.searchsorted(contexts, point_ctx)]
    n_obs = 0 if init is None else init.shape[1]
    if n_obs == 0 and n_init == 0:
        raise ValueError("no initial states: n_init = 0 and no observed states")
    atts = finder(dyn, X, n_init=n_init, seed=seed, init_states=init, progress=progress, **kw)
    return g, point_ctx, atts, g.shape, [n_obs] * len(X)


def _context_attractors(
    dyn: Any, finder: Any, exact: bool, run: Rollout, stage: str, contexts: np.ndarray, n_init: int, seed: int,
    progress: bool, kw: dict[str, Any],
) -> tuple[list, list[int], list[np.ndarray], list]:
    """The delay or decision stage of :func:`attractor_map`: per context, the attractors reached from the
    end-of-stimulus states of its trials (and ``n_init`` random states). The exact path splits divergent orbits by
    escape direction. Returns ``(attractors per context, trials per context, their trial indices, choices of
    the divergent attractors)``."""
    from dm_envs import stage_input

    from analysis.dynamics.attractors import _initial_states

    cfg = dyn.config
    X = stage_input(cfg, stage, context=contexts)
    end = run.stage_states("stimulus", "last").astype(np.float64)
    ctx = np.asarray(run.trials.context)
    atts, n_given, members_of, choices = [], [], [], []
    for i, k in enumerate(contexts):
        sel = np.flatnonzero(ctx == k)
        init = end[sel] if sel.size else None
        n_rand = max(n_init, 0 if sel.size else 1)
        a = finder(dyn, X[i], n_init=n_rand, seed=seed, init_states=init, progress=progress, **kw)
        if exact:
            # the initial states find_attractors used (same seed stream), to follow divergent members again
            h0 = _initial_states(dyn, dyn.drive(X[i])[None], None if init is None else init[None], n_rand,
                                 kw.get("init_scale"), np.random.SeedSequence(seed).spawn(1))[0]
            a, ch = _split_divergent(dyn, X[i], a, h0, int(cfg.n_choices), kw)
        else:  # smooth maps: divergent orbits stay pooled (LSTM and GRU states are bounded)
            ch = [None] * len(a)
        atts.append(a)
        choices.append(ch)
        n_given.append(int(sel.size))
        members_of.append(sel)
    return atts, n_given, members_of, choices


def _decision_basins(dyn: Any, run: Rollout, atts: list, n_given: list[int], members_of: list[np.ndarray],
                     table_choice: np.ndarray) -> DecisionBasins:
    """Each trial's attractor (table row; -1 none) and its choice, beside the trial's conditions and own choice."""
    from dm_envs import score_actions

    cfg, tr = dyn.config, run.trials
    n_tr = len(tr)
    attractor = np.full(n_tr, -1, dtype=np.int64)
    row = 0
    for i, point in enumerate(atts):
        for a in point:
            given = a.members[a.members < n_given[i]]
            attractor[members_of[i][given]] = row
            row += 1
    choice = np.where(attractor >= 0, table_choice[np.maximum(attractor, 0)], -1)
    own = score_actions(tr, run.actions).choice if dyn.n_actions else np.full(n_tr, -1)
    signed = tr.signed_coherence if cfg.n_choices == 2 else np.full(tr.coherence.shape, np.nan)
    return DecisionBasins(context=np.asarray(tr.context).astype(np.int64),
                          coherence=np.asarray(tr.coherence, dtype=float),
                          signed=np.asarray(signed, dtype=float),
                          relevant=np.asarray(tr.relevant_coherence, dtype=float),
                          correct_choice=np.asarray(tr.correct_choice, dtype=np.int64),
                          own_choice=np.asarray(own, dtype=np.int64), attractor=attractor, choice=choice)
