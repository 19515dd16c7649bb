"""Slow, independent oracles for the event engine.

Nothing here calls eventsnn's kernels: membranes are integrated on a fine time grid or
solved in closed form.
"""
import math

import numpy as np


def eps(s, tau_m, tau_s):
    s = np.asarray(s, dtype=float)
    out = tau_m / (tau_m - tau_s) * (np.exp(-np.maximum(s, 0) / tau_m) - np.exp(-np.maximum(s, 0) / tau_s))
    return np.where(s >= 0, out, 0.0)


def grid_single_neuron(in_times, in_weights, tau_m, tau_s, theta, reset, t_end, dt=1e-4):
    """Spike times of one neuron, integrating on a grid of step ``dt`` (ms).

    Full reset: u is recomputed at every grid point from the kernel sum over the inputs
    after the last spike. Membrane reset: the current-based LIF ODE dV/dt = -V/tau_m + I,
    dI/dt = -I/tau_s (I jumps by w/tau_s at an input) is stepped with the exact one-step
    propagator of the linear system. When u passes theta between two grid points the
    spike time is interpolated linearly (error O(dt^2)) and the reset applied from there.
    """
    in_times = np.asarray(in_times, float)
    in_weights = np.asarray(in_weights, float)
    order = np.argsort(in_times, kind="stable")
    in_times, in_weights = in_times[order], in_weights[order]
    n = int(math.ceil(t_end / dt)) + 1
    spikes = []
    kscale = tau_m * tau_s / (tau_m - tau_s)  # V per unit current, integrated kernel scale

    def v_from_current(I, s):  # membrane at offset s after a reset, driven by current I
        return I * kscale * (math.exp(-s / tau_m) - math.exp(-s / tau_s))

    if reset == "full":
        start = -math.inf
        u_prev = 0.0
        for k in range(n):
            t = k * dt
            mask = (in_times > start) & (in_times <= t)
            u = float(np.sum(in_weights[mask] * eps(t - in_times[mask], tau_m, tau_s)))
            if u >= theta:
                t_c = t - dt + dt * (theta - u_prev) / (u - u_prev) if k > 0 else t
                t_c = max(t_c, in_times[mask].min())
                spikes.append(t_c)
                start = t_c
                mask = (in_times > start) & (in_times <= t)
                u = float(np.sum(in_weights[mask] * eps(t - in_times[mask], tau_m, tau_s)))
            u_prev = u
        return np.array(spikes)
    a = math.exp(-dt / tau_m)
    b = math.exp(-dt / tau_s)
    p = kscale * (a - b)
    V = I = 0.0
    e = 0
    for k in range(n):
        t = k * dt
        V_prev = V
        if k > 0:
            V = V * a + I * p
            I = I * b
        while e < in_times.size and in_times[e] <= t:
            frac = t - in_times[e]  # the input arrived frac ms before this grid point
            I += in_weights[e] / tau_s * math.exp(-frac / tau_s)
            V += v_from_current(in_weights[e] / tau_s, frac)
            e += 1
        if V >= theta:
            t_c = t - dt + dt * (theta - V_prev) / (V - V_prev)
            spikes.append(t_c)
            V = v_from_current(I * math.exp((t - t_c) / tau_s), t - t_c)
    return np.array(spikes)


def single_input_crossing(w, tau_m, theta):
    """Closed-form crossing time of w * eps(s) = theta for tau_s = tau_m / 2, where
    eps = 2 (x - x^2), x = exp(-s / tau_m). None if w * max(eps) < theta."""
    disc = 1.0 - 2.0 * theta / w
    if w <= 0 or disc < 0:
        return None
    x = 0.5 * (1.0 + math.sqrt(disc))
    return -tau_m * math.log(x)


def lif_single_pulse_spikes(w, tau_m, theta, t_ref=0.0, t0=0.0):
    """Spike times of a current-based LIF (tau_s = tau_m / 2, membrane reset, refractory
    t_ref) driven by one input of weight w at t0: after each reset at r the remaining current
    acts like a fresh input of weight w exp(-(r - t0)/tau_s) at r, so every spike time is
    closed form."""
    tau_s = tau_m / 2.0
    times = []
    r = t0
    w_eff = w
    while True:
        s = single_input_crossing(w_eff, tau_m, theta)
        if s is None:
            return np.array(times)
        t_k = r + s
        times.append(t_k)
        r = t_k + t_ref
        w_eff = w * math.exp(-(r - t0) / tau_s)
