"""The model-level behaviour on every backend that runs here (numpy, numba, cython, and cuda
under the simulator with tiny shapes): check_layer for every layer with a PyTorch twin,
fit/evaluate/predict, save/load and resuming, state dicts, callbacks and gradient
accumulation. The detailed tests of each feature (test_model_api, test_serialization,
test_callbacks_metrics, test_layers_gradients) run on the reference; these make sure that
no backend breaks what the reference passes."""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn

import fastcnn
from conftest import backend_is_simulated, usable_backends
from fastcnn import layers
from helpers import small_cnn, toy_images
from layer_check import check_layer

BACKENDS = [name for name in usable_backends() if name != "naive"]


def _size(backend) -> int:
    return 4 if backend_is_simulated(backend) else 8


LAYER_TWINS = {
    "conv-relu": (lambda: layers.Conv2D(2, 3, 3, padding=1, activation="relu"),
                  lambda: nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU()), (2, 5, 4)),
    "conv-stride2": (lambda: layers.Conv2D(2, 3, 2, stride=2, bias=False),
                     lambda: nn.Conv2d(2, 3, 2, stride=2, bias=False), (2, 5, 4)),
    "dense-sigmoid": (lambda: layers.Dense(6, 4, activation="sigmoid"),
                      lambda: nn.Sequential(nn.Linear(6, 4), nn.Sigmoid()), (6,)),
    "maxpool": (lambda: layers.MaxPool2D(2), lambda: nn.MaxPool2d(2), (2, 4, 5)),
    "avgpool": (lambda: layers.AvgPool2D(2, stride=1), lambda: nn.AvgPool2d(2, stride=1), (2, 4, 5)),
    "relu": (lambda: layers.ReLU(), lambda: nn.ReLU(), (2, 3, 3)),
    "sigmoid": (lambda: layers.Sigmoid(), lambda: nn.Sigmoid(), (5,)),
    "softmax": (lambda: layers.Softmax(), lambda: nn.Softmax(dim=1), (5,)),
    "flatten": (lambda: layers.Flatten(), lambda: nn.Flatten(), (2, 3, 2)),
}


class _Twin(nn.Module):
    """A torch twin whose state-dict names are those of the fastcnn layer (no prefix)."""

    def __init__(self, module):
        super().__init__()
        self.inner = module

    def forward(self, x):
        return self.inner(x)

    def _target(self):
        return self.inner[0] if isinstance(self.inner, nn.Sequential) else self.inner

    def state_dict(self, *args, **kwargs):
        return self._target().state_dict(*args, **kwargs)

    def load_state_dict(self, state, strict=True):
        return self._target().load_state_dict(state, strict=strict)

    def named_parameters(self, *args, **kwargs):
        return self._target().named_parameters(*args, **kwargs)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layer", sorted(LAYER_TWINS))
def test_every_layer_passes_check_layer(backend, layer, tmp_path):
    make, twin, shape = LAYER_TWINS[layer]
    # finite differences: test_layers_gradients checks every one of these layers
    check_layer(make, shape, backend, tmp_path, torch_twin=lambda: _Twin(twin()),
                finite_differences=False, modes=(True,))


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_evaluate_predict_save_load_and_resume(backend, tmp_path):
    size = _size(backend)
    x, y = toy_images(8 if size == 4 else 48, size=size)
    with fastcnn.use_backend(backend):
        model = small_cnn(seed=0, size=size, dropout=0.2)
        model.compile(fastcnn.optim.Adam(lr=3e-2), "cross_entropy", metrics=["accuracy"])
        history = model.fit(x, y, epochs=2, batch_size=4 if size == 4 else 8, verbose=0,
                            callbacks=[fastcnn.ModelCheckpoint(tmp_path / "best.npz")])
        assert history.history["loss"][-1] < history.history["loss"][0]
        assert set(model.evaluate(x, y)) == {"loss", "accuracy"}
        probabilities = model.predict(x)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
        model.save(tmp_path / "model.npz")
        loaded = fastcnn.load_model(tmp_path / "model.npz")
        np.testing.assert_array_equal(loaded.predict(x), probabilities)
        assert fastcnn.load_model(tmp_path / "best.npz").epoch >= 1
        for resumed in (model, loaded):  # dropout seeds, RNG and Adam state all come back
            resumed.fit(x, y, epochs=3, initial_epoch=2, batch_size=len(x) // 2, verbose=0)
        for key, value in model.state_dict().items():
            np.testing.assert_array_equal(loaded.state_dict()[key], value, err_msg=key)


@pytest.mark.parametrize("backend", BACKENDS)
def test_state_dicts_and_gradient_accumulation(backend):
    size = _size(backend)
    x, y = toy_images(4, size=size)
    with fastcnn.use_backend(backend):
        model, twin = small_cnn(seed=0, size=size), small_cnn(seed=1, size=size)
        twin.load_state_dict(model.state_dict())
        np.testing.assert_array_equal(fastcnn.to_numpy(twin.forward(x)),
                                      fastcnn.to_numpy(model.forward(x)))
        loss = fastcnn.losses.CrossEntropy()
        grads = []
        for _ in range(2):
            loss(model.forward(x, training=True), y)
            model.backward(loss.backward())
            grads.append([np.array(fastcnn.to_numpy(p.grad)) for p in model.parameters()])
        for once, twice in zip(*grads):
            np.testing.assert_allclose(twice, 2 * once, rtol=1e-5, atol=1e-6)
