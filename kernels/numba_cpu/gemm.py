"""A single-precision GEMM of our own (AVX-512 and AVX2 tiles), for the kernels' products.

Why: np.dot in jitted code calls the BLAS that SciPy ships (OpenBLAS). Where that
library runs its AVX2 kernels on a CPU with full-width AVX-512 (AMD Zen 5, or
OpenBLAS told ``OPENBLAS_CORETYPE=Haswell``), it reaches half of what the core can
multiply; and a call of its own cannot be fused with what the kernels do around it
(im2col, reading an operand in place, packing only a block). This module gives the
float32 products a register-blocked micro-kernel written in LLVM IR
(``numba.extending.intrinsic``), in the BLIS scheme::

    C (M, N) [+]= A (M, K) @ B (K, N)
    A packed in panels of MR rows, k-major:   pa[p, k, i] = A[p*MR + i, k]
    B packed in panels of NR columns:         pb[q, k, j] = B[k, q*NR + j]
    each (MR x NR) tile of C: MR*NR/LANES vector accumulators, one FMA per
    (row broadcast of A, LANES columns of B) and k; K in slices of KC (L1/L2-sized)

The tile follows the ISA numba compiles for (jit.ISA): 8 x 32 in zmm registers with
AVX-512, 6 x 16 in ymm registers with AVX2 (measured on conv2 of pytorch_cnn, AVX2
code: forward 2.74 ms against BLAS's 2.93, backward 4.72 against 5.45).
Panels are zero-padded to whole tiles; a tile that hangs over C's edge is
computed into a small buffer and its valid part copied out. The caller packs
(so that an operand shared by every sample, the weights, is packed once per
call) and calls :func:`multiply` on its own thread.

``ENABLED`` is False below AVX2 with FMA and with ``FASTCNN_OWN_GEMM=0``: the kernels
then keep np.dot. The plain loops the micro-kernel replaces are those of
:func:`fastcnn.kernels.naive` (three nested loops over i, j, k); the conformance suite
holds both to the NumPy reference.
"""

from __future__ import annotations

import os

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, overload

from .jit import ISA, inline_helper, serial_kernel, serial_sum_kernel

MR, NR, LANES = (8, 32, 16) if ISA == "avx512" else (6, 16, 8)
"""Rows of A per micro-tile (broadcast one at a time), columns of B per micro-tile (two
vectors of LANES floats), floats per vector: MR*NR/LANES accumulators. AVX-512: 16 of
its 32 zmm registers; AVX2: 12 of its 16 ymm registers (an 8 x 32 tile in ymm spilled
its accumulators to the stack, 4.1 ms against BLAS's 3.1 for conv2's forward pass)."""
KC = 256
"""Depth of one pass over a tile: an A panel (MR x KC) and a B panel (KC x NR) fit L1."""
NARROW = 16
"""Products with fewer rows or columns than this stay with np.dot: most of a
zero-padded tile would be wasted (pytorch_cnn's first weight gradient has 9 columns)."""

FEW_ROWS = 4
"""Products with fewer rows than this (a convolution with 1-3 filters) run as scaled rows
of B (_few_rows) where np.dot's call costs more than the product."""

ENABLED = ISA is not None and os.environ.get("FASTCNN_OWN_GEMM", "1") != "0"
"""Read by the Python wrappers at every call and passed to the kernels as an argument
(a global would be frozen into numba's on-disk cache): FASTCNN_OWN_GEMM=0 turns the
micro-kernel off, e.g. to measure it against BLAS."""


