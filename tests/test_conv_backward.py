"""The Conv2d timing backward from the layer geometry (``_backward.conv_backward``) equals
the CSR kernel (``_backward.layer_backward`` with ``Conv2d.connectivity()``) on random
geometries, events and spikes: bit for bit for the weight gradient, S and D, and up to the
rounding of a sum in another order for dL/dt of the input events (summed per output channel
first); the window edges merged from two sorted lists hold
every neuron's edges in the order of the stable sort (``_backward._edges``).

The CSR kernel is itself tested against the naive per-pair reference (tests/naive_backward.py,
tests/test_backward.py), so equality here carries that oracle over."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventsnn as es
from eventsnn.event import _backward as K

from .strategies import examples

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def geometries(draw):
    c_in = draw(st.integers(1, 3))
    k = draw(st.integers(1, 4))
    pad = draw(st.integers(0, 2))
    stride = draw(st.integers(1, 3))
    h = draw(st.integers(max(1, k - 2 * pad), 9))
    w = draw(st.integers(max(1, k - 2 * pad), 9))
    c_out = draw(st.integers(1, 4))
    return es.Sequential(es.Conv2d((c_in, h, w), c_out, k, stride=stride, padding=pad)).layers[0]


def _spikes(rng, n_out, t_span, t_ref, n):
    """Time-sorted spikes, a neuron's spikes more than t_ref apart; times on a 0.25 ms grid
    now and then (coincidences, also with window edges)."""
    t, i = [], []
    for _ in range(n):
        j = int(rng.integers(0, n_out))
        x = rng.uniform(0, t_span)
        if rng.random() < 0.5:
            x = 0.25 * np.round(x / 0.25)
        t.append(x)
        i.append(j)
    t, i = np.array(t), np.array(i, np.int64)
    order = np.lexsort((i, t))
    t, i = t[order], i[order]
    keep = np.ones(t.size, bool)
    last = {}
    for k in range(t.size):
        if i[k] in last and t[k] <= last[i[k]] + t_ref:
            keep[k] = False
        else:
            last[i[k]] = t[k]
    return t[keep], i[keep]


@settings(max_examples=examples(40), **SETTINGS)
@given(layer=geometries(), seed=st.integers(0, 2**31 - 1), kernel=st.sampled_from([0, 1]),
       t_ref=st.sampled_from([0.0, 0.5]), block_taus=st.sampled_from([0.05, 16.0]),
       clamp=st.booleans(), input_grad=st.booleans())
def test_conv_backward_equals_csr_kernel(layer, seed, kernel, t_ref, block_taus, clamp,
                                         input_grad):
    rng = np.random.default_rng(seed)
    n_in, n_out = layer.n_in, layer.n_out
    n_ev = int(rng.integers(1, 60))
    t_span = float(rng.choice([3.0, 40.0]))
    it = np.sort(np.where(rng.random(n_ev) < 0.5, np.round(rng.uniform(0, t_span, n_ev)),
                          rng.uniform(0, t_span, n_ev)))
    ii = rng.integers(0, n_in, n_ev).astype(np.int64)
    iv = rng.uniform(0.2, 2.0, n_ev) if rng.random() < 0.5 else np.ones(n_ev)
    ot, oi = _spikes(rng, n_out, t_span + 2.0, t_ref, int(rng.integers(0, 40)))
    g = rng.normal(size=ot.size)
    layer.weight = rng.normal(size=layer.weight.shape)
    tau_m, tau_s, tau_g = 5.0, float(rng.choice([1.25, 3.0])), 2.5
    block = block_taus * min(tau_m, tau_s, tau_g)
    common = (tau_m, tau_s, t_ref, kernel, tau_g, bool(rng.random() < 0.5), clamp, -4.0, 0.0,
              float(rng.choice([1.0, 0.85])), input_grad, block)
    indptr, targets, widx = layer.connectivity()
    want = K.layer_backward(it, ii, iv, ot, oi, g, n_in, n_out, False, indptr, targets, widx,
                            np.ascontiguousarray(layer.weight.ravel()[widx]), layer.weight.size,
                            *common)
    got = K.conv_backward(it, ii, iv, ot, oi, g, K.conv_geometry(layer),
                          np.ascontiguousarray(layer.weight.ravel()), *common)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-9, atol=1e-9)
    for a, b in zip(got[1:4], want[1:4]):
        np.testing.assert_array_equal(a, b)
    assert got[4] == want[4]


@settings(max_examples=examples(40), **SETTINGS)
@given(seed=st.integers(0, 2**31 - 1), n_out=st.integers(1, 6),
       t_ref=st.sampled_from([0.0, 0.25, 0.5]))
def test_merged_edges_keep_each_neurons_order(seed, n_out, t_ref):
    rng = np.random.default_rng(seed)
    ot, oi = _spikes(rng, n_out, 5.0, t_ref, int(rng.integers(0, 30)))
    start, order = K._spikes_by_neuron(oi, n_out)
    r = K._window_starts(ot, oi, n_out, t_ref, start, order)
    et, ek, eo = K._edges(ot, r, n_out, start, order)
    mt, mk, mo = K._edges_merged(ot, oi, r, n_out, start, order)
    assert np.all(np.diff(mt) <= 0)
    for i in range(n_out):
        a = oi[ek] == i
        b = oi[mk] == i
        np.testing.assert_array_equal(mt[b], et[a])
        np.testing.assert_array_equal(mk[b], ek[a])
        np.testing.assert_array_equal(mo[b], eo[a])
