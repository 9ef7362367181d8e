"""A zoo recipe side by side with its PyTorch twin, trained in one process: the MNIST
speedrun (``mnist_speedrun``, the default) and any other recipe of the zoo whose layers,
optimizer, schedule and loss have PyTorch counterparts (``fashion_cnn``).

``fastcnn_run`` trains the zoo model with its recipe and times ``fit`` (after
``warm_up`` has compiled or loaded every kernel); ``torch_run`` trains a PyTorch twin
built from the same fastcnn model before its fit (:func:`fastcnn.bench.models.torch_network`:
same layers, a copy of the initial weights and buffers) with torch's own Adam,
OneCycleLR and label-smoothed cross-entropy set from the recipe, on the same batches
in the same order (a copy of the model's generator draws the permutation fit draws).
A recipe with augmentation warps PyTorch's batches with the same RandomAffine settings
(fastcnn's own warp, from its own seed: the same distribution, not the same draws).
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from dataclasses import dataclass

import numpy as np

from .. import zoo
from ..backend import backend_name
from . import environment
from .environment import torch_module
from .models import torch_loss, torch_network, torch_optimizer, torch_schedule
from .timing import settle

MODEL = "mnist_speedrun"


@dataclass
class Trained:
    """One training run: ``seconds`` from the start of fit (or the first step) to the end
    of the last step; ``accuracy`` on the test images; ``steps`` optimisation steps;
    ``cpu_per_wall`` the process's CPU time over those seconds and ``steal`` the host's
    steal share meanwhile (None where unknown: runs recorded before they were kept)."""

    engine: str
    seed: int
    seconds: float
    accuracy: float
    steps: int
    cpu_per_wall: float | None = None
    steal: float | None = None

    def quiet(self, threads: int) -> bool | None:
        """Whether this (PyTorch) run on ``threads`` threads ran on a quiet host by the bar's
        rule (environment.quiet_host); None where its CPU/wall or steal was not recorded."""
        if self.cpu_per_wall is None or self.steal is None:
            return None
        return environment.quiet_host(self.steal, self.cpu_per_wall, threads)


class _Clock:
    """Wall time, the process's CPU time and the host's steal ticks over one run, started
    once the engine run before has let go of the cores (timing.settle)."""

    def __init__(self):
        settle()
        self.ticks, self.cpu = environment.cpu_ticks(), time.process_time()
        self.start = time.perf_counter()

    def stop(self) -> tuple:
        """(seconds, CPU/wall, steal share) since construction."""
        seconds = time.perf_counter() - self.start
        cpu = time.process_time() - self.cpu
        return seconds, cpu / seconds, environment.steal_share(self.ticks, environment.cpu_ticks())


def inputs(images) -> np.ndarray:
    """The recipe's data handling, done once before training: uint8 images (N, 28, 28) ->
    resident float32 (N, 1, 28, 28) in [0, 1]."""
    from ..inputs import as_images

    return as_images(images, (1, 28, 28))


def compiled(seed: int, recipe=None):
    """(model, recipe): ``recipe.model`` (default ``mnist_speedrun`` with the zoo's recipe)
    built from ``seed`` and compiled with ``recipe`` (an ablation step, another zoo recipe)."""
    recipe = recipe or zoo.recipe(MODEL)
    model = zoo.get(recipe.model, seed=seed, **recipe.model_args)
    recipe.compile(model)
    return model, recipe


def steps_per_epoch(recipe, n: int) -> int:
    """Optimisation steps one epoch of the recipe runs on ``n`` training images."""
    steps = math.ceil(n / recipe.batch_size)
    return min(steps, recipe.steps_per_epoch) if recipe.steps_per_epoch else steps


def warm_up(x, y, recipe=None, with_torch: bool = True) -> None:
    """Compile (or load from numba's cache) every kernel fit and evaluate call, and let
    PyTorch allocate: two steps of each engine on a throwaway model."""
    recipe = (recipe or zoo.recipe(MODEL)).replace(epochs=1)
    n = 2 * recipe.batch_size  # at most two batches
    side_by_side(0, x[:n], y[:n], x[:n], y[:n], recipe, with_torch)


def fastcnn_train(model, recipe, seed, x, y, x_test, y_test) -> Trained:
    """Train the compiled ``model`` with ``recipe`` (x: float32 (N, 1, 28, 28), y: labels
    (N,)) and score it on the test images; the time is fit's."""
    clock = _Clock()
    model.fit(x, y, verbose=0, **recipe.fit_arguments(seed))
    seconds, cpu_per_wall, steal = clock.stop()
    accuracy = model.evaluate(x_test, y_test, batch_size=1000)["accuracy"]
    return Trained(f"fastcnn {backend_name()}", seed, seconds, accuracy,
                   recipe.epochs * steps_per_epoch(recipe, len(x)), cpu_per_wall, steal)


@dataclass
class Summary:
    """One engine's runs of a recipe: mean test accuracy and its sample standard deviation
    (0 for one run), how many runs reached ``target``, and training seconds."""

    engine: str
    runs: int
    accuracy: float
    spread: float
    reached: int
    target: float
    seconds: float
    fastest: float
    slowest: float


def by_engine(runs: list) -> dict:
    """Runs (Trained) grouped by engine, in the order the engines first appear."""
    groups = {}
    for run in runs:
        groups.setdefault(run.engine, []).append(run)
    return groups


def summarise(runs: list, target: float = 0.99) -> Summary:
    """The Summary of one engine's runs (Trained)."""
    accuracies = [run.accuracy for run in runs]
    seconds = [run.seconds for run in runs]
    return Summary(runs[0].engine, len(runs), statistics.mean(accuracies),
                   statistics.stdev(accuracies) if len(runs) > 1 else 0.0,
                   sum(accuracy >= target for accuracy in accuracies), target,
                   statistics.mean(seconds), min(seconds), max(seconds))


@dataclass
class TorchTwin:
    """A PyTorch copy of an untrained fastcnn model: ``network`` with its initial weights,
    ``params`` its trainable parameters in fastcnn's order, ``orders`` the permutation
    of the training images each epoch of the fastcnn model's next fit draws."""

    network: object
    params: list
    orders: list


def torch_twin(model, recipe, n: int) -> TorchTwin:
    """The twin of the compiled ``model`` before its fit on ``n`` images: fit draws one
    permutation per epoch from the model's generator and nothing else, so a copy of the
    generator draws the same ones."""
    network, pairs = torch_network(model, training=True)
    rng = copy.deepcopy(model.rng)
    return TorchTwin(network, [param for _, param in pairs],
                     [rng.permutation(n) for _ in range(recipe.epochs)])


def torch_train(twin: TorchTwin, recipe, seed, x, y, x_test, y_test) -> Trained:
    """Train ``twin`` with torch's optimizer, schedule and loss set as the recipe's, on
    the batches fastcnn's fit took, and score it on the test images."""
    torch = torch_module()
    optimizer = torch_optimizer(recipe.make_optimizer(), twin.params)
    schedule = torch_schedule(recipe.make_schedule(), optimizer, recipe.epochs *
                              steps_per_epoch(recipe, len(x)))
    loss_fn = torch_loss(recipe.loss)
    xt, yt = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64))
    per_epoch, batch = steps_per_epoch(recipe, len(x)), recipe.batch_size
    augment = recipe.make_augment(None if seed is None else seed + 1)
    network = twin.network
    network.train()
    clock = _Clock()
    for order in twin.orders:
        for step in range(per_epoch):
            index = torch.from_numpy(order[step * batch:(step + 1) * batch])
            inputs = xt[index] if augment is None else torch.from_numpy(augment(x[index.numpy()]))
            optimizer.zero_grad(set_to_none=True)
            loss_fn(network(inputs), yt[index]).backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
    seconds, cpu_per_wall, steal = clock.stop()
    network.eval()
    with torch.no_grad():
        test = torch.from_numpy(np.ascontiguousarray(x_test))
        predicted = torch.cat([network(part).argmax(1) for part in test.split(1000)])
    accuracy = float((predicted.numpy() == np.asarray(y_test)).mean())
    return Trained("pytorch", seed, seconds, accuracy, per_epoch * len(twin.orders),
                   cpu_per_wall, steal)


