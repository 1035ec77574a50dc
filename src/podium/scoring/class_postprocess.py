"""Per-class post-processing of segmentation probabilities, chosen on OOF the way Severstal and Understanding
Clouds were won: for each class a probability threshold and a minimum connected-component size (smaller
components are dropped: speckle on an empty pair costs a whole pair's Dice).

The mean Dice over image–class pairs is a mean over classes of per-class means, so each class's values
are chosen on their own. Chosen on the same rows they are scored on, the values flatter the score; here each
fold's values are chosen on the other folds' OOF and scored on the held-out fold (`honest_score`), and the
values kept for the test set are chosen on all OOF rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from podium.data.images import resize_plane
from podium.errors import PodiumError
from podium.scoring.segmentation import mean_dice_pairs

DEFAULT_THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)
DEFAULT_MIN_SIZES = (0, 10, 25, 50, 100, 200, 400, 800)
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class ClassPostprocess:
    """The chosen values, one per class, with the scores that justify them."""

    thresholds: tuple[float, ...]  # chosen on all OOF rows: what the test predictions use
    min_sizes: tuple[int, ...]
    per_fold: dict[int, tuple[tuple[float, ...], tuple[int, ...]]]  # fold -> values chosen on the other folds
    honest_score: float  # each fold scored with the values chosen without it
    plain_score: float  # threshold 0.5, nothing dropped

    def to_dict(self) -> dict:
        """What a run saves (JSON): the values and the scores."""
        return {"thresholds": list(self.thresholds), "min_sizes": list(self.min_sizes),
                "per_fold": {str(k): {"thresholds": list(t), "min_sizes": list(m)}
                             for k, (t, m) in self.per_fold.items()},
                "honest_score": self.honest_score, "plain_score": self.plain_score}


def apply_postprocess(probabilities: np.ndarray, thresholds: Sequence[float], min_sizes: Sequence[int]) -> np.ndarray:
    """(N, H, W, C) probabilities -> (N, H, W, C) uint8 masks: class c above thresholds[c], components
    (8-connected) smaller than min_sizes[c] dropped."""
    from scipy import ndimage

    probabilities = _checked(probabilities, "probabilities")
    _per_class(thresholds, min_sizes, probabilities.shape[-1])
    out = np.zeros(probabilities.shape, dtype=np.uint8)
    for c, (threshold, min_size) in enumerate(zip(thresholds, min_sizes)):
        for i in range(len(probabilities)):
            labels, _ = ndimage.label(probabilities[i, ..., c] > threshold, structure=EIGHT_CONNECTED)
            sizes = np.bincount(labels.ravel())
            keep = sizes >= max(int(min_size), 1)
            keep[0] = False
            out[i, ..., c] = keep[labels]
    return out


def masks_at_size(probabilities: np.ndarray, height: int, width: int, thresholds: Sequence[float],
                  min_sizes: Sequence[int], exclusive: bool = False) -> np.ndarray:
    """(S, S, C) probabilities at the model's size -> (height, width, C) uint8 masks of the image: each class
    resized (bilinear), above its threshold, components smaller than its min size dropped (min sizes were chosen
    in model pixels, so they are scaled by the area ratio); exclusive classes: a pixel above two thresholds
    goes to the likelier class."""
    from scipy import ndimage

    probabilities = np.asarray(probabilities, dtype=np.float32)
    _per_class(thresholds, min_sizes, probabilities.shape[-1])
    scale = height * width / float(probabilities.shape[0] * probabilities.shape[1])
    resized = np.stack([resize_plane(probabilities[..., c], height, width)
                        for c in range(probabilities.shape[-1])], axis=-1)
    out = np.zeros(resized.shape, dtype=np.uint8)
    for c, (threshold, min_size) in enumerate(zip(thresholds, min_sizes)):
        labels, _ = ndimage.label(resized[..., c] > threshold, structure=EIGHT_CONNECTED)
        keep = np.bincount(labels.ravel()) >= max(int(round(min_size * scale)), 1)
        keep[0] = False
        out[..., c] = keep[labels]
    if exclusive and out.shape[-1] > 1:
        likeliest = np.where(out.astype(bool), resized, -1.0).argmax(axis=-1)
        out = out * (np.arange(out.shape[-1]) == likeliest[..., None])
    return out


def choose_postprocess(probabilities: np.ndarray, truth: np.ndarray, folds: Sequence[int],
                       thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                       min_sizes: Sequence[int] = DEFAULT_MIN_SIZES) -> ClassPostprocess:
    """Per class, the (threshold, min size) of the grids that maximise the mean Dice over pairs: per fold on the
    other folds' OOF (scored on the held-out fold), and on all rows for the test set.

    probabilities, truth: (N, H, W, C) OOF probabilities and 0/1 masks; folds: (N,) the fold each row was held
    out in (at least two folds)."""
    probabilities, truth = _checked(probabilities, "OOF probabilities"), _checked(truth, "true masks")
    folds = np.asarray(folds)
    if truth.shape != probabilities.shape or folds.shape != (len(truth),):
        raise PodiumError("OOF probabilities, masks and folds do not line up.",
                          expected="(N, H, W, C) probabilities and masks, (N,) folds",
                          received=f"{probabilities.shape}, {truth.shape}, {folds.shape}",
                          fix="pass the OOF rows in the order of their masks and folds")
    fold_ids = sorted(set(folds.tolist()))
    if len(fold_ids) < 2:
        raise PodiumError("Post-processing chosen honestly needs at least two folds.", expected="two folds or more",
                          received=f"folds {fold_ids}", fix="choose on the OOF of a k-fold run")
    table = dice_table(probabilities, truth, thresholds, min_sizes)  # (N, C, T, M)
    per_fold, honest = {}, np.zeros((len(truth), truth.shape[-1]))
    for fold in fold_ids:
        held = folds == fold
        t_index, m_index = _best(table[~held])
        per_fold[int(fold)] = _values(thresholds, min_sizes, t_index, m_index)
        classes = np.arange(truth.shape[-1])
        honest[held] = table[held][:, classes, t_index, m_index]
    chosen = _values(thresholds, min_sizes, *_best(table))
    return ClassPostprocess(chosen[0], chosen[1], per_fold, float(honest.mean()),
                            mean_dice_pairs(truth, probabilities))


def dice_table(probabilities: np.ndarray, truth: np.ndarray, thresholds: Sequence[float],
               min_sizes: Sequence[int]) -> np.ndarray:
    """(N, C, T, M): the Dice of each image–class pair at each threshold and minimum component size. Each
    (pair, threshold) is labelled once; every min size is then a sum over the components it keeps."""
    from scipy import ndimage

    n, classes = len(truth), truth.shape[-1]
    sizes_grid = np.asarray(min_sizes, dtype=np.int64)
    table = np.zeros((n, classes, len(thresholds), len(sizes_grid)))
    for i in range(n):
        for c in range(classes):
            true = truth[i, ..., c] > 0.5
            true_sum = int(true.sum())
            for t, threshold in enumerate(thresholds):
                labels, _ = ndimage.label(probabilities[i, ..., c] > threshold, structure=EIGHT_CONNECTED)
                sizes = np.bincount(labels.ravel())[1:]
                hits = np.bincount(labels.ravel(), weights=true.ravel(), minlength=len(sizes) + 1)[1:]
                kept = sizes[None, :] >= np.maximum(sizes_grid, 1)[:, None]  # (M, components)
                predicted, both = kept @ sizes, kept @ hits
                total = predicted + true_sum
                table[i, c, t] = np.where(total == 0, 1.0, 2.0 * both / np.maximum(total, 1))
    return table


def _best(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per class, the (threshold, min size) indices of the highest mean over images (first on ties)."""
    means = table.mean(axis=0)  # (C, T, M)
    flat = means.reshape(len(means), -1).argmax(axis=1)
    return np.unravel_index(flat, means.shape[1:])


