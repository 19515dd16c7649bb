"""Neuron families of TSSL-BP / NA (membrane reset, presynaptic PSC filter) and ASF-BP (IF/LIF).

Dense mode, time in steps (dt = 1), arrays time-major ``(T, B, n)``.

**PscLIF** (TSSL-BP Eq. 4-6, NA Eq. 1-4), one layer with input current ``c[t] = W a_prev[t]``::

    v[t] = alpha_m * u[t-1] + c[t]            alpha_m = 1 - 1/tau_m   (pre-reset membrane)
    s[t] = [v[t] > theta]                      strict threshold (both reference codes)
    u[t] = v[t] * (1 - s[t])                   reset="zero" (TSSL-BP code, NA)
    u[t] = v[t] - theta * s[t]                 reset="subtract" (TSSL-BP paper, Eq. 4 text)
    a[t] = alpha_s * a[t-1] + s[t] / tau_s     alpha_s = 1 - 1/tau_s   (the PSC passed on)

**AsfNeuron** (ASF-BP Eq. 3 and its code): no synaptic filter, reset to zero::

    v[t] = u[t-1] + x[t];  s[t] = [v[t] > theta];  u[t] = leak * v[t] * (1 - s[t])

``leak = 1`` is the IF neuron, ``leak = 0.99`` the paper's LIF (the code applies the leak after
the reset). The output layer does not spike: it integrates ``W s`` and reads ``u_T / (theta T)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate as v
from . import _psc_kernels as _k
from typing import Tuple

PSC_RESETS = ("zero", "subtract")


@dataclass(frozen=True)
class PscLIF:
    """Discrete LIF with membrane reset and a first-order presynaptic PSC filter.

    Parameters
    ----------
    tau_m : float
        Membrane time constant in steps, >= 1 (alpha_m = 1 - 1/tau_m in [0, 1)).
    tau_s : float
        Synaptic (PSC) time constant in steps, >= 1 (alpha_s = 1 - 1/tau_s).
    theta : float
        Firing threshold, > 0. A neuron fires when its membrane is strictly above it.
    reset : {"zero", "subtract"}
        ``"zero"`` (default; the TSSL-BP code and NA): the membrane is set to 0 at a spike.
        ``"subtract"``: theta is subtracted (what the TSSL-BP paper's text describes).
    """

    tau_m: float = 8.0
    tau_s: float = 2.0
    theta: float = 1.0
    reset: str = "zero"

    def __post_init__(self):
        for name in ("tau_m", "tau_s"):
            val = v.positive_float(name, getattr(self, name))
            if val < 1.0:
                raise ValueError(f"{name} must be >= 1 step (the decay 1 - 1/{name} must lie in [0, 1)), "
                                 f"got {val}")
            object.__setattr__(self, name, val)
        object.__setattr__(self, "theta", v.positive_float("theta", self.theta))
        v.choice("reset", self.reset, PSC_RESETS)

    @property
    def alpha_m(self) -> float:
        """Membrane decay per step, 1 - 1/tau_m."""
        return 1.0 - 1.0 / self.tau_m

    @property
    def alpha_s(self) -> float:
        """PSC decay per step, 1 - 1/tau_s."""
        return 1.0 - 1.0 / self.tau_s

    def kappa(self, n_steps: int) -> np.ndarray:
        """PSC response to one spike, kappa[k] = alpha_s^k / tau_s, k = 0..n_steps-1."""
        n_steps = v.n_steps("n_steps", n_steps)
        return self.alpha_s ** np.arange(n_steps) / self.tau_s


@dataclass(frozen=True)
class AsfNeuron:
    """IF (leak = 1) or LIF (leak < 1) neuron of ASF-BP: no synaptic filter, reset to zero.

    Parameters
    ----------
    theta : float
        Threshold of the spiking layers (> 0); also the "virtual threshold" V_th of the
        non-spiking output layer, whose read-out is u_T / (theta T).
    leak : float
        Multiplies the membrane after the reset, in (0, 1]; 1 = IF, 0.99 = the paper's LIF.
    pool_theta : float or None
        ASF-BP code: every pooling layer is followed by IF neurons (no leak) with this
        threshold (0.75 in the code). None: pooling layers only average the spikes and
        pass the (graded) result on.
    """

    theta: float = 1.0
    leak: float = 1.0
    pool_theta: float = 0.75

    def __post_init__(self):
        object.__setattr__(self, "theta", v.positive_float("theta", self.theta))
        leak = v.positive_float("leak", self.leak)
        if leak > 1.0:
            raise ValueError(f"leak must be in (0, 1], got {leak}")
        object.__setattr__(self, "leak", leak)
        if self.pool_theta is not None:
            object.__setattr__(self, "pool_theta", v.positive_float("pool_theta", self.pool_theta))

    @classmethod
    def IF(cls, theta: float = 1.0, pool_theta: float = 0.75) -> AsfNeuron:
        """Integrate-and-fire neuron (leak 1)."""
        return cls(theta=theta, leak=1.0, pool_theta=pool_theta)

    @classmethod
    def LIF(cls, theta: float = 1.0, leak: float = 0.99, pool_theta: float = 0.75) -> AsfNeuron:
        """Leaky neuron of ASF-BP (leak 0.99 after the reset)."""
        return cls(theta=theta, leak=leak, pool_theta=pool_theta)


def _time_major(name, x):
    arr = v.float_array(name, x)
    if arr.ndim < 1 or arr.shape[0] < 1:
        raise ValueError(f"{name} must be time-major with at least one step, got shape {arr.shape}")
    return arr


def psc_filter(x: np.ndarray, tau_s: float) -> np.ndarray:
    """First-order PSC filter a[t] = (1 - 1/tau_s) a[t-1] + x[t] / tau_s along axis 0.

    ``x`` is time-major ``(T, ...)`` (spikes or graded input currents); returns an array of
    the same shape."""
    arr = _time_major("x", x)
    tau_s = v.positive_float("tau_s", tau_s)
    if tau_s < 1.0:
        raise ValueError(f"tau_s must be >= 1 step, got {tau_s}")
    T = arr.shape[0]
    out = _k.psc_filter(arr.reshape(T, -1), 1.0 - 1.0 / tau_s, 1.0 / tau_s)
    return out.reshape(arr.shape)


def psc_layer(c: np.ndarray, neuron: PscLIF) -> Tuple[np.ndarray, ...]:
    """Run one layer of :class:`PscLIF` neurons on its input current.

    Parameters
    ----------
    c : array (T, ...)
        Input current per step (``W a_prev[t]``), time-major.
    neuron : PscLIF

    Returns
    -------
    v, s, u, a : arrays of the shape of ``c``
        Pre-reset membrane, spikes (0/1 floats), post-reset membrane, PSC.
    """
    if not isinstance(neuron, PscLIF):
        raise TypeError(f"neuron must be a PscLIF, got {type(neuron).__name__}")
    arr = _time_major("c", c)
    T = arr.shape[0]
    outs = _k.psc_layer(arr.reshape(T, -1), neuron.alpha_m, neuron.alpha_s, 1.0 / neuron.tau_s,
                        neuron.theta, neuron.reset == "subtract")
    return tuple(o.reshape(arr.shape) for o in outs)


def asf_layer(x: np.ndarray, theta: float, leak: float = 1.0) -> Tuple[np.ndarray, np.ndarray]:
    """Run one layer of ASF-BP IF/LIF neurons on its input current ``x`` (T, ...).

    Returns (v, s): pre-reset membrane and spikes, shapes of ``x``."""
    arr = _time_major("x", x)
    theta = v.positive_float("theta", theta)
    leak = v.positive_float("leak", leak)
    if leak > 1.0:
        raise ValueError(f"leak must be in (0, 1], got {leak}")
    T = arr.shape[0]
    vm, s = _k.if_layer(arr.reshape(T, -1), theta, leak)
    return vm.reshape(arr.shape), s.reshape(arr.shape)
