"""Convolution: parallel im2col/col2im kernels around per-sample BLAS GEMMs.

Layouts (see fastcnn.kernels.contract): x (N, C, H, W); weight (O, C, KH, KW)
viewed as (O, K); cols (N, K, P) with K = C*KH*KW and P = OH*OW; out (N, O, OH, OW)
viewed as (N, O, P), which ``weight @ cols[n]`` writes directly.

The im2col/col2im loops index flattened arrays with unsigned offsets: numba
then skips its negative-index wrap-around check, which is what lets LLVM
vectorise the row copies (3x faster than signed indexing at conv2's shape).
GEMMs are NumPy ``matmul`` calls between the jitted kernels: NumPy's BLAS (no
SciPy needed), one call per layer for the whole batch, never inside a ``prange``
body, so BLAS threads and numba threads take turns. The backward pass needs no
temporary of its own beyond the caller's dcols workspace (see _weight_gradient).
"""

from __future__ import annotations

import numpy as np

from ..contract import conv_output_size
from .epilogue import activation_grad_bias_sum, bias_activation
from .jit import inline_helper, launch, parallel_kernel, prange
from .scalars import activation_code


@inline_helper
def _fill_zero(flat, start, count):
    for k in range(count):
        flat[start + np.uint64(k)] = 0


