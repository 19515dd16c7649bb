"""Reference fidelity: every option docs/fidelity.md names, against slow re-implementations
of the authors' codes' formulas (tests/naive_reference.py), float64, rtol 1e-9 or better."""
import importlib.util
import pathlib

import numpy as np
import pytest

import eventsnn as es
from eventsnn.dense import init_firing_rate
from eventsnn.dense import losses
from eventsnn.dense.forward import forward_layers
from eventsnn.dense.learners import AntlrLearner, TimingLearner, latency_stop, truncate_record
from eventsnn.dense.learners_psc import AsfLearner, NaLearner, TsslLearner
from eventsnn.dense.neurons import AntlrNeuron, ZhuNeuron
from eventsnn.dense.psc_network import psc_backward, psc_forward, spike_train_loss as psc_train_loss
from eventsnn.dense.psc_neurons import PscLIF
from eventsnn.dense.rules import antlr, timing
from eventsnn.dense.rules.na import code_rescale, na_delta
from eventsnn.optim import SGD, clamp_weights, clip_grad_value

from . import naive_reference as ref

RTOL = 1e-9


def _close(a, b, rtol=RTOL):
    b = np.asarray(b, dtype=float)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(1.0, float(np.abs(b).max(initial=0.0))))


# ---- Zhu et al. ---------------------------------------------------------------------------
def test_supervisory_reference_example_of_the_issue():
    S = np.zeros((4, 1, 2))
    S[1, 0, 0] = 1
    du = np.full((4, 1, 2), 0.3)
    out, added = losses.supervisory_spikes(S, du, [0], mode="reference")
    np.testing.assert_array_equal(out[:, 0, 0], [0, 1, 0, 1])
    assert added.tolist() == [True]
    # the previous rule (kept as "increment") adds nothing to a neuron that fired
    np.testing.assert_array_equal(losses.supervisory_spikes(S, du, [0])[0][:, 0, 0], [0, 1, 0, 0])
    # no qualifying step: step 0, and its value is [du != 0]
    du0 = np.zeros((4, 1, 2))
    np.testing.assert_array_equal(losses.supervisory_spikes(S, du0, [0], mode="reference")[0][:, 0, 0],
                                  [0, 1, 0, 0])
    du0[0, 0, 0] = -0.2
    np.testing.assert_array_equal(losses.supervisory_spikes(S, du0, [0], mode="reference")[0][:, 0, 0],
                                  [1, 1, 0, 0])
    np.testing.assert_array_equal(losses.supervisory_spikes(S, du, [0], mode="end")[0][:, 0, 0], [0, 1, 0, 1])


@pytest.mark.parametrize("seed", range(6))
def test_supervisory_reference_equals_code(seed):
    rng = np.random.default_rng(seed)
    S = (rng.random((7, 5, 3)) < 0.3).astype(float)
    du = rng.normal(0.0, 0.1, S.shape)
    du[rng.random(S.shape) < 0.2] = 0.0
    y = rng.integers(0, 3, 5)
    out, _ = losses.supervisory_spikes(S, du, y, mode="reference")
    np.testing.assert_array_equal(out, ref.zhu_supervisory(S, du, y))


@pytest.mark.parametrize("seed", range(4))
def test_count_loss_value_and_gradient_equal_code(seed):
    rng = np.random.default_rng(seed)
    S = (rng.random((9, 4, 3)) < 0.4).astype(float)
    y = rng.integers(0, 3, 4)
    loss, g, gt = losses.count_time_grads(S, y, 6, 1)
    want_loss, want_grad = ref.zhu_count_loss(S, y, 6, 1)
    _close(loss, want_loss)
    _close(gt, want_grad * S)
    # the returned gradient is -dL/dN of the returned loss (the old value was twice as large)
    N = S.sum(axis=0)
    for b in range(4):
        for o in range(3):
            if g[b, o] != 0:
                d = 1e-6
                tgt = 6 if o == y[b] else 1
                Lp = (tgt - (N[b, o] + d)) ** 2 / (2 * 9)
                Lm = (tgt - (N[b, o] - d)) ** 2 / (2 * 9)
                assert -(Lp - Lm) / (2 * d) == pytest.approx(g[b, o], rel=1e-6)


