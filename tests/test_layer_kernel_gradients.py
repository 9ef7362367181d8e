"""The layers' optional operations (contract.LAYER_OPERATIONS): each backward kernel is the
derivative of its forward kernel (central finite differences in float64, NumPy reference
and naive backend), and the reference computes what torch.nn.functional computes,
forward values and autograd gradients, in float64."""

from __future__ import annotations

import numpy as np
import pytest

from fastcnn.kernels.contract import conv_output_size
from test_kernel_gradients import (assert_gradient, autograd, distinct_values, kernels,  # noqa: F401
                                   normal, reference, rng, torch)

POINTWISE = {  # name -> (forward args after x, backward reads "x" or "out", torch function)
    "tanh": ((), "out", lambda F, t: F.tanh(t)),
    "leaky_relu-0.01": ((0.01,), "x", lambda F, t: F.leaky_relu(t, 0.01)),
    "leaky_relu-0.2": ((0.2,), "x", lambda F, t: F.leaky_relu(t, 0.2)),
    "leaky_relu--0.5": ((-0.5,), "x", lambda F, t: F.leaky_relu(t, -0.5)),
    "elu-1.0": ((1.0,), "x", lambda F, t: F.elu(t, 1.0)),
    "elu-0.3": ((0.3,), "x", lambda F, t: F.elu(t, 0.3)),
    "gelu-exact": ((False,), "x", lambda F, t: F.gelu(t)),
    "gelu-tanh": ((True,), "x", lambda F, t: F.gelu(t, approximate="tanh")),
}


def pointwise_kernels(backend, case):
    op = case.split("-")[0]
    return getattr(backend, f"{op}_forward"), getattr(backend, f"{op}_backward")


def run_pointwise(backend, case, x):
    forward, _ = pointwise_kernels(backend, case)
    out = np.empty_like(x)
    forward(x, *POINTWISE[case][0], out)
    return out


def run_pointwise_backward(backend, case, x, out, dout):
    _, backward = pointwise_kernels(backend, case)
    args, reads, _ = POINTWISE[case]
    dx = np.empty_like(x)
    if reads == "out":
        backward(dout, out, *args, dx)
    else:
        backward(dout, x, *args, dx)
    return dx


def away_from_kinks(rng, *shape):
    """Normal values at least 1e-3 from 0, where LeakyReLU and ELU bend."""
    x = normal(rng, *shape) * 2
    return np.where(np.abs(x) < 1e-3, 0.5, x)


@pytest.mark.parametrize("case", sorted(POINTWISE))
def test_pointwise_backward_is_the_gradient_of_its_forward(kernels, rng, case):  # noqa: F811
    x = away_from_kinks(rng, 3, 7)
    projection = normal(rng, *x.shape)

    def loss():
        return float((run_pointwise(kernels, case, x) * projection).sum())

    dx = run_pointwise_backward(kernels, case, x, run_pointwise(kernels, case, x), projection)
    assert_gradient(loss, x, dx, rng, "dx")


def global_pool(kernels, x):  # noqa: F811
    out = np.empty(x.shape[:2])
    kernels.global_avgpool2d_forward(x, out)
    return out


def test_global_avgpool2d_backward_is_the_gradient_of_its_forward(kernels, rng):  # noqa: F811
    x = normal(rng, 2, 3, 5, 4)
    projection = normal(rng, 2, 3)
    dx = np.empty_like(x)
    kernels.global_avgpool2d_backward(projection, dx)
    assert_gradient(lambda: float((global_pool(kernels, x) * projection).sum()), x, dx, rng, "dx")


PADDED_GEOMETRIES = [(2, 2, 1), (3, 1, 1), (3, 2, 1), (5, 3, 2), (4, 1, 2)]  # kernel, stride, padding


def padded_output(x, kernel, stride, padding):
    n, c, h, w = x.shape
    return np.empty((n, c, conv_output_size(h, kernel, stride, padding),
                     conv_output_size(w, kernel, stride, padding)))


@pytest.mark.parametrize("kernel, stride, padding", PADDED_GEOMETRIES)
def test_padded_maxpool_backward_is_the_gradient_of_its_forward(kernels, rng, kernel, stride,  # noqa: F811
                                                                padding):
    x = distinct_values(rng, 2, 2, 7, 6)
    out = padded_output(x, kernel, stride, padding)
    argmax = np.empty(out.shape, np.int32)
    projection = normal(rng, *out.shape)

    def loss():
        kernels.padded_maxpool2d_forward(x, kernel, stride, padding, out, argmax)
        return float((out * projection).sum())

    loss()
    dx = np.empty_like(x)
    kernels.maxpool2d_backward(projection, argmax, dx)
    assert_gradient(loss, x, dx, rng, "dx")


