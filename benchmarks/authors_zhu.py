"""Zhu et al.'s own PyTorch code (SNN-event-driven-learning at 6cff83b) on the rows of issue
12's table: process CPU time per epoch, one thread, float32, on this CPU.

Their code is not shipped here. Get a checkout and point ``--checkout`` at it::

    git clone https://github.com/zhuyaoyu/SNN-event-driven-learning /tmp/zhu
    git -C /tmp/zhu checkout 6cff83b

It is written for CUDA. This script copies the checkout to a temporary folder and applies,
at run time, two small patches to the copy so that it runs on the CPU:

1. parameters are created on the CPU (``.cuda()`` dropped, ``device='cuda'`` -> ``'cpu'``;
   the device of ``global_v`` is set to ``'cpu'``), and the CUDA neuron extension is not
   built (the ``python`` backend, their TorchScript loops, is used);
2. ``cpp_wrapper.cudnn_convolution_backward_input/weight`` (their cuDNN extension) become
   ``torch.nn.grad.conv2d_input`` / ``conv2d_weight`` (same gradients).

The training step is theirs: their layers (``layers/conv.py``, ``linear.py``,
``pooling.py``), their count loss (``layers/losses.py``), their firing-rate initialisation
(``glv.init_flag``), AdamW with their parameter groups, gradient-norm clipping at 1 and
their readout, as ``main.py`` does per batch; only the data loading is ours (the same
arrays eventsnn trains on). Two steps, because eventsnn and torch live in different
environments::

    python benchmarks/authors_zhu.py export --out /tmp/zhu_data.npz        # eventsnn's env
    /path/to/torch-env/bin/python benchmarks/authors_zhu.py run --checkout /tmp/zhu \\
        --data /tmp/zhu_data.npz --row fc --epochs 3                      # torch's env

Prints one JSON line per row: init_s (their initialisation on the first batch), epoch_s
(CPU seconds per epoch), train accuracy per epoch and, with ``--test``, test accuracy.
"""
import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

NMNIST = next((str(p / "shared" / "data" / "nmnist_slayer_small") for p in Path(__file__).resolve().parents[2:4]
           if (p / "shared" / "data" / "nmnist_slayer_small").is_dir()), "../shared/data/nmnist_slayer_small")

_DIGITS = {"n_steps": 5, "tau_m": 5, "tau_s": 3, "tau_grad": 2.5, "desired_count": 5,
           "undesired_count": 1, "avg_spike_init": 0.5, "lr": 0.0005, "weight_decay": 0.0005}
_NMNIST = {"n_steps": 30, "tau_m": 8, "tau_s": 4, "tau_grad": 3, "desired_count": 15,
           "undesired_count": 2, "avg_spike_init": 2, "lr": 0.0005, "weight_decay": 0.2}

#: the rows: data, their network settings (their mnist.yaml / n-mnist.yaml), layers, batch
ROWS = {
    "fc": {"data": "digits", "net": dict(_DIGITS, pooling_type="adjusted_avg"), "batch": 32,
           "layers": [("linear", 64, 100), ("linear", 100, 10)]},
    "cnn": {"data": "digits", "net": dict(_DIGITS, pooling_type="adjusted_avg"), "batch": 32,
            "layers": [("conv", 1, 16, 3, 1, 1), ("pooling", 2), ("linear", 16 * 4 * 4, 10)]},
    "nmnist": {"data": "nmnist", "net": dict(_NMNIST, pooling_type="max"), "batch": 8,
               "layers": [("conv", 2, 12, 5, 0, 2), ("pooling", 2), ("linear", 12 * 7 * 7, 10)]},
    "paper": {"data": "nmnist", "net": dict(_NMNIST, pooling_type="adjusted_avg"), "batch": 8,
              "layers": [("conv", 2, 12, 5, 1, 1), ("pooling", 2), ("conv", 12, 64, 5, 0, 1),
                         ("pooling", 2), ("linear", 64 * 6 * 6, 10)]},
}


# ---- export (eventsnn's environment) ---------------------------------------------------
def export(out, nmnist_dir):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from eventsnn.datasets import load
    from eventsnn.datasets import nmnist

    X, y, Xt, yt = load("digits")
    ev_tr, n_y = nmnist.load(nmnist_dir, "train")
    ev_te, n_yt = nmnist.load(nmnist_dir, "test")
    np.savez_compressed(
        out, digits_X=np.asarray(X, np.float32), digits_y=np.asarray(y), digits_Xt=np.asarray(Xt, np.float32),
        digits_yt=np.asarray(yt),
        nmnist_X=nmnist.to_frames(ev_tr, 30, t_max_us=300_000).astype(np.uint8), nmnist_y=np.asarray(n_y),
        nmnist_Xt=nmnist.to_frames(ev_te, 30, t_max_us=300_000).astype(np.uint8), nmnist_yt=np.asarray(n_yt))
    print(json.dumps({"written": out, "digits": len(y), "nmnist": len(n_y)}))


