"""Dense (fully connected) layers: one NumPy BLAS GEMM plus a fused epilogue kernel.

Shapes: x (N, F); weight (U, F); bias (U,); out/dout (N, U). The epilogues
see out as (N, U, 1), so the bias runs along U as it does along O for conv.
"""

from __future__ import annotations

import numpy as np

from .epilogue import activation_grad_bias_sum, bias_activation
from .jit import launch
from .scalars import activation_code


def _as_rows(matrix):
    """(N, U) -> view (N, U, 1), the epilogues' layout with the bias along U."""
    return matrix.reshape(matrix.shape[0], matrix.shape[1], 1)


# ---- contract functions -------------------------------------------------------------

def dense_forward(x, weight, bias, activation, out):
    np.matmul(x, weight.T, out=out)
    launch(bias_activation, out.size, _as_rows(out), bias, activation_code(activation))


def dense_backward(dout, out, x, weight, activation, dx, dweight, dbias):
    code = activation_code(activation)
    launch(activation_grad_bias_sum, dout.size, _as_rows(dout), _as_rows(out), code, dbias)
    np.matmul(dout.T, x, out=dweight)
    if dx is not None:
        np.matmul(dout, weight, out=dx)
