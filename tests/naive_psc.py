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
            Delta = float(v[t, j] - u_prev)  # Python float: 1/subnormal is inf, no warning
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


# ---- ASF-BP: whole network, forward flows and the equivalent-network backward -------------
def asf_forward(net, x, theta, leak=1.0, pool_theta=0.75):
    """ASF-BP forward neuron by neuron, for input spikes x (T, B, n_in).

    Neuron layers (Dense/Conv2d) run :func:`if_layer` (v = u + x; s = [v > theta]; u = leak v
    (1 - s)) on x[t] = W s_below[t], except the last one, which only integrates: u_T = sum_t
    W s[t]. Pooling layers are followed by IF neurons (threshold pool_theta, leak 1) unless
    pool_theta is None; Flatten (and pooling without neurons) pass their values on.
    Returns dict(FO_in, FI, FO, spiking, u_out): the flows FI = sum_t x[t] (None where no
    neurons), FO = sum_t (layer output)[t], each (B, n)."""
    from .naive_dense import layer_forward  # loop versions of W s, pooling, flatten
    from eventsnn.layers import AvgPool2d, MaxPool2d

    T, B, _ = x.shape

    def tsum(h):
        out = np.zeros(h.shape[1:])
        for t in range(T):
            out += h[t]
        return out

    last = max(l for l, layer in enumerate(net.layers) if layer.has_neurons)
    rec = dict(FO_in=tsum(x), FI=[], FO=[], spiking=[], u_out=None)
    h = x
    for l, layer in enumerate(net.layers):
        is_pool = isinstance(layer, (AvgPool2d, MaxPool2d))
        if l == last:
            cur = layer_forward(layer, h)
            u = np.zeros((B, layer.n_out))
            for t in range(T):  # non-spiking read-out membrane
                u = u + cur[t]
            rec["FI"].append(tsum(cur))
            rec["FO"].append(None)
            rec["spiking"].append(False)
            rec["u_out"] = u
            break
        if layer.has_neurons or (is_pool and pool_theta is not None):
            cur = layer_forward(layer, h)
            th, lk = (theta, leak) if layer.has_neurons else (pool_theta, 1.0)
            s = np.zeros_like(cur)
            for b in range(B):
                _, s[:, b, :] = if_layer(cur[:, b, :], th, lk)
            rec["FI"].append(tsum(cur))
            rec["FO"].append(tsum(s))
            rec["spiking"].append(True)
            h = s
        else:
            h = layer_forward(layer, h)
            rec["FI"].append(None)
            rec["FO"].append(tsum(h))
            rec["spiking"].append(False)
    return rec


def asf_loss(u_out, y, theta, T):
    """Per-sample loss sum_k (u_k/(theta T) - Y_k)^2 (one-hot Y) and dL/du (B, K)."""
    B, K = u_out.shape
    losses, grad = np.zeros(B), np.zeros((B, K))
    for b in range(B):
        for k in range(K):
            d = u_out[b, k] / (theta * T) - (1.0 if k == y[b] else 0.0)
            losses[b] += d * d
            grad[b, k] = 2 * d / (theta * T)
    return losses, grad


def asf_backward(net, rec, grad_u, scales, gate=True):
    """ASF-BP backward on the equivalent network (paper Eq. 9-11, layer-wise S, Eq. 12):

        dL/dFI_n     = dL/dFO_n * S_n * [FI_n > 0]   (the gate: code only; off with gate=False)
        dL/dW_n      = dL/dFI_n FO_{n-1}^T            (summed over the batch)
        dL/dFO_{n-1} = W_n^T dL/dFI_n

    starting from dL/dFI of the read-out = dL/du_T (grad_u, (B, K)). Layers without neurons
    pass dL/dFO on unchanged (their FI is their FO). In the equivalent network a pooling layer
    maps flows: average pooling sends g/k^2 to each window input, max pooling sends g to the
    window input with the largest flow FO_below (first in row-major order on ties).

    Returns (grads, gfi, gfo): weight gradients (None for weightless layers), and per layer
    dL/dFI (None where the layer has no FI) and dL/dFO (None for the read-out)."""
    from .naive_dense import _pool_windows, links
    from eventsnn.layers import AvgPool2d, Flatten, MaxPool2d

    L = len(net.layers)
    last = max(l for l, layer in enumerate(net.layers) if layer.has_neurons)
    B = grad_u.shape[0]
    grads, gfi, gfo = [None] * L, [None] * L, [None] * L
    g_below = None
    for l in range(last, -1, -1):
        layer = net.layers[l]
        below = rec["FO"][l - 1] if l > 0 else rec["FO_in"]
        if l == last:
            g_in = np.array(grad_u, dtype=float)
        else:
            gfo[l] = g_below
            if rec["spiking"][l]:
                g_in = np.zeros_like(g_below)
                for b in range(B):
                    for i in range(g_below.shape[1]):
                        open_ = (not gate) or rec["FI"][l][b, i] > 0
                        g_in[b, i] = g_below[b, i] * scales[l] * (1.0 if open_ else 0.0)
            else:
                g_in = g_below
        if rec["FI"][l] is not None:
            gfi[l] = g_in
        g_next = np.zeros((B, layer.n_in))
        if layer.has_weight:
            W = layer.weight
            grads[l] = np.zeros(W.shape)
            for i, j, w in links(layer):
                for b in range(B):
                    grads[l][w] += g_in[b, i] * below[b, j]
                    g_next[b, j] += W[w] * g_in[b, i]
        elif isinstance(layer, Flatten):
            g_next = g_in.copy()
        elif isinstance(layer, AvgPool2d):
            k2 = layer.kernel_size ** 2
            for o, idx in enumerate(_pool_windows(layer)):
                for b in range(B):
                    for j in idx:
                        g_next[b, j] += g_in[b, o] / k2
        elif isinstance(layer, MaxPool2d):
            for o, idx in enumerate(_pool_windows(layer)):
                for b in range(B):
                    best = idx[0]
                    for j in idx:
                        if below[b, j] > below[b, best]:
                            best = j
                    g_next[b, best] += g_in[b, o]
        else:
            raise TypeError(f"no ASF-BP reference for {layer!r}")
        g_below = g_next
    return grads, gfi, gfo
