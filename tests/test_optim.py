"""Optimisers against hand-written references of their update formulas."""
import math

import numpy as np
import pytest

from eventsnn.optim import SGD, Adam, AdamW, clip_grad_norm, grad_norm, make_optimizer


def _adam_reference(p, grads, lr, b1, b2, eps, wd=0.0, decoupled=False):
    """Kingma & Ba, Algorithm 1, scalar by scalar (plus L2 or decoupled decay)."""
    p = [float(x) for x in p]
    m = [0.0] * len(p)
    s = [0.0] * len(p)
    for t, g in enumerate(grads, start=1):
        for i in range(len(p)):
            gi = float(g[i]) + (wd * p[i] if wd and not decoupled else 0.0)
            m[i] = b1 * m[i] + (1 - b1) * gi
            s[i] = b2 * s[i] + (1 - b2) * gi * gi
            mh = m[i] / (1 - b1 ** t)
            sh = s[i] / (1 - b2 ** t)
            if decoupled:
                p[i] = p[i] - lr * wd * p[i]
            p[i] = p[i] - lr * mh / (math.sqrt(sh) + eps)
    return np.array(p)


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_adam_matches_reference(wd):
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=5)
    grads = [rng.normal(size=5) for _ in range(7)]
    p = p0.copy()
    opt = Adam(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=wd)
    for g in grads:
        opt.step([p, None], [g.copy(), None])
    np.testing.assert_allclose(p, _adam_reference(p0, grads, 0.01, 0.8, 0.99, 1e-6, wd), rtol=1e-12)


def test_adamw_matches_reference():
    rng = np.random.default_rng(1)
    p0 = rng.normal(size=(2, 3))
    grads = [rng.normal(size=(2, 3)) for _ in range(5)]
    p = p0.copy()
    opt = AdamW(lr=0.02, weight_decay=0.05)
    for g in grads:
        opt.step([p], [g])
    ref = _adam_reference(p0.ravel(), [g.ravel() for g in grads], 0.02, 0.9, 0.999, 1e-8, 0.05, True)
    np.testing.assert_allclose(p.ravel(), ref, rtol=1e-12)


def test_sgd_momentum_and_nesterov():
    g1, g2 = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    p = np.zeros(2)
    opt = SGD(lr=0.1, momentum=0.9)
    opt.step([p], [g1])
    opt.step([p], [g2])
    # b1 = g1, b2 = 0.9 g1 + g2; p = -lr (b1 + b2)
    np.testing.assert_allclose(p, -0.1 * (g1 + 0.9 * g1 + g2))
    p = np.zeros(2)
    opt = SGD(lr=0.1, momentum=0.9, nesterov=True)
    opt.step([p], [g1])
    np.testing.assert_allclose(p, -0.1 * (g1 + 0.9 * g1))
    p = np.ones(2)
    SGD(lr=0.5, weight_decay=0.2).step([p], [np.zeros(2)])
    np.testing.assert_allclose(p, 1 - 0.5 * 0.2)


def test_clip_grad_norm():
    gs = [np.array([3.0, 0.0]), None, np.array([[4.0]])]
    assert grad_norm(gs) == pytest.approx(5.0)
    before = clip_grad_norm(gs, 1.0)
    assert before == pytest.approx(5.0)
    assert grad_norm(gs) == pytest.approx(1.0)
    np.testing.assert_allclose(gs[0], [0.6, 0.0])
    small = [np.array([0.1])]
    clip_grad_norm(small, 1.0)
    assert small[0][0] == 0.1


def test_optimizer_errors():
    with pytest.raises(ValueError, match="lr"):
        Adam(lr=-1)
    with pytest.raises(ValueError, match="betas"):
        Adam(betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="momentum"):
        SGD(momentum=1.5)
    with pytest.raises(ValueError, match="optimizer"):
        make_optimizer("rmsprop")
    opt = Adam()
    with pytest.raises(ValueError, match="shape"):
        opt.step([np.zeros(2)], [np.zeros(3)])
    with pytest.raises(ValueError, match="NaN"):
        opt.step([np.zeros(2)], [np.array([np.nan, 0])])
    with pytest.raises(ValueError, match="length"):
        opt.step([np.zeros(2)], [])
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm([np.zeros(1)], 0.0)


# ---- overflow from finite input (issue 9) ----------------------------------------------------
def test_norm_and_clipping_of_huge_gradients_are_exact():
    from eventsnn.optim import clip_grad_norm, grad_norm
    grads = [np.full(4, 1e200), None, np.array([3e200, -4e200])]
    want = 1e200 * np.sqrt(4 + 9 + 16)
    assert grad_norm(grads) == pytest.approx(want, rel=1e-14)
    before = [None if g is None else g.copy() for g in grads]
    assert clip_grad_norm(grads, 1.0) == pytest.approx(want, rel=1e-14)
    assert grad_norm(grads) == pytest.approx(1.0, rel=1e-14)
    np.testing.assert_allclose(grads[2], before[2] / want, rtol=1e-14)   # scaled, not zeroed


@pytest.mark.parametrize("make", [lambda: SGD(lr=1e308), lambda: SGD(lr=1e308, momentum=0.9),
                                  lambda: Adam(lr=1e308), lambda: AdamW(lr=1e308, weight_decay=0.0)])
def test_a_step_that_would_overflow_changes_nothing(make):
    opt = make()
    p = np.array([1.7e308, 1.0])
    opt.step([p], [np.array([0.0, 0.0])])            # a first, harmless step: state exists
    before_p, before_t = p.copy(), opt.t
    before_state = {k: {n: a.copy() for n, a in s.items()} for k, s in opt.state.items()}
    with pytest.raises(ValueError, match="non-finite"):
        opt.step([p], [np.array([-1.0, 1.0])])      # moves p[0] past 1.8e308
    np.testing.assert_array_equal(p, before_p)
    assert opt.t == before_t
    assert opt.state.keys() == before_state.keys()
    for k in before_state:
        for n in before_state[k]:
            np.testing.assert_array_equal(opt.state[k][n], before_state[k][n])


def test_nesterov_must_be_a_bool():
    with pytest.raises(TypeError, match="nesterov"):
        SGD(lr=0.1, momentum=0.9, nesterov="no")
