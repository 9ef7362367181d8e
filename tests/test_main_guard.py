"""cross_validate with worker processes from a script that cannot spawn them (no
``if __name__ == "__main__":`` guard, or read from standard input): one line saying what
to do, before any worker starts, instead of a wall of nested tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import types

import pytest

from conftest import REPO
from fastcnn.distributed.main_guard import _guarded_lines, check_main_module
from fastcnn.errors import InputError

CROSS_VALIDATE = """
import numpy as np
import fastcnn

x = np.random.default_rng(0).integers(0, 256, (12, 8, 8), dtype=np.uint8)
y = np.arange(12) % 3

def model(seed=0):
    return fastcnn.Sequential([fastcnn.Flatten(), fastcnn.Dense(64, 3)], seed=seed,
                              input_shape=(1, 8, 8)).compile("sgd")
"""


def run_script(code: str, tmp_path, stdin: bool = False):
    env = dict(os.environ, PYTHONPATH=str(REPO), FASTCNN_BACKEND="numpy")
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    if stdin:
        command, stdin_text = [sys.executable, "-"], code
    else:
        (tmp_path / "script.py").write_text(code)
        command, stdin_text = [sys.executable, "script.py"], None
    return subprocess.run(command, input=stdin_text, capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_a_script_without_a_main_guard_is_told_to_add_one_before_any_worker_starts(executor,
                                                                                   tmp_path):
    code = CROSS_VALIDATE + f"fastcnn.cross_validate(model, x, y, cv=2, executor={executor!r})\n"
    done = run_script(code, tmp_path)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("fastcnn.errors.InputError: ") and f"line {code.count(chr(10))} of it" in last, done.stderr
    assert 'if __name__ == "__main__":' in last and "executor=None" in last
    assert done.stderr.count("Traceback") == 1 and "bootstrapping" not in done.stderr


def test_a_script_read_from_standard_input_is_told_to_run_from_a_file(tmp_path):
    code = CROSS_VALIDATE + "fastcnn.cross_validate(model, x, y, cv=2, executor='local')\n"
    done = run_script(code, tmp_path, stdin=True)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "read from standard input" in last and "save it to a file" in last, done.stderr
    assert done.stderr.count("Traceback") == 1 and "FileNotFoundError" not in done.stderr


def in_fake_main(source: str, path, monkeypatch):
    """Run ``source`` as the main script ``path`` of this process."""
    path.write_text(source)
    main = types.ModuleType("__main__")
    main.__file__ = str(path)
    main.check_main_module = check_main_module
    monkeypatch.setitem(sys.modules, "__main__", main)
    exec(compile(source, str(path), "exec"), main.__dict__)


GUARDED = """
def run():
    check_main_module("local")

if __name__ == "__main__":
    run()
"""


def test_a_guarded_call_even_through_a_function_passes(tmp_path, monkeypatch):
    in_fake_main(GUARDED, tmp_path / "guarded.py", monkeypatch)  # raises nothing


def test_an_unguarded_call_through_a_function_is_refused(tmp_path, monkeypatch):
    source = GUARDED.replace('if __name__ == "__main__":\n    run()', "run()")
    with pytest.raises(InputError, match="line 5 of it"):
        in_fake_main(source, tmp_path / "loose.py", monkeypatch)


def test_an_interactive_session_has_nothing_to_re_run(monkeypatch):
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))  # no __file__
    check_main_module("local")


def test_the_guard_is_found_in_either_order_and_only_when_it_compares_main():
    source = textwrap.dedent("""
        if "__main__" == __name__:
            a = 1
            b = 2
        if __name__ != "__main__":
            c = 3
        if __name__ == "other":
            d = 4
    """)
    assert _guarded_lines(source) == [(3, 4)]
