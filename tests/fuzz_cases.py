"""Hostile inputs for every public entry point, one group per concern.

Run by tests/test_fuzz.py, each group in its own child process under a memory cap and a
timeout, so that a segfault, a hang or a runaway allocation fails one test instead of
killing the run. A group passes when every call either returns a sane result (finite where
the inputs were finite, the documented types and shapes) or raises ValueError/TypeError
(OSError for files) with a message. Anything else - ZeroDivisionError, IndexError,
KeyError, AttributeError, MemoryError, a numba error, a NaN from finite input - is a
failure.

``python -m tests.fuzz_cases GROUP`` runs one group in the current process (for debugging).
Examples per hypothesis test scale with HYPOTHESIS_SCALE (default 1).
"""
import math
import os
import sys

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

import eventsnn as es
from eventsnn import encode, losses, optim

SCALE = max(1, int(os.environ.get("HYPOTHESIS_SCALE", "1")))
ALLOWED = (ValueError, TypeError)

#: hand-picked hostile scalars: NaN, infinities, extremes, wrong types
HOSTILE = [float("nan"), float("inf"), -float("inf"), -1, -1.0, 0, 0.0, 5e-324, 1e-300, 1e300,
           1e308, 2 ** 63, 2 ** 64, -2 ** 63, 10 ** 30, True, False, "3", "", None, [], [1.0],
           [[1.0]], 1 + 1j, np.float32("nan"), np.int64(-5), object()]

anything = hs.one_of(hs.floats(allow_nan=True, allow_infinity=True),
                     hs.integers(-2 ** 70, 2 ** 70), hs.booleans(), hs.none(),
                     hs.text(max_size=3), hs.complex_numbers(max_magnitude=10),
                     hs.lists(hs.floats(allow_nan=True, allow_infinity=True), max_size=4),
                     hs.sampled_from(HOSTILE))


