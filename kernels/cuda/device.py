"""Device functions shared by the cuda kernels: activations and block-wide reductions.

The reductions are shared-memory trees over one block whose size is a power
of two; every thread of the block must call them (they synchronise), and
every thread gets the result.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float32

from .runtime import REDUCE_THREADS

NEG_INF = np.float32(-np.inf)
NO_INDEX = np.int32(2**31 - 1)
"""Index of a thread that saw no element: loses every tie in block_argmax."""


@cuda.jit(device=True)
def sigmoid(v):
    """1 / (1 + exp(-v)) that never overflows: exp of a non-positive number only."""
    one = float32(1.0)
    e = float32(math.exp(-abs(v)))
    if v >= 0:
        return one / (one + e)
    return e / (one + e)


@cuda.jit(device=True)
def activate(v, code):
    """Apply activation ``code`` (runtime.ACTIVATION_CODES) to v."""
    if code == 1:
        return max(v, float32(0.0))
    if code == 2:
        return sigmoid(v)
    return v


@cuda.jit(device=True)
def block_sum(buffer, value):
    """Sum of ``value`` over the block; buffer is shared, one float32 per thread."""
    tid = cuda.threadIdx.x
    buffer[tid] = value
    cuda.syncthreads()
    step = cuda.blockDim.x // 2
    while step > 0:
        if tid < step:
            buffer[tid] += buffer[tid + step]
        cuda.syncthreads()
        step //= 2
    total = buffer[0]
    cuda.syncthreads()  # the buffer may be reused at once
    return total


@cuda.jit(device=True)
def block_argmax(values, indices, value, index):
    """(max, its index) over the block; on equal values the smaller index wins."""
    tid = cuda.threadIdx.x
    values[tid] = value
    indices[tid] = index
    cuda.syncthreads()
    step = cuda.blockDim.x // 2
    while step > 0:
        if tid < step:
            other = values[tid + step]
            other_index = indices[tid + step]
            if other > values[tid] or (other == values[tid] and other_index < indices[tid]):
                values[tid] = other
                indices[tid] = other_index
        cuda.syncthreads()
        step //= 2
    best = values[0]
    best_index = indices[0]
    cuda.syncthreads()
    return best, best_index


@cuda.jit(device=True)
def row_argmax(matrix, row, values, indices):
    """(max, first index of it) of matrix[row, :] for a block working on that row."""
    best = NEG_INF
    best_index = NO_INDEX
    for j in range(cuda.threadIdx.x, matrix.shape[1], cuda.blockDim.x):
        if matrix[row, j] > best:  # each thread scans increasing j: first maximum kept
            best = matrix[row, j]
            best_index = j
    return block_argmax(values, indices, best, best_index)


@cuda.jit
def _sum_middle_axis_kernel(src, outer, middle, inner, out):
    # one block per out[j] = sum of src[n, j, p] over n < outer, p < inner
    buffer = cuda.shared.array(REDUCE_THREADS, float32)
    j = cuda.blockIdx.x
    total = float32(0.0)
    for t in range(cuda.threadIdx.x, outer * inner, cuda.blockDim.x):
        n = t // inner
        total += src[(n * middle + j) * inner + t - n * inner]
    total = block_sum(buffer, total)
    if cuda.threadIdx.x == 0:
        out[j] = total


def sum_middle_axis(src, outer: int, middle: int, inner: int, out) -> None:
    """out (middle,) = src viewed as (outer, middle, inner), summed over outer and inner.

    src is a flat float32 device array; one block of REDUCE_THREADS per output.
    """
    if middle:
        _sum_middle_axis_kernel[middle, REDUCE_THREADS](src, outer, middle, inner, out)

