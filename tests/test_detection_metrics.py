"""The detection metrics (podium.scoring.detection) against pycocotools' COCOeval on small hand-made cases,
and against hand computations of Global Wheat's and the Great Barrier Reef's definitions.

pycocotools is in the dev extra (`make test` installs it): a missing one fails here, never skips."""

import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from podium.errors import PodiumError
from podium.scoring.detection import coco_map, f2_iou, greedy_match, iou_matrix, map_at_iou, wheat_map
from podium.scoring.registry import resolve_metric


def cocoeval(truth, predicted, iou_thresholds=None) -> float:
    """stats[0] of COCOeval on per-image lists: truth rows class x1 y1 x2 y2, predictions class score x1 y1 x2 y2."""
    images, annotations, results = [], [], []
    classes = sorted({int(r[0]) for rows in truth for r in rows} | {int(r[0]) for rows in predicted for r in rows})
    for image_id, (true_rows, pred_rows) in enumerate(zip(truth, predicted), start=1):
        images.append({"id": image_id, "width": 1000, "height": 1000})
        for c, x1, y1, x2, y2 in true_rows:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(c) + 1,
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
        for c, s, x1, y1, x2, y2 in pred_rows:
            results.append({"image_id": image_id, "category_id": int(c) + 1, "bbox": [x1, y1, x2 - x1, y2 - y1],
                            "score": s})
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": annotations,
                      "categories": [{"id": c + 1, "name": str(c)} for c in classes]}
        gt.createIndex()
        evaluation = COCOeval(gt, gt.loadRes(results), "bbox")
        if iou_thresholds is not None:
            evaluation.params.iouThrs = np.asarray(iou_thresholds, np.float64)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return float(evaluation.stats[0])  # the mean over every threshold set, area all, 100 detections


def shifted(box, dx, dy=0.0):
    x1, y1, x2, y2 = box
    return [x1 + dx, y1 + dy, x2 + dx, y2 + dy]


# several images and classes, missed boxes, false boxes, an image with nothing true, an image with nothing
# predicted, a class predicted but never true, duplicates, equal scores across images and within one
HAND_TRUTH = [
    [[0, 10, 10, 50, 50], [0, 60, 60, 100, 120], [1, 200, 200, 260, 240]],
    [[1, 0, 0, 30, 30], [1, 40, 40, 90, 80]],
    [],
    [[0, 5, 5, 25, 45], [2, 100, 100, 180, 150]],
    [[0, 300, 300, 340, 330]],
]
HAND_PREDICTED = [
    [[0, 0.9, *shifted([10, 10, 50, 50], 4)], [0, 0.8, *shifted([60, 60, 100, 120], 12)],
     [0, 0.6, *shifted([10, 10, 50, 50], 2)], [1, 0.7, 200, 200, 258, 241], [3, 0.5, 0, 0, 10, 10]],
    [[1, 0.8, 1, 1, 30, 31], [1, 0.8, 0, 0, 20, 20], [1, 0.3, 45, 40, 90, 85]],
    [[0, 0.95, 10, 10, 40, 40]],
    [[2, 0.6, *shifted([100, 100, 180, 150], 20, 5)]],
    [[0, 0.6, *shifted([300, 300, 340, 330], 6)], [0, 0.2, 0, 0, 5, 5]],
]


def random_case(seed: int, n_images=12, n_classes=3):
    """Truth and noisy predictions: jittered copies of true boxes (some missed), false boxes, rounded scores
    so that equal scores happen."""
    rng = np.random.default_rng(seed)
    truth, predicted = [], []
    for _ in range(n_images):
        true_rows, pred_rows = [], []
        for _ in range(rng.integers(0, 6)):
            x, y, w, h = rng.uniform(0, 400), rng.uniform(0, 400), rng.uniform(10, 120), rng.uniform(10, 120)
            c = int(rng.integers(0, n_classes))
            true_rows.append([c, x, y, x + w, y + h])
            for _ in range(rng.integers(0, 3)):  # 0: missed, 2: a duplicate
                j = rng.normal(0, 0.15, 4) * [w, h, w, h]
                pc = c if rng.random() < 0.85 else int(rng.integers(0, n_classes))
                pred_rows.append([pc, round(rng.random(), 1), x + j[0], y + j[1], x + w + j[2], y + h + j[3]])
        for _ in range(rng.integers(0, 3)):  # false boxes
            x, y = rng.uniform(0, 400, 2)
            pred_rows.append([int(rng.integers(0, n_classes)), round(rng.random(), 1), x, y, x + 40, y + 30])
        truth.append(true_rows)
        predicted.append([[c, s, x1, y1, max(x2, x1), max(y2, y1)] for c, s, x1, y1, x2, y2 in pred_rows])
    return truth, predicted


