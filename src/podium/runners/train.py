"""The single training entry: `train_and_evaluate(cfg, task, fold)`, used by `make train` and by the search.

Callbacks are built fresh per call in `make_callbacks`, and after fit the best checkpoint, not the
last epoch, is what predicts (the users' own notebooks got this wrong more than once).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from podium import artefacts
from podium.training import augment
from podium.training import runtime
from podium.training import time_budget
from podium.tasks.base import OOF_OUTPUTS, Task
from podium.training import tta
from podium.training import validation
from podium.training import whitening
from podium.training.balance import class_weights, oversample
from podium.training.checkpoints import SafeBackupAndRestore, SafeModelCheckpoint
from podium.config import ExperimentConfig
from podium.data.dataset import LabeledData, competition_root, load_labeled_data
from podium.data.pipeline import ImageBatches
from podium.errors import PodiumError
from podium.io import write_json, write_parquet
from podium.paths import remove_made
from podium.models.classifier import load_classifier, set_backbone_trainable
from podium.runners.pseudo import PseudoLabels, StackedImages, load_pseudo_labels
from podium.training.run_lock import run_lock
from podium.training.schedules import make_optimizer
from podium.data.index import load_index
from podium.training.monitor import best_epoch  # one definition of "best", shared with the plots


@dataclass
class FoldResult:
    fold: int
    fold_dir: Path
    monitor: str
    best_epoch: int  # 1-based, as the history shows it
    epochs_run: int
    val_score: float  # the run's metric (`metric`) on the fold's validation part, no TTA
    val_score_tta: float  # the same with the config's TTA views averaged
    n_train: int
    n_val: int
    seconds: float
    seconds_per_epoch: float
    extra: dict = dataclasses.field(default_factory=dict)  # task-specific numbers (e.g. airbus_f2)
    n_pseudo: int = 0  # pseudo-labelled test images added to the training part (podium.runners.pseudo); not in n_train
    metric: str = ""  # the label of the metric val_score is in ("" in folds trained before it was recorded)
    direction: str = ""  # max | min: which way the metric is better
    budget: dict = dataclasses.field(default_factory=dict)  # time_budget's plan (podium.training.time_budget)

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}


def fold_dir_of(cfg: ExperimentConfig, fold: int) -> Path:
    return cfg.run_dir / f"fold-{fold}"


def train_and_evaluate(cfg: ExperimentConfig, task: Task, fold: int, *, data: LabeledData | None = None,
                       extra_callbacks: list[keras.callbacks.Callback] | tuple = (),
                       force: bool = False) -> FoldResult:
    """Train on every fold but `fold`, validate on `fold`; resume an interrupted run of the same config.

    Runs under the config's precision policy and device distribution, both restored on return.
    """
    with run_lock(cfg.run_dir, "train"), runtime.training_context(cfg.precision, cfg.distribute):
        return _train_and_evaluate(cfg, task, fold, data=data, extra_callbacks=extra_callbacks, force=force)


def fold_finished(fold_dir: Path) -> bool:
    """A fold is finished once its metrics.json is written, the last step of training it: a fold killed
    mid-fit has a best.keras of some early epoch but no metrics.json (predict refuses it by default)."""
    return (fold_dir / "metrics.json").is_file() and (fold_dir / "best.keras").is_file()


FOLD_DATA = "data.json"  # fold-<k>/data.json: the fold_data_key the fold was trained on


def fold_data_key(data: LabeledData) -> str:
    """Short sha256 of what a fold learns from: ids, label names, the split (and boxes). Checked when a
    finished fold is reused or a killed one resumed, by `make train` and the search alike."""
    names = np.asarray(data.classes, dtype=object)[np.asarray(data.labels, dtype=int)]
    digest = hashlib.sha256(json.dumps([[str(i) for i in data.ids], [str(n) for n in names],
                                        [int(f) for f in data.folds]]).encode())
    if data.targets is not None and np.ndim(data.targets) in (2, 3):  # boxes, label sets, box lists: small
        digest.update(np.ascontiguousarray(data.targets, dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def _check_fold_data(fold_dir: Path, fold: int, key: str) -> None:
    path = fold_dir / FOLD_DATA
    recorded = json.loads(path.read_text(encoding="utf-8")).get("data") if path.is_file() else None
    if recorded is not None and recorded != key:
        raise PodiumError(f"Fold {fold} in {fold_dir} was trained on other data: labels or the split changed since.",
                          expected=f"the fold's data {recorded}", received=f"data {key} now",
                          fix="retrain it with `make train FORCE=1` (a search: start a new one under another name)")


def _train_and_evaluate(cfg: ExperimentConfig, task: Task, fold: int, *, data: LabeledData | None,
                        extra_callbacks: list[keras.callbacks.Callback] | tuple, force: bool) -> FoldResult:
    fold_dir = fold_dir_of(cfg, fold)
    done = fold_dir / "metrics.json"
    if fold_finished(fold_dir) and not force:
        if data is not None:
            _check_fold_data(fold_dir, fold, fold_data_key(data))
        return _read_result(done)
    if fold not in cfg.folds:
        raise PodiumError(f"Fold {fold} is not among the config's folds.", expected=str(cfg.folds),
                          received=str(fold), fix=f"add it: folds=[{fold}]")
    started = time.perf_counter()
    deadline = time_budget.fold_deadline(cfg, cfg.run_dir, fold, _folds_left(cfg, fold, force))
    validation.check_monitor(cfg)
    data = data or load_labeled_data(cfg, task)
    data_key = fold_data_key(data)
    if not force and (fold_dir / "backup").exists():
        _check_fold_data(fold_dir, fold, data_key)  # a resume continues the same data, or nothing
    train_pos, val_pos = data.fold_positions(fold)
    train_pos = task.train_positions(cfg, data, train_pos)
    pseudo, pseudo_record = fold_pseudo_labels(cfg, data, val_pos) if cfg.pseudo_run else (None, None)
    runtime.seed_everything(cfg.seed)
    train_batches, val_batches = make_loaders(cfg, task, data, train_pos, val_pos, pseudo=pseudo)

    if force or not (fold_dir / "backup").exists():
        _clear_fold_dir(fold_dir)
    fold_dir.mkdir(parents=True, exist_ok=True)
    done.unlink(missing_ok=True)  # from here until it is rewritten, the fold is unfinished
    write_json(fold_dir / FOLD_DATA, {"data": data_key, **({"pseudo": pseudo_record} if pseudo else {})})
    model = task.build_model(cfg, data.num_classes)
    if cfg.stem_init == "whiten":
        whitening.whiten_stem(model, data.images[whitening.spread_sample(train_pos)])
    weights = _class_weights(cfg, task, data, train_batches)
    fit_started = time.perf_counter()
    _fit(cfg, task, model, weights, data, val_pos, train_batches, val_batches, fold_dir, extra_callbacks, deadline)
    fit_seconds = time.perf_counter() - fit_started

    history = pd.read_csv(fold_dir / "history.csv")
    scores = _score_fold(cfg, task, data, fold, val_pos, val_batches, fold_dir)
    result = FoldResult(
        fold=fold, fold_dir=fold_dir, monitor=cfg.resolved_monitor, best_epoch=_best_epoch(history, cfg),
        epochs_run=len(history), val_score=scores.plain, val_score_tta=scores.with_tta, n_train=len(train_pos),
        n_val=len(val_pos), seconds=time.perf_counter() - started,
        seconds_per_epoch=fit_seconds / max(1, len(history)), extra=scores.extra,
        n_pseudo=len(pseudo.ids) if pseudo is not None else 0, metric=cfg.resolved_metric.label,
        direction=cfg.resolved_metric.direction, budget=time_budget.record(fold_dir))
    write_json(done, result.to_dict())
    return result


def _class_weights(cfg: ExperimentConfig, task: Task, data: LabeledData, train_batches: ImageBatches
                   ) -> dict | None:
    """class_weight for fit, where the task balances classes; folded into the sample weights when the
    batches carry some (pseudo-labels), since Keras takes class or sample weights, not both."""
    weights = class_weights(train_batches.labels[train_batches.positions], data.num_classes, cfg.class_weight) \
        if task.keys.class_balancing else None
    if weights and train_batches.sample_weights is not None:
        train_batches.sample_weights = train_batches.sample_weights * np.array(
            [weights[int(label)] for label in train_batches.labels], dtype="float32")
        weights = None
    return weights


def _fit(cfg: ExperimentConfig, task: Task, model: keras.Model, weights: dict | None, data: LabeledData,
         val_pos: np.ndarray, train_batches: ImageBatches, val_batches: ImageBatches, fold_dir: Path,
         extra_callbacks: list[keras.callbacks.Callback] | tuple, deadline: float | None = None) -> None:
    """The fold's model fitted phase by phase (head-only, then unfrozen), resuming from its backup; with a
    time budget (`deadline`), for the epochs podium.training.time_budget plans, its guard among the callbacks."""
    own_validation = validation.needs_own_validation(cfg)
    cfg, guard = time_budget.plan_fold(
        cfg, fold_dir, deadline, model, lambda c: _compile(model, task, c, training_phases(c)[0][2], data,
                                                           len(train_batches)),
        runtime.device_batches(train_batches), runtime.device_batches(val_batches), own_validation, len(val_pos))
    for first_epoch, last_epoch, phase_cfg in training_phases(cfg):
        if 0 < last_epoch < cfg.epochs and _epochs_logged(fold_dir) >= last_epoch:
            continue  # resuming inside the unfreeze phase: its backup restores the weights
        if first_epoch > 0:  # the unfreeze phase: the whole network, at a lower rate
            if _epochs_logged(fold_dir) < first_epoch:
                break  # early stopping ended the head-only phase; nothing is left to fine-tune from
            set_backbone_trainable(model, True)
        _compile(model, task, cfg, phase_cfg, data, len(train_batches))
        # fit validates, unless it cannot log the metric: then EpochValidation does, in the same one pass
        own = validation.EpochValidation(task, cfg.resolved_metric, data, val_pos, val_batches,
                                         task.compile_arguments(cfg, data.num_classes)) if own_validation else None
        callbacks = make_callbacks(cfg, fold_dir, own) + list(extra_callbacks)
        if guard is not None:  # first: the stop is decided, and planned_epochs logged, before the CSV row
            callbacks.insert(0, guard)
        model.fit(runtime.device_batches(train_batches),
                  validation_data=None if own else runtime.device_batches(val_batches),
                  initial_epoch=first_epoch, epochs=last_epoch, callbacks=callbacks, class_weight=weights,
                  verbose=cfg.verbose)


def _compile(model: keras.Model, task: Task, cfg: ExperimentConfig, phase_cfg: ExperimentConfig,
             data: LabeledData, steps_per_epoch: int) -> None:
    model.compile(optimizer=make_optimizer(phase_cfg, steps_per_epoch),
                  jit_compile=runtime.jit_compile(cfg.jit_compile), **task.compile_arguments(cfg, data.num_classes))


def _folds_left(cfg: ExperimentConfig, fold: int, force: bool) -> int:
    """This fold and the config's folds after it still to train (all of them with `force`): what shares a
    time budget."""
    order = list(cfg.folds)
    later = order[order.index(fold) + 1:] if fold in order else []
    return 1 + sum(force or not fold_finished(fold_dir_of(cfg, f)) for f in later)


def _score_fold(cfg: ExperimentConfig, task: Task, data: LabeledData, fold: int, val_pos: np.ndarray,
                val_batches: ImageBatches, fold_dir: Path):
    """The best checkpoint's scores on the validation part, with and without TTA; its OOF files written."""
    views = list(dict.fromkeys(["identity", *cfg.tta]))
    with runtime.single_device():
        best_model = load_classifier(fold_dir / "best.keras", compile=task.compile_on_load)
        _, per_view = tta.predict_tta(best_model, val_batches, views, invert=task.view_inverter())
    plain, merge = per_view["identity"], task.output_merger(cfg)
    with_tta = merge([per_view[v] for v in cfg.tta], None) if merge else np.mean([per_view[v] for v in cfg.tta], axis=0)
    scores = task.fold_scores(data, val_pos, fold, plain, with_tta, cfg.resolved_metric)
    write_parquet(fold_dir / "oof.parquet", scores.oof)
    task.save_oof_outputs(fold_dir, with_tta)  # what `make blend` averages (masks, boxes)
    _stamp_oof(cfg, task, fold, fold_dir)
    return scores


