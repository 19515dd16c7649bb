"""Slow, loop-by-loop reference implementations of the dense mode (the test oracles).

Written straight from the formulas (issue 4, Zhu et al. 2022 section 3, ANTLR sections
2-3), one scalar at a time, without sharing code with ``eventsnn.dense``.
"""
import math

import numpy as np

from eventsnn.layers import AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d


# ---------------------------------------------------------------------------------------------
# layer operations
# ---------------------------------------------------------------------------------------------
def _conv_links(layer):
    """All (out index, in index, (co, ci, ky, kx)) links of a Conv2d, by nested loops."""
    C, H, W = layer.in_shape
    Co, Ho, Wo = layer.out_shape
    k, s, p = layer.kernel_size, layer.stride, layer.padding
    links = []
    for co in range(Co):
        for oy in range(Ho):
            for ox in range(Wo):
                o = co * Ho * Wo + oy * Wo + ox
                for ci in range(C):
                    for ky in range(k):
                        for kx in range(k):
                            y = oy * s - p + ky
                            xx = ox * s - p + kx
                            if 0 <= y < H and 0 <= xx < W:
                                links.append((o, ci * H * W + y * W + xx, (co, ci, ky, kx)))
    return links


def _pool_windows(layer):
    """For every pooled unit o, the list of its input indices in row-major window order."""
    C, H, W = layer.in_shape
    _, Ho, Wo = layer.out_shape
    k = layer.kernel_size
    wins = []
    for c in range(C):
        for oy in range(Ho):
            for ox in range(Wo):
                idx = []
                for ky in range(k):
                    for kx in range(k):
                        idx.append(c * H * W + (oy * k + ky) * W + ox * k + kx)
                wins.append(idx)
    return wins


def layer_forward(layer, x, pool_weight=1.0):
    """x (T, B, n_in) -> (T, B, n_out)."""
    T, B, _ = x.shape
    out = np.zeros((T, B, layer.n_out))
    if isinstance(layer, Flatten):
        return x.copy()
    if isinstance(layer, Dense):
        for t in range(T):
            for b in range(B):
                for i in range(layer.n_out):
                    acc = 0.0
                    for j in range(layer.n_in):
                        acc += layer.weight[i, j] * x[t, b, j]
                    out[t, b, i] = acc
        return out
    if isinstance(layer, Conv2d):
        links = _conv_links(layer)
        for t in range(T):
            for b in range(B):
                for o, j, w in links:
                    out[t, b, o] += layer.weight[w] * x[t, b, j]
        return out
    wins = _pool_windows(layer)
    k2 = layer.kernel_size ** 2
    for t in range(T):
        for b in range(B):
            for o, idx in enumerate(wins):
                vals = [x[t, b, j] for j in idx]
                if isinstance(layer, MaxPool2d):
                    out[t, b, o] = pool_weight * max(vals)
                else:
                    out[t, b, o] = pool_weight * sum(vals) / k2
    return out


def layer_backward_input(layer, g, x, pool_weight=1.0):
    T, B, _ = g.shape
    out = np.zeros((T, B, layer.n_in))
    if isinstance(layer, Flatten):
        return g.copy()
    if isinstance(layer, Dense):
        for t in range(T):
            for b in range(B):
                for i in range(layer.n_out):
                    for j in range(layer.n_in):
                        out[t, b, j] += layer.weight[i, j] * g[t, b, i]
        return out
    if isinstance(layer, Conv2d):
        links = _conv_links(layer)
        for t in range(T):
            for b in range(B):
                for o, j, w in links:
                    out[t, b, j] += layer.weight[w] * g[t, b, o]
        return out
    wins = _pool_windows(layer)
    k2 = layer.kernel_size ** 2
    for t in range(T):
        for b in range(B):
            for o, idx in enumerate(wins):
                if isinstance(layer, MaxPool2d):
                    best = idx[0]
                    for j in idx:
                        if x[t, b, j] > x[t, b, best]:
                            best = j
                    out[t, b, best] += pool_weight * g[t, b, o]
                else:
                    for j in idx:
                        out[t, b, j] += pool_weight * g[t, b, o] / k2
    return out


def layer_grad_weight(layer, x, g):
    T, B, _ = x.shape
    out = np.zeros(layer.weight.shape)
    if isinstance(layer, Dense):
        for t in range(T):
            for b in range(B):
                for i in range(layer.n_out):
                    for j in range(layer.n_in):
                        out[i, j] += g[t, b, i] * x[t, b, j]
        return out
    links = _conv_links(layer)
    for t in range(T):
        for b in range(B):
            for o, j, w in links:
                out[w] += g[t, b, o] * x[t, b, j]
    return out


# ---------------------------------------------------------------------------------------------
# neuron forward
# ---------------------------------------------------------------------------------------------
def zhu_eps(tau_m, tau_s, n):
    return [tau_m / (tau_m - tau_s) * ((1 - 1 / tau_m) ** (d + 1) - (1 - 1 / tau_s) ** (d + 1))
            for d in range(n)]


