"""Firing-rate initialisation: the binary search reaches the target rate per layer, wakes
silent networks up, and follows the reference bracket rule."""
import numpy as np
import pytest

import eventsnn as es
from eventsnn.init import init_firing_rate


def _inputs(n_in, n=12, seed=0):
    rng = np.random.default_rng(seed)
    return [es.SpikeTrains(rng.uniform(0, 5, 30), rng.integers(0, n_in, 30), n_in,
                           rng.uniform(0.2, 1.0, 30)) for _ in range(n)]


def _mean_counts(net, xs, t_end):
    recs = net.simulate(xs, t_end=t_end)
    return [np.mean([len(r.spikes[li]) for r in recs]) / layer.n_out
            for li, layer in enumerate(net.layers, start=1) if layer.has_neurons]


@pytest.mark.parametrize("target", [0.5, 2.0])
def test_each_layer_reaches_the_target_rate(target):
    net = es.Sequential(es.Dense(20, 30), es.Dense(30, 10), rng=1)
    for layer in net.layers:            # start silent: tiny weights
        layer.weight = layer.weight * 1e-3
    xs = _inputs(20)
    assert _mean_counts(net, xs, 8.0) == [0.0, 0.0]
    scales, rates = init_firing_rate(net, xs, target=target, t_end=8.0, low=0.05, high=1e5)
    got = _mean_counts(net, xs, 8.0)
    for r, g in zip(rates, got):
        assert r == g
        # the rate is a step function of the scale: the search stops at the first scale
        # at or above the target, within one spike of the batch per neuron
        assert target <= g <= target + 1.0
    assert all(s > 1.0 for s in scales)


def test_bracket_rule_and_conv_network():
    net = es.Sequential(es.Conv2d((1, 6, 6), 3, 3), es.AvgPool2d(2), es.Flatten(),
                        es.Dense(12, 4), rng=2)
    xs = _inputs(36, n=8)
    w_before = [l.weight.copy() if l.has_weight else None for l in net.layers]
    scales, rates = init_firing_rate(net, xs, target=1.0, t_end=10.0, ratio=1.01)
    assert scales[1] is None and scales[2] is None and rates[1] is None
    for layer, w0, s in zip(net.layers, w_before, scales):
        if layer.has_weight:
            np.testing.assert_allclose(layer.weight, w0 * s)
            assert 0.05 <= s <= 500
    assert rates[0] >= 1.0 and rates[3] >= 1.0


def test_search_stops_within_the_bracket_ratio():
    """Excitatory weights make the rate monotone in the scale: the returned scale reaches
    the target and the scale one bracket ratio below does not."""
    net = es.Sequential(es.Dense(5, 4), rng=3)
    net.layers[0].weight = np.abs(net.layers[0].weight) + 0.1
    xs = _inputs(5, n=6)
    w0 = net.layers[0].weight.copy()
    (scale,), (rate,) = init_firing_rate(net, xs, target=1.5, t_end=10.0, ratio=1.01)
    assert rate >= 1.5
    net.layers[0].weight = w0 * scale / 1.01
    assert _mean_counts(net, xs, 10.0)[0] < 1.5


def test_init_errors():
    net = es.Sequential(es.Dense(3, 2))
    with pytest.raises(TypeError, match="inputs"):
        init_firing_rate(net, [])
    with pytest.raises(ValueError, match="inputs\\[0\\]"):
        init_firing_rate(net, [es.SpikeTrains([0.0], [0], 4)])
    xs = _inputs(3, n=2)
    with pytest.raises(ValueError, match="target"):
        init_firing_rate(net, xs, target=0)
    with pytest.raises(ValueError, match="ratio"):
        init_firing_rate(net, xs, ratio=1.0)
    with pytest.raises(ValueError, match="high"):
        init_firing_rate(net, xs, low=5, high=1)
