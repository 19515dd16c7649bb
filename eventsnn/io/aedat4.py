"""AEDAT 4.0 files (iniVation DV) through the ``aedat`` package (MIT; a maintained Rust
decoder with wheels): ``pip install eventsnn[aedat]``.

Polarity events of the first event stream become a :class:`Recording` with t relative to
the earliest event (``t_offset_us`` keeps the absolute Unix time), x, y, p (1 = ON) and the
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
    except Exception as exc:  # the decoder raises its own error types (panics: see below)
        raise ValueError(f"{path}: not a readable AEDAT 4.0 file ({_reason(exc)})") from None


def _is_panic(exc: BaseException) -> bool:
    """pyo3's PanicException, what the Rust decoder raises on some malformed files: a
    BaseException, which ``except Exception`` misses."""
    return type(exc).__name__ == "PanicException"


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def read_aedat4(path: Union[str, "os.PathLike[str]"]) -> Recording:
    """Read the polarity events of an AEDAT 4.0 file (see the module docstring)."""
    path = os.fspath(path)
    with open(path, "rb") as fh:
        if fh.read(14) != b"#!AER-DAT4.0\r\n":
            raise ValueError(f"{path} is not an AEDAT 4.0 file (no '#!AER-DAT4.0' header)")
        head = fh.read(HEADER_PEEK)
    table_pos = data_table_position(head)
    size = os.path.getsize(path)
    if table_pos is not None and table_pos >= 0 and size <= table_pos:
        raise ValueError(f"{path}: truncated AEDAT 4.0 file ({size} bytes; its header places "
                         f"the packet table at byte {table_pos}, after the end)")
    try:
        rec = _read(path)
    except (ValueError, OSError, MemoryError, ImportError):
        raise
    except BaseException as exc:
        # a truncated or corrupt file makes the Rust decoder panic, raise its own errors, or
        # describe streams without the fields read here (KeyError)
        if _is_panic(exc) or isinstance(exc, Exception):
            raise ValueError(f"{path}: corrupt or truncated AEDAT 4.0 file "
                             f"({type(exc).__name__}: {_reason(exc)})") from None
        raise
    if table_pos is None or table_pos < 0:
        rec.notes.append("the header records no packet table (a recording not closed by its "
                         "writer): the file may end early, which cannot be checked")
    return rec


#: bytes of the header read to find the packet table's position (the IOHeader's fixed
#: fields come before its XML description)
HEADER_PEEK = 4096


def data_table_position(head: bytes) -> Union[int, None]:
    """``dataTablePosition`` of the IOHeader flatbuffer that follows the 14-byte magic line
    (``head`` starts with its int32 size): the byte offset of the packet table that a
    writer appends when it closes the file, -1 when it did not. None when the header
    cannot be parsed (the decoder then reports the file)."""
    import struct

    try:
        (n,) = struct.unpack_from("<i", head, 0)
        buf = head[4:4 + n]
        (root,) = struct.unpack_from("<I", buf, 0)  # table offset (the file id follows)
        (soff,) = struct.unpack_from("<i", buf, root)
        vt = root - soff
        vsize, _ = struct.unpack_from("<HH", buf, vt)
        if vsize < 4 + 2 * 2:  # no slot for field 1 (dataTablePosition)
            return -1
        (field,) = struct.unpack_from("<H", buf, vt + 4 + 2 * 1)
        if field == 0:
            return -1  # absent: the schema's default
        (pos,) = struct.unpack_from("<q", buf, root + field)
        return int(pos)
    except struct.error:
        return None


def _read(path: str) -> Recording:
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
            if pkt["events"].size:
                chunks.append(pkt["events"])
        else:
            kind = streams.get(sid, {}).get("type", f"stream {sid}")
            if sid in event_ids:
                kind = f"events of stream {sid}"
            skipped[kind] = skipped.get(kind, 0) + 1
    # one output array sized from the packets; each packet is copied in and released, so
    # the peak is the output plus the decoder's packets (no concatenated copy, no
    # whole-recording temporaries)
    ev = np.empty(sum(int(c.size) for c in chunks), dtype=EVENT_DTYPE)
    t0 = min(int(c["t"].min()) for c in chunks) if ev.size else 0
    t1 = max(int(c["t"].max()) for c in chunks) if ev.size else 0
    if t1 - t0 >= 2 ** 63:
        raise ValueError(f"{path}: event timestamps span {t1 - t0} us, beyond int64 "
                         "(a corrupt file)")
    pos = 0
    chunks.reverse()
    while chunks:
        c = chunks.pop()
        dst = ev[pos:pos + c.size]
        dst["t"] = c["t"] - np.uint64(t0)
        dst["x"] = c["x"]
        dst["y"] = c["y"]
        dst["p"] = c["on"]
        pos += c.size
        del c
    sensor = (W, H, 2)
    check_in_sensor(ev, sensor, path)
    notes = [f"skipped {n} {kind} packets (no polarity events)" for kind, n in skipped.items()]
    if ev.size > 1 and np.any(ev["t"][1:] < ev["t"][:-1]):
        ev = ev[np.argsort(ev["t"], kind="stable")]
        notes.append("events were not in time order: sorted (stable)")
    return Recording(ev, sensor, "aedat4", path, {}, notes, t0)
