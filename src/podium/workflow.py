"""The stages behind the make targets, each reading what the previous one wrote.

Functions here return values (paths, summaries) and raise PodiumError; cli.py does the printing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from podium import metrics, report
from podium.competitions import load_competition
from podium.config import ExperimentConfig, save_config
from podium.data.dataset import competition_root, load_labeled_data, require_task
from podium.data.extract import extract, fetch
from podium.data.folds import load_or_make_split
from podium.data.index import build_index, class_names, image_shapes, load_index, save_index
from podium.io import write_json, write_text
from podium.predict import predict_test
from podium.submission import read_sample_submission, submission_frame, write_submission
from podium.train import FoldResult, train_and_evaluate


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


def prepare_data(competition: str, data_dir: str = "data", source_dir: str | None = None,
                 force: bool = False) -> DataSummary:
    """make data: fetch the files, unpack them safely, index every image (bad ones reported, not fatal)."""
    spec = load_competition(competition)
    raw_dir = Path(data_dir) / "raw" / spec.slug
    root = Path(data_dir) / spec.slug
    fetch(spec, raw_dir, Path(source_dir) if source_dir else None, force=force)
    extracted = extract(spec, raw_dir, root, force=force)
    index_path = root / "index.parquet"
    if extracted or force or not index_path.is_file():
        index = build_index(spec, root, progress=True)
        save_index(index, index_path)
    else:
        index = load_index(index_path)
    bad = index[~index["ok"]]
    counts = index.loc[(index["split"] == "train") & index["ok"], "label"].value_counts().sort_index()
    return DataSummary(root=root, extracted=extracted, n_train=int((index["split"] == "train").sum()),
                       n_test=int((index["split"] == "test").sum()), n_classes=len(class_names(index, spec)),
                       bad_files=list(zip(bad["path"], bad["error"])), task=spec.task,
                       label_counts={str(k): int(v) for k, v in counts.items()})


def make_split(cfg: ExperimentConfig, force: bool = False) -> tuple[Path, pd.Series]:
    """make folds: the saved split and the number of validation images per fold."""
    _, root = competition_root(cfg)
    index = load_index(root / "index.parquet")
    split, path = load_or_make_split(index, root, cfg.n_folds, cfg.val_split, cfg.split_seed, force=force)
    return path, split["fold"].value_counts().sort_index()


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


def train_run(cfg: ExperimentConfig, force: bool = False, progress: bool = True) -> RunSummary:
    """make train: every configured fold, then the run's reports from the out-of-fold predictions."""
    started = time.perf_counter()
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, cfg.run_dir / "config.yaml")
    data = load_labeled_data(cfg, progress=progress)
    results = [train_and_evaluate(cfg, fold, data=data, force=force) for fold in cfg.folds]
    scores = np.array([r.val_score for r in results])
    scores_tta = np.array([r.val_score_tta for r in results])
    summary = RunSummary(cfg=cfg, folds=results, cv_mean=float(scores.mean()), cv_std=float(scores.std()),
                         cv_tta_mean=float(scores_tta.mean()), cv_tta_std=float(scores_tta.std()),
                         report_text="", wall_seconds=0.0)
    summary.wall_seconds = time.perf_counter() - started
    summary.report_text = _write_run_report(cfg, data, summary)
    return summary


METRIC_NAMES = {"classification": "accuracy", "segmentation": "dice", "localization": "box IoU"}


def _write_run_report(cfg: ExperimentConfig, data, summary: RunSummary) -> str:
    run_dir, plots = cfg.run_dir, cfg.run_dir / "plots"
    oof = pd.concat([pd.read_parquet(r.fold_dir / "oof.parquet") for r in summary.folds], ignore_index=True)
    for result in summary.folds:
        report.plot_history(pd.read_csv(result.fold_dir / "history.csv"), plots / f"history-fold-{result.fold}.png",
                            monitor=cfg.monitor, mode=cfg.mode)
    extra_names = list(summary.folds[0].extra)
    run_metrics = {
        "run_id": cfg.run_id, "competition": data.spec.slug, "task": cfg.task, "metric": METRIC_NAMES[cfg.task],
        "backbone": cfg.backbone, "image_size": cfg.resolved_image_size, "folds": [r.to_dict() for r in summary.folds],
        "cv_mean": summary.cv_mean, "cv_std": summary.cv_std, "cv_tta_mean": summary.cv_tta_mean,
        "cv_tta_std": summary.cv_tta_std, "tta_views": list(cfg.tta), "wall_seconds": summary.wall_seconds,
        "split": str(data.split_path),
        "extra": {name: float(np.mean([r.extra[name] for r in summary.folds])) for name in extra_names},
    }
    table = None
    if cfg.task == "classification":
        table = _classification_report(data, oof, run_dir, plots)
        run_metrics["macro_f1"] = float(table.loc["macro avg", "f1"])
    elif cfg.task == "localization":
        _box_examples(data, oof, plots / "boxes.png")
    write_json(run_dir / "metrics.json", run_metrics)
    text = report.summary_text({**run_metrics, "per_class": table})
    write_text(run_dir / "summary.txt", text + "\n")
    return text


