"""The kernel contract: every operation a fastcnn layer needs, written once.

Each backend is one module (or package) under ``fastcnn.kernels`` that defines
every name in :data:`OPERATIONS` as a module-level function with exactly the
signature documented on :class:`KernelBackend`. Layers never call a backend
directly: they work out shapes and allocate (and reuse) every buffer, and call
each operation through ``fastcnn.functional``, which checks every buffer's
shape, dtype and layout against this contract (and converts what users hand
in) before the backend sees it. So a kernel may assume:

* every array is C-contiguous and float32 unless said otherwise (labels and
  pooling indices are int32), already on the backend's device;
* every ``out``/gradient array has the documented shape and is fully
  overwritten by the kernel (kernels never accumulate into what they are given);
* an argument documented as "or None" may be None, and the kernel then skips
  that part of the work (a first layer needs no input gradient).

Layouts follow PyTorch: activations NCHW, convolution weights OIHW
(out_channels, in_channels, kernel_h, kernel_w), dense weights (out, in).

Convolution is im2col + GEMM with a per-sample column layout::

    cols[n, c*KH*KW + i*KW + j, oy*OW + ox] = xpad[n, c, oy*stride + i, ox*stride + j]
    out[n] = weight.reshape(O, C*KH*KW) @ cols[n]          # (O, OH*OW): already NCHW

so the GEMM writes NCHW directly and no transpose follows it.

Output sizes: ``OH = (H + 2*padding - KH) // stride + 1`` (the same for W).
Pooling uses no padding and floors like PyTorch's default.

Dropout masks come from a counter-based hash so that every backend, CPU or
GPU, draws the *same* mask for the same seed (see :func:`dropout_uniform`).

Activation fusion: ``conv2d_forward`` and ``dense_forward`` take
``activation`` in :data:`ACTIVATIONS` and apply it to their output in the same
pass; their backward passes take the activated output and fold the
activation's derivative into ``dout`` (``dout`` may be overwritten).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

ACTIVATIONS = (None, "relu", "sigmoid")

OPERATIONS = (
    # memory
    "to_device", "to_host", "empty", "zeros",
    # convolution
    "im2col", "col2im", "conv2d_forward", "conv2d_backward",
    # pooling
    "maxpool2d_forward", "maxpool2d_backward", "avgpool2d_forward", "avgpool2d_backward",
    # dense
    "dense_forward", "dense_backward",
    # activations
    "relu_forward", "relu_backward", "sigmoid_forward", "sigmoid_backward",
    "softmax_forward", "softmax_backward",
    # losses
    "softmax_cross_entropy", "mse_loss",
    # dropout
    "dropout_forward", "dropout_backward",
    # optimizers
    "sgd_update", "adam_update", "adadelta_update",
    # primitives: what the reference compositions of the optional operations are built from
    "axpby", "multiply", "rsqrt", "channel_sum", "channel_mean", "channel_affine",
)
"""Every function a backend module must define."""

PRIMITIVES = ("axpby", "multiply", "rsqrt", "channel_sum", "channel_mean", "channel_affine")
"""The element-wise and per-channel operations of :data:`OPERATIONS` that new operations
are composed from (see :data:`COMPOSED`)."""

OPTIONAL = ("set_num_threads", "get_num_threads", "synchronize", "check_usable",
            "compute_thread_ids")
"""Functions a backend may define; callers check with ``hasattr``. compute_thread_ids():
the OS ids of the threads its kernels run on, the calling thread first (fastcnn.affinity)."""

FUSED = ("conv2d_maxpool_forward", "conv2d_maxpool_backward")
"""Fused operations a backend may define: each does what two operations of
:data:`OPERATIONS` do, in one pass (one parallel region). ``fastcnn.functional``
composes the two for a backend without them, with the same result."""

FROM_INPUT = ("conv2d_backward_from_input", "conv2d_maxpool_backward_from_input")
"""Convolution backward passes a backend may define that rebuild each sample's im2col
columns from the forward pass's input (composed: im2col, then the backward pass). A
backend with them gets ``cols`` None in the forward pass in training, as in inference,
and no (N, C*KH*KW, OH*OW) array is kept between the two passes: the columns are
rebuilt one sample at a time, in cache (see ``fastcnn.functional.rebuilds_columns``)."""

MULTI_TENSOR = ("sgd_update_many", "adam_update_many")
"""Optimizer steps a backend may define over lists of parameters: the operation of the
same name without ``_many`` on each parameter in turn, in one call (one parallel
region). ``fastcnn.functional`` loops over the parameters for a backend without them."""

TRAINING_OPERATIONS = (
    # losses with soft targets, per-sample weights, binary and log-probability inputs
    "softmax_cross_entropy_soft", "mse_loss_weighted", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "nll_loss",
    # the LogSoftmax layer
    "log_softmax_forward", "log_softmax_backward",
    # optimizer steps beyond the articles' and gradient clipping, over lists of arrays
    "rmsprop_update", "nesterov_update_many", "sum_of_squares_many", "scale_many", "clip_many",
)
"""Training operations a backend may define (losses, LogSoftmax, optimizer steps and
clipping): one without an operation runs its reference composition in ``fastcnn.compose``,
from the primitives where they suffice (Nesterov, scaling, sums of squares, clipping) and
otherwise the NumPy reference (kernels/training_reference.py) on the host views of its
arrays (the same memory on the CPU backends; copies there and back on a device). The
compiled CPU backends have kernels for those that carry memory traffic."""

LAYER_OPERATIONS = (
    "tanh_forward", "tanh_backward", "leaky_relu_forward", "leaky_relu_backward",
    "elu_forward", "elu_backward", "gelu_forward", "gelu_backward",
    "global_avgpool2d_forward", "global_avgpool2d_backward",
    "padded_maxpool2d_forward", "padded_avgpool2d_forward", "padded_avgpool2d_backward",
    "dropout2d_forward", "dropout2d_backward",
    "batchnorm_forward", "batchnorm_backward",
)
"""Operations of layers beyond the articles' set, which a backend may define: a backend
without one runs its reference composition (``fastcnn.compose``, from the mandatory
operations and :data:`PRIMITIVES`, so it stays on the backend's device). A compiled
kernel is added where a benchmark says it pays, one backend at a time."""

COMPOSED = FUSED + FROM_INPUT + MULTI_TENSOR + LAYER_OPERATIONS + TRAINING_OPERATIONS
"""Every optional operation with a reference composition: what a backend may leave out.
To add one: its signature on :class:`KernelBackend`, its name here (in
:data:`LAYER_OPERATIONS` or :data:`TRAINING_OPERATIONS`), its composition in
``fastcnn.compose``, a checked entry point in ``fastcnn.functional`` and its cases in
``tests/kernel_cases.py``."""


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Spatial output size of a convolution or pooling window along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


def conv_output_shape(x_shape: tuple, weight_shape: tuple, stride: int, padding: int) -> tuple:
    """(N, O, OH, OW): a convolution's output for x (N, C, H, W) and weight (O, C, KH, KW)."""
    return (x_shape[0], weight_shape[0]) + tuple(
        conv_output_size(side, kernel, stride, padding)
        for side, kernel in zip(x_shape[2:], weight_shape[2:]))


# --- dropout random numbers: one definition shared by every backend ----------
# splitmix64 finaliser over (seed + index * golden ratio). Every backend must
# reproduce these exact integer operations (uint64 wrap-around arithmetic).
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
DROPOUT_CONSTANTS = (_GOLDEN, _MIX1, _MIX2)


def dropout_uniform(seed: int, size: int) -> np.ndarray:
    """Uniform numbers in [0, 1) for dropout, element i from (seed, i) alone.

    Returns ndarray of shape (size,), float64. ``keep = u >= p``. A backend's
    kernel computes the same value for element i as::

        z = (seed + (i + 1) * GOLDEN) mod 2**64
        z = (z ^ (z >> 30)) * MIX1 mod 2**64
        z = (z ^ (z >> 27)) * MIX2 mod 2**64
        z = z ^ (z >> 31)
        u = (z >> 40) * 2**-24        # 24 random bits: exact in float32 too
    """
    with np.errstate(over="ignore"):
        i = np.arange(1, size + 1, dtype=np.uint64)
        z = np.uint64(seed % 2**64) + i * np.uint64(_GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float64) * 2.0**-24


class KernelBackend(Protocol):
    """The signatures every backend module implements (as module functions).

    Shapes: N batch, C input channels, H/W input height/width, O output
    channels, KH/KW kernel height/width, OH/OW output height/width,
    P = OH*OW, K = C*KH*KW, F features, U units, L classes.
    """

    name: str

    # ---- memory -----------------------------------------------------------
    def to_device(self, array: np.ndarray):
        """Host ndarray (any shape) -> backend array with the same contents (identity on CPU)."""

    def to_host(self, array) -> np.ndarray:
        """Backend array -> host ndarray with the same shape and contents."""

    def empty(self, shape: tuple, dtype=np.float32):
        """Uninitialised backend array of ``shape`` and ``dtype``."""

    def zeros(self, shape: tuple, dtype=np.float32):
        """Zero-filled backend array of ``shape`` and ``dtype``."""

    # ---- convolution ------------------------------------------------------
    def im2col(self, x, kernel_h: int, kernel_w: int, stride: int, padding: int, cols) -> None:
        """x (N, C, H, W) -> cols (N, C*KH*KW, OH*OW); padded pixels read as 0."""

    def col2im(self, cols, kernel_h: int, kernel_w: int, stride: int, padding: int, dx) -> None:
        """cols (N, C*KH*KW, OH*OW) -> dx (N, C, H, W), summing overlapping windows (adjoint of im2col)."""

    def conv2d_forward(self, x, weight, bias, stride: int, padding: int, activation, cols, out) -> None:
        """Convolution forward.

        x (N, C, H, W); weight (O, C, KH, KW); bias (O,) or None;
        activation in ACTIVATIONS; cols (N, C*KH*KW, OH*OW) receives
        im2col(x) for the backward pass, or is None when the backward pass does not read
        it (inference, or a backward pass ``_from_input``: the backend may then keep each
        sample's im2col in a scratch buffer of its own instead of writing all of them);
        out (N, O, OH, OW) = act(conv + bias).
        """

    def conv2d_backward(self, dout, out, weight, cols, stride: int, padding: int, activation,
                        dx, dweight, dbias, dcols) -> None:
        """Convolution backward.

        dout (N, O, OH, OW) gradient w.r.t. the activated output (may be
        overwritten); out (N, O, OH, OW) the activated output (unused when
        activation is None); weight (O, C, KH, KW); cols (N, C*KH*KW, OH*OW)
        from forward; dx (N, C, H, W) or None; dweight (O, C, KH, KW);
        dbias (O,) or None; dcols (N, C*KH*KW, OH*OW) workspace, or None when dx is None:
        the kernel may use any part of it and leaves its contents unspecified (the
        compiled CPU backends reuse one sample's slice per group of samples, so that it
        stays in cache).
        """

    # ---- pooling ----------------------------------------------------------
    def maxpool2d_forward(self, x, kernel: int, stride: int, out, argmax) -> None:
        """x (N, C, H, W) -> out (N, C, OH, OW); argmax (N, C, OH, OW) int32 holds
        the winning input's flat index y*W + x within its (H, W) plane (first maximum wins;
        a NaN beats every number, so the first NaN of a window wins, as in NumPy's argmax)."""

    def maxpool2d_backward(self, dout, argmax, dx) -> None:
        """dout (N, C, OH, OW), argmax (N, C, OH, OW) int32 -> dx (N, C, H, W), zero
        except at the winners, where overlapping windows add up."""

    def avgpool2d_forward(self, x, kernel: int, stride: int, out) -> None:
        """x (N, C, H, W) -> out (N, C, OH, OW), the mean of each kernel x kernel window."""

    def avgpool2d_backward(self, dout, kernel: int, stride: int, dx) -> None:
        """dout (N, C, OH, OW) -> dx (N, C, H, W): each window gets dout / kernel**2, overlaps add."""

    # ---- dense ------------------------------------------------------------
    def dense_forward(self, x, weight, bias, activation, out) -> None:
        """x (N, F); weight (U, F); bias (U,) or None -> out (N, U) = act(x @ weight.T + bias)."""

    def dense_backward(self, dout, out, x, weight, activation, dx, dweight, dbias) -> None:
        """dout (N, U) w.r.t. the activated output (may be overwritten); out (N, U);
        x (N, F); weight (U, F) -> dx (N, F) or None; dweight (U, F); dbias (U,) or None."""

    # ---- activations (element-wise; any shape, x and out the same shape) --
    def relu_forward(self, x, out) -> None:
        """out = max(x, 0)."""

    def relu_backward(self, dout, out, dx) -> None:
        """dx = dout where out > 0 else 0 (out is the forward output)."""

    def sigmoid_forward(self, x, out) -> None:
        """out = 1 / (1 + exp(-x)), stable for large |x|."""

    def sigmoid_backward(self, dout, out, dx) -> None:
        """dx = dout * out * (1 - out)."""

    def softmax_forward(self, x, out) -> None:
        """x (N, L) -> out (N, L), softmax over each row (max-subtracted)."""

    def softmax_backward(self, dout, out, dx) -> None:
        """dout, out (N, L) -> dx (N, L) = out * (dout - sum(dout * out, axis=1, keepdims=True))."""

    # ---- losses (one fused pass: loss, gradient and correct count) ---------
    def softmax_cross_entropy(self, logits, labels, dlogits, stats) -> None:
        """logits (N, L); labels (N,) int32 in [0, L) -> dlogits (N, L) =
        (softmax(logits) - onehot(labels)) / N; stats (2,) = [mean loss over N,
        number of rows whose argmax equals the label (first maximum wins)]."""

    def mse_loss(self, pred, target, dpred, stats) -> None:
        """pred, target (N, L) -> dpred (N, L) = 2 * (pred - target) / (N * L);
        stats (2,) = [mean of (pred - target)**2 over all N*L elements,
        number of rows where argmax(pred) == argmax(target)]."""

    # ---- dropout ----------------------------------------------------------
    def dropout_forward(self, x, p: float, seed: int, out, mask) -> None:
        """x, out, mask of one shape (any). Element i (flat C order) is kept when
        dropout_uniform(seed)[i] >= p (compared in float64): mask = 1 / (1 - p) there,
        computed in float64 and rounded once to the mask's dtype, else 0; out = x * mask."""

    def dropout_backward(self, dout, mask, dx) -> None:
        """dx = dout * mask."""

    # ---- fused (optional, see FUSED) ---------------------------------------
    def conv2d_maxpool_forward(self, x, weight, bias, stride: int, padding: int, activation,
                               pool: int, cols, out, pooled, argmax) -> None:
        """conv2d_forward(x, weight, bias, stride, padding, activation, cols, out), then
        maxpool2d_forward(out, pool, pool, pooled, argmax): pooled, argmax (N, O, PH, PW)
        with PH = (OH - pool) // pool + 1. out (N, O, OH, OW) is kept for the backward pass.
        In inference (cols None) out and argmax may be None too: only pooled is wanted, and
        the full-resolution output need not leave the cache; before a backward pass
        conv2d_maxpool_backward_from_input (cols None) out may be None."""

    def conv2d_maxpool_backward(self, dpooled, argmax, out, weight, cols, stride: int,
                                padding: int, activation, dx, dweight, dbias, dcols,
                                dout) -> None:
        """maxpool2d_backward(dpooled, argmax, dout) into dout (N, O, OH, OW), then
        conv2d_backward(dout, out, weight, cols, stride, padding, activation, dx, dweight,
        dbias, dcols)."""

    # ---- backward passes from the input (optional, see FROM_INPUT) ---------
    def conv2d_backward_from_input(self, dout, out, weight, x, stride: int, padding: int,
                                   activation, dx, dweight, dbias) -> None:
        """im2col(x, ..., cols), then conv2d_backward(dout, out, weight, cols, stride, padding,
        activation, dx, dweight, dbias, dcols): x (N, C, H, W) the forward pass's input; the
        columns and dcols are the backend's own (a compiled backend rebuilds one sample's
        columns at a time, in cache)."""

    def conv2d_maxpool_backward_from_input(self, dpooled, argmax, pooled, weight, x,
                                           stride: int, padding: int, activation, dx,
                                           dweight, dbias) -> None:
        """The backward pass of conv2d_maxpool_forward from its input x (N, C, H, W) and
        pooled output pooled (N, O, PH, PW): the full-resolution output is not read (the
        forward pass may be given out None), since each window's winner holds the pooled
        value, where the activation's derivative is taken. dpooled * act'(pooled) through
        maxpool2d_backward(..., argmax, dout) into a dout (N, O, OH, OW) of the backend's
        own, then conv2d_backward_from_input(dout, None, weight, x, stride, padding, None,
        dx, dweight, dbias)."""

    # ---- multi-tensor optimizer steps (optional, see MULTI_TENSOR) ---------
    def sgd_update_many(self, params: list, grads: list, velocities: list, lr: float,
                        momentum: float) -> None:
        """sgd_update(params[i], grads[i], velocities[i], lr, momentum) for every i."""

    def adam_update_many(self, params: list, grads: list, ms: list, vs: list, lr: float,
                         beta1: float, beta2: float, eps: float, step: int) -> None:
        """adam_update(params[i], grads[i], ms[i], vs[i], lr, beta1, beta2, eps, step) for
        every i."""

    # ---- primitives (element-wise: any shape; per-channel: axis 1 of a 2-D or 4-D array) ----
    def axpby(self, a: float, x, b: float, y, out) -> None:
        """x, y, out of one shape: out = a*x + b*y. out may be x or y (in place)."""

    def multiply(self, x, y, out) -> None:
        """x, y, out of one shape: out = x * y. out may be x or y."""

    def rsqrt(self, x, eps: float, out) -> None:
        """x, out of one shape: out = 1 / sqrt(x + eps). out may be x."""

    def channel_sum(self, x, out) -> None:
        """x (N, C, H, W) or (N, C) -> out (C,): the sum over every axis but axis 1
        (in any order, accumulated in at least float32 lanes; the reference uses float64)."""

    def channel_mean(self, x, out) -> None:
        """x (N, C, H, W) or (N, C) -> out (C,): channel_sum(x) / (N*H*W) (N for 2-D)."""

    def channel_affine(self, x, scale, shift, out) -> None:
        """x, out (N, C, H, W) or (N, C); scale, shift (C,):
        out[n, c, ...] = x[n, c, ...] * scale[c] + shift[c]. out may be x."""

    # ---- layer operations (optional, see LAYER_OPERATIONS) -----------------
    def batchnorm_forward(self, x, weight, bias, running_mean, running_var, momentum: float,
                          eps: float, training: bool, out, xhat, invstd) -> None:
        """Batch normalisation over axis 1 of x (N, C, H, W) or (N, C), as
        torch.nn.BatchNorm2d/1d: weight, bias, running_mean, running_var, invstd (C,);
        out, xhat like x. M = N*H*W (N for 2-D) values per channel.

        training (M >= 2): mean and biased variance var of each channel over the batch;
        invstd = 1 / sqrt(var + eps); xhat = (x - mean) * invstd; out = xhat * weight + bias;
        in place, running_mean = (1 - momentum) * running_mean + momentum * mean and
        running_var likewise with the unbiased variance var * M / (M - 1).
        Not training: the running statistics take the batch's place and are not updated,
        and xhat may be None (no backward pass follows: out alone is written)."""

    def batchnorm_backward(self, dout, xhat, weight, invstd, training: bool, dx, dweight,
                           dbias) -> None:
        """Backward of batchnorm_forward: dout, xhat, dx like x; weight, invstd, dweight,
        dbias (C,). dbias = channel_sum(dout); dweight = channel_sum(dout * xhat);
        dx = weight * invstd * (dout - dbias / M - xhat * dweight / M) after a training pass,
        weight * invstd * dout after an inference pass; dx may be None (not needed)."""

    # ---- optimizers (in place; param, grad and state of one shape) --------
    def sgd_update(self, param, grad, velocity, lr: float, momentum: float) -> None:
        """PyTorch SGD: velocity = momentum * velocity + grad; param -= lr * velocity
        (velocity starts at zero, so the first step is a plain gradient step)."""

    def adam_update(self, param, grad, m, v, lr: float, beta1: float, beta2: float,
                    eps: float, step: int) -> None:
        """PyTorch Adam, step >= 1: m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
        param -= lr * (m / (1 - b1**step)) / (sqrt(v / (1 - b2**step)) + eps)."""

    def adadelta_update(self, param, grad, square_avg, acc_delta, lr: float, rho: float,
                        eps: float) -> None:
        """PyTorch Adadelta: square_avg = rho*sa + (1-rho)*g*g;
        delta = sqrt(acc_delta + eps) / sqrt(square_avg + eps) * g;
        acc_delta = rho*acc_delta + (1-rho)*delta*delta; param -= lr * delta."""

    # ---- layers past the tutorials (optional, see LAYER_OPERATIONS) -----------
    # element-wise, any shape; x, out, dout, dx of one shape
    def tanh_forward(self, x, out) -> None:
        """out = tanh(x)."""

    def tanh_backward(self, dout, out, dx) -> None:
        """dx = dout * (1 - out**2) (out is the forward output)."""

    def leaky_relu_forward(self, x, negative_slope: float, out) -> None:
        """out = x where x > 0 else negative_slope * x (PyTorch's LeakyReLU)."""

    def leaky_relu_backward(self, dout, x, negative_slope: float, dx) -> None:
        """dx = dout where x > 0 else negative_slope * dout (x is the forward input)."""

    def elu_forward(self, x, alpha: float, out) -> None:
        """out = x where x > 0 else alpha * (exp(x) - 1)."""

    def elu_backward(self, dout, x, alpha: float, dx) -> None:
        """dx = dout where x > 0 else dout * alpha * exp(x) (x is the forward input)."""

    def gelu_forward(self, x, approximate: bool, out) -> None:
        """out = x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2))); with ``approximate``,
        PyTorch's tanh form 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3)))."""

    def gelu_backward(self, dout, x, approximate: bool, dx) -> None:
        """dx = dout * d/dx gelu(x), of the same form (x is the forward input)."""

    def global_avgpool2d_forward(self, x, out) -> None:
        """x (N, C, H, W) -> out (N, C), the mean of each (H, W) plane."""

    def global_avgpool2d_backward(self, dout, dx) -> None:
        """dout (N, C) -> dx (N, C, H, W) = dout / (H * W) over each plane."""

    def padded_maxpool2d_forward(self, x, kernel: int, stride: int, padding: int, out,
                                 argmax) -> None:
        """maxpool2d_forward over x (N, C, H, W) padded by ``padding`` pixels of -inf on each
        side (1 <= padding <= kernel // 2, so every window holds an input pixel): out, argmax
        (N, C, OH, OW), OH = (H + 2*padding - kernel) // stride + 1; argmax is y*W + x in the
        unpadded plane, so maxpool2d_backward takes it as it is."""

    def padded_avgpool2d_forward(self, x, kernel: int, stride: int, padding: int, out) -> None:
        """avgpool2d_forward over x (N, C, H, W) padded with zeros, each window divided by
        kernel**2 (PyTorch's count_include_pad=True) -> out (N, C, OH, OW)."""

    def padded_avgpool2d_backward(self, dout, kernel: int, stride: int, padding: int,
                                  dx) -> None:
        """dout (N, C, OH, OW) -> dx (N, C, H, W): each input pixel sums dout / kernel**2 over
        the padded windows that hold it."""

    def dropout2d_forward(self, x, p: float, seed: int, out, mask) -> None:
        """x, out (N, C, S) (S = H*W, the planes flattened); mask (N, C). Plane i = n*C + c is
        kept when dropout_uniform(seed)[i] >= p: mask = 1 / (1 - p) there (float64 rounded
        once), else 0; out = x * mask[:, :, None]."""

    def dropout2d_backward(self, dout, mask, dx) -> None:
        """dout, dx (N, C, S); mask (N, C) -> dx = dout * mask[:, :, None]."""


    # ---- training operations (optional, see TRAINING_OPERATIONS) ------------------------
    # Losses: weights (N,) per-sample weights or None (all 1); the mean is over the batch
    # (Keras' sum_over_batch_size: sum(w_i * loss_i) / N); stats (2,) = [that mean, correct].
    def softmax_cross_entropy_soft(self, logits, targets, weights, dlogits, stats) -> None:
        """logits, targets (N, L) (target rows are probabilities: one-hot or smoothed);
        weights (N,) or None -> dlogits (N, L) = w_i * (softmax(logits) - targets) / N;
        stats = [sum_i w_i * -sum_j t_ij log softmax_ij / N, rows whose argmax of logits
        equals the argmax of targets (first maximum wins)]."""

    def mse_loss_weighted(self, pred, target, weights, dpred, stats) -> None:
        """mse_loss with each row's terms times weights[i] (N,):
        dpred = 2 * w_i * (pred - target) / (N * L)."""

    def binary_cross_entropy(self, probs, targets, weights, dprobs, stats) -> None:
        """probs, targets (N, L) in [0, 1] (PyTorch's BCELoss: each log clamped at -100);
        weights (N,) or None -> dprobs = w_i * (p - t) / max(p * (1 - p), 1e-12) / (N * L);
        stats = [sum of w_i * loss_ij / (N * L), elements with (p > 0.5) == (t > 0.5),
        divided by L once at the end]."""

    def binary_cross_entropy_with_logits(self, logits, targets, weights, dlogits, stats) -> None:
        """logits, targets (N, L) (BCEWithLogitsLoss: max(x, 0) - x*t + log(1 + exp(-|x|)));
        weights (N,) or None -> dlogits = w_i * (sigmoid(x) - t) / (N * L); stats as for
        binary_cross_entropy with the logit's threshold x > 0."""

    def nll_loss(self, logprobs, labels, weights, dlogprobs, stats) -> None:
        """logprobs (N, L) (a LogSoftmax output); labels (N,) int32; weights (N,) or None ->
        dlogprobs (N, L) = -w_i / N at the label, else 0; stats = [sum_i -w_i *
        logprobs[i, label_i] / N, rows whose argmax equals the label]."""

    def log_softmax_forward(self, x, out) -> None:
        """x (N, L) -> out (N, L) = x - max - log(sum(exp(x - max))) per row."""

    def log_softmax_backward(self, dout, out, dx) -> None:
        """dout, out (N, L) -> dx (N, L) = dout - exp(out) * sum(dout, axis=1, keepdims=True)."""

    def rmsprop_update(self, param, grad, square_avg, grad_avg, momentum_buffer, lr: float,
                       alpha: float, eps: float, momentum: float) -> None:
        """PyTorch RMSprop: sa = alpha*sa + (1-alpha)*g*g; centered (grad_avg not None):
        ga = alpha*ga + (1-alpha)*g, avg = sqrt(sa - ga*ga) + eps, else avg = sqrt(sa) + eps;
        with a momentum_buffer (not None): buf = momentum*buf + g/avg, param -= lr*buf;
        without: param -= lr * g / avg. grad_avg, momentum_buffer of param's shape or None."""

    def nesterov_update_many(self, params: list, grads: list, velocities: list, lr: float,
                             momentum: float) -> None:
        """PyTorch SGD(nesterov=True) on every i: v = momentum*v + g;
        param -= lr * (g + momentum*v)."""

    def sum_of_squares_many(self, arrays: list, out) -> None:
        """arrays: T arrays of any shapes -> out (T,) float32: each array's sum of squares,
        accumulated in float64 and rounded once."""

    def scale_many(self, arrays: list, factor: float) -> None:
        """Every element of every array *= factor (in place)."""

    def clip_many(self, arrays: list, low: float, high: float) -> None:
        """Every element of every array clamped to [low, high] in place (NaN stays NaN)."""