def _zhu_net(rng, n_in=6, n_out=3, scale=1.6):
    net = es.Sequential(es.Dense(n_in, n_out), rng=int(rng.integers(1 << 30)))
    net.layers[0].weight = np.abs(net.layers[0].weight) * scale
    return net


@pytest.mark.parametrize("seed", range(5))
def test_timing_backward_forward_window_equals_code(seed):
    """A supervisory spike inside a later spike's window: with h_window="forward" dL/dx and
    dL/dW equal the code's LinearFunc.backward; the split window differs in dL/dx only."""
    rng = np.random.default_rng(seed)
    tau_m, tau_s, tau_grad, T, B = 5.0, 3.0, 2.5, 14, 3
    net = _zhu_net(rng)
    x = (rng.random((T, B, 6)) < 0.35).astype(float)
    neuron = ZhuNeuron(tau_m, tau_s, 1.0)
    rec = es.dense.run(net, x, neuron=neuron)
    W = net.layers[0].weight
    I = np.einsum("tbj,oj->tbo", x, W).reshape(T, -1)
    du, dut, out = ref.zhu_forward(I, tau_m, tau_s, tau_grad, 1.0)
    du, dut, out = (a.reshape(T, B, 3) for a in (du, dut, out))
    _close(rec.output, out, 0)
    y = rng.integers(0, 3, B)
    sup = ref.zhu_supervisory(out, du, y)
    _, grad = ref.zhu_count_loss(sup, y, 4, 0)
    gin, gw = ref.zhu_linear_backward(grad, sup, du, dut, x, W, ref.zhu_kernels(T, tau_m, tau_s, tau_grad),
                                      factor=1.0)
    out_sup, _ = losses.supervisory_spikes(rec.output, rec.increments[-1], y, mode="reference")
    _, _, gt = losses.count_time_grads(out_sup, y, 4, 0)
    g = timing.backward(rec, gt, kernel="exp", tau_grad=tau_grad, output_spikes=out_sup,
                        input_grad=True, h_window="forward")
    _close(g.weights[0], gw)
    _close(g.grad_t[0], gin)


def test_timing_split_window_differs_from_code():
    """A constructed case: the forced spike splits a real spike's window, so the split H
    (the old behaviour) gives another dL/dx; the weights agree."""
    tau_m, tau_s, tau_grad = 5.0, 3.0, 8.0
    net = es.Sequential(es.Dense(2, 1), rng=0)
    # a constant current creeping up to threshold: the last step with Delta u > 0.05 comes
    # long before the spike; the window ends at the spike
    net.layers[0].weight = np.array([[0.2025, 0.1]])
    x = np.zeros((30, 1, 2))
    x[:, 0, 0] = 1.0
    x[[3, 5], 0, 1] = 0.5
    first = np.nonzero(es.dense.run(net, x, neuron=ZhuNeuron(tau_m, tau_s, 1.0)).output[:, 0, 0])[0][0]
    T = first + 1
    x = x[:T].copy()
    rec = es.dense.run(net, x, neuron=ZhuNeuron(tau_m, tau_s, 1.0))
    du = rec.increments[-1]
    out_sup, _ = losses.supervisory_spikes(rec.output, du, [0], mode="reference")
    t_real = np.nonzero(rec.output[:, 0, 0])[0]
    t_forced = np.nonzero(out_sup[:, 0, 0] != rec.output[:, 0, 0])[0]
    assert len(t_real) and len(t_forced) and t_forced[0] < t_real[-1]
    gt = np.where(out_sup != 0, 0.25, 0.0)
    f = timing.backward(rec, gt, tau_grad=tau_grad, output_spikes=out_sup, input_grad=True, h_window="forward")
    s = timing.backward(rec, gt, tau_grad=tau_grad, output_spikes=out_sup, input_grad=True, h_window="split")
    _close(f.weights[0], s.weights[0])
    rel = np.abs(f.grad_t[0] - s.grad_t[0]).max() / np.abs(f.grad_t[0]).max()
    assert rel > 0.05
    I = np.einsum("tbj,oj->tbo", x, net.layers[0].weight).reshape(T, -1)
    du_r, dut_r, out_r = ref.zhu_forward(I, tau_m, tau_s, tau_grad, 1.0)
    sup = ref.zhu_supervisory(out_r.reshape(T, 1, 1), du_r.reshape(T, 1, 1), [0])
    gin, _ = ref.zhu_linear_backward(gt, sup, du_r.reshape(T, 1, 1), dut_r.reshape(T, 1, 1), x,
                                     net.layers[0].weight, ref.zhu_kernels(T, tau_m, tau_s, tau_grad), 1.0)
    _close(f.grad_t[0], gin)


