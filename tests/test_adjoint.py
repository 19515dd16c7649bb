"""Exact backward pass of membrane-reset networks (eventsnn/event/_adjoint.py,
docs/gradients.md "Membrane reset").

Oracles: the spike-by-spike reference tests/naive_adjoint.py (kernel == reference, every
option); central finite differences through the fast engine (Dense and Conv nets with
max / adjusted / plain average pooling, both weight signs, coincident inputs, t_ref in
{0, 0.5, 2}: relative error <= 1e-6); finite differences through the slow reference
engine (eventsnn/event/reference.py); an analytic two-spike neuron (implicit function
theorem by hand); one-sided finite differences at the kinks (an input at the end of a
refractory period or at its target's spike time) and grazing crossings."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

import eventsnn as es
from eventsnn.event import _adjoint
from eventsnn.event.forward import dense_csr, kernel_weights, simulate_sample
from eventsnn.event.reference import simulate_reference
from eventsnn.losses import with_supervisory_spike
from eventsnn.testing import assert_gradient_sum_invariant, networks

from . import naive_adjoint as naive
from .strategies import TAUS, event_input, examples

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
T_REFS = (0.0, 0.5, 2.0)


def _close(a, b, rtol, atol):
    """max |a - b| <= atol + rtol * max |.| over the whole array (relative error)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape
    scale = max(np.max(np.abs(a), initial=0.0), np.max(np.abs(b), initial=0.0))
    err = np.max(np.abs(a - b), initial=0.0)
    assert err <= atol + rtol * scale, (err, scale, a, b)
    return err / scale if scale > 0 else 0.0


def _pool_kind(net):
    for layer in net.layers:
        if isinstance(layer, es.MaxPool2d):
            return "max"
        if isinstance(layer, es.AvgPool2d):
            return "adjusted" if layer.adjusted else "avg"
    return None


@st.composite
def membrane_nets(draw, kind, scale=(2.0, 6.0)):
    """Small random nets of SRM(reset="membrane") neurons: "dense" (Dense-Dense), "conv"
    (Conv2d-Flatten-Dense) or Conv2d-<pool>-Flatten-Dense, pool "max", "adjusted", "avg";
    weights of both signs (mostly excitatory, or balanced)."""
    tau_m, tau_s = draw(st.sampled_from(TAUS))
    neuron = es.SRM(tau_m=tau_m, tau_s=tau_s, theta=draw(st.sampled_from([0.5, 1.0])),
                    reset="membrane", t_ref=draw(st.sampled_from(T_REFS)))
    low = draw(st.sampled_from([-0.3, -1.0]))
    if kind == "dense":
        net = draw(networks(kinds=("dense",), neuron=neuron, weight_range=(low, 1.5),
                            scale=scale))
    else:
        pools = (None,) if kind == "conv" else (kind,)
        net = draw(networks(kinds=("conv",), pools=pools, neuron=neuron,
                            weight_range=(low, 1.5), scale=scale).filter(
            lambda n: _pool_kind(n) == (None if kind == "conv" else kind)))
        for at, layer in enumerate(net.layers):  # avg-pooled events carry v / k^2
            if isinstance(layer, es.AvgPool2d):
                net.layers[at + 2].weight = net.layers[at + 2].weight * layer.kernel_size ** 2
    event(f"t_ref = {neuron.t_ref}, weights from {low}")
    return net


def _input(data, net, max_events=20):
    """Random events, half of the time on a 1 ms grid (coincident events), shifted by 1 ms
    so that a finite-difference step never makes a time negative."""
    x = data.draw(event_input(net.n_in, max_events=max_events, t_max=12.0))
    assume(len(x) >= 2)
    coincident = len(np.unique(x.times)) < len(x)
    event(f"coincident inputs: {coincident}")
    return es.SpikeTrains(x.times + 1.0, x.neurons, x.n_neurons, x.values)


