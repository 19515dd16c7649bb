"""NIR import/export (eventsnn.nir): round trips, the NIR ODEs, exporters' files, errors."""
import os

import numpy as np
import pytest

import eventsnn as es

from . import naive_nir

nir = pytest.importorskip("nir")

TOL_MS = 1e-9
DATA = os.path.join(os.path.dirname(__file__), "data")


def same_records(a, b):
    assert len(a.spikes) == len(b.spikes)
    for level, (x, y) in enumerate(zip(a.spikes, b.spikes)):
        np.testing.assert_array_equal(x.times, y.times, err_msg=f"level {level}")
        np.testing.assert_array_equal(x.neurons, y.neurons, err_msg=f"level {level}")
        np.testing.assert_array_equal(x.values, y.values, err_msg=f"level {level}")


def random_input(rng, n, t_max=15.0, k=None, integer_times=False):
    k = int(rng.integers(n, 4 * n + 1)) if k is None else k
    t = rng.integers(0, int(t_max), k) * 1.0 if integer_times else rng.uniform(0, t_max, k)
    return es.SpikeTrains(t, rng.integers(0, n, k), n, rng.uniform(0.3, 2.0, k))


def neuron_levels(rec, net):
    """(times, neurons) of the neuron layers' spikes (pooling/Flatten entries left out)."""
    return [(s.times, s.neurons) for s, layer in zip(rec.spikes[1:], net.layers) if layer.has_neurons]


def assert_matches_oracle(net, graph, st, area=1.0):
    """eventsnn's spikes equal the independent NIR-ODE solution to TOL_MS; returns the
    number of spikes compared (None when the example holds a graze too close to call)."""
    levels, closest = naive_nir.simulate(graph, st.times / 1000.0, st.neurons, st.values, area)
    if closest < 1e-4:
        return None
    ours = neuron_levels(net.simulate(st), net)
    assert len(ours) == len(levels)
    n = 0
    for k, ((t, i), (t_ref, i_ref)) in enumerate(zip(ours, levels)):
        assert t.size == t_ref.size, f"neuron level {k}: {t.size} spikes, the ODE solution {t_ref.size}"
        np.testing.assert_array_equal(i, i_ref, err_msg=f"neuron level {k}")
        np.testing.assert_allclose(t, t_ref * 1000.0, rtol=0, atol=TOL_MS, err_msg=f"neuron level {k}")
        n += t.size
    return n


# ---- random eventsnn networks -----------------------------------------------------------------
def random_neuron(rng):
    if rng.random() < 0.4:
        return es.LIF(tau_m=float(rng.uniform(1.0, 10.0)), theta=float(rng.uniform(0.5, 2.0)))
    tau_m = float(rng.uniform(2.0, 10.0))
    tau_s = float(tau_m * rng.choice([0.3, 0.5, 0.8, 1.7]))
    return es.SRM(tau_m=tau_m, tau_s=tau_s, theta=float(rng.uniform(0.5, 2.0)), reset="membrane")


