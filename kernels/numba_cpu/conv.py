"""Convolution: parallel im2col/col2im kernels around per-sample BLAS GEMMs.

Layouts (see fastcnn.kernels.contract): x (N, C, H, W); weight (O, C, KH, KW)
viewed as (O, K); cols (N, K, P) with K = C*KH*KW and P = OH*OW; out (N, O, OH, OW)
viewed as (N, O, P), which ``weight @ cols[n]`` writes directly.

The im2col/col2im loops index flattened arrays with unsigned offsets: numba
then skips its negative-index wrap-around check, which is what lets LLVM
vectorise the row copies (3x faster than signed indexing at conv2's shape).
conv2d_forward and conv2d_backward are each one parallel region over the samples:
a thread takes a sample through im2col, its GEMMs and the epilogue while its rows
are in cache, so every core runs GEMMs and no BLAS thread pool competes with
numba's. conv2d_maxpool_forward/backward (contract.FUSED) max pool each sample's
planes in the same iteration, and scatter the pool's gradient there: one parallel
region per direction instead of two, which saves the second thread's wake-up and the
Python between them (pytorch_cnn's fit() steps 4-7% faster). The GEMMs are
:mod:`.gemm`'s: the own micro-kernel for float32 (its AVX-512 or AVX2 tile), else
``np.dot`` in the jitted code (single-threaded BLAS through SciPy's bindings, see jit.py). Measured at conv2 of pytorch_cnn (batch 64,
2 cores, Zen 5): NumPy matmul over the batch on one BLAS thread 110 GFLOP/s, per-sample
np.dot 195 GFLOP/s (forward 3.1 ms, backward 5.8 ms), the micro-kernel forward 2.0 ms,
backward 3.7-3.9 ms. 3x3 stride-1 convolutions with at least 32 channels in and out
take :mod:`.winograd`'s F(2x2, 3x3) for the forward product and the input gradient
instead (pytorch_cnn's conv2 on Zen 4, batch 64, 2 threads: forward 3.24 -> 2.7 ms,
backward 6.45 -> 5.3-5.7 ms); the weight gradient keeps the im2col GEMM. In training the
forward pass writes no columns either (contract.FROM_INPUT): the backward pass rebuilds
each sample's from the layer's input, in cache (pytorch_cnn's conv2 forward on Zen 5,
batch 64: 1.87 -> 1.42 ms). With a fused max pool it writes no full-resolution output
either: the backward pass takes the activation's derivative from the pooled output
(each window's winner holds it) and scatters the pool's gradient into a per-thread
plane (mnist_speedrun's training step on one Zen 5 thread, batch 128: conv1 forward
1.92 -> 1.43 ms, backward 1.61 -> 1.24 ms; the step 19.5 -> 16.8 ms). Other stride-1
convolutions without kept columns take :mod:`.implicit`'s GEMM, which reads a padded copy
of the input in place, for the forward product and the input gradient (mnist_speedrun's
step with its conv2, 16 -> 32 channels at 14 x 14, batch 128, Zen 5: 16.6 -> 15.1 ms on
one thread, 9.96 -> 9.20 ms on two). Under a max pool, the backward pass from the pooled
output takes :mod:`.sparse_pool`'s, which multiplies only the pool's nonzero gradients,
where the input channels fill whole vectors (mnist_speedrun's step, batch 128, Zen 5:
14.1 -> 12.2 ms on one thread, 8.04 -> 6.81 ms on two). A few-channel first layer under a
2x2 pool (at most direct.MAX_TAPS taps) skips the columns altogether: :mod:`.direct`
computes it and its weight gradient from the image split by column parity.
"""

from __future__ import annotations

import numpy as np

from ..contract import conv_output_size
from . import gemm
from .gemm import matmul, matmul_transposed, packed_operand
from .claims import claim, claiming_threads, count_out, new_counter, wait_for
from .epilogue import activate_row, fold_activation_row, fold_max_plane_backward, sum_partials
from .jit import (inline_helper, launch, parallel_kernel, parallel_sum_kernel,
                  prange)
