"""Time every kernel of a pytorch_cnn training step (batch 64) on numpy, cython and numba.

    python benchmarks/bench_cython_kernels.py [--batch 64] [--repeat 30] [--threads N]

The network is the PyTorch MNIST tutorial's: conv 1->32 3x3 pad 1 + relu, maxpool 2,
conv 32->64 3x3 pad 1 + relu, maxpool 2, dense 3136->128 + relu, dense 128->10,
softmax cross-entropy, Adam. Each kernel is called with the buffers a training step
gives it; the last rows time one whole step made of those calls (forward, backward,
Adam on every parameter). Backends that cannot run here are left out with the reason.
Prints the fastest of --repeat calls in milliseconds and the ratios cython/numpy and cython/numba.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import fastcnn
from fastcnn.kernels.contract import conv_output_size

BACKENDS = ("numpy", "cython", "numba")
ADAM = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, step=1)
PARAMETERS = [f"{layer}.{part}" for layer in ("conv1", "conv2", "fc1", "fc2")
              for part in ("weight", "bias")]


def make_buffers(batch: int, seed: int = 0) -> dict:
    """Every array one training step touches, as host float32 (labels and argmax int32)."""
    rng = np.random.default_rng(seed)

    def normal(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    b = {"x": normal(batch, 1, 28, 28), "labels": rng.integers(0, 10, batch).astype(np.int32)}
    for name, (o, c, size) in {"conv1": (32, 1, 28), "conv2": (64, 32, 14)}.items():
        side = conv_output_size(size, 3, 1, 1)
        b[name + ".weight"] = normal(o, c, 3, 3, scale=0.1)
        b[name + ".bias"] = normal(o, scale=0.1)
        b[name + ".cols"] = np.empty((batch, c * 9, side * side), np.float32)
        b[name + ".dcols"] = np.empty_like(b[name + ".cols"])
        b[name + ".out"] = np.empty((batch, o, side, side), np.float32)
        b[name + ".dout"] = np.empty_like(b[name + ".out"])
        b[name + ".pool"] = np.empty((batch, o, side // 2, side // 2), np.float32)
        b[name + ".argmax"] = np.empty(b[name + ".pool"].shape, np.int32)
        b[name + ".dpool"] = normal(*b[name + ".pool"].shape)
    for name, (units, features) in {"fc1": (128, 3136), "fc2": (10, 128)}.items():
        b[name + ".weight"] = normal(units, features, scale=0.02)
        b[name + ".bias"] = normal(units, scale=0.02)
        b[name + ".out"] = np.empty((batch, units), np.float32)
        b[name + ".dout"] = normal(batch, units)
        b[name + ".dx"] = np.empty((batch, features), np.float32)
    b["conv2.dx"] = np.empty((batch, 32, 14, 14), np.float32)
    b["stats"] = np.empty(2, np.float32)
    for key in PARAMETERS:
        b["grad." + key] = normal(*b[key].shape, scale=0.01)
        b["m." + key] = np.zeros_like(b[key])
        b["v." + key] = np.zeros_like(b[key])
    return b


def kernel_calls(k, b) -> dict:
    """Name -> zero-argument callable running one kernel of the step on backend module k."""
    return {
        "conv1 forward (im2col+gemm+relu)": lambda: k.conv2d_forward(
            b["x"], b["conv1.weight"], b["conv1.bias"], 1, 1, "relu", b["conv1.cols"], b["conv1.out"]),
        "maxpool1 forward": lambda: k.maxpool2d_forward(
            b["conv1.out"], 2, 2, b["conv1.pool"], b["conv1.argmax"]),
        "conv2 forward (im2col+gemm+relu)": lambda: k.conv2d_forward(
            b["conv1.pool"], b["conv2.weight"], b["conv2.bias"], 1, 1, "relu", b["conv2.cols"],
            b["conv2.out"]),
        "  im2col conv2": lambda: k.im2col(b["conv1.pool"], 3, 3, 1, 1, b["conv2.cols"]),
        "maxpool2 forward": lambda: k.maxpool2d_forward(
            b["conv2.out"], 2, 2, b["conv2.pool"], b["conv2.argmax"]),
        "fc1 forward (+relu)": lambda: k.dense_forward(
            b["conv2.pool"].reshape(len(b["x"]), -1), b["fc1.weight"], b["fc1.bias"], "relu",
            b["fc1.out"]),
        "fc2 forward": lambda: k.dense_forward(
            b["fc1.out"], b["fc2.weight"], b["fc2.bias"], None, b["fc2.out"]),
        "softmax cross-entropy": lambda: k.softmax_cross_entropy(
            b["fc2.out"], b["labels"], b["fc2.dout"], b["stats"]),
        "fc2 backward": lambda: k.dense_backward(
            b["fc2.dout"], b["fc2.out"], b["fc1.out"], b["fc2.weight"], None, b["fc2.dx"],
            b["grad.fc2.weight"], b["grad.fc2.bias"]),
        "fc1 backward (relu)": lambda: k.dense_backward(
            b["fc2.dx"], b["fc1.out"], b["conv2.pool"].reshape(len(b["x"]), -1), b["fc1.weight"],
            "relu", b["fc1.dx"], b["grad.fc1.weight"], b["grad.fc1.bias"]),
        "maxpool2 backward": lambda: k.maxpool2d_backward(
            b["fc1.dx"].reshape(b["conv2.pool"].shape), b["conv2.argmax"], b["conv2.dout"]),
        "conv2 backward (relu, dx)": lambda: k.conv2d_backward(
            b["conv2.dout"], b["conv2.out"], b["conv2.weight"], b["conv2.cols"], 1, 1, "relu",
            b["conv2.dx"], b["grad.conv2.weight"], b["grad.conv2.bias"], b["conv2.dcols"]),
        "  col2im conv2": lambda: k.col2im(b["conv2.dcols"], 3, 3, 1, 1, b["conv2.dx"]),
        "maxpool1 backward": lambda: k.maxpool2d_backward(
            b["conv2.dx"], b["conv1.argmax"], b["conv1.dout"]),
        "conv1 backward (relu, no dx)": lambda: k.conv2d_backward(
            b["conv1.dout"], b["conv1.out"], b["conv1.weight"], b["conv1.cols"], 1, 1, "relu",
            None, b["grad.conv1.weight"], b["grad.conv1.bias"], None),
        "adam (all 8 parameters)": lambda: [
            k.adam_update(b[key], b["grad." + key], b["m." + key], b["v." + key], **ADAM)
            for key in PARAMETERS],
    }


def best_ms(call, repeat: int) -> float:
    """Fastest of ``repeat`` timed calls: the least disturbed by other load on the machine."""
    call()  # warm up (numba compiles on its first call)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def time_backend(name: str, batch: int, repeat: int) -> dict | None:
    """Kernel name -> best ms on backend ``name``; None when it cannot run here."""
    try:
        with fastcnn.use_backend(name):
            k = fastcnn.get_backend()
    except fastcnn.BackendError as exc:
        print(f"# {name}: skipped ({exc})")
        return None
    b = {key: k.to_device(value) for key, value in make_buffers(batch).items()}
    calls = kernel_calls(k, b)
    step = [call for label, call in calls.items() if not label.startswith(" ")]
    results = {label: best_ms(call, repeat) for label, call in calls.items()}
    results["TRAINING STEP (sum of calls)"] = sum(
        ms for label, ms in results.items() if not label.startswith(" "))
    results["TRAINING STEP (timed whole)"] = best_ms(lambda: [c() for c in step], repeat)
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for the compiled kernels (default: all cores)")
    args = parser.parse_args(argv)
    if args.threads:
        fastcnn.set_num_threads(args.threads)
    timings = {name: time_backend(name, args.batch, args.repeat) for name in BACKENDS}
    timings = {name: t for name, t in timings.items() if t is not None}
    labels = next(iter(timings.values()))
    header = f"{'kernel (batch %d)' % args.batch:36s}" + "".join(f"{n + ' ms':>11s}" for n in timings)
    ratios = [other for other in ("numpy", "numba") if other in timings and "cython" in timings]
    header += "".join(f"{'cy/' + other:>10s}" for other in ratios)
    print(header)
    print("-" * len(header))
    for label in labels:
        row = f"{label:36s}" + "".join(f"{timings[n][label]:11.3f}" for n in timings)
        row += "".join(f"{timings['cython'][label] / timings[o][label]:10.2f}" for o in ratios)
        print(row)


if __name__ == "__main__":
    main()
