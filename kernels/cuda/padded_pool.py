"""Padded max and average pooling and global average pooling on the cuda backend
(contract.LAYER_OPERATIONS).

x, dx (N, C, H, W); out, dout, argmax (N, C, OH, OW), windows from o*stride - padding
clipped to the plane. Forward: one thread per output. Average backward: one thread per
input pixel gathering from the windows that hold it (no atomics); max backward is
pool.maxpool2d_backward (argmax indexes the unpadded plane). Global pooling: one thread
per (n, c) plane.
"""

from __future__ import annotations

from numba import cuda, float32

from .conv import window_range
from .runtime import flat, launch


@cuda.jit
def _padded_maxpool_kernel(x, h, w, kernel, stride, padding, oh, ow, out, argmax):
    i = cuda.grid(1)
    if i < out.size:
        base = i // (oh * ow) * h * w
        ys, xs = i // ow % oh * stride - padding, i % ow * stride - padding
        y0, y1, x0, x1 = max(ys, 0), min(ys + kernel, h), max(xs, 0), min(xs + kernel, w)
        best_index = y0 * w + x0
        best = x[base + best_index]
        for y in range(y0, y1):
            for xx in range(x0, x1):
                value = x[base + y * w + xx]
                # strict: the first maximum wins; a NaN beats every number (NumPy's argmax)
                if value > best or (value != value and best == best):
                    best = value
                    best_index = y * w + xx
        out[i] = best
        argmax[i] = best_index


@cuda.jit
def _padded_avgpool_kernel(x, h, w, kernel, stride, padding, oh, ow, out):
    i = cuda.grid(1)
    if i < out.size:
        base = i // (oh * ow) * h * w
        ys, xs = i // ow % oh * stride - padding, i % ow * stride - padding
        total = float32(0.0)
        for y in range(max(ys, 0), min(ys + kernel, h)):
            for xx in range(max(xs, 0), min(xs + kernel, w)):
                total += x[base + y * w + xx]
        out[i] = total / float32(kernel * kernel)


@cuda.jit
def _padded_avgpool_backward_kernel(dout, h, w, kernel, stride, padding, oh, ow, dx):
    i = cuda.grid(1)
    if i < dx.size:
        plane = i // (h * w)
        # the pixel sits at padded position (y + padding, x + padding)
        oy_lo, oy_hi = window_range(i // w % h + padding, kernel, stride, oh)
        ox_lo, ox_hi = window_range(i % w + padding, kernel, stride, ow)
        total = float32(0.0)
        for oy in range(oy_lo, oy_hi):
            for ox in range(ox_lo, ox_hi):
                total += dout[(plane * oh + oy) * ow + ox]
        dx[i] = total / float32(kernel * kernel)


@cuda.jit
def _global_avgpool_kernel(x, size, out):
    plane = cuda.grid(1)
    if plane < out.size:
        total = float32(0.0)
        for s in range(size):
            total += x[plane * size + s]
        out[plane] = total / float32(size)


@cuda.jit
def _global_avgpool_backward_kernel(dout, size, dx):
    i = cuda.grid(1)
    if i < dx.size:
        dx[i] = dout[i // size] / float32(size)


def _geometry(image, pooled, kernel, stride, padding):
    return (*image.shape[2:], kernel, stride, padding, *pooled.shape[2:])


def padded_maxpool2d_forward(x, kernel, stride, padding, out, argmax):
    launch(_padded_maxpool_kernel, out.size, flat(x), *_geometry(x, out, kernel, stride, padding),
           flat(out), flat(argmax))


def padded_avgpool2d_forward(x, kernel, stride, padding, out):
    launch(_padded_avgpool_kernel, out.size, flat(x), *_geometry(x, out, kernel, stride, padding),
           flat(out))


def padded_avgpool2d_backward(dout, kernel, stride, padding, dx):
    launch(_padded_avgpool_backward_kernel, dx.size, flat(dout),
           *_geometry(dx, dout, kernel, stride, padding), flat(dx))


def global_avgpool2d_forward(x, out):
    launch(_global_avgpool_kernel, out.size, flat(x), x.shape[2] * x.shape[3], flat(out))


def global_avgpool2d_backward(dout, dx):
    launch(_global_avgpool_backward_kernel, dx.size, flat(dout), dx.shape[2] * dx.shape[3],
           flat(dx))
