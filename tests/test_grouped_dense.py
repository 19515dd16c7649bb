"""The group-interval Dense kernel ``_grouped.grouped_dense_layer`` against the reference
engine and the window kernel ``_engine.dense_layer``; the dispatch of ``_dense.run_dense``
(cost model, thread counts); training loss and gradients with either kernel.

As for the Conv2d version (tests/test_grouped.py), spike times agree with the other kernels
to the solver's tolerance, 1e-9 ms, compared neuron by neuron. Cases: few input times
carrying many events (an input neuron sometimes twice at one time), repeated frames (the
"current" encoder; the group's input reused), both weight and value signs, both resets,
refractory periods, silences that move the common time reference, several t_end.
"""
import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventsnn as es
from eventsnn.event import _dense, _engine
from eventsnn.event import batch as _batch
from eventsnn.event._engine import EPOCH_EXP
from eventsnn.event.forward import kernel_weights
from eventsnn.event.learner import EventLearner
from eventsnn.event.reference import simulate_reference

from .strategies import TAUS, examples
from .test_grouped import _digits_like, assert_same_spikes

SEEN = Counter()


def _case(seed):
    """(net of one Dense layer, input SpikeTrains, t_end) with a few groups of many events."""
    rng = np.random.default_rng(seed)
    n_in, n_out = int(rng.integers(1, 20)), int(rng.integers(1, 30))
    layer = es.Dense(n_in, n_out)
    tau_m, tau_s = TAUS[rng.integers(len(TAUS))]
    nrn = es.SRM(tau_m, tau_s, float(rng.choice([0.5, 1.0, 2.0])),
                 str(rng.choice(["full", "membrane"])), float(rng.choice([0.0, 0.7, 2.0])))
    net = es.Sequential(layer, neuron=nrn)
    layer.weight = (rng.normal(0.3, 1.0, (n_out, n_in)) * float(rng.choice([1.0, 2.0, 4.0]))
                    / math.sqrt(n_in))
    kind = rng.choice(["ones", "positive", "signed"])
    times, idx, vals = [], [], []
    t = 0.0
    for _ in range(int(rng.integers(1, 7))):
        if idx and rng.random() < 0.3:  # the previous frame again (the "current" encoder)
            idx.append(idx[-1])
            vals.append(vals[-1])
        else:
            m = int(rng.integers(1, 2 * n_in + 1))  # an input neuron may come twice
            idx.append(rng.integers(0, n_in, m))
            v = np.ones(m) if kind == "ones" else rng.uniform(0.2, 2.0, m)
            if kind == "signed":
                v *= rng.choice([-1.0, 1.0], m, p=[0.3, 0.7])
            vals.append(v)
        times.append(np.full(idx[-1].size, t))
        t += float(rng.choice([1.0, 0.5, 2.0, 4.0, 300.0]))
    x = es.SpikeTrains(np.concatenate(times), np.concatenate(idx), n_in, np.concatenate(vals))
    t_end = float(rng.choice([np.inf, t, 3.0, 10.0]))
    return net, x, t_end


def _run(net, x, t_end, max_spikes, kernel):
    WT = np.ascontiguousarray(kernel_weights(net.layers[0]), dtype=np.float64)
    tau_m, tau_s, theta, mreset, t_ref = net.neuron.as_tuple()
    return _dense.run_dense(WT, x.times, x.neurons, x.values, tau_m, tau_s, theta, mreset,
                            t_ref, t_end, max_spikes, kernel=kernel)


def _tally(net, x, t_end, spikes):
    nrn = net.neuron
    t_u, counts = np.unique(x.times[x.times <= t_end], return_counts=True)
    SEEN["examples"] += 1
    SEEN["spikes"] += spikes.size > 0
    SEEN["several spikes of one neuron"] += bool(spikes.size and np.bincount(spikes).max() > 1)
    SEEN["membrane reset, t_ref > 0, spikes"] += (nrn.reset == "membrane" and nrn.t_ref > 0
                                                  and spikes.size > 0)
    SEEN["full reset, t_ref > 0, spikes"] += (nrn.reset == "full" and nrn.t_ref > 0
                                              and spikes.size > 0)
    g_start = np.searchsorted(x.times, t_u)
    frames = [(x.neurons[a:a + m].tolist(), x.values[a:a + m].tolist())
              for a, m in zip(g_start, counts)]
    SEEN["frame repeated"] += any(frames[g] == frames[g - 1] for g in range(1, len(frames)))
    SEEN["groups of several events"] += bool(np.any(counts > 1))
    SEEN["reference time moves"] += bool(t_u.size and t_u[-1] - t_u[0]
                                         > EPOCH_EXP * min(nrn.tau_m, nrn.tau_s))


