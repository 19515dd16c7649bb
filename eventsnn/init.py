"""Firing-rate initialisation (Zhu et al. 2022, section 4.1).

Timing gradients flow only through spikes, so a silent layer blocks learning. Starting
from the layers' current (random) weights, each weighted layer in turn, from the input
side, has its weight multiplied by a scale found by binary search so that the mean spike
count per neuron of that layer, on a batch of training inputs, reaches ``target``. The
search is geometric over [low, high] (reference: [0.05, 500]) and stops when
high / low < ``ratio`` (reference 1.01); the upper end of the final bracket is used, so the
layer fires at least at the target rate when that is reachable.

**Fewer simulations, the same scale.** The bisection's steps are fixed by its answers:
step n asks "does scale mid_n reach the target?" and mid_n = sqrt(lo * hi) depends only on
the earlier answers. When the spike count does not decrease with the scale, any simulated
scale answers many steps: one that reaches the target answers "yes" for every larger mid,
one that does not answers "no" for every smaller mid. The search therefore replays the
bisection, answering each step from the scales simulated so far, and simulates only when a
step cannot be answered; the scale it then simulates is chosen to answer this step and as
many later ones as possible: near the crossing of the count with the target, estimated
first by a plain bisection on a few samples and then by interpolating log(count) linearly
in log(scale) between the closest simulated scales below and above the target (a step left
unanswered by such a guess is simulated at its own mid next). Every step gets the answer a
simulation of its mid would give when the count is non-decreasing in the scale, so the
final scale is bit for bit the plain bisection's. Where the count is not monotone
(inhibitory weights can make it so), two simulated answers can contradict the order: from
then on each step simulates its own mid, as the plain bisection does; and the scale found is
simulated in the end anyway (its output feeds the next layer): should it miss the target,
the layer's search is rerun as the plain bisection. ``guided=False`` runs the plain
bisection throughout (tests/test_init.py checks that both give the same scales).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, List, Optional, Sequence, Tuple


from . import _validate as v
from .event import _conv, _dense
from .event import batch as _batch
from .event.forward import kernel_weights
from .layers import Dense
from .neurons import LIF
from .spikes import SpikeTrains

if TYPE_CHECKING:
    from .network import Sequential

#: most bisection steps per layer (the bracket reaches adjacent floats long before)
MAX_STEPS = 2000


def _count_dense(t, i, v, off, WT, tau_m, tau_s, theta, membrane_reset, t_ref, t_end, budget):
    """Spikes of a Dense layer over samples off[0].., or -1 once they exceed ``budget``
    (each sample runs with the budget that is left as its max_spikes; ``_dense.run_dense``
    is called directly, as the per-sample path does, see ``eventsnn.event.batch``)."""
    total = 0
    for s in range(off.size - 1):
        a, b = off[s], off[s + 1]
        ot, _, exceeded = _dense.run_dense(WT, t[a:b], i[a:b], v[a:b], tau_m, tau_s, theta,
                                           membrane_reset, t_ref, t_end, budget - total)
        if exceeded:
            return -1
        total += ot.size
    return total


def _count_sparse(t, i, v, off, layer, WT, tau_m, tau_s, theta, membrane_reset, t_ref, t_end,
                  budget):
    """:func:`_count_dense` for a Conv2d layer (``WT``: ``_conv.transposed_weight``)."""
    total = 0
    for s in range(off.size - 1):
        a, b = off[s], off[s + 1]
        ot, _, exceeded = _conv.run_conv(layer, WT, t[a:b], i[a:b], v[a:b], tau_m, tau_s, theta,
                                         membrane_reset, t_ref, t_end, budget - total)
        if exceeded:
            return -1
        total += ot.size
    return total


def _count(nrn, layer, below, t_end, cap, n_threads):
    """Spikes of ``layer`` (its current weight, neuron ``nrn``) fed the batch ``below``:
    the exact count when it is at most ``cap``, else any number above ``cap`` (with SRM
    neurons the simulation stops there, so a too large scale costs little)."""
    n = below.n_samples
    if isinstance(nrn, LIF):
        levels, _ = _batch.simulate_batch(_Single(nrn, layer), below, t_end, n_threads=n_threads)
        return levels[-1].times.size
    tau_m, tau_s, theta, membrane_reset, t_ref = nrn.as_tuple()
    w = kernel_weights(layer)
    t, i, val, off = below.times, below.neurons, below.values, below.offsets
    if isinstance(layer, Dense):
        def run(a, b):
            return _count_dense(t, i, val, off[a:b + 1], w, tau_m, tau_s, theta, membrane_reset,
                                t_ref, t_end, cap)
    else:
        WT = _conv.transposed_weight(layer, w)

        def run(a, b):
            return _count_sparse(t, i, val, off[a:b + 1], layer, WT, tau_m, tau_s, theta,
                                 membrane_reset, t_ref, t_end, cap)
    counts = _batch._map_chunks(run, n, n_threads)
    if any(c < 0 for c in counts):
        return cap + 1
    return sum(counts)


def _budget(target, n, n_out, factor=1):
    """``factor`` times the least spike count that reaches ``target`` per neuron and sample,
    plus one (the cap of a counting simulation)."""
    return int(min(math.ceil(factor * target * n * n_out) + 1, 2 ** 62))


def _passes(count, target, n, n_out):
    """The search's criterion: ``count`` spikes of n samples of n_out neurons reach
    ``target`` per neuron and sample."""
    return count / (n * n_out) >= target


def _mid(lo, hi):
    mid = math.sqrt(lo * hi)
    if not (0.0 < mid < math.inf):  # lo * hi under- or overflowed
        mid = math.sqrt(lo) * math.sqrt(hi)
    return mid


def search_bracket(target: float, low: float, high: float,
                   ratio: float) -> Tuple[float, float, float, float]:
    """The checked (target, low, high, ratio) of a firing-rate search (shared by the event-
    and the dense-mode initialisation)."""
    target = v.positive_float("target", target)
    low = v.positive_float("low", low)
    high = v.positive_float("high", high)
    if high <= low:
        raise ValueError(f"high ({high}) must exceed low ({low})")
    ratio = v.positive_float("ratio", ratio)
    if ratio <= 1:
        raise ValueError(f"ratio must be > 1, got {ratio}")
    return target, low, high, ratio


def bisect(probe: Callable[[float], Tuple[bool, Optional[int]]], low: float, high: float,
           ratio: float, guided: bool = True, guess: Optional[float] = None,
           need: Optional[float] = None, slope: Optional[float] = None
           ) -> Tuple[float, "_Known"]:
    """The geometric bisection of the scale: returns (hi, probes) (``_Known``).

    probe(scale) -> (reaches, count or None): the answer at ``scale`` and the spike count
    when known exactly. Without ``guided`` every step probes its own mid (the plain
    bisection). With ``guided`` a step is answered from earlier probes while their answers
    are ordered (every failing scale below every passing one); else it probes an end of the
    final bracket that the bisection would reach if the count crossed ``need`` at the
    estimated scale (``guess`` until probes give counts; from a single count with the
    log-log ``slope`` of the count), and its own mid when a few such probes did not answer
    it (module docstring)."""
    known = _Known(guided)
    lo, hi = low, high
    for _ in range(MAX_STEPS):
        if hi / lo < ratio:
            break
        mid = _mid(lo, hi)
        if not lo < mid < hi:  # adjacent floats: the bracket cannot shrink further
            break
        tries = 0
        while True:
            ans = known.answer(mid)
            if ans is not None:
                break
            q = mid
            if guided and known.ordered and tries < GUIDED_TRIES:
                tries += 1
                est = known.estimate(guess, need, slope)
                if est is not None:
                    q = known.pick(mid, _final_bracket(known, lo, hi, ratio, est))
            known.add(q, *probe(q))
        if ans:
            hi = mid
        else:
            lo = mid
    return hi, known


#: guided probes per bisection step before the step probes its own mid
GUIDED_TRIES = 3


class _Known:
    """The probed scales of a search: answers, exact counts, whether they are ordered."""

    def __init__(self, guided):
        self.guided = guided
        self.fails, self.passes = {}, {}   # scale -> exact count or None
        self.ordered = True
        self.n = 0

    def add(self, q, reached, count):
        (self.passes if reached else self.fails)[q] = count
        self.n += 1
        if self.fails and self.passes and max(self.fails) >= min(self.passes):
            self.ordered = False

    def answer(self, m):
        """True / False when probed or (guided, ordered) implied by a probe, else None."""
        if m in self.passes:
            return True
        if m in self.fails:
            return False
        if self.guided and self.ordered:
            if self.passes and min(self.passes) <= m:
                return True
            if self.fails and max(self.fails) >= m:
                return False
        return None

    def _points(self):
        return sorted((q, c) for d in (self.fails, self.passes) for q, c in d.items()
                      if c is not None and c > 0)

    def slope(self, need):
        """d log(count) / d log(scale) between the probes closest to the crossing of
        ``need`` (None without two exact positive counts)."""
        pair = self._pair(need)
        if pair is None:
            return None
        (x0, c0), (x1, c1) = pair
        return (math.log(c1) - math.log(c0)) / (math.log(x1) - math.log(x0))

    def _pair(self, need):
        pts = self._points()
        if not need or len(pts) < 2:
            return None
        below = [p for p in pts if p[1] < need]
        above = [p for p in pts if p[1] >= need]
        if below and above:
            pair = below[-1], above[0]
        elif below:
            pair = below[-2], below[-1]
        else:
            pair = above[0], above[1]
        (x0, c0), (x1, c1) = pair
        return pair if c1 > c0 and x1 > x0 else None

    def estimate(self, guess, need, slope=None):
        """The scale where the count crosses ``need``: log(count) linear in log(scale)
        through the closest probes with exact positive counts (one on each side of the
        crossing when there are), or through the one such probe with ``slope``, else
        ``guess``."""
        est = None
        pair = self._pair(need)
        if pair is not None:
            (x0, c0), (x1, c1) = pair
            a, b = math.log(x0), math.log(x1)
            est = math.exp(a + (math.log(need) - math.log(c0)) * (b - a)
                           / (math.log(c1) - math.log(c0)))
            lo, hi = x0 / 4, x1 * 4
        else:
            pts = self._points()
            if need and len(pts) == 1 and slope:
                (x, c), = pts
                est = x * math.exp((math.log(need) - math.log(c)) / slope)
                lo, hi = x / 4, x * 4
        if est is not None and math.isfinite(est) and lo < est < hi:
            return est
        return guess

    def pick(self, mid, bracket):
        """The end of the predicted final bracket that answers ``mid`` if the prediction
        holds (the lower end when mid is below it), when it is not probed yet and lies
        strictly between the closest failing and passing probes; else ``mid``."""
        L, H = bracket
        q = L if mid <= L else H
        f = max(self.fails) if self.fails else 0.0
        p = min(self.passes) if self.passes else math.inf
        return q if f < q < p else mid


def _final_bracket(known, lo, hi, ratio, est):
    """(lo, hi) at the end of the bisection from (lo, hi) if every step not answered by
    the probes answered "reaches" exactly for mids >= est."""
    for _ in range(MAX_STEPS):
        if hi / lo < ratio:
            break
        mid = _mid(lo, hi)
        if not lo < mid < hi:
            break
        ans = known.answer(mid)
        if ans is None:
            ans = mid >= est
        if ans:
            hi = mid
        else:
            lo = mid
    return lo, hi


def init_firing_rate(net: Sequential, inputs: Sequence[SpikeTrains], target: float = 1.0,
                     t_end: Optional[float] = None, low: float = 0.05, high: float = 500.0,
                     ratio: float = 1.01, n_threads: Optional[int] = None, guided: bool = True
                     ) -> Tuple[List[Optional[float]], List[Optional[float]]]:
    """Rescale every weighted layer of ``net`` (in place) so that its neurons fire
    ``target`` spikes per sample on average over ``inputs``.

    Layer by layer from the input side, a geometric bisection over [low, high] finds the
    scale; the events reaching the layer are simulated once (the layers below are final by
    then) and each step simulates this layer alone, stopping as soon as its spikes exceed
    the target count. The search stops when high / low < ``ratio``, or when the bracket
    can no longer be narrowed (adjacent floats). With ``guided`` (default) most steps are
    answered from a few simulated scales near the crossing instead of simulating each mid;
    the scale is the plain bisection's whenever the count does not decrease with the scale
    (module docstring).

    Parameters
    ----------
    net : Sequential (event mode).
    inputs : list of SpikeTrains, a batch of training inputs.
    target : float > 0, mean spike count per neuron and sample.
    t_end : float or None, simulation window in ms (as in training).
    low, high : float, the scale search range (multiples of the current weights).
    ratio : float > 1, stop when high / low < ratio.
    n_threads : int, threads over the samples (default numba's thread count).
    guided : bool, answer steps from earlier simulations (False: simulate every step).

    Returns a list with each layer's scale (None for layers without weight) and the mean
    count reached: (scales, rates).
    """
    net._reject_biases("event mode (init_firing_rate)")
    if not isinstance(inputs, (list, tuple)) or not inputs:
        raise TypeError("inputs must be a non-empty list of SpikeTrains")
    for k, st in enumerate(inputs):
        if not isinstance(st, SpikeTrains):
            raise TypeError(f"inputs[{k}] must be a SpikeTrains, got {type(st).__name__}")
        if st.n_neurons != net.n_in:
            raise ValueError(f"inputs[{k}] has {st.n_neurons} neurons, the network takes {net.n_in}")
    target, low, high, ratio = search_bracket(target, low, high, ratio)
    if t_end is not None:
        t_end = v.positive_float("t_end", t_end)
    t_stop = math.inf if t_end is None else t_end
    if n_threads is None:
        import numba
        n_threads = numba.get_num_threads()
    n_threads = v.positive_int("n_threads", n_threads)
    net._check_weights()
    below = _batch.Events.from_trains(list(inputs))
    scales, rates = [], []
    for li, (layer, nrn) in enumerate(zip(net.layers, net.layer_neurons), start=1):
        if layer.has_weight:
            hi = _layer_scale(layer, nrn, below, t_stop, target, low, high, ratio, n_threads,
                              guided)
            scales.append(hi)
        else:
            scales.append(None)
        # the layer's output at its final weight: the next layer's input
        levels, _ = _batch.simulate_batch(_Single(nrn, layer), below, t_stop, n_threads=n_threads)
        if (guided and layer.has_weight and hi < high
                and not _passes(levels[-1].times.size, target, below.n_samples, layer.n_out)):
            # the count was not monotone where the guided search inferred an answer: the
            # plain bisection decides (module docstring)
            layer.weight = layer.weight / hi
            hi = _layer_scale(layer, nrn, below, t_stop, target, low, high, ratio, n_threads,
                              False)
            scales[-1] = hi
            levels, _ = _batch.simulate_batch(_Single(nrn, layer), below, t_stop,
                                              n_threads=n_threads)
        below = levels[-1]
        rates.append(below.times.size / (below.n_samples * layer.n_out)
                     if layer.has_weight else None)
    return scales, rates


#: samples and bracket ratio of the cheap first search that gives the guided search its
#: first estimate
GUESS_SAMPLES = 4
GUESS_RATIO = 1.05


def _layer_scale(layer, nrn, below, t_end, target, low, high, ratio, n_threads, guided):
    """The scale of one layer (its weight is left at w0 * scale)."""
    w0 = layer.weight.copy()
    n, n_out = below.n_samples, layer.n_out

    def prober(events, cap_factor):
        m = events.n_samples
        cap = _budget(target, m, n_out, cap_factor)

        def probe(scale):
            layer.weight = w0 * scale
            count = _count(nrn, layer, events, t_end, cap, n_threads)
            if count > cap:
                return True, None
            return _passes(count, target, m, n_out), count
        return probe

    if not guided:
        hi, _ = bisect(prober(below, 1), low, high, ratio, guided=False)
    else:
        guess = slope = None
        if n > GUESS_SAMPLES:   # a rough crossing from the first samples (cheap)
            head = _head(below, GUESS_SAMPLES)
            need = target * GUESS_SAMPLES * n_out
            guess, known = bisect(prober(head, 2), low, high, max(ratio, GUESS_RATIO),
                                  guided=True, need=need)
            slope = known.slope(need)
            if guess >= high:
                guess = None
        hi, _ = bisect(prober(below, 4), low, high, ratio, guided=True, guess=guess,
                       need=target * n * n_out, slope=slope)
    layer.weight = w0 * hi
    return hi


def _head(events, m):
    """The first m samples of a batch of Events."""
    e = events.offsets[m]
    return _batch.Events(events.times[:e], events.neurons[:e], events.values[:e],
                         events.offsets[:m + 1], events.n_neurons)


class _Single:
    """A one-layer network of neuron ``nrn`` (None for layers without neurons) for
    ``simulate_batch``."""

    def __init__(self, nrn, layer):
        self.neuron = nrn
        self.layers = [layer]
        self.layer_neurons = [nrn]
