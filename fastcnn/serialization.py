"""Checkpoint files: one .npz of named, checked arrays plus a JSON metadata entry, written
atomically. This module knows files, not models: :class:`fastcnn.Sequential` decides what
goes in (``save``, ``save_weights``) and what comes out (``fastcnn.load_model``,
``load_weights``), and checks each array it reads with :func:`checked_array`.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from .errors import CheckpointError
from .fileio import atomic_write

FORMAT = 1
META = "__fastcnn__"


def write(path, arrays: dict, meta: dict | None = None) -> None:
    """Write ``arrays`` (name -> host array) and, when given, the JSON-able ``meta`` dict
    (stored with the format number) to ``path`` as one .npz, atomically."""
    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    if meta is not None:
        arrays[META] = np.array(json.dumps({"format": FORMAT, **meta}))
    with atomic_write(path) as handle:
        np.savez(handle, **arrays)


def read(path, what: str = "model") -> tuple[dict, dict | None]:
    """(arrays, meta) of a file :func:`write` wrote; meta is None for a file without it
    (weights alone) and required when ``what`` is "model". Unreadable, truncated or foreign
    files and unknown formats are a CheckpointError saying so."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no saved {'model' if what == 'model' else 'weights'} at {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
        raise CheckpointError(f"{path} is not a readable fastcnn {what} (truncated or corrupted: "
                              f"{exc}); re-save it or use another checkpoint") from None
    if META not in arrays:
        if what == "model":
            raise CheckpointError(f"{path} is an .npz file but not a fastcnn model (no {META} entry)")
        return arrays, None
    try:
        meta = json.loads(str(arrays.pop(META)))
    except ValueError as exc:
        raise CheckpointError(f"{path}: the metadata is not valid JSON ({exc}); the file is damaged") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else meta
        raise CheckpointError(f"{path} has format {found}, this fastcnn reads {FORMAT}")
    return arrays, meta


def checked_array(path, key: str, value: np.ndarray, shape: tuple, dtype=np.float32) -> np.ndarray:
    """``value`` if it is a finite array of ``shape`` and ``dtype``; else CheckpointError naming it."""
    problem = None
    if value.dtype != np.dtype(dtype):
        problem = f"dtype {value.dtype}, expected {np.dtype(dtype)}"
    elif tuple(value.shape) != tuple(shape):
        problem = f"shape {tuple(value.shape)}, the model needs {tuple(shape)}"
    elif value.dtype.kind == "f" and not np.isfinite(value).all():
        problem = f"{int(np.isnan(value).sum())} NaN and {int(np.isinf(value).sum())} infinite values"
    if problem:
        raise CheckpointError(f"{path}: array {key!r} has {problem}; the file is damaged or was "
                              "not written by this model: re-save it or use another checkpoint")
    return np.require(value, requirements="C")  # ascontiguousarray would make a 0-d array 1-d


def whole_number(path, what: str, value) -> int:
    """``value`` if it is an int >= 0; else CheckpointError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CheckpointError(f"{path}: {what} is {value!r}, expected a whole number >= 0")
    return value
