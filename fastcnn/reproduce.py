"""Reproducing each zoo tutorial on its real dataset, reported beside the article's figures.

    from fastcnn.reproduce import reproduce
    report = reproduce(["numpy_mlp", "fixed_kernel_cnn"], quick=True, out="reports")
    print(report.path)            # reports/report.md, with the plots beside it

Each article runs its zoo recipe as the tutorial did (its split, epochs,
callbacks); ``quick`` runs a short version on small subsets for CI, whose
numbers are not comparable to the articles'. A dataset that is not on this
machine (KMNIST's training images) is reported as not available, with the
reason, and nothing is made up for it.

Every article's result is also kept as ``out/<article>.json`` (with its backend,
machine and time), and the report lists every article found there: articles run
by separate commands into one folder make one report. An article not run yet
gets a section saying so, with the article's figures.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .callbacks import Callback
from .wording import count

ARTICLES = ("pytorch_cnn", "keras_kfold_cnn", "kmnist_cnn", "numpy_mlp", "fixed_kernel_cnn")
"""The zoo models whose articles can be reproduced, in report order."""

KFOLD_SEED = 1  # the Keras tutorial's KFold(5, shuffle=True, random_state=1)


@dataclass(frozen=True)
class Scale:
    """How much of each recipe runs; None keeps the recipe's own value.

    train/test: keep the first N training/test images; epochs: epochs of each
    run (of each fold for K-fold); iterations: full-batch iterations of the
    fixed-kernel tutorial and sampled batches of numpy_mlp's compat recipe;
    seeds: how many seeds the cheap articles (numpy_mlp, fixed_kernel_cnn) run,
    reported as mean ± std.
    """

    train: int | None = None
    test: int | None = None
    epochs: int | None = None
    iterations: int | None = None
    seeds: int = 1


FULL = Scale(seeds=3)
QUICK = Scale(train=500, test=300, epochs=1, iterations=500)


@dataclass
class Run:
    """One trained configuration of an article: its measurements and per-epoch logs."""

    label: str
    measured: dict
    history: dict | list = field(default_factory=dict)


@dataclass
class ArticleResult:
    """An article's reported figures beside fastcnn's runs of its recipe."""

    article: str
    source: str
    dataset: str
    recipe: dict
    reported: dict
    runs: list[Run] = field(default_factory=list)
    available: bool = True
    reason: str = ""
    plots: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    reported_sources: dict[str, str] = field(default_factory=dict)
    backend: str = ""
    machine: dict = field(default_factory=dict)
    seconds: float = 0.0
    finished: str = ""
    quick: bool = False
    scale: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> "ArticleResult":
        data = dict(data)
        data["runs"] = [Run(**run) for run in data.get("runs", [])]
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


@dataclass
class Report:
    articles: list[ArticleResult]
    backend: str
    machine: dict
    quick: bool
    path: Path | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict:
        data = asdict(self)
        data["path"] = str(self.path) if self.path else None
        return data


# ---- the machine -----------------------------------------------------------------------------
def machine_info() -> dict:
    """CPU model, core count, OS and library versions, for the report."""
    from . import __version__

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return {"cpu": cpu, "cores": cores, "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "numpy": np.__version__, "fastcnn": __version__}


# ---- running the articles -----------------------------------------------------------------------
class _Session:
    """What the articles of one reproduce() call share: scale, output folder, loaded data."""

    def __init__(self, scale: Scale, out: Path, seed: int, verbose: int):
        self.scale, self.out, self.seed, self.verbose = scale, out, seed, verbose
        self._data: dict = {}

    def say(self, text: str) -> None:
        if self.verbose:
            print(text, flush=True)

    def data(self, dataset: str):
        """(train, test) pairs of ``dataset`` cut to the scale; DatasetError when missing."""
        if dataset not in self._data:
            from .datasets import load

            (x, y), (xt, yt) = load(dataset, progress=bool(self.verbose))
            train, test = slice(self.scale.train), slice(self.scale.test)
            self._data[dataset] = ((x[train], y[train]), (xt[test], yt[test]))
        return self._data[dataset]

    def plot(self, result: ArticleResult, caption: str, name: str, draw, *args, **kwargs) -> None:
        """Draw one plot into the output folder and list it under ``caption``."""
        filename = f"{result.article}_{name}.png"
        draw(*args, path=self.out / filename, **kwargs)
        result.plots[caption] = filename


def _fit_verbosity(session: _Session) -> int:
    return 2 if session.verbose else 0  # one line per epoch, no progress bars in a report run


def _sizes(splits) -> dict:
    shown_test = splits.x_val is splits.x_test  # validation_data = the test images (KMNIST benchmark)
    return {"train_images": len(splits.x_train),
            "validation_images": None if splits.x_val is None or shown_test else len(splits.x_val),
            "test_images": len(splits.x_test)}


def _recipe_run(session: _Session, result: ArticleResult, recipe, splits, label: str,
                compat: bool = False, seed: int | None = None,
                checkpoint: str | None = None) -> tuple[Run, object]:
    """Train ``recipe`` on ``splits`` with the zoo runner; returns the Run and the model."""
    from .zoo.runner import run

    seed = session.seed if seed is None else seed
    length = f"{recipe.iterations:,} sampled batches" if recipe.iterations else count(recipe.epochs, 'epoch')
    session.say(f"-- {label} (seed {seed}): {len(splits.x_train):,} training images, {length}")
    outcome = run(recipe, splits, seed=seed, verbose=_fit_verbosity(session), compat=compat,
                  checkpoint=checkpoint)
    measured = {"test_accuracy": outcome.test["accuracy"], "test_loss": outcome.test["loss"],
                ("iterations" if recipe.iterations else "epochs"): outcome.epochs_run,
                "seconds": outcome.seconds, **_sizes(splits)}
    for key in ("best_epoch", "best_val_loss"):
        if key in outcome.extra:
            measured[key] = outcome.extra[key]
    session.say(f"   test accuracy {measured['test_accuracy']:.2%} in {outcome.seconds:.1f} s")
    return Run(label, measured, outcome.history), outcome.model


def _over_seeds(session: _Session, label: str, train) -> tuple[Run, object]:
    """``train(seed) -> (Run, model)`` for each of the scale's seeds; one Run holding the
    mean of every measurement, its std (``<key>_std``, over seeds, ddof 0) and the
    per-seed values. The history and model returned are the first seed's."""
    seeds = list(range(session.seed, session.seed + max(1, session.scale.seeds)))
    outcomes = [train(seed) for seed in seeds]
    if len(outcomes) == 1:
        return outcomes[0]
    per_seed = {key: [run.measured[key] for run, _ in outcomes] for key in outcomes[0][0].measured}
    measured: dict = {"seeds": seeds, "per_seed": per_seed}
    for key, values in per_seed.items():
        if any(value is None for value in values):
            measured[key] = None
        elif all(isinstance(value, int) for value in values) and len(set(values)) == 1:
            measured[key] = values[0]
        else:
            measured[key] = float(np.mean(values))
            if key != "seconds":
                measured[f"{key}_std"] = float(np.std(values))
    session.say(f"   {label}: test accuracy {measured['test_accuracy']:.2%} ± "
                f"{measured['test_accuracy_std']:.2%} over seeds {seeds}")
    return Run(f"{label}, {count(len(seeds), 'seed')}", measured, outcomes[0][0].history), outcomes[0][1]


