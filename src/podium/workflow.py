"""The stages behind the make targets, each reading what the previous one wrote.

Functions here return values (paths, summaries) and raise PodiumError; cli/main.py does the printing.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from podium import artefacts
from podium.reports import run_report as report
from podium.data.competitions import load_competition
from podium.config import ExperimentConfig, save_config
from podium.data.dataset import competition_root, load_labeled_data, require_spec_task, require_task
from podium.data.extract import extract, fetch
from podium.data.folds import index_fingerprint, load_or_make_split, read_split_record, split_fingerprint, split_notes
from podium.data.groups import GROUP_KEY, attach_group_keys
from podium.data.index import build_index, class_names, load_index, save_index
from podium.data.source_files import labels_table_notes
from podium.data.sources import LOCAL, Source
from podium.errors import PodiumError
from podium.experiments.synthetic_files import GENERATED_SOURCE
from podium.io import write_json, write_text
from podium.paths import check_folder
from podium.tasks.base import PredictSummary, Task
from podium.runners.predict import predict_test, used_folds, write_task_submission
from podium.submission.validate import read_competition_sample
from podium.submission.record import submission_path, write_record
from podium.training.run_lock import run_lock
from podium.training import time_budget
from podium.runners.train import FoldResult, fold_finished, train_and_evaluate
from podium.runners.pseudo import check_source, run_summary


@dataclass
class DataSummary:
    root: Path
    extracted: bool
    n_train: int
    n_test: int
    n_classes: int
    bad_files: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    task: str = "classification"
    label_counts: dict[str, int] = field(default_factory=dict)  # readable train images per index label
    notes: list[str] = field(default_factory=list)  # what reading the labels CSV changed (trimmed spaces)


def prepare_data(competition: str, task: Task, data_dir: str = "data", source_dir: str | None = None,
                 force: bool = False, sources: Mapping[str, Source] | None = None) -> DataSummary:
    """make data: fetch the files, unpack them safely, index every image (bad ones reported, not fatal).

    `task`: the spec's task object, resolved by the entry point (`make data`, `podium run`, the training kernel).
    `sources`: where each spec `source:` is fetched from (podium.data.sources), handed down by the entry point;
    by default the embedded demo and the generated shapes (Kaggle's download is the CLI's: podium.kaggle.source)."""
    check_folder(data_dir, "data_dir")
    spec = load_competition(competition)
    require_spec_task(spec, task.name, "the task given is",
                      f"set task: {spec.task} in the experiment config (make data reads it from the spec)")
    raw_dir = Path(data_dir) / "raw" / spec.slug
    root = Path(data_dir) / spec.slug
    fetch(spec, raw_dir, Path(source_dir) if source_dir else None, force=force,
          sources=sources or {**LOCAL, "generated": GENERATED_SOURCE})
    extracted = extract(spec, raw_dir, root, force=force)
    index_path = root / "index.parquet"
    if extracted or force or not index_path.is_file():
        index = build_index(spec, root, task, progress=True)
        save_index(index, index_path)
    else:
        index = load_index(index_path)
        grouped = attach_group_keys(index, spec, root)  # the spec's group_column may have changed: cheap to reread
        if not grouped[GROUP_KEY].equals(index[GROUP_KEY]):
            index = grouped
            save_index(index, index_path)
    if spec.resolved_submission_format in ("probability", "probabilities", "top_k"):  # the sample shows the form:
        read_competition_sample(root / spec.sample_submission, spec, class_names(index, spec, task))  # refused now
    bad = index[~index["ok"]]
    counts = index.loc[(index["split"] == "train") & index["ok"], "label"].value_counts().sort_index()
    return DataSummary(root=root, extracted=extracted, n_train=int((index["split"] == "train").sum()),
                       n_test=int((index["split"] == "test").sum()), n_classes=len(class_names(index, spec, task)),
                       bad_files=list(zip(bad["path"], bad["error"])), task=spec.task,
                       label_counts={str(k): int(v) for k, v in counts.items()},
                       notes=labels_table_notes(spec, root))


@dataclass
class SplitSummary:
    path: Path
    sizes: pd.Series  # validation images per fold (k-fold's -1: images in training for every fold)
    notes: list[str]  # what the split did differently from a plain stratified one (small classes)
    holdout: bool = False  # val_split > 0: sizes are the validation and the training part, not folds


def make_split(cfg: ExperimentConfig, force: bool = False) -> SplitSummary:
    """make folds: the saved split, the number of validation images per fold, and its notes."""
    spec, root = competition_root(cfg)
    index = load_index(root / "index.parquet")
    split, path = load_or_make_split(index, root, cfg.n_folds, cfg.val_split, cfg.split_seed, force=force,
                                     group_column=spec.group_column)
    return SplitSummary(path, split["fold"].value_counts().sort_index(), split_notes(split), bool(cfg.val_split))


# ---- what data a run was trained on ---------------------------------------------------------------
DATA_RECORD = "data.json"


def data_record(index: pd.DataFrame, split_path: Path) -> dict:
    """The identity of a run's training data: labels and groups, image contents, and the split used."""
    split = pd.read_csv(split_path, dtype={"id": str, "fold": int}, keep_default_na=False)
    return {"index_fingerprint": index_fingerprint(index), "images_fingerprint": index_fingerprint(index, ("id", "hash")),
            "split": str(split_path), "split_fingerprint": split_fingerprint(split)}


