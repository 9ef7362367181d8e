"""Cross-validation on real Dask clusters: a worker SIGKILLed in the middle of a fold, and a
scheduler and two workers started as separate processes (`dask scheduler`, `dask worker`)
on loopback, reached by address, by Dask's config and by DASK_SCHEDULER_ADDRESS."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import dask
import distributed
import numpy as np
import psutil
import pytest

from conftest import REPO
from fastcnn.distributed import cross_validate
from helpers import mnist_like

FIT = {"epochs": 1, "batch_size": 32}


def _executing(client) -> dict:
    """{worker address: keys of the tasks it is running right now}."""
    return client.run(lambda dask_worker: [str(task.key) for task in dask_worker.state.executing])


def held_until_killed(seed=0):
    """keras_kfold_cnn with its recipe; the first worker process to build one (the one that
    creates the file $FASTCNN_TEST_HOLD first) writes its pid there and waits to be killed,
    so that a fold is certainly running, and unfinished, when it is killed."""
    import multiprocessing

    import fastcnn

    hold = os.environ.get("FASTCNN_TEST_HOLD")
    if hold and multiprocessing.parent_process() is not None:
        try:
            with open(hold, "x") as claim:
                claim.write(str(os.getpid()))
        except FileExistsError:
            pass
        else:
            time.sleep(600)
    model = fastcnn.zoo.get("keras_kfold_cnn", seed=seed)
    return model.compile(fastcnn.zoo.recipe("keras_kfold_cnn").make_optimizer(), "cross_entropy")


def test_a_worker_killed_mid_fold_is_replaced_and_the_fold_scores_as_undisturbed(tmp_path,
                                                                                 monkeypatch):
    x, y = mnist_like(400, seed=4)
    fit = {"epochs": 2, "batch_size": 32}
    undisturbed = cross_validate(held_until_killed, x, y, cv=2, fit=fit, seed=3, progress=False)
    hold = tmp_path / "held-pid"
    monkeypatch.setenv("FASTCNN_TEST_HOLD", str(hold))  # the workers started below inherit it
    killed = {}

    def kill_the_held_fold(client):
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not (hold.exists() and hold.read_text()):
            time.sleep(0.05)
        pid = int(hold.read_text())
        held = [address for address, worker_pid in client.run(os.getpid).items() if worker_pid == pid]
        running = _executing(client)
        os.kill(pid, signal.SIGKILL)
        killed.update(pid=pid, keys=[running[address] for address in held])

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        killer = threading.Thread(target=kill_the_held_fold, args=(client,), daemon=True)
        killer.start()
        result = cross_validate(held_until_killed, x, y, cv=2, fit=fit, seed=3, executor=client,
                                progress=False)
        killer.join(60)
    [[key]] = killed["keys"]  # the held worker, running exactly one fold when it was killed
    fold = int(re.search(r"fold (\d)/2", key).group(1)) - 1
    assert result.workers[fold] != f"{socket.gethostname()}:{killed['pid']}"
    for metric, values in undisturbed.scores.items():
        assert np.array_equal(result.scores[metric], values), metric
    assert np.array_equal(result.histories[fold]["val_loss"], undisturbed.histories[fold]["val_loss"])


def _scheduler_address(scheduler_file: Path, scheduler: subprocess.Popen) -> str:
    """The address the scheduler wrote to its scheduler file (written, not atomically,
    once it listens)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and scheduler.poll() is None:
        try:
            return json.loads(scheduler_file.read_text())["address"]
        except (OSError, ValueError, KeyError):  # not there yet, or half written
            time.sleep(0.05)
    pytest.fail(f"the dask scheduler never wrote its address (exit status {scheduler.poll()})")


@pytest.fixture(scope="module")
def scheduler_address(tmp_path_factory):
    """A `dask scheduler` and two `dask worker` processes (no nanny) on 127.0.0.1, ended
    afterwards. The scheduler picks its own free port (port 0) and writes its address to a
    scheduler file: a port picked here and bound later could be taken in between."""
    # the `dask` beside this interpreter first: the one PATH finds may belong to another Python
    beside = Path(sys.executable).with_name("dask")
    dask_command = (str(beside) if beside.exists() else shutil.which("dask")) or pytest.fail(
        'the `dask` command is missing: pip install "fastcnn[dask]"')
    scheduler_file = tmp_path_factory.mktemp("scheduler") / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    common = ["--no-dashboard"]
    processes = [subprocess.Popen([dask_command, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                   "--scheduler-file", str(scheduler_file), *common], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        address = _scheduler_address(scheduler_file, processes[0])
        processes += [subprocess.Popen([dask_command, "worker", address, "--nthreads", "1",
                                        "--no-nanny", *common], env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                      for _ in range(2)]
        with distributed.Client(address, timeout="120s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address, processes[1:]
    finally:
        for process in processes[1:]:
            process.kill()  # a worker without a nanny is one process: nothing is left behind
        processes[0].terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


def _descendants(processes) -> set[int]:
    pids = set()
    for process in processes:
        parent = psutil.Process(process.pid)
        pids |= {parent.pid} | {child.pid for child in parent.children(recursive=True)}
    return pids


def test_a_cluster_of_separate_processes_is_reached_by_address_with_the_same_scores(
        scheduler_address):
    address, workers = scheduler_address
    x, y = mnist_like(90, seed=5)
    here = cross_validate("keras_kfold_cnn", x, y, cv=3, fit=FIT, seed=1, progress=False)
    there = cross_validate("keras_kfold_cnn", x, y, cv=3, fit=FIT, seed=1, executor=address,
                           progress=False)
    for metric, values in here.scores.items():
        assert np.array_equal(there.scores[metric], values), metric
    ran = {int(worker.rsplit(":", 1)[1]) for worker in there.workers}
    assert ran <= _descendants(workers)
    with dask.config.set({"scheduler-address": address}):
        configured = cross_validate("keras_kfold_cnn", x, y, cv=3, fit=FIT, seed=1,
                                    executor="dask", progress=False)
    assert np.array_equal(configured.scores["val_loss"], here.scores["val_loss"])
    assert {int(worker.rsplit(":", 1)[1]) for worker in configured.workers} <= _descendants(workers)


def test_fastcnn_cv_follows_dask_scheduler_address(scheduler_address, data_dir):
    address, workers = scheduler_address
    env = {**os.environ, "DASK_SCHEDULER_ADDRESS": address, "FASTCNN_DATA": str(data_dir)}
    out = subprocess.run([sys.executable, "-m", "fastcnn", "cv", "--model", "keras_kfold_cnn",
                          "--folds", "2", "--limit", "80", "--epochs", "1", "--executor", "dask",
                          "--quiet"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    pids = {int(pid) for pid in re.findall(r"\| \S+:(\d+) \|$", out.stdout, re.M)}
    assert len(re.findall(r"^\| \d \| ", out.stdout, re.M)) == 2
    assert pids and pids <= _descendants(workers)
    assert "over 2 folds (dask" in out.stdout
