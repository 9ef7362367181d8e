"""Winograd F(2x2, 3x3): a 3x3 stride-1 convolution in 16 products of depth C instead of
one of depth 9*C, for the convolutions where the multiplications dominate.

Lavin & Gray's minimal filtering algorithm. Each 2x2 block of the output (a tile) is
computed from the 4x4 input patch d around it and the filter g (3x3) as

    Y = A^T [ (G g G^T) * (B^T d B) ] A        (* elementwise, 4x4)

so a tile costs 16 multiplications per (input, output) channel pair against 36 for the
direct sum: 2.25x fewer. Summed over input channels, each of the 16 positions of the
4x4 is one GEMM over all tiles of a sample:

    M[pos] (T, O) = V[pos] (T, C) @ U[pos] (C, O)
    V[pos, t, c] = (B^T d_{t,c} B)[pos]   (the input transform, per tile and channel)
    U[pos, c, o] = (G g_{o,c} G^T)[pos]   (the weight transform, once per call)

run on :mod:`.gemm`'s micro-kernel (V's rows read in place, U packed once per call).
The input transform reads the sample from a zero-padded channels-last copy so that its
inner loop runs along channels, contiguous; so does the output transform, along output
channels. Errors: the transforms add and halve, so a result differs from the direct
sum by a few float32 roundings more (the conformance tolerances hold it to the NumPy
reference like the im2col path).

Used by :mod:`.conv` for 3x3 stride-1 float32 convolutions with at least MIN_CHANNELS
input and output channels (forward, and the input gradient of the backward pass, which
is the same kind of convolution with the filters flipped and transposed); elsewhere,
and with ``FASTCNN_WINOGRAD=0``, the im2col GEMM.
"""

from __future__ import annotations

import os

import numpy as np

from . import gemm
from .gemm import MR, NR, multiply_rows, packed_size
from .jit import inline_helper, serial_sum_kernel

POSITIONS = 16
"""Entries of a transformed 4x4 tile: one GEMM each."""

MIN_CHANNELS = 32
"""Fewer input or output channels than this keep the im2col GEMM: the 16 products would
have too little depth (input channels) or fill too little of a tile (output channels).
At 16 -> 32 channels (the MNIST speedrun's conv2, batch 128, Zen 4) Winograd was slower
both ways (forward 2.17 against 2.05 ms, backward 4.64 against 4.20); at 32 -> 64 it
won both ways, at 14x14 and at 7x7."""


def enabled() -> bool:
    """Read at every call (not frozen into the on-disk cache): FASTCNN_WINOGRAD=0 turns
    it off, e.g. to measure it against the im2col GEMM."""
    return gemm.ENABLED and os.environ.get("FASTCNN_WINOGRAD", "1") != "0"


def applies(weight, stride: int) -> bool:
    """True when a convolution with ``weight`` (O, C, KH, KW) at ``stride`` runs here."""
    filters, channels, kernel_h, kernel_w = weight.shape
    return (enabled() and weight.dtype == np.float32 and kernel_h == 3 and kernel_w == 3
            and stride == 1 and min(channels, filters) >= MIN_CHANNELS)


@inline_helper
def _layout(channels, filters, out_h, out_w):
    """(TY, TX, T padded to whole MR-row panels, and the element counts of convolve_sample's
    scratch parts: the padded channels-last input d, one position's V (T, C) and M (T, O),
    all of it) for an output of out_h x out_w: the one place the scratch is laid out."""
    tiles_y, tiles_x = (out_h + 1) // 2, (out_w + 1) // 2
    padded_tiles = (tiles_y * tiles_x + MR - 1) // MR * MR
    d_size = (2 * tiles_y + 2) * (2 * tiles_x + 2) * channels
    a_size, c_size = padded_tiles * channels, padded_tiles * filters
    total = d_size + POSITIONS * (a_size + c_size) + MR * NR + (8 + out_h * out_w) * filters
    return tiles_y, tiles_x, padded_tiles, d_size, a_size, c_size, total


_G = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]])
_KRON = np.kron(_G, _G)
"""(16, 9): G g G^T for every filter g at once, row-major: vec(G g G^T) = (G (x) G) vec(g)."""


