"""A few-channel convolution under a 2x2 max pool, computed directly: a first layer's
forward pass and weight gradient without im2col columns.

A first layer (one channel, 3x3 taps) has 9-deep columns: its GEMM does little work per
byte, and the fused path spends most of its time writing columns and the full-resolution
output and pooling it. Here each sample's padded image is split by column parity into planes
(C, 2, Hp, JW), so that every output of one pool phase (dy, dx) in {0, 1}^2, for a row
of pooled positions px, reads a contiguous run of a plane:

    out[o, 2py + dy, 2px + dx] = sum over (c, ky, kx) of weight[o, c, ky, kx] *
        plane[c, (dx + kx) % 2][2py + dy + ky, px + (dx + kx) // 2]

The forward pass sums the taps for all rows py at once in vector registers
(:func:`.rows.rows_sum`, one block of LANES positions per pooled row), adds the bias,
activates, and picks each window's winner across the four phase planes, lane by lane,
in max_planes_2x2's order (first maximum, first NaN, wins). The backward pass spreads
each window's gradient (dpooled times the activation's derivative at the winner) into
four phase planes, zero outside the winner, and sums their lane-wise products with the
shifted input planes into one vector per tap (:func:`.rows.lanes_sum`): the weight
gradient, without an input gradient (a first layer has none).

Samples are split into groups fixed by the batch size (conv.GROUP_SAMPLES), each summed
in order into a partial weight gradient, and the last thread out adds the groups in
order: results never depend on the thread count. Used by :mod:`.conv` in float32 for a
stride-1 convolution with at most MAX_TAPS (C*KH*KW) taps under a 2x2, stride-2 pool,
with ``FASTCNN_DIRECT`` not 0; the backward pass only where no dx is wanted.

The speedrun's conv1 (1 -> 16 at 28x28), batch 128, two threads, Zen 5: forward 0.55 ->
0.32 ms, backward 0.50 -> 0.40 ms against the im2col path; pytorch_cnn's step 5.02 ->
4.54 ms. Per sample on one thread: the split 0.5 us, the tap sums 3.3 us, the pick 0.9 us.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from . import gemm
from .claims import claim, claiming_threads, count_out, new_counter, wait_for
from .epilogue import activate_all, fold_unit, sum_partials
from .gemm import LANES
from .jit import inline_helper, launch, parallel_kernel, parallel_sum_kernel, prange
from .pool import _pick
from .rows import lanes_sum, rows_sum
from ..scratch import scratch
from .scalars import activation_code

MAX_TAPS = 32
"""Columns at most this deep (C*KH*KW) go here: timed at 9 taps (one channel, 3x3); RGB
3x3 (27) and one channel's 5x5 (25) are tested, not timed."""


def enabled() -> bool:
    """Read at every call (not frozen into the on-disk cache): FASTCNN_DIRECT=0 turns it
    off, e.g. to measure it against the im2col path."""
    return gemm.ENABLED and os.environ.get("FASTCNN_DIRECT", "1") != "0"


def applies(weight, x, stride, pool) -> bool:
    """True when a convolution with ``weight`` (O, C, KH, KW) on ``x`` (N, C, H, W) at
    ``stride``, under a max pool (kernel, stride, PH, PW), runs here."""
    _, channels, kernel_h, kernel_w = weight.shape
    return (enabled() and weight.dtype == np.float32 and x.dtype == np.float32
            and stride == 1 and tuple(pool[:2]) == (2, 2) and pool[2] > 0 and pool[3] > 0
            and channels * kernel_h * kernel_w <= MAX_TAPS)


