"""Attractor classification and Lyapunov exponents on ReLU maps whose answer is known by construction.

Systems (each also embedded in a larger network with extra contracting units that the core drives but that never
feed back, which must not change the answer):

* a contracting network with a constructed fixed point;
* period-k cycles: a rotation by 2 pi / k about a point of the positive orthant (neutral), a one-hot "shift
  register" (attracting, multiplier 1/2 per step), and a mode-locked cycle of a piecewise-linear oscillator;
* quasi-periodic orbits: an irrational rotation (neutral circles) and an expanding rotation confined by ReLU
  "walls" (an attracting invariant curve: lambda_1 = 0, lambda_2 < 0);
* a chaotic tent map ``x -> mu min(x, 1 - x)``: ``|T'| = mu`` everywhere, so ``lambda_1 = ln mu`` exactly;
* a divergent linear map.
"""

import numpy as np
import pytest

from analysis.dynamics.attractors import KINDS, Attractor, find_attractors, lyapunov_exponents
from analysis.network import Network

GOLDEN = (np.sqrt(5) - 1) / 2


# ---------------------------------------------------------------------------------------------- constructions
def rot(theta):
    return np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])


def pwl_relu(A, V, N, e, offset):
    """A ReLU RNN that realises ``x' = A x + V relu(N x + e)``.

    Units ``p = x + offset`` (kept positive, so always in their linear range) and ``r = relu(N x + e)``; since
    ``x'`` is linear in ``(p, r)``, both ``p'`` and ``r' = relu(N x' + e)`` are ReLUs of linear functions of the
    state. Returns ``(W, c)`` for ``h' = relu(W h + c)``.
    """
    A, V, N = np.atleast_2d(A), np.atleast_2d(V), np.atleast_2d(N)
    o = np.broadcast_to(np.asarray(offset, float), (A.shape[0],))
    lin = np.hstack([A, V])  # x' = lin @ (p, r) - A o
    W = np.vstack([lin, N @ lin])
    c = np.concatenate([o - A @ o, -N @ (A @ o) + e])
    return W, c


def tent(mu):
    """Tent map on units ``(x, relu(x - 1/2))``: ``x' = mu x - 2 mu relu(x - 1/2)``."""
    return pwl_relu(mu, -2 * mu, 1.0, np.array([-0.5]), 0.0)


def walled_oscillator(theta, rho=1.1, n_walls=8):
    """``x' = rho R(theta) (x - N^T relu(N x - 1))``: expanding rotation, projected back through 8 walls."""
    ang = np.arange(n_walls) * 2 * np.pi / n_walls + 0.3
    N = np.stack([np.cos(ang), np.sin(ang)], 1)
    A = rho * rot(theta)
    return pwl_relu(A, -A @ N.T, N, -np.ones(n_walls), 2.0)


def shift_register(k):
    """One-hot cycle ``e_1 -> e_2 -> ... -> e_k -> e_1``, attracting: ``W = 1.5 P - 1 1^T``, ``c = 1/2``."""
    P = np.roll(np.eye(k), 1, axis=0)
    return 1.5 * P - np.ones((k, k)), np.full(k, 0.5)


def rotation(theta):
    """Rotation by ``theta`` about ``(1, 1)``: linear (all units active) on the disc of radius 1."""
    R = rot(theta)
    return R, (np.eye(2) - R) @ np.ones(2)


def embed(W, c, n_extra=30, seed=0):
    """Add ``n_extra`` contracting units that the core drives and that never feed back."""
    rng = np.random.default_rng(seed)
    n = len(c)
    H = n + n_extra
    Wb = np.zeros((H, H))
    Wb[:n, :n] = W
    E = rng.normal(size=(n_extra, n_extra))
    Wb[n:, n:] = 0.5 * E / np.linalg.norm(E, 2)
    Wb[n:, :n] = rng.normal(0, 0.5, (n_extra, n))
    return Wb, np.concatenate([c, rng.normal(0, 0.5, n_extra)])


def dyn_of(W, c):
    return Network(W, np.asarray(c, float)[:, None])


def pad(states, H):
    """Initial states for an embedded system: the core's state, extra units at 0.1."""
    states = np.atleast_2d(states)
    return np.hstack([states, np.full((len(states), H - states.shape[1]), 0.1)])


X1 = np.ones(1)


def kinds(atts):
    return [(a.kind, a.period) for a in atts]


