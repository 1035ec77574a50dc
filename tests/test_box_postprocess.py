"""Detection post-processing (podium.scoring.box_postprocess): the threshold chosen out of fold for a metric
that counts every box, every box kept for one that ranks them, NMS and the cap, and the honest figure."""

import numpy as np
import pytest

from podium.scoring import box_postprocess as post
from podium.scoring.registry import resolve_metric


def _images(n: int, seed: int = 0):
    """Per image one true box; predictions: the true box at 0.9, and a false box at 0.2 (so a threshold
    between them is best for a counting metric)."""
    rng = np.random.default_rng(seed)
    truth, detections = [], []
    for _ in range(n):
        x, y = rng.uniform(0.05, 0.5, 2)
        box = [x, y, x + 0.3, y + 0.3]
        truth.append(np.array([[0, *box]]))
        detections.append(np.array([[0, 0.9, *box], [0, 0.2, 0.82, 0.82, 0.97, 0.97]]))  # never overlaps
    return truth, detections


def test_a_counting_metric_gets_a_threshold_between_the_true_and_false_scores():
    truth, detections = _images(20)
    metric = resolve_metric("wheat_map")
    chosen = post.choose_min_score(metric, truth, detections)
    assert 0.2 < chosen <= 0.9
    assert post.score(metric, truth, detections, post.BoxSettings(chosen)) == pytest.approx(1.0)
    assert post.score(metric, truth, detections, post.BoxSettings(0.05)) < 0.75  # the false boxes cost


def test_a_ranking_metric_keeps_every_box():
    truth, detections = _images(10)
    metric = resolve_metric("coco_map")
    assert post.choose_min_score(metric, truth, detections) == post.RANKED_MIN_SCORE
    assert post.fold_settings(metric).min_score == post.RANKED_MIN_SCORE
    assert post.fold_settings(resolve_metric("f2_iou")).min_score == post.FOLD_MIN_SCORE


def test_nms_removes_a_duplicate_of_the_same_class_and_the_cap_keeps_the_best():
    rows = np.array([[0, 0.9, 0.1, 0.1, 0.5, 0.5], [0, 0.8, 0.12, 0.1, 0.5, 0.52], [1, 0.7, 0.1, 0.1, 0.5, 0.5],
                     [0, 0.6, 0.6, 0.6, 0.9, 0.9]], np.float32)
    kept = post.BoxSettings(0.1, nms_iou=0.5).apply_one(rows)
    assert kept[:, 1].tolist() == pytest.approx([0.9, 0.7, 0.6])  # the other class's box is not suppressed
    assert len(post.BoxSettings(0.1, nms_iou=0.5, max_boxes=2).apply_one(rows)) == 2
    assert len(post.BoxSettings(0.1, nms_iou=0.0).apply_one(rows)) == 4


def test_the_record_has_the_honest_per_fold_figure():
    truth, detections = _images(30, seed=1)
    folds = np.repeat([0, 1, 2], 10)
    record = post.settings_record(resolve_metric("f2_iou"), truth, detections, folds, 0.5, 100, "30 images")
    assert set(record["honest"]["folds"]) == {"0", "1", "2"}
    assert record["in_sample"] >= record["honest"]["cv_mean"] - 1e-9
    assert record["metric"] == "f2_iou" and 0 < record["min_score"] < 1
