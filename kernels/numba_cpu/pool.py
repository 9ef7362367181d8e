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


@parallel_kernel
def _maxpool_forward(x, kernel, stride, out, argmax):
    width, out_h, out_w = x.shape[2], out.shape[1], out.shape[2]
    for plane in prange(x.shape[0]):
        src = x[plane]
        for oy in range(out_h):
            for ox in range(out_w):
                y0 = oy * stride
                x0 = ox * stride
                best = src[y0, x0]
                best_at = y0 * width + x0
                # row-major scan of the window: the first maximum (or first NaN) wins, as in
                # argmax; selects rather than branches (random data mispredicts them): 1.6x faster
                for i in range(kernel):
                    for j in range(kernel):
                        value = src[y0 + i, x0 + j]
                        take = beats(value, best)
                        best = value if take else best
                        best_at = (y0 + i) * width + x0 + j if take else best_at
                out[plane, oy, ox] = best
                argmax[plane, oy, ox] = best_at


@inline_helper
def _pick(value, at, best, best_at):
    """(best, best_at) after ``value`` at ``at`` enters the scan (see scalars.beats)."""
    take = beats(value, best)
    return (value if take else best), (at if take else best_at)


@parallel_kernel
def _maxpool_forward_2x2(flat_x, planes, height, width, out_h, out_w, flat_out, flat_argmax):
    """The 2x2, stride-2 window of every zoo model, unrolled. Each output row reads two
    input rows as slices indexed from 0 and keeps argmax in int32 arithmetic: LLVM
    vectorises that (no wrap-around checks, no 64-bit lanes), 1.5-1.7x the flat-offset
    version at pytorch_cnn's pools. Flat views: x (N*C*H*W,), out and argmax (N*C*OH*OW,)."""
    for plane in prange(planes):
        src = flat_x[plane * height * width:(plane + 1) * height * width]
        for oy in range(out_h):
            top = src[2 * oy * width:(2 * oy + 1) * width]
            bottom = src[(2 * oy + 1) * width:(2 * oy + 2) * width]
            row = (plane * out_h + oy) * out_w
            dst = flat_out[row:row + out_w]
            where = flat_argmax[row:row + out_w]
            top_at = np.int32(2 * oy * width)
            bottom_at = np.int32((2 * oy + 1) * width)
            for ox in range(out_w):
                left = np.int32(2 * ox)
                best, best_at = top[2 * ox], top_at + left
                best, best_at = _pick(top[2 * ox + 1], top_at + left + 1, best, best_at)
                best, best_at = _pick(bottom[2 * ox], bottom_at + left, best, best_at)
                best, best_at = _pick(bottom[2 * ox + 1], bottom_at + left + 1, best, best_at)
                dst[ox] = best
                where[ox] = best_at


@parallel_kernel
def _maxpool_forward_2x2_shifted(flat_x, planes, height, width, out_h, out_w, flat_out,
                                 flat_argmax):
    """The same 2x2, stride-2 window for AVX2 code: LLVM vectorises the stride-2 reads
    of :func:`_maxpool_forward_2x2` only with AVX-512 (compiled for AVX2 it ran 2.7 ms at
    pytorch_cnn's first pool, against 0.36 ms with AVX-512). Here one contiguous loop over
    the plane picks each position's window from four shifted views (k, k+1, k+W, k+W+1),
    top pair, then bottom pair, then top against bottom (row-major order: ties and NaNs
    resolve as in the scan); every other entry of every other row is the output, copied
    out after. Four times the picks, all in vectors: 0.57 ms there, 0.43 ms with AVX-512."""
    if out_h == 0 or out_w == 0:
        return
    size = height * width
    span = (2 * out_h - 1) * width - 1  # window origins up to the last output's
    w32 = np.int32(width)
    for plane in prange(planes):
        src = flat_x[plane * size:(plane + 1) * size]
        best = np.empty(span, flat_x.dtype)
        best_at = np.empty(span, np.int32)
        top, right = src[:span], src[1:span + 1]
        below, corner = src[width:width + span], src[width + 1:width + 1 + span]
        for k in range(span):
            at = np.int32(k)
            upper, upper_at = _pick(right[k], at + 1, top[k], at)
            lower, lower_at = _pick(corner[k], at + w32 + 1, below[k], at + w32)
            best[k], best_at[k] = _pick(lower, lower_at, upper, upper_at)
        for oy in range(out_h):
            row = (plane * out_h + oy) * out_w
            dst = flat_out[row:row + out_w]
            where = flat_argmax[row:row + out_w]
            origins = best[2 * oy * width:2 * oy * width + 2 * out_w]
            origins_at = best_at[2 * oy * width:2 * oy * width + 2 * out_w]
            for ox in range(out_w):
                dst[ox] = origins[2 * ox]
                where[ox] = origins_at[2 * ox]


TWO_BY_TWO = _maxpool_forward_2x2 if ISA == "avx512" else _maxpool_forward_2x2_shifted
"""The 2x2, stride-2 kernel for the ISA numba compiles for (see the two kernels)."""


@parallel_kernel
def _maxpool_backward(dout, argmax, dx):
    # dout, argmax (N*C, OH*OW); dx (N*C, H*W)
    for plane in prange(dx.shape[0]):
        dst = dx[plane]
        dst[:] = 0
        for k in range(dout.shape[1]):
            dst[argmax[plane, k]] += dout[plane, k]


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
    if chosen is not _maxpool_forward:
        n, c, h, w = x.shape
        launch(chosen, x.size, x.reshape(-1), n * c, h, w, out.shape[2], out.shape[3],
               out.reshape(-1), argmax.reshape(-1))
    else:
        launch(chosen, x.size, _planes(x), kernel, stride, _planes(out), _planes(argmax))


def maxpool2d_backward(dout, argmax, dx):
    launch(_maxpool_backward, dx.size, _planes(dout, flat=True), _planes(argmax, flat=True),
           _planes(dx, flat=True))


def avgpool2d_forward(x, kernel, stride, out):
    launch(_avgpool_forward, x.size, _planes(x), kernel, stride, _planes(out))


def avgpool2d_backward(dout, kernel, stride, dx):
    launch(_avgpool_backward, dx.size, _planes(dout), kernel, stride, _planes(dx))
