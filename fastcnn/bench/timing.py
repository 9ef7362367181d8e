"""Timing competitors side by side: calibration, round-robin repeats, medians, paired ratios.

The machine may be busy with other work, so absolute times drift. Competitors
are therefore timed in rounds: every round times each competitor once, in an
order rotated from round to round, and a ratio between two competitors is the
median of their per-round ratios (both measured under the same load).

Before each timed sample the process's other threads are let settle (:func:`settle`), and
the competitor runs untimed for WARM_UP seconds: a competitor's thread pool may still spin
on the cores after its last call, and for some milliseconds after it stops the next
competitor's threads may still share one core until the scheduler spreads them again.
Either way the next competitor pays for the one before (numba's numpy_mlp step, 0.28 ms
by itself, took 0.98-1.26 ms in samples right after the NumPy backend's, whose OpenBLAS
workers spin about 110 ms after a GEMM; after they stopped, its first calls still took
1.0-1.7 ms for about 10 ms, at CPU/wall 1.0; Zen 5). A user's process runs one engine,
not five, and fit() times the steady state.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, ContextManager


WARM_UP = 0.02
"""Seconds a (not slow) competitor runs untimed before each timed sample."""

SETTLE_LIMIT = 0.3
"""Seconds :func:`settle` waits at most (a thread that never stops running costs this)."""


def _others_running() -> bool:
    """True when a thread of this process other than the caller is running or runnable
    (Linux: state R in /proc/self/task/*/stat); False where that cannot be read."""
    me = threading.get_native_id()
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return False
    for task in tasks:
        if task == str(me):
            continue
        try:
            with open(f"/proc/self/task/{task}/stat") as f:
                stat = f.read()
        except OSError:  # the thread ended meanwhile
            continue
        if stat[stat.rindex(")") + 2:stat.rindex(")") + 3] == "R":
            return True
    return False


def settle(limit: float = SETTLE_LIMIT) -> float:
    """Waits until no other thread of this process runs (spinning thread pools of the
    competitor timed before), at most ``limit`` seconds; returns the seconds waited."""
    start = time.perf_counter()
    while _others_running() and time.perf_counter() - start < limit:
        time.sleep(0.001)
    return time.perf_counter() - start


def entered(context: Callable[[], ContextManager] | None) -> ContextManager:
    """``context()``, or a context that does nothing when there is none."""
    return context() if context is not None else contextlib.nullcontext()


@dataclass
class Trial:
    """A prepared implementation: ``run()`` processes one batch; after a run, ``results()``
    returns host arrays (name -> ndarray) to compare with the reference; ``sync()``
    waits for queued device work (None on CPU); ``after_check()`` runs once the
    results were checked, before timing; ``context()`` is entered around every run
    and timed sample, outside the timer (a fastcnn backend's ``use_backend``, which
    also applies that backend's BLAS thread policy)."""

    run: Callable[[], object]
    results: Callable[[], dict]
    sync: Callable[[], None] | None = None
    after_check: Callable[[], None] | None = None
    context: Callable[[], ContextManager] | None = None

    def entered(self) -> ContextManager:
        return entered(self.context)


@dataclass
class Competitor:
    """One implementation of a benchmark: ``run()`` processes one batch of ``batch`` samples.

    ``slow`` competitors (the naive loops) are timed one call per sample and in
    at most ``max_repeats`` rounds. ``samples`` holds seconds per call, one per round;
    ``cpu_ratios`` the process's CPU time over wall time in that round (every thread
    of the process counts: 2.0 means two cores busy throughout). Other competitors run
    untimed for ``warm_up`` seconds before each of their samples.
    """

    backend: str
    batch: int
    run: Callable[[], object]
    sync: Callable[[], None] | None = None
    slow: bool = False
    max_repeats: int | None = None
    warm_up: float = WARM_UP
    context: Callable[[], ContextManager] | None = None
    number: int = 1
    samples: list = field(default_factory=list)
    cpu_ratios: list = field(default_factory=list)
    last_cpu_ratio: float | None = None

    @classmethod
    def of(cls, backend: str, batch: int, trial: Trial, **options) -> "Competitor":
        return cls(backend, batch, trial.run, trial.sync, context=trial.context, **options)

    def time_calls(self, number: int) -> float:
        """Seconds per call, averaged over ``number`` back-to-back calls (inside ``context()``),
        once the other threads have settled and, unless ``slow``, after ``warm_up`` seconds
        of untimed calls."""
        with entered(self.context):
            settle()
            warm_until = time.perf_counter() + (0.0 if self.slow else self.warm_up)
            while time.perf_counter() < warm_until:
                self.run()
            if self.sync is not None:
                self.sync()
            start, cpu_start = time.perf_counter(), time.process_time()
            for _ in range(number):
                self.run()
            if self.sync is not None:
                self.sync()
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        self.last_cpu_ratio = cpu / wall if wall > 0 else None
        return wall / number

    def calibrate(self, min_time: float) -> None:
        """Choose how many calls one timed sample spans, so it lasts at least ``min_time``."""
        if self.slow:
            self.number = 1
            return
        once = self.time_calls(1)
        self.number = max(1, min(10_000, math.ceil(min_time / max(once, 1e-9))))

    @property
    def median(self) -> float:
        """Median seconds per call (one batch)."""
        return statistics.median(self.samples)

    @property
    def cpu_per_wall(self) -> float | None:
        """Median over the rounds of CPU time / wall time (None before any round)."""
        ratios = [ratio for ratio in self.cpu_ratios if ratio is not None]
        return statistics.median(ratios) if ratios else None


def race(competitors: list[Competitor], repeats: int, min_time: float,
         budget: float | None = None, min_rounds: int = 3) -> None:
    """Time every competitor ``repeats`` times, round-robin, filling ``samples``.

    Each competitor must already have run once (its correctness check), so
    compilation and first-touch allocation are out of the way. With ``budget``
    (seconds), no new round starts once the race has run that long and at
    least ``min_rounds`` rounds are done.
    """
    start = time.perf_counter()
    for competitor in competitors:
        competitor.calibrate(min_time)
    for competitor in competitors:
        if not competitor.slow:  # an untimed sample each: no outlier as the first timed round
            competitor.time_calls(competitor.number)
    count = len(competitors)
    for round_index in range(max(1, int(repeats))):
        if budget is not None and round_index >= min_rounds and time.perf_counter() - start > budget:
            break
        shift = round_index % count
        for competitor in competitors[shift:] + competitors[:shift]:
            limit = competitor.max_repeats
            if limit is not None and len(competitor.samples) >= limit:
                continue
            competitor.samples.append(competitor.time_calls(competitor.number))
            competitor.cpu_ratios.append(competitor.last_cpu_ratio)


def paired_speedup(faster: Competitor, baseline: Competitor) -> float:
    """How many times more samples per second ``faster`` processes than ``baseline``.

    The median over the rounds both took part in of the per-round per-sample
    time ratio, so a load spike that slows one round slows both sides.
    """
    rounds = min(len(faster.samples), len(baseline.samples))
    ratios = [(baseline.samples[i] / baseline.batch) / (faster.samples[i] / faster.batch)
              for i in range(rounds)]
    return statistics.median(ratios)
