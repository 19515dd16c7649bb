"""DVS128 Gesture clips in the 40-bit ``.bs2`` format with a ``labels.csv`` beside them
(``../shared/data/dvs_gesture_slayer_clips``): every event kept (128 x 128, both
polarities, :func:`eventsnn.io.read_dvs_gesture`).

``labels.csv`` has the header ``file,class_id,class_name[,...]``: one row per clip, class
ids 1-based as in the dataset (1 = hand clapping, ..., 11 = other gestures).
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import List, Tuple, Union

from .. import _validate as _v

import numpy as np

from ..io import read_dvs_gesture
from ..io.recording import Recording

PathLike = Union[str, "os.PathLike[str]"]


def read_labels(path: PathLike) -> List[Tuple[str, int, str]]:
    """(file name, class id, class name) of every row of a ``labels.csv``."""
    path = _v.regular_file(path)
    rows = []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"file", "class_id", "class_name"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)} (header: {reader.fieldnames})")
        for k, row in enumerate(reader, start=2):
            try:
                cid = int(row["class_id"])
            except ValueError:
                raise ValueError(f"{path}, line {k}: class_id {row['class_id']!r} is not an integer") from None
            rows.append((row["file"], cid, row["class_name"]))
    return rows


def load(folder: PathLike) -> Tuple[List[Recording], np.ndarray, List[str]]:
    """(recordings, class ids (int64, 1-based), class names) of the clips listed in
    ``folder/labels.csv``, in its order."""
    root = Path(os.fspath(folder))
    rows = read_labels(root / "labels.csv")
    recs = [read_dvs_gesture(root / name) for name, _, _ in rows]
    return recs, np.array([cid for _, cid, _ in rows], dtype=np.int64), [n for _, _, n in rows]
