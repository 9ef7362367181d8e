"""Backend ``naive``: every kernel as plain Python loops over samples, channels and pixels.

The readable specification of :mod:`fastcnn.kernels.contract` and the slow
baseline the benchmarks compare against, in the spirit of CS231n's
``conv_forward_naive``. NumPy only allocates arrays and, where a loop over a
whole filter would drown the reading, takes the dot product of two vectors.
Works for float32 and float64: each result takes the dtype of the array it
is written into.
"""

from __future__ import annotations

import math

import numpy as np

from .contract import DROPOUT_CONSTANTS, conv_output_size
from .numpy_backend import empty, to_device, to_host, zeros  # noqa: F401  (host memory, as numpy)

name = "naive"


# ---- scalar helpers -------------------------------------------------------------
def _sigmoid(value):
    """Logistic function of one number; exp of a non-positive number only, so no overflow."""
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-value))
    e = math.exp(value)
    return e / (1.0 + e)


def _activate(activation, value):
    """One pre-activation value -> its activated value (activation in ACTIVATIONS)."""
    if activation == "relu":
        return max(value, 0.0)
    if activation == "sigmoid":
        return _sigmoid(value)
    return value


def _activation_derivative(activation, activated):
    """Derivative of the activation, written in terms of its output."""
    if activation == "relu":
        return 1.0 if activated > 0 else 0.0
    if activation == "sigmoid":
        return activated * (1.0 - activated)
    return 1.0


def _first_argmax(row):
    """row (L,) -> index of its largest element (the first one on ties)."""
    best = 0
    for j in range(1, len(row)):
        if row[j] > row[best]:
            best = j
    return best


# ---- convolution ------------------------------------------------------------------
def _column_entries(x_shape, kernel_h, kernel_w, stride, padding):
    """Yield (n, c, row, column, y, x) for every entry cols[n, row, column] of im2col and the
    pixel (y, x) of plane x[n, c] it holds; y or x fall outside the image in the padding."""
    batch, channels, height, width = x_shape
    out_h = conv_output_size(height, kernel_h, stride, padding)
    out_w = conv_output_size(width, kernel_w, stride, padding)
    for n in range(batch):
        for c in range(channels):
            for i in range(kernel_h):
                for j in range(kernel_w):
                    row = c * kernel_h * kernel_w + i * kernel_w + j
                    for oy in range(out_h):
                        for ox in range(out_w):
                            yield (n, c, row, oy * out_w + ox,
                                   oy * stride + i - padding, ox * stride + j - padding)


def im2col(x, kernel_h, kernel_w, stride, padding, cols):
    """x (N, C, H, W) -> cols (N, C*KH*KW, OH*OW); padded pixels read as 0."""
    height, width = x.shape[2:]
    for n, c, row, column, y, x_pos in _column_entries(x.shape, kernel_h, kernel_w, stride, padding):
        inside = 0 <= y < height and 0 <= x_pos < width
        cols[n, row, column] = x[n, c, y, x_pos] if inside else 0


def col2im(cols, kernel_h, kernel_w, stride, padding, dx):
    """cols (N, C*KH*KW, OH*OW) -> dx (N, C, H, W), summing overlapping windows."""
    height, width = dx.shape[2:]
    dx[...] = 0
    for n, c, row, column, y, x_pos in _column_entries(dx.shape, kernel_h, kernel_w, stride, padding):
        if 0 <= y < height and 0 <= x_pos < width:  # padding has no gradient
            dx[n, c, y, x_pos] += cols[n, row, column]


def _zero_padded(x, padding):
    """x (N, C, H, W) -> copy (N, C, H + 2*padding, W + 2*padding) with a zero border."""
    batch, channels, height, width = x.shape
    padded = np.zeros((batch, channels, height + 2 * padding, width + 2 * padding), dtype=x.dtype)
    padded[:, :, padding:padding + height, padding:padding + width] = x
    return padded


def conv2d_forward(x, weight, bias, stride, padding, activation, cols, out):
    """x (N, C, H, W), weight (O, C, KH, KW), bias (O,) or None -> out (N, O, OH, OW); cols = im2col(x)."""
    out_channels, _, kernel_h, kernel_w = weight.shape
    batch, _, out_h, out_w = out.shape
    if cols is not None:
        im2col(x, kernel_h, kernel_w, stride, padding, cols)  # kept for the backward pass
    padded = _zero_padded(x, padding)
    for n in range(batch):
        for o in range(out_channels):
            for oy in range(out_h):
                for ox in range(out_w):
                    top, left = oy * stride, ox * stride
                    window = padded[n, :, top:top + kernel_h, left:left + kernel_w]
                    total = np.dot(window.ravel(), weight[o].ravel())
                    if bias is not None:
                        total += bias[o]
                    out[n, o, oy, ox] = _activate(activation, total)


