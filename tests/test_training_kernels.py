"""The training operations over lists of arrays (Nesterov steps, sums of squares, scaling,
clipping; contract.TRAINING_OPERATIONS) on every backend, through fastcnn.functional, against
the NumPy reference; cuda and the backends without a kernel go through the reference on the
host views (copied back on a device)."""

from __future__ import annotations

import numpy as np
import pytest

import fastcnn
from conftest import usable_backends
from fastcnn import functional
from test_conformance import assert_close

# one element, odd sizes and one array cut into several claimed chunks
SHAPES = ((1,), (7,), (4, 3, 3, 3), (301, 123))


def _arrays(seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(shape) * scale).astype(np.float32) for shape in SHAPES]


def _on(backend, op, lists, *scalars, out_shape=None):
    """``op`` on ``backend``: host copies of every list's arrays afterwards (and of out)."""
    with fastcnn.use_backend(backend):
        module = fastcnn.get_backend()
        lists = [[module.to_device(a.copy()) for a in arrays] for arrays in lists]
        out = None if out_shape is None else module.zeros(out_shape)
        getattr(functional, op)(*lists, *scalars, *(() if out is None else (out,)))
        result = [np.array(module.to_host(a)) for arrays in lists for a in arrays]
        return result + ([] if out is None else [np.array(module.to_host(out))])


CASES = {
    "nesterov_update_many": (lambda: [_arrays(1), _arrays(2), _arrays(3, 0.1)], (0.05, 0.9)),
    "scale_many": (lambda: [_arrays(4)], (0.3,)),
    "clip_many": (lambda: [_arrays(5, 2.0)], (-0.5, 1.5)),
}


@pytest.mark.parametrize("backend", usable_backends())
@pytest.mark.parametrize("op", sorted(CASES))
def test_in_place_list_operations_match_the_reference(backend, op):
    make, scalars = CASES[op]
    actual = _on(backend, op, make(), *scalars)
    expected = _on("numpy", op, make(), *scalars)
    for i, (got, want) in enumerate(zip(actual, expected)):
        assert_close(got, want, f"{backend}.{op} array {i}")


@pytest.mark.parametrize("backend", usable_backends())
def test_sum_of_squares_many_matches_float64_sums(backend):
    arrays = _arrays(6)
    got = _on(backend, "sum_of_squares_many", [arrays], out_shape=(len(arrays),))[-1]
    want = np.array([np.sum(a.astype(np.float64) ** 2) for a in arrays], np.float32)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_clip_many_leaves_nan_as_nan_and_refuses_an_empty_range():
    with fastcnn.use_backend("numba"):
        values = np.array([np.nan, -3.0, 3.0, 0.25], np.float32)
        functional.clip_many([values], -1.0, 1.0)
        np.testing.assert_array_equal(values, [np.nan, -1.0, 1.0, 0.25])
        with pytest.raises(functional.KernelArgumentError, match="above high"):
            functional.clip_many([values], 1.0, -1.0)
