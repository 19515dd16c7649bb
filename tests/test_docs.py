"""Every ```python block of README.md and docs/*.md runs, each file's blocks in order in one
namespace, in a temporary folder with matplotlib's Agg backend.

A block that needs the real data folder (it names ``shared/data``) is skipped when
``../shared/data`` is absent. A deliberately long block may be preceded by an HTML comment
``<!-- docs-test: replace "OLD" "NEW" -->`` (several allowed): the test runs the block with
those substitutions (e.g. fewer epochs), so every block still runs, in a shortened form.
``__docs_root__`` (the repository root) is defined in the blocks' namespace, so a
substitution can point at a file of the repository (e.g. an exporter's file in tests/data).
"""
import os
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
if not DATA.is_dir():
    DATA = Path("/work/shared/data")
DOC_FILES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))

_FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)
_REPLACE = re.compile(r"<!--\s*docs-test:\s*replace\s+(.*?)-->", re.S)


def python_blocks(text):
    """(code, [(old, new), ...]) of every ```python block of a markdown text, in order."""
    blocks = []
    for m in _FENCE.finditer(text):
        before = text[:m.start()].rstrip()
        subs = []
        # substitution comments directly above the fence (only blank lines between)
        tail = before.split("\n\n")[-1] if before else ""
        for c in _REPLACE.finditer(tail):
            parts = shlex.split(c.group(1))
            if len(parts) != 2:
                raise ValueError(f"docs-test replace needs two quoted strings, got {c.group(1)!r}")
            subs.append(tuple(parts))
        blocks.append((m.group(1), subs))
    return blocks


def test_python_blocks_are_found():
    text = "a\n<!-- docs-test: replace \"x=30\" \"x=1\" -->\n```python\nx=30\n```\n```bash\nls\n```\n"
    assert python_blocks(text) == [("x=30\n", [("x=30", "x=1")])]


@pytest.mark.parametrize("path", DOC_FILES, ids=[p.name for p in DOC_FILES])
def test_doc_blocks_run(path, tmp_path, monkeypatch):
    blocks = python_blocks(path.read_text())
    if not blocks:
        pytest.skip(f"{path.name} has no python block")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("EVENTSNN_DATA", str(DATA))
    try:
        import matplotlib
        matplotlib.use("Agg")
    except ImportError:
        pass
    ns = {"__name__": "__docs__", "__docs_root__": str(ROOT)}
    for k, (code, subs) in enumerate(blocks, 1):
        if "shared/data" in code and not DATA.is_dir():
            pytest.skip(f"{path.name} block {k} needs {DATA}")
        for old, new in subs:
            if old not in code:
                raise AssertionError(f"{path.name} block {k}: docs-test replace {old!r} not found")
            code = code.replace(old, new)
        try:
            exec(compile(code, f"{path.name}[block {k}]", "exec"), ns)
        except Exception as exc:
            raise AssertionError(f"{path.name} block {k} failed: {type(exc).__name__}: {exc}") from exc
    try:
        import matplotlib.pyplot as plt
        plt.close("all")
    except ImportError:
        pass
