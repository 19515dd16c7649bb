"""Dense (time-stepped) forward pass: ``Sequential.run`` delegates here."""
from __future__ import annotations

import numbers

import numpy as np

from .._constants import MAX_MAGNITUDE

from .. import _validate as v
from .neurons import require_bias_support, resolve_neuron
from .record import DenseRecord
from . import ops
from typing import TYPE_CHECKING, List, Optional, Sequence, Union, cast

from numpy.typing import ArrayLike

from .neurons import AntlrNeuron, ZhuNeuron

if TYPE_CHECKING:
    from ..layers import Layer
    from ..network import Sequential


def check_input(net: Sequential, x: ArrayLike, name: str = "x") -> np.ndarray:
    """Validate a time-major input (T, B, *in_shape) or (T, B, n_in); returns (T, B, n_in)."""
    arr = v.float_array(name, x)
    if arr.ndim < 3:
        raise ValueError(f"{name} must be time-major (T, B, *in_shape), got shape {arr.shape}")
    T, B = arr.shape[:2]
    if T == 0 or B == 0:
        raise ValueError(f"{name} needs at least one step and one sample, got shape {arr.shape}")
    rest = arr.shape[2:]
    if rest != tuple(net.in_shape) and not (len(rest) == 1 and rest[0] == net.n_in):
        raise ValueError(f"{name} must have shape (T, B, *{tuple(net.in_shape)}), got {arr.shape}")
    return arr.reshape(T, B, net.n_in)


def run(net: Sequential, x: ArrayLike, neuron: Union[ZhuNeuron, AntlrNeuron, str, None] = None, dt: float = 1.0,
        pool_weight: float = 1.0) -> DenseRecord:
    """Run ``net`` on a time grid.

    Parameters
    ----------
    net : eventsnn.Sequential
    x : float array (T, B, *in_shape) or (T, B, n_in)
        Input per step: spikes (0/1) or currents (e.g. a pixel intensity every step). An
        input acts in its own step.
    neuron : ZhuNeuron, AntlrNeuron, "zhu", "antlr" or None
        Neuron of every Dense/Conv2d layer. A family name (None = "zhu") discretises
        ``net.neuron`` (an SRM, time constants in ms) with step ``dt``. Layers with a bias
        need the ANTLR family (ValueError otherwise).
    dt : float
        ms per step, used only to discretise ``net.neuron`` (default 1.0).
    pool_weight : float
        Multiplier of pooled values (``eventsnn.dense.ops``; 1.0: mean / max).

    Returns
    -------
    DenseRecord with inputs, currents, membranes, increments and outputs of every layer.
    """
    from ..network import Sequential

    if not isinstance(net, Sequential):
        raise TypeError(f"net must be an eventsnn.Sequential, got {type(net).__name__}")
    x = check_input(net, x)
    srm = net._single_srm("dense mode (Sequential.run)") if (neuron is None or isinstance(neuron, str)) \
        else None
    if srm is not None and (srm.reset != "full" or srm.t_ref > 0):
        raise ValueError(
            f"run discretises net.neuron into a full-reset dense neuron, but it is {net.neuron}: "
            "its reset='membrane' / t_ref would be silently dropped. Pass a dense neuron "
            "explicitly (e.g. neuron=eventsnn.dense.neurons.AntlrNeuron(..., reset='membrane')) "
            "or build the network with SRM(reset='full', t_ref=0)")
    neuron = resolve_neuron(neuron, srm, dt)
    if isinstance(pool_weight, bool) or not isinstance(pool_weight, numbers.Real) \
            or not np.isfinite(pool_weight):
        raise ValueError(f"pool_weight must be a finite real number, got {pool_weight!r}")
    if abs(pool_weight) > MAX_MAGNITUDE:
        raise ValueError(f"pool_weight must have magnitude <= {MAX_MAGNITUDE:g} (larger values "
                         f"overflow the pooled inputs), got {pool_weight!r}")
    net._check_weights()
    return forward_layers(net.layers, x, neuron, float(dt), float(pool_weight))


def forward_layers(layers: Sequence[Layer], x: np.ndarray, neuron: Union[ZhuNeuron, AntlrNeuron],
                   dt: float = 1.0, pool_weight: float = 1.0) -> DenseRecord:
    """Forward through ``layers`` without validation (x: (T, B, n_in) float64), except that
    biased layers need an AntlrNeuron (ValueError)."""
    require_bias_support(layers, neuron)
    T, B = x.shape[:2]
    inputs: List[np.ndarray] = []
    outputs: List[np.ndarray] = []
    currents: List[Optional[np.ndarray]] = []
    membranes: List[Optional[np.ndarray]] = []
    increments: List[Optional[np.ndarray]] = []
    h = x
    for layer in layers:
        inputs.append(h)
        if layer.has_neurons:
            c = ops.forward(layer, h)
            c2 = np.ascontiguousarray(c.reshape(T, -1))
            if layer.has_bias:
                s, u, du = neuron.simulate(c2, np.tile(cast(np.ndarray, ops.neuron_bias(layer)), B))
            else:
                s, u, du = neuron.simulate(c2)
            n = layer.n_out
            currents.append(c)
            membranes.append(u.reshape(T, B, n))
            increments.append(du.reshape(T, B, n))
            h = s.reshape(T, B, n)
        else:
            h = ops.forward(layer, h, pool_weight=pool_weight)
            currents.append(None)
            membranes.append(None)
            increments.append(None)
        outputs.append(h)
    return DenseRecord(inputs, currents, membranes, increments, outputs, neuron, list(layers), dt,
                       pool_weight)