def _stamp_oof(cfg: ExperimentConfig, task: Task, fold: int, fold_dir: Path) -> None:
    """The fold's OOF files carry what they were made from (podium.artefacts): the training images, the fold."""
    index_path = competition_root(cfg)[1] / "index.parquet"
    # a fold trained on images handed in memory (no index on disk): nothing to fingerprint them by
    images = artefacts.train_images(load_index(index_path)) if index_path.is_file() else None
    remake = f"make train FORCE=1 with run {cfg.run_id}'s config ({cfg.run_dir / 'config.yaml'}), folds=[{fold}]"
    for name in ("oof.parquet", OOF_OUTPUTS):
        if (fold_dir / name).is_file():
            artefacts.stamp(fold_dir / name, kind=task.output_kind, images=images,
                            remake=remake, made_by="make train", folds=[{"fold": fold, "finished": True}])


def training_phases(cfg: ExperimentConfig) -> list[tuple[int, int, ExperimentConfig]]:
    """(first epoch, end epoch, config) per fit: one phase, or head-only then unfrozen at lr x factor."""
    if not cfg.unfreeze_epoch:
        return [(0, cfg.epochs, cfg)]
    fine_tune = dataclasses.replace(cfg, lr=cfg.lr * cfg.unfreeze_lr_factor,
                                    lr_values=[v * cfg.unfreeze_lr_factor for v in cfg.lr_values],
                                    epochs=cfg.epochs - cfg.unfreeze_epoch, unfreeze_epoch=0)  # one phase
    return [(0, cfg.unfreeze_epoch, cfg), (cfg.unfreeze_epoch, cfg.epochs, fine_tune)]


