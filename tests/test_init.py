"""Firing-rate initialisation: the binary search reaches the target rate per layer, wakes
silent networks up, and follows the reference bracket rule."""
import numpy as np
import pytest

import eventsnn as es
from eventsnn.init import init_firing_rate


def _inputs(n_in, n=12, seed=0):
    rng = np.random.default_rng(seed)
    return [es.SpikeTrains(rng.uniform(0, 5, 30), rng.integers(0, n_in, 30), n_in,
                           rng.uniform(0.2, 1.0, 30)) for _ in range(n)]


def _mean_counts(net, xs, t_end):
    recs = net.simulate(xs, t_end=t_end)
    return [np.mean([len(r.spikes[li]) for r in recs]) / layer.n_out
            for li, layer in enumerate(net.layers, start=1) if layer.has_neurons]


@pytest.mark.parametrize("target", [0.5, 2.0])
def test_each_layer_reaches_the_target_rate(target):
    net = es.Sequential(es.Dense(20, 30), es.Dense(30, 10), rng=1)
    for layer in net.layers:            # start silent: tiny weights
        layer.weight = layer.weight * 1e-3
    xs = _inputs(20)
    assert _mean_counts(net, xs, 8.0) == [0.0, 0.0]
    scales, rates = init_firing_rate(net, xs, target=target, t_end=8.0, low=0.05, high=1e5)
    got = _mean_counts(net, xs, 8.0)
    for r, g in zip(rates, got):
        assert r == g
        # the rate is a step function of the scale: the search stops at the first scale
        # at or above the target, within one spike of the batch per neuron
        assert target <= g <= target + 1.0
    assert all(s > 1.0 for s in scales)


def test_bracket_rule_and_conv_network():
    net = es.Sequential(es.Conv2d((1, 6, 6), 3, 3), es.AvgPool2d(2), es.Flatten(),
                        es.Dense(12, 4), rng=2)
    xs = _inputs(36, n=8)
    w_before = [l.weight.copy() if l.has_weight else None for l in net.layers]
    scales, rates = init_firing_rate(net, xs, target=1.0, t_end=10.0, ratio=1.01)
    assert scales[1] is None and scales[2] is None and rates[1] is None
    for layer, w0, s in zip(net.layers, w_before, scales):
        if layer.has_weight:
            np.testing.assert_allclose(layer.weight, w0 * s)
            assert 0.05 <= s <= 500
    assert rates[0] >= 1.0 and rates[3] >= 1.0


def test_search_stops_within_the_bracket_ratio():
    """Excitatory weights make the rate monotone in the scale: the returned scale reaches
    the target and the scale one bracket ratio below does not."""
    net = es.Sequential(es.Dense(5, 4), rng=3)
    net.layers[0].weight = np.abs(net.layers[0].weight) + 0.1
    xs = _inputs(5, n=6)
    w0 = net.layers[0].weight.copy()
    (scale,), (rate,) = init_firing_rate(net, xs, target=1.5, t_end=10.0, ratio=1.01)
    assert rate >= 1.5
    net.layers[0].weight = w0 * scale / 1.01
    assert _mean_counts(net, xs, 10.0)[0] < 1.5


def test_init_errors():
    net = es.Sequential(es.Dense(3, 2))
    with pytest.raises(TypeError, match="inputs"):
        init_firing_rate(net, [])
    with pytest.raises(ValueError, match="inputs\\[0\\]"):
        init_firing_rate(net, [es.SpikeTrains([0.0], [0], 4)])
    xs = _inputs(3, n=2)
    with pytest.raises(ValueError, match="target"):
        init_firing_rate(net, xs, target=0)
    with pytest.raises(ValueError, match="ratio"):
        init_firing_rate(net, xs, ratio=1.0)
    with pytest.raises(ValueError, match="high"):
        init_firing_rate(net, xs, low=5, high=1)


# ---------------------------------------------------------------- guided search
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from eventsnn import init as _init  # noqa: E402

from .strategies import examples  # noqa: E402


def _prober(count_of, need, cap=None):
    """probe(scale) of a synthetic count curve: (count >= need, count or None above cap)."""
    calls = []

    def probe(q):
        calls.append(q)
        c = count_of(q)
        return c >= need, (None if cap is not None and c > cap else c)
    return probe, calls


@settings(max_examples=examples(60), deadline=None)
@given(crossing=st.floats(0.06, 400.0), gamma=st.floats(0.5, 12.0), n=st.integers(100, 10**6),
       noise=st.floats(0.0, 0.3), guess_err=st.floats(0.8, 1.25), seed=st.integers(0, 99),
       capped=st.booleans())
