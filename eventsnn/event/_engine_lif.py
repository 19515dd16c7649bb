"""numba kernels of the event engine for the LIF neuron without a synaptic current
(:class:`eventsnn.LIF`), one layer at a time.

An input of weighted value w makes the membrane jump by w, which then decays as
exp(-s / tau_m). The membrane can therefore only reach theta at an input time: after all
inputs of one time are applied, every neuron with V >= theta fires at that time and V is
set to 0. A neuron fires at most once per input time. After a spike at t the neuron is
refractory up to r = t + t_ref: inputs at times <= r are lost (V is clamped at 0 and there
is no current to integrate). The reference engine (``reference.py``) implements the same
rule from the kernel sum; tests compare both.
"""
import math

import numpy as np
from numba import njit

from ._engine import _grow, _sorted_output


@njit(cache=True, nogil=True)
def lif_dense_layer(in_t, in_i, in_v, WT, tau_m, theta, t_ref, t_end, max_spikes):
    """Simulate one fully connected LIF layer; WT is the transposed weight (n_in, n_out).

    All membranes share one reference time (the current input time), so one decay factor
    serves every neuron. Returns (spike times, neuron indices, exceeded) sorted by (time,
    neuron); exceeded is True (with the spikes so far) when more than max_spikes spikes
    were due."""
    n_out = WT.shape[1]
    V = np.zeros(n_out)
    r = np.full(n_out, -math.inf)
    out_t = np.empty(64, np.float64)
    out_i = np.empty(64, np.int64)
    n_spk = 0
    n_ev = in_t.size
    t_prev = 0.0
    e = 0
    while e < n_ev and in_t[e] <= t_end:
        t = in_t[e]
        a = math.exp(-(t - t_prev) / tau_m)
        for i in range(n_out):
            V[i] *= a
        while e < n_ev and in_t[e] == t:
            row = WT[in_i[e]]
            val = in_v[e]
            for i in range(n_out):
                V[i] += row[i] * val
            e += 1
        for i in range(n_out):
            if t <= r[i]:
                V[i] = 0.0  # refractory: the input is lost
            elif V[i] >= theta:
                if n_spk >= max_spikes:
                    t_o, i_o = _sorted_output(out_t, out_i, n_spk)
                    return t_o, i_o, True
                out_t, out_i = _grow(out_t, out_i, n_spk)
                out_t[n_spk] = t
                out_i[n_spk] = i
                n_spk += 1
                V[i] = 0.0
                r[i] = t + t_ref
        t_prev = t
    return out_t[:n_spk].copy(), out_i[:n_spk].copy(), False


@njit(cache=True, nogil=True)
def lif_sparse_layer(in_t, in_i, in_v, n_out, indptr, targets, weights, tau_m, theta, t_ref,
                     t_end, max_spikes):
    """Simulate one LIF layer given CSR connectivity: input j reaches
    targets[indptr[j]:indptr[j+1]] with the matching ``weights``. Membranes are updated
    lazily (each at the time of its last input). Returns (spike times, neuron indices,
    exceeded) sorted by (time, neuron)."""
    V = np.zeros(n_out)
    t0 = np.zeros(n_out)
    r = np.full(n_out, -math.inf)
    stamp = np.full(n_out, -1, np.int64)
    touched = np.empty(n_out, np.int64)
    out_t = np.empty(64, np.float64)
    out_i = np.empty(64, np.int64)
    n_spk = 0
    n_ev = in_t.size
    group = 0
    e = 0
    while e < n_ev and in_t[e] <= t_end:
        t = in_t[e]
        n_touch = 0
        while e < n_ev and in_t[e] == t:
            j = in_i[e]
            val = in_v[e]
            for q in range(indptr[j], indptr[j + 1]):
                i = targets[q]
                if t <= r[i]:
                    continue  # refractory: the input is lost
                if t > t0[i]:
                    V[i] *= math.exp(-(t - t0[i]) / tau_m)
                    t0[i] = t
                V[i] += weights[q] * val
                if stamp[i] != group:
                    stamp[i] = group
                    touched[n_touch] = i
                    n_touch += 1
            e += 1
        group += 1
        for q in range(n_touch):
            i = touched[q]
            if V[i] >= theta:
                if n_spk >= max_spikes:
                    t_o, i_o = _sorted_output(out_t, out_i, n_spk)
                    return t_o, i_o, True
                out_t, out_i = _grow(out_t, out_i, n_spk)
                out_t[n_spk] = t
                out_i[n_spk] = i
                n_spk += 1
                V[i] = 0.0
                r[i] = t + t_ref
    t_o, i_o = _sorted_output(out_t, out_i, n_spk)
    return t_o, i_o, False


@njit(cache=True, nogil=True)
def lif_record_membrane(in_t, in_i, in_v, spk_t, spk_i, n_out, indptr, targets, weights,
                        tau_m, t_ref, q_t):
    """Membrane of every neuron at the sorted query times q_t, replaying the inputs and the
    given output spikes (resets). At a query time equal to an input or spike time the value
    before it (the limit from the left) is returned. Returns an array (len(q_t), n_out)."""
    V = np.zeros(n_out)
    t0 = np.zeros(n_out)
    r = np.full(n_out, -math.inf)
    out = np.zeros((q_t.size, n_out))
    e = 0
    k = 0
    for qi in range(q_t.size):
        tq = q_t[qi]
        while True:
            te = in_t[e] if e < in_t.size else math.inf
            tk = spk_t[k] if k < spk_t.size else math.inf
            if min(te, tk) >= tq:
                break
            if te <= tk:  # the inputs of a time come before the spikes they cause
                j = in_i[e]
                for q in range(indptr[j], indptr[j + 1]):
                    i = targets[q]
                    if te <= r[i]:
                        continue
                    if te > t0[i]:
                        V[i] *= math.exp(-(te - t0[i]) / tau_m)
                        t0[i] = te
                    V[i] += weights[q] * in_v[e]
                e += 1
            else:
                i = spk_i[k]
                V[i] = 0.0
                t0[i] = tk
                r[i] = tk + t_ref
                k += 1
        for i in range(n_out):
            out[qi, i] = V[i] * math.exp(-(tq - t0[i]) / tau_m)
    return out


def simulate_lif_layer(layer, w, t, i, val, neuron, t_stop, max_spikes):
    """Run one Dense or Conv2d layer of LIF neurons on its time-sorted input events; ``w``
    is the layer's kernel weight array (``forward.kernel_weights``). Returns (spike times,
    neuron indices, exceeded)."""
    if w.ndim == 2:  # Dense: W.T
        return lif_dense_layer(t, i, val, w, neuron.tau_m, neuron.theta, neuron.t_ref,
                               t_stop, max_spikes)
    indptr, targets, _ = layer.connectivity()
    return lif_sparse_layer(t, i, val, layer.n_out, indptr, targets, w, neuron.tau_m,
                            neuron.theta, neuron.t_ref, t_stop, max_spikes)
