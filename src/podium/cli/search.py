"""CLI verbs of the search area: search, results, lr-find, augs. Handlers print; the work is in
search/study.py, search/results.py, runners/lr_find.py and training/augment.py."""

from __future__ import annotations

import argparse
import contextlib
import signal
import time
from typing import Callable

from podium.lazy import LazyModule
# imported on first use: `podium --help` loads none of this
augment = LazyModule("podium.training.augment")
config = LazyModule("podium.config")
dataset = LazyModule("podium.data.dataset")
lr_find = LazyModule("podium.runners.lr_find")
results = LazyModule("podium.search.results")
study = LazyModule("podium.search.study")
tasks = LazyModule("podium.tasks")

AddVerb = Callable[..., argparse.ArgumentParser]
DEFAULT_SPACE = "configs/search/demo-space.yaml"


def add_verbs(verb: AddVerb) -> None:
    """Register this area's verbs with cli/main.py's `verb(name, handler, help, config=True)` helper."""
    search = verb("search", _cmd_search, "run (or resume) the optuna search of a space YAML; then its table")
    _space_arguments(search)
    search.add_argument("--trials", type=int, help="run at most this many trials now (the rest on a later call)")
    _space_arguments(verb("results", _cmd_results, "the ranked table of a search, its plots and best config YAML"))
    lr = verb("lr-find", _cmd_lr_find, "LR range test: loss vs learning rate plot and a suggested start value")
    lr.add_argument("--steps", type=int, default=200)
    lr.add_argument("--min-lr", type=float, default=1e-7)
    lr.add_argument("--max-lr", type=float, default=10.0)
    augs = verb("augs", _cmd_augs, "one batch through each augmentation recipe as a PNG grid, with its cost")
    augs.add_argument("--recipes", nargs="+", help="recipe names (default: the config's own)")
    augs.add_argument("--images", type=int, default=8, help="images in the grid (one column each)")
    augs.add_argument("--out", help="PNG path (default: runs/augs/<recipes>.png)")


def _space_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", "-s", default=DEFAULT_SPACE, help="search space YAML (configs/search/*.yaml)")
    parser.add_argument("--storage", help="SQLAlchemy URL of a shared study (default: SQLite in the search folder)")


def _space(args):
    return study.load_space(args.space, base=args.config, overrides=args.overrides)


def _cmd_search(args) -> None:
    space = _space(args)
    study.optuna.logging.set_verbosity(study.optuna.logging.WARNING)  # one line per trial below says it all
    metric = space.metric
    print(f"search: {space.name} ({space.sampler}, {len(space.seeds)} seed(s) per configuration, scored by "
          f"{metric.label}, {'lower' if metric.direction == 'min' else 'higher'} is better) -> {space.study_dir}")
    started = time.perf_counter()

    def report(trial) -> None:
        seeds = " ".join(f"{s['val_score']:.4f}" for s in trial.user_attrs.get("seeds", []))
        params = ", ".join(f"{k}={v}" for k, v in trial.params.items())
        value = f"{trial.value:.4f} (seeds {seeds})" if trial.value is not None else \
            trial.user_attrs.get("error", "") or ("pruned" if trial.state.name == "PRUNED" else "")
        print(f"  trial {trial.number:>3} {trial.state.name.lower():<8} {value}  [{params}]  "
              f"{time.perf_counter() - started:.0f} s", flush=True)

    with _sigterm_as_interrupt():
        outcome = study.run_search(space, tasks.get_task(space.base_config().task), storage=args.storage,
                             max_trials=args.trials, on_trial_end=report)
    print(f"search: {outcome.ran} trial(s) run now; study has {outcome.complete} complete, {outcome.pruned} pruned, "
          f"{outcome.failed} failed ({outcome.seconds:.0f} s)")
    _print_results(space, args.storage)


def _cmd_results(args) -> None:
    _print_results(_space(args), args.storage)


def _print_results(space, storage) -> None:
    summary = results.write_results(space, storage)
    print(summary.markdown)
    print(f"results: {summary.csv}, {summary.md}")
    for path in summary.plots:
        print(f"plot: {path}")
    if summary.best_config:
        print(f"best config: {summary.best_config}  (make train EXP={summary.best_config})")


def _cmd_lr_find(args) -> None:
    cfg = config.load_config(args.config, args.overrides)
    result = lr_find.lr_range_test(cfg, tasks.get_task(cfg.task), steps=args.steps, min_lr=args.min_lr, max_lr=args.max_lr)
    end = "the loss diverged" if result.diverged else "the sweep ended before the loss diverged: raise --max-lr"
    print(f"lr-find: {len(result.lrs)} steps from {result.lrs[0]:.1e} to {result.lrs[-1]:.1e}; {end}")
    print(f"lr-find: lowest smoothed loss at lr={result.min_loss_lr:.2e}; steepest descent at "
          f"lr={result.steepest_lr:.2e}")
    print(f"lr-find: suggested start lr={result.suggested_lr:.2e}  (ARGS=\"lr={result.suggested_lr:.1e}\")")
    print(f"plot: {result.plot}\ntable: {result.csv}")


def _cmd_augs(args) -> None:
    from pathlib import Path


    cfg = config.load_config(args.config, args.overrides)
    recipes = args.recipes or [*cfg.augment, *([cfg.cpu_augment] if cfg.cpu_augment != "none" else [])]
    data = dataset.load_labeled_data(cfg, tasks.get_task(cfg.task), progress=False)
    images = data.images[_one_per_class(data.labels, args.images)]
    out = Path(args.out) if args.out else Path(cfg.runs_dir) / "augs" / f"{'-'.join(recipes) or 'none'}.png"
    path = augment.preview_grid(images, recipes, out, seed=cfg.seed)
    print(f"augs: {path} (rows: original, {', '.join(recipes)})")
    batch = data.images[:64]
    for name in recipes:
        print(f"  {name:<12} {_rate(augment.augmentation_cost(name, batch, seed=cfg.seed))} images/s")
    if len(cfg.augment) > 1:
        print(f"  {'+'.join(cfg.augment):<12} {_rate(augment.augmentation_cost(cfg.augment, batch))} images/s "
              "(the config's chain)")


def _one_per_class(labels, count: int):
    """Positions of `count` images cycling over classes, so the grid shows several of them."""
    import numpy as np

    by_class = [np.flatnonzero(labels == k) for k in np.unique(labels)]
    picked = [int(rows[i // len(by_class)]) for i, rows in
              ((i, by_class[i % len(by_class)]) for i in range(count)) if i // len(by_class) < len(rows)]
    return np.sort(picked)


def _rate(value: float) -> str:
    return "free" if value == float("inf") else f"{value:,.0f}"


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """A Kaggle session timeout or `kill` sends SIGTERM: treat it like Ctrl-C, so the running trial is
    marked interrupted and queued again by the next `make search`."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (a notebook's worker): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
