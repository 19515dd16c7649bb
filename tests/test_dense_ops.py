"""eventsnn.dense.ops against naive loops and finite differences."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import eventsnn as es
from eventsnn.dense import ops

from . import naive_dense as nd


def _conv_net(C, H, W, Co, k, s, p, pool=None, rng=0):
    layers = [es.Conv2d((C, H, W), Co, k, stride=s, padding=p)]
    if pool is not None:
        layers.append(pool)
    layers.append(es.Flatten())
    conv = layers[0]
    conv.bind((C, H, W))
    n = int(np.prod(conv.out_shape if pool is None else pool.bind(conv.out_shape)))
    return es.Sequential(*layers, es.Dense(n, 2), rng=rng)


@st.composite
def conv_case(draw):
    C = draw(st.integers(1, 2))
    H = draw(st.integers(3, 6))
    W = draw(st.integers(3, 6))
    k = draw(st.integers(1, 3))
    p = draw(st.integers(0, 1))
    s = draw(st.integers(1, 2))
    Co = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 1000))
    return C, H, W, Co, k, s, p, seed


@settings(max_examples=25, deadline=None)
@given(conv_case())
def test_conv_ops_equal_naive(case):
    C, H, W, Co, k, s, p, seed = case
    net = _conv_net(C, H, W, Co, k, s, p, rng=seed)
    conv = net.layers[0]
    rng = np.random.default_rng(seed)
    x = (rng.random((2, 3, conv.n_in)) < 0.5) * rng.random((2, 3, conv.n_in))
    g = rng.normal(size=(2, 3, conv.n_out))
    np.testing.assert_allclose(ops.forward(conv, x), nd.layer_forward(conv, x), atol=1e-12)
    np.testing.assert_allclose(ops.backward_input(conv, g, x), nd.layer_backward_input(conv, g, x), atol=1e-12)
    np.testing.assert_allclose(ops.grad_weight(conv, x, g), nd.layer_grad_weight(conv, x, g), atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(0, 1000))
def test_dense_ops_equal_naive(n_in, n_out, seed):
    net = es.Sequential(es.Dense(n_in, n_out), rng=seed)
    layer = net.layers[0]
    rng = np.random.default_rng(seed)
    x = rng.random((3, 2, n_in))
    g = rng.normal(size=(3, 2, n_out))
    np.testing.assert_allclose(ops.forward(layer, x), nd.layer_forward(layer, x), atol=1e-12)
    np.testing.assert_allclose(ops.backward_input(layer, g, x), nd.layer_backward_input(layer, g, x), atol=1e-12)
    np.testing.assert_allclose(ops.grad_weight(layer, x, g), nd.layer_grad_weight(layer, x, g), atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 2), st.integers(2, 7), st.integers(2, 7), st.integers(1, 3),
       st.booleans(), st.sampled_from([1.0, 1.1 * 4, 0.5]), st.integers(0, 1000))
def test_pool_ops_equal_naive(C, H, W, k, is_max, pw, seed):
    k = min(k, H, W)
    pool = es.MaxPool2d(k) if is_max else es.AvgPool2d(k)
    pool.bind((C, H, W))
    rng = np.random.default_rng(seed)
    # spikes (ties!) mixed with graded values
    x = np.where(rng.random((2, 3, pool.n_in)) < 0.5, 1.0, rng.random((2, 3, pool.n_in)))
    g = rng.normal(size=(2, 3, pool.n_out))
    np.testing.assert_allclose(ops.forward(pool, x, pool_weight=pw), nd.layer_forward(pool, x, pw), atol=1e-12)
    np.testing.assert_allclose(ops.backward_input(pool, g, x, pool_weight=pw),
                               nd.layer_backward_input(pool, g, x, pw), atol=1e-12)


def test_finite_differences():
    rng = np.random.default_rng(3)
    net = es.Sequential(es.Conv2d((2, 5, 5), 3, 3, padding=1), es.AvgPool2d(2), es.Flatten(),
                        es.Dense(12, 4), rng=1)
    conv, pool, _, dense = net.layers
    x = rng.random((2, 2, conv.n_in))
    r = rng.normal(size=(2, 2, dense.n_out))

    def loss(x_, wc=None):
        if wc is not None:
            conv.weight = wc
        h = ops.forward(conv, x_)
        h2 = ops.forward(pool, h, pool_weight=1.3)
        return float(np.sum(r * np.tanh(ops.forward(dense, h2))))

    h = ops.forward(conv, x)
    h2 = ops.forward(pool, h, pool_weight=1.3)
    z = ops.forward(dense, h2)
    gz = r * (1 - np.tanh(z) ** 2)
    gd = ops.grad_weight(dense, h2, gz)
    gh2 = ops.backward_input(dense, gz, h2)
    gh = ops.backward_input(pool, gh2, h, pool_weight=1.3)
    gx = ops.backward_input(conv, gh, x)
    gw = ops.grad_weight(conv, x, gh)
    eps = 1e-6
    w0 = conv.weight.copy()
    for idx in [(0, 0, 0, 0), (2, 1, 1, 2), (1, 0, 2, 1)]:
        wp, wm = w0.copy(), w0.copy()
        wp[idx] += eps
        wm[idx] -= eps
        fd = (loss(x, wp) - loss(x, wm)) / (2 * eps)
        assert abs(fd - gw[idx]) < 1e-6 * max(1, abs(fd))
    conv.weight = w0
    for idx in [(0, 0, 3), (1, 1, 20), (0, 1, 49)]:
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        fd = (loss(xp) - loss(xm)) / (2 * eps)
        assert abs(fd - gx[idx]) < 1e-6 * max(1, abs(fd))
    d0 = dense.weight.copy()
    for idx in [(0, 0), (3, 11)]:
        dp = d0.copy()
        dp[idx] += eps
        dense.weight = dp
        lp = loss(x)
        dp[idx] -= 2 * eps
        dense.weight = dp
        lm = loss(x)
        assert abs((lp - lm) / (2 * eps) - gd[idx]) < 1e-6
    dense.weight = d0


def test_shapes_and_errors():
    net = es.Sequential(es.Dense(4, 3), rng=0)
    layer = net.layers[0]
    assert ops.forward(layer, np.ones((5, 4))).shape == (5, 3)
    with pytest.raises(ValueError, match="x"):
        ops.forward(layer, np.ones((2, 2, 5)))
    with pytest.raises(TypeError, match="layer"):
        ops.forward("dense", np.ones((2, 2, 4)))
    with pytest.raises(ValueError, match="grad_out"):
        ops.grad_weight(layer, np.ones((2, 2, 4)), np.ones((2, 3, 3)))
    pool = es.MaxPool2d(2)
    pool.bind((1, 4, 4))
    with pytest.raises(ValueError, match="x"):
        ops.backward_input(pool, np.ones((1, 1, 4)))
    with pytest.raises(ValueError, match="pool_weight"):
        ops.forward(pool, np.ones((1, 1, 16)), pool_weight=float("nan"))