def test_guided_bisection_equals_the_plain_one_on_monotone_counts(crossing, gamma, n, noise,
                                                                 guess_err, seed, capped):
    """Counts non-decreasing in the scale (a power law with steps of random width): every
    step of the guided search gets the plain bisection's answer, so the scales are equal
    bit for bit, with no more probes."""
    rng = np.random.default_rng(seed)
    jumps = np.sort(rng.uniform(0.0, 1.0, 20)) * noise

    def count_of(q):
        x = (q / crossing) ** gamma * n
        return int(np.floor(x * (1.0 + jumps[int(min(19, abs(np.log(q)) * 7))])))
    need = n
    plain, calls_p = _prober(count_of, need)
    hi_p, _ = _init.bisect(plain, 0.05, 500.0, 1.01, guided=False)
    guided, calls_g = _prober(count_of, need, cap=4 * need if capped else None)
    hi_g, _ = _init.bisect(guided, 0.05, 500.0, 1.01, guided=True, guess=crossing * guess_err,
                           need=need, slope=gamma)
    assert hi_g == hi_p
    assert len(calls_g) <= len(calls_p)


def test_guided_bisection_takes_few_probes_near_a_good_guess():
    def count_of(q):
        return int(1000 * (q / 3.7) ** 5)
    plain, calls_p = _prober(count_of, 1000)
    guided, calls_g = _prober(count_of, 1000)
    hi_p, _ = _init.bisect(plain, 0.05, 500.0, 1.01, guided=False)
    hi_g, _ = _init.bisect(guided, 0.05, 500.0, 1.01, guess=3.6, need=1000, slope=5.0)
    assert hi_g == hi_p and len(calls_p) == 10 and len(calls_g) <= 3


@settings(max_examples=examples(40), deadline=None)
@given(seed=st.integers(0, 10**6))
def test_guided_bisection_on_non_monotone_counts_answers_every_step_from_a_probe(seed):
    """Random answers (no order at all): the search ends, and its upper end is ``high``, a
    probed passing scale, or (while the answers looked ordered) above one."""
    rng = np.random.default_rng(seed)
    answers = {}

    def probe(q):
        if q not in answers:
            answers[q] = bool(rng.random() < 0.5)
        return answers[q], int(rng.integers(1, 100))
    hi, known = _init.bisect(probe, 0.05, 500.0, 1.01, guess=1.0, need=50)
    assert (hi == 500.0 or answers.get(hi) is True
            or (known.ordered and any(a and q <= hi for q, a in answers.items())))
    assert known.n <= 10 * (_init.GUIDED_TRIES + 1)


def _conv_net(seed, excitatory):
    net = es.Sequential(es.Conv2d((1, 6, 6), 3, 3), es.AvgPool2d(2), es.Flatten(),
                        es.Dense(12, 4), rng=seed)
    if excitatory:
        for layer in net.layers:
            if layer.has_weight:
                layer.weight = np.abs(layer.weight)
    return net


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_guided_init_equals_plain_init(seed):
    """Excitatory weights (counts that grow with the scale), more samples than the first
    estimate uses: the same scales, rates and weights as the plain bisection."""
    xs = _inputs(36, n=10, seed=seed)
    a, b = _conv_net(seed, True), _conv_net(seed, True)
    sa, ra = init_firing_rate(a, xs, target=1.0, t_end=10.0, guided=True, n_threads=1)
    sb, rb = init_firing_rate(b, xs, target=1.0, t_end=10.0, guided=False, n_threads=1)
    assert sa == sb and ra == rb
    for la, lb in zip(a.layers, b.layers):
        if la.has_weight:
            np.testing.assert_array_equal(la.weight, lb.weight)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_guided_init_reaches_the_target_with_mixed_weights(seed):
    """Mixed-sign weights (the count can drop as the scale grows, and then the guided and
    the plain search may stop at different scales): every layer still reaches the target
    at its scale (the final check reruns the plain bisection otherwise)."""
    xs = _inputs(36, n=10, seed=seed)
    net = _conv_net(seed, False)
    scales, rates = init_firing_rate(net, xs, target=1.0, t_end=10.0, n_threads=1)
    got = _mean_counts(net, xs, 10.0)
    assert [r for r in rates if r is not None] == got
    assert all(g >= 1.0 for g in got)
