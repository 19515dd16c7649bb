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
import stat
from typing import Optional, Tuple, Union

import numpy as np

from .recording import EVENT_DTYPE, Recording, check_in_sensor, sensor_size3

PathLike = Union[str, "os.PathLike[str]"]
OVERFLOW_Y = 240
OVERFLOW_US = 1 << 13
NMNIST_SENSOR = (34, 34, 2)
DVS128_SENSOR = (128, 128, 2)
_MAGIC_AEDAT = b"#!AER-DAT"


#: events decoded per chunk: the temporaries of a chunk (about 40 bytes per event) stay a
#: few MiB whatever the file size, so reading costs the output array plus O(1)
CHUNK_EVENTS = 1 << 16


def _decode_chunk(b, out, pos, markers_before):
    """Decode the (m, 5) uint8 rows ``b`` into ``out[pos:]`` (markers dropped); returns
    (events written, markers in b, first t, last t) with t shifted by the markers before."""
    y = b[:, 1]
    marker = y == OVERFLOW_Y
    t = (b[:, 2].astype(np.int64) & 0x7F) << 16
    t |= b[:, 3].astype(np.int64) << 8
    t |= b[:, 4]
    n_mark = int(np.count_nonzero(marker))
    if n_mark:
        t += OVERFLOW_US * (markers_before + np.cumsum(marker) - marker)
        keep = ~marker
        t, b, y = t[keep], b[keep], y[keep]
    elif markers_before:
        t += OVERFLOW_US * markers_before
    m = t.size
    dst = out[pos:pos + m]
    dst["t"] = t
    dst["x"] = b[:, 0]
    dst["y"] = y
    dst["p"] = b[:, 2] >> 7
    in_order = bool(m < 2 or np.all(t[1:] >= t[:-1]))
    return m, n_mark, (int(t[0]) if m else None), (int(t[-1]) if m else None), in_order


def _check_magic(head, path):
    if head[:len(_MAGIC_AEDAT)] == _MAGIC_AEDAT:
        version = bytes(head[9:12]).decode("ascii", "replace")
        raise ValueError(f"{path} is an AEDAT {version} file, not a 40-bit N-MNIST/.bs2 file: "
                         "read it with eventsnn.io.read (AEDAT 4.0) instead")


def _decode_stream(read_into, n_rows, path):
    """(events, markers, in time order) of ``n_rows`` 5-byte rows delivered by
    ``read_into(buffer) -> bytes read``: one output array sized from the row count, filled
    chunk by chunk, shrunk in place when markers were dropped."""
    ev = np.empty(n_rows, dtype=EVENT_DTYPE)
    buf = np.empty((min(CHUNK_EVENTS, max(n_rows, 1)), 5), dtype=np.uint8)
    pos = markers = 0
    last = None
    in_order = True
    done = 0
    while done < n_rows:
        m = min(CHUNK_EVENTS, n_rows - done)
        got = read_into(memoryview(buf[:m]).cast("B"))
        if got != 5 * m:
            raise ValueError(f"{path}: the file changed size while it was read")
        k, n_mark, first, end, ordered = _decode_chunk(buf[:m], ev, pos, markers)
        if k:
            in_order = in_order and ordered and (last is None or first >= last)
            last = end
        pos += k
        markers += n_mark
        done += m
    if pos < n_rows:
        ev.resize((pos,), refcheck=False)
    return ev, markers, in_order


def decode_bin(raw: np.ndarray, path: str) -> Tuple[np.ndarray, int]:
    """(events, number of overflow markers) of the bytes of a 40-bit file (in memory)."""
    raw = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1)
    _check_magic(raw[:16].tobytes(), path)
    if raw.size % 5:
        raise ValueError(f"{path}: length {raw.size} is not a multiple of 5 bytes "
                         "(not a 40-bit event file)")
    offset = [0]

    def read_into(dst):
        n = len(dst)
        dst[:] = raw[offset[0]:offset[0] + n].tobytes()
        offset[0] += n
        return n

    ev, markers, _ = _decode_stream(read_into, raw.size // 5, path)
    return ev, markers


def read_events_file(path: str) -> Tuple[np.ndarray, int, bool]:
    """(events, overflow markers, whether the events are in time order) of a 40-bit file,
    decoded in chunks: peak memory is the output array (13 bytes per event, 2.6x the file
    size) plus a few MiB, never a copy of the file or whole-file temporaries."""
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):  # a device or FIFO reports size 0: not "no events"
            raise ValueError(f"{path}: not a regular file")
        size = st.st_size
        _check_magic(fh.read(16), path)
        if size % 5:
            raise ValueError(f"{path}: length {size} is not a multiple of 5 bytes "
                             "(not a 40-bit event file)")
        fh.seek(0)
        return _decode_stream(fh.readinto, size // 5, path)


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
    ev, n_markers, in_order = read_events_file(path)
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
        sensor_size = sensor_size3(sensor_size)
        check_in_sensor(ev, sensor_size, path)
    if not in_order:
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
