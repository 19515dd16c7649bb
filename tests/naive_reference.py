"""Slow re-implementations of the authors' codes' formulas, written step by step from the
reference code (read, not copied: plain loops over numpy scalars, our names), to pin
eventsnn's reference-fidelity options (docs/fidelity.md).

- Zhu et al. (zhuyaoyu/SNN-event-driven-learning @ 6cff83b): layers/functions.py
  (neuron_forward_py, neuron_backward_py, initialize), layers/linear.py (LinearFunc with
  the supervisory signal), layers/losses.py (loss_count).
- ANTLR (KyungsuKim42/ANTLR @ 229983f): antlr.py (_init_kernels, calc_loss,
  backward_custom, prop_dLdI_to_dLdW's timing penalty), mnist.py defaults.
- NA (superrrpotato/Backpropagated-Neighborhood-Aggregation-... @ bf8b564):
  functions/na.py (NA.backward), neighbors.py (get_loss, update_norm), and its
  Compare_experiment.ipynb (2021-02-11).
- TSSL-BP (stonezwr/TSSL-BP @ ffaac71): functions/loss_f.py (psp, loss_kernel), main.py.
"""
import math

import numpy as np


# ---- Zhu et al. ---------------------------------------------------------------------------
def zhu_forward(I, tau_m, tau_s, tau_grad, theta):
    """neuron_forward_py, leaky forward, exponential gradient type. I: (T, N).
    Returns (delta_u, delta_u_t, outputs), each (T, N)."""
    T, N = I.shape
    tm, ts, tg = 1.0 / tau_m, 1.0 / tau_s, 1.0 / tau_grad
    du = np.zeros((T, N))
    dut = np.zeros((T, N))
    out = np.zeros((T, N))
    for i in range(N):
        m = s = gr = 0.0
        u_last = 0.0
        for t in range(T):
            m = (m + I[t, i]) * (1 - tm)
            s = (s + I[t, i]) * (1 - ts)
            gr = (gr + I[t, i]) * (1 - tg)
            u = (m - s) * ts / (ts - tm)
            du[t, i] = u - u_last
            dut[t, i] = gr
            o = 1.0 if u >= theta else 0.0
            u_last = u * (1 - o)
            m *= 1 - o
            s *= 1 - o
            gr *= 1 - o
            out[t, i] = o
    return du, dut, out


def zhu_supervisory(outputs, delta_u, labels):
    """LinearFunc.forward with labels: in every sample, i1 = the last step with
    delta_u > 0.05 of the label neuron (step 0 if none); outputs[i1] = (delta_u[i1] != 0).
    outputs, delta_u: (T, B, n)."""
    out = outputs.copy()
    T = out.shape[0]
    for b, lab in enumerate(labels):
        best, i1 = 0, 0
        for t in range(T):
            key = (t + 1) * (1.0 if delta_u[t, b, lab] > 0.05 else 0.0)
            if key > best:  # torch.max returns the first maximal index
                best, i1 = key, t
        out[i1, b, lab] = 1.0 if delta_u[i1, b, lab] != 0 else 0.0
    return out


def zhu_count_loss(outputs, labels, desired, undesired):
    """loss_count + spike_count: per sample 1/2 sum_t sum_o delta^2, delta = (N - n)/T masked;
    the gradient fed to the output layer (loss_reverse: sign -1), (T, B, n)."""
    T, B, n = outputs.shape
    loss = np.zeros(B)
    grad = np.zeros(outputs.shape)
    for b in range(B):
        for o in range(n):
            target = desired if o == labels[b] else undesired
            N = sum(outputs[t, b, o] for t in range(T))
            delta = (N - target) / T
            if (target == desired and delta > 0) or (target == undesired and delta < 0):
                delta = 0.0
            for t in range(T):
                loss[b] += 0.5 * delta ** 2
                grad[t, b, o] = -delta
    return loss, grad


def zhu_kernels(T, tau_m, tau_s, tau_grad):
    """global_v.init: syn_a (the forward kernel) and delta_syn_a (exponential), (T + 1,)."""
    tm, ts, tg = 1.0 / tau_m, 1.0 / tau_s, 1.0 / tau_grad
    syn_a = np.zeros(T + 1)
    dsyn = np.zeros(T + 1)
    for t in range(T):
        t1 = t + 1
        syn_a[t] = ((1 - tm) ** t1 - (1 - ts) ** t1) * ts / (ts - tm)
        dsyn[t] = (1 - tg) ** t1
    return syn_a, dsyn


