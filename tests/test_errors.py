"""Every kind of bad input gives a clear ValueError/TypeError naming the argument
(the table in docs/errors.md lists these)."""
import numpy as np
import pytest

import eventsnn as es

nan, inf = float("nan"), float("inf")

SPIKE_CASES = [
    (dict(times=[nan], neurons=[0], n_neurons=1), ValueError, "NaN"),
    (dict(times=[inf], neurons=[0], n_neurons=1), ValueError, "finite"),
    (dict(times=[-1.0], neurons=[0], n_neurons=1), ValueError, ">= 0"),
    (dict(times=[1.0], neurons=[3], n_neurons=2), ValueError, r"\[0, 2\)"),
    (dict(times=[1.0], neurons=[-1], n_neurons=2), ValueError, r"\[0, 2\)"),
    (dict(times=[1.0], neurons=[0.5], n_neurons=2), TypeError, "neurons"),
    (dict(times=[1.0, 2.0], neurons=[0], n_neurons=2), ValueError, "entries"),
    (dict(times=[[1.0]], neurons=[[0]], n_neurons=2), ValueError, "1-dimensional"),
    (dict(times=["a"], neurons=[0], n_neurons=2), TypeError, "times"),
    (dict(times=[1.0], neurons=[0], n_neurons=0), ValueError, "n_neurons"),
    (dict(times=[1.0], neurons=[0], n_neurons=2.5), TypeError, "n_neurons"),
    (dict(times=[1.0], neurons=[0], n_neurons=2, values=[nan]), ValueError, "values"),
    (dict(times=[1.0], neurons=[0], n_neurons=2, values=[1.0, 2.0]), ValueError, "values"),
]


@pytest.mark.parametrize("kwargs, exc, match", SPIKE_CASES)
def test_spiketrains_rejects(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        es.SpikeTrains(**kwargs)


def test_dense_conversion_errors():
    with pytest.raises(ValueError, match="raster"):
        es.SpikeTrains.from_dense(np.zeros(3))
    with pytest.raises(ValueError, match="raster"):
        es.SpikeTrains.from_dense([[nan]])
    with pytest.raises(ValueError, match="dt"):
        es.SpikeTrains.from_dense(np.zeros((2, 2)), dt=0)
    with pytest.raises(ValueError, match="n_steps"):
        es.SpikeTrains([1.0], [0], 1).to_dense(0)


def test_tonic_errors():
    ev = np.zeros(2, dtype=[("t", "<i8"), ("x", "<i8"), ("y", "<i8"), ("p", "<i8")])
    ev["x"] = [0, 9]
    with pytest.raises(ValueError, match="x"):
        es.SpikeTrains.from_tonic(ev, (2, 4, 4))
    with pytest.raises(TypeError, match="structured"):
        es.SpikeTrains.from_tonic(np.zeros(3), (2, 4, 4))
    with pytest.raises(ValueError, match="shape"):
        es.SpikeTrains.from_tonic(ev, (2, 4))
    with pytest.raises(ValueError, match="shape"):
        es.SpikeTrains([1.0], [0], 5).to_tonic((1, 2, 2))


def test_layer_errors():
    with pytest.raises(ValueError, match="n_out"):
        es.Dense(3, 0)
    with pytest.raises(TypeError, match="n_in"):
        es.Dense(3.5, 2)
    with pytest.raises(ValueError, match="kernel_size"):
        es.Conv2d((1, 3, 3), 2, 5)
    with pytest.raises(ValueError, match="in_shape"):
        es.Conv2d((3, 3), 2, 2)
    with pytest.raises(TypeError, match="adjusted"):
        es.AvgPool2d(2, adjusted="yes")


def test_network_shape_errors():
    with pytest.raises(ValueError, match="Dense\\(n_in=5\\)"):
        es.Sequential(es.Dense(3, 4), es.Dense(5, 2))
    with pytest.raises(ValueError, match="first layer"):
        es.Sequential(es.MaxPool2d(2), es.Dense(4, 2))
    with pytest.raises(ValueError, match="MaxPool2d"):
        es.Sequential(es.Dense(3, 4), es.MaxPool2d(2))
    with pytest.raises(TypeError, match="layer 1"):
        es.Sequential(es.Dense(3, 4), "relu")
    with pytest.raises(TypeError, match="neuron"):
        es.Sequential(es.Dense(3, 4), neuron=5)
    with pytest.raises(TypeError, match="rng"):
        es.Sequential(es.Dense(3, 4), rng="seed")


def test_weight_errors():
    net = es.Sequential(es.Dense(3, 4), rng=0)
    with pytest.raises(ValueError, match="shape"):
        net.layers[0].weight = np.zeros((3, 4))
    with pytest.raises(ValueError, match="finite"):
        net.layers[0].weight = np.full((4, 3), nan)
    net.layers[0].weight[0, 0] = inf  # in-place edits are caught when simulating
    with pytest.raises(ValueError, match="NaN or inf"):
        net.simulate(es.SpikeTrains([1.0], [0], 3))
    with pytest.raises(AttributeError, match="no weight"):
        es.Sequential(es.Conv2d((1, 4, 4), 1, 2), es.MaxPool2d(2)).layers[1].weight = np.zeros(1)


def test_simulate_errors():
    net = es.Sequential(es.Dense(3, 4), rng=0)
    with pytest.raises(ValueError, match="n_neurons=2"):
        net.simulate(es.SpikeTrains([1.0], [0], 2))
    with pytest.raises(TypeError, match="SpikeTrains"):
        net.simulate(np.zeros((3, 3)))
    with pytest.raises(TypeError, match=r"inputs\[1\]"):
        net.simulate([es.SpikeTrains([1.0], [0], 3), "x"])
    with pytest.raises(ValueError, match="t_end"):
        net.simulate(es.SpikeTrains([1.0], [0], 3), t_end=-1)
    with pytest.raises(ValueError, match="t_end"):
        net.simulate(es.SpikeTrains([1.0], [0], 3), t_end=nan)
    with pytest.raises(ValueError, match="record_times"):
        net.simulate(es.SpikeTrains([1.0], [0], 3), record_times=[nan])
    with pytest.raises(ValueError, match="record_times"):
        net.simulate(es.SpikeTrains([1.0], [0], 3), record_times=[-1.0])
    with pytest.raises(ValueError, match="n_threads"):
        net.simulate([es.SpikeTrains([1.0], [0], 3)] * 2, n_threads=0)


def test_load_rejects_non_models(tmp_path):
    p = tmp_path / "x.npz"
    np.savez(p, a=np.zeros(2))
    with pytest.raises(ValueError, match="not an eventsnn model"):
        es.Sequential.load(p)
    # an object array would need unpickling: refused
    q = tmp_path / "y.npz"
    np.savez(q, meta=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError):
        es.Sequential.load(q)
