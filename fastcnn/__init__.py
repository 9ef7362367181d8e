"""fastcnn: a from-scratch CNN training engine with compiled kernels."""

from .backend import (available_backends, backend_name, get_backend, set_backend,
                      set_num_threads, use_backend)
from .errors import BackendError, CheckpointError, DatasetError, FastCNNError, InputError

__version__ = "0.1.0"
