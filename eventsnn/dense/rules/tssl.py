"""TSSL-BP (Zhang & Li 2020): error through presynaptic firing times, dense mode.

For one layer of :class:`eventsnn.dense.psc_neurons.PscLIF` neurons, given ``g = dL/da`` (the
loss gradient with respect to the layer's own PSC, time-major ``(T, ...)``) the rule returns
``delta = dL/dc``, the error of the input current ``c = W a_prev`` at every step; then
``dL/dW = sum_t delta[t] a_prev[t]^T`` and the layer below receives ``W^T delta`` (Eq. 8-10).

With kappa[k] = alpha_s^k / tau_s and P[t] = sum_{k >= t} kappa[k - t] g[k] (the change of the
loss per unit of spike at t), Delta[t] = v[t] - u[t-1] = c[t] - u[t-1]/tau_m (the membrane
increment at t), and p the neuron's next spike after t:

- spike step (inter- plus intra-neuron dependency, Eq. 11-14)::

      D[t] = min(1 / Delta[t], max_inv) * (P[t] + (r[t] / tau_m) * alpha_m^(p-t-1) * D[p])

  with r[t] the amount removed by the reset (v[t] for reset "zero", theta for "subtract");
  the factor is 0 when Delta[t] <= 0 (the code's clamp of -1/Delta to [-8, 0]);
- silent step: D[t] = alpha_m^(p-t) D[p] (the code's leak path; 0 after the last spike).

Options (code-vs-paper, see docs/rules_psc.md):

- ``low_psc_surrogate`` (default True, the authors' code): wherever the neuron's own PSC
  a[t] < psc_threshold (default 1/(4 tau_s)) the error is replaced by the activation-based
  ``P[t] * sigma'((v[t] - theta)/w) / w`` (w = 0.2, exponent clamped to [-8, 8]). The paper
  describes this only as a warm-up phase; the code applies it throughout training. The
  replacement only changes the returned error, not the recursion of D.
- ``silent_timing`` (default False): one published revision of the code does not mask the
  timing term by the spike, so silent steps with Delta > 0 also get
  min(1/Delta, max_inv) (P[t] + (r[t]/tau_m) alpha_m^(p-t-1) D[p]) added (not carried).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ... import _validate as _v
from ..psc_neurons import PscLIF
from typing import Optional, Sequence

from numpy.typing import ArrayLike

#: TSSL-BP code: -1/Delta u is clamped to [-8, 0]
MAX_INV_DELTA = 8.0
#: TSSL-BP code: width of the logistic surrogate of the low-PSC replacement
SURROGATE_WIDTH = 0.2
#: TSSL-BP code: clamp of the surrogate's exponent
SURROGATE_CLAMP = 8.0


@njit(cache=True, nogil=True)
def _tssl_kernel(g, v, s, u, a, alpha_m, alpha_s, inv_tau_s, inv_tau_m, theta, subtract,
                 max_inv, low_psc, psc_threshold, width, clamp, silent_timing):
    T, M = g.shape
    delta = np.zeros((T, M))
    for j in range(M):
        P = 0.0
        carried = 0.0  # alpha_m^(p-t-1) D[p] seen from step t (D of the next spike, leaked)
        for t in range(T - 1, -1, -1):
            P = g[t, j] * inv_tau_s + alpha_s * P
            u_prev = u[t - 1, j] if t > 0 else 0.0
            dlt = v[t, j] - u_prev
            inv = 0.0
            if dlt > 0.0:
                inv = 1.0 / dlt
                if inv > max_inv:
                    inv = max_inv
            removed = theta if subtract else v[t, j]
            if s[t, j] > 0.0:
                d = inv * (P + removed * inv_tau_m * carried)
                out = d
                carried = d
            else:
                d = alpha_m * carried
                out = d
                if silent_timing:
                    out += inv * (P + removed * inv_tau_m * carried)
                carried = d
            if low_psc and a[t, j] < psc_threshold:
                z = (theta - v[t, j]) / width
                if z > clamp:
                    z = clamp
                elif z < -clamp:
                    z = -clamp
                ez = np.exp(z)
                out = P * ez / ((1.0 + ez) * (1.0 + ez) * width)
            delta[t, j] = out
    return delta


def tssl_delta(g: np.ndarray, v: np.ndarray, s: np.ndarray, u: np.ndarray, a: np.ndarray,
               neuron: PscLIF, low_psc_surrogate: bool = True,
               psc_threshold: Optional[float] = None, silent_timing: bool = False,
               max_inv: float = MAX_INV_DELTA, surrogate_width: float = SURROGATE_WIDTH
               ) -> np.ndarray:
    """TSSL-BP error of the input current of one layer.

    Parameters
    ----------
    g : array (T, ...)
        dL/da, gradient of the loss with respect to this layer's PSC.
    v, s, u, a : arrays (T, ...)
        The layer's forward record (:func:`eventsnn.dense.psc_neurons.psc_layer`).
    neuron : PscLIF
    low_psc_surrogate : bool
        Replace the error by the logistic surrogate where a < psc_threshold (code: True).
    psc_threshold : float or None
        Default 1 / (4 tau_s).
    silent_timing : bool
        Add the timing term at silent steps too (one code revision); default False.
    max_inv : float
        Clamp of 1/Delta (code: 8).
    surrogate_width : float
        Width w of the logistic surrogate (code: 0.2).

    Returns
    -------
    delta : array (T, ...), dL/dc.
    """
    if not isinstance(neuron, PscLIF):
        raise TypeError(f"neuron must be a PscLIF, got {type(neuron).__name__}")
    g = v_check("g", g)
    shape = g.shape
    arrs = [v_check(name, arr, shape) for name, arr in (("v", v), ("s", s), ("u", u), ("a", a))]
    if psc_threshold is None:
        psc_threshold = 1.0 / (4.0 * neuron.tau_s)
    psc_threshold = v_float("psc_threshold", psc_threshold)
    max_inv = _v.positive_float("max_inv", max_inv)
    width = _v.positive_float("surrogate_width", surrogate_width)
    T = shape[0]
    flat = [x.reshape(T, -1) for x in [g] + arrs]
    out = _tssl_kernel(flat[0], flat[1], flat[2], flat[3], flat[4], neuron.alpha_m, neuron.alpha_s, 1.0 / neuron.tau_s, 1.0 / neuron.tau_m,
                       neuron.theta, neuron.reset == "subtract", max_inv, bool(low_psc_surrogate),
                       psc_threshold, width, SURROGATE_CLAMP, bool(silent_timing))
    return out.reshape(shape)


def v_check(name: str, arr: ArrayLike, shape: Optional[Sequence[int]] = None) -> np.ndarray:
    """float64 array, time-major, optionally of a given shape (shared by the PSC rules)."""
    out = _v.float_array(name, arr)
    if out.ndim < 1 or out.shape[0] < 1:
        raise ValueError(f"{name} must be time-major (T, ...) with T >= 1, got shape {out.shape}")
    if shape is not None and out.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {out.shape}")
    return out


def v_float(name: str, value: float) -> float:
    return _v.finite_float(name, value)
