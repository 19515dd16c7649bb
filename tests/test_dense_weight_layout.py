"""Dense keeps its weights as W.T (n_in, n_out), C-contiguous, and exposes ``weight`` as a
view of that storage: in-place edits must reach the event kernels (which read the storage
with no copy), assignment must validate and copy, and files, NIR and optimisers must see
the (n_out, n_in) contract."""
import copy
import pickle

import numpy as np
import pytest

import eventsnn as es
from eventsnn.optim import SGD
from eventsnn.event.forward import kernel_weights
from eventsnn.event.reference import simulate_reference


def _input(n_in, n=120, seed=0):
    rng = np.random.default_rng(seed)
    return es.SpikeTrains(rng.uniform(0, 30, n), rng.integers(0, n_in, n), n_in)


def _net(seed=1, reset="membrane", t_ref=0.1):
    neuron = es.SRM(5.0, 1.25, 1.0, reset, t_ref if reset == "membrane" else 0.0)
    return es.Sequential(es.Dense(12, 9), es.Dense(9, 5), neuron=neuron, rng=seed)


def test_layout_and_no_copy_for_the_kernel():
    net = _net()
    for layer in net.layers:
        assert layer.weight.shape == (layer.n_out, layer.n_in)
        assert layer.weight_t.shape == (layer.n_in, layer.n_out)
        assert layer.weight_t.flags.c_contiguous
        np.testing.assert_array_equal(layer.weight, layer.weight_t.T)
        assert np.shares_memory(layer.weight, layer.weight_t)
        assert kernel_weights(layer) is layer.weight_t


def _edit(w0, w1):
    """The edits of the tests, applied to two (n_out, n_in) arrays (views or plain copies)."""
    w0[3, 4] = 2.5
    w0[:, 7] = 1.5
    np.multiply(w0, 1.1, out=w0)
    w1 *= 2.0


@pytest.mark.parametrize("reset", ["membrane", "full"])
def test_in_place_edits_reach_the_kernels(reset):
    net = _net(reset=reset)
    x = _input(12)
    before = net.simulate(x)
    want = [np.array(layer.weight, order="C", copy=True) for layer in net.layers]
    _edit(*want)                                  # the edits on plain copies
    w = net.layers[0].weight
    w[3, 4] = 2.5                                 # item assignment through the view
    net.layers[0].weight[:, 7] = 1.5              # slice assignment on the property
    np.multiply(w, 1.1, out=w)                    # a ufunc writing into the view
    net.layers[1].weight *= 2.0                   # augmented assignment on the property
    after = net.simulate(x)
    fresh = _net(seed=99, reset=reset)
    for layer, wk in zip(fresh.layers, want):
        layer.weight = wk
    expect = fresh.simulate(x)
    for layer, wk in zip(net.layers, want):
        np.testing.assert_array_equal(layer.weight_t, wk.T)
    for s1, s2 in zip(after.spikes, expect.spikes):
        assert s1 == s2
    # the oracle: the reference engine on the network with the expected weights
    ref = simulate_reference(fresh, x)
    for s1, s2 in zip(after.spikes[1:], ref[1:]):
        assert len(s1) == len(s2)
        np.testing.assert_array_equal(s1.neurons, s2.neurons)
        np.testing.assert_allclose(s1.times, s2.times, rtol=0, atol=1e-9)
    assert any(len(a) != len(b) or not np.array_equal(a.times, b.times)
               for a, b in zip(before.spikes[1:], after.spikes[1:]))
    # batch path and record_times (membrane traces) read the same storage
    batch = net.simulate([x, _input(12, seed=3)])
    assert batch[0].spikes[-1] == expect.spikes[-1]
    rt = np.linspace(0.0, 30.0, 7)
    np.testing.assert_array_equal(net.simulate(x, record_times=rt).membrane[1],
                                  fresh.simulate(x, record_times=rt).membrane[1])


def test_in_place_edits_reach_the_backward_pass():
    net = _net(reset="full")
    x = _input(12, n=200)
    want = [np.array(layer.weight, order="C", copy=True) for layer in net.layers]
    want[0] += 0.3
    want[1][0, :] = 0.8
    net.layers[0].weight[:, :] += 0.3
    net.layers[1].weight[0, :] = 0.8
    rec = net.simulate(x)
    g_out = np.linspace(-1.0, 1.0, len(rec.spikes[-1]))
    got = net.backward(rec, g_out)
    fresh = _net(seed=99, reset="full")
    for layer, wk in zip(fresh.layers, want):
        layer.weight = wk
    frec = fresh.simulate(x)
    for s1, s2 in zip(rec.spikes, frec.spikes):
        assert s1 == s2
    expect = fresh.backward(frec, g_out)
    for a, b in zip(got.weights, expect.weights):
        np.testing.assert_array_equal(a, b)
    assert len(rec.spikes[-1]) > 0


