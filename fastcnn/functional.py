"""The one layer between fastcnn and the kernel backends: every kernel call goes through here.

Each function has the signature of the operation of the same name in
:mod:`fastcnn.kernels.contract`. It checks that every buffer has the shape,
dtype and C-contiguous layout the contract documents, then calls the active
backend, so no kernel ever receives a buffer of the wrong size, whichever
backend runs. :func:`to_backend` turns what a user hands in (NumPy arrays of
any float dtype, non-contiguous views, torch tensors, lists) into a backend
array the same way for every backend.

Layers work out shapes and allocate their buffers (reused across batches) from
a :class:`fastcnn.parameter.Workspace`; this module only checks and calls.
"""

from __future__ import annotations

import numpy as np

from . import compose
from .backend import get_backend
from .errors import InputError
from .inputs import _host
from .kernels.contract import ACTIVATIONS, COMPOSED, conv_output_size

_FLOAT = np.dtype(np.float32)
"""The float dtype every float buffer has (the float64 gradient-check tests patch it)."""
_INT = np.dtype(np.int32)


class KernelArgumentError(InputError):
    """A buffer that does not match the kernel contract (shape, dtype or layout)."""


# ---- conversion of user arrays --------------------------------------------------------------
def is_host_array(value) -> bool:
    """True for NumPy arrays, torch tensors, lists: anything that is not a backend device array."""
    return isinstance(value, (np.ndarray, list, tuple, float, int)) or hasattr(value, "detach")


def host_array(value, dtype=np.float32) -> np.ndarray:
    """A C-contiguous host ndarray of ``dtype`` from a NumPy array, torch tensor or list."""
    return np.asarray(_host(value), dtype=dtype, order="C")  # ascontiguousarray makes 0-d 1-d


def to_backend(value, what: str = "array", shape: tuple | None = None, dtype=None):
    """``value`` as a C-contiguous backend array of ``dtype`` (float32 by default).

    Host values (NumPy of any dtype, torch tensors, lists) are converted and copied
    to the backend; a backend array of another dtype or layout is converted through
    the host. With ``shape``, a value of another shape is an InputError naming ``what``.
    """
    dtype = np.dtype(dtype if dtype is not None else _FLOAT)
    backend = get_backend()
    if is_host_array(value):
        result = backend.to_device(host_array(value, dtype))
    elif value.dtype != dtype or not _contiguous(value):
        result = backend.to_device(host_array(backend.to_host(value), dtype))
    else:
        result = value
    if shape is not None and tuple(result.shape) != tuple(shape):
        raise InputError(f"{what} has shape {tuple(result.shape)}, expected {tuple(shape)}")
    return result


# ---- checks -------------------------------------------------------------------------------------
def _contiguous(array) -> bool:
    flags = getattr(array, "flags", None)
    if flags is not None:
        return bool(flags["C_CONTIGUOUS"])
    return bool(array.is_c_contiguous())


def _check(op: str, name: str, array, shape, dtype=None, optional: bool = False) -> None:
    """KernelArgumentError unless ``array`` has ``shape``, ``dtype`` and C order (or is None when optional)."""
    if array is None:
        if optional:
            return
        raise KernelArgumentError(f"{op}: {name} is None; the kernel contract needs an array")
    dtype = _FLOAT if dtype is None else dtype
    if tuple(array.shape) != tuple(shape) or array.dtype != dtype or not _contiguous(array):
        layout = "C-contiguous" if _contiguous(array) else "not C-contiguous"
        raise KernelArgumentError(
            f"{op}: {name} is {array.dtype} {tuple(array.shape)} ({layout}); the kernel contract "
            f"needs C-contiguous {np.dtype(dtype)} {tuple(shape)}")


def _rank(op: str, name: str, array, rank: int) -> tuple:
    if array is None or len(array.shape) != rank:
        got = "None" if array is None else f"shape {tuple(array.shape)}"
        raise KernelArgumentError(f"{op}: {name} must be {rank}-D, got {got}")
    return tuple(int(s) for s in array.shape)


def _same(op: str, reference_name: str, reference, **arrays) -> None:
    """Every named array has the reference's shape and dtype (the reference is checked too)."""
    _check(op, reference_name, reference, reference.shape)
    for name, array in arrays.items():
        _check(op, name, array, reference.shape)


def _activation(op: str, activation) -> None:
    if activation not in ACTIVATIONS:
        raise KernelArgumentError(f"{op}: activation {activation!r} is not one of {ACTIVATIONS}")


def _positive(op: str, **values) -> None:
    for name, value in values.items():
        if int(value) != value or value < (0 if name == "padding" else 1):
            raise KernelArgumentError(f"{op}: {name} must be a whole number "
                                      f"{'>= 0' if name == 'padding' else '>= 1'}, got {value}")


