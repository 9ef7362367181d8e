"""cross_validate, grid_search and random_search: the folds, the results, the same scores
on every executor (this process, a spawned process pool, a real Dask LocalCluster),
and the errors a user sees. Tiny data: each fold trains in well under a second."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import dask
import distributed
import numpy as np
import pytest

import fastcnn
from conftest import REPO
from fastcnn.distributed import JobError, cross_validate, grid_search, loguniform, random_search
from helpers import mnist_like, toy_images

FIT = {"epochs": 2, "batch_size": 16}


def small_model(seed=0, lr=0.05, width=8):
    """A compiled Conv-Pool-Dense net for toy_images (N, 1, 8, 8), 4 classes."""
    model = fastcnn.Sequential([fastcnn.Conv2D(1, width, 3, padding=1), fastcnn.ReLU(),
                                fastcnn.MaxPool2D(2), fastcnn.Flatten(), fastcnn.Dense(width * 16, 4)],
                               seed=seed, input_shape=(1, 8, 8))
    return model.compile(fastcnn.optim.SGD(lr=lr, momentum=0.9), "cross_entropy")


def dies_in_workers(seed=0):
    """small_model here; in a worker process it kills that process (SIGKILL)."""
    import multiprocessing

    if multiprocessing.parent_process() is not None:
        os.kill(os.getpid(), signal.SIGKILL)
    return small_model(seed)


def dies_once_in_a_worker(seed=0):
    """small_model, except that the first worker process to build it kills itself; the
    marker file named by $FASTCNN_TEST_DIE_ONCE says it happened."""
    import multiprocessing

    marker = os.environ["FASTCNN_TEST_DIE_ONCE"]
    if multiprocessing.parent_process() is not None and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return small_model(seed)


@pytest.fixture(scope="module")
def data():
    return toy_images(120, seed=1)


@pytest.fixture(scope="module")
def client():
    """A real LocalCluster: two single-threaded worker processes; a task whose worker dies
    twice is given up (allowed-failures 1), so the exhausted-retries test stays short."""
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    # generous timeouts: on a loaded machine the restarted workers close slowly
    client.close(timeout=60)
    cluster.close(timeout=60)


def test_import_fastcnn_never_imports_dask():
    code = ("import sys, fastcnn; fastcnn.cross_validate, fastcnn.distributed.loguniform; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_each_fold_is_trained_from_seed_plus_fold_and_scored_on_its_held_out_images(data):
    x, y = data
    result = cross_validate(small_model, x, y, cv=3, fit=FIT, seed=5, progress=False)
    assert result.scores["val_accuracy"].shape == (3,) and result.scores["val_loss"].shape == (3,)
    validation = np.sort(np.concatenate([val for _, val in result.folds]))
    assert np.array_equal(validation, np.arange(len(x)))
    train, val = result.folds[1]
    by_hand = small_model(seed=5 + 1)
    history = by_hand.fit(x[train], y[train], validation_data=(x[val], y[val]), verbose=0, **FIT)
    expected = by_hand.evaluate(x[val], y[val])
    assert result.scores["val_loss"][1] == pytest.approx(expected["loss"], rel=1e-12)
    assert result.scores["val_accuracy"][1] == expected["accuracy"]
    assert np.allclose(result.histories[1]["val_loss"], history.history["val_loss"])
    assert result.mean() == pytest.approx(np.mean(result.scores["val_accuracy"]))
    assert result.std("val_loss") == pytest.approx(np.std(result.scores["val_loss"]))
    assert result.fit_seconds.shape == (3,) and result.executor == "in-process"
    assert result.mean() > 0.5  # the toy bands are learnable in two epochs


def test_progress_into_a_redirected_stream_is_one_line_per_fold(data, capsys):
    x, y = data
    cross_validate(small_model, x, y, cv=2, fit={"epochs": 1}, progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [line for line in err.splitlines() if "done, fold" in line]
    assert len(lines) == 2 and lines[-1].split(": ")[1].startswith("2/2 done")


def test_stratified_folds_keep_each_class_share(data):
    x, y = data
    result = cross_validate(small_model, x, y, cv=4, fit={"epochs": 1}, stratify=True, progress=False)
    counts = np.array([np.bincount(y[val], minlength=4) for _, val in result.folds])
    assert (counts.max(axis=0) - counts.min(axis=0) <= 1).all()


def test_same_seeds_give_the_same_fold_scores_on_every_executor(data, client):
    x, y = mnist_like(90, seed=3)
    results = {executor: cross_validate("keras_kfold_cnn", x, y, cv=3, fit={"epochs": 1},
                                        seed=2, executor=executor, progress=False)
               for executor in (None, "local", client)}
    results["dask"] = cross_validate("keras_kfold_cnn", x, y, cv=3, fit={"epochs": 1}, seed=2,
                                     executor="dask", workers=1, progress=False)
    reference = results.pop(None)
    for name, result in results.items():
        for metric, values in reference.scores.items():
            assert np.array_equal(result.scores[metric], values), (name, metric)
        assert all(np.array_equal(a[1], b[1]) for a, b in zip(result.folds, reference.folds))
    assert len(set(results["local"].workers)) >= 1 and os.getpid() not in \
        {int(worker.rsplit(":", 1)[1]) for worker in results["local"].workers}


def test_grid_search_tables_every_trial_and_names_the_best(data, client):
    x, y = data
    search = grid_search(small_model, {"lr": [1e-4, 0.05], "width": [4, 8]}, x, y, cv=2,
                         fit={"epochs": 2}, executor=client, progress=False)
    assert [tuple(p.values()) for p in search.params] == [(1e-4, 4), (1e-4, 8), (0.05, 4), (0.05, 8)]
    assert search.best_params["lr"] == 0.05
    assert search.best_score == max(search.means)
    rows = search.rows()
    assert len(rows) == 4 and len(rows[0]["folds"]) == 2
    lines = search.table().splitlines()
    assert len(lines) == 6 and "(best)" in lines[2 + search.best_index]


def test_a_fit_parameter_in_the_grid_changes_only_the_fit(data):
    x, y = data
    search = grid_search(small_model, {"epochs": [1, 2]}, x, y, cv=2, progress=False)
    assert [len(result.histories[0]["loss"]) for result in search.results] == [1, 2]


def test_random_search_draws_are_seeded(data):
    x, y = data
    space = {"lr": loguniform(1e-3, 1e-1), "width": [4, 8]}
    first = random_search(small_model, space, x, y, n_trials=3, cv=2, fit={"epochs": 1},
                          seed=4, progress=False)
    again = random_search(small_model, space, x, y, n_trials=3, cv=2, fit={"epochs": 1},
                          seed=4, progress=False)
    assert first.params == again.params and len(first.params) == 3
    assert all(1e-3 <= p["lr"] <= 1e-1 and p["width"] in (4, 8) for p in first.params)
    assert np.array_equal(first.means, again.means)


def test_a_diverging_trial_scores_nan_and_never_wins(data):
    x, y = data
    search = grid_search(small_model, {"lr": [0.05, 1e38]}, x, y, cv=2, fit={"epochs": 1},
                         progress=False)
    diverged = search.results[1]
    assert np.isnan(diverged.scores["val_accuracy"]).all()
    assert all("loss became" in error for error in diverged.errors)
    assert search.best_index == 0


@pytest.mark.parametrize("call, message", [
    (lambda x, y: cross_validate("no_such_model", x, y), "unknown zoo model"),
    (lambda x, y: cross_validate(small_model, x, y, fit={"epoch": 3}), "not epoch"),
    (lambda x, y: cross_validate(small_model, x, y, executor="spark"), "unknown executor"),
    (lambda x, y: cross_validate(small_model, x, y[:-1]), "labels y"),
    (lambda x, y: cross_validate(small_model, x, y, cv=1), "2 <= k"),
    (lambda x, y: cross_validate(lambda seed: small_model(seed), x, y, executor="local"),
     "top level of a module"),
    (lambda x, y: grid_search("keras_kfold_cnn", {"betas": [1]}, x, y), "do not fit the sgd"),
    (lambda x, y: grid_search(small_model, {"lr": 0.1}, x, y), "needs a list"),
])
def test_bad_arguments_say_what_to_change(data, call, message):
    x, y = data
    with pytest.raises(fastcnn.InputError, match=message):
        call(x, y)


def test_a_model_function_must_return_a_compiled_sequential(data):
    x, y = data
    with pytest.raises(fastcnn.InputError, match="not compiled"):
        cross_validate(lambda: fastcnn.Sequential([fastcnn.Flatten()], input_shape=(1, 8, 8)), x, y)


def test_a_local_worker_that_dies_has_its_fold_run_again_with_the_same_scores(
        data, tmp_path, monkeypatch, capsys):
    x, y = data
    marker = tmp_path / "died"
    monkeypatch.setenv("FASTCNN_TEST_DIE_ONCE", str(marker))
    undisturbed = cross_validate(small_model, x, y, cv=2, fit=FIT, progress=False)
    result = cross_validate(dies_once_in_a_worker, x, y, cv=2, fit=FIT, executor="local",
                            workers=1, retries=1, progress=False)
    assert marker.exists()
    assert "its worker process died (exit code -9); running it again (attempt 2 of 2)" in \
        capsys.readouterr().err
    for metric, values in undisturbed.scores.items():
        assert np.array_equal(result.scores[metric], values), metric


def test_a_fold_whose_worker_always_dies_is_named_after_its_retries(data):
    x, y = data
    with pytest.raises(JobError, match=r"fold \d/2 failed after 2 attempts: its worker process "
                                       r"died \(exit code -9\)"):
        cross_validate(dies_in_workers, x, y, cv=2, fit={"epochs": 1}, executor="local",
                       workers=1, retries=1, progress=False)


def test_a_fold_whose_dask_workers_all_die_is_named(data, client):
    x, y = data
    with pytest.raises(JobError, match=r"fold \d/2 failed: each worker that ran it died"):
        cross_validate(dies_in_workers, x, y, cv=2, fit={"epochs": 1}, executor=client,
                       progress=False)
    client.wait_for_workers(2, timeout=300)  # the nannies restart them: slow on a busy machine


def test_ctrl_c_cancels_the_remaining_folds_and_ends_the_workers(tmp_path):
    psutil = pytest.importorskip("psutil")
    script = tmp_path / "long_cv.py"
    script.write_text(textwrap.dedent(f"""
        import signal
        import sys
        sys.path[:0] = [{str(REPO)!r}, {str(REPO / "tests")!r}]
        import fastcnn
        from helpers import mnist_like
        if __name__ == "__main__":
            # as in a terminal: a shell ignores SIGINT in its background jobs, and Python
            # keeps an ignored SIGINT ignored, so a suite run with & would never see Ctrl-C
            signal.signal(signal.SIGINT, signal.default_int_handler)
            x, y = mnist_like(400)
            print("started", flush=True)
            try:
                fastcnn.cross_validate("keras_kfold_cnn", x, y, cv=8, fit={{"epochs": 200}},
                                       executor="local", workers=2, progress=False)
            except KeyboardInterrupt:
                print("interrupted", flush=True)
                sys.exit(130)
    """))
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "started"
        parent = psutil.Process(process.pid)
        workers = []
        deadline = time.monotonic() + 600  # the warm-up before them compiles on an empty cache
        while time.monotonic() < deadline:
            workers = [child for child in parent.children()
                       if "spawn_main" in " ".join(child.cmdline())]
            if len(workers) == 2:
                break
            time.sleep(0.05)
        assert len(workers) == 2, "the two local workers never started"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130
        assert process.stdout.read().strip() == "interrupted"
        gone, alive = psutil.wait_procs(workers, timeout=10)
        assert not alive
    finally:
        process.kill()