def _epochs_logged(fold_dir: Path) -> int:
    history_csv = fold_dir / "history.csv"
    return len(pd.read_csv(history_csv)) if history_csv.is_file() else 0


def fold_pseudo_labels(cfg: ExperimentConfig, data: LabeledData, val_pos: np.ndarray
                       ) -> tuple[PseudoLabels, dict]:
    """cfg.pseudo_run's confident test images this fold may train on (none in a duplicate group of its
    validation part, podium.runners.pseudo), and the record saying so: the whole selection, then this fold's."""
    spec, root = competition_root(cfg)
    if data.spec.slug != spec.slug:
        raise PodiumError("Pseudo-labels need the competition's own data.", expected=f"data of {spec.slug}",
                          received=f"data of {data.spec.slug} (in memory)", fix="remove pseudo_run")
    index = load_index(root / "index.parquet")
    pseudo = load_pseudo_labels(cfg, data.classes, index, root)
    groups = index.set_index(index["id"].astype(str))["group"].astype(str)
    val_groups = set(groups.reindex([str(i) for i in data.ids[val_pos]]).dropna())
    fold = pseudo.subset(pseudo.fold_rows(val_groups))
    return fold, {**pseudo.record(), "fold_total": int(len(fold.ids)), "fold_per_class": fold.per_class(),
                  "left_out_near_duplicates": int(len(pseudo.ids) - len(fold.ids))}


