"""Learners of TSSL-BP, NA and ASF-BP (the :class:`eventsnn.learner.Learner` contract).

Each learner wraps an :class:`eventsnn.Sequential` (its layers and weights; the SRM neuron
of the Sequential is not used) and its own neuron model. Construct with
``Learner(net, rng=None, **options)``; unknown options raise ValueError. Raw samples ``X``
(n, *in_shape) in [0, 1] are encoded per rule:

- TSSL-BP / NA: constant input currents ``input_scale * X`` at every one of ``n_steps``
  steps, filtered by the PSC kernel (the codes feed pixel intensities as currents).
- ASF-BP: Bernoulli ("Poisson") spikes with probability ``input_rate * |X|`` per step, signed
  like X (the code: |x|/2).

Gradients are those of the batch-mean loss.
"""
from __future__ import annotations

import copy

import numpy as np

from .. import _validate as _v
from .._constants import MAX_MAGNITUDE
from ..layers import AvgPool2d, MaxPool2d
from ..learner import GradSums, Learner, SampleSeeds, batch_random, sums_in_rounds
from ..network import Sequential
from .psc_network import (POOL_SUM_WEIGHT_CODE, PSC_LOSSES, PscBackwardPass, asf_backward, asf_forward,
                          asf_scale_ratios, count_loss, desired_spikes, psc_backward, psc_forward,
                          spike_train_loss)
from .rules.na import B_CODE, LOSS_CHANGES, NA_POWERS
from .psc_neurons import AsfNeuron, PscLIF, psc_filter
from .rules.asf import MIN_FLOW, RATIO_ENTRIES, SCALE_MOMENTUM, output_loss, update_scale
from .rules.na import B_PAPER, POWER_PAPER, abs_sum, na_delta, rescale_factor, rescale_mean
from .rules.tssl import MAX_INV_DELTA, SURROGATE_WIDTH, tssl_delta
from typing import TYPE_CHECKING, Any, Dict, List, Optional, cast

if TYPE_CHECKING:
    from .._typing import BatchRng, LossGrads, Predictions, Samples, Seed


def _samples(net, X):
    X = _v.float_array("X", X)
    if X.ndim < 1 or X.shape[0] < 1:
        raise ValueError("X must hold at least one sample")
    n = X.shape[0]
    flat = X.reshape(n, -1)
    if flat.shape[1] != net.n_in:
        raise ValueError(f"each sample of X must have {net.n_in} values (network input {net.in_shape}), "
                         f"got shape {X.shape[1:]}")
    return flat


def _options(defaults, options, rule):
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for rule {rule!r}; known: {sorted(defaults)}")
    out = dict(defaults)
    out.update(options)
    return out


