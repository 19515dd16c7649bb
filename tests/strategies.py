"""Hypothesis strategies for random event-mode networks and inputs (test-only helpers)."""
import os

import numpy as np
from hypothesis import strategies as st

import eventsnn as es

def examples(n):
    """max_examples for a test: n, times HYPOTHESIS_SCALE (default 1)."""
    return n * int(os.environ.get("HYPOTHESIS_SCALE", "1"))


TAUS = [(5.0, 2.5), (5.0, 1.25), (4.0, 3.0), (2.0, 5.0), (10.0, 1.0)]


@st.composite
def neurons(draw, resets=("full", "membrane")):
    tau_m, tau_s = draw(st.sampled_from(TAUS))
    return es.SRM(tau_m=tau_m, tau_s=tau_s, theta=draw(st.sampled_from([0.5, 1.0, 2.0])),
                  reset=draw(st.sampled_from(resets)),
                  t_ref=draw(st.sampled_from([0.0, 0.0, 0.7])))


@st.composite
def event_input(draw, n, max_events=40, t_max=30.0, graded=True):
    """SpikeTrains for n neurons; times often on a coarse grid so that coincident events
    (several neurons, or one neuron twice) occur."""
    k = draw(st.integers(0, max_events))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    if draw(st.booleans()):
        times = rng.integers(0, int(t_max), k) * 1.0  # coincident events
    else:
        times = rng.uniform(0, t_max, k)
    idx = rng.integers(0, n, k)
    values = rng.uniform(0.2, 2.0, k) if graded and draw(st.booleans()) else np.ones(k)
    return es.SpikeTrains(times, idx, n, values)


def scale_weights(net, rng, scale, excit):
    for layer in net.layers:
        if layer.has_weight:
            w = rng.normal(excit, 1.0, size=layer.weight.shape) * scale
            layer.weight = w


@st.composite
def dense_networks(draw):
    sizes = draw(st.lists(st.integers(1, 6), min_size=2, max_size=4))
    neuron = draw(neurons())
    layers = [es.Dense(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
    net = es.Sequential(*layers, neuron=neuron, rng=0)
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    scale_weights(net, rng, draw(st.sampled_from([0.3, 1.0, 3.0])), draw(st.sampled_from([0.0, 0.5])))
    return net


@st.composite
def conv_networks(draw):
    C = draw(st.integers(1, 2))
    H = draw(st.integers(4, 6))
    k = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 2))
    pad = draw(st.integers(0, 1))
    conv = es.Conv2d((C, H, H), draw(st.integers(1, 3)), k, stride=stride, padding=pad)
    layers = [conv]
    Ho = (H + 2 * pad - k) // stride + 1
    pool = draw(st.sampled_from(["none", "max", "avg", "plainavg"]))
    shape = (conv.out_channels, Ho, Ho)
    if pool != "none" and Ho >= 2:
        layers.append(es.MaxPool2d(2) if pool == "max" else es.AvgPool2d(2, adjusted=pool == "avg"))
        shape = (conv.out_channels, Ho // 2, Ho // 2)
    if draw(st.booleans()):
        layers.append(es.Flatten())
    layers.append(es.Dense(int(np.prod(shape)), draw(st.integers(1, 4))))
    net = es.Sequential(*layers, neuron=draw(neurons()), rng=0)
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    scale_weights(net, rng, draw(st.sampled_from([0.5, 1.5, 3.0])), draw(st.sampled_from([0.0, 0.5])))
    return net
