"""Slow, loop-by-loop oracles of Zhu et al.'s weight standardisation (SNN-event-driven-learning
6cff83b, ``layers/functions.py``): ``bn_forward`` and ``bn_backward`` as the code writes them,
one output channel and one entry at a time, in plain Python floats. Written from reading the
code; independent of ``eventsnn.reparam``."""
import math


def _channels(w):
    """(C, rows): the flattened entries of each output channel of a nested-list weight."""
    def flat(x):
        if isinstance(x, (list, tuple)):
            out = []
            for e in x:
                out += flat(e)
            return out
        return [float(x)]
    return [flat(c) for c in w]


def bn_forward(weight, norm_weight, norm_bias):
    """Effective weight per channel: (w - mean) / sqrt(std**2 + 1e-5) * g + b, ``torch.std``
    unbiased. Returns (rows of the effective weight, mean per channel, var per channel)."""
    rows, means, variances = [], [], []
    for c, ch in enumerate(_channels(weight)):
        m = len(ch)
        mean = sum(ch) / m
        var = sum((x - mean) ** 2 for x in ch) / (m - 1)
        inv = 1.0 / math.sqrt(var + 1e-5)
        rows.append([(x - mean) * inv * norm_weight[c] + norm_bias[c] for x in ch])
        means.append(mean)
        variances.append(var)
    return rows, means, variances


def bn_backward(grad_weight, weight, norm_weight, norm_bias):
    """The code's (grad_weight, grad_bn_w, grad_bn_b), entry by entry::

        std_inv = 1 / sqrt(var + 1e-5)
        weight_ = (w - mean) * std_inv * g + b
        grad_bn_b = sum(grad);  grad_bn_w = sum(grad * weight_)
        grad *= g
        grad_var = grad * (w - mean) / m * (-0.5) * std_inv ** 3
        grad_mean = -grad * std_inv
        grad = grad * std_inv + grad_var * 2 * (w - mean) / m + grad_mean / m
    """
    eff, means, variances = bn_forward(weight, norm_weight, norm_bias)
    gw = _channels(grad_weight)
    out_w, out_g, out_b = [], [], []
    for c, ch in enumerate(_channels(weight)):
        m = len(ch)
        std_inv = 1.0 / math.sqrt(variances[c] + 1e-5)
        out_b.append(sum(gw[c]))
        out_g.append(sum(gw[c][j] * eff[c][j] for j in range(m)))
        row = []
        for j in range(m):
            g = gw[c][j] * norm_weight[c]
            d = ch[j] - means[c]
            grad_var = g * d / m * (-0.5) * std_inv ** 3
            grad_mean = -g * std_inv
            row.append(g * std_inv + grad_var * 2 * d / m + grad_mean / m)
        out_w.append(row)
    return out_w, out_g, out_b
