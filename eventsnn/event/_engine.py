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

Two layer kernels implement this: ``dense_layer`` sweeps every target of an input event with
one shared decay factor (all neurons of a Dense layer are touched by every event) and
bounds u before any root finding; ``sparse_layer`` keeps per-neuron state and a heap of
predicted crossings, for layers whose events touch few targets (Conv2d).
"""
import math

import numpy as np
from numba import njit

from ._crossing import first_crossing, rise_bound
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


@njit(cache=True, nogil=True)
def _add(M, S, row, val):
    """M += w, S += w for w = row * val."""
    for i in range(M.size):
        w = row[i] * val
        M[i] += w
        S[i] += w


@njit(cache=True, nogil=True)
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


#: bytes of weights per neuron block of a Dense layer (``dense_block_size``): a block's
#: columns of W.T, read for every input event, should stay in the cache (L2 1 MB / L3 32 MB
#: here); measured with benchmarks/event_sim.py --n-out 4000
DENSE_BLOCK_BYTES = 4 << 20


@njit(cache=True, nogil=True)
def dense_block_size(n_in, n_out):
    """Output neurons per block: all of them when the weights fit DENSE_BLOCK_BYTES, else
    blocks of a multiple of 64 neurons whose weights fit it (the last block may be smaller)."""
    if n_in * n_out * 8 <= DENSE_BLOCK_BYTES:
        return max(n_out, 1)
    return max(64, (DENSE_BLOCK_BYTES // (8 * max(n_in, 1))) // 64 * 64)


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def dense_layer(in_t, in_i, in_v, WT, tau_m, tau_s, theta, membrane_reset, t_ref, t_end,
                max_spikes):
    """Simulate one fully connected layer. WT is the transposed weight, shape (n_in, n_out).

    All traces share one reference time, the time t of the current group of coincident
    input events, so one decay factor serves every neuron. Per group: one vectorised pass
    adds the input and bounds u up to the next group; only flagged neurons get the exact
    crossing search; a second pass decays every trace to the next group.

    Membrane reset: a neuron still refractory at t (r >= t) has u = S(r) eps(s - r) after r,
    fully given by its current trace S and r; its M trace is not used (referencing it at
    t < r would need S(r) exp((r - t)/tau_m), which overflows for long refractory periods),
    its crossings are searched in the frame of r, and M is set again from S when r falls
    before the next group.

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
                       max_spikes, block):
    """dense_layer with blocks of ``block`` output neurons (the result does not depend on it)."""
    n_out = WT.shape[1]
    block = max(block, 1)
    g_start, g_a, g_b = _dense_groups(in_t, t_end, tau_m, tau_s)
    parts_t = []
    parts_i = []
    total = 0
    exceeded = False
    for lo in range(0, n_out, block):
        hi = min(lo + block, n_out)
        ot, oi, n, exceeded = _dense_block(in_t, in_i, in_v, WT, lo, hi, g_start, g_a, g_b,
                                           t_end, tau_m, tau_s, theta, membrane_reset, t_ref,
                                           max_spikes - total)
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
                        t_end, max_spikes, n_threads):
    """dense_layer with its neuron blocks run by ``n_threads`` threads inside one sample
    (the block kernel releases the GIL). The neurons of a Dense layer are independent given
    its input and each block's arithmetic is the same for any blocking, so the result is
    bit for bit the same for every thread count. When exceeded, the spikes returned are
    some of those due (which ones depends on the blocking)."""
    n_in, n_out = WT.shape
    if n_threads <= 1 or n_out < THREADS_MIN_OUT:
        return dense_layer(in_t, in_i, in_v, WT, tau_m, tau_s, theta, membrane_reset, t_ref,
                           t_end, max_spikes)
    from concurrent.futures import ThreadPoolExecutor

    # cache-sized blocks, at least two per thread (blocks differ in their spike work)
    block = min(dense_block_size(n_in, n_out), max(64, -(-n_out // (2 * n_threads))))
    g_start, g_a, g_b = _dense_groups(in_t, t_end, tau_m, tau_s)

    def run(lo):
        return _dense_block(in_t, in_i, in_v, WT, lo, min(lo + block, n_out), g_start, g_a, g_b,
                            t_end, tau_m, tau_s, theta, membrane_reset, t_ref, max_spikes)

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