def _tile_codegen(context, builder, signature, args, mode):
    """The MR x NR tile's LLVM IR (see _tile). ``mode`` "shifted": B's row k starts at
    b_at + offsets[offsets_at + k] instead of b_at + k*NR (see _tile_shifted); "windows":
    A's rows start at a_at + offsets[offsets_at + i] and the depth runs over row_count
    rows of row_len (see _tile_windows)."""
    names = {"plain": "depth a a_at a_row a_step b b_at c c_at ldc acc",
             "shifted": "depth a a_at a_row a_step b b_at offsets offsets_at c c_at ldc acc",
             "windows": "row_count row_len a_jump a a_at offsets offsets_at b b_at c c_at ldc "
                        "acc"}[mode].split()
    value = dict(zip(names, args))
    kind = dict(zip(names, signature.args))
    i64 = ir.IntType(64)
    f32 = ir.FloatType()
    vec = ir.VectorType(f32, LANES)
    vec_ptr = vec.as_pointer()
    fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * 3),
                                         f"llvm.fma.v{LANES}f32")

    def data(name, at):
        array = context.make_array(kind[name])(context, builder, value[name]).data
        return builder.gep(array, [value[at]])

    a_ptr, b_ptr, c_ptr = data("a", "a_at"), data("b", "b_at"), data("c", "c_at")
    if mode == "windows":
        offsets_ptr = data("offsets", "offsets_at")
        a_rows = [builder.load(builder.gep(offsets_ptr, [ir.Constant(i64, i)]))
                  for i in range(MR)]
    else:
        a_rows = [builder.mul(ir.Constant(i64, i), value["a_row"]) for i in range(MR)]
        if mode == "shifted":
            offsets_ptr = data("offsets", "offsets_at")
    ldc_v = value["ldc"]
    ldc64 = builder.sext(ldc_v, i64) if ldc_v.type.width < 64 else ldc_v
    acc_v = value["acc"]
    keep = builder.icmp_unsigned("!=", acc_v, ir.Constant(acc_v.type, 0))
    per_row = NR // LANES
    zero = ir.Constant(vec, [0.0] * LANES)

    def c_vector(i, j):
        at = builder.add(builder.mul(ir.Constant(i64, i), ldc64), ir.Constant(i64, j * LANES))
        return builder.bitcast(builder.gep(c_ptr, [at]), vec_ptr)

    slots = []
    for i in range(MR):
        for j in range(per_row):
            slots.append(cgutils.alloca_once(builder, vec))
            builder.store(zero, slots[-1])
    with builder.if_then(keep):
        for i in range(MR):
            for j in range(per_row):
                builder.store(builder.load(c_vector(i, j), align=4), slots[i * per_row + j])
    splat_mask = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
    undef = ir.Constant(vec, ir.Undefined)

    def step(a_column, b_row):
        """One k: NR columns of B's row at b_row times MR scalars of A's column."""
        columns = [builder.load(builder.bitcast(builder.gep(b_row, [ir.Constant(i64, j * LANES)]),
                                                vec_ptr), align=4)
                   for j in range(per_row)]
        for i in range(MR):
            scalar = builder.load(builder.gep(a_column, [a_rows[i]]))
            splat = builder.shuffle_vector(builder.insert_element(undef, scalar,
                                                                  ir.Constant(i64, 0)),
                                           undef, splat_mask)
            for j in range(per_row):
                slot = slots[i * per_row + j]
                builder.store(builder.call(fma, [splat, columns[j], builder.load(slot)]), slot)

    nr = ir.Constant(i64, NR)
    if mode == "windows":
        with cgutils.for_range(builder, value["row_count"]) as rows:
            r = rows.index
            a_row_start = builder.gep(a_ptr, [builder.mul(r, value["a_jump"])])
            b_row_start = builder.gep(b_ptr, [builder.mul(builder.mul(r, value["row_len"]), nr)])
            with cgutils.for_range(builder, value["row_len"]) as loop:
                k = loop.index
                step(builder.gep(a_row_start, [k]), builder.gep(b_row_start, [builder.mul(k, nr)]))
    else:
        with cgutils.for_range(builder, value["depth"]) as loop:
            k = loop.index
            if mode == "shifted":
                b_row = builder.gep(b_ptr, [builder.load(builder.gep(offsets_ptr, [k]))])
            else:
                b_row = builder.gep(b_ptr, [builder.mul(k, ir.Constant(k.type, NR))])
            step(builder.gep(a_ptr, [builder.mul(k, value["a_step"])]), b_row)
    for i in range(MR):
        for j in range(per_row):
            builder.store(builder.load(slots[i * per_row + j]), c_vector(i, j), align=4)
    return context.get_dummy_value()


def _float32_arrays(*arrays):
    return all(isinstance(t, types.Array) and t.dtype == types.float32 for t in arrays)


