"""ANTLR's random spike-train matching task (Kim et al. 2020, section 4.1, Fig. 6).

A 10-50-50-5 network of ANTLR neurons (current and potential reset) receives 3 random input
spikes per input neuron and must emit given target trains (1 or 3 random spikes per output
neuron) under the spike-train loss. The same network and data are trained with the
activation-based method (lambda_act, lambda_tim = 1, 0), the timing-based method (0, 1) and
ANTLR (1, 1); the mean training loss over many random trials is plotted on a log axis.

    python examples/spike_train_matching.py --trials 100 --iters 200 --lr 5e-3 \
        --out docs/spike_train_matching.png   # default: ./spike_train_matching.png

The paper's finding to check: ANTLR reaches the lowest loss; the timing method alone stalls
because it cannot make spikes appear or vanish.
"""
import argparse
import json
import os
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

import eventsnn as es  # noqa: E402
from eventsnn import argtypes as at  # noqa: E402
from eventsnn.dense.forward import forward_layers  # noqa: E402
from eventsnn.dense.losses import spike_train_loss  # noqa: E402
from eventsnn.dense.neurons import AntlrNeuron  # noqa: E402
from eventsnn.dense.rules import antlr  # noqa: E402
from eventsnn.optim import Adam  # noqa: E402

METHODS = {"activation": (1.0, 0.0), "timing": (0.0, 1.0), "ANTLR": (1.0, 1.0)}
SIZES = (10, 50, 50, 5)


def random_trains(rng, T, n, k):
    """(T, 1, n) raster with k distinct random spike steps per neuron."""
    S = np.zeros((T, 1, n))
    for i in range(n):
        S[rng.choice(T, size=k, replace=False), 0, i] = 1.0
    return S


def make_trial(seed, T, n_target):
    rng = np.random.default_rng(seed)
    x = random_trains(rng, T, SIZES[0], 3)
    target = random_trains(rng, T, SIZES[-1], n_target)
    net = es.Sequential(*[es.Dense(a, b) for a, b in zip(SIZES[:-1], SIZES[1:])], rng=seed)
    for layer in net.layers:  # N(0, (2/sqrt(n_in))^2): a few spikes per neuron at the start
        layer.weight = rng.normal(0.0, 2.0 / np.sqrt(layer.n_in), layer.weight.shape)
    return net, x, target


def train(net, x, target, neuron, lambdas, iters, lr, alpha):
    opt = Adam(lr=lr)
    params = [layer.weight for layer in net.layers]
    curve = np.empty(iters)
    for it in range(iters):
        rec = forward_layers(net.layers, x, neuron)
        loss, gs, gt = spike_train_loss(rec.output, target, alpha)
        curve[it] = loss[0]
        g = antlr.backward(rec, gs, gt, lambda_act=lambdas[0], lambda_tim=lambdas[1])
        opt.step(params, g.weights)
    return curve


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--trials", type=at.positive_int, default=100, help="random trials averaged")
    p.add_argument("--iters", type=at.positive_int, default=200, help="training iterations per trial")
    p.add_argument("--steps", type=at.positive_int, default=40, help="time steps T")
    p.add_argument("--lr", type=at.positive_float, default=5e-3, help="learning rate")
    p.add_argument("--alpha", type=at.float_range(0.0, 1.0, low_open=True, high_open=True),
                   default=float(np.exp(-1 / 5)), help="loss filter kappa = alpha^k")
    p.add_argument("--out", default="spike_train_matching.png",
                   help="PNG to write (in the current folder unless a path is given)")
    args = p.parse_args()
    try:  # fail before the long run, not after it
        import matplotlib
    except ImportError:
        sys.exit("this example plots its curves: pip install matplotlib (or pip install -e '.[plot]')")
    neuron = AntlrNeuron(a_i=0.9, a_v=0.9)  # b_v: kernel peak 1 within the window
    curves = {k: {m: [] for m in METHODS} for k in (1, 3)}
    t0 = time.perf_counter()
    for n_target in (1, 3):
        for trial in range(args.trials):
            for name, lambdas in METHODS.items():
                net, x, target = make_trial(1000 * n_target + trial, args.steps, n_target)
                curves[n_target][name].append(train(net, x, target, neuron, lambdas, args.iters,
                                                    args.lr, args.alpha))
    summary = {"trials": args.trials, "iters": args.iters, "steps": args.steps,
               "seconds": round(time.perf_counter() - t0, 1)}
    for n_target in (1, 3):
        for name in METHODS:
            c = np.mean(curves[n_target][name], axis=0)
            summary[f"{n_target}_target_{name}_initial"] = round(float(c[0]), 4)
            summary[f"{n_target}_target_{name}_final"] = round(float(np.mean(c[-10:])), 4)
    print(json.dumps(summary))
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from eventsnn.plot import mean_curves

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, n_target in zip(axes, (1, 3)):
        mean_curves({name: np.array(curves[n_target][name]) for name in METHODS},
                    x=np.arange(1, args.iters + 1), ax=ax, band=False, logy=True,
                    ylabel=f"mean training loss ({args.trials} trials)")
        ax.set_title(f"{n_target} target spike{'s' if n_target > 1 else ''} per output neuron")
    fig.suptitle("Random spike-train matching, 10-50-50-5 (ANTLR Fig. 6 task)")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"saved {os.path.abspath(args.out)}")


if __name__ == "__main__":
    main()
