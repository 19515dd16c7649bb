"""Type hints: the package type-checks with mypy (settings in pyproject.toml), ships
py.typed, and the core public API is annotated."""
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import eventsnn as es
from eventsnn import checkpoint, io, plot, train

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_passes(tmp_path):
    pytest.importorskip("mypy")
    res = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"),
                          "--config-file", str(ROOT / "pyproject.toml")],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr


def test_py_typed_marker_is_shipped():
    assert (ROOT / "eventsnn" / "py.typed").exists()
    assert "py.typed" in (ROOT / "pyproject.toml").read_text()


def _public_callables():
    objs = [es.SpikeTrains, es.Sequential, es.Dense, es.Conv2d, es.AvgPool2d, train.Trainer]
    for cls in objs:
        for name, member in vars(cls).items():
            if name.startswith("_") and name != "__init__":
                continue
            func = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
            if inspect.isfunction(func):
                yield f"{cls.__name__}.{name}", func
    for mod in (io, plot, checkpoint):
        for name in getattr(mod, "__all__", dir(mod)):
            func = getattr(mod, name)
            if (not name.startswith("_") and inspect.isfunction(func)
                    and func.__module__.startswith("eventsnn")):
                yield f"{mod.__name__}.{name}", func


@pytest.mark.parametrize("name,func", list(_public_callables()), ids=lambda x: x if isinstance(x, str) else "")
def test_public_api_is_annotated(name, func):
    sig = inspect.signature(func)
    missing = [p.name for p in sig.parameters.values()
               if p.name not in ("self", "cls") and p.annotation is inspect.Parameter.empty]
    assert not missing, f"{name}: parameters without a type hint: {missing}"
    if func.__name__ != "__init__":
        assert sig.return_annotation is not inspect.Signature.empty, f"{name}: no return type"
