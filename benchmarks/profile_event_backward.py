"""Where the time of the event-mode backward pass goes on the W1 shape (full reset).

Times the pieces of ``eventsnn.event._backward.layer_backward`` separately (process CPU
time, one thread, best of ``--repeats`` after a warm-up): the two sweeps (the second with
and without the input time gradient), the preparation (window edges, block references),
and the transposes around the kernel, next to ``simulate`` and the whole ``net.backward``.
The sweeps get the real inputs; sweep 2 gets unit coefficients (its cost does not depend
on their values).

    python benchmarks/profile_event_backward.py --rate 20
"""
import argparse
import os
import sys

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout


from _timing import best_cpu  # noqa: E402


def best(fn, repeats):
    return 1e3 * best_cpu(fn, repeats)   # ms


def main():
    import eventsnn as es
    from eventsnn.event import _backward as K

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=20.0, help="Hz")
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    tau_m, tau_s, t_ref, tau_g = 5.0, 1.25, 0.1, 2.5
    rng = np.random.default_rng(2024)
    n_in = n_out = 1000
    counts = rng.poisson(a.rate, size=n_in)
    times = rng.uniform(0.0, 1000.0, size=int(counts.sum()))
    neurons = np.repeat(np.arange(n_in, dtype=np.int64), counts)
    order = np.lexsort((neurons, times))
    weight = rng.standard_normal((n_out, n_in)) * 0.06
    net = es.Sequential(es.Dense(n_in, n_out), neuron=es.SRM(tau_m, tau_s, 1.0, "full", t_ref))
    net.layers[0].weight = weight
    st = es.SpikeTrains(times[order], neurons[order], n_in)
    rec = net.simulate(st, t_end=1000.0)
    g = np.ones(len(rec.output))
    below, here = rec.spikes
    wt = np.ascontiguousarray(weight.T).ravel()
    E = np.zeros(0, np.int64)
    blk = K.block_length(tau_m, tau_s, K.KERNEL_EXP, tau_g)
    start, order_ = K._spikes_by_neuron(here.neurons, n_out)
    r = K._window_starts(here.times, here.neurons, n_out, t_ref, start, order_)
    et, ek, eo = K._edges_merged(here.times, here.neurons, r, n_out, start, order_)
    ref = K._block_refs(below.times, blk)
    d = below.times - ref
    fm, fs, fg = (np.exp(d / tau) for tau in (tau_m, tau_s, tau_g))
    em, es_, eg = (below.values * f for f in (fm, fs, fg))
    gi, gw = np.zeros(below.times.size), np.zeros(wt.size)
    ones = np.ones(here.times.size)
    c = tau_m / (tau_m - tau_s)
    _, _, _, Fk = K._sweep_sums(below.times, below.neurons, below.values, em, es_, eg, fm, fs,
                                fg, ref, n_out, True, E, E, E, E, wt, here.times, here.neurons,
                                et, ek, eo, tau_m, tau_s, tau_g, True, E, E)

    def sweep1():
        K._sweep_sums(below.times, below.neurons, below.values, em, es_, eg, fm, fs, fg, ref,
                      n_out, True, E, E, E, E, wt, here.times, here.neurons, et, ek, eo, tau_m,
                      tau_s, tau_g, True, E, E)

    def sweep2(input_grad):
        return lambda: K._sweep_assign(
            below.times, below.neurons, below.values, em, es_, eg, fm, fs, ref, n_out, True, E,
            E, E, E, E, wt, here.times, here.neurons, et, ek, eo, Fk, tau_m, tau_s, tau_g, True,
            c, ones, -ones, input_grad, 1.0, gi, gw, E, E)

    rows = [
        ("simulate", lambda: net.simulate(st, t_end=1000.0)),
        ("net.backward", lambda: net.backward(rec, g)),
        ("net.backward input_grad=False", lambda: net.backward(rec, g, input_grad=False)),
        ("sweep 1 (window sums)", sweep1),
        ("sweep 2, input_grad=False", sweep2(False)),
        ("sweep 2, input_grad=True", sweep2(True)),
        ("edges + block references", lambda: (K._edges_merged(here.times, here.neurons, r, n_out,
                                                                start, order_),
                                              K._block_refs(below.times, blk))),
        ("W^T copy", lambda: np.ascontiguousarray(weight.T).ravel()),
        ("gradient transposed back", lambda: np.ascontiguousarray(gw.reshape(n_in, n_out).T)),
    ]
    print(f"W1 {a.rate:g} Hz: {len(st)} input events, {len(rec.output)} output spikes, "
          f"load {os.getloadavg()[0]:.1f}")
    for name, fn in rows:
        print(f"  {name:32s} {best(fn, a.repeats):8.1f} ms", flush=True)


if __name__ == "__main__":
    main()
