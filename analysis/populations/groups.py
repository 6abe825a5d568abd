"""Functional populations: which units are active on which attractor, and how balanced the groups are.

A unit's **activity signature** is the set of labelled attractors on which it is active (activity above a threshold;
a cycle or quasi-periodic orbit is reduced to its time average, or to its maximum, first). The paper's groups are
special cases of the signature (the paper names G_s, G_+, G_-, G_a but does not define them; this reconstruction
follows ``shared/reference/paper.md`` section 5.2):

=======  ==========================================================================================================
``G+``   active on a choice-1 decision attractor (``FP+``) and on no choice-2 one
``G-``   active on a choice-2 decision attractor (``FP-``) and on no choice-1 one
``Ga``   active on both decision attractors
``Gs``   the stimulus population (paper): active on stimulus-stage attractors and on no decision attractor
         (``gs="stimulus"``, the default; ``gs="silent"``, the reading before issue 10, makes ``Gs`` the silent units)
silent   active on no attractor at all (with ``gs="silent"``: labelled ``Gs``)
``none`` everything else (active only on attractors outside the three roles; with ``gs="silent"``: stimulus-only)
=======  ==========================================================================================================

Activity on a set of states (e.g. every trial state that holds choice 1) is read **state by state**: a unit is
active when it is above the threshold in more than half of those states (:func:`state_signature`), never from an
average over states, which is positive for almost every unit.

The **balance index** is ``B = 1 - ||G+| - |G-|| / (|G+| + |G-|)`` (1: balanced; 0: one side empty). Readout symmetry
compares the units whose readout favours choice 1 (``W_out[1] - W_out[2] > 0``) with those favouring choice 2.

The attractors come from the attractor analysis (``analysis.dynamics.attractors``: pass ``Attractor`` objects, which have a
``mean``/``orbit``; :func:`label_attractors` names them by the choice they hold) or from plain arrays;
:func:`rollout_signatures` is a self-contained stand-in that iterates the stage maps of a network from given states.

Example:
    >>> acts = {"FP+": [1.0, 0.0, 0.5, 0.0], "FP-": [0.0, 1.0, 0.5, 0.0], "stim": [0.2, 0.2, 0.0, 0.3]}
    >>> pops = assign_populations(acts, gs="stimulus")
    >>> pops.labels.tolist(), pops.balance
    (['G+', 'G-', 'Ga', 'Gs'], 1.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

import numpy as np
from scipy import stats

GROUPS: tuple[str, ...] = ("G+", "G-", "Ga", "Gs")
"""The named groups, in reporting order (silent units are labelled ``"silent"``, the rest ``"none"``)."""
NONE = "none"
SILENT = "silent"
GS_READINGS = ("silent", "stimulus")

Labels = Union[str, Sequence[str]]

__all__ = [
    "GROUPS",
    "Populations",
    "activity_vector",
    "assign_populations",
    "balance_index",
    "ensemble_summary",
    "label_attractors",
    "membership_jaccard",
    "readout_symmetry",
    "rollout_signatures",
    "delay_end_signatures",
    "network_signatures",
    "end_of_stimulus_states",
    "signature_groups",
    "state_signature",
]


# ---------------------------------------------------------------------------------------------------- activity
def activity_vector(attractor: Any, reduce: str = "mean") -> np.ndarray:
    """The ``(H,)`` activity of one attractor.

    Args:
        attractor: A state ``(H,)``, an orbit ``(L, H)`` (reduced over time), or an object with ``mean_state`` (or
            an array ``mean``) and/or ``orbit`` (e.g. ``analysis.dynamics.attractors.Attractor``); the orbit is used when
            ``reduce="max"``.
        reduce: ``"mean"`` (time average over the orbit) or ``"max"`` (active at any point of the orbit).

    Example:
        >>> activity_vector(np.array([[0.0, 1.0], [0.0, 3.0]])).tolist()
        [0.0, 2.0]
    """
    if reduce not in ("mean", "max"):
        raise ValueError(f"reduce must be 'mean' or 'max', got {reduce!r}")
    if not isinstance(attractor, (np.ndarray, list, tuple)):
        orbit = getattr(attractor, "orbit", None)
        mean_state = getattr(attractor, "mean_state", None)
        if mean_state is None and isinstance(getattr(attractor, "mean", None), np.ndarray):
            mean_state = attractor.mean  # analysis.dynamics.attractors.Attractor names its time average ``mean``
        if reduce == "max" and orbit is not None:
            attractor = orbit
        elif mean_state is not None:
            attractor = mean_state
        elif orbit is not None:
            attractor = orbit
        else:
            raise TypeError(f"cannot read an activity from {type(attractor).__name__} (no mean_state/orbit)")
    a = np.asarray(attractor, dtype=np.float64)
    if a.ndim == 1:
        return a
    if a.ndim == 2:
        return a.mean(axis=0) if reduce == "mean" else a.max(axis=0)
    raise ValueError(f"an attractor is a state (H,) or an orbit (L, H), got shape {a.shape}")


def _as_list(x: Optional[Labels]) -> list[str]:
    if x is None:
        return []
    return [x] if isinstance(x, str) else list(x)


# ---------------------------------------------------------------------------------------------------- populations
@dataclass(frozen=True)
class Populations:
    """Population membership of every unit of one network.

    Attributes:
        labels: ``(H,)`` group of each unit: ``"G+"``, ``"G-"``, ``"Ga"``, ``"Gs"``, ``"silent"`` or ``"none"``.
        active: ``(H, L)`` bool activity signature: unit ``i`` active on attractor ``j``.
        attractors: The ``L`` attractor labels (columns of ``active``).
        activity: ``(H, L)`` the activity values the signature was thresholded from.
        plus, minus, stimulus: Which attractor labels count as choice-1, choice-2 and stimulus-stage attractors.
        gs: The reading of ``Gs`` (``"silent"`` or ``"stimulus"``).
        threshold: The activity threshold used.

    Example:
        >>> pops = assign_populations({"FP+": [1, 0, 0], "FP-": [0, 1, 0]})
        >>> pops.sizes
        {'G+': 1, 'G-': 1, 'Ga': 0, 'Gs': 0, 'silent': 1, 'none': 0}
    """

    labels: np.ndarray
    active: np.ndarray
    attractors: tuple[str, ...]
    activity: np.ndarray
    plus: tuple[str, ...]
    minus: tuple[str, ...]
    stimulus: tuple[str, ...]
    gs: str = "stimulus"
    threshold: float = 1e-6
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def n_units(self) -> int:
        """Number of units ``H``."""
        return int(self.labels.shape[0])

    def indices(self, group: str) -> np.ndarray:
        """Indices of the units in ``group``."""
        return np.flatnonzero(self.labels == group)

    def members(self) -> dict[str, np.ndarray]:
        """``{group: unit indices}`` for every group and ``"none"``."""
        return {g: self.indices(g) for g in GROUPS + (NONE,)}

    @property
    def sizes(self) -> dict[str, int]:
        """Number of units per group (``"silent"`` and ``"none"`` included)."""
        return {g: int(np.sum(self.labels == g)) for g in GROUPS + (SILENT, NONE)}

    @property
    def fractions(self) -> dict[str, float]:
        """Fraction of units per group."""
        return {g: s / self.n_units for g, s in self.sizes.items()}

    @property
    def balance(self) -> float:
        """The balance index of ``G+`` and ``G-`` (see :func:`balance_index`)."""
        s = self.sizes
        return balance_index(s["G+"], s["G-"])

    def signature_groups(self) -> dict[tuple[str, ...], np.ndarray]:
        """Units grouped by their full activity signature (see :func:`signature_groups`)."""
        return signature_groups(self.active, self.attractors)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary."""
        return {
            "sizes": self.sizes,
            "fractions": self.fractions,
            "balance": self.balance,
            "labels": self.labels.tolist(),
            "attractors": list(self.attractors),
            "active": self.active.astype(int).tolist(),
            "plus": list(self.plus),
            "minus": list(self.minus),
            "stimulus": list(self.stimulus),
            "gs": self.gs,
            "threshold": self.threshold,
            "signatures": {"|".join(k) or "(none)": len(v) for k, v in self.signature_groups().items()},
        }


