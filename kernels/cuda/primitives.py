"""The contract's primitives on the GPU: scaled add, product, 1/sqrt (one thread per
element over flat views) and the per-channel sums, means (one block per channel, a
shared-memory tree) and affine maps (one thread per element)."""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float32

from .device import block_sum
from .runtime import REDUCE_THREADS, flat, launch


@cuda.jit
def _axpby_kernel(a, x, b, y, out):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = a * x[i] + b * y[i]


@cuda.jit
def _multiply_kernel(x, y, out):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = x[i] * y[i]


@cuda.jit
def _rsqrt_kernel(x, eps, out):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = float32(1.0) / math.sqrt(x[i] + eps)


@cuda.jit
def _channel_sum_kernel(x, channels, inner, divisor, out):
    # one block per channel c: the sum of x[n, c, r] over n and r, over divisor
    buffer = cuda.shared.array(REDUCE_THREADS, float32)
    c = cuda.blockIdx.x
    total = float32(0.0)
    for t in range(cuda.threadIdx.x, (x.size // (channels * inner)) * inner, cuda.blockDim.x):
        n = t // inner
        total += x[(n * channels + c) * inner + t - n * inner]
    total = block_sum(buffer, total)
    if cuda.threadIdx.x == 0:
        out[c] = total / divisor


@cuda.jit
def _channel_affine_kernel(x, scale, shift, channels, inner, out):
    i = cuda.grid(1)
    if i < out.size:
        c = (i // inner) % channels
        out[i] = x[i] * scale[c] + shift[c]


def axpby(a, x, b, y, out):
    launch(_axpby_kernel, out.size, np.float32(a), flat(x), np.float32(b), flat(y), flat(out))


def multiply(x, y, out):
    launch(_multiply_kernel, out.size, flat(x), flat(y), flat(out))


def rsqrt(x, eps, out):
    launch(_rsqrt_kernel, out.size, flat(x), np.float32(eps), flat(out))


def _inner(x) -> int:
    return x.size // (x.shape[0] * x.shape[1]) if x.size else 1


def _channel_reduce(x, divisor, out):
    if x.shape[1]:
        _channel_sum_kernel[x.shape[1], REDUCE_THREADS](flat(x), x.shape[1], _inner(x),
                                                        np.float32(divisor), out)


def channel_sum(x, out):
    _channel_reduce(x, 1.0, out)


def channel_mean(x, out):
    _channel_reduce(x, x.size // x.shape[1], out)


def channel_affine(x, scale, shift, out):
    launch(_channel_affine_kernel, out.size, flat(x), scale, shift, x.shape[1], _inner(x), flat(out))
