"""IDX files (MNIST's format), plain or gzipped: ``read_idx(path) -> ndarray``.

Big-endian header: 2 zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16,
0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, then one big-endian
uint32 size per dimension, then the data in C order.
"""
from __future__ import annotations

import gzip
import os
from typing import Union

import numpy as np

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
#: largest array read (elements): 2**31, far above MNIST's 60,000 x 28 x 28
MAX_ELEMENTS = 1 << 31


def read_idx(path: Union[str, "os.PathLike[str]"]) -> np.ndarray:
    """The array stored in an IDX file (``.gz`` is decompressed); ValueError naming the
    file when the header and the size disagree."""
    path = os.fspath(path)
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    with (gzip.open(path, "rb") if gz else open(path, "rb")) as fh:
        head = fh.read(4)
        if len(head) < 4 or head[:2] != b"\x00\x00" or head[2] not in _TYPES:
            raise ValueError(f"{path} is not an IDX file (header {head!r})")
        ndim = head[3]
        dims_raw = fh.read(4 * ndim)
        if len(dims_raw) != 4 * ndim:
            raise ValueError(f"{path}: truncated IDX header")
        dims = tuple(int(d) for d in np.frombuffer(dims_raw, dtype=">u4"))
        n = int(np.prod(dims, dtype=np.int64)) if dims else 1
        if n > MAX_ELEMENTS:
            raise ValueError(f"{path}: header claims {n} elements (more than {MAX_ELEMENTS})")
        dtype = np.dtype(_TYPES[head[2]])
        data = fh.read(n * dtype.itemsize + 1)
    if len(data) != n * dtype.itemsize:
        raise ValueError(f"{path}: header says {dims} ({n * dtype.itemsize} bytes) but the file "
                         f"holds {len(data)} bytes of data")
    return np.frombuffer(data, dtype=dtype).astype(dtype.newbyteorder("=")).reshape(dims)