@inline_helper
def _valid_range(offset, padding, stride, out_size, in_size):
    """[lo, hi): the output positions o that read input position o*stride + offset - padding
    inside [0, in_size) rather than padding."""
    lo = min(out_size, max(0, (padding - offset + stride - 1) // stride))
    hi = max(lo, min(out_size, (in_size - 1 + padding - offset) // stride + 1))
    return lo, hi


@inline_helper
def _row_offsets(plane, i, j, oy, ox, geometry):
    """Flat offsets of cols[n, c*KH*KW + i*KW + j, oy*OW + ox] and of the input pixel it reads.

    cols[n, c*KH*KW + r, p] sits at (n*C + c)*KH*KW*P + r*P + p: each (n, c)
    plane owns one contiguous block of cols. Unsigned, for the reason above.
    """
    height, width, kernel_h, kernel_w, stride, padding, out_h, out_w = geometry
    cols_at = ((plane * kernel_h + i) * kernel_w + j) * out_h * out_w + oy * out_w + ox
    image_at = (plane * height + oy * stride + i - padding) * width + ox * stride + j - padding
    return np.uint64(cols_at), np.uint64(image_at)


@parallel_kernel
def _im2col(flat_x, planes, geometry, flat_cols):
    height, width, kernel_h, kernel_w, stride, padding, out_h, out_w = geometry
    step = np.uint64(stride)
    for plane in prange(planes):
        for i in range(kernel_h):
            y_lo, y_hi = _valid_range(i, padding, stride, out_h, height)
            for j in range(kernel_w):
                x_lo, x_hi = _valid_range(j, padding, stride, out_w, width)
                block, _ = _row_offsets(plane, i, j, 0, 0, geometry)
                _fill_zero(flat_cols, block, y_lo * out_w)  # rows of padding above
                for oy in range(y_lo, y_hi):
                    dst, src = _row_offsets(plane, i, j, oy, x_lo, geometry)
                    _fill_zero(flat_cols, dst - np.uint64(x_lo), x_lo)
                    if stride == 1:  # contiguous source: vector loads instead of gathers
                        for k in range(x_hi - x_lo):
                            flat_cols[dst + np.uint64(k)] = flat_x[src + np.uint64(k)]
                    else:
                        for k in range(x_hi - x_lo):
                            flat_cols[dst + np.uint64(k)] = flat_x[src + np.uint64(k) * step]
                    _fill_zero(flat_cols, dst + np.uint64(x_hi - x_lo), out_w - x_hi)
                _fill_zero(flat_cols, block + np.uint64(y_hi * out_w), (out_h - y_hi) * out_w)


@parallel_kernel
def _col2im(flat_cols, planes, geometry, flat_dx):
    height, width, kernel_h, kernel_w, stride, padding, out_h, out_w = geometry
    step = np.uint64(stride)
    # each (n, c) plane of dx is owned by one iteration: overlapping windows add up without races
    for plane in prange(planes):
        _fill_zero(flat_dx, np.uint64(plane * height * width), height * width)
        for i in range(kernel_h):
            y_lo, y_hi = _valid_range(i, padding, stride, out_h, height)
            for j in range(kernel_w):
                x_lo, x_hi = _valid_range(j, padding, stride, out_w, width)
                for oy in range(y_lo, y_hi):
                    src, dst = _row_offsets(plane, i, j, oy, x_lo, geometry)
                    if stride == 1:
                        for k in range(x_hi - x_lo):
                            flat_dx[dst + np.uint64(k)] += flat_cols[src + np.uint64(k)]
                    else:
                        for k in range(x_hi - x_lo):
                            flat_dx[dst + np.uint64(k) * step] += flat_cols[src + np.uint64(k)]


def _geometry(image_shape, kernel_h, kernel_w, stride, padding):
    """(N*C planes, (H, W, KH, KW, stride, padding, OH, OW)) for an image of shape (N, C, H, W)."""
    batch, channels, height, width = image_shape
    return batch * channels, (height, width, kernel_h, kernel_w, stride, padding,
                              conv_output_size(height, kernel_h, stride, padding),
                              conv_output_size(width, kernel_w, stride, padding))


# ---- contract functions -------------------------------------------------------------
def im2col(x, kernel_h, kernel_w, stride, padding, cols):
    planes, geometry = _geometry(x.shape, kernel_h, kernel_w, stride, padding)
    launch(_im2col, cols.size, x.reshape(-1), planes, geometry, cols.reshape(-1))


def col2im(cols, kernel_h, kernel_w, stride, padding, dx):
    planes, geometry = _geometry(dx.shape, kernel_h, kernel_w, stride, padding)
    launch(_col2im, cols.size, cols.reshape(-1), planes, geometry, dx.reshape(-1))


def _as_matrix(weight):
    """(O, C, KH, KW) -> view (O, C*KH*KW)."""
    return weight.reshape(weight.shape[0], -1)


def _as_rows(images):
    """(N, O, OH, OW) -> view (N, O, OH*OW)."""
    return images.reshape(images.shape[0], images.shape[1], -1)


def _weight_gradient(dout3, cols, dweight, dcols):
    """dweight (O, C, KH, KW) = sum over n of dout3[n] (O, P) @ cols[n].T (P, K).

    One batched GEMM writes every sample's product into an (N, O, K) scratch,
    then a sum over samples; the scratch is the dcols workspace (N, K, P) when
    it is big enough (O <= P, as in every usual conv), not yet in use at this point."""
    batch, channels = dout3.shape[0], dout3.shape[1]
    shape = (batch, channels, cols.shape[1])
    size = batch * channels * cols.shape[1]
    if dcols is not None and dcols.size >= size:
        scratch = dcols.reshape(-1)[:size].reshape(shape)
    else:
        scratch = np.empty(shape, dout3.dtype)
    np.matmul(dout3, cols.transpose(0, 2, 1), out=scratch)
    scratch.sum(axis=0, out=_as_matrix(dweight))


def conv2d_forward(x, weight, bias, stride, padding, activation, cols, out):
    im2col(x, weight.shape[2], weight.shape[3], stride, padding, cols)
    out3 = _as_rows(out)
    np.matmul(_as_matrix(weight), cols, out=out3)
    launch(bias_activation, out.size, out3, bias, activation_code(activation))


def conv2d_backward(dout, out, weight, cols, stride, padding, activation,
                    dx, dweight, dbias, dcols):
    dout3 = _as_rows(dout)
    code = activation_code(activation)
    launch(activation_grad_bias_sum, dout.size, dout3, _as_rows(out), code, dbias)
    _weight_gradient(dout3, cols, dweight, dcols)
    if dx is not None:
        np.matmul(_as_matrix(weight).T, dout3, out=dcols)
        col2im(dcols, weight.shape[2], weight.shape[3], stride, padding, dx)
