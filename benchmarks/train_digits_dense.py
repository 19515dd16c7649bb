"""W2: dense-mode training speed and accuracy against snnTorch, measured in one run.

Workload: current-based LIF MLP 64-128-10 on the digits (eventsnn.datasets "digits" split),
T = 16 steps, batch 32, Adam (lr 5e-3, constant), constant-current input (gain x the pixel
value in [0, 1] every step), count loss sum (N - n)^2 / T with targets 0.8 T / 0.2 T spikes,
fast-sigmoid surrogate (slope 25), no biases, the same initial weights on both sides
(U(+-1/sqrt(n_in)), torch.nn.Linear's default range), one thread.

- eventsnn: ``ActivationLearner`` on ``AntlrNeuron(a_i=0.8, a_v=0.9, b_i=1, b_v=1,
  reset="subtract")`` -- the same neuron as snnTorch's ``Synaptic`` (I <- alpha I + W x,
  V <- beta V + I - theta S[t-1]); the reset is not differentiated (snnTorch detaches it);
  eventsnn Trainer and Adam; float64. ``--reset full`` gives the ANTLR full-reset neuron
  (current and potential zeroed), the model of the first W2 measurement.
- snnTorch 1.0: ``snn.Synaptic(alpha=0.8, beta=0.9)`` (its default subtractive reset),
  the same loss, ``torch.optim.Adam``; float32.

Protocol (identical for both libraries):

1. A validation set: a fixed 20 % of the training split (numpy seed 12345), the same for
   every seed and both libraries; training uses the other 80 %. The test split is only
   used for the final numbers.
2. Input gain: for each library, the gain in ``--gains`` with the highest validation
   accuracy (of the best epoch within ``--epochs``), averaged over ``--grid-seeds`` (seeds
   not in ``--seeds``); ties go to the smaller gain.
3. For each seed in ``--seeds``: train ``--epochs`` epochs with that library's gain, keep
   the weights of the epoch with the best validation accuracy (first such epoch), report its
   test accuracy. Both libraries start from the same weights and see the same mini-batches
   in the same order (the order of eventsnn's Trainer for that seed). Prediction on both sides: the output neuron with most spikes, ties to the
   earliest first spike.

Seconds per epoch: training only (validation outside the timed region on both sides),
median over epochs 2..E (the first holds numba compilation / torch warm-up), then the mean
over seeds. A model check first compares both forward passes and gradients on the same
weights and batch (prints the largest differences).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \\
        python benchmarks/train_digits_dense.py

Needs ``pip install torch snntorch`` for the peer (``--no-peer`` runs eventsnn only).
"""
import argparse
import json
import os
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

import eventsnn as es  # noqa: E402
from eventsnn.datasets import load  # noqa: E402
from eventsnn.dense.learners import ActivationLearner  # noqa: E402
from eventsnn.dense.neurons import AntlrNeuron  # noqa: E402
from eventsnn.train import Trainer  # noqa: E402

T, BATCH, HIDDEN, LR = 16, 32, 128, 5e-3
ALPHA, BETA, SLOPE = 0.8, 0.9, 25.0
N_TRUE, N_FALSE = 0.8 * T, 0.2 * T
VAL_FRACTION, VAL_SEED = 0.2, 12345


def split(data):
    """(train, validation, test) with a fixed validation part of the training split."""
    X_tr, y_tr, X_te, y_te = data
    X_tr = X_tr.reshape(len(X_tr), -1)
    X_te = X_te.reshape(len(X_te), -1)
    perm = np.random.default_rng(VAL_SEED).permutation(len(y_tr))
    n_val = int(round(VAL_FRACTION * len(y_tr)))
    va, tr = perm[:n_val], perm[n_val:]
    return (X_tr[tr], y_tr[tr]), (X_tr[va], y_tr[va]), (X_te, y_te)


