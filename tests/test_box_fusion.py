"""Box fusion (podium.box_fusion): class-aware NMS and weighted boxes fusion, on small cases worked by hand from
the definition in ZFTurbo's ensemble_boxes (weighted_boxes_fusion, conf_type "avg")."""

from __future__ import annotations

import numpy as np
import pytest

from podium.box_fusion import nms, weighted_boxes_fusion
from podium.errors import PodiumError

A = [0.10, 0.10, 0.30, 0.30]
B = [0.12, 0.10, 0.32, 0.30]  # IoU with A: 0.036 / 0.044 = 0.818
FAR = [0.50, 0.50, 0.70, 0.70]


def test_nms_keeps_the_best_box_of_each_overlapping_group_per_class():
    dets = [[0, 0.8, *B], [0, 0.9, *A], [1, 0.7, *A], [0, 0.6, *FAR]]
    np.testing.assert_allclose(nms(dets, iou=0.5), [[0, 0.9, *A], [1, 0.7, *A], [0, 0.6, *FAR]])
    assert len(nms(dets, iou=0.85)) == 4  # 0.818 is not above 0.85: both stay
    assert nms([]).shape == (0, 6)


def test_two_models_agreeing_give_the_score_weighted_mean_box_and_the_mean_score():
    model_a = [[0, 0.9, *A], [1, 0.8, *FAR]]
    model_b = [[0, 0.6, *B], [1, 0.5, *A]]  # class 1 on A's place: another class, never fused with it
    fused = weighted_boxes_fusion([model_a, model_b], iou=0.55)
    # class 0: (0.9 A + 0.6 B) / 1.5, score (0.9 + 0.6) / 2 x min(2 models, 2 boxes) / 2 weights
    # class 1: each seen by one model, score / 2
    np.testing.assert_allclose(fused, [[0, 0.75, 0.108, 0.10, 0.308, 0.30],
                                       [1, 0.40, *FAR],
                                       [1, 0.25, *A]], atol=1e-9)


def test_model_weights_weigh_the_coordinates_and_the_score():
    fused = weighted_boxes_fusion([[[0, 0.9, *A]], [[0, 0.6, *B]]], weights=[2, 1])
    # weighted scores 1.8 and 0.6: box (1.8 A + 0.6 B) / 2.4; score mean(1.8, 0.6) x 2 / (2 + 1)
    np.testing.assert_allclose(fused, [[0, 0.8, 0.105, 0.10, 0.305, 0.30]], atol=1e-9)


def test_a_cluster_larger_than_the_model_count_is_scaled_by_the_model_count():
    other = [0.10, 0.12, 0.30, 0.32]
    fused = weighted_boxes_fusion([[[0, 0.9, *A], [0, 0.3, *other]], [[0, 0.6, *B]]])
    # three boxes: (0.9 A + 0.6 B + 0.3 other) / 1.8; score mean(0.9, 0.6, 0.3) x min(2, 3) / 2
    np.testing.assert_allclose(fused, [[0, 0.6, 0.192 / 1.8, 0.186 / 1.8, 0.552 / 1.8, 0.546 / 1.8]], atol=1e-9)


def test_boxes_join_the_running_fused_box_not_the_cluster_s_first_box():
    first, second, third = [0.0, 0.0, 0.2, 0.2], [0.06, 0.0, 0.26, 0.2], [0.08, 0.0, 0.28, 0.2]
    # IoU(first, second) 0.538 > 0.5: fused [0.03, 0, 0.23, 0.2]; IoU(first, third) 0.43, IoU(fused, third) 0.6
    fused = weighted_boxes_fusion([[[0, 0.5, *first], [0, 0.5, *second], [0, 0.4, *third]]], iou=0.5)
    np.testing.assert_allclose(fused, [[0, 1.4 / 3, 0.062 / 1.4, 0.0, 0.342 / 1.4, 0.2]], atol=1e-9)


def test_low_scores_and_empty_boxes_are_dropped_and_corners_clipped():
    fused = weighted_boxes_fusion([[[0, 0.2, *A], [0, 0.1, *FAR], [1, 0.9, 0.4, 0.4, 0.4, 0.6],
                                    [1, 0.5, 1.2, -0.1, 0.8, 0.2]]], skip_score=0.2)
    # score 0.1 < skip_score; 0.2 kept (not below); a zero-width box dropped; corners sorted, clipped to 0..1
    np.testing.assert_allclose(fused, [[1, 0.5, 0.8, 0.0, 1.0, 0.2], [0, 0.2, *A]], atol=1e-9)
    assert weighted_boxes_fusion([[], np.zeros((0, 6))]).shape == (0, 6)


def test_wrong_shapes_and_weights_are_refused():
    with pytest.raises(PodiumError, match="one weight per model"):
        weighted_boxes_fusion([[[0, 0.9, *A]], [[0, 0.6, *B]]], weights=[1])
    with pytest.raises(PodiumError, match="wrong shape"):
        nms([[0.9, *A]])
