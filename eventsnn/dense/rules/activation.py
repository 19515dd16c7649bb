"""Activation-based (surrogate-gradient) rule of the dense mode.

The spike function S = [u >= theta] gets the surrogate derivative sigma(u) in the backward
pass. Two forms (ANTLR section 2.2.1):

- ``reset_path=True``: BPTT through the neuron's recursion including the reset paths
  (STBP style): z[t] = (1 - S[t-1]) A z[t-1] + B c[t], u = C.z, so dL/dS[t] also receives
  -(A z[t]) . dL/dz[t+1] from the reset.
- ``reset_path=False`` (default, the SRM-based method of ANTLR Eq. 6 and 9):
  dL/dc[tau] = sum over t_a from tau up to the neuron's first spike at or after tau of
  eps[t_a - tau] dL/du[t_a], with dL/du = sigma(u) dL/dS. Equal to BPTT with the reset
  paths removed.

Neurons that keep the current at a spike (``AntlrNeuron(reset="subtract" | "membrane")``)
use BPTT through I[t] = a_i I[t-1] + b_i c[t], V[t] = a_v k[t-1] V[t-1] + b_v I[t]
(- theta S[t-1]), with k = 1 (subtract) or 1 - S (membrane): dL/dV[t] = sigma(V[t]) g[t] +
a_v k[t] dL/dV[t+1], dL/dI[t] = b_v dL/dV[t] + a_i dL/dI[t+1], dL/dc[t] = b_i dL/dI[t].
With ``reset_path=False`` the reset is a constant (snnTorch detaches it), g = dL/dS; for
"subtract" this is dL/dc[tau] = sum over all t >= tau of eps[t - tau] sigma(V[t]) dL/dS[t]
(no window: nothing is forgotten). ``reset_path=True`` adds the reset's dependence on the
spike: g[t] = dL/dS[t] - theta dL/dV[t+1] (subtract) or - a_v V[t] dL/dV[t+1] (membrane).

Layers with a bias (AntlrNeuron only: V[t] = ... + b_bias bias) also get dL/dbias, the
derivative of the same quantity as the weight gradient: with BPTT, sum_t b_bias dL/dV[t]
(the full adjoint of V, reset paths included when ``reset_path``); in the SRM-based form
(windows fixed), sum_t dL/du[t] r[t] with r[t] = dV[t]/dbias = b_bias + a_v (1 - S[t-1])
r[t-1], i.e. b_bias sum of a_v^k over the reset window (the bias enters V directly, not
through the current kernel eps). Conv2d sums over each channel's positions.

Surrogates sigma(u), x = u - theta, ``scale`` k:

=============== ============================= ===============
name             sigma                          default k
=============== ============================= ===============
"exp"            exp(-k |x|)                    3.0
"fast_sigmoid"   1 / (1 + k |x|)^2              25.0 (snnTorch)
"triangle"       max(0, 1 - k |x|)              1.0
"sigmoid"        k s (1 - s), s = 1/(1+e^-kx)   4.0
=============== ============================= ===============
"""
from __future__ import annotations

import math
import numbers

import numpy as np
from numba import njit

from ... import _validate as v
from .. import ops
from ..neurons import require_bias_support
from ..record import DenseGrads, DenseRecord
from typing import Any, List, Optional, Sequence, Tuple, cast

from numpy.typing import ArrayLike

SURROGATES = {"exp": (0, 3.0), "fast_sigmoid": (1, 25.0), "triangle": (2, 1.0), "sigmoid": (3, 4.0)}


def surrogate_params(surrogate: str, scale: Optional[float]) -> Tuple[int, float]:
    """(kind code, scale) for the kernels; validates both."""
    v.choice("surrogate", surrogate, SURROGATES)
    kind, default = SURROGATES[surrogate]
    if scale is None:
        scale = default
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not math.isfinite(float(scale)) \
            or scale <= 0:
        raise ValueError(f"surrogate_scale must be a finite number > 0, got {scale!r}")
    return kind, float(scale)


@njit(cache=True, nogil=True)
def _sigma(x, kind, k):
    if kind == 0:
        return math.exp(-k * abs(x))
    if kind == 1:
        d = 1.0 + k * abs(x)
        return 1.0 / (d * d)
    if kind == 2:
        return max(0.0, 1.0 - k * abs(x))
    z = k * x
    if z >= 0:
        e = math.exp(-z)
        s = 1.0 / (1.0 + e)
    else:
        e = math.exp(z)
        s = e / (1.0 + e)
    return k * s * (1.0 - s)


