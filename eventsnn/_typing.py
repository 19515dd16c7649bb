"""Type aliases shared by the public signatures (for type checkers; no runtime role)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

if TYPE_CHECKING:
    from .learner import SampleSeeds
    from .spikes import SpikeTrains

#: a numpy Generator, an int seed or None (a fresh seed)
Seed = Union[int, np.integer, np.random.Generator, None]
#: a batch of samples as a learner takes it: an array (n, *in_shape) of values in [0, 1]
#: (encoded by the rule), a list of SpikeTrains, or what the rule's own encoder accepts
#: (e.g. a batch of events); hence no narrower static type
Samples = Any
#: per-layer arrays (None for layers without weights, e.g. pooling)
Arrays = Sequence[Optional[np.ndarray]]
#: the random source of a batch: a Generator or int seed (one draw for the whole batch), or
#: per-sample streams (:class:`eventsnn.learner.SampleSeeds`)
BatchRng = Union[int, np.integer, np.random.Generator, "SampleSeeds", None]
#: (loss, grads, predictions, stats) of one mini-batch
LossGrads = Tuple[float, List[Optional[np.ndarray]], np.ndarray, Dict[str, float]]
#: (predicted classes, stats)
Predictions = Tuple[np.ndarray, Dict[str, float]]
