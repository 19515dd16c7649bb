"""NA's single-neuron experiment (Yang, Zhang & Li 2021, Sec. 4.2, Table 1, Fig. 6).

One output neuron (PscLIF, tau_m = 5, tau_s = 2, theta = 1) reads 200 inputs whose spike
trains are Bernoulli(p_in = 0.05) over N_T = 30 steps; the input PSCs (same kernel) are
z-scored over all inputs and steps. The target output train is Bernoulli(p_o = 0.2; the
authors' notebook used 0.25). Loss: van Rossum (NA Eq. 5). Weights N(0, 0.1^2), plain SGD with
learning rate 0.005 for 200 iterations; every round draws new inputs, target and weights.

Two rules train the same rounds:
- NA (eventsnn.dense.rules.na, b = 10);
- STBP-style activation rule: BPTT through the membrane, the reset and the PSC with the
  rectangular surrogate ds/dv = [|v - theta| < 1/2] (Wu et al. 2018), written below.

Prints the iteration at which each rule's mean loss over the rounds reaches zero (every
round reproduces its target exactly) and saves the mean +- std loss curves as a PNG.

    python examples/na_single_neuron.py                 # 100 rounds
    python examples/na_single_neuron.py --rounds 500    # the paper's 500
"""
import argparse
import json
import os

import numpy as np

from eventsnn.dense.psc_neurons import PscLIF, psc_filter, psc_layer
from eventsnn.dense.rules.na import na_delta


def make_rounds(rounds, n_steps, n_in, p_in, p_out, neuron, rng):
    """Inputs (T, R, n_in) z-scored PSCs, target PSC (T, R), weights (R, n_in)."""
    spikes = (rng.random((n_steps, rounds, n_in)) < p_in).astype(float)
    a_in = psc_filter(spikes, neuron.tau_s)
    mean = a_in.mean(axis=(0, 2), keepdims=True)
    std = a_in.std(axis=(0, 2), keepdims=True)
    a_in = (a_in - mean) / np.where(std > 0, std, 1.0)
    target = (rng.random((n_steps, rounds)) < p_out).astype(float)
    target_psc = psc_filter(target, neuron.tau_s)
    weights = rng.normal(0.0, 0.1, size=(rounds, n_in))
    return a_in, target_psc, weights


def stbp_delta(g, v, s, neuron, width=1.0):
    """BPTT with the rectangular surrogate (STBP) for one neuron per column: dL/dc."""
    T, M = g.shape
    am, as_, th = neuron.alpha_m, neuron.alpha_s, neuron.theta
    out = np.zeros((T, M))
    ea = np.zeros(M)      # dL/da[t] including the PSC recursion
    dv_next = np.zeros(M)  # dL/dv[t+1]
    for t in range(T - 1, -1, -1):
        ea = g[t] + as_ * ea
        du = am * dv_next                        # u[t] enters v[t+1] = am u[t] + c[t+1]
        ds = ea / neuron.tau_s - du * v[t]       # u[t] = v[t] (1 - s[t]); a[t] += s[t] / tau_s
        sur = (np.abs(v[t] - th) < width / 2) / width
        dv = ds * sur + du * (1.0 - s[t])
        out[t] = dv
        dv_next = dv
    return out


def train(rule, a_in, target_psc, weights, neuron, lr, iters, b):
    W = weights.copy()
    losses = np.zeros((iters + 1, W.shape[0]))
    for it in range(iters + 1):
        c = np.einsum("tri,ri->tr", a_in, W)
        v, s, u, a = psc_layer(c, neuron)
        g = a - target_psc
        losses[it] = 0.5 * np.sum(g * g, axis=0)
        if it == iters:
            break
        if rule == "na":
            delta = na_delta(g, c, v, s, neuron, b=b)
        else:
            delta = stbp_delta(g, v, s, neuron)
        W -= lr * np.einsum("tr,tri->ri", delta, a_in)
    return losses


def first_zero(mean_curve, tol=1e-12):
    hit = np.nonzero(mean_curve <= tol)[0]
    return int(hit[0]) if hit.size else None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=100)
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--p-out", type=float, default=0.2)
    p.add_argument("--lr", type=float, default=0.005)
    p.add_argument("--b", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "docs", "na_single_neuron.png"))
    args = p.parse_args(argv)
    neuron = PscLIF(tau_m=5.0, tau_s=2.0, theta=1.0)
    rng = np.random.default_rng(args.seed)
    a_in, target_psc, weights = make_rounds(args.rounds, 30, 200, 0.05, args.p_out, neuron, rng)
    curves = {rule: train(rule, a_in, target_psc, weights, neuron, args.lr, args.iters, args.b)
              for rule in ("na", "stbp")}
    result = {"rounds": args.rounds, "p_out": args.p_out}
    for rule, L in curves.items():
        m = L.mean(axis=1)
        result[rule] = {"zero_mean_loss_at": first_zero(m), "final_mean_loss": float(m[-1]),
                        "rounds_solved": int(np.sum(L[-1] <= 1e-12))}
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # figure is optional
        plt = None
    if plt is not None:
        fig, ax = plt.subplots(figsize=(6, 4))
        it = np.arange(args.iters + 1)
        for rule, label, color in (("na", "NA", "tab:red"), ("stbp", "STBP (activation)", "tab:blue")):
            m, sd = curves[rule].mean(axis=1), curves[rule].std(axis=1)
            ax.plot(it, m, color=color, label=label)
            ax.fill_between(it, np.maximum(m - sd, 0), m + sd, color=color, alpha=0.2)
        ax.set_xlabel("iteration")
        ax.set_ylabel("loss (van Rossum)")
        ax.set_title(f"single neuron, {args.rounds} rounds, p_o = {args.p_out}")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.out, dpi=120)
        result["figure"] = os.path.normpath(args.out)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
