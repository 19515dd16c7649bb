"""The eventsnn command: dispatch, --version, validated flags, help texts, train --save
then eval / simulate without repeated flags, --log/--resume, one-line errors."""
import json
from pathlib import Path

import numpy as np
import pytest

import eventsnn as es
import eventsnn.io  # noqa: F401
from eventsnn import cli, eval_cli, simulate_cli, train_cli
from eventsnn.datasets.paths import data_root

DATA = data_root() or Path("/nonexistent")
SMALL = ["--limit", "96", "--epochs", "2", "--batch", "32", "--schedule", "constant",
         "--no-progress"]


def test_version_and_bare_command(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args(["--version"])
    assert exc.value.code == 0 and es.__version__ in capsys.readouterr().out
    assert cli.main(["--version"]) == 0
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert "usage: eventsnn" in err and "simulate" in err and "eval" in err
    assert cli.main(["nope"]) == 2
    assert cli.main(["--help"]) == 0


@pytest.mark.parametrize("argv", [
    ["demo", "--duration", "-5"], ["demo", "--duration", "nan"], ["demo", "--seed", "1.5"],
    ["train", "--epochs", "-1"], ["train", "--batch", "0"], ["train", "--lr", "0"],
    ["train", "--lr", "inf"], ["train", "--val", "1"], ["train", "--clip", "-1"],
    ["train", "--weight-decay", "-0.1"], ["train", "--seed", "-2"], ["train", "--limit", "0"],
    ["train", "--threads", "0"], ["eval", "m.npz", "--limit", "0"], ["eval", "m.npz", "--batch", "x"],
    ["simulate", "m.npz", "e.bin", "--t-max", "-1"], ["simulate", "m.npz", "e.bin", "--time-scale", "0"],
    ["simulate", "m.npz", "e.bin", "--t-end", "0"],
])
def test_numeric_flags_are_validated(argv, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "error: argument" in err and argv[-2] in err


@pytest.mark.parametrize("parser", [train_cli.build_parser, eval_cli.build_parser,
                                    simulate_cli.build_parser])
def test_every_flag_has_help_with_its_default(parser):
    for action in parser()._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, action.option_strings
            if action.type is not None or action.choices:
                assert "default" in action.help, action.option_strings


def test_train_save_then_eval_needs_no_repeated_flags(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--rule", "activation", "--opt", "n_steps=6", "--arch", "64-20-10",
            "--save", "m.npz"] + SMALL
    assert cli.main(argv) == 0
    metrics = json.loads(capsys.readouterr().out)
    net = es.Sequential.load("m.npz")
    assert net.training["rule"] == "activation" and net.training["opt"] == {"n_steps": 6}
    assert cli.main(["eval", "m.npz"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rule"] == "activation" and out["n_samples"] == 360
    assert out["accuracy"] == metrics["test_accuracy"]


def test_log_checkpoint_and_resume_equal_an_uninterrupted_run(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--epochs", "3", "--save", "full.npz"] + SMALL[:2] + SMALL[4:]) == 0
    full = json.loads(capsys.readouterr().out)
    # a run stopped after 2 epochs (as if killed), then resumed to 3
    assert cli.main(["train", "--log", "run.jsonl", "--save", "part.npz"] + SMALL) == 0
    capsys.readouterr()
    assert len(Path("run.jsonl").read_text().splitlines()) == 2
    assert Path("run.jsonl.ckpt.npz").exists()
    assert cli.main(["train", "--epochs", "3", "--log", "run.jsonl", "--resume",
                     "--save", "resumed.npz"] + SMALL[:2] + SMALL[4:]) == 0
    resumed = json.loads(capsys.readouterr().out)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(resumed["history"]) == strip(full["history"])
    assert resumed["test_accuracy"] == full["test_accuracy"]
    a, b = es.Sequential.load("full.npz"), es.Sequential.load("resumed.npz")
    for la, lb in zip(a.layers, b.layers):
        np.testing.assert_array_equal(la.weight, lb.weight)
    assert len(Path("run.jsonl").read_text().splitlines()) == 3


def test_epoch_lines_on_stderr_when_not_a_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--limit", "64", "--epochs", "2"]) == 0
    err = capsys.readouterr().err
    assert "epoch 1/2: loss" in err and "epoch 2/2: loss" in err


def test_missing_scikit_learn_is_one_line(monkeypatch, capsys):
    import builtins
    real = builtins.__import__

    def no_sklearn(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError("No module named 'sklearn'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    assert cli.main(["train", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install" in err and "scikit-learn" in err


@pytest.mark.skipif(not (DATA / "tonic_test_samples").is_dir(), reason="shared data absent")
def test_simulate_writes_spikes_csv_and_raster(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    net = es.Sequential(es.Conv2d((2, 34, 34), 4, 5, stride=2), es.MaxPool2d(3), es.Flatten(),
                        es.Dense(100, 10), rng=0)
    for layer in net.layers:
        if layer.has_weight:
            layer.weight = np.abs(layer.weight) * 2
    net.save("m.npz", training={"data": {"t_max": 100, "time_scale": 0.1}})
    src = DATA / "tonic_test_samples" / "sample_nmnist.bin"
    assert cli.main(["simulate", "m.npz", str(src), "--csv", "s.csv", "--raster", "r.png"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["file_events"] == 4325 and summary["after_t_max"] == 100
    # oracle: the same simulation through the library
    x = es.io.read(src).to_spike_trains(t_max=100, time_scale=0.1)
    want = net.simulate(x).output
    got = np.load("sample_nmnist_spikes.npz")
    np.testing.assert_array_equal(got["times"], want.times)
    np.testing.assert_array_equal(got["neurons"], want.neurons)
    rows = Path("s.csv").read_text().splitlines()
    assert rows[0] == "time_ms,neuron" and len(rows) == len(want) + 1
    if len(want):
        t, i = rows[1].split(",")
        assert float(t) == want.times[0] and int(i) == want.neurons[0]
    assert Path("r.png").stat().st_size > 1000
    # a model of another input size: a clear error, no traceback
    assert cli.main(["simulate", "m.npz", str(DATA / "dvs_gesture_slayer_clips" / "1.bs2")]) == 2
    assert "128 x 128" in capsys.readouterr().err


@pytest.mark.parametrize("text, msg", [('{"seed": 1.9}', "seed must be an integer"),
                                       ('{"seed": true}', "seed must be an integer"),
                                       ('{"epochs": "3"}', "epochs must be an integer"),
                                       ('{"progress": "no"}', "progress must be true or false"),
                                       ('{"lr": "0.1"}', "lr must be a number"),
                                       ('{"opt": [1]}', "opt must be an object")])
def test_config_values_of_the_wrong_type_exit_2_naming_the_key(tmp_path, capsys, text, msg):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(text)
    assert cli.main(["train", "--config", str(cfg), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err


def test_event_clamp_option_is_a_pair_of_numbers():
    import eventsnn as es
    from eventsnn.event.learner import EventLearner
    net = es.Sequential(es.Dense(4, 2), rng=0)
    for bad in ("12", 12, [1, 2, 3], [True, 1], ["a", "b"]):
        with pytest.raises(TypeError, match="clamp"):
            EventLearner(net, clamp=bad)
    with pytest.raises(ValueError, match="low <= high"):
        EventLearner(net, clamp=[1.0, -1.0])
    assert EventLearner(net, clamp=(-4, 0)).options["clamp"] == [-4.0, 0.0]


def test_simulate_time_scale_overflow_names_where_the_time_scale_came_from(tmp_path, capsys, monkeypatch):
    import eventsnn.io as eio
    from eventsnn.io.binary import write_bin
    monkeypatch.chdir(tmp_path)
    ev = np.zeros(2, dtype=eio.EVENT_DTYPE)
    ev["t"], ev["x"], ev["y"] = [1000, (1 << 23) - 1], [1, 2], [3, 4]
    write_bin("e.bin", ev)
    net = es.Sequential(es.Dense(2 * 34 * 34, 3), rng=0)
    net.save("m.npz", training={"data": {"time_scale": 1e306}})
    # stored in the model file: the message names the model file and the flag that overrides it
    assert cli.main(["simulate", "m.npz", "e.bin"]) == 2
    err = capsys.readouterr().err
    assert "overflows" in err and "model file m.npz" in err and "--time-scale" in err
    assert "Traceback" not in err
    # given on the command line: the message says so
    assert cli.main(["simulate", "m.npz", "e.bin", "--time-scale", "1e306"]) == 2
    err = capsys.readouterr().err
    assert "overflows" in err and "from --time-scale" in err and "m.npz" not in err.split("e.bin:")[1]
    # a time_scale that fits still simulates
    assert cli.main(["simulate", "m.npz", "e.bin", "--time-scale", "0.1"]) == 0


def test_resume_at_other_learning_rates_warns_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--log", "run.jsonl"] + SMALL) == 0
    capsys.readouterr()
    assert cli.main(["train", "--epochs", "3", "--lr", "0.02", "--log", "run.jsonl", "--resume"]
                    + SMALL[:2] + SMALL[4:]) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "warning" in ln]
    assert len(lines) == 1, err
    assert lines[0].startswith("eventsnn train: warning: run.jsonl.ckpt.npz: epochs 1-2 ran at "
                               "learning rates 0.01, 0.01, but this trainer's schedule gives them "
                               "0.02, 0.02")
