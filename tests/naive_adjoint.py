"""Slow reference of the membrane-reset backward pass (docs/gradients.md, "Membrane reset"),
written spike by spike from the implicit-function derivation, with no adjoint traces:

for spike k of neuron i (previous restart r = t_{k-1} + t_ref, or none), the membrane at
t_k is u = S(r) eps(t_k - r) + sum_{r <= t_m < t_k} w v eps(t_k - t_m) with
S(r) = sum_{t_m < r} w v exp(-(r - t_m)/tau_s), and u(t_k) = theta gives

    dt_k/dx = -(du(t_k)/dx) / u'(t_k)

for every input time, weight and r. Every partial du(t_k)/dx is summed directly over all
input events of the neuron (O(spikes x events)); the total adjoint a_k = dL/dt_k + a_{k+1}
dt_{k+1}/dt_k is then a plain loop over the neuron's spikes in reverse. Connectivity comes
from ``naive_backward.weight_of`` (layer geometry), pooling from ``naive_backward``.
"""
import math

import numpy as np

from eventsnn.layers import AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d

from .naive_backward import pool_layer, weight_of


def _eps(s, tm, ts):
    return tm / (tm - ts) * (math.exp(-s / tm) - math.exp(-s / ts))


def _deps(s, tm, ts):
    return tm / (tm - ts) * (math.exp(-s / ts) / ts - math.exp(-s / tm) / tm)


def spike_partials(layer, neuron, below, here, k, kernel="depsilon", tau_grad=2.5):
    """Partials of u(t_k) for output spike k, as a dict:

    ``slope`` u'(t_k); ``norm`` Sh_k (u' with h in place of eps'; for kernel="exp" the
    current S(r) enters as an input event at r);
    ``prev`` the index of the neuron's previous spike (None for its first);
    ``d_prev`` du/dr (r = t_prev + t_ref); ``d_time`` {m: du/dt_m} with h in place of
    eps' for window inputs (so that -d_time/norm is the assigned share); ``d_weight``
    {flat weight index: du/dw}."""
    tm, ts, t_ref = neuron.tau_m, neuron.tau_s, neuron.t_ref
    i, tk = here.neurons[k], here.times[k]
    earlier = [q for q in range(k) if here.neurons[q] == i]
    prev = earlier[-1] if earlier else None
    r = here.times[prev] + t_ref if earlier else -math.inf

    def h(s):
        return math.exp(-s / tau_grad) if kernel == "exp" else _deps(s, tm, ts)

    S_r = 0.0
    slope = norm = 0.0
    d_time, d_weight = {}, {}
    for m in range(len(below.times)):
        link = weight_of(layer, i, below.neurons[m])
        if link is None:
            continue
        w, widx = link
        t_m, v_m = below.times[m], below.values[m]
        if t_m < r:                        # in S(r): reaches t_k through the restart
            decay = math.exp(-(r - t_m) / ts)
            S_r += w * v_m * decay
            d_time[m] = w * v_m * decay / ts * _eps(tk - r, tm, ts)
            d_weight[widx] = d_weight.get(widx, 0.0) + v_m * decay * _eps(tk - r, tm, ts)
        elif t_m < tk:                     # in the window (an input at t_k arrives after it)
            slope += w * v_m * _deps(tk - t_m, tm, ts)
            norm += w * v_m * h(tk - t_m)
            d_time[m] = -w * v_m * h(tk - t_m)
            d_weight[widx] = d_weight.get(widx, 0.0) + v_m * _eps(tk - t_m, tm, ts)
    d_prev = 0.0
    if prev is not None:
        slope += S_r * _deps(tk - r, tm, ts)
        if kernel == "exp":
            # Zhu's rule with S(r) as one more input at r, which the previous spike moves:
            # earlier inputs get no time share, the pseudo-input's share goes to the spike
            norm += S_r * h(tk - r)
            d_prev = -S_r * h(tk - r)
            d_time = {m: du for m, du in d_time.items() if below.times[m] >= r}
        else:
            norm += S_r * _deps(tk - r, tm, ts)
            d_prev = -S_r * math.exp(-(tk - r) / tm) / ts
    return dict(slope=slope, norm=norm, prev=prev, d_prev=d_prev, d_time=d_time,
                d_weight=d_weight)


def neuron_layer(layer, neuron, below, here, g_out, kernel="depsilon", tau_grad=2.5,
                 drop_nonpositive=True, clamp=(-4.0, 0.0), factor=1.0):
    """(dL/dt of the input events, dL/dW, totals a_k) of one Dense/Conv2d membrane-reset
    layer."""
    g_in = np.zeros(len(below.times))
    g_w = np.zeros(layer.weight.size)
    totals = np.asarray(g_out, float).copy()
    parts = [spike_partials(layer, neuron, below, here, k, kernel, tau_grad)
             for k in range(len(here.times))]
    for k in range(len(here.times) - 1, -1, -1):   # later spikes first: a_k is final here
        p, a = parts[k], totals[k]
        carries = p["norm"] > 0 or (p["norm"] < 0 and not drop_nonpositive)
        if carries:
            for m, du in p["d_time"].items():
                g_in[m] += -a * du / p["norm"]
            if p["prev"] is not None:
                totals[p["prev"]] += -a * p["d_prev"] / p["norm"]
        if clamp is not None:
            inv = -1.0 / p["slope"] if p["slope"] != 0 else -math.inf
            inv = min(max(inv, clamp[0]), clamp[1])
        else:
            inv = -1.0 / p["slope"] if p["slope"] > 0 else 0.0
        for widx, du in p["d_weight"].items():
            g_w[widx] += a * inv * du
    return factor * g_in, g_w.reshape(layer.weight.shape), totals


def backward(net, rec, grad_out, kernel="depsilon", tau_grad=2.5, **options):
    """(weights, times, totals) lists like eventsnn's Gradients of a membrane-reset net."""
    L = len(net.layers)
    times = [None] * (L + 1)
    weights = [None] * L
    totals = [None] * (L + 1)
    times[L] = np.asarray(grad_out, float)
    for li in range(L, 0, -1):
        layer = net.layers[li - 1]
        below, here = rec.spikes[li - 1], rec.spikes[li]
        if isinstance(layer, (Dense, Conv2d)):
            times[li - 1], weights[li - 1], totals[li] = neuron_layer(
                layer, net.neuron, below, here, times[li], kernel, tau_grad, **options)
        elif isinstance(layer, (MaxPool2d, AvgPool2d)):
            times[li - 1] = pool_layer(layer, below, here, times[li])
        elif isinstance(layer, Flatten):
            times[li - 1] = times[li].copy()
    return weights, times, totals
