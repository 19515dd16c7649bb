"""The numba engine equals the readable reference engine on random networks."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from eventsnn.event.reference import simulate_reference

from .strategies import examples, conv_networks, dense_networks, event_input

TOL_MS = 1e-9


def assert_same_spikes(fast, ref):
    assert len(fast) == len(ref)
    for level, (a, b) in enumerate(zip(fast, ref)):
        assert len(a) == len(b), f"level {level}: {len(a)} events vs reference {len(b)}"
        np.testing.assert_array_equal(a.neurons, b.neurons, err_msg=f"level {level}")
        np.testing.assert_allclose(a.times, b.times, rtol=0, atol=TOL_MS, err_msg=f"level {level}")
        np.testing.assert_allclose(a.values, b.values, rtol=1e-12, atol=1e-12, err_msg=f"level {level}")


@settings(max_examples=examples(120))
@given(data=st.data())
def test_dense_networks_match_reference(data):
    net = data.draw(dense_networks())
    x = data.draw(event_input(net.n_in))
    t_end = data.draw(st.sampled_from([None, None, 12.5]))
    rec = net.simulate(x, t_end=t_end)
    assert_same_spikes(rec.spikes, simulate_reference(net, x, t_end=t_end))


@settings(max_examples=examples(60))
@given(data=st.data())
def test_conv_pool_networks_match_reference(data):
    net = data.draw(conv_networks())
    x = data.draw(event_input(net.n_in, max_events=30))
    rec = net.simulate(x)
    assert_same_spikes(rec.spikes, simulate_reference(net, x))


def test_reference_agreement_produces_spikes():
    """Guard against a vacuous comparison: the random networks above do spike."""
    import eventsnn as es
    rng = np.random.default_rng(3)
    net = es.Sequential(es.Dense(5, 4), es.Dense(4, 3), neuron=es.SRM(reset="membrane"), rng=0)
    net.layers[0].weight = rng.normal(1.0, 1.0, (4, 5)) * 2
    net.layers[1].weight = rng.normal(1.0, 1.0, (3, 4)) * 2
    x = es.SpikeTrains(rng.uniform(0, 20, 40), rng.integers(0, 5, 40), 5)
    rec = net.simulate(x)
    assert len(rec.spikes[1]) > 5 and len(rec.spikes[2]) > 2
    assert_same_spikes(rec.spikes, simulate_reference(net, x))
