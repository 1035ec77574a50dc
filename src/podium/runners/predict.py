"""Test predictions of any task: each trained fold's best checkpoint, each TTA view, averaged; rows in
index order; then the task's validated submission file from them.

The submission's order comes from the sample submission later, by id, never from this array's order
or the file system's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from podium.tasks.base import PredictSummary, Task, TestPredictions
from podium.training import tta
from podium.data.competitions import CompetitionSpec
from podium.config import ExperimentConfig
from podium.data.cache import load_images
from podium.data.dataset import competition_root, test_rows
from podium.data.pipeline import ImageBatches
from podium.errors import PodiumError
from podium.io import atomic_path, preallocate, write_csv
from podium.models.classifier import load_classifier
from podium.progress import progress as progress_bar
from podium.training.monitor import best_epoch  # one definition of "best", shared with the plots
from podium.scoring import calibration
from podium.scoring.run_metric import run_metric
from podium.runners.train import fold_dir_of, fold_finished

CHUNK = 2048  # test images per predict call: bounds memory for masks, keeps batches full


def trained_folds(cfg: ExperimentConfig) -> list[Path]:
    """The best checkpoints of the config's folds; unfinished folds refused unless allow_unfinished."""
    return [used.checkpoint for used in used_folds(cfg)]


@dataclass
class UsedFold:
    """One fold's checkpoint as a prediction uses it, and how far its training got."""

    fold: int
    checkpoint: Path
    finished: bool  # fold-<k>/metrics.json written: training ran to its end (podium.runners.train.fold_finished)
    best_epoch: int | None  # 1-based, the epoch best.keras holds
    epochs_run: int

    def describe(self) -> str:
        best = f"best epoch {self.best_epoch} of {self.epochs_run}" if self.best_epoch else "no epoch logged"
        return f"fold {self.fold} ({best})" if self.finished else f"fold {self.fold} (UNFINISHED: {best} trained)"

    def to_dict(self) -> dict:
        return {"fold": self.fold, "checkpoint": str(self.checkpoint), "finished": self.finished,
                "best_epoch": self.best_epoch, "epochs_run": self.epochs_run}


def used_folds(cfg: ExperimentConfig) -> list[UsedFold]:
    """The config's folds with their training state. A missing checkpoint is an error; an unfinished fold
    (a killed `make train` leaves a best.keras of an early epoch) too, unless allow_unfinished=true."""
    checkpoints = [fold_dir_of(cfg, k) / "best.keras" for k in cfg.folds]
    missing = [str(p) for p in checkpoints if not p.is_file()]
    if missing:
        raise PodiumError("Not every fold of this run has a trained checkpoint.",
                          expected=", ".join(str(p) for p in checkpoints), received=f"missing {', '.join(missing)}",
                          fix="run `make train` with the same config first")
    used = [_fold_state(cfg, k, fold_dir_of(cfg, k), fold_finished(fold_dir_of(cfg, k))) for k in cfg.folds]
    unfinished = [u for u in used if not u.finished]
    if unfinished and not cfg.allow_unfinished:
        raise PodiumError(f"Run {cfg.run_id} has folds whose training did not finish (no metrics.json): their "
                          "best.keras is from an interrupted `make train`.",
                          expected=f"every fold of folds={cfg.folds} trained to its end",
                          received="; ".join(u.describe() for u in unfinished) + f" of epochs={cfg.epochs}",
                          fix="run the same `make train` again to resume them; or predict with the finished folds "
                              f"only (folds=[...]); or add allow_unfinished=true to use them as they are")
    return used


def _fold_state(cfg: ExperimentConfig, fold: int, fold_dir: Path, finished: bool) -> UsedFold:
    import json

    if finished:
        values = json.loads((fold_dir / "metrics.json").read_text(encoding="utf-8"))
        return UsedFold(fold, fold_dir / "best.keras", True, values.get("best_epoch"), values.get("epochs_run", 0))
    history_csv = fold_dir / "history.csv"
    history = pd.read_csv(history_csv) if history_csv.is_file() and history_csv.stat().st_size else pd.DataFrame()
    monitor = cfg.resolved_monitor
    best = best_epoch(history, monitor, cfg.resolved_mode) if monitor in history and history[monitor].notna().any() \
        else None
    return UsedFold(fold, fold_dir / "best.keras", False, best, len(history))


def predict_test(cfg: ExperimentConfig, task: Task, index: pd.DataFrame, progress: bool = True) -> TestPredictions:
    """Every fold's best checkpoint x every TTA view on the readable test images of `make data`'s index."""
    _, root = competition_root(cfg)
    return predict_rows(cfg, task, test_rows(index), root, root / "cache", trained_folds(cfg), cfg.run_dir,
                        progress=progress)


