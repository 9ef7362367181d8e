"""Sample inputs for every kernel of the contract, described once (OpInfo style).

``cases(op)`` returns the :class:`Case` list of contract operation ``op``:
seeded, randomised shapes that cover batch 1, odd sizes, stride 1 and 2,
padding 0-2, 1 to 64 channels, kernels 1-5, pooling windows 2-3 with stride
1-3, every activation, ties, dropout rates 0/0.3/0.5 and runs of optimizer
steps. ``tiny=True`` keeps every shape very small (N <= 2, C <= 3, H, W <= 7)
for the CUDA simulator. A case only describes the call; the conformance
suite runs it on a backend and on the NumPy reference and compares.
"""

from __future__ import annotations

import inspect
import zlib
from dataclasses import dataclass, field

import numpy as np

from fastcnn.kernels import contract
from fastcnn.kernels.contract import conv_output_size

MEMORY_OPERATIONS = ("to_device", "to_host", "empty", "zeros")
COMPUTE_OPERATIONS = tuple(op for op in contract.OPERATIONS if op not in MEMORY_OPERATIONS)
SINGLE_TRAINING_OPERATIONS = tuple(op for op in contract.TRAINING_OPERATIONS
                                   if not op.endswith("_many"))
"""The training operations on single arrays, described here; the _many ones take lists
(tests/test_training_kernels.py)."""

TINY_BATCH, TINY_CHANNELS, TINY_SIZE = 2, 3, 7


def parameters(op: str) -> list[str]:
    """Parameter names of contract operation ``op``, in call order."""
    return list(inspect.signature(getattr(contract.KernelBackend, op)).parameters)[1:]


@dataclass
class Case:
    """One call of a contract operation (or a run of calls, for optimizers).

    arrays: host arrays the kernel reads or updates (None for an optional input left out);
    scalars: the other arguments (stride, activation, p, lr, ...);
    outputs: name -> (shape, dtype) of a buffer the kernel must fully write, or None when skipped;
    updated: names in ``arrays`` the kernel updates in place, compared afterwards;
    steps: per-call overrides of arrays/scalars, one dict per call, run in order;
    exact: outputs that must match bit for bit;
    workspace: outputs that are scratch space, whose contents afterwards are not compared.
    """

    op: str
    label: str
    arrays: dict
    scalars: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    updated: tuple = ()
    steps: list = field(default_factory=lambda: [{}])
    exact: tuple = ()
    workspace: tuple = ()

    def __post_init__(self):
        given = set(self.arrays) | set(self.scalars) | set(self.outputs)
        for step in self.steps:
            assert set(parameters(self.op)) == given | set(step), (self.op, self.label)

    def arguments(self, step: dict, arrays: dict, outputs: dict) -> list:
        """Positional arguments of one call: scalars and ``step`` merged with the
        caller's (device) ``arrays`` and ``outputs``."""
        merged = {**self.scalars, **arrays, **outputs, **step}
        return [merged[name] for name in parameters(self.op)]


def _rng(topic: str) -> np.random.Generator:
    """A generator seeded by ``topic``, so each operation's cases never change."""
    return np.random.default_rng(zlib.crc32(topic.encode()))


