"""Backend ``cuda``: Numba CUDA kernels on an NVIDIA GPU (see :mod:`fastcnn.kernels.cuda`).

Arrays are Numba device arrays; every operation is a kernel launch and nothing
is copied to the host except by ``to_host``. Importing raises ImportError when
numba-cuda is missing; ``check_usable`` raises when no GPU is usable. Under
Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1) ``SIMULATED`` is True: usable
when named, for tests, and never picked by ``auto``.
"""

from .cuda.runtime import SIMULATED, check_usable, empty, synchronize, to_device, to_host, zeros
from .cuda.conv import col2im, conv2d_backward, conv2d_forward, im2col
from .cuda.pool import avgpool2d_backward, avgpool2d_forward, maxpool2d_backward, maxpool2d_forward
from .cuda.dense import dense_backward, dense_forward
from .cuda.elementwise import (adadelta_update, adam_update, dropout_backward, dropout_forward,
                               relu_backward, relu_forward, sgd_update, sigmoid_backward,
                               sigmoid_forward)
from .cuda.primitives import (axpby, channel_affine, channel_mean, channel_sum, multiply,
                              rsqrt)
from .cuda.rows import mse_loss, softmax_backward, softmax_cross_entropy, softmax_forward
from .cuda.training import clip_many, log_softmax_backward, log_softmax_forward, rmsprop_update
# the layers past the tutorials (contract.LAYER_OPERATIONS)
from .cuda.elementwise import dropout2d_backward, dropout2d_forward
from .cuda.padded_pool import (global_avgpool2d_backward, global_avgpool2d_forward,
                               padded_avgpool2d_backward, padded_avgpool2d_forward,
                               padded_maxpool2d_forward)
from .cuda.pointwise import (elu_backward, elu_forward, gelu_backward, gelu_forward,
                             leaky_relu_backward, leaky_relu_forward, tanh_backward, tanh_forward)
from .contract import LAYER_OPERATIONS

name = "cuda"

__all__ = [
    "name", "SIMULATED", "check_usable", "synchronize", "to_device", "to_host", "empty", "zeros",
    "im2col", "col2im", "conv2d_forward", "conv2d_backward",
    "maxpool2d_forward", "maxpool2d_backward", "avgpool2d_forward", "avgpool2d_backward",
    "dense_forward", "dense_backward",
    "relu_forward", "relu_backward", "sigmoid_forward", "sigmoid_backward",
    "softmax_forward", "softmax_backward", "softmax_cross_entropy", "mse_loss",
    "dropout_forward", "dropout_backward", "sgd_update", "adam_update", "adadelta_update",
    "axpby", "multiply", "rsqrt", "channel_sum", "channel_mean", "channel_affine",
    "rmsprop_update", "clip_many", "log_softmax_forward", "log_softmax_backward",
]
__all__ += list(LAYER_OPERATIONS)
