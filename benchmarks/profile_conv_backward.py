"""Where the time of the event-mode backward pass goes on the conv training rows.

    python benchmarks/profile_conv_backward.py --row fc       # digits 64-100-10 (dense)
    python benchmarks/profile_conv_backward.py --row cnn      # digits 16C3p1-P2-10
    python benchmarks/profile_conv_backward.py --row nmnist   # N-MNIST 12C5s2-MP2-10
    python benchmarks/profile_conv_backward.py --row paper --batches 1

Builds the row's network as ``benchmarks/train_epoch.py`` does (firing-rate initialisation
on the first batch), simulates ``--batches`` training batches and records what the backward
pass of each batch gets (levels, relays, dL/dt of the output events). Then times, process
CPU time, one thread, best of ``--repeats`` after a warm-up, summed over the batches:
``backward_batch`` as training calls it, each weighted layer's kernel over the batch (with
the input time gradient where training computes it), and the pieces of a layer's kernel
(the per-pair work: the pass with one output spike per sample; the per-spike work: the
pass with one input event per sample; the window edges). Prints one line per item;
``--baseline DIR`` also times the same recorded inputs with the kernels of another
checkout (e.g. main unpacked with ``git archive``) in a subprocess.
"""
import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import pickle  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NEW = True   # this checkout's kernels (conv_backward); set in profile()


from _timing import best_cpu as best  # noqa: E402  (seconds)


