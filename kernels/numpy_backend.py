"""Backend ``numpy``: vectorised im2col + GEMM in plain NumPy.

The reference every other backend is tested against. Each function follows
the signature and shapes documented in :mod:`fastcnn.kernels.contract`.
"""

from __future__ import annotations

import numpy as np

from .contract import dropout_uniform

name = "numpy"


# ---- memory -----------------------------------------------------------------
def to_device(array):
    return np.ascontiguousarray(array)


def to_host(array):
    return np.asarray(array)


def empty(shape, dtype=np.float32):
    return np.empty(shape, dtype=dtype)


def zeros(shape, dtype=np.float32):
    return np.zeros(shape, dtype=dtype)


# ---- convolution --------------------------------------------------------------
def _window_view(xpad, kernel_h, kernel_w, stride):
    """xpad (N, C, Hp, Wp) -> read-only view (N, C, KH, KW, OH, OW) of every window."""
    n, c, hp, wp = xpad.shape
    oh = (hp - kernel_h) // stride + 1
    ow = (wp - kernel_w) // stride + 1
    sn, sc, sh, sw = xpad.strides
    return np.lib.stride_tricks.as_strided(
        xpad, (n, c, kernel_h, kernel_w, oh, ow),
        (sn, sc, sh, sw, sh * stride, sw * stride), writeable=False)


def _pad(x, padding):
    if padding == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))


def im2col(x, kernel_h, kernel_w, stride, padding, cols):
    windows = _window_view(_pad(x, padding), kernel_h, kernel_w, stride)
    cols.reshape(windows.shape)[...] = windows


def col2im(cols, kernel_h, kernel_w, stride, padding, dx):
    n, c, h, w = dx.shape
    hp, wp = h + 2 * padding, w + 2 * padding
    oh = (hp - kernel_h) // stride + 1
    ow = (wp - kernel_w) // stride + 1
    dpad = np.zeros((n, c, hp, wp), dtype=dx.dtype)
    windows = cols.reshape(n, c, kernel_h, kernel_w, oh, ow)
    for i in range(kernel_h):
        for j in range(kernel_w):
            dpad[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride] += windows[:, :, i, j]
    dx[...] = dpad[:, :, padding:padding + h, padding:padding + w]


def _activate(activation, z):
    """Apply ``activation`` to z in place."""
    if activation == "relu":
        np.maximum(z, 0, out=z)
    elif activation == "sigmoid":
        sigmoid_forward(z, z)


def _activation_grad(activation, dout, out):
    """Fold the activation's derivative into dout (in place)."""
    if activation == "relu":
        dout *= out > 0
    elif activation == "sigmoid":
        dout *= out * (1 - out)


def conv2d_forward(x, weight, bias, stride, padding, activation, cols, out):
    o, c, kh, kw = weight.shape
    n = x.shape[0]
    if cols is None:  # inference: nothing keeps them
        cols = np.empty((n, c * kh * kw, out.shape[2] * out.shape[3]), dtype=x.dtype)
    im2col(x, kh, kw, stride, padding, cols)
    result = out.reshape(n, o, -1)
    np.matmul(weight.reshape(o, -1), cols, out=result)
    if bias is not None:
        result += bias[:, None]
    _activate(activation, out)


def conv2d_backward(dout, out, weight, cols, stride, padding, activation, dx, dweight, dbias, dcols):
    o, c, kh, kw = weight.shape
    n = dout.shape[0]
    _activation_grad(activation, dout, out)
    d = dout.reshape(n, o, -1)
    # sum over samples of d[n] @ cols[n].T, done as one GEMM over (N*P)
    dweight.reshape(o, -1)[...] = np.tensordot(d, cols, axes=([0, 2], [0, 2]))
    if dbias is not None:
        dbias[...] = d.sum(axis=(0, 2))
    if dx is not None:
        np.matmul(weight.reshape(o, -1).T, d, out=dcols)
        col2im(dcols, kh, kw, stride, padding, dx)


# ---- pooling --------------------------------------------------------------------
def maxpool2d_forward(x, kernel, stride, out, argmax):
    n, c, h, w = x.shape
    windows = _window_view(x, kernel, kernel, stride)           # (N, C, K, K, OH, OW)
    oh, ow = windows.shape[-2:]
    flat = windows.reshape(n, c, kernel * kernel, oh, ow)
    best = flat.argmax(axis=2)                                   # first maximum wins
    out[...] = np.take_along_axis(flat, best[:, :, None], axis=2)[:, :, 0]
    i, j = np.divmod(best, kernel)
    rows = np.arange(oh)[:, None] * stride + i
    cols_ = np.arange(ow)[None, :] * stride + j
    argmax[...] = rows * w + cols_


def maxpool2d_backward(dout, argmax, dx):
    n, c, h, w = dx.shape
    flat = np.zeros((n * c, h * w), dtype=dx.dtype)
    index = argmax.reshape(n * c, -1)
    rows = np.repeat(np.arange(n * c), index.shape[1])
    np.add.at(flat, (rows, index.ravel()), dout.reshape(n * c, -1).ravel())
    dx[...] = flat.reshape(n, c, h, w)


def avgpool2d_forward(x, kernel, stride, out):
    windows = _window_view(x, kernel, kernel, stride)
    out[...] = windows.mean(axis=(2, 3))


def avgpool2d_backward(dout, kernel, stride, dx):
    n, c, h, w = dx.shape
    oh, ow = dout.shape[-2:]
    dx[...] = 0
    share = dout / (kernel * kernel)
    for i in range(kernel):
        for j in range(kernel):
            dx[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride] += share