@settings(max_examples=examples(50), deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_grouped_dense_matches_reference_engine(seed):
    net, x, t_end = _case(seed)
    t, i, exceeded = _run(net, x, t_end, 100_000, "grouped")
    assert not exceeded
    ref = simulate_reference(net, x, t_end=None if t_end == np.inf else t_end)[-1]
    assert_same_spikes(t, i, ref.times, ref.neurons)
    _tally(net, x, t_end, i)


@settings(max_examples=examples(150), deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_grouped_dense_matches_window_kernel(seed):
    """Against ``_engine.dense_layer`` (itself checked against the reference), more cases."""
    net, x, t_end = _case(seed)
    t0, i0, ex0 = _run(net, x, t_end, 100_000, "window")
    t1, i1, ex1 = _run(net, x, t_end, 100_000, "grouped")
    assert not ex0 and not ex1
    assert_same_spikes(t1, i1, t0, i0)
    assert np.all((np.diff(t1) > 0) | ((np.diff(t1) == 0) & (np.diff(i1) > 0)))
    _tally(net, x, t_end, i1)


@settings(max_examples=examples(60), deadline=None)
@given(seed=st.integers(0, 2**32 - 1), budget=st.integers(0, 6))
def test_grouped_dense_spike_budget(seed, budget):
    """exceeded exactly when the window kernel says so, never more spikes than the budget,
    all of them when it is not exceeded."""
    net, x, t_end = _case(seed)
    t0, i0, ex0 = _run(net, x, t_end, budget, "window")
    t1, i1, ex1 = _run(net, x, t_end, budget, "grouped")
    assert ex1 == ex0
    if ex1:
        assert t1.size <= budget
        assert _run(net, x, t_end, 100_000, "grouped")[0].size > budget
    else:
        assert_same_spikes(t1, i1, t0, i0)


def test_grouped_dense_cases_not_vacuous():
    if not SEEN:
        test_grouped_dense_matches_window_kernel()
    n = SEEN["examples"]
    for key, frac in {"spikes": 0.5, "several spikes of one neuron": 0.1,
                      "membrane reset, t_ref > 0, spikes": 0.05,
                      "full reset, t_ref > 0, spikes": 0.05, "frame repeated": 0.2,
                      "groups of several events": 0.5, "reference time moves": 0.1}.items():
        assert SEEN[key] >= frac * n, (key, SEEN[key], n)


def test_grouped_dense_no_input_and_input_after_t_end():
    net, x, _ = _case(1)
    t, i, ex = _run(net, es.SpikeTrains([], [], x.n_neurons), math.inf, 10, "grouped")
    assert t.size == 0 and i.size == 0 and not ex
    t, i, ex = _run(net, x, -1.0, 10, "grouped")
    assert t.size == 0 and not ex


@pytest.mark.parametrize("reset", ["full", "membrane"])
def test_grouped_dense_many_spikes_at_one_time(reset):
    """Neurons with equal weight columns spike together (ties of the (time, neuron) order)."""
    layer = es.Dense(8, 40)
    net = es.Sequential(layer, neuron=es.SRM(reset=reset), rng=0)
    layer.weight = np.tile(np.abs(layer.weight[:4]) + 0.3, (10, 1))
    x = es.SpikeTrains(np.repeat([0.0, 1.0, 2.0], 8), np.tile(np.arange(8), 3), 8)
    t0, i0, _ = _run(net, x, 10.0, 100_000, "window")
    t1, i1, _ = _run(net, x, 10.0, 100_000, "grouped")
    assert t0.size > 40 and np.unique(t0).size < t0.size / 4
    np.testing.assert_array_equal(i1, i0)
    np.testing.assert_allclose(t1, t0, rtol=0, atol=1e-9)


# ---- dispatch -----------------------------------------------------------------------
def test_dispatch_picks_grouped_for_digits_and_window_kernel_for_one_event_groups():
    x = _digits_like()
    assert _dense.prefers_grouped_dense(100, x.times, 10.0)
    assert not _dense.prefers_grouped_dense(100, x.times, -1.0)  # nothing before t_end
    rng = np.random.default_rng(1)
    rec = np.sort(rng.uniform(0, 100, 300))  # one event per time (a hidden layer's spikes)
    assert not _dense.prefers_grouped_dense(100, rec, math.inf)
    assert not _dense.prefers_grouped_dense(1, np.array([0.0, 1.0]), math.inf)
    assert _dense.prefers_grouped_dense(1, np.array([0.0, 0.0, 1.0, 1.0]), math.inf)
    # what "auto" runs is bit for bit the chosen kernel
    layer = es.Dense(64, 100)
    net = es.Sequential(layer, neuron=es.SRM(), rng=0)
    layer.weight = layer.weight * 4.0
    for st_, t_end, kind in ((x, 10.0, "grouped"),
                             (es.SpikeTrains(rec, rng.integers(0, 64, rec.size), 64),
                              math.inf, "window")):
        a, b = _run(net, st_, t_end, 100_000, "auto"), _run(net, st_, t_end, 100_000, kind)
        assert a[0].size > 0
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    # the per-sample and the batched forward use it too: their spikes are the grouped kernel's
    g = _run(net, x, 10.0, 100_000, "grouped")
    rec = net.simulate([x], t_end=10.0)[0]
    np.testing.assert_array_equal(rec.spikes[-1].times, g[0])
    levels, _ = _batch.simulate_batch(net, _batch.Events.from_trains([x]), 10.0)
    np.testing.assert_array_equal(levels[-1].times, g[0])


def test_grouped_samples_is_the_per_sample_cost_model():
    """The batch's picks (one call) equal ``prefers_grouped_dense`` sample by sample, also
    for a batch that starts at a later sample (offsets not from 0)."""
    rng = np.random.default_rng(3)
    x = _digits_like()
    trains = [x, es.SpikeTrains(np.sort(rng.uniform(0, 20, 50)), rng.integers(0, 64, 50), 64),
              es.SpikeTrains([], [], 64), x, es.SpikeTrains([1.0, 1.0], [0, 1], 64)]
    ev = _batch.Events.from_trains(trains)
    for t_end in (10.0, 0.5, math.inf):
        for start in (0, 1, 3):
            off = ev.offsets[start:]
            picks = _dense.grouped_samples(ev.times, off, 100, t_end)
            want = [_dense.prefers_grouped_dense(100, ev.times[off[s]:off[s + 1]], t_end)
                    for s in range(off.size - 1)]
            np.testing.assert_array_equal(picks, want)
    assert list(_dense.grouped_samples(ev.times, ev.offsets, 100, 10.0)) == [
        True, False, False, True, True]


def test_run_dense_rejects_unknown_kernel():
    with pytest.raises(ValueError, match="kernel"):
        _dense.run_dense(np.zeros((1, 1)), np.zeros(0), np.zeros(0, np.int64), np.zeros(0), 5.0,
                         3.0, 1.0, False, 0.0, 10.0, 10, kernel="fast")


@pytest.mark.parametrize("grouped", [True, False])
def test_same_result_for_any_thread_count(grouped):
    """A wide layer (split over threads by the window kernel): the dispatch depends on the
    input only, so 1 and 3 threads give the same spikes bit for bit."""
    rng = np.random.default_rng(2)
    n_out = max(_engine.THREADS_MIN_OUT, 600)
    WT = np.ascontiguousarray(rng.normal(0.05, 0.3, (64, n_out)))
    if grouped:
        x = _digits_like()
    else:
        t = np.sort(rng.uniform(0, 20, 200))
        x = es.SpikeTrains(t, rng.integers(0, 64, t.size), 64)
    assert _dense.prefers_grouped_dense(n_out, x.times, 30.0) == grouped
    runs = [_dense.run_dense(WT, x.times, x.neurons, x.values, 5.0, 2.5, 1.0, False, 0.0, 30.0,
                             1_000_000, n_threads=k) for k in (1, 3)]
    assert runs[0][0].size > 0
    for a, b in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(a, b)


def test_training_gradients_unchanged(monkeypatch):
    """One batch of digits through 64-100-10 (the digits FC row): loss and weight gradients
    with the grouped kernel on the first layer equal those with the window kernel to the
    tolerance the spike times carry."""
    rng = np.random.default_rng(0)
    X = np.where(rng.random((12, 64)) < 0.5, rng.uniform(0.05, 1.0, (12, 64)), 0.0)
    y = rng.integers(0, 10, 12)

    def grads(events):
        monkeypatch.setattr(_dense, "GROUPED_DENSE_EVENTS", events)
        net = es.Sequential(es.Dense(64, 100), es.Dense(100, 10), neuron=es.SRM(), rng=0)
        learner = EventLearner(net, rng=0, n_threads=1)
        learner.initialise(X)
        ev = learner.encode_batch(X)
        used = _dense.prefers_grouped_dense(100, ev.times[:ev.offsets[1]], 10.0)
        loss, g, _, _ = learner.loss_and_grads(X, y)
        return used, loss, g, [layer.weight.copy() for layer in net.layers]

    used_w, loss_w, g_w, w_w = grads(math.inf)
    used_g, loss_g, g_g, w_g = grads(2)
    assert used_g and not used_w
    for a, b in zip(w_g, w_w):  # the same initialisation (it runs the dispatch too)
        np.testing.assert_allclose(a, b, rtol=1e-9)
    assert loss_g == pytest.approx(loss_w, rel=1e-9)
    for a, b in zip(g_g, g_w):
        assert np.abs(b).max() > 0
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9 * np.abs(b).max())

