"""Trainer, EventLearner, encoders, datasets and the ``eventsnn train`` CLI."""
import json

import numpy as np
import pytest

import eventsnn as es
from eventsnn import encode, losses
from eventsnn.event.learner import EventLearner
from eventsnn.learner import RULES, Learner, get_learner_class
from eventsnn.train import Trainer, split_validation
from eventsnn.train_cli import main, parse_arch, resolve_config


class SoftmaxLearner(Learner):
    """A non-spiking learner (softmax regression on the first Dense layer): the trainer
    must drive any Learner through the contract alone."""

    name = "softmax"

    def __init__(self, net, rng=None):
        self.net = net

    def _probs(self, X):
        z = np.asarray(X).reshape(len(X), -1) @ self.net.layers[0].weight.T
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def loss_and_grads(self, X, y, rng=None):
        p = self._probs(X)
        n = len(y)
        loss = -np.mean(np.log(p[np.arange(n), y]))
        d = p.copy()
        d[np.arange(n), y] -= 1
        grad = d.T @ np.asarray(X).reshape(n, -1) / n
        return loss, [grad], p.argmax(axis=1), {"spikes_per_sample": 0.0}

    def predict(self, X):
        return self._probs(X).argmax(axis=1), {"spikes_per_sample": 0.0}


def _blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = np.array([[0.9, 0.1, 0.1, 0.5], [0.1, 0.9, 0.1, 0.5], [0.1, 0.1, 0.9, 0.5]])
    X = np.clip(centres[y] + rng.normal(0, 0.05, (n, 4)), 0, 1)
    return X, y


def test_trainer_drives_any_learner():
    X, y = _blobs()
    net = es.Sequential(es.Dense(4, 3), rng=0)
    net.layers[0].weight = np.zeros((3, 4))
    tr = Trainer(SoftmaxLearner(net), optimizer="sgd", lr=1.0, batch_size=16, epochs=15, seed=1)
    hist = tr.fit(X, y)
    assert [h["epoch"] for h in hist] == list(range(1, 16))
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert tr.evaluate(X, y)["accuracy"] > 0.95


def _digits_subset(n_train=160, n_test=60):
    from eventsnn.datasets import load

    X_tr, y_tr, X_te, y_te = load("digits")
    return X_tr[:n_train], y_tr[:n_train], X_te[:n_test], y_te[:n_test]


def _event_trainer(seed=0, epochs=3, **kw):
    net = es.Sequential(es.Dense(64, 40), es.Dense(40, 10), rng=seed)
    learner = EventLearner(net, rng=seed)
    return Trainer(learner, lr=0.01, batch_size=32, epochs=epochs, seed=seed, **kw)


def test_event_learner_learns_and_is_deterministic():
    X, y, Xt, yt = _digits_subset()
    a = _event_trainer(epochs=6)
    hist = a.fit(X, y)
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert hist[-1]["train_accuracy"] > 0.4          # chance is 0.1
    assert hist[-1]["spikes_per_sample"] > 0
    b = _event_trainer(epochs=6)
    b.fit(X, y)
    for la, lb in zip(a.learner.net.layers, b.learner.net.layers):
        np.testing.assert_array_equal(la.weight, lb.weight)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]


def test_event_learner_grads_match_backward_mean():
    X, y, _, _ = _digits_subset(8, 1)
    net = es.Sequential(es.Dense(64, 20), es.Dense(20, 10), rng=0)
    learner = EventLearner(net, init=False, supervisory=False, n_threads=2)
    for layer in net.layers:
        layer.weight = layer.weight * 4
    loss, grads, preds, stats = learner.loss_and_grads(X, y)
    recs = net.simulate(learner.encode(X), t_end=learner.options["t_window"])
    total = [np.zeros_like(l.weight) for l in net.layers]
    for rec, label in zip(recs, y):
        _, g = losses.count_loss(rec.output, int(label), learner.options["t_window"], 4.0, 0.0)
        gw = net.backward(rec, g)
        for t, w in zip(total, gw.weights):
            t += w
    for a, b in zip(grads, total):
        np.testing.assert_allclose(a, b / len(y), rtol=1e-12, atol=1e-15)
    assert preds.shape == (8,) and stats["spikes_per_sample"] > 0


