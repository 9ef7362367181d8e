"""What only the numba backend has: threads, the kernel cache, float64 kernels, import errors.

Its results against the NumPy reference are the conformance suite's job
(tests/test_conformance.py picks the backend up by itself).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("numba")

import fastcnn  # noqa: E402
from conftest import REPO  # noqa: E402
from fastcnn.kernels import numba_backend, numpy_backend  # noqa: E402
from fastcnn.kernels.numba_cpu import jit  # noqa: E402


def run_python(code: str, env_updates: dict | None = None) -> str:
    """Run ``code`` in a fresh interpreter; its stdout (fails the test on a non-zero exit)."""
    env = dict(os.environ, **(env_updates or {}))
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout


def conv_problem(dtype, batch=3, channels=4, size=9, seed=0):
    """x (N, C, size, size-1), weight (5, C, 3, 3), bias (5,)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, channels, size, size - 1)).astype(dtype)
    weight = rng.standard_normal((5, channels, 3, 3)).astype(dtype)
    bias = rng.standard_normal(5).astype(dtype)
    return x, weight, bias


def conv_forward_backward(kernels, x, weight, bias, stride=2, padding=1, activation="relu"):
    """Forward then backward with fresh buffers; every array written, by name."""
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    oh, ow = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    cols = np.empty((n, c * kh * kw, oh * ow), x.dtype)
    out = np.empty((n, o, oh, ow), x.dtype)
    kernels.conv2d_forward(x, weight, bias, stride, padding, activation, cols, out)
    dout = np.random.default_rng(1).standard_normal(out.shape).astype(x.dtype)
    dx, dweight, dbias, dcols = (np.empty_like(x), np.empty_like(weight), np.empty_like(bias),
                                 np.empty_like(cols))
    kernels.conv2d_backward(dout, out, weight, cols, stride, padding, activation,
                            dx, dweight, dbias, dcols)
    return {"cols": cols, "out": out, "dx": dx, "dweight": dweight, "dbias": dbias}


# ---- threads ------------------------------------------------------------------------------------
@pytest.fixture
def restore_threads():
    before = numba_backend.get_num_threads()
    yield
    numba_backend.set_num_threads(before)


def test_set_num_threads_sets_numba_threads(restore_threads):
    numba_backend.set_num_threads(1)
    assert numba_backend.get_num_threads() == 1
    import numba

    numba_backend.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert numba_backend.get_num_threads() == numba.config.NUMBA_NUM_THREADS


def test_set_num_threads_clamps_to_the_pool_size(restore_threads):
    import numba

    numba_backend.set_num_threads(numba.config.NUMBA_NUM_THREADS + 100)
    assert numba_backend.get_num_threads() == numba.config.NUMBA_NUM_THREADS
    numba_backend.set_num_threads(0)
    assert numba_backend.get_num_threads() == 1


def test_fastcnn_set_num_threads_reaches_the_numba_backend(restore_threads):
    fastcnn.set_num_threads(1)
    assert numba_backend.get_num_threads() == 1


def test_results_do_not_depend_on_the_thread_count(restore_threads):
    problem = conv_problem(np.float32, batch=8, channels=16, size=41)  # big enough for threads
    assert problem[0].size * 9 // 4 > jit.SERIAL_WORK
    numba_backend.set_num_threads(1)
    single = conv_forward_backward(numba_backend, *problem)
    import numba

    numba_backend.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    many = conv_forward_backward(numba_backend, *problem)
    for name in single:
        np.testing.assert_array_equal(single[name], many[name], err_msg=name)


