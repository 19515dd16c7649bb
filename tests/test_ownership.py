"""Validated objects own their data: no edit after validation can reach a kernel."""
import copy
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

import eventsnn as es


def test_spike_trains_arrays_are_read_only_copies():
    times = np.array([1.0, 2.0, 3.0])
    neurons = np.array([0, 1, 2])
    st = es.SpikeTrains(times, neurons, 4)
    times[0] = np.nan          # the caller's arrays stay theirs
    neurons[1] = 10 ** 9
    np.testing.assert_array_equal(st.times, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(st.neurons, [0, 1, 2])
    for arr in (st.times, st.neurons, st.values):
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 5
    with pytest.raises(AttributeError):
        st.neurons = np.array([7, 7, 7])
    # the repro of the segfault: now refused before it can reach the engine
    net = es.Sequential(es.Dense(4, 6), es.Dense(6, 3))
    with pytest.raises(ValueError):
        st.neurons[1] = 10 ** 9
    assert len(net.simulate(st).spikes[0]) == 3


def test_kernel_output_is_read_only_and_copies_round_trip():
    net = es.Sequential(es.Dense(3, 2), rng=1)
    net.layers[0].weight = np.full((2, 3), 3.0)
    rec = net.simulate(es.SpikeTrains([0.0, 0.5, 1.0], [0, 1, 2], 3))
    out = rec.output
    assert len(out) > 0
    with pytest.raises(ValueError):
        out.times[0] = 0.0
    assert pickle.loads(pickle.dumps(out)) == out
    assert copy.deepcopy(out) == out


def test_layer_bound_to_another_shape_is_refused():
    pool = es.AvgPool2d(2)
    es.Sequential(es.Conv2d((1, 4, 4), 1, 1), pool, es.Flatten(), es.Dense(4, 2))
    with pytest.raises(ValueError, match="already bound"):
        es.Sequential(es.Conv2d((3, 8, 8), 3, 1), pool, es.Flatten(), es.Dense(48, 2))
    # the same geometry is fine (the layer object is shared)
    es.Sequential(es.Conv2d((1, 4, 4), 1, 1), pool, es.Flatten(), es.Dense(4, 2))


@settings(max_examples=200, deadline=None)
@given(k=hs.integers(0, 10 ** 6 - 1), dt=hs.floats(1e-6, 1e3))
def test_dense_round_trip_keeps_every_step(k, dt):
    """from_dense puts step k at k * dt; to_dense must put it back at step k (a plain
    floor(t / dt) moves e.g. 43 * 0.1 to step 42)."""
    raster = np.zeros((k + 1, 1))
    raster[k, 0] = 1.0
    st = es.SpikeTrains.from_dense(raster, dt=dt)
    np.testing.assert_array_equal(st.to_dense(k + 1, dt=dt), raster)


def test_dense_round_trip_case_of_the_report():
    r = np.zeros((50, 1))
    r[43, 0] = 1.0
    np.testing.assert_array_equal(es.SpikeTrains.from_dense(r, dt=0.1).to_dense(50, dt=0.1), r)