@intrinsic
def _tile(typingctx, depth, a, a_at, a_row, a_step, b, b_at, c, c_at, ldc, accumulate):
    """c[c_at + i*ldc + j] (MR x NR tile) [+]= sum over k < depth of
    a[a_at + i*a_row + k*a_step] * b[b_at + k*NR + j]; float32 1-D arrays, int64 offsets.
    A packed in panels: a_row 1, a_step MR; A's rows read in place: a_row its row stride,
    a_step 1 (each broadcast is a load from its row: nothing to pack)."""
    if not _float32_arrays(a, b, c):
        return None
    sig = types.void(depth, a, a_at, a_row, a_step, b, b_at, c, c_at, ldc, accumulate)
    return sig, lambda context, builder, signature, args: _tile_codegen(
        context, builder, signature, args, "plain")


@intrinsic
def _tile_shifted(typingctx, depth, a, a_at, a_row, a_step, b, b_at, offsets, offsets_at, c,
                  c_at, ldc, accumulate):
    """_tile with B's row k at b[b_at + offsets[offsets_at + k] + j] (offsets int64): B read
    in place from shifted windows of one array (an implicit-GEMM convolution reads its
    padded input so, see .implicit), nothing packed."""
    if not _float32_arrays(a, b, c) or not (isinstance(offsets, types.Array)
                                            and offsets.dtype == types.int64):
        return None
    sig = types.void(depth, a, a_at, a_row, a_step, b, b_at, offsets, offsets_at, c, c_at, ldc,
                     accumulate)
    return sig, lambda context, builder, signature, args: _tile_codegen(
        context, builder, signature, args, "shifted")


@intrinsic
def _tile_windows(typingctx, row_count, row_len, a_jump, a, a_at, offsets, offsets_at, b, b_at,
                  c, c_at, ldc, accumulate):
    """c[c_at + i*ldc + j] (MR x NR tile) [+]= sum over r < row_count and k < row_len of
    a[a_at + offsets[offsets_at + i] + r*a_jump + k] * b[b_at + (r*row_len + k)*NR + j]:
    A's rows are windows of one array, row_count runs of row_len values a_jump apart (a
    weight gradient reads im2col's rows so from its padded input, see .implicit), B
    packed; the depth is row_count*row_len."""
    if not _float32_arrays(a, b, c) or not (isinstance(offsets, types.Array)
                                            and offsets.dtype == types.int64):
        return None
    sig = types.void(row_count, row_len, a_jump, a, a_at, offsets, offsets_at, b, b_at, c, c_at,
                     ldc, accumulate)
    return sig, lambda context, builder, signature, args: _tile_codegen(
        context, builder, signature, args, "windows")


def _transpose_codegen(context, builder, signature, args):
    """LANES rows of LANES floats loaded as vectors, transposed in log2(LANES) rounds of
    two-source shuffles (round b swaps the off-diagonal b x b blocks of each 2b x 2b
    block), stored as vectors."""
    src_v, src_at, src_stride, dst_v, dst_at, dst_stride = args
    i64 = ir.IntType(64)
    vec = ir.VectorType(ir.FloatType(), LANES)

    def row_pointer(array_index, at, stride, i):
        array = context.make_array(signature.args[array_index])(context, builder, args[array_index])
        offset = builder.add(at, builder.mul(stride, ir.Constant(i64, i)))
        return builder.bitcast(builder.gep(array.data, [offset]), vec.as_pointer())

    rows = [builder.load(row_pointer(0, src_at, src_stride, i), align=4) for i in range(LANES)]
    b = LANES // 2
    while b:
        low = [lane if lane & b == 0 else lane - b + LANES for lane in range(LANES)]
        high = [lane + b if lane & b == 0 else lane + LANES for lane in range(LANES)]
        mask_low = ir.Constant(ir.VectorType(ir.IntType(32), LANES), low)
        mask_high = ir.Constant(ir.VectorType(ir.IntType(32), LANES), high)
        for i in range(LANES):
            if i & b == 0:
                top, bottom = rows[i], rows[i + b]
                rows[i] = builder.shuffle_vector(top, bottom, mask_low)
                rows[i + b] = builder.shuffle_vector(top, bottom, mask_high)
        b //= 2
    for i in range(LANES):
        builder.store(rows[i], row_pointer(3, dst_at, dst_stride, i), align=4)
    return context.get_dummy_value()


@intrinsic
def _transpose_block(typingctx, src, src_at, src_stride, dst, dst_at, dst_stride):
    """dst[dst_at + j*dst_stride + i] = src[src_at + i*src_stride + j] for i, j < LANES:
    one LANES x LANES block transposed in vector registers (float32 1-D arrays, int64
    offsets and strides)."""
    if not _float32_arrays(src, dst):
        return None
    return types.void(src, src_at, src_stride, dst, dst_at, dst_stride), _transpose_codegen


