"""Epoch checkpoints: a run killed after an epoch and resumed ends exactly as an
uninterrupted run (weights, history), for the event rule and dense rules with state."""
import json

import numpy as np
import pytest

import eventsnn as es
from eventsnn.learner import get_learner_class
from eventsnn.train import Trainer


class Killed(Exception):
    pass


def _data(n=48, seed=0):
    gen = np.random.default_rng(seed)
    y = gen.integers(0, 3, n)
    X = gen.random((n, 1, 4, 4)) * 0.5
    X[:, 0, 0, :3] += np.eye(3)[y] * 0.5
    return np.clip(X, 0, 1), y


def _trainer(rule, tmp_path, opts, **kw):
    net = es.Sequential(es.Dense(16, 12), es.Dense(12, 3), rng=1)
    learner = get_learner_class(rule)(net, rng=2, **opts)
    return Trainer(learner, lr=0.01, batch_size=16, epochs=4, seed=3, val_fraction=0.25,
                   schedule="cosine", checkpoint=tmp_path / "c.npz", log=tmp_path / "log.jsonl", **kw)


def _strip(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


@pytest.mark.parametrize("rule,opts", [
    ("event", {"encoder": "poisson", "t_window": 8.0}),
    ("activation", {}),
    ("asf", {"n_steps": 6}),
])
def test_resume_equals_uninterrupted_run(rule, opts, tmp_path):
    X, y = _data()
    (tmp_path / "a").mkdir()
    full = _trainer(rule, tmp_path / "a", opts)
    h_full = full.fit(X, y)

    (tmp_path / "b").mkdir()

    def kill(row):
        if row["epoch"] == 2:
            raise Killed

    first = _trainer(rule, tmp_path / "b", opts, epoch_callback=kill)
    with pytest.raises(Killed):
        first.fit(X, y)
    logged = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in logged] == [1, 2]          # the killed run kept its history
    second = _trainer(rule, tmp_path / "b", opts)         # a new process: fresh objects
    h_res = second.fit(X, y, resume=True)
    assert _strip(h_res) == _strip(h_full)
    for a, b in zip(full.learner.net.layers, second.learner.net.layers):
        np.testing.assert_array_equal(a.weight, b.weight)
    logged = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert _strip(logged) == _strip(json.loads(json.dumps(h_full)))


def test_resume_needs_a_checkpoint_path_and_a_checkpoint_file(tmp_path):
    X, y = _data()
    net = es.Sequential(es.Dense(16, 3), rng=0)
    t = Trainer(get_learner_class("activation")(net), epochs=1)
    with pytest.raises(ValueError, match="checkpoint"):
        t.fit(X, y, resume=True)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    t = Trainer(get_learner_class("activation")(net), epochs=1, checkpoint=bad)
    with pytest.raises(ValueError, match="bad.npz"):
        t.fit(X, y, resume=True)


def test_checkpoint_of_another_rule_is_refused(tmp_path):
    X, y = _data()
    net = es.Sequential(es.Dense(16, 3), rng=0)
    Trainer(get_learner_class("activation")(net), epochs=1, checkpoint=tmp_path / "c.npz").fit(X, y)
    net2 = es.Sequential(es.Dense(16, 3), rng=0)
    t = Trainer(get_learner_class("antlr")(net2), epochs=2, checkpoint=tmp_path / "c.npz")
    with pytest.raises(ValueError, match="rule 'activation'"):
        t.fit(X, y, resume=True)


def _rewrite_history_lr(path, rates):
    """The checkpoint at path with the history's learning rates replaced by rates."""
    from eventsnn import checkpoint as ck
    meta, arrays = ck.load(str(path))
    for row, lr in zip(meta["history"], rates):
        row["lr"] = lr
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _killed_after_two(tmp_path, **kw):
    def kill(row):
        if row["epoch"] == 2:
            raise Killed

    with pytest.raises(Killed):
        _trainer("activation", tmp_path, {}, epoch_callback=kill, **kw).fit(*_data())


def test_resume_at_the_same_rates_does_not_warn(tmp_path):
    _killed_after_two(tmp_path)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _trainer("activation", tmp_path, {}).fit(*_data(), resume=True)


def test_resume_of_a_checkpoint_at_other_rates_warns(tmp_path):
    # a checkpoint of the cosine schedule before its fix: epoch e of E at cos(pi (e-1)/(E-1))
    _killed_after_two(tmp_path)
    old = [0.01 * 0.5 * (1 + np.cos(np.pi * (e - 1) / 3)) for e in (1, 2)]
    assert old[1] != pytest.approx(0.01 * 0.5 * (1 + np.cos(np.pi / 4)))
    _rewrite_history_lr(tmp_path / "c.npz", old)
    with pytest.warns(UserWarning, match=r"epochs 1-2 ran at learning rates 0\.01, 0\.0075, but "
                                         r"this trainer's schedule gives them 0\.01, 0\.008536"):
        h = _trainer("activation", tmp_path, {}).fit(*_data(), resume=True)
    assert [r["epoch"] for r in h] == [1, 2, 3, 4]
    # and another base rate than the checkpoint's
    (tmp_path / "b").mkdir()
    _killed_after_two(tmp_path / "b")
    t = _trainer("activation", tmp_path / "b", {})
    t.base_lr = 0.02
    with pytest.warns(UserWarning, match="learning rates"):
        t.fit(*_data(), resume=True)