class _PscLearner(Learner):
    kernel_modules = ("eventsnn.dense._psc_kernels", "eventsnn.dense.rules.tssl",
                      "eventsnn.dense.rules.na")
    """Shared part of TSSL-BP and NA: PscLIF network, PSC losses, classification by the
    time-summed output PSC."""

    COMMON = dict(n_steps=5, tau_m=8.0, tau_s=2.0, theta=1.0, reset="zero", loss="spike_train",
                  desired_count=None, undesired_count=0.0, pool_sum_weight=POOL_SUM_WEIGHT_CODE,
                  input_scale=1.0, sequence_input=False, target=None, target_filters=1)
    RULE: dict = {}

    def __init__(self, net, rng=None, **options):
        if not isinstance(net, Sequential):
            raise TypeError(f"net must be an eventsnn.Sequential, got {type(net).__name__}")
        net._reject_biases(f"the {self.name} rule (PscLIF / ASF neurons)")
        self.net = net
        opts = _options({**self.COMMON, **self.RULE}, options, self.name)
        self.n_steps = _v.n_steps("n_steps", opts["n_steps"])
        self.neuron = PscLIF(opts["tau_m"], opts["tau_s"], opts["theta"], opts["reset"])
        self.loss = _v.choice("loss", opts["loss"], PSC_LOSSES)
        self.input_scale = _v.real_in("input_scale", opts["input_scale"], -MAX_MAGNITUDE, MAX_MAGNITUDE)
        _v.boolean("sequence_input", opts["sequence_input"])
        psw = opts["pool_sum_weight"]
        self.pool_sum_weight = None if psw is None else _v.positive_float("pool_sum_weight", psw)
        desired = opts["desired_count"]
        if desired is None:  # PSC sum of the desired train of the spike-train loss
            desired = float(psc_filter(desired_spikes(self.n_steps)[:, None], self.neuron.tau_s).sum())
        self.desired_count = _v.real_in("desired_count", desired, -MAX_MAGNITUDE, MAX_MAGNITUDE)
        self.undesired_count = _v.real_in("undesired_count", opts["undesired_count"],
                                          -MAX_MAGNITUDE, MAX_MAGNITUDE)
        self.options = opts
        self._check_rule_options(opts)
        self.target = self._target(opts["target"])
        if isinstance(opts["target_filters"], bool) or opts["target_filters"] not in (1, 2):
            raise ValueError(f"target_filters must be 1 or 2, got {opts['target_filters']!r}")

    def _target(self, target):
        """The label neuron's desired train (T,) of the spike_train loss: None or "tssl" (the
        TSSL-BP code's :func:`desired_spikes`), "ones" (a spike every step, the NA code's), or
        an array of ``n_steps`` values."""
        T = self.n_steps
        if target is None or (isinstance(target, str) and target == "tssl"):
            return desired_spikes(T)
        if isinstance(target, str):
            if target != "ones":
                raise ValueError(f"target must be None, 'tssl', 'ones' or an array of {T} steps, got {target!r}")
            return np.ones(T)
        arr = _v.magnitude("target", _v.float_array("target", target, ndim=1))
        if arr.shape != (T,):
            raise ValueError(f"target must have n_steps = {T} entries, got shape {arr.shape}")
        return arr

    def _check_rule_options(self, opts):
        pass

    def encode(self, X):
        """Input currents (T, B, n_in) of raw samples X: ``input_scale * X`` at every step, or
        with ``sequence_input=True`` X holds one input per step, shape (n, n_steps, *in_shape)
        (e.g. event frames; the input spikes then go through the PSC filter)."""
        if self.options["sequence_input"]:
            X = _v.float_array("X", X)
            if X.ndim < 3 or X.shape[1] != self.n_steps:
                raise ValueError(f"with sequence_input, X must have shape (n, {self.n_steps}, *in_shape), "
                                 f"got {X.shape}")
            flat = X.reshape(X.shape[0], self.n_steps, -1)
            if flat.shape[2] != self.net.n_in:
                raise ValueError(f"each step of X must have {self.net.n_in} values, got {X.shape[2:]}")
            return np.ascontiguousarray(flat.transpose(1, 0, 2)) * self.input_scale
        flat = _samples(self.net, X) * self.input_scale
        return np.ascontiguousarray(np.broadcast_to(flat, (self.n_steps,) + flat.shape))

    def _forward(self, X):
        return psc_forward(self.net, self.encode(X), self.neuron, self.pool_sum_weight)

    def _loss(self, rec, y):
        """(per-sample losses (B,), dL/da of the output PSC (T, B, K))."""
        if self.loss == "spike_train":
            return spike_train_loss(rec.output, y, self.neuron.tau_s, self.target,
                                    self.options["target_filters"])
        return count_loss(rec.output, y, self.desired_count, self.undesired_count)

    def loss_and_grad_sums(self, X, y, rng=None):
        rec = self._forward(X)
        losses, g = self._loss(rec, y)
        B = g.shape[1]
        grads = psc_backward(self.net, rec, g, self._delta, self.pool_sum_weight)
        preds = np.argmax(rec.output.sum(axis=0), axis=1)
        return GradSums(B, float(np.sum(losses)), list(grads), preds,
                        float(np.sum(rec.spike_count())))

    def predict(self, X, rng=None):
        rec = self._forward(X)
        preds = np.argmax(rec.output.sum(axis=0), axis=1)
        counts = rec.spike_count()
        return preds, {"spikes_per_sample": float(np.mean(counts)), "spikes": float(np.sum(counts))}


