"""The contract's primitives: scaled add, product, 1/sqrt and the per-channel sums,
means and affine maps that new operations are composed from.

Element-wise kernels take flat views (any shape); per-channel kernels take (N, C, R)
views, R the product of the trailing axes (1 for (N, F) inputs), and run one channel
per iteration of the parallel loop, summing in float64.
"""

from __future__ import annotations

import numpy as np

from .jit import launch, parallel_kernel, prange


@parallel_kernel
def _axpby(a, x, b, y, out):
    for i in prange(out.size):
        out[i] = a * x[i] + b * y[i]


@parallel_kernel
def _multiply(x, y, out):
    for i in prange(out.size):
        out[i] = x[i] * y[i]


@parallel_kernel
def _rsqrt(x, eps, out):
    for i in prange(out.size):
        out[i] = 1.0 / np.sqrt(np.float64(x[i]) + eps)


@parallel_kernel
def _channel_sum(x, divisor, out):
    for c in prange(x.shape[1]):
        total = 0.0
        for n in range(x.shape[0]):
            for r in range(x.shape[2]):
                total += x[n, c, r]
        out[c] = total / divisor


@parallel_kernel
def _channel_affine(x, scale, shift, out):
    for c in prange(x.shape[1]):
        a, b = scale[c], shift[c]
        for n in range(x.shape[0]):
            for r in range(x.shape[2]):
                out[n, c, r] = x[n, c, r] * a + b


def _by_channel(array):
    return array.reshape(array.shape[0], array.shape[1], -1)


# ---- contract functions -------------------------------------------------------------
def axpby(a, x, b, y, out):
    launch(_axpby, out.size, float(a), x.reshape(-1), float(b), y.reshape(-1), out.reshape(-1))


def multiply(x, y, out):
    launch(_multiply, out.size, x.reshape(-1), y.reshape(-1), out.reshape(-1))


def rsqrt(x, eps, out):
    launch(_rsqrt, out.size, x.reshape(-1), float(eps), out.reshape(-1))


def channel_sum(x, out):
    launch(_channel_sum, x.size, _by_channel(x), 1.0, out)


def channel_mean(x, out):
    launch(_channel_sum, x.size, _by_channel(x), float(x.size // x.shape[1]), out)


def channel_affine(x, scale, shift, out):
    launch(_channel_affine, x.size, _by_channel(x), scale, shift, _by_channel(out))