from .pool import max_plane, max_plane_values, max_planes_2x2
from ..scratch import scratch
from .scalars import activation_code
from . import direct, implicit, sparse_pool, winograd
from .implicit import convolve_sample as _implicit
from .implicit import weight_gradient_sample as _weight_gradient_sample
from .winograd import convolve_sample as _winograd


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


@inline_helper
def _im2col_plane(flat_x, plane, target, geometry, flat_cols, runs):
    """The KH*KW rows of cols that input plane ``plane`` (= n*C + c) owns, written where
    plane ``target`` owns them (itself, or a plane of a scratch buffer). With ``runs``, at
    stride 1 with OW == W, each row (i, j) is one contiguous copy (_copy_shifted_rows): for
    a sample's columns about to be multiplied while in cache (conv2 forward 1.95 -> 1.63 ms).
    Streaming a whole batch of columns to memory it was slower with AVX-512 (0.76 against
    0.45 ms), so the stand-alone im2col keeps row-by-row copies."""
    height, width, kernel_h, kernel_w, stride, padding, out_h, out_w = geometry
    step = np.uint64(stride)
    shift = np.int64(target - plane) * kernel_h * kernel_w * out_h * out_w
    for i in range(kernel_h):
        y_lo, y_hi = _valid_range(i, padding, stride, out_h, height)
        for j in range(kernel_w):
            x_lo, x_hi = _valid_range(j, padding, stride, out_w, width)
            block, _ = _row_offsets(plane, i, j, 0, 0, geometry)
            block = np.uint64(np.int64(block) + shift)
            _fill_zero(flat_cols, block, y_lo * out_w)  # rows of padding above
            if runs and stride == 1 and out_w == width and y_lo < y_hi and x_lo < x_hi:
                _copy_shifted_rows(flat_x, plane, i, j, y_lo, y_hi, x_lo, x_hi, geometry,
                                   flat_cols, block)
                _fill_zero(flat_cols, block + np.uint64(y_hi * out_w), (out_h - y_hi) * out_w)
                continue
            for oy in range(y_lo, y_hi):
                dst, src = _row_offsets(plane, i, j, oy, x_lo, geometry)
                dst = np.uint64(np.int64(dst) + shift)
                _fill_zero(flat_cols, dst - np.uint64(x_lo), x_lo)
                if stride == 1:  # contiguous source: vector loads instead of gathers
                    for k in range(x_hi - x_lo):
                        flat_cols[dst + np.uint64(k)] = flat_x[src + np.uint64(k)]
                else:
                    for k in range(x_hi - x_lo):
                        flat_cols[dst + np.uint64(k)] = flat_x[src + np.uint64(k) * step]
                _fill_zero(flat_cols, dst + np.uint64(x_hi - x_lo), out_w - x_hi)
            _fill_zero(flat_cols, block + np.uint64(y_hi * out_w), (out_h - y_hi) * out_w)


@inline_helper
def _copy_shifted_rows(flat_x, plane, i, j, y_lo, y_hi, x_lo, x_hi, geometry, flat_cols, block):
    """Rows y_lo .. y_hi - 1 of the im2col row (i, j) when OW == W at stride 1: they are the
    input plane shifted by a constant, so one contiguous copy (from the first valid pixel to
    the last) writes them all; the columns that wrapped around a row edge are zeroed after.
    Short rows copied one by one cost their loop set-up each time: 3x slower at conv2."""
    width, padding = geometry[1], geometry[5]
    origin = (plane * geometry[0] + y_lo + i - padding) * width + x_lo + j - padding
    first = np.uint64(y_lo * width + x_lo)
    count = (y_hi - 1 - y_lo) * width + x_hi - x_lo
    source = np.uint64(origin)
    for k in range(count):
        flat_cols[block + first + np.uint64(k)] = flat_x[source + np.uint64(k)]
    for oy in range(y_lo, y_hi):
        row = block + np.uint64(oy * width)
        _fill_zero(flat_cols, row, x_lo)
        _fill_zero(flat_cols, row + np.uint64(x_hi), width - x_hi)