def transformed_weights(weight, flip: bool) -> np.ndarray:
    """weight (O, C, 3, 3) -> U (16, packed (C x O) B operand) float32, each position's
    U[pos] (C, O) packed in NR-column panels (gemm.pack_rows_b's layout), zero-padded.
    With ``flip`` the filters of the input gradient instead: g'[c, o] = g[o, c] rotated
    by 180 degrees (C and O swap roles: U (16, packed (O x C))). One small GEMM and a
    reshuffle in NumPy (a loop over the filters in numba took 60-90 us at conv2)."""
    filters, channels = weight.shape[:2]
    flat = weight.reshape(filters * channels, 9).astype(np.float64)
    u = (_KRON @ (flat[:, ::-1] if flip else flat).T).reshape(POSITIONS, filters, channels)
    if not flip:
        u = u.transpose(0, 2, 1)  # (16, C, O): B's rows are input channels
    rows, columns = u.shape[1:]
    panels = -(-columns // NR)
    padded = np.zeros((POSITIONS, rows, panels * NR), np.float32)
    padded[:, :, :columns] = u
    return np.ascontiguousarray(padded.reshape(POSITIONS, rows, panels, NR)
                                .transpose(0, 2, 1, 3)).reshape(POSITIONS, -1)


@inline_helper
def _pad_channels_last(flat_x, first, channels, height, width, padding, tiles_y, tiles_x, d):
    """d (2*TY + 2, 2*TX + 2, C) flat = the planes first .. first + channels - 1 of flat_x
    (each height x width), shifted by ``padding``, zero outside them."""
    rows, cols = 2 * tiles_y + 2, 2 * tiles_x + 2
    for y in range(rows):
        sy = y - padding
        for x in range(cols):
            sx = x - padding
            at = np.uint64((y * cols + x) * channels)
            if 0 <= sy < height and 0 <= sx < width:
                source = np.uint64((first * height + sy) * width + sx)
                plane = np.uint64(height * width)
                for c in range(channels):
                    d[at + np.uint64(c)] = flat_x[source + np.uint64(c) * plane]
            else:
                for c in range(channels):
                    d[at + np.uint64(c)] = 0


_ROWS = ((0, 2), (1, 2), (1, 2), (1, 3))
_SIGNS = ((1.0, -1.0), (1.0, 1.0), (-1.0, 1.0), (1.0, -1.0))
"""B^T's rows: row i takes rows _ROWS[i] of a patch with signs _SIGNS[i] (B^T d), and
B's columns take columns the same way (d B)."""


@inline_helper
def _combine4(dst, at, src, a, b, c, e, sa, sb, sc, se, count):
    """dst[at:at + count] = sa*src[a:...] + sb*src[b:...] + sc*src[c:...] + se*src[e:...]:
    one loop over views from index 0, one output stream (LLVM vectorises that; sixteen
    outputs in one loop it did not: 17 against 7 us a sample at conv2)."""
    out, x0, x1, x2, x3 = (dst[at:at + count], src[a:a + count], src[b:b + count],
                           src[c:c + count], src[e:e + count])
    for k in range(count):
        out[k] = sa * x0[k] + sb * x1[k] + sc * x2[k] + se * x3[k]


@inline_helper
def _combine3(dst, at, src, a, b, c, sb, sc, count):
    """dst[at:at + count] = src[a:...] + sb*src[b:...] + sc*src[c:...]."""
    out, x0, x1, x2 = dst[at:at + count], src[a:a + count], src[b:b + count], src[c:c + count]
    for k in range(count):
        out[k] = x0[k] + sb * x1[k] + sc * x2[k]


@inline_helper
def _input_transform(d, channels, tiles_y, tiles_x, padded_tiles, v):
    """v (16, T padded, C) flat: B^T d B of each tile's 4x4 patch of d (channels last),
    along channels; rows past the last tile zeroed."""
    cols = 2 * tiles_x + 2
    plane = padded_tiles * channels
    for ty in range(tiles_y):
        for tx in range(tiles_x):
            corner = (2 * ty * cols + 2 * tx) * channels
            out = (ty * tiles_x + tx) * channels
            for i in range(4):
                r0, r1 = _ROWS[i]
                s0, s1 = _SIGNS[i]
                for j in range(4):
                    c0, c1 = _ROWS[j]
                    t0, t1 = _SIGNS[j]
                    _combine4(v, np.uint64((i * 4 + j) * plane + out), d,
                              np.uint64(corner + (r0 * cols + c0) * channels),
                              np.uint64(corner + (r0 * cols + c1) * channels),
                              np.uint64(corner + (r1 * cols + c0) * channels),
                              np.uint64(corner + (r1 * cols + c1) * channels),
                              np.float32(s0 * t0), np.float32(s0 * t1), np.float32(s1 * t0),
                              np.float32(s1 * t1), channels)
    for t in range(tiles_y * tiles_x, padded_tiles):
        for pos in range(POSITIONS):
            at = (pos * padded_tiles + t) * channels
            for c in range(channels):
                v[at + c] = 0


@inline_helper
def _output_transform(m, filters, tiles_y, tiles_x, padded_tiles, out_h, out_w, s, y, result):
    """result (O, out_h*out_w) flat = A^T m A of each tile's 16 products m (16, T padded,
    O) flat, along output channels into y (out_h*out_w, O) (s (8, O): A^T m), then y
    transposed into result; the parts of edge tiles past the output dropped."""
    plane = np.uint64(padded_tiles * filters)
    step = np.uint64(filters)
    for ty in range(tiles_y):
        for tx in range(tiles_x):
            at = np.uint64((ty * tiles_x + tx) * filters)
            for j in range(4):  # A^T m: rows (1, 1, 1, 0) and (0, 1, -1, -1)
                column = at + np.uint64(j) * plane
                _combine3(s, np.uint64(j) * step, m, column, column + 4 * plane,
                          column + 8 * plane, np.float32(1), np.float32(1), filters)
                _combine3(s, np.uint64(4 + j) * step, m, column + 4 * plane,
                          column + 8 * plane, column + 12 * plane, np.float32(-1),
                          np.float32(-1), filters)
            for a in range(2):
                oy = 2 * ty + a
                if oy >= out_h:
                    continue
                row = np.uint64(4 * a) * step
                for b in range(2):
                    ox = 2 * tx + b
                    if ox < out_w:  # (A^T m) A: columns combined the same way
                        _combine3(y, np.uint64((oy * out_w + ox) * filters), s,
                                  row + np.uint64(b) * step, row + np.uint64(1 + b) * step,
                                  row + np.uint64(2 + b) * step, np.float32(1 - 2 * b),
                                  np.float32(1 - 2 * b), filters)
    size = out_h * out_w
    for o in range(filters):  # strided loads, contiguous stores: 7.6 against 11 us the other way
        row = result[o * size:(o + 1) * size]
        for p in range(size):
            row[p] = y[p * filters + o]


@serial_sum_kernel
def convolve_sample(flat_x, first, channels, height, width, padding, packed_u, filters,
                    out_h, out_w, work, result):
    """result (filters * out_h * out_w,) flat = the 3x3 stride-1 convolution of the planes
    first .. first + channels - 1 of flat_x (one sample's C x height x width), padded by
    ``padding``, with the filters transformed into packed_u (transformed_weights).
    work: float32 scratch of scratch_size() elements, the thread's own."""
    tiles_y, tiles_x, padded_tiles, d_size, a_size, c_size, _ = _layout(channels, filters,
                                                                         out_h, out_w)
    d = work[:d_size]
    v = work[d_size:d_size + POSITIONS * a_size]
    m = work[d_size + POSITIONS * a_size:d_size + POSITIONS * (a_size + c_size)]
    rest = d_size + POSITIONS * (a_size + c_size)
    edge = work[rest:rest + MR * NR]
    s = work[rest + MR * NR:rest + MR * NR + 8 * filters]
    y = work[rest + MR * NR + 8 * filters:]
    _pad_channels_last(flat_x, first, channels, height, width, padding, tiles_y, tiles_x, d)
    _input_transform(d, channels, tiles_y, tiles_x, padded_tiles, v)
    for pos in range(POSITIONS):
        multiply_rows(v[pos * a_size:(pos + 1) * a_size], channels, packed_u[pos],
                      padded_tiles, filters, channels, m, pos * c_size, filters, False, edge)
    _output_transform(m, filters, tiles_y, tiles_x, padded_tiles, out_h, out_w, s, y, result)


def scratch_size(channels: int, filters: int, out_h: int, out_w: int) -> int:
    """Elements of convolve_sample's per-thread float32 scratch: the padded channels-last
    input, the transformed input (16, T, C), the products (16, T, O), an edge tile, and the
    output transform's A^T m (8, O) and channels-last result (OH*OW, O)."""
    return _layout(channels, filters, out_h, out_w)[-1]
