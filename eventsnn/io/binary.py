"""40-bit event files: the N-MNIST ``.bin`` release and SLAYER's ``.bs2`` copies (N-MNIST,
DVS128 Gesture clips).

No header; 5 bytes per event, one big-endian 40-bit word: x (8 bits), y (8 bits),
polarity (1 bit, 1 = ON), timestamp (23 bits, microseconds). A row with y == 240 is a
timestamp-overflow marker of the ATIS tools: it is not an event; it adds 2**13 us to the
timestamps of all following events (the reference readers' convention) and is reported in
``Recording.notes``.
"""
from __future__ import annotations

import os
from typing import Optional, Tuple, Union

import numpy as np

from .recording import EVENT_DTYPE, Recording, check_in_sensor

PathLike = Union[str, "os.PathLike[str]"]
OVERFLOW_Y = 240
OVERFLOW_US = 1 << 13
NMNIST_SENSOR = (34, 34, 2)
DVS128_SENSOR = (128, 128, 2)
_MAGIC_AEDAT = b"#!AER-DAT"


def decode_bin(raw: np.ndarray, path: str) -> Tuple[np.ndarray, int]:
    """(events, number of overflow markers) of the bytes of a 40-bit file."""
    if raw[:len(_MAGIC_AEDAT)].tobytes() == _MAGIC_AEDAT:
        version = bytes(raw[9:12]).decode("ascii", "replace")
        raise ValueError(f"{path} is an AEDAT {version} file, not a 40-bit N-MNIST/.bs2 file: "
                         "read it with eventsnn.io.read (AEDAT 4.0) instead")
    if raw.size % 5:
        raise ValueError(f"{path}: length {raw.size} is not a multiple of 5 bytes "
                         "(not a 40-bit event file)")
    b = raw.reshape(-1, 5)
    y = b[:, 1]
    marker = y == OVERFLOW_Y
    t = ((b[:, 2].astype(np.int64) & 0x7F) << 16) | (b[:, 3].astype(np.int64) << 8) | b[:, 4]
    n_markers = int(marker.sum())
    if n_markers:
        t = t + OVERFLOW_US * (np.cumsum(marker) - marker)
    keep = ~marker
    ev = np.empty(int(keep.sum()), dtype=EVENT_DTYPE)
    ev["t"] = t[keep]
    ev["x"] = b[keep, 0]
    ev["y"] = y[keep]
    ev["p"] = b[keep, 2] >> 7
    return ev, n_markers


def read_bin(path: PathLike, sensor_size: Optional[Tuple[int, int, int]] = None,
             format: str = "bin40") -> Recording:
    """Read a 40-bit ``.bin`` / ``.bs2`` file.

    Parameters
    ----------
    path : file path.
    sensor_size : (W, H, P) or None. None infers it: (34, 34, 2) when every event fits
        N-MNIST's sensor, (128, 128, 2) (DVS128) when every event fits that, else the
        bounding box of the events (noted in ``notes``). An event outside a given
        sensor_size raises ValueError: nothing is dropped silently.
    """
    path = os.fspath(path)
    raw = np.fromfile(path, dtype=np.uint8)
    ev, n_markers = decode_bin(raw, path)
    notes = []
    if n_markers:
        notes.append(f"{n_markers} timestamp-overflow markers (y == 240) applied (+2**13 us each)")
    if sensor_size is None:
        if ev.size == 0 or (ev["x"].max() < 34 and ev["y"].max() < 34):
            sensor_size = NMNIST_SENSOR
        elif ev["x"].max() < 128 and ev["y"].max() < 128:
            sensor_size = DVS128_SENSOR
        else:
            sensor_size = (int(ev["x"].max()) + 1, int(ev["y"].max()) + 1, 2)
            notes.append(f"sensor size {sensor_size} inferred from the events' bounding box")
    else:
        size = tuple(int(s) for s in sensor_size)
        if len(size) != 3 or min(size) <= 0:
            raise ValueError(f"sensor_size must be (W, H, P) of positive ints, got {sensor_size}")
        sensor_size = (size[0], size[1], size[2])
        check_in_sensor(ev, sensor_size, path)
    if ev.size > 1 and np.any(np.diff(ev["t"]) < 0):
        order = np.argsort(ev["t"], kind="stable")
        ev = ev[order]
        notes.append("events were not in time order: sorted (stable)")
    return Recording(ev, sensor_size, format, path, {}, notes)


def read_nmnist(path: PathLike) -> Recording:
    """An N-MNIST recording (34 x 34 ATIS sensor, 2 polarities); an event outside the
    sensor raises ValueError (e.g. a DVS128 clip: use :func:`read_dvs_gesture`)."""
    return read_bin(path, NMNIST_SENSOR, "nmnist-bin")


def read_dvs_gesture(path: PathLike) -> Recording:
    """A DVS128 Gesture clip in the 40-bit format (SLAYER's ``.bs2``): 128 x 128, both
    polarities, every event kept."""
    return read_bin(path, DVS128_SENSOR, "dvs-gesture-bs2")


def write_bin(path: PathLike, events: np.ndarray) -> None:
    """Write events (structured array with t, x, y, p) in the 40-bit format; the inverse of
    :func:`read_bin`. Refuses (ValueError) what the format cannot hold instead of wrapping:
    x, y outside [0, 255], y == 240 (the overflow marker), p not 0/1, t outside
    [0, 2**23) us."""
    ev = np.asarray(events)
    names = ev.dtype.names or ()
    for name in ("t", "x", "y", "p"):
        if name not in names:
            raise ValueError(f"events must have a field {name!r}")
    for name, hi in (("x", 255), ("y", 255), ("p", 1)):
        col = ev[name].astype(np.int64)
        if col.size and (col.min() < 0 or col.max() > hi):
            raise ValueError(f"events[{name!r}] must lie in [0, {hi}] for the 40-bit format, "
                             f"got [{col.min()}, {col.max()}]")
    if np.any(ev["y"].astype(np.int64) == OVERFLOW_Y):
        raise ValueError("events['y'] == 240 is the format's overflow marker and cannot be written")
    t = ev["t"].astype(np.int64)
    if t.size and (t.min() < 0 or t.max() >= 1 << 23):
        raise ValueError("events['t'] must be in [0, 2**23) us for the 40-bit format")
    out = np.empty((ev.size, 5), dtype=np.uint8)
    out[:, 0] = ev["x"].astype(np.int64)
    out[:, 1] = ev["y"].astype(np.int64)
    out[:, 2] = (ev["p"].astype(np.int64) << 7) | ((t >> 16) & 0x7F)
    out[:, 3] = (t >> 8) & 0xFF
    out[:, 4] = t & 0xFF
    out.tofile(os.fspath(path))
