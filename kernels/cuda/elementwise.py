"""Element-wise cuda kernels: activations, dropout and optimizer updates.

One thread per element over flat views (any shape); grid = ceil(size / THREADS).
Float scalars are passed as float32 so the arithmetic stays in single precision.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from numba import cuda, float32

from ..contract import DROPOUT_CONSTANTS
from .device import sigmoid
from .runtime import SIMULATED, flat, launch

GOLDEN, MIX1, MIX2 = (np.uint64(c) for c in DROPOUT_CONSTANTS)
SHIFT30, SHIFT27, SHIFT31, SHIFT40 = (np.uint64(s) for s in (30, 27, 31, 40))
TWO_TO_MINUS_24 = 2.0 ** -24


# ---- activations ----------------------------------------------------------------
@cuda.jit
def _relu_forward_kernel(x, out):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = max(x[i], float32(0.0))


@cuda.jit
def _relu_backward_kernel(dout, out, dx):
    i = cuda.grid(1)
    if i < dx.size:
        dx[i] = dout[i] if out[i] > 0 else float32(0.0)


@cuda.jit
def _sigmoid_forward_kernel(x, out):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = sigmoid(x[i])


@cuda.jit
def _sigmoid_backward_kernel(dout, out, dx):
    i = cuda.grid(1)
    if i < dx.size:
        dx[i] = dout[i] * out[i] * (float32(1.0) - out[i])


@cuda.jit
def _multiply_kernel(a, b, out):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = a[i] * b[i]


def _unary(kernel, x, out):
    launch(kernel, out.size, flat(x), flat(out))


def _binary(kernel, a, b, out):
    launch(kernel, out.size, flat(a), flat(b), flat(out))


def relu_forward(x, out):
    _unary(_relu_forward_kernel, x, out)


def relu_backward(dout, out, dx):
    _binary(_relu_backward_kernel, dout, out, dx)


def sigmoid_forward(x, out):
    _unary(_sigmoid_forward_kernel, x, out)


def sigmoid_backward(dout, out, dx):
    _binary(_sigmoid_backward_kernel, dout, out, dx)


_ACTIVATION_BACKWARD = {"relu": relu_backward, "sigmoid": sigmoid_backward}


def fold_activation_grad(activation, dout, out):
    """dout *= activation'(given its output ``out``), in place; nothing for no activation."""
    if activation is not None:
        _ACTIVATION_BACKWARD[activation](dout, out, dout)


# ---- dropout ------------------------------------------------------------------------
@cuda.jit(device=True)
def _dropout_uniform(seed, i):
    """The contract's splitmix64 hash of (seed, i), in wrap-around uint64 arithmetic."""
    z = seed + np.uint64(i + 1) * GOLDEN
    z = (z ^ (z >> SHIFT30)) * MIX1
    z = (z ^ (z >> SHIFT27)) * MIX2
    z = z ^ (z >> SHIFT31)
    return np.float64(z >> SHIFT40) * TWO_TO_MINUS_24


@cuda.jit
def _dropout_kernel(x, seed, p, scale, out, mask):
    i = cuda.grid(1)
    if i < out.size:
        keep = scale if _dropout_uniform(seed, i) >= p else float32(0.0)
        mask[i] = keep
        out[i] = x[i] * keep


@cuda.jit
def _dropout2d_kernel(x, seed, p, scale, size, out, mask):
    # one thread per element; the hash is of its (n, c) plane, i // size
    i = cuda.grid(1)
    if i < out.size:
        plane = i // size
        keep = scale if _dropout_uniform(seed, plane) >= p else float32(0.0)
        if i % size == 0:
            mask[plane] = keep
        out[i] = x[i] * keep


@cuda.jit
def _dropout2d_backward_kernel(dout, mask, size, dx):
    i = cuda.grid(1)
    if i < dx.size:
        dx[i] = dout[i] * mask[i // size]


def _launch_hashing(kernel, count, *args):
    if not SIMULATED:
        launch(kernel, count, *args)
        return
    with warnings.catch_warnings():  # the simulator does uint64 math in NumPy, which warns on wrap
        warnings.filterwarnings("ignore", "overflow encountered", RuntimeWarning)
        launch(kernel, count, *args)


def dropout_forward(x, p, seed, out, mask):
    _launch_hashing(_dropout_kernel, out.size, flat(x), np.uint64(seed % 2**64), float(p),
                    np.float32(1.0 / (1.0 - p)), flat(out), flat(mask))


def dropout2d_forward(x, p, seed, out, mask):
    """x, out (N, C, S), mask (N, C); an empty plane (S = 0) has no thread to write its mask."""
    _launch_hashing(_dropout2d_kernel, out.size, flat(x), np.uint64(seed % 2**64), float(p),
                    np.float32(1.0 / (1.0 - p)), x.shape[2], flat(out), flat(mask))


def dropout2d_backward(dout, mask, dx):
    launch(_dropout2d_backward_kernel, dx.size, flat(dout), flat(mask), dout.shape[2], flat(dx))


def dropout_backward(dout, mask, dx):
    _binary(_multiply_kernel, dout, mask, dx)


# ---- optimizers (in place) -------------------------------------------------------------
@cuda.jit
def _sgd_kernel(param, grad, velocity, lr, momentum):
    i = cuda.grid(1)
    if i < param.size:
        v = momentum * velocity[i] + grad[i]
        velocity[i] = v
        param[i] -= lr * v


@cuda.jit
def _adam_kernel(param, grad, m, v, lr, beta1, rest1, beta2, rest2, eps, correction1, correction2):
    # rest = 1 - beta, computed on the host in double precision like the reference
    i = cuda.grid(1)
    if i < param.size:
        g = grad[i]
        m_new = beta1 * m[i] + rest1 * g
        v_new = beta2 * v[i] + rest2 * g * g
        m[i] = m_new
        v[i] = v_new
        param[i] -= lr * (m_new / correction1) / (math.sqrt(v_new / correction2) + eps)


@cuda.jit
def _adadelta_kernel(param, grad, square_avg, acc_delta, lr, rho, rest, eps):
    i = cuda.grid(1)
    if i < param.size:
        g = grad[i]
        sa = rho * square_avg[i] + rest * g * g
        delta = math.sqrt(acc_delta[i] + eps) / math.sqrt(sa + eps) * g
        square_avg[i] = sa
        acc_delta[i] = rho * acc_delta[i] + rest * delta * delta
        param[i] -= lr * delta


def _update(kernel, param, arrays, scalars):
    launch(kernel, param.size, flat(param), *(flat(a) for a in arrays),
           *(np.float32(s) for s in scalars))


def sgd_update(param, grad, velocity, lr, momentum):
    _update(_sgd_kernel, param, (grad, velocity), (lr, momentum))


def adam_update(param, grad, m, v, lr, beta1, beta2, eps, step):
    _update(_adam_kernel, param, (grad, m, v),
            (lr, beta1, 1.0 - beta1, beta2, 1.0 - beta2, eps, 1.0 - beta1 ** step,
             1.0 - beta2 ** step))


def adadelta_update(param, grad, square_avg, acc_delta, lr, rho, eps):
    _update(_adadelta_kernel, param, (grad, square_avg, acc_delta), (lr, rho, 1.0 - rho, eps))