def test_max_inv_h_caps_the_share():
    rng = np.random.default_rng(3)
    net = _zhu_net(rng)
    x = (rng.random((12, 2, 6)) < 0.4).astype(float)
    rec = es.dense.run(net, x, neuron=ZhuNeuron(5.0, 3.0, 1.0))
    gt = rec.output * 0.5
    T = 12
    du, dut, out = ref.zhu_forward(rec.currents[0].reshape(T, -1), 5.0, 3.0, 2.5, 1.0)
    syn_a, dsyn = ref.zhu_kernels(T, 5.0, 3.0, 2.5)
    gin, _ = ref.zhu_neuron_backward(gt.reshape(T, -1), out, du, dut, syn_a, -dsyn, max_dudt_inv=0.7)
    g = timing.backward(rec, gt, input_grad=True, max_inv_h=0.7)
    want = np.einsum("tbo,oj->tbj", gin.reshape(rec.output.shape), net.layers[0].weight) * x
    _close(g.grad_t[0], want)


def test_timing_learner_defaults_equal_code_two_layers():
    """TimingLearner() = the code: supervisory spike in every sample, count loss 1/(2T),
    forward-window H, factor 0.85 between the layers."""
    rng = np.random.default_rng(11)
    net = es.Sequential(es.Dense(5, 7), es.Dense(7, 3), rng=2)
    net.layers[0].weight = np.abs(net.layers[0].weight) * 1.5
    net.layers[1].weight = np.abs(net.layers[1].weight) * 1.2 - 0.1
    tau_m, tau_s, tau_grad, T = 5.0, 3.0, 2.5, 12
    learner = TimingLearner(net, n_steps=T, n_true=4, n_false=1, encoder="current", input_gain=1.0)
    assert learner.options["factor"] == 0.85 and learner.options["supervisory"] == "reference"
    X = rng.random((4, 5))
    y = np.array([0, 1, 2, 1])
    loss, grads, _, _ = learner.loss_and_grads(X, y)
    x = np.broadcast_to(X, (T, 4, 5)).copy()
    W1, W2 = net.layers[0].weight, net.layers[1].weight
    kern = ref.zhu_kernels(T, tau_m, tau_s, tau_grad)
    du1, dut1, h1 = (a.reshape(T, 4, 7) for a in ref.zhu_forward(np.einsum("tbj,oj->tbo", x, W1).reshape(T, -1),
                                                                  tau_m, tau_s, tau_grad, 1.0))
    du2, dut2, o2 = (a.reshape(T, 4, 3) for a in ref.zhu_forward(np.einsum("tbj,oj->tbo", h1, W2).reshape(T, -1),
                                                                  tau_m, tau_s, tau_grad, 1.0))
    sup = ref.zhu_supervisory(o2, du2, y)
    want_loss, grad = ref.zhu_count_loss(sup, y, 4, 1)
    gin2, gw2 = ref.zhu_linear_backward(grad, sup, du2, dut2, h1, W2, kern, 0.85)
    _, gw1 = ref.zhu_linear_backward(gin2, h1, du1, dut1, x, W1, kern, 0.85)
    assert loss == pytest.approx(np.mean(want_loss), rel=1e-12)
    _close(grads[1], gw2 / 4)
    _close(grads[0], gw1 / 4)


def test_timing_learner_paper_preset():
    net = es.Sequential(es.Dense(4, 2), rng=0)
    p = TimingLearner(net, preset="paper")
    assert (p.options["factor"], p.options["supervisory"], p.options["h_window"]) == (1.0, "end", "split")
    q = TimingLearner(net, preset="paper", factor=0.5, supervisory=None)
    assert q.options["factor"] == 0.5 and q.options["supervisory"] is None
    with pytest.raises(ValueError, match="preset"):
        TimingLearner(net, preset="both")