def predict_rows(cfg: ExperimentConfig, task: Task, rows: pd.DataFrame, data_root: Path, cache_dir: Path,
                 checkpoints: list[Path], out_dir: Path, progress: bool = True,
                 timings: dict[str, float] | None = None) -> TestPredictions:
    """Checkpoints x TTA views on the readable index `rows` (test rows sorted by id), averaged.

    Views are mapped back to the image's frame first (un-flipped masks and boxes). The average is
    accumulated chunk by chunk into <out_dir>/test_predictions.npy, so Airbus-sized sets of masks
    never sit in memory at once; undecodable images are left to the task's submission writer.
    Shared by `make predict` and the offline inference kernel (podium.kaggle.inference), which reads the
    competition from a read-only folder and so keeps its cache and outputs elsewhere. The images are held as
    cfg.cache says (podium.data.cache.load_images: the same pixels in every mode); the result says how and why.
    `timings`, when given, receives the seconds spent decoding ("decode") and in the model ("model").
    """
    readable = rows["ok"].to_numpy(dtype=bool)
    if not readable.any():
        raise PodiumError("No test image could be decoded.", expected="readable test images",
                          received=f"{len(rows)} test rows, all ok=False", fix="check `make data`'s report")
    started = time.perf_counter()
    images, cache = load_images(rows[readable].reset_index(drop=True), Path(data_root), cfg.resolved_image_size,
                                Path(cache_dir), cfg.cache, progress)
    decoded = time.perf_counter()
    path = Path(out_dir) / "test_predictions.npy"
    with atomic_path(path) as tmp:
        _predict_into(tmp, path, cfg, task, images, checkpoints, progress)
    write_csv(Path(out_dir) / "test_ids.csv", rows[["id", "ok"]])
    if timings is not None:
        timings.update(decode=decoded - started, model=time.perf_counter() - decoded)
    return TestPredictions(rows=rows, readable=readable, values=np.load(path, mmap_mode="r"), cache=cache.reason)


def _predict_into(tmp: Path, path: Path, cfg: ExperimentConfig, task: Task, images: np.ndarray,
                  checkpoints: list[Path], progress: bool) -> None:
    """Checkpoints x views into the .npy at `tmp`: their mean accumulated in place (a memmap, chunk by chunk), or
    the task's merger of the views, then of the checkpoints (a detector's fused boxes: small)."""
    invert, merge = task.view_inverter(), task.output_merger(cfg)
    total, merged = None, {checkpoint: [] for checkpoint in checkpoints}
    starts = range(0, len(images), CHUNK)
    steps = progress_bar(((c, s) for c in checkpoints for s in starts), total=len(checkpoints) * len(starts),
                         desc=f"predict {len(images)} images x {len(checkpoints)} folds x {len(cfg.tta)} views",
                         unit="chunk", enabled=progress)
    loaded = None
    for checkpoint, start in steps:  # checkpoint by checkpoint: each model is loaded once
        if checkpoint != loaded:
            if loaded is not None:
                keras.backend.clear_session()
            model, loaded = load_classifier(checkpoint, compile=False), checkpoint
        positions = np.arange(start, min(start + CHUNK, len(images)))
        batches = ImageBatches(images, positions, batch_size=cfg.batch_size)
        mean, per_view = tta.predict_tta(model, batches, cfg.tta, invert)
        if merge is not None:
            merged[checkpoint].append(merge([per_view[view] for view in cfg.tta], None))
            continue
        if total is None:
            total = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(images), *mean.shape[1:]))
            preallocate(tmp, tmp.stat().st_size, path)  # a full disk: an error here, not a SIGBUS
        total[positions] += mean / len(checkpoints)
    keras.backend.clear_session()
    if merge is not None:
        with open(tmp, "wb") as handle:
            np.save(handle, merge([np.concatenate(parts) for parts in merged.values()], None).astype(np.float32))
        return
    total.flush()
    del total


# ---------------------------------------------------------------------------------- the submission
def write_task_submission(cfg: ExperimentConfig, task: Task, spec: CompetitionSpec, predictions: TestPredictions,
                          sample: pd.DataFrame, path: Path, classes: list[str], prior: np.ndarray
                          ) -> PredictSummary:
    """The task's validated submission file from test predictions, written atomically.

    `classes` is the model's output order; `prior` (one weight per class) is what an undecodable image
    gets in a class submission: `make predict` passes the training class frequencies of its index,
    the inference kernel the ones saved with the packaged run.
    """
    calibrated = run_calibration(cfg, spec, classes)
    if calibrated is not None:  # the writer sees calibrated probabilities; test_predictions.npy stays raw
        predictions = TestPredictions(rows=predictions.rows, readable=predictions.readable,
                                      values=calibrated.apply(np.asarray(predictions.values)))
    summary = task.write_submission(cfg, spec, classes, np.asarray(prior, dtype="float32"), predictions, sample,
                                    Path(path))
    if calibrated is not None:
        summary.notes.append(calibrated.summary())
    return summary


def run_calibration(cfg: ExperimentConfig, spec: CompetitionSpec, classes: list[str]
                    ) -> calibration.Calibration | None:
    """The run folder's temperature (podium.scoring.calibration): fitted on its OOF rows and saved to
    calibration.json here, at `make predict`, where the metric reads probabilities; read back from the file
    in a run folder without OOF rows (an inference package, a blend)."""
    return calibration.run_calibration(cfg.run_dir, run_metric(cfg, spec), cfg.task, classes, spec.positive_class)
