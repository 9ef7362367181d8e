"""Seeded image augmentation for training: random rotations, shifts and zoom (flips off
by default), each batch warped by one parallel kernel on the compiled kernels' threads.

A transform object, as in torchvision (``RandomAffine(degrees, translate, scale)``) and
Keras' preprocessing layers (``RandomRotation``, ``RandomTranslation``, ``RandomZoom``,
``RandomFlip`` in one)::

    augment = fastcnn.augment.RandomAffine(degrees=10, translate=(0.1, 0.1),
                                           scale=(0.9, 1.1), seed=0)
    model.fit(x, y, epochs=10, augment=augment)     # each training batch, never validation
    x_batch = augment(x_batch)                      # or by hand: (N, C, H, W) -> a new array

The same seed gives the same sequence of warps. Pixels brought in from outside the image
read ``fill``. Parameters that would move the image entirely out of the frame are refused.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .errors import InputError
from .kernels import training_reference

try:  # numba is a dependency; the reference serves where it cannot run
    from .kernels.numba_cpu.augment import affine_resample as _resample
except ImportError:  # pragma: no cover
    _resample = training_reference.affine_resample


def _pair(value, what: str, default_low=None) -> tuple[float, float]:
    """(low, high) from a number v (-v, v) or (default_low, v), or from a pair."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = float(value)
        return (-value, value) if default_low is None else (default_low, value)
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number or a pair (low, high), got {value!r}") from None
    if not low <= high:
        raise InputError(f"{what} must have low <= high, got {value!r}")
    return low, high


class RandomAffine:
    """Random affine warps of image batches (N, C, H, W), one per sample.

    degrees: rotation angle drawn from (-degrees, degrees), or a (low, high) pair.
    translate: (fx, fy), the largest horizontal and vertical shift as a fraction of the
    width and height (torchvision's order), each drawn from (-f, f).
    scale: (low, high) zoom factors (> 1 enlarges), drawn uniformly.
    horizontal_flip, vertical_flip: flip each sample with probability 1/2 (off by default:
    they change what digits and letters mean).
    fill: the value of pixels brought in from outside the image.
    seed: the generator's seed (None: fresh randomness each run).
    """

    def __init__(self, degrees=0.0, translate=(0.0, 0.0), scale=(1.0, 1.0),
                 horizontal_flip: bool = False, vertical_flip: bool = False, fill: float = 0.0,
                 seed: int | None = None):
        self.degrees = _pair(degrees, "degrees")
        if isinstance(degrees, numbers.Real) and degrees < 0:
            raise InputError(f"degrees must be >= 0, got {degrees}")
        try:
            fx, fy = (float(v) for v in translate)
        except (TypeError, ValueError):
            raise InputError(f"translate must be a pair (fx, fy) of fractions, got {translate!r}") \
                from None
        self.scale = _pair(scale, "scale")
        if self.scale[0] <= 0:
            raise InputError(f"scale must be above 0, got {scale!r}")
        if min(fx, fy) < 0:
            raise InputError(f"translate fractions must be >= 0, got {translate!r}")
        # a shift beyond half the frame plus half the (smallest) zoomed image leaves
        # nothing of the image in the frame
        limit = (1 + self.scale[0]) / 2
        if max(fx, fy) >= limit:
            raise InputError(
                f"translate={translate!r} with scale down to {self.scale[0]:g} can move the image "
                f"entirely out of the frame: keep each fraction below {limit:g} (0.1-0.2 is usual)")
        self.translate = (fx, fy)
        self.horizontal_flip, self.vertical_flip = bool(horizontal_flip), bool(vertical_flip)
        if isinstance(fill, bool) or not isinstance(fill, numbers.Real) or not math.isfinite(fill):
            raise InputError(f"fill must be a finite number, got {fill!r}")
        self.fill = float(fill)
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def matrices(self, n: int, height: int, width: int) -> np.ndarray:
        """(n, 2, 3) float64: for each sample, the map from an output pixel (y, x, 1) to the
        input position it reads (the inverse of a random rotation, zoom and shift about
        the image centre, with flips)."""
        rng = self.rng
        angle = np.deg2rad(rng.uniform(*self.degrees, n))
        zoom = rng.uniform(*self.scale, n)
        shift_x = rng.uniform(-self.translate[0], self.translate[0], n) * width
        shift_y = rng.uniform(-self.translate[1], self.translate[1], n) * height
        flip_x = np.where(rng.random(n) < 0.5, -1.0, 1.0) if self.horizontal_flip else np.ones(n)
        flip_y = np.where(rng.random(n) < 0.5, -1.0, 1.0) if self.vertical_flip else np.ones(n)
        cy, cx = (height - 1) / 2, (width - 1) / 2
        cos, sin = np.cos(angle) / zoom, np.sin(angle) / zoom
        # input = flip * R(-angle) / zoom * (output - centre - shift) + centre
        result = np.empty((n, 2, 3))
        result[:, 0, 0], result[:, 0, 1] = flip_y * cos, flip_y * sin
        result[:, 1, 0], result[:, 1, 1] = -flip_x * sin, flip_x * cos
        oy, ox = -cy - shift_y, -cx - shift_x
        result[:, 0, 2] = flip_y * (cos * oy + sin * ox) + cy
        result[:, 1, 2] = flip_x * (-sin * oy + cos * ox) + cx
        return result

    def __call__(self, x) -> np.ndarray:
        """x (N, C, H, W) float32 -> a new float32 array of warped images."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 4:
            raise InputError(f"RandomAffine warps image batches (N, C, H, W), got shape {x.shape}")
        out = np.empty_like(x)
        _resample(x, self.matrices(len(x), *x.shape[2:]), self.fill, out)
        return out

    def __repr__(self) -> str:
        return (f"RandomAffine(degrees={self.degrees}, translate={self.translate}, "
                f"scale={self.scale}, horizontal_flip={self.horizontal_flip}, "
                f"vertical_flip={self.vertical_flip}, fill={self.fill}, seed={self.seed})")
