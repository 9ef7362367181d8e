"""`fastcnn serve` in a real browser: Debian's headless Chromium, driven by Playwright, opens the
page that `fastcnn serve model.npz` prints, draws a 7 on the canvas and reads the prediction."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading

import numpy as np
import pytest
from PIL import Image

import fastcnn
from conftest import REPO
from serve_helpers import (CHROMIUM_ARGS, chromium_executable, draw_seven, get_json,
                           small_trained_model, wait_for_prediction)

pytest.importorskip("fastapi", reason="fastcnn serve needs the serve extra (FastAPI, uvicorn)")
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="the browser test drives Chromium with Playwright (test extra)")

TIMEOUT_MS = 20_000


def chromium() -> str:
    executable = chromium_executable()
    if executable is None:
        pytest.skip("no Chromium on this machine: `apt-get install chromium` (Debian's package) "
                    "runs the page in a real browser")
    return executable


@pytest.fixture(scope="module")
def served_url(tmp_path_factory):
    """The URL that `python -m fastcnn serve model.npz --backend numpy` prints, for a
    pytorch_cnn trained briefly."""
    try:
        model = small_trained_model()
    except fastcnn.DatasetError as exc:
        pytest.skip(f"real MNIST images not found: {exc}")
    path = tmp_path_factory.mktemp("serve") / "model.npz"
    model.save(path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen([sys.executable, "-m", "fastcnn", "serve", str(path), "--backend", "numpy"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    printed = []
    try:
        while True:
            printed.append(lines.get(timeout=60))
            found = re.search(r"http://[\w.\[\]:]+/", printed[-1])
            if found:
                break
        yield found.group(0)
    except queue.Empty:
        pytest.fail("fastcnn serve printed no URL within 60 s:\n" + "".join(printed))
    finally:
        process.terminate()
        process.wait(timeout=30)


def message_says(page, words: str) -> None:
    page.wait_for_function(
        "words => { const m = document.getElementById('message'); "
        "return !m.hidden && m.textContent.includes(words); }", arg=words, timeout=TIMEOUT_MS)


def test_cli_serve_prints_the_url_of_the_page_on_the_chosen_backend(served_url):
    info = get_json(served_url + "api/info")
    assert (info["model"], info["dataset"], info["backend"]) == ("pytorch_cnn", "mnist", "numpy")
    assert info["convolutions"] == ["conv_1", "conv_2"]


def test_a_seven_drawn_in_chromium_gets_a_class_and_feature_maps(served_url, tmp_path):
    url, executable = served_url, chromium()
    classes = get_json(url + "api/info")["classes"]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url)
            page.wait_for_selector("body[data-ready=true]")

            page.click("#classify")  # the empty canvas
            message_says(page, "blank")

            draw_seven(page)
            predicted = wait_for_prediction(page)
            assert predicted in classes
            listed = page.locator("#top .class-name").all_text_contents()
            assert len(listed) == 5 and set(listed) <= set(classes)
            assert page.locator("#maps figure").count() == 2  # conv_1 and conv_2
            screenshot = tmp_path / "page.png"
            page.screenshot(path=str(screenshot), full_page=True)

            page.set_input_files("#file", files=[{"name": "notes.txt", "mimeType": "text/plain",
                                                  "buffer": b"these are not pixels"}])
            message_says(page, "not an image")
            huge = tmp_path / "huge.png"
            with open(huge, "wb") as handle:
                handle.truncate(50 * 2**20)
            page.set_input_files("#file", str(huge))
            message_says(page, "too large")
        finally:
            browser.close()
    pixels = np.asarray(Image.open(screenshot).convert("RGB"), dtype=np.float32)
    assert pixels.std() > 20, "the screenshot is blank"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100, "the screenshot shows almost nothing"
