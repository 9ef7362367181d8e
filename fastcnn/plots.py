"""Pictures of training runs, predictions, feature maps and benchmarks, saved as PNG.

Every ``plot_*`` function draws one figure with matplotlib's Agg canvas (no
display, no pyplot state), writes it to ``path`` (parent folders are created)
at exactly ``size`` = (width, height) pixels, and returns the path.

    from fastcnn import plots
    history = model.fit(x, y, epochs=5, validation_split=0.1)
    plots.plot_learning_curves(history, "curves.png")
    plots.plot_predictions(x_test[:32], y_test[:32], model.predict_classes(x_test[:32]), "grid.png")
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .fileio import atomic_write

DPI = 100
MISTAKE_COLOR = "#d62728"
TRAIN_COLOR = "#1f77b4"
VALIDATION_COLOR = "#ff7f0e"


# ---- figure plumbing ---------------------------------------------------------------------
def _figure(size):
    """A matplotlib Figure of ``size`` (width, height) pixels on an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width, height = (int(v) for v in size)
    if width < 16 or height < 16:
        raise ValueError(f"a plot needs at least 16x16 pixels, got {width}x{height}")
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path) -> Path:
    path = Path(path)
    with atomic_write(path, "wb", create_folders=True) as handle:
        figure.savefig(handle, dpi=DPI, format="png")
    return path


