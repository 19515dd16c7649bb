"""Where the time of one training step of the paper net (``train_epoch.py --row paper``) goes.

    python benchmarks/profile_paper_step.py [--row paper|paper-sparse] [--seed 0] [--batches 4]
        [--train 0] [--train-epochs 1] [--cache FILE.npz] [--repeats 3]

Builds the ``--row`` network (``paper`` or ``paper-sparse``) exactly as
``benchmarks/train_epoch.py`` does with ``--seed`` (the N-MNIST settings, weight
standardisation, firing-rate initialisation on the first batch), optionally trains it for
``--train-epochs`` epochs on ``--train`` recordings first (so that firing is at its trained
level; ``--cache`` keeps those weights in an .npz and reads them in later runs instead of
training again, and the JSON names it), then records ``--batches`` training batches
(levels, relays, dL/dt of the output events) and times, process CPU time, one thread,
best of ``--repeats`` after a warm-up, summed over the batches:

- the whole ``loss_and_grads`` (forward, loss, backward, Python),
- the forward: each layer's kernel over the batch (Conv2d, pooling, Dense),
- the backward: ``backward_batch`` and each weighted layer's kernel over the batch (with the
  input time gradient where training computes it), pooling's relay,

and prints one JSON line with the times (ms per recording) and the spike counts per
recording of each level. With ``--baseline DIR`` (another checkout, e.g. main unpacked with
``git archive main | tar -x -C DIR``) it also times that checkout's Conv2d kernel
(``DIR/eventsnn/event/_conv.py``, loaded with its package imports pointed at this checkout:
only the kernel file differs) against this one on the same recorded inputs, alternating
round by round, and checks that both give the same spikes bit for bit.

    python benchmarks/profile_paper_step.py --baseline /tmp/main-src --rounds 3
"""
import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402

import train_epoch as te  # noqa: E402
from eventsnn import train as _train  # noqa: E402
from eventsnn.layers import AvgPool2d, Conv2d, Dense, MaxPool2d  # noqa: E402
from eventsnn.network import Sequential  # noqa: E402
from eventsnn.neurons import SRM  # noqa: E402
from eventsnn.event import batch as B  # noqa: E402
from eventsnn.event import _backward as K  # noqa: E402
from eventsnn.event import _conv  # noqa: E402
from eventsnn.event.backward import _prepare, _lowest_level  # noqa: E402
from eventsnn.event.learner import EventLearner  # noqa: E402
from eventsnn.reparam import WeightStandardization  # noqa: E402
from eventsnn.train_cli import input_shape, load_dataset, parse_arch  # noqa: E402


from _timing import best_cpu as best  # noqa: E402  (seconds)


