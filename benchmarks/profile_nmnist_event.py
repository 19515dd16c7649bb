"""Where the time of event-mode training on N-MNIST goes: forward engine vs backward vs Python.

Profiles ``EventLearner.loss_and_grads`` (one thread, after a warm-up batch) with cProfile
on the N-MNIST subset, with the settings of docs/benchmarks.md "Event-mode training on
N-MNIST", and prints the top functions by own time.

    python benchmarks/profile_nmnist_event.py [--data ../shared/data/nmnist_slayer_small]
"""
import argparse
import cProfile
import pstats
import time
from pathlib import Path

import eventsnn as es
from eventsnn.datasets import load
from eventsnn.event.learner import EventLearner
from eventsnn.train_cli import parse_arch

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "nmnist_slayer_small"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT))
    ap.add_argument("--arch", default="12C5s2-MP2-10")
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    X, y, _, _ = load("nmnist", data_dir=args.data, t_max=300.0, time_scale=0.1,
                      limit=args.batch * (args.batches + 2), limit_test=1)
    net = es.Sequential(*parse_arch(args.arch, X.in_shape, 10), rng=0)
    learner = EventLearner(net, rng=0, t_window=30.0, desired=10.0, n_threads=1)
    learner.initialise(X[:64])
    b = args.batch
    learner.loss_and_grads(X[:b], y[:b])            # warm-up (numba cache / compilation)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for k in range(1, args.batches + 1):
        learner.loss_and_grads(X[k * b:(k + 1) * b], y[k * b:(k + 1) * b])
    prof.disable()
    wall = time.perf_counter() - t0
    n = args.batches * b
    print(f"{n} recordings, 1 thread: {wall:.2f} s, {1e3 * wall / n:.1f} ms per recording")
    pstats.Stats(prof).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
