"""Batched event mode: the samples of a mini-batch go through each layer's kernel together.

A batch of event streams is held as one :class:`Events`: the samples' (time-sorted) events
concatenated, with ``offsets`` marking where each sample starts. Each step of a training
batch (encoding, simulation, losses, backward, gradient sum) runs once per batch and layer:
no SpikeTrains, Record or per-sample loss objects; a layer's kernel weights are prepared once
per batch; the per-sample kernels are called in a tight loop over the samples (one loop per
thread and chunk of consecutive samples with threads).

Every result equals the per-sample path (``Sequential.simulate`` and
``eventsnn.event.backward``) exactly: the kernels called per sample are the same, and the
weight gradients are summed over the samples in sample order, starting from zeros, whatever
the thread count (tests/test_batch.py checks this).
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numba import njit

from .._constants import DEFAULT_MAX_SPIKES
from ..layers import AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d
from ..neurons import LIF
from ..spikes import SpikeTrains
from . import _backward, _conv, _dense, _engine, _engine_lif, _grouped
from .forward import Record, _check_exceeded, kernel_weights
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple, Union, cast

from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from ..network import Sequential


@dataclass
class Events:
    """Event streams of a batch of samples, concatenated.

    Sample s owns ``times[offsets[s]:offsets[s+1]]`` (and the same slice of ``neurons`` and
    ``values``), sorted by (time, neuron). Times in ms; ``n_neurons`` per sample.
    """

    times: np.ndarray
    neurons: np.ndarray
    values: np.ndarray
    offsets: np.ndarray
    n_neurons: int

    @property
    def n_samples(self) -> int:
        return self.offsets.size - 1

    def sample_of_event(self) -> np.ndarray:
        """Index of the sample of every event, int array aligned with ``times``."""
        return np.repeat(np.arange(self.n_samples), np.diff(self.offsets))

    def counts(self) -> np.ndarray:
        """Events per (sample, neuron): int array (n_samples, n_neurons)."""
        key = self.sample_of_event() * self.n_neurons + self.neurons
        return np.bincount(key, minlength=self.n_samples * self.n_neurons).reshape(
            self.n_samples, self.n_neurons)

    def first_times(self, fill: float = np.inf) -> np.ndarray:
        """Time of each (sample, neuron)'s first event, ``fill`` where there is none."""
        out = np.full(self.n_samples * self.n_neurons, float(fill))
        key = self.sample_of_event() * self.n_neurons + self.neurons
        # events are time-sorted within a sample, so the first occurrence of a key is its
        # earliest event; writing in reverse order leaves it last
        out[key[::-1]] = self.times[::-1]
        return out.reshape(self.n_samples, self.n_neurons)

    def trains(self) -> List[SpikeTrains]:
        """The samples as a list of SpikeTrains (views of the concatenated arrays)."""
        o = self.offsets
        return [SpikeTrains._trusted(self.times[o[s]:o[s + 1]], self.neurons[o[s]:o[s + 1]],
                                     self.values[o[s]:o[s + 1]], self.n_neurons)
                for s in range(self.n_samples)]

    @classmethod
    def from_trains(cls, trains: Sequence[SpikeTrains]) -> Events:
        """Concatenate a non-empty list of SpikeTrains of one size (not checked here)."""
        sizes = np.fromiter((len(st) for st in trains), np.int64, len(trains))
        offsets = np.zeros(len(trains) + 1, np.int64)
        np.cumsum(sizes, out=offsets[1:])
        return cls(np.concatenate([st.times for st in trains]).astype(np.float64, copy=False),
                   np.concatenate([st.neurons for st in trains]).astype(np.int64, copy=False),
                   np.concatenate([st.values for st in trains]).astype(np.float64, copy=False),
                   offsets, int(trains[0].n_neurons))