# ---------------------------------------------------------------- kernel vs reference
@pytest.mark.parametrize("kind", ["dense", "conv", "max", "adjusted", "avg"])
@settings(max_examples=examples(10), **SETTINGS)
@given(data=st.data())
def test_kernel_equals_naive_reference(kind, data):
    net = data.draw(membrane_nets(kind))
    x = _input(data, net, max_events=30)
    rec = net.simulate(x)
    assume(sum(len(s) for s in rec.spikes[1:]) <= 400)
    kernel = data.draw(st.sampled_from(["exp", "depsilon"]))
    opts = dict(drop_nonpositive=data.draw(st.booleans()),
                clamp=data.draw(st.sampled_from([None, (-4.0, 0.0), (-1.0, 0.5)])),
                factor=data.draw(st.sampled_from([1.0, 0.85])))
    grad_out = np.array(data.draw(st.lists(st.floats(-2, 2), min_size=len(rec.output),
                                           max_size=len(rec.output))))
    g = net.backward(rec, grad_out, kernel=kernel, **opts)
    w_ref, t_ref, tot_ref = naive.backward(net, rec, grad_out, kernel=kernel, **opts)
    for level, (a, b) in enumerate(zip(g.times, t_ref)):
        assert a.shape == rec.spikes[level].times.shape
        _close(a, b, 1e-9, 1e-12)
    for layer, a, b in zip(net.layers, g.weights, w_ref):
        if layer.has_weight:
            _close(a, b, 1e-9, 1e-12)
        else:
            assert a is None
    for level, (a, b) in enumerate(zip(g.totals, tot_ref)):
        if b is not None:
            _close(a, b, 1e-9, 1e-12)
    assert_gradient_sum_invariant(net, rec, g) if _pool_kind(net) != "avg" else None


@settings(max_examples=examples(15), **SETTINGS)
@given(data=st.data())
def test_dense_shared_trace_kernel_equals_the_per_link_kernel(data):
    """The Dense kernel (traces with shared decay factors) == the per-link kernel run on
    the Dense connectivity as CSR, every option, input_grad on and off."""
    net = data.draw(membrane_nets("dense"))
    x = _input(data, net, max_events=30)
    rec = net.simulate(x)
    layer, below, here = net.layers[0], rec.spikes[0], rec.spikes[1]
    g = np.array(data.draw(st.lists(st.floats(-2, 2), min_size=len(here), max_size=len(here))))
    kernel = data.draw(st.sampled_from([_adjoint.KERNEL_EXP, _adjoint.KERNEL_DEPSILON]))
    clamp = data.draw(st.sampled_from([None, (-4.0, 0.0)]))
    drop, input_grad = data.draw(st.booleans()), data.draw(st.booleans())
    nrn = net.neuron
    common = (nrn.tau_m, nrn.tau_s, nrn.t_ref, kernel, 2.5, drop, clamp is not None,
              *(clamp or (0.0, 0.0)), 0.85, input_grad)
    fast = _adjoint.dense_membrane_backward(below.times, below.neurons, below.values,
                                            here.times, here.neurons, g,
                                            np.ascontiguousarray(layer.weight.T), *common)
    indptr, targets, widx = dense_csr(layer.weight)
    slow = _adjoint.membrane_layer_backward(below.times, below.neurons, below.values,
                                            here.times, here.neurons, g, layer.n_in,
                                            layer.n_out, False, indptr, targets, widx,
                                            layer.weight.ravel(), *common)
    _close(fast[0], slow[0], 1e-9, 1e-12)
    _close(fast[1].T.ravel(), slow[1], 1e-9, 1e-12)
    for a, b in zip(fast[2:4] + fast[5:], slow[2:4] + slow[5:]):
        _close(a, b, 1e-9, 1e-12)
    assert fast[4] == slow[4]
    flat = _adjoint.layer_backward_flat(below.times, below.neurons, below.values, here.times,
                                        here.neurons, g, layer.n_in, layer.n_out, True,
                                        indptr, targets, widx, layer.weight.ravel(), *common)
    np.testing.assert_array_equal(flat[1], fast[1].T.ravel())
    np.testing.assert_array_equal(flat[0], fast[0])
    if not input_grad:
        assert not np.any(fast[0]) and not np.any(slow[0])


