"""``eventsnn simulate MODEL EVENTS``: run a saved model on an event file.

Reads the events with :func:`eventsnn.io.read` (N-MNIST .bin/.bs2, DVS128 Gesture clips,
AEDAT4), simulates them exactly, writes the output spikes to an ``.npz`` (times ms,
neurons, n_neurons, counts), optionally a CSV (one ``time_ms,neuron`` row per spike) and a
raster PNG, and prints one JSON line summarising the run.
"""
import argparse
import json
import os
import sys
from typing import List, Optional
from pathlib import Path

import numpy as np

from . import argtypes as at
from .io.detect import FORMATS


def build_parser():
    p = argparse.ArgumentParser(
        prog="eventsnn simulate",
        description="Simulate a saved model on an event file and write its output spikes.")
    p.add_argument("model", metavar="MODEL", help="model file (.npz) written by eventsnn train --save")
    p.add_argument("events", metavar="EVENTS",
                   help="event file: N-MNIST .bin/.bs2, DVS128 Gesture .bs2, AEDAT4 (.aedat4)")
    p.add_argument("--format", choices=FORMATS, default="auto",
                   help="event file format (default: auto, from the file's content)")
    p.add_argument("--t-max", dest="t_max", type=at.positive_float,
                   help="keep only events up to this recording time in ms (default: the "
                        "training run's t_max, else all)")
    p.add_argument("--time-scale", dest="time_scale", type=at.positive_float,
                   help="multiply event times by this (default: the training run's time_scale, else 1)")
    p.add_argument("--merge-polarity", dest="merge_polarity", action="store_true", default=None,
                   help="one input channel for both polarities (default: as in training)")
    p.add_argument("--t-end", dest="t_end", type=at.positive_float,
                   help="end of the simulation in ms (default: until no event is pending)")
    p.add_argument("--out", metavar="FILE",
                   help="output spikes .npz (default: <EVENTS name>_spikes.npz in the current folder)")
    p.add_argument("--csv", metavar="FILE", help="also write the output spikes as CSV (default: no CSV)")
    p.add_argument("--raster", metavar="FILE",
                   help="also draw a raster of every level to this PNG (needs matplotlib; default: none)")
    return p


def _check_folder(flag, path):
    if path is not None:
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise ValueError(f"{flag} {path}: folder {folder} does not exist")


def simulate(args):
    from .io import read
    from .network import Sequential

    out = args.out or f"{Path(args.events).stem}_spikes.npz"
    for flag, path in (("--out", out), ("--csv", args.csv), ("--raster", args.raster)):
        _check_folder(flag, path)
    if args.raster:
        from .plot import _plt
        _plt()                      # fail now, not after the simulation, without matplotlib
    net = Sequential.load(args.model)
    data = (net.training or {}).get("data") or {}
    rec_file = read(args.events, format=args.format)
    t_max = args.t_max if args.t_max is not None else data.get("t_max")
    scale = args.time_scale if args.time_scale is not None else data.get("time_scale", 1.0)
    merge = args.merge_polarity if args.merge_polarity is not None else bool(data.get("merge_polarity", False))
    x = rec_file.to_spike_trains(t_max=t_max, time_scale=scale, merge_polarity=merge)
    if x.n_neurons != net.n_in:
        C, H, W = rec_file.shape
        raise ValueError(f"{args.events}: {rec_file.format} events of a {W} x {H} sensor with "
                         f"{1 if merge else C} channel(s) give {x.n_neurons} inputs, but the model "
                         f"takes {net.n_in} (input shape {net.in_shape})")
    rec = net.simulate(x, t_end=args.t_end)
    spk = rec.output
    np.savez(out, times=spk.times, neurons=spk.neurons, n_neurons=spk.n_neurons,
             counts=spk.counts())
    if args.csv:
        with open(args.csv, "w") as fh:
            fh.write("time_ms,neuron\n")
            for t, i in zip(spk.times, spk.neurons):
                fh.write(f"{float(t)!r},{int(i)}\n")
    if args.raster:
        from .plot import raster
        axes = raster(rec, level=None)
        axes[0].figure.savefig(args.raster, dpi=120)
    counts = spk.counts()
    return {"events_file": args.events, "format": rec_file.format, "file_events": len(rec_file),
            "input_events": len(x), "after_t_max": t_max, "dropped_by_reader": rec_file.dropped,
            "notes": rec_file.notes,
            "events_per_level": [len(s) for s in rec.spikes],
            "output_counts": counts.tolist(),
            "prediction": int(np.argmax(counts)) if counts.any() else None,
            "out": out, "csv": args.csv, "raster": args.raster}


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        summary = simulate(args)
    except (ValueError, TypeError, OSError, ImportError) as exc:
        print(f"eventsnn simulate: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError:
        print("eventsnn simulate: error: out of memory (try --t-max)", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0
