"""Choosing the kernel backend: one flag, loud errors, never a silent fallback.

``set_backend(name)``, ``use_backend(name)`` (a context manager), the
environment variable ``FASTCNN_BACKEND`` (read at the first kernel call, so a
bad value never breaks ``import fastcnn`` and ``--backend`` overrides it) and
``--backend`` on the command line all land here. ``auto`` picks the fastest backend that works
on this machine: cuda, then numba, then cython, then numpy. While numba's kernel cache is
cold (a first-ever run would compile for about a minute) it runs cython, which is compiled
at install, fills numba's cache in a background process at nice 19, and says so on
stderr (:func:`auto_note`; ``FASTCNN_WARMUP=off`` turns this off, see fastcnn.warmup).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
from dataclasses import dataclass
from types import ModuleType

from .errors import BackendError
from .kernels.contract import OPERATIONS

MODULES = {
    "naive": "fastcnn.kernels.naive",
    "numpy": "fastcnn.kernels.numpy_backend",
    "numba": "fastcnn.kernels.numba_backend",
    "cython": "fastcnn.kernels.cython_backend",
    "cuda": "fastcnn.kernels.cuda_backend",
}
"""Backend name -> module implementing the kernel contract."""

AUTO_ORDER = ("cuda", "numba", "cython", "numpy")
CHOICES = ("auto",) + tuple(MODULES)


@dataclass(frozen=True)
class BackendStatus:
    """Whether one backend can run here and, if not, why."""

    name: str
    available: bool
    reason: str = ""


_modules: dict[str, ModuleType] = {}
_failures: dict[str, str] = {}
_lock = threading.Lock()
_state = threading.local()
_global = {"name": None, "module": None, "auto": False}


def _load(name: str) -> ModuleType:
    """Import and check backend ``name``; raise BackendError saying why it cannot run."""
    if name not in MODULES:
        raise BackendError(
            f"unknown backend {name!r}; choose one of: {', '.join(CHOICES)}")
    with _lock:
        if name in _modules:
            return _modules[name]
        if name in _failures:
            raise BackendError(_unusable_message(name, _failures[name]))
        try:
            module = importlib.import_module(MODULES[name])
            missing = [op for op in OPERATIONS if not hasattr(module, op)]
            if missing:
                raise BackendError(f"it does not implement {', '.join(missing)}")
            if hasattr(module, "check_usable"):
                module.check_usable()
        except Exception as exc:  # any import or probe failure makes it unusable
            reason = str(exc) or type(exc).__name__
            if isinstance(exc, ImportError):
                reason = f"cannot import {MODULES[name]}: {reason}"
            _failures[name] = reason
            raise BackendError(_unusable_message(name, reason)) from exc
        _modules[name] = module
        return module


def _unusable_message(name: str, reason: str) -> str:
    return (f"backend {name!r} cannot run on this machine: {reason}. "
            f"Pick another of {', '.join(CHOICES)} with fastcnn.set_backend(...), "
            "FASTCNN_BACKEND or --backend (fastcnn.available_backends() says which can run here).")


def available_backends() -> list[BackendStatus]:
    """Every known backend with whether it can run here and, if not, why."""
    statuses = []
    for name in MODULES:
        try:
            _load(name)
            statuses.append(BackendStatus(name, True))
        except BackendError:
            statuses.append(BackendStatus(name, False, _failures.get(name, "")))
    return statuses


def _resolve(name: str) -> tuple[str, ModuleType]:
    if not isinstance(name, str):
        raise BackendError(f"a backend is named by a string, one of: {', '.join(CHOICES)}; got {name!r}")
    name = name.strip().lower()
    if name == "auto":
        reasons, cold = [], None
        for candidate in AUTO_ORDER:
            try:
                module = _load(candidate)
            except BackendError:
                reasons.append(f"{candidate}: {_failures.get(candidate)}")
                continue
            if getattr(module, "SIMULATED", False):
                # the CUDA simulator is for tests: usable when named, never picked
                reasons.append(f"{candidate}: only the CUDA simulator is available")
                continue
            if cold is not None:
                if candidate not in WHILE_COLD:
                    break  # slower than compiling: the cold backend after all
                _ran_instead(cold[0], cold[2], candidate)
                return candidate, module
            why = _cold(module)
            if why:
                cold = candidate, module, why
                continue
            return candidate, module
        if cold is not None:
            return cold[0], cold[1]
        raise BackendError("no backend can run here: " + "; ".join(reasons))
    return name, _load(name)


WHILE_COLD = ("cython",)
"""What ``auto`` runs while the fastest backend's kernel cache is cold: compiled at
install, and as fast as a cold numba run is slow (a minute of compiling)."""


def _cold(module: ModuleType) -> str | None:
    """Why ``module`` would start by compiling its kernels (its ``cold()``), or None."""
    from .warmup import deferring

    cold = getattr(module, "cold", None)
    return cold() if cold is not None and deferring() else None


def _ran_instead(cold: str, why: str, candidate: str) -> None:
    """Says once on stderr that ``auto`` runs ``candidate`` instead of ``cold``, and why;
    starts filling ``cold``'s cache in the background (once per process)."""
    if _global.get("note") is not None:
        return
    from .warmup import start_background

    pid = start_background()
    later = (f"they compile in the background (pid {pid}, nice 19, about a minute of CPU, "
             f"once), and later runs use {cold}") if pid else f"so every run uses {candidate}"
    _global["note"] = f"fastcnn: auto runs the {candidate} backend: {why}; {later}"
    print(_global["note"], file=sys.stderr, flush=True)


