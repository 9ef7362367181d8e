"""Checking a dataset file against its published size and checksum, once per process.

A file that passed is remembered by (path, size, modification time), so loading
the same dataset again costs no hashing; touching or replacing the file makes
it be checked again.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from .idx import damaged
from .registry import FileSpec

CHUNK = 1 << 20

_verified: set[tuple[str, int, int]] = set()
_lock = threading.Lock()


def _key(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def file_digests(path: str | os.PathLike, algorithms=("sha256",)) -> dict[str, str]:
    """Hex digests of a file's bytes, e.g. ``{"sha256": "..."}``, read in 1 MiB chunks."""
    hashers = {name: hashlib.new(name) for name in algorithms}
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK):
            for hasher in hashers.values():
                hasher.update(chunk)
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


def has_checksum(spec: FileSpec) -> bool:
    return bool(spec.sha256 or spec.md5)


def size_mismatch(size: int, spec: FileSpec) -> str | None:
    """Why a file of ``size`` bytes is not the published ``spec`` file, by size alone, or None."""
    if spec.size is not None and size != spec.size:
        shorter = "truncated: " if size < spec.size else ""
        return f"is {shorter}{size:,} bytes where the published file has {spec.size:,}"
    return None


def mismatch(path: str | os.PathLike, spec: FileSpec) -> str | None:
    """Why ``path`` is not the published ``spec`` file (wrong size or checksum), or None.

    Checks the size first (cheap, and it names truncation plainly), then the
    SHA-256, or the MD5 where no SHA-256 is known. Hashes every time it is called.
    """
    problem = size_mismatch(os.path.getsize(path), spec)
    if problem:
        return problem
    algorithm = "sha256" if spec.sha256 else "md5" if spec.md5 else None
    if algorithm is None:
        return None
    expected = getattr(spec, algorithm)
    actual = file_digests(path, (algorithm,))[algorithm]
    if actual != expected:
        return (f"fails its {algorithm.upper()} check (expected {expected}, got {actual}): "
                "it is corrupted or not the official file")
    return None


def check(path: str | os.PathLike, spec: FileSpec) -> str | None:
    """Hash ``path`` now and remember the outcome; returns :func:`mismatch`'s answer."""
    path = Path(path)
    key = _key(path)
    problem = mismatch(path, spec)
    if problem:
        with _lock:
            _verified.discard(key)
    else:
        remember(path)
    return problem


def ensure_verified(path: str | os.PathLike, spec: FileSpec, *, force: bool = False) -> None:
    """Raise DatasetError unless ``path`` matches ``spec``; passes are remembered.

    ``force`` re-hashes even a file that passed before in this process.
    """
    if not force and is_verified(path):
        return
    problem = check(path, spec)
    if problem:
        raise damaged(path, problem)


def remember(path: str | os.PathLike) -> None:
    """Record that ``path``, as it is now, has just been checked and passed."""
    key = _key(Path(path))
    with _lock:
        _verified.add(key)


def forget(path: str | os.PathLike | None = None) -> None:
    """Drop remembered passes: of ``path``, or of every file when None."""
    with _lock:
        if path is None:
            _verified.clear()
            return
        resolved = str(Path(path).resolve())
        _verified.difference_update({key for key in _verified if key[0] == resolved})


def is_verified(path: str | os.PathLike) -> bool:
    """True when ``path``, as it is now, passed its check earlier in this process."""
    path = Path(path)
    try:
        key = _key(path)
    except OSError:
        return False
    with _lock:
        return key in _verified
