"""Real data: the PyTorch tutorial CNN trained for one epoch on MNIST reaches 98% test accuracy.

By default it trains once, on the backend ``auto`` picks (an epoch takes one to two minutes on
two cores with a compiled backend). ``FASTCNN_MNIST_BACKENDS=all`` also trains on every other
compiled backend that runs here (not naive, not the CUDA simulator); a comma-separated list
(e.g. ``numba,cython``) picks some.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

import fastcnn
from helpers import compiled_backends

MIN_TEST_ACCURACY = 0.98


def _auto_pick() -> str:
    with fastcnn.use_backend("auto") as picked:
        return picked


def _extra_backends() -> list[str]:
    """Compiled backends asked for by FASTCNN_MNIST_BACKENDS, besides auto's pick."""
    wanted = os.environ.get("FASTCNN_MNIST_BACKENDS", "").strip().lower()
    if not wanted:
        return []
    compiled = compiled_backends()
    chosen = compiled if wanted == "all" else [name.strip() for name in wanted.split(",")]
    unknown = sorted(set(chosen) - set(compiled))
    if unknown:
        raise ValueError(f"FASTCNN_MNIST_BACKENDS names {unknown}; compiled backends here: {compiled}")
    return [name for name in chosen if name != _auto_pick()]


BACKENDS = ["auto"] + _extra_backends()


@pytest.fixture(scope="module")
def mnist(data_dir):
    from fastcnn.datasets import load_mnist

    return load_mnist()


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_pytorch_cnn_one_epoch_on_mnist_reaches_98_percent_test_accuracy(mnist, backend,
                                                                         record_property):
    (x_train, y_train), (x_test, y_test) = mnist
    recipe = fastcnn.zoo.recipe("pytorch_cnn")
    with fastcnn.use_backend(backend) as picked:
        model = fastcnn.zoo.pytorch_cnn(seed=0)
        model.compile(recipe.make_optimizer(), recipe.loss)
        start = time.perf_counter()
        history = model.fit(x_train, y_train, epochs=1, batch_size=recipe.batch_size, verbose=0)
        seconds = time.perf_counter() - start
        result = model.evaluate(x_test, y_test)
    record_property("backend", picked)
    record_property("epoch_seconds", round(seconds, 1))
    print(f"\n{backend} -> {picked}: one MNIST epoch in {seconds:.1f} s, "
          f"test accuracy {result['accuracy']:.4f}")
    assert np.isfinite(history.history["loss"][0])
    assert result["accuracy"] >= MIN_TEST_ACCURACY, (
        f"{picked}: test accuracy {result['accuracy']:.4f} after one epoch")
