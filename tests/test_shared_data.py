"""Every file of ../shared/data (or $EVENTSNN_DATA) is readable through the documented API
(docs/io.md): the walk assigns each file to the reader the docs name for it, reads it, and
fails on a file no documented reader covers. Skipped when the data folder is absent."""
import hashlib
from pathlib import Path

import numpy as np
import pytest

from eventsnn import io
from eventsnn.datasets import digits, dvs_gesture, nmnist
from eventsnn.datasets.paths import data_root

ROOT = data_root()
pytestmark = pytest.mark.skipif(ROOT is None, reason="shared data folder absent")

#: documentation of the data folder itself (prose and the checksum list), not data
DOC_FILES = {"README.md", "FORMATS.md", "SHA256SUMS"}


def _all_files():
    return sorted(p for p in ROOT.rglob("*") if p.is_file())


def _read_nmnist_folder(folder):
    files = set()
    for split, n in (("train", 1000), ("test", 100)):
        names, labels = nmnist.list_files(folder, split)
        events, labels2 = nmnist.load(folder, split)
        assert len(events) == len(names) == n and list(labels2) == list(labels)
        assert all(ev.size > 0 for ev in events)
        assert set(np.unique(labels)) == set(range(10))
        files |= {Path(f).resolve() for f in names}
    files |= {(folder / "train1K.txt").resolve(), (folder / "test100.txt").resolve()}
    return files


def _read_gesture_folder(folder):
    recs, ids, names = dvs_gesture.load(folder)
    assert list(ids) == [1, 2, 3, 8, 10] and names[0] == "hand_clapping"
    for rec in recs:
        assert rec.sensor_size == (128, 128, 2) and len(rec) > 0 and rec.dropped == {}
    return {(folder / "labels.csv").resolve()} | {Path(r.path).resolve() for r in recs}


def _read_single(path):
    """One file through the reader docs/io.md names for its kind."""
    name = path.name
    if name.endswith("-ubyte.gz"):
        arr = io.read_idx(path)
        assert arr.shape[0] == 10000
    elif name == "digits.csv.gz":
        X, y = digits.read_csv(path)
        assert X.shape == (1797, 1, 8, 8) and y.shape == (1797,)
    elif name.endswith(".aedat4"):
        pytest.importorskip("aedat")
        rec = io.read(path)
        assert len(rec) == 111954 and rec.sensor_size == (320, 240, 2)
    elif name.endswith((".aedat", ".bin", ".bs2")):
        rec = io.read(path)
        if "header" not in name:
            assert len(rec) > 0 and rec.dropped == {}
    else:
        raise AssertionError(f"{path}: no documented reader covers this file")


def test_every_file_in_the_shared_data_is_readable():
    covered = set()
    for folder, reader in (("nmnist_slayer_small", _read_nmnist_folder),
                           ("dvs_gesture_slayer_clips", _read_gesture_folder)):
        if (ROOT / folder).is_dir():
            covered |= reader(ROOT / folder)
    n_read = 0
    for path in _all_files():
        rp = path.resolve()
        if path.name in DOC_FILES or rp in covered:
            continue
        _read_single(path)
        n_read += 1
    assert n_read >= 1 and len(covered) >= 1


def test_the_checksum_list_matches_the_files():
    sums = ROOT / "SHA256SUMS"
    if not sums.exists():
        pytest.skip("no SHA256SUMS")
    listed = {}
    for line in sums.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            listed[name.lstrip("*").removeprefix("./")] = digest
    for name in ("tonic_test_samples/sample_nmnist.bin", "uci_digits/digits.csv.gz"):
        assert name in listed
        assert hashlib.sha256((ROOT / name).read_bytes()).hexdigest() == listed[name]


def test_a_file_of_an_unknown_kind_fails_the_walk(tmp_path):
    odd = tmp_path / "recording.xyz"
    odd.write_bytes(b"\x00" * 10)
    with pytest.raises(AssertionError, match="no documented reader"):
        _read_single(odd)
