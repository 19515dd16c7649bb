"""Progress bars and the one-time compilation note, shared by every long job.

:func:`progress_bar` returns a tqdm bar when tqdm is installed (a dependency of eventsnn),
else a small built-in bar on stderr, so that asking for progress never gives silently
nothing. :func:`note_compilation` prints "compiling kernels (first run only)..." on stderr
the first time numba has to compile a group of kernels (no entry in numba's on-disk cache).
"""
from __future__ import annotations

import os
import sys
import time
from types import ModuleType
from typing import Any, Optional, TextIO

_NOTED: set = set()


class _SimpleBar:
    """A minimal text progress bar on a stream (used only when tqdm is missing)."""

    def __init__(self, total: int, desc: str, unit: str, stream: TextIO) -> None:
        self.total = int(total)
        self.desc = desc
        self.unit = unit
        self.n = 0
        self.stream = stream
        self.postfix = ""
        self._t0 = time.perf_counter()
        self._last = 0.0
        self._draw(force=True)

    def _draw(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last < 0.5 and self.n < self.total:
            return
        self._last = now
        frac = self.n / self.total if self.total else 1.0
        filled = int(round(20 * frac))
        line = (f"\r{self.desc}: {100 * frac:3.0f}% [{'#' * filled}{'.' * (20 - filled)}] "
                f"{self.n}/{self.total} {self.unit} {now - self._t0:.1f} s {self.postfix}")
        self.stream.write(line)
        self.stream.flush()

    def update(self, n: int = 1) -> None:
        self.n += n
        self._draw()

    def set_postfix(self, **kwargs: Any) -> None:
        self.postfix = " ".join(f"{k}={val}" for k, val in kwargs.items())

    def close(self) -> None:
        self._draw(force=True)
        self.stream.write("\n")
        self.stream.flush()


def progress_bar(total: int, enabled: bool, desc: str, unit: str = "it",
                 stream: Optional[TextIO] = None) -> Any:
    """A progress bar of ``total`` steps on stderr, or None when not ``enabled``.

    tqdm's bar when tqdm imports, else a built-in text bar (same ``update``,
    ``set_postfix`` and ``close`` methods)."""
    if not enabled:
        return None
    stream = sys.stderr if stream is None else stream
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _SimpleBar(total, desc, unit, stream)
    return tqdm(total=total, desc=desc, leave=False, unit=unit, file=stream)


def _has_cache_entry(dispatcher: Any) -> Optional[bool]:
    """Whether numba's on-disk cache holds an index for this kernel (None: unknown)."""
    try:
        return os.path.exists(dispatcher._cache._cache_file._index_path)
    except AttributeError:  # another numba version: we cannot tell
        return None


def note_compilation(*modules: ModuleType, stream: Optional[TextIO] = None) -> bool:
    """Print "compiling kernels (first run only)..." on stderr once per process when one of
    ``modules`` has none of its numba kernels in numba's on-disk cache (i.e. numba is about
    to compile that group; a module with some kernels cached has run before, and its other
    kernels may simply be unused). Returns whether the note was printed."""
    key = tuple(m.__name__ for m in modules)
    if key in _NOTED:
        return False
    _NOTED.add(key)
    uncached = False
    for module in modules:
        found = [_has_cache_entry(obj) for obj in vars(module).values()
                 if hasattr(obj, "_cache") and hasattr(obj, "py_func")]
        if any(f is None for f in found):
            return False  # another numba version: we cannot tell
        if found and not any(found):
            uncached = True
    if not uncached:
        return False
    stream = sys.stderr if stream is None else stream
    stream.write("compiling kernels (first run only)...\n")
    stream.flush()
    return True