def _settings(n):
    return settings(max_examples=n * SCALE, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


class Unclear(AssertionError):
    """An allowed exception type whose message says nothing."""


def attempt(fn, *args, allowed=ALLOWED, **kwargs):
    """Call fn; an allowed exception with a message is fine (returns None); any other
    exception propagates and fails the group."""
    try:
        return fn(*args, **kwargs)
    except allowed as exc:
        if not str(exc).strip():
            raise Unclear(f"{fn.__qualname__} raised {type(exc).__name__} without a message") from exc
        return None


def finite(*arrays):
    for a in arrays:
        if a is None:
            continue
        a = np.asarray(a, dtype=np.float64)
        assert np.all(np.isfinite(a)), f"non-finite result from finite input: {a}"


def check_trains(st):
    assert isinstance(st, es.SpikeTrains)
    finite(st.times, st.values)
    assert np.all(np.diff(st.times) >= 0), "unsorted output"
    assert np.all((st.neurons >= 0) & (st.neurons < st.n_neurons)), "neuron out of range"


# ---- spikes ------------------------------------------------------------------------------
def group_spikes():
    for bad in HOSTILE:
        attempt(es.SpikeTrains, [bad], [0], 3)
        attempt(es.SpikeTrains, [1.0], [bad], 3)
        attempt(es.SpikeTrains, [1.0], [0], bad)
        attempt(es.SpikeTrains, [1.0], [0], 3, values=[bad])
        attempt(es.SpikeTrains, bad, bad, 3)
        attempt(es.SpikeTrains.from_dense, np.ones((3, 2)), dt=bad)
        attempt(es.SpikeTrains.from_dense, bad)
        attempt(es.SpikeTrains.from_pairs, bad, 3)
        attempt(es.SpikeTrains.from_pairs, [(0, 1.0)], bad)
        st = es.SpikeTrains([0.5, 1.0], [0, 1], 4)
        attempt(st.to_dense, bad)
        attempt(st.to_dense, 4, dt=bad)
        attempt(st.to_tonic, bad)
        attempt(es.SpikeTrains.from_tonic, bad, (1, 2, 2))

    @_settings(150)
    @given(times=hs.lists(anything, max_size=5), neurons=hs.lists(anything, max_size=5),
           n=anything, values=hs.one_of(hs.none(), hs.lists(anything, max_size=5)))
    def construct(times, neurons, n, values):
        st = attempt(es.SpikeTrains, times, neurons, n, values=values)
        if st is not None:
            check_trains(st)
            out = st.to_dense(4)
            finite(out)

    @_settings(100)
    @given(raster=hs.lists(hs.lists(hs.floats(-1e6, 1e6), min_size=2, max_size=2), max_size=6),
           dt=hs.floats(1e-6, 1e3))
    def dense_round_trip(raster, dt):
        raster = np.array(raster).reshape(-1, 2)
        st = attempt(es.SpikeTrains.from_dense, raster, dt=dt)
        if st is not None and len(raster):
            np.testing.assert_array_equal(st.to_dense(len(raster), dt=dt), raster)

    construct()
    dense_round_trip()


# ---- neurons and layers ------------------------------------------------------------------
def group_layers():
    for bad in HOSTILE:
        for kw in ("tau_m", "tau_s", "theta", "t_ref", "reset"):
            n = attempt(es.SRM, **{kw: bad})
            if n is not None:
                finite(n.t_peak, n.eps_peak)
        attempt(es.Dense, bad, 3)
        attempt(es.Dense, 3, bad)
        attempt(es.Conv2d, bad, 2, 3)
        attempt(es.Conv2d, (1, 5, 5), bad, 3)
        attempt(es.Conv2d, (1, 5, 5), 2, bad)
        attempt(es.Conv2d, (1, 5, 5), 2, 3, stride=bad)
        attempt(es.MaxPool2d, bad)
        attempt(es.AvgPool2d, 2, adjusted=bad)
        attempt(es.Sequential, es.Dense(3, 2), neuron=bad)
        attempt(es.Sequential, es.Dense(3, 2), rng=bad)
        attempt(es.Sequential, bad)
        net = es.Sequential(es.Dense(3, 2), rng=0)
        attempt(setattr, net.layers[0], "weight", bad)
        attempt(setattr, net.layers[0], "weight", np.full((2, 3), bad) if isinstance(bad, float) else bad)
        srm = es.SRM()
        for fn in (srm.eps, srm.deps, srm.h):
            r = attempt(fn, bad)
            if r is not None and isinstance(bad, (int, float)) and not isinstance(bad, bool) \
                    and math.isfinite(bad):
                finite(r)

    @_settings(100)
    @given(tau_m=hs.floats(1e-3, 1e3), ratio=hs.floats(1e-6, 0.999), theta=hs.floats(1e-3, 1e3))
    def extreme_constants(tau_m, ratio, theta):
        n = attempt(es.SRM, tau_m=tau_m, tau_s=tau_m * ratio, theta=theta)
        if n is not None:
            finite(n.t_peak, n.eps_peak, n.eps(np.linspace(0, 10 * tau_m, 7)))

    extreme_constants()


# ---- simulation and backward -------------------------------------------------------------
def _net(draw_seed, reset, t_ref, tau_m, tau_s, conv):
    neuron = es.SRM(tau_m=tau_m, tau_s=tau_s, theta=1.0, reset=reset, t_ref=t_ref)
    if conv:
        layers = [es.Conv2d((1, 4, 4), 2, 3, padding=1), es.MaxPool2d(2) if draw_seed % 2 else es.AvgPool2d(2),
                  es.Flatten(), es.Dense(8, 3)]
    else:
        layers = [es.Dense(16, 6), es.Dense(6, 3)]
    net = es.Sequential(*layers, neuron=neuron, rng=draw_seed)
    for layer in net.layers:
        if layer.has_weight:
            layer.weight = layer.weight * 3.0
    return net


def group_simulate():
    @_settings(60)
    @given(seed=hs.integers(0, 10 ** 6), reset=hs.sampled_from(["full", "membrane"]),
           t_ref=hs.sampled_from([0.0, 0.3, 2.0]), tau_m=hs.floats(0.05, 50.0),
           ratio=hs.sampled_from([1e-4, 0.05, 0.25, 0.6, 0.999, 1.5, 20.0]),
           conv=hs.booleans(), n_events=hs.integers(0, 40),
           t_end=hs.one_of(hs.none(), hs.floats(0.0, 100.0)))
    def simulate(seed, reset, t_ref, tau_m, ratio, conv, n_events, t_end):
        if abs(ratio - 1.0) < 1e-9:
            return
        net = _net(seed, reset, t_ref, tau_m, tau_m * ratio, conv)
        rng = np.random.default_rng(seed)
        times = np.round(rng.uniform(0, 20, n_events), 1)  # coincident events on purpose
        st = es.SpikeTrains(times, rng.integers(0, 16, n_events), 16,
                            values=rng.choice([1.0, -1.0, 0.5, 3.0], n_events))
        rec = attempt(net.simulate, st, t_end=t_end, max_spikes=10 ** 5)
        if rec is None:
            return
        for level in rec.spikes:
            check_trains(level)
        if len(rec.output):  # both resets (membrane: the exact adjoint)
            g = attempt(net.backward, rec, np.ones(len(rec.output)))
            if g is not None:
                for w in g.weights:
                    finite(w)
                for t in g.times:
                    finite(t)

    simulate()
    net = es.Sequential(es.Dense(4, 3), rng=0)
    st = es.SpikeTrains([1.0, 2.0], [0, 1], 4)
    for bad in HOSTILE:
        attempt(net.simulate, bad)
        attempt(net.simulate, [st, bad])
        attempt(net.simulate, st, t_end=bad)
        attempt(net.simulate, st, record_times=bad)
        attempt(net.simulate, [st, st], n_threads=bad)
        attempt(net.simulate, st, max_spikes=bad)
    attempt(net.simulate, es.SpikeTrains([1.0], [0], 5))  # wrong input size


def group_backward():
    for reset in ("full", "membrane"):
        _backward_hostile(reset)


def _backward_hostile(reset):
    net = es.Sequential(es.Dense(3, 2), rng=0, neuron=es.SRM(reset=reset))
    net.layers[0].weight = np.full((2, 3), 2.0)
    rec = net.simulate(es.SpikeTrains([0.0, 0.5, 1.0], [0, 1, 2], 3))
    n = len(rec.output)
    assert n > 0
    for bad in HOSTILE:
        attempt(net.backward, rec, bad)
        attempt(net.backward, rec, np.full(n, bad) if isinstance(bad, float) else bad)
        attempt(net.backward, rec, np.ones(n), kernel=bad)
        attempt(net.backward, rec, np.ones(n), tau_grad=bad)
        attempt(net.backward, rec, np.ones(n), clamp=bad)
        attempt(net.backward, rec, np.ones(n), factor=bad)
        attempt(net.backward, rec, np.ones(n), drop_nonpositive=bad)
        attempt(net.backward, bad, np.ones(n))
    attempt(net.backward, rec, np.ones(n + 1))
    for big in (1e300, 1e308, -1e308):
        g = attempt(net.backward, rec, np.full(n, big))
        if g is not None:
            for w in g.weights:
                finite(w)


# ---- losses, encoders, optimisers ----------------------------------------------------------
def group_losses_optim():
    out = es.SpikeTrains([1.0, 2.0, 3.0], [0, 1, 1], 3)
    for bad in HOSTILE:
        for fn, args in ((losses.count_loss, (out, bad, 10.0)), (losses.count_loss, (out, 0, bad)),
                         (losses.first_spike_loss, (out, bad)), (losses.first_spike_loss, (out, 0, bad)),
                         (losses.time_mse_loss, (out, bad)), (losses.predict_counts, (bad,))):
            r = attempt(fn, *args)
            if r is not None and isinstance(r, tuple):
                finite(r[0])
        attempt(encode.current, bad)
        attempt(encode.latency, np.ones((2, 3)), t_max=bad)
        attempt(encode.poisson, np.ones((2, 3)), t_end=bad)
        attempt(encode.poisson, np.ones((2, 3)), max_rate=bad)
        attempt(optim.SGD, lr=bad)
        attempt(optim.SGD, momentum=bad)
        attempt(optim.SGD, nesterov=bad)
        attempt(optim.Adam, betas=bad)
        attempt(optim.Adam, eps=bad)
        attempt(optim.make_optimizer, bad)
        attempt(optim.clip_grad_norm, [np.ones(3)], bad)
    for bad in (None, "x", [np.nan]):
        attempt(optim.SGD().step, [np.ones(2)], [bad])


# ---- model files ---------------------------------------------------------------------------
def group_files():
    import tempfile
    rng = np.random.default_rng(0)
    net = es.Sequential(es.Dense(4, 3), rng=0)
    with tempfile.TemporaryDirectory() as d:
        good = os.path.join(d, "good.npz")
        net.save(good)
        raw = open(good, "rb").read()
        cases = [b"", raw[:10], raw[:len(raw) // 2], raw[::-1], bytes(rng.integers(0, 256, 500, dtype=np.uint8))]
        for k in range(40):  # flip bytes of a good file
            b = bytearray(raw)
            for pos in rng.integers(0, len(b), 1 + k % 5):
                b[pos] = int(rng.integers(0, 256))
            cases.append(bytes(b))
        for k, data in enumerate(cases):
            p = os.path.join(d, f"case{k}.npz")
            with open(p, "wb") as fh:
                fh.write(data)
            attempt(es.Sequential.load, p, allowed=(ValueError, TypeError, OSError))


# ---- the command line and config files ----------------------------------------------------
def _cli(argv):
    """(status, stderr) of ``eventsnn ARGV`` run in this process."""
    import contextlib
    import io

    from eventsnn.cli import main

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        status = main(list(argv))
    return status, err.getvalue()


def expect_cli_error(argv, *names):
    """``eventsnn ARGV`` must exit 2 with a last stderr line "eventsnn ...: error: ..."
    naming every string of ``names``, and no traceback."""
    status, err = _cli(argv)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if "--config" in argv and os.path.isfile(argv[argv.index("--config") + 1]):
        with open(argv[argv.index("--config") + 1], "rb") as fh:
            argv = argv + [f"(config: {fh.read(100)!r})"]
    argv = repr(argv)[:400]
    assert status == 2, f"{argv}: exit {status}, stderr {err[-2000:]!r}"
    assert "Traceback" not in err, f"{argv}: traceback\n{err[-3000:]}"
    last = lines[-1] if lines else ""
    assert " error: " in last, f"{argv}: last stderr line is not an error: {err[-2000:]!r}"
    assert len([ln for ln in lines if not ln.startswith(("usage:", " "))]) == 1, \
        f"{argv}: more than one message line: {err[-2000:]!r}"
    for name in names:
        assert name in last, f"{argv}: message does not name {name!r}: {last!r}"


def group_cli():
    import json
    import tempfile

    fast = ["--epochs", "1", "--limit", "8", "--no-progress"]
    with tempfile.TemporaryDirectory() as d:
        count = [0]

        def cfg(obj, name=None, raw=None):
            count[0] += 1
            path = os.path.join(d, name or f"config{count[0]}.json")
            with open(path, "w") as fh:
                fh.write(raw if raw is not None else json.dumps(obj))
            return path

        model = os.path.join(d, "m.npz")
        assert _cli(["train", "--epochs", "1", "--limit", "16", "--no-progress", "--save", model])[0] == 0
        raw = open(model, "rb").read()
        trunc = os.path.join(d, "trunc.npz")
        with open(trunc, "wb") as fh:
            fh.write(raw[:len(raw) // 2])
        a_file = cfg({}, "plain.txt")
        events = os.path.join(d, "ev.bin")
        with open(events, "wb") as fh:
            fh.write(bytes([1, 2, 0, 0, 10] * 20))
        deep = "[" * 100000 + "]" * 100000
        cases = [
            # numeric flags: NaN, inf, negative, huge, not a number, unicode digits
            (["train", "--lr", "nan"], "--lr"), (["train", "--lr", "inf"], "--lr"),
            (["train", "--lr", "-1"], "--lr"), (["train", "--epochs", "1e3"], "--epochs"),
            (["train", "--batch", "0"], "--batch"), (["train", "--batch", "²"], "--batch"),
            (["train", "--seed", "-1"], "--seed"), (["train", "--val", "1"], "--val"),
            (["train", "--limit", "0"], "--limit"), (["train", "--threads", "0"], "--threads"),
            (["train", "--clip", "0"], "--clip"), (["train", "--weight-decay", "-0.5"], "--weight-decay"),
            (["train", "--scheduler-timeout", "nan"], "--scheduler-timeout"),
            (["train", "--scheduler-timeout", "-1"], "--scheduler-timeout"),
            (["train", "--rule", "nope"], "--rule"), (["train", "--dataset", "nope"], "--dataset"),
            (["train", "--arch", "64-²-10"], "arch"), (["train", "--arch", "64-10000000-10"], "10000000"),
            (["train", "--arch", "64-0-10"], "arch"), (["train", "--arch", ""], "arch"),
            (["train", "--arch", "8x8x1-1C99-10"], "kernel"), (["train", "--arch", "64-100-7"], "classes"),
            (["train", "--arch", "1x8x8-2C3p100000-10"], "padding"),
            (["train", "--limit", "1", "--val", "0.5"], "val"),
            # --opt / --neuron / --data: malformed pairs, wrong types, nested values, deep JSON
            (["train", "--opt", "noequals"], "--opt"), (["train", "--opt", "bogus=1"], "bogus"),
            (["train", "--opt", "clamp=12"], "clamp"), (["train", "--opt", "clamp=[1]"], "clamp"),
            (["train", "--opt", "clamp={\"a\": 1}"], "clamp"), (["train", "--opt", "t_window=NaN"], "t_window"),
            (["train", "--opt", "t_window=1e400"], "t_window"), (["train", "--opt", "desired=[1, 2]"], "desired"),
            (["train", "--opt", "input_times={\"a\": [1]}"], "input_times"),
            (["train", "--opt", "input_times=" + deep], "--opt"),
            (["train", "--opt", "supervisory=\"no\""], "supervisory"),
            (["train", "--rule", "activation", "--opt", "surrogate={\"a\": 1}"], "surrogate"),
            (["train", "--rule", "activation", "--opt", "alpha=[0.5, 0.5]"], "alpha"),
            (["train", "--rule", "antlr", "--opt", "target_rate_true=\"x\""], "target_rate_true"),
            (["train", "--rule", "timing", "--opt", "tau_grad=1"], "tau_grad"),
            (["train", "--rule", "timing", "--opt", "dt=1e308"], "dt"),
            (["train", "--rule", "tssl", "--opt", "silent_timing=\"no\""], "silent_timing"),
            (["train", "--rule", "asf", "--opt", "gate=\"no\""], "gate"),
            (["train", "--rule", "event", "--opt", "init_target=1e308"], "init_target"),
            (["train", "--neuron", "tau_m=[1]"], "tau_m"), (["train", "--neuron", "tau_m=1e300"], "tau_m"),
            (["train", "--neuron", "bogus=1"], "bogus"), (["train", "--neuron", "reset=7"], "reset"),
            (["train", "--data", "bogus=1"], "bogus"),
            (["train", "--dataset", "nmnist"], "--data-dir"),
            (["train", "--dataset", "nmnist", "--data-dir", os.path.join(d, "nope")], "--data-dir"),
            (["train", "--dataset", "nmnist", "--data-dir", a_file], "--data-dir"),
            # config files: missing, not JSON, not an object, wrong types, deep, huge, NaN
            (["train", "--config", os.path.join(d, "missing.json")], "missing.json"),
            (["train", "--config", d], d),
            (["train", "--config", cfg(None, raw="{not json")], "<cfg>"),
            (["train", "--config", cfg(None, raw="\xff\xfe")], "<cfg>"),
            (["train", "--config", cfg([1, 2])], "<cfg>"),
            (["train", "--config", cfg(None, raw=deep)], "<cfg>"),
            (["train", "--config", cfg(None, raw='{"opt": ' + "{\"a\": " * 50000 + "1" + "}" * 50001)], "<cfg>"),
            (["train", "--config", cfg({"seed": 1.9})], "seed"), (["train", "--config", cfg({"epochs": "3"})], "epochs"),
            (["train", "--config", cfg({"epochs": 10 ** 400})], "epochs"),
            (["train", "--config", cfg({"batch": 10 ** 400, "epochs": -1})], "epochs"),
            (["train", "--config", cfg({"scheduler_timeout": -1})], "scheduler_timeout"),
            (["train", "--config", cfg({"limit": 10 ** 400, "epochs": 0, "arch": "64-7"})], "10 classes"),
            (["train", "--config", cfg(None, raw='{"lr": NaN}')], "lr"),
            (["train", "--config", cfg(None, raw='{"lr": 1e400}')], "lr"),
            (["train", "--config", cfg({"lr": -1})], "lr"), (["train", "--config", cfg({"batch": 0})], "batch"),
            (["train", "--config", cfg({"limit": 0})], "limit"), (["train", "--config", cfg({"val": 2})], "val"),
            (["train", "--config", cfg({"progress": "no"})], "progress"),
            (["train", "--config", cfg({"bogus": 1})], "bogus"),
            (["train", "--config", cfg({"opt": {"clamp": "12"}})], "clamp"),
            (["train", "--config", cfg({"opt": {"t_window": {"a": 1}}})], "t_window"),
            (["train", "--config", cfg({"opt": [1]})], "opt"),
            (["train", "--config", cfg({"arch": 64})], "arch"),
            (["train", "--config", cfg({"rule": ["event"]})], "rule"),
            (["train", "--config", cfg({"optimizer": "nope"})], "optimizer"),
            (["train", "--config", cfg({"schedule": "nope"})], "schedule"),
            (["train", "--config", cfg({"dataset": "nope"})], "dataset"),
            # output paths: missing folder, a file as folder, a folder as file, before training
            (["train", "--save", os.path.join(d, "no", "m.npz")], "--save"),
            (["train", "--save", os.path.join(a_file, "m.npz")], "--save"),
            (["train", "--save", d], "--save"),
            (["train", "--log", os.path.join(d, "no", "l.jsonl")], "--log"),
            (["train", "--checkpoint", os.path.join(d, "no", "c.npz")], "--checkpoint"),
            (["train", "--resume"], "--resume"),
            (["train", "--resume", "--checkpoint", trunc], "trunc.npz"),
            (["train", "--resume", "--checkpoint", model], "m.npz"),
            # eval / simulate: missing, truncated, non-model files; bad events
            (["eval", os.path.join(d, "missing.npz")], "missing.npz"), (["eval", trunc], "trunc.npz"),
            (["eval", a_file], "plain.txt"), (["eval", d], d),
            (["eval", model, "--limit", "0"], "--limit"), (["eval", model, "--opt", "bogus=1"], "bogus"),
            (["eval", model, "--data", "bogus=1"], "bogus"),
            (["simulate", trunc, events], "trunc.npz"), (["simulate", model, a_file], "plain.txt"),
            (["simulate", model, os.path.join(d, "missing.bin")], "missing.bin"),
            (["simulate", model, d], d), (["simulate", model, events, "--t-end", "nan"], "--t-end"),
            (["simulate", model, events, "--out", os.path.join(d, "no", "o.npz")], "--out"),
            (["simulate", model, events, "--format", "nope"], "--format"),
            (["simulate", model, events], "inputs"),
            (["demo", "--duration", "1e300"], "--duration"), (["demo", "--duration", "0"], "--duration"),
            (["demo", "--seed", "1.5"], "--seed"),
            (["nope"], "nope"), (["train", "--nope"], "--nope"),
        ]
        failures = []
        for argv, *names in cases:
            if argv[0] == "train":
                flags = fast
                if "--config" in argv:  # flags override the file: keep the file's keys
                    try:
                        keys = set(json.load(open(argv[argv.index("--config") + 1])))
                    except Exception:
                        keys = set()
                    flags = [f for k, f in enumerate(fast) if not (
                        (f.startswith("--") and f[2:] in keys) or (k and fast[k - 1][2:] in keys))]
                argv = ["train"] + flags + argv[1:]
            if "--config" in argv:
                names = [os.path.basename(argv[argv.index("--config") + 1]) if n == "<cfg>" else n
                         for n in names]
            try:
                expect_cli_error(argv, *names)
            except Exception as exc:  # collect them all: one report per run
                failures.append(f"{type(exc).__name__}: {str(exc)[:400]}")
        assert not failures, f"{len(failures)} of {len(cases)} CLI cases failed:\n" + "\n".join(failures)


GROUPS = {name[len("group_"):]: fn for name, fn in globals().items() if name.startswith("group_")}

if __name__ == "__main__":
    GROUPS[sys.argv[1]]()
    print(f"fuzz group {sys.argv[1]}: ok")