@pytest.mark.parametrize("kernel, stride, padding", PADDED_GEOMETRIES)
def test_padded_avgpool_backward_is_the_gradient_of_its_forward(kernels, rng, kernel, stride,  # noqa: F811
                                                                padding):
    x = normal(rng, 2, 2, 7, 6)
    out = padded_output(x, kernel, stride, padding)
    projection = normal(rng, *out.shape)

    def loss():
        kernels.padded_avgpool2d_forward(x, kernel, stride, padding, out)
        return float((out * projection).sum())

    dx = np.empty_like(x)
    kernels.padded_avgpool2d_backward(projection, kernel, stride, padding, dx)
    assert_gradient(loss, x, dx, rng, "dx")


@pytest.mark.parametrize("p", [0.0, 0.3, 0.5])
def test_dropout2d_backward_is_the_gradient_of_its_forward(kernels, rng, p):  # noqa: F811
    x = normal(rng, 4, 6, 10)
    out, mask = np.empty_like(x), np.empty(x.shape[:2])
    projection = normal(rng, *x.shape)

    def loss():
        kernels.dropout2d_forward(x, p, 77, out, mask)
        return float((out * projection).sum())

    loss()
    dx = np.empty_like(x)
    kernels.dropout2d_backward(projection, mask, dx)
    assert_gradient(loss, x, dx, rng, "dx")
    kept = mask != 0
    assert (out[~kept] == 0).all() and np.allclose(out[kept], x[kept] / (1 - p))
    if p:
        assert 0 < kept.mean() < 1


# ---- the NumPy reference against PyTorch ------------------------------------------------------
@pytest.mark.torch
@pytest.mark.parametrize("case", sorted(POINTWISE))
def test_reference_pointwise_activation_matches_torch(torch, reference, rng, case):  # noqa: F811
    x = normal(rng, 4, 9) * 3
    projection = normal(rng, *x.shape)
    function = POINTWISE[case][2]
    expected, (expected_dx,) = autograd(torch, lambda t: function(torch.nn.functional, t), [x],
                                        projection)
    out = run_pointwise(reference, case, x)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-14)
    dx = run_pointwise_backward(reference, case, x, out, projection)
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-10, atol=1e-12)


@pytest.mark.torch
def test_reference_global_avgpool2d_matches_adaptive_avg_pool2d(torch, reference, rng):  # noqa: F811
    x = normal(rng, 2, 3, 5, 7)
    projection = normal(rng, 2, 3)
    expected, (expected_dx,) = autograd(
        torch, lambda t: torch.nn.functional.adaptive_avg_pool2d(t, 1).flatten(1), [x], projection)
    np.testing.assert_allclose(global_pool(reference, x), expected, rtol=1e-12)
    dx = np.empty_like(x)
    reference.global_avgpool2d_backward(projection, dx)
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-12)


@pytest.mark.torch
@pytest.mark.parametrize("kernel, stride, padding", PADDED_GEOMETRIES)
def test_reference_padded_pooling_matches_torch(torch, reference, rng, kernel, stride,  # noqa: F811
                                                padding):
    F = torch.nn.functional
    x = distinct_values(rng, 2, 3, 7, 6)
    out = padded_output(x, kernel, stride, padding)
    argmax = np.empty(out.shape, np.int32)
    reference.padded_maxpool2d_forward(x, kernel, stride, padding, out, argmax)
    expected, indices = F.max_pool2d(torch.tensor(x), kernel, stride, padding, return_indices=True)
    np.testing.assert_array_equal(out, expected.numpy())
    np.testing.assert_array_equal(argmax, indices.numpy())  # flat y*W + x in the unpadded plane
    projection = normal(rng, *out.shape)
    expected, (expected_dx,) = autograd(torch, lambda t: F.avg_pool2d(t, kernel, stride, padding),
                                        [x], projection)
    reference.padded_avgpool2d_forward(x, kernel, stride, padding, out)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    dx = np.empty_like(x)
    reference.padded_avgpool2d_backward(projection, kernel, stride, padding, dx)
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-12)
