"""Backward kernels are the derivatives of their forward kernels, and the reference is PyTorch's maths.

In float64, for the NumPy reference and the naive backend: every backward
kernel against central finite differences (eps 1e-6) of a random projection
``sum(forward(...) * R)`` of its forward kernel, col2im as the adjoint of
im2col, and one optimizer step against the update formulas of PyTorch's
documentation. When PyTorch is installed, the reference also matches
``torch.nn.functional`` (forward values and autograd gradients) and
``torch.optim`` over three steps.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import fastcnn
from fastcnn.kernels.contract import ACTIVATIONS, conv_output_size

GRADIENT_BACKENDS = ["numpy", "naive"]
EPS = 1e-6
MAX_RELATIVE_ERROR = 1e-6
ENTRIES_CHECKED = 30  # finite differences on a random subset: the naive backend is slow


@pytest.fixture(params=GRADIENT_BACKENDS)
def kernels(request):
    with fastcnn.use_backend(request.param):
        return fastcnn.get_backend()


@pytest.fixture
def rng(request):
    """A generator seeded by the test's name: the same numbers on every run."""
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))


def normal(rng, *shape):
    return rng.standard_normal(shape)


def numerical_gradient(loss, array, entries):
    """Central differences of the scalar ``loss()`` w.r.t. array.flat[entries] (array restored)."""
    flat = array.reshape(-1)
    gradient = []
    for entry in entries:
        original = flat[entry]
        flat[entry] = original + EPS
        above = loss()
        flat[entry] = original - EPS
        below = loss()
        flat[entry] = original
        gradient.append((above - below) / (2 * EPS))
    return np.array(gradient)


def assert_gradient(loss, array, analytic, rng, what):
    """``analytic`` (the shape of ``array``) is d loss / d array, to MAX_RELATIVE_ERROR."""
    assert analytic.shape == array.shape, what
    entries = rng.choice(array.size, min(array.size, ENTRIES_CHECKED), replace=False)
    numeric = numerical_gradient(loss, array, entries)
    checked = analytic.reshape(-1)[entries]
    error = np.linalg.norm(checked - numeric) / max(np.linalg.norm(numeric), np.linalg.norm(checked),
                                                    1e-12)
    assert error < MAX_RELATIVE_ERROR, f"{what}: relative error {error:.2e}"


# ---- convolution ---------------------------------------------------------------------------
CONV_GEOMETRIES = [  # (kernel, stride, padding, activation, bias)
    (3, 1, 1, None, True),
    (3, 2, 1, "relu", True),
    (2, 1, 0, "sigmoid", True),
    (3, 2, 2, "sigmoid", False),
    (1, 1, 0, "relu", True),
    (5, 1, 2, None, True),
]


def _conv_ids(geometry):
    kernel, stride, padding, activation, bias = geometry
    return f"k{kernel}-s{stride}-p{padding}-{activation}" + ("" if bias else "-no_bias")


def run_conv2d(kernels, x, weight, bias, stride, padding, activation):
    """Forward convolution in float64; returns (out, cols)."""
    batch, channels, height, width = x.shape
    out_channels, _, kernel, _ = weight.shape
    out_h = conv_output_size(height, kernel, stride, padding)
    out_w = conv_output_size(width, kernel, stride, padding)
    cols = np.empty((batch, channels * kernel * kernel, out_h * out_w))
    out = np.empty((batch, out_channels, out_h, out_w))
    kernels.conv2d_forward(x, weight, bias, stride, padding, activation, cols, out)
    return out, cols


@pytest.mark.parametrize("geometry", CONV_GEOMETRIES, ids=_conv_ids)
def test_conv2d_backward_is_the_gradient_of_conv2d_forward(kernels, rng, geometry):
    kernel, stride, padding, activation, with_bias = geometry
    x = normal(rng, 2, 2, 6, 5)
    weight = normal(rng, 3, 2, kernel, kernel)
    bias = normal(rng, 3) if with_bias else None
    out, cols = run_conv2d(kernels, x, weight, bias, stride, padding, activation)
    projection = normal(rng, *out.shape)

    def loss():
        return float((run_conv2d(kernels, x, weight, bias, stride, padding, activation)[0]
                      * projection).sum())

    dx, dweight, dcols = np.empty_like(x), np.empty_like(weight), np.empty_like(cols)
    dbias = np.empty_like(bias) if with_bias else None
    kernels.conv2d_backward(projection.copy(), out, weight, cols, stride, padding, activation,
                            dx, dweight, dbias, dcols)
    assert_gradient(loss, x, dx, rng, "dx")
    assert_gradient(loss, weight, dweight, rng, "dweight")
    if with_bias:
        assert_gradient(loss, bias, dbias, rng, "dbias")


