"""Every layer's and loss's backward pass against central finite differences, in float64,
through the real layer objects and through Sequential (numpy backend)."""

from __future__ import annotations

import numpy as np
import pytest

from fastcnn import (ELU, GELU, AvgPool2D, Conv2D, Dense, Dropout, Dropout2d, Flatten,
                     GlobalAveragePooling2D, LeakyReLU, MaxPool2D, ReLU, Sequential, Sigmoid, Softmax,
                     Tanh)
from fastcnn.losses import MSE, CrossEntropy
from helpers import assert_relative_close, float64_numpy_backend, numerical_gradient, to_float64

TOLERANCE = 1e-6


@pytest.fixture(autouse=True)
def float64_numpy():
    with float64_numpy_backend():
        yield


def check_layer_gradients(layer, x, training=False):
    """d(sum(out * w))/d(input and every parameter) from backward vs finite differences."""
    layer.build(x.shape[1:], np.random.default_rng(0))
    to_float64(layer.params.values())
    weights = np.random.default_rng(1).normal(size=(len(x),) + layer.output_shape)

    def loss():
        return float(np.sum(layer.forward(x, training=training) * weights))

    loss()
    analytic = {"input": np.array(layer.backward(weights.copy()))}
    analytic.update({name: param.grad.copy() for name, param in layer.params.items()})
    numeric = {"input": numerical_gradient(loss, x)}
    numeric.update({name: numerical_gradient(loss, param.data) for name, param in layer.params.items()})
    for name in numeric:
        assert np.abs(numeric[name]).max() > 0, f"{name}: the check would be vacuous"
        assert_relative_close(analytic[name], numeric[name], TOLERANCE, name)


def inputs(*shape, seed=2, scale=1.0):
    return np.random.default_rng(seed).normal(0.0, scale, size=shape)


@pytest.mark.parametrize("activation", [None, "relu", "sigmoid"])
@pytest.mark.parametrize("stride, padding", [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)])
def test_conv2d_gradients_match_finite_differences(stride, padding, activation):
    layer = Conv2D(2, 3, 3, stride=stride, padding=padding, activation=activation)
    check_layer_gradients(layer, inputs(2, 2, 8, 8))


def test_conv2d_without_bias_and_even_kernel_gradients_match_finite_differences():
    check_layer_gradients(Conv2D(2, 3, 2, bias=False), inputs(2, 2, 5, 5))


