"""Each kernel at the zoo's real shapes, forward and backward, on every competitor.

``python -m pytest benchmarks/test_bench_kernels.py --benchmark-enable``; one
benchmark group per kernel, e.g. "kernel pytorch_cnn.conv2 forward".
"""

import pytest

from fastcnn.bench.kernels import KERNEL_BENCHES


@pytest.mark.parametrize("bench", KERNEL_BENCHES, ids=lambda bench: bench.name.replace(" ", "-"))
def test_kernel(bench, competitor, groups, measure):
    measure(groups.kernel(bench), competitor)
