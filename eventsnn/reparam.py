"""Weight standardisation: Zhu et al.'s per-forward reparametrisation of conv and linear weights.

The authors' layers (SNN-event-driven-learning 6cff83b, ``layers/functions.py``,
``bn_forward``) do not train their weights directly. Each Conv2d / Dense layer keeps a raw
weight ``v`` and, per output channel c (neuron of a Dense layer), a gain ``g[c]`` and a shift
``b[c]``; the weight the neurons see is rebuilt before every forward pass::

    w[c] = (v[c] - mean(v[c])) / sqrt(var(v[c]) + eps) * g[c] + b[c]

mean and var over the channel's m = C_in * k * k (Dense: n_in) entries, var unbiased
(ddof=1, ``torch.std``), eps = 1e-5. The optimiser steps v, g and b. With it the
effective weights of a channel keep zero mean (up to b) and a spread set by g alone, and a
step on v moves w by a relative amount of about lr / std(v) whatever the layer's fan-in.

:class:`WeightStandardization` does this for an :class:`eventsnn.Sequential`: it holds
(v, g, b) of every weighted layer, writes the effective weights into the layers in place
(so the event kernels, the model file and ``evaluate`` see a plain network), and maps the
gradients of the effective weights to those of (v, g, b). ``grad="exact"`` (default) is the
chain rule through the mean and the variance; ``grad="code"`` is the authors'
``bn_backward``, which treats the variance term element by element (see :func:`code_grads`).

:class:`eventsnn.train.Trainer` takes it as ``reparam="standardize"`` (or an instance);
``eventsnn train --reparam standardize``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _validate as v

if TYPE_CHECKING:
    from .network import Sequential

#: eps of the authors' ``torch.sqrt(var + 1e-5)``
STD_EPS = 1e-5
GRADS = ("exact", "code")
#: ``Trainer(reparam=...)`` names
REPARAMS = ("standardize",)
#: largest |relative residual| :meth:`WeightStandardization.sync` accepts when it refits
#: (g, b) to weights changed outside the reparametrisation (a per-layer or per-channel
#: rescaling, e.g. the firing-rate initialisation, is represented to rounding)
SYNC_TOL = 1e-9


def _stats(v2: np.ndarray, eps: float) -> Tuple[np.ndarray, np.ndarray]:
    """(mean, sqrt(var + eps)) of each row of v2 (C, m), var with ddof=1 (0 when m == 1)."""
    mean = v2.mean(axis=1, keepdims=True)
    m = v2.shape[1]
    var = ((v2 - mean) ** 2).sum(axis=1, keepdims=True) / (m - 1) if m > 1 else np.zeros_like(mean)
    return mean, np.sqrt(var + eps)


def effective(raw: np.ndarray, gain: np.ndarray, shift: np.ndarray, eps: float = STD_EPS) -> np.ndarray:
    """The effective weight (v - mean) / sqrt(var + eps) * g + b, per output channel (first
    axis of ``raw``); ``gain`` and ``shift`` have one entry per channel."""
    raw, gain, shift = _checked(raw, gain, shift)
    return _effective(raw, gain, shift, eps)


def _effective(raw, gain, shift, eps):
    C = raw.shape[0]
    v2 = raw.reshape(C, -1)
    mean, s = _stats(v2, eps)
    return ((v2 - mean) / s * gain[:, None] + shift[:, None]).reshape(raw.shape)


def exact_grads(grad_w: np.ndarray, raw: np.ndarray, gain: np.ndarray, shift: np.ndarray,
                eps: float = STD_EPS) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dL/dv, dL/dg, dL/db) of the effective weight's gradient ``grad_w`` by the chain rule.

    With x = (v - mean)/s, s = sqrt(var + eps), H = g * dL/dw, per channel of m entries:
    dL/dg = sum(dL/dw * x), dL/db = sum(dL/dw), dL/dv = (H - mean(H) - x * sum(H x)/(m - 1)) / s
    (the last term from var's ddof=1; it vanishes for m == 1, where var is 0)."""
    raw, gain, shift = _checked(raw, gain, shift)
    grad_w = _checked_grad(grad_w, raw)
    return _exact_grads(grad_w, raw, gain, shift, eps)


