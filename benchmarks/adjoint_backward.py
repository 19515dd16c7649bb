"""Benchmark: the membrane-reset backward pass (exact adjoint, eventsnn/event/_adjoint.py)
against the full-reset backward pass on the W1 shape, in the same run.

Workload (the W1 shape of ``event_sim.py``): ``--n-in`` (1000) Poisson spike trains at
``--rate`` Hz (20) for ``--duration`` ms (1000), seed ``--seed``, drive a Dense layer of
``--n-out`` (1000) SRM neurons (tau_m 5 ms, tau_s 1.25 ms, theta 1, t_ref 0.1 ms), weights
N(0, 0.06^2). The same input and weights are simulated once with ``reset="full"`` and once
with ``reset="membrane"``; each record gets gradient 1 on every output spike and is
differentiated with ``kernel="exp"`` (default options) and with ``kernel="depsilon",
clamp=None`` (the exact pass).

Times are process CPU time (``time.process_time``), one thread, best of ``--repeats`` runs
after a warm-up; the ratios are taken within the run.

    python benchmarks/adjoint_backward.py
    python benchmarks/adjoint_backward.py --rate 80 --json out.json
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


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-in", type=int, default=1000)
    p.add_argument("--n-out", type=int, default=1000)
    p.add_argument("--rate", type=float, default=20.0, help="Hz")
    p.add_argument("--duration", type=float, default=1000.0, help="ms")
    p.add_argument("--w-std", type=float, default=0.06)
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", help="write the results to this file")
    a = p.parse_args()
    import eventsnn as es

    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"load {os.getloadavg()[0]:.2f}", file=sys.stderr)
    rng = np.random.default_rng(a.seed)
    counts = rng.poisson(a.rate * a.duration / 1000.0, size=a.n_in)
    times = rng.uniform(0.0, a.duration, size=int(counts.sum()))
    neurons = np.repeat(np.arange(a.n_in, dtype=np.int64), counts)
    order = np.lexsort((neurons, times))
    st = es.SpikeTrains(times[order], neurons[order], a.n_in)
    weight = rng.standard_normal((a.n_out, a.n_in)) * a.w_std
    rows = []
    for reset in ("full", "membrane"):
        net = es.Sequential(es.Dense(a.n_in, a.n_out),
                            neuron=es.SRM(TAU_M, TAU_S, THETA, reset, T_REF))
        net.layers[0].weight = weight
        rec = net.simulate(st, t_end=a.duration)
        grad = np.ones(len(rec.output))
        row = {"reset": reset, "input_events": len(st), "output_spikes": len(rec.output),
               "simulate_s": best_cpu(lambda: net.simulate(st, t_end=a.duration), a.repeats),
               "backward_exp_s": best_cpu(lambda: net.backward(rec, grad), a.repeats),
               "backward_exact_s": best_cpu(
                   lambda: net.backward(rec, grad, kernel="depsilon", clamp=None), a.repeats)}
        rows.append(row)
        print(f"{reset:8s} | in {row['input_events']} | out {row['output_spikes']} | simulate "
              f"{1e3 * row['simulate_s']:.1f} ms | backward exp {1e3 * row['backward_exp_s']:.1f}"
              f" ms | backward depsilon/clamp=None {1e3 * row['backward_exact_s']:.1f} ms",
              flush=True)
    full, mem = rows
    print(f"membrane / full backward: exp {mem['backward_exp_s'] / full['backward_exp_s']:.2f}x, "
          f"exact {mem['backward_exact_s'] / full['backward_exact_s']:.2f}x; "
          f"membrane backward / its simulate: {mem['backward_exp_s'] / mem['simulate_s']:.2f}x",
          flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
