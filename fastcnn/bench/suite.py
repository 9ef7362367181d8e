"""The whole benchmark run behind ``fastcnn bench``: which groups, which competitors,
how long, and the result document (JSON-ready dict) the reports are made from."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .. import zoo
from ..backend import MODULES, available_backends, get_backend, use_backend
from ..errors import BackendError
from . import environment
from .kernels import LAYERS, kernel_benches
from .peak import matmul_peak
from .runner import NAIVE, TORCH, Plan, kernel_group, model_group, run_group

PRESETS = {
    # repeat rounds, seconds per timed sample, seconds of timing per group (then >= 3 rounds),
    # naive batch, naive rounds, matmul size, extras
    # felt: epochs over the first N MNIST images (None: all 60,000) and rounds of them
    "quick": dict(repeat=5, min_time=0.05, budget=4.0, naive_batch_size=1, naive_repeat=1,
                  peak_size=1536, extras=False, extra_batch_sizes=(), felt_images=12800,
                  felt_rounds=1),
    "full": dict(repeat=11, min_time=0.2, budget=90.0, naive_batch_size=2, naive_repeat=3,
                 peak_size=2048, extras=True, extra_batch_sizes=(16, 256), felt_images=None,
                 felt_rounds=3),
}
"""``--quick`` (the default, pytorch_cnn's kernels, inference of pytorch_cnn) and ``--full``
(every zoo kernel and model, plus start-up, compile time, memory and the step breakdown)."""


def default_competitors() -> list[str]:
    """Every backend that runs here for real (not the CUDA simulator), then PyTorch if installed."""
    names = []
    for status in available_backends():
        if not status.available:
            continue
        with use_backend(status.name):
            if getattr(get_backend(), "SIMULATED", False):
                continue
        names.append(status.name)
    if environment.torch_module() is not None:
        names.append(TORCH)
    # fastest first: the round-robin order rotates anyway, the log reads better
    order = {"cuda": 0, "numba": 1, "cython": 2, "numpy": 3, TORCH: 4, NAIVE: 5}
    return sorted(names, key=lambda name: order.get(name, 9))


def check_competitors(names: list[str]) -> list[str]:
    """Validate user-given names (backends, "torch"); raise with the choices otherwise."""
    known = set(MODULES) | {TORCH}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise BackendError(f"unknown backend(s) {', '.join(unknown)}; choose from "
                           f"{', '.join(sorted(known))}")
    if TORCH in names and environment.torch_module() is None:
        raise BackendError("PyTorch is not installed: pip install torch (or leave 'torch' out)")
    for name in names:
        if name != TORCH:
            with use_backend(name):
                pass  # raises BackendError saying why it cannot run here
    return list(dict.fromkeys(names))


@dataclass
class BenchConfig:
    mode: str = "quick"
    competitors: list | None = None   # None: default_competitors()
    models: list | None = None        # None: every zoo model
    batch_size: int = 64
    infer_batch_size: int = 1000
    threads: int | None = None        # None: every core this process may use
    repeat: int | None = None         # None: the preset's
    extras: bool | None = None        # start-up/memory/breakdown; None: the preset's
    kernels: bool = True
    extra_batch_sizes: list | None = None  # more training batch sizes; None: the preset's
    felt: bool = True                 # whole fit() epochs, busy neighbours, the first run
    overrides: dict = field(default_factory=dict)

    def preset(self) -> dict:
        values = dict(PRESETS[self.mode])
        if self.repeat is not None:
            values["repeat"] = self.repeat
            values["naive_repeat"] = min(values["naive_repeat"], self.repeat)
        if self.extras is not None:
            values["extras"] = self.extras
        if self.extra_batch_sizes is not None:
            values["extra_batch_sizes"] = tuple(self.extra_batch_sizes)
        values.update(self.overrides)
        return values


def run_benchmarks(config: BenchConfig, log=print) -> dict:
    """Run every group of ``config``; returns the result document (see :mod:`.report`)."""
    started = time.perf_counter()
    preset = config.preset()
    threads = config.threads or environment.cpu_count()
    competitors = check_competitors(config.competitors) if config.competitors else default_competitors()
    models = config.models or zoo.names()
    for name in models:
        if name not in zoo.names() and name != LAYERS:
            raise ValueError(f"unknown model {name!r}; the zoo has: {', '.join(zoo.names())} "
                             f"(and {LAYERS!r}: the kernels of the layers no zoo model uses)")
    zoo_models = [name for name in models if name != LAYERS]
    environment.set_threads(threads)
    with use_backend("numpy"):  # BLAS's own thread setting, not a compiled backend's limit
        blas = environment.blas_libraries()
    plan = Plan(competitors, config.batch_size, config.infer_batch_size, preset["naive_batch_size"],
                preset["repeat"], preset["naive_repeat"], preset["min_time"], preset["budget"],
                threads, log)
    log(f"fastcnn bench --{config.mode}: {', '.join(competitors)}; {threads} threads; "
        f"batch {config.batch_size} (naive {preset['naive_batch_size']}), inference batch "
        f"{config.infer_batch_size}")
    cpu = environment.machine()
    ticks = environment.cpu_ticks()
    log(f"CPU: {cpu['cpu']}, {cpu['cores']} cores, ISA {' '.join(cpu['isa']) or 'unknown'}; "
        f"BLAS: {environment.describe_blas(blas, cpu['openblas_coretype'])} (numba and cython "
        "call theirs on 1 thread "
        "from each kernel thread)")
    own_gemm = environment.own_gemm()
    log(f"float32 GEMMs: {environment.describe_gemm(own_gemm)}")
    peak = matmul_peak(preset["peak_size"], repeats=preset["repeat"], min_time=preset["min_time"])
    log(f"matmul peak (NumPy float32 {peak['size']}^3, {threads} threads): {peak['gflops']:.1f} GFLOP/s")

    # whole models first: they are the headline, measured before the process has run anything else
    infer_models = zoo_models if config.mode == "full" else [
        name for name in zoo_models if name == "pytorch_cnn"]
    groups = [model_group(name, "train") for name in zoo_models]
    groups += [model_group(name, "infer") for name in infer_models or zoo_models[:1]]
    # the same training steps at other batch sizes: where fastcnn wins and where it loses
    groups += [model_group(name, "train", size) for size in preset["extra_batch_sizes"]
               if size != config.batch_size for name in zoo_models]
    if config.kernels:
        # --quick alone runs pytorch_cnn's kernels; with --models, every kernel of those models
        quick_kernels = config.mode == "quick" and config.models is None
        groups += [kernel_group(bench) for bench in kernel_benches(quick_kernels, config.models)]
    rows = []
    for index, group in enumerate(groups, 1):
        log(f"[{index}/{len(groups)}] {group.kind} {group.name}: {group.label}")
        rows += run_group(group, plan)
    for row in rows:
        row["peak_share"] = row["gflops"] / peak["gflops"] if row["gflops"] else None

    document = {
        "mode": config.mode, "competitors": competitors, "models": models, "threads": threads,
        "batch_size": config.batch_size, "infer_batch_size": config.infer_batch_size,
        "naive_batch_size": preset["naive_batch_size"], "repeat": preset["repeat"],
        "min_time": preset["min_time"], "budget": preset["budget"],
        "naive_repeat": preset["naive_repeat"], "machine": environment.machine(),
        "extra_batch_sizes": list(preset["extra_batch_sizes"]),
        "versions": environment.versions(), "blas": blas, "own_gemm": own_gemm, "peak": peak, "rows": rows,
    }
    felt_racers = [name for name in competitors if name in ("numba", "cython", TORCH)]
    if config.felt and zoo_models and TORCH in felt_racers and len(felt_racers) >= 2:
        from .felt import felt_benchmarks

        subset = f"the first {preset['felt_images']:,}" if preset["felt_images"] else "all 60,000"
        log(f"what users feel: whole fit() epochs on {subset} MNIST training images, beside "
            "nothing, a busy loop at nice 19 and at nice 0, a second training; the first run ...")
        document["felt"] = felt_benchmarks(felt_racers, threads, preset["felt_images"],
                                           preset["felt_rounds"], log=log)
    if preset["extras"] and zoo_models:
        document.update(_extras(competitors, zoo_models, threads, config.batch_size, preset, log))
    document["seconds"] = time.perf_counter() - started
    document["machine"]["load_average_end"] = environment.load_average()
    document["machine"]["steal_share"] = environment.steal_share(ticks, environment.cpu_ticks())
    return document


def _extras(competitors, models, threads, batch, preset, log) -> dict:
    """Start-up, compile time and memory (subprocesses) and the step breakdown."""
    from .breakdown import training_breakdown
    from .processes import ratios_across_processes
    from .startup import measure_startup

    extras = {}
    racers = [name for name in competitors if name in ("numba", "cython", TORCH)]
    if len(racers) >= 2:
        count = 3
        log(f"headline ratios in {count} fresh processes ({', '.join(racers)}) ...")
        groups = [(kind, name) for name in models for kind in ("train", "infer")]
        extras["processes"] = {"count": count, "ratios": ratios_across_processes(
            racers, threads, processes=count, batch=batch, groups=groups, log=log)}
    frameworks = [name for name in competitors if name in ("numba", "cython", TORCH)]
    if frameworks:
        log("start-up, compile time and memory (one subprocess each) ...")
        extras["startup"] = measure_startup(frameworks, threads, repeats=3, batch=batch, log=log)
    fast = [name for name in ("numba", "cython") if name in competitors]
    if fast:
        log(f"training step breakdown ({fast[0]} vs torch) ...")
        extras["breakdown"] = training_breakdown(fast[0], batch, steps=10, repeat=preset["repeat"],
                                                 min_time=preset["min_time"])
    return extras