def random_net(rng):
    neuron = random_neuron(rng)
    if rng.random() < 0.5:
        sizes = [int(rng.integers(3, 9)) for _ in range(int(rng.integers(2, 5)))]
        layers = [es.Dense(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
    else:
        layers = [es.Conv2d((1, 6, 6), 2, 3, padding=int(rng.integers(0, 2))),
                  es.AvgPool2d(2, adjusted=False), es.Flatten()]
        n = 2 * (3 if layers[0].padding else 2) ** 2
        layers.append(es.Dense(n, 3))
    neurons = [random_neuron(rng) if (layer.has_neurons and rng.random() < 0.5) else None
               for layer in layers]
    net = es.Sequential(*layers, neuron=neuron, rng=int(rng.integers(1 << 30)),
                        neurons=neurons if any(neurons) else None)
    for layer, nrn in zip(net.layers, net.layer_neurons):
        if layer.has_weight:
            fan_in = layer.weight[0].size
            layer.weight = rng.normal(1.0, 1.0, layer.weight.shape) * nrn.theta * 3.0 / np.sqrt(fan_in)
    return net


@pytest.mark.parametrize("seed", range(12))
def test_round_trip_through_a_file_is_exact(seed, tmp_path):
    rng = np.random.default_rng(seed)
    net = random_net(rng)
    path = tmp_path / "net.nir"
    nir.write(str(path), es.to_nir(net))
    back = es.from_nir(path)
    assert back.layer_neurons == net.layer_neurons
    assert [type(layer) for layer in back.layers] == [type(layer) for layer in net.layers]
    for a, b in zip(net.layers, back.layers):
        if a.has_weight:
            np.testing.assert_array_equal(a.weight, b.weight)
    st = random_input(rng, net.n_in)
    same_records(net.simulate(st), back.simulate(st))


def test_exported_graphs_follow_the_nir_odes():
    """An independent solver of the NIR ODEs reproduces eventsnn's spikes on the exported
    graph (so the export is correct NIR, not only readable by eventsnn)."""
    total = checked = 0
    for seed in range(10):
        rng = np.random.default_rng(100 + seed)
        net = random_net(rng)
        n = assert_matches_oracle(net, es.to_nir(net), random_input(rng, net.n_in))
        if n is not None:
            checked += 1
            total += n
    assert checked >= 7 and total > 50


# ---- hand-built NIR graphs with random parameters ---------------------------------------------
def full(rng, shape, value, arrays):
    """A per-neuron parameter: a uniform array of the layer's shape, or a 1-element array."""
    return np.full(shape, value) if arrays else np.array([value])


def random_neuron_node(rng, shape, taus, arrays, fan_in):
    """A CubaLIF or LIF node with random r, w_in, v_threshold; returns (node, weight scale)
    so that weights of that scale make the neurons fire about once per few inputs."""
    v_th = float(rng.uniform(0.3, 3.0))
    r = float(rng.uniform(0.2, 5.0))
    if taus[1] is None:
        tau = taus[0]
        node = nir.LIF(tau=full(rng, shape, tau, arrays), r=full(rng, shape, r, arrays),
                       v_leak=full(rng, shape, 0.0, arrays), v_threshold=full(rng, shape, v_th, arrays),
                       v_reset=full(rng, shape, 0.0, arrays))
        return node, v_th * tau / r * 1.5 / np.sqrt(fan_in)
    tau_mem, tau_syn = taus
    w_in = float(rng.uniform(0.3, 3.0))
    node = nir.CubaLIF(tau_syn=full(rng, shape, tau_syn, arrays), tau_mem=full(rng, shape, tau_mem, arrays),
                       r=full(rng, shape, r, arrays), v_leak=full(rng, shape, 0.0, arrays),
                       v_threshold=full(rng, shape, v_th, arrays), v_reset=full(rng, shape, 0.0, arrays),
                       w_in=full(rng, shape, w_in, arrays))
    return node, v_th * tau_mem / (r * w_in) * 2.0 / np.sqrt(fan_in)


def random_taus(rng):
    if rng.random() < 0.35:
        return (float(rng.uniform(1e-3, 1e-2)), None)
    tau_mem = float(rng.uniform(2e-3, 1e-2))
    return (tau_mem, float(tau_mem * rng.choice([0.25, 0.5, 0.7, 1.6])))


def random_graph(rng, share):
    """A random chain graph and its input size. With ``share`` the layers share their time
    constants (one eventsnn neuron, thresholds folded), else each draws its own (per-layer
    neurons)."""
    shared = random_taus(rng) if share else None
    arrays = bool(rng.random() < 0.5)
    nodes, order = {}, []

    def add(name, node):
        nodes[name] = node
        order.append(name)

    if rng.random() < 0.6:
        sizes = [int(rng.integers(3, 8)) for _ in range(int(rng.integers(2, 5)))]
        add("input", nir.Input(input_type=np.array([sizes[0]])))
        for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            node, scale = random_neuron_node(rng, (b,), shared or random_taus(rng), arrays, a)
            w = rng.normal(1.0, 1.0, (b, a)) * scale
            add(f"w{k}", nir.Affine(weight=w, bias=np.zeros(b)) if rng.random() < 0.5
                else nir.Linear(weight=w))
            add(f"n{k}", node)
        n_in = sizes[0]
    else:
        add("input", nir.Input(input_type=np.array([1, 6, 6])))
        pad = int(rng.integers(0, 2))
        node, scale = random_neuron_node(rng, (2, 4 + 2 * pad, 4 + 2 * pad), shared or random_taus(rng),
                                         arrays, 9)
        add("conv", nir.Conv2d(input_shape=(6, 6), weight=rng.normal(1.0, 1.0, (2, 1, 3, 3)) * scale,
                               stride=1, padding=pad, dilation=1, groups=1, bias=np.zeros(2)))
        add("n0", node)
        is_sum = rng.random() < 0.5
        pool = nir.SumPool2d if is_sum else nir.AvgPool2d
        add("pool", pool(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])))
        n_flat = 2 * (2 + pad) ** 2
        add("flat", nir.Flatten(input_type={"input": np.array([2, 2 + pad, 2 + pad])}, start_dim=0))
        node, scale = random_neuron_node(rng, (3,), shared or random_taus(rng), arrays, n_flat)
        add("w1", nir.Linear(weight=rng.normal(1.0, 1.0, (3, n_flat)) * scale * (1 if is_sum else 4)))
        add("n1", node)
        n_in = 36
    add("output", nir.Output(output_type=np.array([1])))
    edges = list(zip(order[:-1], order[1:]))
    rng.shuffle(edges)  # NIR edges are a set: import must not rely on their order
    return nir.NIRGraph(nodes=nodes, edges=[tuple(e) for e in edges], type_check=False), n_in