def zhu_neuron_backward(grad_delta, outputs, delta_u, delta_u_t, syn_a, partial_a, max_dudt_inv=123456789.0):
    """neuron_backward_py (per neuron), (T, N) arrays -> (grad_in_, grad_w_)."""
    T, N = grad_delta.shape
    gin = np.zeros((T, N))
    gw = np.zeros((T, N))
    for i in range(N):
        pw = pt = 0.0
        dt = 0
        spiked = 0.0
        for t in range(T - 1, -1, -1):
            o = outputs[t, i]
            spiked += (1 - spiked) * o
            inv = -1.0 / delta_u[t, i] if delta_u[t, i] != 0 else -math.inf
            p_u = min(max(inv, -4.0), 0.0)
            inv_t = -1.0 / delta_u_t[t, i] if delta_u_t[t, i] != 0 else -math.inf
            p_ut = min(max(inv_t, -max_dudt_inv), 0.0)
            pw = pw * (1 - o) + grad_delta[t, i] * p_u * o
            pt = pt * (1 - o) + grad_delta[t, i] * p_ut * o
            dt = int((dt + 1) * (1 - o))
            gin[t, i] = pt * partial_a[dt] * spiked
            gw[t, i] = pw * syn_a[dt] * spiked
    return gin, gw


def zhu_linear_backward(grad, outputs, delta_u, delta_u_t, inputs, W, kernels, factor=0.85):
    """LinearFunc.backward without the weight standardisation: (T, B, n_out) arrays,
    inputs (T, B, n_in). Returns (grad_input, grad_weight)."""
    T, B, n = grad.shape
    syn_a, dsyn = kernels
    g = grad * outputs
    gin, gw = zhu_neuron_backward(g.reshape(T, -1), outputs.reshape(T, -1), delta_u.reshape(T, -1),
                                  delta_u_t.reshape(T, -1), syn_a, -dsyn)
    gin = gin.reshape(T, B, n)
    gw = gw.reshape(T, B, n)
    grad_input = np.zeros(inputs.shape)
    grad_weight = np.zeros(W.shape)
    for t in range(T):
        for b in range(B):
            for o in range(n):
                for j in range(inputs.shape[2]):
                    grad_input[t, b, j] += gin[t, b, o] * W[o, j] * inputs[t, b, j]
                    grad_weight[o, j] += gw[t, b, o] * inputs[t, b, j]
    return grad_input * factor, grad_weight


def zhu_initialize(weights, x, tau_m, tau_s, tau_grad, theta, avg_spike_init):
    """initialize() layer by layer for a stack of Dense weights (no standardisation):
    returns the multipliers and the rescaled weights."""
    h = x
    scales, out_w = [], []
    for W in weights:
        T, B, _ = h.shape
        t_start = T * 2 // 3
        low, high = 0.05, 500.0
        mid = None
        while high / low >= 1.01:
            mid = math.sqrt(high * low)
            I = np.einsum("tbj,oj->tbo", h, W * mid)
            _, _, o = zhu_forward(I.reshape(T, -1), tau_m, tau_s, tau_grad, theta)
            o = o.reshape(T, B, -1)
            avg = o[t_start:].sum() / (B * o.shape[2])
            if avg > avg_spike_init / T * (T - t_start) * 1.2:
                high = mid
            else:
                low = mid
        scales.append(mid)
        out_w.append(W * mid)
        I = np.einsum("tbj,oj->tbo", h, W * mid)
        _, _, o = zhu_forward(I.reshape(T, -1), tau_m, tau_s, tau_grad, theta)
        h = o.reshape(T, B, -1)
    return scales, out_w


# ---- ANTLR --------------------------------------------------------------------------------
def antlr_kernels(alpha, T):
    """_init_kernels for target_type 'train': the alpha kernel and its kernel_prime."""
    kern = np.array([alpha ** k for k in range(min(T, 1000))])
    kern = kern[kern > 1e-6]
    front = np.concatenate([kern, np.zeros(2)])
    back = np.concatenate([np.zeros(2), kern])
    return kern, (front - back) / 2


