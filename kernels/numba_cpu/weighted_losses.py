"""The losses of contract.TRAINING_OPERATIONS (soft targets, per-sample weights, binary,
NLL) and LogSoftmax: one serial pass over the rows each, sums in float64.

Shapes: pred/logits/probs/targets/grad (N, L); labels (N,) int32; weights (N,) (a
one-element stand-in with ``weighted`` False when None); stats (2,) = [mean loss, correct].
Minibatch rows are too few to split over threads (see .losses).
"""

from __future__ import annotations

import numpy as np

from ..training_reference import BCE_GRAD_EPSILON, BCE_LOG_FLOOR
from .jit import serial_kernel
from .scalars import first_argmax

_NO_WEIGHTS = np.ones(1, np.float32)


@serial_kernel
def _row_log_sum(row, top):
    """log(sum(exp(row - top))) in float64."""
    total = 0.0
    for j in range(row.size):
        total += np.exp(np.float64(row[j]) - top)
    return np.log(total)


@serial_kernel
def _soft_cross_entropy(logits, targets, weights, weighted, dlogits, stats):
    batch, classes = logits.shape
    loss, correct = 0.0, 0
    for r in range(batch):
        best = first_argmax(logits[r])
        correct += best == first_argmax(targets[r])
        top = np.float64(logits[r, best])
        log_sum = _row_log_sum(logits[r], top)
        w = np.float64(weights[r]) if weighted else 1.0
        row_loss = 0.0
        for j in range(classes):
            log_p = np.float64(logits[r, j]) - top - log_sum
            row_loss -= targets[r, j] * log_p
            dlogits[r, j] = w * (np.exp(log_p) - targets[r, j]) / batch
        loss += w * row_loss
    stats[0] = loss / batch
    stats[1] = correct


@serial_kernel
def _mse_weighted(pred, target, weights, weighted, dpred, stats):
    size = pred.size
    total, correct = 0.0, 0
    for r in range(pred.shape[0]):
        w = np.float64(weights[r]) if weighted else 1.0
        for j in range(pred.shape[1]):
            diff = np.float64(pred[r, j]) - target[r, j]
            total += w * diff * diff
            dpred[r, j] = 2.0 * w * diff / size
        correct += first_argmax(pred[r]) == first_argmax(target[r])
    stats[0] = total / size
    stats[1] = correct


@serial_kernel
def _binary_cross_entropy(probs, targets, weights, weighted, dprobs, stats):
    size = probs.size
    total, correct = 0.0, 0
    for r in range(probs.shape[0]):
        w = np.float64(weights[r]) if weighted else 1.0
        for j in range(probs.shape[1]):
            p, t = np.float64(probs[r, j]), np.float64(targets[r, j])
            log_p = max(np.log(p), BCE_LOG_FLOOR) if p > 0 else BCE_LOG_FLOOR
            log_q = max(np.log1p(-p), BCE_LOG_FLOOR) if p < 1 else BCE_LOG_FLOOR
            total -= w * (t * log_p + (1 - t) * log_q)
            dprobs[r, j] = w * (p - t) / max(p * (1 - p), BCE_GRAD_EPSILON) / size
            correct += (probs[r, j] > 0.5) == (targets[r, j] > 0.5)
    stats[0] = total / size
    stats[1] = correct / probs.shape[1]


@serial_kernel
def _binary_cross_entropy_with_logits(logits, targets, weights, weighted, dlogits, stats):
    size = logits.size
    total, correct = 0.0, 0
    for r in range(logits.shape[0]):
        w = np.float64(weights[r]) if weighted else 1.0
        for j in range(logits.shape[1]):
            x, t = np.float64(logits[r, j]), np.float64(targets[r, j])
            total += w * (max(x, 0.0) - x * t + np.log1p(np.exp(-abs(x))))
            dlogits[r, j] = w * (1 / (1 + np.exp(-x)) - t) / size
            correct += (logits[r, j] > 0) == (targets[r, j] > 0.5)
    stats[0] = total / size
    stats[1] = correct / logits.shape[1]


@serial_kernel
def _nll_loss(logprobs, labels, weights, weighted, dlogprobs, stats):
    batch = logprobs.shape[0]
    total, correct = 0.0, 0
    for r in range(batch):
        w = np.float64(weights[r]) if weighted else 1.0
        label = labels[r]
        total -= w * logprobs[r, label]
        correct += first_argmax(logprobs[r]) == label
        for j in range(logprobs.shape[1]):
            dlogprobs[r, j] = 0
        dlogprobs[r, label] = -w / batch
    stats[0] = total / batch
    stats[1] = correct


@serial_kernel
def _log_softmax_forward(x, out):
    for r in range(x.shape[0]):
        top = np.float64(x[r, first_argmax(x[r])])
        log_sum = _row_log_sum(x[r], top)
        for j in range(x.shape[1]):
            out[r, j] = np.float64(x[r, j]) - top - log_sum


@serial_kernel
def _log_softmax_backward(dout, out, dx):
    for r in range(dout.shape[0]):
        total = 0.0
        for j in range(dout.shape[1]):
            total += dout[r, j]
        for j in range(dout.shape[1]):
            dx[r, j] = dout[r, j] - np.exp(np.float64(out[r, j])) * total


# ---- contract functions -------------------------------------------------------------
def _weights(weights):
    return (_NO_WEIGHTS, False) if weights is None else (weights, True)


def softmax_cross_entropy_soft(logits, targets, weights, dlogits, stats):
    _soft_cross_entropy(logits, targets, *_weights(weights), dlogits, stats)


def mse_loss_weighted(pred, target, weights, dpred, stats):
    _mse_weighted(pred, target, *_weights(weights), dpred, stats)


def binary_cross_entropy(probs, targets, weights, dprobs, stats):
    _binary_cross_entropy(probs, targets, *_weights(weights), dprobs, stats)


def binary_cross_entropy_with_logits(logits, targets, weights, dlogits, stats):
    _binary_cross_entropy_with_logits(logits, targets, *_weights(weights), dlogits, stats)


def nll_loss(logprobs, labels, weights, dlogprobs, stats):
    _nll_loss(logprobs, labels, *_weights(weights), dlogprobs, stats)


def log_softmax_forward(x, out):
    _log_softmax_forward(x, out)


def log_softmax_backward(dout, out, dx):
    _log_softmax_backward(dout, out, dx)
