"""Event datasets for training: N-MNIST recordings as lists of SpikeTrains.

:func:`load_nmnist` is the loader registered as ``"nmnist"`` in
:data:`eventsnn.datasets.DATASETS` (``eventsnn train --dataset nmnist --data-dir PATH``).
It reads a labelled N-MNIST folder with :func:`eventsnn.datasets.nmnist.load` and turns
every recording into one :class:`eventsnn.SpikeTrains` (times in ms, one event of value 1
per sensor event), optionally keeping only the first ``t_max`` ms and merging the two
polarities into one channel.

The samples come back as :class:`EventSamples`, a plain list of SpikeTrains that also
reports ``in_shape`` (the (C, H, W) shape of the sensor), so that architecture strings
starting with a convolution know their input geometry.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import _validate as v
from ..spikes import SpikeTrains
from typing import Iterable, Optional, Sequence, Tuple, Union

PathLike = Union[str, "os.PathLike[str]"]


class EventSamples(list):
    """A list of SpikeTrains with the input shape of the samples.

    Parameters
    ----------
    samples : iterable of SpikeTrains, all with ``prod(in_shape)`` neurons.
    in_shape : tuple of int, e.g. (2, 34, 34); neuron c*H*W + y*W + x is pixel (c, y, x).
    """

    def __init__(self, samples: Iterable[SpikeTrains], in_shape: Sequence[int]) -> None:
        super().__init__(samples)
        in_shape = tuple(int(s) for s in in_shape)
        if not in_shape or any(s <= 0 for s in in_shape):
            raise ValueError(f"in_shape must be a tuple of positive ints, got {in_shape}")
        n = int(np.prod(in_shape))
        for k, st in enumerate(self):
            if not isinstance(st, SpikeTrains):
                raise TypeError(f"samples[{k}] must be a SpikeTrains, got {type(st).__name__}")
            if st.n_neurons != n:
                raise ValueError(f"samples[{k}] has {st.n_neurons} neurons, in_shape {in_shape} "
                                 f"needs {n}")
        self.in_shape = in_shape

    def __getitem__(self, index):
        out = super().__getitem__(index)
        if isinstance(index, slice):
            return EventSamples(out, self.in_shape)
        return out


class EventFiles:
    """N-MNIST recordings as a sequence of files read on access: ``files[i]`` reads file i
    and returns its SpikeTrains (as :func:`events_to_spike_trains`), a slice or a list of
    indices gives another EventFiles. Pickling it ships the paths only, so data-parallel
    workers (``eventsnn.distributed``) read the recordings themselves.

    Parameters
    ----------
    paths : sequence of str or Path (``.bin`` / ``.bs2`` files).
    t_max, merge_polarity, time_scale : as :func:`events_to_spike_trains`.
    """

    def __init__(self, paths: Iterable[PathLike], t_max: Optional[float] = None,
                 merge_polarity: bool = False, time_scale: float = 1.0) -> None:
        from .nmnist import HEIGHT, SHAPE, WIDTH

        self.paths = [os.fspath(p) for p in paths]
        self.t_max = None if t_max is None else v.positive_float("t_max", t_max)
        if not isinstance(merge_polarity, (bool, np.bool_)):
            raise TypeError(f"merge_polarity must be a bool, got {merge_polarity!r}")
        self.merge_polarity = bool(merge_polarity)
        self.time_scale = v.positive_float("time_scale", time_scale)
        self.in_shape = (1 if self.merge_polarity else SHAPE[0], HEIGHT, WIDTH)

    def __len__(self):
        return len(self.paths)

    def _subset(self, paths):
        return EventFiles(paths, self.t_max, self.merge_polarity, self.time_scale)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self._subset(self.paths[index])
        if isinstance(index, (list, tuple, np.ndarray)):
            return self._subset([self.paths[int(i)] for i in index])
        return self.load_one(self.paths[index])

    def __iter__(self):
        for p in self.paths:
            yield self.load_one(p)

    def load_one(self, path: PathLike) -> SpikeTrains:
        """SpikeTrains of one recording file."""
        from .nmnist import read_events

        return events_to_spike_trains([read_events(path)], self.t_max, self.merge_polarity,
                                      self.time_scale)[0]

    def load(self, progress: bool = False) -> EventSamples:
        """All recordings as :class:`EventSamples` (``progress``: a bar over the files on
        stderr)."""
        from .._progress import progress_bar

        bar = progress_bar(len(self), bool(progress), "read N-MNIST", unit="file")
        out = []
        try:
            for p in self.paths:
                out.append(self.load_one(p))
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        return EventSamples(out, self.in_shape)


def events_to_spike_trains(events: Sequence[np.ndarray], t_max: Optional[float] = None,
                           merge_polarity: bool = False, time_scale: float = 1.0) -> EventSamples:
    """SpikeTrains of N-MNIST event arrays (structured arrays t us, x, y, p).

    Parameters
    ----------
    events : list of structured arrays (``eventsnn.datasets.nmnist.EVENT_DTYPE``).
    t_max : float or None, ms; keep only events with t <= t_max.
    merge_polarity : bool; map ON and OFF events to one channel (neuron y * 34 + x), else
        neuron p * 34 * 34 + y * 34 + x.
    time_scale : float > 0; event times become ``t_ms * time_scale`` (after the ``t_max``
        cut, which is in recording ms). 0.1 maps the ~300 ms of a recording onto 30 ms,
        i.e. 1 ms of the network per 10 ms of recording, as binning a recording into 30
        one-step frames does in discrete-time simulators.

    Returns :class:`EventSamples` with ``in_shape`` (1, 34, 34) or (2, 34, 34).
    """
    from .nmnist import HEIGHT, SHAPE, WIDTH

    if t_max is not None:
        t_max = v.positive_float("t_max", t_max)
    if not isinstance(merge_polarity, (bool, np.bool_)):
        raise TypeError(f"merge_polarity must be a bool, got {merge_polarity!r}")
    time_scale = v.positive_float("time_scale", time_scale)
    channels = 1 if merge_polarity else SHAPE[0]
    n = channels * HEIGHT * WIDTH
    out = []
    from .nmnist import check_sensor

    for k, ev in enumerate(events):
        check_sensor(ev, f"events[{k}]")
        keep = np.ones(ev.size, dtype=bool)
        t = ev["t"] / 1000.0
        if t_max is not None:
            keep &= t <= t_max
        e, t = ev[keep], t[keep]
        idx = e["y"].astype(np.int64) * WIDTH + e["x"].astype(np.int64)
        if not merge_polarity:
            idx += e["p"].astype(np.int64) * (HEIGHT * WIDTH)
        out.append(SpikeTrains(t * time_scale, idx, n))
    return EventSamples(out, (channels, HEIGHT, WIDTH))


def load_nmnist(data_dir: Optional[PathLike] = None, t_max: Optional[float] = None,
                merge_polarity: bool = False, time_scale: float = 1.0,
                limit: Optional[int] = None, limit_test: Optional[int] = None,
                progress: Optional[bool] = None, lazy: bool = False
                ) -> Tuple[Union[EventSamples, EventFiles], np.ndarray,
                           Union[EventSamples, EventFiles], np.ndarray]:
    """(X_train, y_train, X_test, y_test) of an N-MNIST folder; X are :class:`EventSamples`.

    Parameters
    ----------
    data_dir : str or Path, a folder in a layout of :func:`eventsnn.datasets.nmnist.load`
        (SLAYER ``<id>.bs2`` files with ``train*.txt`` / ``test*.txt`` label lists, or the
        original ``Train/<label>/*.bin``, ``Test/<label>/*.bin``). Required
        (``eventsnn train --data-dir PATH``).
    t_max : float or None, ms; keep only events with t <= t_max (recordings last ~310 ms:
        three saccades of ~100 ms).
    merge_polarity : bool, one input channel for both polarities (in_shape (1, 34, 34)).
    time_scale : float > 0, multiplies the event times (ms) after the ``t_max`` cut; with
        0.1 a 300 ms recording spans 30 ms of simulated time.
    limit, limit_test : int or None, read at most this many train / test recordings (file
        order).
    progress : bool or None, a progress bar over the files on stderr (None: when stderr is
        a terminal).
    lazy : bool, return :class:`EventFiles` (recordings read on access, e.g. by the workers
        of a Dask cluster) instead of reading every recording now.
    """
    from . import nmnist

    if data_dir is None:
        raise ValueError("dataset 'nmnist' needs its folder: pass --data-dir PATH (a folder with "
                         "the .bs2 recordings and train*.txt / test*.txt label lists, or Train/ "
                         "and Test/ folders of .bin files)")
    root = Path(os.fspath(data_dir))
    if not root.is_dir():
        raise ValueError(f"--data-dir {root}: no such folder (dataset 'nmnist' needs the folder "
                         "of the N-MNIST recordings)")
    splits: list = []
    for split, lim in (("train", limit), ("test", limit_test)):
        files, y = nmnist.list_files(root, split, limit=lim)
        if len(files) == 0:
            raise ValueError(f"--data-dir {root}: the {split} split has no recordings")
        samples = EventFiles(files, t_max, merge_polarity, time_scale)
        if not lazy and progress is None:
            import sys
            progress = sys.stderr.isatty()
        splits += [samples if lazy else samples.load(progress=bool(progress)), y]
    return splits[0], splits[1], splits[2], splits[3]
