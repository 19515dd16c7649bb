"""NA kernel: equal to the brute-force reference (a full forward re-run with the membrane
forced to theta and the firing state flipped at each step); its loss change equal to the exact
change of the van Rossum loss minus its quadratic term."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from eventsnn.dense.psc_neurons import PscLIF, psc_layer
from eventsnn.dense.rules.na import code_rescale, na_delta

from . import naive_psc as naive

case = st.integers(1, 10).flatmap(lambda T: st.integers(1, 3).flatmap(lambda M: st.tuples(
    hnp.arrays(np.float64, (T, M), elements=st.floats(-0.5, 2.5)),
    hnp.arrays(np.float64, (T, M), elements=st.floats(-1.0, 1.0)))))
params = st.tuples(st.floats(1.0, 10.0), st.floats(1.0, 5.0), st.floats(0.3, 1.5),
                   st.sampled_from(["zero", "subtract"]), st.sampled_from([5.0, 10.0]),
                   st.sampled_from([1, 3]))


@settings(max_examples=80, deadline=None)
@given(cg=case, p=params)
def test_na_equals_bruteforce(cg, p):
    c, g = cg
    tau_m, tau_s, theta, reset, b, power = p
    n = PscLIF(tau_m, tau_s, theta, reset)
    v, s, u, a = psc_layer(c, n)
    got = na_delta(g, c, v, s, n, b=b, power=power)
    want = naive.na_delta(g, c, v, s, tau_m, tau_s, theta, reset, b=b, power=power)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_neighbour_equals_forward_with_perturbed_current():
    """The SNS neighbour of step t is the forward pass with the current at t moved by the
    perturbation theta - v[t] (plus a hair to cross the strict threshold when adding)."""
    rng = np.random.default_rng(3)
    n = PscLIF(5.0, 2.0, 1.0)
    T = 12
    for trial in range(20):
        c = rng.uniform(-0.3, 1.2, size=(T, 1))
        v, s, u, a = psc_layer(c, n)
        for t in range(T):
            cp = c.copy()
            eps = n.theta - v[t, 0]
            cp[t, 0] += eps + (1e-9 if s[t, 0] == 0 else -1e-9)
            _, sp, _, ap = psc_layer(cp, n)
            _, _, _, ap_ref = naive.psc_neuron(list(c[:, 0]), 5.0, 2.0, 1.0, forced=(t, 1 - s[t, 0]))
            assert sp[t, 0] == 1 - s[t, 0]
            np.testing.assert_allclose(ap[:, 0], ap_ref, atol=1e-6)


def test_loss_change_is_first_order_term_of_exact_loss_change():
    """Output layer, L = 1/2 sum (a - target)^2: for the neighbour of step t (the forward pass
    with the current at t moved by d = theta - v[t]), L(a_p) - L(a) = g . (a_p - a)
    + 1/2 |a_p - a|^2 exactly. With power 1 and no clipping delta[t] = Delta L_t / d."""
    rng = np.random.default_rng(11)
    for reset in ("zero", "subtract"):
        n = PscLIF(5.0, 2.0, 1.0, reset)
        T = 15
        for trial in range(15):
            c = rng.uniform(-0.5, 1.6, size=(T, 1))
            target = naive.psc_filter((rng.random((T, 1)) < 0.3).astype(float), 2.0)
            v, s, u, a = psc_layer(c, n)
            g = a - target
            loss = 0.5 * np.sum(g ** 2)
            delta = na_delta(g, c, v, s, n, b=1e300, power=1)
            for t in range(T):
                d = n.theta - v[t, 0]
                if abs(d) < 1e-6:
                    continue
                cp = c.copy()
                cp[t, 0] += d + (1e-10 if s[t, 0] == 0 else -1e-10)
                _, sp, _, ap = psc_layer(cp, n)
                exact = 0.5 * np.sum((ap - target) ** 2) - loss
                first_order = exact - 0.5 * np.sum((ap - a) ** 2)
                assert delta[t, 0] * d == pytest.approx(first_order, abs=1e-7)


def test_signs_point_to_the_target():
    # one output neuron that fires at t=1 but should not: removing the spike lowers the loss,
    # so delta[1] > 0 (lower the membrane); a silent step whose added spike would raise the
    # loss also gets delta > 0.
    n = PscLIF(5.0, 2.0, 1.0)
    c = np.array([[0.3], [1.5], [0.1]])
    v, s, u, a = psc_layer(c, n)
    assert list(s[:, 0]) == [0, 1, 0]
    g = a.copy()  # target PSC 0: g = a - 0
    d = na_delta(g, c, v, s, n)
    assert d[1, 0] > 0 and d[0, 0] > 0


def test_clip_bound():
    n = PscLIF(5.0, 2.0, 1.0)
    c = np.array([[0.999], [0.0]])
    v, s, u, a = psc_layer(c, n)
    g = np.ones((2, 1))
    d5 = na_delta(g, c, v, s, n, b=5.0)
    d10 = na_delta(g, c, v, s, n, b=10.0)
    assert d10[0, 0] == pytest.approx(2 * d5[0, 0])


@settings(max_examples=60, deadline=None)
@given(cg=case, p=params)
def test_accumulated_loss_change_equals_e_dot_psc_difference(cg, p):
    """loss_change="accumulated": Delta L_t = sum_k e[k] (a_p[k] - a[k]) with e[t] = g[t] +
    alpha_s e[t+1] and a_p the PSC of the neighbour, found by a full forward re-run
    (naive.psc_neuron with the state at t forced); delta = Delta L_t * clip(1/d^power)."""
    c, g = cg
    tau_m, tau_s, theta, reset, b, power = p
    n = PscLIF(tau_m, tau_s, theta, reset)
    v, s, u, a = psc_layer(c, n)
    got = na_delta(g, c, v, s, n, b=b, power=power, loss_change="accumulated")
    T, M = g.shape
    alpha_s = 1.0 - 1.0 / tau_s
    for j in range(M):
        e = np.zeros(T + 1)
        for t in range(T - 1, -1, -1):
            e[t] = g[t, j] + alpha_s * e[t + 1]
        for t in range(T):
            _, _, _, ap = naive.psc_neuron(list(c[:, j]), tau_m, tau_s, theta, reset=reset,
                                           forced=(t, 1 - s[t, j]))
            dl = float(np.dot(e[:T], np.asarray(ap) - a[:, j]))
            d = theta - v[t, j]
            scale = b if d == 0 else float(np.clip(1.0 / d ** power, -b, b))
            assert got[t, j] == pytest.approx(dl * scale, rel=1e-9, abs=1e-11)


def test_code_rescale_is_the_authors_formula():
    rng = np.random.default_rng(5)
    out = rng.normal(0.0, 0.3, (4, 3, 2))
    m = np.mean(np.abs(out))
    r_out, m_out = code_rescale(out)
    # output layer: its own rounded mean is the reference
    np.testing.assert_allclose(r_out, out * 1.2 * np.log(round(m, 3) / (m + 1e-5) + 1.02), rtol=1e-14)
    assert m_out == round(float(np.mean(np.abs(r_out))), 3)
    hid = rng.normal(0.0, 0.01, (4, 3, 5))
    mh = np.mean(np.abs(hid))
    r_hid, _ = code_rescale(hid, m_out)
    np.testing.assert_allclose(r_hid, hid * 1.2 * np.log(m_out / (mh + 1e-5) + 1.02), rtol=1e-14)
    # a small hidden gradient is amplified towards the output layer's magnitude
    assert np.mean(np.abs(r_hid)) > 3 * mh
    z, mz = code_rescale(np.zeros(3))
    assert np.all(z == 0) and mz == 0.0


def test_learner_rescale_uses_the_output_layers_mean():
    """NaLearner(rescale=True): the output layer is rescaled against itself, each layer below
    against the output layer's stored mean of the same batch; the rescaled deltas are what
    the weight gradients are built from. Oracle: the backward pass written out with
    na_delta and numpy means."""
    import eventsnn as es
    from eventsnn.dense import learners_psc

    rng = np.random.default_rng(0)
    net = es.Sequential(es.Dense(6, 5), es.Dense(5, 3), rng=0)
    for layer in net.layers:
        layer.weight = rng.normal(0.6, 0.5, layer.weight.shape)
    X, y = rng.random((4, 6)), np.array([0, 1, 2, 0])
    plain = learners_psc.NaLearner(net, b=5.0, rescale=False)
    scaled = learners_psc.NaLearner(net, b=5.0, rescale=True)
    _, g_plain, _, _ = plain.loss_and_grads(X, y)
    rec = plain._forward(X)
    _, g = plain._loss(rec, y)
    d_out = plain._delta(1, g, rec.states[1])
    m = np.mean(np.abs(d_out))
    factor = 1.2 * np.log(round(m, 3) / (m + 1e-5) + 1.02)
    r_out = d_out * factor
    stored = round(float(np.mean(np.abs(r_out))), 3)
    d_hid = plain._delta(0, np.einsum("tbi,ij->tbj", r_out, net.layers[1].weight), rec.states[0])
    mh = np.mean(np.abs(d_hid))
    r_hid = d_hid * 1.2 * np.log(stored / (mh + 1e-5) + 1.02)
    want = [np.einsum("tbi,tbj->ij", r, rec.inputs[l]) / 4 for l, r in ((0, r_hid), (1, r_out))]
    for batch in range(2):  # the reference is reset per batch
        _, g_scaled, _, _ = scaled.loss_and_grads(X, y)
        np.testing.assert_allclose(g_scaled[1], want[1], rtol=1e-12)
        np.testing.assert_allclose(g_scaled[0], want[0], rtol=1e-12)
        # the output layer's raw delta is the plain learner's; its weight gradient scales with it
        np.testing.assert_allclose(g_scaled[1], g_plain[1] * factor, rtol=1e-12)
    # a small hidden gradient is amplified towards the output layer's magnitude
    assert not np.allclose(g_scaled[0], g_plain[0] * factor)
    with pytest.raises(TypeError, match="rescale"):
        learners_psc.NaLearner(net, rescale="yes")


def test_validation():
    n = PscLIF()
    z = np.zeros((3, 2))
    with pytest.raises(ValueError, match="b"):
        na_delta(z, z, z, z, n, b=-1.0)
    with pytest.raises(ValueError, match="c must have shape"):
        na_delta(z, np.zeros((2, 2)), z, z, n)
    for bad in (2, 0, True, "3"):
        with pytest.raises(ValueError, match="power"):
            na_delta(z, z, z, z, n, power=bad)
    with pytest.raises(ValueError, match="loss_change"):
        na_delta(z, z, z, z, n, loss_change="sum")