def _classification_report(data, oof: pd.DataFrame, run_dir: Path, plots: Path) -> pd.DataFrame:
    table = metrics.classification_table(oof["label"], oof["pred_tta"], data.classes)
    table.to_csv(run_dir / "per_class.csv")
    write_text(run_dir / "per_class.md", report.per_class_table_markdown(table))
    report.plot_confusion(metrics.confusion(oof["label"], oof["pred_tta"], data.num_classes), data.classes,
                          plots / "confusion.png")
    counts = pd.Series(data.classes)[data.labels].value_counts()
    report.plot_class_distribution({name: int(counts.get(name, 0)) for name in data.classes},
                                   plots / "class_distribution.png")
    return table


def _box_examples(data, oof: pd.DataFrame, path: Path, shown: int = 16) -> None:
    """True (green) and predicted (red) boxes on the first validation images, with their IoU."""
    from podium.localization import plot_boxes

    position_of = {image_id: k for k, image_id in enumerate(data.ids)}
    head = oof.head(shown)
    positions = np.array([position_of[i] for i in head["id"]])
    predicted = head[["box_x1", "box_y1", "box_x2", "box_y2"]].to_numpy()
    plot_boxes(np.asarray(data.images[positions]), data.targets[positions], predicted, path)


@dataclass
class PredictSummary:
    submission: Path
    n_rows: int
    n_unreadable: int
    counts: dict[str, int]  # what was predicted: rows per class, or images/objects for masks
    unreadable_note: str = ""  # what an undecodable test image got instead of a prediction


def predict_run(cfg: ExperimentConfig, progress: bool = True) -> PredictSummary:
    """make predict: TTA x folds on the test images, then the task's validated submission file."""
    spec, root = competition_root(cfg)
    require_task(cfg, spec)
    index = load_index(root / "index.parquet")
    # read first: a broken sample stops here, before minutes of prediction
    sample = read_sample_submission(root / spec.sample_submission, spec.submission_id_column,
                                    spec.submission_label_column)
    predictions = predict_test(cfg, index, progress=progress)
    path = Path(cfg.submissions_dir) / spec.slug / f"{cfg.run_id}.csv"
    writer = {"classification": _class_submission, "segmentation": _mask_submission,
              "localization": _box_submission}[cfg.task]
    return writer(cfg, spec, index, predictions, sample, path)


def _class_submission(cfg, spec, index, predictions, sample, path) -> PredictSummary:
    classes = class_names(index, spec)
    rows = predictions.rows
    probs = np.tile(_class_prior(index, classes), (len(rows), 1))  # an undecodable image still needs a row
    probs[predictions.readable] = predictions.values
    predicted = dict(zip(rows["id"], np.asarray(classes)[probs.argmax(1)]))
    frame = submission_frame(sample, predicted, spec.submission_id_column, spec.submission_label_column)
    write_submission(path, frame[spec.submission_id_column], frame[spec.submission_label_column], sample,
                     spec.submission_id_column, spec.submission_label_column, classes)
    counts = frame[spec.submission_label_column].value_counts()
    return PredictSummary(submission=path, n_rows=len(frame), n_unreadable=predictions.n_unreadable,
                          counts={k: int(v) for k, v in counts.items()}, unreadable_note="the training class prior")


def _mask_submission(cfg, spec, index, predictions, sample, path) -> PredictSummary:
    from podium.submission_masks import in_sample_order, mask_rows, write_mask_submission

    id_column, rle_column = spec.submission_id_column, spec.submission_label_column
    shapes = image_shapes(predictions.rows)
    rows = mask_rows(predictions.readable_ids, predictions.values, shapes, cfg.mask_threshold, cfg.min_object_pixels,
                     id_column, rle_column)
    frame = in_sample_order(rows, sample, id_column, rle_column)
    write_mask_submission(path, frame, sample, id_column, rle_column, shapes)
    filled = frame[rle_column].astype(str).str.strip() != ""
    return PredictSummary(submission=path, n_rows=len(frame), n_unreadable=predictions.n_unreadable,
                          counts={"images": int(frame[id_column].nunique()),
                                  "images with objects": int(frame.loc[filled, id_column].nunique()),
                                  "objects": int(filled.sum())},
                          unreadable_note="an empty row (no objects)")


def _box_submission(cfg, spec, index, predictions, sample, path) -> PredictSummary:
    from podium.submission_boxes import box_frame, write_box_submission

    classes = class_names(index, spec)
    c = len(classes)
    predicted = {image_id: (classes[int(row[:c].argmax())], row[c:])
                 for image_id, row in zip(predictions.readable_ids, np.asarray(predictions.values))}
    shapes = image_shapes(predictions.rows)
    frame = box_frame(sample, spec, predicted, shapes)
    write_box_submission(path, frame, sample, spec, classes, shapes)
    counts = frame[spec.submission_label_column].value_counts()
    return PredictSummary(submission=path, n_rows=len(frame), n_unreadable=predictions.n_unreadable,
                          counts={k: int(v) for k, v in counts.items()},
                          unreadable_note="the sample submission's placeholder row")


def _class_prior(index: pd.DataFrame, classes: list[str]) -> np.ndarray:
    train = index[(index["split"] == "train") & index["ok"]]
    return train["label"].value_counts(normalize=True).reindex(classes).fillna(0).to_numpy(dtype="float32")

