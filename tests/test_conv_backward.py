"""The Conv2d timing backward from the layer geometry (``_backward.conv_backward``) equals
the CSR kernel (``_backward.layer_backward`` with ``Conv2d.connectivity()``) on random
geometries, events and spikes: bit for bit for the weight gradient, S and D, and up to the
rounding of a sum in another order for dL/dt of the input events (summed per output channel
first); the window edges merged from two sorted lists hold
every neuron's edges in the order of the stable sort (``_backward._edges``). The frame path
(repeated input frames, ``frames=True``) equals that per-event path up to the rounding of
its sums in another order.

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
                          np.ascontiguousarray(layer.weight.ravel()), *common, False)
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


@st.composite
def framed_inputs(draw):
    """A layer and input events made of frames (a random sparse image shown at several
    times, as the "current" encoder does), often one frame only, else now and then with a
    different frame or single events between the repeats; spikes anywhere (also at the
    frame times, before and after them)."""
    layer = draw(geometries())
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    n_in = layer.n_in
    t, i, v = [], [], []
    time = float(rng.choice([0.0, 2.0]))
    one = draw(st.booleans())   # one frame only (the closed-form path of _one_frame_pass)
    for _ in range(1 if one else int(rng.integers(1, 4))):   # runs of one frame
        on = np.flatnonzero(rng.random(n_in) < rng.uniform(0.3, 1.0))
        if on.size == 0:
            on = np.array([0])
        vals = rng.uniform(0.1, 2.0, on.size)
        for _ in range(int(rng.integers(2 if one else 1, 6))):
            t += [time] * on.size
            i += list(on)
            v += list(vals)
            time += float(rng.choice([0.5, 1.0, 3.0]))
        if not one and rng.random() < 0.5:   # a single event between runs
            t.append(time)
            i.append(int(rng.integers(0, n_in)))
            v.append(1.0)
            time += 1.0
    return layer, rng, np.array(t), np.array(i, np.int64), np.array(v), time


@settings(max_examples=examples(80), **SETTINGS)
@given(case=framed_inputs(), kernel=st.sampled_from([0, 1]), t_ref=st.sampled_from([0.0, 0.5]),
       block_taus=st.sampled_from([0.05, 16.0]), clamp=st.booleans(), input_grad=st.booleans())
def test_frame_path_equals_per_event_path(case, kernel, t_ref, block_taus, clamp, input_grad):
    """conv_backward's frame path (frames=True: sweep 1 adds the frame's correlation times
    the group's factors, sweep 2 correlates the factors summed over a run) against its
    per-event path (frames=False, itself equal to the CSR kernel bit for bit): the same
    gradients up to rounding: within 1e-9 of their scale, plus 1e-12 (the inputs are of
    order 1: a sum that cancels to a few ulp of its terms is rounding either way)."""
    layer, rng, it, ii, iv, t_span = case
    ot, oi = _spikes(rng, layer.n_out, t_span + 2.0, t_ref, int(rng.integers(0, 60)))
    if rng.random() < 0.5 and ot.size:   # spikes at frame times (edges at a group's time)
        ot = np.sort(np.where(rng.random(ot.size) < 0.5, np.round(ot), ot))
        ot, oi = _spikes_from(ot, oi, t_ref)
    g = rng.normal(size=ot.size)
    layer.weight = rng.normal(0.3, 1.0, size=layer.weight.shape)
    tau_m, tau_s, tau_g = 5.0, float(rng.choice([1.25, 3.0])), 2.5
    block = block_taus * min(tau_m, tau_s, tau_g)
    common = (tau_m, tau_s, t_ref, kernel, tau_g, bool(rng.random() < 0.5), clamp, -4.0, 0.0,
              float(rng.choice([1.0, 0.85])), input_grad, block)
    geom = K.conv_geometry(layer)
    w = np.ascontiguousarray(layer.weight.ravel())
    want = K.conv_backward(it, ii, iv, ot, oi, g, geom, w, *common, False)
    got = K.conv_backward(it, ii, iv, ot, oi, g, geom, w, *common, True)
    for a, b in zip(got[:4], want[:4]):
        scale = np.max(np.abs(b)) if b.size else 0.0
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9 * scale + 1e-12)
    # the drop rule (S_k <= 0) may decide differently only for an S_k that is rounding
    assert got[4] == want[4] or np.any(np.abs(want[2]) <= 1e-12)
    # the weight gradient does not depend on whether dL/dt of the inputs is asked for
    other = K.conv_backward(it, ii, iv, ot, oi, g, geom, w, *common[:-2], not input_grad,
                            block, True)
    np.testing.assert_array_equal(other[1], got[1])


def _spikes_from(t, i, t_ref):
    """Spikes (time-sorted) with a neuron's spikes more than t_ref apart (later ones that are
    not are dropped), ties in time ordered by neuron."""
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


@settings(max_examples=examples(20), **SETTINGS)
@given(case=framed_inputs())
def test_frame_runs_mark_repeated_groups(case):
    """_frame_runs against a direct reading of its definition: kind is FRAME exactly on the
    groups of runs (>= 2 consecutive equal groups) that are dense enough, TOP on the run's
    last group and BOTTOM on its first; glo is the first event of each event's group."""
    layer, _, it, ii, iv, _ = case
    geom = K.conv_geometry(layer)
    glo, kind = K._frame_runs(it, ii, iv, geom, True)
    times = list(dict.fromkeys(it.tolist()))
    groups = [np.flatnonzero(it == x) for x in times]
    key = [(tuple(ii[g]), tuple(iv[g])) for g in groups]
    reach = -(-layer.kernel_size // layer.stride)
    want = np.zeros(it.size, np.int64)
    g = 0
    while g < len(groups):
        h = g + 1
        while h < len(groups) and key[h] == key[g]:
            h += 1
        if h - g >= 2 and groups[g].size * reach * reach >= geom[4] * geom[5]:
            for q in range(g, h):
                want[groups[q]] = K.FRAME
            want[groups[g]] |= K.FRAME_BOTTOM
            want[groups[h - 1]] |= K.FRAME_TOP
        g = h
    np.testing.assert_array_equal(kind, want)
    for grp in groups:
        np.testing.assert_array_equal(glo[grp], grp[0])
    assert not np.any(K._frame_runs(it, ii, iv, geom, False)[1])


def test_one_frame_closed_form_on_digits_like_input():
    """The digits CNN's first layer (16C3p1 on 8x8 frames shown at 0..4 ms by the "current"
    encoder) takes the closed-form path (_one_frame) and equals the per-event path, with
    spikes of many neurons, several per neuron, some at the frame times, and with or
    without dL/dt of the inputs."""
    rng = np.random.default_rng(7)
    layer = es.Sequential(es.Conv2d((1, 8, 8), 16, 3, padding=1)).layers[0]
    layer.weight = rng.normal(0.2, 0.5, layer.weight.shape)
    geom = K.conv_geometry(layer)
    w = np.ascontiguousarray(layer.weight.ravel())
    for trial in range(5):
        on = np.flatnonzero(rng.random(64) < 0.5)
        vals = rng.uniform(0.0625, 1.0, on.size)
        it = np.repeat(np.arange(5.0), on.size)
        ii = np.tile(on, 5).astype(np.int64)
        iv = np.tile(vals, 5)
        assert K._one_frame(it, K._frame_runs(it, ii, iv, geom, True)[1], 40.0)
        ot = rng.uniform(0.0, 10.0, 400)
        ot[:50] = rng.integers(0, 5, 50)
        ot, oi = _spikes_from(ot, rng.integers(0, layer.n_out, 400), 0.0)
        g = rng.normal(size=ot.size)
        for kernel in (0, 1):
            for input_grad in (False, True):
                common = (5.0, 3.0, 0.0, kernel, 2.5, True, True, -4.0, 0.0, 1.0, input_grad,
                          40.0)
                want = K.conv_backward(it, ii, iv, ot, oi, g, geom, w, *common, False)
                got = K.conv_backward(it, ii, iv, ot, oi, g, geom, w, *common, True)
                for a, b in zip(got[:4], want[:4]):
                    scale = np.max(np.abs(b)) if b.size else 0.0
                    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9 * scale + 1e-12)
                assert got[4] == want[4]
