"""fastcnn bench's "what users feel" group (fastcnn/bench/felt.py): whole fit() epochs in
fresh processes, beside busy neighbours it starts and ends itself, and which rounds count."""

from __future__ import annotations

import pytest

from fastcnn.bench import felt


def _run(competitor, scenario, seconds, round_=0, cpu=1.9, steal=0.001):
    return {"competitor": competitor, "backend": competitor, "scenario": scenario,
            "seconds": seconds, "cpu_per_wall": cpu, "steal": steal, "images": 640,
            "round": round_}


FIRST = {"command": "fastcnn train --model pytorch_cnn", "images": 640, "fastcnn_seconds": 10.0,
         "torch_seconds": 12.0, "backend": "cython", "note": "", "steal": 0.0, "ratio": 1.2}


def test_only_quiet_rounds_count():
    runs = [_run("numba", "quiet", 2.0, 0), _run("torch", "quiet", 4.0, 0),
            _run("numba", "quiet", 9.0, 1, steal=0.05), _run("torch", "quiet", 9.0, 1),
            _run("numba", "quiet", 9.0, 2), _run("torch", "quiet", 9.0, 2, cpu=1.2)]
    assert felt._quiet_rounds(runs, threads=2) == [0]
    table = felt.felt_table({"images": 640, "threads": 2, "rounds": 3, "runs": runs,
                             "counting_rounds": [0], "first_run": FIRST})
    assert "| quiet | numba | 2.00 | 1.90 | 2.00x |" in table
    assert "1 quiet round(s) of 3" in table and "takes 0.83x PyTorch's time" in table
    assert "`fastcnn train --model pytorch_cnn`" in table


def test_a_starved_host_is_marked_as_not_counting():
    runs = [_run("numba", "quiet", 2.0), _run("torch", "quiet", 4.0, cpu=0.9),
            _run("numba", "nice 19", 3.0), _run("torch", "nice 19", 4.5)]
    document = {"images": 640, "threads": 2, "rounds": 1, "runs": runs,
                "counting_rounds": felt._quiet_rounds(runs, threads=2), "first_run": FIRST}
    table = felt.felt_table(document)
    assert "NONE COUNTS" in table
    assert "| nice 19 | numba | 3.00 | 1.90 | 1.50x | 1.50x |" in table


def test_an_epoch_beside_a_niced_busy_loop_ends_the_loop(monkeypatch):
    started = []
    busy_loop = felt.busy_loop
    monkeypatch.setattr(felt, "busy_loop", lambda nice: started.append(busy_loop(nice)) or started[-1])
    run = felt.timed_epoch("numpy", "nice 19", 128, 1, felt.mnist_paths())
    assert run["backend"] == "numpy" and run["seconds"] > 0 and run["cpu_per_wall"] > 0
    assert started and started[0].poll() is not None  # killed and reaped


def test_the_pytorch_loop_runs_an_epoch():
    pytest.importorskip("torch")
    run = felt.timed_epoch("torch", "quiet", 128, 1, felt.mnist_paths())
    assert run["backend"] == "torch" and run["seconds"] > 0
