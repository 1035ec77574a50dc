"""train_and_evaluate on the real demo JPEGs with the tiny CNN (seconds per fit on 2 cores)."""

import json

import keras
import numpy as np
import pandas as pd
import pytest

from podium.data.dataset import load_labeled_data
from podium.models.backbones import build_backbone
from podium.models.classifier import backbone_of, has_pretrained_backbone, load_classifier
from podium.runners.train import make_loaders, train_and_evaluate
from podium.tasks import get_task
from tests_support import stop_after_epoch


class WeightsPerEpoch(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.snapshots = []

    def on_epoch_end(self, epoch, logs=None):
        self.snapshots.append([w.copy() for w in self.model.get_weights()])


class RuinLastEpoch(keras.callbacks.Callback):
    """Zero every weight during the last epoch, so the last epoch is certainly not the best one."""

    def __init__(self, last_epoch):
        super().__init__()
        self.last_epoch, self.epoch = last_epoch, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == self.last_epoch:
            self.model.set_weights([np.zeros_like(w) for w in self.model.get_weights()])


class ConfidentlyWrongLastEpoch(RuinLastEpoch):
    """The last epoch's weights predict class 0 for every image with P ~ 1 (zero weights, one huge bias)."""

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if self.epoch == self.last_epoch:
            head = self.model.layers[-1]
            kernel, bias = head.get_weights()
            head.set_weights([kernel, np.eye(len(bias), dtype=bias.dtype)[0] * 100])


def test_the_best_epoch_predicts_not_the_last(tiny, tmp_path):
    cfg = tiny.cfg(tmp_path, "epochs=4", "early_stopping_patience=10", "tta=[identity]")
    snapshots = WeightsPerEpoch()
    result = train_and_evaluate(cfg, get_task(cfg.task), 0, extra_callbacks=[RuinLastEpoch(3), snapshots])
    history = pd.read_csv(result.fold_dir / "history.csv")
    assert len(history) == 4
    best = int(history["val_accuracy"].idxmax())
    assert best != 3 and history["val_accuracy"].iloc[3] < history["val_accuracy"].iloc[best]
    assert result.best_epoch == best + 1
    saved = keras.models.load_model(result.fold_dir / "best.keras").get_weights()
    for got, want in zip(saved, snapshots.snapshots[best]):
        np.testing.assert_array_equal(got, want)
    assert result.val_score == pytest.approx(history["val_accuracy"].iloc[best], abs=1e-6)
    assert result.val_score > history["val_accuracy"].iloc[3]


class TrainableAtStart(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.values = [keras.ops.convert_to_numpy(v).copy() for v in self.model.trainable_weights]


def test_ema_checkpoints_the_averaged_weights(tiny, tmp_path):
    """ema=0.99 keeps an average that, over ~25 steps, stays near the initial weights while the raw weights
    move (one epoch: the best is the only one): the checkpoint must hold the average (EMA does not change the training path itself, so a
    checkpoint of the raw weights would be exactly as far from the start as the run without EMA)."""
    moved = {}
    for ema in (0.0, 0.99):
        start = TrainableAtStart()
        cfg = tiny.cfg(tmp_path, "epochs=1", f"ema={ema}", "tta=[identity]", "early_stopping_patience=5",
                   f"name=ema-{ema}")
        result = train_and_evaluate(cfg, get_task(cfg.task), 0, extra_callbacks=[start])
        saved = keras.models.load_model(result.fold_dir / "best.keras").trainable_weights
        moved[ema] = sum(float(np.abs(keras.ops.convert_to_numpy(got) - want).sum())
                         for got, want in zip(saved, start.values))
    assert moved[0.99] < 0.8 * moved[0.0], moved


class CountEpochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_an_interrupted_run_resumes_where_it_stopped(tiny, tmp_path):
    cfg = tiny.cfg(tmp_path, "epochs=4", "early_stopping_patience=10", "tta=[identity]")
    with pytest.raises(KeyboardInterrupt):
        train_and_evaluate(cfg, get_task(cfg.task), 0, extra_callbacks=[stop_after_epoch(1)])
    counter = CountEpochs()
    result = train_and_evaluate(cfg, get_task(cfg.task), 0, extra_callbacks=[counter])
    assert counter.epochs == [2, 3]  # epochs 0 and 1 were not trained again
    history = pd.read_csv(result.fold_dir / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2, 3]
    assert result.epochs_run == 4
    again = train_and_evaluate(cfg, get_task(cfg.task), 0)  # a finished fold is read back, not retrained
    assert again.val_score == result.val_score


def test_validation_batches_are_never_augmented(tiny, tmp_path):
    cfg = tiny.cfg(tmp_path, "augment=[flip,crop,color,erasing]", "cpu_augment=heavy")
    data = load_labeled_data(cfg, get_task(cfg.task), progress=False)
    train_pos, val_pos = data.fold_positions(0)
    train, val = make_loaders(cfg, get_task(cfg.task), data, train_pos, val_pos)
    assert train.augmented and not val.augmented
    seen = np.concatenate([val[i][0] for i in range(len(val))])
    np.testing.assert_array_equal(seen, data.images[val_pos].astype("float32"))
    x, y = train[0]
    rows = train.order[:cfg.batch_size]
    assert not np.array_equal(x, data.images[rows].astype("float32"))  # training batches are
    np.testing.assert_array_equal(y.argmax(1), data.labels[rows])


def test_split_is_disjoint_and_reported(tiny, tmp_path):
    cfg = tiny.cfg(tmp_path)
    data = load_labeled_data(cfg, get_task(cfg.task), progress=False)
    train_pos, val_pos = data.fold_positions(0)
    assert not set(data.ids[train_pos]) & set(data.ids[val_pos])
    assert len(val_pos) == 400 and len(train_pos) == 1600
    assert data.split_path.is_file()


class BackboneSnapshots(keras.callbacks.Callback):
    """The backbone's variables by path (block1_bn/moving_mean, ...) before training and after each epoch."""

    def __init__(self):
        super().__init__()
        self.per_epoch = []

    def on_train_begin(self, logs=None):
        if not self.per_epoch:
            self.on_epoch_end(-1)

    def on_epoch_end(self, epoch, logs=None):
        backbone = self.model.get_layer("backbone")
        self.per_epoch.append({v.path: keras.ops.convert_to_numpy(v).copy() for v in backbone.weights})


def test_unfreeze_strategy_trains_the_head_first_then_everything(tiny, tmp_path):
    cfg = tiny.cfg(tmp_path, "epochs=3", "freeze_backbone=true", "unfreeze_epoch=1",
               "unfreeze_lr_factor=0.5", "tta=[identity]", "early_stopping_patience=10")
    snapshots = BackboneSnapshots()
    result = train_and_evaluate(cfg, get_task(cfg.task), 0, extra_callbacks=[snapshots])
    start, after_head_phase, after_fine_tune = snapshots.per_epoch[0], snapshots.per_epoch[1], snapshots.per_epoch[2]
    for before, after in zip(start.values(), after_head_phase.values()):
        np.testing.assert_array_equal(before, after)  # epoch 0: the backbone is frozen
    assert any(not np.array_equal(a, b) for a, b in zip(after_head_phase.values(), after_fine_tune.values()))
    history = pd.read_csv(result.fold_dir / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2]
    assert history["learning_rate"].iloc[2] == pytest.approx(0.003 * 0.5)


def test_a_run_fine_tunes_from_another_runs_best_checkpoint(tiny, tiny_run, tmp_path):
    """The transfer workflow of benchmarks/transfer_cifar10.py: a user's own pretraining run, then a run with
    weights=runs/<id>/fold-0/best.keras that trains the head alone, then the whole net, while BatchNorm keeps
    the pretrained statistics; its own best.keras is a pretrained start again (a chain of fine-tunings)."""
    checkpoint = tiny_run.run_dir / "fold-0" / "best.keras"  # the pretraining run
    pretrained = backbone_of(load_classifier(checkpoint, compile=False))
    cfg = tiny.cfg(tmp_path, "name=finetune", f"weights={checkpoint}", "freeze_backbone=true",
               "unfreeze_epoch=1", "epochs=2", "tta=[identity]", "early_stopping_patience=10")
    seen = BackboneSnapshots()
    result = train_and_evaluate(cfg, get_task(cfg.task), 0, extra_callbacks=[seen])

    start, after_head_only, after_unfrozen = seen.per_epoch
    assert start.keys() == {v.path for v in pretrained.weights}
    for variable in pretrained.weights:  # the fit starts from the pretraining run's backbone, exactly
        np.testing.assert_array_equal(start[variable.path], keras.ops.convert_to_numpy(variable))
    for path in start:
        np.testing.assert_array_equal(start[path], after_head_only[path])  # head-only: nothing in the backbone moves
    statistics = [p for p in start if "moving_" in p]
    assert len(statistics) == 6  # mean and variance of tiny_cnn's three BatchNorm layers
    for path in statistics:  # BatchNorm in inference mode after unfreezing too
        np.testing.assert_array_equal(after_head_only[path], after_unfrozen[path])
    assert not np.array_equal(after_head_only["block2_conv/kernel"], after_unfrozen["block2_conv/kernel"])
    history = pd.read_csv(result.fold_dir / "history.csv")
    assert history["learning_rate"].tolist() == pytest.approx([0.003, 0.0003])  # schedule=constant, x 0.1

    fine_tuned = load_classifier(result.fold_dir / "best.keras", compile=False)
    assert has_pretrained_backbone(fine_tuned)
    again = build_backbone("tiny_cnn", 32, str(result.fold_dir / "best.keras"))
    for got, want in zip(again.get_weights(), backbone_of(fine_tuned).get_weights()):
        np.testing.assert_array_equal(got, want)


def test_a_log_loss_run_keeps_the_epoch_of_the_lowest_val_log_loss(tiny, tmp_path):
    """metric=log_loss: no Keras metric logs it, so podium's per-epoch validation writes val_log_loss (beside
    the val_loss and val_accuracy fit would have logged); the checkpoint kept is the epoch of its minimum,
    and the fold's score is the log loss of that checkpoint's predictions (scikit-learn's, same rows). The last
    epoch is ruined (every image confidently class 0: the worst log loss by far): a checkpoint keeping the
    maximum would keep it."""
    from sklearn.metrics import log_loss

    cfg = tiny.cfg(tmp_path, "metric=log_loss", "epochs=4", "early_stopping_patience=10", "tta=[identity]",
               "lr=0.02")
    assert (cfg.resolved_monitor, cfg.resolved_mode) == ("val_log_loss", "min")
    snapshots = WeightsPerEpoch()
    result = train_and_evaluate(cfg, get_task(cfg.task), 0, extra_callbacks=[ConfidentlyWrongLastEpoch(3), snapshots])
    history = pd.read_csv(result.fold_dir / "history.csv")
    assert history["val_log_loss"].iloc[3] > 20  # -log(1e-15) = 34.5 for the 90% of images not of class 0
    assert {"val_log_loss", "val_loss", "val_accuracy", "loss", "accuracy"} <= set(history.columns)
    assert len(history) == 4 and history["val_log_loss"].nunique() == 4
    best = int(history["val_log_loss"].idxmin())
    assert best != 3
    assert result.best_epoch == best + 1 and result.monitor == "val_log_loss"
    saved = keras.models.load_model(result.fold_dir / "best.keras").get_weights()
    for got, want in zip(saved, snapshots.snapshots[best]):
        np.testing.assert_array_equal(got, want)
    oof = pd.read_parquet(result.fold_dir / "oof.parquet")
    probs = oof[[c for c in oof.columns if c.startswith("prob_")]].to_numpy(dtype=float)
    want = log_loss(oof["label"], probs / probs.sum(1, keepdims=True), labels=range(probs.shape[1]))
    assert result.val_score == pytest.approx(want, abs=1e-4)
    assert result.val_score == pytest.approx(history["val_log_loss"].iloc[best], abs=1e-4)
    # without label smoothing the compiled loss is the same cross-entropy, so val_loss agrees too
    assert history["val_loss"].iloc[best] == pytest.approx(history["val_log_loss"].iloc[best], abs=1e-3)
    assert result.extra["accuracy"] == pytest.approx((probs.argmax(1) == oof["label"]).mean())
    recorded = json.loads((result.fold_dir / "metrics.json").read_text())
    assert (recorded["metric"], recorded["direction"]) == ("log_loss", "min")


def test_per_epoch_validation_sees_the_averaged_weights(tiny, tmp_path):
    """With ema, the per-epoch log loss is the one of the checkpoint (which holds the averaged weights, see
    test_ema_checkpoints_the_averaged_weights), not of the raw weights training moved on with."""
    cfg = tiny.cfg(tmp_path, "metric=log_loss", "epochs=1", "ema=0.9", "tta=[identity]", "lr=0.02")
    result = train_and_evaluate(cfg, get_task(cfg.task), 0)
    history = pd.read_csv(result.fold_dir / "history.csv")
    assert result.val_score == pytest.approx(history["val_log_loss"].iloc[0], abs=1e-4)


@pytest.mark.slow
def test_a_log_loss_run_records_its_metric_and_its_oof_cv(tiny, tmp_path):
    """The run's metrics.json: the metric and its direction, the CV over folds, and the OOF CV: the log loss
    of every out-of-fold row at once, as scikit-learn computes it on those rows (with TTA)."""
    from sklearn.metrics import log_loss

    from podium.workflow import train_run

    cfg = tiny.cfg(tmp_path, "val_split=0", "n_folds=5", "folds=[0,1]", "metric=log_loss", "tta=[identity,hflip]")
    summary = train_run(cfg, get_task(cfg.task), progress=False)
    record = json.loads((cfg.run_dir / "metrics.json").read_text())
    assert (record["metric"], record["direction"], record["monitor"]) == ("log_loss", "min", "val_log_loss")
    oof = pd.concat([pd.read_parquet(cfg.run_dir / f"fold-{k}" / "oof.parquet") for k in (0, 1)])
    probs = oof[[c for c in oof.columns if c.startswith("prob_")]].to_numpy(dtype=float)
    want = log_loss(oof["label"], probs / probs.sum(1, keepdims=True), labels=range(probs.shape[1]))
    assert record["cv_oof"] == pytest.approx(want, abs=1e-4)
    assert record["cv_mean"] == pytest.approx(np.mean([f.val_score for f in summary.folds]))
    assert record["tta_gain"] == pytest.approx(record["cv_mean"] - record["cv_tta_mean"])  # lower is better
    assert "accuracy" in record["extra"]  # the task's own number, kept beside the metric
    assert "CV log_loss (lower is better)" in summary.report_text
    # a finished fold scored before its metric was recorded is reused, not rescored: the run says so
    fold_record = cfg.run_dir / "fold-0" / "metrics.json"
    fold_record.write_text(json.dumps({k: v for k, v in json.loads(fold_record.read_text()).items()
                                       if k not in ("metric", "direction")}))
    again = train_run(cfg, get_task(cfg.task), progress=False)
    assert any("fold(s) 0 (its task score" in note and "FORCE=1" in note for note in again.notes)
