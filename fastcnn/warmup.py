"""Filling numba's kernel cache ahead of use.

numba compiles each kernel at its first call: a first-ever training run on the numba
backend spends about a minute compiling. ``auto`` therefore runs the cython kernels
(compiled at install) while numba's cache is cold, and starts this module in a
background process at ``nice 19``: it trains every zoo model for two steps (a full
batch and a small one, so that both the threaded kernels and their serial twins
compile), evaluates and predicts, then marks the cache warm (see
``fastcnn.kernels.numba_cpu.jit.cache_is_warm``) so that later runs pick numba.

    python -m fastcnn.warmup        # the same, in the foreground (e.g. after installing)
"""

from __future__ import annotations

import os
import subprocess
import sys

OFF = "off"
SETTING = "FASTCNN_WARMUP"
"""``off``: ``auto`` never defers numba for a cold cache (it compiles in the run that
needs it, as before); anything else (the default): it does."""

LOCK = "fastcnn-warmup.lock"
LOG = "fastcnn-warmup.log"


def deferring() -> bool:
    """Whether ``auto`` may run another backend while numba's cache is cold."""
    return os.environ.get(SETTING, "").strip().lower() != OFF


def start_background() -> int | None:
    """Starts ``python -m fastcnn.warmup`` in its own session at nice 19, its output in
    LOG in the cache directory; returns its pid (None where no cache directory is
    writable: then there is nothing to fill)."""
    from .kernels.numba_cpu.jit import CACHE, kernel_cache_dir

    if not CACHE:
        return None
    cache_dir = kernel_cache_dir()
    os.makedirs(cache_dir, exist_ok=True)
    env = dict(os.environ, **{SETTING: OFF})
    with open(os.path.join(cache_dir, LOG), "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "fastcnn.warmup"], env=env,
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   start_new_session=True)
    return process.pid


def compile_every_kernel(log=print) -> None:
    """Trains every zoo model for two steps (batch 64, then 2), evaluates and predicts,
    on the numba backend: every kernel the zoo uses is then compiled (or loaded)."""
    from . import zoo
    from .backend import use_backend
    from .bench.models import batch_data

    with use_backend("numba"):
        for name in zoo.names():
            model = zoo.get(name, seed=0)
            recipe = zoo.recipe(name)
            recipe.compile(model)
            x, y = batch_data(model, 66)
            model.fit(x, y, epochs=1, batch_size=64, verbose=0)
            model.evaluate(x, y, batch_size=64, verbose=0)
            model.predict(x[:3], batch_size=64)
            log(f"compiled {name}'s kernels")


def _locked(handle) -> bool:
    """Takes an exclusive lock on the open file without waiting; False when another
    process holds it. Where there is no fcntl (Windows), True."""
    try:
        import fcntl
    except ImportError:
        return True
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def lowest_priority() -> None:
    """nice 19 for this process and, when it leads a session of its own, for that
    session's scheduling group. Linux's autogroup (on by default) weighs a nice value
    only against processes of the same session, and start_background runs the warm-up in
    a session of its own (Ctrl-C in the terminal leaves it alone): at nice 19 alone it
    still took a whole core's fair share from the training beside it (a first run's
    cython epoch on 2 cores: 28.8 s, against 16.8 s with the group at nice 19 too, or
    with nothing beside it). Run from a terminal, the group is the terminal's: it would
    stay at nice 19 after the warm-up, for every later command there, so it is left
    alone."""
    if hasattr(os, "nice"):
        os.nice(19)
    if hasattr(os, "getsid") and os.getsid(0) == os.getpid():
        try:
            with open("/proc/self/autogroup", "w") as group:
                group.write("19")
        except OSError:  # no autogroup here (another OS, or a kernel without it)
            pass
    try:  # Linux: any other process that wakes up takes the core at once
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        pass


def main() -> int:
    lowest_priority()
    os.environ[SETTING] = OFF
    from .kernels.numba_cpu.jit import CACHE, cache_is_warm, kernel_cache_dir, mark_warm

    if not CACHE:
        print("no writable directory for numba's cache (set NUMBA_CACHE_DIR): nothing to fill")
        return 1
    if cache_is_warm():
        print(f"numba's kernel cache in {kernel_cache_dir()} is already warm")
        return 0
    os.makedirs(kernel_cache_dir(), exist_ok=True)
    with open(os.path.join(kernel_cache_dir(), LOCK), "w") as lock:
        if not _locked(lock):
            print("another fastcnn.warmup is filling the cache already")
            return 0
        compile_every_kernel(log=lambda line: print(line, flush=True))
        mark_warm()
    print(f"numba's kernel cache in {kernel_cache_dir()} is warm")
    return 0


if __name__ == "__main__":
    sys.exit(main())
