"""Class imbalance: weights that equalise each class's share of the loss, oversampling of rare
classes up to a floor (the users' "at least N images per class"), repeated copies then augmented by
the training loader like every other training image; and, for segmentation, fewer empty images."""

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


def keep_empty(positions: np.ndarray, masks: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Training positions with only a seeded `fraction` of the images whose mask is empty.

    78% of Airbus' images have no ship: keeping all of them spends most epochs learning "sea". Only
    training positions are passed here; validation keeps every empty image, as the test set has them
    (and the Airbus score rewards predicting nothing on them).
    """
    if fraction >= 1.0 or not len(positions):
        return positions
    has_object = np.zeros(len(positions), dtype=bool)
    for start in range(0, len(positions), 1024):  # masks may be a memmap of many GB: read in slices
        chunk = np.asarray(masks[positions[start:start + 1024]])
        has_object[start:start + 1024] = chunk.reshape(len(chunk), -1).max(axis=1) > 0
    empty = positions[~has_object]
    kept = np.random.default_rng(seed).choice(empty, int(round(fraction * len(empty))), replace=False)
    return np.sort(np.concatenate([positions[has_object], kept]))
