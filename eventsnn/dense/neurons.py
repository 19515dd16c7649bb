"""Discrete (time-stepped) full-reset neurons of the dense mode.

Time is in steps (one step = ``dt`` ms of the continuous model). Both families have a
double-exponential response kernel with *current and potential reset*: at a spike every
input at or before the spike step is forgotten (the discrete counterpart of
``SRM(reset="full")``). They differ in how the reference codes write the recursion, and
both are implemented exactly as written there:

:class:`ZhuNeuron` (Zhu et al. 2022, reference code)::

    m <- (m + I[t]) (1 - 1/tau_m);  s <- (s + I[t]) (1 - 1/tau_s)
    u[t] = (m - s) tau_m / (tau_m - tau_s)          # = sum_{t'} I[t'] eps[t - t']
    S[t] = [u[t] >= theta];  m = s = 0 at a spike
    eps[d] = tau_m/(tau_m - tau_s) ((1 - 1/tau_m)^(d+1) - (1 - 1/tau_s)^(d+1)),  eps[0] = 1/tau_s
    Delta u[t] = u[t] - u[t-1] (1 - S[t-1])

:class:`AntlrNeuron` (Kim et al. 2020, Eq. 1-3 and their code)::

    I[t] = a_i (1 - S[t-1]) I[t-1] + b_i (W x)[t]
    V[t] = a_v (1 - S[t-1]) V[t-1] + b_v I[t] + b_bias bias
    S[t] = [V[t] >= theta]
    eps[d] = b_i b_v sum_{k=0}^{d} a_i^k a_v^(d-k)
    V'[t] = max(V[t] - (1 - S[t-1]) V[t-1], 0.01)   (the ANTLR rule's v_prime_min option)

``bias`` is the layer's optional trainable bias (``Dense(..., bias=True)``, per output
channel for Conv2d; zero when the layer has none). Only the ANTLR family has the bias term
(Zhu et al.'s code has none), so a biased layer under a ZhuNeuron raises ValueError.

``AntlrNeuron(reset=...)`` also offers the two resets that keep the synaptic current (for the
activation rule only; the timing and ANTLR rules need the full reset's windows)::

    reset="subtract":  I[t] = a_i I[t-1] + b_i (W x)[t]
                       V[t] = a_v V[t-1] + b_v I[t] - theta S[t-1] + b_bias bias
    reset="membrane":  I[t] = a_i I[t-1] + b_i (W x)[t]
                       V[t] = a_v (1 - S[t-1]) V[t-1] + b_v I[t] + b_bias bias

With a_i = alpha, a_v = beta, b_i = b_v = 1, ``reset="subtract"`` is snnTorch's
``snn.Synaptic(alpha, beta)`` (its default subtractive reset, applied one step after the
spike).

With ``a_v = 1 - 1/tau_m``, ``a_i = 1 - 1/tau_s``, ``b_i b_v = 1/tau_s`` the two kernels are
the same function (see :meth:`AntlrNeuron.from_srm`); the recursions then agree to
rounding. Both expose their dynamics as a 2-state linear system (``linear_system``) used by
the BPTT backward pass: ``z[t] = (1 - S[t-1]) A z[t-1] + B c[t]``, ``u[t] = C . z[t]``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .. import _validate as v
from .._constants import MIN_TAU_GAP
from ..neurons import SRM
from typing import TYPE_CHECKING, Sequence, Tuple, Union, cast

if TYPE_CHECKING:
    from ..layers import Layer


def _decay(name, value):
    value = v.positive_float(name, value, allow_zero=True)
    if value >= 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return value


@dataclass(frozen=True)
class ZhuNeuron:
    """Discrete full-reset SRM neuron of Zhu et al.'s code.

    Parameters
    ----------
    tau_m, tau_s : float
        Membrane and synaptic time constants in *steps*, each >= 1 (the decay per step is
        ``1 - 1/tau``), and different from each other.
    theta : float
        Threshold, > 0.
    """

    tau_m: float = 5.0
    tau_s: float = 3.0
    theta: float = 1.0

    family = "zhu"

    def __post_init__(self):
        tau_m = v.positive_float("tau_m", self.tau_m)
        tau_s = v.positive_float("tau_s", self.tau_s)
        for name, tau in (("tau_m", tau_m), ("tau_s", tau_s)):
            if tau < 1.0:
                raise ValueError(f"{name} must be >= 1 step (decay 1 - 1/{name} in [0, 1)), got {tau}")
        if abs(tau_m - tau_s) <= MIN_TAU_GAP * max(tau_m, tau_s):
            raise ValueError(f"tau_m ({tau_m}) and tau_s ({tau_s}) must differ (the kernel divides "
                             "by tau_m - tau_s); use AntlrNeuron for equal decays")
        object.__setattr__(self, "tau_m", tau_m)
        object.__setattr__(self, "tau_s", tau_s)
        object.__setattr__(self, "theta", v.positive_float("theta", self.theta))

    @classmethod
    def from_srm(cls, srm: SRM, dt: float = 1.0) -> ZhuNeuron:
        """The discretisation of an :class:`eventsnn.SRM` with step ``dt`` ms: tau / dt."""
        if not isinstance(srm, SRM):
            raise TypeError(f"srm must be an eventsnn.SRM, got {type(srm).__name__}")
        dt = v.positive_float("dt", dt)
        if dt > min(srm.tau_m, srm.tau_s):
            raise ValueError(f"dt ({dt} ms) must not exceed tau_m ({srm.tau_m} ms) and tau_s "
                             f"({srm.tau_s} ms): each must be >= 1 step")
        if not np.isfinite(max(srm.tau_m, srm.tau_s) / dt):
            raise ValueError(f"dt ({dt!r} ms) is too small: tau_m / dt overflows")
        return cls(tau_m=srm.tau_m / dt, tau_s=srm.tau_s / dt, theta=srm.theta)

    @property
    def scale(self) -> float:
        return self.tau_m / (self.tau_m - self.tau_s)

    @property
    def decays(self) -> Tuple[float, float]:
        """(a_m, a_s) = (1 - 1/tau_m, 1 - 1/tau_s)."""
        return 1.0 - 1.0 / self.tau_m, 1.0 - 1.0 / self.tau_s

    def eps(self, n_steps: int, window: Optional[int] = None) -> np.ndarray:
        """Kernel eps[d], d = 0..n_steps-1 (response at step t + d to a unit input at t).
        ``window`` is accepted for symmetry with :meth:`AntlrNeuron.eps` (no effect here)."""
        a_m, a_s = self.decays
        d = np.arange(int(n_steps), dtype=np.float64)
        return self.scale * (a_m ** (d + 1) - a_s ** (d + 1))

    def linear_system(self, n_steps: Optional[int] = None
                      ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(A, B, C) of z[t] = (1 - S[t-1]) A z[t-1] + B c[t], u = C.z, z = (m, s)."""
        a_m, a_s = self.decays
        A = np.array([[a_m, 0.0], [0.0, a_s]])
        B = np.array([a_m, a_s])
        C = np.array([self.scale, -self.scale])
        return A, B, C

    def bias_input(self, n_steps: Optional[int] = None) -> np.ndarray:
        """D of a bias term D * bias in the linear system: zero (the Zhu neuron has none)."""
        return np.zeros(2)

    def simulate(self, c: np.ndarray, bias: Optional[np.ndarray] = None
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Run the forward kernel on input currents ``c`` (T, N) (float64, C-contiguous);
        returns (spikes, u, du), each (T, N). ``bias`` must be None (no bias term)."""
        from ._neurons import zhu_forward
        if bias is not None:
            raise ValueError("ZhuNeuron has no bias term (Zhu et al.'s code has none): biases are "
                             "supported by the dense ANTLR neuron only (AntlrNeuron / neuron='antlr')")
        a_m, a_s = self.decays
        return zhu_forward(c, a_m, a_s, self.scale, self.theta)



RESETS = ("full", "subtract", "membrane")


@dataclass(frozen=True)
class AntlrNeuron:
    """Discrete current-based LIF neuron (ANTLR, Eq. 1-3): current and potential reset by
    default, or a reset that keeps the synaptic current (``reset``).

    Parameters
    ----------
    a_i, a_v : float
        Decay per step of the synaptic current and of the potential, in [0, 1).
    b_i : float
        Input scale of the current, > 0.
    b_v : float or None
        Scale of the current into the potential, > 0. None (default, as the authors' code):
        1 / peak of the kernel sum_k a_i^k a_v^(d-k) b_i over the window d = 0..T-1, so a
        single unit input peaks at exactly 1 within the simulated window.
    theta : float
        Threshold, > 0 (the paper uses 1).
    b_bias : float or None
        Scale of the layer's bias into the potential (V += b_bias * bias every step), > 0.
        None (default, as the authors' code): like b_v's default, 1 / peak of the kernel
        sum_k a_i^k a_v^(d-k) b_i over the window d = 0..T-1 (so b_bias equals the default
        b_v even when b_v is given). Used only by layers with a bias.
    reset : {"full", "subtract", "membrane"}
        What a spike at step t does to step t + 1 (all three act one step after the spike):

        - "full" (default, ANTLR): current and potential are zeroed, every input so far is
          forgotten: I[t+1] = a_i (1 - S[t]) I[t] + b_i c[t+1],
          V[t+1] = a_v (1 - S[t]) V[t] + b_v I[t+1].
        - "subtract": theta is subtracted from the potential, the current is kept:
          I[t+1] = a_i I[t] + b_i c[t+1], V[t+1] = a_v V[t] + b_v I[t+1] - theta S[t]
          (snnTorch's ``Synaptic`` with alpha = a_i, beta = a_v, b_i = b_v = 1).
        - "membrane": only the potential is zeroed, the current is kept:
          V[t+1] = a_v (1 - S[t]) V[t] + b_v I[t+1].

        Only the activation rule supports "subtract" and "membrane". Every reset adds
        ``b_bias * bias`` to V[t] of a biased layer at every step.
    b_window : int or None
        Steps of the window over which the defaults of ``b_v`` and ``b_bias`` are resolved.
        None (default): the run's own length. The authors' code resolves them once from its
        configured ``time_length``, so an early-stopped run (latency loss) keeps them: pass
        that length here to match it.
    """

    a_i: float = 0.99
    a_v: float = 0.99
    b_i: float = 1.0
    b_v: Optional[float] = None
    theta: float = 1.0
    reset: str = "full"
    b_bias: Optional[float] = None
    b_window: Optional[int] = None

    family = "antlr"

    def __post_init__(self):
        object.__setattr__(self, "a_i", _decay("a_i", self.a_i))
        object.__setattr__(self, "a_v", _decay("a_v", self.a_v))
        object.__setattr__(self, "b_i", v.positive_float("b_i", self.b_i))
        if self.b_v is not None:
            object.__setattr__(self, "b_v", v.positive_float("b_v", self.b_v))
        object.__setattr__(self, "theta", v.positive_float("theta", self.theta))
        v.choice("reset", self.reset, RESETS)
        if self.b_bias is not None:
            object.__setattr__(self, "b_bias", v.positive_float("b_bias", self.b_bias))
        if self.b_window is not None:
            object.__setattr__(self, "b_window", v.positive_int("b_window", self.b_window))

    @classmethod
    def from_srm(cls, srm: SRM, dt: float = 1.0) -> AntlrNeuron:
        """Same kernel as ``ZhuNeuron.from_srm(srm, dt)``: a_v = 1 - dt/tau_m,
        a_i = 1 - dt/tau_s, b_i = 1, b_v = dt/tau_s, theta = srm.theta (full reset)."""
        if not isinstance(srm, SRM):
            raise TypeError(f"srm must be an eventsnn.SRM, got {type(srm).__name__}")
        dt = v.positive_float("dt", dt)
        if dt > min(srm.tau_m, srm.tau_s):
            raise ValueError(f"dt ({dt} ms) must not exceed tau_m and tau_s")
        return cls(a_i=1.0 - dt / srm.tau_s, a_v=1.0 - dt / srm.tau_m, b_i=1.0, b_v=dt / srm.tau_s,
                   theta=srm.theta)

    def _raw_kernel(self, n_steps):
        d = np.arange(int(n_steps))
        out = np.empty(len(d))
        acc_i = self.b_i
        acc_v = 0.0
        for k in range(len(d)):  # the recursion of Eq. 1-2 for one unit input at step 0
            if k > 0:
                acc_i *= self.a_i
            acc_v = self.a_v * acc_v + acc_i
            out[k] = acc_v
        return out

    def resolved_b_v(self, n_steps: int) -> float:
        """b_v used for a window of ``n_steps`` steps (see the class docstring)."""
        if self.b_v is not None:
            return self.b_v
        n_steps = self.b_window or v.n_steps("n_steps", n_steps)
        return 1.0 / float(np.max(self._raw_kernel(n_steps)))

    def resolved_b_bias(self, n_steps: int) -> float:
        """b_bias used for a window of ``n_steps`` steps: b_bias, or (None) 1 / the peak of
        the b_v = 1 kernel within the window (b_v's default)."""
        if self.b_bias is not None:
            return self.b_bias
        n_steps = self.b_window or v.n_steps("n_steps", n_steps)
        return 1.0 / float(np.max(self._raw_kernel(n_steps)))

    def bias_input(self, n_steps: int) -> np.ndarray:
        """D of the bias term of the linear system, z[t] = ... + D * bias: (0, b_bias)."""
        return np.array([0.0, self.resolved_b_bias(n_steps)])

    def eps(self, n_steps: int, window: Optional[int] = None) -> np.ndarray:
        """Kernel eps[d], d = 0..n_steps-1, with b_v resolved for a window of ``window`` steps
        (default n_steps; the forward pass of T steps uses window T, so a backward pass that
        needs eps one step further asks for ``eps(T + 1, window=T)``)."""
        return self.resolved_b_v(n_steps if window is None else window) * self._raw_kernel(n_steps)

    def linear_system(self, n_steps: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(A, B, C) of z[t] = (1 - S[t-1]) A z[t-1] + B c[t], u = C.z, z = (I, V) (the full
        reset's gating; without a spike the same system holds for every reset)."""
        b_v = self.resolved_b_v(n_steps)
        A = np.array([[self.a_i, 0.0], [b_v * self.a_i, self.a_v]])
        B = np.array([self.b_i, b_v * self.b_i])
        C = np.array([0.0, 1.0])
        return A, B, C

    def simulate(self, c: np.ndarray, bias: Optional[np.ndarray] = None
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Run the forward kernel on input currents ``c`` (T, N) (float64, C-contiguous);
        returns (spikes, V, du), each (T, N). du = V[t] - (1 - S[t-1]) V[t-1] (full and
        membrane reset) or V[t] - (V[t-1] - theta S[t-1]) (subtract), unclamped: the change
        from the previous step's potential after its reset. ``bias``: None, or the bias of
        every flat neuron (N,) (``ops.neuron_bias``); V gets ``b_bias * bias`` every step."""
        from ._neurons import antlr_forward, antlr_keep_current_forward
        T, N = c.shape
        b_v = self.resolved_b_v(T)
        if bias is None:
            bias = np.zeros(N)
        else:
            bias = np.ascontiguousarray(bias, dtype=np.float64)
            if bias.shape != (N,):
                raise ValueError(f"bias must have shape ({N},) (one value per neuron), got {bias.shape}")
        b_bias = self.resolved_b_bias(T)
        if self.reset == "full":
            return antlr_forward(c, self.a_i, self.a_v, self.b_i, b_v, self.theta, bias, b_bias)
        return antlr_keep_current_forward(c, self.a_i, self.a_v, self.b_i, b_v, self.theta,
                                          self.reset == "subtract", bias, b_bias)



NEURONS = (ZhuNeuron, AntlrNeuron)


def require_full_reset(neuron: Union[ZhuNeuron, AntlrNeuron], rule: str) -> None:
    """Raise ValueError unless ``neuron`` resets current and potential (the windows of the
    timing and ANTLR rules assume it)."""
    reset = getattr(neuron, "reset", "full")
    if reset != "full":
        raise ValueError(f"the {rule} rule needs a full-reset neuron (reset='full'), got "
                         f"reset={reset!r}; only the activation rule supports 'subtract' and 'membrane'")


def require_bias_support(layers: Sequence[Layer], neuron: Union[ZhuNeuron, AntlrNeuron],
                         what: Optional[str] = None) -> None:
    """Raise ValueError naming the first biased layer of ``layers`` unless ``neuron`` is an
    AntlrNeuron (the only dense neuron with a bias term)."""
    if getattr(neuron, "family", None) == "antlr":
        return
    from ..layers import reject_biases
    reject_biases(layers, what or f"the dense {type(neuron).__name__}")


def resolve_neuron(neuron: Union[ZhuNeuron, AntlrNeuron, str, None], srm: Optional[SRM],
                   dt: float = 1.0) -> Union[ZhuNeuron, AntlrNeuron]:
    """The dense neuron to use: ``neuron`` itself, or a family name ("zhu", "antlr")
    discretised from ``srm`` with step ``dt`` ms, or None (= "zhu")."""
    if neuron is None or neuron == "zhu":
        return ZhuNeuron.from_srm(cast(SRM, srm), dt)
    if neuron == "antlr":
        return AntlrNeuron.from_srm(cast(SRM, srm), dt)
    if isinstance(neuron, NEURONS):
        return neuron
    raise TypeError("neuron must be a ZhuNeuron, an AntlrNeuron, 'zhu', 'antlr' or None, "
                    f"got {neuron!r}")

