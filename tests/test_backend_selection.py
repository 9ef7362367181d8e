"""Choosing the backend: set_backend, use_backend, FASTCNN_BACKEND and auto say what they
picked, and a named backend never silently falls back to another."""

from __future__ import annotations

import pytest

import fastcnn
from conftest import HAS_GPU, backend_is_simulated, usable_backends
from fastcnn import BackendError
from fastcnn.backend import AUTO_ORDER
from helpers import restore_backend, run_python  # noqa: F401

pytestmark = pytest.mark.usefixtures("restore_backend")

CUDA_SIMULATED = "cuda" in usable_backends() and backend_is_simulated("cuda")
REPORT = "import fastcnn; print(fastcnn.backend_name(), fastcnn.auto_selected())"


def expected_auto_pick() -> str:
    usable = usable_backends()
    return next(name for name in AUTO_ORDER if name in usable and not backend_is_simulated(name))


def test_set_backend_by_name_selects_it_and_reports_it_was_named():
    assert fastcnn.set_backend(" NumPy ") == "numpy"
    assert fastcnn.backend_name() == "numpy" and not fastcnn.auto_selected()
    assert fastcnn.get_backend().name == "numpy"
    assert "Backend: numpy" in fastcnn.zoo.pytorch_cnn(seed=0).summary(print_fn=None)


def test_auto_picks_the_fastest_usable_backend_and_says_so():
    picked = fastcnn.set_backend("auto")
    assert picked == expected_auto_pick() == fastcnn.backend_name()
    assert fastcnn.auto_selected()


@pytest.mark.skipif(not CUDA_SIMULATED, reason="needs the CUDA backend running under the simulator")
def test_auto_never_picks_the_cuda_simulator_but_naming_cuda_uses_it():
    assert fastcnn.set_backend("auto") != "cuda"
    assert fastcnn.set_backend("cuda") == "cuda" and not fastcnn.auto_selected()


def test_use_backend_applies_to_its_block_only_and_nests():
    fastcnn.set_backend("numpy")
    with fastcnn.use_backend("naive") as outer:
        assert outer == fastcnn.backend_name() == "naive"
        with fastcnn.use_backend("auto") as inner:
            assert inner == fastcnn.backend_name() == expected_auto_pick()
        assert fastcnn.backend_name() == "naive"
    assert fastcnn.backend_name() == "numpy"


def test_use_backend_restores_the_previous_backend_after_an_error():
    fastcnn.set_backend("numpy")
    with pytest.raises(ZeroDivisionError):
        with fastcnn.use_backend("naive"):
            1 / 0
    assert fastcnn.backend_name() == "numpy"


def test_a_refused_backend_name_leaves_the_active_backend_unchanged():
    fastcnn.set_backend("naive")
    with pytest.raises(BackendError):
        fastcnn.set_backend("numpy2")
    assert fastcnn.backend_name() == "naive" and not fastcnn.auto_selected()


@pytest.mark.parametrize("value, expected", [("numpy", "numpy False"), ("NAIVE", "naive False")])
def test_fastcnn_backend_variable_selects_a_named_backend(value, expected):
    result = run_python(REPORT, env={"FASTCNN_BACKEND": value})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == expected.split()


