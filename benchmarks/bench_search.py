"""Search overhead on the embedded demo: a 4-trial grid search (1 seed, so 4 trainings) vs the same 4
configurations through 4 direct `train_and_evaluate` calls, in one process, after one warm-up training
so neither side pays TensorFlow's first-call cost. The ratio is the result: what optuna, SQLite, the
per-epoch reports and the augmentation-cost measurement add. Writes benchmarks/results/search.{json,md}.

    python benchmarks/bench_search.py [--epochs 3] [--data-dir DIR] [--results DIR] [--smoke]

--smoke: 1 trial of 1 epoch on 20% of the demo, the data and runs under --results (the test suite's check that
the script runs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import yaml

from podium.config import load_config
from podium.data.dataset import load_labeled_data
from podium.io import write_json, write_text
from podium.search.study import load_space, resolve_config, run_search, trial_values
from podium.runners.train import train_and_evaluate
from podium.workflow import prepare_data
from podium.tasks import get_task

RESULTS = Path(__file__).with_name("results")
LRS = [0.001, 0.002, 0.003, 0.004]
SMOKE = {"epochs": 1, "lrs": LRS[:1], "val_split": 0.8}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--data-dir", default=None, help="where to unpack the demo (default: a temp folder)")
    parser.add_argument("--lrs", type=float, nargs="+", default=LRS, help="the grid: one trial per learning rate")
    parser.add_argument("--val-split", type=float, default=0.3)
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the result files go")
    parser.add_argument("--smoke", action="store_true", help="tiny and quick: checks that the script runs")
    args = parser.parse_args()
    if args.smoke:  # explicit arguments still win over the smoke sizes
        parser.set_defaults(**SMOKE)
        args = parser.parse_args()
    work = args.results / "work" if args.smoke else Path(tempfile.mkdtemp(prefix="podium-bench-search-"))
    work.mkdir(parents=True, exist_ok=True)
    data_dir = Path(args.data_dir or work / "data")
    prepare_data("demo", get_task("classification"), str(data_dir))
    fixed = {"data_dir": str(data_dir), "epochs": args.epochs, "verbose": 0, "schedule": "constant",
             "early_stopping_patience": args.epochs, "val_split": args.val_split, "folds": [0]}
    space_path = work / "space.yaml"
    space_path.write_text(yaml.safe_dump({
        "base": str(Path("configs/demo.yaml").resolve()), "name": "bench", "seeds": 1, "sampler": "grid",
        "overrides": {**fixed, "runs_dir": str(work / "search-runs")}, "params": {"lr": args.lrs},
        "pruner": {"type": "none"}}))
    space = load_space(space_path)

    warm = load_config("configs/demo.yaml", {**fixed, "epochs": 1, "runs_dir": str(work / "warm")})
    train_and_evaluate(warm, get_task(warm.task), 0, data=load_labeled_data(warm, get_task(warm.task), progress=False))

    started = time.perf_counter()
    data = load_labeled_data(warm, get_task(warm.task), progress=False)
    task = get_task(warm.task)  # a benchmark is an entry point: the task is resolved here
    direct = [train_and_evaluate(resolve_config(space, trial_values(space, {"lr": lr}), seed=0,
                                                runs_dir=work / "direct-runs"), task, 0, data=data) for lr in args.lrs]
    direct_seconds = time.perf_counter() - started

    started = time.perf_counter()
    outcome = run_search(space, get_task(space.base_config().task))
    search_seconds = time.perf_counter() - started
    if outcome.complete != len(args.lrs):  # optuna catches a trial's exception: a failed trial is no timing
        raise SystemExit(f"{outcome.failed} of {len(args.lrs)} search trials failed; see {work}")

    results = {
        "trials": len(args.lrs), "epochs": args.epochs, "seeds": 1, "direct_seconds": direct_seconds,
        "search_seconds": search_seconds, "ratio": search_seconds / direct_seconds,
        "overhead_seconds_per_trial": (search_seconds - direct_seconds) / len(args.lrs),
        "direct_scores": [r.val_score for r in direct], "search_complete": outcome.complete,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
    }
    write_json(args.results / "search.json", results)
    table = "\n".join([
        f"# Search overhead, demo, tiny CNN at 32 px: {len(args.lrs)} trials x 1 seed x {args.epochs} epochs",
        "", f"machine: {results['machine']}; one process, one run each, after a warm-up training; "
        f"{args.val_split:.0%} holdout", "",
        "| how | wall s | ratio |", "|---|---:|---:|",
        f"| {len(args.lrs)} direct `train_and_evaluate` calls | {direct_seconds:.1f} | 1 |",
        f"| `run_search` (optuna + SQLite, per-epoch reports, augmentation cost) | {search_seconds:.1f} | "
        f"{results['ratio']:.3f} |",
        "", f"overhead per trial: {results['overhead_seconds_per_trial']:+.2f} s", ""])
    write_text(args.results / "search.md", table)
    print(table)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
