"""The competition's metric per epoch, where Keras does not log it (log loss, ROC AUC, MAP@k, QWK, ...).

`EpochValidation` replaces fit's own validation rather than adding a second one: fit gets no
validation_data, and at each epoch end this callback predicts the validation part once, then writes into
the epoch's logs what fit would have (val_loss and the task's compile metrics, from fresh metric objects)
and the metric's `val_<name>`, computed as the fold score computes it (Task.metric_pair). It runs first
(after SwapEMAWeights, which swaps the averaged weights in at epoch end), so the checkpoint, early stopping,
the plateau schedule, CSVLogger and a search's pruner all read the metric. One validation pass per epoch
either way: the cost is the metric's arithmetic (benchmarks/bench_epoch_metric.py).
"""

from __future__ import annotations

import keras
import numpy as np

from podium.data.pipeline import ImageBatches
from podium.errors import PodiumError
from podium.scoring.registry import METRICS, Metric
from podium.task_keys import TASK_KEYS


def needs_own_validation(cfg) -> bool:
    """True when fit does not log the run's metric, so EpochValidation computes it (and the validation)."""
    return not TASK_KEYS[cfg.task].native_logged(cfg.resolved_metric.name)


def check_monitor(cfg) -> None:
    """A monitor naming a registry metric must be the run's metric, or one fit logs (val_accuracy): nothing
    else computes it per epoch."""
    monitor = cfg.resolved_monitor
    name = monitor[4:] if monitor.startswith("val_") else ""
    if name in METRICS and monitor != cfg.metric_logged and not TASK_KEYS[cfg.task].native_logged(name):
        raise PodiumError(f"monitor={cfg.monitor} names metric {name}, which this run does not compute per epoch.",
                          expected=f"monitor=metric (the run's metric, {cfg.resolved_metric.label}), "
                                   f"or a value fit logs (val_loss, ...)",
                          received=f"monitor={cfg.monitor}, metric {cfg.resolved_metric.label}",
                          fix=f"set metric={name} (and monitor=metric), or monitor=metric")


class EpochValidation(keras.callbacks.Callback):
    """fit's validation, done once per epoch here, plus the metric fit cannot log."""

    def __init__(self, task, metric: Metric, data, positions: np.ndarray, batches: ImageBatches,
                 compile_arguments: dict):
        super().__init__()
        self.task, self.metric, self.data, self.positions, self.batches = task, metric, data, positions, batches
        self.loss = compile_arguments["loss"]
        self.metrics = [_fresh_metric(m) for m in compile_arguments.get("metrics", [])]
        if batches.targets is not None:
            self.truth = np.asarray(batches.targets[batches.positions], dtype="float32")
        else:
            self.truth = np.eye(batches.num_classes, dtype="float32")[np.asarray(batches.labels)[batches.positions]]

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        outputs = np.asarray(keras.ops.convert_to_numpy(self.model.predict(self.batches, verbose=0)),
                             dtype="float32")
        logs.update(self.validation_logs(outputs))

    def validation_logs(self, outputs: np.ndarray) -> dict[str, float]:
        """What fit's validation logs (val_loss, val_<compile metric>) and val_<metric>, from the outputs."""
        loss = keras.ops.mean(self.loss(self.truth, outputs))
        regularization = [keras.ops.convert_to_numpy(value) for value in self.model.losses]
        logs = {"val_loss": float(keras.ops.convert_to_numpy(loss)) + float(np.sum(regularization))}
        for metric in self.metrics:
            metric.reset_state()
            metric.update_state(self.truth, outputs)
            logs[f"val_{metric.name}"] = float(keras.ops.convert_to_numpy(metric.result()))
        logs[self.metric.logged] = self.task.score(self.metric, self.data, self.positions, outputs)
        return logs


def _fresh_metric(metric) -> keras.metrics.Metric:
    """A metric object of its own (compile's are fit's); "accuracy" of one-hot rows is categorical accuracy,
    as compile resolves it for a softmax head."""
    if isinstance(metric, str):
        if metric == "accuracy":
            return keras.metrics.CategoricalAccuracy(name="accuracy")
        return keras.metrics.get(metric)
    return metric
