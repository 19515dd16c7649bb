"""Data parallelism on a Dask LocalCluster (eventsnn.distributed).

The oracle of every cluster run is the single-process run with the same seed: the same
bits (predictions, accuracies, losses, weights), because shares are groups of the blocks one
process computes (per-sample parts for the event rule) and the blocks are added in the same
order. Without a cluster, the share decomposition of every rule is checked against
``loss_and_grads`` of the whole batch (to rounding).
"""
import json
import os
import signal
import socket
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventsnn as es
from eventsnn.datasets.event_data import EventFiles
from eventsnn.datasets.nmnist import EVENT_DTYPE, write_events
from eventsnn.learner import GradSums, SampleSeeds, get_learner_class
from eventsnn.train import Trainer

distributed = pytest.importorskip("distributed")
from eventsnn import distributed as ed  # noqa: E402

#: small, fast settings of every rule (digits-like inputs of 16 features)
RULES = {
    "event": dict(t_window=8.0, init_samples=8),
    "timing": dict(n_steps=8),
    "activation": dict(n_steps=8, encoder="poisson"),
    "antlr": dict(n_steps=8),
    "tssl": dict(n_steps=5),
    "na": dict(n_steps=5, preset="paper"),
    "asf": dict(n_steps=10, scale_every=1),
}


def _data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, 16))
    y = (X[:, :8].sum(axis=1) > X[:, 8:].sum(axis=1)).astype(np.int64) + 2 * (X[:, 0] > 0.5)
    return X, y


def _learner(rule, **extra):
    net = es.Sequential(es.Dense(16, 12), es.Dense(12, 4), rng=1)
    return get_learner_class(rule)(net, rng=1, **{**RULES[rule], **extra})


def _fit(rule, client, epochs=2, trainer=None, **extra):
    X, y = _data()
    L = _learner(rule, **extra)
    tr = Trainer(L, lr=0.02, batch_size=10, epochs=epochs, seed=3, client=client,
                 **(trainer or {}))
    hist = tr.fit(X, y)
    Xt, yt = _data(15, seed=9)
    ev = tr.evaluate(Xt, yt)
    return hist, ev, [layer.weight.copy() for layer in L.net.layers if layer.has_weight]


def _assert_same_run(a, b):
    (ha, ea, wa), (hb, eb, wb) = a, b
    assert ea["accuracy"] == eb["accuracy"]
    assert ea["spikes_per_sample"] == eb["spikes_per_sample"]
    assert len(ha) == len(hb)
    for ra, rb in zip(ha, hb):
        for key in ("train_accuracy", "spikes_per_sample", "loss", "grad_norm"):
            assert ra[key] == rb[key], key
    for x, z in zip(wa, wb):
        np.testing.assert_array_equal(z, x)


@pytest.fixture(scope="module")
def client():
    with ed.connect("local:2") as c:
        yield c


# ---- without a cluster: the share decomposition of every rule -------------------------------
@pytest.mark.parametrize("rule", sorted(RULES))
@settings(max_examples=4, deadline=None)
@given(cuts=st.lists(st.integers(1, 9), min_size=1, max_size=3, unique=True),
       seed=st.integers(0, 2**31 - 1))
def test_shares_sum_to_the_whole_batch(rule, cuts, seed):
    """GradSums of any contiguous split, combined in order and divided by n, equal
    loss_and_grads of the whole batch (per-sample keys: the same random draws)."""
    X, y = _data(10, seed=seed % 1000)
    seeds = SampleSeeds.draw(np.random.default_rng(seed), 10)
    whole = _learner(rule)
    loss, grads, preds, stats = whole.loss_and_grads(X, y, rng=seeds)
    parts = _learner(rule)
    parts.before_batch(X, y, seeds)
    bounds = [0] + sorted(cuts) + [10]
    shares = [parts.loss_and_grad_sums(X[a:b], y[a:b], seeds[a:b]) for a, b in zip(bounds, bounds[1:])]
    l2, g2, p2, s2 = parts.finish(GradSums.combine(shares))
    assert l2 == pytest.approx(loss, rel=1e-12, abs=1e-15)
    np.testing.assert_array_equal(p2, preds)
    assert s2["spikes_per_sample"] == pytest.approx(stats["spikes_per_sample"], rel=1e-12)
    assert len(g2) == len(grads)
    for a, b in zip(grads, g2):
        if a is None:
            assert b is None
        else:
            np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-13)


