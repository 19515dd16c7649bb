"""``eventsnn train``: train any registered learning rule from flags or a JSON config file.

Prints exactly one line on stdout: a JSON object of metrics (test_accuracy, train_seconds,
epochs, spikes_per_sample, ...). A progress bar goes to stderr when tqdm is installed and
stderr is a terminal (``--progress`` / ``--no-progress`` to force). See docs/training.md.

Architecture strings (``--arch``), tokens separated by "-":

- ``<n>``: a Dense layer of n neurons. A *leading* integer is the input size instead and
  must equal the dataset's number of features (``64-100-10``: 64 inputs, Dense 100,
  Dense 10).
- ``<C>x<H>x<W>`` (leading only): the input shape, e.g. ``2x34x34-8C5s2p2-P2-10``; its
  size must equal the dataset's number of features. Needed for convolutions on event
  datasets that do not report their shape.
- ``<C>C<k>``: Conv2d with C output channels and a k x k kernel (stride 1, no padding);
  optional suffixes ``s<stride>`` and ``p<padding>``, e.g. ``8C3p1``.
- ``P<k>``: average pooling k x k, adjusted backward (Zhu et al.); ``AP<k>``: plain average
  pooling; ``MP<k>``: max pooling.

A network that starts with a convolution takes the dataset's (C, H, W) input (array data:
its shape; event data: the ``in_shape`` its loader reports, e.g. (2, 34, 34) for N-MNIST;
a leading shape token overrides it); a Flatten is
inserted before the first Dense layer that follows a convolution or pooling layer. The
last Dense layer must have one neuron per class.
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import argtypes as at
from . import _validate as v
from ._constants import MAX_EPOCHS
from .datasets import DATASETS, get_loader, load
from .layers import AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d
from .learner import RULES, get_learner_class
from .network import Sequential
from .neurons import SRM
from .optim import OPTIMIZERS
from .reparam import GRADS as REPARAM_GRADS, REPARAMS, WeightStandardization
from .spikes import SpikeTrains
from .layers import Layer

#: what ``eventsnn train`` does with no arguments
DEFAULTS: Dict[str, Any] = {
    "rule": "event",
    "dataset": "digits",
    "arch": "64-100-10",
    "epochs": 30,
    "batch": 32,
    "lr": 0.01,
    "optimizer": "adam",
    "weight_decay": 0.0,
    "schedule": "cosine",
    "clip": None,
    "seed": 0,
    "val": 0.0,
    "opt": {},
    "neuron": {},
    "limit": None,
    "save": None,
    "data_dir": None,
    "data": {},
    "log": None,
    "checkpoint": None,
    "threads": None,
    "scheduler": None,
    "scheduler_timeout": 10.0,
    "reparam": None,
    "reparam_grad": "exact",
    "reparam_raw_scale": 1.0,
}

_CONV = re.compile(r"^([0-9]+)C([0-9]+)(?:s([0-9]+))?(?:p([0-9]+))?$")
_POOL = re.compile(r"^(MP|AP|P)([0-9]+)$")
_SHAPE = re.compile(r"^([0-9]+)x([0-9]+)x([0-9]+)$")
_INT = re.compile(r"^[0-9]+$")


def parse_arch(arch: str, in_shape: Sequence[int], n_classes: Optional[int] = None) -> List[Layer]:
    """Layers of an architecture string for inputs of shape ``in_shape`` (see module doc)."""
    if not isinstance(arch, str) or not arch.strip():
        raise ValueError("arch must be a non-empty string such as '64-100-10' or '8C3-P2-10'")
    tokens = [t.strip() for t in arch.strip().split("-")]
    n_features = int(np.prod(in_shape))
    layers: List[Layer] = []
    shape = tuple(int(s) for s in in_shape)
    m = _SHAPE.match(tokens[0])
    if m:
        shape = tuple(int(g) for g in m.groups())
        if min(shape) <= 0 or int(np.prod(shape)) != n_features:
            raise ValueError(f"arch starts with input shape {tokens[0]} ({int(np.prod(shape))} "
                             f"features) but the dataset has {n_features} features per sample")
        tokens = tokens[1:]
    elif _INT.match(tokens[0]):
        if int(tokens[0]) != n_features:
            raise ValueError(f"arch starts with input size {tokens[0]} but the dataset has "
                             f"{n_features} features per sample")
        tokens = tokens[1:]
        shape = (n_features,)
    if not tokens:
        raise ValueError(f"arch {arch!r} has no layer")
    for tok in tokens:
        if _INT.match(tok):
            n = int(tok)
            if n <= 0:
                raise ValueError(f"arch token {tok!r}: a Dense layer needs > 0 neurons")
            if len(shape) != 1:
                if layers:  # a network's first layer takes the flat input itself
                    layers.append(Flatten())
                shape = (int(np.prod(shape)),)
            layers.append(Dense(shape[0], n))
            shape = (n,)
            continue
        m = _CONV.match(tok)
        if m:
            if len(shape) != 3:
                raise ValueError(f"arch token {tok!r}: a convolution needs a (C, H, W) input, "
                                 f"got {shape}")
            c, k = int(m.group(1)), int(m.group(2))
            s = int(m.group(3) or 1)
            p = int(m.group(4) or 0)
            conv = Conv2d(shape, c, k, stride=s, padding=p)
            layers.append(conv)
            shape = conv.bind(shape)
            continue
        m = _POOL.match(tok)
        if m:
            if len(shape) != 3:
                raise ValueError(f"arch token {tok!r}: pooling needs a (C, H, W) input, got {shape}")
            kind, k = m.group(1), int(m.group(2))
            pool = MaxPool2d(k) if kind == "MP" else AvgPool2d(k, adjusted=(kind == "P"))
            layers.append(pool)
            shape = pool.bind(shape)
            continue
        raise ValueError(f"arch token {tok!r} not understood: use <n> (Dense), <C>C<k>[s<s>][p<p>] "
                         "(Conv2d), P<k> (adjusted avg pool), AP<k> (avg pool), MP<k> (max pool); "
                         "a leading <C>x<H>x<W> gives the input shape")
    if not isinstance(layers[-1], Dense):
        raise ValueError(f"arch {arch!r} must end with a Dense layer (one neuron per class)")
    if n_classes is not None and layers[-1].n_out_decl != n_classes:
        raise ValueError(f"arch {arch!r} ends with {layers[-1].n_out_decl} neurons but the "
                         f"dataset has {n_classes} classes")
    return layers


#: options whose value is a list (a pair or a sequence); every other option is a scalar
LIST_OPTIONS = ("input_times", "clamp", "target")


def _value(text, what="--opt"):
    """A --opt value: JSON if it parses (numbers, true/false/null, lists), else a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
    except RecursionError:
        raise ValueError(f"{what}: value nested too deeply") from None


