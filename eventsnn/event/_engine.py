"""numba kernels of the event engine, one layer at a time.

A Sequential network is feed-forward, so layer l's spikes depend only on layer l-1's
events: the engine runs the layers in order, each over its complete, time-sorted input
stream, and gets the same result as one global queue over all layers (the reference engine
uses such a global queue; tests compare the two).

Neuron state is two traces M, S at a reference time t0; u(t) = c (M e^{-(t-t0)/tau_m} -
S e^{-(t-t0)/tau_s}). After a spike the reference time moves to r = t_spike + t_ref:
- full reset: M = S = 0 and inputs at times <= r are discarded;
- membrane reset: M = S = S(r), so u(r) = 0 while the current keeps decaying; an input at
  t < r adds w v e^{-(r-t)/tau_s} to both traces (its current at r).
At one time, pending crossings fire first (an input does not change u at its own time,
only its slope), then all coincident inputs are applied, then crossings are predicted.

Two layer kernels implement this: ``dense_layer`` sweeps every target of an input event (all
neurons of a Dense layer are touched by every event) with traces on one common reference
time, bounds u once per window of several input events and replays only the neurons that
may cross; ``sparse_layer`` keeps per-neuron state and a heap of
predicted crossings, for layers whose events touch few targets (Conv2d).
"""
import math

import numpy as np
from numba import njit

from ._crossing import first_crossing, newton_crossing, rise_bound
from ._fma import fma
from ._queue import heap_new, heap_pop, heap_remove, heap_set, heap_size, heap_top


@njit(cache=True, nogil=True)
def _grow(times, idx, n):
    if n < times.size:
        return times, idx
    t2 = np.empty(2 * times.size + 16, np.float64)
    i2 = np.empty(2 * times.size + 16, np.int64)
    t2[:n] = times[:n]
    i2[:n] = idx[:n]
    return t2, i2


@njit(cache=True, nogil=True)
def _sorted_output(times, idx, n):
    """Trim and sort spikes by (time, neuron)."""
    t = times[:n].copy()
    i = idx[:n].copy()
    order = np.argsort(i, kind="mergesort")
    t = t[order]
    i = i[order]
    order = np.argsort(t, kind="mergesort")
    return t[order], i[order]


#: bytes of weights per neuron block of a Dense layer (``dense_block_size``): a block's
#: columns of W.T, read for every input event, should stay in the cache (L2 1 MB / L3 32 MB
#: here). Measured on W1 (1000 inputs, benchmarks/event_sim.py): at 1000 neurons one 8 MB
#: block took 0.89x the time of two 4 MB blocks, at 4000 neurons blocks of 8 MB (1024
#: neurons) 0.93x that of 4 MB blocks; smaller blocks repeat each window's fixed work more
DENSE_BLOCK_BYTES = 8 << 20


