"""Every metric of the registry (podium.scoring.registry) against scikit-learn or a hand computation of
Kaggle's definition, with its edge cases: a documented value or a PodiumError, never a silent NaN."""

import math

import numpy as np
import pytest
import sklearn.metrics as skm
import yaml

from podium.data.competitions import load_competition
from podium.errors import PodiumError
from podium.scoring import kaggle_metrics
from podium.scoring.registry import (LOG_LOSS_EPS, METRICS, Metric, check_metric_form, metric_names,
                                     resolve_metric)

RNG = np.random.default_rng(20)


def m(value) -> Metric:
    return resolve_metric(value)


def softmax_rows(n: int, classes: int, rng=RNG) -> np.ndarray:
    return rng.dirichlet(np.ones(classes), size=n)


# ---- log loss ---------------------------------------------------------------------------------------
def test_binary_log_loss_reads_p_positive_as_a_hand_computation_and_sklearn():
    truth, p = np.array([1, 0, 1, 0]), np.array([0.9, 0.2, 0.6, 0.45])
    hand = -(math.log(0.9) + math.log(0.8) + math.log(0.6) + math.log(0.55)) / 4
    assert m("log_loss")(truth, p) == pytest.approx(hand, rel=1e-12)
    assert m("log_loss")(truth, p) == pytest.approx(skm.log_loss(truth, p), rel=1e-12)


def test_log_loss_clips_at_1e_15_as_kaggle_does():
    """A sure and wrong answer costs -log(1e-15) ~ 34.54, not infinity."""
    assert LOG_LOSS_EPS == 1e-15
    assert m("log_loss")([1], [0.0]) == pytest.approx(-math.log(1e-15), rel=1e-12)
    assert m("log_loss")([0], [1.0]) == pytest.approx(-math.log(1 - (1 - 1e-15)), rel=1e-12)
    assert m("log_loss")([1, 0], [1.0, 0.0]) == pytest.approx(-math.log(1 - 1e-15), abs=1e-14)  # sure and right
    # multi-class: a zero on the true class is clipped, and the row renormalised after clipping
    row = np.array([[0.0, 0.5, 0.5]])
    assert m("log_loss")([0], row) == pytest.approx(-math.log(1e-15 / (1 + 1e-15)), rel=1e-12)


def test_multiclass_log_loss_renormalises_each_row():
    probs = np.array([[0.2, 0.2, 0.1], [0.1, 0.6, 0.3], [0.3, 0.3, 0.3]])  # rows sum to 0.5, 1.0, 0.9
    truth = np.array([0, 1, 2])
    hand = -(math.log(0.2 / 0.5) + math.log(0.6) + math.log(1 / 3)) / 3
    assert m("log_loss")(truth, probs) == pytest.approx(hand, rel=1e-12)


def test_multiclass_log_loss_equals_sklearn_on_rows_summing_to_one():
    probs = softmax_rows(200, 5) * 0.98 + 0.004  # sums to 1, away from the clip
    truth = RNG.integers(0, 5, 200)
    expected = skm.log_loss(truth, probs, labels=range(5))
    assert m("log_loss")(truth, probs) == pytest.approx(expected, rel=1e-10)
    onehot = np.eye(5)[truth]  # truth as 0/1 columns reads the same
    assert m("log_loss")(onehot, probs) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("truth, predicted, match", [
    ([0, 2], [0.2, 0.7], "0/1 truth"),  # binary log loss needs 0/1 truth
    ([0, 1], [[0.2, 1.3], [0.5, 0.5]], "outside 0..1"),  # logits, not probabilities
    ([0, 3], [[0.5, 0.5], [0.5, 0.5]], "no column"),  # a class the predictions have no column for
    ([0, 1, 1], [0.2, 0.7], "differ in length"),
    ([], [], "Nothing to score"),
])
def test_log_loss_refuses_bad_inputs(truth, predicted, match):
    with pytest.raises(PodiumError, match=match):
        m("log_loss")(truth, predicted)


