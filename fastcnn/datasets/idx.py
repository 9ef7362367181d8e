"""Readers for the array files datasets ship in: IDX (raw or ``.gz``) and ``.npz``.

Every reader checks the structure fully (magic number, dimensions, exact byte
count) and raises :class:`fastcnn.DatasetError` naming the file, so a damaged
file can never come back as a garbage array.
"""

from __future__ import annotations

import gzip
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import DatasetError

IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
"""IDX type code (third byte of the magic number) -> element dtype (big-endian)."""

# What a damaged gzip stream raises while being read.
GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)

FIX_HINT = "delete it so it is downloaded again, or check the folder FASTCNN_DATA points to"


def damaged(path: str | os.PathLike, problem: str) -> DatasetError:
    """The error for a dataset file that exists but cannot be trusted."""
    return DatasetError(f"dataset file {path} {problem}; {FIX_HINT}")


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _read_exactly(stream, count: int, path: Path, what: str) -> bytes:
    data = stream.read(count)
    if len(data) != count:
        raise damaged(path, f"is truncated: it ends inside the {what}")
    return data


def read_idx(path: str | os.PathLike, *, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (``.gz``-compressed when its name ends in ``.gz``).

    Returns an array with the dimensions in the header; ``ndim`` (3 for image
    files, 1 for label files), when given, must match. Raises DatasetError for a
    missing, truncated, corrupted or wrongly-sized file.
    """
    path = Path(path)
    try:
        with _open(path) as stream:
            magic = _read_exactly(stream, 4, path, "IDX magic number")
            if magic[:2] != b"\0\0" or magic[2] not in IDX_DTYPES:
                raise damaged(path, f"is not an IDX file (magic number 0x{magic.hex()})")
            dims_in_file = magic[3]
            if ndim is not None and dims_in_file != ndim:
                raise damaged(path, f"has {dims_in_file} dimensions where {ndim} were expected "
                                    f"(magic number 0x{magic.hex()})")
            shape = struct.unpack(f">{dims_in_file}I",
                                  _read_exactly(stream, 4 * dims_in_file, path, "IDX header"))
            array = np.empty(shape, dtype=IDX_DTYPES[magic[2]])
            _fill(stream, array, path)
            if stream.read(1):
                raise damaged(path, f"is longer than its IDX header says (shape {shape})")
    except FileNotFoundError:
        raise DatasetError(f"dataset file {path} does not exist") from None
    except EOFError as exc:
        raise damaged(path, f"is truncated: its gzip stream ends early ({exc or type(exc).__name__})") from exc
    except gzip.BadGzipFile as exc:
        raise damaged(path, f"is not a gzip file: its first bytes are not the gzip magic number ({exc})") from exc
    except zlib.error as exc:
        raise damaged(path, f"holds corrupted compressed data ({exc})") from exc
    except OSError as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"cannot read dataset file {path}: {exc}") from exc
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("="))
    return array


def _fill(stream, array: np.ndarray, path: Path) -> None:
    """Read exactly ``array.nbytes`` bytes into ``array`` (no intermediate copy)."""
    view = memoryview(array.reshape(-1).view(np.uint8))
    filled = 0
    while filled < len(view):
        count = stream.readinto(view[filled:])
        if not count:
            raise damaged(path, f"is truncated: {filled} of {len(view)} data bytes "
                                f"for shape {array.shape}")
        filled += count


def read_npz(path: str | os.PathLike, key: str = "arr_0") -> np.ndarray:
    """Read array ``key`` of an ``.npz`` file (no pickles); DatasetError when damaged."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            if key not in archive.files:
                raise damaged(path, f"has no array {key!r} (it holds {archive.files})")
            return archive[key]
    except FileNotFoundError:
        raise DatasetError(f"dataset file {path} does not exist") from None
    except DatasetError:
        raise
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, *GZIP_ERRORS) as exc:
        raise damaged(path, f"is not a readable .npz archive ({exc or type(exc).__name__})") from exc


def read_array(path: str | os.PathLike) -> np.ndarray:
    """Read an ``.npz`` (``arr_0``) or IDX (raw or ``.gz``) file, chosen by its name."""
    return read_npz(path) if Path(path).suffix == ".npz" else read_idx(path)
