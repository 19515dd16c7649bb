"""Weight standardisation (``eventsnn.reparam``): the effective weight and the authors' backward
against a loop-by-loop oracle of their code, the chain rule against finite differences, the
trainer, checkpoints and the CLI with it."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventsnn as es
from eventsnn.event.learner import EventLearner
from eventsnn.learner import Learner
from eventsnn.reparam import WeightStandardization, code_grads, effective, exact_grads, make_reparam
from eventsnn.train import Trainer
from eventsnn.train_cli import main

from . import naive_reparam as naive


@st.composite
def problems(draw, max_channels=4):
    """(raw, gain, shift, grad_w) of a Dense (C, n) or Conv2d (C, c, k, k) weight."""
    C = draw(st.integers(1, max_channels))
    if draw(st.booleans()):
        shape = (C, draw(st.integers(2, 7)))
    else:
        k = draw(st.integers(1, 3))
        shape = (C, draw(st.integers(1, 3)), k, k)
        if int(np.prod(shape[1:])) < 2:
            shape = (C, 2, k, k)
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    spread = draw(st.sampled_from([0.01, 0.3, 3.0]))
    raw = rng.normal(draw(st.floats(-1, 1)), spread, size=shape)
    gain = rng.uniform(0.2, 5.0, C) * rng.choice([-1, 1], C)
    shift = rng.normal(0, 0.5, C)
    grad_w = rng.normal(0, 1, shape)
    return raw, gain, shift, grad_w


def _loss(G):
    return lambda r, g, b: float(np.sum(G * effective(r, g, b)))


@settings(max_examples=40, deadline=None)
@given(problems())
def test_exact_grads_equal_finite_differences(p):
    raw, gain, shift, G = p
    d_raw, d_gain, d_shift = exact_grads(G, raw, gain, shift)
    L = _loss(G)
    h_raw = 1e-6 * max(np.std(raw), 1e-3)
    num = np.zeros_like(raw)
    for i in np.ndindex(raw.shape):
        e = np.zeros_like(raw)
        e[i] = h_raw
        num[i] = (L(raw + e, gain, shift) - L(raw - e, gain, shift)) / (2 * h_raw)
    scale = np.max(np.abs(num)) + np.max(np.abs(G * gain.reshape(-1, *[1] * (G.ndim - 1)))) / max(np.std(raw), 1e-3)
    np.testing.assert_allclose(d_raw, num, rtol=1e-5, atol=1e-6 * scale)
    for c in range(len(gain)):
        e = np.zeros_like(gain)
        e[c] = 1e-6
        ng = (L(raw, gain + e, shift) - L(raw, gain - e, shift)) / 2e-6
        nb = (L(raw, gain, shift + e) - L(raw, gain, shift - e)) / 2e-6
        np.testing.assert_allclose(d_gain[c], ng, rtol=1e-6, atol=1e-6 * (1 + abs(ng)))
        np.testing.assert_allclose(d_shift[c], nb, rtol=1e-6, atol=1e-6 * (1 + abs(nb)))


@settings(max_examples=40, deadline=None)
@given(problems())
def test_effective_and_code_grads_equal_the_codes_formulas(p):
    raw, gain, shift, G = p
    rows, _, _ = naive.bn_forward(raw.tolist(), gain.tolist(), shift.tolist())
    np.testing.assert_allclose(effective(raw, gain, shift).reshape(len(gain), -1), np.array(rows),
                               rtol=1e-10, atol=1e-12)
    w, g, b = naive.bn_backward(G.tolist(), raw.tolist(), gain.tolist(), shift.tolist())
    d_raw, d_gain, d_shift = code_grads(G, raw, gain, shift)
    np.testing.assert_allclose(d_raw.reshape(len(gain), -1), np.array(w), rtol=1e-9,
                               atol=1e-12 * np.max(np.abs(w)))
    np.testing.assert_allclose(d_gain, g, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(d_shift, b, rtol=1e-9, atol=1e-12)


def test_code_grads_differ_from_the_chain_rule_where_the_code_does():
    rng = np.random.default_rng(0)
    raw, G = rng.normal(size=(2, 9)), rng.normal(size=(2, 9))
    gain, shift = np.array([2.0, 0.5]), np.array([0.3, 0.0])
    e, c = exact_grads(G, raw, gain, shift), code_grads(G, raw, gain, shift)
    np.testing.assert_allclose(c[2], e[2])                               # dL/db: both sum(G)
    x = effective(raw, np.ones(2), np.zeros(2))
    np.testing.assert_allclose(c[1], e[1] * gain + shift * e[2])         # sum(G w) vs sum(G x)
    assert not np.allclose(c[0], e[0])                                   # element-wise variance terms
    # the chain rule's dL/dv is orthogonal to the directions the weight is invariant to: a
    # shift of v, and (as eps -> 0) a rescaling of v
    np.testing.assert_allclose(e[0].sum(axis=1), 0, atol=1e-12)
    d_raw = exact_grads(G, raw, gain, shift, eps=1e-14)[0]
    np.testing.assert_allclose((d_raw * x).sum(axis=1), 0, atol=1e-9)


def _net():
    return es.Sequential(es.Conv2d((1, 4, 4), 3, 2), es.AvgPool2d(2, adjusted=True),
                         es.Flatten(), es.Dense(3, 2), rng=0)


def test_attach_apply_writes_in_place_and_keeps_or_standardises():
    net = _net()
    before = [np.array(layer.weight) for layer in net.layers if layer.has_weight]
    storage = net.layers[3].weight_t
    ws = WeightStandardization()
    ws.attach(net, keep=True)
    for w, k in zip(before, ws.layers):
        np.testing.assert_allclose(net.layers[k].weight, w, rtol=1e-12, atol=1e-14)
    assert net.layers[3].weight_t is storage                  # written through the view
    ws.attach(net, keep=False)
    for k, r in zip(ws.layers, ws.raw):
        flat = r.reshape(r.shape[0], -1)
        x = (flat - flat.mean(1, keepdims=True)) / np.sqrt(flat.var(1, ddof=1, keepdims=True) + 1e-5)
        np.testing.assert_allclose(net.layers[k].weight.reshape(r.shape[0], -1), x, rtol=1e-12)
    assert [len(p) for p in ws.params()] == [3, 3, 3, 2, 2, 2]


def test_sync_takes_a_rescaling_into_the_gain_and_rejects_other_changes():
    net = _net()
    ws = WeightStandardization()
    ws.attach(net, keep=False)
    assert not ws.sync()
    net.layers[0].weight *= 3.5                 # what the firing-rate initialisation does
    net.layers[3].weight[...] *= np.array([[2.0], [0.5]])
    assert ws.sync()
    np.testing.assert_allclose(ws.gain[0], 3.5)
    np.testing.assert_allclose(ws.gain[1], [2.0, 0.5])
    np.testing.assert_allclose(ws.shift[0], 0, atol=1e-12)
    w = np.array(net.layers[0].weight)
    ws.apply()
    np.testing.assert_allclose(net.layers[0].weight, w, rtol=1e-12)
    net.layers[0].weight[0, 0, 0, 0] += 0.1
    with pytest.raises(ValueError, match="cannot represent"):
        ws.sync()


def test_public_boundary_validates():
    with pytest.raises(ValueError, match="grad"):
        WeightStandardization(grad="approx")
    with pytest.raises(ValueError, match="eps"):
        WeightStandardization(eps=0)
    with pytest.raises(TypeError, match="reparam"):
        make_reparam(3)
    with pytest.raises(ValueError, match="reparam"):
        make_reparam("batchnorm")
    with pytest.raises(ValueError, match="gain"):
        effective(np.ones((2, 3)), np.ones(3), np.zeros(2))
    with pytest.raises(ValueError, match="raw"):
        effective(np.ones(3), np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match="grad_w"):
        exact_grads(np.ones((2, 2)), np.ones((2, 3)), np.ones(2), np.zeros(2))
    with pytest.raises(ValueError, match="finite"):
        code_grads(np.full((2, 3), np.nan), np.ones((2, 3)), np.ones(2), np.zeros(2))
    with pytest.raises(RuntimeError, match="attach"):
        WeightStandardization().params()
    with pytest.raises(TypeError, match="Sequential"):
        WeightStandardization().attach([es.Dense(2, 2)])
    ws = WeightStandardization()
    ws.attach(_net())
    with pytest.raises(ValueError, match="one weight gradient per layer"):
        ws.grads([None, None])


class _Softmax(Learner):
    """Softmax regression on the effective weights of one Dense layer (an exact gradient)."""

    name = "softmax"

    def __init__(self, net):
        self.net = net

    def _probs(self, X):
        z = X @ self.net.layers[0].weight.T
        p = np.exp(z - z.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)

    def loss(self, X, y):
        return float(-np.mean(np.log(self._probs(X)[np.arange(len(y)), y])))

    def loss_and_grads(self, X, y, rng=None):
        p = self._probs(X)
        d = p.copy()
        d[np.arange(len(y)), y] -= 1
        return self.loss(X, y), [d.T @ X / len(y)], p.argmax(1), {}

    def predict(self, X, rng=None):
        return self._probs(X).argmax(1), {}


def test_trainer_gradients_are_those_of_the_loss_in_v_g_b():
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(20, 5)), rng.integers(0, 3, 20)
    net = es.Sequential(es.Dense(5, 3), rng=1)
    learner = _Softmax(net)
    ws = WeightStandardization()
    ws.attach(net, keep=False)
    ws.gain[0][...] = [0.7, 1.3, 2.0]
    ws.shift[0][...] = [0.1, -0.2, 0.05]
    ws.apply()
    _, gw, _, _ = learner.loss_and_grads(X, y)
    grads = ws.grads(gw)
    for p, g in zip(ws.params(), grads):
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + 1e-6
            ws.apply()
            up = learner.loss(X, y)
            p[i] = old - 1e-6
            ws.apply()
            down = learner.loss(X, y)
            p[i] = old
            assert abs((up - down) / 2e-6 - g[i]) < 1e-6 * (1 + abs(g[i]))
    ws.apply()


def _digits(n=64):
    from eventsnn.datasets import load
    X, y, _, _ = load("digits")
    return X[:n], y[:n]


def _event_trainer(reparam=None, **kw):
    net = es.Sequential(es.Dense(64, 12), es.Dense(12, 10), rng=0)
    learner = EventLearner(net, rng=0, n_threads=1, init_samples=16)
    return Trainer(learner, lr=0.003, batch_size=16, epochs=2, seed=0, reparam=reparam, **kw)


def test_event_training_with_standardisation_changes_the_result_and_keeps_a_plain_network(tmp_path):
    X, y = _digits()
    plain, ws = _event_trainer(), _event_trainer("standardize")
    h0, h1 = plain.fit(X, y), ws.fit(X, y)
    assert [r["loss"] for r in h0] != [r["loss"] for r in h1]
    net = ws.learner.net
    for k, r, g, b in zip(ws.reparam.layers, ws.reparam.raw, ws.reparam.gain, ws.reparam.shift):
        np.testing.assert_allclose(net.layers[k].weight, effective(r, g, b), rtol=1e-12)
        assert not np.allclose(g, 1.0)   # the initialisation's scale went into g
    path = tmp_path / "m.npz"
    net.save(path)
    loaded = es.Sequential.load(path)
    for a, b in zip(net.layers, loaded.layers):
        if a.has_weight:
            np.testing.assert_array_equal(a.weight, b.weight)
    np.testing.assert_array_equal(ws.predict(X)[0], Trainer(EventLearner(loaded, n_threads=1)).predict(X)[0])


def test_checkpoint_resume_with_standardisation_equals_an_uninterrupted_run(tmp_path):
    X, y = _digits(48)
    full = _event_trainer("standardize", checkpoint=tmp_path / "a.npz")
    full.fit(X, y)

    class Killed(Exception):
        pass

    def kill(row):
        raise Killed

    first = _event_trainer("standardize", checkpoint=tmp_path / "b.npz", epoch_callback=kill)
    with pytest.raises(Killed):
        first.fit(X, y)
    second = _event_trainer("standardize", checkpoint=tmp_path / "b.npz")
    second.fit(X, y, resume=True)
    for a, b in zip(full.reparam.params(), second.reparam.params()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(full.learner.net.layers, second.learner.net.layers):
        if a.has_weight:
            np.testing.assert_array_equal(a.weight, b.weight)
    with np.load(tmp_path / "b.npz", allow_pickle=False) as data:
        assert "reparam_0_v" in data.files and "reparam_1_g" in data.files
    with pytest.raises(ValueError, match="written with a weight reparametrisation"):
        _event_trainer(None, checkpoint=tmp_path / "b.npz").fit(X, y, resume=True)
    with pytest.raises(ValueError, match="reparam"):
        _event_trainer(WeightStandardization(grad="code"), checkpoint=tmp_path / "b.npz").fit(X, y, resume=True)


def test_cli_reparam_flag(tmp_path, capsys):
    args = ["--dataset", "digits", "--arch", "64-12-10", "--epochs", "1", "--limit", "48",
            "--batch", "16", "--no-progress", "--threads", "1"]
    assert main(args + ["--reparam", "standardize", "--reparam-grad", "code"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["reparam"] == "standardize"
    with pytest.raises(SystemExit):
        main(args + ["--reparam", "batchnorm"])
    capsys.readouterr()
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"reparam": "bn"}))
    assert main(args + ["--config", str(cfg)]) == 2
    assert "reparam" in capsys.readouterr().err


@pytest.mark.parametrize("scale", [0.2, 1 / np.sqrt(6), 3.0])
def test_raw_scale_scales_v_and_keeps_or_standardises(scale):
    net = _net()
    before = [np.array(layer.weight) for layer in net.layers if layer.has_weight]
    ws = WeightStandardization(raw_scale=scale)
    ws.attach(net, keep=True)
    for w, k, r in zip(before, ws.layers, ws.raw):
        np.testing.assert_array_equal(r, w * scale)
        np.testing.assert_allclose(net.layers[k].weight, w, rtol=1e-12, atol=1e-14)
    net = _net()
    ws.attach(net, keep=False)
    for w, k, r in zip(before, ws.layers, ws.raw):
        # the standardised v * scale, with eps = 1e-5 against the scaled variance (naive oracle)
        rows, _, _ = naive.bn_forward((w * scale).tolist(), [1.0] * w.shape[0], [0.0] * w.shape[0])
        np.testing.assert_allclose(net.layers[k].weight.reshape(w.shape[0], -1), np.array(rows),
                                   rtol=1e-12, atol=1e-15)


def test_raw_scale_shrinks_v_not_the_optimisers_step():
    """Adam's first step moves every entry by lr (m / sqrt(v) = sign of the gradient)
    whatever its size: with v scaled by s the step on v is the same, so relative to v it
    grows by 1/s and the effective weights move further; g and b take the same steps as
    with s = 1."""
    from eventsnn.optim import Adam
    G = [np.random.default_rng(k).standard_normal(layer.weight.shape) if layer.has_weight else None
         for k, layer in enumerate(_net().layers)]
    out = {}
    for s in (1.0, 0.25):
        net = _net()
        ws = WeightStandardization(raw_scale=s)
        ws.attach(net, keep=True)
        w0 = [np.array(net.layers[k].weight) for k in ws.layers]
        p0 = [p.copy() for p in ws.params()]
        Adam(lr=1e-4).step(ws.params(), ws.grads(G))
        ws.apply()
        steps = [p - q for p, q in zip(ws.params(), p0)]
        moves = [np.abs(net.layers[k].weight - w).max() for k, w in zip(ws.layers, w0)]
        out[s] = (p0, steps, moves)
    for i, (a, b) in enumerate(zip(out[1.0][1], out[0.25][1])):
        np.testing.assert_allclose(np.abs(a), 1e-4, rtol=1e-3)   # every entry moves by lr
        np.testing.assert_allclose(np.abs(b), 1e-4, rtol=1e-3)
        if i % 3 == 0:
            np.testing.assert_allclose(out[0.25][0][i], out[1.0][0][i] * 0.25, rtol=1e-12)
    for i in range(0, len(out[1.0][0]), 3):   # v: relative steps 1 / 0.25 = 4x larger
        rel1 = np.abs(out[1.0][1][i]) / np.abs(out[1.0][0][i])
        rel4 = np.abs(out[0.25][1][i]) / np.abs(out[0.25][0][i])
        np.testing.assert_allclose(rel4 / rel1, 4.0, rtol=2e-3)
    for a, b in zip(out[1.0][2], out[0.25][2]):
        assert b > 1.5 * a          # and the effective weights move further


def test_raw_scale_validated_and_in_the_checkpoint(tmp_path):
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="raw_scale"):
            WeightStandardization(raw_scale=bad)
    with pytest.raises(TypeError, match="raw_scale"):
        WeightStandardization(raw_scale="0.5")
    X, y = _digits(32)
    t = _event_trainer(WeightStandardization(raw_scale=0.5), checkpoint=tmp_path / "c.npz")
    t.epochs = 1
    t.fit(X, y)
    with pytest.raises(ValueError, match="raw_scale"):
        _event_trainer(WeightStandardization(), checkpoint=tmp_path / "c.npz").fit(X, y, resume=True)
    _event_trainer(WeightStandardization(raw_scale=0.5), checkpoint=tmp_path / "c.npz").fit(X, y, resume=True)


def test_cli_reparam_raw_scale(capsys):
    args = ["--dataset", "digits", "--arch", "64-12-10", "--epochs", "1", "--limit", "48",
            "--batch", "16", "--no-progress", "--threads", "1"]
    assert main(args + ["--reparam-raw-scale", "0.5"]) == 2
    assert "--reparam-raw-scale needs --reparam standardize" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(args + ["--reparam", "standardize", "--reparam-raw-scale", "-1"])
    assert "--reparam-raw-scale: must be a number in (0.0, inf)" in capsys.readouterr().err
    a = main(args + ["--reparam", "standardize", "--reparam-raw-scale", "0.25"])
    out_a = json.loads(capsys.readouterr().out)
    b = main(args + ["--reparam", "standardize"])
    out_b = json.loads(capsys.readouterr().out)
    assert a == b == 0 and out_a["final_loss"] != out_b["final_loss"]
