"""Detection scores on per-image lists of boxes, as each Kaggle competition defines them (numpy only).

What they read, one entry per image, in the same order for truth and predictions (xyxy boxes, in pixels or
in fractions of the image: IoU does not care which, as long as truth and predictions agree):

| | without classes | with classes |
|---|---|---|
| truth | (k, 4) `x1 y1 x2 y2` | (k, 5) `class x1 y1 x2 y2` |
| predicted | (m, 5) `score x1 y1 x2 y2` | (m, 6) `class score x1 y1 x2 y2` |

An image with nothing is an empty list or a (0, width) array. With classes, a prediction can only match a
true box of its own class. Every metric matches greedily: predictions in descending score (ties in the
given order), each taking the still unmatched true box of its class with the highest IoU at or above the
threshold (of equal IoUs the last, as pycocotools does); IoU is continuous (no +1 pixel).

- `wheat_map` (Global Wheat Detection): per image and IoU threshold 0.50:0.05:0.75, precision
  TP / (TP + FP + FN); the mean over thresholds, then over images. An image with no true box scores 0 with any
  prediction (Kaggle's rule). An image with no true box and no prediction has 0/0 at every threshold: Kaggle's
  page says nothing of it; podium scores it 1 (nothing missed, nothing false), as Kaggle's other IoU-precision
  metrics (Data Science Bowl 2018, TGS Salt) did. Said here and in docs/metrics.md.
- `coco_map` (COCO mAP@[.5:.95]) and `map_at_iou` (one threshold, e.g. VinBigData's 0.4): per class, all
  images' predictions (the 100 best per image and class) ranked by score, precision made monotone, read at the
  101 recall points 0:0.01:1 (mean, 0 past the last recall reached); the mean over the classes that have a
  true box, then over thresholds. A class predicted but never true is left out; a true class never predicted
  scores 0. Equal to pycocotools' COCOeval stats[0] (tests/test_detection_metrics.py). `interpolation="voc"`
  gives PASCAL VOC 2010's area under the whole monotone curve instead (VinBigData's page names VOC 2010).
- `f2_iou` (Great Barrier Reef): per IoU threshold 0.30:0.05:0.80, TP, FP and FN summed over all images,
  F2 = 5 TP / (5 TP + 4 FN + FP); the mean over thresholds (nothing true nor predicted anywhere: 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from podium.boxes import iou_matrix
from podium.errors import PodiumError

WHEAT_THRESHOLDS = np.linspace(0.5, 0.75, 6)
COCO_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # as pycocotools spells them (0.6000000000000001 and all)
F2_THRESHOLDS = np.linspace(0.3, 0.8, 11)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
COCO_MAX_DETECTIONS = 100  # per image and class, COCOeval's maxDets[-1]


@dataclass(frozen=True)
class ImageBoxes:
    """One image's true and predicted boxes, checked: xyxy float64, classes int64 (all 0 without classes)."""

    true_boxes: np.ndarray  # (k, 4)
    true_classes: np.ndarray  # (k,)
    boxes: np.ndarray  # (m, 4)
    scores: np.ndarray  # (m,)
    classes: np.ndarray  # (m,)


def read_images(truth: Sequence, predicted: Sequence) -> list[ImageBoxes]:
    """The per-image lists checked and split into boxes, scores and classes (the table in the docstring)."""
    if len(truth) != len(predicted):
        raise PodiumError("Truth and predictions differ in number of images.", expected="one entry per image in each",
                          received=f"{len(truth)} true, {len(predicted)} predicted",
                          fix="give an empty list for an image with nothing true or predicted")
    if len(truth) == 0:
        raise PodiumError("Nothing to score.", expected="at least one image", received="no images",
                          fix="check that the validation part is not empty")
    rows = [(_rows(t, (4, 5), "truth", i), _rows(p, (5, 6), "predicted", i))
            for i, (t, p) in enumerate(zip(truth, predicted))]
    with_class = {t.shape[1] == 5 for t, _ in rows if len(t)} | {p.shape[1] == 6 for _, p in rows if len(p)}
    if len(with_class) > 1:
        raise PodiumError("Some rows have a class column and others not.",
                          expected="truth (k, 5) with predictions (m, 6), or (k, 4) with (m, 5), for every image",
                          received="both", fix="give every row its class, or none")
    return [_image(t, p, i) for i, (t, p) in enumerate(rows)]