def test_validation_split_and_history():
    X, y, _, _ = _digits_subset(100, 1)
    tr = _event_trainer(epochs=1, val_fraction=0.2)
    hist = tr.fit(X, y)
    assert 0.0 <= hist[0]["val_accuracy"] <= 1.0
    Xa, ya, Xv, yv = split_validation(X, y, 0.2, 0)
    assert len(yv) == 20 and len(ya) == 80
    assert not set(map(tuple, Xa.reshape(80, -1))) & set(map(tuple, Xv.reshape(20, -1)))


def test_trainer_never_prints(capsys):
    X, y = _blobs(40)
    net = es.Sequential(es.Dense(4, 3), rng=0)
    Trainer(SoftmaxLearner(net), epochs=2, progress=False).fit(X, y)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


class _StubBar:
    """Stands in for tqdm.auto.tqdm: records what the trainer does with its bar."""

    made = []

    def __init__(self, total=None, **kwargs):
        self.total, self.kwargs = total, kwargs
        self.updates, self.postfix, self.closed = [], [], False
        _StubBar.made.append(self)

    def update(self, n=1):
        assert not self.closed
        self.updates.append(n)

    def set_postfix(self, **kwargs):
        self.postfix.append(kwargs)

    def close(self):
        self.closed = True


@pytest.fixture
def stub_tqdm(monkeypatch):
    """A fake ``tqdm`` package (tqdm is not a dependency) in sys.modules."""
    import sys
    import types

    pkg, auto = types.ModuleType("tqdm"), types.ModuleType("tqdm.auto")
    auto.tqdm = _StubBar
    pkg.auto = auto
    monkeypatch.setitem(sys.modules, "tqdm", pkg)
    monkeypatch.setitem(sys.modules, "tqdm.auto", auto)
    monkeypatch.setattr(_StubBar, "made", [])
    return _StubBar


def test_progress_bar_one_update_per_batch_then_closed(stub_tqdm, capsys):
    X, y = _blobs(40)                      # batch 16: 3 batches per epoch
    net = es.Sequential(es.Dense(4, 3), rng=0)
    Trainer(SoftmaxLearner(net), epochs=2, batch_size=16, progress=True).fit(X, y)
    (bar,) = stub_tqdm.made
    assert bar.total == 6 and bar.updates == [1] * 6 and bar.closed
    assert [p["epoch"] for p in bar.postfix] == [1, 1, 1, 2, 2, 2]
    # progress=False: no bar is made and nothing is printed
    Trainer(SoftmaxLearner(net), epochs=2, batch_size=16, progress=False).fit(X, y)
    assert len(stub_tqdm.made) == 1
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_progress_bar_is_closed_when_training_fails(stub_tqdm):
    class Diverging(SoftmaxLearner):
        def loss_and_grads(self, X, y, rng=None):
            loss, grads, preds, stats = super().loss_and_grads(X, y, rng)
            return float("nan"), grads, preds, stats

    X, y = _blobs(40)
    net = es.Sequential(es.Dense(4, 3), rng=0)
    with pytest.raises(FloatingPointError):
        Trainer(Diverging(net), epochs=2, batch_size=16, progress=True).fit(X, y)
    (bar,) = stub_tqdm.made
    assert bar.closed and bar.updates == []


def test_trainer_errors():
    with pytest.raises(TypeError, match="learner"):
        Trainer(object())
    net = es.Sequential(es.Dense(4, 3))
    with pytest.raises(ValueError, match="batch_size"):
        Trainer(SoftmaxLearner(net), batch_size=0)
    with pytest.raises(ValueError, match="val_fraction"):
        Trainer(SoftmaxLearner(net), val_fraction=1.0)
    with pytest.raises(ValueError, match="optimizer"):
        Trainer(SoftmaxLearner(net), optimizer="lbfgs")
    with pytest.raises(ValueError, match="y"):
        Trainer(SoftmaxLearner(net)).fit(np.zeros((3, 4)), np.zeros(2, int))


def test_event_learner_options_are_checked():
    net = es.Sequential(es.Dense(4, 3))
    with pytest.raises(ValueError, match="unknown option"):
        EventLearner(net, colour="red")
    with pytest.raises(ValueError, match="kernel"):
        EventLearner(net, kernel="gauss")
    with pytest.raises(ValueError, match="reset"):
        EventLearner(net, reset="soft")
    mem = EventLearner(es.Sequential(es.Dense(4, 3), neuron=es.SRM(reset="membrane")))
    assert mem.net.neuron.reset == "membrane"       # membrane-reset nets are accepted
    switched = EventLearner(es.Sequential(es.Dense(4, 3), neuron=es.SRM(t_ref=0.5)),
                            reset="membrane")
    assert switched.net.neuron == es.SRM(reset="membrane", t_ref=0.5)
    with pytest.raises(ValueError, match="LIF"):
        EventLearner(es.Sequential(es.Dense(4, 3), neuron=es.LIF()), reset="membrane")
    assert get_learner_class("event") is EventLearner and "event" in RULES


