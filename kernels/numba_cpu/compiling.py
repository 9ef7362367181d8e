"""Time spent compiling this package's kernels in this process, and one line on stderr
when a compile keeps the user waiting.

numba compiles each kernel at its first call, or loads it from the disk cache (see
.jit). A first-ever run compiles for about a minute, inside the first training step:
without a word the progress bar sat at 0 for that minute. ``compile_seconds()`` lets
the progress bar and the training summary leave that time out of their rates.
"""

from __future__ import annotations

import sys
import threading
import time

from numba.core import event

from .jit import CACHE, CACHE_DIR, kernel_cache_dir

NOTICE_AFTER = 2.0
"""Seconds of compiling (in all) before the user is told why they wait."""

_PACKAGE = __name__.rsplit(".", 1)[0]


def notice() -> str:
    """The line that tells the user what is compiling, and whether it happens again."""
    if CACHE:
        where = CACHE_DIR or kernel_cache_dir()
        return ("fastcnn: compiling the numba backend's kernels for this CPU (about a minute, "
                f"once: later runs load them from {where})")
    return ("fastcnn: compiling the numba backend's kernels for this CPU (about a minute, in "
            "every run: no writable cache directory; set NUMBA_CACHE_DIR to keep them)")


class _Watch(event.Listener):
    """Counts the seconds of compiles of this package's kernels (nested ones once) and
    prints notice() once, when they pass NOTICE_AFTER while a compile is still going."""

    def __init__(self, stream=None, after: float = NOTICE_AFTER):
        self.stream, self.after = stream, after
        self.lock = threading.Lock()
        self.depth, self.started, self.seconds = 0, 0.0, 0.0
        self.told, self.timer = False, None

    @staticmethod
    def _ours(evt) -> bool:
        dispatcher = (evt.data or {}).get("dispatcher")
        module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
        return module.startswith(_PACKAGE)

    def on_start(self, evt):
        if not self._ours(evt):
            return
        with self.lock:
            self.depth += 1
            if self.depth == 1:
                self.started = time.perf_counter()
                if not self.told:
                    self.timer = threading.Timer(max(0.0, self.after - self.seconds), self._tell)
                    self.timer.daemon = True
                    self.timer.start()

    def on_end(self, evt):
        if not self._ours(evt):
            return
        with self.lock:
            self.depth -= 1
            if self.depth == 0:
                self.seconds += time.perf_counter() - self.started
                if self.timer is not None:
                    self.timer.cancel()
                    self.timer = None

    def _tell(self):
        with self.lock:
            if self.told or self.depth == 0:
                return
            self.told = True
        stream = self.stream or sys.stderr
        print(notice(), file=stream, flush=True)

    def total(self) -> float:
        with self.lock:
            return self.seconds + (time.perf_counter() - self.started if self.depth else 0.0)


_watch = _Watch()
event.register("numba:compile", _watch)


def compile_seconds() -> float:
    """Seconds this process has spent compiling this package's kernels (a compile under
    way included)."""
    return _watch.total()
