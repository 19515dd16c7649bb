"""Readable reference event engine: the test oracle of the numba engine.

Written straight from the definitions in design.md section 2, for clarity, not speed:

* one global priority queue (a SortedList) holds every pending event of every layer, so
  the network is simulated in true global time order rather than layer by layer;
* a neuron stores the inputs it received and its own spikes; its membrane is evaluated by
  summing kernels over those inputs (no traces);
* the next threshold crossing after the last input is found with scipy's brentq, first on
  du/dt (the single extremum), then on u - theta.

At one time t: predicted crossings fire first (crossing items sort before arrivals), then
arrivals are applied layer by layer, each layer's coincident arrivals together.
"""
from __future__ import annotations

import math
from itertools import count

import numpy as np
from scipy.optimize import brentq
from sortedcontainers import SortedList

from ..layers import AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d
from ..neurons import LIF
from ..spikes import SpikeTrains
from typing import TYPE_CHECKING, List, Optional

if TYPE_CHECKING:
    from ..network import Sequential

CROSSING, ARRIVAL = 0, 1


class _Neuron:
    def __init__(self):
        self.inputs = []        # (time, weighted value)
        self.last_spike = -math.inf
        self.version = 0


class _Params:
    """One layer's neuron model, from its definition."""

    def __init__(self, nrn):
        self.lif = isinstance(nrn, LIF)
        self.tau_m, self.theta, self.t_ref = nrn.tau_m, nrn.theta, nrn.t_ref
        self.tau_s = None if self.lif else nrn.tau_s
        self.membrane_reset = nrn.reset == "membrane"


