"""Learners (``eventsnn.learner.Learner``) of the dense-mode rules: "timing", "activation",
"antlr".

``Learner(net, rng=None, **options)``. Raw samples X (n, *in_shape) in [0, 1] are encoded as
a constant input current ``input_gain * X`` in every one of ``n_steps`` steps (the
``"current"`` encoder) or as Bernoulli spikes with probability X per step (``"poisson"``).
Gradients are batch means. Options and defaults are listed in ``COMMON`` and each class's
``DEFAULTS``; docs/dense.md explains them.

Biases: the activation and ANTLR learners train the layers' biases (``Dense(...,
bias=True)``; the ANTLR neuron family only) and take ``bias=True`` to give every Dense/Conv2d
layer that has none a zero bias. With a biased network, ``loss_and_grads`` returns 2 L
gradients: the L weight gradients, then the L bias gradients (None where a layer has no
bias); the trainer updates both. The timing learner rejects biased layers.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .. import _validate as v
from .._constants import MAX_FACTOR, MAX_MAGNITUDE
from ..learner import GradSums, Learner, SampleSeeds, batch_random
from ..network import Sequential
from . import losses
from .forward import forward_layers
from ..layers import reject_biases
from .neurons import RESETS, require_bias_support, require_full_reset, resolve_neuron
from .rules import activation, antlr, timing
from typing import TYPE_CHECKING, List, Optional

if TYPE_CHECKING:
    from .._typing import BatchRng, Samples
    from .record import DenseRecord

COMMON = {
    "neuron": "zhu",        # "zhu" | "antlr": family discretised from net.neuron (SRM, ms)
    "dt": 1.0,              # ms per step
    "n_steps": 16,          # T
    "encoder": "current",   # "current": input_gain * X every step | "poisson": Bernoulli(X) spikes
    "input_gain": 1.0,
    "n_true": 8.0,          # count targets of the label neuron ...
    "n_false": 1.0,         # ... and of the others
}


class _DenseLearner(Learner):
    kernel_modules = ("eventsnn.dense._neurons", "eventsnn.dense.rules.activation",
                      "eventsnn.dense.rules.timing")
    DEFAULTS: dict = {}
    LOSSES: tuple[str, ...] = ("count",)
    SUPPORTS_BIAS = False

    def __init__(self, net, rng=None, **options):
        if not isinstance(net, Sequential):
            raise TypeError(f"net must be an eventsnn.Sequential, got {type(net).__name__}")
        known = {**COMMON, **self.DEFAULTS}
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ValueError(f"unknown option(s) {unknown} for rule {self.name!r}; known: {sorted(known)}")
        o = dict(known)
        o.update(options)
        self.net = net
        self.rng = v.rng_from(rng)
        o["dt"] = v.positive_float("dt", o["dt"])
        o["n_steps"] = v.n_steps("n_steps", o["n_steps"])
        v.choice("encoder", o["encoder"], ("current", "poisson"))
        o["input_gain"] = v.bounded_float("input_gain", o["input_gain"], 5e-324, MAX_MAGNITUDE)
        o["n_true"] = v.real_in("n_true", o["n_true"], -MAX_MAGNITUDE, MAX_MAGNITUDE)
        o["n_false"] = v.real_in("n_false", o["n_false"], -MAX_MAGNITUDE, MAX_MAGNITUDE)
        v.choice("loss", o["loss"], self.LOSSES)
        srm = net._single_srm(f"rule {self.name!r}") if o["neuron"] in (None, "zhu", "antlr") \
            else None
        self.neuron = resolve_neuron(o["neuron"], srm, o["dt"])
        self.options = o
        self._check(o)
        self._check_bias(o)

    def _check_bias(self, o):
        if not self.SUPPORTS_BIAS:
            reject_biases(self.net.layers, f"the {self.name} rule")
            return
        if not isinstance(o["bias"], (bool, np.bool_)):
            raise TypeError(f"bias must be a bool, got {o['bias']!r}")
        if (o["bias"] or self.net.has_bias) and self.neuron.family != "antlr":
            if o["bias"]:
                raise ValueError(f"bias=True needs the antlr neuron family (neuron='antlr' or an "
                                 f"AntlrNeuron), got {self.neuron!r}")
            require_bias_support(self.net.layers, self.neuron)
        if o["bias"]:
            for layer in self.net.layers:
                if layer.has_weight and not layer.has_bias:
                    layer.bias = np.zeros(layer.bias_shape)

    def _check(self, o):
        pass

    # ---- encoding and forward -------------------------------------------------------------
    def encode(self, X, rng=None):
        """Time-major input (T, B, n_in) of raw samples X (n, *in_shape) in [0, 1]."""
        X = v.float_array("X", X)
        if X.ndim < 2 or int(np.prod(X.shape[1:])) != self.net.n_in:
            raise ValueError(f"X must be (n, *in_shape) with {self.net.n_in} features per sample, "
                             f"got shape {X.shape}")
        X = X.reshape(len(X), -1)
        T = self.options["n_steps"]
        if self.options["encoder"] == "current":
            return np.broadcast_to(self.options["input_gain"] * X, (T,) + X.shape)
        gen = self.rng if rng is None else rng if isinstance(rng, SampleSeeds) else v.rng_from(rng)
        return (batch_random(gen, len(X), (T, X.shape[1]), axis=1) < np.clip(X, 0, 1)).astype(np.float64)

    def forward(self, X, rng=None):
        self.net._check_weights()
        return forward_layers(self.net.layers, self.encode(X, rng), self.neuron, self.options["dt"])

    def _spike_sum(self, rec):
        return sum(float(o.sum()) for o, layer in zip(rec.outputs, self.net.layers) if layer.has_neurons)

    def _stats(self, rec):
        spikes = self._spike_sum(rec)
        return {"spikes_per_sample": spikes / rec.batch_size, "spikes": spikes}

    def _predict(self, rec):
        """Most spikes wins; ties go to the earliest first spike."""
        counts = rec.counts()
        first = rec.first_spike()
        return np.argmax(counts * (rec.n_steps + 1) - first, axis=1).astype(np.int64)

    def predict(self, X, rng=None):
        rec = self.forward(X, rng)
        return self._predict(rec), self._stats(rec)

    def _labels(self, y, n):
        y = v.int_array("y", y)
        if y.shape != (n,):
            raise ValueError(f"y must hold one label per sample ({n}), got shape {y.shape}")
        if n and (y.min() < 0 or y.max() >= self.net.n_out):
            raise ValueError(f"y (labels) must be in [0, {self.net.n_out}), got values in [{y.min()}, {y.max()}]")
        return y

    def _finish(self, rec, loss, weights, preds=None, biases=None):
        """GradSums of the batch: weight gradients, followed by the bias gradients when the
        network has a bias (sums over the samples)."""
        grads = list(weights)
        if self.net.has_bias:
            grads += list(biases or [None] * len(weights))
        return GradSums(rec.batch_size, float(np.sum(loss)), grads,
                        self._predict(rec) if preds is None else preds, self._spike_sum(rec))


class TimingLearner(_DenseLearner):
    """Zhu et al.'s timing rule on the grid: count loss as one-sided spike-time gradients
    and the supervisory spike of the label neuron.

    The defaults follow the authors' code (``zhuyaoyu/SNN-event-driven-learning``, commit
    6cff83b): ``supervisory="reference"`` (the label neuron forced in every sample at the
    last step with Delta u > 0.05), ``factor=0.85`` (the gradient passed down), and
    ``h_window="forward"`` (H of a spike whose window a supervisory spike splits stays the
    forward's). ``preset="paper"`` takes the paper's instead: the label neuron forced to fire
    at the last step (``"end"``), factor 1 (the gradient sum is conserved, Eq. 8) and the
    split window. Explicit options override the preset. docs/fidelity.md lists them.
    """

    name = "timing"
    DEFAULTS = {
        "preset": "code",           # "code" | "paper": the defaults of the options below
        "loss": "count",
        "kernel": "exp",            # "exp" | "original"
        "tau_grad": 2.5,            # steps, exp kernel
        "max_inv_slope": 4.0,       # clamp of -1/Delta u
        "max_inv_h": None,          # cap of 1/H (the code's max_dudt_inv; None: none, its default)
        "factor": None,             # gradient factor per layer (code 0.85, paper 1.0)
        "supervisory": "preset",    # "reference" (code) | "end" (paper) | "increment" | "last" | None
        "min_increment": 0.05,
        "h_window": None,           # "forward" (code) | "split" (paper)
    }
    PRESETS = {
        "code": {"factor": 0.85, "supervisory": "reference", "h_window": "forward"},
        "paper": {"factor": 1.0, "supervisory": "end", "h_window": "split"},
    }

    def _check(self, o):
        require_full_reset(self.neuron, "timing")
        v.choice("preset", o["preset"], tuple(self.PRESETS))
        preset = self.PRESETS[o["preset"]]
        if o["factor"] is None:
            o["factor"] = preset["factor"]
        if o["supervisory"] == "preset":
            o["supervisory"] = preset["supervisory"]
        if o["h_window"] is None:
            o["h_window"] = preset["h_window"]
        timing.backward_kernel(self.neuron, o["n_steps"], o["kernel"], o["tau_grad"])
        o["factor"] = v.real_in("factor", o["factor"], -MAX_FACTOR, MAX_FACTOR)
        o["max_inv_slope"] = v.positive_float("max_inv_slope", o["max_inv_slope"])
        if o["max_inv_h"] is not None:
            o["max_inv_h"] = v.positive_float("max_inv_h", o["max_inv_h"])
        if o["supervisory"] is not None:
            v.choice("supervisory", o["supervisory"], losses.SUPERVISORY_MODES)
        o["min_increment"] = v.finite_float("min_increment", o["min_increment"])
        v.choice("h_window", o["h_window"], timing.H_WINDOWS)

    def loss_and_grad_sums(self, X: Samples, y: np.ndarray, rng: BatchRng = None) -> GradSums:
        o = self.options
        rec = self.forward(X, rng)
        y = self._labels(y, rec.batch_size)
        out = rec.output
        if o["supervisory"] is not None:
            out, _ = losses.supervisory_spikes(out, rec.increments[-1], y, o["min_increment"], o["supervisory"])
        loss, _, gt = losses.count_time_grads(out, y, o["n_true"], o["n_false"])
        # the supervisory spike is counted (as the code's loss counts it)
        g = timing.backward(rec, gt, kernel=o["kernel"], tau_grad=o["tau_grad"],
                            max_inv_slope=o["max_inv_slope"], factor=o["factor"], output_spikes=out,
                            h_window=o["h_window"], max_inv_h=o["max_inv_h"])
        return self._finish(rec, loss, g.weights)


class ActivationLearner(_DenseLearner):
    """Surrogate-gradient rule (SRM-based form by default, BPTT with ``reset_path=True``)."""

    name = "activation"
    LOSSES = ("count", "spike_train")
    SUPPORTS_BIAS = True
    DEFAULTS = {
        "loss": "count",
        "bias": False,              # True: add a zero bias to every Dense/Conv2d layer (antlr family)
        "surrogate": "exp",
        "surrogate_scale": None,
        "reset_path": False,
        "reset": None,              # None: the neuron's own; "full" | "subtract" | "membrane" (antlr family)
        "alpha": 0.9,               # spike_train loss filter
        "target_rate_true": 0.5,    # spike_train loss: regular target trains
        "target_rate_false": 0.0,
    }

    def _check(self, o):
        activation.surrogate_params(o["surrogate"], o["surrogate_scale"])
        if not isinstance(o["reset_path"], (bool, np.bool_)):
            raise TypeError(f"reset_path must be a bool, got {o['reset_path']!r}")
        _check_spike_train_options(o)
        if o["reset"] is not None:
            v.choice("reset", o["reset"], RESETS)
            if getattr(self.neuron, "reset", "full") != o["reset"]:
                if self.neuron.family != "antlr":
                    raise ValueError(f"reset={o['reset']!r} needs the antlr neuron family "
                                     "(neuron='antlr' or an AntlrNeuron)")
                self.neuron = dataclasses.replace(self.neuron, reset=o["reset"])

    def _loss(self, rec, y):
        o = self.options
        if o["loss"] == "count":
            tgt = losses.count_targets(y, self.net.n_out, o["n_true"], o["n_false"])
            return losses.count_loss(rec.output, tgt)
        return losses.spike_train_loss(rec.output, _regular_targets(rec, y, o), o["alpha"])

    def loss_and_grad_sums(self, X: Samples, y: np.ndarray, rng: BatchRng = None) -> GradSums:
        o = self.options
        rec = self.forward(X, rng)
        y = self._labels(y, rec.batch_size)
        loss, gs, _ = self._loss(rec, y)
        g = activation.backward(rec, gs, surrogate=o["surrogate"], surrogate_scale=o["surrogate_scale"],
                                reset_path=o["reset_path"])
        return self._finish(rec, loss, g.weights, biases=g.biases)


class AntlrLearner(_DenseLearner):
    """ANTLR (lambda_act dL/dS + lambda_tim dL/dt); losses of ANTLR Table 1.

    The defaults follow the authors' code (``KyungsuKim42/ANTLR``, commit 229983f):
    ``grad_clip=1.0`` (the batch-mean weight and bias gradients clamped element-wise),
    ``no_spike=0.1`` with ``no_spike_grad="code"`` (dL/dS = -0.1 for a silent label neuron),
    ``beta=0.166667``, ``spike_train="antlr"`` (the code's filtered difference, see
    :func:`eventsnn.dense.losses.spike_train_loss`), ``timing_penalty`` 100 for the timing
    method (``lambda_act=0``) and ``early_stop`` with the latency loss (the run stops once
    every output neuron of the batch has fired; b_v / b_bias stay those of ``n_steps``).
    ``preset="paper"``: no gradient clamp, no_spike 1 with the square's derivative, beta 1/6,
    the window-bounded spike-train loss, no early stop. Explicit options override the preset.
    """

    name = "antlr"
    LOSSES = ("count", "spike_train", "latency")
    SUPPORTS_BIAS = True
    DEFAULTS = {
        "preset": "code",           # "code" | "paper": the defaults of the None options below
        "loss": "count",
        "bias": False,              # True: add a zero bias to every Dense/Conv2d layer (antlr family)
        "lambda_act": 1.0,
        "lambda_tim": 1.0,
        "surrogate": "exp",
        "surrogate_scale": None,
        "v_prime_min": 0.01,
        "clip": None,               # clamp of dL/dV (not in the code)
        "grad_clip": "preset",      # clamp of the parameter gradients (code 1.0, paper None)
        "timing_penalty": None,     # no-spike penalty; None: 100 for lambda_act = 0, else 0 (code)
        "alpha": 0.9,
        "spike_train": None,        # spike_train loss convention: "antlr" (code) | "window" (paper)
        "beta": None,               # latency loss: 0.166667 (code) | 1/6 (paper)
        "no_spike": None,           # latency loss: weight of the silent-label term (code 0.1, paper 1)
        "no_spike_grad": None,      # "code" (-no_spike) | "paper" (-2 no_spike)
        "early_stop": None,         # latency loss: stop once every output fired (code True)
        "target_rate_true": 0.5,
        "target_rate_false": 0.0,
    }
    PRESETS = {
        "code": {"grad_clip": 1.0, "spike_train": "antlr", "beta": 0.166667, "no_spike": 0.1,
                 "no_spike_grad": "code", "early_stop": True},
        "paper": {"grad_clip": None, "spike_train": "window", "beta": 1.0 / 6.0, "no_spike": 1.0,
                  "no_spike_grad": "paper", "early_stop": False},
    }

    def _check(self, o):
        require_full_reset(self.neuron, "ANTLR")
        v.choice("preset", o["preset"], tuple(self.PRESETS))
        for key, value in self.PRESETS[o["preset"]].items():
            if (o[key] == "preset") if key == "grad_clip" else (o[key] is None):
                o[key] = value
        activation.surrogate_params(o["surrogate"], o["surrogate_scale"])
        _check_spike_train_options(o)
        o["lambda_act"] = v.real_in("lambda_act", o["lambda_act"], -MAX_FACTOR, MAX_FACTOR)
        o["lambda_tim"] = v.real_in("lambda_tim", o["lambda_tim"], -MAX_FACTOR, MAX_FACTOR)
        o["v_prime_min"] = v.positive_float("v_prime_min", o["v_prime_min"])
        if o["clip"] is not None:
            o["clip"] = v.positive_float("clip", o["clip"])
        if o["grad_clip"] is not None:
            o["grad_clip"] = v.positive_float("grad_clip", o["grad_clip"])
        if o["timing_penalty"] is None:
            o["timing_penalty"] = 100.0 if o["lambda_act"] == 0.0 else 0.0
        o["timing_penalty"] = v.positive_float("timing_penalty", o["timing_penalty"], allow_zero=True)
        v.choice("spike_train", o["spike_train"], losses.SPIKE_TRAIN_CONVENTIONS)
        v.choice("no_spike_grad", o["no_spike_grad"], losses.NO_SPIKE_GRADS)
        o["beta"] = v.positive_float("beta", o["beta"])
        o["no_spike"] = v.positive_float("no_spike", o["no_spike"], allow_zero=True)
        if not isinstance(o["early_stop"], (bool, np.bool_)):
            raise TypeError(f"early_stop must be a bool, got {o['early_stop']!r}")
        if o["early_stop"] and o["loss"] == "latency" and self.neuron.family == "antlr" \
                and self.neuron.b_window is None and self.neuron.b_v is None:
            # the code resolves b_v / b_bias from its configured length, not the stopped run's
            self.neuron = dataclasses.replace(self.neuron, b_window=o["n_steps"])

    def _predict(self, rec):
        if self.options["loss"] == "latency":
            return np.argmin(rec.first_spike() * (rec.n_steps + 2) - rec.counts(), axis=1).astype(np.int64)
        return super()._predict(rec)

    def loss_and_grad_sums(self, X: Samples, y: np.ndarray, rng: BatchRng = None) -> GradSums:
        o = self.options
        rec = self.forward(X, rng)
        y = self._labels(y, rec.batch_size)
        if o["loss"] == "latency" and o["early_stop"]:
            rec = truncate_record(rec, latency_stop(rec.output))
        if o["loss"] == "count":
            tgt = losses.count_targets(y, self.net.n_out, o["n_true"], o["n_false"])
            loss, gs, gt = losses.count_loss(rec.output, tgt)
        elif o["loss"] == "spike_train":
            loss, gs, gt = losses.spike_train_loss(rec.output, _regular_targets(rec, y, o), o["alpha"],
                                                   convention=o["spike_train"])
        else:
            loss, gs, gt = losses.latency_loss(rec.output, y, o["beta"], o["no_spike"], o["no_spike_grad"])
        g = antlr.backward(rec, gs, gt, lambda_act=o["lambda_act"], lambda_tim=o["lambda_tim"],
                           surrogate=o["surrogate"], surrogate_scale=o["surrogate_scale"],
                           v_prime_min=o["v_prime_min"], clip=o["clip"],
                           timing_penalty=o["timing_penalty"])
        return self._finish(rec, loss, g.weights, biases=g.biases)

    def finish_grads(self, grads: List[Optional[np.ndarray]]) -> List[Optional[np.ndarray]]:
        """``grad_clip``: element-wise clip of the batch-mean gradients."""
        c = self.options["grad_clip"]
        if c is None:
            return grads
        return [None if gr is None else np.clip(gr, -c, c) for gr in grads]


def latency_stop(S: np.ndarray) -> int:
    """Steps the ANTLR code's latency run lasts: up to and including the first step by which
    every output neuron of every sample has fired (the whole window if that never happens)."""
    fired = np.cumsum(S.reshape(S.shape[0], -1) != 0, axis=0) > 0
    done = np.nonzero(fired.all(axis=1))[0]
    return int(done[0]) + 1 if done.size else S.shape[0]


def truncate_record(rec: DenseRecord, n_steps: int) -> DenseRecord:
    """The first ``n_steps`` steps of a DenseRecord (a causal forward pass of that length,
    with the neuron's scales unchanged)."""
    if n_steps == rec.n_steps:
        return rec
    cut = lambda arrs: [None if a is None else a[:n_steps] for a in arrs]  # noqa: E731
    return dataclasses.replace(rec, inputs=cut(rec.inputs), currents=cut(rec.currents),
                               membranes=cut(rec.membranes), increments=cut(rec.increments),
                               outputs=cut(rec.outputs))


def _check_spike_train_options(o):
    """The spike_train loss's options, checked whatever the loss (a typo must not wait for
    the day the loss is switched): alpha in (0, 1), target rates in [0, 1] per step."""
    o["alpha"] = v.finite_float("alpha", o["alpha"])
    if not 0.0 < o["alpha"] < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {o['alpha']!r}")
    for key in ("target_rate_true", "target_rate_false"):
        o[key] = v.real_in(key, o[key], 0.0, 1.0)


def _regular_targets(rec, y, o):
    """Regular target trains: the label neuron fires at rate target_rate_true per step, the
    others at target_rate_false."""
    T, B, n = rec.output.shape
    tgt = np.zeros((T, B, n))
    for rate, mask in ((o["target_rate_true"], True), (o["target_rate_false"], False)):
        if rate <= 0:
            continue
        period = max(1, int(round(1.0 / rate)))
        steps = np.arange(period - 1, T, period)
        sel = np.zeros((B, n), dtype=bool)
        sel[np.arange(B), y] = True
        if not mask:
            sel = ~sel
        tgt[steps[:, None, None] * np.ones((1, B, n), dtype=int), np.arange(B)[None, :, None],
            np.arange(n)[None, None, :]] += sel[None] * 1.0
    return tgt
