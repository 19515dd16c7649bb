"""Layer operations of the dense (time-stepped) mode on flat neuron arrays.

Every function works on arrays whose last axis is the flat neuron index of a layer (C
order: ``c*H*W + y*W + x``) and whose leading axes are anything, usually ``(T, B)``:

- :func:`forward` maps a layer's input ``(..., n_in)`` to ``(..., n_out)``: the input
  currents ``W x`` of Dense/Conv2d, the pooled values of MaxPool2d/AvgPool2d, ``x`` itself
  for Flatten;
- :func:`backward_input` is the gradient with respect to the layer input
  (``(..., n_out) -> (..., n_in)``);
- :func:`grad_weight` is the weight gradient summed over all leading axes.

They are the exact derivatives of :func:`forward` (pooling: max routes the gradient to the
first maximal input of the window in row-major order, as ``torch.max_pool2d`` does).

Average pooling returns ``pool_weight * mean`` of each k x k window (default 1.0: the mean).
The TSSL-BP and NA reference codes pool by *summing* each window with weight 1.1 per input;
pass ``pool_weight = 1.1 * k * k`` for that. Rows/columns beyond the last whole window are
dropped (stride = k), as in :class:`eventsnn.layers.MaxPool2d`.

Vectorised numpy (im2col, chunked to bound memory).
"""
from __future__ import annotations

import numbers

import numpy as np

from ..layers import AvgPool2d, Conv2d, Dense, Flatten, Layer, MaxPool2d
from typing import Optional, cast

#: bytes of one im2col chunk of a Conv2d layer (bounds the temporary memory)
_CHUNK_BYTES = 1 << 25


def _check_layer(layer):
    if not isinstance(layer, Layer):
        raise TypeError(f"layer must be an eventsnn layer, got {type(layer).__name__}")
    if layer.in_shape is None:
        raise ValueError(f"layer {layer!r} is not bound to an input shape (put it in a Sequential)")
    if layer.has_weight and layer.weight is None:
        raise ValueError(f"layer {layer!r} has no weight")