def _tidy(figure) -> None:
    """Fit labels inside the canvas; a canvas too small for them keeps the default layout."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        figure.tight_layout()


def _as_history(history) -> dict:
    """A per-epoch dict from a History, a RunResult, or a dict of lists."""
    history = getattr(history, "history", history)
    if not isinstance(history, dict):
        raise TypeError(f"expected a History or a dict of per-epoch lists, got {type(history).__name__}")
    return {key: list(values) for key, values in history.items()}


def _curve_axes(figure, metrics):
    return [figure.add_subplot(1, len(metrics), i + 1) for i in range(len(metrics))]


def _curve_metrics(histories) -> list[str]:
    """The metrics to draw: loss, then accuracy when logged."""
    metrics = [m for m in ("loss", "accuracy") if any(m in h or f"val_{m}" in h for h in histories)]
    if not metrics:
        raise ValueError("the history has no loss or accuracy values to plot")
    return metrics


def _epoch_axis(axes, xlabel: str = "epoch") -> None:
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel(xlabel)
    axes.grid(alpha=0.3)


def _style(points: int) -> dict:
    return {"marker": "o", "markersize": 3} if points <= 30 else {}


# ---- learning curves -----------------------------------------------------------------------
def plot_learning_curves(history, path, title: str | None = None, size=(900, 380),
                         xlabel: str = "epoch") -> Path:
    """Loss and accuracy per epoch, training beside validation.

    history: a :class:`fastcnn.History`, ``RunResult`` or dict such as
    ``{"loss": [...], "val_loss": [...], "accuracy": [...], "val_accuracy": [...]}``.
    """
    history = _as_history(history)
    metrics = _curve_metrics([history])
    figure = _figure(size)
    for axes, metric in zip(_curve_axes(figure, metrics), metrics):
        for key, label, color in ((metric, "train", TRAIN_COLOR),
                                  (f"val_{metric}", "validation", VALIDATION_COLOR)):
            values = history.get(key)
            if values:
                epochs = np.arange(1, len(values) + 1)
                axes.plot(epochs, values, label=label, color=color, **_style(len(values)))
        _epoch_axis(axes, xlabel)
        axes.set_ylabel(metric)
        axes.legend()
    if title:
        figure.suptitle(title)
    _tidy(figure)
    return _save(figure, path)


def plot_kfold_curves(histories, path, title: str | None = None, size=(900, 380)) -> Path:
    """Every fold's loss and accuracy per epoch: training in blue, validation in orange
    (the Keras K-fold tutorial's diagnostic plot). histories: one History/dict per fold."""
    histories = [_as_history(h) for h in histories]
    if not histories:
        raise ValueError("plot_kfold_curves needs at least one fold's history")
    metrics = _curve_metrics(histories)
    figure = _figure(size)
    for axes, metric in zip(_curve_axes(figure, metrics), metrics):
        for fold, history in enumerate(histories):
            for key, label, color in ((metric, "train", TRAIN_COLOR),
                                      (f"val_{metric}", "validation", VALIDATION_COLOR)):
                values = history.get(key)
                if values:
                    axes.plot(np.arange(1, len(values) + 1), values, color=color, alpha=0.8,
                              label=label if fold == 0 else None, **_style(len(values)))
        _epoch_axis(axes)
        axes.set_ylabel(metric)
        axes.set_title(f"{metric}, {len(histories)} folds")
        axes.legend()
    if title:
        figure.suptitle(title)
    _tidy(figure)
    return _save(figure, path)


def plot_fold_scores(scores, path, title: str | None = None, size=(420, 380),
                     reported: float | None = None, label: str = "accuracy") -> Path:
    """A box plot of the folds' scores (with each fold as a dot); ``reported`` draws the
    article's mean as a dashed line."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if scores.size == 0:
        raise ValueError("plot_fold_scores needs at least one score")
    figure = _figure(size)
    axes = figure.add_subplot()
    axes.boxplot(scores, widths=0.5)
    axes.scatter(np.ones_like(scores), scores, color=TRAIN_COLOR, zorder=3, s=18)
    if reported is not None:
        axes.axhline(reported, color=MISTAKE_COLOR, linestyle="--", label=f"article mean {reported:.4f}")
        axes.legend(loc="lower right")
    axes.set_xticks([1], [f"{scores.size} folds"])
    axes.set_ylabel(label)
    axes.set_title(title or f"mean {scores.mean():.4f} ± {scores.std():.4f}")
    axes.grid(alpha=0.3, axis="y")
    _tidy(figure)
    return _save(figure, path)


# ---- images ---------------------------------------------------------------------------------
def _images_2d(images) -> np.ndarray:
    """(N, H, W) from (N, H, W), (N, 1, H, W) or (N, H*W) square images."""
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    elif images.ndim == 2:
        side = int(round(math.sqrt(images.shape[1])))
        if side * side != images.shape[1]:
            raise ValueError(f"flat images of {images.shape[1]} pixels are not square")
        images = images.reshape(len(images), side, side)
    if images.ndim != 3:
        raise ValueError(f"expected grayscale images (N, H, W) or (N, 1, H, W), got shape {images.shape}")
    return images


def _class_label(index: int, class_names) -> str:
    return str(class_names[index]) if class_names is not None else str(int(index))


def plot_predictions(images, y_true, y_pred, path, class_names=None, title: str | None = None,
                     columns: int = 8, size=None) -> Path:
    """A grid of images titled with the predicted class (and the true one when they differ);
    mistakes are drawn in red. y_pred: class indices (N,) or scores (N, L)."""
    images = _images_2d(images)
    y_true = np.asarray(y_true).astype(np.int64).ravel()
    y_pred = np.asarray(y_pred)
    if y_pred.ndim == 2:
        y_pred = y_pred.argmax(axis=1)
    y_pred = y_pred.astype(np.int64).ravel()
    if not len(images) == len(y_true) == len(y_pred) or len(images) == 0:
        raise ValueError(f"need as many images, labels and predictions (at least one), got "
                         f"{len(images)}, {len(y_true)}, {len(y_pred)}")
    columns = max(1, min(int(columns), len(images)))
    rows = math.ceil(len(images) / columns)
    figure = _figure(size or (columns * 105, rows * 120 + (30 if title else 0)))
    for i, (image, true, predicted) in enumerate(zip(images, y_true, y_pred)):
        axes = figure.add_subplot(rows, columns, i + 1)
        axes.imshow(image, cmap="gray")
        axes.set_xticks([])
        axes.set_yticks([])
        wrong = true != predicted
        text = _class_label(predicted, class_names)
        if wrong:
            text += f"\n(true {_class_label(true, class_names)})"
            for spine in axes.spines.values():
                spine.set_edgecolor(MISTAKE_COLOR)
                spine.set_linewidth(2)
        axes.set_title(text, fontsize=8, color=MISTAKE_COLOR if wrong else "black")
    mistakes = int((y_true != y_pred).sum())
    figure.suptitle(f"{title + ': ' if title else ''}{mistakes} of {len(images)} wrong (red)",
                    fontsize=10)
    _tidy(figure)
    return _save(figure, path)


def _one_image(model, image) -> np.ndarray:
    """A batch of one, float32 (1, *model.input_shape), from (H, W), (C, H, W) or (1, C, H, W)."""
    from .inputs import as_images

    x = np.asarray(image)
    while x.ndim < len(model.input_shape) + 1:
        x = x[None]
    if len(x) != 1:
        raise ValueError(f"expected one image, got a batch of {len(x)}")
    return as_images(x, model.input_shape)


def layer_outputs(model, image, upto: int | None = None) -> list[tuple[str, np.ndarray]]:
    """Run ``image`` through ``model``'s layers one at a time (inference mode) and return
    ``[(layer name, output)]``: host copies, per sample, e.g. (C, H, W) after a conv.

    image: one image (H, W) / (C, H, W) or a batch of one (1, C, H, W), uint8 or float.
    upto: stop after the layer of this index (default: every layer).
    """
    from .backend import get_backend

    x = _one_image(model, image)
    backend = get_backend()
    outputs = []
    for layer in model.layers[: None if upto is None else upto + 1]:
        x = np.array(backend.to_host(layer(x, training=False)))
        outputs.append((layer.name, x[0]))
    return outputs


def _default_feature_layers(model) -> list[int]:
    """The first convolution and the first pooling layer after it."""
    from .layers import AvgPool2D, Conv2D, MaxPool2D

    conv = next((i for i, layer in enumerate(model.layers) if isinstance(layer, Conv2D)), None)
    if conv is None:
        raise ValueError(f"model {model.title!r} has no Conv2D layer to show feature maps of")
    pool = next((i for i, layer in enumerate(model.layers[conv:], conv)
                 if isinstance(layer, (MaxPool2D, AvgPool2D))), None)
    return [conv] if pool is None else [conv, pool]


def plot_feature_maps(model, image, path, layers=None, max_channels: int = 8,
                      title: str | None = None, size=None) -> Path:
    """The input image, then the feature maps after each chosen layer (default: the first
    convolution and the pooling after it), as the fixed-kernel tutorial shows them.

    layers: layer indices or names; up to ``max_channels`` channels of each are drawn.
    """
    indices = _default_feature_layers(model) if layers is None else \
        [_layer_index(model, layer) for layer in layers]
    outputs = layer_outputs(model, image, upto=max(indices))
    maps = [(outputs[i][0], outputs[i][1]) for i in indices]
    for name, value in maps:
        if value.ndim != 3:
            raise ValueError(f"layer {name!r} outputs shape {value.shape}, not feature maps (C, H, W)")
    panels = [[("input", _one_image(model, image)[0, 0])]]
    for name, value in maps:
        panels.append([(f"{name}[{c}]" if len(value) > 1 else name, value[c])
                       for c in range(min(len(value), max_channels))])
    if all(len(row) == 1 for row in panels):
        panels = [[panel for row in panels for panel in row]]  # one row: input, conv, pool
    rows, columns = len(panels), max(len(row) for row in panels)
    figure = _figure(size or (columns * 150, rows * 165 + (30 if title else 0)))
    for r, row in enumerate(panels):
        for c, (name, value) in enumerate(row):
            axes = figure.add_subplot(rows, columns, r * columns + c + 1)
            axes.imshow(value, cmap="gray")
            axes.set_title(f"{name} {value.shape[0]}x{value.shape[1]}", fontsize=8)
            axes.set_xticks([])
            axes.set_yticks([])
    if title:
        figure.suptitle(title)
    _tidy(figure)
    return _save(figure, path)


def _layer_index(model, layer) -> int:
    if isinstance(layer, (int, np.integer)):
        if not -len(model.layers) <= layer < len(model.layers):
            raise ValueError(f"layer index {layer} is out of range for {len(model.layers)} layers")
        return int(layer) % len(model.layers)
    names = [item.name for item in model.layers]
    if layer not in names:
        raise ValueError(f"model {model.title!r} has no layer {layer!r}; its layers: {', '.join(names)}")
    return names.index(layer)


# ---- tables as pictures -----------------------------------------------------------------
def plot_confusion_matrix(matrix, path, class_names=None, title: str | None = None,
                          size=(560, 500)) -> Path:
    """A heatmap of confusion counts (rows: true class, columns: predicted class), each
    cell labelled with its count; see :func:`fastcnn.metrics.confusion_matrix`."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.size == 0:
        raise ValueError(f"a confusion matrix is square (L, L), got shape {matrix.shape}")
    labels = [str(name) for name in class_names] if class_names is not None else \
        [str(i) for i in range(len(matrix))]
    figure = _figure(size)
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    threshold = matrix.max() / 2 if matrix.max() > 0 else 1
    small = len(matrix) > 12
    for (row, column), count in np.ndenumerate(matrix):
        if count or not small:
            axes.text(column, row, str(int(count)) if float(count).is_integer() else f"{count:.2f}",
                      ha="center", va="center", fontsize=6 if small else 8,
                      color="white" if count > threshold else "black")
    axes.set_xticks(range(len(labels)), labels, rotation=45 if max(map(len, labels)) > 2 else 0,
                    ha="right" if max(map(len, labels)) > 2 else "center", fontsize=8)
    axes.set_yticks(range(len(labels)), labels, fontsize=8)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    total = matrix.sum()
    accuracy = np.trace(matrix) / total if total else float("nan")
    axes.set_title(title or f"confusion matrix (accuracy {accuracy:.2%})")
    _tidy(figure)
    return _save(figure, path)


def plot_benchmark(rows, path, title: str | None = None, size=(900, 450)) -> Path:
    """Grouped bars of training throughput: one group per ``row["group"]`` (e.g. a model or
    a kernel), one bar per ``row["backend"]``, height ``row["samples_per_s"]``.

    rows: dicts with at least "group", "backend", "samples_per_s" ("name" is accepted
    for "group"); rows whose samples_per_s is None (unbatched timings) are left out.
    A logarithmic axis is used when the values span more than 50x.
    """
    try:
        table = [(str(row.get("group", row.get("name"))), str(row["backend"]),
                  float(row["samples_per_s"])) for row in rows if row["samples_per_s"] is not None]
    except KeyError as exc:
        raise ValueError(f"every benchmark row needs 'group', 'backend' and 'samples_per_s' "
                         f"(missing {exc})") from None
    if not table:
        raise ValueError("plot_benchmark needs at least one result row with a samples_per_s value")
    groups = list(dict.fromkeys(group for group, _, _ in table))
    backends = list(dict.fromkeys(backend for _, backend, _ in table))
    values = {(group, backend): value for group, backend, value in table}
    figure = _figure(size)
    axes = figure.add_subplot()
    width = 0.8 / len(backends)
    positive = [v for v in values.values() if v > 0]
    for b, backend in enumerate(backends):
        xs = [g + (b - (len(backends) - 1) / 2) * width for g, group in enumerate(groups)
              if (group, backend) in values]
        heights = [values[(group, backend)] for group in groups if (group, backend) in values]
        bars = axes.bar(xs, heights, width * 0.95, label=backend)
        axes.bar_label(bars, labels=[_short_number(h) for h in heights], fontsize=7, padding=2)
    if positive and max(positive) / min(positive) > 50:
        axes.set_yscale("log")
    axes.set_xticks(range(len(groups)), groups, rotation=20 if len(groups) > 4 else 0,
                    ha="right" if len(groups) > 4 else "center")
    axes.set_ylabel("samples / s (higher is better)")
    axes.set_title(title or "training throughput by backend")
    axes.grid(alpha=0.3, axis="y")
    axes.legend(title="backend", fontsize=8)
    axes.margins(y=0.15)
    _tidy(figure)
    return _save(figure, path)


def _short_number(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.1f}M"
    if value >= 1e4:
        return f"{value / 1e3:.0f}k"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


__all__ = ["layer_outputs", "plot_benchmark", "plot_confusion_matrix", "plot_feature_maps",
           "plot_fold_scores", "plot_kfold_curves", "plot_learning_curves", "plot_predictions"]
