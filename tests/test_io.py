"""eventsnn.io readers on the real files of ../shared/data (skipped when absent), checked
against a per-event byte decoder written from FORMATS.md and the folders' README counts;
tonic conventions; what readers refuse instead of dropping."""
from pathlib import Path

import numpy as np
import pytest

import eventsnn as es
from eventsnn import io
from eventsnn.datasets.paths import data_root

DATA = data_root() or Path("/nonexistent")
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="shared data folder absent")
GESTURE = DATA / "dvs_gesture_slayer_clips"


def naive_decode(path, n=None):
    """One event at a time, straight from FORMATS.md section 1 (no overflow markers)."""
    raw = Path(path).read_bytes()
    out = []
    for k in range(0, len(raw) if n is None else 5 * n, 5):
        b0, b1, b2, b3, b4 = raw[k:k + 5]
        out.append(((b2 & 0x7F) << 16 | b3 << 8 | b4, b0, b1, b2 >> 7))
    return out


@needs_data
@pytest.mark.parametrize("name,events,on,off", [
    ("1.bs2", 63471, 32164, 31307), ("2.bs2", 84260, 43472, 40788),
    ("3.bs2", 113063, 55396, 57667), ("8.bs2", 101288, 50762, 50526),
    ("10.bs2", 85936, 47461, 38475)])
def test_dvs_gesture_clips_keep_every_event(name, events, on, off):
    rec = io.read_dvs_gesture(GESTURE / name)
    assert len(rec) == events and rec.dropped == {} and rec.sensor_size == (128, 128, 2)
    assert int((rec.events["p"] == 1).sum()) == on and int((rec.events["p"] == 0).sum()) == off
    assert rec.events["x"].max() <= 127 and rec.events["y"].max() <= 127
    naive = naive_decode(GESTURE / name, 500)
    got = [tuple(int(e[f]) for f in ("t", "x", "y", "p")) for e in rec.events[:500]]
    assert got == naive
    st = rec.to_spike_trains()
    assert len(st) == events and st.n_neurons == 2 * 128 * 128
    t, x, y, p = (int(rec.events[-1][f]) for f in ("t", "x", "y", "p"))
    assert np.any((st.times == t / 1000) & (st.neurons == p * 128 * 128 + y * 128 + x))
    # the auto reader infers the DVS128 sensor
    assert io.read(GESTURE / name).sensor_size == (128, 128, 2)


@needs_data
def test_gesture_clip_through_the_nmnist_path_is_refused_not_dropped():
    from eventsnn.datasets import nmnist
    ev = nmnist.read_events(GESTURE / "1.bs2")
    assert ev.size == 63471
    with pytest.raises(ValueError, match="read_dvs_gesture"):
        nmnist.to_spike_trains(ev)
    with pytest.raises(ValueError, match="outside"):
        io.read_nmnist(GESTURE / "1.bs2")


@needs_data
def test_nmnist_sample_and_subset():
    rec = io.read(DATA / "tonic_test_samples" / "sample_nmnist.bin")
    assert rec.sensor_size == (34, 34, 2) and len(rec) == 4325 and rec.dropped == {}
    assert int(rec.events["p"].sum()) == 2145
    assert rec.events["t"].min() == 654 and rec.events["t"].max() == 311175
    files = sorted((DATA / "nmnist_slayer_small").glob("*.bs2"))
    assert len(files) == 1100
    for f in files[::97]:
        rec = io.read_nmnist(f)
        assert len(rec) == f.stat().st_size // 5
        got = [tuple(int(e[n]) for n in ("t", "x", "y", "p")) for e in rec.events[:50]]
        assert got == naive_decode(f, 50)


@needs_data
def test_aedat4_sample():
    pytest.importorskip("aedat")
    rec = io.read(DATA / "tonic_test_samples" / "sample.aedat4")
    assert rec.format == "aedat4" and rec.sensor_size == (320, 240, 2)
    assert len(rec) == 111954 and rec.dropped == {}
    assert int((rec.events["p"] == 1).sum()) == 55023
    assert int((rec.events["p"] == 0).sum()) == 56931
    assert rec.events["t"][0] == 0 and rec.t_offset_us > 1.5e15      # absolute Unix us
    assert 580 < rec.events["t"][-1] / 1000 < 600                      # ~0.59 s
    assert any("imus" in n for n in rec.notes)                         # says what it skipped
    st = rec.to_spike_trains()
    assert st.n_neurons == 2 * 240 * 320 and len(st) == 111954


