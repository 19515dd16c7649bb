"""numba kernel of a Conv2d layer of SRM neurons: ``conv_layer``.

The semantics and neuron state of ``_engine.sparse_layer`` on the layer's CSR connectivity,
with the same neurons spiking at times within the exact solver's tolerance (not bit for
bit: the bounds and the solver differ). Tests compare it with ``sparse_layer`` and the
reference engine (the slow readable oracle) within 1e-9 ms. What differs:

- targets come from the kernel geometry instead of a CSR list: an input event at (c, y, x)
  reaches the output positions whose window holds (y, x), every output channel, and reads
  the weights W[:, c, ky, kx] as one contiguous row of the transposed weight (C_in, k, k,
  C_out) instead of an int64 target and a float64 weight per synapse; the state is stored
  by position, then channel, so a position's C_out neurons are one vectorised pass; with
  stride 1 the positions ox0..ox1 of a row that an input reaches are consecutive in the
  state, and in the weight flipped along kx they read consecutive rows, so a run of them
  with no refractory neuron (a "segment") is one pass (bit for bit the per-position pass:
  the same operations per neuron, the positions' bucket moves in the same order);
- the lower bound of a crossing is the tangent of u (``_tangent_bound``: u is concave up to
  a crossing from below), not ``rise_bound``'s bound of the slope: refreshing it from a
  reached entry is Newton's method from the left, so few entries come back, and a neuron
  past its maximum below threshold is dropped at once; the exact crossing is solved by the
  same Newton iteration (``_newton_crossing``);
- an input with w v <= 0 only delays crossings (the PSP kernel is >= 0): its neuron keeps
  its entry, with no screen or bound; other one-event inputs pass a branch-free screen in
  G's frame (is the bound finite and before the entry?) before any bound is computed;
- a reached entry is refreshed from the traces decayed to its key without storing them (the
  traces stay in G's frame: no re-framing at the next input), and an entry is exact iff it
  was solved after the position's last input (group stamps; no per-neuron flag to clear);
- pending crossings sit in buckets, one per input group (the distinct input times), instead
  of a binary heap. ``sparse_layer`` handles, before applying the group at time t, every
  heap entry with key <= t. Neurons do not interact within a layer, so what matters for a
  neuron's spikes is only which group its entry is handled before, never the order between
  neurons: an entry with key k belongs to the first group at or after k (or to the final
  sweep up to t_end), found from a uniform grid over the group times (``_group_index``).
  The buckets hold output *positions*, not neurons: a position sits in the bucket of the
  smallest key of its C_out neurons, and when its bucket comes due every neuron of the
  position with key <= t is handled (again, while its new key is <= t). An input lowers
  many keys of a position but rarely its smallest one, so a position moves between buckets
  about once per 20 lowered keys (a doubly linked list per bucket: O(1) insert, move and
  removal). Each neuron's entries are handled in the same groups as with one entry per
  neuron, so the spikes are the same, bit for bit.
"""
import math

import numpy as np
from numba import njit

from .._constants import CROSSING_TOL_MS
from ._crossing import RISE_MARGIN, first_crossing
from ._crossing import newton_crossing as _newton_crossing
from ._engine import EPOCH_EXP, _grow, _sorted_output
from ._geometry import input_span
from ._grouped import grouped_conv_layer


@njit(cache=True, nogil=True)
def _group_times(in_t, t_end):
    """Distinct input times up to t_end (the groups of coincident events), and the number of
    events at or before t_end."""
    n = 0
    while n < in_t.size and in_t[n] <= t_end:
        n += 1
    gt = np.empty(n)
    k = 0
    for e in range(n):
        if e == 0 or in_t[e] != in_t[e - 1]:
            gt[k] = in_t[e]
            k += 1
    return gt[:k].copy(), n


