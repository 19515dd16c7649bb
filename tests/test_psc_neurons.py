"""PscLIF and ASF IF/LIF forward kernels against the naive references."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from eventsnn.dense.psc_neurons import AsfNeuron, PscLIF, asf_layer, psc_filter, psc_layer

from . import naive_psc as naive

currents = st.integers(1, 12).flatmap(lambda T: st.integers(1, 4).flatmap(
    lambda M: hnp.arrays(np.float64, (T, M), elements=st.floats(-1.0, 3.0))))
params = st.tuples(st.floats(1.0, 12.0), st.floats(1.0, 6.0), st.floats(0.2, 2.0),
                   st.sampled_from(["zero", "subtract"]))


@settings(max_examples=60, deadline=None)
@given(c=currents, p=params)
def test_psc_layer_equals_naive(c, p):
    tau_m, tau_s, theta, reset = p
    neuron = PscLIF(tau_m, tau_s, theta, reset)
    got = psc_layer(c, neuron)
    want = naive.psc_layer(c, tau_m, tau_s, theta, reset)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(x=currents, tau_s=st.floats(1.0, 6.0))
def test_psc_filter_equals_naive(x, tau_s):
    np.testing.assert_allclose(psc_filter(x, tau_s), naive.psc_filter(x, tau_s), rtol=1e-12, atol=1e-14)


@settings(max_examples=60, deadline=None)
@given(x=currents, theta=st.floats(0.2, 2.0), leak=st.floats(0.5, 1.0))
def test_if_layer_equals_naive(x, theta, leak):
    vm, s = asf_layer(x, theta, leak)
    wv, ws = naive.if_layer(x, theta, leak)
    np.testing.assert_allclose(vm, wv, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(s, ws)


def test_psc_layer_hand_example():
    # tau_m = 2 -> alpha_m = 0.5; tau_s = 2 -> alpha_s = 0.5; theta = 1, constant current 0.6
    c = np.full((4, 1), 0.6)
    v, s, u, a = psc_layer(c, PscLIF(2.0, 2.0, 1.0))
    np.testing.assert_allclose(v[:, 0], [0.6, 0.9, 1.05, 0.6])
    np.testing.assert_array_equal(s[:, 0], [0, 0, 1, 0])
    np.testing.assert_allclose(u[:, 0], [0.6, 0.9, 0.0, 0.6])
    np.testing.assert_allclose(a[:, 0], [0, 0, 0.5, 0.25])
    # strict threshold: exactly theta does not fire
    v, s, u, a = psc_layer(np.array([[1.0]]), PscLIF(2.0, 2.0, 1.0))
    assert s[0, 0] == 0.0


def test_kappa_is_the_psc_of_one_spike():
    n = PscLIF(4.0, 3.0)
    x = np.zeros((6, 1))
    x[0] = 1.0
    np.testing.assert_allclose(psc_filter(x, 3.0)[:, 0], n.kappa(6))


def test_shapes_preserved():
    c = np.random.default_rng(0).normal(size=(5, 3, 2, 4))
    outs = psc_layer(c, PscLIF())
    assert all(o.shape == c.shape for o in outs)


@pytest.mark.parametrize("kwargs, exc", [
    (dict(tau_m=0.5), ValueError), (dict(tau_s=-1.0), ValueError), (dict(theta=0.0), ValueError),
    (dict(theta=float("nan")), ValueError), (dict(reset="full"), ValueError), (dict(tau_m="a"), TypeError)])
def test_psclif_validation(kwargs, exc):
    with pytest.raises(exc):
        PscLIF(**kwargs)


def test_asf_neuron_validation_and_factories():
    assert AsfNeuron.IF().leak == 1.0
    assert AsfNeuron.LIF().leak == 0.99
    with pytest.raises(ValueError, match="leak"):
        AsfNeuron(leak=1.5)
    with pytest.raises(ValueError, match="pool_theta"):
        AsfNeuron(pool_theta=-1.0)
    assert AsfNeuron(pool_theta=None).pool_theta is None


def test_input_validation():
    with pytest.raises(ValueError, match="c"):
        psc_layer(np.array([[np.nan]]), PscLIF())
    with pytest.raises(TypeError, match="neuron"):
        psc_layer(np.zeros((2, 2)), "lif")
    with pytest.raises(ValueError, match="tau_s"):
        psc_filter(np.zeros((2, 2)), 0.5)
    with pytest.raises(ValueError, match="leak"):
        asf_layer(np.zeros((2, 2)), 1.0, 2.0)
