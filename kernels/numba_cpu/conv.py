"""Convolution: parallel im2col/col2im kernels around per-sample BLAS GEMMs.

Layouts (see fastcnn.kernels.contract): x (N, C, H, W); weight (O, C, KH, KW)
viewed as (O, K); cols (N, K, P) with K = C*KH*KW and P = OH*OW; out (N, O, OH, OW)
viewed as (N, O, P), which ``weight @ cols[n]`` writes directly.

The im2col/col2im loops index flattened arrays with unsigned offsets: numba
then skips its negative-index wrap-around check, which is what lets LLVM
vectorise the row copies (3x faster than signed indexing at conv2's shape).
GEMMs are ``np.dot`` inside jitted serial code (SciPy's BLAS), never inside a
``prange`` body, so BLAS threads and numba threads take turns.
"""

from __future__ import annotations

import numpy as np

from ..contract import conv_output_size
from .epilogue import activation_grad_bias_sum, bias_activation
from .jit import inline_helper, parallel_kernel, prange, serial_kernel
from .scalars import activation_code


@inline_helper
def _fill_zero(flat, start, count):
    for k in range(count):
        flat[start + np.uint64(k)] = 0


@inline_helper
def _valid_range(offset, padding, stride, out_size, in_size):
    """[lo, hi): the output positions o whose input position o*stride + offset - padding is in [0, in_size)."""
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


@serial_kernel
def _sample_gemms(weight2d, cols, out3):
    """out3[n] = weight2d @ cols[n] for every sample (BLAS, serial loop)."""
    for n in range(cols.shape[0]):
        np.dot(weight2d, cols[n], out3[n])


@serial_kernel
def _summed_sample_gemms(dout3, cols, dweight2d):
    """dweight2d = sum over n of dout3[n] @ cols[n].T; one (O, K) scratch, no per-sample copies."""
    if cols.shape[0] == 0:
        dweight2d[:] = 0
        return
    np.dot(dout3[0], cols[0].T, dweight2d)
    if cols.shape[0] > 1:
        scratch = np.empty_like(dweight2d)
        for n in range(1, cols.shape[0]):
            np.dot(dout3[n], cols[n].T, scratch)
            dweight2d += scratch


@serial_kernel
def _conv_forward(x, weight2d, bias, code, planes, geometry, cols, out3):
    _im2col(x.reshape(-1), planes, geometry, cols.reshape(-1))
    _sample_gemms(weight2d, cols, out3)
    bias_activation(out3, bias, code)


@serial_kernel
def _conv_backward(dout3, out3, weight2d, cols, code, planes, geometry, dx, dweight2d, dbias, dcols):
    activation_grad_bias_sum(dout3, out3, code, dbias)
    _summed_sample_gemms(dout3, cols, dweight2d)
    if dx is not None:
        _sample_gemms(weight2d.T, dout3, dcols)
        _col2im(dcols.reshape(-1), planes, geometry, dx.reshape(-1))


# ---- contract functions -------------------------------------------------------------
def im2col(x, kernel_h, kernel_w, stride, padding, cols):
    _im2col(x.reshape(-1), *_geometry(x.shape, kernel_h, kernel_w, stride, padding), cols.reshape(-1))


def col2im(cols, kernel_h, kernel_w, stride, padding, dx):
    _col2im(cols.reshape(-1), *_geometry(dx.shape, kernel_h, kernel_w, stride, padding), dx.reshape(-1))


def _as_matrix(weight):
    """(O, C, KH, KW) -> view (O, C*KH*KW)."""
    return weight.reshape(weight.shape[0], -1)


def _as_rows(images):
    """(N, O, OH, OW) -> view (N, O, OH*OW)."""
    return images.reshape(images.shape[0], images.shape[1], -1)


def conv2d_forward(x, weight, bias, stride, padding, activation, cols, out):
    planes, geometry = _geometry(x.shape, weight.shape[2], weight.shape[3], stride, padding)
    _conv_forward(x, _as_matrix(weight), bias, activation_code(activation), planes, geometry,
                  cols, _as_rows(out))


def conv2d_backward(dout, out, weight, cols, stride, padding, activation, dx, dweight, dbias, dcols):
    # without dx there is no col2im, and no input shape to take its geometry from
    planes, geometry = ((0, (0,) * 8) if dx is None else
                        _geometry(dx.shape, weight.shape[2], weight.shape[3], stride, padding))
    _conv_backward(_as_rows(dout), _as_rows(out), _as_matrix(weight), cols,
                   activation_code(activation), planes, geometry, dx, _as_matrix(dweight), dbias, dcols)
