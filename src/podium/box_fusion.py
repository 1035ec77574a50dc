"""Merging detections in numpy: class-aware greedy NMS, and weighted boxes fusion (WBF) of several models.

Detections are rows `[class, score, x1, y1, x2, y2]` (fractions of the side), as
podium.models.detection.decode writes them. WBF follows ZFTurbo's `ensemble_boxes.weighted_boxes_fusion`
with conf_type="avg" (the Kaggle detection blend): boxes are clustered per class against the running fused
box, and a fused box is the score-weighted mean of its cluster, so a box that several models agree on keeps a
high score and a box only one model saw is scaled down by the number of models. Kept free of keras so a blend
of saved detections needs none.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from podium.boxes import iou_matrix
from podium.errors import PodiumError

COLUMNS = ("class", "score", "x1", "y1", "x2", "y2")


def as_detections(dets) -> np.ndarray:
    """(m, 6) float64 rows; an empty list or array gives (0, 6)."""
    rows = np.asarray(dets, dtype=np.float64)
    if rows.size == 0:
        return np.zeros((0, 6))
    if rows.ndim != 2 or rows.shape[1] != 6:
        raise PodiumError("Detections have the wrong shape.", expected=f"(m, 6) rows [{', '.join(COLUMNS)}]",
                          received=str(rows.shape), fix="pass one image's rows as podium.models.detection.decode "
                                                        "returns them")
    return rows


def nms(dets, iou: float = 0.5) -> np.ndarray:
    """Greedy non-maximum suppression per class: the best-scoring box stays and removes every box of its class
    that overlaps it by IoU > `iou`; rows come back by score, descending."""
    rows = as_detections(dets)
    order = np.argsort(-rows[:, 1], kind="stable")
    rows = rows[order]
    keep = np.ones(len(rows), dtype=bool)
    for i in range(len(rows)):
        if not keep[i]:
            continue
        later = np.arange(i + 1, len(rows))
        later = later[keep[later] & (rows[later, 0] == rows[i, 0])]
        keep[later[iou_matrix(rows[i, 2:], rows[later, 2:])[0] > iou]] = False
    return rows[keep]


def weighted_boxes_fusion(list_of_dets: Sequence, weights: Sequence[float] | None = None, iou: float = 0.55,
                          skip_score: float = 0.0) -> np.ndarray:
    """One image's detections from several models fused into one list (ensemble_boxes, conf_type "avg").

    Per class, boxes in descending weighted score join the fused box they overlap most when that IoU is
    > `iou`, else start a cluster. A fused box is the mean of its members' coordinates weighted by their
    weighted scores; its score is the mean weighted score x min(models, members) / sum of the weights.
    Boxes with score < `skip_score` or no area are dropped first; coordinates are clipped to 0..1."""
    weights = np.ones(len(list_of_dets)) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(weights) != len(list_of_dets) or not len(weights):
        raise PodiumError("WBF needs one weight per model.", expected=f"{len(list_of_dets)} weights (one per model)",
                          received=f"{len(weights)} weights", fix="pass weights=None for equal weights")
    members = _prefiltered(list_of_dets, weights, skip_score)
    fused = [_fuse_class(members[members[:, 0] == label], weights, iou) for label in _labels_in_order(members)]
    if not fused:
        return np.zeros((0, 6))
    rows = np.concatenate(fused)
    return rows[np.argsort(rows[:, 1])[::-1]]


def _prefiltered(list_of_dets: Sequence, weights: np.ndarray, skip_score: float) -> np.ndarray:
    """(n, 8) rows [class, score x weight, weight, model, x1, y1, x2, y2]: kept boxes of every model, each
    clipped to 0..1 with its corners in order, as ensemble_boxes' prefilter_boxes keeps them."""
    kept = []
    for model, dets in enumerate(list_of_dets):
        rows = as_detections(dets)
        rows = rows[rows[:, 1] >= skip_score]
        x1, x2 = np.minimum(rows[:, 2], rows[:, 4]), np.maximum(rows[:, 2], rows[:, 4])
        y1, y2 = np.minimum(rows[:, 3], rows[:, 5]), np.maximum(rows[:, 3], rows[:, 5])
        box = np.clip(np.stack([x1, y1, x2, y2], axis=1), 0.0, 1.0)
        area = (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])
        n = len(rows)
        kept.append(np.column_stack([rows[:, 0], rows[:, 1] * weights[model], np.full(n, weights[model]),
                                     np.full(n, model), box])[area > 0])
    return np.concatenate(kept) if kept else np.zeros((0, 8))


def _labels_in_order(members: np.ndarray) -> list[float]:
    """The classes in the order they first appear (ensemble_boxes fills a dict model by model)."""
    return list(dict.fromkeys(members[:, 0].tolist()))


def _fuse_class(boxes: np.ndarray, weights: np.ndarray, iou: float) -> np.ndarray:
    """One class's (n, 8) prefiltered rows -> its fused detections (m, 6)."""
    boxes = boxes[np.argsort(boxes[:, 1])[::-1]]
    clusters: list[list[np.ndarray]] = []
    fused = np.zeros((0, 8))
    for box in boxes:
        overlaps = iou_matrix(box[4:], fused[:, 4:])[0]
        best = int(np.argmax(overlaps)) if len(overlaps) and overlaps.max() > iou else -1
        if best < 0:
            clusters.append([box])
            fused = np.vstack([fused, box])
        else:
            clusters[best].append(box)
            fused[best] = _weighted_box(np.array(clusters[best]))
    sizes = np.array([len(cluster) for cluster in clusters], dtype=np.float64)
    scores = fused[:, 1] * np.minimum(len(weights), sizes) / weights.sum()
    return np.column_stack([fused[:, 0], scores, fused[:, 4:]])


def _weighted_box(cluster: np.ndarray) -> np.ndarray:
    """ensemble_boxes' get_weighted_box ("avg"): coordinates weighted by the members' weighted scores, score
    their mean, weight their sum."""
    scores = cluster[:, 1]
    total = scores.sum()  # all-zero scores (skip_score=0): the plain mean, where ensemble_boxes gives NaN
    box = (scores[:, None] * cluster[:, 4:]).sum(0) / total if total > 0 else cluster[:, 4:].mean(0)
    return np.concatenate([[cluster[0, 0], scores.mean(), cluster[:, 2].sum(), -1.0], box])
