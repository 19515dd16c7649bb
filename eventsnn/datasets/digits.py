"""The UCI handwritten digits (scikit-learn's ``load_digits``): 1,797 8x8 images, 10 classes.

Fixed split: stratified, 20 % test (360 images), ``random_state=0``, so every run and every
learning rule sees the same train and test sets. Pixels (0..16) are scaled to [0, 1] and
shaped (n, 1, 8, 8); feature index c*64 + y*8 + x is the input neuron.
"""
from __future__ import annotations

import numpy as np
import os
from typing import Tuple, Union

from .. import _validate as _v

#: fraction of the digits held out as the test set, and the split's seed
TEST_FRACTION = 0.2
SPLIT_SEED = 0
IN_SHAPE = (1, 8, 8)
N_CLASSES = 10


def read_csv(path: Union[str, os.PathLike]) -> Tuple[np.ndarray, np.ndarray]:
    """(X, y) of the UCI digits CSV (``uci_digits/digits.csv.gz`` of the shared data:
    rows of 64 pixels 0..16 and the label): X float64 in [0, 1] shaped (n, 1, 8, 8), y
    int64. The same images as ``load_digits`` without scikit-learn (unsplit)."""
    import os

    a = np.loadtxt(_v.regular_file(path), delimiter=",", dtype=np.int64, ndmin=2)
    if a.shape[1] != 65 or a[:, :64].min() < 0 or a[:, :64].max() > 16:
        raise ValueError(f"{path}: expected rows of 64 pixels in 0..16 and a label, got shape {a.shape}")
    return (a[:, :64] / 16.0).reshape(-1, *IN_SHAPE), a[:, 64].copy()


def load_digits() -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, y_train, X_test, y_test): X float64 in [0, 1] shaped (n, 1, 8, 8), y int64.

    Needs scikit-learn (``pip install eventsnn[data]``); the data ships with it (offline)."""
    try:
        from sklearn.datasets import load_digits as _load
        from sklearn.model_selection import train_test_split
    except ImportError as exc:  # pragma: no cover - sklearn is an optional extra
        raise ImportError("the digits dataset needs scikit-learn: pip install scikit-learn") from exc
    data = _load()
    X = (data.images.astype(np.float64) / 16.0).reshape(-1, *IN_SHAPE)
    y = data.target.astype(np.int64)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=TEST_FRACTION,
                                              random_state=SPLIT_SEED, stratify=y)
    return (np.ascontiguousarray(X_tr), np.ascontiguousarray(y_tr),
            np.ascontiguousarray(X_te), np.ascontiguousarray(y_te))
