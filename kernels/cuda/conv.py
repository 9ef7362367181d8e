"""Convolution for the cuda backend: im2col / col2im kernels and the GEMMs around them.

Shapes as in the contract: x (N, C, H, W), weight (O, C, KH, KW),
cols (N, K=C*KH*KW, P=OH*OW), out (N, O, OH, OW).
"""

from __future__ import annotations

from numba import cuda, float32

from ..contract import conv_output_size
from .device import sum_middle_axis
from .elementwise import fold_activation_grad
from .gemm import BIAS_PER_ROW, gemm
from .runtime import empty, flat, launch


@cuda.jit(device=True)
def window_range(position, kernel, stride, out_size):
    """Output positions o (lo <= o < hi) whose window o*stride .. o*stride+kernel-1 holds position."""
    lo = 0 if position < kernel else (position - kernel) // stride + 1
    hi = min(position // stride + 1, out_size)
    return lo, hi


@cuda.jit
def _im2col_kernel(x, channels, h, w, kernel_h, kernel_w, stride, padding, oh, ow, cols):
    # one thread per cols element; consecutive threads write consecutive output pixels
    i = cuda.grid(1)
    if i < cols.size:
        p = i % (oh * ow)
        row = i // (oh * ow)
        window = kernel_h * kernel_w
        sample = row // (channels * window)
        channel = row // window % channels
        ki = row % window // kernel_w
        kj = row % kernel_w
        y = p // ow * stride + ki - padding
        xx = p % ow * stride + kj - padding
        value = float32(0.0)
        if 0 <= y < h and 0 <= xx < w:
            value = x[((sample * channels + channel) * h + y) * w + xx]
        cols[i] = value


@cuda.jit
def _col2im_kernel(cols, channels, h, w, kernel_h, kernel_w, stride, padding, oh, ow, dx):
    # one thread per input pixel gathering every window entry that read it: no write races
    i = cuda.grid(1)
    if i < dx.size:
        xx = i % w + padding
        y = i // w % h + padding
        plane = i // (w * h)                       # sample * channels + channel
        total = float32(0.0)
        oy_lo, oy_hi = window_range(y, kernel_h, stride, oh)
        ox_lo, ox_hi = window_range(xx, kernel_w, stride, ow)
        for oy in range(oy_lo, oy_hi):
            for ox in range(ox_lo, ox_hi):
                row = (plane * kernel_h + y - oy * stride) * kernel_w + xx - ox * stride
                total += cols[row * oh * ow + oy * ow + ox]
        dx[i] = total


def _image_geometry(image, kernel_h, kernel_w, stride, padding):
    """(C, H, W, kernel_h, kernel_w, stride, padding, OH, OW): the kernels' shape arguments."""
    _, channels, h, w = image.shape
    return (channels, h, w, kernel_h, kernel_w, stride, padding,
            conv_output_size(h, kernel_h, stride, padding),
            conv_output_size(w, kernel_w, stride, padding))


def im2col(x, kernel_h, kernel_w, stride, padding, cols):
    geometry = _image_geometry(x, kernel_h, kernel_w, stride, padding)
    launch(_im2col_kernel, cols.size, flat(x), *geometry, flat(cols))


def col2im(cols, kernel_h, kernel_w, stride, padding, dx):
    geometry = _image_geometry(dx, kernel_h, kernel_w, stride, padding)
    launch(_col2im_kernel, dx.size, flat(cols), *geometry, flat(dx))


def conv2d_forward(x, weight, bias, stride, padding, activation, cols, out):
    o, _, kernel_h, kernel_w = weight.shape
    n, k, p = x.shape[0], weight.shape[1] * kernel_h * kernel_w, out.shape[2] * out.shape[3]
    if cols is None:  # inference: nothing keeps them (a temporary on the device)
        cols = empty((n, k, p), x.dtype)
    im2col(x, kernel_h, kernel_w, stride, padding, cols)
    # out[n] (O, P) = weight (O, K) @ cols[n] (K, P), one grid-z slice per sample
    gemm(flat(weight), (0, k, 1), flat(cols), (k * p, p, 1), flat(out), o, p, k, batches=n,
         bias=bias, bias_mode=BIAS_PER_ROW, activation=activation)


def conv2d_backward(dout, out, weight, cols, stride, padding, activation,
                    dx, dweight, dbias, dcols):
    o, _, kernel_h, kernel_w = weight.shape
    n, k, p = cols.shape
    fold_activation_grad(activation, dout, out)
    d = flat(dout)
    # dweight (O, K) = sum_n dout[n] (O, P) @ cols[n]^T (P, K)
    gemm(d, (o * p, p, 1), flat(cols), (k * p, 1, p), flat(dweight), o, k, p, summed=n)
    if dbias is not None:
        sum_middle_axis(d, n, o, p, dbias)
    if dx is not None:
        # dcols[n] (K, P) = weight^T (K, O) @ dout[n] (O, P)
        gemm(flat(weight), (0, 1, k), d, (o * p, p, 1), flat(dcols), k, p, o, batches=n)
        col2im(dcols, kernel_h, kernel_w, stride, padding, dx)
