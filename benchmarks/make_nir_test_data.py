"""Write the NIR test files of tests/data/ with snnTorch's and Norse's own exporters.

Run once, in a separate environment (torch is never an eventsnn dependency):

    python -m venv /tmp/venv-nir && /tmp/venv-nir/bin/pip install torch==2.13.0
    /tmp/venv-nir/bin/pip install snntorch norse nir   # add -c with torch==2.13.0 pinned
    /tmp/venv-nir/bin/python benchmarks/make_nir_test_data.py

Written with snnTorch 1.0.0, Norse 1.1.0, nirtorch 2.6, nir 1.0.8, torch 2.13.0 (CPU).

- ``snntorch_mlp.nir``: Linear(6, 5) -> Leaky(beta 0.9, zero reset) -> Linear(5, 3) ->
  Synaptic(alpha 0.8, beta 0.9, zero reset). snnTorch's exporter hard-codes dt = 1e-4 s:
  tau = dt / (1 - beta), r = tau / dt, w_in = tau_syn / dt.
- ``snntorch_conv.nir``: Conv2d(1, 2, 3) -> Leaky -> AvgPool2d(2) -> Flatten -> Linear(18, 4)
  -> Synaptic, input (1, 8, 8).
- ``norse_mlp.nir``: Linear(6, 5) -> LIFCell (CubaLIF) -> Linear(5, 3) -> LIFBoxCell (LIF);
  Norse writes Linear as Affine with a zero bias and tau = dt / tau_inv with dt = 1e-3 s.

Neuron parameters are given per neuron (tensors of the layer's shape): with scalars, the
snnTorch 1.0 exporter writes 0-d arrays that fail nir 1.0.8's type check (snnTorch issue
#410). Norse's scalar parameters are written as they are; nir.write needs
``compression=None`` for 0-d arrays. Weights are set so that the tests' random inputs make
the neurons fire (Norse's files: tau of 10 us and r = 1 make one impulse of weight W raise v
by about W / 1e-5, so its weights are tiny).
"""
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")


def _set(layer, rng, mean, sd):
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(rng.normal(mean, sd, tuple(layer.weight.shape)),
                                        dtype=torch.float32))


def snntorch_files(rng):
    import nir
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    def leaky(shape):
        return snn.Leaky(beta=torch.full(shape, 0.9), threshold=torch.ones(shape), init_hidden=True,
                         reset_mechanism="zero")

    def synaptic(n, output=False):
        return snn.Synaptic(alpha=torch.full((n,), 0.8), beta=torch.full((n,), 0.9),
                            threshold=torch.ones(n), init_hidden=True, reset_mechanism="zero",
                            output=output)

    fc1, fc2 = torch.nn.Linear(6, 5, bias=False), torch.nn.Linear(5, 3, bias=False)
    _set(fc1, rng, 0.5, 0.5)
    _set(fc2, rng, 0.6, 0.4)
    net = torch.nn.Sequential(fc1, leaky((5,)), fc2, synaptic(3, output=True))
    nir.write(os.path.join(OUT, "snntorch_mlp.nir"), export_to_nir(net, torch.zeros(1, 6), ignore_dims=[0]))

    conv, fc = torch.nn.Conv2d(1, 2, 3, bias=False), torch.nn.Linear(18, 4, bias=False)
    _set(conv, rng, 0.3, 0.3)
    _set(fc, rng, 0.5, 0.5)
    net = torch.nn.Sequential(conv, leaky((2, 6, 6)), torch.nn.AvgPool2d((2, 2), stride=(2, 2)),
                              torch.nn.Flatten(), fc, synaptic(4, output=True))
    nir.write(os.path.join(OUT, "snntorch_conv.nir"),
              export_to_nir(net, torch.zeros(1, 1, 8, 8), ignore_dims=[0]))


def norse_files(rng):
    import nir
    import norse.torch as norse

    fc1, fc2 = torch.nn.Linear(6, 5, bias=False), torch.nn.Linear(5, 3, bias=False)
    _set(fc1, rng, 4e-5, 4e-5)
    _set(fc2, rng, 5e-6, 3e-6)
    net = norse.SequentialState(fc1, norse.LIFCell(), fc2, norse.LIFBoxCell())
    nir.write(os.path.join(OUT, "norse_mlp.nir"), norse.to_nir(net, torch.zeros(6)), compression=None)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    gen = np.random.default_rng(2026)
    snntorch_files(gen)
    norse_files(gen)
    for name in sorted(os.listdir(OUT)):
        if name.endswith(".nir"):
            print(name, os.path.getsize(os.path.join(OUT, name)), "bytes")
