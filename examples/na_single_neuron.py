"""NA's single-neuron experiment (Yang, Zhang & Li 2021, Sec. 4.2, Table 1, Fig. 6).

One output neuron (PscLIF, tau_m = 5, tau_s = 2, theta = 1, reset to zero) reads 200 inputs
whose spike trains are Bernoulli(p_in = 0.05) over N_T = 30 steps. The input PSCs (same kernel,
a[t] = a[t-1]/2 + s[t]/2) are z-scored: by default per time step over the 200 inputs, as the
authors' notebook does (``scipy.stats.zscore`` of the inputs x steps array, axis 0);
``--zscore all`` pools all inputs and steps (the paper's wording "normalized using the mean
and standard deviation of all PSCs"). The target train is Bernoulli(p_o = 0.2; the notebook:
0.25). Loss: van Rossum, L = 1/2 sum_t (a[t] - (kappa * d)[t])^2 (NA Eq. 5); the gradient
g = a - target is what the notebook back-propagates (it plots sum (a - target)^2, twice our L).
Weights N(0, 0.1^2), plain SGD with learning rate 0.005 for 200 iterations; every round draws
new inputs, target and weights, and both rules train the same rounds.

Rules (``--rules``, default all four, trained on the same rounds):
- ``na``: NA as published (``eventsnn.dense.rules.na.na_delta``): exact SNS neighbours,
  Delta L = g . (a_p - a), delta = Delta L clip(1/d^power, -b, b) with d = theta - v;
  ``--na-power 3 --b 10`` (default) is the paper's Eq. 17 with its b (Appendix A.1).
- ``na-code``: the same with power 1, the clipped plain finite difference Delta L / d of the
  authors' ``functions/na.py`` ("simple clipping" path), clip bound ``--b-code`` (default 5,
  the code's b per issue 5; the revision we could read clamps at 10).
- ``na-notebook``: the "neighbors" rule of the authors' ``Compare_experiment.ipynb``:
  neighbour trains from the notebook's chain heuristic, the projection
  p = -g . Delta a / |Delta a| and delta = p (2 s - 1) sigma'((v - theta)/2)/2.
- ``stbp``: the notebook's "surrogate" rule: BPTT through the membrane, gated by the reset
  (dL/dv[t] = e[t]/tau_s * h(v[t]) + alpha_m (1 - s[t]) dL/dv[t+1], e the PSC error of NA
  Eq. 7), with the surrogate h = sigma'((v - theta)/w)/w, w = 2 (default, the notebook) or the
  rectangle [|v - theta| < w/2]/w (``--stbp-surrogate rect``, w = 1).

Prints a JSON line: per rule the iteration at which the mean loss over the rounds reaches zero
(every round reproduces its target train exactly; null if not within the iterations), the
final mean loss, and the rounds solved; saves the mean +- std loss curves and the fraction of
solved rounds as a PNG.

    python examples/na_single_neuron.py                       # 100 rounds, the four rules
    python examples/na_single_neuron.py --rounds 500          # the paper's 500 rounds
    python examples/na_single_neuron.py --rules na,stbp --b 2 # the paper's rule, b = 2
"""
import argparse
import json
import os

import numpy as np

from eventsnn.dense.psc_neurons import PscLIF, psc_filter, psc_layer
from eventsnn.dense.rules.na import NA_POWERS, na_delta

#: temperature of the notebook's sigmoid surrogate and of its NA distance factor
NOTEBOOK_TEMP = 2.0
#: rules the example can train
RULES = ("na", "na-code", "na-notebook", "stbp")
COLORS = {"na": "tab:red", "na-code": "tab:orange", "na-notebook": "tab:purple", "stbp": "tab:blue"}


def make_rounds(rounds, n_steps, n_in, p_in, p_out, neuron, rng, zscore="step"):
    """Inputs (T, R, n_in) z-scored PSCs, target PSC (T, R), initial weights (R, n_in)."""
    spikes = (rng.random((n_steps, rounds, n_in)) < p_in).astype(float)
    a_in = psc_filter(spikes, neuron.tau_s)
    axes = (2,) if zscore == "step" else (0, 2)
    mean = a_in.mean(axis=axes, keepdims=True)
    std = a_in.std(axis=axes, keepdims=True)
    a_in = (a_in - mean) / np.where(std > 0, std, 1.0)
    target = (rng.random((n_steps, rounds)) < p_out).astype(float)
    target_psc = psc_filter(target, neuron.tau_s)
    weights = rng.normal(0.0, 0.1, size=(rounds, n_in))
    return a_in, target_psc, weights


