"""Kernel benchmarks of the layers past the tutorials (contract.LAYER_OPERATIONS): Tanh,
LeakyReLU, ELU, GELU, global average pooling, padded max and average pooling and
Dropout2d, each beside its torch.nn.functional twin, at a realistic shape (a 32x28x28
feature map). No zoo model uses them yet, so they run under the name "layers" in
``fastcnn bench --full`` (and when no --models are named)."""

from __future__ import annotations

import numpy as np

from ..kernels import numpy_backend as reference_backend
from ..kernels.contract import conv_output_size
from .kernels import _Kernel, _autograd_run, _host, _normal, _tensor, _torch


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
        x = _tensor(host["x"], direction == "backward")
        if direction == "backward":
            dout = _tensor(host["dout"])
            return _autograd_run(self._torch_op(x), {"dx": x}, lambda: dout)
        result = {}

        def run():
            result["out"] = self._torch_op(x)

        return run, lambda: {"out": _host(result["out"])}


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
)
"""(layer name, kernel) of the "layers" benchmarks."""