def changed_data(recorded: dict, current: dict) -> list[str]:
    """What differs between the data a run was trained on and the data now, in words ([] if nothing)."""
    names = {"index_fingerprint": "the labels (or duplicate groups) of the training images",
             "images_fingerprint": "the training images' contents", "split_fingerprint": "the validation split"}
    return [f"{what} ({recorded.get(key)} then, {current[key]} now)" for key, what in names.items()
            if key in recorded and recorded.get(key) != current[key]]


def _check_run_data(cfg: ExperimentConfig, current: dict, force: bool) -> list[str]:
    """make train: record the run's data and the folds trained on it; a run trained on other data is
    refused unless retrained (`force`), and then only the retrained folds count as trained on it."""
    path = cfg.run_dir / DATA_RECORD
    trained = any(p.is_dir() and any(p.iterdir()) for p in cfg.run_dir.glob("fold-*"))
    recorded = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    same = recorded is not None and not changed_data(recorded, current)
    notes = []
    if recorded is not None and not force:
        changed = changed_data(recorded, current)
        if changed and trained:
            raise PodiumError(f"Run {cfg.run_id} was trained on other data: {'; '.join(changed)}.",
                              expected="the data the run's folds were trained on",
                              received="changed data (e.g. `make data FORCE=1` with new labels, then `make folds "
                                       "FORCE=1`)", fix="retrain it on the current data with `make train FORCE=1`, "
                                                        "or give the new run another name (name=...)")
    elif not path.is_file() and trained and not force:
        notes.append(f"run {cfg.run_id} had no record of its training data (trained by an older podium): "
                     "adopted for the current data")
    earlier = set(recorded.get("folds", [])) if same else set()
    write_json(path, {**current, "folds": sorted(earlier | set(cfg.folds))})
    return notes


def _run_folds(cfg: ExperimentConfig) -> tuple[ExperimentConfig, list[int]]:
    """The run's config as recorded: `folds=[k]` after a finished run adds fold k, never drops the other
    finished folds trained on the same data (data.json's `folds`) from the run's config.yaml and CV."""
    recorded = json.loads((cfg.run_dir / DATA_RECORD).read_text(encoding="utf-8")).get("folds", [])
    kept = sorted(int(k) for k in recorded
                  if int(k) not in cfg.folds and fold_finished(cfg.run_dir / f"fold-{int(k)}"))
    if not kept:
        return cfg, []
    return replace(cfg, folds=sorted([*cfg.folds, *kept])), kept


