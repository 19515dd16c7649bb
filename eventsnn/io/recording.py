"""The :class:`Recording` every reader of :mod:`eventsnn.io` returns."""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import _validate as v
from ..spikes import SpikeTrains

#: events of a 2-D sensor: t (us), x (column), y (row, 0 = top), p (polarity, 1 = ON)
EVENT_DTYPE = np.dtype([("t", np.int64), ("x", np.int16), ("y", np.int16), ("p", np.int8)])
#: events of a 1-D sensor (e.g. a cochlea: x = channel): t (us), x, p
EVENT_DTYPE_1D = np.dtype([("t", np.int64), ("x", np.int16), ("p", np.int8)])


@dataclasses.dataclass
class Recording:
    """Events of one recording.

    Attributes
    ----------
    events : structured array, :data:`EVENT_DTYPE` (or :data:`EVENT_DTYPE_1D`), sorted
        by time; t in microseconds from the start of the recording.
    sensor_size : (W, H, P), tonic's convention (a 1-D sensor has H = 1).
    format : name of the file format, e.g. "nmnist-bin", "aedat4".
    path : the file read ("" for in-memory data).
    dropped : reason -> number of events the reader dropped (empty: nothing was lost).
    notes : other things the reader skipped or adjusted, in words (e.g. IMU packets).
    t_offset_us : time subtracted from the file's timestamps (AEDAT4 stores absolute Unix
        time; 0 for formats that count from the start of the recording).
    """

    events: np.ndarray
    sensor_size: Tuple[int, int, int]
    format: str
    path: str = ""
    dropped: Dict[str, int] = dataclasses.field(default_factory=dict)
    notes: List[str] = dataclasses.field(default_factory=list)
    t_offset_us: int = 0

    def __len__(self) -> int:
        return int(self.events.size)

    @property
    def shape(self) -> Tuple[int, int, int]:
        """(C, H, W) of a layer that takes this sensor's events (C = polarities)."""
        W, H, P = self.sensor_size
        return (P, H, W)

    @property
    def n_dropped(self) -> int:
        return int(sum(self.dropped.values()))

    def summary(self) -> str:
        """One line: format, events, sensor, duration and what was dropped."""
        dur = (self.events["t"][-1] - self.events["t"][0]) / 1000.0 if len(self) else 0.0
        drop = ("nothing dropped" if not self.dropped else
                "dropped " + ", ".join(f"{n} {why}" for why, n in self.dropped.items()))
        notes = "; " + "; ".join(self.notes) if self.notes else ""
        return (f"{self.format}: {len(self)} events, sensor {self.sensor_size} (W, H, P), "
                f"{dur:.1f} ms; {drop}{notes}")

    def to_spike_trains(self, t_max: Optional[float] = None, time_scale: float = 1.0,
                        merge_polarity: bool = False) -> SpikeTrains:
        """The events as one SpikeTrains: time t / 1000 ms (times ``time_scale``), neuron
        ``p * H * W + y * W + x`` (``y * W + x`` with ``merge_polarity``). ``t_max`` (ms,
        before scaling) keeps only events with t <= t_max: the only events left out, on
        request."""
        W, H, P = self.sensor_size
        time_scale = v.positive_float("time_scale", time_scale)
        if not isinstance(merge_polarity, (bool, np.bool_)):
            raise TypeError(f"merge_polarity must be a bool, got {merge_polarity!r}")
        ev = self.events
        t = ev["t"] / 1000.0
        if t_max is not None:
            keep = t <= v.positive_float("t_max", t_max)
            ev, t = ev[keep], t[keep]
        y = ev["y"].astype(np.int64) if "y" in (ev.dtype.names or ()) else np.zeros(ev.size, np.int64)
        idx = y * W + ev["x"].astype(np.int64)
        n = H * W
        if not merge_polarity:
            idx = idx + ev["p"].astype(np.int64) * (H * W)
            n = P * H * W
        with np.errstate(over="ignore"):
            times = t * time_scale
        if times.size and not np.isfinite(times).all():
            raise ValueError(f"time_scale={time_scale!r} times the latest event time "
                             f"{float(t.max())!r} ms overflows float64; use a smaller time_scale")
        return SpikeTrains(times, idx, n)


def sensor_size3(sensor_size: Sequence[int]) -> Tuple[int, int, int]:
    """A (W, H, P) triple of positive ints (Python or numpy; no floats, bools or strings),
    at most MAX_LAYER_SIZE neurons in all."""
    import numbers

    from .._constants import MAX_LAYER_SIZE

    try:
        dims = tuple(sensor_size)
    except TypeError:
        dims = ()
    if isinstance(sensor_size, (str, bytes)) or len(dims) != 3 or any(
            isinstance(d, (bool, np.bool_)) or not isinstance(d, numbers.Integral) for d in dims):
        raise TypeError(f"sensor_size must be (W, H, P), three ints (tonic's convention), "
                        f"got {sensor_size!r:.80}")
    W, H, P = (int(d) for d in dims)
    if min(W, H, P) <= 0:
        raise ValueError(f"sensor_size must be three positive ints (W, H, P), got {sensor_size!r}")
    if W * H * P > MAX_LAYER_SIZE:
        raise ValueError(f"sensor_size {sensor_size!r} holds {W * H * P} neurons, more than "
                         f"{MAX_LAYER_SIZE}")
    return W, H, P


def check_in_sensor(events: np.ndarray, sensor_size: Tuple[int, int, int], what: str) -> None:
    """ValueError naming ``what`` when an event lies outside the sensor."""
    W, H, P = sensor_size
    bad = (events["x"] < 0) | (events["x"] >= W) | (events["p"] < 0) | (events["p"] >= P)
    if "y" in (events.dtype.names or ()):
        bad |= (events["y"] < 0) | (events["y"] >= H)
    if np.any(bad):
        k = int(np.argmax(bad))
        e = events[k]
        raise ValueError(f"{what}: {int(bad.sum())} of {events.size} events lie outside the sensor "
                         f"{sensor_size} (W, H, P), the first at index {k}: {e}")
