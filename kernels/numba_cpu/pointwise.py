"""Tanh, LeakyReLU, ELU and GELU, forward and backward (contract.LAYER_OPERATIONS).

Any shape, flattened to 1-D views; x, out, dout, dx of one shape. exp is scalars.fast_exp
(plain arithmetic for float32, so the loops vectorise) and erf a vectorisable rational
approximation (Abramowitz & Stegun 7.1.26, absolute error below 1.5e-7, under float32's
rounding of GELU's output); NaN propagates as in the NumPy reference.
"""

from __future__ import annotations

import numpy as np

from .jit import inline_helper, launch, parallel_kernel, prange
from .scalars import fast_exp

_ONE, _HALF, _TWO = np.float32(1), np.float32(0.5), np.float32(2)
_SQRT_HALF = np.float32(0.7071067811865476)
_INV_SQRT_2PI = np.float32(0.3989422804014327)
_SQRT_2_OVER_PI = np.float32(0.7978845608028654)
_CUBIC, _CUBIC3 = np.float32(0.044715), np.float32(3 * 0.044715)
_ERF_P = np.float32(0.3275911)
_ERF_A = tuple(np.float32(a) for a in (0.254829592, -0.284496736, 1.421413741, -1.453152027,
                                       1.061405429))


@inline_helper
def tanh(v):
    """tanh(v) from exp(-2|v|) <= 1: no overflow; within a few float32 ulps of 1 near 0."""
    e = fast_exp(-_TWO * abs(v))
    t = (_ONE - e) / (_ONE + e)
    return t if v >= 0 else -t


@inline_helper
def _normal_tail(a, e):
    """2 * P(Z > a * sqrt(2)) = erfc(a) for a >= 0, given e = exp(-a*a) (A&S 7.1.26)."""
    t = _ONE / (_ONE + _ERF_P * a)
    return ((((_ERF_A[4] * t + _ERF_A[3]) * t + _ERF_A[2]) * t + _ERF_A[1]) * t + _ERF_A[0]) * t * e


@inline_helper
def normal_cdf_and_density(v):
    """(Phi(v), phi(v)) of the standard normal; the lower tail without cancellation."""
    e = fast_exp(-_HALF * v * v)
    tail = _HALF * _normal_tail(abs(v) * _SQRT_HALF, e)
    return (_ONE - tail if v >= 0 else tail), e * _INV_SQRT_2PI


@parallel_kernel
def _tanh_forward(x, out):
    for i in prange(x.size):
        out[i] = tanh(x[i])


@parallel_kernel
def _tanh_backward(dout, out, dx):
    for i in prange(dout.size):
        dx[i] = dout[i] * (_ONE - out[i] * out[i])


@parallel_kernel
def _leaky_relu_forward(x, slope, out):
    for i in prange(x.size):
        out[i] = x[i] if x[i] > 0 else x[i] * slope


@parallel_kernel
def _leaky_relu_backward(dout, x, slope, dx):
    for i in prange(dout.size):
        dx[i] = dout[i] if x[i] > 0 else dout[i] * slope


@parallel_kernel
def _elu_forward(x, alpha, out):
    for i in prange(x.size):
        out[i] = x[i] if x[i] > 0 else alpha * (fast_exp(x[i]) - _ONE)  # x <= 0 here: no overflow


@parallel_kernel
def _elu_backward(dout, x, alpha, dx):
    for i in prange(dout.size):
        dx[i] = dout[i] if x[i] > 0 else dout[i] * alpha * fast_exp(x[i])


@parallel_kernel
def _gelu_forward(x, out):
    for i in prange(x.size):
        cdf, _ = normal_cdf_and_density(x[i])
        out[i] = x[i] * cdf


@parallel_kernel
def _gelu_backward(dout, x, dx):
    for i in prange(dout.size):
        cdf, density = normal_cdf_and_density(x[i])
        dx[i] = dout[i] * (cdf + x[i] * density)


@parallel_kernel
def _gelu_tanh_forward(x, out):
    for i in prange(x.size):
        v = x[i]
        out[i] = _HALF * v * (_ONE + tanh(_SQRT_2_OVER_PI * (v + _CUBIC * v * v * v)))


@parallel_kernel
def _gelu_tanh_backward(dout, x, dx):
    for i in prange(dout.size):
        v = x[i]
        t = tanh(_SQRT_2_OVER_PI * (v + _CUBIC * v * v * v))
        slope = _HALF * (_ONE + t) + _HALF * v * (_ONE - t * t) * _SQRT_2_OVER_PI * (
            _ONE + _CUBIC3 * v * v)
        dx[i] = dout[i] * slope


# ---- contract functions -------------------------------------------------------------
def tanh_forward(x, out):
    launch(_tanh_forward, x.size, x.reshape(-1), out.reshape(-1))


def tanh_backward(dout, out, dx):
    launch(_tanh_backward, dout.size, dout.reshape(-1), out.reshape(-1), dx.reshape(-1))


def leaky_relu_forward(x, negative_slope, out):
    launch(_leaky_relu_forward, x.size, x.reshape(-1), x.dtype.type(negative_slope),
           out.reshape(-1))


def leaky_relu_backward(dout, x, negative_slope, dx):
    launch(_leaky_relu_backward, dout.size, dout.reshape(-1), x.reshape(-1),
           dout.dtype.type(negative_slope), dx.reshape(-1))


def elu_forward(x, alpha, out):
    launch(_elu_forward, x.size, x.reshape(-1), x.dtype.type(alpha), out.reshape(-1))


def elu_backward(dout, x, alpha, dx):
    launch(_elu_backward, dout.size, dout.reshape(-1), x.reshape(-1), dout.dtype.type(alpha),
           dx.reshape(-1))


def gelu_forward(x, approximate, out):
    launch(_gelu_tanh_forward if approximate else _gelu_forward, x.size, x.reshape(-1),
           out.reshape(-1))


def gelu_backward(dout, x, approximate, dx):
    launch(_gelu_tanh_backward if approximate else _gelu_backward, dout.size, dout.reshape(-1),
           x.reshape(-1), dx.reshape(-1))
