"""AEDAT 4.0 files (iniVation DV) through the ``aedat`` package (MIT; a maintained Rust
decoder with wheels): ``pip install eventsnn[aedat]``.

Polarity events of the first event stream become a :class:`Recording` with t relative to
the first event (``t_offset_us`` keeps the absolute Unix time), x, y, p (1 = ON) and the
stream's (W, H, 2) sensor size. Other streams (IMU, triggers, frames) hold no polarity
events; the reader lists how many packets of each it skipped in ``notes``.
"""
from __future__ import annotations

import os
from typing import Any, Union

import numpy as np

from .recording import EVENT_DTYPE, Recording, check_in_sensor


def _decoder(path: str) -> Any:
    try:
        import aedat
    except ImportError:
        raise ImportError("reading AEDAT4 files needs the aedat package: "
                          "pip install 'eventsnn[aedat]'  (or: pip install aedat)") from None
    try:
        return aedat.Decoder(path)
    except Exception as exc:  # the decoder raises its own error types
        raise ValueError(f"{path}: not a readable AEDAT 4.0 file ({exc})") from None


def read_aedat4(path: Union[str, "os.PathLike[str]"]) -> Recording:
    """Read the polarity events of an AEDAT 4.0 file (see the module docstring)."""
    path = os.fspath(path)
    with open(path, "rb") as fh:
        if fh.read(14) != b"#!AER-DAT4.0\r\n":
            raise ValueError(f"{path} is not an AEDAT 4.0 file (no '#!AER-DAT4.0' header)")
    dec = _decoder(path)
    streams = dec.id_to_stream()
    event_ids = sorted(i for i, s in streams.items() if s.get("type") == "events")
    if not event_ids:
        raise ValueError(f"{path} has no event stream (streams: {streams})")
    main = event_ids[0]
    W, H = int(streams[main]["width"]), int(streams[main]["height"])
    chunks: list = []
    skipped: dict = {}
    for pkt in dec:
        sid = pkt["stream_id"]
        if sid == main and "events" in pkt:
            chunks.append(pkt["events"])
        else:
            kind = streams.get(sid, {}).get("type", f"stream {sid}")
            if sid in event_ids:
                kind = f"events of stream {sid}"
            skipped[kind] = skipped.get(kind, 0) + 1
    raw = np.concatenate(chunks) if chunks else np.zeros(0, dtype=[("t", "<u8"), ("x", "<u2"),
                                                                     ("y", "<u2"), ("on", "?")])
    ev = np.empty(raw.size, dtype=EVENT_DTYPE)
    t = raw["t"].astype(np.int64)
    t0 = int(t[0]) if t.size else 0
    ev["t"] = t - t0
    ev["x"] = raw["x"]
    ev["y"] = raw["y"]
    ev["p"] = raw["on"].astype(np.int8)
    sensor = (W, H, 2)
    check_in_sensor(ev, sensor, path)
    notes = [f"skipped {n} {kind} packets (no polarity events)" for kind, n in skipped.items()]
    if ev.size > 1 and np.any(np.diff(ev["t"]) < 0):
        ev = ev[np.argsort(ev["t"], kind="stable")]
        notes.append("events were not in time order: sorted (stable)")
    return Recording(ev, sensor, "aedat4", path, {}, notes, t0)
