"""Fixed points of ReLU maps: the exact piecewise-linear solver, the speed minimiser, and their agreement."""

import itertools

import numpy as np
import pytest

from analysis.network import Network
from analysis.dynamics.fixed_point import (
    FixedPoint,
    PatternSolver,
    fixed_points,
    jacobian_eigenvalues,
    minimise_speed,
    unique_rows,
)


def as_dyn(W, c, W_out=None):
    """A map with drive ``c`` (one input channel held at 1)."""
    return Network(W, np.asarray(c, dtype=float)[:, None], W_out=W_out)


def brute_force(W, c):
    """Every fixed point, by solving all 2^H linear regions (independent of the package's code)."""
    H = len(c)
    out = []
    for bits in itertools.product([0, 1], repeat=H):
        D = np.diag(bits).astype(float)
        M = np.eye(H) - D @ W
        if abs(np.linalg.det(M)) < 1e-12:
            continue
        h = np.linalg.solve(M, D @ c)
        if np.linalg.norm(np.maximum(W @ h + c, 0) - h) < 1e-9:
            out.append(h)
    return np.array(unique_set(out))


def unique_set(points, tol=1e-8):
    kept = []
    for p in points:
        if all(np.linalg.norm(p - q) > tol for q in kept):
            kept.append(p)
    return kept


def check_invariants(dyn, x, fps, tol=1e-9):
    c = dyn.drive(x)
    for fp in fps:
        assert isinstance(fp, FixedPoint)
        h = fp.state
        assert np.linalg.norm(np.maximum(dyn.W_rec @ h + c, 0) - h) <= tol * (1 + np.linalg.norm(h))
        assert fp.residual <= tol * (1 + np.linalg.norm(h))
        np.testing.assert_array_equal(fp.pattern, dyn.W_rec @ h + c > 0)
        ev = np.linalg.eigvals(dyn.jacobian(h, x))
        np.testing.assert_allclose(np.sort(np.abs(fp.eigenvalues))[::-1], np.sort(np.abs(ev))[::-1], atol=1e-9)
        assert np.all(np.diff(np.abs(fp.eigenvalues)) <= 1e-12)  # by decreasing modulus
        assert fp.spectral_radius == pytest.approx(np.abs(ev).max(), abs=1e-9)
        assert fp.stable == (fp.spectral_radius < 1)
        if dyn.W_out is not None:
            assert fp.decision == int(np.argmax(dyn.W_out @ h))


def test_contracting_network_has_its_constructed_fixed_point():
    rng = np.random.default_rng(0)
    H = 30
    W = rng.normal(size=(H, H))
    W *= 0.8 / np.linalg.norm(W, 2)  # |W| < 1: a global contraction, one fixed point
    h_star = rng.uniform(0.5, 1.5, H)
    c = h_star - W @ h_star  # so that W h* + c = h* > 0: consistent, all units active
    dyn = as_dyn(W, c, W_out=rng.normal(size=(3, H)))
    for method in ("exact", "gradient", "both"):
        fps = fixed_points(dyn, np.ones(1), method=method, n_init=16, seed=0)
        assert len(fps) == 1, method
        (fp,) = fps
        np.testing.assert_allclose(fp.state, h_star, atol=1e-12 if method != "gradient" else 1e-7)
        assert fp.stable and fp.n_active == H
        assert fp.spectral_radius == pytest.approx(np.abs(np.linalg.eigvals(W)).max(), rel=1e-10)
        assert fp.method == {"exact": "exact", "gradient": "gradient", "both": "both"}[method]
        check_invariants(dyn, np.ones(1), fps, tol=1e-9 if method != "gradient" else 1e-7)


