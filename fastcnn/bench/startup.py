"""Start-up, compile time and memory of training, each measured in a fresh subprocess.

One child process per measurement runs :data:`CHILD` (``python -c``): it
imports a framework (fastcnn with one backend, or PyTorch), builds
pytorch_cnn, and trains it at batch 64, reporting

* ``ready_s``: from ``import fastcnn`` (or ``import torch``) until the first
  training step is done, i.e. start-up including any compilation;
* ``first_step_s`` and ``step_s`` (median of the later steps), so
  ``first_step_s - step_s`` is what the first step pays for compiling/loading;
* memory: ``baseline`` is the resident set (VmRSS) right after the imports;
  after two warm-up steps the kernel's peak-RSS counter (VmHWM) is reset
  (``/proc/self/clear_refs``, Linux >= 4.0) and ``peak`` is VmHWM after the
  timed steps. ``training_mib = peak - baseline`` is what training pytorch_cnn
  needs on top of the imported libraries: weights, gradients, optimizer state,
  activations, workspaces, compiled code. Where the counter cannot be reset,
  ``ru_maxrss`` (peak since start) is used instead and ``method`` says so.

A fresh ``NUMBA_CACHE_DIR`` gives the first-ever compile time; a second child
on the same directory gives the cached start-up.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = r'''
import json, os, resource, statistics, sys, time
framework, threads, batch, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
import numpy as np

def status_kib(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None

def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False

rng = np.random.default_rng(0)
x = rng.random((batch, 1, 28, 28), dtype=np.float32)
y = rng.integers(0, 10, batch)
start = time.perf_counter()
if framework == "torch":
    import torch
    from torch import nn
    torch.set_num_threads(threads)
    baseline = status_kib("VmRSS")
    imported = time.perf_counter()
    net = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(net(xt), yt)
        loss.backward()
        optimizer.step()
        return loss.item()
else:
    import fastcnn
    fastcnn.set_backend(framework)
    module = fastcnn.get_backend()
    if hasattr(module, "set_num_threads"):
        module.set_num_threads(threads)
    baseline = status_kib("VmRSS")
    imported = time.perf_counter()
    model = fastcnn.zoo.get("pytorch_cnn", seed=0)
    model.compile(fastcnn.optim.Adam(lr=1e-3), "cross_entropy")
    model.optimizer.bind(model.parameters())
    xb, yb = module.to_device(x), module.to_device(y.astype(np.int32))

    def step():
        return float(module.to_host(model.train_step(xb, yb))[0])

step()
ready = time.perf_counter()
step()
second = time.perf_counter()
reset = reset_peak()
times = []
for _ in range(steps):
    t = time.perf_counter()
    step()
    times.append(time.perf_counter() - t)
peak = status_kib("VmHWM") if reset else None
method = "VmHWM reset after warm-up" if peak is not None else "ru_maxrss since start"
if peak is None:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("RESULT " + json.dumps({
    "framework": framework, "threads": threads, "batch": batch,
    "import_s": imported - start, "ready_s": ready - start, "first_step_s": ready - imported,
    "second_step_s": second - ready, "step_s": statistics.median(times),
    "baseline_mib": baseline / 1024 if baseline else None, "peak_mib": peak / 1024,
    "training_mib": (peak - baseline) / 1024 if baseline else None, "method": method}))
'''


def run_python(code: str, args: list, what: str, env: dict | None = None,
               timeout: float = 900) -> dict:
    """Run ``code`` in a fresh interpreter (``python -c code *args``) and return the JSON
    it printed on a line starting "RESULT ", plus ``process_s`` (wall time incl. start-up)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=timeout)
    elapsed = time.perf_counter() - start
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"the {what} child failed (exit {done.returncode}): " + " | ".join(tail))
    result = json.loads(lines[-1][len("RESULT "):])
    if isinstance(result, dict):
        result["process_s"] = elapsed
        if done.returncode != 0:
            result["warning"] = f"the child process exited with status {done.returncode} after reporting"
    return result


def run_child(framework: str, threads: int, batch: int = 64, steps: int = 10,
              cache_dir: str | None = None, timeout: float = 900) -> dict:
    """Train pytorch_cnn in a fresh interpreter with ``framework`` (a backend name or
    "torch"); returns the child's figures (see the module docstring)."""
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    env.pop("FASTCNN_BACKEND", None)
    return run_python(CHILD, [framework, threads, batch, steps], f"{framework} start-up", env, timeout)


def _median_of(runs: list[dict]) -> dict:
    """Median of every numeric field over repeated runs (the rest from the first run;
    warnings from any run)."""
    merged = dict(runs[0])
    warnings = sorted({run["warning"] for run in runs if "warning" in run})
    if warnings:
        merged["warning"] = "; ".join(warnings)
    for key, value in runs[0].items():
        if isinstance(value, float):
            merged[key] = statistics.median(run[key] for run in runs)
    merged["runs"] = len(runs)
    return merged


def measure_startup(frameworks: list[str], threads: int, repeats: int = 3, batch: int = 64,
                    log=print) -> dict:
    """Start-up, first-compile and memory figures for each framework.

    For numba: ``fresh`` (a new, empty NUMBA_CACHE_DIR: the first-ever compile) and
    ``cached`` (a second process on that directory). Cached runs of all frameworks
    are interleaved round-robin and their medians kept.
    """
    results = {"compile": None, "cached": {}}
    with tempfile.TemporaryDirectory(prefix="fastcnn-bench-numba-") as cache_dir:
        if "numba" in frameworks:
            log("  numba first-ever compile (empty NUMBA_CACHE_DIR) ...")
            results["compile"] = run_child("numba", threads, batch, cache_dir=cache_dir)
        runs = {name: [] for name in frameworks}
        for _ in range(repeats):
            for name in frameworks:
                try:
                    runs[name].append(run_child(name, threads, batch, cache_dir=cache_dir))
                except RuntimeError as exc:
                    runs[name].append({"error": str(exc)})
        for name in frameworks:
            good = [run for run in runs[name] if "error" not in run]
            results["cached"][name] = _median_of(good) if good else runs[name][0]
            if good:
                log(f"  {name}: ready {results['cached'][name]['ready_s']:.2f} s after import, "
                    f"training memory {results['cached'][name]['training_mib']:.0f} MiB")
    return results
