"""Class imbalance: weights that equalise each class's share of the loss, and oversampling of rare
classes up to a floor (the users' "at least N images per class"), repeated copies then augmented by
the training loader like every other training image."""

from __future__ import annotations

import numpy as np


def class_weights(labels: np.ndarray, num_classes: int, mode: str) -> dict[int, float] | None:
    """'balanced': n_samples / (n_classes * count), so every present class carries the same total weight."""
    if mode == "none":
        return None
    counts = np.bincount(labels, minlength=num_classes)
    present = counts > 0
    weights = np.zeros(num_classes)
    weights[present] = len(labels) / (present.sum() * counts[present])
    return {k: float(w) for k, w in enumerate(weights)}


def oversample(positions: np.ndarray, labels: np.ndarray, min_per_class: int, seed: int) -> np.ndarray:
    """Repeat rows of classes with fewer than `min_per_class` training rows until they reach it.

    `labels` is indexed by position. Whole copies first, then a seeded random remainder, so the
    result is deterministic and as even as possible. Validation positions are never passed here.
    """
    if min_per_class <= 0:
        return positions
    rng = np.random.default_rng(seed)
    extra = []
    for label in np.unique(labels[positions]):
        rows = positions[labels[positions] == label]
        missing = min_per_class - len(rows)
        if missing > 0:
            extra.append(np.tile(rows, missing // len(rows)))
            extra.append(rng.choice(rows, missing % len(rows), replace=False))
    return np.concatenate([positions, *extra]) if extra else positions


def effective_counts(labels: np.ndarray, num_classes: int, weights: dict[int, float] | None) -> np.ndarray:
    """What each class contributes to an epoch's loss: count x weight (count alone without weights)."""
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    if weights is None:
        return counts
    return counts * np.array([weights[k] for k in range(num_classes)])
