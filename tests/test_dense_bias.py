"""Trainable biases of Dense/Conv2d layers: the dense ANTLR neuron's bias term (ANTLR Eq. 1,
V[t] = a_v (1 - S[t-1]) V[t-1] + b_v I[t] + b_bias bias), its gradients in the activation
and ANTLR rules, training, files, and the clear errors everywhere else."""
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import eventsnn as es
from eventsnn.dense import ops
from eventsnn.dense.neurons import AntlrNeuron, ZhuNeuron
from eventsnn.dense.record import DenseRecord
from eventsnn.dense.rules import activation, antlr, timing

from . import naive_dense as nd
from .test_dense_forward import assert_same_forward
from .strategies import examples

SURR = st.sampled_from([("exp", 3.0), ("fast_sigmoid", 5.0), ("triangle", 1.0), ("sigmoid", 4.0)])
BIAS_MSG = "biases are supported by the dense ANTLR neuron only"


def _close(a, b, tol=1e-9):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    np.testing.assert_allclose(a, b, atol=tol * max(1.0, np.abs(b).max(initial=0.0)), rtol=1e-9)


@st.composite
def antlr_neurons(draw, resets=("full",)):
    return AntlrNeuron(a_i=draw(st.sampled_from([0.99, 0.8, 0.5, 0.0])),
                       a_v=draw(st.sampled_from([0.99, 0.9, 0.6])),
                       b_i=draw(st.sampled_from([1.0, 0.7])),
                       b_v=draw(st.sampled_from([None, 0.5])),
                       theta=draw(st.sampled_from([0.5, 1.0])),
                       reset=draw(st.sampled_from(resets)),
                       b_bias=draw(st.sampled_from([None, 0.3, 2.0])))