def assign_populations(
    attractors: Union[Mapping[str, Any], Sequence[tuple[str, Any]]],
    *,
    plus: Labels = "FP+",
    minus: Labels = "FP-",
    stimulus: Optional[Labels] = None,
    gs: str = "stimulus",
    threshold: float = 1e-6,
    relative: bool = False,
    reduce: str = "mean",
) -> Populations:
    """Assign every unit to G+, G-, Ga, Gs (or none) from its activity on labelled attractors.

    Args:
        attractors: ``{label: attractor}`` (or ``(label, attractor)`` pairs); each attractor is an activity vector
            ``(H,)``, an orbit ``(L, H)`` or an object with ``mean_state``/``orbit`` (see :func:`activity_vector`).
        plus: Label(s) of the choice-1 decision attractors (a unit active on any of them is "active for choice 1").
        minus: Label(s) of the choice-2 decision attractors.
        stimulus: Label(s) of the stimulus-stage attractors (default: every label not in ``plus``/``minus``).
        gs: Reading of ``Gs``: ``"silent"`` (active nowhere) or ``"stimulus"`` (active only on stimulus attractors).
        threshold: A unit is active on an attractor if its activity exceeds this.
        relative: If True, ``threshold`` is relative to each attractor's largest activity.
        reduce: How an orbit becomes an activity vector (``"mean"`` or ``"max"``).

    Returns:
        The :class:`Populations`.

    Raises:
        ValueError: unknown labels, mismatched sizes, or no decision attractor at all.

    Example:
        >>> orbit = np.array([[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]])    # unit 3 active half the time
        >>> pops = assign_populations({"FP+": [1, 0, 1, 0], "FP-": [0, 0, 1, 0], "stim": orbit}, gs="stimulus")
        >>> pops.labels.tolist()
        ['G+', 'silent', 'Ga', 'Gs']
    """
    if gs not in GS_READINGS:
        raise ValueError(f"gs must be one of {GS_READINGS}, got {gs!r}")
    items = list(attractors.items()) if isinstance(attractors, Mapping) else list(attractors)
    names = tuple(str(k) for k, _ in items)
    if len(set(names)) != len(names):
        raise ValueError(f"attractor labels must be unique, got {names}")
    plus_l, minus_l = _as_list(plus), _as_list(minus)
    stim_l = [n for n in names if n not in plus_l + minus_l] if stimulus is None else _as_list(stimulus)
    unknown = sorted(set(plus_l + minus_l + stim_l) - set(names))
    if unknown:
        raise ValueError(f"labels {unknown} are not among the attractors {list(names)}")
    if not plus_l and not minus_l:
        raise ValueError("give at least one decision attractor (plus/minus)")
    vecs = [activity_vector(a, reduce) for _, a in items]
    sizes = {v.shape for v in vecs}
    if len(sizes) != 1:
        raise ValueError(f"all attractors must have the same number of units, got shapes {sorted(sizes)}")
    activity = np.stack(vecs, axis=1)  # (H, L)
    thr = threshold * np.max(np.abs(activity), axis=0, keepdims=True) if relative else threshold
    active = activity > thr
    col = {n: i for i, n in enumerate(names)}

    def any_on(labels: list[str]) -> np.ndarray:
        if not labels:
            return np.zeros(activity.shape[0], bool)
        return active[:, [col[n] for n in labels]].any(axis=1)

    a_plus, a_minus, a_stim = any_on(plus_l), any_on(minus_l), any_on(stim_l)
    a_other = active.any(axis=1) & ~(a_plus | a_minus | a_stim)  # active on attractors outside all three roles
    decision = a_plus | a_minus
    labels = np.full(activity.shape[0], NONE, dtype=object)
    labels[a_plus & ~a_minus] = "G+"
    labels[a_minus & ~a_plus] = "G-"
    labels[a_plus & a_minus] = "Ga"
    if gs == "silent":
        labels[~decision & ~a_stim & ~a_other] = "Gs"
    else:
        labels[~decision & a_stim & ~a_other] = "Gs"
        labels[~active.any(axis=1)] = SILENT
    return Populations(
        labels=labels.astype(str),
        active=active,
        attractors=names,
        activity=activity,
        plus=tuple(plus_l),
        minus=tuple(minus_l),
        stimulus=tuple(stim_l),
        gs=gs,
        threshold=float(threshold),
        settings={"relative": relative, "reduce": reduce},
    )


