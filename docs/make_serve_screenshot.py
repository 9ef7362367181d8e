"""Take the README's screenshot of `fastcnn serve` (docs/images/serve_page.png): a 7 drawn on
the page of a properly trained pytorch_cnn, in Debian's headless Chromium.

    FASTCNN_DATA=/path/to/datasets python docs/make_serve_screenshot.py [--epochs 1] [--model m.npz]

Trains pytorch_cnn on the 60,000 MNIST training images (one epoch: about a minute on
two cores, about 98% test accuracy), serves it from a thread and draws a 7 with the
mouse. Needs the serve and test extras and `apt-get install chromium`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import fastcnn
from fastcnn.serve import BackgroundServer, create_app

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from serve_helpers import CHROMIUM_ARGS, chromium_executable, draw_seven, wait_for_prediction  # noqa: E402


def trained_model(epochs: int):
    (x, y), (x_test, y_test) = fastcnn.datasets.load("mnist")
    model = fastcnn.zoo.get("pytorch_cnn", seed=0)
    model.compile(fastcnn.optim.Adam(lr=1e-3), "cross_entropy")
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=2)
    print(f"test accuracy {model.evaluate(x_test, y_test)['accuracy']:.2%}")
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--model", type=Path, default=None,
                        help="a saved model to show instead of training one")
    parser.add_argument("--save-model", type=Path, default=None, help="keep the trained model there")
    parser.add_argument("--out", type=Path, default=HERE / "images" / "serve_page.png")
    args = parser.parse_args()
    executable = chromium_executable()
    if executable is None:
        sys.exit("no Chromium: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    model = fastcnn.load_model(args.model) if args.model else trained_model(args.epochs)
    if args.save_model:
        model.save(args.save_model)
    with BackgroundServer(create_app(model)) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        page.goto(server.url)
        page.wait_for_selector("body[data-ready=true]")
        draw_seven(page)
        print(f"predicted: {wait_for_prediction(page)}")
        page.screenshot(path=str(args.out), full_page=True)
        browser.close()
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