@pytest.mark.parametrize("env", [{"FASTCNN_BACKEND": "auto"}, {}], ids=["auto", "unset"])
def test_fastcnn_backend_auto_or_unset_picks_like_auto_and_says_so(env):
    result = run_python(REPORT, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [expected_auto_pick(), "True"]


@pytest.mark.skipif(HAS_GPU, reason="this machine has a CUDA GPU")
def test_a_named_backend_that_cannot_run_fails_instead_of_falling_back():
    result = run_python("""
        import fastcnn
        try:
            fastcnn.zoo.pytorch_cnn()
            print("built on", fastcnn.backend_name())
        except fastcnn.BackendError as exc:
            print("refused:", exc)
        """, env={"FASTCNN_BACKEND": "cuda"}, unset=("NUMBA_ENABLE_CUDASIM",))
    assert result.returncode == 0, result.stderr
    assert "built on" not in result.stdout
    assert "refused: backend 'cuda' cannot run on this machine" in result.stdout


def test_every_usable_backend_can_be_named():
    for name in usable_backends():
        with fastcnn.use_backend(name) as picked:
            assert picked == fastcnn.get_backend().name == name


def test_set_num_threads_refuses_less_than_one():
    with pytest.raises(ValueError, match="n >= 1"):
        fastcnn.set_num_threads(0)
    fastcnn.set_num_threads(2)


def test_compiled_cpu_backends_run_blas_on_one_thread_and_give_it_back():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import fastcnn

    def blas_threads():
        return {info["num_threads"] for info in threadpoolctl.threadpool_info()
                if info["user_api"] == "blas"}

    original = fastcnn.backend_name()
    with fastcnn.use_backend("numpy"):
        free = blas_threads()
    for name in ("numba", "cython"):
        if name not in [s.name for s in fastcnn.available_backends() if s.available]:
            continue
        with fastcnn.use_backend(name):
            assert blas_threads() == {1}
        with fastcnn.use_backend("numpy"):
            assert blas_threads() == free
    assert fastcnn.backend_name() == original


def test_an_unknown_fastcnn_backend_variable_does_not_break_import_and_fails_at_first_use():
    result = run_python("""
        import fastcnn
        print("imported")
        try:
            fastcnn.zoo.pytorch_cnn()
        except fastcnn.BackendError as exc:
            print("refused:", exc)
        """, env={"FASTCNN_BACKEND": "bogus"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "imported"
    assert lines[1].startswith("refused: FASTCNN_BACKEND='bogus' is not a backend")
    assert "auto, naive, numpy, numba, cython, cuda" in lines[1] and "--backend" in lines[1]


def test_set_backend_overrides_an_unknown_fastcnn_backend_variable():
    result = run_python(f"import fastcnn; fastcnn.set_backend('numpy'); fastcnn.zoo.pytorch_cnn(); {REPORT}",
                        env={"FASTCNN_BACKEND": "bogus"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["numpy", "False"]


@pytest.mark.parametrize("value", [None, 3])
def test_set_backend_with_something_other_than_a_name_says_what_it_takes(value):
    with pytest.raises(BackendError, match="a backend is named by a string, one of: auto, naive"):
        fastcnn.set_backend(value)


# ---- OpenMP waiting ----------------------------------------------------------------------------
def _openmp_environment(**settings):
    """GOMP_SPINCOUNT and KMP_BLOCKTIME after `import fastcnn` in a fresh interpreter whose
    environment has no OpenMP wait settings but ``settings``."""
    import json

    result = run_python("""
        import json, os, fastcnn
        print(json.dumps([os.environ.get("GOMP_SPINCOUNT"), os.environ.get("KMP_BLOCKTIME")]))
    """, env=settings, unset=("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME"))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_makes_idle_openmp_threads_spin_briefly_then_sleep():
    assert _openmp_environment() == ["300", "0"]


def test_import_leaves_the_users_openmp_wait_settings_alone():
    assert _openmp_environment(OMP_WAIT_POLICY="ACTIVE") == [None, None]
    assert _openmp_environment(GOMP_SPINCOUNT="5000") == ["5000", None]
    assert _openmp_environment(KMP_BLOCKTIME="200") == [None, "200"]


@pytest.fixture
def cold_numba(monkeypatch):
    """numba usable but its kernel cache cold; the background fill recorded, not started."""
    pytest.importorskip("numba")
    from fastcnn import backend, warmup
    from fastcnn.kernels import numba_backend

    started = []
    monkeypatch.setenv(warmup.SETTING, "on")
    monkeypatch.setattr(numba_backend, "cold", lambda: "numba's kernels are not compiled yet")
    monkeypatch.setattr(warmup, "start_background", lambda: started.append(1) or 4242)
    monkeypatch.setitem(backend._global, "note", None)
    return started


@pytest.mark.skipif("cython" not in usable_backends() or "numba" not in usable_backends()
                    or "cuda" in usable_backends() and not CUDA_SIMULATED,
                    reason="needs numba and cython, and no GPU")
def test_auto_runs_cython_while_numba_compiles_in_the_background_and_says_so(cold_numba, capsys):
    """Issue 21: a first-ever run compiled numba's kernels for a minute, silently."""
    assert fastcnn.set_backend("auto") == "cython" and fastcnn.auto_selected()
    note = capsys.readouterr().err.strip()
    assert note == fastcnn.backend.auto_note()
    assert "auto runs the cython backend: numba's kernels are not compiled yet" in note
    assert "pid 4242, nice 19" in note and "later runs use numba" in note
    fastcnn.set_backend("auto")
    assert cold_numba == [1] and capsys.readouterr().err == ""  # started and said once


def test_auto_compiles_numba_when_deferring_is_off(cold_numba, monkeypatch):
    monkeypatch.setenv("FASTCNN_WARMUP", "off")
    assert fastcnn.set_backend("auto") == expected_auto_pick()
    assert cold_numba == [] and fastcnn.backend.auto_note() is None


def test_a_named_backend_is_never_deferred(cold_numba):
    assert fastcnn.set_backend("numba") == "numba"
    assert cold_numba == []