def check_option_values(what: str, options: Dict[str, Any]) -> Dict[str, Any]:
    """Option values are JSON scalars, or flat lists of numbers for LIST_OPTIONS: no
    objects, no nested lists (ValueError naming ``what``.key)."""
    for key, val in options.items():
        if isinstance(val, dict):
            raise ValueError(f"{what} {key}: must be a scalar (number, string, true/false, null), "
                             f"not an object: {json.dumps(val)[:80]}")
        if isinstance(val, list):
            if key not in LIST_OPTIONS:
                raise ValueError(f"{what} {key}: must be a scalar, not a list: {json.dumps(val)[:80]} "
                                 f"(only {', '.join(LIST_OPTIONS)} take lists)")
            if any(isinstance(x, (list, dict)) for x in val):
                raise ValueError(f"{what} {key}: must be a flat list of numbers, got "
                                 f"{json.dumps(val)[:80]}")
    return options


def _pairs(items, flag):
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"{flag} expects key=value, got {item!r}")
        key, val = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ValueError(f"{flag} expects key=value with a non-empty key, got {item!r}")
        out[key] = _value(val.strip(), f"{flag} {key}")
    return check_option_values(flag, out)


def build_parser() -> argparse.ArgumentParser:
    D = DEFAULTS
    p = argparse.ArgumentParser(
        prog="eventsnn train",
        description="Train a spiking network on a dataset with any registered learning rule; "
                    "prints one JSON line of metrics on stdout (progress and per-epoch lines "
                    "go to stderr).",
        epilog="arch grammar: <n> Dense (a leading integer is the input size), <C>C<k>[s<s>][p<p>] "
               "Conv2d, P<k> adjusted average pool, AP<k> plain average pool, MP<k> max pool; a "
               "leading <C>x<H>x<W> gives the input shape. "
               "Examples: eventsnn train --arch 8C3-P2-10 --opt kernel=depsilon; "
               "eventsnn train --dataset nmnist --data-dir PATH --data t_max=300 "
               "--data time_scale=0.1 --arch 12C5s2-MP2-10 --batch 8 --opt t_window=30 "
               "--opt desired=10")
    p.add_argument("--config", metavar="FILE",
                   help="JSON file with any of the options below (flags override it)")
    p.add_argument("--rule", choices=sorted(RULES), help=f"learning rule (default: {D['rule']})")
    p.add_argument("--dataset", choices=sorted(DATASETS), help=f"dataset (default: {D['dataset']})")
    p.add_argument("--data-dir", dest="data_dir", metavar="PATH",
                   help="folder of the dataset's files (needed by file-based datasets: nmnist); "
                        "default: none")
    p.add_argument("--data", action="append", metavar="KEY=VALUE",
                   help="dataset loader option (repeatable), value parsed as JSON, e.g. "
                        "--data t_max=300 --data merge_polarity=true (nmnist)")
    p.add_argument("--arch", help=f"architecture string (default: {D['arch']})")
    p.add_argument("--epochs", type=at.int_range(0, MAX_EPOCHS), help=f"training epochs (default: {D['epochs']})")
    p.add_argument("--batch", type=at.positive_int, help=f"mini-batch size (default: {D['batch']})")
    p.add_argument("--lr", type=at.positive_float, help=f"learning rate (default: {D['lr']})")
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS),
                   help=f"optimiser (default: {D['optimizer']})")
    p.add_argument("--weight-decay", dest="weight_decay", type=at.nonneg_float,
                   help=f"weight decay of the optimiser (default: {D['weight_decay']})")
    p.add_argument("--schedule", choices=["constant", "cosine"],
                   help=f"learning-rate schedule (default: {D['schedule']})")
    p.add_argument("--clip", type=at.positive_float,
                   help="clip the gradient L2 norm to this value (default: no clipping)")
    p.add_argument("--reparam", choices=["none", *REPARAMS],
                   help="train Dense/Conv2d weights through Zhu et al.'s per-channel weight "
                        "standardisation (raw weight, gain, shift; docs/training.md) "
                        "(default: none)")
    p.add_argument("--reparam-grad", dest="reparam_grad", choices=list(REPARAM_GRADS),
                   help="gradient of the standardisation: exact (chain rule) or code (the "
                        "authors' bn_backward) (default: exact)")
    p.add_argument("--reparam-raw-scale", dest="reparam_raw_scale", type=at.positive_float,
                   help="factor on the raw weights when the standardisation takes them: "
                        "the effective weights stay, the optimiser's relative steps on them "
                        "grow as 1/factor (0.408 = 1/sqrt(6): torch's default spread, as the "
                        "authors') (default: 1)")
    p.add_argument("--seed", type=at.nonneg_int,
                   help=f"seed of weights, batches and split (default: {D['seed']})")
    p.add_argument("--val", type=at.fraction,
                   help=f"validation fraction of the training set, in [0, 1) (default: {D['val']})")
    p.add_argument("--opt", action="append", metavar="KEY=VALUE",
                   help="rule option (repeatable), value parsed as JSON, e.g. --opt kernel=depsilon")
    p.add_argument("--neuron", action="append", metavar="KEY=VALUE",
                   help="SRM parameter of the network (tau_m, tau_s, theta; event rule)")
    p.add_argument("--limit", type=at.positive_int,
                   help="use only the first N training samples (default: all)")
    p.add_argument("--save", metavar="FILE",
                   help="save the trained model (with its training options) to this .npz path "
                        "(default: not saved)")
    p.add_argument("--log", metavar="FILE",
                   help="append one JSON line per epoch to FILE (a fresh run truncates it; "
                        "default: no log)")
    p.add_argument("--checkpoint", metavar="FILE",
                   help="write the training state to FILE after every epoch (default: "
                        "<log>.ckpt.npz when --log is given, else none)")
    p.add_argument("--resume", action="store_true",
                   help="go on from the checkpoint (--checkpoint or the --log default) with the "
                        "same options; the result equals an uninterrupted run")
    p.add_argument("--threads", type=at.positive_int,
                   help="total threads (samples in parallel for the event rule, BLAS threads for "
                        "dense rules; default: numba's thread count for samples, 1 BLAS thread)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="train data-parallel on a Dask cluster: a scheduler address "
                        "(tcp://HOST:PORT) or local:N (N local worker processes); same result "
                        "as without it (docs/distributed.md; needs eventsnn[distributed])")
    p.add_argument("--scheduler-timeout", dest="scheduler_timeout", type=at.timeout_seconds, metavar="SECONDS",
                   help="give up reaching the scheduler after this long, at most 86400 (default 10)")
    bar = p.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="progress bar on stderr (default: when stderr is a terminal; "
                          "otherwise one line per epoch)")
    bar.add_argument("--no-progress", dest="progress", action="store_false",
                     help="neither a bar nor per-epoch lines")
    return p


