"""Batch normalisation, one channel per iteration of the parallel loop (contract
batchnorm_forward/backward). Inputs are (N, C, R) views, R = H*W (1 for (N, F) inputs).

The forward pass reads x twice (the mean, then the centred variance: no cancellation
where the mean is large against the spread) and writes xhat and out in a third pass; the
backward pass reads dout and xhat once for the two sums and once more for dx. Each loop
runs along a contiguous row x[n, c] (R values) with float64 sums that fastmath lets LLVM
split into vector lanes (parallel_sum_kernel): 3-4x faster than summing x[n, c, r]
element by element in order. A channel's sums are always taken in the same order by one
thread, so results do not depend on the thread count. Short planes (R below SHORT_PLANE)
would not vectorise so, nor would (N, F) inputs, whose channels are columns (R = 1): there
each iteration takes a block of whole channels, fixed by the shape, and walks the batch's
rows across it with per-element sums, then adds each channel's R of them (at (128, 256)
one channel at a time ran at 0.6x PyTorch's speed, 1.5-2x this way).
"""

from __future__ import annotations

import os

import numpy as np

from .jit import inline_helper, launch, parallel_sum_kernel, prange, serial_sum_kernel


@inline_helper
def _update_running(running_mean, running_var, c, mean, var, momentum, count):
    """Channel c's running statistics, as PyTorch keeps them: the batch's mean, and its
    variance over ``count`` values unbiased (count / (count - 1))."""
    running_mean[c] = (1.0 - momentum) * running_mean[c] + momentum * mean
    running_var[c] = (1.0 - momentum) * running_var[c] + momentum * var * count / (count - 1)


@parallel_sum_kernel
def _forward_training(x, weight, bias, running_mean, running_var, momentum, eps, out, xhat,
                      invstd):
    batch, channels, size = x.shape
    count = batch * size
    for c in prange(channels):
        total = 0.0
        for n in range(batch):
            row = x[n, c]
            for r in range(size):
                total += row[r]
        mean = total / count
        squares = 0.0
        for n in range(batch):
            row = x[n, c]
            for r in range(size):
                d = row[r] - mean
                squares += d * d
        var = squares / count
        inverse = 1.0 / np.sqrt(var + eps)
        invstd[c] = inverse
        _normalise(x, c, np.float32(mean), np.float32(inverse), weight[c], bias[c], out, xhat)
        _update_running(running_mean, running_var, c, mean, var, momentum, count)


@parallel_sum_kernel
def _forward_inference(x, weight, bias, running_mean, running_var, eps, out, xhat, invstd):
    """With the running statistics nothing is summed: each sample's planes are normalised
    in memory order, so the three streams (x in, xhat and out) run sequentially (one
    channel at a time across the batch ran at 0.65x PyTorch's speed on 32x28x28 maps)."""
    channels = x.shape[1]
    mean = np.empty(channels, np.float32)
    inverse = np.empty(channels, np.float32)
    for c in range(channels):
        invstd[c] = 1.0 / np.sqrt(np.float64(running_var[c]) + eps)
        inverse[c] = invstd[c]
        mean[c] = running_mean[c]
    for n in prange(x.shape[0]):
        for c in range(channels):
            row, h_row, o_row = x[n, c], xhat[n, c], out[n, c]
            centre, scale, shift, factor = mean[c], weight[c], bias[c], inverse[c]
            for r in range(x.shape[2]):
                h = (row[r] - centre) * factor
                h_row[r] = h
                o_row[r] = h * scale + shift


@parallel_sum_kernel
def _forward_inference_out(x, weight, bias, running_mean, running_var, eps, out, invstd):
    """_forward_inference without xhat (no backward pass follows), as PyTorch's inference
    kernel: out = x * scale + shift, one read and one write in memory order."""
    channels = x.shape[1]
    scale = np.empty(channels, np.float32)
    shift = np.empty(channels, np.float32)
    for c in range(channels):
        inverse = 1.0 / np.sqrt(np.float64(running_var[c]) + eps)
        invstd[c] = inverse
        scale[c] = weight[c] * inverse
        shift[c] = bias[c] - running_mean[c] * weight[c] * inverse
    for n in prange(x.shape[0]):
        for c in range(channels):
            row, o_row, a, b = x[n, c], out[n, c], scale[c], shift[c]
            for r in range(x.shape[2]):
                o_row[r] = row[r] * a + b