def surrogate(v, theta, kind, width):
    """Pseudo-derivative ds/dv: logistic sigma'((v - theta)/w)/w or rectangle [|v-theta|<w/2]/w."""
    if kind == "rect":
        return (np.abs(v - theta) < width / 2) / width
    x = np.clip((v - theta) / width, -10.0, 10.0)
    sig = 1.0 / (1.0 + np.exp(-x))
    return sig * (1.0 - sig) / width


def stbp_delta(g, v, s, neuron, kind="sigmoid", width=NOTEBOOK_TEMP):
    """STBP-style BPTT of the authors' notebook for one neuron per column: dL/dc = dL/dv."""
    T = g.shape[0]
    out = np.zeros_like(g)
    e = np.zeros(g.shape[1:])
    dv_next = np.zeros(g.shape[1:])
    for t in range(T - 1, -1, -1):
        e = g[t] + neuron.alpha_s * e
        dv = e / neuron.tau_s * surrogate(v[t], neuron.theta, kind, width) \
            + neuron.alpha_m * (1.0 - s[t]) * dv_next
        out[t] = dv
        dv_next = dv
    return out


def notebook_na_delta(g, v, s, a, neuron, temp=NOTEBOOK_TEMP):
    """The "neighbors" rule of the authors' Compare_experiment.ipynb (columns = neurons).

    Neighbour of step t: flip s[t]; then, while the flip chain goes on, flip step k too when
    (the neighbour fires at k-1 and theta <= v[k] < theta + alpha_m) or (it is silent at k-1 and
    theta - alpha_m < v[k] < theta). delta[t] = p (2 s[t] - 1) sigma'((v[t]-theta)/temp)/temp
    with p = -g . (a_p - a) / |a_p - a|."""
    T, M = g.shape
    th, am = neuron.theta, neuron.alpha_m
    sb = s > 0.5
    proj = np.zeros((T, M))
    for t in range(T):
        nb = sb.copy()
        nb[t] = ~nb[t]
        going = np.ones(M, dtype=bool)
        for k in range(t + 1, T):
            prev, mbp = nb[k - 1], v[k]
            going &= (prev & (th <= mbp) & (mbp < th + am)) | (~prev & (th - am < mbp) & (mbp < th))
            if not going.any():
                break
            nb[k] = nb[k] ^ going
        da = psc_filter(nb.astype(float), neuron.tau_s) - a
        norm = np.sqrt(np.sum(da * da, axis=0))
        proj[t] = -np.sum(g * da, axis=0) / norm
    return proj * (2.0 * s - 1.0) * surrogate(v, th, "sigmoid", temp)


def train(rule, a_in, target_psc, weights, neuron, lr, iters, opts):
    W = weights.copy()
    losses = np.zeros((iters + 1, W.shape[0]))
    for it in range(iters + 1):
        c = np.einsum("tri,ri->tr", a_in, W)
        v, s, u, a = psc_layer(c, neuron)
        g = a - target_psc
        losses[it] = 0.5 * np.sum(g * g, axis=0)
        if it == iters:
            break
        if rule == "na-notebook":
            delta = notebook_na_delta(g, v, s, a, neuron)
        elif rule == "na":
            delta = na_delta(g, c, v, s, neuron, b=opts.b, power=opts.na_power)
        elif rule == "na-code":
            delta = na_delta(g, c, v, s, neuron, b=opts.b_code, power=1)
        else:
            delta = stbp_delta(g, v, s, neuron, opts.stbp_surrogate, opts.stbp_width)
        W -= lr * np.einsum("tr,tri->ri", delta, a_in)
    return losses


