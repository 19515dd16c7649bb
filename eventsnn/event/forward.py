"""Python driver of the event engine: runs a sample through the layers in order."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .._constants import DEFAULT_MAX_SPIKES
from ..layers import AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d
from ..neurons import LIF
from ..spikes import SpikeTrains
from . import _conv, _dense, _engine, _engine_lif
from typing import Any, List, Sequence, Tuple, Union, cast

from ..layers import Layer
from ..neurons import SRM


@dataclass
class Record:
    """What one simulated sample left behind.

    spikes : list of SpikeTrains, [input, layer 1, ..., output]; pooling layers' entries
        hold the relayed (graded) events.
    membrane : dict layer number (1-based, as in ``spikes``) -> array (len(record_times),
        n_neurons), present when ``record_times`` was given.
    record_times : the query times in ms (sorted), or None.
    t_end : the simulation end in ms (inf: ran until no event was pending).
    relays : per layer, for pooling layers (source_to_output, winner) of the relay
        (used by the backward pass), None for the other layers.
    """

    spikes: list
    t_end: float
    record_times: Optional[np.ndarray] = None
    membrane: dict = field(default_factory=dict)
    relays: list = field(default_factory=list)

    @property
    def output(self) -> SpikeTrains:
        return self.spikes[-1]

    def counts(self, layer: int = -1) -> np.ndarray:
        """Spike count per neuron of one entry of ``spikes``."""
        return self.spikes[layer].counts()

    def __repr__(self):
        sizes = ", ".join(str(len(s)) for s in self.spikes)
        return f"Record(events per level: [{sizes}], t_end={self.t_end})"


def dense_csr(weight: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR connectivity of a Dense layer (every input reaches every output)."""
    n_out, n_in = weight.shape
    indptr = np.arange(n_in + 1, dtype=np.int64) * n_out
    targets = np.tile(np.arange(n_out, dtype=np.int64), n_in)
    widx = targets * n_in + np.repeat(np.arange(n_in, dtype=np.int64), n_out)
    return indptr, targets, widx


