"""The contract between the trainer and the learning rules.

Every learning rule (event-mode timing backprop, and each dense-mode rule) provides a
Learner. The trainer (``eventsnn.train``) only ever talks to this interface, so one
trainer and one CLI serve every rule.

A Learner owns a :class:`eventsnn.Sequential` (``learner.net``) and knows how to
encode raw samples for its mode. Raw samples are float arrays ``X`` of shape
``(n_samples, *in_shape)`` with values in [0, 1] (e.g. digits scaled by 1/16), or lists
of SpikeTrains for event data, and integer labels ``y``.

Rules register under a name in ``RULES`` (``module:Class``, imported lazily so a rule's
import cost is paid only when it is used).

Data parallelism (``eventsnn.distributed``) splits a mini-batch into shares computed on
different machines. For that, a rule implements :meth:`Learner.loss_and_grad_sums` (sums
over the samples of a share, no change to the learner) and keeps every state change in
:meth:`Learner.before_batch` (run once per batch where the learner lives, on the client);
its randomness comes from :class:`SampleSeeds` (one key per sample), so a sample's random
draws do not depend on which share it is in. ``loss_and_grads`` is then the mean of the
sums of the whole batch, which is what the single-process trainer calls.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING, Any, Iterable, List, Optional, Sequence, Tuple, Union, cast

import numpy as np

if TYPE_CHECKING:
    from ._typing import BatchRng, LossGrads, Predictions, Samples


class SampleSeeds:
    """Per-sample random streams of a batch: sample i draws from
    ``numpy.random.default_rng(keys[i])``, wherever and with whichever other samples it is
    computed. The trainer draws the keys from its seeded generator, one per sample.

    Parameters
    ----------
    keys : 1-D array of non-negative ints (one per sample).
    """

    def __init__(self, keys: np.ndarray) -> None:
        keys = np.asarray(keys)
        if keys.ndim != 1 or (keys.size and (keys.dtype.kind not in "iu" or keys.min() < 0)):
            raise ValueError(f"keys must be a 1-D array of non-negative ints, got {keys!r}")
        self.keys = keys.astype(np.uint64)

    @classmethod
    def draw(cls, rng: np.random.Generator, n: int) -> SampleSeeds:
        """``n`` keys drawn from the numpy Generator ``rng``."""
        return cls(rng.integers(0, 2 ** 63, size=int(n), dtype=np.uint64))

    def __len__(self):
        return len(self.keys)

    def __getitem__(self, index):
        return SampleSeeds(self.keys[index])

    def __eq__(self, other):
        return isinstance(other, SampleSeeds) and np.array_equal(self.keys, other.keys)

    def generators(self) -> List[np.random.Generator]:
        """One numpy Generator per sample."""
        return [np.random.default_rng(int(k)) for k in self.keys]

    def random(self, shape: Sequence[int], axis: int = 0) -> np.ndarray:
        """Uniform [0, 1) draws of shape ``shape`` for every sample, stacked along ``axis``
        (sample i's block comes from its own stream)."""
        return np.stack([g.random(shape) for g in self.generators()], axis=axis)


def batch_random(rng: Union[np.random.Generator, SampleSeeds], n: int, shape: Sequence[int],
                 axis: int = 0) -> np.ndarray:
    """Uniform draws for a batch of ``n`` samples, each of shape ``shape``, stacked along
    ``axis``: per sample from :class:`SampleSeeds`, else one draw of the whole array from the
    Generator ``rng`` (the single-call behaviour of the learners)."""
    if isinstance(rng, SampleSeeds):
        if len(rng) != n:
            raise ValueError(f"rng has {len(rng)} sample keys for a batch of {n} samples")
        return rng.random(shape, axis=axis)
    full = list(shape)
    full.insert(axis, n)
    return rng.random(tuple(full))


@dataclasses.dataclass
class GradSums:
    """Sums over the samples of one share of a mini-batch (the result of
    :meth:`Learner.loss_and_grad_sums`).

    n : int, samples; loss : float, sum of the per-sample losses; grads : list of arrays or
    None (as ``loss_and_grads``), sums of the per-sample gradients; preds : int array (n,);
    spikes : float, sum of the per-sample spike counts (nan if the rule does not count).

    Rules that compute every sample's gradient on its own (the event rule) also give
    ``parts`` (one gradient list per sample) and ``losses`` (per-sample losses): then
    :meth:`combine` adds the samples' gradients one by one in batch order and sums the
    losses of the whole batch at once, which is exactly what one process does with the
    whole batch, so any split gives the same bits. Otherwise the shares' sums are added
    (rounding differs from one process by about 1e-16 relative).
    """

    n: int
    loss: float
    grads: Optional[list]
    preds: np.ndarray
    spikes: float = float("nan")
    parts: Optional[list] = None
    losses: Optional[np.ndarray] = None

    def __post_init__(self):
        if self.grads is None and self.parts is not None:
            self.grads = _sum_in_order(self.parts)

    @staticmethod
    def combine(shares: Iterable[GradSums]) -> GradSums:
        """The sums of a batch from its shares, added in the order given (left to right)."""
        shares = list(shares)
        if not shares:
            raise ValueError("shares must hold at least one GradSums")
        n = sum(s.n for s in shares)
        preds = np.concatenate([np.asarray(s.preds, dtype=np.int64) for s in shares])
        spikes = shares[0].spikes
        for s in shares[1:]:
            spikes = spikes + s.spikes
        if all(s.losses is not None for s in shares):
            losses = np.concatenate([np.asarray(s.losses, dtype=np.float64) for s in shares])
            loss = float(np.sum(losses))
        else:
            losses, loss = None, shares[0].loss
            for s in shares[1:]:
                loss = loss + s.loss
        if all(s.parts is not None for s in shares):
            parts = [p for s in shares for p in cast(list, s.parts)]
            return GradSums(n, loss, None, preds, spikes, parts=parts, losses=losses)
        first = shares[0]
        grads = [None if g is None else np.array(g, dtype=np.float64) for g in cast(list, first.grads)]
        for s in shares[1:]:
            if len(cast(list, s.grads)) != len(grads):
                raise ValueError("shares have different numbers of gradients")
            for k, g in enumerate(cast(list, s.grads)):
                if (g is None) != (grads[k] is None):
                    raise ValueError(f"shares disagree on whether gradient {k} exists")
                if g is not None:
                    grads[k] = grads[k] + g
        return GradSums(n, loss, grads, preds, spikes, losses=losses)

    def mean(self) -> LossGrads:
        """(loss, grads, predictions, stats) as :meth:`Learner.loss_and_grads` returns them:
        the sums divided by n."""
        n = self.n
        grads = [None if g is None else g / n for g in cast(list, self.grads)]
        return self.loss / n, grads, np.asarray(self.preds), {"spikes_per_sample": self.spikes / n}


def _sum_in_order(parts):
    """Element-wise sum of per-sample gradient lists, 0 + p0 + p1 + ... in list order."""
    if not parts:
        raise ValueError("parts must hold at least one sample's gradients")
    out = []
    for k, g in enumerate(parts[0]):
        if g is None:
            out.append(None)
            continue
        total = np.zeros(np.shape(g))
        for p in parts:
            total += p[k]
        out.append(total)
    return out


def block_bounds(n: int, block_size: Optional[int]) -> List[Tuple[int, int]]:
    """The blocks of a mini-batch of ``n`` samples: [(0, b), (b, 2b), ...], the last one
    shorter. The trainer computes the sums of each block on its own and adds them in block
    order, with or without a cluster (a cluster's shares are groups of whole blocks), so the
    rounding does not depend on how many workers there are."""
    if block_size is None or block_size >= n:
        return [(0, n)] if n else []
    return [(a, min(a + block_size, n)) for a in range(0, n, block_size)]


def sum_statistics(parts: Iterable[Sequence[float]]) -> List[float]:
    """Element-wise sum of :meth:`Learner.batch_statistics` lists, left to right."""
    parts = list(parts)
    total = [float(x) for x in parts[0]]
    for p in parts[1:]:
        if len(p) != len(total):
            raise ValueError("batch statistics of different lengths")
        total = [a + float(b) for a, b in zip(total, p)]
    return total


def _block_rng(rng, a, b, n):
    """The rng of samples a:b of a batch of n: SampleSeeds are cut, anything else (a
    Generator, a seed, None) is only passed on for the whole batch."""
    if isinstance(rng, SampleSeeds):
        return rng[a:b]
    if rng is not None and (a, b) != (0, n):
        raise ValueError("a batch computed in several blocks needs SampleSeeds (one key per sample)")
    return rng


def sums_in_rounds(learner: Learner, X: Samples, y: np.ndarray, rng: BatchRng,
                   blocks: Sequence[Tuple[int, int]]) -> GradSums:
    """:class:`GradSums` of the batch (X, y) of a rule whose gradient needs batch-wide
    reductions between rounds (:meth:`Learner.sum_rounds`), computed in ``blocks`` [(a, b),
    ...] (one process): every block starts (:meth:`Learner.start_sums`); while the blocks
    have statistics, these are added in block order, reduced by
    :meth:`Learner.reduce_round`, and every block goes on (:meth:`Learner.next_round`); the
    blocks' GradSums are combined in block order. A cluster does the same with the blocks
    of each worker's share held on the workers (``eventsnn.distributed``)."""
    n = len(y)
    states = [learner.start_sums(X[a:b], y[a:b], _block_rng(rng, a, b, n)) for a, b in blocks]
    shared = None
    while (stats := round_stats([s.stats for s in states])) is not None:
        shared = learner.reduce_round(sum_statistics(stats), shared)
        states = [learner.next_round(s, shared) for s in states]
    return GradSums.combine(s.sums for s in states)


def round_stats(stats: Sequence[Any]) -> Optional[Sequence[Any]]:
    """The blocks' statistics of a round (a list in block order), or None when every block
    is done (the blocks of one batch run the same layers, so they finish together)."""
    if all(x is None for x in stats):
        return None
    if any(x is None for x in stats):
        raise RuntimeError("the blocks of a batch finished their rounds at different times")
    return stats


def overrides_sums(learner: Learner) -> bool:
    """Whether the learner computes :meth:`Learner.loss_and_grad_sums` itself (not the
    base's means-times-n fallback)."""
    return type(learner).loss_and_grad_sums is not Learner.loss_and_grad_sums


class Learner:
    """Base class of the learning rules.

    Subclasses set ``self.net`` and implement :meth:`loss_and_grad_sums` (or, for a rule that
    does not take part in data parallelism, :meth:`loss_and_grads`) and :meth:`predict`.
    ``options`` is a dict of the rule's own options (documented by each rule).

    ``per_sample_parts``: True for a rule whose GradSums carry every sample's gradient
    (``parts``), which makes any split exact without blocks (the event rule); the trainer
    then hands it whole mini-batches.
    """

    name = "base"
    #: modules whose numba kernels the rule compiles (for the one-time compilation note)
    kernel_modules: Tuple[str, ...] = ()
    #: attributes saved in epoch checkpoints besides the random generators
    _checkpoint_attrs: Tuple[str, ...] = ()
    per_sample_parts = False

    def loss_and_grads(self, X: Samples, y: np.ndarray, rng: BatchRng = None) -> LossGrads:
        """Forward and backward on one mini-batch.

        Returns (loss: float (mean over the batch), grads: list with one array per layer of
        ``self.net.layers`` (None for layers without weights), optionally followed by one
        bias gradient per layer (None for layers without a bias; rules that train biases
        return these 2 L entries when the network has a bias), predictions: int array
        (n,), stats: dict of floats, e.g. {"spikes_per_sample": ...}).

        ``rng``: numpy Generator or int seed (one draw for the whole batch), or
        :class:`SampleSeeds` (one stream per sample, what the trainer passes).

        Default: :meth:`before_batch`, then the mean of :meth:`loss_and_grad_sums`."""
        self.before_batch(X, y, rng)
        return self.finish(self.loss_and_grad_sums(X, y, rng))

    def finish(self, sums: GradSums) -> LossGrads:
        """(loss, grads, preds, stats) of a batch from its combined :class:`GradSums`: the
        means, then :meth:`finish_grads` (runs where the learner lives)."""
        loss, grads, preds, stats = sums.mean()
        return loss, self.finish_grads(grads), preds, stats

    def finish_grads(self, grads: List[Optional[np.ndarray]]) -> List[Optional[np.ndarray]]:
        """A change of the batch-mean gradients that is not a sum over samples (e.g. ANTLR's
        element-wise ``grad_clip``). Default: none."""
        return grads

    def loss_and_grad_sums(self, X: Samples, y: np.ndarray, rng: BatchRng = None) -> GradSums:
        """:class:`GradSums` of the samples (X, y): the same computation as
        :meth:`loss_and_grads` with sums over the samples in place of means. Must not change
        the learner (it runs on copies of it, on other machines); :meth:`before_batch` of the
        whole batch has run before.

        Default (rules that only implement ``loss_and_grads``): the means times n, which is
        not bit-exact under a split into shares."""
        loss, grads, preds, stats = self.loss_and_grads(X, y, rng)
        n = len(preds)
        return GradSums(n, loss * n, [None if g is None else np.asarray(g) * n for g in grads],
                        np.asarray(preds), stats.get("spikes_per_sample", float("nan")) * n)

    def sum_rounds(self) -> bool:
        """Whether this rule's gradient of a batch needs batch-wide reductions in the middle
        of the computation (NA's rescaling by the batch's mean |delta| of every layer during
        the backward pass): then the trainer runs :func:`sums_in_rounds` instead of
        :meth:`loss_and_grad_sums` per block, and a cluster does the rounds with the blocks'
        state held on the workers. Such a rule implements :meth:`start_sums`,
        :meth:`reduce_round` and :meth:`next_round`. Default False."""
        return False

    def start_sums(self, X: Samples, y: np.ndarray, rng: BatchRng = None) -> Any:
        """First round of the samples (X, y) (one block of a batch): a picklable state with
        ``stats`` (a list of floats to be summed over the blocks of the batch, or None when
        done) and ``sums`` (the block's :class:`GradSums` once done). Must not change the
        learner."""
        raise NotImplementedError(f"the {self.name} rule does not compute in rounds")

    def reduce_round(self, totals: List[float], shared: Any = None) -> Any:
        """What every block needs for its next round, from ``totals`` (the element-wise sum of
        the blocks' ``stats``, in block order) and the previous round's value (None after the
        first round). Runs where the learner lives (the client)."""
        raise NotImplementedError(f"the {self.name} rule does not compute in rounds")

    def next_round(self, state: Any, shared: Any) -> Any:
        """The state after the next round of one block, given :meth:`reduce_round`'s value.
        Must change neither the learner nor ``state`` (a round lost with a worker is computed
        again from it)."""
        raise NotImplementedError(f"the {self.name} rule does not compute in rounds")

    def needs_batch_statistics(self) -> bool:
        """Whether :meth:`before_batch` of the current batch needs :meth:`batch_statistics`
        (e.g. ASF-BP in an epoch that updates its scales). Default False."""
        return False

    def batch_statistics(self, X: Samples, y: Optional[np.ndarray],
                         rng: BatchRng = None) -> Optional[List[float]]:
        """Additive statistics of the samples (X, y) that :meth:`before_batch` needs from the
        whole batch: a list of floats whose element-wise sum over the shares of a batch is
        the batch's. Must not change the learner. Default None (nothing)."""
        return None

    def needs_batch_samples(self) -> bool:
        """Whether :meth:`before_batch` of the current batch needs the samples themselves
        (e.g. the event rule before its firing-rate initialisation). Default False."""
        return False

    def before_batch(self, X: Optional[Samples], y: Optional[np.ndarray], rng: BatchRng = None,
                     statistics: Optional[List[float]] = None) -> None:
        """Every change of the learner's state that a mini-batch makes before its gradients
        (e.g. the event rule's firing-rate initialisation on its first batch, ASF-BP's scale
        update). Runs where the learner lives (the client); ``statistics``: the summed
        :meth:`batch_statistics` of the whole batch when :meth:`needs_batch_statistics`, else
        None (the rule computes them itself from X). The data-parallel trainer passes
        ``X=None`` unless :meth:`needs_batch_samples`. Default: nothing."""

    def splittable(self) -> bool:
        """Whether :meth:`check_shares` passes."""
        try:
            self.check_shares()
        except ValueError:
            return False
        return True

    def check_shares(self) -> None:
        """Raise ValueError if the rule's gradient of a batch cannot be summed from shares of
        it (with its current options). Default: it can."""

    def predict(self, X: Samples, rng: BatchRng = None) -> Predictions:
        """Predicted class of each sample, int array (n,), plus a stats dict.
        ``rng`` as in :meth:`loss_and_grads` (used by stochastic encoders only)."""
        raise NotImplementedError

    def after_epoch(self, epoch: int) -> None:
        """Hook for per-epoch schedules (e.g. ASF-BP's scale update). Default: nothing."""


def predict_with(learner: Learner, X: Samples, rng: BatchRng) -> Predictions:
    """``learner.predict(X, rng=rng)``, or ``learner.predict(X)`` for a rule whose predict
    takes no rng (written for the first version of the contract)."""
    import inspect

    try:
        params = inspect.signature(learner.predict).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        params = {}  # type: ignore[assignment]
    if "rng" in params or any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return learner.predict(X, rng=rng)
    return learner.predict(X)


#: rule name -> "module:Class"; each module is imported only when its rule is asked for
RULES = {
    "event": "eventsnn.event.learner:EventLearner",
    "timing": "eventsnn.dense.learners:TimingLearner",
    "activation": "eventsnn.dense.learners:ActivationLearner",
    "antlr": "eventsnn.dense.learners:AntlrLearner",
    "tssl": "eventsnn.dense.learners_psc:TsslLearner",
    "na": "eventsnn.dense.learners_psc:NaLearner",
    "asf": "eventsnn.dense.learners_psc:AsfLearner",
}


def get_learner_class(rule: str) -> type:
    """The Learner class registered under ``rule``."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {sorted(RULES)}, got {rule!r}")
    module, cls = RULES[rule].split(":")
    return getattr(importlib.import_module(module), cls)
