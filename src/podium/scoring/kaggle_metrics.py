"""Kaggle's metric definitions on numpy arrays, each with its input checks: what the registry's entries
(podium.scoring.registry) compute. A metric reads one form of prediction (the table in the registry's docstring);
edge cases are documented values or a PodiumError, never a silent NaN (docs/metrics.md)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from podium.errors import PodiumError
from podium.scoring.segmentation import airbus_score, dice_per_image, iou_per_image, mean_dice_pairs as _pairs

ArrayLike = npt.ArrayLike
LOG_LOSS_EPS = 1e-15  # Kaggle clips probabilities to [eps, 1 - eps] before the log


# ---------------------------------------------------------------------------------------- input checks


def _array(values: ArrayLike, name: str, dtype=float) -> np.ndarray:
    array = np.asarray(values, dtype=dtype)
    if array.size and dtype is float and not np.all(np.isfinite(array)):
        bad = int((~np.isfinite(array)).sum())
        raise PodiumError(f"{name} holds {bad} NaN or infinite value(s).", expected="finite numbers",
                          received=f"{bad} of {array.size} values not finite",
                          fix="remake the predictions; a NaN usually means the training diverged (lower lr)")
    return array


def _finite(values: ArrayLike, name: str) -> np.ndarray:
    """The array as given (masks stay uint8: no float copy of a whole validation set), NaN refused."""
    array = np.asarray(values)
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        _array(array, name)  # raises, saying how many
    return array


def _same_length(truth: np.ndarray, predicted: np.ndarray) -> None:
    if len(truth) != len(predicted):
        raise PodiumError("Truth and predictions differ in length.", expected="one prediction per example",
                          received=f"{len(truth)} true values, {len(predicted)} predictions",
                          fix="score predictions against the truth of the same rows")
    if len(truth) == 0:
        raise PodiumError("Nothing to score.", expected="at least one example", received="empty arrays",
                          fix="check that the validation part is not empty")


def _indices(values: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise PodiumError(f"{name} is not one class index per row.", expected="shape (n,)",
                          received=f"shape {array.shape}", fix="pass integer class indices")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        as_float = _array(array, name)
        if not np.all(np.mod(as_float, 1) == 0):
            raise PodiumError(f"{name} holds values that are not integers.", expected="integer classes or grades",
                              received=f"e.g. {array[:3].tolist()}", fix="round or argmax the predictions first")
    return array.astype(np.int64)


def _one_hot_truth(truth: ArrayLike, n_columns: int) -> np.ndarray:
    array = np.asarray(truth)
    if array.ndim == 1:
        indices = _indices(array, "truth")
        if indices.size and (indices.min() < 0 or indices.max() >= n_columns):
            raise PodiumError("Truth names classes the predictions have no column for.",
                              expected=f"indices 0..{n_columns - 1}", received=f"{sorted(set(indices.tolist()))[:5]}",
                              fix="predict one column per class of the class list")
        return np.eye(n_columns, dtype=np.float64)[indices]
    array = _array(array, "truth")
    if array.ndim != 2 or array.shape[1] != n_columns:
        raise PodiumError("Truth columns do not match the predicted columns.", expected=f"(n, {n_columns})",
                          received=f"shape {array.shape}", fix="pass one 0/1 column per class, in the same order")
    return array


def _probabilities(predicted: ArrayLike) -> np.ndarray:
    probs = _array(predicted, "predicted probabilities")
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise PodiumError("Class probabilities need one column per class.", expected="shape (n, classes >= 2)",
                          received=f"shape {probs.shape}", fix="pass the model's softmax outputs")
    if probs.size and (probs.min() < 0 or probs.max() > 1):
        raise PodiumError("Probabilities outside 0..1.", expected="values in [0, 1]",
                          received=f"min {probs.min():.3g}, max {probs.max():.3g}",
                          fix="pass probabilities, not logits (apply softmax or sigmoid)")
    return probs


# ---------------------------------------------------------------------------------------- definitions


def log_loss(truth: ArrayLike, predicted: ArrayLike) -> float:
    """Kaggle's log loss: P clipped to [1e-15, 1 - 1e-15]; a row of class probabilities is divided by its sum.

    Binary (predicted of shape (n,)): P(positive class), truth 0/1. Multi-class: (n, C) and class indices."""
    predicted = _array(predicted, "predicted probabilities")
    if predicted.ndim == 1:
        truth = _array(truth, "truth")
        _same_length(truth, predicted)
        _require_binary(truth, "log_loss")
        p = np.clip(predicted, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
        return float(-np.mean(truth * np.log(p) + (1 - truth) * np.log(1 - p)))
    probs = _probabilities(predicted)
    onehot = _one_hot_truth(truth, probs.shape[1])
    _same_length(onehot, probs)
    clipped = np.clip(probs, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    return float(-np.mean(np.sum(onehot * np.log(clipped), axis=1)))


def _require_binary(truth: np.ndarray, name: str) -> None:
    if truth.size and not np.isin(truth, (0, 1)).all():
        raise PodiumError(f"{name} needs 0/1 truth.", expected="1 for the positive class, 0 otherwise",
                          received=f"values {sorted(set(np.unique(truth).tolist()))[:5]}",
                          fix="set positive_class in the competition spec")


def roc_auc(truth: ArrayLike, predicted: ArrayLike) -> float:
    """Area under the ROC curve of P(positive); undefined (an error) when the truth holds one class only."""
    from sklearn.metrics import roc_auc_score

    truth, predicted = _array(truth, "truth"), _array(predicted, "predicted probabilities")
    if predicted.ndim != 1:
        raise PodiumError("roc_auc reads one probability per row.", expected="shape (n,)",
                          received=f"shape {predicted.shape}",
                          fix="pass P(positive class), or use mean_columnwise_auc for one column per class")
    _same_length(truth, predicted)
    _require_binary(truth, "roc_auc")
    if len(np.unique(truth)) < 2:
        raise PodiumError("ROC AUC is undefined when the truth holds one class only.",
                          expected="positives and negatives among the scored rows",
                          received=f"{len(truth)} rows, all {int(truth[0])}",
                          fix="use more folds' rows (the OOF CV), or a split that keeps both classes in each fold")
    return float(roc_auc_score(truth, predicted))


def mean_columnwise_auc(truth: ArrayLike, predicted: ArrayLike) -> float:
    """The mean of each class column's ROC AUC (Plant Pathology 2020). A column whose truth is all 0 or all
    1 has no AUC and is left out of the mean (a rare class absent from a fold); none left is an error."""
    from sklearn.metrics import roc_auc_score

    probs = _array(predicted, "predicted probabilities")
    if probs.ndim != 2:
        raise PodiumError("mean_columnwise_auc reads one column per class.", expected="shape (n, classes)",
                          received=f"shape {probs.shape}", fix="pass every class's probability")
    onehot = _one_hot_truth(truth, probs.shape[1])
    _same_length(onehot, probs)
    scored = [roc_auc_score(onehot[:, c], probs[:, c]) for c in range(probs.shape[1])
              if len(np.unique(onehot[:, c])) == 2]
    if not scored:
        raise PodiumError("Column-wise AUC is undefined: no class column holds both 0 and 1.",
                          expected="at least one class present and absent among the scored rows",
                          received=f"{len(onehot)} rows", fix="score more rows (the OOF CV)")
    return float(np.mean(scored))


def qwk(truth: ArrayLike, predicted: ArrayLike) -> float:
    """Quadratic weighted kappa over integer grades (APTOS, Kaggle's definition = Cohen's kappa, quadratic
    weights). As Kaggle's (ml_metrics' quadratic_weighted_kappa), the grades are every integer from the
    lowest to the highest seen, so a grade absent from both still spaces the weights ((i - j)^2 of the grade
    values, not of the ranks among the grades present). When truth and predictions are one and the same
    constant grade, chance agreement is already total and kappa is 0/0: scored 0.0 (no agreement beyond
    chance shown); a constant prediction against varied truth scores 0.0 by the formula itself."""
    from sklearn.metrics import cohen_kappa_score

    truth, predicted = _indices(truth, "truth"), _indices(predicted, "predicted")
    _same_length(truth, predicted)
    both = np.concatenate([truth, predicted])
    if len(np.unique(both)) < 2:
        return 0.0
    grades = np.arange(both.min(), both.max() + 1)
    return float(cohen_kappa_score(truth, predicted, weights="quadratic", labels=grades))


def fbeta(truth: ArrayLike, predicted: ArrayLike, beta: float = 1.0, average: str = "samples") -> float:
    """F-beta of 0/1 label sets. samples (Planet's F2): per image, then the mean; an image with nothing true
    and nothing predicted scores 1. micro: every decision pooled (1.0 when nothing is true or chosen).
    macro: per class, then the mean (a class never true nor predicted scores 1)."""
    from sklearn.metrics import fbeta_score

    truth = _array(truth, "truth")
    predicted = _array(predicted, "predicted label sets")
    if truth.shape != predicted.shape or truth.ndim != 2:
        raise PodiumError("fbeta reads one 0/1 row per image for truth and predictions.",
                          expected=f"two (n, classes) arrays of the same shape",
                          received=f"{truth.shape} and {predicted.shape}", fix="threshold the probabilities first")
    _same_length(truth, predicted)
    for name, values in (("truth", truth), ("predicted", predicted)):
        _require_binary(values, f"fbeta {name}")
    return float(fbeta_score(truth.astype(int), predicted.astype(int), beta=beta, average=average,
                             zero_division=1.0))


def micro_f1(truth: ArrayLike, predicted: ArrayLike) -> float:
    """F1 of every (image, class) decision pooled: 1.0 when nothing is true or chosen."""
    return fbeta(truth, predicted, beta=1.0, average="micro")


def average_precision_at_k(actual: list[int], ranked: list[int], k: int) -> float:
    """Kaggle's apk: precision at each rank where a not-yet-seen true label appears, over min(|actual|, k)."""
    if not actual:
        return 0.0
    hits, total, seen = 0, 0.0, set()
    for rank, label in enumerate(ranked[:k], start=1):
        if label in actual and label not in seen:
            hits += 1
            total += hits / rank
        seen.add(label)
    return total / min(len(actual), k)


def map_at_k(truth: ArrayLike, predicted: ArrayLike, k: int) -> float:
    """Mean average precision at k (Humpback Whales: MAP@5). With one true label per image it is 1/rank of
    the true label among the first k, 0 when absent. Truth: (n,) indices or a list of index lists."""
    ranked = np.asarray(predicted)
    if ranked.ndim != 2:
        raise PodiumError("map_at_k reads k ranked labels per row.", expected="shape (n, k), best first",
                          received=f"shape {ranked.shape}", fix="pass the top-k class indices (argsort)")
    ranked = _indices(ranked.reshape(-1), "predicted ranking").reshape(ranked.shape)  # NaN or 1.5: an error
    if isinstance(truth, np.ndarray) and truth.dtype != object:
        truth_rows = [[int(v)] for v in _indices(truth, "truth")] if truth.ndim == 1 else \
            [[int(x) for x in row] for row in _indices(truth.reshape(-1), "truth").reshape(truth.shape)]
    else:  # a list: of indices, or of index lists (several right answers), ragged or not
        truth_rows = [[int(x) for x in _indices(list(v), "truth")] if isinstance(v, (list, tuple, set, np.ndarray))
                      else [int(_indices([v], "truth")[0])] for v in truth]
    _same_length(np.arange(len(truth_rows)), ranked)
    return float(np.mean([average_precision_at_k(a, list(r), k) for a, r in zip(truth_rows, ranked.tolist())]))


def rmse(truth: ArrayLike, predicted: ArrayLike) -> float:
    truth, predicted = _numbers(truth, predicted)
    return float(np.sqrt(np.mean((truth - predicted) ** 2)))


def mae(truth: ArrayLike, predicted: ArrayLike) -> float:
    truth, predicted = _numbers(truth, predicted)
    return float(np.mean(np.abs(truth - predicted)))


def _numbers(truth: ArrayLike, predicted: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    truth, predicted = _array(truth, "truth").reshape(-1), _array(predicted, "predictions").reshape(-1)
    _same_length(truth, predicted)
    return truth, predicted


def dice(truth: ArrayLike, predicted: ArrayLike) -> float:
    """Mean hard Dice per image (predicted thresholded at 0.5); an image empty in both scores 1."""
    return float(np.mean(dice_per_image(_finite(truth, "true masks"), _finite(predicted, "predicted masks"))))


def mean_dice_pairs(truth: ArrayLike, predicted: ArrayLike) -> float:
    """Severstal / Understanding Clouds: Dice per image–class pair of (n, H, W, C) masks, empty in both = 1, mean."""
    return _pairs(_finite(truth, "true masks"), _finite(predicted, "predicted masks"))


def airbus_f2(truth: ArrayLike, predicted: ArrayLike) -> float:
    """Airbus Ship Detection: F2 over IoU thresholds 0.5..0.95 per image, mean over images (see
    podium.scoring.segmentation)."""
    return airbus_score(_finite(truth, "true masks"), _finite(predicted, "predicted masks"))


def mean_iou(truth: ArrayLike, predicted: ArrayLike) -> float:
    """Mean IoU per image: of xyxy boxes ((n, 4)), or of masks ((n, H, W[, 1]), thresholded at 0.5)."""
    truth_array = _finite(truth, "true boxes or masks")
    predicted_array = _finite(predicted, "predicted boxes or masks")
    if truth_array.ndim == 2 and truth_array.shape[-1] == 4:
        return float(np.mean(_box_iou(truth_array, predicted_array)))
    return float(np.mean(iou_per_image(truth_array, predicted_array)))


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    low, high = np.maximum(a[:, :2], b[:, :2]), np.minimum(a[:, 2:], b[:, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=1)
    area = lambda box: np.prod(np.clip(box[:, 2:] - box[:, :2], 0, None), axis=1)  # noqa: E731
    union = area(a) + area(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 1.0)
