"""fastcnn: a from-scratch CNN training engine with compiled kernels.

    import fastcnn
    model = fastcnn.zoo.pytorch_cnn()
    model.compile(fastcnn.optim.Adam(lr=1e-3), "cross_entropy")
    model.fit(x_train, y_train, epochs=1, batch_size=64)

The backend (naive, numpy, numba, cython, cuda) is picked with
``fastcnn.set_backend``, ``FASTCNN_BACKEND`` or ``--backend``; ``auto`` takes
the fastest that works here.
"""

import os as _os

# Idle OpenMP threads (numba's omp layer, the cython kernels) sleep instead of
# spinning between kernels, leaving the cores to BLAS, which runs in between:
# spinning made both 3-5x slower on a busy machine. The user's setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import callbacks, functional, init, inputs, layers, losses, metrics, optim
from .backend import (available_backends, auto_selected, backend_name, get_backend, set_backend,
                      set_num_threads, use_backend)
from .callbacks import (Callback, EarlyStopping, History, LearningRateScheduler, ModelCheckpoint,
                        ReduceLROnPlateau, RocAuc)
from .errors import BackendError, CheckpointError, DatasetError, FastCNNError, InputError
from .layers import AvgPool2D, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sigmoid, Softmax
from .model import Sequential
from .serialization import load_model

__version__ = "0.1.0"


def to_numpy(array):
    """A host NumPy array from any backend array (a device array on cuda)."""
    import numpy as np

    if isinstance(array, np.ndarray):
        return array
    return get_backend().to_host(array)


def __getattr__(name):
    # datasets, zoo and the CLI import on first use, keeping `import fastcnn` fast
    if name in ("datasets", "zoo", "plots", "distributed"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    if name in ("cross_validate", "grid_search", "random_search"):
        import importlib

        return getattr(importlib.import_module(".distributed", __name__), name)
    raise AttributeError(f"module 'fastcnn' has no attribute {name!r}")
