"""Event-mode losses on output spike trains, as spike-time gradients.

Each loss takes the output SpikeTrains of one sample (``rec.spikes[-1]``) and returns
``(loss, grad_out)`` with ``grad_out[k] = dL/dt_k`` aligned with the output's ``times``, ready
for :meth:`eventsnn.Sequential.backward`. Times in ms. (Dense-mode losses live in
``eventsnn.dense.losses``.)

- :func:`count_loss`: the counting loss of Zhu et al. turned into spike-time gradients as
  their code does, with the optional supervisory spike (:func:`with_supervisory_spike`).
- :func:`time_mse_loss`: squared error between spike times and target times.
- :func:`first_spike_loss`: softmax cross-entropy on first-spike times (latency code).
"""
from __future__ import annotations

import math

import numpy as np

from . import _validate as v
from .event.forward import Record
from .spikes import SpikeTrains
from typing import TYPE_CHECKING, Optional, Sequence, Tuple, Union

from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from .event.batch import Events


def _check_out(out: object) -> SpikeTrains:
    if isinstance(out, Record):
        out = out.spikes[-1]
    if not isinstance(out, SpikeTrains):
        raise TypeError(f"out must be a SpikeTrains (or a Record), got {type(out).__name__}")
    return out


def _check_label(label, n):
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
        raise TypeError(f"label must be an integer, got {type(label).__name__}")
    if not 0 <= int(label) < n:
        raise ValueError(f"label must lie in [0, {n}), got {label}")
    return int(label)


def _finite_result(loss: float, grad: np.ndarray, what: str) -> Tuple[float, np.ndarray]:
    """Finite input can still overflow (e.g. a window of 1e-320 ms): say so instead of
    returning inf or NaN."""
    if not (np.isfinite(loss) and np.all(np.isfinite(grad))):
        raise ValueError(f"{what}: the loss or its gradient overflows float64")
    return loss, grad


def count_loss(out: Union[SpikeTrains, Record], label: int, t_window: float, desired: int = 5,
               undesired: int = 1) -> Tuple[float, np.ndarray]:
    """Counting loss with one-sided targets, as spike-time gradients (Zhu et al. 2022).

    With N_o the spike count of output neuron o and n_o its target (``desired`` for the
    label neuron, ``undesired`` for the others), delta_o = (N_o - n_o) / t_window, set to 0
    when the label neuron fires at least ``desired`` times (the desired count is a floor)
    or another neuron fires at most ``undesired`` times (a ceiling).

    loss = 1/2 sum_o delta_o^2;  every spike of o gets dL/dt = -delta_o = (n_o - N_o) /
    t_window (reference code): too few spikes -> positive gradient -> descent moves the
    spikes earlier, which makes room for more.

    Parameters
    ----------
    out : SpikeTrains (or Record: its output)
    label : int, the correct class (output neuron).
    t_window : float, the simulated window T in ms (> 0).
    desired, undesired : float, target counts.

    Returns (loss, grad_out).
    """
    out = _check_out(out)
    label = _check_label(label, out.n_neurons)
    T = v.positive_float("t_window", t_window)
    desired = v.finite_float("desired", desired)
    undesired = v.finite_float("undesired", undesired)
    counts = out.counts().astype(float)
    target = np.full(out.n_neurons, undesired)
    target[label] = desired
    with np.errstate(over="ignore", invalid="ignore"):
        delta = (counts - target) / T
    mask = np.ones(out.n_neurons, bool)
    mask[label] = False
    delta[(~mask) & (delta > 0)] = 0.0
    delta[mask & (delta < 0)] = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        loss = 0.5 * float(np.sum(delta ** 2))
    return _finite_result(loss, -delta[out.neurons],
                          f"t_window={T} ms with targets ({desired}, {undesired}) is out of range")


def with_supervisory_spike(rec: Record, label: int, t: float) -> Record:
    """A copy of ``rec`` whose output holds one more spike of neuron ``label`` at time ``t``
    (ms): Zhu et al.'s supervisory signal, forcing the label neuron to fire at the end of
    the window so that its count gradient reaches the network even when it is silent.

    The backward pass treats it like any spike: its window is the inputs after the
    neuron's last real spike, up to ``t``. Nothing is added if the neuron already fired at
    ``t``."""
    if not isinstance(rec, Record):
        raise TypeError(f"rec must be a Record, got {type(rec).__name__}")
    out = rec.spikes[-1]
    label = _check_label(label, out.n_neurons)
    t = v.positive_float("t", t, allow_zero=True)
    if np.any((out.times == t) & (out.neurons == label)):
        return rec
    if out.times.size and out.times[out.neurons == label].max(initial=-np.inf) > t:
        raise ValueError(f"the label neuron fired after t={t} ms: the supervisory spike must "
                         "come at the end of the window")
    times = np.append(out.times, t)
    neurons = np.append(out.neurons, label)
    order = np.lexsort((neurons, times))
    new_out = SpikeTrains._trusted(times[order], neurons[order], np.ones(times.size), out.n_neurons)
    return Record(spikes=list(rec.spikes[:-1]) + [new_out], t_end=rec.t_end,
                  record_times=rec.record_times, membrane=rec.membrane, relays=rec.relays)