@inline_helper
def _col2im_from(flat_cols, source, plane, geometry, flat_dx, scratch):
    """Input-gradient plane ``plane`` (= n*C + c) from the KH*KW rows of cols that plane
    ``source`` owns (itself, or a scratch slice holding them), overlaps summed. With
    ``scratch`` (those rows are the caller's to overwrite) and OW == W at stride 1, the
    entries of padding columns are zeroed and each row (i, j) is added as one contiguous
    run, as in _copy_shifted_rows."""
    height, width, kernel_h, kernel_w, stride, padding, out_h, out_w = geometry
    step = np.uint64(stride)
    shift = np.int64(source - plane) * kernel_h * kernel_w * out_h * out_w
    _fill_zero(flat_dx, np.uint64(plane * height * width), height * width)
    for i in range(kernel_h):
        y_lo, y_hi = _valid_range(i, padding, stride, out_h, height)
        for j in range(kernel_w):
            x_lo, x_hi = _valid_range(j, padding, stride, out_w, width)
            if scratch and stride == 1 and out_w == width and y_lo < y_hi and x_lo < x_hi:
                block, _ = _row_offsets(plane, i, j, 0, 0, geometry)
                block = np.uint64(np.int64(block) + shift)
                for oy in range(y_lo, y_hi):
                    row = block + np.uint64(oy * width)
                    _fill_zero(flat_cols, row, x_lo)
                    _fill_zero(flat_cols, row + np.uint64(x_hi), width - x_hi)
                first = block + np.uint64(y_lo * width + x_lo)
                target = np.uint64((plane * height + y_lo + i - padding) * width
                                   + x_lo + j - padding)
                for k in range((y_hi - 1 - y_lo) * width + x_hi - x_lo):
                    flat_dx[target + np.uint64(k)] += flat_cols[first + np.uint64(k)]
                continue
            for oy in range(y_lo, y_hi):
                src, dst = _row_offsets(plane, i, j, oy, x_lo, geometry)
                src = np.uint64(np.int64(src) + shift)
                if stride == 1:
                    for k in range(x_hi - x_lo):
                        flat_dx[dst + np.uint64(k)] += flat_cols[src + np.uint64(k)]
                else:
                    for k in range(x_hi - x_lo):
                        flat_dx[dst + np.uint64(k) * step] += flat_cols[src + np.uint64(k)]


@parallel_kernel
def _im2col(flat_x, planes, geometry, flat_cols):
    for plane in prange(planes):
        _im2col_plane(flat_x, plane, plane, geometry, flat_cols, False)


@parallel_kernel
def _col2im(flat_cols, planes, geometry, flat_dx):
    # each (n, c) plane of dx is owned by one iteration: overlapping windows add up without races
    for plane in prange(planes):
        _col2im_from(flat_cols, plane, plane, geometry, flat_dx, False)  # cols: the caller's


