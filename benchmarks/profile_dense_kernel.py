"""Where the time of W1's Dense layer goes (issue 12): ``simulate`` against the window kernel
alone, the kernel with no neuron ever flagged (theta = 1e9: the schedule and the window
passes only), the schedule alone, the window passes alone in a loop, and the floor of
benchmarks/event_sim.py (the weight row of every input event added to one accumulator per
neuron), all in one process: process CPU time, one thread, min and median of ``--repeats``
calls after a warm-up, several rounds interleaved. The replays of flagged neurons and their
exact solves are the kernel's time minus the theta = 1e9 time.

Usage::

    python benchmarks/profile_dense_kernel.py                 # 1000 and 4000 neurons, 20 Hz
    python benchmarks/profile_dense_kernel.py --n-out 1000 --rounds 5
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from event_sim import TAU_M, TAU_S, THETA, floor_sweep, make_workload  # noqa: E402


_floor = floor_sweep()   # event_sim's floor kernel


def _passes(window8, sched, WT, in_i, block, tau_m, tau_s):
    """The window passes of the kernel's common windows (8 single inputs), nothing else,
    block by block of ``block`` neurons as the kernel runs them, in a numba loop."""
    gs, gt, gn, ga, gb, gG, gdm, gds, wm, ws, wst, wa, wb, wE, wr, wrm, wrs, qW = sched

    @njit(cache=False)
    def run(WT, in_i, block, c, itau_m, itau_s):
        n = 0
        n_out = WT.shape[1]
        for lo in range(0, n_out, block):
            hi = min(lo + block, n_out)
            M, S = np.zeros(hi - lo), np.zeros(hi - lo)
            M1, S1 = np.zeros(hi - lo), np.zeros(hi - lo)
            flag = np.zeros(hi - lo, np.bool_)
            for w in range(wst.size - 1):
                g0 = wst[w]
                e0 = gs[g0]
                if gs[g0 + 1] - e0 != 1 or gs[wst[w + 1]] - e0 != 8:
                    continue
                n += window8(M, S, M1, S1, flag, WT, in_i, lo, hi, wm, ws, qW, e0, gdm[g0],
                             gds[g0], wa[w], wb[w], c, itau_m, itau_s, 1e9)
                M, M1 = M1, M
                S, S1 = S1, S
        return n

    c = tau_m / (tau_m - tau_s)
    return lambda: run(WT, in_i, block, c, 1.0 / tau_m, 1.0 / tau_s)


def cpu_ms(f, repeats):
    ts = []
    for _ in range(repeats):
        c0 = time.process_time()
        f()
        ts.append(time.process_time() - c0)
    return min(ts) * 1e3, statistics.median(ts) * 1e3


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-out", type=int, action="append", help="output neurons (repeatable)")
    p.add_argument("--rate", type=float, default=20.0)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    from eventsnn import SRM, Dense, Sequential, SpikeTrains
    from eventsnn.event import _engine

    print(f"load average {os.getloadavg()[0]:.2f}; CPU ms, min / median of {args.repeats}")
    for n_out in args.n_out or [1000, 4000]:
        times, neurons, weight = make_workload(1000, n_out, args.rate, 1000.0, 0.06, 2024)
        net = Sequential(Dense(1000, n_out), neuron=SRM(TAU_M, TAU_S, THETA, "membrane", 0.1),
                         rng=0)
        net.layers[0].weight = weight
        st = SpikeTrains(times, neurons, 1000)
        WT = net.layers[0].weight_t
        v = np.ones(times.size)
        kargs = (times, neurons, v, WT, TAU_M, TAU_S, THETA, True, 0.1, 1000.0, 10**7)
        quiet = kargs[:6] + (1e9,) + kargs[7:]
        sched = _engine._dense_windows(times, v, 1000.0, TAU_M, TAU_S,
                                       _engine.DENSE_WINDOW_EVENTS)
        acc = np.zeros(n_out)
        parts = {
            "simulate": lambda: net.simulate(st, t_end=1000.0),
            "kernel": lambda: _engine.dense_layer(*kargs),
            "kernel, theta 1e9": lambda: _engine.dense_layer(*quiet),
            "schedule": lambda: _engine._dense_windows(times, v, 1000.0, TAU_M, TAU_S,
                                                       _engine.DENSE_WINDOW_EVENTS),
            "window passes": _passes(_engine._window8, sched, WT, neurons,
                                     _engine.dense_block_size(1000, n_out), TAU_M, TAU_S),
            "floor": lambda: _floor(WT, neurons, acc),
        }
        for f in parts.values():
            f()     # compile / warm up
        res = {k: [] for k in parts}
        for _ in range(args.rounds):
            for k, f in parts.items():
                res[k].append(cpu_ms(f, args.repeats))
        spikes = _engine.dense_layer(*kargs)[0].size
        print(f"W1, {n_out} neurons, {args.rate:g} Hz ({times.size} input events, "
              f"{spikes} output spikes, blocks of {_engine.dense_block_size(1000, n_out)})")
        for k, v_ in res.items():
            mins = [m for m, _ in v_]
            meds = [m for _, m in v_]
            print(f"  {k:18s} min {min(mins):7.2f}  median {statistics.median(meds):7.2f}   "
                  f"(rounds: {' '.join(f'{m:.1f}' for m in mins)})")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
