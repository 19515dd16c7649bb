"""Train a PSC-family rule (TSSL-BP by default, or NA) on the N-MNIST subset.

Reads the 1,000 train / 100 test SLAYER subset (``.bs2``, see eventsnn.datasets.nmnist),
bins the first 300 ms of every recording into ``--steps`` binary frames of 2 x 34 x 34 input
spikes, and trains an MLP 2312-hidden-10 of PscLIF neurons with eventsnn's Trainer (Adam).
Prints one JSON line with the test accuracy.

    python examples/nmnist_psc.py --rule tssl      # data: <shared data>/nmnist_slayer_small

The subset is found in the shared data folder above the current folder or the checkout
(../shared/data), or in EVENTSNN_DATA; --data names another folder.
"""
import argparse
import json
import time

import numpy as np

import eventsnn as es
from eventsnn import argtypes as at
from eventsnn.datasets import nmnist
from eventsnn.datasets.paths import data_root
from eventsnn.learner import get_learner_class
from eventsnn.train import Trainer


def main(argv=None):
    root = data_root()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default=None if root is None else str(root / "nmnist_slayer_small"),
                   help="folder of the N-MNIST subset (.bs2 files and label lists)")
    p.add_argument("--rule", choices=["tssl", "na"], default="tssl", help="learning rule")
    p.add_argument("--steps", type=at.positive_int, default=30, help="frames (time steps) per recording")
    p.add_argument("--hidden", type=at.positive_int, default=200, help="hidden neurons")
    p.add_argument("--epochs", type=at.positive_int, default=15, help="training epochs")
    p.add_argument("--lr", type=at.positive_float, default=0.001, help="learning rate (Adam)")
    p.add_argument("--batch", type=at.positive_int, default=32, help="mini-batch size")
    p.add_argument("--seed", type=at.nonneg_int, default=0, help="seed of weights and batches")
    p.add_argument("--preset", choices=["code", "paper"], default="code",
                   help="the learner's preset (docs/fidelity.md): the authors' code or the paper")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bars on stderr")
    args = p.parse_args(argv)
    if args.data is None:
        p.error("the shared data folder was not found: give --data or set EVENTSNN_DATA")
    t0 = time.perf_counter()
    ev_tr, y_tr = nmnist.load(args.data, "train", progress=args.progress)
    ev_te, y_te = nmnist.load(args.data, "test", progress=args.progress)
    X_tr = nmnist.to_frames(ev_tr, args.steps, t_max_us=300_000)
    X_te = nmnist.to_frames(ev_te, args.steps, t_max_us=300_000)
    load_seconds = time.perf_counter() - t0
    n_in = X_tr.shape[2]
    net = es.Sequential(es.Dense(n_in, args.hidden), es.Dense(args.hidden, 10), rng=args.seed)
    learner = get_learner_class(args.rule)(net, rng=args.seed, n_steps=args.steps, tau_m=5.0,
                                           tau_s=2.0, sequence_input=True, preset=args.preset)
    trainer = Trainer(learner, optimizer="adam", lr=args.lr, batch_size=args.batch,
                      epochs=args.epochs, seed=args.seed, progress=args.progress, schedule="constant")
    history = trainer.fit(X_tr, y_tr)
    test = trainer.evaluate(X_te, y_te)
    print(json.dumps({"rule": args.rule, "preset": args.preset, "dataset": "nmnist_subset", "steps": args.steps,
                      "arch": f"{n_in}-{args.hidden}-10", "n_train": len(y_tr), "n_test": len(y_te),
                      "test_accuracy": test["accuracy"],
                      "train_accuracy": history[-1].get("train_accuracy") if history else None,
                      "train_seconds": trainer.train_seconds, "load_seconds": load_seconds,
                      "spikes_per_sample": test["spikes_per_sample"], "epochs": len(history)}))


if __name__ == "__main__":
    main()