def _as_flat(name, arr, n):
    if not isinstance(arr, np.ndarray):
        try:
            arr = np.asarray(arr, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a float array") from None
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim < 1 or arr.shape[-1] != n:
        raise ValueError(f"{name} must have shape (..., {n}), got {arr.shape}")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    return arr


def _pool_weight(value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"pool_weight must be a finite real number, got {value!r}")
    return float(value)


# ---- public -------------------------------------------------------------------------------
def forward(layer: Layer, x: np.ndarray, pool_weight: float = 1.0) -> np.ndarray:
    """Layer output of input ``x``.

    Parameters
    ----------
    layer : Dense, Conv2d, MaxPool2d, AvgPool2d or Flatten (bound, i.e. inside a Sequential)
    x : float array (..., n_in)
        Input spikes/values per step, flat neuron index last; usually (T, B, n_in).
    pool_weight : float
        Multiplier of pooled values (default 1.0; AvgPool2d then gives the window mean).

    Returns
    -------
    float array (..., n_out): ``x @ W.T`` for Dense, the convolution for Conv2d (no bias),
    the pooled values for pooling layers, ``x`` for Flatten.
    """
    _check_layer(layer)
    x = _as_flat("x", x, layer.n_in)
    lead = x.shape[:-1]
    if isinstance(layer, Dense):
        out = x.reshape(-1, layer.n_in) @ layer._weight_array().T
    elif isinstance(layer, Conv2d):
        out = _conv_forward(layer, x.reshape(-1, layer.n_in))
    elif isinstance(layer, MaxPool2d):
        win = _windows(layer, x.reshape(-1, layer.n_in))
        out = win.max(axis=-1) * _pool_weight(pool_weight)
    elif isinstance(layer, AvgPool2d):
        win = _windows(layer, x.reshape(-1, layer.n_in))
        out = win.mean(axis=-1) * _pool_weight(pool_weight)
    elif isinstance(layer, Flatten):
        return x
    else:
        raise TypeError(f"no dense-mode operation for layer {layer!r}")
    return out.reshape(lead + (layer.n_out,))


def backward_input(layer: Layer, grad_out: np.ndarray, x: Optional[np.ndarray] = None,
                   pool_weight: float = 1.0) -> np.ndarray:
    """Gradient with respect to the layer input.

    Parameters
    ----------
    layer : bound layer
    grad_out : float array (..., n_out)
        dL/d(output of :func:`forward`).
    x : float array (..., n_in) or None
        The forward input; needed by MaxPool2d only (to find the maximal inputs).
    pool_weight : float
        Same multiplier as in :func:`forward`.

    Returns
    -------
    float array (..., n_in): dL/dx.
    """
    _check_layer(layer)
    g = _as_flat("grad_out", grad_out, layer.n_out)
    lead = g.shape[:-1]
    if isinstance(layer, Dense):
        out = g.reshape(-1, layer.n_out) @ layer.weight
    elif isinstance(layer, Conv2d):
        out = _conv_backward_input(layer, g.reshape(-1, layer.n_out))
    elif isinstance(layer, (MaxPool2d, AvgPool2d)):
        pw = _pool_weight(pool_weight)
        C, H, W = layer.in_shape
        k = layer.kernel_size
        _, Ho, Wo = layer.out_shape
        g2 = g.reshape(-1, C, Ho, Wo)
        if isinstance(layer, MaxPool2d):
            if x is None:
                raise ValueError("backward_input of MaxPool2d needs the forward input x")
            x = _as_flat("x", x, layer.n_in)
            if x.shape[:-1] != lead:
                raise ValueError(f"x has leading shape {x.shape[:-1]} but grad_out has {lead}")
            win = _windows(layer, x.reshape(-1, layer.n_in))  # (N, C, Ho, Wo, k*k)
            arg = win.argmax(axis=-1)
            local = np.zeros(win.shape)
            np.put_along_axis(local, arg[..., None], (g2 * pw)[..., None], axis=-1)
        else:
            local = np.broadcast_to((g2 * (pw / (k * k)))[..., None], g2.shape + (k * k,))
        full = np.zeros((g2.shape[0], C, H, W))
        # (N, C, Ho, Wo, k, k) -> (N, C, Ho, k, Wo, k) -> (N, C, Ho*k, Wo*k)
        blocks = local.reshape(g2.shape[0], C, Ho, Wo, k, k).transpose(0, 1, 2, 4, 3, 5)
        full[:, :, :Ho * k, :Wo * k] = blocks.reshape(g2.shape[0], C, Ho * k, Wo * k)
        out = full.reshape(-1, layer.n_in)
    elif isinstance(layer, Flatten):
        return g
    else:
        raise TypeError(f"no dense-mode operation for layer {layer!r}")
    return out.reshape(lead + (layer.n_in,))


def grad_weight(layer: Layer, x: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
    """Weight gradient, summed over all leading axes (steps and samples).

    Parameters
    ----------
    layer : Dense or Conv2d (bound)
    x : float array (..., n_in), the forward input
    grad_out : float array (..., n_out), dL/d(input current) with the same leading shape

    Returns
    -------
    float array of the weight's shape: Dense (n_out, n_in) = sum grad_out^T x; Conv2d
    (C_out, C_in, k, k). Layers without weight raise ValueError.
    """
    _check_layer(layer)
    if not layer.has_weight:
        raise ValueError(f"layer {layer!r} has no weight")
    x = _as_flat("x", x, layer.n_in)
    g = _as_flat("grad_out", grad_out, layer.n_out)
    if x.shape[:-1] != g.shape[:-1]:
        raise ValueError(f"x has leading shape {x.shape[:-1]} but grad_out has {g.shape[:-1]}")
    x2 = x.reshape(-1, layer.n_in)
    g2 = g.reshape(-1, layer.n_out)
    if isinstance(layer, Dense):
        return g2.T @ x2
    return _conv_grad_weight(layer, x2, g2)


def neuron_bias(layer: Layer) -> Optional[np.ndarray]:
    """The bias of every neuron of a biased Dense/Conv2d layer, flat (n_out,) in C order
    (Conv2d: each channel's bias repeated over its H x W positions); None without a bias."""
    _check_layer(layer)
    if not layer.has_bias:
        return None
    if isinstance(layer, Conv2d):
        return np.repeat(cast(np.ndarray, layer.bias), layer.n_out // layer.out_channels)
    return cast(np.ndarray, layer.bias).copy()


def grad_bias(layer: Layer, grad_neuron: np.ndarray) -> np.ndarray:
    """Bias gradient from per-neuron gradients ``grad_neuron`` (..., n_out) (dL/d(bias of
    each neuron), e.g. (B, n_out)): summed over the leading axes, and for Conv2d over each
    channel's positions. Returns an array of ``layer.bias_shape``."""
    _check_layer(layer)
    if not layer.has_weight:
        raise ValueError(f"layer {layer!r} has no bias")
    g = _as_flat("grad_neuron", grad_neuron, layer.n_out).reshape(-1, layer.n_out).sum(axis=0)
    if isinstance(layer, Conv2d):
        return g.reshape(layer.out_channels, -1).sum(axis=1)
    return g


# ---- pooling -----------------------------------------------------------------------------
def _windows(layer, x2):
    """(N, n_in) -> (N, C, Ho, Wo, k*k) window values (row-major inside the window)."""
    C, H, W = layer.in_shape
    k = layer.kernel_size
    _, Ho, Wo = layer.out_shape
    N = x2.shape[0]
    img = x2.reshape(N, C, H, W)[:, :, :Ho * k, :Wo * k]
    return img.reshape(N, C, Ho, k, Wo, k).transpose(0, 1, 2, 4, 3, 5).reshape(N, C, Ho, Wo, k * k)


# ---- convolution ---------------------------------------------------------------------------
def _conv_geometry(layer):
    C, H, W = layer.in_shape
    Co, Ho, Wo = layer.out_shape
    return C, H, W, Co, Ho, Wo, layer.kernel_size, layer.stride, layer.padding


def _chunks(layer, N):
    C, H, W, Co, Ho, Wo, k, s, p = _conv_geometry(layer)
    per_sample = Ho * Wo * C * k * k * 8
    step = max(1, _CHUNK_BYTES // max(per_sample, 1))
    for a in range(0, N, step):
        yield a, min(N, a + step)


def _im2col(layer, x2):
    """(n, n_in) -> (n * Ho * Wo, C * k * k) patches."""
    C, H, W, Co, Ho, Wo, k, s, p = _conv_geometry(layer)
    n = x2.shape[0]
    img = x2.reshape(n, C, H, W)
    if p:
        img = np.pad(img, ((0, 0), (0, 0), (p, p), (p, p)))
    win = np.lib.stride_tricks.sliding_window_view(img, (k, k), axis=(2, 3))
    win = win[:, :, ::s, ::s][:, :, :Ho, :Wo]  # (n, C, Ho, Wo, k, k)
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * Ho * Wo, C * k * k)


def _conv_forward(layer, x2):
    C, H, W, Co, Ho, Wo, k, s, p = _conv_geometry(layer)
    N = x2.shape[0]
    wmat = layer.weight.reshape(Co, C * k * k)
    out = np.empty((N, Co, Ho * Wo))
    for a, b in _chunks(layer, N):
        cols = _im2col(layer, x2[a:b]) @ wmat.T  # (n*Ho*Wo, Co)
        out[a:b] = cols.reshape(b - a, Ho * Wo, Co).transpose(0, 2, 1)
    return out.reshape(N, Co * Ho * Wo)


def _conv_backward_input(layer, g2):
    C, H, W, Co, Ho, Wo, k, s, p = _conv_geometry(layer)
    N = g2.shape[0]
    wmat = layer.weight.reshape(Co, C * k * k)
    out = np.empty((N, C, H, W))
    for a, b in _chunks(layer, N):
        n = b - a
        gcols = g2[a:b].reshape(n, Co, Ho * Wo).transpose(0, 2, 1).reshape(n * Ho * Wo, Co)
        pcols = (gcols @ wmat).reshape(n, Ho, Wo, C, k, k)
        padded = np.zeros((n, C, H + 2 * p, W + 2 * p))
        for ky in range(k):
            for kx in range(k):
                padded[:, :, ky:ky + s * (Ho - 1) + 1:s, kx:kx + s * (Wo - 1) + 1:s] += \
                    pcols[:, :, :, :, ky, kx].transpose(0, 3, 1, 2)
        out[a:b] = padded[:, :, p:p + H, p:p + W]
    return out.reshape(N, C * H * W)


def _conv_grad_weight(layer, x2, g2):
    C, H, W, Co, Ho, Wo, k, s, p = _conv_geometry(layer)
    N = x2.shape[0]
    acc = np.zeros((Co, C * k * k))
    for a, b in _chunks(layer, N):
        n = b - a
        gcols = g2[a:b].reshape(n, Co, Ho * Wo).transpose(0, 2, 1).reshape(n * Ho * Wo, Co)
        acc += gcols.T @ _im2col(layer, x2[a:b])
    return acc.reshape(Co, C, k, k)
