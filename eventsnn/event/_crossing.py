"""Exact threshold-crossing solver for the SRM membrane between two events.

Between events the membrane of a neuron is, at offset s >= 0 (ms) from its reference time,

    u(s) = A exp(-s / tau_m) + B exp(-s / tau_s),   A = c M,  B = -c S,  c = tau_m / (tau_m - tau_s)

where M and S are the neuron's two traces. A sum of two exponentials has at most one
extremum, found in closed form; the first crossing of theta is then bracketed on a monotone
piece and located by Newton's method safeguarded by bisection, to CROSSING_TOL_MS.
"""
import math

from numba import njit

from .._constants import CROSSING_MAX_ITER, CROSSING_TOL_MS


@njit(cache=True, nogil=True)
def membrane(M, S, s, c, tau_m, tau_s):
    """u at offset s (ms) for traces M, S."""
    return c * (M * math.exp(-s / tau_m) - S * math.exp(-s / tau_s))


@njit(cache=True, nogil=True)
def membrane_slope(M, S, s, c, tau_m, tau_s):
    """du/ds (1/ms) at offset s."""
    return c * (S * math.exp(-s / tau_s) / tau_s - M * math.exp(-s / tau_m) / tau_m)


@njit(cache=True, nogil=True)
def extremum_offset(M, S, c, tau_m, tau_s):
    """Offset of the single extremum of u (any sign), or NaN if u is monotone."""
    # du/ds = 0 where (S / tau_s) e^{-s/tau_s} = (M / tau_m) e^{-s/tau_m}: only when M and S
    # have the same sign. In logarithms: the ratio (S tau_m) / (M tau_s) can leave the float
    # range for extreme but valid time constants (tau_s = 1e-4 ms, tiny M), where a plain
    # quotient underflowed to a division by zero.
    if M == 0.0 or S == 0.0 or (M > 0.0) != (S > 0.0):
        return math.nan
    log_ratio = math.log(abs(S)) - math.log(abs(M)) + math.log(tau_m / tau_s)
    return log_ratio / (1.0 / tau_s - 1.0 / tau_m)


@njit(cache=True, nogil=True)
def upper_bound(M, S, span, c, tau_m, tau_s):
    """Cheap upper bound of u on [0, span] (span may be inf): each exponential term is
    monotone, so each is bounded by its larger end value."""
    A = c * M
    B = -c * S
    a = math.exp(-span / tau_m)
    b = math.exp(-span / tau_s)
    return max(A, A * a) + max(B, B * b)


@njit(cache=True, nogil=True)
def peak_bound(M, S, c):
    """Upper bound of u over all s >= 0, with no exponentials: at its only extremum s*,
    u = M exp(-s*/tau_m) (from du/ds = 0), so u <= max(u(0), M, 0) (0 being the limit at infinity)."""
    return max(c * (M - S), M, 0.0)


@njit(cache=True, nogil=True)
def _root(M, S, lo, hi, c, tau_m, tau_s, theta):
    """Root of u - theta on [lo, hi] where u is increasing, u(lo) < theta <= u(hi)."""
    x = 0.5 * (lo + hi)
    for _ in range(CROSSING_MAX_ITER):
        # u and du/ds at x from one pair of exponentials (the values membrane and
        # membrane_slope give, bit for bit)
        em = math.exp(-x / tau_m)
        es = math.exp(-x / tau_s)
        f = c * (M * em - S * es) - theta
        if f >= 0.0:
            hi = x
        else:
            lo = x
        if hi - lo <= CROSSING_TOL_MS:
            return hi
        df = c * (S * es / tau_s - M * em / tau_m)
        xn = x - f / df if df > 0.0 else math.nan
        if not (lo < xn < hi):
            xn = 0.5 * (lo + hi)
        if abs(xn - x) <= 0.25 * CROSSING_TOL_MS:
            return xn
        x = xn
    return hi


@njit(cache=True, nogil=True)
def first_crossing(M, S, s_lo, s_hi, c, tau_m, tau_s, theta):
    """First offset s in [s_lo, s_hi] with u(s) >= theta; inf if there is none.

    s_hi may be inf (u decays to 0 < theta, so only a maximum can reach threshold).
    """
    # at s_lo = 0 (the usual call) u is c (M - S): exp(-0) = 1, the same value
    u_lo = c * (M - S) if s_lo == 0.0 else membrane(M, S, s_lo, c, tau_m, tau_s)
    if u_lo >= theta:
        return s_lo
    s_x = extremum_offset(M, S, c, tau_m, tau_s)
    inside = s_x > s_lo and s_x < s_hi  # False for NaN
    if inside:
        u_x = membrane(M, S, s_x, c, tau_m, tau_s)
        if u_x > u_lo:  # the extremum is a maximum: u rises on [s_lo, s_x]
            if u_x >= theta:
                return _root(M, S, s_lo, s_x, c, tau_m, tau_s, theta)
            return math.inf  # falls after the maximum, never reaches theta on the span
    if s_hi == math.inf:
        return math.inf
    if membrane(M, S, s_hi, c, tau_m, tau_s) < theta:
        return math.inf
    lo = s_x if inside else s_lo  # after an interior minimum u rises to s_hi
    return _root(M, S, lo, s_hi, c, tau_m, tau_s, theta)


