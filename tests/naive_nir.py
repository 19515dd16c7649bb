"""An independent simulator of NIR chain graphs, straight from the NIR ODEs, in seconds.

Nothing here calls eventsnn: it reads the graph's nodes (weights, r, w_in, tau_syn, tau_mem,
v_threshold, ...) itself and solves each neuron analytically between inputs:

* CubaLIF: ``tau_syn di/dt = -i + w_in x``, ``tau_mem dv/dt = (v_leak - v) + r i``; an
  input impulse of weight W (area ``area`` times its value) adds ``w_in W area / tau_syn``
  to i; between inputs, from (v0, i0) at t0,
  ``i = i0 e^{-d/tau_syn}``, ``v = v_leak + (v0 - v_leak) e^{-d/tau_mem}
  + r i0 tau_syn / (tau_mem - tau_syn) (e^{-d/tau_mem} - e^{-d/tau_syn})``.
  The first time v exceeds v_threshold is bracketed by scanning v on a fine grid and refined
  with brentq; then v <- v_reset.
* LIF: ``tau dv/dt = (v_leak - v) + r x``; an impulse of weight W adds ``r W area / tau`` to
  v, so v can exceed v_threshold only right after the inputs of one time.

Weight nodes are applied event by event with explicit loops (Conv2d from its definition,
with zero padding); pooling relays every event separately (AvgPool2d: value / k^2,
SumPool2d: value).
"""
import math

import numpy as np
from scipy.optimize import brentq


def _chain(graph):
    succ = {a: b for a, b in graph.edges}
    start = next(n for n, node in graph.nodes.items() if type(node).__name__ == "Input")
    out, n = [], start
    while n is not None:
        out.append((n, graph.nodes[n]))
        n = succ.get(n)
    return out


def _arr(x):
    return np.asarray(x, dtype=float)


def _param(node, field, i):
    a = _arr(getattr(node, field)).ravel()
    return float(a[0] if a.size == 1 else a[i])


def _weight_events(node, shape, events):
    """Apply a weight node to events [(t, flat index, value)] of a layer of ``shape``:
    returns ({target: [(t, weighted value)]}, output shape)."""
    kind = type(node).__name__
    W = _arr(node.weight)
    per = {}
    if kind in ("Affine", "Linear"):
        for t, j, val in events:
            for i in range(W.shape[0]):
                per.setdefault(i, []).append((t, W[i, j] * val))
        return per, (W.shape[0],)
    # Conv2d (C_out, C_in, k, k), square stride/padding
    Co, Ci, k, _ = W.shape
    C, H, Wd = shape
    s = int(np.ravel(node.stride)[0])
    p = int(np.ravel(node.padding)[0])
    Ho, Wo = (H + 2 * p - k) // s + 1, (Wd + 2 * p - k) // s + 1
    for t, j, val in events:
        c, y, x = j // (H * Wd), (j // Wd) % H, j % Wd
        for co in range(Co):
            for oy in range(Ho):
                for ox in range(Wo):
                    ky, kx = y + p - oy * s, x + p - ox * s
                    if 0 <= ky < k and 0 <= kx < k:
                        per.setdefault(co * Ho * Wo + oy * Wo + ox, []).append(
                            (t, W[co, c, ky, kx] * val))
    return per, (Co, Ho, Wo)


def cubalif_spikes(inputs, tau_syn, tau_mem, r, w_in, v_th, v_leak=0.0, v_reset=0.0, area=1.0,
                   horizon=None, h_frac=3e-3):
    """Spike times (s) of one CubaLIF neuron for inputs [(t, W)] (any order). Returns
    (times, closest): closest is the smallest relative gap (v_th - v) / v_th at a sampled
    local maximum below threshold (a test skips grazes the scan cannot resolve)."""
    inputs = sorted(inputs)
    if horizon is None:
        horizon = (inputs[-1][0] if inputs else 0.0) + 40 * max(tau_syn, tau_mem)
    h = h_frac * min(tau_syn, tau_mem)
    c = r * tau_syn / (tau_mem - tau_syn)

    def v_at(v0, i0, d):
        em, es_ = np.exp(-d / tau_mem), np.exp(-d / tau_syn)
        return v_leak + (v0 - v_leak) * em + c * i0 * (em - es_)

    spikes, closest = [], math.inf
    t0, v0, i0, e = 0.0, 0.0, 0.0, 0
    while t0 < horizon:
        while e < len(inputs) and inputs[e][0] <= t0:
            i0 += w_in * inputs[e][1] * area / tau_syn
            e += 1
        t1 = inputs[e][0] if e < len(inputs) else horizon
        grid = np.linspace(0.0, t1 - t0, max(2, int(math.ceil((t1 - t0) / h))) + 1)
        f = v_at(v0, i0, grid) - v_th
        up = np.nonzero(f > 0)[0]
        stop = up[0] if up.size else f.size
        inner = np.arange(1, stop - 1)
        peaks = inner[(f[inner] >= f[inner - 1]) & (f[inner] >= f[inner + 1])]
        if peaks.size:
            closest = min(closest, float(np.min(-f[peaks])) / v_th)
        if up.size == 0:
            closest = min(closest, float(-f[-1]) / v_th)
            v0 = float(v_at(v0, i0, t1 - t0))
            i0 *= math.exp(-(t1 - t0) / tau_syn)
            t0 = t1
            continue
        j = up[0]
        d = brentq(lambda d: v_at(v0, i0, d) - v_th, grid[j - 1], grid[j], xtol=1e-18,
                   rtol=4 * np.finfo(float).eps, maxiter=500)
        spikes.append(t0 + d)
        i0 *= math.exp(-d / tau_syn)
        t0, v0 = t0 + d, v_reset
    return np.array(spikes), closest


