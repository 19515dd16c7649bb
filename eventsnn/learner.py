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
"""
import importlib
from typing import Tuple


class Learner:
    """Base class of the learning rules.

    Subclasses set ``self.net`` and implement :meth:`loss_and_grads` and :meth:`predict`.
    ``options`` is a dict of the rule's own options (documented by each rule).
    """

    name = "base"
    #: modules whose numba kernels the rule compiles (for the one-time compilation note)
    kernel_modules: Tuple[str, ...] = ()
    #: attributes saved in epoch checkpoints besides the random generators
    _checkpoint_attrs: Tuple[str, ...] = ()

    def loss_and_grads(self, X, y, rng=None):
        """Forward and backward on one mini-batch.

        Returns (loss: float (mean over the batch), grads: list with one array per layer of
        ``self.net.layers`` (None for layers without weights), optionally followed by one
        bias gradient per layer (None for layers without a bias; rules that train biases
        return these 2 L entries when the network has a bias), predictions: int array
        (n,), stats: dict of floats, e.g. {"spikes_per_sample": ...})."""
        raise NotImplementedError

    def predict(self, X):
        """Predicted class of each sample, int array (n,), plus a stats dict."""
        raise NotImplementedError

    def after_epoch(self, epoch):
        """Hook for per-epoch schedules (e.g. ASF-BP's scale update). Default: nothing."""


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


def get_learner_class(rule):
    """The Learner class registered under ``rule``."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {sorted(RULES)}, got {rule!r}")
    module, cls = RULES[rule].split(":")
    return getattr(importlib.import_module(module), cls)
