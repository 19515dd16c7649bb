"""Group-interval kernels of Conv2d and Dense layers of SRM neurons: ``grouped_conv_layer``
and ``grouped_dense_layer`` (a Dense layer is the 1x1 convolution of an n_in x 1 x 1 image
with n_out channels, run by the same kernel).

For inputs with few distinct times (frames, or the "current" encoder: every pixel at each of
a handful of times), each time carrying many events. ``_conv.conv_layer`` works per event and
target (a bound and a queue entry for every update, an exact solve when an entry comes due):
the right algorithm for recorded events, thousands of groups of one event each. Here the
work is organised by group instead, O(groups x neurons + events x fan-out + exact solves):

1. the events of a group at time t are added to every target's traces, kept on a common
   reference time G as in ``_engine.sparse_layer`` (an input costs a multiply-add, no
   exponential; G moves in epochs of ``EPOCH_EXP``, so no overflow);
2. every neuron is screened over the interval [t, t_next] up to the next group (t_end after
   the last) by ``_engine._headroom``, a safe bound of u from the traces and two
   exponentials per interval shared by all neurons (no per-neuron exponential);
3. only the neurons the screen cannot clear are searched exactly on the interval
   (``_crossing.interval_crossing``: u at the interval's ends is free with the shared
   exponentials, the root is bracketed and found by safeguarded Halley steps), spike, reset and are searched again (membrane reset:
   several spikes per interval are possible).

Semantics are those of the engine (``_engine`` module docstring): pending crossings fire
before the inputs of their time, full reset forgets every input at or before t_spk + t_ref,
membrane reset restarts u from 0 at r = t_spk + t_ref with the current kept (a neuron
refractory at t, r >= t, has u(s) = S(r) eps(s - r) after r and its M trace is set again
from S(r) at the first group after r, as ``_engine.dense_layer`` does); a spike due after
t_end (rounding of t + s) is dropped. The spike times are exact solves from the state at the
group time instead of from the state at the last lower bound, so they agree with
``sparse_layer``'s and the reference engine's to the solver's tolerance, not bit for bit.
"""
import math

import numpy as np
from numba import njit

from ._crossing import interval_crossing, interval_crossings, rise_bound
from ._engine import EPOCH_EXP, _grow, _headroom, _membrane_from_current, _sorted_output
from ._geometry import input_span


@njit(cache=True, nogil=True, error_model="numpy")
def _scatter(in_i, in_v, e0, e1, Wf, HW, W, Ho, Wo, k, stride, pad, C_out, fm, fs, M, S):
    """Add the events e0..e1-1 (one time) to their targets' traces in the frame of G:
    M += x fm, S += x fs with x = weight * value (fm = e^{(t - G)/tau_m}, fs alike).
    Neuron state by position then channel: q = (oy*Wo + ox)*C_out + o."""
    for e in range(e0, e1):
        j = in_i[e]
        val = in_v[e]
        ci, y, xx, oy0, oy1, ox0, ox1 = input_span(j, HW, W, Ho, Wo, k, stride, pad)
        for oy in range(oy0, oy1 + 1):
            ky = y + pad - oy * stride
            for ox in range(ox0, ox1 + 1):
                kx = xx + pad - ox * stride
                wb = ((ci * k + ky) * k + kx) * C_out
                b = (oy * Wo + ox) * C_out
                for o in range(C_out):
                    x = Wf[wb + o] * val
                    M[b + o] += x * fm
                    S[b + o] += x * fs


