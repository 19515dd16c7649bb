"""The pieces of the Dense window kernel's replays (issue 12): the fused multiply-add the
traces are summed with (``_fma.fma``), the branch-free scan of a flagged neuron's 8 bounds
(``_engine._first_hit8``), each against a slow readable reference, and the kernel on inputs
made of such windows against the per-group kernel of tests/groupwise_dense.py.

The references: fma from exact rational arithmetic (``Fraction``: x y + z exactly, then one
rounding to the nearest double, ties to even, as IEEE 754 requires); the scan as a plain
Python loop over the groups, with ``_headroom`` run as Python (its ``py_func``).
"""
import math
from fractions import Fraction

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numba import njit

from eventsnn.event import _engine
from eventsnn.event._fma import fma

from .groupwise_dense import groupwise_dense_layer
from .strategies import examples

SEEDS = st.integers(0, 2**32 - 1)
FINITE = st.floats(-1e150, 1e150, allow_nan=False, allow_infinity=False)


def fma_reference(x, y, z):
    """x y + z rounded once (Python floats: float(Fraction) rounds to nearest, ties even)."""
    return float(Fraction(x) * Fraction(y) + Fraction(z))


@njit(cache=True)
def _fma_loop(x, y, z):
    out = np.empty(x.size)
    for i in range(x.size):
        out[i] = fma(x[i], y[i], z[i])
    return out


@settings(max_examples=examples(400), deadline=None)
@given(x=FINITE, y=FINITE, z=FINITE)
def test_fma_rounds_once(x, y, z):
    want = fma_reference(x, y, z)
    assume(math.isfinite(want))
    got = _fma_loop(np.array([x]), np.array([y]), np.array([z]))[0]
    assert got == want or (got == 0.0 and want == 0.0)


def test_fma_differs_from_two_roundings_and_vectorises():
    """A case where one rounding and two differ (so the test can tell them apart), and a long
    loop (the vectorised code path) against the reference element by element."""
    x = 1.0 + 2.0**-30
    z = -(1.0 + 2.0**-29)
    # x^2 = 1 + 2^-29 + 2^-60: the product rounded first loses the 2^-60
    assert x * x + z == 0.0
    assert _fma_loop(np.array([x]), np.array([x]), np.array([z]))[0] == 2.0**-60
    rng = np.random.default_rng(3)
    a, b, c = (rng.normal(0, 1, 1003) * 10.0 ** rng.integers(-5, 5, 1003) for _ in range(3))
    got = _fma_loop(a, b, c)
    want = np.array([fma_reference(p, q, r) for p, q, r in zip(a, b, c)])
    np.testing.assert_array_equal(got, want)


def first_hit8_reference(x, wm, ws, m, s, gdm, gds, ga, gb, c, tau_m, tau_s, theta):
    """The replay's numbers group by group: the traces after each of the 8 inputs (summed with
    one rounding per multiply-add) and the first group whose bound of u up to the next group
    leaves no headroom below theta (8: none)."""
    headroom = _engine._headroom.py_func
    pm, ps, first = [], [], 8
    for k in range(8):
        m = fma_reference(x[k], wm[k], m)
        s = fma_reference(x[k], ws[k], s)
        pm.append(m)
        ps.append(s)
        h = headroom(m, s, gdm[k], gds[k], ga[k], gb[k], c, 1.0 / tau_m, 1.0 / tau_s, theta)
        if first == 8 and h <= 0.0:
            first = k
    return first, pm, ps


@settings(max_examples=examples(300), deadline=None)
@given(seed=SEEDS)
def test_first_hit8_matches_reference(seed):
    rng = np.random.default_rng(seed)
    tau_m, tau_s = [(5.0, 1.25), (2.0, 5.0), (4.0, 3.0), (1.0, 0.2)][rng.integers(4)]
    c = tau_m / (tau_m - tau_s)
    theta = float(rng.choice([0.5, 1.0, 2.0]))
    n_in, n_out = 5, int(rng.integers(1, 12))
    WT = rng.normal(float(rng.choice([0.0, 0.5])), 1.0, (n_in, n_out)) * theta
    in_i = rng.integers(0, n_in, 8)
    # 8 groups of one input each at increasing times after G = 0, then the window's end
    t = np.sort(rng.uniform(0.0, float(rng.choice([0.5, 3.0, 20.0])), 9))
    v = rng.choice([1.0, -1.0, 0.5], 8) if rng.random() < 0.5 else np.ones(8)
    wm = v * np.exp(t[:8] / tau_m)
    ws = v * np.exp(t[:8] / tau_s)
    gdm, gds = np.exp(-t[:8] / tau_m), np.exp(-t[:8] / tau_s)
    ga, gb = np.exp(-np.diff(t) / tau_m), np.exp(-np.diff(t) / tau_s)
    pm, ps = np.empty(8), np.empty(8)
    for i in range(n_out):
        # states before the window: quiet, near threshold, or far above and below it
        m = float(rng.normal(0, 1) * rng.choice([0.01, 1.0, 3.0]) * theta)
        s = float(m * rng.uniform(0, 1.5) if rng.random() < 0.7 else rng.normal(0, 1) * theta)
        want = first_hit8_reference(WT[in_i, i], wm, ws, m, s, gdm, gds, ga, gb, c, tau_m,
                                    tau_s, theta)
        got = _engine._first_hit8(i, 0, 0, WT, in_i, 0, gdm, gds, ga, gb, wm, ws, m, s, pm,
                                  ps, c, 1.0 / tau_m, 1.0 / tau_s, theta)
        assert got == want[0]
        np.testing.assert_array_equal(pm, want[1])
        np.testing.assert_array_equal(ps, want[2])