# ---------------------------------------------------------------- finite differences
def _loss(out, targets):
    """L = 1/2 sum_k (t_k - c[n_k, rank_k])^2 and dL/dt_k (a smooth spike-time loss)."""
    rank = np.zeros(out.n_neurons, int)
    grad = np.empty(len(out))
    for k, (t, n) in enumerate(zip(out.times, out.neurons)):
        grad[k] = t - targets[n, rank[n]]
        rank[n] += 1
    return 0.5 * float(np.sum(grad ** 2)), grad


def _well_conditioned(net, rec, g, gap=1e-4, min_slope=0.05):
    """u' >= min_slope at every spike and no input within ``gap`` ms of a spike time or of
    the end of a refractory period of a neuron (the kinks of the spike-time map)."""
    for li, layer in enumerate(net.layers, start=1):
        if not layer.has_neurons or len(rec.spikes[li]) == 0 or len(rec.spikes[li - 1]) == 0:
            continue
        if np.min(g.slopes[li]) < min_slope:
            return False
        t_ref = net.layer_neurons[li - 1].t_ref
        edges = np.concatenate([rec.spikes[li].times, rec.spikes[li].times + t_ref])
        tin = np.sort(rec.spikes[li - 1].times)
        p = np.clip(np.searchsorted(tin, edges), 1, tin.size - 1) if tin.size > 1 else None
        d = (np.abs(edges[:, None] - tin[None, :]).min(axis=1) if p is None else
             np.minimum(np.abs(edges - tin[p - 1]), np.abs(edges - tin[p])))
        if np.min(d) < gap:
            return False
    return True


def _simulate_from(net, start, spikes):
    """Run net.layers[start:] on ``spikes`` as the events of level ``start``."""
    layers = net.layers[start:]
    return simulate_sample(layers, net.layer_neurons[start:], spikes, None, None,
                           [kernel_weights(layer) for layer in layers])


def _split_by_move(net, rec, level):
    """Events sharing a max-pooled event with another source: moving one alone splits the
    pooled event (the loss jumps), so they have no derivative."""
    mask = np.zeros(len(rec.spikes[level]), bool)
    if level < len(net.layers) and isinstance(net.layers[level], es.MaxPool2d):
        src = rec.relays[level + 1][0]
        ok = src >= 0
        n = np.bincount(src[ok], minlength=len(rec.spikes[level + 1]))
        mask[ok] = n[src[ok]] > 1
    return mask


def _exact_pooling(net):
    """For plain average pooling, whose backward is Zhu et al.'s g / k^2 by definition:
    (the adjusted twin, a check). AvgPool2d(adjusted=True) has the same forward and its
    g / n is the exact derivative; above the pool both passes agree."""
    if _pool_kind(net) != "avg":
        return net, None
    saved = [l.weight.copy() if l.has_weight else None for l in net.layers]
    twin = es.Sequential(*[es.AvgPool2d(l.kernel_size, adjusted=True)
                           if isinstance(l, es.AvgPool2d) else l for l in net.layers],
                         neuron=net.neuron)
    for layer, w in zip(net.layers, saved):   # Sequential initialised the shared layers
        if w is not None:
            layer.weight = w
    at = next(li for li, l in enumerate(net.layers, start=1) if isinstance(l, es.AvgPool2d))

    def check(rec, grad_out, g_exact):
        g = net.backward(rec, grad_out, kernel="depsilon", clamp=None)
        for li in range(at, len(net.layers) + 1):
            np.testing.assert_array_equal(g.times[li], g_exact.times[li])
        for li in range(at, len(net.layers)):
            if net.layers[li].has_weight:
                np.testing.assert_array_equal(g.weights[li], g_exact.weights[li])
    return twin, check