def test_dense_init_equals_reference_search():
    rng = np.random.default_rng(5)
    net = es.Sequential(es.Dense(12, 10), es.Dense(10, 4), rng=3)
    x = (rng.random((18, 6, 12)) < 0.25).astype(float)
    w0 = [layer.weight.copy() for layer in net.layers]
    scales, rates = init_firing_rate(net, x, target=2.0, neuron=ZhuNeuron(5.0, 3.0, 1.0))
    want_scales, want_w = ref.zhu_initialize(w0, x, 5.0, 3.0, 2.5, 1.0, 2.0)
    _close(scales, want_scales, 1e-12)
    for layer, w in zip(net.layers, want_w):
        _close(layer.weight, w, 1e-12)
    rec = es.dense.run(net, x, neuron=ZhuNeuron(5.0, 3.0, 1.0))
    for o, r in zip(rec.outputs, rates):
        assert r == pytest.approx(o[12:].sum() / (6 * o.shape[2]))


def test_dense_init_standardize_and_pooling():
    from eventsnn.dense.init import standardized

    rng = np.random.default_rng(0)
    W = rng.normal(0.3, 2.0, (3, 5))
    Z = standardized(W)
    for row, w in zip(Z, W):
        _close(row, (w - w.mean()) / np.sqrt(np.var(w, ddof=1) + 1e-5))
    net = es.Sequential(es.Conv2d((1, 6, 6), 2, 3), es.MaxPool2d(2), es.Flatten(), es.Dense(8, 3), rng=1)
    x = (rng.random((15, 4, 36)) < 0.3).astype(float)
    scales, rates = init_firing_rate(net, x, target=1.0, standardize=True)
    assert scales[1] is None and scales[2] is None and scales[0] > 0 and scales[3] > 0
    with pytest.raises(ValueError, match="high"):
        init_firing_rate(net, x, low=5.0, high=1.0)


# ---- ANTLR --------------------------------------------------------------------------------
def test_antlr_spike_train_example_of_the_issue():
    S = np.zeros((5, 1, 1))
    S[4] = 1
    L, gs, _ = losses.spike_train_loss(S, np.zeros_like(S), 0.9, convention="antlr")
    total = sum(0.9 ** (2 * k) for k in range(5))  # d = 1, .9, .81, .729, .6561 after the spike
    assert total == pytest.approx(3.428, abs=1e-3)
    assert L[0] == pytest.approx(total / 5, rel=1e-12)
    assert gs[4, 0, 0] == pytest.approx(2 * total / 5, rel=1e-12)
    Lw, gw, _ = losses.spike_train_loss(S, np.zeros_like(S), 0.9)
    assert (Lw[0], gw[4, 0, 0]) == (1.0, 2.0)


@pytest.mark.parametrize("T,alpha", [(6, 0.9), (13, 0.8), (40, 0.95), (150, 0.9)])
def test_antlr_spike_train_equals_code(T, alpha):
    rng = np.random.default_rng(T)
    S = (rng.random((T, 2, 3)) < 0.2).astype(float)
    tgt = (rng.random((T, 2, 3)) < 0.2).astype(float)
    got = losses.spike_train_loss(S, tgt, alpha, convention="antlr")
    want = ref.antlr_train_loss(S, tgt, alpha)
    for a, b in zip(got, want):
        _close(a, b)


@pytest.mark.parametrize("seed", range(4))
def test_antlr_latency_no_spike_equals_code(seed):
    rng = np.random.default_rng(seed)
    S = (rng.random((8, 5, 4)) < 0.15).astype(float)
    S[:, 0, :] = 0.0  # a sample with a silent label neuron
    y = rng.integers(0, 4, 5)
    got = losses.latency_loss(S, y, beta=0.166667, no_spike=0.1, no_spike_grad="code")
    want = ref.antlr_latency_loss(S, y, 0.166667, 0.1)
    for a, b in zip(got, want):
        _close(a, b)
    paper = losses.latency_loss(S, y, beta=0.166667, no_spike=0.1)
    assert paper[1][0, 0, y[0]] == pytest.approx(-0.2) and got[1][0, 0, y[0]] == pytest.approx(-0.1)


