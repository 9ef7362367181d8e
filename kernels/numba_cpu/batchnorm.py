"""Batch normalisation, one channel per iteration of the parallel loop (contract
batchnorm_forward/backward): the forward pass reads x twice (mean, then centred
variance) and writes xhat and out in a third pass; the backward pass reads dout and xhat
once for the two sums and once more for dx. Inputs are (N, C, R) views, R = H*W (1 for
(N, F) inputs); sums in float64."""

from __future__ import annotations

import numpy as np

from .jit import launch, parallel_kernel, prange


@parallel_kernel
def _forward_training(x, weight, bias, running_mean, running_var, momentum, eps, out, xhat,
                      invstd):
    count = x.shape[0] * x.shape[2]
    for c in prange(x.shape[1]):
        total = 0.0
        for n in range(x.shape[0]):
            for r in range(x.shape[2]):
                total += x[n, c, r]
        mean = total / count
        squares = 0.0
        for n in range(x.shape[0]):
            for r in range(x.shape[2]):
                d = x[n, c, r] - mean
                squares += d * d
        var = squares / count
        inverse = 1.0 / np.sqrt(var + eps)
        invstd[c] = inverse
        scale, shift = weight[c], bias[c]
        for n in range(x.shape[0]):
            for r in range(x.shape[2]):
                h = (x[n, c, r] - mean) * inverse
                xhat[n, c, r] = h
                out[n, c, r] = h * scale + shift
        running_mean[c] = (1.0 - momentum) * running_mean[c] + momentum * mean
        running_var[c] = (1.0 - momentum) * running_var[c] + momentum * var * count / (count - 1)


@parallel_kernel
def _forward_inference(x, weight, bias, running_mean, running_var, eps, out, xhat, invstd):
    for c in prange(x.shape[1]):
        inverse = 1.0 / np.sqrt(np.float64(running_var[c]) + eps)
        invstd[c] = inverse
        mean, scale, shift = running_mean[c], weight[c], bias[c]
        for n in range(x.shape[0]):
            for r in range(x.shape[2]):
                h = (x[n, c, r] - mean) * inverse
                xhat[n, c, r] = h
                out[n, c, r] = h * scale + shift


@parallel_kernel
def _backward(dout, xhat, weight, invstd, training, need_dx, dx, dweight, dbias):
    count = dout.shape[0] * dout.shape[2]
    for c in prange(dout.shape[1]):
        sum_d = 0.0
        sum_dh = 0.0
        for n in range(dout.shape[0]):
            for r in range(dout.shape[2]):
                sum_d += dout[n, c, r]
                sum_dh += dout[n, c, r] * xhat[n, c, r]
        dbias[c] = sum_d
        dweight[c] = sum_dh
        if need_dx:
            gain = np.float64(weight[c]) * invstd[c]
            mean_d = sum_d / count if training else 0.0
            mean_dh = sum_dh / count if training else 0.0
            for n in range(dout.shape[0]):
                for r in range(dout.shape[2]):
                    dx[n, c, r] = gain * (dout[n, c, r] - mean_d - xhat[n, c, r] * mean_dh)


def _by_channel(array):
    return array.reshape(array.shape[0], array.shape[1], -1)


# ---- contract functions -------------------------------------------------------------
def batchnorm_forward(x, weight, bias, running_mean, running_var, momentum, eps, training, out,
                      xhat, invstd):
    views = (_by_channel(x), weight, bias, running_mean, running_var)
    if training:
        launch(_forward_training, x.size, *views, float(momentum), float(eps), _by_channel(out),
               _by_channel(xhat), invstd)
    else:
        launch(_forward_inference, x.size, *views, float(eps), _by_channel(out), _by_channel(xhat),
               invstd)


def batchnorm_backward(dout, xhat, weight, invstd, training, dx, dweight, dbias):
    d = _by_channel(dout)
    launch(_backward, dout.size, d, _by_channel(xhat), weight, invstd, bool(training),
           dx is not None, d if dx is None else _by_channel(dx), dweight, dbias)
