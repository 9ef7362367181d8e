"""Time the numba backend against the NumPy reference at pytorch_cnn's shapes (batch 64).

    python benchmarks/bench_numba_kernels.py [--repeat 30] [--batch 64] [--skip-subprocess]

pytorch_cnn: conv1 1->32 3x3 pad 1 on 28x28, maxpool 2, conv2 32->64 3x3 pad 1 on
14x14, maxpool 2, dense 3136->128, dense 128->10, softmax cross-entropy, Adam.
Prints four tables:

1. every kernel, numpy vs numba (best and median milliseconds of ``--repeat`` calls,
   the two backends interleaved so that machine noise hits both alike);
2. where the convolution GEMMs run: in the kernels' own threads (what the backend
   does: ``np.dot`` per sample on single-threaded SciPy BLAS) vs NumPy ``matmul``
   over the batch between the jitted im2col/epilogue kernels, on one and on every
   BLAS thread;
3. start-up: import fastcnn -> first conv forward+backward done (and a whole
   training step's kernels), in a fresh process with an empty NUMBA_CACHE_DIR
   (compiles) and again in a second process (loads the cache);
4. threads: conv1+conv2 forward+backward with numba and BLAS thread counts
   pinned by environment variables in subprocesses (oversubscription check).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types

import numpy as np

CHILD_FLAG = "--child"


def timed(functions: dict, repeat: int) -> dict:
    """{name: (best ms, median ms)} of ``repeat`` interleaved calls, after one warm-up call each."""
    for function in functions.values():
        function()
    samples = {name: [] for name in functions}
    for _ in range(repeat):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            samples[name].append((time.perf_counter() - start) * 1e3)
    return {name: (min(values), statistics.median(values)) for name, values in samples.items()}


# ---- the network's buffers and kernel calls --------------------------------------------------
def network_buffers(batch: int, seed: int = 0) -> dict:
    """Inputs, parameters, gradients and output buffers of one pytorch_cnn step, float32."""
    rng = np.random.default_rng(seed)

    def normal(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def empty(*shape, dtype=np.float32):  # an output buffer; finite, so no NaN slow paths
        return np.zeros(shape, dtype)

    return {
        "x": normal(batch, 1, 28, 28), "labels": rng.integers(0, 10, batch).astype(np.int32),
        "w1": normal(32, 1, 3, 3, scale=0.3), "b1": normal(32, scale=0.1),
        "cols1": empty(batch, 9, 784), "y1": empty(batch, 32, 28, 28),
        "d1": normal(batch, 32, 28, 28),
        "p1": empty(batch, 32, 14, 14), "a1": empty(batch, 32, 14, 14, dtype=np.int32),
        "dp1": empty(batch, 32, 14, 14),
        "w2": normal(64, 32, 3, 3, scale=0.06), "b2": normal(64, scale=0.1),
        "cols2": empty(batch, 288, 196), "dcols2": empty(batch, 288, 196),
        "y2": empty(batch, 64, 14, 14), "d2": normal(batch, 64, 14, 14),
        "p2": empty(batch, 64, 7, 7), "a2": empty(batch, 64, 7, 7, dtype=np.int32),
        "dp2": normal(batch, 64, 7, 7),
        "w3": normal(128, 3136, scale=0.02), "b3": normal(128, scale=0.02),
        "y3": empty(batch, 128), "d3": normal(batch, 128), "dx3": empty(batch, 3136),
        "w4": normal(10, 128, scale=0.1), "b4": normal(10, scale=0.1),
        "y4": empty(batch, 10), "d4": normal(batch, 10), "dx4": empty(batch, 128),
        "mask": empty(batch, 128), "stats": empty(2),
        "dw1": empty(32, 1, 3, 3), "db1": empty(32), "dw2": empty(64, 32, 3, 3), "db2": empty(64),
        "dw3": empty(128, 3136), "db3": empty(128), "dw4": empty(10, 128), "db4": empty(10),
        "m3": np.zeros((128, 3136), np.float32), "v3": np.zeros((128, 3136), np.float32),
    }


def kernel_calls(k, b: dict) -> dict:
    """{row name: zero-argument call} for backend module ``k`` on buffers ``b``.

    Backward calls fold the activation into their dout in place: repeating that is
    harmless for timing (ReLU's fold is idempotent), so no copy is timed with them."""
    v = types.SimpleNamespace(**b)
    flat = v.p2.reshape(len(v.x), -1)
    adam = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, step=3)
    return {
        "conv1 forward (+relu)":
            lambda: k.conv2d_forward(v.x, v.w1, v.b1, 1, 1, "relu", v.cols1, v.y1),
        "conv1 backward (no dx)":
            lambda: k.conv2d_backward(v.d1, v.y1, v.w1, v.cols1, 1, 1, "relu", None, v.dw1, v.db1,
                                      None),
        "conv2 im2col": lambda: k.im2col(v.p1, 3, 3, 1, 1, v.cols2),
        "conv2 col2im": lambda: k.col2im(v.cols2, 3, 3, 1, 1, v.dp1),
        "conv2 forward (+relu)":
            lambda: k.conv2d_forward(v.p1, v.w2, v.b2, 1, 1, "relu", v.cols2, v.y2),
        "conv2 backward":
            lambda: k.conv2d_backward(v.d2, v.y2, v.w2, v.cols2, 1, 1, "relu", v.dp1, v.dw2, v.db2,
                                      v.dcols2),
        "maxpool1 forward": lambda: k.maxpool2d_forward(v.y1, 2, 2, v.p1, v.a1),
        "maxpool1 backward": lambda: k.maxpool2d_backward(v.dp1, v.a1, v.d1),
        "maxpool2 forward": lambda: k.maxpool2d_forward(v.y2, 2, 2, v.p2, v.a2),
        "maxpool2 backward": lambda: k.maxpool2d_backward(v.dp2, v.a2, v.d2),
        "avgpool2 forward": lambda: k.avgpool2d_forward(v.y2, 2, 2, v.p2),
        "avgpool2 backward": lambda: k.avgpool2d_backward(v.dp2, 2, 2, v.d2),
        "dense 3136->128 forward (+relu)": lambda: k.dense_forward(flat, v.w3, v.b3, "relu", v.y3),
        "dense 3136->128 backward":
            lambda: k.dense_backward(v.d3, v.y3, flat, v.w3, "relu", v.dx3, v.dw3, v.db3),
        "dense 128->10 forward": lambda: k.dense_forward(v.y3, v.w4, v.b4, None, v.y4),
        "dense 128->10 backward":
            lambda: k.dense_backward(v.d4, v.y4, v.y3, v.w4, None, v.dx4, v.dw4, v.db4),
        "relu forward 64x32x28x28": lambda: k.relu_forward(v.d1, v.y1),
        "dropout forward 64x128": lambda: k.dropout_forward(v.y3, 0.5, 1234, v.dx4, v.mask),
        "softmax cross-entropy 64x10":
            lambda: k.softmax_cross_entropy(v.y4, v.labels, v.d4, v.stats),
        "adam 128x3136": lambda: k.adam_update(v.w3, v.dw3, v.m3, v.v3, **adam),
        "sgd 128x3136": lambda: k.sgd_update(v.w3, v.dw3, v.m3, 1e-3, 0.9),
    }


