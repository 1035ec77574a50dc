"""Segmentation losses and training-time metrics (keras.ops only: they run under JAX too).

Dice rewards overlap regardless of how few pixels the object has, which BCE alone does not: with
ships covering ~0.1% of an Airbus image, a BCE-only model learns "all sea" first. BCE + Dice is the
pruning experiment's choice; focal down-weights the easy sea pixels instead.

With several classes (ClassMaskLoss) the masks are (B, S, S, C): Dice is taken per class channel and averaged,
so a rare class counts as much as a common one; the cross-entropy is binary per class (classes may overlap) or
categorical over the classes and the background, 1 minus their sum (exclusive classes: the model's softmax
with its background channel dropped). The logged dice / iou are the mean over image–class pairs.
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


EPSILON = 1e-7


@keras.saving.register_keras_serializable(package="podium")
class ClassMaskLoss(keras.losses.Loss):
    """(B,S,S,C) 0/1 masks against (B,S,S,C) class probabilities: cross_entropy x (binary per class, or
    categorical with the background when exclusive; focal when gamma > 0) + dice x (1 - soft Dice per class)."""

    def __init__(self, exclusive: bool = False, cross_entropy: float = 1.0, dice: float = 1.0, gamma: float = 0.0,
                 name: str = "class_mask", **kwargs):
        super().__init__(name=name, **kwargs)
        self.exclusive, self.cross_entropy, self.dice, self.gamma = bool(exclusive), float(cross_entropy), \
            float(dice), float(gamma)

    def call(self, y_true, y_pred):
        y_true, y_pred = ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")
        loss = 0.0
        if self.cross_entropy:
            loss = loss + self.cross_entropy * self._cross_entropy(y_true, y_pred)
        if self.dice:
            loss = loss + self.dice * channel_dice_loss(y_true, y_pred)
        return loss

    def _cross_entropy(self, y_true, y_pred):
        """Mean over pixels, per image."""
        if self.exclusive:
            background = ops.clip(1.0 - ops.sum(y_true, axis=-1, keepdims=True), 0.0, 1.0)
            truth = ops.concatenate([background, y_true], axis=-1)
            probs = ops.concatenate([1.0 - ops.sum(y_pred, axis=-1, keepdims=True), y_pred], axis=-1)
            probs = ops.clip(probs, EPSILON, 1.0 - EPSILON)
            terms = -ops.sum(truth * ops.log(probs) * self._focal(1.0 - probs), axis=-1)
        else:
            probs = ops.clip(y_pred, EPSILON, 1.0 - EPSILON)
            terms = -(y_true * ops.log(probs) * self._focal(1.0 - probs)
                      + (1.0 - y_true) * ops.log(1.0 - probs) * self._focal(probs))
        return ops.mean(ops.reshape(terms, (ops.shape(terms)[0], -1)), axis=1)

    def _focal(self, miss):
        """(1 - p)^gamma; 1 without gamma (x ** 0 has a NaN gradient at x = 0)."""
        return miss ** self.gamma if self.gamma else 1.0

    def get_config(self):
        return {**super().get_config(), "exclusive": self.exclusive, "cross_entropy": self.cross_entropy,
                "dice": self.dice, "gamma": self.gamma}


def channel_dice_loss(y_true, y_pred):
    """1 - soft Dice of each class channel, averaged over the channels, per image."""
    inter, total = _per_channel(y_true * y_pred), _per_channel(y_true) + _per_channel(y_pred)
    return ops.mean(1.0 - (2.0 * inter + SMOOTH) / (total + SMOOTH), axis=1)


def make_class_mask_loss(name: str, gamma: float = 2.0, exclusive: bool = False) -> ClassMaskLoss:
    """seg_loss for several classes: bce (categorical cross-entropy when exclusive), dice, bce_dice, focal."""
    weights = {"bce": (1.0, 0.0, 0.0), "dice": (0.0, 1.0, 0.0), "bce_dice": (1.0, 1.0, 0.0),
               "focal": (1.0, 0.0, gamma)}
    if name not in weights:
        raise PodiumError(f"Unknown segmentation loss {name!r}.", expected=f"one of: {', '.join(SEG_LOSSES)}",
                          received=repr(name), fix="set seg_loss= to a listed name")
    cross_entropy, dice, focal = weights[name]
    return ClassMaskLoss(exclusive, cross_entropy, dice, focal)


@keras.saving.register_keras_serializable(package="podium")
def pair_dice(y_true, y_pred):
    """Hard Dice (0.5) of each image–class pair, averaged over the image's classes; a pair empty in both: 1."""
    truth, pred = ops.cast(y_true, "float32"), ops.cast(ops.cast(y_pred, "float32") > 0.5, "float32")
    inter, total = _per_channel(truth * pred), _per_channel(truth) + _per_channel(pred)
    return ops.mean(ops.where(total > 0, 2.0 * inter / ops.maximum(total, 1.0), 1.0), axis=1)


@keras.saving.register_keras_serializable(package="podium")
def pair_iou(y_true, y_pred):
    truth, pred = ops.cast(y_true, "float32"), ops.cast(ops.cast(y_pred, "float32") > 0.5, "float32")
    inter, union = _per_channel(truth * pred), _per_channel(ops.maximum(truth, pred))
    return ops.mean(ops.where(union > 0, inter / ops.maximum(union, 1.0), 1.0), axis=1)


def class_mask_metrics() -> list[keras.metrics.Metric]:
    """Logged as dice / iou, the mean over image–class pairs (each image has every class)."""
    return [keras.metrics.MeanMetricWrapper(pair_dice, name="dice"),
            keras.metrics.MeanMetricWrapper(pair_iou, name="iou")]


def _per_channel(values):
    """(B, S, S, C) -> (B, C) sums over the pixels."""
    values = ops.cast(values, "float32")
    return ops.sum(ops.reshape(values, (ops.shape(values)[0], -1, ops.shape(values)[-1])), axis=1)


def _flat(masks):
    masks = ops.cast(masks, "float32")
    return ops.reshape(masks, (ops.shape(masks)[0], -1))
