"""Event-mode losses: values and spike-time gradients against hand computations and
finite differences of the loss as a function of the spike times."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventsnn as es
from eventsnn import losses
from eventsnn.testing import spike_trains

from .strategies import examples


def _out(times, neurons, n=3):
    return es.SpikeTrains(times, neurons, n)


def test_count_loss_reference_formula():
    # neuron 0 (label) fires 2x, desired 5; neuron 1 fires 3x (ceiling 1); neuron 2 silent
    out = _out([1.0, 2.0, 2.5, 3.0, 4.0], [0, 1, 0, 1, 1])
    loss, g = losses.count_loss(out, 0, t_window=5.0, desired=5, undesired=1)
    d0, d1 = (2 - 5) / 5, (3 - 1) / 5
    assert loss == pytest.approx(0.5 * (d0 ** 2 + d1 ** 2))
    np.testing.assert_allclose(g, [-d0, -d1, -d0, -d1, -d1])   # (n_target - N_o) / T


def test_count_loss_is_one_sided():
    # label above its floor and others below their ceiling: nothing to learn
    out = _out([1.0, 2.0, 3.0, 3.5], [0, 0, 0, 2])
    loss, g = losses.count_loss(out, 0, t_window=4.0, desired=2, undesired=1)
    assert loss == 0.0 and np.all(g == 0)
    # a non-label neuron silent (below undesired = 1): no push to fire
    loss, g = losses.count_loss(_out([1.0], [0]), 0, 4.0, desired=1, undesired=1)
    assert loss == 0.0


def test_supervisory_spike_gives_a_silent_label_neuron_a_gradient():
    net = es.Sequential(es.Dense(2, 3), rng=0)
    net.layers[0].weight = np.array([[0.1, 0.1], [5.0, 5.0], [0.1, 0.1]])
    # inputs late enough that the label neuron's membrane still rises at t = 6 ms
    rec = net.simulate(es.SpikeTrains([4.0, 5.0], [0, 1], 2), t_end=6.0)
    assert rec.output.counts()[0] == 0
    _, g = losses.count_loss(rec.output, 0, 6.0)
    assert not np.any(g[rec.output.neurons == 0])           # silent: nothing to carry it
    sup = losses.with_supervisory_spike(rec, 0, 6.0)
    assert len(sup.output) == len(rec.output) + 1
    assert sup.output.times[-1] == 6.0 and sup.output.neurons[-1] == 0
    loss, g = losses.count_loss(sup.output, 0, 6.0, desired=5, undesired=1)
    assert g[-1] == pytest.approx((5 - 1) / 6.0)
    grads = net.backward(sup, g)
    assert np.all(grads.weights[0][0] < 0)                    # descent raises its weights
    # on a decaying membrane -1/(du/dt) > 0 is clamped to 0 (reference code): no weight
    # gradient from the supervisory spike, but its time share still reaches the inputs
    late = losses.with_supervisory_spike(net.simulate(es.SpikeTrains([0.0, 1.0], [0, 1], 2),
                                                      t_end=9.0), 0, 9.0)
    g_late = net.backward(late, losses.count_loss(late.output, 0, 9.0)[1])
    assert np.all(g_late.weights[0][0] == 0) and np.any(g_late.times[0] != 0)


@settings(max_examples=examples(30), deadline=None)
@given(spike_trains(4, min_events=1, max_events=12, distinct_times=True),
       st.lists(st.floats(0, 20), min_size=12, max_size=12))
def test_time_mse_gradient_is_the_derivative(out, flat):
    out = es.SpikeTrains(out.times + 1.0, out.neurons, 4)
    targets = np.array(flat).reshape(4, 3)
    targets[1, 2] = np.nan
    loss, g = losses.time_mse_loss(out, targets)
    d = 1e-6
    for k in range(len(out)):
        vals = []
        for s in (d, -d):
            t = out.times.copy()
            t[k] += s
            # keep each spike's rank: the perturbation is far below the minimal gap
            vals.append(losses.time_mse_loss(es.SpikeTrains(t, out.neurons, 4), targets)[0])
        assert g[k] == pytest.approx((vals[0] - vals[1]) / (2 * d), abs=1e-5)


@settings(max_examples=examples(30), deadline=None)
@given(spike_trains(4, min_events=1, max_events=12, distinct_times=True), st.integers(0, 3),
       st.floats(0.3, 3.0))
def test_first_spike_loss_gradient_is_the_derivative(out, label, tau):
    out = es.SpikeTrains(out.times + 1.0, out.neurons, 4)
    t_silent = float(out.times.max()) + 1.0
    loss, g = losses.first_spike_loss(out, label, tau=tau, t_silent=t_silent)
    first = out.first_times(fill=t_silent)
    z = -first / tau
    ref = -(z[label] - math.log(np.sum(np.exp(z))))
    assert loss == pytest.approx(ref, rel=1e-10)
    d = 1e-6
    for k in range(len(out)):
        t = out.times.copy()
        t[k] += d
        up = losses.first_spike_loss(es.SpikeTrains(t, out.neurons, 4), label, tau, t_silent)[0]
        t[k] -= 2 * d
        dn = losses.first_spike_loss(es.SpikeTrains(t, out.neurons, 4), label, tau, t_silent)[0]
        assert g[k] == pytest.approx((up - dn) / (2 * d), abs=1e-6)


def test_predict_counts_ties_go_to_the_earliest_neuron():
    out = _out([1.0, 2.0, 0.5, 3.0], [0, 0, 2, 2])
    assert losses.predict_counts(out) == 2
    assert list(losses.predict_counts([out, _out([1.0], [1])])) == [2, 1]


def test_loss_errors():
    out = _out([1.0], [0])
    with pytest.raises(ValueError, match="label"):
        losses.count_loss(out, 3, 5.0)
    with pytest.raises(TypeError, match="label"):
        losses.count_loss(out, 1.5, 5.0)
    with pytest.raises(ValueError, match="t_window"):
        losses.count_loss(out, 0, 0.0)
    with pytest.raises(ValueError, match="targets"):
        losses.time_mse_loss(out, np.zeros((2, 2)))
    with pytest.raises(TypeError, match="out"):
        losses.first_spike_loss([1.0], 0)
    with pytest.raises(ValueError, match="tau"):
        losses.first_spike_loss(out, 0, tau=-1)
