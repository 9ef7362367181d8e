"""Kaggle-style CSV image files: a header row, then one image per line.

Training files have ``label,pixel0,...,pixel783``; test files have only the
pixel columns. Every value must be an integer, pixels in 0..255 and labels in
0..num_classes-1; a bad file raises :class:`fastcnn.DatasetError` naming the
line (1-based, the header is line 1) and column.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import DatasetError, InputError


def _bad(path: Path, problem: str) -> DatasetError:
    return DatasetError(f"CSV file {path}: {problem}; fix or re-export the file")


def _read_header(path: Path, pixels: int) -> list[str]:
    try:
        with open(path, encoding="utf-8-sig") as stream:
            header = stream.readline()
    except FileNotFoundError:
        raise DatasetError(f"CSV file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read CSV file {path}: {exc}") from exc
    names = [name.strip().strip('"') for name in header.strip().split(",")]
    if not header.strip():
        raise _bad(path, "it is empty (line 1 should be the header row)")
    if names[0].lstrip("-").isdigit():
        raise _bad(path, "line 1 is not a header row (expected label,pixel0,... or pixel0,...)")
    if len(names) not in (pixels, pixels + 1) or (len(names) == pixels + 1) != (names[0].lower() == "label"):
        raise _bad(path, f"line 1 (header) has {len(names)} columns; expected {pixels + 1} "
                         f"(label,pixel0..pixel{pixels - 1}) or {pixels} (pixel0..pixel{pixels - 1})")
    return names


def _first_problem(path: Path, names: list[str], has_labels: bool, num_classes: int) -> str:
    """Scan line by line for the first bad row (used only once the fast parse has failed)."""
    with open(path, encoding="utf-8-sig") as stream:
        next(stream)
        for number, line in enumerate(stream, start=2):
            if not line.strip():
                continue
            fields = line.strip().split(",")
            if len(fields) != len(names):
                return f"line {number} has {len(fields)} columns; the header has {len(names)}"
            for column, field in enumerate(fields):
                is_label = has_labels and column == 0
                high = num_classes - 1 if is_label else 255
                try:
                    value = int(field)
                except ValueError:
                    return f"line {number}, column {names[column]}: {field!r} is not an integer"
                if not 0 <= value <= high:
                    return f"line {number}, column {names[column]}: {value} is outside 0..{high}"
    return "it cannot be parsed as integers"


def load_csv(path: str | os.PathLike, *, num_classes: int = 10,
             image_shape: tuple[int, int] = (28, 28)) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a Kaggle-format CSV file of images.

    Returns ``(x, y)``: ``x`` uint8 of shape (N, *image_shape); ``y`` uint8
    labels of shape (N,), or None for a file without a ``label`` column.
    """
    if int(num_classes) < 1 or int(num_classes) > 256:
        raise InputError(f"num_classes must be in 1..256, got {num_classes}")
    path = Path(path)
    pixels = math.prod(image_shape)
    names = _read_header(path, pixels)
    has_labels = len(names) == pixels + 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a header-only file is reported below
            table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2,
                               comments=None, encoding="utf-8-sig")
    except ValueError:
        raise _bad(path, _first_problem(path, names, has_labels, num_classes)) from None
    if table.shape[0] == 0:
        raise _bad(path, "it has a header but no data rows")
    labels = table[:, 0] if has_labels else None
    images = table[:, 1:] if has_labels else table
    if table.shape[1] != len(names) or images.min() < 0 or images.max() > 255 or (
            has_labels and (labels.min() < 0 or labels.max() >= num_classes)):
        raise _bad(path, _first_problem(path, names, has_labels, num_classes))
    images = images.astype(np.uint8).reshape(-1, *image_shape)
    return images, (labels.astype(np.uint8) if has_labels else None)