# ---------------------------------------------------------------------------------------------- the systems
@pytest.mark.parametrize("embedded", [False, True])
def test_stable_fixed_point(embedded):
    rng = np.random.default_rng(0)
    W = rng.normal(size=(6, 6))
    W *= 0.9 / np.linalg.norm(W, 2)
    h_star = rng.uniform(0.5, 1.5, 6)
    c = h_star - W @ h_star
    if embedded:
        W, c = embed(W, c)
    dyn = dyn_of(W, c)
    atts = find_attractors(dyn, X1, n_init=24, seed=1)
    assert kinds(atts) == [("fixed_point", None)]
    (a,) = atts
    assert a.basin_count == 24 and a.members.tolist() == list(range(24))
    np.testing.assert_allclose(a.state[:6], h_star, atol=1e-12)  # exact, not just converged
    assert np.linalg.norm(dyn.step(a.state, X1) - a.state) < 1e-12
    ev = np.linalg.eigvals(dyn.jacobian(a.state, X1))
    assert a.spectral_radius == pytest.approx(np.abs(ev).max(), rel=1e-9) and a.spectral_radius < 1
    with np.errstate(divide="ignore"):  # the extra units' zero eigenvalues, if inactive
        np.testing.assert_allclose(a.lyapunov, np.sort(np.log(np.abs(ev)))[::-1][:2], rtol=1e-9)
    np.testing.assert_array_equal(a.orbit, a.state[None])


@pytest.mark.parametrize("k", [3, 5, 8])
def test_rotation_by_2pi_over_k_is_periodic_and_phases_of_one_cycle_merge(k):
    dyn = dyn_of(*rotation(2 * np.pi / k))
    phases = 0.3 + 2 * np.pi * np.arange(k) / k  # the k points of one cycle
    on_cycle = 1 + 0.5 * np.stack([np.cos(phases), np.sin(phases)], 1)
    other = 1 + 0.2 * np.array([[np.cos(0.1), np.sin(0.1)]])  # a smaller circle: another (neutral) cycle
    atts = find_attractors(dyn, X1, n_init=0, init_states=np.vstack([on_cycle, other]))
    assert kinds(atts) == [("periodic", k), ("periodic", k)]
    assert atts[0].members.tolist() == list(range(k)) and atts[1].members.tolist() == [k]
    assert atts[0].orbit.shape == (k, 2)  # exactly one period
    np.testing.assert_allclose(atts[0].mean, [1.0, 1.0], atol=1e-9)  # the mean of a cycle of a rotation
    np.testing.assert_allclose(atts[0].lyapunov, [0.0, 0.0], atol=1e-9)  # |eigenvalues| = 1


@pytest.mark.parametrize("embedded", [False, True])
@pytest.mark.parametrize("k", [3, 6])
def test_attracting_one_hot_cycle(k, embedded):
    W, c = shift_register(k)
    H = k
    if embedded:
        W, c = embed(W, c)
        H = len(c)
    rng = np.random.default_rng(k)
    h0 = pad(np.eye(k)[0] * 0.8 + 0.05 * rng.random((10, k)), H)  # near e_1: its basin
    atts = find_attractors(dyn_of(W, c), X1, n_init=0, init_states=h0)
    assert kinds(atts) == [("periodic", k)]
    a = atts[0]
    assert a.basin_count == 10 and a.converged
    np.testing.assert_allclose(np.sort(a.orbit[:, :k].sum(1)), np.ones(k), atol=1e-9)  # one-hot, amplitude 1
    assert a.lyapunov[0] == pytest.approx(np.log(0.5), abs=1e-3)  # the cycle multiplier is 0.5 per step


@pytest.mark.parametrize("embedded", [False, True])
def test_mode_locked_cycle_of_the_walled_oscillator(embedded):
    W, c = walled_oscillator(0.9)
    if embedded:
        W, c = embed(W, c)
    atts = find_attractors(dyn_of(W, c), X1, n_init=16, seed=0, init_scale=0.3)
    assert {(a.kind, a.period) for a in atts} == {("periodic", 7)}  # several phase-shifted 7-cycles coexist
    assert sum(a.basin_count for a in atts) == 16
    for a in atts:
        assert -0.06 < a.lyapunov[0] < -0.02 and a.converged