@parallel_kernel
def _forward(flat_x, channels, geometry, weight2d, packed_weight, bias, code, cols, out3, scratch,
             pool, flat_pooled, flat_argmax, own_rows, values_only, wino, packed_u, work,
             implicit, row_offsets, packed_f32, picks, picks_at, threads, counter):
    """Per sample, on one thread: im2col, the GEMM weight2d (O, K) @ its columns (K, P)
    into out3[n] (O, P), bias and activation, while the columns and out3[n] are still in
    cache. The columns go to cols[n] (N, K, P), kept for the backward pass, or with
    ``scratch`` (inference) to the thread's own slice of cols (threads, K, P). Each of
    the ``threads`` claims its next sample from ``counter`` (see .claims).

    With ``pool`` (kernel, stride, PH, PW), kernel > 0: then each plane of out3[n] is max
    pooled into flat_pooled and flat_argmax (N*O*PH*PW,), in the same parallel region.
    With ``own_rows`` (nothing reads the full-resolution output later: inference, or a
    backward pass _from_input) out3 (threads, O, P) is per-thread scratch: a sample's
    full-resolution output stays in cache instead of streaming to memory (pytorch_cnn's
    first layer writes 100 MB of it per 1000 images). With ``values_only`` (inference)
    flat_argmax (threads*O*PH*PW,) is per-thread scratch too, and the pool skips its
    argmax where it can. A 2x2, stride-2 pool with its argmax takes all of a sample's
    planes at once (max_planes_2x2, with the thread's scratch picks and picks_at
    (threads, O*P)) after the activation.

    With ``wino`` the product is :mod:`.winograd`'s (packed_u: the transformed filters,
    work (threads, ...) its scratch); the columns are then written only into a cols
    (N, K, P) given for the backward pass, not into the per-thread scratch. With
    ``implicit`` (no cols kept) it is :mod:`.implicit`'s, which reads a padded copy of the
    input in place (row_offsets; packed_f32 the filters packed in float32, as the
    micro-kernel multiplies; work its scratch) and writes no columns at all."""
    flat_cols = cols.reshape(-1)
    batch = flat_x.size // (channels * geometry[0] * geometry[1])
    filters, out_w = out3.shape[1], geometry[7]
    pool_kernel, pool_stride, pool_h, pool_w = pool
    pooled_size = pool_h * pool_w
    whole = pool_kernel == 2 and pool_stride == 2 and not values_only
    for t in prange(threads):
        n = claim(counter)
        while n < batch:
            slot = np.int64(t) if scratch else n
            if not ((wino or implicit) and scratch):
                for c in range(channels):
                    _im2col_plane(flat_x, n * channels + c, slot * channels + c, geometry,
                                  flat_cols, True)
            result = out3[np.int64(t) if own_rows else n]
            if wino:
                _winograd(flat_x, n * channels, channels, geometry[0], geometry[1], geometry[5],
                          packed_u, filters, geometry[6], geometry[7], work[t],
                          result.reshape(-1))
            elif implicit:
                _implicit(flat_x, n * channels, channels, geometry[0], geometry[1], geometry[2],
                          geometry[3], geometry[5], packed_f32, filters, row_offsets, work[t],
                          result.reshape(-1))
            else:
                matmul(weight2d, packed_weight, cols[slot], result)
            for o in range(filters):
                activate_row(result[o], bias, o, code)
                if pool_kernel > 0 and not whole:
                    at = (n * filters + o) * pooled_size
                    where = ((t * filters + o) if values_only else (n * filters + o)) \
                        * pooled_size
                    pooled, argmax = flat_pooled[at:at + pooled_size], \
                        flat_argmax[where:where + pooled_size]
                    if values_only:
                        max_plane_values(result[o], out_w, pool_kernel, pool_stride, pool_h,
                                         pool_w, pooled, argmax)
                    else:
                        max_plane(result[o], out_w, pool_kernel, pool_stride, pool_h, pool_w,
                                  pooled, argmax)
            if whole:
                at = n * filters * pooled_size
                max_planes_2x2(result.reshape(-1), filters, geometry[6], out_w, pool_h, pool_w,
                               flat_pooled[at:at + filters * pooled_size],
                               flat_argmax[at:at + filters * pooled_size], picks[t], picks_at[t])
            n = claim(counter)
        count_out(counter)
        wait_for(counter, threads)


