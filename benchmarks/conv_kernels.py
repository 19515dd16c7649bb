"""Conv2d forward kernels on the Conv2d layers of the training rows of issue 12.

For each row of ``train_epoch.py`` with a convolution (digits 16C3p1-P2-10, N-MNIST
12C5s2-MP2-10, the paper net 12C5p1-P2-64C5-P2-10) the network is built and initialised as
``train_epoch.py`` does (firing-rate initialisation on the first batch), the first ``--n``
training samples are simulated, and the input events of every Conv2d layer are kept. Then,
per layer, ``_engine.sparse_layer`` (the CSR kernel), ``_conv.conv_layer`` (the Conv2d event
kernel) and ``_grouped.grouped_conv_layer`` (the group-interval kernel) process the same
samples: the spikes of both are checked to be sparse_layer's neurons at times within 1e-9
ms, and the CPU time per sample (one thread, best of ``--repeats``, the kernels
alternating) is printed with the ratios to sparse_layer, and the samples for which
``run_conv``'s cost model picks the grouped kernel.

    python benchmarks/conv_kernels.py [--rows cnn,nmnist,paper] [--n 100]
"""
import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import train_epoch as te  # noqa: E402
from conv_forward import same_spikes  # noqa: E402
from eventsnn import train as _train  # noqa: E402
from eventsnn.event import _conv, _engine  # noqa: E402
from eventsnn.event import batch as _batch  # noqa: E402
from eventsnn.event.forward import kernel_weights  # noqa: E402
from eventsnn.event.learner import EventLearner  # noqa: E402
from eventsnn.layers import Conv2d  # noqa: E402
from eventsnn.network import Sequential  # noqa: E402
from eventsnn.neurons import SRM  # noqa: E402
from eventsnn.train_cli import input_shape, load_dataset, parse_arch  # noqa: E402


def conv_inputs(name, n, data_dir):
    """(layer label, layer, Events of its input, neuron tuple, t_end) per Conv2d layer."""
    row = te.ROWS[name]
    X, y, _, _ = load_dataset(row["dataset"], data_dir if row["dataset"] == "nmnist" else None,
                              dict(row["data"]))
    X = X[:n]
    net = Sequential(*parse_arch(row["arch"], input_shape(X), 10), neuron=SRM(), rng=0)
    learner = EventLearner(net, rng=0, n_threads=1, **row["opt"])
    learner.initialise(_train._take(X, np.arange(min(row["batch"], n))))
    t_end = learner.options["t_window"]
    levels, _ = _batch.simulate_batch(net, learner.encode_batch(X), t_end)
    return [(f"{name} layer {li + 1} {layer!r}", layer, levels[li], net.neuron.as_tuple(), t_end)
            for li, layer in enumerate(net.layers) if isinstance(layer, Conv2d)]


def compare(layer, ev, nrn, t_end, repeats):
    tau_m, tau_s, theta, mreset, t_ref = nrn
    w = kernel_weights(layer)
    indptr, targets, _ = layer.connectivity()
    WT = _conv.transposed_weight(layer, w)
    off = ev.offsets

    def old(s):
        a, b = off[s], off[s + 1]
        return _engine.sparse_layer(ev.times[a:b], ev.neurons[a:b], ev.values[a:b], layer.n_out,
                                    indptr, targets, w, tau_m, tau_s, theta, mreset, t_ref,
                                    t_end, 10_000_000)

    def new(s):
        a, b = off[s], off[s + 1]
        return _conv.run_conv(layer, WT, ev.times[a:b], ev.neurons[a:b], ev.values[a:b], tau_m,
                              tau_s, theta, mreset, t_ref, t_end, 10_000_000, **event_kw)

    def grouped(s):
        a, b = off[s], off[s + 1]
        return _conv.run_conv(layer, WT, ev.times[a:b], ev.neurons[a:b], ev.values[a:b], tau_m,
                              tau_s, theta, mreset, t_ref, t_end, 10_000_000, kernel="grouped")

    # a baseline checkout without the grouped kernel: its run_conv is the event kernel
    has_grouped = hasattr(_conv, "prefers_grouped")
    event_kw = {"kernel": "event"} if has_grouped else {}
    n = ev.n_samples
    spikes = 0
    picks = 0
    for s in range(n):
        r0, r1 = old(s), new(s)
        assert same_spikes(r0, r1), f"sample {s} differs"
        if has_grouped:
            r2 = grouped(s)
            assert same_spikes(r0, r2), f"sample {s}: grouped kernel differs"
            a, b = off[s], off[s + 1]
            picks += _conv.prefers_grouped(layer, ev.times[a:b], t_end)
        spikes += r0[0].size
    kernels = (("sparse_layer", old), ("conv_layer", new))
    if has_grouped:
        kernels += (("grouped", grouped),)
    best = {label: np.inf for label, _ in kernels}
    for _ in range(repeats):
        for label, f in kernels:
            c0 = time.process_time()
            for s in range(n):
                f(s)
            best[label] = min(best[label], time.process_time() - c0)
    return best, spikes / n, ev.times.size / n, picks


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="cnn,nmnist,paper")
    ap.add_argument("--n", type=int, default=100, help="samples per row")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data-dir", default=te.NMNIST)
    args = ap.parse_args()
    for name in args.rows.split(","):
        for label, layer, ev, nrn, t_end in conv_inputs(name, args.n, args.data_dir):
            best, spk, n_ev, picks = compare(layer, ev, nrn, t_end, args.repeats)
            n = ev.n_samples
            times = ", ".join(f"{k} {1e3 * v / n:.3f} ms ({v / best['sparse_layer']:.3f})"
                              for k, v in best.items())
            print(f"{label}: {n_ev:.0f} input events, {spk:.0f} spikes per sample; per sample "
                  f"(ratio to sparse_layer): {times}; run_conv picks the grouped kernel for "
                  f"{picks} of {n} samples", flush=True)


if __name__ == "__main__":
    main()
