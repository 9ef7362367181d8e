"""Backend ``cython``: the kernels compiled ahead of time, for machines where Numba cannot run.

The loops live in the extension ``fastcnn.kernels.cython._kernels`` (built by
setup.py from ``kernels/cython/_kernels.pyx``; OpenMP threads where the compiler
had OpenMP, serial otherwise). Convolutions and big dense layers are one
parallel loop each, every thread calling SciPy's single-threaded BLAS on its
own samples or pieces (see fastcnn.kernels.inner_blas), so that every core
multiplies; small dense layers are one NumPy GEMM. Each function follows the
signature and shapes documented in :mod:`fastcnn.kernels.contract`.
"""

from __future__ import annotations

import os

import numpy as np

try:
    from .cython import _kernels
except ImportError as exc:
    raise ImportError(f"the Cython extension was not compiled: {exc}, "
                      "reinstall with a C compiler: pip install .") from exc

from . import inner_blas, training_reference
from .contract import conv_output_shape
from .multi_tensor import all_float32, one_by_one, tables
from .scratch import scratch
from .numpy_backend import empty, to_device, to_host, zeros  # noqa: F401  (memory is host NumPy)

_capsules = inner_blas.load("cython").__pyx_capi__
_kernels.use_blas(_capsules["sgemm"], _capsules["dgemm"])

name = "cython"

BLAS_THREADS = 1
"""NumPy's BLAS runs single-threaded while this backend is active (fastcnn.backend
applies it): its GEMMs sit between parallel kernels whose OpenMP threads would
otherwise fight BLAS's own threads for the cores."""

OPENMP: bool = _kernels.OPENMP
"""True when the extension was built with OpenMP; False for a serial build."""

_ACTIVATION_CODES = {None: 0, "relu": 1, "sigmoid": 2}


def _default_num_threads() -> int:
    """OMP_NUM_THREADS, else NUMBA_NUM_THREADS, else the cores this process may use."""
    for variable in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS"):
        value = os.environ.get(variable, "").split(",")[0].strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def set_num_threads(n: int) -> None:
    """Threads for every parallel kernel from now on (no effect in a serial build)."""
    _kernels.set_num_threads(int(n))


def get_num_threads() -> int:
    """Threads the parallel kernels use: 1 in a serial build."""
    return _kernels.get_num_threads()


set_num_threads(_default_num_threads())


def _flat(array):
    """1-D view of a C-contiguous array (element-wise kernels take any shape)."""
    return array.reshape(-1)


def _planes(array):
    """(N, C, H, W) -> (N*C, H, W) view: the pooling and im2col kernels loop over planes."""
    return array.reshape(array.shape[0] * array.shape[1], *array.shape[2:])


def _flat_planes(array):
    """(N, C, H, W) -> (N*C, H*W) view: kernels that index a plane by flat position y*W + x."""
    return array.reshape(array.shape[0] * array.shape[1], array.shape[2] * array.shape[3])


def _plane_cols(cols, kernel_h, kernel_w):
    """cols (N, C*KH*KW, P) -> (N*C, KH*KW, P) view, the columns of each plane."""
    return cols.reshape(-1, kernel_h * kernel_w, cols.shape[2])


# ---- convolution --------------------------------------------------------------
def im2col(x, kernel_h, kernel_w, stride, padding, cols):
    _kernels.im2col(_planes(x), kernel_h, kernel_w, stride, padding,
                    _plane_cols(cols, kernel_h, kernel_w))


def col2im(cols, kernel_h, kernel_w, stride, padding, dx):
    _kernels.col2im(_plane_cols(cols, kernel_h, kernel_w), kernel_h, kernel_w, stride, padding,
                    _planes(dx))


GROUP_SAMPLES = 4
"""Samples per partial weight-gradient sum: groups fixed by the batch alone, so that the
sum's order, and with it the result, does not depend on the thread count."""


