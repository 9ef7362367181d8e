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

FIXED_KERNEL_LR = 0.08

ARCHITECTURES = {
    # name: ({layer name: per-sample output shape}, total params, trainable params)
    "pytorch_cnn": ({"conv_1": (32, 28, 28), "relu_1": (32, 28, 28), "max_pool2d_1": (32, 14, 14),
                     "conv_2": (64, 14, 14), "relu_2": (64, 14, 14), "max_pool2d_2": (64, 7, 7),
                     "flatten": (3136,), "linear_1": (128,), "relu_3": (128,), "dropout": (128,),
                     "linear_2": (10,)}, 421_642, 421_642),
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
    "fashion_cnn": ({"conv1": (32, 28, 28), "pool1": (32, 14, 14), "bn1": (32, 14, 14),
                     "conv2": (64, 14, 14), "pool2": (64, 7, 7), "bn2": (64, 7, 7),
                     "conv3": (128, 7, 7), "pool3": (128, 4, 4), "bn3": (128, 4, 4),
                     "flatten": (2048,), "dense": (256,), "dropout": (256,), "output": (10,)},
                    620_010, 620_010),
    "mnist_speedrun": ({"conv1": (16, 28, 28), "relu1": (16, 28, 28), "pool1": (16, 14, 14),
                        "bn1": (16, 14, 14), "conv2": (32, 14, 14), "relu2": (32, 14, 14),
                        "pool2": (32, 7, 7), "bn2": (32, 7, 7), "conv3": (64, 7, 7),
                        "relu3": (64, 7, 7), "pool3": (64, 3, 3), "bn3": (64, 3, 3),
                        "flatten": (576,), "output": (10,)}, 29_178, 29_178),
}


def test_the_zoo_lists_the_tutorial_networks_the_fashion_cnn_and_the_speedrun():
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


@pytest.mark.parametrize("name, protocol, optimizer, settings, batch_size, epochs, iterations, loss", [
    ("pytorch_cnn", None, optim.Adam, {"lr": 1e-3}, 64, 100, None, "cross_entropy"),
    ("keras_kfold_cnn", None, optim.SGD, {"lr": 0.01, "momentum": 0.9}, 32, 10, None, "cross_entropy"),
    ("kmnist_cnn", None, optim.Adadelta, {"lr": 1.0, "rho": 0.95, "eps": 1e-7}, 128, 12, None,
     "cross_entropy"),
    ("kmnist_cnn", "benchmark", optim.Adadelta, {"lr": 1.0, "rho": 0.95, "eps": 1e-7}, 128, 12,
     None, "cross_entropy"),
    ("numpy_mlp", None, optim.SGD, {"lr": 8.0, "momentum": 0.0}, 128, 20, None, "mse"),
    ("numpy_mlp", "compat", optim.SGD, {"lr": 0.01, "momentum": 0.0}, 128, 20, 10_000, "mse"),
    ("fixed_kernel_cnn", None, optim.SGD, {"lr": FIXED_KERNEL_LR, "momentum": 0.0}, 60_000, 40_000,
     None, "cross_entropy"),
])
def test_recipe_defaults_match_the_tutorial(name, protocol, optimizer, settings, batch_size, epochs,
                                            iterations, loss):
    recipe = zoo.recipe(name, protocol=protocol)
    assert (recipe.batch_size, recipe.epochs, recipe.iterations, recipe.loss) == \
        (batch_size, epochs, iterations, loss)
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
    assert zoo.recipe("numpy_mlp", compat=True).lr == pytest.approx(0.001 * 10)
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


def test_fixed_kernel_cnn_defaults_to_the_searched_sobel_kernel_and_zero_biases():
    state = zoo.fixed_kernel_cnn(seed=0).state_dict()
    assert np.array_equal(state["conv.weight"][0, 0], [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    assert all(not state[f"{name}.bias"].any() for name in ("hidden1", "hidden2", "output"))


@pytest.mark.parametrize("name, compat", [(name, False) for name in ARCHITECTURES] +
                         [("numpy_mlp", True)])
def test_one_training_step_with_the_recipe_runs_and_changes_the_weights(name, compat):
    model = zoo.get(name, seed=0, **({"compat": True} if compat else {}))
    recipe = zoo.recipe(name, compat=compat)
    model.compile(recipe.make_optimizer(), recipe.loss)  # no schedule: one step at the full rate
    before = model.state_dict()
    x, y = mnist_like(8)
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0, augment=recipe.make_augment(0))
    assert np.isfinite(history.history["loss"][0])
    changed = [key for key, value in model.state_dict().items()
               if not np.array_equal(value, before[key])]
    trainable = [key for key, _ in model.named_parameters(trainable_only=True)]
    assert set(trainable) <= set(changed)
    assert all(key in trainable or key.rsplit(".", 1)[1] in ("running_mean", "running_var",
                                                           "num_batches_tracked")
               for key in changed)


def test_an_unknown_protocol_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="kmnist_cnn has no protocol 'quick'; it has: article, benchmark"):
        zoo.recipe("kmnist_cnn", protocol="quick")
    assert zoo.recipe("numpy_mlp", compat=True) == zoo.recipe("numpy_mlp", protocol="compat")


