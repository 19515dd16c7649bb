"""The group-interval Conv2d kernel ``_grouped.grouped_conv_layer`` against the reference
engine and ``_engine.sparse_layer``; its solver ``_crossing.interval_crossing`` against
``first_crossing``; the dispatch of ``_conv.run_conv``; training gradients with either kernel.

The kernel solves each crossing from the state at the group time rather than from the last
lower bound, so spike times agree with the other kernels to the solver's tolerance (the
1e-9 ms of the fast-vs-reference tests), not bit for bit. Cases: random geometries
(strides, paddings, kernels meeting only padding), few input times carrying many events
(an input neuron sometimes twice at one time), both weight and value signs, both resets,
refractory periods, silences that move the common time reference, several t_end.
"""
import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventsnn as es
from eventsnn.event import _conv, _engine
from eventsnn.event._crossing import first_crossing, interval_crossing, interval_crossings
from eventsnn.event._engine import EPOCH_EXP
from eventsnn.event.forward import kernel_weights
from eventsnn.event.learner import EventLearner
from eventsnn.event.reference import simulate_reference

from .strategies import TAUS, examples

TOL_MS = 1e-9  # as tests/test_engine_vs_reference.py
SEEN = Counter()


def _case(seed):
    """(net of one Conv2d layer, input SpikeTrains, t_end) with a few frames of many events."""
    rng = np.random.default_rng(seed)
    C_in = int(rng.integers(1, 4))
    H, W = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    pad = int(rng.integers(0, 3))
    k = max(1, min(int(rng.integers(1, min(H, W) + 2 * pad + 1)), 5))
    stride = int(rng.integers(1, 4))
    layer = es.Conv2d((C_in, H, W), int(rng.integers(1, 5)), k, stride=stride, padding=pad)
    tau_m, tau_s = TAUS[rng.integers(len(TAUS))]
    nrn = es.SRM(tau_m, tau_s, float(rng.choice([0.5, 1.0, 2.0])),
                 str(rng.choice(["full", "membrane"])), float(rng.choice([0.0, 0.7, 2.0])))
    net = es.Sequential(layer, neuron=nrn)
    layer.weight = rng.normal(0.6, 1.0, layer.weight_shape) * float(rng.choice([1.0, 2.0, 4.0]))
    n_in = C_in * H * W
    kind = rng.choice(["ones", "positive", "signed"])
    times, idx, vals = [], [], []
    t = 0.0
    for _ in range(int(rng.integers(1, 7))):
        if idx and rng.random() < 0.3:  # the previous frame again (the "current" encoder)
            idx.append(idx[-1])
            vals.append(vals[-1])
            times.append(np.full(idx[-1].size, t))
            t += float(rng.choice([1.0, 0.5, 2.0, 4.0, 300.0]))
            continue
        m = int(rng.integers(1, 2 * n_in + 1))  # an input neuron may come twice in a frame
        times.append(np.full(m, t))
        idx.append(rng.integers(0, n_in, m))
        v = np.ones(m) if kind == "ones" else rng.uniform(0.2, 2.0, m)
        if kind == "signed":
            v *= rng.choice([-1.0, 1.0], m, p=[0.3, 0.7])
        vals.append(v)
        t += float(rng.choice([1.0, 0.5, 2.0, 4.0, 300.0]))
    x = es.SpikeTrains(np.concatenate(times), np.concatenate(idx), n_in, np.concatenate(vals))
    t_end = float(rng.choice([np.inf, t, 3.0, 10.0]))
    return net, x, t_end


def _args(net):
    layer = net.layers[0]
    w = kernel_weights(layer)
    return layer, w, _conv.transposed_weight(layer, w), net.neuron.as_tuple()


def _grouped_run(net, x, t_end, max_spikes):
    layer, _, WT, (tau_m, tau_s, theta, mreset, t_ref) = _args(net)
    return _conv.run_conv(layer, WT, x.times, x.neurons, x.values, tau_m, tau_s, theta, mreset,
                          t_ref, t_end, max_spikes, kernel="grouped")


