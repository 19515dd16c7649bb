"""Where the real data lives: ``EVENTSNN_DATA``, else a ``shared/data`` folder beside the
checkout (``../shared/data`` of the repository), found wherever the code is run from."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional


def data_root() -> Optional[Path]:
    """The data folder: ``$EVENTSNN_DATA`` when set (it must exist), else the first
    ``<ancestor>/shared/data`` folder above the current folder or above this package's
    checkout; None when there is none."""
    env = os.environ.get("EVENTSNN_DATA")
    if env:
        root = Path(env).expanduser()
        if not root.is_dir():
            raise ValueError(f"EVENTSNN_DATA={env} is not a folder")
        return root
    starts = [Path.cwd().resolve(), Path(__file__).resolve().parents[2]]
    for start in starts:
        for base in [start, *start.parents]:
            cand = base / "shared" / "data"
            if cand.is_dir():
                return cand
    return None


def data_path(*parts: str) -> Path:
    """A path inside the data folder; ValueError saying how to point at it when absent."""
    root = data_root()
    if root is None:
        raise ValueError("the shared data folder was not found: set EVENTSNN_DATA to the "
                         "folder holding nmnist_slayer_small/, tonic_test_samples/, ... "
                         "(../shared/data beside the repository)")
    return root.joinpath(*parts)
