"""Global average pooling (contract.LAYER_OPERATIONS): x (N, C, H, W) -> out (N, C), the
mean of each plane, and back. The kernels see (N*C, H*W) planes, one per iteration."""

from __future__ import annotations

from .jit import launch, parallel_kernel, parallel_sum_kernel, prange


@parallel_sum_kernel
def _global_avgpool_forward(x, zero, out):
    # planes (B, S) -> out (B,); sums in x's dtype (zero: 0 of it), reordered into the vector
    # lanes (a float64 sum of float32 values ran at half the width: slower than PyTorch)
    for plane in prange(x.shape[0]):
        total = zero
        for s in range(x.shape[1]):
            total += x[plane, s]
        out[plane] = total / x.shape[1]


@parallel_kernel
def _global_avgpool_backward(dout, dx):
    # dout (B,) -> planes (B, S)
    for plane in prange(dx.shape[0]):
        share = dout[plane] / dx.shape[1]
        for s in range(dx.shape[1]):
            dx[plane, s] = share


# ---- contract functions -------------------------------------------------------------
def global_avgpool2d_forward(x, out):
    n, c = out.shape
    launch(_global_avgpool_forward, x.size, x.reshape(n * c, -1), x.dtype.type(0),
           out.reshape(-1))


def global_avgpool2d_backward(dout, dx):
    n, c = dout.shape
    launch(_global_avgpool_backward, dx.size, dout.reshape(-1), dx.reshape(n * c, -1))
