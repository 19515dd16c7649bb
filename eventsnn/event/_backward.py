"""numba kernels of the event-driven timing backward pass (Zhu et al. 2022, Eq. 12-14).

One neuron layer (Dense or Conv2d) at a time, given its recorded input events (layer l-1)
and output spikes (layer l) and dL/dt of every output spike. For output spike k of neuron
i, the *window* is the set of input events m reaching i with

    r_k < t_m <= t_k,   r_k = t_{k-1} + t_ref   (-inf for the first spike of i)

(the inputs that the full-reset forward counted for spike k). With W_k = the window,

    S_k   = sum_{m in W_k} w_im v_m h(t_k - t_m)                 (assignment normaliser)
    D_k   = sum_{m in W_k} w_im v_m eps'(t_k - t_m)              (true slope du_i/dt at t_k)
    dL/dt_m  += dL/dt_k * w_im v_m h(t_k - t_m) / S_k            (Eq. 12-13)
    dL/dw_ij += dL/dt_k * (-1 / D_k) * sum_{m in W_k from j} v_m eps(t_k - t_m)   (Eq. 14)

Two sweeps over the input events, each in reverse time and each touching every
(input event, target neuron) pair once: the forward engine's synaptic events, so the cost
is proportional to the forward's. Sweep 1 accumulates S_k and D_k; sweep 2 assigns the
shares and the weight gradient. A per-neuron pointer tracks the "next spike" k of each
target as the sweep moves back in time.

The kernels trust their inputs (validated in ``eventsnn.event.backward``). No fastmath.
"""
import math

import numpy as np
from numba import njit

#: kernel codes of h
KERNEL_EXP = 0
KERNEL_DEPSILON = 1


@njit(cache=True, nogil=True)
def _spikes_by_neuron(out_i, n_out):
    """Group spike indices by neuron, each group in time order (out is time-sorted).

    Returns (start, order): neuron i's spikes are order[start[i]:start[i+1]]."""
    n = out_i.size
    start = np.zeros(n_out + 1, np.int64)
    for k in range(n):
        start[out_i[k] + 1] += 1
    for i in range(n_out):
        start[i + 1] += start[i]
    fill = start[:-1].copy()
    order = np.empty(n, np.int64)
    for k in range(n):
        i = out_i[k]
        order[fill[i]] = k
        fill[i] += 1
    return start, order


@njit(cache=True, nogil=True)
def _window_starts(out_t, out_i, n_out, t_ref, start, order):
    """r_k for every output spike: previous spike of the same neuron + t_ref, or -inf."""
    r = np.empty(out_t.size)
    for i in range(n_out):
        prev = -math.inf
        for p in range(start[i], start[i + 1]):
            k = order[p]
            r[k] = prev
            prev = out_t[k] + t_ref
    return r


@njit(cache=True, nogil=True)
def _h(s, kernel, tau_grad, c, tau_m, tau_s):
    if kernel == KERNEL_EXP:
        return math.exp(-s / tau_grad)
    return c * (math.exp(-s / tau_s) / tau_s - math.exp(-s / tau_m) / tau_m)


