"""Dense (fully connected) layers: GEMMs plus fused epilogues.

Shapes: x (N, F); weight (U, F); bias (U,); out/dout (N, U). The epilogues
see out as (N, U, 1), so the bias runs along U as it does along O for conv.

A big layer's GEMMs run inside one parallel kernel, each thread multiplying its
blocks on gemm's micro-kernel (or ``np.dot``, single-threaded BLAS, see jit.py) and
packing only the operands of its own block: the forward pass in blocks of rows of x
times blocks of units, the backward pass (dweight and dx together) in one block of
features per thread, or, for a tall layer with few units, in partial sums over pieces
of rows. Every output element is computed by one block, in one order, so results never
depend on the thread count. pytorch_cnn's 3136 -> 128 at batch 64: forward 0.38 -> 0.18
ms, backward 0.35 -> 0.26 ms, against pieces that each packed a whole operand. A small
layer (fewer than PARALLEL_FLOPS multiply-adds) is one NumPy GEMM on the calling thread.

A narrow layer (at most NARROW_UNITS units: fixed_kernel_cnn's 169 -> 4, 4 -> 4 and
4 -> 10 on 60,000 rows) skips BLAS, whose packing and tiles are made for wide
products: one pass over the rows computes each output row as U dot products with the
epilogue fused, and the backward pass folds the activation, sums dbias, accumulates
dweight and writes dx in a single pass over dout and x.
"""

from __future__ import annotations

import numpy as np

from .epilogue import (activate_all, activate_units_from, activation_grad_bias_sum,
                       bias_activation, fold_unit, sum_partials)
from . import gemm
from .gemm import matmul_transposed, product_block
from .claims import claim, claiming_threads, count_out, new_counter, wait_for
from .jit import (SERIAL_WORK, launch, parallel_kernel, parallel_sum_kernel,
                  prange)
from .scalars import activation_code

PARALLEL_FLOPS = 1 << 21
"""Multiply-adds (N*F*U) from which a dense GEMM is split across the threads."""

PIECE_ROWS = 128
"""Rows of x per block of the forward GEMM: each block packs its units of the weight, so
thin blocks cost (one thread, (1000 x 784) @ (784 x 128) in pieces of 32 rows: 2.60 ms;
of 128: 1.81 ms; one GEMM 1.61 ms)."""

PIECE_FEATURES = 256
"""Fewest features per block of the backward pass."""

BACKWARD_PIECES = 8
"""Blocks of the backward pass (4 a thread on 2 cores): threads claim them (see .claims),
so a thread that starts late or runs slower takes fewer. A fixed number: where BLAS
multiplies a block (fewer than gemm.NARROW rows), its rounding depends on the block's
width, so blocks chosen by the thread count gave dx that differed by an ulp between 1
and 2 threads (batch 8, 100 -> 5408)."""

PIECE_UNITS = 64
"""Units per block of the forward GEMM (at least two blocks, one per core of a 2-core
machine): thinner blocks run BLAS below its speed (one thread, (units x 256) @
(256 x 784): 81 GFLOP/s for 16 units, 113 for 64)."""


DWEIGHT_ROWS = 1024
"""Rows per partial dweight for a tall layer with fewer than PIECE_UNITS units
(fixed_kernel_cnn's 169 -> 4 on 60,000 rows): split by units, every piece would read
all of x, so each piece takes its rows instead and the partial sums are added in order."""


NARROW_UNITS = 16
"""Layers with at most this many units run the narrow kernels below, never BLAS."""

NARROW_ROWS = 1024
"""Rows per partial dweight / dbias sum of the narrow backward pass: fixed, so the sums
do not depend on the thread count."""


