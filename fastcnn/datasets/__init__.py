"""Datasets for fastcnn: MNIST, Fashion-MNIST and KMNIST, Kaggle CSVs, single images.

Files are looked up in ``$FASTCNN_DATA/<dataset>/`` (default
``~/.cache/fastcnn``), verified against their published SHA-256 once per
process, and downloaded atomically from the official mirrors when missing
(never when ``FASTCNN_OFFLINE=1``). Every problem with a file raises
:class:`fastcnn.DatasetError` saying which file and what to do.

    >>> from fastcnn.datasets import load_mnist, scale, to_nchw
    >>> (x_train, y_train), (x_test, y_test) = load_mnist()
    >>> x = to_nchw(scale(x_train))            # float32 (60000, 1, 28, 28)
"""

from .csv import load_csv
from .download import data_home, download_file, offline_mode
from .idx import read_array, read_idx, read_npz
from .image import load_image, prepare_digit
from .loaders import (class_names, dataset_folder, load, load_fashion_mnist, load_kmnist,
                      load_mnist)
from .registry import DATASETS, DatasetSpec, FileSpec, data_info, get_spec
from .status import DatasetInfo, DatasetStatus, FileStatus, dataset_info, status, verify
from .transforms import batches, kfold, one_hot, scale, to_nchw, train_val_split

__all__ = [
    "DATASETS", "DatasetInfo", "DatasetSpec", "DatasetStatus", "FileSpec", "FileStatus",
    "batches", "class_names", "data_home", "data_info", "dataset_folder", "dataset_info",
    "download_file",
    "get_spec", "kfold", "load", "load_csv", "load_fashion_mnist", "load_image", "load_kmnist",
    "load_mnist", "offline_mode", "one_hot", "prepare_digit", "read_array", "read_idx",
    "read_npz", "scale", "status", "to_nchw", "train_val_split", "verify",
]
