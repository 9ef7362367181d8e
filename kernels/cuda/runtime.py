"""Numba CUDA plumbing for the ``cuda`` backend: import guard, GPU check, launch sizes, memory.

Everything the kernel modules share that is not a kernel: whether we run on
Numba's CUDA simulator, how many threads a block gets, how a 1-D launch is
sized, the cache of internal workspaces, and the contract's memory functions.
"""

from __future__ import annotations

import sys

import numpy as np

try:
    import numba_cuda  # noqa: F401  (the package that provides numba.cuda)
    from numba import config, cuda
except ImportError as exc:
    raise ImportError(f"the cuda backend needs numba-cuda ({exc}): pip install fastcnn[cuda]") from exc

SIMULATED = bool(config.ENABLE_CUDASIM)
"""True under Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1): for tests, never picked by auto."""

# The simulator runs every thread as a Python thread, so it gets small blocks;
# every kernel is written for any of these sizes (powers of two).
if SIMULATED:
    THREADS, ROW_THREADS, REDUCE_THREADS = 32, 8, 16
    # its scheduler busy-waits on the threads at every syncthreads: a shorter GIL
    # switch interval makes simulated launches about four times faster (tests only)
    sys.setswitchinterval(min(sys.getswitchinterval(), 5e-4))
else:
    THREADS, ROW_THREADS, REDUCE_THREADS = 256, 32, 256
"""Threads per block: element-wise kernels, one-block-per-row kernels, reductions."""

# Small grids are by design here (one block per row or per channel on small layers);
# numba's under-utilisation warning would fire, and cost time, on every such launch.
config.CUDA_LOW_OCCUPANCY_WARNINGS = 0

ACTIVATION_CODES = {None: 0, "relu": 1, "sigmoid": 2}
"""Contract activation name -> the integer the fused kernels branch on."""


def check_usable() -> None:
    """Raise with the reason when no CUDA GPU can run the kernels (the simulator always can).

    Besides a GPU, numba needs the CUDA compiler libraries (NVVM, NVRTC): a tiny
    kernel is compiled and run once so that their absence fails here, clearly,
    and not at the first layer.
    """
    if SIMULATED:
        return
    if not cuda.is_available():
        raise RuntimeError(f"no CUDA GPU is usable: {_unusable_reason()}; "
                           "use --backend numba (CPU) or install NVIDIA drivers")
    try:
        zeros((1,))
        cuda.synchronize()
    except Exception as exc:  # missing NVVM/NVRTC, unsupported GPU, driver too old
        raise RuntimeError(f"a CUDA GPU is present but numba cannot run kernels on it: "
                           f"{_one_line(exc)}; install the CUDA libraries numba needs "
                           "(pip install 'numba-cuda[cu12]' or [cu13]) or use --backend numba") from exc


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split()).rstrip(" :.") or type(exc).__name__


def _unusable_reason() -> str:
    """Numba's own explanation of why CUDA is unavailable, on one line."""
    try:
        cuda.current_context()
    except Exception as exc:  # CudaSupportError and driver errors carry the reason
        return _one_line(exc)
    return "numba.cuda.is_available() is False"


def synchronize() -> None:
    """Wait for every queued kernel (for timing; copies to the host already wait)."""
    cuda.synchronize()


def blocks_for(count: int, threads: int = THREADS) -> int:
    """Blocks of ``threads`` that cover ``count`` items (at least one)."""
    return max(1, -(-count // threads))


def launch(kernel, count: int, *args) -> None:
    """Launch a one-thread-per-item kernel over ``count`` items; nothing to do for zero."""
    if count:
        kernel[blocks_for(count), THREADS](*args)


def flat(array):
    """1-D view of a C-contiguous device array (no copy)."""
    return array.reshape(array.size)


_workspaces: dict = {}


def workspace(tag: str, shape: tuple, dtype=np.float32):
    """Device scratch array for internal use, allocated once per (tag, shape, dtype)."""
    key = (tag, tuple(shape), np.dtype(dtype).str)
    array = _workspaces.get(key)
    if array is None:
        array = _workspaces[key] = cuda.device_array(shape, dtype=dtype)
    return array


# ---- memory (contract) -------------------------------------------------------
@cuda.jit
def _fill_kernel(out, value):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = value


def fill(array, value) -> None:
    """Set every element of a device array to ``value`` on the device."""
    launch(_fill_kernel, array.size, flat(array), value)


def to_device(array):
    """Host ndarray -> device array with the same shape and contents."""
    return cuda.to_device(np.ascontiguousarray(array))


def to_host(array) -> np.ndarray:
    """Device array -> host ndarray."""
    return array.copy_to_host()


def empty(shape, dtype=np.float32):
    """Uninitialised device array."""
    return cuda.device_array(shape, dtype=dtype)


def zeros(shape, dtype=np.float32):
    """Zero-filled device array, filled on the device."""
    array = cuda.device_array(shape, dtype=dtype)
    fill(array, 0)
    return array