class TsslLearner(_PscLearner):
    """TSSL-BP (Zhang & Li 2020); see :mod:`eventsnn.dense.rules.tssl` for the rule options
    ``low_psc_surrogate`` (default True = code), ``psc_threshold`` (None = 1/(4 tau_s)),
    ``silent_timing`` (default False), ``max_inv`` (8), ``surrogate_width`` (0.2).

    The spike-train loss's target follows the authors' code (``stonezwr/TSSL-BP``, ffaac71):
    the desired train filtered twice (``target_filters=2``: ``main.py`` applies ``psp`` and
    ``loss_kernel`` applies it again); ``preset="paper"`` filters it once (Eq. 7)."""

    name = "tssl"
    RULE = dict(preset="code", low_psc_surrogate=True, psc_threshold=None, silent_timing=False,
                max_inv=MAX_INV_DELTA, surrogate_width=SURROGATE_WIDTH, target_filters=None)
    PRESETS = {"code": dict(target_filters=2), "paper": dict(target_filters=1)}

    def __init__(self, net: Sequential, rng: Seed = None, **options: Any) -> None:
        preset = options.get("preset", "code")
        _v.choice("preset", preset, tuple(self.PRESETS))
        for key, value in self.PRESETS[preset].items():
            if options.get(key) is None:
                options[key] = value
        super().__init__(net, rng, **options)

    def _check_rule_options(self, opts):
        _v.boolean("low_psc_surrogate", opts["low_psc_surrogate"])
        _v.boolean("silent_timing", opts["silent_timing"])
        if opts["psc_threshold"] is not None:
            _v.finite_float("psc_threshold", opts["psc_threshold"])
        _v.positive_float("max_inv", opts["max_inv"])
        _v.bounded_float("surrogate_width", opts["surrogate_width"], 1e-6, 1e6)

    def _delta(self, l, g, st):
        o = self.options
        return tssl_delta(g, st["v"], st["s"], st["u"], st["a"], self.neuron,
                          low_psc_surrogate=o["low_psc_surrogate"], psc_threshold=o["psc_threshold"],
                          silent_timing=o["silent_timing"], max_inv=o["max_inv"],
                          surrogate_width=o["surrogate_width"])