@pytest.mark.parametrize("geometry", [(3, 1, 1), (3, 2, 0), (2, 2, 1), (5, 1, 2), (4, 3, 2)],
                         ids=lambda g: "k{}-s{}-p{}".format(*g))
def test_col2im_is_the_adjoint_of_im2col(kernels, rng, geometry):
    """<im2col(x), y> == <x, col2im(y)> for every x, y."""
    kernel, stride, padding = geometry
    x = normal(rng, 2, 3, 7, 6)
    rows = 3 * kernel * kernel
    pixels = conv_output_size(7, kernel, stride, padding) * conv_output_size(6, kernel, stride, padding)
    cols, y = np.empty((2, rows, pixels)), normal(rng, 2, rows, pixels)
    kernels.im2col(x, kernel, kernel, stride, padding, cols)
    back = np.empty_like(x)
    kernels.col2im(y, kernel, kernel, stride, padding, back)
    np.testing.assert_allclose((cols * y).sum(), (x * back).sum(), rtol=1e-12)


# ---- pooling --------------------------------------------------------------------------------
POOL_GEOMETRIES = [(2, 2), (3, 2), (2, 1), (3, 3)]


def distinct_values(rng, *shape):
    """Values at least 0.01 apart: no ties, so a max never switches under a 1e-6 nudge."""
    return rng.permutation(np.prod(shape)).reshape(shape) * 0.01


def pool_output(x, kernel, stride):
    batch, channels, height, width = x.shape
    return np.empty((batch, channels, conv_output_size(height, kernel, stride, 0),
                     conv_output_size(width, kernel, stride, 0)))


@pytest.mark.parametrize("kernel, stride", POOL_GEOMETRIES)
def test_maxpool2d_backward_is_the_gradient_of_maxpool2d_forward(kernels, rng, kernel, stride):
    x = distinct_values(rng, 2, 2, 7, 6)
    out = pool_output(x, kernel, stride)
    argmax = np.empty(out.shape, np.int32)
    projection = normal(rng, *out.shape)

    def loss():
        kernels.maxpool2d_forward(x, kernel, stride, out, argmax)
        return float((out * projection).sum())

    loss()
    dx = np.empty_like(x)
    kernels.maxpool2d_backward(projection, argmax, dx)
    assert_gradient(loss, x, dx, rng, "dx")


@pytest.mark.parametrize("kernel, stride", POOL_GEOMETRIES)
def test_avgpool2d_backward_is_the_gradient_of_avgpool2d_forward(kernels, rng, kernel, stride):
    x = normal(rng, 2, 2, 7, 6)
    out = pool_output(x, kernel, stride)
    projection = normal(rng, *out.shape)

    def loss():
        kernels.avgpool2d_forward(x, kernel, stride, out)
        return float((out * projection).sum())

    dx = np.empty_like(x)
    kernels.avgpool2d_backward(projection, kernel, stride, dx)
    assert_gradient(loss, x, dx, rng, "dx")


# ---- dense -------------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no_bias"])
def test_dense_backward_is_the_gradient_of_dense_forward(kernels, rng, activation, with_bias):
    x, weight = normal(rng, 4, 6), normal(rng, 5, 6)
    bias = normal(rng, 5) if with_bias else None
    out = np.empty((4, 5))
    projection = normal(rng, 4, 5)

    def loss():
        kernels.dense_forward(x, weight, bias, activation, out)
        return float((out * projection).sum())

    loss()
    dx, dweight = np.empty_like(x), np.empty_like(weight)
    dbias = np.empty(5) if with_bias else None
    kernels.dense_backward(projection.copy(), out.copy(), x, weight, activation, dx, dweight, dbias)
    assert_gradient(loss, x, dx, rng, "dx")
    assert_gradient(loss, weight, dweight, rng, "dweight")
    if with_bias:
        assert_gradient(loss, bias, dbias, rng, "dbias")


# ---- element-wise and row-wise activations, dropout -----------------------------------------
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "softmax"])
def test_activation_backward_is_the_gradient_of_its_forward(kernels, rng, activation):
    forward = getattr(kernels, f"{activation}_forward")
    backward = getattr(kernels, f"{activation}_backward")
    x = normal(rng, 4, 7) * 3
    out = np.empty_like(x)
    projection = normal(rng, *x.shape)

    def loss():
        forward(x, out)
        return float((out * projection).sum())

    loss()
    dx = np.empty_like(x)
    backward(projection, out.copy(), dx)
    assert_gradient(loss, x, dx, rng, "dx")