# ---- COCO mAP and mAP at one IoU against pycocotools ------------------------------------------------------
def test_coco_map_equals_cocoeval_on_the_hand_made_case():
    expected = cocoeval(HAND_TRUTH, HAND_PREDICTED)
    assert coco_map(HAND_TRUTH, HAND_PREDICTED) == pytest.approx(expected, abs=1e-6)
    assert 0.2 < expected < 0.9  # neither trivial nor empty


@pytest.mark.parametrize("iou", [0.4, 0.5, 0.75])
def test_map_at_one_iou_equals_cocoeval_with_that_single_threshold(iou):
    expected = cocoeval(HAND_TRUTH, HAND_PREDICTED, [iou])
    assert map_at_iou(HAND_TRUTH, HAND_PREDICTED, iou=iou) == pytest.approx(expected, abs=1e-6)
    assert resolve_metric(f"map_at_iou(iou={iou})")(HAND_TRUTH, HAND_PREDICTED) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_coco_map_and_map_at_04_equal_cocoeval_on_random_cases(seed):
    truth, predicted = random_case(seed)
    assert coco_map(truth, predicted) == pytest.approx(cocoeval(truth, predicted), abs=1e-6)
    assert map_at_iou(truth, predicted, 0.4) == pytest.approx(cocoeval(truth, predicted, [0.4]), abs=1e-6)


def test_coco_map_keeps_the_100_best_boxes_per_image_and_class_as_cocoeval():
    rng = np.random.default_rng(3)
    truth = [[[0, 10 * k, 0, 10 * k + 8, 8] for k in range(30)]]
    predicted = [[[0, float(rng.random()), 10 * k + rng.normal(0, 1), 0, 10 * k + 8, 8] for k in range(30)] +
                 [[0, 0.99, 500, 500, 510, 510]] * 90]  # 90 false boxes score above every true one
    predicted = [[[c, s, x1, y1, max(x2, x1), y2] for c, s, x1, y1, x2, y2 in predicted[0]]]
    assert coco_map(truth, predicted) == pytest.approx(cocoeval(truth, predicted), abs=1e-6)


def test_perfect_predictions_score_1_and_a_true_class_never_predicted_scores_0():
    truth = [[[0, 0, 0, 10, 10]], [[1, 5, 5, 20, 20]]]
    perfect = [[[0, 0.9, 0, 0, 10, 10]], [[1, 0.8, 5, 5, 20, 20]]]
    assert coco_map(truth, perfect) == map_at_iou(truth, perfect, 0.4) == 1.0
    half = [[[0, 0.9, 0, 0, 10, 10]], []]  # class 1 never predicted: AP 0
    assert map_at_iou(truth, half, 0.5) == pytest.approx(0.5) == pytest.approx(cocoeval(truth, half, [0.5]))


def test_voc_interpolation_is_the_area_under_the_monotone_curve():
    truth = [[[0, 0, 0, 10, 10], [0, 20, 0, 30, 10]]]
    predicted = [[[0, 0.9, 0, 0, 10, 10], [0, 0.8, 50, 50, 60, 60], [0, 0.7, 20, 0, 30, 10]]]
    # ranked: TP, FP, TP: recall 0.5 at precision 1, recall 1 at precision 2/3
    assert map_at_iou(truth, predicted, 0.5, interpolation="voc") == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    coco = (51 * 1 + 50 * 2 / 3) / 101  # recall points 0..0.5 read 1, 0.51..1 read 2/3
    assert map_at_iou(truth, predicted, 0.5) == pytest.approx(coco) == pytest.approx(cocoeval(truth, predicted,
                                                                                            [0.5]))


# ---- Global Wheat's mAP -------------------------------------------------------------------------------------
def test_wheat_map_by_hand():
    truth = [[[0, 0, 10, 10], [20, 0, 30, 10]]]
    # IoU of the shifted box with its true one: 8x10 / 12x10 = 2/3 -> a hit at 0.50..0.65, a miss at 0.70, 0.75
    predicted = [[[0.9, 2, 0, 12, 10], [0.8, 20, 0, 30, 10], [0.1, 100, 100, 110, 110]]]
    hits = [2 / (2 + 1 + 0)] * 4 + [1 / (1 + 2 + 1)] * 2  # TP, FP, FN: (2, 1, 0) at 0.50..0.65, then (1, 2, 1)
    assert wheat_map(truth, predicted) == pytest.approx(np.mean(hits))


