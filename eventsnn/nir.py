"""NIR interoperability: export a Sequential to a ``nir.NIRGraph`` and import NIR graphs.

NIR (the Neuromorphic Intermediate Representation, package ``nir``) defines its neurons
by ODEs in continuous time, with time in seconds (eventsnn: ms). A neuron node's input
is the sum of weighted Dirac impulses coming out of the Affine/Linear/Conv2d node before
it:

* ``CubaLIF``: ``tau_syn di/dt = -i + w_in x``, ``tau_mem dv/dt = (v_leak - v) + r i``; an
  impulse of weight W makes i jump by ``w_in W / tau_syn``, so v follows
  ``(r w_in W / tau_mem) eps(t)`` with eps the SRM kernel; spike when v passes
  v_threshold, then v <- v_reset. This is :class:`eventsnn.SRM` with
  ``reset="membrane", t_ref=0`` (v_leak = v_reset = 0).
* ``LIF``: ``tau dv/dt = (v_leak - v) + r x``; an impulse of weight W makes v jump by
  ``r W / tau``: :class:`eventsnn.LIF`.

Export writes r = tau_mem (in s) and w_in = 1, so the NIR weights are eventsnn's weights
unchanged and v_threshold is theta; the time constants in ms are also kept in the nodes'
metadata (``eventsnn_*_ms``), which makes a round trip bit-exact. Import folds r, w_in and
the threshold of each layer into its weights (see :func:`from_nir`). docs/nir.md has the
derivation, the conventions of snnTorch's and Norse's exporters, and what is rejected.
"""
from __future__ import annotations

import os

import numpy as np

from . import _validate as v
from ._constants import MAX_LAYER_SIZE, MAX_MAGNITUDE
from .layers import AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d
from .network import Sequential
from .neurons import LIF, SRM
from typing import Any, Optional

#: ms per second: NIR time constants are in s, eventsnn's in ms
MS_PER_S = 1000.0
_INSTALL = "NIR support needs the nir package: pip install eventsnn[nir]"


def _nir():
    try:
        import nir
    except ImportError:
        raise ImportError(_INSTALL) from None
    return nir


# ---- export ----------------------------------------------------------------------------------
def to_nir(net: Sequential) -> Any:
    """The NIR graph of a Sequential network (a ``nir.NIRGraph``).

    Every Dense/Conv2d layer becomes a Linear/Conv2d node followed by its neuron node:
    ``SRM(reset="membrane", t_ref=0)`` -> CubaLIF (tau_syn = tau_s, tau_mem = tau_m in s,
    r = tau_mem, w_in = 1, v_threshold = theta, v_leak = v_reset = 0), ``LIF(t_ref=0)`` ->
    LIF (tau = tau_m in s, r = tau, v_threshold = theta). AvgPool2d(k, adjusted=False) ->
    AvgPool2d (kernel k, stride k, padding 0); Flatten -> Flatten. Per-neuron parameters
    are arrays of the layer's shape. Node names are ``"<layer>_<kind>"``.

    Raises ValueError naming the layer for what NIR cannot express: ``reset="full"``,
    ``t_ref > 0``, MaxPool2d, ``AvgPool2d(adjusted=True)`` (its backward pass; the
    forward pass equals ``adjusted=False``), biases.
    """
    nir = _nir()
    if not isinstance(net, Sequential):
        raise TypeError(f"net must be an eventsnn.Sequential, got {type(net).__name__}")
    net._reject_biases("NIR export (to_nir)")
    net._check_weights()
    nodes = {"input": nir.Input(input_type=np.array(net.in_shape))}
    order = ["input"]
    for k, (layer, nrn) in enumerate(zip(net.layers, net.layer_neurons)):
        what = f"layer {k} ({layer!r})"
        if isinstance(layer, Dense):
            nodes[f"{k}_linear"] = nir.Linear(weight=layer._weight_array().copy())
            order.append(f"{k}_linear")
        elif isinstance(layer, Conv2d):
            C, H, W = layer.in_shape
            s, p = layer.stride, layer.padding
            nodes[f"{k}_conv2d"] = nir.Conv2d(
                input_shape=(H, W), weight=layer._weight_array().copy(), stride=(s, s), padding=(p, p),
                dilation=(1, 1), groups=1, bias=np.zeros(layer.out_channels))
            order.append(f"{k}_conv2d")
        elif isinstance(layer, MaxPool2d):
            raise ValueError(f"{what}: NIR has no max pooling node; to_nir cannot export MaxPool2d")
        elif isinstance(layer, AvgPool2d):
            if layer.adjusted:
                raise ValueError(
                    f"{what}: adjusted average pooling changes the backward pass, which NIR "
                    "cannot express; its forward pass equals AvgPool2d(k, adjusted=False): set "
                    "layer.adjusted = False to export it")
            kk = np.array([layer.kernel_size] * 2)
            nodes[f"{k}_avgpool2d"] = nir.AvgPool2d(kernel_size=kk, stride=kk.copy(),
                                                    padding=np.zeros(2, np.int64))
            order.append(f"{k}_avgpool2d")
        elif isinstance(layer, Flatten):
            nodes[f"{k}_flatten"] = nir.Flatten(input_type={"input": np.array(layer.in_shape)},
                                                start_dim=0, end_dim=-1)
            order.append(f"{k}_flatten")
        else:
            raise TypeError(f"{what}: to_nir does not know this layer type")
        if layer.has_neurons:
            name, node = _neuron_node(nir, nrn, layer.out_shape, what)
            nodes[f"{k}_{name}"] = node
            order.append(f"{k}_{name}")
    nodes["output"] = nir.Output(output_type=np.array(net.out_shape))
    order.append("output")
    edges = list(zip(order[:-1], order[1:]))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"source": "eventsnn"})


