"""Optimizer steps, in place, one parallel pass over each parameter (flattened, any shape),
or over every parameter of a model at once (contract.MULTI_TENSOR).

Hyper-parameters are cast to the parameter's dtype before the kernel runs, so a
float32 model is updated in float32 arithmetic, as PyTorch and the NumPy
reference do. The update formulas are those of contract.KernelBackend.

The multi-tensor kernels take a table of the arrays' addresses, so that one compiled
kernel serves any number of parameters, and split every parameter into chunks that the
threads claim (see ..multi_tensor and .claims). pytorch_cnn's Adam step was eight calls,
one a parallel region and seven on the calling thread, each through fastcnn.functional;
it is one region.
"""

from __future__ import annotations

import numpy as np

from numba import carray, types
from numba.extending import intrinsic

from .. import training_reference
from ..multi_tensor import all_float32, one_by_one, tables
from .claims import claim, claiming_threads, count_out, new_counter, wait_for
from .jit import inline_helper, launch, parallel_kernel, prange


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


# ---- every parameter in one region (contract.MULTI_TENSOR) --------------------------------
@intrinsic
def _float32_at(typingctx, address):
    """The float32 pointer at an integer address (of an array the caller keeps alive)."""
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))
    return types.CPointer(types.float32)(types.int64), codegen


@inline_helper
def _piece(table, chunks, c, column):
    """Chunk c of the array in table row chunks[c, 0], column ``column``: a 1-D view, so
    that the loops over it index from 0 (numba then drops its negative-index check, which
    kept LLVM from vectorising them: 4.5x slower)."""
    row = chunks[c, 0]
    whole = carray(_float32_at(table[row, column]), (table[row, 0],))
    return whole[chunks[c, 1]:chunks[c, 2]]


@parallel_kernel
def _sgd_many(table, chunks, lr, momentum, threads, counter):
    """table (T, 4) int64: size and the addresses of param, grad, velocity per row;
    chunks (C, 3) int64: row, first, last element."""
    for t in prange(threads):
        c = claim(counter)
        while c < chunks.shape[0]:
            param, grad = _piece(table, chunks, c, 1), _piece(table, chunks, c, 2)
            velocity = _piece(table, chunks, c, 3)
            for i in range(param.size):
                velocity[i] = velocity[i] * momentum + grad[i]
                param[i] -= lr * velocity[i]
            c = claim(counter)
        count_out(counter)
        wait_for(counter, threads)


@parallel_kernel
def _adam_many(table, chunks, lr, beta1, beta2, one_minus_beta1, one_minus_beta2, correction1,
               correction2, eps, threads, counter):
    """table (T, 5) int64: size and the addresses of param, grad, m, v per row; chunks as
    for _sgd_many."""
    for t in prange(threads):
        c = claim(counter)
        while c < chunks.shape[0]:
            param, grad = _piece(table, chunks, c, 1), _piece(table, chunks, c, 2)
            m, v = _piece(table, chunks, c, 3), _piece(table, chunks, c, 4)
            for i in range(param.size):
                g = grad[i]
                m[i] = m[i] * beta1 + one_minus_beta1 * g
                v[i] = v[i] * beta2 + one_minus_beta2 * g * g
                param[i] -= lr * (m[i] / correction1) / (np.sqrt(v[i] / correction2) + eps)
            c = claim(counter)
        count_out(counter)
        wait_for(counter, threads)


def sgd_update_many(params, grads, velocities, lr, momentum):
    if not all_float32(params, grads, velocities):
        return one_by_one(sgd_update, (params, grads, velocities), lr, momentum)
    table, chunks, work = tables(params, grads, velocities)
    cast = np.float32
    launch(_sgd_many, 3 * work, table, chunks, cast(lr), cast(momentum),
           claiming_threads(len(chunks), 3 * work), new_counter())


def adam_update_many(params, grads, ms, vs, lr, beta1, beta2, eps, step):
    if not all_float32(params, grads, ms, vs):
        return one_by_one(adam_update, (params, grads, ms, vs), lr, beta1, beta2, eps, step)
    table, chunks, work = tables(params, grads, ms, vs)
    cast = np.float32
    launch(_adam_many, 4 * work, table, chunks, cast(lr), cast(beta1), cast(beta2),
           cast(1 - beta1), cast(1 - beta2), cast(1 - beta1 ** step), cast(1 - beta2 ** step),
           cast(eps), claiming_threads(len(chunks), 4 * work), new_counter())


