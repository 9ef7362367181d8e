"""Atomic file writing: a crash mid-write never leaves a half-written file behind.

Errors name the destination (never the hidden temporary file) and say what to do;
:func:`check_writable` runs the same checks up front, so that a long training run
does not end in a failed save. A destination whose folder does not exist is refused,
naming the folder (as ``torch.save`` does), unless the caller creates folders (a
report's output folder): a typo never makes folders somewhere unexpected.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from glob import escape as glob_escape
from pathlib import Path

from .errors import CheckpointError

_PART_SUFFIX = ".part"


def _problem(path: Path, create_folders: bool) -> str | None:
    """Why ``path`` cannot be written, or None."""
    if path.is_dir():
        return f"{path} is a folder: give a file name such as {path / 'model.npz'}"
    parent = path.parent
    existing = parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, so {parent} cannot be a folder: choose another path"
    if existing != parent and not create_folders:
        return (f"the folder {parent} does not exist: create it first (mkdir -p {parent}) or "
                "choose another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"the folder {existing} is not writable: choose another path or fix its permissions"
    if path.exists() and not os.access(path, os.W_OK):
        # a read-only file in a writable folder would be replaced by the rename: say so instead
        return f"{path} is read-only: remove it or choose another path"
    return None


def check_writable(path, create_folders: bool = False) -> None:
    """CheckpointError saying what to do unless a file can be written at ``path`` (whose
    folder must exist unless ``create_folders``)."""
    problem = _problem(Path(path), create_folders)
    if problem:
        raise CheckpointError(f"cannot save to {path}: {problem}")


def _writer_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _clean_stale_parts(path: Path) -> None:
    """Delete temporary parts of ``path`` (named .<name>.<pid>.<random>.part) whose writer
    process is gone: they were left by a save that was killed."""
    prefix = f".{path.name}."
    for part in path.parent.glob(f"{glob_escape(prefix)}*{_PART_SUFFIX}"):
        pid = part.name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and not _writer_alive(int(pid)):
            with contextlib.suppress(OSError):
                part.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _explain(exc: OSError, path: Path) -> str:
    if exc.errno == errno.ENOSPC:
        return "the disk is full: free some space or save elsewhere"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied: choose a writable folder"
    return f"{exc.strerror or exc}"


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", create_folders: bool = False):
    """Open a temporary file beside ``path``; on success fsync it and rename it over
    ``path`` (atomic on POSIX and Windows); on any error delete it and re-raise
    (an OSError as a CheckpointError naming ``path``). The file gets the permissions
    a plain ``open`` would give (0666 minus the umask). Stale temporary parts of
    ``path`` from killed writers are removed. ``path``'s folder must exist unless
    ``create_folders``."""
    path = Path(path)
    check_writable(path, create_folders)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _clean_stale_parts(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=_PART_SUFFIX,
                                   dir=path.parent)
    except OSError as exc:
        raise CheckpointError(f"cannot save to {path}: {_explain(exc, path)}") from None
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes 0600; saved models are ordinary outputs
            os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, CheckpointError):
            raise CheckpointError(f"cannot save to {path}: {_explain(exc, path)}; "
                                  "nothing was written there") from exc
        raise