def antlr_eps(a_i, a_v, b_i, b_v, n):
    return [b_i * b_v * sum(a_i ** k * a_v ** (d - k) for k in range(d + 1)) for d in range(n)]


def srm_neuron_forward(c, eps, theta):
    """SRM form (Zhu Eq. 1 / ANTLR Eq. 4): u[t] = sum_{last < t' <= t} c[t'] eps[t - t'].

    c: (T,) currents of one neuron. Returns (spikes, u, du) with
    du[t] = u[t] - u[t-1] (1 - S[t-1])."""
    T = len(c)
    S = np.zeros(T)
    u = np.zeros(T)
    du = np.zeros(T)
    last = -1
    for t in range(T):
        acc = 0.0
        for tp in range(last + 1, t + 1):
            acc += c[tp] * eps[t - tp]
        u[t] = acc
        prev = 0.0 if (t == 0 or S[t - 1] == 1) else u[t - 1]
        du[t] = acc - prev
        if acc >= theta:
            S[t] = 1.0
            last = t
    return S, u, du


def antlr_neuron_forward(c, a_i, a_v, b_i, b_v, theta):
    """RNN form, ANTLR Eq. 1-3 (bias 0). Returns (spikes, V, du)."""
    T = len(c)
    S = np.zeros(T)
    V = np.zeros(T)
    du = np.zeros(T)
    I_prev = 0.0
    V_prev = 0.0
    S_prev = 0.0
    for t in range(T):
        I = a_i * (1 - S_prev) * I_prev + b_i * c[t]
        V[t] = a_v * (1 - S_prev) * V_prev + b_v * I
        du[t] = V[t] - (1 - S_prev) * V_prev
        S[t] = 1.0 if V[t] >= theta else 0.0
        I_prev, V_prev, S_prev = I, V[t], S[t]
    return S, V, du


def keep_current_neuron_forward(c, a_i, a_v, b_i, b_v, theta, reset):
    """Current-keeping resets, one neuron, straight from the recursion:
    I[t] = a_i I[t-1] + b_i c[t];
    "subtract": V[t] = a_v V[t-1] + b_v I[t] - theta S[t-1];
    "membrane": V[t] = a_v (1 - S[t-1]) V[t-1] + b_v I[t].
    Returns (spikes, V, du), du = V[t] minus V[t-1] after its reset."""
    T = len(c)
    S = np.zeros(T)
    V = np.zeros(T)
    du = np.zeros(T)
    I_prev = V_prev = S_prev = 0.0
    for t in range(T):
        I = a_i * I_prev + b_i * c[t]
        if reset == "subtract":
            after = V_prev - theta * S_prev
            V[t] = a_v * V_prev + b_v * I - theta * S_prev
        else:
            after = (1 - S_prev) * V_prev
            V[t] = a_v * (1 - S_prev) * V_prev + b_v * I
        du[t] = V[t] - after
        S[t] = 1.0 if V[t] >= theta else 0.0
        I_prev, V_prev, S_prev = I, V[t], S[t]
    return S, V, du


def subtract_srm_form(c, eps, a_v, theta):
    """Closed form of the subtractive reset: V[t] = sum_{t' <= t} c[t'] eps[t - t']
    - theta sum_{s < t} S[s] a_v^(t - 1 - s) (every input is kept; each spike subtracts
    theta in the next step, decaying with a_v afterwards). Returns (spikes, V)."""
    T = len(c)
    S = np.zeros(T)
    V = np.zeros(T)
    for t in range(T):
        acc = sum(c[tp] * eps[t - tp] for tp in range(t + 1))
        acc -= theta * sum(S[s] * a_v ** (t - 1 - s) for s in range(t))
        V[t] = acc
        S[t] = 1.0 if acc >= theta else 0.0
    return S, V


def keep_current_grad(gs, S, V, neuron, sname, k, reset_path):
    """dL/dc[tau] of one current-keeping neuron by forward-mode sensitivities: for every tau,
    propagate dI[t], dV[t] = d(I, V)[t] / dc[tau] through the recursion (the spikes in the
    reset terms as constants, or with dS = sigma(V) dV when ``reset_path``), then
    dL/dc[tau] = sum_t gs[t] sigma(V[t]) dV[t]. gs, S, V: (T,) of one neuron."""
    T = len(gs)
    a_i, a_v, b_i, b_v, theta = neuron.a_i, neuron.a_v, neuron.b_i, neuron.resolved_b_v(T), neuron.theta
    sig = [surrogate(V[t], theta, sname, k) for t in range(T)]
    out = np.zeros(T)
    for tau in range(T):
        dI = np.zeros(T)
        dV = np.zeros(T)
        dS = np.zeros(T)
        for t in range(T):
            dI[t] = (a_i * dI[t - 1] if t > 0 else 0.0) + (b_i if t == tau else 0.0)
            if t == 0:
                dV[t] = b_v * dI[t]
            elif neuron.reset == "subtract":
                dV[t] = a_v * dV[t - 1] + b_v * dI[t] - theta * dS[t - 1]
            else:
                dV[t] = (a_v * (1 - S[t - 1]) * dV[t - 1] - a_v * V[t - 1] * dS[t - 1]
                         + b_v * dI[t])
            dS[t] = sig[t] * dV[t] if reset_path else 0.0
        out[tau] = sum(gs[t] * sig[t] * dV[t] for t in range(T))
    return out