def label_attractors(
    decision: Sequence[Any],
    stimulus: Sequence[Any] = (),
    *,
    W_out: Optional[np.ndarray] = None,
    b_out: Optional[np.ndarray] = None,
    reduce: str = "mean",
) -> tuple[dict[str, Any], list[str], list[str]]:
    """Label attractor objects for :func:`assign_populations`: decision attractors by the choice they hold.

    A decision attractor (e.g. a fixed point of the delay-stage map) is labelled by the readout's preferred choice
    on its activity: the argmax over choices of ``W_out[1:] h + b_out[1:]`` when ``W_out`` is given (the fixate
    action, which wins while the fixation cue is on, is ignored), else its ``decision`` attribute (``1..K``).
    Choice 1 gives ``"FP+"``, choice 2 ``"FP-"`` (``"FP3"``, ... beyond), numbered ``"FP+#2"``, ... when several
    hold the same choice; stimulus-stage attractors become ``"stim#<i>:<kind>"``.

    Args:
        decision: Decision attractors (``Attractor`` objects, states or orbits).
        stimulus: Stimulus-stage attractors.
        W_out, b_out: The readout ``(A, H)``, ``(A,)``.
        reduce: Orbit reduction (see :func:`activity_vector`).

    Returns:
        ``(attractors, plus, minus)`` to pass as ``assign_populations(attractors, plus=plus, minus=minus)``.

    Example:
        >>> W_out = np.array([[5.0, 5.0], [1.0, 0.0], [0.0, 1.0]])
        >>> atts, plus, minus = label_attractors([[2.0, 0.0], [0.0, 3.0], [1.0, 0.5]], [[1.0, 1.0]], W_out=W_out)
        >>> list(atts), plus, minus
        (['FP+', 'FP-', 'FP+#2', 'stim#1'], ['FP+', 'FP+#2'], ['FP-'])
    """
    out: dict[str, Any] = {}
    names: dict[int, list[str]] = {}
    for att in decision:
        if W_out is not None:
            h = activity_vector(att, reduce)
            Wo = np.asarray(W_out, np.float64)
            bo = np.zeros(Wo.shape[0]) if b_out is None else np.asarray(b_out, np.float64)
            choice = int(np.argmax(Wo[1:] @ h + bo[1:])) + 1
        else:
            choice = getattr(att, "decision", None)
            if choice is None or int(choice) < 1:
                raise ValueError("a decision attractor without a choice: pass W_out to label it by the readout")
            choice = int(choice)
        base = {1: "FP+", 2: "FP-"}.get(choice, f"FP{choice}")
        taken = names.setdefault(choice, [])
        label = base if not taken else f"{base}#{len(taken) + 1}"
        taken.append(label)
        out[label] = att
    for i, att in enumerate(stimulus):
        kind = getattr(att, "kind", None)
        out[f"stim#{i + 1}" + (f":{kind}" if kind else "")] = att
    return out, names.get(1, []), names.get(2, [])


