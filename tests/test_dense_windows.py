"""The windowed Dense kernel (issue 12) against the per-group kernel it replaced.

``tests/groupwise_dense.py`` is the previous kernel (one bound after every input time, traces
decayed to every input time), itself checked against the reference engine. The windowed
kernel must give the same spikes (times within 1e-9 ms), and bit for bit the same spikes
for every window length, block size and thread count: the window only decides which neurons
are replayed, and a replay performs the very operations of the vectorised sweep.

Inputs mix coincident events (integer grid), loose events, signed graded values and signed
weights, both resets with and without t_ref (also refractory periods longer than the
reference-time epochs), time constants in both orders, spans that cross several epochs
(40 min(tau) each), finite and infinite t_end, and layers wider than a block.
"""
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventsnn.event import _engine

from .groupwise_dense import groupwise_dense_layer
from .strategies import examples

TAUS = [(5.0, 1.25), (5.0, 2.5), (4.0, 3.0), (2.0, 5.0), (10.0, 1.0), (1.0, 0.2)]
TOL_MS = 1e-9


def random_layer(rng, n_out):
    """(in_t, in_i, in_v, WT, tau_m, tau_s, theta, membrane_reset, t_ref, t_end)."""
    n_in = int(rng.integers(1, 9))
    tau_m, tau_s = TAUS[rng.integers(len(TAUS))]
    # time scale: short runs, or runs over several epochs of 40 min(tau) ms
    scale = float(rng.choice([0.25, 1.0, 20.0]))
    k = int(rng.integers(1, 120))
    grid = rng.random() < 0.6
    t = rng.integers(0, 60, k) * scale if grid else rng.uniform(0, 60 * scale, k)
    if rng.random() < 0.5:  # a frame: many inputs at one time
        t[: k // 2] = t[0]
    i = rng.integers(0, n_in, k)
    kind = rng.integers(3)
    v = (np.ones(k) if kind == 0 else rng.uniform(0.2, 2.0, k) if kind == 1
         else rng.choice([-1.0, 1.0], k) * rng.uniform(0.2, 2.0, k))
    order = np.argsort(t, kind="stable")
    t, i, v = t[order], i[order], v[order]
    theta = float(rng.choice([0.5, 1.0, 2.0]))
    mean = float(rng.choice([0.0, 0.3, 1.0]))
    WT = rng.normal(mean, 1.0, (n_in, n_out)) * float(rng.choice([0.5, 1.5, 3.0])) * theta
    membrane_reset = bool(rng.random() < 0.5)
    t_ref = float(rng.choice([0.0, 0.3, 1.0, 3.0 * scale, 300.0]))
    t_end = float(rng.choice([np.inf, np.inf, 30 * scale, t[-1]]))
    return (t, i, v, np.ascontiguousarray(WT), tau_m, tau_s, theta, membrane_reset, t_ref,
            t_end)


def assert_close(got, want):
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0], rtol=0, atol=TOL_MS)


def assert_identical(got, want):
    assert got[2] == want[2]
    if not want[2]:  # when exceeded, which of the spikes come back depends on the order
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


SEEDS = st.integers(0, 2**32 - 1)


def test_windows_match_groupwise_kernel():
    counts = Counter()

    @settings(max_examples=examples(300), deadline=None)
    @given(seed=SEEDS)
    def run(seed):
        rng = np.random.default_rng(seed)
        n_out = int(rng.choice([1, 3, 7, 70, 200]))
        layer = random_layer(rng, n_out)
        max_spikes = 3000
        old = groupwise_dense_layer(*layer, max_spikes)
        new = _engine.dense_layer(*layer, max_spikes)
        assert new[2] == old[2]  # both exceed max_spikes, or neither
        if not old[2]:
            assert_close(new, old)
        # any window length and block size: bit for bit the same spikes
        for window in (1, int(rng.integers(2, 40)), 10**6):
            block = int(rng.integers(1, n_out + 1))
            assert_identical(_engine.dense_layer_blocks(*layer, max_spikes, block, window), new)
        counts["examples"] += 1
        counts["spikes"] += len(old[0]) > 0
        counts["membrane"] += layer[7]
        counts["t_ref > 0"] += layer[8] > 0
        counts["coincident"] += bool(np.any(np.diff(layer[0]) == 0))
        counts["signed"] += bool(np.any(layer[2] < 0)) or bool(np.any(layer[3] < 0))
        counts["epochs"] += bool(layer[0][-1] - layer[0][0] > 40 * min(layer[4], layer[5]))
        counts["exceeded"] += bool(old[2])

    run()
    n = counts["examples"]
    for key, frac in {"spikes": 0.6, "membrane": 0.3, "t_ref > 0": 0.5, "coincident": 0.5,
                      "signed": 0.5, "epochs": 0.15}.items():
        assert counts[key] >= frac * n, f"only {counts[key]} of {n} examples had {key!r}: {counts}"


@pytest.mark.parametrize("reset", ["full", "membrane"])
def test_wide_layer_threads_windows_blocks(reset):
    """Layers wide enough for the thread path (>= 512 neurons), random inputs: the same spikes
    for any thread count, window length and block size, and as the per-group kernel."""

    @settings(max_examples=examples(8), deadline=None)
    @given(seed=SEEDS)
    def run(seed):
        rng = np.random.default_rng([seed, reset == "membrane"])
        n_out = int(rng.integers(512, 800))
        layer = list(random_layer(rng, n_out))
        layer[7] = reset == "membrane"
        layer = tuple(layer)
        old = groupwise_dense_layer(*layer, 10**6)
        one = _engine.dense_layer(*layer, 10**6)
        assert not old[2]
        assert_close(one, old)
        for threads in (1, 2, 3):
            window = int(rng.integers(1, 20))
            assert_identical(_engine.dense_layer_threads(*layer, 10**6, threads, window), one)
        block = int(rng.integers(64, n_out))
        assert_identical(_engine.dense_layer_blocks(*layer, 10**6, block, 3), one)

    run()


def test_windows_schedule():
    """Windows hold at least ``window`` events (or reach an epoch end or the input's end),
    stay inside one epoch, and cover every group once."""
    rng = np.random.default_rng(5)
    t = np.sort(np.r_[rng.uniform(0, 400, 300), np.full(20, 17.0)])
    v = rng.uniform(-1, 1, t.size)
    sched = _engine._dense_windows(t, v, 350.0, 5.0, 1.25, 8)
    gs, gt, gn, ga, gb, gG, gdm, gds, wm, ws, wst, wa, wb, wE, wr, wrm, wrs, qE = sched
    assert gs[-1] == np.searchsorted(t, 350.0, side="right")
    assert wst[0] == 0 and wst[-1] == gt.size
    for w in range(wst.size - 1):
        g0, g1 = wst[w], wst[w + 1]
        assert np.all(gG[g0:g1] == gG[g0])
        assert gs[g1] - gs[g0] >= 8 or g1 == gt.size or gG[g1] != gG[g0] or g1 - g0 == 1
        assert wr[w] == (w > 0 and gG[g0] != gG[g0 - 1])
    assert np.all(gt - gG <= 40 * 1.25)
    n = gs[-1]
    t_of_event = np.repeat(gt, np.diff(gs))
    G_of_event = np.repeat(gG, np.diff(gs))
    np.testing.assert_array_equal(t_of_event, t[:n])
    np.testing.assert_allclose(wm, v[:n] * np.exp((t_of_event - G_of_event) / 5.0), rtol=1e-13)
    np.testing.assert_allclose(ws, v[:n] * np.exp((t_of_event - G_of_event) / 1.25), rtol=1e-13)