def build(train, seed=0, row_name="paper", train_epochs=1, cache=None):
    row = dict(te._TRAIN, **te.ROWS[row_name])
    X, y, _, _ = load_dataset(row["dataset"], te.NMNIST, dict(row["data"]))
    net = Sequential(*parse_arch(row["arch"], input_shape(X), 10), neuron=SRM(**row["neuron"]),
                     rng=seed)
    learner = EventLearner(net, rng=seed, n_threads=1, **row["opt"])
    reparam = WeightStandardization(raw_scale=row["reparam_raw_scale"])
    reparam.attach(net, keep=False)
    first = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[1]).permutation(len(y))
    learner.initialise(_train._take(X, first[: row["batch"]]))
    trainer = _train.Trainer(learner, optimizer=row["optimizer"], lr=row["lr"],
                             optimizer_options={"weight_decay": row["weight_decay"]},
                             batch_size=row["batch"], epochs=train_epochs, seed=seed,
                             progress=False,
                             schedule="cosine", clip_norm=row["clip"], reparam=reparam)
    weighted = [layer for layer in net.layers if layer.weight is not None]
    if cache and Path(cache).is_file():
        with np.load(cache) as z:
            for k, layer in enumerate(weighted):
                layer.weight = z[f"w{k}"]
    elif train:
        trainer.fit(X[:train], y[:train])
        if cache:
            np.savez(cache, **{f"w{k}": layer.weight for k, layer in enumerate(weighted)})
    return net, learner, trainer, X, y, row


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--row", default="paper", choices=["paper", "paper-sparse"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train", type=int, default=0, help="recordings to train on first")
    ap.add_argument("--train-epochs", type=int, default=1, help="epochs over those recordings")
    ap.add_argument("--cache", help="npz of the trained effective weights: read if it exists, "
                                    "else written after training")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--offset", type=int, default=500, help="first recording profiled")
    ap.add_argument("--baseline", help="checkout whose Conv2d kernel is timed against this one")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds with --baseline")
    args = ap.parse_args()
    net, learner, trainer, X, y, row = build(args.train, args.seed, args.row, args.train_epochs,
                                             args.cache)
    b = row["batch"]
    n = b * args.batches
    idx = np.arange(args.offset, args.offset + n)
    Xs, ys = _train._take(X, idx), y[idx]
    # the layers hold the effective weights (the reparametrisation writes them after a step)
    o = learner.options
    res = {"row": args.row, "seed": args.seed, "batches": args.batches, "batch": b,
           "trained_on": args.train, "train_epochs": args.train_epochs,
           "weights": args.cache if args.cache and Path(args.cache).is_file() and not args.train
           else "trained here" if args.train else "initialised"}
    batches = []
    for k in range(args.batches):
        sl = slice(k * b, (k + 1) * b)
        events = learner.encode_batch(_train._take(Xs, np.arange(k * b, (k + 1) * b)))
        levels, relays = learner._forward(events)
        out, _, g = learner._loss(levels[-1], np.asarray(ys[sl]))
        batches.append((events, levels, relays, out, g))
    L = len(net.layers)
    res["spikes_per_rec"] = [round(sum(bt[1][li].times.size for bt in batches) / n, 1)
                             for li in range(L + 1)]

    def step():
        for k in range(args.batches):
            learner.loss_and_grads(_train._take(Xs, np.arange(k * b, (k + 1) * b)),
                                   ys[k * b:(k + 1) * b])
    res["loss_and_grads"] = best(step, args.repeats)

    def fwd():
        for bt in batches:
            learner._forward(bt[0])
    res["forward"] = best(fwd, args.repeats)
    # per-layer forward kernels
    weights = B.prepare_forward(net)
    lneur = B._layer_neurons(net)
    for li, layer in enumerate(net.layers, start=1):
        if isinstance(layer, Conv2d):
            nrn = lneur[li - 1]
            tau_m, tau_s, theta, mr, t_ref = nrn.as_tuple()
            WT = _conv.transposed_weight(layer, weights[li - 1])

            def f(li=li, layer=layer, WT=WT, tau_m=tau_m, tau_s=tau_s, theta=theta, mr=mr,
                  t_ref=t_ref):
                for bt in batches:
                    cur = bt[1][li - 1]
                    B._conv_batch(cur.times, cur.neurons, cur.values, cur.offsets, layer, WT,
                                  tau_m, tau_s, theta, mr, t_ref, o["t_window"], 10 ** 7)
            res[f"fwd_L{li}_{type(layer).__name__}"] = best(f, args.repeats)
        elif isinstance(layer, (MaxPool2d, AvgPool2d)):
            def f(li=li, layer=layer):
                for bt in batches:
                    cur = bt[1][li - 1]
                    B._pool_batch(cur.times, cur.neurons, cur.values, cur.offsets,
                                  weights[li - 1], layer.n_out, isinstance(layer, MaxPool2d), 0.25)
            res[f"fwd_L{li}_{type(layer).__name__}"] = best(f, args.repeats)
        elif isinstance(layer, Dense):
            nrn = lneur[li - 1]
            tau_m, tau_s, theta, mr, t_ref = nrn.as_tuple()

            def f(li=li, nrn=nrn, tau_m=tau_m, tau_s=tau_s, theta=theta, mr=mr, t_ref=t_ref):
                for bt in batches:
                    cur = bt[1][li - 1]
                    B._dense_batch(cur.times, cur.neurons, cur.values, cur.offsets,
                                   weights[li - 1], tau_m, tau_s, theta, mr, t_ref,
                                   o["t_window"], 10 ** 7)
            res[f"fwd_L{li}_Dense"] = best(f, args.repeats)
    # backward
    code = K.KERNEL_EXP if o["kernel"] == "exp" else K.KERNEL_DEPSILON
    clamp = None if o["clamp"] is None else tuple(o["clamp"])
    lo, hi = clamp if clamp is not None else (0.0, 0.0)
    prep = _prepare(net)

    def bwd():
        for bt in batches:
            levels = bt[1]
            B.backward_batch(net, levels[:-1] + [bt[3]], bt[2], bt[4], code, o["tau_grad"],
                             o["drop_nonpositive"], clamp, o["factor"], n_threads=1, prep=prep)
    res["backward"] = best(bwd, args.repeats)
    # the dL/dt each weighted layer receives, then each kernel alone
    lowest = _lowest_level(net, False)
    per = []
    for bt in batches:
        levels = bt[1][:-1] + [bt[3]]
        g = bt[4]
        d = {}
        for li in range(L, lowest, -1):
            layer = net.layers[li - 1]
            p = prep[li - 1]
            below, here = levels[li - 1], levels[li]
            if p[0] in ("dense", "conv"):
                nrn = lneur[li - 1]
                blk = K.block_length(nrn.tau_m, nrn.tau_s, code, o["tau_grad"])
                need_in = li - 1 > lowest
                args_ = (p[0], np.zeros(0, np.int64) if p[0] == "dense" else p[2], p[1], p[1].size)
                call = (below.times, below.neurons, below.values, below.offsets,
                        here.times, here.neurons, here.offsets, g, below.n_neurons,
                        here.n_neurons, *args_, nrn.tau_m, nrn.tau_s, nrn.t_ref, code,
                        o["tau_grad"], bool(o["drop_nonpositive"]), clamp is not None, lo, hi,
                        o["factor"], need_in, blk, False)
                d[li] = call
                g = B._layer_backward_batch(*call)[0]
            elif p[0] in ("max", "avg"):
                src, winner = bt[2][li]
                g = B.pool_backward_batch(g, here.offsets, src, winner, below.offsets,
                                          p[0] == "max", True, 1.0)
        per.append(d)
    for li in per[0]:
        layer = net.layers[li - 1]

        def f(li=li):
            for d in per:
                B._layer_backward_batch(*d[li])
        res[f"bwd_L{li}_{type(layer).__name__}" + ("_ingrad" if per[0][li][-3] else "")] = \
            best(f, args.repeats)
    out = {k: (round(1e3 * v / n, 2) if isinstance(v, float) else v) for k, v in res.items()}
    print(json.dumps(out), flush=True)
    if args.baseline:
        compare(args.baseline, net, batches, weights, lneur, o["t_window"], args.rounds,
                args.repeats, n)


