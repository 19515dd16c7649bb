"""Layers: shapes, weights and connectivity, shared by the event and the dense mode.

A layer of shape (C, H, W) numbers its neurons in C order: c*H*W + y*W + x.
Dense and Conv2d hold neurons (the network's neuron model); MaxPool2d and AvgPool2d hold no
neurons and relay events; Flatten only changes the nominal shape.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence, Tuple, cast

import numpy as np
from numpy.typing import ArrayLike

from . import _validate as v
from ._constants import MAX_LAYER_SIZE


def _check_size(what, neurons, weights):
    if neurons > MAX_LAYER_SIZE or weights > MAX_LAYER_SIZE:
        raise ValueError(f"{what} is too large: {neurons} neurons and {weights} weights or links, "
                         f"the cap is {MAX_LAYER_SIZE} (2**28) each (eventsnn._constants.MAX_LAYER_SIZE)")


class Layer:
    """Base class. ``in_shape``/``out_shape`` are tuples, known once the layer is bound."""

    has_neurons = False
    has_weight = False

    if TYPE_CHECKING:  # defined by the weighted layers (Dense, Conv2d)
        @property
        def weight_shape(self) -> Tuple[int, ...]: ...

        @property
        def bias_shape(self) -> Tuple[int, ...]: ...

    def __init__(self):
        self.in_shape = None
        self.out_shape = None
        self._weight = None
        self._bias = None

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))

    @property
    def weight(self) -> Optional[np.ndarray]:
        """The weight array (``weight_shape``); None on layers without weights (pooling,
        Flatten: ``has_weight`` is False) and before a weighted layer is initialised."""
        return self._weight

    @weight.setter
    def weight(self, value: ArrayLike) -> None:
        self._weight = self._checked_weight(value).copy()

    def _weight_array(self) -> np.ndarray:
        """``weight`` for code that needs the array: TypeError on a layer without weights,
        ValueError on a weighted layer that is not initialised yet (not in a network)."""
        if not self.has_weight:
            raise TypeError(f"{self!r} has no weight")
        w = self.weight
        if w is None:
            raise ValueError(f"{self!r} has no weight yet: put it in a Sequential (which "
                             "initialises it) or assign layer.weight")
        return w

    def _checked_weight(self, value: ArrayLike) -> np.ndarray:
        """``value`` as a float64 array of ``weight_shape``, finite and of magnitude at most
        1e100 (not copied); the errors of the ``weight`` setter."""
        if not self.has_weight:
            raise AttributeError(f"{type(self).__name__} has no weight")
        arr = v.float_array("weight", value, finite=False)
        if arr.shape != self.weight_shape:
            raise ValueError(f"weight of {self!r} must have shape {self.weight_shape}, got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"weight of {self!r} must be finite (no NaN or inf)")
        v.magnitude(f"weight of {self!r}", arr)  # |w| <= 1e100: no overflow to inf/NaN
        return arr

    @property
    def bias(self) -> Optional[np.ndarray]:
        """Trainable bias (Dense: (n_out,), Conv2d: one per output channel (C_out,)), or None
        (the default: no bias). Enters the dense ANTLR neuron as ``b_bias * bias`` in V every
        step (``eventsnn.dense.AntlrNeuron``); every other neuron model rejects a biased layer.
        Settable: an array of ``bias_shape`` (finite) turns the bias on, None turns it off."""
        return self._bias

    @bias.setter
    def bias(self, value: Optional[ArrayLike]) -> None:
        if not self.has_weight:
            raise AttributeError(f"{type(self).__name__} has no bias")
        if value is None:
            self._bias = None
            return
        arr = v.float_array("bias", value, finite=False)
        if arr.shape != self.bias_shape:
            raise ValueError(f"bias of {self!r} must have shape {self.bias_shape}, got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"bias of {self!r} must be finite (no NaN or inf)")
        self._bias = arr.copy()

    @property
    def has_bias(self) -> bool:
        """True when the layer holds a bias (``bias`` is not None)."""
        return self._bias is not None

    def _init_bias(self, bias):
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias must be a bool, got {type(bias).__name__}")
        if bias:
            self._bias = np.zeros(self.bias_shape)

    def bind(self, in_shape: Sequence[int]) -> Tuple[int, ...]:
        """Fix the input shape (called by Sequential) and return the output shape."""
        raise NotImplementedError

    def _bound(self, in_shape: Sequence[int], out_shape: Sequence[int]) -> Tuple[int, ...]:
        """Record the shapes of a bind; a layer belongs to one geometry for good, because a
        network that already holds it keeps using its shapes (a second bind to another
        shape would make that network read out of bounds)."""
        in_shape, out_shape = tuple(in_shape), tuple(out_shape)
        if self.in_shape is not None and (self.in_shape, self.out_shape) != (in_shape, out_shape):
            raise ValueError(f"{self!r} is already bound to input shape {self.in_shape} (it is part "
                             f"of another network); here it would get {in_shape}: use a new "
                             f"layer object for each network")
        self.in_shape, self.out_shape = in_shape, out_shape
        return out_shape

    def init_weight(self, rng: np.random.Generator) -> None:
        pass


class Dense(Layer):
    """Fully connected layer of ``n_out`` neurons; weight shape (n_out, n_in).

    Default weights are uniform in +-sqrt(6 / n_in) (He); eventsnn.init rescales them.
    ``bias=True`` adds a trainable per-neuron bias of shape (n_out,), initialised to zeros
    (dense ANTLR neuron only; see :attr:`Layer.bias`).

    The weights are stored as their transpose, a C-contiguous (n_in, n_out) array (the
    event kernels read the n_out weights of one input as one contiguous row); ``weight`` is
    a view of that storage with the shape (n_out, n_in), so in-place edits through it
    (``layer.weight[3, 4] = 0.5``, ``layer.weight *= 2``, optimiser steps) reach the
    kernels with no copy. Assigning ``layer.weight = array`` validates the array and
    copies it into new storage, as for every layer.
    """

    has_neurons = True
    has_weight = True

    def __init__(self, n_in: int, n_out: int, bias: bool = False) -> None:
        super().__init__()
        # W.T, C-contiguous (n_in, n_out); None until initialised (typed Any like _weight)
        self._weight_t: Any = None
        self.n_in_decl = v.positive_int("n_in", n_in)
        self.n_out_decl = v.positive_int("n_out", n_out)
        _check_size(f"Dense({self.n_in_decl}, {self.n_out_decl})",
                    neurons=max(self.n_in_decl, self.n_out_decl),
                    weights=self.n_in_decl * self.n_out_decl)
        self._init_bias(bias)

    @property
    def weight_shape(self) -> Tuple[int, int]:
        return (self.n_out_decl, self.n_in_decl)

    @property
    def bias_shape(self) -> Tuple[int]:
        return (self.n_out_decl,)

    def bind(self, in_shape: Sequence[int]) -> Tuple[int, ...]:
        if in_shape is not None and int(np.prod(in_shape)) != self.n_in_decl:
            raise ValueError(f"Dense(n_in={self.n_in_decl}) follows a layer of shape {tuple(in_shape)} "
                             f"({int(np.prod(in_shape))} neurons)")
        return self._bound(in_shape if in_shape is not None else (self.n_in_decl,),
                           (self.n_out_decl,))

    @property
    def weight(self) -> Optional[np.ndarray]:
        """The weight array (n_out, n_in): a transposed view of the layer's storage
        (``weight_t``), writable in place; None before the layer is initialised."""
        w = self._weight_t
        return None if w is None else w.T

    @weight.setter
    def weight(self, value: ArrayLike) -> None:
        # a new C-contiguous (n_in, n_out) copy, never a view of the caller's array
        self._weight_t = np.array(self._checked_weight(value).T, order="C", copy=True)

    @property
    def weight_t(self) -> Optional[np.ndarray]:
        """The stored transpose of ``weight``: a C-contiguous (n_in, n_out) array, the
        array the event kernels read (row j: the weights of input j to every neuron).
        Shares memory with ``weight``; None before the layer is initialised."""
        return self._weight_t

    def init_weight(self, rng: np.random.Generator) -> None:
        bound = np.sqrt(6.0 / self.n_in_decl)
        self.weight = rng.uniform(-bound, bound, size=self.weight_shape)

    def __repr__(self):
        extra = ", bias=True" if self.has_bias else ""
        return f"Dense({self.n_in_decl}, {self.n_out_decl}{extra})"


class Conv2d(Layer):
    """2-D convolution of ``out_channels`` SRM feature maps; weight (C_out, C_in, k, k).

    in_shape is (C_in, H, W); output is (C_out, (H + 2p - k)//s + 1, (W + 2p - k)//s + 1).
    ``bias=True`` adds a trainable bias per output channel, shape (C_out,), initialised to
    zeros (dense ANTLR neuron only; see :attr:`Layer.bias`).
    """

    has_neurons = True
    has_weight = True

    def __init__(self, in_shape: Sequence[int], out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = False) -> None:
        super().__init__()
        self.in_decl = v.shape3("in_shape", in_shape)
        self.out_channels = v.positive_int("out_channels", out_channels)
        self.kernel_size = v.positive_int("kernel_size", kernel_size)
        self.stride = v.positive_int("stride", stride)
        self.padding = v.positive_int("padding", padding, allow_zero=True)
        C, H, W = self.in_decl
        k, s, p = self.kernel_size, self.stride, self.padding
        if H + 2 * p < k or W + 2 * p < k:
            raise ValueError(f"kernel_size {k} is larger than the padded input {(H + 2 * p, W + 2 * p)}")
        n_pos = ((H + 2 * p - k) // s + 1) * ((W + 2 * p - k) // s + 1)
        _check_size(f"Conv2d({self.in_decl}, {self.out_channels}, kernel_size={k}, stride={s}, "
                    f"padding={p})", neurons=max(C * H * W, self.out_channels * n_pos),
                    weights=max(self.out_channels * C * k * k, self.out_channels * n_pos * C * k * k))
        self._csr: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]] = None
        self._wlink: Optional[np.ndarray] = None
        self._init_bias(bias)

    @property
    def weight_shape(self) -> Tuple[int, int, int, int]:
        return (self.out_channels, self.in_decl[0], self.kernel_size, self.kernel_size)

    @property
    def bias_shape(self) -> Tuple[int]:
        return (self.out_channels,)

    def bind(self, in_shape: Sequence[int]) -> Tuple[int, ...]:
        if in_shape is not None and int(np.prod(in_shape)) != int(np.prod(self.in_decl)):
            raise ValueError(f"Conv2d(in_shape={self.in_decl}) follows a layer of shape {tuple(in_shape)}")
        C, H, W = self.in_decl
        k, s, p = self.kernel_size, self.stride, self.padding
        return self._bound(self.in_decl,
                           (self.out_channels, (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1))

    def init_weight(self, rng: np.random.Generator) -> None:
        fan_in = self.in_decl[0] * self.kernel_size ** 2
        bound = np.sqrt(6.0 / fan_in)
        self._weight = rng.uniform(-bound, bound, size=self.weight_shape)

    def connectivity(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSR map from input neurons to their targets: (indptr, targets, weight_index).

        Input neuron j's targets are ``targets[indptr[j]:indptr[j+1]]`` and the weight of
        each link is ``weight.ravel()[weight_index[...]]``. Built once per geometry.
        """
        if self._csr is None:
            self._csr = _conv_csr(self.in_decl, self.out_shape, self.kernel_size, self.stride, self.padding)
        return self._csr

    def weight_link(self) -> np.ndarray:
        """For every entry of ``weight.ravel()``, the index of one CSR link that uses it
        (``connectivity``), -1 where no link does (a kernel position that only meets padding).
        Built once per geometry."""
        link = getattr(self, "_wlink", None)
        if link is None:
            _, _, widx = self.connectivity()
            link = np.full(int(np.prod(self.weight_shape)), -1, np.int64)
            link[widx[::-1]] = np.arange(widx.size - 1, -1, -1, dtype=np.int64)
            self._wlink = link
        return link

    def __repr__(self):
        extra = ", bias=True" if self.has_bias else ""
        return (f"Conv2d({self.in_decl}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}{extra})")


class _Pool(Layer):
    def __init__(self, kernel_size):
        super().__init__()
        self.kernel_size = v.positive_int("kernel_size", kernel_size)

    def bind(self, in_shape: Sequence[int]) -> Tuple[int, ...]:
        if in_shape is None or len(in_shape) != 3:
            raise ValueError(f"{type(self).__name__} needs a (C, H, W) input, got {in_shape}")
        C, H, W = in_shape
        k = self.kernel_size
        if H < k or W < k:
            raise ValueError(f"{type(self).__name__}({k}) is larger than its input {(H, W)}")
        # rows/columns beyond a whole window are dropped
        return self._bound(in_shape, (C, H // k, W // k))

    def pool_index(self):
        """For every input neuron, the index of its pooled unit (-1 if outside every window)."""
        C, H, W = self.in_shape
        k = self.kernel_size
        Ho, Wo = self.out_shape[1:]
        c, y, x = np.unravel_index(np.arange(C * H * W), (C, H, W))
        oy, ox = y // k, x // k
        inside = (oy < Ho) & (ox < Wo)
        return np.where(inside, c * Ho * Wo + oy * Wo + ox, -1).astype(np.int64)


class MaxPool2d(_Pool):
    """Max pooling over k x k windows, stride k: every input event of a window is relayed as
    an event of the pooled unit; coincident events of a window become one event with the
    largest value."""

    def __repr__(self):
        return f"MaxPool2d({self.kernel_size})"


class AvgPool2d(_Pool):
    """Average pooling over k x k windows, stride k: each input event is relayed with value
    v / k^2 (coincident events of a window summed into one event).

    ``adjusted=True`` (default) changes only the backward pass: a pooled event's gradient
    goes in equal shares g / n to its n coincident source events (sum conserved, Zhu et
    al.); ``adjusted=False`` sends g / k^2 to each source event."""

    def __init__(self, kernel_size: int, adjusted: bool = True) -> None:
        super().__init__(kernel_size)
        if not isinstance(adjusted, (bool, np.bool_)):
            raise TypeError(f"adjusted must be a bool, got {type(adjusted).__name__}")
        self.adjusted = bool(adjusted)

    def __repr__(self):
        return f"AvgPool2d({self.kernel_size}, adjusted={self.adjusted})"


class Flatten(Layer):
    """Changes the nominal shape to (n,); neuron numbering is already flat, so events pass
    unchanged."""

    def bind(self, in_shape: Sequence[int]) -> Tuple[int, ...]:
        return self._bound(in_shape, (int(np.prod(in_shape)),))

    def __repr__(self):
        return "Flatten()"


def reject_biases(layers: Sequence[Layer], what: str) -> None:
    """Raise ValueError if any of ``layers`` holds a bias: ``what`` (e.g. "event mode") has
    no bias term. Biases are supported by the dense ANTLR neuron only."""
    for k, layer in enumerate(layers):
        if layer.has_bias:
            raise ValueError(f"layer {k} ({layer!r}) has a bias, but {what} does not support biases: "
                             "biases are supported by the dense ANTLR neuron only (Sequential.run / "
                             "the activation and antlr rules with neuron='antlr' or an AntlrNeuron); "
                             "remove it with layer.bias = None")


def _conv_csr(in_shape, out_shape, k, s, p):
    C, H, W = in_shape
    Co, Ho, Wo = out_shape
    # enumerate all (out neuron, in neuron, weight) links of the convolution
    co, oy, ox, ci, ky, kx = np.meshgrid(np.arange(Co), np.arange(Ho), np.arange(Wo),
                                         np.arange(C), np.arange(k), np.arange(k), indexing="ij")
    y = oy * s - p + ky
    x = ox * s - p + kx
    ok = (y >= 0) & (y < H) & (x >= 0) & (x < W)
    src = (ci * H * W + y * W + x)[ok]
    tgt = (co * Ho * Wo + oy * Wo + ox)[ok]
    widx = (((co * C + ci) * k + ky) * k + kx)[ok]
    order = np.lexsort((tgt, src))
    src, tgt, widx = src[order], tgt[order], widx[order]
    indptr = np.zeros(C * H * W + 1, dtype=np.int64)
    np.add.at(indptr, src + 1, 1)
    return np.cumsum(indptr), tgt.astype(np.int64), widx.astype(np.int64)