def lif_spikes(inputs, tau, r, v_th, v_leak=0.0, v_reset=0.0, area=1.0):
    """Spike times (s) of one NIR LIF neuron (no synaptic current) for inputs [(t, W)].
    Returns (times, closest) with closest the smallest relative gap |v - v_th| / v_th after
    an input time (ties of v and v_th are where > and >= differ)."""
    by_time = {}
    for t, w in inputs:
        by_time[t] = by_time.get(t, 0.0) + w
    spikes, closest = [], math.inf
    t0, v = 0.0, 0.0
    for t in sorted(by_time):
        v = v_leak + (v - v_leak) * math.exp(-(t - t0) / tau) + r * by_time[t] * area / tau
        t0 = t
        closest = min(closest, abs(v - v_th) / v_th)
        if v > v_th:
            spikes.append(t)
            v = v_reset
    return np.array(spikes), closest


def simulate(graph, times_s, idx, values, area=1.0):
    """Simulate a chain graph on input events. Returns (levels, closest): levels is a list
    with, for each neuron node, (spike times in s, neuron indices) sorted by (time, index);
    closest is the smallest graze gap seen (see the neuron functions)."""
    chain = _chain(graph)
    shape = tuple(int(d) for d in np.ravel(chain[0][1].input_type["input"]))
    events = sorted(zip(map(float, times_s), map(int, idx), map(float, values)))
    per, levels, closest = None, [], math.inf
    for name, node in chain[1:]:
        kind = type(node).__name__
        if kind in ("Affine", "Linear", "Conv2d"):
            per, shape = _weight_events(node, shape, events)
        elif kind in ("CubaLIF", "LIF"):
            out = []
            for i in range(int(np.prod(shape))):
                ins = per.get(i, [])
                if kind == "CubaLIF":
                    sp, cl = cubalif_spikes(ins, _param(node, "tau_syn", i), _param(node, "tau_mem", i),
                                            _param(node, "r", i), _param(node, "w_in", i),
                                            _param(node, "v_threshold", i), _param(node, "v_leak", i),
                                            _param(node, "v_reset", i), area)
                else:
                    sp, cl = lif_spikes(ins, _param(node, "tau", i), _param(node, "r", i),
                                        _param(node, "v_threshold", i), _param(node, "v_leak", i),
                                        _param(node, "v_reset", i), area)
                closest = min(closest, cl)
                out += [(t, i) for t in sp]
            out.sort()
            levels.append((np.array([o[0] for o in out]), np.array([o[1] for o in out], dtype=int)))
            events = [(t, i, 1.0) for t, i in out]
        elif kind in ("AvgPool2d", "SumPool2d"):
            k = int(np.ravel(node.kernel_size)[0])
            C, H, W = shape
            Ho, Wo = H // k, W // k
            scale = 1.0 / k ** 2 if kind == "AvgPool2d" else 1.0
            relayed = []
            for t, j, val in events:
                c, y, x = j // (H * W), (j // W) % H, j % W
                if y // k < Ho and x // k < Wo:
                    relayed.append((t, c * Ho * Wo + (y // k) * Wo + x // k, val * scale))
            events, shape = relayed, (C, Ho, Wo)
        elif kind == "Flatten":
            shape = (int(np.prod(shape)),)
        elif kind == "Output":
            break
        else:
            raise ValueError(f"naive_nir: no support for {kind}")
    return levels, closest
