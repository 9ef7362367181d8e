"""Dense (fully connected) layer for the cuda backend: three GEMMs and a bias reduction.

x (N, F); weight (U, F); bias (U,); out, dout (N, U).
"""

from __future__ import annotations

from .device import sum_middle_axis
from .elementwise import fold_activation_grad
from .gemm import BIAS_PER_COLUMN, gemm
from .runtime import flat


def dense_forward(x, weight, bias, activation, out):
    n, f = x.shape
    u = weight.shape[0]
    # out (N, U) = x (N, F) @ weight^T (F, U)
    gemm(flat(x), (0, f, 1), flat(weight), (0, 1, f), flat(out), n, u, f,
         bias=bias, bias_mode=BIAS_PER_COLUMN, activation=activation)


def dense_backward(dout, out, x, weight, activation, dx, dweight, dbias):
    n, f = x.shape
    u = weight.shape[0]
    fold_activation_grad(activation, dout, out)
    d = flat(dout)
    # dweight (U, F) = dout^T (U, N) @ x (N, F)
    gemm(d, (0, 1, u), flat(x), (0, f, 1), flat(dweight), u, f, n)
    if dbias is not None:
        sum_middle_axis(d, n, u, 1, dbias)
    if dx is not None:
        # dx (N, F) = dout (N, U) @ weight (U, F)
        gemm(d, (0, u, 1), flat(weight), (0, f, 1), flat(dx), n, f, u)
