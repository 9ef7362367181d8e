"""Kernel benchmarks of the layers past the tutorials (contract.LAYER_OPERATIONS): Tanh,
LeakyReLU, ELU, GELU, global average pooling, padded max and average pooling,
Dropout2d, BatchNorm (training and inference) and LogSoftmax, each beside its
torch.nn.functional twin, at realistic shapes (a 32x28x28 feature map; BatchNorm also
on a deeper 64x7x7 one). They run under the name "layers" in ``fastcnn bench --full``
(and when no --models are named); ``fastcnn bench --models layers`` runs only them."""

from __future__ import annotations

import numpy as np

from .. import compose
from ..kernels import numpy_backend as reference_backend
from ..kernels.contract import conv_output_size
from .kernels import _Kernel, _autograd_run, _host, _normal, _tensor, _torch, _torch_unary


class Pointwise(_Kernel):
    """<op>_forward / <op>_backward over an (N, C, H, W) feature map."""

    def __init__(self, op, args, reads, c, h, w, label=None):
        self.op, self.args, self.reads = op, tuple(args), reads  # reads: "x" or "out"
        self.shape = (c, h, w)
        self.label = label or op

    def describe(self):
        return f"{self.label} on {'x'.join(map(str, self.shape))}"

    def inputs(self, n, direction, rng):
        x = _normal(rng, (n,) + self.shape, 2.0)
        if direction == "forward":
            return {"x": x}
        out = np.empty_like(x)
        getattr(reference_backend, f"{self.op}_forward")(x, *self.args, out)
        return {"dout": _normal(rng, x.shape), "x": x, "out": out}

    def outputs(self, n, direction):
        return {"out" if direction == "forward" else "dx": ((n,) + self.shape, np.float32)}

    def compared(self, direction):
        return ("out",) if direction == "forward" else ("dx",)

    def call(self, module, direction, a):
        if direction == "forward":
            getattr(module, f"{self.op}_forward")(a["x"], *self.args, a["out"])
        else:
            getattr(module, f"{self.op}_backward")(a["dout"], a[self.reads], *self.args, a["dx"])

    def _torch_op(self, x):
        F = _torch().nn.functional
        if self.op == "tanh":
            return _torch().tanh(x)
        if self.op == "leaky_relu":
            return F.leaky_relu(x, self.args[0])
        if self.op == "elu":
            return F.elu(x, self.args[0])
        return F.gelu(x, approximate="tanh" if self.args[0] else "none")

    def torch(self, host, direction):
        return _torch_unary(self._torch_op, host, direction)


class GlobalAvgPool2d(_Kernel):
    """global_avgpool2d_forward / _backward: (N, C, H, W) -> (N, C)."""

    def __init__(self, c, h, w):
        self.shape = (c, h, w)

    def describe(self):
        return f"global average pool on {'x'.join(map(str, self.shape))}"

    def inputs(self, n, direction, rng):
        if direction == "forward":
            return {"x": _normal(rng, (n,) + self.shape)}
        return {"dout": _normal(rng, (n, self.shape[0])), "x": _normal(rng, (n,) + self.shape)}

    def outputs(self, n, direction):
        if direction == "forward":
            return {"out": ((n, self.shape[0]), np.float32)}
        return {"dx": ((n,) + self.shape, np.float32)}

    def compared(self, direction):
        return ("out",) if direction == "forward" else ("dx",)

    def call(self, module, direction, a):
        if direction == "forward":
            module.global_avgpool2d_forward(a["x"], a["out"])
        else:
            module.global_avgpool2d_backward(a["dout"], a["dx"])

    def torch(self, host, direction):
        F = _torch().nn.functional
        x = _tensor(host["x"], direction == "backward")
        if direction == "backward":
            dout = _tensor(host["dout"])
            return _autograd_run(F.adaptive_avg_pool2d(x, 1).flatten(1), {"dx": x}, lambda: dout)
        result = {}

        def run():
            result["out"] = F.adaptive_avg_pool2d(x, 1).flatten(1)

        return run, lambda: {"out": _host(result["out"])}