# ---------------------------------------------------------------- encoders
def test_current_encoder():
    X = np.array([[[0.0, 0.5], [1.0, 0.25]]])
    (st,) = encode.current(X, times=[0.0, 2.0])
    assert st.n_neurons == 4
    np.testing.assert_array_equal(st.times, [0, 0, 0, 2, 2, 2])
    np.testing.assert_array_equal(st.neurons, [1, 2, 3, 1, 2, 3])
    np.testing.assert_array_equal(st.values, [0.5, 1.0, 0.25, 0.5, 1.0, 0.25])
    with pytest.raises(ValueError, match="X"):
        encode.current(np.array([[2.0]]))


def test_latency_and_poisson_encoders():
    (st,) = encode.latency(np.array([[1.0, 0.5, 0.0]]), t_max=10.0)
    np.testing.assert_array_equal(st.times, [0.0, 5.0])
    a = encode.poisson(np.full((2, 50), 0.5), t_end=100.0, max_rate=100.0, rng=3)
    b = encode.poisson(np.full((2, 50), 0.5), t_end=100.0, max_rate=100.0, rng=3)
    assert a == b
    n = sum(len(s) for s in a)
    assert abs(n - 2 * 50 * 5.0) < 4 * np.sqrt(500)   # rate 50 Hz over 0.1 s: 5 per feature
    assert all(np.all((s.times >= 0) & (s.times < 100.0)) for s in a)


def test_digits_split_is_fixed():
    from eventsnn.datasets import DATASETS, load

    a = load("digits")
    b = load("digits")
    assert "digits" in DATASETS
    assert a[0].shape == (1437, 1, 8, 8) and a[2].shape == (360, 1, 8, 8)
    assert a[0].min() >= 0 and a[0].max() <= 1
    for x, z in zip(a, b):
        np.testing.assert_array_equal(x, z)
    assert set(np.bincount(a[3])) <= set(range(34, 38))     # stratified


# ---------------------------------------------------------------- CLI
def test_parse_arch():
    layers = parse_arch("64-100-10", (1, 8, 8), 10)
    assert [repr(l) for l in layers] == ["Dense(64, 100)", "Dense(100, 10)"]
    layers = parse_arch("8C3-P2-10", (1, 8, 8), 10)
    kinds = [type(l).__name__ for l in layers]
    assert kinds == ["Conv2d", "AvgPool2d", "Flatten", "Dense"]
    assert layers[1].adjusted and layers[3].n_in_decl == 8 * 3 * 3
    layers = parse_arch("4C3p1-MP2-AP2-10", (1, 8, 8), 10)
    assert [type(l).__name__ for l in layers] == ["Conv2d", "MaxPool2d", "AvgPool2d", "Flatten", "Dense"]
    assert layers[0].padding == 1 and not layers[2].adjusted
    net = es.Sequential(*parse_arch("6C3s2-10", (1, 8, 8), 10))
    assert net.layers[0].out_shape == (6, 3, 3)
    for bad, match in (("32-10", "input size"), ("64-100-5", "classes"), ("8C3-P2", "Dense"),
                       ("64-X-10", "not understood"), ("", "non-empty")):
        with pytest.raises(ValueError, match=match):
            parse_arch(bad, (1, 8, 8), 10)


def test_cli_config_file_and_flags(tmp_path):
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps({"arch": "64-30-10", "epochs": 3, "opt": {"kernel": "depsilon"}}))
    cfg = resolve_config(["--config", str(cfg_file), "--epochs", "2", "--opt", "desired=3",
                          "--opt", "clamp=null", "--neuron", "tau_m=6"])
    assert cfg["arch"] == "64-30-10" and cfg["epochs"] == 2
    assert cfg["opt"] == {"kernel": "depsilon", "desired": 3, "clamp": None}
    assert cfg["neuron"] == {"tau_m": 6}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"epochz": 3}))
    with pytest.raises(ValueError, match="epochz"):
        resolve_config(["--config", str(bad)])


