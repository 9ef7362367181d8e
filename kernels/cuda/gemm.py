"""Tiled shared-memory GEMM for the cuda backend, with a fused bias + activation epilogue.

One kernel serves every product the layers need. It computes, for each batch
index b of a launch,

    C[b] = act(bias + sum over s < summed of op(A[b*summed + s]) @ op(B[b*summed + s]))

where A is (M, K) and B is (K, N) read through element strides, so a
transposed operand is just other strides, and ``summed`` > 1 adds up a batch
(conv dW = sum_n dout[n] @ cols[n]^T) inside one output tile. C is always a
dense row-major (batches, M, N) array.

Each block owns a TILE_M x TILE_N tile of C and walks K in TILE_K steps,
staging A and B tiles in shared memory; each thread accumulates a
PER_THREAD x PER_THREAD register block (on a GPU: 64 x 64 tiles, K steps of
16, 16 x 16 threads of 4 x 4 outputs; under the simulator 16 x 16 tiles
with 4 x 4 threads, so tests hit the tile edges cheaply). Tile loads pick the thread mapping
that makes consecutive threads read consecutive addresses for either
operand layout. When the output alone has too few tiles to fill the GPU, the
K steps are split across grid z (split-K) into a cached workspace and a
second kernel adds the partial sums and applies the epilogue.
"""

from __future__ import annotations

from numba import cuda, float32

from . import device
from .runtime import SIMULATED, ACTIVATION_CODES, launch, workspace

if SIMULATED:  # small tiles: the simulator runs every thread in Python
    TILE_M = TILE_N = 16
    TILE_K, THREADS_X, THREADS_Y, PER_THREAD = 8, 4, 4, 4
else:
    TILE_M = TILE_N = 64
    TILE_K, THREADS_X, THREADS_Y, PER_THREAD = 16, 16, 16, 4
BLOCK_THREADS = THREADS_X * THREADS_Y
PADDED_TILE = TILE_M + 1                        # shared tile row length: +1 avoids bank conflicts
LOADS = TILE_K * TILE_M // BLOCK_THREADS        # elements of each tile one thread loads
ROWS_PER_PASS = BLOCK_THREADS // TILE_K         # tile rows covered per load pass, K-contiguous
DEPTH_PER_PASS = BLOCK_THREADS // TILE_M        # tile depth covered per load pass, row-contiguous
assert TILE_M == TILE_N == THREADS_X * PER_THREAD == THREADS_Y * PER_THREAD
assert TILE_K * TILE_M % BLOCK_THREADS == 0 and BLOCK_THREADS % TILE_M == 0

NO_BIAS, BIAS_PER_ROW, BIAS_PER_COLUMN = 0, 1, 2
MAX_GRID_Z = 65535

MIN_SPLIT_STEPS = 2 if SIMULATED else 8
"""Split-K never gives a block fewer K steps than this."""
TARGET_BLOCKS = None
"""Blocks a launch should reach before split-K stops (None: twice the GPU's SM count)."""


@cuda.jit(device=True)
def _epilogue(value, row, col, bias, bias_mode, activation):
    if bias_mode == BIAS_PER_ROW:
        value += bias[row]
    elif bias_mode == BIAS_PER_COLUMN:
        value += bias[col]
    return device.activate(value, activation)


@cuda.jit(device=True)
def _load_tile(src, base, outer0, outer_size, outer_stride, k0, k, k_stride, t, tile):
    """tile[kk, o] = src[base + (outer0 + o)*outer_stride + (k0 + kk)*k_stride] (0 outside).

    The thread mapping follows the contiguous axis so that a warp reads
    consecutive addresses for either layout of the operand.
    """
    for r in range(LOADS):
        if k_stride == 1:
            kk = t % TILE_K
            o = t // TILE_K + r * ROWS_PER_PASS
        else:
            o = t % TILE_M
            kk = t // TILE_M + r * DEPTH_PER_PASS
        value = float32(0.0)
        if outer0 + o < outer_size and k0 + kk < k:
            value = src[base + (outer0 + o) * outer_stride + (k0 + kk) * k_stride]
        tile[kk, o] = value


