"""numba's implicit-GEMM convolution (stride 1, the padded input read in place): when it
runs, and that it computes what im2col and the GEMM compute (the conformance suite holds
both to the NumPy reference)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import usable_backends
from helpers import assert_close_to_plain, conv_weights, micro_kernel_numba, with_and_without

pytestmark = pytest.mark.skipif("numba" not in usable_backends(), reason="numba unusable here")


@pytest.fixture(scope="module")
def numba_kernels():
    from fastcnn.kernels.numba_cpu import conv
    return micro_kernel_numba("the implicit GEMM"), conv


_weights = conv_weights


def test_applies_at_stride_1_with_a_tile_of_filters(numba_kernels, monkeypatch):
    _, conv = numba_kernels
    applies = conv._implicit_applies
    assert applies(_weights(32, 16), 1, 1, np.float32)          # the speedrun's conv2
    assert not applies(_weights(16, 1), 1, 1, np.float32)       # its first layer: depth 9
    assert applies(_weights(16, 2), 1, 1, np.float32)           # depth 18
    assert not applies(_weights(32, 16), 2, 1, np.float32)      # stride 2
    assert not applies(_weights(4, 16), 1, 1, np.float32)       # fewer filters than a tile
    assert not applies(_weights(32, 16), 1, 3, np.float32)      # padding past the window
    assert not applies(_weights(32, 16), 1, 1, np.float64)
    monkeypatch.setenv("FASTCNN_IMPLICIT", "0")
    assert not applies(_weights(32, 16), 1, 1, np.float32)


def test_weight_gradient_windows_apply_where_the_micro_kernel_fills_both_ways(numba_kernels,
                                                                           monkeypatch):
    _, conv = numba_kernels
    applies = conv._windows_apply
    assert applies(_weights(64, 32), 1, 1, np.float32)          # pytorch_cnn's conv2
    assert applies(_weights(16, 2), 1, 1, np.float32)           # 18 rows of columns
    assert not applies(_weights(32, 1), 1, 1, np.float32)       # 9 rows of columns
    assert not applies(_weights(8, 16), 1, 1, np.float32)       # 8 filters
    assert not applies(_weights(32, 16), 2, 1, np.float32)      # stride 2
    assert not applies(_weights(32, 16), 1, 3, np.float32)      # padding past the window
    assert not applies(_weights(32, 16), 1, 1, np.float64)
    monkeypatch.setenv("FASTCNN_IMPLICIT", "0")
    assert not applies(_weights(64, 32), 1, 1, np.float32)


def test_weight_gradient_without_input_gradient_matches_im2col(numba_kernels, monkeypatch):
    """A first layer's backward pass (no dx) reads its columns as windows too."""
    nb, _ = numba_kernels
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 11, 10), np.float32)
    weight, bias = _weights(24, 4), np.zeros(24, np.float32)
    dout = rng.standard_normal((3, 24, 11, 10), np.float32)

    fast, plain = _both_ways(monkeypatch,
                             lambda: _training_pass(nb, x, weight, bias, dout, 1, input_grad=False))
    _close(fast, plain)


def _both_ways(monkeypatch, run):
    return with_and_without(monkeypatch, "FASTCNN_IMPLICIT", run)


def _training_pass(nb, x, weight, bias, dout, padding, input_grad=True):
    """(out, dx or None, dweight, dbias): the forward pass, then the backward pass from the
    input (dout copied: the kernel folds the activation into it)."""
    out = np.empty(dout.shape, np.float32)
    nb.conv2d_forward(x, weight, bias, 1, padding, "relu", None, out)
    dx = np.empty_like(x) if input_grad else None
    dweight, dbias = np.empty_like(weight), np.empty_like(bias)
    nb.conv2d_backward_from_input(dout.copy(), out, weight, x, 1, padding, "relu", dx, dweight,
                                  dbias)
    return (out, dweight, dbias) if dx is None else (out, dx, dweight, dbias)


_close = assert_close_to_plain


@pytest.mark.parametrize("channels, filters, height, width, kernel, padding", [
    (16, 32, 14, 14, 3, 1),   # mnist_speedrun's conv2
    (2, 16, 28, 28, 3, 1),    # a 28 x 28 layer
    (12, 12, 5, 7, 3, 0),     # filters past a tile, planes that are not square, no padding
    (8, 9, 6, 6, 5, 2),       # 5x5; the input gradient pads 2
    (9, 8, 4, 3, 1, 0),       # 1x1
    (10, 8, 1, 1, 3, 1),      # a single pixel
    (16, 20, 9, 11, 3, 1),    # weight gradient: filters past a column panel (an edge tile)
    (3, 17, 12, 12, 5, 0),    # weight gradient: 75 rows of columns, not whole row panels
    (32, 64, 26, 26, 3, 0),   # weight gradient: 24 output rows in chunks of whole rows
])
def test_forward_and_input_gradient_match_im2col(numba_kernels, monkeypatch, channels, filters,
                                                 height, width, kernel, padding):
    nb, _ = numba_kernels
    rng = np.random.default_rng(channels * 100 + height)
    batch = 5
    x = rng.standard_normal((batch, channels, height, width), np.float32)
    weight = _weights(filters, channels, kernel)
    bias = rng.standard_normal(filters).astype(np.float32)
    out_h, out_w = height + 2 * padding - kernel + 1, width + 2 * padding - kernel + 1
    dout = rng.standard_normal((batch, filters, out_h, out_w), np.float32)

    fast, plain = _both_ways(monkeypatch,
                             lambda: _training_pass(nb, x, weight, bias, dout, padding))
    _close(fast, plain)


def test_fused_pool_training_matches_im2col(numba_kernels, monkeypatch):
    """The training forward pass through the max pool without the full-resolution output,
    and its backward pass from the pooled output."""
    nb, _ = numba_kernels
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 16, 14, 14), np.float32)
    weight, bias = _weights(32, 16), np.zeros(32, np.float32)
    dpooled = rng.standard_normal((6, 32, 7, 7), np.float32)

    def run():
        pooled = np.empty((6, 32, 7, 7), np.float32)
        argmax = np.empty(pooled.shape, np.int32)
        nb.conv2d_maxpool_forward(x, weight, bias, 1, 1, "relu", 2, None, None, pooled, argmax)
        dx, dweight, dbias = np.empty_like(x), np.empty_like(weight), np.empty_like(bias)
        nb.conv2d_maxpool_backward_from_input(dpooled, argmax, pooled, weight, x, 1, 1, "relu",
                                              dx, dweight, dbias)
        return pooled, argmax, dx, dweight, dbias

    fast, plain = _both_ways(monkeypatch, run)
    np.testing.assert_array_equal(fast[1], plain[1])
    _close(fast, plain)
