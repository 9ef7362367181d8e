"""fastcnn reproduce: each tutorial's recipe on its real dataset, reported beside the article.

The runs here are tiny (a few hundred images, one epoch, a few dozen full-batch
iterations): they check the report's structure and honesty, not the accuracy.
"""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

import fastcnn
from fastcnn.cli import EXIT_ERROR, main
from fastcnn.reproduce import (QUICK, ArticleResult, Report, Run, Scale, render_report, reproduce,
                               run_article, write_report)

pytestmark = pytest.mark.usefixtures("data_dir")

TINY = Scale(train=200, test=100, epochs=1, iterations=30)
BACKEND = "numpy"  # the reference backend: always usable, so these tests never depend on a build


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return reproduce(["numpy_mlp", "fixed_kernel_cnn", "kmnist_cnn"], quick=True, out=out,
                     backend=BACKEND, verbose=0, scale=TINY)


def assert_png(path):
    with Image.open(path) as image:
        assert image.format == "PNG" and image.mode in ("RGB", "RGBA")
        assert np.asarray(image.convert("L")).std() > 0


def test_quick_report_has_a_table_per_article_with_the_article_figures(quick_report):
    text = quick_report.path.read_text(encoding="utf-8")
    assert quick_report.path.name == "report.md"
    for article in ("numpy_mlp", "fixed_kernel_cnn", "kmnist_cnn"):
        assert f"## {article}: " in text
    assert "| | article | fastcnn | fastcnn compat=True |" in text   # numpy_mlp, both variants
    assert "| test accuracy | 83.67% |" in text                         # numpy_mlp's article figure
    assert "| test accuracy | 83.38% |" in text                         # fixed kernel's
    assert "| iterations | 40,000 | 30 |" in text
    assert "| training time (per seed) | 1 h 10 min |" in text
    assert "**quick**" in text and f"Backend: **{BACKEND}**" in text
    assert "| | article | benchmark protocol | article protocol |" in text  # kmnist's two rows


def test_report_names_the_backend_and_the_machine(quick_report):
    text = quick_report.path.read_text(encoding="utf-8")
    machine = quick_report.machine
    assert machine["cores"] >= 1 and machine["cpu"]
    assert f"{machine['cpu']}, {machine['cores']} cores" in text
    assert quick_report.backend == BACKEND


def test_kmnist_is_trained_on_the_real_training_images(quick_report):
    kmnist = next(r for r in quick_report.articles if r.article == "kmnist_cnn")
    assert kmnist.available and kmnist.runs and kmnist.reason == ""
    measured = kmnist.runs[0].measured
    assert 0 <= measured["test_accuracy"] <= 1
    text = quick_report.path.read_text(encoding="utf-8").split("## kmnist_cnn")[1].split("## ")[0]
    assert "Dataset not available" not in text and "| test accuracy | 95.12% |" in text


def kmnist_without_training_images(data_dir, folder):
    (folder / "kmnist").mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        shutil.copyfile(data_dir / "kmnist" / name, folder / "kmnist" / name)


def test_a_missing_dataset_is_reported_unavailable_not_faked(data_dir, tmp_path, monkeypatch):
    kmnist_without_training_images(data_dir, tmp_path / "data")
    monkeypatch.setenv("FASTCNN_DATA", str(tmp_path / "data"))
    with fastcnn.use_backend(BACKEND):
        kmnist = run_article("kmnist_cnn", TINY, out=tmp_path / "out", verbose=0)
    assert not kmnist.available and kmnist.runs == [] and kmnist.plots == {}
    assert "training images missing" in kmnist.reason
    report = Report([kmnist], BACKEND, {"cpu": "x", "cores": 1, "os": "", "python": "",
                                        "numpy": "", "fastcnn": ""}, True)
    text = write_report(report, tmp_path / "out").read_text(encoding="utf-8")
    text = text.split("## kmnist_cnn")[1].split("## ")[0]
    assert "**Dataset not available**: kmnist training images missing" in text
    assert "| | article |" in text and "fastcnn" not in text.split("| | article |")[1]


