"""Reproducing each zoo tutorial on its real dataset, reported beside the article's figures.

    from fastcnn.reproduce import reproduce
    report = reproduce(["numpy_mlp", "fixed_kernel_cnn"], quick=True, out="reports")
    print(report.path)            # reports/report.md, with the plots beside it

Each article runs its zoo recipe as the tutorial did (its split, epochs,
callbacks); ``quick`` runs a short version on small subsets for CI, whose
numbers are not comparable to the articles'. A dataset that is not on this
machine (KMNIST's training images) is reported as not available, with the
reason, and nothing is made up for it.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .callbacks import Callback

ARTICLES = ("pytorch_cnn", "keras_kfold_cnn", "kmnist_cnn", "numpy_mlp", "fixed_kernel_cnn")
"""The zoo models whose articles can be reproduced, in report order."""

KFOLD_SEED = 1  # the Keras tutorial's KFold(5, shuffle=True, random_state=1)


@dataclass(frozen=True)
class Scale:
    """How much of each recipe runs; None keeps the recipe's own value.

    train/test: keep the first N training/test images; epochs: epochs of each
    run (of each fold for K-fold); iterations: full-batch iterations of the
    fixed-kernel tutorial.
    """

    train: int | None = None
    test: int | None = None
    epochs: int | None = None
    iterations: int | None = None


FULL = Scale()
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


def _epochs(count: int) -> str:
    return f"{count:,} epoch" + ("" if count == 1 else "s")


def _sizes(splits) -> dict:
    return {"train_images": len(splits.x_train),
            "validation_images": None if splits.x_val is None else len(splits.x_val),
            "test_images": len(splits.x_test)}


def _recipe_run(session: _Session, result: ArticleResult, recipe, splits, label: str,
                compat: bool = False) -> tuple[Run, object]:
    """Train ``recipe`` on ``splits`` with the zoo runner; returns the Run and the model."""
    from .zoo.runner import run

    session.say(f"-- {label}: {len(splits.x_train):,} training images, {_epochs(recipe.epochs)}")
    outcome = run(recipe, splits, seed=session.seed, verbose=_fit_verbosity(session), compat=compat)
    measured = {"test_accuracy": outcome.test["accuracy"], "test_loss": outcome.test["loss"],
                "epochs": outcome.epochs_run, "seconds": outcome.seconds, **_sizes(splits)}
    for key in ("best_epoch", "best_val_loss"):
        if key in outcome.extra:
            measured[key] = outcome.extra[key]
    session.say(f"   test accuracy {measured['test_accuracy']:.2%} in {outcome.seconds:.1f} s")
    return Run(label, measured, outcome.history), outcome.model


def _test_plots(session: _Session, result: ArticleResult, model, x_test, y_test) -> None:
    """The confusion matrix and a grid of the first test images with their predictions."""
    from . import plots
    from .datasets import get_spec
    from .metrics import confusion_matrix

    spec = get_spec(result.dataset)
    names = None if result.dataset == "kmnist" else spec.classes  # matplotlib's font has no hiragana
    predicted = model.predict_classes(x_test)
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
    return recipe.replace(epochs=session.scale.epochs)


def _standard_article(session: _Session, result: ArticleResult, recipe) -> None:
    """A tutorial trained once with the zoo runner: pytorch_cnn, kmnist_cnn."""
    from . import plots

    splits = _split(session, recipe)
    run, model = _recipe_run(session, result, _scaled(session, recipe), splits, "fastcnn")
    result.runs.append(run)
    session.plot(result, "learning curves", "curves", plots.plot_learning_curves, run.history,
                 title=result.article)
    _test_plots(session, result, model, splits.x_test, splits.y_test)


def _numpy_mlp(session: _Session, result: ArticleResult, recipe) -> None:
    """The MLP twice: fastcnn's correct version, and compat=True with the article's quirks."""
    from . import plots
    from .zoo import recipe as zoo_recipe

    splits = _split(session, recipe)
    model = None
    for compat, label, name in ((False, "fastcnn", "curves"),
                                (True, "fastcnn compat=True", "compat_curves")):
        variant = _scaled(session, zoo_recipe("numpy_mlp", compat=compat))
        run, trained = _recipe_run(session, result, variant, splits, label, compat=compat)
        result.runs.append(run)
        model = model or trained
        session.plot(result, f"learning curves, {label}", name, plots.plot_learning_curves,
                     run.history, title=f"numpy_mlp ({label})")
    result.notes.append("compat=True reproduces the article's code as written (raw 0-255 pixels, "
                        "a softmax over the batch axis, MSE through the softmax's diagonal); the "
                        "default model is the corrected version.")
    _test_plots(session, result, model, splits.x_test, splits.y_test)


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
    session.say(f"-- {folds} folds of {len(x):,} training images, {_epochs(recipe.epochs)} each")
    sklearn_folds = list(kfold(len(x), folds, seed=KFOLD_SEED, sklearn=True))
    cv = cross_validate(recipe.model, x, y, cv=sklearn_folds,
                        fit={"epochs": recipe.epochs, "batch_size": recipe.batch_size},
                        seed=session.seed, progress=bool(session.verbose))
    scores = [float(score) for score in cv.scores["val_accuracy"]]
    for fold, score in enumerate(scores):
        session.say(f"   fold {fold + 1}: accuracy {score:.2%} ({cv.fit_seconds[fold]:.1f} s)")
    measured = {"mean_accuracy": float(np.mean(scores)), "std_accuracy": float(np.std(scores)),
                "fold_accuracies": scores, "folds": folds, "epochs": recipe.epochs,
                "seconds": cv.seconds, "fold_seconds": [float(t) for t in cv.fit_seconds],
                "executor": cv.executor,
                "train_images": len(x) - len(x) // folds, "validation_images": len(x) // folds}
    histories = [{name: [float(v) for v in values] for name, values in history.items()}
                 for history in cv.histories]
    result.runs.append(Run("fastcnn", measured, histories))
    result.notes.append(f"Folds: scikit-learn's KFold({folds}, shuffle=True, random_state="
                        f"{KFOLD_SEED}), reimplemented; run on the {cv.executor} executor (training time: the wall "
                        "clock of all folds). The last column trains one model on all the training images and "
                        "scores it on the test images (the tutorial's final step).")
    final, _ = _recipe_run(session, result, recipe, Splits(x, y, None, None, x_test, y_test),
                           "fastcnn, all training images")
    result.runs.append(final)
    session.plot(result, "learning curves of every fold", "folds", plots.plot_kfold_curves,
                 histories, title=f"keras_kfold_cnn, {folds} folds")
    session.plot(result, "fold accuracies", "scores", plots.plot_fold_scores, scores,
                 reported=recipe.reported.get("mean_accuracy"))


class _EveryN(Callback):
    """Prints the running loss and accuracy every ``every`` full-batch iterations."""

    def __init__(self, every: int, total: int):
        self.every, self.total = every, total

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0 or epoch + 1 == self.total:
            print(f"   iteration {epoch + 1}/{self.total}: loss {logs['loss']:.4f}, "
                  f"accuracy {logs['accuracy']:.2%}", flush=True)


def _fixed_kernel(session: _Session, result: ArticleResult, recipe) -> None:
    """Full-batch gradient descent behind the frozen, hand-made kernel.

    ``Sequential.fit`` computes the frozen conv + pooling output once and trains the
    layers behind it on that: the same arithmetic as running the whole network every
    iteration, without redoing the convolution.
    """
    from . import plots
    from .zoo import get

    iterations = session.scale.iterations or recipe.epochs
    (x, y), (x_test, y_test) = session.data(recipe.dataset)
    model = get(recipe.model, seed=session.seed)
    model.compile(recipe.make_optimizer(), recipe.loss)
    session.say(f"-- fastcnn: {iterations:,} full-batch iterations on {len(x):,} training images "
                "(the frozen conv and pooling output computed once)")
    start = time.perf_counter()
    callbacks = [_EveryN(max(1, iterations // 10), iterations)] if session.verbose else []
    history = model.fit(x, y, epochs=iterations, batch_size=len(x), shuffle=False,
                        callbacks=callbacks, verbose=0)
    seconds = time.perf_counter() - start
    test = model.evaluate(x_test, y_test)
    measured = {"test_accuracy": test["accuracy"], "test_loss": test["loss"],
                "iterations": len(history.epoch), "seconds": seconds,
                "train_images": len(x), "validation_images": None, "test_images": len(x_test)}
    session.say(f"   test accuracy {test['accuracy']:.2%} in {seconds:.1f} s")
    result.runs.append(Run("fastcnn", measured, history.history))
    result.notes.append("The frozen convolution and pooling are computed once; the trainable "
                        "layers then take every full-batch gradient step (the same arithmetic).")
    session.plot(result, "training loss and accuracy per iteration", "curves",
                 plots.plot_learning_curves, history, title="fixed_kernel_cnn", xlabel="iteration")
    session.plot(result, "the fixed kernel's feature maps (input, after the convolution, after "
                 "pooling)", "feature_maps", plots.plot_feature_maps, model, x_test[0],
                 title="fixed 3x3 edge kernel")
    _test_plots(session, result, model, x_test, y_test)


_RUNNERS = {"pytorch_cnn": _standard_article, "kmnist_cnn": _standard_article,
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
    from .datasets import offline_mode
    from .errors import DatasetError
    from .zoo import recipe as zoo_recipe

    if name not in _RUNNERS:
        raise ValueError(f"unknown article {name!r}; choose one of: {', '.join(ARTICLES)} or all")
    session = _session or _Session(scale, Path(out), seed, verbose)
    session.out.mkdir(parents=True, exist_ok=True)
    recipe = zoo_recipe(name)
    result = ArticleResult(name, recipe.source, recipe.dataset, _recipe_summary(recipe),
                           dict(recipe.reported))
    session.say(f"== {name}: {recipe.source} ({recipe.dataset})")
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
    if not result.available:
        session.say(f"   dataset not available: {result.reason}")
    return result


def _recipe_summary(recipe) -> dict:
    return {"optimizer": recipe.optimizer, "lr": recipe.lr, "batch_size": recipe.batch_size,
            "epochs": recipe.epochs, "loss": recipe.loss, "split": recipe.split,
            "optimizer_args": dict(recipe.optimizer_args)}


def reproduce(articles="all", quick: bool = False, out="reports", backend: str | None = None,
              seed: int = 0, verbose: int = 1, scale: Scale | None = None) -> Report:
    """Run the articles (names, or "all") and write ``out/report.md`` (plus ``report.json``
    and the plots). ``quick`` uses :data:`QUICK` (or ``scale``) instead of the full recipes;
    ``backend`` runs it on that backend (default: the active one)."""
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
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with use_backend(backend or backend_name()) as active:
        session = _Session(scale, out, seed, verbose)
        session.say(f"reproducing {', '.join(names)} with the {active} backend"
                    f"{' (quick)' if quick else ''}; report in {out}/")
        results = [run_article(name, _session=session) for name in dict.fromkeys(names)]
    report = Report(results, active, machine_info(), bool(quick), None,
                    time.perf_counter() - start)
    report.path = write_report(report, out, scale)
    session.say(f"wrote {report.path} in {report.seconds:.1f} s")
    return report


# ---- the Markdown report --------------------------------------------------------------------------
def _percent(value) -> str:
    return f"{value:.2%}"


def _duration(seconds) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min {rest} s"


ROWS = (
    ("test_accuracy", "test accuracy", _percent),
    ("mean_accuracy", "accuracy, mean ± std over the folds", _percent),
    ("test_loss", "test loss", "{:.4f}".format),
    ("best_val_loss", "best validation loss", "{:.4f}".format),
    ("best_epoch", "best epoch", "{:d}".format),
    ("epochs", "epochs run (of each fold for K-fold)", "{:d}".format),
    ("iterations", "full-batch iterations", "{:,d}".format),
    ("folds", "folds", "{:d}".format),
    ("seconds", "training time", _duration),
    ("train_images", "training images", "{:,d}".format),
    ("validation_images", "validation images", "{:,d}".format),
    ("test_images", "test images", "{:,d}".format),
)
"""(key, row label, formatter) of the comparison table, in order."""


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
    if key == "mean_accuracy" and values.get("std_accuracy") is not None:
        text += f" ± {_percent(values['std_accuracy'])}"
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
            f"{recipe['epochs']:,} epochs, {recipe['loss'].replace('_', '-')} loss; {recipe['split']}")


def _scale_line(scale: Scale) -> str:
    parts = [f"first {scale.train:,} training images" if scale.train else None,
             f"first {scale.test:,} test images" if scale.test else None,
             f"{_epochs(scale.epochs)} per run or fold" if scale.epochs else None,
             f"{scale.iterations:,} full-batch iterations" if scale.iterations else None]
    return ", ".join(p for p in parts if p) or "the full recipes"


def render_report(report: Report, scale: Scale = FULL) -> str:
    """The Markdown text of ``report`` (plots referenced by file name)."""
    machine = report.machine
    mode = (f"**quick** ({_scale_line(scale)}): a smoke test, not comparable to the articles"
            if report.quick else f"full recipes ({_scale_line(scale)})")
    lines = ["# fastcnn: the tutorials reproduced", "",
             f"- Backend: **{report.backend}**",
             f"- Machine: {machine['cpu']}, {machine['cores']} cores, {machine['os']}; Python "
             f"{machine['python']}, NumPy {machine['numpy']}, fastcnn {machine['fastcnn']}",
             f"- Mode: {mode}",
             f"- Total time: {_duration(report.seconds)}", ""]
    for result in report.articles:
        lines += [f"## {result.article}: {result.source}", "",
                  f"Dataset: {result.dataset}. Recipe: {_recipe_line(result.recipe)}.", ""]
        if not result.available:
            lines += [f"**Dataset not available**: {result.reason}.", "",
                      "Not run; the article's figures for reference:", ""]
        lines += _table(result) + [""]
        lines += [f"Note: {note}" for note in result.notes] + ([""] if result.notes else [])
        for caption, filename in result.plots.items():
            lines += [f"![{caption}]({filename})", f"*{caption}*", ""]
    return "\n".join(lines)


def write_report(report: Report, out, scale: Scale = FULL) -> Path:
    """Write ``out/report.md`` and ``out/report.json``; returns the Markdown file's path."""
    from .fileio import atomic_write

    out = Path(out)
    path = out / "report.md"
    with atomic_write(path) as handle:
        handle.write(render_report(report, scale).encode("utf-8"))
    data = report.as_dict()
    data["scale"] = asdict(scale)
    with atomic_write(out / "report.json", "w") as handle:
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
           "machine_info", "render_report", "reproduce",
           "run_article", "unavailable_reason", "write_report"]
