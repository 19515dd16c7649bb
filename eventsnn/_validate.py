"""Small argument checkers used at the public boundary.

Every checker names the argument in its message so a user can tell which input was bad.
"""
import math
import os
import stat
import numbers

import numpy as np

from ._constants import MAX_MAGNITUDE, MAX_N_STEPS


def positive_float(name, value, allow_zero=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def bounded_float(name, value, low, high, unit=""):
    """A real number in [low, high] (both finite and positive bounds)."""
    value = positive_float(name, value)
    if not low <= value <= high:
        raise ValueError(f"{name} must lie in [{low:g}, {high:g}]{unit}, got {value!r}")
    return value


def n_steps(name, value):
    """A positive number of time steps, at most ``_constants.MAX_N_STEPS``."""
    value = positive_int(name, value)
    if value > MAX_N_STEPS:
        raise ValueError(f"{name} must be <= {MAX_N_STEPS} time steps, got {value}")
    return value


def finite_float(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def positive_int(name, value, allow_zero=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def choice(name, value, options):
    try:
        ok = value in options
    except TypeError:  # an unhashable value against a set or dict
        ok = False
    if not ok:
        opts = sorted(options, key=repr)
        if value is not None and not isinstance(value, (str, numbers.Number)):
            raise TypeError(f"{name} must be one of {opts}, got {type(value).__name__} {value!r:.80}")
        raise ValueError(f"{name} must be one of {opts}, got {value!r:.80}")
    return value


def boolean(name, value):
    """A bool (Python or numpy); no truthy strings, numbers or None."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be true or false, got {value!r:.80}")
    return bool(value)


def real_in(name, value, low, high):
    """A finite real number in [low, high]."""
    value = finite_float(name, value)
    if not low <= value <= high:
        raise ValueError(f"{name} must lie in [{low:g}, {high:g}], got {value!r}")
    return value


def float_array(name, value, ndim=None, finite=True):
    """Convert to a float64 array; reject non-numeric, wrong rank or non-finite entries.

    With ``ndim`` the value must have that rank as given (a scalar is not a 1-D array);
    without it a scalar comes back as shape (1,)."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be array-like of numbers: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must hold real numbers, got complex values")
    # the rank is checked before ascontiguousarray, which turns a scalar into shape (1,)
    if ndim is not None and arr.ndim != ndim:
        got = f"a scalar ({arr.item()!r})" if arr.ndim == 0 else f"shape {arr.shape}"
        raise ValueError(f"{name} must be {ndim}-dimensional, got {got}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if finite and arr.size and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr


def int_array(name, value, ndim=1, low=None, high=None):
    """Convert to an int64 array of integers (integral floats accepted).

    With ``low``/``high`` every entry must lie in [low, high); the range is checked on the
    original values, so e.g. a uint64 beyond the int64 range is reported as given."""
    try:
        arr = np.asarray(value)
    except Exception as exc:
        raise TypeError(f"{name} must be array-like of integers: {exc}") from None
    if arr.size == 0:
        return np.zeros(arr.shape if arr.ndim == ndim else (0,), dtype=np.int64)
    if np.issubdtype(arr.dtype, np.integer):
        pass
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise TypeError(f"{name} must hold integers, got non-integral values")
    else:
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    # compare the values as given, before a (wrapping) cast to int64
    lo = np.iinfo(np.int64).min if low is None else low
    hi = np.iinfo(np.int64).max + 1 if high is None else high
    out_of_range = (arr < lo) | (arr >= hi)
    if np.any(out_of_range):
        found = arr[out_of_range].flat[0]
        found = (int(found) if np.issubdtype(arr.dtype, np.integer) or float(found).is_integer()
                 else float(found))
        if low is None and high is None:
            raise ValueError(f"{name} must fit in int64, found {found}")
        raise ValueError(f"{name} must lie in [{lo}, {hi}), found {found}")
    return np.ascontiguousarray(arr.astype(np.int64))


def rng_from(rng):
    """numpy Generator from a Generator, an int seed or None."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        if rng is not None and rng < 0:
            raise ValueError(f"rng must be a non-negative int seed, a numpy Generator or None, got {rng}")
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


def shape3(name, shape):
    """A (C, H, W) tuple of positive ints (Python or numpy integers; no floats, no bools)."""
    if isinstance(shape, (str, bytes)):
        raise TypeError(f"{name} must be a (C, H, W) tuple of ints, got {shape!r}")
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"{name} must be a (C, H, W) tuple of ints, got {shape!r}") from None
    if len(dims) != 3:
        raise ValueError(f"{name} must be a (C, H, W) tuple of positive ints, got {shape!r}")
    for d in dims:
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, numbers.Integral):
            raise TypeError(f"{name} must be a (C, H, W) tuple of ints, got {shape!r} "
                            f"(entry {d!r} is {type(d).__name__})")
    dims = tuple(int(d) for d in dims)
    if min(dims) <= 0:
        raise ValueError(f"{name} must be a (C, H, W) tuple of positive ints, got {shape!r}")
    return dims


def end_time(name, value):
    """An optional end time in ms: None or +inf mean "no limit" (returned as None), else a
    finite float >= 0."""
    if value is None:
        return None
    if (not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Real)
            and float(value) == math.inf):
        return None
    try:
        return positive_float(name, value, allow_zero=True)
    except ValueError as exc:
        raise ValueError(f"{exc} (use None or inf for no limit)") from None


def magnitude(name, arr, bound=MAX_MAGNITUDE):
    """Reject entries of a finite float array with |x| > bound (they would overflow the
    membrane traces into inf/NaN)."""
    if arr.size:
        big = float(np.max(np.abs(arr)))
        if big > bound:
            raise ValueError(f"{name} must have magnitude <= {bound:g} (larger values overflow "
                             f"the membrane computation), got {big:g}")
    return arr


def regular_file(path):
    """``path`` as a string, refused with ValueError when it names a device, FIFO or socket
    (``/dev/zero`` never ends: reading it would grow without bound). A missing path or a
    folder is left to the caller's own open() and its OSError naming the path."""
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except OSError:
        return p
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise ValueError(f"{p}: not a regular file (a device, FIFO or socket)")
    return p