def conv2d_backward(dout, out, weight, cols, stride, padding, activation,
                    dx, dweight, dbias, dcols):
    """dout, out (N, O, OH, OW), weight (O, C, KH, KW), cols (N, C*KH*KW, OH*OW)
    -> dx (N, C, H, W) or None, dweight (O, C, KH, KW), dbias (O,) or None; dcols workspace."""
    out_channels, channels, kernel_h, kernel_w = weight.shape
    batch, _, out_h, out_w = dout.shape
    _fold_activation_derivative(activation, dout, out)
    dweight[...] = 0
    if dbias is not None:
        dbias[...] = 0
    if dx is not None:
        dcols[...] = 0
    for n in range(batch):
        for o in range(out_channels):
            for oy in range(out_h):
                for ox in range(out_w):
                    grad = dout[n, o, oy, ox]
                    pixel = oy * out_w + ox
                    window = cols[n, :, pixel].reshape(channels, kernel_h, kernel_w)
                    dweight[o] += grad * window
                    if dbias is not None:
                        dbias[o] += grad
                    if dx is not None:
                        dcols[n, :, pixel] += grad * weight[o].ravel()
    if dx is not None:
        col2im(dcols, kernel_h, kernel_w, stride, padding, dx)


def _fold_activation_derivative(activation, dout, out):
    """dout *= activation'(out), element by element, in place (dout, out of one shape)."""
    if activation is None:
        return  # out may be anything then
    for index in np.ndindex(dout.shape):
        dout[index] *= _activation_derivative(activation, out[index])


# ---- pooling ------------------------------------------------------------------------
def maxpool2d_forward(x, kernel, stride, out, argmax):
    """x (N, C, H, W) -> out (N, C, OH, OW), argmax (N, C, OH, OW) int32 = y*W + x of the winner."""
    batch, channels, _, width = x.shape
    _, _, out_h, out_w = out.shape
    for n in range(batch):
        for c in range(channels):
            for oy in range(out_h):
                for ox in range(out_w):
                    best_y, best_x = oy * stride, ox * stride
                    for i in range(kernel):
                        for j in range(kernel):
                            y, x_pos = oy * stride + i, ox * stride + j
                            # strictly greater: the first maximum in row-major order wins;
                            # a NaN beats every number, so the first NaN wins (NumPy's argmax)
                            value, best = x[n, c, y, x_pos], x[n, c, best_y, best_x]
                            if value > best or (np.isnan(value) and not np.isnan(best)):
                                best_y, best_x = y, x_pos
                    out[n, c, oy, ox] = x[n, c, best_y, best_x]
                    argmax[n, c, oy, ox] = best_y * width + best_x


def maxpool2d_backward(dout, argmax, dx):
    """dout (N, C, OH, OW), argmax (N, C, OH, OW) int32 -> dx (N, C, H, W), non-zero at winners."""
    batch, channels, out_h, out_w = dout.shape
    width = dx.shape[3]
    dx[...] = 0
    for n in range(batch):
        for c in range(channels):
            for oy in range(out_h):
                for ox in range(out_w):
                    y, x_pos = divmod(int(argmax[n, c, oy, ox]), width)
                    dx[n, c, y, x_pos] += dout[n, c, oy, ox]


def avgpool2d_forward(x, kernel, stride, out):
    """x (N, C, H, W) -> out (N, C, OH, OW), the mean of each kernel x kernel window."""
    batch, channels, out_h, out_w = out.shape
    for n in range(batch):
        for c in range(channels):
            for oy in range(out_h):
                for ox in range(out_w):
                    total = 0.0
                    for i in range(kernel):
                        for j in range(kernel):
                            total += x[n, c, oy * stride + i, ox * stride + j]
                    out[n, c, oy, ox] = total / (kernel * kernel)


def avgpool2d_backward(dout, kernel, stride, dx):
    """dout (N, C, OH, OW) -> dx (N, C, H, W): each window pixel gets dout / kernel**2."""
    batch, channels, out_h, out_w = dout.shape
    dx[...] = 0
    for n in range(batch):
        for c in range(channels):
            for oy in range(out_h):
                for ox in range(out_w):
                    share = dout[n, c, oy, ox] / (kernel * kernel)
                    for i in range(kernel):
                        for j in range(kernel):
                            dx[n, c, oy * stride + i, ox * stride + j] += share


