"""The fuzz suite (tests/fuzz_cases.py): every group in a child process with a memory cap
and a timeout, so a segfault, a hang or a runaway allocation is a failed test, not a dead
run. Thorough run: HYPOTHESIS_SCALE=20 python -m pytest tests/test_fuzz.py (docs/errors.md)."""
import os
import subprocess
import sys

import pytest

from . import fuzz_cases

#: address-space cap of a child (bytes): far above what a sane call needs (numba and
#: LLVM included), far below what a runaway allocation asks for
MEMORY_CAP = 6 * 2 ** 30
TIMEOUT_S = 300 * max(1, int(os.environ.get("HYPOTHESIS_SCALE", "1")))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _limit_memory():
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def _run_child(args, timeout=None):
    """(outcome, detail): "ok", "failed", "crashed" (a signal) or "hung"."""
    try:
        proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout or TIMEOUT_S,
                              preexec_fn=_limit_memory if sys.platform != "win32" else None)
    except subprocess.TimeoutExpired:
        return "hung", f"no result within {timeout or TIMEOUT_S} s"
    if proc.returncode < 0:
        return "crashed", f"signal {-proc.returncode}\n{proc.stderr[-4000:]}"
    if proc.returncode != 0:
        return "failed", proc.stderr[-6000:]
    return "ok", proc.stdout


@pytest.mark.parametrize("group", sorted(fuzz_cases.GROUPS))
def test_fuzz_group(group):
    outcome, detail = _run_child(["-m", "tests.fuzz_cases", group])
    assert outcome == "ok", f"fuzz group {group!r} {outcome}:\n{detail}"
    assert f"fuzz group {group}: ok" in detail


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and rlimits")
def test_the_harness_sees_crashes_hangs_and_runaway_allocations():
    assert _run_child(["-c", "import ctypes; ctypes.string_at(0)"])[0] == "crashed"
    assert _run_child(["-c", "import time; time.sleep(60)"], timeout=2)[0] == "hung"
    outcome, detail = _run_child(["-c", "import numpy as np; np.ones(2**33)"])
    assert outcome == "failed" and "MemoryError" in detail