@dataclass
class RunSummary:
    cfg: ExperimentConfig
    folds: list[FoldResult]
    cv_mean: float
    cv_std: float
    cv_tta_mean: float
    cv_tta_std: float
    report_text: str
    wall_seconds: float
    notes: list[str] = field(default_factory=list)  # the split's notes, and anything adopted
    metric: str = ""  # the label of the metric every score here is in
    direction: str = "max"  # max | min: which way it is better
    cv_oof: float | None = None  # the metric over every out-of-fold row at once (with TTA)

    @property
    def tta_gain(self) -> float:
        """How much TTA improved the CV, in the metric's direction: negative when it made it worse."""
        gain = self.cv_tta_mean - self.cv_mean
        return gain if self.direction == "max" else -gain


def train_run(cfg: ExperimentConfig, task: Task, force: bool = False, progress: bool = True) -> RunSummary:
    """make train: every configured fold, then the run's reports from the out-of-fold predictions.

    One process at a time per run folder (podium.training.run_lock); the run records the data it trains on
    (runs/<run-id>/data.json) and refuses to continue on other data unless `force` retrains it.
    """
    with run_lock(cfg.run_dir, "train"):
        return _train_run(cfg, task, force, progress)


def _train_run(cfg: ExperimentConfig, task: Task, force: bool, progress: bool) -> RunSummary:
    started = time.perf_counter()
    time_budget.start_clock(cfg.run_dir)  # a time_budget counts loading (and caching) the data too
    data = load_labeled_data(cfg, task, progress=progress)  # a split of other labels is refused here
    notes = list(read_split_record(data.split_path).get("notes", []))
    notes += [f"images held by cache={data.cache.reason}"] if data.cache is not None else []  # config key `cache`
    index = load_index(competition_root(cfg)[1] / "index.parquet")
    current = {**data_record(index, data.split_path), "classes": [str(c) for c in data.classes]}
    if cfg.pseudo_run:  # refused before any fold trains; recorded so the run says what it learned from
        check_source(cfg, data.classes, index)
        current["pseudo_run"] = cfg.pseudo_run
    notes += _check_run_data(cfg, current, force)
    run_cfg, kept = _run_folds(cfg)
    save_config(run_cfg, cfg.run_dir / "config.yaml")
    results = [train_and_evaluate(cfg, task, fold, data=data, force=force) for fold in cfg.folds]
    results = sorted(results + [train_and_evaluate(run_cfg, task, fold, data=data) for fold in kept],  # read back
                     key=lambda r: r.fold)
    if kept:
        notes.append(f"fold(s) {kept} finished earlier on the same data: kept in the run's config and CV "
                     f"(folds={run_cfg.folds})")
    cfg = run_cfg
    scores = np.array([r.val_score for r in results])
    scores_tta = np.array([r.val_score_tta for r in results])
    metric = cfg.resolved_metric
    other = [f"{r.fold} ({r.metric or 'its task score, before metrics were recorded'})" for r in results
             if r.metric != metric.label]
    if other:  # finished folds are reused, not rescored: say that the CV mixes metrics
        notes.append(f"fold(s) {', '.join(other)} were scored by another metric than this run's {metric.label}: "
                     "the CV mixes them; retrain with FORCE=1 for a CV in one metric")
    summary = RunSummary(cfg=cfg, folds=results, cv_mean=float(scores.mean()), cv_std=float(scores.std()),
                         cv_tta_mean=float(scores_tta.mean()), cv_tta_std=float(scores_tta.std()),
                         report_text="", wall_seconds=0.0, notes=notes, metric=metric.label,
                         direction=metric.direction)
    summary.wall_seconds = time.perf_counter() - started
    summary.report_text = _write_run_report(cfg, task, data, summary)
    return summary


