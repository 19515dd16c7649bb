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
    with pytest.raises(ValueError, match="increasing order"):  # rows were silently reordered
        net.simulate(es.SpikeTrains([1.0], [0], 3), record_times=[3.0, 1.5])
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


# ---- input checks added with the audit of issue 2 (docs/errors.md lists them) -------------
def test_pairs_errors():
    with pytest.raises(ValueError, match=r"pairs must have shape \(N, 2\)"):
        es.SpikeTrains.from_pairs(np.zeros((3, 3)), 4)
    with pytest.raises(ValueError, match=r"\(indices, times\)"):
        es.SpikeTrains.from_pairs((np.arange(3), np.ones(3)), 4)
    with pytest.raises(TypeError, match="neuron indices"):
        es.SpikeTrains.from_pairs([(0.5, 1.0)], 4)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        es.SpikeTrains.from_pairs([(4, 1.0)], 4)


def test_index_and_value_range_errors():
    with pytest.raises(ValueError, match="found 9223372036854775813"):
        es.SpikeTrains([1.0], np.array([2**63 + 5], dtype=np.uint64), 3)
    with pytest.raises(ValueError, match="values must have magnitude <= 1e"):
        es.SpikeTrains([1.0], [0], 3, values=[1e200])


def test_shape_errors():
    with pytest.raises(TypeError, match="in_shape"):
        es.Conv2d("abc", 2, 2)
    with pytest.raises(TypeError, match="in_shape"):
        es.Conv2d((1.5, 3, 3), 2, 2)
    with pytest.raises(TypeError, match="in_shape"):
        es.Conv2d(5, 2, 2)
    with pytest.raises(ValueError, match="in_shape"):
        es.Conv2d((0, 3, 3), 2, 2)
    with pytest.raises(ValueError, match="stride"):
        es.Conv2d((1, 4, 4), 1, 2, stride=0)
    with pytest.raises(TypeError, match="stride"):
        es.Conv2d((1, 4, 4), 1, 2, stride=1.5)
    with pytest.raises(ValueError, match="padding"):
        es.Conv2d((1, 4, 4), 1, 2, padding=-1)
    with pytest.raises(ValueError, match=r"MaxPool2d\(4\) is larger than its input \(3, 3\)"):
        es.Sequential(es.Conv2d((1, 4, 4), 1, 2), es.MaxPool2d(4))
    with pytest.raises(ValueError, match=r"AvgPool2d\(5\) is larger than its input"):
        es.Sequential(es.Conv2d((1, 4, 4), 1, 1), es.AvgPool2d(5))
    with pytest.raises(ValueError, match="kernel_size"):
        es.MaxPool2d(0)


def test_kernel_function_errors():
    n = es.SRM()
    with pytest.raises(ValueError, match="NaN"):
        n.eps(nan)
    with pytest.raises(ValueError, match="NaN"):
        n.deps([0.0, nan])
    with pytest.raises(ValueError, match="kernel must be one of"):
        n.h(1.0, "gauss")
    with pytest.raises(ValueError, match="tau_grad"):
        n.h(1.0, "exp", tau_grad=0.0)
    net = es.Sequential(es.Dense(1, 1), rng=0)
    net.layers[0].weight = [[5.0]]
    rec = net.simulate(es.SpikeTrains([0.0], [0], 1))
    with pytest.raises(ValueError, match="tau_grad"):
        net.backward(rec, np.ones(len(rec.output)), tau_grad=-1.0)
    with pytest.raises(ValueError, match="kernel"):
        net.backward(rec, np.ones(len(rec.output)), kernel="gauss")


def test_weight_magnitude_errors():
    net = es.Sequential(es.Dense(2, 1), rng=0)
    with pytest.raises(ValueError, match=r"weight of Dense\(2, 1\) must have magnitude <= 1e\+100"):
        net.layers[0].weight = [[1e308, 1e308]]
    rec = net.simulate(es.SpikeTrains([0.0, 0.0], [0, 1], 2))
    net.layers[0].weight[0, 0] = 1e300  # in place: caught by simulate and backward
    with pytest.raises(ValueError, match="weight of layer 0 .* magnitude"):
        net.simulate(es.SpikeTrains([0.0], [0], 2))
    with pytest.raises(ValueError, match="weight of layer 0 .* magnitude"):
        net.backward(rec, np.ones(len(rec.output)))


