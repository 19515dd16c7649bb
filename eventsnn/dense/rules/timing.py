"""Timing-based rule of Zhu et al. (2022) on the time grid (their reference code).

For output spike k of neuron i at step t_k, its window is the steps t' with
t_last < t' <= t_k (t_last: the neuron's previous spike). With c_i[t'] = sum_j W_ij x_j[t']:

- shares (Eq. 12-13): dL/dt of input event (j, t') += g_k W_ij x_j[t'] h[t_k - t'] / H_k,
  H_k = sum over the window of c_i[t'] h[t_k - t']; the spike's shares are dropped when
  H_k <= 0; 1/H_k is capped at ``max_inv_h`` (the code's ``max_dudt_inv``, default none);
- ``h_window``: the window H_k sums over when the output spikes differ from the forward's
  (a supervisory spike inside a later spike's window): ``"split"`` (default) the backward
  window (t_last over the given output spikes), ``"forward"`` the forward's window (t_last
  over the recorded spikes), as the code, which reuses the forward's ``delta_u_t``;
- weights (Eq. 14): dL/dW_ij += g_k clamp(-1/Delta u_i[t_k], -max_inv_slope, 0)
  sum over the window of eps[t_k - t'] x_j[t'], Delta u the recorded increment
  (Delta u <= 0 gives 0, Delta u = 0 gives -max_inv_slope);
- backward kernel h: ``"exp"`` h[d] = (1 - 1/tau_grad)^(d+1) (tau_grad in steps, > 1) or
  ``"original"`` h[d] = eps[d] - eps[d-1] (eps[-1] = 0), with which H_k = Delta u[t_k] when
  the step before was not a spike;
- the gradient passed to the layer below is multiplied by ``factor`` (reference code 0.85,
  default 1.0 so that the gradient sum is conserved exactly, Eq. 8);
- pooling: max sends a pooled event's gradient to the window's winner (first maximal input);
  average pooling with ``layer.adjusted`` (default) sends g / n to each of the n coincident
  source events of the window (sum conserved), plain average g / k^2 to each source event.
"""
from __future__ import annotations

import math
import numbers

import numpy as np
from numba import njit

from ..._validate import choice as v_choice
from ...layers import AvgPool2d, MaxPool2d, reject_biases
from .. import ops
from ..neurons import require_full_reset
from ..record import DenseGrads
from .activation import check_grad, check_record
from typing import Any, List, Optional, Union

from numpy.typing import ArrayLike

from ...layers import Layer
from ..neurons import AntlrNeuron, ZhuNeuron
from ..record import DenseRecord

KERNELS = ("exp", "original")


@njit(cache=True, nogil=True)
def timing_layer(gt, spikes, c, du, eps, h, max_inv_slope, fwd_spikes, forward_h, max_inv_h):
    """Per neuron layer. gt: dL/dt at spikes (T, N); spikes, c (currents W x), du,
    fwd_spikes (the recorded spikes): (T, N); eps, h: (T,). Returns (G, E), each (T, N):
    G[t', i] = g_k h[t_k - t'] min(1 / H_k, max_inv_h) and E[t', i] = g_k f_k eps[t_k - t']
    for t' in the window of i's spike k; H_k sums over the forward's window when
    ``forward_h`` (max_inv_h <= 0: no cap)."""
    T, N = gt.shape
    G = np.zeros((T, N))
    E = np.zeros((T, N))
    for i in range(N):
        last = -1
        last_fwd = -1
        for t in range(T):
            if spikes[t, i] == 0.0:
                if fwd_spikes[t, i] != 0.0:
                    last_fwd = t
                continue
            g = gt[t, i]
            if g != 0.0:
                H = 0.0
                start = last_fwd + 1 if forward_h else last + 1
                for tp in range(start, t + 1):
                    H += c[tp, i] * h[t - tp]
                inv_h = 1.0 / H if H > 0.0 else 0.0
                if max_inv_h > 0.0 and inv_h > max_inv_h:
                    inv_h = max_inv_h
                d = du[t, i]
                if d > 0.0:
                    f = max(-1.0 / d, -max_inv_slope)
                elif d == 0.0:
                    f = -max_inv_slope
                else:
                    f = 0.0
                for tp in range(last + 1, t + 1):
                    G[tp, i] = g * h[t - tp] * inv_h
                    E[tp, i] = g * f * eps[t - tp]
            last = t
            if fwd_spikes[t, i] != 0.0:
                last_fwd = t
    return G, E


