"""Fused epilogues shared by convolution and dense layers.

After a GEMM, ``bias_activation`` adds the bias and applies the activation in
one visit per row; before the backward GEMMs, ``activation_grad_bias_sum`` folds
the activation's derivative into the incoming gradient and sums the bias
gradient in the same visit. Arrays are viewed as (A, B, L) with the bias along
B: conv (N, O, OH*OW), dense (N, U, 1). The per-row helpers are what the fused
convolution kernels inline after each sample's GEMM.
"""

from __future__ import annotations

import numpy as np

from .jit import inline_helper, parallel_kernel, parallel_sum_kernel, prange
from .scalars import NO_ACTIVATION, RELU, SIGMOID, sigmoid


@inline_helper
def activate_all(values, code):
    """values (K,) = activation ``code`` of themselves, in place (no bias). Callers pass a
    slice, not start/stop bounds: numba vectorises a loop over a view from index 0, but
    not one from a bound it cannot prove non-negative (15x slower for sigmoid)."""
    if code == RELU:
        for k in range(values.size):
            if values[k] < 0:
                values[k] = 0
    elif code == SIGMOID:
        for k in range(values.size):
            values[k] = sigmoid(values[k])


@inline_helper
def activate_row(row, bias, b, code):
    """row (L,) += bias[b] (bias (B,) or None), then the activation ``code``, in place."""
    if bias is not None:
        shift = bias[b]
        for k in range(row.size):
            row[k] += shift
    activate_all(row, code)


@inline_helper
def activate_units(row, bias, code):
    """row (U,) += bias (U,) or None, then the activation ``code``, in place: a dense row."""
    activate_units_from(row, row, bias, 0, code)


@inline_helper
def activate_units_from(dst, src, bias, first, code):
    """dst (U,) = activation ``code`` of src (U,) + bias[first:first + U] (bias or None): a
    block of a dense row's units (dst may be src)."""
    for u in range(dst.size):
        value = src[u] + bias[first + u] if bias is not None else src[u]
        if code == RELU:
            value = 0 if value < 0 else value
        elif code == SIGMOID:
            value = sigmoid(value)
        dst[u] = value


@inline_helper
def fold_unit(d, y, code):
    """d times the activation's derivative at the activated output y (one element)."""
    if code == RELU:
        return d if y > 0 else d * 0  # 0, or NaN where d is NaN/inf, like dout * (out > 0)
    if code == SIGMOID:
        return d * (y * (1 - y))
    return d


@inline_helper
def sum_partials(partial, out):
    """out (B,) = partial (G, B) summed over G in order: the fixed-chunk partial sums of a
    bias (or any) gradient, so the result never depends on the thread count."""
    for b in range(out.size):
        total = 0.0
        for g in range(partial.shape[0]):
            total += partial[g, b]
        out[b] = total


@inline_helper
def fold_max_plane_backward(dpooled, argmax, y, from_pooled, code, d):
    """A fused max pool's gradient with the activation folded in: d (H*W,) = 0, then each
    dpooled (PH*PW,) times the activation's derivative at its winner, added at argmax
    (PH*PW,); y the plane's activated output (H*W,), read at the winner, or with
    ``from_pooled`` the pooled output (PH*PW,), which holds the winner's value. Returns
    the sum of what was added (float64)."""
    d[:] = 0
    total = 0.0
    for k in range(dpooled.size):
        at = argmax[k]
        value = fold_unit(dpooled[k], y[k] if from_pooled else y[at], code)
        d[at] += value
        total += value
    return total


@inline_helper
def fold_activation_row(d, y, code):
    """d (L,) *= the activation's derivative at the activated output y (L,), in place;
    returns the sum of the folded d (float64)."""
    if code == RELU:
        for k in range(d.size):
            if not y[k] > 0:
                d[k] = d[k] * 0  # 0, or NaN where d is NaN/inf, like dout * (out > 0)
    elif code == SIGMOID:
        for k in range(d.size):
            d[k] = d[k] * (y[k] * (1 - y[k]))
    total = 0.0
    for k in range(d.size):
        total += d[k]
    return total


@parallel_kernel
def bias_activation(z3, bias, code):
    """z3 (A, B, L) += bias[b] (bias (B,) or None), then the activation ``code``, in place.

    One iteration per (a, b) row, so bias-add and activation touch it once from memory."""
    outer, inner, length = z3.shape
    if length == 1:  # dense (N, U, 1): one sample's units per iteration, not one unit
        for a in prange(outer):
            activate_units(z3[a, :, 0], bias, code)
        return
    for index in prange(outer * inner):
        activate_row(z3[index // inner, index % inner], bias, index % inner, code)


DENSE_CHUNK = 1024
"""Rows per partial bias sum in the dense epilogue: fixed, so the sums do not depend on
the thread count."""


@parallel_sum_kernel
def activation_grad_bias_sum(d3, y3, code, dbias):
    """Fold the activation's derivative into d3 (A, B, L) in place (y3 the activated
    output); dbias (B,) or None receives the sum of the folded d3 over A and L."""
    if code == NO_ACTIVATION and dbias is None:
        return
    outer, inner, length = d3.shape
    if length == 1:  # dense (N, U, 1): few units to split over, so chunks of samples
        chunks = (outer + DENSE_CHUNK - 1) // DENSE_CHUNK
        partial = np.zeros((chunks, inner))
        for c in prange(chunks):
            for a in range(c * DENSE_CHUNK, min(outer, (c + 1) * DENSE_CHUNK)):
                for b in range(inner):
                    value = fold_unit(d3[a, b, 0], y3[a, b, 0], code)
                    d3[a, b, 0] = value
                    partial[c, b] += value
        if dbias is not None:
            sum_partials(partial, dbias)
        return
    for b in prange(inner):
        total = 0.0
        for a in range(outer):
            total += fold_activation_row(d3[a, b], y3[a, b], code)
        if dbias is not None:
            dbias[b] = total