def test_t_end_and_max_spikes_errors():
    net = es.Sequential(es.Dense(1, 1), neuron=es.SRM(4.0, 2.0, reset="membrane"), rng=0)
    net.layers[0].weight = [[1e5]]
    x = es.SpikeTrains([0.0], [0], 1)
    with pytest.raises(ValueError, match="use None or inf for no limit"):
        net.simulate(x, t_end=-1.0)
    with pytest.raises(ValueError, match="max_spikes"):
        net.simulate(x, max_spikes=0)
    with pytest.raises(TypeError, match="max_spikes"):
        net.simulate(x, max_spikes=1.5)
    with pytest.raises(ValueError, match=r"layer 1 \(Dense\(1, 1\)\) would emit more than "
                                         r"max_spikes=100 spikes.*t_ref"):
        net.simulate(x, max_spikes=100)


def test_layers_too_large_to_allocate_are_refused_up_front():
    with pytest.raises(ValueError, match="too large"):
        es.Dense(64, 10_000_000)
    with pytest.raises(ValueError, match="too large"):
        es.Conv2d((1, 28, 28), 8, 3, padding=10 ** 5)
    es.Dense(4096, 4096)                 # large but sane: fine
    es.Conv2d((2, 34, 34), 12, 5, padding=1)


def test_dense_run_refuses_to_drop_the_srm_reset():
    x = np.zeros((4, 1, 3))
    for neuron in (es.SRM(reset="membrane"), es.SRM(t_ref=1.0)):
        net = es.Sequential(es.Dense(3, 2), neuron=neuron, rng=0)
        for family in (None, "zhu", "antlr"):
            with pytest.raises(ValueError, match="silently dropped"):
                net.run(x, neuron=family)
    es.Sequential(es.Dense(3, 2), rng=0).run(x)   # full reset: fine


@pytest.mark.parametrize("line", ["../SECRET 3", "/etc/passwd 1", "a/b 2", ".. 1", "x 1 -3",
                                  "x -3", "x 99", "x 1.5", "x"])
def test_nmnist_label_lists_are_confined_and_strict(tmp_path, line):
    from eventsnn.datasets import nmnist
    (tmp_path / "train.txt").write_text(f"# id label\n{line}\n")
    with pytest.raises(ValueError, match=r"train\.txt:2"):
        nmnist.load(tmp_path, "train")


def test_activation_backward_rechecks_weights_edited_after_the_forward_pass():
    from eventsnn.dense.rules import activation
    net = es.Sequential(es.Dense(3, 2), rng=0)
    rec = net.run(np.ones((4, 1, 3)))
    activation.backward(rec, np.ones((4, 1, 2)))           # fine
    net.layers[0].weight[0, 0] = np.nan                    # edited in place afterwards
    with pytest.raises(ValueError, match="NaN or inf"):
        activation.backward(rec, np.ones((4, 1, 2)))
    net.layers[0].weight[0, 0] = 1e300
    with pytest.raises(ValueError, match="magnitude"):
        activation.backward(rec, np.ones((4, 1, 2)))
    net.layers[0].weight[0, 0] = 0.5
    with pytest.raises(TypeError, match="grad_s"):
        activation.backward(rec, np.ones((4, 1, 2)) * (1 + 1j))


def test_dense_pool_weight_and_event_input_gain_are_bounded():
    from eventsnn.event.learner import EventLearner
    net = es.Sequential(es.Conv2d((1, 4, 4), 1, 3, padding=1), es.AvgPool2d(2), es.Flatten(),
                        es.Dense(4, 2), rng=0)
    with pytest.raises(ValueError, match="pool_weight"):
        net.run(np.ones((3, 1, 1, 4, 4)), pool_weight=1e308)
    with pytest.raises(ValueError, match="input_gain"):
        EventLearner(es.Sequential(es.Dense(4, 2), rng=0), input_gain=1e300)