# ---- training operations (contract.TRAINING_OPERATIONS) -------------------------------------
@parallel_kernel
def _rmsprop_update(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha,
                    one_minus_alpha, eps, momentum, centered, with_momentum):
    for i in prange(param.size):
        g = grad[i]
        square_avg[i] = square_avg[i] * alpha + one_minus_alpha * g * g
        if centered:
            grad_avg[i] = grad_avg[i] * alpha + one_minus_alpha * g
            avg = np.sqrt(square_avg[i] - grad_avg[i] * grad_avg[i]) + eps
        else:
            avg = np.sqrt(square_avg[i]) + eps
        if with_momentum:
            momentum_buffer[i] = momentum_buffer[i] * momentum + g / avg
            param[i] -= lr * momentum_buffer[i]
        else:
            param[i] -= lr * (g / avg)


def rmsprop_update(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, eps, momentum):
    cast = param.dtype.type
    flat = param.reshape(-1)
    # an absent state is a one-element stand-in the kernel never reads
    stand_in = np.zeros(1, param.dtype)
    launch(_rmsprop_update, 3 * param.size, flat, *_flat(grad, square_avg),
           stand_in if grad_avg is None else grad_avg.reshape(-1),
           stand_in if momentum_buffer is None else momentum_buffer.reshape(-1),
           cast(lr), cast(alpha), cast(1 - alpha), cast(eps), cast(momentum),
           grad_avg is not None, momentum_buffer is not None)


@parallel_kernel
def _nesterov_many(table, chunks, lr, momentum, threads, counter):
    """table (T, 4) int64: size and the addresses of param, grad, velocity per row."""
    for t in prange(threads):
        c = claim(counter)
        while c < chunks.shape[0]:
            param, grad = _piece(table, chunks, c, 1), _piece(table, chunks, c, 2)
            velocity = _piece(table, chunks, c, 3)
            for i in range(param.size):
                velocity[i] = velocity[i] * momentum + grad[i]
                param[i] -= lr * (grad[i] + momentum * velocity[i])
            c = claim(counter)
        count_out(counter)
        wait_for(counter, threads)


def nesterov_update_many(params, grads, velocities, lr, momentum):
    if not all_float32(params, grads, velocities):
        return training_reference.nesterov_update_many(params, grads, velocities, lr, momentum)
    table, chunks, work = tables(params, grads, velocities)
    launch(_nesterov_many, 3 * work, table, chunks, np.float32(lr), np.float32(momentum),
           claiming_threads(len(chunks), 3 * work), new_counter())


@parallel_kernel
def _chunk_squares(table, chunks, partial):
    """partial (C,) float64: the sum of squares of each chunk (table (T, 2): size, address)."""
    for c in prange(chunks.shape[0]):
        values = _piece(table, chunks, c, 1)
        total = 0.0
        for i in range(values.size):
            total += np.float64(values[i]) * values[i]
        partial[c] = total


@parallel_kernel
def _scale_chunks(table, chunks, factor):
    for c in prange(chunks.shape[0]):
        values = _piece(table, chunks, c, 1)
        for i in range(values.size):
            values[i] *= factor


@parallel_kernel
def _clip_chunks(table, chunks, low, high):
    for c in prange(chunks.shape[0]):
        values = _piece(table, chunks, c, 1)
        for i in range(values.size):
            # comparisons false for NaN, which stays
            if values[i] < low:
                values[i] = low
            elif values[i] > high:
                values[i] = high


def sum_of_squares_many(arrays, out):
    if not all_float32(arrays):
        return training_reference.sum_of_squares_many(arrays, out)
    table, chunks, work = tables(arrays)
    partial = np.empty(len(chunks))
    launch(_chunk_squares, work, table, chunks, partial)
    # chunks are in row order: the per-row sums add each row's chunks in order
    out[:] = np.bincount(chunks[:, 0], partial, minlength=len(arrays))


def scale_many(arrays, factor):
    if not all_float32(arrays):
        return training_reference.scale_many(arrays, factor)
    table, chunks, work = tables(arrays)
    launch(_scale_chunks, work, table, chunks, np.float32(factor))


def clip_many(arrays, low, high):
    if not all_float32(arrays):
        return training_reference.clip_many(arrays, low, high)
    table, chunks, work = tables(arrays)
    launch(_clip_chunks, work, table, chunks, np.float32(low), np.float32(high))