# ---- AUC --------------------------------------------------------------------------------------------
def test_roc_auc_equals_sklearn_and_refuses_one_class_truth():
    truth, p = RNG.integers(0, 2, 300), RNG.random(300)
    assert m("roc_auc")(truth, p) == pytest.approx(skm.roc_auc_score(truth, p), rel=1e-12)
    assert m("roc_auc")([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)  # hand: 3 of 4 pairs ordered
    with pytest.raises(PodiumError, match="one class only") as caught:
        m("roc_auc")([1, 1, 1], [0.2, 0.5, 0.9])
    assert "OOF" in str(caught.value)
    with pytest.raises(PodiumError, match="one probability per row"):
        m("roc_auc")([0, 1], [[0.5, 0.5], [0.1, 0.9]])


def test_mean_columnwise_auc_is_the_mean_of_sklearn_per_column():
    probs, truth = softmax_rows(400, 4), RNG.integers(0, 4, 400)
    onehot = np.eye(4)[truth]
    per_column = [skm.roc_auc_score(onehot[:, c], probs[:, c]) for c in range(4)]
    assert m("mean_columnwise_auc")(truth, probs) == pytest.approx(np.mean(per_column), rel=1e-12)
    assert m("mean_columnwise_auc")(onehot, probs) == pytest.approx(np.mean(per_column), rel=1e-12)
    # multi-label truth (several 1s per row) is scored column by column too
    labels = (RNG.random((400, 4)) < 0.3).astype(int)
    expected = np.mean([skm.roc_auc_score(labels[:, c], probs[:, c]) for c in range(4)])
    assert m("mean_columnwise_auc")(labels, probs) == pytest.approx(expected, rel=1e-12)


def test_mean_columnwise_auc_leaves_out_a_class_absent_from_the_truth():
    """Documented: a column whose truth is all 0 has no AUC; the mean is over the other columns."""
    probs, truth = softmax_rows(300, 4), RNG.integers(0, 3, 300)  # class 3 never true
    onehot = np.eye(4)[truth]
    expected = np.mean([skm.roc_auc_score(onehot[:, c], probs[:, c]) for c in range(3)])
    assert m("mean_columnwise_auc")(truth, probs) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(PodiumError, match="no class column holds both"):
        m("mean_columnwise_auc")(np.ones((3, 2)), np.full((3, 2), 0.5))


# ---- QWK --------------------------------------------------------------------------------------------
def kaggle_qwk(rater_a, rater_b) -> float:
    """ml_metrics.quadratic_weighted_kappa (Kaggle's reference code), written out."""
    rater_a, rater_b = np.asarray(rater_a, int), np.asarray(rater_b, int)
    low, high = min(rater_a.min(), rater_b.min()), max(rater_a.max(), rater_b.max())
    ratings = high - low + 1
    conf = np.zeros((ratings, ratings))
    for a, b in zip(rater_a, rater_b):
        conf[a - low, b - low] += 1
    hist_a = np.bincount(rater_a - low, minlength=ratings)
    hist_b = np.bincount(rater_b - low, minlength=ratings)
    n = float(len(rater_a))
    numerator = denominator = 0.0
    for i in range(ratings):
        for j in range(ratings):
            d = (i - j) ** 2 / (ratings - 1) ** 2
            numerator += d * conf[i, j] / n
            denominator += d * hist_a[i] * hist_b[j] / n / n
    return 1.0 - numerator / denominator


def test_qwk_equals_sklearn_quadratic_kappa_and_kaggles_code():
    truth = RNG.integers(0, 5, 300)
    predicted = np.clip(truth + RNG.integers(-1, 2, 300), 0, 4)
    assert m("qwk")(truth, predicted) == pytest.approx(
        skm.cohen_kappa_score(truth, predicted, weights="quadratic"), rel=1e-12)
    assert m("qwk")(truth, predicted) == pytest.approx(kaggle_qwk(truth, predicted), rel=1e-12)
    assert m("qwk")([0, 1, 2], [2, 1, 0]) == pytest.approx(kaggle_qwk([0, 1, 2], [2, 1, 0]))
    assert m("qwk")(truth, truth) == 1.0


def test_qwk_spaces_grades_by_their_values_as_kaggle_does():
    """Grades 2 and 3 absent from both sides still count in the weights (Kaggle's min..max range);
    sklearn's default weighs by rank among the grades present and gives another number."""
    truth, predicted = [0, 1, 4, 4], [0, 4, 1, 4]
    assert m("qwk")(truth, predicted) == pytest.approx(kaggle_qwk(truth, predicted), rel=1e-12)
    assert m("qwk")(truth, predicted) != pytest.approx(skm.cohen_kappa_score(truth, predicted, weights="quadratic"))


def test_qwk_constant_predictions_score_zero_never_nan():
    assert m("qwk")([0, 1, 2, 3], [2, 2, 2, 2]) == 0.0  # no agreement beyond chance: the formula's 0
    assert kaggle_qwk([0, 1, 2, 3], [2, 2, 2, 2]) == pytest.approx(0.0)
    assert m("qwk")([3, 3, 3], [3, 3, 3]) == 0.0  # 0/0 in Kaggle's code: documented as 0.0
    with pytest.raises(PodiumError, match="not integers"):
        m("qwk")([0, 1], [0.4, 1.2])


# ---- F scores ---------------------------------------------------------------------------------------
def test_macro_f1_equals_sklearn():
    truth, predicted = RNG.integers(0, 6, 200), RNG.integers(0, 6, 200)
    assert m("macro_f1")(truth, predicted) == pytest.approx(
        skm.f1_score(truth, predicted, average="macro"), rel=1e-12)
    # hand: class 0 F1 = 2/3 (tp 1, fn 1), class 1 F1 = 2/3 (tp 1, fp 1), class 2 F1 = 1
    assert m("macro_f1")([0, 0, 1, 2], [0, 1, 1, 2]) == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)