def _fd_check(net, x, data, delta=1e-6, rtol=1e-6, atol=1e-9):
    """Central finite differences of the smooth spike-time loss over every weight and over
    the event times of every level below the output (the layers above a moved level are
    re-simulated); no perturbation may change a spike count. Plain average pooling is
    checked through its adjusted twin (see _exact_pooling)."""
    rec = net.simulate(x)
    assume(0 < len(rec.output) and rec.output.counts().max() <= 32)
    assume(sum(len(s) for s in rec.spikes[1:]) <= 200)
    targets = np.asarray(data.draw(st.lists(st.floats(0, 25), min_size=net.n_out * 32,
                                            max_size=net.n_out * 32))).reshape(net.n_out, 32)
    _, grad_out = _loss(rec.output, targets)
    exact_net, check = _exact_pooling(net)
    g = exact_net.backward(rec, grad_out, kernel="depsilon", clamp=None)
    if check is not None:
        check(rec, grad_out, g)
    assume(_well_conditioned(net, rec, g))
    multi = max(int(rec.spikes[li].counts().max(initial=0))
                for li, layer in enumerate(net.layers, start=1) if layer.has_neurons)
    event(f"most spikes of one neuron: {min(multi, 4)}{'+' if multi >= 4 else ''}")
    base = {li: rec.spikes[li].counts() for li, layer in enumerate(net.layers, start=1)
            if layer.has_neurons or isinstance(layer, es.MaxPool2d)}

    def loss_of(r, start=0):
        for j in range(1, len(r.spikes)):
            if start + j in base:
                assume(np.array_equal(r.spikes[j].counts(), base[start + j]))
        return _loss(r.output, targets)[0]

    worst = 0.0
    for li, layer in enumerate(net.layers):
        if not layer.has_weight:
            continue
        w0 = layer.weight.copy()
        fd = np.zeros(w0.size)
        for q in range(w0.size):
            vals = []
            for sgn in (1.0, -1.0):
                w = w0.copy().ravel()
                w[q] += sgn * delta
                layer.weight = w.reshape(w0.shape)
                vals.append(loss_of(net.simulate(x)))
            fd[q] = (vals[0] - vals[1]) / (2 * delta)
        layer.weight = w0
        worst = max(worst, _close(g.weights[li].ravel(), fd, rtol, atol))
    for li in range(len(net.layers)):
        level = rec.spikes[li]
        skip = _split_by_move(net, rec, li)
        fd = np.zeros(len(level))
        for e in np.flatnonzero(~skip):
            vals = []
            for sgn in (1.0, -1.0):
                t = level.times.copy()
                t[e] += sgn * delta
                moved = es.SpikeTrains(t, level.neurons, level.n_neurons, level.values)
                vals.append(loss_of(_simulate_from(net, li, moved), li))
            fd[e] = (vals[0] - vals[1]) / (2 * delta)
        worst = max(worst, _close(g.times[li][~skip], fd[~skip], rtol, atol))
    event(f"relative error: {'< 1e-8' if worst < 1e-8 else '< 1e-7' if worst < 1e-7 else '< 1e-6'}")
    return rec, g


@pytest.mark.parametrize("kind", ["dense", "conv", "max", "adjusted", "avg"])
@settings(max_examples=examples(12), **SETTINGS)
@given(data=st.data())
def test_exact_gradient_equals_finite_differences(kind, data):
    """kernel="depsilon", clamp=None on membrane-reset nets: g.weights and g.times of
    every level == central finite differences, relative error <= 1e-6."""
    net = data.draw(membrane_nets(kind))
    _fd_check(net, _input(data, net), data)


@st.composite
def deep_dense(draw):
    sizes = [draw(st.integers(2, 6)), draw(st.integers(1, 5)), draw(st.integers(1, 4)),
             draw(st.integers(1, 2))]
    tau_m, tau_s = draw(st.sampled_from(TAUS))
    net = es.Sequential(*[es.Dense(a, b) for a, b in zip(sizes[:-1], sizes[1:])],
                        neuron=es.SRM(tau_m, tau_s, 1.0, "membrane",
                                      draw(st.sampled_from(T_REFS))))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    for layer in net.layers:
        layer.weight = rng.uniform(-0.5, 1.5, layer.weight_shape) * 4.0 / np.sqrt(layer.n_in)
    return net


@settings(max_examples=examples(10), **SETTINGS)
@given(data=st.data())
def test_exact_gradient_three_layers(data):
    """The same on Dense-Dense-Dense membrane nets (adjoints chained over two hidden
    levels)."""
    net = data.draw(deep_dense())
    _fd_check(net, _input(data, net), data)


