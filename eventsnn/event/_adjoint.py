"""numba kernel of the exact event-driven backward pass for ``reset="membrane"`` layers
(an EventProp-style adjoint, Wunderlich & Pehle 2021, specialised to the current-based LIF
of ``SRM(reset="membrane")``; derivation in docs/gradients.md, "Membrane reset").

One neuron layer (Dense or Conv2d) at a time. Neuron i's spikes t_1 < t_2 < ... have
restart times r_k = t_k + t_ref (r_0 = -inf). Its current trace at r is
S(r) = sum_{t_m < r} w v exp(-(r - t_m)/tau_s) (every input ever received), and its
membrane before spike k is

    u(t) = S(r_{k-1}) eps(t - r_{k-1}) + sum_{r_{k-1} <= t_m < t} w v eps(t - t_m).

(An input at exactly r_{k-1} has the same effect in either sum; putting it in the window
makes the pass return the right derivative with respect to its time at that kink, see
docs/gradients.md.)

Spike k solves u(t_k) = theta, so (implicit function theorem) its time depends on the
inputs of its *window* (r_{k-1}, t_k), on every earlier input through S(r_{k-1}), and on
the previous spike through r_{k-1}. Per spike (h = eps' for the exact pass):

    D_k  = u'(t_k) = S(r_{k-1}) eps'(t_k - r_{k-1}) + sum_window w v eps'(t_k - t_m)
    Sh_k = S(r_{k-1}) eps'(t_k - r_{k-1}) + sum_window w v h(t_k - t_m)   (= D_k for eps')
    a_k  = dL/dt_k (from above) + a_{k+1} S(r_k) exp(-(t_{k+1} - r_k)/tau_m) / (tau_s Sh_{k+1})
    dL/dt_m += a_k w v h(t_k - t_m) / Sh_k                        (m in the window of k)
    dL/dt_m += w v exp(-(r_{k-1} - t_m)/tau_s) / tau_s * (-a_k eps(t_k - r_{k-1}) / Sh_k)
                                                                  (t_m < r_{k-1})
    dL/dw   += a_k c_k * [v eps(t_k - t_m)  or  v exp(-(r_{k-1} - t_m)/tau_s) eps(t_k - r_{k-1})]
    c_k = -1 / D_k (clamped, or 0 if D_k <= 0 without clamp)

The sums over t_m < r_{k-1} are adjoint traces decaying with tau_s backwards in time and
jumping at each r_{k-1}, so the cost is two sweeps over the (input event, target) pairs
plus one pass over the spikes, like the full-reset kernel:

1. forward sweep: S(r_k) at every restart (a current trace per neuron), D_k and Sh_k;
2. per neuron, spikes in reverse: a_k and the per-spike coefficients;
3. reverse sweep: each input reads the adjoint traces and its window spike's coefficients.

The kernel trusts its inputs (validated in ``eventsnn.event.backward``). No fastmath.
"""
import math

import numpy as np
from numba import njit

#: kernel codes of h (same values as eventsnn.event._backward)
KERNEL_EXP = 0
KERNEL_DEPSILON = 1


@njit(cache=True, nogil=True)
def _group_by_neuron(out_i, n_out):
    """(start, order): neuron i's spikes are order[start[i]:start[i+1]], in time order."""
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
def _deps(s, c, tau_m, tau_s):
    return c * (math.exp(-s / tau_s) / tau_s - math.exp(-s / tau_m) / tau_m)


@njit(cache=True, nogil=True)
def _eps(s, c, tau_m, tau_s):
    return c * (math.exp(-s / tau_m) - math.exp(-s / tau_s))


@njit(cache=True, nogil=True)
def _link(is_dense, q, j, n_in, indptr, targets, widx):
    """(target neuron, flat weight index) of the q-th link of input j."""
    if is_dense:
        return q, q * n_in + j
    return targets[q], widx[q]