@serial_sum_kernel
def _normalise(x, c, mean, inverse, scale, shift, out, xhat):
    """xhat[:, c] = (x[:, c] - mean) * inverse; out[:, c] = xhat * scale + shift, in float32."""
    for n in range(x.shape[0]):
        row, h_row, o_row = x[n, c], xhat[n, c], out[n, c]
        for r in range(x.shape[2]):
            h = (row[r] - mean) * inverse
            h_row[r] = h
            o_row[r] = h * scale + shift


@parallel_sum_kernel
def _backward(dout, xhat, weight, invstd, training, need_dx, dx, dweight, dbias):
    batch, channels, size = dout.shape
    count = batch * size
    for c in prange(channels):
        sum_d = 0.0
        sum_dh = 0.0
        for n in range(batch):
            d_row, h_row = dout[n, c], xhat[n, c]
            for r in range(size):
                sum_d += d_row[r]
                sum_dh += d_row[r] * h_row[r]
        dbias[c] = sum_d
        dweight[c] = sum_dh
        if need_dx:
            gain = np.float32(np.float64(weight[c]) * invstd[c])
            mean_d = np.float32(sum_d / count if training else 0.0)
            mean_dh = np.float32(sum_dh / count if training else 0.0)
            for n in range(batch):
                d_row, h_row, x_row = dout[n, c], xhat[n, c], dx[n, c]
                for r in range(size):
                    x_row[r] = gain * (d_row[r] - mean_d - h_row[r] * mean_dh)


BLOCK_WIDTH = 256
"""Floats of a row of x (N, C*R) that one iteration of the channel-block kernels takes:
a few whole channels of short planes (R = 9 or 49), so that their sums run along
contiguous rows of that width instead of along rows of R values."""


SHORT_PLANE = 128
"""Planes of fewer values than this take the channel-block kernels (one thread, batch 128,
Zen 5: forward/backward 0.115/0.063 -> 0.030/0.025 ms at 64 x 3 x 3, 0.150/0.087 ->
0.080/0.075 ms at 32 x 7 x 7); longer rows vectorise well enough one channel at a time
(16 x 14 x 14: 0.116/0.087 ms that way, 0.145/0.140 ms in blocks)."""


def _blocks(size: int) -> bool:
    """True when planes of ``size`` values take the channel-block kernels; FASTCNN_BN_BLOCKS=0
    keeps one channel per iteration (read at every call, for A/B runs)."""
    return size < SHORT_PLANE and os.environ.get("FASTCNN_BN_BLOCKS", "1") != "0"


