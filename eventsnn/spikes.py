"""SpikeTrains: the validated, time-sorted event list of one sample.

An event is (time in ms, neuron index, value). Value is 1 for a spike and any finite real
for a graded event (a current pulse of that size, or an average-pooled event). Events are
kept sorted by (time, neuron); the sort is stable so coincident events of one neuron keep
the order they were given in.
"""
from __future__ import annotations

import numbers
from typing import Optional, Sequence

import numpy as np
from numpy.typing import ArrayLike

from . import _validate as v
from ._constants import MAX_LAYER_SIZE


def _readonly(arr, dtype):
    """A read-only contiguous view of trusted internal data (kernel output or another
    SpikeTrains' arrays); copied only when the dtype or layout must change."""
    out = np.ascontiguousarray(arr, dtype=dtype).view()
    out.flags.writeable = False
    return out


def _steps(times, dt):
    """The step k with k * dt <= t < (k + 1) * dt, evaluated in floating point exactly as
    written (so an event made at k * dt by ``from_dense`` goes back to step k; a bare
    floor(t / dt) can land one step early, e.g. 43 * 0.1 / 0.1 < 43)."""
    with np.errstate(over="ignore", invalid="ignore"):
        k = np.floor(times / dt)  # float: may be huge (or inf) for a tiny dt
        k[k * dt > times] -= 1
        k[(k + 1) * dt <= times] += 1
    return k


