"""Timing backward pass: kernel == naive reference (Eq. 12-14), exactness against central
finite differences with h = d eps/dt, analytic single-neuron oracle, pooling rules,
gradient-sum invariance (via eventsnn.testing), threads, errors.

The property tests run once per network kind (Dense, Conv, Conv + max / adjusted / plain
average pooling; two and three weighted layers), so every pooling kind gets its own
hypothesis run; max_examples scale with HYPOTHESIS_SCALE (tests/strategies.py)."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import eventsnn as es
from eventsnn.event import _backward
from eventsnn.event.backward import backward, backward_many
from eventsnn.event.forward import Record, kernel_weights, simulate_sample
from eventsnn.testing import assert_gradient_sum_invariant, network_inputs, networks

from . import naive_backward as naive
from .strategies import TAUS, examples

# hypothesis' filter_too_much health check stays on: a strategy or an assume() that rejects
# most examples fails the test instead of silently testing little
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _close(a, b, rtol=1e-9, atol=1e-12):
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape
    scale = max(np.max(np.abs(b), initial=0.0), np.max(np.abs(a), initial=0.0))
    assert np.max(np.abs(a - b), initial=0.0) <= atol + rtol * scale, (a, b)


# ---------------------------------------------------------------- kernel vs naive
@pytest.mark.parametrize("kind", ["dense", "conv", "max", "adjusted", "avg"])
@settings(max_examples=examples(12), **SETTINGS)
@given(data=st.data())
def test_kernel_equals_naive_reference(kind, data):
    t_ref = data.draw(st.sampled_from([0.0, 0.7]))
    net = data.draw(shallow_networks(kind, es.SRM(t_ref=t_ref)))
    x = _inputs(data, net, kind, min_events=3, max_events=30, graded=data.draw(st.booleans()))
    rec = net.simulate(x)
    kernel = data.draw(st.sampled_from(["exp", "depsilon"]))
    opts = dict(drop_nonpositive=data.draw(st.booleans()),
                clamp=data.draw(st.sampled_from([None, (-4.0, 0.0), (-1.0, 0.5)])),
                factor=data.draw(st.sampled_from([1.0, 0.85])))
    grad_out = data.draw(st.lists(st.floats(-2, 2), min_size=len(rec.spikes[-1]),
                                  max_size=len(rec.spikes[-1])))
    g = net.backward(rec, grad_out, kernel=kernel, tau_grad=2.5, **opts)
    w_ref, t_ref_ = naive.backward(net, rec, grad_out, kernel=kernel, tau_grad=2.5, **opts)
    assert len(g.times) == len(rec.spikes)
    for level, (a, b) in enumerate(zip(g.times, t_ref_)):
        assert a.shape == rec.spikes[level].times.shape
        _close(a, b)
    for layer, a, b in zip(net.layers, g.weights, w_ref):
        if layer.has_weight:
            assert a.shape == layer.weight.shape
            _close(a, b)
        else:
            assert a is None


def _assert_equals_naive(net, rec, grad_out, kernel, opts):
    g = net.backward(rec, grad_out, kernel=kernel, tau_grad=2.5, **opts)
    w_ref, t_ref_ = naive.backward(net, rec, grad_out, kernel=kernel, tau_grad=2.5, **opts)
    for level, (a, b) in enumerate(zip(g.times, t_ref_)):
        assert a.shape == rec.spikes[level].times.shape
        _close(a, b)
    for layer, a, b in zip(net.layers, g.weights, w_ref):
        if layer.has_weight:
            assert a.shape == layer.weight.shape
            _close(a, b)
    # input_grad=False: the same weight gradients, no dL/dt of the input events
    g2 = net.backward(rec, grad_out, kernel=kernel, tau_grad=2.5, input_grad=False, **opts)
    assert g2.times[0] is None and g2.options["input_grad"] is False
    for a, b in zip(g2.weights, g.weights):
        if a is not None:
            np.testing.assert_array_equal(a, b)
    for a, b in zip(g2.times[1:], g.times[1:]):
        np.testing.assert_array_equal(a, b)
    return g


class _blocks:
    """Temporarily set the kernel's block length (in smallest time constants)."""

    def __init__(self, taus):
        self.taus = taus

    def __enter__(self):
        self.saved = _backward.BLOCK_TAUS
        _backward.BLOCK_TAUS = self.taus

    def __exit__(self, *exc):
        _backward.BLOCK_TAUS = self.saved


@st.composite
def burst_inputs(draw, n_in, t_span):
    """Bursts of events spread over up to ``t_span`` ms (long windows between them); inside a
    burst times lie on a 0.25 ms grid, so several events (also of one neuron) coincide."""
    n_bursts = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    times, idx = [], []
    for t0 in np.sort(rng.uniform(0.0, t_span, n_bursts)):
        n = int(rng.integers(3, 16))
        times.append(t0 + 0.25 * rng.integers(0, 9, n))
        idx.append(rng.integers(0, n_in, n))
    times, idx = np.concatenate(times), np.concatenate(idx)
    values = rng.uniform(0.2, 2.0, times.size) if draw(st.booleans()) else np.ones(times.size)
    return es.SpikeTrains(times, idx, n_in, values)


