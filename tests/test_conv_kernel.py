"""The Conv2d kernel ``_conv.conv_layer`` gives the spikes of ``_engine.sparse_layer``.

conv_layer computes its targets from the kernel geometry, keeps the neuron state by
position then channel, queues pending crossings in one bucket per input group (buckets of
positions: a position sits in the bucket of its smallest key), bounds them with tangents
instead of ``rise_bound`` and solves from other states; the same neurons must
spike, at times within TOL_MS (the fast-vs-reference tolerance). sparse_layer (itself checked
against the reference engine in test_engine_vs_reference.py and test_engine_oracles.py) is
the oracle here, on random geometries (strides, paddings, kernels that meet only padding),
both weight signs, coincident inputs, both resets, refractory periods, long silences (the
common time reference moves) and spike budgets.
"""
from collections import Counter

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st

import eventsnn as es
from eventsnn.event import _conv, _engine
from eventsnn.event._engine import EPOCH_EXP
from eventsnn.event.forward import kernel_weights
from eventsnn.event.reference import simulate_reference

from .strategies import examples

TOL_MS = 1e-9
TAUS = [(5.0, 2.5), (5.0, 3.0), (4.0, 3.0), (2.0, 5.0), (10.0, 1.0), (5.0, 0.05)]
SEEN = Counter()


def _case(seed, c_out=None):
    rng = np.random.default_rng(seed)
    C_in = int(rng.integers(1, 4))
    H, W = int(rng.integers(1, 10)), int(rng.integers(1, 10))
    pad = int(rng.integers(0, 3))
    k = int(rng.integers(1, min(H, W) + 2 * pad + 1))
    k = max(1, min(k, 5))
    stride = int(rng.integers(1, 4))
    C_out = int(rng.integers(1, 5)) if c_out is None else c_out
    layer = es.Conv2d((C_in, H, W), C_out, k, stride=stride, padding=pad)
    tau_m, tau_s = TAUS[rng.integers(len(TAUS))]
    nrn = es.SRM(tau_m, tau_s, float(rng.choice([0.5, 1.0, 2.0])),
                 str(rng.choice(["full", "membrane"])), float(rng.choice([0.0, 0.5, 2.0])))
    net = es.Sequential(layer, neuron=nrn)
    scale = float(rng.choice([1.0, 2.0, 4.0]))
    layer.weight = rng.normal(0.6, 1.0, layer.weight_shape) * scale  # both signs
    n_in = C_in * H * W
    times, idx, vals = [], [], []
    start = 0.0
    for _ in range(rng.integers(1, 4)):  # bursts separated by silences of up to 3000 ms
        n_frames = int(rng.integers(1, 6))
        for f in range(n_frames):  # frames: many inputs at one time (coincident events)
            m = int(rng.integers(1, n_in + 1))
            times.append(np.full(m, start + f * float(rng.choice([1.0, 0.5]))))
            idx.append(rng.choice(n_in, m, replace=False))
            vals.append(rng.choice([-1.0, 1.0], m, p=[0.25, 0.75]) * rng.uniform(0.3, 1.5, m))
        m = int(rng.integers(0, 6))  # loose events at their own times
        times.append(start + rng.uniform(0.0, 6.0, m))
        idx.append(rng.integers(0, n_in, m))
        vals.append(rng.uniform(-1.0, 2.0, m))
        start += float(rng.choice([10.0, 80.0, 3000.0]))
    x = es.SpikeTrains(np.concatenate(times), np.concatenate(idx), n_in, np.concatenate(vals))
    t_end = float(rng.choice([np.inf, start, 4.0]))
    return net, x, t_end