class PaddedPool2d(_Kernel):
    """padded_maxpool2d_forward (+ maxpool2d_backward) or padded_avgpool2d_forward/_backward."""

    def __init__(self, kind, c, h, w, k=3, stride=2, padding=1):
        self.kind, self.shape, self.k, self.stride, self.padding = kind, (c, h, w), k, stride, padding
        self.oh = conv_output_size(h, k, stride, padding)
        self.ow = conv_output_size(w, k, stride, padding)

    def describe(self):
        return (f"{self.kind} {self.k} stride {self.stride} pad {self.padding} on "
                f"{'x'.join(map(str, self.shape))}")

    def _shapes(self, n):
        return (n,) + self.shape, (n, self.shape[0], self.oh, self.ow)

    def _window(self):
        return self.k, self.stride, self.padding

    def inputs(self, n, direction, rng):
        x_shape, out_shape = self._shapes(n)
        x = _normal(rng, x_shape)
        if direction == "forward":
            return {"x": x}
        arrays = {"dout": _normal(rng, out_shape), "x": x}
        if self.kind == "maxpool":
            out, argmax = np.empty(out_shape, np.float32), np.empty(out_shape, np.int32)
            reference_backend.padded_maxpool2d_forward(x, *self._window(), out, argmax)
            arrays["argmax"] = argmax
        return arrays

    def outputs(self, n, direction):
        x_shape, out_shape = self._shapes(n)
        if direction == "backward":
            return {"dx": (x_shape, np.float32)}
        outputs = {"out": (out_shape, np.float32)}
        if self.kind == "maxpool":
            outputs["argmax"] = (out_shape, np.int32)
        return outputs

    def compared(self, direction):
        if direction == "backward":
            return ("dx",)
        return ("out", "argmax") if self.kind == "maxpool" else ("out",)

    def call(self, module, direction, a):
        if self.kind == "maxpool":
            if direction == "forward":
                module.padded_maxpool2d_forward(a["x"], *self._window(), a["out"], a["argmax"])
            else:
                module.maxpool2d_backward(a["dout"], a["argmax"], a["dx"])
        elif direction == "forward":
            module.padded_avgpool2d_forward(a["x"], *self._window(), a["out"])
        else:
            module.padded_avgpool2d_backward(a["dout"], *self._window(), a["dx"])

    def _torch_pool(self, x):
        F = _torch().nn.functional
        if self.kind == "maxpool":
            return F.max_pool2d(x, *self._window(), return_indices=not x.requires_grad)
        return F.avg_pool2d(x, *self._window())

    def torch(self, host, direction):
        x = _tensor(host["x"], direction == "backward")
        if direction == "backward":
            dout = _tensor(host["dout"])
            return _autograd_run(self._torch_pool(x), {"dx": x}, lambda: dout)
        result = {}

        def run():
            result["out"] = self._torch_pool(x)

        def results():
            if self.kind == "maxpool":
                values, indices = result["out"]
                return {"out": _host(values), "argmax": indices.numpy().astype(np.int32)}
            return {"out": _host(result["out"])}

        return run, results


