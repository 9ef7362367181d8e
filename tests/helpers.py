"""Helpers shared by the model-level tests: small learnable datasets, float64 finite
differences through layer objects, weight comparisons, backend lists and subprocesses."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastcnn
from conftest import REPO, backend_is_simulated, usable_backends
from fastcnn.parameter import Workspace

# ---- data ---------------------------------------------------------------------------------


def toy_images(n: int, seed: int = 0, classes: int = 4, size: int = 8, channels: int = 1):
    """A small learnable image set: class k brightens horizontal band k, plus noise.

    Returns x float32 (n, channels, size, size) and y int64 (n,).
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=n)
    x = rng.normal(0.0, 0.3, size=(n, channels, size, size)).astype(np.float32)
    band = size // classes
    for k in range(classes):
        x[y == k, :, k * band:(k + 1) * band, :] += 1.0
    return x, y


def mnist_like(n: int, seed: int = 0):
    """n random uint8 28x28 images and labels 0-9, for shape-level tests of the zoo."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), rng.integers(0, 10, size=n)


def small_cnn(seed: int = 0, classes: int = 4, size: int = 8, channels: int = 1, dropout: float = 0.0,
              softmax: bool = False):
    """Conv-ReLU-MaxPool-Flatten-Dense-ReLU[-Dropout]-Dense[-Softmax] for toy_images."""
    half = size // 2
    layers = [fastcnn.Conv2D(channels, 4, 3, padding=1), fastcnn.ReLU(), fastcnn.MaxPool2D(2),
              fastcnn.Flatten(), fastcnn.Dense(4 * half * half, 16), fastcnn.ReLU()]
    if dropout:
        layers.append(fastcnn.Dropout(dropout))
    layers.append(fastcnn.Dense(16, classes))
    if softmax:
        layers.append(fastcnn.Softmax())
    return fastcnn.Sequential(layers, seed=seed, input_shape=(channels, size, size))


def trained(model, x, y, epochs: int = 1, batch_size: int = 16, optimizer=None, **fit_args):
    """Compile (Adam 3e-2 unless given) and fit quietly; returns the model."""
    model.compile(optimizer or fastcnn.optim.Adam(lr=3e-2), "cross_entropy")
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, **fit_args)
    return model


# ---- comparisons ------------------------------------------------------------------------------


def relative_error(actual, expected) -> float:
    """max |actual - expected| / max |expected| (absolute when expected is all zeros)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"shapes differ: {actual.shape} vs {expected.shape}"
    scale = np.abs(expected).max(initial=0.0)
    return float(np.abs(actual - expected).max(initial=0.0) / (scale if scale > 0 else 1.0))


def assert_relative_close(actual, expected, tol: float, what: str = "") -> None:
    error = relative_error(actual, expected)
    assert error <= tol, f"{what}: relative error {error:.3g} exceeds {tol:g}"


def assert_same_weights(model_a, model_b) -> None:
    """Bit-identical parameters, by name."""
    a, b = model_a.state_dict(), model_b.state_dict()
    assert a.keys() == b.keys()
    for name in a:
        assert np.array_equal(a[name], b[name]), f"{name} differs"


# ---- float64 finite differences ------------------------------------------------------------


@contextlib.contextmanager
def float64_numpy_backend():
    """The numpy backend with every float buffer a layer or loss allocates in float64,
    so finite differences through the real layer objects are precise (fastcnn.functional
    then checks buffers against float64 instead of float32)."""
    from fastcnn import functional

    original, original_float = Workspace.get, functional._FLOAT

    def get(self, role, shape, dtype=np.float32):
        return original(self, role, shape, np.float64 if np.dtype(dtype) == np.float32 else dtype)

    Workspace.get = get
    functional._FLOAT = np.dtype(np.float64)
    try:
        with fastcnn.use_backend("numpy"):
            yield
    finally:
        Workspace.get, functional._FLOAT = original, original_float


def to_float64(params) -> None:
    """Turn Parameters into float64 weights with float64 gradient buffers."""
    for param in params:
        param.data = np.array(param.data, dtype=np.float64)
        param.grad = np.zeros(param.shape, dtype=np.float64)


def numerical_gradient(f, array: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar f() with respect to every element of array (in place)."""
    grad = np.zeros(array.shape, dtype=np.float64)
    flat, flat_grad = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + eps
        upper = f()
        flat[i] = saved - eps
        lower = f()
        flat[i] = saved
        flat_grad[i] = (upper - lower) / (2 * eps)
    return grad


# ---- backends -------------------------------------------------------------------------------


@pytest.fixture
def numpy_backend():
    """Run the test on the numpy reference backend."""
    with fastcnn.use_backend("numpy"):
        yield "numpy"


@pytest.fixture
def restore_backend():
    """Put the globally selected backend back after a test that calls set_backend."""
    name, auto = fastcnn.backend_name(), fastcnn.auto_selected()
    yield
    fastcnn.set_backend("auto" if auto else name)


def compiled_backends() -> list[str]:
    """Usable backends other than the numpy reference, the naive one and the CUDA simulator."""
    return [name for name in usable_backends()
            if name not in ("naive", "numpy") and not backend_is_simulated(name)]


def run_python(code: str, env: dict | None = None, unset=()) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter from the tests folder (FASTCNN_BACKEND unset unless given)."""
    environment = {key: value for key, value in os.environ.items()
                   if key not in set(unset) | {"FASTCNN_BACKEND"}}
    # the checkout under test comes first, whichever fastcnn is installed
    environment["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([environment["PYTHONPATH"]]
                                                               if environment.get("PYTHONPATH") else []))
    environment.update(env or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO / "tests",
                          env=environment, capture_output=True, text=True, timeout=300)


def micro_kernel_numba(path: str):
    """fastcnn.kernels.numba_backend, or a skip where numba has no AVX2/AVX-512 micro-kernel
    (the float32 ``path``, Winograd or the implicit GEMM, needs it)."""
    from fastcnn.kernels import numba_backend
    from fastcnn.kernels.numba_cpu import gemm
    if not gemm.ENABLED:
        pytest.skip(f"no AVX2/AVX-512 micro-kernel on this CPU: {path} needs it")
    return numba_backend


def conv_weights(filters, channels, kernel=3, seed=0):
    """Small float32 filters (O, C, K, K) for the convolution tests."""
    return np.random.default_rng(seed).standard_normal((filters, channels, kernel, kernel),
                                                       np.float32) * 0.2


def with_and_without(monkeypatch, variable: str, run):
    """(run() as configured, run() with ``variable`` = 0): a fast path and the one it replaces."""
    monkeypatch.delenv(variable, raising=False)
    fast = run()
    monkeypatch.setenv(variable, "0")
    plain = run()
    monkeypatch.delenv(variable)
    return fast, plain


def assert_close_to_plain(fast, plain):
    """Each array of ``fast`` within float32 rounding of its twin in ``plain``."""
    for a, b in zip(fast, plain):
        scale = max(1.0, float(np.abs(b).max()))
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5 * scale)
