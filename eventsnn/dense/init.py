"""Firing-rate initialisation in the dense (time-stepped) mode, as Zhu et al.'s code does it.

The reference (``zhuyaoyu/SNN-event-driven-learning``, ``layers/functions.py``,
``initialize``, commit 6cff83b) runs once before training on one batch of training inputs
and rescales the weighted layers one after the other, from the input side, each on the
spikes that the already rescaled layers below it emit:

- a geometric binary search of the multiplier m over the bracket [0.05, 500]
  (``mid = sqrt(low * high)``), stopped as soon as high / low < 1.01;
- the criterion counts only the last third of the window, steps t >= t_start = T * 2 // 3
  (integer division): with ``avg`` = spikes in those steps / (batch size x neurons of the
  layer), ``avg > target / T * (T - t_start) * 1.2`` moves ``high`` down to m, otherwise
  ``low`` up to m (``target`` is the code's ``avg_spike_init``, default 1 spike per neuron
  and window; 2 in its N-MNIST config);
- the layer keeps the last probed m (not an end of the bracket).

The code's layers standardise their weight on every forward pass (per output channel,
(W - mean) / sqrt(var + 1e-5), var with Bessel's correction) and scale it by the searched
``norm_weight``; ``standardize=True`` applies that standardisation once before the search,
so the rescaled weight equals the code's effective weight. The event-mode search (another
criterion and bracket end) is :func:`eventsnn.init.init_firing_rate`.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _validate as v
from ..init import search_bracket
from . import ops
from .forward import check_input, forward_layers
from .neurons import resolve_neuron
from typing import TYPE_CHECKING, List, Optional, Tuple, Union

from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from ..network import Sequential
    from .neurons import AntlrNeuron, ZhuNeuron

#: the reference's search bracket, stop ratio and margin of the criterion
LOW, HIGH, RATIO, MARGIN = 0.05, 500.0, 1.01, 1.2
#: the reference's variance offset of the weight standardisation
STD_EPS = 1e-5


def standardized(weight: np.ndarray) -> np.ndarray:
    """(W - mean) / sqrt(var + 1e-5) per output channel (first axis), var with ddof=1, as the
    reference's ``bn_forward``."""
    w = np.asarray(weight, dtype=np.float64)
    flat = w.reshape(w.shape[0], -1)
    mean = flat.mean(axis=1, keepdims=True)
    var = flat.var(axis=1, ddof=1, keepdims=True) if flat.shape[1] > 1 else np.zeros_like(mean)
    return ((flat - mean) / np.sqrt(var + STD_EPS)).reshape(w.shape)


def tail_rate(spikes: np.ndarray) -> float:
    """The reference's criterion quantity: spikes at steps t >= T * 2 // 3 per sample and
    neuron. ``spikes`` is (T, B, n)."""
    T = spikes.shape[0]
    t_start = T * 2 // 3
    return float(np.sum(spikes[t_start:])) / (spikes.shape[1] * spikes.shape[2])


def init_firing_rate(net: Sequential, x: ArrayLike, target: float = 1.0,
                     neuron: Union[ZhuNeuron, AntlrNeuron, str, None] = None, dt: float = 1.0,
                     pool_weight: float = 1.0, low: float = LOW, high: float = HIGH,
                     ratio: float = RATIO, margin: float = MARGIN, standardize: bool = False
                     ) -> Tuple[List[Optional[float]], List[Optional[float]]]:
    """Rescale every weighted layer of ``net`` (in place) by the reference's dense search.

    Parameters
    ----------
    net : Sequential
    x : array (T, B, *in_shape) or (T, B, n_in), a batch of encoded training inputs.
    target : float > 0, spikes per neuron and window (the code's ``avg_spike_init``).
    neuron, dt, pool_weight : the dense forward's (see :func:`eventsnn.dense.forward.run`).
    low, high : the multiplier bracket (0.05, 500); ratio : stop when high / low < ratio (1.01).
    margin : the criterion's factor (1.2).
    standardize : bool, standardise each weight first (the code's weight reparametrisation).

    Returns (scales, rates): per layer the multiplier kept (None without weight) and the
    criterion quantity :func:`tail_rate` the layer reaches with it.
    """
    from ..network import Sequential

    if not isinstance(net, Sequential):
        raise TypeError(f"net must be an eventsnn.Sequential, got {type(net).__name__}")
    h = check_input(net, x)
    srm = net._single_srm("dense init_firing_rate") if (neuron is None or isinstance(neuron, str)) else None
    neuron = resolve_neuron(neuron, srm, v.positive_float("dt", dt))
    target, low, high, ratio = search_bracket(target, low, high, ratio)
    margin = v.positive_float("margin", margin)
    pool_weight = v.finite_float("pool_weight", pool_weight)
    net._check_weights()
    T = h.shape[0]
    t_start = T * 2 // 3
    bound = target / T * (T - t_start) * margin
    scales: List[Optional[float]] = []
    rates: List[Optional[float]] = []
    for layer in net.layers:
        if not layer.has_weight:
            h = ops.forward(layer, h, pool_weight=pool_weight)
            scales.append(None)
            rates.append(None)
            continue
        w = layer._weight_array()
        w0 = standardized(w) if standardize else w.copy()

        def run(m):
            layer.weight = w0 * m
            return forward_layers([layer], h, neuron, dt, pool_weight).outputs[0]

        lo, hi = low, high
        mid = math.sqrt(lo * hi)
        while hi / lo >= ratio:
            mid = math.sqrt(lo * hi)
            if tail_rate(run(mid)) > bound:
                hi = mid
            else:
                lo = mid
        h = run(mid)
        scales.append(mid)
        rates.append(tail_rate(h))
    return scales, rates