def _pieces(size, per_piece):
    """At least two pieces (fewer only when size is 1) of about ``per_piece`` each."""
    return max(min(size, 2), -(-size // per_piece))


@parallel_kernel
def _forward(x, weight, bias, code, out, row_pieces, unit_pieces, own_gemm, threads, counter):
    """out (N, U) = act(x @ weight.T + bias) in row_pieces x unit_pieces blocks, which the
    ``threads`` claim from ``counter`` (see .claims): block (rows, units) = x[rows] @
    weight[units].T, then its epilogue. Each block packs only its units of the weight
    (pieces of rows alone each packed all of it, 3136 x 128 floats for pytorch_cnn's
    first dense layer: 0.38 -> 0.19 ms at batch 64). On gemm's micro-kernel when
    ``own_gemm`` and the block's rows are whole tiles (read in place), else BLAS:
    packing x too was slower than BLAS (AVX2: 0.30 against 0.28 ms)."""
    batch, units = x.shape[0], weight.shape[0]
    for t in prange(threads):
        piece = claim(counter)
        while piece < row_pieces * unit_pieces:
            r, u = piece // unit_pieces, piece % unit_pieces
            lo, hi = r * batch // row_pieces, (r + 1) * batch // row_pieces
            first, last = u * units // unit_pieces, (u + 1) * units // unit_pieces
            block = np.empty((hi - lo, last - first), out.dtype)
            matmul_transposed(x[lo:hi], weight[first:last], block, False,
                              own_gemm and (hi - lo) % gemm.MR == 0)
            for i in range(hi - lo):
                activate_units_from(out[lo + i, first:last], block[i], bias, first, code)
            piece = claim(counter)
        count_out(counter)
        wait_for(counter, threads)


@parallel_kernel
def _backward(dout, dout_t, x, weight, dx, dweight, pieces, with_dx, own_gemm, threads, counter):
    """dweight[:, block] = dout.T @ x[:, block] and, when ``with_dx``, dx[:, block] =
    dout @ weight[:, block], for ``pieces`` blocks of the F features, claimed as in
    _forward: each packs only its block of x and of the weight (split by units and by rows, every
    piece packed all of x or all of the weight: 0.35 -> 0.26 ms at pytorch_cnn's 3136 ->
    128, batch 64). dout_t: dout.T, C-contiguous. Blocks are whole tiles but the last."""
    features = x.shape[1]
    panels = -(-features // gemm.NR)
    for t in prange(threads):
        piece = claim(counter)
        while piece < pieces:
            first = piece * panels // pieces * gemm.NR
            last = min(features, (piece + 1) * panels // pieces * gemm.NR)
            product_block(dout_t, x, first, last, dweight, own_gemm)
            if with_dx:
                product_block(dout, weight, first, last, dx, own_gemm)
            piece = claim(counter)
        count_out(counter)
        wait_for(counter, threads)


@parallel_kernel
def _backward_by_rows(dout, x, weight, dx, dweight, chunks, with_dx):
    """dweight = sum over chunks c of dout[rows c].T @ x[rows c], added in chunk order;
    dx[rows] = dout[rows] @ weight in the same iteration when ``with_dx``."""
    batch, units = dout.shape
    partial = np.empty((chunks, units, x.shape[1]), dtype=dweight.dtype)
    for c in prange(chunks):
        lo, hi = c * batch // chunks, (c + 1) * batch // chunks
        np.dot(np.ascontiguousarray(dout[lo:hi].T), x[lo:hi], partial[c])
        if with_dx:
            np.dot(dout[lo:hi], weight, dx[lo:hi])
    dweight[:] = partial[0]
    for c in range(1, chunks):
        dweight += partial[c]


@parallel_sum_kernel
def _narrow_forward(x, weight, bias, code, out):
    """out (N, U) = act(x (N, F) @ weight.T (F, U) + bias): U dot products per row, the
    activation over each chunk's rows at once (a loop that vectorises)."""
    batch, features = x.shape
    units = weight.shape[0]
    flat = out.reshape(out.size)
    chunks = (batch + NARROW_ROWS - 1) // NARROW_ROWS
    for c in prange(chunks):
        lo, hi = c * NARROW_ROWS, min(batch, (c + 1) * NARROW_ROWS)
        for r in range(lo, hi):
            for u in range(units):
                total = np.float32(0)
                for f in range(features):
                    total += x[r, f] * weight[u, f]
                out[r, u] = total + bias[u] if bias is not None else total
        activate_all(flat[lo * units:hi * units], code)


@parallel_sum_kernel
def _narrow_backward(dout, y, code, x, weight, dx, dweight, dbias, with_dx):
    """dout (N, U) *= act'(y) in place; dbias (U,) or None = its sum over rows; dweight
    (U, F) = dout.T @ x; dx (N, F) = dout @ weight when ``with_dx``. One pass: chunks of
    NARROW_ROWS rows, each its own partial sums, added in chunk order. The inner loops run
    along the longer of F and U (a loop of a few iterations costs its set-up each time):
    the partial sums are (U, F) or (F, U), dx rows axpys of weight rows or dot products."""
    batch, features = x.shape
    units = weight.shape[0]
    chunks = (batch + NARROW_ROWS - 1) // NARROW_ROWS
    by_features = features > units or features >= 16
    partial_w = np.zeros((chunks, units, features) if by_features else (chunks, features, units),
                         dtype=np.float32)
    partial_b = np.zeros((chunks, units))
    weight_t = weight if by_features else np.ascontiguousarray(weight.T)  # (F, U) for dx's dots
    for c in prange(chunks):
        pw = partial_w[c]
        pb = partial_b[c]
        for r in range(c * NARROW_ROWS, min(batch, (c + 1) * NARROW_ROWS)):
            dr = dout[r]
            xr = x[r]
            for u in range(units):
                dr[u] = fold_unit(dr[u], y[r, u], code)
                pb[u] += dr[u]
            if by_features:
                for u in range(units):
                    d = dr[u]
                    pwu = pw[u]
                    for f in range(features):
                        pwu[f] += d * xr[f]
            else:
                for f in range(features):
                    value = xr[f]
                    pwf = pw[f]
                    for u in range(units):
                        pwf[u] += value * dr[u]
            if with_dx:
                dxr = dx[r]
                if by_features:
                    for f in range(features):
                        dxr[f] = 0
                    for u in range(units):
                        d = dr[u]
                        wu = weight[u]
                        for f in range(features):
                            dxr[f] += d * wu[f]
                else:
                    for f in range(features):
                        wf = weight_t[f]
                        total = np.float32(0)
                        for u in range(units):
                            total += dr[u] * wf[u]
                        dxr[f] = total
    # explicit loops: numba would run each array expression here as a parallel region of
    # its own, one per chunk (60 thread wake-ups for 60,000 rows, slower than one thread)
    for u in range(units):
        for f in range(features):
            total = np.float32(0)
            for c in range(chunks):
                total += partial_w[c, u, f] if by_features else partial_w[c, f, u]
            dweight[u, f] = total
    if dbias is not None:
        sum_partials(partial_b, dbias)


def _narrow_work(x, weight):
    """What launch() weighs for a narrow kernel: nothing when its rows make one chunk, which
    a parallel region would give to one thread while waking the others for nothing
    (pytorch_cnn's 128 -> 10 at batch 64: 13 us serial, 47-59 us as a region)."""
    return x.size * weight.shape[0] if x.shape[0] > NARROW_ROWS else 0


def _column_pieces(features):
    """Blocks of features for the backward pass, claimed by the threads: BACKWARD_PIECES,
    fewer where blocks would be thin."""
    return max(1, min(BACKWARD_PIECES, -(-features // PIECE_FEATURES)))


def _as_rows(matrix):
    """(N, U) -> view (N, U, 1), the epilogues' layout with the bias along U."""
    return matrix.reshape(matrix.shape[0], matrix.shape[1], 1)


def _split(x, weight):
    return x.shape[0] * x.shape[1] * weight.shape[0] >= PARALLEL_FLOPS


# ---- contract functions -------------------------------------------------------------

def dense_forward(x, weight, bias, activation, out):
    code = activation_code(activation)
    if weight.shape[0] <= NARROW_UNITS:
        launch(_narrow_forward, _narrow_work(x, weight), x, weight, bias, code, out)
        return
    if _split(x, weight):
        row_pieces = -(-x.shape[0] // PIECE_ROWS)
        unit_pieces = _pieces(weight.shape[0], PIECE_UNITS)
        _forward(x, weight, bias, code, out, row_pieces, unit_pieces, gemm.ENABLED,
                 claiming_threads(row_pieces * unit_pieces, SERIAL_WORK), new_counter())
        return
    np.matmul(x, weight.T, out=out)
    launch(bias_activation, out.size, _as_rows(out), bias, code)


def dense_backward(dout, out, x, weight, activation, dx, dweight, dbias):
    code = activation_code(activation)
    if weight.shape[0] <= NARROW_UNITS:
        # without dx, x stands in for it (one compiled kernel): nothing writes it
        launch(_narrow_backward, _narrow_work(x, weight), dout, out if out is not None else dout,
               code, x, weight, x if dx is None else dx, dweight, dbias, dx is not None)
        return
    launch(activation_grad_bias_sum, dout.size, _as_rows(dout), _as_rows(out), code, dbias)
    if _split(x, weight) and weight.shape[0] < PIECE_UNITS and x.shape[0] >= 2 * DWEIGHT_ROWS:
        _backward_by_rows(dout, x, weight, x if dx is None else dx, dweight,
                          -(-x.shape[0] // DWEIGHT_ROWS), dx is not None)
        return
    if _split(x, weight):
        # without dx, x stands in for it (one compiled kernel): nothing writes it
        pieces = _column_pieces(x.shape[1])
        _backward(dout, np.ascontiguousarray(dout.T), x, weight, x if dx is None else dx, dweight,
                  pieces, dx is not None, gemm.ENABLED, claiming_threads(pieces, SERIAL_WORK),
                  new_counter())
        return
    np.matmul(dout.T, x, out=dweight)
    if dx is not None:
        np.matmul(dout, weight, out=dx)