def _normal(rng, shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _activated(rng, activation, shape):
    """A plausible activated output (N, ...) for a backward pass: relu >= 0 with zeros, sigmoid in (0, 1)."""
    if activation == "relu":
        return np.maximum(_normal(rng, shape), 0)
    if activation == "sigmoid":
        return rng.uniform(0.01, 0.99, shape).astype(np.float32)
    return _normal(rng, shape)


def _float(shape):
    return (tuple(shape), np.float32)


def _tie_prone(rng, shape):
    """Small integers as float32: many exact ties, to pin down 'the first maximum wins'."""
    return rng.integers(0, 3, shape).astype(np.float32)


# ---- convolution ---------------------------------------------------------------------
CONV_SETTINGS = (
    dict(batch=1, channels=1, out_channels=8, kernel=(3, 3), stride=1, padding=1, activation="relu"),
    dict(batch=2, channels=3, out_channels=4, kernel=(3, 3), stride=2, padding=1, activation="sigmoid"),
    dict(batch=2, channels=4, out_channels=6, kernel=(5, 5), stride=1, padding=2, activation=None),
    dict(batch=3, channels=16, out_channels=8, kernel=(1, 1), stride=1, padding=0, activation=None,
         bias=False),
    dict(batch=2, channels=5, out_channels=3, kernel=(2, 2), stride=2, padding=0, activation="relu",
         input_grad=False),
    dict(batch=1, channels=2, out_channels=5, kernel=(4, 4), stride=2, padding=2, activation="sigmoid",
         bias=False, input_grad=False),
    dict(batch=2, channels=64, out_channels=64, kernel=(3, 3), stride=1, padding=0, activation="relu",
         max_size=5),
    dict(batch=2, channels=3, out_channels=2, kernel=(2, 3), stride=1, padding=1, activation=None),
    # big enough for the threaded paths (numba: above jit.SERIAL_WORK), odd batches split
    # into uneven sample groups for the weight gradient
    dict(batch=9, channels=8, out_channels=12, kernel=(3, 3), stride=1, padding=1, activation="relu",
         min_size=9, max_size=15),
    dict(batch=7, channels=6, out_channels=5, kernel=(3, 3), stride=2, padding=0, activation="sigmoid",
         bias=False, input_grad=False, min_size=22, max_size=25),
    # stride-1 3x3 at padding 2, a single sample, and odd planes without bias
    dict(batch=1, channels=9, out_channels=10, kernel=(3, 3), stride=1, padding=2, activation="sigmoid",
         max_size=9),
    dict(batch=3, channels=12, out_channels=8, kernel=(3, 3), stride=1, padding=1, activation=None,
         bias=False, min_size=5, max_size=9),
    # numba's Winograd F(2x2, 3x3) (at least 32 channels in and out): odd planes (tiles
    # past the edge), padding 1 and 2 (its input gradient at padding 1 and 0)
    dict(batch=3, channels=32, out_channels=33, kernel=(3, 3), stride=1, padding=1,
         activation="relu", min_size=5, max_size=9),
    dict(batch=2, channels=34, out_channels=32, kernel=(3, 3), stride=1, padding=2,
         activation=None, bias=False, max_size=7),
)
"""Convolution geometries; heights and widths are drawn at random (odd ones included)."""


@dataclass
class ConvProblem:
    """One convolution geometry with every shape derived from it."""

    label: str
    x_shape: tuple       # (N, C, H, W)
    weight_shape: tuple  # (O, C, KH, KW)
    cols_shape: tuple    # (N, C*KH*KW, OH*OW)
    out_shape: tuple     # (N, O, OH, OW)
    stride: int
    padding: int
    activation: str | None
    bias: bool
    input_grad: bool

    def window_arguments(self):
        """kernel_h, kernel_w, stride, padding: the arguments of im2col and col2im."""
        return dict(kernel_h=self.weight_shape[2], kernel_w=self.weight_shape[3],
                    stride=self.stride, padding=self.padding)

    def layer_arguments(self):
        """stride, padding, activation: the scalars of conv2d_forward and conv2d_backward."""
        return dict(stride=self.stride, padding=self.padding, activation=self.activation)


def _conv_problems(tiny):
    """A ConvProblem per convolution geometry, heights and widths drawn at random."""
    rng = _rng("conv2d")
    problems = []
    for setting in CONV_SETTINGS:
        setting = {"bias": True, "input_grad": True, "max_size": 11, **setting}
        (kernel_h, kernel_w), stride, padding = setting["kernel"], setting["stride"], setting["padding"]
        batch, channels, out_channels = setting["batch"], setting["channels"], setting["out_channels"]
        max_size = setting["max_size"]
        if tiny:
            batch, channels, max_size = min(batch, TINY_BATCH), min(channels, TINY_CHANNELS), TINY_SIZE
            out_channels = min(out_channels, TINY_CHANNELS)
        smallest = max(max(kernel_h, kernel_w) - 2 * padding, 1, 0 if tiny else setting.get("min_size", 0))
        height, width = rng.integers(smallest, max_size + 1, size=2)
        out_h = conv_output_size(height, kernel_h, stride, padding)
        out_w = conv_output_size(width, kernel_w, stride, padding)
        label = (f"N{batch}-C{channels}-{height}x{width}-O{out_channels}-k{kernel_h}x{kernel_w}"
                 f"-s{stride}-p{padding}-{setting['activation']}")
        problems.append(ConvProblem(
            label, (batch, channels, height, width), (out_channels, channels, kernel_h, kernel_w),
            (batch, channels * kernel_h * kernel_w, out_h * out_w), (batch, out_channels, out_h, out_w),
            stride, padding, setting["activation"], setting["bias"], setting["input_grad"]))
    return problems


def _skipped_label(outputs):
    """'-no_dx-no_dbias' for the outputs passed as None."""
    return "".join(f"-no_{name}" for name, spec in outputs.items() if spec is None)


def im2col_cases(tiny=False):
    rng = _rng("im2col")
    return [Case("im2col", problem.label, {"x": _normal(rng, problem.x_shape)},
                 problem.window_arguments(), {"cols": _float(problem.cols_shape)})
            for problem in _conv_problems(tiny)]


def col2im_cases(tiny=False):
    rng = _rng("col2im")
    return [Case("col2im", problem.label, {"cols": _normal(rng, problem.cols_shape)},
                 problem.window_arguments(), {"dx": _float(problem.x_shape)})
            for problem in _conv_problems(tiny)]


def conv2d_forward_cases(tiny=False):
    rng = _rng("conv2d_forward")
    cases = []
    for problem in _conv_problems(tiny):
        fan_in = np.prod(problem.weight_shape[1:])
        arrays = {"x": _normal(rng, problem.x_shape),
                  "weight": _normal(rng, problem.weight_shape, 1 / np.sqrt(fan_in)),
                  "bias": _normal(rng, problem.weight_shape[:1]) if problem.bias else None}
        outputs = {"cols": _float(problem.cols_shape), "out": _float(problem.out_shape)}
        cases.append(Case("conv2d_forward", problem.label, arrays, problem.layer_arguments(), outputs))
        # no columns kept: inference, or training before a backward pass _from_input
        outputs = {"cols": None, "out": _float(problem.out_shape)}
        cases.append(Case("conv2d_forward", problem.label + _skipped_label(outputs), arrays,
                          problem.layer_arguments(), outputs))
    return cases


def _conv_gradients(problem):
    """The backward pass's outputs: dx and dcols (None without an input gradient), dweight, dbias."""
    return {"dx": _float(problem.x_shape) if problem.input_grad else None,
            "dweight": _float(problem.weight_shape),
            "dbias": _float(problem.weight_shape[:1]) if problem.bias else None,
            "dcols": _float(problem.cols_shape) if problem.input_grad else None}


def _backward_inputs(rng, problem, op):
    """out and weight, and the forward pass's input as ``op`` reads it: cols
    (conv2d_backward) or x (the _from_input passes, which rebuild the columns from it);
    both are drawn, and the one ``op`` does not read is dropped."""
    arrays = {"out": _activated(rng, problem.activation, problem.out_shape),
              "weight": _normal(rng, problem.weight_shape),
              "cols": _normal(rng, problem.cols_shape), "x": _normal(rng, problem.x_shape)}
    del arrays["cols" if op.endswith("_from_input") else "x"]
    return arrays


def _backward_gradients(problem, op):
    """_conv_gradients, without dcols for a _from_input pass (its columns are its own)."""
    gradients = _conv_gradients(problem)
    if op.endswith("_from_input"):
        del gradients["dcols"]
    return gradients


def _conv_backward_cases(op, tiny):
    """conv2d_backward (from cols) or conv2d_backward_from_input (from x)."""
    rng = _rng(op)
    cases = []
    for problem in _conv_problems(tiny):
        arrays = {"dout": _normal(rng, problem.out_shape), **_backward_inputs(rng, problem, op)}
        outputs = _backward_gradients(problem, op)
        cases.append(Case(op, problem.label + _skipped_label(outputs), arrays,
                          problem.layer_arguments(), outputs, workspace=("dcols",)))
    return cases


def conv2d_backward_cases(tiny=False):
    return _conv_backward_cases("conv2d_backward", tiny)


def conv2d_backward_from_input_cases(tiny=False):
    return _conv_backward_cases("conv2d_backward_from_input", tiny)


def _pooled_problems(tiny, topic):
    """(problem, pool, pooled shape (N, O, PH, PW), rng) for each convolution geometry whose
    output a pool window fits: windows 2 and 3 in turn, so odd sizes leave rows over."""
    rng = _rng(topic)
    found = []
    for number, problem in enumerate(_conv_problems(tiny)):
        batch, filters, out_h, out_w = problem.out_shape
        pool = 2 + number % 2
        if min(out_h, out_w) < pool:
            pool = 2
        if min(out_h, out_w) < pool:
            continue
        found.append((problem, pool, (batch, filters, out_h // pool, out_w // pool), rng))
    return found


def conv2d_maxpool_forward_cases(tiny=False):
    cases = []
    for problem, pool, pooled, rng in _pooled_problems(tiny, "conv2d_maxpool_forward"):
        fan_in = np.prod(problem.weight_shape[1:])
        arrays = {"x": _normal(rng, problem.x_shape),
                  "weight": _normal(rng, problem.weight_shape, 1 / np.sqrt(fan_in)),
                  "bias": _normal(rng, problem.weight_shape[:1]) if problem.bias else None}
        outputs = {"cols": _float(problem.cols_shape), "out": _float(problem.out_shape),
                   "pooled": _float(pooled), "argmax": (pooled, np.int32)}
        cases.append(Case("conv2d_maxpool_forward", f"{problem.label}-pool{pool}", arrays,
                          {**problem.layer_arguments(), "pool": pool}, outputs, exact=("argmax",)))
        # inference: only the pooled output, nothing kept for a backward pass
        inference = {"cols": None, "out": None, "pooled": _float(pooled), "argmax": None}
        # training before conv2d_maxpool_backward_from_input: the pooled output and argmax
        from_input = {"cols": None, "out": None, "pooled": _float(pooled),
                      "argmax": (pooled, np.int32)}
        for kept in (inference, from_input):
            cases.append(Case("conv2d_maxpool_forward", f"{problem.label}-pool{pool}"
                              + _skipped_label(kept), arrays,
                              {**problem.layer_arguments(), "pool": pool}, kept,
                              exact=() if kept["argmax"] is None else ("argmax",)))
    return cases


def _conv_maxpool_backward_cases(op, tiny):
    """conv2d_maxpool_backward (from cols and the full output) or its _from_input twin (from
    x and the pooled output, its own full-resolution gradient)."""
    cases = []
    for problem, pool, pooled, rng in _pooled_problems(tiny, op):
        arrays = {"dpooled": _normal(rng, pooled),
                  "argmax": _winners(rng, pool, pool, problem.out_shape, pooled),
                  **_backward_inputs(rng, problem, op)}
        outputs = _backward_gradients(problem, op)
        if op.endswith("_from_input"):
            arrays["pooled"] = _activated(rng, problem.activation, pooled)
            del arrays["out"]
        else:
            outputs["dout"] = _float(problem.out_shape)
        cases.append(Case(op, f"{problem.label}-pool{pool}" + _skipped_label(outputs), arrays,
                          problem.layer_arguments(), outputs, workspace=("dcols", "dout")))
    return cases


def conv2d_maxpool_backward_cases(tiny=False):
    return _conv_maxpool_backward_cases("conv2d_maxpool_backward", tiny)


def conv2d_maxpool_backward_from_input_cases(tiny=False):
    return _conv_maxpool_backward_cases("conv2d_maxpool_backward_from_input", tiny)


# ---- pooling ------------------------------------------------------------------------------
POOL_SETTINGS = (
    dict(batch=1, channels=1, kernel=2, stride=2),
    dict(batch=2, channels=3, kernel=3, stride=2),
    dict(batch=2, channels=8, kernel=2, stride=1, ties=True),
    dict(batch=3, channels=2, kernel=3, stride=3),
    dict(batch=2, channels=64, kernel=3, stride=1, max_size=6),
    dict(batch=1, channels=5, kernel=2, stride=3, ties=True),
    dict(batch=3, channels=7, kernel=2, stride=2, ties=True, max_size=13),
    # rows of 8 or more outputs: cython's vectorised 2x2 path
    dict(batch=2, channels=3, kernel=2, stride=2, ties=True, min_size=16, max_size=31),
)
"""Pooling geometries (no padding); heights and widths are drawn at random."""


def _pool_problems(tiny, topic):
    """Yield (label, setting, x shape, out shape, rng) for every pooling geometry."""
    rng = _rng(topic)
    for setting in POOL_SETTINGS:
        setting = {"ties": False, "max_size": 11, **setting}
        batch, channels, max_size = setting["batch"], setting["channels"], setting["max_size"]
        if tiny:
            batch, channels, max_size = min(batch, TINY_BATCH), min(channels, TINY_CHANNELS), TINY_SIZE
        kernel, stride = setting["kernel"], setting["stride"]
        smallest = kernel if tiny else max(kernel, setting.get("min_size", 0))
        height, width = rng.integers(smallest, max_size + 1, size=2)
        out_shape = (batch, channels, conv_output_size(height, kernel, stride, 0),
                     conv_output_size(width, kernel, stride, 0))
        label = (f"N{batch}-C{channels}-{height}x{width}-k{kernel}-s{stride}"
                 + ("-ties" if setting["ties"] else ""))
        yield label, setting, (batch, channels, height, width), out_shape, rng


def _pool_input(rng, setting, shape):
    return _tie_prone(rng, shape) if setting["ties"] else _normal(rng, shape)


def maxpool2d_forward_cases(tiny=False):
    cases = []
    for label, setting, x_shape, out_shape, rng in _pool_problems(tiny, "maxpool2d_forward"):
        cases.append(Case("maxpool2d_forward", label, {"x": _pool_input(rng, setting, x_shape)},
                          {"kernel": setting["kernel"], "stride": setting["stride"]},
                          {"out": _float(out_shape), "argmax": (out_shape, np.int32)},
                          exact=("argmax",)))
    return cases


def _winners(rng, kernel, stride, x_shape, out_shape):
    """argmax (N, C, OH, OW) int32: a random pixel of each window, as y*W + x."""
    width = x_shape[3]
    out_h, out_w = out_shape[2:]
    row = np.arange(out_h)[:, None] * stride + rng.integers(0, kernel, out_shape)
    col = np.arange(out_w)[None, :] * stride + rng.integers(0, kernel, out_shape)
    return (row * width + col).astype(np.int32)


def maxpool2d_backward_cases(tiny=False):
    cases = []
    for label, setting, x_shape, out_shape, rng in _pool_problems(tiny, "maxpool2d_backward"):
        arrays = {"dout": _normal(rng, out_shape),
                  "argmax": _winners(rng, setting["kernel"], setting["stride"], x_shape, out_shape)}
        cases.append(Case("maxpool2d_backward", label, arrays, {}, {"dx": _float(x_shape)}))
    return cases


def avgpool2d_forward_cases(tiny=False):
    cases = []
    for label, setting, x_shape, out_shape, rng in _pool_problems(tiny, "avgpool2d_forward"):
        cases.append(Case("avgpool2d_forward", label, {"x": _pool_input(rng, setting, x_shape)},
                          {"kernel": setting["kernel"], "stride": setting["stride"]},
                          {"out": _float(out_shape)}))
    return cases


def avgpool2d_backward_cases(tiny=False):
    cases = []
    for label, setting, x_shape, out_shape, rng in _pool_problems(tiny, "avgpool2d_backward"):
        cases.append(Case("avgpool2d_backward", label, {"dout": _normal(rng, out_shape)},
                          {"kernel": setting["kernel"], "stride": setting["stride"]},
                          {"dx": _float(x_shape)}))
    return cases


# ---- dense -------------------------------------------------------------------------------------
DENSE_SETTINGS = (
    dict(batch=1, features=5, units=3, activation="relu"),
    dict(batch=8, features=64, units=10, activation=None),
    dict(batch=4, features=33, units=17, activation="sigmoid", bias=False),
    dict(batch=3, features=1, units=1, activation="relu", input_grad=False),
    dict(batch=16, features=20, units=64, activation="sigmoid", bias=False, input_grad=False),
    # N*F*U above numba's dense.PARALLEL_FLOPS: GEMMs split into pieces across threads
    dict(batch=40, features=300, units=200, activation="relu"),
    dict(batch=33, features=257, units=260, activation="sigmoid", bias=False, input_grad=False),
    # tall, fewer than dense.PIECE_UNITS units: dweight from partial sums by rows
    dict(batch=2100, features=100, units=24, activation="sigmoid"),
    # narrow (at most NARROW_UNITS units, no BLAS): dot products of 16-wide blocks plus a
    # remainder, rows in chunks of NARROW_ROWS (1024) with partial sums across chunk edges
    dict(batch=2100, features=100, units=10, activation="sigmoid"),
    dict(batch=3001, features=233, units=3, activation="relu", bias=False, input_grad=False),
    dict(batch=2049, features=4, units=4, activation="sigmoid"),
    dict(batch=1025, features=17, units=16, activation="relu"),
    dict(batch=7, features=169, units=4, activation="sigmoid", bias=False),
)


def _dense_problems(tiny, topic):
    """Yield (label, setting, rng) with batch/features/units shrunk when tiny."""
    rng = _rng(topic)
    for setting in DENSE_SETTINGS:
        setting = {"bias": True, "input_grad": True, **setting}
        if tiny:
            setting.update(batch=min(setting["batch"], TINY_BATCH),
                           features=min(setting["features"], 6), units=min(setting["units"], 4))
        label = f"N{setting['batch']}-F{setting['features']}-U{setting['units']}-{setting['activation']}"
        yield label, setting, rng


def dense_forward_cases(tiny=False):
    cases = []
    for label, setting, rng in _dense_problems(tiny, "dense_forward"):
        batch, features, units = setting["batch"], setting["features"], setting["units"]
        arrays = {"x": _normal(rng, (batch, features)),
                  "weight": _normal(rng, (units, features), 1 / np.sqrt(features)),
                  "bias": _normal(rng, (units,)) if setting["bias"] else None}
        cases.append(Case("dense_forward", label, arrays, {"activation": setting["activation"]},
                          {"out": _float((batch, units))}))
    return cases


def dense_backward_cases(tiny=False):
    cases = []
    for label, setting, rng in _dense_problems(tiny, "dense_backward"):
        batch, features, units = setting["batch"], setting["features"], setting["units"]
        arrays = {"dout": _normal(rng, (batch, units)),
                  "out": _activated(rng, setting["activation"], (batch, units)),
                  "x": _normal(rng, (batch, features)),
                  "weight": _normal(rng, (units, features))}
        outputs = {"dx": _float((batch, features)) if setting["input_grad"] else None,
                   "dweight": _float((units, features)),
                   "dbias": _float((units,)) if setting["bias"] else None}
        cases.append(Case("dense_backward", label + _skipped_label(outputs), arrays,
                          {"activation": setting["activation"]}, outputs))
    return cases


# ---- element-wise activations and dropout ------------------------------------------------------
ELEMENTWISE_SHAPES = ((1,), (7,), (5, 33), (2, 3, 5, 4), (1, 16, 9, 9))
TINY_ELEMENTWISE_SHAPES = ((1,), (7,), (2, 3, 5, 4))


def _elementwise_shapes(tiny):
    return TINY_ELEMENTWISE_SHAPES if tiny else ELEMENTWISE_SHAPES


def _shape_label(shape):
    return "x".join(map(str, shape))


def _with_zeros(rng, shape):
    """Normal numbers with about a fifth set to exactly 0 (the relu boundary)."""
    values = _normal(rng, shape)
    values[rng.random(shape) < 0.2] = 0
    return values


def relu_forward_cases(tiny=False):
    rng = _rng("relu_forward")
    return [Case("relu_forward", _shape_label(shape), {"x": _with_zeros(rng, shape)}, {},
                 {"out": _float(shape)}) for shape in _elementwise_shapes(tiny)]


def relu_backward_cases(tiny=False):
    rng = _rng("relu_backward")
    return [Case("relu_backward", _shape_label(shape),
                 {"dout": _normal(rng, shape), "out": np.maximum(_with_zeros(rng, shape), 0)}, {},
                 {"dx": _float(shape)}) for shape in _elementwise_shapes(tiny)]


def sigmoid_forward_cases(tiny=False):
    rng = _rng("sigmoid_forward")
    cases = []
    for shape in _elementwise_shapes(tiny):
        x = _normal(rng, shape, 4.0)
        x.reshape(-1)[::3] *= 100  # |x| in the hundreds: exp(-x) overflows unless done with care
        cases.append(Case("sigmoid_forward", _shape_label(shape), {"x": x}, {}, {"out": _float(shape)}))
    return cases


def sigmoid_backward_cases(tiny=False):
    rng = _rng("sigmoid_backward")
    return [Case("sigmoid_backward", _shape_label(shape),
                 {"dout": _normal(rng, shape), "out": _activated(rng, "sigmoid", shape)}, {},
                 {"dx": _float(shape)}) for shape in _elementwise_shapes(tiny)]


DROPOUT_SETTINGS = ((0.0, 0), (0.3, 12345), (0.5, 2**40 + 77), (0.5, 2**63 + 5), (0.3, 7))
"""(p, seed) pairs; a seed of 2**63 or more checks the unsigned 64-bit wrap-around."""


def dropout_forward_cases(tiny=False):
    rng = _rng("dropout_forward")
    cases = []
    for shape, (p, seed) in zip(_elementwise_shapes(tiny) * 2, DROPOUT_SETTINGS):
        cases.append(Case("dropout_forward", f"{_shape_label(shape)}-p{p}-seed{seed}",
                          {"x": _normal(rng, shape)}, {"p": p, "seed": seed},
                          {"out": _float(shape), "mask": _float(shape)}, exact=("mask",)))
    return cases


def dropout_backward_cases(tiny=False):
    rng = _rng("dropout_backward")
    cases = []
    for shape, (p, _) in zip(_elementwise_shapes(tiny), DROPOUT_SETTINGS):
        mask = np.where(rng.random(shape) >= p, 1 / (1 - p), 0).astype(np.float32)
        cases.append(Case("dropout_backward", f"{_shape_label(shape)}-p{p}",
                          {"dout": _normal(rng, shape), "mask": mask}, {}, {"dx": _float(shape)}))
    return cases


# ---- softmax and losses (rows of L classes) ---------------------------------------------------
ROW_SETTINGS = (
    dict(batch=1, classes=10),
    dict(batch=16, classes=10),
    dict(batch=7, classes=3, scale=50.0),
    dict(batch=5, classes=1),
    dict(batch=6, classes=4, ties=True),
    dict(batch=3, classes=100, scale=1000.0),
    dict(batch=4500, classes=10),  # a full batch: numba's loss runs in chunks of LOSS_CHUNK rows
)
"""(N, L) problems: one row, one class, huge logits (exp overflows unless max-subtracted), ties,
more rows than one loss chunk."""


def _row_problems(tiny, topic):
    """Yield (label, (N, L), logits-like values, rng)."""
    rng = _rng(topic)
    for setting in ROW_SETTINGS:
        batch, classes = setting["batch"], setting["classes"]
        if tiny:
            batch, classes = min(batch, 4), min(classes, 5)
        if setting.get("ties"):
            values = _tie_prone(rng, (batch, classes))
        else:
            values = _normal(rng, (batch, classes), setting.get("scale", 1.0))
        label = f"N{batch}-L{classes}" + ("-ties" if setting.get("ties") else "")
        if "scale" in setting:
            label += f"-scale{setting['scale']:g}"
        yield label, (batch, classes), values, rng


def _softmax_rows(values):
    """Softmax of each row of values (N, L), computed in float64."""
    exps = np.exp(values - values.max(axis=1, keepdims=True), dtype=np.float64)
    return (exps / exps.sum(axis=1, keepdims=True)).astype(np.float32)


def softmax_forward_cases(tiny=False):
    return [Case("softmax_forward", label, {"x": values}, {}, {"out": _float(shape)})
            for label, shape, values, _ in _row_problems(tiny, "softmax_forward")]


def softmax_backward_cases(tiny=False):
    return [Case("softmax_backward", label, {"dout": _normal(rng, shape), "out": _softmax_rows(values)},
                 {}, {"dx": _float(shape)})
            for label, shape, values, rng in _row_problems(tiny, "softmax_backward")]


def softmax_cross_entropy_cases(tiny=False):
    cases = []
    for label, shape, values, rng in _row_problems(tiny, "softmax_cross_entropy"):
        labels = rng.integers(0, shape[1], shape[0]).astype(np.int32)
        cases.append(Case("softmax_cross_entropy", label, {"logits": values, "labels": labels}, {},
                          {"dlogits": _float(shape), "stats": _float((2,))}))
    return cases


def mse_loss_cases(tiny=False):
    cases = []
    for label, shape, values, rng in _row_problems(tiny, "mse_loss"):
        one_hot = np.eye(shape[1], dtype=np.float32)[rng.integers(0, shape[1], shape[0])]
        cases.append(Case("mse_loss", label, {"pred": values, "target": one_hot}, {},
                          {"dpred": _float(shape), "stats": _float((2,))}))
    return cases


# ---- optimizers ----------------------------------------------------------------------------------
OPTIMIZER_SHAPES = ((7,), (4, 3, 3, 3), (10, 20))


SIGNED_STATE = ("velocity", "m", "grad_avg", "momentum_buffer")
"""Optimizer state that may be negative; the rest are running squares, never negative."""


def _optimizer_case(op, rng, shape, state_names, scalars, steps, warm, first_step=None,
                    absent=()):
    """A run of ``steps`` optimizer calls, from zero state or, when ``warm``, from random state.

    ``first_step`` numbers the calls (Adam's ``step``) from that value on; ``absent``
    names optional states passed as None.
    """
    arrays = {"param": _normal(rng, shape), **{name: None for name in absent}}
    for name in state_names:
        state = _normal(rng, shape, 0.1) if warm else np.zeros(shape, np.float32)
        arrays[name] = state if name in SIGNED_STATE else np.abs(state)
    calls = [{"grad": _normal(rng, shape)} for _ in range(steps)]
    if first_step is not None:
        for number, call in enumerate(calls, start=first_step):
            call["step"] = number
    label = (f"{_shape_label(shape)}-{steps}steps-" + ("warm" if warm else "cold")
             + "".join(f"-{name}{value:g}" for name, value in scalars.items()))
    return Case(op, label, arrays, scalars, {}, updated=("param",) + tuple(state_names), steps=calls)


def sgd_update_cases(tiny=False):
    rng = _rng("sgd_update")
    settings = (({"lr": 0.1, "momentum": 0.0}, 1, False), ({"lr": 0.01, "momentum": 0.9}, 3, False),
                ({"lr": 0.5, "momentum": 0.5}, 2, True))
    return [_optimizer_case("sgd_update", rng, shape, ("velocity",), scalars, steps, warm)
            for shape, (scalars, steps, warm) in zip(OPTIMIZER_SHAPES, settings)]


def adam_update_cases(tiny=False):
    rng = _rng("adam_update")
    settings = (({"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}, 1, 1),
                ({"lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}, 4, 1),
                ({"lr": 0.1, "beta1": 0.5, "beta2": 0.9, "eps": 1e-6}, 3, 10))
    return [_optimizer_case("adam_update", rng, shape, ("m", "v"), scalars, steps,
                            warm=first_step > 1, first_step=first_step)
            for shape, (scalars, steps, first_step) in zip(OPTIMIZER_SHAPES, settings)]


def adadelta_update_cases(tiny=False):
    rng = _rng("adadelta_update")
    settings = (({"lr": 1.0, "rho": 0.9, "eps": 1e-6}, 1, False),
                ({"lr": 1.0, "rho": 0.9, "eps": 1e-6}, 3, False),
                ({"lr": 0.5, "rho": 0.95, "eps": 1e-5}, 3, True))
    return [_optimizer_case("adadelta_update", rng, shape, ("square_avg", "acc_delta"), scalars,
                            steps, warm)
            for shape, (scalars, steps, warm) in zip(OPTIMIZER_SHAPES, settings)]


# ---- primitives ----------------------------------------------------------------------------------
CHANNEL_SHAPES = ((1, 1), (5, 3), (64, 33), (37, 130), (1, 1, 1, 1), (2, 3, 5, 4), (3, 16, 9, 9), (4, 8, 32, 32))
"""(N, C) and (N, C, H, W) inputs of the per-channel primitives: one element, odd sizes, and
enough elements for the threaded paths."""
TINY_CHANNEL_SHAPES = ((1, 1), (5, 3), (1, 1, 1, 1), (2, 3, 5, 4))


def _channel_shapes(tiny):
    return TINY_CHANNEL_SHAPES if tiny else CHANNEL_SHAPES


def axpby_cases(tiny=False):
    rng = _rng("axpby")
    settings = ((1.0, 1.0), (0.9, 0.1), (-2.5, 0.0), (0.0, -1.0), (0.5, 3.0))
    return [Case("axpby", f"{_shape_label(shape)}-a{a:g}-b{b:g}",
                 {"x": _normal(rng, shape), "y": _normal(rng, shape)}, {"a": a, "b": b},
                 {"out": _float(shape)})
            for shape, (a, b) in zip(_elementwise_shapes(tiny), settings)]


def multiply_cases(tiny=False):
    rng = _rng("multiply")
    return [Case("multiply", _shape_label(shape), {"x": _normal(rng, shape), "y": _normal(rng, shape)},
                 {}, {"out": _float(shape)}) for shape in _elementwise_shapes(tiny)]


def rsqrt_cases(tiny=False):
    rng = _rng("rsqrt")
    return [Case("rsqrt", f"{_shape_label(shape)}-eps{eps:g}",
                 {"x": np.abs(_normal(rng, shape, 3.0))}, {"eps": eps}, {"out": _float(shape)})
            for shape, eps in zip(_elementwise_shapes(tiny), (1e-5, 1e-3, 1.0, 1e-5, 0.1))]


def _channel_input(rng, shape):
    """Values with a per-channel offset, so that a sum mixing channels shows."""
    return _normal(rng, shape) + np.arange(shape[1], dtype=np.float32).reshape(
        (1, shape[1]) + (1,) * (len(shape) - 2))


def channel_sum_cases(tiny=False):
    rng = _rng("channel_sum")
    return [Case("channel_sum", _shape_label(shape), {"x": _channel_input(rng, shape)}, {},
                 {"out": _float(shape[1:2])}) for shape in _channel_shapes(tiny)]


def channel_mean_cases(tiny=False):
    rng = _rng("channel_mean")
    return [Case("channel_mean", _shape_label(shape), {"x": _channel_input(rng, shape)}, {},
                 {"out": _float(shape[1:2])}) for shape in _channel_shapes(tiny)]


def channel_affine_cases(tiny=False):
    rng = _rng("channel_affine")
    return [Case("channel_affine", _shape_label(shape),
                 {"x": _normal(rng, shape), "scale": _normal(rng, shape[1:2]),
                  "shift": _normal(rng, shape[1:2])}, {}, {"out": _float(shape)})
            for shape in _channel_shapes(tiny)]


# ---- the layers past the tutorials (contract.LAYER_OPERATIONS) ------------------------------------
LEAKY_SLOPES = (0.01, 0.2, 0.0, -0.5, 1.5)
"""negative_slope per shape: PyTorch's and Keras' defaults, ReLU, a negative and a steep one."""
ELU_ALPHAS = (1.0, 0.5, 2.0, 1.0, 0.1)


def _smooth_input(rng, shape):
    """Normal numbers with some exact zeros and a few large magnitudes (exp overflow)."""
    values = _with_zeros(rng, shape)
    values.reshape(-1)[1::5] *= 30
    return values


def tanh_forward_cases(tiny=False):
    rng = _rng("tanh_forward")
    return [Case("tanh_forward", _shape_label(shape), {"x": _smooth_input(rng, shape)}, {},
                 {"out": _float(shape)}) for shape in _elementwise_shapes(tiny)]


def tanh_backward_cases(tiny=False):
    rng = _rng("tanh_backward")
    return [Case("tanh_backward", _shape_label(shape),
                 {"dout": _normal(rng, shape), "out": np.tanh(_normal(rng, shape))}, {},
                 {"dx": _float(shape)}) for shape in _elementwise_shapes(tiny)]


def _parametrised(op, parameter, values, backward):
    """Cases of an element-wise op with one scalar parameter, one value per shape."""
    rng = _rng(op)
    cases = []
    for shape, value in zip(ELEMENTWISE_SHAPES, values):
        arrays = {"x": _smooth_input(rng, shape)}
        outputs = {"out": _float(shape)}
        if backward:
            arrays["dout"], outputs = _normal(rng, shape), {"dx": _float(shape)}
        cases.append(Case(op, f"{_shape_label(shape)}-{parameter}{value}", arrays,
                          {parameter: value}, outputs))
    return cases


def _tiny_shapes(cases, tiny):
    return [case for case in cases if not tiny or
            tuple(next(iter(case.arrays.values())).shape) in TINY_ELEMENTWISE_SHAPES]


def leaky_relu_forward_cases(tiny=False):
    return _tiny_shapes(_parametrised("leaky_relu_forward", "negative_slope", LEAKY_SLOPES, False), tiny)


def leaky_relu_backward_cases(tiny=False):
    return _tiny_shapes(_parametrised("leaky_relu_backward", "negative_slope", LEAKY_SLOPES, True), tiny)


def elu_forward_cases(tiny=False):
    return _tiny_shapes(_parametrised("elu_forward", "alpha", ELU_ALPHAS, False), tiny)


def elu_backward_cases(tiny=False):
    return _tiny_shapes(_parametrised("elu_backward", "alpha", ELU_ALPHAS, True), tiny)


def gelu_forward_cases(tiny=False):
    return _tiny_shapes(_parametrised("gelu_forward", "approximate", (False, True) * 3, False), tiny)


def gelu_backward_cases(tiny=False):
    return _tiny_shapes(_parametrised("gelu_backward", "approximate", (False, True) * 3, True), tiny)


GLOBAL_POOL_SHAPES = ((1, 1, 1, 1), (2, 3, 5, 4), (1, 16, 9, 9), (3, 7, 1, 13), (2, 32, 28, 28))
TINY_GLOBAL_POOL_SHAPES = ((1, 1, 1, 1), (2, 3, 5, 4), (1, 2, 7, 3))


def _global_pool_shapes(tiny):
    return TINY_GLOBAL_POOL_SHAPES if tiny else GLOBAL_POOL_SHAPES


def global_avgpool2d_forward_cases(tiny=False):
    rng = _rng("global_avgpool2d_forward")
    return [Case("global_avgpool2d_forward", _shape_label(shape), {"x": _normal(rng, shape)}, {},
                 {"out": _float(shape[:2])}) for shape in _global_pool_shapes(tiny)]


def global_avgpool2d_backward_cases(tiny=False):
    rng = _rng("global_avgpool2d_backward")
    return [Case("global_avgpool2d_backward", _shape_label(shape), {"dout": _normal(rng, shape[:2])},
                 {}, {"dx": _float(shape)}) for shape in _global_pool_shapes(tiny)]


PADDED_POOL_SETTINGS = (
    dict(batch=1, channels=1, kernel=2, stride=2, padding=1),
    dict(batch=2, channels=3, kernel=3, stride=2, padding=1),
    dict(batch=2, channels=4, kernel=3, stride=1, padding=1, ties=True),
    dict(batch=3, channels=2, kernel=5, stride=3, padding=2),
    dict(batch=1, channels=5, kernel=4, stride=1, padding=2, ties=True),
    dict(batch=2, channels=8, kernel=2, stride=1, padding=1, ties=True, max_size=13),
)
"""Padded pooling geometries (padding up to kernel // 2, as PyTorch allows)."""


def _padded_pool_problems(tiny, topic):
    """Yield (label, setting, x shape, out shape, rng) for every padded pooling geometry."""
    rng = _rng(topic)
    for setting in PADDED_POOL_SETTINGS:
        setting = {"ties": False, "max_size": 10, **setting}
        batch, channels, max_size = setting["batch"], setting["channels"], setting["max_size"]
        if tiny:
            batch, channels, max_size = min(batch, TINY_BATCH), min(channels, TINY_CHANNELS), TINY_SIZE
        kernel, stride, padding = setting["kernel"], setting["stride"], setting["padding"]
        height, width = rng.integers(max(1, kernel - 2 * padding), max_size + 1, size=2)
        out_shape = (batch, channels, conv_output_size(height, kernel, stride, padding),
                     conv_output_size(width, kernel, stride, padding))
        label = (f"N{batch}-C{channels}-{height}x{width}-k{kernel}-s{stride}-p{padding}"
                 + ("-ties" if setting["ties"] else ""))
        yield label, setting, (batch, channels, height, width), out_shape, rng


def _window_arguments(setting):
    return {name: setting[name] for name in ("kernel", "stride", "padding")}


def padded_maxpool2d_forward_cases(tiny=False):
    return [Case("padded_maxpool2d_forward", label, {"x": _pool_input(rng, setting, x_shape)},
                 _window_arguments(setting), {"out": _float(out_shape), "argmax": (out_shape, np.int32)},
                 exact=("argmax",))
            for label, setting, x_shape, out_shape, rng in _padded_pool_problems(tiny, "padded_maxpool")]


def padded_avgpool2d_forward_cases(tiny=False):
    return [Case("padded_avgpool2d_forward", label, {"x": _pool_input(rng, setting, x_shape)},
                 _window_arguments(setting), {"out": _float(out_shape)})
            for label, setting, x_shape, out_shape, rng in _padded_pool_problems(tiny, "padded_avgpool")]


def padded_avgpool2d_backward_cases(tiny=False):
    return [Case("padded_avgpool2d_backward", label, {"dout": _normal(rng, out_shape)},
                 _window_arguments(setting), {"dx": _float(x_shape)})
            for label, setting, x_shape, out_shape, rng in
            _padded_pool_problems(tiny, "padded_avgpool_backward")]


DROPOUT2D_SHAPES = ((1, 1, 1), (2, 3, 20), (1, 16, 81), (5, 7, 3), (64, 32, 49))
TINY_DROPOUT2D_SHAPES = ((1, 1, 1), (2, 3, 20), (2, 3, 5))


def dropout2d_forward_cases(tiny=False):
    rng = _rng("dropout2d_forward")
    shapes = TINY_DROPOUT2D_SHAPES if tiny else DROPOUT2D_SHAPES
    return [Case("dropout2d_forward", f"{_shape_label(shape)}-p{p}-seed{seed}", {"x": _normal(rng, shape)},
                 {"p": p, "seed": seed}, {"out": _float(shape), "mask": _float(shape[:2])},
                 exact=("mask",))
            for shape, (p, seed) in zip(shapes, DROPOUT_SETTINGS)]


def dropout2d_backward_cases(tiny=False):
    rng = _rng("dropout2d_backward")
    shapes = TINY_DROPOUT2D_SHAPES if tiny else DROPOUT2D_SHAPES
    cases = []
    for shape, (p, _) in zip(shapes, DROPOUT_SETTINGS):
        mask = np.where(rng.random(shape[:2]) >= p, 1 / (1 - p), 0).astype(np.float32)
        cases.append(Case("dropout2d_backward", f"{_shape_label(shape)}-p{p}",
                          {"dout": _normal(rng, shape), "mask": mask}, {}, {"dx": _float(shape)}))
    return cases


# ---- training operations (contract.TRAINING_OPERATIONS) ------------------------------------------
def _weights_for(rng, batch, index):
    """None (unweighted) for every other problem, else positive weights with a zero among them."""
    if index % 2 == 0:
        return None
    weights = rng.uniform(0.0, 3.0, batch).astype(np.float32)
    weights[0] = 0.0
    return weights


def _loss_cases(op, make_target, values_of=lambda values: values, tiny=False):
    cases = []
    for index, (label, shape, values, rng) in enumerate(_row_problems(tiny, op)):
        weights = _weights_for(rng, shape[0], index)
        arrays = {list(parameters(op))[0]: values_of(values), parameters(op)[1]: make_target(rng, shape),
                  "weights": weights}
        grad = parameters(op)[3]
        cases.append(Case(op, label + ("-weighted" if weights is not None else ""), arrays, {},
                          {grad: _float(shape), "stats": _float((2,))}))
    return cases


def _smoothed_targets(rng, shape):
    one_hot = np.eye(shape[1], dtype=np.float32)[rng.integers(0, shape[1], shape[0])]
    return (one_hot * 0.9 + 0.1 / shape[1]).astype(np.float32)


def _binary_targets(rng, shape):
    return rng.integers(0, 2, shape).astype(np.float32)


def _labels(rng, shape):
    return rng.integers(0, shape[1], shape[0]).astype(np.int32)


def _log_softmax_rows(values):
    z = values.astype(np.float64) - values.max(axis=1, keepdims=True)
    return (z - np.log(np.exp(z).sum(axis=1, keepdims=True))).astype(np.float32)


def softmax_cross_entropy_soft_cases(tiny=False):
    return _loss_cases("softmax_cross_entropy_soft", _smoothed_targets, tiny=tiny)


def mse_loss_weighted_cases(tiny=False):
    return _loss_cases("mse_loss_weighted", _smoothed_targets, tiny=tiny)


def binary_cross_entropy_cases(tiny=False):
    # probabilities with exact 0 and 1 among them (the logs clamp at -100)
    def probabilities(values):
        probs = np.exp(-np.logaddexp(0.0, -values.astype(np.float64))).astype(np.float32)
        probs.reshape(-1)[:2] = (0.0, 1.0)[:probs.size]
        return probs
    return _loss_cases("binary_cross_entropy", _binary_targets, probabilities, tiny=tiny)


def binary_cross_entropy_with_logits_cases(tiny=False):
    return _loss_cases("binary_cross_entropy_with_logits", _binary_targets, tiny=tiny)


def nll_loss_cases(tiny=False):
    return _loss_cases("nll_loss", _labels, _log_softmax_rows, tiny=tiny)


def log_softmax_forward_cases(tiny=False):
    return [Case("log_softmax_forward", label, {"x": values}, {}, {"out": _float(shape)})
            for label, shape, values, _ in _row_problems(tiny, "log_softmax_forward")]


def log_softmax_backward_cases(tiny=False):
    return [Case("log_softmax_backward", label,
                 {"dout": _normal(rng, shape), "out": _log_softmax_rows(values)}, {},
                 {"dx": _float(shape)})
            for label, shape, values, rng in _row_problems(tiny, "log_softmax_backward")]


def rmsprop_update_cases(tiny=False):
    rng = _rng("rmsprop_update")
    cases = []
    for shape, (scalars, steps, warm, centered, momentum) in zip(OPTIMIZER_SHAPES * 2, (
            ({"lr": 0.01, "alpha": 0.99, "eps": 1e-8}, 1, False, False, False),
            ({"lr": 0.01, "alpha": 0.9, "eps": 1e-8, "momentum": 0.9}, 3, False, True, True),
            ({"lr": 0.1, "alpha": 0.5, "eps": 1e-6}, 3, True, True, False),
            ({"lr": 0.05, "alpha": 0.99, "eps": 1e-8, "momentum": 0.5}, 2, True, False, True))):
        scalars = {"momentum": 0.0, **scalars}
        names = ("square_avg",) + (("grad_avg",) if centered else ()) + \
            (("momentum_buffer",) if momentum else ())
        absent = tuple(name for name in ("grad_avg", "momentum_buffer") if name not in names)
        case = _optimizer_case("rmsprop_update", rng, shape, names, scalars, steps, warm,
                               absent=absent)
        if case.arrays["grad_avg"] is not None:  # keep sa >= ga*ga, as a real run does
            case.arrays["square_avg"] += case.arrays["grad_avg"] ** 2
        case.label += ("-centered" if centered else "")
        cases.append(case)
    return cases


# ---- batch normalisation ------------------------------------------------------------------------
def _batchnorm_shapes(tiny):
    return [shape for shape in _channel_shapes(tiny) if np.prod(shape) // shape[1] >= 2]


def batchnorm_forward_cases(tiny=False):
    rng = _rng("batchnorm_forward")
    cases = []
    for number, shape in enumerate(_batchnorm_shapes(tiny)):
        channels = shape[1:2]
        for training, momentum, xhat in ((True, 0.1, True), (False, 0.1, True), (False, 0.1, False),
                                         (True, 1.0 / (number + 1), True)):
            arrays = {"x": _channel_input(rng, shape) * 3, "weight": _normal(rng, channels),
                      "bias": _normal(rng, channels), "running_mean": _normal(rng, channels),
                      "running_var": np.abs(_normal(rng, channels)) + 0.5}
            outputs = {"out": _float(shape), "xhat": _float(shape) if xhat else None,
                       "invstd": _float(channels)}
            cases.append(Case("batchnorm_forward", f"{_shape_label(shape)}-"
                              f"{'train' if training else 'eval'}-m{momentum:g}"
                              f"{_skipped_label(outputs)}", arrays,
                              {"momentum": momentum, "eps": 1e-5 if number % 2 else 1e-3,
                               "training": training}, outputs,
                              updated=("running_mean", "running_var")))
    return cases


def batchnorm_backward_cases(tiny=False):
    rng = _rng("batchnorm_backward")
    cases = []
    for number, shape in enumerate(_batchnorm_shapes(tiny)):
        channels = shape[1:2]
        for training in (True, False):
            xhat = _normal(rng, shape)
            arrays = {"dout": _normal(rng, shape), "xhat": xhat, "weight": _normal(rng, channels),
                      "invstd": np.abs(_normal(rng, channels)) + 0.1}
            outputs = {"dx": _float(shape) if number != 1 else None, "dweight": _float(channels),
                       "dbias": _float(channels)}
            cases.append(Case("batchnorm_backward", f"{_shape_label(shape)}-"
                              f"{'train' if training else 'eval'}" + _skipped_label(outputs),
                              arrays, {"training": training}, outputs))
    return cases


# ---- index ------------------------------------------------------------------------------------------
def cases(op: str, tiny: bool = False) -> list[Case]:
    """The sample cases of contract operation ``op`` (very small shapes when ``tiny``)."""
    return globals()[f"{op}_cases"](tiny)
