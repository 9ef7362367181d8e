"""Reference compositions of the contract's optional operations (``contract.COMPOSED``).

A backend that lacks an optional operation runs the function of the same name here,
built from operations every backend has (the mandatory ones and the primitives:
``axpby``, ``multiply``, ``rsqrt``, ``channel_sum``, ``channel_mean``,
``channel_affine``), so that it stays on the backend's device, cuda included. Each takes
the backend module first, then the operation's arguments, already checked by
:mod:`fastcnn.functional`. Temporary buffers come from :func:`scratch`, kept per thread,
role and shape, so a training step allocates nothing after the first.
"""

from __future__ import annotations

import threading

import numpy as np

from .kernels.contract import conv_output_shape
from .kernels.multi_tensor import one_by_one

_local = threading.local()


def scratch(backend, role: str, shape: tuple, dtype=None):
    """A backend array for ``role`` (contents undefined), the same one on the next call with
    the same backend, shape and dtype from this thread."""
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    dtype = np.dtype(np.float32 if dtype is None else dtype)
    key = (backend.name, role)
    held = buffers.get(key)
    if held is None or held[0] != (tuple(shape), dtype):
        held = buffers[key] = ((tuple(shape), dtype), backend.empty(tuple(shape), dtype=dtype))
    return held[1]


def constant(backend, value: float, shape: tuple):
    """A backend array of ``shape`` filled with ``value``, made once per backend; never
    written to."""
    constants = getattr(_local, "constants", None)
    if constants is None:
        constants = _local.constants = {}
    key = (backend.name, float(value), tuple(shape))
    if key not in constants:
        constants[key] = backend.to_device(np.full(shape, value, dtype=np.float32))
    return constants[key]


# ---- fused (contract.FUSED) -------------------------------------------------------------
def conv2d_maxpool_forward(backend, x, weight, bias, stride, padding, activation, pool, cols,
                           out, pooled, argmax) -> None:
    if out is None:  # inference: the full-resolution output is a scratch
        out = scratch(backend, "conv2d_maxpool_forward out",
                      conv_output_shape(x.shape, weight.shape, stride, padding))
    if argmax is None:
        argmax = scratch(backend, "conv2d_maxpool_forward argmax", pooled.shape, np.int32)
    backend.conv2d_forward(x, weight, bias, stride, padding, activation, cols, out)
    backend.maxpool2d_forward(out, pool, pool, pooled, argmax)


def conv2d_maxpool_backward(backend, dpooled, argmax, out, weight, cols, stride, padding,
                            activation, dx, dweight, dbias, dcols, dout) -> None:
    backend.maxpool2d_backward(dpooled, argmax, dout)
    backend.conv2d_backward(dout, out, weight, cols, stride, padding, activation, dx, dweight,
                            dbias, dcols)


def conv2d_backward_from_input(backend, dout, out, weight, x, stride, padding, activation, dx,
                               dweight, dbias) -> None:
    cols_shape = _cols_shape(x.shape, weight.shape, stride, padding)
    cols = scratch(backend, "conv2d_backward_from_input cols", cols_shape)
    backend.im2col(x, weight.shape[2], weight.shape[3], stride, padding, cols)
    dcols = None if dx is None else scratch(backend, "conv2d_backward_from_input dcols",
                                            cols_shape)
    backend.conv2d_backward(dout, out, weight, cols, stride, padding, activation, dx, dweight,
                            dbias, dcols)


def conv2d_maxpool_backward_from_input(backend, dpooled, argmax, pooled, weight, x, stride,
                                       padding, activation, dx, dweight, dbias) -> None:
    folded = dpooled
    if activation is not None:  # the derivative at each winner, whose value pooled holds
        folded = scratch(backend, "conv2d_maxpool_backward_from_input folded", dpooled.shape,
                         dpooled.dtype)
        getattr(backend, f"{activation}_backward")(dpooled, pooled, folded)
    dout = scratch(backend, "conv2d_maxpool_backward_from_input dout",
                   conv_output_shape(x.shape, weight.shape, stride, padding), dpooled.dtype)
    backend.maxpool2d_backward(folded, argmax, dout)
    conv2d_backward_from_input(backend, dout, None, weight, x, stride, padding, None, dx,
                               dweight, dbias)


