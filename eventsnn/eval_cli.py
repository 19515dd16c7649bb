"""``eventsnn eval MODEL``: evaluate a saved model on a dataset's test split.

The learning rule, its options, the dataset and its loader options come from the model
file (``eventsnn train --save`` keeps them); flags override them. Prints one JSON line:
accuracy, spikes_per_sample, n_samples, seconds. ``--scheduler`` evaluates on a Dask
cluster (``eventsnn.distributed``) with the same result.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import List, Optional

import numpy as np

from . import argtypes as at
from .datasets import DATASETS
from .learner import RULES, get_learner_class
from .network import Sequential
from typing import Any, Dict


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="eventsnn eval",
        description="Evaluate a saved model (eventsnn train --save FILE) on the test split of "
                    "a dataset; prints one JSON line. Options not given come from the model "
                    "file's training options.")
    p.add_argument("model", metavar="MODEL", help="model file (.npz) written by eventsnn train --save")
    p.add_argument("--dataset", choices=sorted(DATASETS),
                   help="dataset (default: the one the model was trained on)")
    p.add_argument("--data-dir", dest="data_dir", metavar="PATH",
                   help="folder of the dataset's files (default: the training run's)")
    p.add_argument("--data", action="append", metavar="KEY=VALUE",
                   help="dataset loader option (repeatable; default: the training run's)")
    p.add_argument("--rule", choices=sorted(RULES),
                   help="learning rule whose forward pass predicts (default: the training run's)")
    p.add_argument("--opt", action="append", metavar="KEY=VALUE",
                   help="rule option (repeatable; default: the training run's)")
    p.add_argument("--split", choices=["test", "train"], default="test",
                   help="which split to evaluate (default: test)")
    p.add_argument("--limit", type=at.positive_int, help="evaluate only the first N samples (default: all)")
    p.add_argument("--batch", type=at.positive_int, default=128,
                   help="samples per prediction batch (default: 128)")
    p.add_argument("--threads", type=at.positive_int,
                   help="total threads (default: numba's thread count for samples, 1 BLAS thread)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="evaluate on a Dask cluster: a scheduler address (tcp://HOST:PORT) or "
                        "local:N; the model is sent once, file samples are read by the workers; "
                        "same result as without it (docs/distributed.md; needs eventsnn[distributed])")
    p.add_argument("--scheduler-timeout", dest="scheduler_timeout", type=at.timeout_seconds,
                   metavar="SECONDS", help="give up reaching the scheduler after this long, at most 86400 (default 10)")
    return p


def evaluate(args: argparse.Namespace) -> Dict[str, Any]:
    """The JSON result of ``eventsnn eval`` (on the cluster of ``args.scheduler`` if given)."""
    if args.scheduler is not None:
        from .train_cli import connect_flag

        with connect_flag(args.scheduler, args.scheduler_timeout) as client:
            return _evaluate(args, client)
    return _evaluate(args, None)


def _evaluate(args, client):
    from .train import Trainer
    from .train_cli import DEFAULTS, _pairs, input_shape, load_dataset, saved_training

    net = Sequential.load(args.model)
    saved = saved_training(net, args.model)
    if not saved:
        print(f"eventsnn eval: note: {args.model} holds no training options; using the defaults "
              f"(rule {DEFAULTS['rule']}, dataset {DEFAULTS['dataset']}) unless flags say otherwise",
              file=sys.stderr)
    rule = args.rule or saved.get("rule") or DEFAULTS["rule"]
    dataset = args.dataset or saved.get("dataset") or DEFAULTS["dataset"]
    data_dir = args.data_dir if args.data_dir is not None else saved.get("data_dir")
    data = dict(saved.get("data") or {}) if dataset == saved.get("dataset") else {}
    data.update(_pairs(args.data, "--data"))
    opt = dict(saved.get("opt") or {}) if rule == saved.get("rule") else {}
    opt.update(_pairs(args.opt, "--opt"))
    if rule == "event":
        opt["init"] = False           # the weights are trained: no firing-rate initialisation
    data_from_file = sorted(k for k in data if k not in _pairs(args.data, "--data"))
    try:
        X_tr, y_tr, X_te, y_te = load_dataset(dataset, data_dir, data, lazy=client is not None)
    except (TypeError, ValueError) as exc:
        if not data_from_file:
            raise
        raise ValueError(f"{exc} (dataset options {data_from_file} come from model file "
                         f"{args.model}; --data KEY=VALUE overrides them)") from None
    X, y = (X_te, y_te) if args.split == "test" else (X_tr, y_tr)
    if args.limit:
        X, y = X[:args.limit], y[:args.limit]
    shape = input_shape(X)
    if int(np.prod(shape)) != net.n_in:
        raise ValueError(f"model file {args.model} takes {net.n_in} inputs (shape {net.in_shape}) "
                         f"but dataset {dataset!r} gives {int(np.prod(shape))} per sample")
    from_file = sorted(k for k in opt if k not in _pairs(args.opt, "--opt") and k != "init")
    try:
        learner = get_learner_class(rule)(net, rng=int(saved.get("seed") or 0), **opt)
    except (TypeError, ValueError) as exc:
        if not from_file:
            raise
        raise ValueError(f"{exc} (rule options {from_file} come from model file {args.model}; "
                         "--opt KEY=VALUE overrides them)") from None
    trainer = Trainer(learner, batch_size=args.batch, epochs=0, n_threads=args.threads, client=client)
    t0 = time.perf_counter()
    res = trainer.evaluate(X, y)
    return {"model": args.model, "rule": rule, "dataset": dataset, "split": args.split,
            "accuracy": res["accuracy"], "spikes_per_sample": res["spikes_per_sample"],
            "n_samples": len(y), "seconds": time.perf_counter() - t0}


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from .train_cli import run_command
    code, out = run_command("eval", "try --limit or a smaller --batch", lambda: evaluate(args))
    if code == 0:
        print(json.dumps(out))
    return code