def test_cli_prints_one_json_line(capsys, tmp_path):
    model = tmp_path / "m.npz"
    code = main(["--arch", "64-20-10", "--epochs", "1", "--limit", "64", "--batch", "32",
                 "--no-progress", "--save", str(model), "--opt", "desired=3"])
    assert code == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    metrics = json.loads(out[0])
    for key in ("test_accuracy", "train_seconds", "epochs", "spikes_per_sample"):
        assert key in metrics
    assert metrics["epochs"] == 1 and 0 <= metrics["test_accuracy"] <= 1
    assert es.Sequential.load(model).layers[0].weight.shape == (20, 64)


def test_cli_errors(capsys):
    assert main(["--arch", "64-100-7", "--epochs", "1"]) == 2
    assert "classes" in capsys.readouterr().err
    assert main(["--opt", "colour=red", "--epochs", "1", "--limit", "8"]) == 2
    assert "unknown option" in capsys.readouterr().err


def test_fit_refuses_labels_that_are_not_classes_of_the_network():
    net = es.Sequential(es.Dense(4, 3), rng=0)
    trainer = Trainer(EventLearner(net, init=False), epochs=1)
    X = np.full((3, 4), 0.5)
    with pytest.raises(TypeError, match="y must hold integers"):
        trainer.fit(X, np.array([1.7, 0.0, 2.0]))      # was silently trained as label 1
    with pytest.raises(ValueError, match=r"y must lie in \[0, 3\)"):
        trainer.fit(X, np.array([0, 1, 3]))
    with pytest.raises(ValueError, match=r"y must lie in \[0, 3\)"):
        trainer.fit(X, np.array([0, -1, 2]))
    with pytest.raises(ValueError, match="1-D"):
        trainer.fit(X, 1.7)
    with pytest.raises(ValueError, match="y_val"):
        trainer.fit(X, [0, 1, 2], X_val=X, y_val=[0, 1])
    assert trainer.history == []


def test_parse_arch_shape_token_then_dense_builds_a_network():
    """'2x34x34-10' (an N-MNIST-shaped input straight into a Dense layer) used to start the
    network with Flatten, which Sequential refuses."""
    layers = parse_arch("2x34x34-10", (2312,), 10)
    assert [type(layer).__name__ for layer in layers] == ["Dense"]
    net = es.Sequential(*layers)
    assert net.n_in == 2312 and net.n_out == 10
    layers = parse_arch("4C3-100-10", (1, 8, 8), 10)      # Flatten stays between conv and Dense
    assert [type(layer).__name__ for layer in layers] == ["Conv2d", "Flatten", "Dense", "Dense"]


@pytest.mark.parametrize("epochs", [1, 2, 3, 7, 30])
@pytest.mark.parametrize("floor", [0.0, 0.1])
def test_cosine_schedule_is_torchs_cosine_annealing_stepped_per_epoch(epochs, floor):
    # oracle: torch's documented closed form of CosineAnnealingLR(T_max=epochs), with
    # eta_min = floor * lr, at its step t = epoch - 1
    lr = 0.02
    tr = Trainer(SoftmaxLearner(es.Sequential(es.Dense(4, 3), rng=0)), optimizer="sgd", lr=lr,
                 epochs=epochs, schedule="cosine", min_lr_fraction=floor)
    for e in range(1, epochs + 1):
        eta_min = floor * lr
        want = eta_min + (lr - eta_min) * (1 + np.cos(np.pi * (e - 1) / epochs)) / 2
        assert tr.lr_at(e) == pytest.approx(want, rel=1e-12)
    assert tr.lr_at(1) == lr
    assert tr.lr_at(epochs) > floor * lr          # the last epoch still learns


def test_cosine_schedule_last_epoch_moves_the_weights():
    # with the default floor 0 the last epoch once ran at lr 0 and left the weights as they were
    X, y = _blobs()
    net = es.Sequential(es.Dense(4, 3), rng=0)
    net.layers[0].weight = np.zeros((3, 4))
    seen = []
    tr = Trainer(SoftmaxLearner(net), optimizer="sgd", lr=0.5, batch_size=16, epochs=2, seed=1,
                 schedule="cosine", epoch_callback=lambda row: seen.append(net.layers[0].weight.copy()))
    tr.fit(X, y)
    assert len(seen) == 2
    assert np.abs(seen[1] - seen[0]).max() > 1e-3