class Dropout2d(_Kernel):
    """dropout2d_forward / _backward at p = 0.2. PyTorch draws its own masks, so its
    results are not compared (the backends' are: the contract fixes the mask)."""

    p, seed = 0.2, 2024

    def __init__(self, c, h, w):
        self.shape = (c, h, w)

    def describe(self):
        return f"dropout2d p {self.p} on {'x'.join(map(str, self.shape))}"

    def _planes(self, n):
        return (n, self.shape[0], self.shape[1] * self.shape[2])

    def inputs(self, n, direction, rng):
        x = _normal(rng, self._planes(n))
        if direction == "forward":
            return {"x": x}
        out, mask = np.empty_like(x), np.empty(x.shape[:2], np.float32)
        reference_backend.dropout2d_forward(x, self.p, self.seed, out, mask)
        return {"dout": _normal(rng, x.shape), "mask": mask, "x": x}

    def outputs(self, n, direction):
        if direction == "forward":
            return {"out": (self._planes(n), np.float32), "mask": (self._planes(n)[:2], np.float32)}
        return {"dx": (self._planes(n), np.float32)}

    def compared(self, direction):
        return ("out", "mask") if direction == "forward" else ("dx",)

    def call(self, module, direction, a):
        if direction == "forward":
            module.dropout2d_forward(a["x"], self.p, self.seed, a["out"], a["mask"])
        else:
            module.dropout2d_backward(a["dout"], a["mask"], a["dx"])

    def torch(self, host, direction):
        F = _torch().nn.functional
        x = _tensor(host["x"].reshape((-1,) + self.shape), direction == "backward")
        if direction == "backward":
            dout = _tensor(host["dout"].reshape(x.shape))
            run, _ = _autograd_run(F.dropout2d(x, self.p, training=True), {"dx": x}, lambda: dout)
            return run, dict

        def run():
            F.dropout2d(x, self.p, training=True)

        return run, dict


def _optional(module, op, *args):
    """Optional operation ``op`` on ``module``: its kernel, else the reference composition
    (NumPy's, and log_softmax on a backend without one)."""
    kernel = getattr(module, op, None)
    if kernel is not None:
        kernel(*args)
    else:
        getattr(compose, op)(module, *args)


class BatchNorm(_Kernel):
    """batchnorm_forward / _backward over (N, C, H, W) at momentum 0.1, eps 1e-5: training
    (batch statistics, running statistics updated) or inference (running statistics)."""

    momentum, eps = 0.1, 1e-5

    def __init__(self, training, c, h, w):
        self.training, self.shape = training, (c, h, w)
        self.directions = ("forward", "backward") if training else ("forward",)

    def describe(self):
        mode = "training" if self.training else "inference"
        return f"batch norm ({mode}) on {'x'.join(map(str, self.shape))}"

    def _forward_inputs(self, n, rng):
        c = self.shape[0]
        return {"x": _normal(rng, (n,) + self.shape, 2.0) + 0.5,
                "weight": 1.0 + _normal(rng, (c,), 0.1), "bias": _normal(rng, (c,), 0.1),
                "running_mean": _normal(rng, (c,), 0.1),
                "running_var": (1.0 + np.abs(_normal(rng, (c,), 0.2))).astype(np.float32)}

    def inputs(self, n, direction, rng):
        arrays = self._forward_inputs(n, rng)
        if direction == "forward":
            return arrays
        c = self.shape[0]
        xhat, invstd = np.empty_like(arrays["x"]), np.empty(c, np.float32)
        _optional(reference_backend, "batchnorm_forward", arrays["x"], arrays["weight"],
                  arrays["bias"], arrays["running_mean"].copy(), arrays["running_var"].copy(),
                  self.momentum, self.eps, self.training, np.empty_like(xhat), xhat, invstd)
        return {"dout": _normal(rng, xhat.shape), "xhat": xhat, "weight": arrays["weight"],
                "invstd": invstd, "x": arrays["x"], "bias": arrays["bias"]}

    def outputs(self, n, direction):
        x, c = ((n,) + self.shape, np.float32), (self.shape[:1], np.float32)
        if direction == "forward" and not self.training:  # predict's pass: no xhat
            return {"out": x, "invstd": c}
        if direction == "forward":
            return {"out": x, "xhat": x, "invstd": c}
        return {"dx": x, "dweight": c, "dbias": c}

    def compared(self, direction):
        if direction == "backward":
            return ("dx", "dweight", "dbias")
        return ("out", "running_mean", "running_var") if self.training else ("out",)

    def restore(self, direction):
        # the running statistics drift a little every training call; keep them the inputs'
        return ("running_mean", "running_var") if direction == "forward" and self.training else ()

    def call(self, module, direction, a):
        if direction == "forward":
            _optional(module, "batchnorm_forward", a["x"], a["weight"], a["bias"],
                      a["running_mean"], a["running_var"], self.momentum, self.eps,
                      self.training, a["out"], a.get("xhat"), a["invstd"])
        else:
            _optional(module, "batchnorm_backward", a["dout"], a["xhat"], a["weight"],
                      a["invstd"], self.training, a["dx"], a["dweight"], a["dbias"])

    def torch(self, host, direction):
        F = _torch().nn.functional
        grad = direction == "backward"
        x, weight, bias = (_tensor(host[name], grad) for name in ("x", "weight", "bias"))
        if grad:
            dout = _tensor(host["dout"])
            y = F.batch_norm(x, None, None, weight, bias, True, self.momentum, self.eps)
            return _autograd_run(y, {"dx": x, "dweight": weight, "dbias": bias}, lambda: dout)
        mean, var = _tensor(host["running_mean"]), _tensor(host["running_var"])
        saved_mean, saved_var = mean.clone(), var.clone()
        result = {}

        def run():
            if self.training:  # as restore() does for the backends
                mean.copy_(saved_mean)
                var.copy_(saved_var)
            result["out"] = F.batch_norm(x, mean, var, weight, bias, self.training,
                                         self.momentum, self.eps)

        def results():
            values = {"out": _host(result["out"])}
            if self.training:
                values.update(running_mean=_host(mean), running_var=_host(var))
            return values

        return run, results