@njit(cache=True, nogil=True)
def surrogate_kernel(u, theta, kind, k):
    """sigma(u) element-wise for a (T, N) array."""
    T, N = u.shape
    out = np.empty((T, N))
    for t in range(T):
        for j in range(N):
            out[t, j] = _sigma(u[t, j] - theta, kind, k)
    return out


def surrogate(u: ArrayLike, theta: float = 1.0, name: str = "exp",
              scale: Optional[float] = None) -> np.ndarray:
    """sigma(u) for any array ``u`` (see the module table)."""
    kind, k = surrogate_params(name, scale)
    arr = np.asarray(u, dtype=np.float64)
    flat = np.ascontiguousarray(arr.reshape(1, -1))
    return surrogate_kernel(flat, float(theta), kind, k).reshape(arr.shape)


@njit(cache=True, nogil=True)
def window_adjoint(dv, spikes, kern):
    """out[tau, j] = sum_{t_a = tau}^{e} kern[t_a - tau] dv[t_a, j], e = first spike of j at
    or after tau (or T - 1): the adjoint of u[t] = sum over the reset window of
    c[t'] kern[t - t'] (ANTLR Eq. 6, 7). dv, spikes: (T, N); kern: (>= T,)."""
    T, N = dv.shape
    out = np.zeros((T, N))
    for j in range(N):
        end = T - 1
        for tau in range(T - 1, -1, -1):
            if spikes[tau, j] != 0.0:
                end = tau
            acc = 0.0
            for ta in range(tau, end + 1):
                acc += kern[ta - tau] * dv[ta, j]
            out[tau, j] = acc
    return out


@njit(cache=True, nogil=True)
def srm_activation_adjoint(gs, u, spikes, kern, theta, kind, k):
    """Fused SRM-based activation backward of one layer: dv = sigma(u) gs and
    dc = window_adjoint(dv, spikes, kern). Returns (dc, dv), each (T, N)."""
    T, N = gs.shape
    dv = np.empty((T, N))
    for t in range(T):
        for j in range(N):
            g = gs[t, j]
            dv[t, j] = _sigma(u[t, j] - theta, kind, k) * g if g != 0.0 else 0.0
    return window_adjoint(dv, spikes, kern), dv


@njit(cache=True, nogil=True)
def bias_window_grad(dv, spikes, a_v, b_bias):
    """dL/dbias of each neuron with the windows fixed (SRM-based form, ANTLR rule):
    sum_t dv[t] r[t], r[t] = dV[t]/dbias = b_bias + a_v (1 - S[t-1]) r[t-1] (r[0] = b_bias),
    i.e. b_bias sum_{k=0}^{t - t_last - 1} a_v^k. dv, spikes: (T, N). Returns (N,)."""
    T, N = dv.shape
    out = np.zeros(N)
    for j in range(N):
        r = 0.0
        acc = 0.0
        for t in range(T):
            keep = 1.0 - spikes[t - 1, j] if t > 0 else 1.0
            r = b_bias + a_v * keep * r
            acc += dv[t, j] * r
        out[j] = acc
    return out


@njit(cache=True, nogil=True)
def bptt_adjoint(gs, spikes, u, c, A, B, C, theta, kind, k, reset_path):
    """BPTT through z[t] = (1 - S[t-1]) A z[t-1] + B c[t], u = C.z, S = H(u - theta) with
    surrogate sigma. gs: dL/dS from outside (T, N). Returns (dL/dc, dL/du), each (T, N)."""
    dc, dv, _ = bptt_adjoint_bias(gs, spikes, u, c, np.zeros(gs.shape[1]), A, B, C, np.zeros(2),
                                  theta, kind, k, reset_path)
    return dc, dv