# ---- each recipe pinned: a changed learning rate, initialisation or sampling shows here -------
def tutorial_mlp_step(x, y, l1, l2, lr=0.001):
    """The NumPy MLP tutorial's forward_backward_pass and update, as its code writes them
    (l1 (784, 128), l2 (128, 10); x raw pixels (N, 784))."""
    def sigmoid(z):
        return 1 / (np.exp(-z) + 1)

    def d_sigmoid(z):
        return np.exp(-z) / (np.exp(-z) + 1) ** 2

    def softmax(z):
        e = np.exp(z - z.max())
        return e / np.sum(e, axis=0)

    def d_softmax(z):
        e = np.exp(z - z.max())
        return e / np.sum(e, axis=0) * (1 - e / np.sum(e, axis=0))

    targets = np.zeros((len(y), 10), np.float32)
    targets[range(targets.shape[0]), y] = 1
    x_l1 = x.dot(l1)
    x_sigmoid = sigmoid(x_l1)
    x_l2 = x_sigmoid.dot(l2)
    out = softmax(x_l2)
    error = 2 * (out - targets) / out.shape[0] * d_softmax(x_l2)
    update_l2 = x_sigmoid.T @ error
    error = ((l2).dot(error.T)).T * d_sigmoid(x_l1)
    update_l1 = x.T @ error
    return l1 - lr * update_l1, l2 - lr * update_l2