@njit(cache=True, nogil=True, error_model="numpy")
def _correlate(X, Wf, C_in, H, W, Ho, Wo, k, stride, pad, C_out, R):
    """R = the correlation of the input image X (C_in, H, W flat: the sum of the values of
    a group's events per input neuron) with the kernel, in the state order (position, then
    channel): per output position the weighted sum over its window, one row of C_out
    weights per tap; 0 where the window holds no input."""
    HW = H * W
    R[:] = 0.0
    for oy in range(Ho):
        y0 = oy * stride - pad
        ky0 = max(0, -y0)
        ky1 = min(k, H - y0)
        for ox in range(Wo):
            x0 = ox * stride - pad
            kx0 = max(0, -x0)
            kx1 = min(k, W - x0)
            b = (oy * Wo + ox) * C_out
            for ci in range(C_in):
                for ky in range(ky0, ky1):
                    row = ci * HW + (y0 + ky) * W + x0
                    for kx in range(kx0, kx1):
                        xv = X[row + kx]
                        if xv != 0.0:
                            wb = ((ci * k + ky) * k + kx) * C_out
                            for o in range(C_out):
                                R[b + o] += Wf[wb + o] * xv


@njit(cache=True, nogil=True, error_model="numpy")
def _add_image(R, fm, fs, M, S):
    """M += R fm, S += R fs: a group's correlation into the traces in the frame of G."""
    for i in range(M.size):
        r = R[i]
        M[i] += r * fm
        S[i] += r * fs


@njit(cache=True, nogil=True)
def _same_events(in_i, in_v, e0, e1, p0, p1):
    """The events e0..e1-1 are those of p0..p1-1 (neurons and values, in order)."""
    if e1 - e0 != p1 - p0:
        return False
    for q in range(e1 - e0):
        if in_i[e0 + q] != in_i[p0 + q] or in_v[e0 + q] != in_v[p0 + q]:
            return False
    return True


@njit(cache=True, nogil=True, error_model="numpy")
def _screen(M, S, dm, ds, a, b, c, itau_m, itau_s, theta, cand, H):
    """Neurons whose ``_headroom`` over the interval is not positive (u may reach theta)
    into cand; returns their number. The headrooms first (into H: a loop without
    dependencies between neurons, it vectorises), then the compaction."""
    for i in range(M.size):
        H[i] = _headroom(M[i], S[i], dm, ds, a, b, c, itau_m, itau_s, theta)
    n = 0
    for i in range(M.size):
        cand[n] = i  # branch-free compaction: candidates are a minority, but not rare
        n += H[i] <= 0.0
    return n


@njit(cache=True, nogil=True)
def _sort_spikes(out_t, out_i, n0, n1, lo, hi):
    """Sort the spikes n0..n1-1, all with times in [lo, hi], by (time, neuron) in place: a
    bucket pass on the time (as many buckets as spikes, so a bucket holds one or two) and
    an insertion sort of the nearly sorted result; with no finite span, np.argsort."""
    m = n1 - n0
    if m < 2:
        return
    span = hi - lo
    tt = np.empty(m)
    ii = np.empty(m, np.int64)
    if span > 0.0 and span < math.inf:
        cnt = np.zeros(m + 1, np.int64)
        scale = m / span
        for k in range(n0, n1):
            cnt[min(max(int((out_t[k] - lo) * scale), 0), m - 1) + 1] += 1
        for q in range(m):
            cnt[q + 1] += cnt[q]
        for k in range(n0, n1):
            q = min(max(int((out_t[k] - lo) * scale), 0), m - 1)
            tt[cnt[q]] = out_t[k]
            ii[cnt[q]] = out_i[k]
            cnt[q] += 1
    else:
        order = np.argsort(out_t[n0:n1])
        for k in range(m):
            tt[k] = out_t[n0 + order[k]]
            ii[k] = out_i[n0 + order[k]]
    moves = 0
    for p in range(1, m):  # insertion sort by (time, neuron)
        tv = tt[p]
        iv = ii[p]
        q = p - 1
        while q >= 0 and (tt[q] > tv or (tt[q] == tv and ii[q] > iv)):
            tt[q + 1] = tt[q]
            ii[q + 1] = ii[q]
            q -= 1
        tt[q + 1] = tv
        ii[q + 1] = iv
        moves += p - 1 - q
        if moves > 16 * m:
            # many spikes at one time (neurons with the same input): O(m log m) instead
            tt, ii = _sorted_output(out_t[n0:n1], out_i[n0:n1], m)
            break
    out_t[n0:n1] = tt
    out_i[n0:n1] = ii


