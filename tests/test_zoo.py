"""The zoo: each tutorial network has its documented layer shapes and parameter counts, its
recipe matches the tutorial, and one training step runs."""

from __future__ import annotations

import numpy as np
import pytest

import fastcnn
from fastcnn import optim, zoo
from fastcnn.zoo.compat import BatchAxisSoftmax, RawPixels
from helpers import assert_same_weights, mnist_like, numpy_backend  # noqa: F401

pytestmark = pytest.mark.usefixtures("numpy_backend")

ARCHITECTURES = {
    # name: ({layer name: per-sample output shape}, total params, trainable params)
    "pytorch_cnn": ({"conv1": (32, 28, 28), "relu1": (32, 28, 28), "pool1": (32, 14, 14),
                     "conv2": (64, 14, 14), "relu2": (64, 14, 14), "pool2": (64, 7, 7),
                     "flatten": (3136,), "fc1": (128,), "relu3": (128,), "dropout": (128,),
                     "fc2": (10,)}, 421_642, 421_642),
    "keras_kfold_cnn": ({"conv": (32, 26, 26), "pool": (32, 13, 13), "flatten": (5408,),
                         "dense": (100,), "output": (10,), "softmax": (10,)}, 542_230, 542_230),
    "kmnist_cnn": ({"conv1": (32, 26, 26), "conv2": (64, 24, 24), "pool": (64, 12, 12),
                    "dropout1": (64, 12, 12), "flatten": (9216,), "dense": (128,),
                    "dropout2": (128,), "output": (10,), "softmax": (10,)}, 1_199_882, 1_199_882),
    "numpy_mlp": ({"flatten": (784,), "hidden": (128,), "output": (10,), "softmax": (10,)},
                  101_632, 101_632),
    "fixed_kernel_cnn": ({"conv": (1, 26, 26), "pool": (1, 13, 13), "flatten": (169,),
                          "hidden1": (4,), "hidden2": (4,), "output": (10,), "softmax": (10,)},
                         759, 750),
}


def test_the_zoo_lists_the_five_tutorial_networks():
    assert sorted(zoo.names()) == sorted(ARCHITECTURES)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_zoo_model_has_the_documented_layer_shapes_and_parameter_counts(name):
    shapes, total, trainable = ARCHITECTURES[name]
    model = zoo.get(name, seed=0)
    assert model.input_shape == (1, 28, 28)
    assert {layer.name: layer.output_shape for layer in model.layers} == shapes
    assert model.count_params() == total
    assert model.count_params(trainable_only=True) == trainable


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_zoo_model_with_the_same_seed_has_the_same_initial_weights(name):
    assert_same_weights(zoo.get(name, seed=5), zoo.get(name, seed=5))


def test_the_tutorial_initializers_and_activations_are_used():
    torch_style, keras_style = zoo.pytorch_cnn(seed=0), zoo.keras_kfold_cnn(seed=0)
    assert torch_style.layers[0].init.name == "pytorch_default"
    assert [type(layer).__name__ for layer in torch_style.layers[:3]] == ["Conv2D", "ReLU", "MaxPool2D"]
    assert keras_style.layers[0].init.name == "he_uniform" and keras_style.layers[0].activation == "relu"
    assert keras_style.layers[-2].init.name == "glorot_uniform"
    kmnist = zoo.kmnist_cnn(seed=0)
    assert [layer.p for layer in kmnist.layers if isinstance(layer, fastcnn.Dropout)] == [0.25, 0.5]
    assert torch_style.outputs_logits  # pytorch_cnn ends in logits
    assert not keras_style.outputs_logits


@pytest.mark.parametrize("name, optimizer, settings, batch_size, epochs, loss", [
    ("pytorch_cnn", optim.Adam, {"lr": 1e-3}, 64, 100, "cross_entropy"),
    ("keras_kfold_cnn", optim.SGD, {"lr": 0.01, "momentum": 0.9}, 32, 10, "cross_entropy"),
    ("kmnist_cnn", optim.Adadelta, {"lr": 1.0, "rho": 0.95, "eps": 1e-7}, 128, 12, "cross_entropy"),
    ("numpy_mlp", optim.SGD, {"lr": 16.0, "momentum": 0.0}, 128, 20, "mse"),
    ("fixed_kernel_cnn", optim.SGD, {"lr": 2.0, "momentum": 0.0}, 60_000, 40_000, "cross_entropy"),
])
def test_recipe_defaults_match_the_tutorial(name, optimizer, settings, batch_size, epochs, loss):
    recipe = zoo.recipe(name)
    assert (recipe.batch_size, recipe.epochs, recipe.loss) == (batch_size, epochs, loss)
    made = recipe.make_optimizer()
    assert type(made) is optimizer
    for key, value in settings.items():
        assert getattr(made, key) == pytest.approx(value), key


def test_recipe_fields_can_be_overridden_and_none_leaves_them():
    recipe = zoo.recipe("pytorch_cnn", epochs=3, lr=None)
    assert recipe.epochs == 3 and recipe.lr == 1e-3
    assert recipe.make_optimizer(lr=0.1).lr == 0.1


def test_numpy_mlp_compat_has_the_tutorial_quirk_layers_and_learning_rate():
    model = zoo.numpy_mlp(seed=0, compat=True)
    assert isinstance(model.layers[0], RawPixels) and isinstance(model.layers[-1], BatchAxisSoftmax)
    assert not any(layer.params.get("bias") for layer in model.layers)
    assert zoo.recipe("numpy_mlp", compat=True).lr == pytest.approx(0.001 * 128 * 10)
    x, _ = mnist_like(6)
    scores = fastcnn.to_numpy(model.forward(x))
    np.testing.assert_allclose(scores.sum(axis=0), 1.0, rtol=1e-5)  # normalised over the batch
    assert not np.allclose(scores.sum(axis=1), 1.0)
    assert isinstance(zoo.numpy_mlp(seed=0).layers[-1], fastcnn.Softmax)


def test_fixed_kernel_cnn_takes_a_custom_3x3_kernel_only():
    kernel = np.arange(9, dtype=np.float32).reshape(3, 3)
    model = zoo.fixed_kernel_cnn(seed=0, kernel=kernel)
    assert np.array_equal(model.state_dict()["conv.weight"][0, 0], kernel)
    with pytest.raises(ValueError, match="3x3"):
        zoo.fixed_kernel_cnn(kernel=np.ones((5, 5)))


@pytest.mark.parametrize("name, compat", [(name, False) for name in ARCHITECTURES] +
                         [("numpy_mlp", True)])
def test_one_training_step_with_the_recipe_runs_and_changes_the_weights(name, compat):
    model = zoo.get(name, seed=0, **({"compat": True} if compat else {}))
    recipe = zoo.recipe(name, compat=compat)
    model.compile(recipe.make_optimizer(), recipe.loss)
    before = model.state_dict()
    x, y = mnist_like(8)
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    changed = [key for key, value in model.state_dict().items()
               if not np.array_equal(value, before[key])]
    trainable = [key for key, _ in model.named_parameters(trainable_only=True)]
    assert sorted(changed) == sorted(trainable)
