"""Property-testing helpers for event-mode networks and their timing gradients.

Hypothesis strategies that draw spike trains, small networks and weight arrays, and
:func:`assert_gradient_sum_invariant`, the check of Zhu et al.'s Eq. 8: the sum of dL/dt
over a level's events equals the sum over the events of the level below, through Dense,
Conv2d, max pooling and adjusted average pooling (not through plain average pooling).
See docs/gradients.md for a worked example.

Requires ``hypothesis`` (``pip install eventsnn[test]``).
"""
from __future__ import annotations

import numpy as np

try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as exc:  # pragma: no cover - hypothesis is a test extra
    raise ImportError("eventsnn.testing needs hypothesis: pip install hypothesis") from exc

from .layers import AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d
from .network import Sequential
from .neurons import SRM
from .spikes import SpikeTrains
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

from .event.backward import Gradients
from .event.forward import Record
from .layers import Layer
from .neurons import LIF

__all__ = ["spike_trains", "weight_arrays", "networks", "network_inputs",
           "assert_gradient_sum_invariant", "gradient_sums", "POOLS"]

#: names of the pooling choices :func:`networks` understands
POOLS = (None, "max", "avg", "adjusted")


@st.composite
def spike_trains(draw: Callable[..., Any], n_neurons: int, min_events: int = 0,
                 max_events: int = 40, t_max: float = 20.0, graded: bool = False,
                 distinct_times: bool = False) -> SpikeTrains:
    """SpikeTrains over ``n_neurons`` neurons with times in [0, t_max] ms.

    graded : values drawn in [0.1, 2] instead of 1. distinct_times : no two events share a
    time (useful for finite differences of single event times)."""
    n = draw(st.integers(min_events, max_events))
    if distinct_times:  # increasing times from positive gaps (unique lists shrink poorly)
        gaps = np.asarray(draw(st.lists(st.floats(1e-3, 1.0), min_size=n, max_size=n)))
        times = np.cumsum(gaps) - gaps[:1].sum() if n else gaps
        if n > 1 and times[-1] > t_max:
            times = times * (t_max / times[-1])
    else:
        time = st.floats(0.0, t_max, allow_nan=False, allow_infinity=False)
        times = draw(st.lists(time, min_size=n, max_size=n))
    neurons = draw(st.lists(st.integers(0, n_neurons - 1), min_size=n, max_size=n))
    values = None
    if graded:
        values = draw(st.lists(st.floats(0.1, 2.0), min_size=n, max_size=n))
    return SpikeTrains(times, neurons, n_neurons, values)


def weight_arrays(shape: Union[int, Tuple[int, ...]], low: float = -0.5,
                  high: float = 1.5) -> st.SearchStrategy[np.ndarray]:
    """Strategy for a float64 weight array of ``shape`` with entries in [low, high]."""
    return hnp.arrays(np.float64, shape, elements=st.floats(low, high, allow_nan=False,
                                                            allow_infinity=False))


def _layer_weights(net, seed, low, high, scale):
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        if layer.has_weight:
            fan_in = layer.weight[0].size
            layer.weight = rng.uniform(low, high, layer.weight_shape) * scale / np.sqrt(fan_in)


@st.composite
def networks(draw: Callable[..., Any], kinds: Sequence[str] = ("dense", "conv"),
             pools: Sequence[Optional[str]] = POOLS, neuron: Union[SRM, LIF, None] = None,
             max_width: int = 8, weight_range: Tuple[float, float] = (-0.3, 1.5),
             scale: Tuple[float, float] = (3.0, 10.0)) -> Sequential:
    """A small random Sequential network.

    kinds : "dense" (Dense-Dense) and/or "conv" (Conv2d [-pool] -Flatten-Dense).
    pools : pooling choices for conv networks among :data:`POOLS`.
    neuron : an SRM (default: SRM(tau_m=5, tau_s=3, theta=1, reset="full")).
    Weights are uniform in ``weight_range`` times a drawn gain in ``scale`` / sqrt(fan-in),
    so that random inputs of a few tens of events make the layers fire."""
    neuron = neuron if neuron is not None else SRM()
    kind = draw(st.sampled_from(kinds))
    if kind == "dense":
        n_in = draw(st.integers(2, 12))
        hidden = draw(st.integers(1, max_width))
        n_out = draw(st.integers(1, 4))
        net = Sequential(Dense(n_in, hidden), Dense(hidden, n_out), neuron=neuron)
    else:
        c_in = draw(st.integers(1, 2))
        size = draw(st.integers(4, 6))
        c_out = draw(st.integers(1, 3))
        k = draw(st.integers(2, 3))
        stride = draw(st.integers(1, 2))
        padding = draw(st.integers(0, 1))
        conv = Conv2d((c_in, size, size), c_out, k, stride=stride, padding=padding)
        layers: List[Layer] = [conv]
        pool = draw(st.sampled_from(pools))
        out_hw = (size + 2 * padding - k) // stride + 1
        if pool is not None and out_hw >= 2:
            layers.append(MaxPool2d(2) if pool == "max" else AvgPool2d(2, adjusted=pool == "adjusted"))
            out_hw //= 2
        layers.append(Flatten())
        layers.append(Dense(c_out * out_hw * out_hw, draw(st.integers(1, 3))))
        net = Sequential(*layers, neuron=neuron)
    seed = draw(st.integers(0, 2 ** 32 - 1))
    gain = draw(st.floats(*scale))
    _layer_weights(net, seed, weight_range[0], weight_range[1], gain)
    return net


