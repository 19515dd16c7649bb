"""Neuron models: parameters, validation and response kernels.

Times are in milliseconds. The event engine uses the continuous spike response model
:class:`SRM` (Zhu et al. 2022, Eq. 1-3)::

    eps(s) = tau_m / (tau_m - tau_s) * (exp(-s / tau_m) - exp(-s / tau_s)),  s >= 0

which is also the membrane response of a current-based LIF neuron (membrane time constant
tau_m, exponential synaptic current tau_s) to a current jump of w / tau_s.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _validate as v
from ._constants import MIN_TAU_GAP, TAU_RANGE_MS
from typing import Tuple

from numpy.typing import ArrayLike

RESETS = ("full", "membrane")
GRAD_KERNELS = ("exp", "depsilon")


def _offsets(s: ArrayLike, name: str = "s") -> np.ndarray:
    """Kernel argument: real times in ms (scalar or array; +-inf allowed), no NaN."""
    try:
        arr = np.asarray(s)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be a real number or array of them: {exc}") from None
    if arr.dtype == object or np.iscomplexobj(arr) or not (
            np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must hold real numbers (ms), got dtype {arr.dtype}")
    s = arr.astype(np.float64)
    if np.any(np.isnan(s)):
        raise ValueError(f"{name} must not contain NaN (kernel offsets in ms)")
    return s


@dataclass(frozen=True)
class SRM:
    """Spike response model neuron for the event engine.

    Parameters
    ----------
    tau_m : float
        Membrane time constant (ms), > 0.
    tau_s : float
        Synaptic time constant (ms), > 0 and different from ``tau_m``: the alpha-kernel
        limit ``tau_m == tau_s`` is rejected (use e.g. ``tau_s = 0.999 * tau_m``).
    theta : float
        Firing threshold (dimensionless, same units as ``weight * eps``), > 0.
    reset : {"full", "membrane"}
        ``"full"`` (Zhu et al.): at a spike every input at or before the spike time stops
        counting. ``"membrane"``: current-based LIF, the membrane is set to 0 and the
        synaptic current keeps decaying.
    t_ref : float
        Refractory period (ms), >= 0. ``"membrane"``: the membrane is clamped at 0 for
        ``t_ref`` after a spike while the synaptic current still integrates inputs.
        ``"full"``: inputs arriving within ``t_ref`` after a spike are discarded.
    """

    tau_m: float = 5.0
    tau_s: float = 3.0
    theta: float = 1.0
    reset: str = "full"
    t_ref: float = 0.0

    def __post_init__(self):
        tau_m = v.bounded_float("tau_m", self.tau_m, *TAU_RANGE_MS, unit=" ms")
        tau_s = v.bounded_float("tau_s", self.tau_s, *TAU_RANGE_MS, unit=" ms")
        if abs(tau_m - tau_s) <= MIN_TAU_GAP * max(tau_m, tau_s):
            raise ValueError(
                f"tau_m ({tau_m}) and tau_s ({tau_s}) must differ: the alpha-kernel limit "
                "tau_m == tau_s is not supported; use e.g. tau_s = 0.999 * tau_m"
            )
        object.__setattr__(self, "tau_m", tau_m)
        object.__setattr__(self, "tau_s", tau_s)
        object.__setattr__(self, "theta", v.positive_float("theta", self.theta))
        v.choice("reset", self.reset, RESETS)
        object.__setattr__(self, "t_ref", v.positive_float("t_ref", self.t_ref, allow_zero=True))

    @property
    def scale(self) -> float:
        """Kernel prefactor tau_m / (tau_m - tau_s)."""
        return self.tau_m / (self.tau_m - self.tau_s)

    @property
    def t_peak(self) -> float:
        """Time (ms) at which eps reaches its maximum."""
        tm, ts = self.tau_m, self.tau_s
        return np.log(tm / ts) * tm * ts / (tm - ts)

    @property
    def eps_peak(self) -> float:
        """Maximum of eps (dimensionless)."""
        return float(self.eps(self.t_peak))

    def eps(self, s: ArrayLike) -> np.ndarray:
        """PSP kernel eps(s) for s in ms (0 for s < 0; eps(inf) = 0). ``s`` must be real
        (TypeError otherwise) and not NaN (ValueError), like every public input."""
        s = _offsets(s)
        sp = np.maximum(s, 0.0)
        out = self.scale * (np.exp(-sp / self.tau_m) - np.exp(-sp / self.tau_s))
        return np.where(s >= 0, out, 0.0)

    def deps(self, s: ArrayLike) -> np.ndarray:
        """Time derivative d eps / ds (1/ms, 0 for s < 0); ``s`` validated as in :meth:`eps`."""
        s = _offsets(s)
        sp = np.maximum(s, 0.0)
        out = self.scale * (np.exp(-sp / self.tau_s) / self.tau_s - np.exp(-sp / self.tau_m) / self.tau_m)
        return np.where(s >= 0, out, 0.0)

    def h(self, s: ArrayLike, kernel: str = "exp", tau_grad: float = 2.5) -> np.ndarray:
        """Backward assignment kernel h(s) of the timing gradient (Zhu et al. Eq. 12).

        ``"exp"``: exp(-s / tau_grad); ``"depsilon"``: d eps / ds. Both are 0 for s < 0;
        ``s`` is validated as in :meth:`eps`, ``tau_grad`` must be finite and > 0.
        """
        v.choice("kernel", kernel, GRAD_KERNELS)
        s = _offsets(s)
        if kernel == "depsilon":
            return self.deps(s)
        tau_grad = v.positive_float("tau_grad", tau_grad)
        return np.where(s >= 0, np.exp(-np.maximum(s, 0.0) / tau_grad), 0.0)

    def as_tuple(self) -> Tuple[float, float, float, bool, float]:
        """(tau_m, tau_s, theta, membrane_reset, t_ref) as plain scalars for the kernels."""
        return (self.tau_m, self.tau_s, self.theta, self.reset == "membrane", self.t_ref)


@dataclass(frozen=True)
class LIF:
    """Leaky integrate-and-fire neuron without a synaptic current, for the event engine.

    An input event of weighted value w makes the membrane jump by w; between inputs it
    decays as ``exp(-s / tau_m)``::

        u(t) = sum over inputs m since the last reset of w_m exp(-(t - t_m) / tau_m)

    so the membrane can only reach ``theta`` at the time of an input: after all inputs of
    one time are applied, a neuron with u >= theta fires at that time and u is set to 0
    (membrane reset). It fires at most once per input time. This is NIR's ``LIF`` primitive
    (``tau dv/dt = -v + R I`` with Dirac inputs), the neuron behind snnTorch's ``Leaky`` and
    Norse's ``LIFBoxCell`` exports (see docs/nir.md).

    Parameters
    ----------
    tau_m : float
        Membrane time constant (ms), > 0.
    theta : float
        Firing threshold (same units as the weights), > 0.
    t_ref : float
        Refractory period (ms), >= 0: inputs arriving at or before ``t_spike + t_ref`` are
        lost (the membrane is clamped at 0; there is no current to integrate).

    Event mode only: the timing backward pass and the dense mode do not support it
    (ValueError).
    """

    tau_m: float = 5.0
    theta: float = 1.0
    t_ref: float = 0.0

    #: the reset of this neuron is always a membrane reset (to 0)
    reset = "membrane"

    def __post_init__(self):
        object.__setattr__(self, "tau_m", v.bounded_float("tau_m", self.tau_m, *TAU_RANGE_MS, unit=" ms"))
        object.__setattr__(self, "theta", v.positive_float("theta", self.theta))
        object.__setattr__(self, "t_ref", v.positive_float("t_ref", self.t_ref, allow_zero=True))

    def eps(self, s: ArrayLike) -> np.ndarray:
        """Response of the membrane to an input of weight 1 at offset s (ms): exp(-s / tau_m)
        for s >= 0, 0 before (``s`` validated as in :meth:`SRM.eps`)."""
        s = _offsets(s)
        return np.where(s >= 0, np.exp(-np.maximum(s, 0.0) / self.tau_m), 0.0)


#: neuron models a layer of the event engine can hold
EVENT_NEURONS = (SRM, LIF)
