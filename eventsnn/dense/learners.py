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
import dataclasses

import numpy as np

from .. import _validate as v
from ..learner import Learner
from ..network import Sequential
from . import losses
from .forward import forward_layers
from ..layers import reject_biases
from .neurons import RESETS, require_bias_support, require_full_reset, resolve_neuron
from .rules import activation, antlr, timing

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
    DEFAULTS = {}
    LOSSES = ("count",)
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
        o["n_steps"] = v.positive_int("n_steps", o["n_steps"])
        v.choice("encoder", o["encoder"], ("current", "poisson"))
        o["input_gain"] = v.positive_float("input_gain", o["input_gain"])
        o["n_true"] = v.finite_float("n_true", o["n_true"])
        o["n_false"] = v.finite_float("n_false", o["n_false"])
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
        gen = self.rng if rng is None else v.rng_from(rng)
        return (gen.random((T,) + X.shape) < np.clip(X, 0, 1)).astype(np.float64)

    def forward(self, X, rng=None):
        self.net._check_weights()
        return forward_layers(self.net.layers, self.encode(X, rng), self.neuron, self.options["dt"])

    def _stats(self, rec):
        spikes = sum(float(o.sum()) for o, layer in zip(rec.outputs, self.net.layers) if layer.has_neurons)
        return {"spikes_per_sample": spikes / rec.batch_size}

    def _predict(self, rec):
        """Most spikes wins; ties go to the earliest first spike."""
        counts = rec.counts()
        first = rec.first_spike()
        return np.argmax(counts * (rec.n_steps + 1) - first, axis=1).astype(np.int64)

    def predict(self, X):
        rec = self.forward(X)
        return self._predict(rec), self._stats(rec)

    def _labels(self, y, n):
        y = v.int_array("y", y)
        if y.shape != (n,):
            raise ValueError(f"y must hold one label per sample ({n}), got shape {y.shape}")
        if n and (y.min() < 0 or y.max() >= self.net.n_out):
            raise ValueError(f"y (labels) must be in [0, {self.net.n_out}), got values in [{y.min()}, {y.max()}]")
        return y

    def _finish(self, rec, loss, weights, preds=None, biases=None):
        """(loss, grads, predictions, stats); grads = weight gradients, followed by the bias
        gradients when the network has a bias (batch means)."""
        B = rec.batch_size
        grads = [None if w is None else w / B for w in weights]
        if self.net.has_bias:
            biases = biases or [None] * len(weights)
            grads += [None if b is None else b / B for b in biases]
        return (float(np.mean(loss)), grads, self._predict(rec) if preds is None else preds,
                self._stats(rec))


class TimingLearner(_DenseLearner):
    """Zhu et al.'s timing rule on the grid: count loss as one-sided spike-time gradients
    and the supervisory spike for silent label neurons."""

    name = "timing"
    DEFAULTS = {
        "loss": "count",
        "kernel": "exp",            # "exp" | "original"
        "tau_grad": 2.5,            # steps, exp kernel
        "max_inv_slope": 4.0,       # clamp of -1/Delta u
        "factor": 1.0,              # gradient factor per layer (reference code 0.85)
        "supervisory": "increment",  # "increment" | "last" | None
        "min_increment": 0.05,
    }

    def _check(self, o):
        require_full_reset(self.neuron, "timing")
        timing.backward_kernel(self.neuron, o["n_steps"], o["kernel"], o["tau_grad"])
        o["factor"] = v.finite_float("factor", o["factor"])
        o["max_inv_slope"] = v.positive_float("max_inv_slope", o["max_inv_slope"])
        if o["supervisory"] is not None:
            v.choice("supervisory", o["supervisory"], ("increment", "last"))
        o["min_increment"] = v.finite_float("min_increment", o["min_increment"])

    def loss_and_grads(self, X, y, rng=None):
        o = self.options
        rec = self.forward(X, rng)
        y = self._labels(y, rec.batch_size)
        out = rec.output
        if o["supervisory"] is not None:
            out, _ = losses.supervisory_spikes(out, rec.increments[-1], y, o["min_increment"], o["supervisory"])
        loss, _, gt = losses.count_time_grads(out, y, o["n_true"], o["n_false"])
        # the supervisory spike is counted: a label neuron with no real spike gets
        # g = (n_true - 1) / T on it (floor n_true - 1 real spikes once it fires)
        g = timing.backward(rec, gt, kernel=o["kernel"], tau_grad=o["tau_grad"],
                            max_inv_slope=o["max_inv_slope"], factor=o["factor"], output_spikes=out)
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

    def loss_and_grads(self, X, y, rng=None):
        o = self.options
        rec = self.forward(X, rng)
        y = self._labels(y, rec.batch_size)
        loss, gs, _ = self._loss(rec, y)
        g = activation.backward(rec, gs, surrogate=o["surrogate"], surrogate_scale=o["surrogate_scale"],
                                reset_path=o["reset_path"])
        return self._finish(rec, loss, g.weights, biases=g.biases)


class AntlrLearner(_DenseLearner):
    """ANTLR (lambda_act dL/dS + lambda_tim dL/dt); losses of ANTLR Table 1."""

    name = "antlr"
    LOSSES = ("count", "spike_train", "latency")
    SUPPORTS_BIAS = True
    DEFAULTS = {
        "loss": "count",
        "bias": False,              # True: add a zero bias to every Dense/Conv2d layer (antlr family)
        "lambda_act": 1.0,
        "lambda_tim": 1.0,
        "surrogate": "exp",
        "surrogate_scale": None,
        "v_prime_min": 0.01,
        "clip": None,
        "alpha": 0.9,
        "beta": 1.0 / 6.0,          # latency loss
        "no_spike": 1.0,            # latency loss: weight of the silent-label term
        "target_rate_true": 0.5,
        "target_rate_false": 0.0,
    }

    def _check(self, o):
        require_full_reset(self.neuron, "ANTLR")
        activation.surrogate_params(o["surrogate"], o["surrogate_scale"])
        o["lambda_act"] = v.finite_float("lambda_act", o["lambda_act"])
        o["lambda_tim"] = v.finite_float("lambda_tim", o["lambda_tim"])
        o["v_prime_min"] = v.positive_float("v_prime_min", o["v_prime_min"])
        if o["clip"] is not None:
            o["clip"] = v.positive_float("clip", o["clip"])

    def _predict(self, rec):
        if self.options["loss"] == "latency":
            return np.argmin(rec.first_spike() * (rec.n_steps + 2) - rec.counts(), axis=1).astype(np.int64)
        return super()._predict(rec)

    def loss_and_grads(self, X, y, rng=None):
        o = self.options
        rec = self.forward(X, rng)
        y = self._labels(y, rec.batch_size)
        if o["loss"] == "count":
            tgt = losses.count_targets(y, self.net.n_out, o["n_true"], o["n_false"])
            loss, gs, gt = losses.count_loss(rec.output, tgt)
        elif o["loss"] == "spike_train":
            loss, gs, gt = losses.spike_train_loss(rec.output, _regular_targets(rec, y, o), o["alpha"])
        else:
            loss, gs, gt = losses.latency_loss(rec.output, y, o["beta"], o["no_spike"])
        g = antlr.backward(rec, gs, gt, lambda_act=o["lambda_act"], lambda_tim=o["lambda_tim"],
                           surrogate=o["surrogate"], surrogate_scale=o["surrogate_scale"],
                           v_prime_min=o["v_prime_min"], clip=o["clip"])
        return self._finish(rec, loss, g.weights, biases=g.biases)


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