def applies_backward(weight, x, stride, padding, pooled_shape, dx) -> bool:
    """True when the backward pass from the input of a convolution under a max pool
    whose output has ``pooled_shape`` (N, O, PH, PW) runs here: as :func:`applies`, with
    no dx wanted. The pool's kernel is not passed: it is 2 where PH, PW = OH // 2,
    OW // 2, unless the output is 3x3 (a 3x3 pool gives the same shape)."""
    out_h = x.shape[2] + 2 * padding - weight.shape[2] + 1
    out_w = x.shape[3] + 2 * padding - weight.shape[3] + 1
    pooled = tuple(pooled_shape[2:])
    return (dx is None and pooled == (out_h // 2, out_w // 2) and (out_h, out_w) != (3, 3)
            and applies(weight, x, stride, (2, 2) + pooled))


@functools.lru_cache(maxsize=64)
def _layout(channels, height, width, kernel_h, kernel_w, padding):
    """The geometry tuple and offset tables of one convolution, made once:
    geometry (C, H, W, KH, KW, padding, OH, OW, PH, PW, Hp, JW, NB), with NB blocks of
    LANES pooled columns and JW columns of each parity plane; taps (4, C*KH*KW): each
    phase's tap offsets in the split image; tap_blocks (2, C*KH*KW): the same for
    entries of one dx (their dy in the entry); row_blocks (PH*NB,): each block's offset
    (2py rows, chunk) in the split image; entry_rows (2*PH*NB,): (dy, py, chunk)'s;
    lane_blocks (C*KH*KW,): each tap's vector, b*LANES; pooled_blocks (PH*NB,): each
    block's place in a (PH, PW) plane; origins (PH*PW,) int32: each window's corner in the
    (OH, OW) plane."""
    lanes = gemm.LANES
    out_h, out_w = height + 2 * padding - kernel_h + 1, width + 2 * padding - kernel_w + 1
    pool_h, pool_w = out_h // 2, out_w // 2
    padded_h = height + 2 * padding
    blocks = -(-pool_w // lanes)
    split_w = max(-(-(width + 2 * padding) // 2), blocks * lanes + kernel_w // 2 + 1)
    c, ky, kx = np.meshgrid(np.arange(channels), np.arange(kernel_h), np.arange(kernel_w),
                            indexing="ij")
    c, ky, kx = c.reshape(-1), ky.reshape(-1), kx.reshape(-1)

    def tap_offsets(dy, dx):
        return ((c * 2 + (dx + kx) % 2) * padded_h + dy + ky) * split_w + (dx + kx) // 2

    taps = np.stack([tap_offsets(dy, dx) for dy in (0, 1) for dx in (0, 1)])
    tap_blocks = np.stack([tap_offsets(0, dx) for dx in (0, 1)])
    py, chunk = np.meshgrid(np.arange(pool_h), np.arange(blocks), indexing="ij")
    row_blocks = (2 * py * split_w + chunk * lanes).reshape(-1)
    entry_rows = np.concatenate([row_blocks + dy * split_w for dy in (0, 1)])
    lane_blocks = np.arange(c.size) * lanes
    pooled_blocks = (py * pool_w + chunk * lanes).reshape(-1)
    tables = tuple(table.astype(np.int64) for table in
                   (taps, tap_blocks, row_blocks, entry_rows, lane_blocks, pooled_blocks))
    py, px = np.meshgrid(np.arange(pool_h), np.arange(pool_w), indexing="ij")
    tables += ((2 * py * out_w + 2 * px).astype(np.int32).reshape(-1),)
    for table in tables:
        table.flags.writeable = False
    geometry = (channels, height, width, kernel_h, kernel_w, padding, out_h, out_w, pool_h,
                pool_w, padded_h, split_w, blocks)
    return (geometry,) + tables


def _image_size(geometry) -> int:
    return geometry[0] * 2 * geometry[10] * geometry[11]


def _plane_size(geometry) -> int:
    """Floats of one phase plane: PH rows of NB blocks."""
    return geometry[8] * geometry[12] * gemm.LANES


def forward(x, weight, bias, padding, activation, flat_pooled, flat_argmax):
    """conv2d_maxpool_forward's pooled output and argmax (see the contract) for ``x`` (N, C,
    H, W) and ``weight`` (O, C, KH, KW); flat_pooled, flat_argmax (N*O*PH*PW,), the
    argmax None where nothing reads it (inference)."""
    batch = x.shape[0]
    filters, channels, kernel_h, kernel_w = weight.shape
    geometry, taps, _, row_blocks, _, _, pooled_blocks, origins = _layout(
        channels, x.shape[2], x.shape[3], kernel_h, kernel_w, padding)
    work = batch * filters * geometry[6] * geometry[7] * taps.shape[1]
    threads = claiming_threads(batch, work)
    floats = scratch("direct conv floats", (threads, _image_size(geometry) + 4 * geometry[8]
                                            * geometry[9] + gemm.LANES), np.float32)
    values_only = flat_argmax is None
    if values_only:
        flat_argmax = np.empty(0, np.int32)
    launch(_forward, work, x.reshape(-1), geometry, np.ascontiguousarray(weight).reshape(-1),
           bias, activation_code(activation), taps, row_blocks, pooled_blocks, origins,
           flat_pooled, flat_argmax, values_only, floats, filters, threads, new_counter())


def backward(dpooled, argmax, pooled, weight, x, padding, activation, dweight, dbias, groups):
    """conv2d_maxpool_backward_from_input without dx (see the contract): dweight (O, C, KH,
    KW) and dbias (O,) or None, from ``groups`` fixed groups of samples."""
    batch = x.shape[0]
    filters, channels, kernel_h, kernel_w = weight.shape
    geometry, _, tap_blocks, _, entry_rows, lane_blocks, _, _ = _layout(
        channels, x.shape[2], x.shape[3], kernel_h, kernel_w, padding)
    count = tap_blocks.shape[1]
    work = batch * filters * geometry[6] * geometry[7] * count
    threads = claiming_threads(groups, work)
    floats = scratch("direct conv floats", (threads, _image_size(geometry)
                                            + 4 * _plane_size(geometry)), np.float32)
    sums = scratch("direct conv tap sums", (threads, filters * count * gemm.LANES), np.float32)
    launch(_backward, work, dpooled.reshape(-1), argmax.reshape(-1), pooled.reshape(-1),
           activation_code(activation), x.reshape(-1), geometry, filters, groups, tap_blocks,
           entry_rows, lane_blocks, scratch("direct conv partial dweight", (groups, weight.size),
                                            np.float64),
           scratch("conv partial dbias", (groups, filters), np.float64), floats, sums,
           dweight.reshape(-1), dbias, threads, new_counter())


@inline_helper
def _split(flat_x, n, geometry, image):
    """image (C*2*Hp*JW,) = sample n of flat_x (N*C*H*W,), padded and split by column
    parity; the padding is never written (zero from the caller)."""
    channels, height, width, _, _, padding, _, _, _, _, padded_h, split_w, _ = geometry
    for c in range(channels):
        for y in range(height):
            source = ((n * channels + c) * height + y) * width
            row = (c * 2 * padded_h + y + padding) * split_w
            for parity in range(2):
                first = (padding + parity) % 2  # the first x whose padded column has parity
                at = row + parity * padded_h * split_w + (first + padding) // 2
                for k in range((width - first + 1) // 2):
                    image[at + k] = flat_x[source + first + 2 * k]


@parallel_kernel
def _forward(flat_x, geometry, weights, bias, code, taps, row_blocks, pooled_blocks, origins,
             flat_pooled, flat_argmax, values_only, floats, filters, threads, counter):
    """flat_x (N*C*H*W,); weights (O*C*KH*KW,); taps, row_blocks, pooled_blocks, origins
    from _layout; flat_pooled, flat_argmax (N*O*PH*PW,) (the argmax empty with
    ``values_only``); floats (threads, split image + 4 pooled planes + LANES) scratch.

    Each phase plane is laid out as the pooled output, (PH, PW): a block of LANES that
    runs past its row's end is overwritten by the next row's block, stored after it, and
    the last one spills into the next phase's plane (computed after) or the LANES
    floats of slack. So the pick runs over whole planes, as long vector loops."""
    channels, _, _, _, _, _, _, out_w, pool_h, pool_w, padded_h, split_w, nb = geometry
    count = taps.shape[1]
    image_size = channels * 2 * padded_h * split_w
    plane = pool_h * pool_w
    blocks = pool_h * nb
    batch = flat_x.size // (channels * geometry[1] * geometry[2])
    w32 = np.int32(out_w)
    for t in prange(threads):
        mine = floats[t]
        image, planes = mine[:image_size], mine[image_size:image_size + 4 * plane + LANES]
        image[:] = 0
        top, right = planes[:plane], planes[plane:2 * plane]
        below, corner = planes[2 * plane:3 * plane], planes[3 * plane:4 * plane]
        n = claim(counter)
        while n < batch:
            _split(flat_x, n, geometry, image)
            for o in range(filters):
                for phase in range(4):
                    rows_sum(count, weights, o * count, taps[phase], 0, image, row_blocks,
                             planes, phase * plane, pooled_blocks, blocks, False)
                if bias is not None:
                    shift = bias[o]
                    for k in range(4 * plane):
                        planes[k] += shift
                activate_all(planes[:4 * plane], code)
                at = (n * filters + o) * plane
                pooled = flat_pooled[at:at + plane]
                if values_only:
                    for k in range(plane):  # the picks below, without the argmax
                        upper, _ = _pick(right[k], 1, top[k], 0)
                        lower, _ = _pick(corner[k], 1, below[k], 0)
                        pooled[k], _ = _pick(lower, 1, upper, 0)
                else:
                    where = flat_argmax[at:at + plane]
                    for k in range(plane):
                        upper, upper_at = _pick(right[k], np.int32(1), top[k], np.int32(0))
                        lower, lower_at = _pick(corner[k], w32 + 1, below[k], w32)
                        best, best_at = _pick(lower, lower_at, upper, upper_at)
                        pooled[k] = best
                        where[k] = origins[k] + best_at
            n = claim(counter)
        count_out(counter)
        wait_for(counter, threads)


@parallel_sum_kernel
def _backward(flat_dpooled, flat_argmax, flat_pooled, code, flat_x, geometry, filters, groups,
              tap_blocks, entry_rows, lane_blocks, partial, partial_dbias, floats, sums,
              flat_dweight, dbias, threads, counter):
    """flat_dpooled, flat_argmax, flat_pooled (N*O*PH*PW,); flat_x (N*C*H*W,); tables from
    _layout; partial (groups, O*C*KH*KW) and partial_dbias (groups, O) float64 the
    groups' sums; floats (threads, split image + 4 phase planes) and sums (threads,
    O*C*KH*KW*LANES) scratch; flat_dweight (O*C*KH*KW,) and dbias (O,) or None get the
    totals."""
    channels, _, _, _, _, _, _, out_w, pool_h, pool_w, padded_h, split_w, nb = geometry
    count = tap_blocks.shape[1]
    image_size = channels * 2 * padded_h * split_w
    stride = nb * LANES
    plane = pool_h * stride
    entries = 2 * pool_h * nb  # one dx's: (dy, py, chunk)
    pooled_size = pool_h * pool_w
    batch = flat_x.size // (channels * geometry[1] * geometry[2])
    for t in prange(threads):
        mine, tap_sums = floats[t], sums[t]
        image, planes = mine[:image_size], mine[image_size:image_size + 4 * plane]
        image[:] = 0
        planes[:] = 0  # the last row of the batch writes only up to the arrays' end
        g = claim(counter)
        while g < groups:
            first = g * batch // groups
            for o in range(filters):
                partial_dbias[g, o] = 0
            for n in range(first, (g + 1) * batch // groups):
                _split(flat_x, n, geometry, image)
                for o in range(filters):
                    total = 0.0
                    for py in range(pool_h):
                        base = (n * filters + o) * pooled_size + py * pool_w
                        origin = 2 * py * out_w
                        # whole blocks (the lanes past PW masked to zero) vectorise; the
                        # very last row of the batch stops at the arrays' end
                        span = min(stride, flat_dpooled.size - base)
                        dpooled = flat_dpooled[base:base + span]
                        pooled = flat_pooled[base:base + span]
                        argmax = flat_argmax[base:base + span]
                        row = py * stride  # planes in entry order: (dx, dy, py, lane)
                        p00 = planes[row:row + span]
                        p10 = planes[plane + row:plane + row + span]
                        p01 = planes[2 * plane + row:2 * plane + row + span]
                        p11 = planes[3 * plane + row:3 * plane + row + span]
                        for px in range(span):
                            d = fold_unit(dpooled[px], pooled[px], code)
                            d = d if px < pool_w else np.float32(0)
                            at = argmax[px] - origin - 2 * px
                            dy = at >= out_w
                            right = at != (out_w if dy else 0)
                            zero = np.float32(0)
                            p00[px] = d if not dy and not right else zero
                            p10[px] = d if dy and not right else zero
                            p01[px] = d if not dy and right else zero
                            p11[px] = d if dy and right else zero
                            total += d
                    partial_dbias[g, o] += total
                    for dx in range(2):
                        lanes_sum(entries, planes, dx * 2 * plane, entry_rows, 0, image,
                                  tap_blocks[dx], tap_sums, o * count * LANES, lane_blocks,
                                  count, n != first or dx != 0)
            for o in range(filters):
                for tap in range(count):
                    at = (o * count + tap) * LANES
                    value = 0.0
                    for lane in range(LANES):
                        value += tap_sums[at + lane]
                    partial[g, o * count + tap] = value
            g = claim(counter)
        if count_out(counter) == threads:
            sum_partials(partial, flat_dweight)
            if dbias is not None:
                sum_partials(partial_dbias, dbias)
            count_out(counter)
        wait_for(counter, threads + 1)