def _rows(values, widths: tuple[int, int], name: str, index: int) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return array.reshape(0, widths[0])
    if array.ndim != 2 or array.shape[1] not in widths:
        raise PodiumError(f"Image {index}: {name} is not one box per row.",
                          expected=f"shape (n, {widths[0]}) or (n, {widths[1]}) (see podium.scoring.detection)",
                          received=f"shape {array.shape}",
                          fix="pass xyxy boxes, with the score and class columns first")
    if not np.all(np.isfinite(array)):
        raise PodiumError(f"Image {index}: {name} holds NaN or infinite values.", expected="finite numbers",
                          received=f"{int((~np.isfinite(array)).sum())} values not finite",
                          fix="remake the predictions; a NaN usually means the training diverged")
    boxes = array[:, -4:]
    if np.any(boxes[:, 2:] < boxes[:, :2]):
        raise PodiumError(f"Image {index}: {name} has a box whose x2 < x1 or y2 < y1.", expected="xyxy boxes",
                          received=f"e.g. {boxes[np.any(boxes[:, 2:] < boxes[:, :2], axis=1)][0].tolist()}",
                          fix="convert xywh boxes with podium.boxes.to_xyxy")
    return array


def _image(truth: np.ndarray, predicted: np.ndarray, index: int) -> ImageBoxes:
    true_classes = truth[:, 0] if truth.shape[1] == 5 else np.zeros(len(truth))
    classes = predicted[:, 0] if predicted.shape[1] == 6 else np.zeros(len(predicted))
    scores = predicted[:, -5]
    for name, values in (("true classes", true_classes), ("predicted classes", classes)):
        if np.any(values != np.round(values)):
            raise PodiumError(f"Image {index}: {name} are not integers.", expected="integer class indices",
                              received=f"e.g. {values[values != np.round(values)][:3].tolist()}",
                              fix="put the class index in the first column")
    return ImageBoxes(truth[:, -4:], true_classes.astype(np.int64), predicted[:, -4:], scores,
                      classes.astype(np.int64))


def score_order(scores: np.ndarray) -> np.ndarray:
    """Indices by descending score, ties in the given order (a stable sort, as pycocotools')."""
    return np.argsort(-np.asarray(scores), kind="mergesort")


def greedy_match(ious: np.ndarray, threshold: float) -> np.ndarray:
    """For predictions already in score order (the columns of ious, truth the rows): the true box each one
    takes, -1 for none. Each takes the unmatched true box of highest IoU >= threshold, of equal ones the last."""
    threshold = min(float(threshold), 1 - 1e-10)
    taken = np.zeros(ious.shape[0], bool)
    matched = np.full(ious.shape[1], -1)
    for column in range(ious.shape[1]):
        best, chosen = threshold, -1
        for row in range(ious.shape[0]):
            if not taken[row] and ious[row, column] >= best:
                best, chosen = ious[row, column], row
        if chosen >= 0:
            taken[chosen], matched[column] = True, chosen
    return matched


def _class_counts(image: ImageBoxes, threshold: float) -> tuple[int, int, int]:
    """TP, FP, FN of one image at one threshold, matching within each class."""
    tp = 0
    for cls in np.union1d(image.true_classes, image.classes):
        true_boxes = image.true_boxes[image.true_classes == cls]
        mine = np.flatnonzero(image.classes == cls)
        order = mine[score_order(image.scores[mine])]
        tp += int((greedy_match(iou_matrix(true_boxes, image.boxes[order]), threshold) >= 0).sum())
    return tp, len(image.boxes) - tp, len(image.true_boxes) - tp


def wheat_map(truth: Sequence, predicted: Sequence, thresholds: Sequence[float] = tuple(WHEAT_THRESHOLDS)) -> float:
    """Global Wheat Detection: per image the mean over thresholds of TP / (TP + FP + FN), then the mean over
    images; an image with nothing true and nothing predicted scores 1 (module docstring)."""
    per_image = []
    for image in read_images(truth, predicted):
        if len(image.true_boxes) == 0 and len(image.boxes) == 0:
            per_image.append(1.0)
            continue
        counts = [_class_counts(image, t) for t in thresholds]
        per_image.append(float(np.mean([tp / (tp + fp + fn) for tp, fp, fn in counts])))
    return float(np.mean(per_image))