# ---- encoding ------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _current_kernel(F, times, threshold, gain):
    n, n_f = F.shape
    n_t = times.size
    nnz = np.zeros(n, np.int64)
    for s in range(n):
        for f in range(n_f):
            if F[s, f] > threshold:
                nnz[s] += 1
    offsets = np.zeros(n + 1, np.int64)
    for s in range(n):
        offsets[s + 1] = offsets[s] + nnz[s] * n_t
    total = offsets[n]
    t = np.empty(total)
    i = np.empty(total, np.int64)
    v = np.empty(total)
    for s in range(n):
        e = offsets[s]
        for k in range(n_t):
            for f in range(n_f):
                x = F[s, f]
                if x > threshold:
                    t[e] = times[k]
                    i[e] = f
                    v[e] = x
                    if gain != 1.0:
                        v[e] = x * gain
                    e += 1
    return t, i, v, offsets


def encode_current(F: np.ndarray, times: ArrayLike, gain: float = 1.0,
                   threshold: float = 0.0) -> Events:
    """Batched ``eventsnn.encode.current`` (then values times ``gain``) of validated samples
    F (n, n_features) and sorted unique times (ms): equal to the per-sample encoder."""
    t, i, v, off = _current_kernel(np.ascontiguousarray(F, dtype=np.float64),
                                   np.ascontiguousarray(times, dtype=np.float64),
                                   float(threshold), float(gain))
    return Events(t, i, v, off, F.shape[1])


# ---- forward -------------------------------------------------------------------------
# Conv2d layers loop over the samples inside numba (_conv_samples: a Python call with twenty
# arguments cost ~10 us per sample, a tenth of the digits CNN's conv forward); tests compare
# it bit for bit with the Python loop that calls run_conv per sample (_conv_batch_python, what
# simulate_sample runs). Caution: numba's cache keys a compiled function on its own file only,
# so after a kernel's signature or code changes in another module, a stale cached caller here
# keeps the old kernel until this file changes too (or the cache is cleared). Dense layers
# still call their kernel from a Python loop (a few microseconds per sample).
def _concat(parts_t, parts_i):
    offsets = np.zeros(len(parts_t) + 1, np.int64)
    np.cumsum([p.size for p in parts_t], out=offsets[1:])
    t = np.concatenate(parts_t) if parts_t else np.zeros(0)
    i = np.concatenate(parts_i) if parts_i else np.zeros(0, np.int64)
    return t, i, offsets


def _dense_batch(t, i, v, off, WT, tau_m, tau_s, theta, membrane_reset, t_ref, t_end,
                 max_spikes):
    """The kernel of ``_dense.run_dense`` that its cost model picks per sample (the window or
    the group-interval kernel; ``_dense.grouped_samples``, one call per batch) on samples
    off[0]..: returns (times, neurons, offsets relative to the first
    sample, first exceeding sample or -1)."""
    parts_t, parts_i, bad = [], [], -1
    grouped = _dense.grouped_samples(t, off, WT.shape[1], t_end)
    for s in range(off.size - 1):
        a, b = off[s], off[s + 1]
        kernel = _grouped.grouped_dense_layer if grouped[s] else _engine.dense_layer
        ot, oi, exceeded = kernel(t[a:b], i[a:b], v[a:b], WT, tau_m, tau_s, theta,
                                  membrane_reset, t_ref, t_end, max_spikes)
        if exceeded and bad < 0:
            bad = s
        parts_t.append(ot)
        parts_i.append(oi)
    return (*_concat(parts_t, parts_i), bad)