@pytest.mark.parametrize("area", [None, 1e-4])
def test_hand_built_graphs_match_the_ode_solution(area):
    """Random parameters (tau_syn, tau_mem, r, w_in, v_threshold per layer, uniform arrays
    or scalars, Affine/Linear/Conv2d, Avg/SumPool2d, Flatten, CubaLIF and LIF): eventsnn's
    spike times equal an independent solution of the NIR ODEs to 1e-9 ms."""
    total = checked = per_layer = 0
    for seed in range(12):
        rng = np.random.default_rng(1000 + seed)
        graph, n_in = random_graph(rng, share=seed % 3 == 0)
        if area is not None:  # the dt convention scales every impulse: rescale the weights
            for node in graph.nodes.values():
                if hasattr(node, "weight"):
                    node.weight = node.weight / area
        net = es.from_nir(graph, dt=area)
        per_layer += net.has_layer_neurons
        n = assert_matches_oracle(net, graph, random_input(rng, n_in, integer_times=seed % 2 == 0),
                                  1.0 if area is None else area)
        if n is not None:
            checked += 1
            total += n
    assert checked >= 9 and total > 100 and per_layer >= 4


def test_shared_time_constants_give_one_neuron_with_folded_thresholds():
    rng = np.random.default_rng(5)
    w0, w1 = rng.normal(size=(4, 3)), rng.normal(size=(2, 4))

    def cuba(n, v_th, r, w_in):
        return nir.CubaLIF(tau_syn=np.full(n, 2e-3), tau_mem=np.full(n, 5e-3), r=np.full(n, r),
                           v_leak=np.zeros(n), v_threshold=np.full(n, v_th), w_in=np.full(n, w_in))

    g = nir.NIRGraph.from_list(nir.Linear(weight=w0), cuba(4, 2.0, 3.0, 0.5),
                               nir.Linear(weight=w1), cuba(2, 0.5, 1.0, 4.0))
    net = es.from_nir(g)
    assert not net.has_layer_neurons
    assert net.neuron == es.SRM(tau_m=5.0, tau_s=2.0, theta=2.0, reset="membrane")
    np.testing.assert_allclose(net.layers[0].weight, w0 * 3.0 / 5e-3 * 0.5, rtol=1e-15)
    np.testing.assert_allclose(net.layers[1].weight, w1 * 1.0 / 5e-3 * 4.0 * (2.0 / 0.5), rtol=1e-15)


# ---- files written by snnTorch's and Norse's exporters -----------------------------------------
def _data(name):
    path = os.path.join(DATA, name)
    if not os.path.exists(path):
        pytest.fail(f"test data {path} missing: run benchmarks/make_nir_test_data.py")
    return path


