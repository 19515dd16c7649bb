"""Hostile numerical regimes for the fast event kernels (test-only helpers).

``stress_case(seed, kind)`` builds a one-layer network (``kind`` "conv" or "dense") and an
input in a regime the ordinary strategies rarely reach: tau_s within 1e-5 of tau_m (kernel
prefactor ~1e5) or tau_s > tau_m, weights and thresholds scaled by 1e-300 ... 1e90,
thresholds a hair below the peak of one input's PSP (grazing crossings, u' ~ 0 there),
inputs spread over 1e4 ms with tau 0.05 ms (the common time reference moves thousands of
times), refractory periods with inputs during them, negative inputs only, many coincident
events, stride > kernel, padding >= kernel, 1x1 kernels, C_out = 1.
"""
import math

import numpy as np

import eventsnn as es

TAUS = [(5.0, 5.0 * (1 - 2e-6)), (5.0, 4.9999), (5.0, 5.0 * (1 + 2e-6)), (2.0, 5.0),
        (1.0, 100.0), (100.0, 1.0), (5.0, 0.05), (0.05, 0.04), (5.0, 2.5)]


def peak(tau_m, tau_s):
    """(time of the peak, peak value) of the PSP kernel of one unit input (ms, 1)."""
    c = tau_m / (tau_m - tau_s)
    t = math.log(tau_m / tau_s) * tau_m * tau_s / (tau_m - tau_s)
    return t, c * (math.exp(-t / tau_m) - math.exp(-t / tau_s))


#: time constants far enough apart that float64 rounding of u (~c eps theta) stays well below
#: what moves a spike time by 1e-9 ms (the extreme TAUS can be ill-conditioned at that level)
MODERATE_TAUS = [(2.0, 5.0), (1.0, 100.0), (100.0, 1.0), (5.0, 0.05), (0.05, 0.02), (5.0, 2.5),
                 (5.0, 4.0)]


def stress_case(seed, kind, moderate=False):
    rng = np.random.default_rng(seed)
    taus = MODERATE_TAUS if moderate else TAUS
    tau_m, tau_s = taus[rng.integers(len(taus))]
    scale = float(rng.choice([1.0, 1.0, 1e-300, 1e-150, 1e90, 1e45]))
    if kind == "conv":
        C_in = int(rng.integers(1, 3))
        H, W = int(rng.integers(1, 7)), int(rng.integers(1, 7))
        shape = rng.integers(4)
        if shape == 0:   # 1x1 kernel
            k, pad, stride = 1, int(rng.integers(0, 2)), int(rng.integers(1, 4))
        elif shape == 1:  # padding >= kernel
            k = int(rng.integers(1, 3))
            pad = k + int(rng.integers(0, 2))
            stride = int(rng.integers(1, 3))
        elif shape == 2:  # stride > kernel
            pad = int(rng.integers(0, 2))
            k = int(rng.integers(1, min(H, W) + 2 * pad + 1))
            k = max(1, min(k, 3))
            stride = k + int(rng.integers(1, 3))
        else:
            pad = int(rng.integers(0, 3))
            k = max(1, min(int(rng.integers(1, min(H, W) + 2 * pad + 1)), 4))
            stride = int(rng.integers(1, 3))
        k = min(k, min(H, W) + 2 * pad)
        C_out = 1 if rng.random() < 0.3 else int(rng.integers(2, 4))
        layer = es.Conv2d((C_in, H, W), C_out, k, stride=stride, padding=pad)
    else:
        layer = es.Dense(int(rng.integers(1, 12)), 1 if rng.random() < 0.3 else int(rng.integers(2, 40)))
    # the threshold: relative to one unit input's peak, sometimes a hair below it (grazing)
    _, u_pk = peak(tau_m, tau_s)
    mode = rng.integers(4)
    if mode == 0:
        theta = u_pk * scale * float(rng.choice([0.3, 0.7, 1.0, 2.0]))
    elif mode == 1:  # grazing: one input of weight 1 * scale just reaches theta
        theta = u_pk * scale * (1 - float(rng.choice([1e-6, 1e-8, 1e-10])))
    else:
        theta = float(rng.choice([0.5, 1.0, 2.0])) * scale * u_pk
    if mode != 1:  # no peak exactly at a multiple of theta (a tie decided by rounding)
        theta *= 1 + float(rng.uniform(1e-6, 1e-3))
    theta = min(max(theta, 1e-300), 1e300)
    nrn = es.SRM(tau_m, tau_s, theta, str(rng.choice(["full", "membrane"])),
                 float(rng.choice([0.0, 0.0, 0.3, 2.0, 7.0])) * max(tau_m, tau_s) / 5)
    net = es.Sequential(layer, neuron=nrn)
    n_in = layer.n_in
    # weights: mostly one magnitude, sometimes a few exact copies (coincident equal PSPs)
    w = rng.normal(0.7, 0.8, layer.weight_shape)
    if rng.random() < 0.3:
        w = np.round(w * 2) / 2
    layer.weight = np.clip(w * scale, -1e100, 1e100)
    if mode == 1:
        layer.weight = np.where(rng.random(layer.weight_shape) < 0.5, scale, 0.0)
    times, idx, vals = [], [], []
    span = float(rng.choice([20.0, 20.0, 1e4]))
    regime = rng.integers(4)
    n_ev = int(rng.integers(1, 60))
    grid = float(rng.choice([0.0, 1.0, 0.25]))
    t = rng.uniform(0, span, n_ev)
    if grid:
        t = np.round(t / grid) * grid
    if regime == 0:   # frames: many inputs at a few times
        t = np.sort(rng.choice(t, n_ev))
    i = rng.integers(0, n_in, n_ev)
    if regime == 1:   # negative inputs only
        v = -rng.uniform(0.1, 2.0, n_ev)
    elif regime == 2:
        v = np.ones(n_ev)
    else:
        v = rng.choice([-1.0, 1.0], n_ev, p=[0.3, 0.7]) * rng.uniform(0.3, 1.5, n_ev)
    if mode == 1:
        v = np.ones(n_ev)
    times.append(t)
    idx.append(i)
    vals.append(v)
    if rng.random() < 0.3:  # a burst: many coincident events (an input neuron up to 3 times)
        m = int(rng.integers(1, 3 * n_in + 1))
        tb = float(rng.uniform(0, span))
        times.append(np.full(m, tb))
        idx.append(rng.integers(0, n_in, m))
        vals.append(np.abs(rng.normal(1.0, 0.5, m)) + 0.1)
    x = es.SpikeTrains(np.concatenate(times), np.concatenate(idx), n_in, np.concatenate(vals))
    t_end = float(rng.choice([np.inf, np.inf, span / 2, span]))
    return net, x, t_end


def with_inputs_at(x, extra_t, rng):
    """x plus one event at each of the times ``extra_t`` (e.g. the layer's own spike times)."""
    if extra_t.size == 0:
        return x
    m = extra_t.size
    return es.SpikeTrains(np.concatenate([x.times, extra_t]),
                          np.concatenate([x.neurons, rng.integers(0, x.n_neurons, m)]),
                          x.n_neurons, np.concatenate([x.values, rng.uniform(0.2, 1.2, m)]))