def _conv_geometry(op, image_shape, kernel_h, kernel_w, stride, padding):
    """(OH, OW) of a convolution/pool window over image_shape (N, C, H, W), checked >= 1."""
    _positive(op, kernel_h=kernel_h, kernel_w=kernel_w, stride=stride, padding=padding)
    oh = conv_output_size(image_shape[2], kernel_h, stride, padding)
    ow = conv_output_size(image_shape[3], kernel_w, stride, padding)
    if oh < 1 or ow < 1:
        raise KernelArgumentError(f"{op}: a {kernel_h}x{kernel_w} window does not fit "
                                  f"{image_shape[2]}x{image_shape[3]} with padding {padding}")
    return oh, ow


def _image_side(op, name, images, kernel_h, kernel_w, stride, padding) -> tuple:
    """Check the image side ``name`` (N, C, H, W) of a windowed op (im2col, col2im,
    pooling); returns (N, C, OH, OW), the window positions."""
    n, c, _, _ = _rank(op, name, images, 4)
    oh, ow = _conv_geometry(op, images.shape, kernel_h, kernel_w, stride, padding)
    _check(op, name, images, images.shape)
    return n, c, oh, ow


# ---- optional operations -----------------------------------------------------------------------
def optional(op: str, *args) -> None:
    """Run optional operation ``op`` (contract.COMPOSED) on checked arguments: the backend's
    kernel where it has one, else the reference composition ``fastcnn.compose.<op>``."""
    if op not in COMPOSED:
        raise KernelArgumentError(f"{op} is not an optional operation of the kernel contract")
    backend = get_backend()
    kernel = getattr(backend, op, None)
    if kernel is not None:
        kernel(*args)
    else:
        getattr(compose, op)(backend, *args)


# ---- convolution ------------------------------------------------------------------------------
def im2col(x, kernel_h, kernel_w, stride, padding, cols) -> None:
    """x (N, C, H, W) -> cols (N, C*KH*KW, OH*OW)."""
    n, c, oh, ow = _image_side("im2col", "x", x, kernel_h, kernel_w, stride, padding)
    _check("im2col", "cols", cols, (n, c * kernel_h * kernel_w, oh * ow))
    get_backend().im2col(x, kernel_h, kernel_w, stride, padding, cols)


def col2im(cols, kernel_h, kernel_w, stride, padding, dx) -> None:
    """cols (N, C*KH*KW, OH*OW) -> dx (N, C, H, W)."""
    n, c, oh, ow = _image_side("col2im", "dx", dx, kernel_h, kernel_w, stride, padding)
    _check("col2im", "cols", cols, (n, c * kernel_h * kernel_w, oh * ow))
    get_backend().col2im(cols, kernel_h, kernel_w, stride, padding, dx)


def conv2d_forward(x, weight, bias, stride, padding, activation, cols, out) -> None:
    """x (N, C, H, W), weight (O, C, KH, KW), bias (O,) or None -> cols (None in inference),
    out (N, O, OH, OW)."""
    _check_conv2d_forward(x, weight, bias, stride, padding, activation, cols, out)
    get_backend().conv2d_forward(x, weight, bias, stride, padding, activation, cols, out)


def _check_conv2d_forward(x, weight, bias, stride, padding, activation, cols, out,
                          op="conv2d_forward", out_optional: bool = False) -> tuple:
    """Checks the arguments; returns out's shape (N, O, OH, OW)."""
    n, c, h, w = _rank(op, "x", x, 4)
    o, _, kh, kw = _rank(op, "weight", weight, 4)
    oh, ow = _conv_geometry(op, x.shape, kh, kw, stride, padding)
    _activation(op, activation)
    _check(op, "x", x, x.shape)
    _check(op, "weight", weight, (o, c, kh, kw))
    _check(op, "bias", bias, (o,), optional=True)
    _check(op, "cols", cols, (n, c * kh * kw, oh * ow), optional=True)
    _check(op, "out", out, (n, o, oh, ow), optional=out_optional)
    return n, o, oh, ow


def conv2d_backward(dout, out, weight, cols, stride, padding, activation,
                    dx, dweight, dbias, dcols) -> None:
    """dout, out (N, O, OH, OW); weight (O, C, KH, KW); cols (N, C*KH*KW, OH*OW) ->
    dx (N, C, H, W) or None, dweight, dbias (O,) or None, dcols workspace."""
    _check_conv2d_backward(dout, out, weight, cols, stride, padding, activation, dx, dweight,
                           dbias, dcols)
    get_backend().conv2d_backward(dout, out, weight, cols, stride, padding, activation,
                                  dx, dweight, dbias, dcols)


