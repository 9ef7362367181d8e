"""pytest-benchmark suite set-up: competitors, threads, and checked trials.

Run with ``python -m pytest benchmarks/ --benchmark-enable`` (the default test
run only collects tests/). Options: ``--bench-backends numba,torch`` (default:
every backend that runs here, the naive loops and PyTorch if installed),
``--bench-threads N`` (default: all cores; PyTorch and NumPy's BLAS get the
same), ``--bench-batch`` (64) and ``--bench-naive-batch`` (2).

Every test first checks its competitor's result against the NumPy reference
(once, before timing), then times it with the ``benchmark`` fixture. The other
engineers' standalone scripts in this folder (bench_*_kernels.py, gpu_check.py)
are not collected: they are not named test_*.
"""

from __future__ import annotations

import os

import pytest

# numba picks up the simulator only when set before it is imported: never benchmark it
os.environ.pop("NUMBA_ENABLE_CUDASIM", None)


def pytest_addoption(parser):
    group = parser.getgroup("fastcnn benchmarks")
    group.addoption("--bench-backends", default=None,
                    help="comma-separated competitors: backend names and 'torch'")
    group.addoption("--bench-threads", type=int, default=None, help="threads for every competitor")
    group.addoption("--bench-batch", type=int, default=64, help="batch size (64)")
    group.addoption("--bench-infer-batch", type=int, default=1000, help="inference batch size (1000)")
    group.addoption("--bench-naive-batch", type=int, default=2, help="batch of the naive loops (2)")


def _competitors(config) -> list[str]:
    from fastcnn.bench.suite import check_competitors, default_competitors

    names = config.getoption("--bench-backends")
    if names:
        return check_competitors([name.strip() for name in names.split(",") if name.strip()])
    return default_competitors()


def pytest_generate_tests(metafunc):
    if "competitor" in metafunc.fixturenames:
        metafunc.parametrize("competitor", _competitors(metafunc.config))


@pytest.fixture(scope="session", autouse=True)
def bench_threads(pytestconfig):
    """The same thread count for fastcnn, NumPy's BLAS and PyTorch, set once."""
    from fastcnn.bench import environment

    threads = pytestconfig.getoption("--bench-threads") or environment.cpu_count()
    environment.set_threads(threads)
    return threads


class Groups:
    """Benchmark groups, built once per session so each reference result is computed once."""

    def __init__(self, config):
        self.batch = config.getoption("--bench-batch")
        self.infer_batch = config.getoption("--bench-infer-batch")
        self.naive_batch = config.getoption("--bench-naive-batch")
        self._groups = {}

    def kernel(self, bench):
        from fastcnn.bench.runner import kernel_group

        return self._groups.setdefault(("kernel", bench.name), kernel_group(bench))

    def model(self, name, mode):
        from fastcnn.bench.runner import model_group

        return self._groups.setdefault((mode, name), model_group(name, mode))

    def batch_for(self, group, competitor) -> int:
        if competitor == "naive" and group.batched:
            return self.naive_batch
        return self.infer_batch if group.kind == "infer" else self.batch


@pytest.fixture(scope="session")
def groups(pytestconfig):
    return Groups(pytestconfig)


@pytest.fixture
def measure(benchmark, groups, bench_threads):
    """measure(group, competitor): check the competitor once against the reference, then
    time one call per round with pytest-benchmark and record samples/s and GFLOP/s."""

    def measure(group, competitor):
        n = groups.batch_for(group, competitor)
        trial = group.checked(competitor, n)

        def call():
            trial.run()
            if trial.sync is not None:
                trial.sync()

        benchmark.group = f"{group.kind} {group.name}"
        benchmark.extra_info.update(backend=competitor, batch=n if group.batched else None,
                                    threads=bench_threads, label=group.label)
        with trial.entered():  # the backend's use_backend, outside the timer
            if competitor == "naive":
                benchmark.pedantic(call, rounds=3, iterations=1)
            else:
                benchmark(call)
        stats = getattr(benchmark, "stats", None)
        if stats is not None:
            seconds = stats.stats.median
            flops = group.flops(n)
            if group.batched:
                benchmark.extra_info["samples_per_s"] = n / seconds
                benchmark.extra_info["seconds_per_sample"] = seconds / n
            benchmark.extra_info["gflops"] = flops / seconds / 1e9 if flops else None

    return measure
