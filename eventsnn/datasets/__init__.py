"""Datasets: a small registry of loaders.

``DATASETS`` maps a name to a loader returning ``(X_train, y_train, X_test, y_test)`` with
X float64 in [0, 1] shaped (n, *in_shape) and y int64 labels. To add a dataset, add one
entry: either the loader itself or a ``"module:function"`` string (imported lazily, so
optional dependencies are paid only when used); ``eventsnn train --dataset name`` then
works.
"""
import importlib

DATASETS = {
    "digits": "eventsnn.datasets.digits:load_digits",
}


def load(name, **kwargs):
    """(X_train, y_train, X_test, y_test) of the dataset registered as ``name``."""
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {name!r}")
    return get_loader(name)(**kwargs)


def get_loader(name):
    """The loader function registered as ``name``."""
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {name!r}")
    entry = DATASETS[name]
    if callable(entry):
        return entry
    module, func = entry.split(":")
    return getattr(importlib.import_module(module), func)