# ---- dense ------------------------------------------------------------------------
def dense_forward(x, weight, bias, activation, out):
    np.matmul(x, weight.T, out=out)
    if bias is not None:
        out += bias
    _activate(activation, out)


def dense_backward(dout, out, x, weight, activation, dx, dweight, dbias):
    _activation_grad(activation, dout, out)
    np.matmul(dout.T, x, out=dweight)
    if dbias is not None:
        dbias[...] = dout.sum(axis=0)
    if dx is not None:
        np.matmul(dout, weight, out=dx)


# ---- activations ------------------------------------------------------------------
def relu_forward(x, out):
    np.maximum(x, 0, out=out)


def relu_backward(dout, out, dx):
    np.multiply(dout, out > 0, out=dx)


def sigmoid_forward(x, out):
    # exp of a non-positive number only: no overflow for large |x|
    e = np.exp(-np.abs(x))
    out[...] = np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_backward(dout, out, dx):
    dx[...] = dout * out * (1 - out)


def softmax_forward(x, out):
    z = x - x.max(axis=1, keepdims=True)
    np.exp(z, out=out)
    out /= out.sum(axis=1, keepdims=True)


def softmax_backward(dout, out, dx):
    dx[...] = out * (dout - (dout * out).sum(axis=1, keepdims=True))


# ---- losses ------------------------------------------------------------------------
def softmax_cross_entropy(logits, labels, dlogits, stats):
    n = logits.shape[0]
    z = logits - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    rows = np.arange(n)
    loss = (log_norm - z[rows, labels]).mean()
    softmax_forward(logits, dlogits)
    dlogits[rows, labels] -= 1
    dlogits /= n
    stats[0] = loss
    stats[1] = np.count_nonzero(logits.argmax(axis=1) == labels)


def mse_loss(pred, target, dpred, stats):
    diff = pred - target
    stats[0] = np.mean(diff * diff, dtype=np.float64)
    stats[1] = np.count_nonzero(pred.argmax(axis=1) == target.argmax(axis=1))
    np.multiply(diff, 2.0 / diff.size, out=dpred)


# ---- dropout -------------------------------------------------------------------------
def dropout_forward(x, p, seed, out, mask):
    keep = dropout_uniform(seed, x.size).reshape(x.shape) >= p
    # float64 scale, rounded once to the mask's dtype: the contract's bit-exact mask
    mask[...] = np.where(keep, 1.0 / (1.0 - p), 0.0)
    np.multiply(x, mask, out=out)


def dropout_backward(dout, mask, dx):
    np.multiply(dout, mask, out=dx)


# ---- optimizers ------------------------------------------------------------------------
def sgd_update(param, grad, velocity, lr, momentum):
    velocity *= momentum
    velocity += grad
    param -= lr * velocity


def adam_update(param, grad, m, v, lr, beta1, beta2, eps, step):
    m *= beta1
    m += (1 - beta1) * grad
    v *= beta2
    v += (1 - beta2) * grad * grad
    m_hat = m / (1 - beta1 ** step)
    v_hat = v / (1 - beta2 ** step)
    param -= (lr * m_hat / (np.sqrt(v_hat) + eps)).astype(param.dtype)


def adadelta_update(param, grad, square_avg, acc_delta, lr, rho, eps):
    square_avg *= rho
    square_avg += (1 - rho) * grad * grad
    delta = np.sqrt(acc_delta + eps) / np.sqrt(square_avg + eps) * grad
    acc_delta *= rho
    acc_delta += (1 - rho) * delta * delta
    param -= (lr * delta).astype(param.dtype)


# ---- primitives -----------------------------------------------------------------
def axpby(a, x, b, y, out):
    np.add(a * x, b * y, out=out)


def multiply(x, y, out):
    np.multiply(x, y, out=out)


def rsqrt(x, eps, out):
    np.reciprocal(np.sqrt(x.astype(np.float64) + eps), out=out, casting="same_kind")


def _by_channel(array):
    """(N, C, ...) -> (N, C, R) view, R the product of the trailing axes (1 for 2-D)."""
    return array.reshape(array.shape[0], array.shape[1], -1)


def channel_sum(x, out):
    out[...] = _by_channel(x).sum(axis=(0, 2), dtype=np.float64)


def channel_mean(x, out):
    view = _by_channel(x)
    out[...] = view.sum(axis=(0, 2), dtype=np.float64) / (view.shape[0] * view.shape[2])


def channel_affine(x, scale, shift, out):
    view = _by_channel(out)
    np.multiply(_by_channel(x), scale[:, None], out=view)
    view += shift[:, None]


# ---- the layers past the tutorials (contract.LAYER_OPERATIONS) ---------------------------
from .numpy_layers import (dropout2d_backward, dropout2d_forward, elu_backward,  # noqa: E402,F401
                           elu_forward, gelu_backward, gelu_forward, global_avgpool2d_backward,
                           global_avgpool2d_forward, leaky_relu_backward, leaky_relu_forward,
                           padded_avgpool2d_backward, padded_avgpool2d_forward,
                           padded_maxpool2d_forward, tanh_backward, tanh_forward)


# ---- training operations (contract.TRAINING_OPERATIONS): the reference ------------------------
from .training_reference import (binary_cross_entropy, binary_cross_entropy_with_logits,  # noqa: E402,F401
                                 clip_many, log_softmax_backward, log_softmax_forward,
                                 mse_loss_weighted, nesterov_update_many, nll_loss,
                                 rmsprop_update, scale_many, softmax_cross_entropy_soft,
                                 sum_of_squares_many)
