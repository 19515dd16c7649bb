"""Training speed under the thread policy: default settings vs OMP_NUM_THREADS=1
OPENBLAS_NUM_THREADS=1 (the variables the docs used to require) vs --threads 2 (BLAS with
2 threads, what a dense rule got before BLAS was limited).

Each variant runs ``eventsnn train`` in a fresh process (the numba cache warm), several
times; reported: the best wall-clock train_seconds and the process CPU seconds of that run,
plus the load average before the runs. Usage:

    python benchmarks/threads.py [--repeats 3] [--rules activation,event]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

VARIANTS = {
    "default": ({}, []),
    "env=1": ({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}, []),
    "--threads 2": ({}, ["--threads", "2"]),
}
ARGS = {"activation": ["--rule", "activation", "--arch", "64-256-10", "--epochs", "2", "--batch", "64"],
        "event": ["--rule", "event", "--epochs", "1", "--limit", "400"]}


def run(rule, variant):
    env_extra, flags = VARIANTS[variant]
    env = dict(os.environ, **env_extra)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        if k not in env_extra:
            env.pop(k, None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([sys.executable, "-m", "eventsnn", "train", "--no-progress"] + ARGS[rule] + flags,
                         env=env, capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(out)["train_seconds"], cpu


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3, help="runs per variant (best kept)")
    p.add_argument("--rules", default="activation,event", help="comma-separated rules")
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated variants")
    args = p.parse_args()
    variants = args.variants.split(",")
    print(f"load average before: {os.getloadavg()}, cpus: {os.cpu_count()}")
    for rule in args.rules.split(","):
        run(rule, "default")  # warm the numba cache
        res = {v: [] for v in variants}
        for _ in range(args.repeats):
            for variant in variants:     # interleaved, so load changes hit every variant
                res[variant].append(run(rule, variant))
        best = {v: min(r) for v, r in res.items()}
        med = {v: sorted(w for w, _ in r)[len(r) // 2] for v, r in res.items()}
        base, base_med = best["env=1"][0], med["env=1"]
        for variant in variants:
            wall, cpu = best[variant]
            print(f"{rule:<10s} {variant:<12s} train best {wall:6.2f} s wall ({wall / base:4.2f} x env=1), "
                  f"median {med[variant]:6.2f} s ({med[variant] / base_med:4.2f} x), "
                  f"process CPU of the best {cpu:6.2f} s, all {[round(w, 2) for w, _ in res[variant]]}")
        print(f"load average after {rule}: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    t0 = time.time()
    main()
    print(f"total {time.time() - t0:.0f} s")
