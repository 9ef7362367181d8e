"""Losses, each one fused pass over the batch: mean loss, gradient and correct count.

Shapes: logits/pred/target/dlogits/dpred (N, L); labels (N,) int32; stats (2,)
= [mean loss, number of correct rows]. Minibatches (N*L a few thousand numbers)
run on one thread; a full batch (fixed_kernel_cnn: 60,000 rows) runs in chunks of
LOSS_CHUNK rows on the pool, each chunk's float64 sums added in order, so the
result does not depend on the thread count.
"""

from __future__ import annotations

import numpy as np

from .activations import softmax_row
from .jit import parallel_kernel, prange, serial_kernel
from .scalars import first_argmax


LOSS_CHUNK = 4096
"""Rows per chunk of a full-batch loss (fixed, so sums do not depend on the thread count)."""


@serial_kernel
def _softmax_cross_entropy_rows(logits, labels, dlogits, start, stop, batch):
    """Rows start..stop-1; returns (loss sum, correct count) of those rows."""
    loss = 0.0
    correct = 0
    for r in range(start, stop):
        label = labels[r]
        # dlogits[r] = softmax(logits[r]); loss = log(sum exp(z)) - z[label] with z = logits - max
        best, top, total = softmax_row(logits[r], dlogits[r])
        loss += np.log(total) - (logits[r, label] - top)
        correct += best == label
        dlogits[r, label] -= 1
        for j in range(logits.shape[1]):
            dlogits[r, j] = dlogits[r, j] / batch
    return loss, correct


@serial_kernel
def _softmax_cross_entropy(logits, labels, dlogits, stats):
    batch = logits.shape[0]
    loss, correct = _softmax_cross_entropy_rows(logits, labels, dlogits, 0, batch, batch)
    stats[0] = loss / batch
    stats[1] = correct


@parallel_kernel
def _softmax_cross_entropy_chunked(logits, labels, dlogits, stats):
    batch = logits.shape[0]
    chunks = (batch + LOSS_CHUNK - 1) // LOSS_CHUNK
    partial = np.zeros((chunks, 2))
    for c in prange(chunks):
        loss, correct = _softmax_cross_entropy_rows(
            logits, labels, dlogits, c * LOSS_CHUNK, min(batch, (c + 1) * LOSS_CHUNK), batch)
        partial[c, 0] = loss
        partial[c, 1] = correct
    loss = 0.0
    correct = 0.0
    for c in range(chunks):
        loss += partial[c, 0]
        correct += partial[c, 1]
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
    if logits.shape[0] > LOSS_CHUNK:
        _softmax_cross_entropy_chunked(logits, labels, dlogits, stats)
    else:
        _softmax_cross_entropy(logits, labels, dlogits, stats)


def mse_loss(pred, target, dpred, stats):
    _mse_loss(pred, target, dpred.dtype.type(2.0 / pred.size), dpred, stats)