def _sparse_run(net, x, t_end, max_spikes):
    layer, w, _, (tau_m, tau_s, theta, mreset, t_ref) = _args(net)
    indptr, targets, _ = layer.connectivity()
    return _engine.sparse_layer(x.times, x.neurons, x.values, layer.n_out, indptr, targets, w,
                                tau_m, tau_s, theta, mreset, t_ref, t_end, max_spikes)


def assert_same_spikes(t, i, t_ref, i_ref):
    """The same spikes, times within TOL_MS, compared neuron by neuron: spikes of different
    neurons at times equal to within rounding may come in either order."""
    assert t.size == t_ref.size
    a = np.lexsort((t, i))
    b = np.lexsort((t_ref, i_ref))
    np.testing.assert_array_equal(i[a], i_ref[b])
    np.testing.assert_allclose(t[a], t_ref[b], rtol=0, atol=TOL_MS)


def _tally(net, x, t_end, spikes):
    layer = net.layers[0]
    nrn = net.neuron
    n_in = layer.n_in
    t_u, counts = np.unique(x.times[x.times <= t_end], return_counts=True)
    SEEN["examples"] += 1
    SEEN["spikes"] += spikes.size > 0
    SEEN["several spikes of one neuron"] += bool(spikes.size and
                                                 np.bincount(spikes).max() > 1)
    SEEN["membrane reset, t_ref > 0, spikes"] += (nrn.reset == "membrane" and nrn.t_ref > 0
                                                  and spikes.size > 0)
    SEEN["full reset, t_ref > 0, spikes"] += (nrn.reset == "full" and nrn.t_ref > 0
                                              and spikes.size > 0)
    SEEN["dense group (image path)"] += bool(np.any(4 * counts >= n_in))
    # a dense frame repeated at the next time: its correlation is reused
    g_start = np.searchsorted(x.times, t_u)
    frames = [(x.neurons[a:a + m].tolist(), x.values[a:a + m].tolist())
              for a, m in zip(g_start, counts)]
    SEEN["dense frame repeated"] += any(4 * counts[g] >= n_in and frames[g] == frames[g - 1]
                                        for g in range(1, len(frames)))
    SEEN["sparse group (scatter path)"] += bool(np.any(4 * counts < n_in))
    SEEN["reference time moves"] += bool(t_u.size and t_u[-1] - t_u[0]
                                         > EPOCH_EXP * min(nrn.tau_m, nrn.tau_s))
    SEEN["stride > 1"] += layer.stride > 1
    SEEN["padding"] += layer.padding > 0


