"""The batched pooling backward (one numba pass over the batch) equals the per-sample
``backward.pool_backward`` on every sample, bit for bit, for max, adjusted and plain average
pooling (src indexes each sample's own relayed events; -1: outside every window)."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from eventsnn.event.backward import pool_backward
from eventsnn.event.batch import pool_backward_batch

from .strategies import examples


@settings(max_examples=examples(100), deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_pool_backward_batch_equals_per_sample(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 6))
    n_out = rng.integers(0, 8, n)
    n_in = rng.integers(0, 12, n)
    out_off = np.r_[0, np.cumsum(n_out)].astype(np.int64)
    in_off = np.r_[0, np.cumsum(n_in)].astype(np.int64)
    src = np.concatenate([rng.integers(-1, o, i) if o > 0 else np.full(i, -1)
                          for o, i in zip(n_out, n_in)]).astype(np.int64)
    winner = rng.random(src.size) < 0.5
    g = rng.normal(size=int(out_off[-1]))
    for is_max, adjusted, k2 in ((True, False, 4.0), (False, True, 4.0), (False, False, 9.0)):
        got = pool_backward_batch(g, out_off, src, winner, in_off, is_max, adjusted, k2)
        for s in range(n):
            a, b = in_off[s], in_off[s + 1]
            want = pool_backward(g[out_off[s]:out_off[s + 1]], src[a:b], winner[a:b], is_max,
                                 adjusted, k2)
            np.testing.assert_array_equal(got[a:b], want)
