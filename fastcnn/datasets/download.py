"""Where datasets live on disk, and fetching a missing file from its mirrors.

A download goes to a temporary file in the destination folder, is checked
against the published size and checksum, and only then is renamed into place
(``os.replace``), so an interrupted or corrupted download never leaves a file
that looks complete.
"""

from __future__ import annotations

import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import DatasetError
from . import checksums
from .registry import DatasetSpec, FileSpec

DEFAULT_HOME = "~/.cache/fastcnn"
TIMEOUT_S = 60
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, OSError, ValueError)


def data_home() -> Path:
    """The dataset folder: ``$FASTCNN_DATA``, else ``~/.cache/fastcnn``.

    Each dataset has its own subfolder (``mnist/``, ``fashion-mnist/``, ``kmnist/``).
    """
    return Path(os.environ.get("FASTCNN_DATA") or DEFAULT_HOME).expanduser()


def offline_mode() -> bool:
    """True when ``FASTCNN_OFFLINE`` is set to 1/true/yes/on: never download."""
    return os.environ.get("FASTCNN_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _not_writable(folder: Path, exc: OSError) -> DatasetError:
    return DatasetError(f"cannot write to dataset folder {folder} ({exc}); "
                        "set FASTCNN_DATA to a writable folder, or pass data_dir=...")


def download_file(url: str, dest: str | os.PathLike, spec: FileSpec | None = None, *,
                  progress: bool = True, timeout: float = TIMEOUT_S) -> Path:
    """Download ``url`` to ``dest`` atomically, checking it against ``spec`` first.

    Raises DatasetError when offline mode is on, the folder is not writable, the
    transfer fails or is cut short, or the bytes do not match ``spec``; in every
    case nothing is left at ``dest`` or beside it.
    """
    dest = Path(dest)
    if offline_mode():
        raise DatasetError(f"will not download {url}: offline mode is on (FASTCNN_OFFLINE=1)")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        descriptor, partial = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.",
                                               suffix=".part")
    except OSError as exc:
        raise _not_writable(dest.parent, exc) from exc
    partial = Path(partial)
    try:
        with os.fdopen(descriptor, "wb") as out:
            try:
                _copy_response(url, out, dest.name, progress, timeout)
            except DatasetError:
                raise
            except _NETWORK_ERRORS as exc:
                raise DatasetError(f"downloading {url} failed: {exc or type(exc).__name__}") from exc
        problem = checksums.mismatch(partial, spec) if spec is not None else None
        if problem:
            raise DatasetError(f"the file downloaded from {url} {problem}; it was not saved")
        os.replace(partial, dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if spec is not None and checksums.has_checksum(spec):
        checksums.remember(dest)  # its partial file was just checked
    return dest


def _copy_response(url: str, out, name: str, progress: bool, timeout: float) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "fastcnn"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        written = 0
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                  desc=f"downloading {name}", disable=not progress, leave=False) as bar:
            while chunk := response.read(checksums.CHUNK):
                out.write(chunk)
                written += len(chunk)
                bar.update(len(chunk))
    if total is not None and written != total:
        raise DatasetError(f"the download of {url} stopped after {written:,} of {total:,} bytes")


def fetch(spec: DatasetSpec, filename: str, folder: Path, *, progress: bool = True) -> Path:
    """Download ``filename`` of dataset ``spec`` into ``folder``, trying each mirror in turn."""
    if offline_mode():
        raise DatasetError(f"will not download {filename}: offline mode is on (FASTCNN_OFFLINE=1)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError("permission denied")
    except OSError as exc:
        raise _not_writable(folder, exc) from exc
    failures = []
    for url in spec.urls(filename):
        try:
            return download_file(url, folder / filename, spec.files.get(filename),
                                 progress=progress)
        except DatasetError as exc:
            failures.append(str(exc))
    raise DatasetError(
        f"could not download {filename} of {spec.name}: " + "; ".join(failures)
        + f". Download it yourself and place it in {folder}/")