def test_every_plot_of_the_report_is_a_png_beside_it(quick_report):
    text = quick_report.path.read_text(encoding="utf-8")
    plots = [name for result in quick_report.articles for name in result.plots.values()]
    assert "fixed_kernel_cnn_feature_maps.png" in plots and "numpy_mlp_compat_curves.png" in plots
    for name in plots:
        assert f"]({name})" in text
        assert_png(quick_report.path.parent / name)


def test_report_json_holds_the_measurements(quick_report):
    data = json.loads((quick_report.path.parent / "report.json").read_text())
    by_name = {article["article"]: article for article in data["articles"]}
    mlp = by_name["numpy_mlp"]["runs"]
    assert [run["label"] for run in mlp] == ["fastcnn", "fastcnn compat=True"]
    assert mlp[0]["measured"]["train_images"] == 200 - 200 // 6   # the tutorial's 5:1 split
    assert mlp[1]["measured"]["iterations"] == 30   # compat: sampled batches, not epochs
    fixed = by_name["fixed_kernel_cnn"]["runs"][0]["measured"]
    assert fixed["iterations"] == 30 and 0 <= fixed["test_accuracy"] <= 1
    for key in ("mid_test_accuracy", "mid_train_accuracy", "mid_loss", "train_accuracy", "loss"):
        assert fixed[key] is not None, key
    assert len(by_name["fixed_kernel_cnn"]["runs"][0]["history"]["loss"]) == 30
    assert data["scale"] == {"train": 200, "test": 100, "epochs": 1, "iterations": 30, "seeds": 1}
    kmnist = by_name["kmnist_cnn"]
    assert [run["label"] for run in kmnist["runs"]] == ["benchmark protocol", "article protocol"]
    assert kmnist["runs"][0]["measured"]["train_images"] == 200     # every training image
    assert kmnist["runs"][1]["measured"]["train_images"] == 160     # the article's 80/20 split
    assert by_name["numpy_mlp"]["backend"] == BACKEND and by_name["numpy_mlp"]["seconds"] > 0


def test_kfold_reports_mean_and_std_over_five_folds(tmp_path):
    with fastcnn.use_backend(BACKEND):
        result = run_article("keras_kfold_cnn", Scale(train=100, test=20, epochs=1), out=tmp_path,
                             verbose=0)
    measured = result.runs[0].measured
    scores = measured["fold_accuracies"]
    assert len(scores) == 5 and len(result.runs[0].history) == 5
    assert measured["mean_accuracy"] == pytest.approx(np.mean(scores))
    assert measured["std_accuracy"] == pytest.approx(np.std(scores))
    assert (measured["train_images"], measured["validation_images"]) == (80, 20)
    assert set(result.plots.values()) == {"keras_kfold_cnn_folds.png", "keras_kfold_cnn_scores.png"}
    report = Report([result], BACKEND, {"cpu": "x", "cores": 1, "os": "", "python": "",
                                        "numpy": "", "fastcnn": ""}, True)
    assert "| accuracy, mean ± std over the folds (of every seed) | 98.68% ± 0.11% | " in \
        render_report(report)


def test_kfold_over_seeds_runs_the_same_folds_again_and_pools_the_scores(tmp_path):
    with fastcnn.use_backend(BACKEND):
        result = run_article("keras_kfold_cnn", Scale(train=100, test=20, epochs=1, seeds=2),
                             out=tmp_path, verbose=0)
    measured = result.runs[0].measured
    per_seed = measured["fold_accuracies_per_seed"]
    assert measured["seeds"] == [0, 5] and [len(scores) for scores in per_seed] == [5, 5]
    pooled = per_seed[0] + per_seed[1]
    assert measured["mean_accuracy"] == pytest.approx(np.mean(pooled))
    assert measured["std_accuracy"] == pytest.approx(np.std(pooled))
    assert measured["fold_accuracies"] == pytest.approx(np.mean(per_seed, axis=0))
    assert measured["seed_means"] == pytest.approx(np.mean(per_seed, axis=1))
    assert len(result.runs[0].history) == 5  # the curves: the first seed's folds
    assert any("ran 2 times, with model seeds 0..4, 5..9" in note for note in result.notes)


