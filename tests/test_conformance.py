"""Every backend computes what the NumPy reference computes, kernel by kernel.

Each usable backend other than ``numpy`` (``naive`` today; ``numba``,
``cython`` and ``cuda`` as soon as they can run here) runs every case of
``kernel_cases`` and must write what the reference writes: outputs allocated
with the backend's ``empty`` and poisoned first, so an element left unwritten
shows as NaN or garbage; in-place state compared after the last step; argmax
indices, dropout masks and correct counts bit for bit. The CUDA simulator
gets the tiny cases.
"""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest

import fastcnn
import kernel_cases
from fastcnn import functional
from conftest import backend_is_simulated, usable_backends
from fastcnn.kernels import contract
from kernel_cases import COMPUTE_OPERATIONS, MEMORY_OPERATIONS, parameters

REFERENCE = "numpy"
BACKENDS = [name for name in usable_backends() if name != REFERENCE]
TINY = {name: backend_is_simulated(name) for name in BACKENDS}

INT_POISON = -123456789
RELATIVE_ERROR = 1e-5   # ||actual - expected|| / ||expected|| in float32
RTOL, ATOL = 1e-4, 1e-5  # per element; ATOL is scaled by the largest expected magnitude


def backend_module(name):
    with fastcnn.use_backend(name):
        return fastcnn.get_backend()


def poisoned(module, shape, dtype):
    """A buffer from ``module.empty`` filled with NaN (floats) or garbage (ints)."""
    buffer = module.empty(shape, dtype)
    buffer[...] = np.nan if np.issubdtype(dtype, np.floating) else INT_POISON
    return buffer


def run_case(module, case):
    """Run ``case`` on backend ``module``; host copies of what it wrote or updated, by name."""
    arrays = {name: None if array is None else module.to_device(array.copy())
              for name, array in case.arrays.items()}
    outputs = {name: None if spec is None else poisoned(module, *spec)
               for name, spec in case.outputs.items()}
    kernel = getattr(module, case.op, None)
    if kernel is None and case.op in contract.COMPOSED:
        kernel = _composed(module.name, case.op)
    for step in case.steps:
        step = {name: module.to_device(value.copy()) if isinstance(value, np.ndarray) else value
                for name, value in step.items()}
        kernel(*case.arguments(step, arrays, outputs))
    if hasattr(module, "synchronize"):
        module.synchronize()
    results = {name: np.array(module.to_host(buffer)) for name, buffer in outputs.items()
               if buffer is not None and name not in case.workspace}
    results.update({name: np.array(module.to_host(arrays[name])) for name in case.updated})
    return results


def assert_close(actual, expected, where):
    """float32 agreement: relative error of the whole array and element-wise allclose."""
    unwritten = np.isnan(actual) & ~np.isnan(expected)
    assert not unwritten.any(), (
        f"{where}: {unwritten.sum()} of {actual.size} elements never written (still NaN), "
        f"first at {np.unravel_index(np.argmax(unwritten), actual.shape)}")
    error = np.linalg.norm((actual - expected).astype(np.float64))
    size = np.linalg.norm(expected.astype(np.float64))
    assert error <= RELATIVE_ERROR * size or error == 0, (
        f"{where}: relative error {error / max(size, 1e-30):.2e} > {RELATIVE_ERROR}")
    scale = max(1.0, float(np.abs(expected).max(initial=0)))
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL * scale, err_msg=where)


def assert_matches_reference(case, actual, expected, backend):
    for name, want in expected.items():
        got = actual[name]
        where = f"{backend}.{case.op} [{case.label}] {name}"
        assert got.shape == want.shape, f"{where}: shape {got.shape}, expected {want.shape}"
        assert got.dtype == want.dtype, f"{where}: dtype {got.dtype}, expected {want.dtype}"
        if name in case.exact or np.issubdtype(want.dtype, np.integer):
            np.testing.assert_array_equal(got, want, err_msg=where)
        elif name == "stats":  # [mean loss, number of correct rows]
            assert_close(got[:1], want[:1], where + " (loss)")
            assert got[1] == want[1], f"{where}: correct count {got[1]}, expected {want[1]}"
        else:
            assert_close(got, want, where)


def check_against_reference(backend, case):
    expected = run_case(backend_module(REFERENCE), case)
    actual = run_case(backend_module(backend), case)
    assert_matches_reference(case, actual, expected, backend)


def _composed(backend, op):
    """An optional operation the backend lacks, as fastcnn.functional runs it there: its
    reference composition (the reference's results come from this)."""
    def run(*args):
        with fastcnn.use_backend(backend):
            getattr(functional, op)(*args)
    return run


def _backend_cases(op):
    """Every backend for an operation of the contract: an optional one (contract.COMPOSED)
    runs the backend's kernel where it has one, else its composition on that backend."""
    backends = BACKENDS
    return [pytest.param(backend, case, id=f"{backend}-case{number}")
            for backend in backends
            for number, case in enumerate(kernel_cases.cases(op, tiny=TINY[backend]))]


def _conformance_test(op):
    @pytest.mark.parametrize("backend, case", _backend_cases(op))
    def test(backend, case):
        check_against_reference(backend, case)

    test.__name__ = test.__qualname__ = f"test_{op}_matches_reference"
    test.__doc__ = f"{op} writes what the NumPy reference writes, element for element."
    return test


# one test per kernel, named after it: test_conv2d_forward_matches_reference[numba-case3]
for _op in (COMPUTE_OPERATIONS + contract.FUSED + contract.FROM_INPUT + contract.LAYER_OPERATIONS
            + kernel_cases.SINGLE_TRAINING_OPERATIONS):
    globals()[f"test_{_op}_matches_reference"] = _conformance_test(_op)


