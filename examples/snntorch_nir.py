"""Train the W2 network in snnTorch, export it to NIR, run it exactly in eventsnn.

W2 (benchmarks/train_digits_dense.py): a 64-128-10 MLP of ``snn.Synaptic`` neurons (alpha
0.8, beta 0.9, threshold 1, no biases) on the digits, T = 16 steps of constant-current input
(gain x pixel every step), count loss with targets 0.8 T / 0.2 T spikes, Adam (lr 5e-3),
fast-sigmoid surrogate. One change: the reset. NIR's CubaLIF resets the membrane to 0 and
keeps the synaptic current; none of snnTorch's Synaptic resets does that ("subtract"
subtracts the threshold, "zero" also clears the current), so the network is trained with
``reset_mechanism="none"`` and the membrane is zeroed by hand after each spike -- the
step-by-step (Euler) form of exactly the NIR neuron.

The trained network is exported with snnTorch's ``export_to_nir`` (which writes dt = 1e-4 s:
tau = dt / (1 - beta), r = tau / dt, w_in = tau_syn / dt), written with ``nir.write`` and read
back by ``es.from_nir(path, dt=1e-4)``. eventsnn then gets every pixel's input as an event
of value gain x pixel at the start of every step (t = n dt, n = 0..T-1) and counts spikes
in [0, T dt]. The two simulations differ only by snnTorch's time discretisation; see
docs/nir.md for the numbers and the explanation.

Needs torch, snntorch and nir (a separate environment; torch is not an eventsnn dependency):

    pip install torch==2.13.0 snntorch nir && PYTHONPATH=. python examples/snntorch_nir.py
"""
import argparse
import json
import os
import tempfile

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

import eventsnn as es  # noqa: E402
from eventsnn import argtypes as at  # noqa: E402
from eventsnn.datasets import load  # noqa: E402

T, BATCH, HIDDEN, LR = 16, 32, 128, 5e-3
ALPHA, BETA, SLOPE = 0.8, 0.9, 25.0
N_TRUE, N_FALSE = 0.8 * T, 0.2 * T
DT_S = 1e-4            # snnTorch's exporter: one step is 1e-4 s
DT_MS = DT_S * 1000.0  # = 0.1 ms in eventsnn


def decide(counts, first):
    """Most spikes wins, ties to the earliest first spike (as in W2)."""
    return np.argmax(counts * (first.max() + 2.0) - first, axis=1)


def build(torch, snn, surrogate):
    grad = surrogate.fast_sigmoid(slope=SLOPE)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(64, HIDDEN, bias=False)
            self.fc2 = torch.nn.Linear(HIDDEN, 10, bias=False)
            self.lif1 = snn.Synaptic(alpha=ALPHA, beta=BETA, spike_grad=grad, reset_mechanism="none")
            self.lif2 = snn.Synaptic(alpha=ALPHA, beta=BETA, spike_grad=grad, reset_mechanism="none")

        def forward(self, x):
            syn1, mem1 = self.lif1.init_synaptic()
            syn2, mem2 = self.lif2.init_synaptic()
            cur1 = self.fc1(x)
            hid, out = [], []
            for _ in range(T):
                spk1, syn1, mem1 = self.lif1(cur1, syn1, mem1)
                mem1 = mem1 * (1.0 - spk1.detach())  # NIR's reset: v <- 0, current kept
                spk2, syn2, mem2 = self.lif2(self.fc2(spk1), syn2, mem2)
                mem2 = mem2 * (1.0 - spk2.detach())
                hid.append(spk1)
                out.append(spk2)
            return torch.stack(hid), torch.stack(out)

    return Net()


def train(torch, net, X, y, epochs, seed, gain):
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    Xt = torch.tensor(gain * X, dtype=torch.float32)
    yt = torch.tensor(y)
    order = np.random.default_rng(seed)
    for _ in range(epochs):
        perm = order.permutation(len(y))
        for b in range(0, len(perm), BATCH):
            idx = torch.tensor(perm[b:b + BATCH])
            counts = net(Xt[idx])[1].sum(0)
            tgt = torch.full_like(counts, N_FALSE)
            tgt[torch.arange(len(idx)), yt[idx]] = N_TRUE
            loss = (((counts - tgt) ** 2).sum(1) / T).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()