def _both(net, x, t_end, max_spikes):
    layer = net.layers[0]
    tau_m, tau_s, theta, membrane_reset, t_ref = net.neuron.as_tuple()
    w = kernel_weights(layer)
    indptr, targets, _ = layer.connectivity()
    old = _engine.sparse_layer(x.times, x.neurons, x.values, layer.n_out, indptr, targets, w,
                               tau_m, tau_s, theta, membrane_reset, t_ref, t_end, max_spikes)
    new = _conv.run_conv(layer, _conv.transposed_weight(layer, w), x.times, x.neurons, x.values,
                         tau_m, tau_s, theta, membrane_reset, t_ref, t_end, max_spikes,
                         kernel="event")  # the group-interval kernel: tests/test_grouped.py
    return old, new


def _assert_same_spikes(got, want):
    """Same neurons, times within TOL_MS. Spikes come sorted by (time, neuron): two spikes
    within TOL_MS of each other may swap, so compare each neuron's own spike train."""
    assert got[0].size == want[0].size
    for i in np.unique(want[1]):
        np.testing.assert_allclose(got[0][got[1] == i], want[0][want[1] == i], rtol=0,
                                   atol=TOL_MS)
    np.testing.assert_array_equal(np.sort(got[1]), np.sort(want[1]))


