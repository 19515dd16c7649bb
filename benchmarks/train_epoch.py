"""Event-mode training: process CPU time per epoch, one thread, on the rows of issue 12's table.

    python benchmarks/train_epoch.py --row fc          # digits 64-100-10
    python benchmarks/train_epoch.py --row cnn         # digits 16C3p1-P2-10
    python benchmarks/train_epoch.py --row nmnist      # N-MNIST 12C5s2-MP2-10
    python benchmarks/train_epoch.py --row paper --limit 64 --epochs 1   # paper net, subset
    python benchmarks/train_epoch.py --row paper-sparse --epochs 3 --test # fewer output spikes
    python benchmarks/train_epoch.py --row paper-plain --epochs 3 --test # paper net, old settings

Each row is what ``eventsnn train`` does with the flags printed in its output line
(same data, network, options, optimiser, seed). The process is pinned to one thread
(NUMBA_NUM_THREADS=1 and ``n_threads=1``); times are ``time.process_time`` (CPU seconds of
the process): the firing-rate initialisation on the first batch (``init_s``), then every
epoch (``epoch_s``; the first epoch also pays numba's compile/cache load, so compare the
best). With ``--limit n`` only n training samples are used and ``epoch_s`` is also given
scaled to the full training set (``epoch_s_full``, linear in the samples). Prints one JSON
line per row; ``--test`` adds the test accuracy. Without ``--row`` it runs fc, cnn, nmnist
and paper-sparse (the settings issue 12's targets are measured with).
"""
import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from eventsnn import train as _train  # noqa: E402
from eventsnn.network import Sequential  # noqa: E402
from eventsnn.neurons import SRM  # noqa: E402
from eventsnn.event.learner import EventLearner  # noqa: E402
from eventsnn.reparam import WeightStandardization  # noqa: E402
from eventsnn.train_cli import input_shape, load_dataset, parse_arch  # noqa: E402

NMNIST = next((str(p / "shared" / "data" / "nmnist_slayer_small") for p in Path(__file__).resolve().parents[2:4]
           if (p / "shared" / "data" / "nmnist_slayer_small").is_dir()), "../shared/data/nmnist_slayer_small")
_NM_DATA = {"t_max": 300.0, "time_scale": 0.1}
_NM_OPT = {"t_window": 30.0, "desired": 10.0}
#: the paper net with the authors' N-MNIST settings (their n-mnist.yaml, benchmarks/authors_zhu.py):
#: tau_m 8, tau_s 4, tau_grad 3 (ms; one of their steps is 1 ms here), counts 15 / 2, AdamW
#: with weight decay 0.2, gradient norm clipped to 1, weight standardisation; lr 1.2e-3 is their
#: 5e-4 for eventsnn's default weight spread (docs/training.md#weight-standardisation). The
#: firing-rate target is 1 spike per neuron (theirs, avg_spike_init 2, gives ~1.8x the spikes
#: and epochs to match: docs/benchmarks.md, issue-12 section)
PAPER_OPT = {"t_window": 30.0, "desired": 15.0, "undesired": 2.0, "tau_grad": 3.0,
             "init_target": 1.0}
PAPER_TRAIN = {"optimizer": "adamw", "lr": 1.2e-3, "weight_decay": 0.2, "clip": 1.0,
               "reparam": "standardize", "neuron": {"tau_m": 8.0, "tau_s": 4.0}}

#: training settings of a row unless it gives its own (``eventsnn train``'s flags)
_TRAIN = {"optimizer": "adam", "lr": 0.01, "weight_decay": 0.0, "clip": None, "reparam": None,
          "reparam_raw_scale": 1.0, "neuron": {}}

#: the rows: dataset, loader options, arch, rule options, batch (as ``eventsnn train`` takes
#: them), and any key of _TRAIN
ROWS = {
    "fc": {"dataset": "digits", "data": {}, "arch": "64-100-10", "opt": {}, "batch": 32},
    "cnn": {"dataset": "digits", "data": {}, "arch": "16C3p1-P2-10", "opt": {}, "batch": 32},
    "nmnist": {"dataset": "nmnist", "data": _NM_DATA, "arch": "12C5s2-MP2-10", "opt": _NM_OPT,
               "batch": 8},
    "paper": {"dataset": "nmnist", "data": _NM_DATA, "arch": "12C5p1-P2-64C5-P2-10",
              "opt": PAPER_OPT, "batch": 8, **PAPER_TRAIN},
    # the paper net asked for fewer output spikes (counts 10 / 1 instead of the authors' 15 / 2,
    # firing-rate target 0.5): ~2/3 of the spikes and time of "paper". The authors' lr 5e-4
    # for v, g and b alike, with v at half torch's default spread (raw scale 1 / (2 sqrt 6)
    # on eventsnn's weights): docs/benchmarks.md, "Paper net: the authors' optimiser geometry"
    "paper-sparse": {"dataset": "nmnist", "data": _NM_DATA, "arch": "12C5p1-P2-64C5-P2-10",
                     "opt": {**PAPER_OPT, "desired": 10.0, "undesired": 1.0, "init_target": 0.5},
                     "batch": 8, **PAPER_TRAIN, "lr": 5e-4, "reparam_raw_scale": 0.204124},
    # the paper net with the settings it had before issue 12's accuracy work (62 % test)
    "paper-plain": {"dataset": "nmnist", "data": _NM_DATA, "arch": "12C5p1-P2-64C5-P2-10",
                    "opt": _NM_OPT, "batch": 8},
}