@pytest.mark.parametrize("embedded", [False, True])
def test_irrational_rotation_has_no_transverse_gap_and_is_unresolved(embedded):
    # A neutral circle in a neutral family (lambda_1 = lambda_2 = 0): not an attracting invariant curve, so not
    # quasi-periodic; no period either. A finite recording cannot call it: unresolved, never QP.
    W, c = rotation(2 * np.pi * GOLDEN)
    if embedded:
        W, c = embed(W, c)
    phases = np.array([0.0, 1.0, 2.5, 4.0])
    h0 = pad(1 + 0.5 * np.stack([np.cos(phases), np.sin(phases)], 1), len(c))  # four points of one circle
    atts = find_attractors(dyn_of(W, c), X1, n_init=0, init_states=h0)
    assert kinds(atts) == [("unresolved", None)]
    a = atts[0]
    assert a.basin_count == 4 and not a.converged
    assert abs(a.lyapunov[0]) < 1e-3 and abs(a.lyapunov[1]) < 1e-3
    r = np.linalg.norm(a.orbit[:, :2] - 1.0, axis=1)
    np.testing.assert_allclose(r, 0.5, atol=1e-9)  # the orbit stays on its circle


def focus(rho, theta=0.3, centre=5.0):
    """``h -> relu(rho R(theta) h + c)`` with its fixed point at ``(centre, centre)``, deep in the positive orthant."""
    W = rho * rot(theta)
    return W, (np.eye(2) - W) @ np.full(2, centre)


@pytest.mark.parametrize("embedded", [False, True])
@pytest.mark.parametrize("rho", [0.999, 0.9995])
def test_slow_stable_focus_is_a_fixed_point(rho, embedded):
    # The orbit spirals in for thousands of steps (|lambda_1| < 1e-3, no return) without leaving its activation
    # pattern, whose exact fixed point is stable: a fixed point, not quasi-periodic.
    W, c = focus(rho)
    if embedded:
        W, c = embed(W, c, n_extra=40)
    h0 = pad(5.0 + np.array([[1.5, 0.0], [0.0, -2.0], [-1.0, 1.0]]), len(c))
    atts = find_attractors(dyn_of(W, c), X1, n_init=0, init_states=h0)
    assert kinds(atts) == [("fixed_point", None)]
    a = atts[0]
    np.testing.assert_allclose(a.state[:2], [5.0, 5.0], atol=1e-9)  # the exact fixed point
    assert a.basin_count == 3 and a.lyapunov[0] == pytest.approx(np.log(rho), abs=1e-9)


@pytest.mark.parametrize("embedded", [False, True])
@pytest.mark.parametrize("q, p", [(1201, 500), (1999, 777)])
def test_long_rational_rotation_is_periodic_with_two_returns(q, p, embedded):
    W, c = rotation(2 * np.pi * p / q)
    if embedded:
        W, c = embed(W, c, n_extra=40)
    h0 = pad(np.array([[1.3, 1.0], [1.0, 0.6]]), len(c))  # two circles
    atts = find_attractors(dyn_of(W, c), X1, n_init=0, init_states=h0)
    assert sorted(kinds(atts)) == [("periodic", q), ("periodic", q)]
    assert all(a.converged and len(a.orbit) <= q for a in atts)


def test_a_single_return_is_unresolved_not_periodic():
    # With no further recording allowed, period 1201's second return (at 2402 > 2000 recorded steps) is never
    # seen: the orbit is unresolved (not periodic on one return, and not quasi-periodic either).
    W, c = rotation(2 * np.pi * 500 / 1201)
    atts = find_attractors(dyn_of(W, c), X1, n_init=0, init_states=[[1.3, 1.0]], max_extensions=0)
    assert kinds(atts) == [("unresolved", None)]


@pytest.mark.parametrize("embedded", [False, True])
def test_attracting_invariant_curve_is_quasi_periodic_and_transversally_stable(embedded):
    W, c = walled_oscillator(1.0)
    if embedded:
        W, c = embed(W, c)
    atts = find_attractors(dyn_of(W, c), X1, n_init=16, seed=0, init_scale=0.3)
    assert kinds(atts) == [("quasi_periodic", None)]
    a = atts[0]
    assert a.basin_count == 16  # every initial state lands on the one curve
    assert abs(a.lyapunov[0]) < 1e-3 and a.lyapunov[1] < -0.5 and a.transverse_stable
    x = a.orbit[:, :2] - 2.0
    assert np.all(np.linalg.norm(x, axis=1) > 1.0)  # it lives on the walls' image, outside the unit polygon