def backward_kernel(neuron: Union[ZhuNeuron, AntlrNeuron], n_steps: int, kernel: str = "exp",
                    tau_grad: float = 2.5) -> np.ndarray:
    """h[d], d = 0..n_steps-1."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {list(KERNELS)}, got {kernel!r}")
    if kernel == "original":
        eps = neuron.eps(n_steps)
        return eps - np.concatenate([[0.0], eps[:-1]])
    if isinstance(tau_grad, bool) or not isinstance(tau_grad, numbers.Real) or not tau_grad > 1.0 \
            or not math.isfinite(float(tau_grad)):
        raise ValueError(f"tau_grad must be a finite number > 1 (steps), got {tau_grad!r}")
    return (1.0 - 1.0 / tau_grad) ** (np.arange(n_steps) + 1.0)


def pool_backward_timing(layer: Layer, gt: np.ndarray, x: np.ndarray,
                         pool_weight: float = 1.0) -> np.ndarray:
    """Spike-time gradients of a pooling layer's input events from its output events."""
    if isinstance(layer, MaxPool2d):
        return ops.backward_input(layer, gt, x, pool_weight=1.0)
    if isinstance(layer, AvgPool2d):
        k2 = layer.kernel_size ** 2
        active = (x != 0).astype(np.float64)
        if layer.adjusted:
            count = ops.forward(layer, active) * k2
            share = np.divide(gt, count, out=np.zeros_like(gt), where=count > 0)
            return active * ops.backward_input(layer, share) * k2
        return active * ops.backward_input(layer, gt)
    return ops.backward_input(layer, gt, x)  # Flatten


H_WINDOWS = ("split", "forward")


def backward(rec: DenseRecord, grad_t: ArrayLike, kernel: str = "exp", tau_grad: float = 2.5,
             max_inv_slope: float = 4.0, factor: Union[float, ArrayLike] = 1.0,
             output_spikes: Optional[np.ndarray] = None, input_grad: bool = False,
             h_window: str = "split", max_inv_h: Optional[float] = None) -> DenseGrads:
    """Timing backward pass (Zhu et al.) of a dense record.

    Parameters
    ----------
    rec : DenseRecord
    grad_t : array (T, B, n_out), dL/dt of each output spike (zero elsewhere)
    kernel : "exp" (default) or "original"; tau_grad : steps, for "exp" (default 2.5)
    max_inv_slope : bound of -1/Delta u (4.0)
    factor : multiplier of the gradient passed to the layer below (1.0; reference 0.85)
    output_spikes : array (T, B, n_out) or None, the output spikes to use instead of the
        recorded ones (e.g. with the supervisory spike added)
    input_grad : bool, also compute the gradient of the network's input events
    h_window : "split" (default) or "forward" (the code): the window of H_k when
        ``output_spikes`` adds or removes spikes (see the module docstring)
    max_inv_h : float > 0 or None, cap of 1/H_k (the code's ``max_dudt_inv``; None: no cap)

    Returns
    -------
    DenseGrads with ``weights`` and ``grad_t`` (dL/dt of the events of each entry of
    ``rec.spikes``; value-weighted for graded events).
    """
    check_record(rec)
    require_full_reset(rec.neuron, "timing")
    reject_biases(rec.layers, "the timing rule (it has no bias gradient; use the activation or "
                              "antlr rule)")
    T, B = rec.n_steps, rec.batch_size
    shape = rec.outputs[-1].shape
    gt = check_grad("grad_t", grad_t, shape)
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or not np.isfinite(factor):
        raise ValueError(f"factor must be a finite real number, got {factor!r}")
    if isinstance(max_inv_slope, bool) or not isinstance(max_inv_slope, numbers.Real) \
            or not max_inv_slope > 0 or not np.isfinite(max_inv_slope):
        raise ValueError(f"max_inv_slope must be a finite number > 0, got {max_inv_slope!r}")
    v_choice("h_window", h_window, H_WINDOWS)
    if max_inv_h is not None and (isinstance(max_inv_h, bool) or not isinstance(max_inv_h, numbers.Real)
                                  or not max_inv_h > 0 or not np.isfinite(max_inv_h)):
        raise ValueError(f"max_inv_h must be a finite number > 0 or None, got {max_inv_h!r}")
    cap = 0.0 if max_inv_h is None else float(max_inv_h)
    out_spikes = rec.outputs[-1] if output_spikes is None else check_grad("output_spikes", output_spikes, shape)
    h = backward_kernel(rec.neuron, T, kernel, tau_grad)
    eps = rec.neuron.eps(T)
    L = len(rec.layers)
    weights: List[Any] = [None] * L
    grads: List[Any] = [None] * (L + 1)
    gt = gt * (out_spikes != 0)
    grads[L] = gt
    for l in range(L - 1, -1, -1):
        layer = rec.layers[l]
        x = rec.inputs[l]
        need_below = l > 0 or input_grad
        if layer.has_neurons:
            S = out_spikes if l == L - 1 else rec.outputs[l]
            G, E = timing_layer(np.ascontiguousarray(gt.reshape(T, -1)),
                                np.ascontiguousarray(S.reshape(T, -1)),
                                np.ascontiguousarray(rec.currents[l].reshape(T, -1)),
                                np.ascontiguousarray(rec.increments[l].reshape(T, -1)),
                                eps, h, float(max_inv_slope),
                                np.ascontiguousarray(rec.outputs[l].reshape(T, -1)),
                                h_window == "forward", cap)
            weights[l] = ops.grad_weight(layer, x, E.reshape(T, B, -1))
            if need_below:
                gt = factor * x * ops.backward_input(layer, G.reshape(T, B, -1), x)
        elif need_below:
            gt = pool_backward_timing(layer, gt, x, rec.pool_weight)
        if need_below:
            grads[l] = gt
    return DenseGrads(weights=weights, grad_t=grads)
