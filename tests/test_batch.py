"""Batched event mode (eventsnn.event.batch) against the per-sample path, exactly.

The oracle of every test is the per-sample code: ``simulate_sample`` per record, the
per-sample losses of ``eventsnn.losses``, ``backward_many`` and a Python sum of its weight
gradients, and the per-sample EventLearner step as it was written before batching
(``_per_sample_step`` below). Results must be equal bit for bit, for any thread count.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings, HealthCheck
from hypothesis import strategies as st

import eventsnn as es
from eventsnn import encode, losses
from eventsnn.event import batch
from eventsnn.event.backward import backward_many
from eventsnn.event.forward import kernel_weights, simulate_sample
from eventsnn.event.learner import EventLearner
from eventsnn.init import init_firing_rate

from .strategies import conv_networks, dense_networks, event_input, examples, neurons

SETTINGS = dict(max_examples=examples(25), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _full_reset(net):
    """The same layers (weights re-initialised: the caller restores them), full reset."""
    n = net.neuron
    return es.Sequential(*net.layers, neuron=es.SRM(tau_m=n.tau_m, tau_s=n.tau_s, theta=n.theta,
                                                    reset="full", t_ref=n.t_ref), rng=0)


@st.composite
def nets_and_batches(draw, full=False):
    net = draw(st.one_of(dense_networks(), conv_networks()))
    if full:
        weights = [layer.weight for layer in net.layers]
        net = _full_reset(net)
        for layer, w in zip(net.layers, weights):
            if w is not None:
                layer.weight = w
    n = draw(st.integers(1, 5))
    xs = [draw(event_input(net.n_in, max_events=30, t_max=12.0)) for _ in range(n)]
    return net, xs


def _same_trains(a, b):
    assert a.n_neurons == b.n_neurons
    np.testing.assert_array_equal(a.times, b.times)
    np.testing.assert_array_equal(a.neurons, b.neurons)
    np.testing.assert_array_equal(a.values, b.values)


@settings(**SETTINGS)
@given(nets_and_batches(), st.sampled_from([None, 8.0]), st.integers(1, 3))
def test_forward_batch_equals_per_sample(case, t_end, n_threads):
    net, xs = case
    weights = [kernel_weights(layer) for layer in net.layers]
    ref = [simulate_sample(net.layers, net.neuron, x, t_end, None, weights) for x in xs]
    levels, relays = batch.simulate_batch(net, batch.Events.from_trains(xs), t_end,
                                          n_threads=n_threads)
    for rec, got in zip(ref, batch.records(levels, relays, t_end)):
        for a, b in zip(rec.spikes, got.spikes):
            _same_trains(a, b)
        for ra, rb in zip(rec.relays, got.relays):
            assert (ra is None) == (rb is None)
            if ra is not None:
                np.testing.assert_array_equal(ra[0], rb[0])
                np.testing.assert_array_equal(ra[1], rb[1])
    # and through the public API, which now runs per batch
    for rec, got in zip(ref, net.simulate(xs, t_end=t_end, n_threads=n_threads)):
        for a, b in zip(rec.spikes, got.spikes):
            _same_trains(a, b)


@settings(**SETTINGS)
@given(nets_and_batches(full=True), st.integers(1, 3), st.sampled_from(["exp", "depsilon"]),
       st.booleans(), st.sampled_from([None, (-4.0, 0.0)]), st.integers(0, 2**31 - 1))
def test_backward_batch_equals_sum_of_per_sample(case, n_threads, kernel, drop, clamp, seed):
    net, xs = case
    t_end = 10.0
    recs = net.simulate(xs, t_end=t_end, n_threads=1)
    rng = np.random.default_rng(seed)
    g_outs = [rng.normal(size=len(r.spikes[-1])) for r in recs]
    gs = backward_many(net, recs, g_outs, kernel=kernel, n_threads=1, clamp=clamp,
                       drop_nonpositive=drop, factor=0.85)
    levels, relays = batch.simulate_batch(net, batch.Events.from_trains(xs), t_end)
    code = 0 if kernel == "exp" else 1
    got, dropped = batch.backward_batch(net, levels, relays, np.concatenate(g_outs), code, 2.5,
                                        drop, clamp, 0.85, n_threads=n_threads)
    assert dropped == sum(sum(g.dropped) for g in gs)
    rows, _ = batch.backward_batch(net, levels, relays, np.concatenate(g_outs), code, 2.5,
                                   drop, clamp, 0.85, n_threads=n_threads, per_sample=True)
    for li, layer in enumerate(net.layers):
        if layer.has_weight:
            for s, g in enumerate(gs):
                np.testing.assert_array_equal(rows[li][s], g.weights[li])
    for li, layer in enumerate(net.layers):
        if not layer.has_weight:
            assert got[li] is None
            continue
        total = np.zeros(layer.weight.shape)
        for g in gs:
            total += g.weights[li]
        np.testing.assert_array_equal(got[li], total)


@settings(**SETTINGS)
@given(st.integers(1, 6), st.integers(1, 8), st.integers(0, 2**31 - 1),
       st.lists(st.floats(0, 9), min_size=1, max_size=4), st.sampled_from([1.0, 0.7]))
def test_current_encoder_batch(n, f, seed, times, gain):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, (n, f)) * (rng.uniform(size=(n, f)) < 0.6)
    ref = encode.current(X, times=times)
    got = batch.encode_current(X, np.unique(times), gain=gain).trains()
    for a, b in zip(ref, got):
        np.testing.assert_array_equal(a.times, b.times)
        np.testing.assert_array_equal(a.neurons, b.neurons)
        np.testing.assert_array_equal(a.values * gain if gain != 1.0 else a.values, b.values)


@st.composite
def outputs(draw):
    m = draw(st.integers(1, 5))
    n = draw(st.integers(1, 5))
    trains = []
    for _ in range(n):
        k = draw(st.integers(0, 8))
        rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
        t = rng.integers(0, 6, k) * 1.0 if draw(st.booleans()) else rng.uniform(0, 5, k)
        trains.append(es.SpikeTrains(t, rng.integers(0, m, k), m))
    labels = np.array([draw(st.integers(0, m - 1)) for _ in range(n)])
    return trains, labels


@settings(**SETTINGS)
@given(outputs(), st.sampled_from([5.0, 7.0]))
def test_losses_and_supervisory_spike_batch(case, t_sup):
    trains, labels = case
    ev = batch.Events.from_trains(trains)
    sup = batch.with_supervisory_spikes(ev, labels, t_sup).trains()
    rec = es.event.forward.Record(spikes=[None], t_end=t_sup)
    for tr, lab, got in zip(trains, labels, sup):
        rec.spikes = [tr]
        _same_trains(losses.with_supervisory_spike(rec, int(lab), t_sup).spikes[-1], got)
    L, g = losses.count_loss_batch(ev, labels, 5.0, 3.0, 1.0)
    Lf, gf = losses.first_spike_loss_batch(ev, labels, 0.7, t_silent=5.0)
    pred = losses.predict_counts_batch(ev)
    o = ev.offsets
    for s, (tr, lab) in enumerate(zip(trains, labels)):
        l1, g1 = losses.count_loss(tr, int(lab), 5.0, 3.0, 1.0)
        assert L[s] == l1
        np.testing.assert_array_equal(g[o[s]:o[s + 1]], g1)
        l2, g2 = losses.first_spike_loss(tr, int(lab), 0.7, t_silent=5.0)
        assert Lf[s] == l2
        np.testing.assert_array_equal(gf[o[s]:o[s + 1]], g2)
        assert pred[s] == losses.predict_counts(tr)


def _per_sample_step(learner, X, y):
    """The EventLearner step before batching: per-sample encode, simulate, loss, backward."""
    o = learner.options
    net = learner.net
    recs = net.simulate(learner.encode(X), t_end=o["t_window"], n_threads=1)
    outs = [r.spikes[-1] for r in recs]
    if o["loss"] in ("first_spike", "latency", "time_mse"):
        preds = np.array([int(np.argmin(x.first_times())) if len(x) else 0 for x in outs])
    else:
        preds = losses.predict_counts(outs)
    used, grads_out, ls = [], [], []
    for rec, label in zip(recs, y):
        label = int(label)
        if o["loss"] == "count":
            if o["supervisory"]:
                rec = losses.with_supervisory_spike(rec, label, o["t_window"])
            loss, g = losses.count_loss(rec.spikes[-1], label, o["t_window"], o["desired"],
                                        o["undesired"])
        elif o["loss"] == "time_mse":
            if o["supervisory"] and not np.any(rec.spikes[-1].neurons == label):
                rec = losses.with_supervisory_spike(rec, label, o["t_window"])
            t_false = o["t_window"] if o["target_time_false"] is None else o["target_time_false"]
            targets = np.full((net.n_out, 1), t_false)
            targets[label, 0] = o["target_time_true"]
            loss, g = losses.time_mse_loss(rec.spikes[-1], targets)
        else:
            loss, g = losses.first_spike_loss(rec.spikes[-1], label, o["first_spike_tau"],
                                              t_silent=o["t_window"])
        used.append(rec)
        grads_out.append(g)
        ls.append(loss)
    clamp = None if o["clamp"] is None else tuple(o["clamp"])
    gs = backward_many(net, used, grads_out, kernel=o["kernel"], tau_grad=o["tau_grad"],
                       n_threads=1, clamp=clamp, factor=o["factor"],
                       drop_nonpositive=o["drop_nonpositive"])
    grads = []
    for li, layer in enumerate(net.layers):
        if layer.has_weight:
            total = np.zeros(layer.weight.shape)
            for g in gs:
                total += g.weights[li]
            grads.append(total / len(gs))
        else:
            grads.append(None)
    levels = [li for li, layer in enumerate(net.layers, start=1) if layer.has_neurons]
    spikes = float(np.mean([sum(len(r.spikes[li]) for li in levels) for r in recs]))
    return float(np.mean(ls)), grads, preds, spikes


@settings(**SETTINGS)
@given(st.data(), st.sampled_from(["count", "first_spike", "latency", "time_mse"]), st.booleans(),
       st.sampled_from(["exp", "depsilon"]), st.integers(1, 3), st.sampled_from([1.0, 1.7]))
def test_learner_step_equals_per_sample(data, loss, supervisory, kernel, n_threads, gain):
    conv = data.draw(st.booleans())
    if conv:
        net = es.Sequential(es.Conv2d((1, 5, 5), 2, 3, padding=1), es.AvgPool2d(2),
                            es.Dense(8, 3), neuron=data.draw(neurons(resets=("full",))), rng=0)
    else:
        net = es.Sequential(es.Dense(9, 6), es.Dense(6, 3),
                            neuron=data.draw(neurons(resets=("full",))), rng=0)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31 - 1)))
    for layer in net.layers:
        if layer.has_weight:
            layer.weight = rng.normal(0.4, 1.0, layer.weight.shape) * 1.5
    n = data.draw(st.integers(1, 6))
    X = rng.uniform(0, 1, (n, net.n_in)) * (rng.uniform(size=(n, net.n_in)) < 0.7)
    y = rng.integers(0, 3, n)
    learner = EventLearner(net, init=False, loss=loss, supervisory=supervisory, kernel=kernel,
                           n_threads=n_threads, input_gain=gain, t_window=8.0,
                           input_times=[0.0, 1.5, 3.0])
    loss_b, grads_b, preds_b, stats = learner.loss_and_grads(X, y)
    loss_r, grads_r, preds_r, spikes_r = _per_sample_step(learner, X, y)
    assert loss_b == loss_r
    np.testing.assert_array_equal(preds_b, preds_r)
    assert stats["spikes_per_sample"] == spikes_r
    for a, b in zip(grads_b, grads_r):
        if b is None:
            assert a is None
        else:
            np.testing.assert_array_equal(a, b)
    p, st_ = learner.predict(X)
    np.testing.assert_array_equal(p, preds_r)


def test_learner_takes_spike_trains_and_checks_them():
    net = es.Sequential(es.Dense(4, 3), rng=0)
    learner = EventLearner(net, init=False)
    xs = [es.SpikeTrains([0.0, 1.0], [0, 3], 4), es.SpikeTrains([], [], 4)]
    loss, grads, preds, _ = learner.loss_and_grads(xs, np.array([0, 2]))
    assert preds.shape == (2,) and math.isfinite(loss)
    with pytest.raises(ValueError, match=r"X\[0\]"):
        learner.loss_and_grads([es.SpikeTrains([0.0], [0], 5)], [0])
    with pytest.raises(ValueError, match="samples"):
        learner.loss_and_grads(xs, np.array([0]))
    with pytest.raises(ValueError, match="labels"):
        learner.loss_and_grads(xs, np.array([0, 3]))


# ---- firing-rate initialisation --------------------------------------------------------
def _naive_init(net, inputs, target, t_end, low=0.05, high=500.0, ratio=1.01):
    """The search as specified: bisection over the whole stack, per sample, no shortcuts."""
    scales = []
    for li, layer in enumerate(net.layers, start=1):
        if not layer.has_weight:
            scales.append(None)
            continue
        w0 = layer.weight.copy()
        lo, hi = low, high

        def rate(s):
            layer.weight = w0 * s
            ws = [kernel_weights(lay) for lay in net.layers[:li]]
            total = sum(len(simulate_sample(net.layers[:li], net.neuron, x, t_end, None,
                                            ws).spikes[-1]) for x in inputs)
            return total / (len(inputs) * layer.n_out)

        while hi / lo >= ratio:
            mid = math.sqrt(lo * hi)
            if rate(mid) < target:
                lo = mid
            else:
                hi = mid
        layer.weight = w0 * hi
        scales.append(hi)
    return scales


@settings(max_examples=examples(10), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(nets_and_batches(), st.sampled_from([0.5, 1.5]), st.integers(1, 2))
def test_init_equals_naive_search(case, target, n_threads):
    net, xs = case
    w = [layer.weight.copy() if layer.has_weight else None for layer in net.layers]
    expected = _naive_init(net, xs, target, 10.0)
    for layer, w0 in zip(net.layers, w):
        if w0 is not None:
            layer.weight = w0
    scales, rates = init_firing_rate(net, xs, target=target, t_end=10.0, n_threads=n_threads)
    assert scales == expected
    recs = net.simulate(xs, t_end=10.0)
    for li, layer in enumerate(net.layers, start=1):
        if layer.has_weight:
            assert rates[li - 1] == sum(len(r.spikes[li]) for r in recs) / (len(xs) * layer.n_out)


def test_init_stops_at_adjacent_floats():
    """ratio = 1 + 2**-52 cannot be reached by a geometric bisection of floats: the search
    stops when the bracket holds adjacent floats instead of looping for ever."""
    net = es.Sequential(es.Dense(5, 4), rng=3)
    net.layers[0].weight = np.abs(net.layers[0].weight) + 0.1
    rng = np.random.default_rng(0)
    xs = [es.SpikeTrains(rng.uniform(0, 5, 10), rng.integers(0, 5, 10), 5) for _ in range(3)]
    w0 = net.layers[0].weight.copy()
    (scale,), (rate,) = init_firing_rate(net, xs, target=1.0, t_end=10.0, ratio=1 + 2 ** -52)
    assert rate >= 1.0
    below = np.nextafter(scale, 0.0)
    net.layers[0].weight = w0 * below
    recs = net.simulate(xs, t_end=10.0)
    assert sum(len(r.spikes[1]) for r in recs) / (3 * 4) < 1.0


def test_per_layer_and_lif_neurons_run_per_batch():
    """Per-layer neurons (SRM and LIF) go through simulate_batch as through simulate_sample."""
    rng = np.random.default_rng(5)
    net = es.Sequential(es.Dense(6, 5), es.Dense(5, 4), es.Dense(4, 3), rng=1,
                        neurons=[es.SRM(tau_m=4.0, tau_s=1.0), es.LIF(tau_m=3.0), None])
    for layer in net.layers:
        layer.weight = np.abs(layer.weight) * 3
    xs = [es.SpikeTrains(rng.uniform(0, 8, 25), rng.integers(0, 6, 25), 6) for _ in range(4)]
    weights = [kernel_weights(layer) for layer in net.layers]
    ref = [simulate_sample(net.layers, net.layer_neurons, x, 10.0, None, weights) for x in xs]
    assert sum(len(r.spikes[-1]) for r in ref) > 0
    for n_threads in (1, 2):
        for rec, got in zip(ref, net.simulate(xs, t_end=10.0, n_threads=n_threads)):
            for a, b in zip(rec.spikes, got.spikes):
                _same_trains(a, b)


@st.composite
def conv_batches(draw):
    """A Conv2d layer (of conv_networks), its neuron, and a batch mixing recorded-like events
    and frames (every pixel of a sparse image at a few times: the grouped kernel's case)."""
    net = draw(conv_networks())
    layer, nrn = net.layers[0], net.layer_neurons[0]
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    xs = []
    for _ in range(draw(st.integers(1, 5))):
        if rng.random() < 0.5:
            xs.append(draw(event_input(layer.n_in, max_events=40, t_max=12.0)))
        else:
            on = np.flatnonzero(rng.random(layer.n_in) < 0.6)
            times = np.sort(rng.choice([0.0, 1.0, 1.5, 3.0, 4.0], int(rng.integers(1, 5)),
                                       replace=False))
            xs.append(es.SpikeTrains(np.repeat(times, on.size), np.tile(on, times.size),
                                     layer.n_in, np.tile(rng.uniform(0.1, 2.0, on.size),
                                                         times.size)))
    return layer, nrn, xs


@settings(**SETTINGS)
@given(conv_batches(), st.sampled_from([8.0, math.inf]), st.sampled_from([3, 10**6]))
def test_conv_samples_equal_per_sample_run_conv(case, t_end, max_spikes):
    """The numba loop over a batch's samples (_conv_batch: _conv_samples) against the Python
    loop that calls _conv.run_conv per sample (_conv_batch_python), bit for bit: spikes,
    offsets and the first sample that exceeded max_spikes."""
    layer, nrn, xs = case
    ev = batch.Events.from_trains(xs)
    WT = batch._conv.transposed_weight(layer, kernel_weights(layer))
    args = (ev.times, ev.neurons, ev.values, ev.offsets, layer, WT, *nrn.as_tuple(), t_end,
            max_spikes)
    got = batch._conv_batch(*args)
    want = batch._conv_batch_python(*args)
    for a, b in zip(got[:3], want[:3]):
        np.testing.assert_array_equal(a, b)
    assert got[3] == want[3]
