"""ANTLR (Kim, Kim, Kim 2020): activation- and timing-based gradients combined.

For every neuron layer, from the output down (Eq. 8-10)::

    dL/dV[t] = lambda_act sigma(V[t]) dL/dS[t] + lambda_tim S[t] dL/dt[t] / (-V'[t])
    V'[t]    = max(V[t] - (1 - S[t-1]) V[t-1], v_prime_min)

and to the layer below, both only inside the postsynaptic neuron's reset window
(t_last < tau <= t_a):

- activation path (Eq. 6, 9): dL/dS_i[tau] = sum_j W_ji sum_{t_a} dL/dV_j[t_a] eps[t_a - tau]
- timing path (Eq. 7, 10), at presynaptic spikes only:
  dL/dt_i[tau] = S_i[tau] sum_j W_ji sum_{t_a} dL/dV_j[t_a] eps*[t_a - tau] with the central
  difference eps*[k] = (eps[k-1] - eps[k+1]) / 2 (eps[-1] = 0).

The weight gradient is sum over t_a of dL/dV_j[t_a] sum_tau eps[t_a - tau] x_i[tau] (the
forward derivative). Through pooling layers both paths use the layer's exact backward
(``ops.backward_input``); a pooled event of value v gets timing gradient v times the
per-unit-value gradient, a source spike its share (1/k^2 of it for average pooling, all of
it for the window's winner under max pooling).

A layer with a bias (V[t] = ... + b_bias bias, AntlrNeuron) gets dL/dbias = sum over t_a of
dL/dV_j[t_a] dV_j[t_a]/dbias, the same forward derivative with the windows fixed: the bias
enters V directly, so dV[t_a]/dbias = b_bias sum_{k=0}^{t_a - t_last - 1} a_v^k (not
through eps); summed over each channel's positions for Conv2d.

``lambda_act = 1, lambda_tim = 0`` is the SRM-based activation method; ``lambda_act = 0,
lambda_tim = 1`` the discrete timing method. The authors' code fixes both lambdas to 1 (the
defaults here). ``clip`` clamps dL/dV element-wise (not in the code, which clamps the
parameter gradients instead: ``AntlrLearner(grad_clip=...)``). ``timing_penalty`` is the
code's no-spike penalty of the timing method (``prop_dLdI_to_dLdW`` with ``is_timing``):
dL/dW_ij -= timing_penalty / n_in for every sample in which Dense neuron i stays silent.
"""
from __future__ import annotations

import numbers

import numpy as np

from ...layers import Dense
from .. import ops
from ..neurons import require_bias_support, require_full_reset
from ..record import DenseGrads
from .activation import (bias_window_grad, check_grad, check_record, surrogate_kernel,
                         surrogate_params, window_adjoint)
from typing import Any, List, Optional

from numpy.typing import ArrayLike

from ..record import DenseRecord


def eps_star(eps_ext: np.ndarray) -> np.ndarray:
    """Central difference (eps[k-1] - eps[k+1]) / 2 for k = 0..len-2 (eps[-1] = 0)."""
    prev = np.concatenate([[0.0], eps_ext[:-2]])
    return 0.5 * (prev - eps_ext[1:])