def resolve_config(argv: Optional[Sequence[str]]) -> Dict[str, Any]:
    """The effective configuration dict from defaults, an optional config file and flags."""
    parser = build_parser()
    args = parser.parse_args(argv)
    cfg = json.loads(json.dumps(DEFAULTS))
    if args.config:
        file_cfg = _read_config(args.config)
        if not isinstance(file_cfg, dict):
            raise ValueError(f"config file {args.config} must hold a JSON object")
        unknown = sorted(set(file_cfg) - set(DEFAULTS) - {"progress"})
        if unknown:
            raise ValueError(f"config file has unknown keys {unknown}; known: {sorted(DEFAULTS)}")
        _check_config_types(args.config, file_cfg)
        _check_config_ranges(parser, args.config, file_cfg)
        cfg.update(file_cfg)
    for key in ("rule", "dataset", "arch", "epochs", "batch", "lr", "optimizer", "weight_decay",
                "schedule", "clip", "seed", "val", "limit", "save", "data_dir", "log",
                "checkpoint", "threads", "scheduler", "scheduler_timeout", "reparam",
                "reparam_grad", "reparam_raw_scale"):
        val = getattr(args, key)
        if val is not None:
            cfg[key] = val
    cfg["opt"] = dict(cfg.get("opt") or {}, **_pairs(args.opt, "--opt"))
    cfg["neuron"] = dict(cfg.get("neuron") or {}, **_pairs(args.neuron, "--neuron"))
    cfg["data"] = dict(cfg.get("data") or {}, **_pairs(args.data, "--data"))
    cfg["progress"] = args.progress if args.progress is not None else cfg.get("progress")
    cfg["resume"] = bool(args.resume)
    if cfg.get("checkpoint") is None and cfg.get("log"):
        cfg["checkpoint"] = str(cfg["log"]) + ".ckpt.npz"
    if cfg["resume"] and not cfg.get("checkpoint"):
        raise ValueError("--resume needs --checkpoint FILE (or --log FILE, whose checkpoint is "
                         "FILE.ckpt.npz)")
    for key in ("save", "log", "checkpoint"):
        _check_writable(key, cfg.get(key))
    if cfg["rule"] not in RULES:
        raise ValueError(f"rule must be one of {sorted(RULES)}, got {cfg['rule']!r}")
    if cfg.get("reparam") == "none":
        cfg["reparam"] = None
    if cfg.get("reparam") not in (None, *REPARAMS):
        raise ValueError(f"reparam must be null, 'none' or one of {list(REPARAMS)}, got {cfg['reparam']!r}")
    if cfg.get("reparam_grad") not in REPARAM_GRADS:
        raise ValueError(f"reparam_grad must be one of {list(REPARAM_GRADS)}, got {cfg['reparam_grad']!r}")
    if cfg.get("reparam_raw_scale") is None:
        cfg["reparam_raw_scale"] = 1.0
    if cfg["reparam_raw_scale"] != 1.0 and cfg.get("reparam") is None:
        raise ValueError("--reparam-raw-scale needs --reparam standardize")
    return cfg


