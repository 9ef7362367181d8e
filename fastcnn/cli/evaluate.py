"""Score a saved model on a dataset split: accuracy, loss, per-class accuracy and the
confusion matrix.

The model is scored on the dataset it was trained on, which the file records
(--dataset names another only with --allow-other-dataset), and the command first
says how many epochs the model has trained and on what.

Examples:
  fastcnn evaluate model.npz
  fastcnn evaluate model.npz --limit 1000 --split train
  fastcnn evaluate model.npz --plot-confusion confusion.png
"""

from __future__ import annotations

from pathlib import Path

HELP = "score a saved model: accuracy, loss, per-class accuracy, confusion matrix"


def add_arguments(parser) -> None:
    parser.add_argument("model", help="a model saved by fastcnn (.npz)")
    add_dataset_option(parser)
    parser.add_argument("--split", choices=("train", "test"), default="test")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--plot-confusion", metavar="PNG", default=None,
                        help="also draw the confusion matrix as a heatmap into this PNG file")


def add_dataset_option(parser, help: str = "mnist, fashion-mnist or kmnist (default: the one the "
                       "model was trained on)", mismatch: bool = True) -> None:
    # any case, - or _ ("MNIST", "fashion_mnist"): checked where it is used, as load() does
    parser.add_argument("--dataset", default=None, help=help)
    if mismatch:
        parser.add_argument("--allow-other-dataset", action="store_true",
                            help="use --dataset even though the model was trained on another one")


# ---- shared with `fastcnn predict` -----------------------------------------------------------
def load_saved_model(path):
    """A model saved with ``model.save``; CheckpointError (one line) for anything else."""
    import zipfile

    from .. import load_model
    from ..errors import CheckpointError

    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a saved model (.npz)")
    if not path.exists():
        raise CheckpointError(f"model file {path} does not exist")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is not a saved fastcnn model: not an .npz archive "
                              "(save one with `fastcnn train --save model.npz`)")
    return load_model(path)


def trained_on(model) -> str | None:
    """The dataset name ``model``'s file records (``model.data_info``), or None."""
    return (model.data_info or {}).get("dataset")


def model_dataset(model, requested: str | None, allow_other: bool = False,
                  flag: str = "--allow-other-dataset") -> str | None:
    """The dataset to use with ``model``: ``requested`` (InputError when the model was
    trained on another one, unless ``allow_other``), else the one it was trained on,
    else (files saved before fastcnn recorded it) the tutorial dataset of a zoo model
    of that name, else None (unknown)."""
    from ..datasets.registry import DATASETS, canonical_name
    from ..errors import InputError
    from ..zoo import MODELS, recipe

    saved = trained_on(model)
    if requested:
        requested = canonical_name(requested)
        if saved is not None and requested != saved and not allow_other:
            raise InputError(f"the model {model.title!r} was trained on {saved}, not {requested}: "
                             f"drop --dataset, or add {flag} to use {requested} anyway")
        return requested
    if saved is not None:
        if saved not in DATASETS:
            raise InputError(f"the model {model.title!r} was trained on {saved!r}, which fastcnn "
                             f"cannot load: pass --dataset and {flag}")
        return saved
    base = model.title.removesuffix("_compat")
    return recipe(base).dataset if base in MODELS else None


def training_summary(model) -> str:
    """'trained 5 epochs on fashion-mnist (60,000 training images)', or what is unknown."""
    from ..wording import count

    info = model.data_info or {}
    if "dataset" not in info:
        return f"trained {count(model.epoch, 'epoch')} (the file does not say on which dataset)"
    images = f" ({count(info['train_images'], 'training image')})" if "train_images" in info else ""
    return f"trained {count(model.epoch, 'epoch')} on {info['dataset']}{images}"


def check_fits(model, num_classes: int, dataset: str) -> None:
    """InputError unless ``model`` takes 28x28 grayscale images and scores num_classes."""
    from ..errors import InputError

    if tuple(model.input_shape) != (1, 28, 28):
        raise InputError(f"model {model.title!r} takes inputs of shape {tuple(model.input_shape)}; "
                         f"{dataset} images are (1, 28, 28)")
    if model.output_shape[0] != num_classes:
        raise InputError(f"model {model.title!r} outputs {model.output_shape[0]} classes; "
                         f"{dataset} has {num_classes}")


def _ensure_compiled(model) -> None:
    """Models saved before compile get the zoo recipe's loss (cross-entropy otherwise)."""
    from ..zoo import MODELS, recipe

    if model.loss is None:
        base = model.title.removesuffix("_compat")
        model.compile("adam", recipe(base).loss if base in MODELS else "cross_entropy")


# ---- text tables ---------------------------------------------------------------------------
def confusion_table(matrix, labels) -> str:
    """Rows: true class, columns: predicted class; labels are shortened to fit."""
    labels = [str(label)[:6] for label in labels]
    width = max(max(len(label) for label in labels), len(str(int(matrix.max(initial=0)))), 4)
    lines = [" " * (width + 2) + "predicted →",
             f"{'true':>{width}}  " + " ".join(f"{label:>{width}}" for label in labels)]
    for label, row in zip(labels, matrix):
        lines.append(f"{label:>{width}}  " + " ".join(f"{int(count):>{width}}" for count in row))
    return "\n".join(lines)


def run(args) -> int:
    import numpy as np

    from ..backend import backend_name
    from ..datasets import get_spec, load
    from ..errors import InputError
    from ..metrics import confusion_matrix, per_class_accuracy
    from ..wording import count

    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit must be at least 1, got {args.limit}")
    model = load_saved_model(args.model)
    dataset = model_dataset(model, args.dataset, args.allow_other_dataset) or "mnist"
    spec = get_spec(dataset)
    check_fits(model, spec.num_classes, dataset)
    x, y = load(dataset, args.split, progress=True)
    x, y = x[:args.limit], y[:args.limit]
    _ensure_compiled(model)
    print(f"{args.model}: {model.title}, {training_summary(model)}")
    print(f"evaluating it on {count(len(x), dataset + ' ' + args.split + ' image')} "
          f"with the {backend_name()} backend")
    scores = model.evaluate(x, y, batch_size=args.batch_size)
    predicted = model.predict_classes(x, batch_size=args.batch_size)
    matrix = confusion_matrix(y, predicted, spec.num_classes)
    per_class = per_class_accuracy(y, predicted, spec.num_classes)
    print(f"accuracy: {scores['accuracy']:.2%}  ({int(np.trace(matrix)):,} of {len(x):,} correct)")
    print(f"loss:     {scores['loss']:.4f}  ({model.loss.name})")
    print("\nper-class accuracy:")
    for index, (name, value) in enumerate(zip(spec.classes, per_class)):
        shown = "   n/a" if np.isnan(value) else f"{value:6.2%}"
        print(f"  {index}  {name:<12} {shown}  ({count(int(matrix[index].sum()), 'image')})")
    print("\nconfusion matrix:")
    print(confusion_table(matrix, [str(i) for i in range(spec.num_classes)]))
    if args.plot_confusion:
        from ..plots import plot_confusion_matrix

        names = None if dataset == "kmnist" else spec.classes  # matplotlib's font lacks hiragana
        path = plot_confusion_matrix(matrix, args.plot_confusion, class_names=names,
                                     title=f"{model.title} on {dataset} {args.split}")
        print(f"\nsaved the confusion matrix plot to {path}")
    return 0
