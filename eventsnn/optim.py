"""Optimisers (SGD with momentum, Adam, AdamW), gradient clipping and weight clamping.

Every optimiser takes ``weight_clamp=None`` or a bound c > 0: after each step the parameters
are clamped element-wise to [-c, c] (:func:`clamp_weights`; the ``weight_clipper`` of the
Zhu et al., TSSL-BP and NA codes, c = 4). :func:`clip_grad_value` clamps gradients
element-wise (the ANTLR code's ``grad_clip``), :func:`clip_grad_norm` rescales them to a
global norm (``clip_grad_norm_`` of the Zhu et al., TSSL-BP and NA codes, max norm 1).

Parameters are a list of float64 arrays updated in place (entries that are None, e.g. the
"weights" of pooling layers, are skipped); gradients are a list of the same shapes. An
optimiser keeps its state per list position, so pass the lists in the same order each step::

    opt = Adam(lr=1e-3)
    params = [layer.weight for layer in net.layers]   # arrays (None for pooling)
    opt.step(params, grads)
"""
from __future__ import annotations

import math

import numpy as np

from . import _validate as v
from typing import Any, Dict, Optional, Sequence, Tuple


def _pairs(params, grads):
    if len(params) != len(grads):
        raise ValueError(f"params ({len(params)}) and grads ({len(grads)}) differ in length")
    out = []
    for k, (p, g) in enumerate(zip(params, grads)):
        if p is None:
            if g is not None:
                raise ValueError(f"grads[{k}] is given but params[{k}] is None")
            continue
        if g is None:
            continue
        if not isinstance(p, np.ndarray) or p.dtype != np.float64:
            raise TypeError(f"params[{k}] must be a float64 numpy array")
        g = np.asarray(g, dtype=np.float64)
        if g.shape != p.shape:
            raise ValueError(f"grads[{k}] has shape {g.shape}, params[{k}] has {p.shape}")
        if not np.all(np.isfinite(g)):
            raise ValueError(f"grads[{k}] holds NaN or inf")
        out.append((k, p, g))
    return out


def _scaled_norm(grads):
    """(m, r) with the global L2 norm = m * r, m the largest magnitude: squares of the
    scaled entries cannot overflow, so gradients of 1e200 keep a finite, exact-to-rounding
    norm (m * r itself may still exceed float64 when the true norm does)."""
    arrays = [np.asarray(g, dtype=np.float64) for g in grads if g is not None]
    m = max((float(np.max(np.abs(a))) for a in arrays if a.size), default=0.0)
    if m == 0.0 or not math.isfinite(m):
        return m, (0.0 if m == 0.0 else 1.0)
    return m, math.sqrt(sum(float(np.sum(np.square(a / m))) for a in arrays))


def grad_norm(grads: Sequence[Optional[np.ndarray]]) -> float:
    """Global L2 norm over every non-None gradient array (computed without overflow of the
    squares; inf only if the norm itself exceeds float64)."""
    m, r = _scaled_norm(grads)
    return m * r


def clip_grad_norm(grads: Sequence[Optional[np.ndarray]], max_norm: float) -> float:
    """Scale the gradients (in place) so that their global L2 norm is at most ``max_norm``.
    Returns the norm before clipping."""
    max_norm = v.positive_float("max_norm", max_norm)
    m, r = _scaled_norm(grads)
    if not math.isfinite(m):
        raise ValueError("clip_grad_norm: the gradients hold NaN or inf")
    if m * r > max_norm:
        s = (max_norm / m) / r
        for g in grads:
            if g is not None:
                g *= s
    return m * r


def clip_grad_value(grads: Sequence[Optional[np.ndarray]], clip: float) -> float:
    """Clamp every gradient (in place) element-wise to [-clip, clip]. Returns the largest
    |entry| before clamping."""
    clip = v.positive_float("clip", clip)
    top = max((float(np.max(np.abs(g))) for g in grads if g is not None and np.size(g)), default=0.0)
    for g in grads:
        if g is not None:
            np.clip(g, -clip, clip, out=g)
    return top


def clamp_weights(params: Sequence[Optional[np.ndarray]], bound: float) -> None:
    """Clamp every parameter array (in place) element-wise to [-bound, bound] (the codes'
    ``weight_clipper``: ``w.clamp(-4, 4)``); None entries are skipped."""
    bound = v.positive_float("bound", bound)
    for k, p in enumerate(params):
        if p is None:
            continue
        if not isinstance(p, np.ndarray) or p.dtype != np.float64:
            raise TypeError(f"params[{k}] must be a float64 numpy array")
        np.clip(p, -bound, bound, out=p)


