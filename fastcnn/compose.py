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


# ---- training operations (contract.TRAINING_OPERATIONS) ----------------------------------------
def _reference_on_host(backend, op: str, *args) -> None:
    """The NumPy reference of ``op`` on the host views of the arguments: the same memory on
    a CPU backend; on a device, host copies whose results are copied back. For operations
    the primitives cannot express (logarithms, exponentials, square roots)."""
    from .kernels import training_reference

    moved = []

    def host(value):
        if value is None or isinstance(value, (bool, int, float, np.floating, np.integer, np.ndarray)):
            return value
        if isinstance(value, list):
            return [host(item) for item in value]
        copy = backend.to_host(value)
        moved.append((value, copy))
        return copy

    getattr(training_reference, op)(*(host(arg) for arg in args))
    for device_array, copy in moved:
        device_array.copy_to_device(copy)


def _on_host(op: str):
    def composition(backend, *args) -> None:
        _reference_on_host(backend, op, *args)
    composition.__name__ = composition.__qualname__ = op
    composition.__doc__ = f"{op}: the NumPy reference on the host views (see _reference_on_host)."
    return composition


softmax_cross_entropy_soft = _on_host("softmax_cross_entropy_soft")
mse_loss_weighted = _on_host("mse_loss_weighted")
binary_cross_entropy = _on_host("binary_cross_entropy")
binary_cross_entropy_with_logits = _on_host("binary_cross_entropy_with_logits")
nll_loss = _on_host("nll_loss")
log_softmax_forward = _on_host("log_softmax_forward")
log_softmax_backward = _on_host("log_softmax_backward")
rmsprop_update = _on_host("rmsprop_update")


def nesterov_update_many(backend, params, grads, velocities, lr, momentum) -> None:
    """v = momentum*v + g; p -= lr*g; p -= lr*momentum*v (three scaled adds per parameter)."""
    for param, grad, velocity in zip(params, grads, velocities):
        backend.axpby(momentum, velocity, 1.0, grad, velocity)
        backend.axpby(1.0, param, -lr, grad, param)
        backend.axpby(1.0, param, -lr * momentum, velocity, param)


def _column(array):
    """(size,) -> (size, 1) view: one channel, for the per-channel primitives."""
    return array.reshape(array.size, 1)


def sum_of_squares_many(backend, arrays, out) -> None:
    """out[i] = channel_sum(arrays[i] * arrays[i]) over a one-channel view."""
    for i, array in enumerate(arrays):
        squares = scratch(backend, "squares", (array.size, 1), array.dtype)
        backend.multiply(_column(array), _column(array), squares)
        backend.channel_sum(squares, out[i:i + 1])


def scale_many(backend, arrays, factor) -> None:
    for array in arrays:
        backend.axpby(factor, array, 0.0, array, array)


def clip_many(backend, arrays, low, high) -> None:
    """x - relu(x - high) + relu(low - x), from channel_affine, relu_forward and axpby
    (NaN stays NaN)."""
    one = backend.to_device(np.ones(1, np.float32))
    minus_one = backend.to_device(-np.ones(1, np.float32))
    above_shift = backend.to_device(np.full(1, -high, np.float32))
    below_shift = backend.to_device(np.full(1, low, np.float32))
    for array in arrays:
        column = _column(array)
        excess = scratch(backend, "clip excess", column.shape, array.dtype)
        backend.channel_affine(column, one, above_shift, excess)      # x - high
        backend.relu_forward(excess, excess)
        backend.axpby(1.0, column, -1.0, excess, column)
        backend.channel_affine(column, minus_one, below_shift, excess)  # low - x
        backend.relu_forward(excess, excess)
        backend.axpby(1.0, column, 1.0, excess, column)
