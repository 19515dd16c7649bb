"""Sequential: an ordered stack of layers sharing one neuron model.

Event mode: :meth:`Sequential.simulate` and :meth:`Sequential.backward`.
Dense (time-stepped) mode: :meth:`Sequential.run` (see ``eventsnn.dense``).
Models save to ``.npz`` (weights) with a JSON description and load without unpickling.
"""
from __future__ import annotations

import json
import math
import os
from concurrent.futures import ThreadPoolExecutor

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union, cast

import numpy as np
from numpy.typing import ArrayLike

from . import _validate as v
from ._constants import DEFAULT_MAX_SPIKES, MAX_MAGNITUDE, MAX_SPIKES_CAP
from ._model_file import open_model
from .layers import AvgPool2d, Conv2d, Dense, Flatten, Layer, MaxPool2d, reject_biases
from .neurons import EVENT_NEURONS, LIF, SRM
from .spikes import SpikeTrains

#: model file format: 1 = weights only; 2 = a file with at least one bias (``bias_<k>``
#: arrays and ``"bias": true`` in the layer spec); 3 = a file with a LIF neuron or per-layer
#: neurons (``"type": "LIF"`` in a neuron spec, ``"neuron"`` in a layer spec). A file is
#: written with the lowest format that holds it, so older eventsnn versions keep reading
#: what they can.
FORMAT_VERSION = 3


