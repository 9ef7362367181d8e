"""The one job of cross-validation and sweeps: build a model, fit it on one fold's
training indices, score it on the fold's validation indices.

A :class:`Job` is plain picklable data (the fold's indices, not its images); the
images reach each worker once and every job indexes into them. The result is a
small dict of floats and NumPy arrays, the same whichever executor ran it.
"""

from __future__ import annotations

import inspect
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

FIT_KEYS = ("epochs", "batch_size", "shuffle")
"""Parameters of a trial that go to ``fit``; every other one goes to the model."""


@dataclass(frozen=True)
class Job:
    """One fold of one trial. ``train_idx`` (n_train,) and ``val_idx`` (n_val,) index
    the data the executor gave the worker; ``params`` go to the model builder,
    ``fit`` to ``Sequential.fit``."""

    trial: int | None
    fold: int
    folds: int
    model: str | Callable
    params: dict
    fit: dict
    seed: int
    train_idx: np.ndarray
    val_idx: np.ndarray
    backend: str
    threads: int | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[int, int]:
        return (self.trial or 0, self.fold)

    @property
    def name(self) -> str:
        fold = f"fold {self.fold + 1}/{self.folds}"
        return fold if self.trial is None else f"trial {self.trial + 1}, {fold}"


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _accepts(function: Callable, name: str) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in parameters)


def build_model(model: str | Callable, params: dict, seed: int):
    """A compiled Sequential: zoo model ``model`` under its recipe's optimizer (``lr``,
    ``optimizer`` and optimizer arguments such as ``momentum`` override it), or
    ``model(**params, seed=seed)`` (``seed`` only when the function takes it)."""
    from ..errors import InputError
    from ..model import Sequential

    params = dict(params)
    if isinstance(model, str):
        from .. import optim, zoo

        recipe = zoo.recipe(model)
        name = params.pop("optimizer", recipe.optimizer)
        lr = params.pop("lr", recipe.lr)
        arguments = {**recipe.optimizer_args, **params} if name == recipe.optimizer else params
        try:
            optimizer = optim.get({"name": name, **arguments}, lr=lr)
        except TypeError as exc:
            raise InputError(f"{model}: parameters {sorted(params)} do not fit the {name} "
                             f"optimizer ({exc}); a zoo model takes lr, optimizer, the "
                             f"optimizer's own arguments and {', '.join(FIT_KEYS)}") from None
        network = zoo.get(model, seed=seed)
        return network.compile(optimizer, recipe.loss)
    if _accepts(model, "seed"):
        params["seed"] = seed
    network = model(**params)
    if not isinstance(network, Sequential) or network.loss is None:
        raise InputError(f"model function {getattr(model, '__name__', model)!r} must return a "
                         f"compiled fastcnn.Sequential, got {type(network).__name__}"
                         f"{' (not compiled)' if isinstance(network, Sequential) else ''}")
    return network


def _limit_threads(threads: int | None, backend: str):
    """Kernel threads for this job: Numba's pool is sized by set_num_threads, not by
    OMP_NUM_THREADS; the numpy backend's work is BLAS, limited through threadpoolctl."""
    import contextlib

    if threads is None:
        return contextlib.nullcontext()
    from ..backend import set_num_threads

    set_num_threads(threads)
    if backend in ("numpy", "naive"):
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=threads, user_api="blas")
    return contextlib.nullcontext()


def run_job(job: Job, x: np.ndarray, y: np.ndarray, threads: int | None = None) -> dict:
    """Build, fit and score ``job``'s fold of ``x`` (N, ...) and ``y`` (N,).

    Returns {"key", "scores": {"val_loss", "val_accuracy", ..., "train_loss",
    "train_accuracy"}, "history": {name: (epochs,) array}, "fit_seconds",
    "score_seconds", "worker", "threads"[, "error"]}. A diverged fit
    (FloatingPointError) is a result with NaN scores and its message in
    ``error``; bad input (fastcnn errors, ValueError, TypeError) comes back as
    {"key", "failed": message}, since running it again would fail again. Any
    other exception propagates so the executor can retry the job.
    """
    from ..backend import use_backend
    from ..errors import FastCNNError

    threads = threads if threads is not None else job.threads
    result = {"key": job.key, "worker": f"{socket.gethostname()}:{os.getpid()}", "threads": threads}
    with use_backend(job.backend), _limit_threads(threads, job.backend):
        start = time.perf_counter()
        try:
            model = build_model(job.model, job.params, job.seed)
            x_val, y_val = x[job.val_idx], y[job.val_idx]
            history = model.fit(x[job.train_idx], y[job.train_idx], validation_data=(x_val, y_val),
                                verbose=0, **job.fit).history
            fitted = time.perf_counter()
            scores = {f"val_{name}": float(value) for name, value in
                      model.evaluate(x_val, y_val).items()}
        except FloatingPointError as exc:
            return {**result, "scores": {"val_loss": np.nan, "val_accuracy": np.nan},
                    "history": {}, "fit_seconds": time.perf_counter() - start,
                    "score_seconds": 0.0, "error": str(exc)}
        except (FastCNNError, ValueError, TypeError) as exc:
            return {**result, "failed": f"{type(exc).__name__}: {exc}"}
    for name in ("loss", "accuracy"):
        if history.get(name):
            scores[f"train_{name}"] = float(history[name][-1])
    return {**result, "scores": scores,
            "history": {name: np.asarray(values, dtype=np.float64) for name, values in history.items()},
            "fit_seconds": fitted - start, "score_seconds": time.perf_counter() - fitted}


def warm_up(job: Job, x: np.ndarray, y: np.ndarray) -> None:
    """Two training steps and one evaluation of ``job``'s model on a few of its images:
    a batch of the job's batch size and one of two images.

    Run once before workers start: it checks the parameters here, where an error
    is clearest, and leaves every kernel in Numba's on-disk cache, so workers load
    them instead of compiling them all at once. Both batch sizes are needed: the
    numba backend runs small work on serial twins of its parallel kernels, so a
    two-image step alone would leave the workers' full batches to compile.
    """
    from ..backend import use_backend

    batch = int(job.fit.get("batch_size", 32))
    with use_backend(job.backend):
        model = build_model(job.model, job.params, job.seed)
        few = job.train_idx[:batch + 2]
        try:
            model.fit(x[few], y[few], epochs=1, batch_size=batch, shuffle=False, verbose=0)
            model.evaluate(x[few], y[few])
        except FloatingPointError:
            pass  # a diverging learning rate is a result of the search, not an input error


__all__ = ["FIT_KEYS", "Job", "build_model", "cores", "run_job", "warm_up"]