@needs_data
def test_aedat4_cut_anywhere_before_its_packet_table_is_refused(tmp_path):
    pytest.importorskip("aedat")
    import struct
    from eventsnn.io.aedat4 import data_table_position
    raw = (DATA / "tonic_test_samples" / "sample.aedat4").read_bytes()
    pos = data_table_position(raw[14:14 + 4096])
    assert 0 < pos < len(raw)
    read_full = io.read(DATA / "tonic_test_samples" / "sample.aedat4")
    # independent check of the header field: walking the packets (an 8-byte header (stream
    # id, size) and the size in bytes each) from the end of the header ends exactly at pos;
    # cuts between packets and inside packets
    hdr = 14 + 4 + struct.unpack_from("<i", raw, 14)[0]
    cuts, at = [], hdr
    while at < pos:
        _, size = struct.unpack_from("<ii", raw, at)
        at += 8 + size
        cuts.append(at)
    assert at == pos  # the packets end exactly where the header says the table starts
    for cut in (cuts[0], cuts[len(cuts) // 2], cuts[-2], pos, pos - 1, hdr + 100):
        f = tmp_path / f"cut{cut}.aedat4"
        f.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match="truncated"):
            io.read(f)
    # a file whose writer recorded no table (-1) is read, with a note that it may end early
    field_at = 14 + 4 + 24 + 12  # root table at 24, dataTablePosition at +12 (this header)
    assert struct.unpack_from("<q", raw, field_at)[0] == pos
    f = tmp_path / "open.aedat4"
    f.write_bytes(raw[:field_at] + struct.pack("<q", -1) + raw[field_at + 8:pos])  # no table
    rec = io.read(f)
    assert len(rec) == len(read_full) and any("may end early" in n for n in rec.notes)


@needs_data
def test_aedat4_is_not_read_as_nmnist_and_aedat3_is_refused_clearly(tmp_path):
    from eventsnn.datasets import nmnist
    with pytest.raises(ValueError, match="AEDAT 4.0"):
        nmnist.read_events(DATA / "tonic_test_samples" / "sample.aedat4")
    f = tmp_path / "x.aedat"
    f.write_bytes(b"#!AER-DAT3.1\r\n#!END-HEADER\r\n")
    with pytest.raises(ValueError, match="AEDAT 3.1"):
        io.read(f)


def test_aedat4_without_the_package_gives_the_install_command(tmp_path, monkeypatch):
    import builtins
    real = builtins.__import__

    def no_aedat(name, *args, **kwargs):
        if name == "aedat":
            raise ImportError("no aedat")
        return real(name, *args, **kwargs)

    f = tmp_path / "x.aedat4"
    f.write_bytes(b"#!AER-DAT4.0\r\n" + bytes(20))
    monkeypatch.setattr(builtins, "__import__", no_aedat)
    with pytest.raises(ImportError, match=r"pip install 'eventsnn\[aedat\]'"):
        io.read(f)


def test_bin_round_trip_and_explicit_sensor(tmp_path):
    gen = np.random.default_rng(0)
    ev = np.zeros(200, dtype=io.EVENT_DTYPE)
    ev["t"] = np.sort(gen.integers(0, 1 << 23, 200))
    ev["x"] = gen.integers(0, 200, 200)
    ev["y"] = gen.integers(0, 150, 200)
    ev["p"] = gen.integers(0, 2, 200)
    io.write_bin(tmp_path / "a.bin", ev)
    rec = io.read_bin(tmp_path / "a.bin", sensor_size=(200, 150, 2))
    np.testing.assert_array_equal(rec.events, ev)
    with pytest.raises(ValueError, match="outside the sensor"):
        io.read_bin(tmp_path / "a.bin", sensor_size=(100, 150, 2))
    auto = io.read_bin(tmp_path / "a.bin")
    assert auto.sensor_size == (int(ev["x"].max()) + 1, int(ev["y"].max()) + 1, 2)
    assert any("inferred" in n for n in auto.notes)


def test_tonic_sensor_size_convention_is_w_h_p():
    ev = np.zeros(3, dtype=[("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
    ev["x"], ev["y"], ev["t"], ev["p"] = [4, 0, 9], [2, 1, 0], [1000, 2000, 3500], [1, 0, 1]
    st = io.from_tonic(ev, sensor_size=(10, 3, 2))           # W=10, H=3, P=2
    assert st.n_neurons == 60
    assert list(st.neurons) == [1 * 30 + 2 * 10 + 4, 0 * 30 + 1 * 10 + 0, 1 * 30 + 0 + 9]
    assert list(st.times) == [1.0, 2.0, 3.5]
    assert es.SpikeTrains.from_tonic(ev, sensor_size=(10, 3, 2)) == st
    assert es.SpikeTrains.from_tonic(ev, shape=(2, 3, 10)) == st
    back = io.to_tonic(st, (10, 3, 2))
    for f in ("x", "y", "t", "p"):
        np.testing.assert_array_equal(back[f], ev[f])
    with pytest.raises(ValueError, match="events\\['x'\\]"):
        io.from_tonic(ev, sensor_size=(5, 3, 2))              # x = 9 does not fit W = 5


def test_tonic_audio_events_shd_style():
    ev = np.zeros(4, dtype=[("t", "<f8"), ("x", "<i8"), ("p", "<i8")])
    ev["t"], ev["x"] = [10.0, 250.0, 250.0, 900.0], [699, 0, 350, 12]
    st = io.from_tonic(ev, sensor_size=(700, 1, 1))
    assert st.n_neurons == 700 and sorted(st.neurons) == [0, 12, 350, 699]
    back = io.to_tonic(st, (700, 1, 1))
    assert back.dtype.names == ("t", "x", "p")
    with pytest.raises(ValueError, match="no y field"):
        io.from_tonic(ev, sensor_size=(700, 2, 1))
    boolp = np.zeros(2, dtype=[("t", "<i8"), ("x", "<i8"), ("p", "?")])
    boolp["p"] = [True, False]
    assert sorted(io.from_tonic(boolp, (3, 1, 2)).neurons) == [0, 3]


def test_to_tonic_refuses_times_beyond_int64_microseconds():
    st = es.SpikeTrains([1.0, 9.3e15], [0, 1], 2)
    with pytest.raises(ValueError, match="int64"):
        st.to_tonic(sensor_size=(2, 1, 1))
    with pytest.raises(ValueError, match="int64"):
        st.to_tonic(shape=(1, 1, 2))


def test_recording_to_spike_trains_options():
    ev = np.zeros(3, dtype=io.EVENT_DTYPE)
    ev["t"], ev["x"], ev["y"], ev["p"] = [0, 5000, 9000], [1, 2, 3], [0, 1, 1], [0, 1, 1]
    rec = io.Recording(ev, (4, 2, 2), "test")
    st = rec.to_spike_trains(t_max=6.0, time_scale=0.5)
    assert list(st.times) == [0.0, 2.5] and list(st.neurons) == [1, 8 + 4 + 2]
    merged = rec.to_spike_trains(merge_polarity=True)
    assert merged.n_neurons == 8 and list(merged.neurons) == [1, 6, 7]
    assert "nothing dropped" in rec.summary()


@needs_data
def test_mnist_idx_and_digits_csv():
    images = io.read_idx(DATA / "mnist_t10k" / "t10k-images-idx3-ubyte.gz")
    labels = io.read_idx(DATA / "mnist_t10k" / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert list(labels[:10]) == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert list(np.bincount(labels)) == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    import gzip
    import hashlib
    raw = gzip.open(DATA / "mnist_t10k" / "t10k-images-idx3-ubyte.gz").read()
    assert hashlib.md5(raw).hexdigest() == "2646ac647ad5339dbf082846283269ea"
    assert images.tobytes() == raw[16:]
    from eventsnn.datasets.digits import read_csv
    X, y = read_csv(DATA / "uci_digits" / "digits.csv.gz")
    assert X.shape == (1797, 1, 8, 8) and list(np.bincount(y)) == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_idx_refuses_bad_headers(tmp_path):
    f = tmp_path / "bad.idx"
    f.write_bytes(b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="5 bytes"):
        io.read_idx(f)
    f.write_bytes(b"PK\x03\x04")
    with pytest.raises(ValueError, match="not an IDX"):
        io.read_idx(f)
