"""Firing-rate initialisation of the N-MNIST paper net (12C5p1-P2-64C5-P2-10): CPU time.

    python benchmarks/init_paper_net.py [--n 32] [--target 0.5] [--data PATH]

One thread (NUMBA_NUM_THREADS=1, ``n_threads=1``); times are process CPU seconds, after a
warm-up on a tiny network so that numba's compilation is not counted. Prints one JSON line:
the scales and rates per layer and the CPU seconds.
"""
import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import eventsnn as es  # noqa: E402
from eventsnn.datasets import load  # noqa: E402
from eventsnn.init import init_firing_rate  # noqa: E402
from eventsnn.train_cli import parse_arch  # noqa: E402

DEFAULT = next((str(p / "shared" / "data" / "nmnist_slayer_small") for p in Path(__file__).resolve().parents[2:4]
           if (p / "shared" / "data" / "nmnist_slayer_small").is_dir()), "../shared/data/nmnist_slayer_small")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--target", type=float, default=0.5)
    ap.add_argument("--arch", default="12C5p1-P2-64C5-P2-10")
    ap.add_argument("--data", default=DEFAULT)
    args = ap.parse_args()
    X, _, _, _ = load("nmnist", data_dir=args.data, t_max=300.0, time_scale=0.1, limit=args.n,
                      limit_test=1)
    xs = list(X[: args.n])
    small = es.Sequential(*parse_arch("2x34x34-2C5p1-P2-2C5-P2-10", X.in_shape, 10), rng=0)
    init_firing_rate(small, xs[:1], target=args.target, t_end=30.0, n_threads=1)  # compile
    net = es.Sequential(*parse_arch(args.arch, X.in_shape, 10), rng=0)
    c0 = time.process_time()
    scales, rates = init_firing_rate(net, xs, target=args.target, t_end=30.0, n_threads=1)
    cpu = time.process_time() - c0
    print(json.dumps({"arch": args.arch, "recordings": len(xs), "target": args.target,
                      "cpu_s": round(cpu, 2), "scales": scales, "rates": rates}))


if __name__ == "__main__":
    main()
