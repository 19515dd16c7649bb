"""numba forward kernels of the PSC membrane-reset family and of ASF-BP's IF/LIF neurons.

Every kernel takes a time-major 2-D array ``(T, M)`` (M = batch x neurons, flattened) and
trusts its inputs (validated by :mod:`eventsnn.dense.psc_neurons`). References written
straight from the formulas are in ``tests/naive_psc.py``.
"""
import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def psc_filter(x, alpha_s, inv_tau_s):
    """a[t] = alpha_s a[t-1] + x[t] inv_tau_s, a[-1] = 0."""
    T, M = x.shape
    a = np.empty((T, M))
    for j in range(M):
        acc = 0.0
        for t in range(T):
            acc = alpha_s * acc + x[t, j] * inv_tau_s
            a[t, j] = acc
    return a


@njit(cache=True, nogil=True)
def psc_layer(c, alpha_m, alpha_s, inv_tau_s, theta, subtract):
    """Membrane-reset LIF with PSC output.

    v[t] = alpha_m u[t-1] + c[t]; s[t] = [v[t] > theta]; u[t] = v[t](1 - s[t]) (or
    v[t] - theta s[t] when ``subtract``); a[t] = alpha_s a[t-1] + s[t] inv_tau_s.
    Returns v, s, u, a, each (T, M)."""
    T, M = c.shape
    v = np.empty((T, M))
    s = np.zeros((T, M))
    u = np.empty((T, M))
    a = np.empty((T, M))
    for j in range(M):
        mem = 0.0
        psc = 0.0
        for t in range(T):
            vt = alpha_m * mem + c[t, j]
            v[t, j] = vt
            spike = vt > theta
            if spike:
                s[t, j] = 1.0
                mem = vt - theta if subtract else 0.0
                psc = alpha_s * psc + inv_tau_s
            else:
                mem = vt
                psc = alpha_s * psc
            u[t, j] = mem
            a[t, j] = psc
    return v, s, u, a


@njit(cache=True, nogil=True)
def if_layer(x, theta, leak):
    """ASF-BP neuron: v[t] = u[t-1] + x[t]; s = [v > theta]; u[t] = leak v[t] (1 - s[t]).
    Returns v (pre-reset membrane) and s, each (T, M)."""
    T, M = x.shape
    v = np.empty((T, M))
    s = np.zeros((T, M))
    for j in range(M):
        mem = 0.0
        for t in range(T):
            vt = mem + x[t, j]
            v[t, j] = vt
            if vt > theta:
                s[t, j] = 1.0
                mem = 0.0
            else:
                mem = leak * vt
    return v, s
