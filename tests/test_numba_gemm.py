"""The numba backend's own AVX-512 GEMM (kernels/numba_cpu/gemm.py) against NumPy.

The micro-kernel is compiled on any x86 host (LLVM splits its 16-float vectors
where AVX-512 is missing), so these tests run everywhere, whether or not the
conv kernels use it here (``gemm.ENABLED``). Shapes cover tiles that hang over
every edge, depths above one KC slice, accumulation and the narrow fallback.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")
from numba import njit  # noqa: E402

import fastcnn  # noqa: E402,F401  (sets numba's cache up)
from fastcnn.kernels.numba_cpu import gemm  # noqa: E402

SHAPES = [(1, 1, 1), (8, 32, 1), (5, 7, 3), (8, 256, 32), (13, 37, 45), (64, 288, 196),
          (17, 300, 33), (64, 600, 31), (9, 513, 70), (288, 64, 196)]
"""(rows, depth, columns): single elements, exact tiles, every edge, depth > KC."""


@njit
def packed_into(a, b, flat_c, ldc, accumulate):
    """flat_c[i*ldc + j] [+]= (a @ b)[i, j] through pack_rows_a, pack_rows_b and multiply."""
    rows, depth = a.shape
    columns = b.shape[1]
    packed_a = np.empty(gemm.packed_size(rows, depth, gemm.MR), np.float32)
    packed_b = np.empty(gemm.packed_size(columns, depth, gemm.NR), np.float32)
    edge = np.empty(gemm.MR * gemm.NR, np.float32)
    gemm.pack_rows_a(a.reshape(-1), depth, rows, depth, packed_a)
    gemm.pack_rows_b(b.reshape(-1), columns, depth, columns, packed_b)
    gemm.multiply(packed_a, packed_b, rows, columns, depth, flat_c, 0, ldc, accumulate, edge)


def packed_product(a, b, c, accumulate):
    packed_into(a, b, c.reshape(-1), c.shape[1], accumulate)


@njit
def transposed_packing(b_t, a):
    """a (rows, depth) @ (b_t (columns, depth)).T through pack_columns_b."""
    rows, depth = a.shape
    columns = b_t.shape[0]
    packed_a = np.empty(gemm.packed_size(rows, depth, gemm.MR), np.float32)
    packed_b = np.empty(gemm.packed_size(columns, depth, gemm.NR), np.float32)
    edge = np.empty(gemm.MR * gemm.NR, np.float32)
    c = np.empty((rows, columns), np.float32)
    gemm.pack_rows_a(a.reshape(-1), depth, rows, depth, packed_a)
    gemm.pack_columns_b(b_t.reshape(-1), depth, depth, columns, packed_b)
    gemm.multiply(packed_a, packed_b, rows, columns, depth, c.reshape(-1), 0, columns, False, edge)
    return c


@njit
def through_matmul(a, packed_a, b, c):
    gemm.matmul(a, packed_a, b, c)


@njit
def through_product(a, b, c, own):
    gemm.product(a, b, c, own)


@njit
def through_matmul_transposed(a, b, c, accumulate, own):
    gemm.matmul_transposed(a, b, c, accumulate, own)


def operands(rows, depth, columns, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed + rows * 1000 + depth * 10 + columns)
    return (rng.standard_normal((rows, depth)).astype(dtype),
            rng.standard_normal((depth, columns)).astype(dtype))


def assert_product(actual, expected, depth):
    # float32 sums of `depth` products: error grows like sqrt(depth) * eps * |terms|
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * np.sqrt(depth) * 4)


@pytest.mark.parametrize("rows, depth, columns", SHAPES)
def test_packed_multiply_matches_numpy(rows, depth, columns):
    a, b = operands(rows, depth, columns)
    c = np.full((rows, columns), np.nan, np.float32)
    packed_product(a, b, c, False)
    assert_product(c, a.astype(np.float64) @ b, depth)


@pytest.mark.parametrize("rows, depth, columns", SHAPES)
def test_packed_multiply_accumulates_into_c(rows, depth, columns):
    a, b = operands(rows, depth, columns)
    start = np.random.default_rng(1).standard_normal((rows, columns)).astype(np.float32)
    c = start.copy()
    packed_product(a, b, c, True)
    assert_product(c, start + a.astype(np.float64) @ b, depth)


@pytest.mark.parametrize("rows, depth, columns", SHAPES)
def test_packing_a_transposed_operand_matches_numpy(rows, depth, columns):
    a, b = operands(rows, depth, columns)
    c = transposed_packing(np.ascontiguousarray(b.T), a)
    assert_product(c, a.astype(np.float64) @ b, depth)


@pytest.mark.parametrize("rows, depth, columns", [(8, 5, 3), (16, 300, 33), (288, 196, 64)])
def test_multiply_reading_a_in_place_matches_numpy(rows, depth, columns):
    """multiply_rows: A's rows read where they are (rows a multiple of MR), over K slices."""
    a, b = operands(rows, depth, columns)

    @njit
    def in_place(a, b, c, accumulate):
        packed_b = np.empty(gemm.packed_size(b.shape[1], b.shape[0], gemm.NR), np.float32)
        gemm.pack_rows_b(b.reshape(-1), b.shape[1], b.shape[0], b.shape[1], packed_b)
        gemm.multiply_rows(a.reshape(-1), a.shape[1], packed_b, a.shape[0], b.shape[1],
                           a.shape[1], c.reshape(-1), 0, b.shape[1], accumulate,
                           np.empty(gemm.MR * gemm.NR, np.float32))

    c = np.full((rows, columns), np.nan, np.float32)
    in_place(a, b, c, False)
    assert_product(c, a.astype(np.float64) @ b, depth)
    start = c.copy()
    in_place(a, b, c, True)
    assert_product(c, 2 * start.astype(np.float64), depth)


