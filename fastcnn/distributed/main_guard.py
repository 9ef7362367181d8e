"""Whether worker processes can be spawned from here, checked before any is started.

A spawned process (multiprocessing's "spawn", which the local executor and Dask's
LocalCluster use) first re-runs the main script to find its functions. A script read
from standard input (``python - <<EOF``) cannot be re-run: each worker fails with
``FileNotFoundError: '<stdin>'``. A script that calls cross_validate outside an
``if __name__ == "__main__":`` block starts the call again in every worker, which
then tries to spawn workers of its own and fails ("An attempt has been made to start
a new process before the current process has finished its bootstrapping phase", or
Dask's "Nanny failed to start"), after dozens of nested tracebacks. Both are caught
here instead, with one line saying what to do.
"""

from __future__ import annotations

import ast
import os
import sys

from ..errors import InputError


def _guarded_lines(source: str) -> list[tuple[int, int]]:
    """(first, last) line of each ``if __name__ == "__main__":`` block's body in ``source``."""
    spans = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
            continue
        sides = [node.test.left, *node.test.comparators]
        names = {side.id for side in sides if isinstance(side, ast.Name)}
        texts = {side.value for side in sides if isinstance(side, ast.Constant)}
        if names == {"__name__"} and texts == {"__main__"} and isinstance(node.test.ops[0], ast.Eq):
            spans.append((node.body[0].lineno, node.body[-1].end_lineno))
    return spans


def _main_script_line(main) -> int | None:
    """The line of the main script's top-level code that the current call comes from,
    or None when the call does not come from there (a thread, an interactive session)."""
    frame = sys._getframe(1)
    line = None
    while frame is not None:
        if frame.f_globals is main.__dict__ and frame.f_code.co_name == "<module>":
            line = frame.f_lineno
        frame = frame.f_back
    return line


def check_main_module(executor: str) -> None:
    """InputError (one line, saying what to do) when worker processes spawned now would
    fail because of how the main script runs: read from standard input, or calling
    this outside its ``if __name__ == "__main__":`` block."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is None:  # an interactive session, python -c, a notebook: nothing is re-run
        return
    if not os.path.isfile(path):
        source = "standard input" if path == "<stdin>" else path
        raise InputError(f"executor={executor!r} starts worker processes, which re-run the main "
                         f"script, and this one was read from {source} and cannot be re-run: save it "
                         "to a file and run `python that_file.py` (the work under "
                         "`if __name__ == \"__main__\":`), or use executor=None")
    line = _main_script_line(main)
    if line is None:
        return
    try:
        with open(path, encoding="utf-8") as handle:
            spans = _guarded_lines(handle.read())
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return  # cannot read the script: let the workers start as they would
    if not any(first <= line <= last for first, last in spans):
        raise InputError(f"executor={executor!r} starts worker processes, which re-run "
                         f"{os.path.basename(path)}'s top-level code, and line {line} of it would "
                         "start the whole run again in each of them: put the code that runs it "
                         "under `if __name__ == \"__main__\":` (see Python's multiprocessing "
                         "guidelines), or use executor=None")
