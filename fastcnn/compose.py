"""Reference compositions of the contract's optional operations (``contract.COMPOSED``).

A backend that lacks an optional operation runs the function of the same name here,
built from operations every backend has (the mandatory ones and the primitives:
``axpby``, ``multiply``, ``rsqrt``, ``channel_sum``, ``channel_mean``,
``channel_affine``), so that it stays on the backend's device, cuda included. Each takes
the backend module first, then the operation's arguments, already checked by
:mod:`fastcnn.functional`. Temporary buffers come from :func:`scratch`, kept per thread,
role and shape, so a training step allocates nothing after the first.
"""

from __future__ import annotations

import threading

import numpy as np

from .kernels.multi_tensor import one_by_one

_local = threading.local()


def scratch(backend, role: str, shape: tuple, dtype=None):
    """A backend array for ``role`` (contents undefined), the same one on the next call with
    the same backend, shape and dtype from this thread."""
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    dtype = np.dtype(np.float32 if dtype is None else dtype)
    key = (backend.name, role)
    held = buffers.get(key)
    if held is None or held[0] != (tuple(shape), dtype):
        held = buffers[key] = ((tuple(shape), dtype), backend.empty(tuple(shape), dtype=dtype))
    return held[1]


def constant(backend, value: float, shape: tuple):
    """A backend array of ``shape`` filled with ``value``, made once per backend; never
    written to."""
    constants = getattr(_local, "constants", None)
    if constants is None:
        constants = _local.constants = {}
    key = (backend.name, float(value), tuple(shape))
    if key not in constants:
        constants[key] = backend.to_device(np.full(shape, value, dtype=np.float32))
    return constants[key]


# ---- fused (contract.FUSED) -------------------------------------------------------------
def conv2d_maxpool_forward(backend, x, weight, bias, stride, padding, activation, pool, cols,
                           out, pooled, argmax) -> None:
    backend.conv2d_forward(x, weight, bias, stride, padding, activation, cols, out)
    backend.maxpool2d_forward(out, pool, pool, pooled, argmax)


def conv2d_maxpool_backward(backend, dpooled, argmax, out, weight, cols, stride, padding,
                            activation, dx, dweight, dbias, dcols, dout) -> None:
    backend.maxpool2d_backward(dpooled, argmax, dout)
    backend.conv2d_backward(dout, out, weight, cols, stride, padding, activation, dx, dweight,
                            dbias, dcols)


# ---- multi-tensor (contract.MULTI_TENSOR) ---------------------------------------------------
def sgd_update_many(backend, params, grads, velocities, lr, momentum) -> None:
    one_by_one(backend.sgd_update, (params, grads, velocities), lr, momentum)


def adam_update_many(backend, params, grads, ms, vs, lr, beta1, beta2, eps, step) -> None:
    one_by_one(backend.adam_update, (params, grads, ms, vs), lr, beta1, beta2, eps, step)


# ---- batch normalisation (contract.LAYER_OPERATIONS) --------------------------------------------
def batchnorm_forward(backend, x, weight, bias, running_mean, running_var, momentum, eps,
                      training, out, xhat, invstd) -> None:
    channels = x.shape[1]
    zeros = constant(backend, 0.0, (channels,))
    shift = scratch(backend, "batchnorm shift", (channels,), x.dtype)
    if not training:
        backend.rsqrt(running_var, eps, invstd)
        backend.multiply(running_mean, invstd, shift)
        backend.axpby(-1.0, shift, 0.0, shift, shift)
        backend.channel_affine(x, invstd, shift, xhat)  # (x - mean) * invstd
        backend.channel_affine(xhat, weight, bias, out)
        return
    count = x.size // channels
    mean = scratch(backend, "batchnorm mean", (channels,), x.dtype)
    var = scratch(backend, "batchnorm var", (channels,), x.dtype)
    squares = scratch(backend, "batchnorm squares", x.shape, x.dtype)
    backend.channel_mean(x, mean)
    backend.axpby(-1.0, mean, 0.0, mean, shift)
    backend.channel_affine(x, constant(backend, 1.0, (channels,)), shift, xhat)  # x - mean
    backend.multiply(xhat, xhat, squares)
    backend.channel_mean(squares, var)
    backend.rsqrt(var, eps, invstd)
    backend.channel_affine(xhat, invstd, zeros, xhat)
    backend.channel_affine(xhat, weight, bias, out)
    backend.axpby(1.0 - momentum, running_mean, momentum, mean, running_mean)
    backend.axpby(1.0 - momentum, running_var, momentum * count / (count - 1), var, running_var)


def batchnorm_backward(backend, dout, xhat, weight, invstd, training, dx, dweight, dbias) -> None:
    channels = dout.shape[1]
    zeros = constant(backend, 0.0, (channels,))
    product = scratch(backend, "batchnorm product", dout.shape, dout.dtype)
    backend.channel_sum(dout, dbias)
    backend.multiply(dout, xhat, product)
    backend.channel_sum(product, dweight)
    if dx is None:
        return
    gain = scratch(backend, "batchnorm gain", (channels,), dout.dtype)
    backend.multiply(weight, invstd, gain)
    if not training:
        backend.channel_affine(dout, gain, zeros, dx)
        return
    count = dout.size // channels
    slope = scratch(backend, "batchnorm slope", (channels,), dout.dtype)
    shift = scratch(backend, "batchnorm shift", (channels,), dout.dtype)
    backend.multiply(gain, dweight, slope)
    backend.axpby(-1.0 / count, slope, 0.0, slope, slope)
    backend.multiply(gain, dbias, shift)
    backend.axpby(-1.0 / count, shift, 0.0, shift, shift)
    backend.channel_affine(xhat, slope, shift, dx)  # - gain * (dbias + xhat * dweight) / M
    backend.channel_affine(dout, gain, zeros, product)
    backend.axpby(1.0, dx, 1.0, product, dx)