@pytest.mark.parametrize("p", [0.0, 0.3, 0.5])
def test_dropout_backward_is_the_gradient_of_dropout_forward(kernels, rng, p):
    x = normal(rng, 3, 4, 5)
    out, mask = np.empty_like(x), np.empty_like(x)
    projection = normal(rng, *x.shape)

    def loss():
        kernels.dropout_forward(x, p, 1234, out, mask)
        return float((out * projection).sum())

    loss()
    dx = np.empty_like(x)
    kernels.dropout_backward(projection, mask, dx)
    assert_gradient(loss, x, dx, rng, "dx")


# ---- losses ------------------------------------------------------------------------------------
LOSS_TARGETS = {  # loss kernel -> its targets for 5 rows of 4 classes
    "softmax_cross_entropy": lambda rng: rng.integers(0, 4, 5).astype(np.int32),
    "mse_loss": lambda rng: normal(rng, 5, 4),
}


@pytest.mark.parametrize("loss_kernel", sorted(LOSS_TARGETS))
def test_loss_gradient_is_the_gradient_of_the_mean_loss(kernels, rng, loss_kernel):
    compute = getattr(kernels, loss_kernel)
    predictions, targets = normal(rng, 5, 4) * 2, LOSS_TARGETS[loss_kernel](rng)
    gradient, stats = np.empty_like(predictions), np.empty(2)

    def loss():
        compute(predictions, targets, np.empty_like(predictions), stats)
        return stats[0]

    compute(predictions, targets, gradient, stats)
    assert_gradient(loss, predictions, gradient, rng, f"{loss_kernel} gradient")


# ---- optimizers: one step against PyTorch's documented update rules ----------------------------
def test_sgd_update_follows_pytorch_momentum_rule(kernels, rng):
    param, grad, velocity = normal(rng, 6), normal(rng, 6), normal(rng, 6)
    lr, momentum = 0.1, 0.9
    expected_velocity = momentum * velocity + grad          # b_t = mu b_{t-1} + g_t
    expected_param = param - lr * expected_velocity          # theta_t = theta_{t-1} - gamma b_t
    kernels.sgd_update(param, grad, velocity, lr, momentum)
    np.testing.assert_allclose(velocity, expected_velocity, rtol=1e-12)
    np.testing.assert_allclose(param, expected_param, rtol=1e-12)


def test_adam_update_follows_pytorch_bias_corrected_rule(kernels, rng):
    param, grad = normal(rng, 6), normal(rng, 6)
    m, v = normal(rng, 6) * 0.1, np.abs(normal(rng, 6)) * 0.1
    lr, beta1, beta2, eps, step = 0.01, 0.9, 0.999, 1e-8, 3
    expected_m = beta1 * m + (1 - beta1) * grad
    expected_v = beta2 * v + (1 - beta2) * grad**2
    m_hat = expected_m / (1 - beta1**step)
    v_hat = expected_v / (1 - beta2**step)
    expected_param = param - lr * m_hat / (np.sqrt(v_hat) + eps)
    kernels.adam_update(param, grad, m, v, lr, beta1, beta2, eps, step)
    for got, want in [(m, expected_m), (v, expected_v), (param, expected_param)]:
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_adadelta_update_follows_pytorch_rule(kernels, rng):
    param, grad = normal(rng, 6), normal(rng, 6)
    square_avg, acc_delta = np.abs(normal(rng, 6)) * 0.1, np.abs(normal(rng, 6)) * 0.1
    lr, rho, eps = 1.0, 0.9, 1e-6
    expected_square_avg = rho * square_avg + (1 - rho) * grad**2
    delta = np.sqrt(acc_delta + eps) / np.sqrt(expected_square_avg + eps) * grad
    expected_acc_delta = rho * acc_delta + (1 - rho) * delta**2
    expected_param = param - lr * delta
    kernels.adadelta_update(param, grad, square_avg, acc_delta, lr, rho, eps)
    for got, want in [(square_avg, expected_square_avg), (acc_delta, expected_acc_delta),
                      (param, expected_param)]:
        np.testing.assert_allclose(got, want, rtol=1e-12)


