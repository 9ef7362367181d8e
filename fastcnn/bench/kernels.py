"""Kernel benchmarks: each contract kernel at the shapes the zoo's models really use.

A :class:`KernelBench` is one kernel of one zoo layer in one direction
("forward", "backward", or "step" for the fused loss and the optimizer
update). It makes seeded inputs for any batch size, runs the kernel on any
backend module, and runs the same computation in PyTorch (``torch.nn.functional``
and autograd) from the same arrays.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from ..backend import get_backend, use_backend
from ..kernels import numpy_backend as reference_backend
from ..functional import rebuilds_columns
from ..kernels.contract import conv_output_size
from .environment import torch_module
from .timing import Trial


def _torch():
    torch = torch_module()
    if torch is None:
        raise RuntimeError("PyTorch is not installed")
    return torch


def _tensor(array, requires_grad=False):
    return _torch().from_numpy(np.array(array, copy=True)).requires_grad_(requires_grad)


def _host(tensor) -> np.ndarray:
    return tensor.detach().numpy().copy()


def _activate_torch(y, activation):
    """The activation applied in place, as a tuned PyTorch model would."""
    if activation == "relu":
        return y.relu_()
    if activation == "sigmoid":
        return y.sigmoid_()
    return y


def _activation_backward_torch(dout, out, activation):
    """dout times the activation's derivative, from the activated output ``out`` (the
    operators autograd runs for ReLU and Sigmoid nodes)."""
    aten = _torch().ops.aten
    if activation == "relu":
        return aten.threshold_backward(dout, out, 0)
    if activation == "sigmoid":
        return aten.sigmoid_backward(dout, out)
    return dout


def _autograd_run(output, named_inputs: dict, grad_output):
    """(run, results) timing the backward pass of a recorded graph: ``run()`` back-propagates
    ``grad_output()`` from ``output`` to every tensor in ``named_inputs`` (gradient name -> tensor)."""
    torch = _torch()
    names, inputs = list(named_inputs), list(named_inputs.values())
    grads = {}

    def run():
        grads["values"] = torch.autograd.grad(output, inputs, grad_output(), retain_graph=True)

    return run, lambda: {name: _host(g) for name, g in zip(names, grads["values"])}


def _torch_unary(op, host, direction, results=lambda out: {"out": _host(out)}):
    """(run, results) of PyTorch's ``op`` on host["x"]: forward, or its backward pass
    from host["dout"] (the gradient named "dx")."""
    x = _tensor(host["x"], direction == "backward")
    if direction == "backward":
        dout = _tensor(host["dout"])
        return _autograd_run(op(x), {"dx": x}, lambda: dout)
    result = {}

    def run():
        result["out"] = op(x)

    return run, lambda: results(result["out"])


class _Kernel:
    """What differs between kernels; subclasses describe one contract operation."""

    directions = ("forward", "backward")

    def inputs(self, n: int, direction: str, rng: np.random.Generator) -> dict:
        """Host arrays (or None) the kernel reads or updates."""
        raise NotImplementedError

    def outputs(self, n: int, direction: str) -> dict:
        """Output buffers: name -> (shape, dtype), or None for an output skipped."""
        return {}

    def compared(self, direction: str) -> tuple:
        """Names of the arrays (outputs or updated inputs) checked against the reference."""
        raise NotImplementedError

    def call(self, module, direction: str, a: dict) -> None:
        raise NotImplementedError

    def restore(self, direction: str) -> tuple:
        """Inputs the kernel may overwrite, copied back before every call."""
        return ()

    def flops(self, n: int, direction: str) -> float | None:
        """Useful floating-point operations of one call (None: a memory-bound kernel)."""
        return None

    def torch(self, host: dict, direction: str):
        """(run, results): the same computation in PyTorch on copies of ``host``."""
        raise NotImplementedError


def _normal(rng, shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


class _GemmLayer(_Kernel):
    """What convolution and dense share: a GEMM, a fused activation, an optional bias
    and an optional input gradient."""

    def __init__(self, activation, bias, input_grad):
        self.activation, self.bias, self.input_grad = activation, bias, input_grad

    def _gemm_flops(self, n: int) -> float:
        raise NotImplementedError

    def _torch_op(self, x, weight, bias):
        """The layer's linear map in torch.nn.functional."""
        raise NotImplementedError

    def flops(self, n, direction):
        gemm = self._gemm_flops(n)
        return gemm if direction == "forward" else gemm * (1 + self.input_grad)

    def _gradients(self):
        return tuple(name for name, on in (("dx", self.input_grad), ("dweight", True),
                                           ("dbias", self.bias)) if on)

    def restore(self, direction):
        # relu folding (dout *= out > 0) is idempotent; sigmoid's would shrink dout every call
        return ("dout",) if direction == "backward" and self.activation == "sigmoid" else ()

    def torch(self, host, direction):
        grad = direction == "backward"
        x = _tensor(host["x"], grad and self.input_grad)
        weight = _tensor(host["weight"], grad)
        bias = _tensor(host["bias"], grad) if self.bias else None
        if not grad:
            result = {}

            def run():
                result["out"] = _activate_torch(self._torch_op(x, weight, bias), self.activation)

            return run, lambda: {"out": _host(result["out"])}
        # the activation's derivative comes from the reference's activated output, as for
        # the backends: PyTorch's own forward could put a pre-activation that is within
        # rounding of zero on the other side of the ReLU
        dout, out = _tensor(host["dout"]), _tensor(host["out"])
        named = {"dx": x, "dweight": weight, "dbias": bias}
        return _autograd_run(self._torch_op(x, weight, bias),
                             {name: named[name] for name in self._gradients()},
                             lambda: _activation_backward_torch(dout, out, self.activation))