@pytest.mark.parametrize("embedded", [False, True])
@pytest.mark.parametrize("mu", [1.5, 1.9])
def test_tent_map_is_chaotic_with_lyapunov_ln_mu(mu, embedded):
    W, c = tent(mu)
    if embedded:
        W, c = embed(W, c)
    xs = np.array([0.13, 0.31, 0.62, 0.77])
    h0 = pad(np.stack([xs, np.maximum(xs - 0.5, 0)], 1), len(c))  # consistent states on the tent's interval
    atts = find_attractors(dyn_of(W, c), X1, n_init=0, init_states=h0)
    assert kinds(atts) == [("chaotic", None)]
    a = atts[0]
    assert a.basin_count == 4
    assert a.lyapunov[0] == pytest.approx(np.log(mu), abs=2e-3)
    assert a.lyapunov[1] < -0.5  # rank-one core Jacobian (-inf), or the extra units' contraction
    x = a.orbit[:, 0]
    assert x.min() >= 0 and x.max() <= mu / 2 + 1e-12  # the tent's invariant interval


def test_divergent():
    dyn = dyn_of(np.array([[1.2, 0.1], [0.1, 1.2]]), np.array([0.1, 0.1]))
    atts = find_attractors(dyn, X1, n_init=8, seed=0)
    assert kinds(atts) == [("divergent", None)]
    assert atts[0].basin_count == 8 and np.isnan(atts[0].lyapunov).all()


def test_multistability_basins_partition_the_initial_states():
    """Winner-take-all: the unit that starts higher wins (the difference grows by 1.5 per step)."""
    dyn = Network(np.array([[0.5, -1.0], [-1.0, 0.5]]), np.eye(2))
    rng = np.random.default_rng(3)
    h0 = rng.random((40, 2)) * 2
    atts = find_attractors(dyn, np.ones(2), n_init=0, init_states=h0)
    assert sorted(a.state.round(12).tolist() for a in atts) == [[0.0, 2.0], [2.0, 0.0]]
    assert sorted(np.concatenate([a.members for a in atts]).tolist()) == list(range(40))
    for a in atts:
        winner = int(np.argmax(a.state))
        assert (h0[a.members, winner] > h0[a.members, 1 - winner]).all()


# ---------------------------------------------------------------------------------------------- batching, API
def test_many_inputs_at_once_match_one_at_a_time():
    """One map, inputs that select different attractor types (the input gates which module is active)."""
    Wt, ct = tent(1.9)
    Wr, cr = rotation(2 * np.pi / 5)
    H = 4
    W = np.zeros((H, H))
    W[:2, :2], W[2:, 2:] = Wt, Wr
    # input 0 drives the tent module, input 1 the rotation module; the other module is held at 0
    W_in = np.zeros((H, 2))
    W_in[:2, 0], W_in[:2, 1] = ct, -10.0
    W_in[2:, 1], W_in[2:, 0] = cr, -10.0
    dyn = Network(W, W_in)
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    rng = np.random.default_rng(4)
    h0 = np.hstack([rng.uniform(0, 0.9, (6, 2)), 1 + rng.uniform(-0.5, 0.5, (6, 2))])
    # (random initial states are drawn per input index, so compare with given states only)
    together = find_attractors(dyn, X, n_init=0, init_states=h0)
    assert len(together) == 3
    for i, x in enumerate(X):
        alone = find_attractors(dyn, x, n_init=0, init_states=h0)
        assert kinds(alone) == kinds(together[i])
        assert [a.members.tolist() for a in alone] == [a.members.tolist() for a in together[i]]
        assert all(a.input_index == i for a in together[i])
    assert ("chaotic", None) in kinds(together[0]) and ("periodic", 5) in kinds(together[1])
    assert kinds(together[0]) == kinds(together[2])


def test_same_seed_same_numbers():
    W, c = embed(*walled_oscillator(1.0))
    dyn = dyn_of(W, c)
    a = find_attractors(dyn, X1, n_init=8, seed=7, init_scale=0.3)
    b = find_attractors(dyn, X1, n_init=8, seed=7, init_scale=0.3)
    assert [(x.kind, x.members.tolist(), x.lyapunov.tolist()) for x in a] == [
        (x.kind, x.members.tolist(), x.lyapunov.tolist()) for x in b
    ]
    np.testing.assert_array_equal(a[0].orbit, b[0].orbit)