def _read_config(path):
    """The JSON object of a config file; ValueError naming the file for anything else."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read(MAX_CONFIG_BYTES + 1)
    except IsADirectoryError:
        raise ValueError(f"--config {path}: is a folder, not a JSON file") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"config file {path}: not UTF-8 text ({exc.reason})") from None
    if len(text) > MAX_CONFIG_BYTES:
        raise ValueError(f"config file {path}: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"config file {path}: invalid JSON: {exc}") from None
    except RecursionError:
        raise ValueError(f"config file {path}: JSON nested too deeply") from None


#: largest config file read (a config is a few hundred bytes)
MAX_CONFIG_BYTES = 1 << 20

#: the JSON type each config-file key must have (None is allowed where the default is None)
_CONFIG_TYPES = {
    "rule": str, "dataset": str, "arch": str, "optimizer": str, "schedule": str,
    "epochs": int, "batch": int, "seed": int, "limit": int, "threads": int,
    "lr": float, "weight_decay": float, "clip": float, "val": float, "scheduler_timeout": float,
    "opt": dict, "neuron": dict, "data": dict,
    "save": str, "data_dir": str, "log": str, "checkpoint": str, "scheduler": str,
    "progress": bool, "reparam": str, "reparam_grad": str, "reparam_raw_scale": float,
}


def _check_config_types(path, file_cfg, what="config file"):
    """Config-file values must have their key's JSON type: an integer is an integer (not
    1.9, "3" or true), a number a number, a flag true/false (not "no")."""
    for key, val in file_cfg.items():
        want = _CONFIG_TYPES.get(key)
        if want is None or (val is None and (DEFAULTS.get(key) is None or key == "progress")):
            continue
        if want is float:
            ok = isinstance(val, (int, float)) and not isinstance(val, bool)
        elif want is int:
            ok = isinstance(val, int) and not isinstance(val, bool)
        else:
            ok = isinstance(val, want)
        if not ok:
            name = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
                    dict: "an object"}[want]
            raise ValueError(f"{what} {path}: {key} must be {name}, got {val!r:.80}")
        if key in ("opt", "neuron", "data"):
            check_option_values(f"{what} {path}: {key}", val)


def _check_config_ranges(parser, path, file_cfg):
    """Config-file numbers within the range of their flag (the flag's own converter)."""
    types = {a.dest: a.type for a in parser._actions if callable(a.type)}
    for key, val in file_cfg.items():
        conv = types.get(key)
        if conv is None or val is None or isinstance(val, (bool, str, list, dict)):
            continue
        try:
            conv(repr(val) if isinstance(val, float) else str(val))
        except argparse.ArgumentTypeError as exc:
            raise ValueError(f"config file {path}: {key} {exc}") from None
        except ValueError:  # an integer too long for int(str): far beyond any range
            raise ValueError(f"config file {path}: {key} is out of range ({str(val)[:20]}...)") from None


def _check_writable(key, path):
    """Refuse an output path whose folder does not exist or cannot be written, or that
    names a folder, before any training."""
    if path is None:
        return
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"--{key} {path}: folder {folder} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"--{key} {path}: is a folder, not a file name")
    try:  # os.access says yes to root on read-only mounts: try a file
        import tempfile
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".eventsnn-probe-"):
            pass
    except OSError as exc:
        raise ValueError(f"--{key} {path}: cannot write in folder {folder} ({exc.strerror})") from None