def _neuron_node(nir, nrn, shape, what):
    if nrn.t_ref != 0:
        raise ValueError(f"{what}: t_ref={nrn.t_ref} ms > 0; NIR neurons have no refractory "
                         "period (export needs t_ref=0)")

    def full(x):
        return np.full(shape, float(x))

    if isinstance(nrn, LIF):
        tau = nrn.tau_m / MS_PER_S
        return "lif", nir.LIF(tau=full(tau), r=full(tau), v_leak=full(0.0),
                              v_threshold=full(nrn.theta), v_reset=full(0.0),
                              metadata={"eventsnn_tau_ms": nrn.tau_m})
    if nrn.reset != "membrane":
        raise ValueError(f"{what}: reset={nrn.reset!r}; NIR's CubaLIF resets the membrane only "
                         "(the synaptic current keeps decaying): export needs "
                         "SRM(reset='membrane')")
    tau_m, tau_s = nrn.tau_m / MS_PER_S, nrn.tau_s / MS_PER_S
    return "cubalif", nir.CubaLIF(tau_syn=full(tau_s), tau_mem=full(tau_m), r=full(tau_m),
                                  v_leak=full(0.0), v_threshold=full(nrn.theta),
                                  v_reset=full(0.0), w_in=full(1.0),
                                  metadata={"eventsnn_tau_mem_ms": nrn.tau_m,
                                            "eventsnn_tau_syn_ms": nrn.tau_s})