def network_forward(net, x, neuron, pool_weight=1.0, srm_form=None):
    """Whole network, neuron by neuron. Returns lists (currents, membranes, increments, outputs).

    srm_form: use the SRM sum for both families (True) or each family's own recursion
    (False: Zhu via SRM sum -- its traces are the sum's closed form -- and ANTLR via Eq. 1-3)."""
    T, B, _ = x.shape
    h = x
    cur, mem, inc, outs = [], [], [], []
    for layer in net.layers:
        if layer.has_neurons:
            c = layer_forward(layer, h)
            n = layer.n_out
            S = np.zeros((T, B, n)); U = np.zeros((T, B, n)); D = np.zeros((T, B, n))
            for b in range(B):
                for i in range(n):
                    if getattr(neuron, "reset", "full") != "full":
                        s_, u_, d_ = keep_current_neuron_forward(
                            c[:, b, i], neuron.a_i, neuron.a_v, neuron.b_i, neuron.resolved_b_v(T),
                            neuron.theta, neuron.reset)
                    elif neuron.family == "zhu" or srm_form:
                        eps = (zhu_eps(neuron.tau_m, neuron.tau_s, T) if neuron.family == "zhu"
                               else antlr_eps(neuron.a_i, neuron.a_v, neuron.b_i, neuron.resolved_b_v(T), T))
                        s_, u_, d_ = srm_neuron_forward(c[:, b, i], eps, neuron.theta)
                    else:
                        s_, u_, d_ = antlr_neuron_forward(c[:, b, i], neuron.a_i, neuron.a_v, neuron.b_i,
                                                          neuron.resolved_b_v(T), neuron.theta)
                    S[:, b, i], U[:, b, i], D[:, b, i] = s_, u_, d_
            cur.append(c); mem.append(U); inc.append(D); outs.append(S)
            h = S
        else:
            h = layer_forward(layer, h, pool_weight)
            cur.append(None); mem.append(None); inc.append(None); outs.append(h)
    return cur, mem, inc, outs


# ---------------------------------------------------------------------------------------------
# rules
# ---------------------------------------------------------------------------------------------
def surrogate(u, theta, name, k):
    x = u - theta
    if name == "exp":
        return math.exp(-k * abs(x))
    if name == "fast_sigmoid":
        return 1.0 / (1.0 + k * abs(x)) ** 2
    if name == "triangle":
        return max(0.0, 1.0 - k * abs(x))
    z = k * x  # logistic without overflow for large |z|
    s = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
    return k * s * (1 - s)


def links(layer):
    """(out i, in j, weight index) for Dense and Conv2d."""
    if isinstance(layer, Dense):
        return [(i, j, (i, j)) for i in range(layer.n_out) for j in range(layer.n_in)]
    return _conv_links(layer)


def last_spike_before(S, t):
    """Last step < t with a spike, -1 if none (S: (T,) of one neuron)."""
    for tp in range(t - 1, -1, -1):
        if S[tp]:
            return tp
    return -1


def srm_adjoint(dv, S, kern):
    """ANTLR Eq. 6: dL/dc[tau] = sum_{t_a >= tau, tau > last(t_a)} kern[t_a - tau] dv[t_a]."""
    T = len(dv)
    out = np.zeros(T)
    for tau in range(T):
        for ta in range(tau, T):
            if tau > last_spike_before(S, ta):
                out[tau] += kern[ta - tau] * dv[ta]
    return out


def bptt_neuron(gs, S, u, c, neuron, sname, k):
    """BPTT with reset paths through each family's own recursion; returns dL/dc (T,)."""
    T = len(c)
    theta = neuron.theta
    if neuron.family == "zhu":
        a_m, a_s = 1 - 1 / neuron.tau_m, 1 - 1 / neuron.tau_s
        K = neuron.tau_m / (neuron.tau_m - neuron.tau_s)
        m = np.zeros(T); s = np.zeros(T)
        pm = ps = 0.0
        for t in range(T):
            m[t] = a_m * (pm + c[t]); s[t] = a_s * (ps + c[t])
            pm, ps = (0.0, 0.0) if S[t] else (m[t], s[t])
        lm = ls = 0.0
        dc = np.zeros(T)
        for t in range(T - 1, -1, -1):
            g = gs[t]
            if t < T - 1:
                g += -(a_m * m[t] * lm + a_s * s[t] * ls)
            gu = surrogate(u[t], theta, sname, k) * g
            lm = K * gu + (1 - S[t]) * a_m * lm
            ls = -K * gu + (1 - S[t]) * a_s * ls
            dc[t] = a_m * lm + a_s * ls
        return dc
    a_i, a_v, b_i, b_v = neuron.a_i, neuron.a_v, neuron.b_i, neuron.resolved_b_v(T)
    I = np.zeros(T); V = np.zeros(T)
    pI = pV = 0.0; pS = 0.0
    for t in range(T):
        I[t] = a_i * (1 - pS) * pI + b_i * c[t]
        V[t] = a_v * (1 - pS) * pV + b_v * I[t]
        pI, pV, pS = I[t], V[t], S[t]
    lI = lV = 0.0
    dc = np.zeros(T)
    for t in range(T - 1, -1, -1):
        g = gs[t]
        if t < T - 1:
            g += -(a_v * V[t] * lV + a_i * I[t] * lI)
        gu = surrogate(u[t], theta, sname, k) * g
        lV = gu + (1 - S[t]) * a_v * lV
        lI = b_v * lV + (1 - S[t]) * a_i * lI
        dc[t] = b_i * lI
    return dc