def _per_block(channels: int, size: int) -> int:
    """Channels per block for planes of ``size`` values: fixed by the shape alone, so that
    the sums' order does not depend on the thread count."""
    blocks = max(1, min(channels, round(channels * size / BLOCK_WIDTH)))
    return -(-channels // blocks)


@inline_helper
def _block_sizes(x2, size):
    """(N, C, N*R) of x2 (N, C*R)."""
    return x2.shape[0], x2.shape[1] // size, x2.shape[0] * size


@inline_helper
def _block(block, per_block, channels, size):
    """(first channel, past the last, first column, columns) of a channel block."""
    first = block * per_block
    last = min(channels, first + per_block)
    return first, last, first * size, (last - first) * size


@parallel_sum_kernel
def _blocks_training(x2, size, per_block, weight, bias, running_mean, running_var, momentum,
                     eps, out2, xhat2, invstd):
    """_forward_training for x2 (N, C*R) (out2 and xhat2 alike), a block of per_block
    channels per iteration: per-element float64 sums down the batch along the block's
    rows, then each channel's R of them."""
    batch, channels, count = _block_sizes(x2, size)
    for block in prange((channels + per_block - 1) // per_block):
        first, last, start, width = _block(block, per_block, channels, size)
        sums = np.zeros(width)
        for n in range(batch):
            row = x2[n, start:start + width]
            for k in range(width):
                sums[k] += row[k]
        centre = np.empty(width)
        for c in range(last - first):
            total = 0.0
            for r in range(size):
                total += sums[c * size + r]
            for r in range(size):
                centre[c * size + r] = total / count
        squares = np.zeros(width)
        for n in range(batch):
            row = x2[n, start:start + width]
            for k in range(width):
                d = row[k] - centre[k]
                squares[k] += d * d
        shift = np.empty(width, np.float32)
        scale = np.empty(width, np.float32)
        factor = np.empty(width, np.float32)
        mean32 = np.empty(width, np.float32)
        for c in range(last - first):
            total = 0.0
            for r in range(size):
                total += squares[c * size + r]
            var = total / count
            mean = centre[c * size]
            inverse = 1.0 / np.sqrt(var + eps)
            channel = first + c
            invstd[channel] = inverse
            for r in range(size):
                at = c * size + r
                mean32[at], factor[at] = mean, inverse
                scale[at], shift[at] = weight[channel], bias[channel]
            _update_running(running_mean, running_var, channel, mean, var, momentum, count)
        for n in range(batch):
            row, h_row = x2[n, start:start + width], xhat2[n, start:start + width]
            o_row = out2[n, start:start + width]
            for k in range(width):
                h = (row[k] - mean32[k]) * factor[k]
                h_row[k] = h
                o_row[k] = h * scale[k] + shift[k]


@parallel_sum_kernel
def _blocks_backward(d2, h2, size, per_block, weight, invstd, training, need_dx, dx2, dweight,
                     dbias):
    """_backward for d2 (N, C*R) (h2 and dx2 alike), a block of per_block channels per
    iteration (see _blocks_training)."""
    batch, channels, count = _block_sizes(d2, size)
    for block in prange((channels + per_block - 1) // per_block):
        first, last, start, width = _block(block, per_block, channels, size)
        sums_d = np.zeros(width)
        sums_dh = np.zeros(width)
        for n in range(batch):
            d_row, h_row = d2[n, start:start + width], h2[n, start:start + width]
            for k in range(width):
                sums_d[k] += d_row[k]
                sums_dh[k] += d_row[k] * h_row[k]
        gain = np.empty(width, np.float32)
        mean_d = np.empty(width, np.float32)
        mean_dh = np.empty(width, np.float32)
        for c in range(last - first):
            sum_d, sum_dh = 0.0, 0.0
            for r in range(size):
                sum_d += sums_d[c * size + r]
                sum_dh += sums_dh[c * size + r]
            channel = first + c
            dbias[channel], dweight[channel] = sum_d, sum_dh
            for r in range(size):
                at = c * size + r
                gain[at] = np.float64(weight[channel]) * invstd[channel]
                mean_d[at] = sum_d / count if training else 0.0
                mean_dh[at] = sum_dh / count if training else 0.0
        if need_dx:
            for n in range(batch):
                d_row, h_row = d2[n, start:start + width], h2[n, start:start + width]
                x_row = dx2[n, start:start + width]
                for k in range(width):
                    x_row[k] = gain[k] * (d_row[k] - mean_d[k] - h_row[k] * mean_dh[k])


FEATURE_BLOCK = 64
"""Features per iteration for (N, F) inputs: 256 bytes of each row, and F / 64 blocks
to share between the threads."""


def _by_channel(array):
    return array.reshape(array.shape[0], array.shape[1], -1)


# ---- contract functions -------------------------------------------------------------
def batchnorm_forward(x, weight, bias, running_mean, running_var, momentum, eps, training, out,
                      xhat, invstd):
    if training and x.ndim == 2:  # each feature a channel of planes of one value
        launch(_blocks_training, x.size, x, 1, FEATURE_BLOCK, weight, bias, running_mean,
               running_var, float(momentum), float(eps), out, xhat, invstd)
        return
    views = (_by_channel(x), weight, bias, running_mean, running_var)
    size = views[0].shape[2]
    if training and _blocks(size):
        flat = (x.shape[0], -1)
        launch(_blocks_training, x.size, x.reshape(flat), size, _per_block(x.shape[1], size),
               weight, bias, running_mean, running_var, float(momentum), float(eps),
               out.reshape(flat), xhat.reshape(flat), invstd)
    elif training:
        launch(_forward_training, x.size, *views, float(momentum), float(eps), _by_channel(out),
               _by_channel(xhat), invstd)
    elif xhat is None:
        launch(_forward_inference_out, x.size, *views, float(eps), _by_channel(out), invstd)
    else:
        launch(_forward_inference, x.size, *views, float(eps), _by_channel(out), _by_channel(xhat),
               invstd)


def batchnorm_backward(dout, xhat, weight, invstd, training, dx, dweight, dbias):
    if dout.ndim == 2:
        launch(_blocks_backward, dout.size, dout, xhat, 1, FEATURE_BLOCK, weight, invstd,
               bool(training), dx is not None, dout if dx is None else dx, dweight, dbias)
        return
    d = _by_channel(dout)
    size = d.shape[2]
    if _blocks(size):
        flat = (dout.shape[0], -1)
        launch(_blocks_backward, dout.size, dout.reshape(flat), xhat.reshape(flat), size,
               _per_block(dout.shape[1], size), weight, invstd, bool(training), dx is not None,
               dout.reshape(flat) if dx is None else dx.reshape(flat), dweight, dbias)
        return
    launch(_backward, dout.size, d, _by_channel(xhat), weight, invstd, bool(training),
           dx is not None, d if dx is None else _by_channel(dx), dweight, dbias)