@settings(max_examples=examples(8), **SETTINGS)
@given(data=st.data())
def test_exact_gradient_with_per_layer_resets(data):
    """A full-reset layer under a membrane-reset one and the other way round (per-layer
    neurons): each layer takes its own backward, the chain stays exact."""
    sizes = [data.draw(st.integers(2, 6)), data.draw(st.integers(1, 5)), data.draw(st.integers(1, 3))]
    resets = data.draw(st.permutations(["full", "membrane"]))
    t_ref = data.draw(st.sampled_from(T_REFS))
    net = es.Sequential(es.Dense(sizes[0], sizes[1]), es.Dense(sizes[1], sizes[2]),
                        neurons=[es.SRM(reset=resets[0], t_ref=t_ref),
                                 es.SRM(tau_m=4.0, tau_s=3.0, reset=resets[1], t_ref=t_ref)])
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    for layer in net.layers:
        layer.weight = rng.uniform(-0.5, 1.5, layer.weight_shape) * 4.0 / np.sqrt(layer.n_in)
    rec, g = _fd_check(net, _input(data, net), data)
    assert (g.totals[1] is None) == (resets[0] == "full")
    assert (g.totals[2] is None) == (resets[1] == "full")


# ---------------------------------------------------------------- second oracle
@settings(max_examples=examples(6), **SETTINGS)
@given(data=st.data())
def test_gradient_equals_finite_differences_of_the_reference_engine(data):
    """The slow reference engine (global SortedList queue, kernels summed, brentq),
    differentiated by central finite differences, agrees with the pass run on the fast
    engine's record (relative error <= 1e-6)."""
    kind = data.draw(st.sampled_from(["dense", "max"]))
    tau_m, tau_s = data.draw(st.sampled_from(TAUS))
    nrn = es.SRM(tau_m, tau_s, 1.0, "membrane", data.draw(st.sampled_from(T_REFS)))
    if kind == "dense":
        hidden = data.draw(st.integers(1, 4))
        net = es.Sequential(es.Dense(data.draw(st.integers(2, 5)), hidden), es.Dense(hidden, 2),
                            neuron=nrn)
    else:  # Conv2d 3x3 outputs, one 2x2 max pool window per channel
        net = es.Sequential(es.Conv2d((1, 4, 4), 2, 2), es.MaxPool2d(2), es.Flatten(),
                            es.Dense(2, 2), neuron=nrn)
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    for layer in net.layers:
        if layer.has_weight:
            layer.weight = (rng.uniform(-0.5, 1.5, layer.weight_shape)
                            * data.draw(st.floats(2.0, 5.0)) / np.sqrt(layer.weight[0].size))
    x = _input(data, net, max_events=10)
    rec = net.simulate(x)
    assume(0 < len(rec.output) <= 12 and sum(len(s) for s in rec.spikes[1:]) <= 40)
    ref = simulate_reference(net, x)
    for a, b in zip(ref, rec.spikes):
        assert np.array_equal(a.neurons, b.neurons)
        np.testing.assert_allclose(a.times, b.times, rtol=0, atol=1e-9)
    targets = np.asarray(data.draw(st.lists(st.floats(0, 25), min_size=net.n_out * 12,
                                            max_size=net.n_out * 12))).reshape(net.n_out, 12)
    _, grad_out = _loss(rec.output, targets)
    g = net.backward(rec, grad_out, kernel="depsilon", clamp=None)
    assume(_well_conditioned(net, rec, g))
    counts = [s.counts() for s in ref]
    delta = 1e-6

    def loss_of(x_, net_=net):
        out = simulate_reference(net_, x_)
        for a, b in zip(out[1:], counts[1:]):
            assume(np.array_equal(a.counts(), b))
        return _loss(out[-1], targets)[0]

    layer = net.layers[-1]
    w0 = layer.weight.copy()
    fd = np.zeros(w0.size)
    for q in range(w0.size):
        vals = []
        for sgn in (1.0, -1.0):
            w = w0.copy().ravel()
            w[q] += sgn * delta
            layer.weight = w.reshape(w0.shape)
            vals.append(loss_of(x))
        fd[q] = (vals[0] - vals[1]) / (2 * delta)
    layer.weight = w0
    _close(g.weights[-1].ravel(), fd, 1e-6, 1e-9)
    fd = np.zeros(len(x))
    for e in range(len(x)):
        vals = []
        for sgn in (1.0, -1.0):
            t = x.times.copy()
            t[e] += sgn * delta
            vals.append(loss_of(es.SpikeTrains(t, x.neurons, x.n_neurons, x.values)))
        fd[e] = (vals[0] - vals[1]) / (2 * delta)
    _close(g.times[0], fd, 1e-6, 1e-9)


