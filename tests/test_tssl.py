"""TSSL-BP kernel against the naive reference and against hand-derived cases."""
import numpy as np
import pytest
from hypothesis import event, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from eventsnn.dense.psc_neurons import PscLIF, psc_layer
from eventsnn.dense.rules.tssl import tssl_delta

from . import naive_psc as naive
from .strategies import examples

# (c, g, drive); the test uses c + drive. fill=st.nothing(): every entry drawn on its own, and the
# drive (a constant added to c) keeps hypothesis's favourite all-zero / tiny arrays from making most
# cases silent
case = st.integers(1, 10).flatmap(lambda T: st.integers(1, 3).flatmap(lambda M: st.tuples(
    hnp.arrays(np.float64, (T, M), elements=st.floats(-0.5, 2.5), fill=st.nothing()),
    hnp.arrays(np.float64, (T, M), elements=st.floats(-1.0, 1.0), fill=st.nothing()),
    st.sampled_from([0.4, 0.0, 0.8]))))
params = st.tuples(st.floats(1.0, 10.0), st.floats(1.0, 5.0), st.floats(0.3, 1.5),
                   st.sampled_from(["zero", "subtract"]))
flags = st.tuples(st.booleans(), st.booleans())
# the code's constants as options: clamp of 1/Delta (8), warm-up PSC threshold (None = 1/(4 tau_s)),
# width of the logistic surrogate (0.2); small max_inv / large thresholds make them bite often
options = st.fixed_dictionaries(dict(
    max_inv=st.sampled_from([8.0, 1.0, 3.0, 50.0]),
    psc_threshold=st.sampled_from([None, 0.0, 0.05, 0.2, 0.5]),
    width=st.sampled_from([0.2, 0.05, 1.0])))


def _tssl_events(s, v, u, a, low, threshold, max_inv):
    """hypothesis statistics (pytest --hypothesis-show-statistics): which paths a case exercises."""
    per_neuron = s.sum(axis=0)
    event("no spike" if per_neuron.max() == 0 else "one spike per neuron at most" if per_neuron.max() == 1
          else "a neuron fires twice (intra-neuron term)")
    u_prev = np.vstack([np.zeros((1, u.shape[1])), u[:-1]])
    if np.any((s == 1) & (v - u_prev > 0) & (v - u_prev < 1 / max_inv)):
        event("1/Delta clamped at a spike")
    if low and np.any(a < threshold):
        event("low-PSC surrogate replaces some steps")


@settings(max_examples=examples(120), deadline=None)
@given(cg=case, p=params, f=flags, opt=options)
def test_tssl_equals_naive(cg, p, f, opt):
    c, g, drive = cg
    c = c + drive
    tau_m, tau_s, theta, reset = p
    low, silent = f
    n = PscLIF(tau_m, tau_s, theta, reset)
    v, s, u, a = psc_layer(c, n)
    thr = 1 / (4 * tau_s) if opt["psc_threshold"] is None else opt["psc_threshold"]
    _tssl_events(s, v, u, a, low, thr, opt["max_inv"])
    got = tssl_delta(g, v, s, u, a, n, low_psc_surrogate=low, silent_timing=silent,
                     psc_threshold=opt["psc_threshold"], max_inv=opt["max_inv"],
                     surrogate_width=opt["width"])
    want = naive.tssl_delta(g, v, s, u, a, tau_m, tau_s, theta, reset, low_psc=low, silent_timing=silent,
                            **opt)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_single_spike_is_inter_neuron_term():
    # one spike at t = 1 and nothing after: D[1] = min(1/Delta, 8) * P[1], D[0] = alpha_m D[1]
    n = PscLIF(tau_m=4.0, tau_s=2.0, theta=1.0)
    c = np.array([[0.5], [0.8], [-2.0]])
    v, s, u, a = psc_layer(c, n)
    assert list(s[:, 0]) == [0, 1, 0]
    g = np.array([[0.3], [0.2], [-0.4]])
    d = tssl_delta(g, v, s, u, a, n, low_psc_surrogate=False)
    P1 = 0.2 / 2 + 0.5 * (-0.4) / 2
    Delta = v[1, 0] - u[0, 0]
    assert Delta == pytest.approx(0.8 - 0.5 / 4)
    assert d[1, 0] == pytest.approx(P1 / Delta)
    assert d[0, 0] == pytest.approx(0.75 * P1 / Delta)
    assert d[2, 0] == 0.0