#: options of a run that a saved model keeps (``eventsnn eval`` reads them back)
TRAINING_KEYS = ("rule", "dataset", "data", "data_dir", "arch", "opt", "neuron", "seed")


def saved_training(net: Any, path: str) -> Dict[str, Any]:
    """The training options a model file keeps (``net.training``), checked like a config
    file's (a wrong type, an unknown rule or dataset: ValueError naming the file and key)."""
    saved = net.training or {}
    what = "model file"
    _check_config_types(path, {k: saved[k] for k in TRAINING_KEYS if k in saved}, what)
    for key, known in (("rule", RULES), ("dataset", DATASETS)):
        if saved.get(key) is not None and saved[key] not in known:
            raise ValueError(f"{what} {path}: training option {key} must be one of "
                             f"{sorted(known)}, got {saved[key]!r:.80}")
    if saved.get("seed") is not None and saved["seed"] < 0:
        raise ValueError(f"{what} {path}: seed must be >= 0, got {saved['seed']}")
    return saved


def load_dataset(name: str, data_dir: Optional[str] = None,
                 options: Optional[Dict[str, Any]] = None, lazy: bool = False) -> tuple:
    """(X_train, y_train, X_test, y_test) of dataset ``name``; ``data_dir`` and ``options``
    become the loader's keyword arguments (``data_dir`` only when given). A loader that does
    not take one of them raises ValueError naming the flag. ``lazy``: ask a loader that
    takes ``lazy`` for samples read on access (files read by Dask workers)."""
    kwargs = dict(options or {})
    if data_dir is not None:
        kwargs["data_dir"] = str(data_dir)
    loader = get_loader(name)
    try:
        params = inspect.signature(loader).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        params = None
    if params is not None and not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        for key in kwargs:
            if key not in params:
                flag = "--data-dir" if key == "data_dir" else f"--data {key}=..."
                known = sorted(k for k in params if k != "data_dir")
                raise ValueError(f"dataset {name!r} does not take {flag}"
                                 + (f" (its options: {known})" if known else " (it has no options)"))
    if lazy and params is not None and "lazy" in params and "lazy" not in kwargs:
        kwargs["lazy"] = True
    return load(name, **kwargs)


