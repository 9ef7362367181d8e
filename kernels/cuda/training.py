"""Cuda kernels of contract.TRAINING_OPERATIONS that carry memory traffic or run every
step inside the network: RMSprop and clipping (one thread per element), LogSoftmax (one
block per row). The losses on a batch's scores and the other steps run their
compositions (fastcnn.compose).
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float32, int32

from .device import block_sum
from .rows import _per_row, _row_softmax_terms
from .runtime import ROW_THREADS, flat, launch


@cuda.jit
def _rmsprop_kernel(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, rest, eps,
                    momentum, centered, with_momentum):
    i = cuda.grid(1)
    if i < param.size:
        g = grad[i]
        sa = alpha * square_avg[i] + rest * g * g
        square_avg[i] = sa
        if centered:
            ga = alpha * grad_avg[i] + rest * g
            grad_avg[i] = ga
            avg = math.sqrt(sa - ga * ga) + eps
        else:
            avg = math.sqrt(sa) + eps
        if with_momentum:
            buf = momentum * momentum_buffer[i] + g / avg
            momentum_buffer[i] = buf
            param[i] -= lr * buf
        else:
            param[i] -= lr * (g / avg)


def rmsprop_update(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, eps, momentum):
    stand_in = flat(square_avg)  # never read or written when its flag is off
    launch(_rmsprop_kernel, param.size, flat(param), flat(grad), flat(square_avg),
           stand_in if grad_avg is None else flat(grad_avg),
           stand_in if momentum_buffer is None else flat(momentum_buffer),
           *(np.float32(s) for s in (lr, alpha, 1.0 - alpha, eps, momentum)),
           grad_avg is not None, momentum_buffer is not None)


@cuda.jit
def _clip_kernel(values, low, high):
    i = cuda.grid(1)
    if i < values.size:
        v = values[i]
        if v < low:
            values[i] = low
        elif v > high:
            values[i] = high


def clip_many(arrays, low, high):
    for array in arrays:
        launch(_clip_kernel, array.size, flat(array), np.float32(low), np.float32(high))


@cuda.jit
def _log_softmax_forward_kernel(x, out):
    values = cuda.shared.array(ROW_THREADS, float32)
    indices = cuda.shared.array(ROW_THREADS, int32)
    row = cuda.blockIdx.x
    top, _, total = _row_softmax_terms(x, row, values, indices)
    log_total = math.log(total)
    for j in range(cuda.threadIdx.x, x.shape[1], cuda.blockDim.x):
        out[row, j] = x[row, j] - top - log_total


@cuda.jit
def _log_softmax_backward_kernel(dout, out, dx):
    values = cuda.shared.array(ROW_THREADS, float32)
    row = cuda.blockIdx.x
    total = float32(0.0)
    for j in range(cuda.threadIdx.x, dout.shape[1], cuda.blockDim.x):
        total += dout[row, j]
    total = block_sum(values, total)
    for j in range(cuda.threadIdx.x, dout.shape[1], cuda.blockDim.x):
        dx[row, j] = dout[row, j] - math.exp(out[row, j]) * total


def log_softmax_forward(x, out):
    _per_row(_log_softmax_forward_kernel, x.shape[0], x, out)


def log_softmax_backward(dout, out, dx):
    _per_row(_log_softmax_backward_kernel, out.shape[0], dout, out, dx)
