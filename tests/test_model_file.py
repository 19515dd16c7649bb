"""Sequential.load on malformed files: one ValueError naming the path, no big allocation."""
import io
import json
import zipfile

import numpy as np
import pytest

import eventsnn as es


def _saved(tmp_path):
    net = es.Sequential(es.Conv2d((1, 6, 6), 2, 3), es.AvgPool2d(2), es.Flatten(), es.Dense(8, 3), rng=4)
    p = tmp_path / "m.npz"
    net.save(p)
    return net, p


def _rewrite(src, dst, members):
    """Copy archive ``src`` to ``dst`` with some members replaced (bytes) or removed (None)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        names = [n for n in zin.namelist()]
        for n in names:
            if n in members:
                if members[n] is not None:
                    zout.writestr(n, members[n])
            else:
                zout.writestr(n, zin.read(n))
        for n, data in members.items():
            if n not in names and data is not None:
                zout.writestr(n, data)


def _npy(arr):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=True)
    return buf.getvalue()


def _meta_bytes(meta):
    return _npy(np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))


def test_round_trip_still_exact(tmp_path):
    net, p = _saved(tmp_path)
    back = es.Sequential.load(p)
    for a, b in zip(net.layers, back.layers):
        if a.has_weight:
            np.testing.assert_array_equal(a.weight, b.weight)


def _meta(p):
    with zipfile.ZipFile(p) as z:
        return json.loads(bytes(np.lib.format.read_array(io.BytesIO(z.read("meta.npy")))).decode())


@pytest.mark.parametrize("case", ["empty", "truncated", "plain_npy", "text", "no_meta",
                                  "bad_json", "deep_json", "not_object", "object_array",
                                  "missing_weight", "wrong_shape", "huge_spec", "bad_layer",
                                  "bad_neuron", "bad_version", "nan_weight", "lying_header"])
def test_malformed_files_raise_one_value_error_naming_the_path(tmp_path, case):
    _, good = _saved(tmp_path)
    p = tmp_path / f"bad_{case}.npz"
    meta = _meta(good)
    if case == "empty":
        p.write_bytes(b"")
    elif case == "truncated":
        p.write_bytes(good.read_bytes()[:200])
    elif case == "plain_npy":
        np.save(p.with_suffix(".npy"), np.zeros(3))
        p = p.with_suffix(".npy")
    elif case == "text":
        p.write_text("hello, not a model\n")
    elif case == "no_meta":
        _rewrite(good, p, {"meta.npy": None})
    elif case == "bad_json":
        _rewrite(good, p, {"meta.npy": _npy(np.frombuffer(b"{not json", dtype=np.uint8))})
    elif case == "deep_json":
        _rewrite(good, p, {"meta.npy": _npy(np.frombuffer(b"[" * 100000 + b"]" * 100000, dtype=np.uint8))})
    elif case == "not_object":
        _rewrite(good, p, {"meta.npy": _meta_bytes([1, 2])})
    elif case == "object_array":
        _rewrite(good, p, {"weight_0.npy": _npy(np.array([{"a": 1}], dtype=object))})
    elif case == "missing_weight":
        _rewrite(good, p, {"weight_3.npy": None})
    elif case == "wrong_shape":
        _rewrite(good, p, {"weight_3.npy": _npy(np.zeros((3, 9)))})
    elif case == "huge_spec":
        meta["layers"] = [{"type": "Dense", "n_in": 100000, "n_out": 100000}]
        _rewrite(good, p, {"meta.npy": _meta_bytes(meta), "weight_0.npy": _npy(np.zeros((2, 2)))})
    elif case == "bad_layer":
        meta["layers"][0]["kernel_size"] = "3"
        _rewrite(good, p, {"meta.npy": _meta_bytes(meta)})
    elif case == "bad_neuron":
        meta["neuron"]["tau_x"] = 1.0
        _rewrite(good, p, {"meta.npy": _meta_bytes(meta)})
    elif case == "bad_version":
        meta["version"] = "2"
        _rewrite(good, p, {"meta.npy": _meta_bytes(meta)})
    elif case == "nan_weight":
        _rewrite(good, p, {"weight_3.npy": _npy(np.full((3, 8), np.nan))})
    elif case == "lying_header":
        raw = bytearray(_npy(np.zeros((3, 8))))
        raw = raw.replace(b"(3, 8)", b"(3, 9)")
        _rewrite(good, p, {"weight_3.npy": bytes(raw)})
    with pytest.raises(ValueError) as info:
        es.Sequential.load(p)
    assert str(p) in str(info.value)


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(OSError):
        es.Sequential.load(tmp_path / "nope.npz")
