"""What Keras and PyTorch users type works, or is refused in one clear line: padding="same",
tuple kernel sizes, learning_rate= and positional lr, weight decay and AdamW (checked against
torch.optim), LR schedule callbacks, save_weights/load_weights, from_config and handing weights
to a torch nn.Module."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fastcnn
from fastcnn import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential, optim
from fastcnn.losses import CrossEntropy
from helpers import small_cnn, toy_images
from test_torch_parity import TutorialCNN

nn = torch.nn


@pytest.fixture(autouse=True)
def numpy_backend():
    with fastcnn.use_backend("numpy"):
        yield


# ---- layers --------------------------------------------------------------------------------------


@pytest.mark.parametrize("padding, size", [("same", 9), ("valid", 7), ("SAME", 9)])
def test_conv2d_padding_same_keeps_the_size_and_valid_pads_nothing(padding, size):
    layer = Conv2D(2, 3, 3, padding=padding)
    assert layer.build((2, 9, 9)) == (3, size, size)
    assert Conv2D(2, 3, (5, 5), padding="same").build((2, 9, 9)) == (3, 9, 9)


@pytest.mark.parametrize("kwargs, message", [
    ({"kernel_size": 3, "stride": 2, "padding": "same"}, "padding='same' needs stride 1"),
    ({"kernel_size": 2, "padding": "same"}, "needs an odd square kernel"),
    ({"kernel_size": (3, 5), "padding": "same"}, "needs an odd square kernel"),
    ({"kernel_size": 3, "padding": "full"}, "'same' or 'valid'"),
    ({"kernel_size": 3, "stride": (1, 2)}, r"stride \(1, 2\): fastcnn's kernels take one stride"),
    ({"kernel_size": 3, "padding": (0, 1)}, "one padding for both axes"),
    ({"kernel_size": (3, 3, 3)}, "an int or a pair"),
    ({"kernel_size": 3, "activation": "mish"}, "activation must be None or one of 'linear', 'relu'"),
    ({"kernel_size": 3, "activation": "softmax"}, "add a fastcnn.Softmax"),
])
def test_conv2d_arguments_the_kernels_cannot_run_are_refused_in_one_line(kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        Conv2D(2, 3, **kwargs)
    assert "\n" not in str(error.value)


def test_tanh_and_linear_activations_on_dense():
    assert Dense(4, 2, activation="tanh").activation == "tanh"
    assert Dense(4, 2, activation="linear").activation is None


def test_tuple_kernel_sizes_and_strides_match_torch_including_non_square_kernels():
    x = np.random.default_rng(0).normal(size=(2, 2, 7, 9)).astype(np.float32)
    for kernel, stride, padding in [((3, 3), (2, 2), (1, 1)), ((2, 3), 1, 1), ((3, 1), 2, 0)]:
        layer = Conv2D(2, 4, kernel, stride=stride, padding=padding)
        out = np.array(layer(x))
        torch_layer = nn.Conv2d(2, 4, kernel, stride=stride, padding=padding)
        with torch.no_grad():
            torch_layer.weight.copy_(torch.from_numpy(layer.params["weight"].numpy()))
            torch_layer.bias.copy_(torch.from_numpy(layer.params["bias"].numpy()))
            expected = torch_layer(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(out, expected, atol=1e-5)
    assert Conv2D(1, 1, (3, 3)).get_config()["kernel_size"] == 3
    assert Conv2D(1, 1, (2, 3)).get_config()["kernel_size"] == [2, 3]


def test_pooling_takes_square_tuples_and_refuses_others():
    assert MaxPool2D((2, 2)).kernel_size == 2 and MaxPool2D(2, stride=(1, 1)).stride == 1
    with pytest.raises(ValueError, match=r"kernel_size \(2, 3\): the pooling kernels take square"):
        MaxPool2D((2, 3))


# ---- optimizers --------------------------------------------------------------------------------


def test_learning_rate_keyword_and_positional_learning_rates():
    model = small_cnn()
    assert optim.Adam(learning_rate=3e-4).lr == 3e-4 == optim.Adam(lr=3e-4).learning_rate
    assert optim.SGD(model.parameters(), 0.1).lr == 0.1  # PyTorch order
    assert optim.SGD(0.05, momentum=0.9).lr == 0.05      # Keras order
    assert optim.Adam().lr == 1e-3 and optim.SGD().lr == 0.01 and optim.Adadelta().lr == 1.0
    with pytest.raises(ValueError, match="disagree"):
        optim.Adam(lr=1e-3, learning_rate=1e-2)
    with pytest.raises(ValueError, match="learning rate must be in"):
        optim.SGD(model.parameters(), -1)
    with pytest.raises(TypeError, match="takes fastcnn Parameters"):
        optim.SGD([np.zeros(3)], 0.1)


def dense_net(seed=0):
    return Sequential([Flatten(), Dense(64, 8), ReLU(), Dense(8, 4)], seed=seed, input_shape=(1, 8, 8))


def torch_twin(model):
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 4))
    net.load_state_dict(model.state_dict(format="torch"))  # the same names: 1.weight, 3.bias, ...
    return net


@pytest.mark.parametrize("make, make_torch", [
    (lambda p: optim.SGD(p, 0.1, momentum=0.9, weight_decay=0.05),
     lambda p: torch.optim.SGD(p, 0.1, momentum=0.9, weight_decay=0.05)),
    (lambda p: optim.Adam(p, lr=1e-2, weight_decay=0.1),
     lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=0.1)),
    (lambda p: optim.AdamW(p, lr=1e-2, weight_decay=0.5),
     lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.5)),
    (lambda p: optim.AdamW(p, learning_rate=1e-2),
     lambda p: torch.optim.AdamW(p, lr=1e-2)),
], ids=["sgd", "adam", "adamw", "adamw-default-decay"])
def test_weight_decay_follows_pytorch(make, make_torch):
    x, y = toy_images(16)
    model = dense_net()
    net = torch_twin(model)
    optimizer, torch_optimizer = make(model.parameters()), make_torch(net.parameters())
    loss = CrossEntropy()
    for _ in range(4):
        optimizer.zero_grad()
        loss(model.forward(x, training=True), y)
        model.backward(loss.backward())
        optimizer.step()
        torch_optimizer.zero_grad()
        nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        torch_optimizer.step()
    for name, value in net.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[name], value.numpy(), atol=2e-6, err_msg=name)


def test_weight_decay_round_trips_through_a_checkpoint(tmp_path):
    x, y = toy_images(16)
    model = small_cnn().compile(optim.AdamW(lr=1e-2, weight_decay=0.2))
    model.fit(x, y, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = fastcnn.load_model(tmp_path / "m.npz")
    assert type(loaded.optimizer) is optim.AdamW and loaded.optimizer.weight_decay == 0.2
    assert fastcnn.optim.get("adamw").weight_decay == 0.01


# ---- learning-rate callbacks -----------------------------------------------------------------------


def test_learning_rate_scheduler_sets_the_rate_each_epoch_and_logs_it():
    x, y = toy_images(16)
    model = small_cnn().compile(optim.SGD(0.1))
    seen = []
    schedule = fastcnn.LearningRateScheduler(lambda epoch, lr: seen.append(lr) or 0.1 * 0.5 ** epoch)
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[schedule])
    assert history.history["learning_rate"] == [0.1, 0.05, 0.025]
    assert seen == [0.1, 0.1, 0.05] and model.optimizer.lr == 0.025
    one_argument = fastcnn.LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1))
    assert model.fit(x, y, epochs=2, verbose=0, callbacks=[one_argument]).history["learning_rate"] == \
        [0.01, 0.02]


class ScriptedValLoss(fastcnn.Callback):
    def __init__(self, values):
        self.values = values

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.values[epoch]


def test_reduce_lr_on_plateau_cuts_the_rate_after_patience_epochs_without_improvement():
    x, y = toy_images(16)
    model = small_cnn().compile(optim.SGD(0.1))
    plateau = fastcnn.ReduceLROnPlateau("val_loss", factor=0.5, patience=2, min_lr=0.02)
    # val_loss is scripted, so fit needs validation data for the monitor check
    history = model.fit(x, y, epochs=7, verbose=0, validation_data=(x[:4], y[:4]),
                        callbacks=[ScriptedValLoss([1.0, 0.9, 0.95, 0.97, 0.99, 1.2, 1.3]), plateau])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    assert model.fit(x, y, epochs=2, verbose=0, validation_data=(x[:4], y[:4]),
                     callbacks=[ScriptedValLoss([2.0, 2.0]), fastcnn.ReduceLROnPlateau(
                         factor=0.5, patience=0, min_lr=0.02)]).history["learning_rate"] == [0.025, 0.02]


# ---- weights and architecture ------------------------------------------------------------------------


def test_save_weights_and_load_weights_round_trip(tmp_path):
    x, _ = toy_images(6)
    model, other = small_cnn(seed=1), small_cnn(seed=2)
    model.save_weights(tmp_path / "w.npz")
    other.load_weights(tmp_path / "w.npz")
    np.testing.assert_array_equal(other.predict(x), model.predict(x))
    model.save(tmp_path / "whole.npz")  # a full checkpoint's weights load too
    small_cnn(seed=3).load_weights(tmp_path / "whole.npz")
    with pytest.raises(fastcnn.CheckpointError, match="do not match the model"):
        dense_net().load_weights(tmp_path / "w.npz")


def test_from_config_rebuilds_the_same_model():
    x, _ = toy_images(6)
    model = Sequential([Conv2D(1, 3, (3, 3), padding="same", activation="relu"), MaxPool2D((2, 2)),
                        Flatten(), Dense(48, 4)], seed=7, input_shape=(1, 8, 8))
    rebuilt = Sequential.from_config(model.get_config())
    assert rebuilt.get_config() == model.get_config() and rebuilt.built
    np.testing.assert_array_equal(rebuilt.predict(x), model.predict(x))
    zoo = fastcnn.zoo.keras_kfold_cnn(seed=0)
    assert Sequential.from_config(zoo.get_config()).get_config() == zoo.get_config()


def test_state_dict_in_torch_format_loads_into_the_tutorials_module_with_the_same_outputs():
    x = np.random.default_rng(0).random((3, 1, 28, 28)).astype(np.float32)
    model = fastcnn.zoo.pytorch_cnn(seed=0)
    state = model.state_dict(format="torch")
    assert all(isinstance(value, torch.Tensor) for value in state.values())
    net = TutorialCNN().eval()
    net.load_state_dict(state)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(np.array(model.forward(x)), expected, atol=1e-4)
    with pytest.raises(ValueError, match="'numpy' or 'torch'"):
        model.state_dict(format="keras")


# ---- Keras and PyTorch spellings of the layers (sizes inferred at build time) --------------------


def keras_cnn(seed=0):
    """The Keras MNIST tutorial's spellings: no input sizes anywhere but input_shape."""
    return Sequential([
        Conv2D(8, (3, 3), activation="relu", strides=1, padding="same"),
        MaxPool2D(pool_size=2),
        Conv2D(filters=6, kernel_size=3, strides=(1, 1), use_bias=False),
        fastcnn.AvgPool2D(pool_size=(2, 2), strides=2),
        Flatten(),
        Dense(16, activation="relu"),
        fastcnn.Dropout(rate=0.5),
        Dense(units=4),
    ], seed=seed, input_shape=(1, 12, 12))


