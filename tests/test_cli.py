"""The user commands: fastcnn evaluate, predict, datasets and reproduce, and their errors.

In-process calls go through ``fastcnn.cli.main``; a few run ``python -m fastcnn``
to check the exit status and the one-line error a shell user sees.
"""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import fastcnn
from fastcnn.cli import EXIT_ERROR, main

pytestmark = pytest.mark.usefixtures("data_dir")


@pytest.fixture(autouse=True)
def numpy_backend():
    with fastcnn.use_backend("numpy"):
        yield


@pytest.fixture(scope="module")
def mnist_test():
    return fastcnn.datasets.load("mnist", "test")


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A keras_kfold_cnn trained briefly on 600 MNIST images, saved as .npz."""
    (x, y), _ = fastcnn.datasets.load("mnist")
    with fastcnn.use_backend("numpy"):
        model = fastcnn.zoo.get("keras_kfold_cnn", seed=0)
        model.compile(fastcnn.zoo.recipe("keras_kfold_cnn").make_optimizer(), "cross_entropy")
        model.fit(x[:600], y[:600], epochs=1, batch_size=32, verbose=0)
    path = tmp_path_factory.mktemp("model") / "kfold.npz"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory, mnist_test):
    """Three MNIST test digits saved as dark-on-white PNGs (as a user would draw them)."""
    folder = tmp_path_factory.mktemp("digits")
    x, y = mnist_test
    paths = []
    for i in range(3):
        paths.append(folder / f"digit{i}_{y[i]}.png")
        Image.fromarray(255 - x[i]).resize((84, 84)).save(paths[-1])
    return paths


def one_error_line(captured, *words):
    """stderr is one line naming the command, with every word in it."""
    err = captured.err.strip()
    assert "\n" not in err, err
    assert err.startswith("fastcnn ")
    for word in words:
        assert word in err, err
    return err


def run_module(*args):
    env = dict(os.environ, FASTCNN_BACKEND="numpy")
    return subprocess.run([sys.executable, "-m", "fastcnn", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=120)


# ---- evaluate ---------------------------------------------------------------------------------
def test_evaluate_prints_accuracy_loss_per_class_and_confusion_matrix(saved_model, mnist_test, capsys):
    assert main(["evaluate", str(saved_model), "--limit", "300"]) == 0
    out = capsys.readouterr().out
    model = fastcnn.load_model(saved_model)
    expected = model.evaluate(*(part[:300] for part in mnist_test))
    assert f"accuracy: {expected['accuracy']:.2%}" in out
    assert f"loss:     {expected['loss']:.4f}" in out
    assert "on 300 mnist test images" in out
    assert "per-class accuracy:" in out and "confusion matrix:" in out
    table = out.split("confusion matrix:")[1].strip().splitlines()[2:]
    counts = np.array([[int(v) for v in line.split()[1:]] for line in table])
    assert counts.shape == (10, 10) and counts.sum() == 300
    assert np.trace(counts) == round(expected["accuracy"] * 300)


def test_evaluate_draws_the_confusion_matrix(saved_model, tmp_path, capsys):
    target = tmp_path / "plots" / "cm.png"
    assert main(["evaluate", str(saved_model), "--dataset", "fashion-mnist", "--limit", "100",
                 "--plot-confusion", str(target)]) == 0
    assert "fashion-mnist" in capsys.readouterr().out
    with Image.open(target) as image:
        assert image.format == "PNG" and image.size == (560, 500)


def test_evaluate_missing_file_is_one_line(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nope.npz")]) == EXIT_ERROR
    one_error_line(capsys.readouterr(), "evaluate", "does not exist")


def test_evaluate_refuses_files_that_are_not_models(tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("not a model")
    assert main(["evaluate", str(text)]) == EXIT_ERROR
    one_error_line(capsys.readouterr(), "not an .npz archive")
    other = tmp_path / "arrays.npz"
    np.savez(other, a=np.zeros(3))
    assert main(["evaluate", str(other)]) == EXIT_ERROR
    one_error_line(capsys.readouterr(), "not a fastcnn model")
    assert main(["evaluate", str(tmp_path)]) == EXIT_ERROR
    one_error_line(capsys.readouterr(), "is a folder")


def kmnist_without_training_images(data_dir, folder):
    """A data folder whose kmnist/ lacks the training images (both formats)."""
    (folder / "kmnist").mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        shutil.copyfile(data_dir / "kmnist" / name, folder / "kmnist" / name)
    return folder


def test_evaluate_on_kmnist_training_images_says_they_are_missing(
        saved_model, data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FASTCNN_DATA", str(kmnist_without_training_images(data_dir, tmp_path)))
    assert main(["evaluate", str(saved_model), "--dataset", "kmnist", "--split", "train"]) == EXIT_ERROR
    one_error_line(capsys.readouterr(), "kmnist train images are missing")


def test_evaluate_unknown_dataset_and_bad_limit(saved_model, capsys):
    assert main(["evaluate", str(saved_model), "--dataset", "cifar"]) == EXIT_ERROR
    one_error_line(capsys.readouterr(), "unknown dataset 'cifar'")
    assert main(["evaluate", str(saved_model), "--limit", "0"]) == EXIT_ERROR
    one_error_line(capsys.readouterr(), "--limit")


# ---- predict -----------------------------------------------------------------------------------
def test_predict_prints_each_image_class_and_top3(saved_model, digit_files, capsys):
    assert main(["predict", str(saved_model), *map(str, digit_files)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    model = fastcnn.load_model(saved_model)
    assert len(lines) == 3
    for path, line in zip(digit_files, lines):
        probabilities = model.predict(fastcnn.datasets.load_image(path))[0]
        best = int(probabilities.argmax())
        assert line.startswith(f"{path}: {best}   top-3: {best} {probabilities[best]:.1%}, ")
        assert line.count("%") == 3


def test_predict_uses_the_class_names_of_the_dataset(saved_model, digit_files, capsys):
    assert main(["predict", str(saved_model), str(digit_files[0]), "--dataset", "fashion-mnist",
                 "--top", "2"]) == 0
    line = capsys.readouterr().out.strip()
    names = fastcnn.datasets.class_names("fashion-mnist")
    assert "top-2:" in line and line.count("%") == 2
    assert any(f"{name} (" in line for name in names)


def test_predict_refuses_non_images_and_missing_files(saved_model, tmp_path, capsys):
    fake = tmp_path / "fake.png"
    fake.write_text("not an image")
    assert main(["predict", str(saved_model), str(fake)]) == EXIT_ERROR
    one_error_line(capsys.readouterr(), "predict", "cannot read image file")
    assert main(["predict", str(saved_model), str(tmp_path / "gone.png")]) == EXIT_ERROR
    one_error_line(capsys.readouterr(), "does not exist")


def test_predict_classifies_the_readable_images_and_reports_each_failure(saved_model, digit_files,
                                                                         tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    paths = [digit_files[0], notes, tmp_path / "gone.png", digit_files[1]]
    assert main(["predict", str(saved_model), *map(str, paths)]) == EXIT_ERROR
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert [line.split(": ")[0] for line in lines] == [str(digit_files[0]), str(digit_files[1])]
    assert f"cannot read image file {notes}" in captured.err and "gone.png does not exist" in captured.err
    assert "2 of 4 images could not be read" in captured.err


def test_evaluate_says_when_an_older_file_does_not_know_its_dataset(saved_model, capsys):
    assert fastcnn.load_model(saved_model).data_info is None  # saved from Python, no dataset given
    assert main(["evaluate", str(saved_model), "--limit", "20"]) == 0
    out = capsys.readouterr().out
    assert "trained 1 epoch (the file does not say on which dataset)" in out
    assert "on 20 mnist test images" in out  # the zoo model's tutorial dataset


def test_predict_with_an_image_given_as_the_model(digit_files, capsys):
    assert main(["predict", str(digit_files[0]), str(digit_files[1])]) == EXIT_ERROR
    one_error_line(capsys.readouterr(), "not a saved fastcnn model")


# ---- datasets ------------------------------------------------------------------------------------
def test_datasets_list_shows_folders_files_and_completeness(data_dir, capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("mnist", "fashion-mnist", "kmnist"):
        assert f"{name}: " in out and str(data_dir / name) in out
    assert out.count("status:  complete") == 3 and "not present" not in out and "no sum" not in out


def test_datasets_list_shows_an_incomplete_folder(data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FASTCNN_DATA", str(kmnist_without_training_images(data_dir, tmp_path)))
    assert main(["datasets", "list", "kmnist"]) == 0
    kmnist = capsys.readouterr().out.split("kmnist: ")[1]
    assert "incomplete: training images missing" in kmnist
    assert "kmnist-train-imgs.npz  (not present)" in kmnist


def test_datasets_where_prints_just_the_folder(data_dir, capsys):
    assert main(["datasets", "where", "MNIST"]) == 0
    assert capsys.readouterr().out.strip() == str(data_dir / "mnist")


def test_datasets_verify_checks_every_present_file(capsys):
    assert main(["datasets", "verify", "kmnist"]) == 0
    out = capsys.readouterr().out
    assert out.count("    ok  ") == 8 and "FAILED" not in out


def test_datasets_verify_fails_on_a_damaged_file(data_dir, tmp_path, monkeypatch, capsys):
    shutil.copytree(data_dir / "mnist", tmp_path / "mnist")
    labels = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    labels.chmod(0o644)
    labels.write_bytes(labels.read_bytes()[:-10])
    monkeypatch.setenv("FASTCNN_DATA", str(tmp_path))
    assert main(["datasets", "verify", "mnist"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "t10k-labels-idx1-ubyte.gz" in out.split("checksum FAILED")[1]


def test_datasets_unknown_name_is_one_line(capsys):
    assert main(["datasets", "list", "cifar10"]) == EXIT_ERROR
    one_error_line(capsys.readouterr(), "unknown dataset")


# ---- from a shell ---------------------------------------------------------------------------------
def test_shell_errors_are_one_line_with_a_nonzero_exit(tmp_path, saved_model):
    missing = run_module("evaluate", tmp_path / "missing.npz")
    assert missing.returncode == EXIT_ERROR and missing.stdout == ""
    assert missing.stderr.strip().count("\n") == 0 and "does not exist" in missing.stderr
    bad_image = tmp_path / "bad.jpg"
    bad_image.write_bytes(b"\x00" * 64)
    image = run_module("predict", saved_model, bad_image)
    assert image.returncode == EXIT_ERROR and image.stderr.strip().count("\n") == 0
    article = run_module("reproduce", "nope_cnn", "--quick", "--out", tmp_path)
    assert article.returncode == EXIT_ERROR
    assert article.stderr.strip().count("\n") == 0 and "unknown article 'nope_cnn'" in article.stderr


def test_shell_datasets_where(data_dir):
    done = run_module("datasets", "where", "kmnist")
    assert done.returncode == 0 and done.stdout.strip() == str(data_dir / "kmnist")


def test_help_lists_the_user_commands():
    done = run_module("--help")
    for command in ("evaluate", "predict", "datasets", "reproduce"):
        assert command in done.stdout


def test_datasets_list_reports_a_truncated_file_and_the_dataset_incomplete(data_dir, tmp_path,
                                                                          monkeypatch, capsys):
    shutil.copytree(data_dir / "mnist", tmp_path / "mnist")
    labels = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    labels.chmod(0o644)
    labels.write_bytes(labels.read_bytes()[:-10])
    monkeypatch.setenv("FASTCNN_DATA", str(tmp_path))
    assert main(["datasets", "list", "mnist"]) == 0
    out = capsys.readouterr().out
    assert "status:  incomplete: test labels damaged" in out
    line = next(line for line in out.splitlines() if "t10k-labels-idx1-ubyte.gz" in line)
    assert "FAILED" in line and "is truncated: 4,532 bytes where the published file has 4,542" in line
    state = fastcnn.datasets.status("mnist")
    assert not state.complete and state.splits == {"train": True, "test": False}
    assert state.damaged == ("test labels",)


def test_a_dataset_file_with_a_wrong_magic_number_is_not_called_truncated(tmp_path):
    from fastcnn.datasets.idx import read_idx

    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(b"PK\x03\x04" + bytes(200))
    with pytest.raises(fastcnn.DatasetError, match="is not a gzip file") as error:
        read_idx(path)
    assert "truncated" not in str(error.value)


def test_a_bad_fastcnn_backend_variable_leaves_help_working_and_backend_overrides_it(saved_model):
    env = dict(os.environ, FASTCNN_BACKEND="bogus")

    def shell(*args):
        return subprocess.run([sys.executable, "-m", "fastcnn", *map(str, args)], capture_output=True,
                              text=True, env=env, timeout=120)
    helped = shell("train", "--help")
    assert helped.returncode == 0 and "--resume" in helped.stdout and helped.stderr == ""
    refused = shell("evaluate", saved_model, "--limit", "10")
    assert refused.returncode == EXIT_ERROR and refused.stderr.strip().count("\n") == 0
    assert "FASTCNN_BACKEND='bogus' is not a backend" in refused.stderr and "Traceback" not in refused.stderr
    overridden = shell("evaluate", saved_model, "--limit", "10", "--backend", "numpy")
    assert overridden.returncode == 0, overridden.stderr
    assert "with the numpy backend" in overridden.stdout
