"""Max and average pooling with padding (contract.LAYER_OPERATIONS), one parallel
iteration per (n, c) plane.

Shapes: x/dx (N, C, H, W) seen as (N*C, H, W); out/dout/argmax (N, C, OH, OW) with
OH = (H + 2*padding - kernel) // stride + 1. Windows start at o*stride - padding and are
clipped to the plane: padded max pool pixels are -inf (never winners, as every window
holds an input pixel), padded average pool pixels are zeros that still count in the
kernel**2 divisor (PyTorch's count_include_pad=True). Max pool's backward is the
unpadded one (pool.maxpool2d_backward): argmax already indexes the unpadded plane.
"""

from __future__ import annotations

from .jit import inline_helper, launch, parallel_kernel, prange
from .pool import _planes
from .scalars import beats


@inline_helper
def _clipped(o, stride, padding, kernel, size):
    """[first, end) of the window of output o inside [0, size)."""
    start = o * stride - padding
    return max(start, 0), min(start + kernel, size)


@parallel_kernel
def _padded_maxpool_forward(x, kernel, stride, padding, out, argmax):
    height, width = x.shape[1], x.shape[2]
    for plane in prange(x.shape[0]):
        src = x[plane]
        for oy in range(out.shape[1]):
            y0, y1 = _clipped(oy, stride, padding, kernel, height)
            for ox in range(out.shape[2]):
                x0, x1 = _clipped(ox, stride, padding, kernel, width)
                best, best_at = src[y0, x0], y0 * width + x0
                for y in range(y0, y1):
                    for x_pos in range(x0, x1):
                        if beats(src[y, x_pos], best):
                            best, best_at = src[y, x_pos], y * width + x_pos
                out[plane, oy, ox] = best
                argmax[plane, oy, ox] = best_at


@inline_helper
def _window_column_range(k, stride, padding, width, out_width):
    """[first, end) of the outputs ox whose window column k, ox*stride + k - padding, lies
    inside [0, width)."""
    first = max(0, (padding - k + stride - 1) // stride)
    return first, min(out_width, (width - 1 - k + padding) // stride + 1)


# Average pooling sums a window as kernel*kernel shifted rows: for each (window row, window
# column) one pass along the output row, contiguous when stride is 1, which vectorises
# (a loop over each window's few pixels does not). Sums and the division by area (kernel**2,
# of the array's dtype) in the array's dtype.
@parallel_kernel
def _padded_avgpool_forward(x, kernel, stride, padding, area, out):
    height, width, out_width = x.shape[1], x.shape[2], out.shape[2]
    for plane in prange(x.shape[0]):
        for oy in range(out.shape[1]):
            row = out[plane, oy]
            row[:] = 0
            y0, y1 = _clipped(oy, stride, padding, kernel, height)
            for y in range(y0, y1):
                src = x[plane, y]
                for k in range(kernel):
                    first, end = _window_column_range(k, stride, padding, width, out_width)
                    shift = k - padding
                    if stride == 1:  # its own loop: a unit stride LLVM can see vectorises
                        for ox in range(first, end):
                            row[ox] += src[ox + shift]
                    else:
                        for ox in range(first, end):
                            row[ox] += src[ox * stride + shift]
            for ox in range(out_width):
                row[ox] /= area


@parallel_kernel
def _padded_avgpool_backward(dout, kernel, stride, padding, area, dx):
    height, width, out_width = dx.shape[1], dx.shape[2], dout.shape[2]
    for plane in prange(dx.shape[0]):
        dx[plane] = 0
        for oy in range(dout.shape[1]):
            share = dout[plane, oy]
            y0, y1 = _clipped(oy, stride, padding, kernel, height)
            for y in range(y0, y1):
                dst = dx[plane, y]
                for k in range(kernel):
                    first, end = _window_column_range(k, stride, padding, width, out_width)
                    shift = k - padding
                    if stride == 1:
                        for ox in range(first, end):
                            dst[ox + shift] += share[ox] / area
                    else:
                        for ox in range(first, end):
                            dst[ox * stride + shift] += share[ox] / area


# ---- contract functions -------------------------------------------------------------
def padded_maxpool2d_forward(x, kernel, stride, padding, out, argmax):
    launch(_padded_maxpool_forward, x.size, _planes(x), kernel, stride, padding, _planes(out),
           _planes(argmax))


def padded_avgpool2d_forward(x, kernel, stride, padding, out):
    launch(_padded_avgpool_forward, x.size, _planes(x), kernel, stride, padding,
           x.dtype.type(kernel * kernel), _planes(out))


def padded_avgpool2d_backward(dout, kernel, stride, padding, dx):
    launch(_padded_avgpool_backward, dx.size, _planes(dout), kernel, stride, padding,
           dx.dtype.type(kernel * kernel), _planes(dx))
