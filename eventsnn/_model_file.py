"""Reading a saved model (.npz) without trusting it.

A model file is a zip archive of .npy members: ``meta`` (UTF-8 JSON as uint8) and the
weight/bias arrays. Everything in it is a claim until checked: the member headers are read
first (a few bytes each), the JSON is parsed with a size limit, and an array is decompressed
only once its header's dtype and shape match what the architecture declares. Every
malformed file becomes one ``ValueError`` that names the path; nothing is unpickled.
"""
import json
import os
import zipfile

import numpy as np

from ._validate import regular_file

#: largest metadata member read (bytes); real metadata is a few hundred bytes
MAX_META_BYTES = 1 << 20


class _Archive:
    """The members of an open model archive, read on demand with their headers checked."""

    def __init__(self, path):
        self.path = regular_file(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except FileNotFoundError:
            raise
        except IsADirectoryError:
            raise
        except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
            if isinstance(exc, OSError) and not isinstance(exc, zipfile.BadZipFile) \
                    and exc.errno is not None:
                raise  # a real I/O error (permissions...) keeps its OSError with the path
            raise self.error(f"not an eventsnn model file (not a readable .npz archive: {exc})") from None
        self.members = {}
        for info in self._zip.infolist():
            if info.filename.endswith(".npy"):
                self.members[info.filename[:-4]] = info

    def error(self, what):
        return ValueError(f"{self.path}: {what}")

    def close(self):
        self._zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def header(self, key):
        """(shape, dtype) of member ``key`` from its .npy header, checked for consistency with
        the member's declared size; object dtypes are refused (they would need unpickling)."""
        if key not in self.members:
            raise self.error(f"the file holds no array {key!r}")
        info = self.members[key]
        try:
            with self._zip.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
                else:
                    raise ValueError(f"unsupported .npy format version {version}")
                offset = fh.tell()
        except (ValueError, EOFError, OSError, zipfile.BadZipFile, KeyError, SyntaxError) as exc:
            raise self.error(f"array {key!r} has a malformed header ({exc})") from None
        if dtype.hasobject:
            raise self.error(f"array {key!r} holds Python objects, which are never unpickled")
        nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if info.file_size != offset + nbytes:
            raise self.error(f"array {key!r} declares shape {shape} ({nbytes} bytes) but its member "
                             f"holds {info.file_size - offset} bytes of data")
        return tuple(int(s) for s in shape), dtype

    def array(self, key, shape=None, kind="f"):
        """Member ``key`` as an array, read only after its header matched ``shape`` (when
        given) and the numeric ``kind`` ("f": real numbers, "u8": bytes)."""
        got_shape, dtype = self.header(key)
        if shape is not None and got_shape != tuple(shape):
            raise self.error(f"array {key!r} has shape {got_shape}, the architecture needs {tuple(shape)}")
        if kind == "u8" and dtype != np.uint8:
            raise self.error(f"array {key!r} must hold bytes (uint8), got {dtype}")
        if kind == "f" and dtype.kind not in "fiu":
            raise self.error(f"array {key!r} must hold real numbers, got dtype {dtype}")
        try:
            with self._zip.open(self.members[key]) as fh:
                arr = np.lib.format.read_array(fh, allow_pickle=False)
        except (ValueError, EOFError, OSError, zipfile.BadZipFile) as exc:
            raise self.error(f"array {key!r} cannot be read ({exc})") from None
        return arr

    def meta(self):
        """The metadata dict (size-limited JSON)."""
        if "meta" not in self.members:
            raise self.error("not an eventsnn model (no metadata)")
        shape, _ = self.header("meta")
        if len(shape) != 1 or shape[0] > MAX_META_BYTES:
            raise self.error(f"metadata must be at most {MAX_META_BYTES} bytes, got shape {shape}")
        raw = self.array("meta", kind="u8")
        try:
            meta = json.loads(bytes(raw).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise self.error(f"metadata is not valid JSON ({type(exc).__name__}: {exc})") from None
        if not isinstance(meta, dict):
            raise self.error("metadata must be a JSON object")
        return meta


def open_model(path):
    """An :class:`_Archive` over ``path`` (use as a context manager)."""
    return _Archive(path)