@pytest.mark.parametrize("average", ["samples", "micro", "macro"])
@pytest.mark.parametrize("beta", [0.5, 1, 2])
def test_fbeta_equals_sklearn_with_zero_division_one(average, beta):
    truth = (RNG.random((150, 6)) < 0.3).astype(int)
    predicted = (RNG.random((150, 6)) < 0.3).astype(int)
    truth[:5], predicted[:5] = 0, 0  # rows empty on both sides
    truth[:, 5], predicted[:, 5] = 0, 0  # a class never true nor predicted
    expected = skm.fbeta_score(truth, predicted, beta=beta, average=average, zero_division=1.0)
    metric = m({"name": "fbeta", "beta": beta, "average": average})
    assert metric(truth, predicted) == pytest.approx(expected, rel=1e-12)


def test_fbeta_samples_by_hand_planets_f2():
    truth = [[1, 0, 1], [0, 0, 0], [1, 1, 0]]
    predicted = [[1, 0, 0], [0, 0, 0], [0, 1, 1]]
    # row 1: tp 1, fn 1 -> 5/(5+4) ; row 2: nothing true nor chosen -> 1 ; row 3: tp 1, fn 1, fp 1 -> 5/10
    assert m("fbeta(beta=2)")(truth, predicted) == pytest.approx((5 / 9 + 1 + 0.5) / 3, rel=1e-12)


def test_micro_f1_equals_sklearn_and_nothing_true_nor_chosen_is_one():
    truth, predicted = (RNG.random((100, 5)) < 0.4).astype(int), (RNG.random((100, 5)) < 0.4).astype(int)
    assert m("micro_f1")(truth, predicted) == pytest.approx(skm.f1_score(truth, predicted, average="micro"))
    assert m("micro_f1")(np.zeros((3, 4)), np.zeros((3, 4))) == 1.0
    assert m("micro_f1")([[1, 0], [0, 1]], [[0, 0], [0, 0]]) == 0.0
    with pytest.raises(PodiumError, match="0/1 truth|needs 0/1"):
        m("micro_f1")([[0.3, 1]], [[0, 1]])
    with pytest.raises(PodiumError, match="same shape"):
        m("fbeta")([1, 0], [1, 0])


# ---- MAP@k ------------------------------------------------------------------------------------------
def kaggle_apk(actual, predicted, k):
    """ml_metrics.apk, Kaggle's reference code."""
    if len(predicted) > k:
        predicted = predicted[:k]
    score, hits = 0.0, 0.0
    for i, p in enumerate(predicted):
        if p in actual and p not in predicted[:i]:
            hits += 1.0
            score += hits / (i + 1.0)
    if not actual:
        return 0.0
    return score / min(len(actual), k)


