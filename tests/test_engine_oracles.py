"""The event engine against closed forms, a fine-grid integration and edge cases."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventsnn as es
from eventsnn.event.reference import simulate_reference

from .strategies import examples
from .naive import grid_single_neuron, lif_single_pulse_spikes, single_input_crossing


def one_neuron(w, reset="full", tau_m=4.0, tau_s=2.0, theta=1.0, t_ref=0.0, n_in=1):
    net = es.Sequential(es.Dense(n_in, 1), neuron=es.SRM(tau_m, tau_s, theta, reset, t_ref))
    net.layers[0].weight = np.atleast_2d(np.asarray(w, float))
    return net


@given(w=st.floats(2.0001, 1e4), t0=st.floats(0, 100))
def test_single_input_crossing_closed_form(w, t0):
    net = one_neuron(w)
    out = net.simulate(es.SpikeTrains([t0], [0], 1)).output
    s = single_input_crossing(w, 4.0, 1.0)
    assert len(out) == 1
    assert abs(out.times[0] - (t0 + s)) < 1e-9


@given(w=st.floats(0.0, 1.9999))
def test_single_input_below_peak_never_fires(w):
    # w * max(eps) = w / 2 for tau_s = tau_m / 2
    assert len(one_neuron(w).simulate(es.SpikeTrains([1.0], [0], 1)).output) == 0


@given(w=st.floats(2.01, 500.0), t_ref=st.sampled_from([0.0, 0.3, 2.0]))
def test_membrane_reset_matches_analytic_lif(w, t_ref):
    """One strong pulse makes a current-based LIF fire repeatedly as its current decays;
    each spike time is closed form (tests.naive.lif_single_pulse_spikes)."""
    net = one_neuron(w, reset="membrane", t_ref=t_ref)
    out = net.simulate(es.SpikeTrains([0.0], [0], 1)).output
    expect = lif_single_pulse_spikes(w, 4.0, 1.0, t_ref=t_ref)
    assert len(out) == len(expect)
    np.testing.assert_allclose(out.times, expect, atol=1e-9, rtol=0)


@pytest.mark.parametrize("reset", ["full", "membrane"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fine_grid_integration(reset, seed):
    rng = np.random.default_rng(seed)
    n_in = 6
    times = np.sort(rng.uniform(0, 25, 30))
    idx = rng.integers(0, n_in, 30)
    w = rng.normal(0.8, 0.6, n_in)
    net = one_neuron(w[None, :], reset=reset, tau_m=5.0, tau_s=1.25, n_in=n_in)
    out = net.simulate(es.SpikeTrains(times, idx, n_in), t_end=40.0).output
    dt = 1e-4
    grid = grid_single_neuron(times, w[idx], 5.0, 1.25, 1.0, reset, 40.0, dt=dt)
    assert len(out) > 0
    assert len(out) == len(grid)
    # linear interpolation between grid points: error O(dt^2) per spike
    np.testing.assert_allclose(out.times, grid, atol=1e-6, rtol=0)


def test_no_input_no_spikes():
    net = es.Sequential(es.Dense(3, 2), es.Dense(2, 2), rng=0)
    rec = net.simulate(es.SpikeTrains.empty(3))
    assert [len(s) for s in rec.spikes] == [0, 0, 0]


@pytest.mark.parametrize("reset", ["full", "membrane"])
def test_inhibitory_only_input_never_fires(reset):
    net = one_neuron(-np.ones((1, 4)) * 50, reset=reset, n_in=4)
    x = es.SpikeTrains(np.linspace(0, 10, 40), np.arange(40) % 4, 4)
    rec = net.simulate(x, record_times=np.linspace(0, 20, 50))
    assert len(rec.output) == 0
    assert np.all(rec.membrane[1] <= 0)


def test_input_exactly_at_spike_time_is_forgotten_by_full_reset():
    net = one_neuron(3.0)
    t1 = net.simulate(es.SpikeTrains([0.0], [0], 1)).output.times[0]
    # a second input exactly at the spike time belongs to that spike's window: forgotten
    x = es.SpikeTrains([0.0, t1], [0, 0], 1)
    out = net.simulate(x).output
    assert len(out) == 1 and out.times[0] == t1
    # just after the spike it counts and drives a second spike
    x2 = es.SpikeTrains([0.0, t1 + 1e-9], [0, 0], 1)
    out2 = net.simulate(x2).output
    assert len(out2) == 2
    for y in (x, x2):
        ref = simulate_reference(net, y)[-1]
        np.testing.assert_allclose(net.simulate(y).output.times, ref.times, atol=1e-9)


def test_input_exactly_at_spike_time_counts_for_membrane_reset():
    net = one_neuron(3.0, reset="membrane")
    t1 = net.simulate(es.SpikeTrains([0.0], [0], 1)).output.times[0]
    out = net.simulate(es.SpikeTrains([0.0, t1], [0, 0], 1)).output
    # the second input's current starts from V = 0 at t1: like a fresh weight-3 input plus
    # the first input's remaining current
    ref = simulate_reference(net, es.SpikeTrains([0.0, t1], [0, 0], 1))[-1]
    assert len(out) == len(ref) >= 2
    np.testing.assert_allclose(out.times, ref.times, atol=1e-9)


@pytest.mark.parametrize("rel", [1e-9, 1e-12])
def test_grazing_approach(rel):
    """Peak a hair above threshold: fires at (nearly) the peak; a hair below: silent."""
    nrn = es.SRM(4.0, 2.0, 1.0)
    w_exact = 1.0 / nrn.eps_peak
    above = one_neuron(w_exact * (1 + rel)).simulate(es.SpikeTrains([0.0], [0], 1)).output
    below = one_neuron(w_exact * (1 - rel)).simulate(es.SpikeTrains([0.0], [0], 1)).output
    assert len(above) == 1 and len(below) == 0
    # near a maximum u - theta ~ -(s - t_peak)^2, so the crossing is within sqrt(rel) of it
    assert abs(above.times[0] - nrn.t_peak) < 10 * math.sqrt(rel) * nrn.tau_m


def test_huge_and_tiny_weights():
    huge = one_neuron(1e9).simulate(es.SpikeTrains([5.0], [0], 1)).output
    assert len(huge) == 1 and 5.0 < huge.times[0] < 5.0 + 1e-8
    s = single_input_crossing(1e9, 4.0, 1.0)
    assert abs(huge.times[0] - 5.0 - s) < 1e-12
    tiny = one_neuron(1e-12).simulate(es.SpikeTrains([5.0] * 3, [0] * 3, 1)).output
    assert len(tiny) == 0


def test_silent_layer_leaves_later_layers_empty():
    net = es.Sequential(es.Dense(2, 3), es.Dense(3, 2), rng=0)
    net.layers[0].weight = np.zeros((3, 2))
    net.layers[1].weight = np.full((2, 3), 100.0)
    rec = net.simulate(es.SpikeTrains([1.0, 2.0], [0, 1], 2))
    assert [len(s) for s in rec.spikes] == [2, 0, 0]


def test_coincident_events_applied_together():
    """Two inputs at one time, +3 and -3: applied together they cancel; applied one at a
    time the +3 alone would not fire either (eps(0) = 0), so compare with the sum."""
    net = one_neuron(np.array([[3.0, -2.5]]), n_in=2)
    both = net.simulate(es.SpikeTrains([1.0, 1.0], [0, 1], 2)).output
    assert len(both) == 0  # net weight 0.5 < 2 needed for tau_s = tau_m / 2
    net1 = one_neuron(np.array([[0.5]]))
    assert len(net1.simulate(es.SpikeTrains([1.0], [0], 1)).output) == 0


def test_t_end_stops_simulation():
    net = one_neuron(3.0)
    full = net.simulate(es.SpikeTrains([0.0, 10.0], [0, 0], 1)).output
    assert len(full) == 2
    cut = net.simulate(es.SpikeTrains([0.0, 10.0], [0, 0], 1), t_end=full.times[1] - 1e-6).output
    assert len(cut) == 1
    none = net.simulate(es.SpikeTrains([0.0, 10.0], [0, 0], 1), t_end=0.5).output
    assert len(none) == 0


@settings(max_examples=examples(30))
@given(seed=st.integers(0, 10**6), reset=st.sampled_from(["full", "membrane"]))
def test_recorded_membrane_matches_definition(seed, reset):
    rng = np.random.default_rng(seed)
    net = es.Sequential(es.Dense(4, 3), neuron=es.SRM(5.0, 1.25, 1.0, reset), rng=0)
    net.layers[0].weight = rng.normal(1.0, 1.0, (3, 4)) * 2
    x = es.SpikeTrains(rng.uniform(0, 20, 25), rng.integers(0, 4, 25), 4)
    q = np.sort(rng.uniform(0, 30, 40))
    rec = net.simulate(x, record_times=q)
    from eventsnn.event.reference import ReferenceEngine, _Neuron
    eng = ReferenceEngine(net)
    out = rec.output
    for i in range(3):
        for qi, tq in enumerate(q):
            nrn = _Neuron()
            before = out.times[(out.neurons == i) & (out.times < tq)]
            nrn.last_spike = before[-1] if before.size else -math.inf
            for t, j, val in zip(x.times, x.neurons, x.values):
                if t < tq and (reset == "membrane" or t > nrn.last_spike):
                    nrn.inputs.append((t, net.layers[0].weight[i, j] * val))
            assert abs(rec.membrane[1][qi, i] - eng._u(nrn, tq)) < 1e-9
    # at its own spike times a neuron sits on the threshold
    if len(out):
        rec2 = net.simulate(x, record_times=out.times)
        vals = rec2.membrane[1][np.arange(len(out)), out.neurons]
        np.testing.assert_allclose(vals, 1.0, atol=1e-9)
