"""Turning a picture of one handwritten character into an MNIST-style 28x28 input.

The classic MNIST preprocessing: grayscale, a white character on black (a dark
character on a light background is inverted), cropped to its bounding box,
resized so the longer side is 20 px (aspect kept), and placed in a 28x28
canvas so that its center of mass is at the center.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DatasetError, InputError

CANVAS = 28
BOX = 20
INK_THRESHOLD = 0.15
"""Pixels fainter than this fraction of the brightest one do not count toward the bounding box."""


def _grayscale(image: Image.Image) -> np.ndarray:
    """float32 luminance 0..255 of (H, W); transparent areas painted to contrast with the ink."""
    image = ImageOps.exif_transpose(image)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if not has_alpha:
        return np.asarray(image.convert("L"), dtype=np.float32)
    rgba = image.convert("RGBA")
    alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255
    gray = np.asarray(rgba.convert("L"), dtype=np.float32)
    if alpha.min() < 1:
        # Strokes drawn on a transparent canvas: the background becomes the
        # opposite of the ink, whichever colour the ink is.
        opaque = alpha > 0.5
        ink = gray[opaque].mean() if opaque.any() else 0.0
        background = 255.0 if ink < 128 else 0.0
        gray = gray * alpha + background * (1 - alpha)
    return gray


def _as_gray_array(image) -> np.ndarray:
    if isinstance(image, Image.Image):
        return _grayscale(image)
    array = np.asarray(image)
    if array.ndim != 2:
        raise InputError(f"expected a 2-D grayscale image, got shape {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float32)
    if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all() \
            or array.min() < 0 or array.max() > 1:
        raise InputError("expected uint8 pixels or floats in [0, 1], "
                         f"got {array.dtype} in {array.min()}..{array.max()}")
    return array.astype(np.float32) * 255


def prepare_digit(image, *, invert: bool | str = "auto") -> np.ndarray:
    """MNIST-style uint8 (28, 28) from a PIL image or a 2-D array (uint8, or floats in [0, 1]).

    ``invert``: "auto" inverts when the border is mostly light (dark ink on
    white paper); True/False force it. Raises InputError for a blank image.
    """
    return _prepare(_as_gray_array(image), invert)


def _prepare(gray: np.ndarray, invert: bool | str) -> np.ndarray:
    """The preprocessing of :func:`prepare_digit` on float luminance 0..255 of (H, W)."""
    if invert not in ("auto", True, False):
        raise InputError(f"invert must be 'auto', True or False, got {invert!r}")
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    if invert is True or (invert == "auto" and background > 127.5):
        gray, background = 255 - gray, 255 - background
    ink = np.clip(gray - background, 0, None)
    peak = float(ink.max())
    if peak <= 0:
        raise InputError("no character found: the image is blank (a single colour)")
    ink *= 255 / peak
    rows = np.flatnonzero((ink > 255 * INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink > 255 * INK_THRESHOLD).any(axis=0))
    crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    return _center(_resize_longer_side(crop, BOX))


def _resize_longer_side(crop: np.ndarray, size: int) -> np.ndarray:
    height, width = crop.shape
    factor = size / max(height, width)
    shape = (max(1, round(width * factor)), max(1, round(height * factor)))
    resized = Image.fromarray(crop.astype(np.float32)).resize(shape, Image.LANCZOS)
    return np.clip(np.asarray(resized), 0, 255)


def _center(patch: np.ndarray) -> np.ndarray:
    """Place ``patch`` in a 28x28 canvas with its center of mass at the canvas center."""
    height, width = patch.shape
    total = patch.sum()
    center_row = (patch.sum(axis=1) @ np.arange(height)) / total
    center_col = (patch.sum(axis=0) @ np.arange(width)) / total
    middle = (CANVAS - 1) / 2
    top = int(np.clip(np.floor(middle - center_row + 0.5), 0, CANVAS - height))
    left = int(np.clip(np.floor(middle - center_col + 0.5), 0, CANVAS - width))
    canvas = np.zeros((CANVAS, CANVAS), dtype=np.float32)
    canvas[top:top + height, left:left + width] = patch
    return np.round(canvas).astype(np.uint8)


def load_image(path: str | os.PathLike, *, invert: bool | str = "auto",
               as_uint8: bool = False) -> np.ndarray:
    """Load one image file (PNG, JPEG, ...) of a character as a model input.

    Returns float32 of shape (1, 1, 28, 28) in [0, 1] (a batch of one, NCHW),
    or with ``as_uint8`` the uint8 (28, 28) image. See :func:`prepare_digit`
    for the preprocessing and ``invert``. DatasetError for a missing or
    unreadable file.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            gray = _grayscale(image)
    except FileNotFoundError:
        raise DatasetError(f"image file {path} does not exist") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DatasetError(f"cannot read image file {path} ({exc}); "
                           "give a PNG or JPEG image") from exc
    digit = _prepare(gray, invert)
    return digit if as_uint8 else (digit.astype(np.float32) / 255)[None, None]
