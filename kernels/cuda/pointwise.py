"""Tanh, LeakyReLU, ELU and GELU on the cuda backend (contract.LAYER_OPERATIONS).

One thread per element over flat views (any shape); slopes and alphas are passed as
float32 so the arithmetic stays in single precision. GELU's exact form uses math.erf
(CUDA's erff).
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float32

from .runtime import flat, launch

_HALF, _ONE = float32(0.5), float32(1.0)
_SQRT_HALF = float32(0.7071067811865476)
_INV_SQRT_2PI = float32(0.3989422804014327)
_SQRT_2_OVER_PI = float32(0.7978845608028654)
_CUBIC, _CUBIC3 = float32(0.044715), float32(3 * 0.044715)


@cuda.jit(device=True)
def _gelu_value_and_slope(v, approximate):
    if approximate:
        t = math.tanh(_SQRT_2_OVER_PI * (v + _CUBIC * v * v * v))
        return (_HALF * v * (_ONE + t),
                _HALF * (_ONE + t) + _HALF * v * (_ONE - t * t) * _SQRT_2_OVER_PI
                * (_ONE + _CUBIC3 * v * v))
    cdf = _HALF * (_ONE + math.erf(v * _SQRT_HALF))
    return v * cdf, cdf + v * math.exp(-_HALF * v * v) * _INV_SQRT_2PI


@cuda.jit
def _tanh_forward_kernel(x, out):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = math.tanh(x[i])


@cuda.jit
def _tanh_backward_kernel(dout, out, dx):
    i = cuda.grid(1)
    if i < dx.size:
        dx[i] = dout[i] * (_ONE - out[i] * out[i])


@cuda.jit
def _leaky_relu_forward_kernel(x, slope, out):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = x[i] if x[i] > 0 else x[i] * slope


@cuda.jit
def _leaky_relu_backward_kernel(dout, x, slope, dx):
    i = cuda.grid(1)
    if i < dx.size:
        dx[i] = dout[i] if x[i] > 0 else dout[i] * slope


@cuda.jit
def _elu_forward_kernel(x, alpha, out):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = x[i] if x[i] > 0 else alpha * (math.exp(x[i]) - _ONE)


@cuda.jit
def _elu_backward_kernel(dout, x, alpha, dx):
    i = cuda.grid(1)
    if i < dx.size:
        dx[i] = dout[i] if x[i] > 0 else dout[i] * alpha * math.exp(x[i])


@cuda.jit
def _gelu_forward_kernel(x, approximate, out):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = _gelu_value_and_slope(x[i], approximate)[0]


@cuda.jit
def _gelu_backward_kernel(dout, x, approximate, dx):
    i = cuda.grid(1)
    if i < dx.size:
        dx[i] = dout[i] * _gelu_value_and_slope(x[i], approximate)[1]


def tanh_forward(x, out):
    launch(_tanh_forward_kernel, out.size, flat(x), flat(out))


def tanh_backward(dout, out, dx):
    launch(_tanh_backward_kernel, dx.size, flat(dout), flat(out), flat(dx))


def leaky_relu_forward(x, negative_slope, out):
    launch(_leaky_relu_forward_kernel, out.size, flat(x), np.float32(negative_slope), flat(out))


def leaky_relu_backward(dout, x, negative_slope, dx):
    launch(_leaky_relu_backward_kernel, dx.size, flat(dout), flat(x), np.float32(negative_slope),
           flat(dx))


def elu_forward(x, alpha, out):
    launch(_elu_forward_kernel, out.size, flat(x), np.float32(alpha), flat(out))


def elu_backward(dout, x, alpha, dx):
    launch(_elu_backward_kernel, dx.size, flat(dout), flat(x), np.float32(alpha), flat(dx))


def gelu_forward(x, approximate, out):
    launch(_gelu_forward_kernel, out.size, flat(x), bool(approximate), flat(out))


def gelu_backward(dout, x, approximate, dx):
    launch(_gelu_backward_kernel, dx.size, flat(dout), flat(x), bool(approximate), flat(dx))