def activation_backward(net, rec, grad_s, sname="exp", k=3.0, reset_path=False):
    """Returns (weight grads, dL/dS per level)."""
    T, B = rec.n_steps, rec.batch_size
    neuron = rec.neuron
    eps = [kernel_at(neuron, T, d) for d in range(T)]  # from the formulas (below)
    L = len(net.layers)
    W = [None] * L
    gl = [None] * (L + 1)
    g = grad_s.copy()
    gl[L] = g
    for l in range(L - 1, -1, -1):
        layer = net.layers[l]
        x = rec.inputs[l]
        if layer.has_neurons:
            S, U = rec.outputs[l], rec.membranes[l]
            dc = np.zeros_like(S)
            for b in range(B):
                for i in range(layer.n_out):
                    if getattr(neuron, "reset", "full") != "full":
                        dc[:, b, i] = keep_current_grad(g[:, b, i], S[:, b, i], U[:, b, i], neuron,
                                                        sname, k, reset_path)
                    elif reset_path:
                        dc[:, b, i] = bptt_neuron(g[:, b, i], S[:, b, i], U[:, b, i],
                                                  rec.currents[l][:, b, i], neuron, sname, k)
                    else:
                        dv = [surrogate(U[t, b, i], neuron.theta, sname, k) * g[t, b, i] for t in range(T)]
                        dc[:, b, i] = srm_adjoint(dv, S[:, b, i], eps)
            W[l] = layer_grad_weight(layer, x, dc)
            g = layer_backward_input(layer, dc, x)
        else:
            g = layer_backward_input(layer, g, x, rec.pool_weight)
        gl[l] = g
    return W, gl


def antlr_backward(net, rec, grad_s, grad_t, lam_act=1.0, lam_tim=1.0, sname="exp", k=3.0,
                   vmin=0.01, clip=None):
    T, B = rec.n_steps, rec.batch_size
    neuron = rec.neuron
    eps_ext = list(neuron.eps(T + 1))
    eps = eps_ext[:T]
    estar = [((eps_ext[kk - 1] if kk >= 1 else 0.0) - eps_ext[kk + 1]) / 2 for kk in range(T)]
    L = len(net.layers)
    W = [None] * L
    gs, r = grad_s.copy(), grad_t.copy()
    for l in range(L - 1, -1, -1):
        layer = net.layers[l]
        x = rec.inputs[l]
        if layer.has_neurons:
            S, U, D = rec.outputs[l], rec.membranes[l], rec.increments[l]
            dca = np.zeros_like(S); dct = np.zeros_like(S)
            for b in range(B):
                for i in range(layer.n_out):
                    dv = []
                    for t in range(T):
                        vp = max(D[t, b, i], vmin)
                        val = lam_act * surrogate(U[t, b, i], neuron.theta, sname, k) * gs[t, b, i] \
                            + lam_tim * S[t, b, i] * r[t, b, i] / (-vp)
                        if clip is not None:
                            val = min(max(val, -clip), clip)
                        dv.append(val)
                    dca[:, b, i] = srm_adjoint(dv, S[:, b, i], eps)
                    dct[:, b, i] = srm_adjoint(dv, S[:, b, i], estar)
            W[l] = layer_grad_weight(layer, x, dca)
            gs = layer_backward_input(layer, dca, x)
            r = layer_backward_input(layer, dct, x)
        else:
            gs = layer_backward_input(layer, gs, x, rec.pool_weight)
            r = layer_backward_input(layer, r, x, rec.pool_weight)
    return W


