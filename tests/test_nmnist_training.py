"""Event datasets through the trainer and ``eventsnn train``: the "nmnist" loader (synthetic
.bs2 folders written here; the real subset is skipped when ../shared/data is absent), lists
of SpikeTrains in the Trainer, input shapes for the architecture grammar."""
import json
from pathlib import Path

import numpy as np
import pytest

from eventsnn.datasets.paths import data_root

import eventsnn as es
from eventsnn.datasets import DATASETS, load, nmnist
from eventsnn.datasets.event_data import EventSamples, events_to_spike_trains, load_nmnist
from eventsnn.event.learner import EventLearner
from eventsnn.train import Trainer, split_validation
from eventsnn.train_cli import input_shape, main, parse_arch

DATA = data_root() or Path("/nonexistent")
SUBSET = DATA / "nmnist_slayer_small"
needs_data = pytest.mark.skipif(not SUBSET.is_dir(), reason="shared N-MNIST subset absent")


def _recording(label, rng, n_events=40, t_span_us=30_000):
    """A tiny recording: class 0 flashes the top-left 6x6 block, class 1 the bottom-right
    block, at random times in [0, t_span_us) with random polarities."""
    ev = np.zeros(n_events, dtype=nmnist.EVENT_DTYPE)
    lo = 2 if label == 0 else 26
    ev["x"] = rng.integers(lo, lo + 6, n_events)
    ev["y"] = rng.integers(lo, lo + 6, n_events)
    ev["p"] = rng.integers(0, 2, n_events)
    ev["t"] = np.sort(rng.integers(0, t_span_us, n_events))
    return ev