def _conv_batch(t, i, v, off, layer, WT, tau_m, tau_s, theta, membrane_reset, t_ref, t_end,
                max_spikes):
    """``_conv.run_conv`` (the event or the group-interval kernel, as its cost model picks
    per sample) on samples off[0]..; returns as :func:`_dense_batch`. One numba call for
    all the samples (:func:`_conv_samples`); :func:`_conv_batch_python` is the same loop in
    Python, one ``run_conv`` call per sample (tests compare the two)."""
    C_in, H, W = layer.in_shape
    C_out, Ho, Wo = layer.out_shape
    k, stride = layer.kernel_size, layer.stride
    reach = -(-k // stride)  # as _conv.prefers_grouped
    return _conv_samples(t, i, v, np.ascontiguousarray(off, dtype=np.int64), WT, C_in, H, W,
                         C_out, Ho, Wo, k, stride, layer.padding, float(tau_m), float(tau_s),
                         float(theta), bool(membrane_reset), float(t_ref), float(t_end),
                         int(max_spikes), C_out * Ho * Wo, C_out * reach * reach,
                         float(_conv.GROUPED_COST_RATIO))


def _conv_batch_python(t, i, v, off, layer, WT, tau_m, tau_s, theta, membrane_reset, t_ref,
                       t_end, max_spikes):
    """:func:`_conv_batch` with the loop over the samples in Python: ``_conv.run_conv`` per
    sample, exactly what ``simulate_sample`` runs (the oracle of the numba loop)."""
    parts_t, parts_i, bad = [], [], -1
    for s in range(off.size - 1):
        a, b = off[s], off[s + 1]
        ot, oi, exceeded = _conv.run_conv(layer, WT, t[a:b], i[a:b], v[a:b], tau_m, tau_s, theta,
                                          membrane_reset, t_ref, t_end, max_spikes)
        if exceeded and bad < 0:
            bad = s
        parts_t.append(ot)
        parts_i.append(oi)
    return (*_concat(parts_t, parts_i), bad)


@njit(cache=True, nogil=True)
def _conv_samples(t, i, v, off, WT, C_in, H, W, C_out, Ho, Wo, k, stride, pad, tau_m, tau_s,
                  theta, membrane_reset, t_ref, t_end, max_spikes, n_out, fan_out, ratio):
    """The per-sample loop of :func:`_conv_batch` inside numba: per sample the kernel that
    ``_conv.run_conv``'s cost model picks (``_conv._grouped_cheaper``), its spikes appended
    to the output (grown by doubling). Returns (times, neurons, offsets relative to the
    first sample, first exceeding sample or -1)."""
    n = off.size - 1
    ot = np.empty(64)
    oi = np.empty(64, np.int64)
    oo = np.zeros(n + 1, np.int64)
    bad = -1
    c = 0
    for s in range(n):
        a, b = off[s], off[s + 1]
        if _conv._grouped_cheaper(t[a:b], t_end, n_out, fan_out, ratio):
            pt, pi, exceeded = _grouped.grouped_conv_layer(
                t[a:b], i[a:b], v[a:b], WT, C_in, H, W, C_out, Ho, Wo, k, stride, pad, tau_m,
                tau_s, theta, membrane_reset, t_ref, t_end, max_spikes)
        else:
            pt, pi, exceeded = _conv.conv_layer(
                t[a:b], i[a:b], v[a:b], WT, C_in, H, W, C_out, Ho, Wo, k, stride, pad, tau_m,
                tau_s, theta, membrane_reset, t_ref, t_end, max_spikes)
        if exceeded and bad < 0:
            bad = s
        m = pt.size
        if c + m > ot.size:
            size = max(2 * ot.size, c + m)
            t2 = np.empty(size)
            i2 = np.empty(size, np.int64)
            t2[:c] = ot[:c]
            i2[:c] = oi[:c]
            ot = t2
            oi = i2
        ot[c:c + m] = pt
        oi[c:c + m] = pi
        c += m
        oo[s + 1] = c
    return ot[:c].copy(), oi[:c].copy(), oo, bad


def _pool_batch(t, i, v, off, unit_of, n_units, is_max, scale):
    """``_engine.pool_relay`` on samples off[0]..: (times, units, values, offsets, src,
    winner); src (aligned with the input events) indexes the sample's own relayed events.
    One numba call for all the samples (:func:`_pool_samples`)."""
    return _pool_samples(t, i, v, np.ascontiguousarray(off, dtype=np.int64),
                         np.ascontiguousarray(unit_of, dtype=np.int64), int(n_units),
                         bool(is_max), float(scale))


@njit(cache=True, nogil=True)
def _pool_samples(t, i, v, off, unit_of, n_units, is_max, scale):
    """The per-sample loop of :func:`_pool_batch` inside numba; a sample relays at most
    its input events, so the outputs are filled in place and cut to size once."""
    n = off.size - 1
    base = off[0]
    total = off[n] - base
    ot = np.empty(total)
    ou = np.empty(total, np.int64)
    ov = np.empty(total)
    oo = np.zeros(n + 1, np.int64)
    src = np.empty(total, np.int64)
    winner = np.empty(total, np.bool_)
    c = 0
    for s in range(n):
        a, b = off[s], off[s + 1]
        pt, pu, pv, sr, wn = _engine.pool_relay(t[a:b], i[a:b], v[a:b], unit_of, n_units,
                                                is_max, scale)
        for q in range(pt.size):
            ot[c + q] = pt[q]
            ou[c + q] = pu[q]
            ov[c + q] = pv[q]
        for q in range(b - a):
            src[a - base + q] = sr[q]
            winner[a - base + q] = wn[q]
        c += pt.size
        oo[s + 1] = c
    return ot[:c].copy(), ou[:c].copy(), ov[:c].copy(), oo, src, winner


def _chunks(n, n_threads):
    """Contiguous sample ranges, one per thread."""
    k = max(1, min(n_threads, n))
    if k == 1:
        return [(0, n)] if n > 0 else []
    edges = np.linspace(0, n, k + 1).round().astype(np.int64)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def _map_chunks(fn, n, n_threads):
    """fn(a, b) over the chunks of samples [0, n), in threads when n_threads > 1."""
    chunks = _chunks(n, n_threads)
    if len(chunks) == 1:
        return [fn(*chunks[0])]
    with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
        return list(pool.map(lambda c: fn(*c), chunks))


def _join(parts, starts):
    """Concatenate the chunk results of a forward kernel: (times, neurons, offsets, bad)
    [+ values ...]; ``starts`` are the chunks' first samples."""
    if len(parts) == 1:  # one chunk (one thread): its arrays as they are, no copies
        p = parts[0]
        return p[0], p[1], p[2], (starts[0] + p[3] if p[3] >= 0 else -1)
    t = np.concatenate([p[0] for p in parts])
    i = np.concatenate([p[1] for p in parts])
    offs = [parts[0][2]]
    base = parts[0][2][-1]
    for p in parts[1:]:
        offs.append(p[2][1:] + base)
        base += p[2][-1]
    bad = -1
    for p, s0 in zip(parts, starts):
        if p[3] >= 0:
            bad = s0 + p[3]
            break
    return t, i, np.concatenate(offs), bad


def _lif_layer(layer, nrn, w, cur, li, t_stop, max_spikes):
    """A layer of LIF neurons, one sample at a time with its kernel (as simulate_sample)."""
    outs = []
    off = cur.offsets
    for s in range(cur.n_samples):
        a, b = off[s], off[s + 1]
        ot, oi, exceeded = _engine_lif.simulate_lif_layer(
            layer, w, cur.times[a:b], cur.neurons[a:b], cur.values[a:b], nrn, t_stop, max_spikes)
        _check_exceeded(exceeded, li, layer, nrn, max_spikes)
        outs.append((np.asarray(ot, np.float64), np.asarray(oi, np.int64)))
    oo = np.zeros(cur.n_samples + 1, np.int64)
    np.cumsum([o[0].size for o in outs], out=oo[1:])
    ot = np.concatenate([o[0] for o in outs]) if outs else np.zeros(0)
    oi = np.concatenate([o[1] for o in outs]) if outs else np.zeros(0, np.int64)
    return Events(ot, oi, np.ones(ot.size), oo, layer.n_out)


def _layer_neurons(net):
    """Each layer's neuron model (``net.layer_neurons``; a network-like object without it
    uses ``net.neuron`` everywhere)."""
    got = getattr(net, "layer_neurons", None)
    if got is not None:
        return got
    return [net.neuron if layer.has_neurons else None for layer in net.layers]


def prepare_forward(net: Sequential) -> List[Any]:
    """Per-layer kernel arrays (weights as they are now), computed once per batch."""
    return [kernel_weights(layer) for layer in net.layers]


def simulate_batch(net: Any, events: Events, t_end: float, n_threads: int = 1,
                   max_spikes: int = DEFAULT_MAX_SPIKES, upto: Optional[int] = None,
                   weights: Optional[Sequence[Any]] = None
                   ) -> Tuple[List[Events], List[Optional[Tuple[np.ndarray, np.ndarray]]]]:
    """Simulate a batch through ``net.layers[:upto]``.

    events : Events of the input (checked by the caller: n_neurons == net.n_in).
    t_end : float, ms (inf: until nothing is pending).
    Returns (levels, relays): levels[0] is ``events``, levels[l] layer l's output Events;
    relays[l] = (src, winner) for pooling layers (src indexes the sample's own relayed
    events), None otherwise. Raises ValueError when a layer exceeds ``max_spikes`` for a
    sample (the message of ``Sequential.simulate``)."""
    t_stop = math.inf if t_end is None else float(t_end)
    layers = net.layers if upto is None else net.layers[:upto]
    layer_neurons = _layer_neurons(net)
    if weights is None:
        weights = prepare_forward(net)
    levels = [events]
    relays: List[Any] = [None]
    cur = events
    n = events.n_samples
    starts = [a for a, _ in _chunks(n, n_threads)]
    for li, layer in enumerate(layers, start=1):
        w = weights[li - 1]
        t, i, v, off = cur.times, cur.neurons, cur.values, cur.offsets
        relay = None
        nrn = layer_neurons[li - 1]
        if layer.has_neurons and not isinstance(nrn, LIF):
            tau_m, tau_s, theta, membrane_reset, t_ref = nrn.as_tuple()
        if layer.has_neurons and isinstance(nrn, LIF):
            nxt = _lif_layer(layer, nrn, w, cur, li, t_stop, max_spikes)
        elif isinstance(layer, Dense):
            parts = _map_chunks(lambda a, b: _dense_batch(
                t, i, v, off[a:b + 1], w, tau_m, tau_s, theta, membrane_reset, t_ref, t_stop,
                max_spikes), n, n_threads)
            ot, oi, oo, bad = _join(parts, starts)
            if bad >= 0:
                _check_exceeded(True, li, layer, nrn, max_spikes)
            nxt = Events(ot, oi, np.ones(ot.size), oo, layer.n_out)
        elif isinstance(layer, Conv2d):
            WT = _conv.transposed_weight(layer, w)
            parts = _map_chunks(lambda a, b: _conv_batch(
                t, i, v, off[a:b + 1], layer, WT, tau_m, tau_s, theta, membrane_reset, t_ref,
                t_stop, max_spikes), n, n_threads)
            ot, oi, oo, bad = _join(parts, starts)
            if bad >= 0:
                _check_exceeded(True, li, layer, nrn, max_spikes)
            nxt = Events(ot, oi, np.ones(ot.size), oo, layer.n_out)
        elif isinstance(layer, (MaxPool2d, AvgPool2d)):
            k2 = float(layer.kernel_size ** 2)
            is_max = isinstance(layer, MaxPool2d)
            parts = _map_chunks(lambda a, b: _pool_batch(
                t, i, v, off[a:b + 1], w, layer.n_out, is_max, 1.0 / k2), n, n_threads)
            ot, oi, oo, _ = _join([(p[0], p[1], p[3], -1) for p in parts], starts)
            if len(parts) == 1:
                ov, relay = parts[0][2], (parts[0][4], parts[0][5])
            else:
                ov = np.concatenate([p[2] for p in parts])
                relay = (np.concatenate([p[4] for p in parts]),
                         np.concatenate([p[5] for p in parts]))
            nxt = Events(ot, oi, ov, oo, layer.n_out)
        elif isinstance(layer, Flatten):
            nxt = Events(t, i, v, off, layer.n_out)
        else:
            raise TypeError(f"event mode does not support layer {layer!r}")
        levels.append(nxt)
        relays.append(relay)
        cur = nxt
    return levels, relays


def records(levels: Sequence[Events], relays: Sequence[Any],
            t_end: Optional[float], inputs: Optional[Sequence[SpikeTrains]] = None
            ) -> List[Record]:
    """Split a simulated batch into one :class:`Record` per sample (as ``simulate`` returns);
    ``inputs``, the SpikeTrains the batch was made of, become the records' input level."""
    t_stop = math.inf if t_end is None else float(t_end)
    per_level = [list(inputs) if inputs is not None else levels[0].trains()]
    per_level += [lev.trains() for lev in levels[1:]]
    out = []
    for s in range(levels[0].n_samples):
        rel: List[Any] = [None]
        for li in range(1, len(levels)):
            if relays[li] is None:
                rel.append(None)
            else:
                a, b = levels[li - 1].offsets[s], levels[li - 1].offsets[s + 1]
                rel.append((relays[li][0][a:b], relays[li][1][a:b]))
        out.append(Record(spikes=[lv[s] for lv in per_level], t_end=t_stop, relays=rel))
    return out


@njit(cache=True, nogil=True)
def _insert_spikes(t, i, off, neuron, t_new):
    """Add to every sample s one event of neuron[s] at t_new (skipped where neuron[s] < 0),
    keeping the (time, neuron) order. Returns (times, neurons, offsets)."""
    n = off.size - 1
    extra = 0
    for s in range(n):
        if neuron[s] >= 0:
            extra += 1
    t2 = np.empty(t.size + extra)
    i2 = np.empty(t.size + extra, np.int64)
    off2 = np.zeros(n + 1, np.int64)
    e2 = 0
    for s in range(n):
        placed = neuron[s] < 0
        for e in range(off[s], off[s + 1]):
            if not placed and (t[e] > t_new or (t[e] == t_new and i[e] > neuron[s])):
                t2[e2] = t_new
                i2[e2] = neuron[s]
                e2 += 1
                placed = True
            t2[e2] = t[e]
            i2[e2] = i[e]
            e2 += 1
        if not placed:
            t2[e2] = t_new
            i2[e2] = neuron[s]
            e2 += 1
        off2[s + 1] = e2
    return t2, i2, off2


def with_supervisory_spikes(out: Events, labels: np.ndarray, t: float) -> Events:
    """Batched ``eventsnn.losses.with_supervisory_spike``: every sample's output gets one
    more spike of its label neuron at ``t`` ms, unless that neuron already fired at t.
    ``out`` is an Events, ``labels`` validated ints (n,); a negative label adds nothing."""
    n = out.n_samples
    s_of = out.sample_of_event()
    is_label = out.neurons == labels[s_of]
    has = np.zeros(n, bool)
    has[s_of[is_label & (out.times == t)]] = True
    if np.any(is_label & (out.times > t) & ~has[s_of]):
        raise ValueError(f"the label neuron fired after t={t} ms: the supervisory spike must "
                         "come at the end of the window")
    neuron = np.where(has, -1, labels).astype(np.int64)
    t2, i2, off2 = _insert_spikes(out.times, out.neurons, out.offsets, neuron, float(t))
    return Events(t2, i2, np.ones(t2.size), off2, out.n_neurons)


# ---- backward ------------------------------------------------------------------------
def _layer_backward_batch(in_t, in_i, in_v, in_off, out_t, out_i, out_off, g_out, n_in, n_out,
                          kind, geom, w, n_w, tau_m, tau_s, t_ref, kernel, tau_grad,
                          drop_nonpositive, clamp, clamp_lo, clamp_hi, factor, input_grad, block,
                          per_sample):
    """The timing backward kernel of one layer for the samples of in_off/out_off (same
    length): ``_backward.layer_backward`` (kind "dense": w is W^T flattened) or
    ``_backward.conv_backward`` (kind "conv": w the flat weight, geom its geometry), every
    sample in one numba call (:func:`_backward_samples`).

    Returns (g_in for the input events in_off[0]:in_off[-1] (empty without
    ``input_grad``), weight gradients in the kernel's layout, dropped): the weight gradients
    are one row per sample when ``per_sample``, else one row, the sum over the samples in
    sample order starting from zeros."""
    return _backward_samples(in_t, in_i, in_v, np.ascontiguousarray(in_off, dtype=np.int64),
                             out_t, out_i, np.ascontiguousarray(out_off, dtype=np.int64),
                             g_out, int(n_in), int(n_out), kind == "conv", geom, w, int(n_w),
                             float(tau_m), float(tau_s), float(t_ref), int(kernel),
                             float(tau_grad), bool(drop_nonpositive), bool(clamp),
                             float(clamp_lo), float(clamp_hi), float(factor), bool(input_grad),
                             float(block), bool(per_sample))


@njit(cache=True, nogil=True)
def _backward_samples(in_t, in_i, in_v, in_off, out_t, out_i, out_off, g_out, n_in, n_out,
                      conv, geom, w, n_w, tau_m, tau_s, t_ref, kernel, tau_grad,
                      drop_nonpositive, clamp, clamp_lo, clamp_hi, factor, input_grad, block,
                      per_sample):
    """The loop over the samples of :func:`_layer_backward_batch` inside numba: each
    sample's kernel call, then its weight gradient added into its row of G (or into the one
    row, samples in order from zeros: the same additions as ``G[row] += gw`` in numpy)."""
    n = in_off.size - 1
    base = in_off[0]
    g_in = np.zeros(in_off[n] - base if input_grad else 0)
    G = np.zeros((n if per_sample else 1, n_w))
    dropped = 0
    empty = np.zeros(0, np.int64)
    for s in range(n):
        a, b = in_off[s], in_off[s + 1]
        c, d = out_off[s], out_off[s + 1]
        if conv:
            gi, gw, _, _, nd = _backward.conv_backward(
                in_t[a:b], in_i[a:b], in_v[a:b], out_t[c:d], out_i[c:d], g_out[c:d], geom, w,
                tau_m, tau_s, t_ref, kernel, tau_grad, drop_nonpositive, clamp, clamp_lo,
                clamp_hi, factor, input_grad, block, True)
        else:
            gi, gw, _, _, nd = _backward.layer_backward(
                in_t[a:b], in_i[a:b], in_v[a:b], out_t[c:d], out_i[c:d], g_out[c:d], n_in,
                n_out, True, empty, empty, empty, w, n_w, tau_m, tau_s, t_ref, kernel,
                tau_grad, drop_nonpositive, clamp, clamp_lo, clamp_hi, factor, input_grad,
                block)
        if input_grad:
            for m in range(b - a):
                g_in[a - base + m] = gi[m]
        row = s if per_sample else 0
        for k in range(n_w):
            G[row, k] += gw[k]
        dropped += nd
    return g_in, G, dropped


@njit(cache=True, nogil=True)
def _sum_rows(G):
    out = np.zeros(G.shape[1])
    for s in range(G.shape[0]):
        for k in range(G.shape[1]):
            out[k] += G[s, k]
    return out


@njit(cache=True, nogil=True)
def _pool_backward_kernel(g_out, out_offsets, src, in_offsets, winner, is_max, adjusted, k2):
    out = np.zeros(src.size)
    cnt = np.zeros(g_out.size, np.int64)
    if adjusted and not is_max:
        for s in range(in_offsets.size - 1):
            for e in range(in_offsets[s], in_offsets[s + 1]):
                if src[e] >= 0:
                    cnt[src[e] + out_offsets[s]] += 1
    for s in range(in_offsets.size - 1):
        base = out_offsets[s]
        for e in range(in_offsets[s], in_offsets[s + 1]):
            if src[e] < 0:
                continue
            o = src[e] + base
            if is_max:
                if winner[e]:
                    out[e] = g_out[o]
            elif adjusted:
                out[e] = g_out[o] / cnt[o]
            else:
                out[e] = g_out[o] / k2
    return out


def pool_backward_batch(g_out: np.ndarray, out_offsets: np.ndarray, src: np.ndarray,
                        winner: np.ndarray, in_offsets: np.ndarray, is_max: bool,
                        adjusted: bool, k2: float) -> np.ndarray:
    """``backward.pool_backward`` of every sample at once (one pass in numba): src indexes
    each sample's own relayed events, so it is shifted by that sample's offset first. Max:
    the winner gets the gradient of its relayed event; average: the gradient over the
    number of events merged into it (``adjusted``) or over k^2."""
    return _pool_backward_kernel(np.ascontiguousarray(g_out, dtype=np.float64),
                                 np.ascontiguousarray(out_offsets, dtype=np.int64),
                                 np.ascontiguousarray(src, dtype=np.int64),
                                 np.ascontiguousarray(in_offsets, dtype=np.int64),
                                 np.ascontiguousarray(winner, dtype=np.bool_), bool(is_max),
                                 bool(adjusted), float(k2))


def backward_batch(net: Sequential, levels: Sequence[Events],
                   relays: Sequence[Optional[Tuple[np.ndarray, np.ndarray]]],
                   grad_out: np.ndarray, kernel_code: int, tau_grad: float,
                   drop_nonpositive: bool, clamp: Optional[Tuple[float, float]],
                   factor: Union[float, Sequence[float]], n_threads: int = 1,
                   prep: Any = None, per_sample: bool = False,
                   input_grad: bool = False) -> Tuple[List[Any], int]:
    """Timing backward of a simulated batch (validated by the caller).

    levels, relays : from :func:`simulate_batch` (the output level may hold extra spikes,
        e.g. supervisory ones); grad_out : dL/dt of every output event, aligned with
        ``levels[-1].times``.
    Returns (weight gradient per layer, summed over the samples in sample order, shaped
    like the layer's weight; None for layers without weight), and the number of dropped
    spike shares. With ``per_sample`` each gradient is instead an array (n, *weight shape)
    of the samples' own gradients. dL/dt of the input events is not computed unless
    ``input_grad`` (training never needs it)."""
    from .backward import _lowest_level, _prepare

    layer_neurons = _layer_neurons(net)
    lo, hi = clamp if clamp is not None else (0.0, 0.0)
    if prep is None:
        prep = _prepare(net)
    L = len(net.layers)
    lowest = _lowest_level(net, input_grad)
    n = levels[0].n_samples
    chunks = _chunks(n, n_threads)
    rows = per_sample or len(chunks) > 1
    g = grad_out
    weights: List[Any] = [None] * L
    dropped = 0
    empty = np.zeros(0, np.int64)
    for li in range(L, lowest, -1):
        layer = net.layers[li - 1]
        below, here = levels[li - 1], levels[li]
        p = prep[li - 1]
        need_in = input_grad or li - 1 > lowest   # dL/dt of this layer's input events
        if p[0] in ("dense", "conv"):
            nrn = layer_neurons[li - 1]
            args = (p[0], empty if p[0] == "dense" else p[2], p[1], p[1].size)
            gcur = g
            block = _backward.block_length(nrn.tau_m, nrn.tau_s, kernel_code, tau_grad)

            def run(a, b, gcur=gcur, args=args, below=below, here=here, need_in=need_in, nrn=nrn,
                    block=block):
                return _layer_backward_batch(
                    below.times, below.neurons, below.values, below.offsets[a:b + 1],
                    here.times, here.neurons, here.offsets[a:b + 1], gcur,
                    below.n_neurons, here.n_neurons, *args, nrn.tau_m, nrn.tau_s, nrn.t_ref,
                    kernel_code, tau_grad, bool(drop_nonpositive), clamp is not None, lo, hi,
                    factor, need_in, block, rows)

            parts = _map_chunks(run, n, n_threads)
            G = parts[0][1] if len(parts) == 1 else np.concatenate([q[1] for q in parts])
            if p[0] == "dense":  # the kernel works on W^T
                shape_k = (layer.n_in, layer.n_out)
                fix = lambda a: np.ascontiguousarray(a.reshape(shape_k).T)  # noqa: E731
            else:
                fix = lambda a: a.reshape(layer.weight_shape)  # noqa: E731
            if per_sample:
                weights[li - 1] = np.stack([fix(G[s]) for s in range(n)]) if n else \
                    np.zeros((0,) + layer.weight_shape)
            else:
                total = G[0] if not rows else _sum_rows(G)
                weights[li - 1] = fix(total)
            dropped += sum(int(q[2]) for q in parts)
            g = parts[0][0] if len(parts) == 1 else np.concatenate([q[0] for q in parts])
        elif p[0] in ("max", "avg"):
            src, winner = cast(Tuple[np.ndarray, np.ndarray], relays[li])
            g = pool_backward_batch(g, here.offsets, src, winner, below.offsets, p[0] == "max",
                                    p[1] if p[0] == "avg" else True,
                                    p[2] if p[0] == "avg" else 1.0)
        else:
            g = g.copy()
    return weights, dropped
