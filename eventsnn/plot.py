"""Figures: spike rasters, membrane traces, training curves and event frames.

Needs matplotlib (``pip install eventsnn[plot]``). Every function draws on the axes it is
given (or on new ones) and returns them, so figures can be combined and saved by the
caller (``ax.figure.savefig(...)``). Times are in ms.

- :func:`raster`: the spikes of one level of a record (or one SpikeTrains), or of every
  level in stacked panels;
- :func:`membrane`: membrane traces recorded with ``record_times``, with the threshold
  and the exact spike times;
- :func:`training_curves`: loss and accuracies per epoch from a history (``Trainer.fit``)
  or an ``eventsnn train --log`` file;
- :func:`event_frames`: an event stream (SpikeTrains, :class:`eventsnn.io.Recording` or
  tonic array) binned into frames, ON minus OFF;
- :func:`mean_curves`: curves of repeated runs (e.g. the loss per iteration of many random
  trials), one mean line per method with a +- std band.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike

from . import _validate as v
from ._constants import MAX_LAYER_SIZE
from .spikes import SpikeTrains


def _plt():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("eventsnn.plot needs matplotlib: pip install 'eventsnn[plot]' "
                          "(or: pip install matplotlib)") from None
    return plt


def _levels(record: Any) -> List[SpikeTrains]:
    if isinstance(record, SpikeTrains):
        return [record]
    spikes = getattr(record, "spikes", None)
    if not isinstance(spikes, list) or not all(isinstance(s, SpikeTrains) for s in spikes):
        raise TypeError("record must be a SpikeTrains or a Record (net.simulate's result), "
                        f"got {type(record).__name__}")
    return spikes


def raster(record: Any, level: Optional[int] = -1, ax: Any = None, names: Optional[Sequence[str]] = None,
           color: str = "k", markersize: float = 4.0) -> Any:
    """Spike raster: one mark per event at (time ms, neuron index).

    Parameters
    ----------
    record : Record (``net.simulate``) or SpikeTrains.
    level : index into ``record.spikes`` (0 = input, -1 = output); None draws every level
        in its own panel (stacked, shared time axis) and returns the array of axes.
    ax : matplotlib axes to draw on (one level only); default: a new figure.
    names : panel titles for ``level=None`` (default "input", "layer 1", ...).

    Returns the axes (or array of axes). The k-th mark of a panel is the k-th event of
    that level (``ax.collections[0].get_offsets()`` are its (time, neuron) pairs).
    """
    levels = _levels(record)
    plt = _plt()
    if level is None:
        if ax is not None:
            raise ValueError("ax can only be given with a single level (level=None draws a panel per level)")
        fig, axes = plt.subplots(len(levels), 1, sharex=True, squeeze=False,
                                 figsize=(7, 1.6 + 1.3 * len(levels)))
        axes = axes[:, 0]
        labels = list(names) if names is not None else (
            ["input"] + [f"layer {k}" for k in range(1, len(levels))])
        if len(labels) != len(levels):
            raise ValueError(f"names has {len(labels)} entries for {len(levels)} levels")
        for a, st, label in zip(axes, levels, labels):
            _raster_one(a, st, color, markersize)
            a.set_title(label, fontsize=9, loc="left")
        axes[-1].set_xlabel("time (ms)")
        fig.tight_layout()
        return axes
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)):
        raise TypeError(f"level must be an int or None, got {level!r}")
    if not -len(levels) <= level < len(levels):
        raise ValueError(f"level must be in [{-len(levels)}, {len(levels) - 1}], got {level}")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    _raster_one(ax, levels[level], color, markersize)
    ax.set_xlabel("time (ms)")
    return ax


def _raster_one(ax: Any, st: SpikeTrains, color: str, markersize: float) -> None:
    ax.scatter(st.times, st.neurons, marker="|", s=markersize ** 2, c=color, linewidths=1)
    ax.set_ylabel("neuron")
    ax.set_ylim(-0.5, st.n_neurons - 0.5)


def membrane(record: Any, level: int = 1, neurons: Optional[Iterable[int]] = None, ax: Any = None,
             theta: Optional[float] = None, spikes: bool = True) -> Any:
    """Membrane traces of a record simulated with ``record_times``.

    Parameters
    ----------
    record : Record with ``membrane`` (``net.simulate(x, record_times=t)``).
    level : layer number (1-based, as in ``record.spikes``).
    neurons : neuron indices to draw (default: up to 5 with the most spikes, else 0..4).
    theta : threshold to draw as a dashed line (e.g. ``net.neuron.theta``).
    spikes : mark each neuron's exact spike times with a dot at ``theta`` (or at the top
        of the axes without theta).

    Returns the axes; line k holds (record_times, membrane[level][:, neurons[k]]).
    """
    mem = getattr(record, "membrane", None)
    times = getattr(record, "record_times", None)
    if not mem or times is None:
        raise ValueError("record has no membrane traces: simulate with record_times=...")
    if level not in mem:
        raise ValueError(f"level {level} has no membrane trace; recorded levels: {sorted(mem)}")
    trace = mem[level]
    st = record.spikes[level]
    if neurons is None:
        counts = st.counts()
        order = np.argsort(-counts, kind="stable")
        neurons = [int(i) for i in order[:5]] if counts.max(initial=0) > 0 else list(range(min(5, trace.shape[1])))
    if isinstance(neurons, (str, bytes)) or not isinstance(neurons, (Iterable, np.ndarray)):
        raise TypeError(f"neurons must be a list of neuron indices, got {neurons!r:.40}")
    neurons = [int(i) for i in v.int_array("neurons", list(neurons) if not isinstance(neurons, np.ndarray)
                                           else neurons, ndim=1, low=0, high=trace.shape[1])]
    for i in neurons:
        if not 0 <= i < trace.shape[1]:
            raise ValueError(f"neuron {i} is outside layer {level} ({trace.shape[1]} neurons)")
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    for i in neurons:
        line, = ax.plot(times, trace[:, i], lw=1, label=f"neuron {i}")
        if spikes:
            t_spk = st.times[st.neurons == i]
            y = theta if theta is not None else np.nanmax(trace)
            ax.plot(t_spk, np.full(t_spk.size, y), "o", ms=3, color=line.get_color())
    if theta is not None:
        ax.axhline(float(theta), ls="--", lw=0.8, color="gray")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel(f"membrane, layer {level}")
    ax.legend(fontsize=7, loc="upper right")
    return ax


def read_log(path: Union[str, os.PathLike]) -> List[dict]:
    """The per-epoch rows of an ``eventsnn train --log`` file (JSON lines)."""
    rows = []
    with open(v.regular_file(path)) as fh:
        for k, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}, line {k}: not JSON ({exc})") from None
            except RecursionError:
                raise ValueError(f"{path}, line {k}: JSON nested too deeply") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}, line {k}: a log row must be a JSON object, got "
                                 f"{type(row).__name__}")
            rows.append(row)
    return rows


def training_curves(history: Any, axes: Any = None,
                    keys: Tuple[str, ...] = ("loss", "train_accuracy", "val_accuracy")) -> Any:
    """Loss (left panel) and accuracies (right panel) per epoch.

    ``history``: the list of dicts of ``Trainer.fit`` / the metrics' "history", or the
    path of an ``eventsnn train --log`` file. Keys absent from the history are skipped.
    Returns the two axes; each line holds (epoch, value)."""
    if not isinstance(history, (str, os.PathLike, list, tuple)):
        raise TypeError(f"history must be a list of per-epoch dicts or a log file path, got "
                        f"{type(history).__name__}")
    rows = read_log(history) if isinstance(history, (str, os.PathLike)) else list(history)
    if not rows or not all(isinstance(r, dict) and "epoch" in r for r in rows):
        raise ValueError("history must be a non-empty list of per-epoch dicts with an 'epoch' key")
    plt = _plt()
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    epochs = [r["epoch"] for r in rows]
    for key in keys:
        if not any(key in r for r in rows):
            continue
        vals = [r.get(key, np.nan) for r in rows]
        ax = axes[0] if "accuracy" not in key else axes[1]
        ax.plot(epochs, vals, marker=".", label=key)
    axes[0].set_ylabel("loss")
    axes[1].set_ylabel("accuracy")
    for ax in axes:
        ax.set_xlabel("epoch")
        if ax.lines:
            ax.legend(fontsize=8)
    return axes


def _events_of(events: Any, shape: Optional[Tuple[int, int, int]]) -> Tuple[SpikeTrains, Tuple[int, int, int]]:
    from .io.recording import Recording

    if isinstance(events, Recording):
        return events.to_spike_trains(), events.shape
    if isinstance(events, np.ndarray) and events.dtype.names:
        if shape is None:
            raise ValueError("events is a structured event array: it needs shape=(C, H, W)")
        shape = v.shape3("shape", shape)
        return SpikeTrains.from_tonic(events, shape=shape), shape
    if isinstance(events, SpikeTrains):
        if shape is None:
            raise ValueError("events is a SpikeTrains: it needs shape=(C, H, W) to be drawn as frames")
        shape = v.shape3("shape", shape)
        if int(np.prod(shape)) != events.n_neurons:
            raise ValueError(f"shape {shape} holds {int(np.prod(shape))} neurons, but events has "
                             f"n_neurons {events.n_neurons}")
        return events, shape
    raise TypeError("events must be a SpikeTrains, an eventsnn.io.Recording or a structured array")


def frames(events: Any, n_frames: int = 4, shape: Optional[Tuple[int, int, int]] = None,
           t_end: Optional[float] = None) -> Tuple[np.ndarray, np.ndarray]:
    """(frames, edges): the events binned into ``n_frames`` equal time bins over
    [0, t_end] (default: the last event time) as an array (n_frames, C, H, W) of event
    counts (values summed), and the bin edges in ms."""
    st, shape = _events_of(events, shape)
    n_frames = v.n_steps("n_frames", n_frames)
    if n_frames * int(np.prod(shape)) > MAX_LAYER_SIZE:
        raise ValueError(f"n_frames={n_frames} frames of shape {tuple(shape)} need more than "
                         f"{MAX_LAYER_SIZE} entries")
    end = (float(st.times[-1]) if len(st) else 1.0) if t_end is None else v.positive_float("t_end", t_end)
    if end <= 0:
        end = 1.0
    edges = np.linspace(0.0, end, n_frames + 1)
    keep = (st.times >= 0.0) & (st.times <= end)  # the frames span [0, end]
    k = np.minimum((st.times[keep] / end * n_frames).astype(np.int64), n_frames - 1)
    out = np.zeros((n_frames, int(np.prod(shape))))
    np.add.at(out, (k, st.neurons[keep]), st.values[keep])
    return out.reshape((n_frames,) + tuple(shape)), edges


def event_frames(events: Any, n_frames: int = 4, shape: Optional[Tuple[int, int, int]] = None,
                 t_end: Optional[float] = None, axes: Any = None) -> Any:
    """Draw :func:`frames` side by side: channel 1 (ON) minus channel 0 (OFF) for
    two-channel data, else the sum over channels. Returns the axes; image k holds frame k."""
    fr, edges = frames(events, n_frames, shape, t_end)
    img = fr[:, 1] - fr[:, 0] if fr.shape[1] == 2 else fr.sum(axis=1)
    plt = _plt()
    if axes is None:
        _, axes = plt.subplots(1, len(img), figsize=(2.2 * len(img), 2.4), squeeze=False)
        axes = axes[0]
    lim = max(float(np.abs(img).max()), 1.0)
    for ax, im, a, b in zip(axes, img, edges[:-1], edges[1:]):
        ax.imshow(im, cmap="coolwarm", vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_title(f"{a:.0f}-{b:.0f} ms", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    return axes


def mean_curves(curves: Mapping[str, ArrayLike], x: Optional[ArrayLike] = None, ax: Any = None,
                band: bool = True, floor: Optional[float] = None,
                colors: Optional[Mapping[str, str]] = None,
                labels: Optional[Mapping[str, str]] = None, logy: bool = False,
                xlabel: str = "iteration", ylabel: str = "loss") -> Any:
    """Mean curve of repeated runs per method, with a +- 1 std band.

    Parameters
    ----------
    curves : dict name -> array (n_runs, n_points) (one row per run) or (n_points,) (a
        single curve, no band).
    x : the x values (n_points,); default 0 .. n_points - 1.
    band : draw mean +- std over the runs as a shaded band.
    floor : lower bound of the band (e.g. 0 for a loss that cannot be negative).
    colors, labels : per name, the line colour and legend label (default: matplotlib's
        cycle, the name).
    logy : logarithmic y axis.

    Returns the axes; line k holds (x, the mean over the runs of the k-th curve) and, with
    ``band``, ``ax.collections[k]`` its band.
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves must be a non-empty dict name -> array (n_runs, n_points)")
    data: Dict[str, np.ndarray] = {}
    for name, c in curves.items():
        arr = v.float_array(f"curves[{name!r}]", c, finite=False)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] == 0 or arr.shape[0] == 0:
            raise ValueError(f"curves[{name!r}] must be (n_runs, n_points) or (n_points,), "
                             f"got shape {np.shape(c)}")
        data[str(name)] = arr
    n_points = {a.shape[1] for a in data.values()}
    if len(n_points) != 1:
        raise ValueError(f"the curves have different lengths: {sorted(n_points)}")
    n = n_points.pop()
    xs = np.arange(n) if x is None else v.float_array("x", x, finite=False)
    if xs.shape != (n,):
        raise ValueError(f"x must have {n} values, got shape {xs.shape}")
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for name, arr in data.items():
        mean = arr.mean(axis=0)
        kw = {"label": (labels or {}).get(name, name)}
        if colors and name in colors:
            kw["color"] = colors[name]
        line, = ax.plot(xs, mean, **kw)
        if band and arr.shape[0] > 1:
            sd = arr.std(axis=0)
            low = mean - sd if floor is None else np.maximum(mean - sd, float(floor))
            ax.fill_between(xs, low, mean + sd, color=line.get_color(), alpha=0.12, lw=0)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return ax
