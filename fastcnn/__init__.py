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

from ._kernels_path import register_source_kernels as _register_source_kernels

_register_source_kernels(_os.path.dirname(_os.path.abspath(__file__)))

# Idle OpenMP threads (numba's omp layer, the cython kernels) spin for a moment, then
# sleep. Sleeping at once (OMP_WAIT_POLICY=PASSIVE) cost a ~33 us futex wake-up at
# each of a step's ~40 parallel kernels (pytorch_cnn, batch 64: 10.4 ms against 9.7 ms
# per step); libgomp's default spin of 300,000 rounds holds a core that long after the
# last kernel and made training 3-5x slower on a busy machine. 300 rounds is a few
# microseconds: enough for the next kernel of a step, and on a machine with a
# competing process as slow as sleeping at once (17.7-18.5 ms against 17.2-18.2).
# LLVM's and Intel's OpenMP read KMP_BLOCKTIME instead: 0, sleep at once.
# The user's settings win.
if not {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME"} & set(_os.environ):
    _os.environ["GOMP_SPINCOUNT"] = "300"
    _os.environ["KMP_BLOCKTIME"] = "0"

from . import callbacks, functional, init, inputs, layers, losses, metrics, optim, schedules
from .backend import (available_backends, auto_selected, backend_name, get_backend, set_backend,
                      set_num_threads, use_backend)
from .callbacks import (Callback, CSVLogger, EarlyStopping, History, LearningRateScheduler,
                        ModelCheckpoint, ReduceLROnPlateau, RocAuc, TensorBoard)
from .errors import (BackendError, CheckpointError, DatasetError, ExportError, FastCNNError,
                     InputError)
from .layers import *  # noqa: F401,F403  (every layer class: fastcnn.Conv2D, fastcnn.BatchNorm2d, ...)
from .model import Sequential, load_model
from .optim import clip_grad_norm_, clip_grad_value_

__version__ = "0.1.0"


def to_numpy(array):
    """A host NumPy array from any backend array (a device array on cuda)."""
    import numpy as np

    if isinstance(array, np.ndarray):
        return array
    return get_backend().to_host(array)


def __getattr__(name):
    # datasets, zoo and the CLI import on first use, keeping `import fastcnn` fast
    if name in ("datasets", "zoo", "plots", "distributed", "augment", "batches"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    if name in ("cross_validate", "grid_search", "random_search"):
        import importlib

        return getattr(importlib.import_module(".distributed", __name__), name)
    raise AttributeError(f"module 'fastcnn' has no attribute {name!r}")
