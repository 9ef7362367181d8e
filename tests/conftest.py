"""Shared test setup: real datasets, the CUDA simulator, and the backends to test.

Runs before numba is imported anywhere: where this machine has no NVIDIA GPU
the CUDA backend is exercised under Numba's CUDA simulator (tiny shapes).
"""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# a checkout beside shared/, or wherever FASTCNN_DATA points (a git worktree elsewhere)
SHARED_DATA = Path(os.environ.get("FASTCNN_DATA") or REPO.parent / "shared" / "datasets")

HAS_GPU = Path("/dev/nvidia0").exists() and os.environ.get("NUMBA_ENABLE_CUDASIM") != "1"
if not HAS_GPU:
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
if SHARED_DATA.is_dir():
    os.environ.setdefault("FASTCNN_DATA", str(SHARED_DATA))
# Tests never touch the network: a download attempt is a bug.
os.environ["FASTCNN_OFFLINE"] = "1"
# auto picks numba even while its kernel cache is cold (no background compile during the
# suite); tests of the deferral turn it back on
os.environ["FASTCNN_WARMUP"] = "off"


def usable_backends():
    """Names of the backends that can run here (cuda only under its simulator without a GPU)."""
    import fastcnn

    return [s.name for s in fastcnn.available_backends() if s.available]


def backend_is_simulated(name):
    """True for the CUDA backend running under Numba's simulator (use tiny shapes)."""
    if name != "cuda":
        return False
    import fastcnn

    with fastcnn.use_backend("cuda"):
        return bool(getattr(fastcnn.get_backend(), "SIMULATED", False))


@pytest.fixture(scope="session")
def data_dir():
    """The folder of real datasets (MNIST, Fashion-MNIST, KMNIST)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA}")
    return SHARED_DATA
