"""cross_validate, grid_search and random_search: every fold of every trial is one job.

    result = fastcnn.cross_validate("keras_kfold_cnn", x, y, cv=5, executor="local")
    result.scores["val_accuracy"]          # (5,)
    print(result.mean(), result.std())
    search = fastcnn.grid_search("keras_kfold_cnn", {"lr": [1e-3, 1e-2]}, x, y, cv=3)
    print(search.table(), search.best_params)

Fold ``i`` of every trial trains from the model seed ``seed + i`` on the same folds,
so trials differ only by their parameters, and the scores do not depend on the
executor that ran them.
"""

from __future__ import annotations

import contextlib
import itertools
import pickle
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from .executors import JobError, ProcessPool, get_executor
from .jobs import FIT_KEYS, Job, build_model, warm_up
from .main_guard import check_main_module

DEFAULT_FIT = {"epochs": 10, "batch_size": 32}
"""fit() arguments of a model function's jobs; a zoo model's come from its recipe."""


@dataclass
class CVResult:
    """Per-fold scores of one set of parameters.

    scores: metric -> (folds,) array: ``val_loss``, ``val_accuracy`` (and
    ``val_roc_auc`` when compiled), ``train_loss``, ``train_accuracy`` (the last
    epoch's). histories: one ``{"loss": (epochs,), "val_loss": ..., ...}`` per fold.
    folds: ``(train_idx, val_idx)`` per fold. fit_seconds/score_seconds: (folds,).
    workers: "host:pid" that ran each fold. errors: a diverged fold's message, else None.
    """

    scores: dict[str, np.ndarray]
    histories: list[dict]
    folds: list[tuple[np.ndarray, np.ndarray]]
    fit_seconds: np.ndarray
    score_seconds: np.ndarray
    workers: list[str]
    errors: list[str | None]
    params: dict = field(default_factory=dict)
    seconds: float = 0.0
    executor: str = ""

    def _metric(self, metric: str) -> np.ndarray:
        if metric not in self.scores:
            raise KeyError(f"no score {metric!r}; this result has {', '.join(self.scores)}")
        return self.scores[metric]

    def mean(self, metric: str = "val_accuracy") -> float:
        return float(np.mean(self._metric(metric)))

    def std(self, metric: str = "val_accuracy") -> float:
        """The population standard deviation over the folds (NumPy's, as the Keras tutorial)."""
        return float(np.std(self._metric(metric)))

    def __str__(self) -> str:
        return (f"val_accuracy {self.mean():.2%} ± {self.std():.2%} over {len(self.folds)} folds "
                f"({self.executor}, {self.seconds:.1f} s)")


@dataclass
class SearchResult:
    """Every trial of a grid or random search: ``params[i]`` and its ``results[i]``."""

    params: list[dict]
    results: list[CVResult]
    scoring: str
    seconds: float = 0.0

    @property
    def means(self) -> np.ndarray:
        return np.array([result.mean(self.scoring) for result in self.results])

    @property
    def best_index(self) -> int:
        """The trial with the best mean ``scoring`` (lowest for a loss); NaN trials never win."""
        means = self.means
        if np.all(np.isnan(means)):
            raise JobError(f"every trial diverged; no {self.scoring} to compare")
        return int(np.nanargmin(means) if self.scoring.endswith("loss") else np.nanargmax(means))

    @property
    def best_params(self) -> dict:
        return dict(self.params[self.best_index])

    @property
    def best_score(self) -> float:
        return float(self.means[self.best_index])

    def rows(self) -> list[dict]:
        """One plain dict per trial: its parameters, mean, std and per-fold scores."""
        return [{**params, f"mean_{self.scoring}": result.mean(self.scoring),
                 f"std_{self.scoring}": result.std(self.scoring),
                 "folds": result.scores[self.scoring].tolist()}
                for params, result in zip(self.params, self.results)]

    def table(self) -> str:
        """A Markdown table of every trial, the best one marked."""
        names = list(dict.fromkeys(key for params in self.params for key in params))
        lines = ["| trial | " + " | ".join(names) + f" | {self.scoring} (mean ± std) | folds |",
                 "|---:|" + "---:|" * len(names) + "---:|---|"]
        best = self.best_index
        for index, (params, result) in enumerate(zip(self.params, self.results)):
            folds = ", ".join(f"{value:.4f}" for value in result.scores[self.scoring])
            cells = " | ".join(f"{params.get(name, '')}" for name in names)
            lines.append(f"| {index + 1}{' (best)' if index == best else ''} | {cells} | "
                         f"{result.mean(self.scoring):.4f} ± {result.std(self.scoring):.4f} | "
                         f"{folds} |")
        return "\n".join(lines)