def network_inputs(net: Sequential, min_events: int = 1, max_events: int = 40,
                   t_max: float = 20.0, graded: bool = False,
                   distinct_times: bool = False) -> st.SearchStrategy[SpikeTrains]:
    """Strategy for an input SpikeTrains of ``net``."""
    return spike_trains(net.n_in, min_events=min_events, max_events=max_events, t_max=t_max,
                        graded=graded, distinct_times=distinct_times)


def gradient_sums(g: Gradients) -> List[Optional[float]]:
    """Sum of dL/dt over each level of a Gradients (input first); None for a level the
    pass did not compute (``input_grad=False``)."""
    return [None if t is None else float(np.sum(t)) for t in g.times]


def assert_gradient_sum_invariant(net: Sequential, rec: Record, g: Gradients,
                                  rtol: float = 1e-9, atol: float = 1e-12) -> None:
    """Assert Zhu et al.'s Eq. 8 layer by layer: the dL/dt summed over a level equals the
    sum over the level below.

    Spikes whose share was dropped (window h-sum S_k <= 0, see ``drop_nonpositive``) carry
    their gradient nowhere and are left out of the upper sum; a ``factor`` != 1 scales the
    lower sum. Raises AssertionError naming the first layer where the sum changes, which
    for plain average pooling (``AvgPool2d(adjusted=False)``) is expected: there the sum
    is not conserved (gradient flows to silent neurons).

    With ``reset="membrane"`` a spike passes its total adjoint a_k (``g.totals``: dL/dt_k
    plus what its neuron's later spikes pass back to it) to its inputs *and* to the
    neuron's previous spike, with shares that sum to 1 for either kernel; a dropped spike
    (Sh_k <= 0) then loses a_k, so the expected lower sum is
    factor * (sum of dL/dt over the level - sum of a_k over its dropped spikes)."""
    if len(g.times) != len(rec.spikes):
        raise ValueError(f"g has {len(g.times)} levels but rec has {len(rec.spikes)}")
    opts = getattr(g, "options", {}) or {}
    factor = opts.get("factor", 1.0)
    drop = opts.get("drop_nonpositive", True)
    for li in range(len(net.layers), 0, -1):
        layer = net.layers[li - 1]
        if g.times[li - 1] is None:   # not computed (input_grad=False): nothing below
            break
        upper = np.asarray(g.times[li], float)
        totals = getattr(g, "totals", None)
        totals = totals[li] if totals and li < len(totals) else None
        if layer.has_neurons:
            S = g.sums[li]
            carrying = S > 0 if drop else S != 0
            if totals is None:
                expect = factor * float(np.sum(upper[carrying]))
                scale = factor * float(np.sum(np.abs(upper[carrying])))
            else:  # membrane reset: a dropped spike loses its total adjoint
                lost = np.asarray(totals, float)[~carrying]
                expect = factor * (float(np.sum(upper)) - float(np.sum(lost)))
                scale = max(factor * (float(np.sum(np.abs(upper))) + float(np.sum(np.abs(lost)))),
                            float(np.sum(np.abs(g.times[li - 1]))))
        else:
            expect = float(np.sum(upper))
            scale = float(np.sum(np.abs(upper)))
        got = float(np.sum(g.times[li - 1]))
        if abs(got - expect) > atol + rtol * max(scale, abs(expect)):
            raise AssertionError(
                f"gradient sum changes through layer {li} ({layer!r}): level {li} carries "
                f"{expect!r}, level {li - 1} receives {got!r}")
