"""NA's single-neuron experiment (Yang, Zhang & Li 2021, Sec. 4.2, Table 1, Fig. 6).

Follows the authors' notebook as it stands in their repository
(``superrrpotato/Backpropagated-Neighborhood-Aggregation-for-Accurate-Training-of-Spiking-
Neural-Networks``, ``Compare_experiment.ipynb``, added 2021-02-11, f75052c): one output
neuron (tau_m = 5 steps: u[t] = 0.8 u[t-1] + c[t], threshold 1, reset to zero) reads 200
inputs whose spike trains are Bernoulli(0.05) over N_T = 30 steps; their PSCs (a[t] =
a[t-1]/2 + s[t]/2) are z-scored per time step over the 200 inputs (``scipy.stats.zscore``,
axis 0; ``--zscore all`` pools all inputs and steps, the paper's wording). Target: a
Bernoulli(p_o = 0.25) train. Loss: sum_t (a[t] - target PSC[t])^2 (the notebook's record;
NA Eq. 5 is half of it, the gradient back-propagated is g = a - target). Weights N(0, 0.1^2),
plain SGD with learning rate 0.005 for 200 iterations; every round draws new inputs, target
and weights. Unlike the notebook, which draws separate rounds for its two rules, every rule
here trains the same rounds.

Rules (``--rules``; default the notebook's two):

- ``na-notebook``: the notebook's "neighbors" rule: neighbour trains from its chain
  heuristic (flip step t; keep flipping later steps while the flipped train's previous step
  and the membrane there say the flip propagates), the projection
  p[t] = -g . Delta a / |Delta a| and delta = p (2 s - 1) / (|v - theta| + 1).
- ``stbp-notebook``: the notebook's "surrogate" rule: dL/dv[t] = 5 e[t]/tau_s h(v[t]) +
  0.8 (1 - s[t]) dL/dv[t+1], e the PSC error of NA Eq. 7, h = sigma'((v - theta)/3)/3.
- ``na-notebook-sigmoid``: the deleted Dec-2020 notebook's neighbours rule, with the factor
  sigma'((v - theta)/2)/2 instead of 1/(|v - theta| + 1).
- ``na``: NA as published (``na_delta``): exact SNS neighbours, Delta L = e . (a_p - a)
  (Eq. 13), delta = Delta L clip(1/d^3, -b, b), d = theta - v, ``--b 10`` (Appendix A.1).
- ``na-code``: the authors' ``functions/na.py`` at its head (bf8b564): the same with b = 5
  and the layer-wise rescaling (``code_rescale``, per round).
- ``stbp``: BPTT as above with the plain surrogate (``--stbp-surrogate sigmoid|rect``,
  width ``--stbp-width``, default 2 / 1) and no gain.

Prints a JSON line: per rule the iteration at which the mean loss over the rounds reaches zero
(every round reproduces its target train exactly; null if not within the iterations), the
final mean loss and the rounds solved; saves the mean +- std loss curves and the fraction of
solved rounds as a PNG.

    python examples/na_single_neuron.py --rounds 500          # the notebook's 500 rounds
    python examples/na_single_neuron.py --rules na-notebook,stbp-notebook,na,na-code,stbp
"""
import argparse
import json
import os

import numpy as np

from eventsnn import argtypes as at
from eventsnn.dense.psc_neurons import PscLIF, psc_filter, psc_layer
from eventsnn.dense.rules.na import B_CODE, code_rescale, na_delta

#: temperature of the Dec-2020 notebook's sigmoid distance factor (and the plain STBP's width)
NOTEBOOK_TEMP = 2.0
#: the current notebook's STBP baseline: sigmoid temperature and gain
STBP_NOTEBOOK_TEMP, STBP_NOTEBOOK_GAIN = 3.0, 5.0
#: rules the example can train; the first two are the notebook's
RULES = ("na-notebook", "stbp-notebook", "na-notebook-sigmoid", "na", "na-code", "stbp")
DEFAULT_RULES = ("na-notebook", "stbp-notebook")
COLORS = {"na-notebook": "tab:red", "stbp-notebook": "tab:blue", "na-notebook-sigmoid": "tab:purple",
          "na": "tab:orange", "na-code": "tab:brown", "stbp": "tab:cyan"}


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


