"""Numba forward kernels of the full-reset neuron families (see ``neurons.py``).

Kernels take the input currents ``c`` of one layer as a (T, N) array (N = batch x neurons,
time-major, C-contiguous) and return float64 arrays of the same shape. They trust their
inputs; ``forward.run`` validates.
"""
import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def zhu_forward(c, a_m, a_s, scale, theta):
    """Zhu et al. code: traces m, s; returns (spikes, u, du)."""
    T, N = c.shape
    spikes = np.zeros((T, N))
    u_out = np.empty((T, N))
    du = np.empty((T, N))
    m = np.zeros(N)
    s = np.zeros(N)
    prev = np.zeros(N)  # u[t-1] (1 - S[t-1])
    for t in range(T):
        for j in range(N):
            mj = (m[j] + c[t, j]) * a_m
            sj = (s[j] + c[t, j]) * a_s
            u = (mj - sj) * scale
            u_out[t, j] = u
            du[t, j] = u - prev[j]
            if u >= theta:
                spikes[t, j] = 1.0
                m[j] = 0.0
                s[j] = 0.0
                prev[j] = 0.0
            else:
                m[j] = mj
                s[j] = sj
                prev[j] = u
    return spikes, u_out, du


@njit(cache=True, nogil=True)
def antlr_forward(c, a_i, a_v, b_i, b_v, theta, bias, b_bias):
    """ANTLR Eq. 1-3 with the bias term: I[t] = a_i (1 - S[t-1]) I[t-1] + b_i c[t],
    V[t] = a_v (1 - S[t-1]) V[t-1] + b_v I[t] + b_bias bias; ``bias`` (N,) per flat neuron
    (zeros: no bias). Returns (spikes, V, du) with du = V[t] - (1-S[t-1]) V[t-1]
    (unclamped)."""
    T, N = c.shape
    spikes = np.zeros((T, N))
    v_out = np.empty((T, N))
    du = np.empty((T, N))
    cur = np.zeros(N)
    pot = np.zeros(N)
    keep = np.ones(N)  # 1 - S[t-1]
    for t in range(T):
        for j in range(N):
            i_new = a_i * keep[j] * cur[j] + b_i * c[t, j]
            prev = keep[j] * pot[j]
            v_new = a_v * prev + b_v * i_new + b_bias * bias[j]
            cur[j] = i_new
            pot[j] = v_new
            v_out[t, j] = v_new
            du[t, j] = v_new - prev
            if v_new >= theta:
                spikes[t, j] = 1.0
                keep[j] = 0.0
            else:
                keep[j] = 1.0
    return spikes, v_out, du


@njit(cache=True, nogil=True)
def antlr_keep_current_forward(c, a_i, a_v, b_i, b_v, theta, subtract, bias, b_bias):
    """Current-keeping resets of the ANTLR neuron: I[t] = a_i I[t-1] + b_i c[t] and
    V[t] = a_v V[t-1] + b_v I[t] - theta S[t-1] + b_bias bias (``subtract``) or
    V[t] = a_v (1 - S[t-1]) V[t-1] + b_v I[t] + b_bias bias (membrane reset); ``bias`` (N,)
    per flat neuron (zeros: no bias). Returns (spikes, V, du), du = V[t] - (V[t-1] after
    its reset)."""
    T, N = c.shape
    spikes = np.zeros((T, N))
    v_out = np.empty((T, N))
    du = np.empty((T, N))
    cur = np.zeros(N)
    pot = np.zeros(N)  # V[t-1] (before its reset)
    fired = np.zeros(N)  # S[t-1]
    for t in range(T):
        for j in range(N):
            i_new = a_i * cur[j] + b_i * c[t, j]
            if subtract:
                post = pot[j] - theta * fired[j]
                v_new = a_v * pot[j] + b_v * i_new - theta * fired[j] + b_bias * bias[j]
            else:
                post = (1.0 - fired[j]) * pot[j]
                v_new = a_v * post + b_v * i_new + b_bias * bias[j]
            cur[j] = i_new
            pot[j] = v_new
            v_out[t, j] = v_new
            du[t, j] = v_new - post
            if v_new >= theta:
                spikes[t, j] = 1.0
                fired[j] = 1.0
            else:
                fired[j] = 0.0
    return spikes, v_out, du