#: relative safety margin of :func:`rise_bound` (covers the rounding of u(0) and the slope)
RISE_MARGIN = 1e-9


@njit(cache=True, nogil=True, inline="always")
def rise_bound(M, S, c, tau_m, tau_s, theta):
    """Safe lower bound (ms, >= 0) of the first offset at which u reaches theta, for the
    traces M, S at offset 0; inf when u cannot reach theta at all. No exponentials.

    - u's only extremum has the value M e^{-s*/tau_m} and u -> 0, so u <= max(u(0), M)
      for s >= 0 (theta > 0): below theta, no crossing.
    - du/ds = c (S e^{-s/tau_s} / tau_s - M e^{-s/tau_m} / tau_m); each term is bounded by
      its value at 0 when it is positive and by 0 otherwise, so du/ds <= D with
      D = c (S+ / tau_s + M- / tau_m) for c > 0 (tau_m > tau_s) and
      D = |c| (M+ / tau_m + S- / tau_s) for c < 0, and u(s) <= u(0) + D s: the crossing
      is no earlier than (theta - u(0)) / D.
    The gap theta - u(0) is shrunk by the rounding of u(0) (1e-12 of |c| (|M| + |S|)) and the
    quotient by RISE_MARGIN, so that the bound stays below the crossing that the exact solver
    would locate.
    """
    u0 = c * (M - S)
    if u0 < theta and M < theta:
        return math.inf
    if c > 0.0:
        D = c * (max(S, 0.0) / tau_s + max(-M, 0.0) / tau_m)
    else:
        D = -c * (max(M, 0.0) / tau_m + max(-S, 0.0) / tau_s)
    gap = theta - u0 - 1e-12 * abs(c) * (abs(M) + abs(S))
    if gap <= 0.0 or not D > 0.0:
        return 0.0
    return gap / D * (1.0 - RISE_MARGIN)


@njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _halley_step(M, S, lo, hi, x, c, itau_m, itau_s, theta):
    """One safeguarded Halley step of ``_halley_root`` from x on the bracket [lo, hi]:
    (final, value, lo, hi) with the bracket narrowed by u(x); when final, value is the root to
    CROSSING_TOL_MS, else the next guess."""
    A = c * M * math.exp(-x * itau_m)
    B = c * S * math.exp(-x * itau_s)
    f = A - B - theta
    if f >= 0.0:
        hi = x
    else:
        lo = x
    if hi - lo <= CROSSING_TOL_MS:
        return True, hi, lo, hi
    d1 = B * itau_s - A * itau_m
    d2 = A * itau_m * itau_m - B * itau_s * itau_s
    xn = math.nan
    if d1 > 0.0:
        den = 2.0 * d1 * d1 - f * d2
        if den > 0.0:
            xn = x - 2.0 * f * d1 / den
    if not (lo < xn < hi):
        xn = 0.5 * (lo + hi)
    else:
        step = abs(xn - x)
        if step < 1e-3:
            d3 = B * itau_s * itau_s * itau_s - A * itau_m * itau_m * itau_m
            K = d2 * d2 / (4.0 * d1 * d1) + abs(d3) / (6.0 * d1)
            if K * step * step * step <= 0.1 * CROSSING_TOL_MS:
                return True, xn, lo, hi
    if abs(xn - x) <= 0.25 * CROSSING_TOL_MS:
        return True, xn, lo, hi
    return False, xn, lo, hi


@njit(cache=True, nogil=True, error_model="numpy")
def _halley_root(M, S, lo, hi, x, c, itau_m, itau_s, theta):
    """Root of u - theta on [lo, hi] with u(lo) < theta <= u(hi) and one sign change of
    u - theta there (not necessarily monotone), from the guess x: Halley steps (cubic
    convergence; u', u'' and u''' cost no more exponentials than u), safeguarded by
    bisection, to CROSSING_TOL_MS. A step is final when its estimated error after it,
    (u''^2/(4u'^2) + |u'''|/(6u')) |step|^3, is below a tenth of the tolerance."""
    if not (lo < x < hi):
        x = 0.5 * (lo + hi)
    for _ in range(CROSSING_MAX_ITER):
        final, x, lo, hi = _halley_step(M, S, lo, hi, x, c, itau_m, itau_s, theta)
        if final:
            return x
    return hi


