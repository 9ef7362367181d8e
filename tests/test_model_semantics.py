"""Sequential as PyTorch and Keras users expect it: gradients add up until zero_grad(),
train()/eval() modes, add(), feature extractors, nested Sequentials, layers found by a
registry, and the module boundaries that keep the core small (serialization knows no
model, the layers know no zoo)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import fastcnn
from conftest import REPO
from fastcnn import Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sequential
from fastcnn.layers import Layer, layer_class
from fastcnn.losses import CrossEntropy
from helpers import numpy_backend, run_python, small_cnn, toy_images  # noqa: F401 (fixture)


def grads(model):
    return {name: np.array(fastcnn.to_numpy(p.grad)) for name, p in model.named_parameters()}


def test_gradients_add_up_over_backward_calls_until_zero_grad(numpy_backend):
    x, y = toy_images(6)
    model, loss = small_cnn(seed=1), CrossEntropy()
    loss(model.forward(x, training=True), y)
    model.backward(loss.backward())
    once = grads(model)
    loss(model.forward(x, training=True), y)
    model.backward(loss.backward())
    for name, value in grads(model).items():
        np.testing.assert_allclose(value, 2 * once[name], rtol=1e-6, atol=1e-7, err_msg=name)
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    loss(model.forward(x, training=True), y)
    model.backward(loss.backward())
    for name, value in grads(model).items():
        np.testing.assert_allclose(value, once[name], rtol=1e-6, atol=1e-7, err_msg=name)


def test_accumulated_half_batches_give_the_whole_batchs_gradient_as_in_pytorch(numpy_backend):
    """Gradient accumulation: two halves, each loss scaled by 1/2, sum to the full batch's."""
    x, y = toy_images(8)
    model, loss = small_cnn(seed=2), CrossEntropy()
    loss(model.forward(x, training=True), y)
    model.backward(loss.backward())
    whole = grads(model)
    model.zero_grad()
    for part in (slice(0, 4), slice(4, 8)):
        loss(model.forward(x[part], training=True), y[part])
        model.backward(np.asarray(loss.backward()) * 0.5)
    for name, value in grads(model).items():
        np.testing.assert_allclose(value, whole[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_fit_starts_every_step_from_fresh_gradients(numpy_backend):
    x, y = toy_images(8)
    stepped, manual = small_cnn(seed=3), small_cnn(seed=3)
    stepped.compile(fastcnn.optim.SGD(lr=0.1), "cross_entropy")
    stepped.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    loss, optimizer = CrossEntropy(), fastcnn.optim.SGD(manual.parameters(), lr=0.1)
    for _ in range(2):
        optimizer.zero_grad()
        loss(manual.forward(x, training=True), y)
        manual.backward(loss.backward())
        optimizer.step()
    for (name, a), (_, b) in zip(stepped.state_dict().items(), manual.state_dict().items()):
        np.testing.assert_allclose(a, b, rtol=1e-6, err_msg=name)


def test_train_and_eval_set_the_mode_model_x_runs_in(numpy_backend):
    x, _ = toy_images(4)
    model = small_cnn(seed=0, dropout=0.5)
    assert not model.training  # inference until train() is called
    inference = np.array(model(x))
    np.testing.assert_array_equal(np.array(model(x)), inference)
    assert model.train() is model and model.training
    assert not np.array_equal(np.array(model(x)), inference)  # dropout now drops
    np.testing.assert_array_equal(np.array(model(x, training=False)), inference)  # explicit wins
    model.eval()
    np.testing.assert_array_equal(np.array(model(x)), inference)


def test_add_builds_the_new_layer_on_a_built_model_and_an_empty_model_on_its_first_batch(numpy_backend):
    x, _ = toy_images(3)
    model = Sequential([Conv2D(1, 2, 3, padding=1), ReLU()], seed=0, input_shape=(1, 8, 8))
    model.add(Flatten()).add(Dense(128, 5))
    assert model.output_shape == (5,) and [n for n, _ in model.named_parameters()][-1] == "3.bias"
    with pytest.raises(fastcnn.InputError, match="layer '4'.*expects"):
        model.add(Dense(7, 2))
    assert len(model.layers) == 4
    empty = Sequential(seed=0)
    empty.add(Flatten())
    empty.add(Dense(64, 3))
    assert empty.predict(x).shape == (3, 3)


def test_a_feature_extractor_returns_what_the_network_outputs(numpy_backend):
    x, _ = toy_images(5)
    model = Sequential([Conv2D(1, 4, 3, padding=1), ReLU(), MaxPool2D(2)], seed=0,
                       input_shape=(1, 8, 8))
    features = model.predict(x, batch_size=2)
    assert features.shape == (5, 4, 4, 4)
    np.testing.assert_allclose(features, np.array(model.forward(x)), rtol=1e-6)
    head = Sequential([Flatten(), Dense(64, 3, activation="relu")], seed=0, input_shape=(1, 8, 8))
    np.testing.assert_array_equal(head.predict(x), np.array(head.forward(x)))  # not softmaxed


def test_a_sequential_inside_a_sequential_names_parameters_like_pytorch(numpy_backend, tmp_path):
    features = Sequential([Conv2D(1, 4, 3, padding=1), ReLU(), MaxPool2D(2)])
    model = Sequential([features, Flatten(), Dense(64, 3)], seed=0, input_shape=(1, 8, 8))
    net = nn.Sequential(nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
                        nn.Flatten(), nn.Linear(64, 3))
    assert list(model.state_dict()) == list(net.state_dict())
    net.load_state_dict(model.state_dict(format="torch"))
    x, y = toy_images(6, classes=3)
    np.testing.assert_allclose(np.array(model.forward(x)), net(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    assert model.plan("train").describe()[0] == ("0", "relu", "2")  # fusion crosses the nesting
    model.compile("adam", "cross_entropy")
    model.fit(x, y, epochs=1, batch_size=3, verbose=0)
    model.save(tmp_path / "nested.npz")
    loaded = fastcnn.load_model(tmp_path / "nested.npz")
    assert isinstance(loaded.layers[0], Sequential)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_every_layer_class_registers_itself_and_a_saved_custom_layer_loads(numpy_backend, tmp_path):
    class Doubling(Layer):
        """x -> 2x, any shape."""

        aliases = ("Twice",)

        def forward(self, x, training=False):
            out = self.workspace.get("out", x.shape)
            fastcnn.functional.axpby(2.0, x, 0.0, x, out)
            return out

        def backward(self, dout, need_input_grad=True):
            dx = self.workspace.get("dx", dout.shape)
            fastcnn.functional.axpby(2.0, dout, 0.0, dout, dx)
            return dx

    assert layer_class("Doubling") is Doubling and layer_class("Twice") is Doubling
    assert layer_class("Sequential") is Sequential and layer_class("Dropout") is Dropout
    model = Sequential([Flatten(), Doubling(), Dense(64, 2)], seed=0, input_shape=(1, 8, 8))
    model.save(tmp_path / "custom.npz")
    x, _ = toy_images(2)
    np.testing.assert_array_equal(fastcnn.load_model(tmp_path / "custom.npz").predict(x),
                                  model.predict(x))
    with pytest.raises(ValueError, match="unknown layer 'Nowhere'; known: .*Conv2D"):
        layer_class("Nowhere")


def test_a_file_naming_a_zoo_layer_loads_in_a_process_that_never_imported_the_zoo(tmp_path):
    path = tmp_path / "compat.npz"
    fastcnn.zoo.get("numpy_mlp", seed=0, compat=True).save(path)
    result = run_python(f"""
        import sys, fastcnn
        assert not [m for m in sys.modules if m.startswith("fastcnn.zoo")]
        model = fastcnn.load_model({str(path)!r})
        print(sorted(type(layer).__name__ for layer in model.layers))
    """)
    assert result.returncode == 0, result.stderr
    assert "RawPixels" in result.stdout


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_serialization_knows_files_not_models_and_the_layers_know_no_zoo():
    package = REPO / "fastcnn"
    serialization = _imports(package / "serialization.py")
    assert not {".model", "Sequential", ".layers"} & serialization, serialization
    for path in (package / "layers").glob("*.py"):
        assert not [name for name in _imports(path) if "zoo" in name], path.name
    for path in (package / "model.py", package / "serialization.py"):
        assert "isinstance(layer, Dropout)" not in path.read_text(), f"{path.name} special-cases Dropout"
