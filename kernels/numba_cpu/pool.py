"""Max and average pooling, forward and backward, one parallel iteration per (n, c) plane.

Shapes: x/dx (N, C, H, W); out/dout/argmax (N, C, OH, OW) with
OH = (H - kernel) // stride + 1 (no padding, floor, like PyTorch's default).
The kernels see (N*C, H, W) views and give each plane to one iteration, so the
backward passes, where overlapping windows add into one input pixel, are race-free.
"""

from __future__ import annotations

import numpy as np

from .jit import ISA, inline_helper, launch, parallel_kernel, prange
from .scalars import beats


@inline_helper
def _pick(value, at, best, best_at):
    """(best, best_at) after ``value`` at ``at`` enters the scan (see scalars.beats)."""
    take = beats(value, best)
    return (value if take else best), (at if take else best_at)


# ---- one (H, W) plane, flat: src (H*W,) -> dst, where (OH*OW,) -------------------------
@inline_helper
def max_plane_any(src, width, kernel, stride, out_h, out_w, dst, where):
    """Any window: a row-major scan of each, the first maximum (or first NaN) wins, as in
    argmax; selects rather than branches (random data mispredicts them): 1.6x faster."""
    for oy in range(out_h):
        for ox in range(out_w):
            y0 = oy * stride
            x0 = ox * stride
            best = src[y0 * width + x0]
            best_at = y0 * width + x0
            for i in range(kernel):
                for j in range(kernel):
                    at = (y0 + i) * width + x0 + j
                    best, best_at = _pick(src[at], at, best, best_at)
            dst[oy * out_w + ox] = best
            where[oy * out_w + ox] = best_at


@inline_helper
def max_plane_2x2(src, width, out_h, out_w, dst, where):
    """The 2x2, stride-2 window of every zoo model, unrolled. Each output row reads two
    input rows as slices indexed from 0 and keeps argmax in int32 arithmetic: LLVM
    vectorises that (no wrap-around checks, no 64-bit lanes), 1.5-1.7x the flat-offset
    version at pytorch_cnn's pools."""
    for oy in range(out_h):
        top = src[2 * oy * width:(2 * oy + 1) * width]
        bottom = src[(2 * oy + 1) * width:(2 * oy + 2) * width]
        row = oy * out_w
        top_at = np.int32(2 * oy * width)
        bottom_at = np.int32((2 * oy + 1) * width)
        for ox in range(out_w):
            left = np.int32(2 * ox)
            best, best_at = top[2 * ox], top_at + left
            best, best_at = _pick(top[2 * ox + 1], top_at + left + 1, best, best_at)
            best, best_at = _pick(bottom[2 * ox], bottom_at + left, best, best_at)
            best, best_at = _pick(bottom[2 * ox + 1], bottom_at + left + 1, best, best_at)
            dst[row + ox] = best
            where[row + ox] = best_at


@inline_helper
def max_plane_2x2_shifted(src, width, out_h, out_w, dst, where):
    """The same 2x2, stride-2 window for AVX2 code: LLVM vectorises the stride-2 reads
    of :func:`max_plane_2x2` only with AVX-512 (compiled for AVX2 it ran 2.7 ms at
    pytorch_cnn's first pool, against 0.36 ms with AVX-512). Here one contiguous loop over
    the plane picks each position's window from four shifted views (k, k+1, k+W, k+W+1),
    top pair, then bottom pair, then top against bottom (row-major order: ties and NaNs
    resolve as in the scan); every other entry of every other row is the output, copied
    out after. Four times the picks, all in vectors: 0.57 ms there, 0.43 ms with AVX-512."""
    # never negative: numba hoists the np.empty below out of a caller's prange loop, to
    # before this check (the convolution's, which passes out_h = 0 when it does not pool)
    span = max((2 * out_h - 1) * width - 1, 0)  # window origins up to the last output's
    if out_h == 0 or out_w == 0:
        return
    w32 = np.int32(width)
    best = np.empty(span, src.dtype)
    best_at = np.empty(span, np.int32)
    top, right = src[:span], src[1:span + 1]
    below, corner = src[width:width + span], src[width + 1:width + 1 + span]
    for k in range(span):
        at = np.int32(k)
        upper, upper_at = _pick(right[k], at + 1, top[k], at)
        lower, lower_at = _pick(corner[k], at + w32 + 1, below[k], at + w32)
        best[k], best_at[k] = _pick(lower, lower_at, upper, upper_at)
    for oy in range(out_h):
        origins = best[2 * oy * width:2 * oy * width + 2 * out_w]
        origins_at = best_at[2 * oy * width:2 * oy * width + 2 * out_w]
        for ox in range(out_w):
            dst[oy * out_w + ox] = origins[2 * ox]
            where[oy * out_w + ox] = origins_at[2 * ox]