def _check_conv2d_backward(dout, out, weight, cols, stride, padding, activation, dx, dweight,
                           dbias, dcols, op="conv2d_backward", x=None) -> None:
    """With ``x`` (the _from_input passes) instead of cols and dcols: x (N, C, H, W)."""
    n, o, oh, ow = _rank(op, "dout", dout, 4)
    _, c, kh, kw = _rank(op, "weight", weight, 4)
    _activation(op, activation)
    _positive(op, stride=stride, padding=padding)
    _check(op, "dout", dout, (n, o, oh, ow))
    _check(op, "out", out, dout.shape, optional=activation is None)
    _check(op, "weight", weight, (o, c, kh, kw))
    if x is None:
        _check(op, "cols", cols, (n, c * kh * kw, oh * ow))
    else:
        _, _, h, w = _rank(op, "x", x, 4)
        _check(op, "x", x, (n, c, h, w))
        if _conv_geometry(op, x.shape, kh, kw, stride, padding) != (oh, ow):
            raise KernelArgumentError(f"{op}: x {tuple(x.shape)} does not give the "
                                      f"{oh}x{ow} output of dout")
    _check(op, "dweight", dweight, weight.shape)
    _check(op, "dbias", dbias, (o,), optional=True)
    if dx is not None:
        _, _, h, w = _rank(op, "dx", dx, 4)
        _check(op, "dx", dx, (n, c, h, w))
        if _conv_geometry(op, dx.shape, kh, kw, stride, padding) != (oh, ow):
            raise KernelArgumentError(f"{op}: dx {tuple(dx.shape)} does not give the "
                                      f"{oh}x{ow} output of dout")
        if x is None:
            _check(op, "dcols", dcols, cols.shape)


def rebuilds_columns(backend=None) -> bool:
    """True when ``backend`` (default: the active one) rebuilds im2col columns in its
    backward pass (contract.FROM_INPUT): a convolution then keeps its input instead of its
    columns between the forward and the backward pass."""
    return hasattr(backend or get_backend(), "conv2d_backward_from_input")


def conv2d_backward_from_input(dout, out, weight, x, stride, padding, activation, dx, dweight,
                               dbias) -> None:
    """conv2d_backward with the columns rebuilt from the forward pass's input x (N, C, H, W):
    dout, out (N, O, OH, OW); weight (O, C, KH, KW) -> dx (N, C, H, W) or None, dweight,
    dbias (O,) or None."""
    op = "conv2d_backward_from_input"
    _check_conv2d_backward(dout, out, weight, None, stride, padding, activation, dx, dweight,
                           dbias, None, op, x=x)
    optional(op, dout, out, weight, x, stride, padding, activation, dx, dweight, dbias)


def conv2d_maxpool_backward_from_input(dpooled, argmax, pooled, weight, x, stride, padding,
                                       activation, dx, dweight, dbias) -> None:
    """The backward pass of conv2d_maxpool_forward from its input x (N, C, H, W) and its
    pooled output: dpooled, argmax, pooled (N, O, PH, PW); weight (O, C, KH, KW) ->
    dx (N, C, H, W) or None, dweight, dbias (O,) or None. The full-resolution output is
    not needed (contract.conv2d_maxpool_backward_from_input)."""
    op = "conv2d_maxpool_backward_from_input"
    n, o, ph, pw = _rank(op, "dpooled", dpooled, 4)
    _, c, kh, kw = _rank(op, "weight", weight, 4)
    _activation(op, activation)
    _positive(op, stride=stride, padding=padding)
    _check(op, "dpooled", dpooled, (n, o, ph, pw))
    _check(op, "argmax", argmax, dpooled.shape, _INT)
    _check(op, "pooled", pooled, dpooled.shape)
    _check(op, "weight", weight, (o, c, kh, kw))
    _, _, h, w = _rank(op, "x", x, 4)
    _check(op, "x", x, (n, c, h, w))
    oh, ow = _conv_geometry(op, x.shape, kh, kw, stride, padding)
    if ph > oh or pw > ow:
        raise KernelArgumentError(f"{op}: dpooled {tuple(dpooled.shape)} is larger than the "
                                  f"{oh}x{ow} convolution output of x {tuple(x.shape)}")
    _check(op, "dweight", dweight, weight.shape)
    _check(op, "dbias", dbias, (o,), optional=True)
    _check(op, "dx", dx, x.shape, optional=True)
    optional(op, dpooled, argmax, pooled, weight, x, stride, padding, activation, dx, dweight,
             dbias)


def conv2d_maxpool_forward(x, weight, bias, stride, padding, activation, pool, cols, out,
                           pooled, argmax) -> None:
    """conv2d_forward (x, weight, bias -> cols, out (N, O, OH, OW)), then
    maxpool2d_forward(out, pool, pool, pooled, argmax) (N, O, PH, PW): one fused pass
    where the backend has it (contract.FUSED), else the two operations. Without cols
    (inference, or before conv2d_maxpool_backward_from_input) out may be None; inference
    may pass argmax None too: pooled alone is computed."""
    op = "conv2d_maxpool_forward"
    inference = cols is None
    if not inference and (out is None or argmax is None):
        raise KernelArgumentError(f"{op}: out and argmax may be None only without cols "
                                  "(inference, or before a backward pass _from_input): "
                                  "conv2d_maxpool_backward needs them")
    n, o, oh, ow = _check_conv2d_forward(x, weight, bias, stride, padding, activation, cols, out,
                                         op, out_optional=inference)
    pooled_shape = (n, o) + _conv_geometry(op, (n, o, oh, ow), pool, pool, pool, 0)
    _check(op, "pooled", pooled, pooled_shape)
    _check(op, "argmax", argmax, pooled_shape, _INT, optional=inference)
    optional(op, x, weight, bias, stride, padding, activation, pool, cols, out, pooled, argmax)


