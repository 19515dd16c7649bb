"""ASF-BP: scale factor against its definition; flows, ratios and backward (weight gradients and
per-layer signals) of random networks against tests/naive_psc.py; the learner end to end; loss
gradient against finite differences; the scale schedule."""
import numpy as np
import pytest
from hypothesis import event, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import eventsnn as es
from eventsnn.dense import psc_network
from eventsnn.dense.learners_psc import AsfLearner
from eventsnn.dense.psc_network import asf_backward, asf_forward, asf_scale_ratios
from eventsnn.dense.psc_neurons import AsfNeuron
from eventsnn.dense.rules.asf import flow_input_grad, output_loss, scale_ratio, update_scale

from . import naive_psc as naive
from .strategies import examples

flows = st.integers(1, 6).flatmap(lambda n: st.tuples(
    hnp.arrays(np.float64, (3, n), elements=st.integers(0, 10).map(float)),
    hnp.arrays(np.float64, (3, n), elements=st.floats(-5.0, 12.0))))


@settings(max_examples=examples(80), deadline=None)
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


@st.composite
def asf_cases(draw):
    """A random ASF network (MLP, or Conv2d [+ max/avg pool] [+ Flatten] [+ hidden Dense] +
    read-out), input spikes (T, B, n_in) (0/1, signed, or graded), neuron, per-layer scales,
    gate, labels. Weights N(mean, 1) * scale / sqrt(fan-in) so that most cases spike."""
    if draw(st.integers(0, 2)) < 2:
        sizes = draw(st.lists(st.integers(1, 6), min_size=2, max_size=4))
        if len(sizes) == 2 and draw(st.integers(0, 3)):
            sizes.insert(1, draw(st.integers(1, 6)))  # mostly with a hidden (spiking) layer
        layers = [es.Dense(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
    else:
        C, H = draw(st.integers(1, 2)), draw(st.integers(3, 6))
        k, stride, pad = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(0, 1))
        k = min(k, H + 2 * pad)
        conv = es.Conv2d((C, H, H), draw(st.integers(1, 3)), k, stride=stride, padding=pad)
        Ho = (H + 2 * pad - k) // stride + 1
        layers, shape = [conv], (conv.out_channels, Ho, Ho)
        pool = draw(st.sampled_from(["max", "avg", "none"]))
        if pool != "none" and Ho >= 2:
            layers.append(es.MaxPool2d(2) if pool == "max" else es.AvgPool2d(2))
            shape = (shape[0], Ho // 2, Ho // 2)
        if draw(st.booleans()):
            layers.append(es.Flatten())
        n = int(np.prod(shape))
        if draw(st.booleans()):
            h = draw(st.integers(1, 5))
            layers.append(es.Dense(n, h))
            n = h
        layers.append(es.Dense(n, draw(st.integers(1, 4))))
    net = es.Sequential(*layers, rng=0)
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    scale, mean = draw(st.sampled_from([1.5, 3.0, 0.7])), draw(st.sampled_from([0.5, 0.0, 1.0]))
    for layer in net.layers:
        if layer.has_weight:
            fan_in = layer.weight[0].size
            layer.weight = rng.normal(mean, 1.0, layer.weight.shape) * scale / np.sqrt(fan_in)
    T = draw(st.integers(1, 20)) if draw(st.integers(0, 4)) == 0 else draw(st.integers(8, 20))
    B = draw(st.integers(1, 3))
    x = (rng.random((T, B, net.n_in)) < draw(st.sampled_from([0.5, 0.9, 0.2]))).astype(float)
    kind = draw(st.sampled_from(["binary", "graded", "signed"]))
    if kind == "signed":
        x *= rng.choice([-1.0, 1.0], x.shape)
    elif kind == "graded":
        x *= rng.uniform(-0.5, 2.0, x.shape)
    neuron = AsfNeuron(theta=draw(st.sampled_from([0.5, 1.0, 2.0])),
                       leak=draw(st.sampled_from([1.0, 0.99, 0.8])),  # IF, the paper's LIF, a leakier LIF
                       pool_theta=draw(st.sampled_from([0.75, None, 0.3])))
    scales = [draw(st.floats(0.05, 2.0)) for _ in net.layers]
    y = rng.integers(0, net.layers[-1].n_out, B)
    return net, x, neuron, scales, draw(st.booleans()), y


def _close(got, want):
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def _spike_event(net, rec):
    """hypothesis statistics (pytest --hypothesis-show-statistics): how many cases spike."""
    sp = [l for l in range(len(net.layers)) if rec["spiking"][l]]
    fired = [rec["FO"][l].sum() > 0 for l in sp]
    event("no spiking layer" if not sp else "every spiking layer fires" if all(fired)
          else "some spiking layer fires" if any(fired) else "silent")


@settings(max_examples=examples(60), deadline=None)
@given(case=asf_cases(), entries=st.sampled_from(["fi_ge_fo", "all"]))
def test_asf_network_equals_naive(case, entries):
    """Flows, loss, ratios, weight gradients and the per-layer dL/dFO, dL/dFI of every spiking
    layer against tests/naive_psc.py (forward neuron by neuron, backward link by link)."""
    net, x, neuron, scales, gate, y = case
    T = x.shape[0]
    rec = asf_forward(net, x, neuron)
    want = naive.asf_forward(net, x, neuron.theta, neuron.leak, neuron.pool_theta)
    _spike_event(net, want)
    assert rec.spiking == want["spiking"]
    _close(rec.FO_in, want["FO_in"])
    _close(rec.u_out, want["u_out"])
    for l in range(len(net.layers)):
        for name, got in (("FI", rec.FI[l]), ("FO", rec.FO[l])):
            if want[name][l] is None:
                assert got is None
            else:
                _close(got, want[name][l])
    for l, r in enumerate(asf_scale_ratios(net, rec, entries)):
        if not want["spiking"][l]:
            assert r is None
            continue
        gated = entries == "fi_ge_fo" and net.layers[l].has_neurons  # pooling neurons: all entries
        assert r == pytest.approx(naive.asf_ratio(want["FO"][l], want["FI"][l], gated), rel=1e-12, abs=1e-12)
    losses, g = output_loss(rec.u_out, y, neuron.theta, T)
    want_losses, want_g = naive.asf_loss(want["u_out"], y, neuron.theta, T)
    _close(losses, want_losses)
    _close(g, want_g)
    # spy on the library's per-layer step to see its dL/dFO and dL/dFI
    seen = []

    def spy(grad_fo, FI, scale, gate=True):
        out = flow_input_grad(grad_fo, FI, scale, gate)
        seen.append((np.array(grad_fo), out))
        return out

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(psc_network, "flow_input_grad", spy)
        grads = asf_backward(net, rec, g, scales, gate)
    want_grads, gfi, gfo = naive.asf_backward(net, want, want_g, scales, gate)
    for got, w in zip(grads, want_grads):
        if w is None:
            assert got is None
        else:
            _close(got, w)
    spiking = [l for l in reversed(range(len(net.layers))) if want["spiking"][l]]
    assert len(seen) == len(spiking)
    for (got_fo, got_fi), l in zip(seen, spiking):
        _close(got_fo, gfo[l])
        _close(got_fi, gfi[l])


@settings(max_examples=examples(20), deadline=None)
@given(case=asf_cases(), entries=st.sampled_from(["fi_ge_fo", "all"]),
       momentum=st.sampled_from([0.4, 0.0, 1.0]), seed=st.integers(0, 2**31 - 1))
def test_asf_learner_equals_naive(case, entries, momentum, seed):
    """AsfLearner.loss_and_grads in an updating epoch: encoding P = min(1, rate |x|) with the
    sign of x, scales S = (1 - m) ratio + m * 1 from this batch, mean loss, gradients of the
    batch mean."""
    net, x, neuron, _, gate, y = case
    T, B = x.shape[:2]
    X = 2.0 * x.mean(axis=0)  # firing probabilities min(1, |X|/2) = |mean input|
    L = AsfLearner(net, n_steps=T, theta=neuron.theta, leak=neuron.leak, pool_theta=neuron.pool_theta,
                   gate=gate, ratio_entries=entries, scale_momentum=momentum, input_rate=0.5)
    loss, grads, preds, stats = L.loss_and_grads(X, y, rng=seed)
    r = np.random.default_rng(seed).random((T, B, net.n_in))
    spikes = np.zeros((T, B, net.n_in))
    for t, b, j in np.ndindex(*spikes.shape):
        if r[t, b, j] < min(1.0, 0.5 * abs(X[b, j])):
            spikes[t, b, j] = np.sign(X[b, j])
    want = naive.asf_forward(net, spikes, neuron.theta, neuron.leak, neuron.pool_theta)
    _spike_event(net, want)
    scales = [None] * len(net.layers)
    for l, layer in enumerate(net.layers):
        if want["spiking"][l]:
            gated = entries == "fi_ge_fo" and layer.has_neurons
            scales[l] = (1 - momentum) * naive.asf_ratio(want["FO"][l], want["FI"][l], gated) + momentum * 1.0
    assert len(L.scales) == len(scales)
    for got_scale, want_scale in zip(L.scales, scales):
        if want_scale is None:
            assert got_scale is None
        else:
            assert got_scale == pytest.approx(want_scale, rel=1e-12, abs=1e-12)
    losses, g = naive.asf_loss(want["u_out"], y, neuron.theta, T)
    assert loss == pytest.approx(losses.mean(), rel=1e-10, abs=1e-12)
    want_grads, _, _ = naive.asf_backward(net, want, g / B, scales, gate)
    for got, w in zip(grads, want_grads):
        if w is None:
            assert got is None
        else:
            _close(got, w)
    np.testing.assert_array_equal(preds, np.argmax(want["u_out"], axis=1))
    assert stats["spikes_per_sample"] == pytest.approx(
        np.mean(sum(want["FO"][l].sum(axis=1) for l in range(len(net.layers)) if want["spiking"][l])
                if any(want["spiking"]) else 0.0))


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