# ---- patches (applied to a temporary copy of the checkout) ------------------------------
def _sub(text, pattern, repl, path, count_min=1):
    new, n = re.subn(pattern, repl, text, flags=re.S)
    if n < count_min:
        raise RuntimeError(f"patch {pattern!r} did not apply to {path}: not commit 6cff83b?")
    return new


def patched_copy(checkout):
    src = Path(checkout)
    if not (src / "layers" / "conv.py").exists():
        raise SystemExit(f"{checkout} is not a checkout of SNN-event-driven-learning")
    dst = Path(tempfile.mkdtemp(prefix="zhu_cpu_"))
    for sub in ("layers",):
        shutil.copytree(src / sub, dst / sub)
    for name in ("global_v.py",):
        shutil.copy(src / name, dst / name)
    for name in ("conv.py", "linear.py"):
        p = dst / "layers" / name
        t = p.read_text()
        t = _sub(t, r"\.cuda\(\)", "", p)                                # patch 1
        t = _sub(t, r"device='cuda'", "device='cpu'", p)
        if name == "conv.py":
            t = _sub(t, r"cpp_wrapper = load\([^\n]*\n", "\n", p)
            t = _sub(t, r"cpp_wrapper\.cudnn_convolution_backward_input\(inputs\.shape, "  # patch 2
                        r"grad_in_\.to\(weight_\), weight_, padding,\s*stride, dilation, groups,"
                        r"[^)]*\)",
                     "torch.nn.grad.conv2d_input(inputs.shape, weight_, grad_in_.to(weight_), "
                     "stride, padding, dilation, groups)", p)
            t = _sub(t, r"cpp_wrapper\.cudnn_convolution_backward_weight\(weight\.shape, "
                        r"grad_w_\.to\(inputs\), inputs, padding,\s*stride, dilation, groups,"
                        r"[^)]*\)",
                     "torch.nn.grad.conv2d_weight(inputs, weight.shape, grad_w_.to(inputs), "
                     "stride, padding, dilation, groups)", p)
        p.write_text(t)
    p = dst / "layers" / "functions.py"
    t = _sub(p.read_text(), r"neuron_cuda = load\(", "neuron_cuda = None and load(", p)
    p.write_text(t)
    return dst


# ---- run (torch's environment) ---------------------------------------------------------
def _readout(out, T, torch):
    w = 1.1 - torch.arange(T).reshape(T, 1, 1) / T / 10
    return torch.sum(out * w, dim=0)