def test_optimiser_steps_through_the_view():
    net = _net()
    params = [layer.weight for layer in net.layers]
    grads = [np.full(p.shape, 0.01) for p in params]
    want = [p - 1e-2 * g for p, g in zip(params, grads)]   # plain SGD, lr 1e-2
    SGD(lr=1e-2).step(params, grads)
    for layer, w in zip(net.layers, want):
        np.testing.assert_allclose(layer.weight_t, w.T, rtol=1e-15, atol=0)


def test_assignment_validates_and_copies():
    layer = _net().layers[0]
    with pytest.raises(ValueError, match="shape"):
        layer.weight = np.zeros((12, 9))        # the transpose's shape is refused
    with pytest.raises(ValueError, match="finite"):
        layer.weight = np.full((9, 12), np.nan)
    with pytest.raises(ValueError, match="weight"):
        layer.weight = np.full((9, 12), 1e200)
    with pytest.raises(TypeError):
        layer.weight = "abc"
    src = np.arange(108.0).reshape(9, 12)
    layer.weight = src
    src[0, 0] = -5.0                            # the layer holds a copy
    assert layer.weight[0, 0] == 0.0
    other = _net(seed=5).layers[0]
    other.weight = layer.weight                 # an F-ordered view as the source
    other.weight[1, 1] = 42.0
    assert layer.weight[1, 1] == 13.0
    assert not np.shares_memory(other.weight_t, layer.weight_t)
    assert other.weight_t.flags.c_contiguous
    layer.weight = np.ones((9, 12), dtype=np.int32)   # converted to float64
    assert layer.weight.dtype == np.float64 and layer.weight_t.flags.c_contiguous


def test_copies_and_pickles_keep_one_storage():
    net = _net()
    for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        clone.layers[0].weight[2, 3] = 3.0
        assert clone.layers[0].weight_t[3, 2] == 3.0
        assert net.layers[0].weight[2, 3] != 3.0


def test_save_load_round_trip_of_edited_weights(tmp_path):
    net = _net()
    net.layers[0].weight[4, 2] = -0.75
    net.layers[1].weight *= 0.5
    net.save(tmp_path / "m.npz")
    back = es.Sequential.load(tmp_path / "m.npz")
    x = _input(12)
    for a, b in zip(net.layers, back.layers):
        np.testing.assert_array_equal(a.weight, b.weight)
        assert b.weight_t.flags.c_contiguous
    for s1, s2 in zip(net.simulate(x).spikes, back.simulate(x).spikes):
        assert s1 == s2


def test_nir_round_trip_of_edited_weights():
    pytest.importorskip("nir")
    net = _net(t_ref=0.0)   # NIR neurons have no refractory period
    net.layers[0].weight[1, :] = 0.9
    graph = es.to_nir(net)
    np.testing.assert_array_equal(graph.nodes["0_linear"].weight, net.layers[0].weight)
    back = es.from_nir(graph)
    for a, b in zip(net.layers, back.layers):
        np.testing.assert_allclose(a.weight, b.weight, rtol=1e-15, atol=0)
        assert b.weight_t.flags.c_contiguous
    x = _input(12)
    for s1, s2 in zip(net.simulate(x).spikes[1:], back.simulate(x).spikes[1:]):
        np.testing.assert_array_equal(s1.neurons, s2.neurons)
        np.testing.assert_allclose(s1.times, s2.times, rtol=0, atol=1e-9)


def test_weight_is_none_before_initialisation_and_code_needing_it_says_so():
    from eventsnn.dense import ops
    from eventsnn.layers import AvgPool2d, Dense
    d = Dense(4, 3)
    assert d.weight is None and d.weight_t is None
    with pytest.raises(ValueError, match="no weight yet"):
        d._weight_array()
    d.bind((4,))
    with pytest.raises(ValueError, match="has no weight"):
        ops.forward(d, np.zeros(4))
    d.weight = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(d._weight_array(), np.arange(12.0).reshape(3, 4))
    assert d._weight_array().base is d.weight_t     # the stored array, not a copy
    pool = AvgPool2d(2)
    assert pool.weight is None
    with pytest.raises(TypeError, match="has no weight"):
        pool._weight_array()
