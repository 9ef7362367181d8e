"""Dense (fully connected) layers: one BLAS GEMM plus a fused epilogue.

Shapes: x (N, F); weight (U, F); bias (U,); out/dout (N, U). The epilogues
see out as (N, U, 1), so the bias runs along U as it does along O for conv.
"""

from __future__ import annotations

import numpy as np

from .epilogue import activation_grad_bias_sum, bias_activation
from .jit import serial_kernel
from .scalars import activation_code


@serial_kernel
def _dense_forward(x, weight, bias, code, out):
    np.dot(x, weight.T, out)
    bias_activation(out.reshape((out.shape[0], out.shape[1], 1)), bias, code)


@serial_kernel
def _dense_backward(dout, out, x, weight, code, dx, dweight, dbias):
    shape3 = (dout.shape[0], dout.shape[1], 1)
    activation_grad_bias_sum(dout.reshape(shape3), out.reshape(shape3), code, dbias)
    np.dot(dout.T, x, dweight)
    if dx is not None:
        np.dot(dout, weight, dx)


# ---- contract functions -------------------------------------------------------------
def dense_forward(x, weight, bias, activation, out):
    _dense_forward(x, weight, bias, activation_code(activation), out)


def dense_backward(dout, out, x, weight, activation, dx, dweight, dbias):
    _dense_backward(dout, out, x, weight, activation_code(activation), dx, dweight, dbias)