def _from_input_and_dense(x, weight, bias):
    """A convolution's backward pass from its input, then a dense layer at batch 8 (its
    input gradient once went through BLAS in blocks chosen by the thread count)."""
    n, c, h, w = x.shape
    o = weight.shape[0]
    out = np.empty((n, o, h - 2, w - 2), x.dtype)
    numba_backend.conv2d_forward(x, weight, bias, 1, 0, "relu", None, out)
    dout = np.random.default_rng(1).standard_normal(out.shape).astype(x.dtype)
    dx, dweight, dbias = np.empty_like(x), np.empty_like(weight), np.empty_like(bias)
    numba_backend.conv2d_backward_from_input(dout, out, weight, x, 1, 0, "relu", dx, dweight,
                                             dbias)
    flat = out.reshape(n, -1)
    units = np.random.default_rng(2).standard_normal((100, flat.shape[1])).astype(x.dtype)
    dense_out = np.empty((n, 100), x.dtype)
    numba_backend.dense_forward(flat, units, None, "relu", dense_out)
    ddense = np.random.default_rng(3).standard_normal(dense_out.shape).astype(x.dtype)
    dflat, dunits = np.empty_like(flat), np.empty_like(units)
    numba_backend.dense_backward(ddense, dense_out, flat, units, "relu", dflat, dunits, None)
    return {"out": out, "dx": dx, "dweight": dweight, "dbias": dbias, "dense_out": dense_out,
            "dense dx": dflat, "dense dweight": dunits}


def test_backward_from_input_and_dense_do_not_depend_on_the_thread_count(restore_threads):
    import numba

    x, weight, bias = conv_problem(np.float32, batch=8, channels=16, size=30)
    results = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba_backend.set_num_threads(threads)
        results.append(_from_input_and_dense(x, weight, bias))
    for name in results[0]:
        np.testing.assert_array_equal(results[0][name], results[1][name], err_msg=name)


def test_small_kernels_leave_the_thread_setting_alone(restore_threads):
    import numba

    numba_backend.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    x = np.linspace(-1, 1, 10, dtype=np.float32)
    out = np.empty_like(x)
    numba_backend.relu_forward(x, out)  # runs on one thread: far below SERIAL_WORK
    assert numba_backend.get_num_threads() == numba.config.NUMBA_NUM_THREADS
    np.testing.assert_array_equal(out, np.maximum(x, 0))


def test_a_process_whose_first_kernel_runs_serially_works():
    """Small work runs a kernel's serial twin before any parallel kernel has loaded numba's
    threading layer (the convolution's once read numba's thread id there, and crashed)."""
    out = run_python("""
        import numpy as np
        from fastcnn.kernels import numba_backend
        x = np.ones((2, 1, 8, 8), np.float32)
        weight = np.ones((4, 1, 3, 3), np.float32)
        out = np.empty((2, 4, 6, 6), np.float32)
        for cols in (None, np.empty((2, 9, 36), np.float32)):  # None: the scratch
            numba_backend.conv2d_forward(x, weight, None, 1, 0, "relu", cols, out)
            print(float(out.min()), float(out.max()))
    """)
    assert out.split() == ["9.0", "9.0"] * 2


def test_numba_num_threads_environment_variable_sizes_the_pool():
    out = run_python("""
        from fastcnn.kernels import numba_backend
        print(numba_backend.get_num_threads())
    """, {"NUMBA_NUM_THREADS": "1"})
    assert out.split() == ["1"]


# ---- dtypes --------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", [None, "relu", "sigmoid"])
def test_kernels_accept_float64_arrays(activation):
    problem = conv_problem(np.float64)
    expected = conv_forward_backward(numpy_backend, *problem, activation=activation)
    actual = conv_forward_backward(numba_backend, *problem, activation=activation)
    for name in expected:
        assert actual[name].dtype == np.float64
        np.testing.assert_allclose(actual[name], expected[name], rtol=1e-12, atol=1e-12,
                                   err_msg=name)


def test_dropout_mask_is_the_contract_hash_in_float64_too():
    x = np.ones((4, 33), np.float64)
    out, mask = np.empty_like(x), np.empty_like(x)
    numba_backend.dropout_forward(x, 0.3, 2**64 + 17, out, mask)
    from fastcnn.kernels.contract import dropout_uniform

    keep = dropout_uniform(17, x.size).reshape(x.shape) >= 0.3
    np.testing.assert_array_equal(mask != 0, keep)


