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

from ._crossing import first_crossing, upper_bound
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

    Returns (spike times, neuron indices, exceeded), sorted by (time, neuron); exceeded is
    True (and the spikes so far are returned) when more than max_spikes spikes were due."""
    n_out = WT.shape[1]
    c = tau_m / (tau_m - tau_s)
    M = np.zeros(n_out)
    S = np.zeros(n_out)
    r = np.full(n_out, -math.inf)      # end of refractoriness (full reset: discard inputs <= r)
    flag = np.zeros(n_out, np.bool_)
    cand = np.empty(n_out, np.int64)
    refr = np.empty(n_out, np.int64)   # neurons that may be refractory at the next group
    pre_M = np.empty(n_out)
    pre_S = np.empty(n_out)
    in_refr = np.zeros(n_out, np.bool_)
    n_refr = 0
    out_t = np.empty(64, np.float64)
    out_i = np.empty(64, np.int64)
    n_spk = 0
    n_ev = in_t.size
    e = 0
    while e < n_ev and in_t[e] <= t_end:
        t = in_t[e]
        g0 = e
        while e < n_ev and in_t[e] == t:
            e += 1
        last = not (e < n_ev and in_t[e] <= t_end)
        t_next = t_end if last else in_t[e]
        span = t_next - t
        a = math.exp(-span / tau_m)
        b = math.exp(-span / tau_s)
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
        n_flag = 0
        for q in range(g0, e):
            n_flag = _add_and_bound(M, S, WT[in_i[q]], in_v[q], a, b, c, theta, flag)
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
            for i in range(n_out):
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
                        s = first_crossing(M[i], S[i], s_lo, span, c, tau_m, tau_s, theta)
                        if s == math.inf:
                            break
                        t_spk = t + s
                    if n_spk >= max_spikes:
                        t_o, i_o = _sorted_output(out_t, out_i, n_spk)
                        return t_o, i_o, True
                    spiked = True
                    out_t, out_i = _grow(out_t, out_i, n_spk)
                    out_t[n_spk] = t_spk
                    out_i[n_spk] = i
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
    t_o, i_o = _sorted_output(out_t, out_i, n_spk)
    return t_o, i_o, False


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


@njit(cache=True, nogil=True)
def _apply_group(in_t, in_i, in_v, e, t, indptr, targets, weights, tau_m, tau_s,
                 membrane_reset, t0, M, S, r, stamp, group, touched):
    """Apply every input event at time t (starting at event e) to its targets, updating
    their traces lazily. Returns (next event index, number of touched neurons)."""
    n_touch = 0
    n_ev = in_t.size
    while e < n_ev and in_t[e] == t:
        j = in_i[e]
        val = in_v[e]
        for q in range(indptr[j], indptr[j + 1]):
            i = targets[q]
            # _receive written out by hand: through the inlined helper this loop, the hot
            # path of Conv layers, ran 3x slower (numba 0.68; CNN on the digits)
            w = weights[q] * val
            if t <= r[i]:
                if not membrane_reset:
                    continue  # full reset: inputs at or before r are forgotten
                if t < r[i]:
                    # refractory: the current integrates, the membrane restarts from 0 at r
                    w *= math.exp(-(r[i] - t) / tau_s)
            elif t > t0[i]:
                d = t - t0[i]
                M[i] *= math.exp(-d / tau_m)
                S[i] *= math.exp(-d / tau_s)
                t0[i] = t
            M[i] += w
            S[i] += w
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

    Per-neuron traces are updated lazily; an indexed heap holds each neuron's predicted
    next crossing. Returns (spike times, neuron indices, exceeded) sorted by (time, neuron);
    exceeded is True (with the spikes so far) when more than max_spikes spikes were due."""
    c = tau_m / (tau_m - tau_s)
    t0 = np.zeros(n_out)
    M = np.zeros(n_out)
    S = np.zeros(n_out)
    r = np.full(n_out, -math.inf)
    stamp = np.full(n_out, -1, np.int64)
    touched = np.empty(n_out, np.int64)
    heap = heap_new(n_out)
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
        # 1. fire every predicted crossing at or before t
        while heap_size(heap) > 0 and heap_top(heap)[0] <= t:
            t_spk, i = heap_pop(heap)
            if n_spk >= max_spikes:
                t_o, i_o = _sorted_output(out_t, out_i, n_spk)
                return t_o, i_o, True
            out_t, out_i = _grow(out_t, out_i, n_spk)
            out_t[n_spk] = t_spk
            out_i[n_spk] = i
            n_spk += 1
            _reset(i, t_spk, tau_s, membrane_reset, t_ref, t0, M, S, r)
            rr = r[i]
            if membrane_reset and S[i] != 0.0 and rr < t_end:
                s = first_crossing(M[i], S[i], 0.0, t_end - rr, c, tau_m, tau_s, theta)
                if s < math.inf:
                    heap_set(heap, i, rr + s)
        if t == math.inf:
            break
        # 2. apply all inputs at time t
        e, n_touch = _apply_group(in_t, in_i, in_v, e, t, indptr, targets, weights, tau_m,
                                  tau_s, membrane_reset, t0, M, S, r, stamp, group, touched)
        group += 1
        # 3. predict the next crossing of every touched neuron
        for q in range(n_touch):
            i = touched[q]
            s = math.inf
            # u's only extremum has the value M exp(-s*/tau_m), so over all future times
            # u <= max(u(now), M): a free test before the exact search
            if max(c * (M[i] - S[i]), M[i]) >= theta:
                start = max(t, t0[i])
                s = first_crossing(M[i], S[i], start - t0[i], t_end - t0[i], c, tau_m, tau_s, theta)
            if s < math.inf:
                heap_set(heap, i, t0[i] + s)
            elif heap_pos[i] >= 0:
                heap_remove(heap, i)
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
