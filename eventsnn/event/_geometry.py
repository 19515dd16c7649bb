"""Conv2d geometry shared by the forward and backward kernels."""
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def input_span(j, HW, W, Ho, Wo, k, stride, pad):
    """Input neuron j = c*H*W + y*W + x of a Conv2d layer: its channel and position
    (ci, y, x) and the output rows oy0..oy1 and columns ox0..ox1 (inclusive) whose receptive
    fields hold it, i.e. 0 <= y + pad - oy*stride < k (columns alike)."""
    ci = j // HW
    yx = j - ci * HW
    y = yx // W
    x = yx - y * W
    oy0 = max(0, (y + pad - k + stride) // stride)
    oy1 = min(Ho - 1, (y + pad) // stride)
    ox0 = max(0, (x + pad - k + stride) // stride)
    ox1 = min(Wo - 1, (x + pad) // stride)
    return ci, y, x, oy0, oy1, ox0, ox1