def test_intra_neuron_term_links_consecutive_spikes():
    n = PscLIF(tau_m=5.0, tau_s=2.0, theta=1.0)
    c = np.array([[1.5], [0.2], [1.3]])
    v, s, u, a = psc_layer(c, n)
    assert list(s[:, 0]) == [1, 0, 1]
    g = np.array([[0.0], [0.0], [1.0]])
    d = tssl_delta(g, v, s, u, a, n, low_psc_surrogate=False)
    D2 = min(1 / (v[2, 0] - u[1, 0]), 8) * (1.0 / 2)
    P0 = 0.5 ** 2 / 2
    D0 = min(1 / v[0, 0], 8) * (P0 + v[0, 0] / 5 * 0.8 * D2)
    np.testing.assert_allclose(d[:, 0], [D0, 0.8 * D2, D2])


def test_low_psc_surrogate_replaces_silent_neurons():
    n = PscLIF(tau_m=5.0, tau_s=2.0, theta=1.0)
    c = np.full((3, 1), 0.2)  # never fires: PSC 0 < 1/8 everywhere
    v, s, u, a = psc_layer(c, n)
    g = np.ones((3, 1))
    off = tssl_delta(g, v, s, u, a, n, low_psc_surrogate=False)
    on = tssl_delta(g, v, s, u, a, n)
    assert np.all(off == 0.0)
    assert np.all(on > 0.0)


def test_validation():
    n = PscLIF()
    z = np.zeros((3, 2))
    with pytest.raises(ValueError, match="v must have shape"):
        tssl_delta(z, np.zeros((3, 1)), z, z, z, n)
    with pytest.raises(TypeError, match="neuron"):
        tssl_delta(z, z, z, z, z, None)
    with pytest.raises(ValueError, match="g"):
        tssl_delta(np.full((3, 2), np.inf), z, z, z, z, n)


# ---- whole network (psc_network + TsslLearner) ---------------------------------------------
import eventsnn as es  # noqa: E402
from eventsnn.dense.learners_psc import NaLearner, TsslLearner  # noqa: E402
from eventsnn.dense.psc_network import (count_loss, desired_spikes, psc_forward,  # noqa: E402
                                        spike_train_loss)


def _naive_network_grads(net, X, y, T, neuron, rule, **kw):
    """End-to-end reference: naive forward per layer, naive rule, loops for W^T delta and
    sum_t delta a^T, batch mean."""
    B = X.shape[0]
    x = np.broadcast_to(X, (T, B, X.shape[1])).reshape(T, -1)
    a = naive.psc_filter(x, neuron.tau_s).reshape(T, B, -1)
    ins, states = [], []
    for layer in net.layers:
        W = layer.weight
        ins.append(a)
        c = np.einsum("tbj,ij->tbi", a, W)
        v, s, u, a = (o.reshape(c.shape) for o in naive.psc_layer(c.reshape(T, -1), neuron.tau_m,
                                                                   neuron.tau_s, neuron.theta))
        states.append((c, v, s, u, a))
    K = a.shape[2]
    d = np.zeros((T, B, K))
    for b in range(B):
        d[:, b, y[b]] = desired_spikes(T)
    target = naive.psc_filter(d.reshape(T, -1), neuron.tau_s).reshape(T, B, K)
    g = a - target
    loss = 0.5 * np.sum(g ** 2) / B
    grads = [None] * len(net.layers)
    for l in reversed(range(len(net.layers))):
        c, v, s, u, aa = states[l]
        flat = lambda z: z.reshape(T, -1)  # noqa: E731
        if rule == "tssl":
            delta = naive.tssl_delta(flat(g), flat(v), flat(s), flat(u), flat(aa), neuron.tau_m,
                                     neuron.tau_s, neuron.theta, **kw).reshape(c.shape)
        else:
            delta = naive.na_delta(flat(g), flat(c), flat(v), flat(s), neuron.tau_m, neuron.tau_s,
                                   neuron.theta, **kw).reshape(c.shape)
        W = net.layers[l].weight
        gw = np.zeros_like(W)
        for t in range(T):
            for b in range(B):
                gw += np.outer(delta[t, b], ins[l][t, b])
        grads[l] = gw / B
        g = np.einsum("tbi,ij->tbj", delta, W)
    return loss, grads