def first_zero(mean_curve, tol=1e-12):
    hit = np.nonzero(mean_curve <= tol)[0]
    return int(hit[0]) if hit.size else None


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=100)
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--n-steps", type=int, default=30)
    p.add_argument("--n-in", type=int, default=200)
    p.add_argument("--p-in", type=float, default=0.05)
    p.add_argument("--p-out", type=float, default=0.2)
    p.add_argument("--lr", type=float, default=0.005)
    p.add_argument("--rules", default=",".join(RULES),
                   help=f"comma-separated subset of {', '.join(RULES)}")
    p.add_argument("--na-power", type=int, choices=NA_POWERS, default=3)
    p.add_argument("--b", type=float, default=10.0)
    p.add_argument("--b-code", type=float, default=5.0)
    p.add_argument("--stbp-surrogate", choices=("sigmoid", "rect"), default="sigmoid")
    p.add_argument("--stbp-width", type=float, default=None,
                   help="sigmoid temperature (default 2) or rectangle width (default 1)")
    p.add_argument("--zscore", choices=("step", "all"), default="step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="na_single_neuron.png",
                   help="PNG to write (the docs figure: --rounds 500 --out docs/na_single_neuron.png)")
    p.add_argument("--no-plot", action="store_true")
    args = p.parse_args(argv)
    if args.stbp_width is None:
        args.stbp_width = NOTEBOOK_TEMP if args.stbp_surrogate == "sigmoid" else 1.0
    if args.rounds < 1 or args.iters < 1:
        p.error("--rounds and --iters must be >= 1")
    args.rules = [r.strip() for r in args.rules.split(",") if r.strip()]
    bad = [r for r in args.rules if r not in RULES]
    if bad or not args.rules:
        p.error(f"--rules must be a comma-separated subset of {', '.join(RULES)}, got {bad}")
    return args


def label(rule, args):
    if rule == "na":
        return f"NA, clip(1/d^{args.na_power}, ±{args.b:g})" + (" (paper)" if args.na_power == 3 else "")
    if rule == "na-code":
        return f"NA, clip(1/d, ±{args.b_code:g}) (code)"
    if rule == "na-notebook":
        return "NA, authors' notebook rule"
    return f"STBP ({args.stbp_surrogate}, w = {args.stbp_width:g})"


def plot(curves, args, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # figure is optional
        return None
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    it = np.arange(args.iters + 1)
    for rule, L in curves.items():
        m, sd = L.mean(axis=1), L.std(axis=1)
        ax.plot(it, m, color=COLORS[rule], label=label(rule, args))
        ax.fill_between(it, np.maximum(m - sd, 0), m + sd, color=COLORS[rule], alpha=0.12)
        ax2.plot(it, np.mean(L <= 1e-12, axis=1), color=COLORS[rule], label=label(rule, args))
    ax.set_xlabel("iteration")
    ax.set_ylabel("van Rossum loss (mean ± std)")
    ax.set_title(f"{args.rounds} rounds, N_T = {args.n_steps}, p_o = {args.p_out}, lr = {args.lr}")
    ax.legend(fontsize=8)
    ax2.set_xlabel("iteration")
    ax2.set_ylabel("fraction of rounds reproducing the target")
    ax2.set_ylim(0, 1.02)
    ax2.axvline(65, color="tab:red", ls=":", lw=1)
    ax2.axvline(147, color="tab:blue", ls=":", lw=1)
    ax2.set_title("dotted: the paper's 65 (NA) / 147 (STBP)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return os.path.normpath(path)


def main(argv=None):
    args = parse(argv)
    neuron = PscLIF(tau_m=5.0, tau_s=2.0, theta=1.0)
    rng = np.random.default_rng(args.seed)
    a_in, target_psc, weights = make_rounds(args.rounds, args.n_steps, args.n_in, args.p_in,
                                            args.p_out, neuron, rng, args.zscore)
    curves = {rule: train(rule, a_in, target_psc, weights, neuron, args.lr, args.iters, args)
              for rule in args.rules}
    result = {"rounds": args.rounds, "p_out": args.p_out, "lr": args.lr, "zscore": args.zscore,
              "seed": args.seed, "na_power": args.na_power, "b": args.b, "b_code": args.b_code,
              "stbp_surrogate": args.stbp_surrogate, "stbp_width": args.stbp_width}
    for rule, L in curves.items():
        m = L.mean(axis=1)
        result[rule] = {"zero_mean_loss_at": first_zero(m), "final_mean_loss": round(float(m[-1]), 4),
                        "mean_loss_at_65": round(float(m[min(65, args.iters)]), 4),
                        "mean_loss_at_147": round(float(m[min(147, args.iters)]), 4),
                        "rounds_solved": int(np.sum(L[-1] <= 1e-12))}
    if not args.no_plot:
        fig = plot(curves, args, args.out)
        if fig:
            result["figure"] = fig
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