@settings(max_examples=examples(200), deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_conv_layer_matches_sparse_layer(seed):
    net, x, t_end = _case(seed)
    (t0, i0, ex0), (t1, i1, ex1) = _both(net, x, t_end, 100_000)
    assert not ex0 and not ex1
    _assert_same_spikes((t1, i1), (t0, i0))
    nrn = net.neuron
    SEEN["examples"] += 1
    SEEN["spikes"] += t0.size > 0
    SEEN["several spikes of one neuron"] += bool(i0.size and np.bincount(i0).max() > 1)
    SEEN["membrane reset, t_ref > 0, spikes"] += (nrn.reset == "membrane" and nrn.t_ref > 0
                                                  and t0.size > 0)
    SEEN["stride > 1"] += net.layers[0].stride > 1
    SEEN["padding"] += net.layers[0].padding > 0
    SEEN["spike after a long silence"] += bool((t0 > 1000.0).any())


@settings(max_examples=examples(60), deadline=None)
@given(seed=st.integers(0, 2**32 - 1), c_out=st.sampled_from([8, 9, 13, 17, 24]))
def test_conv_layer_many_channels_matches_sparse_layer(seed, c_out):
    """More output channels than one 8-flag word: conv_layer's buckets hold positions, a
    due position's neurons are found 8 flags at a time and its smallest key by four min
    chains (plus a tail when C_out is not a multiple of 4); the same spikes as sparse_layer."""
    net, x, t_end = _case(seed, c_out)
    (t0, i0, ex0), (t1, i1, ex1) = _both(net, x, t_end, 100_000)
    assert not ex0 and not ex1
    _assert_same_spikes((t1, i1), (t0, i0))


@settings(max_examples=examples(60), deadline=None)
@given(seed=st.integers(0, 2**32 - 1), c_out=st.sampled_from([1, 3, 12, 17]),
       k=st.integers(2, 5), pad=st.integers(0, 2),
       reset=st.sampled_from(["full", "membrane"]), t_ref=st.sampled_from([0.0, 0.7]))
def test_conv_layer_row_segments_match_sparse_layer(seed, c_out, k, pad, reset, t_ref):
    """Stride 1 and every event at its own time: the positions of a row an input reaches go
    through one pass (a segment, with the kx-flipped weight) unless one of them holds a
    refractory neuron, which splits the run; the same spikes as sparse_layer."""
    rng = np.random.default_rng(seed)
    C_in, H, W = int(rng.integers(1, 3)), int(rng.integers(k, 9)), int(rng.integers(k, 9))
    layer = es.Conv2d((C_in, H, W), c_out, k, stride=1, padding=pad)
    net = es.Sequential(layer, neuron=es.SRM(5.0, 2.5, 1.0, reset, t_ref))
    layer.weight = rng.normal(0.5, 1.0, layer.weight_shape) * 2.0
    n_in = C_in * H * W
    n = int(rng.integers(1, 300))
    x = es.SpikeTrains(np.sort(rng.uniform(0.0, 40.0, n)), rng.integers(0, n_in, n), n_in,
                       rng.uniform(-0.5, 1.5, n))
    (t0, i0, ex0), (t1, i1, ex1) = _both(net, x, np.inf, 100_000)
    assert not ex0 and not ex1
    _assert_same_spikes((t1, i1), (t0, i0))
    SEEN_ROWS["examples"] += 1
    SEEN_ROWS["spikes"] += t0.size > 0
    SEEN_ROWS["a neuron spiking twice"] += bool(i0.size and np.bincount(i0).max() > 1)


SEEN_ROWS = Counter()


def test_row_segment_cases_not_vacuous():
    if not SEEN_ROWS:
        test_conv_layer_row_segments_match_sparse_layer()
    n = SEEN_ROWS["examples"]
    assert SEEN_ROWS["spikes"] >= 0.5 * n and SEEN_ROWS["a neuron spiking twice"] >= 0.2 * n, \
        SEEN_ROWS


@settings(max_examples=examples(60), deadline=None)
@given(seed=st.integers(0, 2**32 - 1), budget=st.integers(0, 5))
def test_conv_layer_spike_budget(seed, budget):
    """Both kernels agree on whether more than max_spikes spikes were due, and return no
    more than the budget allows when they were."""
    net, x, t_end = _case(seed)
    (t0, i0, ex0), (t1, i1, ex1) = _both(net, x, t_end, budget)
    assert ex0 == ex1
    if not ex0:
        _assert_same_spikes((t1, i1), (t0, i0))
    else:
        assert t1.size <= budget


def test_conv_cases_not_vacuous():
    if not SEEN:
        test_conv_layer_matches_sparse_layer()
    n = SEEN["examples"]
    for key, frac in {"spikes": 0.5, "several spikes of one neuron": 0.1,
                      "membrane reset, t_ref > 0, spikes": 0.05, "stride > 1": 0.3,
                      "padding": 0.3, "spike after a long silence": 0.05}.items():
        assert SEEN[key] >= frac * n, (key, SEEN[key], n)


@settings(max_examples=examples(30), deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_conv_layer_matches_reference_engine(seed):
    """Through Sequential.simulate (which runs conv_layer) against the readable reference."""
    net, x, t_end = _case(seed)
    out = net.simulate(x, t_end=None if t_end == np.inf else t_end, max_spikes=100_000).output
    ref = simulate_reference(net, x, t_end=None if t_end == np.inf else t_end)[-1]
    np.testing.assert_array_equal(out.neurons, ref.neurons)
    np.testing.assert_allclose(out.times, ref.times, atol=1e-9, rtol=0)


def test_transposed_weight_layout():
    """WT[c, ky, kx, o] is weight[o, c, ky, kx] wherever a link uses it, 0 where none does
    (kernel rows that only meet padding)."""
    layer = es.Conv2d((2, 1, 2), 3, 3, padding=1)
    es.Sequential(layer)
    rng = np.random.default_rng(1)
    layer.weight = rng.normal(size=layer.weight_shape)
    WT = _conv.transposed_weight(layer, kernel_weights(layer))
    assert WT.shape == (2, 3, 3, 3) and WT.flags.c_contiguous
    _, _, widx = layer.connectivity()
    used = np.zeros(layer.weight.size, bool)
    used[widx] = True
    expect = np.where(used.reshape(layer.weight_shape), layer.weight, 0.0).transpose(1, 2, 3, 0)
    np.testing.assert_array_equal(WT, expect)
    assert not used.all()  # the case has weights no link uses


CROSS_TAUS = [(5.0, 1.25), (5.0, 3.0), (4.0, 3.0), (2.0, 5.0), (0.3, 6.0), (5.0, 1e-3)]


def _grid_crossing(M, S, tau_m, tau_s, theta):
    """First offset on a fine grid where the closed-form u reaches theta (None if none), and
    the grid's maximum of u: an oracle independent of the kernels."""
    c = tau_m / (tau_m - tau_s)
    s = np.concatenate([np.linspace(0.0, 5 * max(tau_m, tau_s), 200_001), [1e3, 1e4]])
    u = c * (M * np.exp(-s / tau_m) - S * np.exp(-s / tau_s))
    above = np.nonzero(u >= theta)[0]
    return (s[above[0]] if above.size else None), u.max()


@settings(max_examples=examples(300), deadline=None)
@given(M=st.floats(-20.0, 20.0), S=st.floats(-20.0, 20.0), taus=st.sampled_from(CROSS_TAUS),
       theta=st.sampled_from([0.5, 1.0, 3.0]), frac=st.sampled_from([0.0, 0.02, 1.0]))
def test_tangent_bounds_are_below_the_first_crossing(M, S, taus, theta, frac):
    """The tangent bound (from the traces at the offset, and in G's frame with the group's
    constants, x ms after G, up to the EPOCH_EXP min(tau) the kernel allows) never exceeds the first crossing on a fine grid; the screen
    lets every input through whose bound would come before the neuron's entry."""
    tau_m, tau_s = taus
    c = tau_m / (tau_m - tau_s)
    first, _ = _grid_crossing(M, S, tau_m, tau_s, theta)
    d = _conv._tangent_bound(M, S, c, 1 / tau_m, 1 / tau_s, theta)
    x = frac * EPOCH_EXP * min(tau_m, tau_s)
    fm, fs = np.exp(x / tau_m), np.exp(x / tau_s)
    a, bb = c / fm, c / fs
    consts = (a, bb, a / tau_m, bb / tau_s, theta * fm * (1 - 1e-12), theta)
    m, s = M * fm, S * fs  # the same traces held in the frame of G = t - x
    dg = _conv._tangent_g(m, s, *consts)
    if first is not None:
        event("crossing")
        assert d <= first + 1e-12 and dg <= first + 1e-12
    t = 12.5
    inv_max = max(1 / tau_m, 1 / tau_s)
    for t_end in (np.inf, t + 1.0, t):
        for key in (np.inf, t + 0.5 * dg, t + dg, t + 2 * dg + 1e-3):
            if t + dg < min(key, t_end):
                assert _conv._screen_g(m, s, 1.0, key, *consts, t, t_end, 2e-9 * t, inv_max)
    assert not _conv._screen_g(m, s, -1.0, np.inf, *consts, t, np.inf, 2e-9 * t, inv_max)


@settings(max_examples=examples(300), deadline=None)
@given(M=st.floats(-20.0, 20.0), S=st.floats(-20.0, 20.0), taus=st.sampled_from(CROSS_TAUS),
       theta=st.sampled_from([0.5, 1.0, 3.0]), s_hi=st.sampled_from([np.inf, 2.0]))
def test_newton_crossing_matches_first_crossing(M, S, taus, theta, s_hi):
    """conv_layer's solver (Newton from the left) finds first_crossing's crossing, within
    1e-9 ms, or none when it finds none (ties at the threshold aside)."""
    from eventsnn.event._crossing import first_crossing

    tau_m, tau_s = taus
    c = tau_m / (tau_m - tau_s)
    got = _conv._newton_crossing(M, S, s_hi, c, tau_m, tau_s, theta)
    want = first_crossing(M, S, 0.0, s_hi, c, tau_m, tau_s, theta)
    if np.isfinite(want):
        event("crossing")
        assert abs(got - want) < 1e-9
    else:
        _, peak = _grid_crossing(M, S, tau_m, tau_s, theta)
        assert got == np.inf or abs(peak - theta) < 1e-9 or abs(want - s_hi) < 1e-9