def _cols_shape(x_shape, weight_shape, stride, padding):
    """im2col's (N, C*KH*KW, OH*OW) for x (N, C, H, W) and weight (O, C, KH, KW)."""
    n, _, oh, ow = conv_output_shape(x_shape, weight_shape, stride, padding)
    return (n, x_shape[1] * weight_shape[2] * weight_shape[3], oh * ow)


# ---- multi-tensor (contract.MULTI_TENSOR) ---------------------------------------------------
def sgd_update_many(backend, params, grads, velocities, lr, momentum) -> None:
    one_by_one(backend.sgd_update, (params, grads, velocities), lr, momentum)


def adam_update_many(backend, params, grads, ms, vs, lr, beta1, beta2, eps, step) -> None:
    one_by_one(backend.adam_update, (params, grads, ms, vs), lr, beta1, beta2, eps, step)


# ---- the layers past the tutorials (contract.LAYER_OPERATIONS) -------------------------------
_constants: dict = {}


def _zeros(backend, role: str, shape: tuple, dtype):
    """A zero-filled backend array that no composition ever writes (a constant)."""
    key = (backend.name, role, tuple(shape), np.dtype(dtype).str)
    if key not in _constants:
        _constants[key] = backend.zeros(tuple(shape), dtype=dtype)
    return _constants[key]


def _constant(backend, value: float, dtype):
    """A (1,) backend array holding ``value``: a scale or shift for channel_affine."""
    key = (backend.name, "constant", float(value), np.dtype(dtype).str)
    if key not in _constants:
        _constants[key] = backend.to_device(np.array([value], dtype=dtype))
    return _constants[key]


def _affine(backend, x, scale: float, shift: float, out) -> None:
    """out = scale * x + shift element-wise (any shape): channel_affine over one channel."""
    backend.channel_affine(x.reshape(x.size, 1), _constant(backend, scale, x.dtype),
                           _constant(backend, shift, x.dtype), out.reshape(out.size, 1))


def _sigmoid_and_odds(backend, m, sigmoid, odds) -> None:
    """sigmoid = sigmoid(m) and odds = 1 / (1 - sigmoid(m)) for m <= 0 (the denominator in
    [1/2, 1], its inverse as rsqrt**2), so that exp(m) = sigmoid * odds and
    exp(m) - 1 = (2 sigmoid - 1) * odds, exact at 0."""
    backend.sigmoid_forward(m, sigmoid)
    _affine(backend, sigmoid, -1.0, 1.0, odds)
    backend.rsqrt(odds, 0.0, odds)
    backend.multiply(odds, odds, odds)


def _host_reference(backend, op: str, args: tuple, written: tuple) -> None:
    """op of the NumPy reference on host copies, its outputs (positions ``written``) copied
    back into the backend's arrays: for an operation no composition of the primitives
    gives exactly (GELU's erf; max pooling over -inf padding, whose argmax needs integer
    arithmetic the primitives lack)."""
    from .kernels import numpy_backend

    host = [np.array(backend.to_host(a)) if hasattr(a, "shape") else a for a in args]
    getattr(numpy_backend, op)(*host)
    for i in written:
        if isinstance(args[i], np.ndarray):
            args[i][...] = host[i]
        else:  # a device array
            args[i].copy_to_device(host[i])


def tanh_forward(backend, x, out) -> None:
    doubled = scratch(backend, "tanh doubled", x.shape, x.dtype)  # tanh(x) = 2 sigmoid(2x) - 1
    _affine(backend, x, 2.0, 0.0, doubled)
    backend.sigmoid_forward(doubled, out)
    _affine(backend, out, 2.0, -1.0, out)


def tanh_backward(backend, dout, out, dx) -> None:
    slope = scratch(backend, "tanh slope", out.shape, out.dtype)
    backend.multiply(out, out, slope)
    _affine(backend, slope, -1.0, 1.0, slope)
    backend.multiply(dout, slope, dx)


def leaky_relu_forward(backend, x, negative_slope, out) -> None:
    positive = scratch(backend, "leaky relu positive", x.shape, x.dtype)  # s x + (1 - s) relu(x)
    backend.relu_forward(x, positive)
    backend.axpby(negative_slope, x, 1.0 - negative_slope, positive, out)