def test_sample_seeds_do_not_depend_on_the_split():
    X, _ = _data(6)
    seeds = SampleSeeds.draw(np.random.default_rng(0), 6)
    for rule in ("activation", "asf"):
        L = _learner(rule)
        whole = L.encode(X, seeds)
        halves = np.concatenate([L.encode(X[:2], seeds[:2]), L.encode(X[2:], seeds[2:])], axis=1)
        np.testing.assert_array_equal(whole, halves)
        assert whole.sum() > 0
    E = _learner("event", encoder="poisson")
    whole = E.encode(X, seeds)
    parts = E.encode(X[:4], seeds[:4]) + E.encode(X[4:], seeds[4:])
    for a, b in zip(whole, parts):
        np.testing.assert_array_equal(a.times, b.times)
        np.testing.assert_array_equal(a.neurons, b.neurons)
    with pytest.raises(ValueError, match="keys"):
        E.encode(X, seeds[:3])


def test_share_bounds_and_addresses():
    assert ed.share_bounds(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert ed.share_bounds(2, 4) == [(0, 1), (1, 2)]
    assert ed.parse_address("local:3") == ("local", 3)
    assert ed.parse_address("tcp://10.0.0.1:8786") == ("remote", "tcp://10.0.0.1:8786")
    for bad in ("local:0", "local:x", "local", ""):
        with pytest.raises(ValueError, match="local:N|address"):
            ed.parse_address(bad)


def _na_conv(**extra):
    """NA, default preset (rescale=True), through pooling and flatten layers."""
    net = es.Sequential(es.Conv2d((1, 4, 4), 2, 2, padding=1), es.AvgPool2d(2), es.Flatten(),
                        es.Dense(8, 6), es.Dense(6, 4), rng=2)
    for layer in net.layers:
        if layer.has_weight:
            layer.weight = layer.weight * 3.0
    return get_learner_class("na")(net, rng=1, n_steps=5, **extra)


@pytest.mark.parametrize("block_size", [1, 3, 4, None])
def test_na_rescale_in_blocks_is_the_whole_batch_rescaling(block_size):
    """NA's batch-wide rescaling in rounds: the blocks' partial sums of |delta| give the
    batch's mean of every layer, so the blocks' gradients equal the whole batch's (which
    tests/test_fidelity.py checks against the authors' code) to rounding, and one block
    (block_size=None) is the whole-batch computation to the bit."""
    X, y = _data(10)
    X = X.reshape(10, 1, 4, 4)
    seeds = SampleSeeds(np.arange(10))
    L = _na_conv()
    assert L.options["rescale"] and L.sum_rounds() and L.splittable()
    want = _na_conv().loss_and_grads(X, y, rng=seeds)
    got = Trainer(L, block_size=block_size)._local_step(X, y, seeds)
    assert got[0] == pytest.approx(want[0], rel=1e-14)
    np.testing.assert_array_equal(got[2], want[2])
    assert sum(np.abs(g).sum() for g in want[1] if g is not None) > 0
    for a, b in zip(want[1], got[1]):
        if a is None:
            assert b is None
        elif block_size is None:
            np.testing.assert_array_equal(b, a)
        else:
            np.testing.assert_allclose(b, a, rtol=1e-11, atol=1e-14)
    # a rescaled run differs from the plain one (the rounds do something)
    plain = _na_conv(rescale=False).loss_and_grads(X, y, rng=seeds)
    assert not np.allclose(plain[1][0], want[1][0])


def test_missing_dask_gives_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r'pip install "eventsnn\[distributed\]"'):
        ed.connect("local:1")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_is_one_line(capsys):
    address = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(ed.SchedulerUnreachable, match=address):
        ed.connect(address, timeout=1)
    from eventsnn.train_cli import main

    assert main(["--scheduler", address, "--scheduler-timeout", "1", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert address in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("address", ["tls://127.0.0.1:1", "inproc://nothing", "tls://", "foo://x:1"])
def test_other_schemes_fail_in_one_line_naming_the_address(address):
    # schemes the socket probe leaves to Dask (no TLS context, no such in-process address, no
    # port, an unknown scheme): one line, exit 2, no traceback. A fresh process each, as a
    # user runs it: Dask's event loop state from other tests in this process changes the path.
    import subprocess

    res = subprocess.run([sys.executable, "-m", "eventsnn.cli", "train", "--scheduler", address,
                          "--scheduler-timeout", "2", "--epochs", "1"],
                         capture_output=True, text=True, timeout=180)
    err = res.stderr.strip()
    assert res.returncode == 2, err
    assert f"--scheduler {address}" in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_refused_port_fails_at_the_socket_probe_without_a_dask_client(monkeypatch):
    import distributed

    def no_client(*args, **kwargs):
        raise AssertionError("a Dask Client was started for a refused port")

    monkeypatch.setattr(distributed, "Client", no_client)
    port = _free_port()
    for address in (f"tcp://127.0.0.1:{port}", f"127.0.0.1:{port}"):
        with pytest.raises(ed.SchedulerUnreachable, match="127.0.0.1"):
            ed.connect(address, timeout=30)


def test_event_files_read_on_access_equal_the_eager_load(tmp_path):
    paths = _recordings(tmp_path, 3)
    lazy = EventFiles(paths, t_max=50.0, time_scale=0.5)
    eager = lazy.load()
    assert len(lazy) == 3 and lazy.in_shape == eager.in_shape == (2, 34, 34)
    for k in range(3):
        np.testing.assert_array_equal(lazy[k].times, eager[k].times)
        np.testing.assert_array_equal(lazy[k].neurons, eager[k].neurons)
    assert isinstance(lazy[[2, 0]], EventFiles) and lazy[[2, 0]].paths == [paths[2], paths[0]]


def _recordings(folder, n, seed=0):
    rng = np.random.default_rng(seed)
    paths = []
    for k in range(n):
        m = int(rng.integers(30, 80))
        ev = np.zeros(m, dtype=EVENT_DTYPE)
        ev["t"] = np.sort(rng.integers(0, 60_000, m))
        ev["x"] = rng.integers(0, 34, m)
        ev["y"] = rng.integers(0, 34, m)
        ev["p"] = rng.integers(0, 2, m)
        path = str(folder / f"{k}.bin")
        write_events(path, ev)
        paths.append(path)
    return paths


# ---- on a LocalCluster of two processes -------------------------------------------------------
@pytest.mark.parametrize("rule", ["event", "tssl", "antlr", "na-code"])
def test_training_on_the_cluster_equals_one_process(client, rule):
    extra = {}
    if rule == "na-code":  # NA's default preset: rescaling in rounds between the workers
        rule, extra = "na", dict(preset="code")
    _assert_same_run(_fit(rule, None, **extra), _fit(rule, client, **extra))


@pytest.mark.parametrize("grad", ["exact", "code"])
def test_weight_standardisation_on_the_cluster_equals_one_process(client, grad):
    """Reparametrised training (the paper net's settings: AdamW, weight decay, clipping) on
    the workers: the gradients of the effective weights come back from the workers and go
    through the standardisation's chain rule on the client, as in one process."""
    from eventsnn.reparam import WeightStandardization

    def trainer():
        return dict(reparam=WeightStandardization(grad=grad), optimizer="adamw",
                    optimizer_options=dict(weight_decay=0.2), clip_norm=1.0)

    one = _fit("event", None, trainer=trainer())
    two = _fit("event", client, trainer=trainer())
    _assert_same_run(one, two)
    # and the reparametrisation did act: the weights differ from a run without it
    plain = _fit("event", None)
    assert not all(np.array_equal(a, b) for a, b in zip(one[2], plain[2]))


@pytest.mark.parametrize("rule", ["timing", "activation", "na", "asf"])
def test_one_step_on_the_cluster_equals_one_process(client, rule):
    """The cheaper check of the other rules: one mini-batch through TrainSession (state
    change on the client, shares on the workers) against loss_and_grads."""
    X, y = _data(10)
    seeds = SampleSeeds.draw(np.random.default_rng(5), 10)
    idx = np.arange(10)[::-1].copy()
    whole = _learner(rule).loss_and_grads(X[idx], y[idx], rng=seeds)
    want = Trainer(_learner(rule), block_size=3)._local_step(X[idx], y[idx], seeds)
    L = _learner(rule)
    session = ed.TrainSession(client, L, X, y, shares=2, block_size=3)
    try:
        got = session.loss_and_grads(idx, seeds)
    finally:
        session.close()
    assert got[0] == want[0] and got[0] == pytest.approx(whole[0], rel=1e-12)
    np.testing.assert_array_equal(got[2], want[2])
    for a, b, c in zip(want[1], got[1], whole[1]):
        if a is not None:
            np.testing.assert_array_equal(b, a)
            np.testing.assert_allclose(b, c, rtol=1e-10, atol=1e-13)
    if rule == "asf":
        ref = _learner(rule)
        ref.loss_and_grads(X[idx], y[idx], rng=seeds)
        for a, b in zip(ref.scales, L.scales):
            assert (a is None and b is None) or b == pytest.approx(a, rel=1e-12)


def test_simulate_and_evaluate_on_the_cluster(client, tmp_path):
    net = es.Sequential(es.Conv2d((2, 34, 34), 2, 5, stride=3), es.Flatten(), es.Dense(2 * 10 * 10, 3), rng=0)
    for layer in net.layers:
        if layer.has_weight:
            layer.weight = layer.weight * 8.0
    paths = _recordings(tmp_path, 4)
    samples = [EventFiles([p])[0] for p in paths]
    want = net.simulate(samples, t_end=60.0)
    got = net.simulate([samples[0], paths[1], samples[2], paths[3]], t_end=60.0, client=client)
    got_files = ed.simulate(net, EventFiles(paths), client, t_end=60.0, chunk_size=1)
    assert sum(len(r.spikes[-1]) for r in want) > 0
    for w, g, f in zip(want, got, got_files):
        for a, b, c in zip(w.spikes, g.spikes, f.spikes):
            np.testing.assert_array_equal(a.times, b.times)
            np.testing.assert_array_equal(a.neurons, b.neurons)
            np.testing.assert_array_equal(a.times, c.times)
    # evaluation of file samples: the workers read the files
    L = get_learner_class("event")(net, rng=0, t_window=60.0)
    y = np.array([0, 1, 2, 0])
    one = Trainer(L, seed=0).evaluate(EventFiles(paths), y)
    many = Trainer(L, seed=0, client=client).evaluate(EventFiles(paths), y)
    assert one == many
    # bad arguments are refused on the client, as without a cluster
    with pytest.raises(ValueError, match="t_end"):
        net.simulate(samples, t_end=-1.0, client=client)
    with pytest.raises(ValueError, match=r"inputs\[1\] has n_neurons"):
        net.simulate([samples[0], es.SpikeTrains([1.0], [0], 5)], client=client)
    with pytest.raises(ValueError, match="max_spikes"):
        net.simulate(samples, max_spikes=0, client=client)


# fault injection: the learner kills the worker process that computes share 1 of the second
# step, once (a marker file says it happened); run it by value on the workers
class _KillOnce:
    marker = None

    def loss_and_grad_sums(self, X, y, rng=None):
        try:
            worker = distributed.get_worker()
        except ValueError:
            worker = None
        if worker is not None and self.step == 1 and rng.keys[0] == self.victim_key \
                and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return super().loss_and_grad_sums(X, y, rng)

    def before_batch(self, X, y, rng=None, statistics=None):
        self.step = getattr(self, "step", -1) + 1
        super().before_batch(X, y, rng, statistics)


def test_a_worker_killed_during_fit_changes_nothing(client, tmp_path):
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    Tssl = get_learner_class("tssl")
    Killing = type("Killing", (_KillOnce, Tssl), {})
    X, y = _data()

    def run(c, kill):
        net = es.Sequential(es.Dense(16, 12), es.Dense(12, 4), rng=1)
        L = Killing(net, rng=1, **RULES["tssl"])
        L.marker = str(tmp_path / "killed")
        L.victim_key = None
        if kill:
            # the first key of the second share of the second step (the trainer's draws)
            learner = np.random.default_rng(np.random.SeedSequence(3).spawn(3)[2])
            for _ in range(2):
                keys = SampleSeeds.draw(learner, 10)
            L.victim_key = keys.keys[5]
        tr = Trainer(L, lr=0.02, batch_size=10, epochs=2, seed=3, client=c, block_size=5)
        return tr.fit(X, y), [layer.weight.copy() for layer in net.layers]

    (h1, w1), (h2, w2) = run(None, False), run(client, True)
    assert os.path.exists(tmp_path / "killed")
    assert [(r["train_accuracy"], r["loss"]) for r in h1] == [(r["train_accuracy"], r["loss"]) for r in h2]
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(b, a)


def test_cli_on_a_scheduler_address_gives_the_same_metrics_line(client, capsys):
    from eventsnn.train_cli import main

    args = ["--rule", "tssl", "--epochs", "1", "--limit", "60", "--batch", "20", "--arch", "64-10",
            "--opt", "n_steps=4", "--no-progress"]
    assert main(args) == 0
    one = json.loads(capsys.readouterr().out)
    assert main(args + ["--scheduler", client.scheduler.address]) == 0
    two = json.loads(capsys.readouterr().out)
    for m in (one, two):
        del m["test_seconds"], m["train_seconds"]
        for row in m["history"]:
            del row["seconds"]
    assert one == two


class _LoseOnce:
    """Raises the error Dask gives for a lost connection, once (a marker file says so)."""

    def loss_and_grad_sums(self, X, y, rng=None):
        from distributed.comm.core import CommClosedError

        if self.lose and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            raise CommClosedError("simulated: connection to the worker lost")
        return super().loss_and_grad_sums(X, y, rng)


def test_a_step_lost_on_the_way_is_computed_again(client, tmp_path):
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    Losing = type("Losing", (_LoseOnce, get_learner_class("event")), {})
    X, y = _data()
    out = []
    for lose in (False, True):
        net = es.Sequential(es.Dense(16, 12), es.Dense(12, 4), rng=1)
        L = Losing(net, rng=1, **RULES["event"])
        L.lose, L.marker = lose, str(tmp_path / "lost")
        session = ed.TrainSession(client, L, X, y, shares=2)
        try:
            out.append(session.loss_and_grads(np.arange(10), SampleSeeds(np.arange(10))))
        finally:
            session.close()
    assert os.path.exists(tmp_path / "lost")
    assert out[0][0] == out[1][0]
    for a, b in zip(out[0][1], out[1][1]):
        np.testing.assert_array_equal(a, b)


class _KillInRound:
    """Kills the worker process that computes the first round after the output layer, once
    (a marker file says it happened)."""

    def next_round(self, state, shared):
        try:
            worker = distributed.get_worker()
        except ValueError:
            worker = None
        if worker is not None and shared["m_out"] is not None and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return super().next_round(state, shared)


def test_a_worker_killed_between_rounds_changes_nothing(client, tmp_path):
    """NA's default preset on the cluster: the blocks' states between rounds live on the
    workers; a worker that dies in a round is replaced and its blocks recomputed (Dask's
    lineage of the held futures, else the whole step again): the single-process bits."""
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    Killing = type("Killing", (_KillInRound, get_learner_class("na")), {})
    X, y = _data(12)
    X = X.reshape(12, 1, 4, 4)
    seeds = SampleSeeds.draw(np.random.default_rng(7), 12)
    idx = np.arange(12)

    def make():
        L = _na_conv()
        K = Killing(L.net, rng=1, n_steps=5)
        K.marker = str(tmp_path / "killed")
        return K

    want = Trainer(make(), block_size=3)._local_step(X, y, seeds)
    assert not os.path.exists(tmp_path / "killed")
    session = ed.TrainSession(client, make(), X, y, shares=2, block_size=3)
    try:
        got = session.loss_and_grads(idx, seeds)
    finally:
        session.close()
    assert os.path.exists(tmp_path / "killed")
    assert got[0] == want[0]
    np.testing.assert_array_equal(got[2], want[2])
    for a, b in zip(want[1], got[1]):
        if a is not None:
            np.testing.assert_array_equal(b, a)


def _nmnist_folder(root):
    """A tiny N-MNIST folder of random recordings: Train/ and Test/ with 3 classes."""
    for split, n in (("Train", 3), ("Test", 6)):
        for k in range(n):
            folder = root / split / str(k % 3)
            folder.mkdir(parents=True, exist_ok=True)
            (path,) = _recordings(folder, 1, seed=10 * k + len(split))
            os.rename(path, folder / f"{split}{k}.bin")
    return root


def _strip_seconds(lines):
    out = [json.loads(line) for line in lines.strip().splitlines()]
    for m in out:
        m.pop("seconds", None)
    return out


def test_eval_and_simulate_cli_with_a_scheduler_give_the_same_output(client, tmp_path, capsys,
                                                                     monkeypatch):
    from eventsnn import eval_cli, simulate_cli

    data = _nmnist_folder(tmp_path / "nm")
    monkeypatch.chdir(tmp_path)
    net = es.Sequential(es.Conv2d((2, 34, 34), 2, 5, stride=3), es.Flatten(), es.Dense(2 * 10 * 10, 3), rng=0)
    for layer in net.layers:
        if layer.has_weight:
            layer.weight = layer.weight * 8.0
    net.save("m.npz", training={"rule": "event", "dataset": "nmnist", "data_dir": str(data),
                                "data": {"t_max": 50.0, "time_scale": 0.5}, "opt": {"t_window": 60.0},
                                "seed": 0})
    address = client.scheduler.address
    # eval: the model sent once, the workers read the test recordings
    assert eval_cli.main(["m.npz", "--batch", "2"]) == 0
    one = _strip_seconds(capsys.readouterr().out)
    assert eval_cli.main(["m.npz", "--batch", "2", "--scheduler", address]) == 0
    assert _strip_seconds(capsys.readouterr().out) == one
    assert one[0]["n_samples"] == 6 and one[0]["spikes_per_sample"] > 0
    # simulate: several files, one .npz and one JSON line each, read and run on the workers
    files = sorted(str(p) for p in (data / "Test").rglob("*.bin"))[:3]
    os.mkdir("a")
    os.mkdir("b")
    assert simulate_cli.main(["m.npz", *files, "--out-dir", "a"]) == 0
    local = _strip_seconds(capsys.readouterr().out)
    assert simulate_cli.main(["m.npz", *files, "--out-dir", "b", "--scheduler", address]) == 0
    remote = _strip_seconds(capsys.readouterr().out)
    assert len(local) == 3 and [m["events_file"] for m in local] == files
    for m in local + remote:
        m.pop("out")
    assert local == remote
    assert sum(sum(m["output_counts"]) for m in local) > 0
    for f in files:
        name = f"{os.path.splitext(os.path.basename(f))[0]}_spikes.npz"
        a, b = np.load(os.path.join("a", name)), np.load(os.path.join("b", name))
        for key in ("times", "neurons", "n_neurons", "counts"):
            np.testing.assert_array_equal(a[key], b[key])
    # oracle of one file: the library's simulation of the same recording
    want = net.simulate(EventFiles([files[1]], t_max=50.0, time_scale=0.5)[0]).output
    got = np.load(os.path.join("a", f"{os.path.splitext(os.path.basename(files[1]))[0]}_spikes.npz"))
    np.testing.assert_array_equal(got["times"], want.times)
    # several files refuse the single-file outputs
    assert simulate_cli.main(["m.npz", *files, "--out", "x.npz"]) == 2
    assert "single EVENTS" in capsys.readouterr().err


def test_eval_and_simulate_cli_with_an_unreachable_scheduler_exit_2(tmp_path, capsys, monkeypatch):
    from eventsnn import eval_cli, simulate_cli

    monkeypatch.chdir(tmp_path)
    es.Sequential(es.Dense(16, 4), rng=0).save("m.npz", training={"rule": "tssl", "dataset": "digits"})
    (path,) = _recordings(tmp_path, 1)
    address = f"tcp://127.0.0.1:{_free_port()}"
    for main, args in ((eval_cli.main, ["m.npz"]), (simulate_cli.main, ["m.npz", path])):
        assert main(args + ["--scheduler", address, "--scheduler-timeout", "1"]) == 2
        err = capsys.readouterr().err.strip()
        assert address in err and len(err.splitlines()) == 1, err


class _LoseAlways:
    def loss_and_grad_sums(self, X, y, rng=None):
        from distributed.comm.core import CommClosedError

        raise CommClosedError("simulated: connection to the worker lost")


def test_workers_lost_on_every_retry_end_the_run_with_cluster_lost(client):
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    Losing = type("Losing", (_LoseAlways, get_learner_class("tssl")), {})
    X, y = _data()
    net = es.Sequential(es.Dense(16, 12), es.Dense(12, 4), rng=1)
    session = ed.TrainSession(client, Losing(net, rng=1, **RULES["tssl"]), X, y, shares=2, retries=1)
    try:
        with pytest.raises(ed.ClusterLost, match="failed 2 times"):
            session.loss_and_grads(np.arange(10), SampleSeeds(np.arange(10)))
    finally:
        session.close()
    assert issubclass(ed.ClusterLost, OSError)  # the CLIs print one line and exit 2


def test_a_closed_client_raises_cluster_lost_naming_the_address():
    class Closed:
        status, scheduler, _eventsnn_address = "closed", None, "tcp://10.0.0.5:8786"

    with pytest.raises(ed.ClusterLost, match="tcp://10.0.0.5:8786"):
        ed._retry(Closed(), lambda fresh: 1, 3, "a training step")
