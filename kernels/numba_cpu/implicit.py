"""Implicit-GEMM convolution at stride 1: the product reads its padded input in place.

At stride 1, im2col's row (c, i, j) of a plane padded to (H + 2p) x (W + 2p) is a
window of that padded plane shifted by i*(W + 2p) + j, if the output is computed on the
padded row width Wp = W + 2p ("wide" rows whose last KW - 1 columns are discarded). So
one copy of the input with its padding replaces im2col and the packing of its columns:
the micro-kernel reads B's row k at ``offsets[k]`` in that copy (gemm.multiply_shifted).
The wide output, OH x Wp in whole NR-column tiles, is then copied to the OH x OW output.

Shapes: one sample's input x (C, H, W), flat; the filters A (O, C*KH*KW) packed in
MR-row panels; the output (O, OH*OW). The same routine gives a convolution's input
gradient, as the "full" convolution of the output gradient (O, OH, OW), padded by
KH - 1 - p, with the filters flipped and transposed (:func:`flipped_filters`).

The weight gradient reads the same windows as its A operand (:func:`weight_gradient_sample`):
im2col's row (c, i, j) at output row y is the padded input's row y + i of plane c from
column j, so the micro-kernel walks each window row by row (gemm.multiply_windows) and
the output gradient's transpose (P, O) is packed as usual, with no wide columns to
discard. (A first attempt, in a session before, packed that transpose wide and read A
along wide rows; on mnist_speedrun it moved the step by under 2% and was left out.)
"""

from __future__ import annotations

import os

import numpy as np
from numba.core import types
from numba.extending import overload

from . import gemm
from .gemm import MR, NR, multiply_shifted, multiply_windows, pack_columns_b, packed_size
from .jit import inline_helper


def enabled() -> bool:
    """Read at every call (not frozen into the on-disk cache): FASTCNN_IMPLICIT=0 turns it
    off, e.g. to measure it against im2col."""
    return gemm.ENABLED and os.environ.get("FASTCNN_IMPLICIT", "1") != "0"


