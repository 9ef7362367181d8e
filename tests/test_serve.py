"""fastcnn serve's API on a live local server: classification, class names, bad uploads,
concurrent requests."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastcnn
from fastcnn.cli import EXIT_ERROR, main
from fastcnn.datasets.image import prepare_digit

pytest.importorskip("fastapi", reason="fastcnn serve needs the serve extra (FastAPI, uvicorn)")
pytest.importorskip("uvicorn", reason="fastcnn serve needs the serve extra (FastAPI, uvicorn)")

from fastcnn.serve import MAX_UPLOAD_BYTES, BackgroundServer, create_app  # noqa: E402
from serve_helpers import get_json, mnist_test_images, png_bytes, post  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    try:
        return mnist_test_images(12)
    except fastcnn.DatasetError as exc:
        pytest.skip(f"real MNIST images not found: {exc}")


def predicted(model, images):
    """model.predict of the images as the page prepares them (cropped, scaled, centred)."""
    prepared = np.stack([prepare_digit(image) for image in images])
    return model.predict(prepared.astype(np.float32)[:, None] / 255)


@pytest.fixture(scope="module")
def served():
    """(model, base URL) of pytorch_cnn (seeded weights) served from a thread."""
    model = fastcnn.zoo.get("pytorch_cnn", seed=4)
    with BackgroundServer(create_app(model)) as server:
        yield model, server.url


def test_the_page_and_its_assets_are_served_without_internet_links(served):
    import urllib.request

    _, url = served
    with urllib.request.urlopen(url) as response:
        page = response.read().decode()
    assert '<canvas id="canvas"' in page
    for asset in ("static/app.js", "static/style.css"):
        with urllib.request.urlopen(url + asset) as response:
            text = response.read().decode()
        assert "http://" not in text and "https://" not in text
    assert "http://" not in page and "https://" not in page


def test_a_digit_gets_its_top_classes_and_the_feature_maps_of_every_convolution(served, digits):
    model, url = served
    images, _ = digits
    status, answer = post(url + "api/classify", png_bytes(255 - images[0]))  # dark ink on white
    assert status == 200
    expected = predicted(model, images[:1])[0]
    np.testing.assert_allclose(answer["probabilities"], expected, rtol=1e-5, atol=1e-6)
    assert [entry["index"] for entry in answer["top"]] == list(np.argsort(expected)[::-1][:5])
    assert answer["top"][0]["name"] == str(answer["top"][0]["index"])
    assert [(m["layer"], m["shape"]) for m in answer["feature_maps"]] == \
        [("conv_1", [32, 28, 28]), ("conv_2", [64, 14, 14])]
    assert all(m["image"].startswith("data:image/png;base64,") for m in answer["feature_maps"])


def test_info_names_the_model_its_classes_and_backend(served):
    _, url = served
    info = get_json(url + "api/info")
    assert info["model"] == "pytorch_cnn" and info["dataset"] == "mnist"
    assert info["classes"] == list("0123456789")
    assert info["backend"] == fastcnn.backend_name()


def test_the_model_s_own_class_names_are_used(digits):
    model = fastcnn.Sequential([fastcnn.Flatten(), fastcnn.Dense(784, 10)], seed=0,
                               input_shape=(1, 28, 28), name="mine")  # no zoo name to go by
    model.data_info = fastcnn.datasets.data_info("kmnist")
    hiragana = ["\u304a", "\u304d", "\u3059", "\u3064", "\u306a", "\u306f", "\u307e", "\u3084",
                "\u308c", "\u3092"]
    with BackgroundServer(create_app(model)) as server:
        info = get_json(server.url + "api/info")
        assert (info["dataset"], info["classes"]) == ("kmnist", hiragana)
        status, answer = post(server.url + "api/classify", png_bytes(digits[0][1]))
    assert status == 200 and answer["top"][0]["name"] in hiragana


def test_without_saved_names_a_zoo_model_gets_its_tutorial_dataset_s():
    app = create_app(fastcnn.zoo.get("kmnist_cnn", seed=0))
    assert app.state.classifier.class_names[0] == "\u304a"
    fashion = create_app(fastcnn.zoo.get("pytorch_cnn", seed=0), dataset="fashion-mnist")
    assert fashion.state.classifier.class_names[9] == "Ankle boot"


@pytest.mark.parametrize("body,status,words", [
    (b"", 400, "empty"),
    (b"%PDF-1.4 this is no image", 400, "not an image"),
    (png_bytes(np.full((40, 40), 255, np.uint8)), 400, "blank"),
    (png_bytes(np.zeros((40, 40), np.uint8)), 400, "blank"),
], ids=["empty upload", "not an image", "empty white canvas", "empty black canvas"])
def test_a_bad_upload_gets_a_message_not_a_stack_trace(served, body, status, words):
    _, url = served
    got, answer = post(url + "api/classify", body)
    assert got == status and words in answer["error"] and "Traceback" not in answer["error"]


def test_a_50_mb_upload_is_refused_with_a_message(served):
    _, url = served
    status, answer = post(url + "api/classify", bytes(50 * 2**20))
    assert status == 413 and "too large" in answer["error"]
    assert f"{MAX_UPLOAD_BYTES // 2**20} MB" in answer["error"]


def test_concurrent_requests_each_get_their_own_answer(served, digits):
    model, url = served
    images, _ = digits
    expected = predicted(model, images)
    bodies = [png_bytes(image) for image in images]
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda body: post(url + "api/classify", body), bodies * 2))
    for index, (status, answer) in enumerate(answers):
        assert status == 200
        np.testing.assert_allclose(answer["probabilities"], expected[index % len(images)],
                                   rtol=1e-5, atol=1e-6)


def test_cli_serve_refuses_a_model_that_does_not_take_28x28_images(tmp_path, capsys):
    model = fastcnn.Sequential([fastcnn.Flatten(), fastcnn.Dense(16, 10)], seed=0,
                               input_shape=(1, 4, 4))
    model.save(tmp_path / "small.npz")
    assert main(["serve", str(tmp_path / "small.npz")]) == EXIT_ERROR
    assert "28x28" in capsys.readouterr().err


def test_cli_serve_on_a_port_in_use_is_a_one_line_error(tmp_path, capsys):
    import socket

    fastcnn.zoo.get("keras_kfold_cnn", seed=0).save(tmp_path / "model.npz")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", str(tmp_path / "model.npz"), "--port", str(port)]) == EXIT_ERROR
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
