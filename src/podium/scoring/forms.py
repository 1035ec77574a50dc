"""A model's outputs turned into what a metric reads (podium.scoring.registry's `reads`), in one place, so an
epoch's validation score, a fold's score, the OOF CV, a blend and the submission see the same numbers.

Class probabilities (classification: softmax rows; multi-label: a sigmoid per class) become labels (argmax),
P(positive class), the probability rows, k ranked labels, or 0/1 label sets above per-class thresholds.
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


def _unreadable(metric: Metric, outputs: str) -> PodiumError:
    return PodiumError(f"Metric {metric.label} reads {metric.reads}, which cannot be made from {outputs}.",
                       expected=f"a metric of this task (tasks of {metric.label}: {', '.join(metric.spec.tasks)})",
                       received=metric.label, fix="set the competition's metric (docs/metrics.md)")
