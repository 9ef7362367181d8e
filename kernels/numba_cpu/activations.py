"""Element-wise activations (any shape, flattened to 1-D views) and row-wise softmax.

Shapes: relu/sigmoid take x, out, dout, dx of one shape; softmax takes (N, L)
and works along L. NaN propagates as in the NumPy reference.
"""

from __future__ import annotations

import numpy as np

from .jit import launch, parallel_kernel, prange, serial_kernel
from .scalars import fast_exp, first_argmax, sigmoid


@parallel_kernel
def _relu_forward(x, out):
    for i in prange(x.size):
        if x[i] < 0:
            out[i] = 0
        else:
            out[i] = x[i]  # NaN stays NaN, like np.maximum


@parallel_kernel
def _relu_backward(dout, out, dx):
    for i in prange(dout.size):
        if out[i] > 0:
            dx[i] = dout[i]
        else:
            dx[i] = dout[i] * 0  # 0, or NaN where dout is NaN/inf, like dout * (out > 0)


@parallel_kernel
def _sigmoid_forward(x, out):
    for i in prange(x.size):
        out[i] = sigmoid(x[i])


@parallel_kernel
def _sigmoid_backward(dout, out, dx):
    for i in prange(dout.size):
        dx[i] = dout[i] * out[i] * (1 - out[i])


@serial_kernel
def softmax_row(x, out):
    """out = softmax(x) for one row; returns (argmax of x, max of x, sum of exp(x - max)).

    The first maximum wins and a NaN anywhere makes the whole row NaN."""
    best = first_argmax(x)
    top = x[best]
    total = 0.0
    for j in range(x.size):
        out[j] = fast_exp(x[j] - top)
        total += out[j]
    inverse = 1 / total
    for j in range(x.size):
        out[j] = out[j] * inverse
    return best, top, total


@parallel_kernel
def _softmax_forward(x, out):
    for r in prange(x.shape[0]):
        softmax_row(x[r], out[r])


@parallel_kernel
def _softmax_backward(dout, out, dx):
    # the row's dot product stays in the arrays' dtype, summed in order, like the reference:
    # dout - dot cancels badly when out is nearly one-hot, and float64 here would disagree
    for r in prange(dout.shape[0]):
        if dout.shape[1] == 0:
            continue
        dot = dout[r, 0] * out[r, 0]
        for j in range(1, dout.shape[1]):
            dot += dout[r, j] * out[r, j]
        for j in range(dout.shape[1]):
            dx[r, j] = out[r, j] * (dout[r, j] - dot)


# ---- contract functions -------------------------------------------------------------
def relu_forward(x, out):
    launch(_relu_forward, x.size, x.reshape(-1), out.reshape(-1))


def relu_backward(dout, out, dx):
    launch(_relu_backward, dout.size, dout.reshape(-1), out.reshape(-1), dx.reshape(-1))


def sigmoid_forward(x, out):
    launch(_sigmoid_forward, x.size, x.reshape(-1), out.reshape(-1))


def sigmoid_backward(dout, out, dx):
    launch(_sigmoid_backward, dout.size, dout.reshape(-1), out.reshape(-1), dx.reshape(-1))


def softmax_forward(x, out):
    launch(_softmax_forward, x.size, x, out)


def softmax_backward(dout, out, dx):
    launch(_softmax_backward, dout.size, dout, out, dx)
