"""Bad inputs fail loudly with errors that say what was wrong; the documented
conversions (uint8, missing channel axis, flat rows, channels-last) are accepted."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fastcnn
from conftest import HAS_GPU
from fastcnn import BackendError, CheckpointError, InputError
from helpers import numpy_backend, run_python, small_cnn, toy_images, trained  # noqa: F401

pytestmark = pytest.mark.usefixtures("numpy_backend")


@pytest.fixture
def model():
    return fastcnn.zoo.pytorch_cnn(seed=0).compile("adam", "cross_entropy")


def images(n=4, dtype=np.float32):
    return np.random.default_rng(0).random((n, 1, 28, 28)).astype(dtype)


# ---- images ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 3, 28, 28), (4, 27, 27), (4, 780), (4, 1, 28, 28, 1)])
def test_images_of_the_wrong_shape_are_refused_with_the_expected_shape(model, shape):
    with pytest.raises(InputError, match=r"do not fit a model expecting \(N, 1, 28, 28\)"):
        model.predict(np.zeros(shape, np.float32))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_])
def test_integer_or_bool_images_are_refused_as_ambiguous(model, dtype):
    with pytest.raises(InputError, match=f"dtype {np.dtype(dtype)} are ambiguous.*uint8"):
        model.predict(np.ones((2, 1, 28, 28), dtype))


@pytest.mark.parametrize("bad, word", [(np.nan, "NaN"), (np.inf, "infinite"), (-np.inf, "infinite")])
def test_nan_or_infinite_images_are_refused(model, bad, word):
    x = images()
    x[1, 0, 3, 4] = bad
    with pytest.raises(InputError, match=f"1 {word}"):
        model.fit(x, [0, 1, 2, 3], verbose=0)


def test_an_empty_batch_is_refused(model):
    with pytest.raises(InputError, match="at least one sample"):
        model.predict(np.zeros((0, 1, 28, 28), np.float32))


# ---- labels ------------------------------------------------------------------------------


@pytest.mark.parametrize("labels, bad", [([0, 1, 10, 3], "[10]"), ([0, -1, 2, 3], "[-1]")])
def test_out_of_range_labels_are_refused_naming_them(model, labels, bad):
    with pytest.raises(InputError, match=r"labels must be in \[0, 10\).*" + bad.replace("[", r"\[")):
        model.fit(images(), np.array(labels), verbose=0)


def test_a_label_count_that_differs_from_the_input_count_is_refused(model):
    with pytest.raises(InputError, match="got 4 inputs but labels of shape \\(3,\\)"):
        model.fit(images(), [0, 1, 2], verbose=0)


def test_two_dimensional_labels_must_be_one_hot(model):
    soft = np.full((4, 10), 0.1, np.float32)
    with pytest.raises(InputError, match="one-hot"):
        model.fit(images(), soft, verbose=0)


@pytest.mark.parametrize("labels, word", [([0.5, 1, 2, 3], "whole class numbers"),
                                          (["a", "b", "c", "d"], "not class indices")])
def test_fractional_or_string_labels_are_refused(model, labels, word):
    with pytest.raises(InputError, match=word):
        model.fit(images(), np.array(labels), verbose=0)


def test_one_hot_and_whole_float_labels_train_like_class_indices():
    x, y = toy_images(16)
    by_index = trained(small_cnn(), x, y)
    by_one_hot = trained(small_cnn(), x, np.eye(4)[y])
    by_float = trained(small_cnn(), x, y.astype(np.float64))
    for other in (by_one_hot, by_float):
        for a, b in zip(by_index.get_weights(), other.get_weights()):
            assert np.array_equal(a, b)


# ---- accepted conversions ----------------------------------------------------------------


def test_uint8_images_are_scaled_by_1_over_255(model):
    raw = np.random.default_rng(1).integers(0, 256, (3, 1, 28, 28), dtype=np.uint8)
    scaled = raw.astype(np.float32) / np.float32(255)
    assert np.array_equal(model.predict(raw), model.predict(scaled))
    assert not np.allclose(model.predict(raw), model.predict(raw.astype(np.float32)))


@pytest.mark.parametrize("layout", ["N,28,28", "N,784 rows", "N,28,28,1"])
def test_single_channel_images_are_accepted_without_a_channel_axis_flat_or_channels_last(model,
                                                                                          layout):
    x = images(3)
    other = {"N,28,28": x[:, 0], "N,784 rows": x.reshape(3, 784), "N,28,28,1": x[:, 0, :, :, None]}
    assert np.array_equal(model.predict(other[layout]), model.predict(x))


def test_channels_last_colour_images_are_transposed_to_channels_first():
    x, y = toy_images(6, channels=3)
    model = trained(small_cnn(channels=3), x, y)
    nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    assert np.array_equal(model.predict(nhwc), model.predict(x))
    flat = x.reshape(6, -1)
    assert np.array_equal(model.predict(flat), model.predict(x))


def test_float64_images_are_used_as_they_are(model):
    x = images(2)
    assert np.array_equal(model.predict(x.astype(np.float64)), model.predict(x))


def test_float_pixels_in_0_to_255_are_used_with_a_warning_shown_once():
    done = run_python("""
        import warnings
        import numpy as np
        import fastcnn
        from helpers import small_cnn
        model = small_cnn()
        x = np.random.default_rng(0).integers(0, 256, (4, 1, 8, 8)).astype(np.float32)
        for _ in range(3):
            model.predict(x)
        model.predict(x / 255)
    """, env={"FASTCNN_BACKEND": "numpy"})
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("UnscaledInputWarning") == 1, done.stderr
    assert "look like unscaled 0-255 pixels" in done.stderr and "divide them by 255" in done.stderr


@pytest.mark.parametrize("scale", ["0..1", "standardised", "uint8"])
def test_scaled_standardised_or_uint8_images_give_no_unscaled_warning(model, scale):
    raw = np.random.default_rng(2).integers(0, 256, (3, 1, 28, 28), dtype=np.uint8)
    x = {"0..1": raw / 255, "standardised": (raw / 255 - 0.1307) / 0.3081, "uint8": raw}[scale]
    with warnings.catch_warnings():
        warnings.simplefilter("error", fastcnn.inputs.UnscaledInputWarning)
        model.predict(x)


# ---- training that blows up ----------------------------------------------------------------


def test_a_learning_rate_that_makes_the_loss_nan_raises_floating_point_error(model):
    x = images(32)
    y = np.arange(32) % 10
    model.compile(fastcnn.optim.SGD(lr=1e6), "cross_entropy")
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match="lower the learning rate"):
        model.fit(x, y, epochs=3, batch_size=8, verbose=0)


# ---- backends ------------------------------------------------------------------------------


def test_an_unknown_backend_name_is_refused_listing_the_choices():
    with pytest.raises(BackendError, match="unknown backend 'nope'.*auto, naive, numpy, numba, cython, cuda"):
        fastcnn.set_backend("nope")
    with pytest.raises(BackendError, match="unknown backend"):
        with fastcnn.use_backend("nope"):
            pass


@pytest.mark.skipif(HAS_GPU, reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_or_simulator_raises_backend_error_with_the_reason():
    result = run_python("""
        import fastcnn
        try:
            fastcnn.set_backend("cuda")
        except fastcnn.BackendError as exc:
            print("refused:", exc)
        print("active:", fastcnn.backend_name())
        print("listed:", [s.reason for s in fastcnn.available_backends() if s.name == "cuda"])
        """, unset=("NUMBA_ENABLE_CUDASIM",))
    assert result.returncode == 0, result.stderr
    refused = next(line for line in result.stdout.splitlines() if line.startswith("refused:"))
    assert "backend 'cuda' cannot run on this machine: " in refused
    reason = refused.split("cannot run on this machine: ", 1)[1]
    assert len(reason.split(". Pick another")[0]) > 10  # a real reason, not an empty one
    assert "active: cuda" not in result.stdout
    assert "listed: ['']" not in result.stdout


def test_available_backends_gives_a_reason_for_each_unusable_backend():
    statuses = fastcnn.available_backends()
    assert [s.name for s in statuses] == ["naive", "numpy", "numba", "cython", "cuda"]
    for status in statuses:
        assert status.available == (status.reason == ""), status


# ---- names ---------------------------------------------------------------------------------


def test_unknown_optimizer_loss_metric_and_model_names_are_refused_listing_the_choices(model):
    with pytest.raises(ValueError, match="unknown optimizer 'no-such-optimizer'") as caught:
        model.compile("no-such-optimizer")
    assert str(caught.value).endswith(", ".join(fastcnn.optim.OPTIMIZERS))  # whatever is registered
    assert {"sgd", "adam", "adamw", "adadelta", "rmsprop"} <= set(fastcnn.optim.OPTIMIZERS)
    with pytest.raises(ValueError, match="unknown loss 'hinge'.*cross_entropy"):
        model.compile("adam", "hinge")
    with pytest.raises(ValueError, match="unknown metrics \\['f1'\\]"):
        model.compile("adam", metrics=["f1"])
    with pytest.raises(ValueError, match="unknown model 'resnet'.*pytorch_cnn"):
        fastcnn.zoo.get("resnet")
    with pytest.raises(ValueError, match="unknown model"):
        fastcnn.zoo.recipe("resnet")


def test_fit_before_compile_is_refused():
    x, y = toy_images(4)
    with pytest.raises(RuntimeError, match="compile"):
        small_cnn().fit(x, y, verbose=0)


# ---- state dicts and checkpoints ------------------------------------------------------------


def test_load_state_dict_refuses_missing_and_unexpected_names(model):
    state = model.state_dict()
    state["linear_3.weight"] = state.pop("linear_2.weight")
    with pytest.raises(InputError, match=r"missing \['linear_2.weight'\], unexpected \['linear_3.weight'\]"):
        model.load_state_dict(state)


def test_load_state_dict_non_strict_loads_the_names_that_match(model):
    state = {"linear_2.bias": np.arange(10, dtype=np.float32), "extra.weight": np.zeros(3)}
    model.load_state_dict(state, strict=False)
    assert np.array_equal(model.state_dict()["linear_2.bias"], np.arange(10))


def test_load_state_dict_refuses_a_wrong_shape(model):
    state = model.state_dict()
    state["conv_1.weight"] = np.zeros((32, 1, 5, 5), np.float32)
    with pytest.raises(InputError, match=r"conv_1.weight: the state dict holds shape \(32, 1, 5, 5\), "
                                         r"the model needs \(32, 1, 3, 3\)"):
        model.load_state_dict(state)


@pytest.fixture
def saved(tmp_path):
    x, y = toy_images(8)
    path = tmp_path / "model.npz"
    trained(small_cnn(), x, y).save(path)
    return path


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_a_truncated_checkpoint_raises_checkpoint_error(saved, keep):
    data = saved.read_bytes()
    saved.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        fastcnn.load_model(saved)


def test_a_corrupted_checkpoint_raises_checkpoint_error(saved):
    data = bytearray(saved.read_bytes())
    data[40:400] = bytes(360)
    saved.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        fastcnn.load_model(saved)


def test_a_missing_or_foreign_file_raises_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="no saved model"):
        fastcnn.load_model(tmp_path / "absent.npz")
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a fastcnn model"):
        fastcnn.load_model(tmp_path / "other.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(CheckpointError):
        fastcnn.load_model(tmp_path / "text.npz")


# ---- arguments validated at the API boundary ----------------------------------------------------


@pytest.mark.parametrize("call, message", [
    (lambda m, x, y: m.fit(x, y, batch_size=2.5, verbose=0), "batch_size must be a whole number >= 1, got 2.5"),
    (lambda m, x, y: m.fit(x, y, batch_size=0, verbose=0), "batch_size must be >= 1, got 0"),
    (lambda m, x, y: m.fit(x, y, epochs=1.5, verbose=0), "epochs must be a whole number >= 0, got 1.5"),
    (lambda m, x, y: m.fit(x, y, epochs="3", verbose=0), "epochs must be a whole number"),
    (lambda m, x, y: m.fit(x, y, initial_epoch=-1, verbose=0), "initial_epoch must be >= 0"),
    (lambda m, x, y: m.predict(x, batch_size=0), "batch_size must be >= 1, got 0"),
    (lambda m, x, y: m.evaluate(x, y, batch_size=1.5), "batch_size must be a whole number"),
    (lambda m, x, y: m.fit(x[:2], y[:2], validation_split=0.9, verbose=0),
     "validation_split=0.9 of 2 samples leaves no training samples"),
    (lambda m, x, y: m.fit(x, y, validation_data=(x,), verbose=0),
     r"validation_data must be a pair \(x_val, y_val\), got a tuple of 1"),
    (lambda m, x, y: m.fit(x, y, validation_data=x, verbose=0),
     r"validation_data must be a pair \(x_val, y_val\), got ndarray"),
    (lambda m, x, y: m.fit(x, y, verbose=5), "verbose must be 0"),
])
def test_bad_arguments_are_refused_at_the_api_boundary_in_one_clear_error(call, message):
    x, y = toy_images(8)
    model = small_cnn().compile("adam")
    with pytest.raises(InputError, match=message):
        call(model, x, y)
    assert model.epoch == 0


def test_metrics_given_as_one_name_is_one_metric():
    model = small_cnn().compile("adam", metrics="accuracy")
    assert model.metrics == ["accuracy"]
    assert small_cnn().compile("adam", metrics="auc").metrics == ["roc_auc"]
