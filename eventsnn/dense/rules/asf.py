"""ASF-BP (Wu et al. 2021): backpropagation through accumulated spiking flows.

Forward (any neuron layer n of IF/LIF neurons, see :mod:`eventsnn.dense.psc_neurons`): the
accumulated input and output flows over the window (Eq. 7)::

    FI_n = sum_t x_n[t] = W_n FO_{n-1}        FO_n = sum_t s_n[t]

(FO_0 = the time-summed input spikes). The last layer does not spike; its membrane
u_T = FI_N is read as u_T / (theta T) and the loss is sum_k (u_T,k / (theta T) - Y_k)^2.

Backward on the "equivalent network" (Eq. 9-11) with one scale S_n per layer::

    dL/dFI_n     = dL/dFO_n * S_n * [FI_n > 0]      (the gate is the code's, not the paper's)
    dL/dW_n      = dL/dFI_n FO_{n-1}^T
    dL/dFO_{n-1} = W_n^T dL/dFI_n

Scale (Eq. 12 and the code): ratio = sum FO / sum FI over the entries (batch x neurons) with
FI >= FO (code; the paper sums over all neurons), 1 when that FI sum is below 1e-3;
S <- 0.6 ratio + 0.4 S on every batch of every 5th epoch (schedule in the learner).
"""
from __future__ import annotations

import numpy as np

from ... import _validate as _v
from typing import Tuple

#: ASF-BP code: the scale is 1 when the selected input flow sums to less than this
MIN_FLOW = 1e-3
#: ASF-BP code: S <- (1 - SCALE_MOMENTUM) ratio + SCALE_MOMENTUM S
SCALE_MOMENTUM = 0.4
RATIO_ENTRIES = ("fi_ge_fo", "all")


def scale_ratio(FO: np.ndarray, FI: np.ndarray, entries: str = "fi_ge_fo") -> float:
    """Layer ratio sum FO / sum FI of ASF-BP.

    Parameters
    ----------
    FO, FI : arrays of one shape
        Output and input flows of a layer (any shape, e.g. (batch, neurons)).
    entries : {"fi_ge_fo", "all"}
        ``"fi_ge_fo"`` (code, spiking layers): only entries with FI >= FO count;
        ``"all"`` (paper Eq. 12; the code's pooling neurons): every entry counts.

    Returns
    -------
    float: the ratio, or 1.0 when the selected input flow sums to less than 1e-3.
    """
    FO = _v.float_array("FO", FO)
    FI = _v.float_array("FI", FI)
    if FO.shape != FI.shape:
        raise ValueError(f"FO and FI must have the same shape, got {FO.shape} and {FI.shape}")
    _v.choice("entries", entries, RATIO_ENTRIES)
    if entries == "fi_ge_fo":
        sel = FI >= FO
        den = float(FI[sel].sum())
        num = float(FO[sel].sum())
    else:
        den = float(FI.sum())
        num = float(FO.sum())
    if den < MIN_FLOW:
        return 1.0
    return num / den


def update_scale(scale: float, ratio: float, momentum: float = SCALE_MOMENTUM) -> float:
    """S <- (1 - momentum) ratio + momentum S (code: momentum 0.4)."""
    scale = _v.finite_float("scale", scale)
    ratio = _v.finite_float("ratio", ratio)
    momentum = _v.finite_float("momentum", momentum)
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    return (1.0 - momentum) * ratio + momentum * scale


def flow_input_grad(grad_fo: np.ndarray, FI: np.ndarray, scale: float,
                    gate: bool = True) -> np.ndarray:
    """dL/dFI = dL/dFO * S * [FI > 0] (gate) or dL/dFO * S (no gate)."""
    grad_fo = _v.float_array("grad_fo", grad_fo)
    FI = _v.float_array("FI", FI)
    if grad_fo.shape != FI.shape:
        raise ValueError(f"grad_fo and FI must have the same shape, got {grad_fo.shape} and {FI.shape}")
    scale = _v.finite_float("scale", scale)
    out = grad_fo * scale
    if gate:
        out = out * (FI > 0)
    return out


def output_loss(FI_out: np.ndarray, y: np.ndarray, theta: float,
                n_steps: int) -> Tuple[np.ndarray, np.ndarray]:
    """ASF-BP loss per sample sum_k (FI_k / (theta T) - Y_k)^2 (one-hot Y) and its gradient
    dL/dFI (per sample, not averaged). Returns (losses (B,), grad (B, K))."""
    FI_out = _v.float_array("FI_out", FI_out, ndim=2)
    y = _v.int_array("y", y)
    B, K = FI_out.shape
    if y.shape != (B,) or (B and (y.min() < 0 or y.max() >= K)):
        raise ValueError(f"y must hold {B} labels in [0, {K}), got shape {y.shape}")
    denom = float(theta) * int(n_steps)
    out = FI_out / denom
    Y = np.zeros_like(out)
    Y[np.arange(B), y] = 1.0
    diff = out - Y
    return np.sum(diff * diff, axis=1), 2.0 * diff / denom