def leaky_relu_backward(backend, dout, x, negative_slope, dx) -> None:
    passed = scratch(backend, "leaky relu passed", x.shape, x.dtype)  # dout where x > 0
    backend.relu_backward(dout, x, passed)
    backend.axpby(1.0 - negative_slope, passed, negative_slope, dout, dx)


def _negative_part(backend, x, out) -> None:
    """out = min(x, 0) = -relu(-x)."""
    _affine(backend, x, -1.0, 0.0, out)
    backend.relu_forward(out, out)
    _affine(backend, out, -1.0, 0.0, out)


def elu_forward(backend, x, alpha, out) -> None:
    # relu(x) + alpha * (exp(min(x, 0)) - 1)
    negative = scratch(backend, "elu negative", x.shape, x.dtype)
    odds = scratch(backend, "elu odds", x.shape, x.dtype)
    _negative_part(backend, x, out)
    _sigmoid_and_odds(backend, out, negative, odds)
    _affine(backend, negative, 2.0 * alpha, -alpha, negative)
    backend.multiply(negative, odds, negative)
    backend.relu_forward(x, out)
    backend.axpby(1.0, out, 1.0, negative, out)


def elu_backward(backend, dout, x, alpha, dx) -> None:
    # dout where x > 0, plus alpha * exp(min(x, 0)) * dout where x <= 0
    passed = scratch(backend, "elu passed", x.shape, x.dtype)
    rest = scratch(backend, "elu rest", x.shape, x.dtype)
    odds = scratch(backend, "elu odds", x.shape, x.dtype)
    backend.relu_backward(dout, x, passed)
    backend.axpby(1.0, dout, -1.0, passed, rest)
    _negative_part(backend, x, dx)
    _sigmoid_and_odds(backend, dx, dx, odds)
    backend.multiply(dx, odds, dx)
    backend.multiply(rest, dx, rest)
    backend.axpby(1.0, passed, alpha, rest, dx)


def gelu_forward(backend, x, approximate, out) -> None:
    _host_reference(backend, "gelu_forward", (x, approximate, out), (2,))


def gelu_backward(backend, dout, x, approximate, dx) -> None:
    _host_reference(backend, "gelu_backward", (dout, x, approximate, dx), (3,))


def global_avgpool2d_forward(backend, x, out) -> None:
    n, c, h, w = x.shape  # each (n, c) plane a channel of one sample
    backend.channel_mean(x.reshape(1, n * c, h, w), out.reshape(n * c))


def global_avgpool2d_backward(backend, dout, dx) -> None:
    n, c, h, w = dx.shape  # dx = 0 * zeros + dout / (H*W), by plane
    share = scratch(backend, "global pool share", (n * c,), dout.dtype)
    planes = dout.reshape(n * c)
    backend.axpby(1.0 / (h * w), planes, 0.0, planes, share)
    backend.channel_affine(_zeros(backend, "global pool", (1, n * c, h, w), dx.dtype),
                           _zeros(backend, "global pool scale", (n * c,), dx.dtype), share,
                           dx.reshape(1, n * c, h, w))


def _box_filter(backend, dtype, kernel):
    """weight (1, 1, kernel, kernel) of 1 / kernel**2: average pooling as a convolution."""
    key = (backend.name, "box", kernel, np.dtype(dtype).str)
    if key not in _constants:
        _constants[key] = backend.to_device(np.full((1, 1, kernel, kernel), 1.0 / kernel**2, dtype))
    return _constants[key]


def padded_maxpool2d_forward(backend, x, kernel, stride, padding, out, argmax) -> None:
    _host_reference(backend, "padded_maxpool2d_forward", (x, kernel, stride, padding, out, argmax),
                    (4, 5))


def padded_avgpool2d_forward(backend, x, kernel, stride, padding, out) -> None:
    # every plane convolved alone with the box filter: zero padding counted, like PyTorch's
    n, c, h, w = x.shape
    oh, ow = out.shape[2:]
    cols = scratch(backend, "padded avgpool cols", (n * c, kernel * kernel, oh * ow), x.dtype)
    backend.conv2d_forward(x.reshape(n * c, 1, h, w), _box_filter(backend, x.dtype, kernel), None,
                           stride, padding, None, cols, out.reshape(n * c, 1, oh, ow))


