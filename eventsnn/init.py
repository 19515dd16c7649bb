"""Firing-rate initialisation (Zhu et al. 2022, section 4.1).

Timing gradients flow only through spikes, so a silent layer blocks learning. Starting
from the layers' current (random) weights, each weighted layer in turn, from the input
side, has its weight multiplied by a scale found by binary search so that the mean spike
count per neuron of that layer, on a batch of training inputs, reaches ``target``. The
search is geometric over [low, high] (reference: [0.05, 500]) and stops when
high / low < ``ratio`` (reference 1.01); the upper end of the final bracket is used, so the
layer fires at least at the target rate when that is reachable.
"""
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import _validate as v
from .event.forward import kernel_weights, simulate_sample
from .spikes import SpikeTrains


def _mean_count(net, upto, inputs, t_end, n_threads):
    layers = net.layers[:upto]
    neurons = net.layer_neurons[:upto]
    weights = [kernel_weights(layer) for layer in layers]

    def one(st):
        return len(simulate_sample(layers, neurons, st, t_end, None, weights).spikes[-1])

    if n_threads == 1 or len(inputs) <= 1:
        total = sum(one(st) for st in inputs)
    else:
        with ThreadPoolExecutor(max_workers=min(n_threads, len(inputs))) as pool:
            total = sum(pool.map(one, inputs))
    return total / (len(inputs) * net.layers[upto - 1].n_out)


def init_firing_rate(net, inputs, target=1.0, t_end=None, low=0.05, high=500.0, ratio=1.01,
                     n_threads=None):
    """Rescale every weighted layer of ``net`` (in place) so that its neurons fire
    ``target`` spikes per sample on average over ``inputs``.

    Parameters
    ----------
    net : Sequential (event mode).
    inputs : list of SpikeTrains, a batch of training inputs.
    target : float > 0, mean spike count per neuron and sample.
    t_end : float or None, simulation window in ms (as in training).
    low, high : float, the scale search range (multiples of the current weights).
    ratio : float > 1, stop when high / low < ratio.
    n_threads : int, threads over the samples (default numba's thread count).

    Returns a list with each layer's scale (None for layers without weight) and the mean
    count reached: (scales, rates).
    """
    net._reject_biases("event mode (init_firing_rate)")
    if not isinstance(inputs, (list, tuple)) or not inputs:
        raise TypeError("inputs must be a non-empty list of SpikeTrains")
    for k, st in enumerate(inputs):
        if not isinstance(st, SpikeTrains):
            raise TypeError(f"inputs[{k}] must be a SpikeTrains, got {type(st).__name__}")
        if st.n_neurons != net.n_in:
            raise ValueError(f"inputs[{k}] has {st.n_neurons} neurons, the network takes {net.n_in}")
    target = v.positive_float("target", target)
    low = v.positive_float("low", low)
    high = v.positive_float("high", high)
    if high <= low:
        raise ValueError(f"high ({high}) must exceed low ({low})")
    ratio = v.positive_float("ratio", ratio)
    if ratio <= 1:
        raise ValueError(f"ratio must be > 1, got {ratio}")
    if t_end is not None:
        t_end = v.positive_float("t_end", t_end)
    if n_threads is None:
        import numba
        n_threads = numba.get_num_threads()
    n_threads = v.positive_int("n_threads", n_threads)
    scales, rates = [], []
    for li, layer in enumerate(net.layers, start=1):
        if not layer.has_weight:
            scales.append(None)
            rates.append(None)
            continue
        w0 = layer.weight.copy()
        lo, hi = low, high

        def rate(s):
            layer.weight = w0 * s
            return _mean_count(net, li, inputs, t_end, n_threads)

        while hi / lo >= ratio:
            mid = math.sqrt(lo * hi)
            if rate(mid) < target:
                lo = mid
            else:
                hi = mid
        rates.append(rate(hi))
        scales.append(hi)
    return scales, rates