def test_map_at_k_equals_kaggles_apk_on_random_rankings():
    truth = RNG.integers(0, 10, 300)
    ranked = np.array([RNG.permutation(10)[:5] for _ in range(300)])
    expected = np.mean([kaggle_apk([t], list(r), 5) for t, r in zip(truth, ranked)])
    assert m("map_at_k(k=5)")(truth, ranked) == pytest.approx(expected, rel=1e-12)
    expected3 = np.mean([kaggle_apk([t], list(r), 3) for t, r in zip(truth, ranked)])
    assert m({"name": "map_at_k", "k": 3})(truth, ranked) == pytest.approx(expected3, rel=1e-12)  # first 3 read


def test_map_at_k_by_hand_one_true_label_is_one_over_its_rank():
    ranked = [[3, 1, 2], [1, 2, 3], [2, 3, 1], [4, 5, 6]]
    assert m("map_at_k(k=3)")([1, 1, 1, 1], ranked) == pytest.approx((1 / 2 + 1 + 1 / 3 + 0) / 4)


def test_map_at_k_duplicates_in_a_ranking_count_once_and_k_may_exceed_the_list():
    # a repeated label is not a second hit (and a repeated wrong label costs its rank)
    assert m("map_at_k(k=3)")([2], [[1, 1, 2]]) == pytest.approx(kaggle_apk([2], [1, 1, 2], 3)) == \
        pytest.approx(1 / 3)
    assert m("map_at_k(k=3)")([[1, 2]], [[1, 1, 2]]) == pytest.approx(kaggle_apk([1, 2], [1, 1, 2], 3))
    # k larger than the ranked list: the list is read whole, divided by min(|actual|, k)
    assert m("map_at_k(k=5)")([3], [[1, 3]]) == pytest.approx(kaggle_apk([3], [1, 3], 5)) == pytest.approx(0.5)
    # several right answers per row, ragged
    truth, ranked = [[1, 2], [3], [4, 5, 6]], [[2, 9, 1], [3, 1, 2], [9, 9, 9]]
    expected = np.mean([kaggle_apk(a, r, 3) for a, r in zip(truth, ranked)])
    assert m("map_at_k(k=3)")(truth, ranked) == pytest.approx(expected, rel=1e-12)


# ---- numbers ----------------------------------------------------------------------------------------
def test_rmse_and_mae_equal_sklearn():
    truth, predicted = RNG.normal(50, 20, 200), RNG.normal(50, 20, 200)
    assert m("rmse")(truth, predicted) == pytest.approx(math.sqrt(skm.mean_squared_error(truth, predicted)))
    assert m("mae")(truth, predicted) == pytest.approx(skm.mean_absolute_error(truth, predicted))
    assert m("rmse")([1, 2, 3], [1, 2, 7]) == pytest.approx(math.sqrt(16 / 3))
    assert m("mae")([1, 2, 3], [1, 2, 7]) == pytest.approx(4 / 3)


# ---- masks and boxes --------------------------------------------------------------------------------
def test_dice_small_cases_by_hand():
    truth = np.zeros((2, 2, 2))
    truth[0, 0, :] = 1  # image 0: two pixels
    predicted = np.zeros((2, 2, 2))
    predicted[0, 0, 0] = 0.9  # one of them found (0.2 is below the 0.5 threshold)
    predicted[0, 0, 1] = 0.2
    # image 0: 2*1/(2+1); image 1: empty in both -> 1
    assert m("dice")(truth, predicted) == pytest.approx((2 / 3 + 1) / 2)
    assert m("dice")(truth[..., None], predicted[..., None]) == pytest.approx((2 / 3 + 1) / 2)  # (n, H, W, 1)