class NaLearner(_PscLearner):
    """Neighbourhood aggregation (Yang et al. 2021).

    The defaults follow the authors' code at its head (``superrrpotato/Backpropagated-
    Neighborhood-Aggregation-...``, ``functions/na.py`` at bf8b564, 2021-06-10):
    ``b=5``, ``power=3`` (clip(1/d^3, -5, 5)), ``loss_change="accumulated"`` (e . (a_p - a)),
    ``rescale=True`` (the layer-wise rescaling
    :func:`~eventsnn.dense.rules.na.code_rescale`) and, for the spike_train loss, the code's
    target: a spike every step (``target="ones"``) filtered twice (``target_filters=2``).
    ``preset="paper"``: b = 10 (Appendix A.1), no rescaling, the TSSL-style desired train
    filtered once (Eq. 5). Explicit options override the preset. ``power=1`` with ``b=10``
    and ``loss_change="direct"`` is the code at 2f5eb14 / cb735e0.

    With ``rescale=True`` the backward pass runs in rounds, one per neuron layer
    (:meth:`start_sums`, :meth:`reduce_round`, :meth:`next_round`): the batch's mean |delta|
    of a layer is the sum of its blocks' partial sums, so the trainer's blocks and a Dask
    cluster's shares give the batch-wide rescaling (docs/distributed.md).
    """

    name = "na"
    RULE = dict(preset="code", b=None, rescale=None, power=POWER_PAPER, loss_change=None,
                target="preset", target_filters=None)
    PRESETS = {
        "code": dict(b=B_CODE, rescale=True, loss_change="accumulated", target="ones", target_filters=2),
        "paper": dict(b=B_PAPER, rescale=False, loss_change="accumulated", target=None, target_filters=1),
    }

    def __init__(self, net: Sequential, rng: Seed = None, **options: Any) -> None:
        preset = options.get("preset", "code")
        _v.choice("preset", preset, tuple(self.PRESETS))
        for key, value in self.PRESETS[preset].items():
            unset = options.get(key, "preset" if key == "target" else None)
            if (isinstance(unset, str) and unset == "preset") if key == "target" else unset is None:
                options[key] = value
        super().__init__(net, rng, **options)

    def _check_rule_options(self, opts):
        if isinstance(opts["power"], (bool, np.bool_)) or not isinstance(opts["power"], (int, float)) \
                or opts["power"] not in NA_POWERS:
            raise ValueError(f"power must be one of {NA_POWERS}, got {opts['power']!r:.80}")
        if not isinstance(opts["rescale"], (bool, np.bool_)):
            raise TypeError(f"rescale must be True or False, got {opts['rescale']!r}")
        _v.positive_float("b", opts["b"])
        _v.choice("loss_change", opts["loss_change"], LOSS_CHANGES)

    def loss_and_grad_sums(self, X: Samples, y: np.ndarray, rng: BatchRng = None) -> GradSums:
        if self.sum_rounds():
            return sums_in_rounds(self, X, y, rng, [(0, len(X))])
        return super().loss_and_grad_sums(X, y, rng)

    def _delta(self, l, g, st):
        o = self.options
        return na_delta(g, st["c"], st["v"], st["s"], self.neuron, b=o["b"], power=o["power"],
                        loss_change=o["loss_change"])

    # ---- rescale=True: the backward pass in rounds, one per neuron layer ------------------
    # The rescaling of a layer needs mean|delta| over the whole batch before the layer below
    # can be computed. Every block of the batch (one process: the trainer's blocks; a
    # cluster: the blocks of each worker's share) returns (sum |delta|, count) of its layer;
    # the sums of all blocks, added in block order, give the batch's mean (reduce_round), and
    # every block goes on with the factor. The output layer's rescaled mean (the reference
    # m_out of the layers below) is reduced the same way, one round later.
    def sum_rounds(self) -> bool:
        return bool(self.options["rescale"])

    def start_sums(self, X: Samples, y: np.ndarray, rng: BatchRng = None) -> _NaRounds:
        rec = self._forward(X)
        losses, g = self._loss(rec, y)
        state = _NaRounds(PscBackwardPass(self.net, rec, g, self.pool_sum_weight), g.shape[1],
                          float(np.sum(losses)), np.argmax(rec.output.sum(axis=0), axis=1),
                          float(np.sum(rec.spike_count())))
        return self._next_layer(state, [])

    def _next_layer(self, state, stats):
        p = state.backward
        l = p.next_neuron_layer()
        if l is None:
            state.raw, state.stats = None, None
            state.sums = GradSums(state.n, state.loss, list(p.result()), state.preds, state.spikes)
        else:
            state.raw = self._delta(l, p.g, p.rec.states[l])
            state.stats = stats + list(abs_sum(state.raw))
        return state

    def reduce_round(self, totals: List[float], shared: Any = None) -> Dict[str, Any]:
        """The batch's factor of the current layer (and, one round after the output layer,
        the output layer's stored mean m_out) from the summed block statistics."""
        totals = [float(x) for x in totals]
        if shared is None:  # the output layer: its own rounded mean is the reference
            mean = rescale_mean(*totals)
            return {"factor": rescale_factor(mean, round(mean, 3)), "m_out": None}
        m_out = shared["m_out"]
        if m_out is None:
            m_out, totals = round(rescale_mean(*totals[:2]), 3), totals[2:]
        return {"factor": rescale_factor(rescale_mean(*totals), m_out), "m_out": m_out}

    def next_round(self, state: _NaRounds, shared: Dict[str, Any]) -> _NaRounds:
        state = state.copy()
        out = state.raw * shared["factor"]
        # after the output layer: the parts of its rescaled mean (the layers' reference)
        stats = list(abs_sum(out)) if shared["m_out"] is None else []
        state.backward.apply(out)
        return self._next_layer(state, stats)


