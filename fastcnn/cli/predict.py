"""Classify image files with a saved model.

Each image (PNG, JPEG, ...) of one character is turned into an MNIST-style input
(grayscale, inverted when it is dark on light, cropped, scaled to 20 px and
centred by mass in 28x28), then the predicted class and the top probabilities
are printed.

Examples:
  fastcnn predict model.npz digit.png
  fastcnn predict model.npz shoe.jpg shirt.png --dataset fashion-mnist --top 5
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


def run(args) -> int:
    import numpy as np

    from ..datasets import get_spec, load_image
    from ..errors import InputError
    from .evaluate import check_fits, load_saved_model, model_dataset

    if args.top < 1:
        raise InputError(f"--top must be at least 1, got {args.top}")
    model = load_saved_model(args.model)
    dataset = model_dataset(model, args.dataset)
    names = None
    if dataset is not None:
        spec = get_spec(dataset)
        check_fits(model, spec.num_classes, dataset)
        if dataset != "mnist":  # a digit's name is its index
            names = spec.classes
    invert = {"auto": "auto", "yes": True, "no": False}[args.invert]
    images = np.concatenate([load_image(path, invert=invert) for path in args.images])
    probabilities = model.predict(images)
    top = min(args.top, probabilities.shape[1])
    for path, row in zip(args.images, probabilities):
        order = np.argsort(row)[::-1][:top]
        ranking = ", ".join(f"{class_label(int(k), names)} {row[k]:.1%}" for k in order)
        print(f"{path}: {class_label(int(order[0]), names)}   top-{top}: {ranking}")
    return 0