def _kaggle_pair_dice(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Kaggle's per-pair Dice written out plainly (Severstal / Clouds): 1 when both are empty."""
    a, b = truth.astype(bool), predicted > 0.5
    if a.sum() + b.sum() == 0:
        return 1.0
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def test_mean_dice_pairs_is_the_mean_of_a_direct_per_pair_computation():
    rng = np.random.default_rng(0)
    truth = (rng.random((5, 6, 7, 3)) > 0.7).astype(np.uint8)
    truth[1, ..., 2] = 0  # a class absent from an image
    truth[3] = 0  # an image with no class at all
    predicted = rng.random((5, 6, 7, 3))
    predicted[3, ..., 0] = 0.1  # nothing predicted on the empty pair (3, 0): it scores 1
    expected = np.mean([_kaggle_pair_dice(truth[i, ..., c], predicted[i, ..., c])
                        for i in range(5) for c in range(3)])
    assert m("mean_dice_pairs")(truth, predicted) == pytest.approx(expected)


def test_mean_dice_pairs_by_hand_and_kaggles_empty_empty_rule():
    truth = np.zeros((2, 2, 2, 2), np.uint8)
    truth[0, 0, :, 0] = 1  # image 0, class 0: two pixels; every other pair is empty
    predicted = np.zeros((2, 2, 2, 2))
    predicted[0, 0, 0, 0] = 0.9  # one of the two found -> 2/3
    predicted[1, 1, 1, 1] = 0.9  # a false positive on an empty pair -> 0
    assert m("mean_dice_pairs")(truth, predicted) == pytest.approx((2 / 3 + 1 + 1 + 0) / 4)
    assert m("mean_dice_pairs")(truth, np.zeros_like(predicted)) == pytest.approx(3 / 4)  # empty on empty: 1
    assert m("mean_dice_pairs")(truth[..., :1], predicted[..., :1]) == pytest.approx(
        m("dice")(truth[..., :1], predicted[..., :1]))  # one class: the per-image Dice
    with pytest.raises(PodiumError, match="differ in shape"):
        m("mean_dice_pairs")(truth, predicted[..., :1])


def test_airbus_f2_small_cases_by_hand():
    truth = np.zeros((3, 4, 10), np.uint8)
    truth[0, 1, :] = 1  # one ship of 10 pixels
    predicted = np.zeros((3, 4, 10))
    predicted[0, 1, :6] = 0.9  # IoU 0.6: a hit above thresholds 0.50 and 0.55 only -> 2 of 10 thresholds
    truth[1, 2, 2:5] = 1  # a ship nobody found -> 0
    # image 2: no ship, none predicted -> 1
    assert m("airbus_f2")(truth, predicted) == pytest.approx((0.2 + 0 + 1) / 3)
    assert m("airbus_f2")(truth, truth.astype(float)) == 1.0


def test_mean_iou_of_boxes_and_masks_by_hand():
    truth, predicted = np.array([[0, 0, 2, 2], [0, 0, 1, 1]]), np.array([[1, 1, 3, 3], [0, 0, 1, 1]])
    assert m("mean_iou")(truth, predicted) == pytest.approx((1 / 7 + 1) / 2)
    masks = np.zeros((1, 2, 2))
    masks[0, 0] = 1
    guess = np.zeros((1, 2, 2))
    guess[0, :, 0] = 1
    assert m("mean_iou")(masks, guess) == pytest.approx(1 / 3)


# ---- never a silent NaN -----------------------------------------------------------------------------
NAN_CASES = {
    "accuracy": ([0, 1], [np.nan, 1]),
    "log_loss": ([0, 1], [0.2, np.nan]),
    "roc_auc": ([0, 1], [np.nan, 0.4]),
    "mean_columnwise_auc": ([0, 1], [[np.nan, 0.5], [0.5, 0.5]]),
    "qwk": ([0, 1], [0, np.nan]),
    "macro_f1": ([0, np.nan], [0, 1]),
    "fbeta": ([[1, 0]], [[np.nan, 1]]),
    "micro_f1": ([[1, 0]], [[1, np.nan]]),
    "map_at_k(k=2)": ([0, 1], [[0, np.nan], [1, 0]]),
    "rmse": ([1.0, 2.0], [np.nan, 2.0]),
    "mae": ([np.nan, 2.0], [1.0, 2.0]),
    "dice": (np.zeros((1, 2, 2)), np.full((1, 2, 2), np.nan)),
    "airbus_f2": (np.zeros((1, 2, 2)), np.full((1, 2, 2), np.nan)),
    "mean_dice_pairs": (np.zeros((1, 2, 2, 2)), np.full((1, 2, 2, 2), np.nan)),
    "mean_iou": ([[0, 0, 1, 1]], [[0, 0, np.nan, 1]]),
    "wheat_map": ([[[0, 0, 1, 1]]], [[[np.nan, 0, 0, 1, 1]]]),
    "coco_map": ([[[0, 0, 0, 1, 1]]], [[[0, 0.5, 0, 0, np.nan, 1]]]),
    "map_at_iou(iou=0.4)": ([[[0, 0, 0, 1, 1]]], [[[0, 0.5, np.nan, 0, 1, 1]]]),
    "f2_iou": ([[[0, 0, np.nan, 1]]], [[]]),
}


def test_every_metric_has_a_nan_case():
    assert {resolve_metric(name).name for name in NAN_CASES} == set(METRICS)


@pytest.mark.parametrize("name", sorted(NAN_CASES))
def test_nan_inputs_are_an_error_never_a_silent_nan(name):
    truth, predicted = NAN_CASES[name]
    with pytest.raises(PodiumError, match="NaN"):
        resolve_metric(name)(truth, predicted)


# ---- resolving a metric -----------------------------------------------------------------------------
def test_resolve_by_name_by_call_form_and_by_mapping_are_one_metric():
    assert m("map_at_k(k=5)") == m({"name": "map_at_k", "k": 5}) == m(" map_at_k ( k = 5 ) ")
    metric = m("map_at_k(k=5)")
    assert (metric.label, metric.logged, metric.kwargs) == ("map_at_k(k=5)", "val_map_at_k", {"k": 5})
    assert metric.to_config() == {"name": "map_at_k", "k": 5} and m(metric.to_config()) == metric
    assert m(metric.label) == metric and m(metric) is metric
    assert m("accuracy").to_config() == "accuracy" and m("accuracy").label == "accuracy"
    fbeta = m("fbeta(beta=2, average=samples)")
    assert fbeta.kwargs == {"beta": 2.0, "average": "samples"} and m("fbeta").kwargs == {"beta": 1.0,
                                                                                         "average": "samples"}


def test_direction_mode_better_worst_and_proxy():
    for name, entry in METRICS.items():
        metric = m(name if not entry.params or all(p.default is not None for p in entry.params)
                   else f"{name}(k=3)")
        assert metric.direction == metric.mode == entry.direction in ("max", "min")
        assert metric.better(1.0, 0.5) == (entry.direction == "max")
        assert not metric.better(0.5, 0.5)
        assert metric.worst == (-math.inf if entry.direction == "max" else math.inf)
        assert metric.best_of([0.2, 0.9, 0.4]) == (0.9 if entry.direction == "max" else 0.2)
        assert metric.reads == entry.reads and metric.proxy.name == (entry.proxy or name)
    assert m("accuracy").proxy.name == "log_loss" and m("qwk").proxy.name == "rmse"
    assert m("log_loss").proxy == m("log_loss")


@pytest.mark.parametrize("value, match", [
    ("acuracy", "did you mean 'accuracy'"),
    ("Log Loss", "Unknown metric"),
    ({"k": 5}, "has no name"),
    ("map_at_k", "needs the parameter k"),
    ("map_at_k(k=0)", "out of range"),
    ({"name": "map_at_k", "k": -2}, "out of range"),
    ({"name": "map_at_k", "k": 2.5}, "wrong type"),
    ({"name": "map_at_k", "k": True}, "wrong type"),
    ("map_at_k(k=five)", "wrong type"),
    ("accuracy(k=5)", "has no parameter 'k'"),
    ({"name": "fbeta", "gamma": 2}, "has no parameter 'gamma'"),
    ("fbeta(average=weighted)", "unknown value"),
    ("fbeta(beta=0)", "out of range"),
    ("map_at_k(5)", "not key=value"),
    ("map_at_k(k=5", "not readable"),
    (42, "a name or a mapping"),
    ("", "a name or a mapping"),
])
def test_resolve_refuses_bad_metrics_clearly(value, match):
    with pytest.raises(PodiumError, match=match):
        resolve_metric(value)


def test_an_unknown_name_lists_every_valid_name():
    with pytest.raises(PodiumError) as caught:
        resolve_metric("kappa")
    assert all(name in str(caught.value) for name in metric_names())


def test_check_metric_form_refuses_a_task_or_form_the_metric_cannot_score():
    check_metric_form(m("log_loss"), "probability", "classification")  # fine
    with pytest.raises(PodiumError, match="cannot score task segmentation") as caught:
        check_metric_form(m("log_loss"), "rle", "segmentation")
    assert "dice" in str(caught.value)  # the metrics of that task are named
    with pytest.raises(PodiumError, match="cannot score a submission of form 'label'") as caught:
        check_metric_form(m("log_loss"), "label", "classification")
    assert "probability or probabilities" in str(caught.value)
    with pytest.raises(PodiumError, match="form 'label'"):
        check_metric_form(m("map_at_k(k=5)"), "label", "classification")


def _spec(tmp_path, **fields):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({"slug": "x", **fields}))
    return load_competition(str(path))