def compile_seconds() -> float:
    """Seconds this process has spent compiling kernels (numba's, at their first call;
    a compile under way included): rates and ETAs leave them out."""
    return sum(module.compile_seconds() for module in list(_modules.values())
               if hasattr(module, "compile_seconds"))


def auto_note() -> str | None:
    """The line ``auto`` printed when it ran another backend than the fastest (why, and
    what happens next), or None."""
    return _global.get("note")


_blas = {"limiter": None, "threads": None}


def _apply_blas_policy(module: ModuleType) -> None:
    """Limit NumPy's BLAS threads while a backend that runs its own thread pool is active.

    A backend module may set ``BLAS_THREADS``: its OpenMP threads and BLAS's
    pthreads otherwise oversubscribe the cores between kernels (measured on 2
    cores: a pytorch_cnn step 1.6x slower on numba, 45x on cython, with BLAS
    free to use every core). Other backends get BLAS's own setting back.
    """
    wanted = getattr(module, "BLAS_THREADS", None)
    if wanted == _blas["threads"]:
        return
    if _blas["limiter"] is not None:
        _blas["limiter"].restore_original_limits()
        _blas["limiter"] = None
    if wanted is not None:
        from threadpoolctl import threadpool_limits

        _blas["limiter"] = threadpool_limits(limits=int(wanted), user_api="blas")
    _blas["threads"] = wanted


def set_backend(name: str) -> str:
    """Select the backend for every layer from now on; returns the name picked.

    ``name`` is one of :data:`CHOICES`. An unknown name, or a backend that
    cannot run here, raises :class:`fastcnn.BackendError` with the reason.
    """
    resolved, module = _resolve(name)
    _global.update(name=resolved, module=module, auto=(name.strip().lower() == "auto"))
    _apply_blas_policy(module)
    return resolved


@contextlib.contextmanager
def use_backend(name: str):
    """Run a block with another backend, e.g. ``with fastcnn.use_backend("numpy"):``."""
    resolved, module = _resolve(name)
    stack = getattr(_state, "stack", None)
    if stack is None:
        stack = _state.stack = []
    stack.append((resolved, module))
    _apply_blas_policy(module)
    try:
        yield resolved
    finally:
        stack.pop()
        _apply_blas_policy(_current()[1])


_REQUESTED = (os.environ.get("FASTCNN_BACKEND") or "auto").strip().lower()
"""FASTCNN_BACKEND as read at import; checked and loaded at the first kernel call."""


def _current() -> tuple[str, ModuleType]:
    stack = getattr(_state, "stack", None)
    if stack:
        return stack[-1]
    if _global["module"] is None:
        if _REQUESTED not in CHOICES:
            raise BackendError(
                f"FASTCNN_BACKEND={_REQUESTED!r} is not a backend; set it to one of: "
                f"{', '.join(CHOICES)}, or override it with --backend or fastcnn.set_backend(...)")
        set_backend(_REQUESTED)
    return _global["name"], _global["module"]


def auto_selected() -> bool:
    """True when the active backend was chosen by ``auto`` rather than by name."""
    _current()
    return bool(_global["auto"])


def get_backend() -> ModuleType:
    """The module implementing the kernel contract for the active backend."""
    return _current()[1]


def backend_name() -> str:
    """Name of the active backend (what ``auto`` picked, when it was auto)."""
    return _current()[0]


def set_num_threads(n: int) -> None:
    """Threads used by the compiled CPU kernels (numba, cython); each backend
    also keeps its BLAS calls from oversubscribing the cores."""
    if int(n) < 1:
        raise ValueError(f"set_num_threads needs n >= 1, got {n}")
    for name in ("numba", "cython"):
        module = _modules.get(name)
        if module is None:
            try:
                module = _load(name)
            except BackendError:
                continue
        if hasattr(module, "set_num_threads"):
            module.set_num_threads(int(n))