def loose_layer(rng, n_out):
    """A Dense layer whose input has no coincident events (so that the kernel's windows are
    8 groups of one input each, the shape ``_first_hit8`` serves), weights that make the
    neurons fire a few times each, and refractory periods short and long against the
    windows' spans."""
    n_in = int(rng.integers(2, 30))
    tau_m, tau_s = [(5.0, 1.25), (5.0, 2.5), (2.0, 5.0), (10.0, 1.0)][rng.integers(4)]
    k = int(rng.integers(20, 400))
    # 0.02-0.5 ms between inputs on average: dozens of inputs per epoch of 40 min(tau)
    t = np.sort(rng.uniform(0.0, k * float(rng.uniform(0.02, 0.5)), k))
    i = rng.integers(0, n_in, k)
    v = np.ones(k) if rng.random() < 0.6 else rng.choice([-1.0, 1.0], k) * rng.uniform(0.2, 2, k)
    theta = float(rng.choice([0.5, 1.0]))
    WT = rng.normal(float(rng.choice([0.1, 0.3])), 0.6, (n_in, n_out)) * theta
    membrane_reset = bool(rng.random() < 0.5)
    t_ref = float(rng.choice([0.0, 0.1, 0.5, 5.0]))
    return (t, i, v, np.ascontiguousarray(WT), tau_m, tau_s, theta, membrane_reset, t_ref,
            float(rng.choice([np.inf, t[-1] * 0.8])))


@settings(max_examples=examples(60), deadline=None)
@given(seed=SEEDS)
def test_windows_of_single_inputs_match_groupwise_kernel(seed):
    """Windows of 8 single inputs (the scan path) against the per-group kernel (1e-9 ms), and
    bit for bit against window lengths that never take the scan path (7, 1)."""
    rng = np.random.default_rng(seed)
    layer = loose_layer(rng, int(rng.integers(1, 150)))
    old = groupwise_dense_layer(*layer, 10**5)
    new = _engine.dense_layer(*layer, 10**5)
    assert new[2] == old[2] == False  # noqa: E712
    np.testing.assert_array_equal(new[1], old[1])
    np.testing.assert_allclose(new[0], old[0], rtol=0, atol=1e-9)
    for window in (7, 1):
        other = _engine.dense_layer_blocks(*layer, 10**5, layer[3].shape[1], window)
        np.testing.assert_array_equal(other[0], new[0])
        np.testing.assert_array_equal(other[1], new[1])


def test_scan_path_taken_and_spiking():
    """The loose layers above do reach the scan path, with spikes after every position in
    the window (otherwise the test before would not test it): the windows of 8 single
    inputs in the kernel's own schedule, and the group of each spike's last input."""
    hits = set()
    for seed in range(6):
        rng = np.random.default_rng(seed)
        layer = loose_layer(rng, 40)
        t, i, v, WT, tau_m, tau_s, theta, membrane_reset, t_ref, t_end = layer
        out = _engine.dense_layer(*layer, 10**5)
        assert out[0].size > 0
        sched = _engine._dense_windows(t, v, t_end, tau_m, tau_s, 8)
        gs, wst = sched[0], sched[10]
        n_shape8 = sum(1 for w in range(wst.size - 1)
                       if wst[w + 1] - wst[w] == 8 and gs[wst[w + 1]] - gs[wst[w]] == 8)
        assert n_shape8 > 0.5 * (wst.size - 1)
        # the first group of each spike's window (single inputs: the group of the last input
        # before the spike), counted for the spikes inside windows of 8
        gt = sched[1]
        for ts in out[0]:
            g = np.searchsorted(gt, ts, side="right") - 1
            w = np.searchsorted(wst, g, side="right") - 1
            if g >= 0 and wst[w + 1] - wst[w] == 8:
                hits.add(int(g - wst[w]))
    assert len(hits) >= 6, hits


