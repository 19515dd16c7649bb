"""Train a PSC-family rule (TSSL-BP by default, or NA) on the N-MNIST subset.

Reads the 1,000 train / 100 test SLAYER subset (``.bs2``, see eventsnn.datasets.nmnist),
bins the first 300 ms of every recording into ``--steps`` binary frames of 2 x 34 x 34 input
spikes, and trains an MLP 2312-hidden-10 of PscLIF neurons with eventsnn's Trainer (Adam).
Prints one JSON line with the test accuracy.

    python examples/nmnist_psc.py --data ../shared/data/nmnist_slayer_small --rule tssl
"""
import argparse
import json
import time

import numpy as np

import eventsnn as es
from eventsnn.datasets import nmnist
from eventsnn.learner import get_learner_class
from eventsnn.train import Trainer


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data/nmnist_slayer_small")
    p.add_argument("--rule", choices=["tssl", "na"], default="tssl")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--hidden", type=int, default=200)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--lr", type=float, default=0.001)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preset", choices=["code", "paper"], default="code",
                   help="the learner's preset (docs/fidelity.md): the authors' code or the paper")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    ev_tr, y_tr = nmnist.load(args.data, "train")
    ev_te, y_te = nmnist.load(args.data, "test")
    X_tr = nmnist.to_frames(ev_tr, args.steps, t_max_us=300_000)
    X_te = nmnist.to_frames(ev_te, args.steps, t_max_us=300_000)
    load_seconds = time.perf_counter() - t0
    n_in = X_tr.shape[2]
    net = es.Sequential(es.Dense(n_in, args.hidden), es.Dense(args.hidden, 10), rng=args.seed)
    learner = get_learner_class(args.rule)(net, rng=args.seed, n_steps=args.steps, tau_m=5.0,
                                           tau_s=2.0, sequence_input=True, preset=args.preset)
    trainer = Trainer(learner, optimizer="adam", lr=args.lr, batch_size=args.batch,
                      epochs=args.epochs, seed=args.seed, progress=False, schedule="constant")
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