def time_mse_loss(out: Union[SpikeTrains, Record], targets: ArrayLike) -> Tuple[float, np.ndarray]:
    """Squared error of spike times: L = 1/2 sum_k (t_k - c_{n_k, r_k})^2.

    ``targets`` is an array (n_neurons, m) of target times in ms: the r-th spike (in time
    order) of neuron n is pulled toward ``targets[n, r]``; NaN entries, and spikes beyond
    the m-th, have no target (no gradient). Returns (loss, grad_out = t_k - c)."""
    out = _check_out(out)
    c = v.float_array("targets", targets, ndim=2, finite=False)
    if c.shape[0] != out.n_neurons:
        raise ValueError(f"targets must have one row per output neuron ({out.n_neurons}), "
                         f"got shape {c.shape}")
    if np.any(np.isinf(c)):
        raise ValueError("targets must be finite or NaN (no inf)")
    rank = np.zeros(out.n_neurons, np.int64)
    grad = np.zeros(len(out))
    for k, n in enumerate(out.neurons):
        r = rank[n]
        rank[n] += 1
        if r < c.shape[1] and not np.isnan(c[n, r]):
            grad[k] = out.times[k] - c[n, r]
    with np.errstate(over="ignore", invalid="ignore"):
        loss = 0.5 * float(np.sum(grad ** 2))
    return _finite_result(loss, grad, "targets too far from the spike times")


def first_spike_loss(out: Union[SpikeTrains, Record], label: int, tau: float = 1.0,
                     t_silent: Optional[float] = None) -> Tuple[float, np.ndarray]:
    """Softmax cross-entropy on first-spike times (latency code; earliest neuron wins).

    With t_o the first spike of neuron o (``t_silent`` ms if it is silent; default: the
    latest spike time in the output + tau, or tau if the output is empty) and
    p = softmax(-t / tau): L = -log p_label; the first spike of o gets
    dL/dt_o = (y_o - p_o) / tau. Silent neurons and later spikes get no gradient.
    tau is a temperature in ms. Returns (loss, grad_out)."""
    out = _check_out(out)
    label = _check_label(label, out.n_neurons)
    tau = v.positive_float("tau", tau)
    if t_silent is None:
        t_silent = (out.times.max() if len(out) else 0.0) + tau
    t_silent = v.finite_float("t_silent", t_silent)
    first = out.first_times(fill=t_silent)
    with np.errstate(over="ignore", invalid="ignore"):
        z = -first / tau
        z = z - z.max()
        p = np.exp(z) / np.sum(np.exp(z))
    if not np.all(np.isfinite(p)):
        raise ValueError(f"tau={tau} ms is too small for spike times up to {first.max()} ms: "
                         "the softmax overflows float64")
    loss = float(-math.log(max(p[label], 1e-300)))
    y = np.zeros(out.n_neurons)
    y[label] = 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        g_neuron = (y - p) / tau
    grad = np.zeros(len(out))
    seen = np.zeros(out.n_neurons, bool)
    for k, n in enumerate(out.neurons):
        if not seen[n]:
            seen[n] = True
            grad[k] = g_neuron[n]
    return _finite_result(loss, grad, f"tau={tau} ms is too small")


def predict_counts(out: Union[SpikeTrains, Sequence[SpikeTrains]]) -> Union[int, np.ndarray]:
    """Class with the most output spikes; ties go to the earliest first spike, then the
    lowest index. ``out`` is a SpikeTrains or a list of them (-> int array)."""
    if isinstance(out, (list, tuple)):
        return np.array([predict_counts(o) for o in out], dtype=np.int64)
    out = _check_out(out)
    counts = out.counts()
    first = out.first_times(fill=np.inf)
    best = np.flatnonzero(counts == counts.max())
    return int(best[np.argmin(first[best])])


# ---- batched forms (one call per mini-batch; equal to the per-sample functions) ------------
def _batch_labels(out, labels):
    from .event.batch import Events

    if not isinstance(out, Events):
        raise TypeError(f"out must be an eventsnn.event.batch.Events, got {type(out).__name__}")
    y = np.asarray(labels)
    if y.shape != (out.n_samples,) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be {out.n_samples} integers, one per sample")
    if y.size and (y.min() < 0 or y.max() >= out.n_neurons):
        raise ValueError(f"labels must lie in [0, {out.n_neurons})")
    return y.astype(np.int64)


