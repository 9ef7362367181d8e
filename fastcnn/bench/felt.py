"""What users feel, side by side: whole fit() epochs of pytorch_cnn on real MNIST against
an idiomatic PyTorch loop (randperm, zero_grad, forward, cross_entropy, backward, step),
the same beside one busy process at nice 19 and at nice 0 and beside a second training
of the same kind, and a first-ever run (an empty kernel cache) from interpreter start
to the end of the README's main command, against the same job as a PyTorch script.

Every run is a fresh subprocess (nothing else in it: no thread pool of another
competitor), which reports its own wall and CPU time; the host's steal time is read
around it. A round counts only where the host was quiet: steal below STEAL_LIMIT and
PyTorch's CPU/wall in its quiet epoch at least CPU_WALL_SHARE of its threads
(issue 21's rule); otherwise its figures are printed but marked as not counting.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from . import environment

from .environment import CPU_WALL_SHARE, STEAL_LIMIT  # a quiet round: the bar's quiet host

SCENARIOS = ("quiet", "nice 19", "nice 0", "two at once")
"""Beside nothing, a busy loop at nice 19, one at nice 0, a second training of its kind."""

_FASTCNN_EPOCH = r"""
import json, sys, time
import fastcnn
from fastcnn import zoo
from fastcnn.datasets import load_mnist
backend, images, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fastcnn.set_num_threads(threads)
fastcnn.set_backend(backend)
x, y = load_mnist("train", download=False, progress=False)
x, y = x[:images], y[:images]
model = zoo.get("pytorch_cnn", seed=0)
model.compile(optimizer="adam", loss="cross_entropy", lr=1e-3)
warm = 128 + images % 64  # a short last batch too: its kernels may differ
model.fit(x[:warm], y[:warm], epochs=1, batch_size=64, verbose=0)  # kernels loaded, buffers made
print("ready", flush=True)
sys.stdin.readline()  # the parent starts every process of a scenario at once
wall, cpu = time.perf_counter(), time.process_time()
model.fit(x, y, epochs=1, batch_size=64, verbose=0)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
print(json.dumps({"backend": fastcnn.backend_name(), "wall": wall, "cpu": cpu,
                  "source": fastcnn.__file__}))
"""

_TORCH_SETUP = r"""
import gzip, json, sys, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def network():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))


def epoch(model, optimizer, x, y, batch=64):
    model.train()
    order = torch.randperm(len(x))
    for first in range(0, len(x), batch):
        rows = order[first:first + batch]
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x[rows]), y[rows])
        loss.backward()
        optimizer.step()
"""

_TORCH_EPOCH = _TORCH_SETUP + r"""
paths, images, threads = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(0)
x = torch.from_numpy(idx(paths["train_images"])[:images].astype(np.float32) / 255).unsqueeze(1)
y = torch.from_numpy(idx(paths["train_labels"])[:images].astype(np.int64))
model = network()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
warm = 128 + images % 64
epoch(model, optimizer, x[:warm], y[:warm])
print("ready", flush=True)
sys.stdin.readline()
wall, cpu = time.perf_counter(), time.process_time()
epoch(model, optimizer, x, y)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
print(json.dumps({"backend": "torch", "wall": wall, "cpu": cpu}))
"""

_TORCH_FIRST_RUN = _TORCH_SETUP + r"""
paths, images = json.loads(sys.argv[1]), int(sys.argv[2])
torch.manual_seed(0)
x = torch.from_numpy(idx(paths["train_images"])[:images].astype(np.float32) / 255).unsqueeze(1)
y = torch.from_numpy(idx(paths["train_labels"])[:images].astype(np.int64))
xt = torch.from_numpy(idx(paths["test_images"]).astype(np.float32) / 255).unsqueeze(1)
yt = torch.from_numpy(idx(paths["test_labels"]).astype(np.int64))
model = network()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
epoch(model, optimizer, x, y)
model.eval()
with torch.no_grad():
    correct = sum((model(xt[i:i + 1000]).argmax(1) == yt[i:i + 1000]).sum().item()
                  for i in range(0, len(xt), 1000))
