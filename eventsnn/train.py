"""Training loop shared by every learning rule.

:class:`Trainer` talks to a rule only through the :class:`eventsnn.learner.Learner`
contract (``loss_and_grads``, ``predict``, ``after_epoch``; ``learner.net`` holds the
weights), so the event rule and every dense-mode rule train the same way: shuffled
mini-batches (seeded), an optimiser step on the network's weights (and biases, when the
learner returns their gradients after the weights' ones), optional gradient-norm
clipping, per-epoch metrics, an optional validation split, a progress bar on stderr with
``progress=True`` (tqdm's, or a built-in one without tqdm), per-epoch JSON lines
(``log=``) and an epoch checkpoint (``checkpoint=``) that ``fit(..., resume=True)``
continues from with the same result as an uninterrupted run.

With ``client=`` (a ``dask.distributed.Client``) the mini-batch gradients and the
predictions are computed data-parallel on a Dask cluster (``eventsnn.distributed``); the
learner's random draws use one key per sample (:class:`eventsnn.learner.SampleSeeds`), so
a run with a client gives the single-process result.
"""
import importlib
import json
import math
import os
import time
import warnings

from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np

from . import _validate as v
from . import checkpoint as _ckpt
from ._constants import MAX_EPOCHS
from ._progress import note_compilation, progress_bar
from .learner import (GradSums, Learner, SampleSeeds, block_bounds, overrides_sums, predict_with,
                      sum_statistics, sums_in_rounds)
from .optim import Optimizer, clip_grad_norm, grad_norm, make_optimizer
from .reparam import WeightStandardization, make_reparam
from ._typing import Samples, Seed

PathLike = Union[str, "os.PathLike[str]"]


