"""``eventsnn.io.read``: one entry point for every supported event file."""
from __future__ import annotations

import os
from typing import Optional, Tuple, Union

from .aedat2 import read_aedat2
from .aedat4 import read_aedat4
from .binary import read_bin
from .recording import Recording

FORMATS = ("auto", "bin", "nmnist", "dvs-gesture", "aedat4", "aedat2")


def read(path: Union[str, "os.PathLike[str]"], format: str = "auto", sensor_size: Optional[Tuple[int, int, int]] = None) -> Recording:
    """Read an event file.

    ``format="auto"`` looks at the content: an ``#!AER-DAT4.0`` header is AEDAT 4.0,
    ``#!AER-DAT2.0`` / ``#!AER-DAT1.0`` is a jAER file (:func:`eventsnn.io.read_aedat2`),
    any other ``#!AER-DAT`` header is refused with its version (AEDAT 3.1 is not
    supported), and everything else is read as the 40-bit N-MNIST/.bs2 format (sensor size inferred,
    see :func:`eventsnn.io.read_bin`). ``"nmnist"`` and ``"dvs-gesture"`` fix the sensor
    (34 x 34 / 128 x 128) and refuse events outside it."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such event file: {path}")
    with open(path, "rb") as fh:
        head = fh.read(16)
    if format == "aedat4" or (format == "auto" and head.startswith(b"#!AER-DAT4")):
        return read_aedat4(path)
    if format == "aedat2" or (format == "auto" and head[:12] in (b"#!AER-DAT2.0", b"#!AER-DAT1.0")):
        return read_aedat2(path)
    if format == "auto" and head.startswith(b"#!AER-DAT"):
        version = head[9:12].decode("ascii", "replace")
        raise ValueError(f"{path}: AEDAT {version} files are not supported (AEDAT 1.0, 2.0, 4.0 "
                         "and the 40-bit N-MNIST/.bs2 format are)")
    if format == "nmnist":
        return read_bin(path, (34, 34, 2), "nmnist-bin")
    if format == "dvs-gesture":
        return read_bin(path, (128, 128, 2), "dvs-gesture-bs2")
    return read_bin(path, sensor_size)