class ReferenceEngine:
    """Simulate a Sequential network from its definition. Use :meth:`simulate`.

    Each layer uses its own neuron model (``net.layer_neurons``): an SRM, or a LIF without
    synaptic current, whose membrane jumps at each input (so it can only fire at an input
    time: it is checked right after the coincident arrivals of that time are applied)."""

    def __init__(self, net: Sequential) -> None:
        self.net = net
        self.params = [_Params(nrn) if nrn is not None else None for nrn in net.layer_neurons]
        self._use(self.params[next(k for k, p in enumerate(self.params) if p is not None)])

    def _use(self, p):
        """Make ``p`` the neuron model the kernel methods below evaluate."""
        self.p = p
        self.tau_m, self.tau_s, self.theta = p.tau_m, p.tau_s, p.theta
        self.membrane_reset = p.membrane_reset
        self.t_ref = p.t_ref

    # ---- the neuron model, from its definition --------------------------------------
    def _eps(self, s):
        tm, ts = self.tau_m, self.tau_s
        if self.p.lif:
            return math.exp(-s / tm) if s >= 0 else 0.0
        return tm / (tm - ts) * (math.exp(-s / tm) - math.exp(-s / ts)) if s >= 0 else 0.0

    def _deps(self, s):
        tm, ts = self.tau_m, self.tau_s
        return tm / (tm - ts) * (math.exp(-s / ts) / ts - math.exp(-s / tm) / tm) if s >= 0 else 0.0

    def _start(self, nrn):
        """Start of the neuron's current free period (end of refractoriness)."""
        return nrn.last_spike + self.t_ref

    def _u(self, nrn, t, deriv=False):
        """Membrane potential (or its time derivative) at time t >= the last input."""
        r = self._start(nrn)
        kern = self._deps if deriv else self._eps
        total = 0.0
        if self.p.lif:
            # the membrane restarts from 0 at the spike; inputs up to r are lost
            for tm_, wv in nrn.inputs:
                if r < tm_ <= t:
                    total += wv * kern(t - tm_)
            return total
        if self.membrane_reset:
            if t < r:
                return 0.0
            for tm_, wv in nrn.inputs:
                if tm_ <= r:  # its current at r drives the membrane that restarts from 0 at r
                    total += wv * math.exp(-(r - tm_) / self.tau_s) * kern(t - r)
                elif tm_ <= t:
                    total += wv * kern(t - tm_)
        else:
            for tm_, wv in nrn.inputs:
                if r < tm_ <= t:
                    total += wv * kern(t - tm_)
        return total

    def _next_crossing(self, nrn, t_now):
        """First t >= t_now with u(t) >= theta, assuming no further input (inf if none)."""
        start = max(t_now, self._start(nrn))
        if self._u(nrn, start) >= self.theta:
            return start
        if self._u(nrn, start, deriv=True) <= 0:
            return math.inf  # falling, or falling then rising towards 0: never reaches theta
        span = max(self.tau_m, self.tau_s)
        while self._u(nrn, start + span, deriv=True) > 0:
            span *= 2.0
            if span > 1e6:  # rising towards 0 from below forever
                return math.inf
        t_max = brentq(lambda t: self._u(nrn, t, deriv=True), start, start + span, xtol=1e-14,
                       rtol=4 * np.finfo(float).eps, maxiter=500)
        if self._u(nrn, t_max) < self.theta:
            return math.inf
        return brentq(lambda t: self._u(nrn, t) - self.theta, start, t_max, xtol=1e-14,
                      rtol=4 * np.finfo(float).eps, maxiter=500)

    # ---- connectivity, from the layer definitions ------------------------------------
    @staticmethod
    def _targets(layer, j):
        """(target, weight) pairs of input neuron j."""
        if isinstance(layer, Dense):
            return [(i, layer.weight[i, j]) for i in range(layer.weight.shape[0])]
        C, H, W = layer.in_shape
        Co, Ho, Wo = layer.out_shape
        k, s, p = layer.kernel_size, layer.stride, layer.padding
        c, rem = divmod(j, H * W)
        y, x = divmod(rem, W)
        out = []
        for co in range(Co):
            for oy in range(Ho):
                ky = y + p - oy * s
                if not 0 <= ky < k:
                    continue
                for ox in range(Wo):
                    kx = x + p - ox * s
                    if 0 <= kx < k:
                        out.append((co * Ho * Wo + oy * Wo + ox, layer.weight[co, c, ky, kx]))
        return out

    @staticmethod
    def _pooled_unit(layer, j):
        C, H, W = layer.in_shape
        _, Ho, Wo = layer.out_shape
        k = layer.kernel_size
        c, rem = divmod(j, H * W)
        y, x = divmod(rem, W)
        if y // k >= Ho or x // k >= Wo:
            return None
        return c * Ho * Wo + (y // k) * Wo + x // k

    # ---- the simulation ---------------------------------------------------------------
    def simulate(self, st: SpikeTrains, t_end: Optional[float] = None) -> List[SpikeTrains]:
        """Simulate one SpikeTrains; returns the list [input, layer 1, ..., output] of
        SpikeTrains, as ``Record.spikes`` of the fast engine."""
        t_end = math.inf if t_end is None else float(t_end)
        layers = self.net.layers
        neurons = [[_Neuron() for _ in range(layer.n_out)] if layer.has_neurons else None
                   for layer in layers]
        emitted: List[list] = [[] for _ in layers]  # (time, index, value) per layer
        queue = SortedList()
        seq = count()
        for t, j, val in zip(st.times, st.neurons, st.values):
            if t <= t_end:
                queue.add((t, ARRIVAL, 0, next(seq), int(j), float(val)))
        while queue:
            t, kind, li = queue[0][:3]
            if t > t_end:
                break
            if kind == CROSSING:
                _, _, li, _, i, version = queue.pop(0)
                nrn = neurons[li][i]
                if version != nrn.version:
                    continue
                self._use(self.params[li])
                nrn.last_spike = t
                nrn.version += 1
                emitted[li].append((t, i, 1.0))
                if li + 1 < len(layers):
                    queue.add((t, ARRIVAL, li + 1, next(seq), i, 1.0))
                if self.membrane_reset:
                    self._predict(queue, seq, li, i, nrn, t)
                continue
            group = []
            while queue and queue[0][0] == t and queue[0][1] == ARRIVAL and queue[0][2] == li:
                group.append(queue.pop(0))
            self._arrive(queue, seq, layers, neurons, emitted, li, t, [(g[4], g[5]) for g in group])
        return [st] + [SpikeTrains(np.array([e[0] for e in ev], dtype=float),
                                   np.array([e[1] for e in ev], dtype=np.int64), layer.n_out,
                                   np.array([e[2] for e in ev], dtype=float))
                       for layer, ev in zip(layers, emitted)]

    def _predict(self, queue, seq, li, i, nrn, t_now):
        nrn.version += 1
        t_cross = self._next_crossing(nrn, t_now)
        if t_cross < math.inf:
            queue.add((t_cross, CROSSING, li, next(seq), i, nrn.version))

    def _arrive(self, queue, seq, layers, neurons, emitted, li, t, events):
        layer = layers[li]
        if isinstance(layer, Flatten):
            for j, val in events:
                self._relay(queue, seq, layers, emitted, li, t, j, val)
            return
        if isinstance(layer, (MaxPool2d, AvgPool2d)):
            pooled = {}
            for j, val in events:
                unit = self._pooled_unit(layer, j)
                if unit is None:
                    continue
                if isinstance(layer, MaxPool2d):
                    pooled[unit] = max(pooled.get(unit, -math.inf), val)
                else:
                    pooled[unit] = pooled.get(unit, 0.0) + val / layer.kernel_size ** 2
            for unit in sorted(pooled):
                self._relay(queue, seq, layers, emitted, li, t, unit, pooled[unit])
            return
        self._use(self.params[li])
        touched = set()
        for j, val in events:
            for i, w in self._targets(layer, j):
                nrn = neurons[li][i]
                if (self.p.lif or not self.membrane_reset) and t <= self._start(nrn):
                    continue  # full reset: inputs at or before the last spike (+ t_ref) are gone
                nrn.inputs.append((t, w * val))
                touched.add(i)
        for i in sorted(touched):
            if self.p.lif:
                # no current: the membrane can cross only now, after this time's arrivals
                nrn = neurons[li][i]
                if self._u(nrn, t) >= self.theta:
                    nrn.last_spike = t
                    emitted[li].append((t, i, 1.0))
                    if li + 1 < len(layers):
                        queue.add((t, ARRIVAL, li + 1, next(seq), i, 1.0))
                continue
            self._predict(queue, seq, li, i, neurons[li][i], t)

    def _relay(self, queue, seq, layers, emitted, li, t, unit, val):
        emitted[li].append((t, unit, val))
        if li + 1 < len(layers):
            queue.add((t, ARRIVAL, li + 1, next(seq), unit, val))


def simulate_reference(net: Sequential, st: SpikeTrains,
                       t_end: Optional[float] = None) -> List[SpikeTrains]:
    """Spike trains [input, layer 1, ..., output] of ``net`` for ``st`` from the reference
    engine."""
    return ReferenceEngine(net).simulate(st, t_end)