def _antlr_setup(seed=0, T=10):
    rng = np.random.default_rng(seed)
    net = es.Sequential(es.Dense(6, 5), es.Dense(5, 3), rng=seed)
    for layer in net.layers:
        layer.weight = layer.weight * 3.0
    X = rng.random((4, 6))
    y = np.array([0, 1, 2, 0])
    return net, X, y


def test_antlr_timing_penalty_equals_code():
    net, X, y = _antlr_setup(1)
    learner = AntlrLearner(net, n_steps=10, lambda_act=0.0, loss="latency", grad_clip=None, early_stop=False)
    assert learner.options["timing_penalty"] == 100.0
    rec = learner.forward(X)
    _, gs, gt = losses.latency_loss(rec.output, y, 0.166667, 0.1, "code")
    plain = antlr.backward(rec, gs, gt, lambda_act=0.0)
    pen = antlr.backward(rec, gs, gt, lambda_act=0.0, timing_penalty=100.0)
    for l, layer in enumerate(net.layers):
        _close(pen.weights[l] / 4, ref.antlr_timing_penalty(plain.weights[l] / 4, rec.outputs[l], 100.0))
    assert any((rec.outputs[l].sum(axis=0) == 0).any() for l in range(2))  # the case bites
    _, grads, _, _ = learner.loss_and_grads(X, y)
    for l in range(2):
        _close(grads[l], pen.weights[l] / 4)
    assert AntlrLearner(net).options["timing_penalty"] == 0.0


def test_antlr_grad_clip_equals_code():
    net, X, y = _antlr_setup(2)
    free = AntlrLearner(net, n_steps=10, neuron="antlr", bias=True, grad_clip=None)
    clipped = AntlrLearner(net, n_steps=10, neuron="antlr", bias=True)
    assert clipped.options["grad_clip"] == 1.0
    _, g_free, _, _ = free.loss_and_grads(X, y)
    _, g_clip, _, _ = clipped.loss_and_grads(X, y)
    assert len(g_clip) == 4 and max(np.abs(g).max() for g in g_free) > 1.0
    for a, b in zip(g_clip, g_free):
        _close(a, np.clip(b, -1.0, 1.0), 1e-12)


def test_antlr_early_stop_keeps_the_configured_scales():
    """Latency loss: the run stops once every output of the batch fired; b_v stays that of
    n_steps (the code's time_length), which AntlrNeuron(b_window=...) pins."""
    rng = np.random.default_rng(4)
    net = es.Sequential(es.Dense(6, 3), rng=4)
    net.layers[0].weight = np.abs(net.layers[0].weight) * 4
    T = 30
    neuron = AntlrNeuron(a_i=0.9, a_v=0.9)
    learner = AntlrLearner(net, n_steps=T, neuron=neuron, loss="latency", grad_clip=None)
    assert learner.neuron.b_window == T
    X = rng.random((3, 6))
    y = np.array([0, 1, 2])
    loss, grads, _, _ = learner.loss_and_grads(X, y)
    full = learner.forward(X)
    term = latency_stop(full.output)
    fired = np.zeros(full.output.shape[1:], bool)
    for t in range(T):  # the code's loop: stop after the first step where all have fired
        fired |= full.output[t] > 0
        if fired.all():
            break
    assert term == t + 1 < T
    short = truncate_record(full, term)
    x_short = learner.encode(X)[:term]
    again = forward_layers(net.layers, np.ascontiguousarray(x_short), learner.neuron)
    _close(again.membranes[0], short.membranes[0], 1e-12)
    # without b_window the short run would use another b_v
    assert AntlrNeuron(a_i=0.9, a_v=0.9).resolved_b_v(term) != learner.neuron.resolved_b_v(term)
    L, gs, gt = losses.latency_loss(short.output, y, 0.166667, 0.1, "code")
    assert loss == pytest.approx(L.mean())
    want = antlr.backward(short, gs, gt)
    _close(grads[0], want.weights[0] / 3)


def test_antlr_learner_presets():
    net = es.Sequential(es.Dense(4, 2), rng=0)
    code = AntlrLearner(net).options
    assert (code["grad_clip"], code["no_spike"], code["no_spike_grad"], code["beta"], code["spike_train"],
            code["early_stop"]) == (1.0, 0.1, "code", 0.166667, "antlr", True)
    paper = AntlrLearner(net, preset="paper").options
    assert (paper["grad_clip"], paper["no_spike"], paper["no_spike_grad"], paper["beta"], paper["spike_train"],
            paper["early_stop"]) == (None, 1.0, "paper", 1 / 6, "window", False)
    assert AntlrLearner(net, preset="paper", grad_clip=0.5).options["grad_clip"] == 0.5