# ---- the kernel cache ----------------------------------------------------------------------
PACKAGE = "/site-packages/fastcnn/kernels/numba_cpu"


def test_an_installed_copy_never_caches_in_its_own_folder(tmp_path):
    # a cache in site-packages outlives `pip uninstall` and shadows the next install
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    chosen = jit.choose_cache_dir(PACKAGE, env, writable=lambda path: True)
    assert chosen == os.path.join(str(tmp_path), "fastcnn", "numba")


def test_a_source_checkout_keeps_numbas_pycache_beside_its_sources():
    assert jit.choose_cache_dir(PACKAGE, {}, writable=lambda path: True, source_checkout=True) is None


def test_source_checkout_and_installed_layouts_are_told_apart(tmp_path):
    checkout, site = tmp_path / "clone", tmp_path / "site-packages"
    for package in (checkout / "fastcnn", checkout / "kernels" / "numba_cpu",
                    site / "fastcnn" / "kernels" / "numba_cpu"):
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
    assert jit.is_source_checkout(str(checkout / "kernels" / "numba_cpu"))
    assert not jit.is_source_checkout(str(site / "fastcnn" / "kernels" / "numba_cpu"))
    assert jit.is_source_checkout(jit.PACKAGE_DIR)  # the tests run from the checkout


def test_cache_dir_set_by_the_user_always_wins():
    env = {"NUMBA_CACHE_DIR": "/mine"}
    assert jit.choose_cache_dir(PACKAGE, env, writable=lambda path: False) is None


