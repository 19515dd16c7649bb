"""eventsnn.testing: the strategies draw valid objects and the invariant check accepts true
invariance and rejects broken sums."""
import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventsnn as es
from eventsnn.testing import (POOLS, assert_gradient_sum_invariant, gradient_sums,
                              network_inputs, networks, spike_trains, weight_arrays)

from .strategies import examples


@settings(max_examples=examples(30), deadline=None)
@given(spike_trains(5, max_events=20, graded=True))
def test_spike_trains_are_valid(st_):
    assert st_.n_neurons == 5
    assert np.all(np.diff(st_.times) >= 0)
    assert np.all((st_.values >= 0.1) & (st_.values <= 2.0))


@settings(max_examples=examples(30), deadline=None)
@given(spike_trains(3, min_events=2, max_events=20, t_max=7.0, distinct_times=True))
def test_distinct_times(st_):
    assert len(np.unique(st_.times)) == len(st_)
    assert st_.times.min() >= 0 and st_.times.max() <= 7.0 + 1e-12


@settings(max_examples=examples(20), deadline=None)
@given(weight_arrays((3, 4), -1.0, 2.0))
def test_weight_arrays(w):
    assert w.shape == (3, 4) and np.all((w >= -1) & (w <= 2))


@settings(max_examples=examples(30), deadline=None)
@given(st.data())
def test_networks_are_simulable(data):
    net = data.draw(networks(pools=POOLS))
    x = data.draw(network_inputs(net))
    rec = net.simulate(x)
    assert len(rec.spikes) == len(net.layers) + 1
    assert all(np.all(np.isfinite(l.weight)) for l in net.layers if l.has_weight)


def _fired_net():
    net = es.Sequential(es.Dense(3, 4), es.Dense(4, 2), rng=0)
    net.layers[0].weight = np.abs(net.layers[0].weight) * 4 + 1
    net.layers[1].weight = np.abs(net.layers[1].weight) * 4 + 1
    rec = net.simulate(es.SpikeTrains([0.0, 0.3, 0.9, 2.0], [0, 1, 2, 0], 3))
    assert len(rec.output) > 0
    return net, rec


def test_invariant_check_accepts_and_rejects():
    net, rec = _fired_net()
    g = net.backward(rec, np.ones(len(rec.output)))
    assert_gradient_sum_invariant(net, rec, g)
    sums = gradient_sums(g)
    assert sums[0] == pytest.approx(sums[-1])
    broken = copy.deepcopy(g)
    broken.times[1] = broken.times[1] * 1.5
    with pytest.raises(AssertionError, match="layer"):
        assert_gradient_sum_invariant(net, rec, broken)
    # a factor != 1 is part of the expected sum
    g85 = net.backward(rec, np.ones(len(rec.output)), factor=0.85)
    assert_gradient_sum_invariant(net, rec, g85)
    assert gradient_sums(g85)[0] == pytest.approx(0.85 ** 2 * sums[-1])


def test_invariant_check_leaves_out_dropped_shares():
    """A spike driven by net-inhibitory h-weights (S_k <= 0 under the exp kernel) carries
    its gradient nowhere; the check discounts it."""
    net = es.Sequential(es.Dense(2, 1), neuron=es.SRM())
    net.layers[0].weight = [[6.0, -3.0]]
    # the excitatory input early, the inhibitory one just before the crossing: with a
    # short tau_grad the recent inhibitory event dominates S_k
    t_alone = net.simulate(es.SpikeTrains([0.0], [0], 2)).output.times[0]
    rec = net.simulate(es.SpikeTrains([0.0, t_alone - 0.05], [0, 1], 2))
    assert len(rec.output) == 1
    g = net.backward(rec, [1.0], kernel="exp", tau_grad=0.05)
    assert g.sums[1][0] <= 0 and g.dropped[0] == 1
    assert np.all(g.times[0] == 0)
    assert_gradient_sum_invariant(net, rec, g)