class Conv2d(_GemmLayer):
    """conv2d_forward / conv2d_backward, stride 1, with a fused activation."""

    def __init__(self, c, o, h, w, k=3, padding=0, activation="relu", bias=True, input_grad=True):
        super().__init__(activation, bias, input_grad)
        self.c, self.o, self.h, self.w, self.k, self.padding = c, o, h, w, k, padding
        self.oh = conv_output_size(h, k, 1, padding)
        self.ow = conv_output_size(w, k, 1, padding)

    def describe(self):
        act = f" +{self.activation}" if self.activation else ""
        pad = f" pad {self.padding}" if self.padding else " valid"
        return f"conv {self.c}->{self.o} {self.k}x{self.k}{pad} on {self.h}x{self.w}{act}"

    def _cols_shape(self, n):
        return (n, self.c * self.k * self.k, self.oh * self.ow)

    def _out_shape(self, n):
        return (n, self.o, self.oh, self.ow)

    def inputs(self, n, direction, rng):
        fan_in = self.c * self.k * self.k
        x = _normal(rng, (n, self.c, self.h, self.w))
        weight = _normal(rng, (self.o, self.c, self.k, self.k), fan_in ** -0.5)
        bias = _normal(rng, (self.o,), 0.1) if self.bias else None
        if direction == "forward":
            return {"x": x, "weight": weight, "bias": bias}
        cols = np.empty(self._cols_shape(n), np.float32)
        out = np.empty(self._out_shape(n), np.float32)
        reference_backend.conv2d_forward(x, weight, bias, 1, self.padding, self.activation, cols, out)
        return {"dout": _normal(rng, out.shape), "out": out, "weight": weight, "cols": cols,
                "x": x, "bias": bias}

    def outputs(self, n, direction):
        if direction == "forward":
            return {"cols": (self._cols_shape(n), np.float32), "out": (self._out_shape(n), np.float32)}
        grad = self.input_grad
        return {"dx": ((n, self.c, self.h, self.w), np.float32) if grad else None,
                "dweight": ((self.o, self.c, self.k, self.k), np.float32),
                "dbias": ((self.o,), np.float32) if self.bias else None,
                "dcols": (self._cols_shape(n), np.float32) if grad else None}

    def compared(self, direction):
        return ("out",) if direction == "forward" else self._gradients()

    def call(self, module, direction, a):
        """As training calls them: a backend that rebuilds the columns in its backward pass
        (contract.FROM_INPUT) writes none in the forward pass."""
        rebuilds = rebuilds_columns(module)
        if direction == "forward":
            module.conv2d_forward(a["x"], a["weight"], a["bias"], 1, self.padding, self.activation,
                                  None if rebuilds else a["cols"], a["out"])
        elif rebuilds:
            module.conv2d_backward_from_input(a["dout"], a["out"], a["weight"], a["x"], 1,
                                              self.padding, self.activation, a["dx"],
                                              a["dweight"], a["dbias"])
        else:
            module.conv2d_backward(a["dout"], a["out"], a["weight"], a["cols"], 1, self.padding,
                                   self.activation, a["dx"], a["dweight"], a["dbias"], a["dcols"])

    def _gemm_flops(self, n):
        return 2.0 * n * self.o * self.c * self.k * self.k * self.oh * self.ow

    def _torch_op(self, x, weight, bias):
        return _torch().nn.functional.conv2d(x, weight, bias, 1, self.padding)