def timing_backward(net, rec, grad_t, h, max_inv=4.0, factor=1.0, out_spikes=None):
    """Zhu et al. discrete timing rule, spike by spike. Returns (weights, dL/dt per level)."""
    T, B = rec.n_steps, rec.batch_size
    eps = [kernel_at(rec.neuron, T, d) for d in range(T)]  # from the formulas (below)
    L = len(net.layers)
    W = [None] * L
    levels = [None] * (L + 1)
    gt = grad_t * ((out_spikes if out_spikes is not None else rec.outputs[-1]) != 0)
    levels[L] = gt
    for l in range(L - 1, -1, -1):
        layer = net.layers[l]
        x = rec.inputs[l]
        below = np.zeros_like(x)
        if layer.has_neurons:
            S = out_spikes if (l == L - 1 and out_spikes is not None) else rec.outputs[l]
            dW = np.zeros(layer.weight.shape)
            lk = links(layer)
            by_out = {}
            for i, j, w in lk:
                by_out.setdefault(i, []).append((j, w))
            for b in range(B):
                for i in range(layer.n_out):
                    last = -1
                    for t in range(T):
                        if not S[t, b, i]:
                            continue
                        g = gt[t, b, i]
                        window = range(last + 1, t + 1)
                        last = t
                        if g == 0:
                            continue
                        H = sum(layer.weight[w] * x[tp, b, j] * h[t - tp]
                                for tp in window for j, w in by_out.get(i, []))
                        d = rec.increments[l][t, b, i]
                        f = -max_inv if d == 0 else (0.0 if d < 0 else max(-1.0 / d, -max_inv))
                        for tp in window:
                            for j, w in by_out.get(i, []):
                                if H > 0:
                                    below[tp, b, j] += factor * g * layer.weight[w] * x[tp, b, j] * h[t - tp] / H
                                dW[w] += g * f * eps[t - tp] * x[tp, b, j]
            W[l] = dW
        elif isinstance(layer, Flatten):
            below = gt.copy()
        else:
            wins = _pool_windows(layer)
            k2 = layer.kernel_size ** 2
            for t in range(T):
                for b in range(B):
                    for o, idx in enumerate(wins):
                        g = gt[t, b, o]
                        if g == 0:
                            continue
                        if isinstance(layer, MaxPool2d):
                            best = idx[0]
                            for j in idx:
                                if x[t, b, j] > x[t, b, best]:
                                    best = j
                            below[t, b, best] += g
                        else:
                            active = [j for j in idx if x[t, b, j] != 0]
                            for j in active:
                                below[t, b, j] += g / (len(active) if layer.adjusted else k2)
        gt = below
        levels[l] = gt
    return W, levels


# ---------------------------------------------------------------------------------------------
# kernels straight from the formulas (issue 4)
# ---------------------------------------------------------------------------------------------
def zhu_eps_at(tau_m, tau_s, d):
    """eps[d] = tau_m / (tau_m - tau_s) ((1 - 1/tau_m)^(d+1) - (1 - 1/tau_s)^(d+1)); the
    formula itself gives eps[-1] = 0 (no response before the input)."""
    return tau_m / (tau_m - tau_s) * ((1 - 1 / tau_m) ** (d + 1) - (1 - 1 / tau_s) ** (d + 1))


def antlr_raw_kernel_at(a_i, a_v, b_i, d):
    """V[d] after a unit input at step 0 with b_v = 1 (ANTLR Eq. 1-2):
    b_i sum_{k=0..d} a_i^k a_v^(d-k); an empty sum (0) for d < 0."""
    return b_i * sum(a_i ** k * a_v ** (d - k) for k in range(d + 1))


def antlr_b_v(neuron, T):
    """b_v, or (None) 1 / the peak of the b_v = 1 kernel within the window d = 0..T-1."""
    if neuron.b_v is not None:
        return neuron.b_v
    return 1.0 / max(antlr_raw_kernel_at(neuron.a_i, neuron.a_v, neuron.b_i, d) for d in range(T))


def kernel_at(neuron, T, d):
    """PSP kernel eps[d] of a neuron simulated for T steps (ANTLR: b_v resolved for T)."""
    if neuron.family == "zhu":
        return zhu_eps_at(neuron.tau_m, neuron.tau_s, d)
    return antlr_b_v(neuron, T) * antlr_raw_kernel_at(neuron.a_i, neuron.a_v, neuron.b_i, d)


def timing_kernel(neuron, T, kind, tau_grad=2.5):
    """Zhu's backward kernel h[d], d = 0..T-1: "exp" (1 - 1/tau_grad)^(d+1), "original"
    eps[d] - eps[d-1] (eps[-1] from the kernel formula at d = -1)."""
    if kind == "exp":
        return [(1 - 1 / tau_grad) ** (d + 1) for d in range(T)]
    return [kernel_at(neuron, T, d) - kernel_at(neuron, T, d - 1) for d in range(T)]