class SpikeTrains:
    """Events of one sample.

    Parameters
    ----------
    times : array-like of float
        Event times in ms; finite and >= 0.
    neurons : array-like of int
        Neuron index of each event, in ``[0, n_neurons)``.
    n_neurons : int
        Size of the population (> 0).
    values : array-like of float, optional
        Event values (default 1.0 for every event); finite, with magnitude at most
        ``eventsnn._constants.MAX_MAGNITUDE`` (1e100) so that weight * value and sums of
        such products cannot overflow.
    """

    __slots__ = ("_times", "_neurons", "_values", "_n_neurons")

    # The arrays are the object's own read-only copies: a validated object cannot be edited
    # into NaN, unsorted or out-of-range events that kernels (which trust it) would read.
    @property
    def times(self) -> np.ndarray:
        """Event times in ms (float64, sorted, read-only)."""
        return self._times

    @property
    def neurons(self) -> np.ndarray:
        """Neuron index of each event (int64, read-only)."""
        return self._neurons

    @property
    def values(self) -> np.ndarray:
        """Value of each event (float64, read-only)."""
        return self._values

    @property
    def n_neurons(self) -> int:
        """Size of the population."""
        return self._n_neurons

    def _own(self, times, neurons, values, n_neurons):
        arrays = []
        for arr, dtype in ((times, np.float64), (neurons, np.int64), (values, np.float64)):
            arr = np.array(arr, dtype=dtype, order="C", copy=True)
            arr.flags.writeable = False
            arrays.append(arr)
        self._times, self._neurons, self._values = arrays
        self._n_neurons = int(n_neurons)

    def __getstate__(self):
        return (self._times, self._neurons, self._values, self._n_neurons)

    def __setstate__(self, state):
        self._own(*state)

    def __init__(self, times: ArrayLike, neurons: ArrayLike, n_neurons: int,
                 values: Optional[ArrayLike] = None) -> None:
        n_neurons = v.positive_int("n_neurons", n_neurons)
        if n_neurons > MAX_LAYER_SIZE:  # counts(), first_times(), to_dense() allocate per neuron
            raise ValueError(f"n_neurons must be <= {MAX_LAYER_SIZE} (the largest layer), got {n_neurons}")
        t: np.ndarray = v.float_array("times", times, ndim=1, finite=False)
        if np.any(np.isnan(t)):
            raise ValueError("times must not contain NaN")
        if np.any(np.isinf(t)):
            raise ValueError("times must be finite (no inf)")
        if np.any(t < 0):
            raise ValueError(f"times must be >= 0 ms, got minimum {t.min()}")
        idx: np.ndarray = v.int_array("neurons", neurons, ndim=1, low=0, high=n_neurons)
        if idx.shape != t.shape:
            raise ValueError(f"neurons has {idx.size} entries but times has {t.size}")
        vals: np.ndarray
        if values is None:
            vals = np.ones_like(t)
        else:
            vals = v.float_array("values", values, ndim=1, finite=False)
            if vals.shape != t.shape:
                raise ValueError(f"values has {vals.size} entries but times has {t.size}")
            if not np.all(np.isfinite(vals)):
                raise ValueError("values must be finite (no NaN or inf)")
            v.magnitude("values", vals)
        order = np.lexsort((idx, t))
        if np.any(order[1:] < order[:-1]):
            t, idx, vals = t[order], idx[order], vals[order]
        self._own(t, idx, vals, n_neurons)

    @classmethod
    def _trusted(cls, times, neurons, values, n_neurons):
        """Wrap kernel output that is already sorted and in range (no checks)."""
        obj = cls.__new__(cls)
        obj._times = _readonly(times, np.float64)
        obj._neurons = _readonly(neurons, np.int64)
        obj._values = _readonly(values, np.float64)
        obj._n_neurons = int(n_neurons)
        return obj

    @classmethod
    def empty(cls, n_neurons: int) -> SpikeTrains:
        return cls(np.zeros(0), np.zeros(0, dtype=np.int64), n_neurons)

    def __len__(self) -> int:
        return self.times.size

    def __repr__(self) -> str:
        n = len(self)
        if n == 0:
            return f"SpikeTrains(0 events, n_neurons={self.n_neurons})"
        graded = "" if np.all(self.values == 1.0) else ", graded values"
        active = np.unique(self.neurons).size
        return (f"SpikeTrains({n} events, n_neurons={self.n_neurons}, {active} active, "
                f"t=[{self.times[0]:.4g}, {self.times[-1]:.4g}] ms{graded})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SpikeTrains):
            return NotImplemented
        return (self.n_neurons == other.n_neurons and np.array_equal(self.times, other.times)
                and np.array_equal(self.neurons, other.neurons)
                and np.array_equal(self.values, other.values))

    def counts(self) -> np.ndarray:
        """Number of events per neuron, shape (n_neurons,)."""
        return np.bincount(self.neurons, minlength=self.n_neurons)

    def first_times(self, fill: float = np.inf) -> np.ndarray:
        """Time of each neuron's first event (``fill`` where it has none)."""
        if isinstance(fill, (bool, np.bool_)) or not isinstance(fill, numbers.Real) or np.isnan(fill):
            raise TypeError(f"fill must be a real number (inf allowed, not NaN), got {fill!r}")
        out = np.full(self.n_neurons, float(fill))
        if len(self):
            # events are time-sorted, so the first occurrence of a neuron is its first event
            idx, first = np.unique(self.neurons, return_index=True)
            out[idx] = self.times[first]
        return out

    # ---- dense rasters -------------------------------------------------------------
    @classmethod
    def from_dense(cls, raster: ArrayLike, dt: float = 1.0) -> SpikeTrains:
        """Events from a raster of shape (T, n): entry [k, i] != 0 becomes an event of
        neuron i at time k * dt (ms) with that value."""
        arr: np.ndarray = v.float_array("raster", raster, ndim=2)
        dt = v.positive_float("dt", dt)
        if arr.shape[1] == 0:
            raise ValueError("raster must have at least one neuron column")
        if not np.isfinite(max(arr.shape[0] - 1, 0) * dt):
            raise ValueError(f"dt={dt} ms is too large: the last step of a raster of "
                             f"{arr.shape[0]} steps lies beyond float64")
        steps, neurons = np.nonzero(arr)
        return cls(steps * dt, neurons, arr.shape[1], arr[steps, neurons])

    def to_dense(self, n_steps: int, dt: float = 1.0) -> np.ndarray:
        """Raster (n_steps, n_neurons): the values of events with k*dt <= t < (k+1)*dt are
        summed into step k. Events at or after n_steps * dt are dropped."""
        n_steps = v.n_steps("n_steps", n_steps)
        dt = v.positive_float("dt", dt)
        if n_steps * self.n_neurons > MAX_LAYER_SIZE:
            raise ValueError(f"a raster of {n_steps} steps x {self.n_neurons} neurons is too large "
                             f"(cap {MAX_LAYER_SIZE} entries)")
        out = np.zeros((n_steps, self.n_neurons))
        step = _steps(self.times, dt)
        keep = step < n_steps  # compared as floats, before the cast to an index
        np.add.at(out, (step[keep].astype(np.int64), self.neurons[keep]), self.values[keep])
        return out

    # ---- tonic-style structured events -------------------------------------------
    @classmethod
    def from_tonic(cls, events: np.ndarray, shape: Optional[Sequence[int]] = None,
                   sensor_size: Optional[Sequence[int]] = None) -> SpikeTrains:
        """Events from a tonic structured array (t in microseconds, x, [y], [p]).

        Give either ``sensor_size`` = (W, H, P), tonic's own convention (1-D audio events
        (t, x, p) such as SHD's take (n_channels, 1, P); see :func:`eventsnn.io.from_tonic`),
        or ``shape`` = (C, H, W) of the layer. The flat index is p * H * W + y * W + x and
        the time t / 1000 ms. A boolean polarity reads as 0 / 1; without a p field every
        event has p = 0. Events outside the sensor raise ValueError."""
        from .io.tonic import from_tonic

        if (shape is None) == (sensor_size is None):
            raise TypeError("give exactly one of sensor_size=(W, H, P) (tonic's convention) "
                            "and shape=(C, H, W)")
        if shape is not None:
            C, H, W = v.shape3("shape", shape)
            return from_tonic(events, (W, H, C))
        assert sensor_size is not None
        return from_tonic(events, sensor_size)

    def to_tonic(self, shape: Optional[Sequence[int]] = None,
                 sensor_size: Optional[Sequence[int]] = None) -> np.ndarray:
        """tonic structured array (int64 x, y, t in microseconds, p; or t, x, p for a 1-D
        sensor with H = 1) for ``sensor_size`` = (W, H, P) or layer ``shape`` = (C, H, W).
        Times that do not fit int64 microseconds raise ValueError (no wrap-around)."""
        from .io.tonic import to_tonic

        if (shape is None) == (sensor_size is None):
            raise TypeError("give exactly one of sensor_size=(W, H, P) (tonic's convention) "
                            "and shape=(C, H, W)")
        if shape is None:
            assert sensor_size is not None
            return to_tonic(self, sensor_size)
        C, H, W = v.shape3("shape", shape)
        if C * H * W != self.n_neurons:
            raise ValueError(f"shape {(C, H, W)} holds {C * H * W} neurons, not {self.n_neurons}")
        # the layer-shape form keeps its fields (t, x, y, p) even when H == 1
        flat = to_tonic(self, (W * H, 1, C))
        out = np.zeros(len(self), dtype=[("t", "<i8"), ("x", "<i8"), ("y", "<i8"), ("p", "<i8")])
        out["t"], out["p"] = flat["t"], flat["p"]
        out["y"] = (self.neurons % (H * W)) // W
        out["x"] = self.neurons % W
        return out

    # ---- NIR-style (index, time) pairs -------------------------------------------
    @classmethod
    def from_pairs(cls, pairs: ArrayLike, n_neurons: int) -> SpikeTrains:
        """Events from NIR-style (index, time in ms) pairs.

        ``pairs`` is array-like of shape (N, 2), one row (index, time) per event, and is
        read the same way whatever the container: ``[(5, 1.0), (6, 2.0)]``,
        ``((5, 1.0), (6, 2.0))`` and ``np.array([[5, 1.0], [6, 2.0]])`` all mean neuron 5
        at 1 ms and neuron 6 at 2 ms. Indices must be integral (exact up to 2**53). Any
        other shape is an error, in particular the columns form ``(indices, times)``: for
        separate index and time arrays use ``SpikeTrains(times, indices, n_neurons)``.
        Inverse of :meth:`to_pairs`; every event gets value 1.
        """
        n_neurons = v.positive_int("n_neurons", n_neurons)
        arr = v.float_array("pairs", pairs, finite=False)
        if arr.size == 0 and arr.ndim <= 2 and (arr.ndim < 2 or arr.shape[1] in (0, 2)):
            return cls.empty(n_neurons)
        if arr.ndim != 2 or arr.shape[1] != 2:
            hint = ""
            if arr.ndim == 2 and arr.shape[0] == 2:
                hint = (" (it looks like the columns (indices, times): use "
                        "SpikeTrains(times, indices, n_neurons) for those)")
            raise ValueError(f"pairs must have shape (N, 2), one row (index, time) per event, "
                             f"got shape {arr.shape}{hint}")
        idx = v.int_array("pairs[:, 0] (neuron indices)", arr[:, 0], low=0, high=n_neurons)
        return cls(arr[:, 1], idx, n_neurons)

    def to_pairs(self) -> np.ndarray:
        """The events as NIR-style pairs: a float64 array of shape (N, 2), one row
        (index, time in ms) per event, in the event order (values are not included).
        :meth:`from_pairs` reads it back."""
        return np.column_stack([self.neurons.astype(np.float64), self.times])