def test_read_only_checkout_caches_in_the_user_cache_dir(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    chosen = jit.choose_cache_dir(PACKAGE, env, writable=lambda path: not path.startswith(PACKAGE),
                                  source_checkout=True)
    assert chosen == os.path.join(str(tmp_path), "fastcnn", "numba")


def test_read_only_install_without_a_user_cache_falls_back_to_a_temp_dir(tmp_path):
    import tempfile

    env = {"XDG_CACHE_HOME": str(tmp_path)}

    def writable(path):  # only the temp dir, and not the user cache inside tmp_path
        return path.startswith(tempfile.gettempdir()) and not path.startswith(str(tmp_path))

    chosen = jit.choose_cache_dir(PACKAGE, env, writable=writable)
    assert chosen is not None and chosen.startswith(tempfile.gettempdir())
    assert "fastcnn-numba" in chosen


def test_kernels_cached_from_other_sources_are_forgotten(tmp_path):
    """A helper edited in one file (claims.py) is inlined into kernels cached from
    others (conv.py), which numba would load unchanged (issue 21: a removed symbol
    crashed the process)."""
    (tmp_path / "conv.conv-12.py311.nbi").write_bytes(b"index")
    (tmp_path / "conv.conv-12.py311.1.nbc").write_bytes(b"code")
    (tmp_path / "unrelated.txt").write_text("kept")
    assert jit.forget_stale_kernels(str(tmp_path), "first")  # no stamp yet: forgotten
    assert sorted(path.name for path in tmp_path.iterdir()) == [jit.SOURCES_STAMP, "unrelated.txt"]
    (tmp_path / "conv.conv-12.py311.nbi").write_bytes(b"index")
    assert not jit.forget_stale_kernels(str(tmp_path), "first")  # same sources: kept
    assert (tmp_path / "conv.conv-12.py311.nbi").exists()
    assert jit.forget_stale_kernels(str(tmp_path), "second")
    assert not (tmp_path / "conv.conv-12.py311.nbi").exists()
    assert (tmp_path / jit.SOURCES_STAMP).read_text().strip() == "second"


def test_the_sources_digest_follows_every_kernel_file(tmp_path):
    (tmp_path / "claims.py").write_text("WAIT = 1\n")
    (tmp_path / "conv.py").write_text("x = 1\n")
    before = jit.sources_digest(str(tmp_path))
    (tmp_path / "claims.py").write_text("WAIT = 2\n")
    assert jit.sources_digest(str(tmp_path)) != before


def test_nothing_writable_turns_the_cache_off():
    assert jit.choose_cache_dir(PACKAGE, {}, writable=lambda path: False) == jit.NOWHERE


def test_writable_dir_probe(tmp_path):
    assert jit._writable_dir(str(tmp_path / "new" / "dir"))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert not jit._writable_dir(str(blocker / "cache"))


READ_ONLY_SITECUSTOMIZE = """
import os, tempfile
_READ_ONLY = os.environ["SIMULATED_READ_ONLY"]
_temporary_file = tempfile.TemporaryFile

def TemporaryFile(*args, dir=None, **kwargs):
    if dir is not None and os.path.abspath(dir).startswith(_READ_ONLY):
        raise PermissionError(13, "read-only file system (simulated)", dir)
    return _temporary_file(*args, dir=dir, **kwargs)

tempfile.TemporaryFile = TemporaryFile
"""

CACHE_PROBE = """
    import json, os, time
    start = time.perf_counter()
    import numpy as np
    from fastcnn.kernels import numba_backend
    from fastcnn.kernels.numba_cpu import conv, epilogue
    x = np.linspace(-1, 1, 6 * 5, dtype=np.float32).reshape(6, 5)
    w = np.linspace(-2, 2, 4 * 5, dtype=np.float32).reshape(4, 5)
    out = np.empty((6, 4), np.float32)
    numba_backend.dense_forward(x, w, np.ones(4, np.float32), "relu", out)
    cols = np.empty((1, 9, 30), np.float32)
    numba_backend.im2col(x.reshape(1, 1, 6, 5), 3, 3, 1, 1, cols)
    kernels = (epilogue.bias_activation.serial, conv._im2col.serial)  # small work: the serial twins
    print(json.dumps({
        "cache_dir": os.environ.get("NUMBA_CACHE_DIR"),
        "hits": sum(sum(k.stats.cache_hits.values()) for k in kernels),
        "misses": sum(sum(k.stats.cache_misses.values()) for k in kernels),
        "out": out.tolist() + cols.ravel().tolist(),
        "seconds": time.perf_counter() - start,
    }))
"""


def test_read_only_install_compiles_into_the_user_cache(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(READ_ONLY_SITECUSTOMIZE)
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_CACHE_DIR"}
    env.update(SIMULATED_READ_ONLY=jit.PACKAGE_DIR, XDG_CACHE_HOME=str(tmp_path / "cache"),
               PYTHONPATH=str(site))
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(CACHE_PROBE)], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    user_cache = tmp_path / "cache" / "fastcnn" / "numba"
    assert report["cache_dir"] == str(user_cache)
    assert list(user_cache.rglob("*.nbi")), "no numba cache index written to the user cache"


def test_an_installed_copy_compiles_into_the_user_cache_and_leaves_its_folder_clean(tmp_path):
    import shutil

    site = tmp_path / "site-packages"  # the layout `pip install .` gives: fastcnn/kernels/...
    ignore = shutil.ignore_patterns("__pycache__", "*.c", "build")
    shutil.copytree(REPO / "fastcnn", site / "fastcnn", ignore=ignore)
    shutil.copytree(REPO / "kernels", site / "fastcnn" / "kernels", ignore=ignore)
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_CACHE_DIR"}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), PYTHONPATH=str(site))
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(CACHE_PROBE)], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    user_cache = tmp_path / "cache" / "fastcnn" / "numba"
    assert report["cache_dir"] == str(user_cache) and report["misses"] > 0
    assert list(user_cache.rglob("*.nbi")), "no numba cache index written to the user cache"
    assert not list(site.rglob("*.nb[ic]")), "numba wrote its cache into the installed package"