# ---- NA / TSSL-BP -------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_na_code_head_equals_code(seed):
    rng = np.random.default_rng(seed)
    T, M = 9, 6
    n = PscLIF(tau_m=5.0, tau_s=2.0, theta=1.0)
    c = rng.normal(0.45, 0.6, (T, M))
    from eventsnn.dense.psc_neurons import psc_layer
    v, s, u, a = psc_layer(c, n)
    g = rng.normal(0.0, 1.0, (T, M))
    delta, e, dl = na_delta(g, c, v, s, n, b=5.0, power=3, loss_change="accumulated", return_parts=True)
    want = ref.na_code_layer(g, s, v, a, c, 5.0, 2.0, 1.0, clip=5.0)
    _close(delta, want)
    acc = g.copy()
    for t in range(T - 2, -1, -1):
        acc[t] += acc[t + 1] * 0.5
    _close(e, acc)
    with np.errstate(divide="ignore"):
        _close(dl * np.clip(1.0 / (1.0 - v) ** 3, -5, 5), want)
    old = ref.na_code_layer(g, s, v, a, c, 5.0, 2.0, 1.0, clip=10.0, accumulate=False)
    with np.errstate(divide="ignore"):
        old = old / np.clip(1.0 / (1.0 - v) ** 3, -10, 10) * np.clip(1.0 / (1.0 - v), -10, 10)
    _close(na_delta(g, c, v, s, n, b=10.0, power=1, loss_change="direct"), old)


def test_na_learner_defaults_equal_code_head():
    """NaLearner() end to end: double-filtered all-ones target, e . (a_p - a), clip(1/d^3, 5),
    the rescaling of each layer against the output layer's stored mean."""
    rng = np.random.default_rng(3)
    net = es.Sequential(es.Dense(6, 5), es.Dense(5, 3), rng=1)
    for layer in net.layers:
        layer.weight = layer.weight * 2.5
    X = rng.random((4, 6))
    y = np.array([0, 1, 2, 1])
    T = 6
    learner = NaLearner(net, n_steps=T, tau_m=5.0, tau_s=2.0)
    loss, grads, _, _ = learner.loss_and_grads(X, y)
    rec = psc_forward(net, learner.encode(X), learner.neuron)
    target = np.zeros((T, 4, 3))
    for b in range(4):
        target[:, b, y[b]] = ref.code_psp(ref.code_psp(np.ones(T), 2.0), 2.0)
    g = rec.output - target
    assert loss == pytest.approx(0.5 * np.sum(g ** 2) / 4, rel=1e-12)
    norms = {}
    want = [None, None]
    for l in (1, 0):
        st = rec.states[l]
        flat = lambda z: z.reshape(T, -1)  # noqa: E731
        d = ref.na_code_layer(flat(g), flat(st["s"]), flat(st["v"]), flat(st["a"]), flat(st["c"]), 5.0, 2.0)
        d = ref.na_code_rescale(d, norms, l).reshape(st["c"].shape)
        W = net.layers[l].weight
        want[l] = np.einsum("tbi,tbj->ij", d, rec.inputs[l]) / 4
        g = np.einsum("tbi,ij->tbj", d, W)
    _close(grads[1], want[1])
    _close(grads[0], want[0])


def test_na_learner_presets_and_target_options():
    net = es.Sequential(es.Dense(4, 2), rng=0)
    o = NaLearner(net).options
    assert (o["b"], o["loss_change"], o["rescale"], o["target"], o["target_filters"]) == (5.0, "accumulated", True,
                                                                                          "ones", 2)
    p = NaLearner(net, preset="paper").options
    assert (p["b"], p["rescale"], p["target"], p["target_filters"]) == (10.0, False, None, 1)
    assert NaLearner(net, preset="paper", b=3.0).options["b"] == 3.0
    with pytest.raises(ValueError, match="target"):
        NaLearner(net, target=np.ones(3))
    with pytest.raises(ValueError, match="target_filters"):
        TsslLearner(net, target_filters=3)


