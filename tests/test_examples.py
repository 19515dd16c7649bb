"""Examples: --help works and documents every flag; output lands in the current folder;
the shared data is found from any folder."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eventsnn.datasets.paths import data_root

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_help_documents_every_flag(script, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    res = subprocess.run([sys.executable, str(script), "--help"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    text = " ".join(res.stdout.split())
    flags = [tok.strip("[],") for tok in res.stdout.split() if tok.startswith(("--", "[--"))]
    for flag in {f for f in flags if f.startswith("--") and f != "--help"}:
        # each option line has a help text after its metavar: the flag appears with words after it
        i = text.rfind(flag + " ")
        assert i >= 0 and len(text[i:].split()) > 2, f"{script.name}: {flag} has no help"
    assert not list(tmp_path.iterdir())          # --help writes nothing


@pytest.mark.skipif(data_root() is None, reason="shared data absent")
def test_nmnist_events_writes_to_the_current_folder(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import nmnist_events
        nmnist_events.main([])
    finally:
        sys.path.remove(str(ROOT / "examples"))
    assert (tmp_path / "nmnist_event_membrane.png").stat().st_size > 1000
