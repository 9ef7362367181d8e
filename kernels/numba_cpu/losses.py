"""Losses, each one fused pass over the batch: mean loss, gradient and correct count.

Shapes: logits/pred/target/dlogits/dpred (N, L); labels (N,) int32; stats (2,)
= [mean loss, number of correct rows]. Minibatches (N*L a few thousand numbers)
run on one thread; a full batch (fixed_kernel_cnn: 60,000 rows) runs in chunks of
LOSS_CHUNK rows on the pool, each chunk's float64 sums added in order, so the
result does not depend on the thread count.
"""

from __future__ import annotations

import numpy as np

from .jit import parallel_kernel, prange, serial_kernel
from .scalars import fast_exp, first_argmax


LOSS_CHUNK = 4096
"""Rows per chunk of a full-batch loss (fixed, so sums do not depend on the thread count)."""


LOG_ROWS = 16
"""Rows whose softmax sums are multiplied before one log (each sum lies in [1, classes],
so the float64 product cannot overflow): a log per row costs more than the rest of it."""


@serial_kernel
def _softmax_cross_entropy_rows(logits, labels, dlogits, start, stop, batch):
    """Rows start..stop-1; returns (loss sum, correct count) of those rows. Three sweeps
    so that the exponentials run as one loop over the rows' contiguous values (a loop
    that vectorises): z = logits - max, exp(z), then the sums, the loss and the scaling."""
    classes = logits.shape[1]
    loss = 0.0
    correct = 0
    scale = dlogits.dtype.type(1 / batch)
    for r in range(start, stop):
        best = first_argmax(logits[r])
        label = labels[r]
        correct += best == label
        top = logits[r, best]
        loss -= logits[r, label] - top  # loss = log(sum exp(z)) - z[label], z = logits - max
        row = dlogits[r]
        for j in range(classes):
            row[j] = logits[r, j] - top
    values = dlogits.reshape(dlogits.size)[start * classes:stop * classes]
    for k in range(values.size):
        values[k] = fast_exp(values[k])
    product = 1.0
    for r in range(start, stop):
        # dlogits[r] = (softmax(logits[r]) - onehot) / batch
        row = dlogits[r]
        total = 0.0
        for j in range(classes):
            total += row[j]
        product *= total
        if (r - start) % LOG_ROWS == LOG_ROWS - 1:
            loss += np.log(product)
            product = 1.0
        factor = dlogits.dtype.type(scale / total)
        for j in range(classes):
            row[j] = row[j] * factor
        row[labels[r]] -= scale
    return loss + np.log(product), correct


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
