"""W2: dense-mode training speed and accuracy against snnTorch, measured in one run.

Workload: current-based LIF MLP 64-128-10 on the digits (eventsnn.datasets "digits" split),
T = 16 steps, batch 32, Adam (lr 5e-3), constant-current input (0.2 x the pixel value in [0, 1]
every step), count loss with targets 0.8 T / 0.2 T spikes, fast-sigmoid surrogate (slope
25), no biases, the same initial weights on both sides (U(+-1/sqrt(n_in)), torch.nn.Linear's
default range), one thread.

- eventsnn: ``ActivationLearner`` (SRM-based surrogate gradient, the default form) on the
  ANTLR neuron I <- alpha I + W x, V <- beta V + I, full reset, theta 1; eventsnn Trainer.
- snnTorch 1.0: ``snn.Synaptic(alpha, beta)`` (its default subtractive reset), the same loss
  (``(N - n)^2 / T`` summed over outputs, batch mean), ``torch.optim.Adam``.

Prints seconds per epoch (median over epochs 2..E, the first holds numba compilation / torch
warm-up), test accuracies and the ratios. Needs ``pip install torch snntorch`` for the peer
(``--no-peer`` runs eventsnn only).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \
        python benchmarks/train_digits_dense.py --epochs 15 --seeds 0 1 2
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
GAIN = 0.2  # input current = GAIN * pixel: keeps snn.Synaptic (subtractive reset) out of saturation


def run_eventsnn(data, seed, epochs):
    X_tr, y_tr, X_te, y_te = data
    net = es.Sequential(es.Dense(64, HIDDEN), es.Dense(HIDDEN, 10), rng=seed)
    gen = np.random.default_rng(seed)
    for layer in net.layers:  # torch.nn.Linear's default range, U(+-1/sqrt(n_in)), on both sides
        bound = 1.0 / np.sqrt(layer.n_in)
        layer.weight = gen.uniform(-bound, bound, layer.weight.shape)
    init = [layer.weight.copy() for layer in net.layers]
    neuron = AntlrNeuron(a_i=ALPHA, a_v=BETA, b_i=1.0, b_v=1.0, theta=1.0)
    learner = ActivationLearner(net, rng=seed, neuron=neuron, n_steps=T, surrogate="fast_sigmoid",
                                surrogate_scale=SLOPE, n_true=N_TRUE, n_false=N_FALSE, input_gain=GAIN)
    trainer = Trainer(learner, optimizer="adam", lr=LR, batch_size=BATCH, epochs=epochs, seed=seed)
    hist = trainer.fit(X_tr, y_tr)
    acc = trainer.evaluate(X_te, y_te)["accuracy"]
    return [h["seconds"] for h in hist], acc, init


def run_snntorch(data, seed, epochs, init):
    import snntorch as snn
    import torch
    from snntorch import surrogate

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    X_tr, y_tr, X_te, y_te = data
    X_tr, X_te = GAIN * X_tr.reshape(len(X_tr), -1), GAIN * X_te.reshape(len(X_te), -1)
    grad = surrogate.fast_sigmoid(slope=SLOPE)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(64, HIDDEN, bias=False)
            self.fc2 = torch.nn.Linear(HIDDEN, 10, bias=False)
            self.lif1 = snn.Synaptic(alpha=ALPHA, beta=BETA, spike_grad=grad)
            self.lif2 = snn.Synaptic(alpha=ALPHA, beta=BETA, spike_grad=grad)

        def forward(self, x):
            syn1, mem1 = self.lif1.init_synaptic()
            syn2, mem2 = self.lif2.init_synaptic()
            cur1 = self.fc1(x)  # constant input current: the same every step
            out = []
            for _ in range(T):
                spk1, syn1, mem1 = self.lif1(cur1, syn1, mem1)
                spk2, syn2, mem2 = self.lif2(self.fc2(spk1), syn2, mem2)
                out.append(spk2)
            return torch.stack(out)

    net = Net()
    with torch.no_grad():
        net.fc1.weight.copy_(torch.tensor(init[0], dtype=torch.float32))
        net.fc2.weight.copy_(torch.tensor(init[1], dtype=torch.float32))
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    Xt = torch.tensor(X_tr, dtype=torch.float32)
    yt = torch.tensor(y_tr)
    order = np.random.default_rng(seed)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = order.permutation(len(y_tr))
        for b in range(0, len(perm), BATCH):
            idx = torch.tensor(perm[b:b + BATCH])
            spk = net(Xt[idx])
            counts = spk.sum(0)
            tgt = torch.full_like(counts, N_FALSE)
            tgt[torch.arange(len(idx)), yt[idx]] = N_TRUE
            loss = (((counts - tgt) ** 2).sum(1) / T).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    with torch.no_grad():
        counts = net(torch.tensor(X_te, dtype=torch.float32)).sum(0).numpy()
    acc = float(np.mean(np.argmax(counts, axis=1) == y_te))
    return times, acc


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--no-peer", action="store_true")
    args = p.parse_args()
    data = load("digits")
    rows = []
    for seed in args.seeds:
        t_es, acc_es, init = run_eventsnn(data, seed, args.epochs)
        row = {"seed": seed, "eventsnn_s_per_epoch": float(np.median(t_es[1:] or t_es)),
               "eventsnn_acc": acc_es}
        if not args.no_peer:
            t_st, acc_st = run_snntorch(data, seed, args.epochs, init)
            row.update(snntorch_s_per_epoch=float(np.median(t_st[1:] or t_st)), snntorch_acc=acc_st)
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {"epochs": args.epochs, "seeds": args.seeds,
               "eventsnn_s_per_epoch": float(np.mean([r["eventsnn_s_per_epoch"] for r in rows])),
               "eventsnn_acc_mean": float(np.mean([r["eventsnn_acc"] for r in rows]))}
    if not args.no_peer:
        summary["snntorch_s_per_epoch"] = float(np.mean([r["snntorch_s_per_epoch"] for r in rows]))
        summary["snntorch_acc_mean"] = float(np.mean([r["snntorch_acc"] for r in rows]))
        summary["time_ratio_eventsnn_over_snntorch"] = summary["eventsnn_s_per_epoch"] / summary["snntorch_s_per_epoch"]
        summary["acc_diff_points"] = 100 * (summary["eventsnn_acc_mean"] - summary["snntorch_acc_mean"])
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