print(f"test accuracy {correct / len(xt):.4f}")
"""


def mnist_paths() -> dict:
    """The local MNIST files (gzipped IDX) the PyTorch scripts read."""
    from ..datasets.loaders import dataset_folder, get_spec, locate

    spec = get_spec("mnist")
    folder = dataset_folder(spec, None)
    return {f"{split}_{part}": str(locate(spec, split, part, folder, download=False,
                                         progress=False))
            for split in ("train", "test") for part in ("images", "labels")}


def _command(competitor: str, images: int, threads: int, paths: dict) -> list[str]:
    if competitor == "torch":
        return [sys.executable, "-c", _TORCH_EPOCH, json.dumps(paths), str(images), str(threads)]
    return [sys.executable, "-c", _FASTCNN_EPOCH, competitor, str(images), str(threads)]


def _child_env(**extra) -> dict:
    from ..warmup import OFF, SETTING

    # a named backend never defers; the epoch runs on whatever cache this process has
    return dict(os.environ, **{SETTING: OFF}, **extra)


def busy_loop(nice: int) -> subprocess.Popen:
    """A Python busy loop at ``nice`` (the caller kills it)."""
    return subprocess.Popen([sys.executable, "-c", f"import os\nos.nice({nice})\nwhile True: pass"])


def _epochs_at_once(commands: list[list[str]], env: dict, cwd: str | None) -> list[dict]:
    """Starts every command, waits until each has warmed up, releases them together and
    returns their reports."""
    processes = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=_child_env(**env),
                                  cwd=cwd)
                 for command in commands]
    try:
        for process in processes:
            line = process.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"a benchmark epoch failed to start: {line}"
                                   f"{process.stderr.read()[-2000:]}")
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        reports = []
        for process in processes:
            out, err = process.communicate(timeout=3600)
            if process.returncode:
                raise RuntimeError(f"a benchmark epoch failed: {err[-2000:]}")
            reports.append(json.loads(out.strip().splitlines()[-1]))
        return reports
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()


def timed_epoch(competitor: str, scenario: str, images: int, threads: int, paths: dict,
                env: dict | None = None, cwd: str | None = None) -> dict:
    """One epoch of ``competitor`` (a backend or "torch") in ``scenario``: seconds per
    epoch (the mean of the two in "two at once"), its CPU/wall, the host's steal, and
    (fastcnn) the package that ran. ``env``: more environment for the training process;
    ``cwd``: its folder (``python -c`` imports from there first: another source tree)."""
    command = _command(competitor, images, threads, paths)
    neighbour = None
    if scenario.startswith("nice"):
        neighbour = busy_loop(int(scenario.split()[1]))
    ticks = environment.cpu_ticks()
    try:
        reports = _epochs_at_once([command, command] if scenario == "two at once" else [command],
                                  env or {}, cwd)
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()
    steal = environment.steal_share(ticks, environment.cpu_ticks())
    wall = statistics.mean(report["wall"] for report in reports)
    return {"competitor": competitor, "backend": reports[0]["backend"], "scenario": scenario,
            "seconds": wall, "cpu_per_wall": statistics.mean(r["cpu"] / r["wall"] for r in reports),
            "steal": steal, "images": images, "source": reports[0].get("source")}


def first_run(images: int | None, paths: dict, log=print) -> dict:
    """The README's main command on a fresh install (an empty numba cache, ``auto``), from
    interpreter start to its end, against the same job as a PyTorch script (train one
    epoch, then classify the 10,000 test images). ``images``: the first N training
    images only (None: all 60,000)."""
    cache = tempfile.mkdtemp(prefix="fastcnn-first-run-")
    env = {key: value for key, value in os.environ.items()
           if key not in ("FASTCNN_BACKEND", "FASTCNN_WARMUP")}
    env["NUMBA_CACHE_DIR"] = cache
    command = [sys.executable, "-m", "fastcnn", "train", "--model", "pytorch_cnn", "--dataset",
               "mnist", "--epochs", "1"] + (["--limit", str(images)] if images else [])
    try:
        ticks, start = environment.cpu_ticks(), time.perf_counter()
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
        fastcnn_seconds = time.perf_counter() - start
        if result.returncode:
            raise RuntimeError(f"the first-run command failed: {result.stderr[-2000:]}")
        output = result.stdout + result.stderr
        backend = re.search(r"with the (\w+) backend", output)
        note = next((line for line in output.splitlines() if line.startswith("fastcnn: ")), "")
        warming = re.search(r"\(pid (\d+), nice 19", note)
        if warming:  # the background fill of the temporary cache: not needed any more
            _end_process_group(int(warming.group(1)))
        start = time.perf_counter()
        torch = subprocess.run([sys.executable, "-c", _TORCH_FIRST_RUN, json.dumps(paths),
                                str(images or 60000)], capture_output=True, text=True,
                               timeout=3600)
        torch_seconds = time.perf_counter() - start
        if torch.returncode:
            raise RuntimeError(f"the PyTorch first-run script failed: {torch.stderr[-2000:]}")
        steal = environment.steal_share(ticks, environment.cpu_ticks())
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    log(f"  first run: fastcnn {fastcnn_seconds:.1f} s ({backend.group(1) if backend else '?'}), "
        f"PyTorch script {torch_seconds:.1f} s")
    return {"command": " ".join(command[2:]), "images": images or 60000,  # fastcnn train ...
            "fastcnn_seconds": fastcnn_seconds, "torch_seconds": torch_seconds,
            "backend": backend.group(1) if backend else None, "note": note, "steal": steal,
            "ratio": torch_seconds / fastcnn_seconds}


def _end_process_group(pid: int) -> None:
    import signal

    try:
        os.killpg(pid, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def felt_benchmarks(competitors: list[str], threads: int, images: int | None, rounds: int,
                    scenarios=SCENARIOS, log=print) -> dict:
    """Every scenario for every competitor among numba, cython and torch, ``rounds``
    times, interleaved (round r runs the competitors in a rotated order); then the first
    run. ``images``: epochs over the first N MNIST training images (None: all 60,000)."""
    racers = [name for name in ("numba", "cython", "torch") if name in competitors]
    paths = mnist_paths()
    count = images or 60000
    runs = []
    for index in range(rounds):
        for scenario in scenarios:
            order = racers[index % len(racers):] + racers[:index % len(racers)]
            for racer in order:
                run = timed_epoch(racer, scenario, count, threads, paths)
                run["round"] = index
                runs.append(run)
                log(f"  round {index + 1}, {scenario}: {racer} {run['seconds']:.2f} s per epoch, "
                    f"CPU/wall {run['cpu_per_wall']:.2f}, steal {_share(run['steal'])}")
    counting = _quiet_rounds(runs, threads)
    return {"images": count, "threads": threads, "rounds": rounds, "runs": runs,
            "counting_rounds": counting, "first_run": first_run(images, paths, log)}


def _share(value) -> str:
    return "?" if value is None else f"{value:.1%}"


def _quiet_rounds(runs: list[dict], threads: int) -> list[int]:
    """Rounds in which the host was quiet (see the module's docstring)."""
    quiet = []
    for index in sorted({run["round"] for run in runs}):
        mine = [run for run in runs if run["round"] == index]
        steals = [run["steal"] for run in mine if run["steal"] is not None]
        torch = [run for run in mine if run["competitor"] == "torch" and run["scenario"] == "quiet"]
        if steals and max(steals) >= STEAL_LIMIT:
            continue
        if torch and torch[0]["cpu_per_wall"] < CPU_WALL_SHARE * threads:
            continue
        quiet.append(index)
    return quiet


def felt_table(felt: dict) -> str:
    """Markdown: median seconds per epoch per scenario and competitor (counting rounds
    only, or every round marked as not counting), ratios to PyTorch, and the first run."""
    from .report import render

    counting = felt["counting_rounds"]
    rounds = counting or sorted({run["round"] for run in felt["runs"]})
    racers = list(dict.fromkeys(run["competitor"] for run in felt["runs"]))
    scenarios = list(dict.fromkeys(run["scenario"] for run in felt["runs"]))

    def median(racer, scenario, key="seconds"):
        values = [run[key] for run in felt["runs"] if run["competitor"] == racer
                  and run["scenario"] == scenario and run["round"] in rounds]
        return statistics.median(values) if values else None

    rows = []
    for scenario in scenarios:
        torch = median("torch", scenario)
        quiet_self = {racer: median(racer, "quiet") for racer in racers}
        for racer in racers:
            seconds = median(racer, scenario)
            rows.append([scenario, racer, f"{seconds:.2f}" if seconds else "-",
                         f"{median(racer, scenario, 'cpu_per_wall'):.2f}" if seconds else "-",
                         f"{torch / seconds:.2f}x" if torch and seconds and racer != "torch" else "",
                         f"{seconds / quiet_self[racer]:.2f}x" if seconds and quiet_self[racer]
                         and scenario != "quiet" else ""])
    lines = [render(["beside", "competitor", "s per epoch", "CPU/wall", "vs PyTorch",
                     "vs its quiet epoch"], rows, markdown=True), ""]
    lines.append(f"One fit() epoch of pytorch_cnn (batch 64, Adam, shuffled) over the first "
                 f"{felt['images']:,} MNIST training images, {felt['threads']} threads, each in a "
                 "fresh process after a two-batch warm-up; PyTorch: the idiomatic loop. Medians of "
                 + (f"{len(counting)} quiet round(s) of {felt['rounds']}." if counting else
                    f"all {felt['rounds']} round(s): **NONE COUNTS** (steal >= 1% or PyTorch's "
                    "quiet CPU/wall below 0.8 x threads: a starved host)."))
    first = felt["first_run"]
    lines += ["", f"**First-ever run** (`{first['command']}`, an empty kernel cache, from "
              f"interpreter start to the end): fastcnn {first['fastcnn_seconds']:.1f} s on "
              f"{first['backend']}, the same job as a PyTorch script (train one epoch, classify "
              f"the 10,000 test images) {first['torch_seconds']:.1f} s: fastcnn takes "
              f"{1 / first['ratio']:.2f}x PyTorch's time, {first['ratio']:.2f}x its speed "
              f"(host steal {_share(first['steal'])})."]
    if first["note"]:
        lines.append(f"It said: `{first['note']}`")
    return "\n".join(lines)
