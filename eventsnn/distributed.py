"""Data-parallel simulation and training on a Dask cluster (optional extra ``distributed``).

Dask's distributed scheduler runs as a local cluster on one machine or as a real cluster
(SSH, Kubernetes, HPC job queues through dask-jobqueue); the code here is the same for all.
See docs/distributed.md.

- :func:`connect`: a ``dask.distributed.Client`` from an address: ``tcp://HOST:PORT`` (a
  running scheduler) or ``local:N`` (a LocalCluster of N single-threaded worker processes on
  the loopback interface, stopped with the client).
- Training (``Trainer(..., client=client)``, :class:`TrainSession`): every mini-batch is cut
  into a fixed number of contiguous shares (the number of workers when training starts);
  each worker computes the SUMS of its share's losses and gradients with the weights of that
  step (:meth:`eventsnn.learner.Learner.loss_and_grad_sums`), the client adds the shares in
  share order, divides by the batch size and steps the optimiser once. The learner (weights
  and state) lives on the client and is broadcast to the workers once per step; its state
  changes happen on the client (:meth:`~eventsnn.learner.Learner.before_batch`). Random
  draws come from one key per sample (:class:`eventsnn.learner.SampleSeeds`), so they do not
  depend on the split. The result equals the single-process run up to the rounding of the
  share sums (about 1e-16 relative per step).
- :func:`simulate` and :func:`predict`: many samples scattered over the cluster, the network
  broadcast once, samples that are files (paths, :class:`eventsnn.datasets.event_data.EventFiles`)
  read by the workers; :func:`map_items`: any function of (shared value, item) over items
  (``eventsnn simulate --scheduler``: the workers read and simulate the event files).
- Faults: a step whose shares fail because a worker or its data is lost is computed again
  (same learner, same samples, same keys: the same result); Dask itself moves the tasks of
  a lost worker to the others.
"""
from __future__ import annotations

import copy
import math
import os

import numpy as np

from . import _validate as v
from .learner import (GradSums, Learner, SampleSeeds, block_bounds, overrides_sums, predict_with,
                      round_stats, sum_statistics)
from typing import TYPE_CHECKING, Any, Callable, Iterable, List, Optional, Sequence, Tuple, Union

from ._typing import LossGrads, Samples

if TYPE_CHECKING:
    from .event.forward import Record
    from .network import Sequential
    from .spikes import SpikeTrains

#: the command that installs this module's dependency
INSTALL = 'pip install "eventsnn[distributed]"'
#: how often a step (or a batch of predictions) is computed again after a lost worker
DEFAULT_RETRIES = 3
#: seconds to wait for a scheduler before giving up
DEFAULT_TIMEOUT = 10.0
#: longest wait for a scheduler accepted (seconds)
MAX_TIMEOUT_S = 86400.0
#: thread settings of the LocalCluster workers (one core each; results do not depend on them)
_WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1"}


class SchedulerUnreachable(ConnectionError):
    """The Dask scheduler at an address could not be reached."""


class ClusterLost(ConnectionError):
    """A computation kept failing because workers, connections or the scheduler were lost
    (after its retries)."""


def _require():
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ImportError(f"eventsnn.distributed needs dask.distributed: {INSTALL}") from None
    return distributed


def _lost_errors():
    """Exceptions that mean a worker, a connection or data held by a worker was lost (a
    reason to compute the step again), as opposed to an error raised by the computation."""
    from distributed.client import FutureCancelledError
    from distributed.comm.core import CommClosedError
    from distributed.scheduler import KilledWorker

    import concurrent.futures

    return (KilledWorker, FutureCancelledError, concurrent.futures.CancelledError,
            CommClosedError, ConnectionError, TimeoutError)


#: most worker processes ``local:N`` starts (local:99999999999 would fork until the machine
#: falls over)
MAX_LOCAL_WORKERS = 1024


def parse_address(address: str) -> Tuple[str, Any]:
    """("local", n_workers) for ``local:N``, else ("remote", address)."""
    if not isinstance(address, str) or not address.strip():
        raise ValueError(f"scheduler address must be 'tcp://HOST:PORT' or 'local:N', got {address!r}")
    address = address.strip()
    if address.startswith("local:"):
        n = address[len("local:"):]
        if not (n.isascii() and n.isdigit()) or int(n) < 1:
            raise ValueError(f"scheduler address {address!r}: 'local:N' needs a worker count N >= 1")
        if int(n) > MAX_LOCAL_WORKERS:
            raise ValueError(f"scheduler address {address!r}: at most {MAX_LOCAL_WORKERS} local "
                             "worker processes (one per core is the useful maximum)")
        return "local", int(n)
    if address == "local":
        raise ValueError("scheduler address 'local' needs a worker count: 'local:N', e.g. local:2")
    return "remote", address