def _write_folder(root, n_train=24, n_test=12, seed=0):
    """A SLAYER-layout folder: <id>.bs2 files and train.txt / test.txt label lists."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows = {"train": [], "test": []}
    sid = 1
    for split, n in (("train", n_train), ("test", n_test)):
        for k in range(n):
            label = k % 2
            nmnist.write_events(root / f"{sid}.bs2", _recording(label, rng))
            rows[split].append(f"{sid}\t{label}")
            sid += 1
    (root / "train.txt").write_text("#sample #class\n" + "\n".join(rows["train"]) + "\n")
    (root / "test.txt").write_text("#sample #class\n" + "\n".join(rows["test"]) + "\n")
    return root


# ---------------------------------------------------------------- loader
def test_loader_converts_events_exactly(tmp_path):
    ev = np.zeros(4, dtype=nmnist.EVENT_DTYPE)
    ev["t"] = [500, 1500, 250_000, 301_000]
    ev["x"] = [0, 33, 5, 7]
    ev["y"] = [1, 2, 33, 0]
    ev["p"] = [1, 0, 1, 0]
    (full,) = events_to_spike_trains([ev])
    np.testing.assert_allclose(full.times, [0.5, 1.5, 250.0, 301.0])
    np.testing.assert_array_equal(full.neurons, [1156 + 34 + 0, 2 * 34 + 33, 1156 + 33 * 34 + 5, 7])
    assert full.n_neurons == 2312 and np.all(full.values == 1.0)
    cut = events_to_spike_trains([ev], t_max=300.0, merge_polarity=True, time_scale=0.1)
    assert cut.in_shape == (1, 34, 34)
    np.testing.assert_allclose(cut[0].times, [0.05, 0.15, 25.0])
    np.testing.assert_array_equal(cut[0].neurons, [34, 2 * 34 + 33, 33 * 34 + 5])
    with pytest.raises(ValueError, match="time_scale"):
        events_to_spike_trains([ev], time_scale=0.0)
    with pytest.raises(TypeError, match="merge_polarity"):
        events_to_spike_trains([ev], merge_polarity="yes")


def test_nmnist_is_registered_and_reads_a_folder(tmp_path):
    root = _write_folder(tmp_path / "nm")
    assert "nmnist" in DATASETS
    X_tr, y_tr, X_te, y_te = load("nmnist", data_dir=str(root), t_max=20.0)
    assert isinstance(X_tr, EventSamples) and X_tr.in_shape == (2, 34, 34)
    assert len(X_tr) == 24 and len(X_te) == 12
    np.testing.assert_array_equal(y_tr, np.arange(24) % 2)
    assert y_tr.dtype == np.int64
    raw, _ = nmnist.load(root, "train")
    for st, ev in zip(X_tr, raw):
        assert len(st) == np.sum(ev["t"] <= 20_000) and st.times.max() <= 20.0
    assert X_tr[:5].in_shape == (2, 34, 34) and len(X_tr[:5]) == 5
    small = load_nmnist(root, limit=3, limit_test=2, merge_polarity=True)
    assert [len(x) for x in small[::2]] == [3, 2] and small[0].in_shape == (1, 34, 34)


def test_missing_folder_names_the_flag(tmp_path):
    with pytest.raises(ValueError, match="--data-dir"):
        load("nmnist")
    with pytest.raises(ValueError, match="--data-dir"):
        load("nmnist", data_dir=str(tmp_path / "nowhere"))


def test_event_samples_checks_its_content():
    st = es.SpikeTrains([1.0], [0], 8)
    with pytest.raises(ValueError, match="in_shape"):
        EventSamples([st], (2, 2, 3))
    with pytest.raises(TypeError, match="SpikeTrains"):
        EventSamples([np.zeros(8)], (2, 2, 2))


# ---------------------------------------------------------------- arch / shapes
def test_input_shape_and_shape_token():
    st = es.SpikeTrains([1.0], [0], 2312)
    assert input_shape(EventSamples([st], (2, 34, 34))) == (2, 34, 34)
    assert input_shape([st]) == (2312,)
    assert input_shape(np.zeros((5, 1, 8, 8))) == (1, 8, 8)
    layers = parse_arch("2x34x34-8C5s2p2-P2-10", (2312,), 10)
    assert layers[0].in_shape == (2, 34, 34) and layers[0].out_shape == (8, 17, 17)
    assert [type(l).__name__ for l in layers] == ["Conv2d", "AvgPool2d", "Flatten", "Dense"]
    assert layers[-1].n_in_decl == 8 * 8 * 8
    layers = parse_arch("8C5s2p2-P2-10", (2, 34, 34), 10)
    assert layers[0].out_shape == (8, 17, 17)
    with pytest.raises(ValueError, match="input shape"):
        parse_arch("1x34x34-8C5-10", (2312,), 10)
    with pytest.raises(ValueError, match="convolution needs"):
        parse_arch("8C5-10", (2312,), 10)


# ---------------------------------------------------------------- trainer on SpikeTrains
def _separable_spike_trains(n, seed):
    """Two classes of 16 input neurons: class c fires neurons 8c..8c+7, at random times."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = []
    for label in y:
        nrn = rng.integers(8 * label, 8 * label + 8, 12)
        X.append(es.SpikeTrains(rng.uniform(0, 5, 12), nrn, 16))
    return X, y


def test_trainer_trains_on_lists_of_spike_trains():
    X, y = _separable_spike_trains(40, 0)

    def fit():
        net = es.Sequential(es.Dense(16, 6), es.Dense(6, 2), rng=1)
        learner = EventLearner(net, rng=1, init_samples=16, n_threads=2)
        tr = Trainer(learner, lr=0.05, batch_size=8, epochs=4, seed=3, val_fraction=0.25)
        return tr, tr.fit(X, y)

    a, hist = fit()
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]
    assert all(0.0 <= h["val_accuracy"] <= 1.0 for h in hist)
    assert a.evaluate(X, y)["accuracy"] >= 0.9
    b, hist_b = fit()
    assert [h["loss"] for h in hist] == [h["loss"] for h in hist_b]
    for la, lb in zip(a.learner.net.layers, b.learner.net.layers):
        np.testing.assert_array_equal(la.weight, lb.weight)
    preds, stats = a.predict(X, batch_size=7)          # chunks of a list
    assert preds.shape == (40,) and stats["spikes_per_sample"] > 0