# ---- dense ----------------------------------------------------------------------------
def dense_forward(x, weight, bias, activation, out):
    """x (N, F), weight (U, F), bias (U,) or None -> out (N, U) = act(x @ weight.T + bias)."""
    batch, units = out.shape
    for n in range(batch):
        for u in range(units):
            total = np.dot(x[n], weight[u])
            if bias is not None:
                total += bias[u]
            out[n, u] = _activate(activation, total)


def dense_backward(dout, out, x, weight, activation, dx, dweight, dbias):
    """dout, out (N, U), x (N, F), weight (U, F) -> dx (N, F) or None, dweight (U, F), dbias (U,) or None."""
    batch, units = dout.shape
    features = x.shape[1]
    _fold_activation_derivative(activation, dout, out)
    for u in range(units):
        for f in range(features):
            dweight[u, f] = np.dot(dout[:, u], x[:, f])  # summed over the batch
        if dbias is not None:
            dbias[u] = sum(dout[n, u] for n in range(batch))
    if dx is not None:
        for n in range(batch):
            for f in range(features):
                dx[n, f] = np.dot(dout[n], weight[:, f])


# ---- activations (element-wise, any shape) ------------------------------------------
def relu_forward(x, out):
    """x, out (any shape, the same): out = max(x, 0)."""
    for index in np.ndindex(x.shape):
        out[index] = max(x[index], 0)


def relu_backward(dout, out, dx):
    """dout, out, dx (any shape, the same): dx = dout where out > 0 else 0."""
    for index in np.ndindex(dout.shape):
        dx[index] = dout[index] if out[index] > 0 else 0


def sigmoid_forward(x, out):
    """x, out (any shape, the same): out = 1 / (1 + exp(-x))."""
    for index in np.ndindex(x.shape):
        out[index] = _sigmoid(x[index])


def sigmoid_backward(dout, out, dx):
    """dout, out, dx (any shape, the same): dx = dout * out * (1 - out)."""
    for index in np.ndindex(dout.shape):
        dx[index] = dout[index] * out[index] * (1 - out[index])


def softmax_forward(x, out):
    """x (N, L) -> out (N, L), softmax of each row."""
    batch, classes = x.shape
    for n in range(batch):
        row_max = max(x[n, j] for j in range(classes))  # exp never overflows
        exps = [math.exp(x[n, j] - row_max) for j in range(classes)]
        total = sum(exps)
        for j in range(classes):
            out[n, j] = exps[j] / total


def softmax_backward(dout, out, dx):
    """dout, out (N, L) -> dx (N, L) = out * (dout - sum(dout * out) over the row)."""
    batch, classes = dout.shape
    for n in range(batch):
        weighted = sum(dout[n, j] * out[n, j] for j in range(classes))
        for j in range(classes):
            dx[n, j] = out[n, j] * (dout[n, j] - weighted)


# ---- losses --------------------------------------------------------------------------------
def softmax_cross_entropy(logits, labels, dlogits, stats):
    """logits (N, L), labels (N,) int32 -> dlogits (N, L); stats (2,) = [mean loss, correct count]."""
    batch, classes = logits.shape
    total_loss = 0.0
    correct = 0
    for n in range(batch):
        label = int(labels[n])
        row_max = max(logits[n, j] for j in range(classes))
        exps = [math.exp(logits[n, j] - row_max) for j in range(classes)]
        norm = sum(exps)
        total_loss += math.log(norm) - (logits[n, label] - row_max)
        for j in range(classes):
            target = 1.0 if j == label else 0.0
            dlogits[n, j] = (exps[j] / norm - target) / batch
        if _first_argmax(logits[n]) == label:
            correct += 1
    stats[0] = total_loss / batch
    stats[1] = correct


def mse_loss(pred, target, dpred, stats):
    """pred, target (N, L) -> dpred (N, L) = 2 (pred - target) / (N L); stats (2,) = [mean loss, correct count]."""
    batch, classes = pred.shape
    total_loss = 0.0
    correct = 0
    for n in range(batch):
        for j in range(classes):
            diff = float(pred[n, j]) - float(target[n, j])
            total_loss += diff * diff
            dpred[n, j] = 2.0 * diff / (batch * classes)
        if _first_argmax(pred[n]) == _first_argmax(target[n]):
            correct += 1
    stats[0] = total_loss / (batch * classes)
    stats[1] = correct


# ---- dropout --------------------------------------------------------------------------------
_GOLDEN, _MIX1, _MIX2 = DROPOUT_CONSTANTS
_UINT64 = 2**64 - 1


def _dropout_uniform(seed, index):
    """The contract's splitmix64 hash of (seed, element index) -> a number in [0, 1)."""
    z = (seed + (index + 1) * _GOLDEN) & _UINT64
    z = ((z ^ (z >> 30)) * _MIX1) & _UINT64
    z = ((z ^ (z >> 27)) * _MIX2) & _UINT64
    z = z ^ (z >> 31)
    return (z >> 40) * 2.0**-24