@st.composite
def bias_cases(draw, conv=True, resets=("full",)):
    """(net, x, neuron, seed): a small Dense or Conv/pool network whose neuron layers have
    random biases (each layer biased or not), ANTLR neurons, random inputs."""
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    T = draw(st.sampled_from([8, 6, 12, 4, 2]))
    B = draw(st.integers(1, 2))
    kind = draw(st.sampled_from(["mlp", "conv"] if conv else ["mlp"]))
    flags = [draw(st.booleans()) or k == 0 for k in range(2)]  # the first neuron layer always biased
    if kind == "mlp":
        n_in = draw(st.sampled_from([3, 2, 4, 1]))
        h = draw(st.sampled_from([3, 2, 4]))
        o = draw(st.sampled_from([2, 3, 1]))
        net = es.Sequential(es.Dense(n_in, h, bias=flags[0]), es.Dense(h, o, bias=flags[1]), rng=seed)
        n_in_total = n_in
    else:
        pool = draw(st.sampled_from(["max", "avg", None]))
        conv_l = es.Conv2d((1, 4, 4), 2, 2, padding=draw(st.integers(0, 1)), bias=flags[0])
        shape = conv_l.bind((1, 4, 4))
        layers = [conv_l]
        if pool is not None:
            layers.append(es.MaxPool2d(2) if pool == "max" else es.AvgPool2d(2))
            shape = (shape[0], shape[1] // 2, shape[2] // 2)
        layers += [es.Flatten(), es.Dense(int(np.prod(shape)), 2, bias=flags[1])]
        net = es.Sequential(*layers, rng=seed)
        n_in_total = 16
    scale = draw(st.sampled_from([2.0, 4.0, 1.0]))
    shift = draw(st.sampled_from([1.0, 0.5, 0.0]))
    bias_scale = draw(st.sampled_from([0.5, 1.0, 0.2]))
    for layer in net.layers:
        if layer.has_weight:
            bound = np.sqrt(6.0 / layer.weight[0].size)
            layer.weight = (layer.weight + shift * bound) * scale
        if layer.has_bias:
            layer.bias = rng.normal(0.2, 1.0, layer.bias_shape) * bias_scale
    if draw(st.booleans()):
        x = (rng.random((T, B, n_in_total)) < 0.4).astype(float)
    else:
        x = rng.uniform(0, 1.5, (T, B, n_in_total))
    return net, x, draw(antlr_neurons(resets)), seed


def _assert_forward(rec, ref, theta):
    try:
        assert_same_forward(rec, ref, theta)
    except AssertionError:
        # a membrane within rounding of theta may flip a spike: accept only that
        near = [np.min(np.abs(m - theta)) for m in rec.membranes if m is not None]
        assert min(near) < 1e-9
        raise


# ---- forward -------------------------------------------------------------------------------
@settings(max_examples=examples(60), deadline=None)
@given(bias_cases(resets=("full", "subtract", "membrane")))
def test_biased_forward_equals_naive(case):
    """Numba kernels (all three resets) == the recursion with the bias written out."""
    net, x, neuron, _ = case
    rec = net.run(x, neuron=neuron)
    _assert_forward(rec, nd.network_forward_bias(net, x, neuron), neuron.theta)


def test_bias_drives_a_silent_neuron_exactly():
    """No input: V[t] = b_bias bias sum_k a_v^k until V >= theta, then the full reset."""
    net = es.Sequential(es.Dense(1, 1, bias=True), rng=0)
    net.layers[0].bias = np.array([1.0])
    nrn = AntlrNeuron(a_i=0.5, a_v=0.5, b_v=1.0, b_bias=0.6, theta=1.0)
    rec = net.run(np.zeros((6, 1, 1)), neuron=nrn)
    # 0.6, 0.9, 1.05 (spike) -> reset -> 0.6, 0.9, 1.05
    _close(rec.membranes[0][:, 0, 0], [0.6, 0.9, 1.05, 0.6, 0.9, 1.05], 1e-15)
    np.testing.assert_array_equal(rec.output[:, 0, 0], [0, 0, 1, 0, 0, 1])


@settings(max_examples=examples(40), deadline=None)
@given(bias_cases(resets=("full", "subtract", "membrane")), SURR, st.booleans())
def test_zero_bias_equals_unbiased(case, surr, reset_path):
    """bias = 0 changes nothing: the same forward record and the same weight and input
    gradients of every rule, bit for bit; the bias gradients are there."""
    net, x, neuron, seed = case
    plain = es.Sequential(*[type(l)(**_ctor(l)) for l in net.layers], rng=0)
    for lb, lp in zip(net.layers, plain.layers):
        if lb.has_weight:
            lp.weight = lb.weight
            if lb.has_bias:
                lb.bias = np.zeros(lb.bias_shape)
    assert net.has_bias and not plain.has_bias
    ra, rb = net.run(x, neuron=neuron), plain.run(x, neuron=neuron)
    for name in ("currents", "membranes", "increments", "outputs"):
        for a, b in zip(getattr(ra, name), getattr(rb, name)):
            if b is not None:
                np.testing.assert_array_equal(a, b)
    g = np.random.default_rng(seed).normal(size=ra.output.shape)
    ga = activation.backward(ra, g, surrogate=surr[0], surrogate_scale=surr[1], reset_path=reset_path,
                             input_grad=True)
    gb = activation.backward(rb, g, surrogate=surr[0], surrogate_scale=surr[1], reset_path=reset_path,
                             input_grad=True)
    pairs = [(ga, gb)]
    if neuron.reset == "full":
        gt = g * ra.output
        pairs.append((antlr.backward(ra, g, gt, input_grad=True), antlr.backward(rb, g, gt, input_grad=True)))
    for a, b in pairs:
        for wa, wb in zip(a.weights, b.weights):
            if wb is not None:
                np.testing.assert_array_equal(wa, wb)
        for sa, sb in zip(a.grad_s, b.grad_s):
            np.testing.assert_array_equal(sa, sb)
        assert all(x is None for x in b.biases)
        for layer, db in zip(net.layers, a.biases):
            assert (db is None) == (not layer.has_bias)
            if db is not None:
                assert db.shape == layer.bias_shape and np.all(np.isfinite(db))


def _ctor(layer):
    if isinstance(layer, es.Dense):
        return {"n_in": layer.n_in_decl, "n_out": layer.n_out_decl}
    if isinstance(layer, es.Conv2d):
        return {"in_shape": layer.in_decl, "out_channels": layer.out_channels,
                "kernel_size": layer.kernel_size, "stride": layer.stride, "padding": layer.padding}
    if isinstance(layer, es.AvgPool2d):
        return {"kernel_size": layer.kernel_size, "adjusted": layer.adjusted}
    if isinstance(layer, es.MaxPool2d):
        return {"kernel_size": layer.kernel_size}
    return {}


def test_b_bias_default_is_b_v_default():
    """b_bias = None -> 1 / peak of the b_v = 1 kernel within the window, like b_v; given
    values are used as they are, and b_bias <= 0 is rejected."""
    for n in (AntlrNeuron(), AntlrNeuron(a_i=0.8, a_v=0.9), AntlrNeuron(a_i=0.5, a_v=0.6, b_i=0.7, b_v=0.5)):
        for T in (1, 4, 16, 300):
            peak = nd.antlr_raw_peak(n.a_i, n.a_v, n.b_i, T)
            assert n.resolved_b_bias(T) == pytest.approx(1.0 / peak, rel=1e-12)
            if n.b_v is None:
                assert n.resolved_b_bias(T) == n.resolved_b_v(T)
    assert AntlrNeuron(b_bias=0.25).resolved_b_bias(16) == 0.25
    assert AntlrNeuron.from_srm(es.SRM()).b_bias is None
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="b_bias"):
            AntlrNeuron(b_bias=bad)