def conv1d(x, kernel, padding):
    """torch's conv1d on one channel (a cross-correlation with zero padding)."""
    xp = np.concatenate([np.zeros(padding), x, np.zeros(padding)])
    n = len(xp) - len(kernel) + 1
    return np.array([sum(kernel[j] * xp[i + j] for j in range(len(kernel))) for i in range(n)])


def antlr_train_loss(S, target, alpha):
    """calc_loss / backward_custom for target_type 'train', per sample (the code divides by
    the batch size too; we compare per sample). S, target: (T, B, n).
    Returns (loss (B,), dLdS (T, B, n), dLdT (T, B, n))."""
    T, B, n = S.shape
    kern, kprime = antlr_kernels(alpha, T)
    K = len(kern)
    loss = np.zeros(B)
    dS = np.zeros(S.shape)
    dT = np.zeros(S.shape)
    for b in range(B):
        for o in range(n):
            e = S[:, b, o] - target[:, b, o]
            diff = conv1d(e, kern[::-1], K - 1)[:T + 200]
            loss[b] += np.sum(diff ** 2) / T
            dS[:, b, o] = conv1d(diff, kern, 0) * 2 / T
            raw = conv1d(diff, kprime, len(kprime) - 1)[K:K + T] * (-2) / T
            dT[:, b, o] = S[:, b, o] * raw
    return loss, dS, dT


def antlr_latency_loss(S, labels, beta, lambda_nospike):
    """calc_loss / backward_custom for target_type 'latency' (term_length = T), per sample."""
    T, B, n = S.shape
    loss = np.zeros(B)
    dS = np.zeros(S.shape)
    dT = np.zeros(S.shape)
    for b in range(B):
        tl = np.zeros(n)  # term_length - t_first, 0 for a silent neuron
        for o in range(n):
            tl[o] = max(S[t, b, o] * (T - t) for t in range(T))
        z = tl * beta
        p = np.exp(z - z.max())
        p /= p.sum()
        loss[b] = -math.log(p[labels[b]])
        for o in range(n):
            grad = p[o] - (1.0 if o == labels[b] else 0.0)  # dCE/dz
            if tl[o] == 0:
                grad = 0.0
            idx = int(min(max(T - tl[o], 0), T - 1))
            dT[idx, b, o] = grad * (-beta)
        silent = sum(S[:, b, labels[b]]) == 0
        nospike = lambda_nospike * (1.0 if silent else 0.0)
        loss[b] += nospike
        dS[:, b, labels[b]] = -nospike
    return loss, dS, dT


def antlr_timing_penalty(weight_grad, spikes, penalty):
    """prop_dLdI_to_dLdW, is_timing, fc layer: weight_grad -= penalty / fan_in * mean over
    the batch of [neuron silent]. spikes: (T, B, n_out)."""
    out = weight_grad.copy()
    T, B, n = spikes.shape
    fan_in = weight_grad.shape[1]
    for i in range(n):
        silent = np.mean([1.0 if spikes[:, b, i].sum() == 0 else 0.0 for b in range(B)])
        for j in range(fan_in):
            out[i, j] -= penalty / fan_in * silent
    return out


# ---- NA -----------------------------------------------------------------------------------
def na_code_layer(grad_delta, outputs, u, syns_posts, inputs, tau_m, tau_s, threshold=1.0,
                  clip=5.0, accumulate=True):
    """NA.backward at bf8b564 before the rescaling, for (T, N) arrays: accumulate the PSC
    error, neighbors.get_loss, times clamp(1/(threshold - u)^3, -clip, clip)."""
    T, N = grad_delta.shape
    g = grad_delta.copy()
    if accumulate:
        for t in range(T - 2, -1, -1):
            g[t] += g[t + 1] * (1 - 1 / tau_s)
    tm, ts = 1 / tau_m, 1 / tau_s
    loss = np.zeros((T, N))
    for i in range(N):
        for t in range(T):
            syn_temp = syns_posts[t - 1, i] if t > 0 else 0.0
            new_out = outputs[:, i].copy()
            syn = syns_posts[:, i].copy()
            new_out[t] = 1 - new_out[t]
            syn[t] = syn_temp + (new_out[t] - syn_temp) * ts
            mem = threshold * outputs[t, i]
            for t1 in range(t + 1, T):
                mem = mem + (-tm) * mem + inputs[t1, i]
                o = 1.0 if mem > threshold else 0.0
                mem = mem * (1 - o)
                new_out[t1] = o
                syn[t1] = syn[t1 - 1] + (o - syn[t1 - 1]) * ts
            loss[t, i] = np.sum((syn - syns_posts[:, i]) * g[:, i])
    with np.errstate(divide="ignore"):
        factor = np.clip(1.0 / (threshold - u) ** 3, -clip, clip)
    return loss * factor


