"""Backend ``numba``: parallel Numba CPU kernels around BLAS GEMMs; the default without a GPU.

The kernels live in :mod:`fastcnn.kernels.numba_cpu`, one file per topic; this
module re-exports the functions of :mod:`fastcnn.kernels.contract` (plus
``set_num_threads``/``get_num_threads``) under the backend's name.

Importing it without numba installed raises ImportError saying so. Compiled
kernels are cached on disk; see :mod:`fastcnn.kernels.numba_cpu.jit` for where
(``NUMBA_CACHE_DIR`` falls back to ``~/.cache/fastcnn/numba`` on a read-only
install) and for how threads are shared with BLAS.
"""

from __future__ import annotations

from .contract import FUSED, MULTI_TENSOR, OPERATIONS, TRAINING_OPERATIONS
# jit first: it chooses the cache directory, then imports numba
from .numba_cpu.jit import get_num_threads, set_num_threads
from .numba_cpu.activations import (relu_backward, relu_forward, sigmoid_backward, sigmoid_forward,
                                    softmax_backward, softmax_forward)
from .numba_cpu.conv import (col2im, conv2d_backward, conv2d_forward, conv2d_maxpool_backward,
                             conv2d_maxpool_forward, im2col)
from .numba_cpu.dense import dense_backward, dense_forward
from .numba_cpu.dropout import dropout_backward, dropout_forward
from .numba_cpu.losses import mse_loss, softmax_cross_entropy
from .numba_cpu.memory import empty, to_device, to_host, zeros
from .numba_cpu.optim import (adadelta_update, adam_update, adam_update_many, sgd_update,
                              sgd_update_many)
from .numba_cpu.primitives import (axpby, channel_affine, channel_mean, channel_sum, multiply,
                                   rsqrt)
from .numba_cpu.optim import (adadelta_update, adam_update, adam_update_many, clip_many,
                              nesterov_update_many, rmsprop_update, scale_many, sgd_update,
                              sgd_update_many, sum_of_squares_many)
from .numba_cpu.weighted_losses import (binary_cross_entropy, binary_cross_entropy_with_logits,
                                        log_softmax_backward, log_softmax_forward,
                                        mse_loss_weighted, nll_loss, softmax_cross_entropy_soft)
from .numba_cpu.pool import (avgpool2d_backward, avgpool2d_forward, maxpool2d_backward,
                             maxpool2d_forward)

name = "numba"

BLAS_THREADS = 1
"""NumPy's BLAS runs single-threaded while this backend is active (fastcnn.backend
applies it): its GEMMs sit between parallel kernels whose OpenMP threads would
otherwise fight BLAS's own threads for the cores."""

__all__ = ["name", "set_num_threads", "get_num_threads", *OPERATIONS, *FUSED, *MULTI_TENSOR,
           *TRAINING_OPERATIONS]
