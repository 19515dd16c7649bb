"""Simulate one N-MNIST recording through a small convolutional SNN in event mode.

The recording's events (34 x 34 pixels, two polarities, microsecond time stamps) enter a
Conv2d - MaxPool2d - Dense network of SRM neurons as spikes at their exact times; the
engine finds every output spike time analytically. The weights are random, rescaled by
the firing-rate initialisation so that every layer is active. The script prints a
per-layer summary and, with matplotlib installed, saves the membrane potential of a few
output neurons with their spikes to a PNG.

    python examples/nmnist_events.py [--file path/to/recording.bin] [--png out.png]

The default file is the N-MNIST sample kept in ../shared/data (tonic's test data).
"""
import argparse
import time
from pathlib import Path

import numpy as np

import eventsnn as es
from eventsnn.datasets import nmnist
from eventsnn.init import init_firing_rate

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "tonic_test_samples" / "sample_nmnist.bin"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", default=str(DEFAULT), help="N-MNIST .bin or .bs2 recording")
    parser.add_argument("--png", default="docs/nmnist_event_membrane.png", help="figure path ('' for none)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    x = nmnist.to_spike_trains(nmnist.read_events(args.file))[0]
    print(f"recording: {x}")
    net = es.Sequential(es.Conv2d(nmnist.SHAPE, 8, 5, stride=2, padding=2), es.MaxPool2d(2),
                        es.Dense(8 * 8 * 8, 10), neuron=es.SRM(tau_m=5.0, tau_s=1.25, theta=1.0),
                        rng=args.seed)
    scales, rates = init_firing_rate(net, [x], target=3.0)
    print("firing-rate initialisation: scales", [None if s is None else round(s, 3) for s in scales])

    t_rec = np.linspace(0.0, x.times[-1] + 10.0, 4001)
    t0 = time.perf_counter()
    rec = net.simulate(x, record_times=t_rec)
    wall = time.perf_counter() - t0
    for name, s in zip(["input"] + [repr(layer) for layer in net.layers], rec.spikes):
        print(f"  {name:<55s} {len(s):6d} events on {np.unique(s.neurons).size:4d}/{s.n_neurons} neurons")
    print(f"output spike counts: {rec.output.counts()}")
    print(f"simulated {x.times[-1]:.0f} ms of events in {wall * 1e3:.1f} ms (with membrane recording)")

    if args.png:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("matplotlib is not installed: no figure")
            return
        v = rec.membrane[len(net.layers)]
        busiest = np.argsort(rec.output.counts())[::-1][:3]
        fig, axes = plt.subplots(len(busiest), 1, figsize=(8, 5), sharex=True)
        for ax, i in zip(np.atleast_1d(axes), busiest):
            ax.plot(t_rec, v[:, i], lw=0.8)
            ax.axhline(net.neuron.theta, color="k", ls=":", lw=0.8)
            spikes = rec.output.times[rec.output.neurons == i]
            ax.plot(spikes, np.full(spikes.size, net.neuron.theta), "r|", ms=12)
            ax.set_ylabel(f"u, neuron {i}")
        np.atleast_1d(axes)[-1].set_xlabel("time (ms)")
        fig.suptitle("N-MNIST recording, output layer: membranes and exact spike times")
        fig.tight_layout()
        fig.savefig(args.png, dpi=110)
        print(f"figure: {args.png}")


if __name__ == "__main__":
    main()