def na_code_rescale(grad, norms, name):
    """update_norm / the rescaling of NA.backward; ``norms`` is the code's grad_norm_dict
    (a dict, the first key the output layer's name)."""
    if not norms:
        norms["last"] = name
    norms[name] = round(float(np.mean(np.abs(grad))), 3)
    mean = float(np.mean(np.abs(grad)))
    grad = grad * math.log(norms[norms["last"]] / (mean + 0.00001) + 1.02) * 1.2
    norms[name] = round(float(np.mean(np.abs(grad))), 3)
    return grad


def code_psp(x, tau_s):
    """psp() of the TSSL-BP / NA codes along axis 0: syn = syn - syn/tau_s + x; out = syn/tau_s."""
    out = np.zeros(x.shape)
    syn = np.zeros(x.shape[1:])
    for t in range(x.shape[0]):
        syn = syn - syn / tau_s + x[t]
        out[t] = syn / tau_s
    return out


# ---- NA notebook (Compare_experiment.ipynb, 2021-02-11) -------------------------------------
def notebook_smooth(x, decay):
    out = np.zeros(len(x))
    out[0] = x[0] * (1 - decay)
    for i in range(len(x) - 1):
        out[i + 1] = out[i] * decay + x[i + 1] * (1 - decay)
    return out


def notebook_forward(weights, a_smooth, threshold=1.0, u_decay=0.8):
    """The notebook's forward of one neuron; a_smooth (n_in, T). Returns (u, output)."""
    T = a_smooth.shape[1]
    u = np.zeros(T)
    out = np.zeros(T)
    u[0] = u_temp = weights @ a_smooth[:, 0]
    if u[0] > threshold:
        u_temp = 0
        out[0] = 1
    for j in range(T - 1):
        u[j + 1] = u_temp * u_decay + weights @ a_smooth[:, j + 1]
        if u[j + 1] > threshold:
            u_temp = 0
            out[j + 1] = 1
        else:
            u_temp = u[j + 1]
    return u, out


def notebook_na_grad(u, output, delta, threshold=1.0, u_decay=0.8, out_decay=0.5):
    """The notebook's "neighbors" gradient (w.r.t. the input current) with its current
    distance factor 1/(|u - theta| + 1). delta = a - target (PSCs)."""
    T = len(u)
    output_smooth = notebook_smooth(output, out_decay)
    project = np.zeros(T)
    for t in range(T):
        nb = output > 0
        near_by = True
        cur = t
        while near_by:
            nb[cur] = nb[cur] ^ near_by
            cur += 1
            if cur == T:
                break
            nopp = nb[cur - 1]
            mbp = u[cur]
            near_by = bool((nopp and threshold <= mbp < threshold + u_decay)
                           or (not nopp and threshold - u_decay < mbp < threshold))
        d = notebook_smooth(nb.astype(float), out_decay) - output_smooth
        project[t] = d @ (-delta) / np.linalg.norm(d)
    dist = 1 / (np.abs(u - threshold) + 1)
    return project * (output - 0.5) * 2 * dist


def notebook_stbp_grad(u, output, delta, threshold=1.0, u_decay=0.8, temp=3.0, tau_out=2.0):
    """The notebook's "surrogate" (STBP) gradient: delta . partial_a_0, the sigmoid
    derivative with temperature 3 times 5, then the reset-gated recursion."""
    T = len(u)
    pa = np.zeros((T, T))
    for t in range(T):
        if t > 0:
            pa[t] = pa[t - 1] - pa[t - 1] / tau_out
        pa[t, t] = 1 / tau_out
    d = delta @ pa
    x = np.clip(-(u - threshold) / temp, -10, 10)
    sig = 1 / (1 + np.exp(x))
    grad = d * (sig * (1 - sig)) / temp * 5
    for g in range(T - 2, -1, -1):
        grad[g] += grad[g + 1] * u_decay * (1 - output[g])
    return grad