def record(row, n_batches, seed=0):
    """(net, options, [(levels, relays, g), ...]) of the first training batches of a row."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import numpy as np

    import train_epoch as te
    from eventsnn.network import Sequential
    from eventsnn.train import _take
    from eventsnn.neurons import SRM
    from eventsnn.event.learner import EventLearner
    from eventsnn.train_cli import input_shape, load_dataset, parse_arch

    spec = te.ROWS[row]
    X, y, _, _ = load_dataset(spec["dataset"], te.NMNIST if spec["dataset"] == "nmnist" else None,
                              dict(spec["data"]))
    b = spec["batch"]
    perm = np.random.default_rng(seed).permutation(len(y))[: b * n_batches]
    net = Sequential(*parse_arch(spec["arch"], input_shape(X), 10), neuron=SRM(), rng=0)
    learner = EventLearner(net, rng=0, n_threads=1, **spec["opt"])
    learner.initialise(_take(X, perm[:b]))
    batches = []
    for k in range(n_batches):
        idx = perm[k * b:(k + 1) * b]
        events = learner.encode_batch(_take(X, idx))
        levels, relays = learner._forward(events)
        out, _, g = learner._loss(levels[-1], np.asarray(y[idx]))
        batches.append((levels[:-1] + [out], relays, g))
    return net, learner.options, batches


def _kernel_args(p, layer):
    """The layer arguments of ``batch._layer_backward_batch`` of this checkout."""
    import numpy as np
    E = np.zeros(0, np.int64)
    if NEW:
        return (p[0], E if p[0] == "dense" else p[2], p[1], p[1].size)
    if p[0] == "dense":
        return (True, E, E, E, p[1], p[1].size)
    return (False, p[2], p[3], p[4], p[1], layer.weight.size)


def profile(net, o, batches, repeats, pieces=True):
    import numpy as np

    from eventsnn.event import _backward as K
    from eventsnn.event import batch as B
    from eventsnn.event.backward import _prepare

    global NEW
    NEW = hasattr(K, "conv_backward")
    code = K.KERNEL_EXP if o["kernel"] == "exp" else K.KERNEL_DEPSILON
    clamp = None if o["clamp"] is None else tuple(o["clamp"])
    lo, hi = clamp if clamp is not None else (0.0, 0.0)
    tg = o["tau_grad"]
    prep = _prepare(net)
    res = {}

    def whole():
        for levels, relays, g in batches:
            B.backward_batch(net, levels, relays, g, code, tg, o["drop_nonpositive"], clamp,
                             o["factor"], n_threads=1, prep=prep)
    res["backward_batch"] = best(whole, repeats)
    # per weighted layer: its kernel over the batch, with the dL/dt the pass hands it
    grads = []
    for levels, relays, g in batches:
        per = {}
        gg = g
        for li in range(len(net.layers), 0, -1):
            layer = net.layers[li - 1]
            p = prep[li - 1]
            below, here = levels[li - 1], levels[li]
            if p[0] in ("dense", "conv"):
                per[li] = gg
                nrn = net.layer_neurons[li - 1]
                blk = K.block_length(nrn.tau_m, nrn.tau_s, code, tg)
                args = _kernel_args(p, layer)
                gg, _, _ = B._layer_backward_batch(
                    below.times, below.neurons, below.values, below.offsets, here.times,
                    here.neurons, here.offsets, gg, below.n_neurons, here.n_neurons, *args,
                    nrn.tau_m, nrn.tau_s, nrn.t_ref, code, tg, bool(o["drop_nonpositive"]),
                    clamp is not None, lo, hi, o["factor"], True, blk, False)
            elif p[0] in ("max", "avg"):
                src, winner = relays[li]
                gg = B.pool_backward_batch(gg, here.offsets, src, winner, below.offsets,
                                           p[0] == "max", p[1] if p[0] == "avg" else True,
                                           p[2] if p[0] == "avg" else 1.0)
        grads.append(per)
    for li, layer in enumerate(net.layers, start=1):
        p = prep[li - 1]
        if p[0] not in ("dense", "conv"):
            continue
        nrn = net.layer_neurons[li - 1]
        blk = K.block_length(nrn.tau_m, nrn.tau_s, code, tg)
        args = _kernel_args(p, layer)
        need_in = li > 1

        def kern(li=li, args=args, need_in=need_in, nrn=nrn, blk=blk):
            for (levels, _, _), per in zip(batches, grads):
                below, here = levels[li - 1], levels[li]
                B._layer_backward_batch(
                    below.times, below.neurons, below.values, below.offsets, here.times,
                    here.neurons, here.offsets, per[li], below.n_neurons, here.n_neurons,
                    *args, nrn.tau_m, nrn.tau_s, nrn.t_ref, code, tg,
                    bool(o["drop_nonpositive"]), clamp is not None, lo, hi, o["factor"],
                    need_in, blk, False)
        res[f"layer {li} {layer!r} kernel (input_grad={need_in})"] = best(kern, repeats)
        if not pieces or not NEW:
            continue
        # the pieces, per sample: the pass without the spikes but one (the per-pair work of
        # both sweeps: targets of every event), with one input event (the per-spike work:
        # window edges, factors, coefficients), the window edges alone
        samples = []
        for (levels, _, _), per in zip(batches, grads):
            below, here = levels[li - 1], levels[li]
            for s in range(below.n_samples):
                a, b = below.offsets[s], below.offsets[s + 1]
                c, d = here.offsets[s], here.offsets[s + 1]
                samples.append((below.times[a:b], below.neurons[a:b], below.values[a:b],
                                here.times[c:d], here.neurons[c:d], per[li][c:d]))
        n_out = layer.n_out
        common = (nrn.tau_m, nrn.tau_s, nrn.t_ref, code, tg, bool(o["drop_nonpositive"]),
                  clamp is not None, lo, hi, o["factor"], need_in, blk)
        E = np.zeros(0, np.int64)

        def call(it, ii, iv, ot, oi, g):
            if p[0] == "conv":
                K.conv_backward(it, ii, iv, ot, oi, g, p[2], p[1], *common)
            else:
                K.layer_backward(it, ii, iv, ot, oi, g, layer.n_in, n_out, True, E, E, E, p[1],
                                 p[1].size, *common)

        def pairs():
            for (it, ii, iv, ot, oi, g) in samples:
                call(it, ii, iv, ot[:1], oi[:1], g[:1])

        def spikes():
            for (it, ii, iv, ot, oi, g) in samples:
                call(it[:1], ii[:1], iv[:1], ot, oi, g)

        def edges():
            for (it, ii, iv, ot, oi, g) in samples:
                start, order_ = K._spikes_by_neuron(oi, n_out)
                r = K._window_starts(ot, oi, n_out, nrn.t_ref, start, order_)
                K._edges_merged(ot, oi, r, n_out, start, order_)
        res[f"  layer {li}: per-pair work (one output spike per sample)"] = best(pairs, repeats)
        res[f"  layer {li}: per-spike work (one input event per sample)"] = best(spikes, repeats)
        res[f"  layer {li}: window edges (spikes grouped, merged)"] = best(edges, repeats)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--row", default="cnn", choices=["fc", "cnn", "nmnist", "paper"])
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--baseline", help="another checkout whose kernels time the same inputs")
    ap.add_argument("--_replay", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._replay:   # subprocess of --baseline: time the pickled inputs with this checkout
        with open(a._replay, "rb") as f:
            net, o, batches = pickle.load(f)
        for k, x in profile(net, o, batches, a.repeats, pieces=False).items():
            print(f"{k:60s} {1e3 * x:9.1f} ms", flush=True)
        return
    sys.path.insert(0, str(ROOT))
    net, o, batches = record(a.row, a.batches)
    n = sum(b[0][0].n_samples for b in batches)
    ev = [sum(b[0][li].times.size for b in batches) // n for li in range(len(net.layers) + 1)]
    print(f"row {a.row}: {a.batches} batches, {n} samples, events per sample and level {ev}, "
          f"load {os.getloadavg()[0]:.1f}")
    for k, x in profile(net, o, batches, a.repeats).items():
        print(f"{k:60s} {1e3 * x:9.1f} ms", flush=True)
    if a.baseline:
        with tempfile.NamedTemporaryFile(suffix=".pkl", delete=False) as f:
            pickle.dump((net, o, batches), f)
        print(f"baseline {a.baseline}:", flush=True)
        env = dict(os.environ, PYTHONPATH=str(Path(a.baseline).resolve()))
        subprocess.run([sys.executable, str(Path(__file__).resolve()), "--_replay", f.name,
                        "--repeats", str(a.repeats)], env=env, cwd=a.baseline, check=True)
        os.unlink(f.name)


if __name__ == "__main__":
    main()