@pytest.mark.parametrize("rows, columns, out_h, out_w, jump", [
    (8, 32, 1, 1, 1), (13, 45, 3, 7, 9), (288, 64, 14, 14, 16), (21, 70, 60, 5, 6)])
def test_multiply_reading_a_as_windows_matches_numpy(rows, columns, out_h, out_w, jump):
    """multiply_windows: A's row i is out_h runs of out_w values ``jump`` apart from
    row_offsets[i] (a weight gradient's columns in its padded input); every edge, and a
    depth past KC (60 rows of 5) in chunks of whole rows."""
    rng = np.random.default_rng(rows + out_h)
    reach = (out_h - 1) * jump + out_w
    a = rng.standard_normal(reach + 50).astype(np.float32)
    starts = rng.integers(0, 51, rows)
    offsets = np.zeros(-(-rows // gemm.MR) * gemm.MR, np.int64)
    offsets[:rows] = starts
    windows = np.stack([np.concatenate([a[s + y * jump:s + y * jump + out_w] for y in range(out_h)])
                        for s in starts])  # A (rows, out_h*out_w)
    depth = out_h * out_w
    b_t = rng.standard_normal((columns, depth)).astype(np.float32)

    @njit
    def through_windows(a, offsets, b_t, c, accumulate):
        packed_b = np.empty(gemm.packed_size(b_t.shape[0], b_t.shape[1], gemm.NR), np.float32)
        gemm.pack_columns_b(b_t.reshape(-1), b_t.shape[1], b_t.shape[1], b_t.shape[0], packed_b)
        gemm.multiply_windows(a, offsets, c.shape[0], out_h, out_w, jump, packed_b, c.shape[1],
                              c.reshape(-1), c.shape[1], accumulate,
                              np.empty(gemm.MR * gemm.NR, np.float32))

    c = np.full((rows, columns), np.nan, np.float32)
    through_windows(a, offsets, b_t, c, False)
    expected = windows.astype(np.float64) @ b_t.T
    assert_product(c, expected, depth)
    through_windows(a, offsets, b_t, c, True)
    assert_product(c, 2 * expected, depth)


def test_multiply_writes_only_inside_c():
    """Edge tiles go through the scratch tile: nothing beyond C's rows and columns changes."""
    a, b = operands(13, 40, 45)
    wide = np.full((13, 50), 7.0, np.float32)  # ldc 50 > 45 columns
    packed_into(a, b, wide.reshape(-1), 50, False)
    assert_product(wide[:, :45], a.astype(np.float64) @ b, 40)
    assert (wide[:, 45:] == 7.0).all()


@pytest.mark.parametrize("own", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows, depth, columns",
                         [(64, 288, 196), (288, 196, 64), (32, 9, 784), (5, 7, 3), (20, 300, 40),
                          (1, 9, 676), (3, 1, 40)])  # the last two: gemm.FEW_ROWS
def test_matmul_entry_points_match_numpy(monkeypatch, own, dtype, rows, depth, columns):
    """matmul, product and matmul_transposed: the own kernel for float32 where enabled, np.dot for
    float64, for products narrower than gemm.NARROW and with the kernel switched off."""
    monkeypatch.setattr(gemm, "ENABLED", own)
    a, b = operands(rows, depth, columns, dtype)
    c = np.empty((rows, columns), dtype)
    through_matmul(a, gemm.packed_operand(a), b, c)
    expected = a.astype(np.float64) @ b
    assert_product(c, expected, depth)
    c[...] = np.nan
    through_product(a, b, c, own)
    assert_product(c, expected, depth)
    b_t = np.ascontiguousarray(b.T)
    through_matmul_transposed(a, b_t, c, False, own)
    assert_product(c, expected, depth)
    through_matmul_transposed(a, b_t, c, True, own)
    assert_product(c, 2 * expected, depth)


def test_conv_kernels_match_the_reference_with_the_micro_kernel_off(monkeypatch):
    """The BLAS path (AVX2 hosts, FASTCNN_OWN_GEMM=0) on an AVX-512 host as well."""
    from fastcnn.kernels import numba_backend, numpy_backend

    monkeypatch.setattr(gemm, "ENABLED", False)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 16, 9, 11)).astype(np.float32)
    weight = (rng.standard_normal((24, 16, 3, 3)) / 12).astype(np.float32)
    bias = rng.standard_normal(24).astype(np.float32)
    dout = rng.standard_normal((5, 24, 9, 11)).astype(np.float32)
    results = []
    for module in (numpy_backend, numba_backend):
        cols, out = np.empty((5, 144, 99), np.float32), np.empty((5, 24, 9, 11), np.float32)
        module.conv2d_forward(x, weight, bias, 1, 1, "relu", cols, out)
        dx, dweight, dbias = np.empty_like(x), np.empty_like(weight), np.empty_like(bias)
        module.conv2d_backward(dout.copy(), out, weight, cols, 1, 1, "relu", dx, dweight, dbias,
                               np.empty_like(cols))
        results.append((out, dx, dweight, dbias))
    for want, got in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_packed_operand_is_empty_where_np_dot_multiplies():
    assert gemm.packed_operand(np.ones((4, 3))).size == 0  # float64: always np.dot
    packed = gemm.packed_operand(np.ones((9, 3), np.float32))
    assert packed.size == (0 if not gemm.ENABLED else 2 * gemm.MR * 3)