@serial_kernel
def _pack_lines(source, stride, lines, depth, panel, packed):
    """packed[(p*depth + k)*panel + i] = source[(p*panel + i)*stride + k]: ``lines``
    contiguous lines of ``depth`` values interleaved in panels of ``panel``, zero-padded."""
    for p in range((lines + panel - 1) // panel):
        count = min(panel, lines - p * panel)
        base = np.uint64(p * depth * panel)
        for k0 in range(0, depth, KC):  # KC values per line at a time: rows written stay in L1
            end = min(depth, k0 + KC)
            for i in range(panel):
                if i < count:
                    start = np.uint64((p * panel + i) * stride)
                    for k in range(k0, end):
                        packed[base + np.uint64(k * panel + i)] = source[start + np.uint64(k)]
                else:
                    for k in range(k0, end):
                        packed[base + np.uint64(k * panel + i)] = 0


@serial_kernel
def pack_rows_a(source, row_stride, rows, depth, packed):
    """packed (ceil(rows/MR)*depth*MR,) = A (rows, depth) in MR-row panels, k-major,
    zero-padded; A[i, k] = source[i*row_stride + k] (source 1-D, rows contiguous)."""
    _pack_lines(source, row_stride, rows, depth, MR, packed)


@serial_kernel
def pack_rows_b(source, row_stride, depth, columns, packed):
    """packed (ceil(columns/NR)*depth*NR,) = B (depth, columns) in NR-column panels,
    zero-padded; B[k, j] = source[k*row_stride + j] (source 1-D, rows contiguous)."""
    panels = (columns + NR - 1) // NR
    for q in range(panels):
        width = min(NR, columns - q * NR)
        for k in range(depth):
            base = np.uint64((q * depth + k) * NR)
            start = np.uint64(k * row_stride + q * NR)
            for j in range(width):
                packed[base + np.uint64(j)] = source[start + np.uint64(j)]
            for j in range(width, NR):
                packed[base + np.uint64(j)] = 0


@serial_kernel
def pack_columns_b(source, column_stride, depth, columns, packed):
    """packed as in pack_rows_b for B (depth, columns) = source's transpose:
    B[k, j] = source[j*column_stride + k] (each column of B contiguous in source); in
    float32, whole LANES x LANES blocks through vector registers (a weight gradient packs
    its output gradient so for every sample: 3.5 us a sample at pytorch_cnn's conv2 one
    value at a time, 0.9 us so)."""
    _pack_columns(source, column_stride, depth, columns, packed)


def _pack_columns(source, column_stride, depth, columns, packed):
    """pack_columns_b's body, by dtype (see the overload)."""


@overload(_pack_columns)
def _pack_columns_by_dtype(source, column_stride, depth, columns, packed):
    if _float32_arrays(source, packed):
        return _pack_column_blocks

    def one_at_a_time(source, column_stride, depth, columns, packed):
        _pack_lines(source, column_stride, columns, depth, NR, packed)
    return one_at_a_time


def _pack_column_blocks(source, column_stride, depth, columns, packed):
    for q in range((columns + NR - 1) // NR):
        width = min(NR, columns - q * NR)
        base = q * depth * NR
        whole_k, whole_j = depth // LANES * LANES, width // LANES * LANES
        for k0 in range(0, whole_k, LANES):
            for j0 in range(0, whole_j, LANES):
                _transpose_block(source, (q * NR + j0) * column_stride + k0, column_stride,
                                 packed, base + k0 * NR + j0, NR)
        for j in range(NR):
            start = (q * NR + j) * column_stride
            first = whole_k if j < whole_j else 0
            for k in range(first, depth):
                packed[base + k * NR + j] = source[start + k] if j < width else 0


@inline_helper
def _from_edge(edge, height, width, c, at, ldc, keep):
    """The valid height x width part of a tile computed into edge (MR x NR) into c at ``at``
    (row stride ldc), added to what c holds there with ``keep``."""
    for i in range(height):
        for j in range(width):
            value = edge[i * NR + j]
            if keep:
                value += c[at + i * ldc + j]
            c[at + i * ldc + j] = value


@serial_kernel
def multiply(packed_a, packed_b, rows, columns, depth, c, c_at, ldc, accumulate, edge):
    """c[c_at + i*ldc + j] (rows x columns) [+]= A @ B from their packed panels;
    edge: a float32 scratch of MR*NR for tiles that hang over C's edge."""
    _multiply(packed_a, 1, MR, depth * MR, packed_b, rows, columns, depth, c, c_at, ldc,
              accumulate, edge)


@serial_kernel
def multiply_rows(a, lda, packed_b, rows, columns, depth, c, c_at, ldc, accumulate, edge):
    """As :func:`multiply`, A read in place: A[i, k] = a[i*lda + k] (a 1-D; rows a multiple
    of MR, so that no tile reads past A's last row)."""
    _multiply(a, lda, 1, MR * lda, packed_b, rows, columns, depth, c, c_at, ldc, accumulate,
              edge)


@serial_kernel
def _multiply(a, a_row, a_step, a_panel, packed_b, rows, columns, depth, c, c_at, ldc,
              accumulate, edge):
    """The tiles of C over K slices; A[i, k] at a[(i // MR)*a_panel + (i % MR)*a_row + k*a_step]."""
    row_panels = (rows + MR - 1) // MR
    column_panels = (columns + NR - 1) // NR
    for k0 in range(0, depth, KC):
        kc = min(KC, depth - k0)
        keep = accumulate or k0 > 0
        for q in range(column_panels):
            b_at = (q * depth + k0) * NR
            width = min(NR, columns - q * NR)
            for p in range(row_panels):
                a_at = p * a_panel + k0 * a_step
                height = min(MR, rows - p * MR)
                at = c_at + p * MR * ldc + q * NR
                if width == NR and height == MR:
                    _tile(kc, a, a_at, a_row, a_step, packed_b, b_at, c, at, ldc, keep)
                else:
                    _tile(kc, a, a_at, a_row, a_step, packed_b, b_at, edge, 0, NR, False)
                    _from_edge(edge, height, width, c, at, ldc, keep)


@serial_kernel
def multiply_shifted(packed_a, rows, columns, depth, b, offsets, c, ldc, edge):
    """c (rows x columns, row stride ldc) = A @ B with A from its packed panels (pack_rows_a)
    and B (depth, columns) read in place: B[k, j] = b[offsets[k] + j]; columns a multiple
    of NR (whole tiles across; a tile past A's last row goes through edge, MR*NR)."""
    row_panels = (rows + MR - 1) // MR
    for k0 in range(0, depth, KC):
        kc = min(KC, depth - k0)
        keep = k0 > 0
        for q in range(columns // NR):
            for p in range(row_panels):
                a_at = (p * depth + k0) * MR
                height = min(MR, rows - p * MR)
                at = p * MR * ldc + q * NR
                if height == MR:
                    _tile_shifted(kc, packed_a, a_at, 1, MR, b, q * NR, offsets, k0, c, at, ldc,
                                  keep)
                else:
                    _tile_shifted(kc, packed_a, a_at, 1, MR, b, q * NR, offsets, k0, edge, 0, NR,
                                  False)
                    _from_edge(edge, height, NR, c, at, ldc, keep)


@serial_kernel
def multiply_windows(a, row_offsets, rows, out_h, out_w, a_jump, packed_b, columns, c, ldc,
                     accumulate, edge):
    """c (rows x columns, row stride ldc) [+]= A @ B with A (rows, out_h*out_w) read in
    place as windows of ``a``: A[i, y*out_w + x] = a[row_offsets[i] + y*a_jump + x]
    (row_offsets int64, padded to whole MR panels with any offset that stays inside
    ``a``), and B (out_h*out_w, columns) from its packed panels; edge as in multiply."""
    row_panels = (rows + MR - 1) // MR
    column_panels = (columns + NR - 1) // NR
    depth = out_h * out_w
    chunk = max(1, KC // out_w)  # whole rows of about KC values: a B panel stays in L1
    for y0 in range(0, out_h, chunk):
        count = min(chunk, out_h - y0)
        keep = accumulate or y0 > 0
        for q in range(column_panels):
            b_at = (q * depth + y0 * out_w) * NR
            width = min(NR, columns - q * NR)
            for p in range(row_panels):
                height = min(MR, rows - p * MR)
                at = p * MR * ldc + q * NR
                if width == NR and height == MR:
                    _tile_windows(count, out_w, a_jump, a, y0 * a_jump, row_offsets, p * MR,
                                  packed_b, b_at, c, at, ldc, keep)
                else:
                    _tile_windows(count, out_w, a_jump, a, y0 * a_jump, row_offsets, p * MR,
                                  packed_b, b_at, edge, 0, NR, False)
                    _from_edge(edge, height, width, c, at, ldc, keep)


@inline_helper
def packed_size(rows, depth, panel):
    """Elements of a packed operand with ``rows`` rows (A) or columns (B) in panels of ``panel``."""
    return (rows + panel - 1) // panel * panel * depth


# ---- the products the kernels call: this micro-kernel for float32 where ENABLED, else np.dot
def _own(dtype) -> bool:
    return dtype == types.float32


def packed_operand(matrix):
    """A (M, K), packed once per call for :func:`matmul` (an empty array where np.dot
    multiplies instead)."""
    if not (ENABLED and matrix.dtype == np.float32):
        return np.empty(0, matrix.dtype)
    return _packed_rows(np.ascontiguousarray(matrix))


def matmul(a, packed_a, b, c):
    """c (M, N) = a (M, K) @ b (K, N); packed_a from :func:`packed_operand` (a), empty
    for np.dot."""
    np.dot(a, b, c)


def product(a, b, c, own):
    """c (M, N) = a (M, K) @ b (K, N), both packed here; on the micro-kernel when ``own``."""
    np.dot(a, b, c)


def matmul_transposed(a, b, c, accumulate, own):
    """c (M, N) [+]= a (M, K) @ b (N, K).T; on the micro-kernel when ``own`` (ENABLED)."""
    if accumulate:
        c += a @ b.T
    else:
        np.dot(a, b.T, c)


def product_block(a, b, first, last, c, own):
    """c[:, first:last] (M, L) = a (M, K) @ b[:, first:last] (K, L) for b (K, F) and c (M, F),
    C-contiguous: a block of columns (a piece of a product split by columns, which packs
    only its block of b); on the micro-kernel when ``own``."""
    c[:, first:last] = a @ b[:, first:last]


@serial_kernel
def _packed_rows(a):
    """a (M, K) C-contiguous, packed in MR-row panels (pack_rows_a)."""
    packed = np.empty(packed_size(a.shape[0], a.shape[1], MR), np.float32)
    pack_rows_a(a.reshape(-1), a.shape[1], a.shape[0], a.shape[1], packed)
    return packed


@serial_kernel
def _packed_b(b, transposed):
    """B = b (K, N), or b.T with ``transposed`` (b (N, K)), packed in NR-column panels."""
    depth, columns = (b.shape[1], b.shape[0]) if transposed else (b.shape[0], b.shape[1])
    packed = np.empty(packed_size(columns, depth, NR), np.float32)
    if transposed:
        pack_columns_b(b.reshape(-1), depth, depth, columns, packed)
    else:
        pack_rows_b(b.reshape(-1), columns, depth, columns, packed)
    return packed


@serial_kernel
def _times(packed_a, rows, depth, b, c, accumulate, transposed):
    """c (rows, N) [+]= A (rows, depth) @ B from A's packed panels; B as in _packed_b."""
    columns = b.shape[0] if transposed else b.shape[1]
    multiply(packed_a, _packed_b(b, transposed), rows, columns, depth, c.reshape(-1), 0, columns,
             accumulate, np.empty(MR * NR, np.float32))


@serial_kernel
def _times_in_place(a, b, c, accumulate, transposed):
    """c (M, N) [+]= a (M, K) @ B, a's rows read in place when M is a multiple of MR (packed
    otherwise); B as in _packed_b."""
    rows, depth = a.shape
    columns = b.shape[0] if transposed else b.shape[1]
    if rows % MR:
        _times(_packed_rows(a), rows, depth, b, c, accumulate, transposed)
        return
    multiply_rows(a.reshape(-1), depth, _packed_b(b, transposed), rows, columns, depth,
                  c.reshape(-1), 0, columns, accumulate, np.empty(MR * NR, np.float32))


@serial_kernel
def _times_block(a, b, first, last, c):
    """product_block on the micro-kernel: b's block packed with b's row stride, a's rows
    read in place when they are whole tiles."""
    rows, depth = a.shape
    columns = last - first
    packed_b = np.empty(packed_size(columns, depth, NR), np.float32)
    pack_rows_b(b.reshape(-1)[first:], b.shape[1], depth, columns, packed_b)
    edge = np.empty(MR * NR, np.float32)
    if rows % MR:
        multiply(_packed_rows(a), packed_b, rows, columns, depth, c.reshape(-1), first,
                 c.shape[1], False, edge)
    else:
        multiply_rows(a.reshape(-1), depth, packed_b, rows, columns, depth, c.reshape(-1), first,
                      c.shape[1], False, edge)


@serial_kernel
def _blas_block(a, b, first, last, c):
    block = np.empty((a.shape[0], last - first), c.dtype)
    np.dot(a, np.ascontiguousarray(b[:, first:last]), block)
    for i in range(a.shape[0]):
        c[i, first:last] = block[i]


@overload(product_block)
def _product_block(a, b, first, last, c, own):
    if _own(a.dtype):
        def mine(a, b, first, last, c, own):
            if not own or min(a.shape[0], last - first) < NARROW:
                _blas_block(a, b, first, last, c)
            else:
                _times_block(a, b, first, last, c)
        return mine

    def blas(a, b, first, last, c, own):
        _blas_block(a, b, first, last, c)
    return blas


@serial_kernel
def _few_rows(a, b, c):
    """c (M, N) = a (M, K) @ b (K, N) for a few rows of a: each row of c as a sum of K
    scaled rows of b, a loop along N that vectorises (one BLAS call per sample cost
    fixed_kernel_cnn's 1-filter convolution 1 us a sample, more than its arithmetic)."""
    for i in range(a.shape[0]):
        row = c[i]
        first = a[i, 0]
        for j in range(row.size):
            row[j] = first * b[0, j]
        for k in range(1, a.shape[1]):
            scale = a[i, k]
            for j in range(row.size):
                row[j] += scale * b[k, j]


@overload(matmul)
def _matmul(a, packed_a, b, c):
    if _own(a.dtype):
        def mine(a, packed_a, b, c):
            if packed_a.size == 0 or b.shape[1] < NARROW:
                np.dot(a, b, c)
            elif a.shape[0] < FEW_ROWS:
                _few_rows(a, b, c)
            elif a.shape[0] < NARROW:
                np.dot(a, b, c)
            else:
                _times(packed_a, a.shape[0], a.shape[1], b, c, False, False)
        return mine

    def blas(a, packed_a, b, c):
        np.dot(a, b, c)
    return blas


@overload(product)
def _product(a, b, c, own):
    if _own(a.dtype):
        def mine(a, b, c, own):
            if not own or min(a.shape[0], b.shape[1]) < NARROW:
                np.dot(a, b, c)
            else:
                _times_in_place(a, b, c, False, False)
        return mine

    def blas(a, b, c, own):
        np.dot(a, b, c)
    return blas


@overload(matmul_transposed)
def _matmul_transposed(a, b, c, accumulate, own):
    if _own(a.dtype):
        def mine(a, b, c, accumulate, own):
            if not own or min(a.shape[0], b.shape[0]) < NARROW:
                _blas_transposed(a, b, c, accumulate)
            else:
                _times_in_place(a, b, c, accumulate, True)
        return mine

    def blas(a, b, c, accumulate, own):
        _blas_transposed(a, b, c, accumulate)
    return blas


@serial_sum_kernel
def _blas_transposed(a, b, c, accumulate):
    """c (M, N) [+]= a (M, K) @ b (N, K).T on BLAS, or as M*N dot products when M or N is
    below NARROW (pytorch_cnn's first weight gradient, (9 x 784) @ (784 x 32) per sample:
    BLAS ran those at 58 GFLOP/s); their sums vectorise in the fastmath kernels."""
    rows, columns = c.shape
    if min(rows, columns) < NARROW:
        zero = np.zeros(1, c.dtype)[0]
        for i in range(rows):
            left = a[i]
            for j in range(columns):
                right = b[j]
                total = zero
                for k in range(left.size):
                    total += left[k] * right[k]
                c[i, j] = c[i, j] + total if accumulate else total
        return
    if accumulate:
        term = np.empty_like(c)
        np.dot(a, b.T, term)
        for i in range(c.shape[0]):
            for j in range(c.shape[1]):
                c[i, j] += term[i, j]
    else:
        np.dot(a, b.T, c)