@inline_helper
def _padded(height, width, kernel_h, kernel_w, padding):
    """(Hp, Wp, OH, OW, wide columns Q rounded up to whole NR tiles)."""
    padded_h, padded_w = height + 2 * padding, width + 2 * padding
    out_h, out_w = padded_h - kernel_h + 1, padded_w - kernel_w + 1
    return padded_h, padded_w, out_h, out_w, -(-out_h * padded_w // NR) * NR


def scratch_size(channels, height, width, filters, kernel_h, kernel_w, padding) -> int:
    """Floats of one thread's scratch: the padded input with the slack its last tile reads,
    the wide output (O, Q) and an edge tile."""
    padded_h, padded_w, _, _, columns = _padded(height, width, kernel_h, kernel_w, padding)
    reach = (channels - 1) * padded_h * padded_w + (kernel_h - 1) * padded_w + kernel_w - 1
    return max(channels * padded_h * padded_w, reach + columns) + filters * columns + MR * NR


def offsets(channels, height, width, kernel_h, kernel_w, padding) -> np.ndarray:
    """(C*KH*KW,) int64: where row (c, i, j) of the implicit columns starts in the padded input."""
    padded_h, padded_w = height + 2 * padding, width + 2 * padding
    c, i, j = np.meshgrid(np.arange(channels), np.arange(kernel_h), np.arange(kernel_w),
                          indexing="ij")
    return (c * padded_h * padded_w + i * padded_w + j).astype(np.int64).reshape(-1)


def window_offsets(channels, height, width, kernel_h, kernel_w, padding) -> np.ndarray:
    """:func:`offsets`, zero-padded to whole MR panels (gemm.multiply_windows)."""
    rows = offsets(channels, height, width, kernel_h, kernel_w, padding)
    padded = np.zeros(-(-rows.size // MR) * MR, np.int64)
    padded[:rows.size] = rows
    return padded


def weight_gradient_scratch_size(channels, height, width, filters, kernel_h, kernel_w,
                                 padding) -> int:
    """Floats of one thread's scratch for :func:`weight_gradient_sample`: the padded input,
    the output gradient's transpose packed in NR-column panels, and an edge tile."""
    padded_h, padded_w, out_h, out_w, _ = _padded(height, width, kernel_h, kernel_w, padding)
    return channels * padded_h * padded_w + -(-filters // NR) * NR * out_h * out_w + MR * NR


def flipped_filters(weight) -> np.ndarray:
    """weight (O, C, KH, KW) -> (C, O*KH*KW), rotated by 180 degrees: the filters whose
    convolution of the output gradient (padded by KH - 1 - p) is the input gradient."""
    return np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
                                .reshape(weight.shape[1], -1))


@inline_helper
def _pad(flat_x, first_plane, channels, height, width, padding, padded_h, padded_w, padded):
    """padded = 0, then planes first_plane .. + C of flat_x (each H x W) inside its
    (C, Hp, Wp) planes at (padding, padding)."""
    padded[:] = 0
    for c in range(channels):
        source = (first_plane + c) * height * width
        for y in range(height):
            at = (c * padded_h + y + padding) * padded_w + padding
            row = flat_x[source + y * width:source + (y + 1) * width]
            target = padded[at:at + width]
            for x in range(width):
                target[x] = row[x]


@inline_helper
def convolve_sample(flat_x, first_plane, channels, height, width, kernel_h, kernel_w, padding,
                    packed_a, filters, row_offsets, work, out):
    """out (O*OH*OW,) = the stride-1 convolution of planes first_plane .. + C of flat_x
    (each H x W) with the packed filters (O, C*KH*KW); ``work`` one thread's scratch
    (scratch_size floats), row_offsets from :func:`offsets`."""
    padded_h, padded_w, out_h, out_w, columns = _padded(height, width, kernel_h, kernel_w,
                                                        padding)
    wide_at = work.size - filters * columns - MR * NR
    padded, wide = work[:wide_at], work[wide_at:wide_at + filters * columns]
    _pad(flat_x, first_plane, channels, height, width, padding, padded_h, padded_w, padded)
    multiply_shifted(packed_a, filters, columns, channels * kernel_h * kernel_w, padded,
                     row_offsets, wide, columns, work[work.size - MR * NR:])
    for o in range(filters):
        for y in range(out_h):
            row = wide[o * columns + y * padded_w:o * columns + y * padded_w + out_w]
            target = out[(o * out_h + y) * out_w:(o * out_h + y + 1) * out_w]
            for x in range(out_w):
                target[x] = row[x]



def weight_gradient_sample(flat_x, first_plane, channels, height, width, kernel_h, kernel_w,
                           padding, d, row_offsets, work, total, accumulate):
    """total (C*KH*KW, O) [+]= columns (C*KH*KW, OH*OW) @ d (O, OH*OW).T at stride 1, the
    columns (im2col's of planes first_plane .. + C of flat_x, each H x W) read as windows
    of the padded input; d C-contiguous; row_offsets from :func:`window_offsets`; ``work``
    one thread's scratch (weight_gradient_scratch_size floats). float32 only: in other
    dtypes (compiled into the same kernels, never called) it does nothing."""


@overload(weight_gradient_sample, inline="always")
def _weight_gradient_sample_by_dtype(flat_x, first_plane, channels, height, width, kernel_h,
                                     kernel_w, padding, d, row_offsets, work, total, accumulate):
    if d.dtype == types.float32 and total.dtype == types.float32:
        return _weight_gradient_windows
    return lambda flat_x, first_plane, channels, height, width, kernel_h, kernel_w, padding, \
        d, row_offsets, work, total, accumulate: None


def _weight_gradient_windows(flat_x, first_plane, channels, height, width, kernel_h, kernel_w,
                             padding, d, row_offsets, work, total, accumulate):
    padded_h, padded_w, out_h, out_w, _ = _padded(height, width, kernel_h, kernel_w, padding)
    filters, positions = d.shape[0], out_h * out_w
    plane = channels * padded_h * padded_w
    packed_at = plane + packed_size(filters, positions, NR)
    padded, packed_b = work[:plane], work[plane:packed_at]
    _pad(flat_x, first_plane, channels, height, width, padding, padded_h, padded_w, padded)
    pack_columns_b(d.reshape(-1), positions, positions, filters, packed_b)
    multiply_windows(padded, row_offsets, channels * kernel_h * kernel_w, out_h, out_w, padded_w,
                     packed_b, filters, total.reshape(-1), filters, accumulate,
                     work[packed_at:packed_at + MR * NR])