def pytorch_twin_of_keras_cnn(seed=0):
    """The same network with PyTorch's positional in/out sizes."""
    return Sequential([
        Conv2D(1, 8, 3, activation="relu", stride=1, padding=1), MaxPool2D(2),
        Conv2D(8, 6, 3, bias=False), fastcnn.AvgPool2D(2, 2), Flatten(),
        Dense(6 * 2 * 2, 16, activation="relu"), fastcnn.Dropout(0.5), Dense(16, 4),
    ], seed=seed, input_shape=(1, 12, 12))


def test_keras_spellings_build_with_the_sizes_inferred_from_input_shape():
    model = keras_cnn()
    conv, _, second, _, _, dense, dropout, head = model.layers
    assert (conv.in_channels, conv.out_channels, conv.padding, conv.activation) == (1, 8, 1, "relu")
    assert (second.in_channels, second.out_channels, second.use_bias) == (8, 6, False)
    assert (dense.in_features, dense.out_features) == (24, 16) and head.in_features == 16
    assert model.layers[1].kernel_size == 2 and model.layers[3].stride == 2
    assert dropout.p == 0.5 == dropout.rate and model.output_shape == (4,)


def test_keras_and_pytorch_spellings_give_the_same_network():
    x, _ = toy_images(5, size=12)
    keras, torch_style = keras_cnn(seed=3), pytorch_twin_of_keras_cnn(seed=3)
    assert keras.get_config()["layers"] == [
        [kind, {**config, "name": keras_config["name"]}] for (kind, config), (_, keras_config)
        in zip(torch_style.get_config()["layers"], keras.get_config()["layers"])]
    np.testing.assert_array_equal(keras.predict(x), torch_style.predict(x))