def input_shape(X: Any) -> Tuple[int, ...]:
    """Shape of one sample: ``X.shape[1:]`` for arrays, ``X.in_shape`` when the dataset
    reports it (event data), else (n_neurons,) of the first SpikeTrains."""
    shape = getattr(X, "in_shape", None)
    if shape is not None:
        return tuple(int(s) for s in shape)
    if isinstance(X, (list, tuple)):
        if not X:
            raise ValueError("the dataset has no training samples")
        if isinstance(X[0], SpikeTrains):
            return (X[0].n_neurons,)
        return np.asarray(X[0]).shape
    return tuple(np.shape(X)[1:])


def connect_flag(address: Any, timeout: Optional[float]) -> Any:
    """``eventsnn.distributed.connect`` for the ``--scheduler`` flag: a bad or unreachable
    address (whatever Dask raises for it) becomes one ValueError naming the flag."""
    from .distributed import connect

    if not isinstance(address, str) or not address.strip():
        raise ValueError(f"--scheduler must be an address 'tcp://HOST:PORT' or 'local:N', got {address!r}")
    try:
        return connect(address, timeout=10.0 if timeout is None else timeout)
    except ImportError:
        raise
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        raise ValueError(f"--scheduler {address}: {one_line(exc)}") from None


def run(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Train as ``cfg`` says; returns the metrics dict. With ``cfg["scheduler"]`` the
    training and the test run on a Dask cluster (``eventsnn.distributed``)."""
    if cfg.get("scheduler") is not None:
        with connect_flag(cfg["scheduler"], cfg.get("scheduler_timeout")) as client:
            return _run(cfg, client)
    return _run(cfg, None)


def _run(cfg, client):
    X_tr, y_tr, X_te, y_te = load_dataset(cfg["dataset"], cfg.get("data_dir"), cfg.get("data"),
                                          lazy=client is not None)
    if cfg.get("limit"):
        n = v.positive_int("limit", cfg["limit"])
        X_tr, y_tr = X_tr[:n], y_tr[:n]
    n_classes = int(max(y_tr.max(), y_te.max()) + 1)
    layers = parse_arch(cfg["arch"], input_shape(X_tr), n_classes)
    neuron = SRM(**cfg["neuron"]) if cfg["neuron"] else SRM()
    seed = int(cfg["seed"])
    net = Sequential(*layers, neuron=neuron, rng=seed)
    learner = get_learner_class(cfg["rule"])(net, rng=seed, **cfg["opt"])
    from .train import Trainer

    progress = cfg.get("progress")
    bar = sys.stderr.isatty() if progress is None else bool(progress)
    lines = progress is None and not bar
    n_epochs = cfg["epochs"]

    def epoch_line(row):
        val = f" val_accuracy {row['val_accuracy']:.4f}" if "val_accuracy" in row else ""
        print(f"epoch {row['epoch']}/{n_epochs}: loss {row['loss']:.4g} train_accuracy "
              f"{row['train_accuracy']:.4f}{val} ({row['seconds']:.1f} s)", file=sys.stderr,
              flush=True)

    opt_kwargs = {"weight_decay": cfg["weight_decay"]} if cfg.get("weight_decay") else {}
    trainer = Trainer(learner, optimizer=cfg["optimizer"], lr=cfg["lr"],
                      optimizer_options=opt_kwargs, batch_size=cfg["batch"],
                      epochs=cfg["epochs"], clip_norm=cfg["clip"], val_fraction=cfg["val"] or 0.0,
                      seed=seed, progress=bar, schedule=cfg["schedule"],
                      log=cfg.get("log"), checkpoint=cfg.get("checkpoint"),
                      epoch_callback=epoch_line if lines else None,
                      n_threads=cfg.get("threads"), client=client,
                      reparam=(WeightStandardization(grad=cfg.get("reparam_grad") or "exact",
                                                     raw_scale=cfg["reparam_raw_scale"])
                               if cfg.get("reparam") else None))
    history = trainer.fit(X_tr, y_tr, resume=cfg.get("resume", False))
    t0 = time.perf_counter()
    test = trainer.evaluate(X_te, y_te)
    test_seconds = time.perf_counter() - t0
    if cfg.get("save"):
        net.save(cfg["save"], training={k: cfg.get(k) for k in TRAINING_KEYS})
    last = history[-1] if history else {}
    metrics = {
        "rule": cfg["rule"], "dataset": cfg["dataset"], "data": dict(cfg.get("data") or {}),
        "arch": cfg["arch"],
        "test_accuracy": test["accuracy"],
        "train_accuracy": last.get("train_accuracy"),
        "val_accuracy": last.get("val_accuracy"),
        "train_seconds": trainer.train_seconds,
        "test_seconds": test_seconds,
        "epochs": len(history),
        "spikes_per_sample": test["spikes_per_sample"],
        "final_loss": last.get("loss"),
        "seed": seed,
        "reparam": cfg.get("reparam"),
        "history": [{k: (round(x, 6) if isinstance(x, float) else x) for k, x in row.items()}
                    for row in history],
    }
    return metrics


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (at most 500 characters)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 500 else text[:497] + "..."


def run_command(command: str, memory_hint: str, fn: Callable[[], Any]) -> Tuple[int, Any]:
    """(0, fn()) or, when fn fails on the user's input, (2, None) after one line on stderr:
    ``eventsnn COMMAND: error: MESSAGE`` (a MemoryError gets ``memory_hint``)."""
    try:
        return 0, fn()
    except (ValueError, TypeError, OSError, ImportError, OverflowError) as exc:
        print(f"eventsnn {command}: error: {one_line(exc)}", file=sys.stderr)
    except MemoryError:
        print(f"eventsnn {command}: error: out of memory ({memory_hint})", file=sys.stderr)
    return 2, None


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    code, metrics = run_command("train", "try a smaller --batch, --limit or --arch",
                                lambda: run(resolve_config(argv)))
    if code == 0:
        print(json.dumps(metrics, allow_nan=True))
    return code
