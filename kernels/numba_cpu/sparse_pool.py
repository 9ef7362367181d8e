"""A convolution's backward pass under a max pool, from the pool's sparse gradient.

A max pool passes its gradient to one winner per window, so the convolution's output
gradient dout (O, OH, OW) is zero outside the winners: under a 2x2 pool, three values in
four are zero, and more where the activation's derivative is zero too (ReLU at a
non-positive pooled value). The dense backward pass multiplies those zeros anyway (the
weight gradient's GEMM, the input gradient's Winograd or implicit GEMM). Here each
sample's nonzero (filter o, winner p, value d) entries drive both products directly:

    dweight[o, :, i, j] += d * x_padded[:, p_y*s + i, p_x*s + j]      (per entry)
    dx_padded[:, p_y*s + i, p_x*s + j] += d * weight[o, :, i, j]      (per entry)

one multiply-add per nonzero, input channel and tap, against one per output position
in the dense pass. Both run on :mod:`.rows`'s register-accumulated sums along channels,
in channels-last copies (x padded, the filters (O, KH, KW, C), dx padded): the weight
gradient of filter o sums its entries' shifted input rows; the input gradient at winner
position p sums the filters of the entries that won there (grouped by position per
sample, in filter order).

Per sample, one thread, batch 128 (Zen 5): the speedrun's conv3 (32 -> 64 at 7x7) 25 ->
11-14.5 us, its conv2 (16 -> 32 at 14x14) 27-30 -> 20.5-22 us. A gradient that is NaN or
infinite is not zero and is kept; but an input's NaN or infinity reaches the weight
gradient only through the nonzero entries that multiply it (the dense pass also spreads
it through the zeros: 0 * inf is NaN).

Samples are split into groups fixed by the batch size (conv.GROUP_SAMPLES), each summed
in order into a partial weight gradient (O, KH*KW*C), and the last thread out adds the
groups in order: results never depend on the thread count. Used by :mod:`.conv` for
``conv2d_maxpool_backward_from_input`` in float32 when the input channels fill whole
vectors (a multiple of gemm.LANES) and with ``FASTCNN_SPARSE`` not 0.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from . import gemm
from .claims import claim, claiming_threads, count_out, new_counter, wait_for
from .epilogue import fold_unit, sum_partials
from .jit import inline_helper, launch, parallel_sum_kernel, prange
from .rows import rows_sum
from ..scratch import scratch
from .scalars import activation_code


def enabled() -> bool:
    """Read at every call (not frozen into the on-disk cache): FASTCNN_SPARSE=0 turns it
    off, e.g. to measure it against the dense backward pass."""
    return gemm.ENABLED and os.environ.get("FASTCNN_SPARSE", "1") != "0"


def applies(weight, x, dtype) -> bool:
    """True when the backward pass of a convolution with ``weight`` (O, C, KH, KW) on
    ``x`` (N, C, H, W) under a max pool, its gradient in ``dtype``, runs here."""
    return (enabled() and dtype == np.float32 and weight.dtype == np.float32
            and x.dtype == np.float32 and weight.shape[1] % gemm.LANES == 0)


@parallel_sum_kernel
def _backward(flat_dpooled, flat_argmax, flat_pooled, code, flat_x, filters_cl, sizes, geometry,
              groups, positions, image_blocks, filter_blocks, want_dx, flat_dx, partial,
              partial_dbias, floats, offsets, dweight2d, dbias, threads, counter):
    """flat_dpooled, flat_argmax (each winner's index in its OH x OW plane) and flat_pooled
    (N*O*PH*PW,); flat_x and flat_dx (N*C*H*W,); filters_cl (O*KH*KW*C,) the filters
    channels-last; sizes (N, O, C, PH*PW); geometry (H, W, KH, KW, stride, padding, OH,
    OW); positions (OH*OW,): each output position's window corner in the padded
    channels-last image; image_blocks and filter_blocks (KH*KW*C/LANES,): each vector
    block's offset from that corner and in a filter. Per-thread scratch: floats
    (threads, 2 padded images + 2*O*PH*PW) and offsets (threads, 3*O*PH*PW + O + 1 +
    2*OH*OW). partial (groups, O*KH*KW*C) and partial_dbias (groups, O) float64 hold the
    groups' sums; dweight2d (O, C*KH*KW) and dbias (O,) or None get their totals."""
    batch, filters, channels, pooled_size = sizes
    height, width, kernel_h, kernel_w, stride, padding, out_h, out_w = geometry
    padded_w = width + 2 * padding
    image = (height + 2 * padding) * padded_w * channels
    taps = kernel_h * kernel_w
    row = taps * channels
    blocks = image_blocks.size
    entries, plane = filters * pooled_size, out_h * out_w
    for t in prange(threads):
        mine, ints = floats[t], offsets[t]
        x_cl, dx_cl = mine[:image], mine[image:2 * image]
        coef, by_position = mine[2 * image:2 * image + entries], mine[2 * image + entries:]
        rows, wins = ints[:entries], ints[entries:2 * entries]
        filter_rows, starts = ints[2 * entries:3 * entries], ints[3 * entries:]
        count, first_at = starts[filters + 1:filters + 1 + plane], starts[filters + 1 + plane:]
        x_cl[:] = 0  # the padding stays zero: each sample writes the inside only
        g = claim(counter)
        while g < groups:
            first = g * batch // groups
            for o in range(filters):
                partial_dbias[g, o] = 0
            for n in range(first, (g + 1) * batch // groups):
                for c in range(channels):
                    source = (n * channels + c) * height * width
                    for y in range(height):
                        at = (y + padding) * padded_w + padding
                        for x in range(width):
                            x_cl[(at + x) * channels + c] = flat_x[source + y * width + x]
                m = 0
                for o in range(filters):
                    starts[o] = m
                    base = (n * filters + o) * pooled_size
                    total = 0.0
                    for k in range(pooled_size):
                        d = fold_unit(flat_dpooled[base + k], flat_pooled[base + k], code)
                        win = flat_argmax[base + k]
                        coef[m], rows[m], wins[m] = d, positions[win], win
                        m += np.int64(d != 0)
                        total += d
                    partial_dbias[g, o] += total
                    rows_sum(m - starts[o], coef, starts[o], rows, starts[o], x_cl, image_blocks,
                             partial[g], o * row, filter_blocks, blocks, n != first)
                starts[filters] = m
                if want_dx:
                    _input_gradient(coef, wins, starts, filters, row, plane, count, first_at,
                                    by_position, filter_rows, filters_cl, positions,
                                    image_blocks, filter_blocks, dx_cl)
                    for c in range(channels):
                        target = (n * channels + c) * height * width
                        for y in range(height):
                            at = (y + padding) * padded_w + padding
                            for x in range(width):
                                flat_dx[target + y * width + x] = dx_cl[(at + x) * channels + c]
            g = claim(counter)
        if count_out(counter) == threads:
            # the groups' sums in order, a row at a time (an element at a time, with a
            # division for its place, cost 6.7 us a sample at the speedrun's conv3)
            total = np.empty(row, np.float32)
            for o in range(filters):
                part = partial[0, o * row:(o + 1) * row]
                for at in range(row):
                    total[at] = part[at]
                for h in range(1, groups):
                    part = partial[h, o * row:(o + 1) * row]
                    for at in range(row):
                        total[at] += part[at]
                target = dweight2d[o]  # channels-last (KH, KW, C) to (C, KH, KW)
                for tap in range(taps):
                    for c in range(channels):
                        target[c * taps + tap] = total[tap * channels + c]
            if dbias is not None:
                sum_partials(partial_dbias, dbias)
            count_out(counter)
        wait_for(counter, threads + 1)


@inline_helper
def _input_gradient(coef, wins, starts, filters, row, plane, count, first_at, by_position,
                    filter_rows, filters_cl, positions, image_blocks, filter_blocks, dx_cl):
    """dx_cl (padded channels-last image) = the sum, at each winner position, of the
    filters (channels-last rows of filters_cl) of the entries that won there, scaled:
    the entries coef/wins of filter o at starts[o] .. starts[o + 1] - 1, regrouped by
    position (count, first_at (OH*OW,); by_position and filter_rows their values and
    filters, in filter order)."""
    entries = starts[filters]
    count[:] = 0
    for e in range(entries):
        count[wins[e]] += 1
    total = 0
    for p in range(plane):
        first_at[p] = total
        total += count[p]
        count[p] = 0
    for o in range(filters):
        for e in range(starts[o], starts[o + 1]):
            p = wins[e]
            at = first_at[p] + count[p]
            count[p] += 1
            by_position[at], filter_rows[at] = coef[e], o * row
    dx_cl[:] = 0
    for p in range(plane):
        if count[p] > 0:
            rows_sum(count[p], by_position, first_at[p], filter_rows, first_at[p], filters_cl,
                     filter_blocks, dx_cl, positions[p], image_blocks, image_blocks.size, True)


@functools.lru_cache(maxsize=64)
def _offsets(channels, height, width, kernel_h, kernel_w, stride, padding):
    """(positions (OH*OW,), image_blocks, filter_blocks (KH*KW*C/LANES,)) int64 for
    _backward, made once per geometry (NumPy's meshgrids cost 50-100 us a call)."""
    padded_w = width + 2 * padding
    out_h = (height + 2 * padding - kernel_h) // stride + 1
    out_w = (width + 2 * padding - kernel_w) // stride + 1
    y, x = np.meshgrid(np.arange(out_h), np.arange(out_w), indexing="ij")
    positions = ((y * stride * padded_w + x * stride) * channels).astype(np.int64).reshape(-1)
    i, j, c = np.meshgrid(np.arange(kernel_h), np.arange(kernel_w),
                          np.arange(0, channels, gemm.LANES), indexing="ij")
    image_blocks = ((i * padded_w + j) * channels + c).astype(np.int64).reshape(-1)
    filter_blocks = ((i * kernel_w + j) * channels + c).astype(np.int64).reshape(-1)
    for table in (positions, image_blocks, filter_blocks):
        table.flags.writeable = False
    return positions, image_blocks, filter_blocks


def backward(dpooled, argmax, pooled, weight, x, stride, padding, activation, dx, dweight,
             dbias, groups):
    """conv2d_maxpool_backward_from_input (see the contract) in ``groups`` fixed groups of
    samples."""
    batch, channels, height, width = x.shape
    filters, _, kernel_h, kernel_w = weight.shape
    positions, image_blocks, filter_blocks = _offsets(channels, height, width, kernel_h,
                                                      kernel_w, stride, padding)
    out_h = (height + 2 * padding - kernel_h) // stride + 1
    out_w = (width + 2 * padding - kernel_w) // stride + 1
    pooled_size = pooled.shape[2] * pooled.shape[3]
    image = (height + 2 * padding) * (width + 2 * padding) * channels
    entries = filters * pooled_size
    work = batch * filters * (pooled_size + kernel_h * kernel_w * channels)
    threads = claiming_threads(groups, work)
    floats = scratch("sparse pool floats", (threads, 2 * image + 2 * entries), np.float32)
    offsets = scratch("sparse pool offsets",
                      (threads, 3 * entries + filters + 1 + 2 * out_h * out_w), np.int64)
    launch(_backward, work, dpooled.reshape(-1), argmax.reshape(-1), pooled.reshape(-1),
           activation_code(activation), x.reshape(-1),
           np.ascontiguousarray(weight.transpose(0, 2, 3, 1)).reshape(-1),
           (batch, filters, channels, pooled_size),
           (height, width, kernel_h, kernel_w, stride, padding, out_h, out_w), groups, positions,
           image_blocks, filter_blocks, dx is not None,
           x.reshape(-1) if dx is None else dx.reshape(-1),
           scratch("sparse pool partial dweight", (groups, weight.size), np.float32),
           scratch("conv partial dbias", (groups, filters), np.float64), floats, offsets,
           dweight.reshape(filters, -1), dbias, threads, new_counter())