@njit(cache=True, nogil=True)
def dense_block_size(n_in, n_out):
    """Output neurons per block: all of them when the weights fit DENSE_BLOCK_BYTES, else
    blocks of a multiple of 64 neurons whose weights fit it (the last block may be smaller)."""
    if n_in * n_out * 8 <= DENSE_BLOCK_BYTES:
        return max(n_out, 1)
    return max(64, (DENSE_BLOCK_BYTES // (8 * max(n_in, 1))) // 64 * 64)


@njit(cache=True, nogil=True)
def _add_into(Mi, Si, Mo, So, row, wm, ws):
    """Mo = Mi + x wm, So = Si + x ws for x = row, each a fused multiply-add (Mi, Si: the
    state before a window, kept for replays; Mo, So: the state after it)."""
    for i in range(Mi.size):
        x = row[i]
        Mo[i] = fma(x, wm, Mi[i])
        So[i] = fma(x, ws, Si[i])


@njit(cache=True, nogil=True)
def _add(M, S, row, wm, ws):
    """M += x wm, S += x ws (fused multiply-adds) for x = row: an input of value v at time t
    in the frame of G (wm = v e^{(t - G)/tau_m}, ws = v e^{(t - G)/tau_s})."""
    for i in range(M.size):
        x = row[i]
        M[i] = fma(x, wm, M[i])
        S[i] = fma(x, ws, S[i])


@njit(cache=True, nogil=True)
def _add_pos(M, S, P, row, wm, ws):
    """_add, and P += the positive part of each neuron's M increment."""
    for i in range(M.size):
        x = row[i]
        M[i] = fma(x, wm, M[i])
        S[i] = fma(x, ws, S[i])
        P[i] += max(x * wm, 0.0)


@njit(cache=True, nogil=True)
def _add_pos2(M, S, P, row1, wm1, ws1, row2, wm2, ws2):
    """_add_pos for two inputs in one pass (the same operations in the same order)."""
    for i in range(M.size):
        x1 = row1[i]
        x2 = row2[i]
        M[i] = fma(x2, wm2, fma(x1, wm1, M[i]))
        S[i] = fma(x2, ws2, fma(x1, ws1, S[i]))
        P[i] = (P[i] + max(x1 * wm1, 0.0)) + max(x2 * wm2, 0.0)


@njit(cache=True, nogil=True)
def _add_pos4(M, S, P, r1, wm1, ws1, r2, wm2, ws2, r3, wm3, ws3, r4, wm4, ws4):
    """_add_pos for four inputs in one pass (the same operations in the same order)."""
    for i in range(M.size):
        x1 = r1[i]
        x2 = r2[i]
        x3 = r3[i]
        x4 = r4[i]
        M[i] = fma(x4, wm4, fma(x3, wm3, fma(x2, wm2, fma(x1, wm1, M[i]))))
        S[i] = fma(x4, ws4, fma(x3, ws3, fma(x2, ws2, fma(x1, ws1, S[i]))))
        P[i] = (((P[i] + max(x1 * wm1, 0.0)) + max(x2 * wm2, 0.0)) + max(x3 * wm3, 0.0)
                + max(x4 * wm4, 0.0))


@njit(cache=True, nogil=True, inline="always")
def _headroom(M, S, dm, ds, a, b, c, itau_m, itau_s, theta):
    """theta minus a bound of u over a window from the traces alone (M, S in the frame of G;
    dm, ds bring them to the window's first time; a, b = e^{-span/tau} over the window;
    itau = 1/tau). u = A e^{-s/tau_m} + B e^{-s/tau_s} and its slope are sums of two
    exponentials, each with at most one zero: unless the slope falls from >= 0 at the start
    to <= 0 at the end (a maximum inside), u is largest at an end. A maximum inside has the
    value M e^{-s*/tau_m} <= max(M, 0) and is below the sum of each term's larger end
    value. The rounding is covered by a margin of 1e-9 (|A| + |B|); the slope tests have a
    tolerance of that margin times max(1/tau) (at least 1e-9 (|A|/tau_m + |B|/tau_s)), so
    an end value is kept only where the slope's sign is certain, and the inner bound (valid
    everywhere) elsewhere. Branch-free; the factors c dm, -c ds, max(1/tau) are the same
    for every neuron (hoisted out of the window pass's loop), so a neuron costs a few
    operations less than with c applied per neuron. (A true bound of u, not only a test
    against theta > 0: the caller adds the later inputs to it.)"""
    m = M * dm
    A = M * (c * dm)
    B = S * (-c * ds)
    Aa = A * a
    Bb = B * b
    # slopes times -1 at both ends
    d0 = A * itau_m + B * itau_s
    d1 = Aa * itau_m + Bb * itau_s
    margin = 1e-9 * (abs(A) + abs(B))
    tol = margin * max(itau_m, itau_s)
    inner = (d0 < tol) & (d1 > -tol)   # & and a select, not branches: replays mispredicted them
    ub = max(A + B, Aa + Bb)
    ub_in = min(max(A, Aa) + max(B, Bb), max(ub, m, 0.0))
    ub = ub_in if inner else ub
    return theta - ub - margin


@njit(cache=True, nogil=True, inline="always")
def _headroom_coarse(M, S, dm, ds, a, b, c, theta):
    """A lower bound of ``_headroom`` (the same arguments but the 1/tau) in fewer
    operations: theta minus each term's larger end value, max(A, A a) + max(B, B b), minus
    the same margin. The operands are computed as in ``_headroom`` and that sum is its inner
    bound's first term, so in floating point too it is >= ``_headroom``'s bound in both of
    its cases (rounding is monotone: A + B <= max(A, A a) + max(B, B b) rounds to no
    more), and the result is <= ``_headroom``'s bit for bit: a neuron whose flag test
    passes with ``_headroom`` passes with it (``_window8`` uses it, ``_exact_flag8`` then
    decides with ``_headroom``)."""
    A = M * (c * dm)
    B = S * (-c * ds)
    margin = 1e-9 * (abs(A) + abs(B))
    return theta - (max(A, A * a) + max(B, B * b)) - margin


@njit(cache=True, nogil=True)
def _bound(M, S, H, P, dm, ds, a, b, c, itau_m, itau_s, theta):
    """H = ``_headroom`` of every neuron, P = 0."""
    for i in range(M.size):
        H[i] = _headroom(M[i], S[i], dm, ds, a, b, c, itau_m, itau_s, theta)
        P[i] = 0.0


@njit(cache=True, nogil=True)
def _copy_bound(Mi, Si, Mo, So, H, P, dm, ds, a, b, c, itau_m, itau_s, theta):
    """_bound of Mi, Si (the state before a window, kept for replays), and Mo, So = Mi, Si
    (the state the window's inputs are added to)."""
    for i in range(Mi.size):
        m = Mi[i]
        s = Si[i]
        Mo[i] = m
        So[i] = s
        H[i] = _headroom(m, s, dm, ds, a, b, c, itau_m, itau_s, theta)
        P[i] = 0.0


@njit(cache=True, nogil=True)
def _flag(P, H, E, flag):
    """flag[i] = P[i] E >= H[i]: the later inputs of the window (positive parts P, each
    adding at most E times itself to u) may lift u to theta. Returns the number flagged."""
    n = 0
    for i in range(P.size):
        hit = P[i] * E >= H[i]
        flag[i] = hit
        n += hit
    return n


@njit(cache=True, nogil=True)
def _window8(Mi, Si, Mo, So, flag, WT, in_i, lo, hi, wm, ws, qW, e, dm, ds, a, b, c, itau_m,
             itau_s, theta):
    """One pass for the common window: one input at its first time and 8 input events
    e..e+7 in all (their rows of WT, columns lo..hi-1, read as slices: fewer arguments to
    pass), from the state Mi, Si before the window (kept for
    replays) to the state after it, Mo, So. Fuses _copy_bound, the sweeps with their
    positive parts and _flag: the same fused multiply-adds in the same order on the traces,
    so the same bits, but each neuron's state is read and written once per window, and H,
    P stay in registers. The flag test weighs each input's positive part with its own
    remaining span (``_dense_windows``' per-event qW, which includes wm: an input of
    weight x adds at most max(x qW, 0)) instead of the window's: fewer neurons are replayed.
    The flags are coarse: the bound is ``_headroom_coarse`` (a third of ``_headroom``'s
    operations; W1: 23,409 flagged neuron-windows instead of 8,686), a superset of the
    flags of the full bound bit for bit; the caller decides each flagged neuron with
    ``_exact_flag8`` (the full bound and the same positive-part sum), so the neurons
    replayed are exactly those ``_headroom`` flags. Returns the number flagged."""
    r1, r2, r3, r4 = WT[in_i[e], lo:hi], WT[in_i[e + 1], lo:hi], WT[in_i[e + 2], lo:hi], WT[in_i[e + 3], lo:hi]
    r5, r6, r7, r8 = WT[in_i[e + 4], lo:hi], WT[in_i[e + 5], lo:hi], WT[in_i[e + 6], lo:hi], WT[in_i[e + 7], lo:hi]
    E1, E2, E3, E4 = qW[e], qW[e + 1], qW[e + 2], qW[e + 3]
    E5, E6, E7, E8 = qW[e + 4], qW[e + 5], qW[e + 6], qW[e + 7]
    wm1, wm2, wm3, wm4 = wm[e], wm[e + 1], wm[e + 2], wm[e + 3]
    wm5, wm6, wm7, wm8 = wm[e + 4], wm[e + 5], wm[e + 6], wm[e + 7]
    ws1, ws2, ws3, ws4 = ws[e], ws[e + 1], ws[e + 2], ws[e + 3]
    ws5, ws6, ws7, ws8 = ws[e + 4], ws[e + 5], ws[e + 6], ws[e + 7]
    n = 0
    if min(min(min(E1, E2), min(E3, E4)), min(min(E5, E6), min(E7, E8))) >= 0.0:
        # every flag weight >= 0 (inputs of positive value, as in W1): max(x E, 0) =
        # E max(x, 0), and inputs taken in pairs, E_a x_a+ + E_b x_b+ <= max(E_a, E_b)
        # (x_a+ + x_b+): 4 multiplies per neuron instead of 8. The E of a window fall with
        # the time left after each input, so a pair's larger E is about its first one's and
        # few more neurons are flagged (W1: +6 %). The rounding of these few sums (summed
        # with fused multiply-adds) is far inside the (1 + 1e-9) slack of qW.
        F1, F2, F3, F4 = max(E1, E2), max(E3, E4), max(E5, E6), max(E7, E8)
        for i in range(Mi.size):
            m = Mi[i]
            s = Si[i]
            h = _headroom_coarse(m, s, dm, ds, a, b, c, theta)
            x1 = r1[i]
            x2 = r2[i]
            x3 = r3[i]
            x4 = r4[i]
            m = fma(x4, wm4, fma(x3, wm3, fma(x2, wm2, fma(x1, wm1, m))))
            s = fma(x4, ws4, fma(x3, ws3, fma(x2, ws2, fma(x1, ws1, s))))
            p = fma(F2, max(x3, 0.0) + max(x4, 0.0), F1 * (max(x1, 0.0) + max(x2, 0.0)))
            x1 = r5[i]
            x2 = r6[i]
            x3 = r7[i]
            x4 = r8[i]
            Mo[i] = fma(x4, wm8, fma(x3, wm7, fma(x2, wm6, fma(x1, wm5, m))))
            So[i] = fma(x4, ws8, fma(x3, ws7, fma(x2, ws6, fma(x1, ws5, s))))
            p = fma(F4, max(x3, 0.0) + max(x4, 0.0), fma(F3, max(x1, 0.0) + max(x2, 0.0), p))
            hit = p >= h
            flag[i] = hit
            n += hit
        return n
    for i in range(Mi.size):
        m = Mi[i]
        s = Si[i]
        h = _headroom_coarse(m, s, dm, ds, a, b, c, theta)
        x1 = r1[i]
        x2 = r2[i]
        x3 = r3[i]
        x4 = r4[i]
        m = fma(x4, wm4, fma(x3, wm3, fma(x2, wm2, fma(x1, wm1, m))))
        s = fma(x4, ws4, fma(x3, ws3, fma(x2, ws2, fma(x1, ws1, s))))
        p = ((max(x1 * E1, 0.0) + max(x2 * E2, 0.0)) + max(x3 * E3, 0.0)) + max(x4 * E4, 0.0)
        x1 = r5[i]
        x2 = r6[i]
        x3 = r7[i]
        x4 = r8[i]
        Mo[i] = fma(x4, wm8, fma(x3, wm7, fma(x2, wm6, fma(x1, wm5, m))))
        So[i] = fma(x4, ws8, fma(x3, ws7, fma(x2, ws6, fma(x1, ws5, s))))
        p = ((((p + max(x1 * E5, 0.0)) + max(x2 * E6, 0.0)) + max(x3 * E7, 0.0))
             + max(x4 * E8, 0.0))
        hit = p >= h
        flag[i] = hit
        n += hit
    return n


@njit(cache=True, nogil=True, inline="always")
def _exact_flag8(i, e, WT, in_i, lo, qW, m, s, dm, ds, a, b, c, itau_m, itau_s, theta):
    """The flag ``_window8`` would set for neuron i (of the block starting at lo) with the
    full bound ``_headroom`` in place of the coarse one: the same positive-part sum p of
    events e..e+7 (weights WT[in_i[q], lo + i]; the same operations in the same order as
    the branch ``_window8`` takes for these qW) and the bound from the state before the
    window m, s, bit for bit; True when p >= the bound."""
    E1, E2, E3, E4 = qW[e], qW[e + 1], qW[e + 2], qW[e + 3]
    E5, E6, E7, E8 = qW[e + 4], qW[e + 5], qW[e + 6], qW[e + 7]
    x1 = WT[in_i[e], lo + i]
    x2 = WT[in_i[e + 1], lo + i]
    x3 = WT[in_i[e + 2], lo + i]
    x4 = WT[in_i[e + 3], lo + i]
    x5 = WT[in_i[e + 4], lo + i]
    x6 = WT[in_i[e + 5], lo + i]
    x7 = WT[in_i[e + 6], lo + i]
    x8 = WT[in_i[e + 7], lo + i]
    if min(min(min(E1, E2), min(E3, E4)), min(min(E5, E6), min(E7, E8))) >= 0.0:
        F1, F2, F3, F4 = max(E1, E2), max(E3, E4), max(E5, E6), max(E7, E8)
        p = fma(F2, max(x3, 0.0) + max(x4, 0.0), F1 * (max(x1, 0.0) + max(x2, 0.0)))
        p = fma(F4, max(x7, 0.0) + max(x8, 0.0), fma(F3, max(x5, 0.0) + max(x6, 0.0), p))
    else:
        p = ((max(x1 * E1, 0.0) + max(x2 * E2, 0.0)) + max(x3 * E3, 0.0)) + max(x4 * E4, 0.0)
        p = ((((p + max(x5 * E5, 0.0)) + max(x6 * E6, 0.0)) + max(x7 * E7, 0.0))
             + max(x8 * E8, 0.0))
    return p >= _headroom(m, s, dm, ds, a, b, c, itau_m, itau_s, theta)


@njit(cache=True, nogil=True)
def _sweep_window(Mi, Si, M, S, H, P, flag, WT, lo, hi, in_i, wm, ws, e0, e1, e2, dm, ds, a,
                  b, c, itau_m, itau_s, theta, E):
    """The inputs e0..e2-1 of a window (its first group e0..e1-1) on every neuron of a
    block, from the state before the window Mi, Si (left as it is, for replays) to the
    state after it, M, S: the bound of u over the window (H), the positive parts of the
    later M increments (P), and the flags (``_flag``; returns their number). ``_window8``
    does the same in one pass for the common window shape."""
    if e1 - e0 == 1:
        # one input at the first time: the bound from the state before the window, the
        # inputs all count in P (E over the whole window)
        _copy_bound(Mi, Si, M, S, H, P, dm, ds, a, b, c, itau_m, itau_s, theta)
        q = e0
    else:
        # coincident inputs at the first time: added first, then the bound
        _add_into(Mi, Si, M, S, WT[in_i[e0], lo:hi], wm[e0], ws[e0])
        for q in range(e0 + 1, e1):
            _add(M, S, WT[in_i[q], lo:hi], wm[q], ws[q])
        _bound(M, S, H, P, dm, ds, a, b, c, itau_m, itau_s, theta)
        q = e1
    while q + 3 < e2:
        _add_pos4(M, S, P, WT[in_i[q], lo:hi], wm[q], ws[q], WT[in_i[q + 1], lo:hi], wm[q + 1], ws[q + 1],
                  WT[in_i[q + 2], lo:hi], wm[q + 2], ws[q + 2], WT[in_i[q + 3], lo:hi], wm[q + 3], ws[q + 3])
        q += 4
    if q + 1 < e2:
        _add_pos2(M, S, P, WT[in_i[q], lo:hi], wm[q], ws[q], WT[in_i[q + 1], lo:hi], wm[q + 1], ws[q + 1])
        q += 2
    if q < e2:
        _add_pos(M, S, P, WT[in_i[q], lo:hi], wm[q], ws[q])
    return _flag(P, H, E, flag)


#: input events per window of a Dense layer (``_dense_windows``): one bound of u per window
#: instead of one per input time; measured with benchmarks/event_sim.py
DENSE_WINDOW_EVENTS = 8


@njit(cache=True, nogil=True)
def _eps_peak(span, tau_m, tau_s):
    """max of eps(s) = c (e^{-s/tau_m} - e^{-s/tau_s}) over 0 <= s <= span (eps rises to
    its peak at s* = ln(tau_m/tau_s) / (1/tau_s - 1/tau_m), then falls)."""
    c = tau_m / (tau_m - tau_s)
    s_star = math.log(tau_m / tau_s) / (1.0 / tau_s - 1.0 / tau_m)
    s = min(span, s_star)
    return max(c * (math.exp(-s / tau_m) - math.exp(-s / tau_s)), 0.0)


@njit(cache=True, nogil=True)
def _dense_windows(in_t, in_v, t_end, tau_m, tau_s, window):
    """The schedule of a Dense layer's input, shared by all neuron blocks.

    Groups of coincident input events at or before t_end: group g is the events
    gs[g]:gs[g+1] at time gt[g]; gn[g] is the next group's time (t_end after the last);
    ga, gb = e^{-(gn - gt)/tau}. Traces are kept in the frame of a reference time gG[g]
    (epochs: G moves to a group's time when (t - G) / min(tau) would exceed EPOCH_EXP, as
    in sparse_layer); gdm, gds = e^{-(gt - G)/tau} bring them to the group's time and an
    event q adds x wm[q], x ws[q] (x its weight, wm = v e^{(t - G)/tau_m}, ws likewise).

    Windows of consecutive groups, ws_[w]:ws_[w+1], of at least ``window`` events (or one
    group) within one epoch: wa, wb = e^{-span/tau} from the window's first time to its
    end (the next window's time, or t_end); wE bounds what an M increment of 1 (in the
    frame of G) counted in P (all inputs when the first group has one, else those after the
    first group) adds to u before the end, e^{-(t0 - G)/tau_m} max eps (0 for one-group
    windows of coincident inputs and for windows of the ``_window8`` shape, which use qW);
    wr marks a window starting a new epoch, whose traces
    are first scaled by wrm, wrs."""
    n = 0
    while n < in_t.size and in_t[n] <= t_end:
        n += 1
    gs = np.empty(n + 1, np.int64)
    k = 0
    for e in range(n):
        if e == 0 or in_t[e] != in_t[e - 1]:
            gs[k] = e
            k += 1
    gs[k] = n
    gs = gs[:k + 1].copy()
    gt = np.empty(k)
    gn = np.empty(k)
    gG = np.empty(k)
    for g in range(k):
        gt[g] = in_t[gs[g]]
    for g in range(k):
        gn[g] = t_end if g == k - 1 else gt[g + 1]
    span_max = EPOCH_EXP * min(tau_m, tau_s)
    G = gt[0] if k > 0 else 0.0
    for g in range(k):
        if gt[g] - G > span_max:
            G = gt[g]
        gG[g] = G
    # two exponentials per group (the scalar exp is most of this function's time): the
    # factors into the frame of G, their inverses, and within an epoch the decay to the
    # next group as a product of those (a few ulps off exp(-span/tau); the bound's margins
    # are 1e-9 relative, and the sweep and the replays read the same numbers)
    gdm = np.empty(k)
    gds = np.empty(k)
    fm = np.empty(k)
    fs = np.empty(k)
    wm = np.empty(n)
    ws = np.empty(n)
    for g in range(k):
        fm_g = math.exp((gt[g] - gG[g]) / tau_m)
        fs_g = math.exp((gt[g] - gG[g]) / tau_s)
        fm[g] = fm_g
        fs[g] = fs_g
        gdm[g] = 1.0 / fm_g
        gds[g] = 1.0 / fs_g
        for q in range(gs[g], gs[g + 1]):
            wm[q] = in_v[q] * fm_g
            ws[q] = in_v[q] * fs_g
    ga = np.empty(k)
    gb = np.empty(k)
    for g in range(k):
        if g + 1 < k and gG[g + 1] == gG[g]:
            ga[g] = gdm[g + 1] * fm[g]
            gb[g] = gds[g + 1] * fs[g]
        else:
            ga[g] = math.exp(-(gn[g] - gt[g]) / tau_m)
            gb[g] = math.exp(-(gn[g] - gt[g]) / tau_s)
    wst = np.empty(k + 1, np.int64)
    nw = 0
    g = 0
    while g < k:
        wst[nw] = g
        nw += 1
        n_ev = gs[g + 1] - gs[g]
        g += 1
        while g < k and n_ev < window and gG[g] == gG[g - 1]:
            n_ev += gs[g + 1] - gs[g]
            g += 1
    wst[nw] = k
    wst = wst[:nw + 1].copy()
    wa = np.empty(nw)
    wb = np.empty(nw)
    wE = np.zeros(nw)
    wr = np.zeros(nw, np.bool_)
    wrm = np.ones(nw)
    wrs = np.ones(nw)
    # per event of a window of the _window8 shape: the most its M increment of 1 (frame of
    # G) adds to u before the window ends, e^{-(t_q - G)/tau_m} times the peak of eps over
    # what is left of the window after t_q (at most wE; later inputs have less time),
    # times wm[q]: an input of weight x adds at most max(x qW[q], 0) to u (signed values too)
    qW = np.zeros(n)
    c = tau_m / (tau_m - tau_s)
    s_star = math.log(tau_m / tau_s) / (1.0 / tau_s - 1.0 / tau_m)
    eps_max = max(c * (math.exp(-s_star / tau_m) - math.exp(-s_star / tau_s)), 0.0)
    for w in range(nw):
        g0 = wst[w]
        g1 = wst[w + 1]
        t_w = gn[g1 - 1]
        wa[w] = math.exp(-(t_w - gt[g0]) / tau_m)
        wb[w] = math.exp(-(t_w - gt[g0]) / tau_s)
        shape8 = gs[g0 + 1] - gs[g0] == 1 and gs[g1] - gs[g0] == 8
        if shape8:
            for g in range(g0, g1):
                if t_w - gt[g] >= s_star:
                    eps = eps_max
                else:
                    # e^{-(t_w - t)/tau} from the window's factors (a few ulps); the slack:
                    # 1e-9 relative and 2e-15 |c| absolute for the difference
                    em = wa[w] * (fm[g] * gdm[g0])
                    es = wb[w] * (fs[g] * gds[g0])
                    eps = max(c * (em - es), 0.0)
                for q in range(gs[g], gs[g + 1]):   # every input of the group
                    qW[q] = (eps * (1.0 + 1e-9) + 2e-15 * abs(c)) * gdm[g] * wm[q]
        # the inputs counted in P: all when the first time has one input, else those after
        # it; (1 + 1e-9): slack for the rounding of the factors and of the sums in P. Not
        # for windows of the _window8 shape, which weigh each input with its qW instead
        # (wE stays 0 there: two exponentials and a logarithm less per window)
        if shape8:
            pass
        elif gs[g0 + 1] - gs[g0] == 1:
            wE[w] = _eps_peak(t_w - gt[g0], tau_m, tau_s) * gdm[g0] * (1.0 + 1e-9)
        elif g1 > g0 + 1:
            wE[w] = _eps_peak(t_w - gt[g0 + 1], tau_m, tau_s) * gdm[g0] * (1.0 + 1e-9)
        if w > 0 and gG[g0] != gG[g0 - 1]:
            wr[w] = True
            wrm[w] = math.exp(-(gG[g0] - gG[g0 - 1]) / tau_m)
            wrs[w] = math.exp(-(gG[g0] - gG[g0 - 1]) / tau_s)
    return gs, gt, gn, ga, gb, gG, gdm, gds, wm, ws, wst, wa, wb, wE, wr, wrm, wrs, qW


@njit(cache=True, nogil=True)
def _merge_blocks(parts_t, parts_i, total, exceeded):
    t = np.empty(total)
    i = np.empty(total, np.int64)
    k = 0
    for p in range(len(parts_t)):
        n = parts_t[p].size
        t[k:k + n] = parts_t[p]
        i[k:k + n] = parts_i[p]
        k += n
    t_o, i_o = _sorted_output(t, i, total)
    return t_o, i_o, exceeded


@njit(cache=True, nogil=True, inline="always")
def _replay(i, g0, g1, one_group, WT, in_i, sched, m, s, M, S, r, c, tau_m, tau_s, theta,
            membrane_reset, t_ref, lo, out_t, out_i, n_spk, max_spikes):
    """Neuron i of a block over the groups g0..g1-1 of one window (or the window's last
    groups from g0 on), group by group from its traces m, s before group g0 (in the frame
    of G, as every neuron; the state after the window goes to M, S; ``one_group``: the
    window is this one group of coincident inputs, whose sums the sweep left in M, S): add
    the group's inputs, bound u up to the next group (``_headroom``), search the exact
    crossing where the bound reaches theta (``newton_crossing``), reset. The same operations
    as the window sweep on the traces, so the result does not depend on which neurons a
    window replays.

    Membrane reset: a neuron refractory at t (r >= t) has u = S(r) eps(s - r) after r; its
    M trace is not used, and M is set from S(r) when r falls before the next group of the
    window (after the last group the caller does it, in the next window's frame).
    ``sched``: ``_dense_windows``' tuple. Inlined into the caller (fewer than 30 arguments:
    CPython passes more as *args, which numba does not inline): a call with its ~17 array
    arguments cost hundreds of cycles in reference counts alone, per replay.
    Returns the new spike count; -1 when out_t is full, -2 when max_spikes is exceeded."""
    gs, gt, gn, ga, gb, gG, gdm, gds, wm, ws = sched[:10]
    itau_m = 1.0 / tau_m
    itau_s = 1.0 / tau_s
    ri = r[i]
    for g in range(g0, g1):
        t = gt[g]
        t_next = gn[g]
        span = t_next - t
        refr = ri >= t
        if membrane_reset or not refr:  # full reset: inputs at or before r are forgotten
            if one_group:
                # a window of one group (coincident inputs): the sweep has left exactly
                # these sums, added in this order, in M, S
                m = M[i]
                s = S[i]
            else:
                for q in range(gs[g], gs[g + 1]):
                    x = WT[in_i[q], lo + i]
                    m = fma(x, wm[q], m)
                    s = fma(x, ws[q], s)
        if refr and not membrane_reset:
            continue  # M = S = 0 until r, and no input before the next group
        S_t = s * gds[g]
        if refr:
            # u after r is at most S(r) <= S_t (``rise_bound``): below theta, no exponential
            hit = S_t >= theta and ri <= t_next
        else:
            hit = _headroom(m, s, gdm[g], gds[g], ga[g], gb[g], c, itau_m, itau_s, theta) <= 0.0
        if hit:
            while True:
                if membrane_reset and ri >= t:
                    # refractory at t: search after r, in the frame of r (u(r) = 0)
                    if ri > t_next:
                        break
                    S_r = S_t * math.exp(-(ri - t) / tau_s)
                    if rise_bound(S_r, S_r, c, tau_m, tau_s, theta) > t_next - ri:
                        break
                    sc = newton_crossing(S_r, S_r, t_next - ri, c, tau_m, tau_s, theta)
                    if sc == math.inf:
                        break
                    t_spk = ri + sc
                else:
                    M_t = m * gdm[g]
                    if rise_bound(M_t, S_t, c, tau_m, tau_s, theta) > span:
                        break
                    sc = newton_crossing(M_t, S_t, span, c, tau_m, tau_s, theta)
                    if sc == math.inf:
                        break
                    t_spk = t + sc
                if n_spk >= max_spikes:
                    return -2
                if n_spk >= out_t.size:
                    return -1
                out_t[n_spk] = t_spk
                out_i[n_spk] = lo + i
                n_spk += 1
                ri = t_spk + t_ref
                if not membrane_reset:
                    m = 0.0
                    s = 0.0
                    break
        if membrane_reset and ri >= t and ri < t_next and g < g1 - 1:
            m = _membrane_from_current(S_t, ri, t, gG[g + 1], tau_m, tau_s)
    M[i] = m
    S[i] = s
    r[i] = ri
    return n_spk


@njit(cache=True, nogil=True, inline="always")
def _first_hit8(i, g0, e0, WT, in_i, lo, gdm, gds, ga, gb, wm, ws, m, s, pm, ps, c, itau_m,
                itau_s, theta):
    """For a window of 8 groups of one input each (events e0..e0+7, groups g0..g0+7) and a
    neuron i not refractory at its first time: the traces after each group's input
    (pm[k], ps[k]: the replay's sums, in its order) and the first group k whose
    ``_headroom`` is not positive (8: none). The same numbers as ``_replay`` computes up to
    that group, without its per-group branches: the 8 bounds are independent."""
    for k in range(8):
        q = e0 + k
        x = WT[in_i[q], lo + i]
        m = fma(x, wm[q], m)
        s = fma(x, ws[q], s)
        pm[k] = m
        ps[k] = s
    mask = 0
    for k in range(8):
        g = g0 + k
        h = _headroom(pm[k], ps[k], gdm[g], gds[g], ga[g], gb[g], c, itau_m, itau_s, theta)
        mask |= int(h <= 0.0) << k
    if mask == 0:
        return 8
    k = 0
    while not (mask >> k) & 1:
        k += 1
    return k


@njit(cache=True, nogil=True)
def _membrane_from_current(S_t, r, t, G, tau_m, tau_s):
    """M in the frame of G of a neuron whose membrane restarts from 0 at r (membrane reset):
    M(r) = S(r) = S_t e^{-(r - t)/tau_s} from the current trace at t <= r. One expression
    wherever it is evaluated; r - G is at most EPOCH_EXP min(tau), so no overflow."""
    return S_t * math.exp(-(r - t) / tau_s + (r - G) / tau_m)


@njit(cache=True, nogil=True)
def _dense_block(in_i, WT, lo, hi, sched, tau_m, tau_s, theta, membrane_reset, t_ref,
                 max_spikes):
    """dense_layer for the output neurons lo..hi-1 only (the neurons of a Dense layer are
    independent given its input), over the windows of ``_dense_windows`` (``sched``).
    Returns (times, global neuron indices, count, exceeded), unsorted."""
    gs, gt, gn, ga, gb, gG, gdm, gds, wm, ws, wst, wa, wb, wE, wr, wrm, wrs, qW = sched
    n_out = hi - lo
    # the sweeps read the block's part of a weight row as a contiguous slice WT[j, lo:hi]
    # (plain row[i] indexing: an offset index row[lo + i] defeated vectorisation); no copy
    c = tau_m / (tau_m - tau_s)
    itau_m = 1.0 / tau_m
    itau_s = 1.0 / tau_s
    # the state (traces in the frame of G) after the last window, and the buffers of the
    # next window's: a window reads M, S and writes M1, S1, then the two swap, so the state
    # before a window stays available for replays without a copy
    M = np.zeros(n_out)
    S = np.zeros(n_out)
    M1 = np.empty(n_out)
    S1 = np.empty(n_out)
    H = np.empty(n_out)
    P = np.zeros(n_out)
    r = np.full(n_out, -math.inf)      # end of refractoriness (full reset: discard inputs <= r)
    # flags padded to whole 8-byte words: the scan for flagged neurons skips 8 at a time
    n_words = (n_out + 7) // 8
    flag = np.zeros(8 * n_words, np.bool_)
    flag_words = flag.view(np.uint64)
    cand = np.empty(n_out, np.int64)
    refr = np.empty(n_out, np.int64)   # neurons refractory at the last group of the window
    n_refr = 0
    fix_i = np.empty(n_out, np.int64)
    fix_m = np.empty(n_out)
    pm = np.empty(8)
    ps = np.empty(8)
    out_t = np.empty(64, np.float64)
    out_i = np.empty(64, np.int64)
    n_spk = 0
    for w in range(wst.size - 1):
        g0 = wst[w]
        g1 = wst[w + 1]
        t0 = gt[g0]
        # 1. neurons refractory at the previous window's last group: those still refractory
        # now are replayed; under membrane reset the others get M from S(r)
        k = 0
        n_fix = 0
        for q in range(n_refr):
            i = refr[q]
            if r[i] >= t0:
                refr[k] = i
                k += 1
            elif membrane_reset:
                fix_i[n_fix] = i
                fix_m[n_fix] = _membrane_from_current(S[i] * gds[g0 - 1], r[i], gt[g0 - 1],
                                                      gG[g0], tau_m, tau_s)
                n_fix += 1
        n_refr = k
        if wr[w]:  # a new epoch: traces into the frame of the new G
            for i in range(n_out):
                M[i] *= wrm[w]
                S[i] *= wrs[w]
        for q in range(n_fix):
            M[fix_i[q]] = fix_m[q]
        # 2. the first group's inputs (state before them saved for replays), the bound of u
        # over the window from the traces, the other groups' inputs with their positive parts
        e0 = gs[g0]
        e1 = gs[g0 + 1]
        e2 = gs[g1]
        win8 = e1 - e0 == 1 and e2 - e0 == 8    # _window8's shape (coarse flags)
        if win8:
            n_flag = _window8(M, S, M1, S1, flag, WT, in_i, lo, hi, wm, ws, qW, e0, gdm[g0],
                              gds[g0], wa[w], wb[w], c, itau_m, itau_s, theta)
        else:
            n_flag = _sweep_window(M, S, M1, S1, H, P, flag, WT, lo, hi, in_i, wm, ws, e0, e1, e2,
                                   gdm[g0], gds[g0], wa[w], wb[w], c, itau_m, itau_s, theta,
                                   wE[w])
        M0, S0 = M, S      # the state before the window
        M, S = M1, S1      # the state after it
        M1, S1 = M0, S0    # the next window's buffers
        for q in range(n_refr):
            i = refr[q]
            n_flag += 1 - int(flag[i])
            flag[i] = True
        if n_flag == 0:
            n_refr = 0
            continue
        # 3. the flagged neurons again from their state before the window, group by group
        n_cand = 0
        for wi in range(n_words):
            if flag_words[wi] != 0:
                for i in range(8 * wi, 8 * wi + 8):
                    if flag[i]:
                        cand[n_cand] = i
                        n_cand += 1
                if n_cand == n_flag:    # the rest of the flags are clear
                    break
        if win8:
            # _window8's flags are coarse: keep the neurons refractory at t0 and those the
            # full bound flags too (the others' M, S hold their sums already, r is
            # unchanged). A loop of its own, branch-free: the candidates' checks overlap
            k = 0
            for ci in range(n_cand):
                i = cand[ci]
                keep = (r[i] >= t0) | _exact_flag8(i, e0, WT, in_i, lo, qW, M0[i], S0[i],
                                                   gdm[g0], gds[g0], wa[w], wb[w], c, itau_m,
                                                   itau_s, theta)
                cand[k] = i
                k += keep
            n_cand = k
        t_last = gt[g1 - 1]
        n_refr = 0
        one_group = g1 == g0 + 1
        shape8 = g1 - g0 == 8 and e2 - e0 == 8
        for ci in range(n_cand):
            i = cand[ci]
            r_i = r[i]
            gr = g0
            m = M0[i]
            s = S0[i]
            if shape8 and r_i < t0:
                # the groups before the first one whose bound reaches theta change nothing
                # but the sums: start the replay there
                k = _first_hit8(i, g0, e0, WT, in_i, lo, gdm, gds, ga, gb, wm, ws, m, s, pm,
                                ps, c, itau_m, itau_s, theta)
                if k == 8:
                    continue    # M, S hold these sums already, r is unchanged
                if k > 0:
                    gr = g0 + k
                    m = pm[k - 1]
                    s = ps[k - 1]
            while True:
                r[i] = r_i
                n = _replay(i, gr, g1, one_group, WT, in_i, sched, m, s, M, S, r, c, tau_m,
                            tau_s, theta, membrane_reset, t_ref, lo, out_t, out_i, n_spk,
                            max_spikes)
                if n != -1:
                    break
                out_t, out_i = _grow(out_t, out_i, out_t.size)
            if n == -2:
                return out_t, out_i, n_spk, True
            n_spk = n
            if r[i] >= t_last:
                refr[n_refr] = i
                n_refr += 1
    return out_t, out_i, n_spk, False


@njit(cache=True, nogil=True)
def dense_layer(in_t, in_i, in_v, WT, tau_m, tau_s, theta, membrane_reset, t_ref, t_end,
                max_spikes):
    """Simulate one fully connected layer. WT is the transposed weight, shape (n_in, n_out).

    All traces share one reference time G (moved forward in epochs, as in sparse_layer), so
    an input of value v at time t adds x v e^{(t - G)/tau} to every neuron's traces (x its
    weight): one multiply-add per neuron and trace, no decay pass. The inputs come in
    windows of several input times (``DENSE_WINDOW_EVENTS`` events). Per window, one
    vectorised pass bounds u from the traces after the window's first input time, and the
    sweep over the later inputs also sums each neuron's positive M increments P: an input of
    weight x v adds at most (x v)+ max eps to u afterwards, so the bound plus P max eps over
    the window covers every input of it. Only the neurons where that reaches theta (and
    those refractory in the window) are replayed from their state before the window, group
    of coincident inputs by group, with the per-group bound and the exact crossing search.
    The replay performs the very operations of the sweep, so the spikes do not depend on the
    window length (nor on the blocks below).

    Membrane reset: a neuron refractory at t (r >= t) has u = S(r) eps(s - r) after r, fully
    given by its current trace S and r; its M trace is not used, its crossings are searched
    in the frame of r, and M is set again from S(r) when r falls before the next input time.

    Wide layers run in blocks of output neurons (``dense_block_size``) one after the other,
    each over the whole input: a block's weight columns stay in cache while its inputs are
    swept, instead of the whole weight matrix streaming from memory for every input event.

    Returns (spike times, neuron indices, exceeded), sorted by (time, neuron); exceeded is
    True (with some of the spikes) when more than max_spikes spikes were due."""
    n_in, n_out = WT.shape
    return dense_layer_blocks(in_t, in_i, in_v, WT, tau_m, tau_s, theta, membrane_reset, t_ref,
                              t_end, max_spikes, dense_block_size(n_in, n_out))


@njit(cache=True, nogil=True)
def dense_layer_blocks(in_t, in_i, in_v, WT, tau_m, tau_s, theta, membrane_reset, t_ref, t_end,
                       max_spikes, block, window=DENSE_WINDOW_EVENTS):
    """dense_layer with blocks of ``block`` output neurons and windows of ``window`` input
    events (the result depends on neither)."""
    n_out = WT.shape[1]
    block = max(block, 1)
    sched = _dense_windows(in_t, in_v, t_end, tau_m, tau_s, max(window, 1))
    parts_t = []
    parts_i = []
    total = 0
    exceeded = False
    for lo in range(0, n_out, block):
        hi = min(lo + block, n_out)
        ot, oi, n, exceeded = _dense_block(in_i, WT, lo, hi, sched, tau_m, tau_s, theta,
                                           membrane_reset, t_ref, max_spikes - total)
        parts_t.append(ot[:n])
        parts_i.append(oi[:n])
        total += n
        if exceeded:
            break
    return _merge_blocks(parts_t, parts_i, total, exceeded)


#: a Dense layer is split over threads only from this many output neurons on (narrower
#: layers take less time than the threads cost to start)
THREADS_MIN_OUT = 512


def dense_layer_threads(in_t, in_i, in_v, WT, tau_m, tau_s, theta, membrane_reset, t_ref,
                        t_end, max_spikes, n_threads, window=DENSE_WINDOW_EVENTS):
    """dense_layer with its neuron blocks run by ``n_threads`` threads inside one sample
    (the block kernel releases the GIL). The neurons of a Dense layer are independent given
    its input and each block's arithmetic is the same for any blocking, so the result is
    bit for bit the same for every thread count. When exceeded, the spikes returned are
    some of those due (which ones depends on the blocking)."""
    n_in, n_out = WT.shape
    if n_threads <= 1 or n_out < THREADS_MIN_OUT:
        return dense_layer_blocks(in_t, in_i, in_v, WT, tau_m, tau_s, theta, membrane_reset,
                                  t_ref, t_end, max_spikes, dense_block_size(n_in, n_out), window)
    from concurrent.futures import ThreadPoolExecutor

    # cache-sized blocks, at least two per thread (blocks differ in their spike work)
    block = min(dense_block_size(n_in, n_out), max(64, -(-n_out // (2 * n_threads))))
    sched = _dense_windows(in_t, in_v, t_end, tau_m, tau_s, max(window, 1))

    def run(lo):
        return _dense_block(in_i, WT, lo, min(lo + block, n_out), sched, tau_m, tau_s, theta,
                            membrane_reset, t_ref, max_spikes)

    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        parts = list(pool.map(run, range(0, n_out, block)))
    total = sum(p[2] for p in parts)
    exceeded = total > max_spikes or any(p[3] for p in parts)
    t = np.concatenate([p[0][:p[2]] for p in parts])
    i = np.concatenate([p[1][:p[2]] for p in parts])
    t_o, i_o = _sorted_output(t, i, total)
    return t_o, i_o, exceeded


@njit(cache=True, nogil=True, inline="always")
def _receive(i, t, w, tau_m, tau_s, membrane_reset, t0, M, S, r):
    """Apply an input of weighted value w at time t to neuron i's lazily updated traces.
    Returns False when the input is discarded (full reset: t at or before r)."""
    if t <= r[i]:
        if not membrane_reset:
            return False
        if t < r[i]:
            # refractory: the current integrates, the membrane restarts from 0 at r = t0
            w *= math.exp(-(r[i] - t) / tau_s)
    elif t > t0[i]:
        d = t - t0[i]
        M[i] *= math.exp(-d / tau_m)
        S[i] *= math.exp(-d / tau_s)
        t0[i] = t
    M[i] += w
    S[i] += w
    return True


@njit(cache=True, nogil=True, inline="always")
def _reset(i, t_spk, tau_s, membrane_reset, t_ref, t0, M, S, r):
    """Reset neuron i after its spike at t_spk; its traces restart at r = t_spk + t_ref."""
    rr = t_spk + t_ref
    if membrane_reset:
        S_r = S[i] * math.exp(-(rr - t0[i]) / tau_s)
        M[i] = S_r
        S[i] = S_r
    else:
        M[i] = 0.0
        S[i] = 0.0
    t0[i] = rr
    r[i] = rr


#: Sparse layers keep every neuron's traces relative to the layer's reference time G, scaled
#: by e^{(t - G)/tau} (see sparse_layer). G moves to the current group time t when
#: (t - G) / min(tau_m, tau_s) would exceed EPOCH_EXP, so every scale factor is at most
#: e^EPOCH_EXP = 2.4e17. A stored trace is then at most 2.4e17 times a sum of |w v| <= 1e200
#: per event (MAX_MAGNITUDE), i.e. below 1e218 x the number of events: no overflow.
EPOCH_EXP = 40.0


@njit(cache=True, nogil=True)
def _apply_group(in_t, in_i, in_v, e, t, G, fm, fs, indptr, targets, weights, tau_m, tau_s,
                 membrane_reset, T, M, S, r, stamp, group, touched):
    """Apply every input event at time t (starting at event e) to its targets. A neuron
    whose traces are in the frame of G (T[i] == G) receives w e^{(t - G)/tau} = w fm, w fs:
    no exponential. Returns (next event index, number of touched neurons)."""
    n_touch = 0
    n_ev = in_t.size
    while e < n_ev and in_t[e] == t:
        j = in_i[e]
        val = in_v[e]
        for q in range(indptr[j], indptr[j + 1]):
            i = targets[q]
            w = weights[q] * val
            if t <= r[i]:
                if not membrane_reset:
                    continue  # full reset: inputs at or before r are forgotten
                if t < r[i]:
                    # refractory: the traces are values at r (T[i] = r); the current
                    # integrates, the membrane restarts from 0 at r
                    w *= math.exp(-(r[i] - t) / tau_s)
                    M[i] += w
                    S[i] += w
                    if stamp[i] != group:
                        stamp[i] = group
                        touched[n_touch] = i
                        n_touch += 1
                    continue
            if T[i] != G:
                # into G's frame: T[i] <= t <= G + EPOCH_EXP min(tau), so no overflow
                M[i] *= math.exp((T[i] - G) / tau_m)
                S[i] *= math.exp((T[i] - G) / tau_s)
                T[i] = G
            M[i] += w * fm
            S[i] += w * fs
            if stamp[i] != group:
                stamp[i] = group
                touched[n_touch] = i
                n_touch += 1
        e += 1
    return e, n_touch


@njit(cache=True, nogil=True)
def sparse_layer(in_t, in_i, in_v, n_out, indptr, targets, weights, tau_m, tau_s, theta,
                 membrane_reset, t_ref, t_end, max_spikes):
    """Simulate one layer given CSR connectivity: input j reaches
    targets[indptr[j]:indptr[j+1]] with the matching ``weights``.

    Neuron i's traces M[i], S[i] are values at its reference time T[i]:
    u(t) = c (M e^{-(t - T)/tau_m} - S e^{-(t - T)/tau_s}). Normally T[i] is the layer's
    reference G, so that an input costs a multiply-add (EPOCH_EXP bounds the scale). A
    neuron refractory under reset="membrane" keeps T[i] = r (its traces are the values at r);
    a neuron whose heap entry was reached keeps T[i] = that time until its next input.

    An indexed heap holds at most one entry per neuron, whose key is always at or before
    the neuron's next crossing (given the inputs so far): after each input a cheap lower
    bound (``rise_bound``; an existing earlier key is kept, a neuron that cannot reach theta
    keeps its entry, a valid bound of inf). The exact crossing is solved only when an entry
    reaches the top before the next input group and a fresh bound from there does not pass
    that group; an exact entry (``exact[i]``) fires when it reaches the top, unless an input
    turned it back into a bound first. Same spikes as solving at every input, far fewer solves.

    Returns (spike times, neuron indices, exceeded) sorted by (time, neuron); exceeded is
    True (with the spikes so far) when more than max_spikes spikes were due."""
    c = tau_m / (tau_m - tau_s)
    span_max = EPOCH_EXP * min(tau_m, tau_s)
    G = 0.0
    T = np.zeros(n_out)
    M = np.zeros(n_out)
    S = np.zeros(n_out)
    r = np.full(n_out, -math.inf)
    exact = np.zeros(n_out, np.bool_)
    stamp = np.full(n_out, -1, np.int64)
    touched = np.empty(n_out, np.int64)
    heap = heap_new(n_out)
    heap_key = heap[0]
    heap_pos = heap[2]
    out_t = np.empty(64, np.float64)
    out_i = np.empty(64, np.int64)
    n_spk = 0
    n_ev = in_t.size
    e = 0
    group = 0
    while True:
        t = in_t[e] if e < n_ev else math.inf
        if t > t_end:
            t = math.inf
        # 1. entries at or before t: fire exact ones, refine bounds
        while heap_size(heap) > 0:
            t_k, i = heap_top(heap)
            if t_k > t or t_k > t_end:
                break
            if exact[i]:
                heap_pop(heap)
                exact[i] = False
                if n_spk >= max_spikes:
                    t_o, i_o = _sorted_output(out_t, out_i, n_spk)
                    return t_o, i_o, True
                out_t, out_i = _grow(out_t, out_i, n_spk)
                out_t[n_spk] = t_k
                out_i[n_spk] = i
                n_spk += 1
                rr = t_k + t_ref
                r[i] = rr
                if membrane_reset:
                    # the membrane restarts from 0 at rr with the current S(rr) in both traces
                    S_r = S[i] * math.exp(-(rr - T[i]) / tau_s)
                    M[i] = S_r
                    S[i] = S_r
                    T[i] = rr
                    d = rise_bound(S_r, S_r, c, tau_m, tau_s, theta)
                    if rr + d <= t_end:
                        heap_set(heap, i, rr + d)
                else:
                    M[i] = 0.0
                    S[i] = 0.0
                    T[i] = rr
                continue
            # a bound was reached with no input since: state at t_k, then bound or solve
            if t_k > T[i]:
                d = t_k - T[i]
                M[i] *= math.exp(-d / tau_m)
                S[i] *= math.exp(-d / tau_s)
                T[i] = t_k
            d = rise_bound(M[i], S[i], c, tau_m, tau_s, theta)
            if d == math.inf or t_k + d > t_end:
                heap_remove(heap, i)
            elif t_k + d > t:
                heap_set(heap, i, t_k + d)
            else:
                s = first_crossing(M[i], S[i], 0.0, t_end - t_k, c, tau_m, tau_s, theta)
                if s == math.inf:
                    heap_remove(heap, i)
                else:
                    heap_set(heap, i, t_k + s)
                    exact[i] = True
        if t == math.inf:
            break
        # 2. apply all inputs at time t, in the frame of G
        if t - G > span_max:
            G = t
        x = t - G
        fm = math.exp(x / tau_m)
        fs = math.exp(x / tau_s)
        e, n_touch = _apply_group(in_t, in_i, in_v, e, t, G, fm, fs, indptr, targets, weights,
                                  tau_m, tau_s, membrane_reset, T, M, S, r, stamp, group,
                                  touched)
        group += 1
        # 3. a lower bound of the next crossing of every touched neuron
        dm = math.exp(-x / tau_m)
        ds = math.exp(-x / tau_s)
        for q in range(n_touch):
            i = touched[q]
            exact[i] = False  # the solved crossing belonged to the old state: now a bound
            if T[i] == G:
                d = rise_bound(M[i] * dm, S[i] * ds, c, tau_m, tau_s, theta)
                lb = t + d
            else:  # refractory (membrane reset): traces at r
                d = rise_bound(M[i], S[i], c, tau_m, tau_s, theta)
                lb = r[i] + d
            if lb <= t_end and (heap_pos[i] < 0 or lb < heap_key[i]):
                heap_set(heap, i, lb)
    t_o, i_o = _sorted_output(out_t, out_i, n_spk)
    return t_o, i_o, False


@njit(cache=True, nogil=True)
def pool_relay(in_t, in_i, in_v, unit_of, n_units, is_max, scale):
    """Relay events through a pooling layer.

    unit_of[j] is the pooled unit of input neuron j (-1: outside every window). Coincident
    events of one unit become one event: the largest value (max) or the sum of v * scale
    (average, scale = 1/k^2). Returns (times, units, values, source_to_output, winner):
    source_to_output[e] is the output event of input event e (-1 if dropped) and winner[e]
    marks, for max pooling, the first source event holding the maximum.
    """
    n = in_t.size
    out_t = np.empty(n, np.float64)
    out_u = np.empty(n, np.int64)
    out_v = np.empty(n, np.float64)
    src = np.full(n, -1, np.int64)
    winner = np.zeros(n, np.bool_)
    slot = np.full(n_units, -1, np.int64)   # output index of each unit within the group
    best = np.empty(n, np.int64)            # winning source event per output event
    units = np.empty(n, np.int64)
    n_out = 0
    e = 0
    while e < n:
        t = in_t[e]
        g0 = e
        while e < n and in_t[e] == t:
            e += 1
        # collect the units hit at time t
        n_u = 0
        for q in range(g0, e):
            u = unit_of[in_i[q]]
            if u >= 0 and slot[u] == -1:
                slot[u] = 0
                units[n_u] = u
                n_u += 1
        if n_u <= 16:  # the usual few units per time: sorted in place, no allocation
            for k in range(1, n_u):
                u = units[k]
                q = k - 1
                while q >= 0 and units[q] > u:
                    units[q + 1] = units[q]
                    q -= 1
                units[q + 1] = u
            units_g = units[:n_u]
        else:
            units_g = np.sort(units[:n_u])
        for k in range(n_u):
            u = units_g[k]
            slot[u] = n_out + k
            out_t[n_out + k] = t
            out_u[n_out + k] = u
            out_v[n_out + k] = -math.inf if is_max else 0.0
        for q in range(g0, e):
            u = unit_of[in_i[q]]
            if u < 0:
                continue
            o = slot[u]
            src[q] = o
            if is_max:
                if in_v[q] > out_v[o]:
                    out_v[o] = in_v[q]
                    best[o] = q
            else:
                out_v[o] += in_v[q] * scale
        for k in range(n_u):
            slot[units_g[k]] = -1
            if is_max:
                winner[best[n_out + k]] = True
        n_out += n_u
    return out_t[:n_out].copy(), out_u[:n_out].copy(), out_v[:n_out].copy(), src, winner


@njit(cache=True, nogil=True)
def record_membrane(in_t, in_i, in_v, spk_t, spk_i, n_out, indptr, targets, weights,
                    tau_m, tau_s, membrane_reset, t_ref, q_t):
    """Membrane potential of every neuron at the sorted query times q_t, replaying the
    inputs and the given output spikes (resets). At a query time equal to a spike time the
    value before the reset (the limit from the left) is returned.
    Returns an array (len(q_t), n_out)."""
    c = tau_m / (tau_m - tau_s)
    t0 = np.zeros(n_out)
    M = np.zeros(n_out)
    S = np.zeros(n_out)
    r = np.full(n_out, -math.inf)
    out = np.zeros((q_t.size, n_out))
    e = 0
    k = 0
    for qi in range(q_t.size):
        tq = q_t[qi]
        while True:
            te = in_t[e] if e < in_t.size else math.inf
            tk = spk_t[k] if k < spk_t.size else math.inf
            if min(te, tk) >= tq:
                break
            if tk <= te:  # resets before inputs at the same time
                _reset(spk_i[k], tk, tau_s, membrane_reset, t_ref, t0, M, S, r)
                k += 1
            else:
                j = in_i[e]
                for q in range(indptr[j], indptr[j + 1]):
                    _receive(targets[q], te, weights[q] * in_v[e], tau_m, tau_s, membrane_reset,
                             t0, M, S, r)
                e += 1
        for i in range(n_out):
            if tq >= t0[i]:
                d = tq - t0[i]
                out[qi, i] = c * (M[i] * math.exp(-d / tau_m) - S[i] * math.exp(-d / tau_s))
    return out
