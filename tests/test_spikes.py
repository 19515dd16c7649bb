import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import eventsnn as es


def test_sorted_by_time_then_neuron():
    x = es.SpikeTrains([3.0, 1.0, 1.0, 2.0], [0, 2, 1, 1], 3, values=[1, 2, 3, 4])
    np.testing.assert_array_equal(x.times, [1, 1, 2, 3])
    np.testing.assert_array_equal(x.neurons, [1, 2, 1, 0])
    np.testing.assert_array_equal(x.values, [3, 2, 4, 1])
    assert x.times.dtype == np.float64 and x.neurons.dtype == np.int64


def test_stable_for_coincident_events_of_one_neuron():
    x = es.SpikeTrains([1.0, 1.0], [0, 0], 1, values=[5.0, 7.0])
    np.testing.assert_array_equal(x.values, [5.0, 7.0])


rasters = hnp.arrays(np.float64, st.tuples(st.integers(1, 8), st.integers(1, 5)),
                     elements=st.sampled_from([0.0, 0.0, 1.0, 0.5, -2.0]))


@given(raster=rasters, dt=st.sampled_from([1.0, 0.5, 0.25]))
def test_dense_round_trip(raster, dt):
    x = es.SpikeTrains.from_dense(raster, dt=dt)
    np.testing.assert_array_equal(x.to_dense(raster.shape[0], dt=dt), raster)
    assert len(x) == np.count_nonzero(raster)


def test_to_dense_bins_and_drops():
    x = es.SpikeTrains([0.0, 0.99, 1.0, 5.0], [0, 0, 1, 0], 2)
    np.testing.assert_array_equal(x.to_dense(3), [[2, 0], [0, 1], [0, 0]])


@given(n=st.integers(0, 30), seed=st.integers(0, 1000))
def test_tonic_round_trip(n, seed):
    rng = np.random.default_rng(seed)
    shape = (2, 4, 5)
    ev = np.zeros(n, dtype=[("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "<i1")])
    ev["x"] = rng.integers(0, 5, n)
    ev["y"] = rng.integers(0, 4, n)
    ev["p"] = rng.integers(0, 2, n)
    ev["t"] = np.sort(rng.integers(0, 10**6, n))
    x = es.SpikeTrains.from_tonic(ev, shape)
    np.testing.assert_allclose(x.times, np.sort(ev["t"] / 1000.0))
    back = x.to_tonic(shape)
    key = lambda a: np.lexsort((a["p"] * 20 + a["y"] * 5 + a["x"], a["t"]))
    for f in ("x", "y", "p", "t"):
        np.testing.assert_array_equal(back[f][key(back)], ev[f][key(ev)].astype(np.int64))
    # flat index convention c*H*W + y*W + x
    if n:
        i = np.argmin(x.times)
        assert x.neurons[0] in set(ev["p"] * 20 + ev["y"] * 5 + ev["x"])


def test_pairs_round_trip():
    x = es.SpikeTrains([0.5, 0.1], [3, 1], 4)
    idx, t = x.to_pairs()
    assert es.SpikeTrains.from_pairs((idx, t), 4) == x
    assert es.SpikeTrains.from_pairs(np.column_stack([idx, t]), 4) == x


def test_repr_and_helpers():
    x = es.SpikeTrains([0.5, 0.1, 2.0], [3, 1, 3], 4, values=[1, 1, 0.5])
    r = repr(x)
    assert "3 events" in r and "n_neurons=4" in r and "graded" in r
    np.testing.assert_array_equal(x.counts(), [0, 1, 0, 2])
    np.testing.assert_array_equal(x.first_times(), [np.inf, 0.1, np.inf, 0.5])
    assert "0 events" in repr(es.SpikeTrains.empty(2))