def conv2d_maxpool_backward(dpooled, argmax, out, weight, cols, stride, padding, activation,
                            dx, dweight, dbias, dcols, dout) -> None:
    """maxpool2d_backward(dpooled, argmax, dout) (N, O, PH, PW) -> dout (N, O, OH, OW), then
    conv2d_backward(dout, out, ...): fused where the backend has it, else the two."""
    op = "conv2d_maxpool_backward"
    _check_maxpool2d_backward(dpooled, argmax, dout, op)
    _check_conv2d_backward(dout, out, weight, cols, stride, padding, activation, dx, dweight,
                           dbias, dcols, op)
    optional(op, dpooled, argmax, out, weight, cols, stride, padding, activation, dx, dweight,
             dbias, dcols, dout)


# ---- batch normalisation --------------------------------------------------------------------
def batchnorm_forward(x, weight, bias, running_mean, running_var, momentum, eps, training, out,
                      xhat, invstd) -> None:
    """x, out, xhat (N, C, H, W) or (N, C); weight, bias, running_mean, running_var,
    invstd (C,): contract.batchnorm_forward (a backend's kernel or its composition)."""
    op = "batchnorm_forward"
    channels = _channels(op, x)
    if training and x.size // channels < 2:
        raise KernelArgumentError(f"{op}: training needs at least 2 values per channel, x is "
                                  f"{tuple(x.shape)}")
    if not (0.0 <= momentum <= 1.0 and eps > 0):
        raise KernelArgumentError(f"{op}: momentum must be in [0, 1] and eps > 0, got "
                                  f"{momentum}, {eps}")
    if xhat is None and training:
        raise KernelArgumentError(f"{op}: training needs xhat (the backward pass reads it)")
    _same(op, "x", x, out=out, **({} if xhat is None else {"xhat": xhat}))
    for name, array in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                        ("running_var", running_var), ("invstd", invstd)):
        _check(op, name, array, (channels,))
    optional(op, x, weight, bias, running_mean, running_var, float(momentum), float(eps),
             bool(training), out, xhat, invstd)


def batchnorm_backward(dout, xhat, weight, invstd, training, dx, dweight, dbias) -> None:
    """dout, xhat, dx (or None) like x; weight, invstd, dweight, dbias (C,)."""
    op = "batchnorm_backward"
    channels = _channels(op, dout)
    _same(op, "dout", dout, xhat=xhat)
    _check(op, "dx", dx, dout.shape, optional=True)
    for name, array in (("weight", weight), ("invstd", invstd), ("dweight", dweight),
                        ("dbias", dbias)):
        _check(op, name, array, (channels,))
    optional(op, dout, xhat, weight, invstd, bool(training), dx, dweight, dbias)


# ---- pooling ----------------------------------------------------------------------------------
def maxpool2d_forward(x, kernel, stride, out, argmax) -> None:
    """x (N, C, H, W) -> out, argmax (N, C, OH, OW) (argmax int32)."""
    _check_maxpool2d_forward(x, kernel, stride, out, argmax)
    get_backend().maxpool2d_forward(x, kernel, stride, out, argmax)


def _check_maxpool2d_forward(x, kernel, stride, out, argmax, op="maxpool2d_forward") -> None:
    pooled = _image_side(op, "x", x, kernel, kernel, stride, 0)
    _check(op, "out", out, pooled)
    _check(op, "argmax", argmax, pooled, _INT)


def maxpool2d_backward(dout, argmax, dx) -> None:
    """dout, argmax (N, C, OH, OW) -> dx (N, C, H, W); argmax must come from the forward pass of dx's shape."""
    _check_maxpool2d_backward(dout, argmax, dx)
    get_backend().maxpool2d_backward(dout, argmax, dx)


def _check_maxpool2d_backward(dout, argmax, dx, op="maxpool2d_backward") -> None:
    n, c, oh, ow = _rank(op, "dout", dout, 4)
    _, _, h, w = _rank(op, "dx", dx, 4)
    _check(op, "dout", dout, dout.shape)
    _check(op, "argmax", argmax, dout.shape, _INT)
    _check(op, "dx", dx, (n, c, h, w))
    if oh > h or ow > w:
        raise KernelArgumentError(f"{op}: dx {tuple(dx.shape)} is smaller than dout {tuple(dout.shape)}")


def avgpool2d_forward(x, kernel, stride, out) -> None:
    """x (N, C, H, W) -> out (N, C, OH, OW)."""
    op = "avgpool2d_forward"
    _check(op, "out", out, _image_side(op, "x", x, kernel, kernel, stride, 0))
    get_backend().avgpool2d_forward(x, kernel, stride, out)


def avgpool2d_backward(dout, kernel, stride, dx) -> None:
    """dout (N, C, OH, OW) -> dx (N, C, H, W)."""
    op = "avgpool2d_backward"
    _check(op, "dout", dout, _image_side(op, "dx", dx, kernel, kernel, stride, 0))
    get_backend().avgpool2d_backward(dout, kernel, stride, dx)