# ---- gradients -------------------------------------------------------------------------------
@settings(max_examples=examples(40), deadline=None)
@given(bias_cases(), SURR)
def test_activation_srm_bias_grad_equals_naive(case, surr):
    """SRM-based activation rule: dL/dbias = sum_t dL/dV[t] b_bias sum over the reset
    window of a_v^k, against the loops."""
    net, x, neuron, seed = case
    rec = net.run(x, neuron=neuron)
    g = np.random.default_rng(seed).normal(size=rec.output.shape)
    out = activation.backward(rec, g, surrogate=surr[0], surrogate_scale=surr[1], reset_path=False)
    ref = nd.activation_srm_bias_grads(net, rec, g, surr[0], surr[1])
    for layer, a, b in zip(net.layers, out.biases, ref):
        assert (a is None) == (b is None)
        if b is not None:
            _close(a, b)


@settings(max_examples=examples(40), deadline=None)
@given(bias_cases(), SURR, st.sampled_from([(1.0, 1.0), (1.0, 0.0), (0.0, 1.0), (0.5, 2.0)]),
       st.sampled_from([None, 1.0]))
def test_antlr_bias_grad_equals_naive(case, surr, lams, clip):
    net, x, neuron, seed = case
    rec = net.run(x, neuron=neuron)
    rng = np.random.default_rng(seed)
    gs = rng.normal(size=rec.output.shape)
    gt = rng.normal(size=rec.output.shape) * rec.output
    out = antlr.backward(rec, gs, gt, lambda_act=lams[0], lambda_tim=lams[1], surrogate=surr[0],
                         surrogate_scale=surr[1], clip=clip)
    T = rec.n_steps
    b_bias = nd.antlr_scales(neuron, T)[1]
    # the bias part on its own: sum_t dL/dV[t] dV[t]/dbias with the rule's own dL/dV
    for a, b in zip(out.biases, nd.bias_grads_from_dv(net, rec, out.grad_v, b_bias)):
        assert (a is None) == (b is None)
        if b is not None:
            _close(a, b)
    # end to end against the loops (dL/dV of every layer from the ANTLR formulas)
    ref = nd.antlr_bias_grads(net, rec, gs, gt, lams[0], lams[1], surr[0], surr[1], 0.01, clip)
    for a, b in zip(out.biases, ref):
        assert (a is None) == (b is None)
        if b is not None:
            _close(a, b)


def test_antlr_act_only_bias_equals_activation_rule():
    rng = np.random.default_rng(2)
    net = es.Sequential(es.Dense(5, 6, bias=True), es.Dense(6, 3, bias=True), rng=1)
    for layer in net.layers:
        layer.bias = rng.normal(0.3, 0.5, layer.bias_shape)
    rec = net.run(rng.uniform(0, 1.5, (12, 2, 5)), neuron=AntlrNeuron(a_i=0.8, a_v=0.9))
    assert rec.output.any()
    g = rng.normal(size=rec.output.shape)
    a = antlr.backward(rec, g, None, lambda_act=1.0, lambda_tim=0.0)
    b = activation.backward(rec, g)
    for ba, bb in zip(a.biases, b.biases):
        np.testing.assert_allclose(ba, bb, rtol=1e-12, atol=1e-14)


