"""Dense-mode losses on output spike rasters S (T, B, n), with dL/dS and dL/dt (ANTLR Table 1).

Every loss returns ``(loss, grad_s, grad_t)``: ``loss`` (B,) per sample, ``grad_s`` =
dL/dS[t] (T, B, n) for activation-based rules, ``grad_t`` = dL/dt at spikes (T, B, n), zero
where there is no spike, for timing-based rules.

- :func:`count_loss`: L = sum_o (N_o - n_o)^2 / T, dL/dS = 2 (N_o - n_o) / T, dL/dt = 0.
- :func:`spike_train_loss`: d = kappa * S - kappa * S_target (causal filter kappa[k] =
  alpha^k), L = sum d^2, dL/dS[t] = 2 sum_tau kappa[tau - t] d[tau],
  dL/dt = -2 sum_tau kappa*[tau - t] d[tau] at spikes, kappa* the central difference
  (kappa[k+1] - kappa[k-1]) / 2 (kappa[-1] = 0). ``convention="antlr"``: the authors' code
  (kappa truncated, d kept after the window, L divided by T).
- :func:`latency_loss`: p = softmax(-beta t_first) (silent neurons: t_first = T), L = -log
  p_label, dL/dt = -beta (p_o - y_o) at each output's first spike only (beta = 1/6); plus
  ``no_spike`` times ANTLR's term (min(N_label, 1) - 1)^2 for a silent label neuron, whose
  dL/dS is -2 ``no_spike`` (the paper's derivative) or -``no_spike`` (the code) at every step.
- :func:`count_time_grads`: Zhu et al.'s count loss as spike-time gradients.
- :func:`supervisory_spikes`: Zhu et al.'s supervisory spike of the label neuron.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import _validate as v
from typing import Tuple

from numpy.typing import ArrayLike


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


def count_targets(labels: ArrayLike, n_classes: int, n_true: float, n_false: float) -> np.ndarray:
    """Target counts (B, n_classes): n_true for the label neuron, n_false elsewhere."""
    y = v.int_array("labels", labels)
    tgt = np.full((len(y), n_classes), float(n_false))
    tgt[np.arange(len(y)), y] = float(n_true)
    return tgt


def count_loss(S: np.ndarray, n_target: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def filter_trace(S: np.ndarray, alpha: float) -> np.ndarray:
    """(kappa * S)[t] = sum_{t' <= t} alpha^(t - t') S[t'] along axis 0."""
    out = np.empty_like(S)
    acc = np.zeros(S.shape[1:])
    for t in range(S.shape[0]):
        acc = alpha * acc + S[t]
        out[t] = acc
    return out


#: how :func:`spike_train_loss` bounds the filtered difference (see its docstring)
SPIKE_TRAIN_CONVENTIONS = ("window", "antlr")
#: ANTLR code: steps the filtered difference is kept after the window (``alpha_extend``)
ANTLR_TAIL = 200
#: ANTLR code: kernel entries at or below this are dropped, and at most this many kept
ANTLR_KERNEL_MIN, ANTLR_KERNEL_MAX = 1e-6, 1000


def antlr_kernel(alpha: float, n_steps: int) -> np.ndarray:
    """The ANTLR code's filter: alpha^k for k < min(n_steps, 1000), entries <= 1e-6 dropped."""
    k = alpha ** np.arange(min(int(n_steps), ANTLR_KERNEL_MAX), dtype=np.float64)
    return k[k > ANTLR_KERNEL_MIN]


def spike_train_loss(S: np.ndarray, target: np.ndarray, alpha: float = 0.9,
                     convention: str = "window") -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spike-train loss (ANTLR Table 1) against target rasters ``target`` (T, B, n);
    kappa[k] = alpha^k (alpha = exp(-1/tau) for a filter time constant tau in steps).

    ``convention``:

    - ``"window"`` (default): d[t] = sum_{t' <= t} alpha^(t - t') (S - S_target)[t'] for
      t < T, L = sum_t d^2 (the paper's sum over the simulated window).
    - ``"antlr"``: the authors' code (``antlr.py``, ``_init_kernels`` / ``calc_loss``):
      kappa holds the K = min(T, 1000) entries alpha^k > 1e-6, d is the full convolution,
      kept for steps t < T + min(K - 1, 200) (the difference runs on after the window),
      and L = sum_t d^2 / T. Both gradients are the exact derivatives of that L (the code's
      dL/dS) and the central-difference timing gradient on the truncated kernel (the code's
      ``kernel_prime``).
    """
    S = _spikes(S)
    tgt = v.float_array("target", target)
    if tgt.shape != S.shape:
        raise ValueError(f"target must have the shape of spikes {S.shape}, got {tgt.shape}")
    alpha = _alpha(alpha)
    v.choice("convention", convention, SPIKE_TRAIN_CONVENTIONS)
    if convention == "antlr":
        return _spike_train_loss_antlr(S, tgt, alpha)
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


def _spike_train_loss_antlr(S, tgt, alpha):
    T = S.shape[0]
    kern = antlr_kernel(alpha, T)
    K = len(kern)
    n_d = T + min(K - 1, ANTLR_TAIL)
    e = S - tgt
    d = np.zeros((n_d,) + S.shape[1:])
    for k in range(K):  # d[t] = sum_k kern[k] e[t - k]
        d[k:min(n_d, k + T)] += kern[k] * e[:min(T, n_d - k)]
    loss = (d ** 2).sum(axis=(0, 2)) / T
    # dL/dS[t] = 2/T sum_k kern[k] d[t + k]
    grad_s = np.zeros_like(S)
    for k in range(K):
        m = min(T, n_d - k)
        grad_s[:m] += kern[k] * d[k:k + m]
    grad_s *= 2.0 / T
    # code's kernel_prime kp[j] = (kern[j] - kern[j - 2]) / 2, j = 0..K+1 (zero outside);
    # dL/dt[t] = -2/T sum_{m=-1}^{K} kp[m + 1] d[t + m] at spikes
    kp = np.zeros(K + 2)
    kp[:K] += kern / 2.0
    kp[2:] -= kern / 2.0
    acc = np.zeros_like(S)
    for m in range(-1, K + 1):
        lo = max(0, -m)
        hi = min(T, n_d - m)
        if hi > lo:
            acc[lo:hi] += kp[m + 1] * d[lo + m:hi + m]
    grad_t = -2.0 / T * acc * (S != 0)
    return loss, grad_s, grad_t


#: the no-spike term's dL/dS: "paper" = -2 lambda (derivative of (min(N, 1) - 1)^2), "code" = -lambda
NO_SPIKE_GRADS = ("paper", "code")


def latency_loss(S: np.ndarray, labels: ArrayLike, beta: float = 1.0 / 6.0,
                 no_spike: float = 1.0, no_spike_grad: str = "paper"
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Latency loss (ANTLR Table 1) with the no-spike term for a silent label neuron.

    ``no_spike`` weighs the term lambda (min(N_label, 1) - 1)^2 (the loss value is lambda for
    a silent label neuron either way); ``no_spike_grad`` sets its dL/dS at every step:
    ``"paper"`` (default) -2 lambda, the derivative of the square; ``"code"`` -lambda, what
    the authors' ``backward_custom`` scatters (``-L_nospike``)."""
    S = _spikes(S)
    T, B, n = S.shape
    y = _labels(labels, B, n)
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not beta > 0 or not np.isfinite(beta):
        raise ValueError(f"beta must be a finite number > 0, got {beta!r}")
    no_spike = v.positive_float("no_spike", no_spike, allow_zero=True)
    v.choice("no_spike_grad", no_spike_grad, NO_SPIKE_GRADS)
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
    grad_s[:, np.arange(B)[silent], y[silent]] = (-2.0 if no_spike_grad == "paper" else -1.0) * no_spike
    return loss, grad_s, grad_t


def count_time_grads(S: np.ndarray, labels: ArrayLike, n_true: float,
                     n_false: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zhu et al.'s count loss as spike-time gradients (reference code).

    Every spike of output o gets g_o = (n_o - N_o) / T, one-sided: the label neuron's
    target ``n_true`` is a floor (g = 0 when N >= n_true), the others' ``n_false`` a ceiling
    (g = 0 when N <= n_false). Returns (loss (B,), g (B, n), grad_t (T, B, n)); the loss is
    sum_o (n_o - N_o)^2 / (2 T) over the neurons whose one-sided target is violated (the
    code's 1/2 sum over the T steps of ((N - n)/T)^2), so that -dL/dN_o = g_o.
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
    loss = 0.5 * (g ** 2).sum(axis=1) * T
    return loss, g, g[None, :, :] * (S != 0)


#: supervisory-spike rules of :func:`supervisory_spikes`
SUPERVISORY_MODES = ("reference", "end", "increment", "last")


def supervisory_spikes(S: np.ndarray, du: np.ndarray, labels: ArrayLike,
                       min_increment: float = 0.05,
                       mode: str = "increment") -> Tuple[np.ndarray, np.ndarray]:
    """Output spikes with Zhu et al.'s supervisory spike of the label neuron.

    ``mode``:

    - ``"reference"``: the authors' code (``layers/linear.py``, ``LinearFunc.forward``), in
      *every* sample: at i = the last step whose membrane increment du > ``min_increment``
      (step 0 when no step qualifies) the label neuron's output is *set* to [du[i] != 0]
      (so a step with du = 0 ends up without a spike, even a real one).
    - ``"end"``: the paper's wording ("force it to fire at the end of the simulation"): a
      spike at the last step in every sample.
    - ``"increment"`` (default): only for a silent label neuron, at the last step with
      du > min_increment; nothing when no step qualifies.
    - ``"last"``: only for a silent label neuron, at the last step.

    Returns (spikes, added) with ``added`` (B,) bool: whether the sample's output changed."""
    S = _spikes(S)
    T, B, n = S.shape
    y = _labels(labels, B, n)
    v.choice("mode", mode, SUPERVISORY_MODES)
    du = v.float_array("du", du)
    if du.shape != S.shape:
        raise ValueError(f"du must have the shape of S {S.shape}, got {du.shape}")
    out = S.copy()
    for b in range(B):
        if mode == "end":
            out[T - 1, b, y[b]] = 1.0
            continue
        if mode == "reference":
            ok = np.nonzero(du[:, b, y[b]] > min_increment)[0]
            t = ok[-1] if len(ok) else 0
            out[t, b, y[b]] = float(du[t, b, y[b]] != 0)
            continue
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
    added = np.any(out != S, axis=(0, 2))
    return out, added