@njit(cache=True, nogil=True)
def _group_index(gt):
    """A uniform grid over the group times for ``_bucket``: (grid, t0, inv_dx) with
    grid[q] the first group whose cell int((gt[p] - t0) * inv_dx) is >= q, two cells per
    group. Rounding is monotone, so gt[p] >= key implies cell(gt[p]) >= cell(key): the
    first group at or after key is never before grid[cell(key)]."""
    P = gt.size
    n_cells = 2 * P + 1
    t0 = gt[0] if P > 0 else 0.0
    span = gt[P - 1] - t0 if P > 0 else 0.0
    inv_dx = n_cells / span if span > 0.0 else 0.0
    grid = np.empty(n_cells + 1, np.int64)
    q = 0
    for p in range(P):
        cp = min(int((gt[p] - t0) * inv_dx), n_cells)
        while q <= cp:
            grid[q] = p
            q += 1
    while q <= n_cells:
        grid[q] = P
        q += 1
    return grid, t0, inv_dx


@njit(cache=True, nogil=True, inline="always")
def _bucket(gt, grid, t0, inv_dx, p_min, key):
    """First group p >= p_min with gt[p] >= key (gt sorted), gt.size if there is none: from
    the grid cell of key, a short forward scan."""
    n = gt.size
    if p_min >= n or not key <= gt[n - 1]:
        return n
    x = (key - t0) * inv_dx
    p = p_min
    if x > 0.0:
        p = max(p, grid[int(x)])  # x <= the cell of gt[n - 1] <= n_cells
    while gt[p] < key:
        p += 1
    return p


@njit(cache=True, nogil=True, inline="always")
def _unlink(i, head, nxt, prv, bkt):
    a = prv[i]
    b = nxt[i]
    if a >= 0:
        nxt[a] = b
    else:
        head[bkt[i]] = b
    if b >= 0:
        prv[b] = a
    bkt[i] = -1


@njit(cache=True, nogil=True, inline="always")
def _lower_position(pos, k, p_min, gt, grid, t0, inv_dx, pkey, head, nxt, prv, bkt):
    """A neuron of position pos got the key k: if k is below the position's smallest key
    pkey[pos], the position moves to the bucket of the first group >= p_min at or after k."""
    if not k < pkey[pos]:
        return
    pkey[pos] = k
    b = _bucket(gt, grid, t0, inv_dx, p_min, k)
    if bkt[pos] == b:
        return
    if bkt[pos] >= 0:
        _unlink(pos, head, nxt, prv, bkt)
    h = head[b]
    nxt[pos] = h
    prv[pos] = -1
    if h >= 0:
        prv[h] = pos
    head[b] = pos
    bkt[pos] = b


@njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _tangent_bound(m, s, c, inv_m, inv_s, theta):
    """Safe lower bound (ms, >= 0) of the first offset at which u reaches theta, for the
    traces m, s at offset 0; inf when u cannot reach theta (given no further input).

    If u(0) < theta and u reaches theta at x_c, u rises to its only extremum (a maximum,
    after x_c: u decays to 0 < theta) and u'' changes sign at most once, so u is concave on
    [0, x_c] (convex there, u' could not fall back to 0 at the maximum and stay bounded
    after it). Hence u(x) <= u(0) + u'(0) x on [0, x_c]: x_c >= (theta - u(0)) / u'(0), and
    u'(0) <= 0 means no crossing. Refreshing this bound from the reached key is Newton's
    method from the left, which converges quadratically (the bound of ``rise_bound`` uses an
    upper bound of u' instead and converges linearly). The gap is shrunk by the rounding of
    u(0), u'(0) grown by its rounding (1e-12 of the terms: cancellation near the maximum) and
    the quotient shrunk by RISE_MARGIN, so that the bound stays below the crossing the exact
    solver locates."""
    cm = c * m
    cs = c * s
    gap = theta - (cm - cs) - 1e-12 * (abs(cm) + abs(cs))
    if gap <= 0.0:
        return 0.0
    if m < theta:  # u's maximum is m e^{-x*/tau_m} <= m (rise_bound)
        return math.inf
    am = cm * inv_m
    bs = cs * inv_s
    du = bs - am + 1e-12 * (abs(am) + abs(bs))
    if not du > 0.0:
        return math.inf
    return gap / du * (1.0 - RISE_MARGIN)


@njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _may_improve(m, s, base, L, c, inv_m, inv_s, theta):
    """False only if ``base + _tangent_bound(m, s, ...)`` is certainly inf or above L (the
    neuron's entry, or t_end): the same gap and slope, the quotient compared through a
    product (margins 1e-6 relative and 1e-9 of the times' magnitude cover its rounding and
    that of base + bound). No divisions and no branches: it vectorises."""
    cm = c * m
    cs = c * s
    gap = theta - (cm - cs) - 1e-12 * (abs(cm) + abs(cs))
    am = cm * inv_m
    bs = cs * inv_s
    du = bs - am + 1e-12 * (abs(am) + abs(bs))
    lhs = gap * (1.0 - RISE_MARGIN)
    rhs = du * ((L - base) * (1.0 + 1e-6) + 1e-9 * (abs(base) + abs(L)))
    return (gap <= 0.0) | ((m >= theta) & (du > 0.0) & (lhs < rhs))


@njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _tangent_g(m, s, a, bb, a_m, b_s, th_fm, theta):
    """``_tangent_bound`` of the traces m, s held in G's frame, at the group's time t, with
    the group's constants a = c e^{-x/tau_m}, bb = c e^{-x/tau_s} (x = t - G), a_m = a /
    tau_m, b_s = bb / tau_s, th_fm = theta e^{x/tau_m} (1 - 1e-12) (the test m(t) < theta
    with a margin for its rounding)."""
    cm = a * m
    cs = bb * s
    gap = theta - (cm - cs) - 1e-12 * (abs(cm) + abs(cs))
    if gap <= 0.0:
        return 0.0
    if m < th_fm:
        return math.inf
    am = a_m * m
    bs = b_s * s
    du = bs - am + 1e-12 * (abs(am) + abs(bs))
    if not du > 0.0:
        return math.inf
    return gap / du * (1.0 - RISE_MARGIN)


@njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _screen_g(m, s, w, key, a, bb, a_m, b_s, th_fm, theta, t, t_end, tol_t, max_inv):
    """False only if the input w <= 0 (it can only delay a crossing) or ``t + _tangent_g(m,
    s, ...)`` is certainly inf or not before min(key, t_end): the quotient compared through
    a product, with margins (2e-6 relative, tol_t = 2e-9 |t|) that cover its rounding and
    that of t + bound. No divisions and no branches: it vectorises.

    Two operations fewer than ``_tangent_g`` spells out, with no screened neuron lost (a
    superset of flags is harmless: the caller keeps a bound only if it is below the entry):
    du's rounding margin is 1e-12 max(1/tau) (|cm| + |cs|) (1 + 1e-7), at least
    ``_tangent_g``'s 1e-12 (|am| + |bs|) since am = a_m m rounds to within a few units of
    cm / tau_m (bs alike), so du here is >= its du; and the test du > 0 is left out: the
    time factor min(key, t_end) - t is >= 0 (every key is above t after the pop phase, and
    t <= t_end), so du <= 0 gives rhs <= 0 < gap (1 - RISE_MARGIN) when gap > 0."""
    cm = a * m
    cs = bb * s
    gap = theta - (cm - cs) - 1e-12 * (abs(cm) + abs(cs))
    am = a_m * m
    bs = b_s * s
    du = bs - am + 1.0000001e-12 * max_inv * (abs(cm) + abs(cs))
    rhs = du * ((min(key, t_end) - t) * (1.0 + 2e-6) + tol_t)
    return (w > 0.0) & ((gap <= 0.0) | ((m >= th_fm) & (gap * (1.0 - RISE_MARGIN) < rhs)))


@njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _bound_block(b, C_out, T, M, S, r, key, go, G, t, t_end, dm, ds, c, inv_m, inv_s, theta,
                 p_next, gt, grid, t0, inv_dx, pkey, head, nxt, prv, bkt):
    """New lower bounds of the neurons b..b+C_out-1 (one position) after their inputs at t
    (several inputs, or a position with refractory neurons): a branch-free screen first."""
    n_go = 0
    for o in range(C_out):
        i = b + o
        in_g = T[i] == G
        m = M[i] * dm if in_g else M[i]
        sv = S[i] * ds if in_g else S[i]
        base = t if in_g else r[i]
        go[o] = _may_improve(m, sv, base, min(key[i], t_end), c, inv_m, inv_s, theta)
        n_go += go[o]
    if n_go > 0:
        k_min = _bound_go(b, C_out, T, M, S, r, key, go, G, t, t_end, dm, ds, c, inv_m, inv_s,
                          theta)
        _lower_position(b // C_out, k_min, p_next, gt, grid, t0, inv_dx, pkey, head, nxt, prv,
                        bkt)


@njit(cache=True, nogil=True, inline="always")
def _bound_go(b, C_out, T, M, S, r, key, go, G, t, t_end, dm, ds, c, inv_m, inv_s, theta):
    """_tangent_bound of the screened neurons of a position; a bound before the neuron's
    entry replaces it. Returns the smallest new key (inf if none)."""
    k_min = math.inf
    for o in range(C_out):
        if not go[o]:
            continue
        i = b + o
        if T[i] == G:
            lb = t + _tangent_bound(M[i] * dm, S[i] * ds, c, inv_m, inv_s, theta)
        else:  # refractory (membrane reset): traces at r
            lb = r[i] + _tangent_bound(M[i], S[i], c, inv_m, inv_s, theta)
        if lb <= t_end and lb < key[i]:
            key[i] = lb
            k_min = min(k_min, lb)
    return k_min


@njit(cache=True, nogil=True, inline="always")
def _make_clean(b, C_out, t, r, T, M, S, G, tau_m, tau_s, membrane_reset):
    """The check of a dirty position (neurons b..b+C_out-1) before an input at t: the
    traces of neurons past their refractory end are brought to G's frame. Returns (clean:
    no neuron is refractory at t, special: some neuron's input needs the refractory rule)."""
    n_refr = 0
    for o in range(C_out):
        n_refr += t <= r[b + o]
    special = False
    for o in range(C_out):
        i = b + o
        if t <= r[i] and (t < r[i] or not membrane_reset):
            special = True
        elif T[i] != G:
            # T[i] <= t <= G + EPOCH_EXP min(tau): no overflow
            M[i] *= math.exp((T[i] - G) / tau_m)
            S[i] *= math.exp((T[i] - G) / tau_s)
            T[i] = G
    return n_refr == 0, special


