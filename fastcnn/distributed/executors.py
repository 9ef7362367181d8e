"""Executors move jobs to workers and results back; none of them knows what a job does.

- :class:`InProcess` (``executor=None``): one job after another in this process.
- :class:`ProcessPool` (``"local"``): spawned worker processes on this machine,
  the data sent to each once, one job at a time per process; a worker that dies
  is replaced and its job run again.
- :class:`Dask` (``"dask"``, ``"tcp://host:port"`` or a ``distributed.Client``):
  a Dask.distributed cluster; the data is scattered to every worker once.
  Dask is imported here, on first use, never by ``import fastcnn``.

``spawns_here`` says whether an executor starts processes on this machine (which
fastcnn.distributed.main_guard checks can be done first). Each ``map(jobs, x, y,
retries)`` yields ``(job, result)`` as jobs finish and
raises :class:`JobError` naming the job once its retries are spent.
"""

from __future__ import annotations

import contextlib
import contextvars
import multiprocessing
import multiprocessing.connection
import signal
from collections import deque
from collections.abc import Iterator

from ..errors import FastCNNError, InputError
from .jobs import Job, cores, run_job


class JobError(FastCNNError, RuntimeError):
    """A fold or trial that failed on every attempt, or whose input was wrong."""


def _failed(job: Job, attempts: int, cause) -> JobError:
    tries = f" after {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else ""
    return JobError(f"{job.name} failed{tries}: {cause}")


def _retrying(job: Job, attempt: int, retries: int, cause) -> None:
    import sys

    from tqdm import tqdm

    tqdm.write(f"fastcnn: {job.name}: {cause}; running it again (attempt {attempt + 1} of "
               f"{retries + 1})", file=sys.stderr)


class InProcess:
    """Runs the jobs here, one after another, with this process's threads."""

    name = "in-process"
    spawns_here = False

    def map(self, jobs: list[Job], x, y, retries: int) -> Iterator[tuple[Job, dict]]:
        for job in jobs:
            for attempt in range(1, retries + 2):
                try:
                    result = run_job(job, x, y)
                    break
                except Exception as exc:  # noqa: BLE001 - any crash of the job is retried
                    if attempt > retries:
                        raise _failed(job, attempt, f"{type(exc).__name__}: {exc}") from exc
                    _retrying(job, attempt, retries, f"{type(exc).__name__}: {exc}")
            yield job, result


def _serve(connection, x, y, threads: int) -> None:
    """A ProcessPool worker: receive jobs, send back ("ok", result) or ("error", text)."""
    # Ctrl-C reaches the whole process group: the parent decides, and ends the workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            job = connection.recv()
        except EOFError:
            return
        if job is None:
            return
        try:
            connection.send(("ok", run_job(job, x, y, threads)))
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which retries
            connection.send(("error", f"{type(exc).__name__}: {exc}"))


class _PoolWorker:
    def __init__(self, context, x, y, threads: int):
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, x, y, threads), daemon=True,
                                       name="fastcnn-worker")
        self.process.start()
        child.close()  # so that our end reads EOF when the worker dies

    def stop(self, wait: bool) -> None:
        if wait:
            with contextlib.suppress(OSError):
                self.connection.send(None)
            self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.connection.close()


