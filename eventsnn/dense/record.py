"""What a dense-mode forward pass leaves behind for the learning rules."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from typing import Any, List


@dataclass
class DenseRecord:
    """Forward record of :func:`eventsnn.dense.forward.run`.

    All arrays are time-major float64 ``(T, B, n)`` with the flat neuron index last (C
    order). One entry per layer of the network:

    inputs[l] : the layer's input (``x`` for layer 0, else ``outputs[l-1]``)
    currents[l] : ``W x`` (the input current, before the neuron's own scales; without the
        bias, which enters V directly) for Dense and Conv2d layers, None for the others
    membranes[l] : membrane potential u (Zhu) or V (ANTLR) after the step's input and
        before the reset, None for layers without neurons
    increments[l] : per-step membrane increment ``u[t] - u[t-1] (1 - S[t-1])``
        (unclamped), None for layers without neurons
    outputs[l] : spikes (0/1) of neuron layers, pooled values of pooling layers, the input
        of Flatten
    neuron : the dense neuron (ZhuNeuron or AntlrNeuron) of every neuron layer
    layers : the network's layers (the rules read their weights and biases)
    dt : ms per step; pool_weight : the pooling multiplier used
    """

    inputs: list
    currents: list
    membranes: list
    increments: list
    outputs: list
    neuron: Any  # ZhuNeuron or AntlrNeuron
    layers: Any = None  # list of Layer (set by the forward pass)
    dt: float = 1.0
    pool_weight: float = 1.0
    extra: dict = field(default_factory=dict)

    @property
    def n_steps(self) -> int:
        return self.inputs[0].shape[0]

    @property
    def batch_size(self) -> int:
        return self.inputs[0].shape[1]

    @property
    def spikes(self) -> List[np.ndarray]:
        """[input, layer 1 output, ..., network output], like the event-mode Record."""
        return [self.inputs[0]] + list(self.outputs)

    @property
    def output(self) -> np.ndarray:
        """Output spikes (T, B, n_out)."""
        return self.outputs[-1]

    def counts(self, layer: int = -1) -> np.ndarray:
        """Spike count per sample and neuron of one layer's output, (B, n)."""
        return self.outputs[layer].sum(axis=0)

    def first_spike(self, layer: int = -1) -> np.ndarray:
        """Step of each neuron's first spike, (B, n) int; ``n_steps`` when silent."""
        out = self.outputs[layer] > 0
        first = out.argmax(axis=0)
        return np.where(out.any(axis=0), first, out.shape[0]).astype(np.int64)

    def __repr__(self):
        counts = ", ".join(f"{o.sum():g}" for o in self.outputs)
        return (f"DenseRecord(T={self.n_steps}, B={self.batch_size}, neuron={self.neuron!r}, "
                f"output sums per layer: [{counts}])")


@dataclass
class DenseGrads:
    """Result of a dense-mode rule.

    weights : one array per layer (None for layers without weights)
    grad_s : per entry of ``record.spikes`` ([input, layer 1, ..., output]), dL/dS (T, B, n)
        as the rule propagated it (None where the rule has no activation path)
    grad_t : same, dL/dt at spikes (zero elsewhere; None where the rule has no timing path)
    grad_v : per layer, dL/dV (T, B, n) of neuron layers (None for others)
    biases : one array per layer, dL/dbias shaped like the layer's bias (None for layers
        without a bias); the rules that support biases (activation, antlr) fill it
    """

    weights: list
    grad_s: Optional[list] = None
    grad_t: Optional[list] = None
    grad_v: Optional[list] = None
    biases: Optional[list] = None
