"""Running a zoo recipe end to end: load the dataset, split it as the tutorial did,
train, and score on the held-out test images."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..backend import backend_name
from ..callbacks import EarlyStopping, ModelCheckpoint, RocAuc
from .recipe import Recipe


@dataclass
class Splits:
    """Host arrays: uint8 images (N, 28, 28) and labels (N,); ``dataset``: their name."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    dataset: str | None = None


@dataclass
class RunResult:
    model: object
    recipe: Recipe
    history: dict
    test: dict
    seconds: float
    epochs_run: int  # epochs, or iterations for a recipe that counts them
    backend: str
    extra: dict = field(default_factory=dict)


def split_for(recipe: Recipe, train, test, seed: int = 0, whole_test: bool = False) -> Splits:
    """Split (x, y) train/test pairs the way ``recipe``'s tutorial did; ``whole_test``
    keeps every test image for the final score (``fastcnn train``) where the tutorial
    took its validation images out of the test set (pytorch_cnn's 9k/1k), and then
    there is no validation split."""
    from ..datasets import train_val_split

    (x_train, y_train), (x_test, y_test) = train, test
    if recipe.model == "pytorch_cnn" and whole_test:
        return Splits(x_train, y_train, None, None, x_test, y_test)
    if recipe.model == "pytorch_cnn":
        order = np.random.default_rng(seed).permutation(len(x_test))
        val, held = order[:9 * len(order) // 10], order[9 * len(order) // 10:]
        return Splits(x_train, y_train, x_test[val], y_test[val], x_test[held], y_test[held])
    if recipe.model == "kmnist_cnn" and recipe.protocol == "benchmark":
        # the benchmark's script passes the test images as validation_data: shown, never used
        return Splits(x_train, y_train, x_test, y_test, x_test, y_test)
    if recipe.model == "kmnist_cnn":
        (x_tr, y_tr), (x_val, y_val) = train_val_split(x_train, y_train, val_size=0.2, seed=seed)
        return Splits(x_tr, y_tr, x_val, y_val, x_test, y_test)
    if recipe.model == "numpy_mlp":
        cut = len(x_train) - len(x_train) // 6
        return Splits(x_train[:cut], y_train[:cut], x_train[cut:], y_train[cut:], x_test, y_test)
    return Splits(x_train, y_train, None, None, x_test, y_test)


def load_splits(recipe: Recipe, dataset: str | None = None, seed: int = 0,
                limit: int | None = None, whole_test: bool = False) -> Splits:
    """Load the recipe's dataset (or ``dataset``) and split it (see :func:`split_for`);
    ``limit`` keeps the first ``limit`` training images (quick runs)."""
    from ..datasets import load
    from ..datasets.registry import canonical_name

    dataset = canonical_name(dataset or recipe.dataset)
    train, test = load(dataset, progress=False)
    if limit:
        train = (train[0][:limit], train[1][:limit])
    splits = split_for(recipe, train, test, seed, whole_test)
    splits.dataset = dataset
    return splits


def recipe_callbacks(recipe: Recipe, splits: Splits, checkpoint: str | None = None,
                     patience: int | None = None, verbose: int = 1) -> list:
    """The callbacks a tutorial used: best-validation-loss tracking, ROC AUC, early stopping."""
    callbacks = []
    if splits.x_val is None or recipe.protocol == "benchmark":
        return callbacks
    if recipe.model == "kmnist_cnn":
        callbacks.append(RocAuc(splits.x_val, splits.y_val, verbose=verbose))
    if checkpoint:
        callbacks.append(ModelCheckpoint(checkpoint, monitor="val_loss", save_best_only=True))
    if patience is None and recipe.model == "kmnist_cnn":
        patience = 3
    if patience is not None or recipe.model == "pytorch_cnn":
        callbacks.append(EarlyStopping("val_loss", patience=patience if patience is not None else 10**9,
                                       restore_best_weights=True, verbose=verbose))
    return callbacks


def eval_batch_size(recipe: Recipe, n: int) -> int:
    """The batch the tutorial scored ``n`` images in (its softmax may normalise over it)."""
    if recipe.eval_batch_size == 0:
        return max(1, n)
    return recipe.eval_batch_size or 256


def fit_with_replacement(model, x, y, iterations: int, batch_size: int, validation=None,
                         log_every: int = 100, eval_batch: int = 256, verbose: int = 0) -> dict:
    """``iterations`` SGD steps, each on ``batch_size`` images drawn with replacement
    (a tutorial's ``np.random.randint(0, N, size=batch)`` loop), drawn from the model's
    seeded generator. x: images (N, ...), y: labels (N,).

    Returns a history dict: "loss" and "accuracy" averaged over each block of
    ``log_every`` steps, "val_loss"/"val_accuracy" at each block's end when
    ``validation`` (x, y) is given.
    """
    from ..backend import get_backend

    x = model._prepare(x)
    model.optimizer.bind(model.parameters())
    targets = model._targets(y, len(x))
    backend = get_backend()
    history: dict = {"loss": [], "accuracy": []}
    loss_sum = correct = 0.0
    for step in range(iterations):
        index = model.rng.integers(0, len(x), size=batch_size)
        stats = backend.to_host(model.train_step(backend.to_device(x[index]),
                                                 backend.to_device(targets[index])))
        if not np.isfinite(stats[0]):
            raise FloatingPointError(f"the loss became {stats[0]} at iteration {step + 1}: lower "
                                     "the learning rate or check the inputs' scale")
        loss_sum += float(stats[0])
        correct += float(stats[1]) / batch_size
        if (step + 1) % log_every == 0 or step + 1 == iterations:
            steps = (step % log_every) + 1
            logs = {"loss": loss_sum / steps, "accuracy": correct / steps}
            if validation is not None:
                val = model.evaluate(validation[0], validation[1], batch_size=eval_batch)
                logs.update({f"val_{key}": value for key, value in val.items()})
            for key, value in logs.items():
                history.setdefault(key, []).append(value)
            if verbose:
                print(f"   iteration {step + 1}/{iterations}: " +
                      ", ".join(f"{key} {value:.4f}" for key, value in logs.items()), flush=True)
            loss_sum = correct = 0.0
    model.epoch += 1
    return history


def run(recipe: Recipe, splits: Splits, model=None, seed: int = 0, verbose: int = 1,
        checkpoint: str | None = None, patience: int | None = None, callbacks=(),
        compat: bool = False) -> RunResult:
    """Train ``recipe``'s model on ``splits`` and evaluate it on the test split; the model's
    ``data_info`` then names the dataset (``splits.dataset``, else the recipe's)."""
    from ..datasets import data_info
    from . import get

    if model is None:
        model = get(recipe.model, seed=seed, **({"compat": True} if compat else {}),
                    **recipe.model_args)
    if model.optimizer is None:
        recipe.compile(model)
    validation = (splits.x_val, splits.y_val) if splits.x_val is not None else None
    all_callbacks = recipe_callbacks(recipe, splits, checkpoint, patience, verbose) + list(callbacks)
    start = time.perf_counter()
    if recipe.iterations:
        if all_callbacks:
            raise ValueError(f"{recipe.model}'s {recipe.protocol} recipe counts iterations, not "
                             "epochs: it takes no callbacks")
        history = fit_with_replacement(
            model, splits.x_train, splits.y_train, recipe.iterations, recipe.batch_size,
            validation, log_every=max(1, recipe.iterations // 100),
            eval_batch=eval_batch_size(recipe, 0 if validation is None else len(validation[0])),
            verbose=verbose)
        epochs_run = recipe.iterations
    else:
        history = model.fit(splits.x_train, splits.y_train, validation_data=validation,
                            callbacks=all_callbacks, verbose=verbose, initial_epoch=model.epoch,
                            **recipe.fit_arguments(seed)).history
        epochs_run = len(history["loss"])
    seconds = time.perf_counter() - start
    model.data_info = data_info(splits.dataset or recipe.dataset, train_images=len(splits.x_train))
    test = model.evaluate(splits.x_test, splits.y_test,
                          batch_size=eval_batch_size(recipe, len(splits.x_test)))
    extra = {}
    for callback in all_callbacks:
        if isinstance(callback, EarlyStopping) and callback.best_epoch is not None:
            extra.update(best_epoch=callback.best_epoch, best_val_loss=callback.best)
    return RunResult(model, recipe, history, test, seconds, epochs_run, backend_name(), extra)