class ProcessPool:
    """``workers`` spawned processes (default: one per core, at most one per job),
    each running one job at a time on ``cores // workers`` kernel threads."""

    name = "local"
    spawns_here = True

    def __init__(self, workers: int | None = None):
        self.workers = workers

    def map(self, jobs: list[Job], x, y, retries: int) -> Iterator[tuple[Job, dict]]:
        context = multiprocessing.get_context("spawn")  # fork would copy Numba's threads' state
        count = max(1, min(self.workers or cores(), len(jobs)))
        threads = max(1, cores() // count)
        pool, busy = [], {}
        pending, attempts = deque(jobs), {}
        finished = False

        def replace(dead: _PoolWorker) -> _PoolWorker:
            pool.remove(dead)
            dead.stop(wait=False)
            pool.append(_PoolWorker(context, x, y, threads))
            return pool[-1]

        try:
            for _ in range(count):  # inside the try: Ctrl-C while they start ends those started
                pool.append(_PoolWorker(context, x, y, threads))
            idle = list(pool)
            while pending or busy:
                while pending and idle:
                    worker, job = idle.pop(), pending.popleft()
                    try:
                        worker.connection.send(job)
                    except OSError:  # it died while idle: its replacement takes the job
                        worker = replace(worker)
                        worker.connection.send(job)
                    busy[worker.connection] = (worker, job)
                for connection in multiprocessing.connection.wait(list(busy)):
                    worker, job = busy.pop(connection)
                    try:
                        status, payload = connection.recv()
                    except (EOFError, OSError):
                        worker.process.join()
                        status, payload = "died", (f"its worker process died (exit code "
                                                   f"{worker.process.exitcode})")
                        worker = replace(worker)
                    idle.append(worker)
                    if status == "ok":
                        yield job, payload
                        continue
                    attempts[job.key] = attempts.get(job.key, 0) + 1
                    if attempts[job.key] > retries:
                        raise _failed(job, attempts[job.key], payload)
                    _retrying(job, attempts[job.key], retries, payload)
                    pending.appendleft(job)
            finished = True
        finally:
            # on Ctrl-C or an error the running jobs are abandoned: the workers are killed
            for worker in pool:
                worker.stop(wait=finished)


class Dask:
    """Jobs as Dask futures. ``target``: "dask" (the cluster that
    ``DASK_SCHEDULER_ADDRESS`` or Dask's config names, else a new
    ``LocalCluster`` of ``workers`` single-threaded processes), a scheduler
    address, or a ``distributed.Client`` (used as it is, left open)."""

    name = "dask"

    def __init__(self, target="dask", workers: int | None = None):
        self.target, self.workers = target, workers

    @property
    def spawns_here(self) -> bool:
        """True when :meth:`client` will start a LocalCluster's worker processes here."""
        import dask

        return self.target == "dask" and not dask.config.get("scheduler-address", None)

    @contextlib.contextmanager
    def client(self, retries: int):
        import dask
        from distributed import Client, LocalCluster

        if not isinstance(self.target, str):
            yield self.target
            return
        if self.target != "dask":
            with Client(self.target, timeout="20s") as client:
                yield client
            return
        if dask.config.get("scheduler-address", None):
            with Client(timeout="20s") as client:
                yield client
            return
        # the scheduler gives up on a task after this many of its workers died under it
        with dask.config.set({"distributed.scheduler.allowed-failures": retries}), \
                LocalCluster(n_workers=self.workers or cores(), threads_per_worker=1,
                             processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            yield client

    def map(self, jobs: list[Job], x, y, retries: int) -> Iterator[tuple[Job, dict]]:
        import uuid

        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        with self.client(retries) as client:
            slots = _slots_per_host(client)
            data = client.scatter([x, y], broadcast=True, hash=False)
            run = uuid.uuid4().hex[:8]
            futures = {client.submit(_run_on_worker, job, *data, slots, retries=retries,
                                     pure=False, key=f"fastcnn-{run}-{job.name}"): job
                       for job in jobs}
            try:
                for future in as_completed(futures):
                    job = futures[future]
                    try:
                        result = future.result()
                    except KilledWorker as exc:
                        raise _failed(job, 0, f"each worker that ran it died ({exc})") from None
                    except Exception as exc:  # noqa: BLE001 - Dask already retried it
                        raise _failed(job, retries + 1, f"{type(exc).__name__}: {exc}") from exc
                    yield job, result
            finally:
                client.cancel(list(futures), force=True)


def _slots_per_host(client) -> dict:
    """{host: jobs that may run there at once}: the threads of all its workers."""
    from urllib.parse import urlparse

    slots: dict = {}
    for address, nthreads in client.nthreads().items():
        host = urlparse(address).hostname
        slots[host] = slots.get(host, 0) + int(nthreads)
    return slots


def _run_on_worker(job: Job, x, y, slots: dict) -> dict:
    """A Dask task: the job, on its share of this host's cores."""
    from urllib.parse import urlparse

    from distributed import get_worker

    worker = get_worker()
    share = slots.get(urlparse(worker.address).hostname, worker.state.nthreads)
    return run_job(job, x, y, max(1, cores() // max(1, share)))


_DEFAULT = contextvars.ContextVar("fastcnn_executor", default=None)

CHOICES = 'None (this process), "local", "dask", a "tcp://host:port" address or a distributed.Client'


@contextlib.contextmanager
def use_executor(executor, workers: int | None = None):
    """Within the block, ``executor=None`` means ``executor`` (e.g. for
    ``fastcnn.reproduce``, which runs cross_validate inside)."""
    token = _DEFAULT.set(get_executor(executor, workers))
    try:
        yield
    finally:
        _DEFAULT.reset(token)


def get_executor(executor=None, workers: int | None = None):
    """The executor an ``executor`` argument names (see :data:`CHOICES`)."""
    if executor is None:
        return _DEFAULT.get() or InProcess()
    if isinstance(executor, (InProcess, ProcessPool, Dask)):
        return executor
    if workers is not None and int(workers) < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    if executor == "local":
        return ProcessPool(workers)
    if isinstance(executor, str) and (executor == "dask" or "://" in executor):
        _require_dask(executor)
        return Dask(executor, workers)
    if type(executor).__module__.startswith("distributed") and hasattr(executor, "submit"):
        return Dask(executor)
    raise InputError(f"unknown executor {executor!r}; use {CHOICES}")


def _require_dask(executor: str) -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise InputError(f'executor {executor!r} needs Dask.distributed: pip install '
                         '"fastcnn[dask]"') from None


__all__ = ["CHOICES", "Dask", "InProcess", "JobError", "ProcessPool", "get_executor",
           "use_executor"]
