"""What turns a detector's ranked boxes into a submission's: a score threshold, class-aware NMS and a cap on
boxes per image, with the threshold chosen on out-of-fold predictions for the competition's metric.

Why the threshold is chosen and not fixed: the metrics differ in what a low-scored box costs. COCO's mAP and
mAP at one IoU rank every box, so a low threshold only adds recall (`RANKED`); Global Wheat's precision and
the Great Barrier Reef's F2 count every box written, so each false one costs as much as a missed one. A fold
scores a counting metric at `FOLD_MIN_SCORE` (fixed, so honest); `make predict` chooses the threshold among
`CANDIDATES` on every out-of-fold row (`choose_min_score`), and records beside it the honest figure: each
fold at the threshold chosen on the other folds (`honest_fold_scores`).

Detections are per-image `(m, 6)` rows `[class, score, x1, y1, x2, y2]` in fractions of the image (what
podium.models.detection.decode returns); truth is per-image `(k, 5)` `[class, x1, y1, x2, y2]`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from podium.box_fusion import nms
from podium.scoring.registry import Metric

RANKED = ("coco_map", "map_at_iou")  # metrics that rank every box by score: a low threshold costs nothing
RANKED_MIN_SCORE = 0.01
FOLD_MIN_SCORE = 0.3  # a fold's score of a counting metric, before any threshold is chosen out of fold
CANDIDATES = tuple(float(t) for t in np.round(np.arange(0.05, 0.951, 0.05), 2))
EMPTY = np.zeros((0, 6), np.float32)


@dataclass(frozen=True)
class BoxSettings:
    """The post-processing a submission's boxes get (saved in the run folder as postprocess.json)."""

    min_score: float = FOLD_MIN_SCORE
    nms_iou: float = 0.5  # 0: no NMS
    max_boxes: int = 100

    def apply(self, detections: list[np.ndarray]) -> list[np.ndarray]:
        return [self.apply_one(rows) for rows in detections]

    def apply_one(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.float32).reshape(-1, 6)
        rows = rows[rows[:, 1] >= self.min_score]
        if self.nms_iou > 0 and len(rows):
            rows = nms(rows, self.nms_iou)
        return rows[np.argsort(-rows[:, 1], kind="stable")][:self.max_boxes]

    def to_dict(self) -> dict:
        return asdict(self)


def fold_settings(metric: Metric, nms_iou: float = 0.5, max_boxes: int = 100) -> BoxSettings:
    """What a fold's score and a per-epoch score use: every box for a ranking metric, FOLD_MIN_SCORE else."""
    min_score = RANKED_MIN_SCORE if metric.name in RANKED else FOLD_MIN_SCORE
    return BoxSettings(min_score, nms_iou, max_boxes)


def score(metric: Metric, truth: list[np.ndarray], detections: list[np.ndarray], settings: BoxSettings) -> float:
    return metric(truth, settings.apply(detections))


def choose_min_score(metric: Metric, truth: list[np.ndarray], detections: list[np.ndarray],
                     nms_iou: float = 0.5, max_boxes: int = 100) -> float:
    """The candidate threshold with the best metric on these images (ties: the lowest); a ranking metric
    keeps every box."""
    if metric.name in RANKED:
        return RANKED_MIN_SCORE
    values = [score(metric, truth, detections, BoxSettings(t, nms_iou, max_boxes)) for t in CANDIDATES]
    best = metric.best_of(values)
    return next(t for t, value in zip(CANDIDATES, values) if value == best)


def honest_fold_scores(metric: Metric, truth: list[np.ndarray], detections: list[np.ndarray], folds: np.ndarray,
                       nms_iou: float = 0.5, max_boxes: int = 100) -> dict[str, float]:
    """Each fold scored at the threshold chosen on the other folds' rows: what unseen images get."""
    folds = np.asarray(folds)
    out = {}
    for fold in np.unique(folds):
        held = folds == fold
        chosen = choose_min_score(metric, _rows(truth, ~held), _rows(detections, ~held), nms_iou, max_boxes)
        out[str(int(fold))] = score(metric, _rows(truth, held), _rows(detections, held),
                                    BoxSettings(chosen, nms_iou, max_boxes))
    return out


def _rows(per_image: list[np.ndarray], keep: np.ndarray) -> list[np.ndarray]:
    return [rows for rows, kept in zip(per_image, keep) if kept]


def settings_record(metric: Metric, truth: list[np.ndarray], detections: list[np.ndarray], folds: np.ndarray,
                    nms_iou: float, max_boxes: int, chosen_on: str) -> dict:
    """postprocess.json: the settings chosen on every OOF row, the metric there (in sample) and honestly."""
    chosen = BoxSettings(choose_min_score(metric, truth, detections, nms_iou, max_boxes), nms_iou, max_boxes)
    honest = honest_fold_scores(metric, truth, detections, folds, nms_iou, max_boxes) \
        if len(np.unique(folds)) > 1 else {}
    return {**chosen.to_dict(), "metric": metric.label, "chosen_on": chosen_on,
            "in_sample": score(metric, truth, detections, chosen),
            "at_fold_setting": score(metric, truth, detections, fold_settings(metric, nms_iou, max_boxes)),
            "honest": {"cv_mean": float(np.mean(list(honest.values()))) if honest else None, "folds": honest,
                       "how": "each fold at the threshold chosen on the other folds' OOF rows"}}
