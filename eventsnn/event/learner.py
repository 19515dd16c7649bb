"""The event-mode learning rule: exact event simulation + timing backprop (Zhu et al. 2022).

``EventLearner(net, rng=None, **options)`` implements the :class:`eventsnn.learner.Learner`
contract (rule name ``"event"``). A mini-batch is encoded to event streams, simulated over
``[0, t_window]`` ms, turned into spike-time gradients by the loss and differentiated, each
step once per batch (``eventsnn.event.batch``: one loop of kernel calls per layer over the
samples, or per thread and chunk of samples); gradients are the batch mean. Networks with
membrane reset take the per-sample path (the exact adjoint). See docs/training.md for every
option.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .. import _validate as v
from .._constants import MAX_FACTOR, MAX_MAGNITUDE
from .. import encode as _encode
from .. import losses as _losses
from ..init import init_firing_rate
from ..learner import GradSums, Learner, SampleSeeds
from ..network import Sequential
from ..neurons import GRAD_KERNELS, RESETS, SRM
from ..spikes import SpikeTrains
from . import batch as _batch
from ._backward import KERNEL_DEPSILON, KERNEL_EXP
from .backward import _check_reset, backward_many
from typing import TYPE_CHECKING, Any, Dict, List, Optional

if TYPE_CHECKING:
    from .._typing import BatchRng, LossGrads, Predictions, Samples, Seed
    from .batch import Events

#: options of EventLearner and their defaults (docs/training.md explains each)
DEFAULTS: Dict[str, Any] = {
    "encoder": "current",                 # "current" | "latency" | "poisson"
    "input_times": [0.0, 1.0, 2.0, 3.0, 4.0],   # current encoder: event times (ms)
    "input_gain": 1.0,                    # multiplies the encoded values (current encoder)
    "latency_t_max": 5.0,                 # latency encoder: t for a zero pixel (ms)
    "poisson_rate": 200.0,                # poisson encoder: max rate (Hz)
    "t_window": 10.0,                     # simulated window T (ms)
    "loss": "count",                      # "count" | "first_spike" (= "latency") | "time_mse"
    "desired": 4.0,                       # count loss: floor for the label neuron
    "undesired": 0.0,                     # count loss: ceiling for the others
    "supervisory": True,                  # force the label neuron to fire at t_window
    "first_spike_tau": 1.0,               # first_spike loss: softmax temperature (ms)
    "target_time_true": 2.0,              # time_mse loss: target first-spike time of the label neuron (ms)
    "target_time_false": None,            # time_mse loss: ... of the others (ms; None: t_window)
    "kernel": "exp",                      # backward kernel h: "exp" | "depsilon"
    "tau_grad": 2.5,                      # ms, "exp" kernel
    "clamp": [-4.0, 0.0],                 # clamp of -1/(du/dt); null: none
    "factor": 1.0,                        # gradient factor per layer (reference 0.85)
    "drop_nonpositive": True,             # drop shares of spikes with S_k <= 0
    "init": True,                         # firing-rate initialisation on the first batch
    "init_target": 0.5,                   # mean spikes per neuron it aims at
    "init_samples": 64,                   # samples of the first batch used for it
    "n_threads": None,                    # threads over samples (default: numba's count)
    "reset": None,                        # null: the network's; "full" | "membrane" replace it
}

#: largest init_target (mean spikes per neuron and sample) the initialisation can aim at
MAX_INIT_TARGET = 1e6

LOSSES = ("count", "first_spike", "latency", "time_mse")
#: losses whose prediction is the earliest first spike
_LATENCY_LOSSES = ("first_spike", "latency", "time_mse")


class EventLearner(Learner):
    """Timing-backprop learner of an event-mode :class:`eventsnn.Sequential`.

    Parameters
    ----------
    net : Sequential (``reset="full"`` or ``"membrane"`` neurons; with membrane reset the
        backward pass is the exact adjoint of docs/gradients.md, and the option
        ``reset`` switches the reset of every layer's neurons, e.g. ``--opt reset=membrane``;
        LIF neurons are rejected).
    rng : numpy Generator, int seed or None (the Poisson encoder's randomness).
    **options : see ``DEFAULTS`` (unknown names raise ValueError).
    """

    name = "event"
    kernel_modules = ("eventsnn.event._engine", "eventsnn.event._backward", "eventsnn.event.batch")
    _checkpoint_attrs = ("initialised", "init_scales")
    per_sample_parts = True  # GradSums.parts: every sample's gradient, summed in batch order

    def __init__(self, net: Sequential, rng: Seed = None, **options: Any) -> None:
        if not isinstance(net, Sequential):
            raise TypeError(f"net must be an eventsnn.Sequential, got {type(net).__name__}")
        unknown = sorted(set(options) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"unknown option(s) {unknown} for rule 'event'; known: {sorted(DEFAULTS)}")
        net._reject_biases("the event rule (event mode)")
        o = dict(DEFAULTS)
        o.update(options)
        net._require_srm_layers("the event rule")
        if o["reset"] is not None:
            v.choice("reset", o["reset"], RESETS)
            if isinstance(net.neuron, SRM):
                net.neuron = dataclasses.replace(net.neuron, reset=o["reset"])
            net._own_neurons = [None if n is None else dataclasses.replace(n, reset=o["reset"])
                                for n in net._own_neurons]
        self.net = net
        self.rng = v.rng_from(rng)
        v.choice("encoder", o["encoder"], tuple(_encode.ENCODERS))
        if not isinstance(o["input_times"], (list, tuple, np.ndarray)) or (
                isinstance(o["input_times"], (list, tuple, np.ndarray))
                and any(isinstance(t, (bool, np.bool_)) for t in np.ravel(np.asarray(o["input_times"], dtype=object)))):
            raise TypeError(f"input_times must be a list of times in ms, got {o['input_times']!r}")
        o["input_times"] = [float(t) for t in v.float_array("input_times", o["input_times"], ndim=1)]
        o["input_gain"] = v.positive_float("input_gain", o["input_gain"])
        if o["clamp"] is not None:
            c = o["clamp"]
            if (isinstance(c, (str, bytes)) or not isinstance(c, (list, tuple, np.ndarray))
                    or len(c) != 2 or any(isinstance(x, bool) or not isinstance(x, (int, float, np.floating, np.integer))
                                          for x in c)):
                raise TypeError(f"clamp must be null/None or a pair [low, high] of numbers, got {c!r}")
            lo, hi = float(c[0]), float(c[1])
            if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi:
                raise ValueError(f"clamp must be a finite pair with low <= high, got {c!r}")
            o["clamp"] = [lo, hi]
        if o["input_gain"] > MAX_MAGNITUDE:  # pixel values in [0, 1] times the gain
            raise ValueError(f"input_gain must be <= {MAX_MAGNITUDE:g} (event values are capped "
                             f"there), got {o['input_gain']!r}")
        o["latency_t_max"] = v.positive_float("latency_t_max", o["latency_t_max"])
        o["poisson_rate"] = v.positive_float("poisson_rate", o["poisson_rate"])
        o["t_window"] = v.positive_float("t_window", o["t_window"])
        v.choice("loss", o["loss"], LOSSES)
        o["desired"] = v.real_in("desired", o["desired"], -MAX_MAGNITUDE, MAX_MAGNITUDE)
        o["undesired"] = v.real_in("undesired", o["undesired"], -MAX_MAGNITUDE, MAX_MAGNITUDE)
        o["first_spike_tau"] = v.positive_float("first_spike_tau", o["first_spike_tau"])
        o["target_time_true"] = v.positive_float("target_time_true", o["target_time_true"], allow_zero=True)
        if o["target_time_false"] is not None:
            o["target_time_false"] = v.positive_float("target_time_false", o["target_time_false"],
                                                      allow_zero=True)
        v.choice("kernel", o["kernel"], GRAD_KERNELS)
        o["tau_grad"] = v.positive_float("tau_grad", o["tau_grad"])
        o["factor"] = v.real_in("factor", o["factor"], -MAX_FACTOR, MAX_FACTOR)
        o["init_target"] = v.positive_float("init_target", o["init_target"])
        if o["init_target"] > MAX_INIT_TARGET:
            raise ValueError(f"init_target must be <= {MAX_INIT_TARGET:g} spikes per neuron "
                             f"(the simulation caps a layer's spikes), got {o['init_target']!r}")
        o["init_samples"] = v.positive_int("init_samples", o["init_samples"])
        for name in ("supervisory", "drop_nonpositive", "init"):
            if not isinstance(o[name], (bool, np.bool_)):
                raise TypeError(f"{name} must be a bool, got {o[name]!r}")
        if o["n_threads"] is not None:
            o["n_threads"] = v.positive_int("n_threads", o["n_threads"])
        self.options = o
        self._times = np.unique(np.asarray(o["input_times"], dtype=np.float64))
        if self._times.size == 0 or np.any(self._times < 0):
            raise ValueError("input_times must be a non-empty list of times >= 0 ms")
        self.initialised = not o["init"]
        self.init_scales: Optional[List[Optional[float]]] = None

    # ---- encoding ---------------------------------------------------------------
    def encode(self, X: Samples, rng: BatchRng = None) -> List[SpikeTrains]:
        """Event streams of raw samples X (n, *in_shape) in [0, 1], or X itself if it is
        already a list of SpikeTrains."""
        if isinstance(X, (list, tuple)) and X and isinstance(X[0], SpikeTrains):
            return list(X)
        X = v.float_array("X", X)
        if X.ndim < 2 or int(np.prod(X.shape[1:])) != self.net.n_in:
            raise ValueError(f"X must be (n, *in_shape) with {self.net.n_in} features per "
                             f"sample, got shape {X.shape}")
        o = self.options
        if o["encoder"] == "current":
            out = _encode.current(X, times=o["input_times"])
            if o["input_gain"] != 1.0:
                out = [SpikeTrains._trusted(s.times, s.neurons, s.values * o["input_gain"],
                                            s.n_neurons) for s in out]
            return out
        if o["encoder"] == "latency":
            return _encode.latency(X, t_max=o["latency_t_max"])
        if isinstance(rng, SampleSeeds):  # one stream per sample (data-parallel training)
            if len(rng) != len(X):
                raise ValueError(f"rng has {len(rng)} sample keys for {len(X)} samples")
            return [_encode.poisson(X[i:i + 1], t_end=o["t_window"], max_rate=o["poisson_rate"],
                                    rng=g)[0] for i, g in enumerate(rng.generators())]
        return _encode.poisson(X, t_end=o["t_window"], max_rate=o["poisson_rate"],
                               rng=self.rng if rng is None else rng)

    def encode_batch(self, X: Samples, rng: BatchRng = None) -> Events:
        """The event streams of raw samples X (or of a list of SpikeTrains) as one batch
        :class:`eventsnn.event.batch.Events`; equal to :meth:`encode`, concatenated."""
        if isinstance(X, _batch.Events):
            return X
        if isinstance(X, (list, tuple)) and X and isinstance(X[0], SpikeTrains):
            for k, st in enumerate(X):
                self.net._check_input(st, f"X[{k}]")
            return _batch.Events.from_trains(list(X))
        o = self.options
        if o["encoder"] != "current":
            trains = self.encode(X, rng)
            if not trains:
                raise ValueError("X holds no samples")
            return _batch.Events.from_trains(trains)
        X = v.float_array("X", X)
        if X.ndim < 2 or int(np.prod(X.shape[1:])) != self.net.n_in:
            raise ValueError(f"X must be (n, *in_shape) with {self.net.n_in} features per "
                             f"sample, got shape {X.shape}")
        if X.shape[0] == 0:
            raise ValueError("X holds no samples")
        F = _encode._samples(X)
        return _batch.encode_current(F, self._times, gain=o["input_gain"])

    # ---- contract -----------------------------------------------------------------
    def _n_threads(self):
        n = self.options["n_threads"]
        if n is None:
            import numba
            n = numba.get_num_threads()
        return n

    def _forward(self, events):
        """Simulate a batch: (levels, relays) of ``eventsnn.event.batch.simulate_batch``."""
        self.net._reject_biases("event mode (EventLearner)")
        self.net._check_weights()
        return _batch.simulate_batch(self.net, events, self.options["t_window"],
                                     n_threads=self._n_threads())

    def _predict(self, out):
        if self.options["loss"] in _LATENCY_LOSSES:
            return np.argmin(out.first_times(), axis=1).astype(np.int64)
        return _losses.predict_counts_batch(out)

    def _spike_total(self, levels):
        return float(sum(levels[li].times.size for li, layer in enumerate(self.net.layers, start=1)
                         if layer.has_neurons))

    def _spikes(self, levels):
        return self._spike_total(levels) / levels[0].n_samples

    def _loss(self, out, y):
        """(output level the backward pass sees, per-sample losses, dL/dt of its events) of
        the configured loss. A new loss adds a branch here."""
        o = self.options
        if o["loss"] == "count":
            if o["supervisory"]:
                out = _batch.with_supervisory_spikes(out, y, o["t_window"])
            losses, g = _losses.count_loss_batch(out, y, o["t_window"], o["desired"],
                                                 o["undesired"])
        elif o["loss"] == "time_mse":
            # each output neuron's first spike to its target time (``_losses.time_mse_loss``
            # per sample); with ``supervisory`` a silent label neuron first gets a spike at
            # t_window, so that it has a time to move
            if o["supervisory"]:
                fired = np.zeros(out.n_samples, bool)
                s_of = out.sample_of_event()
                fired[s_of[out.neurons == y[s_of]]] = True
                out = _batch.with_supervisory_spikes(out, np.where(fired, -1, y), o["t_window"])
            t_false = o["t_window"] if o["target_time_false"] is None else o["target_time_false"]
            losses, g = _losses.time_mse_first_batch(out, y, o["target_time_true"], t_false)
        else:  # "first_spike" / "latency": softmax cross-entropy on first-spike times
            losses, g = _losses.first_spike_loss_batch(out, y, o["first_spike_tau"],
                                                       t_silent=o["t_window"])
        return out, losses, g

    def initialise(self, X: Samples) -> None:
        """Firing-rate initialisation (``eventsnn.init``) on samples X; done automatically
        on the first batch when ``init`` is True."""
        events = self.encode_batch(X)
        m = min(self.options["init_samples"], events.n_samples)
        self.init_scales, _ = init_firing_rate(self.net, events.trains()[:m],
                                               target=self.options["init_target"],
                                               t_end=self.options["t_window"],
                                               n_threads=self.options["n_threads"])
        self.initialised = True

    def _all_full_reset(self):
        return all(n is None or n.reset == "full" for n in self.net.layer_neurons)

    def loss_and_grads(self, X: Samples, y: np.ndarray, rng: BatchRng = None) -> LossGrads:
        if self.options["encoder"] == "poisson" and not isinstance(rng, SampleSeeds):
            X, rng = self.encode(X, rng), None  # one draw for the initialisation and the batch
        self.before_batch(X, y, rng)
        # one process, whole batch: the kernels' own in-order sum, bit for bit what GradSums
        # makes of the per-sample parts (0 + g_0 + g_1 + ... per entry), without the rows
        return self.finish(self._sums(X, y, rng, parts=False))

    def needs_batch_samples(self) -> bool:
        return not self.initialised

    def before_batch(self, X: Optional[Samples], y: Optional[np.ndarray], rng: BatchRng = None,
                     statistics: Optional[List[float]] = None) -> None:
        """Firing-rate initialisation on the first batch (when ``init`` is True)."""
        if not self.initialised:
            self.initialise(self.encode_batch(X, rng))

    def loss_and_grad_sums(self, X: Samples, y: np.ndarray, rng: BatchRng = None) -> GradSums:
        """Sums over the samples, with every sample's own gradient in ``parts`` (summed in
        batch order by GradSums, so any split of a batch into shares gives the same bits)."""
        return self._sums(X, y, rng, parts=True)

    def _sums(self, X, y, rng, parts):
        if not self._all_full_reset():  # the membrane adjoint runs per sample
            return self._loss_and_grad_sums_per_sample(X, y, rng)
        o = self.options
        events = self.encode_batch(X, rng)
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != events.n_samples:
            raise ValueError(f"X has {events.n_samples} samples but y has shape {y.shape}")
        if y.size and not np.issubdtype(y.dtype, np.integer):
            if not np.all(np.mod(y, 1) == 0):
                raise TypeError("y must hold integer labels")
            y = y.astype(np.int64)
        _check_reset(self.net)  # SRM neurons with full reset in every layer (timing backward)
        levels, relays = self._forward(events)
        preds = self._predict(levels[-1])
        out, losses, g = self._loss(levels[-1], y)
        clamp = None if o["clamp"] is None else tuple(o["clamp"])
        code = KERNEL_EXP if o["kernel"] == "exp" else KERNEL_DEPSILON
        rows, _ = _batch.backward_batch(self.net, levels[:-1] + [out], relays, g, code,
                                        o["tau_grad"], o["drop_nonpositive"], clamp,
                                        o["factor"], n_threads=self._n_threads(), per_sample=parts)
        n = events.n_samples
        losses = np.asarray(losses, dtype=np.float64)
        if not parts:
            return GradSums(n, float(np.sum(losses)), rows, preds, self._spike_total(levels),
                            losses=losses)
        per = [[None if w is None else w[s] for w in rows] for s in range(n)]
        return GradSums(n, float(np.sum(losses)), None, preds, self._spike_total(levels),
                        parts=per, losses=losses)

    def predict(self, X: Samples, rng: BatchRng = None) -> Predictions:
        levels, _ = self._forward(self.encode_batch(X, rng))
        n = levels[0].n_samples
        total = self._spike_total(levels)
        return self._predict(levels[-1]), {"spikes_per_sample": total / n, "spikes": total}

    # ---- per-sample path (membrane-reset networks: the adjoint backward) -----------
    def _simulate(self, events):
        return self.net.simulate(events, t_end=self.options["t_window"],
                                 n_threads=self.options["n_threads"])

    def _predict_records(self, recs):
        outs = [r.spikes[-1] for r in recs]
        if self.options["loss"] in _LATENCY_LOSSES:
            return np.array([int(np.argmin(o.first_times())) if len(o) else 0 for o in outs],
                            dtype=np.int64)
        return _losses.predict_counts(outs)

    def _spike_total_records(self, recs):
        levels = [li for li, layer in enumerate(self.net.layers, start=1) if layer.has_neurons]
        return float(sum(sum(len(r.spikes[li]) for li in levels) for r in recs))

    def _loss_and_grad_sums_per_sample(self, X, y, rng=None):
        o = self.options
        y = np.asarray(y)
        events = self.encode(X, rng)
        if len(events) != y.shape[0]:
            raise ValueError(f"X has {len(events)} samples but y has {y.shape[0]}")
        recs = self._simulate(events)
        preds = self._predict_records(recs)
        used, grads_out, losses = [], [], []
        for rec, label in zip(recs, y):
            label = int(label)
            if o["loss"] == "count":
                if o["supervisory"]:
                    rec = _losses.with_supervisory_spike(rec, label, o["t_window"])
                loss, g = _losses.count_loss(rec.spikes[-1], label, o["t_window"],
                                             o["desired"], o["undesired"])
            elif o["loss"] == "time_mse":
                loss, g, rec = self._time_mse(rec, label)
            else:  # "first_spike" / "latency": softmax cross-entropy on first-spike times
                loss, g = _losses.first_spike_loss(rec.spikes[-1], label, o["first_spike_tau"],
                                                   t_silent=o["t_window"])
            used.append(rec)
            grads_out.append(g)
            losses.append(loss)
        clamp = None if o["clamp"] is None else tuple(o["clamp"])
        gs = backward_many(self.net, used, grads_out, kernel=o["kernel"], tau_grad=o["tau_grad"],
                           n_threads=o["n_threads"], clamp=clamp, factor=o["factor"],
                           drop_nonpositive=o["drop_nonpositive"], input_grad=False)
        parts = [[g.weights[li] if layer.has_weight else None
                  for li, layer in enumerate(self.net.layers)] for g in gs]
        return GradSums(len(gs), float(np.sum(losses)), None, preds,
                        self._spike_total_records(recs), parts=parts,
                        losses=np.asarray(losses, dtype=np.float64))

    def _time_mse(self, rec, label):
        """Spike-time MSE (``losses.time_mse_loss``) on each output neuron's first spike:
        the label neuron's is pulled to ``target_time_true``, the others' to
        ``target_time_false`` (default t_window). With ``supervisory`` a silent label neuron
        gets a spike at t_window first, so that it has a time to move."""
        o = self.options
        if o["supervisory"] and not np.any(rec.spikes[-1].neurons == label):
            rec = _losses.with_supervisory_spike(rec, label, o["t_window"])
        t_false = o["t_window"] if o["target_time_false"] is None else o["target_time_false"]
        targets = np.full((self.net.n_out, 1), t_false)
        targets[label, 0] = o["target_time_true"]
        loss, g = _losses.time_mse_loss(rec.spikes[-1], targets)
        return loss, g, rec