def test_sizes_are_inferred_from_the_first_batch_without_input_shape():
    x, y = toy_images(8, size=12)
    model = Sequential([Conv2D(4, 3, activation="relu"), MaxPool2D(pool_size=2), Flatten(),
                        Dense(8), ReLU(), Dense(4)], seed=0)
    model.compile("adam").fit(x, y, verbose=0)
    assert model.layers[0].in_channels == 1 and model.layers[3].in_features == 4 * 5 * 5


def test_inferred_sizes_round_trip_through_config_and_checkpoint(tmp_path):
    x, y = toy_images(8, size=12)
    model = keras_cnn(seed=1).compile("adam")
    model.fit(x, y, verbose=0)
    rebuilt = Sequential.from_config(model.get_config())
    assert rebuilt.get_config() == model.get_config()
    model.save(tmp_path / "keras.npz")
    loaded = fastcnn.load_model(tmp_path / "keras.npz")
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_pytorch_positional_sizes_keep_working_beside_keras_ones():
    conv, dense = Conv2D(1, 32, 3), Dense(3136, 128)
    assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (1, 32, 3)
    assert (dense.in_features, dense.out_features) == (3136, 128)
    keras = [Conv2D(32, 3), Conv2D(32, kernel_size=3), Conv2D(filters=32, kernel_size=3),
             Conv2D(3, filters=32), Conv2D(32, (3, 3), strides=(1, 1))]
    assert all((c.in_channels, c.out_channels, c.kernel_size) == (None, 32, 3) for c in keras)
    keyword = Conv2D(in_channels=1, out_channels=32, kernel_size=3, stride=2)
    assert (keyword.in_channels, keyword.stride) == (1, 2)
    assert Dense(in_features=4, out_features=2).in_features == 4


