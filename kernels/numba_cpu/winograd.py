"""Winograd F(2x2, 3x3): a stride-1 3x3 convolution of one sample in 16 small GEMMs.

Each 2x2 block of outputs (a tile) is computed from the 4x4 input patch d above it
as ``A^T [(G g G^T) * (B^T d B)] A`` (Lavin & Gray 2015), with the constants

    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]

so that for element ``xi = 4*r + s`` of the 4x4 transforms, the sum over input
channels is a GEMM: ``M[xi] (Co, T) = U[xi] (Co, Ci) @ V[xi] (Ci, T)`` for the T tiles
of a sample. That is 16*Ci*Co multiplies per tile of 4 outputs where the direct
convolution does 36*Ci*Co: 2.25x fewer. Every constant is 0, +-1 or +-1/2, so the
transforms round no more than the direct sum does.

Shapes: x3 (Ci, H, W) one sample; U (16, Co, Ci); out3 (Co, OH, OW) with OH = H +
2*padding - 2; TH = ceil(OH/2), TW = ceil(OW/2), T = TH*TW tiles, the last row and
column of tiles cropped when OH or OW is odd.

:func:`scratch` and :func:`convolve_sample` are called, not inlined, from the
convolution kernels' parallel loops (a call costs nothing beside a sample's
convolution); a caller allocates the buffers in the same block that uses them:
buffers allocated in one ``if`` of a prange body and used in a later one came out
corrupted from numba's parfor lowering (numba 0.68).
"""

from __future__ import annotations

import numpy as np

from .jit import inline_helper, parallel_kernel, prange, serial_kernel


@inline_helper
def _kernel_transform(g, t, U, o, c):
    """U[:, o, c] (16,) = G g G^T for the 3x3 kernel g; t (4, 3) scratch for G g."""
    for j in range(3):
        g0, g1, g2 = g[0, j], g[1, j], g[2, j]
        t[0, j] = g0
        t[1, j] = (g0 + g1 + g2) * 0.5
        t[2, j] = (g0 - g1 + g2) * 0.5
        t[3, j] = g2
    for r in range(4):
        x0, x1, x2 = t[r, 0], t[r, 1], t[r, 2]
        U[4 * r, o, c] = x0
        U[4 * r + 1, o, c] = (x0 + x1 + x2) * 0.5
        U[4 * r + 2, o, c] = (x0 - x1 + x2) * 0.5
        U[4 * r + 3, o, c] = x2


@parallel_kernel
def transform_kernels(weight4, U):
    """weight4 (O, C, 3, 3) -> U (16, O, C), the transformed kernels of a convolution."""
    for o in prange(weight4.shape[0]):
        t = np.empty((4, 3), weight4.dtype)
        for c in range(weight4.shape[1]):
            _kernel_transform(weight4[o, c], t, U, o, c)


@serial_kernel
def scratch(in_channels, out_channels, out_h, out_w, like):
    """A thread's buffers for :func:`convolve_sample` (xpad, rows, V, M, Y), of ``like``'s dtype."""
    th, tw = (out_h + 1) // 2, (out_w + 1) // 2
    return (np.empty((in_channels, 2 * th + 2, 2 * tw + 2), like.dtype),
            np.empty((4, 2 * tw + 2), like.dtype),
            np.empty((16, in_channels, th * tw), like.dtype),
            np.empty((16, out_channels, th * tw), like.dtype),
            np.empty((4, th * tw), like.dtype))


@inline_helper
def _pad_sample(x3, padding, xpad):
    """xpad (Ci, 2*TH+2, 2*TW+2) = x3 (Ci, H, W) shifted by ``padding``, zeros around it
    (the padded plane is always at least as wide as the input plus its left padding)."""
    channels, height, width = x3.shape
    rows, cols = xpad.shape[1], xpad.shape[2]
    right = cols - padding - width
    for c in range(channels):
        for y in range(rows):
            row = xpad[c, y]
            source = y - padding
            if source < 0 or source >= height:
                for k in range(cols):
                    row[k] = 0
                continue
            line = x3[c, source]
            for k in range(padding):
                row[k] = 0
            for k in range(width):
                row[padding + k] = line[k]
            for k in range(right):
                row[padding + width + k] = 0


