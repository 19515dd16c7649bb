"""N-MNIST reader: real files (skipped when ../shared/data is absent) and a round trip."""
from pathlib import Path

import numpy as np
import pytest

from eventsnn.datasets.paths import data_root

from eventsnn.datasets import nmnist

DATA = data_root() or Path("/nonexistent")
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="shared data folder absent")


@needs_data
def test_tonic_sample_bin():
    ev = nmnist.read_events(DATA / "tonic_test_samples" / "sample_nmnist.bin")
    # documented in tonic_test_samples/README.md
    assert ev.size == 4325
    assert int((ev["p"] == 1).sum()) == 2145
    assert ev["t"].min() == 654 and ev["t"].max() == 311175
    assert ev["x"].max() < 34 and ev["y"].max() < 34
    assert np.all(np.diff(ev["t"]) >= 0)


@needs_data
def test_slayer_subset_labels_and_frames():
    root = DATA / "nmnist_slayer_small"
    ev, y = nmnist.load(root, "test")
    assert len(ev) == 100 and y.shape == (100,)
    assert list(y[:4]) == [7, 2, 1, 0]
    ev_tr, y_tr = nmnist.load(root, "train", limit=5)
    assert list(y_tr) == [5, 0, 4, 1, 9]
    frames = nmnist.to_frames(ev_tr, 10, t_max_us=300_000, binary=False)
    assert frames.shape == (5, 10, 2 * 34 * 34)
    for k in range(5):  # counts are conserved for events before 300 ms
        assert frames[k].sum() == np.sum(ev_tr[k]["t"] < 300_000)
    st = nmnist.to_spike_trains(ev_tr[0])[0]
    assert st.n_neurons == 2312 and len(st.times) == ev_tr[0].size


def test_round_trip_and_neuron_index(tmp_path):
    ev = np.zeros(3, dtype=nmnist.EVENT_DTYPE)
    ev["t"] = [5, 1000, (1 << 23) - 1]
    ev["x"] = [0, 33, 7]
    ev["y"] = [1, 2, 33]
    ev["p"] = [1, 0, 1]
    f = tmp_path / "a.bin"
    nmnist.write_events(f, ev)
    assert f.stat().st_size == 15
    back = nmnist.read_events(f)
    np.testing.assert_array_equal(back, ev)
    fr = nmnist.to_frames(back, 2, t_max_us=2000, binary=False)
    assert fr[0, 0, 1 * 1156 + 1 * 34 + 0] == 1.0  # ON event at (x=0, y=1), step 0
    assert fr[0, 1, 0 * 1156 + 2 * 34 + 33] == 1.0  # OFF event at 1000 us -> step 1
    assert fr.sum() == 2.0  # the third event is after t_max


def test_overflow_marker(tmp_path):
    # rows (x, y, p|t_hi, t_mid, t_lo): event t=10, overflow marker (y == 240), event t=30
    rows = [[0, 3, 0, 0, 10], [0, 240, 0, 0, 20], [0, 4, 0, 0, 30]]
    f = tmp_path / "o.bin"
    f.write_bytes(bytes(np.array(rows, dtype=np.uint8).ravel()))
    back = nmnist.read_events(f)
    assert back.size == 2
    assert list(back["t"]) == [10, 30 + (1 << 13)]


def test_write_events_refuses_what_the_format_cannot_hold(tmp_path):
    ev = np.zeros(2, dtype=[("t", "<i8"), ("x", "<i8"), ("y", "<i8"), ("p", "<i8")])
    for field, value, match in (("x", 300, "x"), ("y", 240, "240"), ("y", -1, "y"),
                                ("p", 2, "p"), ("t", 1 << 23, "t")):
        bad = ev.copy()
        bad[field][1] = value
        with pytest.raises(ValueError, match=match):
            nmnist.write_events(tmp_path / "w.bin", bad)


def test_conversions_refuse_events_outside_the_sensor():
    ev = np.zeros(2, dtype=nmnist.EVENT_DTYPE)
    ev["x"] = [1, -1]
    with pytest.raises(ValueError, match="outside"):
        nmnist.to_frames(ev, 4)
    ev["x"] = [1, 100]                       # e.g. a DVS128 Gesture clip
    with pytest.raises(ValueError, match="read_dvs_gesture"):
        nmnist.to_spike_trains(ev)


def test_aedat_files_are_not_read_as_nmnist(tmp_path):
    f = tmp_path / "x.aedat4"
    body = b"#!AER-DAT4.0\r\n" + bytes(5 * 100 - 14)   # a multiple of 5 bytes
    f.write_bytes(body)
    with pytest.raises(ValueError, match="AEDAT"):
        nmnist.read_events(f)


def test_errors(tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"1234")
    with pytest.raises(ValueError, match="multiple of 5"):
        nmnist.read_events(bad)
    with pytest.raises(ValueError, match="split"):
        nmnist.load(tmp_path, "valid")
    with pytest.raises(ValueError, match="label list"):
        nmnist.load(tmp_path, "train")
