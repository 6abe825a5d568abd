"""Fixed points of the ReLU map ``F_x(h) = relu(W_rec h + c)`` (``c = W_in x + b_rec``): exact, and by minimisation.

**Exact solver** (the piecewise-linear structure; SCYFI, Eisenmann et al. 2023). On the region where the activation
pattern ``D`` (the set ``A`` of active units) is fixed, ``F_x(h) = D (W_rec h + c)``, so a fixed point there solves

    ``(I - D W_rec) h = D c``,  i.e. ``h_A = (I - W_AA)^{-1} c_A`` and ``h = 0`` off ``A``,

and is a true fixed point iff it is *self-consistent*: the pattern of ``W_rec h + c`` is ``D`` again (equivalently
``|F_x(h) - h| = 0``). Candidate patterns come from states the map visits (given states, random states and their
trajectories) and from random patterns; each candidate that is not self-consistent hands its own pattern to the
next solve (pattern -> solve -> new pattern, as SCYFI iterates), until a consistent pattern, a pattern already
tried, or ``max_pattern_iters``. Finally the patterns one unit away from every fixed point found are tried
(recursively): fixed points are born in pairs across region boundaries, and this finds the partners the random
search misses. Every solve is an ``|A| x |A|`` LAPACK call; each distinct pattern is solved once. Like SCYFI, the
search is not exhaustive (there are ``2^H`` regions); every point it reports is exact and verified.

**Speed minimiser** (as in Golub & Sussillo's ``fixed-point-finder``): minimise ``q(h) = 1/2 |F_x(h) - h|^2`` from
many initial states with Adam (``lr = 1``, the learning rate of each state multiplied by 0.95 after ``lr_patience = 5``
iterations without improvement; fixed-point-finder hard-codes 2, which in float64 often freezes the rate before
``q`` reaches ~1e-20), batched and vectorised, with the analytic gradient
``dq/dh = W_rec^T D r - r`` (``r = F_x(h) - h``). Minima with ``q`` above ``tol_q`` are slow points, not fixed points,
and are dropped. It cross-checks the exact solver.

Each :class:`FixedPoint` carries its Jacobian ``D W_rec``'s eigenvalues (those of ``W_AA`` plus ``H - |A|`` zeros),
sorted by modulus, its spectral radius and linear stability (``|lambda|max < 1``: the map is discrete-time).

Example:
    >>> from analysis.network import Network
    >>> rng = np.random.default_rng(0)
    >>> dyn = Network(rng.normal(0, 1.2 / np.sqrt(40), (40, 40)), rng.normal(0, 0.5, (40, 2)))
    >>> fps = fixed_points(dyn, np.array([1.0, -1.0]), method="both")
    >>> all(fp.residual < 1e-9 for fp in fps)
    True
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np
import scipy.linalg

if TYPE_CHECKING:
    from analysis.network import Network

__all__ = [
    "FixedPoint",
    "PatternSolver",
    "adam_rows",
    "fixed_points",
    "jacobian_eigenvalues",
    "minimise_speed",
    "unique_rows",
]

METHODS = ("exact", "gradient", "both")


@dataclass(frozen=True)
class FixedPoint:
    """A fixed point ``h* = F_x(h*)`` of the map for one input.

    Attributes:
        state: ``h*``, ``(H,)``.
        input: The input ``x`` it belongs to, ``(D,)``.
        residual: ``|F_x(h*) - h*|`` (Euclidean).
        eigenvalues: Eigenvalues of the Jacobian ``D W_rec`` at ``h*`` (complex, ``(H,)``), by decreasing modulus.
        spectral_radius: ``max |lambda|``.
        stable: ``spectral_radius < 1`` (linearly stable fixed point of the discrete-time map).
        pattern: The activation pattern ``W_rec h* + c > 0`` (bool, ``(H,)``; ``None`` for smooth maps,
            :func:`analysis.dynamics.generic.fixed_points`).
        decision: The readout's greedy action at ``h*`` (``None`` without a readout).
        method: Which solver found it: ``"exact"``, ``"gradient"`` (the minimiser only) or ``"both"`` (generic
            maps: ``"adam"`` or ``"lbfgs"``, then Newton).
    """

    state: np.ndarray
    input: np.ndarray
    residual: float
    eigenvalues: np.ndarray
    spectral_radius: float
    stable: bool
    pattern: Optional[np.ndarray]
    decision: Optional[int]
    method: str

    @property
    def n_active(self) -> Optional[int]:
        """Number of active units ``|A|`` (``None`` for maps without activation patterns: smooth maps)."""
        return None if self.pattern is None else int(self.pattern.sum())

    @property
    def norm(self) -> float:
        """``|h*|``."""
        return float(np.linalg.norm(self.state))

    def __repr__(self) -> str:
        kind = "stable" if self.stable else "unstable"
        return (
            f"FixedPoint({kind}, |h|={self.norm:.4g}, rho={self.spectral_radius:.4f}, active={self.n_active}, "
            f"residual={self.residual:.2e}, decision={self.decision}, method={self.method!r})"
        )


# ---------------------------------------------------------------------------------------------- linear algebra
def jacobian_eigenvalues(W_rec: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """Eigenvalues of ``diag(pattern) W_rec``, by decreasing modulus.

    Rows of inactive units are zero, so the spectrum is that of the active block ``W_AA`` plus ``H - |A|`` zeros;
    only the block is decomposed.

    Args:
        W_rec: ``(H, H)``.
        pattern: Active units (bool, ``(H,)``).

    Returns:
        Complex ``(H,)``.

    Example:
        >>> jacobian_eigenvalues(np.array([[0.5, 2.0], [0.0, 3.0]]), np.array([True, False]))
        array([0.5+0.j, 0. +0.j])
    """
    H = W_rec.shape[0]
    idx = np.flatnonzero(pattern)
    out = np.zeros(H, dtype=np.complex128)
    if idx.size:
        out[: idx.size] = scipy.linalg.eigvals(W_rec[np.ix_(idx, idx)], check_finite=False)
    return out[np.argsort(-np.abs(out), kind="stable")]


def _pattern_key(pattern: np.ndarray) -> bytes:
    return np.packbits(pattern).tobytes()


class PatternSolver:
    """Solve for the fixed point of one linear region of ``relu(W_rec h + c)``, caching by activation pattern.

    Args:
        W_rec: ``(H, H)`` float64.
        c: The drive ``W_in x + b_rec``, ``(H,)``.

    Example:
        >>> s = PatternSolver(np.array([[0.5, 0.0], [1.0, 0.0]]), np.array([1.0, -3.0]))
        >>> h, res = s.solve(np.array([True, False]))
        >>> h, float(res)        # h1 = 1 / (1 - 0.5); unit 2 sees 2 - 3 < 0: consistent
        (array([2., 0.]), 0.0)
        >>> s.solve(np.array([True, True]))[1] > 0   # unit 2 would need to be active at pre = -1: inconsistent
        True
    """

    def __init__(self, W_rec: np.ndarray, c: np.ndarray) -> None:
        self.W_rec = W_rec
        self.c = np.asarray(c, dtype=np.float64)
        self._cache: dict[bytes, tuple[np.ndarray, float]] = {}
        self._eig: dict[bytes, np.ndarray] = {}
        self._stable: dict[bytes, bool] = {}

    def __len__(self) -> int:
        return len(self._cache)

    def solve(self, pattern: np.ndarray) -> tuple[np.ndarray, float]:
        """The region's fixed-point candidate and its residual ``|F(h) - h|`` (``inf`` if ``I - W_AA`` is singular).

        A zero residual means the candidate is a true fixed point (the pattern is self-consistent).
        """
        key = _pattern_key(pattern)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        H = self.W_rec.shape[0]
        idx = np.flatnonzero(pattern)
        h = np.zeros(H)
        res = 0.0
        if idx.size:
            M = -self.W_rec[np.ix_(idx, idx)]
            M[np.diag_indices_from(M)] += 1.0
            with warnings.catch_warnings():
                # an ill-conditioned region gives an inaccurate candidate: the residual check below rejects it
                warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
                try:
                    h[idx] = scipy.linalg.solve(M, self.c[idx], check_finite=False)
                except (np.linalg.LinAlgError, ValueError):
                    h[:] = np.nan
        if not np.isfinite(h).all():
            out = (h, np.inf)
        else:
            res = float(np.linalg.norm(np.maximum(self.W_rec @ h + self.c, 0.0) - h))
            out = (h, res)
        self._cache[key] = out
        return out

    def eigenvalues(self, pattern: np.ndarray) -> np.ndarray:
        """Cached :func:`jacobian_eigenvalues` of the region."""
        key = _pattern_key(pattern)
        ev = self._eig.get(key)
        if ev is None:
            ev = self._eig[key] = jacobian_eigenvalues(self.W_rec, pattern)
        return ev

    def is_stable(self, pattern: np.ndarray, max_squarings: int = 6) -> bool:
        """Whether the region's Jacobian ``D W_rec`` has spectral radius < 1 (cached).

        Cheap certificate first: ``rho(A)^(2^s) = rho(A^(2^s)) <= |A^(2^s)|_F``, so a Frobenius norm below 1 after
        ``s <= max_squarings`` squarings of the active block proves stability (a few small matrix products, about
        20x cheaper than an eigendecomposition); otherwise the eigenvalues decide.
        """
        key = _pattern_key(pattern)
        hit = self._stable.get(key)
        if hit is not None:
            return hit
        ev = self._eig.get(key)
        stable: Optional[bool] = None if ev is None else bool(np.abs(ev[0]) < 1.0) if ev.size else True
        if stable is None:
            idx = np.flatnonzero(pattern)
            P = self.W_rec[np.ix_(idx, idx)]
            for _ in range(max_squarings):
                P = P @ P
                if np.linalg.norm(P) < 1.0:
                    stable = True
                    break
        if stable is None:
            ev = self.eigenvalues(pattern)
            stable = bool(np.abs(ev[0]) < 1.0) if ev.size else True
        self._stable[key] = stable
        return stable


def unique_rows(states: np.ndarray, tol: float, order: Optional[np.ndarray] = None) -> np.ndarray:
    """Indices of representatives of ``states`` after merging rows closer than ``tol * (1 + max norm)``.

    Greedy in ``order`` (default: row order): a row is kept unless it lies within tolerance of a kept row.

    Args:
        states: ``(N, H)``.
        tol: Relative merge tolerance.
        order: Priority order (e.g. by increasing residual).

    Returns:
        Kept row indices, in priority order.

    Example:
        >>> unique_rows(np.array([[0.0, 1.0], [0.0, 1.0 + 1e-9], [5.0, 0.0]]), 1e-6)
        array([0, 2])
    """
    n = len(states)
    order = np.arange(n) if order is None else np.asarray(order)
    if n == 0:
        return order[:0]
    norms = np.linalg.norm(states, axis=1)
    keep: list[int] = []
    kept = np.empty((0, states.shape[1]))
    for i in order:  # O(n * n_unique) vectorised rows; n is the number of candidate points, not of states
        if keep:
            d = np.linalg.norm(kept - states[i], axis=1)
            if (d <= tol * (1.0 + np.maximum(norms[keep], norms[i]))).any():
                continue
        keep.append(int(i))
        kept = np.vstack([kept, states[i]])
    return np.asarray(keep, dtype=np.int64)


# ---------------------------------------------------------------------------------------------- seeds
def _rng(seed: "int | np.random.Generator | None") -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _initial_states(
    dyn: "Network",
    c: np.ndarray,
    init_states: Optional[np.ndarray],
    n_init: int,
    init_scale: Optional[float],
    rng: np.random.Generator,
) -> np.ndarray:
    """Given states plus ``n_init`` random ``|N(0, s^2)|`` ones, ``s`` the typical activity per unit."""
    H = dyn.hidden_size
    given = np.zeros((0, H)) if init_states is None else np.asarray(init_states, dtype=np.float64).reshape(-1, H)
    if init_scale is None:
        ref = given if len(given) else np.maximum(c, 0.0)[None]
        init_scale = float(np.sqrt(np.mean(ref**2))) or 1.0
    rand = np.abs(rng.normal(0.0, init_scale, (n_init, H)))
    return np.concatenate([given, rand])


# ---------------------------------------------------------------------------------------------- exact
def _visited(dyn: "Network", c: np.ndarray, seeds: np.ndarray, n_steps: int, stride: int) -> np.ndarray:
    """The seeds and every ``stride``-th state of their trajectories, ``(T', B, H)``."""
    W = dyn.W_rec
    h = seeds.copy()
    out = [h]
    for t in range(1, n_steps + 1):
        h = np.maximum(h @ W.T + c, 0.0)
        if t % stride == 0 or t == n_steps:
            out.append(h)
    return np.stack(out)


def _exact(
    dyn: "Network",
    c: np.ndarray,
    visited: np.ndarray,
    *,
    n_random_patterns: int,
    max_pattern_iters: int,
    neighbours: bool,
    max_points: int,
    tol: float,
    rng: np.random.Generator,
    solver: Optional[PatternSolver] = None,
) -> np.ndarray:
    """Exact fixed points from the regions visited states lie in and from random patterns, ``(n, H)``."""
    W = dyn.W_rec
    H = dyn.hidden_size
    solver = solver if solver is not None else PatternSolver(W, c)
    # Candidate patterns: the regions the seeds and their trajectories visit, then random ones (SCYFI-style).
    flat = visited.reshape(-1, H)
    pats = [flat @ W.T + c > 0]
    # random patterns: half with density 1/2 (SCYFI), half with a random density (sparse regions, which hold
    # winner-take-all-like points, are never drawn at density 1/2 in large networks)
    density = np.where(np.arange(n_random_patterns) % 2 == 0, 0.5, rng.random(n_random_patterns))
    pats.append(rng.random((n_random_patterns, H)) < density[:, None])
    cand = np.unique(np.concatenate(pats), axis=0)
    found: dict[bytes, np.ndarray] = {}
    tried: set[bytes] = set()
    for _ in range(max_pattern_iters):
        nxt = []
        for p in cand:  # one LAPACK solve per distinct pattern (cached)
            key = _pattern_key(p)
            if key in tried:
                continue
            tried.add(key)
            hs, res = solver.solve(p)
            if not np.isfinite(res):
                continue
            if res <= tol * (1.0 + np.linalg.norm(hs)):
                found[key] = hs
            else:
                nxt.append(hs @ W.T + c > 0)  # SCYFI: move on to the region the candidate points into
        if not nxt:
            break
        cand = np.unique(np.asarray(nxt), axis=0)
    if neighbours:
        # Fixed points tend to be born in pairs across a region boundary (a saddle next to a node): try every
        # pattern one unit away from each fixed point found, and from those found that way, until none is new.
        queue = list(found)
        while queue and len(found) < max_points:
            base = np.unpackbits(np.frombuffer(queue.pop(), dtype=np.uint8))[:H].astype(bool)
            for u in range(H):
                p = base.copy()
                p[u] = not p[u]
                key = _pattern_key(p)
                if key in tried:
                    continue
                tried.add(key)
                hs, res = solver.solve(p)
                if np.isfinite(res) and res <= tol * (1.0 + np.linalg.norm(hs)):
                    found[key] = hs
                    queue.append(key)
    return np.asarray(list(found.values())) if found else np.zeros((0, H))


# ---------------------------------------------------------------------------------------------- gradient
def minimise_speed(
    dyn: "Network",
    x: np.ndarray,
    h0: np.ndarray,
    *,
    lr: float = 1.0,
    lr_factor: float = 0.95,
    lr_patience: int = 5,
    max_iters: int = 5000,
    tol_q: float = 1e-20,
    check_every: int = 50,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise ``q(h) = 1/2 |F_x(h) - h|^2`` from each initial state with Adam, batched (``fixed-point-finder``).

    Each state has its own Adam moments and learning rate; the rate is multiplied by ``lr_factor`` whenever ``q``
    has not improved for ``lr_patience`` iterations. States whose ``q`` falls below ``tol_q`` leave the batch.

    Args:
        dyn: The map.
        x: Input ``(D,)``.
        h0: Initial states ``(B, H)``.
        lr: Initial learning rate (Golub's ``lr_init``).
        lr_factor, lr_patience: Plateau schedule.
        max_iters: Iteration budget.
        tol_q: Convergence threshold on ``q``.
        check_every: How often converged states leave the batch.
        progress: Show a progress bar.

    Returns:
        ``(states (B, H), q (B,))``.

    Example:
        >>> from analysis.network import Network
        >>> dyn = Network(0.5 * np.eye(2), np.eye(2))
        >>> h, q = minimise_speed(dyn, np.array([1.0, 1.0]), np.zeros((1, 2)))
        >>> h.round(8), bool(q[0] < 1e-20)
        (array([[2., 2.]]), True)
    """
    W = dyn.W_rec
    c = dyn.drive(x)

    def speed_and_gradient(h: np.ndarray, need_grad: bool = True) -> tuple[np.ndarray, Optional[np.ndarray]]:
        pre = h @ W.T + c
        r = np.maximum(pre, 0.0) - h
        q = 0.5 * np.einsum("bh,bh->b", r, r)
        return q, (((pre > 0) * r) @ W - r) if need_grad else None

    return adam_rows(speed_and_gradient, h0, lr=lr, lr_factor=lr_factor, lr_patience=lr_patience,
                     max_iters=max_iters, tol_q=tol_q, check_every=check_every, progress=progress)


def adam_rows(
    speed_and_gradient: Callable[..., tuple[np.ndarray, Optional[np.ndarray]]],
    h0: np.ndarray,
    *,
    lr: float = 1.0,
    lr_factor: float = 0.95,
    lr_patience: int = 5,
    max_iters: int = 5000,
    tol_q: float = 1e-20,
    check_every: int = 50,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise a speed ``q`` from each row of ``h0`` with Adam, each row its own problem (moments, learning rate
    and plateau schedule: the rate times ``lr_factor`` after ``lr_patience`` iterations without improvement); rows
    whose ``q`` falls below ``tol_q`` leave the batch every ``check_every`` iterations.

    Args:
        speed_and_gradient: ``f(h (b, H), need_grad=True) -> (q (b,), dq/dh (b, H) or None)`` for any subset of
            rows (the ReLU map's analytic gradient, or autograd: :mod:`analysis.dynamics.generic`).
        h0: Initial states ``(B, H)``.
        lr, lr_factor, lr_patience, max_iters, tol_q, check_every, progress: As :func:`minimise_speed`.

    Returns:
        ``(states (B, H), q (B,))``: each row's best iterate.
    """
    from tqdm.auto import tqdm

    h_all = np.array(h0, dtype=np.float64, ndmin=2)
    B = len(h_all)
    q_all = np.full(B, np.inf)
    live = np.arange(B)
    h = h_all.copy()
    m = np.zeros_like(h)
    v = np.zeros_like(h)
    rate = np.full(B, float(lr))
    best = np.full(B, np.inf)
    bad = np.zeros(B, dtype=np.int64)
    b1, b2, eps = 0.9, 0.999, 1e-8
    for it in tqdm(range(1, max_iters + 1), disable=not progress, desc="speed minimiser", leave=False):
        q, grad = speed_and_gradient(h)
        improved = q < best
        best = np.where(improved, q, best)
        bad = np.where(improved, 0, bad + 1)
        slow = bad > lr_patience
        rate = np.where(slow, rate * lr_factor, rate)
        bad[slow] = 0
        q_all[live] = q
        h_all[live] = h
        if it % check_every == 0 or it == max_iters:
            keep = q >= tol_q
            if not keep.all():
                live, h, m, v, rate, best, bad = (a[keep] for a in (live, h, m, v, rate, best, bad))
                grad = grad[keep]
                if not len(live):
                    break
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad * grad
        step = (m / (1 - b1**it)) / (np.sqrt(v / (1 - b2**it)) + eps)
        h = h - rate[:, None] * step
    if len(live):  # score the final iterates
        q, _ = speed_and_gradient(h, need_grad=False)
        better = q < q_all[live]
        h_all[live[better]] = h[better]
        q_all[live[better]] = q[better]
    return h_all, q_all


# ---------------------------------------------------------------------------------------------- public
def _pattern_of(dyn: "Network", c: np.ndarray, h: np.ndarray) -> np.ndarray:
    return h @ dyn.W_rec.T + c > 0


def _make_fixed_point(
    dyn: "Network", x: np.ndarray, c: np.ndarray, h: np.ndarray, solver: PatternSolver, method: str
) -> FixedPoint:
    pattern = h @ dyn.W_rec.T + c > 0
    ev = solver.eigenvalues(pattern)
    rho = float(np.abs(ev[0])) if ev.size else 0.0
    residual = float(np.linalg.norm(np.maximum(h @ dyn.W_rec.T + c, 0.0) - h))
    decision = int(dyn.decision(h)) if dyn.W_out is not None else None
    state = h.copy()
    state.flags.writeable = False
    return FixedPoint(
        state=state,
        input=np.array(x, dtype=np.float64),
        residual=residual,
        eigenvalues=ev,
        spectral_radius=rho,
        stable=rho < 1.0,
        pattern=pattern,
        decision=decision,
        method=method,
    )


def fixed_points(
    dyn: "Network",
    x: np.ndarray,
    *,
    init_states: Optional[np.ndarray] = None,
    n_init: int = 64,
    seed: "int | np.random.Generator | None" = 0,
    method: str = "exact",
    init_scale: Optional[float] = None,
    n_sim_steps: int = 200,
    sim_stride: int = 10,
    n_random_patterns: Optional[int] = None,
    max_pattern_iters: int = 20,
    neighbours: bool = True,
    max_points: int = 1000,
    tol: float = 1e-9,
    unique_tol: float = 1e-6,
    stable_only: bool = False,
    gradient_kwargs: Optional[dict] = None,
    progress: bool = False,
) -> list[FixedPoint]:
    """All fixed points found for input ``x``: exact (piecewise-linear) solver, speed minimiser, or both.

    Seeds: ``init_states`` (e.g. states observed in trials) plus ``n_init`` random states ``|N(0, s^2)|`` (``s``:
    ``init_scale``, default the RMS activity of ``init_states``, else of ``relu(c)``), and their trajectories over
    ``n_sim_steps`` steps (every ``sim_stride``-th state). The exact solver starts from the regions of all those
    states and from ``n_random_patterns`` random patterns; the minimiser from one state drawn along each seed's
    trajectory (random states far from the network's activity mostly end in slow points, not fixed points).

    Args:
        dyn: The map.
        x: Input ``(D,)``.
        init_states: Optional seed states ``(M, H)``.
        n_init: Number of random seed states.
        seed: Seed (or generator) of every random draw.
        method: ``"exact"``, ``"gradient"`` or ``"both"`` (exact points the minimiser also found are labelled
            ``"both"``; points only the minimiser found are labelled ``"gradient"``; with ``"both"`` their state is
            then solved exactly on their own region).
        init_scale: Scale ``s`` of the random seed states.
        n_sim_steps, sim_stride: Trajectory seeding of the exact solver.
        n_random_patterns: Random Bernoulli(1/2) patterns for the exact solver (default ``n_init``).
        max_pattern_iters: Pattern -> solve -> pattern iterations.
        neighbours: Also try every pattern one unit away from each fixed point found (recursively): saddles are
            often born next to nodes, in an adjacent region. Costs ``H`` small solves per fixed point.
        max_points: Stop the neighbour search once this many fixed points are known (networks with
            winner-take-all structure can have combinatorially many).
        tol: A point is fixed when ``|F(h) - h| <= tol * (1 + |h|)``; for the minimiser, also its ``tol_q``
            (``q = 1/2 |F(h) - h|^2``) defaults to ``(tol * (1 + |h|))^2 / 2`` with ``|h| ~ 1``.
        unique_tol: Points closer than ``unique_tol * (1 + |h|)`` are merged (the smallest residual is kept).
        stable_only: Return only linearly stable points.
        gradient_kwargs: Passed to :func:`minimise_speed` (``lr``, ``max_iters``, ``tol_q``, ...).
        progress: Progress bar for the minimiser.

    Returns:
        Fixed points, stable ones first, then by increasing ``|h|``.

    Example:
        >>> from analysis.network import Network
        >>> dyn = Network(np.array([[0.5, -1.0], [-1.0, 0.5]]), np.eye(2))   # bistable winner-take-all
        >>> fps = fixed_points(dyn, np.array([1.0, 1.0]))
        >>> [(fp.state.round(3).tolist(), fp.stable) for fp in fps]
        [([0.0, 2.0], True), ([2.0, 0.0], True), ([0.667, 0.667], False)]
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (dyn.input_size,):
        raise ValueError(f"x must be ({dyn.input_size},), got shape {x.shape}")
    rng = _rng(seed)
    c = dyn.drive(x)
    seeds = _initial_states(dyn, c, init_states, n_init, init_scale, rng)
    if not len(seeds):
        raise ValueError("no seed states: give init_states or n_init > 0")
    solver = PatternSolver(dyn.W_rec, c)
    H = dyn.hidden_size
    visited = _visited(dyn, c, seeds, n_sim_steps, max(1, sim_stride))
    # the minimiser starts from a state drawn along each seed's trajectory (as fixed-point-finder samples states
    # from trials): drawn before anything else, so both methods see the same seeds whatever `method` is
    starts = visited[rng.integers(0, len(visited), len(seeds)), np.arange(len(seeds))]
    exact = np.zeros((0, H))
    if method in ("exact", "both"):
        exact = _exact(
            dyn,
            c,
            visited,
            n_random_patterns=len(seeds) if n_random_patterns is None else n_random_patterns,
            max_pattern_iters=max_pattern_iters,
            neighbours=neighbours,
            max_points=max_points,
            tol=tol,
            rng=rng,
            solver=solver,
        )
    grad = np.zeros((0, H))
    if method in ("gradient", "both"):
        kw = dict(tol_q=0.5 * tol**2, progress=progress)
        kw.update(gradient_kwargs or {})
        hg, q = minimise_speed(dyn, x, starts, **kw)
        ok = np.sqrt(2.0 * q) <= tol * (1.0 + np.linalg.norm(hg, axis=1))
        grad = hg[ok]
    points: list[FixedPoint] = []
    ex_keep = unique_rows(exact, unique_tol)
    exact = exact[ex_keep]
    matched = np.zeros(len(exact), dtype=bool)
    gr_only: list[np.ndarray] = []
    if len(grad):
        res = np.linalg.norm(np.maximum(grad @ dyn.W_rec.T + c, 0.0) - grad, axis=1)
        grad = grad[unique_rows(grad, unique_tol, order=np.argsort(res, kind="stable"))]
        for g in grad:
            if len(exact):
                d = np.linalg.norm(exact - g, axis=1)
                j = int(np.argmin(d))
                if d[j] <= unique_tol * (1.0 + max(np.linalg.norm(g), np.linalg.norm(exact[j]))):
                    matched[j] = True
                    continue
            gr_only.append(g)
    if method == "gradient":
        points = [_make_fixed_point(dyn, x, c, g, solver, "gradient") for g in gr_only]
    else:
        tag = np.where(matched, "both", "exact") if method == "both" else np.full(len(exact), "exact")
        points = [_make_fixed_point(dyn, x, c, h, solver, str(t)) for h, t in zip(exact, tag)]
        for g in gr_only:  # found by the minimiser alone: made exact on its own region when consistent
            hs, res = solver.solve(_pattern_of(dyn, c, g))
            ok = np.isfinite(res) and res <= tol * (1.0 + np.linalg.norm(hs))
            points.append(_make_fixed_point(dyn, x, c, hs if ok else g, solver, "gradient"))
    if stable_only:
        points = [p for p in points if p.stable]
    points.sort(key=lambda p: (not p.stable, p.norm, tuple(p.state)))
    return points