def padded_avgpool2d_backward(backend, dout, kernel, stride, padding, dx) -> None:
    # the box filter's input gradient (its weight gradient, from stale columns, is dropped)
    n, c, h, w = dx.shape
    oh, ow = dout.shape[2:]
    cols = _zeros(backend, "padded avgpool cols", (n * c, kernel * kernel, oh * ow), dx.dtype)
    dcols = scratch(backend, "padded avgpool dcols", cols.shape, dx.dtype)
    dweight = scratch(backend, "padded avgpool dweight", (1, 1, kernel, kernel), dx.dtype)
    backend.conv2d_backward(dout.reshape(n * c, 1, oh, ow), None, _box_filter(backend, dx.dtype, kernel),
                            cols, stride, padding, None, dx.reshape(n * c, 1, h, w), dweight, None,
                            dcols)


def _per_plane(backend, x, mask, out) -> None:
    """x, out (N, C, S) -> out = x * mask[n, c] (mask (N, C)), each plane a channel."""
    n, c, s = x.shape
    backend.channel_affine(x.reshape(1, n * c, s, 1), mask.reshape(n * c),
                           _zeros(backend, "plane shift", (n * c,), x.dtype),
                           out.reshape(1, n * c, s, 1))


def dropout2d_forward(backend, x, p, seed, out, mask) -> None:
    # the plane mask is dropout's mask over N*C ones: element i of it is plane i's draw
    n, c = mask.shape
    ones = scratch(backend, "dropout2d ones", (n * c,), x.dtype)
    _affine(backend, _zeros(backend, "dropout2d", (n * c,), x.dtype), 0.0, 1.0, ones)
    backend.dropout_forward(ones, p, seed, mask.reshape(n * c),
                            scratch(backend, "dropout2d mask", (n * c,), x.dtype))
    _per_plane(backend, x, mask, out)


def dropout2d_backward(backend, dout, mask, dx) -> None:
    _per_plane(backend, dout, mask, dx)


# ---- training operations (contract.TRAINING_OPERATIONS) ----------------------------------------
def _on_host(op: str, written: tuple):
    """``op``'s composition: the NumPy reference on host copies (_host_reference), for an
    operation the primitives cannot express (logarithms, exponentials, square roots)."""
    def composition(backend, *args) -> None:
        _host_reference(backend, op, args, tuple(i for i in written if args[i] is not None))
    composition.__name__ = composition.__qualname__ = op
    composition.__doc__ = f"{op}: the NumPy reference on host copies (see _host_reference)."
    return composition


_LOSS_OUTPUTS = (3, 4)  # the gradient and the stats
softmax_cross_entropy_soft = _on_host("softmax_cross_entropy_soft", _LOSS_OUTPUTS)
mse_loss_weighted = _on_host("mse_loss_weighted", _LOSS_OUTPUTS)
binary_cross_entropy = _on_host("binary_cross_entropy", _LOSS_OUTPUTS)
binary_cross_entropy_with_logits = _on_host("binary_cross_entropy_with_logits", _LOSS_OUTPUTS)
nll_loss = _on_host("nll_loss", _LOSS_OUTPUTS)
log_softmax_forward = _on_host("log_softmax_forward", (1,))
log_softmax_backward = _on_host("log_softmax_backward", (2,))
rmsprop_update = _on_host("rmsprop_update", (0, 2, 3, 4))


def nesterov_update_many(backend, params, grads, velocities, lr, momentum) -> None:
    """v = momentum*v + g; p -= lr*g; p -= lr*momentum*v (three scaled adds per parameter)."""
    for param, grad, velocity in zip(params, grads, velocities):
        backend.axpby(momentum, velocity, 1.0, grad, velocity)
        backend.axpby(1.0, param, -lr, grad, param)
        backend.axpby(1.0, param, -lr * momentum, velocity, param)


def _column(array):
    """(size,) -> (size, 1) view: one channel, for the per-channel primitives."""
    return array.reshape(array.size, 1)


def sum_of_squares_many(backend, arrays, out) -> None:
    """out[i] = channel_sum(arrays[i] * arrays[i]) over a one-channel view."""
    largest = max((array.size for array in arrays), default=0)
    for i, array in enumerate(arrays):
        squares = scratch(backend, "squares", (largest, 1), array.dtype)[:array.size]
        backend.multiply(_column(array), _column(array), squares)
        backend.channel_sum(squares, out[i:i + 1])


