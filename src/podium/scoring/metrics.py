"""Scores from integer class indices: accuracy, per-class precision/recall/F1, confusion matrix.

sklearn does the arithmetic; this module pins the choices that make numbers comparable across runs:
every class gets a row even when never predicted (or absent from a fold), and 0/0 counts as 0.
Inputs are checked first, because sklearn silently drops indices outside `labels=` and that would
turn an off-by-one in a label encoder into a plausible-looking score.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from podium.errors import PodiumError

AVERAGE_ROWS = ("macro avg", "weighted avg")
TABLE_COLUMNS = ("precision", "recall", "f1", "support")

ArrayLike = npt.ArrayLike


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Share of exact matches: the score of every accuracy-metric competition."""
    truth, predicted = _class_indices(y_true, y_pred)
    return float(np.mean(truth == predicted))


def micro_f1(truth: ArrayLike, chosen: ArrayLike) -> float:
    """F1 of every (image, class) decision pooled: multi-label's score; 1.0 when nothing is true or chosen."""
    truth, chosen = np.asarray(truth, bool), np.asarray(chosen, bool)
    if truth.shape != chosen.shape:
        raise PodiumError("Truth and predictions differ in shape.", expected=str(truth.shape),
                          received=str(chosen.shape), fix="pass one 0/1 row per image for each")
    hits, total = int((truth & chosen).sum()), int(truth.sum() + chosen.sum())
    return 1.0 if total == 0 else 2 * hits / total


def confusion(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int) -> np.ndarray:
    """Counts, rows = true class, columns = predicted class; always num_classes x num_classes."""
    truth, predicted = _class_indices(y_true, y_pred, num_classes)
    return confusion_matrix(truth, predicted, labels=np.arange(num_classes)).astype(np.int64)


def macro_f1(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None) -> float:
    """Unweighted mean F1, so rare classes count as much as common ones.

    With num_classes, classes absent from both inputs count as F1 0 (as in classification_table);
    without it, only classes that occur in y_true or y_pred are averaged.
    """
    truth, predicted = _class_indices(y_true, y_pred, num_classes)
    labels = None if num_classes is None else np.arange(num_classes)
    return float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0))


def classification_table(y_true: ArrayLike, y_pred: ArrayLike, class_names: Sequence[str]) -> pd.DataFrame:
    """One row per class (in class order) plus "macro avg" and "weighted avg"; support is the true count."""
    num_classes = len(class_names)
    if num_classes == 0:
        raise PodiumError("No class names for the per-class table.", expected="one name per class index",
                          received="an empty list", fix="pass the class names the model was trained on")
    truth, predicted = _class_indices(y_true, y_pred, num_classes)
    labels = np.arange(num_classes)
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=labels, average=None, zero_division=0)
    table = pd.DataFrame({"precision": precision, "recall": recall, "f1": f1, "support": support},
                         index=pd.Index([str(name) for name in class_names], name="class"))
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            truth, predicted, labels=labels, average=average, zero_division=0)
        table.loc[f"{average} avg"] = [p, r, f, len(truth)]
    table[["precision", "recall", "f1"]] = table[["precision", "recall", "f1"]].astype(float)
    table["support"] = table["support"].astype(np.int64)
    return table


def _class_indices(y_true: ArrayLike, y_pred: ArrayLike,
                   num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    truth, predicted = _as_indices(y_true, "y_true"), _as_indices(y_pred, "y_pred")
    if len(truth) != len(predicted):
        raise PodiumError("y_true and y_pred differ in length.", expected="one prediction per example",
                          received=f"{len(truth)} true labels, {len(predicted)} predictions",
                          fix="score predictions against the labels of the same rows")
    if len(truth) == 0:
        raise PodiumError("Nothing to score.", expected="at least one example", received="empty arrays",
                          fix="check that the validation fold is not empty")
    if num_classes is not None:
        for name, values in (("y_true", truth), ("y_pred", predicted)):
            outside = values[(values < 0) | (values >= num_classes)]
            if outside.size:
                raise PodiumError(f"{name} has class indices outside 0..{num_classes - 1}.",
                                  expected=f"indices into the {num_classes} classes",
                                  received=f"{sorted(set(outside.tolist()))[:5]}",
                                  fix="encode labels with the same class list as the model")
    return truth, predicted


def _as_indices(values: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise PodiumError(f"{name} is not a 1-D array of class indices.", expected="shape (n,)",
                          received=f"shape {array.shape}",
                          fix="turn probabilities into indices with probs.argmax(axis=1)")
    if array.size and np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        bad = int((~np.isfinite(array)).sum())
        raise PodiumError(f"{name} holds {bad} NaN or infinite value(s).", expected="finite class indices",
                          received=f"{bad} of {array.size} values not finite",
                          fix="remake the predictions; a NaN usually means the training diverged (lower lr)")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not (np.issubdtype(array.dtype, np.floating) and np.all(np.mod(array, 1) == 0)):
            raise PodiumError(f"{name} holds values that are not class indices.",
                              expected="integers 0..num_classes-1",
                              received=f"dtype {array.dtype}, e.g. {array[:3].tolist()}",
                              fix="map class names to indices, or take argmax of probabilities")
    return array.astype(np.int64)
