"""fastcnn.plots: every plot is a real PNG of the requested size that shows something."""

import numpy as np
import pytest
from PIL import Image

import fastcnn
from fastcnn import plots
from fastcnn.callbacks import History

MISTAKE_RGB = np.array([0xD6, 0x27, 0x28])


def assert_png(path, size):
    """PIL reads it as a PNG of exactly ``size``, in colour, and it is not blank."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == tuple(size)
        assert image.mode in ("RGB", "RGBA")
        pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    assert pixels.std() > 0
    return pixels


def red_pixels(pixels) -> int:
    return int((np.abs(pixels - MISTAKE_RGB).sum(axis=2) < 40).sum())


@pytest.fixture(autouse=True)
def numpy_backend():
    with fastcnn.use_backend("numpy"):
        yield


HISTORY = {"loss": [1.2, 0.6, 0.4], "accuracy": [0.6, 0.8, 0.9],
           "val_loss": [0.9, 0.7, 0.65], "val_accuracy": [0.7, 0.78, 0.8]}


@pytest.mark.parametrize("size", [(640, 300), (333, 217)])
def test_learning_curves_are_a_png_of_the_requested_size(tmp_path, size):
    path = plots.plot_learning_curves(HISTORY, tmp_path / "curves.png", title="t", size=size)
    assert path == tmp_path / "curves.png"
    assert_png(path, size)


def test_learning_curves_accept_a_history_and_training_logs_without_validation(tmp_path):
    history = History()
    for epoch, (loss, accuracy) in enumerate(zip(HISTORY["loss"], HISTORY["accuracy"])):
        history.on_epoch_end(epoch, {"loss": loss, "accuracy": accuracy})
    assert_png(plots.plot_learning_curves(history, tmp_path / "a" / "b.png"), (900, 380))
    many = {"loss": list(np.linspace(2, 0.1, 500))}  # the fixed-kernel run: iterations, loss only
    assert_png(plots.plot_learning_curves(many, tmp_path / "c.png", xlabel="iteration"), (900, 380))


def test_learning_curves_refuse_a_history_without_loss_or_accuracy(tmp_path):
    with pytest.raises(ValueError, match="no loss or accuracy"):
        plots.plot_learning_curves({"val_roc_auc": [0.9]}, tmp_path / "x.png")
    with pytest.raises(TypeError):
        plots.plot_learning_curves([1, 2, 3], tmp_path / "x.png")


def test_kfold_curves_and_fold_score_box_plot(tmp_path):
    assert_png(plots.plot_kfold_curves([HISTORY] * 5, tmp_path / "folds.png", size=(700, 300)),
               (700, 300))
    pixels = assert_png(plots.plot_fold_scores([0.981, 0.985, 0.987, 0.979, 0.99],
                                               tmp_path / "box.png", reported=0.98677), (420, 380))
    assert red_pixels(pixels) > 0  # the article's mean, dashed red


def test_prediction_grid_marks_mistakes_in_red(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (10, 28, 28), dtype=np.uint8)
    labels = np.arange(10)
    right = assert_png(plots.plot_predictions(images, labels, labels, tmp_path / "ok.png",
                                              columns=5, size=(500, 280)), (500, 280))
    predicted = labels.copy()
    predicted[3] = 4
    wrong = assert_png(plots.plot_predictions(images[:, None], labels, predicted, tmp_path / "bad.png",
                                              class_names=fastcnn.datasets.class_names("fashion-mnist"),
                                              columns=5, size=(500, 280)), (500, 280))
    assert red_pixels(right) == 0
    assert red_pixels(wrong) > 20


def test_prediction_grid_takes_scores_and_checks_lengths(tmp_path):
    images = np.zeros((4, 784), dtype=np.float32)
    images[:, 300:340] = 1
    scores = np.eye(10, dtype=np.float32)[[1, 2, 3, 4]]
    assert_png(plots.plot_predictions(images, [1, 2, 3, 5], scores, tmp_path / "p.png"), (4 * 105, 120))
    with pytest.raises(ValueError, match="as many"):
        plots.plot_predictions(images, [1, 2], [1, 2, 3, 4], tmp_path / "q.png")


def test_layer_outputs_follow_the_model_layer_by_layer():
    model = fastcnn.zoo.get("keras_kfold_cnn", seed=0)
    image = np.random.default_rng(1).random((28, 28), dtype=np.float32)
    outputs = plots.layer_outputs(model, image)
    assert [name for name, _ in outputs] == [layer.name for layer in model.layers]
    assert [value.shape for _, value in outputs] == [layer.output_shape for layer in model.layers]
    np.testing.assert_allclose(outputs[-1][1], model.predict(image[None])[0], rtol=1e-5, atol=1e-6)
    assert len(plots.layer_outputs(model, image[None, None], upto=1)) == 2


def test_feature_maps_of_the_fixed_kernel_show_input_conv_and_pool(tmp_path):
    model = fastcnn.zoo.get("fixed_kernel_cnn", seed=0)
    image = np.zeros((28, 28), dtype=np.uint8)
    image[6:22, 12:16] = 255
    # one row of three panels: input 28x28, conv 26x26, pool 13x13
    assert_png(plots.plot_feature_maps(model, image, tmp_path / "fixed.png"), (450, 165))
    conv, pool = plots.layer_outputs(model, image, upto=1)
    assert conv[1].shape == (1, 26, 26) and pool[1].shape == (1, 13, 13)


def test_feature_maps_of_a_multichannel_conv_by_layer_name(tmp_path):
    model = fastcnn.zoo.get("pytorch_cnn", seed=0)
    image = np.random.default_rng(2).random((1, 28, 28)).astype(np.float32)
    path = plots.plot_feature_maps(model, image, tmp_path / "maps.png", layers=["conv_1", "max_pool2d_1"],
                                   max_channels=4, size=(600, 450))
    assert_png(path, (600, 450))
    with pytest.raises(ValueError, match="no layer 'nope'"):
        plots.plot_feature_maps(model, image, tmp_path / "x.png", layers=["nope"])
    with pytest.raises(ValueError, match="not feature maps"):
        plots.plot_feature_maps(model, image, tmp_path / "x.png", layers=["linear_1"])
    with pytest.raises(ValueError, match="no Conv2D"):
        plots.plot_feature_maps(fastcnn.zoo.get("numpy_mlp", seed=0), image, tmp_path / "x.png")


def test_confusion_matrix_heatmap(tmp_path):
    matrix = fastcnn.metrics.confusion_matrix([0, 1, 2, 2, 1], [0, 2, 2, 2, 1], 3)
    assert_png(plots.plot_confusion_matrix(matrix, tmp_path / "cm.png", class_names="abc"), (560, 500))
    with pytest.raises(ValueError, match="square"):
        plots.plot_confusion_matrix(np.zeros((2, 3)), tmp_path / "x.png")


def test_benchmark_bars_group_by_model_and_backend(tmp_path):
    rows = [{"group": group, "backend": backend, "samples_per_s": value * scale}
            for group, scale in (("pytorch_cnn", 1), ("numpy_mlp", 30))
            for backend, value in (("numpy", 150.0), ("numba", 1200.0), ("cuda", 40000.0))]
    assert_png(plots.plot_benchmark(rows, tmp_path / "bench.png", title="t"), (900, 450))
    named = [{"name": "conv2d_forward", "backend": "numba", "samples_per_s": 10.0, "extra": 1},
             {"name": "startup", "backend": "numba", "samples_per_s": None}]
    assert_png(plots.plot_benchmark(named, tmp_path / "one.png", size=(300, 200)), (300, 200))


def test_benchmark_and_sizes_refuse_bad_input(tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        plots.plot_benchmark([], tmp_path / "x.png")
    with pytest.raises(ValueError, match="at least one"):
        plots.plot_benchmark([{"group": "a", "backend": "numpy", "samples_per_s": None}],
                             tmp_path / "x.png")
    with pytest.raises(ValueError, match="samples_per_s"):
        plots.plot_benchmark([{"group": "a", "backend": "numpy"}], tmp_path / "x.png")
    with pytest.raises(ValueError, match="16x16"):
        plots.plot_learning_curves(HISTORY, tmp_path / "x.png", size=(10, 10))


def test_plots_is_reachable_from_the_package():
    assert fastcnn.plots is plots