@parallel_sum_kernel
def _backward(dout3, out3, code, weight_t, packed_weight_t, own_gemm, flat_x, cols, groups,
              channels, geometry, dweight2d, dbias, dcols, flat_dx, pooled_size, flat_dpooled,
              flat_argmax, from_pooled, partial_dweight, partial_dbias, wino, packed_u, work,
              implicit, row_offsets, packed_f32, windows, threads, counter):
    """Per sample: with ``pooled_size`` (PH*PW) > 0, first dout3[n] (O, P) from the max
    pool's gradient flat_dpooled at flat_argmax (N*O*PH*PW,), each value folded with the
    activation's derivative at its winner: out3[n] (O, P) read there, or with
    ``from_pooled`` out3 (N, O, PH*PW), the pooled output (the winner's value), and then
    dout3 (threads, O, P) is the thread's own scratch, in cache. Without a pool,
    fold the activation into dout3[n] (O, P) at out3[n]. Then add its bias and weight
    gradients (its columns @ dout3[n].T, (K, O): dweight transposed) to its group's partial
    sums, partial_dbias (groups, O) float64 and partial_dweight (groups, K, O), and when
    dcols is not None, weight_t (K, O) @ dout3[n] (K, P) into the thread's scratch slice
    dcols[t] (threads or more, K, P) and col2im from there into flat_dx; with ``wino``,
    flat_dx's sample as :mod:`.winograd`'s convolution of dout3[n] with the flipped
    filters (packed_u) instead, or with ``implicit`` as :mod:`.implicit`'s (the flipped
    filters packed in packed_f32, row_offsets into dout3[n] padded, work its scratch). A
    sample's columns are cols[n] (N, K, P) from the forward pass, or, with flat_x (the
    forward pass's input, N*C*H*W) not empty, rebuilt from it into the thread's slice
    cols[t] (threads, K, P), where they are still in cache; or, with ``windows`` (the
    columns' row offsets, :func:`.implicit.window_offsets`) not empty, read as windows of
    the sample's padded input, cols[t] (threads, 1, S) then :mod:`.implicit`'s scratch.

    Samples are split into ``groups`` fixed by the batch size alone, each summed in
    order; each of the ``threads`` claims its next group from ``counter`` (see .claims),
    and the last one out adds the groups' sums in order. The result never depends on
    the thread count, nor on which thread took which group."""
    batch, filters, kernel_size = out3.shape[0], out3.shape[1], partial_dweight.shape[1]
    rebuild = flat_x.size > 0
    flat_cols = cols.reshape(-1)
    for t in prange(threads):
        g = claim(counter)
        while g < groups:
            total = partial_dweight[g]
            first = g * batch // groups
            for o in range(filters):
                partial_dbias[g, o] = 0
            for n in range(first, (g + 1) * batch // groups):
                source = np.int64(t) if from_pooled else n  # dout3's sample
                d = dout3[source]
                for o in range(filters):
                    if pooled_size > 0:
                        at = (n * filters + o) * pooled_size
                        partial_dbias[g, o] += fold_max_plane_backward(
                            flat_dpooled[at:at + pooled_size], flat_argmax[at:at + pooled_size],
                            out3[n, o], from_pooled, code, d[o])
                    else:
                        partial_dbias[g, o] += fold_activation_row(d[o], out3[n, o], code)
                if windows.size > 0:
                    _weight_gradient_sample(flat_x, n * channels, channels, geometry[0],
                                            geometry[1], geometry[2], geometry[3], geometry[5],
                                            d, windows, cols[t].reshape(-1), total, n != first)
                else:
                    if rebuild:
                        for c in range(channels):
                            _im2col_plane(flat_x, n * channels + c, t * channels + c, geometry,
                                          flat_cols, True)
                    matmul_transposed(cols[t] if rebuild else cols[n], d, total, n != first,
                                      own_gemm)
                if dcols is not None:
                    if wino:
                        plane = channels * geometry[0] * geometry[1]
                        _winograd(dout3.reshape(-1), source * filters, filters, geometry[6],
                                  geometry[7], 2 - geometry[5], packed_u, channels, geometry[0],
                                  geometry[1], work[t], flat_dx[n * plane:(n + 1) * plane])
                    elif implicit:
                        plane = channels * geometry[0] * geometry[1]
                        _implicit(dout3.reshape(-1), source * filters, filters, geometry[6],
                                  geometry[7], geometry[2], geometry[3],
                                  geometry[2] - 1 - geometry[5], packed_f32, channels,
                                  row_offsets, work[t], flat_dx[n * plane:(n + 1) * plane])
                    else:
                        matmul(weight_t, packed_weight_t, d, dcols[t])
                        flat_dcols = dcols.reshape(-1)
                        for c in range(channels):
                            _col2im_from(flat_dcols, t * channels + c, n * channels + c,
                                         geometry, flat_dx, True)
            g = claim(counter)
        if count_out(counter) == threads:
            # every group is done: one thread adds them up, in order, along rows of O
            # (contiguous; over columns of O, each cache line was fetched once per
            # filter: 190 us against 18 at conv2); a second parallel region for it
            # cost 30-130 us of fork, wake-up and join
            for k in range(kernel_size):
                row = partial_dweight[0, k]
                for h in range(1, groups):
                    part = partial_dweight[h, k]
                    for o in range(filters):
                        row[o] += part[o]
                for o in range(filters):
                    dweight2d[o, k] = row[o]
            if dbias is not None:
                sum_partials(partial_dbias, dbias)
            count_out(counter)
        wait_for(counter, threads + 1)


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


GROUP_SAMPLES = 4
"""Samples per partial weight-gradient sum (a fixed share of the batch, so that the
sum's order, and with it the result, does not depend on the thread count)."""


def _groups(batch):
    return max(1, min(batch, -(-batch // GROUP_SAMPLES)))


_NO_POOL = np.empty(0, np.float32), np.empty(0, np.int32)


def conv2d_forward(x, weight, bias, stride, padding, activation, cols, out):
    _conv_pool_forward(x, weight, bias, stride, padding, activation, cols, out, (0, 0, 0, 0),
                       *_NO_POOL)


def conv2d_maxpool_forward(x, weight, bias, stride, padding, activation, pool, cols, out,
                           pooled, argmax):
    _conv_pool_forward(x, weight, bias, stride, padding, activation, cols, out,
                       (pool, pool, pooled.shape[2], pooled.shape[3]), pooled.reshape(-1),
                       None if argmax is None else argmax.reshape(-1))


def _conv_pool_forward(x, weight, bias, stride, padding, activation, cols, out, pool,
                       flat_pooled, flat_argmax):
    if cols is None and out is None and direct.applies(weight, x, stride, pool):
        direct.forward(x, weight, bias, padding, activation, flat_pooled, flat_argmax)
        return
    _, geometry = _geometry(x.shape, weight.shape[2], weight.shape[3], stride, padding)
    shape = (x.shape[0], weight.shape[1] * weight.shape[2] * weight.shape[3],
             geometry[6] * geometry[7])  # cols (N, K, P)
    work = shape[0] * shape[1] * shape[2]
    per_thread = cols is None
    threads = claiming_threads(x.shape[0], work)
    wino = x.dtype == np.float32 and winograd.applies(weight, stride)
    use_implicit = per_thread and not wino and _implicit_applies(weight, stride, padding, x.dtype)
    if per_thread:  # one slice per claiming thread (none for Winograd and implicit)
        cols = scratch("conv columns", (threads,) + ((0, 0) if wino or use_implicit
                                                     else shape[1:]), x.dtype)
    own_rows = out is None  # the full-resolution output in per-thread rows (see _forward)
    values_only = flat_argmax is None  # inference: nothing reads the argmax
    filters = weight.shape[0]
    packed_u, wino_work = _winograd_operands(weight, False, threads, x.shape[1], filters,
                                             geometry[6], geometry[7], wino)
    row_offsets, work_ = _implicit_operands(x.shape[1], geometry[0], geometry[1], weight,
                                            padding, threads, use_implicit)
    rows = (scratch("conv rows", (threads, filters, shape[2]), x.dtype) if own_rows
            else _as_rows(out))
    if values_only:
        flat_argmax = scratch("conv pool argmax", (threads * filters * pool[2] * pool[3],),
                              np.int32)
    weight2d = _as_matrix(weight)
    packed = np.empty(0, weight.dtype) if wino else packed_operand(weight2d)  # Winograd's own
    picks_shape = (threads, filters * shape[2] if pool[:2] == (2, 2) and not values_only else 0)
    launch(_forward, work, x.reshape(-1), x.shape[1], geometry,
           weight2d, packed, bias, activation_code(activation), cols,
           rows, per_thread, pool, flat_pooled.astype(x.dtype, copy=False), flat_argmax, own_rows,
           values_only, wino, packed_u, wino_work if wino else work_, use_implicit, row_offsets,
           packed if use_implicit else _NO_FILTERS, scratch("pool picks", picks_shape, x.dtype),
           scratch("pool pick offsets", picks_shape, np.int32), threads, new_counter())


def _implicit_applies(weight, stride, padding, dtype) -> bool:
    """True where :mod:`.implicit` computes the product: float32 on the micro-kernel, stride 1,
    square filters (padding below their size), at least a tile's rows of filters, and
    columns at least NARROW deep (a one-channel first layer writes its 9 rows of columns
    faster than it pads: pytorch_cnn's step at batch 64, Zen 5, 7.11 ms with it, 6.80 without)."""
    filters, channels, kernel_h, kernel_w = weight.shape
    return (implicit.enabled() and dtype == np.float32 and stride == 1 and kernel_h == kernel_w
            and 0 <= padding < kernel_h and filters >= gemm.MR
            and channels * kernel_h * kernel_w >= gemm.NARROW)


def _windows_apply(weight, stride, padding, dtype) -> bool:
    """True where the weight gradient reads its columns as windows of the padded input
    (:func:`.implicit.weight_gradient_sample`) instead of rebuilding them: float32 on the
    micro-kernel, stride 1, padding below the filters' size, and a product wide enough
    for the micro-kernel both ways (gemm.NARROW)."""
    filters, channels, kernel_h, kernel_w = weight.shape
    return (implicit.enabled() and dtype == np.float32 and stride == 1
            and 0 <= padding < min(kernel_h, kernel_w)
            and min(filters, channels * kernel_h * kernel_w) >= gemm.NARROW)


_NO_IMPLICIT = np.empty(0, np.int64)
_NO_FILTERS = np.empty(0, np.float32)


def _implicit_operands(channels, height, width, weight, padding, threads, use):
    """(row offsets, per-thread scratch (threads, ...)) for :mod:`.implicit`, or empty
    stand-ins when ``use`` is False."""
    if not use:
        return _NO_IMPLICIT, _NO_WINOGRAD[1]
    filters, _, kernel_h, kernel_w = weight.shape
    size = implicit.scratch_size(channels, height, width, filters, kernel_h, kernel_w, padding)
    return (implicit.offsets(channels, height, width, kernel_h, kernel_w, padding),
            scratch("implicit", (threads, size), np.float32))


_NO_WINOGRAD = np.empty((winograd.POSITIONS, 0), np.float32), np.empty((1, 0), np.float32)


def _winograd_operands(weight, flip, threads, channels, filters, out_h, out_w, wino):
    """(transformed filters, per-thread scratch (threads, ...)) for :mod:`.winograd`, or
    empty stand-ins when ``wino`` is False."""
    if not wino:
        return _NO_WINOGRAD
    size = winograd.scratch_size(channels, filters, out_h, out_w)
    return (winograd.transformed_weights(weight, flip),
            scratch("winograd", (threads, size), np.float32))


def conv2d_backward(dout, out, weight, cols, stride, padding, activation,
                    dx, dweight, dbias, dcols):
    _conv_pool_backward(dout, out, weight, cols, None, stride, padding, activation, dx, dweight,
                        dbias, dcols, *_NO_POOL)


def conv2d_maxpool_backward(dpooled, argmax, out, weight, cols, stride, padding, activation,
                            dx, dweight, dbias, dcols, dout):
    _conv_pool_backward(dout, out, weight, cols, None, stride, padding, activation, dx, dweight,
                        dbias, dcols, dpooled.reshape(-1), argmax.reshape(-1))


def conv2d_backward_from_input(dout, out, weight, x, stride, padding, activation, dx, dweight,
                               dbias):
    _conv_pool_backward(dout, out, weight, None, x, stride, padding, activation, dx, dweight,
                        dbias, None, *_NO_POOL)


def conv2d_maxpool_backward_from_input(dpooled, argmax, pooled, weight, x, stride, padding,
                                       activation, dx, dweight, dbias):
    if direct.applies_backward(weight, x, stride, padding, dpooled.shape, dx):
        direct.backward(dpooled, argmax, pooled, weight, x, padding, activation, dweight,
                        dbias, _groups(x.shape[0]))
        return
    if sparse_pool.applies(weight, x, dpooled.dtype):
        sparse_pool.backward(dpooled, argmax, pooled, weight, x, stride, padding, activation, dx,
                             dweight, dbias, _groups(x.shape[0]))
        return
    _conv_pool_backward(None, pooled, weight, None, x, stride, padding, activation, dx, dweight,
                        dbias, None, dpooled.reshape(-1), argmax.reshape(-1))


_NO_INPUT = np.empty(0, np.float32)
_NO_COLUMNS = np.empty((0, 0, 0), np.float32)


def _conv_pool_backward(dout, out, weight, cols, x, stride, padding, activation, dx, dweight,
                        dbias, dcols, flat_dpooled, flat_argmax):
    """cols (N, K, P) from the forward pass, or None and x (N, C, H, W) to rebuild them from;
    dcols (N, K, P) or None (then a scratch of the threads' own when dx is wanted). dout
    None (a pool's gradient from its pooled output ``out``, (N, O, PH, PW)): the
    full-resolution gradient lives in a per-thread scratch."""
    from_pooled = dout is None
    image = dx if dx is not None else x  # x and dx (N, C, H, W) alike; neither: no im2col
    geometry = (0,) * 8 if image is None else \
        _geometry(image.shape, weight.shape[2], weight.shape[3], stride, padding)[1]
    batch, filters = (out if from_pooled else dout).shape[:2]
    positions = geometry[6] * geometry[7] if from_pooled else dout.shape[2] * dout.shape[3]
    pooled_size = flat_dpooled.size // (batch * filters) if flat_dpooled.size else 0
    flat_dx = None if dx is None else dx.reshape(-1)
    dtype = out.dtype if from_pooled else dout.dtype
    wino = (dx is not None and dtype == np.float32 and padding <= 2
            and winograd.applies(weight, stride))
    flipped = weight.transpose(1, 0, 2, 3)  # dx's filters, (C, O, KH, KW)
    use_implicit = (dx is not None and not wino
                    and _implicit_applies(flipped, stride, weight.shape[2] - 1 - padding, dtype))
    if dx is not None and not (wino or use_implicit):  # dx through dcols and col2im
        weight_t = np.ascontiguousarray(_as_matrix(weight).T)  # (K, O)
        packed_t = packed_operand(weight_t)
    else:  # read by nothing: Winograd and the implicit GEMM have their own filters
        weight_t, packed_t = np.empty((0, 0), weight.dtype), np.empty(0, weight.dtype)
    packed_flipped = (packed_operand(implicit.flipped_filters(weight.astype(np.float32)))
                      if use_implicit else _NO_FILTERS)
    groups, kernel_size = _groups(batch), _as_matrix(weight).shape[1]
    work = batch * kernel_size * positions
    threads = claiming_threads(groups, work)
    per_thread = (threads, kernel_size, positions)
    if from_pooled:
        dout3 = scratch("conv output gradients", (threads, filters, positions), dtype)
        out3 = out.reshape(batch, filters, -1)
    else:
        dout3 = _as_rows(dout)
        out3 = dout3 if out is None else _as_rows(out)  # None: no activation, never read
    windows = _NO_IMPLICIT
    if cols is None and _windows_apply(weight, stride, padding, dtype):
        sizes = (weight.shape[1], geometry[0], geometry[1])  # C, H, W
        windows = implicit.window_offsets(*sizes, weight.shape[2], weight.shape[3], padding)
        size = implicit.weight_gradient_scratch_size(*sizes, filters, weight.shape[2],
                                                     weight.shape[3], padding)
        cols = scratch("conv weight-gradient windows", (threads, 1, size), dtype)
    elif cols is None:
        cols = scratch("conv columns", per_thread, dtype)  # the forward pass reuses it
    if dcols is None and dx is not None:  # not None: the kernel computes dx only with it
        dcols = _NO_COLUMNS if wino or use_implicit else \
            scratch("conv column gradients", per_thread, dtype)
    packed_u, wino_work = _winograd_operands(weight, True, threads, filters, weight.shape[1],
                                             geometry[0], geometry[1], wino)
    row_offsets, work_ = _implicit_operands(filters, geometry[6], geometry[7], flipped,
                                            weight.shape[2] - 1 - padding, threads, use_implicit)
    launch(_backward, work, dout3, out3, activation_code(activation),
           weight_t, packed_t, gemm.ENABLED,
           _NO_INPUT if x is None else x.reshape(-1).astype(dtype, copy=False), cols,
           groups, weight.shape[1], geometry, _as_matrix(dweight), dbias, dcols, flat_dx,
           pooled_size, flat_dpooled.astype(dtype, copy=False), flat_argmax, from_pooled,
           scratch("conv partial dweight", (groups, kernel_size, filters), dtype),
           scratch("conv partial dbias", (groups, filters), np.float64),
           wino, packed_u, wino_work if wino else work_, use_implicit, row_offsets,
           packed_flipped, windows, threads, new_counter())
