"""What is known about each dataset and what is on disk: data for a CLI to print.

:func:`dataset_info` describes a dataset (nothing on disk is read),
:func:`status` says which of its files exist, which have the published size
(a cheap check that catches truncated downloads) and which splits can load, and
:func:`verify` checks every present file against its published checksum.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from . import checksums
from .loaders import dataset_folder, local_file
from .registry import DATASETS, PARTS, SPLITS, get_spec


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset as its authors publish it."""

    name: str
    title: str
    classes: tuple[str, ...]
    image_shape: tuple[int, int]
    sizes: dict[str, int]
    license: str
    homepage: str
    mirrors: tuple[str, ...]
    files: tuple[str, ...]

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FileStatus:
    """One known file of a dataset in the local folder.

    ``verified`` is True/False after a checksum check (by :func:`verify`, or a
    load earlier in this process), None when not checked or no checksum is known.
    ``problem`` says what is wrong with a present file: a size other than the
    published one (checked by :func:`status` too) or a failed checksum.
    """

    name: str
    path: str
    exists: bool
    size: int | None
    expected_size: int | None
    sha256: str | None
    verified: bool | None = None
    problem: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DatasetStatus:
    """Which files of a dataset are present, and which splits can load from them.

    ``splits[split]`` is True when a file for both its images and labels exists
    and none of them is damaged; ``complete`` when every split can load;
    ``missing`` lists the absent "split part" pairs (e.g. ``"train images"``),
    ``damaged`` those whose file has the wrong size or fails its checksum.
    """

    name: str
    folder: str
    files: tuple[FileStatus, ...]
    splits: dict[str, bool]
    complete: bool
    missing: tuple[str, ...]
    damaged: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return asdict(self)


def dataset_info(name: str | None = None):
    """:class:`DatasetInfo` of dataset ``name``, or a list of all when None."""
    if name is None:
        return [dataset_info(known) for known in DATASETS]
    spec = get_spec(name)
    return DatasetInfo(spec.name, spec.title, spec.classes, spec.image_shape, dict(spec.sizes),
                       spec.license, spec.homepage, spec.mirrors, tuple(spec.files))


def _file_status(spec, filename: str, folder, check: bool) -> FileStatus:
    path = folder / filename
    file_spec = spec.files[filename]
    exists = path.is_file()
    verified, problem = None, ""
    size_problem = checksums.size_mismatch(path.stat().st_size, file_spec) if exists else None
    if size_problem:
        verified, problem = False, size_problem
    elif exists and checksums.has_checksum(file_spec):
        if check:
            problem = checksums.check(path, file_spec) or ""
            verified = not problem
        elif checksums.is_verified(path):
            verified = True
    return FileStatus(filename, str(path), exists, path.stat().st_size if exists else None,
                      file_spec.size, file_spec.sha256, verified, problem)


def _dataset_status(name: str, data_dir, check: bool) -> DatasetStatus:
    spec = get_spec(name)
    folder = dataset_folder(spec, data_dir)
    files = tuple(_file_status(spec, filename, folder, check) for filename in spec.files)
    by_name = {item.name: item for item in files}
    located = {(split, part): local_file(spec, split, part, folder) for split in SPLITS for part in PARTS}
    missing = tuple(f"{split} {part}" for (split, part), path in located.items() if path is None)
    damaged = tuple(f"{split} {part}" for (split, part), path in located.items()
                    if path is not None and path.name in by_name and by_name[path.name].problem)
    unusable = missing + damaged
    splits = {split: not any(item.startswith(split + " ") for item in unusable) for split in SPLITS}
    return DatasetStatus(spec.name, str(folder), files, splits, all(splits.values()), missing, damaged)


def status(name: str | None = None, *, data_dir: str | os.PathLike | None = None):
    """:class:`DatasetStatus` of dataset ``name`` (or a list of all when None); hashes nothing."""
    if name is None:
        return [_dataset_status(known, data_dir, False) for known in DATASETS]
    return _dataset_status(name, data_dir, False)


def verify(name: str, *, data_dir: str | os.PathLike | None = None) -> DatasetStatus:
    """Like :func:`status`, but re-hashes every present file and fills in ``verified``.

    A file with ``verified`` False has ``problem`` saying what is wrong; one
    with None has no published checksum (``kmnist-train-imgs.npz``).
    """
    return _dataset_status(name, data_dir, True)
