"""`podium <verb>`: the only place that prints. The Makefile calls nothing else."""

from __future__ import annotations

import argparse
import sys
import time

from podium.lazy import LazyModule
from podium.cli import (data as cli_data, experiments as cli_tasks, kaggle as cli_kaggle, report as cli_report,
                        search as cli_search)
from podium.cli.quiet import quiet_tensorflow_startup
from podium.errors import PodiumError

# imported on first use: `podium --help` loads none of this
config_reference = LazyModule("podium.config_reference")
competitions = LazyModule("podium.data.competitions")
folds = LazyModule("podium.data.folds")
io = LazyModule("podium.io")
podium_config = LazyModule("podium.config")
tasks = LazyModule("podium.tasks")
workflow = LazyModule("podium.workflow")
time_budget = LazyModule("podium.training.time_budget")


def main(argv: list[str] | None = None) -> int:
    quiet_tensorflow_startup()  # TensorFlow's start-up chatter hides our output; its errors still show
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        args.handler(args)
    except PodiumError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a write fault no writer translated (disk full, read-only): the same message

        error = io.write_fault(exc)
        if error is None:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished epochs are kept; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="podium", description=__doc__)
    verbs = parser.add_subparsers(metavar="verb")

    def verb(name: str, handler, help_: str, config: bool = True) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=help_, description=help_)
        sub.set_defaults(handler=handler)
        if config:
            sub.add_argument("--config", "-c", help="experiment YAML (configs/*.yaml)")
            sub.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
        return sub

    data = verb("data", _cmd_data, "fetch, safely unpack and index a competition's files", config=False)
    data.add_argument("--competition", "-C", default="demo", help="built-in slug or spec YAML path")
    data.add_argument("--data-dir", default="data")
    data.add_argument("--source", help="folder holding the competition's files (instead of downloading)")
    data.add_argument("--force", action="store_true", help="fetch, unpack and index again")
    verb("folds", _cmd_folds, "write the deterministic validation split").add_argument("--force", action="store_true")
    verb("train", _cmd_train, "train the configured folds; best checkpoint per fold; reports") \
        .add_argument("--force", action="store_true", help="retrain folds that already finished")
    verb("predict", _cmd_predict, "TTA x folds on the test set; write the validated submission CSV")
    verb("run", _cmd_run, "the whole job: data, folds, train, predict").add_argument("--source")
    verb("config", _cmd_config, "print the resolved config").add_argument(
        "--reference", metavar="PATH", help="write the reference of every config key (docs/config-reference.md)")
    cli_kaggle.add_verbs(verb)
    cli_search.add_verbs(verb)
    cli_data.add_verbs(verb)
    cli_tasks.add_verbs(verb)
    cli_report.add_verbs(verb)
    return parser


def _config(args):
    return podium_config.load_config(args.config, args.overrides)  # also refuses flips a spec says change the meaning


def _cmd_data(args) -> None:
    task = tasks.get_task(competitions.load_competition(args.competition).task)  # the spec's task, resolved here
    _print_data(workflow.prepare_data(args.competition, task, args.data_dir, args.source, args.force,
                                      cli_data.data_sources()))


def _print_data(summary) -> None:
    state = "unpacked" if summary.extracted else "already unpacked"
    task = tasks.get_task(summary.task)
    if task.index_label_words:  # the index label says something else than the class (segmentation: has objects)
        what = ", ".join(f"{v} {task.index_label_word(k)}" for k, v in summary.label_counts.items())
        print(f"data: {summary.root} ({state}): {summary.n_train} train images ({what}), {summary.n_test} test images")
    else:
        print(f"data: {summary.root} ({state}): {summary.n_train} train images in {summary.n_classes} classes, "
              f"{summary.n_test} test images")
    if summary.bad_files:
        print(f"data: {len(summary.bad_files)} unreadable image(s) skipped (listed in index.parquet):")
        for path, reason in summary.bad_files[:10]:
            print(f"  {path}: {reason}")
    _print_notes("data", summary.notes)


def _cmd_folds(args) -> None:
    cfg = _config(args)
    cli_data.print_advice(cfg)
    _print_split(workflow.make_split(cfg, force=args.force))


def _print_split(summary) -> None:
    if getattr(summary, "holdout", False):  # one validation part and one training part, not folds

        val = int(summary.sizes.get(folds.VALIDATION_FOLD_OF_HOLDOUT, 0))
        train = int(summary.sizes.get(folds.TRAINING_FOLD_OF_HOLDOUT, 0))
        print(f"folds: {summary.path}: holdout: {train} training images, {val} validation images "
              f"({val / max(train + val, 1):.0%} held out)")
        _print_notes("folds", summary.notes)
        return
    sizes = ", ".join(f"{'training only' if k == -1 else k}={v}" for k, v in summary.sizes.items())
    print(f"folds: {summary.path}: validation images per fold: {sizes}")
    _print_notes("folds", summary.notes)


def _print_notes(stage: str, notes: list[str]) -> None:
    for note in notes:
        print(f"{stage}: note: {note}")


def _cmd_train(args) -> None:
    cfg = _config(args)
    cli_data.print_advice(cfg)
    print(f"train: run {cfg.run_id} -> {cfg.run_dir}")
    _print_train(workflow.train_run(cfg, tasks.get_task(cfg.task), force=args.force))


def _print_train(summary) -> None:
    _print_notes("train", summary.notes)
    print(summary.report_text)
    for result in summary.folds:  # what a time_budget planned, and where its guard stopped
        for line in time_budget.describe(result.fold, result.budget):
            print(line)


def _cmd_predict(args) -> None:
    cfg = _config(args)
    _print_predict(workflow.predict_run(cfg, tasks.get_task(cfg.task)))


def _print_predict(summary) -> None:
    print(f"submission: {summary.submission} ({summary.n_rows} rows, validated against the sample submission)")
    if summary.n_unreadable:
        print(f"submission: {summary.n_unreadable} unreadable test image(s) got {summary.unreadable_note}")
    top = ", ".join(f"{k} {v}" for k, v in list(summary.counts.items())[:5])
    print(f"submission: predicted: {top}")
    print(f"submission: made by {', '.join(summary.folds_used)}; settings recorded in {summary.record}")
    if summary.scored:
        print(f"submission: {summary.scored}")
    _print_notes("submission", summary.notes)


def _cmd_run(args) -> None:
    started = time.perf_counter()
    cfg = _config(args)
    task = tasks.get_task(cfg.task)

    def data_done(summary) -> None:
        _print_data(summary)
        cli_data.print_advice(cfg)

    def folds_done(summary) -> None:
        _print_split(summary)
        print(f"train: run {cfg.run_id} -> {cfg.run_dir}")  # before training's own progress lines

    printers = {"data": data_done, "folds": folds_done, "train": _print_train, "predict": _print_predict}
    workflow.run_all(cfg, task, args.source, sources=cli_data.data_sources(),
            report=lambda stage, summary: printers[stage](summary))
    print(f"done in {time.perf_counter() - started:.0f} s")


def _cmd_config(args) -> None:
    import yaml

    if args.reference:
        print(f"wrote {config_reference.write_config_reference(args.reference)}")
        return
    cfg = _config(args)
    print(yaml.safe_dump({"run_id": cfg.run_id, **cfg.to_dict()}, sort_keys=False), end="")


if __name__ == "__main__":
    sys.exit(main())