def _test_plots(session: _Session, result: ArticleResult, model, x_test, y_test,
                batch_size: int = 256) -> None:
    """The confusion matrix and a grid of the first test images with their predictions."""
    from . import plots
    from .datasets import get_spec
    from .metrics import confusion_matrix

    spec = get_spec(result.dataset)
    names = None if result.dataset == "kmnist" else spec.classes  # matplotlib's font has no hiragana
    predicted = model.predict_classes(x_test, batch_size=batch_size)
    session.plot(result, "test predictions (mistakes in red)", "predictions", plots.plot_predictions,
                 x_test[:32], y_test[:32], predicted[:32], class_names=names, title=result.article)
    session.plot(result, "confusion matrix on the test images", "confusion",
                 plots.plot_confusion_matrix, confusion_matrix(y_test, predicted, spec.num_classes),
                 class_names=names)


def _split(session: _Session, recipe):
    from .zoo.runner import split_for

    train, test = session.data(recipe.dataset)
    return split_for(recipe, train, test, seed=session.seed)


def _scaled(session: _Session, recipe):
    iterations = session.scale.iterations if recipe.iterations else None
    return recipe.replace(epochs=session.scale.epochs, iterations=iterations)


def _pytorch_cnn(session: _Session, result: ArticleResult, recipe) -> None:
    """Trained once, saving the model whenever the validation loss improves (the tutorial's
    best-model file, here ``pytorch_cnn_best.npz`` beside the report)."""
    from . import plots

    splits = _split(session, recipe)
    best_file = session.out / "pytorch_cnn_best.npz"
    run, model = _recipe_run(session, result, _scaled(session, recipe), splits, "fastcnn",
                             checkpoint=str(best_file))
    run.measured["best_model_file"] = best_file.name
    result.runs.append(run)
    result.notes.append(f"The best model is saved to {best_file.name} whenever the validation "
                        "loss improves, as the tutorial saves its; its weights carry the "
                        "tutorial's module names (conv_1, conv_2, linear_1, linear_2).")
    session.plot(result, "learning curves", "curves", plots.plot_learning_curves, run.history,
                 title=result.article)
    _test_plots(session, result, model, splits.x_test, splits.y_test)