@njit(cache=True, nogil=True)
def layer_backward(in_t, in_i, in_v, out_t, out_i, g_out, n_in, n_out, is_dense, indptr,
                   targets, widx, w_flat, tau_m, tau_s, t_ref, kernel, tau_grad,
                   drop_nonpositive, clamp, clamp_lo, clamp_hi, factor):
    """Timing backward through one Dense or Conv2d layer.

    in_t, in_i, in_v : the layer's input events (time-sorted), times in ms.
    out_t, out_i : its output spikes (time-sorted); g_out : dL/dt_k of each (1/ms units
        of the loss per ms).
    is_dense : True -> every input j reaches every neuron i with weight w_flat[i*n_in + j];
        False -> CSR: input j reaches targets[indptr[j]:indptr[j+1]] with weight
        w_flat[widx[q]] (Conv2d; w_flat is the flattened (C_out, C_in, k, k) weight).
    kernel : KERNEL_EXP (h = exp(-s/tau_grad)) or KERNEL_DEPSILON (h = d eps/ds).
    drop_nonpositive : drop the share of spikes whose S_k <= 0 (else only S_k == 0).
    clamp : clamp -1/D_k to [clamp_lo, clamp_hi] in the weight gradient (else spikes with
        D_k <= 0 contribute no weight gradient).
    factor : multiplies dL/dt of the input events.

    Returns (g_in aligned with in_t, g_w shaped like w_flat, S, D, n_dropped).
    """
    c = tau_m / (tau_m - tau_s)
    n_spk = out_t.size
    n_ev = in_t.size
    start, order = _spikes_by_neuron(out_i, n_out)
    r = _window_starts(out_t, out_i, n_out, t_ref, start, order)
    S = np.zeros(n_spk)
    D = np.zeros(n_spk)
    g_in = np.zeros(n_ev)
    g_w = np.zeros(w_flat.size)
    if n_spk == 0 or n_ev == 0:
        return g_in, g_w, S, D, 0
    # ptr[i]: position in neuron i's spike group of its first spike at or after the
    # current input time (start[i+1] when there is none); moves down as time goes back.
    ptr = np.empty(n_out, np.int64)

    # ---- sweep 1 (reverse time): S_k and D_k ----------------------------------------
    for i in range(n_out):
        ptr[i] = start[i + 1]
    for m in range(n_ev - 1, -1, -1):
        tm = in_t[m]
        j = in_i[m]
        vm = in_v[m]
        if is_dense:
            q0 = 0
            q1 = n_out
        else:
            q0 = indptr[j]
            q1 = indptr[j + 1]
        for q in range(q0, q1):
            if is_dense:
                i = q
                w = w_flat[i * n_in + j]
            else:
                i = targets[q]
                w = w_flat[widx[q]]
            p = ptr[i]
            while p > start[i] and out_t[order[p - 1]] >= tm:
                p -= 1
            ptr[i] = p
            if p == start[i + 1]:
                continue
            k = order[p]
            if tm <= r[k]:
                continue
            s = out_t[k] - tm
            wv = w * vm
            S[k] += wv * _h(s, kernel, tau_grad, c, tau_m, tau_s)
            if kernel == KERNEL_DEPSILON:
                D[k] = S[k]
            else:
                D[k] += wv * c * (math.exp(-s / tau_s) / tau_s - math.exp(-s / tau_m) / tau_m)

    # per-spike coefficients
    coef_t = np.zeros(n_spk)   # dL/dt_k / S_k
    coef_w = np.zeros(n_spk)   # dL/dt_k * (-1 / D_k), clamped
    n_dropped = 0
    for k in range(n_spk):
        g = g_out[k]
        if S[k] > 0.0 or (S[k] < 0.0 and not drop_nonpositive):
            coef_t[k] = g / S[k]
        else:
            n_dropped += 1
        if clamp:
            inv = -1.0 / D[k] if D[k] != 0.0 else -math.inf
            inv = min(max(inv, clamp_lo), clamp_hi)
            coef_w[k] = g * inv
        elif D[k] > 0.0:
            coef_w[k] = -g / D[k]

    # ---- sweep 2 (reverse time): assign shares and weight gradient -----------------
    for i in range(n_out):
        ptr[i] = start[i + 1]
    for m in range(n_ev - 1, -1, -1):
        tm = in_t[m]
        j = in_i[m]
        vm = in_v[m]
        if is_dense:
            q0 = 0
            q1 = n_out
        else:
            q0 = indptr[j]
            q1 = indptr[j + 1]
        acc = 0.0
        for q in range(q0, q1):
            if is_dense:
                i = q
                wi = i * n_in + j
            else:
                i = targets[q]
                wi = widx[q]
            p = ptr[i]
            while p > start[i] and out_t[order[p - 1]] >= tm:
                p -= 1
            ptr[i] = p
            if p == start[i + 1]:
                continue
            k = order[p]
            if tm <= r[k]:
                continue
            s = out_t[k] - tm
            if coef_t[k] != 0.0:
                acc += coef_t[k] * w_flat[wi] * vm * _h(s, kernel, tau_grad, c, tau_m, tau_s)
            if coef_w[k] != 0.0:
                g_w[wi] += coef_w[k] * vm * c * (math.exp(-s / tau_m) - math.exp(-s / tau_s))
        g_in[m] = factor * acc
    return g_in, g_w, S, D, n_dropped
