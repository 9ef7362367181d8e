"""Draw the README's example pictures into docs/images/ from short real training runs.

    FASTCNN_DATA=/path/to/datasets python docs/make_images.py [--backend numba] [--out docs/images]

Trains keras_kfold_cnn on a few thousand MNIST images (learning curves, test
predictions, confusion matrix), runs its 5-fold cross-validation briefly (fold
curves and score box plot), shows the fixed-kernel tutorial's feature maps, and
times a few training batches on every CPU backend that runs here (benchmark
bars). Takes a few minutes on a laptop.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import fastcnn
from fastcnn import plots
from fastcnn.datasets import kfold, load
from fastcnn.metrics import confusion_matrix
from fastcnn.zoo import get, recipe

HERE = Path(__file__).resolve().parent


def trained_model(x, y, epochs: int):
    model = get("keras_kfold_cnn", seed=0)
    model.compile(recipe("keras_kfold_cnn").make_optimizer(), "cross_entropy")
    history = model.fit(x, y, epochs=epochs, batch_size=32, validation_split=0.2, verbose=2)
    return model, history


def fold_runs(x, y, epochs: int):
    histories, scores = [], []
    for fold, (train, val) in enumerate(kfold(len(x), 5, seed=1)):
        model = get("keras_kfold_cnn", seed=fold)
        model.compile(recipe("keras_kfold_cnn").make_optimizer(), "cross_entropy")
        histories.append(model.fit(x[train], y[train], epochs=epochs, batch_size=32,
                                   validation_data=(x[val], y[val]), verbose=0))
        scores.append(model.evaluate(x[val], y[val])["accuracy"])
        print(f"fold {fold + 1}: accuracy {scores[-1]:.2%}")
    return histories, scores


def throughput(backends, x, y, images: int = 256) -> list[dict]:
    """Training samples/s of two zoo models on each backend (one warm-up batch first)."""
    rows = []
    for name in ("keras_kfold_cnn", "numpy_mlp"):
        for backend in backends:
            with fastcnn.use_backend(backend):
                model = get(name, seed=0)
                model.compile(recipe(name).make_optimizer(), recipe(name).loss)
                model.fit(x[:64], y[:64], epochs=1, batch_size=64, verbose=0)  # JIT warm-up
                start = time.perf_counter()
                model.fit(x[:images], y[:images], epochs=1, batch_size=64, verbose=0,
                          initial_epoch=0)
                rate = images / (time.perf_counter() - start)
            rows.append({"group": name, "backend": backend, "samples_per_s": rate})
            print(f"{name} on {backend}: {rate:,.0f} samples/s")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "images"))
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--train", type=int, default=3000, help="training images")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    out = Path(args.out)
    backend = fastcnn.set_backend(args.backend)
    print(f"drawing into {out} with the {backend} backend")
    (x, y), (x_test, y_test) = load("mnist")
    x, y = x[:args.train], y[:args.train]

    model, history = trained_model(x, y, args.epochs)
    plots.plot_learning_curves(history, out / "learning_curves.png",
                               title=f"keras_kfold_cnn, {len(x):,} MNIST images")
    predicted = model.predict_classes(x_test[:2000])
    plots.plot_predictions(x_test[:24], y_test[:24], predicted[:24], out / "predictions.png",
                           title="MNIST test images")
    plots.plot_confusion_matrix(confusion_matrix(y_test[:2000], predicted, 10),
                                out / "confusion_matrix.png")

    histories, scores = fold_runs(x[:1000], y[:1000], epochs=2)
    plots.plot_kfold_curves(histories, out / "kfold_curves.png", title="keras_kfold_cnn, 5 folds")
    plots.plot_fold_scores(scores, out / "kfold_scores.png",
                           reported=recipe("keras_kfold_cnn").reported["mean_accuracy"])

    with fastcnn.use_backend("numpy"):  # the reference backend draws the fixed kernel's maps
        plots.plot_feature_maps(get("fixed_kernel_cnn", seed=0), x_test[0],
                                out / "feature_maps.png", title="fixed 3x3 edge kernel")

    usable = [s.name for s in fastcnn.available_backends()
              if s.available and s.name in ("numpy", "numba", "cython")]
    plots.plot_benchmark(throughput(usable, x, y), out / "benchmark.png",
                         title="training throughput on this machine (batch 64)")
    for path in sorted(out.glob("*.png")):
        print(f"{path}  {path.stat().st_size / 1000:.0f} KB")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