# ---- the NumPy reference against PyTorch --------------------------------------------------------
@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="PyTorch is not installed: the cross-checks against "
                                               "torch.nn.functional and torch.optim need it")


@pytest.fixture
def reference():
    with fastcnn.use_backend("numpy"):
        return fastcnn.get_backend()


def torch_activation(torch, activation, z):
    if activation == "relu":
        return torch.relu(z)
    if activation == "sigmoid":
        return torch.sigmoid(z)
    return z


def autograd(torch, make_output, inputs, projection):
    """Forward ``make_output(*tensors)`` in float64 and the gradients of sum(output * projection)."""
    tensors = [torch.tensor(array, requires_grad=True) for array in inputs]
    output = make_output(*tensors)
    (output * torch.tensor(projection)).sum().backward()
    return output.detach().numpy(), [tensor.grad.numpy() for tensor in tensors]


@pytest.mark.torch
@pytest.mark.parametrize("geometry", CONV_GEOMETRIES, ids=_conv_ids)
def test_reference_conv2d_matches_torch(torch, reference, rng, geometry):
    kernel, stride, padding, activation, with_bias = geometry
    x, weight = normal(rng, 2, 3, 7, 6), normal(rng, 4, 3, kernel, kernel)
    bias = normal(rng, 4) if with_bias else None
    out, cols = run_conv2d(reference, x, weight, bias, stride, padding, activation)
    projection = normal(rng, *out.shape)
    inputs = [x, weight] + ([bias] if with_bias else [])

    def torch_conv(x, weight, bias=None):
        z = torch.nn.functional.conv2d(x, weight, bias, stride=stride, padding=padding)
        return torch_activation(torch, activation, z)

    expected_out, expected_grads = autograd(torch, torch_conv, inputs, projection)
    np.testing.assert_allclose(out, expected_out, rtol=1e-10, atol=1e-12)
    grads = [np.empty_like(x), np.empty_like(weight)] + ([np.empty(4)] if with_bias else [])
    reference.conv2d_backward(projection.copy(), out, weight, cols, stride, padding, activation,
                              grads[0], grads[1], grads[2] if with_bias else None, np.empty_like(cols))
    for got, want in zip(grads, expected_grads):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.torch
@pytest.mark.parametrize("kernel, stride", POOL_GEOMETRIES)
def test_reference_max_pool2d_matches_torch(torch, reference, rng, kernel, stride):
    x = distinct_values(rng, 2, 3, 7, 6)
    out = pool_output(x, kernel, stride)
    argmax = np.empty(out.shape, np.int32)
    reference.maxpool2d_forward(x, kernel, stride, out, argmax)
    expected, indices = torch.nn.functional.max_pool2d(torch.tensor(x), kernel, stride,
                                                       return_indices=True)
    np.testing.assert_array_equal(out, expected.numpy())
    np.testing.assert_array_equal(argmax, indices.numpy())  # the same flat y*W + x index
    projection = normal(rng, *out.shape)
    _, (expected_dx,) = autograd(torch, lambda t: torch.nn.functional.max_pool2d(t, kernel, stride),
                                 [x], projection)
    dx = np.empty_like(x)
    reference.maxpool2d_backward(projection, argmax, dx)
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-12)


@pytest.mark.torch
@pytest.mark.parametrize("kernel, stride", POOL_GEOMETRIES)
def test_reference_avg_pool2d_matches_torch(torch, reference, rng, kernel, stride):
    x = normal(rng, 2, 3, 7, 6)
    out = pool_output(x, kernel, stride)
    reference.avgpool2d_forward(x, kernel, stride, out)
    projection = normal(rng, *out.shape)
    expected, (expected_dx,) = autograd(
        torch, lambda t: torch.nn.functional.avg_pool2d(t, kernel, stride), [x], projection)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    dx = np.empty_like(x)
    reference.avgpool2d_backward(projection, kernel, stride, dx)
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-12)


@pytest.mark.torch
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_reference_dense_matches_torch_linear(torch, reference, rng, activation):
    x, weight, bias = normal(rng, 4, 6), normal(rng, 5, 6), normal(rng, 5)
    out = np.empty((4, 5))
    reference.dense_forward(x, weight, bias, activation, out)
    projection = normal(rng, 4, 5)
    expected, expected_grads = autograd(
        torch, lambda x, w, b: torch_activation(torch, activation, torch.nn.functional.linear(x, w, b)),
        [x, weight, bias], projection)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    grads = [np.empty_like(x), np.empty_like(weight), np.empty_like(bias)]
    reference.dense_backward(projection.copy(), out, x, weight, activation, *grads)
    for got, want in zip(grads, expected_grads):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.torch