def test_worker_processes_give_the_same_attractors_as_one_process():
    """Blocks of inputs searched by 2 worker processes: same kinds, members, exponents and orbits as in-process."""
    W, c = walled_oscillator(1.0)
    W_in = np.stack([c, np.zeros_like(c)], 1)
    W_in[:2, 1] = 1.0  # input 1 shifts the oscillator's centre: quasi-periodic curves, cycles, fixed points
    dyn = Network(W, W_in)
    X = np.stack([np.ones(5), np.linspace(-0.5, 4.0, 5)], 1)
    serial = find_attractors(dyn, X, n_init=6, seed=3, init_scale=0.3, block_size=2)
    pooled = find_attractors(dyn, X, n_init=6, seed=3, init_scale=0.3, block_size=2, n_jobs=2)
    assert len({a.kind for r in serial for a in r}) >= 2
    for s_atts, p_atts in zip(serial, pooled):
        assert [(a.kind, a.period, a.members.tolist()) for a in s_atts] == [
            (a.kind, a.period, a.members.tolist()) for a in p_atts]
        for a, b in zip(s_atts, p_atts):
            np.testing.assert_array_equal(a.orbit, b.orbit)
            np.testing.assert_array_equal(a.lyapunov, b.lyapunov)


def test_thresholds_are_the_arguments():
    tent_dyn = dyn_of(*tent(1.9))
    h0 = np.array([[0.3, 0.0]])
    assert kinds(find_attractors(tent_dyn, X1, n_init=0, init_states=h0, lyap_eps=1.0)) == [("quasi_periodic", None)]
    rot5 = dyn_of(*rotation(2 * np.pi / 5))
    h0 = np.array([[1.3, 1.0]])
    assert kinds(find_attractors(rot5, X1, n_init=0, init_states=h0)) == [("periodic", 5)]
    # no period up to 4, and a neutral rotation has no transverse gap: unresolved (before issue 10: quasi_periodic)
    assert kinds(find_attractors(rot5, X1, n_init=0, init_states=h0, max_period=4)) == [("unresolved", None)]
    div = dyn_of(np.array([[1.2]]), np.array([0.1]))
    assert kinds(find_attractors(div, X1, n_init=2, divergence_norm=1e300)) == [("divergent", None)]  # overflow


def test_arguments_are_checked_and_results_are_typed():
    dyn = dyn_of(*rotation(1.0))
    with pytest.raises(ValueError):
        find_attractors(dyn, X1, n_init=0)
    with pytest.raises(ValueError):
        find_attractors(dyn, np.ones((3, 1)), init_states=np.ones((2, 4, 2)))  # 2 inputs' states for 3 inputs
    atts = find_attractors(dyn, X1, n_init=2, init_states=[[1.2, 1.0]], init_scale=0.1)
    assert all(isinstance(a, Attractor) and a.kind in KINDS for a in atts)
    assert sum(a.basin_count for a in atts) == 3


# ---------------------------------------------------------------------------------------------- lyapunov_exponents
def test_lyapunov_exponents_known_values():
    # diagonal contraction in the positive orthant: exponents are the log eigenvalues
    dyn = dyn_of(np.diag([0.5, 0.25, 0.9]), np.array([1.0, 1.0, 1.0]))
    lam = lyapunov_exponents(dyn, X1, np.ones(3), n_steps=500, k=3)
    np.testing.assert_allclose(lam, np.log([0.9, 0.5, 0.25]), atol=1e-12)
    # tent map: ln mu, batched over initial states
    dyn = dyn_of(*tent(1.7))
    xs = np.array([0.2, 0.45, 0.8])
    lam = lyapunov_exponents(dyn, X1, np.stack([xs, np.maximum(xs - 0.5, 0)], 1), n_steps=4000, k=1)
    assert lam.shape == (3, 1)
    np.testing.assert_allclose(lam[:, 0], np.log(1.7), atol=1e-3)
    # rotation: both zero
    dyn = dyn_of(*rotation(2 * np.pi * GOLDEN))
    np.testing.assert_allclose(lyapunov_exponents(dyn, X1, np.array([1.4, 1.0]), k=2), [0, 0], atol=1e-12)
