"""numba's Winograd F(2x2, 3x3) convolutions: when they run, and that they compute what the
im2col GEMM computes (the conformance suite holds both to the NumPy reference)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import usable_backends
from helpers import assert_close_to_plain, conv_weights, micro_kernel_numba, with_and_without

pytestmark = pytest.mark.skipif("numba" not in usable_backends(), reason="numba unusable here")


@pytest.fixture(scope="module")
def numba_kernels():
    from fastcnn.kernels.numba_cpu import winograd
    return micro_kernel_numba("Winograd"), winograd


_weights = conv_weights


def test_applies_to_3x3_stride_1_with_enough_channels(numba_kernels, monkeypatch):
    _, winograd = numba_kernels
    assert winograd.applies(_weights(64, 32), 1)
    assert not winograd.applies(_weights(64, 32), 2)              # stride 2
    assert not winograd.applies(_weights(64, 32, kernel=5), 1)    # 5x5
    assert not winograd.applies(_weights(32, 1), 1)               # a first layer: depth 1
    assert not winograd.applies(_weights(8, 32), 1)               # few output channels
    assert not winograd.applies(_weights(32, 16), 1)              # the speedrun's conv2
    assert not winograd.applies(_weights(64, 32).astype(np.float64), 1)
    monkeypatch.setenv("FASTCNN_WINOGRAD", "0")
    assert not winograd.applies(_weights(64, 32), 1)


def _both_ways(monkeypatch, run):
    return with_and_without(monkeypatch, "FASTCNN_WINOGRAD", run)


_close = assert_close_to_plain


@pytest.mark.parametrize("height, width, padding", [(14, 14, 1), (7, 7, 1), (9, 9, 0), (6, 6, 2),
                                                   (1, 1, 1), (3, 8, 0), (2, 5, 1)])
def test_forward_and_input_gradient_match_the_gemm(numba_kernels, monkeypatch, height, width,
                                                   padding):
    """pytorch_cnn's conv2 (32 -> 64 at 14x14), the speedrun's conv3 (7x7: tiles past the
    edge), paddings 0 and 2 (the input gradient's Winograd then pads 2 and 0), a single
    pixel and planes that are not square."""
    nb, _ = numba_kernels
    rng = np.random.default_rng(height * 100 + width)
    batch, channels, filters = 5, 32, 64
    x = rng.standard_normal((batch, channels, height, width), np.float32)
    weight, bias = _weights(filters, channels), rng.standard_normal(filters).astype(np.float32)
    out_h, out_w = height + 2 * padding - 2, width + 2 * padding - 2
    dout = rng.standard_normal((batch, filters, out_h, out_w), np.float32)

    def run():
        cols = np.empty((batch, channels * 9, out_h * out_w), np.float32)
        out = np.empty((batch, filters, out_h, out_w), np.float32)
        nb.conv2d_forward(x, weight, bias, 1, padding, "relu", cols, out)
        dx, dweight, dbias = np.empty_like(x), np.empty_like(weight), np.empty_like(bias)
        nb.conv2d_backward(dout.copy(), out, weight, cols, 1, padding, "relu", dx, dweight,
                           dbias, np.empty_like(cols))
        inferred = np.empty_like(out)
        nb.conv2d_forward(x, weight, bias, 1, padding, "relu", None, inferred)
        return out, dx, dweight, dbias, inferred

    fast, plain = _both_ways(monkeypatch, run)
    _close(fast, plain)
    np.testing.assert_array_equal(fast[0], fast[4])  # training and inference alike


def test_fused_pool_inference_matches_the_gemm(numba_kernels, monkeypatch):
    """The inference path (columns never written, per-thread rows) through the max pool."""
    nb, _ = numba_kernels
    rng = np.random.default_rng(1)
    x = rng.standard_normal((7, 32, 14, 14), np.float32)
    weight, bias = _weights(40, 32), np.zeros(40, np.float32)

    def run():
        pooled = np.empty((7, 40, 7, 7), np.float32)
        nb.conv2d_maxpool_forward(x, weight, bias, 1, 1, "relu", 2, None, None, pooled, None)
        return (pooled,)

    fast, plain = _both_ways(monkeypatch, run)
    _close(fast, plain)


def test_weight_transform_is_g_g_gt(numba_kernels):
    """U = G g G^T for each filter, packed as the GEMM's B operand; flipped for dx."""
    _, winograd = numba_kernels
    from fastcnn.kernels.numba_cpu.gemm import NR
    weight = _weights(3, 2)
    G = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]])
    packed = winograd.transformed_weights(weight, False)
    flipped = winograd.transformed_weights(weight, True)
    for o in range(3):
        for c in range(2):
            u = (G @ weight[o, c].astype(np.float64) @ G.T).reshape(-1)
            np.testing.assert_allclose(packed[:, c * NR + o], u, rtol=1e-6, atol=1e-7)
            u = (G @ weight[o, c, ::-1, ::-1].astype(np.float64) @ G.T).reshape(-1)
            np.testing.assert_allclose(flipped[:, o * NR + c], u, rtol=1e-6, atol=1e-7)