class _Pool2d(_Kernel):
    """Shared shapes of the pooling kernels (window ``k``, stride ``k``)."""

    kind = ""

    def __init__(self, c, h, w, k=2):
        self.c, self.h, self.w, self.k = c, h, w, k
        self.oh, self.ow = conv_output_size(h, k, k, 0), conv_output_size(w, k, k, 0)

    def describe(self):
        return f"{self.kind} {self.k} on {self.c}x{self.h}x{self.w}"

    def _shapes(self, n):
        return (n, self.c, self.h, self.w), (n, self.c, self.oh, self.ow)

    def _torch_pool(self, x):
        raise NotImplementedError

    def torch(self, host, direction):
        return _torch_unary(self._torch_pool, host, direction, self._torch_results)

    def _torch_results(self, out):
        return {"out": _host(out)}


class MaxPool2d(_Pool2d):
    kind = "maxpool"

    def inputs(self, n, direction, rng):
        x_shape, out_shape = self._shapes(n)
        x = _normal(rng, x_shape)
        if direction == "forward":
            return {"x": x}
        out, argmax = np.empty(out_shape, np.float32), np.empty(out_shape, np.int32)
        reference_backend.maxpool2d_forward(x, self.k, self.k, out, argmax)
        return {"dout": _normal(rng, out_shape), "argmax": argmax, "x": x}

    def outputs(self, n, direction):
        x_shape, out_shape = self._shapes(n)
        if direction == "forward":
            return {"out": (out_shape, np.float32), "argmax": (out_shape, np.int32)}
        return {"dx": (x_shape, np.float32)}

    def compared(self, direction):
        return ("out", "argmax") if direction == "forward" else ("dx",)

    def call(self, module, direction, a):
        if direction == "forward":
            module.maxpool2d_forward(a["x"], self.k, self.k, a["out"], a["argmax"])
        else:
            module.maxpool2d_backward(a["dout"], a["argmax"], a["dx"])

    def _torch_pool(self, x):
        F = _torch().nn.functional
        return F.max_pool2d(x, self.k, self.k, return_indices=not x.requires_grad)

    def _torch_results(self, out):
        values, indices = out
        return {"out": _host(values), "argmax": indices.numpy().astype(np.int32)}


class AvgPool2d(_Pool2d):
    kind = "avgpool"

    def inputs(self, n, direction, rng):
        x_shape, out_shape = self._shapes(n)
        x = _normal(rng, x_shape)
        return {"x": x} if direction == "forward" else {"dout": _normal(rng, out_shape), "x": x}

    def outputs(self, n, direction):
        x_shape, out_shape = self._shapes(n)
        return {"out": (out_shape, np.float32)} if direction == "forward" else {"dx": (x_shape, np.float32)}

    def compared(self, direction):
        return ("out",) if direction == "forward" else ("dx",)

    def call(self, module, direction, a):
        if direction == "forward":
            module.avgpool2d_forward(a["x"], self.k, self.k, a["out"])
        else:
            module.avgpool2d_backward(a["dout"], self.k, self.k, a["dx"])

    def _torch_pool(self, x):
        return _torch().nn.functional.avg_pool2d(x, self.k, self.k)


