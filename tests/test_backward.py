"""Timing backward pass: kernel == naive reference (Eq. 12-14), exactness against central
finite differences with h = d eps/dt, analytic single-neuron oracle, pooling rules,
gradient-sum invariance (via eventsnn.testing), threads, errors."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import eventsnn as es
from eventsnn.event.backward import backward, backward_many
from eventsnn.testing import assert_gradient_sum_invariant, network_inputs, networks

from . import naive_backward as naive

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                       HealthCheck.filter_too_much])


def _close(a, b, rtol=1e-9, atol=1e-12):
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape
    scale = max(np.max(np.abs(b), initial=0.0), np.max(np.abs(a), initial=0.0))
    assert np.max(np.abs(a - b), initial=0.0) <= atol + rtol * scale, (a, b)


# ---------------------------------------------------------------- kernel vs naive
@settings(max_examples=40, **SETTINGS)
@given(st.data())
def test_kernel_equals_naive_reference(data):
    t_ref = data.draw(st.sampled_from([0.0, 0.7]))
    net = data.draw(networks(neuron=es.SRM(t_ref=t_ref)))
    x = data.draw(network_inputs(net, min_events=3, max_events=30, graded=data.draw(st.booleans())))
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


def _counts(rec):
    return [s.counts() for s in rec.spikes[1:]]


def _well_conditioned(net, rec, g, gap=1e-4, min_slope=0.05):
    for li, layer in enumerate(net.layers, start=1):
        if not layer.has_neurons or len(rec.spikes[li]) == 0:
            continue
        if np.min(g.slopes[li]) < min_slope:
            return False
        tin = np.sort(rec.spikes[li - 1].times)
        for t in rec.spikes[li].times:  # no input (nor window start) within gap of a spike
            p = np.searchsorted(tin, t)
            near = tin[max(p - 1, 0):p + 1]
            if near.size and np.min(np.abs(near - t)) < gap:
                return False
    return True


def _fd_check(net, x, data, delta_w=1e-6, delta_t=1e-6, rtol=1e-5):
    rec = net.simulate(x)
    assume(len(rec.output) > 0)
    targets = np.asarray(data.draw(st.lists(st.floats(0, 20), min_size=net.n_out * 64,
                                            max_size=net.n_out * 64))).reshape(net.n_out, 64)
    assume(rec.output.counts().max() <= 64)
    loss, grad_out = _loss_and_grad(rec.output, targets)
    g = net.backward(rec, grad_out, kernel="depsilon", clamp=None)
    assume(_well_conditioned(net, rec, g))
    event(f"output spikes: {min(len(rec.output), 5)}{'+' if len(rec.output) >= 5 else ''}")
    base = _counts(rec)

    def loss_of(r):
        for a, b in zip(_counts(r), base):
            assume(np.array_equal(a, b))  # the perturbation changed no spike count
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
    # event times of every level that feeds a Dense/Conv layer (input included)
    for li, layer in enumerate(net.layers):
        if not layer.has_neurons:
            continue
        level = rec.spikes[li]
        sub = _sub_network(net, li)
        fd = np.zeros(len(level))
        for e in range(len(level)):
            vals = []
            for sgn in (1.0, -1.0):
                t = level.times.copy()
                t[e] += sgn * delta_t
                moved = es.SpikeTrains(t, level.neurons, level.n_neurons, level.values)
                r = sub.simulate(moved)
                for a, b in zip(_counts(r), base[li:]):
                    assume(np.array_equal(a, b))
                vals.append(_loss_and_grad(r.output, targets)[0])
            fd[e] = (vals[0] - vals[1]) / (2 * delta_t)
        _close(g.times[li], fd, rtol=rtol, atol=1e-9)
    return g


def _sub_network(net, start):
    """The layers net.layers[start:] as their own network (same weights)."""
    from eventsnn.network import _layer_from_spec, _layer_spec

    sub = es.Sequential(*[_layer_from_spec(_layer_spec(l)) for l in net.layers[start:]],
                        neuron=net.neuron)
    for a, b in zip(sub.layers, net.layers[start:]):
        if b.has_weight:
            a.weight = b.weight
    return sub


def _shifted(x, offset=1.0):
    return es.SpikeTrains(x.times + offset, x.neurons, x.n_neurons, x.values)


@settings(max_examples=25, **SETTINGS)
@given(st.data())
def test_depsilon_gradient_equals_finite_differences_dense(data):
    net = data.draw(networks(kinds=("dense",)))
    x = _shifted(data.draw(network_inputs(net, min_events=3, max_events=25, distinct_times=True,
                                          graded=data.draw(st.booleans()))))
    _fd_check(net, x, data)


@settings(max_examples=20, **SETTINGS)
@given(st.data())
def test_depsilon_gradient_equals_finite_differences_conv(data):
    net = data.draw(networks(kinds=("conv",), pools=(None, "max", "adjusted")))
    x = _shifted(data.draw(network_inputs(net, min_events=3, max_events=25, distinct_times=True,
                                          graded=True)))
    _fd_check(net, x, data)


# ---------------------------------------------------------------- gradient-sum invariance
@settings(max_examples=40, **SETTINGS)
@given(st.data())
def test_gradient_sum_invariant_dense_conv_max_adjusted(data):
    net = data.draw(networks(pools=(None, "max", "adjusted")))
    x = data.draw(network_inputs(net, min_events=3, max_events=30, graded=data.draw(st.booleans())))
    rec = net.simulate(x)
    kernel = data.draw(st.sampled_from(["exp", "depsilon"]))
    grad_out = data.draw(st.lists(st.floats(-2, 2), min_size=len(rec.output),
                                  max_size=len(rec.output)))
    g = net.backward(rec, grad_out, kernel=kernel)
    assert_gradient_sum_invariant(net, rec, g)
    # with every share kept (exp kernel: h > 0, so S_k <= 0 only for net inhibition)
    if kernel == "exp" and all(d == 0 for d in g.dropped):
        assert np.sum(g.times[0]) == pytest.approx(np.sum(grad_out), abs=1e-9)


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


@settings(max_examples=30, **SETTINGS)
@given(st.data())
def test_plain_average_pooling_sum_is_scaled_by_sources_over_k2(data):
    """Through plain average pooling the sum becomes sum_o g_o n_o / k^2 (n_o source events
    of pooled event o): lost whenever a pooled event has fewer than k^2 sources."""
    net = data.draw(networks(kinds=("conv",), pools=("avg",)))
    x = data.draw(network_inputs(net, min_events=3, max_events=30, graded=True))
    rec = net.simulate(x)
    grad_out = data.draw(st.lists(st.floats(0.1, 2), min_size=len(rec.output),
                                  max_size=len(rec.output)))
    g = net.backward(rec, grad_out)
    pools = [li for li, l in enumerate(net.layers, start=1) if isinstance(l, es.AvgPool2d)]
    for li in pools:
        src, _ = rec.relays[li]
        n = np.bincount(src[src >= 0], minlength=len(rec.spikes[li]))
        k2 = net.layers[li - 1].kernel_size ** 2
        assert np.sum(g.times[li - 1]) == pytest.approx(np.sum(g.times[li] * n / k2), abs=1e-12)
        if np.any((n < k2) & (g.times[li] != 0)) and np.all(g.times[li] >= 0):
            with pytest.raises(AssertionError):
                assert_gradient_sum_invariant(net, rec, g)


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
    with pytest.raises(ValueError, match="clamp"):
        net.backward(rec, np.ones(n), clamp=(1.0, -1.0))
    with pytest.raises(TypeError, match="rec"):
        net.backward(rec.spikes, np.ones(n))
    other = es.Sequential(es.Dense(2, 3), es.Dense(3, 1))
    with pytest.raises(ValueError, match="rec"):
        other.backward(rec, np.ones(n))
    mem = es.Sequential(es.Dense(2, 1), neuron=es.SRM(reset="membrane"))
    rec_m = mem.simulate(es.SpikeTrains([0.0], [0], 2))
    with pytest.raises(NotImplementedError, match="reset='membrane'"):
        mem.backward(rec_m, np.ones(len(rec_m.output)))