def test_nothing_writable_still_runs_the_kernels_uncached(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(READ_ONLY_SITECUSTOMIZE)
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_CACHE_DIR"}
    env.update(SIMULATED_READ_ONLY=os.path.abspath(os.sep), PYTHONPATH=str(site))
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(CACHE_PROBE)], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["cache_dir"] is None and report["hits"] == 0
    assert report["out"][0] == pytest.approx([7.950998, 3.413793, 0.0, 0.0])


def test_second_process_loads_kernels_from_the_cache(tmp_path):
    env = {"NUMBA_CACHE_DIR": str(tmp_path)}
    first = json.loads(run_python(CACHE_PROBE, env).splitlines()[-1])
    second = json.loads(run_python(CACHE_PROBE, env).splitlines()[-1])
    assert first["misses"] > 0
    assert second["misses"] == 0 and second["hits"] > 0
    assert second["out"] == first["out"]
    print(f"first process {first['seconds']:.2f} s (compiles), "
          f"second {second['seconds']:.2f} s (cached)")


# ---- without numba -------------------------------------------------------------------------
def test_missing_numba_gives_a_clear_import_error():
    out = run_python("""
        import sys
        sys.modules["numba"] = None  # as if numba were not installed
        try:
            import fastcnn.kernels.numba_backend
        except ImportError as exc:
            print("ImportError:", exc)
        import fastcnn
        status = {s.name: s for s in fastcnn.available_backends()}["numba"]
        print("available:", status.available)
        print("reason:", status.reason)
    """)
    assert "ImportError: the numba backend needs the 'numba' package" in out
    assert "pip install numba" in out
    assert "available: False" in out
    assert "reason: cannot import fastcnn.kernels.numba_backend: the numba backend needs" in out


def test_missing_scipy_makes_the_compiled_backends_unavailable_saying_so():
    out = run_python("""
        import sys
        sys.modules["scipy"] = None  # as if SciPy were not installed
        import fastcnn
        for status in fastcnn.available_backends():
            if status.name in ("numba", "cython"):
                print(status.name, status.available, status.reason)
    """)
    for name in ("numba", "cython"):
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert f"{name} False" in line and f"the {name} backend needs SciPy" in line
        assert "pip install scipy" in line


# ---- kernel variants: the conformance cases reach every one ---------------------------------
def test_conformance_cases_reach_every_numba_kernel_variant():
    import kernel_cases
    from fastcnn.kernels.numba_cpu import conv, dense, pool

    cols = [case.arrays["cols"] for case in kernel_cases.cases("conv2d_backward")]
    assert min(c.size for c in cols) < jit.SERIAL_WORK <= max(c.size for c in cols)
    # a threaded case whose samples split into unequal groups for the weight gradient
    assert any(c.size >= jit.SERIAL_WORK and c.shape[0] % conv._groups(c.shape[0]) for c in cols)
    flops = [case.arrays["x"].shape[0] * case.arrays["x"].shape[1] * case.arrays["weight"].shape[0]
             for op in ("dense_forward", "dense_backward") for case in kernel_cases.cases(op)]
    assert min(flops) < dense.PARALLEL_FLOPS <= max(flops)  # one GEMM and split GEMMs
    tall = [case for case in kernel_cases.cases("dense_backward")
            if case.arrays["x"].shape[0] >= 2 * dense.DWEIGHT_ROWS
            and case.arrays["weight"].shape[0] < dense.PIECE_UNITS]
    assert {case.outputs["dx"] is None for case in tall} == {True, False}  # by rows, with and without dx
    from fastcnn.kernels.numba_cpu import losses
    rows = [case.arrays["logits"].shape[0] for case in kernel_cases.cases("softmax_cross_entropy")]
    assert min(rows) <= losses.LOSS_CHUNK < max(rows)  # one thread and chunks
    windows = {(case.scalars["kernel"], case.scalars["stride"])
               for case in kernel_cases.cases("maxpool2d_forward")}
    assert {pool.maxpool_forward_kernel(*window) for window in windows} == {
        pool._maxpool_forward, pool.TWO_BY_TWO}  # the other 2x2 kernel: the test below


