"""Type hints: the package type-checks with mypy (settings in pyproject.toml), ships
py.typed, and every public function and method (the ``__all__`` of each public module,
or its public names) has a type hint on every parameter and on its return."""
import importlib
import importlib.util
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import eventsnn as es

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


def _public_modules():
    """Every module of the package whose dotted name has no private (``_``) part."""
    names = ["eventsnn"]
    for info in pkgutil.walk_packages(es.__path__, "eventsnn."):
        if not any(part.startswith("_") for part in info.name.split(".")[1:]):
            names.append(info.name)
    return sorted(names)


def _functions_of(obj, qualname):
    """(name, function) of a public function, or of a public class's own methods,
    properties (getter and setter), class and static methods, ``__init__`` and ``__call__``."""
    if inspect.isfunction(obj):
        yield qualname, obj
        return
    if not inspect.isclass(obj):
        return  # constants, numba dispatchers (typed by numba), type aliases
    for name, member in vars(obj).items():
        if name.startswith("_") and name not in ("__init__", "__call__"):
            continue
        if isinstance(member, property):
            for kind, f in (("getter", member.fget), ("setter", member.fset)):
                if f is not None:
                    yield f"{qualname}.{name} ({kind})", f
            continue
        if isinstance(member, (classmethod, staticmethod)):
            member = member.__func__
        if inspect.isfunction(member):
            yield f"{qualname}.{name}", member


def _public_callables():
    """Everything a user can reach: the names in ``__all__`` of each public module, or, for
    a module without ``__all__``, its public names defined in that module."""
    seen = set()
    for modname in _public_modules():
        if modname == "eventsnn.testing" and importlib.util.find_spec("hypothesis") is None:
            continue
        mod = importlib.import_module(modname)
        names = getattr(mod, "__all__", None)
        if names is None:
            names = [n for n, obj in vars(mod).items() if not n.startswith("_")
                     and getattr(obj, "__module__", None) == modname]
        for name in names:
            obj = getattr(mod, name)
            if not getattr(obj, "__module__", "").startswith("eventsnn"):
                continue
            for qual, func in _functions_of(obj, f"{modname}.{name}"):
                if func not in seen:
                    seen.add(func)
                    yield qual, func


def _missing_annotations(func):
    sig = inspect.signature(func)
    missing = [p.name for p in sig.parameters.values()
               if p.name not in ("self", "cls") and p.annotation is inspect.Parameter.empty]
    if func.__name__ != "__init__" and sig.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


PUBLIC = list(_public_callables())


def test_the_walk_covers_the_whole_api():
    # a broken walk (e.g. an import error swallowed) would make the test below vacuous
    names = {name for name, _ in PUBLIC}
    assert len(PUBLIC) > 300
    for expected in ("eventsnn.Sequential.simulate", "eventsnn.losses.count_loss",
                     "eventsnn.optim.Adam.__init__", "eventsnn.dense.rules.tssl.tssl_delta",
                     "eventsnn.event.batch.simulate_batch", "eventsnn.io.read",
                     "eventsnn.plot.raster", "eventsnn.layers.Layer.weight (setter)",
                     "eventsnn.distributed.simulate", "eventsnn.train_cli.run"):
        assert expected in names, expected


def test_a_missing_annotation_is_caught():
    def f(a, b: int):
        return a

    assert _missing_annotations(f) == ["a", "return"]


@pytest.mark.parametrize("name,func", PUBLIC, ids=[name for name, _ in PUBLIC])
def test_public_api_is_annotated(name, func):
    missing = _missing_annotations(func)
    assert not missing, f"{name}: no type hint for {missing}"