# ---- dense --------------------------------------------------------------------------------------
def dense_forward(x, weight, bias, activation, out) -> None:
    """x (N, F), weight (U, F), bias (U,) or None -> out (N, U)."""
    op = "dense_forward"
    n, f = _rank(op, "x", x, 2)
    u, _ = _rank(op, "weight", weight, 2)
    _activation(op, activation)
    _check(op, "x", x, x.shape)
    _check(op, "weight", weight, (u, f))
    _check(op, "bias", bias, (u,), optional=True)
    _check(op, "out", out, (n, u))
    get_backend().dense_forward(x, weight, bias, activation, out)


def dense_backward(dout, out, x, weight, activation, dx, dweight, dbias) -> None:
    """dout, out (N, U); x (N, F); weight (U, F) -> dx (N, F) or None, dweight, dbias (U,) or None."""
    op = "dense_backward"
    n, u = _rank(op, "dout", dout, 2)
    _, f = _rank(op, "x", x, 2)
    _activation(op, activation)
    _check(op, "dout", dout, (n, u))
    _check(op, "out", out, (n, u), optional=activation is None)
    _check(op, "x", x, (n, f))
    _check(op, "weight", weight, (u, f))
    _check(op, "dx", dx, (n, f), optional=True)
    _check(op, "dweight", dweight, (u, f))
    _check(op, "dbias", dbias, (u,), optional=True)
    get_backend().dense_backward(dout, out, x, weight, activation, dx, dweight, dbias)


# ---- activations --------------------------------------------------------------------------------
def _elementwise(kernel: str, *arrays) -> None:
    names = ("x", "out") if kernel.endswith("forward") else ("dout", "out", "dx")
    if kernel.startswith("softmax"):
        _rank(kernel, names[0], arrays[0], 2)
    _same(kernel, names[0], arrays[0], **dict(zip(names[1:], arrays[1:])))
    getattr(get_backend(), kernel)(*arrays)


def relu_forward(x, out) -> None:
    """out = max(x, 0), any shape."""
    _elementwise("relu_forward", x, out)


def relu_backward(dout, out, dx) -> None:
    _elementwise("relu_backward", dout, out, dx)


def sigmoid_forward(x, out) -> None:
    """out = 1 / (1 + exp(-x)), any shape."""
    _elementwise("sigmoid_forward", x, out)


def sigmoid_backward(dout, out, dx) -> None:
    _elementwise("sigmoid_backward", dout, out, dx)


def softmax_forward(x, out) -> None:
    """x (N, L) -> out (N, L), softmax of each row."""
    _elementwise("softmax_forward", x, out)


def softmax_backward(dout, out, dx) -> None:
    _elementwise("softmax_backward", dout, out, dx)


# ---- losses -------------------------------------------------------------------------------------
def softmax_cross_entropy(logits, labels, dlogits, stats) -> None:
    """logits (N, L), labels (N,) int32 -> dlogits (N, L), stats (2,)."""
    op = "softmax_cross_entropy"
    n, _ = _rank(op, "logits", logits, 2)
    _same(op, "logits", logits, dlogits=dlogits)
    _check(op, "labels", labels, (n,), _INT)
    _check(op, "stats", stats, (2,))
    get_backend().softmax_cross_entropy(logits, labels, dlogits, stats)


def mse_loss(pred, target, dpred, stats) -> None:
    """pred, target (N, L) -> dpred (N, L), stats (2,)."""
    op = "mse_loss"
    _rank(op, "pred", pred, 2)
    _same(op, "pred", pred, target=target, dpred=dpred)
    _check(op, "stats", stats, (2,))
    get_backend().mse_loss(pred, target, dpred, stats)


# ---- dropout ------------------------------------------------------------------------------------
def dropout_forward(x, p, seed, out, mask) -> None:
    """x, out, mask of one shape; p in [0, 1)."""
    if not 0.0 <= p < 1.0:
        raise KernelArgumentError(f"dropout_forward: p must be in [0, 1), got {p}")
    _same("dropout_forward", "x", x, out=out, mask=mask)
    get_backend().dropout_forward(x, p, seed, out, mask)


def dropout_backward(dout, mask, dx) -> None:
    _same("dropout_backward", "dout", dout, mask=mask, dx=dx)
    get_backend().dropout_backward(dout, mask, dx)


# ---- optimizers ---------------------------------------------------------------------------------
def sgd_update(param, grad, velocity, lr, momentum) -> None:
    """param, grad, velocity of one shape, updated in place."""
    _same("sgd_update", "param", param, grad=grad, velocity=velocity)
    get_backend().sgd_update(param, grad, velocity, lr, momentum)


def adam_update(param, grad, m, v, lr, beta1, beta2, eps, step) -> None:
    """param, grad, m, v of one shape; step >= 1."""
    if step < 1:
        raise KernelArgumentError(f"adam_update: step must be >= 1, got {step}")
    _same("adam_update", "param", param, grad=grad, exp_avg=m, exp_avg_sq=v)
    get_backend().adam_update(param, grad, m, v, lr, beta1, beta2, eps, step)


