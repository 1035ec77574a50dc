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
from podium.data.dataset import competition_root, load_labeled_data, require_classification
from podium.data.extract import extract, fetch
from podium.data.folds import load_or_make_split
from podium.data.index import build_index, class_names, load_index, save_index
from podium.io import write_json, write_text
from podium.predict import predict_test, save_test_predictions
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
    return DataSummary(root=root, extracted=extracted, n_train=int((index["split"] == "train").sum()),
                       n_test=int((index["split"] == "test").sum()), n_classes=len(class_names(index, spec)),
                       bad_files=list(zip(bad["path"], bad["error"])))


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


def _write_run_report(cfg: ExperimentConfig, data, summary: RunSummary) -> str:
    run_dir, plots = cfg.run_dir, cfg.run_dir / "plots"
    oof = pd.concat([pd.read_parquet(r.fold_dir / "oof.parquet") for r in summary.folds], ignore_index=True)
    table = metrics.classification_table(oof["label"], oof["pred_tta"], data.classes)
    table.to_csv(run_dir / "per_class.csv")
    write_text(run_dir / "per_class.md", report.per_class_table_markdown(table))
    report.plot_confusion(metrics.confusion(oof["label"], oof["pred_tta"], data.num_classes), data.classes,
                          plots / "confusion.png")
    counts = pd.Series(data.classes)[data.labels].value_counts()
    report.plot_class_distribution({name: int(counts.get(name, 0)) for name in data.classes},
                                   plots / "class_distribution.png")
    for result in summary.folds:
        report.plot_history(pd.read_csv(result.fold_dir / "history.csv"), plots / f"history-fold-{result.fold}.png",
                            monitor=cfg.monitor, mode=cfg.mode)
    run_metrics = {
        "run_id": cfg.run_id, "competition": data.spec.slug, "backbone": cfg.backbone,
        "image_size": cfg.resolved_image_size, "folds": [r.to_dict() for r in summary.folds],
        "cv_mean": summary.cv_mean, "cv_std": summary.cv_std, "cv_tta_mean": summary.cv_tta_mean,
        "cv_tta_std": summary.cv_tta_std, "tta_views": list(cfg.tta), "wall_seconds": summary.wall_seconds,
        "split": str(data.split_path), "macro_f1": float(table.loc["macro avg", "f1"]),
    }
    write_json(run_dir / "metrics.json", run_metrics)
    text = report.summary_text({**run_metrics, "per_class": table})
    write_text(run_dir / "summary.txt", text + "\n")
    return text


@dataclass
class PredictSummary:
    submission: Path
    n_rows: int
    n_unreadable: int
    class_counts: dict[str, int]


def predict_run(cfg: ExperimentConfig, progress: bool = True) -> PredictSummary:
    """make predict: TTA x folds on the test images, then the validated submission file."""
    require_classification(cfg, "Prediction")
    spec, root = competition_root(cfg)
    index = load_index(root / "index.parquet")
    classes = class_names(index, spec)
    train = index[(index["split"] == "train") & index["ok"]]
    prior = train["label"].value_counts(normalize=True).reindex(classes).fillna(0).to_numpy()
    rows, probs = predict_test(cfg, index, prior, progress=progress)
    save_test_predictions(cfg.run_dir, rows, probs)
    sample = read_sample_submission(root / spec.sample_submission, spec.submission_id_column,
                                    spec.submission_label_column)
    predicted = dict(zip(rows["id"], np.asarray(classes)[probs.argmax(1)]))
    frame = submission_frame(sample, predicted, spec.submission_id_column, spec.submission_label_column)
    path = Path(cfg.submissions_dir) / spec.slug / f"{cfg.run_id}.csv"
    write_submission(path, frame[spec.submission_id_column], frame[spec.submission_label_column], sample,
                     spec.submission_id_column, spec.submission_label_column, classes)
    counts = frame[spec.submission_label_column].value_counts()
    return PredictSummary(submission=path, n_rows=len(frame), n_unreadable=int((~rows["ok"]).sum()),
                          class_counts={k: int(v) for k, v in counts.items()})