@pytest.mark.parametrize("pool", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize("kernel, stride", [(2, 2), (3, 2), (2, 1), (3, 3)])
def test_pooling_gradients_match_finite_differences(pool, kernel, stride):
    check_layer_gradients(pool(kernel, stride), inputs(2, 2, 7, 7))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("activation", [None, "relu", "sigmoid"])
def test_dense_gradients_match_finite_differences(activation, bias):
    check_layer_gradients(Dense(7, 5, bias=bias, activation=activation), inputs(3, 7))


def test_flatten_gradient_is_the_reshaped_output_gradient():
    check_layer_gradients(Flatten(), inputs(2, 3, 4, 5))


@pytest.mark.parametrize("layer", [ReLU, Sigmoid], ids=["relu", "sigmoid"])
def test_elementwise_activation_gradients_match_finite_differences(layer):
    check_layer_gradients(layer(), inputs(2, 3, 4, 4))


@pytest.mark.parametrize("scale", [1.0, 30.0], ids=["moderate", "large-logits"])
def test_softmax_gradients_match_finite_differences(scale):
    check_layer_gradients(Softmax(), inputs(4, 6, scale=scale))


@pytest.mark.parametrize("p", [0.3, 0.7])
def test_dropout_gradients_match_finite_differences_with_a_fixed_mask(p):
    layer = Dropout(p)
    layer.next_seed = lambda: 12345  # the same mask on every forward call
    x = inputs(3, 4, 5, 5)
    check_layer_gradients(layer, x, training=True)
    dropped = layer.forward(x, training=True) == 0
    assert 0 < dropped.mean() < 1


def test_dropout_outside_training_is_the_identity_both_ways():
    layer = Dropout(0.5)
    layer.build((6,))
    x = inputs(3, 6)
    assert np.array_equal(layer.forward(x, training=False), x)
    dout = inputs(3, 6, seed=5)
    assert np.array_equal(layer.backward(dout.copy()), dout)


@pytest.mark.parametrize("layer", [Tanh, lambda: LeakyReLU(0.1), lambda: LeakyReLU(-0.3), ELU,
                                   lambda: ELU(0.5), GELU, lambda: GELU("tanh")],
                         ids=["tanh", "leaky_relu", "leaky_relu-negative", "elu", "elu-0.5", "gelu",
                              "gelu-tanh"])
def test_new_activation_gradients_match_finite_differences(layer):
    check_layer_gradients(layer(), inputs(2, 3, 4, 4))


@pytest.mark.parametrize("activation", ["tanh", "leaky_relu", "elu", "gelu"])
def test_conv2d_and_dense_with_a_separate_activation_match_finite_differences(activation):
    check_layer_gradients(Conv2D(2, 3, 3, padding=1, activation=activation), inputs(2, 2, 6, 6))
    check_layer_gradients(Dense(7, 5, activation=activation), inputs(3, 7))


@pytest.mark.parametrize("pool", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize("kernel, stride, padding", [(2, 2, 1), (3, 1, 1), (3, 2, 1), (5, 2, 2)])
def test_padded_pooling_gradients_match_finite_differences(pool, kernel, stride, padding):
    check_layer_gradients(pool(kernel, stride, padding=padding), inputs(2, 2, 7, 7))


def test_global_average_pooling_gradient_matches_finite_differences():
    check_layer_gradients(GlobalAveragePooling2D(), inputs(2, 3, 5, 4))


def test_dropout2d_gradients_match_finite_differences_with_a_fixed_mask():
    layer = Dropout2d(0.5)
    layer.next_seed = lambda: 4242
    x = inputs(4, 5, 3, 3)
    check_layer_gradients(layer, x, training=True)
    out = layer.forward(x, training=True)
    dropped = (out == 0).all(axis=(2, 3))  # whole channels, nothing in between
    assert ((out == 0).any(axis=(2, 3)) == dropped).all() and 0 < dropped.mean() < 1


def check_loss_gradient(loss, pred, target):
    def value():
        return float(loss.compute(pred, target)[0])

    value()
    analytic = np.array(loss.grad)
    assert_relative_close(analytic, numerical_gradient(value, pred), TOLERANCE, loss.name)


@pytest.mark.parametrize("scale", [1.0, 20.0], ids=["moderate", "large-logits"])
def test_cross_entropy_gradient_matches_finite_differences(scale):
    labels = np.array([0, 3, 2, 3, 1], dtype=np.int32)
    check_loss_gradient(CrossEntropy(), inputs(5, 4, scale=scale), labels)


def test_cross_entropy_value_is_the_mean_negative_log_softmax():
    logits = inputs(5, 4)
    labels = np.array([0, 3, 2, 3, 1], dtype=np.int32)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    stats = CrossEntropy().compute(logits, labels)
    assert stats[0] == pytest.approx(-log_softmax[np.arange(5), labels].mean(), rel=1e-12)
    assert stats[1] == np.count_nonzero(logits.argmax(axis=1) == labels)


def test_mse_gradient_and_value_match_the_element_mean_definition():
    pred, target = inputs(5, 4), inputs(5, 4, seed=7)
    check_loss_gradient(MSE(), pred, target)
    assert MSE().compute(pred, target)[0] == pytest.approx(np.mean((pred - target) ** 2), rel=1e-12)


def check_model_gradients(model, x, loss, target):
    """d loss / d every parameter of a Sequential (forward with training=True, then backward)."""
    to_float64(model.parameters())

    def value():
        return float(loss.compute(model.forward(x, training=True), target)[0])

    value()
    model.backward(loss.grad)
    for name, param in model.named_parameters():
        analytic = param.grad.copy()
        numeric = numerical_gradient(value, param.data)
        assert np.abs(numeric).max() > 0, f"{name}: the check would be vacuous"
        assert_relative_close(analytic, numeric, TOLERANCE, name)


def float32_exact_inputs(*shape):
    """Inputs Sequential's float32 conversion keeps exactly (the weights stay float64)."""
    return inputs(*shape).astype(np.float32).astype(np.float64)


def test_sequential_cnn_gradient_of_every_parameter_matches_finite_differences():
    dropout = Dropout(0.3)
    dropout.next_seed = lambda: 99
    model = Sequential([
        Conv2D(2, 3, 3, padding=1), ReLU(), MaxPool2D(2),
        Conv2D(3, 4, 3, stride=2, padding=1, activation="sigmoid"), AvgPool2D(2, stride=1),
        Flatten(), Dense(16, 6), Sigmoid(), dropout, Dense(6, 5),
    ], seed=0, input_shape=(2, 10, 10))
    labels = np.array([0, 4, 2], dtype=np.int32)
    check_model_gradients(model, float32_exact_inputs(3, 2, 10, 10), CrossEntropy(), labels)


def test_sequential_of_the_new_layers_gradient_of_every_parameter_matches_finite_differences():
    dropout = Dropout2d(0.3)
    dropout.next_seed = lambda: 7
    model = Sequential([
        Conv2D(4, 3, padding="same", activation="tanh"), MaxPool2D(2, padding=1), dropout,
        Conv2D(5, 3, activation="elu"), LeakyReLU(0.2), AvgPool2D(2, 1, padding=1),
        GlobalAveragePooling2D(), Dense(6, activation="gelu"), GELU("tanh"), Dense(4),
    ], seed=0, input_shape=(2, 9, 9))
    labels = np.array([0, 3, 2], dtype=np.int32)
    check_model_gradients(model, float32_exact_inputs(3, 2, 9, 9), CrossEntropy(), labels)


@pytest.mark.parametrize("activation", ["tanh", "gelu"])
def test_conv2d_with_a_separate_activation_then_a_fused_pool_matches_finite_differences(activation):
    model = Sequential([Conv2D(3, 3, padding=1, activation=activation), MaxPool2D(2),
                        Flatten(), Dense(4)], seed=0, input_shape=(2, 6, 6))
    assert model.plan("train").describe()[0] == ("0", None, "1")  # one step: conv, act, pool
    labels = np.array([0, 3], dtype=np.int32)
    check_model_gradients(model, float32_exact_inputs(2, 2, 6, 6), CrossEntropy(), labels)


def test_sequential_ending_in_softmax_with_mse_gradient_matches_finite_differences():
    model = Sequential([Flatten(), Dense(12, 6, bias=False, activation="sigmoid"),
                        Dense(6, 4, bias=False), Softmax()], seed=0, input_shape=(1, 3, 4))
    target = np.eye(4)[[1, 0, 3]]
    check_model_gradients(model, float32_exact_inputs(3, 1, 3, 4), MSE(), target)
