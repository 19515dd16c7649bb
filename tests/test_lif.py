"""The LIF neuron without a synaptic current (es.LIF): the fast engine equals the reference
engine and a direct solution; per-layer neurons; what does not support it."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventsnn as es
from eventsnn.event.reference import simulate_reference

from .test_engine_vs_reference import assert_same_spikes, frame_input, scale_weights


def direct_lif(in_times, in_weights, tau_m, theta, t_ref=0.0):
    """One LIF neuron from its definition: v jumps by the summed weights of one time, decays
    as exp(-s / tau_m); v >= theta after the inputs of a time fires and sets v to 0; inputs
    at or before t_spike + t_ref are lost."""
    by_time = {}
    for t, w in zip(in_times, in_weights):
        by_time[float(t)] = by_time.get(float(t), 0.0) + w
    out, v, t0, r = [], 0.0, 0.0, -math.inf
    for t in sorted(by_time):
        if t <= r:
            continue
        v = v * math.exp(-(t - t0) / tau_m) + by_time[t]
        t0 = t
        if v >= theta:
            out.append(t)
            v, r = 0.0, t + t_ref
    return np.array(out)


def lif(rng):
    return es.LIF(tau_m=float(rng.choice([1.0, 3.0, 7.5])), theta=float(rng.choice([0.5, 1.0, 2.0])),
                  t_ref=float(rng.choice([0.0, 0.0, 0.7, 2.0])))


def lif_network(rng):
    """Dense stacks or Conv -> pool -> Flatten -> Dense, LIF in every layer or mixed with SRM
    layers (per-layer neurons)."""
    if rng.random() < 0.5:
        sizes = [int(rng.integers(2, 7))] + list(rng.integers(1, 7, rng.integers(1, 4)))
        layers = [es.Dense(int(a), int(b)) for a, b in zip(sizes[:-1], sizes[1:])]
    else:
        pool = es.MaxPool2d(2) if rng.random() < 0.5 else es.AvgPool2d(2)
        layers = [es.Conv2d((1, 5, 5), 2, 2, padding=int(rng.integers(0, 2))), pool, es.Flatten()]
        side = (5 + 2 * layers[0].padding - 2 + 1) // 2
        layers.append(es.Dense(2 * side * side, 3))
    mixed = rng.random() < 0.4
    neurons = [(lif(rng) if not mixed or rng.random() < 0.5 else
                es.SRM(tau_m=5.0, tau_s=2.5, theta=1.0, reset=str(rng.choice(["full", "membrane"]))))
               if layer.has_neurons else None for layer in layers]
    net = es.Sequential(*layers, neuron=lif(rng), neurons=neurons, rng=0)
    scale_weights(net, rng)
    return net


@settings(max_examples=15, deadline=None, derandomize=True)
@given(st.integers(0, 2**32 - 1))
def test_fast_engine_equals_reference_engine(seed):
    rng = np.random.default_rng(seed)
    net = lif_network(rng)
    x = frame_input(rng, net.n_in)
    t_end = None if rng.random() < 0.7 else float(rng.uniform(2, 15))
    fast = net.simulate(x, t_end=t_end).spikes
    ref = simulate_reference(net, x, t_end=t_end)
    assert_same_spikes(fast, ref)


def test_engines_fire_and_match_on_many_networks():
    """Not vacuous: across fixed seeds most networks spike in their LIF layers."""
    spiking = 0
    for seed in range(30):
        rng = np.random.default_rng(seed)
        net = lif_network(rng)
        x = frame_input(rng, net.n_in)
        fast = net.simulate(x).spikes
        assert_same_spikes(fast, simulate_reference(net, x))
        spiking += any(len(s) for s, n in zip(fast[1:], net.layer_neurons) if isinstance(n, es.LIF))
    assert spiking >= 15


@pytest.mark.parametrize("seed", range(20))
def test_single_layer_equals_the_direct_solution(seed):
    rng = np.random.default_rng(seed)
    n_in, n_out = 4, 3
    nrn = lif(rng)
    net = es.Sequential(es.Dense(n_in, n_out), neuron=nrn, rng=0)
    net.layers[0].weight = rng.normal(0.5, 0.8, (n_out, n_in))
    x = frame_input(rng, n_in)
    out = net.simulate(x).spikes[1]
    for i in range(n_out):
        expect = direct_lif(x.times, net.layers[0].weight[i, x.neurons] * x.values, nrn.tau_m, nrn.theta,
                            nrn.t_ref)
        np.testing.assert_array_equal(out.times[out.neurons == i], expect)


def test_conv_layer_equals_the_dense_equivalent():
    """Conv2d (sparse kernel) and the Dense layer with the unrolled weights (dense kernel)."""
    rng = np.random.default_rng(3)
    conv = es.Sequential(es.Conv2d((1, 4, 4), 2, 3, padding=1), neuron=es.LIF(tau_m=2.0, t_ref=0.5), rng=1)
    conv.layers[0].weight = rng.normal(0.6, 0.5, conv.layers[0].weight.shape)
    indptr, targets, widx = conv.layers[0].connectivity()
    W = np.zeros((conv.n_out, conv.n_in))
    for j in range(conv.n_in):
        for q in range(indptr[j], indptr[j + 1]):
            W[targets[q], j] = conv.layers[0].weight.ravel()[widx[q]]
    dense = es.Sequential(es.Dense(16, conv.n_out), neuron=conv.neuron, rng=0)
    dense.layers[0].weight = W
    x = frame_input(rng, 16)
    a, b = conv.simulate(x).spikes[1], dense.simulate(x).spikes[1]
    assert len(a) > 0
    np.testing.assert_array_equal(a.times, b.times)
    np.testing.assert_array_equal(a.neurons, b.neurons)


def test_membrane_record_is_the_left_limit():
    net = es.Sequential(es.Dense(1, 1), neuron=es.LIF(tau_m=2.0, theta=1.5), rng=0)
    net.layers[0].weight = np.array([[1.0]])
    x = es.SpikeTrains([1.0, 2.0, 6.0], [0, 0, 0], 1)
    rec = net.simulate(x, record_times=[0.5, 1.0, 1.5, 2.0, 3.0, 6.5])
    v2 = math.exp(-0.5)  # just before the input at 2: 1 * e^{-1/2}
    expect = [0.0, 0.0, math.exp(-0.25), v2, 0.0, math.exp(-0.25)]
    np.testing.assert_allclose(rec.membrane[1][:, 0], expect, rtol=1e-14)
    np.testing.assert_array_equal(rec.spikes[1].times, [2.0])   # 1 + e^{-1/2} >= 1.5


def test_save_load_keeps_lif_and_per_layer_neurons(tmp_path):
    net = es.Sequential(es.Dense(3, 4), es.Dense(4, 2), neuron=es.LIF(tau_m=3.0, theta=0.8, t_ref=0.2),
                        neurons=[None, es.SRM(reset="membrane")], rng=4)
    net.save(tmp_path / "m.npz")
    back = es.Sequential.load(tmp_path / "m.npz")
    assert back.layer_neurons == net.layer_neurons and back.neuron == net.neuron
    x = es.SpikeTrains([0.0, 0.5, 1.0, 1.0], [0, 1, 2, 0], 3, [2.0, 2.0, 2.0, 2.0])
    assert_same_spikes(net.simulate(x).spikes, back.simulate(x).spikes)
    plain = es.Sequential(es.Dense(3, 2), rng=0)
    plain.save(tmp_path / "p.npz")
    import json
    with np.load(tmp_path / "p.npz") as data:  # SRM-only files keep the old format
        assert json.loads(bytes(data["meta"]).decode())["version"] == 1


def test_what_does_not_support_lif():
    net = es.Sequential(es.Dense(2, 2), neuron=es.LIF(), rng=0)
    rec = net.simulate(es.SpikeTrains([0.0], [0], 2, [5.0]))
    with pytest.raises(ValueError, match="timing backward pass does not support LIF"):
        net.backward(rec, np.zeros(len(rec.output)))
    with pytest.raises(ValueError, match="dense mode.*SRM"):
        net.run(np.zeros((3, 1, 2)))
    mixed = es.Sequential(es.Dense(2, 2), es.Dense(2, 2), neurons=[None, es.SRM(tau_m=4.0, tau_s=2.0)],
                          rng=0)
    with pytest.raises(ValueError, match="layer 1.*its own neuron"):
        mixed.run(np.zeros((3, 1, 2)))


def test_per_layer_srm_neurons_in_backward():
    """The timing backward pass uses each layer's own SRM: equal to a network whose single
    neuron is that SRM when only one layer has weights to differentiate."""
    rng = np.random.default_rng(0)
    nrn = es.SRM(tau_m=4.0, tau_s=1.5, theta=0.7)
    a = es.Sequential(es.Dense(3, 2), neurons=[nrn], rng=0)
    b = es.Sequential(es.Dense(3, 2), neuron=nrn, rng=0)
    a.layers[0].weight = b.layers[0].weight = rng.uniform(0.5, 1.5, (2, 3))
    x = es.SpikeTrains([0.0, 0.3, 1.0], [0, 1, 2], 3)
    ra, rb = a.simulate(x), b.simulate(x)
    assert len(ra.output) > 0
    ga = a.backward(ra, np.ones(len(ra.output)))
    gb = b.backward(rb, np.ones(len(rb.output)))
    np.testing.assert_array_equal(ga.weights[0], gb.weights[0])


def test_bad_lif_parameters_and_neurons_argument():
    with pytest.raises(ValueError, match="tau_m"):
        es.LIF(tau_m=0.0)
    with pytest.raises(ValueError, match="theta"):
        es.LIF(theta=-1.0)
    with pytest.raises(ValueError, match="t_ref"):
        es.LIF(t_ref=-0.1)
    with pytest.raises(ValueError, match="one entry per layer"):
        es.Sequential(es.Dense(2, 2), neurons=[None, None])
    with pytest.raises(ValueError, match="neurons\\[1\\] must be None"):
        es.Sequential(es.Conv2d((1, 4, 4), 1, 1), es.AvgPool2d(2), neurons=[None, es.LIF()])
    with pytest.raises(TypeError, match="neurons\\[0\\]"):
        es.Sequential(es.Dense(2, 2), neurons=["lif"])


@pytest.mark.parametrize("conv", [False, True])
def test_max_spikes_guard(conv):
    """A LIF layer fires at most once per input time; more than max_spikes spikes raise."""
    if conv:
        net = es.Sequential(es.Conv2d((1, 2, 2), 1, 1), neuron=es.LIF(), rng=0)
    else:
        net = es.Sequential(es.Dense(4, 1), neuron=es.LIF(), rng=0)
    net.layers[0].weight = np.full(net.layers[0].weight.shape, 2.0)
    x = es.SpikeTrains([0.0, 0.0, 1.0, 2.0], [0, 1, 2, 3], 4)
    assert len(net.simulate(x).spikes[1]) == (4 if conv else 3)
    with pytest.raises(ValueError, match="more than max_spikes=2"):
        net.simulate(x, max_spikes=2)
