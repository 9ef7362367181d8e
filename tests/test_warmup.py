"""fastcnn.warmup: fills numba's kernel cache once, marks it warm, and never runs twice at
once (a second start while one fills the cache leaves at once)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("numba")

from fastcnn import warmup  # noqa: E402
from fastcnn.kernels.numba_cpu import jit  # noqa: E402


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cold cache directory in tmp_path; the compile recorded instead of run."""
    compiled = []
    monkeypatch.setattr(jit, "kernel_cache_dir", lambda package_dir=None: str(tmp_path))
    monkeypatch.setattr(jit, "CACHE", True)
    monkeypatch.setattr(warmup, "compile_every_kernel", lambda log=print: compiled.append(1))
    monkeypatch.setattr(warmup, "lowest_priority", lambda: None)  # not this test process
    monkeypatch.setenv(warmup.SETTING, "")
    return tmp_path, compiled


def test_the_warm_up_compiles_once_and_marks_the_cache_warm(cache):
    folder, compiled = cache
    assert not jit.cache_is_warm(str(folder))
    assert warmup.main() == 0 and compiled == [1]
    assert jit.cache_is_warm(str(folder))
    assert warmup.main() == 0 and compiled == [1]  # warm: nothing to do
    assert os.environ[warmup.SETTING] == warmup.OFF  # its own runs never defer numba


def test_a_second_warm_up_leaves_the_cache_to_the_first(cache):
    fcntl = pytest.importorskip("fcntl")
    folder, compiled = cache
    with open(folder / warmup.LOCK, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert warmup.main() == 0
    assert compiled == [] and not jit.cache_is_warm(str(folder))


def test_the_warm_up_yields_to_other_sessions_too(tmp_path):
    """In a session of its own (as start_background starts it), nice 19 alone weighs
    nothing against another session's training where Linux groups by session
    (autogroup): the warm-up puts its group at nice 19 as well."""
    script = ("import os\nfrom fastcnn import warmup\nwarmup.lowest_priority()\n"
              "print(os.nice(0))\n"
              "print(open('/proc/self/autogroup').read() if os.path.exists('/proc/self/autogroup')"
              " else 'none')")
    report = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            start_new_session=True, check=True, timeout=120).stdout.split("\n")
    assert report[0] == "19"
    if report[1] != "none":  # e.g. "/autogroup-123 nice 19"
        assert report[1].split()[-2:] == ["nice", "19"]


def test_the_warm_up_leaves_a_terminals_group_alone():
    """Run in the caller's session (python -m fastcnn.warmup in a terminal), the warm-up
    lowers itself only: the session's group keeps its nice value after it exits.

    The "terminal" is a session of its own that this test starts: a process in the root
    session reads an empty /proc/self/autogroup (as CI's does)."""
    warm_up = ("from fastcnn import warmup\nwarmup.lowest_priority()\n"
               "print(open('/proc/self/autogroup').read())")
    terminal = ("import os, subprocess, sys\n"
                "print(open('/proc/self/autogroup').read().strip())\n"
                f"subprocess.run([sys.executable, '-c', {warm_up!r}], check=True)\n"
                "print(open('/proc/self/autogroup').read().strip())\n")
    report = subprocess.run([sys.executable, "-c", terminal], capture_output=True, text=True,
                            start_new_session=True, check=True, timeout=120).stdout.split("\n")
    before, during, after = report[0], report[1], report[-2]
    if not before:
        pytest.skip("this kernel keeps no autogroup for a new session")
    assert before.split()[-2] == "nice"
    assert during.split()[-1] == before.split()[-1]
    assert after == before