def test_validation_split_of_a_list_is_a_partition():
    X, y = _separable_spike_trains(20, 1)
    Xa, ya, Xv, yv = split_validation(X, y, 0.25, 5)
    assert isinstance(Xa, list) and len(Xa) == 15 and len(Xv) == 5
    ids = {id(s) for s in Xa} | {id(s) for s in Xv}
    assert ids == {id(s) for s in X}
    for xs, ys in ((Xa, ya), (Xv, yv)):     # labels follow their samples
        for s, label in zip(xs, ys):
            assert label == y[next(i for i, t in enumerate(X) if t is s)]


# ---------------------------------------------------------------- CLI
def test_cli_trains_on_an_event_folder(tmp_path, capsys):
    root = _write_folder(tmp_path / "nm", n_train=40, n_test=16)
    argv = ["--dataset", "nmnist", "--data-dir", str(root), "--data", "merge_polarity=true",
            "--data", "time_scale=0.2", "--arch", "1156-2", "--epochs", "1", "--batch", "4",
            "--lr", "0.1", "--opt", "t_window=8", "--opt", "n_threads=2", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    m = json.loads(out[0])
    assert m["dataset"] == "nmnist" and m["epochs"] == 1 and m["rule"] == "event"
    assert m["test_accuracy"] >= 0.75               # two classes: chance is 0.5
    assert m["spikes_per_sample"] > 0
    assert main(argv) == 0                          # same seed, same result
    again = json.loads(capsys.readouterr().out)
    assert again["test_accuracy"] == m["test_accuracy"] and again["final_loss"] == m["final_loss"]


def test_cli_conv_arch_gets_the_sensor_shape(tmp_path, capsys):
    root = _write_folder(tmp_path / "nm", n_train=8, n_test=4)
    code = main(["--dataset", "nmnist", "--data-dir", str(root), "--arch", "2C5s4-2",
                 "--epochs", "1", "--batch", "8", "--opt", "t_window=30", "--no-progress"])
    assert code == 0
    m = json.loads(capsys.readouterr().out)
    assert m["arch"] == "2C5s4-2" and 0.0 <= m["test_accuracy"] <= 1.0


def test_cli_dataset_errors(tmp_path, capsys):
    assert main(["--dataset", "nmnist", "--epochs", "1"]) == 2
    assert "--data-dir" in capsys.readouterr().err
    assert main(["--dataset", "nmnist", "--data-dir", str(tmp_path / "missing")]) == 2
    assert "--data-dir" in capsys.readouterr().err
    assert main(["--data-dir", str(tmp_path), "--epochs", "1"]) == 2      # digits has no folder
    assert "does not take --data-dir" in capsys.readouterr().err
    assert main(["--dataset", "nmnist", "--data-dir", str(tmp_path), "--data", "colour=red"]) == 2
    assert "colour" in capsys.readouterr().err


# ---------------------------------------------------------------- real data
@needs_data
def test_real_subset_loads_as_spike_trains():
    X_tr, y_tr, X_te, y_te = load_nmnist(SUBSET, t_max=300.0, limit=5, limit_test=3)
    assert X_tr.in_shape == (2, 34, 34) and list(y_tr) == [5, 0, 4, 1, 9]
    assert list(y_te) == [7, 2, 1]
    raw, _ = nmnist.load(SUBSET, "train", limit=5)
    for st, ev in zip(X_tr, raw):
        assert len(st) == np.sum(ev["t"] <= 300_000) > 1000
        assert st.times.max() <= 300.0


@needs_data
def test_cli_runs_on_the_real_subset(capsys):
    code = main(["--dataset", "nmnist", "--data-dir", str(SUBSET), "--data", "limit=16",
                 "--data", "limit_test=8", "--data", "time_scale=0.1", "--data", "t_max=300",
                 "--arch", "2x34x34-4C5s4-10", "--epochs", "1", "--batch", "16",
                 "--opt", "t_window=30", "--opt", "init_samples=8", "--no-progress"])
    assert code == 0
    m = json.loads(capsys.readouterr().out)
    assert m["epochs"] == 1 and 0.0 <= m["test_accuracy"] <= 1.0 and m["spikes_per_sample"] > 0