def _blas_limits(n):
    """Context manager limiting BLAS (OpenBLAS, MKL, BLIS) to ``n`` threads."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        import contextlib
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def split_validation(X: Samples, y: np.ndarray, fraction: float, rng: Seed
                     ) -> Tuple[Samples, np.ndarray, Samples, np.ndarray]:
    """(X_train, y_train, X_val, y_val): a seeded random ``fraction`` of the samples held out."""
    fraction = float(fraction)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), got {fraction}")
    n = len(y)
    n_val = max(1, int(round(fraction * n)))
    if n_val >= n:
        raise ValueError(f"val_fraction={fraction} of {n} training sample(s) holds out {n_val}, "
                         "leaving none to train on: use more samples or a smaller fraction")
    perm = v.rng_from(rng).permutation(n)
    val, tr = perm[:n_val], perm[n_val:]
    return _take(X, tr), y[tr], _take(X, val), y[val]


def _take(X, idx):
    if isinstance(X, np.ndarray):
        return X[idx]
    return [X[int(i)] for i in idx]  # lists, and sequences read on access (EventFiles)


class Trainer:
    """Mini-batch training of a Learner.

    Parameters
    ----------
    learner : Learner (any rule of ``eventsnn.learner.RULES``).
    optimizer : str ("sgd", "adam", "adamw") or an :class:`eventsnn.optim.Optimizer`.
    lr : float, learning rate (when ``optimizer`` is a name).
    optimizer_options : dict, further keyword arguments of the optimiser (e.g. momentum,
        weight_decay).
    batch_size : int.
    epochs : int.
    clip_norm : float or None, clip the global gradient L2 norm to this value.
    val_fraction : float in [0, 1), hold out this fraction of the training data for
        validation when ``fit`` gets no explicit validation set.
    seed : int, seeds shuffling, the validation split and the rng passed to the learner;
        same seed, same result.
    progress : bool, show a progress bar on stderr (tqdm's, or a built-in text bar).
    schedule : "constant" or "cosine": the learning rate decays from ``lr`` towards
        ``lr * min_lr_fraction`` along a half cosine over the epochs, set per epoch as
        torch's ``CosineAnnealingLR(T_max=epochs)`` stepped once per epoch does: epoch e
        (1-based) of E uses ``lr * (f + (1 - f) * (1 + cos(pi * (e - 1) / E)) / 2)``, so
        every epoch, the last included, learns (3 epochs: 1, 0.75, 0.25 times ``lr``).
    min_lr_fraction : float in [0, 1], f above: the fraction of ``lr`` the cosine decays
        towards (reached after the last epoch).
    log : path or None, append one JSON line per epoch (the history row) to this file.
    checkpoint : path or None, write the complete training state (weights, optimiser,
        random generators, history) to this ``.npz`` file after every epoch (atomically);
        ``fit(..., resume=True)`` continues from it.
    epoch_callback : callable or None, called as ``epoch_callback(row)`` after each epoch
        (the CLI prints a line per epoch with it).
    n_threads : int or None, the total number of threads training may use. The event rule
        simulates that many samples in parallel (default: numba's thread count) and BLAS
        gets 1 thread; dense rules give BLAS ``n_threads`` threads (default 1, since their
        small matrix products gain nothing from more and lose a lot on a busy machine).
        BLAS is limited with threadpoolctl for the duration of ``fit``/``evaluate`` only.
    client : dask.distributed.Client or None: compute each mini-batch's gradients in shares
        on the cluster's workers, and predictions too (``eventsnn.distributed``).
    shares : int or None, shares per mini-batch with a client (default: its workers when
        ``fit`` starts).
    block_size : int or None, samples per block (default 8). Rules that sum over the batch
        inside their kernels (the dense rules) are run block by block and the blocks' sums
        added in order, with or without a client, so that a cluster run has the bits of the
        single-process run; None: one block per batch (no data parallelism inside a batch).
        The event rule ignores it (it sums every sample's gradient in order anyway). NA with
        ``rescale=True`` takes its batch-wide means from the blocks' partial sums, added in
        block order (:func:`eventsnn.learner.sums_in_rounds`).
    reparam : None, "standardize" or an :class:`eventsnn.reparam.WeightStandardization`:
        train every Dense/Conv2d layer through Zhu et al.'s weight standardisation (raw
        weight v, gain g and shift b per output channel; the layers hold the effective
        weights). The optimiser (and ``clip_norm``) then works on (v, g, b). When ``fit``
        starts afresh, v is the network's weights; g = 1 and b = 0 if the learner's
        firing-rate initialisation is still to run (it then scales the standardised
        weights, which goes into g, as the authors' initialisation scales g), else g and b
        keep the current effective weights. Checkpoints hold (v, g, b). Rules that train
        biases are not supported with it. See docs/training.md.
    """

    def __init__(self, learner: Learner, optimizer: Union[str, Optimizer] = "adam", lr: float = 1e-3,
                 optimizer_options: Optional[Dict[str, Any]] = None, batch_size: int = 32,
                 epochs: int = 10, clip_norm: Optional[float] = None, val_fraction: float = 0.0,
                 seed: int = 0, progress: bool = False, schedule: str = "constant",
                 min_lr_fraction: float = 0.0, log: Optional[PathLike] = None,
                 checkpoint: Optional[PathLike] = None,
                 epoch_callback: Optional[Callable[[Dict[str, Any]], None]] = None,
                 n_threads: Optional[int] = None, client: Any = None,
                 shares: Optional[int] = None, block_size: Optional[int] = 8,
                 reparam: Union[None, str, WeightStandardization] = None) -> None:
        if not isinstance(learner, Learner):
            raise TypeError(f"learner must be an eventsnn Learner, got {type(learner).__name__}")
        self.learner = learner
        if isinstance(optimizer, Optimizer):
            self.optimizer = optimizer
        else:
            self.optimizer = make_optimizer(optimizer, lr=lr, **(optimizer_options or {}))
        self.batch_size = v.positive_int("batch_size", batch_size)
        self.epochs = v.positive_int("epochs", epochs, allow_zero=True)
        if self.epochs > MAX_EPOCHS:
            raise ValueError(f"epochs must be <= {MAX_EPOCHS}, got {epochs}")
        self.clip_norm = None if clip_norm is None else v.positive_float("clip_norm", clip_norm)
        self.val_fraction = v.positive_float("val_fraction", val_fraction, allow_zero=True)
        if self.val_fraction >= 1:
            raise ValueError(f"val_fraction must be < 1, got {val_fraction}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        self.seed = int(seed)
        self.progress = bool(progress)
        self.schedule = v.choice("schedule", schedule, ("constant", "cosine"))
        self.min_lr_fraction = v.positive_float("min_lr_fraction", min_lr_fraction, allow_zero=True)
        if self.min_lr_fraction > 1:
            raise ValueError(f"min_lr_fraction must be <= 1, got {min_lr_fraction}")
        self.base_lr = self.optimizer.lr
        self.log = None if log is None else os.fspath(log)
        self.checkpoint = None if checkpoint is None else os.fspath(checkpoint)
        if epoch_callback is not None and not callable(epoch_callback):
            raise TypeError("epoch_callback must be callable or None")
        self.epoch_callback = epoch_callback
        self.n_threads = None if n_threads is None else v.positive_int("n_threads", n_threads)
        self.history: List[Dict[str, Any]] = []
        self.client = client
        self.shares = None if shares is None else v.positive_int("shares", shares)
        self.block_size = None if block_size is None else v.positive_int("block_size", block_size)
        if client is not None:
            from .distributed import _check_client
            _check_client(client)
            learner.check_shares()
        self.train_seconds = 0.0
        self.reparam = make_reparam(reparam)

    def _params(self, n_grads=None):
        """The parameter list matching a learner's gradient list: the L weights, followed by
        the L biases (None where a layer has none) when the learner returned 2 L gradients."""
        if self.reparam is not None:
            return self.reparam.params()
        layers = self.learner.net.layers
        params = [layer.weight if layer.has_weight else None for layer in layers]
        if n_grads is None or n_grads == len(layers):
            return params
        if n_grads != 2 * len(layers):
            raise ValueError(f"the learner returned {n_grads} gradients; expected one per layer "
                             f"({len(layers)}), or one per layer for the weights and then one per "
                             f"layer for the biases ({2 * len(layers)})")
        return params + [layer.bias for layer in layers]

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None,
            resume: bool = False) -> List[Dict[str, Any]]:
        """Train for ``epochs`` epochs; returns the history (one dict per epoch:
        epoch, loss, train_accuracy, grad_norm, spikes_per_sample, seconds, and
        val_accuracy when there is a validation set).

        ``resume=True`` reads the trainer's ``checkpoint`` file (when it exists) and goes on
        from the epoch it holds: weights, optimiser state, random generators and history
        come from the file, so the run ends as an uninterrupted one would (the trainer and
        learner must be built with the same settings)."""
        y = self._labels("y", y, len(X))
        if X_val is not None or y_val is not None:
            if X_val is None or y_val is None:
                raise ValueError("X_val and y_val must be given together")
            y_val = self._labels("y_val", y_val, len(X_val))
        if resume and self.checkpoint is None:
            raise ValueError("resume=True needs the trainer's checkpoint= path")
        ss = np.random.SeedSequence(self.seed)
        split_seed, order_seed, learner_seed = ss.spawn(3)
        if X_val is None and self.val_fraction > 0:
            X, y, X_val, y_val = split_validation(X, y, self.val_fraction, np.random.default_rng(split_seed))
        order_rng = np.random.default_rng(order_seed)
        learner_rng = np.random.default_rng(learner_seed)
        generators = {"order": order_rng, "learner": learner_rng}
        start = 0
        net = getattr(self.learner, "net")  # the Learner contract's network (not typed on the base)
        if self.reparam is not None and self.reparam.net is not net:
            self.reparam.attach(net, keep=bool(getattr(self.learner, "initialised", True)))
        if resume and self.checkpoint is not None and os.path.exists(self.checkpoint):
            meta, arrays = _ckpt.load(self.checkpoint)
            start = _ckpt.restore(self, meta, arrays, generators, self.checkpoint)
            self._check_resumed_rates(start)
        elif self.log is not None:
            open(self.log, "w").close()  # a fresh run starts a fresh log
        n = len(y)
        if n == 0 and self.epochs > 0:
            raise ValueError("fit needs at least one training sample, got none")
        n_batches = -(-n // self.batch_size)
        mods = [importlib.import_module(m) for m in getattr(self.learner, "kernel_modules", ())]
        if mods:
            note_compilation(*mods)
        bar = progress_bar(max(self.epochs - start, 0) * n_batches, self.progress,
                           f"train ({self.learner.name})", unit="batch")
        self._session = None
        if self.client is not None:
            from .distributed import TrainSession
            self._session = TrainSession(self.client, self.learner, X, y, shares=self.shares,
                                         block_size=self.block_size)
        session = self._session
        limits = self._thread_limits()
        try:
            for epoch in range(start + 1, self.epochs + 1):
                row = self._epoch(epoch, X, y, X_val, y_val, order_rng, learner_rng, n_batches, bar)
                self.history.append(row)
                if self.log is not None:
                    with open(self.log, "a") as fh:
                        fh.write(json.dumps(row) + "\n")
                if self.checkpoint is not None:
                    _ckpt.save(self.checkpoint, self, epoch, generators)
                if self.epoch_callback is not None:
                    self.epoch_callback(row)
        finally:
            limits.__exit__(None, None, None)
            if bar is not None:
                bar.close()
            if session is not None:
                session.close()
        return self.history

    def _labels(self, name, y, n):
        """Integer class labels, one per sample, each an output neuron of the network."""
        n_classes = self.learner.net.n_out
        if np.ndim(y) != 1:
            raise ValueError(f"{name} must be 1-D with one label per sample ({n}), got shape {np.shape(y)}")
        y = v.int_array(name, y, low=0, high=n_classes)
        if len(y) != n:
            raise ValueError(f"{name} must have one label per sample ({n}), got {len(y)}")
        return y

    def _thread_limits(self):
        """Enter and return the thread policy of ``n_threads`` (see the class docstring)."""
        sample_threads = "n_threads" in getattr(self.learner, "options", {})
        if sample_threads:
            blas = 1
            if self.n_threads is not None:
                self.learner.options["n_threads"] = self.n_threads
        else:
            blas = self.n_threads or 1
        ctx = _blas_limits(blas)
        ctx.__enter__()
        return ctx

    def _epoch(self, epoch, X, y, X_val, y_val, order_rng, learner_rng, n_batches, bar):
        t0 = time.perf_counter()
        n = len(y)
        self.optimizer.lr = self.lr_at(epoch)
        perm = order_rng.permutation(n)
        loss_sum = correct = 0.0
        spikes = norms = 0.0
        for b in range(n_batches):
            idx = perm[b * self.batch_size:(b + 1) * self.batch_size]
            seeds = SampleSeeds.draw(learner_rng, len(idx))
            if self._session is not None:
                loss, grads, preds, stats = self._session.loss_and_grads(idx, seeds)
            else:
                loss, grads, preds, stats = self._local_step(_take(X, idx), y[idx], seeds)
            grads = [None if g is None else np.array(g, dtype=np.float64) for g in grads]
            if not np.isfinite(loss):
                raise FloatingPointError(f"loss became {loss} in epoch {epoch}, batch {b}")
            if self.reparam is not None:
                # the first batch's firing-rate initialisation rescaled the effective weights
                # (the gradients are of the rescaled ones): the scales go into g and b
                self.reparam.sync()
                grads = self.reparam.grads(grads)
            norm = (clip_grad_norm(grads, self.clip_norm) if self.clip_norm
                    else grad_norm(grads))
            self.optimizer.step(self._params(len(grads)), grads)
            if self.reparam is not None:
                self.reparam.apply()
            loss_sum += loss * len(idx)
            correct += float(np.sum(np.asarray(preds) == y[idx]))
            spikes += stats.get("spikes_per_sample", np.nan) * len(idx)
            norms += norm
            if bar is not None:
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{loss:.4g}")
        self.learner.after_epoch(epoch)
        seconds = time.perf_counter() - t0
        self.train_seconds += seconds
        row = {"epoch": epoch, "lr": self.optimizer.lr, "loss": loss_sum / n, "train_accuracy": correct / n,
               "grad_norm": norms / n_batches, "spikes_per_sample": spikes / n,
               "seconds": seconds}
        if X_val is not None:
            row["val_accuracy"] = self.evaluate(X_val, y_val)["accuracy"]
        return row

    def _local_step(self, X, y, seeds):
        """loss_and_grads of one mini-batch in one process, block by block (``block_size``)
        for rules that compute sums (the blocks a cluster would compute, in the same order)."""
        L = self.learner
        if L.per_sample_parts or not overrides_sums(L) or not L.splittable():
            return L.loss_and_grads(X, y, rng=seeds)
        blocks = block_bounds(len(y), self.block_size)
        statistics = None
        if L.needs_batch_statistics():
            statistics = sum_statistics(L.batch_statistics(X[a:b], y[a:b], seeds[a:b]) for a, b in blocks)
        L.before_batch(X, y, seeds, statistics=statistics)
        if L.sum_rounds():
            return L.finish(sums_in_rounds(L, X, y, seeds, blocks))
        return L.finish(GradSums.combine(L.loss_and_grad_sums(X[a:b], y[a:b], seeds[a:b]) for a, b in blocks))

    def _check_resumed_rates(self, start: int) -> None:
        """Warn when the epochs a checkpoint holds ran at other learning rates than this
        trainer's schedule gives them: another lr, schedule or epoch count, or a checkpoint
        written before the cosine schedule was fixed (until December 2026 its last epoch got
        the floor rate). Training goes on at this trainer's rates; the result is then not
        that of an uninterrupted run."""
        past = [row.get("lr") for row in self.history[:start]]
        want = [self.lr_at(e) for e in range(1, start + 1)]
        if all(isinstance(a, float) and math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)
               for a, b in zip(past, want)):
            return
        def fmt(rates: List[Any]) -> str:
            return ", ".join("?" if r is None else f"{r:.4g}" for r in rates)
        warnings.warn(f"{self.checkpoint}: epochs 1-{start} ran at learning rates {fmt(past)}, "
                      f"but this trainer's schedule gives them {fmt(want)} (another lr, "
                      f"schedule or epoch count, or a checkpoint from before the cosine "
                      f"schedule fix); the remaining epochs use this trainer's rates, so the "
                      f"run will not equal an uninterrupted one", UserWarning, stacklevel=3)

    def lr_at(self, epoch: int) -> float:
        """Learning rate of epoch (1-based) under the schedule (see the class docstring)."""
        if self.schedule == "constant":
            return self.base_lr
        # (epoch - 1) / epochs, not / (epochs - 1): the last epoch must not get the floor
        # (with the default floor 0 it would not learn at all)
        frac = (epoch - 1) / self.epochs
        lo = self.min_lr_fraction
        return self.base_lr * (lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * frac)))

    def predict(self, X: Any, batch_size: Optional[int] = None) -> Tuple[np.ndarray, Dict[str, float]]:
        """Predictions of the learner over X in batches; returns (preds, mean stats)."""
        bs = v.positive_int("batch_size", batch_size or max(self.batch_size, 128))
        # keys of the learner's random draws (stochastic encoders): from the 4th child of the
        # seed (fit uses 3), the same at every call, so a resumed run evaluates the same way
        seeds = SampleSeeds.draw(np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(3,))),
                                 len(X))
        if self.client is not None:
            from .distributed import predict
            preds, spikes = predict(self.client, self.learner, X, seeds, chunk_size=bs)
            return preds, {"spikes_per_sample": spikes / max(len(X), 1)}
        chunks: List[np.ndarray] = []
        spikes = 0.0
        limits = self._thread_limits()
        try:
            for s in range(0, len(X), bs):
                chunk = _take(X, np.arange(s, min(s + bs, len(X))))
                p, stats = predict_with(self.learner, chunk, seeds[s:s + bs])
                chunks.append(np.asarray(p))
                # spike sums (exact, whatever the chunks) when the rule reports them
                spikes += stats["spikes"] if "spikes" in stats else stats.get("spikes_per_sample", np.nan) * len(p)
        finally:
            limits.__exit__(None, None, None)
        preds = np.concatenate(chunks) if chunks else np.zeros(0, np.int64)
        return preds, {"spikes_per_sample": spikes / max(len(X), 1)}

    def evaluate(self, X: Any, y: Any) -> Dict[str, float]:
        """{"accuracy", "spikes_per_sample"} on (X, y)."""
        y = np.asarray(y)
        preds, stats = self.predict(X)
        return {"accuracy": float(np.mean(preds == y)) if len(y) else float("nan"), **stats}