def test_winner_take_all_two_attractors_and_a_saddle():
    dyn = Network(np.array([[0.5, -1.0], [-1.0, 0.5]]), np.eye(2))
    fps = fixed_points(dyn, np.array([1.0, 1.0]), method="both")
    states = [fp.state for fp in fps]
    np.testing.assert_allclose(states, [[0, 2], [2, 0], [2 / 3, 2 / 3]], atol=1e-12)
    assert [fp.stable for fp in fps] == [True, True, False]
    np.testing.assert_allclose(sorted(fps[2].eigenvalues.real), [-0.5, 1.5])  # eig(W) = 0.5 -+ 1
    np.testing.assert_allclose(fps[0].eigenvalues, [0.5, 0.0])  # one unit off: eig(W_AA) and a zero
    assert [fp.stable for fp in fixed_points(dyn, np.array([1.0, 1.0]), stable_only=True)] == [True, True]


def test_tent_map_fixed_points_in_closed_form():
    """Tent map x -> mu min(x, 1 - x) as a 2-unit ReLU RNN: fixed points x = 0 and x* = mu / (1 + mu)."""
    mu = 1.9
    dyn = Network([[mu, -2 * mu], [mu, -2 * mu]], [[0.0], [-0.5]])
    fps = fixed_points(dyn, np.ones(1), n_init=32, seed=0)
    x_star = mu / (1 + mu)
    got = sorted(fp.state.round(12).tolist() for fp in fps)
    assert got == sorted([[0.0, 0.0], [round(x_star, 12), round(x_star - 0.5, 12)]])
    interior = next(fp for fp in fps if fp.state[0] > 0)
    np.testing.assert_allclose(interior.eigenvalues, [-mu, 0.0], atol=1e-12)  # slope -mu on the falling branch
    assert not interior.stable


def multistable_network(seed, H=8):
    """Self-excitation and mutual inhibition (winner-take-all-like): many stable and unstable fixed points."""
    rng = np.random.default_rng(100 + seed)
    W = rng.normal(0, 0.5 / np.sqrt(H), (H, H)) + np.diag(rng.uniform(0.2, 0.9, H)) - 0.7 * (1 - np.eye(H))
    return W, rng.uniform(0.5, 1.5, H)


@pytest.mark.parametrize("seed", range(6))
def test_exact_solver_with_every_region_tried_finds_exactly_the_fixed_points(seed):
    """With enough random patterns to visit all 2^8 regions, the solver must return every fixed point, and only
    fixed points (checked against an independent brute-force enumeration)."""
    W, c = multistable_network(seed)
    truth = brute_force(W, c)
    dyn = as_dyn(W, c)
    fps = fixed_points(dyn, np.ones(1), n_init=8, seed=seed, n_random_patterns=4096)
    assert len(truth) >= 5 and sum(fp.stable for fp in fps) >= 2 and sum(not fp.stable for fp in fps) >= 2
    found = np.array([fp.state for fp in fps])
    assert len(found) == len(truth)
    for t in truth:
        assert np.min(np.linalg.norm(found - t, axis=1)) < 1e-9
    check_invariants(dyn, np.ones(1), fps)


def test_default_search_is_sound_and_nearly_complete():
    """The default (SCYFI-like) search is not exhaustive, but every point it reports is a fixed point, the
    neighbour search only adds points, and together they find nearly all of them (>= 95% over 20 networks)."""
    n_true = n_found = 0
    for seed in range(20):
        W, c = multistable_network(seed)
        truth = {tuple(t.round(8)) for t in brute_force(W, c)}
        got = {tuple(fp.state.round(8)) for fp in fixed_points(as_dyn(W, c), np.ones(1), n_init=32, seed=seed)}
        plain = {tuple(fp.state.round(8)) for fp in fixed_points(as_dyn(W, c), np.ones(1), n_init=32, seed=seed,
                                                                  neighbours=False)}
        assert got <= truth and plain <= got
        n_true += len(truth)
        n_found += len(got)
    assert n_found >= 0.95 * n_true


