"""The Sequential API: compile/fit/evaluate/predict, summary, the low-level training loop,
frozen layers, seeding, activation fusion, moving between backends and initializers."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import fastcnn
from conftest import backend_is_simulated, usable_backends
from fastcnn import Conv2D, Dense, Flatten, ReLU, Sequential, Sigmoid
from fastcnn import init as initializers
from fastcnn.callbacks import Callback
from fastcnn.losses import CrossEntropy
from fastcnn.optim import Adam
from helpers import (assert_same_weights, mnist_like, restore_backend, small_cnn,  # noqa: F401
                     toy_images, trained)


@pytest.fixture(autouse=True)
def numpy_unless_switching(request):
    """The numpy backend, except for tests that switch backends themselves."""
    if "restore_backend" in request.fixturenames:
        yield
        return
    with fastcnn.use_backend("numpy"):
        yield


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class BatchCounter(Callback):
    def __init__(self):
        self.batches = 0

    def on_batch_end(self, batch, logs=None):
        self.batches += 1


# ---- fit / evaluate / predict -------------------------------------------------------------


def test_fit_returns_history_with_loss_accuracy_and_validation_metrics_per_epoch():
    x, y = toy_images(64)
    x_val, y_val = toy_images(32, seed=1)
    model = small_cnn().compile(Adam(lr=3e-2), "cross_entropy")
    history = model.fit(x, y, epochs=3, batch_size=16, validation_data=(x_val, y_val), verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(values) == 3 for values in history.history.values())
    assert history.epoch == [0, 1, 2] and model.epoch == 3
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.9
    final = model.evaluate(x_val, y_val)
    assert final["loss"] == pytest.approx(history.history["val_loss"][-1], rel=1e-5)
    assert final["accuracy"] == pytest.approx(history.history["val_accuracy"][-1])


def test_validation_split_holds_out_the_last_fraction_rounded_up():
    x, y = toy_images(10)
    counter = BatchCounter()
    model = small_cnn().compile(Adam(lr=1e-2))
    history = model.fit(x, y, epochs=1, batch_size=1, validation_split=0.25, callbacks=[counter],
                        verbose=0)
    assert counter.batches == 7  # ceil(10 * 0.25) = 3 samples held out
    held_out = model.evaluate(x[-3:], y[-3:])
    assert history.history["val_loss"][0] == pytest.approx(held_out["loss"], rel=1e-5)
    assert history.history["val_accuracy"][0] == pytest.approx(held_out["accuracy"])


@pytest.mark.parametrize("split", [1.0, 1.5, -0.1])
def test_validation_split_outside_zero_one_is_refused(split):
    x, y = toy_images(10)
    with pytest.raises(ValueError, match="validation_split"):
        small_cnn().compile().fit(x, y, validation_split=split, verbose=0)


def test_evaluate_returns_a_dict_of_loss_and_accuracy_matching_predict():
    x, y = toy_images(40)
    model = trained(small_cnn(), x, y)
    result = model.evaluate(x, y)
    assert set(result) == {"loss", "accuracy"}
    probabilities = model.predict(x)
    assert result["accuracy"] == pytest.approx(np.mean(probabilities.argmax(axis=1) == y))
    expected_loss = -np.log(probabilities[np.arange(len(y)), y].astype(np.float64)).mean()
    assert result["loss"] == pytest.approx(expected_loss, rel=1e-4)


def test_evaluate_with_the_roc_auc_metric_adds_roc_auc():
    x, y = toy_images(40)
    model = trained(small_cnn(), x, y)
    model.compile(model.optimizer, "cross_entropy", metrics=["accuracy", "roc_auc"])
    result = model.evaluate(x, y)
    assert result["roc_auc"] == pytest.approx(fastcnn.metrics.roc_auc(y, model.predict(x)), rel=1e-6)


def test_predict_returns_probabilities_for_a_logits_model():
    x, y = toy_images(20)
    model = trained(small_cnn(), x, y)
    probabilities = model.predict(x)
    assert probabilities.shape == (20, 4) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    logits = np.array(model.forward(x))
    assert not np.allclose(logits.sum(axis=1), 1.0)
    np.testing.assert_allclose(probabilities, softmax(logits.astype(np.float64)), atol=1e-6)


def test_predict_returns_the_softmax_layer_output_for_a_softmax_model():
    x, y = toy_images(20)
    model = trained(small_cnn(softmax=True), x, y)
    probabilities = model.predict(x)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(probabilities, np.array(model.forward(x)), atol=1e-7)


def test_predict_does_not_depend_on_the_batch_size():
    x, y = toy_images(20)
    model = trained(small_cnn(), x, y)
    np.testing.assert_allclose(model.predict(x, batch_size=3), model.predict(x), atol=1e-6)
    assert np.array_equal(model.predict_classes(x), model.predict(x).argmax(axis=1))


def test_training_a_softmax_model_with_cross_entropy_learns():
    x, y = toy_images(64)
    history = small_cnn(softmax=True).compile(Adam(lr=3e-2)).fit(x, y, epochs=3, batch_size=16,
                                                                  verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]


# ---- summary ------------------------------------------------------------------------------


SUMMARY_ROW = re.compile(r"^\w+ \((?P<name>[^)]+)\)\s+(?P<shape>\(None[^)]*\))\s+(?P<params>[\d,]+)")


def summary_rows(text):
    """{layer name: (output shape text, params text)} from a summary table."""
    matches = (SUMMARY_ROW.match(line) for line in text.splitlines())
    return {m["name"]: (m["shape"], m["params"]) for m in matches if m}


def test_summary_lists_output_shapes_and_parameter_counts_of_pytorch_cnn():
    model = fastcnn.zoo.pytorch_cnn(seed=0)
    text = model.summary(print_fn=None)
    rows = summary_rows(text)
    assert rows["conv_1"] == ("(None, 32, 28, 28)", "320")
    assert rows["max_pool2d_1"] == ("(None, 32, 14, 14)", "0")
    assert rows["conv_2"] == ("(None, 64, 14, 14)", "18,496")
    assert rows["max_pool2d_2"] == ("(None, 64, 7, 7)", "0")
    assert rows["flatten"] == ("(None, 3136)", "0")
    assert rows["linear_1"] == ("(None, 128)", "401,536")
    assert rows["linear_2"] == ("(None, 10)", "1,290")
    assert "Total params: 421,642" in text and "Non-trainable params: 0" in text
    assert model.count_params() == 421_642


def test_summary_prints_through_print_fn(capsys):
    small_cnn().summary()
    assert "Total params" in capsys.readouterr().out


# ---- the low-level loop ---------------------------------------------------------------------


def test_custom_training_loop_with_forward_loss_backward_and_adam_step_reduces_the_loss():
    x, y = toy_images(32)
    model = small_cnn(seed=0, dropout=0.2)
    loss = CrossEntropy()
    optimizer = Adam(model.parameters(), lr=1e-2)
    values = []
    for _ in range(30):
        optimizer.zero_grad()  # gradients add up over backward() calls, as in PyTorch
        logits = model.forward(x, training=True)
        values.append(loss(logits, y))
        model.backward(loss.backward())
        optimizer.step()
    assert values[-1] < 0.3 * values[0]


def test_backward_before_any_forward_is_refused():
    with pytest.raises(RuntimeError, match="forward"):
        small_cnn().backward(np.zeros((2, 4), np.float32))


# ---- frozen layers ------------------------------------------------------------------------


def test_frozen_fixed_kernel_is_unchanged_by_training_and_not_counted_as_trainable():
    from fastcnn.zoo.fixed_kernel_cnn import SOBEL_X_KERNEL

    model = fastcnn.zoo.fixed_kernel_cnn(seed=0)
    before = model.state_dict()
    x, y = mnist_like(32)
    model.compile(fastcnn.optim.SGD(lr=0.5), "cross_entropy")
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    after = model.state_dict()
    assert np.array_equal(after["conv.weight"], SOBEL_X_KERNEL.reshape(1, 1, 3, 3))
    assert not np.array_equal(after["hidden1.weight"], before["hidden1.weight"])
    assert model.count_params() == 759
    assert model.count_params(trainable_only=True) == 750
    assert "conv.weight" not in dict(model.named_parameters(trainable_only=True))
    text = model.summary(print_fn=None)
    assert "(frozen)" in text and "Non-trainable params: 9" in text


def test_freeze_and_unfreeze_switch_a_layer_out_of_and_back_into_training():
    x, y = toy_images(16)
    model = small_cnn()
    conv = model.layers[0]
    conv.freeze()
    frozen = conv.params["weight"].numpy()
    trained(model, x, y)
    assert np.array_equal(conv.params["weight"].numpy(), frozen)
    conv.unfreeze()
    model.fit(x, y, epochs=2, verbose=0)
    assert not np.array_equal(conv.params["weight"].numpy(), frozen)


# ---- seeding --------------------------------------------------------------------------------


def test_seeded_runs_on_the_same_backend_give_bit_identical_weights():
    x, y = toy_images(48)
    first = trained(small_cnn(seed=0, dropout=0.3), x, y, epochs=2)
    second = trained(small_cnn(seed=0, dropout=0.3), x, y, epochs=2)
    assert_same_weights(first, second)
    other = trained(small_cnn(seed=1, dropout=0.3), x, y, epochs=2)
    assert not np.array_equal(other.get_weights()[0], first.get_weights()[0])


# ---- activation fusion ------------------------------------------------------------------------


def fusion_model():
    return Sequential([Conv2D(1, 3, 3, padding=1), ReLU(), Conv2D(3, 2, 3), Sigmoid(), Flatten(),
                       Dense(72, 5), ReLU(), Dense(5, 3)], seed=0, input_shape=(1, 8, 8))


def test_fused_conv_and_dense_activations_match_running_the_layers_one_by_one(monkeypatch):
    x, _ = toy_images(6)
    y = np.array([0, 1, 2, 0, 1, 2])
    fused = fusion_model()
    for layer in fused.layers:
        if isinstance(layer, (ReLU, Sigmoid)):  # fusion means these never run on their own
            monkeypatch.setattr(layer, "forward", lambda *a, **k: pytest.fail("not fused"))
    fused_loss = CrossEntropy()
    fused_out = np.array(fused.forward(x, training=True))
    fused_loss(fused_out, y)
    fused.backward(fused_loss.backward())

    separate = fusion_model()
    out = x
    for layer in separate.layers:
        out = layer(out, training=True)
    separate_loss = CrossEntropy()
    separate_loss(np.array(out), y)
    dout = separate_loss.backward()
    for layer in reversed(separate.layers):
        dout = layer.backward(dout)

    np.testing.assert_allclose(fused_out, np.array(out), rtol=1e-6, atol=1e-7)
    separate_grads = dict(separate.named_parameters())
    for name, param in fused.named_parameters():
        np.testing.assert_allclose(param.grad, separate_grads[name].grad, rtol=1e-5, atol=1e-7,
                                   err_msg=name)


def test_a_layer_called_alone_after_a_fused_run_does_not_apply_the_next_layers_activation():
    x, _ = toy_images(4)
    model = fusion_model()
    model.forward(x)
    conv = model.layers[0]
    alone = np.array(conv(x))
    assert alone.min() < 0  # the ReLU that follows it in the model is not applied


# ---- moving between backends ----------------------------------------------------------------

OTHER_BACKENDS = [name for name in usable_backends() if name != "numpy"]


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_set_backend_between_runs_moves_weights_and_optimizer_state(backend, restore_backend):
    x, y = toy_images(8)
    fastcnn.set_backend("numpy")
    model = trained(small_cnn(), x, y, batch_size=8)
    if backend_is_simulated(backend):
        x, y = x[:2], y[:2]  # the CUDA simulator runs kernels in Python: two samples only
    on_numpy = model.predict(x)
    moments = model.parameters()[0].state["exp_avg"].copy()
    fastcnn.set_backend(backend)
    np.testing.assert_allclose(model.predict(x), on_numpy, atol=1e-5)
    weight = model.parameters()[0]
    assert np.array_equal(fastcnn.to_numpy(weight.state["exp_avg"]), moments)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, initial_epoch=model.epoch)  # resumes there
    assert model.epoch == 2
    assert not np.array_equal(fastcnn.to_numpy(weight.state["exp_avg"]), moments)
    trained_there = model.predict(x)
    fastcnn.set_backend("numpy")
    np.testing.assert_allclose(model.predict(x), trained_there, atol=1e-5)


# ---- initializers -------------------------------------------------------------------------------


LAYER_FACTORIES = {  # fan_in 72 and fan_out 144 for both
    "conv2d": (lambda init: Conv2D(8, 16, 3, init=init), (8, 10, 10)),
    "dense": (lambda init: Dense(72, 144, init=init), (72,)),
}


@pytest.mark.parametrize("kind", LAYER_FACTORIES)
@pytest.mark.parametrize("name, bound", [
    ("pytorch_default", 1 / math.sqrt(72)),
    ("he_uniform", math.sqrt(6 / 72)),
    ("glorot_uniform", math.sqrt(6 / (72 + 144))),
])
def test_uniform_initializers_fill_their_documented_range(kind, name, bound):
    make, input_shape = LAYER_FACTORIES[kind]
    layer = make(name)
    layer.build(input_shape, np.random.default_rng(0))
    weight = layer.params["weight"].numpy()
    assert np.abs(weight).max() <= bound
    assert np.abs(weight).max() > 0.97 * bound
    assert weight.std() == pytest.approx(bound / math.sqrt(3), rel=0.08)


def test_pytorch_default_bias_uses_the_weight_bound_and_keras_initializers_zero_it():
    torch_style = Dense(50, 400)
    torch_style.build((50,), np.random.default_rng(0))
    bias = torch_style.params["bias"].numpy()
    assert np.abs(bias).max() <= 1 / math.sqrt(50) and np.abs(bias).max() > 0.9 / math.sqrt(50)
    keras_style = Dense(50, 400, init="he_uniform")
    keras_style.build((50,), np.random.default_rng(0))
    assert not keras_style.params["bias"].numpy().any()


def test_uniform_a_b_initializer_fills_a_to_b():
    layer = Dense(100, 50, init=initializers.Uniform(0.1, 0.3))
    layer.build((100,), np.random.default_rng(0))
    weight = layer.params["weight"].numpy()
    assert weight.min() >= 0.1 and weight.max() <= 0.3
    assert weight.min() < 0.102 and weight.max() > 0.298
    with pytest.raises(ValueError, match="a < b"):
        initializers.Uniform(0.3, 0.1)


def test_constant_initializer_sets_a_fixed_kernel_and_refuses_a_wrong_shape():
    kernel = np.arange(9, dtype=np.float32).reshape(3, 3)
    layer = Conv2D(1, 1, 3, bias=False, init=kernel.reshape(1, 1, 3, 3))
    layer.build((1, 5, 5))
    assert np.array_equal(layer.params["weight"].numpy()[0, 0], kernel)
    with pytest.raises(ValueError, match="does not fit"):
        Conv2D(1, 2, 3, init=np.ones((4, 4))).build((1, 5, 5))
    with pytest.raises(ValueError, match="unknown initializer"):
        Conv2D(1, 2, 3, init="orthogonal")


def test_the_seed_fixes_the_initial_weights():
    assert_same_weights(small_cnn(seed=3), small_cnn(seed=3))
    assert not np.array_equal(small_cnn(seed=3).get_weights()[0], small_cnn(seed=4).get_weights()[0])


def test_unnamed_layers_are_named_by_position_like_torch_sequential():
    names = [name for name, _ in small_cnn().named_parameters()]
    assert names == ["0.weight", "0.bias", "4.weight", "4.bias", "6.weight", "6.bias"]
    with pytest.raises(ValueError, match="unique"):
        Sequential([Dense(2, 2, name="a"), Dense(2, 2, name="a")])


# ---- Keras fit semantics ----------------------------------------------------------------------


def test_calling_fit_again_trains_again_like_keras():
    x, y = toy_images(32)
    model = small_cnn().compile(Adam(lr=1e-2))
    first = model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    weights = model.get_weights()
    second = model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert first.epoch == second.epoch == [0] and len(second.history["loss"]) == 1
    assert model.epoch == 2 and model.optimizer.iterations == 4
    assert not np.array_equal(model.get_weights()[0], weights[0])


def test_initial_epoch_resumes_with_absolute_epoch_numbers():
    x, y = toy_images(32)
    model = small_cnn().compile(Adam(lr=1e-2))
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    seen = []

    class Epochs(Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(epoch)
    history = model.fit(x, y, epochs=5, batch_size=16, verbose=0, initial_epoch=model.epoch,
                        callbacks=[Epochs()])
    assert history.epoch == seen == [2, 3, 4] and model.epoch == 5


def test_fit_with_initial_epoch_at_or_past_epochs_trains_nothing():
    x, y = toy_images(16)
    model = small_cnn().compile(Adam(lr=1e-2))
    weights = model.get_weights()
    assert model.fit(x, y, epochs=2, initial_epoch=2, verbose=0).epoch == []
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights))


# ---- what predict returns -------------------------------------------------------------------------


def test_predict_returns_a_sigmoid_output_as_it_is():
    x, y = toy_images(12)
    model = Sequential([Flatten(), Dense(64, 4), Sigmoid()], seed=0, input_shape=(1, 8, 8))
    out = model.predict(x)
    np.testing.assert_allclose(out, np.array(model.forward(x)), atol=1e-7)
    assert out.min() > 0 and out.max() < 1 and not np.allclose(out.sum(axis=1), 1.0)
    fused = Sequential([Flatten(), Dense(64, 4, activation="sigmoid")], seed=0, input_shape=(1, 8, 8))
    np.testing.assert_allclose(fused.predict(x), out, atol=1e-6)
    assert not model.outputs_logits and not fused.outputs_logits
    assert Sequential([Flatten(), Dense(64, 4), fastcnn.Dropout(0.2)], input_shape=(1, 8, 8)).outputs_logits


# ---- progress output ---------------------------------------------------------------------------------


def test_verbose_auto_prints_one_line_per_epoch_when_output_is_redirected(capsys):
    x, y = toy_images(16)
    small_cnn().compile(Adam(lr=1e-2)).fit(x, y, epochs=2, batch_size=8)
    captured = capsys.readouterr()
    assert "\r" not in captured.out + captured.err
    lines = captured.out.splitlines()
    assert [line.split(" - ")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert "loss: " in lines[0] and "accuracy: " in lines[0]


def test_verbose_auto_shows_a_progress_bar_on_a_terminal(monkeypatch):
    from fastcnn.callbacks import resolve_verbose

    for stream in ("stdout", "stderr"):
        monkeypatch.setattr(f"sys.{stream}.isatty", lambda: True, raising=False)
    assert resolve_verbose("auto") == 1
    with pytest.raises(fastcnn.InputError, match="verbose must be 0"):
        resolve_verbose(3)


def test_predict_and_evaluate_skip_the_im2col_columns_and_match_the_forward_pass():
    """predict/evaluate run the convolutions without keeping cols (no backward follows);
    their outputs equal forward()'s, which keeps them, and a backward pass after predict
    says what is missing instead of reading stale columns."""
    x, y = toy_images(10)
    model = small_cnn(seed=0)
    model.compile("sgd", "cross_entropy")
    forward = np.array(model.forward(x))
    conv = next(layer for layer in model.layers if isinstance(layer, Conv2D))
    assert conv._saved[0] is not None
    probabilities = model.predict(x)
    assert conv._saved[0] is None
    expected = np.exp(forward - forward.max(axis=1, keepdims=True))
    np.testing.assert_allclose(probabilities, expected / expected.sum(axis=1, keepdims=True),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(RuntimeError, match="backward.*predict or evaluate"):
        conv.backward(np.zeros((10,) + conv.output_shape, np.float32))
    model.evaluate(x, y)
    model.fit(x, y, epochs=1, batch_size=5, verbose=0)  # training after inference still works
    assert conv._saved[0] is not None
