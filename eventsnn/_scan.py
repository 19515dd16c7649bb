"""One-pass scan of a weight array for ``Sequential._check_weights``: NaN/inf and the
largest magnitude together, with no temporary arrays (a 4000 x 1000 Dense weight is 32 MB;
``np.isfinite`` and ``np.abs`` each made a full-size temporary on every ``simulate``)."""
import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _scan(flat):
    m = 0.0
    finite = True
    for k in range(flat.size):
        a = abs(flat[k])
        finite &= a <= 1.7976931348623157e308   # False for NaN and inf
        m = max(m, a)
    return m, finite


def max_abs_finite(arr: np.ndarray):
    """(largest |entry| as a float, True when every entry is finite) of a float64 array of
    any memory layout (0.0, True when empty)."""
    flat = np.ravel(arr, order="K")   # a view for C- or F-contiguous arrays
    if flat.dtype != np.float64:
        flat = flat.astype(np.float64)
    m, finite = _scan(flat)
    return float(m), bool(finite)