def make_loaders(cfg: ExperimentConfig, task: Task, data: LabeledData, train_pos: np.ndarray, val_pos: np.ndarray,
                 pseudo: PseudoLabels | None = None) -> tuple[ImageBatches, ImageBatches]:
    """Only the training loader is handed augmenters; validation sees the cached pixels as they are. The batch
    recipes are not the loader's when they run in the model's train step (config augment_in, Task.pair_augmenter).

    `pseudo` test images join the training loader only, after the labelled rows, weighted per sample."""
    size = cfg.resolved_image_size
    targets = task.batch_targets(cfg, data)
    if targets is not None:
        images, train_targets, weights = data.images, targets, None
        if pseudo is not None and len(pseudo.ids):  # multi-label: their 0/1 label sets are the targets
            n = len(data.images)
            images = StackedImages(data.images, pseudo.images)
            train_targets = np.concatenate([targets, np.asarray(pseudo.labels, dtype=targets.dtype)])
            weights = np.concatenate([np.ones(n, "float32"), np.full(len(pseudo.ids), pseudo.weight, "float32")])
            train_pos = np.concatenate([train_pos, n + np.arange(len(pseudo.ids))])
        train = ImageBatches(images, train_pos, batch_size=cfg.batch_size, shuffle=True, seed=cfg.seed,
                             batch_augment=task.pair_augmenter(cfg),
                             workers=cfg.workers, targets=train_targets, sample_weights=weights)
        return train, ImageBatches(data.images, val_pos, batch_size=cfg.batch_size, targets=targets)
    train_pos = oversample(train_pos, data.labels, cfg.oversample_to, cfg.seed)
    images, labels, weights = data.images, data.labels, None
    if pseudo is not None and len(pseudo.ids):
        n = len(data.images)
        images = StackedImages(data.images, pseudo.images)
        labels = np.concatenate([data.labels, pseudo.labels])
        weights = np.concatenate([np.ones(n, "float32"), np.full(len(pseudo.ids), pseudo.weight, "float32")])
        train_pos = np.concatenate([train_pos, n + np.arange(len(pseudo.ids))])
    train = ImageBatches(
        images, train_pos, labels, data.num_classes, cfg.batch_size, shuffle=True, seed=cfg.seed,
        batch_augment=task.pair_augmenter(cfg),  # None when the model augments in its train step
        image_augment=augment.make_cpu_augmenter(cfg.cpu_augment, size, cfg.seed), workers=cfg.workers,
        sample_weights=weights)
    val = ImageBatches(data.images, val_pos, data.labels, data.num_classes, cfg.batch_size)
    return train, val


