"""Benchmark: event-mode timing backward pass vs simulate on the W1 shape.

Workload (the W1 shape of ``event_sim.py`` with full reset): ``--n-in`` (1000) Poisson spike
trains at each of ``--rates`` (20 and 80 Hz) for ``--duration`` (1000 ms), seed
``--seed``, drive a Dense layer of ``--n-out`` (1000) SRM neurons (tau_m 5 ms, tau_s 1.25 ms,
theta 1, ``reset="full"``, t_ref 0.1 ms), weights N(0, w_std^2) (w_std 0.06). The backward
pass gets gradient 1 on every output spike (``kernel="exp"``, tau_grad 2.5 ms, default
options), once with the time gradient of the input events (``input_grad=True``, the
default of ``net.backward``) and once without (``input_grad=False``, what training uses).

With ``--conv`` it also times a conv shape like the N-MNIST one (2x34x34 input, 12C5s2,
MaxPool 2, Flatten, Dense 10): ``--conv-events`` random input events over 30 ms.

Every time is process CPU time (``time.process_time``), one thread, best of ``--repeats``
runs after a warm-up; the ratio backward / simulate is taken within the same run.

    python benchmarks/event_backward.py                  # 20 and 80 Hz
    python benchmarks/event_backward.py --conv --json out.json
"""
import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout

from _timing import best_cpu  # noqa: E402

TAU_M, TAU_S, THETA, T_REF = 5.0, 1.25, 1.0, 0.1


def _supports_input_grad():
    import inspect

    from eventsnn.event.backward import backward
    return "input_grad" in inspect.signature(backward).parameters


def w1(n_in, n_out, rate, duration, w_std, seed, repeats):
    import eventsnn as es

    rng = np.random.default_rng(seed)
    counts = rng.poisson(rate * duration / 1000.0, size=n_in)
    times = rng.uniform(0.0, duration, size=int(counts.sum()))
    neurons = np.repeat(np.arange(n_in, dtype=np.int64), counts)
    order = np.lexsort((neurons, times))
    weight = rng.standard_normal((n_out, n_in)) * w_std
    net = es.Sequential(es.Dense(n_in, n_out), neuron=es.SRM(TAU_M, TAU_S, THETA, "full", T_REF))
    net.layers[0].weight = weight
    st = es.SpikeTrains(times[order], neurons[order], n_in)
    rec = net.simulate(st, t_end=duration)
    grad = np.ones(len(rec.output))
    row = {"workload": "W1", "rate_hz": rate, "input_events": len(st),
           "output_spikes": len(rec.output),
           "simulate_s": best_cpu(lambda: net.simulate(st, t_end=duration), repeats),
           "backward_s": best_cpu(lambda: net.backward(rec, grad), repeats)}
    if _supports_input_grad():
        row["backward_no_input_grad_s"] = best_cpu(
            lambda: net.backward(rec, grad, input_grad=False), repeats)
    return row


def conv(n_events, seed, repeats):
    import eventsnn as es

    rng = np.random.default_rng(seed)
    net = es.Sequential(es.Conv2d((2, 34, 34), 12, 5, stride=2), es.MaxPool2d(2), es.Flatten(),
                        es.Dense(12 * 7 * 7, 10), neuron=es.SRM(TAU_M, TAU_S, THETA, "full", T_REF),
                        rng=seed)
    net.layers[0].weight = np.abs(net.layers[0].weight) * 2.0
    net.layers[3].weight = np.abs(net.layers[3].weight) * 4.0
    st = es.SpikeTrains(rng.uniform(0, 30.0, n_events), rng.integers(0, 2 * 34 * 34, n_events),
                        2 * 34 * 34)
    rec = net.simulate(st)
    grad = np.ones(len(rec.output))
    row = {"workload": "conv 12C5s2-MP2-10", "input_events": len(st),
           "events_per_level": [len(s) for s in rec.spikes],
           "simulate_s": best_cpu(lambda: net.simulate(st), repeats),
           "backward_s": best_cpu(lambda: net.backward(rec, grad), repeats)}
    if _supports_input_grad():
        row["backward_no_input_grad_s"] = best_cpu(
            lambda: net.backward(rec, grad, input_grad=False), repeats)
    return row


def show(row):
    sim = row["simulate_s"]
    parts = [f"{row['workload']}" + (f" {row['rate_hz']:g} Hz" if "rate_hz" in row else ""),
             f"in {row['input_events']}",
             f"out {row.get('output_spikes', row.get('events_per_level'))}",
             f"simulate {1e3 * sim:.1f} ms",
             f"backward {1e3 * row['backward_s']:.1f} ms ({row['backward_s'] / sim:.2f}x)"]
    if "backward_no_input_grad_s" in row:
        b = row["backward_no_input_grad_s"]
        parts.append(f"backward input_grad=False {1e3 * b:.1f} ms ({b / sim:.2f}x)")
    print(" | ".join(parts), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-in", type=int, default=1000)
    p.add_argument("--n-out", type=int, default=1000)
    p.add_argument("--rates", type=float, nargs="+", default=[20.0, 80.0], help="Hz")
    p.add_argument("--duration", type=float, default=1000.0, help="ms")
    p.add_argument("--w-std", type=float, default=0.06)
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--conv", action="store_true", help="also time the N-MNIST-like conv shape")
    p.add_argument("--conv-events", type=int, default=3000)
    p.add_argument("--json", help="write the results to this file")
    a = p.parse_args()
    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"load {os.getloadavg()[0]:.2f}", file=sys.stderr)
    rows = []
    for rate in a.rates:
        rows.append(w1(a.n_in, a.n_out, rate, a.duration, a.w_std, a.seed, a.repeats))
        show(rows[-1])
    if a.conv:
        rows.append(conv(a.conv_events, a.seed, a.repeats))
        show(rows[-1])
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
