"""The layers past the tutorials (contract.LAYER_OPERATIONS) as plain loops: the readable
specification, part of the ``naive`` backend (re-exported by :mod:`fastcnn.kernels.naive`).

Element-wise activations take any shape, x, out, dout, dx of one shape; pooling x, dx
(N, C, H, W) and out, dout, argmax (N, C, OH, OW); Dropout2d x (N, C, S), mask (N, C).
"""

from __future__ import annotations

import math

import numpy as np

from .contract import dropout_uniform


# ---- element-wise activations ---------------------------------------------------------------
def tanh_forward(x, out):
    for index in np.ndindex(x.shape):
        out[index] = math.tanh(x[index])


def tanh_backward(dout, out, dx):
    for index in np.ndindex(dout.shape):
        dx[index] = dout[index] * (1 - out[index] * out[index])


def leaky_relu_forward(x, negative_slope, out):
    for index in np.ndindex(x.shape):
        out[index] = x[index] if x[index] > 0 else negative_slope * x[index]


def leaky_relu_backward(dout, x, negative_slope, dx):
    for index in np.ndindex(dout.shape):
        dx[index] = dout[index] if x[index] > 0 else negative_slope * dout[index]


def elu_forward(x, alpha, out):
    for index in np.ndindex(x.shape):
        value = float(x[index])
        out[index] = value if value > 0 else alpha * math.expm1(value)


def elu_backward(dout, x, alpha, dx):
    for index in np.ndindex(dout.shape):
        value = float(x[index])
        dx[index] = dout[index] if value > 0 else dout[index] * alpha * math.exp(value)


def _gelu_and_slope(value, approximate):
    """(gelu(value), its derivative) of one number."""
    if approximate:
        k = math.sqrt(2 / math.pi)
        t = math.tanh(k * (value + 0.044715 * value ** 3))
        return (0.5 * value * (1 + t),
                0.5 * (1 + t) + 0.5 * value * (1 - t * t) * k * (1 + 3 * 0.044715 * value * value))
    cdf = 0.5 * (1 + math.erf(value / math.sqrt(2)))
    density = math.exp(-0.5 * value * value) / math.sqrt(2 * math.pi)
    return value * cdf, cdf + value * density


def gelu_forward(x, approximate, out):
    for index in np.ndindex(x.shape):
        out[index] = _gelu_and_slope(float(x[index]), approximate)[0]


def gelu_backward(dout, x, approximate, dx):
    for index in np.ndindex(dout.shape):
        dx[index] = dout[index] * _gelu_and_slope(float(x[index]), approximate)[1]


# ---- pooling ----------------------------------------------------------------------------------
def global_avgpool2d_forward(x, out):
    batch, channels, height, width = x.shape
    for n in range(batch):
        for c in range(channels):
            total = 0.0
            for y in range(height):
                for x_pos in range(width):
                    total += x[n, c, y, x_pos]
            out[n, c] = total / (height * width)


def global_avgpool2d_backward(dout, dx):
    batch, channels, height, width = dx.shape
    for n in range(batch):
        for c in range(channels):
            for y in range(height):
                for x_pos in range(width):
                    dx[n, c, y, x_pos] = dout[n, c] / (height * width)


def padded_maxpool2d_forward(x, kernel, stride, padding, out, argmax):
    """Windows start at oy*stride - padding; pixels outside the plane are -inf, never winners."""
    batch, channels, height, width = x.shape
    _, _, out_h, out_w = out.shape
    for n in range(batch):
        for c in range(channels):
            for oy in range(out_h):
                for ox in range(out_w):
                    best, best_at = -math.inf, None
                    for i in range(kernel):
                        for j in range(kernel):
                            y, x_pos = oy * stride - padding + i, ox * stride - padding + j
                            if not (0 <= y < height and 0 <= x_pos < width):
                                continue
                            value = x[n, c, y, x_pos]
                            # strictly greater: the first maximum wins; the first NaN beats all
                            if best_at is None or value > best or (np.isnan(value) and not np.isnan(best)):
                                best, best_at = value, y * width + x_pos
                    out[n, c, oy, ox] = best
                    argmax[n, c, oy, ox] = best_at


def padded_avgpool2d_forward(x, kernel, stride, padding, out):
    batch, channels, height, width = x.shape
    _, _, out_h, out_w = out.shape
    for n in range(batch):
        for c in range(channels):
            for oy in range(out_h):
                for ox in range(out_w):
                    total = 0.0
                    for i in range(kernel):
                        for j in range(kernel):
                            y, x_pos = oy * stride - padding + i, ox * stride - padding + j
                            if 0 <= y < height and 0 <= x_pos < width:
                                total += x[n, c, y, x_pos]
                    out[n, c, oy, ox] = total / (kernel * kernel)  # padding counts


def padded_avgpool2d_backward(dout, kernel, stride, padding, dx):
    batch, channels, height, width = dx.shape
    _, _, out_h, out_w = dout.shape
    dx[...] = 0
    for n in range(batch):
        for c in range(channels):
            for oy in range(out_h):
                for ox in range(out_w):
                    share = dout[n, c, oy, ox] / (kernel * kernel)
                    for i in range(kernel):
                        for j in range(kernel):
                            y, x_pos = oy * stride - padding + i, ox * stride - padding + j
                            if 0 <= y < height and 0 <= x_pos < width:
                                dx[n, c, y, x_pos] += share


# ---- dropout of whole channels ----------------------------------------------------------------
def dropout2d_forward(x, p, seed, out, mask):
    batch, channels, size = x.shape
    uniform = dropout_uniform(seed, batch * channels)
    for n in range(batch):
        for c in range(channels):
            mask[n, c] = 1.0 / (1.0 - p) if uniform[n * channels + c] >= p else 0.0
            for s in range(size):
                out[n, c, s] = x[n, c, s] * mask[n, c]


def dropout2d_backward(dout, mask, dx):
    batch, channels, size = dout.shape
    for n in range(batch):
        for c in range(channels):
            for s in range(size):
                dx[n, c, s] = dout[n, c, s] * mask[n, c]
