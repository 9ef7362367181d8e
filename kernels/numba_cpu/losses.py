"""Losses, each one fused pass over the batch: mean loss, gradient and correct count.

Shapes: logits/pred/target/dlogits/dpred (N, L); labels (N,) int32; stats (2,)
= [mean loss, number of correct rows]. Batches are small (N*L is a few
thousand numbers), so these run on one thread; sums are kept in float64.
"""

from __future__ import annotations

import numpy as np

from .activations import softmax_row
from .jit import serial_kernel
from .scalars import first_argmax


@serial_kernel
def _softmax_cross_entropy(logits, labels, dlogits, stats):
    batch = logits.shape[0]
    loss = 0.0
    correct = 0
    for r in range(batch):
        label = labels[r]
        # dlogits[r] = softmax(logits[r]); loss = log(sum exp(z)) - z[label] with z = logits - max
        best, top, total = softmax_row(logits[r], dlogits[r])
        loss += np.log(total) - (logits[r, label] - top)
        correct += best == label
        dlogits[r, label] -= 1
        for j in range(logits.shape[1]):
            dlogits[r, j] = dlogits[r, j] / batch
    stats[0] = loss / batch
    stats[1] = correct


@serial_kernel
def _mse_loss(pred, target, scale, dpred, stats):
    total = 0.0
    correct = 0
    for r in range(pred.shape[0]):
        for j in range(pred.shape[1]):
            diff = pred[r, j] - target[r, j]
            total += diff * diff
            dpred[r, j] = diff * scale
        correct += first_argmax(pred[r]) == first_argmax(target[r])
    stats[0] = total / pred.size
    stats[1] = correct


# ---- contract functions -------------------------------------------------------------
def softmax_cross_entropy(logits, labels, dlogits, stats):
    _softmax_cross_entropy(logits, labels, dlogits, stats)


def mse_loss(pred, target, dpred, stats):
    _mse_loss(pred, target, dpred.dtype.type(2.0 / pred.size), dpred, stats)
