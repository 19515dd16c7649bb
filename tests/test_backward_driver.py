"""The batched backward driver (``batch._backward_samples``: the loop over a batch's samples
inside numba) against the per-sample Python loop it replaced (``_python_loop`` below, kept
verbatim as the oracle: one ``_backward.layer_backward``/``conv_backward`` call per sample
from Python, ``G[row] += gw`` in numpy). Equal bit for bit: g_in, weight gradients (summed
and per sample) and the dropped count, for Dense and Conv2d layers of random networks,
both kernels, with and without clamp, input gradient and drop rule."""
import numpy as np
from hypothesis import given, settings, HealthCheck
from hypothesis import strategies as st

from eventsnn import SRM, Sequential
from eventsnn.event import _backward, batch
from eventsnn.event.backward import _prepare

from .strategies import conv_networks, dense_networks, event_input, examples

SETTINGS = dict(max_examples=examples(25), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _python_loop(in_t, in_i, in_v, in_off, out_t, out_i, out_off, g_out, n_in, n_out, kind,
                 geom, w, n_w, tau_m, tau_s, t_ref, kernel, tau_grad, drop_nonpositive, clamp,
                 clamp_lo, clamp_hi, factor, input_grad, block, per_sample):
    n = in_off.size - 1
    g_in = np.zeros(in_off[n] - in_off[0] if input_grad else 0)
    G = np.zeros((n if per_sample else 1, n_w))
    dropped = 0
    common = (tau_m, tau_s, t_ref, kernel, tau_grad, drop_nonpositive, clamp, clamp_lo,
              clamp_hi, factor, input_grad, block)
    empty = np.zeros(0, np.int64)
    for s in range(n):
        a, b = in_off[s], in_off[s + 1]
        c, d = out_off[s], out_off[s + 1]
        if kind == "conv":
            gi, gw, _, _, nd = _backward.conv_backward(
                in_t[a:b], in_i[a:b], in_v[a:b], out_t[c:d], out_i[c:d], g_out[c:d], geom, w,
                *common)
        else:
            gi, gw, _, _, nd = _backward.layer_backward(
                in_t[a:b], in_i[a:b], in_v[a:b], out_t[c:d], out_i[c:d], g_out[c:d], n_in,
                n_out, True, empty, empty, empty, w, n_w, *common)
        if input_grad:
            g_in[a - in_off[0]:b - in_off[0]] = gi
        G[s if per_sample else 0] += gw
        dropped += nd
    return g_in, G, dropped


def _full(net):
    n = net.neuron
    full = Sequential(*net.layers, neuron=SRM(tau_m=n.tau_m, tau_s=n.tau_s, theta=n.theta,
                                              reset="full", t_ref=n.t_ref), rng=0)
    return full


@settings(**SETTINGS)
@given(st.one_of(dense_networks(), conv_networks()), st.integers(1, 6), st.data(),
       st.sampled_from([0, 1]), st.booleans(), st.booleans(),
       st.sampled_from([None, (-4.0, 0.0)]), st.integers(0, 2**31 - 1))
def test_driver_equals_python_loop(net, n, data, kernel, drop, input_grad, clamp, seed):
    weights = [layer.weight for layer in net.layers]
    net = _full(net)
    for layer, w in zip(net.layers, weights):
        if w is not None:
            layer.weight = w
    xs = [data.draw(event_input(net.n_in, max_events=30, t_max=12.0)) for _ in range(n)]
    levels, _ = batch.simulate_batch(net, batch.Events.from_trains(xs), 10.0)
    prep = _prepare(net)
    rng = np.random.default_rng(seed)
    lo, hi = clamp if clamp is not None else (0.0, 0.0)
    nrn = net.neuron
    seen = 0
    for li, p in enumerate(prep):
        if p[0] not in ("dense", "conv"):
            continue
        below, here = levels[li], levels[li + 1]
        g_out = rng.normal(size=here.times.size)
        # a sub-range of the samples too (the thread chunks start mid-batch)
        a = int(rng.integers(0, n))
        for s0, s1 in ((0, n), (a, n)):
            geom = np.zeros(0, np.int64) if p[0] == "dense" else p[2]
            args = (below.times, below.neurons, below.values, below.offsets[s0:s1 + 1],
                    here.times, here.neurons, here.offsets[s0:s1 + 1], g_out,
                    below.n_neurons, here.n_neurons, p[0], geom, p[1], p[1].size,
                    nrn.tau_m, nrn.tau_s, nrn.t_ref, kernel, 2.5, drop, clamp is not None,
                    lo, hi, 0.85, input_grad,
                    _backward.block_length(nrn.tau_m, nrn.tau_s, kernel, 2.5))
            for per_sample in (False, True):
                want = _python_loop(*args, per_sample)
                got = batch._layer_backward_batch(*args, per_sample)
                np.testing.assert_array_equal(got[0], want[0])
                np.testing.assert_array_equal(got[1], want[1])
                assert got[2] == want[2]
                assert got[1].shape == want[1].shape
        seen += 1
    assert seen > 0
