"""The weight check of every ``simulate`` (``eventsnn._scan.max_abs_finite``, an integer
scan of the bit patterns) against numpy, and in-place edits after construction still
caught before any simulation."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst
from hypothesis.extra import numpy as hnp

import eventsnn as es
from eventsnn._scan import max_abs_finite

SPECIAL = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1e100, -1e100, 1.0000000000000002e100,
           1.7976931348623157e308, -1.7976931348623157e308, np.inf, -np.inf, np.nan, -np.nan]


def _oracle(a):
    a = np.asarray(a, dtype=np.float64)
    finite = bool(np.all(np.isfinite(a)))
    return (float(np.abs(a).max()) if a.size else 0.0), finite


@settings(max_examples=300, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=7),
                  elements=hst.one_of(hst.floats(allow_nan=True, allow_infinity=True),
                                      hst.sampled_from(SPECIAL))),
       hst.sampled_from(["C", "F", "T", "strided", ">f8", "f4"]))
def test_scan_matches_numpy(a, layout):
    if layout == "F":
        a = np.asfortranarray(a)
    elif layout == "T":
        a = a.T
    elif layout == "strided":
        a = a[..., ::2]
    elif layout == ">f8":
        a = a.astype(">f8")
    elif layout == "f4":
        with np.errstate(over="ignore"):
            a = a.astype(np.float32)
    big, finite = max_abs_finite(a)
    want_big, want_finite = _oracle(a)
    assert finite == want_finite
    if want_finite:
        assert big == want_big and type(big) is float
        assert np.signbit(big) == False   # noqa: E712 (|-0.0| is +0.0)


@pytest.mark.parametrize("bad, match", [(np.nan, "NaN or inf"), (-np.nan, "NaN or inf"),
                                        (np.inf, "NaN or inf"), (-np.inf, "NaN or inf"),
                                        (-1e101, "magnitude")])
@pytest.mark.parametrize("shape", [(4, 3), (40, 300)])
def test_in_place_edit_after_construction_raises_before_simulating(bad, match, shape):
    """A weight edited in place after the network was built and simulated (so a check
    remembered from the earlier calls would miss it) raises a ValueError on the next
    ``simulate``; after the edit is undone the same network simulates as before."""
    n_out, n_in = shape
    net = es.Sequential(es.Dense(n_in, n_out), rng=0)
    net.layers[0].weight = np.full((n_out, n_in), 0.3)
    st = es.SpikeTrains(np.linspace(1.0, 20.0, 2 * n_in), np.arange(2 * n_in) % n_in, n_in)
    before = net.simulate(st, t_end=30.0).output
    rng = np.random.default_rng(n_in)
    for _ in range(3):
        j, k = rng.integers(n_out), rng.integers(n_in)
        net.layers[0].weight[j, k] = bad
        with pytest.raises(ValueError, match=match):
            net.simulate(st, t_end=30.0)
        with pytest.raises(ValueError, match=match):
            net.simulate([st, st], t_end=30.0)     # the batch path too
        net.layers[0].weight_t[k, j] = 0.3           # undone through the stored transpose
        after = net.simulate(st, t_end=30.0).output
        np.testing.assert_array_equal(after.times, before.times)
        np.testing.assert_array_equal(after.neurons, before.neurons)