def antlr_backward_levels(net, rec, grad_s, grad_t, lam_act=1.0, lam_tim=1.0, sname="exp", k=3.0,
                          vmin=0.01, clip=None):
    """ANTLR (Eq. 6-10), neuron by neuron, kernels from the formulas: eps of the forward's
    window and eps*[k] = (eps[k-1] - eps[k+1]) / 2. Returns (weights, dL/dS per level,
    dL/dt per level (per event: S dL/dt, value-weighted), dL/dV per layer)."""
    T, B = rec.n_steps, rec.batch_size
    neuron = rec.neuron
    eps = [kernel_at(neuron, T, d) for d in range(T)]
    estar = [(kernel_at(neuron, T, d - 1) - kernel_at(neuron, T, d + 1)) / 2 for d in range(T)]
    L = len(net.layers)
    W, DV = [None] * L, [None] * L
    GS, GT = [None] * (L + 1), [None] * (L + 1)
    gs, r = grad_s.copy(), grad_t.copy()
    GS[L], GT[L] = gs, r * rec.outputs[-1]
    for l in range(L - 1, -1, -1):
        layer = net.layers[l]
        x = rec.inputs[l]
        if layer.has_neurons:
            S, U, D = rec.outputs[l], rec.membranes[l], rec.increments[l]
            dca = np.zeros_like(S); dct = np.zeros_like(S); dvl = np.zeros_like(S)
            for b in range(B):
                for i in range(layer.n_out):
                    for t in range(T):
                        vp = max(D[t, b, i], vmin)
                        val = lam_act * surrogate(U[t, b, i], neuron.theta, sname, k) * gs[t, b, i] \
                            + lam_tim * S[t, b, i] * r[t, b, i] / (-vp)
                        if clip is not None:
                            val = min(max(val, -clip), clip)
                        dvl[t, b, i] = val
                    dca[:, b, i] = srm_adjoint(dvl[:, b, i], S[:, b, i], eps)
                    dct[:, b, i] = srm_adjoint(dvl[:, b, i], S[:, b, i], estar)
            W[l], DV[l] = layer_grad_weight(layer, x, dca), dvl
            gs = layer_backward_input(layer, dca, x)
            r = layer_backward_input(layer, dct, x)
        else:
            gs = layer_backward_input(layer, gs, x, rec.pool_weight)
            r = layer_backward_input(layer, r, x, rec.pool_weight)
        GS[l], GT[l] = gs, r * x
    return W, GS, GT, DV


# ---------------------------------------------------------------------------------------------
# losses (ANTLR Table 1, Zhu et al.'s count loss), one output neuron at a time
# ---------------------------------------------------------------------------------------------
def count_loss(S, n_target):
    """L = sum_o (sum_tau S_o[tau] - n_o)^2 / T, dL/dS_o[t] = 2 (sum_tau S_o[tau] - n_o) / T,
    dL/dt = 0. Returns (loss (B,), grad_s, grad_t)."""
    T, B, n = S.shape
    loss = np.zeros(B)
    gs = np.zeros(S.shape)
    for b in range(B):
        for o in range(n):
            N = 0.0
            for t in range(T):
                N += S[t, b, o]
            loss[b] += (N - n_target[b, o]) ** 2 / T
            for t in range(T):
                gs[t, b, o] = 2 * (N - n_target[b, o]) / T
    return loss, gs, np.zeros(S.shape)


def kappa(alpha, k):
    """Causal exponential kernel kappa[k] = alpha^k, 0 for k < 0."""
    return alpha ** k if k >= 0 else 0.0


def kappa_star(alpha, k):
    """Approximate time derivative of kappa: (kappa[k+1] - kappa[k-1]) / 2."""
    return (kappa(alpha, k + 1) - kappa(alpha, k - 1)) / 2


def spike_train_loss(S, target, alpha):
    """d_o[tau] = (kappa * S_o)[tau] - (kappa * S_o^tar)[tau], L = sum_o sum_tau d_o[tau]^2,
    dL/dS_o[t] = 2 sum_tau kappa[tau - t] d_o[tau],
    dL/dt_o = -2 sum_tau kappa*[tau - t_o] d_o[tau] at each spike t_o (0 elsewhere)."""
    T, B, n = S.shape
    loss = np.zeros(B)
    gs = np.zeros(S.shape)
    gt = np.zeros(S.shape)
    for b in range(B):
        for o in range(n):
            d = [sum(kappa(alpha, tau - tp) * (S[tp, b, o] - target[tp, b, o]) for tp in range(T))
                 for tau in range(T)]
            loss[b] += sum(v * v for v in d)
            for t in range(T):
                gs[t, b, o] = 2 * sum(kappa(alpha, tau - t) * d[tau] for tau in range(T))
                if S[t, b, o] != 0:
                    gt[t, b, o] = -2 * sum(kappa_star(alpha, tau - t) * d[tau] for tau in range(T))
    return loss, gs, gt


def latency_from_times(t_first, labels, beta):
    """p_o = exp(-beta t_o) / sum_x exp(-beta t_x), L = -log p_label, dL/dt_o = -beta (p_o - y_o)
    for real first-spike times t_first (B, n). Returns (loss (B,), dL/dt (B, n))."""
    B, n = t_first.shape
    loss = np.zeros(B)
    g = np.zeros((B, n))
    for b in range(B):
        e = [math.exp(-beta * t_first[b, o]) for o in range(n)]
        Z = sum(e)
        loss[b] = -math.log(e[labels[b]] / Z)
        for o in range(n):
            g[b, o] = -beta * (e[o] / Z - (1.0 if o == labels[b] else 0.0))
    return loss, g


def first_spike_times(S):
    """First step with S != 0 of every output, T for a silent one. (B, n) floats."""
    T, B, n = S.shape
    out = np.full((B, n), float(T))
    for b in range(B):
        for o in range(n):
            for t in range(T):
                if S[t, b, o] != 0:
                    out[b, o] = t
                    break
    return out