# ---- the contract itself ---------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_defines_every_operation(backend):
    module = backend_module(backend)
    missing = [op for op in contract.OPERATIONS if not callable(getattr(module, op, None))]
    assert not missing, f"{backend} lacks {missing}"
    assert module.name == backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_operations_take_the_contract_parameters(backend):
    module = backend_module(backend)
    wrong = {}
    optional = [op for op in contract.COMPOSED if hasattr(module, op)]
    for op in list(contract.OPERATIONS) + optional:
        try:
            signature = inspect.signature(getattr(module, op))
        except (TypeError, ValueError):
            continue  # a compiled function that does not describe itself
        names = list(signature.parameters)
        if names != parameters(op):
            wrong[op] = names
    assert not wrong, f"{backend}: parameters differ from the contract: {wrong}"


def test_every_optional_operation_has_a_composition_and_an_entry_point():
    from fastcnn import compose

    for op in contract.COMPOSED:
        assert callable(getattr(compose, op, None)), f"fastcnn.compose lacks {op}"
        assert callable(getattr(functional, op, None)), f"fastcnn.functional lacks {op}"
        assert op not in contract.OPERATIONS, f"{op} is both mandatory and optional"


def test_every_operation_has_sample_cases():
    for op in COMPUTE_OPERATIONS + contract.LAYER_OPERATIONS + kernel_cases.SINGLE_TRAINING_OPERATIONS:
        assert kernel_cases.cases(op), op
        assert kernel_cases.cases(op, tiny=True), op


# ---- memory ----------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.float64])
def test_memory_round_trip_keeps_values_shape_and_dtype(backend, dtype):
    module = backend_module(backend)
    for shape in [(5,), (2, 3), (2, 3, 4, 5)]:
        host = (np.arange(np.prod(shape)) * 3 - 7).reshape(shape).astype(dtype)
        back = np.asarray(module.to_host(module.to_device(host)))
        assert back.dtype == host.dtype and back.shape == host.shape
        np.testing.assert_array_equal(back, host)


@pytest.mark.parametrize("backend", BACKENDS)
def test_memory_to_device_accepts_non_contiguous_arrays(backend):
    module = backend_module(backend)
    host = np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2]
    np.testing.assert_array_equal(np.asarray(module.to_host(module.to_device(host))), host)


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_and_zeros_allocate_the_requested_shape_and_dtype(backend):
    module = backend_module(backend)
    for allocate in (module.empty, module.zeros):
        assert np.asarray(module.to_host(allocate((2, 3)))).dtype == np.float32  # the default
        for dtype in (np.float32, np.int32):
            host = np.asarray(module.to_host(allocate((3, 1, 4), dtype)))
            assert host.shape == (3, 1, 4) and host.dtype == dtype
    assert not np.asarray(module.to_host(module.zeros((7, 5)))).any()


# ---- optional arguments ---------------------------------------------------------------------
OPTIONAL_OUTPUTS = {"conv2d_backward": ("dx", "dbias", "dcols"), "dense_backward": ("dx", "dbias")}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", sorted(OPTIONAL_OUTPUTS))
def test_backward_kernels_leave_none_outputs_alone(backend, op):
    """A first layer passes dx (and a layer without bias dbias) as None: the kernel
    skips that work and still computes dweight."""
    case = kernel_cases.cases(op, tiny=TINY[backend])[0]
    outputs = {name: None if name in OPTIONAL_OUTPUTS[op] else spec
               for name, spec in case.outputs.items()}
    check_against_reference(backend, dataclasses.replace(case, outputs=outputs,
                                                         label=case.label + "-all_optional_none"))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["conv2d_forward", "dense_forward"])
def test_forward_kernels_accept_no_bias(backend, op):
    case = kernel_cases.cases(op, tiny=TINY[backend])[0]
    check_against_reference(backend, dataclasses.replace(
        case, arrays={**case.arrays, "bias": None}, label=case.label + "-no_bias"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv_forward_without_cols_gives_the_same_output(backend):
    """Inference passes cols=None (no backward pass follows): the backend works in its
    own scratch (numba and cython: one (K, P) slice per thread) and out is unchanged,
    on every shape of the conformance suite (batch 1, odd sizes, strides, paddings)."""
    for case in kernel_cases.cases("conv2d_forward", tiny=TINY[backend]):
        outputs = {name: None if name == "cols" else spec for name, spec in case.outputs.items()}
        check_against_reference(backend, dataclasses.replace(case, outputs=outputs,
                                                             label=case.label + "-no_cols"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_maxpool_forward_picks_the_first_nan_like_numpy(backend):
    """A window with a NaN pools to NaN, its argmax at the first NaN (NumPy's argmax), on
    the general loop and on the 2x2 paths; NaN-free planes beside it are unaffected."""
    for case in kernel_cases.cases("maxpool2d_forward", tiny=TINY[backend]):
        x = case.arrays["x"].copy()
        flat = x.reshape(x.shape[0] * x.shape[1], -1)
        flat[0, :: max(1, flat.shape[1] // 3)] = np.nan  # a few NaNs in the first plane
        case = dataclasses.replace(case, arrays={**case.arrays, "x": x}, label=case.label + "-nan")
        expected = run_case(backend_module(REFERENCE), case)
        actual = run_case(backend_module(backend), case)
        where = f"{backend}.maxpool2d_forward [{case.label}]"
        np.testing.assert_array_equal(actual["argmax"], expected["argmax"], err_msg=where)
        np.testing.assert_array_equal(actual["out"], expected["out"], err_msg=where)  # NaN == NaN
