"""The NumPy reference of contract.TRAINING_OPERATIONS: extra losses, LogSoftmax, RMSprop,
Nesterov momentum and gradient clipping, on host arrays.

The numpy backend exports these as its kernels; ``fastcnn.functional`` runs them for a
backend that lacks one. Shapes and formulas: contract.KernelBackend. Losses compute in
float64 and round once; optimizer steps run in the parameter's dtype, as PyTorch does.
"""

from __future__ import annotations

import numpy as np

BCE_LOG_FLOOR = -100.0
"""PyTorch's BCELoss clamps each log at -100, so a probability of exactly 0 or 1 gives a
finite loss."""

BCE_GRAD_EPSILON = 1e-12
"""PyTorch's BCELoss gradient divides by max(p * (1 - p), 1e-12)."""


def _row_weights(weights, batch):
    return np.ones(batch) if weights is None else np.asarray(weights, np.float64)


def _first_argmax(values):
    """Index of each row's first maximum, a NaN beating every number (NumPy's rule)."""
    return np.argmax(values, axis=1)


# ---- losses -----------------------------------------------------------------------------
def softmax_cross_entropy_soft(logits, targets, weights, dlogits, stats):
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(z).sum(axis=1, keepdims=True))
    log_probs = z - log_sum
    batch = logits.shape[0]
    w = _row_weights(weights, batch)
    t = targets.astype(np.float64)
    stats[0] = np.sum(w * -(t * log_probs).sum(axis=1)) / batch
    stats[1] = np.sum(_first_argmax(logits) == _first_argmax(targets))
    dlogits[...] = (w[:, None] * (np.exp(log_probs) - t) / batch).astype(dlogits.dtype)


def mse_loss_weighted(pred, target, weights, dpred, stats):
    difference = pred.astype(np.float64) - target
    w = _row_weights(weights, pred.shape[0])[:, None]
    stats[0] = np.sum(w * difference * difference) / pred.size
    stats[1] = np.sum(_first_argmax(pred) == _first_argmax(target))
    dpred[...] = (2.0 * w * difference / pred.size).astype(dpred.dtype)


def _binary_stats(stats, loss, w, predicted, targets):
    stats[0] = np.sum(w * loss) / loss.size
    stats[1] = np.count_nonzero(predicted == (targets > 0.5)) / loss.shape[1]


def binary_cross_entropy(probs, targets, weights, dprobs, stats):
    p, t = probs.astype(np.float64), targets.astype(np.float64)
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(p), BCE_LOG_FLOOR)
        log_q = np.maximum(np.log1p(-p), BCE_LOG_FLOOR)
    w = _row_weights(weights, p.shape[0])[:, None]
    _binary_stats(stats, -(t * log_p + (1 - t) * log_q), w, probs > 0.5, targets)
    dprobs[...] = (w * (p - t) / np.maximum(p * (1 - p), BCE_GRAD_EPSILON) / p.size
                   ).astype(dprobs.dtype)


def binary_cross_entropy_with_logits(logits, targets, weights, dlogits, stats):
    x, t = logits.astype(np.float64), targets.astype(np.float64)
    loss = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
    w = _row_weights(weights, x.shape[0])[:, None]
    _binary_stats(stats, loss, w, logits > 0, targets)
    dlogits[...] = (w * (np.exp(-np.logaddexp(0.0, -x)) - t) / x.size).astype(dlogits.dtype)


def nll_loss(logprobs, labels, weights, dlogprobs, stats):
    batch = logprobs.shape[0]
    w = _row_weights(weights, batch)
    rows = np.arange(batch)
    stats[0] = -np.sum(w * logprobs[rows, labels].astype(np.float64)) / batch
    stats[1] = np.sum(_first_argmax(logprobs) == labels)
    dlogprobs[...] = 0
    dlogprobs[rows, labels] = (-w / batch).astype(dlogprobs.dtype)


# ---- LogSoftmax ---------------------------------------------------------------------------
def log_softmax_forward(x, out):
    z = x.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    out[...] = (z - np.log(np.exp(z).sum(axis=1, keepdims=True))).astype(out.dtype)


def log_softmax_backward(dout, out, dx):
    total = dout.astype(np.float64).sum(axis=1, keepdims=True)
    dx[...] = (dout - np.exp(out.astype(np.float64)) * total).astype(dx.dtype)


# ---- optimizers -----------------------------------------------------------------------------
def rmsprop_update(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, eps, momentum):
    cast = param.dtype.type
    alpha, lr, eps, momentum = cast(alpha), cast(lr), cast(eps), cast(momentum)
    square_avg *= alpha
    square_avg += (1 - alpha) * grad * grad
    if grad_avg is not None:
        grad_avg *= alpha
        grad_avg += (1 - alpha) * grad
        avg = np.sqrt(square_avg - grad_avg * grad_avg) + eps
    else:
        avg = np.sqrt(square_avg) + eps
    if momentum_buffer is not None:
        momentum_buffer *= momentum
        momentum_buffer += grad / avg
        param -= lr * momentum_buffer
    else:
        param -= lr * (grad / avg)


def nesterov_update_many(params, grads, velocities, lr, momentum):
    for param, grad, velocity in zip(params, grads, velocities):
        cast = param.dtype.type
        velocity *= cast(momentum)
        velocity += grad
        param -= cast(lr) * (grad + cast(momentum) * velocity)


def sum_of_squares_many(arrays, out):
    for i, array in enumerate(arrays):
        flat = array.reshape(-1).astype(np.float64)
        out[i] = np.dot(flat, flat)


def scale_many(arrays, factor):
    for array in arrays:
        array *= array.dtype.type(factor)


def clip_many(arrays, low, high):
    for array in arrays:
        np.clip(array, array.dtype.type(low), array.dtype.type(high), out=array)


# ---- augmentation -------------------------------------------------------------------------------
def affine_resample(x, matrices, fill, out):
    """x (N, C, H, W) -> out (N, C, H, W): out[n, :, y, x] is x[n] sampled bilinearly at
    (sy, sx) = matrices[n] @ (y, x, 1) (matrices (N, 2, 3) float64, pixel coordinates),
    reading ``fill`` outside the image."""
    _, _, height, width = x.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    for n in range(x.shape[0]):
        a = matrices[n]
        sy = a[0, 0] * ys + a[0, 1] * xs + a[0, 2]
        sx = a[1, 0] * ys + a[1, 1] * xs + a[1, 2]
        y0, x0 = np.floor(sy), np.floor(sx)
        fy, fx = sy - y0, sx - x0
        total = np.zeros((x.shape[1], height, width))
        for dy, dx, weight in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx),
                               (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
            yy, xx = (y0 + dy).astype(np.int64), (x0 + dx).astype(np.int64)
            inside = (yy >= 0) & (yy < height) & (xx >= 0) & (xx < width)
            values = np.where(inside, x[n][:, np.clip(yy, 0, height - 1), np.clip(xx, 0, width - 1)],
                              fill)
            total += weight * values
        out[n] = total