@inline_helper
def max_planes_2x2(src, planes, height, width, out_h, out_w, dst, where, best, best_at):
    """The 2x2, stride-2 pool of ``planes`` consecutive (H, W) planes at once, flat:
    src (planes*H*W,) -> dst, where (planes*OH*OW,), ``where`` plane-local as in
    max_plane. One contiguous loop over the whole run picks each position's window from
    four shifted views, as max_plane_2x2_shifted does for one plane, into the scratch
    best and best_at (at least planes*H*W); the outputs are copied out after. Small
    planes are why: a plane's output rows are shorter than a vector (7 at 14x14), so the
    plane-by-plane loops ran scalar (per sample, 32 x 14 x 14: 3.9 -> 1.6 us; 64 x 7 x 7:
    4.8 -> 0.7 us, Zen 5)."""
    size = height * width
    # the last output's window origin, + 1; never negative (see max_plane_2x2_shifted)
    span = max((planes - 1) * size + 2 * (out_h - 1) * width + 2 * out_w - 1, 0)
    if planes == 0 or out_h == 0 or out_w == 0:
        return
    w32 = np.int32(width)
    zero = np.int32(0)
    top, right = src[:span], src[1:span + 1]
    below, corner = src[width:width + span], src[width + 1:width + 1 + span]
    for k in range(span):
        upper, upper_at = _pick(right[k], zero + 1, top[k], zero)
        lower, lower_at = _pick(corner[k], w32 + 1, below[k], w32)
        best[k], best_at[k] = _pick(lower, lower_at, upper, upper_at)
    for p in range(planes):
        for oy in range(out_h):
            row = (p * out_h + oy) * out_w
            origin = np.int32(2 * oy * width)
            first = p * size + 2 * oy * width
            for ox in range(out_w):
                dst[row + ox] = best[first + 2 * ox]
                where[row + ox] = origin + np.int32(2 * ox) + best_at[first + 2 * ox]


@inline_helper
def max_plane_2x2_values(src, width, out_h, out_w, dst):
    """max_plane_2x2 without the argmax, for inference (nothing reads it): the same picks
    in the same order on the values alone, half the vector work."""
    for oy in range(out_h):
        top = src[2 * oy * width:(2 * oy + 1) * width]
        bottom = src[(2 * oy + 1) * width:(2 * oy + 2) * width]
        row = oy * out_w
        for ox in range(out_w):
            best = top[2 * ox]
            value = top[2 * ox + 1]
            best = value if beats(value, best) else best
            value = bottom[2 * ox]
            best = value if beats(value, best) else best
            value = bottom[2 * ox + 1]
            dst[row + ox] = value if beats(value, best) else best


max_plane_two_by_two = max_plane_2x2 if ISA == "avx512" else max_plane_2x2_shifted
"""The 2x2, stride-2 plane helper for the ISA numba compiles for (see the two)."""


@inline_helper
def max_plane(src, width, kernel, stride, out_h, out_w, dst, where):
    """The plane's max pool with the helper its window has (the 2x2 one for this ISA)."""
    if kernel == 2 and stride == 2:
        max_plane_two_by_two(src, width, out_h, out_w, dst, where)
    else:
        max_plane_any(src, width, kernel, stride, out_h, out_w, dst, where)


@inline_helper
def max_plane_values(src, width, kernel, stride, out_h, out_w, dst, where):
    """max_plane's dst alone (``where`` is scratch): the 2x2 window without its argmax
    where AVX-512 vectorises the stride-2 reads, max_plane elsewhere."""
    if kernel == 2 and stride == 2 and ISA == "avx512":
        max_plane_2x2_values(src, width, out_h, out_w, dst)
    else:
        max_plane(src, width, kernel, stride, out_h, out_w, dst, where)


@inline_helper
def max_plane_backward(dout, argmax, dx):
    """dx (H*W,) = 0, then each dout (OH*OW,) added at its argmax."""
    dx[:] = 0
    for k in range(dout.shape[0]):
        dx[argmax[k]] += dout[k]


# ---- kernels: one parallel iteration per (n, c) plane ----------------------------------
@parallel_kernel
def _maxpool_forward(flat_x, planes, height, width, kernel, stride, out_h, out_w, flat_out,
                     flat_argmax):
    """Any window. Flat views: x (N*C*H*W,), out and argmax (N*C*OH*OW,)."""
    size, out_size = height * width, out_h * out_w
    for plane in prange(planes):
        max_plane_any(flat_x[plane * size:(plane + 1) * size], width, kernel, stride, out_h,
                      out_w, flat_out[plane * out_size:(plane + 1) * out_size],
                      flat_argmax[plane * out_size:(plane + 1) * out_size])


@parallel_kernel
def _maxpool_forward_2x2(flat_x, planes, height, width, out_h, out_w, flat_out, flat_argmax):
    """2x2, stride 2 (max_plane_2x2, AVX-512)."""
    size, out_size = height * width, out_h * out_w
    for plane in prange(planes):
        max_plane_2x2(flat_x[plane * size:(plane + 1) * size], width, out_h, out_w,
                      flat_out[plane * out_size:(plane + 1) * out_size],
                      flat_argmax[plane * out_size:(plane + 1) * out_size])