def test_reference_softmax_matches_torch(torch, reference, rng):
    x = normal(rng, 5, 6) * 3
    out, dx = np.empty_like(x), np.empty_like(x)
    reference.softmax_forward(x, out)
    projection = normal(rng, 5, 6)
    expected, (expected_dx,) = autograd(torch, lambda t: torch.softmax(t, dim=1), [x], projection)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    reference.softmax_backward(projection, out, dx)
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-10, atol=1e-14)


@pytest.mark.torch
def test_reference_softmax_cross_entropy_matches_torch(torch, reference, rng):
    logits = normal(rng, 6, 5) * 2
    labels = rng.integers(0, 5, 6).astype(np.int32)
    dlogits, stats = np.empty_like(logits), np.empty(2)
    reference.softmax_cross_entropy(logits, labels, dlogits, stats)
    tensor = torch.tensor(logits, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(tensor, torch.tensor(labels, dtype=torch.long))
    loss.backward()
    np.testing.assert_allclose(stats[0], loss.item(), rtol=1e-12)
    np.testing.assert_allclose(dlogits, tensor.grad.numpy(), rtol=1e-10, atol=1e-14)
    assert stats[1] == np.count_nonzero(logits.argmax(axis=1) == labels)


@pytest.mark.torch
def test_reference_mse_loss_matches_torch(torch, reference, rng):
    pred, target = normal(rng, 6, 5), normal(rng, 6, 5)
    dpred, stats = np.empty_like(pred), np.empty(2)
    reference.mse_loss(pred, target, dpred, stats)
    tensor = torch.tensor(pred, requires_grad=True)
    loss = torch.nn.functional.mse_loss(tensor, torch.tensor(target))
    loss.backward()
    np.testing.assert_allclose(stats[0], loss.item(), rtol=1e-12)
    np.testing.assert_allclose(dpred, tensor.grad.numpy(), rtol=1e-12)


@pytest.mark.torch
@pytest.mark.parametrize("p", [0.3, 0.5])
def test_reference_dropout_scales_kept_elements_like_torch(torch, reference, rng, p):
    """Inverted dropout: kept elements are divided by 1 - p, as in torch (the masks differ)."""
    x = np.abs(normal(rng, 400)) + 1
    out, mask = np.empty_like(x), np.empty_like(x)
    reference.dropout_forward(x, p, 99, out, mask)
    expected = torch.nn.functional.dropout(torch.tensor(x), p, training=True).numpy()
    kept, torch_kept = out != 0, expected != 0
    np.testing.assert_allclose(out[kept], x[kept] / (1 - p), rtol=1e-12)
    np.testing.assert_allclose(expected[torch_kept], x[torch_kept] / (1 - p), rtol=1e-12)
    assert abs(kept.mean() - (1 - p)) < 0.1


OPTIMIZERS = {  # name -> (torch class name, its keyword arguments, our state names, our update)
    "sgd": ("SGD", dict(lr=0.1, momentum=0.9), ("velocity",),
            lambda k, p, g, s, step: k.sgd_update(p, g, *s, 0.1, 0.9)),
    "adam": ("Adam", dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8), ("m", "v"),
             lambda k, p, g, s, step: k.adam_update(p, g, *s, 0.01, 0.9, 0.999, 1e-8, step)),
    "adadelta": ("Adadelta", dict(lr=1.0, rho=0.9, eps=1e-6), ("square_avg", "acc_delta"),
                 lambda k, p, g, s, step: k.adadelta_update(p, g, *s, 1.0, 0.9, 1e-6)),
}


@pytest.mark.torch
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_reference_optimizer_matches_torch_optim_over_three_steps(torch, reference, rng, optimizer):
    torch_name, options, state_names, update = OPTIMIZERS[optimizer]
    param = normal(rng, 3, 4)
    state = [np.zeros_like(param) for _ in state_names]
    tensor = torch.nn.Parameter(torch.tensor(param.copy()))
    torch_optimizer = getattr(torch.optim, torch_name)([tensor], **options)
    for step in range(1, 4):
        grad = normal(rng, 3, 4)
        update(reference, param, grad, state, step)
        tensor.grad = torch.tensor(grad)
        torch_optimizer.step()
        np.testing.assert_allclose(param, tensor.detach().numpy(), rtol=1e-10, atol=1e-14,
                                   err_msg=f"{optimizer} step {step}")