def _values(thresholds, min_sizes, t_index, m_index) -> tuple[tuple[float, ...], tuple[int, ...]]:
    return (tuple(float(thresholds[t]) for t in t_index), tuple(int(min_sizes[m]) for m in m_index))


def _per_class(thresholds: Sequence[float], min_sizes: Sequence[int], classes: int) -> None:
    if len(thresholds) != classes or len(min_sizes) != classes:
        raise PodiumError("Post-processing needs one threshold and one minimum size per class.",
                          expected=f"{classes} of each", received=f"{len(thresholds)} and {len(min_sizes)}",
                          fix="use the values choose_postprocess returned for these classes")


def _checked(masks: np.ndarray, name: str) -> np.ndarray:
    masks = np.asarray(masks)
    if masks.ndim != 4 or len(masks) == 0:
        raise PodiumError(f"{name} are not a batch of masks with one channel per class.",
                          expected="(N, H, W, C) with N >= 1", received=str(masks.shape),
                          fix="stack the images' masks, classes last")
    if np.issubdtype(masks.dtype, np.floating) and not np.all(np.isfinite(masks)):
        raise PodiumError(f"{name} hold NaN or infinite values.", expected="finite probabilities",
                          received=f"{int((~np.isfinite(masks)).sum())} values not finite",
                          fix="remake the predictions; a NaN usually means the training diverged")
    return masks