def snntorch_eval(torch, net, X, gain):
    with torch.no_grad():
        hid, out = net(torch.tensor(gain * X, dtype=torch.float32))
    hid, out = hid.numpy() > 0, out.numpy() > 0
    first = np.where(out.any(0), out.argmax(0), T).astype(float)
    return decide(out.sum(0), first), hid.sum((0, 2)), out.sum((0, 2))


def export(torch, snn, net, path):
    import nir
    from snntorch.export_nir import export_to_nir

    # the exporter reads the modules' parameters; a plain Sequential of the same modules
    # (per-neuron alpha/beta/threshold arrays, see benchmarks/make_nir_test_data.py)
    def synaptic(n):
        return snn.Synaptic(alpha=torch.full((n,), ALPHA), beta=torch.full((n,), BETA),
                            threshold=torch.ones(n), init_hidden=True)

    seq = torch.nn.Sequential(net.fc1, synaptic(HIDDEN), net.fc2, synaptic(10))
    nir.write(path, export_to_nir(seq, torch.zeros(1, 64), ignore_dims=[0]))


def eventsnn_eval(model, X, gain):
    """Each sample as events: every non-zero pixel at every step n (t = n * 0.1 ms)."""
    samples = []
    for x in gain * X:
        pix = np.nonzero(x)[0]
        times = np.repeat(np.arange(T) * DT_MS, pix.size)
        samples.append(es.SpikeTrains(times, np.tile(pix, T), 64, np.tile(x[pix], T)))
    recs = model.simulate(samples, t_end=T * DT_MS)
    counts = np.array([r.output.counts() for r in recs])
    first = np.array([[r.output.times[r.output.neurons == o].min() / DT_MS
                       if np.any(r.output.neurons == o) else T for o in range(10)] for r in recs])
    hid = np.array([len(r.spikes[1]) for r in recs])
    return decide(counts, first), hid, counts.sum(1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--epochs", type=at.positive_int, default=15, help="snnTorch training epochs")
    p.add_argument("--seeds", type=at.nonneg_int, nargs="+", default=[0, 1, 2],
                   help="seeds, one trained network each")
    p.add_argument("--gain", type=at.positive_float, default=0.3,
                   help="input current per unit pixel value, every step")
    args = p.parse_args()
    import snntorch as snn
    import torch
    from snntorch import surrogate

    torch.set_num_threads(1)
    X_tr, y_tr, X_te, y_te = load("digits")
    X_tr, X_te = X_tr.reshape(len(X_tr), -1), X_te.reshape(len(X_te), -1)
    rows = []
    for seed in args.seeds:
        torch.manual_seed(seed)
        net = build(torch, snn, surrogate)
        train(torch, net, X_tr, y_tr, args.epochs, seed, args.gain)
        pred_t, hid_t, out_t = snntorch_eval(torch, net, X_te, args.gain)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "w2.nir")
            export(torch, snn, net, path)
            model = es.from_nir(path, dt=DT_S)
        pred_e, hid_e, out_e = eventsnn_eval(model, X_te, args.gain)
        row = {"seed": seed, "snntorch_test_acc": float(np.mean(pred_t == y_te)),
               "eventsnn_test_acc": float(np.mean(pred_e == y_te)),
               "agreement": float(np.mean(pred_t == pred_e)),
               "hidden_spikes_per_sample": [float(hid_t.mean()), float(hid_e.mean())],
               "output_spikes_per_sample": [float(out_t.mean()), float(out_e.mean())]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    keys = ["snntorch_test_acc", "eventsnn_test_acc", "agreement"]
    print(json.dumps({"mean": {k: float(np.mean([r[k] for r in rows])) for k in keys},
                      "epochs": args.epochs, "gain": args.gain, "neuron": repr(model.neuron)}))


if __name__ == "__main__":
    main()