def test_the_tile_follows_the_isa_numba_compiles_for(monkeypatch):
    """AVX-512 and AVX2 each get a tile shape; below AVX2 (or FMA) the kernels keep BLAS. The
    features are NUMBA_CPU_FEATURES when set, else the host's, as numba's own codegen does,
    even with NUMBA_CPU_NAME alone set."""
    import numba
    from fastcnn.kernels.numba_cpu import jit

    monkeypatch.setattr(numba.config, "CPU_NAME", "generic")
    monkeypatch.setattr(numba.config, "CPU_FEATURES", "")
    assert jit.compiled_isa() is None
    monkeypatch.setattr(numba.config, "CPU_FEATURES", "+sse2,+avx,+avx2")
    assert jit.compiled_isa() is None  # AVX2 without FMA
    monkeypatch.setattr(numba.config, "CPU_FEATURES", "+avx2,+fma,-avx512f")
    assert jit.compiled_isa() == "avx2"
    monkeypatch.setattr(numba.config, "CPU_FEATURES", "+avx2,+fma,+avx512f")
    assert jit.compiled_isa() == "avx512"
    monkeypatch.setattr(numba.config, "CPU_FEATURES", None)
    import llvmlite.binding as llvm

    host = llvm.get_host_cpu_features()
    assert (jit.compiled_isa() == "avx512") == bool(host.get("avx512f"))
    assert (gemm.MR, gemm.NR, gemm.LANES) == ((8, 32, 16) if jit.ISA == "avx512" else (6, 16, 8))
    assert gemm.MR * gemm.NR // gemm.LANES <= (16 if jit.ISA == "avx512" else 12)  # accumulators


def _host_features_without_avx512() -> str:
    """This CPU's features for numba (NUMBA_CPU_FEATURES), with every AVX-512 and later
    EVEX extension off: the code numba generates on an AVX2 machine, which runs here."""
    import llvmlite.binding as llvm

    evex = ("avx512", "avx10", "amx", "evex512")
    flags = llvm.get_host_cpu_features()
    return ",".join(("+" if on and not name.startswith(evex) else "-") + name
                    for name, on in sorted(flags.items()))


@pytest.mark.skipif(__import__("fastcnn.kernels.numba_cpu.jit", fromlist=["ISA"]).ISA != "avx512",
                    reason="on an AVX2 host the suite itself runs the AVX2 tile, and AVX-512 "
                           "code cannot run on it")
def test_the_avx2_tile_passes_the_gemm_tests():
    """The 6 x 16 ymm tile that AVX2 machines run, compiled for AVX2 on this AVX-512 host
    (numba caches it apart: its cache key holds the CPU features): this file's tests, in a
    fresh interpreter. They call every entry point the convolution and dense kernels
    use, at their shapes and at every edge; compiling the convolutions a second time
    for AVX2 to run their conformance cases cost two minutes of the suite."""
    import os
    import subprocess
    import sys

    from conftest import REPO

    env = {key: value for key, value in os.environ.items()
           if key not in ("FASTCNN_BACKEND", "FASTCNN_OWN_GEMM")}
    env.update(NUMBA_CPU_FEATURES=_host_features_without_avx512(),
               PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    probe = subprocess.run([sys.executable, "-c", "from fastcnn.kernels.numba_cpu import gemm, jit; "
                            "print(jit.ISA, gemm.MR, gemm.NR, gemm.ENABLED)"],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert probe.stdout.split() == ["avx2", "6", "16", "True"], probe.stderr
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "tests/test_numba_gemm.py", "-k", "not avx2_tile and not micro_kernel_off"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:]
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary, summary