def init_weights(seed):
    """U(+-1/sqrt(n_in)) for both layers, from numpy seed ``seed``."""
    gen = np.random.default_rng(seed)
    out = []
    for n_in, n_out in ((64, HIDDEN), (HIDDEN, 10)):
        bound = 1.0 / np.sqrt(n_in)
        out.append(gen.uniform(-bound, bound, (n_out, n_in)))
    return out


def decide(spikes):
    """Most spikes wins, ties to the earliest first spike; spikes (T, B, n) numpy."""
    spikes = spikes > 0
    counts = spikes.sum(0)
    first = np.where(spikes.any(0), spikes.argmax(0), spikes.shape[0])
    return np.argmax(counts * (spikes.shape[0] + 1) - first, axis=1)


# ---- eventsnn --------------------------------------------------------------------------------
class _Snapshots(ActivationLearner):
    """ActivationLearner that keeps a copy of the weights at the end of every epoch (for the
    best-validation checkpoint; a copy of 9,472 floats, negligible in the timed epoch)."""

    def after_epoch(self, epoch):
        self.snapshots.append([layer.weight.copy() for layer in self.net.layers])


def eventsnn_net(init):
    net = es.Sequential(es.Dense(64, HIDDEN), es.Dense(HIDDEN, 10), rng=0)
    for layer, w in zip(net.layers, init):
        layer.weight = w.copy()
    return net


def eventsnn_learner(net, seed, gain, reset):
    neuron = AntlrNeuron(a_i=ALPHA, a_v=BETA, b_i=1.0, b_v=1.0, theta=1.0, reset=reset)
    learner = _Snapshots(net, rng=seed, neuron=neuron, n_steps=T, surrogate="fast_sigmoid",
                         surrogate_scale=SLOPE, n_true=N_TRUE, n_false=N_FALSE, input_gain=gain)
    learner.snapshots = []
    return learner


def run_eventsnn(sets, seed, epochs, gain, reset):
    (X_tr, y_tr), (X_va, y_va), (X_te, y_te) = sets
    net = eventsnn_net(init_weights(seed))
    learner = eventsnn_learner(net, seed, gain, reset)
    trainer = Trainer(learner, optimizer="adam", lr=LR, batch_size=BATCH, epochs=epochs, seed=seed)
    hist = trainer.fit(X_tr, y_tr, X_va, y_va)
    val = [h["val_accuracy"] for h in hist]
    best = int(np.argmax(val))
    for layer, w in zip(net.layers, learner.snapshots[best]):
        layer.weight = w
    test = trainer.evaluate(X_te, y_te)["accuracy"]
    return {"seconds": [h["seconds"] for h in hist], "val": val, "best_epoch": best + 1,
            "test": test}


# ---- snnTorch --------------------------------------------------------------------------------
def snntorch_net(init):
    import snntorch as snn
    import torch
    from snntorch import surrogate

    torch.set_num_threads(1)
    grad = surrogate.fast_sigmoid(slope=SLOPE)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(64, HIDDEN, bias=False)
            self.fc2 = torch.nn.Linear(HIDDEN, 10, bias=False)
            self.lif1 = snn.Synaptic(alpha=ALPHA, beta=BETA, spike_grad=grad)
            self.lif2 = snn.Synaptic(alpha=ALPHA, beta=BETA, spike_grad=grad)

        def forward(self, x, record=False):
            syn1, mem1 = self.lif1.init_synaptic()
            syn2, mem2 = self.lif2.init_synaptic()
            cur1 = self.fc1(x)  # constant input current: the same every step
            out, hid = [], []
            for _ in range(T):
                spk1, syn1, mem1 = self.lif1(cur1, syn1, mem1)
                spk2, syn2, mem2 = self.lif2(self.fc2(spk1), syn2, mem2)
                out.append(spk2)
                hid.append(spk1)
            return (torch.stack(out), torch.stack(hid)) if record else torch.stack(out)

    net = Net()
    with torch.no_grad():
        net.fc1.weight.copy_(torch.tensor(init[0], dtype=torch.float32))
        net.fc2.weight.copy_(torch.tensor(init[1], dtype=torch.float32))
    return net


