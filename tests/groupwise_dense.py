"""The per-group Dense kernel of the engine before issue 12's windows (commit fd6ec13), kept
as a test oracle: after every group of coincident inputs it adds the inputs to traces in the
frame of that group's time, bounds u up to the next group, searches the flagged neurons and
decays every trace. The windowed kernel in eventsnn/event/_engine.py must give the same
spikes (times within 1e-9 ms)."""
import math

import numpy as np
from numba import njit

from eventsnn.event._crossing import first_crossing, rise_bound
from eventsnn.event._engine import _grow, _sorted_output


@njit(cache=False, nogil=True)
def _add(M, S, row, val):
    """M += w, S += w for w = row * val."""
    for i in range(M.size):
        w = row[i] * val
        M[i] += w
        S[i] += w


@njit(cache=False, nogil=True)
def _add_and_bound(M, S, row, val, a, b, c, theta, flag):
    """M += w, S += w for w = row * val; flag neurons whose bound on u over the span
    reaches theta (each exponential term is bounded by one of its end values). Branch-free,
    so it vectorises. Returns the number of flagged neurons."""
    n = 0
    for i in range(M.size):
        w = row[i] * val
        m = M[i] + w
        s = S[i] + w
        M[i] = m
        S[i] = s
        A = c * m
        B = -c * s
        # u's only extremum has the value m exp(-s*/tau_m), so also u <= max(u(t), m)
        hit = min(max(A, A * a) + max(B, B * b), max(A + B, m)) >= theta
        flag[i] = hit
        n += hit
    return n


@njit(cache=False, nogil=True)
def _dense_groups(in_t, t_end, tau_m, tau_s):
    """Groups of coincident input events at or before t_end: group g is the events
    g_start[g]:g_start[g+1]; g_a, g_b are e^{-span/tau_m}, e^{-span/tau_s} over the span
    to the next group (to t_end after the last)."""
    n = 0
    while n < in_t.size and in_t[n] <= t_end:
        n += 1
    g_start = np.empty(n + 1, np.int64)
    k = 0
    for e in range(n):
        if e == 0 or in_t[e] != in_t[e - 1]:
            g_start[k] = e
            k += 1
    g_start[k] = n
    g_start = g_start[:k + 1].copy()
    g_a = np.empty(k)
    g_b = np.empty(k)
    for g in range(k):
        t_next = t_end if g == k - 1 else in_t[g_start[g + 1]]
        span = t_next - in_t[g_start[g]]
        g_a[g] = math.exp(-span / tau_m)
        g_b[g] = math.exp(-span / tau_s)
    return g_start, g_a, g_b