def latency_loss(S, labels, beta=1 / 6, no_spike=1.0):
    """Latency loss on the first spikes (silent outputs at t = T), dL/dt at each output's first
    spike only, plus no_spike (min(N_label, 1) - 1)^2 with dL/dS_label[t] =
    2 no_spike (min(N_label, 1) - 1) (the slope of min(N, 1) below 1)."""
    T, B, n = S.shape
    tf = first_spike_times(S)
    loss, g = latency_from_times(tf, labels, beta)
    gs = np.zeros(S.shape)
    gt = np.zeros(S.shape)
    for b in range(B):
        for o in range(n):
            if tf[b, o] < T:
                gt[int(tf[b, o]), b, o] = g[b, o]
        N = sum(1 for t in range(T) if S[t, b, labels[b]] != 0)
        loss[b] += no_spike * (min(N, 1) - 1) ** 2
        slope = 1.0 if N < 1 else 0.0
        for t in range(T):
            gs[t, b, labels[b]] = 2 * no_spike * (min(N, 1) - 1) * slope
    return loss, gs, gt


def count_time_grads(S, labels, n_true, n_false):
    """Zhu et al.: every spike of output o gets dL/dt = (n_o - N_o) / T (N_o: number of steps
    with S != 0), one-sided: only when the label neuron has N < n_true or another neuron
    N > n_false, else 0. Loss: sum of (n_o - N_o)^2 / (2 T) over those violations (the
    reference's 1/2 sum over T steps of ((N - n)/T)^2).
    Returns (loss (B,), g (B, n), grad_t)."""
    T, B, n = S.shape
    loss = np.zeros(B)
    g = np.zeros((B, n))
    gt = np.zeros(S.shape)
    for b in range(B):
        for o in range(n):
            N = sum(1 for t in range(T) if S[t, b, o] != 0)
            tgt = n_true if o == labels[b] else n_false
            violated = N < tgt if o == labels[b] else N > tgt
            if violated:
                g[b, o] = (tgt - N) / T
                loss[b] += (tgt - N) ** 2 / (2 * T)
            for t in range(T):
                if S[t, b, o] != 0:
                    gt[t, b, o] = g[b, o]
    return loss, g, gt


def supervisory_spikes(S, du, labels, min_increment=0.05, mode="increment"):
    """A silent label neuron gets one spike at the last step with du > min_increment (none if
    no such step), or at the last step (mode "last"). Returns (spikes, added (B,))."""
    T, B, n = S.shape
    out = S.copy()
    added = np.zeros(B, dtype=bool)
    for b in range(B):
        o = labels[b]
        if any(S[t, b, o] != 0 for t in range(T)):
            continue
        chosen = -1
        for t in range(T):
            if mode == "last" or du[t, b, o] > min_increment:
                chosen = t
        if chosen >= 0:
            out[chosen, b, o] = 1.0
            added[b] = True
    return out, added


# ---------------------------------------------------------------------------------------------
# ANTLR neuron with a bias (ANTLR Eq. 1: V[t] = ... + beta_bias V_bias), one neuron at a time
# ---------------------------------------------------------------------------------------------
def antlr_raw_peak(a_i, a_v, b_i, T):
    """max over d = 0..T-1 of the b_v = 1 kernel b_i sum_{k=0..d} a_i^k a_v^(d-k)."""
    return max(b_i * sum(a_i ** k * a_v ** (d - k) for k in range(d + 1)) for d in range(T))


def antlr_scales(neuron, T):
    """(b_v, b_bias) of an AntlrNeuron simulated for T steps: each given value, or (None)
    1 / the peak of the b_v = 1 kernel within the window (the authors' default for both)."""
    peak = antlr_raw_peak(neuron.a_i, neuron.a_v, neuron.b_i, T)
    b_v = neuron.b_v if neuron.b_v is not None else 1.0 / peak
    b_bias = neuron.b_bias if neuron.b_bias is not None else 1.0 / peak
    return b_v, b_bias


def antlr_bias_neuron_forward(c, bias, a_i, a_v, b_i, b_v, b_bias, theta, reset="full"):
    """One ANTLR neuron with a constant bias, straight from the recursion:

    full:     I[t] = a_i (1 - S[t-1]) I[t-1] + b_i c[t]
              V[t] = a_v (1 - S[t-1]) V[t-1] + b_v I[t] + b_bias bias
    subtract: I[t] = a_i I[t-1] + b_i c[t]
              V[t] = a_v V[t-1] + b_v I[t] - theta S[t-1] + b_bias bias
    membrane: I[t] = a_i I[t-1] + b_i c[t]
              V[t] = a_v (1 - S[t-1]) V[t-1] + b_v I[t] + b_bias bias
    S[t] = [V[t] >= theta]. Returns (spikes, V, du), du = V[t] minus V[t-1] after its reset."""
    T = len(c)
    S = np.zeros(T)
    V = np.zeros(T)
    du = np.zeros(T)
    I_prev = V_prev = S_prev = 0.0
    for t in range(T):
        if reset == "full":
            I = a_i * (1 - S_prev) * I_prev + b_i * c[t]
            after = (1 - S_prev) * V_prev
            V[t] = a_v * (1 - S_prev) * V_prev + b_v * I + b_bias * bias
        elif reset == "subtract":
            I = a_i * I_prev + b_i * c[t]
            after = V_prev - theta * S_prev
            V[t] = a_v * V_prev + b_v * I - theta * S_prev + b_bias * bias
        else:
            I = a_i * I_prev + b_i * c[t]
            after = (1 - S_prev) * V_prev
            V[t] = a_v * (1 - S_prev) * V_prev + b_v * I + b_bias * bias
        du[t] = V[t] - after
        S[t] = 1.0 if V[t] >= theta else 0.0
        I_prev, V_prev, S_prev = I, V[t], S[t]
    return S, V, du


