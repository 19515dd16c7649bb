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

**No exponential per (event, spike) pair.** h, eps and eps' are sums of exponentials
exp(-s/tau) with tau among tau_m, tau_s and (kernel "exp") tau_grad, and

    exp(-(t_k - t_m)/tau) = F_k * e_m,  F_k = exp(-(t_k - ref)/tau),  e_m = exp((t_m - ref)/tau)

for any common reference time ``ref``: one factor per spike, one per event, and each pair
costs multiply-adds. The references are per *time block*: walking the input events back in
time, a block opens at the latest event not yet in one, t_top, with ref = t_top - L, and
holds every event with t_m >= ref; L = ``block`` ms (``BLOCK_TAUS`` times the smallest tau
used, see ``block_length``). Bound (why nothing overflows): an event of the block has
0 <= t_m - ref <= L, so 1 <= e_m/v_m <= exp(L/tau) <= exp(BLOCK_TAUS) = 8.9e6; the spike
factor of an active window has t_k >= t_m >= ref, so 0 < F_k <= 1. The block accumulators
sum |w v| e_m <= n_events * 1e100 (the weight magnitude limit) * 8.9e6, far below the
double range. When the walk enters a new block (ref' < ref) each F is multiplied by
exp(-(ref - ref')/tau) <= 1, so F stays exp(-(t_k - ref')/tau); a factor that falls below
the smallest normal double (2.2e-308) is set to 0 (the term exp(-(t_k - t_m)/tau) is then
< 2.2e-308 * 8.9e6 = 2e-301 of w v: it also underflows, or nearly, in a per-pair
exponential, and zero avoids slow subnormal arithmetic). Rounding: a factor's exponent
(t - ref)/tau carries a relative rounding error of one unit, so a product F_k e_m has a
relative error of a few units times (t_k - t_m + 2L)/tau, i.e. the same order as
exp(-(t_k - t_m)/tau) evaluated directly (whose argument also carries rounding of that
size) plus at most 2 * BLOCK_TAUS units.

**Window edges as events.** Each spike k gives two edges of its neuron's state, walking
back in time: at t_k the window of k opens (an input at t_m = t_k belongs to it), at r_k it
closes (an input at t_m = r_k does not). The edges of all neurons are merged in reverse
time (stably, so edges of one neuron at the same time keep their order); before input
event m is processed every edge at time >= t_m is. Between edges, a neuron's coefficients
are constant, so an input event costs one pass over its targets with no branch and no
search: for a Dense layer contiguous rows of the transposed weight W^T (n_in, n_out) and of
the transposed weight gradient; for a Conv2d layer (``conv_backward``) the targets follow
from the geometry (weight sharing, no link list), with the per-neuron state kept
channel-last and the weight and its gradient as (C_in, k, k, C_out), so the innermost loop
runs over the output channels on contiguous memory.

Two sweeps in reverse time. Sweep 1 accumulates, per neuron and block, A_tau = sum w v e_m
and folds F * A into the window sums K_tau(k) = sum_{m in W_k} w v exp(-(t_k-t_m)/tau) when
the block or the window ends; S_k and D_k are linear combinations of the K_tau. Sweep 2
holds per neuron P_tau = (c * coef_w[k]) F and G = coef_t[k] (h's coefficients) F of its
open window and adds e_m (P_m e^{tau_m}_m - P_s e^{tau_s}_m) to the weight gradient of each
pair and, when the input time gradient is asked for, w (G . e_m) to dL/dt_m.

The kernels trust their inputs (validated in ``eventsnn.event.backward``). No fastmath.
"""
import math

import numpy as np
from numba import njit

from ._geometry import input_span

#: kernel codes of h
KERNEL_EXP = 0
KERNEL_DEPSILON = 1
#: block length in units of the smallest time constant in use (see the module docstring)
BLOCK_TAUS = 16.0
#: smallest normal double: factors below it are set to 0
_TINY = 2.2250738585072014e-308


def block_length(tau_m, tau_s, kernel, tau_grad):
    """Length (ms) of the time blocks sharing one reference time: BLOCK_TAUS times the
    smallest time constant the kernel's exponentials use."""
    tau = min(tau_m, tau_s)
    if kernel == KERNEL_EXP:
        tau = min(tau, tau_grad)
    return BLOCK_TAUS * tau


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
def _edges(out_t, r, n_out, start, order):
    """Window edges in reverse time: (time, spike, opens) arrays.

    Per neuron the sequence t_K >= r_K >= t_{K-1} >= ... is non-increasing (r_k =
    t_{k-1} + t_ref); a stable sort on -time keeps it, so at equal times a window closes
    before the previous one opens."""
    n = 2 * out_t.size
    et = np.empty(n)
    ek = np.empty(n, np.int64)
    eo = np.empty(n, np.bool_)
    c = 0
    for i in range(n_out):
        for p in range(start[i + 1] - 1, start[i] - 1, -1):
            k = order[p]
            et[c] = out_t[k]
            ek[c] = k
            eo[c] = True
            c += 1
            if r[k] > -math.inf:
                et[c] = r[k]
                ek[c] = k
                eo[c] = False
                c += 1
    perm = np.argsort(-et[:c], kind="mergesort")
    return et[:c][perm], ek[:c][perm], eo[:c][perm]


@njit(cache=True, nogil=True)
def _edges_merged(out_t, out_i, r, n_out, start, order):
    """The window edges of :func:`_edges` by merging two already sorted lists instead of
    sorting: the openings (the spikes, latest first) and the closings (r_k = t_{k-1} + t_ref
    for every spike with a predecessor, in the order of the predecessors, latest first; a
    rounded sum is monotone in t_{k-1}). At equal times a closing goes first: for one neuron
    that is the order of :func:`_edges` as long as r_k < t_k for every spike (checked: else
    :func:`_edges` itself is used). Edges of different neurons at one time may come in
    another order than :func:`_edges` gives them; each edge only changes its own neuron's
    state, so the sweeps' results are the same."""
    n = out_t.size
    nxt = np.full(n, -1, np.int64)   # the next spike of the same neuron
    for i in range(n_out):
        for p in range(start[i], start[i + 1] - 1):
            nxt[order[p]] = order[p + 1]
    for k in range(n):
        if r[k] >= out_t[k]:
            return _edges(out_t, r, n_out, start, order)
    n_close = n - n_out
    for i in range(n_out):
        if start[i + 1] == start[i]:
            n_close += 1
    et = np.empty(n + n_close)
    ek = np.empty(n + n_close, np.int64)
    eo = np.empty(n + n_close, np.bool_)
    a = n - 1        # next opening: spike a
    c = n - 1        # next closing: that of nxt[c] (skipping spikes without a successor)
    while c >= 0 and nxt[c] < 0:
        c -= 1
    e = 0
    while a >= 0 or c >= 0:
        if c >= 0 and (a < 0 or r[nxt[c]] >= out_t[a]):
            k = nxt[c]
            et[e] = r[k]
            ek[e] = k
            eo[e] = False
            c -= 1
            while c >= 0 and nxt[c] < 0:
                c -= 1
        else:
            et[e] = out_t[a]
            ek[e] = a
            eo[e] = True
            a -= 1
        e += 1
    return et, ek, eo


@njit(cache=True, nogil=True)
def _block_refs(in_t, block):
    """Reference time of each input event's block (see the module docstring)."""
    n = in_t.size
    ref = np.empty(n)
    lo = math.inf
    cur = 0.0
    for m in range(n - 1, -1, -1):
        if in_t[m] < lo:
            cur = in_t[m] - block
            lo = cur
        ref[m] = cur
    return ref


@njit(cache=True, nogil=True)
def _flush(x):
    return x if abs(x) >= _TINY else 0.0


@njit(cache=True, nogil=True)
def _decay(t, ref, tau):
    """exp(-(t - ref)/tau), 0 below the smallest normal double."""
    return _flush(math.exp(-(t - ref) / tau))


@njit(cache=True, nogil=True)
def layer_backward(in_t, in_i, in_v, out_t, out_i, g_out, n_in, n_out, is_dense, indptr,
                   targets, widx, w, n_w, tau_m, tau_s, t_ref, kernel, tau_grad,
                   drop_nonpositive, clamp, clamp_lo, clamp_hi, factor, input_grad, block):
    """Timing backward through one Dense or Conv2d layer.

    in_t, in_i, in_v : the layer's input events (time-sorted), times in ms.
    out_t, out_i : its output spikes (time-sorted); g_out : dL/dt_k of each (1/ms units
        of the loss per ms).
    is_dense : True -> every input j reaches every neuron i; ``w`` is the transposed weight
        W^T flattened (w[j*n_out + i] = W[i, j]) and the returned weight gradient has the
        same (n_in, n_out) layout. False -> CSR: input j reaches targets[indptr[j]:
        indptr[j+1]], w[q] is the weight of link q and widx[q] its index in the flattened
        weight of size n_w (Conv2d: (C_out, C_in, k, k)); the gradient is flattened alike.
        (:func:`conv_backward` is the same pass for a Conv2d layer without the CSR.)
    kernel : KERNEL_EXP (h = exp(-s/tau_grad)) or KERNEL_DEPSILON (h = d eps/ds).
    drop_nonpositive : drop the share of spikes whose S_k <= 0 (else only S_k == 0).
    clamp : clamp -1/D_k to [clamp_lo, clamp_hi] in the weight gradient (else spikes with
        D_k <= 0 contribute no weight gradient).
    factor : multiplies dL/dt of the input events.
    input_grad : compute dL/dt of the input events (else g_in is empty).
    block : length (ms) of the time blocks sharing a reference time (``block_length``).

    Returns (g_in aligned with in_t, g_w, S, D, n_dropped).
    """
    return _pass(in_t, in_i, in_v, out_t, out_i, g_out, n_out, is_dense, _NO_GEOM, indptr,
                 targets, widx, w, n_w, tau_m, tau_s, t_ref, kernel, tau_grad,
                 drop_nonpositive, clamp, clamp_lo, clamp_hi, factor, input_grad, block, False)


@njit(cache=True, nogil=True)
def conv_backward(in_t, in_i, in_v, out_t, out_i, g_out, geom, w, tau_m, tau_s, t_ref, kernel,
                  tau_grad, drop_nonpositive, clamp, clamp_lo, clamp_hi, factor, input_grad,
                  block, frames=True):
    """:func:`layer_backward` of a Conv2d layer, its links computed from the geometry
    (weight sharing) instead of read from a CSR map.

    geom : int64 array (C_in, H, W, C_out, H_out, W_out, k, stride, padding) (``conv_geometry``).
    w : the layer's weight (C_out, C_in, k, k) flattened, contiguous; the weight gradient
        comes in the same layout.

    Every pair (event, target) gets the same arithmetic as on the CSR path, so the weight
    gradient, S and D are identical to :func:`layer_backward` with ``Conv2d.connectivity()``;
    dL/dt of an input event sums its targets per output channel first (vectorised), so it
    equals the CSR path's up to the rounding of the sum.

    frames : repeated frames (runs of consecutive input groups, i.e. events at one time,
        with the same neurons and values, dense enough: ``_frame_runs``) go through the
        frame path: sweep 1 adds the frame's correlation with the kernel times the group's
        factors to every neuron, sweep 2 sums the neurons' factors over the run and
        correlates the sum with the frame once. The same sums in another order: equal to
        ``frames=False`` (the per-event path above) up to rounding (tests check rtol 1e-9).
    """
    E = np.zeros(0, np.int64)
    n_out = geom[3] * geom[4] * geom[5]
    return _pass(in_t, in_i, in_v, out_t, out_i, g_out, n_out, False, geom, E, E, E, w, w.size,
                 tau_m, tau_s, t_ref, kernel, tau_grad, drop_nonpositive, clamp, clamp_lo,
                 clamp_hi, factor, input_grad, block, frames)


def conv_geometry(layer):
    """The ``geom`` array of :func:`conv_backward` for a Conv2d layer."""
    C, H, W = layer.in_decl
    Co, Ho, Wo = layer.out_shape
    return np.array([C, H, W, Co, Ho, Wo, layer.kernel_size, layer.stride, layer.padding],
                    np.int64)


_NO_GEOM = np.zeros(0, np.int64)


@njit(cache=True, nogil=True)
def _pass(in_t, in_i, in_v, out_t, out_i, g_out, n_out, is_dense, geom, indptr, targets, widx,
          w, n_w, tau_m, tau_s, t_ref, kernel, tau_grad, drop_nonpositive, clamp, clamp_lo,
          clamp_hi, factor, input_grad, block, frames):
    c = tau_m / (tau_m - tau_s)
    exp_kernel = kernel == KERNEL_EXP
    n_spk = out_t.size
    n_ev = in_t.size
    S = np.zeros(n_spk)
    D = np.zeros(n_spk)
    g_in = np.zeros(n_ev if input_grad else 0)
    g_w = np.zeros(n_w)
    if n_spk == 0 or n_ev == 0:
        return g_in, g_w, S, D, 0
    ref_of = _block_refs(in_t, block)
    # per-event factors (value included): exp((t_m - ref)/tau) for tau_m, tau_s, tau_grad;
    # the exponentials once per time (fm, fs, fg: the events of a time share t_m and ref)
    em = np.empty(n_ev)
    es = np.empty(n_ev)
    eg = np.empty(n_ev)
    fm = np.empty(n_ev)
    fs = np.empty(n_ev)
    fg = np.empty(n_ev)
    for m in range(n_ev):
        if m > 0 and in_t[m] == in_t[m - 1] and ref_of[m] == ref_of[m - 1]:
            fm[m] = fm[m - 1]
            fs[m] = fs[m - 1]
            fg[m] = fg[m - 1]
        else:
            d = in_t[m] - ref_of[m]
            fm[m] = math.exp(d / tau_m)
            fs[m] = math.exp(d / tau_s)
            fg[m] = math.exp(d / tau_grad) if exp_kernel else 0.0
        em[m] = in_v[m] * fm[m]
        es[m] = in_v[m] * fs[m]
        eg[m] = in_v[m] * fg[m] if exp_kernel else 0.0
    conv = geom.size > 0
    if conv:   # channel-last state and weight (see _sweep_sums)
        nid = _channel_last(geom)
        wk = np.ascontiguousarray(w.reshape((geom[3], n_w // geom[3])).T).ravel()
        glo, kind = _frame_runs(in_t, in_i, in_v, geom, frames)
        if _one_frame(in_t, kind, block):
            n_dropped = _one_frame_pass(in_t, in_i, em, es, eg, fm, fs, fg, ref_of[0], out_t,
                                        out_i, g_out, geom, nid, wk, in_v, glo, t_ref, tau_m,
                                        tau_s, tau_grad, exp_kernel, c, drop_nonpositive, clamp,
                                        clamp_lo, clamp_hi, factor, input_grad, S, D, g_in, g_w)
            return g_in, g_w, S, D, n_dropped
    else:
        nid = np.zeros(0, np.int64)
        wk = w
        glo = kind = np.zeros(0, np.int64)
    start, order = _spikes_by_neuron(out_i, n_out)
    r = _window_starts(out_t, out_i, n_out, t_ref, start, order)
    et, ek, eo = _edges_merged(out_t, out_i, r, n_out, start, order)

    # ---- sweep 1 (reverse time): window sums K_tau(k) ----------------------------------
    Km, Ks, Kg, Fk = _sweep_sums(in_t, in_i, in_v, em, es, eg, fm, fs, fg, ref_of, n_out,
                                 is_dense, geom, nid, indptr, targets, wk, out_t, out_i, et, ek,
                                 eo, tau_m, tau_s, tau_grad, exp_kernel, glo, kind)
    coef_t, coef_w, n_dropped = _coefficients(Km, Ks, Kg, g_out, c, tau_m, tau_s, exp_kernel,
                                              drop_nonpositive, clamp, clamp_lo, clamp_hi, S, D)

    # ---- sweep 2 (reverse time): shares and weight gradient ---------------------------
    if conv:
        g_k = np.zeros(n_w)
        _sweep_assign(in_t, in_i, in_v, em, es, eg, fm, fs, ref_of, n_out, is_dense, geom, nid,
                      indptr, targets, widx, wk, out_t, out_i, et, ek, eo, Fk, tau_m, tau_s,
                      tau_grad, exp_kernel, c, coef_t, coef_w, input_grad, factor, g_in, g_k,
                      glo, kind)
        g_w[:] = g_k.reshape((n_w // geom[3], geom[3])).T.ravel()
    else:
        _sweep_assign(in_t, in_i, in_v, em, es, eg, fm, fs, ref_of, n_out, is_dense, geom, nid,
                      indptr, targets, widx, w, out_t, out_i, et, ek, eo, Fk, tau_m, tau_s,
                      tau_grad, exp_kernel, c, coef_t, coef_w, input_grad, factor, g_in, g_w,
                      glo, kind)
    return g_in, g_w, S, D, n_dropped


#: kind flags of ``_frame_runs``: the event's group is in a frame run; it is the run's
#: latest group (sweep 1 correlates the frame there); its earliest (sweep 2 flushes there)
FRAME = 1
FRAME_TOP = 2
FRAME_BOTTOM = 4


@njit(cache=True, nogil=True)
def _frame_runs(in_t, in_i, in_v, geom, frames):
    """Repeated frames of a Conv2d layer's input (events time-sorted): groups are the
    events of one time; a run is two or more consecutive groups with the same neurons and
    values in the same order (a frame shown at several times, as the "current" encoder
    does), taken by the frame path when its groups reach at least every output position
    on average (events x reach^2 >= positions: the per-event sweeps would touch each
    neuron about once per group anyway). Returns (glo, kind): glo[m] the first event of
    m's group, kind[m] the FRAME flags of m's group (0: per-event path). Without
    ``frames`` every kind is 0."""
    n = in_t.size
    glo = np.empty(n, np.int64)
    kind = np.zeros(n, np.int64)
    if n == 0:
        return glo, kind
    g0 = 0
    for m in range(n):
        if m > 0 and in_t[m] != in_t[m - 1]:
            g0 = m
        glo[m] = g0
    if not frames:
        return glo, kind
    k = geom[6]
    st = geom[7]
    reach = (k + st - 1) // st
    n_pos = geom[4] * geom[5]
    starts = np.empty(n + 1, np.int64)   # group g: events starts[g]..starts[g+1]-1
    n_g = 0
    for m in range(n):
        if m == 0 or in_t[m] != in_t[m - 1]:
            starts[n_g] = m
            n_g += 1
    starts[n_g] = n
    g = 0
    while g < n_g:
        a = starts[g]
        size = starts[g + 1] - a
        h = g + 1   # groups g..h-1: the run of groups equal to g
        while h < n_g and starts[h + 1] - starts[h] == size:
            c = starts[h]
            same = True
            for q in range(size):
                if in_i[c + q] != in_i[a + q] or in_v[c + q] != in_v[a + q]:
                    same = False
                    break
            if not same:
                break
            h += 1
        if h - g >= 2 and size * reach * reach >= n_pos:
            for m in range(a, starts[h]):
                kind[m] = FRAME
            for m in range(a, starts[g + 1]):
                kind[m] |= FRAME_BOTTOM
            for m in range(starts[h - 1], starts[h]):
                kind[m] |= FRAME_TOP
        g = h
    return glo, kind


@njit(cache=True, nogil=True)
def _frame_correlate(in_i, in_v, e0, e1, geom, wk, R):
    """R[pos, co] = sum over the events e0..e1-1 of v w[co, ci, ky, kx] for every output
    position pos = (oy, ox) each event reaches (wk the channel-last weight (C_in k k,
    C_out)): the frame's input to every neuron, in the channel-last order."""
    co_n = geom[3]
    Wo = geom[5]
    k = geom[6]
    st = geom[7]
    R[:, :] = 0.0
    for m in range(e0, e1):
        ci, y, x, oy0, oy1, ox0, ox1 = _conv_span(in_i[m], geom)
        v = in_v[m]
        yp = y + geom[8]
        xp = x + geom[8]
        for oy in range(oy0, oy1 + 1):
            wr = (ci * k + yp - oy * st) * k + xp
            for ox in range(ox0, ox1 + 1):
                pos = oy * Wo + ox
                r = wr - ox * st
                for co in range(co_n):
                    R[pos, co] += wk[r, co] * v


@njit(cache=True, nogil=True)
def _frame_gradient(in_i, in_v, e0, e1, geom, Q, gk):
    """gk[r, co] += v Q[pos, co] for every event e0..e1-1 and output position pos it
    reaches through the kernel tap r: the frame correlated with the summed factors Q."""
    co_n = geom[3]
    Wo = geom[5]
    k = geom[6]
    st = geom[7]
    for m in range(e0, e1):
        ci, y, x, oy0, oy1, ox0, ox1 = _conv_span(in_i[m], geom)
        v = in_v[m]
        yp = y + geom[8]
        xp = x + geom[8]
        for oy in range(oy0, oy1 + 1):
            wr = (ci * k + yp - oy * st) * k + xp
            for ox in range(ox0, ox1 + 1):
                pos = oy * Wo + ox
                r = wr - ox * st
                for co in range(co_n):
                    gk[r, co] += v * Q[pos, co]


@njit(cache=True, nogil=True)
def _coefficients(Km, Ks, Kg, g_out, c, tau_m, tau_s, exp_kernel, drop_nonpositive, clamp,
                  clamp_lo, clamp_hi, S, D):
    """D_k, S_k (into D, S) from the window sums, and the spikes' coefficients: (coef_t =
    dL/dt_k / S_k, coef_w = dL/dt_k * (-1 / D_k) clamped, number of dropped spikes)."""
    n_spk = Km.size
    coef_t = np.zeros(n_spk)
    coef_w = np.zeros(n_spk)
    n_dropped = 0
    for k in range(n_spk):
        D[k] = c * (Ks[k] / tau_s - Km[k] / tau_m)
        S[k] = Kg[k] if exp_kernel else D[k]
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
    return coef_t, coef_w, n_dropped


@njit(cache=True, nogil=True)
def _one_frame(in_t, kind, block):
    """The input events are one frame shown at several times (one run of ``_frame_runs``
    holds every event) and fit in one time block (so they share one reference time)."""
    n = in_t.size
    if n == 0 or not (kind[0] & FRAME_BOTTOM) or not (kind[n - 1] & FRAME_TOP):
        return False
    for m in range(n):
        if not (kind[m] & FRAME) or ((kind[m] & FRAME_BOTTOM) and in_t[m] != in_t[0]):
            return False
    return in_t[n - 1] - in_t[0] <= block


@njit(cache=True, nogil=True)
def _groups_upto(gt, t):
    """Number of the sorted group times gt at or before t (binary search)."""
    lo = 0
    hi = gt.size
    while lo < hi:
        mid = (lo + hi) // 2
        if gt[mid] <= t:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True)
def _one_frame_pass(in_t, in_i, em, es, eg, fm, fs, fg, ref, out_t, out_i, g_out, geom, nid,
                    wk, in_v, glo, t_ref, tau_m, tau_s, tau_grad, exp_kernel, c,
                    drop_nonpositive, clamp, clamp_lo, clamp_hi, factor, input_grad, S, D, g_in,
                    g_w):
    """The pass of a Conv2d layer whose input is one frame shown at P times t_g (all in one
    time block, reference ``ref``), in closed form instead of the two sweeps. Neuron i's
    input from the frame is R_i = sum w v (the frame's correlation with the kernel), at each
    t_g; so for spike k of i with window (r_k, t_k], holding the groups g_lo <= g < g_hi,

        K_tau(k) = R_i F_tau(k) (C_tau[g_hi] - C_tau[g_lo]),  C_tau[g] = sum_{g' < g} E_tau[g'],

    with F_tau(k) = exp(-(t_k - ref)/tau) and E_tau[g] = exp((t_g - ref)/tau) (the factors
    of the sweeps), and the weight gradient is the frame correlated once with
    Q_i = sum over i's spikes of c coef_w (F_m W_m - F_s W_s) (W the C differences): the
    sweeps' terms, summed per spike and window instead of per event. dL/dt of the events
    (input_grad) sums, per group, the targets' coefficients of the window open at t_g.
    r_k (previous spike of i + t_ref) comes from one pass over the spikes, no edge lists.
    Returns the number of dropped spikes; S, D, g_in, g_w (the layer's (C_out, C_in, k, k)
    layout) are filled in."""
    n_ev = in_t.size
    n_spk = out_t.size
    co_n = geom[3]
    n_out = nid.size
    n_w = g_w.size
    # the groups, their factors and the prefix sums C (the frame: the last group's events)
    P = 0
    for m in range(n_ev):
        if m == 0 or in_t[m] != in_t[m - 1]:
            P += 1
    gt = np.empty(P)
    gm = np.empty(P)
    gs = np.empty(P)
    gg = np.empty(P)
    q = 0
    for m in range(n_ev):
        if m == 0 or in_t[m] != in_t[m - 1]:
            gt[q] = in_t[m]
            gm[q] = fm[m]
            gs[q] = fs[m]
            gg[q] = fg[m]
            q += 1
    Cm = np.zeros(P + 1)
    Cs = np.zeros(P + 1)
    Cg = np.zeros(P + 1)
    for g in range(P):
        Cm[g + 1] = Cm[g] + gm[g]
        Cs[g + 1] = Cs[g] + gs[g]
        Cg[g + 1] = Cg[g] + gg[g]
    e0 = glo[n_ev - 1]
    wk2 = wk.reshape((wk.size // co_n, co_n))
    R = np.zeros((n_out // co_n, co_n))
    _frame_correlate(in_i, in_v, e0, n_ev, geom, wk2, R)
    Rf = R.reshape(-1)
    # per spike: its window's groups and factors, and K
    last = np.full(n_out, -math.inf)
    g_lo = np.zeros(n_spk, np.int64)
    g_hi = np.zeros(n_spk, np.int64)
    Fkm = np.zeros(n_spk)
    Fks = np.zeros(n_spk)
    Fkg = np.zeros(n_spk)
    Km = np.zeros(n_spk)
    Ks = np.zeros(n_spk)
    Kg = np.zeros(n_spk)
    for k in range(n_spk):
        ni = nid[out_i[k]]
        tk = out_t[k]
        rk = last[ni]
        last[ni] = tk + t_ref
        hi = _groups_upto(gt, tk)
        lo = _groups_upto(gt, rk)
        if hi <= lo:   # no input in the window
            continue
        g_lo[k] = lo
        g_hi[k] = hi
        # t_k >= a group time >= ref: factors <= 1
        Fkm[k] = _decay(tk, ref, tau_m)
        Fks[k] = _decay(tk, ref, tau_s)
        x = Rf[ni]
        Km[k] = x * (Fkm[k] * (Cm[hi] - Cm[lo]))
        Ks[k] = x * (Fks[k] * (Cs[hi] - Cs[lo]))
        if exp_kernel:
            Fkg[k] = _decay(tk, ref, tau_grad)
            Kg[k] = x * (Fkg[k] * (Cg[hi] - Cg[lo]))
    coef_t, coef_w, n_dropped = _coefficients(Km, Ks, Kg, g_out, c, tau_m, tau_s, exp_kernel,
                                              drop_nonpositive, clamp, clamp_lo, clamp_hi, S, D)
    # weight gradient: Q per neuron, correlated with the frame once
    Q = np.zeros((n_out // co_n, co_n))
    Qf = Q.reshape(-1)
    for k in range(n_spk):
        lo = g_lo[k]
        hi = g_hi[k]
        if hi > lo:
            Qf[nid[out_i[k]]] += (c * coef_w[k]) * (Fkm[k] * (Cm[hi] - Cm[lo])
                                                     - Fks[k] * (Cs[hi] - Cs[lo]))
    g_k = np.zeros(n_w)
    gk = g_k.reshape((n_w // co_n, co_n))
    _frame_gradient(in_i, in_v, e0, n_ev, geom, Q, gk)
    g_w[:] = g_k.reshape((n_w // co_n, co_n)).T.ravel()
    if input_grad:
        # per group, each neuron's share coefficients of its window open at t_g
        G1 = np.zeros((P, n_out // co_n, co_n))
        G2 = np.zeros((P, n_out // co_n, co_n))
        for k in range(n_spk):
            ni = nid[out_i[k]]
            pos = ni // co_n
            co = ni - pos * co_n
            for g in range(g_lo[k], g_hi[k]):
                if exp_kernel:
                    G1[g, pos, co] = coef_t[k] * Fkg[k]
                else:
                    G1[g, pos, co] = coef_t[k] * (c / tau_s) * Fks[k]
                    G2[g, pos, co] = coef_t[k] * (c / tau_m) * Fkm[k]
        s1 = np.zeros(co_n)
        s2 = np.zeros(co_n)
        g = -1
        for m in range(n_ev):
            if m == 0 or in_t[m] != in_t[m - 1]:
                g += 1
            acc1, acc2 = _conv_time_sums(in_i[m], geom, wk2, G1[g], G2[g], s1, s2)
            if exp_kernel:
                g_in[m] = factor * eg[m] * acc1
            else:
                g_in[m] = factor * (es[m] * acc1 - em[m] * acc2)
    return n_dropped


@njit(cache=True, nogil=True)
def _channel_last(geom):
    """For each Conv2d output neuron i = (co, oy, ox) its index in the channel-last order
    (oy, ox, co) in which the conv sweeps keep the per-neuron state."""
    co_n = geom[3]
    hw = geom[4] * geom[5]
    nid = np.empty(co_n * hw, np.int64)
    for co in range(co_n):
        for p in range(hw):
            nid[co * hw + p] = p * co_n + co
    return nid


@njit(cache=True, nogil=True)
def _sweep_sums(in_t, in_i, in_v, em, es, eg, fm, fs, fg, ref_of, n_out, is_dense, geom, nid,
                indptr, targets, w, out_t, out_i, et, ek, eo, tau_m, tau_s, tau_grad, exp_kernel,
                glo, kind):
    """K_tau(k) = sum over W_k of w v exp(-(t_k - t_m)/tau), tau = tau_m, tau_s, tau_grad,
    and Fk: the factors exp(-(t_k - ref)/tau) of each spike whose window opens inside the
    event loop (sweep 2 opens the same windows at the same references and reuses them).
    The targets of an event: all neurons (is_dense), the CSR links (w per link) or the
    Conv2d geometry (geom not empty). A Conv2d layer keeps its per-neuron state channel-last:
    neuron i at nid[i] (``_channel_last``), w the weight as (C_in, k, k, C_out) flattened, so
    that the innermost loop runs over the output channels with contiguous state and weights
    (it vectorises). Each (event, neuron) pair gets the same operation as in any other
    order, and a neuron's sums run over the events in the same order: same results. A
    group of a frame run (kind, ``_frame_runs``) adds the frame's correlation R times the
    group's factors fm, fs, fg (no value) to every neuron instead."""
    n_ev = in_t.size
    n_spk = out_t.size
    n_edges = et.size
    Km = np.zeros(n_spk)
    Ks = np.zeros(n_spk)
    Kg = np.zeros(n_spk)
    Fk = np.zeros((n_spk, 3))   # factors of each window opened inside the event loop
    # per neuron: factors F of the open window (0 when closed), block accumulators A,
    # window sums X of the finished blocks
    Fm = np.zeros(n_out)
    Fs = np.zeros(n_out)
    Fg = np.zeros(n_out)
    Am = np.zeros(n_out)
    As = np.zeros(n_out)
    Ag = np.zeros(n_out)
    Xm = np.zeros(n_out)
    Xs = np.zeros(n_out)
    Xg = np.zeros(n_out)
    cur = np.full(n_out, -1, np.int64)
    # Conv2d: 2-d views (position, channel) of the channel-last state and (C_in k k, C_out)
    co_n = geom[3] if geom.size > 0 else 1
    A_m = Am.reshape((n_out // co_n, co_n))
    A_s = As.reshape((n_out // co_n, co_n))
    A_g = Ag.reshape((n_out // co_n, co_n))
    wk = w.reshape((w.size // co_n, co_n))
    n_fr = n_out if _any(kind) else 0
    R = np.zeros((n_fr // co_n, co_n))
    Rf = R.reshape(-1)
    ref = math.nan
    b = 0
    m = n_ev - 1
    while m >= 0:
        tm = in_t[m]
        if ref_of[m] != ref:
            if not math.isnan(ref):   # fold the block into X, move F to the new reference
                rm = math.exp(-(ref - ref_of[m]) / tau_m)
                rs = math.exp(-(ref - ref_of[m]) / tau_s)
                rg = math.exp(-(ref - ref_of[m]) / tau_grad) if exp_kernel else 0.0
                for i in range(n_out):
                    Xm[i] += Fm[i] * Am[i]
                    Xs[i] += Fs[i] * As[i]
                    Fm[i] = _flush(Fm[i] * rm)
                    Fs[i] = _flush(Fs[i] * rs)
                    Am[i] = 0.0
                    As[i] = 0.0
                if exp_kernel:
                    for i in range(n_out):
                        Xg[i] += Fg[i] * Ag[i]
                        Fg[i] = _flush(Fg[i] * rg)
                        Ag[i] = 0.0
            ref = ref_of[m]
        while b < n_edges and et[b] >= tm:
            k = ek[b]
            i = out_i[k] if nid.size == 0 else nid[out_i[k]]
            if eo[b]:      # window of k opens (walking back): earlier sums were in a gap
                cur[i] = k
                Fm[i] = Fk[k, 0] = _decay(out_t[k], ref, tau_m)
                Fs[i] = Fk[k, 1] = _decay(out_t[k], ref, tau_s)
                Fg[i] = Fk[k, 2] = _decay(out_t[k], ref, tau_grad) if exp_kernel else 0.0
                Xm[i] = Xs[i] = Xg[i] = 0.0
            else:          # window of k closes
                Km[k] = Xm[i] + Fm[i] * Am[i]
                Ks[k] = Xs[i] + Fs[i] * As[i]
                Kg[k] = Xg[i] + Fg[i] * Ag[i]
                cur[i] = -1
                Fm[i] = Fs[i] = Fg[i] = 0.0
            Am[i] = As[i] = Ag[i] = 0.0
            b += 1
        if kind.size > 0 and kind[m] & FRAME:
            # a group of a frame run, all its events at once: R (of the run's latest group,
            # the first one met) times the group's factors
            if kind[m] & FRAME_TOP:
                _frame_correlate(in_i, in_v, glo[m], m + 1, geom, wk, R)
            f_m = fm[m]
            f_s = fs[m]
            f_g = fg[m]
            if exp_kernel:
                for i in range(n_out):
                    x = Rf[i]
                    Am[i] += x * f_m
                    As[i] += x * f_s
                    Ag[i] += x * f_g
            else:
                for i in range(n_out):
                    x = Rf[i]
                    Am[i] += x * f_m
                    As[i] += x * f_s
            m = glo[m] - 1
            continue
        j = in_i[m]
        a_m = em[m]
        a_s = es[m]
        a_g = eg[m]
        if is_dense:
            # the row as a slice: numba then vectorises the loop (indexing w[base + i] kept
            # it scalar, 2x slower); the same adds in the same order
            row = w[j * n_out:(j + 1) * n_out]
            if exp_kernel:
                for i in range(n_out):
                    wi = row[i]
                    Am[i] += wi * a_m
                    As[i] += wi * a_s
                    Ag[i] += wi * a_g
            else:
                for i in range(n_out):
                    wi = row[i]
                    Am[i] += wi * a_m
                    As[i] += wi * a_s
        elif geom.size > 0:
            ci, y, x, oy0, oy1, ox0, ox1 = _conv_span(j, geom)
            Wo = geom[5]
            k = geom[6]
            st = geom[7]
            yp = y + geom[8]
            xp = x + geom[8]
            for oy in range(oy0, oy1 + 1):
                wr = (ci * k + yp - oy * st) * k + xp
                for ox in range(ox0, ox1 + 1):
                    pos = oy * Wo + ox
                    r = wr - ox * st
                    if exp_kernel:
                        for co in range(co_n):
                            wi = wk[r, co]
                            A_m[pos, co] += wi * a_m
                            A_s[pos, co] += wi * a_s
                            A_g[pos, co] += wi * a_g
                    else:
                        for co in range(co_n):
                            wi = wk[r, co]
                            A_m[pos, co] += wi * a_m
                            A_s[pos, co] += wi * a_s
        else:
            for q in range(indptr[j], indptr[j + 1]):
                i = targets[q]
                wi = w[q]
                Am[i] += wi * a_m
                As[i] += wi * a_s
                Ag[i] += wi * a_g
        m -= 1
    # edges before the first input event: no event is left, windows close with what they hold
    while b < n_edges:
        k = ek[b]
        i = out_i[k] if nid.size == 0 else nid[out_i[k]]
        if eo[b]:
            cur[i] = k
            Fm[i] = Fs[i] = Fg[i] = 0.0
            Xm[i] = Xs[i] = Xg[i] = 0.0
        else:
            Km[k] = Xm[i] + Fm[i] * Am[i]
            Ks[k] = Xs[i] + Fs[i] * As[i]
            Kg[k] = Xg[i] + Fg[i] * Ag[i]
            cur[i] = -1
            Fm[i] = Fs[i] = Fg[i] = 0.0
        Am[i] = As[i] = Ag[i] = 0.0
        b += 1
    for i in range(n_out):   # windows that start at -inf (first spikes)
        k = cur[i]
        if k >= 0:
            Km[k] = Xm[i] + Fm[i] * Am[i]
            Ks[k] = Xs[i] + Fs[i] * As[i]
            Kg[k] = Xg[i] + Fg[i] * Ag[i]
    return Km, Ks, Kg, Fk


@njit(cache=True, nogil=True)
def _sweep_assign(in_t, in_i, in_v, em, es, eg, fm, fs, ref_of, n_out, is_dense, geom, nid,
                  indptr, targets, widx, w, out_t, out_i, et, ek, eo, Fk, tau_m, tau_s, tau_grad,
                  exp_kernel, c, coef_t, coef_w, input_grad, factor, g_in, g_w, glo, kind):
    """Adds the shares (Eq. 12-13, into g_in when input_grad) and the weight gradient
    (Eq. 14, into g_w) of every pair. Conv2d (geom not empty): state channel-last, w and
    g_w as (C_in, k, k, C_out) flattened (see ``_sweep_sums``); dL/dt of an input event sums
    over its targets by output channel, then over the channels (the CSR path sums in target
    order: the same value up to rounding). The groups of a frame run (kind,
    ``_frame_runs``) sum P_m fm - P_s fs over the run into Q, correlated with the frame once
    at the run's earliest group (the same terms, summed in another order); their events'
    dL/dt are those of the per-event path, bit for bit (``_conv_time_sums``)."""
    n_ev = in_t.size
    n_edges = et.size
    # per neuron: exponential factors of the open window (0 when closed) and the
    # coefficients of its spike: weight gradient P = c coef_w F_{m,s}; share
    # G1 = coef_t F_g ("exp") or coef_t c/tau_s F_s and G2 = coef_t c/tau_m F_m ("depsilon")
    Fm = np.zeros(n_out)
    Fs = np.zeros(n_out)
    Fg = np.zeros(n_out)
    cw = np.zeros(n_out)
    ct = np.zeros(n_out)
    Pm = np.zeros(n_out)
    Ps = np.zeros(n_out)
    G1 = np.zeros(n_out)
    G2 = np.zeros(n_out)
    co_n = geom[3] if geom.size > 0 else 1   # Conv2d: 2-d views as in _sweep_sums
    P_m = Pm.reshape((n_out // co_n, co_n))
    P_s = Ps.reshape((n_out // co_n, co_n))
    G_1 = G1.reshape((n_out // co_n, co_n))
    G_2 = G2.reshape((n_out // co_n, co_n))
    gk = g_w.reshape((g_w.size // co_n, co_n))
    wk = w.reshape((w.size // co_n, co_n))
    s1 = np.zeros(co_n)   # per-channel partial sums of an event's dL/dt (Conv2d)
    s2 = np.zeros(co_n)
    framed = _any(kind)
    Q = np.zeros((n_out // co_n if framed else 0, co_n))
    Qf = Q.reshape(-1)
    ref = math.nan
    b = 0
    m = n_ev - 1
    while m >= 0:
        tm = in_t[m]
        if ref_of[m] != ref:
            if not math.isnan(ref):
                rm = math.exp(-(ref - ref_of[m]) / tau_m)
                rs = math.exp(-(ref - ref_of[m]) / tau_s)
                rg = math.exp(-(ref - ref_of[m]) / tau_grad) if exp_kernel else 0.0
                for i in range(n_out):
                    Fm[i] = _flush(Fm[i] * rm)
                    Fs[i] = _flush(Fs[i] * rs)
                    Pm[i] = cw[i] * Fm[i]
                    Ps[i] = cw[i] * Fs[i]
                if exp_kernel:
                    for i in range(n_out):
                        Fg[i] = _flush(Fg[i] * rg)
                        G1[i] = ct[i] * Fg[i]
                else:
                    for i in range(n_out):
                        G1[i] = ct[i] * (c / tau_s) * Fs[i]
                        G2[i] = ct[i] * (c / tau_m) * Fm[i]
            ref = ref_of[m]
        while b < n_edges and et[b] >= tm:
            k = ek[b]
            i = out_i[k] if nid.size == 0 else nid[out_i[k]]
            if eo[b]:
                Fm[i] = Fk[k, 0]   # sweep 1's factors: the same edge, the same reference
                Fs[i] = Fk[k, 1]
                Fg[i] = Fk[k, 2]
                cw[i] = c * coef_w[k]
                ct[i] = coef_t[k]
            else:
                Fm[i] = Fs[i] = Fg[i] = cw[i] = ct[i] = 0.0
            Pm[i] = cw[i] * Fm[i]
            Ps[i] = cw[i] * Fs[i]
            if exp_kernel:
                G1[i] = ct[i] * Fg[i]
            else:
                G1[i] = ct[i] * (c / tau_s) * Fs[i]
                G2[i] = ct[i] * (c / tau_m) * Fm[i]
            b += 1
        if framed and kind[m] & FRAME:
            f_m = fm[m]
            f_s = fs[m]
            for i in range(n_out):
                Qf[i] += Pm[i] * f_m - Ps[i] * f_s
            if input_grad:   # dL/dt of each event of the group, as on the per-event path
                for q in range(glo[m], m + 1):
                    acc1, acc2 = _conv_time_sums(in_i[q], geom, wk, G_1, G_2, s1, s2)
                    if exp_kernel:
                        g_in[q] = factor * eg[q] * acc1
                    else:
                        g_in[q] = factor * (es[q] * acc1 - em[q] * acc2)
            if kind[m] & FRAME_BOTTOM:
                _frame_gradient(in_i, in_v, glo[m], m + 1, geom, Q, gk)
                Qf[:] = 0.0
            m = glo[m] - 1
            continue
        j = in_i[m]
        a_m = em[m]
        a_s = es[m]
        if is_dense:
            base = j * n_out
            g_row = g_w[base:base + n_out]   # a slice: the loop vectorises (as in sweep 1)
            for i in range(n_out):
                g_row[i] += Pm[i] * a_m - Ps[i] * a_s
            if input_grad:
                if exp_kernel:
                    g_in[m] = factor * eg[m] * _dot(w, base, G1, n_out)
                else:
                    g_in[m] = factor * (a_s * _dot(w, base, G1, n_out)
                                        - a_m * _dot(w, base, G2, n_out))
        elif geom.size > 0:
            ci, y, x, oy0, oy1, ox0, ox1 = _conv_span(j, geom)
            Wo = geom[5]
            k = geom[6]
            st = geom[7]
            yp = y + geom[8]
            xp = x + geom[8]
            if not input_grad:
                for oy in range(oy0, oy1 + 1):
                    wr = (ci * k + yp - oy * st) * k + xp
                    for ox in range(ox0, ox1 + 1):
                        pos = oy * Wo + ox
                        r = wr - ox * st
                        for co in range(co_n):
                            gk[r, co] += P_m[pos, co] * a_m - P_s[pos, co] * a_s
            else:
                # dL/dt of the event in the same pass: one partial sum per output channel
                # (contiguous rows, it vectorises), then the sum over the channels; the "exp"
                # kernel has no G2 (it stays 0): its sum is skipped
                for co in range(co_n):
                    s1[co] = 0.0
                    s2[co] = 0.0
                for oy in range(oy0, oy1 + 1):
                    wr = (ci * k + yp - oy * st) * k + xp
                    for ox in range(ox0, ox1 + 1):
                        pos = oy * Wo + ox
                        r = wr - ox * st
                        if exp_kernel:
                            for co in range(co_n):
                                gk[r, co] += P_m[pos, co] * a_m - P_s[pos, co] * a_s
                                s1[co] += wk[r, co] * G_1[pos, co]
                        else:
                            for co in range(co_n):
                                gk[r, co] += P_m[pos, co] * a_m - P_s[pos, co] * a_s
                                wi = wk[r, co]
                                s1[co] += wi * G_1[pos, co]
                                s2[co] += wi * G_2[pos, co]
                acc1 = 0.0
                acc2 = 0.0
                for co in range(co_n):
                    acc1 += s1[co]
                    acc2 += s2[co]
                if exp_kernel:
                    g_in[m] = factor * eg[m] * acc1
                else:
                    g_in[m] = factor * (a_s * acc1 - a_m * acc2)
        elif input_grad:
            acc1 = 0.0
            acc2 = 0.0
            for q in range(indptr[j], indptr[j + 1]):
                i = targets[q]
                g_w[widx[q]] += Pm[i] * a_m - Ps[i] * a_s
                acc1 += w[q] * G1[i]
                acc2 += w[q] * G2[i]
            if exp_kernel:
                g_in[m] = factor * eg[m] * acc1
            else:
                g_in[m] = factor * (a_s * acc1 - a_m * acc2)
        else:
            for q in range(indptr[j], indptr[j + 1]):
                i = targets[q]
                g_w[widx[q]] += Pm[i] * a_m - Ps[i] * a_s
        m -= 1


@njit(cache=True, nogil=True)
def _conv_time_sums(j, geom, wk, G_1, G_2, s1, s2):
    """The sums over input neuron j's targets of w G1 and w G2 (per output channel first,
    then over the channels: the order of the per-event path of ``_sweep_assign``)."""
    co_n = geom[3]
    Wo = geom[5]
    k = geom[6]
    st = geom[7]
    ci, y, x, oy0, oy1, ox0, ox1 = _conv_span(j, geom)
    yp = y + geom[8]
    xp = x + geom[8]
    for co in range(co_n):
        s1[co] = 0.0
        s2[co] = 0.0
    for oy in range(oy0, oy1 + 1):
        wr = (ci * k + yp - oy * st) * k + xp
        for ox in range(ox0, ox1 + 1):
            pos = oy * Wo + ox
            r = wr - ox * st
            for co in range(co_n):
                wi = wk[r, co]
                s1[co] += wi * G_1[pos, co]
                s2[co] += wi * G_2[pos, co]
    acc1 = 0.0
    acc2 = 0.0
    for co in range(co_n):
        acc1 += s1[co]
        acc2 += s2[co]
    return acc1, acc2


@njit(cache=True, nogil=True)
def _any(x):
    for v in x:
        if v != 0:
            return True
    return False


@njit(cache=True, nogil=True)
def _conv_span(j, geom):
    """Input neuron j of a Conv2d layer (geom as in ``conv_backward``): its channel and
    position (ci, y, x) and the output rows oy0..oy1 and columns ox0..ox1 (inclusive) whose
    receptive fields hold it: oy * stride - padding + ky = y for some 0 <= ky < k."""
    return input_span(j, geom[1] * geom[2], geom[2], geom[4], geom[5], geom[6], geom[7], geom[8])


@njit(cache=True, nogil=True)
def _dot(w, base, x, n):
    """sum_i w[base + i] x[i] with eight interleaved partial sums (a fixed order, so the
    result depends on nothing but the inputs; the independent chains run in parallel)."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    n8 = n - n % 8
    for i in range(0, n8, 8):
        s0 += w[base + i] * x[i]
        s1 += w[base + i + 1] * x[i + 1]
        s2 += w[base + i + 2] * x[i + 2]
        s3 += w[base + i + 3] * x[i + 3]
        s4 += w[base + i + 4] * x[i + 4]
        s5 += w[base + i + 5] * x[i + 5]
        s6 += w[base + i + 6] * x[i + 6]
        s7 += w[base + i + 7] * x[i + 7]
    for i in range(n8, n):
        s0 += w[base + i] * x[i]
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
