"""40-bit event files are decoded in chunks: the result equals a per-row decoder (markers,
chunk boundaries, out-of-order times) and the peak allocation is the output array plus a
few MiB, not a multiple of the file size."""
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from eventsnn import io
from eventsnn.datasets import nmnist
from eventsnn.io import binary


def naive_rows(data):
    """(t, x, y, p) of every event, one row at a time: y == 240 rows are markers that add
    2**13 us to every later event (FORMATS.md section 1)."""
    out, shift = [], 0
    for k in range(0, len(data), 5):
        b0, b1, b2, b3, b4 = data[k:k + 5]
        if b1 == 240:
            shift += 1 << 13
            continue
        out.append((((b2 & 0x7F) << 16 | b3 << 8 | b4) + shift, b0, b1, b2 >> 7))
    return out


def rows_of(ev):
    return [tuple(int(e[f]) for f in ("t", "x", "y", "p")) for e in ev]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(rows=hs.lists(hs.tuples(hs.integers(0, 255), hs.sampled_from([0, 5, 33, 240, 255]),
                               hs.integers(0, 255), hs.integers(0, 255), hs.integers(0, 255)),
                     max_size=40),
       chunk=hs.integers(1, 9))
def test_chunked_decoding_equals_the_row_decoder(tmp_path_factory, rows, chunk):
    data = bytes(b for row in rows for b in row)
    path = tmp_path_factory.mktemp("bin") / "a.bin"
    path.write_bytes(data)
    old = binary.CHUNK_EVENTS
    binary.CHUNK_EVENTS = chunk
    try:
        ev = nmnist.read_events(path)
        rec = io.read_bin(path, sensor_size=(256, 256, 2))
    finally:
        binary.CHUNK_EVENTS = old
    want = naive_rows(data)
    assert rows_of(ev) == want
    n_markers = sum(1 for r in rows if r[1] == 240)
    marker_note = f"{n_markers} timestamp-overflow markers (y == 240) applied (+2**13 us each)"
    assert (marker_note in rec.notes) == (n_markers > 0)
    assert rows_of(rec.events) == sorted(want, key=lambda r: r[0])  # stable sort by t
    assert ("events were not in time order: sorted (stable)" in rec.notes) == \
        any(b[0] < a[0] for a, b in zip(want, want[1:]))


@pytest.mark.parametrize("reader", ["read_events", "read_bin"])
def test_peak_allocation_is_the_output_plus_a_chunk(tmp_path, reader):
    n = 1_000_000  # a 5 MB file, 13 MB of events
    rng = np.random.default_rng(0)
    ev = np.zeros(n, dtype=io.EVENT_DTYPE)
    ev["t"] = np.sort(rng.integers(0, 1 << 23, n))
    ev["x"] = rng.integers(0, 34, n)
    ev["y"] = rng.integers(0, 34, n)
    ev["p"] = rng.integers(0, 2, n)
    path = tmp_path / "big.bin"
    io.write_bin(path, ev)
    size = path.stat().st_size
    del ev
    read = (lambda: nmnist.read_events(path)) if reader == "read_events" else \
        (lambda: io.read_bin(path).events)
    tracemalloc.start()
    try:
        out = read()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(out) == n
    # before: about 8x the file size (whole-file int64 temporaries); now the output
    # (2.6x the file) plus the temporaries of one chunk (a few MiB)
    assert peak <= out.nbytes + 8 * 2 ** 20, (peak, out.nbytes, size)
    assert peak <= 3.5 * size, (peak, size)


def test_a_file_that_grows_or_shrinks_while_read_is_refused(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(bytes(50))

    def short(dst):
        return 0
    with pytest.raises(ValueError, match="changed size"):
        binary._decode_stream(short, 10, str(path))