@njit(cache=True, nogil=True, error_model="numpy")
def interval_crossing(M, S, span, a, b, c, tau_m, tau_s, theta):
    """First offset s in [0, span] (span finite or inf) with u(s) >= theta, inf if there is
    none; the same crossing as ``first_crossing(M, S, 0, span, ...)`` to CROSSING_TOL_MS,
    with a, b = e^{-span/tau_m}, e^{-span/tau_s} given (shared by the neurons of an
    interval). u at both ends costs no exponential: when u(span) >= theta > u(0), u - theta
    changes sign once on [0, span] (u has one extremum at most), so the root is bracketed
    there without locating the extremum; otherwise only a maximum inside can reach theta.
    The root search starts from the secant of the bracket (``_halley_root``)."""
    u0 = c * (M - S)
    if u0 >= theta:
        return 0.0
    itau_m = 1.0 / tau_m
    itau_s = 1.0 / tau_s
    u1 = c * (M * a - S * b)
    if u1 >= theta:
        return _halley_root(M, S, 0.0, span, span * ((theta - u0) / (u1 - u0)), c, itau_m,
                            itau_s, theta)
    s_x = extremum_offset(M, S, c, tau_m, tau_s)
    if not (0.0 < s_x < span):  # False for NaN
        return math.inf
    u_x = membrane(M, S, s_x, c, tau_m, tau_s)
    if u_x < theta:  # a maximum below theta, or a minimum
        return math.inf
    return _halley_root(M, S, 0.0, s_x, s_x * ((theta - u0) / (u_x - u0)), c, itau_m, itau_s,
                        theta)


@njit(cache=True, nogil=True, error_model="numpy")
def interval_crossings(Mv, Sv, n, span, a, b, c, tau_m, tau_s, theta, out, lo_, hi_, x_, act):
    """out[q] = ``interval_crossing(Mv[q], Sv[q], span, a, b, ...)`` for q < n, bit for bit:
    the same brackets, start points and Halley steps (``_halley_root``), run in lockstep over
    the still unsolved neurons (one step of each per pass) instead of one neuron to the end
    after another. The steps of different neurons do not depend on one another, so their
    exponentials and divisions overlap in the processor instead of waiting one on the
    other. lo_, hi_, x_ (float) and act (int) are work arrays of at least n entries."""
    itau_m = 1.0 / tau_m
    itau_s = 1.0 / tau_s
    na = 0
    for q in range(n):
        M = Mv[q]
        S = Sv[q]
        out[q] = math.inf
        u0 = c * (M - S)
        if u0 >= theta:
            out[q] = 0.0
            continue
        u1 = c * (M * a - S * b)
        if u1 >= theta:
            hi = span
            x = span * ((theta - u0) / (u1 - u0))
        else:
            s_x = extremum_offset(M, S, c, tau_m, tau_s)
            if not (0.0 < s_x < span):  # False for NaN
                continue
            u_x = membrane(M, S, s_x, c, tau_m, tau_s)
            if u_x < theta:
                continue
            hi = s_x
            x = s_x * ((theta - u0) / (u_x - u0))
        if not (0.0 < x < hi):
            x = 0.5 * (0.0 + hi)
        lo_[q] = 0.0
        hi_[q] = hi
        x_[q] = x
        act[na] = q
        na += 1
    it = 0
    while na > 0 and it < CROSSING_MAX_ITER:
        it += 1
        kept = 0
        for p in range(na):  # one step of _halley_root for each unsolved neuron
            q = act[p]
            x = x_[q]
            lo = lo_[q]
            hi = hi_[q]
            final, xn, lo, hi = _halley_step(Mv[q], Sv[q], lo, hi, x, c, itau_m, itau_s, theta)
            if final:
                out[q] = xn
                continue
            x_[q] = xn
            lo_[q] = lo
            hi_[q] = hi
            act[kept] = q
            kept += 1
        na = kept
    for p in range(na):  # the iteration cap: as _halley_root, the bracket's upper end
        out[act[p]] = hi_[act[p]]


@njit(cache=True, nogil=True, error_model="numpy")
def newton_crossing(m, s, s_hi, c, tau_m, tau_s, theta):
    """First offset in [0, s_hi] at which u reaches theta for the traces m, s at offset 0;
    inf if there is none. Newton's method from the left: if u(0) < theta and u reaches theta
    at x_c, u rises to its only extremum (a maximum, after x_c: u decays to 0 < theta) and
    u'' changes sign at most once, so u is concave on [0, x_c]; the tangent steps rise
    monotonically to x_c, never past it, and u' <= 0 before theta is reached means no
    crossing (``_conv._tangent_bound`` is its first step). One pair of exponentials per
    step serves u and u'. A grazing approach converges slowly: after 50 steps
    ``first_crossing`` decides."""
    x = 0.0
    for it in range(50):
        if it == 0:     # e^0 = 1: the same numbers without the two exponentials
            A = m
            B = s
        else:
            A = m * math.exp(-x / tau_m)
            B = s * math.exp(-x / tau_s)
        u = c * (A - B)
        if u >= theta:
            return x
        du = c * (B / tau_s - A / tau_m)
        if not du > 0.0:
            return math.inf
        step = (theta - u) / du
        x += step
        if x > s_hi:
            return math.inf
        if step <= 0.25 * CROSSING_TOL_MS:
            return x
    return first_crossing(m, s, 0.0, s_hi, c, tau_m, tau_s, theta)