def test_snntorch_mlp_file():
    """snn.Leaky / snn.Synaptic layers (beta 0.9, alpha 0.8, dt = 1e-4 s in the exporter)."""
    path = _data("snntorch_mlp.nir")
    graph = nir.read(path, type_check=False)
    net = es.from_nir(path, dt=1e-4)
    kinds = [type(n) for n in net.layer_neurons]
    assert kinds == [es.LIF, es.SRM]
    lif, srm = net.layer_neurons
    # tau = dt / (1 - beta) = 1 ms (float32 in the file), tau_syn = dt / (1 - alpha) = 0.5 ms
    assert lif.tau_m == pytest.approx(1.0, rel=1e-6) and srm.tau_m == pytest.approx(1.0, rel=1e-6)
    assert srm.tau_s == pytest.approx(0.5, rel=1e-6)
    # with dt, a spike of weight W raises snnTorch's Leaky membrane by W: weights unchanged
    w0 = np.asarray(graph.nodes["0"].weight, dtype=float)
    np.testing.assert_allclose(net.layers[0].weight, w0 * lif.theta / 1.0, rtol=1e-6)
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(4):
        st = random_input(rng, net.n_in, t_max=3.0, k=40)
        n = assert_matches_oracle(net, graph, st, area=1e-4)
        checked += n is not None
    assert checked >= 3


def test_snntorch_conv_file():
    """Conv2d + Leaky + AvgPool2d + Flatten + Linear + Synaptic from snnTorch."""
    path = _data("snntorch_conv.nir")
    graph = nir.read(path, type_check=False)
    net = es.from_nir(path, dt=1e-4)
    assert [type(layer) for layer in net.layers] == [es.Conv2d, es.AvgPool2d, es.Flatten, es.Dense]
    rng = np.random.default_rng(1)
    checked = total = 0
    for _ in range(3):
        st = random_input(rng, net.n_in, t_max=3.0, k=120)
        n = assert_matches_oracle(net, graph, st, area=1e-4)
        if n is not None:
            checked += 1
            total += n
    assert checked >= 2 and total > 0


def test_norse_mlp_file():
    """Norse 1.1's LIFCell -> CubaLIF and LIFBoxCell -> LIF, Linear -> Affine (zero bias).
    Norse writes tau = dt * tau_true (norse issue #411): imported as written."""
    path = _data("norse_mlp.nir")
    graph = nir.read(path, type_check=False)
    net = es.from_nir(path)
    cuba, lif = net.layer_neurons
    assert isinstance(cuba, es.SRM) and isinstance(lif, es.LIF)
    assert cuba.tau_m == pytest.approx(1e-5 * 1000, rel=1e-6)   # 1e-3 s * (1 / 100 Hz)
    assert cuba.tau_s == pytest.approx(5e-6 * 1000, rel=1e-6)
    rng = np.random.default_rng(2)
    checked = total = 0
    for _ in range(4):
        st = random_input(rng, net.n_in, t_max=0.2, k=30)
        n = assert_matches_oracle(net, graph, st)
        if n is not None:
            checked += 1
            total += n
    assert checked >= 3 and total > 0


# ---- what cannot be expressed --------------------------------------------------------------------
def _cuba(n, **kw):
    args = dict(tau_syn=np.full(n, 2e-3), tau_mem=np.full(n, 5e-3), r=np.ones(n), v_leak=np.zeros(n),
                v_threshold=np.ones(n), v_reset=np.zeros(n), w_in=np.ones(n))
    args.update(kw)
    return nir.CubaLIF(**args)


def _graph(*nodes):
    return nir.NIRGraph.from_list(*nodes, type_check=False)


@pytest.mark.parametrize("graph_fn, match", [
    (lambda: _graph(nir.Affine(weight=np.ones((2, 3)), bias=np.array([0.0, 0.1])), _cuba(2)),
     "'affine'.*non-zero bias"),
    (lambda: _graph(nir.Linear(weight=np.ones((2, 3))), _cuba(2, v_leak=np.full(2, 0.1))),
     "'cubalif'.*v_leak"),
    (lambda: _graph(nir.Linear(weight=np.ones((2, 3))), _cuba(2, v_reset=np.full(2, -0.1))),
     "'cubalif'.*v_reset"),
    (lambda: _graph(nir.Linear(weight=np.ones((2, 3))), _cuba(2, v_threshold=np.array([1.0, 2.0]))),
     "'cubalif'.*v_threshold differs"),
    (lambda: _graph(nir.Linear(weight=np.ones((2, 3))), _cuba(2, tau_mem=np.array([5e-3, 6e-3]))),
     "'cubalif'.*tau_mem differs"),
    (lambda: _graph(nir.Linear(weight=np.ones((2, 3))), _cuba(2, tau_syn=np.full(2, 5e-3))),
     "'cubalif'.*alpha-kernel"),
    (lambda: _graph(nir.Linear(weight=np.ones((2, 3))),
                    nir.LI(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2))),
     "'linear' is followed by 'li'"),
    (lambda: _graph(nir.Linear(weight=np.ones((2, 3))), _cuba(2), nir.Delay(delay=np.ones(2))),
     "'delay' \\(Delay\\) has no eventsnn counterpart"),
    (lambda: _graph(nir.Linear(weight=np.ones((2, 3)))), "'linear' is not followed by a neuron"),
    (lambda: _graph(nir.Conv2d(input_shape=(4, 4), weight=np.ones((1, 1, 2, 2)), stride=1, padding=0,
                               dilation=1, groups=1, bias=np.zeros(1)), _cuba((1, 3, 3)),
                    nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([1, 1]),
                                  padding=np.array([0, 0]))),
     "'avgpool2d'.*stride"),
    (lambda: _graph(nir.Conv2d(input_shape=(4, 4), weight=np.ones((1, 1, 2, 2)), stride=1, padding=0,
                               dilation=2, groups=1, bias=np.zeros(1)), _cuba((1, 2, 2))),
     "'conv2d'.*dilation"),
])
def test_import_rejects_what_eventsnn_cannot_express(graph_fn, match):
    with pytest.raises(ValueError, match=match):
        es.from_nir(graph_fn())


