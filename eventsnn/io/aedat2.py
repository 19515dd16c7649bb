"""AEDAT 1.0 / 2.0 files (jAER ``.aedat`` / ``.dat``): DVS128 and DAVIS240/346 recordings.

Layout (``../shared/data/FORMATS.md``, section 2): ASCII header lines that start with
``#`` (the first is ``#!AER-DAT2.0`` or ``#!AER-DAT1.0``; ``# AEChip: <class>`` names the
camera), then big-endian records ``(uint32 address, uint32 timestamp)`` (2.0) or
``(uint16 address, uint32 timestamp)`` (1.0), timestamps in microseconds.

Addresses are decoded by chip:

- DVS128 (``...DVS128``, ``Tmpdiff128``, eDVS): ``x_raw = (a >> 1) & 0x7F``,
  ``y_raw = (a >> 8) & 0x7F``, ON when bit 0 is 0;
- DAVIS240 / DAVIS346 (``...davis.Davis240*`` / ``...Davis346*``): words with bit 31 set
  are APS or IMU samples and words with bit 10 set are external-input events, both skipped
  (counted in ``notes``); DVS events have ``y_raw = (a >> 22) & 0x1FF``,
  ``x_raw = (a >> 12) & 0x3FF``, ON when bit 11 is 1.

jAER counts rows from the bottom and mirrors x; the reader turns both axes so that
``x = W - 1 - x_raw`` and ``y = H - 1 - y_raw`` (row 0 at the top, as every other reader of
:mod:`eventsnn.io`; the DAVIS346 convention of tonic). Times are made relative to the first
event (``t_offset_us``); 32-bit timestamp wrap-arounds are unwrapped. A file that ends
inside its header (e.g. a header-only sample) is read as a recording with no events.
"""
from __future__ import annotations

import os
from typing import List, Optional, Tuple, Union

import numpy as np

from .recording import EVENT_DTYPE, Recording

#: chip class fragment -> (W, H), for the chips whose addresses the reader decodes
CHIPS = (("davis346", (346, 260)), ("davis240", (240, 180)), ("dvs128", (128, 128)),
         ("tmpdiff128", (128, 128)), ("edvs", (128, 128)))


def _header(path: str) -> Tuple[str, Optional[str], int]:
    """(version "1.0"/"2.0", AEChip class or None, byte offset of the first record)."""
    version = "1.0"
    chip = None
    offset = 0
    with open(path, "rb") as fh:
        first = True
        while True:
            line = fh.readline()
            if not line.startswith(b"#"):
                break
            text = line.decode("latin-1").strip()
            if first and text.startswith("#!AER-DAT"):
                version = text[len("#!AER-DAT"):].strip()
            if text.startswith("# AEChip:"):
                chip = text.split(":", 1)[1].strip()
            offset += len(line)
            first = False
    if version not in ("1.0", "2.0"):
        raise ValueError(f"{path}: AEDAT {version} is not an AEDAT 1.0/2.0 file")
    return version, chip, offset


def _chip_size(path: str, chip: Optional[str]) -> Tuple[str, Tuple[int, int]]:
    name = (chip or "").lower()
    for frag, size in CHIPS:
        if frag in name:
            return ("davis" if frag.startswith("davis") else "dvs128"), size
    raise ValueError(f"{path}: AEChip {chip!r} is not supported (DVS128, DAVIS240 and "
                     "DAVIS346 addresses are decoded)")


def read_aedat2(path: Union[str, "os.PathLike[str]"]) -> Recording:
    """Read the polarity events of an AEDAT 1.0 / 2.0 (jAER) file (see the module
    docstring): a :class:`Recording` with the chip's (W, H, 2) sensor size."""
    path = os.fspath(path)
    with open(path, "rb") as fh:
        if not fh.read(9) == b"#!AER-DAT":
            raise ValueError(f"{path} is not an AEDAT file (no '#!AER-DAT' header)")
    version, chip, offset = _header(path)
    family, (W, H) = _chip_size(path, chip)
    rec_dtype = np.dtype([("a", ">u4" if version == "2.0" else ">u2"), ("t", ">u4")])
    body = np.fromfile(path, dtype=np.uint8, offset=offset)
    notes: List[str] = []
    n_whole = body.size // rec_dtype.itemsize
    if body.size % rec_dtype.itemsize:
        notes.append(f"ignored {body.size % rec_dtype.itemsize} trailing bytes (an incomplete record)")
    if n_whole == 0:
        notes.append("the file holds no event records (header only)")
    raw = body[:n_whole * rec_dtype.itemsize].view(rec_dtype)
    a = raw["a"].astype(np.int64)
    t = raw["t"].astype(np.int64)
    if family == "dvs128":
        keep = np.ones(a.size, dtype=bool)
        x_raw, y_raw, on = (a >> 1) & 0x7F, (a >> 8) & 0x7F, (a & 1) == 0
    else:
        special = (a >> 31) & 1 == 1
        external = ~special & ((a >> 10) & 1 == 1)
        keep = ~special & ~external
        if special.any():
            notes.append(f"skipped {int(special.sum())} APS/IMU samples (no polarity events)")
        if external.any():
            notes.append(f"skipped {int(external.sum())} external-input (trigger) events")
        x_raw, y_raw, on = (a >> 12) & 0x3FF, (a >> 22) & 0x1FF, (a >> 11) & 1 == 1
    x_raw, y_raw, on, t = x_raw[keep], y_raw[keep], on[keep], t[keep]
    wraps = np.diff(t) < -(1 << 31)
    if wraps.any():
        t = t + np.concatenate([[0], np.cumsum(wraps)]) * (1 << 32)
        notes.append(f"unwrapped {int(wraps.sum())} 32-bit timestamp wrap-arounds")
    inside = (x_raw < W) & (y_raw < H)
    dropped = {}
    if not inside.all():
        dropped["outside the sensor"] = int((~inside).sum())
        x_raw, y_raw, on, t = x_raw[inside], y_raw[inside], on[inside], t[inside]
    ev = np.empty(t.size, dtype=EVENT_DTYPE)
    t0 = int(t[0]) if t.size else 0
    ev["t"] = t - t0
    ev["x"] = W - 1 - x_raw
    ev["y"] = H - 1 - y_raw
    ev["p"] = on.astype(np.int8)
    if ev.size > 1 and np.any(np.diff(ev["t"]) < 0):
        ev = ev[np.argsort(ev["t"], kind="stable")]
        notes.append("events were not in time order (a timestamp reset?): sorted (stable)")
    return Recording(ev, (W, H, 2), f"aedat{version}", path, dropped, notes, t0)