def _draw_options(data):
    return dict(drop_nonpositive=data.draw(st.booleans()),
                clamp=data.draw(st.sampled_from([None, (-4.0, 0.0)])),
                factor=data.draw(st.sampled_from([1.0, 0.85])))


@pytest.mark.parametrize("kind", ["dense", "conv", "max", "adjusted", "avg"])
@settings(max_examples=examples(10), **SETTINGS)
@given(data=st.data())
def test_kernel_equals_naive_on_long_records_and_any_block_length(kind, data):
    """The factors on block references (module docstring of event._backward) == the naive
    per-pair exponentials: inputs in bursts over up to 1500 ms (windows spanning many
    blocks; factors of far spikes decay below the double range), coincident events, block
    lengths from 0.02 smallest tau (a new reference at almost every event) to the default."""
    tau_m, tau_s = data.draw(st.sampled_from(TAUS))
    nrn = es.SRM(tau_m=tau_m, tau_s=tau_s, t_ref=data.draw(st.sampled_from([0.0, 0.25, 0.7])))
    net = data.draw(shallow_networks(kind, nrn))
    x = data.draw(burst_inputs(net.n_in, data.draw(st.sampled_from([50.0, 300.0, 1500.0]))))
    rec = net.simulate(x)
    assume(len(rec.output) > 0)
    event(f"output spikes: {_bucket(len(rec.output))}")
    kernel = data.draw(st.sampled_from(["exp", "depsilon"]))
    grad_out = data.draw(st.lists(st.floats(-2, 2), min_size=len(rec.output),
                                  max_size=len(rec.output)))
    with _blocks(data.draw(st.sampled_from([0.02, 0.5, 3.0, _backward.BLOCK_TAUS]))):
        _assert_equals_naive(net, rec, grad_out, kernel, _draw_options(data))


@pytest.mark.parametrize("kind", ["dense", "conv"])
@settings(max_examples=examples(15), **SETTINGS)
@given(data=st.data())
def test_kernel_equals_naive_on_coincident_spikes_and_window_edges(kind, data):
    """Records built by hand (the backward does not re-simulate): input events and output
    spikes on one 0.25 ms grid, t_ref a multiple of it, so inputs fall exactly on spike
    times t_k (inside the window) and on window starts r_k = t_{k-1} + t_ref (outside), and
    with t_ref = 0 a window opens where the previous one closes."""
    nrn = es.SRM(t_ref=data.draw(st.sampled_from([0.0, 0.25, 0.5])))
    net = data.draw(shallow_networks(kind, nrn))
    net = es.Sequential(net.layers[0], neuron=nrn)   # its first layer alone
    layer = net.layers[0]
    seed = data.draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    n_ev = int(rng.integers(1, 40))
    x = es.SpikeTrains(0.25 * rng.integers(0, 40, n_ev), rng.integers(0, layer.n_in, n_ev),
                       layer.n_in, rng.uniform(0.2, 2.0, n_ev))
    times, neurons = [], []
    for i in range(layer.n_out):   # spikes of a neuron at distinct grid times
        t = 0.25 * np.sort(rng.choice(44, size=int(rng.integers(0, 5)), replace=False))
        times.append(t)
        neurons.append(np.full(t.size, i))
    out = es.SpikeTrains(np.concatenate(times), np.concatenate(neurons), layer.n_out)
    assume(len(out) > 0)
    rec = Record(spikes=[x, out], t_end=math.inf, relays=[None, None])
    grad_out = rng.uniform(-2, 2, len(out))
    kernel = data.draw(st.sampled_from(["exp", "depsilon"]))
    with _blocks(data.draw(st.sampled_from([0.02, _backward.BLOCK_TAUS]))):
        _assert_equals_naive(net, rec, grad_out, kernel, _draw_options(data))


# ---------------------------------------------------------------- analytic oracle
def test_single_input_neuron_analytic():
    """One input of weight w at t=0: w eps(t*) = theta; dt*/dw = -eps(t*)/(w eps'(t*)),
    dt*/dt_in = 1."""
    nrn = es.SRM(tau_m=5.0, tau_s=3.0, theta=1.0)
    net = es.Sequential(es.Dense(1, 1), neuron=nrn)
    w = 3.0
    net.layers[0].weight = [[w]]
    rec = net.simulate(es.SpikeTrains([0.0], [0], 1))
    (t_star,) = rec.output.times
    assert abs(w * nrn.eps(t_star) - 1.0) < 1e-12
    g = net.backward(rec, [1.0], kernel="depsilon", clamp=None)
    assert g.weights[0][0, 0] == pytest.approx(-nrn.eps(t_star) / (w * nrn.deps(t_star)), rel=1e-12)
    assert g.times[0][0] == pytest.approx(1.0, rel=1e-12)
    assert g.slopes[1][0] == pytest.approx(w * nrn.deps(t_star), rel=1e-12)
    # "exp" kernel: the share of a single input is still 1 (Eq. 12 normalises h away)
    g = net.backward(rec, [1.0], kernel="exp", tau_grad=1.3)
    assert g.times[0][0] == pytest.approx(1.0, rel=1e-12)
    # clamp of -1/(du/dt) to [-4, 0] in the weight gradient
    slope = w * nrn.deps(t_star)
    g = net.backward(rec, [1.0], clamp=(-0.01, 0.0))
    assert g.weights[0][0, 0] == pytest.approx(max(-1 / slope, -0.01) * nrn.eps(t_star))