@njit(cache=True, nogil=True, error_model="numpy")
def conv_layer(in_t, in_i, in_v, WT, C_in, H, W, C_out, Ho, Wo, k, stride, pad, tau_m, tau_s,
               theta, membrane_reset, t_ref, t_end, max_spikes):
    """Simulate one Conv2d layer of SRM neurons (times in ms).

    in_t, in_i, in_v: the input events sorted by time (input neuron c*H*W + y*W + x);
    WT: the weight transposed to (C_in, k, k, C_out), C-contiguous; the output neuron of
    channel o at (oy, ox) is o*Ho*Wo + oy*Wo + ox and sees input (y, x) = (oy*stride - pad +
    ky, ox*stride - pad + kx). Semantics and state as ``_engine.sparse_layer`` (spike times
    within the solver's tolerance of it); see the module docstring for what differs.

    Returns (spike times, neuron indices, exceeded) sorted by (time, neuron); exceeded is
    True (with some of the spikes) when more than max_spikes spikes were due."""
    n_pos = Ho * Wo
    n_out = C_out * n_pos
    HW = H * W
    Wf = WT.reshape(-1)
    c = tau_m / (tau_m - tau_s)
    span_max = EPOCH_EXP * min(tau_m, tau_s)
    gt, n_ev = _group_times(in_t, t_end)
    grid, t0, inv_dx = _group_index(gt)
    P = gt.size
    G = 0.0
    # neuron state by position, then channel: q = (oy*Wo + ox)*C_out + o (all channels of a
    # position are reached by the same events, and a weight row is contiguous in o)
    T = np.zeros(n_out)
    M = np.zeros(n_out)
    S = np.zeros(n_out)
    r = np.full(n_out, -math.inf)
    key = np.full(n_out, math.inf)
    # the entry of neuron q is its exact crossing iff solved[q] > stamp[position]: solved in
    # the pop phase of group solved[q], after the position's last input (group stamp[pos])
    solved = np.full(n_out, -1, np.int64)
    stamp = np.full(n_pos, -1, np.int64)
    # (position, channel) views: indexed by a range variable o, the innermost loops need no
    # negative-index fix-up per element (with a flat index b + o they did not vectorise)
    M2 = M.reshape((n_pos, C_out))
    S2 = S.reshape((n_pos, C_out))
    K2 = key.reshape((n_pos, C_out))
    W2 = Wf.reshape((C_in * k * k, C_out))
    n_words = (C_out + 7) // 8
    # flags of a position, or of a segment of up to k positions: whole 8-byte words, scanned
    # 8 flags at a time
    go = np.zeros(8 * ((k * C_out + 7) // 8), np.bool_)
    spc = np.zeros(k, np.bool_)      # the special positions of an input's row
    kmins = np.empty(k)              # the smallest lowered key of each position of a segment
    # the weight flipped along kx: (C_in, k, k, C_out) with kx reversed, so that with stride
    # 1 the positions ox, ox + 1, .. of a row read consecutive rows (the same values)
    WFf = np.ascontiguousarray(WT[:, :, ::-1, :]).reshape(-1)
    go_words = go.view(np.uint64)
    inv_m = 1.0 / tau_m
    inv_s = 1.0 / tau_s
    inv_max = max(inv_m, inv_s)
    # clean[pos]: every neuron of the position has its traces in G's frame (T == G) and is
    # past its refractory end (r < t for every later group): its input needs no checks.
    # Spikes and moves of G make positions dirty; a scan that finds nothing makes them
    # clean again
    clean = np.ones(n_pos, np.bool_)
    touched = np.empty(n_pos, np.int64)
    # buckets of positions: pkey[pos] the smallest key of the position when it was put in
    # its bucket (inf: in none); after the pop phase of a group every key is above its time
    pkey = np.full(n_pos, math.inf)
    head = np.full(P + 1, -1, np.int64)
    nxt = np.empty(n_pos, np.int64)
    prv = np.empty(n_pos, np.int64)
    bkt = np.full(n_pos, -1, np.int64)
    out_t = np.empty(64, np.float64)
    out_i = np.empty(64, np.int64)
    n_spk = 0
    e = 0
    for p in range(P + 1):
        t = gt[p] if p < P else math.inf
        # 1. entries of this group (keys <= t): fire exact ones, refine bounds. Each position
        # of the bucket: every neuron with key <= t is handled, again while its new key is
        # <= t; then the position goes to the bucket of its smallest key. The queue
        # operations are written out: numba counts references (atomically) to every array
        # passed to a helper, even an inlined one, which cost a fifth of the kernel
        while head[p] >= 0:
            pos = head[p]
            nb = nxt[pos]  # take the position off the bucket
            head[p] = nb
            if nb >= 0:
                prv[nb] = -1
            bkt[pos] = -1
            pkey[pos] = math.inf
            b = pos * C_out
            for o in range(C_out):  # the neurons due (a vectorised pass), then 8 flags at a time
                go[o] = K2[pos, o] <= t
            for wq in range(n_words):
                if go_words[wq] == 0:
                    continue
                for o in range(8 * wq, min(8 * wq + 8, C_out)):
                    if not go[o]:
                        continue
                    i = b + o
                    # (t = inf in the final sweep: a neuron without entry, key inf, is dropped
                    # at once by the test t_k > t_end)
                    while key[i] <= t:
                        t_k = key[i]
                        key[i] = math.inf
                        if t_k > t_end:
                            break  # rounding of t_k + s past t_end: never handled (as sparse_layer)
                        if solved[i] > stamp[pos]:
                            solved[i] = -1
                            if n_spk >= max_spikes:
                                t_o, i_o = _sorted_output(out_t, out_i, n_spk)
                                return t_o, i_o, True
                            out_t, out_i = _grow(out_t, out_i, n_spk)
                            out_t[n_spk] = t_k
                            out_i[n_spk] = (i - pos * C_out) * n_pos + pos
                            n_spk += 1
                            rr = t_k + t_ref
                            r[i] = rr
                            clean[pos] = False
                            if membrane_reset:
                                S_r = S[i] * math.exp(-(rr - T[i]) / tau_s)
                                M[i] = S_r
                                S[i] = S_r
                                T[i] = rr
                                d = _tangent_bound(S_r, S_r, c, inv_m, inv_s, theta)
                                if rr + d <= t_end:
                                    key[i] = rr + d
                            else:  # zero traces are the same in every frame
                                M[i] = 0.0
                                S[i] = 0.0
                                T[i] = G
                            continue
                        # a bound was reached with no input since: the state at t_k (not
                        # stored: the traces stay in G's frame), then a new bound or the exact
                        # solve
                        m = M[i]
                        sv = S[i]
                        if t_k > T[i]:
                            d = t_k - T[i]
                            m *= math.exp(-d / tau_m)
                            sv *= math.exp(-d / tau_s)
                        d = _tangent_bound(m, sv, c, inv_m, inv_s, theta)
                        if d == math.inf or t_k + d > t_end:
                            break
                        if t_k + d > t:
                            key[i] = t_k + d
                        else:
                            s = _newton_crossing(m, sv, t_end - t_k, c, tau_m, tau_s, theta)
                            if s == math.inf:
                                break
                            key[i] = t_k + s
                            solved[i] = p
            k0 = k1 = k2 = k3 = math.inf  # the smallest key (as in the input phase)
            for o in range(0, C_out - 3, 4):
                k0 = min(k0, K2[pos, o])
                k1 = min(k1, K2[pos, o + 1])
                k2 = min(k2, K2[pos, o + 2])
                k3 = min(k3, K2[pos, o + 3])
            for o in range(C_out - C_out % 4, C_out):
                k0 = min(k0, K2[pos, o])
            k_min = min(min(k0, k1), min(k2, k3))
            if k_min < math.inf:
                # into the bucket of the first group q >= p + 1 at or after k_min (k_min > t)
                pkey[pos] = k_min
                q = _bucket(gt, grid, t0, inv_dx, p + 1, k_min)
                h = head[q]
                nxt[pos] = h
                prv[pos] = -1
                if h >= 0:
                    prv[h] = pos
                head[q] = pos
                bkt[pos] = q
        if p == P:
            break
        # 2. apply the group's inputs, in the frame of G
        if t - G > span_max:
            G = t
            clean[:] = False
        x = t - G
        fm = math.exp(x / tau_m)
        fs = math.exp(x / tau_s)
        dm = 1.0 / fm
        ds = 1.0 / fs
        a_g = c * dm
        b_g = c * ds
        a_m = a_g * inv_m
        b_s = b_g * inv_s
        th_fm = theta * fm * (1.0 - 1e-12)
        tol_t = 2e-9 * abs(t)
        # a group of one event (the usual case for recorded events) reaches each neuron once:
        # its bounds are computed right after its input, while the position is in cache
        single = e + 1 >= n_ev or in_t[e + 1] != t
        n_touch = 0
        while e < n_ev and in_t[e] == t:
            j = in_i[e]
            val = in_v[e]
            ci, y, xx, oy0, oy1, ox0, ox1 = input_span(j, HW, W, Ho, Wo, k, stride, pad)
            for oy in range(oy0, oy1 + 1):
                ky = y + pad - oy * stride
                # the row's positions first: stamps, and the checks of dirty positions (any
                # neuron refractory at t: "special"; traces brought to G's frame)
                for ox in range(ox0, ox1 + 1):
                    pos = oy * Wo + ox
                    if stamp[pos] != p:
                        stamp[pos] = p
                        if not single:
                            touched[n_touch] = pos
                            n_touch += 1
                    sp = False
                    if not clean[pos]:
                        c_ok, sp = _make_clean(pos * C_out, C_out, t, r, T, M, S, G, tau_m,
                                               tau_s, membrane_reset)
                        clean[pos] = c_ok
                    spc[ox - ox0] = sp
                sx = ox0
                while sx <= ox1:
                    if single and not spc[sx - ox0]:
                        # a segment of positions with no special neuron, sx..ex-1: with stride
                        # 1 the run is contiguous in the state and in the kx-flipped weight
                        ex = sx + 1
                        if stride == 1:
                            while ex <= ox1 and not spc[ex - ox0]:
                                ex += 1
                        # input, then the screen of the bound, in one vectorised pass over
                        # the segment's neurons; an input with w <= 0 only delays crossings
                        # (the PSP kernel is >= 0): the entry stays a lower bound
                        b0 = (oy * Wo + sx) * C_out
                        n = (ex - sx) * C_out
                        wq0 = ((ci * k + ky) * k + k - 1 - (xx + pad - sx * stride)) * C_out
                        Mr = M[b0:b0 + n]
                        Sr = S[b0:b0 + n]
                        Kr = key[b0:b0 + n]
                        Wr = WFf[wq0:wq0 + n]
                        n_go = 0
                        for q in range(n):
                            w = Wr[q] * val
                            m = Mr[q] + w * fm
                            sv = Sr[q] + w * fs
                            Mr[q] = m
                            Sr[q] = sv
                            go[q] = _screen_g(m, sv, w, Kr[q], a_g, b_g, a_m, b_s, th_fm,
                                              theta, t, t_end, tol_t, inv_max)
                            n_go += go[q]
                        if n_go > 0:
                            for q in range(ex - sx):
                                kmins[q] = math.inf
                            jq = 0           # the position of flag q, q < q_end (no division)
                            q_end = C_out
                            for wq in range((n + 7) // 8):  # the flags 8 at a time
                                if go_words[wq] == 0:
                                    continue
                                for q in range(8 * wq, min(8 * wq + 8, n)):
                                    if not go[q]:
                                        continue
                                    while q >= q_end:
                                        jq += 1
                                        q_end += C_out
                                    i = b0 + q
                                    lb = t + _tangent_g(M[i], S[i], a_g, b_g, a_m, b_s, th_fm,
                                                        theta)
                                    if lb <= t_end and lb < key[i]:
                                        key[i] = lb
                                        kmins[jq] = min(kmins[jq], lb)
                            for ox in range(sx, ex):
                                pos = oy * Wo + ox
                                if kmins[ox - sx] < pkey[pos]:
                                    _lower_position(pos, kmins[ox - sx], p + 1, gt, grid, t0,
                                                    inv_dx, pkey, head, nxt, prv, bkt)
                        sx = ex
                        continue
                    kx = xx + pad - sx * stride
                    wr = (ci * k + ky) * k + kx
                    wb = wr * C_out
                    pos = oy * Wo + sx
                    b = pos * C_out
                    special = spc[sx - ox0]
                    sx += 1
                    if not special:  # a group of several events: the bounds at its end
                        for o in range(C_out):
                            w = W2[wr, o] * val
                            M2[pos, o] += w * fm
                            S2[pos, o] += w * fs
                        continue
                    for o in range(C_out):
                        i = b + o
                        w = Wf[wb + o] * val
                        if t <= r[i]:
                            if not membrane_reset:
                                continue  # full reset: inputs at or before r are forgotten
                            if t < r[i]:
                                # refractory: traces are values at r (T[i] = r); the current
                                # integrates, the membrane restarts from 0 at r
                                w *= math.exp(-(r[i] - t) / tau_s)
                                M[i] += w
                                S[i] += w
                                continue
                        M[i] += w * fm
                        S[i] += w * fs
                    if single:
                        _bound_block(b, C_out, T, M, S, r, key, go, G, t, t_end, dm, ds, c,
                                     inv_m, inv_s, theta, p + 1, gt, grid, t0, inv_dx, pkey,
                                     head, nxt, prv, bkt)
            e += 1
        # 3. a lower bound of the next crossing of every neuron of a touched position (a
        # full-reset neuron whose input was discarded has M = S = 0: no bound, no entry)
        for q in range(n_touch):
            _bound_block(touched[q] * C_out, C_out, T, M, S, r, key, go, G, t, t_end, dm, ds,
                         c, inv_m, inv_s, theta, p + 1, gt, grid, t0, inv_dx, pkey, head, nxt,
                         prv, bkt)
    t_o, i_o = _sorted_output(out_t, out_i, n_spk)
    return t_o, i_o, False


def transposed_weight(layer, w):
    """The weight that ``conv_layer`` takes, (C_in, k, k, C_out) C-contiguous, from ``w``, the
    layer's weight values along its CSR links (``forward.kernel_weights``: the snapshot a
    simulation works with). A weight no link uses (a kernel position that only ever meets
    padding) is 0: it never reaches a neuron."""
    link = layer.weight_link()
    flat = np.zeros(link.size)
    flat[link >= 0] = w[link[link >= 0]]
    return np.ascontiguousarray(flat.reshape(layer.weight_shape).transpose(1, 2, 3, 0))


#: ``run_conv`` takes the group-interval kernel (``_grouped.grouped_conv_layer``) when
#: groups x output neurons is at most this many times the synaptic updates, events x
#: fan-out: per neuron and group it costs a screen and a share of the convolution (~9 ns
#: here), the event kernel ~20 ns per update (benchmarks/conv_kernels.py, digits 16C3p1)
GROUPED_COST_RATIO = 2.0

KERNELS = ("auto", "event", "grouped")


@njit(cache=True, nogil=True)
def _grouped_cheaper(in_t, t_end, n_out, fan_out, ratio):
    """groups x n_out <= ratio x events x fan_out over the events at or before t_end, and
    groups of two events or more on average (with one event per group the grouped kernel
    does the event kernel's work plus a screen of every neuron; it could only win on layers
    so small that both kernels cost next to nothing)."""
    n = 0
    g = 0
    while n < in_t.size and in_t[n] <= t_end:
        if n == 0 or in_t[n] != in_t[n - 1]:
            g += 1
        n += 1
    return g > 0 and n >= 2 * g and g * n_out <= ratio * n * fan_out


def prefers_grouped(layer, t, t_end):
    """True when the cost model picks the group-interval kernel for the input times ``t``
    (sorted, ms) of a Conv2d ``layer``: few distinct times carrying many events each
    (``_grouped_cheaper``)."""
    C_out, Ho, Wo = layer.out_shape
    reach = -(-layer.kernel_size // layer.stride)  # output rows (columns) an input reaches
    return _grouped_cheaper(t, float(t_end), C_out * Ho * Wo, C_out * reach * reach,
                            float(GROUPED_COST_RATIO))


def run_conv(layer, WT, t, i, v, tau_m, tau_s, theta, membrane_reset, t_ref, t_end, max_spikes,
             kernel="auto"):
    """Simulate a bound Conv2d ``layer`` with its ``transposed_weight``: ``conv_layer`` (the
    event kernel) or ``_grouped.grouped_conv_layer`` (the group-interval kernel), as
    ``kernel`` says; "auto" asks the cost model (``prefers_grouped``). Both give the same
    spikes to the crossing solver's tolerance (as ``sparse_layer`` and the reference
    engine)."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    C_in, H, W = layer.in_shape
    C_out, Ho, Wo = layer.out_shape
    if kernel == "grouped" or (kernel == "auto" and prefers_grouped(layer, t, t_end)):
        return grouped_conv_layer(t, i, v, WT, C_in, H, W, C_out, Ho, Wo, layer.kernel_size,
                                  layer.stride, layer.padding, tau_m, tau_s, theta,
                                  membrane_reset, t_ref, t_end, max_spikes)
    return conv_layer(t, i, v, WT, C_in, H, W, C_out, Ho, Wo, layer.kernel_size, layer.stride,
                      layer.padding, tau_m, tau_s, theta, membrane_reset, t_ref, t_end,
                      max_spikes)
