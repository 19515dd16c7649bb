"""Indexed binary min-heap of pending threshold crossings, on parallel numpy arrays, for
use inside numba.

Each neuron has at most one entry: its predicted next crossing time. New input replaces
the prediction in place (the entry moves up or down the heap), so the heap never holds
stale entries, never grows beyond the number of neurons and never reallocates. (A heap of
versioned entries, skipping stale ones when popped, grows with every input event instead.)
Entries are ordered by (time, neuron).

The heap is a tuple (key, heap, pos, size): key[i] is neuron i's crossing time, heap[k] the
neuron in slot k, pos[i] the slot of neuron i (-1 when absent), size a 1-element array.
"""
import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def heap_new(n):
    return (np.full(n, np.inf), np.empty(n, np.int64), np.full(n, -1, np.int64),
            np.zeros(1, np.int64))


@njit(cache=True, nogil=True, inline="always")
def _before(key, a, b):
    return key[a] < key[b] or (key[a] == key[b] and a < b)


@njit(cache=True, nogil=True, inline="always")
def _place(heap, pos, k, i):
    heap[k] = i
    pos[i] = k


@njit(cache=True, nogil=True, inline="always")
def _sift_up(key, heap, pos, k):
    i = heap[k]
    while k > 0:
        parent = (k - 1) >> 1
        p = heap[parent]
        if _before(key, i, p):
            _place(heap, pos, k, p)
            k = parent
        else:
            break
    _place(heap, pos, k, i)


@njit(cache=True, nogil=True, inline="always")
def _sift_down(key, heap, pos, k, n):
    i = heap[k]
    while True:
        child = 2 * k + 1
        if child >= n:
            break
        if child + 1 < n and _before(key, heap[child + 1], heap[child]):
            child += 1
        c = heap[child]
        if _before(key, c, i):
            _place(heap, pos, k, c)
            k = child
        else:
            break
    _place(heap, pos, k, i)


@njit(cache=True, nogil=True, inline="always")
def heap_set(h, i, t):
    """Insert neuron i with time t, or move its entry to time t."""
    key, heap, pos, size = h
    if pos[i] < 0:
        n = size[0]
        key[i] = t
        _place(heap, pos, n, i)
        size[0] = n + 1
        _sift_up(key, heap, pos, n)
        return
    old = key[i]
    key[i] = t
    if t < old:
        _sift_up(key, heap, pos, pos[i])
    else:
        _sift_down(key, heap, pos, pos[i], size[0])


@njit(cache=True, nogil=True, inline="always")
def heap_remove(h, i):
    """Remove neuron i's entry if it has one."""
    key, heap, pos, size = h
    k = pos[i]
    if k < 0:
        return
    n = size[0] - 1
    size[0] = n
    pos[i] = -1
    key[i] = np.inf
    if k == n:
        return
    last = heap[n]
    _place(heap, pos, k, last)
    _sift_up(key, heap, pos, k)
    _sift_down(key, heap, pos, pos[last], n)


@njit(cache=True, nogil=True, inline="always")
def heap_size(h):
    return h[3][0]


@njit(cache=True, nogil=True, inline="always")
def heap_top(h):
    """(time, neuron) of the earliest entry; the heap must not be empty."""
    i = h[1][0]
    return h[0][i], i


@njit(cache=True, nogil=True, inline="always")
def heap_pop(h):
    """Remove and return the earliest entry as (time, neuron)."""
    t, i = heap_top(h)
    heap_remove(h, i)
    return t, i
