"""Backend ``numba``: parallel Numba CPU kernels around BLAS GEMMs; the default without a GPU.

The kernels live in :mod:`fastcnn.kernels.numba_cpu`, one file per topic; this
module re-exports the functions of :mod:`fastcnn.kernels.contract` (plus
``set_num_threads``/``get_num_threads``) under the backend's name.

Importing it without numba installed raises ImportError saying so. Compiled
kernels are cached on disk; see :mod:`fastcnn.kernels.numba_cpu.jit` for where
(an installed copy caches in ``~/.cache/fastcnn/numba``, never in its own folder;
a checkout in its ``__pycache__``) and for how threads are shared with BLAS.
"""

from __future__ import annotations

from .contract import FUSED, LAYER_OPERATIONS, MULTI_TENSOR, OPERATIONS, TRAINING_OPERATIONS
# jit first: it chooses the cache directory, then imports numba
from .numba_cpu.jit import CACHE, cache_is_warm, get_num_threads, set_num_threads
from .numba_cpu.compiling import compile_seconds
from .numba_cpu.threads import compute_thread_ids
from .numba_cpu.activations import (relu_backward, relu_forward, sigmoid_backward, sigmoid_forward,
                                    softmax_backward, softmax_forward)
from .numba_cpu.batchnorm import batchnorm_backward, batchnorm_forward
from .numba_cpu.conv import (col2im, conv2d_backward, conv2d_backward_from_input, conv2d_forward,
                             conv2d_maxpool_backward, conv2d_maxpool_backward_from_input,
                             conv2d_maxpool_forward, im2col)
from .numba_cpu.dense import dense_backward, dense_forward
from .numba_cpu.dropout import dropout_backward, dropout_forward
from .numba_cpu.losses import mse_loss, softmax_cross_entropy
from .numba_cpu.memory import empty, to_device, to_host, zeros
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


def cold() -> str | None:
    """Why a run on this backend would begin by compiling its kernels (about a minute);
    None when fastcnn.warmup has filled the cache for these sources and this CPU."""
    if cache_is_warm():
        return None
    if not CACHE:
        return "numba's kernels would compile in every run (no writable cache directory)"
    return "numba's kernels are not compiled for this CPU yet"


__all__ = ["name", "set_num_threads", "get_num_threads", "compute_thread_ids", "cold",
           "compile_seconds", *OPERATIONS,
           *FUSED, *MULTI_TENSOR]

# the layers past the tutorials (contract.LAYER_OPERATIONS)
from .numba_cpu.dropout import dropout2d_backward, dropout2d_forward  # noqa: E402
from .numba_cpu.global_pool import (global_avgpool2d_backward,  # noqa: E402
                                    global_avgpool2d_forward)
from .numba_cpu.padded_pool import (padded_avgpool2d_backward, padded_avgpool2d_forward,  # noqa: E402
                                    padded_maxpool2d_forward)
from .numba_cpu.pointwise import (elu_backward, elu_forward, gelu_backward, gelu_forward,  # noqa: E402
                                  leaky_relu_backward, leaky_relu_forward, tanh_backward,
                                  tanh_forward)

__all__ += list(LAYER_OPERATIONS) + list(TRAINING_OPERATIONS)
