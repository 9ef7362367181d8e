"""fastcnn cv, fastcnn sweep and reproduce --executor: what a shell user types and sees."""

import re

import pytest

import fastcnn
from fastcnn.cli import EXIT_ERROR, main

pytestmark = pytest.mark.usefixtures("data_dir")

TINY = ["--limit", "90", "--epochs", "1", "--quiet"]


def _fold_rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")]
            for line in text.splitlines() if re.match(r"^\| \d+( \(best\))? \|", line)]


def test_cv_prints_every_fold_and_the_mean_and_std(capsys):
    assert main(["cv", "--model", "keras_kfold_cnn", "--folds", "3", *TINY]) == 0
    out = capsys.readouterr().out
    rows = _fold_rows(out)
    assert [row[0] for row in rows] == ["1", "2", "3"]
    accuracies = [float(row[1].rstrip("%")) for row in rows]
    summary = re.search(r"val_accuracy ([\d.]+)% ± ([\d.]+)% over 3 folds \(in-process", out)
    assert summary and float(summary.group(1)) == pytest.approx(sum(accuracies) / 3, abs=0.01)


def test_cv_gives_the_same_folds_on_the_local_executor(capsys):
    main(["cv", "--folds", "2", "--seed", "4", *TINY])
    here = _fold_rows(capsys.readouterr().out)
    assert main(["cv", "--folds", "2", "--seed", "4", "--executor", "local", "--workers", "2",
                 *TINY]) == 0
    local = _fold_rows(capsys.readouterr().out)
    assert [row[1:3] for row in local] == [row[1:3] for row in here]
    assert {row[-1] for row in local}.isdisjoint({row[-1] for row in here})


def test_sweep_tables_the_grid_and_names_the_best(capsys):
    assert main(["sweep", "--lr", "1e-4,1e-2", "--batch-size", "16,32", "--folds", "2", *TINY]) == 0
    out = capsys.readouterr().out
    rows = _fold_rows(out)
    assert [(row[1], row[2]) for row in rows] == [("0.0001", "16"), ("0.0001", "32"),
                                                  ("0.01", "16"), ("0.01", "32")]
    best = next(row for row in rows if "(best)" in row[0])
    assert f"best: {{'lr': {float(best[1])}, 'batch_size': {best[2]}, 'epochs': 1}}" in out


def test_sweep_random_trials_draw_from_the_lists(capsys):
    assert main(["sweep", "--lr", "1e-3,1e-2,3e-2", "--trials", "2", "--folds", "2", *TINY]) == 0
    rows = _fold_rows(capsys.readouterr().out)
    assert len(rows) == 2 and all(row[1] in ("0.001", "0.01", "0.03") for row in rows)


@pytest.mark.parametrize("argv, message", [
    (["sweep", "--folds", "2", "--limit", "90"], "at least one of --lr"),
    (["cv", "--executor", "spark", *TINY], "unknown executor 'spark'"),
    (["cv", "--folds", "1", *TINY], "2 <= k"),
    (["cv", "--limit", "1"], "--limit must be at least 2"),
])
def test_bad_options_print_one_line_and_exit_2(capsys, argv, message):
    assert main(argv) == EXIT_ERROR
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_sweep_rejects_a_list_that_is_not_numbers(capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "--lr", "fast,slow"])
    assert "comma-separated float values" in capsys.readouterr().err


def test_reproduce_runs_the_kfold_article_on_the_executor_it_is_given(tmp_path, capsys):
    assert main(["reproduce", "keras_kfold_cnn", "--quick", "--executor", "local", "--quiet",
                 "--out", str(tmp_path)]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "run on the local executor" in report
    assert "| fastcnn | fastcnn, all training images |" in report
    assert fastcnn.distributed.get_executor(None).name == "in-process"  # the scope ended
