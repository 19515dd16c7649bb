"""Datasets: a small registry of loaders.

``DATASETS`` maps a name to a loader returning ``(X_train, y_train, X_test, y_test)`` with
y int64 labels and X either float64 in [0, 1] shaped (n, *in_shape) (encoded to events by
the learner) or a list of :class:`eventsnn.SpikeTrains` (event data, used as is; an
:class:`~eventsnn.datasets.event_data.EventSamples` list also reports its ``in_shape``).
To add a dataset, add one entry: either the loader itself or a ``"module:function"``
string (imported lazily, so optional dependencies are paid only when used); ``eventsnn
train --dataset name`` then works. Loader keyword arguments come from ``--data-dir``
(``data_dir``) and ``--data KEY=VALUE``.

- ``"digits"``: scikit-learn's 8x8 digits, (n, 1, 8, 8), no arguments.
- ``"nmnist"``: N-MNIST recordings as SpikeTrains, ``data_dir`` required, options
  ``t_max`` (ms), ``merge_polarity``, ``limit``, ``limit_test``
  (:func:`eventsnn.datasets.event_data.load_nmnist`).
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

DATASETS = {
    "digits": "eventsnn.datasets.digits:load_digits",
    "nmnist": "eventsnn.datasets.event_data:load_nmnist",
}


def load(name: str, **kwargs: Any) -> tuple:
    """(X_train, y_train, X_test, y_test) of the dataset registered as ``name``."""
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {name!r}")
    return get_loader(name)(**kwargs)


def get_loader(name: str) -> Callable[..., tuple]:
    """The loader function registered as ``name``."""
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {name!r}")
    entry = DATASETS[name]
    if callable(entry):
        return entry
    module, func = entry.split(":")
    return getattr(importlib.import_module(module), func)