def test_window_starts_after_previous_spike_and_refractory():
    """An input before the previous spike (+t_ref) gets nothing from the next spike."""
    nrn = es.SRM(t_ref=1.0)
    net = es.Sequential(es.Dense(2, 1), neuron=nrn)
    net.layers[0].weight = [[4.0, 4.0]]
    x = es.SpikeTrains([0.0, 1.5, 6.0], [0, 1, 1], 2)   # the event at 1.5 falls in t_ref
    rec = net.simulate(x)
    t1 = rec.output.times[0]
    assert t1 < 1.5 < t1 + 1.0 and len(rec.output) == 2
    g = net.backward(rec, [0.0, 1.0], kernel="depsilon", clamp=None)
    assert g.times[0][0] == 0.0 and g.times[0][1] == 0.0
    assert g.times[0][2] == pytest.approx(1.0)


# ---------------------------------------------------------------- finite differences
def _loss_and_grad(spikes, targets):
    """L = 1/2 sum_k (t_k - c[n_k, rank_k])^2; returns (L, dL/dt_k aligned with spikes)."""
    rank = np.zeros(spikes.n_neurons, int)
    grad = np.empty(len(spikes))
    for k, (t, n) in enumerate(zip(spikes.times, spikes.neurons)):
        grad[k] = t - targets[n, rank[n]]
        rank[n] += 1
    return 0.5 * float(np.sum(grad ** 2)), grad


def _neuron_levels(net):
    return [li for li, layer in enumerate(net.layers, start=1) if layer.has_neurons]


def _well_conditioned(net, rec, g, gap=1e-4, min_slope=0.05):
    """Every spike has du/dt >= min_slope, and no input event lies within ``gap`` of a spike
    time t_k nor, when t_ref > 0, of t_k + t_ref: under full reset the inputs in
    (t_k, t_k + t_ref] are discarded, so an input near t_k + t_ref would jump in or out
    of the next window when t_k moves (the loss is not differentiable there)."""
    t_ref = net.neuron.t_ref
    for li in _neuron_levels(net):
        if len(rec.spikes[li]) == 0 or len(rec.spikes[li - 1]) == 0:
            continue
        if np.min(g.slopes[li]) < min_slope:
            return False
        tin = np.sort(rec.spikes[li - 1].times)
        edges = rec.spikes[li].times
        if t_ref > 0:
            edges = np.concatenate([edges, edges + t_ref])
        p = np.searchsorted(tin, edges)
        d = np.minimum(np.abs(edges - tin[np.clip(p - 1, 0, tin.size - 1)]),
                       np.abs(edges - tin[np.clip(p, 0, tin.size - 1)]))
        if np.min(d) < gap:
            return False
    return True


def _refractory_inputs(net, rec):
    """Number of input events of a neuron level falling in (t_k, t_k + t_ref] of a spike
    of a neuron they reach (Dense: every neuron) - the events full reset discards."""
    t_ref = net.neuron.t_ref
    n = 0
    for li in _neuron_levels(net):
        layer, below, here = net.layers[li - 1], rec.spikes[li - 1], rec.spikes[li]
        if t_ref == 0 or len(here) == 0:
            continue
        if isinstance(layer, es.Dense):
            reach = np.ones((layer.n_out, layer.n_in), bool)
        else:
            indptr, targets, _ = layer.connectivity()
            reach = np.zeros((layer.n_out, layer.n_in), bool)
            for j in range(layer.n_in):
                reach[targets[indptr[j]:indptr[j + 1]], j] = True
        for t, i in zip(here.times, here.neurons):
            inside = (below.times > t) & (below.times <= t + t_ref)
            n += int(np.sum(reach[i, below.neurons[inside]]))
    return n


def _simulate_from(net, start, spikes):
    """Run the layers net.layers[start:] (pooling and Flatten included) on ``spikes`` as the
    events of level ``start``, with the forward engine's own driver and the same weights."""
    layers = net.layers[start:]
    return simulate_sample(layers, net.neuron, spikes, None, None,
                           [kernel_weights(layer) for layer in layers])


def _split_by_move(net, rec, level):
    """Events of ``level`` that share a max-pooled event with another source event: moving
    one alone splits the pooled event into two (the loss jumps), so they have no
    derivative. (Coincident sources of an *average*-pooled event split continuously: the
    relayed values just add, so those events are checked.)"""
    mask = np.zeros(len(rec.spikes[level]), bool)
    if level < len(net.layers) and isinstance(net.layers[level], es.MaxPool2d):
        src = rec.relays[level + 1][0]
        ok = src >= 0
        n = np.bincount(src[ok], minlength=len(rec.spikes[level + 1]))
        mask[ok] = n[src[ok]] > 1
    return mask


def _bucket(n):
    return "0" if n == 0 else "1-9" if n < 10 else "10+"


