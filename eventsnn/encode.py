"""Encoders: real-valued samples -> event streams (lists of SpikeTrains).

``X`` is an array (n_samples, *shape) with values in [0, 1] (e.g. digits / 16); feature
index f of the flattened sample (C order: c*H*W + y*W + x) becomes input neuron f.
Times in ms.

- :func:`current`: graded current events (Zhu et al.'s "real-valued spike current"): every
  feature x > threshold injects an event of value x at each of the given times.
- :func:`latency`: one spike per feature at t = t_max * (1 - x) (bright = early).
- :func:`poisson`: Poisson spike trains of rate x * max_rate (Hz) over [0, t_end) ms.
"""
from __future__ import annotations

from typing import Any, List, Sequence

import numpy as np
from numpy.typing import ArrayLike

from . import _validate as v
from .spikes import SpikeTrains


def _samples(X):
    X = v.float_array("X", X)
    if X.ndim < 2:
        raise ValueError(f"X must be (n_samples, *shape), got shape {X.shape}")
    if int(np.prod(X.shape[1:])) == 0:
        raise ValueError(f"X must have at least one feature per sample, got shape {X.shape}")
    if X.shape[0] == 0:
        return np.zeros((0, int(np.prod(X.shape[1:]))))
    if X.size and (X.min() < 0 or X.max() > 1):
        raise ValueError(f"X must lie in [0, 1], got range [{X.min()}, {X.max()}]")
    return X.reshape(X.shape[0], -1)


def current(X: ArrayLike, times: Sequence[float] = (0.0, 1.0, 2.0, 3.0, 4.0),
            threshold: float = 0.0) -> List[SpikeTrains]:
    """Graded events: feature value x (> threshold) as an event of value x at every time in
    ``times`` (ms). Returns a list of SpikeTrains, one per sample."""
    F = _samples(X)
    tt: np.ndarray = v.float_array("times", times, ndim=1)
    if tt.size == 0 or np.any(tt < 0):
        raise ValueError("times must be a non-empty list of times >= 0 ms")
    tt = np.unique(tt)
    threshold = v.finite_float("threshold", threshold)
    n = F.shape[1]
    out = []
    for row in F:
        idx = np.flatnonzero(row > threshold)
        t = np.repeat(tt, idx.size)
        i = np.tile(idx, tt.size)
        val = np.tile(row[idx], tt.size)
        out.append(SpikeTrains._trusted(t, i, val, n))  # time-major, neurons ascending
    return out


def latency(X: ArrayLike, t_max: float = 10.0, threshold: float = 0.0) -> List[SpikeTrains]:
    """One spike per feature x > threshold at t = t_max * (1 - x) ms."""
    F = _samples(X)
    t_max = v.positive_float("t_max", t_max)
    threshold = v.finite_float("threshold", threshold)
    out = []
    for row in F:
        idx = np.flatnonzero(row > threshold)
        out.append(SpikeTrains(t_max * (1.0 - row[idx]), idx, F.shape[1]))
    return out


#: most events ``poisson`` may draw for one call (expected count), before any allocation
MAX_POISSON_EVENTS = 1e9


def poisson(X: ArrayLike, t_end: float = 20.0, max_rate: float = 200.0,
            rng: Any = None) -> List[SpikeTrains]:
    """Poisson spike trains: feature x fires at rate x * max_rate Hz on [0, t_end) ms.

    rng : numpy Generator or int seed (same seed, same trains)."""
    F = _samples(X)
    t_end = v.positive_float("t_end", t_end)
    max_rate = v.positive_float("max_rate", max_rate, allow_zero=True)
    gen = v.rng_from(rng)
    expected = float(np.sum(np.clip(F, 0.0, None))) * max_rate * t_end / 1000.0
    if not expected <= MAX_POISSON_EVENTS:
        raise ValueError(f"poisson: X with max_rate={max_rate} Hz over t_end={t_end} ms expects "
                         f"{expected:.3g} events in all, more than the cap of {MAX_POISSON_EVENTS:.0e} "
                         "(about 16 bytes each); lower max_rate or t_end")
    out = []
    for row in F:
        lam = row * max_rate * t_end / 1000.0
        counts = gen.poisson(lam)
        idx = np.repeat(np.arange(F.shape[1]), counts)
        t = gen.uniform(0.0, t_end, idx.size)
        out.append(SpikeTrains(t, idx, F.shape[1]))
    return out


#: name -> encoder, for the learners and the CLI
ENCODERS = {"current": current, "latency": latency, "poisson": poisson}
