"""N-MNIST reader: the 40-bit event files of the original release (``.bin``) and SLAYER's
``.bs2`` copies (same layout), plus conversion to dense frames and SpikeTrains.

File format (no header; 5 bytes per event, one big-endian 40-bit word): x (8 bits), y
(8 bits), polarity (1 bit, 1 = ON), timestamp (23 bits, microseconds). A row with
y == 240 is a timestamp-overflow marker of the ATIS tools: it is dropped and 2**13 us are
added to the timestamps of all following events (never happens in N-MNIST recordings,
which last about 0.3 s).

Folder layouts understood by :func:`load`:

- SLAYER subset: ``<root>/<id>.bs2`` with label lists ``train*.txt`` / ``test*.txt`` (lines
  ``<id> <label>``, ``#`` comments), e.g. the 1,000 / 100 sample subset;
- original release: ``<root>/Train/<label>/<id>.bin`` and ``<root>/Test/<label>/<id>.bin``.

Sensor 34 x 34, two polarities; neuron index of an event = p * 34 * 34 + y * 34 + x
(channel-major like every (C, H, W) layer of eventsnn, channel 0 = OFF, 1 = ON).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import _validate as _v
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple, Union

PathLike = Union[str, "os.PathLike[str]"]

if TYPE_CHECKING:
    from ..spikes import SpikeTrains

#: sensor size of N-MNIST (pixels)
WIDTH = HEIGHT = 34
#: input shape of a network reading both polarities (C, H, W)
SHAPE = (2, HEIGHT, WIDTH)
#: marker row of the ATIS overflow convention and the time added per marker (us)
OVERFLOW_Y = 240
OVERFLOW_US = 1 << 13

EVENT_DTYPE = np.dtype([("t", np.int64), ("x", np.int16), ("y", np.int16), ("p", np.int8)])


def read_events(path: PathLike) -> np.ndarray:
    """Events of one ``.bin`` / ``.bs2`` file as a structured array (t us, x, y, p).

    Refuses (ValueError) files that are not 40-bit event files, e.g. AEDAT files (read
    those with :func:`eventsnn.io.read`). Events are returned as stored, whatever the
    sensor; the conversions below refuse events outside N-MNIST's 34 x 34 sensor.
    Decoded in chunks: memory is the returned array plus a few MiB."""
    from ..io.binary import read_events_file

    return read_events_file(os.fspath(path))[0]


def write_events(path: PathLike, events: np.ndarray) -> None:
    """Write events (structured array with t, x, y, p) in the 40-bit format; the inverse of
    :func:`read_events`. Values the format cannot hold (x, y > 255 or < 0, y == 240, p not
    0/1, t outside [0, 2**23) us) raise ValueError instead of wrapping."""
    from ..io.binary import write_bin

    write_bin(path, events)


def check_sensor(ev: np.ndarray, what: str = "events") -> None:
    """ValueError when an event lies outside N-MNIST's 34 x 34 sensor (e.g. a DVS128
    Gesture clip: read it with :func:`eventsnn.io.read_dvs_gesture`) or before t = 0;
    TypeError when ``ev`` is not a 1-D structured array with integer fields t, x, y, p."""
    names = getattr(getattr(ev, "dtype", None), "names", None) or ()
    if not isinstance(ev, np.ndarray) or ev.ndim != 1 or not {"t", "x", "y", "p"} <= set(names) \
            or any(ev.dtype[f].kind not in "iu" for f in ("t", "x", "y", "p")):
        raise TypeError(f"{what} must be a 1-D structured array with integer fields t, x, y, p "
                        f"(eventsnn.datasets.nmnist.EVENT_DTYPE), got {getattr(ev, 'dtype', type(ev).__name__)}")
    if ev.size and ev["t"].min() < 0:
        raise ValueError(f"{what}: times must be >= 0 us, found {int(ev['t'].min())}")
    bad = (ev["x"] < 0) | (ev["x"] >= WIDTH) | (ev["y"] < 0) | (ev["y"] >= HEIGHT)
    bad |= (ev["p"] < 0) | (ev["p"] > 1)
    if np.any(bad):
        raise ValueError(f"{what}: {int(bad.sum())} of {ev.size} events lie outside N-MNIST's "
                         f"34 x 34 sensor (x max {int(ev['x'].max())}, y max {int(ev['y'].max())}); "
                         "for DVS128 Gesture clips use eventsnn.io.read_dvs_gesture, for other "
                         "sensors eventsnn.io.read")


def _label_file(root, split):
    cands = sorted(p for p in root.glob(f"{split}*.txt"))
    return cands[0] if cands else None


def _label_line(lab, lineno, line):
    """(id, label) of one label-list line ``<id> <label>``; the id must name a file inside
    the data folder (no separators, no "..") and the label must be a digit class 0-9."""
    fields = line.split()
    if len(fields) != 2:
        raise ValueError(f"{lab}:{lineno}: expected '<id> <label>', got {line!r}")
    sid, label = fields
    if sid in (".", "..") or "/" in sid or "\\" in sid or os.sep in sid or "\0" in sid:
        raise ValueError(f"{lab}:{lineno}: recording id {sid!r} must be a plain file name inside "
                         "the data folder")
    if not label.isdigit() or not 0 <= int(label) <= 9:
        raise ValueError(f"{lab}:{lineno}: label {label!r} must be a digit class 0-9")
    return sid, int(label)


def load(path: PathLike, split: str = "train", limit: Optional[int] = None,
         progress: bool = False) -> Tuple[List[np.ndarray], np.ndarray]:
    """Load a labelled N-MNIST split.

    Parameters
    ----------
    path : str or Path
        Folder in one of the layouts of the module docstring.
    split : {"train", "test"}
    limit : int, optional
        Read at most this many samples (in file-list order).
    progress : bool
        Show a progress bar over the files on stderr.

    Returns
    -------
    events : list of structured arrays (t us, x, y, p), labels : int64 array.
    """
    files, labels = list_files(path, split, limit)
    from .._progress import progress_bar

    bar = progress_bar(len(files), bool(progress), f"read N-MNIST {split}", unit="file")
    events = []
    try:
        for f in files:
            events.append(read_events(f))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return events, labels


def list_files(path: PathLike, split: str = "train",
               limit: Optional[int] = None) -> Tuple[List[Path], np.ndarray]:
    """The recordings of a labelled N-MNIST split without reading them: (list of Paths,
    int64 labels), in the order of :func:`load`."""
    root = Path(os.fspath(path))
    _v.choice("split", split, ("train", "test"))
    if not root.is_dir():
        raise ValueError(f"path {root} is not a folder")
    if limit is not None:
        limit = _v.positive_int("limit", limit)
    items = []
    lab = _label_file(root, split)
    if lab is not None:
        _v.regular_file(lab)
        for lineno, line in enumerate(lab.read_text().splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            sid, label = _label_line(lab, lineno, line)
            f = root / f"{sid}.bs2"
            if not f.exists():
                f = root / f"{sid}.bin"
            items.append((f, label))
    else:
        sub = root / split.capitalize()
        if not sub.is_dir():
            raise ValueError(f"{root} has neither a {split}*.txt label list nor a {sub.name}/ folder")
        for d in sorted(sub.iterdir(), key=lambda q: q.name):
            if d.is_dir() and d.name.isdigit():
                items += [(f, int(d.name)) for f in sorted(d.glob("*.bin"))]
    if limit is not None:
        items = items[:limit]
    return [f for f, _ in items], np.array([lab for _, lab in items], dtype=np.int64)


def to_frames(events: Sequence[np.ndarray], n_steps: int, t_max_us: Optional[float] = None,
              binary: bool = True) -> np.ndarray:
    """Bin each recording into ``n_steps`` frames over [0, t_max_us) (default: the last event
    time of each recording + 1); events at or after ``t_max_us`` are left out (on request).
    An event outside the 34 x 34 sensor raises ValueError.

    Returns an array (n_samples, n_steps, 2 * 34 * 34): event counts per step (or 0/1 when
    ``binary``), neuron index p * 34 * 34 + y * 34 + x."""
    n_steps = _v.n_steps("n_steps", n_steps)
    if isinstance(events, np.ndarray) and events.dtype.names:
        events = [events]
    if not isinstance(events, (list, tuple)):
        raise TypeError(f"events must be a structured event array or a list of them, got "
                        f"{type(events).__name__}")
    n_in = SHAPE[0] * HEIGHT * WIDTH
    out = np.zeros((len(events), n_steps, n_in))
    for k, ev in enumerate(events):
        check_sensor(ev, f"events[{k}]")
        if ev.size == 0:
            continue
        span = float(ev["t"].max() + 1) if t_max_us is None else _v.positive_float("t_max_us", t_max_us)
        keep = ev["t"] < span
        e = ev[keep]
        step = np.minimum((e["t"] * n_steps / span).astype(np.int64), n_steps - 1)
        idx = e["p"].astype(np.int64) * HEIGHT * WIDTH + e["y"].astype(np.int64) * WIDTH + e["x"]
        np.add.at(out[k], (step, idx), 1.0)
    if binary:
        np.minimum(out, 1.0, out=out)
    return out


def to_spike_trains(events: Sequence[np.ndarray]) -> List[SpikeTrains]:
    """One :class:`eventsnn.SpikeTrains` per recording (times in ms, 2 * 34 * 34 neurons)."""
    from ..spikes import SpikeTrains

    if isinstance(events, np.ndarray) and events.dtype.names:
        events = [events]
    if not isinstance(events, (list, tuple)):
        raise TypeError(f"events must be a structured event array or a list of them, got "
                        f"{type(events).__name__}")
    out = []
    for k, ev in enumerate(events):
        check_sensor(ev, f"events[{k}]")
        e = ev
        idx = e["p"].astype(np.int64) * HEIGHT * WIDTH + e["y"].astype(np.int64) * WIDTH + e["x"]
        out.append(SpikeTrains(e["t"] / 1000.0, idx, SHAPE[0] * HEIGHT * WIDTH))
    return out