def command(row, epochs, data_dir):
    row = dict(_TRAIN, **row)
    parts = ["eventsnn train", f"--dataset {row['dataset']}", f"--arch {row['arch']}",
             f"--batch {row['batch']}", f"--epochs {epochs}"]
    if row["optimizer"] != "adam":
        parts.append(f"--optimizer {row['optimizer']}")
    parts.append(f"--lr {row['lr']:g}")
    if row["weight_decay"]:
        parts.append(f"--weight-decay {row['weight_decay']:g}")
    if row["clip"]:
        parts.append(f"--clip {row['clip']:g}")
    if row["reparam"]:
        parts.append(f"--reparam {row['reparam']}")
        if row["reparam_raw_scale"] != 1.0:
            parts.append(f"--reparam-raw-scale {row['reparam_raw_scale']:g}")
    parts += [f"--neuron {k}={json.dumps(x)}" for k, x in row["neuron"].items()]
    if row["dataset"] == "nmnist":
        parts.append(f"--data-dir {data_dir}")
    parts += [f"--data {k}={json.dumps(x)}" for k, x in row["data"].items()]
    parts += [f"--opt {k}={json.dumps(x)}" for k, x in row["opt"].items()]
    return " ".join(parts)


def run_row(name, epochs, limit, data_dir, test, batch=None, seed=0):
    row = dict(_TRAIN, **ROWS[name])
    if batch:
        row["batch"] = batch
    kwargs = dict(row["data"])
    X, y, X_te, y_te = load_dataset(row["dataset"], data_dir if row["dataset"] == "nmnist" else None,
                                    kwargs)
    n_full = len(y)
    if limit:
        X, y = X[:limit], y[:limit]
    net = Sequential(*parse_arch(row["arch"], input_shape(X), 10), neuron=SRM(**row["neuron"]),
                     rng=seed)
    learner = EventLearner(net, rng=seed, n_threads=1, **row["opt"])
    # the trainer's per-epoch clock becomes the process CPU clock
    _train.time = types.SimpleNamespace(perf_counter=time.process_time)
    opt_kw = {"weight_decay": row["weight_decay"]} if row["weight_decay"] else {}
    reparam = None
    if row["reparam"]:
        # attached before the initialisation, as ``fit`` does when it starts: the
        # initialisation then scales the standardised weights and the scale goes into g
        reparam = WeightStandardization(raw_scale=row["reparam_raw_scale"])
        reparam.attach(net, keep=False)
    trainer = _train.Trainer(learner, optimizer=row["optimizer"], lr=row["lr"],
                             optimizer_options=opt_kw, batch_size=row["batch"], epochs=epochs,
                             seed=seed, progress=False, schedule="cosine", clip_norm=row["clip"],
                             reparam=reparam)
    # the initialisation the first training batch would run, timed on its own
    first = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[1]).permutation(len(y))
    first = first[: row["batch"]]
    c0 = time.process_time()
    learner.initialise(_train._take(X, first))
    init_s = time.process_time() - c0
    history = trainer.fit(X, y)
    out = {"row": name, "arch": row["arch"], "n_train": len(y), "init_s": round(init_s, 3),
           "epoch_s": [round(h["seconds"], 3) for h in history],
           "train_accuracy": [round(h["train_accuracy"], 4) for h in history],
           "command": command(row, epochs, data_dir) + (f" --seed {seed}" if seed else "")}
    if limit and limit < n_full:
        out["epoch_s_full"] = round(min(out["epoch_s"]) * n_full / len(y), 2)
    if test:
        out["test_accuracy"] = trainer.evaluate(X_te, y_te)["accuracy"]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--row", choices=sorted(ROWS), action="append")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--data-dir", default=NMNIST)
    ap.add_argument("--test", action="store_true")
    ap.add_argument("--batch", type=int, help="override the row's batch size")
    ap.add_argument("--seed", type=int, default=0, help="seed of weights and batch order")
    args = ap.parse_args()
    for name in args.row or ["fc", "cnn", "nmnist", "paper-sparse"]:
        print(json.dumps(run_row(name, args.epochs, args.limit, args.data_dir, args.test, args.batch,
                                 args.seed)), flush=True)


if __name__ == "__main__":
    main()
