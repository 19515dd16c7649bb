"""tonic-style structured arrays, in tonic's own conventions.

tonic stores events as numpy structured arrays with integer fields ``x``, ``y``, ``t``
(microseconds) and ``p`` for cameras, and ``t``, ``x``, ``p`` for 1-D (audio) sensors such
as the Spiking Heidelberg Digits (SHD: 700 channels, ``sensor_size=(700, 1, 1)``);
``sensor_size`` is ``(W, H, P)``: width, height, polarities. A boolean ``p`` (some tonic
datasets) reads as 0 / 1. The neuron of an event is ``p * H * W + y * W + x`` (y = 0 for
1-D events), the layer shape (C, H, W) = (P, H, W), and the time t / 1000 ms.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from .. import _validate as v
from ..spikes import SpikeTrains

_INT64_MAX_US = float(2 ** 63 - 1024)


def _sensor(sensor_size: Sequence[int]) -> Tuple[int, int, int]:
    from .recording import sensor_size3

    return sensor_size3(sensor_size)


def from_tonic(events: np.ndarray, sensor_size: Sequence[int]) -> SpikeTrains:
    """SpikeTrains of a tonic structured array (fields t, x, [y], [p]) from a sensor of
    ``sensor_size`` = (W, H, P). Events without a y field are 1-D (audio): H must be 1.
    Without a p field every event has p = 0. An event outside the sensor raises
    ValueError (nothing is dropped)."""
    W, H, P = _sensor(sensor_size)
    names = getattr(getattr(events, "dtype", None), "names", None)
    if not names or not {"t", "x"} <= set(names):
        raise TypeError("events must be a structured array with fields t and x (and y, p)")
    x = v.int_array("events['x']", events["x"], ndim=1, low=0, high=W)
    if "y" in names:
        y = v.int_array("events['y']", events["y"], ndim=1, low=0, high=H)
    else:
        if H != 1:
            raise ValueError(f"events have no y field (1-D, e.g. audio) but sensor_size {sensor_size} "
                             "has H != 1; use (n_channels, 1, P)")
        y = np.zeros_like(x)
    if "p" in names:
        p = np.asarray(events["p"])
        if p.dtype == np.bool_:
            p = p.astype(np.int64)
        p = v.int_array("events['p']", p, ndim=1, low=0, high=P)
    else:
        p = np.zeros_like(x)
    t = v.float_array("events['t']", events["t"], ndim=1) / 1000.0
    return SpikeTrains(t, p * H * W + y * W + x, P * H * W)


def to_tonic(spikes: SpikeTrains, sensor_size: Sequence[int]) -> np.ndarray:
    """tonic structured array of SpikeTrains on a sensor of ``sensor_size`` = (W, H, P):
    fields x, y, t, p (int64; t in microseconds, rounded to the nearest us), or t, x, p
    when H == 1 (1-D, audio). Times beyond int64 microseconds raise ValueError."""
    if not isinstance(spikes, SpikeTrains):
        raise TypeError(f"spikes must be a SpikeTrains, got {type(spikes).__name__}")
    W, H, P = _sensor(sensor_size)
    if W * H * P != spikes.n_neurons:
        raise ValueError(f"sensor_size {(W, H, P)} holds {W * H * P} neurons, not {spikes.n_neurons}")
    t_us = spikes.times * 1000.0
    if t_us.size and t_us.max() >= _INT64_MAX_US:
        raise ValueError(f"times up to {spikes.times.max()} ms do not fit int64 microseconds")
    if H == 1:
        out = np.zeros(len(spikes), dtype=[("t", "<i8"), ("x", "<i8"), ("p", "<i8")])
    else:
        out = np.zeros(len(spikes), dtype=[("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
        out["y"] = (spikes.neurons % (H * W)) // W
    out["t"] = np.round(t_us).astype(np.int64)
    out["p"] = spikes.neurons // (H * W)
    out["x"] = spikes.neurons % W
    return out
