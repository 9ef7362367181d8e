"""Loading a dataset split as NumPy arrays: find the files, verify, download if allowed.

Lookup order for every file: ``<data_dir>/<dataset>/`` (``data_dir`` defaults to
:func:`data_home`, i.e. ``$FASTCNN_DATA`` or ``~/.cache/fastcnn``), trying each
interchangeable file of a split part in order; when none is there, the
preferred one is downloaded from the dataset's mirrors unless offline mode
(``FASTCNN_OFFLINE=1``) or ``download=False`` forbids it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DatasetError, InputError
from . import checksums
from .download import data_home, fetch, offline_mode
from .idx import damaged, read_array
from .registry import SPLITS, DatasetSpec, get_spec

Pair = tuple[np.ndarray, np.ndarray]


def dataset_folder(name: str | DatasetSpec, data_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding dataset ``name``'s files: ``<data_dir or data_home()>/<subfolder>``."""
    spec = name if isinstance(name, DatasetSpec) else get_spec(name)
    return Path(data_dir).expanduser() / spec.folder if data_dir else data_home() / spec.folder


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise InputError(f"split must be one of {', '.join(map(repr, SPLITS))} or None, got {split!r}")
    return split


def local_file(spec: DatasetSpec, split: str, part: str, folder: Path) -> Path | None:
    """The first existing file among those that can hold ``part`` of ``split``, or None."""
    for filename in spec.splits[split][part]:
        if (folder / filename).is_file():
            return folder / filename
    return None


def locate(spec: DatasetSpec, split: str, part: str, folder: Path, *,
           download: bool = True, progress: bool = True) -> Path:
    """A verified local file holding ``part`` ("images"/"labels") of ``split``.

    Uses a local file when one exists (checking its checksum once per process),
    else downloads the preferred file; DatasetError when neither is possible.
    """
    path = local_file(spec, split, part, folder)
    if path is not None:
        file_spec = spec.files.get(path.name)
        if file_spec is not None:
            checksums.ensure_verified(path, file_spec)
        return path
    if not download or offline_mode():
        raise missing_error(spec, split, part, folder, download)
    return fetch(spec, spec.splits[split][part][0], folder, progress=progress)


def missing_error(spec: DatasetSpec, split: str, part: str, folder: Path,
                  download: bool) -> DatasetError:
    """Which file is missing, where fastcnn looked, and how to get it."""
    names = spec.splits[split][part]
    looked = " and ".join(str(folder / name) for name in names)
    why = ("offline mode is on (FASTCNN_OFFLINE=1), so nothing is downloaded" if offline_mode()
           else "downloading was turned off (download=False)")
    urls = " or ".join(spec.urls(name)[0] for name in names)
    enable = "unset FASTCNN_OFFLINE" if offline_mode() else "pass download=True"
    return DatasetError(
        f"{spec.name} {split} {part} are missing: looked for {looked}, and {why}. "
        f"Download {urls} and place it in {folder}/ (the {spec.folder}/ subfolder of "
        f"FASTCNN_DATA), or {enable} to download it automatically.")


def _checked_images(spec: DatasetSpec, split: str, images: np.ndarray, path: Path) -> np.ndarray:
    expected = (spec.sizes[split], *spec.image_shape)
    if images.dtype != np.uint8 or images.shape != expected:
        raise damaged(path, f"holds {images.dtype} images of shape {images.shape} "
                            f"where uint8 of shape {expected} were expected")
    return images


def _checked_labels(spec: DatasetSpec, split: str, labels: np.ndarray, path: Path) -> np.ndarray:
    expected = (spec.sizes[split],)
    if labels.dtype != np.uint8 or labels.shape != expected:
        raise damaged(path, f"holds {labels.dtype} labels of shape {labels.shape} "
                            f"where uint8 of shape {expected} were expected")
    if labels.size and labels.max() >= spec.num_classes:
        raise damaged(path, f"holds label {labels.max()}, outside 0..{spec.num_classes - 1}")
    return labels


def load_split(spec: DatasetSpec, split: str, folder: Path, *,
               download: bool = True, progress: bool = True) -> Pair:
    """``(images, labels)`` of one split, each checked for dtype, shape and range."""
    paths = {part: locate(spec, split, part, folder, download=download, progress=progress)
             for part in ("images", "labels")}
    images = _checked_images(spec, split, read_array(paths["images"]), paths["images"])
    labels = _checked_labels(spec, split, read_array(paths["labels"]), paths["labels"])
    return images, labels


def load(name: str, split: str | None = None, *, data_dir: str | os.PathLike | None = None,
         download: bool = True, progress: bool = True):
    """Load dataset ``name`` ("mnist", "fashion-mnist", "kmnist").

    Returns ``(x_train, y_train), (x_test, y_test)``, or one ``(x, y)`` pair
    when ``split`` is "train" or "test". ``x``: uint8 of shape (N, 28, 28);
    ``y``: uint8 class indices of shape (N,). ``data_dir`` overrides
    ``$FASTCNN_DATA``; ``download=False`` never touches the network;
    ``progress`` shows a tqdm bar while downloading.
    Raises DatasetError for a missing (and not downloadable) or damaged file.
    """
    spec = get_spec(name)
    folder = dataset_folder(spec, data_dir)
    if split is not None:
        return load_split(spec, check_split(split), folder, download=download, progress=progress)
    return tuple(load_split(spec, s, folder, download=download, progress=progress) for s in SPLITS)


def load_mnist(split: str | None = None, **options):
    """MNIST digits; see :func:`load` for ``split`` and the options."""
    return load("mnist", split, **options)


def load_fashion_mnist(split: str | None = None, **options):
    """Fashion-MNIST; see :func:`load` for ``split`` and the options."""
    return load("fashion-mnist", split, **options)


def load_kmnist(split: str | None = None, **options):
    """Kuzushiji-MNIST (from IDX or ``.npz`` files); see :func:`load`."""
    return load("kmnist", split, **options)


def class_names(name: str) -> tuple[str, ...]:
    """The class names of dataset ``name``, indexed by label."""
    return get_spec(name).classes
