"""Training threads held one to a CPU while fit() runs, where they fill every CPU.

Why: beside one busy process at ``nice -n 19`` (a browser tab, an indexer, another
job's low-priority worker), Linux gave that process 15-70% of a core during numba's
fit() epochs, where its weight entitles it to about 1.5% (Zen 5, Linux 6.18, 2 CPUs;
read from its /proc schedstat), and an epoch took up to 1.5x its quiet time (issue
21). The kernels' threads sleep between kernels (fastcnn sets GOMP_SPINCOUNT=300, see
fastcnn/__init__.py), and the niced process ran whenever one did; likely, not traced:
a woken thread was queued behind our other thread instead of taking its CPU back.
Held one to a CPU, the niced process got 2% and the epoch was 1.03x its quiet time
(eight rounds 0.99-1.08x, against 0.89-1.34x free); two trainings at once and a
nice-0 neighbour did no worse. Threads that never sleep (OMP_WAIT_POLICY=active) kept
the niced process at 1.5% as well, but they would hold the cores after training too.

Only while fit() runs, only on Linux, only where the backend can name its threads
(``compute_thread_ids``), and only where those threads are as many as the CPUs the
process may use: with CPUs to spare, the scheduler places threads better than a fixed
map. Each thread's own CPU set is restored afterwards. ``FASTCNN_PIN=0`` turns it off.
"""

from __future__ import annotations

import contextlib
import os


def enabled() -> bool:
    """Read at each fit(): FASTCNN_PIN=0 turns the pinning off."""
    return os.environ.get("FASTCNN_PIN", "1") != "0" and hasattr(os, "sched_setaffinity")


def plan(thread_ids: list[int], allowed: set[int]) -> dict[int, int]:
    """{thread id: CPU} holding each thread on a CPU of its own, in order, or {} where the
    threads are not exactly as many as the CPUs (or fewer than two)."""
    cpus = sorted(allowed)
    if len(thread_ids) < 2 or len(thread_ids) != len(cpus) or len(set(thread_ids)) != len(cpus):
        return {}
    return dict(zip(thread_ids, cpus))


@contextlib.contextmanager
def pinned(module):
    """Within the block, the backend ``module``'s compute threads (the calling thread and
    its kernels' workers) each run on one CPU of the process's set (see the module's
    docstring); outside it, as before. Does nothing where that does not apply."""
    mapping = {}
    if enabled() and hasattr(module, "compute_thread_ids"):
        mapping = plan(module.compute_thread_ids(), os.sched_getaffinity(0))
    before = {}
    try:
        for thread, cpu in mapping.items():
            before[thread] = os.sched_getaffinity(thread)
            os.sched_setaffinity(thread, {cpu})
    except OSError:  # a thread gone, or a CPU set the OS refuses: leave it all as it was
        _restore(before)
        before = {}
    try:
        yield
    finally:
        _restore(before)


def _restore(before: dict[int, set[int]]) -> None:
    for thread, cpus in before.items():
        with contextlib.suppress(OSError):
            os.sched_setaffinity(thread, cpus)
