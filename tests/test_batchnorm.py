"""BatchNorm2d, BatchNorm1d and Keras' BatchNormalization on every backend: check_layer
(config, save/load, finite differences, PyTorch parity in training and inference), running
statistics in state_dict and checkpoints, Keras' momentum, and the errors users meet."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import fastcnn
from conftest import backend_is_simulated, usable_backends
from fastcnn import BatchNorm1d, BatchNorm2d, BatchNormalization
from helpers import numpy_backend, small_cnn, toy_images  # noqa: F401 (fixture)
from layer_check import check_layer

BACKENDS = usable_backends()


def _shape(backend, shape):
    """A smaller per-sample shape under the CUDA simulator and on the Python loops."""
    return tuple(min(s, 3) for s in shape) if backend_is_simulated(backend) or backend == "naive" \
        else shape


@pytest.mark.parametrize("backend", BACKENDS)
def test_batchnorm2d_passes_check_layer(backend, tmp_path):
    shape = _shape(backend, (3, 5, 4))
    check_layer(lambda: BatchNorm2d(shape[0], momentum=0.3), shape, backend, tmp_path,
                torch_twin=lambda: nn.BatchNorm2d(shape[0], momentum=0.3))


@pytest.mark.parametrize("backend", BACKENDS)
def test_batchnorm1d_passes_check_layer(backend, tmp_path):
    check_layer(lambda: BatchNorm1d(6, eps=1e-3), (6,), backend, tmp_path,
                torch_twin=lambda: nn.BatchNorm1d(6, eps=1e-3))


def test_momentum_none_is_the_cumulative_average_as_in_pytorch(numpy_backend):
    layer, net = BatchNorm1d(4, momentum=None), nn.BatchNorm1d(4, momentum=None)
    model = fastcnn.Sequential([layer], input_shape=(4,))
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.standard_normal((5, 4)).astype(np.float32) * 3
        model(x, training=True)
        net(torch.from_numpy(x))
    np.testing.assert_allclose(model.state_dict()["0.running_var"], net.running_var.numpy(), rtol=1e-5)
    assert int(model.state_dict()["0.num_batches_tracked"]) == 3


def test_keras_batchnormalization_converts_its_momentum_and_takes_images_and_vectors(numpy_backend):
    layer = BatchNormalization(momentum=0.9, epsilon=1e-3)
    assert layer.momentum == pytest.approx(0.1) and layer.eps == 1e-3
    assert BatchNormalization.from_config(layer.get_config()).get_config() == layer.get_config()
    assert layer.get_config()["momentum"] == pytest.approx(0.9)
    images = fastcnn.Sequential([BatchNormalization()], input_shape=(2, 3, 3))
    vectors = fastcnn.Sequential([BatchNormalization()], input_shape=(5,))
    assert images.layers[0].num_features == 2 and vectors.layers[0].num_features == 5
    with pytest.raises(ValueError, match="channels first"):
        BatchNormalization(axis=-1)


def test_running_statistics_live_in_state_dict_and_checkpoints_under_pytorchs_names(
        numpy_backend, tmp_path):
    model = fastcnn.Sequential([fastcnn.Conv2D(1, 3, 3, padding=1), BatchNorm2d(3), fastcnn.ReLU(),
                                fastcnn.Flatten(), fastcnn.Dense(192, 4)], seed=0,
                               input_shape=(1, 8, 8))
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                        nn.Linear(192, 4))
    assert list(model.state_dict()) == list(net.state_dict())
    assert model.state_dict()["1.num_batches_tracked"].dtype == np.int64
    x, y = toy_images(16)
    model.compile("adam", "cross_entropy").fit(x, y, epochs=1, batch_size=8, verbose=0)
    net.load_state_dict(model.state_dict(format="torch"))
    net.eval()
    np.testing.assert_allclose(model.predict(x), torch.softmax(net(torch.from_numpy(x)), 1).detach(),
                               rtol=1e-4, atol=1e-5)
    model.save(tmp_path / "bn.npz")
    np.testing.assert_array_equal(fastcnn.load_model(tmp_path / "bn.npz").predict(x), model.predict(x))
    # a checkpoint without the running statistics is refused, naming them
    with np.load(tmp_path / "bn.npz") as archive:
        arrays = {k: archive[k] for k in archive.files if "running_var" not in k}
    np.savez(tmp_path / "stripped.npz", **arrays)
    with pytest.raises(fastcnn.CheckpointError, match="missing.*1.running_var.*running statistics"):
        fastcnn.load_model(tmp_path / "stripped.npz")


def test_batch_size_one_in_training_is_a_clear_error(numpy_backend):
    model = fastcnn.Sequential([fastcnn.Flatten(), BatchNorm1d(64)], input_shape=(1, 8, 8))
    x, y = toy_images(1)
    with pytest.raises(fastcnn.InputError,
                       match=r"batch of 1 sample\(s\) in training.*at least 2 samples.*size of 2"):
        model(x, training=True)
    assert model(x).shape == (1, 64)  # inference takes one sample


def test_a_batchnorm_cnn_trains_on_every_backend():
    # naive and the CUDA simulator: check_layer above (a training run there takes most of a minute)
    for backend in [name for name in BACKENDS if name != "naive" and not backend_is_simulated(name)]:
        size = 4 if backend_is_simulated(backend) else 8
        x, y = toy_images(8 if size == 4 else 32, size=size)
        with fastcnn.use_backend(backend):
            model = fastcnn.Sequential([fastcnn.Conv2D(1, 4, 3, padding=1), BatchNorm2d(4),
                                        fastcnn.ReLU(), fastcnn.MaxPool2D(2), fastcnn.Flatten(),
                                        fastcnn.Dense(4 * (size // 2) ** 2, 4)], seed=0,
                                       input_shape=(1, size, size))
            model.compile(fastcnn.optim.Adam(lr=3e-2), "cross_entropy")
            history = model.fit(x, y, epochs=3 if size == 4 else 6, batch_size=8, verbose=0)
            assert history.history["loss"][-1] < history.history["loss"][0], backend


@pytest.mark.parametrize("backend", [name for name in ("numba", "cython") if name in BACKENDS])
def test_the_compiled_cpu_backends_run_their_own_batchnorm_kernels(backend):
    """A compiled kernel per backend (one parallel pass per channel), not the composition;
    the conformance suite compares it with the reference."""
    with fastcnn.use_backend(backend):
        module = fastcnn.get_backend()
        assert all(callable(getattr(module, op, None))
                   for op in ("batchnorm_forward", "batchnorm_backward"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_predict_normalises_without_keeping_xhat(backend):
    """predict and evaluate run no backward pass: their plan calls infer(), which writes out
    alone, the same values as an inference forward (to float32 rounding)."""
    shape = _shape(backend, (3, 5, 4))
    x = np.random.default_rng(3).standard_normal((4,) + shape).astype(np.float32) * 2 + 1
    with fastcnn.use_backend(backend):
        trained = fastcnn.Sequential([BatchNorm2d(shape[0])], input_shape=shape, seed=0)
        trained(x, training=True)  # running statistics that are not 0 and 1
        expected = trained(x)
        layer = BatchNorm2d(shape[0])
        model = fastcnn.Sequential([layer], input_shape=shape, seed=0)
        model.load_state_dict(trained.state_dict())
        np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5, atol=1e-5)
        assert "xhat" not in layer.workspace._buffers
        with pytest.raises(RuntimeError, match="backward after infer"):
            layer.backward(fastcnn.functional.to_backend(np.ones_like(x), "dout"))


def test_a_torch_state_dict_with_its_0_d_batch_count_loads(numpy_backend):
    net = nn.Sequential(nn.BatchNorm2d(3))
    net(torch.randn(4, 3, 2, 2) * 3 + 1)
    model = fastcnn.Sequential([BatchNorm2d(3)], input_shape=(3, 2, 2))
    model.load_state_dict(net.state_dict())
    assert model.state_dict()["0.num_batches_tracked"].shape == ()
    np.testing.assert_allclose(model.state_dict()["0.running_var"], net[0].running_var.numpy())
    model.load_state_dict(model.state_dict())  # and its own


@pytest.mark.skipif("numba" not in usable_backends(), reason="numba unusable here")
@pytest.mark.parametrize("shape", [(37, 64, 3, 3), (37, 20, 7, 7), (37, 16, 14, 14)])
def test_numba_batchnorm_sums_do_not_depend_on_the_thread_count(shape):
    """Short planes sum in channel blocks fixed by the shape (numba batchnorm.SHORT_PLANE),
    longer ones one channel at a time: either way, in an order that no thread count moves."""
    import numba
    from fastcnn.kernels import numba_backend as nb

    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, np.float32) * 3 + 1
    dout = rng.standard_normal(shape, np.float32)
    weight, bias = rng.standard_normal((2, shape[1]), np.float32)
    results, before = [], nb.get_num_threads()
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            nb.set_num_threads(threads)
            stats = np.zeros(shape[1], np.float32), np.ones(shape[1], np.float32)
            out, xhat, invstd = np.empty_like(x), np.empty_like(x), np.empty(shape[1], np.float32)
            nb.batchnorm_forward(x, weight, bias, *stats, 0.1, 1e-5, True, out, xhat, invstd)
            dx, dweight, dbias = np.empty_like(x), np.empty_like(weight), np.empty_like(bias)
            nb.batchnorm_backward(dout, xhat, weight, invstd, True, dx, dweight, dbias)
            results.append((out, invstd, *stats, dx, dweight, dbias))
    finally:
        nb.set_num_threads(before)
    for single, many in zip(*results):
        np.testing.assert_array_equal(single, many)
