"""Whole-network forward/backward of the PSC family (TSSL-BP, NA) and of ASF-BP, dense mode.

PSC family (:class:`~eventsnn.dense.psc_neurons.PscLIF` in every Dense/Conv2d layer):
input currents ``x (T, B, n_in)`` go through the PSC filter; each neuron layer receives
``c = W a_prev`` and passes its own PSC ``a`` on; AvgPool2d pools PSCs as
``pool_sum_weight * window sum`` (the TSSL-BP/NA codes: 1.1; None = the window mean),
MaxPool2d takes the window max; Flatten is the identity. The class is the output neuron with
the largest time-summed PSC.

ASF-BP (:class:`~eventsnn.dense.psc_neurons.AsfNeuron`): spikes pass between layers, no
synaptic filter; the last layer does not spike (it integrates ``W s``); pooling layers are
followed by IF neurons of threshold ``pool_theta`` (the code) or pass the pooled spikes on
(``pool_theta=None``). The class is the output with the largest membrane u_T.

Layer operations come from :mod:`eventsnn.dense.ops`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .. import _validate as _v
from ..layers import AvgPool2d, MaxPool2d
from . import ops
from .psc_neurons import AsfNeuron, PscLIF, asf_layer, psc_filter, psc_layer
from .rules.asf import flow_input_grad, scale_ratio
from typing import TYPE_CHECKING, Any, Callable, List, Sequence, Tuple, Union

if TYPE_CHECKING:
    from ..network import Sequential

#: TSSL-BP / NA codes: weight of each input of an average-pooling window (window summed)
POOL_SUM_WEIGHT_CODE = 1.1
PSC_LOSSES = ("spike_train", "count")


def _pool_weight(layer, pool_sum_weight):
    """ops' pool_weight for a pooling layer: AvgPool2d returns pool_weight * mean."""
    if isinstance(layer, AvgPool2d) and pool_sum_weight is not None:
        return float(pool_sum_weight) * layer.kernel_size ** 2
    return 1.0


def _check_net(net):
    from ..network import Sequential

    if not isinstance(net, Sequential):
        raise TypeError(f"net must be an eventsnn.Sequential, got {type(net).__name__}")
    net._reject_biases("the PSC/ASF networks (TSSL-BP, NA, ASF-BP)")
    net._check_weights()


def _check_input(net, x):
    x = _v.float_array("x", x)
    if x.ndim != 3 or x.shape[2] != net.n_in or x.shape[0] < 1:
        raise ValueError(f"x must have shape (T, B, {net.n_in}) with T >= 1, got {x.shape}")
    return x


# ---- PSC family --------------------------------------------------------------------------
@dataclass
class PscRecord:
    """Forward record of a PSC network.

    ``inputs[l]`` is what layer l receives (PSC-like, (T, B, n_in of l)); ``states[l]`` is
    ``dict(c, v, s, u, a)`` for neuron layers, None otherwise; ``output`` the PSC of the last
    layer (T, B, n_out)."""

    inputs: list = field(default_factory=list)
    states: list = field(default_factory=list)
    output: Optional[np.ndarray] = None

    def spike_count(self) -> np.ndarray:
        """Total spikes of the neuron layers, per sample (B,)."""
        total: Any = 0.0
        for st in self.states:
            if st is not None:
                total = total + st["s"].sum(axis=(0, 2))
        return total


def psc_forward(net: Sequential, x: np.ndarray, neuron: PscLIF,
                pool_sum_weight: float = POOL_SUM_WEIGHT_CODE) -> PscRecord:
    """Run ``net`` with PscLIF neurons on input currents ``x`` (T, B, n_in); -> PscRecord."""
    _check_net(net)
    if not isinstance(neuron, PscLIF):
        raise TypeError(f"neuron must be a PscLIF, got {type(neuron).__name__}")
    if pool_sum_weight is not None:
        pool_sum_weight = _v.positive_float("pool_sum_weight", pool_sum_weight)
    x = _check_input(net, x)
    rec = PscRecord()
    a = psc_filter(x, neuron.tau_s)
    for layer in net.layers:
        rec.inputs.append(a)
        if layer.has_neurons:
            c = ops.forward(layer, a)
            vm, s, u, a = psc_layer(c, neuron)
            rec.states.append({"c": c, "v": vm, "s": s, "u": u, "a": a})
        else:
            a = ops.forward(layer, a, pool_weight=_pool_weight(layer, pool_sum_weight))
            rec.states.append(None)
    rec.output = a
    return rec


