"""The NumPy reference of the layers past the tutorials (contract.LAYER_OPERATIONS).

Tanh, LeakyReLU, ELU, GELU (exact erf form and PyTorch's tanh form), global average
pooling, max and average pooling with padding, and Dropout2d. Part of the ``numpy``
backend (re-exported by :mod:`fastcnn.kernels.numpy_backend`); shapes as documented
in :mod:`fastcnn.kernels.contract`.
"""

from __future__ import annotations

import numpy as np

from .contract import dropout_uniform

SQRT_HALF = 0.7071067811865476      # 1 / sqrt(2)
INV_SQRT_2PI = 0.3989422804014327   # 1 / sqrt(2 pi)
SQRT_2_OVER_PI = 0.7978845608028654  # sqrt(2 / pi)
GELU_CUBIC = 0.044715


# ---- element-wise activations ---------------------------------------------------------------
def tanh_forward(x, out):
    np.tanh(x, out=out)


def tanh_backward(dout, out, dx):
    dx[...] = dout * (1 - out * out)


def leaky_relu_forward(x, negative_slope, out):
    out[...] = np.where(x > 0, x, x * x.dtype.type(negative_slope))


def leaky_relu_backward(dout, x, negative_slope, dx):
    dx[...] = np.where(x > 0, dout, dout * dout.dtype.type(negative_slope))


def elu_forward(x, alpha, out):
    # expm1 of a non-positive number only: no overflow, and exact near 0
    out[...] = np.where(x > 0, x, x.dtype.type(alpha) * np.expm1(np.minimum(x, 0)))


def elu_backward(dout, x, alpha, dx):
    dx[...] = np.where(x > 0, dout, dout * (x.dtype.type(alpha) * np.exp(np.minimum(x, 0))))


def _erf(values):
    # imported here: the numpy backend (and the compiled ones' memory functions, which come
    # from it) must import without SciPy, so that they can say SciPy is missing
    from scipy.special import erf

    return erf(values)


def gelu_forward(x, approximate, out):
    wide = x.astype(np.float64)
    if approximate:
        out[...] = 0.5 * wide * (1 + np.tanh(SQRT_2_OVER_PI * (wide + GELU_CUBIC * wide ** 3)))
    else:
        out[...] = 0.5 * wide * (1 + _erf(wide * SQRT_HALF))


def gelu_backward(dout, x, approximate, dx):
    wide = x.astype(np.float64)
    if approximate:
        inner = SQRT_2_OVER_PI * (wide + GELU_CUBIC * wide ** 3)
        t = np.tanh(inner)
        slope = 0.5 * (1 + t) + 0.5 * wide * (1 - t * t) * SQRT_2_OVER_PI * (
            1 + 3 * GELU_CUBIC * wide * wide)
    else:
        slope = 0.5 * (1 + _erf(wide * SQRT_HALF)) + wide * INV_SQRT_2PI * np.exp(-0.5 * wide * wide)
    dx[...] = dout * slope


# ---- pooling ----------------------------------------------------------------------------------
def global_avgpool2d_forward(x, out):
    out[...] = x.mean(axis=(2, 3), dtype=np.float64)


def global_avgpool2d_backward(dout, dx):
    h, w = dx.shape[2:]
    dx[...] = (dout / (h * w))[:, :, None, None]


def _padded(x, padding, value):
    return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)),
                  constant_values=value)


def padded_maxpool2d_forward(x, kernel, stride, padding, out, argmax):
    from .numpy_backend import maxpool2d_forward

    width = x.shape[3]
    padded_argmax = np.empty(argmax.shape, np.int64)
    maxpool2d_forward(_padded(x, padding, -np.inf), kernel, stride, out, padded_argmax)
    # every window holds an input pixel (padding <= kernel // 2), so no -inf ever wins
    y, x_pos = np.divmod(padded_argmax, width + 2 * padding)
    argmax[...] = (y - padding) * width + (x_pos - padding)


def padded_avgpool2d_forward(x, kernel, stride, padding, out):
    from .numpy_backend import avgpool2d_forward

    avgpool2d_forward(_padded(x, padding, 0), kernel, stride, out)


def padded_avgpool2d_backward(dout, kernel, stride, padding, dx):
    from .numpy_backend import avgpool2d_backward

    n, c, h, w = dx.shape
    full = np.empty((n, c, h + 2 * padding, w + 2 * padding), dx.dtype)
    avgpool2d_backward(dout, kernel, stride, full)
    dx[...] = full[:, :, padding:padding + h, padding:padding + w]


# ---- dropout of whole channels ----------------------------------------------------------------
def dropout2d_forward(x, p, seed, out, mask):
    keep = dropout_uniform(seed, mask.size).reshape(mask.shape) >= p
    mask[...] = np.where(keep, 1.0 / (1.0 - p), 0.0)
    np.multiply(x, mask[:, :, None], out=out)


def dropout2d_backward(dout, mask, dx):
    np.multiply(dout, mask[:, :, None], out=dx)