def test_a_spec_with_a_bad_metric_is_refused_with_the_valid_names(tmp_path):
    with pytest.raises(PodiumError, match="Unknown metric 'logloss'") as caught:
        _spec(tmp_path, metric="logloss")
    assert all(name in str(caught.value) for name in metric_names())
    with pytest.raises(PodiumError, match="needs the parameter k"):
        _spec(tmp_path, metric="map_at_k", submission_format="top_k")
    with pytest.raises(PodiumError, match="out of range"):
        _spec(tmp_path, metric={"name": "map_at_k", "k": 0}, submission_format="top_k")
    with pytest.raises(PodiumError, match="cannot score a submission of form 'label'"):
        _spec(tmp_path, metric="log_loss")  # the classification default form is label
    spec = _spec(tmp_path, metric={"name": "map_at_k", "k": 3}, submission_format="top_k")
    assert spec.resolved_metric == m("map_at_k(k=3)") and spec.resolved_top_k == 3


# ---- the docs ---------------------------------------------------------------------------------------
def _doc_sections() -> dict[str, str]:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "metrics.md").read_text(encoding="utf-8")
    parts = text.split("\n### `")[1:]
    return {part.split("`", 1)[0]: part for part in parts}


def test_docs_metrics_md_describes_every_registry_metric():
    """docs/metrics.md has a section per metric naming its direction, parameters, the submission forms it
    can score, the tasks and the proxy a blend fits: a metric added to the registry without docs fails here."""
    sections = _doc_sections()
    assert set(sections) == set(METRICS), "docs/metrics.md sections differ from the registry"
    for name, entry in METRICS.items():
        section = sections[name]
        direction = "higher is better" if entry.direction == "max" else "lower is better"
        assert direction in section, f"{name}: direction"
        assert "**Definition" in section and "**Competitions:**" in section, name
        for form in entry.forms:
            assert f"`{form}`" in section, f"{name}: form {form}"
        for param in entry.params:
            assert f"`{param.name}`" in section, f"{name}: parameter {param.name}"
        for task in entry.tasks:
            assert task in section, f"{name}: task {task}"
        if entry.proxy:
            assert f"fits `{entry.proxy}`" in section, f"{name}: proxy {entry.proxy}"