def _lists(op, first_name, first, **others) -> None:
    """Lists of one length, their arrays pairwise of one shape (each checked as in the
    operation on one parameter)."""
    for name, values in others.items():
        if len(values) != len(first):
            raise KernelArgumentError(f"{op}: {len(first)} {first_name} but {len(values)} {name}")
    for i, reference in enumerate(first):
        _same(op, f"{first_name}[{i}]", reference,
              **{f"{name}[{i}]": values[i] for name, values in others.items()})


def sgd_update_many(params, grads, velocities, lr, momentum) -> None:
    """sgd_update on each (params[i], grads[i], velocities[i]): one call on a backend with
    contract.MULTI_TENSOR, else one per parameter."""
    _lists("sgd_update_many", "params", params, grads=grads, velocities=velocities)
    optional("sgd_update_many", params, grads, velocities, lr, momentum)


def adam_update_many(params, grads, ms, vs, lr, beta1, beta2, eps, step) -> None:
    """adam_update on each (params[i], grads[i], ms[i], vs[i]), as sgd_update_many."""
    if step < 1:
        raise KernelArgumentError(f"adam_update_many: step must be >= 1, got {step}")
    _lists("adam_update_many", "params", params, grads=grads, exp_avgs=ms, exp_avg_sqs=vs)
    optional("adam_update_many", params, grads, ms, vs, lr, beta1, beta2, eps, step)


def adadelta_update(param, grad, square_avg, acc_delta, lr, rho, eps) -> None:
    _same("adadelta_update", "param", param, grad=grad, square_avg=square_avg, acc_delta=acc_delta)
    get_backend().adadelta_update(param, grad, square_avg, acc_delta, lr, rho, eps)


# ---- primitives ---------------------------------------------------------------------------------
def axpby(a, x, b, y, out) -> None:
    """x, y, out of one shape: out = a*x + b*y (out may be x or y)."""
    _same("axpby", "x", x, y=y, out=out)
    get_backend().axpby(float(a), x, float(b), y, out)


def multiply(x, y, out) -> None:
    """x, y, out of one shape: out = x * y (out may be x or y)."""
    _same("multiply", "x", x, y=y, out=out)
    get_backend().multiply(x, y, out)


def rsqrt(x, eps, out) -> None:
    """x, out of one shape: out = 1 / sqrt(x + eps)."""
    _same("rsqrt", "x", x, out=out)
    get_backend().rsqrt(x, float(eps), out)


def _channels(op: str, x) -> int:
    """C of x (N, C, H, W) or (N, C), checked; a per-channel operation needs N*H*W >= 1."""
    name = "dout" if op.endswith("backward") else "x"
    if x is None or len(x.shape) not in (2, 4):
        got = "None" if x is None else f"shape {tuple(x.shape)}"
        raise KernelArgumentError(f"{op}: {name} must be (N, C, H, W) or (N, C), got {got}")
    _check(op, name, x, x.shape)
    if x.size == 0:
        raise KernelArgumentError(f"{op}: {name} {tuple(x.shape)} is empty; every channel needs a value")
    return int(x.shape[1])


def channel_sum(x, out) -> None:
    """x (N, C, H, W) or (N, C) -> out (C,), the sum over every axis but 1."""
    _check("channel_sum", "out", out, (_channels("channel_sum", x),))
    get_backend().channel_sum(x, out)


def channel_mean(x, out) -> None:
    """x (N, C, H, W) or (N, C) -> out (C,), the mean over every axis but 1."""
    _check("channel_mean", "out", out, (_channels("channel_mean", x),))
    get_backend().channel_mean(x, out)


def channel_affine(x, scale, shift, out) -> None:
    """x, out (N, C, H, W) or (N, C); scale, shift (C,) -> out = x * scale[c] + shift[c]."""
    channels = _channels("channel_affine", x)
    _same("channel_affine", "x", x, out=out)
    _check("channel_affine", "scale", scale, (channels,))
    _check("channel_affine", "shift", shift, (channels,))
    get_backend().channel_affine(x, scale, shift, out)


