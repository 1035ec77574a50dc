"""Segmentation losses and training-time metrics (keras.ops only: they run under JAX too).

Dice rewards overlap regardless of how few pixels the object has, which BCE alone does not: with
ships covering ~0.1% of an Airbus image, a BCE-only model learns "all sea" first. BCE + Dice is the
pruning experiment's choice; focal down-weights the easy sea pixels instead.
"""

from __future__ import annotations

import keras
from keras import ops

from podium.errors import PodiumError

SMOOTH = 1.0  # the pruning experiment's smoothing: an empty mask and an empty prediction give Dice 1, not 0/0


@keras.saving.register_keras_serializable(package="podium")
def soft_dice_loss(y_true, y_pred):
    """1 - soft Dice per image, so every image counts the same whatever its object's size."""
    y_true, y_pred = _flat(y_true), _flat(y_pred)
    inter = ops.sum(y_true * y_pred, axis=1)
    total = ops.sum(y_true, axis=1) + ops.sum(y_pred, axis=1)
    return 1.0 - (2.0 * inter + SMOOTH) / (total + SMOOTH)


@keras.saving.register_keras_serializable(package="podium")
def pixel_bce(y_true, y_pred):
    return ops.mean(keras.losses.binary_crossentropy(_flat(y_true)[..., None], _flat(y_pred)[..., None]), axis=1)


@keras.saving.register_keras_serializable(package="podium")
def bce_dice_loss(y_true, y_pred):
    return pixel_bce(y_true, y_pred) + soft_dice_loss(y_true, y_pred)


@keras.saving.register_keras_serializable(package="podium")
class PixelFocalLoss(keras.losses.Loss):
    def __init__(self, gamma: float = 2.0, name: str = "pixel_focal", **kwargs):
        super().__init__(name=name, **kwargs)
        self.gamma = gamma

    def call(self, y_true, y_pred):
        focal = keras.losses.binary_focal_crossentropy(_flat(y_true)[..., None], _flat(y_pred)[..., None],
                                                       gamma=self.gamma)
        return ops.mean(focal, axis=1)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma}


SEG_LOSSES = ("bce", "dice", "bce_dice", "focal")


def make_seg_loss(name: str, gamma: float = 2.0):
    if name == "bce":
        return pixel_bce
    if name == "dice":
        return soft_dice_loss
    if name == "bce_dice":
        return bce_dice_loss
    if name == "focal":
        return PixelFocalLoss(gamma)
    raise PodiumError(f"Unknown segmentation loss {name!r}.", expected=f"one of: {', '.join(SEG_LOSSES)}",
                      received=repr(name), fix="set seg_loss= to a listed name")


@keras.saving.register_keras_serializable(package="podium")
def hard_dice(y_true, y_pred):
    """Dice of the 0.5-thresholded prediction, per image; 1 when both are empty (what the score uses)."""
    truth, pred = _flat(y_true), ops.cast(_flat(y_pred) > 0.5, "float32")
    inter = ops.sum(truth * pred, axis=1)
    total = ops.sum(truth, axis=1) + ops.sum(pred, axis=1)
    return ops.where(total > 0, 2.0 * inter / ops.maximum(total, 1.0), 1.0)


@keras.saving.register_keras_serializable(package="podium")
def hard_iou(y_true, y_pred):
    truth, pred = _flat(y_true), ops.cast(_flat(y_pred) > 0.5, "float32")
    inter = ops.sum(truth * pred, axis=1)
    union = ops.sum(ops.maximum(truth, pred), axis=1)
    return ops.where(union > 0, inter / ops.maximum(union, 1.0), 1.0)


def seg_metrics() -> list[keras.metrics.Metric]:
    """Logged as dice / iou (val_dice, val_iou): the names `monitor` may use."""
    return [keras.metrics.MeanMetricWrapper(hard_dice, name="dice"),
            keras.metrics.MeanMetricWrapper(hard_iou, name="iou")]


def _flat(masks):
    masks = ops.cast(masks, "float32")
    return ops.reshape(masks, (ops.shape(masks)[0], -1))