def _kmnist_cnn(session: _Session, result: ArticleResult, recipe) -> None:
    """Two rows: the KMNIST benchmark's protocol (behind the 95.12%, over the scale's
    seeds: the benchmark's figure is one run, and a run's spread is a few tenths) and
    the article's (one seed)."""
    from . import plots
    from .zoo import recipe as zoo_recipe

    model = None
    for protocol, label in (("benchmark", "benchmark protocol"), ("article", "article protocol")):
        variant = _scaled(session, zoo_recipe("kmnist_cnn", protocol=protocol))
        splits = _split(session, variant)
        if protocol == "benchmark":
            run, trained = _over_seeds(session, label, lambda seed: _recipe_run(
                session, result, variant, splits, label, seed=seed))
        else:
            run, trained = _recipe_run(session, result, variant, splits, label)
        result.runs.append(run)
        model = model or trained
        session.plot(result, f"learning curves, {label}", f"{protocol}_curves",
                     plots.plot_learning_curves, run.history, title=f"kmnist_cnn ({label})")
    result.notes += [
        "benchmark protocol: all 60,000 training images, 12 epochs, no early stopping, scored "
        "on the 10,000 test images (its curves' validation is the test set, as the benchmark's "
        "script shows it); the 95.12% comes from this protocol.",
        "article protocol: 48,000 train / 12,000 validation, ROC AUC every epoch, the best "
        "validation loss kept, early stopping (patience 3)."]
    _test_plots(session, result, model, splits.x_test, splits.y_test)


def _numpy_mlp(session: _Session, result: ArticleResult, recipe) -> None:
    """The MLP twice: fastcnn's correct version, and compat=True with the article's quirks,
    each over the scale's seeds."""
    from . import plots
    from .zoo import recipe as zoo_recipe

    splits = _split(session, recipe)
    model = None
    for compat, label, name in ((False, "fastcnn", "curves"),
                                (True, "fastcnn compat=True", "compat_curves")):
        variant = _scaled(session, zoo_recipe("numpy_mlp", compat=compat))
        run, trained = _over_seeds(session, label, lambda seed: _recipe_run(
            session, result, variant, splits, label, compat=compat, seed=seed))
        result.runs.append(run)
        model = model or trained
        unit = f"{max(1, variant.iterations // 100):,} iterations" if variant.iterations else "epoch"
        session.plot(result, f"learning curves, {label} (first seed)", name,
                     plots.plot_learning_curves, run.history, title=f"numpy_mlp ({label})",
                     xlabel=f"blocks of {unit}" if variant.iterations else "epoch")
    result.notes.append("compat=True reproduces the article's code as written (raw 0-255 pixels, "
                        "the tutorial's uniform(-1, 1)/sqrt(a*b) weights, a softmax over the batch "
                        "axis, MSE through the softmax's diagonal, lr 0.001 on its own gradient "
                        "scaling = 0.01 on fastcnn's MSE, 10,000 batches of 128 drawn with "
                        "replacement, the 10,000 test images scored in one batch); the default "
                        "model is the corrected version.")
    _test_plots(session, result, model, splits.x_test, splits.y_test)  # the default model's