@njit(cache=True, nogil=True)
def _output(out_t, out_i, n):
    """The spikes, each interval's already sorted, in (time, neuron) order: intervals follow
    one another in time, so only a spike at a group time shared by two intervals (a
    rounding case) can be out of order; then everything is sorted again."""
    for k in range(n - 1):
        if out_t[k] > out_t[k + 1] or (out_t[k] == out_t[k + 1] and out_i[k] > out_i[k + 1]):
            return _sorted_output(out_t, out_i, n)
    return out_t[:n].copy(), out_i[:n].copy()


@njit(cache=True, nogil=True, error_model="numpy")
def grouped_conv_layer(in_t, in_i, in_v, WT, C_in, H, W, C_out, Ho, Wo, k, stride, pad, tau_m,
                       tau_s, theta, membrane_reset, t_ref, t_end, max_spikes):
    """Simulate one Conv2d layer of SRM neurons group by group (times in ms).

    Arguments and result as ``_conv.conv_layer``: in_t, in_i, in_v the input events sorted
    by time (input neuron c*H*W + y*W + x); WT the weight transposed to (C_in, k, k, C_out),
    C-contiguous; output neuron o*Ho*Wo + oy*Wo + ox. Returns (spike times, neuron indices,
    exceeded) sorted by (time, neuron); exceeded is True (with some of the spikes) when more
    than max_spikes spikes were due. See the module docstring for the algorithm."""
    n_pos = Ho * Wo
    n_out = C_out * n_pos
    HW = H * W
    Wf = WT.reshape(-1)
    c = tau_m / (tau_m - tau_s)
    itau_m = 1.0 / tau_m
    itau_s = 1.0 / tau_s
    span_max = EPOCH_EXP * min(tau_m, tau_s)
    n_ev = 0
    while n_ev < in_t.size and in_t[n_ev] <= t_end:
        n_ev += 1
    # traces by position then channel (a weight row is contiguous in the channel)
    M = np.zeros(n_out)
    S = np.zeros(n_out)
    r = np.full(n_out, -math.inf)
    cand = np.empty(n_out, np.int64)
    hr = np.empty(n_out)  # headrooms (_screen)
    n_in = C_in * HW
    X = np.zeros(n_in)
    R = np.zeros(n_out)
    p0 = 0  # events p0..p1-1: the last dense group, whose correlation R holds
    p1 = -1
    # neurons with r >= the time of the group they last spiked after: refractory (or, under
    # membrane reset, with M to set from S(r)) at some later group
    refr = np.empty(n_out, np.int64)
    is_refr = np.zeros(n_out, np.bool_)
    n_refr = 0
    fix_i = np.empty(n_out, np.int64)
    fix_s = np.empty(n_out)
    # full reset: the candidates' traces at t and their crossings, solved all at once
    # (``interval_crossings``), and its work arrays
    c_m = np.empty(0 if membrane_reset else n_out)
    c_s = np.empty(c_m.size)
    c_x = np.empty(c_m.size)
    w_lo = np.empty(c_m.size)
    w_hi = np.empty(c_m.size)
    w_x = np.empty(c_m.size)
    w_act = np.empty(c_m.size, np.int64)
    out_t = np.empty(64, np.float64)
    out_i = np.empty(64, np.int64)
    n_spk = 0
    G = in_t[0] if n_ev > 0 else 0.0
    t_prev = G
    ds_prev = 1.0
    e = 0
    while e < n_ev:
        t = in_t[e]
        e1 = e + 1
        while e1 < n_ev and in_t[e1] == t:
            e1 += 1
        t_next = in_t[e1] if e1 < n_ev else t_end
        span = t_next - t
        # 1. refractory neurons: those still refractory at t stay listed; under membrane
        # reset the others get M from S(r) (S at the previous group time, taken before G moves)
        kk = 0
        n_fix = 0
        for q in range(n_refr):
            i = refr[q]
            if r[i] >= t:
                refr[kk] = i
                kk += 1
            else:
                is_refr[i] = False
                if membrane_reset:
                    fix_i[n_fix] = i
                    fix_s[n_fix] = S[i] * ds_prev
                    n_fix += 1
        n_refr = kk
        if t - G > span_max:  # a new epoch: traces into the frame of t
            rm = math.exp(-(t - G) / tau_m)
            rs = math.exp(-(t - G) / tau_s)
            for i in range(n_out):
                M[i] *= rm
                S[i] *= rs
            G = t
        for q in range(n_fix):
            i = fix_i[q]
            M[i] = _membrane_from_current(fix_s[q], r[i], t_prev, G, tau_m, tau_s)
        x = t - G
        fm = math.exp(x / tau_m)
        fs = math.exp(x / tau_s)
        dm = math.exp(-x / tau_m)
        ds = math.exp(-x / tau_s)
        a = math.exp(-span / tau_m)
        b = math.exp(-span / tau_s)
        # 2. the group's inputs
        if (e1 - e) * 4 >= n_in:
            # a dense group as an image; the same events as the last dense group (frames
            # repeated, as the "current" encoder does at every input time): the same R
            if not _same_events(in_i, in_v, e, e1, p0, p1):
                for q in range(e, e1):
                    X[in_i[q]] += in_v[q]
                _correlate(X, Wf, C_in, H, W, Ho, Wo, k, stride, pad, C_out, R)
                for q in range(e, e1):
                    X[in_i[q]] = 0.0
                p0 = e
                p1 = e1
            _add_image(R, fm, fs, M, S)
        else:
            _scatter(in_i, in_v, e, e1, Wf, HW, W, Ho, Wo, k, stride, pad, C_out, fm, fs, M, S)
        if not membrane_reset:
            # full reset: a neuron refractory at t had M = S = 0 and forgets these inputs
            for q in range(n_refr):
                M[refr[q]] = 0.0
                S[refr[q]] = 0.0
        # 3. screen every neuron over [t, t_next]; refractory ones (membrane reset) are
        # searched anyway (their M is not in use)
        n_cand = _screen(M, S, dm, ds, a, b, c, itau_m, itau_s, theta, cand, hr)
        if membrane_reset:
            for q in range(n_refr):
                i = refr[q]
                if _headroom(M[i], S[i], dm, ds, a, b, c, itau_m, itau_s, theta) > 0.0:
                    cand[n_cand] = i
                    n_cand += 1
        # 4. exact search of the candidates on the interval, with resets
        n0 = n_spk
        if not membrane_reset:
            # full reset: at most one spike per neuron and interval, from the state at t
            for q in range(n_cand):
                i = cand[q]
                c_m[q] = M[i] * dm
                c_s[q] = S[i] * ds
            interval_crossings(c_m, c_s, n_cand, span, a, b, c, tau_m, tau_s, theta, c_x,
                               w_lo, w_hi, w_x, w_act)
            for q in range(n_cand):
                sc = c_x[q]
                if sc == math.inf:
                    continue
                t_spk = t + sc
                if t_spk > t_end:  # rounding of t + s past t_end: not a spike (as sparse_layer)
                    continue
                if n_spk >= max_spikes:
                    _sort_spikes(out_t, out_i, n0, n_spk, t, t_next)
                    t_o, i_o = _output(out_t, out_i, n_spk)
                    return t_o, i_o, True
                if n_spk >= out_t.size:
                    out_t, out_i = _grow(out_t, out_i, n_spk)
                i = cand[q]
                out_t[n_spk] = t_spk
                pos = i // C_out
                out_i[n_spk] = (i - pos * C_out) * n_pos + pos
                n_spk += 1
                M[i] = 0.0
                S[i] = 0.0
                r[i] = t_spk + t_ref
                if not is_refr[i]:
                    is_refr[i] = True
                    refr[n_refr] = i
                    n_refr += 1
            n_cand = 0
        for q in range(n_cand):
            i = cand[q]
            ri = r[i]
            S_t = S[i] * ds
            S_o = S_t
            t_o = t
            spiked = False
            while True:
                if membrane_reset and ri >= t:
                    # refractory at t: u(s) = S(r) eps(s - r) after r, searched from r
                    if ri > t_next:
                        break
                    # the current at r from its value at the previous r (or t): chained
                    # short decays, as sparse_layer does (one long decay from t would put
                    # a rounding of (r - t)/tau_s into every later spike of a burst)
                    S_r = S_o * math.exp(-(ri - t_o) / tau_s)
                    S_o = S_r
                    t_o = ri
                    rest = t_next - ri
                    if rise_bound(S_r, S_r, c, tau_m, tau_s, theta) > rest:
                        break
                    sc = interval_crossing(S_r, S_r, rest, math.exp(-rest / tau_m),
                                           math.exp(-rest / tau_s), c, tau_m, tau_s, theta)
                    if sc == math.inf:
                        break
                    t_spk = ri + sc
                else:
                    sc = interval_crossing(M[i] * dm, S_t, span, a, b, c, tau_m, tau_s, theta)
                    if sc == math.inf:
                        break
                    t_spk = t + sc
                if t_spk > t_end:  # rounding of t + s past t_end: not a spike (as sparse_layer)
                    break
                if n_spk >= max_spikes:
                    _sort_spikes(out_t, out_i, n0, n_spk, t, t_next)
                    t_o, i_o = _output(out_t, out_i, n_spk)
                    return t_o, i_o, True
                if n_spk >= out_t.size:
                    out_t, out_i = _grow(out_t, out_i, n_spk)
                out_t[n_spk] = t_spk
                pos = i // C_out
                out_i[n_spk] = (i - pos * C_out) * n_pos + pos
                n_spk += 1
                ri = t_spk + t_ref
                spiked = True
                if not membrane_reset:
                    M[i] = 0.0
                    S[i] = 0.0
                    break
            if spiked:
                r[i] = ri
                if not is_refr[i]:
                    is_refr[i] = True
                    refr[n_refr] = i
                    n_refr += 1
        _sort_spikes(out_t, out_i, n0, n_spk, t, t_next)
        t_prev = t
        ds_prev = ds
        e = e1
    t_o, i_o = _output(out_t, out_i, n_spk)
    return t_o, i_o, False


