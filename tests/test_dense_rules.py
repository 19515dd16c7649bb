"""Dense-mode rules against the naive loop implementations, finite differences and the
gradient-sum invariance."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import eventsnn as es
from eventsnn.dense import losses
from eventsnn.dense.neurons import AntlrNeuron, ZhuNeuron
from eventsnn.dense.record import DenseRecord
from eventsnn.dense.rules import activation, antlr, timing

from . import naive_dense as nd
from .dense_strategies import dense_cases, dense_neurons
from .strategies import examples

SURR = st.sampled_from([("exp", 3.0), ("fast_sigmoid", 5.0), ("triangle", 1.0), ("sigmoid", 4.0)])


def _close(a, b, tol=1e-9):
    np.testing.assert_allclose(a, b, atol=tol * max(1.0, np.abs(b).max()), rtol=1e-9)


@settings(max_examples=examples(40), deadline=None)
@given(dense_cases(), SURR, st.booleans())
def test_activation_equals_naive(case, surr, reset_path):
    net, x, neuron, seed = case
    rec = net.run(x, neuron=neuron)
    g = np.random.default_rng(seed).normal(size=rec.output.shape)
    out = activation.backward(rec, g, surrogate=surr[0], surrogate_scale=surr[1],
                              reset_path=reset_path, input_grad=True)
    W, gl = nd.activation_backward(net, rec, g, surr[0], surr[1], reset_path)
    for l, layer in enumerate(net.layers):
        if layer.has_weight:
            _close(out.weights[l], W[l])
    for a, b in zip(out.grad_s, gl):
        _close(a, b)


@settings(max_examples=examples(40), deadline=None)
@given(dense_cases(resets=("subtract", "membrane")), SURR, st.booleans())
def test_keep_current_activation_equals_naive(case, surr, reset_path):
    """Current-keeping resets: the reverse-mode kernel == forward-mode sensitivities."""
    net, x, neuron, seed = case
    rec = net.run(x, neuron=neuron)
    g = np.random.default_rng(seed).normal(size=rec.output.shape)
    out = activation.backward(rec, g, surrogate=surr[0], surrogate_scale=surr[1],
                              reset_path=reset_path, input_grad=True)
    W, gl = nd.activation_backward(net, rec, g, surr[0], surr[1], reset_path)
    for l, layer in enumerate(net.layers):
        if layer.has_weight:
            _close(out.weights[l], W[l])
    for a, b in zip(out.grad_s, gl):
        _close(a, b)


@settings(max_examples=examples(20), deadline=None)
@given(dense_cases(conv=False, resets=("subtract",)), SURR)
def test_subtract_without_reset_path_has_no_window(case, surr):
    """Subtractive reset, reset treated as a constant (snnTorch's detached reset): every
    input reaches every later step, dL/dc[tau] = sum_{t >= tau} eps[t - tau] dL/dV[t]."""
    net, x, neuron, seed = case
    rec = net.run(x, neuron=neuron)
    T = rec.n_steps
    kind, k = activation.surrogate_params(*surr)
    g = np.random.default_rng(seed).normal(size=rec.output.shape).reshape(T, -1)
    S, u = rec.outputs[-1].reshape(T, -1), rec.membranes[-1].reshape(T, -1)
    dc, dv = activation.keep_current_adjoint(g, S, u, neuron.a_i, neuron.a_v, neuron.b_i,
                                             neuron.resolved_b_v(T), neuron.theta, kind, k, True, False)
    _close(dv, activation.surrogate_kernel(u, neuron.theta, kind, k) * g)
    _close(dc, activation.window_adjoint(dv, np.zeros_like(S), neuron.eps(T)))


def _smooth_keep_current(net, x, neuron, k):
    """Forward with S = logistic(k (V - theta)) and the current-keeping reset of ``neuron``."""
    from eventsnn.dense import ops
    T, B, _ = x.shape
    b_v = neuron.resolved_b_v(T)
    h = x
    inputs, cur, mem, inc, outs = [], [], [], [], []
    for layer in net.layers:
        inputs.append(h)
        c = ops.forward(layer, h)
        I = np.zeros((B, layer.n_out)); V = np.zeros_like(I); S_prev = np.zeros_like(I)
        U = np.zeros_like(c); S = np.zeros_like(c)
        for t in range(T):
            I = neuron.a_i * I + neuron.b_i * c[t]
            if neuron.reset == "subtract":
                V = neuron.a_v * V + b_v * I - neuron.theta * S_prev
            else:
                V = neuron.a_v * (1 - S_prev) * V + b_v * I
            U[t] = V
            S[t] = S_prev = 1.0 / (1.0 + np.exp(-k * (V - neuron.theta)))
        cur.append(c); mem.append(U); inc.append(np.zeros_like(U)); outs.append(S)
        h = S
    return DenseRecord(inputs, cur, mem, inc, outs, neuron, list(net.layers))


@pytest.mark.parametrize("reset", ["subtract", "membrane"])
def test_keep_current_bptt_is_exact_derivative_of_smoothed_network(reset):
    """With S = logistic(k(V - theta)) in the forward and the matching surrogate, the
    current-keeping BPTT with reset paths is the exact gradient (finite differences)."""
    k = 4.0
    neuron = AntlrNeuron(a_i=0.8, a_v=0.9, b_i=1.0, b_v=1.0, theta=0.5, reset=reset)
    rng = np.random.default_rng(7)
    net = es.Sequential(es.Dense(4, 5), es.Dense(5, 3), rng=4)
    x = rng.uniform(0, 1, (8, 2, 4))
    r = rng.normal(size=(8, 2, 3))

    def loss():
        return float(np.sum(r * _smooth_keep_current(net, x, neuron, k).outputs[-1]))

    out = activation.backward(_smooth_keep_current(net, x, neuron, k), r, surrogate="sigmoid",
                              surrogate_scale=k, reset_path=True)
    for l in (0, 1):
        w0 = net.layers[l].weight.copy()
        for idx in [(0, 0), (2, 3), (1, 1)]:
            wp = w0.copy(); wp[idx] += 1e-6
            net.layers[l].weight = wp
            lp = loss()
            wp[idx] -= 2e-6
            net.layers[l].weight = wp
            lm = loss()
            net.layers[l].weight = w0
            assert out.weights[l][idx] == pytest.approx((lp - lm) / 2e-6, rel=1e-5, abs=1e-8)


def test_full_reset_rules_reject_keep_current_neurons():
    net = es.Sequential(es.Dense(3, 2), rng=0)
    rec = net.run(np.ones((4, 1, 3)), neuron=AntlrNeuron(reset="subtract"))
    with pytest.raises(ValueError, match="full-reset"):
        timing.backward(rec, np.zeros((4, 1, 2)))
    with pytest.raises(ValueError, match="full-reset"):
        antlr.backward(rec, np.zeros((4, 1, 2)))


@settings(max_examples=examples(30), deadline=None)
@given(dense_cases(conv=False), SURR)
def test_bptt_without_reset_path_is_the_srm_form(case, surr):
    """ANTLR's observation (Appendix D): the SRM-based method is BPTT minus the reset paths."""
    net, x, neuron, seed = case
    rec = net.run(x, neuron=neuron)
    T = rec.n_steps
    kind, k = activation.surrogate_params(*surr)
    A, B, C = neuron.linear_system(T)
    g = np.random.default_rng(seed).normal(size=rec.output.shape).reshape(T, -1)
    S, u = rec.outputs[-1].reshape(T, -1), rec.membranes[-1].reshape(T, -1)
    c = np.ascontiguousarray(rec.currents[-1].reshape(T, -1))
    dc, dv = activation.bptt_adjoint(g, S, u, c, A, B, C, neuron.theta, kind, k, False)
    dv2 = activation.surrogate_kernel(u, neuron.theta, kind, k) * g
    _close(dv, dv2)
    _close(dc, activation.window_adjoint(dv2, S, neuron.eps(T)))


@settings(max_examples=examples(40), deadline=None)
@given(dense_cases(), SURR, st.sampled_from([(1.0, 1.0), (1.0, 0.0), (0.0, 1.0), (0.5, 2.0)]),
       st.sampled_from([None, 1.0]))
def test_antlr_equals_naive(case, surr, lams, clip):
    net, x, neuron, seed = case
    rec = net.run(x, neuron=neuron)
    rng = np.random.default_rng(seed)
    gs = rng.normal(size=rec.output.shape)
    gt = rng.normal(size=rec.output.shape)  # not masked: the rule keeps dL/dt at spikes only
    out = antlr.backward(rec, gs, gt, lambda_act=lams[0], lambda_tim=lams[1], surrogate=surr[0],
                         surrogate_scale=surr[1], clip=clip, input_grad=True)
    W, GS, GT, DV = nd.antlr_backward_levels(net, rec, gs, gt, lams[0], lams[1], surr[0], surr[1],
                                             0.01, clip)
    for l, layer in enumerate(net.layers):
        if layer.has_weight:
            _close(out.weights[l], W[l])
        if layer.has_neurons:
            _close(out.grad_v[l], DV[l])
    # the per-level error signals: dL/dS and the (value-weighted) dL/dt of every level's events
    assert len(out.grad_s) == len(GS) and len(out.grad_t) == len(GT)
    for a, b in zip(out.grad_s, GS):
        _close(a, b)
    for a, b in zip(out.grad_t, GT):
        _close(a, b)


def test_antlr_act_only_equals_activation_rule():
    rng = np.random.default_rng(0)
    net = es.Sequential(es.Dense(5, 6), es.Dense(6, 3), rng=1)
    rec = net.run(rng.uniform(0, 1.5, (12, 2, 5)), neuron=AntlrNeuron(a_i=0.8, a_v=0.9))
    g = rng.normal(size=rec.output.shape)
    a = antlr.backward(rec, g, None, lambda_act=1.0, lambda_tim=0.0)
    b = activation.backward(rec, g)
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_allclose(wa, wb, rtol=1e-12, atol=1e-14)


@settings(max_examples=examples(40), deadline=None)
@given(dense_cases(), st.sampled_from(["exp", "original"]), st.sampled_from([1.0, 0.85]),
       st.sampled_from([None, "last", "increment"]), st.sampled_from([2.5, 1.5, 4.0]))
def test_timing_equals_naive(case, kernel, factor, supervise, tau_grad):
    net, x, neuron, seed = case
    rec = net.run(x, neuron=neuron)
    rng = np.random.default_rng(seed)
    out_spikes = None
    if supervise:
        labels = rng.integers(0, rec.output.shape[2], rec.batch_size)
        out_spikes, _ = nd.supervisory_spikes(rec.output, rec.increments[-1], labels, mode=supervise)
    S = rec.output if out_spikes is None else out_spikes
    gt = rng.normal(size=S.shape) * S
    h = nd.timing_kernel(neuron, rec.n_steps, kernel, tau_grad)  # from the formulas
    out = timing.backward(rec, gt, kernel=kernel, tau_grad=tau_grad, factor=factor,
                          output_spikes=out_spikes, input_grad=True)
    W, levels = nd.timing_backward(net, rec, gt, h, 4.0, factor, out_spikes)
    for l, layer in enumerate(net.layers):
        if layer.has_weight:
            _close(out.weights[l], W[l])
    for a, b in zip(out.grad_t, levels):
        _close(a, b)


@settings(max_examples=examples(40), deadline=None)
@given(dense_neurons(), st.sampled_from([1, 2, 3, 8, 16, 40]), st.sampled_from([2.5, 1.5, 4.0]))
def test_kernels_equal_formulas(neuron, T, tau_grad):
    """The library's eps and timing kernels h against the formulas (nd.kernel_at):
    h[d] = (1 - 1/tau_grad)^(d+1) ("exp") and eps[d] - eps[d-1] with eps[-1] = 0, the kernel
    formula's own value at d = -1 ("original")."""
    assert nd.kernel_at(neuron, T, -1) == 0.0
    eps = [nd.kernel_at(neuron, T, d) for d in range(T)]
    _close(neuron.eps(T), eps, 1e-12)
    for kind in ("exp", "original"):
        _close(timing.backward_kernel(neuron, T, kind, tau_grad), nd.timing_kernel(neuron, T, kind, tau_grad), 1e-12)
    # "original" telescopes back to eps
    _close(np.cumsum(timing.backward_kernel(neuron, T, "original")), eps, 1e-12)


def test_antlr_act_only_equals_activation_rule_default_neuron():
    """Default AntlrNeuron (a_i = a_v = 0.99, b_v = None): the kernel still rises at step T, so
    the ANTLR backward must use the kernel of the forward's window, not one resolved for T + 1."""
    rng = np.random.default_rng(0)
    net = es.Sequential(es.Dense(5, 6), es.Dense(6, 3), rng=1)
    for layer in net.layers:
        layer.weight = np.abs(layer.weight)
    rec = net.run(rng.uniform(0, 1.5, (8, 2, 5)), neuron=AntlrNeuron())
    assert rec.output.any()
    g = rng.normal(size=rec.output.shape)
    a = antlr.backward(rec, g, None, lambda_act=1.0, lambda_tim=0.0)
    b = activation.backward(rec, g)
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_allclose(wa, wb, rtol=1e-12, atol=1e-14)


@settings(max_examples=examples(30), deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from(["dense", "max", "avg"]))
def test_timing_gradient_sum_invariance(seed, arch):
    """Zhu et al. Eq. 8: the sum of dL/dt is the same at every level (positive weights and
    inputs and the exp kernel, so that every window has H > 0)."""
    rng = np.random.default_rng(seed)
    if arch == "dense":
        net = es.Sequential(es.Dense(6, 5), es.Dense(5, 3), rng=seed)
        x = (rng.random((10, 2, 6)) < 0.5) * 1.0
    else:
        pool = es.MaxPool2d(2) if arch == "max" else es.AvgPool2d(2, adjusted=True)
        net = es.Sequential(es.Conv2d((1, 4, 4), 2, 2, padding=1), pool, es.Flatten(), es.Dense(8, 3), rng=seed)
        x = (rng.random((10, 2, 16)) < 0.5) * 1.0
    for layer in net.layers:
        if layer.has_weight:
            layer.weight = np.abs(layer.weight) * 2.0
    rec = net.run(x, neuron=ZhuNeuron(5.0, 1.5))
    gt = rng.normal(size=rec.output.shape) * rec.output
    out = timing.backward(rec, gt, kernel="exp", input_grad=True)
    for g in out.grad_t:
        assert g.sum() == pytest.approx(gt.sum(), rel=1e-9, abs=1e-12)


def _smooth_forward(net, x, neuron, k):
    """Forward of a smoothed network, S = logistic(k (u - theta)), reset by (1 - S)."""
    T, B, _ = x.shape
    A, Bv, C = neuron.linear_system(T)
    from eventsnn.dense import ops
    h = x
    inputs, cur, mem, inc, outs = [], [], [], [], []
    for layer in net.layers:
        inputs.append(h)
        if layer.has_neurons:
            c = ops.forward(layer, h)
            z = np.zeros((B, layer.n_out, 2))
            keep = np.ones((B, layer.n_out))
            U = np.zeros_like(c)
            S = np.zeros_like(c)
            for t in range(T):
                z = keep[..., None] * (z @ A.T) + c[t][..., None] * Bv
                U[t] = z @ C
                S[t] = 1.0 / (1.0 + np.exp(-k * (U[t] - neuron.theta)))
                keep = 1.0 - S[t]
            cur.append(c); mem.append(U); inc.append(np.zeros_like(U)); outs.append(S)
            h = S
        else:
            h = ops.forward(layer, h)
            cur.append(None); mem.append(None); inc.append(None); outs.append(h)
    return DenseRecord(inputs, cur, mem, inc, outs, neuron, list(net.layers))


@pytest.mark.parametrize("neuron", [ZhuNeuron(5.0, 2.0, theta=0.5), AntlrNeuron(a_i=0.8, a_v=0.9, theta=0.5)])
def test_bptt_is_exact_derivative_of_smoothed_network(neuron):
    """With S = logistic(k(u - theta)) in the forward (reset by 1 - S) and the matching
    surrogate k s (1 - s), BPTT with reset paths is the exact gradient."""
    k = 4.0
    rng = np.random.default_rng(5)
    net = es.Sequential(es.Dense(4, 5), es.Dense(5, 3), rng=3)
    x = rng.uniform(0, 1, (8, 2, 4))
    r = rng.normal(size=(8, 2, 3))

    def loss():
        return float(np.sum(r * _smooth_forward(net, x, neuron, k).outputs[-1]))

    rec = _smooth_forward(net, x, neuron, k)
    out = activation.backward(rec, r, surrogate="sigmoid", surrogate_scale=k, reset_path=True)
    for l in (0, 1):
        w0 = net.layers[l].weight.copy()
        for idx in [(0, 0), (2, 3), (1, 1)]:
            wp = w0.copy(); wp[idx] += 1e-6
            net.layers[l].weight = wp
            lp = loss()
            wp[idx] -= 2e-6
            net.layers[l].weight = wp
            lm = loss()
            net.layers[l].weight = w0
            fd = (lp - lm) / 2e-6
            assert out.weights[l][idx] == pytest.approx(fd, rel=1e-5, abs=1e-8)


def test_losses_against_definitions():
    rng = np.random.default_rng(0)
    T, B, n = 10, 3, 4
    S = (rng.random((T, B, n)) < 0.3) * 1.0
    tgt = (rng.random((T, B, n)) < 0.3) * 1.0
    # spike-train loss: dL/dS is the exact derivative wrt a (real-valued) S
    L, gs, gt = losses.spike_train_loss(S, tgt, alpha=0.8)
    for idx in [(0, 0, 0), (5, 1, 2), (9, 2, 3)]:
        Sp, Sm = S.copy(), S.copy()
        Sp[idx] += 1e-6; Sm[idx] -= 1e-6
        fd = (losses.spike_train_loss(Sp, tgt, 0.8)[0].sum() - losses.spike_train_loss(Sm, tgt, 0.8)[0].sum()) / 2e-6
        assert gs[idx] == pytest.approx(fd, rel=1e-6, abs=1e-8)
    # count loss
    nt = rng.integers(0, 4, (B, n)).astype(float)
    L, gs, gt = losses.count_loss(S, nt)
    np.testing.assert_allclose(L, ((S.sum(0) - nt) ** 2).sum(1) / T)
    np.testing.assert_allclose(gs[3], 2 * (S.sum(0) - nt) / T)
    assert not gt.any()
    # latency: gradient of -log softmax(-beta t) wrt t at the first spike
    S[:, 0, :] = 0
    S[2, 0, 1] = 1; S[5, 0, 1] = 1; S[4, 0, 2] = 1
    y = np.array([1, 0, 2])
    L, gs, gt = losses.latency_loss(S, y, beta=1 / 6)
    first = np.array([T, 2, 4, T], dtype=float)
    z = -first / 6
    p = np.exp(z) / np.exp(z).sum()
    assert L[0] == pytest.approx(-np.log(p[1]))
    assert gt[2, 0, 1] == pytest.approx(-(p[1] - 1) / 6)
    assert gt[4, 0, 2] == pytest.approx(-p[2] / 6)
    assert gt[5, 0, 1] == 0 and not gt[:, 0, 0].any()
    # silent label neuron: no-spike term
    S2 = S.copy(); S2[:, 1, 0] = 0
    L2, gs2, _ = losses.latency_loss(S2, y)
    assert np.all(gs2[:, 1, 0] == -2.0)
    # Zhu count as time gradients: one-sided
    S3 = np.zeros((T, 2, 3)); S3[:4, 0, 0] = 1; S3[:1, 0, 1] = 1; S3[:6, 1, 2] = 1
    _, g, gt3 = losses.count_time_grads(S3, np.array([0, 2]), n_true=5, n_false=0)
    assert g[0, 0] == pytest.approx(0.1) and g[0, 1] == pytest.approx(-0.1) and g[1, 2] == 0
    assert gt3[0, 0, 0] == pytest.approx(0.1) and gt3[5, 0, 0] == 0


def test_supervisory_spike():
    du = np.zeros((6, 1, 2)); du[:, 0, 1] = [0.2, 0.3, 0.01, 0.06, 0.0, -0.1]
    S = np.zeros((6, 1, 2))
    out, added = losses.supervisory_spikes(S, du, np.array([1]))
    assert added[0] and out[3, 0, 1] == 1 and out.sum() == 1
    out, _ = losses.supervisory_spikes(S, du, np.array([1]), mode="last")
    assert out[5, 0, 1] == 1


def test_rule_validation():
    net = es.Sequential(es.Dense(3, 2), rng=0)
    rec = net.run(np.ones((4, 1, 3)))
    with pytest.raises(ValueError, match="grad_s"):
        activation.backward(rec, np.ones((4, 1, 3)))
    with pytest.raises(ValueError, match="surrogate"):
        activation.backward(rec, np.ones((4, 1, 2)), surrogate="relu")
    with pytest.raises(ValueError, match="kernel"):
        timing.backward(rec, np.ones((4, 1, 2)), kernel="gauss")
    with pytest.raises(ValueError, match="tau_grad"):
        timing.backward(rec, np.ones((4, 1, 2)), tau_grad=0.5)
    with pytest.raises(ValueError, match="grad_t"):
        antlr.backward(rec, None, np.full((4, 1, 2), np.nan))
    with pytest.raises(TypeError, match="rec"):
        antlr.backward("rec")