class Optimizer:
    """Base class: ``step(params, grads)`` updates params in place, then clamps them to
    [-weight_clamp, weight_clamp] when ``weight_clamp`` is set."""

    def __init__(self, lr: float, weight_clamp: Optional[float] = None) -> None:
        self.lr = v.positive_float("lr", lr)
        self.weight_clamp = None if weight_clamp is None else v.positive_float("weight_clamp", weight_clamp)
        self.state: Dict[int, Dict[str, np.ndarray]] = {}
        self.t = 0

    def step(self, params: Sequence[Optional[np.ndarray]],
             grads: Sequence[Optional[np.ndarray]]) -> None:
        """Update ``params`` in place. If the step would make a parameter non-finite (finite
        input can still overflow, e.g. lr=1e308), nothing changes - neither the parameters
        nor the optimiser's state - and a ValueError says so."""
        pairs = _pairs(params, grads)
        saved_state = {k: {n: a.copy() for n, a in st.items()} for k, st in self.state.items()}
        self.t += 1
        new = []
        for k, p, g in pairs:
            q = p.copy()
            with np.errstate(over="ignore", invalid="ignore"):
                self._update(k, q, g)
            if not np.all(np.isfinite(q)):
                self.state, self.t = saved_state, self.t - 1
                raise ValueError(f"the {type(self).__name__} step (lr={self.lr}) would make params[{k}] "
                                 "non-finite; lower the learning rate or clip the gradients")
            new.append((p, q))
        for p, q in new:
            p[...] = q
        if self.weight_clamp is not None:
            clamp_weights(params, self.weight_clamp)

    def _update(self, k, p, g):
        raise NotImplementedError

    def state_dict(self) -> Dict[str, Any]:
        return {"t": self.t, "state": {k: {n: a.copy() for n, a in s.items()}
                                      for k, s in self.state.items()}}


class SGD(Optimizer):
    """p -= lr * b with b = momentum * b + (g + weight_decay * p) (b = g without momentum);
    ``nesterov`` uses g + momentum * b instead of b."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False, weight_clamp: Optional[float] = None) -> None:
        super().__init__(lr, weight_clamp)
        self.momentum = v.positive_float("momentum", momentum, allow_zero=True)
        if self.momentum >= 1:
            raise ValueError(f"momentum must be < 1, got {momentum}")
        self.weight_decay = v.positive_float("weight_decay", weight_decay, allow_zero=True)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be a bool, got {nesterov!r}")
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov needs momentum > 0")

    def _update(self, k, p, g):
        d = g + self.weight_decay * p if self.weight_decay else g
        if self.momentum:
            s = self.state.setdefault(k, {"buf": np.zeros_like(p)})
            buf = s["buf"]
            buf *= self.momentum
            buf += d
            d = d + self.momentum * buf if self.nesterov else buf
        p -= self.lr * d


class Adam(Optimizer):
    """Adam (Kingma & Ba): m = b1 m + (1-b1) g, s = b2 s + (1-b2) g^2,
    p -= lr * (m / (1-b1^t)) / (sqrt(s / (1-b2^t)) + eps). ``weight_decay`` adds
    weight_decay * p to g (L2, coupled)."""

    decoupled = False

    def __init__(self, lr: float = 1e-3, betas: Tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0,
                 weight_clamp: Optional[float] = None) -> None:
        super().__init__(lr, weight_clamp)
        try:
            b1, b2 = (float(b) for b in betas)
        except (TypeError, ValueError):
            raise TypeError("betas must be a pair of floats") from None
        for name, b in (("betas[0]", b1), ("betas[1]", b2)):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {b}")
        self.b1, self.b2 = b1, b2
        self.eps = v.positive_float("eps", eps)
        self.weight_decay = v.positive_float("weight_decay", weight_decay, allow_zero=True)

    def _update(self, k, p, g):
        if self.weight_decay and not self.decoupled:
            g = g + self.weight_decay * p
        s = self.state.setdefault(k, {"m": np.zeros_like(p), "v": np.zeros_like(p)})
        m, vv = s["m"], s["v"]
        m *= self.b1
        m += (1 - self.b1) * g
        vv *= self.b2
        vv += (1 - self.b2) * g * g
        m_hat = m / (1 - self.b1 ** self.t)
        v_hat = vv / (1 - self.b2 ** self.t)
        if self.weight_decay and self.decoupled:
            p -= self.lr * self.weight_decay * p
        p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p -= lr * weight_decay * p
    before the Adam step. Default weight_decay 0.01."""

    decoupled = True

    def __init__(self, lr: float = 1e-3, betas: Tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01,
                 weight_clamp: Optional[float] = None) -> None:
        super().__init__(lr, betas, eps, weight_decay, weight_clamp)


#: name -> class, for the trainer and the CLI
OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def make_optimizer(name: str, **kwargs: Any) -> Optimizer:
    """Optimiser by name ("sgd", "adam", "adamw") with its keyword arguments."""
    key = str(name).lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {name!r}")
    return OPTIMIZERS[key](**kwargs)