def test_pytorch_cnn_splits_the_test_images_nine_to_one(tmp_path):
    with fastcnn.use_backend(BACKEND):
        result = run_article("pytorch_cnn", Scale(train=32, test=50, epochs=1), out=tmp_path,
                             verbose=0)
    measured = result.runs[0].measured
    assert (measured["validation_images"], measured["test_images"]) == (45, 5)
    assert measured["best_epoch"] == 1 and measured["epochs"] == 1
    assert "best_val_loss" in measured
    best = fastcnn.load_model(tmp_path / measured["best_model_file"])   # the tutorial's best model file
    assert {"conv_1.weight", "conv_2.weight", "linear_1.weight", "linear_2.weight"} <= \
        set(best.state_dict())


def test_fit_with_the_frozen_head_cached_equals_running_the_whole_network_each_step():
    (x, y), _ = fastcnn.datasets.load("mnist")
    x, y = x[:64], y[:64]
    with fastcnn.use_backend(BACKEND):
        cached = fastcnn.zoo.get("fixed_kernel_cnn", seed=3)
        cached.compile(fastcnn.optim.SGD(lr=0.5), "cross_entropy")
        frozen = cached._frozen_prefix(cached.plan("train"))
        assert [name for name, *_ in cached.plan("train").describe()[:frozen]] == \
            ["conv", "pool", "flatten"]
        cached.fit(x, y, epochs=5, batch_size=64, shuffle=False, verbose=0)
        # the low-level loop runs every layer every step; the Softmax is left out
        # because the loss takes logits
        layers = fastcnn.zoo.get("fixed_kernel_cnn", seed=3).layers[:-1]
        whole = fastcnn.Sequential(layers, seed=3)
        loss = fastcnn.losses.CrossEntropy()
        optimizer = fastcnn.optim.SGD(whole.parameters(), lr=0.5)
        for _ in range(5):
            optimizer.zero_grad()
            loss(whole.forward(x, training=True), y)
            whole.backward(loss.backward())
            optimizer.step()
    for (name, expected), (_, got) in zip(whole.state_dict().items(), cached.state_dict().items()):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=name)


def test_quick_scale_is_small():
    assert QUICK.train <= 1000 and QUICK.test <= 500 and QUICK.epochs == 1
    assert QUICK.iterations <= 500


def test_render_report_marks_missing_values_with_a_dash():
    result = ArticleResult("pytorch_cnn", "PyTorch MNIST CNN tutorial", "mnist",
                           {"optimizer": "adam", "lr": 0.001, "batch_size": 64, "epochs": 100,
                            "loss": "cross_entropy", "split": "9k/1k", "optimizer_args": {}},
                           {"test_accuracy": 0.993, "best_epoch": 12},
                           [Run("fastcnn", {"test_accuracy": 0.9912, "seconds": 4000.0,
                                            "epochs": 100})])
    report = Report([result], "numba", {"cpu": "CPU", "cores": 2, "os": "Linux", "python": "3",
                                        "numpy": "2", "fastcnn": "0"}, False, seconds=4000)
    text = render_report(report)
    assert "| test accuracy | 99.30% | 99.12% |" in text
    assert "| best epoch | 12 | — |" in text
    assert "| training time (per seed) | — | 1 h 6 min |" in text
    assert "full recipes" in text and "adam (lr 0.001), batch 64, 100 epochs" in text


def _tiny_report():
    result = ArticleResult("pytorch_cnn", "PyTorch MNIST CNN tutorial", "mnist",
                           {"optimizer": "adam", "lr": 0.001, "batch_size": 64, "epochs": 1,
                            "loss": "cross_entropy", "split": "9k/1k", "optimizer_args": {}},
                           {"test_accuracy": 0.993}, [Run("fastcnn", {"test_accuracy": 0.99})])
    return Report([result], "numba", {"cpu": "CPU", "cores": 2, "os": "Linux", "python": "3",
                                      "numpy": "2", "fastcnn": "0"}, False, seconds=1)


