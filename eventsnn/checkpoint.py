"""Epoch checkpoints of a :class:`eventsnn.train.Trainer`, so that a killed run can go on.

A checkpoint is one ``.npz`` file (written atomically: a temporary file, then a rename)
holding every array that training changes (weights, biases, optimiser moments, the raw
parameters of a weight reparametrisation, `eventsnn.reparam`) and a JSON
record of everything else: the epoch reached, the history, the optimiser's step count and
learning rate, the states of the trainer's and the learner's random generators, and the
learner's own state (e.g. whether the firing-rate initialisation ran, ASF-BP's scales).
Resuming from it continues exactly where the run stopped: the result equals that of an
uninterrupted run. Loading never unpickles.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict

import numpy as np

from . import _validate as _v

FORMAT = "eventsnn.checkpoint"
VERSION = 1


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (list, tuple)):
        return [_jsonable(o) for o in obj]
    if isinstance(obj, dict):
        return {str(k): _jsonable(val) for k, val in obj.items()}
    return obj


def learner_state(learner: Any) -> Dict[str, Any]:
    """JSON-able state of a learner: its random generators' states and the attributes it
    lists in ``_checkpoint_attrs``."""
    gens = {name: obj.bit_generator.state for name, obj in vars(learner).items()
            if isinstance(obj, np.random.Generator)}
    attrs = {name: _jsonable(getattr(learner, name))
             for name in getattr(learner, "_checkpoint_attrs", ())}
    return {"generators": _jsonable(gens), "attrs": attrs}


def restore_learner_state(learner: Any, state: Dict[str, Any]) -> None:
    for name, gen_state in state.get("generators", {}).items():
        gen = getattr(learner, name, None)
        if not isinstance(gen, np.random.Generator):
            raise ValueError(f"checkpoint holds generator {name!r} the learner does not have")
        gen.bit_generator.state = gen_state
    for name, value in state.get("attrs", {}).items():
        setattr(learner, name, value)


def save(path: str, trainer: Any, epoch: int, generators: Dict[str, np.random.Generator],
         config: Dict[str, Any] | None = None) -> None:
    """Write the state of ``trainer`` after ``epoch`` to ``path`` (atomically)."""
    arrays: Dict[str, np.ndarray] = {}
    for k, layer in enumerate(trainer.learner.net.layers):
        if layer.has_weight:
            arrays[f"weight_{k}"] = layer.weight
        if getattr(layer, "has_bias", False):
            arrays[f"bias_{k}"] = layer.bias
    reparam = getattr(trainer, "reparam", None)
    if reparam is not None:
        arrays.update(reparam.state_arrays())
    opt = trainer.optimizer
    for k, slots in opt.state.items():
        for name, arr in slots.items():
            arrays[f"opt_{k}_{name}"] = arr
    meta = {"format": FORMAT, "version": VERSION, "epoch": int(epoch),
            "history": _jsonable(trainer.history), "train_seconds": trainer.train_seconds,
            "optimizer": {"t": int(opt.t), "lr": float(opt.lr), "class": type(opt).__name__,
                          "slots": {str(k): sorted(s) for k, s in opt.state.items()}},
            "generators": {n: _jsonable(g.bit_generator.state) for n, g in generators.items()},
            "learner": {"name": trainer.learner.name, **learner_state(trainer.learner)},
            "config": _jsonable(config or {})}
    if reparam is not None:
        meta["reparam"] = _jsonable(reparam.config())
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    path = os.fspath(path)
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]
    os.replace(tmp, path)


def load(path: str) -> tuple[Dict[str, Any], Dict[str, np.ndarray]]:
    """(meta, arrays) of a checkpoint file; ValueError naming the file when it is not one."""
    path = os.fspath(path)
    try:
        with np.load(_v.regular_file(path), allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta = json.loads(bytes(arrays.pop("meta")).decode("utf-8"))
    except (OSError, ValueError, KeyError, EOFError, UnicodeDecodeError, RecursionError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{path} is not a readable eventsnn checkpoint ({exc})") from None
    except Exception as exc:  # zipfile.BadZipFile and friends
        raise ValueError(f"{path} is not a readable eventsnn checkpoint ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not an eventsnn checkpoint")
    for name, arr in arrays.items():  # np.load hands back a member without an npy header as bytes
        if not isinstance(arr, np.ndarray) or arr.dtype == object:
            raise ValueError(f"{path}: member {name!r} is not an array (a corrupt checkpoint)")
    return meta, arrays


def restore(trainer: Any, meta: Dict[str, Any], arrays: Dict[str, np.ndarray],
            generators: Dict[str, np.random.Generator], path: str = "checkpoint") -> int:
    """Put the state of a loaded checkpoint into ``trainer`` and ``generators``; returns
    the epoch it was written after."""
    learner = trainer.learner
    if meta["learner"]["name"] != learner.name:
        raise ValueError(f"{path} was written by rule {meta['learner']['name']!r}, "
                         f"not {learner.name!r}")
    opt = trainer.optimizer
    if meta["optimizer"]["class"] != type(opt).__name__:
        raise ValueError(f"{path} was written with optimizer {meta['optimizer']['class']}, "
                         f"not {type(opt).__name__}")
    for k, layer in enumerate(learner.net.layers):
        if layer.has_weight:
            w = arrays.get(f"weight_{k}")
            if w is None or w.shape != layer.weight.shape:
                raise ValueError(f"{path}: weight of layer {k} does not match the network "
                                 f"({None if w is None else w.shape} vs {layer.weight.shape})")
            layer.weight = w
        if getattr(layer, "has_bias", False):
            layer.bias = arrays[f"bias_{k}"]
    reparam = getattr(trainer, "reparam", None)
    if (reparam is None) != (meta.get("reparam") is None):
        raise ValueError(f"{path} was written {'with' if reparam is None else 'without'} a weight "
                         f"reparametrisation (reparam={meta.get('reparam')!r}), the trainer has "
                         f"{None if reparam is None else reparam.config()!r}")
    if reparam is not None:
        reparam.restore(meta["reparam"], arrays, path)
    opt.t = int(meta["optimizer"]["t"])
    opt.state = {int(k): {name: np.array(arrays[f"opt_{k}_{name}"], dtype=np.float64)
                          for name in names}
                 for k, names in meta["optimizer"]["slots"].items()}
    for name, gen in generators.items():
        gen.bit_generator.state = meta["generators"][name]
    restore_learner_state(learner, meta["learner"])
    trainer.history = [dict(row) for row in meta["history"]]
    trainer.train_seconds = float(meta["train_seconds"])
    return int(meta["epoch"])
