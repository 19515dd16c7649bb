"""Firing-rate initialisation (Zhu et al. 2022, section 4.1).

Timing gradients flow only through spikes, so a silent layer blocks learning. Starting
from the layers' current (random) weights, each weighted layer in turn, from the input
side, has its weight multiplied by a scale found by binary search so that the mean spike
count per neuron of that layer, on a batch of training inputs, reaches ``target``. The
search is geometric over [low, high] (reference: [0.05, 500]) and stops when
high / low < ``ratio`` (reference 1.01); the upper end of the final bracket is used, so the
layer fires at least at the target rate when that is reachable.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple


from . import _validate as v
from .event import _engine
from .event import batch as _batch
from .event.forward import kernel_weights
from .layers import Dense
from .neurons import LIF
from .spikes import SpikeTrains

if TYPE_CHECKING:
    from .network import Sequential

#: most bisection steps per layer (the bracket reaches adjacent floats long before)
MAX_STEPS = 2000


def _count_dense(t, i, v, off, WT, tau_m, tau_s, theta, membrane_reset, t_ref, t_end, budget):
    """Spikes of a Dense layer over samples off[0].., or -1 once they exceed ``budget``
    (each sample runs with the budget that is left as its max_spikes; the kernel is called
    directly, as the per-sample path does, see ``eventsnn.event.batch``)."""
    total = 0
    for s in range(off.size - 1):
        a, b = off[s], off[s + 1]
        ot, _, exceeded = _engine.dense_layer(t[a:b], i[a:b], v[a:b], WT, tau_m, tau_s, theta,
                                              membrane_reset, t_ref, t_end, budget - total)
        if exceeded:
            return -1
        total += ot.size
    return total


def _count_sparse(t, i, v, off, n_out, indptr, targets, w, tau_m, tau_s, theta,
                  membrane_reset, t_ref, t_end, budget):
    """:func:`_count_dense` for a Conv2d layer."""
    total = 0
    for s in range(off.size - 1):
        a, b = off[s], off[s + 1]
        ot, _, exceeded = _engine.sparse_layer(t[a:b], i[a:b], v[a:b], n_out, indptr, targets, w,
                                               tau_m, tau_s, theta, membrane_reset, t_ref, t_end,
                                               budget - total)
        if exceeded:
            return -1
        total += ot.size
    return total


def _reaches(nrn, layer, below, t_end, target, n_threads):
    """True when ``layer`` (its current weight, neuron ``nrn``), fed the batch ``below``,
    fires at least ``target`` spikes per neuron and sample. With SRM neurons it stops
    simulating once the count is certainly above target, so a too large scale costs little."""
    n = below.n_samples
    if isinstance(nrn, LIF):
        levels, _ = _batch.simulate_batch(_Single(nrn, layer), below, t_end, n_threads=n_threads)
        return levels[-1].times.size / (n * layer.n_out) >= target
    need = target * n * layer.n_out
    budget = int(min(math.ceil(need) + 1, 2 ** 62))
    tau_m, tau_s, theta, membrane_reset, t_ref = nrn.as_tuple()
    w = kernel_weights(layer)
    t, i, val, off = below.times, below.neurons, below.values, below.offsets
    if isinstance(layer, Dense):
        def run(a, b):
            return _count_dense(t, i, val, off[a:b + 1], w, tau_m, tau_s, theta, membrane_reset,
                                t_ref, t_end, budget)
    else:
        indptr, targets, _ = layer.connectivity()

        def run(a, b):
            return _count_sparse(t, i, val, off[a:b + 1], layer.n_out, indptr, targets, w, tau_m,
                                 tau_s, theta, membrane_reset, t_ref, t_end, budget)
    counts = _batch._map_chunks(run, n, n_threads)
    if any(c < 0 for c in counts) or sum(counts) > budget:
        return True
    return sum(counts) / (n * layer.n_out) >= target


def _mid(lo, hi):
    mid = math.sqrt(lo * hi)
    if not (0.0 < mid < math.inf):  # lo * hi under- or overflowed
        mid = math.sqrt(lo) * math.sqrt(hi)
    return mid


def search_bracket(target: float, low: float, high: float,
                   ratio: float) -> Tuple[float, float, float, float]:
    """The checked (target, low, high, ratio) of a firing-rate search (shared by the event-
    and the dense-mode initialisation)."""
    target = v.positive_float("target", target)
    low = v.positive_float("low", low)
    high = v.positive_float("high", high)
    if high <= low:
        raise ValueError(f"high ({high}) must exceed low ({low})")
    ratio = v.positive_float("ratio", ratio)
    if ratio <= 1:
        raise ValueError(f"ratio must be > 1, got {ratio}")
    return target, low, high, ratio


def init_firing_rate(net: Sequential, inputs: Sequence[SpikeTrains], target: float = 1.0,
                     t_end: Optional[float] = None, low: float = 0.05, high: float = 500.0,
                     ratio: float = 1.01, n_threads: Optional[int] = None
                     ) -> Tuple[List[Optional[float]], List[Optional[float]]]:
    """Rescale every weighted layer of ``net`` (in place) so that its neurons fire
    ``target`` spikes per sample on average over ``inputs``.

    Layer by layer from the input side, a geometric bisection over [low, high] finds the
    scale; the events reaching the layer are simulated once (the layers below are final by
    then) and each step simulates this layer alone, stopping as soon as its spikes exceed
    the target count. The search stops when high / low < ``ratio``, or when the bracket
    can no longer be narrowed (adjacent floats).

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
    target, low, high, ratio = search_bracket(target, low, high, ratio)
    if t_end is not None:
        t_end = v.positive_float("t_end", t_end)
    t_stop = math.inf if t_end is None else t_end
    if n_threads is None:
        import numba
        n_threads = numba.get_num_threads()
    n_threads = v.positive_int("n_threads", n_threads)
    net._check_weights()
    below = _batch.Events.from_trains(list(inputs))
    scales: List[Optional[float]] = []
    rates: List[Optional[float]] = []
    for li, (layer, nrn) in enumerate(zip(net.layers, net.layer_neurons), start=1):
        if layer.has_weight:
            w0 = layer.weight.copy()
            lo, hi = low, high
            for _ in range(MAX_STEPS):
                if hi / lo < ratio:
                    break
                mid = _mid(lo, hi)
                if not lo < mid < hi:  # adjacent floats: the bracket cannot shrink further
                    break
                layer.weight = w0 * mid
                if _reaches(nrn, layer, below, t_stop, target, n_threads):
                    hi = mid
                else:
                    lo = mid
            layer.weight = w0 * hi
            scales.append(hi)
        else:
            scales.append(None)
        # the layer's output at its final weight: the next layer's input
        levels, _ = _batch.simulate_batch(_Single(nrn, layer), below, t_stop, n_threads=n_threads)
        below = levels[-1]
        rates.append(below.times.size / (below.n_samples * layer.n_out)
                     if layer.has_weight else None)
    return scales, rates


class _Single:
    """A one-layer network of neuron ``nrn`` (None for layers without neurons) for
    ``simulate_batch``."""

    def __init__(self, nrn, layer):
        self.neuron = nrn
        self.layers = [layer]
        self.layer_neurons = [nrn]
