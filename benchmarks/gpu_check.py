"""Check and time the cuda backend on a real GPU.

1. Conformance at real shapes: every kernel the pytorch_cnn model uses, and
   the rest of the contract, at that model's shapes (batch 64, 28x28), run on
   the cuda backend and on the NumPy reference and compared; then the shared
   conformance suite (``pytest tests/test_conformance.py -k cuda``), which on
   a GPU runs the full-size cases.
2. Throughput of one training step of the pytorch_cnn model built from the
   kernels directly (conv 1->32 3x3 pad 1 relu, maxpool 2, conv 32->64 3x3
   pad 1 relu, maxpool 2, dense 3136->128 relu, dense 128->10, softmax
   cross-entropy, Adam) at batch 64 and 256, beside the same model in PyTorch
   on the GPU when torch has CUDA.

    python benchmarks/gpu_check.py              # on a machine with an NVIDIA GPU
    python benchmarks/gpu_check.py --smoke      # tiny shapes; the CUDA simulator without a GPU
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class ModelShape:
    """The pytorch_cnn model's sizes (smaller for --smoke)."""

    size: int = 28
    channels: tuple = (32, 64)
    hidden: int = 128
    classes: int = 10

    @property
    def features(self) -> int:
        return self.channels[1] * (self.size // 4) ** 2


REAL = ModelShape()
SMOKE = ModelShape(size=8, channels=(2, 4), hidden=8)


def initial_parameters(shape: ModelShape, seed: int = 0) -> dict:
    """He-initialised parameters (host float32), the same for every backend."""
    rng = np.random.default_rng(seed)
    c1, c2 = shape.channels
    sizes = {"conv1.weight": (c1, 1, 3, 3), "conv2.weight": (c2, c1, 3, 3),
             "fc1.weight": (shape.hidden, shape.features), "fc2.weight": (shape.classes, shape.hidden)}
    params = {}
    for name, size in sizes.items():
        fan_in = int(np.prod(size[1:]))
        params[name] = (rng.standard_normal(size) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        params[name.replace("weight", "bias")] = np.zeros(size[0], np.float32)
    return params


def random_batch(shape: ModelShape, batch: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    x = rng.random((batch, 1, shape.size, shape.size), dtype=np.float32)
    labels = rng.integers(0, shape.classes, batch).astype(np.int32)
    return x, labels


class KernelTrainingStep:
    """The pytorch_cnn model's forward, backward and Adam step on one backend's kernels.

    Every buffer is allocated once here; ``run`` only launches kernels.
    """

    def __init__(self, backend, shape: ModelShape, batch: int, params: dict):
        self.backend, self.shape, self.batch = backend, shape, batch
        self.step_count = 0
        n, (c1, c2), s = batch, shape.channels, shape.size
        b = backend
        # a copy: the numpy backend's to_device returns its argument, and Adam updates in place
        self.params = {name: b.to_device(value.copy()) for name, value in params.items()}
        self.grads = {name: b.empty(value.shape) for name, value in params.items()}
        self.moments = {name: (b.zeros(value.shape), b.zeros(value.shape))
                        for name, value in params.items()}
        buffer_shapes = {
            "cols1": (n, 9, s * s), "a1": (n, c1, s, s), "p1": (n, c1, s // 2, s // 2),
            "cols2": (n, c1 * 9, (s // 2) ** 2), "a2": (n, c2, s // 2, s // 2),
            "p2": (n, c2, s // 4, s // 4), "h": (n, shape.hidden), "logits": (n, shape.classes),
            "dlogits": (n, shape.classes), "dh": (n, shape.hidden), "dp2": (n, c2, s // 4, s // 4),
            "da2": (n, c2, s // 2, s // 2), "dcols2": (n, c1 * 9, (s // 2) ** 2),
            "dp1": (n, c1, s // 2, s // 2), "da1": (n, c1, s, s), "stats": (2,)}
        self.buf = {name: b.empty(size) for name, size in buffer_shapes.items()}
        self.buf["arg1"] = b.empty(buffer_shapes["p1"], np.int32)
        self.buf["arg2"] = b.empty(buffer_shapes["p2"], np.int32)

    def run(self, x, labels) -> None:
        """One step on device arrays x (N, 1, S, S) and labels (N,) int32."""
        b, p, g, t = self.backend, self.params, self.grads, self.buf
        n = self.batch
        b.conv2d_forward(x, p["conv1.weight"], p["conv1.bias"], 1, 1, "relu", t["cols1"], t["a1"])
        b.maxpool2d_forward(t["a1"], 2, 2, t["p1"], t["arg1"])
        b.conv2d_forward(t["p1"], p["conv2.weight"], p["conv2.bias"], 1, 1, "relu", t["cols2"], t["a2"])
        b.maxpool2d_forward(t["a2"], 2, 2, t["p2"], t["arg2"])
        features = t["p2"].reshape(n, self.shape.features)
        b.dense_forward(features, p["fc1.weight"], p["fc1.bias"], "relu", t["h"])
        b.dense_forward(t["h"], p["fc2.weight"], p["fc2.bias"], None, t["logits"])
        b.softmax_cross_entropy(t["logits"], labels, t["dlogits"], t["stats"])
        b.dense_backward(t["dlogits"], t["logits"], t["h"], p["fc2.weight"], None,
                         t["dh"], g["fc2.weight"], g["fc2.bias"])
        b.dense_backward(t["dh"], t["h"], features, p["fc1.weight"], "relu",
                         t["dp2"].reshape(n, self.shape.features), g["fc1.weight"], g["fc1.bias"])
        b.maxpool2d_backward(t["dp2"], t["arg2"], t["da2"])
        b.conv2d_backward(t["da2"], t["a2"], p["conv2.weight"], t["cols2"], 1, 1, "relu",
                          t["dp1"], g["conv2.weight"], g["conv2.bias"], t["dcols2"])
        b.maxpool2d_backward(t["dp1"], t["arg1"], t["da1"])
        b.conv2d_backward(t["da1"], t["a1"], p["conv1.weight"], t["cols1"], 1, 1, "relu",
                          None, g["conv1.weight"], g["conv1.bias"], None)
        self.step_count += 1
        for name, param in p.items():
            m, v = self.moments[name]
            b.adam_update(param, g[name], m, v, 1e-3, 0.9, 0.999, 1e-8, self.step_count)

    def host(self, group: str) -> dict:
        """Host copies of 'params', 'grads' or 'buf'."""
        return {name: np.asarray(self.backend.to_host(a)) for name, a in getattr(self, group).items()}


# ---- 1. conformance at real shapes --------------------------------------------------
def relative_error(actual, expected) -> float:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.linalg.norm(actual - expected) / max(np.linalg.norm(expected), 1e-30))


def check_training_step(cuda, reference, shape: ModelShape, batch: int, tol=1e-4) -> list:
    """One training step on both backends from the same start: loss, gradients, parameters."""
    params = initial_parameters(shape)
    x, labels = random_batch(shape, batch)
    steps = {}
    for backend in (reference, cuda):
        step = KernelTrainingStep(backend, shape, batch, params)
        step.run(backend.to_device(x), backend.to_device(labels))
        steps[backend.name] = step
    want, got = steps[reference.name], steps[cuda.name]
    failures = []
    expected_stats, actual_stats = want.host("buf")["stats"], got.host("buf")["stats"]
    if abs(actual_stats[0] - expected_stats[0]) > tol * max(1.0, abs(expected_stats[0])) \
            or actual_stats[1] != expected_stats[1]:
        failures.append(f"training step stats {actual_stats} != {expected_stats}")
    for group in ("grads", "params"):
        expected, actual = want.host(group), got.host(group)
        for name in expected:
            error = relative_error(actual[name], expected[name])
            if not error <= tol:
                failures.append(f"training step {group}[{name}]: relative error {error:.2e}")
    return failures


def operation_checks(shape: ModelShape, batch: int):
    """(label, op, args, exact) for the contract operations at the model's shapes.

    args are host arrays and scalars; every array is an input or an output buffer.
    """
    rng = np.random.default_rng(2)
    c1, c2 = shape.channels
    s, n = shape.size // 2, batch

    def normal(*dims):
        return rng.standard_normal(dims).astype(np.float32)

    def positive(*dims):
        return rng.random(dims, dtype=np.float32) + np.float32(0.1)

    x, weight = normal(n, c1, s, s), normal(c2, c1, 3, 3) * np.float32(0.1)
    cols = np.zeros((n, c1 * 9, s * s), np.float32)
    pooled = (n, c2, s // 2, s // 2)
    argmax = np.zeros(pooled, np.int32)
    from fastcnn.kernels import numpy_backend
    numpy_backend.im2col(x, 3, 3, 1, 1, cols)
    numpy_backend.maxpool2d_forward(normal(n, c2, s, s), 2, 2, np.zeros(pooled, np.float32), argmax)
    features, units = shape.features, shape.hidden
    logits = normal(n, shape.classes)
    parameter = (units, features)
    return [
        ("im2col", "im2col", [x, 3, 3, 1, 1, np.zeros_like(cols)], False),
        ("col2im", "col2im", [normal(*cols.shape), 3, 3, 1, 1, np.zeros_like(x)], False),
        ("conv2d_forward", "conv2d_forward",
         [x, weight, normal(c2), 1, 1, "relu", np.zeros_like(cols), np.zeros((n, c2, s, s), np.float32)], False),
        ("conv2d_backward", "conv2d_backward",
         [normal(n, c2, s, s), positive(n, c2, s, s), weight, cols, 1, 1, "relu", np.zeros_like(x),
          np.zeros_like(weight), np.zeros(c2, np.float32), np.zeros_like(cols)], False),
        ("maxpool2d_forward", "maxpool2d_forward",
         [normal(n, c2, s, s), 2, 2, np.zeros(pooled, np.float32), np.zeros(pooled, np.int32)], True),
        ("maxpool2d_backward", "maxpool2d_backward",
         [normal(*pooled), argmax, np.zeros((n, c2, s, s), np.float32)], False),
        ("avgpool2d_forward", "avgpool2d_forward",
         [normal(n, c2, s, s), 2, 2, np.zeros(pooled, np.float32)], False),
        ("avgpool2d_backward", "avgpool2d_backward",
         [normal(*pooled), 2, 2, np.zeros((n, c2, s, s), np.float32)], False),
        ("dense_forward", "dense_forward",
         [normal(n, features), normal(*parameter) * np.float32(0.02), normal(units), "sigmoid",
          np.zeros((n, units), np.float32)], False),
        ("dense_backward", "dense_backward",
         [normal(n, units), positive(n, units), normal(n, features), normal(*parameter), "relu",
          np.zeros((n, features), np.float32), np.zeros(parameter, np.float32),
          np.zeros(units, np.float32)], False),
        ("relu_forward", "relu_forward", [normal(n, features), np.zeros((n, features), np.float32)], True),
        ("sigmoid_backward", "sigmoid_backward",
         [normal(n, units), positive(n, units), np.zeros((n, units), np.float32)], False),
        ("softmax_forward", "softmax_forward", [logits, np.zeros_like(logits)], False),
        ("softmax_backward", "softmax_backward",
         [normal(*logits.shape), positive(*logits.shape), np.zeros_like(logits)], False),
        ("softmax_cross_entropy", "softmax_cross_entropy",
         [logits, rng.integers(0, shape.classes, n).astype(np.int32), np.zeros_like(logits),
          np.zeros(2, np.float32)], False),
        ("mse_loss", "mse_loss", [logits, normal(*logits.shape), np.zeros_like(logits),
                                  np.zeros(2, np.float32)], False),
        ("dropout_forward", "dropout_forward",
         [normal(n, units), 0.5, 2**63 + 12345, np.zeros((n, units), np.float32),
          np.zeros((n, units), np.float32)], True),
        ("sgd_update", "sgd_update", [normal(*parameter), normal(*parameter), normal(*parameter),
                                      0.01, 0.9], False),
        ("adam_update", "adam_update", [normal(*parameter), normal(*parameter), normal(*parameter),
                                        positive(*parameter), 1e-3, 0.9, 0.999, 1e-8, 3], False),
        ("adadelta_update", "adadelta_update",
         [normal(*parameter), normal(*parameter), positive(*parameter), positive(*parameter),
          1.0, 0.9, 1e-6], False),
    ]


def check_operations(cuda, reference, shape: ModelShape, batch: int, tol=1e-5) -> list:
    """Each operation once on both backends; every array argument compared afterwards."""
    failures = []
    for label, op, args, exact in operation_checks(shape, batch):
        expected = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        on_device = [cuda.to_device(a) if isinstance(a, np.ndarray) else a for a in args]
        getattr(reference, op)(*expected)
        getattr(cuda, op)(*on_device)
        arrays = [(e, cuda.to_host(d)) for e, d in zip(expected, on_device) if isinstance(e, np.ndarray)]
        for index, (want, got) in enumerate(arrays):
            bad = (not np.array_equal(want, got)) if exact else relative_error(got, want) > tol
            if bad:
                failures.append(f"{label}: array argument {index} differs "
                                f"(relative error {relative_error(got, want):.2e})")
    return failures


def run_conformance_suite() -> bool:
    """The shared suite, full-size cases on a GPU; True when it passed."""
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "tests/test_conformance.py",
                             "-k", "cuda"], cwd=REPO)
    return result.returncode == 0


# ---- 2. throughput ----------------------------------------------------------------------
def time_kernels(cuda, shape: ModelShape, batch: int, warmup: int, steps: int) -> float:
    """Samples per second of KernelTrainingStep on the cuda backend."""
    step = KernelTrainingStep(cuda, shape, batch, initial_parameters(shape))
    x, labels = random_batch(shape, batch)
    x, labels = cuda.to_device(x), cuda.to_device(labels)
    for _ in range(warmup):  # the first calls compile every kernel
        step.run(x, labels)
    cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step.run(x, labels)
    cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def time_torch(shape: ModelShape, batch: int, warmup: int, steps: int):
    """Samples per second of the same model in PyTorch on the GPU, or None without torch CUDA."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    from torch import nn
    c1, c2 = shape.channels
    model = nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(shape.features, shape.hidden), nn.ReLU(), nn.Linear(shape.hidden, shape.classes),
    ).cuda()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    x, labels = random_batch(shape, batch)
    x, labels = torch.from_numpy(x).cuda(), torch.from_numpy(labels).long().cuda()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), labels).backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true",
                        help="tiny shapes and one timed step (runs under the CUDA simulator)")
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--steps", type=int, default=50, help="timed steps per batch size")
    parser.add_argument("--skip-suite", action="store_true",
                        help="do not run tests/test_conformance.py")
    args = parser.parse_args(argv)
    if args.smoke and not Path("/dev/nvidia0").exists():
        os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")   # before numba is imported

    import fastcnn
    from fastcnn.kernels import numpy_backend as reference

    with fastcnn.use_backend("cuda"):
        cuda = fastcnn.get_backend()
    shape, batches = (SMOKE, [2]) if args.smoke else (REAL, args.batches)
    warmup, steps = (1, 1) if args.smoke else (3, args.steps)
    print(f"cuda backend{' (simulator)' if cuda.SIMULATED else ''}; model {shape}")

    failures = check_operations(cuda, reference, shape, batches[0])
    failures += check_training_step(cuda, reference, shape, batches[0])
    for failure in failures:
        print("MISMATCH", failure)
    print(f"conformance at the model's shapes: {'FAILED' if failures else 'ok'}")
    suite_ok = args.smoke or args.skip_suite or run_conformance_suite()

    for batch in batches:
        ours = time_kernels(cuda, shape, batch, warmup, steps)
        line = f"batch {batch:4d}: fastcnn cuda {ours:10.0f} samples/s"
        theirs = None if args.smoke else time_torch(shape, batch, warmup, steps)
        if theirs is not None:
            line += f" | torch cuda {theirs:10.0f} samples/s ({ours / theirs:.2f}x)"
        print(line)
    return 0 if not failures and suite_ok else 1


if __name__ == "__main__":
    sys.exit(main())
