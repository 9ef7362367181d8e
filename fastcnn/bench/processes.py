"""Headline ratios repeated in fresh processes.

Side-by-side timing in one process cancels the load of other processes, but
not what differs from one process to the next, nor what a long-running process
has accumulated (memory, other runtimes' thread pools): on the shared 2-core
machine of benchmarks/RESULTS.md a PyTorch training step of pytorch_cnn
measured from 25 to 55 ms depending on the process. So the whole-model groups
are also run in a few fresh interpreters holding only numba, cython and
PyTorch, each timing them round-robin, and the median, minimum and maximum of
each process's ratio are reported.
"""

from __future__ import annotations

import json
import statistics

from .startup import run_python

CHILD = r'''
import json, sys
config = json.loads(sys.argv[1])
from fastcnn.bench import environment, runner
environment.set_threads(config["threads"])
plan = runner.Plan(config["competitors"], config["batch"], config["infer_batch"],
                   repeat=config["repeat"], min_time=config["min_time"],
                   threads=config["threads"], log=lambda line: None)
rows = []
for kind, name in config["groups"]:
    for row in runner.run_group(runner.model_group(name, kind), plan):
        rows.append({key: row[key] for key in ("kind", "name", "backend", "seconds", "speedup_vs")})
print("RESULT " + json.dumps(rows))
'''

HEADLINE_GROUPS = (("train", "pytorch_cnn"), ("infer", "pytorch_cnn"))
RATIOS = (("numba", "torch"), ("cython", "torch"), ("cython", "numba"))


def ratios_across_processes(competitors: list[str], threads: int, processes: int = 5,
                            batch: int = 64, infer_batch: int = 1000, repeat: int = 7,
                            min_time: float = 0.2, groups=HEADLINE_GROUPS, log=print) -> list[dict]:
    """[{kind, name, backend, baseline, median, min, max, values}] for every ratio of
    :data:`RATIOS` whose two sides are both among ``competitors``."""
    config = json.dumps({"competitors": competitors, "threads": threads, "batch": batch,
                         "infer_batch": infer_batch, "repeat": repeat, "min_time": min_time,
                         "groups": [list(group) for group in groups]})
    runs = []
    for index in range(processes):
        log(f"  headline groups in fresh process {index + 1}/{processes} ...")
        runs.append(run_python(CHILD, [config], "headline"))
    table = []
    for kind, name in groups:
        for backend, baseline in RATIOS:
            values = [row["speedup_vs"][baseline] for rows in runs for row in rows
                      if (row["kind"], row["name"], row["backend"]) == (kind, name, backend)
                      and baseline in row["speedup_vs"]]
            if values:
                table.append({"kind": kind, "name": name, "backend": backend, "baseline": baseline,
                              "median": statistics.median(values), "min": min(values),
                              "max": max(values), "values": values})
    return table
