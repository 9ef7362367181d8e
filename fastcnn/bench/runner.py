"""Running benchmark groups: check every competitor against the reference, then time them
side by side, and turn the timings into report rows.

A group is one benchmark (a kernel at a zoo shape, a training step, an
inference pass) and its competitors: fastcnn backends, the naive loops (on a
few samples, reported per sample) and PyTorch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from . import kernels, models
from .check import BenchmarkCheckError, compare
from .timing import Competitor, Trial, paired_speedup, race

TORCH = "torch"
NAIVE = "naive"
REFERENCE = "numpy"


@dataclass
class Group:
    """One benchmark. ``make(competitor, n)`` returns a fresh :class:`Trial` at batch ``n``
    for a backend name or "torch"; ``flops(n)`` counts one call (None: memory-bound)."""

    kind: str                      # "kernel", "train" or "infer"
    name: str                      # "pytorch_cnn.conv2 forward", "pytorch_cnn"
    label: str                     # what it computes, in words
    make: Callable[[str, int], Trial]
    flops: Callable[[int], float | None]
    batched: bool = True           # False: one call is not a batch (the optimizer update)
    batch: int | None = None       # a batch size of its own (None: the plan's)
    min_batch: int = 1             # the smallest batch it runs at (the naive loops' too)
    _references: dict = field(default_factory=dict, repr=False)

    def reference(self, n: int) -> dict:
        """The NumPy backend's results at batch ``n`` (computed once)."""
        if n not in self._references:
            trial = self.make(REFERENCE, n)
            with trial.entered():
                trial.run()
            self._references[n] = trial.results()
        return self._references[n]

    def forget(self) -> None:
        """Drop the cached reference results (they can be large: im2col columns, activations)."""
        self._references.clear()

    def checked(self, competitor: str, n: int) -> Trial:
        """A trial of ``competitor`` whose first call's results match the reference."""
        trial = self.make(competitor, n)
        with trial.entered():
            trial.run()
            if trial.sync is not None:
                trial.sync()
        results = trial.results()
        if competitor == REFERENCE and n not in self._references:
            self._references[n] = results
        reference = self.reference(n)
        if competitor == TORCH:  # PyTorch has no im2col columns or workspace to compare
            reference = {key: value for key, value in reference.items() if key in results}
        compare(results, reference, f"{competitor} on {self.kind} {self.name} (batch {n})")
        if trial.after_check is not None:
            trial.after_check()
        return trial


def kernel_group(bench: kernels.KernelBench) -> Group:
    def make(competitor, n):
        if competitor == TORCH:
            return kernels.torch_trial(bench, n)
        return kernels.backend_trial(bench, competitor, n)

    return Group("kernel", bench.name, bench.label, make, bench.flops, batched=bench.needs_batch)


def model_group(name: str, mode: str, batch: int | None = None) -> Group:
    def make(competitor, n):
        if competitor == TORCH:
            return models.torch_model_trial(name, n, mode)
        return models.model_trial(name, competitor, n, mode)

    what = "training step (forward, loss, backward, optimizer update)" if mode == "train" \
        else "inference (forward pass)"
    return Group(mode, name, f"{name} {what}", make, lambda n: models.model_flops(name, n, mode),
                 batch=batch, min_batch=models.min_batch(name, mode))


@dataclass
class Plan:
    """Who runs and how long: competitor names, batch sizes, repeats and sample length."""

    competitors: list            # backend names, "naive", "torch"
    batch_size: int = 64
    infer_batch_size: int = 1000
    naive_batch_size: int = 1
    repeat: int = 5
    naive_repeat: int = 1
    min_time: float = 0.05
    budget: float | None = None   # seconds of timing per group before rounds stop (>= 3 rounds)
    threads: int = 1
    log: Callable[[str], None] = print


def run_group(group: Group, plan: Plan) -> list[dict]:
    """Check and time every competitor of ``group``; one row per competitor."""
    batch = group.batch or (plan.infer_batch_size if group.kind == "infer" else plan.batch_size)
    racers = []
    for name in plan.competitors:
        n = max(plan.naive_batch_size, group.min_batch) if (name == NAIVE and group.batched) \
            else batch
        start = time.perf_counter()
        trial = group.checked(name, n)
        racers.append(Competitor.of(name, n, trial, slow=(name == NAIVE),
                                    max_repeats=plan.naive_repeat if name == NAIVE else None))
        plan.log(f"  checked {name:<7} {group.kind} {group.name} in {time.perf_counter() - start:.2f} s")
    group.forget()
    start = time.perf_counter()
    race(racers, plan.repeat, plan.min_time, plan.budget)
    plan.log("  timed " + ", ".join(f"{racer.backend} {racer.median * 1e3:.3g} ms" for racer in racers)
             + f" per call (median of {len(racers[0].samples)} rounds, "
             f"{time.perf_counter() - start:.1f} s)")
    return rows_for(group, racers, plan)


def rows_for(group: Group, racers: list[Competitor], plan: Plan) -> list[dict]:
    rows = []
    for racer in racers:
        seconds = racer.median
        per_call = racer.batch if group.batched else 1
        flops = group.flops(racer.batch)
        row = {
            "kind": group.kind, "group": f"{group.kind} {group.name}", "name": group.name,
            "label": group.label, "backend": racer.backend, "extra_batch": group.batch is not None,
            "batch": racer.batch if group.batched else None, "threads": plan.threads,
            "seconds": seconds, "seconds_per_sample": seconds / per_call,
            "samples_per_s": per_call / seconds if group.batched else None,
            "calls_per_s": 1.0 / seconds, "repeats": len(racer.samples), "calls_per_repeat": racer.number,
            "samples": list(racer.samples),
            "gflops": flops / seconds / 1e9 if flops else None,
            "cpu_per_wall": racer.cpu_per_wall, "cpu_ratios": list(racer.cpu_ratios),
            "speedup_vs": {other.backend: paired_speedup(racer, other) for other in racers},
        }
        row["speedup_vs_naive"] = row["speedup_vs"].get(NAIVE)
        row["vs_torch"] = row["speedup_vs"].get(TORCH)
        rows.append(row)
    return rows


__all__ = ["BenchmarkCheckError", "Group", "Plan", "kernel_group", "model_group", "run_group"]
