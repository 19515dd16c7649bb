"""AEDAT 1.0 / 2.0 (jAER) reader: addresses encoded by hand from the format's bit layout
(FORMATS.md section 2) decode back to the events; the real header-only sample reads as an
empty DAVIS346 recording."""
import numpy as np
import pytest

from eventsnn import io
from eventsnn.datasets.paths import data_root

HEADER = b"#!AER-DAT2.0\r\n# This is a raw AE data file\r\n# AEChip: %s\r\n#End Of ASCII Header\r\n"


def _dvs128_addr(x, y, on):
    # jAER: x mirrored (x_raw = 127 - x), rows counted from the bottom, bit 0 = 1 - polarity
    return ((127 - y) << 8) | ((127 - x) << 1) | (0 if on else 1)


def _davis_addr(x, y, on, W=346, H=260):
    return ((H - 1 - y) << 22) | ((W - 1 - x) << 12) | ((1 if on else 0) << 11)


def _write(path, chip, addrs, times, version="2.0"):
    rec = np.zeros(len(addrs), dtype=[("a", ">u4" if version == "2.0" else ">u2"), ("t", ">u4")])
    rec["a"], rec["t"] = addrs, times
    head = HEADER.replace(b"2.0", version.encode(), 1) % chip
    path.write_bytes(head + rec.tobytes())


def test_dvs128_events_decode_to_top_left_pixels(tmp_path):
    gen = np.random.default_rng(0)
    x, y = gen.integers(0, 128, 50), gen.integers(0, 128, 50)
    on = gen.random(50) < 0.5
    t = np.sort(gen.integers(1000, 10 ** 6, 50))
    for version in ("2.0", "1.0"):
        f = tmp_path / f"dvs{version}.aedat"
        _write(f, b"ch.unizh.ini.jaer.chip.retina.DVS128",
               [_dvs128_addr(a, b, c) for a, b, c in zip(x, y, on)], t, version)
        rec = io.read(f)
        assert rec.format == f"aedat{version}" and rec.sensor_size == (128, 128, 2)
        np.testing.assert_array_equal(rec.events["x"], x)
        np.testing.assert_array_equal(rec.events["y"], y)
        np.testing.assert_array_equal(rec.events["p"], on.astype(int))
        np.testing.assert_array_equal(rec.events["t"], t - t[0])
        assert rec.t_offset_us == t[0] and rec.dropped == {} and rec.notes == []


def test_davis346_skips_aps_imu_and_triggers_and_unwraps_time(tmp_path):
    ev = [(0, 0, True), (345, 259, False), (100, 7, True)]
    addrs = [_davis_addr(*e) for e in ev]
    aps = 1 << 31                      # an APS sample
    imu = 0x80000C00                   # an IMU sample
    trig = 1 << 10                     # an external-input event
    words = [addrs[0], aps, addrs[1], imu, trig, addrs[2]]
    times = [2 ** 32 - 10, 2 ** 32 - 5, 2 ** 32 - 1, 3, 4, 6]   # wraps after the third word
    f = tmp_path / "davis.aedat"
    _write(f, b"eu.seebetter.ini.chips.davis.Davis346red", words, times)
    rec = io.read_aedat2(f)
    assert rec.sensor_size == (346, 260, 2)
    np.testing.assert_array_equal(rec.events["x"], [e[0] for e in ev])
    np.testing.assert_array_equal(rec.events["y"], [e[1] for e in ev])
    np.testing.assert_array_equal(rec.events["p"], [1, 0, 1])
    np.testing.assert_array_equal(rec.events["t"], [0, 9, 16])
    assert any("2 APS/IMU" in n for n in rec.notes)
    assert any("1 external-input" in n for n in rec.notes)
    assert any("wrap" in n for n in rec.notes)


def test_unknown_chip_and_truncated_record(tmp_path):
    f = tmp_path / "odd.aedat"
    _write(f, b"some.other.Chip", [1], [1])
    with pytest.raises(ValueError, match="not supported"):
        io.read(f)
    g = tmp_path / "cut.aedat"
    _write(g, b"DVS128", [_dvs128_addr(3, 4, True)], [7])
    g.write_bytes(g.read_bytes() + b"\x01\x02\x03")
    rec = io.read(g)
    assert len(rec) == 1 and any("3 trailing bytes" in n for n in rec.notes)


def test_the_real_header_only_sample():
    root = data_root()
    path = root / "tonic_test_samples" / "sample_aedat_header.aedat" if root else None
    if path is None or not path.exists():
        pytest.skip("shared data folder absent")
    rec = io.read(path)
    assert rec.format == "aedat2.0" and rec.sensor_size == (346, 260, 2) and len(rec) == 0
    assert any("no event records" in n for n in rec.notes)