@cuda.jit
def _gemm_kernel(a, b, c, m, n, k, a_batch, a_row, a_k, b_batch, b_k, b_col,
                 summed, splits, bias, bias_mode, activation):
    a_tile = cuda.shared.array((TILE_K, PADDED_TILE), float32)
    b_tile = cuda.shared.array((TILE_K, PADDED_TILE), float32)
    acc = cuda.local.array((PER_THREAD, PER_THREAD), float32)
    b_reg = cuda.local.array(PER_THREAD, float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    t = ty * THREADS_X + tx
    row0 = cuda.blockIdx.y * TILE_M
    col0 = cuda.blockIdx.x * TILE_N
    z = cuda.blockIdx.z
    batch = z // splits
    split = z - batch * splits
    k_tiles = (k + TILE_K - 1) // TILE_K
    steps = summed * k_tiles
    for i in range(PER_THREAD):
        for j in range(PER_THREAD):
            acc[i, j] = 0
    for step in range(split * steps // splits, (split + 1) * steps // splits):
        s = step // k_tiles
        k0 = (step - s * k_tiles) * TILE_K
        a_base = (batch * summed + s) * a_batch
        b_base = (batch * summed + s) * b_batch
        _load_tile(a, a_base, row0, m, a_row, k0, k, a_k, t, a_tile)
        _load_tile(b, b_base, col0, n, b_col, k0, k, b_k, t, b_tile)
        cuda.syncthreads()
        for kk in range(TILE_K):
            for j in range(PER_THREAD):
                b_reg[j] = b_tile[kk, tx + j * THREADS_X]
            for i in range(PER_THREAD):
                a_value = a_tile[kk, ty + i * THREADS_Y]
                for j in range(PER_THREAD):
                    acc[i, j] += a_value * b_reg[j]
        cuda.syncthreads()
    out_base = z * m * n
    for i in range(PER_THREAD):
        row = row0 + ty + i * THREADS_Y
        for j in range(PER_THREAD):
            col = col0 + tx + j * THREADS_X
            if row < m and col < n:
                c[out_base + row * n + col] = _epilogue(acc[i, j], row, col, bias,
                                                        bias_mode, activation)


@cuda.jit
def _sum_splits_kernel(partial, splits, m, n, c, bias, bias_mode, activation):
    # c[b, row, col] = epilogue(sum over s of partial[b*splits + s, row, col])
    i = cuda.grid(1)
    if i < c.size:
        per_batch = m * n
        batch = i // per_batch
        e = i - batch * per_batch
        total = float32(0.0)
        for s in range(splits):
            total += partial[(batch * splits + s) * per_batch + e]
        row = e // n
        c[i] = _epilogue(total, row, e - row * n, bias, bias_mode, activation)


def _target_blocks() -> int:
    global TARGET_BLOCKS
    if TARGET_BLOCKS is None:
        sms = getattr(cuda.get_current_device(), "MULTIPROCESSOR_COUNT", 1)
        TARGET_BLOCKS = 2 * sms
    return TARGET_BLOCKS


def split_count(tiles: int, steps: int) -> int:
    """How many ways to split the K steps so that ``tiles`` output tiles fill the GPU."""
    wanted = -(-_target_blocks() // tiles)
    return max(1, min(wanted, steps // MIN_SPLIT_STEPS))


def gemm(a, a_strides, b, b_strides, c, m: int, n: int, k: int, batches: int = 1,
         summed: int = 1, bias=None, bias_mode: int = NO_BIAS, activation=None) -> None:
    """c (batches, M, N) = act(bias + sum_s op(A[b*summed+s]) @ op(B[b*summed+s])).

    a, b, c are flat float32 device arrays; a_strides = (batch, row, k) and
    b_strides = (batch, k, col) are element strides of A (M, K) and B (K, N);
    bias is (M,) with BIAS_PER_ROW or (N,) with BIAS_PER_COLUMN; activation a
    contract activation name.
    """
    if bias is None:
        bias, bias_mode = workspace("gemm-no-bias", (1,)), NO_BIAS
    code = ACTIVATION_CODES[activation]
    grid_x, grid_y = -(-n // TILE_N), -(-m // TILE_M)
    splits = split_count(grid_x * grid_y * batches, summed * -(-k // TILE_K))
    splits = max(1, min(splits, MAX_GRID_Z // batches))
    threads = (THREADS_X, THREADS_Y)
    strides = (*a_strides, *b_strides)
    if splits == 1:
        _gemm_kernel[(grid_x, grid_y, batches), threads](
            a, b, c, m, n, k, *strides, summed, 1, bias, bias_mode, code)
        return
    partial = workspace("gemm-split-k", (batches * splits * m * n,))
    _gemm_kernel[(grid_x, grid_y, batches * splits), threads](
        a, b, partial, m, n, k, *strides, summed, splits, bias, NO_BIAS, 0)
    launch(_sum_splits_kernel, batches * m * n, partial, splits, m, n, c, bias, bias_mode, code)
