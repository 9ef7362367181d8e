"""Tanh, LeakyReLU, ELU and GELU, forward and backward (contract.LAYER_OPERATIONS).

Any shape, flattened to 1-D views; x, out, dout, dx of one shape. Plain float32 arithmetic,
so that the loops vectorise: tanh and erf as rational functions of a clamped x (the minimax
approximations Eigen uses for float32, one division and no exp; the same as the cython
backend's fastcnn_tanhf and fastcnn_erff), exp as scalars.fast_exp, and GELU's slope from one
exp with erfc as Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7, under float32's
rounding of GELU's output). NaN propagates as in the NumPy reference. The kernels that
evaluate polynomials compile with jit.FASTMATH (NaN and inf kept), whose contraction makes
each step of them one fused multiply-add.
"""

from __future__ import annotations

import numpy as np

from .jit import inline_helper, launch, parallel_kernel, parallel_sum_kernel, prange
from .scalars import fast_exp

_ONE, _HALF, _TWO = np.float32(1), np.float32(0.5), np.float32(2)
_SQRT_HALF = np.float32(0.7071067811865476)
_INV_SQRT_2PI = np.float32(0.3989422804014327)
_SQRT_2_OVER_PI = np.float32(0.7978845608028654)
_CUBIC, _CUBIC3 = np.float32(0.044715), np.float32(3 * 0.044715)
_ERF_P = np.float32(0.3275911)
_ERF_A = tuple(np.float32(a) for a in (0.254829592, -0.284496736, 1.421413741, -1.453152027,
                                       1.061405429))


_TANH_CLAMP = np.float32(7.90531110763549805)
_TANH_P = tuple(np.float32(a) for a in (
    -2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-08,
    1.48572235717979e-05, 6.37261928875436e-04, 4.89352455891786e-03))
_TANH_Q = tuple(np.float32(a) for a in (
    1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03))
_ERF_CLAMP = np.float32(4)
_ERF_RATIONAL_P = tuple(np.float32(a) for a in (
    -2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
    -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02))
_ERF_RATIONAL_Q = tuple(np.float32(a) for a in (
    -1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
    -1.42647390514189e-02))


@inline_helper
def tanh(v):
    """tanh(v) within 3e-7 relative (subnormal v lose relative, not absolute, accuracy), +-1
    from 7.9 (where the rational function, inf / inf far out, is not read); NaN stays NaN."""
    x = v
    x2 = x * x
    p = _TANH_P[0]
    p = p * x2 + _TANH_P[1]
    p = p * x2 + _TANH_P[2]
    p = p * x2 + _TANH_P[3]
    p = p * x2 + _TANH_P[4]
    p = p * x2 + _TANH_P[5]
    p = p * x2 + _TANH_P[6]
    q = ((_TANH_Q[0] * x2 + _TANH_Q[1]) * x2 + _TANH_Q[2]) * x2 + _TANH_Q[3]
    t = p * x / q
    # exactly +-1 from the clamp on: GELU's slope takes 1 - t*t
    return _ONE if v >= _TANH_CLAMP else -_ONE if v <= -_TANH_CLAMP else t


@inline_helper
def erf(v):
    """erf(v) within 5e-7 absolute, +-1 beyond 4; NaN stays NaN."""
    x = _ERF_CLAMP if v > _ERF_CLAMP else -_ERF_CLAMP if v < -_ERF_CLAMP else v
    x2 = x * x
    p = _ERF_RATIONAL_P[0]
    p = p * x2 + _ERF_RATIONAL_P[1]
    p = p * x2 + _ERF_RATIONAL_P[2]
    p = p * x2 + _ERF_RATIONAL_P[3]
    p = p * x2 + _ERF_RATIONAL_P[4]
    p = p * x2 + _ERF_RATIONAL_P[5]
    p = p * x2 + _ERF_RATIONAL_P[6]
    q = (((_ERF_RATIONAL_Q[0] * x2 + _ERF_RATIONAL_Q[1]) * x2 + _ERF_RATIONAL_Q[2]) * x2
         + _ERF_RATIONAL_Q[3]) * x2 + _ERF_RATIONAL_Q[4]
    return p * x / q


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


@parallel_sum_kernel
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


@parallel_sum_kernel
def _elu_forward(x, alpha, out):
    for i in prange(x.size):
        out[i] = x[i] if x[i] > 0 else alpha * (fast_exp(x[i]) - _ONE)  # x <= 0 here: no overflow


@parallel_sum_kernel
def _elu_backward(dout, x, alpha, dx):
    for i in prange(dout.size):
        dx[i] = dout[i] if x[i] > 0 else dout[i] * alpha * fast_exp(x[i])


@parallel_sum_kernel
def _gelu_forward(x, out):
    for i in prange(x.size):  # as PyTorch writes it: x / 2 * (1 + erf(x / sqrt(2)))
        out[i] = _HALF * x[i] * (_ONE + erf(x[i] * _SQRT_HALF))


@parallel_sum_kernel
def _gelu_backward(dout, x, dx):
    for i in prange(dout.size):
        cdf, density = normal_cdf_and_density(x[i])
        dx[i] = dout[i] * (cdf + x[i] * density)


@parallel_sum_kernel
def _gelu_tanh_forward(x, out):
    for i in prange(x.size):
        v = x[i]
        out[i] = _HALF * v * (_ONE + tanh(_SQRT_2_OVER_PI * (v + _CUBIC * v * v * v)))


@parallel_sum_kernel
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