@pytest.mark.parametrize("rule", ["tssl", "na"])
def test_learner_gradients_equal_naive_network(rule):
    rng = np.random.default_rng(7)
    net = es.Sequential(es.Dense(6, 5), es.Dense(5, 3), rng=1)
    for layer in net.layers:
        layer.weight = layer.weight * 2.5
    X = rng.random((4, 6))
    y = np.array([0, 1, 2, 1])
    cls = TsslLearner if rule == "tssl" else NaLearner
    # NA: the options the naive reference implements (the learner's defaults are the code's)
    extra = dict(target_filters=1) if rule == "tssl" else dict(b=10.0, loss_change="direct", rescale=False,
                                                                target="tssl", target_filters=1)
    L = cls(net, n_steps=6, tau_m=5.0, tau_s=2.0, theta=1.0, **extra)
    loss, grads, preds, stats = L.loss_and_grads(X, y)
    want_loss, want = _naive_network_grads(net, X, y, 6, L.neuron, rule)
    assert loss == pytest.approx(want_loss, rel=1e-12)
    for gw, ww in zip(grads, want):
        np.testing.assert_allclose(gw, ww, rtol=1e-9, atol=1e-12)
    assert stats["spikes_per_sample"] > 0
    assert preds.shape == (4,)


def test_losses_against_definitions():
    rng = np.random.default_rng(0)
    a = rng.random((5, 2, 3)) * 0.4
    y = np.array([2, 0])
    losses, g = count_loss(a, y, desired=1.5, undesired=0.2)
    A = a.sum(axis=0)
    for b in range(2):
        want = 0.0
        for k in range(3):
            target = 1.5 if k == y[b] else 0.2
            dlt = (A[b, k] - target) / 5
            if (k == y[b] and dlt > 0) or (k != y[b] and dlt < 0):
                dlt = 0.0
            want += 0.5 * 5 * dlt ** 2
            np.testing.assert_allclose(g[:, b, k], dlt)
        assert losses[b] == pytest.approx(want)
    losses, g = spike_train_loss(a, y, 2.0)
    d = np.zeros((5, 2, 3))
    d[:, 0, 2] = desired_spikes(5)
    d[:, 1, 0] = desired_spikes(5)
    target = naive.psc_filter(d.reshape(5, -1), 2.0).reshape(5, 2, 3)
    np.testing.assert_allclose(g, a - target)
    np.testing.assert_allclose(losses, 0.5 * ((a - target) ** 2).sum(axis=(0, 2)))
    np.testing.assert_array_equal(desired_spikes(5), [0, 1, 1, 1, 1])
    np.testing.assert_array_equal(desired_spikes(10), [0, 1] * 5)


def test_pooling_sums_psc_with_weight_1_1():
    net = es.Sequential(es.Conv2d((1, 4, 4), 1, 1), es.AvgPool2d(2), es.Flatten(), es.Dense(4, 2), rng=0)
    net.layers[0].weight = np.full((1, 1, 1, 1), 3.0)
    x = np.random.default_rng(1).random((4, 1, 16))
    from eventsnn.dense.psc_neurons import PscLIF
    n = PscLIF(5.0, 2.0, 1.0)
    rec = psc_forward(net, x, n)
    a1 = rec.states[0]["a"].reshape(4, 1, 4, 4)
    pooled = 1.1 * (a1[:, :, 0::2, 0::2] + a1[:, :, 1::2, 0::2] + a1[:, :, 0::2, 1::2] + a1[:, :, 1::2, 1::2])
    np.testing.assert_allclose(rec.inputs[2], pooled.reshape(4, 1, 4))
    rec = psc_forward(net, x, n, pool_sum_weight=None)
    np.testing.assert_allclose(rec.inputs[2], pooled.reshape(4, 1, 4) / 4.4)


def test_learner_options_validation():
    net = es.Sequential(es.Dense(4, 2), rng=0)
    with pytest.raises(ValueError, match="unknown option"):
        TsslLearner(net, b=3)
    with pytest.raises(ValueError, match="loss"):
        TsslLearner(net, loss="mse")
    with pytest.raises(ValueError, match="tau_m"):
        NaLearner(net, tau_m=0.1)
    with pytest.raises(TypeError, match="net"):
        NaLearner("net")
    with pytest.raises(ValueError, match="labels"):
        TsslLearner(net).loss_and_grads(np.zeros((2, 4)), [0, 5])
