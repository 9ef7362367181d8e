"""Pooling for the cuda backend: max and average, forward and backward.

x, dx (N, C, H, W); out, dout, argmax (N, C, OH, OW). Forward: one thread
per output. Average backward: one thread per input pixel gathering from the
windows that hold it (no atomics). Max backward gets no kernel size, so one
thread per output adds into its recorded winner with an atomic add; windows
that do not overlap (the usual stride == kernel) never collide.
"""

from __future__ import annotations

from numba import cuda, float32

from .conv import window_range
from .device import NEG_INF
from .runtime import fill, flat, launch


@cuda.jit
def _maxpool_forward_kernel(x, h, w, kernel, stride, oh, ow, out, argmax):
    i = cuda.grid(1)
    if i < out.size:
        plane = i // (oh * ow)
        y0 = i // ow % oh * stride
        x0 = i % ow * stride
        best = NEG_INF
        best_index = y0 * w + x0
        for ky in range(kernel):
            for kx in range(kernel):
                index = (y0 + ky) * w + x0 + kx
                value = x[plane * h * w + index]
                # strict: the first maximum in window order wins; a NaN beats every
                # number, so the first NaN wins (NumPy's argmax) and the NaN shows
                if value > best or (value != value and best == best):
                    best = value
                    best_index = index
        out[i] = best
        argmax[i] = best_index


@cuda.jit
def _maxpool_backward_kernel(dout, argmax, out_plane, in_plane, dx):
    # one thread per output adds its gradient to its winner; windows that overlap may
    # share a winner, hence the atomic add (dx is zeroed first)
    i = cuda.grid(1)
    if i < dout.size:
        cuda.atomic.add(dx, i // out_plane * in_plane + argmax[i], dout[i])


@cuda.jit
def _avgpool_forward_kernel(x, h, w, kernel, stride, oh, ow, out):
    i = cuda.grid(1)
    if i < out.size:
        base = i // (oh * ow) * h * w
        y0 = i // ow % oh * stride
        x0 = i % ow * stride
        total = float32(0.0)
        for ky in range(kernel):
            for kx in range(kernel):
                total += x[base + (y0 + ky) * w + x0 + kx]
        out[i] = total / float32(kernel * kernel)


@cuda.jit
def _avgpool_backward_kernel(dout, h, w, kernel, stride, oh, ow, dx):
    i = cuda.grid(1)
    if i < dx.size:
        plane = i // (h * w)
        oy_lo, oy_hi = window_range(i // w % h, kernel, stride, oh)
        ox_lo, ox_hi = window_range(i % w, kernel, stride, ow)
        total = float32(0.0)
        for oy in range(oy_lo, oy_hi):
            for ox in range(ox_lo, ox_hi):
                total += dout[(plane * oh + oy) * ow + ox]
        dx[i] = total / float32(kernel * kernel)


def _pool_geometry(image, pooled, kernel, stride):
    """(H, W, kernel, stride, OH, OW): the pooling kernels' shape arguments."""
    return (*image.shape[2:], kernel, stride, *pooled.shape[2:])


def maxpool2d_forward(x, kernel, stride, out, argmax):
    launch(_maxpool_forward_kernel, out.size, flat(x), *_pool_geometry(x, out, kernel, stride),
           flat(out), flat(argmax))


def maxpool2d_backward(dout, argmax, dx):
    # the contract gives no kernel/stride here, so no gather: scatter to the recorded winners
    fill(dx, 0)
    launch(_maxpool_backward_kernel, dout.size, flat(dout), flat(argmax),
           dout.shape[2] * dout.shape[3], dx.shape[2] * dx.shape[3], flat(dx))


def avgpool2d_forward(x, kernel, stride, out):
    launch(_avgpool_forward_kernel, out.size, flat(x), *_pool_geometry(x, out, kernel, stride),
           flat(out))


def avgpool2d_backward(dout, kernel, stride, dx):
    launch(_avgpool_backward_kernel, dx.size, flat(dout), *_pool_geometry(dx, dout, kernel, stride),
           flat(dx))