def neuron_bias_at(layer, i):
    """Bias of flat neuron i of a layer: Dense bias[i], Conv2d the bias of its channel
    i // (H_out W_out); 0 for a layer without a bias."""
    if layer.bias is None:
        return 0.0
    if isinstance(layer, Conv2d):
        _, Ho, Wo = layer.out_shape
        return layer.bias[i // (Ho * Wo)]
    return layer.bias[i]


def network_forward_bias(net, x, neuron):
    """Whole network of AntlrNeurons (any reset) with the layers' biases, neuron by neuron.
    Returns lists (currents, membranes, increments, outputs) like ``network_forward``."""
    T, B, _ = x.shape
    b_v, b_bias = antlr_scales(neuron, T)
    h = x
    cur, mem, inc, outs = [], [], [], []
    for layer in net.layers:
        if layer.has_neurons:
            c = layer_forward(layer, h)
            n = layer.n_out
            S = np.zeros((T, B, n)); U = np.zeros((T, B, n)); D = np.zeros((T, B, n))
            for b in range(B):
                for i in range(n):
                    S[:, b, i], U[:, b, i], D[:, b, i] = antlr_bias_neuron_forward(
                        c[:, b, i], neuron_bias_at(layer, i), neuron.a_i, neuron.a_v, neuron.b_i, b_v,
                        b_bias, neuron.theta, neuron.reset)
            cur.append(c); mem.append(U); inc.append(D); outs.append(S)
            h = S
        else:
            h = layer_forward(layer, h)
            cur.append(None); mem.append(None); inc.append(None); outs.append(h)
    return cur, mem, inc, outs


def bias_sensitivity(S, a_v, b_bias):
    """dV[t]/dbias of one full-reset neuron with its spikes fixed (SRM form): the bias
    enters V directly at every step of the reset window, so
    dV[t]/dbias = b_bias sum_{tau = last(t) + 1}^{t} a_v^(t - tau)."""
    T = len(S)
    return [b_bias * sum(a_v ** (t - tau) for tau in range(last_spike_before(S, t) + 1, t + 1))
            for t in range(T)]


def bias_grads_from_dv(net, rec, DV, b_bias):
    """dL/dbias per layer = sum over samples, the neurons sharing the bias and steps of
    DV[l][t, b, i] dV[t]/dbias (``bias_sensitivity``); None for layers without a bias."""
    T, B = rec.n_steps, rec.batch_size
    out = [None] * len(net.layers)
    for l, layer in enumerate(net.layers):
        if layer.bias is None:
            continue
        g = np.zeros(layer.bias.shape)
        per = 1
        if isinstance(layer, Conv2d):
            per = layer.out_shape[1] * layer.out_shape[2]
        for b in range(B):
            for i in range(layer.n_out):
                sens = bias_sensitivity(rec.outputs[l][:, b, i], rec.neuron.a_v, b_bias)
                for t in range(T):
                    g[i // per] += DV[l][t, b, i] * sens[t]
        out[l] = g
    return out


def activation_srm_bias_grads(net, rec, grad_s, sname="exp", k=3.0):
    """Bias gradients of the SRM-based activation rule: dL/dV = sigma(V) dL/dS per layer,
    with dL/dS of every level from ``activation_backward``, then ``bias_grads_from_dv``."""
    T = rec.n_steps
    _, gl = activation_backward(net, rec, grad_s, sname, k, reset_path=False)
    DV = [None] * len(net.layers)
    for l, layer in enumerate(net.layers):
        if layer.has_neurons:
            U = rec.membranes[l]
            DV[l] = np.zeros_like(U)
            for t in range(T):
                for b in range(U.shape[1]):
                    for i in range(U.shape[2]):
                        DV[l][t, b, i] = surrogate(U[t, b, i], rec.neuron.theta, sname, k) * gl[l + 1][t, b, i]
    return bias_grads_from_dv(net, rec, DV, antlr_scales(rec.neuron, T)[1])


def antlr_bias_grads(net, rec, grad_s, grad_t, lam_act=1.0, lam_tim=1.0, sname="exp", k=3.0,
                     vmin=0.01, clip=None):
    """Bias gradients of the ANTLR rule: dL/dV of every layer from ``antlr_backward_levels``,
    then sum_t dL/dV[t] dV[t]/dbias over the reset windows (``bias_grads_from_dv``)."""
    _, _, _, DV = antlr_backward_levels(net, rec, grad_s, grad_t, lam_act, lam_tim, sname, k, vmin, clip)
    return bias_grads_from_dv(net, rec, DV, antlr_scales(rec.neuron, rec.n_steps)[1])