class Dense(_GemmLayer):
    """dense_forward / dense_backward with a fused activation."""

    def __init__(self, features, units, activation="relu", bias=True, input_grad=True):
        super().__init__(activation, bias, input_grad)
        self.f, self.u = features, units

    def describe(self):
        act = f" +{self.activation}" if self.activation else ""
        return f"dense {self.f}->{self.u}{act}{'' if self.bias else ' no bias'}"

    def inputs(self, n, direction, rng):
        x = _normal(rng, (n, self.f))
        weight = _normal(rng, (self.u, self.f), self.f ** -0.5)
        bias = _normal(rng, (self.u,), 0.1) if self.bias else None
        if direction == "forward":
            return {"x": x, "weight": weight, "bias": bias}
        out = np.empty((n, self.u), np.float32)
        reference_backend.dense_forward(x, weight, bias, self.activation, out)
        return {"dout": _normal(rng, out.shape), "out": out, "x": x, "weight": weight, "bias": bias}

    def outputs(self, n, direction):
        if direction == "forward":
            return {"out": ((n, self.u), np.float32)}
        return {"dx": ((n, self.f), np.float32) if self.input_grad else None,
                "dweight": ((self.u, self.f), np.float32),
                "dbias": ((self.u,), np.float32) if self.bias else None}

    def compared(self, direction):
        return ("out",) if direction == "forward" else self._gradients()

    def call(self, module, direction, a):
        if direction == "forward":
            module.dense_forward(a["x"], a["weight"], a["bias"], self.activation, a["out"])
        else:
            module.dense_backward(a["dout"], a["out"], a["x"], a["weight"], self.activation,
                                  a["dx"], a["dweight"], a["dbias"])

    def _gemm_flops(self, n):
        return 2.0 * n * self.u * self.f

    def _torch_op(self, x, weight, bias):
        return _torch().nn.functional.linear(x, weight, bias)


class SoftmaxCrossEntropy(_Kernel):
    """The fused loss: softmax, cross-entropy, its gradient and the correct count in one call."""

    directions = ("step",)

    def __init__(self, classes=10):
        self.classes = classes

    def describe(self):
        return f"softmax-cross-entropy over {self.classes} classes (loss + gradient)"

    def inputs(self, n, direction, rng):
        return {"logits": _normal(rng, (n, self.classes), 3.0),
                "labels": rng.integers(0, self.classes, n).astype(np.int32)}

    def outputs(self, n, direction):
        return {"dlogits": ((n, self.classes), np.float32), "stats": ((2,), np.float32)}

    def compared(self, direction):
        return ("dlogits", "stats")

    def call(self, module, direction, a):
        module.softmax_cross_entropy(a["logits"], a["labels"], a["dlogits"], a["stats"])

    def torch(self, host, direction):
        torch = _torch()
        logits = _tensor(host["logits"], True)
        labels = torch.from_numpy(host["labels"].astype(np.int64))
        result = {}

        def run():
            loss = torch.nn.functional.cross_entropy(logits, labels)
            (result["dlogits"],) = torch.autograd.grad(loss, [logits])
            result["stats"] = (loss.detach(), (logits.detach().argmax(1) == labels).sum())

        def results():
            loss, correct = result["stats"]
            return {"dlogits": _host(result["dlogits"]),
                    "stats": np.array([float(loss), float(correct)], np.float32)}

        return run, results


class Adam(_Kernel):
    """adam_update on one weight tensor (PyTorch's default hyper-parameters, lr 1e-3)."""

    directions = ("step",)
    lr, betas, eps = 1e-3, (0.9, 0.999), 1e-8

    def __init__(self, shape):
        self.shape = tuple(shape)

    def describe(self):
        return f"adam update of a {'x'.join(map(str, self.shape))} weight"

    def inputs(self, n, direction, rng):
        return {"param": _normal(rng, self.shape, 0.05), "grad": _normal(rng, self.shape, 1e-3),
                "m": np.zeros(self.shape, np.float32), "v": np.zeros(self.shape, np.float32)}

    def compared(self, direction):
        return ("param", "m", "v")

    def call(self, module, direction, a):
        module.adam_update(a["param"], a["grad"], a["m"], a["v"], self.lr, *self.betas, self.eps, 1)

    def torch(self, host, direction):
        torch = _torch()
        param = _tensor(host["param"], True)
        param.grad = _tensor(host["grad"])
        optimizer = torch.optim.Adam([param], lr=self.lr, betas=self.betas, eps=self.eps)

        def results():
            state = optimizer.state[param]
            return {"param": _host(param), "m": _host(state["exp_avg"]), "v": _host(state["exp_avg_sq"])}

        return optimizer.step, results


@dataclass(frozen=True)
class KernelBench:
    """One kernel of one zoo layer in one direction; ``quick`` ones run in ``--quick``."""

    model: str
    layer: str
    kernel: _Kernel
    direction: str
    quick: bool

    @property
    def name(self) -> str:
        return f"{self.model}.{self.layer} {self.direction}"

    @property
    def label(self) -> str:
        return f"{self.kernel.describe()}, {self.direction}"

    @property
    def needs_batch(self) -> bool:
        """False for the optimizer update, whose size does not depend on the batch."""
        return not isinstance(self.kernel, Adam)

    def host_inputs(self, n: int) -> dict:
        rng = np.random.default_rng(zlib.crc32(self.name.encode()) + n)
        return self.kernel.inputs(n, self.direction, rng)

    def flops(self, n: int) -> float | None:
        return self.kernel.flops(n, self.direction)


