"""One conversion layer above the backends: torch tensors, float64 and non-contiguous arrays
behave the same on every backend, and fastcnn.functional refuses buffers that do not match
the kernel contract before a backend sees them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fastcnn
from conftest import backend_is_simulated, usable_backends
from fastcnn import functional
from fastcnn.functional import KernelArgumentError
from helpers import small_cnn, toy_images


def batch(backend):
    x, _ = toy_images(2 if backend_is_simulated(backend) else 6)
    return x


@pytest.mark.parametrize("backend", usable_backends())
def test_forward_takes_torch_tensors_float64_and_non_contiguous_arrays_alike(backend):
    x = batch(backend)
    model = small_cnn()
    with fastcnn.use_backend(backend):
        expected = fastcnn.to_numpy(model.forward(x)).copy()
        channels_last_view = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        for given in (torch.from_numpy(x), torch.from_numpy(x).requires_grad_(), x.astype(np.float64),
                      channels_last_view):
            np.testing.assert_allclose(fastcnn.to_numpy(model.forward(given)), expected, atol=1e-6)
        dense = model.layers[4]
        features = np.random.default_rng(0).random((3, 64))
        np.testing.assert_allclose(fastcnn.to_numpy(dense(torch.from_numpy(features))),
                                   fastcnn.to_numpy(dense(features.astype(np.float32))), atol=1e-6)


@pytest.mark.parametrize("backend", usable_backends())
def test_backward_takes_a_float64_or_torch_gradient_on_every_backend(backend):
    x = batch(backend)
    model = small_cnn()
    with fastcnn.use_backend(backend):
        dout = np.random.default_rng(1).normal(size=(len(x), 4))
        grads = []
        for given in (dout.astype(np.float32), dout, torch.from_numpy(dout)):
            model.zero_grad()
            model.forward(x, training=True)
            model.backward(given)
            grads.append([fastcnn.to_numpy(p.grad).copy() for p in model.parameters()])
        for other in grads[1:]:
            for a, b in zip(grads[0], other):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_backward_refuses_a_gradient_of_the_wrong_shape_naming_it(numpy_backend):
    model = small_cnn()
    model.forward(toy_images(3)[0])
    with pytest.raises(fastcnn.InputError, match=r"dout .* has shape \(3, 5\), expected \(3, 4\)"):
        model.backward(np.zeros((3, 5)))


@pytest.fixture
def numpy_backend():
    with fastcnn.use_backend("numpy"):
        yield


@pytest.mark.parametrize("call, message", [
    (lambda: functional.sgd_update(np.zeros(4, np.float32), np.zeros(4, np.float32),
                                   np.zeros(3, np.float32), 0.1, 0.0),
     r"sgd_update: velocity is float32 \(3,\).*needs C-contiguous float32 \(4,\)"),
    (lambda: functional.relu_forward(np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float64)),
     "relu_forward: out is float64"),
    (lambda: functional.dense_forward(np.zeros((2, 3), np.float32), np.zeros((4, 3), np.float32)[:, :2],
                                      None, None, np.zeros((2, 4), np.float32)),
     r"dense_forward: weight is float32 \(4, 2\)"),
    (lambda: functional.conv2d_forward(np.zeros((1, 2, 5, 5), np.float32), np.zeros((3, 2, 3, 3), np.float32),
                                       None, 1, 0, None, np.zeros((1, 18, 8), np.float32),
                                       np.zeros((1, 3, 3, 3), np.float32)),
     r"conv2d_forward: cols is float32 \(1, 18, 8\).*\(1, 18, 9\)"),
    (lambda: functional.maxpool2d_forward(np.zeros((1, 1, 4, 4), np.float32), 2, 2,
                                          np.zeros((1, 1, 2, 2), np.float32), np.zeros((1, 1, 2, 2), np.int64)),
     "argmax is int64"),
    (lambda: functional.softmax_cross_entropy(np.zeros((2, 3), np.float32), np.zeros(3, np.int32),
                                              np.zeros((2, 3), np.float32), np.zeros(2, np.float32)),
     r"labels is int32 \(3,\)"),
    (lambda: functional.conv2d_forward(np.zeros((1, 2, 5, 5), np.float32), np.zeros((3, 2, 3, 3), np.float32),
                                       None, 1, 0, "tanh", np.zeros((1, 18, 9), np.float32),
                                       np.zeros((1, 3, 3, 3), np.float32)),
     "activation 'tanh'"),
])
def test_functional_refuses_buffers_that_do_not_match_the_contract(numpy_backend, call, message):
    with pytest.raises(KernelArgumentError, match=message):
        call()
