"""ASF-BP: scale factor against its definition, flows, backward against a naive loop,
loss gradient against finite differences, the scale schedule."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import eventsnn as es
from eventsnn.dense.learners_psc import AsfLearner
from eventsnn.dense.psc_network import asf_backward, asf_forward, asf_scale_ratios
from eventsnn.dense.psc_neurons import AsfNeuron
from eventsnn.dense.rules.asf import flow_input_grad, output_loss, scale_ratio, update_scale

from . import naive_psc as naive

flows = st.integers(1, 6).flatmap(lambda n: st.tuples(
    hnp.arrays(np.float64, (3, n), elements=st.integers(0, 10).map(float)),
    hnp.arrays(np.float64, (3, n), elements=st.floats(-5.0, 12.0))))


@settings(max_examples=80, deadline=None)
@given(f=flows, gated=st.booleans())
def test_scale_ratio_equals_definition(f, gated):
    FO, FI = f
    got = scale_ratio(FO, FI, "fi_ge_fo" if gated else "all")
    assert got == pytest.approx(naive.asf_ratio(FO, FI, gated), rel=1e-12, abs=1e-12)


def test_scale_ratio_examples_and_update():
    FO = np.array([[2.0, 0.0, 3.0]])
    FI = np.array([[4.0, -1.0, 2.0]])  # only entry 0 has FI >= FO
    assert scale_ratio(FO, FI) == pytest.approx(0.5)
    assert scale_ratio(FO, FI, "all") == pytest.approx(5.0 / 5.0)
    assert scale_ratio(np.zeros(3), np.zeros(3)) == 1.0  # FI sum below 1e-3
    assert update_scale(1.0, 0.5) == pytest.approx(0.6 * 0.5 + 0.4 * 1.0)
    with pytest.raises(ValueError, match="same shape"):
        scale_ratio(np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="entries"):
        scale_ratio(np.zeros(2), np.zeros(2), "some")


def test_gate():
    g = flow_input_grad(np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, -1.0]), 0.5)
    np.testing.assert_allclose(g, [0.5, 0.0, 0.0])
    g = flow_input_grad(np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, -1.0]), 0.5, gate=False)
    np.testing.assert_allclose(g, [0.5, 1.0, 1.5])


def _mlp(seed=0):
    return es.Sequential(es.Dense(6, 5), es.Dense(5, 4), es.Dense(4, 3), rng=seed)


def test_flows_and_readout_match_the_forward():
    rng = np.random.default_rng(1)
    net = _mlp()
    x = (rng.random((20, 2, 6)) < 0.4).astype(float)
    neuron = AsfNeuron(theta=0.8, leak=0.99)
    rec = asf_forward(net, x, neuron)
    # Eq. 8: FI_n = W_n FO_{n-1}
    np.testing.assert_allclose(rec.FI[0], rec.FO_in @ net.layers[0].weight.T)
    np.testing.assert_allclose(rec.FI[1], rec.FO[0] @ net.layers[1].weight.T)
    # the output layer integrates W s: u_T = sum_t W s_2[t] = W FO_2
    np.testing.assert_allclose(rec.u_out, rec.FO[1] @ net.layers[2].weight.T)
    # hand-rolled forward of the spiking layers
    s = x
    for l in range(2):
        cur = s @ net.layers[l].weight.T
        V, s = naive.if_layer(cur.reshape(20, -1), 0.8, 0.99)
        s = s.reshape(cur.shape)
        np.testing.assert_allclose(rec.FO[l], s.sum(axis=0))


def test_backward_equals_naive_loop():
    rng = np.random.default_rng(2)
    net = _mlp(3)
    x = (rng.random((30, 3, 6)) < 0.5).astype(float)
    neuron = AsfNeuron(theta=0.5)
    rec = asf_forward(net, x, neuron)
    y = np.array([0, 2, 1])
    losses, gout = output_loss(rec.u_out, y, 0.5, 30)
    scales = [0.3, 0.7, None]
    grads = asf_backward(net, rec, gout, scales)
    W = [layer.weight for layer in net.layers]
    FO = [rec.FO_in, rec.FO[0], rec.FO[1]]
    B = 3
    want = [np.zeros_like(w) for w in W]
    for b in range(B):
        gfi = [None, None, gout[b]]
        for l in (2, 1, 0):
            if l < 2:
                gfo = np.array([sum(W[l + 1][k, i] * gfi[l + 1][k] for k in range(W[l + 1].shape[0]))
                                for i in range(W[l + 1].shape[1])])
                gfi[l] = np.array([gfo[i] * scales[l] * (1.0 if rec.FI[l][b, i] > 0 else 0.0)
                                   for i in range(len(gfo))])
            for i in range(W[l].shape[0]):
                for j in range(W[l].shape[1]):
                    want[l][i, j] += gfi[l][i] * FO[l][b, j]
    for g, w in zip(grads, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def test_output_loss_gradient_by_finite_differences():
    rng = np.random.default_rng(4)
    FI = rng.normal(size=(2, 4)) * 10
    y = np.array([1, 3])
    losses, g = output_loss(FI, y, 1.5, 20)
    Y = np.zeros((2, 4))
    Y[[0, 1], y] = 1
    np.testing.assert_allclose(losses, ((FI / 30 - Y) ** 2).sum(axis=1))
    h = 1e-6
    for b in range(2):
        for k in range(4):
            Fp, Fm = FI.copy(), FI.copy()
            Fp[b, k] += h
            Fm[b, k] -= h
            fd = (output_loss(Fp, y, 1.5, 20)[0][b] - output_loss(Fm, y, 1.5, 20)[0][b]) / (2 * h)
            assert g[b, k] == pytest.approx(fd, rel=1e-6, abs=1e-9)


def test_pooling_neurons_and_ratios():
    net = es.Sequential(es.Conv2d((1, 4, 4), 2, 3, padding=1), es.AvgPool2d(2), es.Flatten(),
                        es.Dense(8, 3), rng=0)
    x = (np.random.default_rng(0).random((15, 2, 16)) < 0.5).astype(float)
    rec = asf_forward(net, x, AsfNeuron(theta=0.5, pool_theta=0.75))
    assert rec.spiking == [True, True, False, False]
    ratios = asf_scale_ratios(net, rec)
    assert ratios[1] == pytest.approx(naive.asf_ratio(rec.FO[1], rec.FI[1], gated=False))
    assert ratios[0] == pytest.approx(naive.asf_ratio(rec.FO[0], rec.FI[0], gated=True))
    rec2 = asf_forward(net, x, AsfNeuron(theta=0.5, pool_theta=None))
    assert rec2.spiking == [True, False, False, False]
    _, g = output_loss(rec.u_out, [0, 1], 0.5, 15)
    grads = asf_backward(net, rec, g, [1.0, 0.5, None, None])
    assert grads[0].shape == net.layers[0].weight.shape and grads[1] is None


def test_scale_schedule_every_fifth_epoch():
    net = _mlp()
    X = np.random.default_rng(0).random((8, 6))
    y = np.arange(8) % 3
    L = AsfLearner(net, rng=0, n_steps=20, theta=0.5, scale_every=5)
    history = []
    for epoch in range(7):
        before = list(L.scales)
        L.loss_and_grads(X, y)
        history.append(L.scales != before)
        L.after_epoch(epoch)
    assert history == [True, False, False, False, False, True, False]


def test_learner_validation_and_determinism():
    net = _mlp()
    with pytest.raises(ValueError, match="unknown option"):
        AsfLearner(net, speed=3)
    with pytest.raises(ValueError, match="ratio_entries"):
        AsfLearner(net, ratio_entries="x")
    X = np.random.default_rng(0).random((4, 6))
    a = AsfLearner(_mlp(), rng=5, n_steps=10).loss_and_grads(X, [0, 1, 2, 0])
    b = AsfLearner(_mlp(), rng=5, n_steps=10).loss_and_grads(X, [0, 1, 2, 0])
    assert a[0] == b[0]
    for ga, gb in zip(a[1], b[1]):
        np.testing.assert_array_equal(ga, gb)
    with pytest.raises(ValueError, match="X"):
        AsfLearner(_mlp()).predict(np.zeros((2, 5)))
