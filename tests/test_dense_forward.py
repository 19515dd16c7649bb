"""Dense forward kernels against the naive loop implementations and the event engine."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import eventsnn as es
from eventsnn.dense.neurons import AntlrNeuron, ZhuNeuron

from . import naive_dense as nd
from .dense_strategies import dense_cases, dense_neurons


def assert_same_forward(rec, ref, theta):
    cur, mem, inc, outs = ref
    for l in range(len(outs)):
        if mem[l] is None:
            np.testing.assert_allclose(rec.outputs[l], outs[l], atol=1e-12)
            continue
        np.testing.assert_allclose(rec.currents[l], cur[l], atol=1e-10)
        np.testing.assert_allclose(rec.membranes[l], mem[l], atol=1e-9)
        np.testing.assert_allclose(rec.increments[l], inc[l], atol=1e-9)
        np.testing.assert_array_equal(rec.outputs[l], outs[l])


@settings(max_examples=60, deadline=None)
@given(dense_cases())
def test_forward_equals_naive(case):
    net, x, neuron, _ = case
    rec = net.run(x, neuron=neuron)
    # Zhu: trace kernel vs the SRM sum; ANTLR: kernel vs Eq. 1-3 written out
    ref = nd.network_forward(net, x, neuron, srm_form=False)
    try:
        assert_same_forward(rec, ref, neuron.theta)
    except AssertionError:
        # a membrane within rounding of theta may flip: accept only that
        near = [np.min(np.abs(m - neuron.theta)) for m in rec.membranes if m is not None]
        assert min(near) < 1e-9
        raise


@settings(max_examples=40, deadline=None)
@given(dense_cases(conv=False))
def test_antlr_recursion_equals_srm_form(case):
    """ANTLR Eq. 1-3 (RNN-like) == Eq. 4 (SRM-based) description (ANTLR Appendix B)."""
    net, x, neuron, _ = case
    if neuron.family != "antlr":
        neuron = AntlrNeuron(a_i=0.7, a_v=0.9)
    rec = net.run(x, neuron=neuron)
    ref = nd.network_forward(net, x, neuron, srm_form=True)
    assert_same_forward(rec, ref, neuron.theta)


@settings(max_examples=40, deadline=None)
@given(dense_cases(resets=("subtract", "membrane")))
def test_keep_current_forward_equals_naive(case):
    """AntlrNeuron(reset="subtract" | "membrane"): kernel == the recursion written out."""
    net, x, neuron, _ = case
    rec = net.run(x, neuron=neuron)
    ref = nd.network_forward(net, x, neuron)
    try:
        assert_same_forward(rec, ref, neuron.theta)
    except AssertionError:
        near = [np.min(np.abs(m - neuron.theta)) for m in rec.membranes if m is not None]
        assert min(near) < 1e-9
        raise


@settings(max_examples=30, deadline=None)
@given(dense_cases(conv=False, resets=("subtract",)))
def test_subtract_reset_equals_closed_form(case):
    """Subtractive reset: V[t] = sum of every input through eps minus theta a_v^(t-1-s) per
    earlier spike s (nothing is forgotten)."""
    net, x, neuron, _ = case
    rec = net.run(x, neuron=neuron)
    T = rec.n_steps
    eps = nd.antlr_eps(neuron.a_i, neuron.a_v, neuron.b_i, neuron.resolved_b_v(T), T)
    c = rec.currents[0]
    for b in range(rec.batch_size):
        for i in range(c.shape[2]):
            S, V = nd.subtract_srm_form(c[:, b, i], eps, neuron.a_v, neuron.theta)
            if np.min(np.abs(V - neuron.theta)) < 1e-9:
                continue  # a rounding-level tie at the threshold may flip
            np.testing.assert_allclose(rec.membranes[0][:, b, i], V, atol=1e-9)
            np.testing.assert_array_equal(rec.outputs[0][:, b, i], S)


def test_subtract_reset_is_snntorch_synaptic_by_hand():
    """snnTorch's Synaptic (reset_mechanism="subtract", reset_delay=True), written out for a
    constant input: syn = alpha syn + x, mem = beta mem + syn - theta [mem_prev > theta]."""
    alpha, beta, x = 0.8, 0.9, 0.35
    syn = mem = 0.0
    spk_prev = 0.0
    ref_v, ref_s = [], []
    for _ in range(30):
        syn = alpha * syn + x
        mem = beta * mem + syn - 1.0 * spk_prev
        spk_prev = 1.0 if mem > 1.0 else 0.0
        ref_v.append(mem)
        ref_s.append(spk_prev)
    n = AntlrNeuron(a_i=alpha, a_v=beta, b_i=1.0, b_v=1.0, reset="subtract")
    s, v, _ = n.simulate(np.full((30, 1), x))
    np.testing.assert_allclose(v[:, 0], ref_v, rtol=1e-13)
    np.testing.assert_array_equal(s[:, 0], ref_s)
    assert 5 <= s.sum() < 30


def test_zhu_kernel_definition():
    n = ZhuNeuron(tau_m=5.0, tau_s=3.0)
    eps = n.eps(30)
    assert eps[0] == pytest.approx(1 / 3.0)
    np.testing.assert_allclose(eps, nd.zhu_eps(5.0, 3.0, 30), rtol=1e-13)
    A, B, C = n.linear_system()
    z = B.copy()
    for d in range(30):
        assert C @ z == pytest.approx(eps[d], rel=1e-12)
        z = A @ z


def test_antlr_default_b_v_normalises_peak():
    n = AntlrNeuron()
    for T in (5, 50, 300):
        assert n.eps(T).max() == pytest.approx(1.0)
    np.testing.assert_allclose(n.eps(40), nd.antlr_eps(0.99, 0.99, 1.0, n.resolved_b_v(40), 40), rtol=1e-12)


def test_from_srm_families_agree():
    srm = es.SRM(tau_m=5.0, tau_s=2.0, theta=1.0)
    z, a = ZhuNeuron.from_srm(srm, dt=0.5), AntlrNeuron.from_srm(srm, dt=0.5)
    np.testing.assert_allclose(z.eps(50), a.eps(50), rtol=1e-12)
    net = es.Sequential(es.Dense(6, 5), es.Dense(5, 3), neuron=srm, rng=2)
    x = np.random.default_rng(1).uniform(0, 1, (40, 3, 6))
    r1, r2 = net.run(x, neuron=z), net.run(x, neuron=a)
    for o1, o2 in zip(r1.outputs, r2.outputs):
        np.testing.assert_array_equal(o1, o2)


def test_single_input_analytic():
    """One input of weight w at step 0: u[t] = w eps[t] until the first crossing."""
    net = es.Sequential(es.Dense(1, 1), rng=0)
    net.layers[0].weight = np.array([[0.8]])
    x = np.zeros((20, 1, 1))
    x[0, 0, 0] = 1.0
    n = ZhuNeuron(5.0, 3.0, theta=10.0)
    rec = net.run(x, neuron=n)
    np.testing.assert_allclose(rec.membranes[0][:, 0, 0], 0.8 * n.eps(20), rtol=1e-12)
    assert rec.outputs[0].sum() == 0


def _event_spike_times(net, x_dense, dt):
    """Event-mode simulation of the same input, the input of step t' as an event at t' dt."""
    T, _, n_in = x_dense.shape
    tt, jj = np.nonzero(x_dense[:, 0, :])
    st_in = es.SpikeTrains(tt * dt, jj, n_in, values=x_dense[tt, 0, jj])
    rec = net.simulate(st_in, t_end=T * dt)
    return rec.spikes[-1]


def test_dense_converges_to_event_mode():
    """Dense spike times converge to event-mode ones as dt -> 0, with an O(dt) offset.

    Why they differ at finite dt: with tau in steps = tau_ms / dt the discrete kernel is
    eps[d] = eps_SRM((d + 1) dt) (exactly: (1 - dt/tau)^(d+1) vs exp(-(d+1) dt/tau), an
    O(dt) relative error), so for inputs of step t' placed at t' dt the dense membrane u[t]
    approximates the event-mode membrane at (t + 1) dt, and a spike at step t means a
    crossing in (t dt, (t + 1) dt] of the first layer. A hidden spike at step t is then fed to
    the next layer in the same step, i.e. as an event at t dt, up to one dt earlier than the
    crossing: every layer adds at most one step of advance. The test checks that spike
    counts agree and |(t + 1) dt - t_event| <= (n_layers + 1) dt for shrinking dt. (At
    coarse dt a membrane that grazes the threshold can also gain or lose a spike.)"""
    srm = es.SRM(tau_m=5.0, tau_s=2.0, theta=1.0)
    net = es.Sequential(es.Dense(4, 3), es.Dense(3, 2), neuron=srm, rng=0)
    net.layers[0].weight = np.abs(net.layers[0].weight) * 2.0
    net.layers[1].weight = np.abs(net.layers[1].weight) * 2.0
    times_ms = np.array([[1.0, 0.0, 4.0, 6.5], [3.0, 2.0, 8.0, 9.0]])  # 2 events per input neuron
    worst = {}
    for dt in (0.1, 0.02, 0.005):
        T = int(round(30 / dt))
        x = np.zeros((T, 1, 4))
        for row in times_ms:
            for j, tm in enumerate(row):
                x[int(round(tm / dt)), 0, j] = 1.0
        rec = net.run(x, neuron="zhu", dt=dt)
        ev = _event_spike_times(net, x, dt)
        out = rec.outputs[-1][:, 0, :]
        for o in range(2):
            dense_t = (np.nonzero(out[:, o])[0] + 1) * dt
            ev_t = np.sort(ev.times[ev.neurons == o])
            assert len(dense_t) == len(ev_t) and len(ev_t) > 0, (dt, dense_t, ev_t)
            worst[dt] = max(worst.get(dt, 0.0), np.max(np.abs(dense_t - ev_t)))
    for dt, e in worst.items():
        assert e <= 3 * dt + 1e-9, (dt, e)
    assert worst[0.005] < worst[0.1]


def test_run_validates():
    net = es.Sequential(es.Dense(3, 2), rng=0)
    with pytest.raises(ValueError, match="x"):
        net.run(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="x"):
        net.run(np.zeros((4, 2, 5)))
    with pytest.raises(ValueError, match="x"):
        net.run(np.full((4, 2, 3), np.nan))
    with pytest.raises(TypeError, match="neuron"):
        net.run(np.zeros((4, 2, 3)), neuron="lif")
    with pytest.raises(ValueError, match="tau_m"):
        ZhuNeuron(tau_m=0.5)
    with pytest.raises(ValueError, match="differ"):
        ZhuNeuron(tau_m=3.0, tau_s=3.0)
    with pytest.raises(ValueError, match="a_i"):
        AntlrNeuron(a_i=1.0)
    with pytest.raises(ValueError, match="theta"):
        AntlrNeuron(theta=-1.0)
    with pytest.raises(ValueError, match="reset"):
        AntlrNeuron(reset="soft")
    with pytest.raises(ValueError, match="pool_weight"):
        net.run(np.zeros((4, 2, 3)), pool_weight=float("inf"))
