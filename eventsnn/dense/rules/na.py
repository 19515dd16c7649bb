"""Neighbourhood aggregation (NA, Yang, Zhang & Li 2021) with simple neighbourhood selection.

For one layer of :class:`eventsnn.dense.psc_neurons.PscLIF` neurons, given ``g = dL/da``
(time-major ``(T, ...)``; the direct derivative of Eq. 6 / 9, without the PSC recursion) the
rule returns the aggregated gradient ``delta`` that replaces dL/dc in
``dL/dW = sum_t delta[t] a_prev[t]^T`` (Eq. 10) and ``g_below = W^T delta`` (Eq. 9).

1. PSC error (Eq. 7): e[t] = g[t] + alpha_s e[t+1].
2. SNS neighbours (Sec. 3.4): for every step t the perturbation theta - v[t] at t alone
   flips the firing state at t; the later steps are re-simulated from the stored input
   current c (Algorithm 1): a removed spike leaves the membrane at theta, an added spike
   resets it (to 0; with reset "subtract" theta - theta = 0 as well).
3. Loss change of the neighbour (Eq. 13), a_p its PSC:

   - ``loss_change="accumulated"`` (the authors' code at its head, bf8b564, 2021-06-10,
     which accumulates ``grad_delta`` into e before ``neighbors.get_loss``, and Eq. 13 as
     worded): Delta L_t = sum_k e[k] (a_p[k] - a[k]) with the accumulated PSC error e of
     Eq. 7; :class:`~eventsnn.dense.learners_psc.NaLearner`'s default.
   - ``"direct"`` (this function's default): sum_k g[k] (a_p[k] - a[k]) =
     sum_k e[k] (s_p[k] - s[k]) / tau_s with the direct derivative g, the first-order change
     of L (the code's revisions before bf8b564, which dot g).
4. Scaled finite difference (Eq. 17, Appendix A.1) with the signed MP distance
   d = theta - v[t]: delta[t] = Delta L_t * clip(1 / d^power, -b, b); d = 0 (a silent step
   exactly at threshold) gives +b.

The distance factor of the authors' ``functions/na.py`` by revision:

=========================  ==========================  ===============================
revision                   factor                      Delta L
=========================  ==========================  ===============================
2f5eb14 (2021-02-10),      clip(1/d, -10, 10)          g . (a_p - a)   ("direct")
cb735e0 (2021-03-24)
f7fb6ea (2021-03-28)       clip(1/d^3, -1, 1)          g . (a_p - a)   ("direct")
bf8b564 (2021-06-10, head) clip(1/d^3, -5, 5)          e . (a_p - a)   ("accumulated")
=========================  ==========================  ===============================

Options: ``b`` = 10 (:data:`B_PAPER`, Appendix A.1; the function's default) or 5
(:data:`B_CODE`, the head);
``power`` = 3 (paper Eq. 17 and the code since f7fb6ea) or 1 (the plain finite difference of
Eq. 14, clipped: the code's 2f5eb14 / cb735e0). :func:`code_rescale` is the layer-wise
magnitude rescaling of the authors' code (every revision; not in the paper). Cost O(T^2) per
neuron.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ... import _validate as _v
from ..psc_neurons import PscLIF
from .tssl import v_check
from typing import Optional, Tuple, Union

from numpy.typing import ArrayLike

#: clip bound of 1/d^3 in the NA paper (Appendix A.1)
B_PAPER = 10.0
#: clip bound used by the authors' code
B_CODE = 5.0
#: exponent of the MP distance in the scaled finite difference (paper Eq. 17)
POWER_PAPER = 3
#: allowed exponents: 3 (paper Eq. 17), 1 (plain finite difference, Eq. 14; the code's clipping path)
NA_POWERS = (1, 3)
#: how Delta L_t is formed: "accumulated" = e . (a_p - a) (code head), "direct" = g . (a_p - a)
LOSS_CHANGES = ("direct", "accumulated")
#: constants of the authors' layer-wise rescaling: delta * GAIN * ln(m_out / (mean|delta| + EPS) + OFFSET)
RESCALE_GAIN, RESCALE_EPS, RESCALE_OFFSET = 1.2, 1e-5, 1.02


@njit(cache=True, nogil=True)
def _na_kernel(g, c, v, s, alpha_m, alpha_s, inv_tau_s, theta, subtract, b, power, accumulated):
    T, M = g.shape
    delta = np.zeros((T, M))
    E = np.zeros((T, M))
    DL = np.zeros((T, M))
    e = np.empty(T)
    for j in range(M):
        acc = 0.0
        for t in range(T - 1, -1, -1):
            acc = g[t, j] + alpha_s * acc
            e[t] = acc
            E[t, j] = acc
        for t in range(T):
            flipped = 1.0 - s[t, j]
            # neighbour's state right after step t: membrane theta, flipped spike
            mem = 0.0 if flipped > 0.0 else theta
            if accumulated:
                # sum_k e[k] (a_p[k] - a[k]); the PSC difference da starts at step t
                da = (flipped - s[t, j]) * inv_tau_s
                dl = e[t] * da
            else:
                # sum_k g[k] (a_p[k] - a[k]) = sum_k e[k] (s_p[k] - s[k]) / tau_s
                dl = e[t] * (flipped - s[t, j])
            for k in range(t + 1, T):
                vk = alpha_m * mem + c[k, j]
                if vk > theta:
                    sk = 1.0
                    mem = vk - theta if subtract else 0.0
                else:
                    sk = 0.0
                    mem = vk
                if accumulated:
                    da = alpha_s * da + (sk - s[k, j]) * inv_tau_s
                    dl += e[k] * da
                else:
                    dl += e[k] * (sk - s[k, j])
            if not accumulated:
                dl *= inv_tau_s
            d = theta - v[t, j]
            if d == 0.0:
                scale = b
            else:
                scale = 1.0 / d if power == 1 else 1.0 / (d * d * d)
                if scale > b:
                    scale = b
                elif scale < -b:
                    scale = -b
            DL[t, j] = dl
            delta[t, j] = dl * scale
    return delta, E, DL


def na_delta(g: np.ndarray, c: np.ndarray, v: np.ndarray, s: np.ndarray, neuron: PscLIF,
             b: float = B_PAPER, power: int = POWER_PAPER, loss_change: str = "direct",
             return_parts: bool = False
             ) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """NA aggregated gradient of one layer.

    Parameters
    ----------
    g : array (T, ...)
        dL/da of this layer's PSC (direct derivative, Eq. 6 / 9).
    c, v, s : arrays (T, ...)
        Input current, pre-reset membrane and spikes of the forward pass.
    neuron : PscLIF
    b : float
        Clip bound of 1/d^power (default 10, the paper; the code's head: 5).
    power : {3, 1}
        Exponent of the signed MP distance d = theta - v: 3 = paper Eq. 17 (default), 1 = the
        plain finite difference Delta L / d (Eq. 14) clipped to [-b, b], the authors' code's
        "simple clipping" path.
    loss_change : {"accumulated", "direct"}
        Delta L_t = g . (a_p - a) (default: the first-order change of L; the code before
        bf8b564) or e . (a_p - a) with the accumulated PSC error e of Eq. 7 (the code's
        head and Eq. 13 as worded). :class:`~eventsnn.dense.learners_psc.NaLearner`
        defaults to the code's head.
    return_parts : bool
        Also return the PSC error e (Eq. 7) and the loss changes Delta L_t.

    Returns
    -------
    delta : array (T, ...), or (delta, e, loss_changes) with ``return_parts``
    """
    if not isinstance(neuron, PscLIF):
        raise TypeError(f"neuron must be a PscLIF, got {type(neuron).__name__}")
    g = v_check("g", g)
    shape = g.shape
    c, vm, s = (v_check(name, arr, shape) for name, arr in (("c", c), ("v", v), ("s", s)))
    b = _v.positive_float("b", b)
    if isinstance(power, bool) or power not in NA_POWERS:
        raise ValueError(f"power must be one of {NA_POWERS}, got {power!r}")
    loss_change = _v.choice("loss_change", loss_change, LOSS_CHANGES)
    T = shape[0]
    delta, e, dl = _na_kernel(g.reshape(T, -1), c.reshape(T, -1), vm.reshape(T, -1), s.reshape(T, -1),
                              neuron.alpha_m, neuron.alpha_s, 1.0 / neuron.tau_s, neuron.theta,
                              neuron.reset == "subtract", b, int(power), loss_change == "accumulated")
    if return_parts:
        return delta.reshape(shape), e.reshape(shape), dl.reshape(shape)
    return delta.reshape(shape)


def abs_sum(delta: ArrayLike) -> Tuple[float, float]:
    """(sum |delta|, number of entries): the additive parts of mean|delta| that
    :func:`code_rescale` needs. A batch cut into blocks adds its blocks' parts in block order
    (what one process and a cluster both do, see :class:`~eventsnn.dense.learners_psc.NaLearner`);
    for one block, sum / count is numpy's ``mean`` to the bit."""
    delta = np.asarray(delta, dtype=np.float64)
    return (float(np.sum(np.abs(delta))) if delta.size else 0.0), float(delta.size)


def rescale_mean(total: float, count: float) -> float:
    """mean |delta| from summed :func:`abs_sum` parts (0 for an empty array)."""
    return total / count if count else 0.0


def rescale_factor(mean: float, m_ref: float) -> float:
    """The factor ``1.2 * ln(m_ref / (mean + 1e-5) + 1.02)`` of :func:`code_rescale`."""
    return RESCALE_GAIN * np.log(m_ref / (mean + RESCALE_EPS) + RESCALE_OFFSET)


def code_rescale(delta: np.ndarray, m_out: Optional[float] = None) -> Tuple[np.ndarray, float]:
    """The authors' layer-wise rescaling of NA gradients (``functions/na.py``, not in the paper).

    ``delta * 1.2 * ln(m_ref / (mean|delta| + 1e-5) + 1.02)``, where the means run over the
    whole batch array (samples, neurons, steps) and ``m_ref`` is ``m_out``, the stored mean
    of the output layer; for the output layer itself (``m_out=None``, the first layer of the
    backward pass) ``m_ref`` is its own mean. Means are stored rounded to 3 decimals, as the
    code does.

    Returns ``(rescaled delta, stored mean)``; the stored mean of the output layer (its mean
    |delta| after rescaling, rounded) is the ``m_out`` of the layers below it.
    """
    delta = np.asarray(delta, dtype=np.float64)
    mean = rescale_mean(*abs_sum(delta))
    m_ref = round(mean, 3) if m_out is None else _v.finite_float("m_out", m_out)
    out = delta * rescale_factor(mean, m_ref)
    return out, round(rescale_mean(*abs_sum(out)), 3)