def _fd_check(net, x, data, delta_w=1e-6, delta_t=1e-6, rtol=1e-5):
    """Central finite differences of L = 1/2 sum (t_k - c_k)^2 over the output spikes,
    against ``g.weights`` of every weighted layer and ``g.times`` of every level that feeds
    a layer: the input, the neuron levels (also those feeding a pooling layer), pooled and
    flattened levels. A level's events are moved one at a time and the layers above it
    re-simulated by the forward engine; no perturbation may change the spike counts of a
    neuron or max-pooled level. Returns (rec, number of checked events per level)."""
    rec = net.simulate(x)
    assume(len(rec.output) > 0)
    targets = np.asarray(data.draw(st.lists(st.floats(0, 20), min_size=net.n_out * 64,
                                            max_size=net.n_out * 64))).reshape(net.n_out, 64)
    assume(rec.output.counts().max() <= 64)
    loss, grad_out = _loss_and_grad(rec.output, targets)
    g = net.backward(rec, grad_out, kernel="depsilon", clamp=None)
    assume(_well_conditioned(net, rec, g))
    event(f"output spikes: {min(len(rec.output), 5)}{'+' if len(rec.output) >= 5 else ''}")
    # spike counts that no perturbation may change: neuron levels, and max-pooled levels
    # (coincident sources of a max-pooled event that come apart make the loss jump; those
    # of an average-pooled event come apart continuously, their values just add)
    base = {li: rec.spikes[li].counts() for li, layer in enumerate(net.layers, start=1)
            if layer.has_neurons or isinstance(layer, es.MaxPool2d)}

    def loss_of(r, start=0):
        for j in range(1, len(r.spikes)):
            if start + j in base:  # the perturbation changed no spike count
                assume(np.array_equal(r.spikes[j].counts(), base[start + j]))
        return _loss_and_grad(r.output, targets)[0]

    # weights
    for li, layer in enumerate(net.layers):
        if not layer.has_weight:
            continue
        w0 = layer.weight.copy()
        fd = np.zeros(w0.size)
        for q in range(w0.size):
            vals = []
            for sgn in (1.0, -1.0):
                w = w0.copy().ravel()
                w[q] += sgn * delta_w
                layer.weight = w.reshape(w0.shape)
                vals.append(loss_of(net.simulate(x)))
            fd[q] = (vals[0] - vals[1]) / (2 * delta_w)
        layer.weight = w0
        _close(g.weights[li].ravel(), fd, rtol=rtol, atol=1e-9)
    # event times of every level below the output (input included)
    checked = []
    for li in range(len(net.layers)):
        level = rec.spikes[li]
        same = _simulate_from(net, li, level)   # the re-simulation reproduces the record
        for a, b in zip(same.spikes[1:], rec.spikes[li + 1:]):
            np.testing.assert_array_equal(a.times, b.times)
            np.testing.assert_array_equal(a.neurons, b.neurons)
        skip = _split_by_move(net, rec, li)
        fd = np.zeros(len(level))
        for e in np.flatnonzero(~skip):
            vals = []
            for sgn in (1.0, -1.0):
                t = level.times.copy()
                t[e] += sgn * delta_t
                moved = es.SpikeTrains(t, level.neurons, level.n_neurons, level.values)
                vals.append(loss_of(_simulate_from(net, li, moved), li))
            fd[e] = (vals[0] - vals[1]) / (2 * delta_t)
        _close(g.times[li][~skip], fd[~skip], rtol=rtol, atol=1e-9)
        checked.append(int(np.sum(~skip)))
    return rec, checked


def _shifted(x, offset=1.0):
    return es.SpikeTrains(x.times + offset, x.neurons, x.n_neurons, x.values)


def _pool_of(net):
    """The pooling of net: None, "max", "adjusted" or "avg" (plain average)."""
    for layer in net.layers:
        if isinstance(layer, es.MaxPool2d):
            return "max"
        if isinstance(layer, es.AvgPool2d):
            return "adjusted" if layer.adjusted else "avg"
    return None


def shallow_networks(kind, neuron=None):
    """eventsnn.testing.networks of one kind: "dense" (Dense-Dense), "conv" (Conv2d-Flatten-
    Dense) or Conv2d-<pool>-Flatten-Dense with pool "max", "adjusted" or "avg" (plain)."""
    if kind == "dense":
        return networks(kinds=("dense",), neuron=neuron)
    if kind == "conv":
        return networks(kinds=("conv",), pools=(None,), neuron=neuron)
    # networks() leaves the pool out when the conv output is 1x1 (rare): filter those
    return networks(kinds=("conv",), pools=(kind,), neuron=neuron).filter(
        lambda net: _pool_of(net) == kind).map(_boost_after_average_pool)


def _boost_after_average_pool(net):
    """Scale the weights after an average pool by k^2 (its events carry v / k^2), so the
    output layer is not mostly silent (fewer rejected examples)."""
    for at, layer in enumerate(net.layers):
        if isinstance(layer, es.AvgPool2d):
            above = next(l for l in net.layers[at + 1:] if l.has_weight)
            above.weight = above.weight * layer.kernel_size ** 2
    return net


