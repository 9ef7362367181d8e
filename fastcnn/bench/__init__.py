"""The benchmark engine behind ``fastcnn bench`` and the pytest-benchmark suite in benchmarks/.

    from fastcnn.bench import BenchConfig, run_benchmarks, write_reports
    document = run_benchmarks(BenchConfig(mode="quick"))
    write_reports(document, "bench-results")

Modules: :mod:`.kernels` (each kernel at the zoo's shapes), :mod:`.models`
(training steps and inference of the zoo models, PyTorch twins), :mod:`.runner`
(check against the NumPy reference, then time side by side), :mod:`.timing`
(round-robin repeats, medians, paired ratios), :mod:`.peak` (matmul GFLOP/s),
:mod:`.startup` (compile time, start-up, memory in subprocesses), :mod:`.processes`
(headline ratios repeated in fresh processes),
:mod:`.breakdown` (where a training step's time goes), :mod:`.report`.
"""

from .check import BenchmarkCheckError
from .report import console_report, markdown_report, write_reports
from .suite import BenchConfig, run_benchmarks

__all__ = ["BenchConfig", "BenchmarkCheckError", "console_report", "markdown_report",
           "run_benchmarks", "write_reports"]