class Sequential:
    """Feed-forward network.

    Parameters
    ----------
    *layers : Layer
        Dense, Conv2d, MaxPool2d, AvgPool2d, Flatten. Shapes of pooling and Flatten layers
        are inferred from the layer before; the first layer fixes the input shape.
    neuron : SRM or LIF
        Neuron model of every Dense and Conv2d layer (default ``SRM()``).
    rng : numpy Generator, int or None
        Seed of the weight initialisation.
    neurons : list, optional
        Per-layer neurons: one entry per layer, an SRM or LIF for a Dense/Conv2d layer that
        has its own neuron model (time constants, threshold), None for the layers that use
        ``neuron`` (and for pooling and Flatten layers). Per-layer neurons and LIF neurons
        run in event mode (``simulate``); the timing backward pass takes per-layer SRM
        neurons; the dense mode needs one SRM for the whole network.
    """

    def __init__(self, *layers: Layer, neuron: Any = None, rng: Any = 0,
                 neurons: Optional[Sequence[Any]] = None) -> None:
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        for k, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {k} must be an eventsnn layer, got {type(layer).__name__}")
        if not any(layer.has_neurons for layer in layers):
            raise ValueError("Sequential needs at least one Dense or Conv2d layer")
        if neuron is None:
            neuron = SRM()
        if not isinstance(neuron, EVENT_NEURONS):
            raise TypeError(f"neuron must be an eventsnn.SRM or eventsnn.LIF, got {type(neuron).__name__}")
        self.neuron = neuron
        self.layers = list(layers)
        self._own_neurons = self._check_neurons(neurons)
        first = self.layers[0]
        shape: Tuple[int, ...]
        if isinstance(first, Dense):
            shape = (first.n_in_decl,)
        elif isinstance(first, Conv2d):
            shape = first.in_decl
        else:
            raise ValueError(f"the first layer must be Dense or Conv2d, got {first!r}")
        self.in_shape = tuple(shape)
        gen = v.rng_from(rng)
        for layer in self.layers:
            shape = layer.bind(shape)
            if layer.has_weight:
                layer.init_weight(gen)
        self.out_shape = tuple(shape)
        #: training options read back by :meth:`load` (None unless saved with them)
        self.training: Optional[Dict[str, Any]] = None

    def _check_neurons(self, neurons):
        if neurons is None:
            return [None] * len(self.layers)
        if not isinstance(neurons, (list, tuple)):
            raise TypeError(f"neurons must be a list (one entry per layer) or None, got "
                            f"{type(neurons).__name__}")
        if len(neurons) != len(self.layers):
            raise ValueError(f"neurons must have one entry per layer ({len(self.layers)}), "
                             f"got {len(neurons)}")
        for k, (layer, nrn) in enumerate(zip(self.layers, neurons)):
            if nrn is None:
                continue
            if not layer.has_neurons:
                raise ValueError(f"neurons[{k}] must be None: layer {k} ({layer!r}) holds no neurons")
            if not isinstance(nrn, EVENT_NEURONS):
                raise TypeError(f"neurons[{k}] must be an eventsnn.SRM, eventsnn.LIF or None, got "
                                f"{type(nrn).__name__}")
        return [None if nrn is None or nrn == self.neuron else nrn for nrn in neurons]

    @property
    def layer_neurons(self) -> List[Union[SRM, LIF, None]]:
        """The neuron model of each layer (the network's ``neuron`` unless the layer has its
        own), None for layers without neurons."""
        return [(own if own is not None else self.neuron) if layer.has_neurons else None
                for layer, own in zip(self.layers, self._own_neurons)]

    @property
    def has_layer_neurons(self) -> bool:
        """True when some layer has a neuron model other than ``neuron``."""
        return any(own is not None for own in self._own_neurons)

    def _single_srm(self, what):
        """The network's SRM when every layer uses it; ValueError naming ``what`` otherwise
        (LIF neurons or per-layer neurons)."""
        if self.has_layer_neurons:
            k = next(k for k, own in enumerate(self._own_neurons) if own is not None)
            raise ValueError(f"{what} needs one SRM neuron for the whole network, but layer {k} "
                             f"({self.layers[k]!r}) has its own neuron {self._own_neurons[k]!r}")
        if not isinstance(self.neuron, SRM):
            raise ValueError(f"{what} needs an SRM neuron, got {self.neuron!r} (LIF neurons run "
                             "in event mode only)")
        return self.neuron

    def _require_srm_layers(self, what):
        """ValueError naming the first layer whose neuron is not an SRM: ``what`` (e.g. the
        timing backward pass) supports SRM neurons only."""
        for k, nrn in enumerate(self.layer_neurons):
            if nrn is not None and not isinstance(nrn, SRM):
                raise ValueError(f"{what} does not support {nrn!r} (layer {k}, "
                                 f"{self.layers[k]!r}): LIF neurons run in event mode "
                                 "(simulate) only; use SRM neurons to train")

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))

    @property
    def weights(self) -> List[Optional[np.ndarray]]:
        """The weight arrays of the layers (None for layers without weights)."""
        return [layer.weight for layer in self.layers]

    @property
    def biases(self) -> List[Optional[np.ndarray]]:
        """The bias arrays of the layers (None for layers without a bias)."""
        return [layer.bias for layer in self.layers]

    @property
    def has_bias(self) -> bool:
        """True when any layer holds a bias."""
        return any(layer.has_bias for layer in self.layers)

    def _reject_biases(self, what):
        """Raise ValueError naming the first biased layer: ``what`` does not support biases."""
        reject_biases(self.layers, what)

    def __repr__(self) -> str:
        body = ",\n  ".join(repr(layer) + (f"  # neuron={own!r}" if own is not None else "")
                            for layer, own in zip(self.layers, self._own_neurons))
        return f"Sequential(\n  {body},\n  neuron={self.neuron!r})"

    # ---- event mode ------------------------------------------------------------
    def _check_input(self, st, name="input"):
        if not isinstance(st, SpikeTrains):
            raise TypeError(f"{name} must be a SpikeTrains, got {type(st).__name__}")
        if st.n_neurons != self.n_in:
            raise ValueError(f"{name} has n_neurons={st.n_neurons} but the network takes {self.n_in}")

    def simulate(self, inputs: Union[SpikeTrains, Sequence[SpikeTrains]], t_end: Optional[float] = None,
                 record_times: Optional[ArrayLike] = None, n_threads: Optional[int] = None,
                 max_spikes: int = DEFAULT_MAX_SPIKES, progress: bool = False, client: Any = None) -> Any:
        """Simulate SpikeTrains exactly in continuous time.

        Parameters
        ----------
        inputs : SpikeTrains or list of SpikeTrains
            One sample, or several (simulated in parallel, independently).
        t_end : float or None
            End of the simulation in ms; input events and spikes after it are ignored
            (those at t_end count). None (or inf) runs until no event is pending.
        record_times : array-like of float, optional
            Times (ms), in increasing order, at which to record the membrane potential of
            every neuron layer (``record.membrane``: one row per time).
        n_threads : int, optional
            Threads for a list of samples, or, for one sample, over the neurons of its wide
            Dense layers (default: numba's thread count). Results do not depend on it.
        max_spikes : int
            Most spikes one layer may emit for one sample (default 10**7); more raises a
            ValueError instead of filling memory (runaway firing, e.g. reset="membrane" with
            t_ref=0 and a huge weight fires about w / theta times).
        progress : bool
            Show a progress bar on stderr over the samples of a list input.
        client : dask.distributed.Client, optional
            Simulate a list of samples on a Dask cluster (:func:`eventsnn.distributed.simulate`:
            the network broadcast once, chunks of samples per worker; list items may also be
            paths of event files, read by the workers). Same records as without it.

        Returns
        -------
        Record, or a list of Records for a list input.
        """
        single = isinstance(inputs, SpikeTrains)
        if client is not None:
            from .distributed import simulate as _simulate_dask

            out = _simulate_dask(self, [inputs] if single else cast(list, inputs), client, t_end=t_end,
                                 record_times=record_times, n_threads=n_threads,
                                 max_spikes=max_spikes)
            return out[0] if single else out
        samples = [inputs] if single else inputs
        if not isinstance(samples, (list, tuple)):
            raise TypeError("inputs must be a SpikeTrains or a list of SpikeTrains")
        for k, st in enumerate(samples):
            self._check_input(st, "inputs" if single else f"inputs[{k}]")
        t_end = v.end_time("t_end", t_end)
        max_spikes = v.positive_int("max_spikes", max_spikes)
        if max_spikes > MAX_SPIKES_CAP:
            raise ValueError(f"max_spikes must be <= {MAX_SPIKES_CAP} (2**40), got {max_spikes}")
        rt: Optional[np.ndarray] = None
        if record_times is not None:
            rt = v.float_array("record_times", record_times, ndim=1)
            if np.any(rt < 0):
                raise ValueError("record_times must be >= 0 ms")
            if np.any(np.diff(rt) < 0):
                # sorting them quietly would put record.membrane's rows in another order
                raise ValueError("record_times must be in increasing order (record.membrane has "
                                 "one row per time, in that order)")
        record_times = rt
        if not isinstance(progress, (bool, np.bool_)):
            raise TypeError(f"progress must be a bool, got {progress!r}")
        records = self._simulate_many(samples, t_end, record_times, n_threads, max_spikes,
                                      progress=bool(progress) and not single)
        return records[0] if single else records

    def _simulate_many(self, samples, t_end, record_times, n_threads,
                       max_spikes=DEFAULT_MAX_SPIKES, progress=False):
        from ._progress import note_compilation, progress_bar
        from .event import _engine
        from .event import batch
        from .event.forward import kernel_weights, simulate_sample

        self._reject_biases("event mode (Sequential.simulate)")
        self._check_weights()
        if n_threads is None:
            import numba
            n_threads = numba.get_num_threads()
        n_threads = v.positive_int("n_threads", n_threads)
        if record_times is None and samples and not progress:
            # the whole batch through each layer's kernel at once (eventsnn.event.batch);
            # with a progress bar (or record_times) the samples run one by one
            note_compilation(_engine)
            levels, relays = batch.simulate_batch(self, batch.Events.from_trains(list(samples)),
                                                  t_end, n_threads=n_threads,
                                                  max_spikes=max_spikes)
            return batch.records(levels, relays, t_end, inputs=samples)
        weights = [kernel_weights(layer) for layer in self.layers]

        def one(st, threads=1):
            return simulate_sample(self.layers, self.layer_neurons, st, t_end, record_times,
                                   weights, max_spikes=max_spikes, n_threads=threads)

        note_compilation(_engine)
        bar = progress_bar(len(samples), progress, "simulate", unit="sample")
        try:
            if len(samples) <= 1 or n_threads == 1:
                # one sample: the threads go to its wide Dense layers
                out = []
                for st in samples:
                    out.append(one(st, n_threads))
                    if bar is not None:
                        bar.update(1)
                return out
            with ThreadPoolExecutor(max_workers=min(n_threads, len(samples))) as pool:
                out = []
                for rec in pool.map(one, samples):
                    out.append(rec)
                    if bar is not None:
                        bar.update(1)
                return out
        finally:
            if bar is not None:
                bar.close()

    def _check_weights(self):
        from ._scan import max_abs_finite

        for k, layer in enumerate(self.layers):
            if layer.has_weight:  # in-place edits bypass the setter's checks
                big, finite = max_abs_finite(layer.weight)
                if not finite:
                    raise ValueError(f"weight of layer {k} ({layer!r}) holds NaN or inf")
                if big > MAX_MAGNITUDE:   # the message of _validate.magnitude
                    raise ValueError(f"weight of layer {k} ({layer!r}) must have magnitude <= "
                                     f"{MAX_MAGNITUDE:g} (larger values overflow the membrane "
                                     f"computation), got {big:g}")
            if layer.has_bias and not np.all(np.isfinite(layer.bias)):
                raise ValueError(f"bias of layer {k} ({layer!r}) holds NaN or inf")

    def backward(self, rec: Any, grad_out: ArrayLike, kernel: str = "exp", tau_grad: float = 2.5,
                 **options: Any) -> Any:
        """Timing gradients of a recorded sample (Zhu et al. 2022; with ``reset="membrane"``
        neurons the adjoint of docs/gradients.md, exact for ``kernel="depsilon",
        clamp=None``); see ``eventsnn.event.backward.backward`` for the options."""
        from .event.backward import backward

        return backward(self, rec, grad_out, kernel=kernel, tau_grad=tau_grad, **options)

    # ---- dense (time-stepped) mode ------------------------------------------------
    def run(self, x: ArrayLike, **options: Any) -> Any:
        """Run the network on a time grid (dense mode); see ``eventsnn.dense.forward.run``."""
        from ._progress import note_compilation
        from .dense import _neurons
        from .dense.forward import run

        note_compilation(_neurons)
        return run(self, x, **options)

    # ---- files ---------------------------------------------------------------------
    def save(self, path: Union[str, os.PathLike], training: Optional[Dict[str, Any]] = None) -> None:
        """Save to ``path`` (.npz): weights (and biases) as arrays, architecture and neuron as
        JSON. ``training``: an optional JSON-able dict of the options the network was trained
        with (rule, rule options, dataset, ...), kept in the file and given back by
        :meth:`load` as ``net.training`` (``eventsnn eval`` reads it)."""
        if training is not None and not isinstance(training, dict):
            raise TypeError(f"training must be a dict or None, got {type(training).__name__}")
        layers = [_layer_spec(layer) for layer in self.layers]
        for spec, own in zip(layers, self._own_neurons):
            if own is not None:
                spec["neuron"] = _neuron_spec(own)
        version = 2 if self.has_bias else 1
        if self.has_layer_neurons or isinstance(self.neuron, LIF):
            version = 3
        meta = {"format": "eventsnn.Sequential", "version": version,
                "neuron": _neuron_spec(self.neuron), "layers": layers}
        arrays: Dict[str, Any] = {f"weight_{k}": layer.weight for k, layer in enumerate(self.layers) if layer.has_weight}
        arrays.update({f"bias_{k}": layer.bias for k, layer in enumerate(self.layers) if layer.has_bias})
        if training is not None:
            try:
                meta["training"] = json.loads(json.dumps(training))
            except (TypeError, ValueError) as exc:
                raise TypeError(f"training must be JSON-serialisable: {exc}") from None
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        with open(os.fspath(path), "wb") as fh:
            np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> Sequential:
        """Load a model saved by :meth:`save`. Never unpickles; every array is checked
        against the architecture before it is read, and any malformed file raises one
        ValueError naming ``path``."""
        with open_model(path) as archive:
            meta = archive.meta()
            if meta.get("format") != "eventsnn.Sequential":
                raise archive.error("not an eventsnn model")
            version = meta.get("version", 0)
            if isinstance(version, bool) or not isinstance(version, int):
                raise archive.error(f"format version must be an integer, got {version!r}")
            if version > FORMAT_VERSION:
                raise archive.error(f"written by a newer eventsnn (format {version})")
            specs, neuron_spec = meta.get("layers"), meta.get("neuron")
            if not isinstance(specs, list) or not specs:
                raise archive.error("metadata 'layers' must be a non-empty list")
            if not isinstance(neuron_spec, dict):
                raise archive.error("metadata 'neuron' must be an object")
            layers = []
            for k, spec in enumerate(specs):
                try:
                    layers.append(_layer_from_spec(spec))
                except (TypeError, ValueError) as exc:
                    raise archive.error(f"layer {k}: {exc}") from None
            try:
                neuron = _neuron_from_spec(neuron_spec)
            except (TypeError, ValueError) as exc:
                raise archive.error(f"neuron: {exc}") from None
            neurons = []
            for k, spec in enumerate(specs):
                try:
                    neurons.append(_neuron_from_spec(spec["neuron"]) if "neuron" in spec else None)
                except (TypeError, ValueError) as exc:
                    raise archive.error(f"layer {k} neuron: {exc}") from None
            # arrays are read (and shapes allocated) only once the file holds them
            weights, biases = {}, {}
            for k, layer in enumerate(layers):
                if layer.has_weight:
                    weights[k] = archive.array(f"weight_{k}", layer.weight_shape)
                if layer.has_bias:
                    if f"bias_{k}" not in archive.members:
                        raise archive.error(f"layer {k} ({layer!r}) declares a bias but the file "
                                            f"holds no bias_{k} array")
                    biases[k] = archive.array(f"bias_{k}", layer.bias_shape)
            try:
                net = cls(*layers, neuron=neuron, rng=0,
                          neurons=neurons if any(n is not None for n in neurons) else None)
                for k, layer in enumerate(net.layers):
                    if k in weights:
                        layer.weight = weights[k]
                    if k in biases:
                        layer.bias = biases[k]
            except (TypeError, ValueError) as exc:
                raise archive.error(str(exc)) from None
            training = meta.get("training")
            net.training = training if isinstance(training, dict) else None
        return net