def _keras_kfold(session: _Session, result: ArticleResult, recipe) -> None:
    """The tutorial's K-fold evaluation, then its final step.

    The folds are scikit-learn's ``KFold(5, shuffle=True, random_state=1)``; fold
    i trains from scratch (model seed ``seed + i``) and is scored on its held-out
    images, and the article's figure is the mean ± std of those scores. They run
    through :func:`fastcnn.cross_validate` on the executor that
    :func:`fastcnn.distributed.use_executor` names (this process by default).
    Last, as the tutorial does, one model trains on all the training images and
    is scored on the test images.
    """
    from . import plots
    from .datasets import kfold
    from .distributed import cross_validate
    from .zoo.runner import Splits

    recipe = _scaled(session, recipe)
    (x, y), (x_test, y_test) = session.data(recipe.dataset)
    folds = recipe.reported.get("folds", 5)
    session.say(f"-- {folds} folds of {len(x):,} training images, {count(recipe.epochs, 'epoch')} each")
    sklearn_folds = list(kfold(len(x), folds, seed=KFOLD_SEED, sklearn=True))
    seeds = [session.seed + folds * k for k in range(max(1, session.scale.seeds))]
    per_seed, seconds, fold_seconds, histories = [], 0.0, [], None
    for seed in seeds:  # the same folds each time; fold i's model seed is seed + i
        if len(seeds) > 1:
            session.say(f"   model seeds {seed}..{seed + folds - 1}")
        cv = cross_validate(recipe.model, x, y, cv=sklearn_folds,
                            fit={"epochs": recipe.epochs, "batch_size": recipe.batch_size},
                            seed=seed, progress=bool(session.verbose))
        scores = [float(score) for score in cv.scores["val_accuracy"]]
        for fold, score in enumerate(scores):
            session.say(f"   fold {fold + 1}: accuracy {score:.2%} ({cv.fit_seconds[fold]:.1f} s)")
        per_seed.append(scores)
        seconds += cv.seconds
        fold_seconds += [float(t) for t in cv.fit_seconds]
        if histories is None:  # the curves: the first seed's folds
            histories = [{name: [float(v) for v in values] for name, values in history.items()}
                         for history in cv.histories]
    pooled = [score for scores in per_seed for score in scores]
    measured = {"mean_accuracy": float(np.mean(pooled)), "std_accuracy": float(np.std(pooled)),
                "fold_accuracies": [float(np.mean(column)) for column in zip(*per_seed)],
                "fold_accuracies_per_seed": per_seed, "folds": folds, "epochs": recipe.epochs,
                "seconds": seconds / len(seeds), "fold_seconds": fold_seconds,
                "executor": cv.executor,
                "train_images": len(x) - len(x) // folds, "validation_images": len(x) // folds}
    if len(seeds) > 1:
        measured["seeds"] = seeds
        measured["seed_means"] = [float(np.mean(scores)) for scores in per_seed]
    scores = measured["fold_accuracies"]
    result.runs.append(Run("fastcnn", measured, histories))
    result.notes.append(f"Folds: scikit-learn's KFold({folds}, shuffle=True, random_state="
                        f"{KFOLD_SEED}), reimplemented; run on the {cv.executor} executor (training time: the wall "
                        "clock of all folds, per seed). The last column trains one model on all the training images and "
                        "scores it on the test images (the tutorial's final step).")
    if len(seeds) > 1:
        result.notes.append(
            f"The {folds} folds ran {len(seeds)} times, with model seeds "
            + ", ".join(f"{seed}..{seed + folds - 1}" for seed in seeds)
            + "; the mean ± std pools all " + f"{len(pooled)} scores. Per seed, the mean over "
            "the folds: " + ", ".join(f"{mean:.2%}" for mean in measured["seed_means"])
            + "; per fold, the mean over the seeds: "
            + ", ".join(f"{score:.2%}" for score in measured["fold_accuracies"]) + ".")
    final, _ = _recipe_run(session, result, recipe, Splits(x, y, None, None, x_test, y_test),
                           "fastcnn, all training images")
    result.runs.append(final)
    session.plot(result, "learning curves of every fold", "folds", plots.plot_kfold_curves,
                 histories, title=f"keras_kfold_cnn, {folds} folds")
    session.plot(result, "fold accuracies", "scores", plots.plot_fold_scores, scores,
                 reported=recipe.reported.get("mean_accuracy"))


class _Trajectory(Callback):
    """Through a full-batch run: the logs every ``every`` iterations (the curves), the train
    accuracy and cost at each of ``marks`` beside the test accuracy there, and a progress
    line every tenth of the run when ``verbose``. The train figures are those of that
    iteration's forward pass, as the article's loop prints them."""

    def __init__(self, every: int, total: int, marks, x_test, y_test, verbose: bool):
        self.every, self.total, self.marks, self.verbose = every, total, tuple(marks), verbose
        self.x_test, self.y_test = x_test, y_test
        self.history: dict = {"loss": [], "accuracy": []}
        self.at: dict = {}

    def on_epoch_end(self, epoch, logs=None):
        iteration = epoch + 1
        if iteration % self.every == 0 or iteration == self.total:
            for key in ("loss", "accuracy"):
                self.history[key].append(logs[key])
        if iteration in self.marks:
            test = self.model.evaluate(self.x_test, self.y_test)
            self.at[iteration] = {"train_accuracy": logs["accuracy"], "loss": logs["loss"],
                                  "test_accuracy": test["accuracy"]}
        if self.verbose and (iteration % max(1, self.total // 10) == 0 or iteration == self.total):
            print(f"   iteration {iteration:,}/{self.total:,}: cost {logs['loss']:.4f}, "
                  f"train accuracy {logs['accuracy']:.2%}", flush=True)


def _fixed_kernel(session: _Session, result: ArticleResult, recipe) -> None:
    """Full-batch gradient descent behind the frozen, hand-made kernel, over the scale's
    seeds; train accuracy, cost and test accuracy at half the iterations and at the end
    (20,000 and 40,000 in the article).

    ``Sequential.fit`` computes the frozen conv + pooling output once and trains the
    layers behind it on that: the same arithmetic as running the whole network every
    iteration, without redoing the convolution.
    """
    from . import plots
    from .zoo import get

    iterations = session.scale.iterations or recipe.epochs
    (x, y), (x_test, y_test) = session.data(recipe.dataset)
    every = max(1, iterations // 400)

    def train(seed):
        model = get(recipe.model, seed=seed)
        model.compile(recipe.make_optimizer(), recipe.loss)
        session.say(f"-- fastcnn (seed {seed}): {iterations:,} full-batch iterations on "
                    f"{len(x):,} training images (the frozen conv and pooling computed once)")
        trajectory = _Trajectory(every, iterations, (iterations // 2, iterations), x_test, y_test,
                                 bool(session.verbose))
        start = time.perf_counter()
        history = model.fit(x, y, epochs=iterations, batch_size=len(x), shuffle=False,
                            callbacks=[trajectory], verbose=0)
        seconds = time.perf_counter() - start
        test = model.evaluate(x_test, y_test)
        mid, end = trajectory.at[iterations // 2], trajectory.at[iterations]
        measured = {"test_accuracy": test["accuracy"], "test_loss": test["loss"],
                    "train_accuracy": end["train_accuracy"], "loss": end["loss"],
                    "mid_test_accuracy": mid["test_accuracy"],
                    "mid_train_accuracy": mid["train_accuracy"], "mid_loss": mid["loss"],
                    "iterations": len(history.epoch), "seconds": seconds,
                    "ms_per_iteration": 1000 * seconds / max(1, len(history.epoch)),
                    "train_images": len(x), "validation_images": None,
                    "test_images": len(x_test)}
        session.say(f"   test accuracy {test['accuracy']:.2%} in {seconds:.1f} s")
        return Run("fastcnn", measured, trajectory.history), model

    run, model = _over_seeds(session, "fastcnn", train)
    result.runs.append(run)
    result.notes += [
        "The frozen convolution and pooling are computed once; the trainable layers then "
        "take every full-batch gradient step (the same arithmetic).",
        f"Train accuracy and cost are those of the iteration's forward pass; the curves show "
        f"every {every:,}th iteration of the first seed."]
    session.plot(result, "training cost and accuracy per iteration (first seed)", "curves",
                 plots.plot_learning_curves, run.history, title="fixed_kernel_cnn",
                 xlabel=f"iteration / {every:,}")
    session.plot(result, "the fixed kernel's feature maps (input, after the convolution, after "
                 "pooling)", "feature_maps", plots.plot_feature_maps, model, x_test[0],
                 title="fixed 3x3 kernel")
    _test_plots(session, result, model, x_test, y_test)


_RUNNERS = {"pytorch_cnn": _pytorch_cnn, "kmnist_cnn": _kmnist_cnn,
            "keras_kfold_cnn": _keras_kfold, "numpy_mlp": _numpy_mlp,
            "fixed_kernel_cnn": _fixed_kernel}


def unavailable_reason(dataset: str) -> str | None:
    """Why ``dataset`` cannot be used here without downloading (None when it is complete)."""
    from .cli.datasets import describe_missing
    from .datasets import get_spec, status

    state = status(dataset)
    if state.complete:
        return None
    spec = get_spec(dataset)
    wanted = [spec.splits[item.split()[0]][item.split()[1]][0] for item in state.missing]
    return (f"{spec.name} {describe_missing(state)} from {state.folder}; download "
            f"{', '.join(spec.urls(name)[0] for name in wanted)} into that folder to run it")


def run_article(name: str, scale: Scale = FULL, out="reports", seed: int = 0,
                verbose: int = 1, _session: _Session | None = None) -> ArticleResult:
    """Run article ``name``'s recipe at ``scale``; plots go to ``out``."""
    from .backend import backend_name
    from .datasets import offline_mode
    from .errors import DatasetError
    from .zoo import recipe as zoo_recipe

    if name not in _RUNNERS:
        raise ValueError(f"unknown article {name!r}; choose one of: {', '.join(ARTICLES)} or all")
    session = _session or _Session(scale, Path(out), seed, verbose)
    session.out.mkdir(parents=True, exist_ok=True)
    recipe = zoo_recipe(name)
    full_size = dataclasses.replace(session.scale, seeds=FULL.seeds) == FULL
    result = ArticleResult(name, recipe.source, recipe.dataset, _recipe_summary(recipe),
                           dict(recipe.reported), reported_sources=dict(recipe.reported_sources),
                           backend=backend_name(), machine=machine_info(),
                           quick=not full_size, scale=asdict(session.scale))
    session.say(f"== {name}: {recipe.source} ({recipe.dataset})")
    start = time.perf_counter()
    reason = unavailable_reason(recipe.dataset)
    if reason is not None and offline_mode():
        result.available, result.reason = False, reason + " (offline mode: nothing downloaded)"
    else:
        try:
            _RUNNERS[name](session, result, recipe)
        except DatasetError as exc:
            result.available, result.reason = False, reason or str(exc)
            result.runs.clear()
            result.plots.clear()
    result.seconds = time.perf_counter() - start
    result.finished = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if not result.available:
        session.say(f"   dataset not available: {result.reason}")
    return result


def _recipe_summary(recipe) -> dict:
    return {"optimizer": recipe.optimizer, "lr": recipe.lr, "batch_size": recipe.batch_size,
            "epochs": recipe.epochs, "loss": recipe.loss, "split": recipe.split,
            "optimizer_args": dict(recipe.optimizer_args)}


def save_article(result: ArticleResult, out) -> Path:
    """Keep ``result`` as ``out/<article>.json``, for a later report to merge."""
    from .fileio import atomic_write

    path = Path(out) / f"{result.article}.json"
    with atomic_write(path, "w", create_folders=True) as handle:
        json.dump(asdict(result), handle, indent=1, default=_jsonable)
    path.chmod(0o644)
    return path


def saved_articles(out, quick: bool) -> dict[str, ArticleResult]:
    """The article results kept in ``out`` (see :func:`save_article`) of the same mode
    (quick or full), by article name."""
    found = {}
    for name in ARTICLES:
        path = Path(out) / f"{name}.json"
        if path.is_file():
            result = ArticleResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
            if result.quick == quick:
                found[name] = result
    return found


def reproduce(articles="all", quick: bool = False, out="reports", backend: str | None = None,
              seed: int = 0, verbose: int = 1, scale: Scale | None = None,
              seeds: int | None = None) -> Report:
    """Run the articles (names, or "all") and write ``out/report.md`` (plus ``report.json``
    and the plots). ``quick`` uses :data:`QUICK` (or ``scale``) instead of the full recipes;
    ``seeds`` overrides how many seeds the cheap articles run; ``backend`` runs it on that
    backend (default: the active one). Articles run before into ``out`` in the same mode
    stay in the report (see :func:`saved_articles`)."""
    from .backend import backend_name, use_backend

    names = list(ARTICLES) if articles in ("all", None) else \
        [articles] if isinstance(articles, str) else list(articles)
    if "all" in names:
        names = list(ARTICLES)
    unknown = [name for name in names if name not in ARTICLES]
    if unknown or not names:
        raise ValueError(f"unknown article {', '.join(map(repr, unknown)) or '(none)'}; "
                         f"choose from: {', '.join(ARTICLES)} or all")
    scale = scale or (QUICK if quick else FULL)
    quick = dataclasses.replace(scale, seeds=FULL.seeds) != FULL  # fewer seeds is still full size
    if seeds is not None:
        if int(seeds) < 1:
            raise ValueError(f"seeds must be >= 1, got {seeds}")
        scale = dataclasses.replace(scale, seeds=int(seeds))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with use_backend(backend or backend_name()) as active:
        session = _Session(scale, out, seed, verbose)
        session.say(f"reproducing {', '.join(names)} with the {active} backend"
                    f"{' (quick)' if quick else ''}; report in {out}/")
        results = {}
        for name in dict.fromkeys(names):
            results[name] = run_article(name, _session=session)
            save_article(results[name], out)
    merged = {**saved_articles(out, quick), **results}
    report = Report([merged[name] for name in ARTICLES if name in merged], active,
                    machine_info(), quick, None, time.perf_counter() - start)
    report.path = write_report(report, out, scale)
    session.say(f"wrote {report.path} in {report.seconds:.1f} s")
    return report


def rebuild_report(out, quick: bool = False) -> Report:
    """Write ``out/report.md`` and ``report.json`` again from the article results kept
    there, running nothing (e.g. after the report's layout changed)."""
    found = saved_articles(out, quick)
    if not found:
        raise ValueError(f"no {'quick' if quick else 'full'} article results (<article>.json) in {out}")
    articles = [found[name] for name in ARTICLES if name in found]
    report = Report(articles, articles[-1].backend, _saved_machine(out) or machine_info(), quick,
                    None, sum(result.seconds for result in articles))
    report.path = write_report(report, out, QUICK if quick else FULL)
    return report


def _saved_machine(out) -> dict | None:
    """The machine the kept report names (report.json), so that a rebuild does not credit
    the articles' runs to the machine that rebuilt it."""
    try:
        return json.loads((Path(out) / "report.json").read_text(encoding="utf-8"))["machine"]
    except (OSError, ValueError, KeyError):
        return None


# ---- the Markdown report --------------------------------------------------------------------------
def _percent(value) -> str:
    return f"{value:.2%}"


def _duration(seconds) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min {rest} s"


def _whole(value) -> str:
    return f"{int(round(value)):,d}"


ROWS = (
    ("test_accuracy", "test accuracy", _percent),
    ("mean_accuracy", "accuracy, mean ± std over the folds (of every seed)", _percent),
    ("train_accuracy", "train accuracy (at the end)", _percent),
    ("loss", "training cost (at the end)", "{:.4f}".format),
    ("mid_test_accuracy", "test accuracy at half the iterations", _percent),
    ("mid_train_accuracy", "train accuracy at half the iterations", _percent),
    ("mid_loss", "training cost at half the iterations", "{:.4f}".format),
    ("test_loss", "test loss", "{:.4f}".format),
    ("best_val_loss", "best validation loss", "{:.4f}".format),
    ("best_epoch", "best epoch", _whole),
    ("epochs", "epochs run (of each fold for K-fold)", _whole),
    ("iterations", "iterations", _whole),
    ("folds", "folds", _whole),
    ("seeds", "seeds", lambda seeds: ", ".join(map(str, seeds))),
    ("seconds", "training time (per seed)", _duration),
    ("ms_per_iteration", "time per iteration", "{:.1f} ms".format),
    ("train_images", "training images", _whole),
    ("validation_images", "validation images", _whole),
    ("test_images", "test images", _whole),
)
"""(key, row label, formatter) of the comparison table, in order; a ``<key>_std``
measurement is shown as ± beside its mean."""


def _reported_values(reported: dict) -> dict:
    values = dict(reported)
    if "minutes" in values:
        values["seconds"] = values.pop("minutes") * 60
    return values


def _cell(values: dict, key: str, formatter) -> str:
    value = values.get(key)
    if value is None:
        return "—"
    text = formatter(value)
    std = values.get("std_accuracy") if key == "mean_accuracy" else values.get(f"{key}_std")
    if std is not None:
        text += f" ± {formatter(std)}"
    return text


def _table(result: ArticleResult) -> list[str]:
    columns = [("article", _reported_values(result.reported))] + \
        [(run.label, run.measured) for run in result.runs]
    lines = ["| | " + " | ".join(label for label, _ in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for key, label, formatter in ROWS:
        if any(values.get(key) is not None for _, values in columns):
            lines.append(f"| {label} | " + " | ".join(_cell(values, key, formatter)
                                                     for _, values in columns) + " |")
    return lines


def _recipe_line(recipe: dict) -> str:
    extra = "".join(f", {key} {value}" for key, value in recipe["optimizer_args"].items())
    return (f"{recipe['optimizer']} (lr {recipe['lr']:g}{extra}), batch {recipe['batch_size']:,}, "
            f"{count(recipe['epochs'], 'epoch')}, {recipe['loss'].replace('_', '-')} loss; {recipe['split']}")


def _scale_line(scale: Scale) -> str:
    parts = [f"first {scale.train:,} training images" if scale.train else None,
             f"first {scale.test:,} test images" if scale.test else None,
             f"{count(scale.epochs, 'epoch')} per run or fold" if scale.epochs else None,
             count(scale.iterations, "iteration") if scale.iterations else None,
             f"{count(scale.seeds, 'seed')} for "
             f"{', '.join(SEEDED.values())}" if scale.seeds != Scale().seeds else None]
    return ", ".join(p for p in parts if p) or "the full recipes"


def _machine_line(machine: dict) -> str:
    return (f"{machine['cpu']}, {machine['cores']} cores, {machine['os']}; Python "
            f"{machine['python']}, NumPy {machine['numpy']}, fastcnn {machine['fastcnn']}")


SEEDED = {"numpy_mlp": "numpy_mlp", "fixed_kernel_cnn": "fixed_kernel_cnn",
          "keras_kfold_cnn": "each keras_kfold_cnn fold",
          "kmnist_cnn": "kmnist_cnn's benchmark protocol"}
"""What runs over ``Scale.seeds`` seeds: the cheap articles, each K-fold fold, and the run
behind a 95% target."""


def _run_line(result: ArticleResult, report: Report) -> str:
    """Where and how this article ran, when it differs from the report's header."""
    parts = [f"with the **{result.backend or report.backend}** backend"]
    seeds = result.scale.get("seeds")
    if result.article in SEEDED and seeds:
        parts.append(f"{seeds} seed{'s' if seeds > 1 else ''}")
    if result.machine and result.machine != report.machine:
        parts.append(f"on {_machine_line(result.machine)}")
    if result.finished:
        parts.append(f"finished {result.finished}")
    if result.seconds:
        parts.append(f"{_duration(result.seconds)} in all")
    return "; ".join(parts)


def _figure_label(key: str) -> str:
    key = "seconds" if key == "minutes" else key
    return next((label for row, label, _ in ROWS if row == key), key.replace("_", " "))


def _not_run(name: str) -> ArticleResult:
    from .zoo import recipe as zoo_recipe

    recipe = zoo_recipe(name)
    return ArticleResult(name, recipe.source, recipe.dataset, _recipe_summary(recipe),
                         dict(recipe.reported), available=False,
                         reported_sources=dict(recipe.reported_sources))


def render_report(report: Report, scale: Scale = FULL) -> str:
    """The Markdown text of ``report`` (plots referenced by file name); an article the
    report does not hold gets a section saying how to add it."""
    mode = (f"**quick** ({_scale_line(scale)}): a smoke test, not comparable to the articles"
            if report.quick else "the full recipes (each article's seeds below)")
    backends = sorted({result.backend or report.backend for result in report.articles})
    lines = ["# fastcnn: the tutorials reproduced", "",
             f"- Backend: **{', '.join(backends) or report.backend}**",
             f"- Machine: {_machine_line(report.machine)}",
             f"- Mode: {mode}",
             f"- Articles: {len(report.articles)} of {len(ARTICLES)} run; training time "
             f"{_duration(sum(result.seconds for result in report.articles))} in all "
             "(each article's own below)", ""]
    held = {result.article: result for result in report.articles}
    for name in ARTICLES:
        result = held.get(name)
        placeholder = result is None
        result = result or _not_run(name)
        lines += [f"## {result.article}: {result.source}", "",
                  f"Dataset: {result.dataset}. Recipe: {_recipe_line(result.recipe)}.", ""]
        if placeholder:
            lines += [f"**Not run for this report yet**: `fastcnn reproduce {name}"
                      f"{' --quick' if report.quick else ''} --out <this folder>` adds it.", "",
                      "The article's figures for reference:", ""]
        elif not result.available:
            lines += [f"**Dataset not available**: {result.reason}.", "",
                      "Not run; the article's figures for reference:", ""]
        else:
            lines += [f"Run {_run_line(result, report)}.", ""]
        lines += _table(result) + [""]
        if result.reported_sources:
            lines += ["Sources of the article's figures:", ""]
            lines += [f"- {_figure_label(key)}: {source}"
                      for key, source in result.reported_sources.items()] + [""]
        lines += [f"Note: {note}" for note in result.notes] + ([""] if result.notes else [])
        for caption, filename in result.plots.items():
            lines += [f"![{caption}]({filename})", f"*{caption}*", ""]
    return "\n".join(lines)


SPEEDRUN_FILE = "mnist_speedrun.json"
"""What ``python benchmarks/speedrun.py --seeds 5 --json <report folder>/mnist_speedrun.json``
writes: when the report's folder holds it, the report shows the speedrun after the articles."""

SPEEDRUN_REFERENCE = ("99% test accuracy in 0.76 s on a laptop GPU (GeForce GTX 1660 Ti), the "
                      "public study quoted in issue 23 that took PyTorch's own MNIST example "
                      "there one change at a time: the reference, not a CPU peer")


def render_speedrun(speedrun: dict) -> list[str]:
    """Markdown lines for a ``benchmarks/speedrun.py --json`` result: each seed of the
    recipe on fastcnn and on its PyTorch twin, the means and the ratio of the times."""
    from .bench.speedrun import Trained, by_engine, summarise

    machine = speedrun["machine"]
    engines = by_engine([Trained(**run) for run in speedrun["runs"]["recipe"]])
    by_seed = {}
    for engine, runs in engines.items():
        for run in runs:
            by_seed.setdefault(run.seed, {})[engine] = run
    lines = ["## Beyond the articles: mnist_speedrun (issue 23)", "",
             f"Reference: {SPEEDRUN_REFERENCE}.", "",
             f"Recipe: {speedrun['recipe']}; the same network, initial weights, optimizer, "
             "schedule and batch order in PyTorch, in the same process. Machine: "
             f"{machine['cpu']}, {machine['cores']} cores ({', '.join(machine['isa'])}), "
             f"{machine['date'][:16].replace('T', ' ')} UTC. Training time: from the start of "
             "`fit` to the end of its last step, kernels already compiled. "
             "`python benchmarks/speedrun.py --seeds 5 --json "
             f"<this folder>/{SPEEDRUN_FILE}` runs it again.", "",
             "| seed | " + " | ".join(f"{engine} accuracy | {engine} time" for engine in engines)
             + " |", "|---:|" + "---:|---:|" * len(engines)]
    for seed in sorted(by_seed):
        cells = [f"{_percent(by_seed[seed][e].accuracy)} | {by_seed[seed][e].seconds:.2f} s"
                 if e in by_seed[seed] else "— | —" for e in engines]
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    lines.append("")
    summaries = [summarise(runs) for runs in engines.values()]
    for found in summaries:
        lines.append(f"- {found.engine}: {found.accuracy:.2%} ± {found.spread:.2%} test "
                     f"accuracy, {found.reached} of {found.runs} seeds at 99.0% or more, "
                     f"{found.seconds:.2f} s of training on average")
    if len(summaries) == 2:
        ours, theirs = summaries
        share = ours.seconds / theirs.seconds
        lines.append(f"- {ours.engine} takes {share:.2f}x {theirs.engine}'s time ({1 / share:.2f}x "
                     "as fast)")
    lines += _quiet_lines(engines.get("pytorch", []), machine["cores"])
    return lines + [""]


def _quiet_lines(runs: list, threads: int) -> list[str]:
    """Whether PyTorch's runs on ``threads`` were on a quiet host (the bar's rule,
    environment.quiet_host), where they recorded it."""
    from .bench.environment import CPU_WALL_SHARE, STEAL_LIMIT

    quiet = [found for found in (run.quiet(threads) for run in runs) if found is not None]
    if not quiet:
        return []
    ratios = [run.cpu_per_wall for run in runs if run.cpu_per_wall is not None]
    steals = [run.steal for run in runs if run.steal is not None]
    return [f"- PyTorch's own CPU/wall {min(ratios):.2f}-{max(ratios):.2f}, host steal at most "
            f"{max(steals):.2%}: {sum(quiet)} of {len(quiet)} of its runs on a quiet host "
            f"(steal below {STEAL_LIMIT:.0%}, CPU/wall at least {CPU_WALL_SHARE * threads:.1f}), "
            "the bar's condition for a ratio to count"]


def _speedrun_lines(path: Path) -> list[str]:
    try:
        return render_speedrun(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError, IndexError) as error:
        raise ValueError(f"{path} is not a result of benchmarks/speedrun.py --json ({error!r}): "
                         "write it again with that command, or remove it") from error


def write_report(report: Report, out, scale: Scale = FULL) -> Path:
    """Write ``out/report.md`` and ``out/report.json``; returns the Markdown file's path.
    A speedrun result in ``out`` (SPEEDRUN_FILE) is shown after the articles."""
    from .fileio import atomic_write

    out = Path(out)
    path = out / "report.md"
    text = render_report(report, scale)
    if (out / SPEEDRUN_FILE).is_file():
        text = text.rstrip("\n") + "\n\n" + "\n".join(_speedrun_lines(out / SPEEDRUN_FILE))
    with atomic_write(path, create_folders=True) as handle:
        handle.write(text.encode("utf-8"))
    data = report.as_dict()
    data["scale"] = asdict(scale)
    with atomic_write(out / "report.json", "w", create_folders=True) as handle:
        json.dump(data, handle, indent=1, default=_jsonable)
    for written in (path, out / "report.json"):
        written.chmod(0o644)  # a temporary file's private mode is kept by the rename
    return path


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


__all__ = ["ARTICLES", "FULL", "QUICK", "ArticleResult", "Report", "Run", "Scale",
           "machine_info", "rebuild_report", "render_report", "render_speedrun", "reproduce",
           "run_article",
           "save_article",
           "saved_articles", "unavailable_reason", "write_report"]
