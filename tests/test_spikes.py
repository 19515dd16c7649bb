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
    pairs = x.to_pairs()
    assert pairs.shape == (2, 2)
    np.testing.assert_array_equal(pairs, [[1, 0.1], [3, 0.5]])  # rows (index, time)
    assert es.SpikeTrains.from_pairs(pairs, 4) == x
    assert es.SpikeTrains.from_pairs(pairs.tolist(), 4) == x


@pytest.mark.parametrize("container", [tuple, list, np.array])
def test_pairs_read_as_rows_whatever_the_container(container):
    """((5, 1.0), (6, 2.0)) is two (index, time) rows, as a tuple, a list or an array;
    (a 2 x 2 input used to be read as the columns (indices, times) when it was a tuple)."""
    pairs = container([container([5, 1.0]), container([6, 2.0])]) if container is not np.array \
        else np.array([[5, 1.0], [6, 2.0]])
    x = es.SpikeTrains.from_pairs(pairs, 10)
    np.testing.assert_array_equal(x.neurons, [5, 6])
    np.testing.assert_array_equal(x.times, [1.0, 2.0])


@given(n=st.integers(0, 12), seed=st.integers(0, 1000),
       container=st.sampled_from([tuple, list, np.array]))
def test_pairs_round_trip_random(n, seed, container):
    rng = np.random.default_rng(seed)
    x = es.SpikeTrains(rng.integers(0, 5, n) * 0.5, rng.integers(0, 7, n), 7)
    rows = x.to_pairs()
    given_ = np.array(rows) if container is np.array else container(container(r) for r in rows)
    assert es.SpikeTrains.from_pairs(given_, 7) == x


def test_pairs_errors():
    with pytest.raises(ValueError, match=r"shape \(N, 2\).*\(indices, times\)"):
        es.SpikeTrains.from_pairs((np.array([0, 1, 2]), np.array([0.5, 1.5, 2.5])), 3)
    with pytest.raises(ValueError, match=r"pairs must have shape \(N, 2\)"):
        es.SpikeTrains.from_pairs([1.0, 2.0, 3.0], 3)
    with pytest.raises(TypeError, match="neuron indices"):
        es.SpikeTrains.from_pairs([(0.5, 1.0)], 3)
    with pytest.raises(ValueError, match=r"neuron indices.*\[0, 3\), found 7"):
        es.SpikeTrains.from_pairs([(7, 1.0)], 3)
    with pytest.raises(ValueError, match="times must be >= 0"):
        es.SpikeTrains.from_pairs([(1, -1.0)], 3)
    assert len(es.SpikeTrains.from_pairs([], 3)) == 0
    assert len(es.SpikeTrains.from_pairs(np.zeros((0, 2)), 3)) == 0


def test_tonic_boolean_polarity():
    ev = np.zeros(3, dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "?")])
    ev["t"] = [0, 1000, 2000]
    ev["x"] = [0, 1, 2]
    ev["y"] = [1, 0, 2]
    ev["p"] = [True, False, True]
    x = es.SpikeTrains.from_tonic(ev, (2, 3, 3))
    np.testing.assert_array_equal(x.neurons, [9 + 3 + 0, 0 + 0 + 1, 9 + 6 + 2])
    as_int = ev.astype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "<i1")])
    assert es.SpikeTrains.from_tonic(as_int, (2, 3, 3)) == x
    with pytest.raises(ValueError, match=r"events\['p'\] must lie in \[0, 1\)"):
        es.SpikeTrains.from_tonic(ev, (1, 3, 3))  # True is polarity 1: needs 2 channels


def test_huge_unsigned_index_reported_as_given():
    with pytest.raises(ValueError, match=r"found 9223372036854775813"):
        es.SpikeTrains([1.0], np.array([2**63 + 5], dtype=np.uint64), 4)
    x = es.SpikeTrains([1.0], np.array([3], dtype=np.uint64), 4)
    assert x.neurons.dtype == np.int64 and x.neurons[0] == 3


def test_value_magnitude_bound():
    from eventsnn._constants import MAX_MAGNITUDE
    es.SpikeTrains([1.0, 2.0], [0, 0], 1, values=[MAX_MAGNITUDE, -MAX_MAGNITUDE])
    with pytest.raises(ValueError, match=r"values must have magnitude <= 1e\+100"):
        es.SpikeTrains([1.0], [0], 1, values=[1e101])
    with pytest.raises(ValueError, match="values must have magnitude"):
        es.SpikeTrains([1.0], [0], 1, values=[-1e300])


def test_repr_and_helpers():
    x = es.SpikeTrains([0.5, 0.1, 2.0], [3, 1, 3], 4, values=[1, 1, 0.5])
    r = repr(x)
    assert "3 events" in r and "n_neurons=4" in r and "graded" in r
    np.testing.assert_array_equal(x.counts(), [0, 1, 0, 2])
    np.testing.assert_array_equal(x.first_times(), [np.inf, 0.1, np.inf, 0.5])
    assert "0 events" in repr(es.SpikeTrains.empty(2))