@dataclass
class PscGrads:
    """Everything :func:`psc_backward` computes, per layer l (None where it does not apply):
    ``weights[l]`` dL/dW (summed over T and B), ``psc_grads[l]`` dL/da of the layer's output
    (its PSC for neuron layers, the pooled PSC for pooling layers; (T, B, n_out)), and
    ``deltas[l]`` the rule's dL/dc of neuron layers (T, B, n_out)."""

    weights: list
    psc_grads: list
    deltas: list


class PscBackwardPass:
    """:func:`psc_backward` one neuron layer at a time, for rules that need something from
    outside between two neuron layers (NA's batch-wide rescaling, whose means a data-parallel
    run reduces over the workers between layers). Plain picklable data.

    :meth:`next_neuron_layer` passes the gradient down through the layers without neurons
    and returns the index l of the next neuron layer (None when the pass is done); ``g`` is
    then that layer's dL/da; :meth:`apply` takes the rule's delta (dL/dc) of layer l, forms
    its weight gradient and the dL/da of the layer below."""

    def __init__(self, net: Sequential, rec: PscRecord, g_out: np.ndarray,
                 pool_sum_weight: float = POOL_SUM_WEIGHT_CODE) -> None:
        L = len(net.layers)
        self.net, self.rec, self.pool_sum_weight = net, rec, pool_sum_weight
        self.weights: List[Any] = [None] * L
        self.psc_grads: List[Any] = [None] * L
        self.deltas: List[Any] = [None] * L
        self.g = g_out
        self.l = L - 1

    def next_neuron_layer(self) -> Optional[int]:
        while self.l >= 0:
            layer = self.net.layers[self.l]
            self.psc_grads[self.l] = self.g
            if layer.has_neurons:
                return self.l
            self.g = ops.backward_input(layer, self.g, x=self.rec.inputs[self.l],
                                        pool_weight=_pool_weight(layer, self.pool_sum_weight))
            self.l -= 1
        return None

    def apply(self, delta: np.ndarray) -> None:
        l = self.l
        layer = self.net.layers[l]
        self.deltas[l] = delta
        self.weights[l] = ops.grad_weight(layer, self.rec.inputs[l], delta)
        if l > 0:
            self.g = ops.backward_input(layer, delta)
        self.l -= 1

    def copy(self) -> PscBackwardPass:
        """A copy that :meth:`apply` can advance without changing this one (arrays shared:
        they are never written in place)."""
        other = copy.copy(self)
        other.weights, other.psc_grads, other.deltas = list(self.weights), list(self.psc_grads), list(self.deltas)
        return other

    def result(self, full: bool = False) -> Union[List[Optional[np.ndarray]], PscGrads]:
        if full:
            return PscGrads(weights=self.weights, psc_grads=self.psc_grads, deltas=self.deltas)
        return self.weights


def psc_backward(net: Sequential, rec: PscRecord, g_out: np.ndarray,
                 delta_fn: Callable[[int, np.ndarray, Any], np.ndarray],
                 pool_sum_weight: float = POOL_SUM_WEIGHT_CODE,
                 full: bool = False) -> Union[List[Optional[np.ndarray]], PscGrads]:
    """Backpropagate ``g_out = dL/da`` of the output PSC through a PscRecord.

    ``delta_fn(l, g, state)`` is the rule: it maps dL/da of neuron layer l to dL/dc.
    Returns the weight gradients (None for layers without weight), summed over T and B;
    with ``full=True`` a :class:`PscGrads` that also holds every layer's dL/da and delta."""
    p = PscBackwardPass(net, rec, g_out, pool_sum_weight)
    while (l := p.next_neuron_layer()) is not None:
        p.apply(delta_fn(l, p.g, rec.states[l]))
    return p.result(full)