@pytest.mark.parametrize("case,seed", [("random", 0), ("random", 1), ("multistable", 1), ("multistable", 3)])
def test_gradient_minimiser_agrees_with_exact_solver_on_random_networks(case, seed):
    rng = np.random.default_rng(200 + seed)
    if case == "random":
        H = 24
        dyn = Network(rng.normal(0, 1.3 / np.sqrt(H), (H, H)), rng.normal(0, 0.5, (H, 2)),
                          W_out=rng.normal(size=(3, H)))
        x = rng.uniform(0.5, 1.0, 2)
    else:  # the minimiser finds several (stable and saddle) points here
        W, c = multistable_network(seed)
        dyn, x = as_dyn(W, c, W_out=rng.normal(size=(3, len(c)))), np.ones(1)
    exact = fixed_points(dyn, x, method="exact", n_init=48, seed=seed)
    grad = fixed_points(dyn, x, method="gradient", n_init=48, seed=seed, tol=1e-8)
    both = fixed_points(dyn, x, method="both", n_init=48, seed=seed, tol=1e-8)
    assert exact and grad and (case == "random" or len(grad) >= 2)
    ex = np.array([fp.state for fp in exact])
    for g in grad:  # every point the minimiser certifies is one of the exact solver's
        d = np.linalg.norm(ex - g.state, axis=1)
        assert d.min() < 1e-6 * (1 + np.linalg.norm(g.state))
        twin = exact[int(d.argmin())]
        assert twin.stable == g.stable and np.array_equal(twin.pattern, g.pattern)
    assert all(fp.method in ("both", "exact") for fp in both)
    assert sum(fp.method == "both" for fp in both) == len(grad)
    check_invariants(dyn, x, exact)
    check_invariants(dyn, x, grad, tol=1e-8)


def test_duplicates_merge_and_same_seed_same_result():
    rng = np.random.default_rng(5)
    H = 20
    dyn = Network(rng.normal(0, 1.2 / np.sqrt(H), (H, H)), rng.normal(0, 0.5, (H, 1)))
    x = np.ones(1)
    base = dyn.simulate(np.abs(rng.normal(size=H)), x, 300, record=False)
    seeds = base + 1e-9 * rng.random((10, H))  # ten copies of (nearly) the same state
    a = fixed_points(dyn, x, init_states=seeds, n_init=0, n_random_patterns=0, method="both")
    states = np.array([fp.state for fp in a])
    assert len(unique_rows(states, 1e-6)) == len(states)
    b = fixed_points(dyn, x, init_states=seeds, n_init=0, n_random_patterns=0, method="both")
    assert [fp.state.tolist() for fp in a] == [fp.state.tolist() for fp in b]
    with pytest.raises(ValueError):
        fixed_points(dyn, x, method="newton")
    with pytest.raises(ValueError):
        fixed_points(dyn, x, n_init=0)


def test_pattern_solver_stability_certificate_matches_eigenvalues():
    rng = np.random.default_rng(6)
    H = 60
    for gain in (0.5, 1.0, 2.5):
        W = rng.normal(0, gain / np.sqrt(H), (H, H))
        solver = PatternSolver(W, np.zeros(H))
        for _ in range(10):
            p = rng.random(H) < 0.5
            rho = np.abs(np.linalg.eigvals(W[np.ix_(p, p)])).max()
            assert solver.is_stable(p) == (rho < 1)
            np.testing.assert_allclose(np.abs(jacobian_eigenvalues(W, p)[0]), rho)


def test_minimise_speed_converges_to_the_fixed_point():
    rng = np.random.default_rng(7)
    W = rng.normal(size=(10, 10))
    W *= 0.7 / np.linalg.norm(W, 2)
    h_star = rng.uniform(0.5, 1.0, 10)
    dyn = as_dyn(W, h_star - W @ h_star)
    h, q = minimise_speed(dyn, np.ones(1), rng.random((5, 10)) * 3)
    assert (q < 1e-20).all()
    np.testing.assert_allclose(h, np.broadcast_to(h_star, h.shape), atol=1e-9)