def snntorch_loss(net, xb, yb):
    import torch
    spk = net(xb)
    counts = spk.sum(0)
    tgt = torch.full_like(counts, N_FALSE)
    tgt[torch.arange(len(yb)), yb] = N_TRUE
    return (((counts - tgt) ** 2).sum(1) / T).mean()


def snntorch_predict(net, X):
    import torch
    with torch.no_grad():
        return decide(net(torch.tensor(X, dtype=torch.float32)).numpy())


def run_snntorch(sets, seed, epochs, gain):
    import torch

    (X_tr, y_tr), (X_va, y_va), (X_te, y_te) = sets
    torch.manual_seed(seed)
    net = snntorch_net(init_weights(seed))
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    Xt = torch.tensor(gain * X_tr, dtype=torch.float32)
    yt = torch.tensor(y_tr)
    # the mini-batch order of eventsnn's Trainer with the same seed: identical batches
    order = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[1])
    times, val, snaps = [], [], []
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = order.permutation(len(y_tr))
        for b in range(0, len(perm), BATCH):
            idx = torch.tensor(perm[b:b + BATCH])
            loss = snntorch_loss(net, Xt[idx], yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
        val.append(float(np.mean(snntorch_predict(net, gain * X_va) == y_va)))
        snaps.append({k: t.clone() for k, t in net.state_dict().items()})
    best = int(np.argmax(val))
    net.load_state_dict(snaps[best])
    test = float(np.mean(snntorch_predict(net, gain * X_te) == y_te))
    return {"seconds": times, "val": val, "best_epoch": best + 1, "test": test}


# ---- model check -----------------------------------------------------------------------------
def model_check(sets, gain, reset):
    """Same weights, same batch: forward spikes and weight gradients of both libraries."""
    import torch
    from eventsnn.dense import losses
    from eventsnn.dense.rules import activation

    (X_tr, y_tr), _, _ = sets
    init = init_weights(0)
    xb, yb = X_tr[:BATCH], y_tr[:BATCH]
    net = eventsnn_net(init)
    learner = eventsnn_learner(net, 0, gain, reset)
    rec = learner.forward(xb)
    _, gs, _ = losses.count_loss(rec.output, losses.count_targets(yb, 10, N_TRUE, N_FALSE))
    ours = activation.backward(rec, gs, surrogate="fast_sigmoid", surrogate_scale=SLOPE).weights
    ours = [w / BATCH for w in ours]
    tnet = snntorch_net(init)
    out, hid = tnet(torch.tensor(gain * xb, dtype=torch.float32), record=True)
    counts = out.sum(0)
    tgt = torch.full_like(counts, N_FALSE)
    tgt[torch.arange(BATCH), torch.tensor(yb)] = N_TRUE
    (((counts - tgt) ** 2).sum(1) / T).mean().backward()
    theirs = [tnet.fc1.weight.grad.numpy().astype(np.float64), tnet.fc2.weight.grad.numpy().astype(np.float64)]
    mism = [int(np.sum(rec.outputs[0] != hid.detach().numpy())), int(np.sum(rec.output != out.detach().numpy()))]
    rel = [float(np.abs(a - b).max() / np.abs(b).max()) for a, b in zip(ours, theirs)]
    return {"check_reset": reset, "check_gain": gain, "spikes_eventsnn": [float(rec.outputs[0].sum()), float(rec.output.sum())],
            "spike_mismatches_hidden_output": mism, "grad_max_rel_diff_per_layer": rel}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    p.add_argument("--gains", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.5, 1.0],
                   help="validation grid of input gains (the same for both libraries)")
    p.add_argument("--grid-seeds", type=int, nargs="+", default=[100, 101, 102])
    p.add_argument("--gain-eventsnn", type=float, help="skip eventsnn's grid, use this gain")
    p.add_argument("--gain-snntorch", type=float, help="skip snnTorch's grid, use this gain")
    p.add_argument("--reset", choices=["subtract", "full", "membrane"], default="subtract",
                   help="eventsnn neuron's reset (subtract = snnTorch's Synaptic)")
    p.add_argument("--no-peer", action="store_true")
    args = p.parse_args()
    sets = split(load("digits"))
    peer = not args.no_peer
    import numba
    env = {"numpy": np.__version__, "numba": numba.__version__, "eventsnn": getattr(es, "__version__", "?")}
    if peer:
        import snntorch
        import torch
        env.update(torch=torch.__version__, snntorch=snntorch.__version__)
    print(json.dumps(env), flush=True)
    if peer:
        print(json.dumps(model_check(sets, 0.2, args.reset)), flush=True)

    def grid(name, fn):
        rows = []
        for gain in args.gains:
            best = [max(fn(gain, s)["val"]) for s in args.grid_seeds]
            rows.append((float(np.mean(best)), gain))
            print(json.dumps({"grid": name, "gain": gain, "best_val_per_seed": best,
                              "mean": rows[-1][0]}), flush=True)
        return max(rows, key=lambda t: (t[0], -t[1]))[1]  # ties: the smaller gain

    g_es = args.gain_eventsnn or grid(
        "eventsnn", lambda g, s: run_eventsnn(sets, s, args.epochs, g, args.reset))
    g_st = None
    if peer:
        g_st = args.gain_snntorch or grid("snntorch", lambda g, s: run_snntorch(sets, s, args.epochs, g))
    print(json.dumps({"gain_eventsnn": g_es, "gain_snntorch": g_st}), flush=True)

    rows = []
    for seed in args.seeds:
        r = run_eventsnn(sets, seed, args.epochs, g_es, args.reset)
        row = {"seed": seed, "eventsnn_s_per_epoch": float(np.median(r["seconds"][1:] or r["seconds"])),
               "eventsnn_test": r["test"], "eventsnn_best_epoch": r["best_epoch"],
               "eventsnn_best_val": max(r["val"])}
        if peer:
            q = run_snntorch(sets, seed, args.epochs, g_st)
            row.update(snntorch_s_per_epoch=float(np.median(q["seconds"][1:] or q["seconds"])),
                       snntorch_test=q["test"], snntorch_best_epoch=q["best_epoch"],
                       snntorch_best_val=max(q["val"]))
        rows.append(row)
        print(json.dumps(row), flush=True)

    def stats(key):
        vals = np.array([r[key] for r in rows])
        return float(vals.mean()), float(vals.std(ddof=1)) if len(vals) > 1 else 0.0

    summary = {"epochs": args.epochs, "seeds": args.seeds, "reset": args.reset,
               "eventsnn_test_per_seed": [r["eventsnn_test"] for r in rows],
               "gain_eventsnn": g_es, "eventsnn_s_per_epoch": stats("eventsnn_s_per_epoch")[0],
               "eventsnn_test_mean_sd": stats("eventsnn_test")}
    if peer:
        summary["gain_snntorch"] = g_st
        summary["snntorch_s_per_epoch"] = stats("snntorch_s_per_epoch")[0]
        summary["snntorch_test_mean_sd"] = stats("snntorch_test")
        summary["snntorch_test_per_seed"] = [r["snntorch_test"] for r in rows]
        summary["time_ratio_eventsnn_over_snntorch"] = summary["eventsnn_s_per_epoch"] / summary["snntorch_s_per_epoch"]
        summary["per_seed_time_ratios"] = [r["eventsnn_s_per_epoch"] / r["snntorch_s_per_epoch"] for r in rows]
        summary["acc_diff_points"] = 100 * (summary["eventsnn_test_mean_sd"][0] - summary["snntorch_test_mean_sd"][0])
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