# ---- the layers past the tutorials (optional: contract.LAYER_OPERATIONS) ----------------------
def _scalar(op: str, name: str, value, positive: bool = False) -> float:
    """A real number (not a bool), > 0 when ``positive``; a KernelArgumentError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) or \
            not np.isfinite(value) or (positive and value <= 0):
        raise KernelArgumentError(f"{op}: {name} must be a finite{' positive' if positive else ''} "
                                  f"number, got {value!r}")
    return float(value)


def tanh_forward(x, out) -> None:
    """out = tanh(x), any shape."""
    _same("tanh_forward", "x", x, out=out)
    optional("tanh_forward", x, out)


def tanh_backward(dout, out, dx) -> None:
    """dout, out (the forward output), dx of one shape."""
    _same("tanh_backward", "dout", dout, out=out, dx=dx)
    optional("tanh_backward", dout, out, dx)


def leaky_relu_forward(x, negative_slope, out) -> None:
    """out = x where x > 0 else negative_slope * x, any shape."""
    slope = _scalar("leaky_relu_forward", "negative_slope", negative_slope)
    _same("leaky_relu_forward", "x", x, out=out)
    optional("leaky_relu_forward", x, slope, out)


def leaky_relu_backward(dout, x, negative_slope, dx) -> None:
    """dout, x (the forward input), dx of one shape."""
    slope = _scalar("leaky_relu_backward", "negative_slope", negative_slope)
    _same("leaky_relu_backward", "dout", dout, x=x, dx=dx)
    optional("leaky_relu_backward", dout, x, slope, dx)


def elu_forward(x, alpha, out) -> None:
    """out = x where x > 0 else alpha * (exp(x) - 1), any shape."""
    alpha = _scalar("elu_forward", "alpha", alpha)
    _same("elu_forward", "x", x, out=out)
    optional("elu_forward", x, alpha, out)


def elu_backward(dout, x, alpha, dx) -> None:
    """dout, x (the forward input), dx of one shape."""
    alpha = _scalar("elu_backward", "alpha", alpha)
    _same("elu_backward", "dout", dout, x=x, dx=dx)
    optional("elu_backward", dout, x, alpha, dx)


def gelu_forward(x, approximate, out) -> None:
    """out = x * Phi(x) (exact erf form), or PyTorch's tanh form when ``approximate``."""
    _same("gelu_forward", "x", x, out=out)
    optional("gelu_forward", x, bool(approximate), out)


def gelu_backward(dout, x, approximate, dx) -> None:
    """dout, x (the forward input), dx of one shape."""
    _same("gelu_backward", "dout", dout, x=x, dx=dx)
    optional("gelu_backward", dout, x, bool(approximate), dx)


def global_avgpool2d_forward(x, out) -> None:
    """x (N, C, H, W) -> out (N, C), the mean of each plane."""
    op = "global_avgpool2d_forward"
    n, c, _, _ = _rank(op, "x", x, 4)
    _check(op, "x", x, x.shape)
    _check(op, "out", out, (n, c))
    optional(op, x, out)


def global_avgpool2d_backward(dout, dx) -> None:
    """dout (N, C) -> dx (N, C, H, W)."""
    op = "global_avgpool2d_backward"
    n, c, _, _ = _rank(op, "dx", dx, 4)
    _check(op, "dx", dx, dx.shape)
    _check(op, "dout", dout, (n, c))
    optional(op, dout, dx)


def _pool_padding(op, kernel, padding) -> None:
    if isinstance(padding, bool) or int(padding) != padding or not 0 <= padding <= kernel // 2:
        raise KernelArgumentError(f"{op}: padding must be a whole number in [0, kernel // 2] = "
                                  f"[0, {kernel // 2}], got {padding}")


def padded_maxpool2d_forward(x, kernel, stride, padding, out, argmax) -> None:
    """x (N, C, H, W) padded with -inf -> out, argmax (N, C, OH, OW); argmax indexes the
    unpadded plane (maxpool2d_backward takes it)."""
    op = "padded_maxpool2d_forward"
    _pool_padding(op, kernel, padding)
    pooled = _image_side(op, "x", x, kernel, kernel, stride, padding)
    _check(op, "out", out, pooled)
    _check(op, "argmax", argmax, pooled, _INT)
    optional(op, x, kernel, stride, padding, out, argmax)


def padded_avgpool2d_forward(x, kernel, stride, padding, out) -> None:
    """x (N, C, H, W) padded with zeros -> out (N, C, OH, OW), window sums / kernel**2."""
    op = "padded_avgpool2d_forward"
    _pool_padding(op, kernel, padding)
    _check(op, "out", out, _image_side(op, "x", x, kernel, kernel, stride, padding))
    optional(op, x, kernel, stride, padding, out)


def padded_avgpool2d_backward(dout, kernel, stride, padding, dx) -> None:
    """dout (N, C, OH, OW) -> dx (N, C, H, W)."""
    op = "padded_avgpool2d_backward"
    _pool_padding(op, kernel, padding)
    _check(op, "dout", dout, _image_side(op, "dx", dx, kernel, kernel, stride, padding))
    optional(op, dout, kernel, stride, padding, dx)


def _channel_planes(op, name, array):
    """(N, C, *) backend array -> (N, C, S) view, the kernels' layout for Dropout2d."""
    if array is None or len(array.shape) < 2:
        raise KernelArgumentError(f"{op}: {name} must be (N, C, ...), got "
                                  f"{None if array is None else tuple(array.shape)}")
    _check(op, name, array, array.shape)
    n, c = array.shape[:2]
    return array.reshape(n, c, int(np.prod(array.shape[2:], dtype=np.int64)))


def dropout2d_forward(x, p, seed, out, mask) -> None:
    """x, out (N, C, *) -> whole (n, c) channels zeroed with probability p; mask (N, C)."""
    op = "dropout2d_forward"
    if not 0.0 <= p < 1.0:
        raise KernelArgumentError(f"{op}: p must be in [0, 1), got {p}")
    _check(op, "out", out, x.shape)
    planes = _channel_planes(op, "x", x)
    _check(op, "mask", mask, planes.shape[:2])
    optional(op, planes, p, seed, _channel_planes(op, "out", out), mask)