@njit(cache=False, nogil=True)
def _dense_block(in_t, in_i, in_v, WT, lo, hi, g_start, g_a, g_b, t_end, tau_m, tau_s, theta,
                 membrane_reset, t_ref, max_spikes):
    """dense_layer for the output neurons lo..hi-1 only (the neurons of a Dense layer are
    independent given its input), over the groups of coincident inputs found by
    ``_dense_groups``. Returns (times, global neuron indices, count, exceeded), unsorted."""
    n_out = hi - lo
    # the block's own contiguous copy of its weight columns: compact in cache, and plain
    # row[i] indexing in the sweep (an offset index row[lo + i] defeated vectorisation)
    if lo == 0 and hi == WT.shape[1]:
        Wb = WT
    else:
        Wb = np.ascontiguousarray(WT[:, lo:hi])
    c = tau_m / (tau_m - tau_s)
    M = np.zeros(n_out)
    S = np.zeros(n_out)
    r = np.full(n_out, -math.inf)      # end of refractoriness (full reset: discard inputs <= r)
    # flags padded to whole 8-byte words: the scan for flagged neurons skips 8 at a time
    n_words = (n_out + 7) // 8
    flag = np.zeros(8 * n_words, np.bool_)
    flag_words = flag.view(np.uint64)
    cand = np.empty(n_out, np.int64)
    refr = np.empty(n_out, np.int64)   # neurons that may be refractory at the next group
    pre_M = np.empty(n_out)
    pre_S = np.empty(n_out)
    in_refr = np.zeros(n_out, np.bool_)
    n_refr = 0
    out_t = np.empty(64, np.float64)
    out_i = np.empty(64, np.int64)
    n_spk = 0
    n_groups = g_start.size - 1
    for g in range(n_groups):
        g0 = g_start[g]
        e = g_start[g + 1]
        t = in_t[g0]
        last = g == n_groups - 1
        t_next = t_end if last else in_t[e]
        span = t_next - t
        a = g_a[g]
        b = g_b[g]
        # neurons refractory at t: keep their traces to correct them after the sweep
        k = 0
        for q in range(n_refr):
            i = refr[q]
            if r[i] >= t:
                refr[k] = i
                pre_M[k] = M[i]
                pre_S[k] = S[i]
                k += 1
            else:
                in_refr[i] = False
        n_refr = k
        # 1. add the group's inputs and flag the neurons that may cross before t_next
        # (coincident inputs: only the last one needs the bound)
        for q in range(g0, e - 1):
            _add(M, S, Wb[in_i[q]], in_v[q])
        n_flag = _add_and_bound(M, S, Wb[in_i[e - 1]], in_v[e - 1], a, b, c, theta, flag)
        for q in range(n_refr):
            i = refr[q]
            if membrane_reset:
                # the current integrates; the membrane restarts from 0 at r with u = S(r)
                # eps(s - r), which can reach theta only if S > 0 and r is before t_next
                hit = S[i] > 0.0 and r[i] <= t_next
            else:
                M[i] = pre_M[q]  # full reset: inputs at or before r are forgotten
                S[i] = pre_S[q]
                A = c * M[i]
                B = -c * S[i]
                hit = min(max(A, A * a) + max(B, B * b), max(A + B, M[i])) >= theta
            n_flag += int(hit) - int(flag[i])
            flag[i] = hit
        # 2. exact crossings in [t, t_next] of the flagged neurons
        if n_flag > 0:
            # a compact candidate list: the loop below reassigns the output arrays, which
            # costs reference counting on every iteration, so it must be short
            n_cand = 0
            for wi in range(n_words):
                if flag_words[wi] != 0:
                    for i in range(8 * wi, 8 * wi + 8):
                        if flag[i]:
                            cand[n_cand] = i
                            n_cand += 1
            for ci in range(n_cand):
                i = cand[ci]
                S_t = S[i]
                spiked = False
                while True:
                    if membrane_reset and r[i] >= t:
                        # refractory at t: search after r, in the frame of r (u(r) = 0)
                        if r[i] > t_next:
                            break
                        S_r = S_t * math.exp(-(r[i] - t) / tau_s)
                        if rise_bound(S_r, S_r, c, tau_m, tau_s, theta) > t_next - r[i]:
                            break  # cannot reach theta before t_next: no exact search
                        s = first_crossing(S_r, S_r, 0.0, t_next - r[i], c, tau_m, tau_s, theta)
                        if s == math.inf:
                            break
                        t_spk = r[i] + s
                    else:
                        s_lo = 0.0
                        if r[i] > t:  # full reset: inputs up to r are gone, M = S = 0
                            s_lo = r[i] - t
                            if s_lo > span:
                                break
                        elif rise_bound(M[i], S[i], c, tau_m, tau_s, theta) > span:
                            break  # cannot reach theta before t_next: no exact search
                        s = first_crossing(M[i], S[i], s_lo, span, c, tau_m, tau_s, theta)
                        if s == math.inf:
                            break
                        t_spk = t + s
                    if n_spk >= max_spikes:
                        return out_t, out_i, n_spk, True
                    spiked = True
                    out_t, out_i = _grow(out_t, out_i, n_spk)
                    out_t[n_spk] = t_spk
                    out_i[n_spk] = lo + i
                    n_spk += 1
                    r[i] = t_spk + t_ref
                    if not membrane_reset:
                        M[i] = 0.0
                        S[i] = 0.0
                        break
                if spiked and not in_refr[i]:
                    in_refr[i] = True
                    refr[n_refr] = i
                    n_refr += 1
        if last:
            break
        # membrane reset: M at t_next of the refractory neurons, from S(r) directly (no
        # overflow); 0 is a placeholder for those still refractory at t_next
        if membrane_reset:
            for q in range(n_refr):
                i = refr[q]
                if r[i] >= t_next:
                    pre_M[q] = 0.0
                else:
                    pre_M[q] = S[i] * math.exp(-(r[i] - t) / tau_s - (t_next - r[i]) / tau_m)
        # 3. decay every trace to t_next
        for i in range(n_out):
            M[i] *= a
            S[i] *= b
        if membrane_reset:
            for q in range(n_refr):
                M[refr[q]] = pre_M[q]
    return out_t, out_i, n_spk, False


def groupwise_dense_layer(in_t, in_i, in_v, WT, tau_m, tau_s, theta, membrane_reset, t_ref, t_end,
                          max_spikes):
    """The old dense_layer, unblocked: (times, neurons, exceeded) sorted by (time, neuron)."""
    g_start, g_a, g_b = _dense_groups(in_t, t_end, tau_m, tau_s)
    t, i, n, exceeded = _dense_block(in_t, in_i, in_v, WT, 0, WT.shape[1], g_start, g_a, g_b,
                                     t_end, tau_m, tau_s, theta, membrane_reset, t_ref, max_spikes)
    t_o, i_o = _sorted_output(t, i, n)
    return t_o, i_o, exceeded
