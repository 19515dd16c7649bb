"""Event-mode training on the UCI digits: accuracy and wall time, plus Zhu et al.'s Table 3
ablation ({exp, depsilon} backward kernel x {avg, adjusted avg, max} pooling).

    python benchmarks/train_digits_event.py            # MLP + CNN + ablation
    python benchmarks/train_digits_event.py --only mlp # one part: mlp | cnn | ablation
    python benchmarks/train_digits_event.py --only ablation --ablation-seeds 0 1 2

Every run goes through ``eventsnn.train_cli.run`` (what ``eventsnn train`` does) with a
fixed seed, so each row can be reproduced with the ``eventsnn train`` command it prints.
Prints a markdown table; timings are wall-clock training time (no evaluation) and depend
on the machine's load.
"""
import argparse
import json
import os
import shlex
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from eventsnn.train_cli import DEFAULTS, run  # noqa: E402

#: the two headline models (their flags as ``eventsnn train`` takes them)
MODELS = {
    "mlp": {"arch": "64-100-10"},
    "cnn": {"arch": "16C3p1-P2-10", "epochs": 20},
}
#: epochs of each ablation run (shorter than the headline runs, to keep the table cheap)
ABLATION_EPOCHS = 15
#: the ablation: kernel x pooling on the CNN
ABLATION_KERNELS = ("exp", "depsilon")
ABLATION_POOLS = (("avg", "AP2"), ("adjusted avg", "P2"), ("max", "MP2"))


def _command(cfg):
    parts = ["eventsnn", "train"]
    for key in ("arch", "epochs", "batch", "lr", "seed"):
        if cfg.get(key) != DEFAULTS.get(key):
            parts += [f"--{key}", str(cfg[key])]
    for k, val in cfg.get("opt", {}).items():
        parts += ["--opt", f"{k}={json.dumps(val)}"]
    return " ".join(shlex.quote(p) for p in parts)


def _run(overrides):
    cfg = json.loads(json.dumps(DEFAULTS))
    cfg.update(overrides)
    cfg["progress"] = False
    m = run(cfg)
    return cfg, m


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=["mlp", "cnn", "ablation"])
    p.add_argument("--epochs", type=int, help="override the epochs of every run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ablation-seeds", type=int, nargs="+",
                   help="seeds of every ablation cell (mean +- sd over them; default: --seed)")
    args = p.parse_args(argv)
    extra = {"seed": args.seed}
    if args.epochs:
        extra["epochs"] = args.epochs
    rows = []
    for name in ("mlp", "cnn"):
        if args.only in (None, name):
            cfg, m = _run({**MODELS[name], **extra})
            rows.append((name, cfg, m))
            print(f"{name}: test {m['test_accuracy']:.4f}, train {m['train_seconds']:.1f} s, "
                  f"{m['spikes_per_sample']:.0f} spikes/sample", file=sys.stderr, flush=True)
    if rows:
        print("| model | arch | epochs | test accuracy | training time (s) | spikes/sample | command |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for name, cfg, m in rows:
            print(f"| {name} | {cfg['arch']} | {m['epochs']} | {100 * m['test_accuracy']:.2f} % | "
                  f"{m['train_seconds']:.1f} | {m['spikes_per_sample']:.0f} | `{_command(cfg)}` |")
    if args.only in (None, "ablation"):
        base = MODELS["cnn"]["arch"]
        seeds = args.ablation_seeds or [args.seed]
        table = {}
        for kernel in ABLATION_KERNELS:
            for label, tok in ABLATION_POOLS:
                arch = base.replace("P2", tok, 1)
                accs, cfgs = [], []
                for seed in seeds:
                    cfg, m = _run({"arch": arch, "epochs": ABLATION_EPOCHS, "opt": {"kernel": kernel},
                                   **extra, "seed": seed})
                    accs.append(m["test_accuracy"])
                    cfgs.append(cfg)
                    print(f"ablation {kernel} {label} seed {seed}: {m['test_accuracy']:.4f} "
                          f"({m['train_seconds']:.1f} s)", file=sys.stderr, flush=True)
                table[kernel, label] = (np.array(accs), cfgs)
        print()
        what = f"mean +- sd over seeds {seeds}" if len(seeds) > 1 else f"seed {seeds[0]}"
        print(f"test accuracy, {ABLATION_EPOCHS} epochs, {what}")
        print()
        print("| h(t) | " + " | ".join(label for label, _ in ABLATION_POOLS) + " |")
        print("| --- |" + " --- |" * len(ABLATION_POOLS))
        for kernel in ABLATION_KERNELS:
            name = "exp(-t/tau_grad)" if kernel == "exp" else "d eps/dt"
            cells = []
            for label, _ in ABLATION_POOLS:
                a = 100 * table[kernel, label][0]
                cells.append(f"{a.mean():.2f} %" + (f" +- {a.std(ddof=1):.2f}" if len(a) > 1 else ""))
            print(f"| {name} | " + " | ".join(cells) + " |")
        print()
        print("commands: " + "; ".join(f"`{_command(cfgs[0])}`" for _, cfgs in table.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