def desired_spikes(n_steps: int) -> np.ndarray:
    """Desired train of the label neuron in the TSSL-BP code: for T >= 10 a spike at every
    odd step, otherwise at every step except multiples of 5 ([0, 1, 1, 1, 1] repeated)."""
    n_steps = _v.n_steps("n_steps", n_steps)
    t = np.arange(n_steps)
    return ((t % 2 == 1) if n_steps >= 10 else (t % 5 != 0)).astype(np.float64)


def spike_train_loss(a_out: np.ndarray, y: np.ndarray, tau_s: float,
                     pattern: Optional[np.ndarray] = None,
                     n_filters: int = 1) -> Tuple[np.ndarray, np.ndarray]:
    """van Rossum loss (TSSL-BP Eq. 7, NA Eq. 5): L = 1/2 sum_t,k (eps*d - a)^2 per sample.

    The label neuron's desired train is ``pattern`` (default :func:`desired_spikes`), the
    others are silent. ``n_filters``: how often the desired train goes through the PSC
    filter: 1 (default, the papers' eps * d) or 2, as the TSSL-BP and NA codes do (``main.py``
    filters the desired spikes with ``psp`` and ``loss_kernel`` filters the target again).
    Returns (losses (B,), g = dL/da (T, B, K))."""
    a_out = _v.float_array("a_out", a_out, ndim=3)
    T, B, K = a_out.shape
    y = _labels(y, B, K)
    if pattern is None:
        pattern = desired_spikes(T)
    pattern = _v.float_array("pattern", pattern, ndim=1)
    if pattern.shape != (T,):
        raise ValueError(f"pattern must have {T} steps, got {pattern.shape}")
    if isinstance(n_filters, bool) or n_filters not in (1, 2):
        raise ValueError(f"n_filters must be 1 or 2, got {n_filters!r}")
    d = np.zeros_like(a_out)
    d[:, np.arange(B), y] = pattern[:, None]
    target = psc_filter(d, tau_s)
    if n_filters == 2:
        target = psc_filter(target, tau_s)
    g = a_out - target
    return 0.5 * np.sum(g * g, axis=(0, 2)), g