def make_callbacks(cfg: ExperimentConfig, fold_dir: Path, validation_callback: keras.callbacks.Callback | None = None
                   ) -> list[keras.callbacks.Callback]:
    """Fresh callbacks for one fit. On resume the checkpoint only beats the best already saved.

    `validation_callback` (podium.training.validation) goes first, so every other callback reads the
    validation logs it writes; only SwapEMAWeights comes before it, so it validates the averaged weights."""
    history_csv = fold_dir / "history.csv"
    monitor, mode = cfg.resolved_monitor, cfg.resolved_mode
    callbacks: list[keras.callbacks.Callback] = [
        LogLearningRate(),
        SafeModelCheckpoint(  # atomic: a full disk or a kill never leaves half a best.keras
            fold_dir / "best.keras", monitor=monitor, mode=mode, save_best_only=True,
            initial_value_threshold=_best_so_far(history_csv, cfg)),
        keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=cfg.early_stopping_patience),
        keras.callbacks.TerminateOnNaN(),
    ]
    if validation_callback is not None:
        callbacks.insert(0, validation_callback)
    if cfg.ema:  # first: validation, the checkpoint and the backup all see the averaged weights
        callbacks.insert(0, keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    if cfg.schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, mode=mode, factor=cfg.plateau_factor, patience=cfg.plateau_patience,
            min_lr=cfg.min_lr))
    # the backup first: when it cannot be written (disk full), the epoch is not logged as done either
    callbacks += [SafeBackupAndRestore(fold_dir / "backup"), keras.callbacks.CSVLogger(history_csv, append=True)]
    return callbacks


class LogLearningRate(keras.callbacks.Callback):
    """Puts the rate in force into the epoch logs so history.csv and the plots show the schedule."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            rate = self.model.optimizer.learning_rate
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(rate))


def _best_epoch(history: pd.DataFrame, cfg: ExperimentConfig) -> int:
    return best_epoch(history, cfg.resolved_monitor, cfg.resolved_mode)


def _best_so_far(history_csv: Path, cfg: ExperimentConfig) -> float | None:
    if not history_csv.is_file():
        return None
    history = pd.read_csv(history_csv)
    monitor = cfg.resolved_monitor
    if monitor not in history or history.empty:
        return None
    return float(history[monitor].max() if cfg.resolved_mode == "max" else history[monitor].min())


def _clear_fold_dir(fold_dir: Path) -> None:
    """A fresh start must not append to, or compare against, an earlier run's files."""
    for name in ("history.csv", "best.keras", "metrics.json", "oof.parquet", OOF_OUTPUTS, time_budget.BUDGET_FILE):
        (fold_dir / name).unlink(missing_ok=True)
        artefacts.record_path(fold_dir / name).unlink(missing_ok=True)
    remove_made(fold_dir / "backup", "a fold's training backup", legacy=_keras_backup)


def _keras_backup(folder: Path) -> bool:
    """A backup an older podium wrote (no marker): Keras' two files and their atomic-write temps only."""
    return all(p.name in ("latest.weights.h5", "training_metadata.json") or p.name.startswith(".")
               for p in folder.iterdir())


def _read_result(path: Path) -> FoldResult:
    import json

    values = json.loads(path.read_text())
    values["fold_dir"] = Path(values["fold_dir"])
    return FoldResult(**values)
