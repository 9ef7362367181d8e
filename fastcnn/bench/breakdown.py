"""Where the time of a training step goes: per kernel for a fastcnn backend, per operator
for PyTorch, in the same categories.

fastcnn: every contract function of the backend module is wrapped with a timer
while steps run (layers look the function up on each call). PyTorch:
``torch.profiler``, top-level CPU events (forward operators, autograd backward
nodes, the optimizer step). Each side's wall time of a step in this
instrumented loop is split into its categories plus "framework overhead"
(the rest: Python, dispatch, allocation); the milliseconds shown are those
shares of the *uninstrumented* median step time, timed round-robin beforehand.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict

from ..backend import get_backend, use_backend
from ..kernels.contract import COMPOSED, OPERATIONS
from . import models
from .environment import torch_module
from .timing import Competitor, race

CATEGORIES = ("conv forward", "conv backward", "activation forward", "activation backward",
              "maxpool forward", "maxpool backward", "dense forward", "dense backward", "dropout",
              "loss", "optimizer", "other operators", "framework overhead")

_FASTCNN = {
    "conv2d_forward": "conv forward", "conv2d_backward": "conv backward",
    "im2col": "conv forward", "col2im": "conv backward",
    "relu_forward": "activation forward", "sigmoid_forward": "activation forward",
    "softmax_forward": "activation forward", "relu_backward": "activation backward",
    "sigmoid_backward": "activation backward", "softmax_backward": "activation backward",
    "maxpool2d_forward": "maxpool forward", "maxpool2d_backward": "maxpool backward",
    "avgpool2d_forward": "maxpool forward", "avgpool2d_backward": "maxpool backward",
    "dense_forward": "dense forward", "dense_backward": "dense backward",
    "dropout_forward": "dropout", "dropout_backward": "dropout",
    "softmax_cross_entropy": "loss", "mse_loss": "loss",
    "sgd_update": "optimizer", "adam_update": "optimizer", "adadelta_update": "optimizer",
    "sgd_update_many": "optimizer", "adam_update_many": "optimizer",
    # fused: the convolution with the max pool that follows it (contract.FUSED)
    "conv2d_maxpool_forward": "conv forward", "conv2d_maxpool_backward": "conv backward",
    "conv2d_backward_from_input": "conv backward",
    "conv2d_maxpool_backward_from_input": "conv backward",
}

_TORCH = (  # (substring of a top-level profiler event name, category), first match wins
    ("ConvolutionBackward", "conv backward"), ("conv2d", "conv forward"),
    ("ReluBackward", "activation backward"), ("ThresholdBackward", "activation backward"),
    ("relu", "activation forward"), ("MaxPool2DWithIndicesBackward", "maxpool backward"),
    ("max_pool2d", "maxpool forward"), ("AddmmBackward", "dense backward"),
    ("TBackward", "dense backward"), ("linear", "dense forward"), ("MulBackward", "dropout"),
    ("dropout", "dropout"), ("NllLoss", "loss"), ("LogSoftmax", "loss"), ("cross_entropy", "loss"),
    ("Optimizer.step", "optimizer"),
)


def torch_category(event_name: str) -> str:
    for fragment, category in _TORCH:
        if fragment in event_name:
            return category
    return "other operators"


@contextlib.contextmanager
def timed_kernels(module):
    """Wrap every compute function of backend ``module`` with a timer while the block
    runs; yields {(operation, input shape): [seconds, calls]}."""
    totals = defaultdict(lambda: [0.0, 0])
    sync = getattr(module, "synchronize", None)
    originals = {op: getattr(module, op) for op in OPERATIONS + COMPOSED
                 if op not in ("to_device", "to_host", "empty", "zeros") and hasattr(module, op)}

    def wrap(op, function):
        def timed(*args):
            start = time.perf_counter()
            function(*args)
            if sync is not None:
                sync()
            entry = totals[(op, tuple(getattr(args[0], "shape", ())))]
            entry[0] += time.perf_counter() - start
            entry[1] += 1
        return timed

    try:
        for op, function in originals.items():
            setattr(module, op, wrap(op, function))
        yield totals
    finally:
        for op, function in originals.items():
            setattr(module, op, function)


def _shares(category_seconds: dict, wall: float) -> dict:
    """{category: share of the wall time}, the remainder as framework overhead."""
    shares = {category: seconds / wall for category, seconds in category_seconds.items()}
    shares["framework overhead"] = max(0.0, 1.0 - sum(shares.values()))
    return shares


def training_breakdown(backend: str, batch: int = 64, steps: int = 10, repeat: int = 5,
                       min_time: float = 0.2, model: str = "pytorch_cnn") -> dict:
    """Per-category milliseconds of one training step of ``model`` on ``backend`` and in PyTorch."""
    torch = torch_module()
    fast = models.model_trial(model, backend, batch, "train")
    with fast.entered():
        fast.run()
    reference = models.torch_model_trial(model, batch, "train") if torch is not None else None
    racers = [Competitor.of(backend, batch, fast)]
    if reference is not None:
        reference.run()
        reference.after_check()
        racers.append(Competitor.of("torch", batch, reference))
    race(racers, repeat, min_time)
    medians = {racer.backend: racer.median for racer in racers}

    with use_backend(backend):
        module = get_backend()
    walls = defaultdict(float)
    profiler = (torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
                if torch is not None else contextlib.nullcontext())
    with timed_kernels(module) as totals, profiler as profiled:
        for _ in range(steps):
            for racer in racers:
                walls[racer.backend] += racer.time_calls(1)

    fast_seconds = defaultdict(float)
    kernels = []
    for (op, shape), (seconds, calls) in sorted(totals.items(), key=lambda item: -item[1][0]):
        fast_seconds[_FASTCNN.get(op, "other operators")] += seconds
        kernels.append({"op": op, "input_shape": list(shape), "ms_per_step": seconds / steps * 1e3,
                        "calls_per_step": calls / steps})
    sides = {backend: _shares(fast_seconds, walls[backend])}
    if reference is not None:
        torch_seconds = defaultdict(float)
        for event in profiled.events():
            if event.cpu_parent is None:
                torch_seconds[torch_category(event.name)] += event.cpu_time_total * 1e-6
        sides["torch"] = _shares(torch_seconds, walls["torch"])
    table = []
    for category in CATEGORIES:
        row = {"category": category}
        for side, shares in sides.items():
            row[f"{side}_ms"] = shares.get(category, 0.0) * medians[side] * 1e3
            row[f"{side}_share"] = shares.get(category, 0.0)
        table.append(row)
    for entry in kernels:
        entry["share"] = entry["ms_per_step"] / (walls[backend] / steps * 1e3)
    return {"model": model, "batch": batch, "backend": backend, "steps": steps,
            "step_ms": {side: seconds * 1e3 for side, seconds in medians.items()},
            "categories": table, "kernels": kernels}