def _smooth_forward_bias(net, x, neuron, k):
    """Forward of a smoothed network, S = logistic(k (V - theta)), with the bias term and
    the neuron's reset written with the real-valued S (full: I and V gated by 1 - S)."""
    T, B, _ = x.shape
    b_v, b_bias = nd.antlr_scales(neuron, T)
    a_i, a_v, b_i, theta = neuron.a_i, neuron.a_v, neuron.b_i, neuron.theta
    h = x
    inputs, cur, mem, inc, outs = [], [], [], [], []
    for layer in net.layers:
        inputs.append(h)
        if not layer.has_neurons:
            h = ops.forward(layer, h)
            cur.append(None); mem.append(None); inc.append(None); outs.append(h)
            continue
        c = ops.forward(layer, h)
        bias = np.array([nd.neuron_bias_at(layer, i) for i in range(layer.n_out)])
        I = np.zeros((B, layer.n_out)); V = np.zeros_like(I); Sp = np.zeros_like(I)
        U = np.zeros_like(c); S = np.zeros_like(c)
        for t in range(T):
            if neuron.reset == "full":
                I = a_i * (1 - Sp) * I + b_i * c[t]
                V = a_v * (1 - Sp) * V + b_v * I + b_bias * bias
            elif neuron.reset == "subtract":
                I = a_i * I + b_i * c[t]
                V = a_v * V + b_v * I - theta * Sp + b_bias * bias
            else:
                I = a_i * I + b_i * c[t]
                V = a_v * (1 - Sp) * V + b_v * I + b_bias * bias
            U[t] = V
            S[t] = Sp = 1.0 / (1.0 + np.exp(-k * (V - theta)))
        cur.append(c); mem.append(U); inc.append(np.zeros_like(U)); outs.append(S)
        h = S
    return DenseRecord(inputs, cur, mem, inc, outs, neuron, list(net.layers))


@pytest.mark.parametrize("reset", ["full", "subtract", "membrane"])
@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_bias_bptt_is_exact_derivative_of_smoothed_network(reset, arch):
    """With S = logistic(k(V - theta)) in the forward and the matching surrogate k s (1 - s),
    BPTT with reset paths gives the exact dL/dbias (and dL/dW) of every reset: central
    finite differences."""
    k = 4.0
    neuron = AntlrNeuron(a_i=0.8, a_v=0.9, b_i=1.0, theta=0.5, reset=reset, b_bias=0.7)
    rng = np.random.default_rng(11)
    if arch == "mlp":
        net = es.Sequential(es.Dense(4, 5, bias=True), es.Dense(5, 3, bias=True), rng=4)
        x = rng.uniform(0, 1, (8, 2, 4))
    else:
        net = es.Sequential(es.Conv2d((1, 3, 3), 2, 2, bias=True), es.Flatten(),
                            es.Dense(8, 3, bias=True), rng=4)
        x = rng.uniform(0, 1, (8, 2, 9))
    for layer in net.layers:
        if layer.has_bias:
            layer.bias = rng.normal(0.0, 0.5, layer.bias_shape)
    r = rng.normal(size=(8, 2, 3))

    def loss():
        return float(np.sum(r * _smooth_forward_bias(net, x, neuron, k).outputs[-1]))

    out = activation.backward(_smooth_forward_bias(net, x, neuron, k), r, surrogate="sigmoid",
                              surrogate_scale=k, reset_path=True)
    h = 1e-6
    for l, layer in enumerate(net.layers):
        if not layer.has_bias:
            continue
        b0 = layer.bias.copy()
        for i in range(b0.size):
            bp = b0.copy(); bp[i] += h
            layer.bias = bp
            lp = loss()
            bp[i] -= 2 * h
            layer.bias = bp
            lm = loss()
            layer.bias = b0
            assert out.biases[l][i] == pytest.approx((lp - lm) / (2 * h), rel=1e-5, abs=1e-8)
        w0 = layer.weight.copy()
        idx = (0,) * w0.ndim
        wp = w0.copy(); wp[idx] += h
        layer.weight = wp
        lp = loss()
        wp[idx] -= 2 * h
        layer.weight = wp
        lm = loss()
        layer.weight = w0
        assert out.weights[l][idx] == pytest.approx((lp - lm) / (2 * h), rel=1e-5, abs=1e-8)


