"""The single training entry: `train_and_evaluate(cfg, fold)`, used by `make train` and by the search.

Callbacks are built fresh per call in `make_callbacks`, and after fit the best checkpoint, not the
last epoch, is what predicts (the users' own notebooks got this wrong more than once).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from podium import augment, runtime, tasks, tta
from podium.augment_pairs import make_pair_augmenter
from podium.balance import class_weights, keep_empty, oversample
from podium.config import ExperimentConfig
from podium.data.dataset import LabeledData, load_labeled_data
from podium.data.pipeline import ImageBatches
from podium.errors import PodiumError
from podium.io import write_json, write_parquet
from podium.models import load_classifier, set_backbone_trainable
from podium.schedules import make_optimizer


@dataclass
class FoldResult:
    fold: int
    fold_dir: Path
    monitor: str
    best_epoch: int  # 1-based, as the history shows it
    epochs_run: int
    val_score: float  # the competition metric on the fold's validation part, no TTA
    val_score_tta: float  # the same with the config's TTA views averaged
    n_train: int
    n_val: int
    seconds: float
    seconds_per_epoch: float
    extra: dict = dataclasses.field(default_factory=dict)  # task-specific numbers (e.g. airbus_f2)

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}


def fold_dir_of(cfg: ExperimentConfig, fold: int) -> Path:
    return cfg.run_dir / f"fold-{fold}"


def train_and_evaluate(cfg: ExperimentConfig, fold: int, *, data: LabeledData | None = None,
                       extra_callbacks: list[keras.callbacks.Callback] | tuple = (),
                       force: bool = False) -> FoldResult:
    """Train on every fold but `fold`, validate on `fold`; resume an interrupted run of the same config.

    Runs under the config's precision policy and device distribution, both restored on return.
    """
    with runtime.training_context(cfg.precision, cfg.distribute):
        return _train_and_evaluate(cfg, fold, data=data, extra_callbacks=extra_callbacks, force=force)


def _train_and_evaluate(cfg: ExperimentConfig, fold: int, *, data: LabeledData | None,
                        extra_callbacks: list[keras.callbacks.Callback] | tuple, force: bool) -> FoldResult:
    fold_dir = fold_dir_of(cfg, fold)
    done = fold_dir / "metrics.json"
    if done.is_file() and (fold_dir / "best.keras").is_file() and not force:
        return _read_result(done)
    if fold not in cfg.folds:
        raise PodiumError(f"Fold {fold} is not among the config's folds.", expected=str(cfg.folds),
                          received=str(fold), fix=f"add it: folds=[{fold}]")
    started = time.perf_counter()
    data = data or load_labeled_data(cfg)
    train_pos, val_pos = data.fold_positions(fold)
    if cfg.task == "segmentation":
        train_pos = keep_empty(train_pos, data.targets, cfg.keep_empty, cfg.seed)
    runtime.seed_everything(cfg.seed)
    train_batches, val_batches = make_loaders(cfg, data, train_pos, val_pos)

    if force or not (fold_dir / "backup").exists():
        _clear_fold_dir(fold_dir)
    fold_dir.mkdir(parents=True, exist_ok=True)
    model = tasks.build_model(cfg, data.num_classes)
    weights = class_weights(data.labels[train_batches.positions], data.num_classes, cfg.class_weight) \
        if cfg.task == "classification" else None
    fit_started = time.perf_counter()
    for first_epoch, last_epoch, phase_cfg in training_phases(cfg):
        if 0 < last_epoch < cfg.epochs and _epochs_logged(fold_dir) >= last_epoch:
            continue  # resuming inside the unfreeze phase: its backup restores the weights
        if first_epoch > 0:  # the unfreeze phase: the whole network, at a lower rate
            if _epochs_logged(fold_dir) < first_epoch:
                break  # early stopping ended the head-only phase; nothing is left to fine-tune from
            set_backbone_trainable(model, True)
        model.compile(optimizer=make_optimizer(phase_cfg, len(train_batches)),
                      jit_compile=runtime.jit_compile(cfg.jit_compile),
                      **tasks.compile_arguments(cfg, data.num_classes))
        model.fit(runtime.device_batches(train_batches), validation_data=runtime.device_batches(val_batches),
                  initial_epoch=first_epoch, epochs=last_epoch,
                  callbacks=make_callbacks(cfg, fold_dir) + list(extra_callbacks), class_weight=weights,
                  verbose=cfg.verbose)
    fit_seconds = time.perf_counter() - fit_started

    history = pd.read_csv(fold_dir / "history.csv")
    views = list(dict.fromkeys(["identity", *cfg.tta]))
    with runtime.single_device():
        best_model = load_classifier(fold_dir / "best.keras", compile=cfg.task == "classification")
        _, per_view = tta.predict_tta(best_model, val_batches, views, invert=tasks.view_inverter(cfg.task))
    plain = per_view["identity"]
    with_tta = np.mean([per_view[v] for v in cfg.tta], axis=0)
    scores = tasks.fold_scores(cfg.task, data, val_pos, fold, plain, with_tta)
    write_parquet(fold_dir / "oof.parquet", scores.oof)
    result = FoldResult(
        fold=fold, fold_dir=fold_dir, monitor=cfg.monitor, best_epoch=_best_epoch(history, cfg),
        epochs_run=len(history), val_score=scores.plain, val_score_tta=scores.with_tta, n_train=len(train_pos),
        n_val=len(val_pos), seconds=time.perf_counter() - started,
        seconds_per_epoch=fit_seconds / max(1, len(history)), extra=scores.extra)
    write_json(done, result.to_dict())
    return result


def training_phases(cfg: ExperimentConfig) -> list[tuple[int, int, ExperimentConfig]]:
    """(first epoch, end epoch, config) per fit: one phase, or head-only then unfrozen at lr x factor."""
    if not cfg.unfreeze_epoch:
        return [(0, cfg.epochs, cfg)]
    fine_tune = dataclasses.replace(cfg, lr=cfg.lr * cfg.unfreeze_lr_factor,
                                    lr_values=[v * cfg.unfreeze_lr_factor for v in cfg.lr_values],
                                    epochs=cfg.epochs - cfg.unfreeze_epoch)
    return [(0, cfg.unfreeze_epoch, cfg), (cfg.unfreeze_epoch, cfg.epochs, fine_tune)]


def _epochs_logged(fold_dir: Path) -> int:
    history_csv = fold_dir / "history.csv"
    return len(pd.read_csv(history_csv)) if history_csv.is_file() else 0


def make_loss(cfg: ExperimentConfig) -> keras.losses.Loss:
    if cfg.loss == "focal":  # down-weights easy examples, so rare, hard classes keep a voice
        return keras.losses.CategoricalFocalCrossentropy(gamma=cfg.focal_gamma, label_smoothing=cfg.label_smoothing)
    return keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)


def make_loaders(cfg: ExperimentConfig, data: LabeledData, train_pos: np.ndarray, val_pos: np.ndarray
                 ) -> tuple[ImageBatches, ImageBatches]:
    """Only the training loader is handed augmenters; validation sees the cached pixels as they are."""
    size = cfg.resolved_image_size
    targets = tasks.batch_targets(cfg, data)
    if targets is not None:
        train = ImageBatches(data.images, train_pos, batch_size=cfg.batch_size, shuffle=True, seed=cfg.seed,
                             batch_augment=make_pair_augmenter(cfg.task, cfg.augment, size, cfg.seed),
                             workers=cfg.workers, targets=targets)
        return train, ImageBatches(data.images, val_pos, batch_size=cfg.batch_size, targets=targets)
    train_pos = oversample(train_pos, data.labels, cfg.oversample_to, cfg.seed)
    train = ImageBatches(
        data.images, train_pos, data.labels, data.num_classes, cfg.batch_size, shuffle=True, seed=cfg.seed,
        batch_augment=augment.make_batch_augmenter(cfg.augment, size, cfg.seed),
        image_augment=augment.make_cpu_augmenter(cfg.cpu_augment, size, cfg.seed), workers=cfg.workers)
    val = ImageBatches(data.images, val_pos, data.labels, data.num_classes, cfg.batch_size)
    return train, val


def make_callbacks(cfg: ExperimentConfig, fold_dir: Path) -> list[keras.callbacks.Callback]:
    """Fresh callbacks for one fit. On resume the checkpoint only beats the best already saved."""
    history_csv = fold_dir / "history.csv"
    callbacks: list[keras.callbacks.Callback] = [
        LogLearningRate(),
        keras.callbacks.ModelCheckpoint(
            fold_dir / "best.keras", monitor=cfg.monitor, mode=cfg.mode, save_best_only=True,
            initial_value_threshold=_best_so_far(history_csv, cfg)),
        keras.callbacks.EarlyStopping(monitor=cfg.monitor, mode=cfg.mode, patience=cfg.early_stopping_patience),
        keras.callbacks.TerminateOnNaN(),
    ]
    if cfg.schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=cfg.monitor, mode=cfg.mode, factor=cfg.plateau_factor, patience=cfg.plateau_patience,
            min_lr=cfg.min_lr))
    callbacks += [keras.callbacks.CSVLogger(history_csv, append=True),
                  keras.callbacks.BackupAndRestore(fold_dir / "backup")]
    return callbacks


class LogLearningRate(keras.callbacks.Callback):
    """Puts the rate in force into the epoch logs so history.csv and the plots show the schedule."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            rate = self.model.optimizer.learning_rate
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(rate))


def _best_epoch(history: pd.DataFrame, cfg: ExperimentConfig) -> int:
    from podium.report import best_epoch  # one definition of "best", shared with the plots

    return best_epoch(history, cfg.monitor, cfg.mode)


def _best_so_far(history_csv: Path, cfg: ExperimentConfig) -> float | None:
    if not history_csv.is_file():
        return None
    history = pd.read_csv(history_csv)
    if cfg.monitor not in history or history.empty:
        return None
    return float(history[cfg.monitor].max() if cfg.mode == "max" else history[cfg.monitor].min())


def _clear_fold_dir(fold_dir: Path) -> None:
    """A fresh start must not append to, or compare against, an earlier run's files."""
    for name in ("history.csv", "best.keras", "metrics.json", "oof.parquet"):
        (fold_dir / name).unlink(missing_ok=True)
    shutil.rmtree(fold_dir / "backup", ignore_errors=True)


def _read_result(path: Path) -> FoldResult:
    import json

    values = json.loads(path.read_text())
    values["fold_dir"] = Path(values["fold_dir"])
    return FoldResult(**values)