# ---------------------------------------------------------------- analytic oracle
def _two_spike_neuron(w, t_ref, tau_m=5.0, tau_s=3.0):
    net = es.Sequential(es.Dense(1, 1), neuron=es.SRM(tau_m, tau_s, 1.0, "membrane", t_ref))
    net.layers[0].weight = np.array([[w]])
    return net


def _analytic_two_spikes(nrn, w, t0=0.0):
    """t1, t2 and dt2/dw of one input of weight w at t0, by the implicit function theorem
    written out by hand: w eps(t1 - t0) = 1, w e^{-(r - t0)/tau_s} eps(t2 - r) = 1,
    r = t1 + t_ref."""
    tp = nrn.t_peak
    t1 = t0 + brentq(lambda s: w * nrn.eps(s) - 1.0, 0.0, tp, xtol=1e-15, rtol=1e-15)
    r = t1 + nrn.t_ref
    S = w * math.exp(-(r - t0) / nrn.tau_s)
    s2 = brentq(lambda s: S * nrn.eps(s) - 1.0, 0.0, tp, xtol=1e-15, rtol=1e-15)
    dr_dw = -nrn.eps(t1 - t0) / (w * nrn.deps(t1 - t0))
    dS_dw = S / w - S * dr_dw / nrn.tau_s
    dt2_dw = dr_dw - dS_dw * nrn.eps(s2) / (S * nrn.deps(s2))
    return t1, r + s2, dt2_dw


@pytest.mark.parametrize("t_ref", T_REFS)
def test_two_spikes_of_one_input_analytic(t_ref):
    """One input fires the neuron twice (the second spike only through the current that
    survives the reset): dt2/dw equals the hand-derived implicit derivative, and moving the
    input moves both spikes by the same amount (dt2/dt_in = 1)."""
    nrn = es.SRM(5.0, 3.0, 1.0, "membrane", t_ref)
    w = 1.0 / (math.exp(-(0.9 + t_ref) / 3.0) * nrn.eps_peak) * 1.3
    net = _two_spike_neuron(w, t_ref)
    rec = net.simulate(es.SpikeTrains([2.0], [0], 1))
    assert len(rec.output) == 2
    t1, t2, dt2_dw = _analytic_two_spikes(nrn, w, t0=2.0)
    np.testing.assert_allclose(rec.output.times, [t1, t2], rtol=0, atol=1e-10)
    g = net.backward(rec, [0.0, 1.0], kernel="depsilon", clamp=None)
    assert g.weights[0][0, 0] == pytest.approx(dt2_dw, rel=1e-9)
    assert g.times[0][0] == pytest.approx(1.0, rel=1e-9)
    # the second spike passes its adjoint to the first: a_1 = dt2/dt1
    assert g.totals[1][1] == 1.0 and g.totals[1][0] != 0.0


# ---------------------------------------------------------------- degenerate cases
def _one_sided(f, x, h, side):
    """Second-order one-sided difference quotient of f at x (side +1: right, -1: left)."""
    return side * (-3 * f(x) + 4 * f(x + side * h) - f(x + 2 * side * h)) / (2 * h)


