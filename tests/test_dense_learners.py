"""Dense-mode learners: the Learner contract, options, and that they learn."""
import numpy as np
import pytest

import eventsnn as es
from eventsnn.dense import losses
from eventsnn.dense.forward import forward_layers
from eventsnn.dense.rules import activation
from eventsnn.learner import get_learner_class


def _data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    protos = rng.random((3, 12))
    X = np.clip(protos[y] + 0.15 * rng.normal(size=(n, 12)), 0, 1)
    return X, y


@pytest.mark.parametrize("rule", ["timing", "activation", "antlr"])
def test_contract_and_learning(rule):
    X, y = _data()
    net = es.Sequential(es.Dense(12, 20), es.Dense(20, 3), rng=1)
    L = get_learner_class(rule)(net, rng=0, n_steps=10)
    loss, grads, preds, stats = L.loss_and_grads(X[:16], y[:16])
    assert np.isfinite(loss) and preds.shape == (16,) and "spikes_per_sample" in stats
    assert [g.shape for g in grads] == [layer.weight.shape for layer in net.layers]
    acc0 = np.mean(L.predict(X)[0] == y)
    for _ in range(60):  # plain SGD steps on the whole set
        _, grads, _, _ = L.loss_and_grads(X, y)
        for layer, g in zip(net.layers, grads):
            layer.weight = layer.weight - 0.5 * g
    acc = np.mean(L.predict(X)[0] == y)
    assert acc >= max(acc0 + 0.3, 0.8), (acc0, acc)


def test_activation_learner_grads_are_rule_means():
    X, y = _data(8)
    net = es.Sequential(es.Dense(12, 6), es.Dense(6, 3), rng=2)
    L = get_learner_class("activation")(net, n_steps=7, surrogate="triangle")
    _, grads, _, _ = L.loss_and_grads(X, y)
    rec = forward_layers(net.layers, np.broadcast_to(X, (7,) + X.shape), L.neuron)
    _, gs, _ = losses.count_loss(rec.output, losses.count_targets(y, 3, 8, 1))
    ref = activation.backward(rec, gs, surrogate="triangle").weights
    for a, b in zip(grads, ref):
        np.testing.assert_allclose(a, b / 8)


def test_learner_options_validated():
    net = es.Sequential(es.Dense(12, 3), rng=0)
    with pytest.raises(ValueError, match="unknown"):
        get_learner_class("antlr")(net, lambda_foo=1)
    with pytest.raises(ValueError, match="loss"):
        get_learner_class("timing")(net, loss="latency")
    with pytest.raises(ValueError, match="surrogate"):
        get_learner_class("activation")(net, surrogate="relu")
    with pytest.raises(ValueError, match="X"):
        get_learner_class("activation")(net).predict(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="y"):
        get_learner_class("activation")(net).loss_and_grads(np.zeros((2, 12)), [0, 7])


def test_activation_learner_reset_option():
    X, y = _data(8)
    net = es.Sequential(es.Dense(12, 6), es.Dense(6, 3), rng=2)
    L = get_learner_class("activation")(net, neuron="antlr", reset="subtract", n_steps=7)
    assert L.neuron.reset == "subtract" and L.neuron.family == "antlr"
    loss, grads, _, _ = L.loss_and_grads(X, y)
    assert np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grads)
    with pytest.raises(ValueError, match="antlr"):
        get_learner_class("activation")(net, neuron="zhu", reset="subtract")
    with pytest.raises(ValueError, match="reset"):
        get_learner_class("activation")(net, neuron="antlr", reset="soft")
    from eventsnn.dense.neurons import AntlrNeuron
    for rule in ("timing", "antlr"):
        with pytest.raises(ValueError, match="full-reset"):
            get_learner_class(rule)(net, neuron=AntlrNeuron(reset="membrane"))
