"""A/B of whole fit() epochs between source trees, beside busy neighbours (issue 21).

Each round runs, for every scenario and tree (in alternating order), one fit() epoch of
pytorch_cnn in a fresh process with PYTHONPATH at that tree (fastcnn/bench/felt.py:
beside nothing, a busy loop at nice 19, one at nice 0, a second training of its kind),
then PyTorch's loop once per scenario. Medians per tree and scenario, and the ratio of
each scenario to the same tree's quiet epoch. Rounds with host steal >= 1% or PyTorch's
quiet CPU/wall below 0.8 x threads are left out (printed, marked "starved").

    git worktree add /tmp/before f3cf53b    # the claims' yielding wait
    (cd /tmp/before && python setup.py -q build_ext --inplace)
    FASTCNN_DATA=../shared/datasets python benchmarks/felt_ab.py --trees /tmp/before,. \
        --backend numba --rounds 3 --images 60000

A tree may carry environment for its runs: ``.@FASTCNN_WAIT_CYCLES=65536`` is this tree
with the claims' wait bounded at 2^16 cycles.
"""

from __future__ import annotations

import argparse
import os
import statistics

from fastcnn.bench import felt


def _environment(tree: str) -> dict:
    """PYTHONPATH at the tree, and the NAME=VALUE pairs after its @s."""
    path, *pairs = tree.split("@")
    return dict([("PYTHONPATH", os.path.abspath(path))] + [pair.split("=", 1) for pair in pairs])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", default=".", help="comma-separated source trees")
    parser.add_argument("--backend", default="numba")
    parser.add_argument("--scenarios", default=",".join(felt.SCENARIOS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=60000)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-torch", dest="torch", action="store_false")
    args = parser.parse_args()
    trees = args.trees.split(",")
    scenarios = args.scenarios.split(",")
    paths = felt.mnist_paths()
    runs = []
    for index in range(args.rounds):
        for scenario in scenarios:
            for tree in trees if index % 2 == 0 else trees[::-1]:
                env = _environment(tree)
                run = felt.timed_epoch(args.backend, scenario, args.images, args.threads, paths,
                                       env=env, cwd=env["PYTHONPATH"])
                run.update(round=index, competitor=tree)
                runs.append(run)
                print(f"round {index + 1} {scenario:12s} {tree}: {run['seconds']:.2f} s, "
                      f"CPU/wall {run['cpu_per_wall']:.2f}, steal {run['steal'] or 0:.1%} "
                      f"({run['source']})", flush=True)
            if args.torch:
                run = felt.timed_epoch("torch", scenario, args.images, args.threads, paths)
                run.update(round=index)
                runs.append(run)
                print(f"round {index + 1} {scenario:12s} torch: {run['seconds']:.2f} s, "
                      f"CPU/wall {run['cpu_per_wall']:.2f}", flush=True)
    counting = felt._quiet_rounds(runs, args.threads)
    starved = sorted({run["round"] for run in runs} - set(counting))
    judged = "" if args.torch else " (judged by host steal alone: no PyTorch runs)"
    print(f"\nrounds counted: {[r + 1 for r in counting]}; starved: {[r + 1 for r in starved]}"
          + judged)
    for name in trees + (["torch"] if args.torch else []):
        quiet = None
        for scenario in scenarios:
            values = [run["seconds"] for run in runs if run["competitor"] == name
                      and run["scenario"] == scenario and run["round"] in counting]
            if not values:
                continue
            median = statistics.median(values)
            quiet = median if scenario == "quiet" else quiet
            versus = f", {median / quiet:.2f}x its quiet epoch" if quiet and scenario != "quiet" else ""
            print(f"{name} {scenario:12s}: median {median:.2f} s over {len(values)}{versus}")


if __name__ == "__main__":
    main()
