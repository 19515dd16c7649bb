"""eventsnn.plot on the Agg backend: what is drawn equals the data."""
import json

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import eventsnn as es  # noqa: E402
from eventsnn import plot  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _record(record_times=None):
    gen = np.random.default_rng(0)
    x = es.SpikeTrains(gen.uniform(0, 20, 80), gen.integers(0, 6, 80), 6)
    net = es.Sequential(es.Dense(6, 5), es.Dense(5, 3), rng=0)
    for layer in net.layers:
        layer.weight = np.abs(layer.weight) * 3
    return net, net.simulate(x, record_times=record_times)


def test_raster_marks_are_the_spikes():
    net, rec = _record()
    ax = plot.raster(rec, level=0)
    np.testing.assert_array_equal(ax.collections[0].get_offsets(),
                                  np.column_stack([rec.spikes[0].times, rec.spikes[0].neurons]))
    axes = plot.raster(rec, level=None)
    assert len(axes) == 3
    for a, st in zip(axes, rec.spikes):
        np.testing.assert_array_equal(a.collections[0].get_offsets(),
                                      np.column_stack([st.times, st.neurons]))
    assert len(rec.spikes[1]) > 0
    with pytest.raises(ValueError, match="level"):
        plot.raster(rec, level=3)
    with pytest.raises(TypeError, match="record"):
        plot.raster([1, 2])


def test_membrane_lines_are_the_recorded_traces():
    t = np.linspace(0, 30, 301)
    net, rec = _record(t)
    ax = plot.membrane(rec, level=1, neurons=[0, 2], theta=net.neuron.theta)
    traces = [l for l in ax.lines if l.get_label().startswith("neuron")]
    assert [l.get_label() for l in traces] == ["neuron 0", "neuron 2"]
    for line, i in zip(traces, [0, 2]):
        np.testing.assert_array_equal(line.get_xdata(), t)
        np.testing.assert_array_equal(line.get_ydata(), rec.membrane[1][:, i])
    dots = [l for l in ax.lines if l.get_marker() == "o"]
    st = rec.spikes[1]
    np.testing.assert_array_equal(dots[0].get_xdata(), st.times[st.neurons == 0])
    with pytest.raises(ValueError, match="record_times"):
        plot.membrane(_record()[1])


def test_training_curves_from_history_and_log(tmp_path):
    hist = [{"epoch": 1, "loss": 2.0, "train_accuracy": 0.3},
            {"epoch": 2, "loss": 1.5, "train_accuracy": 0.5, "val_accuracy": 0.4}]
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in hist))
    for src in (hist, log, str(log)):
        ax_loss, ax_acc = plot.training_curves(src)
        (loss,) = ax_loss.lines
        np.testing.assert_array_equal(loss.get_xdata(), [1, 2])
        np.testing.assert_array_equal(loss.get_ydata(), [2.0, 1.5])
        acc = {l.get_label(): l.get_ydata() for l in ax_acc.lines}
        np.testing.assert_array_equal(acc["train_accuracy"], [0.3, 0.5])
        np.testing.assert_array_equal(acc["val_accuracy"], [np.nan, 0.4])
    with pytest.raises(ValueError, match="history"):
        plot.training_curves([])


def test_event_frames_count_the_events():
    # 2 channels, 2 x 3 pixels; events: ON at (y=1, x=2) at 1 ms and 9 ms, OFF at (0, 0) at 6 ms
    st = es.SpikeTrains([1.0, 6.0, 9.0], [1 * 6 + 1 * 3 + 2, 0, 1 * 6 + 1 * 3 + 2], 12)
    fr, edges = plot.frames(st, n_frames=2, shape=(2, 2, 3))
    np.testing.assert_allclose(edges, [0, 4.5, 9.0])
    assert fr[0, 1, 1, 2] == 1 and fr[1, 1, 1, 2] == 1 and fr[1, 0, 0, 0] == 1 and fr.sum() == 3
    axes = plot.event_frames(st, n_frames=2, shape=(2, 2, 3))
    img = axes[1].images[0].get_array()
    assert img[1, 2] == 1 and img[0, 0] == -1
    with pytest.raises(ValueError, match="shape"):
        plot.frames(st, 2)


def test_mean_curves_draw_the_mean_and_the_std_band():
    gen = np.random.default_rng(1)
    runs = gen.uniform(0, 2, (7, 12))                   # 7 runs of 12 points
    single = np.linspace(1, 0, 12)
    x = np.arange(1, 13)
    ax = plot.mean_curves({"a": runs, "b": single}, x=x, floor=0.3, colors={"a": "tab:red"},
                          labels={"b": "single run"}, logy=True)
    a, b = ax.lines
    assert (a.get_label(), b.get_label()) == ("a", "single run")
    np.testing.assert_array_equal(a.get_xdata(), x)
    np.testing.assert_allclose(a.get_ydata(), runs.mean(axis=0), rtol=0, atol=0)
    np.testing.assert_array_equal(b.get_ydata(), single)
    assert a.get_color() == "tab:red" and ax.get_yscale() == "log"
    (poly,) = ax.collections                               # one run: no band for "b"
    verts = poly.get_paths()[0].vertices
    mean, sd = runs.mean(axis=0), runs.std(axis=0)
    # the band's outline runs along the upper edge and back along the lower one
    for xv, lo, hi in zip(x, np.maximum(mean - sd, 0.3), mean + sd):
        ys = verts[np.isclose(verts[:, 0], xv), 1]
        assert np.isclose(ys.min(), lo) and np.isclose(ys.max(), hi)
    with pytest.raises(ValueError, match="different lengths"):
        plot.mean_curves({"a": runs, "b": single[:5]})
    with pytest.raises(ValueError, match="x must have"):
        plot.mean_curves({"a": runs}, x=[1, 2])
    with pytest.raises(ValueError, match="non-empty"):
        plot.mean_curves({})