def test_tssl_double_filtered_target_equals_code():
    rng = np.random.default_rng(0)
    T = 10
    a = rng.random((T, 3, 4)) * 0.3
    y = np.array([1, 3, 0])
    pattern = (np.arange(T) % 2 == 1).astype(float)
    losses_, g = psc_train_loss(a, y, 2.0, pattern, n_filters=2)
    for b in range(3):
        for k in range(4):
            tgt = ref.code_psp(ref.code_psp(pattern, 2.0), 2.0) if k == y[b] else np.zeros(T)
            _close(g[:, b, k], a[:, b, k] - tgt)
    net = es.Sequential(es.Dense(5, 4), rng=0)
    learner = TsslLearner(net, n_steps=T, target=pattern)
    assert learner.options["target_filters"] == 2
    assert TsslLearner(net, n_steps=T, preset="paper").options["target_filters"] == 1
    X = rng.random((3, 5))
    loss, _, _, _ = learner.loss_and_grads(X, y)
    rec = learner._forward(X)
    want = 0.0
    for b in range(3):
        for k in range(4):
            tgt = ref.code_psp(ref.code_psp(pattern, 2.0), 2.0) if k == y[b] else np.zeros(T)
            want += 0.5 * np.sum((rec.output[:, b, k] - tgt) ** 2) / 3
    assert loss == pytest.approx(want, rel=1e-12)
    _, g1 = psc_train_loss(rec.output, y, learner.neuron.tau_s, pattern)
    _, g2 = psc_train_loss(rec.output, y, learner.neuron.tau_s, pattern, 2)
    assert not np.allclose(g1, g2)


def test_psc_backward_full_exposes_deltas_and_psc_grads():
    rng = np.random.default_rng(1)
    net = es.Sequential(es.Dense(6, 5), es.Dense(5, 3), rng=1)
    learner = NaLearner(net, n_steps=5, rescale=False)
    X = rng.random((2, 6))
    rec = learner._forward(X)
    _, g = psc_train_loss(rec.output, [0, 2], learner.neuron.tau_s)
    seen = {}

    def fn(l, gg, st):
        seen[l] = (gg.copy(), learner._delta(l, gg, st))
        return seen[l][1]

    full = psc_backward(net, rec, g, fn, full=True)
    plain = psc_backward(net, rec, g, lambda l, gg, st: learner._delta(l, gg, st))
    for l in range(2):
        _close(full.weights[l], plain[l], 0)
        _close(full.psc_grads[l], seen[l][0], 0)
        _close(full.deltas[l], seen[l][1], 0)
    _close(full.psc_grads[1], g, 0)
    _close(full.psc_grads[0], np.einsum("tbi,ij->tbj", full.deltas[1], net.layers[1].weight))