def stbp_delta(g, v, s, neuron, kind="sigmoid", width=NOTEBOOK_TEMP, gain=1.0):
    """STBP-style BPTT for one neuron per column: dL/dc = dL/dv; the notebook's baseline is
    ``width=3, gain=5``."""
    T = g.shape[0]
    out = np.zeros_like(g)
    e = np.zeros(g.shape[1:])
    dv_next = np.zeros(g.shape[1:])
    for t in range(T - 1, -1, -1):
        e = g[t] + neuron.alpha_s * e
        dv = gain * e / neuron.tau_s * surrogate(v[t], neuron.theta, kind, width) \
            + neuron.alpha_m * (1.0 - s[t]) * dv_next
        out[t] = dv
        dv_next = dv
    return out


def notebook_na_delta(g, v, s, a, neuron, factor="distance", temp=NOTEBOOK_TEMP):
    """The "neighbors" rule of the authors' Compare_experiment.ipynb (columns = neurons).

    Neighbour of step t: flip s[t]; then, while the flip chain goes on, flip step k too when
    (the neighbour fires at k-1 and theta <= v[k] < theta + alpha_m) or (it is silent at k-1 and
    theta - alpha_m < v[k] < theta). delta[t] = p (2 s[t] - 1) f(v[t]) with
    p = -g . (a_p - a) / |a_p - a| and f = 1 / (|v - theta| + 1) (``factor="distance"``, the
    notebook since 2021-02-11) or sigma'((v - theta)/temp)/temp (``"sigmoid"``, Dec 2020)."""
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
    if factor == "distance":
        return proj * (2.0 * s - 1.0) / (np.abs(v - th) + 1.0)
    return proj * (2.0 * s - 1.0) * surrogate(v, th, "sigmoid", temp)


def train(rule, a_in, target_psc, weights, neuron, lr, iters, opts):
    W = weights.copy()
    losses = np.zeros((iters + 1, W.shape[0]))
    for it in range(iters + 1):
        c = np.einsum("tri,ri->tr", a_in, W)
        v, s, u, a = psc_layer(c, neuron)
        g = a - target_psc
        losses[it] = np.sum(g * g, axis=0)
        if it == iters:
            break
        if rule == "na-notebook":
            delta = notebook_na_delta(g, v, s, a, neuron)
        elif rule == "na-notebook-sigmoid":
            delta = notebook_na_delta(g, v, s, a, neuron, factor="sigmoid")
        elif rule == "stbp-notebook":
            delta = stbp_delta(g, v, s, neuron, "sigmoid", STBP_NOTEBOOK_TEMP, STBP_NOTEBOOK_GAIN)
        elif rule == "na":
            delta = na_delta(g, c, v, s, neuron, b=opts.b, power=3, loss_change="accumulated")
        elif rule == "na-code":
            delta = na_delta(g, c, v, s, neuron, b=B_CODE, power=3, loss_change="accumulated")
            delta = np.stack([code_rescale(delta[:, r])[0] for r in range(delta.shape[1])], axis=1)
        else:
            delta = stbp_delta(g, v, s, neuron, opts.stbp_surrogate, opts.stbp_width)
        W -= lr * np.einsum("tr,tri->ri", delta, a_in)
    return losses


def first_zero(mean_curve, tol=1e-12):
    hit = np.nonzero(mean_curve <= tol)[0]
    return int(hit[0]) if hit.size else None


