"""``eventsnn simulate MODEL EVENTS [EVENTS ...]``: run a saved model on event files.

Reads the events with :func:`eventsnn.io.read` (N-MNIST .bin/.bs2, DVS128 Gesture clips,
AEDAT4), simulates them exactly, writes the output spikes to an ``.npz`` per file (times
ms, neurons, n_neurons, counts), for a single file optionally a CSV (one ``time_ms,neuron``
row per spike) and a raster PNG, and prints one JSON line summarising each file. With
``--scheduler`` the files are read and simulated on the workers of a Dask cluster (the
network sent once), with the same output.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from . import _validate as v
from . import argtypes as at
from .io.detect import FORMATS
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

if TYPE_CHECKING:
    from .event.forward import Record
    from .network import Sequential
    from .spikes import SpikeTrains


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="eventsnn simulate",
        description="Simulate a saved model on event files and write their output spikes.")
    p.add_argument("model", metavar="MODEL", help="model file (.npz) written by eventsnn train --save")
    p.add_argument("events", metavar="EVENTS", nargs="+",
                   help="event file(s): N-MNIST .bin/.bs2, DVS128 Gesture .bs2, AEDAT4 (.aedat4), "
                        "jAER AEDAT 1.0/2.0 (.aedat); "
                        "several files give one output file and one JSON line each")
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
                   help="output spikes .npz of a single EVENTS file (default: <EVENTS name>_spikes.npz "
                        "in --out-dir)")
    p.add_argument("--out-dir", dest="out_dir", metavar="DIR",
                   help="folder of the <EVENTS name>_spikes.npz files (default: the current folder)")
    p.add_argument("--csv", metavar="FILE",
                   help="also write the output spikes as CSV (a single EVENTS file; default: no CSV)")
    p.add_argument("--raster", metavar="FILE",
                   help="also draw a raster of every level to this PNG (a single EVENTS file; needs "
                        "matplotlib; default: none)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="simulate the files on a Dask cluster: a scheduler address (tcp://HOST:PORT) "
                        "or local:N; the workers read the files (same paths on every worker); same "
                        "output as without it (docs/distributed.md; needs eventsnn[distributed])")
    p.add_argument("--scheduler-timeout", dest="scheduler_timeout", type=at.timeout_seconds,
                   metavar="SECONDS", help="give up reaching the scheduler after this long, at most 86400 (default 10)")
    return p


def _check_folder(flag, path):
    """An output path whose folder exists and can be written, and that is not a folder."""
    from .train_cli import _check_writable

    _check_writable(flag.lstrip("-"), path)


def simulate_file(net: Sequential, path: str, settings: Dict[str, Any], keep_record: bool = False
                  ) -> Tuple[Dict[str, Any], SpikeTrains, Optional[Record]]:
    """Read one event file, check it against ``net``'s input and simulate it (what every
    EVENTS file goes through, in this process or on a Dask worker).

    ``settings``: dict of format, t_max, time_scale, merge_polarity (ms, as the flags) and
    t_end (ms); an optional ``time_scale_source`` (text) says in errors where the
    time_scale came from. Returns (summary dict, output SpikeTrains, the whole Record when
    ``keep_record`` else None)."""
    from .io import read

    rec_file = read(path, format=settings["format"])
    try:
        x = rec_file.to_spike_trains(t_max=settings["t_max"], time_scale=settings["time_scale"],
                                     merge_polarity=settings["merge_polarity"])
    except ValueError as exc:   # e.g. a time_scale overflowing the event times
        where = settings.get("time_scale_source")
        hint = f" (time_scale {where})" if where and "time_scale" in str(exc) else ""
        raise ValueError(f"{path}: {exc}{hint}") from None
    if x.n_neurons != net.n_in:
        C, H, W = rec_file.shape
        raise ValueError(f"{path}: {rec_file.format} events of a {W} x {H} sensor with "
                         f"{1 if settings['merge_polarity'] else C} channel(s) give {x.n_neurons} "
                         f"inputs, but the model takes {net.n_in} (input shape {net.in_shape})")
    rec = net.simulate(x, t_end=settings["t_end"])
    counts = rec.output.counts()
    summary = {"events_file": path, "format": rec_file.format, "file_events": len(rec_file),
               "input_events": len(x), "after_t_max": settings["t_max"],
               "dropped_by_reader": rec_file.dropped, "notes": rec_file.notes,
               "events_per_level": [len(s) for s in rec.spikes],
               "output_counts": counts.tolist(),
               "prediction": int(np.argmax(counts)) if counts.any() else None}
    return summary, rec.output, (rec if keep_record else None)


def _simulate_shared(shared, path):
    net, settings, keep = shared
    return simulate_file(net, path, settings, keep)


def _outputs(args):
    """The .npz path of every EVENTS file."""
    n = len(args.events)
    if n > 1:
        for flag, value in (("--out", args.out), ("--csv", args.csv), ("--raster", args.raster)):
            if value is not None:
                raise ValueError(f"{flag} takes a single EVENTS file ({n} given); several files "
                                 f"write <EVENTS name>_spikes.npz into --out-dir")
    folder = args.out_dir if args.out_dir is not None else ""
    if args.out_dir is not None and not os.path.isdir(args.out_dir):
        raise ValueError(f"--out-dir {args.out_dir}: no such folder")
    if args.out_dir is not None:  # os.access says yes to root on read-only mounts: try a file
        import tempfile
        try:
            with tempfile.NamedTemporaryFile(dir=args.out_dir, prefix=".eventsnn-probe-"):
                pass
        except OSError as exc:
            raise ValueError(f"--out-dir {args.out_dir}: cannot write in this folder "
                             f"({exc.strerror})") from None
    if args.out is not None:
        return [args.out]
    outs = [os.path.join(folder, f"{Path(e).stem}_spikes.npz") for e in args.events]
    seen = {}
    for e, o in zip(args.events, outs):
        if o in seen:
            raise ValueError(f"EVENTS {seen[o]} and {e} would both write {o}")
        seen[o] = e
    return outs


def simulate(args: argparse.Namespace) -> List[Dict[str, Any]]:
    """The JSON summaries (one per EVENTS file) of the run ``args`` asks for."""
    from .network import Sequential

    outs = _outputs(args)
    named = [("--out", o) for o in outs] + [("--csv", args.csv), ("--raster", args.raster)]
    seen: dict = {}
    for flag, path in named:
        _check_folder(flag, path)
        if path is not None:
            key = os.path.abspath(path)
            if key in seen:
                raise ValueError(f"{seen[key]} and {flag} both name {path}")
            seen[key] = flag
    if args.raster:
        from .plot import _plt
        plt = _plt()                # fail now, not after the simulation, without matplotlib
        ext = os.path.splitext(args.raster)[1].lstrip(".").lower()
        formats = plt.figure().canvas.get_supported_filetypes()
        plt.close("all")
        if ext not in formats:
            raise ValueError(f"--raster {args.raster}: an image file name ending in one of "
                             f"{', '.join('.' + f for f in sorted(formats))}")
    from .train_cli import saved_training

    net = Sequential.load(args.model)
    data = saved_training(net, args.model).get("data") or {}
    for key, conv in (("t_max", v.positive_float), ("time_scale", v.positive_float)):
        if data.get(key) is not None and getattr(args, key) is None:
            try:
                conv(key, data[key])
            except (TypeError, ValueError) as exc:
                raise ValueError(f"model file {args.model}: training data option {exc} (override "
                                 f"it with --{key.replace('_', '-')})") from None
    if data.get("merge_polarity") is not None and not isinstance(data["merge_polarity"], bool):
        raise ValueError(f"model file {args.model}: training data option merge_polarity must be "
                         f"true or false, got {data['merge_polarity']!r:.80}")
    settings = {
        "format": args.format,
        "t_max": args.t_max if args.t_max is not None else data.get("t_max"),
        "time_scale": args.time_scale if args.time_scale is not None else data.get("time_scale", 1.0),
        "time_scale_source": ("from --time-scale" if args.time_scale is not None else
                              f"stored in model file {args.model}; override it with --time-scale"
                              if data.get("time_scale") is not None else None),
        "merge_polarity": (args.merge_polarity if args.merge_polarity is not None
                           else data.get("merge_polarity") is True),
        "t_end": args.t_end}
    keep = bool(args.raster)
    if args.scheduler is not None:
        from .distributed import map_items
        from .train_cli import connect_flag

        with connect_flag(args.scheduler, args.scheduler_timeout) as client:
            results = map_items(client, _simulate_shared, (net, settings, keep), list(args.events),
                                chunk_size=1, what="the simulation")
    else:
        results = [simulate_file(net, e, settings, keep) for e in args.events]
    summaries = []
    for out, (summary, spk, rec) in zip(outs, results):
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
        summaries.append({**summary, "out": out, "csv": args.csv, "raster": args.raster})
    return summaries


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from .train_cli import run_command
    code, summaries = run_command("simulate", "try --t-max", lambda: simulate(args))
    for summary in summaries or ():
        print(json.dumps(summary))
    return code
