"""numba's direct convolution of few-channel inputs under a 2x2 max pool
(kernels/numba_cpu/direct.py): when it runs, that it computes what the im2col path
computes (the conformance suite holds that path to the NumPy reference), in training and
in inference, and that its weight gradient does not depend on the thread count."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import usable_backends
from helpers import assert_close_to_plain, conv_weights, micro_kernel_numba, with_and_without

pytestmark = pytest.mark.skipif("numba" not in usable_backends(), reason="numba unusable here")


@pytest.fixture(scope="module")
def nb():
    return micro_kernel_numba("the direct convolution")


def test_applies_to_shallow_columns_under_a_2x2_pool(nb, monkeypatch):
    from fastcnn.kernels.numba_cpu import direct
    x = np.zeros((2, 1, 28, 28), np.float32)
    pool = (2, 2, 14, 14)
    assert direct.applies(conv_weights(16, 1), x, 1, pool)
    assert direct.applies(conv_weights(16, 3), x[:, [0, 0, 0]], 1, pool)     # RGB
    assert not direct.applies(conv_weights(16, 4), np.zeros((2, 4, 28, 28), np.float32), 1,
                              pool)                                          # 36 taps
    assert not direct.applies(conv_weights(16, 1), x, 2, pool)                # stride 2
    assert not direct.applies(conv_weights(16, 1), x, 1, (3, 3, 9, 9))        # 3x3 windows
    assert not direct.applies(conv_weights(16, 1).astype(np.float64), x.astype(np.float64),
                              1, pool)
    weight = conv_weights(16, 1)
    assert direct.applies_backward(weight, x, 1, 1, (2, 16, 14, 14), None)
    assert not direct.applies_backward(weight, x, 1, 1, (2, 16, 14, 14), x)  # dx wanted
    assert not direct.applies_backward(weight, x, 1, 1, (2, 16, 9, 9), None)  # 3x3 windows
    # a 3x3 output pools to 1x1 under 2x2 and 3x3 windows alike: the pool is unknown
    assert not direct.applies_backward(weight, x[:, :, :3, :3], 1, 1, (2, 16, 1, 1), None)
    monkeypatch.setenv("FASTCNN_DIRECT", "0")
    assert not direct.applies(weight, x, 1, pool)


def _train_pass(nb, x, weight, bias, padding, activation, seed):
    """The training forward pass (pooled output and argmax only) and the backward pass
    from the input without dx: (pooled, argmax, dweight, dbias)."""
    batch, filters = x.shape[0], weight.shape[0]
    out_h = x.shape[2] + 2 * padding - weight.shape[2] + 1
    out_w = x.shape[3] + 2 * padding - weight.shape[3] + 1
    pooled = np.empty((batch, filters, out_h // 2, out_w // 2), np.float32)
    argmax = np.empty(pooled.shape, np.int32)
    nb.conv2d_maxpool_forward(x, weight, bias, 1, padding, activation, 2, None, None, pooled,
                              argmax)
    dpooled = np.random.default_rng(seed).standard_normal(pooled.shape, np.float32)
    dweight = np.empty_like(weight)
    dbias = None if bias is None else np.empty(filters, np.float32)
    nb.conv2d_maxpool_backward_from_input(dpooled, argmax, pooled, weight, x, 1, padding,
                                          activation, None, dweight, dbias)
    return (pooled, argmax, dweight) + (() if dbias is None else (dbias,))


@pytest.mark.parametrize("batch, channels, filters, height, width, kernel, padding, activation, "
                         "bias", [
                             (6, 1, 16, 28, 28, 3, 1, "relu", False),   # the speedrun's conv1
                             (5, 1, 32, 28, 28, 3, 0, "relu", True),    # keras_kfold_cnn's
                             (4, 3, 5, 13, 17, 3, 1, None, True),       # RGB, odd sizes
                             (3, 1, 7, 9, 40, 5, 2, "sigmoid", True),   # 5x5, two blocks a row
                             (5, 2, 3, 8, 8, 3, 1, "relu", False),
                             (2, 1, 4, 35, 35, 3, 1, "relu", True),     # odd output: a row cut
                             (1, 1, 8, 28, 28, 3, 1, "relu", True),     # batch 1
                         ])
def test_matches_the_im2col_path(nb, monkeypatch, batch, channels, filters, height, width,
                                 kernel, padding, activation, bias):
    rng = np.random.default_rng(height + width + channels)
    x = rng.standard_normal((batch, channels, height, width), np.float32)
    weight = conv_weights(filters, channels, kernel)
    b = rng.standard_normal(filters).astype(np.float32) if bias else None
    fast, plain = with_and_without(monkeypatch, "FASTCNN_DIRECT", lambda: _train_pass(
        nb, x, weight, b, padding, activation, height))
    np.testing.assert_array_equal(fast[1], plain[1])
    assert_close_to_plain(fast, plain)


def test_inference_pools_the_same_values(nb, monkeypatch):
    """Inference (no argmax wanted): the pooled values alone, as the im2col path gives them."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((9, 1, 28, 28), np.float32)
    weight = conv_weights(32, 1)
    bias = rng.standard_normal(32).astype(np.float32)

    def infer():
        pooled = np.empty((9, 32, 14, 14), np.float32)
        nb.conv2d_maxpool_forward(x, weight, bias, 1, 1, "relu", 2, None, None, pooled, None)
        return (pooled,)

    fast, plain = with_and_without(monkeypatch, "FASTCNN_DIRECT", infer)
    assert_close_to_plain(fast, plain)


def test_a_nan_gradient_reaches_its_filter_only(nb):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 1, 10, 10), np.float32)
    weight = conv_weights(4, 1)
    pooled = np.empty((2, 4, 5, 5), np.float32)
    argmax = np.empty(pooled.shape, np.int32)
    nb.conv2d_maxpool_forward(x, weight, None, 1, 1, None, 2, None, None, pooled, argmax)
    dpooled = np.zeros(pooled.shape, np.float32)
    dpooled[1, 2, 4, 4] = np.nan
    dweight, dbias = np.empty_like(weight), np.empty(4, np.float32)
    nb.conv2d_maxpool_backward_from_input(dpooled, argmax, pooled, weight, x, 1, 1, None, None,
                                          dweight, dbias)
    assert np.isnan(dweight[2]).all() and not np.isnan(dweight[[0, 1, 3]]).any()
    assert np.isnan(dbias[2]) and not np.isnan(dbias[[0, 1, 3]]).any()


def test_results_do_not_depend_on_the_thread_count(nb):
    import numba

    rng = np.random.default_rng(3)
    x = rng.standard_normal((37, 1, 28, 28), np.float32)  # uneven groups, past SERIAL_WORK
    weight = conv_weights(16, 1)
    bias = rng.standard_normal(16).astype(np.float32)
    results, before = [], nb.get_num_threads()
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            nb.set_num_threads(threads)
            results.append(_train_pass(nb, x, weight, bias, 1, "relu", 4))
    finally:
        nb.set_num_threads(before)
    for single, many in zip(results[0], results[1]):
        np.testing.assert_array_equal(single, many)