@parallel_kernel
def _maxpool_forward_2x2_shifted(flat_x, planes, height, width, out_h, out_w, flat_out,
                                 flat_argmax):
    """2x2, stride 2 (max_plane_2x2_shifted, AVX2)."""
    size, out_size = height * width, out_h * out_w
    for plane in prange(planes):
        max_plane_2x2_shifted(flat_x[plane * size:(plane + 1) * size], width, out_h, out_w,
                              flat_out[plane * out_size:(plane + 1) * out_size],
                              flat_argmax[plane * out_size:(plane + 1) * out_size])


TWO_BY_TWO = _maxpool_forward_2x2 if ISA == "avx512" else _maxpool_forward_2x2_shifted
"""The 2x2, stride-2 kernel for the ISA numba compiles for (see the two kernels)."""


@parallel_kernel
def _maxpool_backward(dout, argmax, dx):
    # dout, argmax (N*C, OH*OW); dx (N*C, H*W)
    for plane in prange(dx.shape[0]):
        max_plane_backward(dout[plane], argmax[plane], dx[plane])


@parallel_kernel
def _avgpool_forward(x, kernel, stride, out):
    out_h, out_w = out.shape[1], out.shape[2]
    area = kernel * kernel
    for plane in prange(x.shape[0]):
        src = x[plane]
        for oy in range(out_h):
            for ox in range(out_w):
                total = 0.0  # float64 accumulator
                for i in range(kernel):
                    for j in range(kernel):
                        total += src[oy * stride + i, ox * stride + j]
                out[plane, oy, ox] = total / area


@parallel_kernel
def _avgpool_forward_2x2(x, out):
    """The 2x2, stride-2 window in float32, one output row at a time from two input rows
    (the general kernel sums each window in float64, with the window's size known only at
    run time)."""
    out_h, out_w = out.shape[1], out.shape[2]
    quarter = out.dtype.type(0.25)
    for plane in prange(x.shape[0]):
        for oy in range(out_h):
            top, bottom, row = x[plane, 2 * oy], x[plane, 2 * oy + 1], out[plane, oy]
            for ox in range(out_w):
                left, right = 2 * ox, 2 * ox + 1
                row[ox] = ((top[left] + top[right]) + (bottom[left] + bottom[right])) * quarter


@parallel_kernel
def _avgpool_backward(dout, kernel, stride, dx):
    out_h, out_w = dout.shape[1], dout.shape[2]
    area = kernel * kernel
    for plane in prange(dx.shape[0]):
        dst = dx[plane]
        dst[:] = 0
        for oy in range(out_h):
            for ox in range(out_w):
                share = dout[plane, oy, ox] / area
                for i in range(kernel):
                    for j in range(kernel):
                        dst[oy * stride + i, ox * stride + j] += share


# ---- contract functions -------------------------------------------------------------
def _planes(images, flat=False):
    """(N, C, H, W) -> view (N*C, H, W), or (N*C, H*W) when ``flat``."""
    shape = images.shape
    return images.reshape((shape[0] * shape[1], -1) if flat else (-1,) + shape[2:])


def maxpool_forward_kernel(kernel, stride):
    """The forward kernel for this window: a 2x2/stride-2 one (TWO_BY_TWO), else the general one."""
    return TWO_BY_TWO if (kernel, stride) == (2, 2) else _maxpool_forward


def maxpool2d_forward(x, kernel, stride, out, argmax):
    chosen = maxpool_forward_kernel(kernel, stride)
    n, c, h, w = x.shape
    window = () if chosen is not _maxpool_forward else (kernel, stride)
    launch(chosen, x.size, x.reshape(-1), n * c, h, w, *window, out.shape[2], out.shape[3],
           out.reshape(-1), argmax.reshape(-1))


def maxpool2d_backward(dout, argmax, dx):
    launch(_maxpool_backward, dx.size, _planes(dout, flat=True), _planes(argmax, flat=True),
           _planes(dx, flat=True))


def avgpool2d_forward(x, kernel, stride, out):
    if (kernel, stride) == (2, 2) and x.dtype == np.float32:
        # work counted by outputs: a few cheap adds each (fixed_kernel_cnn's 64 x 26 x 26 took
        # 31 us in a training step on 2 threads, waking the second, and 8 on one)
        launch(_avgpool_forward_2x2, out.size, _planes(x), _planes(out))
    else:
        launch(_avgpool_forward, x.size, _planes(x), kernel, stride, _planes(out))


def avgpool2d_backward(dout, kernel, stride, dx):
    launch(_avgpool_backward, dx.size, _planes(dout), kernel, stride, _planes(dx))