@njit(cache=True, nogil=True)
def bptt_adjoint_bias(gs, spikes, u, c, bias, A, B, C, D, theta, kind, k, reset_path):
    """:func:`bptt_adjoint` with a bias term: z[t] = (1 - S[t-1]) A z[t-1] + B c[t] +
    D bias (bias: (N,) per neuron, D: (2,)). Returns (dL/dc, dL/du, dL/dbias (N,) =
    sum_t D . dL/dz[t])."""
    T, N = gs.shape
    dc = np.zeros((T, N))
    dv = np.zeros((T, N))
    db = np.zeros(N)
    z = np.zeros((T, 2))
    for j in range(N):
        z0 = 0.0
        z1 = 0.0
        for t in range(T):  # recompute the (pre-reset) states
            keep = 1.0 - spikes[t - 1, j] if t > 0 else 1.0
            n0 = keep * (A[0, 0] * z0 + A[0, 1] * z1) + B[0] * c[t, j] + D[0] * bias[j]
            n1 = keep * (A[1, 0] * z0 + A[1, 1] * z1) + B[1] * c[t, j] + D[1] * bias[j]
            z0 = n0
            z1 = n1
            z[t, 0] = z0
            z[t, 1] = z1
        l0 = 0.0  # dL/dz[t+1]
        l1 = 0.0
        for t in range(T - 1, -1, -1):
            g = gs[t, j]
            if reset_path and t < T - 1:
                az0 = A[0, 0] * z[t, 0] + A[0, 1] * z[t, 1]
                az1 = A[1, 0] * z[t, 0] + A[1, 1] * z[t, 1]
                g -= az0 * l0 + az1 * l1
            du = _sigma(u[t, j] - theta, kind, k) * g
            keep = 1.0 - spikes[t, j]
            m0 = C[0] * du + keep * (A[0, 0] * l0 + A[1, 0] * l1)
            m1 = C[1] * du + keep * (A[0, 1] * l0 + A[1, 1] * l1)
            l0 = m0
            l1 = m1
            dc[t, j] = B[0] * l0 + B[1] * l1
            dv[t, j] = du
            db[j] += D[0] * l0 + D[1] * l1
    return dc, dv, db


@njit(cache=True, nogil=True)
def keep_current_adjoint(gs, spikes, u, a_i, a_v, b_i, b_v, theta, kind, k, subtract, reset_path):
    """BPTT of the current-keeping ANTLR neuron (see the module docstring). gs: dL/dS
    (T, N); u: V (T, N). Returns (dL/dc, dL/dV from the surrogate), each (T, N)."""
    dc, dv, _ = keep_current_adjoint_bias(gs, spikes, u, a_i, a_v, b_i, b_v, theta, kind, k,
                                          subtract, reset_path, 0.0)
    return dc, dv


@njit(cache=True, nogil=True)
def keep_current_adjoint_bias(gs, spikes, u, a_i, a_v, b_i, b_v, theta, kind, k, subtract,
                              reset_path, b_bias):
    """:func:`keep_current_adjoint` plus dL/dbias (N,) = sum_t b_bias dL/dV[t] (the bias
    enters V[t] as b_bias bias at every step). Returns (dL/dc, dL/dV from the surrogate,
    dL/dbias)."""
    T, N = gs.shape
    dc = np.empty((T, N))
    dv = np.empty((T, N))
    db = np.zeros(N)
    for j in range(N):
        l_i = 0.0  # dL/dI[t+1]
        l_v = 0.0  # dL/dV[t+1]
        for t in range(T - 1, -1, -1):
            g = gs[t, j]
            if reset_path:
                if subtract:
                    g -= theta * l_v
                else:
                    g -= a_v * u[t, j] * l_v
            d = _sigma(u[t, j] - theta, kind, k) * g if g != 0.0 else 0.0
            keep = 1.0 if subtract else 1.0 - spikes[t, j]
            l_v = d + a_v * keep * l_v
            l_i = b_v * l_v + a_i * l_i
            dc[t, j] = b_i * l_i
            dv[t, j] = d
            db[j] += b_bias * l_v
    return dc, dv, db


def check_record(rec: DenseRecord) -> None:
    if not isinstance(rec, DenseRecord):
        raise TypeError(f"rec must be a DenseRecord (from Sequential.run), got {type(rec).__name__}")
    # the backward pass reads the layers' current weights: re-check them (they may have been
    # edited in place since the forward pass)
    for k, layer in enumerate(rec.layers):
        for name in ("weight", "bias"):
            arr = getattr(layer, name, None) if getattr(layer, f"has_{name}", False) else None
            if arr is None:
                continue
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} of layer {k} ({layer!r}) holds NaN or inf")
            v.magnitude(f"{name} of layer {k}", np.asarray(arr))