@settings(max_examples=examples(50), deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_grouped_matches_reference_engine(seed):
    net, x, t_end = _case(seed)
    t, i, exceeded = _grouped_run(net, x, t_end, 100_000)
    assert not exceeded
    ref = simulate_reference(net, x, t_end=None if t_end == np.inf else t_end)[-1]
    assert_same_spikes(t, i, ref.times, ref.neurons)
    _tally(net, x, t_end, i)


@settings(max_examples=examples(150), deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_grouped_matches_sparse_layer(seed):
    """Against the CSR kernel (itself checked against the reference), on more cases."""
    net, x, t_end = _case(seed)
    t0, i0, ex0 = _sparse_run(net, x, t_end, 100_000)
    t1, i1, ex1 = _grouped_run(net, x, t_end, 100_000)
    assert not ex0 and not ex1
    assert_same_spikes(t1, i1, t0, i0)
    # sorted by (time, neuron)
    assert np.all((np.diff(t1) > 0) | ((np.diff(t1) == 0) & (np.diff(i1) > 0)))
    _tally(net, x, t_end, i1)


@settings(max_examples=examples(60), deadline=None)
@given(seed=st.integers(0, 2**32 - 1), budget=st.integers(0, 6))
def test_grouped_spike_budget(seed, budget):
    """exceeded exactly when more than max_spikes spikes are due (as sparse_layer says),
    never more spikes than the budget, and all of them when the budget is not exceeded."""
    net, x, t_end = _case(seed)
    t0, i0, ex0 = _sparse_run(net, x, t_end, budget)
    t1, i1, ex1 = _grouped_run(net, x, t_end, budget)
    assert ex1 == ex0
    if ex1:
        assert t1.size <= budget
        full_t, full_i, _ = _grouped_run(net, x, t_end, 100_000)
        assert full_t.size > budget
    else:
        assert_same_spikes(t1, i1, t0, i0)


def test_grouped_cases_not_vacuous():
    if not SEEN:
        test_grouped_matches_sparse_layer()
    n = SEEN["examples"]
    for key, frac in {"spikes": 0.5, "several spikes of one neuron": 0.1,
                      "membrane reset, t_ref > 0, spikes": 0.05,
                      "full reset, t_ref > 0, spikes": 0.05, "dense group (image path)": 0.5,
                      "dense frame repeated": 0.2,
                      "sparse group (scatter path)": 0.1, "reference time moves": 0.1,
                      "stride > 1": 0.3, "padding": 0.3}.items():
        assert SEEN[key] >= frac * n, (key, SEEN[key], n)


def test_grouped_no_input_and_input_after_t_end():
    net, x, _ = _case(1)
    t, i, ex = _grouped_run(net, es.SpikeTrains([], [], x.n_neurons), math.inf, 10)
    assert t.size == 0 and i.size == 0 and not ex
    t, i, ex = _grouped_run(net, x, -1.0, 10)
    assert t.size == 0 and not ex


@settings(max_examples=examples(300), deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_interval_crossing_matches_first_crossing(seed):
    """The same crossing (or none) as first_crossing on [0, span], to the tolerance."""
    rng = np.random.default_rng(seed)
    tau_m, tau_s = TAUS[rng.integers(len(TAUS))]
    c = tau_m / (tau_m - tau_s)
    theta = float(rng.choice([0.5, 1.0, 2.0]))
    M, S = rng.normal(0.0, 3.0, 2) * float(rng.choice([1.0, 10.0]))
    span = float(rng.choice([0.3, 1.0, 5.0, 40.0, np.inf]))
    a, b = math.exp(-span / tau_m), math.exp(-span / tau_s)
    s0 = first_crossing(M, S, 0.0, span, c, tau_m, tau_s, theta)
    s1 = interval_crossing(M, S, span, a, b, c, tau_m, tau_s, theta)
    if math.isinf(s0):
        assert math.isinf(s1)
    else:
        assert abs(s1 - s0) <= 1e-11
        u = c * (M * math.exp(-s1 / tau_m) - S * math.exp(-s1 / tau_s))
        if s1 > 0.0:  # else u(0) >= theta already
            assert u == pytest.approx(theta, abs=1e-9 * abs(c) * (abs(M) + abs(S)))


@settings(max_examples=examples(100), deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 40))
def test_interval_crossings_equal_interval_crossing(seed, n):
    """The lockstep solver of a group's candidates gives interval_crossing's result for every
    neuron, bit for bit: rises through theta, peaks inside the span that reach it or not,
    u(0) at or above theta, grazing peaks, any span (also inf)."""
    rng = np.random.default_rng(seed)
    tau_m, tau_s = TAUS[rng.integers(len(TAUS))]
    c = tau_m / (tau_m - tau_s)
    theta = float(rng.choice([0.5, 1.0, 2.0]))
    span = float(rng.choice([0.3, 1.0, 5.0, 40.0, np.inf]))
    a, b = math.exp(-span / tau_m), math.exp(-span / tau_s)
    M = rng.normal(0.0, 3.0, n) * float(rng.choice([1.0, 10.0]))
    S = np.where(rng.random(n) < 0.3, M, rng.normal(0.0, 3.0, n))
    graze = rng.random(n) < 0.2   # the peak M e^{-s*/tau_m} of u = M eps near theta
    M[graze] = S[graze] = theta / (c * (math.exp(-_peak(tau_m, tau_s) / tau_m)
                                        - math.exp(-_peak(tau_m, tau_s) / tau_s))) \
        * (1.0 + rng.choice([-1e-9, 0.0, 1e-9], graze.sum()))
    out = np.full(n + 3, -1.0)
    work = [np.empty(n + 3) for _ in range(3)]
    interval_crossings(M, S, n, span, a, b, c, tau_m, tau_s, theta, out, *work,
                       np.empty(n + 3, np.int64))
    want = [interval_crossing(M[q], S[q], span, a, b, c, tau_m, tau_s, theta) for q in range(n)]
    np.testing.assert_array_equal(out[:n], want)
    assert np.all(out[n:] == -1.0)


def _peak(tau_m, tau_s):
    """Time (ms) of the peak of eps(s) = e^{-s/tau_m} - e^{-s/tau_s}."""
    return math.log(tau_m / tau_s) / (1.0 / tau_s - 1.0 / tau_m)


def test_interval_crossing_cases():
    """Hand-made cases: a crossing on the rise, a peak inside the span that reaches theta
    while u(span) is below it, a peak that stays below, and u(0) at theta."""
    tau_m, tau_s, theta = 5.0, 2.5, 1.0
    c = tau_m / (tau_m - tau_s)

    def both(M, S, span):
        a, b = math.exp(-span / tau_m), math.exp(-span / tau_s)
        return (first_crossing(M, S, 0.0, span, c, tau_m, tau_s, theta),
                interval_crossing(M, S, span, a, b, c, tau_m, tau_s, theta))

    s0, s1 = both(3.0, 3.0, 2.0)  # u = 3 eps(s): rises through theta early
    assert 0 < s1 < 2.0 and abs(s1 - s0) <= 1e-12
    s0, s1 = both(3.0, 3.0, 40.0)  # u(40) ~ 0: only the peak reaches theta
    assert 0 < s1 < 5.0 and abs(s1 - s0) <= 1e-12
    assert both(1.0, 1.0, 40.0) == (math.inf, math.inf)  # peak 0.5 < theta
    assert both(2.0, 1.5, 1.0) == (0.0, 0.0)  # u(0) = c (M - S) = 1 = theta


# ---- dispatch -----------------------------------------------------------------------
def _digits_like(n_times=5):
    """The digits encoding: every nonzero pixel of an 8x8 image at each of a few times."""
    rng = np.random.default_rng(0)
    img = np.where(rng.random(64) < 0.5, rng.uniform(0.05, 1.0, 64), 0.0)
    nz = np.flatnonzero(img)
    t = np.repeat(np.arange(n_times, dtype=float), nz.size)
    return es.SpikeTrains(t, np.tile(nz, n_times), 64, np.tile(img[nz], n_times))


def test_dispatch_picks_grouped_for_frames_and_event_kernel_for_recordings():
    layer = es.Conv2d((1, 8, 8), 16, 3, padding=1)
    net = es.Sequential(layer, neuron=es.SRM(), rng=0)
    x = _digits_like()
    assert _conv.prefers_grouped(layer, x.times, 10.0)
    rng = np.random.default_rng(1)
    rec = np.sort(rng.uniform(0, 100, 300))  # recorded events: one per time
    assert not _conv.prefers_grouped(layer, rec, math.inf)
    # one event per group: the event kernel even where every event reaches every neuron
    tiny = es.Conv2d((1, 1, 1), 1, 1)
    es.Sequential(tiny, rng=0)
    assert not _conv.prefers_grouped(tiny, np.array([0.0, 1.0]), math.inf)
    assert _conv.prefers_grouped(tiny, np.array([0.0, 0.0, 1.0, 1.0]), math.inf)
    assert not _conv.prefers_grouped(layer, x.times, -1.0)  # nothing before t_end
    # what "auto" runs is bit for bit the chosen kernel
    _, _, WT, (tau_m, tau_s, theta, mreset, t_ref) = _args(net)
    for st_, t_end, kind in ((x, 10.0, "grouped"),
                             (es.SpikeTrains(rec, rng.integers(0, 64, rec.size), 64),
                              math.inf, "event")):
        run = [_conv.run_conv(layer, WT, st_.times, st_.neurons, st_.values, tau_m, tau_s,
                              theta, mreset, t_ref, t_end, 100_000, kernel=kn)
               for kn in ("auto", kind)]
        for a, b in zip(run[0][:2], run[1][:2]):
            np.testing.assert_array_equal(a, b)


def test_run_conv_rejects_unknown_kernel():
    layer = es.Conv2d((1, 2, 2), 1, 1)
    es.Sequential(layer, rng=0)
    with pytest.raises(ValueError, match="kernel"):
        _conv.run_conv(layer, np.zeros((1, 1, 1, 1)), np.zeros(0), np.zeros(0, np.int64),
                       np.zeros(0), 5.0, 3.0, 1.0, False, 0.0, 10.0, 10, kernel="fast")


def test_training_gradients_unchanged(monkeypatch):
    """One batch of digits-like samples through 16C3p1-P2-10 (the digits CNN): loss and
    weight gradients with the grouped kernel equal those with the event kernel to the
    tolerance the spike times carry."""
    rng = np.random.default_rng(0)
    X = np.where(rng.random((12, 64)) < 0.5, rng.uniform(0.05, 1.0, (12, 64)), 0.0)
    y = rng.integers(0, 10, 12)

    def grads(ratio):
        monkeypatch.setattr(_conv, "GROUPED_COST_RATIO", ratio)
        net = es.Sequential(es.Conv2d((1, 8, 8), 16, 3, padding=1), es.AvgPool2d(2),
                            es.Flatten(), es.Dense(256, 10), neuron=es.SRM(), rng=0)
        learner = EventLearner(net, rng=0, n_threads=1)
        learner.initialise(X)
        ev = learner.encode_batch(X)
        used = _conv.prefers_grouped(net.layers[0], ev.times[:ev.offsets[1]], 10.0)
        loss, g, _, _ = learner.loss_and_grads(X, y)
        return used, loss, g

    used_e, loss_e, g_e = grads(0.0)
    used_g, loss_g, g_g = grads(math.inf)
    assert used_g and not used_e
    assert loss_g == pytest.approx(loss_e, rel=1e-9)
    for a, b in zip(g_g, g_e):
        if a is None:
            assert b is None
            continue
        assert np.abs(b).max() > 0
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9 * np.abs(b).max())


@pytest.mark.parametrize("reset", ["full", "membrane"])
def test_grouped_many_spikes_at_one_time(reset):
    """Uniform frames: the interior positions of a channel see the same input, so their
    spikes coincide (many ties of the (time, neuron) order); as sparse_layer."""
    layer = es.Conv2d((1, 12, 12), 4, 3, padding=1)
    net = es.Sequential(layer, neuron=es.SRM(reset=reset), rng=0)
    layer.weight = np.abs(layer.weight) + 0.3
    x = es.SpikeTrains(np.repeat([0.0, 1.0, 2.0], 144), np.tile(np.arange(144), 3), 144)
    t0, i0, _ = _sparse_run(net, x, 10.0, 100_000)
    t1, i1, _ = _grouped_run(net, x, 10.0, 100_000)
    assert t0.size > 500 and np.unique(t0).size < t0.size / 4
    np.testing.assert_array_equal(i1, i0)
    np.testing.assert_allclose(t1, t0, rtol=0, atol=TOL_MS)