_LAYERS = (
    # model, layer, kernel, in --quick
    ("pytorch_cnn", "conv1", Conv2d(1, 32, 28, 28, padding=1, input_grad=False), True),
    ("pytorch_cnn", "conv2", Conv2d(32, 64, 14, 14, padding=1), True),
    ("pytorch_cnn", "pool1", MaxPool2d(32, 28, 28), True),
    ("pytorch_cnn", "fc1", Dense(3136, 128), True),
    ("pytorch_cnn", "fc2", Dense(128, 10, activation=None), True),
    ("pytorch_cnn", "loss", SoftmaxCrossEntropy(10), True),
    ("pytorch_cnn", "adam", Adam((128, 3136)), True),
    ("keras_kfold_cnn", "conv", Conv2d(1, 32, 28, 28, input_grad=False), False),
    ("keras_kfold_cnn", "dense", Dense(5408, 100), False),
    ("kmnist_cnn", "conv2", Conv2d(32, 64, 26, 26), False),
    ("kmnist_cnn", "dense", Dense(9216, 128), False),
    ("fixed_kernel_cnn", "conv", Conv2d(1, 1, 28, 28, activation=None, bias=False, input_grad=False),
     False),
    ("fixed_kernel_cnn", "pool", AvgPool2d(1, 26, 26), False),
    ("numpy_mlp", "hidden", Dense(784, 128, activation="sigmoid", bias=False, input_grad=False), False),
)

LAYERS = "layers"
"""The --models name of the layer kernels no zoo model uses (see layer_kernels)."""


def _layer_benches():
    from .layer_kernels import LAYERS as layer_kernels

    return tuple((LAYERS, layer, kernel, False) for layer, kernel in layer_kernels)


KERNEL_BENCHES = tuple(KernelBench(model, layer, kernel, direction, quick)
                       for model, layer, kernel, quick in _LAYERS + _layer_benches()
                       for direction in kernel.directions)
"""Every kernel benchmark, in report order."""


def kernel_benches(quick: bool = False, models=None) -> list[KernelBench]:
    """The kernel benchmarks of ``--quick`` (pytorch_cnn's layers) or of ``--full`` (all);
    ``models`` (None: all) names zoo models, or "layers" for the layers no zoo model uses."""
    return [bench for bench in KERNEL_BENCHES
            if (bench.quick or not quick) and (models is None or bench.model in models)]


def get_kernel_bench(name: str) -> KernelBench:
    for bench in KERNEL_BENCHES:
        if bench.name == name:
            return bench
    raise ValueError(f"no kernel benchmark {name!r}")


def _copy_into(module, arrays: dict, name: str, saved: np.ndarray) -> None:
    if isinstance(arrays[name], np.ndarray):
        np.copyto(arrays[name], saved)
    else:  # a device array: replace it
        arrays[name] = module.to_device(saved)


def backend_trial(bench: KernelBench, backend: str, n: int) -> Trial:
    """``bench`` on fastcnn backend ``backend`` at batch ``n``, run inside ``use_backend``
    (which applies the backend's BLAS thread policy)."""
    with use_backend(backend):
        module = get_backend()
    kernel, direction = bench.kernel, bench.direction
    host = bench.host_inputs(n)
    arrays = {name: None if value is None else module.to_device(value) for name, value in host.items()}
    for name, spec in kernel.outputs(n, direction).items():
        arrays[name] = None if spec is None else module.empty(*spec)
    restore = [(name, host[name].copy()) for name in kernel.restore(direction)]

    def run():
        for name, saved in restore:
            _copy_into(module, arrays, name, saved)
        kernel.call(module, direction, arrays)

    def results():
        return {name: np.array(module.to_host(arrays[name])) for name in kernel.compared(direction)}

    return Trial(run, results, getattr(module, "synchronize", None),
                 context=lambda: use_backend(backend))


def torch_trial(bench: KernelBench, n: int) -> Trial:
    """``bench`` computed by PyTorch from the same inputs at batch ``n``."""
    run, results = bench.kernel.torch(bench.host_inputs(n), bench.direction)
    return Trial(run, results)