def count_loss_batch(out: Events, labels: ArrayLike, t_window: float, desired: int = 5,
                     undesired: int = 1) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`count_loss` of every sample of a batch ``out`` (``eventsnn.event.batch.Events``).

    Returns (losses: array (n,), grad_out: dL/dt of every event of ``out``, aligned with
    ``out.times``)."""
    y = _batch_labels(out, labels)
    T = v.positive_float("t_window", t_window)
    desired = v.finite_float("desired", desired)
    undesired = v.finite_float("undesired", undesired)
    n, m = out.n_samples, out.n_neurons
    target = np.full((n, m), undesired)
    target[np.arange(n), y] = desired
    with np.errstate(over="ignore", invalid="ignore"):
        delta = (out.counts().astype(float) - target) / T
    is_label = np.zeros((n, m), bool)
    is_label[np.arange(n), y] = True
    delta[is_label & (delta > 0)] = 0.0
    delta[~is_label & (delta < 0)] = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        losses = 0.5 * np.sum(delta ** 2, axis=1)
    grad = -delta[out.sample_of_event(), out.neurons]
    _finite_result(float(np.sum(np.abs(losses))), grad,
                   f"t_window={T} ms with targets ({desired}, {undesired}) is out of range")
    return losses, grad


def first_spike_loss_batch(out: Events, labels: ArrayLike, tau: float = 1.0,
                           t_silent: Optional[float] = None) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`first_spike_loss` of every sample of a batch ``out``; ``t_silent`` (ms) is
    required here (the window end). Returns (losses (n,), grad_out aligned with out.times)."""
    y = _batch_labels(out, labels)
    tau = v.positive_float("tau", tau)
    t_silent = v.finite_float("t_silent", t_silent)
    n, m = out.n_samples, out.n_neurons
    first = out.first_times(fill=t_silent)
    with np.errstate(over="ignore", invalid="ignore"):
        z = -first / tau
        z = z - z.max(axis=1, keepdims=True)
        ez = np.exp(z)
        p = ez / np.sum(ez, axis=1, keepdims=True)
    if not np.all(np.isfinite(p)):
        raise ValueError(f"tau={tau} ms is too small for spike times up to {first.max()} ms: "
                         "the softmax overflows float64")
    losses = np.array([-math.log(max(q, 1e-300)) for q in p[np.arange(n), y]])  # as per sample
    onehot = np.zeros((n, m))
    onehot[np.arange(n), y] = 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        g_neuron = (onehot - p) / tau
    s_of = out.sample_of_event()
    key = s_of * m + out.neurons
    is_first = np.zeros(key.size, bool)
    if key.size:
        _, first_idx = np.unique(key, return_index=True)
        is_first[first_idx] = True
    grad = np.where(is_first, g_neuron[s_of, out.neurons], 0.0)
    _finite_result(float(np.sum(losses)), grad, f"tau={tau} ms is too small")
    return losses, grad


def predict_counts_batch(out: Events) -> np.ndarray:
    """:func:`predict_counts` of every sample of a batch ``out`` (int array (n,))."""
    counts = out.counts()
    first = out.first_times(fill=np.inf)
    best = counts == counts.max(axis=1, keepdims=True)
    return np.argmin(np.where(best, first, np.inf), axis=1).astype(np.int64)


def time_mse_first_batch(out: Events, labels: ArrayLike, t_true: float,
                         t_false: float) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`time_mse_loss` of every sample of a batch with one target per neuron, for its
    first spike: ``t_true`` ms for the label neuron, ``t_false`` ms for the others (later
    spikes get no gradient). Returns (losses (n,), grad_out aligned with out.times)."""
    y = _batch_labels(out, labels)
    t_true = v.finite_float("t_true", t_true)
    t_false = v.finite_float("t_false", t_false)
    m = out.n_neurons
    s_of = out.sample_of_event()
    key = s_of * m + out.neurons
    is_first = np.zeros(key.size, bool)
    if key.size:
        _, first_idx = np.unique(key, return_index=True)
        is_first[first_idx] = True
    target = np.where(out.neurons == y[s_of], t_true, t_false)
    with np.errstate(over="ignore", invalid="ignore"):
        grad = np.where(is_first, out.times - target, 0.0)
        sq = grad ** 2
    o = out.offsets
    losses = np.array([0.5 * float(np.sum(sq[o[s]:o[s + 1]])) for s in range(out.n_samples)])
    _finite_result(float(np.sum(losses)), grad, "targets too far from the spike times")
    return losses, grad