def side_by_side(seed: int, x, y, x_test, y_test, recipe=None,
                 with_torch: bool = True, with_fastcnn: bool = True) -> list[Trained]:
    """fastcnn's run of the recipe from ``seed`` and, with ``with_torch``, PyTorch's from
    the same initial weights and batch order (without ``with_fastcnn``, PyTorch's alone:
    the fastcnn model is built for its weights and batch order, and not trained).
    x, x_test: float32 (N, 1, 28, 28)."""
    model, recipe = compiled(seed, recipe)
    twin = torch_twin(model, recipe, len(x)) if with_torch else None
    results = [fastcnn_train(model, recipe, seed, x, y, x_test, y_test)] if with_fastcnn else []
    if twin is not None:
        results.append(torch_train(twin, recipe, seed, x, y, x_test, y_test))
    return results


def ablations(n: int) -> dict:
    """One change to the recipe at a time (Recipe.replace arguments), for the ablation
    table, on ``n`` training images."""
    recipe = zoo.recipe(MODEL)
    return {
        "BatchNorm before the ReLU (the issue's order)": {"model_args": {"bn_first": True}},
        "no label smoothing": {"loss": "cross_entropy"},
        "no one-cycle (Adam 1e-3 constant)": {"schedule": {}, "lr": 1e-3},
        "no BatchNorm (biased convolutions)": {"model_args": {"batch_norm": False}},
        "batch 64": {"batch_size": 64},
        "batch 256": {"batch_size": 256},
        "widths 8-16-32": {"model_args": {"widths": (8, 16, 32)}},
        "half an epoch": {"steps_per_epoch": max(1, steps_per_epoch(recipe, n) // 2)},
    }
