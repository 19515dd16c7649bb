"""Progress without tqdm (built-in bar, never silently nothing) and the one-time
compilation note."""
import io as _io
import sys
import types

import numpy as np
import pytest

import eventsnn as es
from eventsnn import _progress


def test_builtin_bar_when_tqdm_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)       # import tqdm -> ImportError
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    out = _io.StringIO()
    bar = _progress.progress_bar(4, True, "work", unit="file", stream=out)
    for _ in range(4):
        bar.update(1)
    bar.set_postfix(loss="0.5")
    bar.close()
    text = out.getvalue()
    assert "work: 100%" in text and "4/4 file" in text and text.endswith("\n")
    assert _progress.progress_bar(4, False, "work") is None


def test_simulate_progress_over_samples(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    net = es.Sequential(es.Dense(3, 2), rng=0)
    xs = [es.SpikeTrains([0.5, 1.0], [0, 2], 3) for _ in range(3)]
    recs = net.simulate(xs, progress=True)
    assert len(recs) == 3
    assert "simulate: 100%" in capsys.readouterr().err
    with pytest.raises(TypeError, match="progress"):
        net.simulate(xs, progress="yes")


def test_compile_note_once_and_only_without_a_cache(tmp_path):
    class Kernel:  # stands in for a numba dispatcher
        def __init__(self, path):
            self.py_func = None
            self._cache = types.SimpleNamespace(_cache_file=types.SimpleNamespace(_index_path=str(path)))

    mod = types.ModuleType("fake_kernels_a")
    mod.k1 = Kernel(tmp_path / "k1.nbi")
    mod.k2 = Kernel(tmp_path / "k2.nbi")
    out = _io.StringIO()
    assert _progress.note_compilation(mod, stream=out)
    assert out.getvalue() == "compiling kernels (first run only)...\n"
    assert not _progress.note_compilation(mod, stream=out)          # once per process
    cached = types.ModuleType("fake_kernels_b")
    (tmp_path / "c.nbi").write_bytes(b"")
    cached.k = Kernel(tmp_path / "c.nbi")
    assert not _progress.note_compilation(cached, stream=out)       # in numba's cache
    assert out.getvalue().count("compiling") == 1
    # a group run before (some kernels cached) beside a group never compiled: the note
    # (the event rule after `eventsnn demo`: the engine cached, the backward kernels not)
    fresh = types.ModuleType("fake_kernels_c")
    fresh.k = Kernel(tmp_path / "never.nbi")
    assert _progress.note_compilation(cached, fresh, stream=out)
    partly = types.ModuleType("fake_kernels_d")
    partly.a, partly.b = Kernel(tmp_path / "c.nbi"), Kernel(tmp_path / "unused.nbi")
    assert not _progress.note_compilation(partly, stream=out)       # ran before


def test_real_kernels_are_inspectable():
    from eventsnn.event import _engine
    assert _progress._has_cache_entry(_engine.dense_layer) in (True, False)


def test_save_keeps_training_options(tmp_path):
    net = es.Sequential(es.Dense(3, 2), rng=0)
    net.save(tmp_path / "a.npz", training={"rule": "event", "opt": {"desired": 4}})
    assert es.Sequential.load(tmp_path / "a.npz").training == {"rule": "event", "opt": {"desired": 4}}
    net.save(tmp_path / "b.npz")
    assert es.Sequential.load(tmp_path / "b.npz").training is None
    with pytest.raises(TypeError, match="training"):
        net.save(tmp_path / "c.npz", training={"x": np.zeros(2)})