def test_time_step_counts_are_capped_before_allocating():
    from eventsnn.datasets import nmnist
    from eventsnn.dense.learners import ActivationLearner
    st = es.SpikeTrains([1.0], [0], 3)
    with pytest.raises(ValueError, match="n_steps must be <="):
        st.to_dense(10 ** 8)
    with pytest.raises(ValueError, match="too large"):
        es.SpikeTrains([1.0], [0], 10 ** 6).to_dense(10 ** 4)
    with pytest.raises(ValueError, match="n_steps must be <="):
        ActivationLearner(es.Sequential(es.Dense(3, 2), rng=0), n_steps=10 ** 8)
    with pytest.raises(ValueError, match="n_steps must be <="):
        nmnist.to_frames(np.zeros(0, dtype=nmnist.EVENT_DTYPE), 10 ** 8)


def test_a_scalar_is_not_a_one_dimensional_array():
    """float_array(ndim=1) once turned 3.0 into [3.0] (np.ascontiguousarray makes 0-d 1-d):
    every public argument that takes a 1-D array of times or values refuses a scalar."""
    from eventsnn import encode
    from eventsnn.dense.psc_network import spike_train_loss
    from eventsnn.dense.learners_psc import TsslLearner
    from eventsnn.event.learner import EventLearner
    from eventsnn.io.tonic import from_tonic
    net = es.Sequential(es.Dense(3, 2), rng=0)
    x = es.SpikeTrains([1.0], [0], 3)
    for scalar in (3.0, np.float64(3.0), np.array(3.0)):
        with pytest.raises(ValueError, match="times must be 1-dimensional, got a scalar"):
            es.SpikeTrains(scalar, [0], 3)
        with pytest.raises(ValueError, match="values must be 1-dimensional"):
            es.SpikeTrains([1.0], [0], 3, values=scalar)
        with pytest.raises(ValueError, match="record_times must be 1-dimensional"):
            net.simulate(x, record_times=scalar)
        with pytest.raises(ValueError, match="times must be 1-dimensional"):
            encode.current(np.ones((1, 3)), times=scalar)
        with pytest.raises(ValueError, match="pattern must be 1-dimensional"):
            spike_train_loss(np.zeros((1, 1, 2)), [0], 2.0, pattern=scalar)
        with pytest.raises(ValueError, match="target must be 1-dimensional"):
            TsslLearner(net, n_steps=1, target=scalar)
        with pytest.raises((TypeError, ValueError), match="input_times"):
            EventLearner(net, input_times=scalar)
    ev = np.zeros((), dtype=[("t", "<i8"), ("x", "<i8"), ("y", "<i8"), ("p", "<i8")])
    with pytest.raises(ValueError, match="1-dimensional"):
        from_tonic(ev, (1, 1, 2))
    # arrays of the right rank still work, one entry included
    assert es.SpikeTrains([3.0], [0], 3).times.tolist() == [3.0]
    assert net.simulate(x, record_times=[2.0]).membrane[1].shape[0] == 1


def test_messages_name_the_argument_at_the_last_three_places():
    import eventsnn.io as eio
    from eventsnn import plot
    ev = np.zeros(3, dtype=eio.EVENT_DTYPE)
    with pytest.raises(ValueError, match="events is a structured event array: it needs shape"):
        plot.frames(ev)
    with pytest.raises(ValueError, match="events is a SpikeTrains"):
        plot.frames(es.SpikeTrains([1.0], [0], 4))
    big = np.zeros(2, dtype=eio.EVENT_DTYPE)
    big["t"] = [2 ** 62, 2 ** 63 - 1]
    rec = eio.Recording(big, (4, 4, 2), "x")
    with pytest.raises(ValueError, match="time_scale=1e[+]300 .* overflows"):
        rec.to_spike_trains(time_scale=1e300)
    assert rec.to_spike_trains(time_scale=2.0).times[-1] == (2 ** 63 - 1) / 1000.0 * 2.0


def test_from_nir_dt_that_scales_weights_past_the_cap_names_dt():
    pytest.importorskip("nir")
    g = es.to_nir(es.Sequential(es.Dense(4, 3), es.Dense(3, 2), rng=0, neuron=es.SRM(reset="membrane")))
    with pytest.raises(ValueError, match="dt=1e[+]308 scales the weights"):
        es.from_nir(g, dt=1e308)
    assert es.from_nir(g, dt=1e-4).layers[0].weight.shape == (3, 4)