def training_step(k, b: dict) -> None:
    """One pytorch_cnn step's kernels in order (forward, loss, backward, Adam on the big weight)."""
    for name, call in kernel_calls(k, b).items():
        if "im2col" not in name and "col2im" not in name and "avgpool" not in name:
            call()


# ---- 1. kernels ---------------------------------------------------------------------------------
def kernel_table(repeat: int, batch: int) -> list:
    from fastcnn.kernels import numba_backend, numpy_backend

    rows = []
    buffers = {name: network_buffers(batch) for name in ("numpy", "numba")}
    calls = {name: kernel_calls(module, buffers[name])
             for name, module in (("numpy", numpy_backend), ("numba", numba_backend))}
    for row in calls["numpy"]:
        result = timed({"numpy": calls["numpy"][row], "numba": calls["numba"][row]}, repeat)
        rows.append((row, *result["numpy"], *result["numba"]))
    steps = timed({"numpy": lambda: training_step(numpy_backend, buffers["numpy"]),
                   "numba": lambda: training_step(numba_backend, buffers["numba"])},
                  max(3, repeat // 3))
    label = "one step: rows above but im2col/col2im/avgpool"
    rows.append((label, *steps["numpy"], *steps["numba"]))
    return rows


def print_kernel_table(rows: list) -> None:
    print(f"{'kernel':<48}{'numpy best':>11}{'median':>9}{'numba best':>11}{'median':>9}"
          f"{'speed-up':>9}")
    for name, numpy_best, numpy_median, numba_best, numba_median in rows:
        print(f"{name:<48}{numpy_best:>11.3f}{numpy_median:>9.3f}{numba_best:>11.3f}"
              f"{numba_median:>9.3f}{numpy_median / numba_median:>8.1f}x")


# ---- 2. where the GEMM runs ----------------------------------------------------------------------
def gemm_table(repeat: int, batch: int) -> list:
    """Conv forward and backward three ways: the backend (each thread runs its samples'
    im2col, np.dot on single-threaded SciPy BLAS and epilogue), and the earlier design,
    parallel im2col/epilogue kernels around one NumPy matmul over the batch, with NumPy's
    BLAS on one thread and on every thread."""
    from threadpoolctl import threadpool_limits

    from fastcnn.kernels import numba_backend
    from fastcnn.kernels.numba_cpu import conv, epilogue
    from fastcnn.kernels.numba_cpu.scalars import RELU

    def rows(a):
        return a.reshape(a.shape[0], a.shape[1], -1)

    def between_forward(x, w, bias, cols, out):
        numba_backend.im2col(x, 3, 3, 1, 1, cols)
        np.matmul(w.reshape(w.shape[0], -1), cols, out=rows(out))
        epilogue.bias_activation(rows(out), bias, RELU)

    def between_backward(dout, out, w, cols, dx, dw, db, dcols):
        epilogue.activation_grad_bias_sum(rows(dout), rows(out), RELU, db)
        products = np.matmul(rows(dout), cols.transpose(0, 2, 1))
        products.sum(axis=0, out=dw.reshape(dw.shape[0], -1))
        np.matmul(w.reshape(w.shape[0], -1).T, rows(dout), out=dcols)
        numba_backend.col2im(dcols, 3, 3, 1, 1, dx)

    def with_blas(threads, function):
        def run():
            with threadpool_limits(threads, user_api="blas"):
                function()
        return run

    cores = os.cpu_count() or 1
    b = network_buffers(batch)
    table = []
    for layer, x, w, bias, cols, out, dout, dx, dw, db, dcols in (
            ("conv1", b["x"], b["w1"], b["b1"], b["cols1"], b["y1"], b["d1"], np.zeros_like(b["x"]),
             b["dw1"], b["db1"], np.zeros_like(b["cols1"])),
            ("conv2", b["p1"], b["w2"], b["b2"], b["cols2"], b["y2"], b["d2"], b["dp1"], b["dw2"],
             b["db2"], b["dcols2"])):
        table.append((layer, timed({
            "kernel fwd": lambda: numba_backend.conv2d_forward(x, w, bias, 1, 1, "relu", cols, out),
            "matmul 1 fwd": with_blas(1, lambda: between_forward(x, w, bias, cols, out)),
            "matmul all fwd": with_blas(cores, lambda: between_forward(x, w, bias, cols, out)),
            "kernel bwd": lambda: numba_backend.conv2d_backward(dout, out, w, cols, 1, 1, "relu",
                                                                dx, dw, db, dcols),
            "matmul 1 bwd": with_blas(1, lambda: between_backward(dout, out, w, cols, dx, dw, db,
                                                                  dcols)),
            "matmul all bwd": with_blas(cores, lambda: between_backward(dout, out, w, cols, dx, dw,
                                                                        db, dcols)),
        }, repeat)))
    return table


COLUMNS = ("kernel fwd", "matmul 1 fwd", "matmul all fwd", "kernel bwd", "matmul 1 bwd",
           "matmul all bwd")


def print_gemm_table(rows: list) -> None:
    print(f"{'layer':<8}" + "".join(f"{name:>20}" for name in COLUMNS)
          + "   (median ms, best in brackets; kernel: GEMMs in the kernel threads; matmul N: "
          "NumPy matmul between kernels on N BLAS threads)")
    for layer, r in rows:
        print(f"{layer:<8}" + "".join(f"{r[key][1]:>11.3f} ({r[key][0]:>6.3f})" for key in COLUMNS))


# ---- 3 and 4. subprocesses ----------------------------------------------------------------------
def child_startup() -> dict:
    """Seconds from ``import fastcnn`` to the first conv forward+backward, and to one whole step."""
    b = network_buffers(64)
    start = time.perf_counter()
    import fastcnn  # noqa: F401  (the import is part of what is timed)
    from fastcnn.kernels import numba_backend as k

    kernel_calls(k, b)["conv2 forward (+relu)"]()
    kernel_calls(k, b)["conv2 backward"]()
    conv_done = time.perf_counter()
    training_step(k, b)
    step_done = time.perf_counter()
    return {"conv": conv_done - start, "step": step_done - start}


def child_threads(repeat: int) -> dict:
    """Median ms of conv1+conv2 forward+backward with this process's thread settings."""
    import numba

    from fastcnn.kernels import numba_backend as k

    b = network_buffers(64)
    calls = kernel_calls(k, b)
    names = ("conv1 forward (+relu)", "conv1 backward (no dx)", "conv2 forward (+relu)",
             "conv2 backward")

    def convs():
        for name in names:
            calls[name]()

    best, median = timed({"convs": convs}, repeat)["convs"]
    return {"best": best, "median": median, "numba_threads": numba.get_num_threads(),
            "layer": numba.threading_layer()}


THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMBA_NUM_THREADS", "OMP_WAIT_POLICY", "NUMBA_THREADING_LAYER",
                    "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def run_child(mode: str, env_updates: dict, repeat: int = 0) -> dict:
    """Run this script's ``mode`` in a fresh interpreter: this environment without thread
    settings, plus ``env_updates``; returns the JSON it prints."""
    env = {key: value for key, value in os.environ.items() if key not in THREAD_VARIABLES}
    env.update(env_updates)
    output = subprocess.run([sys.executable, __file__, CHILD_FLAG, mode, str(repeat)], env=env,
                            capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def startup_table() -> list:
    rows = []
    with tempfile.TemporaryDirectory(prefix="fastcnn-numba-bench-") as cache:
        env = {"NUMBA_CACHE_DIR": cache}
        rows.append(("first run, empty cache (compiles)", run_child("startup", env)))
        rows.append(("second run, cache warm", run_child("startup", env)))
        rows.append(("third run, cache warm", run_child("startup", env)))
    return rows


THREAD_SETTINGS = (
    ("default (numba: all cores, BLAS: all cores; GOMP_SPINCOUNT=300 from fastcnn)", {}),
    ("OPENBLAS_NUM_THREADS=1", {"OPENBLAS_NUM_THREADS": "1"}),
    ("NUMBA_NUM_THREADS=1", {"NUMBA_NUM_THREADS": "1"}),
    ("both 1", {"OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}),
    ("OMP_WAIT_POLICY=passive", {"OMP_WAIT_POLICY": "passive"}),
    ("NUMBA_THREADING_LAYER=workqueue", {"NUMBA_THREADING_LAYER": "workqueue"}),
)


def threads_table(repeat: int) -> list:
    return [(label, run_child("threads", env, repeat)) for label, env in THREAD_SETTINGS]


# ---- main ---------------------------------------------------------------------------------------
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30, help="timed calls per row (default 30)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--skip-subprocess", action="store_true", help="only tables 1 and 2")
    args = parser.parse_args(argv)

    import numba

    print(f"numba {numba.__version__}, numpy {np.__version__}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}, batch {args.batch}, {args.repeat} calls per row\n")
    print("1. kernels, milliseconds per call")
    print_kernel_table(kernel_table(args.repeat, args.batch))
    print("\n2. convolution GEMMs: in the kernels' threads (backend) vs NumPy matmul between kernels")
    print_gemm_table(gemm_table(args.repeat, args.batch))
    if args.skip_subprocess:
        return
    print("\n3. start-up, seconds: import fastcnn -> first conv2 forward+backward / whole step")
    for label, r in startup_table():
        print(f"{label:<40}{r['conv']:>8.2f} s{r['step']:>8.2f} s")
    print("\n4. threads: conv1+conv2 forward+backward, ms (median / best)")
    for label, r in threads_table(args.repeat):
        print(f"{label:<46}{r['median']:>8.2f}{r['best']:>8.2f}   numba threads "
              f"{r['numba_threads']}, layer {r['layer']}")
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == CHILD_FLAG:
        mode, repeat = sys.argv[2], int(sys.argv[3])
        print(json.dumps(child_startup() if mode == "startup" else child_threads(repeat)))
    else:
        main()
