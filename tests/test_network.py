import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import eventsnn as es

from .strategies import examples, conv_networks, event_input


def test_save_load_round_trip(tmp_path):
    net = es.Sequential(es.Conv2d((2, 6, 6), 3, 3, stride=1, padding=1), es.AvgPool2d(2, adjusted=False),
                        es.Flatten(), es.Dense(27, 4), neuron=es.SRM(6.0, 2.0, 1.5, "membrane", 0.5), rng=3)
    net.save(tmp_path / "m.npz")
    back = es.Sequential.load(tmp_path / "m.npz")
    assert back.neuron == net.neuron
    assert [repr(a) for a in back.layers] == [repr(a) for a in net.layers]
    for a, b in zip(net.layers, back.layers):
        if a.has_weight:
            np.testing.assert_array_equal(a.weight, b.weight)
    rng = np.random.default_rng(0)
    x = es.SpikeTrains(rng.uniform(0, 10, 50), rng.integers(0, 72, 50), 72)
    for s1, s2 in zip(net.simulate(x).spikes, back.simulate(x).spikes):
        assert s1 == s2


def test_same_seed_same_weights():
    a = es.Sequential(es.Dense(4, 3), es.Dense(3, 2), rng=7)
    b = es.Sequential(es.Dense(4, 3), es.Dense(3, 2), rng=7)
    c = es.Sequential(es.Dense(4, 3), es.Dense(3, 2), rng=8)
    np.testing.assert_array_equal(a.layers[1].weight, b.layers[1].weight)
    assert not np.array_equal(a.layers[1].weight, c.layers[1].weight)


@settings(max_examples=examples(15))
@given(data=st.data())
def test_batch_equals_single_for_any_thread_count(data):
    net = data.draw(conv_networks())
    xs = [data.draw(event_input(net.n_in, max_events=25)) for _ in range(5)]
    singles = [net.simulate(x) for x in xs]
    for threads in (1, 2, 4):
        batch = net.simulate(xs, n_threads=threads)
        for r1, r2 in zip(singles, batch):
            for s1, s2 in zip(r1.spikes, r2.spikes):
                assert s1 == s2


def test_conv_connectivity_matches_direct_convolution():
    """The CSR links of Conv2d reproduce a direct (cross-correlation) convolution."""
    rng = np.random.default_rng(0)
    conv = es.Conv2d((2, 5, 6), 3, 3, stride=2, padding=1)
    net = es.Sequential(conv, rng=0)
    x = rng.normal(size=(2, 5, 6))
    indptr, targets, widx = conv.connectivity()
    w = conv.weight.ravel()
    out = np.zeros(conv.n_out)
    xf = x.ravel()
    for j in range(xf.size):
        for q in range(indptr[j], indptr[j + 1]):
            out[targets[q]] += w[widx[q]] * xf[j]
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    Co, Ho, Wo = conv.out_shape
    direct = np.zeros((Co, Ho, Wo))
    for co in range(Co):
        for oy in range(Ho):
            for ox in range(Wo):
                direct[co, oy, ox] = np.sum(conv.weight[co] * xp[:, oy * 2:oy * 2 + 3, ox * 2:ox * 2 + 3])
    np.testing.assert_allclose(out, direct.ravel(), atol=1e-12)


def test_pool_relay_values():
    net = es.Sequential(es.Conv2d((1, 4, 4), 1, 1), es.AvgPool2d(2), rng=0)
    net.layers[0].weight = np.full((1, 1, 1, 1), 100.0)
    # neurons 0, 1 (same window) fire together; neuron 2 (next window) alone
    x = es.SpikeTrains([1.0, 1.0, 1.0], [0, 1, 2], 16)
    rec = net.simulate(x)
    conv_out = rec.spikes[1]
    assert len(conv_out) == 3
    pooled = rec.spikes[2]
    np.testing.assert_array_equal(pooled.neurons, [0, 1])
    np.testing.assert_allclose(pooled.values, [0.5, 0.25])
    src, _ = rec.relays[2]
    np.testing.assert_array_equal(src, [0, 0, 1])
    netm = es.Sequential(es.Conv2d((1, 4, 4), 1, 1), es.MaxPool2d(2), rng=0)
    netm.layers[0].weight = np.full((1, 1, 1, 1), 100.0)
    recm = netm.simulate(x)
    np.testing.assert_allclose(recm.spikes[2].values, [1.0, 1.0])
    src, win = recm.relays[2]
    np.testing.assert_array_equal(win, [True, False, True])
