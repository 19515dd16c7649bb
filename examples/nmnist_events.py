"""Simulate one N-MNIST recording through a small convolutional SNN in event mode.

The recording's events (34 x 34 pixels, two polarities, microsecond time stamps) enter a
Conv2d - MaxPool2d - Dense network of SRM neurons as spikes at their exact times; the
engine finds every output spike time analytically. The weights are random, rescaled by
the firing-rate initialisation so that every layer is active. The script prints a
per-layer summary and, with matplotlib installed, saves the membrane potential of a few
output neurons with their spikes to a PNG (eventsnn.plot.membrane) in the current folder.

    python examples/nmnist_events.py [--file path/to/recording.bin] [--png out.png]

The default file is the N-MNIST sample in the shared data folder (tonic's test data),
found above the current folder or the checkout (../shared/data), or in EVENTSNN_DATA.
"""
import argparse
import time

import numpy as np

import eventsnn as es
from eventsnn import argtypes as at
from eventsnn import io
from eventsnn.datasets.paths import data_root
from eventsnn.init import init_firing_rate


def default_file():
    root = data_root()
    return None if root is None else str(root / "tonic_test_samples" / "sample_nmnist.bin")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", default=default_file(),
                        help="N-MNIST .bin or .bs2 recording (default: %(default)s)")
    parser.add_argument("--png", default="nmnist_event_membrane.png",
                        help="figure path, '' for none (default: %(default)s; the docs figure: "
                             "--png docs/nmnist_event_membrane.png)")
    parser.add_argument("--seed", type=at.nonneg_int, default=0,
                        help="seed of the weights (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.file is None:
        parser.error("no --file given and the shared data folder was not found "
                     "(set EVENTSNN_DATA to it)")

    recording = io.read_nmnist(args.file)
    print(recording.summary())
    x = recording.to_spike_trains()
    net = es.Sequential(es.Conv2d(recording.shape, 8, 5, stride=2, padding=2), es.MaxPool2d(2),
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
            from eventsnn import plot
        except ImportError:
            print("matplotlib is not installed (pip install 'eventsnn[plot]'): no figure")
            return
        import matplotlib.pyplot as plt
        busiest = [int(i) for i in np.argsort(rec.output.counts())[::-1][:3]]
        fig, axes = plt.subplots(len(busiest), 1, figsize=(8, 5), sharex=True)
        for ax, i in zip(axes, busiest):
            plot.membrane(rec, level=len(net.layers), neurons=[i], ax=ax, theta=net.neuron.theta)
            ax.set_xlabel("")
        axes[-1].set_xlabel("time (ms)")
        fig.suptitle("N-MNIST recording, output layer: membranes and exact spike times")
        fig.tight_layout()
        fig.savefig(args.png, dpi=110)
        print(f"figure: {args.png}")


if __name__ == "__main__":
    main()