def layer_connectivity(layer: Layer) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr, targets, weights) of a Dense or Conv2d layer."""
    if isinstance(layer, Dense):
        indptr, targets, _ = dense_csr(layer._weight_array())
        # the links run input by input, each over every neuron: exactly W.T's rows
        return indptr, targets, layer._weight_array().T.ravel()
    indptr, targets, widx = cast(Conv2d, layer).connectivity()
    return indptr, targets, np.ascontiguousarray(layer._weight_array().ravel()[widx])


def simulate_sample(layers: Sequence[Layer],
                    neuron: Union[SRM, LIF, list, tuple], st: SpikeTrains,
                    t_end: Optional[float], record_times: Optional[np.ndarray],
                    layer_weights: Sequence[Any], max_spikes: int = DEFAULT_MAX_SPIKES,
                    n_threads: int = 1) -> Record:
    """Simulate one sample; ``layer_weights`` are the layers' ``kernel_weights``, taken once
    per call so that concurrent samples see one network (for Dense the layer's own W.T
    storage: the weights must not be edited while a simulation runs). ``neuron`` is the
    neuron of every layer, or a list with one entry per layer (None for layers without
    neurons). Raises ValueError when a layer would emit more than ``max_spikes`` spikes.
    ``n_threads`` > 1 splits wide Dense layers over threads inside the sample (same result)."""
    neurons = neuron if isinstance(neuron, (list, tuple)) else [neuron] * len(layers)
    t_stop = math.inf if t_end is None else float(t_end)
    spikes = [st]
    relays: List[Any] = [None]
    membrane = {}
    t, i, val = st.times, st.neurons, st.values
    if t_stop < math.inf and t.size and t[-1] > t_stop:
        keep = t <= t_stop
        t, i, val = t[keep], i[keep], val[keep]
    for li, layer in enumerate(layers, start=1):
        w = layer_weights[li - 1]
        neuron = neurons[li - 1]
        if layer.has_neurons and not isinstance(neuron, LIF):
            tau_m, tau_s, theta, membrane_reset, t_ref = neuron.as_tuple()
        relay = None
        if layer.has_neurons and isinstance(neuron, LIF):
            ot, oi, exceeded = _engine_lif.simulate_lif_layer(layer, w, t, i, val, neuron,
                                                              t_stop, max_spikes)
            _check_exceeded(exceeded, li, layer, neuron, max_spikes)
            ov = np.ones(ot.size)
        elif isinstance(layer, Dense):
            ot, oi, exceeded = _dense.run_dense(w, t, i, val, tau_m, tau_s, theta,
                                                membrane_reset, t_ref, t_stop, max_spikes,
                                                n_threads=n_threads)
            _check_exceeded(exceeded, li, layer, neuron, max_spikes)
            ov = np.ones(ot.size)
        elif isinstance(layer, Conv2d):
            ot, oi, exceeded = _conv.run_conv(layer, _conv.transposed_weight(layer, w), t, i, val,
                                              tau_m, tau_s, theta, membrane_reset, t_ref, t_stop,
                                              max_spikes)
            _check_exceeded(exceeded, li, layer, neuron, max_spikes)
            ov = np.ones(ot.size)
        elif isinstance(layer, (MaxPool2d, AvgPool2d)):
            k2 = float(layer.kernel_size ** 2)
            ot, oi, ov, src, win = _engine.pool_relay(t, i, val, w, layer.n_out,
                                                      isinstance(layer, MaxPool2d), 1.0 / k2)
            relay = (src, win)
        elif isinstance(layer, Flatten):
            ot, oi, ov = t, i, val
        else:
            raise TypeError(f"event mode does not support layer {layer!r}")
        if record_times is not None and layer.has_neurons and isinstance(neuron, LIF):
            indptr, targets, weights = layer_connectivity(layer)
            membrane[li] = _engine_lif.lif_record_membrane(t, i, val, ot, oi, layer.n_out,
                                                           indptr, targets, weights,
                                                           neuron.tau_m, neuron.t_ref,
                                                           record_times)
        elif record_times is not None and layer.has_neurons:
            indptr, targets, weights = layer_connectivity(layer)
            membrane[li] = _engine.record_membrane(t, i, val, ot, oi, layer.n_out, indptr,
                                                   targets, weights, tau_m, tau_s,
                                                   membrane_reset, t_ref, record_times)
        spikes.append(SpikeTrains._trusted(ot, oi, ov, layer.n_out))
        relays.append(relay)
        t, i, val = ot, oi, ov
    return Record(spikes=spikes, t_end=t_stop, record_times=record_times, membrane=membrane,
                  relays=relays)


def _check_exceeded(exceeded, li, layer, neuron, max_spikes):
    if exceeded:
        hint = ""
        if neuron.reset == "membrane" and neuron.t_ref == 0 and not isinstance(neuron, LIF):
            hint = (" With reset='membrane' and t_ref=0 a neuron whose input charge is q fires "
                    "about q / theta times (one input of weight w: about w / theta spikes); "
                    "a t_ref > 0 bounds its rate by 1 / t_ref.")
        raise ValueError(f"layer {li} ({layer!r}) would emit more than max_spikes={max_spikes} "
                         f"spikes for one sample: runaway firing?{hint} Check the weights, or "
                         "pass a larger max_spikes to simulate.")


def kernel_weights(layer: Layer) -> Any:
    """The array a layer's kernel takes: W.T for Dense (the layer's own storage,
    ``Dense.weight_t``: no copy, so the kernels see in-place edits of ``weight`` made before
    the call), weight values along the CSR links for Conv2d, the unit map for pooling, None
    otherwise."""
    if isinstance(layer, Dense):
        return layer.weight_t
    if isinstance(layer, Conv2d):
        _, _, widx = layer.connectivity()
        return np.ascontiguousarray(layer._weight_array().ravel()[widx])
    if isinstance(layer, (MaxPool2d, AvgPool2d)):
        return layer.pool_index()
    return None
