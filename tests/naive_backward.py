"""Slow reference of the timing backward pass, written loop by loop from Zhu et al. Eq. 12-14
and design.md section 2. It shares no code with eventsnn's kernels: connectivity is
recomputed from the layer geometry, windows are found by scanning all events, kernels are
written out with math.exp.
"""
import math

import numpy as np

from eventsnn.layers import AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d


def _eps(s, tm, ts):
    return tm / (tm - ts) * (math.exp(-s / tm) - math.exp(-s / ts))


def _deps(s, tm, ts):
    return tm / (tm - ts) * (math.exp(-s / ts) / ts - math.exp(-s / tm) / tm)


def weight_of(layer, i, j):
    """(w_ij, flat weight index) of the link input j -> neuron i, or None if absent."""
    if isinstance(layer, Dense):
        return layer.weight[i, j], i * layer.weight.shape[1] + j
    C, H, W = layer.in_shape
    Co, Ho, Wo = layer.out_shape
    k, s, p = layer.kernel_size, layer.stride, layer.padding
    co, rem = divmod(i, Ho * Wo)
    oy, ox = divmod(rem, Wo)
    ci, rem = divmod(j, H * W)
    y, x = divmod(rem, W)
    ky, kx = y - oy * s + p, x - ox * s + p
    if not (0 <= ky < k and 0 <= kx < k):
        return None
    return layer.weight[co, ci, ky, kx], np.ravel_multi_index((co, ci, ky, kx), layer.weight.shape)


def neuron_layer(layer, neuron, below, here, g_out, kernel="exp", tau_grad=2.5,
                 drop_nonpositive=True, clamp=(-4.0, 0.0), factor=1.0):
    """(dL/dt of the input events, dL/dW) of one Dense/Conv2d layer, Eq. 12-14."""
    tm, ts, t_ref = neuron.tau_m, neuron.tau_s, neuron.t_ref

    def h(s):
        return math.exp(-s / tau_grad) if kernel == "exp" else _deps(s, tm, ts)

    g_in = np.zeros(len(below.times))
    g_w = np.zeros(layer.weight.size)
    for k in range(len(here.times)):
        i, tk = here.neurons[k], here.times[k]
        earlier = [q for q in range(k) if here.neurons[q] == i]
        r = here.times[earlier[-1]] + t_ref if earlier else -math.inf
        window = []  # (event m, w_ij, flat weight index)
        for m in range(len(below.times)):
            if r < below.times[m] <= tk:
                link = weight_of(layer, i, below.neurons[m])
                if link is not None:
                    window.append((m, link[0], link[1]))
        S = sum(w * below.values[m] * h(tk - below.times[m]) for m, w, _ in window)
        dudt = sum(w * below.values[m] * _deps(tk - below.times[m], tm, ts) for m, w, _ in window)
        if S > 0 or (S < 0 and not drop_nonpositive):
            for m, w, _ in window:           # Eq. 12-13
                g_in[m] += g_out[k] * w * below.values[m] * h(tk - below.times[m]) / S
        if clamp is not None:
            inv = -1.0 / dudt if dudt != 0 else -math.inf
            inv = min(max(inv, clamp[0]), clamp[1])
        else:
            inv = -1.0 / dudt if dudt > 0 else 0.0
        for m, w, widx in window:             # Eq. 14
            g_w[widx] += g_out[k] * inv * below.values[m] * _eps(tk - below.times[m], tm, ts)
    return factor * g_in, g_w.reshape(layer.weight.shape)


def pool_layer(layer, below, here, g_out):
    """dL/dt of a pooling layer's source events, recomputing which events were pooled."""
    C, H, W = layer.in_shape
    k = layer.kernel_size
    Ho, Wo = layer.out_shape[1:]
    g_in = np.zeros(len(below.times))
    for m in range(len(below.times)):
        c, rem = divmod(below.neurons[m], H * W)
        y, x = divmod(rem, W)
        if y // k >= Ho or x // k >= Wo:
            continue
        unit = c * Ho * Wo + (y // k) * Wo + x // k
        o = [q for q in range(len(here.times))
             if here.neurons[q] == unit and here.times[q] == below.times[m]]
        assert len(o) == 1
        o = o[0]
        same = [q for q in range(len(below.times)) if below.times[q] == below.times[m]
                and _unit(below.neurons[q], C, H, W, k, Ho, Wo) == unit]
        if isinstance(layer, MaxPool2d):
            vals = [below.values[q] for q in same]
            first_max = same[int(np.argmax(vals))]
            g_in[m] = g_out[o] if m == first_max else 0.0
        elif layer.adjusted:
            g_in[m] = g_out[o] / len(same)
        else:
            g_in[m] = g_out[o] / k ** 2
    return g_in


def _unit(j, C, H, W, k, Ho, Wo):
    c, rem = divmod(j, H * W)
    y, x = divmod(rem, W)
    if y // k >= Ho or x // k >= Wo:
        return -1
    return c * Ho * Wo + (y // k) * Wo + x // k


def backward(net, rec, grad_out, kernel="exp", tau_grad=2.5, **options):
    """(weights, times) lists like eventsnn's Gradients."""
    L = len(net.layers)
    times = [None] * (L + 1)
    weights = [None] * L
    times[L] = np.asarray(grad_out, float)
    for li in range(L, 0, -1):
        layer = net.layers[li - 1]
        below, here = rec.spikes[li - 1], rec.spikes[li]
        if isinstance(layer, (Dense, Conv2d)):
            times[li - 1], weights[li - 1] = neuron_layer(layer, net.neuron, below, here,
                                                          times[li], kernel, tau_grad, **options)
        elif isinstance(layer, (MaxPool2d, AvgPool2d)):
            times[li - 1] = pool_layer(layer, below, here, times[li])
        elif isinstance(layer, Flatten):
            times[li - 1] = times[li].copy()
    return weights, times
