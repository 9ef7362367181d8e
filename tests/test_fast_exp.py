"""The compiled backends' float32 exp (a polynomial that vectorises, not libm's expf):
within a few ulp of exp everywhere, and the edge cases exp has (NaN, inf, underflow)
seen through the kernels that use it: sigmoid, softmax and softmax cross-entropy."""

import numpy as np
import pytest

import fastcnn

SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30, 88.0, -88.0, 87.5, -87.5,
                    88.5, -88.5, 100.0, -100.0, 1e4, -1e4], dtype=np.float32)


def _grid():
    """Every kind of float32 exp sees in the kernels: a dense sweep of [-87.3, 88.7]."""
    return np.linspace(-87.3, 88.7, 200_001, dtype=np.float32)


def test_numba_exp_is_within_4_ulp_of_exp_and_keeps_nan_inf_and_underflow():
    from numba import njit

    from fastcnn.kernels.numba_cpu.scalars import fast_exp

    @njit
    def apply(values, out):
        for i in range(values.size):
            out[i] = fast_exp(values[i])

    x = _grid()
    out = np.empty_like(x)
    apply(x, out)
    exact = np.exp(x.astype(np.float64))
    ulp = np.spacing(exact.astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(out - exact) / ulp) <= 4
    special = np.empty_like(SPECIAL)
    apply(SPECIAL, special)
    with np.errstate(over="ignore"):
        expected = np.exp(SPECIAL)
    expected[np.abs(SPECIAL) < 88.72] = np.exp(SPECIAL[np.abs(SPECIAL) < 88.72].astype(np.float64))
    expected[SPECIAL < -87.34] = 0  # subnormal results are flushed to zero
    np.testing.assert_allclose(special, expected, rtol=4e-7, atol=0)
    assert np.isnan(special[0])
    float64 = np.linspace(-700, 700, 1001)
    out64 = np.empty_like(float64)
    apply(float64, out64)
    np.testing.assert_allclose(out64, np.exp(float64), rtol=1e-15)  # float64 keeps np.exp


@pytest.mark.parametrize("name", ["numba", "cython"])
def test_sigmoid_softmax_and_cross_entropy_hold_at_the_edges_of_exp(name):
    with fastcnn.use_backend(name):
        kernels = fastcnn.get_backend()
    x = np.concatenate([SPECIAL, _grid()[::97]]).astype(np.float32)
    out = np.empty_like(x)
    kernels.sigmoid_forward(x, out)
    x64 = x.astype(np.float64)
    with np.errstate(over="ignore"):
        expected = 1 / (1 + np.exp(-x64))
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-37)
    assert np.isnan(out[0]) and out[1] == 1 and out[2] == 0

    logits = np.array([[0, -100, -1e4, 5, np.inf * 0 + 3],
                       [-np.inf, 0, 1, 2, 3],
                       [88, -88, 0, 1, 87.5],
                       [np.nan, 0, 1, 2, 3]], dtype=np.float32)
    probs = np.empty_like(logits)
    kernels.softmax_forward(logits, probs)
    z = logits.astype(np.float64) - logits.astype(np.float64).max(axis=1, keepdims=True)
    reference = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs[:3], reference[:3], rtol=1e-6, atol=1e-37)
    assert np.isnan(probs[3]).all()

    labels = np.array([0, 1, 4], dtype=np.int32)
    dlogits = np.empty_like(logits[:3])
    stats = np.empty(2, dtype=np.float32)
    kernels.softmax_cross_entropy(np.ascontiguousarray(logits[:3]), labels, dlogits, stats)
    rows = np.arange(3)
    loss = -(z[rows, labels] - np.log(np.exp(z[:3]).sum(axis=1))).mean()
    np.testing.assert_allclose(stats[0], loss, rtol=1e-6)
    onehot = np.eye(5)[labels]
    np.testing.assert_allclose(dlogits, (reference[:3] - onehot) / 3, rtol=1e-6, atol=1e-30)
