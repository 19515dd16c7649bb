"""``eventsnn demo``: a synthetic event-camera stream through a small convolutional SNN,
simulated exactly in continuous time, with a summary of what happened."""
import argparse
import time
from typing import List, Optional, cast

import numpy as np

from . import argtypes as at
from .layers import Conv2d, Dense, MaxPool2d
from .network import Sequential
from .neurons import SRM
from .spikes import SpikeTrains
from ._typing import Seed


def moving_bar(size: int = 16, duration: float = 100.0, speed: float = 0.2, rate: float = 0.3,
               rng: Seed = 0) -> SpikeTrains:
    """Events of a vertical bar sweeping left to right across a (2, size, size) sensor.

    ON events (channel 0) at the bar's leading edge, OFF events (channel 1) at its trailing
    edge, each pixel firing as a Poisson process of ``rate`` events per ms while on the edge;
    ``speed`` in pixels per ms. Times in ms."""
    gen = np.random.default_rng(rng)
    times: List[float] = []
    idx: List[int] = []
    t = 0.0
    while t < duration:
        t += gen.exponential(1.0 / (rate * size))
        lead = int(speed * t) % size
        trail = (lead - 2) % size
        y = gen.integers(0, size)
        times += [t, t + gen.uniform(0, 0.5)]
        idx += [0 * size * size + y * size + lead, 1 * size * size + y * size + trail]
    t_arr = np.array(times)
    keep = t_arr < duration
    return SpikeTrains(t_arr[keep], np.array(idx)[keep], 2 * size * size)


def build_network(rng: Seed = 0) -> Sequential:
    net = Sequential(Conv2d((2, 16, 16), 4, 5, stride=1, padding=2), MaxPool2d(2),
                     Dense(4 * 8 * 8, 10), neuron=SRM(tau_m=5.0, tau_s=1.25, theta=1.0), rng=rng)
    gen = np.random.default_rng(rng)
    conv, dense = cast(Conv2d, net.layers[0]), cast(Dense, net.layers[2])
    # oriented edge detectors: each map prefers ON on one side and OFF on the other
    w = np.zeros(conv.weight_shape)
    for c in range(4):
        w[c, 0, :, c + 1] = 0.35
        w[c, 1, :, (c + 3) % 5] = 0.25
    conv.weight = w
    dense.weight = gen.normal(0.04, 0.08, dense.weight_shape)
    return net


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="eventsnn demo",
        description="Send a synthetic event-camera stream (a bar moving across a 16 x 16 "
                    "sensor) through a small convolutional spiking network, simulated exactly "
                    "in continuous time, and summarise the events of every layer.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--duration", type=at.float_range(0.0, 1e6, low_open=True), default=200.0,
                        help="stream length in ms, in (0, 1e6]")
    parser.add_argument("--seed", type=at.nonneg_int, default=0,
                        help="seed of the stream and of the weights")
    args = parser.parse_args(argv)
    x = moving_bar(duration=args.duration, rng=args.seed)
    net = build_network(args.seed)
    print(f"input   {x}")
    print(f"network {net}")
    t0 = time.perf_counter()
    rec = net.simulate(x)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    rec = net.simulate(x)
    wall = time.perf_counter() - t0
    names = ["input"] + [repr(layer) for layer in net.layers]
    fan = [l.n_out if isinstance(l, Dense) else 0 for l in net.layers]
    syn = len(rec.spikes[0]) * cast(Conv2d, net.layers[0]).out_channels * 25 + len(rec.spikes[2]) * fan[2]
    print("\nevents per level (exact spike times, continuous time):")
    for name, s in zip(names, rec.spikes):
        active = np.unique(s.neurons).size
        span = f"{s.times[0]:8.3f} .. {s.times[-1]:8.3f} ms" if len(s) else "-"
        print(f"  {name:<55s} {len(s):6d} events  {active:4d}/{s.n_neurons:<5d} active  {span}")
    out = rec.output
    counts = out.counts()
    print("\noutput spike counts per neuron:", " ".join(str(c) for c in counts))
    ft = out.first_times()
    print("first output spike times (ms):", " ".join("-" if np.isinf(t) else f"{t:.4f}" for t in ft))
    print(f"\nsimulated {args.duration:.0f} ms in {wall * 1e3:.1f} ms wall time "
          f"({first:.2f} s on the first call, including numba compilation or cache load); "
          f"about {syn / wall / 1e6:.1f} M synaptic events/s")
    return 0
