"""Event-driven timing backprop (Zhu et al. 2022, Eq. 12-14) over a simulated record.

Gradients flow only through recorded events, in reverse time, layer by layer from the
output; see ``eventsnn.event._backward`` for the per-layer formulas and
``docs/gradients.md`` for the semantics, the options and their defaults.
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from .. import _validate as v
from .._constants import MAX_FACTOR
from ..layers import AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d
from ..neurons import GRAD_KERNELS
from . import _adjoint, _backward
from .forward import Record
from typing import TYPE_CHECKING, Any, List, Optional, Sequence

from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from ..network import Sequential

#: defaults of the safeguards (documented in docs/gradients.md)
DEFAULT_OPTIONS = {
    "drop_nonpositive": True,   # drop the share of a spike whose window h-sum S_k <= 0
    "clamp": (-4.0, 0.0),       # clamp -1/(du/dt) in the weight gradient; None: no clamp
    "factor": 1.0,              # multiplies dL/dt passed to the level below (reference: 0.85)
}


@dataclass
class Gradients:
    """Result of :func:`backward`.

    weights : list, one entry per layer: dL/dW shaped like the layer's weight, None for
        layers without weight.
    times : list, one array per entry of ``rec.spikes`` (input first), dL/dt of each event
        (loss units per ms), aligned with that entry's ``times``; None for the levels
        below the first layer with weights when the pass ran with ``input_grad=False``.
    slopes : list, per level, du/dt at each spike of a neuron layer (1/ms; None for the
        input level and for pooling/Flatten levels).
    sums : list, per level, the window h-sums S_k of a neuron layer's spikes (None
        otherwise).
    dropped : list, per layer, the number of spikes whose time share was dropped
        (S_k <= 0) (0 for layers without neurons).
    options : the kernel, tau_grad, input_grad and safeguard options the pass used.
    totals : list, per level, reset="membrane" only: the total adjoint a_k of every spike
        of a neuron layer (dL/dt_k from above plus the effect of t_k on the neuron's later
        spikes, docs/gradients.md); None for the other levels and for reset="full".
    """

    weights: list
    times: list
    slopes: list = field(default_factory=list)
    sums: list = field(default_factory=list)
    dropped: list = field(default_factory=list)
    options: dict = field(default_factory=dict)
    totals: list = field(default_factory=list)


def _options(options):
    unknown = set(options) - set(DEFAULT_OPTIONS)
    if unknown:
        raise TypeError(f"backward got unknown options {sorted(unknown)}; "
                        f"known: {sorted(DEFAULT_OPTIONS)}")
    opts = dict(DEFAULT_OPTIONS)
    opts.update(options)
    if not isinstance(opts["drop_nonpositive"], (bool, np.bool_)):
        raise TypeError("drop_nonpositive must be a bool")
    clamp = opts["clamp"]
    if clamp is not None:
        try:
            lo, hi = (float(x) for x in clamp)
        except (TypeError, ValueError):
            raise TypeError("clamp must be None or a pair (low, high) of floats") from None
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi:
            raise ValueError(f"clamp must be a finite pair with low <= high, got {clamp}")
        opts["clamp"] = (lo, hi)
    opts["factor"] = v.real_in("factor", opts["factor"], -MAX_FACTOR, MAX_FACTOR)
    return opts


def _check_record(net, rec, name="rec"):
    if not isinstance(rec, Record):
        raise TypeError(f"{name} must be a Record returned by Sequential.simulate, "
                        f"got {type(rec).__name__}")
    if len(rec.spikes) != len(net.layers) + 1:
        raise ValueError(f"{name} has {len(rec.spikes)} levels but the network needs "
                         f"{len(net.layers) + 1} (input + one per layer)")
    if rec.spikes[0].n_neurons != net.n_in:
        raise ValueError(f"{name}.spikes[0] has {rec.spikes[0].n_neurons} neurons, the network "
                         f"takes {net.n_in}")
    for li, layer in enumerate(net.layers, start=1):
        if rec.spikes[li].n_neurons != layer.n_out:
            raise ValueError(f"{name}.spikes[{li}] has {rec.spikes[li].n_neurons} neurons but "
                             f"layer {li} ({layer!r}) has {layer.n_out}")
        if isinstance(layer, (MaxPool2d, AvgPool2d)):
            relay = rec.relays[li] if li < len(rec.relays) else None
            if relay is None:
                raise ValueError(f"{name}.relays[{li}] is missing: the record was not made by "
                                 "Sequential.simulate")


def _check_reset(net):
    net._reject_biases("event mode (timing backward)")
    net._check_weights()  # NaN/inf and magnitude, also after in-place edits
    net._require_srm_layers("the timing backward pass")


def _check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def _check_grad(name, grad, n):
    g = v.float_array(name, grad, ndim=1)
    if g.size != n:
        raise ValueError(f"{name} must have one entry per output spike ({n}), got {g.size}")
    return g


def backward(net: Sequential, rec: Record, grad_out: ArrayLike,
             kernel: str = "exp", tau_grad: float = 2.5, input_grad: bool = True,
             **options: Any) -> Gradients:
    """dL/dW and dL/dt of every event of a recorded sample.

    Parameters
    ----------
    net : Sequential
        The network that produced ``rec`` (with the same weights).
    rec : Record
        From ``net.simulate`` (one sample).
    grad_out : array (n_output_spikes,)
        dL/dt_k of every output spike, aligned with ``rec.spikes[-1].times``.
    kernel : {"exp", "depsilon"}
        Assignment kernel h: ``"exp"`` is exp(-s / tau_grad) (Zhu et al.), ``"depsilon"``
        is d eps / ds, with which (and ``clamp=None``) the pass is the exact derivative of
        the spike-time map.
    tau_grad : float
        Time constant (ms) of the ``"exp"`` kernel (default 2.5, as the reference code).
    input_grad : bool, default True
        Compute dL/dt of the input events (``g.times[0]``). Training needs only the weight
        gradients: with False the pass skips that work and ``g.times[l]`` is None for the
        levels below the first layer with weights (for a network starting with Dense or
        Conv2d: ``g.times[0]`` only).
    drop_nonpositive : bool, default True
        Drop the time share of a spike whose window h-sum S_k <= 0 (its dL/dt_k reaches no
        input). False keeps shares with S_k < 0 (S_k == 0 is always dropped).
    clamp : (low, high) or None, default (-4.0, 0.0)
        Clamp -1/(du/dt) at the spike in the weight gradient (reference code). None uses
        the true -1/(du/dt) (spikes with du/dt <= 0 then give no weight gradient).
    factor : float, default 1.0
        Multiplies the gradient passed from a neuron layer to the level below it (the
        reference code uses 0.85; 1.0 keeps the gradient-sum invariance exact).

    Networks of ``SRM(reset="membrane")`` neurons (with or without t_ref) go through the
    adjoint of ``eventsnn.event._adjoint`` (docs/gradients.md, "Membrane reset"): the
    same options, exact for ``kernel="depsilon", clamp=None``.

    Returns
    -------
    Gradients with ``.weights`` and ``.times`` (see :class:`Gradients`).
    """
    v.choice("kernel", kernel, GRAD_KERNELS)
    tau_grad = v.positive_float("tau_grad", tau_grad)
    opts = _options(options)
    input_grad = _check_bool("input_grad", input_grad)
    _check_reset(net)
    _check_record(net, rec)
    grad_out = _check_grad("grad_out", grad_out, len(rec.spikes[-1]))
    return _backward_checked(net, rec, grad_out, kernel, tau_grad, opts, _prepare(net),
                             input_grad)


def _prepare(net):
    """Per-layer arrays the kernels need, computed once (shared by threads): the transposed
    weight of a Dense layer (contiguous rows per input neuron), the flat weight and the
    geometry of a Conv2d layer (``_backward.conv_backward`` computes its links)."""
    prep = []
    for layer in net.layers:
        if isinstance(layer, Dense):
            prep.append(("dense", layer.weight_t.ravel()))   # the storage itself: no copy
        elif isinstance(layer, Conv2d):
            prep.append(("conv", np.ascontiguousarray(layer.weight.ravel()),
                         _backward.conv_geometry(layer)))
        elif isinstance(layer, MaxPool2d):
            prep.append(("max",))
        elif isinstance(layer, AvgPool2d):
            prep.append(("avg", layer.adjusted, float(layer.kernel_size ** 2)))
        elif isinstance(layer, Flatten):
            prep.append(("flat",))
        else:
            raise TypeError(f"backward does not support layer {layer!r}")
    return prep


_EMPTY_I = np.zeros(0, np.int64)


def _lowest_level(net, input_grad):
    """The pass runs the layers above this level: 0 with ``input_grad``, else the input
    level of the first layer with weights, whose dL/dt (and that of lower levels, which
    only lead to the input) is then not computed."""
    if input_grad:
        return 0
    for li, layer in enumerate(net.layers):
        if layer.has_weight:
            return li
    return len(net.layers)


def _backward_checked(net, rec, grad_out, kernel, tau_grad, opts, prep, input_grad=True):
    layer_neurons = net.layer_neurons
    code = _backward.KERNEL_EXP if kernel == "exp" else _backward.KERNEL_DEPSILON
    clamp = opts["clamp"]
    lo, hi = clamp if clamp is not None else (0.0, 0.0)
    L = len(net.layers)
    lowest = _lowest_level(net, input_grad)
    times = [None] * (L + 1)
    slopes = [None] * (L + 1)
    sums = [None] * (L + 1)
    weights = [None] * L
    dropped = [0] * L
    times[L] = grad_out
    totals = [None] * (L + 1)
    for li in range(L, lowest, -1):
        layer = net.layers[li - 1]
        below, here = rec.spikes[li - 1], rec.spikes[li]
        g = times[li]
        p = prep[li - 1]
        need_in = input_grad or li - 1 > lowest
        if p[0] in ("dense", "conv"):
            nrn = layer_neurons[li - 1]
            block = _backward.block_length(nrn.tau_m, nrn.tau_s, code, tau_grad)
            common = (nrn.tau_m, nrn.tau_s, nrn.t_ref, code, tau_grad,
                      bool(opts["drop_nonpositive"]), clamp is not None, lo, hi, opts["factor"],
                      need_in, block)
            if nrn.reset == "membrane":  # adjoint of the reset dependence (docs/gradients.md)
                g_in, g_w, S, D, nd, totals[li] = _adjoint.layer_backward(
                    below, here, g, layer, nrn, code, tau_grad, opts, need_in)
            elif p[0] == "conv":
                g_in, g_w, S, D, nd = _backward.conv_backward(
                    below.times, below.neurons, below.values, here.times, here.neurons, g,
                    p[2], p[1], *common)
            else:
                g_in, g_w, S, D, nd = _backward.layer_backward(
                    below.times, below.neurons, below.values, here.times, here.neurons, g,
                    below.n_neurons, here.n_neurons, True, _EMPTY_I, _EMPTY_I, _EMPTY_I, p[1],
                    p[1].size, *common)
                # the kernel works on W^T
                g_w = np.ascontiguousarray(g_w.reshape(layer.n_in, layer.n_out).T)
            weights[li - 1] = g_w.reshape(layer.weight.shape)
            slopes[li], sums[li], dropped[li - 1] = D, S, int(nd)
            times[li - 1] = g_in if need_in else None
        elif p[0] in ("max", "avg"):
            src, winner = rec.relays[li]
            times[li - 1] = pool_backward(g, src, winner, p[0] == "max",
                                          p[1] if p[0] == "avg" else True,
                                          p[2] if p[0] == "avg" else 1.0)
        else:  # Flatten: events pass unchanged
            times[li - 1] = g.copy()
    used = dict(opts, kernel=kernel, tau_grad=tau_grad, input_grad=bool(input_grad))
    return Gradients(weights=weights, times=times, slopes=slopes, sums=sums, dropped=dropped,
                     options=used, totals=totals)


def pool_backward(g_out: np.ndarray, src: np.ndarray, winner: np.ndarray, is_max: bool,
                  adjusted: bool, k2: float) -> np.ndarray:
    """dL/dt of a pooling layer's source events from its relayed events' dL/dt.

    max: all of a relayed event's gradient to its winning source event; adjusted average:
    g / n to each of its n coincident source events; plain average: g / k^2 to each.
    Source events outside every window (src == -1) get 0."""
    out = np.zeros(src.size)
    ok = src >= 0
    if is_max:
        sel = ok & winner
        out[sel] = g_out[src[sel]]
    elif adjusted:
        n = np.bincount(src[ok], minlength=g_out.size)
        out[ok] = g_out[src[ok]] / n[src[ok]]
    else:
        out[ok] = g_out[src[ok]] / k2
    return out


def backward_many(net: Sequential, recs: Sequence[Record],
                  grad_outs: Sequence[ArrayLike], kernel: str = "exp",
                  tau_grad: float = 2.5, n_threads: Optional[int] = None,
                  input_grad: bool = True, **options: Any) -> List[Gradients]:
    """:func:`backward` of several records, in parallel threads (the kernels release the
    GIL). Returns a list of Gradients; results do not depend on ``n_threads``. Training
    passes ``input_grad=False`` (see :func:`backward`)."""
    v.choice("kernel", kernel, GRAD_KERNELS)
    tau_grad = v.positive_float("tau_grad", tau_grad)
    input_grad = _check_bool("input_grad", input_grad)
    opts = _options(options)
    _check_reset(net)
    if not isinstance(recs, (list, tuple)) or not isinstance(grad_outs, (list, tuple)):
        raise TypeError("recs and grad_outs must be lists")
    if len(recs) != len(grad_outs):
        raise ValueError(f"recs ({len(recs)}) and grad_outs ({len(grad_outs)}) differ in length")
    checked = []
    for s, (rec, g) in enumerate(zip(recs, grad_outs)):
        _check_record(net, rec, f"recs[{s}]")
        checked.append(_check_grad(f"grad_outs[{s}]", g, len(rec.spikes[-1])))
    prep = _prepare(net)

    def one(s):
        return _backward_checked(net, recs[s], checked[s], kernel, tau_grad, opts, prep,
                                 input_grad)

    if n_threads is None:
        import numba
        n_threads = numba.get_num_threads()
    n_threads = v.positive_int("n_threads", n_threads)
    if len(recs) <= 1 or n_threads == 1:
        return [one(s) for s in range(len(recs))]
    with ThreadPoolExecutor(max_workers=min(n_threads, len(recs))) as pool:
        return list(pool.map(one, range(len(recs))))