def test_wheat_map_matches_in_score_order_not_by_best_iou():
    truth = [[[0, 0, 10, 10]]]
    # the higher-scored box takes the only true box at 0.5..0.6 though the other overlaps it better
    predicted = [[[0.9, 0, 0, 10, 16], [0.5, 0, 0, 10, 10]]]  # IoU 0.625 and 1
    per_threshold = [1 / 2] * 3 + [1 / 2] * 3  # either way 1 TP, 1 FP: at 0.65+ the second takes it
    assert wheat_map(truth, predicted) == pytest.approx(np.mean(per_threshold))
    assert greedy_match(iou_matrix(truth[0], np.array(predicted[0])[:, 1:]), 0.5).tolist() == [0, -1]
    assert greedy_match(iou_matrix(truth[0], np.array(predicted[0])[:, 1:]), 0.7).tolist() == [-1, 0]


def test_wheat_map_empty_images():
    assert wheat_map([[]], [[]]) == 1.0  # nothing true, nothing predicted: the documented choice
    assert wheat_map([[]], [[[0.5, 0, 0, 1, 1]]]) == 0.0  # Kaggle: any prediction on an empty image scores 0
    assert wheat_map([[[0, 0, 1, 1]]], [[]]) == 0.0
    assert wheat_map([[], [[0, 0, 1, 1]]], [[], [[0.5, 0, 0, 1, 1]]]) == 1.0


def test_wheat_map_reads_fractions_as_pixels():
    truth = [[[10, 10, 50, 50], [60, 60, 100, 120]]]
    predicted = [[[0.9, 12, 10, 52, 52], [0.4, 61, 58, 100, 121], [0.3, 0, 0, 5, 5]]]
    scale = lambda rows, first: [[*r[:first], *(np.array(r[first:]) / 128)] for r in rows]  # noqa: E731
    assert wheat_map([scale(truth[0], 0)], [scale(predicted[0], 1)]) == pytest.approx(wheat_map(truth, predicted))


# ---- Great Barrier Reef's F2 -----------------------------------------------------------------------------
def test_f2_iou_sums_counts_over_images_per_threshold():
    truth = [[[0, 0, 10, 10]], [[0, 0, 10, 10], [50, 50, 60, 60]], []]
    predicted = [[[0.9, 1, 0, 11, 10]],  # IoU 9/11 = 0.818: a hit at every threshold up to 0.80
                 [[0.8, 0, 0, 10, 14]],  # IoU 10/14 = 0.714: a hit up to 0.70; the second true box missed
                 [[0.3, 0, 0, 5, 5]]]  # a false box
    thresholds = np.linspace(0.3, 0.8, 11)
    expected = []
    for t in thresholds:
        tp = 1 + (10 / 14 >= t)
        fn, fp = 3 - tp, 3 - tp
        expected.append(5 * tp / (5 * tp + 4 * fn + fp))
    assert f2_iou(truth, predicted) == pytest.approx(np.mean(expected))
    assert f2_iou([[]], [[]]) == 1.0 and f2_iou([[]], [[[0.5, 0, 0, 1, 1]]]) == 0.0


# ---- classes, and what is refused ---------------------------------------------------------------------------
def test_a_prediction_only_matches_a_true_box_of_its_class():
    truth = [[[0, 0, 0, 10, 10]]]
    assert wheat_map(truth, [[[1, 0.9, 0, 0, 10, 10]]]) == 0.0
    assert wheat_map(truth, [[[0, 0.9, 0, 0, 10, 10]]]) == 1.0


@pytest.mark.parametrize("truth, predicted, match", [
    ([[[0, 0, 1, 1]]], [[[0.5, 0, 0, 1, 1]], []], "differ in number of images"),
    ([], [], "Nothing to score"),
    ([[[0, 0, 1]]], [[]], "not one box per row"),
    ([[[0, 0, 1, 1]]], [[[np.nan, 0, 0, 1, 1]]], "NaN"),
    ([[[2, 2, 1, 1]]], [[]], "x2 < x1"),
    ([[[0, 0, 0, 1, 1]]], [[[0.5, 0, 0, 1, 1]]], "class column"),
    ([[[0.5, 0, 0, 1, 1]]], [[[0, 0.5, 0, 0, 1, 1]]], "not integers"),
])
def test_bad_inputs_are_refused(truth, predicted, match):
    with pytest.raises(PodiumError, match=match):
        wheat_map(truth, predicted)


def test_map_refuses_no_true_box_and_a_bad_iou():
    with pytest.raises(PodiumError, match="without a single true box"):
        coco_map([[]], [[[0, 0.5, 0, 0, 1, 1]]])
    with pytest.raises(PodiumError, match="out of range"):
        resolve_metric("map_at_iou(iou=0)")
    with pytest.raises(PodiumError, match="outside"):
        resolve_metric("map_at_iou(iou=1.5)")([[[0, 0, 1, 1]]], [[]])
    with pytest.raises(PodiumError, match="unknown value"):
        resolve_metric("map_at_iou(interpolation=area)")