def run_row(name, code_dir, data, epochs, test, seed, batch=None):
    import warnings

    import torch

    warnings.filterwarnings("ignore", category=FutureWarning)  # torch.cuda.amp decorators
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    torch.manual_seed(seed)
    sys.path.insert(0, str(code_dir))
    import global_v as glv
    import layers.conv as conv
    import layers.linear as linear
    import layers.losses as losses
    import layers.pooling as pooling

    row = dict(ROWS[name])
    if batch:
        row["batch"] = batch
    cfg = {"loss": "count", "gradient_type": "exponential", "backend": "python", "n_class": 10,
           "optimizer": "AdamW", "batch_size": row["batch"], "epochs": epochs}
    cfg.update(row["net"])
    glv.rank = "cpu"
    layer_cfg = {}
    built = []
    for k, spec in enumerate(row["layers"]):
        key = f"l{k}"
        if spec[0] == "linear":
            c = {"type": "linear", "n_inputs": spec[1], "n_outputs": spec[2], "threshold": 1}
        elif spec[0] == "conv":
            c = {"type": "conv", "in_channels": spec[1], "out_channels": spec[2],
                 "kernel_size": spec[3], "padding": spec[4], "stride": spec[5], "threshold": 1}
        else:
            c = {"type": "pooling", "kernel_size": spec[1]}
        layer_cfg[key] = c
    glv.init(cfg, layer_cfg)
    for key, c in layer_cfg.items():
        cls = {"linear": linear.LinearLayer, "conv": conv.ConvLayer, "pooling": pooling.PoolLayer}
        built.append(cls[c["type"]](glv.network_config, c, key))
    net = torch.nn.Sequential(*built)
    T = glv.network_config["n_steps"]

    d = np.load(data)
    prefix = row["data"]
    X, y = d[f"{prefix}_X"], d[f"{prefix}_y"]
    Xt, yt = d[f"{prefix}_Xt"], d[f"{prefix}_yt"]
    shape = {"fc": (64,), "cnn": (1, 8, 8)}.get(name, (30, 2, 34, 34))
    X, Xt = X.reshape(-1, *shape), Xt.reshape(-1, *shape)

    def to_input(xb):  # (T, n, ...) float32, as their preprocess does
        x = torch.from_numpy(np.asarray(xb, np.float32))
        if prefix == "digits":
            return x.unsqueeze(0).repeat(T, *([1] * x.dim()))
        return x.permute(1, 0, 2, 3, 4).contiguous()

    def forward(x, labels):
        s = x
        for k, layer in enumerate(built):
            s = layer.forward(s, labels) if k == len(built) - 1 else layer.forward(s)
        return s

    rng = np.random.default_rng(seed)
    b = row["batch"]
    perm = rng.permutation(len(y))
    c0 = time.process_time()
    glv.init_flag = True                      # their firing-rate initialisation
    with torch.no_grad():
        forward(to_input(X[perm[:b]]), None)
    glv.init_flag = False
    init_s = time.process_time() - c0

    err = losses.SpikeLoss()
    params, norm_params = [], []
    for layer in built:
        if layer.type in ("conv", "linear"):
            norm_params += [layer.norm_weight, layer.norm_bias]
            params.append(layer.weight)
    lr = glv.network_config["lr"]
    opt = torch.optim.AdamW([{"params": params}, {"params": norm_params, "lr": lr}], lr=lr,
                            weight_decay=glv.network_config["weight_decay"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    desired, undesired = glv.network_config["desired_count"], glv.network_config["undesired_count"]
    epoch_s, train_acc = [], []
    for epoch in range(epochs):
        perm = rng.permutation(len(y))
        correct = 0
        c0 = time.process_time()
        for k in range(0, len(y), b):
            idx = perm[k:k + b]
            labels = torch.from_numpy(np.asarray(y[idx], np.int64))
            out = forward(to_input(X[idx]), labels)
            targets = torch.ones_like(out[0]) * undesired
            targets[torch.arange(len(idx)), labels] = desired
            loss = err.spike_count(out, targets)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1)
            opt.step()
            pred = torch.argmax(_readout(glv.outputs_raw, T, torch), dim=1)
            correct += int((pred == labels).sum())
        sched.step()
        epoch_s.append(round(time.process_time() - c0, 3))
        train_acc.append(round(correct / len(y), 4))
    res = {"row": name, "code": "SNN-event-driven-learning 6cff83b (CPU patches)", "T": T,
           "batch": b, "n_train": len(y), "init_s": round(init_s, 3), "epoch_s": epoch_s,
           "train_accuracy": train_acc, "torch": torch.__version__}
    if test:
        correct = 0
        with torch.no_grad():
            for k in range(0, len(yt), 100):
                out = forward(to_input(Xt[k:k + 100]), None)
                pred = torch.argmax(_readout(out, T, torch), dim=1).numpy()
                correct += int((pred == yt[k:k + 100]).sum())
        res["test_accuracy"] = correct / len(yt)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export", help="write the data arrays (run in eventsnn's environment)")
    e.add_argument("--out", required=True)
    e.add_argument("--nmnist", default=NMNIST)
    r = sub.add_parser("run", help="train with their code (run in an environment with torch)")
    r.add_argument("--checkout", required=True, help="a checkout of their repository at 6cff83b")
    r.add_argument("--data", required=True, help="the file written by 'export'")
    r.add_argument("--row", choices=sorted(ROWS), required=True)
    r.add_argument("--epochs", type=int, default=2)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--batch", type=int, help="override the row's batch size")
    r.add_argument("--test", action="store_true")
    args = ap.parse_args()
    if args.cmd == "export":
        export(args.out, args.nmnist)
        return
    try:
        import torch  # noqa: F401
    except ImportError:
        raise SystemExit("torch is missing: pip install torch==2.13.0 (CPU wheel)") from None
    code = patched_copy(args.checkout)
    try:
        print(json.dumps(run_row(args.row, code, args.data, args.epochs, args.test, args.seed, args.batch)),
              flush=True)
    finally:
        shutil.rmtree(code, ignore_errors=True)


if __name__ == "__main__":
    main()