def load_kernel(checkout):
    """The ``conv_layer`` of another checkout's ``eventsnn/event/_conv.py``, its relative
    imports resolved in this checkout's package."""
    import importlib.util
    import re
    import tempfile

    src = (Path(checkout) / "eventsnn" / "event" / "_conv.py").read_text()
    src = re.sub(r"^from \.\._constants", "from eventsnn._constants", src, flags=re.M)
    src = re.sub(r"^from \._", "from eventsnn.event._", src, flags=re.M)
    path = Path(tempfile.mkdtemp()) / "baseline_conv.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("baseline_conv", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.conv_layer


def compare(checkout, net, batches, weights, lneur, t_end, rounds, repeats, n):
    """Each Conv2d layer's kernel of ``checkout`` and of this checkout over the recorded
    inputs, per sample, alternating; prints ms per recording per round and the ratio."""
    base = load_kernel(checkout)
    for li, layer in enumerate(net.layers, start=1):
        if not isinstance(layer, Conv2d):
            continue
        tau_m, tau_s, theta, mr, t_ref = lneur[li - 1].as_tuple()
        WT = _conv.transposed_weight(layer, weights[li - 1])
        C_in, H, W = layer.in_shape
        C_out, Ho, Wo = layer.out_shape
        ins = []
        for bt in batches:
            cur = bt[1][li - 1]
            for s in range(cur.n_samples):
                a, b = cur.offsets[s], cur.offsets[s + 1]
                ins.append((cur.times[a:b].copy(), cur.neurons[a:b].copy(),
                            cur.values[a:b].copy()))

        def run(fn):
            return [fn(t, i, v, WT, C_in, H, W, C_out, Ho, Wo, layer.kernel_size, layer.stride,
                       layer.padding, tau_m, tau_s, theta, mr, t_ref, t_end, 10 ** 7)
                    for t, i, v in ins]
        same = all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1]) and x[2] == y[2]
                   for x, y in zip(run(base), run(_conv.conv_layer)))
        for r in range(rounds):
            tb = best(lambda: run(base), repeats)
            tn = best(lambda: run(_conv.conv_layer), repeats)
            print(json.dumps({"layer": li, "round": r, "baseline_ms": round(1e3 * tb / n, 2),
                              "this_ms": round(1e3 * tn / n, 2), "ratio": round(tn / tb, 3),
                              "same_spikes": bool(same)}), flush=True)


if __name__ == "__main__":
    main()
