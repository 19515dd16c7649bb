"""Dense-mode losses (eventsnn/dense/losses.py) against the loop references in naive_dense.py
(ANTLR Table 1, Zhu et al.'s count loss) and finite differences."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from eventsnn.dense import losses

from . import naive_dense as nd
from .strategies import examples


def _close(a, b, tol=1e-10):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, atol=tol * max(1.0, np.abs(b).max(initial=0.0)), rtol=1e-9)


@st.composite
def rasters(draw, graded=True):
    """(S, rng): an output raster (T, B, n), binary or (sometimes) graded, with silent,
    single- and multiple-spike neurons."""
    T = draw(st.sampled_from([8, 5, 12, 1, 2, 3]))
    B = draw(st.sampled_from([2, 3, 1]))
    n = draw(st.sampled_from([3, 4, 1, 2]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    p = draw(st.sampled_from([0.3, 0.15, 0.6, 0.0, 1.0]))
    S = (rng.random((T, B, n)) < p).astype(float)
    if graded and draw(st.booleans()):
        S *= rng.uniform(0.2, 2.0, S.shape)
    return S, rng


@settings(max_examples=examples(60), deadline=None)
@given(rasters())
def test_count_loss_equals_naive(case):
    S, rng = case
    nt = rng.integers(0, 4, S.shape[1:]).astype(float)
    for a, b in zip(losses.count_loss(S, nt), nd.count_loss(S, nt)):
        _close(a, b)


@settings(max_examples=examples(60), deadline=None)
@given(rasters(), st.sampled_from([0.9, 0.5, 0.8, 0.99]))
def test_spike_train_loss_equals_naive(case, alpha):
    S, rng = case
    tgt = (rng.random(S.shape) < 0.3).astype(float)
    for a, b in zip(losses.spike_train_loss(S, tgt, alpha), nd.spike_train_loss(S, tgt, alpha)):
        _close(a, b)


@settings(max_examples=examples(60), deadline=None)
@given(rasters(), st.sampled_from([1 / 6, 0.5, 1.0, 2.0]), st.sampled_from([1.0, 0.0, 0.5]))
def test_latency_loss_equals_naive(case, beta, no_spike):
    S, rng = case
    y = rng.integers(0, S.shape[2], S.shape[1])
    for a, b in zip(losses.latency_loss(S, y, beta=beta, no_spike=no_spike),
                    nd.latency_loss(S, y, beta, no_spike)):
        _close(a, b)


@settings(max_examples=examples(60), deadline=None)
@given(rasters(), st.sampled_from([(5, 0), (2, 1), (1, 3), (0, 0)]))
def test_count_time_grads_equals_naive(case, targets):
    S, rng = case
    y = rng.integers(0, S.shape[2], S.shape[1])
    for a, b in zip(losses.count_time_grads(S, y, *targets), nd.count_time_grads(S, y, *targets)):
        _close(a, b)


@settings(max_examples=examples(60), deadline=None)
@given(rasters(graded=False))
def test_supervisory_spikes_equals_naive(case):
    S, rng = case
    B = S.shape[1]
    y = rng.integers(0, S.shape[2], B)
    silence = rng.random(B) < 0.7  # most label neurons silent, so that spikes get added
    S[:, np.arange(B)[silence], y[silence]] = 0.0
    # increments on a coarse grid so that values equal to the threshold occur
    du = rng.choice([-0.1, 0.0, 0.01, 0.05, 0.06, 0.3], size=S.shape)
    for mode in ("increment", "last"):
        for min_inc in (0.05, 0.0, 0.3):
            out, added = losses.supervisory_spikes(S, du, y, min_increment=min_inc, mode=mode)
            out2, added2 = nd.supervisory_spikes(S, du, y, min_inc, mode)
            np.testing.assert_array_equal(out, out2)
            np.testing.assert_array_equal(added, added2)


# ---------------------------------------------------------------------------------------------
# finite differences
# ---------------------------------------------------------------------------------------------
@settings(max_examples=examples(30), deadline=None)
@given(rasters())
def test_count_loss_grad_s_is_derivative(case):
    """dL/dS is the exact derivative of the count loss in a real-valued S."""
    S, rng = case
    nt = rng.integers(0, 4, S.shape[1:]).astype(float)
    _, gs, _ = losses.count_loss(S, nt)
    for _ in range(3):
        idx = tuple(rng.integers(0, m) for m in S.shape)
        Sp, Sm = S.copy(), S.copy()
        Sp[idx] += 1e-6
        Sm[idx] -= 1e-6
        fd = (losses.count_loss(Sp, nt)[0].sum() - losses.count_loss(Sm, nt)[0].sum()) / 2e-6
        assert gs[idx] == pytest.approx(fd, rel=1e-6, abs=1e-7)


@settings(max_examples=examples(30), deadline=None)
@given(rasters(), st.sampled_from([0.9, 0.5, 0.8]))
def test_spike_train_grad_s_is_derivative(case, alpha):
    """dL/dS is the exact derivative of the spike-train loss in a real-valued S."""
    S, rng = case
    tgt = (rng.random(S.shape) < 0.3).astype(float)
    _, gs, _ = losses.spike_train_loss(S, tgt, alpha)
    for _ in range(3):
        idx = tuple(rng.integers(0, m) for m in S.shape)
        Sp, Sm = S.copy(), S.copy()
        Sp[idx] += 1e-6
        Sm[idx] -= 1e-6
        L = lambda X: nd.spike_train_loss(X, tgt, alpha)[0].sum()  # noqa: E731
        assert gs[idx] == pytest.approx((L(Sp) - L(Sm)) / 2e-6, rel=1e-6, abs=1e-7)


def _train_loss_in_window(S, tgt, alpha):
    """sum_o sum_{tau = 1..T} d_o[tau]^2 of rasters padded with one step before (index 0 =
    step -1) and one after (index T + 1 = step T) the window."""
    d = np.zeros(S.shape[1:])
    total = 0.0
    for tau in range(S.shape[0] - 1):
        d = alpha * d + S[tau] - tgt[tau]
        if tau >= 1:
            total += float((d ** 2).sum())
    return total


@settings(max_examples=examples(40), deadline=None)
@given(rasters(graded=False), st.sampled_from([0.9, 0.5, 0.8]))
def test_spike_train_grad_t_is_symmetric_shift_derivative(case, alpha):
    """The library's dL/dt (the central difference kappa*) is the mean of the two one-sided
    derivatives of the loss when the spike is moved by a fraction of a step, linearly split
    between its step and the next (later) or the previous (earlier) one; a spike moved out
    of the window (before step 0 or after step T-1) still acts (resp. no longer acts) on
    the window through the causal kernel."""
    S, rng = case
    T = S.shape[0]
    tgt = (rng.random(S.shape) < 0.3).astype(float)
    _, _, gt = losses.spike_train_loss(S, tgt, alpha)
    pad = np.zeros((1,) + S.shape[1:])
    Sp, tp = np.concatenate([pad, S, pad]), np.concatenate([pad, tgt, pad])
    spikes = list(zip(*np.nonzero(S)))
    for k in rng.permutation(len(spikes))[:4]:
        t, b, o = spikes[k]
        grads = []
        for nb in (t + 2, t):  # later / earlier neighbour, padded index
            def L(delta):
                X = Sp.copy()
                X[t + 1, b, o] -= delta
                X[nb, b, o] += delta
                return _train_loss_in_window(X, tp, alpha)
            grads.append((L(1e-5) - L(-1e-5)) / 2e-5)  # exact for a quadratic
        fd = 0.5 * (grads[0] - grads[1])  # d/dt: later is +dt, earlier is -dt
        assert gt[t, b, o] == pytest.approx(fd, rel=1e-6, abs=1e-7), (t, b, o, T)
    assert not gt[S == 0].any()


@settings(max_examples=examples(40), deadline=None)
@given(rasters(), st.sampled_from([1 / 6, 0.5, 1.0]))
def test_latency_grad_t_is_derivative_of_first_spike_times(case, beta):
    """dL/dt at an output's first spike is the derivative of -log softmax(-beta t_first)_label
    with respect to that (real) first-spike time; later spikes get no gradient."""
    S, rng = case
    T, B, n = S.shape
    y = rng.integers(0, n, B)
    _, _, gt = losses.latency_loss(S, y, beta=beta)
    tf = nd.first_spike_times(S)
    for b in range(B):
        for o in range(n):
            if tf[b, o] == T:
                assert not gt[:, b, o].any()
                continue
            tpl, tmi = tf.copy(), tf.copy()
            tpl[b, o] += 1e-6
            tmi[b, o] -= 1e-6
            fd = (nd.latency_from_times(tpl, y, beta)[0][b] - nd.latency_from_times(tmi, y, beta)[0][b]) / 2e-6
            t0 = int(tf[b, o])
            assert gt[t0, b, o] == pytest.approx(fd, rel=1e-6, abs=1e-8)
            assert not gt[t0 + 1:, b, o].any()