def check_grad(name: str, g: Optional[ArrayLike], shape: Sequence[int]) -> np.ndarray:
    if g is None:
        return np.zeros(shape)
    arr = v.float_array(name, g, finite=False)  # refuses complex and non-numeric input
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (T, B, n_out), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr


def backward(rec: DenseRecord, grad_s: ArrayLike, surrogate: str = "exp",
             surrogate_scale: Optional[float] = None, reset_path: bool = False,
             input_grad: bool = False) -> DenseGrads:
    """Surrogate-gradient backward pass of a dense record.

    Parameters
    ----------
    rec : DenseRecord (its layers' current weights are used)
    grad_s : array (T, B, n_out), dL/dS of the output spikes
    surrogate, surrogate_scale : see the module table
    reset_path : bool, BPTT with reset paths (True) or the SRM-based form (False, default);
        for current-keeping neurons, with or without the reset's dependence on the spike
    input_grad : bool, also compute dL/dx of the network input (grad_s[0])

    Returns
    -------
    DenseGrads: ``weights`` (per layer), ``grad_s`` (per entry of ``rec.spikes``; None for
    the input unless ``input_grad``), ``grad_v`` (dL/du per layer, None for pooling),
    ``biases`` (dL/dbias per layer, None for layers without a bias).
    """
    check_record(rec)
    require_bias_support(rec.layers, rec.neuron)
    kind, k = surrogate_params(surrogate, surrogate_scale)
    T, B = rec.n_steps, rec.batch_size
    g: Any = check_grad("grad_s", grad_s, rec.outputs[-1].shape)
    neuron = rec.neuron
    theta = neuron.theta
    eps = neuron.eps(T)
    A, Bv, C = neuron.linear_system(T)
    L = len(rec.layers)
    weights: List[Any] = [None] * L
    biases: List[Any] = [None] * L
    grads: List[Any] = [None] * (L + 1)
    grad_v: List[Any] = [None] * L
    grads[L] = g
    for l in range(L - 1, -1, -1):
        layer = rec.layers[l]
        x = rec.inputs[l]
        need_below = l > 0 or input_grad
        if layer.has_neurons:
            S = rec.outputs[l].reshape(T, -1)
            u = rec.membranes[l].reshape(T, -1)
            g2 = np.ascontiguousarray(g.reshape(T, -1))
            db = None
            if getattr(neuron, "reset", "full") != "full":
                if layer.has_bias:
                    dc, dv, db = keep_current_adjoint_bias(
                        g2, S, u, neuron.a_i, neuron.a_v, neuron.b_i, neuron.resolved_b_v(T), theta,
                        kind, k, neuron.reset == "subtract", bool(reset_path), neuron.resolved_b_bias(T))
                else:
                    dc, dv = keep_current_adjoint(g2, S, u, neuron.a_i, neuron.a_v, neuron.b_i,
                                                  neuron.resolved_b_v(T), theta, kind, k,
                                                  neuron.reset == "subtract", bool(reset_path))
            elif reset_path:
                c = np.ascontiguousarray(rec.currents[l].reshape(T, -1))
                if layer.has_bias:
                    bias = np.tile(cast(np.ndarray, ops.neuron_bias(layer)), B)
                    dc, dv, db = bptt_adjoint_bias(g2, S, u, c, bias, A, Bv, C, neuron.bias_input(T),
                                                   theta, kind, k, True)
                else:
                    dc, dv = bptt_adjoint(g2, S, u, c, A, Bv, C, theta, kind, k, True)
            else:
                dc, dv = srm_activation_adjoint(g2, u, S, eps, theta, kind, k)
                if layer.has_bias:
                    db = bias_window_grad(dv, np.ascontiguousarray(S), neuron.a_v,
                                          neuron.resolved_b_bias(T))
            if db is not None:
                biases[l] = ops.grad_bias(layer, db.reshape(B, -1))
            dc = dc.reshape(T, B, -1)
            grad_v[l] = dv.reshape(T, B, -1)
            weights[l] = ops.grad_weight(layer, x, dc)
            g = ops.backward_input(layer, dc, x) if need_below else None
        else:
            g = ops.backward_input(layer, g, x, pool_weight=rec.pool_weight) if need_below else None
        grads[l] = g
    return DenseGrads(weights=weights, grad_s=grads, grad_v=grad_v, biases=biases)
