"""Row-wise cuda kernels: softmax and the fused losses, one block of ROW_THREADS per row.

logits, pred, target, dlogits, dpred (N, L); labels (N,) int32; stats (2,).
The losses write each row's share of [mean loss, correct] to a cached (2, N)
workspace, and one reduction block per statistic adds them up into stats:
no host round trip and no atomics, so the result is deterministic.
"""

from __future__ import annotations

import math

from numba import cuda, float32, int32

from .device import block_sum, row_argmax, sum_middle_axis
from .runtime import ROW_THREADS, flat, workspace


@cuda.jit(device=True)
def _row_softmax_terms(x, row, values, indices):
    """(max, first index of the max, sum of exp(x - max)) of x[row, :], stable."""
    top, winner = row_argmax(x, row, values, indices)
    total = float32(0.0)
    for j in range(cuda.threadIdx.x, x.shape[1], cuda.blockDim.x):
        total += math.exp(x[row, j] - top)
    return top, winner, block_sum(values, total)


@cuda.jit
def _softmax_forward_kernel(x, out):
    values = cuda.shared.array(ROW_THREADS, float32)
    indices = cuda.shared.array(ROW_THREADS, int32)
    row = cuda.blockIdx.x
    top, _, total = _row_softmax_terms(x, row, values, indices)
    for j in range(cuda.threadIdx.x, x.shape[1], cuda.blockDim.x):
        out[row, j] = math.exp(x[row, j] - top) / total


@cuda.jit
def _softmax_backward_kernel(dout, out, dx):
    values = cuda.shared.array(ROW_THREADS, float32)
    row = cuda.blockIdx.x
    dot = float32(0.0)
    for j in range(cuda.threadIdx.x, out.shape[1], cuda.blockDim.x):
        dot += dout[row, j] * out[row, j]
    dot = block_sum(values, dot)
    for j in range(cuda.threadIdx.x, out.shape[1], cuda.blockDim.x):
        dx[row, j] = out[row, j] * (dout[row, j] - dot)


@cuda.jit
def _cross_entropy_kernel(logits, labels, dlogits, row_stats, inv_n):
    values = cuda.shared.array(ROW_THREADS, float32)
    indices = cuda.shared.array(ROW_THREADS, int32)
    row = cuda.blockIdx.x
    label = labels[row]
    top, winner, total = _row_softmax_terms(logits, row, values, indices)
    for j in range(cuda.threadIdx.x, logits.shape[1], cuda.blockDim.x):
        probability = math.exp(logits[row, j] - top) / total
        if j == label:
            probability -= float32(1.0)
        dlogits[row, j] = probability * inv_n
    if cuda.threadIdx.x == 0:
        row_stats[0, row] = (math.log(total) - (logits[row, label] - top)) * inv_n
        row_stats[1, row] = float32(1.0) if winner == label else float32(0.0)


@cuda.jit
def _mse_kernel(pred, target, dpred, row_stats, scale):
    values = cuda.shared.array(ROW_THREADS, float32)
    indices = cuda.shared.array(ROW_THREADS, int32)
    row = cuda.blockIdx.x
    _, pred_winner = row_argmax(pred, row, values, indices)
    _, target_winner = row_argmax(target, row, values, indices)
    total = float32(0.0)
    for j in range(cuda.threadIdx.x, pred.shape[1], cuda.blockDim.x):
        diff = pred[row, j] - target[row, j]
        total += diff * diff
        dpred[row, j] = diff * scale
    total = block_sum(values, total)
    if cuda.threadIdx.x == 0:
        row_stats[0, row] = total * scale * float32(0.5)   # scale = 2 / (N*L)
        row_stats[1, row] = float32(1.0) if pred_winner == target_winner else float32(0.0)


def _per_row(kernel, rows, *args):
    if rows:
        kernel[rows, ROW_THREADS](*args)


def softmax_forward(x, out):
    _per_row(_softmax_forward_kernel, x.shape[0], x, out)


def softmax_backward(dout, out, dx):
    _per_row(_softmax_backward_kernel, out.shape[0], dout, out, dx)


def _loss(kernel, inputs, gradient, stats, scale):
    """Run a per-row loss kernel, then reduce its (2, N) row statistics into stats."""
    rows = gradient.shape[0]
    row_stats = workspace("loss-rows", (2, rows))
    _per_row(kernel, rows, *inputs, gradient, row_stats, float32(scale))
    sum_middle_axis(flat(row_stats), 1, 2, rows, stats)


def softmax_cross_entropy(logits, labels, dlogits, stats):
    _loss(_cross_entropy_kernel, (logits, labels), dlogits, stats, 1.0 / logits.shape[0])


def mse_loss(pred, target, dpred, stats):
    _loss(_mse_kernel, (pred, target), dpred, stats, 2.0 / pred.size)