# ---- the public functions ------------------------------------------------------------------------
def cross_validate(model: str | Callable, x, y, cv=5, fit: dict | None = None, seed: int = 0,
                   executor=None, retries: int = 2, progress: bool = True, stratify: bool = False,
                   workers: int | None = None, params: dict | None = None) -> CVResult:
    """Train ``model`` on each of ``cv`` folds of ``(x, y)``, scoring each on its held-out fold.

    model: a zoo name (its recipe's optimizer, loss, epochs and batch size) or a
    function returning a compiled Sequential (called with ``seed=`` when it takes
    one). x: images (N, ...); y: labels (N,). cv: a fold count (folds seeded by
    ``seed``, stratified by ``y`` with ``stratify``) or a list of ``(train_idx,
    val_idx)``. fit: ``epochs``, ``batch_size``, ``shuffle``. params: the model's
    (a zoo model's ``lr``, ``optimizer``, ``momentum``...). executor: None (this
    process), "local", "dask", "tcp://host:port" or a distributed.Client; workers:
    processes for "local" and a new LocalCluster. retries: runs of a fold after
    its worker died or it raised, before giving up.
    """
    return _run(model, [dict(params or {})], x, y, cv, fit, seed, executor, retries, progress,
                stratify, workers, "cross-validation", single=True)[0]


def grid_search(model: str | Callable, grid, x, y, cv=3, fit: dict | None = None, seed: int = 0,
                executor=None, retries: int = 2, progress: bool = True, stratify: bool = False,
                workers: int | None = None, scoring: str = "val_accuracy") -> SearchResult:
    """Cross-validate every combination of ``grid`` ({"lr": [...], "batch_size": [...]}, or a
    list of such dicts); ``epochs``, ``batch_size`` and ``shuffle`` go to fit, the rest to
    the model (a zoo model takes ``lr``, ``optimizer`` and the optimizer's arguments)."""
    grids = [grid] if isinstance(grid, dict) else list(grid)
    trials = []
    for part in grids:
        if not isinstance(part, dict) or not part:
            raise InputError(f"a grid is a non-empty dict of parameter -> list of values, got {part!r}")
        values = [_choices(name, options) for name, options in part.items()]
        trials += [dict(zip(part, combination)) for combination in itertools.product(*values)]
    return _search(model, trials, x, y, cv, fit, seed, executor, retries, progress, stratify,
                   workers, scoring, "grid search")


def random_search(model: str | Callable, space: dict, x, y, n_trials: int = 10, cv=3,
                  fit: dict | None = None, seed: int = 0, executor=None, retries: int = 2,
                  progress: bool = True, stratify: bool = False, workers: int | None = None,
                  scoring: str = "val_accuracy") -> SearchResult:
    """Cross-validate ``n_trials`` parameter sets drawn from ``space``: each value a list to
    choose from, or a function of a ``numpy.random.Generator`` (e.g. :func:`loguniform`).
    The draws are seeded by ``seed``."""
    if not isinstance(space, dict) or not space:
        raise InputError(f"a search space is a non-empty dict of parameter -> values, got {space!r}")
    if int(n_trials) < 1:
        raise InputError(f"n_trials must be at least 1, got {n_trials}")
    rng = np.random.default_rng([int(seed), 2])
    draws = {name: options if callable(options) else _choices(name, options)
             for name, options in space.items()}
    trials = [{name: _draw(options, rng) for name, options in draws.items()}
              for _ in range(int(n_trials))]
    return _search(model, trials, x, y, cv, fit, seed, executor, retries, progress, stratify,
                   workers, scoring, "random search")


