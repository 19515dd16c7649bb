"""Dense-mode losses on output spike rasters S (T, B, n), with dL/dS and dL/dt (ANTLR Table 1).

Every loss returns ``(loss, grad_s, grad_t)``: ``loss`` (B,) per sample, ``grad_s`` =
dL/dS[t] (T, B, n) for activation-based rules, ``grad_t`` = dL/dt at spikes (T, B, n), zero
where there is no spike, for timing-based rules.

- :func:`count_loss`: L = sum_o (N_o - n_o)^2 / T, dL/dS = 2 (N_o - n_o) / T, dL/dt = 0.
- :func:`spike_train_loss`: d = kappa * S - kappa * S_target (causal filter kappa[k] =
  alpha^k), L = sum d^2, dL/dS[t] = 2 sum_tau kappa[tau - t] d[tau],
  dL/dt = -2 sum_tau kappa*[tau - t] d[tau] at spikes, kappa* the central difference
  (kappa[k+1] - kappa[k-1]) / 2 (kappa[-1] = 0).
- :func:`latency_loss`: p = softmax(-beta t_first) (silent neurons: t_first = T), L = -log
  p_label, dL/dt = -beta (p_o - y_o) at each output's first spike only (beta = 1/6); plus
  ``no_spike`` times ANTLR's term (min(N_label, 1) - 1)^2 for a silent label neuron, whose
  dL/dS = -2 ``no_spike`` at every step.
- :func:`count_time_grads`: Zhu et al.'s count loss as spike-time gradients.
"""
import numbers

import numpy as np

from .. import _validate as v


def _spikes(S):
    arr = v.float_array("spikes", S)
    if arr.ndim != 3:
        raise ValueError(f"spikes must be (T, B, n), got shape {arr.shape}")
    return arr


