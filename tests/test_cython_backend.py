"""The cython backend's own features: the compiled extension, its OpenMP or serial
build, its threads, its place in ``auto``, and installs that cannot compile it.

What every kernel computes is checked by the shared conformance suite; here the same
cases run again with every loop threaded, to catch races the small cases never reach.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fastcnn
import kernel_cases
from conftest import REPO

try:
    from fastcnn.kernels import cython_backend
except ImportError as exc:
    cython_backend, NOT_COMPILED = None, str(exc)
else:
    NOT_COMPILED = ""

needs_extension = pytest.mark.skipif(cython_backend is None, reason=NOT_COMPILED)
needs_openmp = pytest.mark.skipif(not getattr(cython_backend, "OPENMP", False),
                                  reason="the Cython extension was built without OpenMP")


def run_python(code: str, env: dict | None = None, cwd=None) -> str:
    """Run ``code`` in a fresh interpreter; its stdout, or the failure with stderr."""
    environment = {**os.environ, **(env or {})}
    environment.pop("FASTCNN_BACKEND", None)
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                            text=True, env=environment, cwd=cwd, timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout


# ---- the extension ---------------------------------------------------------------------------
@needs_extension
def test_extension_is_compiled_and_backend_available():
    from fastcnn.kernels.cython import _kernels

    assert Path(_kernels.__file__).suffix in (".so", ".pyd")
    status = {s.name: s for s in fastcnn.available_backends()}["cython"]
    assert status.available, status.reason
    with fastcnn.use_backend("cython"):
        assert fastcnn.get_backend() is cython_backend


@needs_extension
def test_build_reports_openmp_or_serial():
    assert isinstance(cython_backend.OPENMP, bool)
    if not cython_backend.OPENMP:
        assert cython_backend.get_num_threads() == 1
    elif sys.platform.startswith("linux"):
        maps = Path("/proc/self/maps").read_text()
        assert "gomp" in maps or "libomp" in maps, "OPENMP is True but no OpenMP runtime is loaded"


def test_missing_extension_makes_backend_unavailable_with_reinstall_hint():
    out = run_python("""
        import sys
        sys.modules["fastcnn.kernels.cython._kernels"] = None   # as if never compiled
        import fastcnn
        status = {s.name: s for s in fastcnn.available_backends()}["cython"]
        print(status.available, status.reason)
    """)
    assert out.startswith("False ")
    assert "the Cython extension was not compiled" in out
    assert "reinstall with a C compiler: pip install ." in out


# ---- threads -----------------------------------------------------------------------------------
@needs_openmp
def test_set_num_threads_reaches_the_compiled_kernels():
    before = cython_backend.get_num_threads()
    try:
        cython_backend.set_num_threads(3)
        assert cython_backend.get_num_threads() == 3
        fastcnn.set_num_threads(2)
        assert cython_backend.get_num_threads() == 2
    finally:
        cython_backend.set_num_threads(before)


@needs_openmp
@pytest.mark.parametrize("env, expected", [
    ({"OMP_NUM_THREADS": "3", "NUMBA_NUM_THREADS": "5"}, 3),
    ({"OMP_NUM_THREADS": "", "NUMBA_NUM_THREADS": "5"}, 5),
])
def test_default_threads_honour_environment(env, expected):
    out = run_python("from fastcnn.kernels import cython_backend as c; print(c.get_num_threads())",
                     env=env)
    assert int(out) == expected


@pytest.fixture
def every_loop_threaded():
    """Thread every loop, however small, on more threads than cores."""
    from fastcnn.kernels.cython import _kernels

    threads = cython_backend.get_num_threads()
    previous = _kernels.set_parallel_min(0)
    cython_backend.set_num_threads(4)
    yield
    _kernels.set_parallel_min(previous)
    cython_backend.set_num_threads(threads)


@needs_openmp
@pytest.mark.parametrize("op", kernel_cases.COMPUTE_OPERATIONS)
def test_threaded_kernels_match_reference(op, every_loop_threaded):
    from test_conformance import check_against_reference

    for case in kernel_cases.cases(op):
        check_against_reference("cython", case)


# ---- auto ---------------------------------------------------------------------------------------
@needs_extension
def test_auto_picks_cython_when_numba_cannot_be_imported():
    out = run_python("""
        import sys
        sys.modules["numba"] = None   # as on a machine where Numba cannot run
        import fastcnn
        print(fastcnn.set_backend("auto"))
    """)
    assert out.split() == ["cython"]


# ---- installs that cannot build the extension -------------------------------------------------------
def _install_copy(tmp_path, env: dict) -> Path:
    """pip install a copy of the repository into tmp_path/site with ``env``; the site folder."""
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("*.so", "*.pyd", "*.c", "__pycache__", "build", "*.egg-info")
    for name in ("fastcnn", "kernels"):
        shutil.copytree(REPO / name, source / name, ignore=ignore)
    for name in ("setup.py", "pyproject.toml"):
        shutil.copy(REPO / name, source / name)
    (source / "README.md").touch()
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--quiet",
         "--target", str(site), str(source)],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=600)
    assert result.returncode == 0, result.stderr
    return site


def _status_in(site: Path) -> str:
    """available, reason and (when it runs) OPENMP of the cython backend installed in ``site``."""
    return run_python(f"""
        import sys
        sys.path.insert(0, {str(site)!r})
        import fastcnn
        assert fastcnn.__file__.startswith({str(site)!r}), fastcnn.__file__
        status = {{s.name: s for s in fastcnn.available_backends()}}["cython"]
        if status.available:
            from fastcnn.kernels import cython_backend
            print(True, "OPENMP", cython_backend.OPENMP)
        else:
            print(False, status.reason)
    """, cwd=site)


def test_install_without_c_compiler_succeeds_and_reports_cython_unavailable(tmp_path):
    site = _install_copy(tmp_path, {"CC": "/nonexistent/cc"})
    out = _status_in(site)
    assert out.startswith("False "), out
    assert "the Cython extension was not compiled" in out


@pytest.mark.slow
def test_compiler_without_openmp_builds_a_serial_extension(tmp_path):
    compiler = tmp_path / "cc-without-openmp"
    # -O0 last (gcc takes the last -O): what is tested is the build and its fallback, and
    # the optimised build took 46 s of the suite
    compiler.write_text('#!/bin/sh\nfor a in "$@"; do [ "$a" = -fopenmp ] && exit 1; done\n'
                        'exec cc "$@" -O0\n')
    compiler.chmod(0o755)
    site = _install_copy(tmp_path, {"CC": str(compiler)})
    assert _status_in(site).split() == ["True", "OPENMP", "False"]


# ---- the own AVX-512 sgemm ------------------------------------------------------------------
GEMM_SHAPES = [(1, 1, 1), (8, 256, 32), (13, 37, 45), (64, 288, 196), (17, 300, 33), (9, 513, 70),
               (288, 64, 196), (32, 784, 9)]
"""(M, K, N): exact tiles, every edge, depth above one 256 slice, the narrow BLAS fallback."""


@pytest.mark.parametrize("own", [True, False])
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (False, True), (True, False)])
@pytest.mark.parametrize("m, k, n", GEMM_SHAPES)
def test_gemm_matches_numpy(own, trans_a, trans_b, m, k, n):
    """The micro-kernel where the CPU has AVX-512F (BLAS otherwise, and with own=False), for
    every transpose the kernels use, overwriting and accumulating."""
    kernels = pytest.importorskip("fastcnn.kernels.cython._kernels")
    rng = np.random.default_rng(m * 7 + k * 3 + n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    stored_a = np.ascontiguousarray(a.T) if trans_a else a
    stored_b = np.ascontiguousarray(b.T) if trans_b else b
    start = rng.standard_normal((m, n)).astype(np.float32)
    expected = a.astype(np.float64) @ b
    previous = kernels.use_own_gemm(own)
    try:
        c = np.full((m, n), np.nan, np.float32)
        kernels.gemm_float32(stored_a, stored_b, c, trans_a, trans_b, False)
        np.testing.assert_allclose(c, expected, rtol=1e-5, atol=1e-4 * np.sqrt(k))
        c = start.copy()
        kernels.gemm_float32(stored_a, stored_b, c, trans_a, trans_b, True)
        np.testing.assert_allclose(c, start + expected, rtol=1e-5, atol=1e-4 * np.sqrt(k))
    finally:
        kernels.use_own_gemm(previous)
