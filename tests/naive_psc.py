"""Slow, loop-by-loop references of the PSC / ASF neurons and of TSSL-BP, NA and ASF-BP.

Written straight from the formulas (papers and docs/rules_psc.md), one neuron and one step at
a time, with plain Python floats. They are the oracles of tests/test_psc_neurons.py,
test_tssl.py, test_na.py and test_asf.py.
"""
import math

import numpy as np


def psc_filter(x, tau_s):
    """a[t] = (1 - 1/tau_s) a[t-1] + x[t]/tau_s for x of shape (T, M)."""
    T, M = x.shape
    out = np.zeros((T, M))
    for j in range(M):
        a = 0.0
        for t in range(T):
            a = (1 - 1 / tau_s) * a + x[t, j] / tau_s
            out[t, j] = a
    return out


def psc_neuron(c, tau_m, tau_s, theta, reset="zero", forced=None):
    """One PscLIF neuron on a current sequence c (list of floats).

    ``forced = (t0, state)``: at step t0 the membrane is set to theta and the spike state is
    forced to ``state`` (the SNS neighbour of NA, re-simulated from the start).
    Returns lists v, s, u, a."""
    am, as_ = 1 - 1 / tau_m, 1 - 1 / tau_s
    mem, psc = 0.0, 0.0
    V, S, U, A = [], [], [], []
    for t, ct in enumerate(c):
        vt = am * mem + ct
        st = 1.0 if vt > theta else 0.0
        if forced is not None and forced[0] == t:
            vt, st = theta, float(forced[1])
        if st:
            mem = vt - theta if reset == "subtract" else 0.0
        else:
            mem = vt
        psc = as_ * psc + st / tau_s
        V.append(vt)
        S.append(st)
        U.append(mem)
        A.append(psc)
    return V, S, U, A


def psc_layer(c, tau_m, tau_s, theta, reset="zero"):
    T, M = c.shape
    outs = [np.zeros((T, M)) for _ in range(4)]
    for j in range(M):
        cols = psc_neuron(list(c[:, j]), tau_m, tau_s, theta, reset)
        for o, col in zip(outs, cols):
            o[:, j] = col
    return tuple(outs)


def if_layer(x, theta, leak):
    T, M = x.shape
    V, S = np.zeros((T, M)), np.zeros((T, M))
    for j in range(M):
        u = 0.0
        for t in range(T):
            vt = u + x[t, j]
            st = 1.0 if vt > theta else 0.0
            u = leak * vt * (1 - st)
            V[t, j], S[t, j] = vt, st
    return V, S


def tssl_delta(g, v, s, u, a, tau_m, tau_s, theta, reset="zero", low_psc=True, psc_threshold=None,
               silent_timing=False, max_inv=8.0, width=0.2):
    """TSSL-BP per the docs: explicit sums over k and explicit next-spike search."""
    T, M = g.shape
    am, as_ = 1 - 1 / tau_m, 1 - 1 / tau_s
    if psc_threshold is None:
        psc_threshold = 1 / (4 * tau_s)
    out = np.zeros((T, M))
    for j in range(M):
        D = [0.0] * T
        for t in reversed(range(T)):
            P = sum(as_ ** (k - t) / tau_s * g[k, j] for k in range(t, T))
            u_prev = u[t - 1, j] if t > 0 else 0.0
            Delta = v[t, j] - u_prev
            factor = min(1 / Delta, max_inv) if Delta > 0 else 0.0
            nxt = [p for p in range(t + 1, T) if s[p, j] == 1.0]
            removed = theta if reset == "subtract" else v[t, j]
            if nxt:
                p = nxt[0]
                intra = removed / tau_m * am ** (p - t - 1) * D[p]
                leak_path = am ** (p - t) * D[p]
            else:
                intra = 0.0
                leak_path = 0.0
            if s[t, j] == 1.0:
                D[t] = factor * (P + intra)
                res = D[t]
            else:
                D[t] = leak_path
                res = D[t] + (factor * (P + intra) if silent_timing else 0.0)
            if low_psc and a[t, j] < psc_threshold:
                z = max(-8.0, min(8.0, (theta - v[t, j]) / width))
                sig = 1 / (1 + math.exp(-z))
                res = P * sig * (1 - sig) / width
            out[t, j] = res
    return out


def na_delta(g, c, v, s, tau_m, tau_s, theta, reset="zero", b=10.0, power=3):
    """NA with SNS: each neighbour is a full re-run of the neuron with the membrane forced to
    theta and the firing state flipped at t (brute force, from step 0). The loss change is
    the first-order term grad_a L . (a_p - a) with grad_a L = g (Eq. 5-6, 13), and the scale
    clip(1/d^power, -b, b) with d = theta - v[t] (Eq. 17: power 3)."""
    T, M = g.shape
    out = np.zeros((T, M))
    for j in range(M):
        _, _, _, a = psc_neuron(list(c[:, j]), tau_m, tau_s, theta, reset)
        for t in range(T):
            _, _, _, ap = psc_neuron(list(c[:, j]), tau_m, tau_s, theta, reset,
                                     forced=(t, 1.0 - s[t, j]))
            dL = sum(g[k, j] * (ap[k] - a[k]) for k in range(T))
            d = theta - v[t, j]
            scale = b if d == 0 else max(-b, min(b, 1 / d ** power))
            out[t, j] = dL * scale
    return out


def asf_ratio(FO, FI, gated=True):
    """Scale ratio of ASF-BP's code: sum FO / sum FI over entries with FI >= FO (gated) or
    over all entries; 1 when the selected FI sum is below 1e-3."""
    fo, fi = np.ravel(FO), np.ravel(FI)
    num = den = 0.0
    for o, i in zip(fo, fi):
        if (not gated) or i >= o:
            num += o
            den += i
    return 1.0 if den < 1e-3 else num / den