@inline_helper
def _input_transform(xpad, rows, V):
    """V[4*r + s, c, t] = (B^T d B)[r, s] for the 4x4 patch d of tile t in channel c."""
    channels, width = xpad.shape[0], xpad.shape[2]
    tile_cols = (width - 2) // 2
    tile_rows = (xpad.shape[1] - 2) // 2
    for c in range(channels):
        for ty in range(tile_rows):
            y = 2 * ty
            top, upper, lower, bottom = xpad[c, y], xpad[c, y + 1], xpad[c, y + 2], xpad[c, y + 3]
            for k in range(width):  # B^T d along the rows, for every column at once
                rows[0, k] = top[k] - lower[k]
                rows[1, k] = upper[k] + lower[k]
                rows[2, k] = lower[k] - upper[k]
                rows[3, k] = upper[k] - bottom[k]
            for r in range(4):
                line = rows[r]
                v0, v1, v2, v3 = V[4 * r, c], V[4 * r + 1, c], V[4 * r + 2, c], V[4 * r + 3, c]
                for tx in range(tile_cols):
                    t, k = ty * tile_cols + tx, 2 * tx
                    a, b, e, f = line[k], line[k + 1], line[k + 2], line[k + 3]
                    v0[t] = a - e
                    v1[t] = b + e
                    v2[t] = e - b
                    v3[t] = b - f


@inline_helper
def _output_transform(M, Y, out3):
    """out3[o, 2*ty + i, 2*tx + j] = (A^T m A)[i, j] for tile (ty, tx), m[r, s] = M[4*r + s, o, t];
    the outputs of a cropped tile beyond the plane are dropped. Y (4, T) scratch: the
    tiles' four outputs, computed along t (contiguous, so vectorised) before they scatter."""
    filters, out_h, out_w = out3.shape
    tile_cols = (out_w + 1) // 2
    tiles = M.shape[2]
    full_rows, full_cols = out_h // 2, out_w // 2
    for o in range(filters):
        # one contiguous row per transform element: the loop over t vectorises
        m0, m1, m2, m3, m4, m5, m6, m7 = M[0, o], M[1, o], M[2, o], M[3, o], M[4, o], M[5, o], \
            M[6, o], M[7, o]
        m8, m9, m10, m11, m12, m13, m14, m15 = M[8, o], M[9, o], M[10, o], M[11, o], M[12, o], \
            M[13, o], M[14, o], M[15, o]
        y0, y1, y2, y3 = Y[0], Y[1], Y[2], Y[3]
        for t in range(tiles):
            # A^T m: rows 0 + 1 + 2 and 1 - 2 - 3, each for the 4 columns s; then the columns
            s00 = m0[t] + m4[t] + m8[t]
            s01 = m1[t] + m5[t] + m9[t]
            s02 = m2[t] + m6[t] + m10[t]
            s03 = m3[t] + m7[t] + m11[t]
            s10 = m4[t] - m8[t] - m12[t]
            s11 = m5[t] - m9[t] - m13[t]
            s12 = m6[t] - m10[t] - m14[t]
            s13 = m7[t] - m11[t] - m15[t]
            y0[t] = s00 + s01 + s02
            y1[t] = s01 - s02 - s03
            y2[t] = s10 + s11 + s12
            y3[t] = s11 - s12 - s13
        plane = out3[o]
        for ty in range(full_rows):
            upper, lower = plane[2 * ty], plane[2 * ty + 1]
            base = ty * tile_cols
            for tx in range(full_cols):
                upper[2 * tx] = Y[0, base + tx]
                upper[2 * tx + 1] = Y[1, base + tx]
                lower[2 * tx] = Y[2, base + tx]
                lower[2 * tx + 1] = Y[3, base + tx]
            if full_cols < tile_cols:  # odd width: the last tile's left column only
                upper[2 * full_cols] = Y[0, base + full_cols]
                lower[2 * full_cols] = Y[2, base + full_cols]
        if out_h % 2:  # odd height: the last tiles' top row
            upper = plane[2 * full_rows]
            base = full_rows * tile_cols
            for tx in range(full_cols):
                upper[2 * tx] = Y[0, base + tx]
                upper[2 * tx + 1] = Y[1, base + tx]
            if full_cols < tile_cols:
                upper[2 * full_cols] = Y[0, base + full_cols]


@serial_kernel
def convolve_sample(x3, U, padding, out3, xpad, rows, V, M, Y):
    """out3 (Co, OH, OW) = the stride-1 3x3 correlation of x3 (Ci, H, W) with the kernels
    transformed into U (16, Co, Ci), ``padding`` zeros around x3; no bias, no activation.
    xpad, rows, V, M, Y: this thread's buffers from :func:`scratch`."""
    _pad_sample(x3, padding, xpad)
    _input_transform(xpad, rows, V)
    for xi in range(16):
        np.dot(U[xi], V[xi], M[xi])
    _output_transform(M, Y, out3)