@njit(cache=True, nogil=True)
def membrane_layer_backward(in_t, in_i, in_v, out_t, out_i, g_out, n_in, n_out, is_dense,
                            indptr, targets, widx, w_flat, tau_m, tau_s, t_ref, kernel,
                            tau_grad, drop_nonpositive, clamp, clamp_lo, clamp_hi, factor,
                            input_grad):
    """Backward pass through one Dense or Conv2d layer of membrane-reset neurons.

    Arguments as ``eventsnn.event._backward.layer_backward`` (times in ms, g_out = dL/dt
    of each output spike from the layers above), plus ``input_grad``: False skips dL/dt of
    the input events (returned as zeros).

    Returns (g_in, g_w, Sh, D, n_dropped, totals): dL/dt of the input events (times
    ``factor``), dL/dW flat, the per-spike normaliser Sh_k and slope D_k = u'(t_k), the
    number of spikes whose time share was dropped (Sh_k <= 0, or == 0 when
    ``drop_nonpositive`` is False) and the total adjoint a_k of every spike (dL/dt_k
    including the effect of t_k on the neuron's later spikes).
    """
    c = tau_m / (tau_m - tau_s)
    n_spk = out_t.size
    n_ev = in_t.size
    Sh = np.zeros(n_spk)
    D = np.zeros(n_spk)
    totals = np.zeros(n_spk)
    g_in = np.zeros(n_ev)
    g_w = np.zeros(w_flat.size)
    if n_spk == 0:
        return g_in, g_w, Sh, D, 0, totals
    start, order = _group_by_neuron(out_i, n_out)
    SR = np.zeros(n_spk)           # S(r_k): current trace at the restart after spike k

    # ---- 1. forward sweep: S(r_k), window sums D_k and Sh_k ---------------------------
    cur = np.zeros(n_out)          # current trace of each neuron ...
    cur_t = np.full(n_out, -math.inf)   # ... at this time
    rp = start[:-1].copy()         # first spike whose S(r) is not recorded yet
    wp = start[:-1].copy()         # first spike with t_k > the current input time
    for m in range(n_ev):
        tm = in_t[m]
        j = in_i[m]
        vm = in_v[m]
        if is_dense:
            q0, q1 = 0, n_out
        else:
            q0, q1 = indptr[j], indptr[j + 1]
        for q in range(q0, q1):
            i, wi = _link(is_dense, q, j, n_in, indptr, targets, widx)
            end = start[i + 1]
            if rp[i] == end:
                continue                 # after the last restart: nothing depends on it
            wv = w_flat[wi] * vm
            # S(r) of the restarts up to tm (an input at exactly r goes to the next window)
            while rp[i] < end and out_t[order[rp[i]]] + t_ref <= tm:
                k = order[rp[i]]
                SR[k] = cur[i] * math.exp(-(out_t[k] + t_ref - cur_t[i]) / tau_s)
                rp[i] += 1
            p = wp[i]
            while p < end and out_t[order[p]] <= tm:
                p += 1
            wp[i] = p
            if p < end:
                k = order[p]
                # window of spike k: r_{k-1} <= tm < t_k (an input at t_k arrives after it)
                if p == start[i] or out_t[order[p - 1]] + t_ref <= tm:
                    s = out_t[k] - tm
                    d = wv * _deps(s, c, tau_m, tau_s)
                    D[k] += d
                    if kernel == KERNEL_DEPSILON:
                        Sh[k] += d
                    else:
                        Sh[k] += wv * math.exp(-s / tau_grad)
            cur[i] = (cur[i] * math.exp(-(tm - cur_t[i]) / tau_s) if cur[i] != 0.0 else 0.0) + wv
            cur_t[i] = tm
    for i in range(n_out):
        for p in range(rp[i], start[i + 1]):
            k = order[p]
            SR[k] = cur[i] * math.exp(-(out_t[k] + t_ref - cur_t[i]) / tau_s) if cur[i] != 0.0 else 0.0

    # ---- 2. per neuron, spikes in reverse: a_k and coefficients ----------------------
    coef_t = np.zeros(n_spk)       # a_k / Sh_k (0 when dropped)
    coef_w = np.zeros(n_spk)       # a_k c_k
    jump_t = np.zeros(n_spk)       # jumps of the adjoint traces at r_{k-1}
    jump_w = np.zeros(n_spk)
    n_dropped = 0
    for i in range(n_out):
        carry = 0.0
        for p in range(start[i + 1] - 1, start[i] - 1, -1):
            k = order[p]
            a = g_out[k] + carry
            totals[k] = a
            carry = 0.0
            has_prev = p > start[i]
            s_r = 0.0
            if has_prev:
                kp = order[p - 1]
                r = out_t[kp] + t_ref
                s_r = out_t[k] - r
                d_reset = SR[kp] * _deps(s_r, c, tau_m, tau_s)
                D[k] += d_reset
                Sh[k] += d_reset
            if Sh[k] > 0.0 or (Sh[k] < 0.0 and not drop_nonpositive):
                coef_t[k] = a / Sh[k]
            else:
                n_dropped += 1
            if clamp:
                inv = -1.0 / D[k] if D[k] != 0.0 else -math.inf
                coef_w[k] = a * min(max(inv, clamp_lo), clamp_hi)
            elif D[k] > 0.0:
                coef_w[k] = -a / D[k]
            if has_prev:
                e_r = _eps(s_r, c, tau_m, tau_s)
                jump_t[k] = -coef_t[k] * e_r
                jump_w[k] = coef_w[k] * e_r
                # t_{k-1} moves r_{k-1}: du(t_k)/dr = -S(r) exp(-(t_k - r)/tau_m) / tau_s
                carry = coef_t[k] * SR[kp] * math.exp(-s_r / tau_m) / tau_s

    # ---- 3. reverse sweep: assign to the input events ---------------------------------
    At = np.zeros(n_out)           # adjoint traces (time, weight) of the current ...
    Aw = np.zeros(n_out)
    A_t = np.full(n_out, math.inf)  # ... referenced at this time
    jp = start[1:].copy()          # spikes at positions >= jp have their jump applied
    bp = start[1:].copy()          # first spike (position) with t_k > the input time
    for m in range(n_ev - 1, -1, -1):
        tm = in_t[m]
        j = in_i[m]
        vm = in_v[m]
        if is_dense:
            q0, q1 = 0, n_out
        else:
            q0, q1 = indptr[j], indptr[j + 1]
        acc = 0.0
        for q in range(q0, q1):
            i, wi = _link(is_dense, q, j, n_in, indptr, targets, widx)
            st = start[i]
            # jumps at restarts r_{k-1} > tm (the inputs before r count in S(r))
            while jp[i] - 1 > st and out_t[order[jp[i] - 2]] + t_ref > tm:
                k = order[jp[i] - 1]
                r = out_t[order[jp[i] - 2]] + t_ref
                if At[i] != 0.0 or Aw[i] != 0.0:
                    dec = math.exp(-(A_t[i] - r) / tau_s)
                    At[i] *= dec
                    Aw[i] *= dec
                At[i] += jump_t[k]
                Aw[i] += jump_w[k]
                A_t[i] = r
                jp[i] -= 1
            p = bp[i]
            while p > st and out_t[order[p - 1]] > tm:
                p -= 1
            bp[i] = p
            in_window = p < start[i + 1] and (p == st or out_t[order[p - 1]] + t_ref <= tm)
            if not in_window and At[i] == 0.0 and Aw[i] == 0.0:
                continue
            gw = 0.0
            gt = 0.0
            if At[i] != 0.0 or Aw[i] != 0.0:
                dec = math.exp(-(A_t[i] - tm) / tau_s)
                gt = At[i] * dec / tau_s
                gw = Aw[i] * dec
            if in_window:
                k = order[p]
                s = out_t[k] - tm
                gw += coef_w[k] * _eps(s, c, tau_m, tau_s)
                if input_grad and coef_t[k] != 0.0:
                    if kernel == KERNEL_DEPSILON:
                        gt += coef_t[k] * _deps(s, c, tau_m, tau_s)
                    else:
                        gt += coef_t[k] * math.exp(-s / tau_grad)
            g_w[wi] += vm * gw
            if input_grad:
                acc += w_flat[wi] * vm * gt
        g_in[m] = factor * acc
    return g_in, g_w, Sh, D, n_dropped, totals
