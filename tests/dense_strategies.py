"""Hypothesis strategies for random dense-mode networks (test-only helpers)."""
import numpy as np
from hypothesis import strategies as st

import eventsnn as es
from eventsnn.dense.neurons import AntlrNeuron, ZhuNeuron


@st.composite
def dense_neurons(draw, resets=("full",)):
    """A ZhuNeuron or an AntlrNeuron; ``resets`` other than ("full",) draw only AntlrNeurons
    with one of those resets."""
    if resets != ("full",):
        return AntlrNeuron(a_i=draw(st.sampled_from([0.9, 0.8, 0.5, 0.0])),
                           a_v=draw(st.sampled_from([0.99, 0.9, 0.6])),
                           b_i=draw(st.sampled_from([1.0, 0.7])),
                           b_v=draw(st.sampled_from([None, 1.0, 0.5])),
                           theta=draw(st.sampled_from([0.5, 1.0])),
                           reset=draw(st.sampled_from(resets)))
    if draw(st.booleans()):
        tm, ts = draw(st.sampled_from([(5.0, 3.0), (4.0, 1.5), (2.0, 5.0), (10.0, 1.0), (3.0, 2.0)]))
        return ZhuNeuron(tau_m=tm, tau_s=ts, theta=draw(st.sampled_from([0.5, 1.0])))
    a_i = draw(st.sampled_from([0.99, 0.8, 0.5, 0.0]))
    a_v = draw(st.sampled_from([0.99, 0.9, 0.6]))
    b_v = draw(st.sampled_from([None, 0.5]))
    return AntlrNeuron(a_i=a_i, a_v=a_v, b_i=draw(st.sampled_from([1.0, 0.7])), b_v=b_v,
                       theta=draw(st.sampled_from([0.5, 1.0])))


@st.composite
def dense_cases(draw, conv=True, resets=("full",)):
    """(net, x, neuron, seed): a small Dense or Conv/pool network with random inputs."""
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    T = draw(st.sampled_from([8, 6, 12, 4, 10, 2]))  # short windows still drawn, not first
    B = draw(st.integers(1, 2))
    kind = draw(st.sampled_from(["mlp", "conv"] if conv else ["mlp"]))
    if kind == "mlp":
        n_in = draw(st.sampled_from([3, 2, 4, 1]))  # size 1 still drawn, not first
        h = draw(st.sampled_from([3, 2, 4, 1]))
        o = draw(st.sampled_from([2, 3, 1]))
        net = es.Sequential(es.Dense(n_in, h), es.Dense(h, o), rng=seed)
        in_shape = (n_in,)
    else:
        pool = draw(st.sampled_from(["max", "avg", "avg_plain", None]))
        layers = [es.Conv2d((1, 4, 4), 2, 2, stride=1, padding=draw(st.integers(0, 1)))]
        conv_l = layers[0]
        conv_l.bind((1, 4, 4))
        shape = conv_l.out_shape
        if pool == "max":
            layers.append(es.MaxPool2d(2))
        elif pool is not None:
            layers.append(es.AvgPool2d(2, adjusted=(pool == "avg")))
        if pool is not None:
            shape = (shape[0], shape[1] // 2, shape[2] // 2)
        layers += [es.Flatten(), es.Dense(int(np.prod(shape)), 2)]
        net = es.Sequential(*layers, rng=seed)
        in_shape = (1, 4, 4)
    # weights: the default init (uniform +-bound) shifted towards excitation by ``shift``
    # bounds and scaled, so that most examples have output spikes and neurons that fire
    # several times (windows after a reset); shift 0 keeps balanced, often silent cases
    scale = draw(st.sampled_from([2.0, 4.0, 1.0]))
    shift = draw(st.sampled_from([1.0, 0.5, 1.0, 0.0]))
    for layer in net.layers:
        if layer.has_weight:
            bound = np.sqrt(6.0 / layer.weight[0].size)  # the init's bound (fan-in)
            layer.weight = (layer.weight + shift * bound) * scale
    n_in = int(np.prod(in_shape))
    if draw(st.booleans()):
        x = (rng.random((T, B, n_in)) < draw(st.sampled_from([0.5, 0.3]))).astype(float)
    else:
        x = rng.uniform(0, 1.5, (T, B, n_in))
    return net, x, draw(dense_neurons(resets)), seed