# ---- the window pass's coarse flags -------------------------------------------------------
@njit(cache=True)
def _headrooms(M, S, dm, ds, a, b, c, itau_m, itau_s, theta):
    """(coarse, full) bounds of each neuron, compiled as the kernel compiles them."""
    hc = np.empty(M.size)
    hf = np.empty(M.size)
    for i in range(M.size):
        hc[i] = _engine._headroom_coarse(M[i], S[i], dm, ds, a, b, c, theta)
        hf[i] = _engine._headroom(M[i], S[i], dm, ds, a, b, c, itau_m, itau_s, theta)
    return hc, hf


@settings(max_examples=examples(200), deadline=None)
@given(seed=SEEDS)
def test_coarse_headroom_bounds_u_and_is_below_full(seed):
    """``_headroom_coarse``: never above ``_headroom``, bit for bit (compiled and as Python),
    so the coarse flags hold every full flag; and a true bound (theta minus it is above u
    on a fine grid of the window: the test fails for a coarse bound that is too small)."""
    rng = np.random.default_rng(seed)
    tau_m, tau_s = [(5.0, 1.25), (2.0, 5.0), (4.0, 3.0), (1.0, 0.2)][rng.integers(4)]
    c = tau_m / (tau_m - tau_s)
    theta = float(rng.choice([0.5, 1.0, 2.0]))
    n = 200
    # traces in the frame of G = 0, the window at t0 >= 0 (dm, ds bring them there)
    t0 = float(rng.uniform(0.0, 20.0))
    span = float(rng.choice([0.01, 0.4, 3.0, 20.0]))
    dm, ds = math.exp(-t0 / tau_m), math.exp(-t0 / tau_s)
    a, b = math.exp(-span / tau_m), math.exp(-span / tau_s)
    scale = rng.choice([1e-3, 1.0, 3.0], n) * theta
    M = rng.normal(0, 1, n) * scale / dm
    S = np.where(rng.random(n) < 0.7, M * dm * rng.uniform(0, 1.5, n), rng.normal(0, 1, n) * scale) / ds
    hc, hf = _headrooms(M, S, dm, ds, a, b, c, 1.0 / tau_m, 1.0 / tau_s, theta)
    assert np.all(hc <= hf)
    coarse_py = _engine._headroom_coarse.py_func
    full_py = _engine._headroom.py_func
    for i in range(0, n, 7):
        assert coarse_py(M[i], S[i], dm, ds, a, b, c, theta) == hc[i]
        assert full_py(M[i], S[i], dm, ds, a, b, c, 1.0 / tau_m, 1.0 / tau_s, theta) == hf[i]
    s = np.linspace(0.0, span, 401)
    u = c * (np.outer(M * dm, np.exp(-s / tau_m)) - np.outer(S * ds, np.exp(-s / tau_s)))
    slack = 1e-12 * (np.abs(M * dm) + np.abs(S * ds)) * abs(c)
    assert np.all(u.max(axis=1) <= theta - hc + slack)


def exact_flag_reference(x, E, m, s, dm, ds, a, b, c, tau_m, tau_s, theta):
    """The full flag of one neuron in a window of 8 single inputs of weights x and flag
    weights E, as the window pass computed it before its flags were coarse: the positive
    parts in pairs (larger E of each pair) when every E >= 0, else each weighed with its own
    E, summed in the pass's order (one rounding per multiply-add), against ``_headroom``."""
    pos = [max(v, 0.0) for v in x]
    if min(E) >= 0.0:
        F = [max(E[0], E[1]), max(E[2], E[3]), max(E[4], E[5]), max(E[6], E[7])]
        p = fma_reference(F[1], pos[2] + pos[3], F[0] * (pos[0] + pos[1]))
        p = fma_reference(F[3], pos[6] + pos[7], fma_reference(F[2], pos[4] + pos[5], p))
    else:
        p = 0.0
        for k in range(8):
            p = p + max(x[k] * E[k], 0.0) if k else max(x[0] * E[0], 0.0)
    h = _engine._headroom.py_func(m, s, dm, ds, a, b, c, 1.0 / tau_m, 1.0 / tau_s, theta)
    return p >= h


@njit(cache=True)
def _exact_flags(WT, in_i, qW, M, S, dm, ds, a, b, c, itau_m, itau_s, theta):
    out = np.empty(M.size, np.bool_)
    for i in range(M.size):
        out[i] = _engine._exact_flag8(i, 0, WT, in_i, 0, qW, M[i], S[i], dm, ds, a, b, c,
                                      itau_m, itau_s, theta)
    return out


