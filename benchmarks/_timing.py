"""Timing shared by the benchmark scripts (run as ``python benchmarks/NAME.py``, which puts
this folder on the import path)."""
import time


def best_cpu(fn, repeats):
    """Least process CPU time (s) of ``repeats`` calls of fn, after one warm-up call (which
    loads or compiles the kernels)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        c0 = time.process_time()
        fn()
        best = min(best, time.process_time() - c0)
    return best
