"""A model's outputs turned into what a metric reads (podium.scoring.registry's `reads`), in one place, so an
epoch's validation score, a fold's score, the OOF CV, a blend and the submission see the same numbers.

Class probabilities (classification: softmax rows; multi-label: a sigmoid per class) become labels (argmax),
P(positive class), the probability rows, k ranked labels, or 0/1 label sets above per-class thresholds.
Numbers (regression, in the target's units) are read as they are (rmse, mae) or cut into integer grades
(qwk: cut points between grades, plain rounding until cuts fitted on OOF predictions are given).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from podium.errors import PodiumError
from podium.scoring.registry import Metric


def positive_index(positive_class: str, classes: Sequence[str]) -> int:
    """The class whose probability a `probability` submission writes: the spec's positive_class, or the
    last class (Dogs vs. Cats Redux: classes [cat, dog], label = P(dog))."""
    classes = [str(c) for c in classes]
    if not positive_class:
        if len(classes) != 2:
            raise PodiumError("A one-probability submission needs positive_class with more than two classes.",
                              expected="positive_class: <one of the classes> in the competition spec",
                              received=f"{len(classes)} classes: {', '.join(classes[:6])}",
                              fix="name the class whose probability the sample's column holds")
        return 1
    if positive_class not in classes:
        raise PodiumError(f"positive_class {positive_class!r} is not a class of the training labels.",
                          expected=f"one of: {', '.join(classes)}", received=repr(positive_class),
                          fix="set positive_class to the class whose probability the submission holds")
    return classes.index(positive_class)


def top_k_indices(probs: np.ndarray, k: int) -> np.ndarray:
    """(n, k) class indices, most probable first; ties keep the class order (a stable sort)."""
    return np.argsort(-np.asarray(probs), axis=1, kind="stable")[:, :k]


def label_sets(probs: np.ndarray, thresholds: np.ndarray | float = 0.5) -> np.ndarray:
    """0/1 per class: at or above its threshold, or the most probable class where none is (a row is never
    empty: every multi-label competition podium knows labels each image at least once)."""
    probs = np.asarray(probs, dtype=float)
    chosen = probs >= np.broadcast_to(np.asarray(thresholds, dtype=float), probs.shape[1:])[None, :]
    empty = ~chosen.any(axis=1)
    chosen[empty, probs[empty].argmax(axis=1)] = True
    return chosen.astype(np.int64)


def from_class_probabilities(metric: Metric, labels: np.ndarray, probs: np.ndarray, *, positive: int = 1,
                             k: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(truth, predicted) in the metric's form from one-label-per-image truth (class indices) and softmax rows."""
    labels, probs = np.asarray(labels, dtype=np.int64), np.asarray(probs, dtype=float)
    reads = metric.reads
    if reads == "labels":
        return labels, probs.argmax(axis=1)
    if reads == "probability" or (metric.name == "log_loss" and probs.shape[1] == 2):
        return (labels == positive).astype(np.int64), probs[:, positive]
    if reads == "probabilities":
        return labels, probs
    if reads == "ranking":
        return labels, top_k_indices(probs, k or int(metric.kwargs.get("k", 1)))
    raise _unreadable(metric, "class probabilities (one label per image)")


def from_label_probabilities(metric: Metric, truth: np.ndarray, probs: np.ndarray,
                             thresholds: np.ndarray | float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(truth, predicted) in the metric's form from 0/1 label sets and a sigmoid per class (multi-label)."""
    truth, probs = np.asarray(truth, dtype=np.int64), np.asarray(probs, dtype=float)
    if metric.reads == "label_sets":
        return truth, label_sets(probs, thresholds)
    if metric.reads == "probabilities":
        return truth, probs
    raise _unreadable(metric, "a probability per label (multi-label)")


def grade_values(truth) -> np.ndarray:
    """The integer grades a QWK target takes (its distinct values); refused when they are not integers."""
    values = np.unique(np.asarray(truth, dtype=float))
    if not np.all(np.mod(values, 1) == 0):
        raise PodiumError("metric qwk needs integer grades as targets.", expected="targets like 0, 1, 2, 3, 4",
                          received=f"e.g. {values[:5].tolist()}", fix="use metric rmse or mae for a continuous target")
    return values.astype(int)


def start_cuts(grades) -> np.ndarray:
    """Half way between neighbouring grades (k + 0.5 for 0..4): plain rounding."""
    grades = np.asarray(grades, dtype=float)
    return (grades[:-1] + grades[1:]) / 2


def to_grades(predicted, cuts, grades) -> np.ndarray:
    """Grade k where cuts[k-1] <= prediction < cuts[k]."""
    return np.asarray(grades)[np.searchsorted(np.asarray(cuts, dtype=float), np.asarray(predicted, float),
                                              side="right")]


def from_numbers(metric: Metric, truth: np.ndarray, values: np.ndarray, cuts: np.ndarray | None = None,
                 grades: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(truth, predicted) in the metric's form from a number per image (regression, the target's units): the
    numbers for rmse/mae; integer grades for a metric reading labels (qwk), cut at `cuts` (default: plain
    rounding between `grades`, which default to the truth's distinct integers: pass every target's grades
    when a fold may lack one)."""
    truth, values = np.asarray(truth, dtype=float), np.asarray(values, dtype=float)
    if metric.reads == "numbers":
        return truth, values
    if metric.reads == "labels":
        grades = grade_values(truth) if grades is None else np.asarray(grades, dtype=int)
        cuts = start_cuts(grades) if cuts is None else np.asarray(cuts, dtype=float)
        return truth.astype(np.int64), to_grades(values, cuts, grades).astype(np.int64)
    raise _unreadable(metric, "a number per image (regression)")


def _unreadable(metric: Metric, outputs: str) -> PodiumError:
    return PodiumError(f"Metric {metric.label} reads {metric.reads}, which cannot be made from {outputs}.",
                       expected=f"a metric of this task (tasks of {metric.label}: {', '.join(metric.spec.tasks)})",
                       received=metric.label, fix="set the competition's metric (docs/metrics.md)")
