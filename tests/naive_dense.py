"""Slow, loop-by-loop reference implementations of the dense mode (the test oracles).

Written straight from the formulas (issue 4, Zhu et al. 2022 section 3, ANTLR sections
2-3), one scalar at a time, without sharing code with ``eventsnn.dense``.
"""
import math

import numpy as np

from eventsnn.layers import AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d


# ---------------------------------------------------------------------------------------------
# layer operations
# ---------------------------------------------------------------------------------------------
def _conv_links(layer):
    """All (out index, in index, (co, ci, ky, kx)) links of a Conv2d, by nested loops."""
    C, H, W = layer.in_shape
    Co, Ho, Wo = layer.out_shape
    k, s, p = layer.kernel_size, layer.stride, layer.padding
    links = []
    for co in range(Co):
        for oy in range(Ho):
            for ox in range(Wo):
                o = co * Ho * Wo + oy * Wo + ox
                for ci in range(C):
                    for ky in range(k):
                        for kx in range(k):
                            y = oy * s - p + ky
                            xx = ox * s - p + kx
                            if 0 <= y < H and 0 <= xx < W:
                                links.append((o, ci * H * W + y * W + xx, (co, ci, ky, kx)))
    return links


def _pool_windows(layer):
    """For every pooled unit o, the list of its input indices in row-major window order."""
    C, H, W = layer.in_shape
    _, Ho, Wo = layer.out_shape
    k = layer.kernel_size
    wins = []
    for c in range(C):
        for oy in range(Ho):
            for ox in range(Wo):
                idx = []
                for ky in range(k):
                    for kx in range(k):
                        idx.append(c * H * W + (oy * k + ky) * W + ox * k + kx)
                wins.append(idx)
    return wins


def layer_forward(layer, x, pool_weight=1.0):
    """x (T, B, n_in) -> (T, B, n_out)."""
    T, B, _ = x.shape
    out = np.zeros((T, B, layer.n_out))
    if isinstance(layer, Flatten):
        return x.copy()
    if isinstance(layer, Dense):
        for t in range(T):
            for b in range(B):
                for i in range(layer.n_out):
                    acc = 0.0
                    for j in range(layer.n_in):
                        acc += layer.weight[i, j] * x[t, b, j]
                    out[t, b, i] = acc
        return out
    if isinstance(layer, Conv2d):
        links = _conv_links(layer)
        for t in range(T):
            for b in range(B):
                for o, j, w in links:
                    out[t, b, o] += layer.weight[w] * x[t, b, j]
        return out
    wins = _pool_windows(layer)
    k2 = layer.kernel_size ** 2
    for t in range(T):
        for b in range(B):
            for o, idx in enumerate(wins):
                vals = [x[t, b, j] for j in idx]
                if isinstance(layer, MaxPool2d):
                    out[t, b, o] = pool_weight * max(vals)
                else:
                    out[t, b, o] = pool_weight * sum(vals) / k2
    return out


def layer_backward_input(layer, g, x, pool_weight=1.0):
    T, B, _ = g.shape
    out = np.zeros((T, B, layer.n_in))
    if isinstance(layer, Flatten):
        return g.copy()
    if isinstance(layer, Dense):
        for t in range(T):
            for b in range(B):
                for i in range(layer.n_out):
                    for j in range(layer.n_in):
                        out[t, b, j] += layer.weight[i, j] * g[t, b, i]
        return out
    if isinstance(layer, Conv2d):
        links = _conv_links(layer)
        for t in range(T):
            for b in range(B):
                for o, j, w in links:
                    out[t, b, j] += layer.weight[w] * g[t, b, o]
        return out
    wins = _pool_windows(layer)
    k2 = layer.kernel_size ** 2
    for t in range(T):
        for b in range(B):
            for o, idx in enumerate(wins):
                if isinstance(layer, MaxPool2d):
                    best = idx[0]
                    for j in idx:
                        if x[t, b, j] > x[t, b, best]:
                            best = j
                    out[t, b, best] += pool_weight * g[t, b, o]
                else:
                    for j in idx:
                        out[t, b, j] += pool_weight * g[t, b, o] / k2
    return out


def layer_grad_weight(layer, x, g):
    T, B, _ = x.shape
    out = np.zeros(layer.weight.shape)
    if isinstance(layer, Dense):
        for t in range(T):
            for b in range(B):
                for i in range(layer.n_out):
                    for j in range(layer.n_in):
                        out[i, j] += g[t, b, i] * x[t, b, j]
        return out
    links = _conv_links(layer)
    for t in range(T):
        for b in range(B):
            for o, j, w in links:
                out[w] += g[t, b, o] * x[t, b, j]
    return out