def _write_run_report(cfg: ExperimentConfig, task: Task, data, summary: RunSummary) -> str:
    run_dir, plots = cfg.run_dir, cfg.run_dir / "plots"
    oof = pd.concat([pd.read_parquet(r.fold_dir / "oof.parquet") for r in summary.folds], ignore_index=True)
    for result in summary.folds:
        report.plot_history(pd.read_csv(result.fold_dir / "history.csv"), plots / f"history-fold-{result.fold}.png",
                            monitor=cfg.resolved_monitor, mode=cfg.resolved_mode)
    extra_names = list(summary.folds[0].extra)
    summary.cv_oof = task.oof_score(cfg.resolved_metric, data, oof, [r.fold_dir for r in summary.folds])
    run_metrics = {
        "run_id": cfg.run_id, "competition": data.spec.slug, "task": cfg.task, "metric": summary.metric,
        "direction": summary.direction, "monitor": cfg.resolved_monitor,
        "backbone": cfg.backbone, "image_size": cfg.resolved_image_size, "folds": [r.to_dict() for r in summary.folds],
        "cv_mean": summary.cv_mean, "cv_std": summary.cv_std, "cv_tta_mean": summary.cv_tta_mean,
        "cv_tta_std": summary.cv_tta_std, "cv_oof": summary.cv_oof, "tta_gain": summary.tta_gain,
        "tta_views": list(cfg.tta), "wall_seconds": summary.wall_seconds,
        "split": str(data.split_path),
        "extra": {name: float(np.mean([r.extra[name] for r in summary.folds])) for name in extra_names},
    }
    if cfg.pseudo_run:
        records = {r.fold: json.loads((r.fold_dir / "data.json").read_text(encoding="utf-8")).get("pseudo")
                   for r in summary.folds}
        run_metrics["pseudo_labels"] = run_summary(cfg, records)
    more, table = task.run_report(data, oof, run_dir, plots)
    run_metrics.update(more)
    write_json(run_dir / "metrics.json", run_metrics)
    text = report.summary_text({**run_metrics, "per_class": table})
    write_text(run_dir / "summary.txt", text + "\n")
    return text


def predict_run(cfg: ExperimentConfig, task: Task, progress: bool = True) -> PredictSummary:
    """make predict: TTA x folds on the test images, then the task's validated submission file.

    Refuses a run trained on other data than the index's now, and folds whose training did not finish
    (unless allow_unfinished=true); the file's name and its sidecar record what made it
    (podium.submission.record).
    """
    spec, root = competition_root(cfg)
    require_task(cfg, spec)
    index = load_index(root / "index.parquet")
    # read first: a broken sample stops here, before minutes of prediction
    sample = read_competition_sample(root / spec.sample_submission, spec)
    cfg, measured_note = measured_tta(cfg)
    with run_lock(cfg.run_dir, "predict"):
        data, notes = _predict_data_check(cfg, index)
        notes = [*measured_note, *notes]
        classes = class_names(index, spec, task)
        check_trained_classes(cfg, data.get("classes"), classes)
        folds = used_folds(cfg)
        predictions = predict_test(cfg, task, index, progress=progress)
        if "classes" not in data and task.class_columns and predictions.values.ndim == 2:
            check_trained_classes(cfg, predictions.values.shape[1], classes)  # a run recorded before classes were
        path = submission_path(cfg)
        summary = write_task_submission(cfg, task, spec, predictions, sample, path, classes,
                                        class_prior(index, classes, task))
        summary.folds_used = [f.describe() for f in folds]
        summary.scored, tta_notes = run_score_lines(cfg)
        summary.notes = [*notes, *tta_notes, *summary.notes]  # the writer's own (e.g. the calibration's) kept
        summary.notes += [f"test images held by cache={predictions.cache}"] if predictions.cache else []
        summary.record = write_record(cfg, path, [f.to_dict() for f in folds], data)
        write_json(cfg.run_dir / "test_predictions.json", json.loads(summary.record.read_text(encoding="utf-8")))
        stamp_test_predictions(cfg, task, index, [f.to_dict() for f in folds])
        summary.notes += [f"UNFINISHED fold {f.fold} used (allow_unfinished=true): recorded with the test predictions, "
                          "which a blend or a pseudo-label run refuses" for f in folds if not f.finished]
    return summary


