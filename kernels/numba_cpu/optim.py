"""Optimizer steps, in place, one parallel pass over each parameter (flattened, any shape).

Hyper-parameters are cast to the parameter's dtype before the kernel runs, so a
float32 model is updated in float32 arithmetic, as PyTorch and the NumPy
reference do. The update formulas are those of contract.KernelBackend.
"""

from __future__ import annotations

import numpy as np

from .jit import launch, parallel_kernel, prange


@parallel_kernel
def _sgd_update(param, grad, velocity, lr, momentum):
    for i in prange(param.size):
        velocity[i] = velocity[i] * momentum + grad[i]
        param[i] -= lr * velocity[i]


@parallel_kernel
def _adam_update(param, grad, m, v, lr, beta1, beta2, one_minus_beta1, one_minus_beta2,
                 correction1, correction2, eps):
    for i in prange(param.size):
        g = grad[i]
        m[i] = m[i] * beta1 + one_minus_beta1 * g
        v[i] = v[i] * beta2 + one_minus_beta2 * g * g
        param[i] -= lr * (m[i] / correction1) / (np.sqrt(v[i] / correction2) + eps)


@parallel_kernel
def _adadelta_update(param, grad, square_avg, acc_delta, lr, rho, one_minus_rho, eps):
    for i in prange(param.size):
        g = grad[i]
        square_avg[i] = square_avg[i] * rho + one_minus_rho * g * g
        delta = np.sqrt(acc_delta[i] + eps) / np.sqrt(square_avg[i] + eps) * g
        acc_delta[i] = acc_delta[i] * rho + one_minus_rho * delta * delta
        param[i] -= lr * delta


# ---- contract functions -------------------------------------------------------------
def _flat(*arrays):
    return [array.reshape(-1) for array in arrays]


def sgd_update(param, grad, velocity, lr, momentum):
    cast = param.dtype.type
    launch(_sgd_update, param.size, *_flat(param, grad, velocity), cast(lr), cast(momentum))


def adam_update(param, grad, m, v, lr, beta1, beta2, eps, step):
    cast = param.dtype.type
    launch(_adam_update, param.size, *_flat(param, grad, m, v), cast(lr), cast(beta1), cast(beta2),
           cast(1 - beta1), cast(1 - beta2), cast(1 - beta1 ** step), cast(1 - beta2 ** step),
           cast(eps))


def adadelta_update(param, grad, square_avg, acc_delta, lr, rho, eps):
    cast = param.dtype.type
    launch(_adadelta_update, param.size, *_flat(param, grad, square_avg, acc_delta), cast(lr),
           cast(rho), cast(1 - rho), cast(eps))