# ---- import ----------------------------------------------------------------------------------
def from_nir(graph: Any, dt: Optional[float] = None) -> Sequential:
    """A Sequential network from a NIR graph (a ``nir.NIRGraph`` or the path of a file
    written by ``nir.write``).

    The graph must be a chain Input -> ... -> Output of: Affine (zero bias) / Linear /
    Conv2d nodes, each followed by a CubaLIF or LIF node; AvgPool2d and SumPool2d (kernel =
    stride, no padding); Flatten (to one dimension; leading Flatten nodes flatten the
    input); Identity. Each weight node and the neuron node after it become one Dense or
    Conv2d layer whose weights carry every factor of the ODEs: for CubaLIF
    ``W r w_in / tau_mem`` (for LIF ``W r / tau``), times ``dt`` (below), times
    ``theta / v_threshold``. The layers share one neuron model when their time constants
    and neuron types agree (theta = the first layer's v_threshold; the others' thresholds
    fold into their weights), else each layer gets its own neuron (``neurons=``).
    Time constants are converted from s to ms.

    Parameters
    ----------
    graph : nir.NIRGraph, str or os.PathLike
    dt : float or None
        None (default): NIR's definition, every event (input or spike) is a Dirac impulse
        of its weight. A float (s): the graph was written by a discrete-time exporter with
        step ``dt`` that treats an event as a one-step pulse of height 1 (area dt) -- the
        convention of snnTorch (``r = tau / dt``, ``w_in = tau_syn / dt``, dt = 1e-4 s):
        every weight is multiplied by dt, so a spike of weight W raises snnTorch's Leaky
        membrane by W, as in its own update. Time constants are unaffected.

    Raises ValueError naming the node for anything eventsnn cannot express exactly:
    non-zero bias, v_leak or v_reset, parameters that differ within a layer, recurrent or
    branching edges, subgraphs, node types without an eventsnn counterpart (e.g. LI, IF,
    Delay, MaxPool), tau_syn == tau_mem, pooling with stride != kernel or padding.
    """
    nir = _nir()
    if isinstance(graph, (str, os.PathLike)):
        path = os.fspath(graph)
        if not os.path.exists(path):
            raise ValueError(f"graph: no NIR file at {path!r}")
        try:
            graph = nir.read(path, type_check=False)
        except (MemoryError, KeyboardInterrupt):
            raise
        except Exception as exc:  # h5py raises OSError, KeyError, ... on a corrupt file
            raise ValueError(f"graph: {path} is not a readable NIR file "
                             f"({type(exc).__name__}: {' '.join(str(exc).split())[:160]})") from None
    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(f"graph must be a nir.NIRGraph or a path to a NIR file, got "
                        f"{type(graph).__name__}")
    area = 1.0 if dt is None else v.positive_float("dt", dt)
    chain = _chain(nir, graph)
    return _build(nir, chain, area)


def _chain(nir, graph):
    """The nodes of a chain graph from its Input to its Output, as (name, node) pairs."""
    nodes = dict(graph.nodes)
    for name, node in nodes.items():
        if isinstance(node, nir.NIRGraph):
            raise ValueError(f"node {name!r} is a subgraph (NIRGraph); eventsnn imports chains of "
                             "primitive nodes (recurrent layers such as snnTorch's RLeaky/RSynaptic "
                             "export as subgraphs and are not supported)")
    succ, pred = {n: [] for n in nodes}, {n: [] for n in nodes}
    for edge in graph.edges:
        a, b = (str(x.decode() if isinstance(x, bytes) else x) for x in edge)
        if a not in nodes or b not in nodes:
            raise ValueError(f"edge ({a!r}, {b!r}) names a node the graph does not have")
        if a == b:
            raise ValueError(f"node {a!r} has a recurrent edge to itself; eventsnn networks are "
                             "feed-forward")
        succ[a].append(b)
        pred[b].append(a)
    for n in nodes:
        if len(pred[n]) > 1:
            raise ValueError(f"node {n!r} ({type(nodes[n]).__name__}) has {len(pred[n])} incoming "
                             f"edges (from {pred[n]}): recurrent or merging connections are not "
                             "supported; eventsnn imports chains")
        if len(succ[n]) > 1:
            raise ValueError(f"node {n!r} ({type(nodes[n]).__name__}) has {len(succ[n])} outgoing "
                             f"edges (to {succ[n]}): branching is not supported; eventsnn imports "
                             "chains")
    inputs = [n for n, node in nodes.items() if isinstance(node, nir.Input)]
    roots = [n for n in nodes if not pred[n]]
    if len(inputs) > 1:
        raise ValueError(f"the graph has {len(inputs)} Input nodes ({inputs}); eventsnn takes one")
    start = inputs[0] if inputs else (roots[0] if len(roots) == 1 else None)
    if start is None:
        raise ValueError("the graph has no Input node and no single root node (a cycle?)")
    chain, seen, n = [], set(), start
    while True:
        if n in seen:
            raise ValueError(f"node {n!r} closes a cycle: recurrent graphs are not supported")
        seen.add(n)
        chain.append((n, nodes[n]))
        if not succ[n]:
            break
        n = succ[n][0]
    missing = sorted(set(nodes) - seen)
    if missing:
        raise ValueError(f"nodes {missing} are not on the path from the input to the output "
                         "(recurrent or disconnected parts are not supported)")
    return chain


