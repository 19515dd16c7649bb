"""Binary min-heap of pending events on parallel numpy arrays, for use inside numba.

An entry is (time, neuron, version); entries are ordered by (time, neuron). A neuron's
prediction is stale when its version differs from the neuron's current version; stale
entries are skipped when popped rather than searched for and removed.

The heap is a tuple (times, neurons, versions, size) where size is a 1-element int64
array; push may return new, larger arrays, so callers rebind the tuple.
"""
import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def heap_new(capacity):
    cap = max(capacity, 16)
    return (np.empty(cap, np.float64), np.empty(cap, np.int64), np.empty(cap, np.int64),
            np.zeros(1, np.int64))


@njit(cache=True, nogil=True)
def _less(times, neurons, a, b):
    return times[a] < times[b] or (times[a] == times[b] and neurons[a] < neurons[b])


@njit(cache=True, nogil=True)
def _swap(times, neurons, versions, a, b):
    times[a], times[b] = times[b], times[a]
    neurons[a], neurons[b] = neurons[b], neurons[a]
    versions[a], versions[b] = versions[b], versions[a]


@njit(cache=True, nogil=True)
def heap_push(heap, t, neuron, version):
    times, neurons, versions, size = heap
    n = size[0]
    if n == times.size:
        grow = 2 * times.size
        t2 = np.empty(grow, np.float64)
        n2 = np.empty(grow, np.int64)
        v2 = np.empty(grow, np.int64)
        t2[:n] = times[:n]
        n2[:n] = neurons[:n]
        v2[:n] = versions[:n]
        times, neurons, versions = t2, n2, v2
    times[n] = t
    neurons[n] = neuron
    versions[n] = version
    i = n
    while i > 0:
        parent = (i - 1) >> 1
        if _less(times, neurons, i, parent):
            _swap(times, neurons, versions, i, parent)
            i = parent
        else:
            break
    size[0] = n + 1
    return (times, neurons, versions, size)


@njit(cache=True, nogil=True)
def heap_size(heap):
    return heap[3][0]


@njit(cache=True, nogil=True)
def heap_top_time(heap):
    return heap[0][0]


@njit(cache=True, nogil=True)
def heap_pop(heap):
    """Remove the smallest entry and return it as (time, neuron, version)."""
    times, neurons, versions, size = heap
    t, neuron, version = times[0], neurons[0], versions[0]
    n = size[0] - 1
    size[0] = n
    if n > 0:
        times[0], neurons[0], versions[0] = times[n], neurons[n], versions[n]
        i = 0
        while True:
            left = 2 * i + 1
            if left >= n:
                break
            child = left
            right = left + 1
            if right < n and _less(times, neurons, right, left):
                child = right
            if _less(times, neurons, child, i):
                _swap(times, neurons, versions, i, child)
                i = child
            else:
                break
    return t, neuron, version