def test_a_speedrun_result_beside_the_report_is_shown_after_the_articles(tmp_path):
    runs = [{"engine": engine, "seed": seed, "seconds": seconds, "accuracy": accuracy, "steps": 469}
            for seed, (mine, theirs) in enumerate([(4.0, 8.0), (5.0, 8.0)])
            for engine, seconds, accuracy in (("fastcnn numba", mine, 0.9921 - seed / 1000),
                                              ("pytorch", theirs, 0.9905))]
    speedrun = {"machine": {"cpu": "CPU", "cores": 2, "isa": ["avx2"],
                            "date": "2026-12-07T11:40:40+00:00"},
                "recipe": "adam lr 0.01, batch 128, 1 epoch", "runs": {"recipe": runs}}
    (tmp_path / "mnist_speedrun.json").write_text(json.dumps(speedrun))
    text = write_report(_tiny_report(), tmp_path).read_text(encoding="utf-8")
    section = text[text.index("## Beyond the articles: mnist_speedrun"):]
    assert "0.76 s on a laptop GPU" in section
    assert "| 1 | 99.11% | 5.00 s | 99.05% | 8.00 s |" in section
    assert "2 of 2 seeds at 99.0% or more, 4.50 s" in section
    assert "takes 0.56x pytorch's time (1.78x as fast)" in section
    assert "quiet host" not in section  # runs recorded before CPU/wall and steal were kept
    for run, (ratio, steal) in zip(runs, [(1.8, 0.0), (1.62, 0.001), (1.8, 0.0), (1.5, 0.002)]):
        run.update(cpu_per_wall=ratio, steal=steal)
    (tmp_path / "mnist_speedrun.json").write_text(json.dumps(speedrun))
    text = write_report(_tiny_report(), tmp_path).read_text(encoding="utf-8")
    assert ("PyTorch's own CPU/wall 1.50-1.62, host steal at most 0.20%: 1 of 2 of its runs "
            "on a quiet host") in text


def test_a_corrupted_speedrun_result_is_named_in_the_error(tmp_path):
    (tmp_path / "mnist_speedrun.json").write_text('{"machine": {}')
    with pytest.raises(ValueError, match="mnist_speedrun.json is not a result of "
                                         "benchmarks/speedrun.py --json"):
        write_report(_tiny_report(), tmp_path)
    assert not (tmp_path / "report.md").exists()


def test_reproduce_refuses_unknown_articles(tmp_path):
    with pytest.raises(ValueError, match="unknown article 'resnet'"):
        reproduce(["resnet"], quick=True, out=tmp_path)