def _labels(labels, B, n):
    y = v.int_array("labels", labels)
    if y.shape != (B,):
        raise ValueError(f"labels must have shape ({B},), got {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= n):
        raise ValueError(f"labels must be in [0, {n}), got values in [{y.min()}, {y.max()}]")
    return y


def count_targets(labels, n_classes, n_true, n_false):
    """Target counts (B, n_classes): n_true for the label neuron, n_false elsewhere."""
    y = v.int_array("labels", labels)
    tgt = np.full((len(y), n_classes), float(n_false))
    tgt[np.arange(len(y)), y] = float(n_true)
    return tgt


def count_loss(S, n_target):
    """Count loss (ANTLR Table 1). n_target: (B, n) target counts."""
    S = _spikes(S)
    T = S.shape[0]
    tgt = v.float_array("n_target", n_target)
    if tgt.shape != S.shape[1:]:
        raise ValueError(f"n_target must have shape {S.shape[1:]}, got {tgt.shape}")
    err = S.sum(axis=0) - tgt
    loss = (err ** 2).sum(axis=1) / T
    grad_s = np.broadcast_to(2.0 * err / T, S.shape).copy()
    return loss, grad_s, np.zeros_like(S)


def _alpha(alpha):
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return float(alpha)


def filter_trace(S, alpha):
    """(kappa * S)[t] = sum_{t' <= t} alpha^(t - t') S[t'] along axis 0."""
    out = np.empty_like(S)
    acc = np.zeros(S.shape[1:])
    for t in range(S.shape[0]):
        acc = alpha * acc + S[t]
        out[t] = acc
    return out


def spike_train_loss(S, target, alpha=0.9):
    """Spike-train loss (ANTLR Table 1) against target rasters ``target`` (T, B, n);
    kappa[k] = alpha^k (alpha = exp(-1/tau) for a filter time constant tau in steps)."""
    S = _spikes(S)
    tgt = v.float_array("target", target)
    if tgt.shape != S.shape:
        raise ValueError(f"target must have the shape of spikes {S.shape}, got {tgt.shape}")
    alpha = _alpha(alpha)
    T = S.shape[0]
    d = filter_trace(S, alpha) - filter_trace(tgt, alpha)
    loss = (d ** 2).sum(axis=(0, 2))
    # anti-causal filters: A[t] = sum_{tau >= t} alpha^(tau - t) d[tau]
    A = np.empty_like(d)
    acc = np.zeros(d.shape[1:])
    for t in range(T - 1, -1, -1):
        acc = alpha * acc + d[t]
        A[t] = acc
    grad_s = 2.0 * A
    # sum_tau kappa*[tau - t] d[tau] with kappa*[-1] = 1/2, kappa*[0] = alpha/2,
    # kappa*[k>=1] = (alpha^(k+1) - alpha^(k-1))/2, 0 below -1
    zero = np.zeros((1,) + d.shape[1:])
    A_next = np.concatenate([A[1:], zero])  # sum_{k>=1} alpha^(k-1) d[t+k]
    d_prev = np.concatenate([zero, d[:-1]])
    kstar = 0.5 * d_prev + 0.5 * alpha * d + 0.5 * (alpha ** 2 - 1.0) * A_next
    grad_t = -2.0 * kstar * (S != 0)
    return loss, grad_s, grad_t


def latency_loss(S, labels, beta=1.0 / 6.0, no_spike=1.0):
    """Latency loss (ANTLR Table 1) with the no-spike term for a silent label neuron."""
    S = _spikes(S)
    T, B, n = S.shape
    y = _labels(labels, B, n)
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not beta > 0 or not np.isfinite(beta):
        raise ValueError(f"beta must be a finite number > 0, got {beta!r}")
    no_spike = v.positive_float("no_spike", no_spike, allow_zero=True)
    fired = S != 0
    any_spike = fired.any(axis=0)
    first = np.where(any_spike, fired.argmax(axis=0), T).astype(np.float64)
    z = -beta * first
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    onehot = np.zeros((B, n))
    onehot[np.arange(B), y] = 1.0
    loss = -np.log(np.maximum(p[np.arange(B), y], 1e-300))
    g_first = -beta * (p - onehot)
    grad_t = np.zeros_like(S)
    bi, oi = np.nonzero(any_spike)
    grad_t[first[bi, oi].astype(np.int64), bi, oi] = g_first[bi, oi]
    grad_s = np.zeros_like(S)
    silent = ~any_spike[np.arange(B), y]
    loss = loss + no_spike * silent
    grad_s[:, np.arange(B)[silent], y[silent]] = -2.0 * no_spike
    return loss, grad_s, grad_t


def count_time_grads(S, labels, n_true, n_false):
    """Zhu et al.'s count loss as spike-time gradients (reference code).

    Every spike of output o gets g_o = (n_o - N_o) / T, one-sided: the label neuron's
    target ``n_true`` is a floor (g = 0 when N >= n_true), the others' ``n_false`` a ceiling
    (g = 0 when N <= n_false). Returns (loss (B,), g (B, n), grad_t (T, B, n)); the loss is
    sum_o (n_o - N_o)^2 / T over the neurons whose one-sided target is violated.
    """
    S = _spikes(S)
    T, B, n = S.shape
    y = _labels(labels, B, n)
    N = (S != 0).sum(axis=0).astype(np.float64)
    tgt = count_targets(y, n, n_true, n_false)
    g = (tgt - N) / T
    is_label = np.zeros((B, n), dtype=bool)
    is_label[np.arange(B), y] = True
    g = np.where(is_label, np.maximum(g, 0.0), np.minimum(g, 0.0))
    loss = (g ** 2).sum(axis=1) * T
    return loss, g, g[None, :, :] * (S != 0)


def supervisory_spikes(S, du, labels, min_increment=0.05, mode="increment"):
    """Output spikes with the supervisory spike added for silent label neurons.

    mode "increment" (default): at the last step whose membrane increment du > min_increment
    (no spike added when there is none); "last": at the last step. Returns (spikes, added)
    with ``added`` (B,) bool."""
    S = _spikes(S)
    T, B, n = S.shape
    y = _labels(labels, B, n)
    if mode not in ("increment", "last"):
        raise ValueError(f"mode must be 'increment' or 'last', got {mode!r}")
    out = S.copy()
    added = np.zeros(B, dtype=bool)
    for b in range(B):
        if S[:, b, y[b]].any():
            continue
        if mode == "last":
            t = T - 1
        else:
            ok = np.nonzero(du[:, b, y[b]] > min_increment)[0]
            if len(ok) == 0:
                continue
            t = ok[-1]
        out[t, b, y[b]] = 1.0
        added[b] = True
    return out, added