def median_solved(L, tol=1e-12):
    """Median over the solved rounds of the first iteration with zero loss (None if none)."""
    hit = L <= tol
    solved = hit.any(axis=0)
    if not solved.any():
        return None
    return float(np.median(hit.argmax(axis=0)[solved]))


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--rounds", type=at.positive_int, default=500, help="random trials averaged")
    p.add_argument("--iters", type=at.positive_int, default=200, help="training iterations per trial")
    p.add_argument("--n-steps", type=at.positive_int, default=30, help="time steps T")
    p.add_argument("--n-in", type=at.positive_int, default=200, help="input neurons")
    p.add_argument("--p-in", type=at.float_range(0.0, 1.0), default=0.05,
                   help="spike probability per input neuron and step")
    p.add_argument("--p-out", type=at.float_range(0.0, 1.0), default=0.25,
                   help="spike probability per step of the target train")
    p.add_argument("--lr", type=at.positive_float, default=0.005, help="learning rate")
    p.add_argument("--rules", default=",".join(DEFAULT_RULES),
                   help=f"comma-separated subset of {', '.join(RULES)}")
    p.add_argument("--b", type=at.positive_float, default=10.0, help="clip bound of the rule na (paper 10)")
    p.add_argument("--stbp-surrogate", choices=("sigmoid", "rect"), default="sigmoid",
                   help="surrogate of the plain STBP baseline")
    p.add_argument("--stbp-width", type=at.positive_float, default=None,
                   help="sigmoid temperature (default 2) or rectangle width (default 1)")
    p.add_argument("--zscore", choices=("step", "all"), default="step",
                   help="z-score per step or over all steps")
    p.add_argument("--seed", type=at.nonneg_int, default=0, help="random seed")
    p.add_argument("--out", default="na_single_neuron.png",
                   help="PNG to write, in the current folder by default (the docs figure: "
                        "--rounds 500 --out docs/na_single_neuron.png)")
    p.add_argument("--no-plot", action="store_true", help="no figure")
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
        return f"NA, clip(1/d^3, ±{args.b:g}) (paper)"
    if rule == "na-code":
        return "NA, clip(1/d^3, ±5) + rescale (code head)"
    if rule == "na-notebook":
        return "NA, notebook: 1/(|u-θ|+1)"
    if rule == "na-notebook-sigmoid":
        return "NA, Dec-2020 notebook: sigmoid'"
    if rule == "stbp-notebook":
        return "STBP, notebook (T = 3, x5)"
    return f"STBP ({args.stbp_surrogate}, w = {args.stbp_width:g})"


def plot(curves, args, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # figure is optional
        return None
    from eventsnn.plot import mean_curves

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    it = np.arange(args.iters + 1)
    colors = {rule: COLORS[rule] for rule in curves}
    labels = {rule: label(rule, args) for rule in curves}
    mean_curves({rule: L.T for rule, L in curves.items()}, x=it, ax=ax, floor=0.0,
                colors=colors, labels=labels,
                ylabel="loss sum_t (a - target)^2 (mean ± std)")
    ax.set_title(f"{args.rounds} rounds, N_T = {args.n_steps}, p_o = {args.p_out}, lr = {args.lr}")
    mean_curves({rule: np.mean(L <= 1e-12, axis=1) for rule, L in curves.items()}, x=it,
                ax=ax2, band=False, colors=colors, labels=labels,
                ylabel="fraction of rounds reproducing the target")
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
              "seed": args.seed, "b": args.b, "stbp_surrogate": args.stbp_surrogate,
              "stbp_width": args.stbp_width}
    for rule, L in curves.items():
        m = L.mean(axis=1)
        result[rule] = {"zero_mean_loss_at": first_zero(m), "final_mean_loss": round(float(m[-1]), 4),
                        "mean_loss_at_65": round(float(m[min(65, args.iters)]), 4),
                        "mean_loss_at_147": round(float(m[min(147, args.iters)]), 4),
                        "rounds_solved": int(np.sum(L[-1] <= 1e-12)),
                        "median_round_solved_at": median_solved(L)}
    if "na-notebook" in curves and "stbp-notebook" in curves:
        na0, st0 = result["na-notebook"]["zero_mean_loss_at"], result["stbp-notebook"]["zero_mean_loss_at"]
        result["na_before_stbp"] = na0 is not None and (st0 is None or na0 < st0)
    if not args.no_plot:
        fig = plot(curves, args, args.out)
        if fig:
            result["figure"] = fig
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