def stamp_test_predictions(cfg: ExperimentConfig, task: Task, index: pd.DataFrame, folds: list[dict]) -> None:
    """runs/<id>/test_predictions.npy carries what made it (podium.artefacts): the test images, each fold's
    metrics.json (a fold retrained since makes it stale) and whether each fold finished."""
    run_dir = cfg.run_dir
    artefacts.stamp(run_dir / "test_predictions.npy", kind=task.output_kind,
                    images=artefacts.test_images(index), made_by="make predict",
                    remake=f"make predict with run {cfg.run_id}'s config ({run_dir / 'config.yaml'})",
                    inputs=[run_dir / f"fold-{f['fold']}" / "metrics.json" for f in folds],
                    folds=folds, companions=[run_dir / "test_ids.csv"])


def check_trained_classes(cfg: ExperimentConfig, trained: list[str] | int | None, classes: list[str]) -> None:
    """The model has one output per class it was trained on: a class list changed since (a class added to
    the spec's `classes:`, one renamed or reordered) is refused, not written into a wrong submission."""
    if trained is None or (trained == len(classes) if isinstance(trained, int) else list(trained) == list(classes)):
        return
    if isinstance(trained, int):
        before, changes = f"{trained} classes (its model's outputs)", f"{len(classes)} classes now"
    else:
        added, gone = [c for c in classes if c not in trained], [c for c in trained if c not in classes]
        before = f"{len(trained)} classes: {', '.join(map(str, trained[:12]))}" + (" ..." if len(trained) > 12 else "")
        changes = "; ".join(part for part in (f"added {added}" if added else "", f"gone {gone}" if gone else "",
                                              "" if added or gone else "the same names in another order") if part)
    raise PodiumError(f"Run {cfg.run_id} was trained on other classes than the competition lists now.",
                      expected=f"the classes it was trained on ({before})", received=changes,
                      fix="retrain it on the new class list with `make train FORCE=1` (the model has one output "
                          "per class), or set the spec's classes: back to what the run was trained on")
def measured_tta(cfg: ExperimentConfig) -> tuple[ExperimentConfig, list[str]]:
    """With tta_auto: the config's TTA views where the run measured that they help, else the identity view
    alone (and a note saying which and why); without it, the config as it is."""
    path = cfg.run_dir / "metrics.json"
    if not cfg.tta_auto or cfg.tta == ["identity"]:
        return cfg, []
    metrics = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    if list(metrics.get("tta_views") or []) != list(cfg.tta) or metrics.get("cv_tta_mean") is None:
        raise PodiumError("tta_auto needs the run's own measurement of these TTA views.",
                          expected=f"runs/{cfg.run_id}/metrics.json scored with tta={list(cfg.tta)}",
                          received=f"views measured: {metrics.get('tta_views')}" if metrics else "no metrics.json",
                          fix="train the run (make train) with these tta views, or set tta_auto=false")
    gain, name = report.tta_gain(metrics), metrics.get("metric", "score")
    if gain >= 0:
        return cfg, [f"tta_auto: tta=[{','.join(cfg.tta)}] kept, it raised the run's CV {name} by {gain:+.4f}"]
    kept = dataclasses.replace(cfg, tta=["identity"])
    return kept, [f"tta_auto: tta=[{','.join(cfg.tta)}] lowered the run's CV {name} ({metrics['cv_mean']:.4f} "
                  f"without, {metrics['cv_tta_mean']:.4f} with), so this submission predicts with identity alone"]