def count_loss(a_out: np.ndarray, y: np.ndarray, desired: float,
               undesired: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
    """TSSL-BP code's count loss on the time-summed PSC A_k = sum_t a_k[t].

    delta_k = (A_k - n_k) / T with n = desired for the label, undesired otherwise, one-sided:
    the label neuron only gets an error when below its target, the others only when above.
    L = T/2 sum_k delta_k^2 per sample; dL/da_k[t] = delta_k at every step.
    Returns (losses (B,), g (T, B, K))."""
    a_out = _v.float_array("a_out", a_out, ndim=3)
    T, B, K = a_out.shape
    y = _labels(y, B, K)
    desired = _v.finite_float("desired", desired)
    undesired = _v.finite_float("undesired", undesired)
    target = np.full((B, K), undesired)
    target[np.arange(B), y] = desired
    delta = (a_out.sum(axis=0) - target) / T
    is_label = np.zeros((B, K), dtype=bool)
    is_label[np.arange(B), y] = True
    delta[is_label & (delta > 0)] = 0.0
    delta[~is_label & (delta < 0)] = 0.0
    return 0.5 * T * np.sum(delta * delta, axis=1), np.broadcast_to(delta, (T, B, K)).copy()


def _labels(y, B, K):
    y = _v.int_array("y", y)
    if y.shape != (B,):
        raise ValueError(f"y must hold {B} labels, got shape {y.shape}")
    if B and (y.min() < 0 or y.max() >= K):
        raise ValueError(f"labels must be in [0, {K}), got range [{y.min()}, {y.max()}]")
    return y


# ---- ASF-BP -----------------------------------------------------------------------------
@dataclass
class AsfRecord:
    """Forward record of an ASF network: per layer the flows ``FI[l]`` (time-summed input
    current of neuron layers and spiking pooling layers, else None) and ``FO[l]`` (time-summed
    output: spike counts, or the pooled input flow of non-spiking pooling layers), each (B, n);
    ``FO_in`` the input spike counts; ``u_out`` the output membrane u_T (B, K)."""

    FO_in: Optional[np.ndarray] = None
    FI: list = field(default_factory=list)
    FO: list = field(default_factory=list)
    spiking: list = field(default_factory=list)
    u_out: Optional[np.ndarray] = None
    n_spikes: Optional[np.ndarray] = None


def asf_forward(net: Sequential, spikes: np.ndarray, neuron: AsfNeuron) -> AsfRecord:
    """Run ``net`` with ASF-BP neurons on input spikes (T, B, n_in) (signed 0/+-1 or graded)."""
    _check_net(net)
    if not isinstance(neuron, AsfNeuron):
        raise TypeError(f"neuron must be an AsfNeuron, got {type(neuron).__name__}")
    x = _check_input(net, spikes)
    T, B = x.shape[:2]
    rec = AsfRecord(FO_in=x.sum(axis=0), n_spikes=np.zeros(B))
    last = max(l for l, layer in enumerate(net.layers) if layer.has_neurons)
    s = x
    for l, layer in enumerate(net.layers):
        if l > last:
            raise ValueError("ASF-BP networks must end with a Dense or Conv2d layer (the read-out)")
        if layer.has_neurons:
            cur = ops.forward(layer, s)
            if l == last:
                rec.FI.append(cur.sum(axis=0))
                rec.FO.append(None)
                rec.spiking.append(False)
                rec.u_out = rec.FI[-1]
                s = None
                continue
            _, s = asf_layer(cur, neuron.theta, neuron.leak)
            rec.FI.append(cur.sum(axis=0))
            rec.FO.append(s.sum(axis=0))
            rec.spiking.append(True)
            rec.n_spikes += s.sum(axis=(0, 2))
        elif isinstance(layer, (AvgPool2d, MaxPool2d)) and neuron.pool_theta is not None:
            cur = ops.forward(layer, s)
            _, s = asf_layer(cur, neuron.pool_theta, 1.0)
            rec.FI.append(cur.sum(axis=0))
            rec.FO.append(s.sum(axis=0))
            rec.spiking.append(True)
            rec.n_spikes += s.sum(axis=(0, 2))
        else:
            s = ops.forward(layer, s)
            rec.FI.append(None)
            rec.FO.append(s.sum(axis=0))
            rec.spiking.append(False)
    return rec


def asf_scale_ratios(net: Sequential, rec: AsfRecord,
                     entries: str = "fi_ge_fo") -> List[Optional[float]]:
    """The ratio of every spiking layer (None elsewhere): ``entries`` for neuron layers, all
    entries for spiking pooling layers (the code's ``ave_p``)."""
    out: List[Optional[float]] = []
    for l, layer in enumerate(net.layers):
        if rec.spiking[l]:
            mode = entries if layer.has_neurons else "all"
            out.append(scale_ratio(rec.FO[l], rec.FI[l], mode))
        else:
            out.append(None)
    return out


def asf_backward(net: Sequential, rec: AsfRecord, grad_fi_out: np.ndarray,
                 scales: Sequence[float], gate: bool = True) -> List[Optional[np.ndarray]]:
    """ASF-BP backward (Eq. 9-11) from dL/dFI of the output layer (B, K).

    ``scales[l]`` is the scale of spiking layer l. Returns weight gradients (summed over the
    batch), None for layers without weight."""
    grads: List[Any] = [None] * len(net.layers)
    last = len(net.layers) - 1
    while not net.layers[last].has_neurons:
        last -= 1
    g_fi = grad_fi_out
    g_fo: Any = None
    for l in range(last, -1, -1):
        layer = net.layers[l]
        below: Any = rec.FO[l - 1] if l > 0 else rec.FO_in
        if l != last:
            if rec.spiking[l]:
                g_fi = flow_input_grad(g_fo, rec.FI[l], scales[l], gate)
            else:
                g_fi = g_fo
        if layer.has_weight:
            grads[l] = ops.grad_weight(layer, below, g_fi)
        if l > 0:
            g_fo = ops.backward_input(layer, g_fi, x=below)
    return grads