class LogSoftmax(_Kernel):
    """log_softmax_forward / _backward over (N, L) rows."""

    def __init__(self, length):
        self.length = length

    def describe(self):
        return f"log softmax over {self.length} classes"

    def inputs(self, n, direction, rng):
        x = _normal(rng, (n, self.length), 3.0)
        if direction == "forward":
            return {"x": x}
        out = np.empty_like(x)
        reference_backend.log_softmax_forward(x, out)
        return {"dout": _normal(rng, x.shape), "out": out, "x": x}

    def outputs(self, n, direction):
        return {"out" if direction == "forward" else "dx": ((n, self.length), np.float32)}

    def compared(self, direction):
        return ("out",) if direction == "forward" else ("dx",)

    def call(self, module, direction, a):
        if direction == "forward":
            _optional(module, "log_softmax_forward", a["x"], a["out"])
        else:
            _optional(module, "log_softmax_backward", a["dout"], a["out"], a["dx"])

    def torch(self, host, direction):
        F = _torch().nn.functional
        x = _tensor(host["x"], direction == "backward")
        if direction == "backward":
            dout = _tensor(host["dout"])
            return _autograd_run(F.log_softmax(x, 1), {"dx": x}, lambda: dout)
        result = {}

        def run():
            result["out"] = F.log_softmax(x, 1)

        return run, lambda: {"out": _host(result["out"])}


_MAP = (32, 28, 28)
"""A realistic feature map: 32 channels of 28x28 (a first convolution on MNIST)."""

LAYERS = (
    ("tanh", Pointwise("tanh", (), "out", *_MAP)),
    ("leaky_relu", Pointwise("leaky_relu", (0.01,), "x", *_MAP)),
    ("elu", Pointwise("elu", (1.0,), "x", *_MAP)),
    ("gelu", Pointwise("gelu", (False,), "x", *_MAP)),
    ("gelu_tanh", Pointwise("gelu", (True,), "x", *_MAP, label="gelu (tanh form)")),
    ("global_avgpool", GlobalAvgPool2d(*_MAP)),
    ("padded_maxpool", PaddedPool2d("maxpool", *_MAP)),
    ("padded_avgpool", PaddedPool2d("avgpool", *_MAP, stride=1)),
    ("dropout2d", Dropout2d(*_MAP)),
    ("batchnorm", BatchNorm(True, *_MAP)),
    ("batchnorm_deep", BatchNorm(True, 64, 7, 7)),
    ("batchnorm_inference", BatchNorm(False, *_MAP)),
    ("log_softmax", LogSoftmax(10)),
)
"""(layer name, kernel) of the "layers" benchmarks."""
