"""Classify image files with a saved model.

Each image (PNG, JPEG, ...) of one character is turned into an MNIST-style input
(grayscale, inverted when it is dark on light, cropped, scaled to 20 px and
centred by mass in 28x28), then the predicted class and the top probabilities
are printed.

Examples:
  fastcnn predict model.npz digit.png
  fastcnn predict model.npz shoe.jpg shirt.png --top 5

The class names are those of the dataset the model was trained on (the file records
it). An image that cannot be read is reported and the others are still classified;
the exit status is then non-zero.
"""

from __future__ import annotations

HELP = "classify image files with a saved model (class and top-3 probabilities)"


def add_arguments(parser) -> None:
    from .evaluate import add_dataset_option

    parser.add_argument("model", help="a model saved by fastcnn (.npz)")
    parser.add_argument("images", nargs="+", metavar="image", help="image files (PNG, JPEG, ...)")
    add_dataset_option(parser)
    parser.add_argument("--top", type=int, default=3, help="how many classes to list (default 3)")
    parser.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                        help="invert the image (auto: when the background is light)")


def class_label(index: int, names) -> str:
    """'Sneaker (7)' with class names, '7' without."""
    return f"{names[index]} ({index})" if names is not None else str(index)


def _class_names(model, dataset: str | None):
    """The names to print for ``dataset``'s classes: None for digits (a digit's name is its
    index) or when unknown; the file's own names when the model was trained on ``dataset``."""
    from ..datasets import get_spec
    from .evaluate import trained_on

    if dataset is None or dataset == "mnist":
        return None
    if trained_on(model) == dataset and model.data_info.get("classes"):
        return list(model.data_info["classes"])
    return list(get_spec(dataset).classes)


def run(args) -> int:
    """Prints one line per image; an image that cannot be read is reported on stderr and
    the others are still classified (exit status EXIT_ERROR when any failed)."""
    import sys

    import numpy as np

    from ..datasets import get_spec, load_image
    from ..errors import FastCNNError, InputError
    from . import EXIT_ERROR
    from .evaluate import check_fits, load_saved_model, model_dataset

    if args.top < 1:
        raise InputError(f"--top must be at least 1, got {args.top}")
    model = load_saved_model(args.model)
    dataset = model_dataset(model, args.dataset, args.allow_other_dataset)
    if dataset is not None:
        check_fits(model, get_spec(dataset).num_classes, dataset)
    names = _class_names(model, dataset)
    invert = {"auto": "auto", "yes": True, "no": False}[args.invert]
    readable, images, failed = [], [], 0
    for path in args.images:
        try:
            images.append(load_image(path, invert=invert))
            readable.append(path)
        except (FastCNNError, OSError) as exc:
            print(f"fastcnn predict: error: {exc}", file=sys.stderr)
            failed += 1
    probabilities = model.predict(np.concatenate(images)) if images else []
    for path, row in zip(readable, probabilities):
        order = np.argsort(row)[::-1][:args.top]
        ranking = ", ".join(f"{class_label(int(k), names)} {row[k]:.1%}" for k in order)
        print(f"{path}: {class_label(int(order[0]), names)}   top-{len(order)}: {ranking}")
    if failed and len(args.images) > 1:
        print(f"fastcnn predict: {failed} of {len(args.images)} images could not be read",
              file=sys.stderr)
    return EXIT_ERROR if failed else 0