@st.composite
def frame_inputs(draw, net, t_max=20.0):
    """Spatially uniform input frames for a Conv2d-first network: at each of 1-4 distinct
    times every pixel of some channels fires with one value. Conv neurons whose receptive
    fields see the same content then fire at the same time, so pooled events get several
    coincident sources (random inputs almost never give that)."""
    C, H, W = net.in_shape
    frames = draw(st.lists(st.floats(0.0, t_max), min_size=1, max_size=4, unique=True))
    times, neurons, values = [], [], []
    for t in frames:
        chans = draw(st.lists(st.integers(0, C - 1), min_size=1, max_size=C, unique=True))
        v = draw(st.sampled_from([1.0, 0.5, 1.5]))
        for c in chans:
            neurons += range(c * H * W, (c + 1) * H * W)
            times += [t] * (H * W)
            values += [v] * (H * W)
    return es.SpikeTrains(times, neurons, net.n_in, values)


def _inputs(data, net, kind, frames_ok=True, **kwargs):
    """network_inputs(net, **kwargs), or (conv networks, half of the time) frame_inputs."""
    if kind != "dense" and frames_ok and data.draw(st.booleans()):
        event("input: uniform frames")
        return data.draw(frame_inputs(net))
    return data.draw(network_inputs(net, **kwargs))


def _pool_layer(kind):
    return es.MaxPool2d(2) if kind == "max" else es.AvgPool2d(2, adjusted=kind == "adjusted")