def dropout2d_backward(dout, mask, dx) -> None:
    """dout, dx (N, C, *); mask (N, C) -> dx = dout * mask per channel."""
    op = "dropout2d_backward"
    _check(op, "dx", dx, dout.shape)
    planes = _channel_planes(op, "dout", dout)
    _check(op, "mask", mask, planes.shape[:2])
    optional(op, planes, mask, _channel_planes(op, "dx", dx))


# ---- training operations (contract.TRAINING_OPERATIONS) -----------------------------------------
def _weighted_loss(op, pred, target, weights, grad, stats, target_dtype=None) -> None:
    n, _ = _rank(op, "pred", pred, 2)
    _check(op, "pred", pred, pred.shape)
    if target_dtype is None:
        _check(op, "target", target, pred.shape)
    else:
        _check(op, "labels", target, (n,), target_dtype)
    _check(op, "weights", weights, (n,), optional=True)
    _check(op, "grad", grad, pred.shape)
    _check(op, "stats", stats, (2,))
    optional(op, pred, target, weights, grad, stats)


def softmax_cross_entropy_soft(logits, targets, weights, dlogits, stats) -> None:
    """logits, targets (N, L), weights (N,) or None -> dlogits (N, L), stats (2,)."""
    _weighted_loss("softmax_cross_entropy_soft", logits, targets, weights, dlogits, stats)


def mse_loss_weighted(pred, target, weights, dpred, stats) -> None:
    """pred, target (N, L), weights (N,) or None -> dpred (N, L), stats (2,)."""
    _weighted_loss("mse_loss_weighted", pred, target, weights, dpred, stats)


def binary_cross_entropy(probs, targets, weights, dprobs, stats) -> None:
    """probs, targets (N, L) in [0, 1], weights (N,) or None -> dprobs (N, L), stats (2,)."""
    _weighted_loss("binary_cross_entropy", probs, targets, weights, dprobs, stats)


def binary_cross_entropy_with_logits(logits, targets, weights, dlogits, stats) -> None:
    """logits, targets (N, L), weights (N,) or None -> dlogits (N, L), stats (2,)."""
    _weighted_loss("binary_cross_entropy_with_logits", logits, targets, weights, dlogits, stats)


def nll_loss(logprobs, labels, weights, dlogprobs, stats) -> None:
    """logprobs (N, L), labels (N,) int32, weights (N,) or None -> dlogprobs (N, L), stats (2,)."""
    _weighted_loss("nll_loss", logprobs, labels, weights, dlogprobs, stats, _INT)


def log_softmax_forward(x, out) -> None:
    """x (N, L) -> out (N, L), log-softmax of each row."""
    _rank("log_softmax_forward", "x", x, 2)
    _same("log_softmax_forward", "x", x, out=out)
    optional("log_softmax_forward", x, out)


def log_softmax_backward(dout, out, dx) -> None:
    """dout, out (N, L) (out: the forward's output) -> dx (N, L)."""
    _rank("log_softmax_backward", "dout", dout, 2)
    _same("log_softmax_backward", "dout", dout, out=out, dx=dx)
    optional("log_softmax_backward", dout, out, dx)


def rmsprop_update(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, eps,
                   momentum) -> None:
    """param, grad, square_avg of one shape; grad_avg (centered) and momentum_buffer of
    that shape or None; updated in place."""
    op = "rmsprop_update"
    _same(op, "param", param, grad=grad, square_avg=square_avg)
    _check(op, "grad_avg", grad_avg, param.shape, optional=True)
    _check(op, "momentum_buffer", momentum_buffer, param.shape, optional=True)
    optional(op, param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, eps, momentum)


def nesterov_update_many(params, grads, velocities, lr, momentum) -> None:
    """SGD with Nesterov momentum on each (params[i], grads[i], velocities[i]), in place."""
    _lists("nesterov_update_many", "params", params, grads=grads, velocities=velocities)
    optional("nesterov_update_many", params, grads, velocities, lr, momentum)


def _arrays(op, arrays) -> None:
    for i, array in enumerate(arrays):
        _check(op, f"arrays[{i}]", array, array.shape)


def sum_of_squares_many(arrays, out) -> None:
    """T arrays of any shapes -> out (T,): each one's sum of squares."""
    _arrays("sum_of_squares_many", arrays)
    _check("sum_of_squares_many", "out", out, (len(arrays),))
    optional("sum_of_squares_many", arrays, out)


def scale_many(arrays, factor) -> None:
    """Every array *= factor, in place."""
    _arrays("scale_many", arrays)
    optional("scale_many", arrays, float(factor))


def clip_many(arrays, low, high) -> None:
    """Every array clamped to [low, high], in place."""
    if not low <= high:
        raise KernelArgumentError(f"clip_many: low {low} is above high {high}")
    _arrays("clip_many", arrays)
    optional("clip_many", arrays, float(low), float(high))