class Connection:
    """A Client and, for ``local:N``, the LocalCluster it started; a context manager that
    closes both (``with connect("local:2") as client: ...``)."""

    def __init__(self, client: Any, cluster: Any = None) -> None:
        self.client = client
        self.cluster = cluster

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()

    def __enter__(self):
        return self.client

    def __exit__(self, *exc):
        self.close()


def local_cluster(n_workers: int, threads: int = 1, silence_logs: bool = True) -> Any:
    """A LocalCluster of ``n_workers`` worker processes (``threads`` threads each, numba and
    BLAS limited to as many) on 127.0.0.1, no dashboard."""
    _require()
    import logging

    from distributed import LocalCluster

    n_workers = v.positive_int("n_workers", n_workers)
    threads = v.positive_int("threads", threads)
    env = {k: str(threads) for k in _WORKER_ENV}
    # no dashboard; the scheduler's HTTP endpoint on a free loopback port (not 8787)
    return LocalCluster(n_workers=n_workers, threads_per_worker=threads, processes=True,
                        host="127.0.0.1", dashboard_address=None, env=env,
                        scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                        silence_logs=logging.ERROR if silence_logs else logging.INFO)


def connect(address: str, timeout: float = DEFAULT_TIMEOUT) -> Connection:
    """A :class:`Connection` to ``address``: ``tcp://HOST:PORT`` (any address a
    ``dask.distributed.Client`` takes) or ``local:N`` (a new LocalCluster of N processes).

    Raises SchedulerUnreachable (one line naming the address) when no scheduler answers
    within ``timeout`` seconds."""
    _require()
    from distributed import Client

    kind, target = parse_address(address)
    timeout = v.positive_float("timeout", timeout)
    if timeout > MAX_TIMEOUT_S:  # asyncio overflows on 1e308 s and a connect never ends
        raise ValueError(f"timeout must be <= {MAX_TIMEOUT_S:g} s (a day), got {timeout!r}")
    if kind == "local":
        cluster = local_cluster(target)
        try:
            client = Client(cluster, timeout=timeout)
            client.wait_for_workers(target, timeout=max(timeout, 60.0))
        except BaseException:
            cluster.close()
            raise
        return Connection(client, cluster)
    _probe_tcp(target, timeout)
    try:
        client = Client(target, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise SchedulerUnreachable(f"cannot reach the Dask scheduler at {target}: {reason}") from None
    return Connection(client)


def _probe_tcp(target: str, timeout: float) -> None:
    """For ``tcp://HOST:PORT`` (or a bare ``HOST:PORT``), open and close a plain socket first:
    a refused or unroutable address gives SchedulerUnreachable at once, without starting a
    Dask client (whose connection retries once did not return on a refused port)."""
    import socket
    from urllib.parse import urlsplit

    rest = target[len("tcp://"):] if target.startswith("tcp://") else target
    if "://" in rest:
        return  # tls://, ucx://, inproc://...: left to Dask
    try:
        parts = urlsplit("//" + rest)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise SchedulerUnreachable(f"cannot reach the Dask scheduler at {target}: {exc}") from None
    if not host or port is None:
        return  # no explicit port: Dask applies its default
    try:
        with socket.create_connection((host, port), timeout=min(timeout, 30.0)):
            pass
    except OSError as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise SchedulerUnreachable(f"cannot reach the Dask scheduler at {target}: {reason}") from None


def n_workers(client: Any) -> int:
    """Number of workers the scheduler knows now."""
    return len(client.scheduler_info().get("workers", {}))


def _check_client(client):
    _require()
    from distributed import Client

    if not isinstance(client, Client):
        raise TypeError(f"client must be a dask.distributed.Client, got {type(client).__name__}")
    try:
        client._eventsnn_address = client.scheduler.address
    except AttributeError:
        pass
    return client


def share_bounds(n: int, shares: int) -> List[Tuple[int, int]]:
    """Contiguous shares of ``n`` samples: a list of (start, stop), the first ``n % shares``
    one sample longer (empty shares dropped)."""
    n = v.positive_int("n", n, allow_zero=True)
    shares = v.positive_int("shares", shares)
    out, start = [], 0
    base, extra = divmod(n, shares)
    for k in range(min(shares, n)):  # shares beyond n are empty (and 10**20 of them never end)
        stop = start + base + (1 if k < extra else 0)
        if stop > start:
            out.append((start, stop))
        start = stop
    return out


# ---- data held by the workers -------------------------------------------------------------
class _Data:
    """The samples of a run, scattered once: an array (n, ...), a list of SpikeTrains, or a
    sequence read on access (EventFiles: the workers read the files)."""

    def __init__(self, X):
        self.X = X

    def take(self, idx):
        X = self.X
        if isinstance(X, np.ndarray):
            return X[np.asarray(idx, dtype=np.int64)]
        return [X[int(i)] for i in idx]


def _to_sample(item, loader):
    """A sample as the network takes it: SpikeTrains as is, paths read by ``loader``."""
    if isinstance(item, (str, os.PathLike)):
        return loader(item)
    return item


def read_event_file(path: Union[str, "os.PathLike[str]"], t_max: Optional[float] = None,
                    merge_polarity: bool = False, time_scale: float = 1.0) -> SpikeTrains:
    """SpikeTrains of one N-MNIST-style ``.bin`` / ``.bs2`` recording (the default loader of
    :func:`simulate` for paths)."""
    from .datasets.event_data import EventFiles

    return EventFiles([path], t_max, merge_polarity, time_scale)[0]


# ---- tasks (module functions: they pickle by reference) ------------------------------------
def _own(obj):
    """A deep copy: arrays that Dask deserialised as views into its message buffers (8-byte
    but not cache-line aligned) become fresh allocations, as in the client, so that BLAS
    takes the same code path and rounds the same way."""
    return copy.deepcopy(obj)


def _task_sums(learner, data, idx, y, keys, blocks):
    learner = _own(learner)
    X, seeds = _own(data.take(idx)), SampleSeeds(keys)
    return [learner.loss_and_grad_sums(X[a:b], y[a:b], seeds[a:b]) for a, b in blocks]


def _task_statistics(learner, data, idx, y, keys, blocks):
    learner = _own(learner)
    X, seeds = _own(data.take(idx)), SampleSeeds(keys)
    return [learner.batch_statistics(X[a:b], y[a:b], seeds[a:b]) for a, b in blocks]


def _task_start(learner, data, idx, y, keys, blocks):
    learner = _own(learner)
    X, seeds = _own(data.take(idx)), SampleSeeds(keys)
    return [learner.start_sums(X[a:b], y[a:b], seeds[a:b]) for a, b in blocks]


def _task_round(learner, states, shared):
    # copies: next_round must not see buffers of a transfer (a state moved between workers)
    return [_own(learner).next_round(s, shared) for s in _own(states)]


def _task_round_stats(states):
    return [s.stats for s in states]


def _task_round_sums(states):
    return [s.sums for s in states]


def _task_map(func, shared, items):
    shared = _own(shared)
    return [func(shared, item) for item in items]


def _task_predict(learner, data, idx, keys):
    preds, stats = predict_with(_own(learner), _own(data.take(idx)), SampleSeeds(keys))
    spikes = stats.get("spikes", stats.get("spikes_per_sample", float("nan")) * len(preds))
    return np.asarray(preds, dtype=np.int64), float(spikes)


def _task_simulate(net, items, loader, kwargs):
    return _own(net).simulate([_own(_to_sample(it, loader)) for it in items], **kwargs)


def _scheduler_address(client):
    """The scheduler's address, remembered by :func:`_check_client` (a closed client no
    longer knows it)."""
    try:
        return client.scheduler.address
    except AttributeError:
        return getattr(client, "_eventsnn_address", "(unknown address)")


def _closed(client):
    return getattr(client, "status", "running") in ("closing", "closed")


def _retry(client, attempt, retries, what):
    """``attempt(fresh)`` (fresh: a retry, scatter again); computed again from scratch when a
    worker, a connection or scattered data was lost, at most ``retries`` times. A client
    that lost its scheduler for good (Dask closes it after failing to reconnect) raises
    ClusterLost naming the address, whatever Dask's own error was."""
    lost = _lost_errors()
    address = _scheduler_address(client)
    for k in range(retries + 1):
        if _closed(client):
            raise ClusterLost(f"{what}: the client of the Dask scheduler at {address} is closed "
                              "(scheduler lost)")
        try:
            return attempt(k > 0)
        except lost as exc:
            last = exc
        except Exception as exc:
            if not _closed(client):
                raise
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise ClusterLost(f"{what}: lost the Dask scheduler at {address} ({reason})") from None
    reason = " ".join(str(last).split()) or "no message"
    raise ClusterLost(f"{what} failed {retries + 1} times because workers or the scheduler were "
                      f"lost (last: {type(last).__name__}: {reason})")


def _run(client, submit, retries, what):
    """Gather the futures ``submit()`` makes; compute them again (a fresh ``submit()``) when a
    worker, a connection or scattered data was lost, at most ``retries`` times."""
    def attempt(fresh):
        futures = submit()
        try:
            return client.gather(futures)
        finally:
            for f in futures:
                f.release()

    return _retry(client, attempt, retries, what)


class _Scattered:
    """A value scattered to every worker, scattered again on demand (after a loss)."""

    def __init__(self, client, value):
        self.client, self.value, self.future = client, value, None

    def get(self, fresh=False):
        if self.future is None or fresh or self.future.status != "finished":
            self.release()
            # a one-element list: scatter would cut a tuple, list or dict value into its items
            self.future = self.client.scatter([self.value], broadcast=True, hash=False)[0]
        return self.future

    def release(self):
        if self.future is not None:
            self.future.release()
            self.future = None


class TrainSession:
    """Data-parallel mini-batch gradients of one training run (used by
    :class:`eventsnn.train.Trainer` when it has a client).

    Parameters
    ----------
    client : dask.distributed.Client.
    learner : Learner (lives on the client; broadcast to the workers at every step).
    X, y : the training samples (scattered once; EventFiles ship their paths only) and labels.
    shares : int or None, shares per mini-batch (default: the workers at the start). Fixed
        for the run.
    block_size : int or None, samples per block (as ``Trainer``): a share is a group of
        whole blocks, each block's sums computed on their own and all blocks added in
        order, as one process does (rules with per-sample parts: one block per share).
    retries : int, times a step is computed again after lost workers.
    """

    def __init__(self, client: Any, learner: Learner, X: Samples, y: np.ndarray,
                 shares: Optional[int] = None, retries: int = DEFAULT_RETRIES,
                 block_size: Optional[int] = 8) -> None:
        self.client = _check_client(client)
        if not isinstance(learner, Learner):
            raise TypeError(f"learner must be an eventsnn Learner, got {type(learner).__name__}")
        learner.check_shares()
        self.learner = learner
        self.y = np.asarray(y)
        if shares is None:
            shares = max(1, n_workers(client))
        self.shares = v.positive_int("shares", shares)
        self.retries = v.positive_int("retries", retries, allow_zero=True)
        self.block_size = None if block_size is None else v.positive_int("block_size", block_size)
        self.data = _Scattered(client, _Data(X))
        self.X = X

    def _plan(self, n):
        """[(start, stop, blocks relative to start)] of the shares of a batch of n samples."""
        L = self.learner
        if L.per_sample_parts or not overrides_sums(L):
            return [(a, b, [(0, b - a)]) for a, b in share_bounds(n, self.shares)]
        blocks = block_bounds(n, self.block_size)
        plan = []
        for i, j in share_bounds(len(blocks), self.shares):
            start, stop = blocks[i][0], blocks[j - 1][1]
            plan.append((start, stop, [(a - start, b - start) for a, b in blocks[i:j]]))
        return plan

    def _map(self, func, idx, keys, learner_future, fresh):
        data = self.data.get(fresh)
        return [self.client.submit(func, learner_future, data, idx[a:b], self.y[idx[a:b]], keys[a:b],
                                   blocks, pure=False)
                for a, b, blocks in self._plan(len(idx))]

    def _step_map(self, func, idx, keys, what):
        learner = _Scattered(self.client, self.learner)
        attempt = [0]

        def submit():
            fresh = attempt[0] > 0
            attempt[0] += 1
            return self._map(func, idx, keys, learner.get(fresh), fresh)

        try:
            return _run(self.client, submit, self.retries, what)
        finally:
            learner.release()

    def loss_and_grads(self, idx: np.ndarray, seeds: SampleSeeds) -> LossGrads:
        """(loss, grads, preds, stats) of the mini-batch of samples ``idx`` (as
        ``Learner.loss_and_grads``), computed in shares on the workers."""
        idx = np.asarray(idx, dtype=np.int64)
        keys = seeds.keys
        L = self.learner
        statistics = None
        if L.needs_batch_statistics():
            parts = self._step_map(_task_statistics, idx, keys, "batch statistics")
            statistics = sum_statistics(b for share in parts for b in share)
        X = _Data(self.X).take(idx) if L.needs_batch_samples() else None
        L.before_batch(X, self.y[idx], seeds, statistics=statistics)
        if L.sum_rounds():
            return L.finish(self._rounds(idx, keys))
        sums = self._step_map(_task_sums, idx, keys, "a training step")
        return L.finish(GradSums.combine(b for share in sums for b in share))

    def _rounds(self, idx, keys):
        """GradSums of a rule that computes in rounds (:meth:`Learner.sum_rounds`), as
        :func:`eventsnn.learner.sums_in_rounds` does in one process: every share's blocks
        start on a worker and their state stays there (a future); per round the client
        gathers only the blocks' statistics, reduces them in block order and sends the
        reduced value with the next round's tasks."""
        L, client = self.learner, self.client
        learner = _Scattered(client, L)

        def attempt(fresh):
            held = []

            def submit(func, *args):
                f = client.submit(func, *args, pure=False)
                held.append(f)
                return f

            try:
                lf, data = learner.get(fresh), self.data.get(fresh)
                states = [submit(_task_start, lf, data, idx[a:b], self.y[idx[a:b]], keys[a:b], blocks)
                          for a, b, blocks in self._plan(len(idx))]
                shared = None
                while True:
                    parts = client.gather([submit(_task_round_stats, s) for s in states])
                    stats = round_stats([b for share in parts for b in share])
                    if stats is None:
                        break
                    shared = L.reduce_round(sum_statistics(stats), shared)
                    states = [submit(_task_round, lf, s, shared) for s in states]
                sums = client.gather([submit(_task_round_sums, s) for s in states])
                return GradSums.combine(b for share in sums for b in share)
            finally:
                for f in held:
                    f.release()

        try:
            return _retry(client, attempt, self.retries, "a training step")
        finally:
            learner.release()

    def close(self) -> None:
        self.data.release()


def _chunks(n, n_chunks):
    return share_bounds(n, max(1, min(n, n_chunks)))


def predict(client: Any, learner: Learner, X: Samples, seeds: SampleSeeds,
            chunk_size: int = 128, retries: int = DEFAULT_RETRIES) -> Tuple[np.ndarray, float]:
    """(predictions int64 (n,), spike sum) of ``learner`` on samples X over the cluster: the
    learner broadcast once, X scattered (EventFiles: paths only) and cut into chunks of at
    most ``chunk_size`` samples, at least one per worker. ``seeds``: SampleSeeds (n)."""
    client = _check_client(client)
    n = len(X)
    if len(seeds) != n:
        raise ValueError(f"seeds has {len(seeds)} keys for {n} samples")
    if n == 0:
        return np.zeros(0, np.int64), 0.0
    chunk_size = v.positive_int("chunk_size", chunk_size)
    n_chunks = max(math.ceil(n / chunk_size), n_workers(client))
    data = _Scattered(client, _Data(X))
    model = _Scattered(client, learner)
    attempt = [0]

    def submit():
        fresh = attempt[0] > 0
        attempt[0] += 1
        d, m = data.get(fresh), model.get(fresh)
        return [client.submit(_task_predict, m, d, np.arange(a, b), seeds.keys[a:b], pure=False)
                for a, b in _chunks(n, n_chunks)]

    try:
        parts = _run(client, submit, v.positive_int("retries", retries, allow_zero=True), "prediction")
    finally:
        data.release()
        model.release()
    return np.concatenate([p for p, _ in parts]), float(sum(s for _, s in parts))


def simulate(net: Sequential, inputs: Iterable[Any], client: Any, t_end: Optional[float] = None,
             chunk_size: int = 16, loader: Optional[Callable[[Any], SpikeTrains]] = None,
             retries: int = DEFAULT_RETRIES, **kwargs: Any) -> List[Record]:
    """``net.simulate(inputs, t_end, **kwargs)`` for a list of samples, over the cluster.

    Parameters
    ----------
    net : Sequential (broadcast once).
    inputs : list of SpikeTrains and/or paths of event files (read by the workers with
        ``loader``), or an EventFiles.
    client : dask.distributed.Client.
    t_end : float or None, ms (as ``Sequential.simulate``).
    chunk_size : int, most samples per task (at least one task per worker).
    loader : callable path -> SpikeTrains run on the workers (default
        :func:`read_event_file`, N-MNIST ``.bin`` / ``.bs2``).
    kwargs : further arguments of ``Sequential.simulate`` (record_times, n_threads,
        max_spikes).

    Returns the list of Records, in the order of ``inputs``.
    """
    from .datasets.event_data import EventFiles
    from .network import Sequential
    from .spikes import SpikeTrains

    client = _check_client(client)
    if not isinstance(net, Sequential):
        raise TypeError(f"net must be an eventsnn.Sequential, got {type(net).__name__}")
    loader = read_event_file if loader is None else loader
    if not callable(loader):
        raise TypeError(f"loader must be callable (path -> SpikeTrains), got {type(loader).__name__}")
    if isinstance(inputs, EventFiles):
        items = list(inputs.paths)
        loader = EventFiles([], inputs.t_max, inputs.merge_polarity, inputs.time_scale).load_one
    elif isinstance(inputs, (list, tuple)):
        items = list(inputs)
    else:
        raise TypeError("inputs must be a list of SpikeTrains or file paths, or an EventFiles")
    for k, it in enumerate(items):
        if not isinstance(it, (SpikeTrains, str, os.PathLike)):
            raise TypeError(f"inputs[{k}] must be a SpikeTrains or a file path, got {type(it).__name__}")
        if isinstance(it, SpikeTrains):
            net._check_input(it, f"inputs[{k}]")
    # the arguments checked here, not in every task on the workers
    t_end = v.end_time("t_end", t_end)
    if "max_spikes" in kwargs:
        from ._constants import MAX_SPIKES_CAP

        kwargs["max_spikes"] = v.positive_int("max_spikes", kwargs["max_spikes"])
        if kwargs["max_spikes"] > MAX_SPIKES_CAP:
            raise ValueError(f"max_spikes must be <= {MAX_SPIKES_CAP} (2**40), got {kwargs['max_spikes']}")
    if kwargs.get("n_threads") is not None:
        kwargs["n_threads"] = v.positive_int("n_threads", kwargs["n_threads"])
    n = len(items)
    if n == 0:
        return []
    chunk_size = v.positive_int("chunk_size", chunk_size)
    kwargs = dict(kwargs, t_end=t_end)
    n_chunks = max(math.ceil(n / chunk_size), n_workers(client))
    model = _Scattered(client, net)
    attempt = [0]

    def submit():
        fresh = attempt[0] > 0
        attempt[0] += 1
        m = model.get(fresh)
        return [client.submit(_task_simulate, m, items[a:b], loader, kwargs, pure=False)
                for a, b in _chunks(n, n_chunks)]

    try:
        parts = _run(client, submit, v.positive_int("retries", retries, allow_zero=True), "simulation")
    finally:
        model.release()
    return [rec for part in parts for rec in part]


def map_items(client: Any, func: Callable[[Any, Any], Any], shared: Any, items: Iterable[Any],
              chunk_size: int = 16, retries: int = DEFAULT_RETRIES, what: str = "the work") -> List[Any]:
    """``[func(shared, item) for item in items]`` over the cluster, in the order of ``items``:
    ``shared`` (e.g. a network and its settings) is sent to every worker once, ``items``
    (e.g. file paths, read by ``func`` on the worker) go in chunks of at most ``chunk_size``,
    at least one chunk per worker. ``func`` must be importable on the workers (a module
    function) or picklable by value. A chunk lost with a worker is computed again."""
    client = _check_client(client)
    if not callable(func):
        raise TypeError(f"func must be callable, got {type(func).__name__}")
    items = list(items)
    n = len(items)
    if n == 0:
        return []
    chunk_size = v.positive_int("chunk_size", chunk_size)
    n_chunks = max(math.ceil(n / chunk_size), n_workers(client))
    value = _Scattered(client, shared)
    attempt = [0]

    def submit():
        fresh = attempt[0] > 0
        attempt[0] += 1
        f = value.get(fresh)
        return [client.submit(_task_map, func, f, items[a:b], pure=False) for a, b in _chunks(n, n_chunks)]

    try:
        parts = _run(client, submit, v.positive_int("retries", retries, allow_zero=True), what)
    finally:
        value.release()
    return [r for part in parts for r in part]