# ---- training, files -------------------------------------------------------------------------------
def _toy(n=24, d=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    X = rng.uniform(0, 0.3, (n, d))
    X[np.arange(n), y] += 0.7
    return X, y


@pytest.mark.parametrize("rule", ["activation", "antlr"])
def test_learners_return_and_trainer_applies_bias_grads(rule):
    from eventsnn.learner import get_learner_class
    from eventsnn.train import Trainer

    X, y = _toy()
    net = es.Sequential(es.Dense(6, 8), es.Dense(8, 3), rng=0)
    extra = {"grad_clip": None} if rule == "antlr" else {}  # compared with the unclamped rule
    learner = get_learner_class(rule)(net, neuron="antlr", bias=True, n_steps=8, **extra)
    assert all(layer.has_bias for layer in net.layers)
    loss, grads, _, _ = learner.loss_and_grads(X[:8], y[:8])
    assert len(grads) == 2 * len(net.layers)
    rec = learner.forward(X[:8])
    mod = activation if rule == "activation" else antlr
    ref = mod.backward(rec, *_loss_grads(learner, rec, y[:8]))
    for l, layer in enumerate(net.layers):
        _close(grads[len(net.layers) + l], ref.biases[l] / 8, 1e-12)
    b0 = [layer.bias.copy() for layer in net.layers]
    w0 = [layer.weight.copy() for layer in net.layers]
    Trainer(learner, lr=0.01, batch_size=8, epochs=1).fit(X, y)
    for layer, b, w in zip(net.layers, b0, w0):
        assert not np.array_equal(layer.bias, b) and not np.array_equal(layer.weight, w)


def _loss_grads(learner, rec, y):
    from eventsnn.dense import losses
    tgt = losses.count_targets(y, learner.net.n_out, learner.options["n_true"], learner.options["n_false"])
    _, gs, gt = losses.count_loss(rec.output, tgt)
    return (gs,) if learner.name == "activation" else (gs, gt)


def test_cli_bias_option(tmp_path, capsys):
    from eventsnn.train_cli import main

    path = tmp_path / "m.npz"
    rc = main(["--rule", "activation", "--opt", "neuron=antlr", "--opt", "bias=true", "--epochs", "1",
               "--limit", "64", "--arch", "64-16-10", "--no-progress", "--save", str(path)])
    assert rc == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    net = es.Sequential.load(path)
    assert all(layer.has_bias and np.any(layer.bias != 0) for layer in net.layers)


def test_save_load_round_trips_biases(tmp_path):
    net = es.Sequential(es.Conv2d((1, 4, 4), 2, 2, padding=1, bias=True), es.AvgPool2d(2), es.Flatten(),
                        es.Dense(8, 3), es.Dense(3, 2, bias=True), rng=3)
    rng = np.random.default_rng(0)
    for layer in net.layers:
        if layer.has_bias:
            layer.bias = rng.normal(size=layer.bias_shape)
    path = tmp_path / "b.npz"
    net.save(path)
    back = es.Sequential.load(path)
    assert repr(back) == repr(net)
    for a, b in zip(net.layers, back.layers):
        assert a.has_bias == b.has_bias
        if a.has_bias:
            np.testing.assert_array_equal(a.bias, b.bias)
        if a.has_weight:
            np.testing.assert_array_equal(a.weight, b.weight)
    x = rng.uniform(0, 1, (6, 2, 16))
    np.testing.assert_array_equal(net.run(x, neuron="antlr").membranes[-1],
                                  back.run(x, neuron="antlr").membranes[-1])
    # a network without biases is written exactly as before (format 1, no bias entries)
    plain = es.Sequential(es.Dense(3, 2), rng=0)
    plain.save(tmp_path / "p.npz")
    with np.load(tmp_path / "p.npz", allow_pickle=False) as data:
        meta = json.loads(bytes(data["meta"]).decode())
        assert meta["version"] == 1 and "bias" not in meta["layers"][0]
        assert not any(k.startswith("bias_") for k in data.files)
    assert not es.Sequential.load(tmp_path / "p.npz").has_bias


def test_bias_attribute():
    d = es.Dense(3, 2)
    assert d.bias is None and not d.has_bias
    d.bias = [0.5, -1.0]
    assert d.bias.dtype == np.float64 and d.has_bias and repr(d) == "Dense(3, 2, bias=True)"
    d.bias = None
    assert not d.has_bias and repr(d) == "Dense(3, 2)"
    c = es.Conv2d((2, 4, 4), 3, 2, bias=True)
    np.testing.assert_array_equal(c.bias, np.zeros(3))
    with pytest.raises(ValueError, match=r"bias of Dense.*shape \(2,\)"):
        d.bias = np.zeros(3)
    with pytest.raises(ValueError, match=r"bias of Conv2d.*shape \(3,\)"):
        c.bias = np.zeros((3, 1))
    with pytest.raises(ValueError, match="finite"):
        d.bias = [np.nan, 0.0]
    with pytest.raises(TypeError, match="bias must be a bool"):
        es.Dense(3, 2, bias="yes")
    with pytest.raises(AttributeError, match="no bias"):
        es.MaxPool2d(2).bias = np.zeros(1)
    net = es.Sequential(es.Dense(3, 2, bias=True), rng=0)
    net.layers[0].bias[0] = np.inf  # in-place edits are caught before a run
    with pytest.raises(ValueError, match="bias of layer 0"):
        net.run(np.ones((2, 1, 3)), neuron="antlr")


# ---- clear errors --------------------------------------------------------------------------------
def test_event_mode_rejects_biases():
    from eventsnn.event.backward import backward_many
    from eventsnn.event.learner import EventLearner
    from eventsnn.init import init_firing_rate

    net = es.Sequential(es.Dense(2, 3), es.Dense(3, 2), rng=0)
    st_in = es.SpikeTrains([1.0, 2.0], [0, 1], 2)
    rec = net.simulate(st_in)
    net.layers[1].bias = np.zeros(2)
    match = r"layer 1 \(Dense\(3, 2, bias=True\)\) has a bias, but event mode.*" + BIAS_MSG
    with pytest.raises(ValueError, match=match):
        net.simulate(st_in)
    with pytest.raises(ValueError, match=match):
        net.backward(rec, np.zeros(len(rec.spikes[-1])))
    with pytest.raises(ValueError, match=match):
        backward_many(net, [rec], [np.zeros(len(rec.spikes[-1]))])
    with pytest.raises(ValueError, match=match):
        init_firing_rate(net, [st_in])
    with pytest.raises(ValueError, match="layer 1.*event rule.*" + BIAS_MSG):
        EventLearner(net)


def test_zhu_neuron_and_timing_rule_reject_biases():
    from eventsnn.dense.learners import ActivationLearner, AntlrLearner, TimingLearner

    net = es.Sequential(es.Conv2d((1, 3, 3), 2, 2, bias=True), es.Flatten(), es.Dense(8, 2), rng=0)
    x = np.ones((4, 1, 9))
    match = r"layer 0 \(Conv2d.*bias=True\)\) has a bias, but the dense ZhuNeuron.*" + BIAS_MSG
    for neuron in (None, "zhu", ZhuNeuron()):
        with pytest.raises(ValueError, match=match):
            net.run(x, neuron=neuron)
    rec = net.run(x, neuron="antlr")
    with pytest.raises(ValueError, match="layer 0.*timing rule.*" + BIAS_MSG):
        timing.backward(rec, np.zeros(rec.output.shape))
    zrec = DenseRecord(rec.inputs, rec.currents, rec.membranes, rec.increments, rec.outputs,
                       ZhuNeuron(), rec.layers)
    for rule in (activation, antlr):
        with pytest.raises(ValueError, match="ZhuNeuron.*" + BIAS_MSG):
            rule.backward(zrec, np.zeros(rec.output.shape))
    with pytest.raises(ValueError, match="ZhuNeuron"):
        ZhuNeuron().simulate(np.zeros((3, 2)), np.zeros(2))
    for cls in (ActivationLearner, AntlrLearner):
        with pytest.raises(ValueError, match="ZhuNeuron.*" + BIAS_MSG):
            cls(net)  # default neuron "zhu"
        with pytest.raises(ValueError, match="bias=True needs the antlr neuron family"):
            cls(es.Sequential(es.Dense(3, 2), rng=0), bias=True)
        cls(net, neuron="antlr")  # fine
    with pytest.raises(ValueError, match="timing rule.*" + BIAS_MSG):
        TimingLearner(net, neuron="antlr")
    with pytest.raises(ValueError, match="unknown option"):
        TimingLearner(es.Sequential(es.Dense(3, 2), rng=0), bias=True)


def test_psc_rules_reject_biases():
    from eventsnn.dense.learners_psc import AsfLearner, NaLearner, TsslLearner
    from eventsnn.dense.psc_network import psc_forward
    from eventsnn.dense.psc_neurons import PscLIF

    net = es.Sequential(es.Dense(3, 4, bias=True), es.Dense(4, 2), rng=0)
    for cls in (TsslLearner, NaLearner, AsfLearner):
        with pytest.raises(ValueError, match=f"layer 0.*the {cls.name} rule.*" + BIAS_MSG):
            cls(net)
    with pytest.raises(ValueError, match="layer 0.*PSC/ASF.*" + BIAS_MSG):
        psc_forward(net, np.ones((3, 1, 3)), PscLIF(8.0, 2.0, 1.0, "zero"))