def _shape(x, name):
    if x is None:
        raise ValueError(f"node {name!r} has no shape (input_type)")
    arr = _real(x, name, "shape").ravel()
    if arr.size == 0 or not np.all(arr >= 1) or not np.all(arr == np.round(arr)) \
            or np.any(arr > MAX_LAYER_SIZE):
        raise ValueError(f"node {name!r} has an invalid shape {x}")
    return tuple(int(d) for d in arr)


def _pair(x, name, what):
    """An int or a pair of equal ints (eventsnn's square kernels, strides, paddings)."""
    arr = _real(x, name, what).ravel()
    if arr.size == 1:
        arr = np.repeat(arr, 2)
    if arr.size != 2 or arr[0] != arr[1] or arr[0] != int(arr[0]):
        raise ValueError(f"node {name!r}: {what} {x!r} must be the same integer in both "
                         "dimensions (eventsnn layers are square)")
    return int(arr[0])


def _real(x, name, field):
    """A node parameter as a float64 array: real numbers only (a complex array would lose its
    imaginary part, a string array fail with numpy's message)."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"node {name!r}: {field} must hold real numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64)


def _uniform(node, field, name, size):
    """The value of a per-neuron parameter array that must be uniform within the layer."""
    arr = _real(getattr(node, field), name, field)
    if arr.size not in (1, size):
        raise ValueError(f"node {name!r}: {field} has {arr.size} entries, the layer has {size} "
                         "neurons")
    flat = arr.ravel()
    if not np.all(np.isfinite(flat)):
        raise ValueError(f"node {name!r}: {field} holds NaN or inf")
    if not np.all(flat == flat[0]):
        raise ValueError(f"node {name!r}: {field} differs between neurons (from {flat.min()} to "
                         f"{flat.max()}); eventsnn layers share one neuron model: parameters must "
                         "be uniform within a layer")
    return float(flat[0])


def _ms(seconds, node, key):
    """seconds -> ms; the exact ms value of an eventsnn export when its metadata holds it."""
    meta = getattr(node, "metadata", None) or {}
    if key in meta:
        try:
            ms = float(np.asarray(meta[key]).ravel()[0])
        except (TypeError, ValueError, IndexError):
            ms = None
        if ms is not None and ms / MS_PER_S == seconds:
            return ms
    return seconds * MS_PER_S


def _neuron(nir, node, name, size):
    """(kind, eventsnn time constants, v_threshold, gain) of a neuron node, gain being the
    membrane jump (CubaLIF: peak scale) per unit impulse weight: r w_in / tau_mem (r / tau)."""
    def get(field):
        return _uniform(node, field, name, size)

    for field in ("v_leak", "v_reset"):
        val = get(field)
        if val != 0.0:
            raise ValueError(f"node {name!r}: {field}={val}; eventsnn neurons rest at and reset to "
                             f"0, so {field} must be 0")
    v_th = get("v_threshold")
    if v_th <= 0:
        raise ValueError(f"node {name!r}: v_threshold={v_th} must be > 0")
    if isinstance(node, nir.CubaLIF):
        tau_mem, tau_syn = get("tau_mem"), get("tau_syn")
        if tau_mem <= 0 or tau_syn <= 0:
            raise ValueError(f"node {name!r}: tau_mem={tau_mem} s and tau_syn={tau_syn} s must be > 0")
        if tau_mem == tau_syn:
            raise ValueError(f"node {name!r}: tau_syn == tau_mem ({tau_mem} s) is the alpha-kernel "
                             "limit, which eventsnn's SRM does not support")
        gain = (get("r") / tau_mem) * get("w_in")
        taus = (_ms(tau_mem, node, "eventsnn_tau_mem_ms"), _ms(tau_syn, node, "eventsnn_tau_syn_ms"))
        return "cubalif", taus, v_th, gain
    tau = get("tau")
    if tau <= 0:
        raise ValueError(f"node {name!r}: tau={tau} s must be > 0")
    return "lif", (_ms(tau, node, "eventsnn_tau_ms"),), v_th, get("r") / tau


def _weight(node, field, name):
    w = _real(getattr(node, field), name, field)
    if not np.all(np.isfinite(w)):
        raise ValueError(f"node {name!r}: {field} holds NaN or inf")
    return w


def _zero_bias(node, name):
    b = getattr(node, "bias", None)
    if b is not None and np.any(_real(b, name, "bias") != 0):
        raise ValueError(f"node {name!r} ({type(node).__name__}) has a non-zero bias; a bias is a "
                         "constant input current, which eventsnn's event engine does not have")


def _build(nir, chain, area):
    first_name, first = chain[0]
    if isinstance(first, nir.Input):
        shape = _shape(first.input_type.get("input") if isinstance(first.input_type, dict)
                       else first.input_type, first_name)
        while len(shape) > 3 and shape[0] == 1:  # a batch dimension some exporters keep
            shape = shape[1:]
        body = chain[1:]
    else:
        shape = _shape(first.input_type.get("input"), first_name)
        body = chain
    if body and isinstance(body[-1][1], nir.Output):
        body = body[:-1]
    layers, specs = [], []   # specs: per layer, None or (kind, taus, v_th, gain)
    pending = None           # (layer, weight, node name) awaiting its neuron node
    sum_scale = 1.0          # SumPool2d factors waiting for the next weight node
    for name, node in body:
        if type(node).__name__ == "Identity":  # not exported by every nir version
            continue
        if isinstance(node, (nir.Affine, nir.Linear, nir.Conv2d)) and pending is not None:
            raise ValueError(f"node {name!r} follows weight node {pending[2]!r} without a neuron "
                             "node between them; eventsnn layers are weights followed by neurons")
        if not isinstance(node, (nir.CubaLIF, nir.LIF, nir.Affine, nir.Linear, nir.Conv2d)) \
                and pending is not None:
            raise ValueError(f"weight node {pending[2]!r} is followed by {name!r} "
                             f"({type(node).__name__}), not by a CubaLIF or LIF node")
        if isinstance(node, (nir.Affine, nir.Linear)):
            _zero_bias(node, name)
            w = _weight(node, "weight", name)
            if w.ndim != 2:
                raise ValueError(f"node {name!r}: weight must be 2-D (n_out, n_in), got shape {w.shape}")
            n_in = int(np.prod(shape))
            if w.shape[1] != n_in:
                raise ValueError(f"node {name!r}: weight takes {w.shape[1]} inputs but follows a "
                                 f"layer of shape {shape}")
            pending = (Dense(n_in, w.shape[0]), w * sum_scale, name)
            sum_scale = 1.0
            shape = (w.shape[0],)
        elif isinstance(node, nir.Conv2d):
            _zero_bias(node, name)
            w = _weight(node, "weight", name)
            if w.ndim != 4 or w.shape[2] != w.shape[3]:
                raise ValueError(f"node {name!r}: weight must be (C_out, C_in, k, k), got {w.shape}")
            if int(node.groups) != 1:
                raise ValueError(f"node {name!r}: groups={node.groups}; eventsnn convolutions have groups=1")
            if _pair(node.dilation, name, "dilation") != 1:
                raise ValueError(f"node {name!r}: dilation {node.dilation}; eventsnn convolutions "
                                 "have dilation 1")
            k = int(w.shape[2])
            stride = _pair(node.stride, name, "stride")
            padding = node.padding.decode() if isinstance(node.padding, bytes) else node.padding
            if isinstance(padding, str):
                if padding == "valid":
                    pad = 0
                elif stride == 1 and k % 2 == 1:
                    pad = (k - 1) // 2
                else:
                    raise ValueError(f"node {name!r}: padding='same' needs stride 1 and an odd kernel")
            else:
                pad = _pair(padding, name, "padding")
            if len(shape) != 3 or shape[0] != w.shape[1]:
                raise ValueError(f"node {name!r}: Conv2d with {w.shape[1]} input channels follows a "
                                 f"layer of shape {shape}; it needs (C_in, H, W)")
            layer = Conv2d(shape, w.shape[0], k, stride=stride, padding=pad)
            pending = (layer, w * sum_scale, name)
            sum_scale = 1.0
            shape = layer.bind(shape)
        elif isinstance(node, (nir.CubaLIF, nir.LIF)):
            if pending is None:
                raise ValueError(f"neuron node {name!r} is not fed by an Affine, Linear or Conv2d "
                                 "node; eventsnn neurons take weighted inputs")
            layer, w, _ = pending
            spec = _neuron(nir, node, name, int(np.prod(shape)))
            layers.append((layer, w))
            specs.append(spec)
            pending = None
        elif isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
            if not layers:
                raise ValueError(f"node {name!r}: pooling before the first weighted layer; an "
                                 "eventsnn network starts with a Dense or Conv2d layer")
            k = _pair(node.kernel_size, name, "kernel_size")
            if _pair(node.stride, name, "stride") != k:
                raise ValueError(f"node {name!r}: stride {node.stride} differs from kernel_size "
                                 f"{node.kernel_size}; eventsnn pools non-overlapping windows")
            if _pair(node.padding, name, "padding") != 0:
                raise ValueError(f"node {name!r}: padding {node.padding}; eventsnn pools without padding")
            if len(shape) != 3:
                raise ValueError(f"node {name!r}: pooling needs a (C, H, W) input, got {shape}")
            layer = AvgPool2d(k, adjusted=False)
            shape = layer.bind(shape)
            layers.append((layer, None))
            specs.append(None)
            if isinstance(node, nir.SumPool2d):
                sum_scale *= k * k  # sum = k^2 average: folded into the next weights
        elif isinstance(node, nir.Flatten):
            nd = len(shape)
            start, end = int(node.start_dim) % nd, int(node.end_dim) % nd
            kept = shape[:start] + (int(np.prod(shape[start:end + 1])),) + shape[end + 1:]
            if sum(d != 1 for d in kept) > 1:
                raise ValueError(f"node {name!r}: Flatten(start_dim={node.start_dim}, "
                                 f"end_dim={node.end_dim}) of shape {shape} leaves several "
                                 "dimensions; eventsnn flattens to one dimension")
            if layers:
                layer = Flatten()
                shape = layer.bind(shape)
                layers.append((layer, None))
                specs.append(None)
            else:
                shape = (int(np.prod(shape)),)
        else:
            raise ValueError(f"node {name!r} ({type(node).__name__}) has no eventsnn counterpart; "
                             "from_nir supports Affine (zero bias), Linear, Conv2d, CubaLIF, LIF, "
                             "AvgPool2d, SumPool2d, Flatten and Identity")
    if pending is not None:
        raise ValueError(f"weight node {pending[2]!r} is not followed by a neuron node; eventsnn "
                         "layers end in CubaLIF or LIF neurons")
    if sum_scale != 1.0:
        raise ValueError("a SumPool2d node is not followed by a weight node, which its k^2 factor "
                         "would fold into; eventsnn's pooling averages")
    if not any(spec is not None for spec in specs):
        raise ValueError("the graph has no neuron layer (weight node + CubaLIF/LIF node)")
    return _assemble(layers, specs, area)


def _assemble(layers, specs, area):
    def model(spec, theta):
        kind, taus, _, _ = spec
        if kind == "lif":
            return LIF(tau_m=taus[0], theta=theta)
        return SRM(tau_m=taus[0], tau_s=taus[1], theta=theta, reset="membrane", t_ref=0.0)

    neuron_specs = [s for s in specs if s is not None]
    kinds = {(s[0], s[1]) for s in neuron_specs}
    shared = len(kinds) == 1
    theta0 = neuron_specs[0][2]
    neuron = model(neuron_specs[0], theta0)
    neurons = []
    for spec in specs:
        if spec is None:
            neurons.append(None)
        else:
            neurons.append(None if shared else model(spec, spec[2]))
    net = Sequential(*[layer for layer, _ in layers], neuron=neuron, rng=0,
                     neurons=None if shared else neurons)
    for (layer, w), spec in zip(layers, specs):
        if spec is None:
            continue
        theta = theta0 if shared else spec[2]
        factor = spec[3] * area * (theta / spec[2])
        scaled = w * factor
        if area != 1.0 and w.size and not (np.max(np.abs(scaled)) <= MAX_MAGNITUDE):
            raise ValueError(f"dt={area!r} scales the weights of {layer!r} to magnitude "
                             f"{float(np.max(np.abs(scaled))):.6g}, beyond {MAX_MAGNITUDE:g} "
                             "(larger values overflow the membrane computation)")
        layer.weight = scaled
    return net