def _groups(batch):
    return max(1, min(batch, -(-batch // GROUP_SAMPLES)))


def conv2d_forward(x, weight, bias, stride, padding, activation, cols, out):
    conv2d_maxpool_forward(x, weight, bias, stride, padding, activation, 0, cols, out, None, None)


def conv2d_maxpool_forward(x, weight, bias, stride, padding, activation, pool, cols, out,
                           pooled, argmax):
    """pool 0: conv2d_forward alone (pooled, argmax None). Inference may pass out and argmax
    None with a pool: this kernel still writes them, into arrays made here."""
    if out is None:
        out = scratch("conv inference out", conv_output_shape(x.shape, weight.shape, stride,
                                                               padding), x.dtype)
    if argmax is None and pooled is not None:
        argmax = scratch("conv inference argmax", pooled.shape, np.int32)
    n, o = out.shape[:2]
    inference = cols is None
    if inference:  # one (K, P) im2col buffer per thread
        cols = np.empty((_kernels.get_num_threads(), weight[0].size, out.shape[2] * out.shape[3]),
                        dtype=x.dtype)
    _kernels.conv2d_forward(_planes(x), weight.reshape(o, -1), bias, _ACTIVATION_CODES[activation],
                            weight.shape[2], weight.shape[3], stride, padding, cols,
                            out.reshape(n, o, -1), inference, pool,
                            None if pooled is None else _planes(pooled),
                            None if argmax is None else _planes(argmax))


def conv2d_backward(dout, out, weight, cols, stride, padding, activation, dx, dweight, dbias, dcols):
    conv2d_maxpool_backward(None, None, out, weight, cols, stride, padding, activation, dx,
                            dweight, dbias, dcols, dout)


def conv2d_maxpool_backward(dpooled, argmax, out, weight, cols, stride, padding, activation,
                            dx, dweight, dbias, dcols, dout):
    """dpooled, argmax None: conv2d_backward alone."""
    n, o = dout.shape[:2]
    d, groups = dout.reshape(n, o, -1), _groups(n)
    _kernels.conv2d_backward(d, d if out is None else out.reshape(n, o, -1),
                             _ACTIVATION_CODES[activation], weight.reshape(o, -1), cols, groups,
                             dweight.reshape(o, -1), dbias, dcols, None if dx is None else _planes(dx),
                             weight.shape[2], weight.shape[3], stride, padding,
                             scratch("conv partial dweight", (groups * weight[0].size * o,),
                                     dout.dtype),
                             scratch("conv partial dbias", (groups * o,), np.float64),
                             None if dpooled is None else _flat_planes(dpooled),
                             None if argmax is None else _flat_planes(argmax))


# ---- pooling ------------------------------------------------------------------
def maxpool2d_forward(x, kernel, stride, out, argmax):
    _kernels.maxpool2d_forward(_flat_planes(x), x.shape[3], kernel, stride, _planes(out),
                               _planes(argmax))


def maxpool2d_backward(dout, argmax, dx):
    _kernels.maxpool2d_backward(_flat_planes(dout), _flat_planes(argmax), _flat_planes(dx))


def avgpool2d_forward(x, kernel, stride, out):
    _kernels.avgpool2d_forward(_planes(x), kernel, stride, _planes(out))


def avgpool2d_backward(dout, kernel, stride, dx):
    _kernels.avgpool2d_backward(_planes(dout), kernel, stride, _planes(dx))


# ---- dense --------------------------------------------------------------------
PARALLEL_FLOPS = 1 << 21
"""Multiply-adds (N*F*U) from which a dense layer's GEMMs are split across the threads."""

PIECE_ROWS = 128
"""Rows of x per piece of dx, at least two pieces (as in numba's dense.PIECE_ROWS: BLAS
packs the whole weight for every piece)."""

PIECE_UNITS = 64
"""Units per piece of dweight: thinner pieces run BLAS below its speed (as in numba's
dense.PIECE_UNITS)."""

FORWARD_UNITS = 32
"""Units per block of the forward GEMM (at least two blocks), taken by the threads as they
come free: a thread that starts late or runs slower takes fewer."""


NARROW_UNITS = 16
"""Layers with at most this many units run the narrow kernels (no BLAS, one pass over x)."""


def _pieces(x, weight):
    """Pieces of rows to split a dense layer's GEMMs into, fixed by the shape; 0: one NumPy GEMM."""
    if x.shape[0] * x.shape[1] * weight.shape[0] < PARALLEL_FLOPS:
        return 0
    return max(min(x.shape[0], 2), -(-x.shape[0] // PIECE_ROWS))


def dense_forward(x, weight, bias, activation, out):
    if weight.shape[0] <= NARROW_UNITS:
        _kernels.dense_narrow_forward(x, weight, bias, _ACTIVATION_CODES[activation], out)
        return
    if _pieces(x, weight):
        _kernels.dense_forward(x, weight, bias, _ACTIVATION_CODES[activation], out,
                               max(2, -(-weight.shape[0] // FORWARD_UNITS)))
        return
    np.matmul(x, weight.T, out=out)
    # bias per unit: the (N, O, P) layout of the convolution with P = 1
    _kernels.bias_activation_forward(out.reshape(*out.shape, 1), bias, _ACTIVATION_CODES[activation])


def dense_backward(dout, out, x, weight, activation, dx, dweight, dbias):
    if weight.shape[0] <= NARROW_UNITS:
        _kernels.dense_narrow_backward(dout, dout if out is None else out,
                                       _ACTIVATION_CODES[activation], x, weight, dx, dweight, dbias)
        return
    d = dout.reshape(*dout.shape, 1)
    _kernels.bias_activation_backward(d, d if out is None else out.reshape(d.shape),
                                      _ACTIVATION_CODES[activation], dbias)
    pieces = _pieces(x, weight)
    if pieces:
        _kernels.dense_backward(dout, x, weight, dx, dweight, -(-weight.shape[0] // PIECE_UNITS),
                                pieces)
        return
    np.matmul(dout.T, x, out=dweight)
    if dx is not None:
        np.matmul(dout, weight, out=dx)


# ---- activations --------------------------------------------------------------
def relu_forward(x, out):
    _kernels.activation_forward(_flat(x), _flat(out), _ACTIVATION_CODES["relu"])


def relu_backward(dout, out, dx):
    _kernels.activation_backward(_flat(dout), _flat(out), _flat(dx), _ACTIVATION_CODES["relu"])


def sigmoid_forward(x, out):
    _kernels.activation_forward(_flat(x), _flat(out), _ACTIVATION_CODES["sigmoid"])


def sigmoid_backward(dout, out, dx):
    _kernels.activation_backward(_flat(dout), _flat(out), _flat(dx), _ACTIVATION_CODES["sigmoid"])


softmax_forward = _kernels.softmax_forward
softmax_backward = _kernels.softmax_backward


# ---- losses -------------------------------------------------------------------
def softmax_cross_entropy(logits, labels, dlogits, stats):
    stats[:] = _kernels.softmax_cross_entropy(logits, labels, dlogits)


def mse_loss(pred, target, dpred, stats):
    stats[:] = _kernels.mse_loss(pred, target, dpred)


# ---- dropout ------------------------------------------------------------------
def dropout_forward(x, p, seed, out, mask):
    _kernels.dropout_forward(_flat(x), p, seed % 2**64, 1.0 / (1.0 - p), _flat(out), _flat(mask))


def dropout_backward(dout, mask, dx):
    _kernels.multiply(_flat(dout), _flat(mask), _flat(dx))


# ---- optimizers ---------------------------------------------------------------
def sgd_update(param, grad, velocity, lr, momentum):
    _kernels.sgd_update(_flat(param), _flat(grad), _flat(velocity), lr, momentum)


def adam_update(param, grad, m, v, lr, beta1, beta2, eps, step):
    _kernels.adam_update(_flat(param), _flat(grad), _flat(m), _flat(v), lr, beta1, beta2, eps, step)


def sgd_update_many(params, grads, velocities, lr, momentum):
    if not all_float32(params, grads, velocities):
        return one_by_one(sgd_update, (params, grads, velocities), lr, momentum)
    table, chunks, elements = tables(params, grads, velocities)
    _kernels.sgd_update_many(table, chunks, lr, momentum, 3 * elements)


def adam_update_many(params, grads, ms, vs, lr, beta1, beta2, eps, step):
    if not all_float32(params, grads, ms, vs):
        return one_by_one(adam_update, (params, grads, ms, vs), lr, beta1, beta2, eps, step)
    table, chunks, elements = tables(params, grads, ms, vs)
    _kernels.adam_update_many(table, chunks, lr, beta1, beta2, eps, step, 4 * elements)


def adadelta_update(param, grad, square_avg, acc_delta, lr, rho, eps):
    _kernels.adadelta_update(_flat(param), _flat(grad), _flat(square_avg), _flat(acc_delta),
                             lr, rho, eps)


# ---- primitives ---------------------------------------------------------------
def _by_channel(array):
    """(N, C, ...) -> (N, C, R) view, R the product of the trailing axes (1 for 2-D)."""
    return array.reshape(array.shape[0], array.shape[1], -1)


def axpby(a, x, b, y, out):
    _kernels.axpby(a, _flat(x), b, _flat(y), _flat(out))


def multiply(x, y, out):
    _kernels.multiply(_flat(x), _flat(y), _flat(out))


def rsqrt(x, eps, out):
    _kernels.rsqrt(_flat(x), eps, _flat(out))


def channel_sum(x, out):
    _kernels.channel_sum(_by_channel(x), 1.0, out)


def channel_mean(x, out):
    _kernels.channel_sum(_by_channel(x), float(x.size // x.shape[1]), out)


def channel_affine(x, scale, shift, out):
    _kernels.channel_affine(_by_channel(x), scale, shift, _by_channel(out))


# ---- the layers past the tutorials (contract.LAYER_OPERATIONS) ---------------------------
_POINTWISE = {name: code for code, name in enumerate((
    "tanh_forward", "tanh_backward", "leaky_relu_forward", "leaky_relu_backward", "elu_forward",
    "elu_backward", "gelu_forward", "gelu_backward", "gelu_tanh_forward", "gelu_tanh_backward"))}
"""The operation codes of _kernels.pointwise (its enum, in order)."""


def _pointwise(op, a, b, out, k=0.0):
    _kernels.pointwise(_POINTWISE[op], _flat(a), _flat(b), _flat(out), k)


def tanh_forward(x, out):
    _pointwise("tanh_forward", x, x, out)


def tanh_backward(dout, out, dx):
    _pointwise("tanh_backward", dout, out, dx)


def leaky_relu_forward(x, negative_slope, out):
    _pointwise("leaky_relu_forward", x, x, out, negative_slope)


def leaky_relu_backward(dout, x, negative_slope, dx):
    _pointwise("leaky_relu_backward", dout, x, dx, negative_slope)


def elu_forward(x, alpha, out):
    _pointwise("elu_forward", x, x, out, alpha)


def elu_backward(dout, x, alpha, dx):
    _pointwise("elu_backward", dout, x, dx, alpha)


def gelu_forward(x, approximate, out):
    _pointwise("gelu_tanh_forward" if approximate else "gelu_forward", x, x, out)


def gelu_backward(dout, x, approximate, dx):
    _pointwise("gelu_tanh_backward" if approximate else "gelu_backward", dout, x, dx)


def global_avgpool2d_forward(x, out):
    _kernels.global_avgpool2d_forward(_flat_planes(x), _flat(out))


def global_avgpool2d_backward(dout, dx):
    _kernels.global_avgpool2d_backward(_flat(dout), _flat_planes(dx))


def padded_maxpool2d_forward(x, kernel, stride, padding, out, argmax):
    _kernels.padded_maxpool2d_forward(_planes(x), kernel, stride, padding, _planes(out),
                                      _planes(argmax))


def padded_avgpool2d_forward(x, kernel, stride, padding, out):
    _kernels.padded_avgpool2d_forward(_planes(x), kernel, stride, padding, _planes(out))


def padded_avgpool2d_backward(dout, kernel, stride, padding, dx):
    _kernels.padded_avgpool2d_backward(_planes(dout), kernel, stride, padding, _planes(dx))


def dropout2d_forward(x, p, seed, out, mask):
    _kernels.dropout2d_forward(_planes(x), p, int(seed) % 2**64, 1.0 / (1.0 - p), _planes(out),
                               _flat(mask))


def dropout2d_backward(dout, mask, dx):
    _kernels.dropout2d_backward(_planes(dout), _flat(mask), _planes(dx))


# ---- training operations (contract.TRAINING_OPERATIONS; the losses run the reference) -----------
def log_softmax_forward(x, out):
    _kernels.log_softmax_forward(x, out)


def log_softmax_backward(dout, out, dx):
    _kernels.log_softmax_backward(dout, out, dx)


def rmsprop_update(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, eps, momentum):
    stand_in = np.zeros(1, param.dtype)  # never read
    _kernels.rmsprop_update(_flat(param), _flat(grad), _flat(square_avg),
                            stand_in if grad_avg is None else _flat(grad_avg),
                            stand_in if momentum_buffer is None else _flat(momentum_buffer),
                            lr, alpha, eps, momentum, grad_avg is not None,
                            momentum_buffer is not None)


def nesterov_update_many(params, grads, velocities, lr, momentum):
    if not all_float32(params, grads, velocities):
        return training_reference.nesterov_update_many(params, grads, velocities, lr, momentum)
    table, chunks, elements = tables(params, grads, velocities)
    _kernels.nesterov_update_many(table, chunks, lr, momentum, 3 * elements)


def sum_of_squares_many(arrays, out):
    if not all_float32(arrays):
        return training_reference.sum_of_squares_many(arrays, out)
    table, chunks, elements = tables(arrays)
    partial = np.empty(len(chunks))
    _kernels.chunk_squares(table, chunks, partial, elements)
    out[:] = np.bincount(chunks[:, 0], partial, minlength=len(arrays))


def scale_many(arrays, factor):
    if not all_float32(arrays):
        return training_reference.scale_many(arrays, factor)
    table, chunks, elements = tables(arrays)
    _kernels.scale_chunks(table, chunks, factor, elements)


def clip_many(arrays, low, high):
    if not all_float32(arrays):
        return training_reference.clip_many(arrays, low, high)
    table, chunks, elements = tables(arrays)
    _kernels.clip_chunks(table, chunks, low, high, elements)


# ---- batch normalisation ------------------------------------------------------------
def batchnorm_forward(x, weight, bias, running_mean, running_var, momentum, eps, training, out,
                      xhat, invstd):
    _kernels.batchnorm_forward(_by_channel(x), weight, bias, running_mean, running_var, momentum,
                               eps, training, _by_channel(out),
                               None if xhat is None else _by_channel(xhat), invstd)


def batchnorm_backward(dout, xhat, weight, invstd, training, dx, dweight, dbias):
    _kernels.batchnorm_backward(_by_channel(dout), _by_channel(xhat), weight, invstd, training,
                                None if dx is None else _by_channel(dx), dweight, dbias)