def loguniform(low: float, high: float) -> Callable:
    """A draw for :func:`random_search`: ``low * (high / low) ** U(0, 1)``."""
    if not 0 < low < high:
        raise InputError(f"loguniform needs 0 < low < high, got {low}, {high}")
    return lambda rng: float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _choices(name: str, options) -> list:
    if isinstance(options, (str, bytes)) or not hasattr(options, "__iter__"):
        raise InputError(f"parameter {name!r} needs a list of values, got {options!r}")
    options = list(options)
    if not options:
        raise InputError(f"parameter {name!r} has no values")
    return options


def _draw(options, rng: np.random.Generator):
    if callable(options):
        return options(rng)
    value = options[int(rng.integers(len(options)))]
    return value.item() if isinstance(value, np.generic) else value


def _search(model, trials, x, y, cv, fit, seed, executor, retries, progress, stratify, workers,
            scoring, description) -> SearchResult:
    start = time.perf_counter()
    results = _run(model, trials, x, y, cv, fit, seed, executor, retries, progress, stratify,
                   workers, description)
    if scoring not in results[0].scores:
        raise InputError(f"unknown scoring {scoring!r}; choose one of {', '.join(results[0].scores)}")
    return SearchResult(trials, results, scoring, time.perf_counter() - start)


# ---- turning trials into jobs and results back into arrays ----------------------------------------
def _data(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim < 2 or y.ndim not in (1, 2) or len(x) != len(y):
        raise InputError(f"cross-validation needs images x (N, ...) and labels y (N,) or (N, L), "
                         f"got shapes {x.shape} and {y.shape}")
    return x, y


def _folds(cv, x, y, seed: int, stratify: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    from ..datasets import kfold

    if isinstance(cv, (int, np.integer)) and not isinstance(cv, bool):
        labels = (y if y.ndim == 1 else y.argmax(axis=1)) if stratify else None
        return list(kfold(len(x), int(cv), seed=seed, stratify=labels))
    if stratify:
        raise InputError("stratify applies to a fold count; these folds are given as indices")
    folds = []
    for pair in cv:
        train, val = (np.asarray(part, dtype=np.int64) for part in pair)
        if not len(train) or not len(val) or min(train.min(), val.min()) < 0 or \
                max(train.max(), val.max()) >= len(x):
            raise InputError(f"fold {len(folds) + 1}: indices must be non-empty and in 0..{len(x) - 1}")
        folds.append((train, val))
    if len(folds) < 1:
        raise InputError("cv gave no folds")
    return folds


def _fit_defaults(model, fit: dict | None) -> dict:
    if isinstance(model, str):
        from .. import zoo

        if model not in zoo.names():
            raise InputError(f"unknown zoo model {model!r}; the zoo has {', '.join(zoo.names())}")
        recipe = zoo.recipe(model)
        defaults = {"epochs": recipe.epochs, "batch_size": recipe.batch_size}
    elif callable(model):
        defaults = dict(DEFAULT_FIT)
    else:
        raise InputError(f"model must be a zoo name or a function returning a compiled Sequential, "
                         f"got {type(model).__name__}")
    return {**defaults, **_fit_arguments(fit or {})}


def _fit_arguments(values: dict) -> dict:
    unknown = sorted(set(values) - set(FIT_KEYS))
    if unknown:
        raise InputError(f"fit takes {', '.join(FIT_KEYS)} here, not {', '.join(unknown)}")
    for name in ("epochs", "batch_size"):
        if name in values and (not float(values[name]).is_integer() or int(values[name]) < 1):
            raise InputError(f"{name} must be a positive integer, got {values[name]!r}")
        if name in values:
            values = {**values, name: int(values[name])}
    return values


def _jobs(model, trials, folds, fit, seed, backend, single: bool) -> list[Job]:
    jobs = []
    for trial, params in enumerate(trials):
        builder = {k: v for k, v in params.items() if k not in FIT_KEYS}
        trial_fit = {**fit, **_fit_arguments({k: v for k, v in params.items() if k in FIT_KEYS})}
        for fold, (train, val) in enumerate(folds):
            jobs.append(Job(None if single else trial, fold, len(folds), model, builder, trial_fit,
                            seed + fold, train, val, backend))
    return jobs


def _run(model, trials, x, y, cv, fit, seed, executor, retries, progress, stratify, workers,
         description, single: bool = False) -> list[CVResult]:
    from tqdm import tqdm

    from ..backend import backend_name
    from ..callbacks import resolve_verbose

    start = time.perf_counter()
    x, y = _data(x, y)
    if int(retries) < 0:
        raise InputError(f"retries must be at least 0, got {retries}")
    folds = _folds(cv, x, y, int(seed), stratify)
    jobs = _jobs(model, trials, folds, _fit_defaults(model, fit), int(seed), backend_name(),
                 single)
    runner = get_executor(executor, workers)
    if runner.spawns_here:
        check_main_module(runner.name)
    if isinstance(runner, ProcessPool):
        _check_picklable(model)
    warm_up(jobs[0], x, y)
    for job in jobs[len(folds)::len(folds)]:
        build_model(job.model, job.params, job.seed)  # every trial's parameters, checked here
    results = {}
    scoring = "val_accuracy"
    # redirected output gets one line per finished job, not a bar's carriage-return frames
    lines = bool(progress) and resolve_verbose("auto") == 2
    with tqdm(total=len(jobs), desc=description, unit="fold", disable=not progress or lines) as bar, \
            contextlib.closing(runner.map(jobs, x, y, int(retries))) as finished:
        for job, result in finished:
            if "failed" in result:
                raise JobError(f"{job.name} failed: {result['failed']}")
            results[job.key] = result
            bar.set_postfix_str(f"{job.name}: {scoring} {result['scores'][scoring]:.4f}")
            bar.update()
            if lines:
                print(f"{description}: {len(results)}/{len(jobs)} done, {job.name}: {scoring} "
                      f"{result['scores'][scoring]:.4f}", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start
    return [_collect(jobs[t * len(folds):(t + 1) * len(folds)], results, folds, params, seconds,
                     runner.name) for t, params in enumerate(trials)]


def _check_picklable(model) -> None:
    """A ProcessPool pickles the model function by name: it must be importable."""
    try:
        pickle.dumps(model)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise InputError(f"executor 'local' sends the model to its workers by name, and "
                         f"{getattr(model, '__qualname__', model)!r} cannot be ({exc}): define it "
                         "at the top level of a module, or use a zoo name or executor='dask' "
                         "(which pickles closures too)") from None


def _collect(jobs, results, folds, params, seconds, executor) -> CVResult:
    ordered = [results[job.key] for job in jobs]
    metrics = list(dict.fromkeys(name for result in ordered for name in result["scores"]))
    scores = {name: np.array([result["scores"].get(name, np.nan) for result in ordered])
              for name in metrics}
    return CVResult(scores, [result["history"] for result in ordered], folds,
                    np.array([result["fit_seconds"] for result in ordered]),
                    np.array([result["score_seconds"] for result in ordered]),
                    [result["worker"] for result in ordered],
                    [result.get("error") for result in ordered], dict(params), seconds, executor)


__all__ = ["CVResult", "SearchResult", "cross_validate", "grid_search", "loguniform",
           "random_search"]
