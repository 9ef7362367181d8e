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
