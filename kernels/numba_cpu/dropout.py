"""Dropout with masks drawn inside the kernel from the contract's counter-based hash.

Element i (flat C order, any shape) is kept when the splitmix64 value of
(seed, i) is >= p, bit for bit the same as ``contract.dropout_uniform``: every
backend, CPU or GPU, drops the same elements for the same seed.
"""

from __future__ import annotations

import numpy as np

from ..contract import DROPOUT_CONSTANTS
from .jit import inline_helper, launch, parallel_kernel, prange

_GOLDEN, _MIX1, _MIX2 = (np.uint64(c) for c in DROPOUT_CONSTANTS)
_SHIFT30, _SHIFT27, _SHIFT31, _SHIFT40 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(40)
_UNIT = 2.0 ** -24


@inline_helper
def _uniform(seed, i):
    """contract.dropout_uniform(seed)[i]; uint64 operands throughout: numba wraps them
    mod 2**64 like the contract."""
    z = seed + np.uint64(i + 1) * _GOLDEN
    z = (z ^ (z >> _SHIFT30)) * _MIX1
    z = (z ^ (z >> _SHIFT27)) * _MIX2
    z = z ^ (z >> _SHIFT31)
    return np.float64(z >> _SHIFT40) * _UNIT


@parallel_kernel
def _dropout_forward(x, p, seed, scale, out, mask):
    for i in prange(x.size):
        if _uniform(seed, i) >= p:
            mask[i] = scale
        else:
            mask[i] = 0
        out[i] = x[i] * mask[i]


@parallel_kernel
def _dropout_backward(dout, mask, dx):
    for i in prange(dout.size):
        dx[i] = dout[i] * mask[i]


# ---- contract functions -------------------------------------------------------------
def dropout_forward(x, p, seed, out, mask):
    scale = mask.dtype.type(1.0 / (1.0 - p))
    launch(_dropout_forward, x.size, x.reshape(-1), float(p), np.uint64(int(seed) % 2**64), scale,
                     out.reshape(-1), mask.reshape(-1))


def dropout_backward(dout, mask, dx):
    launch(_dropout_backward, dout.size, dout.reshape(-1), mask.reshape(-1), dx.reshape(-1))


# ---- whole channels (Dropout2d): one hash per (n, c) plane -------------------------------
@parallel_kernel
def _dropout2d_forward(x, p, seed, scale, out, mask):
    # x, out (B, S) planes; mask (B,)
    for plane in prange(x.shape[0]):
        keep = scale if _uniform(seed, plane) >= p else scale * 0
        mask[plane] = keep
        for s in range(x.shape[1]):
            out[plane, s] = x[plane, s] * keep


@parallel_kernel
def _dropout2d_backward(dout, mask, dx):
    for plane in prange(dout.shape[0]):
        keep = mask[plane]
        for s in range(dout.shape[1]):
            dx[plane, s] = dout[plane, s] * keep


def dropout2d_forward(x, p, seed, out, mask):
    n, c, size = x.shape
    scale = mask.dtype.type(1.0 / (1.0 - p))
    launch(_dropout2d_forward, x.size, x.reshape(n * c, size), float(p),
           np.uint64(int(seed) % 2**64), scale, out.reshape(n * c, size), mask.reshape(-1))


def dropout2d_backward(dout, mask, dx):
    n, c, size = dout.shape
    launch(_dropout2d_backward, dout.size, dout.reshape(n * c, size), mask.reshape(-1),
           dx.reshape(n * c, size))