def scale_many(backend, arrays, factor) -> None:
    for array in arrays:
        backend.axpby(factor, array, 0.0, array, array)


def clip_many(backend, arrays, low, high) -> None:
    """x - relu(x - high) + relu(low - x), from channel_affine, relu_forward and axpby
    (NaN stays NaN)."""
    for array in arrays:
        excess = scratch(backend, "clip excess", array.shape, array.dtype)
        _affine(backend, array, 1.0, -high, excess)
        backend.relu_forward(excess, excess)
        backend.axpby(1.0, array, -1.0, excess, array)
        _affine(backend, array, -1.0, low, excess)
        backend.relu_forward(excess, excess)
        backend.axpby(1.0, array, 1.0, excess, array)


# ---- batch normalisation (contract.LAYER_OPERATIONS) --------------------------------------------
def batchnorm_forward(backend, x, weight, bias, running_mean, running_var, momentum, eps,
                      training, out, xhat, invstd) -> None:
    channels = x.shape[1]
    zeros = constant(backend, 0.0, (channels,))
    shift = scratch(backend, "batchnorm shift", (channels,), x.dtype)
    if not training:
        backend.rsqrt(running_var, eps, invstd)
        if xhat is None:  # out = x * (weight * invstd) + (bias - mean * weight * invstd)
            scale = scratch(backend, "batchnorm scale", (channels,), x.dtype)
            backend.multiply(weight, invstd, scale)
            backend.multiply(running_mean, scale, shift)
            backend.axpby(-1.0, shift, 1.0, bias, shift)
            backend.channel_affine(x, scale, shift, out)
            return
        backend.multiply(running_mean, invstd, shift)
        backend.axpby(-1.0, shift, 0.0, shift, shift)
        backend.channel_affine(x, invstd, shift, xhat)  # (x - mean) * invstd
        backend.channel_affine(xhat, weight, bias, out)
        return
    count = x.size // channels
    mean = scratch(backend, "batchnorm mean", (channels,), x.dtype)
    var = scratch(backend, "batchnorm var", (channels,), x.dtype)
    squares = scratch(backend, "batchnorm squares", x.shape, x.dtype)
    backend.channel_mean(x, mean)
    backend.axpby(-1.0, mean, 0.0, mean, shift)
    backend.channel_affine(x, constant(backend, 1.0, (channels,)), shift, xhat)  # x - mean
    backend.multiply(xhat, xhat, squares)
    backend.channel_mean(squares, var)
    backend.rsqrt(var, eps, invstd)
    backend.channel_affine(xhat, invstd, zeros, xhat)
    backend.channel_affine(xhat, weight, bias, out)
    backend.axpby(1.0 - momentum, running_mean, momentum, mean, running_mean)
    backend.axpby(1.0 - momentum, running_var, momentum * count / (count - 1), var, running_var)


def batchnorm_backward(backend, dout, xhat, weight, invstd, training, dx, dweight, dbias) -> None:
    channels = dout.shape[1]
    zeros = constant(backend, 0.0, (channels,))
    product = scratch(backend, "batchnorm product", dout.shape, dout.dtype)
    backend.channel_sum(dout, dbias)
    backend.multiply(dout, xhat, product)
    backend.channel_sum(product, dweight)
    if dx is None:
        return
    gain = scratch(backend, "batchnorm gain", (channels,), dout.dtype)
    backend.multiply(weight, invstd, gain)
    if not training:
        backend.channel_affine(dout, gain, zeros, dx)
        return
    count = dout.size // channels
    slope = scratch(backend, "batchnorm slope", (channels,), dout.dtype)
    shift = scratch(backend, "batchnorm shift", (channels,), dout.dtype)
    backend.multiply(gain, dweight, slope)
    backend.axpby(-1.0 / count, slope, 0.0, slope, slope)
    backend.multiply(gain, dbias, shift)
    backend.axpby(-1.0 / count, shift, 0.0, shift, shift)
    backend.channel_affine(xhat, slope, shift, dx)  # - gain * (dbias + xhat * dweight) / M
    backend.channel_affine(dout, gain, zeros, product)
    backend.axpby(1.0, dx, 1.0, product, dx)