@pytest.mark.parametrize("t_ref", [0.0, 1.5])
def test_input_exactly_at_the_end_of_refractoriness(t_ref):
    """An input at exactly r = t_1 + t_ref (with t_ref = 0: at its target's spike time) is
    a kink of the spike-time map: the value is continuous, the derivative is not. The pass
    returns the right derivative (the input counted in the window of the next spike); for
    t_ref > 0 the left one differs by w e^{-(t2 - r)/tau_m} / (tau_s u'(t2))
    (docs/gradients.md); for t_ref = 0 the left one also moves t_1."""
    nrn = es.SRM(5.0, 3.0, 1.0, "membrane", t_ref)
    net = es.Sequential(es.Dense(2, 1), neuron=nrn)
    w_b = 0.8
    net.layers[0].weight = np.array([[4.0, w_b]])
    first = net.simulate(es.SpikeTrains([1.0], [0], 2)).output.times
    r = first[0] + t_ref

    def run(tb):
        return net.simulate(es.SpikeTrains([1.0, tb], [0, 1], 2))

    for _ in range(10):  # t_1's last bits can depend on the later input: find a fixed point
        rec = run(r)
        if rec.output.times[0] + t_ref == r:
            break
        r = rec.output.times[0] + t_ref
    assert rec.spikes[0].times[1] == r == rec.output.times[0] + t_ref and len(rec.output) >= 2
    n = len(rec.output)

    def t2(tb):
        out = run(tb).output
        assert len(out) == n
        return out.times[1]

    g = net.backward(rec, np.eye(n)[1], kernel="depsilon", clamp=None)
    right, left = _one_sided(t2, r, 1e-6, +1), _one_sided(t2, r, 1e-6, -1)
    assert g.times[0][1] == pytest.approx(right, rel=1e-6)
    assert abs(right - left) > 1e-3 * abs(right)   # a real kink: the one-sided values differ
    if t_ref > 0:  # from the left the input only feeds S(r); t_1 does not move
        kink = w_b * math.exp(-(rec.output.times[1] - r) / nrn.tau_m) / (nrn.tau_s * g.slopes[1][1])
        assert right - left == pytest.approx(kink, rel=1e-5)


def test_grazing_crossing():
    """A second spike that only just reaches threshold (peak theta (1 + delta)): its slope
    u'(t2) -> 0 as delta -> 0 and dt2/dw grows like delta^{-1/2}; the pass follows the
    analytic derivative down to delta = 1e-8. Past grazing the spike is gone (the map is
    not differentiable there); a spike recorded with u' <= 0 gets no weight gradient with
    clamp=None and its time share is dropped (g.dropped), never NaN."""
    nrn = es.SRM(5.0, 3.0, 1.0, "membrane", 0.5)

    def second_peak(w):  # the peak of the free membrane after the first restart
        t1 = brentq(lambda s: w * nrn.eps(s) - 1.0, 0.0, nrn.t_peak, xtol=1e-15, rtol=1e-15)
        return w * math.exp(-(t1 + nrn.t_ref) / nrn.tau_s) * nrn.eps_peak

    w_graze = brentq(lambda w: second_peak(w) - 1.0, 1.1 / nrn.eps_peak, 50.0, xtol=1e-15,
                     rtol=1e-15)
    grads = []
    for delta in [1e-2, 1e-4, 1e-6, 1e-8]:
        w = brentq(lambda w: second_peak(w) - (1.0 + delta), w_graze, 50.0, xtol=1e-15,
                   rtol=1e-15)
        net = _two_spike_neuron(w, nrn.t_ref)
        rec = net.simulate(es.SpikeTrains([0.0], [0], 1))
        assert len(rec.output) == 2
        g = net.backward(rec, [0.0, 1.0], kernel="depsilon", clamp=None)
        _, _, exact = _analytic_two_spikes(nrn, w)
        assert g.weights[0][0, 0] == pytest.approx(exact, rel=1e-6 if delta > 1e-7 else 1e-4)
        grads.append(abs(g.weights[0][0, 0]))
    # |dt2/dw| ~ delta^{-1/2}: each factor 100 in delta is a factor ~10 in the gradient
    ratios = np.array(grads[1:]) / np.array(grads[:-1])
    assert np.all((ratios > 5) & (ratios < 20)), ratios
    # a recorded spike on a non-rising membrane (a supervisory spike at t_end, say)
    net = _two_spike_neuron(w_graze * 0.5, nrn.t_ref)
    rec = with_supervisory_spike(net.simulate(es.SpikeTrains([0.0], [0], 1)), 0, 30.0)
    g = net.backward(rec, np.ones(len(rec.output)), kernel="depsilon", clamp=None)
    assert g.slopes[1][-1] < 0 and g.dropped[0] >= 1
    assert np.all(np.isfinite(g.weights[0])) and np.all(np.isfinite(g.times[0]))