def test_import_rejects_recurrent_edges_and_subgraphs():
    nodes = {"input": nir.Input(input_type=np.array([3])), "w": nir.Linear(weight=np.ones((2, 3))),
             "lif": _cuba(2), "w_rec": nir.Linear(weight=np.ones((2, 2))),
             "output": nir.Output(output_type=np.array([2]))}
    edges = [("input", "w"), ("w", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")]
    with pytest.raises(ValueError, match="'lif'.*2 incoming edges"):
        es.from_nir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))
    sub = nir.NIRGraph(nodes={"i": nir.Input(input_type=np.array([2])), "o": nir.Output(output_type=np.array([2]))},
                       edges=[("i", "o")], type_check=False)
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([2])), "rec": sub,
                            "output": nir.Output(output_type=np.array([2]))},
                     edges=[("input", "rec"), ("rec", "output")], type_check=False)
    with pytest.raises(ValueError, match="'rec' is a subgraph"):
        es.from_nir(g)


@pytest.mark.parametrize("make, match", [
    (lambda: es.Sequential(es.Dense(3, 2), neuron=es.SRM(reset="full")), "layer 0.*reset='full'"),
    (lambda: es.Sequential(es.Dense(3, 2), neuron=es.SRM(reset="membrane", t_ref=1.0)), "layer 0.*t_ref"),
    (lambda: es.Sequential(es.Dense(3, 2), neuron=es.LIF(t_ref=0.5)), "layer 0.*t_ref"),
    (lambda: es.Sequential(es.Conv2d((1, 4, 4), 1, 1), es.MaxPool2d(2), es.Flatten(), es.Dense(4, 2),
                           neuron=es.SRM(reset="membrane")), "layer 1 \\(MaxPool2d.*max pooling"),
    (lambda: es.Sequential(es.Conv2d((1, 4, 4), 1, 1), es.AvgPool2d(2), es.Flatten(), es.Dense(4, 2),
                           neuron=es.SRM(reset="membrane")), "layer 1 \\(AvgPool2d.*adjusted"),
    (lambda: es.Sequential(es.Dense(3, 2, bias=True), neuron=es.SRM(reset="membrane")), "layer 0.*bias"),
])
def test_export_rejects_what_nir_cannot_express(make, match):
    with pytest.raises(ValueError, match=match):
        es.to_nir(make())


def test_bad_arguments():
    with pytest.raises(TypeError, match="graph must be a nir.NIRGraph"):
        es.from_nir(3)
    with pytest.raises(ValueError, match="no NIR file"):
        es.from_nir("/nonexistent/net.nir")
    g = _graph(nir.Linear(weight=np.ones((2, 3))), _cuba(2))
    with pytest.raises(ValueError, match="dt"):
        es.from_nir(g, dt=-1.0)
    with pytest.raises(TypeError, match="net must be an eventsnn.Sequential"):
        es.to_nir("net")


def test_missing_nir_package_gives_the_install_command(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "nir", None)  # makes `import nir` raise ImportError
    with pytest.raises(ImportError, match=r"pip install eventsnn\[nir\]"):
        es.to_nir(es.Sequential(es.Dense(2, 2), neuron=es.SRM(reset="membrane")))
