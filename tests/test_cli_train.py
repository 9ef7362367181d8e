"""fastcnn train: --resume continues the file's model, optimizer and recipe; bad flags are
refused before any training; redirected output gets one line per epoch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import fastcnn
from conftest import REPO
from fastcnn.cli import EXIT_ERROR, main

pytestmark = pytest.mark.usefixtures("data_dir")

QUICK = ["--limit", "96", "--batch-size", "32"]


@pytest.fixture(autouse=True)
def numpy_backend():
    with fastcnn.use_backend("numpy"):
        yield


def _cli_checkpoint(tmp_path_factory, folder, model, *options):
    """The file `fastcnn train --model <model> <options>` saves after one quick epoch (numpy)."""
    path = tmp_path_factory.mktemp(folder) / f"{folder}.npz"
    with fastcnn.use_backend("numpy"):
        assert main(["train", "--model", model, *options, "--epochs", "1", *QUICK,
                     "--save", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def kfold_checkpoint(tmp_path_factory):
    """keras_kfold_cnn (SGD, momentum 0.9) after one epoch on 96 MNIST images, saved by the CLI."""
    return _cli_checkpoint(tmp_path_factory, "resume", "keras_kfold_cnn")


def error_line(capsys, *words):
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("fastcnn train: error: "), err
    for word in words:
        assert word in err, err
    return err


def test_resume_continues_the_files_model_optimizer_and_recipe(kfold_checkpoint, tmp_path, capsys):
    capsys.readouterr()
    out_path = tmp_path / "more.npz"
    assert main(["train", "--resume", str(kfold_checkpoint), "--epochs", "3", "--limit", "96",
                 "--save", str(out_path)]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    assert header.startswith("training keras_kfold_cnn on mnist (96 images)")
    assert "sgd lr 0.01, cross-entropy, batch 32, 3 epochs, from epoch 2" in header
    assert "epoch 2/3 - loss" in out and "epoch 3/3 - loss" in out and "epoch 1/3" not in out
    assert "trained 2 epochs" in out
    resumed = fastcnn.load_model(out_path)
    assert resumed.name == "keras_kfold_cnn" and resumed.epoch == 3
    assert resumed.optimizer.name == "sgd" and resumed.optimizer.momentum == 0.9


@pytest.mark.parametrize("flags, words", [
    (["--model", "pytorch_cnn"], ["--model pytorch_cnn (the file holds keras_kfold_cnn)"]),
    (["--optimizer", "adam"], ["--optimizer adam (the file's optimizer is sgd)"]),
    (["--compat"], ["--compat"]),
    (["--epochs", "1"], ["has trained 1 epoch already", "--epochs 2 or more"]),
])
def test_resume_refuses_flags_that_contradict_the_file(kfold_checkpoint, flags, words, capsys):
    capsys.readouterr()
    assert main(["train", "--resume", str(kfold_checkpoint), *flags]) == EXIT_ERROR
    error_line(capsys, *words)


@pytest.mark.parametrize("flags", [["--checkpoint", "best.npz"], ["--patience", "2"]])
def test_checkpoint_and_patience_without_a_validation_split_are_refused(tmp_path, flags, capsys,
                                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--model", "keras_kfold_cnn", *QUICK, *flags]) == EXIT_ERROR
    error_line(capsys, flags[0], "no validation split", "--validation-split 0.1")
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_with_a_validation_split_writes_the_best_model(tmp_path, capsys):
    best = tmp_path / "best.npz"
    assert main(["train", "--model", "keras_kfold_cnn", "--epochs", "1", *QUICK,
                 "--validation-split", "0.25", "--checkpoint", str(best)]) == 0
    assert fastcnn.load_model(best).epoch == 1


@pytest.mark.parametrize("value", ["0", "-5"])
def test_a_limit_below_one_is_refused(value, capsys):
    assert main(["train", "--model", "keras_kfold_cnn", "--limit", value]) == EXIT_ERROR
    error_line(capsys, f"--limit must be at least 1, got {value}")


def test_an_unwritable_save_path_is_refused_before_training(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for target, words in [(tmp_path, ["is a folder"]), (blocker / "model.npz", ["is a file"])]:
        assert main(["train", "--model", "keras_kfold_cnn", *QUICK, "--save", str(target)]) == EXIT_ERROR
        out = capsys.readouterr()
        assert "training keras_kfold_cnn" not in out.out
        assert f"cannot save to {target}" in out.err and all(word in out.err for word in words)


def test_redirected_output_gets_one_line_per_epoch_and_no_progress_bar_frames(tmp_path):
    env = dict(os.environ, FASTCNN_BACKEND="numpy", PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "fastcnn", "train", "--model", "keras_kfold_cnn",
                           "--epochs", "2", *QUICK], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stdout + done.stderr
    epoch_lines = [line for line in done.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split(" - ")[0] for line in epoch_lines] == ["epoch 1/2", "epoch 2/2"]


# ---- a saved model knows its data (issue 26) -----------------------------------------------
@pytest.fixture(scope="module")
def fashion_checkpoint(tmp_path_factory):
    """keras_kfold_cnn after one epoch on 96 Fashion-MNIST images (the name as a user types it)."""
    return _cli_checkpoint(tmp_path_factory, "fashion", "keras_kfold_cnn", "--dataset",
                           "Fashion_MNIST")


def test_the_saved_model_records_its_dataset_classes_and_preprocessing(fashion_checkpoint):
    info = fastcnn.load_model(fashion_checkpoint).data_info
    assert info["dataset"] == "fashion-mnist" and info["train_images"] == 96
    assert info["classes"] == list(fastcnn.datasets.class_names("fashion-mnist"))
    assert info["preprocessing"] == {"input": "uint8", "scale": 255, "shape": [1, 28, 28]}


def test_evaluate_scores_on_the_models_own_dataset_and_says_what_it_trained_on(fashion_checkpoint,
                                                                               capsys):
    capsys.readouterr()
    assert main(["evaluate", str(fashion_checkpoint), "--limit", "50"]) == 0
    out = capsys.readouterr().out
    assert "trained 1 epoch on fashion-mnist (96 training images)" in out
    assert "on 50 fashion-mnist test images" in out and "Ankle boot" in out


def test_evaluate_on_another_dataset_is_refused_unless_allowed(fashion_checkpoint, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(fashion_checkpoint), "--dataset", "mnist"]) == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "trained on fashion-mnist, not mnist" in err
    assert "--allow-other-dataset" in err
    assert main(["evaluate", str(fashion_checkpoint), "--dataset", "MNIST", "--limit", "50",
                 "--allow-other-dataset"]) == 0
    assert "on 50 mnist test images" in capsys.readouterr().out


def test_resume_trains_on_the_files_dataset_and_saves_back_to_the_file(fashion_checkpoint, tmp_path,
                                                                       capsys):
    resumed = tmp_path / "fm.npz"
    resumed.write_bytes(fashion_checkpoint.read_bytes())
    capsys.readouterr()
    assert main(["train", "--resume", str(resumed), "--epochs", "2", *QUICK]) == 0
    out = capsys.readouterr().out
    assert out.startswith("training keras_kfold_cnn on fashion-mnist (96 images)")
    assert f"saved the model to {resumed} (the --resume file)" in out
    model = fastcnn.load_model(resumed)
    assert model.epoch == 2 and model.data_info["dataset"] == "fashion-mnist"


def test_resume_with_no_save_leaves_the_file_as_it_was(fashion_checkpoint, tmp_path, capsys):
    resumed = tmp_path / "fm.npz"
    resumed.write_bytes(fashion_checkpoint.read_bytes())
    assert main(["train", "--resume", str(resumed), "--epochs", "2", *QUICK, "--no-save"]) == 0
    assert "saved the model" not in capsys.readouterr().out
    assert resumed.read_bytes() == fashion_checkpoint.read_bytes()


def test_resume_on_another_dataset_is_refused_unless_allowed(fashion_checkpoint, capsys):
    capsys.readouterr()
    assert main(["train", "--resume", str(fashion_checkpoint), "--epochs", "2",
                 "--dataset", "mnist"]) == EXIT_ERROR
    error_line(capsys, "trained on fashion-mnist, not mnist", "--allow-other-dataset")


@pytest.mark.parametrize("name", ["MNIST", "fashion_mnist", "KMnist"])
def test_dataset_names_are_accepted_in_any_case_and_with_underscores(name, monkeypatch, capsys):
    import fastcnn.datasets

    def tiny(dataset, split=None, **options):  # the name load() gets, and no training to wait for
        raise fastcnn.errors.InputError(f"loaded {dataset}")

    monkeypatch.setattr(fastcnn.datasets, "load", tiny)
    assert main(["train", "--model", "keras_kfold_cnn", "--dataset", name, *QUICK]) == EXIT_ERROR
    expected = fastcnn.datasets.registry.canonical_name(name)
    error_line(capsys, f"loaded {expected}")


def test_train_reports_the_whole_test_set(monkeypatch, capsys):
    """pytorch_cnn's tutorial validates on 9/10 of the test set; `train` tests on all of it."""
    import fastcnn.datasets

    real = fastcnn.datasets.load("mnist")
    (x, y), (xt, yt) = (real[0][0][:64], real[0][1][:64]), (real[1][0][:50], real[1][1][:50])
    monkeypatch.setattr(fastcnn.datasets, "load", lambda *args, **kwargs: ((x, y), (xt, yt)))
    assert main(["train", "--model", "pytorch_cnn", "--epochs", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "training pytorch_cnn on mnist (64 images)" in out
    assert out.rstrip().endswith("50 images)") and "val_loss" not in out


def test_optimizer_choices_come_from_the_optimizer_registry(capsys):
    from fastcnn.cli import build_parser
    from fastcnn.optim import OPTIMIZERS

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    optimizer = next(action for action in train._actions if action.dest == "optimizer")
    assert set(optimizer.choices) == set(OPTIMIZERS) and "rmsprop" in optimizer.choices


def test_training_with_rmsprop_from_the_command_line(capsys):
    assert main(["train", "--model", "keras_kfold_cnn", "--epochs", "1", *QUICK,
                 "--optimizer", "rmsprop", "--lr", "0.001", "--quiet"]) == 0
    assert "rmsprop lr 0.001" in capsys.readouterr().out


# ---- a saved schedule goes on, or starts afresh with --new-schedule (issue 22) -------------------
@pytest.fixture(scope="module")
def speedrun_checkpoint(tmp_path_factory):
    """mnist_speedrun (Adam, a one-cycle over the fit: 3 batches) after one epoch on 96 images."""
    return _cli_checkpoint(tmp_path_factory, "speedrun", "mnist_speedrun")


def test_resume_past_the_end_of_the_files_schedule_says_to_start_a_new_one(speedrun_checkpoint,
                                                                            capsys):
    assert fastcnn.load_model(speedrun_checkpoint).schedule.last_epoch == 3
    capsys.readouterr()
    assert main(["train", "--resume", str(speedrun_checkpoint), "--epochs", "2", *QUICK,
                 "--no-save"]) == EXIT_ERROR
    error_line(capsys, "OneCycleLR would be stepped past its last step (3)", "--new-schedule")


def test_resume_with_new_schedule_spans_the_epochs_left_at_the_given_rate(speedrun_checkpoint,
                                                                          tmp_path, capsys):
    out_path = tmp_path / "more.npz"
    assert main(["train", "--resume", str(speedrun_checkpoint), "--epochs", "2", *QUICK,
                 "--new-schedule", "--lr", "0.005", "--save", str(out_path)]) == 0
    assert "adam lr 0.005, OneCycleLR" in capsys.readouterr().out
    resumed = fastcnn.load_model(out_path)
    assert resumed.epoch == 2 and resumed.schedule.max_lr == 0.005
    assert resumed.schedule.total_steps == 3 and resumed.schedule.last_epoch == 3


@pytest.mark.parametrize("flags, words", [
    (["--lr", "0.01"], ["OneCycleLR sets the learning rate", "add --new-schedule", "or drop --lr"]),
])
def test_resume_refuses_a_rate_the_files_schedule_would_override(speedrun_checkpoint, flags, words,
                                                                 capsys):
    capsys.readouterr()
    assert main(["train", "--resume", str(speedrun_checkpoint), "--epochs", "2", *flags]) == EXIT_ERROR
    error_line(capsys, *words)


def test_new_schedule_without_resume_is_refused(capsys):
    assert main(["train", "--model", "mnist_speedrun", "--new-schedule"]) == EXIT_ERROR
    error_line(capsys, "--new-schedule restarts the schedule of a --resume file")


def test_resume_of_a_file_saved_without_its_schedule_says_how_to_restart_it(speedrun_checkpoint,
                                                                            tmp_path, capsys):
    from fastcnn import serialization

    old = tmp_path / "old.npz"
    arrays, meta = serialization.read(speedrun_checkpoint)
    serialization.write(old, arrays, {key: value for key, value in meta.items() if key != "schedule"})
    capsys.readouterr()
    assert main(["train", "--resume", str(old), "--epochs", "2", *QUICK, "--no-save"]) == 0
    err = capsys.readouterr().err
    assert f"note: {old} holds no learning-rate schedule" in err
    assert "--new-schedule restarts the recipe's OneCycleLR" in err