@pytest.mark.parametrize("make, error, message", [
    (lambda: Conv2D(8, 3, stride=1, strides=2), ValueError, "stride=1 and strides=2; pass one"),
    (lambda: Conv2D(8, 3, filters=4), ValueError, "out_channels=3 and filters=4"),
    (lambda: Conv2D(), TypeError, r"Conv2D\(filters, kernel_size\) as in Keras"),
    (lambda: Dense(), TypeError, r"Dense\(units\) as in Keras"),
    (lambda: Dense(16, 4, units=8), ValueError, "out_features=4 and units=8"),
    (lambda: Dense(0), ValueError, "out_features must be a whole number >= 1"),
    (lambda: MaxPool2D(2, pool_size=3), ValueError, "kernel_size=2 and pool_size=3"),
    (lambda: MaxPool2D(pool_size=3, padding=2), ValueError, "more than half the window"),
    (lambda: fastcnn.AvgPool2D(2, padding="same"), ValueError, "Keras' 'same' pads unevenly"),
    (lambda: fastcnn.AvgPool2D(2, count_include_pad=False), ValueError, "count_include_pad"),
    (lambda: fastcnn.Dropout(rate=1.0), ValueError, r"must be a number in \[0, 1\)"),
    (lambda: fastcnn.Dropout(0.2, rate=0.5), ValueError, "p=0.2 and rate=0.5"),
    (lambda: fastcnn.LeakyReLU("0.1"), TypeError, "negative_slope must be a number, got str"),
    (lambda: fastcnn.ELU(alpha=float("nan")), ValueError, "alpha must be a finite number"),
    (lambda: fastcnn.GELU("erf"), ValueError, "'none' \\(exact\\) or 'tanh'"),
])
def test_bad_layer_arguments_say_what_to_pass(make, error, message):
    with pytest.raises(error, match=message) as raised:
        make()
    assert "\n" not in str(raised.value)


def test_dense_without_flatten_after_a_convolution_asks_for_one():
    with pytest.raises(fastcnn.InputError, match=r"Dense .*expects \(N, F\) inputs.*add a Flatten"):
        Sequential([Conv2D(4, 3), Dense(8)], input_shape=(1, 6, 6))


@pytest.mark.parametrize("activation, layer", [
    ("tanh", torch.nn.Tanh()), ("leaky_relu", torch.nn.LeakyReLU(0.2)), ("elu", torch.nn.ELU()),
    ("gelu", torch.nn.GELU())])
def test_keras_activation_names_on_conv2d_and_dense_match_torch(activation, layer):
    x = np.random.default_rng(0).normal(size=(2, 2, 6, 6)).astype(np.float32)
    conv = Conv2D(3, 3, activation=activation)
    out = np.array(conv(x))
    torch_conv = nn.Conv2d(2, 3, 3)
    with torch.no_grad():
        torch_conv.weight.copy_(torch.from_numpy(conv.params["weight"].numpy()))
        torch_conv.bias.copy_(torch.from_numpy(conv.params["bias"].numpy()))
        np.testing.assert_allclose(out, layer(torch_conv(torch.from_numpy(x))).numpy(), atol=1e-5)
    assert Conv2D.__name__ in repr(conv) and f"activation='{activation}'" in repr(conv)
