"""The optimizer steps over every parameter at once (contract.MULTI_TENSOR): on each
backend, what the reference's one-parameter operations give, and what the optimizers
reach through fastcnn.functional whether the backend has them or not."""

from __future__ import annotations

import numpy as np
import pytest

import fastcnn
from conftest import backend_is_simulated, usable_backends
from fastcnn import functional
from fastcnn.kernels import contract
from helpers import compiled_backends
from test_conformance import assert_close

# odd sizes, one element, and one parameter split into several claimed chunks
# (left out under the CUDA simulator, where it takes a minute)
SHAPES = ((7,), (4, 3, 3, 3), (1,), (10, 20), (301, 123))


def _problem(seed, state_slots, warm, backend):
    shapes = SHAPES[:-1] if backend_is_simulated(backend) else SHAPES
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    grads = [[rng.standard_normal(shape).astype(np.float32) for shape in shapes]
             for _ in range(3)]
    states = [[np.abs(rng.standard_normal(shape)).astype(np.float32) * 0.1 if warm
               else np.zeros(shape, np.float32) for shape in shapes] for _ in range(state_slots)]
    return params, grads, states


def _run(backend, op, params, grads, states, scalars, first_step=None):
    """Three steps of ``op`` (a MULTI_TENSOR name) on ``backend``, through functional;
    host copies of the parameters and states after them."""
    with fastcnn.use_backend(backend):
        module = fastcnn.get_backend()
        params = [module.to_device(p.copy()) for p in params]
        states = [[module.to_device(s.copy()) for s in slot] for slot in states]
        for number, step_grads in enumerate(grads):
            step_grads = [module.to_device(g.copy()) for g in step_grads]
            extra = () if first_step is None else (first_step + number,)
            getattr(functional, op)(params, step_grads, *states, *scalars, *extra)
        return [np.array(module.to_host(a)) for a in params + [s for slot in states for s in slot]]


def _reference(op, params, grads, states, scalars, first_step=None):
    """The same steps on the reference, one parameter per call of the one-parameter op."""
    params = [p.copy() for p in params]
    states = [[s.copy() for s in slot] for slot in states]
    with fastcnn.use_backend("numpy"):
        for number, step_grads in enumerate(grads):
            extra = () if first_step is None else (first_step + number,)
            for i, grad in enumerate(step_grads):
                getattr(functional, op[:-len("_many")])(params[i], grad.copy(),
                                                        *(slot[i] for slot in states),
                                                        *scalars, *extra)
    return params + [s for slot in states for s in slot]


CASES = {
    "sgd_update_many": [(1, (0.1, 0.0), None), (1, (0.01, 0.9), None)],
    "adam_update_many": [(2, (1e-3, 0.9, 0.999, 1e-8), 1), (2, (0.1, 0.5, 0.9, 1e-6), 10)],
}


@pytest.mark.parametrize("backend", usable_backends())
@pytest.mark.parametrize("op, slots, scalars, first_step",
                         [(op, slots, scalars, first) for op, cases in CASES.items()
                          for slots, scalars, first in cases])
def test_multi_tensor_steps_match_the_reference(backend, op, slots, scalars, first_step):
    params, grads, states = _problem(5, slots, first_step not in (None, 1), backend)
    actual = _run(backend, op, params, grads, states, scalars, first_step)
    expected = _reference(op, params, grads, states, scalars, first_step)
    for i, (got, want) in enumerate(zip(actual, expected)):
        assert got.shape == want.shape
        assert_close(got, want, f"{backend}.{op} array {i}")


def test_every_multi_tensor_op_has_cases():
    assert sorted(CASES) == sorted(contract.MULTI_TENSOR)


@pytest.mark.parametrize("backend", [b for b in compiled_backends() if b in ("numba", "cython")])
def test_the_compiled_cpu_backends_run_them_in_one_call(backend):
    with fastcnn.use_backend(backend):
        module = fastcnn.get_backend()
        assert all(callable(getattr(module, op, None)) for op in contract.MULTI_TENSOR)


@pytest.mark.parametrize("backend", usable_backends())
def test_the_one_call_is_what_one_call_per_parameter_gives(backend):
    """Bit for bit: the same float32 arithmetic per element, whichever way it is split."""
    params, grads, (m, v) = _problem(6, 2, True, backend)
    with fastcnn.use_backend(backend):
        module = fastcnn.get_backend()
        dev = lambda arrays: [module.to_device(a.copy()) for a in arrays]  # noqa: E731
        many = dev(params), dev(m), dev(v)
        one = dev(params), dev(m), dev(v)
        for step, step_grads in enumerate(grads, start=3):
            functional.adam_update_many(many[0], dev(step_grads), many[1], many[2], 1e-2, 0.9,
                                        0.999, 1e-8, step)
            for i, grad in enumerate(dev(step_grads)):
                functional.adam_update(one[0][i], grad, one[1][i], one[2][i], 1e-2, 0.9, 0.999,
                                       1e-8, step)
        for a, b in zip(sum(many, []), sum(one, [])):
            np.testing.assert_array_equal(np.array(module.to_host(a)), np.array(module.to_host(b)))


def test_mismatched_lists_are_refused():
    a, b = np.zeros(3, np.float32), np.zeros(4, np.float32)
    with fastcnn.use_backend("numpy"):
        with pytest.raises(functional.KernelArgumentError, match="2 params but 1 grads"):
            functional.sgd_update_many([a, a], [a], [a, a], 0.1, 0.0)
        with pytest.raises(functional.KernelArgumentError, match=r"grads\[1\]"):
            functional.sgd_update_many([a, a], [a, b], [a, a], 0.1, 0.0)
        with pytest.raises(functional.KernelArgumentError, match="step must be >= 1"):
            functional.adam_update_many([a], [a], [a], [a], 0.1, 0.9, 0.999, 1e-8, 0)