# ---------------------------------------------------------------- kernel="exp", invariance
@pytest.mark.parametrize("kind", ["dense", "max", "adjusted"])
@settings(max_examples=examples(10), **SETTINGS)
@given(data=st.data())
def test_gradient_sum_invariant_on_membrane_nets(kind, data):
    """Through Dense, Conv2d, max and adjusted average pooling, both kernels: the shares of
    a spike (window inputs, earlier inputs through the surviving current, the previous
    spike) sum to 1, so eventsnn.testing's check holds (dropped spikes lose their total)."""
    net = data.draw(membrane_nets(kind))
    rec = net.simulate(_input(data, net, max_events=30))
    assume(len(rec.output) > 0)
    kernel = data.draw(st.sampled_from(["exp", "depsilon"]))
    grad_out = data.draw(st.lists(st.floats(-2, 2), min_size=len(rec.output),
                                  max_size=len(rec.output)))
    g = net.backward(rec, grad_out, kernel=kernel, factor=data.draw(st.sampled_from([1.0, 0.85])))
    assert_gradient_sum_invariant(net, rec, g)
    if all(d == 0 for d in g.dropped) and g.options["factor"] == 1.0:
        assert np.sum(g.times[0]) == pytest.approx(np.sum(grad_out), abs=1e-9, rel=1e-9)


def test_plain_average_pooling_breaks_the_invariance_on_membrane_nets():
    net = es.Sequential(es.Conv2d((1, 4, 4), 1, 1), es.AvgPool2d(2, adjusted=False),
                        es.Flatten(), es.Dense(4, 1), neuron=es.SRM(reset="membrane", t_ref=1.0))
    net.layers[0].weight = np.full((1, 1, 1, 1), 3.0)
    net.layers[3].weight = np.full((1, 4), 12.0)
    rec = net.simulate(es.SpikeTrains([0.0], [0], 16))   # one pixel: 1 of 4 window sources
    assert len(rec.output) > 0
    g = net.backward(rec, np.ones(len(rec.output)), kernel="depsilon", clamp=None)
    with pytest.raises(AssertionError, match="layer 2"):
        assert_gradient_sum_invariant(net, rec, g)


def test_exp_kernel_on_single_spikes_equals_the_full_reset_rule():
    """When no neuron fires twice, nothing depends on a reset and kernel="exp" (with every
    safeguard at its default) on a membrane net is exactly Zhu et al.'s rule: the same
    numbers as on the full-reset twin."""
    checked = 0
    for seed in range(300):
        rng = np.random.default_rng(seed)
        w = rng.uniform(-0.5, 1.5, (6, 5)) * 0.7
        x = es.SpikeTrains(np.sort(rng.uniform(0, 5, 8)), rng.integers(0, 5, 8), 5)
        runs = []
        for reset in ("full", "membrane"):
            net = es.Sequential(es.Dense(5, 6), neuron=es.SRM(reset=reset))
            net.layers[0].weight = w
            rec = net.simulate(x)
            runs.append((net, rec))
        (nf, rf), (nm, rm) = runs
        if len(rm.output) < 2 or rm.output.counts().max() > 1:
            continue
        assert np.array_equal(rf.output.times, rm.output.times)
        grad = rng.normal(size=len(rm.output))
        gf, gm = nf.backward(rf, grad), nm.backward(rm, grad)
        np.testing.assert_allclose(gm.weights[0], gf.weights[0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(gm.times[0], gf.times[0], rtol=1e-12, atol=1e-14)
        checked += 1
    assert checked >= 5