def _neuron_spec(neuron):
    if isinstance(neuron, LIF):
        return {"type": "LIF", "tau_m": neuron.tau_m, "theta": neuron.theta, "t_ref": neuron.t_ref}
    # SRM: no "type" key, as in format 1 and 2 files
    return {"tau_m": neuron.tau_m, "tau_s": neuron.tau_s, "theta": neuron.theta,
            "reset": neuron.reset, "t_ref": neuron.t_ref}


def _neuron_from_spec(spec):
    if not isinstance(spec, dict):
        raise ValueError(f"a neuron spec must be an object, got {type(spec).__name__}")
    args = {k: val for k, val in spec.items() if k != "type"}
    kind = spec.get("type", "SRM")
    if kind == "LIF":
        return LIF(**args)
    if kind == "SRM":
        return SRM(**args)
    raise ValueError(f"unknown neuron type {kind!r} in model file")


def _layer_spec(layer):
    if isinstance(layer, Dense):
        spec = {"type": "Dense", "n_in": layer.n_in_decl, "n_out": layer.n_out_decl}
        if layer.has_bias:  # only then: files without biases stay readable by format-1 readers
            spec["bias"] = True
        return spec
    if isinstance(layer, Conv2d):
        spec = {"type": "Conv2d", "in_shape": list(layer.in_decl), "out_channels": layer.out_channels,
                "kernel_size": layer.kernel_size, "stride": layer.stride, "padding": layer.padding}
        if layer.has_bias:
            spec["bias"] = True
        return spec
    if isinstance(layer, MaxPool2d):
        return {"type": "MaxPool2d", "kernel_size": layer.kernel_size}
    if isinstance(layer, AvgPool2d):
        return {"type": "AvgPool2d", "kernel_size": layer.kernel_size, "adjusted": layer.adjusted}
    if isinstance(layer, Flatten):
        return {"type": "Flatten"}
    raise TypeError(f"cannot save layer {layer!r}")


def _layer_from_spec(spec):
    if not isinstance(spec, dict):
        raise ValueError(f"a layer spec must be an object, got {type(spec).__name__}")
    kind = spec.get("type")
    args = {k: val for k, val in spec.items() if k not in ("type", "neuron")}
    table = {"Dense": Dense, "Conv2d": Conv2d, "MaxPool2d": MaxPool2d, "AvgPool2d": AvgPool2d,
             "Flatten": Flatten}
    if kind not in table:
        raise ValueError(f"unknown layer type {kind!r} in model file")
    return table[kind](**args)
