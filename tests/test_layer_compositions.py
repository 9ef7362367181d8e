"""The reference compositions of the layers' optional operations (fastcnn.compose, built
from the contract's primitives) write what the NumPy reference writes, on the numpy
backend and on cuda (tiny cases under the simulator): a backend without a compiled
kernel for Tanh, LeakyReLU, ELU, GELU, global or padded pooling or Dropout2d still runs
them, on its own device."""

from __future__ import annotations

import functools
import types

import pytest

import kernel_cases
from conftest import usable_backends
from fastcnn import compose
from fastcnn.kernels import contract
from test_conformance import (REFERENCE, TINY, assert_matches_reference, backend_module,
                              run_case)

BACKENDS = [name for name in ("numpy", "cuda") if name in usable_backends()]


def without_kernel(module, op):
    """``module`` with ``op`` replaced by its composition over the module's own primitives."""
    shim = types.SimpleNamespace(**{name: getattr(module, name) for name in dir(module)
                                    if not name.startswith("__")})
    setattr(shim, op, functools.partial(getattr(compose, op), module))
    return shim


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", contract.LAYER_OPERATIONS)
def test_composition_matches_reference(backend, op):
    module = backend_module(backend)
    tiny = TINY.get(backend, False)
    for case in kernel_cases.cases(op, tiny=tiny):
        expected = run_case(backend_module(REFERENCE), case)
        actual = run_case(without_kernel(module, op), case)
        assert_matches_reference(case, actual, expected, f"{backend}-composed")