def _exact_grads(grad_w, raw, gain, shift, eps):
    C = raw.shape[0]
    v2 = raw.reshape(C, -1)
    G = grad_w.reshape(C, -1)
    m = v2.shape[1]
    mean, s = _stats(v2, eps)
    x = (v2 - mean) / s
    d_gain = (G * x).sum(axis=1)
    d_shift = G.sum(axis=1)
    H = G * gain[:, None]
    d_raw = H - H.mean(axis=1, keepdims=True)
    if m > 1:
        d_raw -= x * (H * x).sum(axis=1, keepdims=True) / (m - 1)
    return (d_raw / s).reshape(raw.shape), d_gain, d_shift


def code_grads(grad_w: np.ndarray, raw: np.ndarray, gain: np.ndarray, shift: np.ndarray,
               eps: float = STD_EPS) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dL/dv, dL/dg, dL/db) as the authors' ``bn_backward`` computes them.

    dL/db = sum(dL/dw) is the chain rule's; dL/dg = sum(dL/dw * w) takes the effective
    weight w = x g + b where the chain rule has x (it is g times the chain rule's when b = 0).
    For v the code keeps the mean's and the variance's terms element-wise instead of summing
    them over the channel: with H = g * dL/dw and d = v - mean, dL/dv = H/s - H d^2/(m^2 s^3)
    - H/(m s), s = sqrt(var + eps) (var with ddof=1 in the forward, 1/m in this backward).
    It is close to H/s, the gradient with the mean and the variance held fixed."""
    raw, gain, shift = _checked(raw, gain, shift)
    grad_w = _checked_grad(grad_w, raw)
    return _code_grads(grad_w, raw, gain, shift, eps)


def _code_grads(grad_w, raw, gain, shift, eps):
    C = raw.shape[0]
    v2 = raw.reshape(C, -1)
    G = grad_w.reshape(C, -1)
    m = v2.shape[1]
    mean, s = _stats(v2, eps)
    d = v2 - mean
    d_gain = (G * (d / s * gain[:, None] + shift[:, None])).sum(axis=1)
    d_shift = G.sum(axis=1)
    H = G * gain[:, None]
    d_raw = H / s - H * d * d / (m * m * s ** 3) - H / (m * s)
    return d_raw.reshape(raw.shape), d_gain, d_shift


def _checked(raw, gain, shift):
    raw = v.float_array("raw", raw)
    if raw.ndim < 2 or raw.size == 0:
        raise ValueError(f"raw must be a weight array (C_out, ...) with at least 2 dimensions, "
                         f"got shape {raw.shape}")
    C = raw.shape[0]
    gain = v.float_array("gain", gain, ndim=1)
    shift = v.float_array("shift", shift, ndim=1)
    for name, a in (("gain", gain), ("shift", shift)):
        if a.shape != (C,):
            raise ValueError(f"{name} must have one entry per output channel ({C}), got shape {a.shape}")
    return raw, gain, shift


def _checked_grad(grad_w, raw):
    grad_w = v.float_array("grad_w", grad_w)
    if grad_w.shape != raw.shape:
        raise ValueError(f"grad_w has shape {grad_w.shape}, the weight has {raw.shape}")
    return grad_w


class WeightStandardization:
    """(v, g, b) of every weighted layer of a network, written into it as effective weights.

    Parameters
    ----------
    grad : "exact" (chain rule, default) or "code" (the authors' ``bn_backward``).
    eps : float > 0, added to the variance (the authors' 1e-5).
    raw_scale : float > 0 (default 1), factor on the raw weights v when :meth:`attach`
        takes them from the network. The effective weights do not depend on v's scale (up
        to eps), but the optimiser's steps do: a step of Adam moves v by about lr whatever
        v's size, so the relative step on v is ~ lr / (raw_scale * spread). g and b, and the
        decoupled weight decay, are not affected. ``1 / sqrt(6)`` gives v torch's default
        spread (the authors' start) on eventsnn's default weights, so that their lr carries
        over to v and to (g, b) at once.

    Use: :meth:`attach` to a network, then per step: the learner's gradient of the
    effective weights -> :meth:`grads` -> the optimiser steps :meth:`params` -> :meth:`apply`
    writes the new effective weights. :class:`eventsnn.train.Trainer` does all of it with
    ``reparam=``.
    """

    name = "standardize"

    def __init__(self, grad: str = "exact", eps: float = STD_EPS, raw_scale: float = 1.0) -> None:
        self.grad = v.choice("grad", grad, GRADS)
        self.eps = v.positive_float("eps", eps)
        self.raw_scale = v.positive_float("raw_scale", raw_scale)
        self.net: Optional[Sequential] = None
        self.layers: List[int] = []
        self.raw: List[np.ndarray] = []
        self.gain: List[np.ndarray] = []
        self.shift: List[np.ndarray] = []
        self._written: List[np.ndarray] = []

    def __repr__(self) -> str:
        return (f"WeightStandardization(grad={self.grad!r}, eps={self.eps!r}, "
                f"raw_scale={self.raw_scale!r})")

    # ---- set-up -------------------------------------------------------------------
    def attach(self, net: Sequential, keep: bool = False) -> None:
        """Take the weighted layers of ``net``: v = their weights; with ``keep=False`` g = 1
        and b = 0 (the authors' start: the effective weights become the standardised
        weights, which the firing-rate initialisation then scales, as the authors scale g),
        with ``keep=True`` g = sqrt(var + eps) and b = mean per channel, so that the
        effective weights equal the current ones (up to rounding). v is the weights times
        ``raw_scale`` (with ``keep=True`` g and b are set for the scaled v, so the effective
        weights are still the current ones)."""
        from .network import Sequential

        if not isinstance(net, Sequential):
            raise TypeError(f"net must be an eventsnn.Sequential, got {type(net).__name__}")
        net._check_weights()
        self.net = net
        self.layers = [k for k, layer in enumerate(net.layers) if layer.has_weight]
        if not self.layers:
            raise ValueError("weight standardisation needs a network with a Dense or Conv2d layer")
        self.raw, self.gain, self.shift = [], [], []
        for k in self.layers:
            w = np.array(net.layers[k].weight, dtype=np.float64)
            C = w.shape[0]
            if self.raw_scale != 1.0:
                w = w * self.raw_scale
            self.raw.append(w)
            if keep:
                # (v - mean) / sd * g + b = v / raw_scale, the current weights
                mean, s = _stats(w.reshape(C, -1), self.eps)
                self.gain.append(s[:, 0] / self.raw_scale)
                self.shift.append(mean[:, 0] / self.raw_scale)
            else:
                self.gain.append(np.ones(C))
                self.shift.append(np.zeros(C))
        self.apply()

    def _need_net(self) -> Sequential:
        if self.net is None:
            raise RuntimeError("WeightStandardization is not attached to a network: call attach(net)")
        return self.net

    # ---- per step -----------------------------------------------------------------
    def params(self) -> List[np.ndarray]:
        """The trained arrays, per weighted layer in order: v, g, b (the optimiser's list)."""
        self._need_net()
        out: List[np.ndarray] = []
        for r, g, b in zip(self.raw, self.gain, self.shift):
            out += [r, g, b]
        return out

    def apply(self) -> None:
        """Write the effective weights into the layers, in place (a Dense layer's ``weight``
        is a view of the storage the kernels read)."""
        net = self._need_net()
        self._written = []
        for k, r, g, b in zip(self.layers, self.raw, self.gain, self.shift):
            w = _effective(r, g, b, self.eps)
            if not np.all(np.isfinite(w)):
                raise ValueError(f"weight standardisation made layer {k}'s effective weights non-finite")
            net.layers[k]._weight_array()[...] = w
            self._written.append(np.array(net.layers[k].weight))

    def grads(self, weight_grads: Sequence[Optional[np.ndarray]]) -> List[np.ndarray]:
        """Gradients of :meth:`params` from the learner's per-layer gradients of the
        effective weights (one entry per layer of the network, None for layers without
        weight; a learner that also returns bias gradients is rejected)."""
        net = self._need_net()
        if len(weight_grads) != len(net.layers):
            raise ValueError(f"weight standardisation needs one weight gradient per layer "
                             f"({len(net.layers)}), got {len(weight_grads)} (bias gradients are "
                             "not supported with it)")
        out: List[np.ndarray] = []
        fn = _exact_grads if self.grad == "exact" else _code_grads
        for k, r, g, b in zip(self.layers, self.raw, self.gain, self.shift):
            gw = weight_grads[k]
            if gw is None:
                gw = np.zeros_like(r)
            gw = _checked_grad(gw, r)
            out += list(fn(gw, r, g, b, self.eps))
        return out

    def sync(self) -> bool:
        """Take into (g, b) any change of the layers' weights since :meth:`apply` (e.g. the
        learner's firing-rate initialisation, which rescales them on the first batch): per
        channel, g and b are refitted by least squares so that x * g + b equals the new
        weights, x the standardised v. Returns whether anything changed. ValueError when the
        new weights are not such a function of x (changed in another way)."""
        net = self._need_net()
        changed = False
        for i, k in enumerate(self.layers):
            w = net.layers[k]._weight_array()
            if np.array_equal(w, self._written[i]):
                continue
            C = w.shape[0]
            v2 = self.raw[i].reshape(C, -1)
            mean, s = _stats(v2, self.eps)
            x = (v2 - mean) / s
            w2 = np.asarray(w, dtype=np.float64).reshape(C, -1)
            xc = x - x.mean(axis=1, keepdims=True)
            denom = (xc * xc).sum(axis=1)
            g = np.where(denom > 0, (xc * w2).sum(axis=1) / np.where(denom > 0, denom, 1.0), 0.0)
            b = (w2 - g[:, None] * x).mean(axis=1)
            fit = x * g[:, None] + b[:, None]
            scale = max(float(np.max(np.abs(w2))), np.finfo(float).tiny)
            if float(np.max(np.abs(fit - w2))) > SYNC_TOL * scale:
                raise ValueError(f"layer {k}'s weights were changed outside the weight "
                                 "standardisation in a way it cannot represent (not a per-channel "
                                 "affine map of the standardised raw weights)")
            self.gain[i][...] = g
            self.shift[i][...] = b
            changed = True
        if changed:
            self.apply()
        return changed

    # ---- checkpoints ------------------------------------------------------------------
    def state_arrays(self) -> Dict[str, np.ndarray]:
        """The arrays a checkpoint stores (``reparam_<layer>_v/g/b``)."""
        self._need_net()
        out = {}
        for k, r, g, b in zip(self.layers, self.raw, self.gain, self.shift):
            out[f"reparam_{k}_v"] = r
            out[f"reparam_{k}_g"] = g
            out[f"reparam_{k}_b"] = b
        return out

    def config(self) -> Dict[str, Any]:
        return {"name": self.name, "grad": self.grad, "eps": self.eps, "layers": list(self.layers),
                "raw_scale": self.raw_scale}

    def restore(self, config: Dict[str, Any], arrays: Dict[str, np.ndarray], path: str = "checkpoint") -> None:
        """Load (v, g, b) written by :meth:`state_arrays` into the attached network's
        layout (the settings must match) and write the effective weights."""
        self._need_net()
        if config.get("name") != self.name or config.get("grad") != self.grad \
                or float(config.get("eps", -1)) != self.eps or list(config.get("layers", [])) != self.layers \
                or float(config.get("raw_scale", 1.0)) != self.raw_scale:  # (older files: 1)
            raise ValueError(f"{path} was written with reparam {config!r}, not {self.config()!r}")
        for i, k in enumerate(self.layers):
            for name, dst in (("v", self.raw[i]), ("g", self.gain[i]), ("b", self.shift[i])):
                a = arrays.get(f"reparam_{k}_{name}")
                if a is None or a.shape != dst.shape:
                    raise ValueError(f"{path}: reparam {name} of layer {k} does not match the network "
                                     f"({None if a is None else a.shape} vs {dst.shape})")
                dst[...] = a
        self.apply()


def make_reparam(spec: Any) -> Optional[WeightStandardization]:
    """None, "standardize" (exact gradients) or a WeightStandardization instance."""
    if spec is None:
        return None
    if isinstance(spec, WeightStandardization):
        return spec
    if isinstance(spec, str):
        v.choice("reparam", spec, REPARAMS)
        return WeightStandardization()
    raise TypeError(f"reparam must be None, 'standardize' or a WeightStandardization, "
                    f"got {type(spec).__name__}")