def test_registry_entries_compute_the_definitions_of_kaggle_metrics():
    """The registry holds entries; the arithmetic is podium.scoring.kaggle_metrics', one definition each."""
    for name in ("log_loss", "roc_auc", "qwk", "map_at_k", "rmse", "dice", "mean_dice_pairs", "mean_iou"):
        assert METRICS[name].compute is getattr(kaggle_metrics, name)
    assert kaggle_metrics.log_loss([0, 1], [[0.9, 0.1], [0.2, 0.8]]) == pytest.approx(
        -(np.log(0.9) + np.log(0.8)) / 2)


def test_mean_dice_pairs_equals_scikit_learns_f1_of_each_pairs_pixels():
    """Dice of a pair is the F1 of its pixel decisions (scikit-learn's f1_score, the reference); Kaggle's rule
    scores a pair empty in both 1, where f1_score's zero_division=1 says the same."""
    rng = np.random.default_rng(3)
    truth = (rng.random((4, 5, 6, 2)) > 0.6).astype(np.uint8)
    truth[2] = 0
    predicted = rng.random((4, 5, 6, 2))
    predicted[2, ..., 1] = 0.2  # pair (2, 1): empty in both
    reference = np.mean([skm.f1_score(truth[i, ..., c].ravel(), (predicted[i, ..., c] > 0.5).ravel(), zero_division=1)
                         for i in range(4) for c in range(2)])
    assert m("mean_dice_pairs")(truth, predicted) == pytest.approx(reference)