class _NaRounds:
    """One block's backward pass of NA with rescaling, between two rounds (picklable; on a
    cluster it stays on the worker that computed it). ``stats``: the additive statistics this
    round returns (None when done); ``sums``: the block's GradSums when done."""

    def __init__(self, backward, n, loss, preds, spikes):
        self.backward, self.n, self.loss, self.preds, self.spikes = backward, n, loss, preds, spikes
        self.raw, self.stats, self.sums = None, None, None

    def copy(self):
        other = copy.copy(self)
        other.backward = self.backward.copy()
        return other


class AsfLearner(Learner):
    """ASF-BP (Wu et al. 2021).

    Options: ``n_steps`` (100, the code), ``theta`` (1), ``leak`` (1 = IF; 0.99 = LIF),
    ``pool_theta`` (0.75: IF neurons after every pooling layer as in the code; None: none),
    ``encoder`` ("poisson": signed Bernoulli spikes drawn from X; "spikes": X holds pre-drawn
    input spikes (n, n_steps, *in_shape), e.g. the very spikes another implementation drew),
    ``input_rate`` (0.5: spike probability |x|/2 per step, the code), ``scale_every`` (5: the
    scales are updated on every batch of epochs 0, 5, 10, ...; 0 = never), ``scale_momentum``
    (0.4), ``ratio_entries`` ("fi_ge_fo" = code, "all" = paper Eq. 12), ``gate`` (True: the
    code's [FI > 0]). The epoch is counted by :meth:`after_epoch` calls.
    """

    name = "asf"
    _checkpoint_attrs = ("scales", "epoch")
    DEFAULTS = dict(n_steps=100, theta=1.0, leak=1.0, pool_theta=0.75, input_rate=0.5,
                    scale_every=5, scale_momentum=SCALE_MOMENTUM, ratio_entries="fi_ge_fo", gate=True,
                    encoder="poisson")

    def __init__(self, net: Sequential, rng: Seed = None, **options: Any) -> None:
        if not isinstance(net, Sequential):
            raise TypeError(f"net must be an eventsnn.Sequential, got {type(net).__name__}")
        net._reject_biases(f"the {self.name} rule (PscLIF / ASF neurons)")
        self.net = net
        o = _options(self.DEFAULTS, options, self.name)
        self.n_steps = _v.n_steps("n_steps", o["n_steps"])
        self.neuron = AsfNeuron(o["theta"], o["leak"], o["pool_theta"])
        self.input_rate = _v.positive_float("input_rate", o["input_rate"])
        self.scale_every = _v.positive_int("scale_every", o["scale_every"], allow_zero=True)
        self.scale_momentum = _v.finite_float("scale_momentum", o["scale_momentum"])
        if not 0.0 <= self.scale_momentum <= 1.0:
            raise ValueError(f"scale_momentum must be in [0, 1], got {self.scale_momentum}")
        self.ratio_entries = _v.choice("ratio_entries", o["ratio_entries"], RATIO_ENTRIES)
        self.gate = _v.boolean("gate", o["gate"])
        _v.choice("encoder", o["encoder"], ("poisson", "spikes"))
        self.options = o
        self.scales = [1.0 if self._spiking(layer, l) else None for l, layer in enumerate(net.layers)]
        self.epoch = 0
        self._rng = _v.rng_from(rng)

    def _spiking(self, layer, l):
        last = max(k for k, lay in enumerate(self.net.layers) if lay.has_neurons)
        if layer.has_neurons:
            return l != last
        return self.neuron.pool_theta is not None and isinstance(layer, (AvgPool2d, MaxPool2d))

    def encode(self, X: np.ndarray, rng: BatchRng = None) -> np.ndarray:
        """Signed Bernoulli spikes (T, B, n_in): P(spike) = min(1, input_rate |x|); with
        ``encoder="spikes"`` X (n, n_steps, *in_shape) is taken as the spikes themselves."""
        if self.options["encoder"] == "spikes":
            X = _v.float_array("X", X)
            if X.ndim < 3 or X.shape[1] != self.n_steps:
                raise ValueError(f"with encoder='spikes', X must have shape (n, {self.n_steps}, *in_shape), "
                                 f"got {X.shape}")
            flat = X.reshape(X.shape[0], self.n_steps, -1)
            if flat.shape[2] != self.net.n_in:
                raise ValueError(f"each step of X must have {self.net.n_in} values, got {X.shape[2:]}")
            return np.ascontiguousarray(flat.transpose(1, 0, 2))
        flat = _samples(self.net, X)
        gen = self._rng if rng is None else rng if isinstance(rng, SampleSeeds) else _v.rng_from(rng)
        p = np.minimum(1.0, self.input_rate * np.abs(flat))
        r = batch_random(gen, len(flat), (self.n_steps, flat.shape[1]), axis=1)
        return (r < p).astype(np.float64) * np.sign(flat)

    def updating_scales(self) -> bool:
        """Whether the scales are updated during the current epoch."""
        return self.scale_every > 0 and self.epoch % self.scale_every == 0

    def _flow_sums(self, rec):
        """[sum FO, sum FI] over the selected entries of every spiking layer (the two sums of
        each layer's ratio, :func:`~eventsnn.dense.rules.asf.scale_ratio`), flattened."""
        out = []
        for l, layer in enumerate(self.net.layers):
            if rec.spiking[l]:
                FO, FI = rec.FO[l], rec.FI[l]
                if layer.has_neurons and self.ratio_entries == "fi_ge_fo":
                    sel = FI >= FO
                    FO, FI = FO[sel], FI[sel]
                out += [float(FO.sum()), float(FI.sum())]
        return out

    def _update_scales(self, sums):
        k = 0
        scales = []
        for s in self.scales:
            if s is None:
                scales.append(None)
                continue
            num, den = sums[k], sums[k + 1]
            k += 2
            ratio = 1.0 if den < MIN_FLOW else num / den
            scales.append(update_scale(s, ratio, self.scale_momentum))
        self.scales = scales

    def needs_batch_statistics(self) -> bool:
        return self.updating_scales()

    def batch_statistics(self, X: Samples, y: Optional[np.ndarray],
                         rng: BatchRng = None) -> Optional[List[float]]:
        if not self.updating_scales():
            return None
        return self._flow_sums(asf_forward(self.net, self.encode(X, rng), self.neuron))

    def before_batch(self, X: Optional[Samples], y: Optional[np.ndarray], rng: BatchRng = None,
                     statistics: Optional[List[float]] = None) -> None:
        """Scale update (S <- (1 - m) ratio + m S) in the updating epochs, from the flows of the
        whole batch."""
        if not self.updating_scales():
            return
        if statistics is None:
            statistics = self.batch_statistics(X, y, rng)
        self._update_scales(statistics)

    def loss_and_grads(self, X: Samples, y: np.ndarray, rng: BatchRng = None) -> LossGrads:
        # one forward pass serves the scale update and the gradients
        rec = asf_forward(self.net, self.encode(X, rng), self.neuron)
        if self.updating_scales():
            self._update_scales(self._flow_sums(rec))
        return self.finish(self._grad_sums(rec, y))

    def loss_and_grad_sums(self, X: Samples, y: np.ndarray, rng: BatchRng = None) -> GradSums:
        return self._grad_sums(asf_forward(self.net, self.encode(X, rng), self.neuron), y)

    def _grad_sums(self, rec, y):
        losses, g = output_loss(rec.u_out, y, self.neuron.theta, self.n_steps)
        grads = asf_backward(self.net, rec, g, self.scales, self.gate)
        preds = np.argmax(rec.u_out, axis=1)
        return GradSums(g.shape[0], float(np.sum(losses)), grads, preds, float(np.sum(rec.n_spikes)))

    def predict(self, X: Samples, rng: BatchRng = None) -> Predictions:
        rec = asf_forward(self.net, self.encode(X, rng), self.neuron)
        return np.argmax(cast(np.ndarray, rec.u_out), axis=1), {"spikes_per_sample": float(np.mean(cast(np.ndarray, rec.n_spikes))),
                                              "spikes": float(np.sum(cast(np.ndarray, rec.n_spikes)))}

    def after_epoch(self, epoch: int) -> None:
        self.epoch += 1
