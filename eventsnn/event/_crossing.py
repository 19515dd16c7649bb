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
        f = membrane(M, S, x, c, tau_m, tau_s) - theta
        if f >= 0.0:
            hi = x
        else:
            lo = x
        if hi - lo <= CROSSING_TOL_MS:
            return hi
        df = membrane_slope(M, S, x, c, tau_m, tau_s)
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
    u_lo = membrane(M, S, s_lo, c, tau_m, tau_s)
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