def signature_groups(active: np.ndarray, attractors: Sequence[str]) -> dict[tuple[str, ...], np.ndarray]:
    """Group units by their activity signature: ``{(labels the unit is active on): unit indices}``.

    Example:
        >>> sig = np.array([[1, 0], [1, 0], [0, 0]], bool)
        >>> {k: v.tolist() for k, v in signature_groups(sig, ["FP+", "FP-"]).items()}
        {('FP+',): [0, 1], (): [2]}
    """
    active = np.asarray(active, bool)
    keys, inverse = np.unique(active, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    out: dict[tuple[str, ...], np.ndarray] = {}
    # largest groups first
    for j in np.argsort(-np.bincount(inverse, minlength=len(keys)), kind="stable"):
        key = tuple(a for a, on in zip(attractors, keys[j]) if on)
        out[key] = np.flatnonzero(inverse == j)
    return out


def balance_index(n_plus: Union[int, Populations], n_minus: Optional[int] = None) -> float:
    """``B = 1 - ||G+| - |G-|| / (|G+| + |G-|)``: 1 for equal sizes, 0 when one side is empty.

    Args:
        n_plus: ``|G+|``, or a :class:`Populations`.
        n_minus: ``|G-|`` (omit when passing a :class:`Populations`).

    Returns:
        The index; NaN when both groups are empty (no decision populations).

    Example:
        >>> balance_index(30, 10), balance_index(20, 20)
        (0.5, 1.0)
    """
    if isinstance(n_plus, Populations):
        s = n_plus.sizes
        n_plus, n_minus = s["G+"], s["G-"]
    if n_minus is None:
        raise TypeError("balance_index needs both |G+| and |G-| (or a Populations)")
    total = n_plus + n_minus
    if total == 0:
        return float("nan")
    return 1.0 - abs(n_plus - n_minus) / total


def readout_symmetry(
    W_out: np.ndarray,
    *,
    choices: tuple[int, int] = (1, 2),
    units: Optional[np.ndarray] = None,
    labels: Optional[np.ndarray] = None,
    tol: float = 0.0,
) -> dict[str, Any]:
    """Symmetry of the readout between two choices: units favouring each and the weight mass on each side.

    With ``d_i = W_out[c1, i] - W_out[c2, i]``: ``n_plus = #{d > tol}``, ``n_minus = #{d < -tol}``, the summed
    magnitudes ``mass_plus = sum d[d > tol]``, ``mass_minus = sum |d[d < -tol]|``, and balance indices of both
    (``1 - |a - b| / (a + b)``).

    Args:
        W_out: ``(A, H)`` readout weights (action 0 = fixate, 1.. = choices).
        choices: The two action indices compared.
        units: Optional unit indices (or ``(H,)`` bool mask) to restrict to, e.g. the units active on any attractor.
        labels: Optional ``(H,)`` population labels: adds the mean ``d`` per population.
        tol: Differences within ``tol`` of 0 count on neither side.

    Example:
        >>> W = np.array([[0, 0, 0, 0], [1.0, 2.0, 0.0, 0.5], [0.0, 0.0, 1.0, 0.5]])
        >>> r = readout_symmetry(W)
        >>> r["n_plus"], r["n_minus"], r["count_balance"], r["mass_balance"]
        (2, 1, 0.6666666666666667, 0.5)
    """
    W = np.asarray(W_out, dtype=np.float64)
    d = W[choices[0]] - W[choices[1]]
    sel = np.ones(d.shape, bool)
    if units is not None:
        u = np.asarray(units)
        sel = u.astype(bool) if u.dtype == bool else np.isin(np.arange(d.size), u)
    dd = d[sel]
    pos, neg = dd > tol, dd < -tol
    n_plus, n_minus = int(pos.sum()), int(neg.sum())
    m_plus, m_minus = float(dd[pos].sum()), float(-dd[neg].sum())
    out: dict[str, Any] = {
        "n_plus": n_plus,
        "n_minus": n_minus,
        "mass_plus": m_plus,
        "mass_minus": m_minus,
        "count_balance": balance_index(n_plus, n_minus),
        "mass_balance": _ratio_balance(m_plus, m_minus),
        "n_units": int(sel.sum()),
    }
    if labels is not None:
        lab = np.asarray(labels).astype(str)
        out["mean_difference_by_population"] = {
            g: float(d[sel & (lab == g)].mean()) if np.any(sel & (lab == g)) else float("nan")
            for g in sorted(set(lab[sel].tolist()))
        }
    return out


def _ratio_balance(a: float, b: float) -> float:
    return float("nan") if a + b == 0 else 1.0 - abs(a - b) / (a + b)


# ---------------------------------------------------------------------------------------------------- comparisons
def _labels_of(x: Union[Populations, np.ndarray, Sequence[str]]) -> np.ndarray:
    return np.asarray(x.labels if isinstance(x, Populations) else x).astype(str)


def membership_jaccard(
    a: Union[Populations, np.ndarray, Sequence[str]],
    b: Union[Populations, np.ndarray, Sequence[str]],
    groups: Iterable[str] = GROUPS,
) -> dict[str, float]:
    """Jaccard similarity ``|A & B| / |A | B|`` of each group's members between two assignments.

    Two empty groups are identical (1.0). ``"mean"`` is the average over the groups non-empty in either
    assignment (1.0 if all are empty).

    Args:
        a, b: Two assignments of the same units (:class:`Populations` or ``(H,)`` labels).
        groups: The groups compared.

    Example:
        >>> membership_jaccard(["G+", "G+", "G-", "Gs"], ["G+", "G-", "G-", "Gs"])
        {'G+': 0.5, 'G-': 0.5, 'Ga': 1.0, 'Gs': 1.0, 'mean': 0.6666666666666666}
    """
    la, lb = _labels_of(a), _labels_of(b)
    if la.shape != lb.shape:
        raise ValueError(f"assignments cover different numbers of units: {la.shape} vs {lb.shape}")
    out: dict[str, float] = {}
    used = []
    for g in groups:
        ia, ib = la == g, lb == g
        union = int(np.sum(ia | ib))
        out[g] = 1.0 if union == 0 else float(np.sum(ia & ib)) / union
        if union:
            used.append(out[g])
    out["mean"] = float(np.mean(used)) if used else 1.0
    return out


def ensemble_summary(
    values: Union[Sequence[Mapping[str, float]], Mapping[str, Sequence[float]]],
    *,
    ci: float = 0.95,
) -> dict[str, dict[str, float]]:
    """Mean, spread and confidence interval of each metric across an ensemble of networks.

    Args:
        values: One dict of metrics per network (e.g. ``{"G+": 40, "G-": 38, "balance": 0.97}``), or
            ``{metric: [value per network]}``; a :class:`Populations` list works through :func:`population_metrics`.
        ci: Confidence level of the interval on the mean (Student t).

    Returns:
        ``{metric: {n, mean, std, sem, cv, ci_low, ci_high, min, max, median}}`` (NaNs ignored).

    Example:
        >>> s = ensemble_summary([{"balance": 0.9}, {"balance": 1.0}, {"balance": 0.8}])
        >>> round(s["balance"]["mean"], 3), round(s["balance"]["std"], 3)
        (0.9, 0.1)
    """
    if isinstance(values, Mapping):
        table = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
    else:
        rows = [population_metrics(v) if isinstance(v, Populations) else dict(v) for v in values]
        keys = list(dict.fromkeys(k for r in rows for k in r))
        table = {k: np.array([float(r.get(k, np.nan)) for r in rows]) for k in keys}
    out = {}
    for k, v in table.items():
        v = v[np.isfinite(v)]
        n = int(v.size)
        mean = float(v.mean()) if n else float("nan")
        std = float(v.std(ddof=1)) if n > 1 else float("nan")
        sem = std / math.sqrt(n) if n > 1 else float("nan")
        half = float(stats.t.ppf(0.5 + ci / 2, n - 1) * sem) if n > 1 else float("nan")
        out[k] = {
            "n": n,
            "mean": mean,
            "std": std,
            "sem": sem,
            "cv": std / abs(mean) if n > 1 and mean != 0 else float("nan"),
            "ci_low": mean - half,
            "ci_high": mean + half,
            "min": float(v.min()) if n else float("nan"),
            "max": float(v.max()) if n else float("nan"),
            "median": float(np.median(v)) if n else float("nan"),
        }
    return out


def population_metrics(pops: Populations, W_out: Optional[np.ndarray] = None) -> dict[str, float]:
    """The per-network numbers summarised across an ensemble: group sizes, balance, readout symmetry.

    Example:
        >>> population_metrics(assign_populations({"FP+": [1, 0], "FP-": [0, 1]}))["balance"]
        1.0
    """
    out: dict[str, float] = {f"n_{g}": float(s) for g, s in pops.sizes.items()}
    out["balance"] = pops.balance
    if W_out is not None:
        r = readout_symmetry(W_out)
        out["readout_count_balance"] = r["count_balance"]
        out["readout_mass_balance"] = r["mass_balance"]
    return out


# ---------------------------------------------------------------------------------------------------- rollouts
def state_signature(states: np.ndarray, threshold: float = 1e-6, majority: float = 0.5) -> np.ndarray:
    """Which units are active on a set of states, read state by state: ``(H,)`` 1.0 where a unit is above
    ``threshold`` in more than ``majority`` of the ``(M, H)`` states, else 0.0 (all zeros for no states).

    Example:
        >>> state_signature(np.array([[1.0, 0.0, 0.2], [1.0, 0.0, 0.0], [0.5, 3.0, 0.0]])).tolist()
        [1.0, 0.0, 0.0]
    """
    states = np.atleast_2d(np.asarray(states, dtype=np.float64))
    if not len(states):
        return np.zeros(states.shape[1])
    return ((states > threshold).mean(axis=0) > majority).astype(float)


def _settle(W: np.ndarray, drive: np.ndarray, h0: np.ndarray, n_transient: int, n_average: int) -> np.ndarray:
    """Iterate ``h -> relu(W h + drive)`` from each row of ``h0``; the time average of ``n_average`` steps after
    ``n_transient``, ``(M, H)``."""
    h = h0.copy()
    for _ in range(n_transient):
        h = np.maximum(h @ W.T + drive, 0.0)
    acc = np.zeros_like(h)
    for _ in range(n_average):
        h = np.maximum(h @ W.T + drive, 0.0)
        acc += h
    return acc / max(n_average, 1)


def rollout_signatures(
    W_rec: np.ndarray,
    W_in: np.ndarray,
    W_out: np.ndarray,
    config: Any,
    start_states: np.ndarray,
    *,
    start_contexts: Optional[np.ndarray] = None,
    b_rec: Optional[np.ndarray] = None,
    b_out: Optional[np.ndarray] = None,
    decision_stage: str = "delay",
    stimulus_coherence: float = 0.0,
    n_transient: int = 500,
    n_average: int = 50,
    threshold: float = 1e-6,
    majority: float = 0.5,
    return_states: bool = False,
) -> Any:
    """Activity on the decision and stimulus-stage attractors, by iterating each stage's autonomous map.

    A self-contained stand-in for the attractor analysis: from each start state (e.g. the end-of-stimulus states of
    real trials) the map ``h -> relu(W_rec h + W_in x + b_rec)`` with the noise-free input ``x`` of a stage is
    iterated ``n_transient`` steps, then its state averaged over ``n_average`` more steps (the settled state). Each
    context's map starts from the states of that context's trials (``start_contexts``; all starts without it).

    * ``"FP+"`` / ``"FP-"`` (two choices) or ``"FP1".."FPK"``: under the ``decision_stage`` input (the delay, where
      decisions are held), the settled states whose readout argmax over choices is that choice, read state by state
      (:func:`state_signature`). A choice no start reaches is absent.
    * ``"stim_ctx<c>"`` (``"stim"`` without context): under the stimulus input at ``stimulus_coherence`` on every
      stream, the settled states of that context's starts, read state by state.

    Args:
        W_rec, W_in, W_out: Network weights ``(H, H)``, ``(H, D)``, ``(A, H)``.
        config: The :class:`dm_envs.TaskConfig`.
        start_states: ``(M, H)`` initial states.
        start_contexts: ``(M,)`` context of each start (0-based), or None.
        b_rec, b_out: Optional biases.
        decision_stage: Stage whose input holds the decision (``"delay"`` or ``"decision"``).
        stimulus_coherence: Signed coherence of every stream for the stimulus-stage attractors.
        n_transient, n_average: Iterations discarded, then averaged.
        threshold, majority: The per-state activity test (:func:`state_signature`).
        return_states: Also return ``{label: (m, H) settled states}``.

    Returns:
        ``{label: (H,) activity}`` for :func:`assign_populations` (and the settled states with ``return_states``).

    Example:
        >>> from dm_envs import make_config
        >>> rng = np.random.default_rng(0)
        >>> W = rng.uniform(-0.1, 0.1, (20, 20)); Win = rng.uniform(-1, 1, (20, 7)); Wout = rng.normal(size=(3, 20))
        >>> sig = rollout_signatures(W, Win, Wout, make_config(3), rng.random((8, 20)), n_transient=50)
        >>> sorted(k for k in sig if k.startswith("stim"))
        ['stim_ctx1', 'stim_ctx2']
    """
    from dm_envs import stage_input

    W = np.asarray(W_rec, np.float64)
    Win = np.asarray(W_in, np.float64)
    Wo = np.asarray(W_out, np.float64)
    b = np.zeros(W.shape[0]) if b_rec is None else np.asarray(b_rec, np.float64)
    bo = np.zeros(Wo.shape[0]) if b_out is None else np.asarray(b_out, np.float64)
    h0 = np.atleast_2d(np.asarray(start_states, np.float64))
    contexts = list(range(config.n_streams)) if config.n_streams > 1 else [0]
    ctx_of = None if start_contexts is None else np.asarray(start_contexts)

    def starts(c: int) -> np.ndarray:
        return h0 if ctx_of is None or not np.any(ctx_of == c) else h0[ctx_of == c]

    k = config.n_choices
    names = ["FP+", "FP-"] if k == 2 else [f"FP{j + 1}" for j in range(k)]
    settled = [_settle(W, Win @ stage_input(config, decision_stage, context=c) + b, starts(c), n_transient, n_average)
               for c in contexts]
    ends = np.concatenate(settled)
    with np.errstate(over="ignore", invalid="ignore"):
        choice = np.argmax(ends @ Wo[1:].T + bo[1:], axis=1)
    states: dict[str, np.ndarray] = {name: ends[choice == j] for j, name in enumerate(names) if np.any(choice == j)}
    sc = np.full(config.n_streams, float(stimulus_coherence))
    for c in contexts:
        if k == 2:
            x = stage_input(config, "stimulus", signed_coherence=sc, context=c)
        else:
            x = stage_input(config, "stimulus", coherence=np.abs(sc), context=c)
        label = "stim" if config.n_streams == 1 else f"stim_ctx{c + 1}"
        states[label] = _settle(W, Win @ x + b, starts(c), n_transient, n_average)
    with np.errstate(invalid="ignore"):
        out = {label: state_signature(v, threshold, majority) for label, v in states.items()}
    return (out, states) if return_states else out


def delay_end_signatures(
    hidden: np.ndarray,
    trials: Any,
    choice: np.ndarray,
    *,
    W_out: Optional[np.ndarray] = None,
    b_out: Optional[np.ndarray] = None,
    threshold: float = 1e-6,
    majority: float = 0.5,
) -> dict[str, np.ndarray]:
    """Decision states read from real trials: which units are on at the last step before the go cue.

    The states the network reports its choice from, whether or not they sit on an attractor: for each choice, a
    unit counts as active (1.0) if it is above ``threshold`` at the last delay step (the last stimulus step when
    there is no delay) on more than ``majority`` of the trials that ended with that choice, else silent (0.0).
    A trial that ended without a choice (``-1``) counts for the choice its readout prefers at that step (needs
    ``W_out``; without it such trials are left out), as :func:`rollout_signatures` labels its states.
    Units are read trial by trial because a trial average is positive for almost every unit, which would make every
    unit look active for both choices. Labels as :func:`rollout_signatures` (``"FP+"``/``"FP-"``, ``"FP1".."FPK"``).

    Args:
        hidden: ``(N, T, H)`` hidden states of the trials.
        trials: The :class:`dm_envs.TrialBatch` they came from.
        choice: ``(N,)`` the choice each trial ended with (0-based; -1 for none).
        W_out, b_out: Optional readout ``(A, H)``, ``(A,)`` (action 0 = fixate) that labels trials without a choice.
        threshold: Activity above which a unit is on in a trial.
        majority: Fraction of a choice's trials in which a unit must be on.

    Example:
        >>> from dm_envs import make_config, sample_trials
        >>> trials = sample_trials(make_config(2), 4, np.random.default_rng(0))
        >>> hidden = np.zeros((4, trials.obs.shape[1], 3)); hidden[:2, :, 0] = 1.0; hidden[2:, :, 1] = 1.0
        >>> sig = delay_end_signatures(hidden, trials, np.array([0, 0, 1, 1]))
        >>> sig["FP+"].tolist(), sig["FP-"].tolist()
        ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
    """
    from dm_envs.config import DECISION

    k = trials.config.n_choices
    names = ["FP+", "FP-"] if k == 2 else [f"FP{j + 1}" for j in range(k)]
    state = hidden[np.arange(len(trials)), trials.onset[:, DECISION] - 1]
    choice = np.asarray(choice).copy()
    if W_out is not None and np.any(choice < 0):
        logits = state @ np.asarray(W_out, np.float64)[1:].T
        if b_out is not None:
            logits = logits + np.asarray(b_out, np.float64)[1:]
        choice[choice < 0] = np.argmax(logits, axis=1)[choice < 0]
    on = state > threshold
    return {name: (on[choice == j].mean(axis=0) > majority).astype(float)
            for j, name in enumerate(names) if np.any(choice == j)}


DECISION_SOURCES = ("auto", "attractors", "delay_end")


def end_of_stimulus_states(hidden: np.ndarray, trials: Any, n: int = 200) -> np.ndarray:
    """``(min(N, n), H)``: the hidden state at the last stimulus step of each of the first ``n`` trials (the starts
    of the decision-attractor search)."""
    from dm_envs.config import DELAY

    rows = np.arange(min(len(trials), n))
    return hidden[rows, trials.onset[rows, DELAY] - 1]


def network_signatures(
    weights: Any,
    config: Any,
    trials: Any,
    hidden: np.ndarray,
    choice: np.ndarray,
    *,
    decision: str = "auto",
    n_starts: int = 200,
    max_norm: float = 1e4,
    threshold: float = 1e-6,
) -> tuple[dict[str, np.ndarray], str]:
    """Activity signatures of a network's decision and stimulus-stage states, for :func:`assign_populations`.

    Stimulus-stage entries always come from :func:`rollout_signatures`. The decision entries come from

    * ``"attractors"``: the attractors the delay map settles into from the end-of-stimulus states of the trials
      (:func:`rollout_signatures`);
    * ``"delay_end"``: the states the network reports its choice from (:func:`delay_end_signatures`);
    * ``"auto"`` (default): the attractors when every choice has one and they are bounded, else the delay-end
      states. Trained networks often hold a decision through the longest delay in a transient (or a slowly
      diverging mode) rather than an attractor; the attractor reading would then leave a choice without a state,
      or give an unbounded one, and the balance of ``G+`` and ``G-`` would be an artefact.

    Args:
        weights: The :class:`~analysis.network.Network` (or anything :meth:`Network.load` reads).
        config: The task.
        trials: The trials the hidden states come from.
        hidden: ``(N, T, H)`` hidden states.
        choice: ``(N,)`` choice of each trial (0-based, -1 for none).
        decision: ``"auto"``, ``"attractors"`` or ``"delay_end"``.
        n_starts: End-of-stimulus states used as starts of the attractor search.
        max_norm: A settled decision state with a larger norm counts as unbounded.
        threshold: Activity above which a unit is on in a state.

    Returns:
        ``(signatures, source)`` with ``source`` ``"attractors"`` or ``"delay_end"``.
    """
    from analysis.network import Network

    if decision not in DECISION_SOURCES:
        raise ValueError(f"decision must be one of {DECISION_SOURCES}, got {decision!r}")
    w = Network.load(weights)
    starts = end_of_stimulus_states(hidden, trials, n_starts)
    ctx = np.asarray(trials.context)[: len(starts)]
    with np.errstate(over="ignore", invalid="ignore"):
        sig, settled = rollout_signatures(w.W_rec, w.W_in, w.W_out, config, starts, start_contexts=ctx, b_rec=w.b_rec,
                                          b_out=w.b_out, threshold=threshold, return_states=True)
    names = ["FP+", "FP-"] if config.n_choices == 2 else [f"FP{j + 1}" for j in range(config.n_choices)]
    with np.errstate(over="ignore", invalid="ignore"):
        bounded = all(n in settled and np.all(np.isfinite(settled[n]))
                      and np.linalg.norm(settled[n], axis=1).max() < max_norm for n in names)
    if decision == "attractors" or (decision == "auto" and bounded):
        return sig, "attractors"
    out = {k: v for k, v in sig.items() if k not in names}
    out.update(delay_end_signatures(hidden, trials, choice, W_out=w.W_out, b_out=w.b_out, threshold=threshold))
    return out, "delay_end"