@njit(cache=True, nogil=True)
def grouped_dense_layer(in_t, in_i, in_v, WT, tau_m, tau_s, theta, membrane_reset, t_ref, t_end,
                        max_spikes):
    """Simulate one Dense layer of SRM neurons group by group (times in ms).

    Arguments and result as ``_engine.dense_layer``: in_t, in_i, in_v the input events
    sorted by time; WT the transposed weight (n_in, n_out), C-contiguous. Returns (spike
    times, neuron indices, exceeded) sorted by (time, neuron); exceeded is True (with some
    of the spikes) when more than max_spikes spikes were due.

    A Dense layer is the 1x1 convolution of an n_in x 1 x 1 image with n_out channels, and
    WT is then exactly ``grouped_conv_layer``'s (C_in, k, k, C_out) weight: per group the
    summed input (the correlation: a matvec of the group's input vector with WT, reused
    when the group repeats the one before, as the "current" encoder's frames do), then the
    screen, exact solves and resets of the module docstring."""
    n_in, n_out = WT.shape
    return grouped_conv_layer(in_t, in_i, in_v, WT.reshape(n_in, 1, 1, n_out), n_in, 1, 1,
                              n_out, 1, 1, 1, 1, 0, tau_m, tau_s, theta, membrane_reset, t_ref,
                              t_end, max_spikes)
