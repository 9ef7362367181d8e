"""Sums of scaled rows in vector registers: a sparse matrix times dense rows.

    dst[dst_at + dst_blocks[b] + l] [+]= sum over e < count of
        coef[coef_at + e] * src[rows[rows_at + e] + src_blocks[b] + l]

for b < blocks and l < LANES (float32; rows and block offsets int64). Each block of
LANES floats has its own offset in the source row and in the destination, so one call
sums a row's scattered pieces (a filter's 3x3 taps of a padded channels-last image) into
scattered places. The sum runs in ``blocks`` vector accumulators that stay in registers
over all ``count`` entries and meet the destination once: the same sum as a scatter of
each entry into memory (load, FMA, store per block), which measured 3x slower at the
speedrun's conv3 (the store of one entry and the load of the next wait on each other).

The accumulators are unrolled in LLVM IR (``numba.extending.intrinsic``, as
:mod:`.gemm`'s tile), so each count of blocks is its own function: :func:`rows_sum`
takes any ``blocks`` in chunks of 9, 8, 4, 2 and 1: a 3x3 filter's taps over channels
that fill whole vectors come in nines (at C = 16, one call of 9 instead of 8 + 1 took
the speedrun's conv2 backward pass from 23.5 to 20.5 us a sample). Nine accumulators and
their loads fit AVX-512's 32 zmm registers and AVX2's 16 ymm.

:func:`lanes_sum` is the same sum with a vector of coefficients per entry, multiplied
lane by lane (:mod:`.direct`'s weight gradient: a pool window's gradients times the
shifted input rows, one accumulator per tap).
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from .gemm import LANES
from .jit import inline_helper


def _codegen(blocks, per_lane):
    def codegen(context, builder, signature, args):
        (count, coef, coef_at, rows, rows_at, src, src_blocks, src_blocks_at, dst, dst_at,
         dst_blocks, dst_blocks_at, accumulate) = args
        i64, f32 = ir.IntType(64), ir.FloatType()
        vec = ir.VectorType(f32, LANES)
        vec_ptr = vec.as_pointer()
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * 3),
                                             f"llvm.fma.v{LANES}f32")

        def data(index, value, at=None):
            pointer = context.make_array(signature.args[index])(context, builder, value).data
            return pointer if at is None else builder.gep(pointer, [at])

        coef_ptr, rows_ptr = data(1, coef, coef_at), data(3, rows, rows_at)
        src_ptr, dst_ptr = data(5, src), data(8, dst, dst_at)
        src_blocks_ptr = data(6, src_blocks, src_blocks_at)
        dst_blocks_ptr = data(10, dst_blocks, dst_blocks_at)
        src_offsets = [builder.load(builder.gep(src_blocks_ptr, [ir.Constant(i64, b)]))
                       for b in range(blocks)]
        slots = []
        for _ in range(blocks):
            slots.append(cgutils.alloca_once(builder, vec))
            builder.store(ir.Constant(vec, [0.0] * LANES), slots[-1])
        undef = ir.Constant(vec, ir.Undefined)
        splat_mask = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
        with cgutils.for_range(builder, count) as loop:
            e = loop.index
            if per_lane:  # the entry's own vector of coefficients
                at = builder.gep(coef_ptr, [builder.mul(e, ir.Constant(e.type, LANES))])
                splat = builder.load(builder.bitcast(at, vec_ptr), align=4)
            else:
                scale = builder.load(builder.gep(coef_ptr, [e]))
                splat = builder.shuffle_vector(builder.insert_element(undef, scale,
                                                                      ir.Constant(i64, 0)),
                                               undef, splat_mask)
            row = builder.gep(src_ptr, [builder.load(builder.gep(rows_ptr, [e]))])
            for b in range(blocks):
                value = builder.load(builder.bitcast(builder.gep(row, [src_offsets[b]]),
                                                     vec_ptr), align=4)
                builder.store(builder.call(fma, [splat, value, builder.load(slots[b])]),
                              slots[b])
        keep = builder.icmp_unsigned("!=", accumulate, ir.Constant(accumulate.type, 0))
        for b in range(blocks):
            offset = builder.load(builder.gep(dst_blocks_ptr, [ir.Constant(i64, b)]))
            where = builder.bitcast(builder.gep(dst_ptr, [offset]), vec_ptr)
            total = builder.load(slots[b])
            with builder.if_else(keep) as (then, otherwise):
                with then:
                    builder.store(builder.fadd(total, builder.load(where, align=4)), where,
                                  align=4)
                with otherwise:
                    builder.store(total, where, align=4)
        return context.get_dummy_value()
    return codegen


def _rows_intrinsic(blocks, per_lane=False):
    def typer(typingctx, count, coef, coef_at, rows, rows_at, src, src_blocks, src_blocks_at,
              dst, dst_at, dst_blocks, dst_blocks_at, accumulate):
        floats = all(isinstance(t, types.Array) and t.dtype == types.float32
                     for t in (coef, src, dst))
        offsets = all(isinstance(t, types.Array) and t.dtype == types.int64
                      for t in (rows, src_blocks, dst_blocks))
        if not (floats and offsets):
            return None
        return (types.void(count, coef, coef_at, rows, rows_at, src, src_blocks, src_blocks_at,
                           dst, dst_at, dst_blocks, dst_blocks_at, accumulate),
                _codegen(blocks, per_lane))
    typer.__name__ = f"_{'lanes' if per_lane else 'rows'}{blocks}"
    return intrinsic(typer)


_rows9, _rows8, _rows4, _rows2, _rows1 = (_rows_intrinsic(blocks) for blocks in (9, 8, 4, 2, 1))
_lanes9, _lanes4, _lanes1 = (_rows_intrinsic(blocks, True) for blocks in (9, 4, 1))


@inline_helper
def rows_sum(count, coef, coef_at, rows, rows_at, src, src_blocks, dst, dst_at, dst_blocks,
             blocks, accumulate):
    """dst[dst_at + dst_blocks[b] + l] [+]= sum over e < count of coef[coef_at + e] *
    src[rows[rows_at + e] + src_blocks[b] + l], for b < blocks (see the module's
    docstring). With ``accumulate`` False and count 0 the blocks are set to zero."""
    b = 0
    while blocks - b >= 9:
        _rows9(count, coef, coef_at, rows, rows_at, src, src_blocks, b, dst, dst_at,
               dst_blocks, b, accumulate)
        b += 9
    if blocks - b >= 8:
        _rows8(count, coef, coef_at, rows, rows_at, src, src_blocks, b, dst, dst_at,
               dst_blocks, b, accumulate)
        b += 8
    if blocks - b >= 4:
        _rows4(count, coef, coef_at, rows, rows_at, src, src_blocks, b, dst, dst_at,
               dst_blocks, b, accumulate)
        b += 4
    if blocks - b >= 2:
        _rows2(count, coef, coef_at, rows, rows_at, src, src_blocks, b, dst, dst_at,
               dst_blocks, b, accumulate)
        b += 2
    if blocks - b >= 1:
        _rows1(count, coef, coef_at, rows, rows_at, src, src_blocks, b, dst, dst_at,
               dst_blocks, b, accumulate)


@inline_helper
def lanes_sum(count, coef, coef_at, rows, rows_at, src, src_blocks, dst, dst_at, dst_blocks,
              blocks, accumulate):
    """rows_sum with a vector of coefficients per entry, multiplied lane by lane:
    dst[dst_at + dst_blocks[b] + l] [+]= sum over e < count of coef[coef_at + e*LANES + l]
    * src[rows[rows_at + e] + src_blocks[b] + l]. Blocks go in chunks of 9, 4 and 1."""
    b = 0
    while blocks - b >= 9:
        _lanes9(count, coef, coef_at, rows, rows_at, src, src_blocks, b, dst, dst_at,
                dst_blocks, b, accumulate)
        b += 9
    while blocks - b >= 4:
        _lanes4(count, coef, coef_at, rows, rows_at, src, src_blocks, b, dst, dst_at,
                dst_blocks, b, accumulate)
        b += 4
    while blocks - b >= 1:
        _lanes1(count, coef, coef_at, rows, rows_at, src, src_blocks, b, dst, dst_at,
                dst_blocks, b, accumulate)
        b += 1