def dropout_forward(x, p, seed, out, mask):
    """x, out, mask (any shape, the same): mask = 1/(1-p) where the element is kept else 0; out = x * mask."""
    scale = 1.0 / (1.0 - p)
    for flat_index, index in enumerate(np.ndindex(x.shape)):  # C order, as the hash counts
        mask[index] = scale if _dropout_uniform(seed, flat_index) >= p else 0.0
        out[index] = x[index] * mask[index]


def dropout_backward(dout, mask, dx):
    """dout, mask, dx (any shape, the same): dx = dout * mask."""
    for index in np.ndindex(dout.shape):
        dx[index] = dout[index] * mask[index]


# ---- optimizers (in place, element by element) -----------------------------------------------
def sgd_update(param, grad, velocity, lr, momentum):
    """param, grad, velocity (any shape, the same): velocity = momentum*velocity + grad; param -= lr*velocity."""
    for index in np.ndindex(param.shape):
        velocity[index] = momentum * velocity[index] + grad[index]
        param[index] -= lr * velocity[index]


def adam_update(param, grad, m, v, lr, beta1, beta2, eps, step):
    """param, grad, m, v (any shape, the same): one bias-corrected Adam step (step >= 1)."""
    for index in np.ndindex(param.shape):
        g = grad[index]
        m[index] = beta1 * m[index] + (1 - beta1) * g
        v[index] = beta2 * v[index] + (1 - beta2) * g * g
        m_hat = m[index] / (1 - beta1**step)
        v_hat = v[index] / (1 - beta2**step)
        param[index] -= lr * m_hat / (math.sqrt(v_hat) + eps)


def adadelta_update(param, grad, square_avg, acc_delta, lr, rho, eps):
    """param, grad, square_avg, acc_delta (any shape, the same): one Adadelta step."""
    for index in np.ndindex(param.shape):
        g = grad[index]
        square_avg[index] = rho * square_avg[index] + (1 - rho) * g * g
        delta = math.sqrt(acc_delta[index] + eps) / math.sqrt(square_avg[index] + eps) * g
        acc_delta[index] = rho * acc_delta[index] + (1 - rho) * delta * delta
        param[index] -= lr * delta


# ---- primitives -----------------------------------------------------------------
def axpby(a, x, b, y, out):
    flat_x, flat_y, flat_out = x.reshape(-1), y.reshape(-1), out.reshape(-1)
    for i in range(flat_out.size):
        flat_out[i] = a * flat_x[i] + b * flat_y[i]


def multiply(x, y, out):
    flat_x, flat_y, flat_out = x.reshape(-1), y.reshape(-1), out.reshape(-1)
    for i in range(flat_out.size):
        flat_out[i] = flat_x[i] * flat_y[i]


def rsqrt(x, eps, out):
    flat_x, flat_out = x.reshape(-1), out.reshape(-1)
    for i in range(flat_out.size):
        flat_out[i] = 1.0 / math.sqrt(float(flat_x[i]) + eps)


def _channel_sums(x):
    """x (N, C, ...) -> list of C float sums over every axis but 1."""
    view = x.reshape(x.shape[0], x.shape[1], -1)
    sums = [0.0] * view.shape[1]
    for n in range(view.shape[0]):
        for c in range(view.shape[1]):
            for r in range(view.shape[2]):
                sums[c] += float(view[n, c, r])
    return sums


def channel_sum(x, out):
    for c, total in enumerate(_channel_sums(x)):
        out[c] = total


def channel_mean(x, out):
    count = x.size // x.shape[1]
    for c, total in enumerate(_channel_sums(x)):
        out[c] = total / count


def channel_affine(x, scale, shift, out):
    view, out_view = x.reshape(x.shape[0], x.shape[1], -1), out.reshape(out.shape[0], out.shape[1], -1)
    for n in range(view.shape[0]):
        for c in range(view.shape[1]):
            for r in range(view.shape[2]):
                out_view[n, c, r] = view[n, c, r] * scale[c] + shift[c]


# ---- the layers past the tutorials (contract.LAYER_OPERATIONS) ---------------------------
from .naive_layers import (dropout2d_backward, dropout2d_forward, elu_backward,  # noqa: E402,F401
                           elu_forward, gelu_backward, gelu_forward, global_avgpool2d_backward,
                           global_avgpool2d_forward, leaky_relu_backward, leaky_relu_forward,
                           padded_avgpool2d_backward, padded_avgpool2d_forward,
                           padded_maxpool2d_forward, tanh_backward, tanh_forward)