def f2_iou(truth: Sequence, predicted: Sequence, thresholds: Sequence[float] = tuple(F2_THRESHOLDS)) -> float:
    """Great Barrier Reef: per threshold TP, FP, FN summed over images, F2 = 5TP / (5TP + 4FN + FP); the mean
    over thresholds. A threshold with nothing true nor predicted anywhere scores 1."""
    images = read_images(truth, predicted)
    scores = []
    for threshold in thresholds:
        tp, fp, fn = np.sum([_class_counts(image, threshold) for image in images], axis=0)
        denominator = 5 * tp + 4 * fn + fp
        scores.append(1.0 if denominator == 0 else 5 * tp / denominator)
    return float(np.mean(scores))


def _class_ranking(images: list[ImageBoxes], cls: int, threshold: float,
                   max_detections: int) -> tuple[np.ndarray, np.ndarray, int]:
    """One class at one threshold over all images: the kept predictions' scores and whether each is a TP
    (images in order, each image's in score order, as COCOeval concatenates them), and the true box count."""
    scores, hits, n_true = [], [], 0
    for image in images:
        true_boxes = image.true_boxes[image.true_classes == cls]
        mine = np.flatnonzero(image.classes == cls)
        order = mine[score_order(image.scores[mine])][:max_detections]
        matched = greedy_match(iou_matrix(true_boxes, image.boxes[order]), threshold)
        scores.append(image.scores[order])
        hits.append(matched >= 0)
        n_true += len(true_boxes)
    return np.concatenate(scores), np.concatenate(hits), n_true


def average_precision(scores: np.ndarray, hits: np.ndarray, n_true: int, interpolation: str = "coco") -> float:
    """AP of one class from its ranked predictions: coco, 101 recall points; voc, the area under the monotone
    precision curve (PASCAL VOC 2010 on)."""
    order = score_order(scores)
    tp = np.cumsum(hits[order])
    fp = np.cumsum(~hits[order])
    recall = tp / n_true
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    if interpolation == "voc":
        steps = np.diff(np.concatenate([[0.0], recall]))
        return float(np.sum(steps * precision))
    at = np.searchsorted(recall, RECALL_POINTS, side="left")
    return float(np.mean(np.where(at < len(precision), precision[np.minimum(at, len(precision) - 1)], 0.0)
                         if len(precision) else 0.0))


def mean_average_precision(truth: Sequence, predicted: Sequence, thresholds: Sequence[float],
                           interpolation: str = "coco", max_detections: int = COCO_MAX_DETECTIONS) -> float:
    """The mean over thresholds of the mean AP over the classes with a true box (module docstring)."""
    if interpolation not in ("coco", "voc"):
        raise PodiumError(f"Unknown AP interpolation {interpolation!r}.", expected="coco or voc",
                          received=repr(interpolation), fix="interpolation: coco (101 points) or voc (VOC 2010)")
    images = read_images(truth, predicted)
    classes = np.unique(np.concatenate([image.true_classes for image in images]))
    if len(classes) == 0:
        raise PodiumError("mAP is undefined without a single true box.", expected="at least one true box",
                          received=f"{len(images)} images, none with a box",
                          fix="score a validation part that holds objects")
    per_threshold = [np.mean([average_precision(*_class_ranking(images, int(cls), t, max_detections), interpolation)
                              for cls in classes]) for t in thresholds]
    return float(np.mean(per_threshold))


def coco_map(truth: Sequence, predicted: Sequence) -> float:
    """COCO mAP@[.5:.95]: pycocotools' COCOeval stats[0] (area all, 100 detections per image)."""
    return mean_average_precision(truth, predicted, COCO_THRESHOLDS)


def map_at_iou(truth: Sequence, predicted: Sequence, iou: float = 0.5, interpolation: str = "coco") -> float:
    """mAP at one IoU threshold (VinBigData: iou=0.4), COCO-style AP per class unless interpolation="voc"."""
    if not 0 < iou <= 1:
        raise PodiumError("map_at_iou: the IoU threshold is outside (0, 1].", expected="0 < iou <= 1",
                          received=f"iou={iou}", fix="e.g. map_at_iou(iou=0.4)")
    return mean_average_precision(truth, predicted, [iou], interpolation)