def test_cli_reproduce_of_an_unavailable_dataset_exits_1_with_the_reason(
        data_dir, tmp_path, monkeypatch, capsys):
    kmnist_without_training_images(data_dir, tmp_path / "data")
    monkeypatch.setenv("FASTCNN_DATA", str(tmp_path / "data"))
    assert main(["reproduce", "kmnist_cnn", "--quick", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "dataset not available: kmnist training images missing" in out
    assert "Dataset not available" in (tmp_path / "report.md").read_text(encoding="utf-8")


def test_cli_reproduce_unknown_article_is_one_line(tmp_path, capsys):
    assert main(["reproduce", "resnet", "--quick", "--out", str(tmp_path)]) == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "unknown article 'resnet'" in err


def test_articles_run_by_separate_commands_make_one_report(tmp_path):
    first = reproduce(["numpy_mlp"], out=tmp_path, backend=BACKEND, verbose=0, scale=TINY)
    assert [result.article for result in first.articles] == ["numpy_mlp"]
    second = reproduce(["fixed_kernel_cnn"], out=tmp_path, backend=BACKEND, verbose=0, scale=TINY)
    assert [result.article for result in second.articles] == ["numpy_mlp", "fixed_kernel_cnn"]
    text = second.path.read_text(encoding="utf-8")
    assert "## numpy_mlp: " in text and "## fixed_kernel_cnn: " in text
    assert "Articles: 2 of 5 run" in text
    # the articles not run get their place, with the article's figures and how to add them
    kfold = text.split("## keras_kfold_cnn")[1].split("## ")[0]
    assert "**Not run for this report yet**: `fastcnn reproduce keras_kfold_cnn --quick" in kfold
    assert "| accuracy, mean ± std over the folds (of every seed) | 98.68% ± 0.11% |" in kfold
    data = json.loads((tmp_path / "report.json").read_text())
    assert [article["article"] for article in data["articles"]] == ["numpy_mlp", "fixed_kernel_cnn"]
    # a full run into the same folder does not mix with the quick ones
    assert reproduce_saved(tmp_path, quick=False) == {}


def reproduce_saved(folder, quick):
    from fastcnn.reproduce import saved_articles

    return saved_articles(folder, quick)


def test_every_article_figure_names_its_source(quick_report):
    text = quick_report.path.read_text(encoding="utf-8")
    for result in quick_report.articles:
        assert set(result.reported_sources) == set(result.reported) - {"iterations", "folds"}, \
            result.article
    assert "- test accuracy: the KMNIST benchmark" in text
    assert "- test accuracy: the tutorial's repository notebook" in text


def test_cheap_articles_report_mean_and_std_over_seeds(tmp_path):
    with fastcnn.use_backend(BACKEND):
        result = run_article("fixed_kernel_cnn", Scale(train=100, test=50, iterations=6, seeds=3),
                             out=tmp_path, verbose=0)
    measured = result.runs[0].measured
    assert result.runs[0].label == "fastcnn, 3 seeds" and measured["seeds"] == [0, 1, 2]
    assert len(set(measured["per_seed"]["test_loss"])) == 3  # the seeds start from different weights
    per_seed = measured["per_seed"]["test_accuracy"]
    assert measured["test_accuracy"] == pytest.approx(np.mean(per_seed))
    assert measured["test_accuracy_std"] == pytest.approx(np.std(per_seed))
    report = Report([result], BACKEND, result.machine, True)
    section = render_report(report).split("## fixed_kernel_cnn")[1]
    row = next(line for line in section.splitlines() if line.startswith("| test accuracy |"))
    assert f"{measured['test_accuracy']:.2%} ± {measured['test_accuracy_std']:.2%}" in row


def test_full_batch_fit_stages_the_training_set_once_not_every_iteration(monkeypatch):
    x, y = fastcnn.datasets.load("mnist")[0]
    x, y = x[:64], y[:64]
    with fastcnn.use_backend(BACKEND):
        model = fastcnn.zoo.get("fixed_kernel_cnn", seed=0)
        model.compile(fastcnn.optim.SGD(lr=0.5), "cross_entropy")
        seen, train_step = [], model.train_step
        monkeypatch.setattr(model, "train_step",
                            lambda xb, yb, plan=None, weights=None: seen.append(xb) or
                            train_step(xb, yb, plan, weights))
        model.fit(x, y, epochs=4, batch_size=64, shuffle=False, verbose=0)
        assert len(seen) == 4 and all(batch is seen[0] for batch in seen)
        seen.clear()
        model.fit(x, y, epochs=6, batch_size=32, shuffle=False, verbose=0,
                  initial_epoch=model.epoch)  # epochs 5-6, 2 slices each
        assert len(seen) == 4 and all(batch.base is not None for batch in seen)  # views, no copies


def test_reproduce_seeds_sets_how_many_seeds_the_cheap_articles_run(tmp_path):
    report = reproduce(["fixed_kernel_cnn"], out=tmp_path, backend=BACKEND, verbose=0,
                       scale=Scale(train=60, test=20, iterations=4), seeds=2)
    run = report.articles[0].runs[0]
    assert run.label == "fastcnn, 2 seeds" and run.measured["seeds"] == [0, 1]
    assert report.quick and report.articles[0].scale["seeds"] == 2
    with pytest.raises(ValueError, match="seeds must be >= 1, got 0"):
        reproduce(["fixed_kernel_cnn"], out=tmp_path, backend=BACKEND, verbose=0, scale=TINY, seeds=0)


def test_a_report_can_be_rebuilt_from_the_kept_article_results(tmp_path):
    from fastcnn.reproduce import rebuild_report

    with pytest.raises(ValueError, match="no quick article results"):
        rebuild_report(tmp_path, quick=True)
    reproduce(["fixed_kernel_cnn"], out=tmp_path, backend=BACKEND, verbose=0, scale=TINY)
    (tmp_path / "report.md").unlink()
    report = rebuild_report(tmp_path, quick=True)
    assert [result.article for result in report.articles] == ["fixed_kernel_cnn"]
    assert "## fixed_kernel_cnn: " in report.path.read_text(encoding="utf-8")