@settings(max_examples=examples(150), deadline=None)
@given(seed=SEEDS)
def test_window8_coarse_flags_hold_the_exact_ones(seed):
    """``_window8``'s flags (coarse bound) against ``_exact_flag8`` and a Python reference of
    the full flag: every neuron the full bound flags is flagged (the kernel replays exactly
    those, after ``_exact_flag8``), the count returned is the number of flags, and the
    state after the window is the traces' fused multiply-adds."""
    rng = np.random.default_rng(seed)
    tau_m, tau_s = [(5.0, 1.25), (2.0, 5.0), (4.0, 3.0), (1.0, 0.2)][rng.integers(4)]
    c = tau_m / (tau_m - tau_s)
    theta = float(rng.choice([0.5, 1.0, 2.0]))
    n_in, n_out = 6, int(rng.integers(1, 300))
    WT = rng.normal(float(rng.choice([0.0, 0.3])), 0.5, (n_in, n_out)) * theta
    in_i = rng.integers(0, n_in, 8)
    t0 = float(rng.uniform(0.0, 10.0))
    t = np.sort(rng.uniform(t0, t0 + float(rng.choice([0.2, 2.0, 10.0])), 9))
    t[0] = t0
    v = np.ones(8) if rng.random() < 0.5 else rng.choice([1.0, -1.0, 0.5], 8)
    wm = v * np.exp(t[:8] / tau_m)
    ws = v * np.exp(t[:8] / tau_s)
    span = t[8] - t0
    dm, ds = math.exp(-t0 / tau_m), math.exp(-t0 / tau_s)
    a, b = math.exp(-span / tau_m), math.exp(-span / tau_s)
    # flag weights of either sign, large enough that some neurons are flagged
    qW = rng.uniform(0.0, 0.7, 8) * dm * wm * (1.0 if rng.random() < 0.7 else -1.0)
    M = rng.normal(0, 1, n_out) * rng.choice([0.01, 0.5, 1.2], n_out) * theta / dm
    S = M * dm * rng.uniform(0, 1.5, n_out) / ds
    Mo, So = np.empty(n_out), np.empty(n_out)
    flag = np.zeros(n_out, np.bool_)
    n = _engine._window8(M, S, Mo, So, flag, WT, in_i, 0, n_out, wm, ws, qW, 0, dm, ds, a, b,
                         c, 1.0 / tau_m, 1.0 / tau_s, theta)
    assert n == int(flag.sum())
    exact = _exact_flags(WT, in_i, qW, M, S, dm, ds, a, b, c, 1.0 / tau_m, 1.0 / tau_s, theta)
    for i in range(n_out):
        want = exact_flag_reference(WT[in_i, i], qW, M[i], S[i], dm, ds, a, b, c, tau_m,
                                    tau_s, theta)
        assert exact[i] == want
        assert flag[i] or not want
        m, s = M[i], S[i]
        for k in range(8):
            m = fma_reference(WT[in_i[k], i], wm[k], m)
            s = fma_reference(WT[in_i[k], i], ws[k], s)
        assert Mo[i] == m and So[i] == s


def test_window8_coarse_flags_tested_both_ways():
    """The cases above include neurons flagged by the full bound and neurons flagged only
    by the coarse one (else the test before would not tell the two apart)."""
    both = coarse_only = 0
    for seed in range(30):
        rng = np.random.default_rng(seed)
        tau_m, tau_s, c, theta = 5.0, 1.25, 5.0 / 3.75, 1.0
        WT = rng.normal(0.3, 0.5, (6, 200))
        in_i = rng.integers(0, 6, 8)
        t = np.sort(rng.uniform(0.0, 2.0, 9))
        t[0] = 0.0
        wm, ws = np.exp(t[:8] / tau_m), np.exp(t[:8] / tau_s)
        a, b = math.exp(-t[8] / tau_m), math.exp(-t[8] / tau_s)
        qW = rng.uniform(0.0, 0.7, 8) * wm
        M = rng.normal(0, 1, 200) * rng.choice([0.01, 0.5, 1.2], 200)
        S = M * rng.uniform(0, 1.5, 200)
        flag = np.zeros(200, np.bool_)
        _engine._window8(M, S, np.empty(200), np.empty(200), flag, WT, in_i, 0, 200, wm, ws,
                         qW, 0, 1.0, 1.0, a, b, c, 0.2, 0.8, theta)
        exact = _exact_flags(WT, in_i, qW, M, S, 1.0, 1.0, a, b, c, 0.2, 0.8, theta)
        both += int((flag & exact).sum())
        coarse_only += int((flag & ~exact).sum())
    assert both > 0 and coarse_only > 0, (both, coarse_only)
