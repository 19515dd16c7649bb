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
inputs of its *window* [r_{k-1}, t_k), on every earlier input through S(r_{k-1}), and on
the previous spike through r_{k-1}. Per spike, for the exact pass (h = eps'):

    D_k  = u'(t_k) = S(r_{k-1}) eps'(t_k - r_{k-1}) + sum_window w v eps'(t_k - t_m)
    Sh_k = D_k
    a_k  = dL/dt_k (from above) + a_{k+1} S(r_k) exp(-(t_{k+1} - r_k)/tau_m) / (tau_s Sh_{k+1})
    dL/dt_m += a_k w v h(t_k - t_m) / Sh_k                        (m in the window of k)
    dL/dt_m += w v exp(-(r_{k-1} - t_m)/tau_s) / tau_s * (-a_k eps(t_k - r_{k-1}) / Sh_k)
                                                                  (t_m < r_{k-1})
    dL/dw   += a_k c_k * [v eps(t_k - t_m)  or  v exp(-(r_{k-1} - t_m)/tau_s) eps(t_k - r_{k-1})]
    c_k = -1 / D_k (clamped, or 0 if D_k <= 0 without clamp)

With h = exp(-s/tau_grad) (Zhu et al.'s kernel) the surviving current is one more input
event of value S(r_{k-1}) at r_{k-1}: Sh_k = S(r_{k-1}) h(t_k - r_{k-1}) + sum_window
w v h(t_k - t_m), its share S h / Sh_k goes to the previous spike, the earlier inputs get
no time share; the weight part is the same.

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

#: kernel codes of h are those of eventsnn.event._backward (KERNEL_EXP is re-exported)
from ._backward import KERNEL_DEPSILON, KERNEL_EXP, _spikes_by_neuron  # noqa: F401


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
    g_in = np.zeros(n_ev)
    g_w = np.zeros(w_flat.size)
    if n_spk == 0:
        return g_in, g_w, Sh, D, 0, np.zeros(0)
    start, order = _spikes_by_neuron(out_i, n_out)
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
    coef_t, coef_w, jump_t, jump_w, totals, n_dropped = _spikes_coefficients(
        out_t, out_i, g_out, n_out, t_ref, c, tau_m, tau_s, SR, Sh, D, kernel, tau_grad,
        drop_nonpositive, clamp, clamp_lo, clamp_hi)

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


@njit(cache=True, nogil=True)
def _spikes_coefficients(out_t, out_i, g_out, n_out, t_ref, c, tau_m, tau_s, SR, Sh, D,
                         kernel, tau_grad, drop_nonpositive, clamp, clamp_lo, clamp_hi):
    """Step 2 (per neuron, spikes in reverse): completes Sh_k and D_k with the restart term
    and returns (coef_t, coef_w, jump_t, jump_w, totals, n_dropped).

    KERNEL_DEPSILON: the exact shares. KERNEL_EXP: the surviving current S(r) counts as one
    more input event at the restart r, moved by the previous spike: it adds
    S(r) exp(-(t_k - r)/tau_grad) to Sh_k and its whole share goes to the previous spike
    (the earlier inputs get no time share through S(r))."""
    start, order = _spikes_by_neuron(out_i, n_out)
    n_spk = out_t.size
    coef_t = np.zeros(n_spk)
    coef_w = np.zeros(n_spk)
    jump_t = np.zeros(n_spk)
    jump_w = np.zeros(n_spk)
    totals = np.zeros(n_spk)
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
            kp = -1
            if has_prev:
                kp = order[p - 1]
                s_r = out_t[k] - (out_t[kp] + t_ref)
                d_reset = SR[kp] * _deps(s_r, c, tau_m, tau_s)
                D[k] += d_reset
                if kernel == KERNEL_DEPSILON:
                    Sh[k] += d_reset
                else:
                    Sh[k] += SR[kp] * math.exp(-s_r / tau_grad)
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
                jump_w[k] = coef_w[k] * e_r
                if kernel == KERNEL_DEPSILON:
                    jump_t[k] = -coef_t[k] * e_r
                    carry = coef_t[k] * SR[kp] * math.exp(-s_r / tau_m) / tau_s
                else:
                    carry = coef_t[k] * SR[kp] * math.exp(-s_r / tau_grad)
    return coef_t, coef_w, jump_t, jump_w, totals, n_dropped


@njit(cache=True, nogil=True)
def dense_membrane_backward(in_t, in_i, in_v, out_t, out_i, g_out, WT, tau_m, tau_s, t_ref,
                            kernel, tau_grad, drop_nonpositive, clamp, clamp_lo, clamp_hi,
                            factor, input_grad):
    """:func:`membrane_layer_backward` for a Dense layer, with every per-neuron sum kept as
    an exponential trace that all neurons share one decay factor for (as the Dense forward
    kernel does), so an (input event, neuron) pair costs a few multiply-adds and no exp.

    WT : the transposed weight (n_in, n_out), C-contiguous. Same returns, except that the
    weight gradient comes back as (n_in, n_out) (the transpose of dL/dW).

    Forward sweep, per neuron: ``cur`` = S(t) (every input), ``wm``, ``ws``, ``wg`` = the
    window inputs since the last restart weighted by exp(-(t - t_m)/tau) for tau_m, tau_s,
    tau_grad; read at a spike (u'(t_k) = c (ws/tau_s - wm/tau_m)), cleared at a restart
    (after S(r) is stored). Reverse sweep: ``lt``, ``lw`` = the adjoint current traces
    (jumps at restarts), ``pm``, ``ps`` = coef_w of the active window times
    exp(-(t_k - t)/tau) (so coef_w eps(t_k - t) = c (pm - ps)), ``qm``, ``qs`` / ``qg`` the
    same with coef_t for the time share; all referenced at the next input time to be read,
    so every factor is <= 1.
    Ties as in the general kernel: at one time, spikes, then restarts, then inputs."""
    n_in, n_out = WT.shape
    c = tau_m / (tau_m - tau_s)
    n_spk = out_t.size
    n_ev = in_t.size
    Sh = np.zeros(n_spk)
    D = np.zeros(n_spk)
    g_in = np.zeros(n_ev)
    gWT = np.zeros((n_in, n_out))
    if n_spk == 0:
        return g_in, gWT, Sh, D, 0, np.zeros(0)
    use_g = kernel == KERNEL_EXP
    SR = np.zeros(n_spk)

    # ---- 1. forward sweep ---------------------------------------------------------------
    cur = np.zeros(n_out)
    wm = np.zeros(n_out)
    ws = np.zeros(n_out)
    wg = np.zeros(n_out)
    T = -math.inf       # reference time of every trace (last input group)
    s = 0               # next spike (time order)
    q = 0               # next restart (same order as the spikes)
    e = 0
    while True:
        t_next = in_t[e] if e < n_ev else math.inf
        while True:   # spikes and restarts up to t_next (a spike before a restart on ties)
            ts_ = out_t[s] if s < n_spk else math.inf
            tr_ = out_t[q] + t_ref if q < n_spk else math.inf
            if ts_ <= tr_ and ts_ <= t_next and s < n_spk:
                k = s
                i = out_i[k]
                dt = out_t[k] - T
                fs = math.exp(-dt / tau_s) if ws[i] != 0.0 else 0.0
                fm = math.exp(-dt / tau_m) if wm[i] != 0.0 else 0.0
                D[k] = c * (ws[i] * fs / tau_s - wm[i] * fm / tau_m)
                if use_g:
                    Sh[k] = wg[i] * math.exp(-dt / tau_grad) if wg[i] != 0.0 else 0.0
                else:
                    Sh[k] = D[k]
                s += 1
            elif tr_ < ts_ and tr_ <= t_next and q < n_spk:
                k = q
                i = out_i[k]
                SR[k] = cur[i] * math.exp(-(tr_ - T) / tau_s) if cur[i] != 0.0 else 0.0
                wm[i] = 0.0
                ws[i] = 0.0
                wg[i] = 0.0
                q += 1
            else:
                break
        if e >= n_ev:
            break
        # the input group at t_next: one decay factor per time constant for every neuron
        a_s = math.exp(-(t_next - T) / tau_s)
        a_m = math.exp(-(t_next - T) / tau_m)
        a_g = math.exp(-(t_next - T) / tau_grad) if use_g else 0.0
        for i in range(n_out):
            cur[i] *= a_s
            ws[i] *= a_s
            wm[i] *= a_m
        if use_g:
            for i in range(n_out):
                wg[i] *= a_g
        T = t_next
        while e < n_ev and in_t[e] == T:
            row = WT[in_i[e]]
            v = in_v[e]
            for i in range(n_out):
                x = row[i] * v
                cur[i] += x
                ws[i] += x
                wm[i] += x
            if use_g:
                for i in range(n_out):
                    wg[i] += row[i] * v
            e += 1

    # ---- 2. per neuron, spikes in reverse ------------------------------------------------
    coef_t, coef_w, jump_t, jump_w, totals, n_dropped = _spikes_coefficients(
        out_t, out_i, g_out, n_out, t_ref, c, tau_m, tau_s, SR, Sh, D, kernel, tau_grad,
        drop_nonpositive, clamp, clamp_lo, clamp_hi)
    # the restart r_{k-1} ends the window of spike k (in reverse time): prev[k] = k-1's index
    prev_r = np.full(n_spk, -math.inf)
    last = np.full(n_out, -1)
    for k in range(n_spk):
        i = out_i[k]
        if last[i] >= 0:
            prev_r[k] = out_t[last[i]] + t_ref
        last[i] = k
    # restarts in time order: the spikes that have a previous one, sorted by prev_r
    # (prev_r is increasing along each neuron and r = t + t_ref keeps the spike order)
    rorder = np.argsort(prev_r, kind="mergesort")

    # ---- 3. reverse sweep ---------------------------------------------------------------
    lt = np.zeros(n_out)
    lw = np.zeros(n_out)
    pm = np.zeros(n_out)
    ps = np.zeros(n_out)
    qm = np.zeros(n_out)
    qs = np.zeros(n_out)
    qg = np.zeros(n_out)
    T = math.inf
    s = n_spk - 1           # next spike going back
    q = n_spk - 1           # next restart going back (index into rorder)
    e = n_ev - 1
    while e >= 0:
        Tn = in_t[e]
        # decay every trace to the input time Tn, then apply the jumps in (Tn, T]
        if T < math.inf:
            a_s = math.exp(-(T - Tn) / tau_s)
            a_m = math.exp(-(T - Tn) / tau_m)
            for i in range(n_out):
                lt[i] *= a_s
                lw[i] *= a_s
                ps[i] *= a_s
                pm[i] *= a_m
            if use_g:
                a_g = math.exp(-(T - Tn) / tau_grad)
                for i in range(n_out):
                    qg[i] *= a_g
            else:
                for i in range(n_out):
                    qs[i] *= a_s
                    qm[i] *= a_m
        T = Tn
        while True:   # descending time; a restart before a spike on ties
            ts_ = out_t[s] if s >= 0 else -math.inf
            tr_ = prev_r[rorder[q]] if q >= 0 else -math.inf
            if tr_ >= ts_ and tr_ > T:
                k = rorder[q]
                i = out_i[k]
                f = math.exp(-(tr_ - T) / tau_s)
                lt[i] += jump_t[k] * f
                lw[i] += jump_w[k] * f
                pm[i] = 0.0
                ps[i] = 0.0
                qm[i] = 0.0
                qs[i] = 0.0
                qg[i] = 0.0
                q -= 1
            elif ts_ > tr_ and ts_ > T:
                k = s
                i = out_i[k]
                d = out_t[k] - T
                fm = math.exp(-d / tau_m)
                fs = math.exp(-d / tau_s)
                pm[i] = coef_w[k] * fm
                ps[i] = coef_w[k] * fs
                if use_g:
                    qg[i] = coef_t[k] * math.exp(-d / tau_grad)
                else:
                    qm[i] = coef_t[k] * fm
                    qs[i] = coef_t[k] * fs
                s -= 1
            else:
                break
        while e >= 0 and in_t[e] == T:
            j = in_i[e]
            v = in_v[e]
            row = WT[j]
            grow = gWT[j]
            for i in range(n_out):
                grow[i] += v * (lw[i] + c * (pm[i] - ps[i]))
            if input_grad:
                acc = 0.0
                if use_g:
                    for i in range(n_out):
                        acc += row[i] * (lt[i] / tau_s + qg[i])
                else:
                    for i in range(n_out):
                        acc += row[i] * (lt[i] / tau_s + c * (qs[i] / tau_s - qm[i] / tau_m))
                g_in[e] = factor * v * acc
            e -= 1
    return g_in, gWT, Sh, D, n_dropped, totals


def layer_backward(below, here, g_out, layer, neuron, kernel, tau_grad, opts, input_grad):
    """Dispatch of one Dense (shared-trace kernel) or Conv2d (per-link kernel) membrane
    layer; ``below``/``here`` are its input and output SpikeTrains, ``opts`` the validated
    options of ``eventsnn.event.backward``. Returns (g_in, g_w shaped like the weight, Sh,
    D, n_dropped, totals)."""
    from ..layers import Dense

    clamp = opts["clamp"]
    lo, hi = clamp if clamp is not None else (0.0, 0.0)
    common = (neuron.tau_m, neuron.tau_s, neuron.t_ref, kernel, tau_grad,
              bool(opts["drop_nonpositive"]), clamp is not None, lo, hi, opts["factor"],
              bool(input_grad))
    if isinstance(layer, Dense):
        g_in, gWT, Sh, D, nd, totals = dense_membrane_backward(
            below.times, below.neurons, below.values, here.times, here.neurons, g_out,
            layer.weight_t, *common)
        g_w = gWT.T.copy()
    else:
        indptr, targets, widx = layer.connectivity()
        g_in, g_w, Sh, D, nd, totals = membrane_layer_backward(
            below.times, below.neurons, below.values, here.times, here.neurons, g_out,
            below.n_neurons, here.n_neurons, False, indptr, targets, widx,
            np.ascontiguousarray(layer.weight.ravel()), *common)
        g_w = g_w.reshape(layer.weight.shape)
    if not (np.all(np.isfinite(g_in)) and np.all(np.isfinite(g_w))
            and np.all(np.isfinite(totals))):
        # a_k sums what a neuron's later spikes pass back; near float64's limit it overflows
        raise ValueError(
            f"the membrane-reset gradient of layer {layer!r} overflows float64 (grad_out up "
            f"to {np.max(np.abs(g_out), initial=0.0):.3g}, or a spike with u' near 0): scale "
            "the loss down")
    return g_in, g_w, Sh, D, nd, totals


@njit(cache=True, nogil=True)
def layer_backward_flat(in_t, in_i, in_v, out_t, out_i, g_out, n_in, n_out, is_dense, indptr,
                        targets, widx, w_flat, tau_m, tau_s, t_ref, kernel, tau_grad,
                        drop_nonpositive, clamp, clamp_lo, clamp_hi, factor, input_grad):
    """The arguments of ``eventsnn.event._backward.layer_backward`` (plus ``input_grad``),
    for numba callers that hold flat weights (e.g. a batched loop over samples): Dense goes
    to the shared-trace kernel, Conv2d to the per-link one. Returns (g_in, g_w flat, Sh, D,
    n_dropped, totals); the caller checks that the results are finite."""
    if is_dense:
        WT = np.ascontiguousarray(w_flat.reshape((n_out, n_in)).T)
        g_in, gWT, Sh, D, nd, totals = dense_membrane_backward(
            in_t, in_i, in_v, out_t, out_i, g_out, WT, tau_m, tau_s, t_ref, kernel, tau_grad,
            drop_nonpositive, clamp, clamp_lo, clamp_hi, factor, input_grad)
        return g_in, np.ascontiguousarray(gWT.T).ravel(), Sh, D, nd, totals
    return membrane_layer_backward(in_t, in_i, in_v, out_t, out_i, g_out, n_in, n_out,
                                   is_dense, indptr, targets, widx, w_flat, tau_m, tau_s, t_ref,
                                   kernel, tau_grad, drop_nonpositive, clamp, clamp_lo,
                                   clamp_hi, factor, input_grad)
