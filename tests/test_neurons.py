import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventsnn as es
from eventsnn.event import _crossing

taus = st.tuples(st.floats(0.5, 20), st.floats(0.5, 20)).filter(lambda p: abs(p[0] - p[1]) > 0.05)


@settings(max_examples=20)
@given(taus)
def test_kernel_matches_lif_ode_solution(p):
    """eps is the membrane of dV/dt = -V/tau_m + I, dI/dt = -I/tau_s after I(0) = 1/tau_s,
    integrated numerically by scipy."""
    from scipy.integrate import solve_ivp
    tau_m, tau_s = p
    n = es.SRM(tau_m, tau_s)
    s = np.linspace(0, 30, 61)
    sol = solve_ivp(lambda t, y: [-y[0] / tau_m + y[1], -y[1] / tau_s], (0, 30), [0.0, 1.0 / tau_s],
                    t_eval=s, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(n.eps(s), sol.y[0], rtol=1e-7, atol=1e-9)
    assert n.eps(-1.0) == 0 and n.deps(-1.0) == 0


@given(taus)
def test_derivative_and_peak(p):
    n = es.SRM(*p)
    s = np.linspace(0.01, 20, 50)
    fd = (n.eps(s + 1e-6) - n.eps(s - 1e-6)) / 2e-6
    np.testing.assert_allclose(n.deps(s), fd, rtol=1e-5, atol=1e-7)
    assert abs(n.deps(n.t_peak)) < 1e-10
    assert n.eps_peak >= n.eps(n.t_peak + 0.1) and n.eps_peak >= n.eps(n.t_peak - 0.1)


def test_backward_kernels():
    n = es.SRM(5.0, 2.0)
    s = np.array([0.0, 1.0, 3.0])
    np.testing.assert_allclose(n.h(s, "exp", tau_grad=2.0), np.exp(-s / 2.0))
    np.testing.assert_allclose(n.h(s, "depsilon"), n.deps(s))
    with pytest.raises(ValueError, match="kernel"):
        n.h(s, "gauss")


@pytest.mark.parametrize("kwargs, match", [
    (dict(tau_m=5.0, tau_s=5.0), "alpha-kernel"),
    (dict(tau_m=0.0), "tau_m"),
    (dict(tau_s=-1.0), "tau_s"),
    (dict(tau_m=float("nan")), "tau_m"),
    (dict(theta=0.0), "theta"),
    (dict(reset="soft"), "reset"),
    (dict(t_ref=-1.0), "t_ref"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        es.SRM(**kwargs)


def test_bad_parameter_types():
    with pytest.raises(TypeError, match="tau_m"):
        es.SRM(tau_m="5")


@given(M=st.floats(-50, 50), S=st.floats(-50, 50), span=st.floats(0.01, 40), p=taus,
       theta=st.floats(0.1, 5))
def test_crossing_solver_against_dense_scan(M, S, span, p, theta):
    """first_crossing equals the first sign change on a fine grid, refined by bisection."""
    tau_m, tau_s = p
    c = tau_m / (tau_m - tau_s)
    s = _crossing.first_crossing(M, S, 0.0, span, c, tau_m, tau_s, theta)
    grid = np.linspace(0, span, 20001)
    u = c * (M * np.exp(-grid / tau_m) - S * np.exp(-grid / tau_s))
    above = np.nonzero(u >= theta)[0]
    if above.size == 0:
        # the grid may miss a crossing only if the curve grazes theta between grid points
        if s != np.inf:
            assert abs(c * (M * np.exp(-s / tau_m) - S * np.exp(-s / tau_s)) - theta) < 1e-6
        return
    k = above[0]
    if k == 0:
        assert s == 0.0
        return
    lo, hi = grid[k - 1], grid[k]
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if c * (M * np.exp(-mid / tau_m) - S * np.exp(-mid / tau_s)) >= theta:
            hi = mid
        else:
            lo = mid
    # a crossing earlier than the grid's first one can only be a graze between grid points
    assert s <= hi + 1e-9
    if abs(s - hi) > 1e-9:
        assert abs(c * (M * np.exp(-s / tau_m) - S * np.exp(-s / tau_s)) - theta) < 1e-6


@given(st.lists(st.tuples(st.integers(0, 19), st.one_of(st.floats(0, 100), st.none())), max_size=300))
def test_indexed_heap_against_dict(ops):
    """Random set/remove operations; the heap pops in (time, neuron) order what a plain
    dict of the latest prediction per neuron holds."""
    from eventsnn.event import _queue
    heap = _queue.heap_new(20)
    latest = {}
    for i, t in ops:
        if t is None:
            _queue.heap_remove(heap, i)
            latest.pop(i, None)
        else:
            _queue.heap_set(heap, i, t)
            latest[i] = t
        assert _queue.heap_size(heap) == len(latest)
    out = []
    while _queue.heap_size(heap) > 0:
        t, i = _queue.heap_pop(heap)
        out.append((t, i))
    assert out == sorted((t, i) for i, t in latest.items())


@given(M=st.floats(-50, 50), S=st.floats(-50, 50), p=taus, span=st.floats(0.001, 50))
def test_bounds_hold(M, S, p, span):
    """upper_bound (finite span) and peak_bound (all s >= 0) are upper bounds of u."""
    tau_m, tau_s = p
    c = tau_m / (tau_m - tau_s)
    grid = np.linspace(0, span, 2001)
    u = c * (M * np.exp(-grid / tau_m) - S * np.exp(-grid / tau_s))
    tol = 1e-9 * (1 + abs(c) * (abs(M) + abs(S)))
    assert u.max() <= _crossing.upper_bound(M, S, span, c, tau_m, tau_s) + tol
    far = np.linspace(0, 50 * max(tau_m, tau_s), 20001)
    u_far = c * (M * np.exp(-far / tau_m) - S * np.exp(-far / tau_s))
    assert max(u.max(), u_far.max()) <= _crossing.peak_bound(M, S, c) + tol


@pytest.mark.parametrize("fn", ["eps", "deps", "h_exp", "h_depsilon"])
def test_kernels_validate_their_argument(fn):
    n = es.SRM(5.0, 2.0)
    call = {"eps": n.eps, "deps": n.deps, "h_exp": lambda s: n.h(s, "exp"),
            "h_depsilon": lambda s: n.h(s, "depsilon")}[fn]
    for bad in (float("nan"), [1.0, float("nan")], np.array([[0.0], [np.nan]])):
        with pytest.raises(ValueError, match="NaN"):
            call(bad)
    for bad in ("1.0", [1.0, "a"], 1 + 2j):
        with pytest.raises(TypeError, match="real"):
            call(bad)
    # +-inf are fine: the kernels vanish at both ends
    np.testing.assert_array_equal(call([np.inf, -np.inf]), [0.0, 0.0])
    assert np.shape(call(1.0)) == () and np.shape(call([[1.0, 2.0]])) == (1, 2)


def test_h_validates_tau_grad():
    n = es.SRM(5.0, 2.0)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="tau_grad"):
            n.h(1.0, "exp", tau_grad=bad)
    with pytest.raises(TypeError, match="tau_grad"):
        n.h(1.0, "exp", tau_grad="2")