def test_numpy_mlp_compat_takes_the_tutorials_own_gradient_step():
    model = zoo.numpy_mlp(seed=0, compat=True)
    recipe = zoo.recipe("numpy_mlp", compat=True)
    model.compile(recipe.make_optimizer(), recipe.loss)
    x, y = mnist_like(16, seed=1)
    x = (x // 4).astype(np.uint8)  # darker images keep the tutorial's sigmoid out of saturation
    state = model.state_dict()
    l1, l2 = state["hidden.weight"].T.astype(np.float64), state["output.weight"].T.astype(np.float64)
    want_l1, want_l2 = tutorial_mlp_step(x.reshape(16, 784).astype(np.float64), y, l1, l2)
    backend = fastcnn.get_backend()
    model.train_step(backend.to_device(model._prepare(x)), backend.to_device(model._targets(y, 16)))
    got = model.state_dict()
    assert not np.allclose(want_l2, l2)  # the step moves the weights
    np.testing.assert_allclose(got["output.weight"].T, want_l2, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(got["hidden.weight"].T, want_l1, rtol=1e-4, atol=1e-7)


def test_numpy_mlp_compat_weights_are_the_tutorials_uniform_over_sqrt_of_their_size():
    state = zoo.numpy_mlp(seed=0, compat=True).state_dict()
    for key, (a, b) in (("hidden.weight", (784, 128)), ("output.weight", (128, 10))):
        bound = 1 / np.sqrt(a * b)
        weights = state[key]
        assert np.abs(weights).max() <= bound and np.abs(weights).max() > 0.95 * bound
        assert weights.std() == pytest.approx(bound / np.sqrt(3), rel=0.1)  # uniform's std


PINNED_LOSSES = {
    # the first 4 training losses of each recipe, seed 0, on mnist_like(32, seed=3), numpy backend
    # (numpy_mlp compat: 4 sampled batches of 8); recompute only for a deliberate recipe change
    ("pytorch_cnn", None): [2.29506, 2.24106, 2.25161, 2.2161],
    ("kmnist_cnn", "benchmark"): [2.33534, 2.16879, 2.16171, 2.31289],
    ("numpy_mlp", None): [0.0987782, 0.0988032, 0.0961709, 0.0933788],
    ("numpy_mlp", "compat"): [0.0910318, 0.0907859, 0.0901375, 0.090656],
    ("fixed_kernel_cnn", None): [2.50049, 2.48799, 2.47603, 2.46459],
}


def first_losses(name, protocol):
    from fastcnn.zoo.runner import fit_with_replacement

    model = zoo.get(name, seed=0, **({"compat": True} if protocol == "compat" else {}))
    recipe = zoo.recipe(name, protocol=protocol)
    model.compile(recipe.make_optimizer(), recipe.loss)
    x, y = mnist_like(32, seed=3)
    if recipe.iterations:
        return fit_with_replacement(model, x, y, 4, 8, log_every=1)["loss"]
    backend = fastcnn.get_backend()
    xb, yb = backend.to_device(model._prepare(x)), backend.to_device(model._targets(y, len(x)))
    return [float(backend.to_host(model.train_step(xb, yb))[0]) for _ in range(4)]


@pytest.mark.parametrize("name, protocol", PINNED_LOSSES)
def test_the_recipes_first_training_losses_are_pinned(name, protocol):
    np.testing.assert_allclose(first_losses(name, protocol), PINNED_LOSSES[name, protocol],
                               rtol=2e-4)


def test_sampled_training_draws_batches_with_replacement_from_the_model_seed():
    from fastcnn.zoo.runner import fit_with_replacement

    model = zoo.numpy_mlp(seed=0, compat=True)
    model.compile(zoo.recipe("numpy_mlp", compat=True).make_optimizer(), "mse")
    expected = np.random.default_rng(model.seed).integers(0, 5, size=(30, 4))
    assert any(len(set(row)) < 4 for row in expected)  # duplicates: drawn with replacement
    x, y = mnist_like(5, seed=2)
    history = fit_with_replacement(model, x, y, 30, 4, validation=(x, y), log_every=10)
    assert len(history["loss"]) == len(history["val_accuracy"]) == 3
    assert np.array_equal(model.rng.integers(0, 5, size=4),
                          np.random.default_rng(model.seed).integers(0, 5, size=(31, 4))[-1])


# ---- pytorch_cnn: the tutorial's module names ---------------------------------------------------
def test_pytorch_cnn_loads_the_tutorials_state_dict_as_it_is():
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Model(nn.Module):  # written the way the tutorial's repository writes its network
        def __init__(self):
            super().__init__()
            self.conv_1 = nn.Conv2d(1, 32, kernel_size=3, padding=1)
            self.conv_2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
            self.max_pool2d = nn.MaxPool2d(kernel_size=2, stride=2)
            self.linear_1 = nn.Linear(7 * 7 * 64, 128)
            self.linear_2 = nn.Linear(128, 10)
            self.dropout = nn.Dropout(p=0.5)
            self.relu = nn.ReLU()

        def forward(self, x):
            x = self.max_pool2d(self.relu(self.conv_1(x)))
            x = self.max_pool2d(self.relu(self.conv_2(x)))
            x = x.reshape(x.size(0), -1)
            x = self.dropout(self.relu(self.linear_1(x)))
            return self.linear_2(x)

    torch.manual_seed(0)
    tutorial = Model().eval()
    model = zoo.pytorch_cnn(seed=1)
    model.load_state_dict(tutorial.state_dict())  # strict: every name matches
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():
        want = tutorial(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(fastcnn.to_numpy(model.forward(x)), want, rtol=1e-4, atol=1e-5)


# ---- kmnist_cnn: the benchmark's protocol beside the article's ----------------------------------
def test_kmnist_benchmark_protocol_trains_on_every_image_without_early_stopping():
    from fastcnn.zoo.runner import recipe_callbacks, split_for

    x, y = mnist_like(50, seed=4)
    xt, yt = mnist_like(10, seed=5)
    benchmark = zoo.recipe("kmnist_cnn", protocol="benchmark")
    splits = split_for(benchmark, (x, y), (xt, yt))
    assert len(splits.x_train) == 50 and splits.x_val is splits.x_test
    assert recipe_callbacks(benchmark, splits) == []
    article = zoo.recipe("kmnist_cnn")
    splits = split_for(article, (x, y), (xt, yt))
    assert (len(splits.x_train), len(splits.x_val)) == (40, 10)
    kinds = {type(callback).__name__ for callback in recipe_callbacks(article, splits, verbose=0)}
    assert kinds == {"RocAuc", "EarlyStopping"}


def test_fashion_cnn_recipe_brings_its_schedule_augmentation_and_label_smoothing():
    recipe = zoo.recipe("fashion_cnn")
    model = zoo.get("fashion_cnn", seed=0)
    model.compile(recipe.make_optimizer(), recipe.loss, schedule=recipe.make_schedule())
    assert model.loss.label_smoothing == 0.1
    assert model.optimizer.nesterov and model.optimizer.weight_decay == 5e-4
    assert isinstance(model.schedule, fastcnn.schedules.OneCycleLR) and model.schedule.max_lr == 0.1
    assert recipe.make_augment(0).horizontal_flip
    assert [type(layer).__name__ for layer in model.layers[:3]] == ["Conv2D", "MaxPool2D",
                                                                     "BatchNormalization"]
    assert model.layers[0].activation == "relu"
