"""Segmentation scores on numpy masks, for validation and reports: Dice, IoU, the pruning experiment's stepped IoU,
the Airbus Ship Detection score and the mean Dice over image–class pairs of Severstal and Understanding Clouds.

Airbus (Kaggle's evaluation page): per image, for each IoU threshold t in 0.50, 0.55, ..., 0.95, a
predicted object whose IoU with a true object is *above* t is a true positive; F2(t) =
5 TP / (5 TP + 4 FN + FP); the image scores the mean over thresholds, the set the mean over images.
An image with no ships scores 1 when nothing is predicted and 0 otherwise. At t >= 0.5 an object can
overlap more than half of at most one disjoint object, so matching needs no assignment solver.
"""

from __future__ import annotations

import numpy as np

from podium.errors import PodiumError
from podium.data.rle import image_objects, split_objects

AIRBUS_THRESHOLDS = np.round(np.arange(0.5, 1.0, 0.05), 2)
F2_BETA_SQUARED = 4.0


def dice_per_image(y_true: np.ndarray, y_pred: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Hard Dice per image of (N,H,W[,1]) masks/probabilities; an image empty in both scores 1."""
    truth, pred = _binary_pair(y_true, y_pred, threshold)
    both = (truth & pred).sum(1)
    total = truth.sum(1) + pred.sum(1)
    return np.where(total == 0, 1.0, 2.0 * both / np.maximum(total, 1))


def dice_per_pair(y_true: np.ndarray, y_pred: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Hard Dice of each image–class pair of (N,H,W,C) masks/probabilities ((N,H,W): one class) -> (N, C).

    Severstal and Understanding Clouds score every pair on its own, a pair empty in both scoring 1, and
    take the mean over all pairs (`mean_dice_pairs`)."""
    truth, pred = _channels(y_true), _channels(y_pred)
    if truth.shape != pred.shape:
        raise PodiumError("True and predicted masks differ in shape.", expected=str(truth.shape),
                          received=str(pred.shape), fix="predict one channel per class at the masks' resolution")
    if len(truth) == 0:
        raise PodiumError("Nothing to score.", expected="at least one image", received="no masks",
                          fix="check that the validation part is not empty")
    truth = (truth > 0.5).reshape(len(truth), -1, truth.shape[-1])
    pred = (pred > threshold).reshape(len(pred), -1, pred.shape[-1])
    both = (truth & pred).sum(1)
    total = truth.sum(1) + pred.sum(1)
    return np.where(total == 0, 1.0, 2.0 * both / np.maximum(total, 1))


def mean_dice_pairs(y_true: np.ndarray, y_pred: np.ndarray, threshold: float = 0.5) -> float:
    """The mean over image–class pairs of `dice_per_pair` (Severstal, Understanding Clouds)."""
    return float(np.mean(dice_per_pair(y_true, y_pred, threshold)))


def iou_per_image(y_true: np.ndarray, y_pred: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    truth, pred = _binary_pair(y_true, y_pred, threshold)
    inter = (truth & pred).sum(1)
    union = (truth | pred).sum(1)
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def stepped_iou_per_image(y_true: np.ndarray, y_pred: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """The pruning experiment's `get_iou_vector`: IoU floored to steps, floor(max(0, (iou - 0.45) * 20)) / 10.

    So 0.5 -> 0.1, 0.95 -> 1.0; an image without object scores 1 only when nothing is predicted.
    Rounded before the floor: in floats (0.5 - 0.45) * 20 is 0.999..., which the original code floors to 0.
    """
    truth, pred = _binary_pair(y_true, y_pred, threshold)
    iou = iou_per_image(y_true, y_pred, threshold)
    stepped = np.floor(np.round(np.maximum(0.0, (iou - 0.45) * 20), 9)) / 10
    return np.where(truth.sum(1) == 0, (pred.sum(1) == 0).astype(float), stepped)


def airbus_image_score(true_objects: list[np.ndarray], pred_objects: list[np.ndarray]) -> float:
    """F2 averaged over IoU thresholds for one image, from lists of boolean object masks."""
    if not true_objects:
        return 0.0 if pred_objects else 1.0
    if not pred_objects:
        return 0.0
    ious = np.array([[_iou(t, p) for p in pred_objects] for t in true_objects])  # (true, pred)
    scores = []
    for threshold in AIRBUS_THRESHOLDS:
        hits = ious > threshold
        tp = int(hits.any(axis=1).sum())
        fn = len(true_objects) - tp
        fp = int((~hits.any(axis=0)).sum())
        scores.append((1 + F2_BETA_SQUARED) * tp / ((1 + F2_BETA_SQUARED) * tp + F2_BETA_SQUARED * fn + fp))
    return float(np.mean(scores))


def airbus_score(y_true: np.ndarray, y_pred: np.ndarray, threshold: float = 0.5) -> float:
    """Mean Airbus image score over (N,H,W[,1]) masks; objects are the connected components of each."""
    truth, pred = _squeeze(y_true) > 0.5, _squeeze(y_pred) > threshold
    return float(np.mean([airbus_image_score(split_objects(t), split_objects(p)) for t, p in zip(truth, pred)]))


def airbus_score_of_rows(predicted, truth, shapes, id_column: str = "ImageId",
                         rle_column: str = "EncodedPixels") -> float:
    """The Airbus score of a submission's rows against labelled rows (both Airbus CSV frames), over
    the images of `truth`: how a local hold-out scores a submission file as the leaderboard would.
    shapes: id -> (height, width)."""
    def by_id(frame):
        return frame.groupby(frame[id_column].astype(str))[rle_column].apply(list).to_dict()

    predicted_rows, true_rows = by_id(predicted), by_id(truth)
    return float(np.mean([airbus_image_score(image_objects(rows, shapes[image_id]),
                                             image_objects(predicted_rows.get(image_id, []), shapes[image_id]))
                          for image_id, rows in true_rows.items()]))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def _squeeze(masks: np.ndarray) -> np.ndarray:
    masks = np.asarray(masks)
    if masks.ndim == 4 and masks.shape[-1] == 1:
        masks = masks[..., 0]
    if masks.ndim != 3:
        raise PodiumError("Segmentation scores need a batch of single-channel masks.",
                          expected="(N, H, W) or (N, H, W, 1)", received=str(masks.shape),
                          fix="pass the masks of all images stacked")
    return masks


def _channels(masks: np.ndarray) -> np.ndarray:
    masks = np.asarray(masks)
    if masks.ndim == 3:
        masks = masks[..., None]
    if masks.ndim != 4:
        raise PodiumError("Per-class segmentation scores need a batch of masks with one channel per class.",
                          expected="(N, H, W, C) or (N, H, W)", received=str(masks.shape),
                          fix="stack the masks of all images, classes last")
    return masks


def _binary_pair(y_true, y_pred, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    truth, pred = _squeeze(y_true), _squeeze(y_pred)
    if truth.shape != pred.shape:
        raise PodiumError("True and predicted masks differ in shape.", expected=str(truth.shape),
                          received=str(pred.shape), fix="predict at the masks' resolution")
    return (truth > 0.5).reshape(len(truth), -1), (pred > threshold).reshape(len(pred), -1)
