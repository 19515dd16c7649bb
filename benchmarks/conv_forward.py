"""Benchmark: event-mode forward pass of the N-MNIST conv net, CPU time per recording.

Workload: the first ``--n`` (200) training recordings of the N-MNIST subset
(``../shared/data/nmnist_slayer_small``, events with t <= 300 ms, times x 0.1, so 30 ms of
network time, both polarities), network ``--arch`` (12C5s2-MP2-10: Conv2d 12 x 5 x 5
stride 2, max pooling 2, Dense 10), SRM tau_m 5 ms, tau_s 3 ms, theta 1, full reset, weights
from the firing-rate initialisation of ``EventLearner`` (0.5 spikes per neuron, on 64
recordings, seed 0) - the settings of docs/benchmarks.md "Event-mode training on N-MNIST".

Timed: ``Sequential.simulate(recordings, t_end=30, n_threads=1)`` (process CPU time, best of
``--repeats``) and, separately, the first Conv2d layer's kernel alone over the same
recordings: ``_conv.conv_layer`` (what simulate runs) and ``_engine.sparse_layer`` on the
layer's CSR links (the kernel it replaced, kept as an oracle), whose spikes must be the same
neurons at times within 1e-9 ms (checked). With ``--baseline DIR`` (a checkout of another version of eventsnn)
the same measurements run in a subprocess on that code, interleaved with ours round by
round, and the ratios are printed.

    python benchmarks/conv_forward.py
    python benchmarks/conv_forward.py --baseline /tmp/eventsnn-main
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# the data folder next to the checkout (../shared/data), also from a worktree one level deeper
_HERE = Path(__file__).resolve()
DEFAULT = next((d for d in (_HERE.parents[k] / "shared" / "data" / "nmnist_slayer_small"
                            for k in (2, 3)) if d.is_dir()),
               _HERE.parents[2] / "shared" / "data" / "nmnist_slayer_small")


def setup(args):
    import eventsnn as es
    from eventsnn.datasets import load
    from eventsnn.event.learner import EventLearner
    from eventsnn.train_cli import parse_arch

    X, _, _, _ = load("nmnist", data_dir=args.data, t_max=300.0, time_scale=0.1,
                      limit=max(args.n, 64), limit_test=1)
    net = es.Sequential(*parse_arch(args.arch, X.in_shape, 10), rng=0)
    learner = EventLearner(net, rng=0, t_window=30.0, desired=10.0, n_threads=1)
    learner.initialise(list(X[:64]))
    return net, list(X[: args.n])


def measure(args):
    """One round: (simulate CPU s, conv-kernel CPU s, spikes per recording, sparse_layer CPU s
    or None when this eventsnn has no conv_layer)."""
    import numpy as np

    from eventsnn.event import _engine
    from eventsnn.event.forward import kernel_weights

    try:
        from eventsnn.event import _conv
    except ImportError:  # a baseline from before conv_layer
        _conv = None
    net, xs = CACHE.get("setup") or setup(args)
    CACHE["setup"] = (net, xs)
    conv = net.layers[0]
    indptr, targets, _ = conv.connectivity()
    w = kernel_weights(conv)
    nrn = net.neuron
    tau_m, tau_s, theta, mreset, t_ref = nrn.as_tuple()
    recs = net.simulate(xs, t_end=30.0, n_threads=1)  # warm-up (cache load / compile)
    spikes = sum(len(s) for r in recs for s in r.spikes[1:]) / len(xs)

    def old(x):
        return _engine.sparse_layer(x.times, x.neurons, x.values, conv.n_out, indptr, targets, w,
                                    tau_m, tau_s, theta, mreset, t_ref, 30.0, 10_000_000)

    if _conv is not None:
        WT = _conv.transposed_weight(conv, w)

        def new(x):
            return _conv.run_conv(conv, WT, x.times, x.neurons, x.values, tau_m, tau_s, theta,
                                  mreset, t_ref, 30.0, 10_000_000)

        for x in xs:  # the same spikes, within the fast-vs-reference tolerance
            a, b = old(x), new(x)
            assert same_spikes(a, b), "spikes differ"
    best_sim = best_conv = best_old = float("inf")
    for _ in range(args.repeats):
        c0 = time.process_time()
        net.simulate(xs, t_end=30.0, n_threads=1)
        best_sim = min(best_sim, time.process_time() - c0)
        c0 = time.process_time()
        for x in xs:
            old(x)
        best_old = min(best_old, time.process_time() - c0)
        if _conv is not None:
            c0 = time.process_time()
            for x in xs:
                new(x)
            best_conv = min(best_conv, time.process_time() - c0)
    if _conv is None:
        return best_sim, best_old, spikes, None
    return best_sim, best_conv, spikes, best_old


CACHE = {}


def same_spikes(a, b, tol_ms=1e-9):
    """(times, neurons, ...) outputs of two kernels: the same neurons spike the same number
    of times, at times within tol_ms (spikes within tol_ms of each other may swap order)."""
    import numpy as np

    if a[0].size != b[0].size:
        return False
    oa = np.lexsort((a[0], a[1]))
    ob = np.lexsort((b[0], b[1]))
    return bool(np.array_equal(a[1][oa], b[1][ob])
                and np.all(np.abs(a[0][oa] - b[0][ob]) <= tol_ms))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(DEFAULT))
    p.add_argument("--arch", default="12C5s2-MP2-10")
    p.add_argument("--n", type=int, default=200, help="recordings")
    p.add_argument("--repeats", type=int, default=3, help="timed passes per round (best kept)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds with --baseline")
    p.add_argument("--baseline", help="path of another eventsnn checkout to compare with")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:  # subprocess of --baseline: one line of JSON per request on stdin
        for _ in sys.stdin:
            print(json.dumps(measure(args)), flush=True)
        return None
    import eventsnn

    print(f"N-MNIST conv forward: {args.n} recordings, arch {args.arch}, one thread, CPU time; "
          f"eventsnn from {Path(eventsnn.__file__).parent}")
    worker = None
    if args.baseline:
        env = dict(os.environ, PYTHONPATH=str(Path(args.baseline).resolve()))
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--data", args.data,
               "--arch", args.arch, "--n", str(args.n), "--repeats", str(args.repeats)]
        worker = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, cwd="/")
    rows = []
    for r in range(args.rounds if worker else 1):
        ours = measure(args)
        base = None
        if worker:
            worker.stdin.write("go\n")
            worker.stdin.flush()
            base = json.loads(worker.stdout.readline())
        rows.append((ours, base))
        line = (f"round {r + 1}: simulate {1e3 * ours[0] / args.n:.2f} ms/recording, conv kernel "
                f"{1e3 * ours[1] / args.n:.2f} ms/recording, {ours[2]:.0f} spikes/recording")
        if ours[3] is not None:
            line += (f" (sparse_layer {1e3 * ours[3] / args.n:.2f} ms/recording, ratio "
                     f"{ours[1] / ours[3]:.3f})")
        if base:
            line += (f" | baseline simulate {1e3 * base[0] / args.n:.2f}, conv kernel "
                     f"{1e3 * base[1] / args.n:.2f} ms/recording ({base[2]:.0f} spikes) | ratio "
                     f"simulate {ours[0] / base[0]:.3f}, conv kernel {ours[1] / base[1]:.3f}")
        print(line, flush=True)
    if worker:
        worker.stdin.close()
        worker.wait()
        best = [min(o[k] for o, _ in rows) for k in range(2)]
        bbest = [min(b[k] for _, b in rows) for k in range(2)]
        print(f"best: simulate {1e3 * best[0] / args.n:.2f} vs {1e3 * bbest[0] / args.n:.2f} ms/recording "
              f"(ratio {best[0] / bbest[0]:.3f}); conv kernel {1e3 * best[1] / args.n:.2f} vs "
              f"{1e3 * bbest[1] / args.n:.2f} ms/recording (ratio {best[1] / bbest[1]:.3f})")
    return rows


if __name__ == "__main__":
    main()