def run_score_lines(cfg: ExperimentConfig) -> tuple[str, list[str]]:
    """What `make predict` says about the run's CV: its metric and direction, and a note when the run measured
    that the TTA views it predicts with made the CV worse (in the metric's direction)."""
    path = cfg.run_dir / "metrics.json"
    if not path.is_file():
        return "", []
    metrics = json.loads(path.read_text(encoding="utf-8"))
    name, direction = metrics.get("metric", "score"), metrics.get("direction", "max")
    spread = f" +/- {metrics['cv_std']:.4f}" if len(metrics.get("folds") or []) > 1 else " (one fold)"
    line = f"run CV {name} ({'lower' if direction == 'min' else 'higher'} is better) {metrics['cv_mean']:.4f}" \
           f"{spread}, with TTA {metrics['cv_tta_mean']:.4f}"
    notes = []
    same_views = list(metrics.get("tta_views") or []) == list(cfg.tta)
    if same_views and len(cfg.tta) > 1 and report.tta_gain(metrics) < 0:
        notes.append(f"TTA lowered this run's CV ({name} {metrics['cv_mean']:.4f} without, "
                     f"{metrics['cv_tta_mean']:.4f} with tta=[{','.join(cfg.tta)}]): "
                     "this submission uses those views; ARGS=\"tta=[identity]\" predicts without them")
    return line, notes


def _predict_data_check(cfg: ExperimentConfig, index: pd.DataFrame) -> tuple[dict, list[str]]:
    """The run's recorded training data against the index now: models of other labels never predict."""
    path = cfg.run_dir / DATA_RECORD
    if not path.is_file():
        return {}, [f"run {cfg.run_id} has no record of its training data (trained by an older podium): "
                    "not checked against the current index"]
    recorded = json.loads(path.read_text(encoding="utf-8"))
    split_file = Path(recorded.get("split", ""))
    current = {"index_fingerprint": index_fingerprint(index),
               "images_fingerprint": index_fingerprint(index, ("id", "hash"))}
    notes = []
    if split_file.is_file():
        current.update(data_record(index, split_file))
    else:
        notes.append(f"the split the run was trained with ({split_file}) no longer exists: not checked")
    changed = changed_data({k: v for k, v in recorded.items() if k in current}, current)
    others = [k for k in cfg.folds if k not in recorded.get("folds", cfg.folds)]
    if others:
        changed.append(f"fold(s) {others}: trained before the run was retrained on the current data")
    if changed:
        raise PodiumError(f"Run {cfg.run_id} was trained on other data than the index's now: {'; '.join(changed)}.",
                          expected="the data the run's folds were trained on",
                          received="changed data (e.g. `make data FORCE=1` with new labels)",
                          fix="rebuild the split (`make folds FORCE=1`) and retrain (`make train FORCE=1`), "
                              "then predict")
    return recorded, notes


def class_prior(index: pd.DataFrame, classes: list[str], task: Task) -> np.ndarray:
    """What an undecodable test image gets: the task's prior over the index's readable train labels."""
    train = index[(index["split"] == "train") & index["ok"]]
    return task.class_prior(train["label"], classes)



# ---- the whole job ------------------------------------------------------------------------------
@dataclass
class JobSummary:
    """What each stage of the whole job returned, for the caller to print or record."""

    data: DataSummary
    split: SplitSummary
    train: RunSummary
    predict: PredictSummary


def run_all(cfg: ExperimentConfig, task: Task, source_dir: str | None = None,
            sources: Mapping[str, Source] | None = None,
            report: Callable[[str, object], None] | None = None) -> JobSummary:
    """`podium run` and the training kernel: data -> folds -> train -> predict, written once.

    `report(stage, summary)` is called as each stage ("data", "folds", "train", "predict") finishes, before
    the next one starts: the CLI prints there, the kernel makes its run a package; nothing prints here.
    `sources` are the entry point's (the CLI's include Kaggle's download), passed to prepare_data.
    """
    tell = report or (lambda stage, summary: None)
    data = prepare_data(cfg.competition, task, cfg.data_dir, source_dir, sources=sources)
    tell("data", data)
    split = make_split(cfg)
    tell("folds", split)
    trained = train_run(cfg, task)
    tell("train", trained)
    predicted = predict_run(cfg, task)
    tell("predict", predicted)
    return JobSummary(data, split, trained, predicted)
