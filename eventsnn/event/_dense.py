"""Dispatch of a Dense layer's simulation between ``_engine.dense_layer`` (the window
kernel: per input event a multiply-add into every neuron's traces) and
``_grouped.grouped_dense_layer`` (the group-interval kernel: per group of coincident
inputs a matvec, reused for repeated frames, and a screen of every neuron), by a cost model
on the input times, as ``_conv.run_conv`` does for Conv2d."""
import numpy as np
from numba import njit

from . import _engine
from ._conv import _grouped_cheaper
from ._grouped import grouped_dense_layer

#: ``run_dense`` takes the group-interval kernel when the input has at least this many
#: events per group of coincident inputs on average. Per neuron, the window kernel costs a
#: multiply-add pair per event plus the replays of flagged neurons, the grouped kernel a
#: screen per group: at 5 groups of 2 events into 100 neurons the grouped kernel took 0.41x
#: the window kernel's time (0.38x on the digits' 164 events in 5 groups), at one event
#: per group (the digits' second layer) 1.1x (benchmarks/dense_kernels.py)
GROUPED_DENSE_EVENTS = 2

KERNELS = ("auto", "window", "grouped")


def prefers_grouped_dense(n_out, t, t_end):
    """True when the cost model picks the group-interval kernel for the input times ``t``
    (sorted, ms) of a Dense layer of ``n_out`` neurons: groups x n_out <= events x n_out /
    GROUPED_DENSE_EVENTS (a Dense input's fan-out is n_out), so never for groups of one
    event (the boundary cases of tests/test_engine_oracles.py stay on the window kernel)."""
    return _grouped_cheaper(t, float(t_end), n_out, n_out, 1.0 / GROUPED_DENSE_EVENTS)


@njit(cache=True, nogil=True)
def _picks(t, off, n_out, t_end, ratio):
    pick = np.zeros(off.size - 1, np.bool_)
    for s in range(off.size - 1):
        pick[s] = _grouped_cheaper(t[off[s]:off[s + 1]], t_end, n_out, n_out, ratio)
    return pick


def grouped_samples(t, off, n_out, t_end):
    """``prefers_grouped_dense`` for every sample of a batch at once (sample s owns the
    sorted times t[off[s]:off[s + 1]], ms): a bool array, one numba call per batch."""
    return _picks(t, off, n_out, float(t_end), 1.0 / GROUPED_DENSE_EVENTS)


def run_dense(WT, t, i, v, tau_m, tau_s, theta, membrane_reset, t_ref, t_end, max_spikes,
              kernel="auto", n_threads=1):
    """Simulate a Dense layer with its transposed weight WT (n_in, n_out), C-contiguous:
    ``_engine.dense_layer`` (``dense_layer_threads`` with ``n_threads`` > 1) or
    ``_grouped.grouped_dense_layer``, as ``kernel`` says ("window", "grouped"); "auto" asks
    the cost model (``prefers_grouped_dense``), which looks at the input only, so the result
    is the same for every thread count (the grouped kernel runs on one thread). Both give
    the same spikes to the crossing solver's tolerance. Returns (times, neurons, exceeded)."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    if kernel == "grouped" or (kernel == "auto"
                               and prefers_grouped_dense(WT.shape[1], t, t_end)):
        return grouped_dense_layer(t, i, v, WT, tau_m, tau_s, theta, membrane_reset, t_ref,
                                   t_end, max_spikes)
    if n_threads > 1:
        return _engine.dense_layer_threads(t, i, v, WT, tau_m, tau_s, theta, membrane_reset,
                                           t_ref, t_end, max_spikes, n_threads)
    return _engine.dense_layer(t, i, v, WT, tau_m, tau_s, theta, membrane_reset, t_ref, t_end,
                               max_spikes)
