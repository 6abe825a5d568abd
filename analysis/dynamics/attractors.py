"""Attractors of the ReLU map of a stage: find them by simulation, classify them, measure Lyapunov exponents.

For each constant input ``x`` (a task stage's noise-free input, treated as a parameter) the autonomous map
``F_x(h) = relu(W_rec h + W_in x + b_rec)`` is iterated from many initial states; transients are discarded and each
distinct attractor reached is classified as

================  ====================================================================================================
kind              criterion (tolerances relative to ``|h|``; every threshold is an argument of :func:`find_attractors`)
================  ====================================================================================================
divergent         ``|h| > divergence_norm`` (default 1e6) or non-finite, or escaping (below)
fixed_point       ``|F(h) - h| < fp_tol (1 + |h|)`` (default 1e-8), refined exactly on its activation pattern; or an
                  orbit that stays in one activation pattern whose exact fixed point is stable (a slow focus)
periodic          a return ``|h_{t+k} - h_t| < period_tol (1 + |h_t|)`` for some ``2 <= k <= max_period`` (2,000),
                  confirmed by a second return at ``2k``
quasi_periodic    no period, ``|lambda_1| <= lyap_eps`` (2e-3 per step) and ``lambda_2 <= lambda_1 - qp_gap`` (5e-3)
chaotic           ``lambda_1 > lyap_eps``
unresolved        what the recordings cannot decide: a single return, a contraction that has not settled, or
                  ``|lambda_1|`` small without the transverse gap. Counted and reported, never quasi-periodic
================  ====================================================================================================

(paper.md section 5.1). ``lambda_1 >= lambda_2 >= ...`` are the largest Lyapunov exponents, natural log per step,
from the QR (Benettin) method on the tangent map ``J_t = diag(1[W_rec h_t + c > 0]) W_rec``. The optional QP
confirmation (an attracting closed curve: ``lambda_2 < 0``) is reported as ``Attractor.transverse_stable``.
Finite recordings blur ``lambda_1`` by about ``log(condition) / n_record`` (a few 1e-4 to 1e-3 per step for 2,000
steps), so a non-periodic orbit is recorded again (up to ``max_extensions`` times, continuing the same tangent frame,
so the estimate sharpens) when ``lambda_1`` is not clearly on one side: unless ``|lambda_1| <= lyap_eps / 2``
or ``lambda_1 >= 2 lyap_eps``, and when a first return needs its second. That also covers orbits still contracting
towards a cycle (``lambda_1 < 0``); one that has not settled after the last recording is ``unresolved``.

**Escaping orbits.** Trained networks often have linear regions with an expanding direction that the stage's input
never lets them leave: the orbit then grows geometrically along that direction until ``|h| > divergence_norm``
(hundreds of steps for slow growth). It is classified ``divergent`` as soon as, at ``escape_checks`` consecutive
checks, it has grown by ``escape_rate`` per step, kept its activation pattern, and moved along a direction ``u`` that
is (within ``escape_align``) an expanding eigen-direction of the region's Jacobian whose ray ``h + s u`` never
leaves the region: asymptotically the orbit is on that ray and the region's affine map sends it to infinity. (The
rotating growth of an orbit that the region's walls will fold back, as in a piecewise-linear oscillator, fails the
eigen-direction test.) ``escape_checks=0`` restores the plain threshold.

**How the work is organised** (why it is fast). The initial states of all inputs are iterated together, one
``(B, H) @ (H, H)`` product per step for each chunk of ``chunk_size`` trajectories. Every ``check_every`` steps,
trajectories that have diverged, or come within ``snap_tol`` of a stable, self-consistent fixed point of their
current linear region (solved exactly, one solve per distinct region and input), leave the batch. The survivors of a
short probe (``n_probe`` steps) are non-stationary; for each input one *representative* is run through the full
transient and recorded (Lyapunov frame, returns, orbit), while the other survivors are only compared with its orbit:
those within ``merge_tol`` of it belong to the same attractor and stop. The rest settle ``n_probe`` steps more, are
compared with every orbit recorded so far, and the unmatched provide the next round's representatives.
So the expensive recording is spent about once per distinct non-stationary attractor, not once per initial state.
A recorded cycle stops as soon as its period has been confirmed and its exponents averaged over ``cycle_record``
steps of whole periods. Further savings, none of which changes a classification: a step's product skips the units
silent in every trajectory of the chunk (exactly zero contributions; trained ReLU networks keep about half their units
silent); escaping orbits leave early (above); on maps of 64 units or more the transient and the tangent frames run
in float32 (``transient_dtype``, ``frame_dtype``; everything that classifies stays float64). A representative that
lies (or, after a longer cheap transient, comes to lie) on an attractor already recorded for its input joins it
without a recording, and states that have not yet come onto a recorded orbit settle for geometrically growing
stretches (slowly converging ones need few rounds). Inputs are searched in blocks of ``block_size``, which
``n_jobs`` worker processes share.

Example:
    >>> from analysis.network import Network
    >>> th = 2 * np.pi / 5                                      # rotation by 2 pi / 5 about (1, 1): period 5
    >>> R = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    >>> dyn = Network(R, (np.eye(2) - R) @ np.ones((2, 1)))
    >>> [(a.kind, a.period) for a in find_attractors(dyn, np.ones(1), n_init=0, init_states=[[1.3, 1.0]])]
    [('periodic', 5)]
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, Union

import numpy as np

from analysis.dynamics.fixed_point import PatternSolver, _pattern_key, jacobian_eigenvalues

if TYPE_CHECKING:
    from analysis.network import Network

__all__ = ["KINDS", "Attractor", "find_attractors", "lyapunov_exponents"]

KINDS = ("fixed_point", "periodic", "quasi_periodic", "chaotic", "divergent", "unresolved")
"""Attractor kinds, in the order used for sorting."""

Seed = Union[int, None]

SETTLE_MARGIN = 1e-6
"""A region's fixed point takes an orbit that settled in the region when its Jacobian's spectral radius is at most
``1 - SETTLE_MARGIN`` (contraction by at least 1e-6 per step; rounding puts a neutral rotation's at ``1 +- 1e-16``)."""


# ---------------------------------------------------------------------------------------------- result
@dataclass(eq=False)
class Attractor:
    """One attractor of the map for one input.

    Attributes:
        kind: One of :data:`KINDS`.
        input: The input ``x``, ``(D,)``.
        input_index: Index of ``x`` among the inputs given to :func:`find_attractors`.
        state: A point on it: the fixed point (exact), a point of the cycle, or the last state of the orbit
            (for ``divergent``: the last state before the divergence was detected).
        mean: Time-average state over ``orbit`` (exact for a cycle stored whole), ``(H,)``.
        orbit: A representative stretch of the orbit, ``(L, H)``: one full period for a cycle of period
            ``<= orbit_len``, otherwise the last ``orbit_len`` recorded states; ``(1, H)`` for a fixed point.
        period: The cycle's period (``periodic`` only).
        basin_count: How many initial states reached it.
        members: Indices of those initial states (given states first, then the random ones).
        decision: The readout's greedy action at the fixed point, or the most frequent one along the orbit.
        converged: ``False`` for an ``unresolved`` orbit (the recordings could not decide; see the module).
        transverse_stable: ``quasi_periodic`` only: ``lambda_2 < -lyap_eps`` (an attracting invariant curve, the
            optional confirmation of paper.md 5.1); ``None`` otherwise or when only one exponent was computed.
        pattern: The activation pattern at a fixed point (``None`` for other kinds).
        lyapunov: (property) The largest Lyapunov exponents, descending, natural log per step (``(n_lyap,)``): QR
            estimates over the recording, or ``log |eigenvalue|`` of the Jacobian at a fixed point (``-inf`` for
            zero eigenvalues); NaN for ``divergent``.
        eigenvalues: (property) Jacobian eigenvalues at a fixed point by decreasing modulus (``None`` otherwise).
            Computed on first access: thousands of fixed points would otherwise cost an eigendecomposition each.
    """

    kind: str
    input: np.ndarray
    input_index: int
    state: np.ndarray
    mean: np.ndarray
    orbit: np.ndarray
    period: Optional[int]
    basin_count: int
    members: np.ndarray
    decision: Optional[int] = None
    converged: bool = True
    transverse_stable: Optional[bool] = None
    pattern: Optional[np.ndarray] = None
    n_lyap: int = 2
    lyapunov_estimate: Optional[np.ndarray] = field(default=None, repr=False)
    W_rec: Optional[np.ndarray] = field(default=None, repr=False)
    _eig: Optional[np.ndarray] = field(default=None, init=False, repr=False)

    @property
    def eigenvalues(self) -> Optional[np.ndarray]:
        """Jacobian eigenvalues at a fixed point, by decreasing modulus (``None`` for other kinds)."""
        if self.kind == "fixed_point" and self._eig is not None:  # given (smooth maps) or computed before
            return self._eig
        if self.kind != "fixed_point" or self.pattern is None or self.W_rec is None:
            return None
        if self._eig is None:
            self._eig = jacobian_eigenvalues(self.W_rec, self.pattern)
        return self._eig

    @property
    def lyapunov(self) -> np.ndarray:
        """The ``n_lyap`` largest Lyapunov exponents, descending, natural log per step."""
        if self.kind == "fixed_point" and self.eigenvalues is not None:
            with np.errstate(divide="ignore"):
                return np.log(np.abs(self.eigenvalues[: self.n_lyap]))
        if self.lyapunov_estimate is None:
            return np.full(self.n_lyap, np.nan)
        return self.lyapunov_estimate

    @property
    def norm(self) -> float:
        """``|mean|`` (``inf`` for a divergent orbit caught after overflowing)."""
        with np.errstate(over="ignore", invalid="ignore"):
            return float(np.linalg.norm(self.mean))

    @property
    def spectral_radius(self) -> Optional[float]:
        """``max |eigenvalue|`` of the Jacobian at a fixed point (``None`` for other kinds)."""
        ev = self.eigenvalues
        return None if ev is None else float(np.abs(ev[0])) if ev.size else 0.0

    def __repr__(self) -> str:
        extra = f", period={self.period}" if self.period is not None else ""
        lam = np.array2string(np.asarray(self.lyapunov), precision=4, separator=", ")
        return (
            f"Attractor({self.kind}{extra}, input={self.input_index}, basin={self.basin_count}, "
            f"|mean|={self.norm:.4g}, "
            f"lyapunov={lam}{'' if self.converged else ', converged=False'})"
        )


@dataclass(frozen=True)
class _Criteria:
    n_transient: int
    n_record: int
    n_probe: int
    check_every: int
    divergence_norm: float
    fp_tol: float
    snap_tol: float
    period_tol: float
    max_period: int
    n_lyap: int
    lyap_eps: float
    lyap_warmup: int
    qr_every: int
    merge_tol: float
    fp_merge_tol: float
    orbit_len: int
    max_extensions: int
    chunk_size: int
    record_batch: int
    escape_checks: int = 2
    escape_rate: float = 1.01
    escape_align: float = 1e-4
    sparse_below: float = 0.85
    transient_dtype: str = "auto"
    cycle_record: int = 500
    frame_dtype: str = "auto"
    qp_gap: float = 5e-3


# ---------------------------------------------------------------------------------------------- tangent map
class _Frames:
    """``k`` orthonormal tangent vectors for each of ``r`` trajectories, evolved by ``diag(active) W`` (QR method).

    Stored as one ``(H, r * k)`` matrix so that a step is a single ``W @ Q`` product; re-orthonormalised (batched
    QR) every ``qr_every`` steps, accumulating ``log |diag R|``. A frame can be continued across recordings
    (``log_growth`` and ``n_acc`` carried over), so extended recordings refine the same estimate.
    """

    def __init__(
        self,
        W: np.ndarray,
        frames: np.ndarray,
        qr_every: int,
        log_growth: Optional[np.ndarray] = None,
        n_acc: Optional[np.ndarray] = None,
        dtype: Any = np.float64,
    ) -> None:
        self.W = None if W is None else np.asarray(W, dtype=dtype)
        r, H, k = frames.shape
        self.r, self.H, self.k = r, H, k
        self.Q = np.ascontiguousarray(frames.transpose(1, 0, 2).reshape(H, r * k), dtype=dtype)
        self.qr_every = qr_every
        self.log_growth = np.zeros((r, k)) if log_growth is None else np.array(log_growth, dtype=np.float64)
        self.n_acc = np.zeros(r) if n_acc is None else np.array(n_acc, dtype=np.float64)
        self.pending = 0  # steps since the last QR

    def step(self, active: np.ndarray, accumulate: bool) -> None:
        """Advance one step with the activation patterns ``active (r, H)`` of the states the step maps."""
        Z = (self.W @ self.Q).reshape(self.H, self.r, self.k)
        Z *= np.ascontiguousarray(active.T, dtype=Z.dtype)[:, :, None]  # a 0/1 mask: faster than bools
        self.push(Z, accumulate)

    def push(self, Z: np.ndarray, accumulate: bool) -> None:
        """Advance one step with the frames' images ``Z = J_t Q`` (``(H, r, k)``) computed by the caller (the
        tangent map of a map without ``W``: :mod:`analysis.dynamics.generic`)."""
        self.pending += 1
        if self.pending < self.qr_every:
            self.Q = Z.reshape(self.H, self.r * self.k)
        else:
            self._qr(Z, accumulate)

    def _qr(self, Z: np.ndarray, accumulate: bool) -> None:
        q, R = np.linalg.qr(Z.transpose(1, 0, 2))
        if accumulate:
            with np.errstate(divide="ignore"):  # an exactly degenerate direction gives log 0 = -inf, honestly
                self.log_growth += np.log(np.abs(np.diagonal(R, axis1=1, axis2=2)))
            self.n_acc += self.pending
        self.pending = 0
        self.Q = np.ascontiguousarray(q.transpose(1, 0, 2).reshape(self.H, self.r * self.k))

    def drop(self, keep: np.ndarray) -> None:
        """Keep only the trajectories ``keep`` (bool, ``(r,)``)."""
        self.Q = np.ascontiguousarray(self.Q.reshape(self.H, self.r, self.k)[:, keep].reshape(self.H, -1))
        self.log_growth, self.n_acc = self.log_growth[keep], self.n_acc[keep]
        self.r = int(keep.sum())

    def finish(self, accumulate: bool = True) -> None:
        """Fold the steps since the last QR into the estimate."""
        if self.pending:
            self._qr(self.Q.reshape(self.H, self.r, self.k), accumulate)

    def frames(self) -> np.ndarray:
        """The current frames, ``(r, H, k)``."""
        return self.Q.reshape(self.H, self.r, self.k).transpose(1, 0, 2).copy()

    def exponents(self) -> np.ndarray:
        """Exponents ``(r, k)`` (descending per row), natural log per step (NaN before any accumulation)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            lam = self.log_growth / self.n_acc[:, None]
        lam[self.n_acc == 0] = np.nan
        return -np.sort(-lam, axis=1)


def _random_frames(rngs: Sequence[np.random.Generator], H: int, k: int) -> np.ndarray:
    """An orthonormal ``(H, k)`` frame per generator, ``(r, H, k)``."""
    if not len(rngs):
        return np.zeros((0, H, k))
    g = np.stack([rng.standard_normal((H, k)) for rng in rngs])
    return np.linalg.qr(g)[0]


def lyapunov_exponents(
    dyn: "Network",
    x: np.ndarray,
    h0: np.ndarray,
    n_steps: int = 2000,
    k: int = 3,
    *,
    n_warmup: int = 200,
    n_transient: int = 0,
    qr_every: int = 5,
    seed: Seed = 0,
) -> np.ndarray:
    """The ``k`` largest Lyapunov exponents of orbits of the map (QR / Benettin method), batched.

    ``n_transient`` steps are iterated first (discarded), then the tangent frame is aligned for ``n_warmup`` steps,
    then the log-growth of the QR factors is averaged over ``n_steps`` steps.

    Args:
        dyn: The map.
        x: Inputs ``(D,)`` or ``(B, D)``.
        h0: Initial states ``(H,)`` or ``(B, H)``.
        n_steps: Steps averaged over.
        k: Number of exponents (``<= H``).
        n_warmup: Frame-alignment steps (not averaged).
        n_transient: Steps discarded before the frame starts.
        qr_every: Re-orthonormalise every this many steps.
        seed: Seed of the initial frames.

    Returns:
        ``(B, k)`` exponents, descending, natural log per step (``(k,)`` for one orbit); ``-inf`` for directions the
        tangent map annihilates exactly.

    Example:
        >>> from analysis.network import Network
        >>> mu = 1.9                                       # tent map x -> mu min(x, 1 - x) as a 2-unit ReLU RNN
        >>> dyn = Network([[mu, -2 * mu], [mu, -2 * mu]], [[0.0], [-0.5]])
        >>> lam = lyapunov_exponents(dyn, np.ones(1), np.array([0.3, 0.0]), k=2)
        >>> bool(abs(lam[0] - np.log(mu)) < 1e-3), lam[1]          # |T'| = mu everywhere; J is rank one
        (True, np.float64(-inf))
    """
    H = dyn.hidden_size
    if not 1 <= k <= H:
        raise ValueError(f"k must lie in [1, H={H}], got {k}")
    if qr_every < 1:
        raise ValueError("qr_every must be >= 1")
    h0 = np.asarray(h0, dtype=np.float64)
    c = dyn.drive(x)
    single = h0.ndim == 1 and c.ndim == 1
    B = int(np.broadcast_shapes(h0.shape[:-1], c.shape[:-1], (1,))[0])
    h = np.array(np.broadcast_to(h0, (B, H)))
    c = np.broadcast_to(c, (B, H))
    W = dyn.W_rec
    for _ in range(n_transient):
        h = np.maximum(h @ W.T + c, 0.0)
    ss = np.random.SeedSequence(seed)
    frames = _Frames(W, _random_frames([np.random.default_rng(s) for s in ss.spawn(B)], H, k), qr_every)
    n_warmup = -(-n_warmup // qr_every) * qr_every  # whole QR intervals
    for j in range(1, n_warmup + n_steps + 1):
        pre = h @ W.T + c
        frames.step(pre > 0, accumulate=j > n_warmup)
        h = np.maximum(pre, 0.0)
    frames.finish()
    lam = frames.exponents()
    return lam[0] if single else lam


# ---------------------------------------------------------------------------------------------- the engine
@dataclass
class _Record:
    """A provisional attractor of one input (merged and converted to :class:`Attractor` at the end)."""

    kind: str
    inp: int
    state: np.ndarray
    members: list = field(default_factory=list)
    mean: Optional[np.ndarray] = None
    orbit: Optional[np.ndarray] = None
    period: Optional[int] = None
    lyapunov: Optional[np.ndarray] = None
    pattern: Optional[np.ndarray] = None
    converged: bool = True
    transverse_stable: Optional[bool] = None
    eigenvalues: Optional[np.ndarray] = None  # a fixed point's Jacobian spectrum (smooth maps, no pattern)


def float32_wanted(setting: str, size: int) -> bool:
    """Whether an arithmetic setting (``transient_dtype``, ``frame_dtype``: ``"float32"``, ``"float64"`` or
    ``"auto"``) means float32 for a map of ``size`` state dimensions: ``"auto"`` is float32 from 64 on, where it
    pays (small maps keep float64: it costs nothing)."""
    return setting == "float32" or (setting == "auto" and size >= 64)


class _Engine:
    """Every initial state of every input, iterated in chunks (see the module docstring for the strategy)."""

    def __init__(
        self,
        dyn: "Network",
        C: np.ndarray,
        h0: np.ndarray,
        crit: _Criteria,
        seqs: Sequence[np.random.SeedSequence],
        bar: Any,
    ) -> None:
        self.dyn = dyn
        self.W = dyn.W_rec
        # the transient's arithmetic: rows of W.T (= columns of W) are gathered per active set (see _iterate)
        self.dtype = np.dtype(np.float32 if float32_wanted(crit.transient_dtype, dyn.hidden_size) else np.float64)
        self.WT = np.ascontiguousarray(dyn.W_rec.T, dtype=self.dtype)
        self.C_t = C.astype(self.dtype)
        self.frame_dtype = np.dtype(np.float32 if float32_wanted(crit.frame_dtype, dyn.hidden_size) else np.float64)
        self._init_search(C, h0, crit, seqs, bar)  # C: (N, H) drives
        B, H = self.h.shape
        self._fp: dict[tuple[int, bytes], int] = {}
        self._solvers: dict[int, PatternSolver] = {}
        # escape detection (see _escape): per trajectory, the previous check's norm, step count, direction and
        # pattern, and how many consecutive checks confirmed the escape
        self._esc_norm = np.full(B, np.nan)
        self._esc_step = np.zeros(B, dtype=np.int64)
        self._esc_count = np.zeros(B, dtype=np.int64)
        self._esc_has = np.zeros(B, dtype=bool)
        self._esc_u: Optional[np.ndarray] = None  # (B, H) float32, allocated on first use
        self._esc_pat: Optional[np.ndarray] = None  # (B, ceil(H / 8)) packed patterns

    def _init_search(self, C: np.ndarray, h0: np.ndarray, crit: _Criteria, seqs: Sequence[np.random.SeedSequence],
                     bar: Any) -> None:
        """What every engine keeps (this one and the generic path's): the per-input ``C`` the map is iterated with,
        the trajectories (``h``, their input ``inp``, ``steps``, ``done``) started from ``h0 (N, M, H)``, the
        thresholds, the inputs' seed streams, the progress bar and the records."""
        self.C = C
        N, M, H = h0.shape
        self.M, self.H = M, H
        self.h = h0.reshape(N * M, H).copy()
        self.inp = np.repeat(np.arange(N), M)
        B = len(self.h)
        self.steps = np.zeros(B, dtype=np.int64)
        self.done = np.zeros(B, dtype=bool)
        self.crit, self.seqs, self.bar = crit, seqs, bar
        self.records: list[_Record] = []
        self._orbits: dict[int, list[int]] = {}  # input -> ids of its recorded (non-stationary) attractors
        self._div: dict[int, int] = {}  # input -> its divergent record

    def _finish(self, idx: np.ndarray) -> None:
        self.done[idx] = True
        self.bar.update(len(idx))

    # ------------------------------------------------------------------ exits
    def _solver(self, i: int) -> PatternSolver:
        s = self._solvers.get(i)
        if s is None:
            s = self._solvers[i] = PatternSolver(self.W, self.C[i])
        return s

    def _fixed_point_record(self, i: int, pattern: np.ndarray, h: np.ndarray) -> int:
        """The record of the fixed point of input ``i`` on ``pattern`` (created on first use; exact if possible)."""
        key = (i, _pattern_key(pattern))
        rid = self._fp.get(key)
        if rid is None:
            solver = self._solver(i)
            hs, res = solver.solve(pattern)
            if np.isfinite(res) and res <= self.crit.fp_tol * (1.0 + np.linalg.norm(hs)):
                h = hs  # exact refinement
            rid = self._fp[key] = len(self.records)
            h = np.array(h, dtype=np.float64)
            self.records.append(_Record("fixed_point", i, h, pattern=h @ self.W.T + self.C[i] > 0))
        return rid

    def _join(self, rid: int, idx: np.ndarray) -> None:
        self.records[rid].members.extend(int(b) for b in idx)
        self._finish(idx)

    def _divergent(self, idx: np.ndarray, h: np.ndarray) -> None:
        """One ``divergent`` record per input collects its diverged trajectories."""
        inp = self.inp[idx]
        for i in np.unique(inp):
            sel = np.flatnonzero(inp == i)
            rid = self._div.get(int(i))
            if rid is None:
                rid = self._div[int(i)] = len(self.records)
                state = np.nan_to_num(np.asarray(h[sel[0]], dtype=np.float64), posinf=np.finfo(float).max)
                self.records.append(_Record("divergent", int(i), state))
            self._join(rid, idx[sel])

    def _check(
        self, idx: np.ndarray, h: np.ndarray, h_prev: np.ndarray, active: Optional[np.ndarray] = None
    ) -> None:
        """Exit the diverged (or escaping) trajectories and those that have converged to a fixed point.

        ``active`` is the activation pattern of the step that produced ``h`` (enables the escape test)."""
        crit = self.crit
        norm, div, step, step_norm, rel, near = self._exit_diverged(idx, h, h_prev)
        if active is not None and crit.escape_checks > 0:
            grow = np.flatnonzero(~div & (rel >= crit.snap_tol))
            self._escape(idx, grow, h, norm, step, step_norm, active)
        if not near.size:
            return
        inp = self.inp[idx[near]]
        pat = h[near] @ self.W.T + self.C[inp] > 0
        # one exact solve per distinct (input, linear region), shared by every trajectory in it
        keys = np.concatenate([inp.astype(np.int64).view(np.uint8).reshape(-1, 8), np.packbits(pat, axis=1)], axis=1)
        _, first, group, counts = np.unique(keys, axis=0, return_index=True, return_inverse=True, return_counts=True)
        by_group = np.split(near[np.argsort(group.reshape(-1), kind="stable")], np.cumsum(counts)[:-1])
        for j, members in zip(first, by_group):
            i = int(inp[j])
            solver = self._solver(i)
            hs, res = solver.solve(pat[j])
            snap = members[:0]
            if np.isfinite(res):
                scale = 1.0 + np.linalg.norm(hs)
                if res <= crit.fp_tol * scale and solver.is_stable(pat[j]):
                    snap = members[np.linalg.norm(h[members] - hs, axis=1) <= crit.snap_tol * scale]
            rest = np.setdiff1d(members, snap)
            stationary = rest[rel[rest] < crit.fp_tol]  # the paper's criterion: the step itself is tiny
            for sel in (snap, stationary):
                if sel.size:
                    rid = self._fixed_point_record(i, pat[j], h[sel[0]])
                    self.h[idx[sel]] = self.records[rid].state
                    self._join(rid, idx[sel])

    def _exit_diverged(
        self, idx: np.ndarray, h: np.ndarray, h_prev: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Exit the trajectories ``idx`` whose state ``h`` diverged; returns ``(norm, div, step, step_norm, rel,
        near)``: ``|h|``, the diverged ones, the last step ``h - h_prev``, its norm and relative size
        ``|step| / (1 + |h|)``, and the positions of the others whose relative step is below ``snap_tol``."""
        norm = np.linalg.norm(h, axis=1)
        div = ~np.isfinite(norm) | (norm > self.crit.divergence_norm)
        if div.any():
            self._divergent(idx[div], h[div])
        step = h - h_prev
        step_norm = np.linalg.norm(step, axis=1)
        rel = step_norm / (1.0 + norm)
        near = np.flatnonzero(~div & (rel < self.crit.snap_tol))
        return norm, div, step, step_norm, rel, near

    def _escape(
        self,
        idx: np.ndarray,
        cand: np.ndarray,
        h: np.ndarray,
        norm: np.ndarray,
        step: np.ndarray,
        step_norm: np.ndarray,
        active: np.ndarray,
    ) -> None:
        """Exit the trajectories ``idx[cand]`` that escape to infinity inside a fixed linear region.

        At a check, a trajectory *escapes* when (a) its norm grew by at least ``escape_rate`` per step since the
        previous check, (b) its last step's direction ``u`` is, within ``escape_align`` (``1 - cos``), an expanding
        eigen-direction of the current region's Jacobian ``D W`` (``|D W u| >= escape_rate``), (c) the ray
        ``h + s u`` (``s >= 0``) never leaves the region (pre-activations of active units do not decrease along it,
        of inactive ones do not increase) and (d) pattern and direction are those of the previous check; for
        ``escape_checks`` consecutive checks. Such an orbit follows the region's unstable direction out of every
        bound without changing region: iterating it up to ``divergence_norm`` would only cost time.
        """
        crit = self.crit
        if self._esc_u is None:
            self._esc_u = np.zeros((len(self.h), self.H), dtype=np.float32)
            self._esc_pat = np.zeros((len(self.h), -(-self.H // 8)), dtype=np.uint8)
        rows = idx[cand]
        prev_norm, prev_step = self._esc_norm[rows], self._esc_step[rows]
        self._esc_norm[idx] = norm
        self._esc_step[idx] = self.steps[idx]
        dt = np.maximum(self.steps[rows] - prev_step, 1)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            grew = norm[cand] >= prev_norm * crit.escape_rate**dt  # NaN (no previous check) -> False
        grow = cand[grew & (step_norm[cand] > 0)]
        stale = np.ones(len(idx), dtype=bool)
        stale[grow] = False
        self._esc_count[idx[stale]] = 0
        self._esc_has[idx[stale]] = False
        if not grow.size:
            return
        b = idx[grow]
        u = step[grow] / step_norm[grow, None]
        pg = np.packbits(active[grow], axis=1)
        # cheap tests first (same region, same direction as at the previous check); the Jacobian only for those
        same = (self._esc_has[b] & np.all(self._esc_pat[b] == pg, axis=1)
                & (np.einsum("ij,ij->i", u, self._esc_u[b]) >= 1.0 - crit.escape_align))
        self._esc_u[b], self._esc_pat[b], self._esc_has[b] = u, pg, True
        passed = np.zeros(len(grow), dtype=bool)
        if same.any():
            us, act = u[same], active[grow[same]]
            Wu = us @ self.W.T
            Du = np.where(act, Wu, 0.0)
            lam = np.linalg.norm(Du, axis=1)
            eig = (lam >= crit.escape_rate) & (np.einsum("ij,ij->i", us, Du) >= (1.0 - crit.escape_align) * lam)
            ray = np.all(np.where(act, Wu >= 0.0, Wu <= 0.0), axis=1)
            passed[same] = eig & ray
        self._esc_count[b] = np.where(passed, self._esc_count[b] + 1, 0)
        out = grow[passed & (self._esc_count[b] >= crit.escape_checks)]
        if out.size:
            self._divergent(idx[out], h[out])

    # ------------------------------------------------------------------ iterate
    def advance(self, idx: np.ndarray, target: np.ndarray) -> None:
        """Iterate trajectories ``idx`` until each reaches ``target`` steps (or exits), ``chunk_size`` at a time."""
        idx = np.asarray(idx, dtype=np.int64)
        target = np.broadcast_to(np.asarray(target, dtype=np.int64), idx.shape)
        keep = ~self.done[idx] & (self.steps[idx] < target)
        idx, target = idx[keep], target[keep]
        order = np.argsort(target, kind="stable")  # similar targets share a chunk
        idx, target = idx[order], target[order]
        for s in range(0, len(idx), self.crit.chunk_size):
            self._advance_chunk(idx[s : s + self.crit.chunk_size], target[s : s + self.crit.chunk_size])

    def _advance_chunk(self, idx: np.ndarray, target: np.ndarray) -> None:
        """Iterate one chunk ``check_every`` steps at a time (:meth:`_iterate`), checking for exits in between."""
        while True:
            run = ~self.done[idx] & (self.steps[idx] < target)
            idx, target = idx[run], target[run]
            if not idx.size:
                return
            n = int(min(self.crit.check_every, (target - self.steps[idx]).min()))
            h, h_prev, active = self._iterate(idx, n)
            self.h[idx] = h
            self.steps[idx] += n
            self._check(idx, h, h_prev, active)

    def _iterate(self, idx: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        """``n`` steps of trajectories ``idx`` in the transient's arithmetic: ``(h, h_prev, active)``, the last
        two states and the activation pattern of the last step."""
        WT = self.WT
        H = self.H
        h = self.h[idx].astype(self.dtype, copy=False)
        c = self.C_t[self.inp[idx]]
        h_prev = h
        active = None
        for k in range(n):
            h_prev = h
            # units silent in every trajectory of the chunk contribute exactly nothing: skip their columns
            on = np.flatnonzero(h.any(axis=0))
            pre = h[:, on] @ WT[on] if len(on) < self.crit.sparse_below * H else h @ WT
            pre += c
            if k == n - 1:
                active = pre > 0
            h = np.maximum(pre, 0.0, out=pre)
        return h, h_prev, active

    # ------------------------------------------------------------------ record
    def _record_pass(
        self,
        reps: np.ndarray,
        cands: np.ndarray,
        owner: np.ndarray,
        cmin: np.ndarray,
        carry: Optional[tuple[np.ndarray, np.ndarray, np.ndarray]] = None,
        due: Optional[tuple[np.ndarray, np.ndarray, np.ndarray]] = None,
    ) -> tuple[dict, Optional[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
        """Record up to ``n_record`` steps of representatives ``reps``; lowers ``cmin`` (squared distances of the
        candidates to their owner's orbit). ``carry`` continues earlier frames ``(Q, log_growth, n_acc)``.

        A representative whose cycle (period ``k <= orbit_len / 2``) returns exactly after the frame warm-up and
        then repeats once more stops as soon as its frame has averaged over ``cycle_record`` steps of whole periods
        (the cycle's exponents need no more); the others run the whole recording. Returns the per-representative
        outputs and the frames to continue (``None`` without Lyapunov exponents).

        A first return ``k`` after the reference state is confirmed by a second one at ``2k`` (``second``: 1
        confirmed, 0 refuted, -1 beyond this pass). ``due = (h_ref, tol, step)`` carries such a pending second return
        of an earlier pass into this one (``step < 0``: none), since an extension continues the same trajectory."""
        return _RecordPass(self, reps, cands, owner, cmin, carry, due).run()

    def record(self, reps: np.ndarray, cands: np.ndarray) -> None:
        """Record and classify representatives (one per input), ``record_batch`` at a time; candidates of the same
        input within ``merge_tol`` of a representative's orbit join its attractor."""
        for s in range(0, len(reps), self.crit.record_batch):
            rb = reps[s : s + self.crit.record_batch]
            self._record_batch(rb, cands[np.isin(self.inp[cands], self.inp[rb])])

    def _record_batch(self, reps: np.ndarray, cands: np.ndarray) -> None:
        crit = self.crit
        pos = {int(self.inp[b]): n for n, b in enumerate(reps)}
        owner = np.array([pos[int(self.inp[b])] for b in cands], dtype=np.int64)
        cmin = np.full(len(cands), np.inf)
        rid_of = np.full(len(reps), -1, dtype=np.int64)
        todo = np.arange(len(reps))
        carry = None
        due = None
        for attempt in range(crit.max_extensions + 1):
            sub = np.flatnonzero(np.isin(owner, todo))
            cm = cmin[sub]
            out, frames = self._record_pass(reps[todo], cands[sub], np.searchsorted(todo, owner[sub]), cm, carry,
                                            due)
            cmin[sub] = cm
            unresolved = []
            for n, t in enumerate(todo):
                rid = self._classify(int(reps[t]), {k: v[n] for k, v in out.items()}, attempt == crit.max_extensions)
                if rid < 0:
                    unresolved.append(t)
                else:
                    rid_of[t] = rid
            if not unresolved:
                break
            keep = np.isin(todo, unresolved)
            if frames is not None:  # extended recordings continue the same tangent frames
                carry = (frames[0][keep], frames[1][keep], frames[2][keep])
            due = (out["ref"][keep], out["ref_tol"][keep], out["due"][keep])  # and look for due second returns
            todo = todo[keep]
        for n, b in enumerate(cands):
            rec = self.records[rid_of[owner[n]]]
            if rec.kind != "divergent" and np.sqrt(max(cmin[n], 0.0)) <= crit.merge_tol * _scale(rec):
                self._join(rid_of[owner[n]], np.array([b]))

    def _classify(self, b: int, o: dict[str, Any], last: bool) -> int:
        """Classify representative ``b`` from its recording; returns a record id, or -1 to record it again.

        In order: diverged; stationary (a fixed point); settled in one linear region whose exact fixed point is
        stable (a slowly converging focus: a fixed point); a return confirmed by a second one (periodic); otherwise
        the exponents decide, after up to ``max_extensions`` more recordings while they are ambiguous or a second
        return is still due: chaotic, quasi-periodic (``|lambda_1| <= lyap_eps``, ``lambda_2 <= lambda_1 - qp_gap``
        and no period), or ``unresolved`` (what a finite recording cannot decide: a single return, a contraction
        that has not settled, no transverse gap).
        """
        crit = self.crit
        i = int(self.inp[b])
        if o["dead"]:
            self._divergent(np.array([b]), self.h[b][None])
            return self._div[i]
        k = int(o["first"])
        if o["rel"] < crit.fp_tol or k == 1:
            rid = self._stationary_record(i, o, b)
            self._join(rid, np.array([b]))
            return rid
        orbit = o["orbit"]
        rid = self._settled_fixed_point(i, orbit)
        if rid is not None:
            self._join(rid, np.array([b]))
            return rid
        kind = self._kind(k, int(o["second"]), o["lyap"], last)
        if not kind:
            return -1
        lyap = o["lyap"]
        period = k if kind == "periodic" else None
        transverse = bool(lyap[1] < -crit.lyap_eps) if kind == "quasi_periodic" and lyap.size > 1 else None
        if period is not None and period <= len(orbit):
            orbit = orbit[-period:]
        rid = len(self.records)
        self.records.append(
            _Record(kind, i, orbit[-1].copy(), mean=orbit.mean(axis=0), orbit=orbit.copy(), period=period,
                    lyapunov=lyap, converged=kind != "unresolved", transverse_stable=transverse)
        )
        self._orbits.setdefault(i, []).append(rid)
        self._join(rid, np.array([b]))
        return rid

    def _stationary_record(self, i: int, o: dict[str, Any], b: int) -> int:
        """The fixed-point record of a recording that stopped moving (its last step's activation pattern)."""
        return self._fixed_point_record(i, o["last_pre"] > 0, self.h[b])

    def _stepper(self, reps: np.ndarray, frames: Optional[_Frames]) -> "_ReluStepper":
        """What advances the recorded representatives ``reps`` (and their tangent ``frames``) one step."""
        return _ReluStepper(self.W, self.C[self.inp[reps]], frames)

    def _kind(self, k: int, second: int, lyap: np.ndarray, last: bool) -> str:
        """The kind of a non-stationary orbit ("" to record it again): see :meth:`_classify`."""
        return orbit_kind(k, second, lyap, last, self.crit.lyap_eps, self.crit.qp_gap)

    def _settled_fixed_point(self, i: int, orbit: np.ndarray) -> Optional[int]:
        """The fixed point of the orbit's linear region, when the whole stored orbit stays in that one region and
        its exact fixed point exists and is stable: the region's affine map then contracts the orbit onto it
        (however slowly, e.g. a focus with spectral radius 0.9995), so it is that fixed point's basin."""
        pre = orbit @ self.W.T + self.C[i]
        pattern = pre[-1] > 0
        if not np.array_equal(pre > 0, np.broadcast_to(pattern, pre.shape)):
            return None
        solver = self._solver(i)
        hs, res = solver.solve(pattern)
        if not (np.isfinite(res) and res <= self.crit.fp_tol * (1.0 + np.linalg.norm(hs))):
            return None
        ev = solver.eigenvalues(pattern)  # strictly inside the unit circle: a neutral rotation is no fixed point's basin
        if ev.size and not np.abs(ev[0]) <= 1.0 - SETTLE_MARGIN:
            return None
        return self._fixed_point_record(i, pattern, hs)

    def match_known(self, idx: np.ndarray) -> None:
        """Pending states lying on an already recorded orbit of their input join that attractor."""
        crit = self.crit
        for i in np.unique(self.inp[idx]):
            rids = self._orbits.get(int(i))
            if not rids:
                continue
            sel = idx[self.inp[idx] == i]
            for rid in rids:
                sel = sel[~self.done[sel]]
                if not sel.size:
                    break
                rec = self.records[rid]
                thr = _match_threshold(rec, crit.merge_tol)
                hs = self.h[sel]
                d2 = np.sum(hs**2, 1)[:, None] + np.sum(rec.orbit**2, 1)[None] - 2.0 * hs @ rec.orbit.T
                hit = sel[np.sqrt(np.maximum(d2.min(axis=1), 0.0)) <= thr]
                if hit.size:
                    self._join(rid, hit)

    # ------------------------------------------------------------------ driver
    def run(self) -> None:
        crit = self.crit
        B = len(self.h)
        self.advance(np.arange(B), min(crit.n_probe, crit.n_transient))
        while True:
            pend = np.flatnonzero(~self.done)
            if pend.size and self._orbits:
                self.match_known(pend)
                pend = np.flatnonzero(~self.done)
            if not pend.size:
                return
            _, first = np.unique(self.inp[pend], return_index=True)
            reps = pend[first]
            self.advance(reps, np.maximum(self.steps[reps], crit.n_transient))
            reps = reps[~self.done[reps]]
            if reps.size and self._orbits:  # a representative already on a recorded attractor needs no recording
                self.match_known(reps)
                reps = reps[~self.done[reps]]
                # one that is not may still be converging slowly onto one: settle it longer (the cheap transient)
                # before paying for a recording that would only duplicate a known attractor
                known = reps[np.isin(self.inp[reps], np.fromiter(self._orbits, dtype=np.int64))]
                if known.size:
                    self.advance(known, self.steps[known] + crit.n_transient)
                    self.match_known(known[~self.done[known]])
                    reps = reps[~self.done[reps]]
            others = np.setdiff1d(pend, pend[first])
            others = others[~self.done[others]]
            if reps.size:
                self.record(reps, others[np.isin(self.inp[others], self.inp[reps])])
            others = others[~self.done[others]]  # not on a recorded orbit yet: let them settle further
            # settle geometrically (n_probe, then doubling, up to n_transient): slowly converging states need few
            # rounds, quickly converging ones are caught early
            steps = self.steps[others]
            settle = np.minimum(steps + np.maximum(crit.n_probe, steps), np.maximum(steps, crit.n_transient))
            self.advance(others, settle)



class _RecordPass:
    """One recording pass of :meth:`_Engine._record_pass`, in its phases: set up the tangent frames, the return
    watches and the outputs (``__init__``); per step, watch for returns (:meth:`_watch_returns`), stop confirmed
    cycles early (:meth:`_stop_cycles`), measure candidates against the orbits (:meth:`_membership_window`) and
    park diverged orbits (:meth:`_park_diverged`); then fill the outputs of the representatives still recording
    (:meth:`_finish_live`) and carry pending second returns into the next pass (:meth:`_outputs`).

    Per-representative arrays are indexed by ``n`` in ``range(len(reps))``; ``live`` lists those still recording,
    and ``h``, ``h_prev`` and ``pre`` hold their states (one row per live representative).
    """

    def __init__(
        self,
        engine: "_Engine",
        reps: np.ndarray,
        cands: np.ndarray,
        owner: np.ndarray,
        cmin: np.ndarray,
        carry: Optional[tuple[np.ndarray, np.ndarray, np.ndarray]],
        due: Optional[tuple[np.ndarray, np.ndarray, np.ndarray]],
    ) -> None:
        self.engine, self.reps, self.cmin = engine, reps, cmin
        crit = self.crit = engine.crit
        self.H = engine.H
        self.r, self.L, self.n_rec = len(reps), crit.orbit_len, crit.n_record
        self.h = engine.h[reps].copy()
        self.h_prev = self.pre = self.h
        self._init_frames(carry)
        self.stepper = engine._stepper(reps, self.frames)
        self.ring = np.zeros((self.r, self.L, self.H))
        self._init_returns(due)
        # early stop of cycles (first pass only): reference at the end of the warm-up, first return, one repetition
        self.early = crit.cycle_record > 0 and self.frames is not None and carry is None and self.warm > 0
        self._init_cycle_watch()
        self._init_outputs()
        self.live = np.arange(self.r)
        self._init_membership(cands, owner)

    # ------------------------------------------------------------------ set-up
    def _init_frames(self, carry: Optional[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """The tangent frames (continued from ``carry``, else random per representative) and the warm-up."""
        crit, eng = self.crit, self.engine
        self.frames: Optional[_Frames] = None
        self.warm = 0
        if crit.n_lyap and carry is not None:
            self.frames = _Frames(eng.W, carry[0], crit.qr_every, carry[1], carry[2], dtype=eng.frame_dtype)
        elif crit.n_lyap:
            # per-representative frames, so results do not depend on how representatives are batched
            rngs = [np.random.default_rng(eng.seqs[int(eng.inp[b])].spawn(1)[0]) for b in self.reps]
            self.frames = _Frames(eng.W, _random_frames(rngs, self.H, crit.n_lyap), crit.qr_every,
                                  dtype=eng.frame_dtype)
            self.warm = min(-(-crit.lyap_warmup // crit.qr_every) * crit.qr_every, self.n_rec // 2)

    def _init_returns(self, due: Optional[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """Returns to the reference state taken ``max_period`` steps before the end, and a pending second return."""
        r, H = self.r, self.H
        self.j_ref = max(0, self.n_rec - self.crit.max_period)
        self.h_ref = self.h.copy()
        self.tol_ref = self.crit.period_tol * (1.0 + np.linalg.norm(self.h_ref, axis=1))
        self.first = np.full(r, -1, dtype=np.int64)
        self.best_d = np.full(r, np.inf)
        self.best_k = np.full(r, -1, dtype=np.int64)
        self.dead = np.zeros(r, dtype=bool)
        self.second = np.full(r, -1, dtype=np.int64)
        if due is not None:  # a second return pending from the previous pass
            self.d_ref, self.d_tol, self.d_step = due
        else:
            self.d_ref, self.d_tol, self.d_step = np.zeros((r, H)), np.zeros(r), np.full(r, -1, dtype=np.int64)

    def _init_cycle_watch(self) -> None:
        r = self.r
        self.j_e, self.k_max = self.warm, min(self.L // 2, self.crit.max_period)
        self.h_e = self.h.copy()
        self.tol_e = np.zeros(r)
        self.k_e = np.full(r, -1, dtype=np.int64)  # first return after j_e (-1: none yet)
        self.broken = np.zeros(r, dtype=bool)  # the return did not repeat: no early stop
        self.cycles_left: Optional[bool] = None  # after the window: does a live representative still repeat?

    def _init_outputs(self) -> None:
        """The outputs, filled when a representative stops (early, or at the end)."""
        r, H, k = self.r, self.H, self.crit.n_lyap
        self.o_first = np.full(r, -1, dtype=np.int64)
        self.o_best = np.full(r, -1, dtype=np.int64)
        self.o_rel = np.zeros(r)
        self.o_pre = np.zeros((r, H))
        self.o_orbit: list[Optional[np.ndarray]] = [None] * r
        self.o_lyap = np.full((r, k), np.nan)
        self.o_steps = np.full(r, self.n_rec, dtype=np.int64)
        self.o_frames = None if self.frames is None else (np.zeros((r, H, k)), np.zeros((r, k)), np.zeros(r))

    def _init_membership(self, cands: np.ndarray, owner: np.ndarray) -> None:
        self.cst = self.engine.h[cands]
        self.groups = {n: np.flatnonzero(owner == n) for n in np.unique(owner)}
        self.cnorm2 = np.einsum("ij,ij->i", self.cst, self.cst)

    # ------------------------------------------------------------------ helpers
    def membership(self, n: int, w: int) -> None:
        """Lower ``cmin`` of representative ``n``'s candidates by their distances to its first ``w`` ring states."""
        sel = self.groups.get(n)
        if sel is not None and sel.size:
            O = self.ring[n, :w]
            d2 = self.cnorm2[sel, None] + np.einsum("ij,ij->i", O, O)[None] - 2.0 * self.cst[sel] @ O.T
            np.minimum(self.cmin[sel], d2.min(axis=1), out=self.cmin[sel])

    def ordered(self, n: int, j: int) -> np.ndarray:
        """Representative ``n``'s stored orbit in time order after ``j`` recorded steps."""
        L = self.L
        return self.ring[n, (j + np.arange(L)) % L] if j >= L else self.ring[n, :j]

    # ------------------------------------------------------------------ the pass
    def run(self) -> tuple[dict, Optional[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
        """Record; returns the per-representative outputs and the frames to continue (see ``_record_pass``)."""
        crit, L, n_rec = self.crit, self.L, self.n_rec
        for j in range(1, n_rec + 1):
            self.h_prev = self.h
            self.h, self.pre = self.stepper.step(self.h, j > self.warm)
            if self.live.size == self.r:  # a slice, not a gather, while every representative records
                self.ring[:, (j - 1) % L] = self.h
            else:
                self.ring[self.live, (j - 1) % L] = self.h
            self._watch_returns(j)
            if self.early and self._stop_cycles(j):
                break
            if self.groups and (j % L == 0 or j == n_rec):
                self._membership_window(j)
            if j % crit.check_every == 0:
                self._park_diverged()
        if self.live.size:
            self._finish_live()
        return self._outputs()

    def _watch_returns(self, j: int) -> None:
        """Returns to the reference state (first, best, and the second at twice the first), and a second return
        due from the previous pass."""
        crit, live, h = self.crit, self.live, self.h
        j_ref, first, d_step, second = self.j_ref, self.first, self.d_step, self.second
        full = live.size == self.r  # then x[live] is x itself: skip the gathers (the per-step overhead)
        if j >= j_ref:
            if j == j_ref:
                self.h_ref[live] = h
                self.tol_ref[live] = crit.period_tol * (1.0 + np.linalg.norm(h, axis=1))
            else:
                h_ref, tol_ref = self.h_ref, self.tol_ref
                tol_l, first_l = (tol_ref, first) if full else (tol_ref[live], first[live])
                dr = np.linalg.norm(h - (h_ref if full else h_ref[live]), axis=1)
                new = (dr < tol_l) & (first_l < 0)
                if new.any():
                    first[live[new]] = j - j_ref
                better = dr < (self.best_d if full else self.best_d[live])
                self.best_d[live[better]] = dr[better]
                self.best_k[live[better]] = j - j_ref
                first_l = first if full else first[live]
                at2 = np.flatnonzero((first_l > 0) & (j - j_ref == 2 * first_l)
                                     & ((d_step if full else d_step[live]) < 0))
                if at2.size:
                    second[live[at2]] = (dr[at2] < tol_ref[live[at2]]).astype(np.int64)
        pend = np.flatnonzero((d_step if full else d_step[live]) == j)
        if pend.size:  # the second return due from the previous pass
            dd = np.linalg.norm(h[pend] - self.d_ref[live[pend]], axis=1)
            second[live[pend]] = (dd < self.d_tol[live[pend]]).astype(np.int64)

    def _stop_cycles(self, j: int) -> bool:
        """Watch for a cycle returning exactly after the warm-up and repeating once; stop those whose frames have
        averaged over ``cycle_record`` steps of whole periods. Returns whether no representative is left."""
        crit, live, h, L = self.crit, self.live, self.h, self.L
        j_e, k_e, broken, warm = self.j_e, self.k_e, self.broken, self.warm
        if j > j_e + 2 * self.k_max:  # returns are no longer looked for: k_e and broken are final
            if self.cycles_left is None:
                self.cycles_left = bool(np.any((k_e[live] > 0) & ~broken[live]))
            if not self.cycles_left:
                return False
        if j == j_e:
            self.h_e[live] = h
            self.tol_e[live] = crit.period_tol * (1.0 + np.linalg.norm(h, axis=1))
        elif j_e < j <= j_e + 2 * self.k_max:
            h_e, tol_e = self.h_e, self.tol_e
            look = np.flatnonzero((k_e[live] < 0) & (j - j_e <= self.k_max))
            if look.size:
                ret = np.linalg.norm(h[look] - h_e[live[look]], axis=1) < tol_e[live[look]]
                k_e[live[look[ret]]] = j - j_e
            rep = np.flatnonzero((k_e[live] > 0) & ~broken[live] & (j > j_e + k_e[live])
                                 & (j <= j_e + 2 * k_e[live]))
            if rep.size:  # the second period must repeat the first, state by state
                back = self.ring[live[rep], (j - k_e[live[rep]] - 1) % L]
                miss = np.linalg.norm(h[rep] - back, axis=1) >= tol_e[live[rep]]
                broken[live[rep[miss]]] = True
        k = k_e[live]
        done_now = np.flatnonzero(
            (k > 0) & ~broken[live] & (j >= j_e + 2 * k) & (j - warm >= crit.cycle_record)
            & ((j - warm) % np.lcm(np.maximum(k, 1), crit.qr_every) == 0)
        )
        if not done_now.size:
            return False
        rows = live[done_now]
        lam = self.frames.exponents()  # pending == 0 here: j - warm is a multiple of qr_every
        self.second[rows] = 1  # the second period repeated the first, state by state
        for n in rows:
            self.o_first[n] = self.o_best[n] = k_e[n]
            self.o_orbit[n] = self.ordered(n, j).copy()
            self.membership(int(n), min(j, L))
        self.o_lyap[rows] = lam[done_now]
        self.o_rel[rows] = np.linalg.norm(h[done_now] - self.h_prev[done_now], axis=1) / (
            1.0 + np.linalg.norm(h[done_now], axis=1))
        self.o_pre[rows] = self.pre[done_now]
        self.o_steps[rows] = j
        self.engine.h[self.reps[rows]] = h[done_now]
        keep = np.ones(len(live), dtype=bool)
        keep[done_now] = False
        self.live, self.h, self.h_prev, self.pre = live[keep], h[keep], self.h_prev[keep], self.pre[keep]
        self.stepper.keep(keep)
        self.cycles_left = None  # recomputed for the representatives still recording
        return not self.live.size

    def _membership_window(self, j: int) -> None:
        """Candidate-to-orbit distances for the window just filled, one GEMM per representative."""
        L = self.L
        w = L if j % L == 0 else j % L
        for n in self.live:
            self.membership(int(n), w)

    def _park_diverged(self) -> None:
        """Park diverged orbits at 0 (they are flagged ``dead``) so nothing overflows."""
        h = self.h
        norm = np.linalg.norm(h, axis=1)
        bad = ~np.isfinite(norm) | (norm > self.crit.divergence_norm)
        if bad.any():
            live = self.live
            self.dead[live[bad]] = True
            self.engine.h[self.reps[live[bad]]] = h[bad]
            h[bad] = 0.0
            if self.frames is not None:
                self.frames.Q.reshape(self.H, len(live), -1)[:, bad] = 0.0

    def _finish_live(self) -> None:
        """The outputs of the representatives that recorded the whole pass."""
        live, h, frames = self.live, self.h, self.frames
        ok = ~self.dead[live]
        self.engine.h[self.reps[live[ok]]] = h[ok]
        self.o_first[live], self.o_best[live] = self.first[live], self.best_k[live]
        self.o_rel[live] = np.linalg.norm(h - self.h_prev, axis=1) / (1.0 + np.linalg.norm(h, axis=1))
        self.o_pre[live] = self.pre
        for n in live:
            self.o_orbit[n] = self.ordered(int(n), self.n_rec)
        if frames is not None:
            frames.finish()
            self.o_lyap[live] = frames.exponents()
            o_frames = self.o_frames
            o_frames[0][live], o_frames[1][live], o_frames[2][live] = (frames.frames(), frames.log_growth,
                                                                       frames.n_acc)

    def _outputs(self) -> tuple[dict, Optional[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
        """Count the steps, and carry a second return beyond this pass into the next (the same trajectory,
        continued, looks for it there)."""
        n_rec, second, d_step, o_first = self.n_rec, self.second, self.d_step, self.o_first
        self.engine.steps[self.reps] += self.o_steps
        carried = (d_step > n_rec) & (second < 0)
        new_due = (o_first > 0) & (second < 0) & (d_step < 0)
        o_due = np.full(self.r, -1, dtype=np.int64)
        o_due[new_due] = self.j_ref + 2 * o_first[new_due] - n_rec
        o_due[carried] = d_step[carried] - n_rec
        out = dict(lyap=self.o_lyap, orbit=self.o_orbit, first=o_first, best_k=self.o_best, rel=self.o_rel,
                   dead=self.dead, last_pre=self.o_pre, second=second, due=o_due,
                   ref=np.where(carried[:, None], self.d_ref, self.h_ref),
                   ref_tol=np.where(carried, self.d_tol, self.tol_ref))
        return out, self.o_frames


def orbit_kind(k: int, second: int, lyap: np.ndarray, last: bool, eps: float, gap: float) -> str:
    """The kind of a non-stationary recorded orbit, ``""`` when it must be recorded again (the rules of the module
    docstring, shared by every map).

    Args:
        k: Its first return (``-1``: none).
        second: The second return at ``2k``: 1 confirmed, 0 refuted, -1 not yet reached.
        lyap: Its Lyapunov exponents, descending.
        last: Whether this was the last allowed recording (then it is never ``""``).
        eps: ``lyap_eps``.
        gap: ``qp_gap``.

    Example:
        >>> lyap = np.array([1e-4, -0.1])
        >>> orbit_kind(7, 1, lyap, False, 2e-3, 5e-3), orbit_kind(-1, -1, lyap, True, 2e-3, 5e-3)
        ('periodic', 'quasi_periodic')
    """
    lam1 = float(lyap[0]) if lyap.size else 0.0
    lam2 = float(lyap[1]) if lyap.size > 1 else np.nan
    one_return = k > 1 and second < 0
    if k > 1 and second == 1:
        return "periodic"
    if not last and (one_return or not (abs(lam1) <= eps / 2 or lam1 >= 2 * eps)):
        return ""  # a second return is due, or lambda_1 is too close to +-eps to call: record again
    if lam1 > eps:
        return "chaotic"
    if not one_return and abs(lam1) <= eps and lam2 <= lam1 - gap:
        return "quasi_periodic"
    return "unresolved"


class _ReluStepper:
    """One step of the ReLU map for recorded representatives: ``h -> relu(W h + c)``, with their tangent frames."""

    def __init__(self, W: np.ndarray, c: np.ndarray, frames: Optional[_Frames]) -> None:
        self.W, self.c, self.frames = W, c, frames

    def step(self, h: np.ndarray, accumulate: bool) -> tuple[np.ndarray, np.ndarray]:
        """``(next states, pre-activations)``; advances the frames (accumulating exponents if ``accumulate``)."""
        pre = h @ self.W.T
        pre += self.c
        active = pre > 0
        h = np.maximum(pre, 0.0)
        if self.frames is not None:
            self.frames.step(active, accumulate=accumulate)
        return h, pre

    def keep(self, keep: np.ndarray) -> None:
        """Keep only the representatives ``keep`` (bool)."""
        self.c = self.c[keep]
        if self.frames is not None:
            self.frames.drop(keep)


def _search_block(
    W_rec: np.ndarray,
    C: np.ndarray,
    h0: np.ndarray,
    crit: _Criteria,
    seqs: Sequence[np.random.SeedSequence],
    bar: Any = None,
) -> list[_Record]:
    """Run the engine on one block of inputs; records carry block-local input indices."""
    from analysis.network import Network

    dyn = Network(W_rec, np.zeros((W_rec.shape[0], 1)))  # the engine needs only W_rec and the drives C
    engine = _Engine(dyn, C, h0, crit, seqs, bar if bar is not None else _NoBar())
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is how some orbits diverge: detected, not an error
        engine.run()
    return engine.records


class _NoBar:
    def update(self, n: int) -> None:
        pass


def _n_workers(n_jobs: int, n_blocks: int) -> int:
    import os

    n = (os.cpu_count() or 1) if int(n_jobs) < 0 else max(1, int(n_jobs))
    return max(1, min(n, n_blocks))


def _search_blocks_in_workers(
    search_block: Callable[..., list[_Record]],
    C: np.ndarray,
    h0: np.ndarray,
    crit: _Criteria,
    seqs: Sequence[np.random.SeedSequence],
    blocks: list[tuple[int, int]],
    jobs: int,
    bar: Any,
) -> Any:
    """Yield ``(first input, records)`` per block, computed by ``jobs`` spawned worker processes
    (``search_block(C, h0, crit, seqs)`` of a block: :func:`_search_block` or the generic path's, picklable)."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # one BLAS thread per worker: the variables must be set before a worker imports numpy
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update({k: "1" for k in _THREAD_VARS})
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = {pool.submit(search_block, C[a:b], h0[a:b], crit, list(seqs[a:b])): (a, b)
                   for a, b in blocks}
        for fut in as_completed(futures):
            a, b = futures[fut]
            bar.update((b - a) * h0.shape[1])
            yield a, fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _whole_cycle(rec: _Record) -> bool:
    return rec.kind == "periodic" and rec.period is not None and rec.period <= len(rec.orbit)


def _match_threshold(rec: _Record, merge_tol: float) -> float:
    """Distance to the nearest stored orbit point below which a state lies on ``rec``'s attractor.

    A cycle stored whole is its own set of points: ``merge_tol`` relative to its scale. A curve or a chaotic set is
    only sampled, so the nearest sample may be up to about one sampling gap away: twice the median gap is allowed.
    """
    base = merge_tol * _scale(rec)
    return base if _whole_cycle(rec) else max(base, 2.0 * _resolution(rec.orbit))


def _scale(rec: _Record) -> float:
    """``1 + rms |h|`` over a record's orbit (the reference of relative tolerances)."""
    pts = rec.orbit if rec.orbit is not None else rec.state[None]
    return 1.0 + float(np.sqrt(np.mean(np.sum(pts**2, axis=1))))


# ---------------------------------------------------------------------------------------------- assembly
def _cloud_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Median over points of ``a`` of the distance to the nearest point of ``b``."""
    d2 = np.sum(a**2, 1)[:, None] + np.sum(b**2, 1)[None] - 2.0 * a @ b.T
    return float(np.median(np.sqrt(np.maximum(d2.min(axis=1), 0.0))))


def _resolution(a: np.ndarray) -> float:
    """Median nearest-neighbour distance within an orbit sample (its sampling resolution)."""
    if len(a) < 2:
        return 0.0
    d2 = np.sum(a**2, 1)[:, None] + np.sum(a**2, 1)[None] - 2.0 * a @ a.T
    np.fill_diagonal(d2, np.inf)
    return float(np.median(np.sqrt(np.maximum(d2.min(axis=1), 0.0))))


def _same_orbit(p: _Record, q: _Record, merge_tol: float) -> bool:
    if p.kind != q.kind or p.period != q.period:
        return False
    thr = max(_match_threshold(p, merge_tol), _match_threshold(q, merge_tol))
    return max(_cloud_distance(p.orbit, q.orbit), _cloud_distance(q.orbit, p.orbit)) <= thr


def _merge(records: list[_Record], crit: _Criteria) -> list[_Record]:
    """Merge duplicate records of one input (fixed points by distance, orbits by point-cloud distance)."""
    kept: list[_Record] = []
    for rec in records:
        twin = None
        for k in kept:
            if rec.kind == "fixed_point" and k.kind == "fixed_point":
                scale = 1.0 + max(np.linalg.norm(rec.state), np.linalg.norm(k.state))
                if np.linalg.norm(rec.state - k.state) <= crit.fp_merge_tol * scale:
                    twin = k
            elif rec.kind == "divergent" and k.kind == "divergent":
                twin = k
            elif rec.kind not in ("fixed_point", "divergent") and _same_orbit(rec, k, crit.merge_tol):
                twin = k
            if twin is not None:
                break
        if twin is None:
            kept.append(rec)
        else:
            twin.members.extend(rec.members)
    return kept


def _to_attractor(dyn: "Network", rec: _Record, x: np.ndarray, index: int, M: int, k: int) -> Attractor:
    members = np.unique(np.asarray(rec.members, dtype=np.int64) % M)
    decision = None
    if rec.kind in ("fixed_point", "divergent"):
        mean, orbit = rec.state, rec.state[None]
        if rec.kind == "fixed_point" and dyn.n_actions:
            decision = int(dyn.decision(rec.state))
    else:
        mean, orbit = rec.mean, rec.orbit
        if dyn.n_actions:
            decision = int(np.bincount(dyn.decision(orbit)).argmax())
    att = Attractor(
        kind=rec.kind,
        input=np.array(x, dtype=np.float64),
        input_index=index,
        state=rec.state,
        mean=mean,
        orbit=orbit,
        period=rec.period,
        basin_count=int(members.size),
        members=members,
        decision=decision,
        converged=rec.converged,
        transverse_stable=rec.transverse_stable,
        pattern=rec.pattern,
        n_lyap=k,
        lyapunov_estimate=None if rec.lyapunov is None else np.asarray(rec.lyapunov, dtype=np.float64),
        W_rec=getattr(dyn, "W_rec", None) if rec.kind == "fixed_point" else None,
    )
    if rec.kind == "fixed_point" and rec.eigenvalues is not None:
        att._eig = rec.eigenvalues
    return att


def _initial_states(
    dyn: "Network",
    C: np.ndarray,
    init_states: Optional[np.ndarray],
    n_init: int,
    init_scale: Optional[float],
    seqs: Sequence[np.random.SeedSequence],
    signed: bool = False,
) -> np.ndarray:
    """``(N, M, H)``: the given states then ``n_init`` random ``|N(0, s^2)|`` states per input (``N(0, s^2)`` when
    ``signed``: states of maps that are not rectified). Without given states or ``init_scale``, ``s`` is the RMS of
    ``relu(C)``."""
    N, H = C.shape
    if init_states is None:
        given = np.zeros((N, 0, H))
    else:
        given = np.asarray(init_states, dtype=np.float64)
        if given.ndim == 2:
            given = np.broadcast_to(given, (N,) + given.shape)
        if given.ndim != 3 or given.shape[0] != N or given.shape[2] != H:
            raise ValueError(f"init_states must be (M, H) or (N={N}, M, H) with H={H}, got {given.shape}")
    if init_scale is not None:
        scale = np.full(N, float(init_scale))
    elif given.shape[1]:
        scale = np.sqrt(np.mean(given**2, axis=(1, 2)))
    else:
        scale = np.sqrt(np.mean(np.maximum(C, 0.0) ** 2, axis=1))  # the activity the input alone evokes
    scale = np.where(scale > 0, scale, 1.0)
    draw = (lambda a: a) if signed else np.abs  # noqa: E731
    rand = np.stack([draw(np.random.default_rng(s).normal(0.0, 1.0, (n_init, H))) for s in seqs])
    rand *= scale[:, None, None]
    return np.concatenate([given, rand.reshape(N, n_init, H)], axis=1)


def make_criteria(state_size: int, **settings: Any) -> _Criteria:
    """The classification settings of :func:`find_attractors` (its keyword arguments; defaults for the others),
    converted and checked (shared by the maps of :mod:`analysis.dynamics.generic`).

    Raises:
        TypeError: an unknown setting.
        ValueError: a setting out of range.
    """
    import inspect

    params = inspect.signature(find_attractors).parameters
    unknown = sorted(set(settings) - set(_Criteria.__dataclass_fields__))
    if unknown:
        raise TypeError(f"unknown attractor settings {unknown}")
    s = {k: params[k].default for k in _Criteria.__dataclass_fields__}
    s.update(settings)
    crit = _Criteria(
        n_transient=int(s["n_transient"]),
        n_record=int(s["n_record"]),
        n_probe=max(1, int(s["n_probe"])),
        check_every=max(1, int(s["check_every"])),
        divergence_norm=float(s["divergence_norm"]),
        fp_tol=float(s["fp_tol"]),
        snap_tol=float(s["snap_tol"]),
        period_tol=float(s["period_tol"]),
        max_period=int(s["max_period"]),
        n_lyap=max(1, min(int(s["n_lyap"]), state_size)),
        lyap_eps=float(s["lyap_eps"]),
        qp_gap=float(s["qp_gap"]),
        lyap_warmup=int(s["lyap_warmup"]),
        qr_every=max(1, int(s["qr_every"])),
        merge_tol=float(s["merge_tol"]),
        fp_merge_tol=float(s["fp_merge_tol"]),
        orbit_len=max(2, int(s["orbit_len"])),
        max_extensions=max(0, int(s["max_extensions"])),
        chunk_size=max(1, int(s["chunk_size"])),
        record_batch=max(1, int(s["record_batch"])),
        escape_checks=max(0, int(s["escape_checks"])),
        escape_rate=float(s["escape_rate"]),
        escape_align=float(s["escape_align"]),
        sparse_below=float(s["sparse_below"]),
        transient_dtype=str(s["transient_dtype"]),
        cycle_record=max(0, int(s["cycle_record"])),
        frame_dtype=str(s["frame_dtype"]),
    )
    if crit.frame_dtype not in ("auto", "float64", "float32"):
        raise ValueError(f"frame_dtype must be 'auto', 'float64' or 'float32', got {crit.frame_dtype!r}")
    if crit.transient_dtype not in ("auto", "float64", "float32"):
        raise ValueError(f"transient_dtype must be 'auto', 'float64' or 'float32', got {crit.transient_dtype!r}")
    if crit.n_record < 2 or crit.n_transient < 0:
        raise ValueError("need n_record >= 2 and n_transient >= 0")
    return crit


def find_attractors(
    dyn: "Network",
    x: np.ndarray,
    n_init: int = 32,
    seed: Seed = 0,
    init_states: Optional[np.ndarray] = None,
    *,
    init_scale: Optional[float] = None,
    n_transient: int = 2000,
    n_record: int = 2000,
    n_probe: int = 100,
    check_every: int = 10,
    divergence_norm: float = 1e6,
    fp_tol: float = 1e-8,
    snap_tol: float = 1e-3,
    period_tol: float = 1e-6,
    max_period: int = 2000,
    n_lyap: int = 2,
    lyap_eps: float = 2e-3,
    qp_gap: float = 5e-3,
    lyap_warmup: int = 200,
    qr_every: int = 5,
    merge_tol: float = 1e-2,
    fp_merge_tol: float = 1e-6,
    orbit_len: int = 256,
    max_extensions: int = 2,
    chunk_size: int = 512,
    record_batch: int = 128,
    escape_checks: int = 2,
    escape_rate: float = 1.01,
    escape_align: float = 1e-4,
    sparse_below: float = 0.85,
    transient_dtype: str = "auto",
    cycle_record: int = 500,
    frame_dtype: str = "auto",
    block_size: int = 64,
    n_jobs: int = 1,
    progress: bool = False,
) -> Union[list[Attractor], list[list[Attractor]]]:
    """Find and classify the attractors of ``F_x`` for one input or many (vectorised over inputs and states).

    Args:
        dyn: The map.
        x: One input ``(D,)`` or many ``(N, D)`` (e.g. a coherence grid).
        n_init: Random initial states per input, ``|N(0, s^2)|`` per unit.
        seed: Seed of the random initial states and Lyapunov frames (same seed, same result). Input ``i`` draws
            from its own stream (``SeedSequence(seed).spawn(N)[i]``), so its states do not depend on the others.
        init_states: Initial states used for every input ``(M, H)``, or per input ``(N, M, H)`` (e.g. the states
            observed at stimulus onset in trials); they come before the random ones in ``Attractor.members``.
        init_scale: ``s``; default: the RMS activity of ``init_states`` (per input), else of ``relu(W_in x + b)``.
        n_transient: Steps discarded before recording (paper: 2,000-5,000).
        n_record: Steps recorded per pass (paper: 2,000-10,000).
        n_probe: Steps after which every surviving state is compared with recorded orbits (and between rounds).
        check_every: Steps between exit checks.
        divergence_norm: ``|h|`` above which an orbit is divergent.
        fp_tol: Fixed point when ``|F(h) - h| < fp_tol (1 + |h|)``.
        snap_tol: When a step ``|F(h) - h|`` is below ``snap_tol (1 + |h|)``, the fixed point ``h*`` of the current
            linear region is solved exactly; if it is self-consistent, linearly stable (``rho(D W_rec) < 1``) and
            within ``snap_tol (1 + |h*|)`` of the state, the trajectory has converged to it (and leaves the batch).
        period_tol: Periodic when the state returns within ``period_tol (1 + |h|)``.
        max_period: Longest period searched (``K_max``); returns are measured against a state taken
            ``max_period`` steps before the end of the recording (or its start, if shorter), and a first return
            ``k`` counts only when a second one follows at ``2k`` (in a further recording if need be).
        n_lyap: Number of Lyapunov exponents (the QR frame size, at least 1; 2 gives the QP confirmation).
        lyap_eps: ``|lambda_1| <= lyap_eps``: quasi-periodic candidate; above: chaotic (natural log per step).
        qp_gap: Quasi-periodic needs ``lambda_2 <= lambda_1 - qp_gap``: a clear transverse contraction onto the
            invariant curve (a slowly converging focus has ``lambda_1 = lambda_2``). The default is 2.5x
            ``lyap_eps``, above the blur of the exponents of a 2,000-step recording; otherwise ``unresolved``.
        lyap_warmup: Recorded steps used only to align the tangent frame.
        qr_every: QR re-orthonormalisation interval (keep ``exp((lambda_1 - lambda_k) qr_every)`` well below
            ``1 / machine epsilon``, i.e. ``qr_every (lambda_1 - lambda_k) < ~30``).
        merge_tol: A state within ``merge_tol (1 + rms |h|)`` of a recorded orbit belongs to that attractor (for
            a stored orbit that only samples a curve or a chaotic set, within twice its median sampling gap if
            larger); two orbits of the same kind (and period) merge when their point clouds are that close.
        fp_merge_tol: Fixed points closer than ``fp_merge_tol (1 + |h|)`` merge.
        orbit_len: Number of recorded states kept as ``Attractor.orbit``.
        max_extensions: Extra recordings for orbits whose ``lambda_1`` is not clearly on one side of ``+-lyap_eps``
            (see the module docstring).
        chunk_size: Trajectories iterated together by one matrix product (cache size; results do not depend
            on it beyond floating-point rounding).
        record_batch: Representatives recorded together (memory: ``record_batch * orbit_len * H`` floats).
        escape_checks: A trajectory is ``divergent`` before it reaches ``divergence_norm`` once, at this many
            consecutive checks, it escapes inside a fixed linear region (see the module docstring); 0 disables it.
        escape_rate: Minimum growth factor per step of an escaping trajectory (and of its escape direction).
        escape_align: Tolerance ``1 - cos`` of the escape direction: against the Jacobian's image of it, and
            against the previous check's direction.
        sparse_below: When fewer than this fraction of the units is active in any trajectory of a chunk, the step's
            product skips the silent units' columns (exact: they contribute zeros; a speed knob only, ``0`` turns
            it off).
        transient_dtype: Arithmetic of the transient iteration (before recording): ``"float64"`` (the paper's
            recipe), ``"float32"`` (about 1.6x faster on 250 units; exits, recordings, Lyapunov exponents, periods
            and fixed points stay float64, but orbits of neutral attractors drift by about 1e-7 relative per 1,000
            steps before recording, and a state on a basin boundary may land in the other basin) or ``"auto"``
            (default: float32 for maps of 64 units or more, float64 for smaller ones). On the trained and
            synthetic 250-unit networks of ``benchmarks/bench_analysis.py`` both give the same attractor for every
            initial state.
        cycle_record: A recorded orbit that returns exactly (``period_tol``) within ``orbit_len / 2`` steps after
            the frame warm-up, and repeats that period once more, stops recording once its exponents have been
            averaged over at least this many steps of whole periods (cycles need no more; quasi-periodic and
            chaotic orbits always use the whole ``n_record``); 0 records every orbit for ``n_record`` steps.
        frame_dtype: Arithmetic of the tangent frames (the Lyapunov exponents' QR method): ``"float64"``,
            ``"float32"`` (half the cost of the recording's frame products; exponents accurate to ~1e-6 per step,
            far below ``lyap_eps``; the QR factors' logs are accumulated in float64) or ``"auto"`` (default:
            float32 for maps of 64 units or more, float64 for smaller ones, where it costs nothing).
        block_size: Inputs searched together (one engine run per block of consecutive inputs; the result depends
            on it only through floating-point rounding, as ``chunk_size``).
        n_jobs: Worker processes over blocks (``1``: this process; ``-1``: one per CPU). Each worker runs one
            BLAS thread; the result is the same for every ``n_jobs`` when this process does too
            (``OMP_NUM_THREADS=1``, as ``dmd`` sets by default: chaotic orbits amplify rounding differences).
        progress: Show a progress bar over initial states (resolved / total; per finished block with workers).

    Returns:
        For one input: its attractors, sorted by decreasing ``basin_count`` (then kind). For ``N`` inputs: a list
        of ``N`` such lists.

    Example:
        >>> from analysis.network import Network
        >>> dyn = Network(np.array([[0.5, -1.0], [-1.0, 0.5]]), np.eye(2))   # two stable fixed points
        >>> atts = find_attractors(dyn, np.array([1.0, 1.0]), n_init=16, seed=0)
        >>> sorted((a.kind, a.state.round(6).tolist()) for a in atts)
        [('fixed_point', [0.0, 2.0]), ('fixed_point', [2.0, 0.0])]
        >>> sum(a.basin_count for a in atts)
        16
    """
    crit = make_criteria(
        dyn.hidden_size,
        n_transient=n_transient, n_record=n_record, n_probe=n_probe, check_every=check_every,
        divergence_norm=divergence_norm, fp_tol=fp_tol, snap_tol=snap_tol, period_tol=period_tol,
        max_period=max_period, n_lyap=n_lyap, lyap_eps=lyap_eps, qp_gap=qp_gap, lyap_warmup=lyap_warmup,
        qr_every=qr_every, merge_tol=merge_tol, fp_merge_tol=fp_merge_tol, orbit_len=orbit_len,
        max_extensions=max_extensions, chunk_size=chunk_size, record_batch=record_batch, escape_checks=escape_checks,
        escape_rate=escape_rate, escape_align=escape_align, sparse_below=sparse_below,
        transient_dtype=transient_dtype, cycle_record=cycle_record, frame_dtype=frame_dtype,
    )
    X, single, seqs = inputs_and_seeds(x, seed)
    C = dyn.drive(X)
    h0 = _initial_states(dyn, C, init_states, int(n_init), init_scale, seqs)
    return search_inputs(dyn, X, C, h0, crit, seqs, functools.partial(_search_block, dyn.W_rec), single,
                         block_size=block_size, n_jobs=n_jobs, progress=progress)


def inputs_and_seeds(x: np.ndarray, seed: Seed) -> tuple[np.ndarray, bool, list[np.random.SeedSequence]]:
    """The inputs of a search as ``(N, D)`` float64, whether one was given alone, and each input's seed stream
    (``SeedSequence(seed).spawn(N)``: an input's random states do not depend on the others)."""
    x = np.asarray(x, dtype=np.float64)
    X = np.atleast_2d(x)
    return X, x.ndim == 1, np.random.SeedSequence(seed).spawn(len(X))


def search_inputs(
    dyn: Any,
    X: np.ndarray,
    C: np.ndarray,
    h0: np.ndarray,
    crit: _Criteria,
    seqs: Sequence[np.random.SeedSequence],
    search_block: Callable[..., list[_Record]],
    single: bool,
    *,
    block_size: int,
    n_jobs: int,
    progress: bool,
) -> Union[list[Attractor], list[list[Attractor]]]:
    """The search of every ``find_attractors`` (the exact ReLU map's and the generic path's): inputs in blocks of
    ``block_size``, each block's engine run by ``search_block(C, h0, crit, seqs, bar=...)`` here or in ``n_jobs``
    worker processes, then the records merged per input (:func:`assemble`).

    Args:
        dyn: The map (for :func:`assemble`).
        X: Inputs ``(N, D)``.
        C: What the engine iterates per input (the drives ``(N, H)`` of the ReLU map; the generic path's ``U``).
        h0: Initial states ``(N, M, H)``.
        crit: The thresholds (:func:`make_criteria`).
        seqs: Each input's seed stream.
        search_block: Runs the engine on one block; picklable for workers.
        single: Return one input's list instead of a list per input.
    """
    from tqdm.auto import tqdm

    N, M = h0.shape[0], h0.shape[1]
    if M == 0:
        raise ValueError("no initial states: give init_states or n_init > 0")
    bs = max(1, int(block_size))
    blocks = [(a, min(a + bs, N)) for a in range(0, N, bs)]
    jobs = _n_workers(n_jobs, len(blocks))
    by_input: list[list[_Record]] = [[] for _ in range(N)]
    with tqdm(total=N * M, disable=not progress, desc="attractors", unit="state") as bar:
        if jobs == 1:
            results: Any = ((a, search_block(C[a:b], h0[a:b], crit, seqs[a:b], bar=bar)) for a, b in blocks)
        else:
            results = _search_blocks_in_workers(search_block, C, h0, crit, seqs, blocks, jobs, bar)
        for a, recs in results:
            for rec in recs:
                by_input[a + rec.inp].append(rec)
    return assemble(dyn, X, by_input, M, crit, single)


def assemble(
    dyn: Any, X: np.ndarray, by_input: list[list[_Record]], M: int, crit: _Criteria, single: bool
) -> Union[list[Attractor], list[list[Attractor]]]:
    """Merge each input's records into :class:`Attractor` objects, sorted by decreasing basin (then kind, norm)."""
    out: list[list[Attractor]] = []
    for i, recs in enumerate(by_input):
        atts = [_to_attractor(dyn, r, X[i], i, M, crit.n_lyap) for r in _merge(recs, crit)]
        atts.sort(key=lambda a: (-a.basin_count, KINDS.index(a.kind), a.norm))
        out.append(atts)
    return out[0] if single else out