def _real(name, value, positive=False, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return float(value)


def backward(rec: DenseRecord, grad_s: Optional[ArrayLike] = None,
             grad_t: Optional[ArrayLike] = None, lambda_act: float = 1.0,
             lambda_tim: float = 1.0, surrogate: str = "exp",
             surrogate_scale: Optional[float] = None, v_prime_min: float = 0.01,
             clip: Optional[float] = None, input_grad: bool = False,
             timing_penalty: float = 0.0) -> DenseGrads:
    """ANTLR backward pass of a dense record.

    Parameters
    ----------
    rec : DenseRecord
    grad_s : array (T, B, n_out) or None, dL/dS of the output (Table 1)
    grad_t : array (T, B, n_out) or None, dL/dt at output spikes (zero elsewhere)
    lambda_act, lambda_tim : float, weights of the two paths (default 1, 1)
    surrogate, surrogate_scale : surrogate derivative (``activation`` module table)
    v_prime_min : float, lower clamp of V' (0.01)
    clip : float or None, clamp dL/dV element-wise to [-clip, clip] (default None: no clamp)
    input_grad : bool, also propagate to the network input
    timing_penalty : float >= 0, the code's no-spike penalty (Dense layers only, as the
        code's fc layers): dL/dW_ij -= timing_penalty / n_in per sample in which neuron i is
        silent (summed over the batch like the rest). Default 0.

    Returns
    -------
    DenseGrads with weights, grad_s and grad_t per entry of ``rec.spikes`` (grad_t of a
    level is the value-weighted event gradient), grad_v per layer, biases (dL/dbias per
    layer, None for layers without a bias).
    """
    check_record(rec)
    require_full_reset(rec.neuron, "ANTLR")
    require_bias_support(rec.layers, rec.neuron)
    kind, k = surrogate_params(surrogate, surrogate_scale)
    lambda_act = _real("lambda_act", lambda_act)
    lambda_tim = _real("lambda_tim", lambda_tim)
    v_prime_min = _real("v_prime_min", v_prime_min, positive=True)
    clip = _real("clip", clip, positive=True, allow_none=True)
    timing_penalty = _real("timing_penalty", timing_penalty)
    if timing_penalty < 0:
        raise ValueError(f"timing_penalty must be >= 0, got {timing_penalty!r}")
    T, B = rec.n_steps, rec.batch_size
    shape = rec.outputs[-1].shape
    gs = check_grad("grad_s", grad_s, shape)
    r = check_grad("grad_t", grad_t, shape)  # dL/dt per unit event value
    neuron = rec.neuron
    theta = neuron.theta
    eps_ext = neuron.eps(T + 1, window=T)  # b_v of the forward's T-step window
    eps = np.ascontiguousarray(eps_ext[:T])
    epsd = np.ascontiguousarray(eps_star(eps_ext))
    L = len(rec.layers)
    weights: List[Any] = [None] * L
    biases: List[Any] = [None] * L
    grads_s: List[Any] = [None] * (L + 1)
    grads_t: List[Any] = [None] * (L + 1)
    grad_v: List[Any] = [None] * L
    grads_s[L] = gs
    grads_t[L] = r * rec.outputs[-1]
    for l in range(L - 1, -1, -1):
        layer = rec.layers[l]
        x = rec.inputs[l]
        need_below = l > 0 or input_grad
        if layer.has_neurons:
            S = rec.outputs[l].reshape(T, -1)
            u = rec.membranes[l].reshape(T, -1)
            vp = np.maximum(rec.increments[l].reshape(T, -1), v_prime_min)
            dv = np.zeros_like(u)
            if lambda_act != 0.0:
                dv += lambda_act * surrogate_kernel(u, theta, kind, k) * gs.reshape(T, -1)
            if lambda_tim != 0.0:
                dv -= lambda_tim * S * r.reshape(T, -1) / vp
            if clip is not None:
                np.clip(dv, -clip, clip, out=dv)
            dc_act = window_adjoint(dv, S, eps).reshape(T, B, -1)
            grad_v[l] = dv.reshape(T, B, -1)
            weights[l] = ops.grad_weight(layer, x, dc_act)
            if timing_penalty and isinstance(layer, Dense):
                silent = (rec.outputs[l].reshape(T, B, -1) == 0).all(axis=0).sum(axis=0)
                weights[l] = weights[l] - (timing_penalty / layer.n_in) * silent[:, None]
            if layer.has_bias:
                db = bias_window_grad(dv, np.ascontiguousarray(S), neuron.a_v, neuron.resolved_b_bias(T))
                biases[l] = ops.grad_bias(layer, db.reshape(B, -1))
            if need_below:
                gs = ops.backward_input(layer, dc_act, x)
                dc_tim = window_adjoint(dv, S, epsd).reshape(T, B, -1)
                r = ops.backward_input(layer, dc_tim, x)
        elif need_below:
            gs = ops.backward_input(layer, gs, x, pool_weight=rec.pool_weight)
            r = ops.backward_input(layer, r, x, pool_weight=rec.pool_weight)
        if need_below:
            grads_s[l] = gs
            grads_t[l] = r * x
    return DenseGrads(weights=weights, grad_s=grads_s, grad_t=grads_t, grad_v=grad_v,
                      biases=biases)