@pytest.mark.parametrize("variant", ["_maxpool_forward_2x2", "_maxpool_forward_2x2_shifted"])
def test_each_isas_2x2_max_pool_matches_the_reference(monkeypatch, variant):
    """Both 2x2 kernels (AVX-512: stride-2 reads; AVX2: shifted views of the plane), whichever
    this host runs, on every 2x2 conformance case (odd sizes, ties) and with NaNs in it."""
    import dataclasses

    import kernel_cases
    from test_conformance import REFERENCE, backend_module, check_against_reference, run_case
    from fastcnn.kernels.numba_cpu import pool

    monkeypatch.setattr(pool, "TWO_BY_TWO", getattr(pool, variant))
    cases = [case for case in kernel_cases.cases("maxpool2d_forward")
             if (case.scalars["kernel"], case.scalars["stride"]) == (2, 2)]
    assert len(cases) >= 3
    for case in cases:
        check_against_reference("numba", case)
        x = case.arrays["x"].copy()
        flat = x.reshape(x.shape[0] * x.shape[1], -1)
        flat[0, :: max(1, flat.shape[1] // 3)] = np.nan
        flat[-1, -1] = np.nan  # the last pixel: outside every window of an odd-sized plane
        case = dataclasses.replace(case, arrays={**case.arrays, "x": x}, label=case.label + "-nan")
        expected = run_case(backend_module(REFERENCE), case)
        actual = run_case(numba_backend, case)
        for name in ("out", "argmax"):
            np.testing.assert_array_equal(actual[name], expected[name], err_msg=case.label)


def test_a_long_compile_is_explained_once_and_timed():
    """Issue 21: a first-ever run compiled for a minute without a word."""
    import io
    import time as clock
    import types as pytypes

    from numba.core import event

    from fastcnn.kernels.numba_cpu import compiling

    ours = pytypes.SimpleNamespace(py_func=pytypes.SimpleNamespace(__module__=compiling.__name__))
    theirs = pytypes.SimpleNamespace(py_func=pytypes.SimpleNamespace(__module__="somebody.else"))
    stream = io.StringIO()
    watch = compiling._Watch(stream, after=0.01)

    def compile_of(dispatcher, status):
        getattr(watch, "on_start" if status is event.EventStatus.START else "on_end")(
            event.Event("numba:compile", status, data={"dispatcher": dispatcher}))

    compile_of(theirs, event.EventStatus.START)
    clock.sleep(0.05)
    compile_of(theirs, event.EventStatus.END)
    assert watch.total() == 0 and stream.getvalue() == ""
    compile_of(ours, event.EventStatus.START)
    deadline = clock.monotonic() + 10
    while not stream.getvalue() and clock.monotonic() < deadline:
        clock.sleep(0.01)
    compile_of(ours, event.EventStatus.END)
    assert stream.getvalue() == compiling.notice() + "\n"
    assert "numba backend's kernels" in compiling.notice() and "once" in compiling.notice()
    spent = watch.total()
    assert spent >= 0.01
    compile_of(ours, event.EventStatus.START)
    compile_of(ours, event.EventStatus.END)
    clock.sleep(0.05)
    assert stream.getvalue().count("\n") == 1 and watch.total() >= spent  # told once


def test_the_cache_is_warm_only_for_these_sources_and_this_cpu(tmp_path):
    assert not jit.cache_is_warm(str(tmp_path))
    jit.mark_warm(str(tmp_path))
    assert jit.cache_is_warm(str(tmp_path)) == jit.CACHE
    (tmp_path / jit.WARM_MARK).write_text(jit._warm_key().replace(jit.SOURCES_DIGEST, "old"))
    assert not jit.cache_is_warm(str(tmp_path))