@st.composite
def deep_networks(draw, kind, neuron=None):
    """Three weighted layers: "dense" is Dense-Dense-Dense; "conv" Conv2d-Conv2d-Flatten-
    Dense; "max"/"adjusted"/"avg" Conv2d-<pool>-Conv2d-Flatten-Dense. Weights uniform in
    [-0.3, 1.5] * gain / sqrt(fan-in), times k^2 after an average pool (pooled events
    carry v / k^2)."""
    if kind == "dense":
        sizes = [draw(st.integers(2, 10)), draw(st.integers(1, 8)), draw(st.integers(1, 6)),
                 draw(st.integers(1, 3))]
        layers = [es.Dense(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
    else:
        c_in, size, c1 = draw(st.integers(1, 2)), draw(st.integers(5, 7)), draw(st.integers(1, 3))
        k1, p1 = draw(st.integers(2, 3)), draw(st.integers(0, 1))
        layers = [es.Conv2d((c_in, size, size), c1, k1, padding=p1)]
        hw = size + 2 * p1 - k1 + 1
        if kind != "conv":
            layers.append(_pool_layer(kind))
            hw //= 2
        p2 = draw(st.integers(0, 1))
        k2 = draw(st.integers(1, min(3, hw + 2 * p2)))
        c2 = draw(st.integers(1, 3))
        layers.append(es.Conv2d((c1, hw, hw), c2, k2, padding=p2))
        hw2 = hw + 2 * p2 - k2 + 1
        layers += [es.Flatten(), es.Dense(c2 * hw2 * hw2, draw(st.integers(1, 3)))]
    net = es.Sequential(*layers, neuron=neuron if neuron is not None else es.SRM())
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    gain = draw(st.floats(4.0, 10.0))
    prev = None
    for layer in net.layers:
        if layer.has_weight:
            boost = prev.kernel_size ** 2 if isinstance(prev, es.AvgPool2d) else 1.0
            layer.weight = (rng.uniform(-0.3, 1.5, layer.weight_shape) * gain * boost
                            / np.sqrt(layer.weight[0].size))
        if not isinstance(layer, es.Flatten):
            prev = layer
    return net


def fd_neurons(t_ref):
    """Full-reset SRM neurons with a drawn (tau_m, tau_s) and the given t_ref."""
    return st.sampled_from(TAUS[:4]).map(lambda p: es.SRM(tau_m=p[0], tau_s=p[1], t_ref=t_ref))


def _fd_stats(net, rec, checked):
    """hypothesis events: how many events feeding a pooling layer were moved directly, and
    (t_ref > 0) how many inputs fell in a refractory period."""
    pooled = [li for li, layer in enumerate(net.layers)
              if isinstance(layer, (es.MaxPool2d, es.AvgPool2d))]
    if pooled:
        event(f"moved events feeding the pool: {_bucket(sum(checked[li] for li in pooled))}")
        n = _sources(rec, pooled[0] + 1)[2]
        event(f"pooled events with several sources: {_bucket(int(np.sum(n > 1)))}")
    if net.neuron.t_ref > 0:
        event(f"inputs in a refractory period: {_bucket(_refractory_inputs(net, rec))}")


SHALLOW_KINDS = ("dense", "conv", "max", "adjusted")


@pytest.mark.parametrize("t_ref", [0.0, 1.0])
@pytest.mark.parametrize("kind", SHALLOW_KINDS)
@settings(max_examples=examples(15), **SETTINGS)
@given(data=st.data())
def test_depsilon_gradient_equals_finite_differences(kind, t_ref, data):
    """g.weights and g.times == central finite differences (rel. 1e-5) on Dense-Dense and
    Conv2d[-max/adjusted pool]-Flatten-Dense networks, t_ref = 0 and t_ref > 0."""
    net = data.draw(shallow_networks(kind, data.draw(fd_neurons(t_ref))))
    assert _pool_of(net) == (None if kind in ("dense", "conv") else kind)
    x = _shifted(_inputs(data, net, kind, frames_ok=kind != "max", min_events=3, max_events=25,
                         distinct_times=True, graded=data.draw(st.booleans())))
    _fd_stats(net, *_fd_check(net, x, data))


@pytest.mark.parametrize("kind", SHALLOW_KINDS)
@settings(max_examples=examples(12), **SETTINGS)
@given(data=st.data())
def test_depsilon_gradient_equals_finite_differences_three_layers(kind, data):
    """The same on Dense-Dense-Dense and Conv2d-[pool-]Conv2d-Flatten-Dense networks."""
    t_ref = data.draw(st.sampled_from([0.0, 1.0]))
    net = data.draw(deep_networks(kind, data.draw(fd_neurons(t_ref))))
    assert sum(layer.has_weight for layer in net.layers) == 3
    x = _shifted(_inputs(data, net, kind, frames_ok=kind != "max", min_events=6, max_events=25,
                         distinct_times=True, graded=data.draw(st.booleans())))
    _fd_stats(net, *_fd_check(net, x, data))


# ---------------------------------------------------------------- gradient-sum invariance
INVARIANT_KINDS = ("dense", "conv", "max", "adjusted")


def _nets(kind, depth):
    return shallow_networks(kind) if depth == 2 else deep_networks(kind)


def _pool_level(net):
    """1-based index of the pooling layer (= its level in rec.spikes)."""
    (li,) = [li for li, layer in enumerate(net.layers, start=1)
             if isinstance(layer, (es.MaxPool2d, es.AvgPool2d))]
    return li


def _sources(rec, li):
    """(src, ok, n): pooled event of each source event, mask of relayed sources, number of
    source events per pooled event of level li."""
    src = rec.relays[li][0]
    ok = src >= 0
    return src, ok, np.bincount(src[ok], minlength=len(rec.spikes[li]))


@pytest.mark.parametrize("depth", [2, 3])
@pytest.mark.parametrize("kind", INVARIANT_KINDS)
@settings(max_examples=examples(25), **SETTINGS)
@given(data=st.data())
def test_gradient_sum_invariant(kind, depth, data):
    """Eq. 8 holds through Dense, Conv2d, max and adjusted average pooling: one hypothesis
    run per kind (Dense-Dense, Conv-Flatten-Dense, Conv-max/adjusted pool-Flatten-Dense)
    and per depth (2 or 3 weighted layers)."""
    net = data.draw(_nets(kind, depth))
    assert _pool_of(net) == (None if kind in ("dense", "conv") else kind)
    x = _inputs(data, net, kind, min_events=3, max_events=30, graded=data.draw(st.booleans()))
    rec = net.simulate(x)
    assume(len(rec.output) > 0)     # a silent network passes trivially
    kernel = data.draw(st.sampled_from(["exp", "depsilon"]))
    grad_out = data.draw(st.lists(st.floats(-2, 2), min_size=len(rec.output),
                                  max_size=len(rec.output)))
    g = net.backward(rec, grad_out, kernel=kernel)
    assert_gradient_sum_invariant(net, rec, g)
    # with every share kept (exp kernel: h > 0, so S_k <= 0 only for net inhibition)
    if kernel == "exp" and all(d == 0 for d in g.dropped):
        assert np.sum(g.times[0]) == pytest.approx(np.sum(grad_out), abs=1e-9)
    if kind in ("max", "adjusted"):   # the pool's own rule, event by event
        li = _pool_level(net)
        src, ok, n = _sources(rec, li)
        below, above = g.times[li - 1], g.times[li]
        assert np.all(below[~ok] == 0)
        if kind == "max":
            win = rec.relays[li][1]
            np.testing.assert_array_equal(below[ok & win], above[src[ok & win]])
            assert np.all(below[ok & ~win] == 0)
        else:
            np.testing.assert_allclose(below[ok], above[src[ok]] / n[src[ok]], rtol=1e-15)
        event(f"pooled events with gradient: {_bucket(int(np.sum(above != 0)))}")
        event(f"pooled events with several sources: {_bucket(int(np.sum(n > 1)))}")


def _avg_net(adjusted):
    net = es.Sequential(es.Conv2d((1, 4, 4), 1, 1), es.AvgPool2d(2, adjusted=adjusted),
                        es.Flatten(), es.Dense(4, 1))
    net.layers[0].weight = np.full((1, 1, 1, 1), 3.0)
    net.layers[3].weight = np.full((1, 4), 20.0)
    return net


def test_plain_average_pooling_loses_the_gradient_sum():
    """One conv neuron fires in a 2x2 window: plain average pooling passes g/4 to it (and
    g/4 to three silent neurons, i.e. nowhere); adjusted pooling passes all of g."""
    x = es.SpikeTrains([0.0], [5], 16)
    for adjusted, share in ((False, 0.25), (True, 1.0)):
        net = _avg_net(adjusted)
        rec = net.simulate(x)
        assert len(rec.spikes[1]) == 1 and len(rec.output) == 1
        g = net.backward(rec, [1.0])
        assert g.times[1][0] == pytest.approx(share)
        if adjusted:
            assert_gradient_sum_invariant(net, rec, g)
        else:
            with pytest.raises(AssertionError, match="layer 2"):
                assert_gradient_sum_invariant(net, rec, g)


@pytest.mark.parametrize("pixels, conserved", [([0, 1], False), ([0, 1, 4, 5], True)])
def test_plain_average_pooling_conserves_only_full_windows(pixels, conserved):
    """n coincident conv spikes in one 2x2 window become one pooled event: plain pooling
    gives each g/4, so the sum n g/4 is kept only when n = k^2 = 4; adjusted gives g/n."""
    x = es.SpikeTrains(np.zeros(len(pixels)), pixels, 16)
    n = len(pixels)
    for adjusted in (False, True):
        net = _avg_net(adjusted)
        rec = net.simulate(x)
        assert len(rec.spikes[1]) == n and len(rec.spikes[2]) == 1 and len(rec.output) == 1
        assert rec.spikes[2].values[0] == pytest.approx(n / 4)
        g = net.backward(rec, [1.0])
        share = 1 / n if adjusted else 1 / 4
        np.testing.assert_allclose(g.times[1], np.full(n, share * g.times[2][0]))
        if adjusted or conserved:
            assert_gradient_sum_invariant(net, rec, g)
        else:
            assert np.sum(g.times[1]) == pytest.approx(0.5 * np.sum(g.times[2]))
            with pytest.raises(AssertionError, match=r"layer 2 \(AvgPool2d"):
                assert_gradient_sum_invariant(net, rec, g)


def _adjusted_twin(net):
    """net with every AvgPool2d adjusted (same weights): the same forward pass."""
    from eventsnn.network import _layer_from_spec, _layer_spec

    specs = [_layer_spec(layer) for layer in net.layers]
    for spec in specs:
        if spec["type"] == "AvgPool2d":
            spec["adjusted"] = True
    twin = es.Sequential(*[_layer_from_spec(s) for s in specs], neuron=net.neuron)
    for a, b in zip(twin.layers, net.layers):
        if b.has_weight:
            a.weight = b.weight
    return twin


@pytest.mark.parametrize("depth", [2, 3])
@settings(max_examples=examples(30), **SETTINGS)
@given(data=st.data())
def test_plain_average_pooling_scales_the_sum_by_sources_over_k2(depth, data):
    """Through plain average pooling each source event gets g_o / k^2 of its pooled event o
    (the adjusted twin: g_o / n_o), so the sum becomes sum_o g_o n_o / k^2: the
    invariance check fails at the pool exactly when that differs from sum_o g_o."""
    net = data.draw(_nets("avg", depth))
    assert _pool_of(net) == "avg"
    x = _inputs(data, net, "avg", min_events=3, max_events=30, graded=True)
    rec = net.simulate(x)
    assume(len(rec.output) > 0)     # a silent network passes trivially
    kernel = data.draw(st.sampled_from(["exp", "depsilon"]))
    grad_out = data.draw(st.lists(st.floats(0.1, 2), min_size=len(rec.output),
                                  max_size=len(rec.output)))
    g = net.backward(rec, grad_out, kernel=kernel)
    twin = _adjusted_twin(net)
    rec_a = twin.simulate(x)
    for a, b in zip(rec_a.spikes, rec.spikes):
        np.testing.assert_array_equal(a.times, b.times)
    g_a = twin.backward(rec_a, grad_out, kernel=kernel)
    assert_gradient_sum_invariant(twin, rec_a, g_a)
    li = _pool_level(net)
    k2 = net.layers[li - 1].kernel_size ** 2
    src, ok, n = _sources(rec, li)
    for lv in range(li, len(rec.spikes)):   # at and above the pool the passes agree
        np.testing.assert_array_equal(g.times[lv], g_a.times[lv])
    above = g.times[li]
    expect = np.zeros(len(src))
    expect[ok] = above[src[ok]] / k2
    np.testing.assert_allclose(g.times[li - 1], expect, rtol=1e-15, atol=0)
    np.testing.assert_allclose(g_a.times[li - 1][ok], above[src[ok]] / n[src[ok]], rtol=1e-15)
    event(f"pooled events with several sources: {_bucket(int(np.sum(n > 1)))}")
    lost = float(np.sum(above * (1 - n / k2)))
    assert np.sum(g.times[li - 1]) == pytest.approx(np.sum(above) - lost, rel=1e-12, abs=1e-12)
    if abs(lost) > 1e-6 * np.sum(np.abs(above)) + 1e-9:
        with pytest.raises(AssertionError, match=rf"layer {li} \(AvgPool2d"):
            assert_gradient_sum_invariant(net, rec, g)
        event("plain pool: sum lost, check fails at the pool")
    elif np.all(n[above != 0] == k2):
        assert_gradient_sum_invariant(net, rec, g)
        event("plain pool: only full windows carry gradient, sum kept")
    else:
        event("plain pool: loss below tolerance")


def test_factor_scales_the_gradient_passed_down():
    net = es.Sequential(es.Dense(3, 4), es.Dense(4, 2), rng=3)
    for layer in net.layers:
        layer.weight = np.abs(layer.weight) * 4
    rec = net.simulate(es.SpikeTrains([0.0, 0.5, 1.0], [0, 1, 2], 3))
    grad = np.linspace(-1, 1, len(rec.output))
    g1 = net.backward(rec, grad)
    g2 = net.backward(rec, grad, factor=0.85)
    np.testing.assert_allclose(g2.times[1], 0.85 * g1.times[1])
    np.testing.assert_allclose(g2.times[0], 0.85 ** 2 * g1.times[0])
    assert_gradient_sum_invariant(net, rec, g2)


def test_max_pool_sends_everything_to_the_winner():
    net = es.Sequential(es.Conv2d((1, 2, 2), 1, 1), es.MaxPool2d(2), es.Flatten(), es.Dense(1, 1))
    net.layers[0].weight = np.full((1, 1, 1, 1), 3.0)
    net.layers[3].weight = np.full((1, 1), 8.0)
    # two conv neurons fire at the same time (same input time, same weight)
    rec = net.simulate(es.SpikeTrains([0.0, 0.0], [1, 2], 4))
    assert len(rec.spikes[1]) == 2 and len(rec.spikes[2]) == 1
    g = net.backward(rec, np.ones(len(rec.output)))
    assert sorted(g.times[1]) == [0.0, pytest.approx(np.sum(g.times[2]))]
    assert_gradient_sum_invariant(net, rec, g)


# ---------------------------------------------------------------- batches and threads
def test_backward_many_equals_single_and_is_thread_independent():
    net = es.Sequential(es.Dense(6, 5), es.Dense(5, 3), rng=1)
    for layer in net.layers:
        layer.weight = layer.weight * 3 + 1
    rng = np.random.default_rng(0)
    xs = [es.SpikeTrains(rng.uniform(0, 5, 12), rng.integers(0, 6, 12), 6) for _ in range(7)]
    recs = net.simulate(xs)
    grads = [rng.normal(size=len(r.output)) for r in recs]
    singles = [net.backward(r, gr) for r, gr in zip(recs, grads)]
    for n_threads in (1, 3):
        many = backward_many(net, recs, grads, n_threads=n_threads)
        for a, b in zip(many, singles):
            for x, y in zip(a.weights, b.weights):
                np.testing.assert_array_equal(x, y)
            for x, y in zip(a.times, b.times):
                np.testing.assert_array_equal(x, y)
        no_input = backward_many(net, recs, grads, n_threads=n_threads, input_grad=False)
        for a, b in zip(no_input, singles):
            assert a.times[0] is None
            for x, y in zip(a.weights + a.times[1:], b.weights + b.times[1:]):
                np.testing.assert_array_equal(x, y)
        assert_gradient_sum_invariant(net, recs[0], no_input[0])   # checks the levels it has


def test_empty_record_gives_zero_gradients():
    net = es.Sequential(es.Dense(2, 2), es.Dense(2, 1))
    rec = net.simulate(es.SpikeTrains.empty(2))
    g = net.backward(rec, [])
    assert all(np.all(w == 0) for w in g.weights)
    assert [t.size for t in g.times] == [0, 0, 0]


# ---------------------------------------------------------------- errors
def test_bad_arguments_raise_clear_errors():
    net = es.Sequential(es.Dense(2, 2), es.Dense(2, 1))
    net.layers[0].weight = np.full((2, 2), 5.0)
    net.layers[1].weight = np.full((1, 2), 5.0)
    rec = net.simulate(es.SpikeTrains([0.0], [0], 2))
    n = len(rec.output)
    assert n > 0
    with pytest.raises(ValueError, match="grad_out"):
        net.backward(rec, np.ones(n + 1))
    with pytest.raises(ValueError, match="grad_out"):
        net.backward(rec, np.full(n, np.nan))
    with pytest.raises(ValueError, match="kernel"):
        net.backward(rec, np.ones(n), kernel="gauss")
    with pytest.raises(ValueError, match="tau_grad"):
        net.backward(rec, np.ones(n), tau_grad=-1.0)
    with pytest.raises(TypeError, match="unknown options"):
        net.backward(rec, np.ones(n), clip=3)
    with pytest.raises(TypeError, match="input_grad"):
        net.backward(rec, np.ones(n), input_grad="no")
    with pytest.raises(TypeError, match="input_grad"):
        backward_many(net, [rec], [np.ones(n)], input_grad=None)
    with pytest.raises(ValueError, match="clamp"):
        net.backward(rec, np.ones(n), clamp=(1.0, -1.0))
    with pytest.raises(TypeError, match="rec"):
        net.backward(rec.spikes, np.ones(n))
    other = es.Sequential(es.Dense(2, 3), es.Dense(3, 1))
    with pytest.raises(ValueError, match="rec"):
        other.backward(rec, np.ones(n))
    mem = es.Sequential(es.Dense(2, 1), neuron=es.SRM(reset="membrane"))
    rec_m = mem.simulate(es.SpikeTrains([0.0], [0], 2))
    with pytest.raises(ValueError, match="grad_out"):   # membrane reset: same checks
        mem.backward(rec_m, np.ones(len(rec_m.output) + 1))
