"""The MNIST speedrun (issue 23): the recipe, its PyTorch twin, and benchmarks/speedrun.py's
argument handling. No timings: the figures are the script's, on a quiet machine."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from fastcnn import optim, zoo
from helpers import mnist_like, numpy_backend  # noqa: F401

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("numpy_backend")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "speedrun.py"


def script():
    spec = importlib.util.spec_from_file_location("speedrun_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_speedrun_recipe_is_adam_one_cycle_with_label_smoothing_for_one_epoch():
    from fastcnn.schedules import OneCycleLR

    recipe = zoo.recipe("mnist_speedrun")
    assert (recipe.batch_size, recipe.epochs, recipe.steps_per_epoch) == (128, 1, None)
    assert type(recipe.make_optimizer()) is optim.Adam
    schedule = recipe.make_schedule()
    assert isinstance(schedule, OneCycleLR) and schedule.max_lr == 0.01
    assert recipe.loss == {"name": "cross_entropy", "label_smoothing": 0.1}
    assert "OneCycleLR(pct_start=0.25)" in recipe.describe()


def trained_pair(recipe, n=96, seed=4):
    """(fastcnn model, torch twin) after the recipe's training on n random images."""
    from fastcnn.bench import speedrun

    images, labels = mnist_like(n, seed=seed)
    x = speedrun.inputs(images)
    model, recipe = speedrun.compiled(seed, recipe)
    twin = speedrun.torch_twin(model, recipe, n)
    speedrun.fastcnn_train(model, recipe, seed, x, labels, x[:8], labels[:8])
    speedrun.torch_train(twin, recipe, seed, x, labels, x[:8], labels[:8])
    return model, twin


@pytest.mark.parametrize("change", [{}, {"steps_per_epoch": 2, "epochs": 3}],
                         ids=["recipe", "three epochs of two batches"])
def test_the_pytorch_twin_trains_to_fastcnns_weights_and_statistics(change):
    recipe = zoo.recipe("mnist_speedrun", batch_size=32).replace(**change)
    model, twin = trained_pair(recipe)
    state = twin.network.state_dict()
    names = {f"{layer.name}.": f"{index}." for index, layer in enumerate(model.layers)}
    compared = 0
    for key, value in model.state_dict().items():
        prefix, field = key.rsplit(".", 1)
        theirs = state[names[prefix + "."] + field].numpy()
        np.testing.assert_allclose(value, theirs, rtol=1e-4, atol=2e-5, err_msg=key)
        compared += 1
    assert compared == 3 * 6 + 2  # conv weight, BatchNorm weight, bias and 3 buffers; classifier
    initial = zoo.get("mnist_speedrun", seed=4).state_dict()["conv1.weight"]
    assert not np.allclose(initial, model.state_dict()["conv1.weight"])  # it did train


def test_each_ablation_step_changes_one_thing_and_has_a_pytorch_twin():
    from fastcnn.bench import speedrun

    base = zoo.recipe("mnist_speedrun")
    steps = speedrun.ablations(1000)
    assert steps["half an epoch"] == {"steps_per_epoch": 4}  # 8 batches of 128 in 1,000
    for label, change in steps.items():
        recipe = base.replace(**change)
        assert recipe != base, label
        model, recipe = speedrun.compiled(0, recipe)
        twin = speedrun.torch_twin(model, recipe, 1000)
        assert len(twin.params) == len(model.parameters(trainable_only=True)), label
    plain = speedrun.compiled(0, base.replace(**steps["no BatchNorm (biased convolutions)"]))[0]
    assert not any(type(layer).__name__ == "BatchNorm2d" for layer in plain.layers)


def test_the_script_refuses_bad_arguments(capsys):
    module = script()
    for argv in (["--seeds", "0"], ["--limit", "-3"], ["--first-seed", "-1"]):
        with pytest.raises(SystemExit):
            module.parse_args(argv)
    assert "--seeds must be at least 1" in capsys.readouterr().err
    args = module.parse_args([])
    assert (args.seeds, args.first_seed, args.skip_torch) == (5, 0, False)


def test_the_script_runs_both_engines_on_a_subset(monkeypatch, capsys, tmp_path):
    import fastcnn.datasets

    module = script()
    train, test = mnist_like(64, seed=1), mnist_like(16, seed=2)
    monkeypatch.setattr(fastcnn.datasets, "load", lambda name: (train, test))
    out = tmp_path / "runs.json"
    assert module.main(["--seeds", "2", "--backend", "numpy",
                        "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "seed 0: fastcnn numpy" in printed and "seed 1:" in printed and "pytorch" in printed
    assert "x as fast as PyTorch" in printed
    import json

    runs = json.loads(out.read_text())["runs"]["recipe"]
    assert [(run["engine"], run["seed"]) for run in runs] == [
        ("fastcnn numpy", 0), ("pytorch", 0), ("fastcnn numpy", 1), ("pytorch", 1)]
    # the same weights and batches: the same test predictions, to the last image
    assert runs[0]["accuracy"] == runs[1]["accuracy"] and runs[2]["accuracy"] == runs[3]["accuracy"]
    # each run keeps the CPU/wall and host steal that say whether its time counts
    assert all(run["cpu_per_wall"] > 0 for run in runs)
    assert "quiet host" in printed and "CPU/wall" in printed
    # the twin alone (engines in parallel processes) starts from the same weights and batches
    assert module.main(["--seeds", "1", "--first-seed", "1", "--backend", "numpy",
                        "--skip-fastcnn", "--json", str(out)]) == 0
    alone = json.loads(out.read_text())["runs"]["recipe"]
    assert [(run["engine"], run["seed"], run["accuracy"]) for run in alone] == [
        ("pytorch", 1, runs[3]["accuracy"])]
    with pytest.raises(SystemExit):
        module.parse_args(["--skip-torch", "--skip-fastcnn"])


def test_the_script_refuses_a_model_not_in_the_zoo_and_an_ablation_of_another_recipe():
    module = script()
    with pytest.raises(SystemExit, match="not in the zoo"):
        module.main(["--model", "no_such_model"])
    with pytest.raises(SystemExit, match="--ablation is the speedrun's"):
        module.main(["--model", "fashion_cnn", "--ablation"])


def test_a_pytorch_run_counts_only_on_a_quiet_host():
    from fastcnn.bench.speedrun import Trained

    def run(cpu_per_wall, steal):
        return Trained("pytorch", 0, 7.0, 0.99, 469, cpu_per_wall, steal)

    assert run(1.7, 0.002).quiet(2)
    assert not run(1.5, 0.002).quiet(2)    # PyTorch did not get its two cores
    assert not run(1.9, 0.02).quiet(2)     # the host stole 2%
    assert run(None, None).quiet(2) is None  # recorded before these were kept


def test_the_step_ab_script_times_each_variant_and_refuses_a_bad_one(capsys, monkeypatch):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "step_ab.py"
    spec = importlib.util.spec_from_file_location("step_ab_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setenv("FASTCNN_AB_PROBE", "0")
    assert module.main(["--backend", "numpy", "--batch", "4", "--rounds", "2", "--steps", "1",
                        "FASTCNN_AB_PROBE=1", "FASTCNN_AB_PROBE=2"]) == 0
    printed = capsys.readouterr().out
    assert "FASTCNN_AB_PROBE=1: step" in printed and "FASTCNN_AB_PROBE=2: step" in printed
    with pytest.raises(SystemExit):
        module.parse_args(["FASTCNN_IMPLICIT"])
