"""numba's backward pass of a convolution under a max pool from the pool's sparse gradient
(kernels/numba_cpu/sparse_pool.py): when it runs, that it computes what the dense pass
computes (the conformance suite holds both to the NumPy reference), and that its sums do
not depend on the thread count."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import usable_backends
from helpers import assert_close_to_plain, conv_weights, micro_kernel_numba, with_and_without

pytestmark = pytest.mark.skipif("numba" not in usable_backends(), reason="numba unusable here")


@pytest.fixture(scope="module")
def nb():
    return micro_kernel_numba("the sparse pool gradient")


def test_applies_where_the_input_channels_fill_whole_vectors(nb, monkeypatch):
    from fastcnn.kernels.numba_cpu import gemm, sparse_pool
    lanes = gemm.LANES
    x = np.zeros((2, 2 * lanes, 5, 5), np.float32)
    assert sparse_pool.applies(conv_weights(8, 2 * lanes), x, np.float32)
    assert not sparse_pool.applies(conv_weights(8, 1), x[:, :1], np.float32)     # a first layer
    assert not sparse_pool.applies(conv_weights(8, lanes + 1), x[:, :lanes + 1], np.float32)
    assert not sparse_pool.applies(conv_weights(8, 2 * lanes).astype(np.float64),
                                   x.astype(np.float64), np.float64)
    monkeypatch.setenv("FASTCNN_SPARSE", "0")
    assert not sparse_pool.applies(conv_weights(8, 2 * lanes), x, np.float32)


def _train_pass(nb, x, weight, bias, stride, padding, activation, pool, dpooled_seed,
                input_gradient=True):
    """The training forward pass (pooled output and argmax, no full-resolution output) and
    the backward pass from the pooled output: (pooled, argmax, dx, dweight, dbias)."""
    batch, filters = x.shape[0], weight.shape[0]
    out_h = (x.shape[2] + 2 * padding - weight.shape[2]) // stride + 1
    out_w = (x.shape[3] + 2 * padding - weight.shape[3]) // stride + 1
    pooled = np.empty((batch, filters, out_h // pool, out_w // pool), np.float32)
    argmax = np.empty(pooled.shape, np.int32)
    nb.conv2d_maxpool_forward(x, weight, bias, stride, padding, activation, pool, None, None,
                              pooled, argmax)
    dpooled = np.random.default_rng(dpooled_seed).standard_normal(pooled.shape, np.float32)
    dx = np.empty_like(x) if input_gradient else None
    dweight, dbias = np.empty_like(weight), np.empty(filters, np.float32)
    nb.conv2d_maxpool_backward_from_input(dpooled, argmax, pooled, weight, x, stride, padding,
                                          activation, dx, dweight, dbias)
    return pooled, argmax, dx, dweight, dbias


@pytest.mark.parametrize("channels, filters, size, kernel, stride, padding, activation, pool", [
    (16, 32, 14, 3, 1, 1, "relu", 2),       # mnist_speedrun's conv2
    (32, 64, 7, 3, 1, 1, "relu", 2),        # its conv3: the pool drops the last row and column
    (32, 64, 14, 3, 1, 1, "relu", 2),       # pytorch_cnn's conv2
    (16, 9, 11, 3, 2, 0, "sigmoid", 2),     # stride 2, no padding, odd filters
    (48, 8, 9, 5, 1, 2, None, 3),           # 5x5 filters, three blocks a tap, 3x3 windows
    (16, 12, 6, 1, 1, 0, "relu", 2),        # 1x1 filters: one block a tap
])
def test_matches_the_dense_backward_pass(nb, monkeypatch, channels, filters, size, kernel,
                                         stride, padding, activation, pool):
    rng = np.random.default_rng(channels + size)
    x = rng.standard_normal((5, channels, size, size), np.float32)
    weight = conv_weights(filters, channels, kernel)
    bias = rng.standard_normal(filters).astype(np.float32)
    fast, plain = with_and_without(monkeypatch, "FASTCNN_SPARSE", lambda: _train_pass(
        nb, x, weight, bias, stride, padding, activation, pool, size))
    np.testing.assert_array_equal(fast[1], plain[1])
    assert_close_to_plain(fast, plain)


def test_a_single_sample(nb, monkeypatch):
    """Batch 1: one group of one sample, on one thread."""
    x = np.random.default_rng(11).standard_normal((1, 32, 9, 9), np.float32)
    weight = conv_weights(16, 32)
    fast, plain = with_and_without(monkeypatch, "FASTCNN_SPARSE", lambda: _train_pass(
        nb, x, weight, None, 1, 1, "relu", 2, 12))
    assert_close_to_plain(fast, plain)


def test_without_an_input_gradient(nb, monkeypatch):
    """A first layer (no dx): only the weight and bias gradients."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 16, 8, 8), np.float32)
    weight = conv_weights(8, 16)
    fast, plain = with_and_without(monkeypatch, "FASTCNN_SPARSE", lambda: _train_pass(
        nb, x, weight, None, 1, 1, "relu", 2, 6, input_gradient=False))
    assert fast[2] is None
    assert_close_to_plain(fast[3:], plain[3:])


def test_a_nan_gradient_reaches_the_weights_and_the_input(nb):
    """A NaN in the pool's gradient is not a zero to skip: it spreads as in the dense pass."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 16, 6, 6), np.float32)
    weight = conv_weights(4, 16)
    pooled = np.empty((2, 4, 3, 3), np.float32)
    argmax = np.empty(pooled.shape, np.int32)
    nb.conv2d_maxpool_forward(x, weight, None, 1, 1, None, 2, None, None, pooled, argmax)
    dpooled = np.zeros(pooled.shape, np.float32)
    dpooled[1, 2, 1, 1] = np.nan
    dx, dweight, dbias = np.empty_like(x), np.empty_like(weight), np.empty(4, np.float32)
    nb.conv2d_maxpool_backward_from_input(dpooled, argmax, pooled, weight, x, 1, 1, None, dx,
                                          dweight, dbias)
    assert np.isnan(dweight[2]).all() and not np.isnan(dweight[[0, 1, 3]]).any()
    assert np.isnan(dx[1]).any() and not np.isnan(dx[0]).any()
    assert np.isnan(dbias[2]) and not np.isnan(dbias[[0, 1, 3]]).any()


def test_results_do_not_depend_on_the_thread_count(nb):
    import numba

    rng = np.random.default_rng(3)
    x = rng.standard_normal((37, 32, 7, 7), np.float32)  # uneven groups, past SERIAL_WORK
    weight = conv_weights(64, 32)
    results, before = [], nb.get_num_threads()
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            nb.set_num_threads(threads)
            results.append(_train_pass(nb, x, weight, None, 1, 1, "relu", 2, 4))
    finally:
        nb.set_num_threads(before)
    for single, many in zip(results[0], results[1]):
        np.testing.assert_array_equal(single, many)
