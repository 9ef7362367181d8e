"""Shared by the serve tests: models, PNG bytes and plain HTTP calls to a live server."""

from __future__ import annotations

import io
import json
import os
import shutil
import urllib.error
import urllib.request

import numpy as np
from PIL import Image

import fastcnn


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def mnist_test_images(count: int):
    """The first ``count`` MNIST test images, uint8 (count, 28, 28), and their labels."""
    x, y = fastcnn.datasets.load("mnist", "test", download=False, progress=False)
    return x[:count], y[:count]


def small_trained_model(seed: int = 0):
    """pytorch_cnn after one epoch on 2,000 MNIST training images (about 10 s), on the cython
    backend where it runs: compiled at install, it never waits for a cold JIT cache."""
    x, y = fastcnn.datasets.load("mnist", "train", download=False, progress=False)
    usable = {status.name for status in fastcnn.available_backends() if status.available}
    with fastcnn.use_backend("cython" if "cython" in usable else fastcnn.backend_name()):
        model = fastcnn.zoo.get("pytorch_cnn", seed=seed)
        model.compile(fastcnn.optim.Adam(lr=1e-3), "cross_entropy")
        model.fit(x[:2000], y[:2000], epochs=1, batch_size=64, verbose=0)
    return model


def post(url: str, body: bytes) -> tuple[int, dict]:
    """(HTTP status, JSON answer) of POSTing ``body`` to ``url``."""
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/octet-stream"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
"""Offline, sandbox-free headless flags: the browser contacts nothing but the page."""


def chromium_executable() -> str | None:
    """Debian's Chromium (apt-get install chromium), never a browser Playwright downloads;
    $FASTCNN_CHROMIUM names another. None when there is none."""
    for candidate in (os.environ.get("FASTCNN_CHROMIUM"), "/usr/bin/chromium",
                      shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def draw_seven(page) -> None:
    """Drag the mouse over the page's canvas in the shape of a 7 (bar, then stem)."""
    box = page.locator("#canvas").bounding_box()

    def at(fx, fy):
        return box["x"] + fx * box["width"], box["y"] + fy * box["height"]

    page.mouse.move(*at(0.25, 0.22))
    page.mouse.down()
    page.mouse.move(*at(0.75, 0.22), steps=8)
    page.mouse.move(*at(0.42, 0.85), steps=12)
    page.mouse.up()


def wait_for_prediction(page) -> str:
    """The predicted class's name, once the top classes and every feature map are shown."""
    page.wait_for_selector("#prediction:not([hidden])")
    page.wait_for_function("[...document.querySelectorAll('#maps img')]"
                           ".every(image => image.complete && image.naturalWidth > 0)")
    return page.text_content("#predicted")
