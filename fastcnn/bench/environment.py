"""Where a benchmark ran: machine, library versions, and one thread count for everyone.

``set_threads(n)`` gives fastcnn's compiled kernels, NumPy's BLAS and PyTorch
the same number of threads, so that no competitor gets more cores than another.
"""

from __future__ import annotations

import ctypes
import datetime
import importlib
import os
import platform


def cpu_count() -> int:
    """Cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_model() -> str:
    """The processor's marketing name ("AMD EPYC ...") where the OS says it."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_bf16", "amx_tile", "neon", "asimd", "sve")
"""The vector-instruction flags a benchmark reader needs (which GEMM kernels the CPU can run)."""


def isa_flags() -> list[str]:
    """Those of ISA_FLAGS this CPU has, from /proc/cpuinfo (empty where it is unreadable)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    present = set(line.split(":", 1)[1].split())
                    return [flag for flag in ISA_FLAGS if flag in present]
    except OSError:
        pass
    return []


def blas_libraries() -> list[dict]:
    """Every BLAS loaded in this process (NumPy's; SciPy's, which the numba and cython
    kernels call from their threads): library file, version, kernel architecture and
    its thread count now, from threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [{"library": os.path.basename(info.get("filepath", "?")),
             "api": info.get("internal_api"), "version": info.get("version"),
             "architecture": info.get("architecture"), "threads": info.get("num_threads"),
             "threading": info.get("threading_layer")}
            for info in threadpool_info() if info.get("user_api") == "blas"]


def describe_blas(libraries: list[dict], coretype: str | None = None) -> str:
    """One line: "libscipy_openblas64_.so (openblas 0.3.31, Haswell kernels, 2 threads); ..."
    plus the OPENBLAS_CORETYPE that forced those kernels, when one was set."""
    text = "; ".join(f"{lib['library']} ({lib['api']} {lib['version']}, {lib['architecture']} "
                     f"kernels, {lib['threads']} threads)" for lib in libraries) or "unknown"
    return text + (f"; kernels forced by OPENBLAS_CORETYPE={coretype}" if coretype else "")


def own_gemm() -> dict:
    """Backend -> the ISA of fastcnn's own micro-kernel its float32 GEMMs run on ("avx512",
    "avx2"), or None for BLAS; backends that cannot load here are left out."""
    found = {}
    try:
        from ..kernels.numba_cpu import gemm
        found["numba"] = gemm.ISA if gemm.ENABLED else None
    except ImportError:
        pass
    try:
        from ..kernels.cython import _kernels
        found["cython"] = "avx512" if _kernels.own_gemm() else None
    except ImportError:
        pass
    return found


_TILES = {"avx512": "own AVX-512 micro-kernel", "avx2": "own AVX2 micro-kernel", True:
          "own AVX-512 micro-kernel"}  # True: results files written before the AVX2 tile


def describe_gemm(own: dict) -> str:
    """"numba: own AVX-512 micro-kernel; cython: BLAS" (or "unknown")."""
    return "; ".join(f"{name}: {_TILES.get(isa, 'BLAS')}" for name, isa in own.items()) or "unknown"


def _version(module: str) -> str | None:
    try:
        return getattr(importlib.import_module(module), "__version__", "?")
    except Exception:  # not installed, or broken: reported as absent
        return None


def versions() -> dict:
    """Versions of python and of each library a benchmark can touch (None: not installed)."""
    found = {"python": platform.python_version()}
    for name, module in (("fastcnn", "fastcnn"), ("numpy", "numpy"), ("numba", "numba"),
                         ("torch", "torch"), ("cython", "Cython")):
        found[name] = _version(module)
    return found


def load_average() -> float | None:
    """The 1-minute load average (runnable processes), where the OS reports one."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def cpu_ticks() -> tuple[int, int] | None:
    """(steal, total) clock ticks of all CPUs so far, from Linux's /proc/stat; steal is the
    time a hypervisor ran something else while this VM's CPUs wanted to run. None elsewhere."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (fields[7], sum(fields[:8])) if len(fields) >= 8 else None


STEAL_LIMIT = 0.01
CPU_WALL_SHARE = 0.8
"""A quiet host (the bar's rule for a speed ratio to count): steal below 1%, and
PyTorch's own CPU/wall at least 0.8 x its threads (1.6 on two cores)."""


def quiet_host(steal: float, cpu_per_wall: float, threads: int) -> bool:
    """True when a PyTorch run with this CPU/wall on ``threads``, while the host stole this
    share, ran on a quiet host (STEAL_LIMIT, CPU_WALL_SHARE)."""
    return steal < STEAL_LIMIT and cpu_per_wall >= CPU_WALL_SHARE * threads


def steal_share(start: tuple[int, int] | None, end: tuple[int, int] | None) -> float | None:
    """The share of CPU time the host stole between two :func:`cpu_ticks` readings."""
    if start is None or end is None or end[1] <= start[1]:
        return None
    return (end[0] - start[0]) / (end[1] - start[1])


def machine() -> dict:
    return {"cpu": cpu_model(), "cores": cpu_count(), "isa": isa_flags(),
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE") or None,
            "platform": platform.platform(),
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "load_average": load_average()}


# ---- threads -------------------------------------------------------------------------
_OPENBLAS_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                     "openblas_set_num_threads64_", "openblas_set_num_threads")


def _loaded_openblas() -> list[str]:
    """Paths of the OpenBLAS libraries loaded in this process (NumPy's, SciPy's)."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line}
    except OSError:
        return []
    return sorted(path for path in paths if ".so" in path)


def set_blas_threads(n: int) -> bool:
    """Limit NumPy's OpenBLAS to ``n`` threads; False when no OpenBLAS could be told."""
    import numpy  # noqa: F401  (loads the BLAS library)

    done = False
    for path in _loaded_openblas():
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in _OPENBLAS_SETTERS:
            setter = getattr(library, symbol, None)
            if setter is not None:
                setter(ctypes.c_int(int(n)))
                done = True
                break
    return done


def torch_module():
    """The torch module, or None when PyTorch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def set_threads(n: int) -> None:
    """The same thread count for fastcnn's kernels, NumPy's BLAS and PyTorch.

    BLAS is set while the numpy backend is active, so that a backend which limits
    BLAS while it runs (numba, cython: ``BLAS_THREADS``) restores ``n`` afterwards.
    """
    import fastcnn

    fastcnn.set_num_threads(n)
    with fastcnn.use_backend("numpy"):
        set_blas_threads(n)
    torch = torch_module()
    if torch is not None:
        torch.set_num_threads(int(n))
