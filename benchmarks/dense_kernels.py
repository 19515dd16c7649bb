"""Dense forward kernels on the Dense layers of the digits FC row of issue 12, and a sweep of
events per input group that calibrates ``_dense.run_dense``'s cost model.

The digits FC network (64-100-10) is built and initialised as ``train_epoch.py`` does, the
first ``--n`` training samples are simulated and the input events of each Dense layer kept.
Per layer, ``_engine.dense_layer`` (the window kernel) and ``_grouped.grouped_dense_layer``
(the group-interval kernel) process the same samples: the spikes are checked equal (same
neurons, times within 1e-9 ms), and the CPU time per sample (one thread, best of
``--repeats``, the kernels alternating) is printed with the samples for which the cost model
picks the grouped kernel. The sweep (``--sweep``) feeds a layer of 100 neurons with 5 groups
of k random events of 64 inputs each (k = 1, 2, 4, ...) and prints both kernels' times.

    python benchmarks/dense_kernels.py [--n 300] [--sweep]
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
from eventsnn import train as _train  # noqa: E402
from eventsnn.event import _dense, _engine, _grouped  # noqa: E402
from eventsnn.event import batch as _batch  # noqa: E402
from eventsnn.event.forward import kernel_weights  # noqa: E402
from eventsnn.event.learner import EventLearner  # noqa: E402
from eventsnn.layers import Dense  # noqa: E402
from eventsnn.network import Sequential  # noqa: E402
from eventsnn.neurons import SRM  # noqa: E402
from eventsnn.train_cli import input_shape, load_dataset, parse_arch  # noqa: E402


def dense_inputs(n):
    """(label, WT, Events of the layer's input, neuron tuple, t_end) per Dense layer."""
    row = te.ROWS["fc"]
    X, y, _, _ = load_dataset(row["dataset"], None, dict(row["data"]))
    X = X[:n]
    net = Sequential(*parse_arch(row["arch"], input_shape(X), 10), neuron=SRM(), rng=0)
    learner = EventLearner(net, rng=0, n_threads=1, **row["opt"])
    learner.initialise(_train._take(X, np.arange(min(row["batch"], n))))
    t_end = learner.options["t_window"]
    levels, _ = _batch.simulate_batch(net, learner.encode_batch(X), t_end)
    return [(f"fc layer {li + 1} {layer!r}",
             np.ascontiguousarray(kernel_weights(layer), dtype=np.float64), levels[li],
             net.neuron.as_tuple(), t_end)
            for li, layer in enumerate(net.layers) if isinstance(layer, Dense)]


def compare(WT, ev, nrn, t_end, repeats, check=True):
    tau_m, tau_s, theta, mreset, t_ref = nrn
    off = ev.offsets

    def window(s):
        a, b = off[s], off[s + 1]
        return _engine.dense_layer(ev.times[a:b], ev.neurons[a:b], ev.values[a:b], WT, tau_m,
                                   tau_s, theta, mreset, t_ref, t_end, 10_000_000)

    def grouped(s):
        a, b = off[s], off[s + 1]
        return _grouped.grouped_dense_layer(ev.times[a:b], ev.neurons[a:b], ev.values[a:b], WT,
                                            tau_m, tau_s, theta, mreset, t_ref, t_end,
                                            10_000_000)

    n = ev.n_samples
    spikes = picks = 0
    for s in range(n):
        r0, r1 = window(s), grouped(s)
        if check:
            assert np.array_equal(r0[1], r1[1]) and np.allclose(r0[0], r1[0], rtol=0, atol=1e-9), \
                f"sample {s}: grouped kernel differs"
        a, b = off[s], off[s + 1]
        picks += _dense.prefers_grouped_dense(WT.shape[1], ev.times[a:b], t_end)
        spikes += r0[0].size
    best = {"window": np.inf, "grouped": np.inf}
    for _ in range(repeats):
        for label, f in (("window", window), ("grouped", grouped)):
            c0 = time.process_time()
            for s in range(n):
                f(s)
            best[label] = min(best[label], time.process_time() - c0)
    return best, spikes / n, ev.times.size / n, picks


def sweep(WT, nrn, t_end, repeats, n=300):
    rng = np.random.default_rng(0)
    n_in = WT.shape[0]
    for k in (1, 2, 4, 8, 16, 32, 64):
        parts = []
        for s in range(n):
            ev_t, ev_i, ev_v = [], [], []
            for g in range(5):
                idx = np.sort(rng.choice(n_in, min(k, n_in), replace=False))
                ev_t.append(np.full(idx.size, float(g)))
                ev_i.append(idx)
                ev_v.append(rng.uniform(0.0, 16.0 / k, idx.size))
            parts.append((np.concatenate(ev_t), np.concatenate(ev_i), np.concatenate(ev_v)))
        sizes = [p[0].size for p in parts]
        off = np.zeros(n + 1, np.int64)
        np.cumsum(sizes, out=off[1:])
        ev = _batch.Events(np.concatenate([p[0] for p in parts]),
                           np.concatenate([p[1] for p in parts]),
                           np.concatenate([p[2] for p in parts]), off, n_in)
        best, spk, _, picks = compare(WT, ev, nrn, t_end, repeats)
        print(f"sweep: {k} events per group, {spk:.0f} spikes per sample: window "
              f"{1e6 * best['window'] / n:.1f} us, grouped {1e6 * best['grouped'] / n:.1f} us "
              f"(ratio {best['grouped'] / best['window']:.2f}); picked for {picks} of {n}",
              flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="samples")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sweep", action="store_true")
    args = ap.parse_args()
    layers = dense_inputs(args.n)
    for label, WT, ev, nrn, t_end in layers:
        best, spk, n_ev, picks = compare(WT, ev, nrn, t_end, args.repeats)
        n = ev.n_samples
        print(f"{label}: {n_ev:.0f} input events, {spk:.1f} spikes per sample; per sample: "
              f"window {1e6 * best['window'] / n:.1f} us, grouped {1e6 * best['grouped'] / n:.1f}"
              f" us (grouped / window {best['grouped'] / best['window']:.2f}); the cost model "
              f"picks the grouped kernel for {picks} of {n} samples", flush=True)
    if args.sweep:
        _, WT, _, nrn, t_end = layers[0]
        sweep(WT, nrn, t_end, args.repeats)


if __name__ == "__main__":
    main()