# ---- NA notebook --------------------------------------------------------------------------
def _example():
    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "na_single_neuron.py"
    spec = importlib.util.spec_from_file_location("na_single_neuron", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_na_example_rules_equal_the_notebook():
    mod = _example()
    neuron = PscLIF(tau_m=5.0, tau_s=2.0, theta=1.0)
    rng = np.random.default_rng(0)
    a_in, target, W = mod.make_rounds(6, 30, 200, 0.05, 0.25, neuron, rng)
    from scipy import stats
    from eventsnn.dense.psc_neurons import psc_filter, psc_layer
    raw = psc_filter((np.random.default_rng(0).random((30, 6, 200)) < 0.05).astype(float), 2.0)
    for r in range(6):
        _close(a_in[:, r], stats.zscore(raw[:, r].T).T)  # the notebook z-scores axis 0 of (inputs, T)
    c = np.einsum("tri,ri->tr", a_in, W * 8)
    v, s, u, a = psc_layer(c, neuron)
    g = a - target
    na = mod.notebook_na_delta(g, v, s, a, neuron)
    stbp = mod.stbp_delta(g, v, s, neuron, "sigmoid", mod.STBP_NOTEBOOK_TEMP, mod.STBP_NOTEBOOK_GAIN)
    for r in range(6):
        uu, out = ref.notebook_forward(W[r] * 8, a_in[:, r].T)
        _close(v[:, r], uu, 1e-12)
        np.testing.assert_array_equal(s[:, r], out)
        _close(ref.notebook_smooth(out, 0.5) - target[:, r], g[:, r], 1e-12)
        _close(na[:, r], ref.notebook_na_grad(uu, out, g[:, r]), 1e-12)
        _close(stbp[:, r], ref.notebook_stbp_grad(uu, out, g[:, r]), 1e-12)
    assert s.sum() > 0


def test_na_example_reproduces_the_ordering_on_a_few_rounds():
    mod = _example()
    res = mod.main(["--rounds", "40", "--iters", "200", "--no-plot"])
    na, stbp = res["na-notebook"], res["stbp-notebook"]
    assert na["rounds_solved"] == 40 and stbp["rounds_solved"] == 40
    assert na["zero_mean_loss_at"] < stbp["zero_mean_loss_at"]
    assert res["na_before_stbp"]


# ---- API gaps -----------------------------------------------------------------------------
def test_asf_learner_takes_pre_drawn_spikes():
    net = es.Sequential(es.Dense(6, 5), es.Dense(5, 3), rng=0)
    X = np.random.default_rng(0).random((4, 6))
    y = np.array([0, 1, 2, 0])
    drawn = AsfLearner(net, n_steps=20).encode(X, rng=7)  # (T, B, n)
    a = AsfLearner(net, n_steps=20)
    b = AsfLearner(net, n_steps=20, encoder="spikes")
    la, ga, _, _ = a.loss_and_grads(X, y, rng=7)
    lb, gb, _, _ = b.loss_and_grads(drawn.transpose(1, 0, 2), y)
    assert la == lb
    for u, w in zip(ga, gb):
        _close(u, w, 0)
    with pytest.raises(ValueError, match="encoder='spikes'"):
        b.loss_and_grads(X, y)


def test_optim_weight_clamp_and_value_clip():
    p = [np.array([3.9, -3.0, 0.5]), None]
    opt = SGD(lr=1.0, weight_clamp=4.0)
    opt.step(p, [np.array([-1.0, 2.0, 0.0]), None])
    _close(p[0], [4.0, -4.0, 0.5], 0)
    g = [np.array([-3.0, 0.2, 1.5])]
    assert clip_grad_value(g, 1.0) == 3.0
    _close(g[0], [-1.0, 0.2, 1.0], 0)
    w = [np.array([[5.0, -6.0]])]
    clamp_weights(w, 4.0)
    _close(w[0], [[4.0, -4.0]], 0)
    with pytest.raises(ValueError, match="weight_clamp"):
        SGD(lr=0.1, weight_clamp=-1.0)


def test_event_learner_time_mse_and_latency_losses():
    from eventsnn import losses as elosses
    from eventsnn.event.learner import EventLearner

    net = es.Sequential(es.Dense(4, 6), es.Dense(6, 3), rng=0)
    X = np.random.default_rng(0).random((3, 4))
    y = np.array([0, 1, 2])
    learner = EventLearner(net, loss="time_mse", init=True, init_target=1.0, n_threads=1,
                           target_time_true=3.0)
    loss, grads, preds, _ = learner.loss_and_grads(X, y)
    recs = net.simulate(learner.encode(X), t_end=10.0, n_threads=1)
    want_loss, want = 0.0, [np.zeros_like(layer.weight) for layer in net.layers]
    for rec, lab in zip(recs, y):
        if not np.any(rec.spikes[-1].neurons == lab):
            rec = elosses.with_supervisory_spike(rec, int(lab), 10.0)
        tg = np.full((3, 1), 10.0)
        tg[lab, 0] = 3.0
        L, g = elosses.time_mse_loss(rec.spikes[-1], tg)
        want_loss += L / 3
        gw = net.backward(rec, g, kernel="exp", tau_grad=2.5, clamp=(-4.0, 0.0), factor=1.0)
        for k in range(2):
            want[k] += gw.weights[k] / 3
    assert loss == pytest.approx(want_loss)
    for a, b in zip(grads, want):
        _close(a, b)
    assert np.any(grads[1] != 0)
    lat = EventLearner(net, loss="latency", init=False, n_threads=1)
    first = EventLearner(net, loss="first_spike", init=False, n_threads=1)
    assert lat.loss_and_grads(X, y)[0] == first.loss_and_grads(X, y)[0]
