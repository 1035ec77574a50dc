"""Per-class thresholds and minimum component sizes chosen on OOF, honestly per fold, on generated masks whose
right values are known."""

from __future__ import annotations

import numpy as np
import pytest

from podium.errors import PodiumError
from podium.scoring.class_postprocess import apply_postprocess, choose_postprocess, dice_table
from podium.scoring.segmentation import dice_per_pair

THRESHOLDS, MIN_SIZES = (0.4, 0.5, 0.7), (0, 5, 50)


def _generated(n: int = 24, size: int = 20, seed: int = 0):
    """Class 0: a square at 0.6 ringed by 0.45 (threshold 0.5 is right), and on images without it, specks of one
    pixel at 0.9 (a minimum size of 5 drops them, 50 would drop the squares too). Class 1: a square at 0.8
    ringed by 0.55 (threshold 0.7), no specks (nothing to drop: min size 0). A third of the images hold
    nothing."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((n, size, size, 2), np.uint8)
    probs = np.full((n, size, size, 2), 0.05)
    for i in range(n):
        for c, (inside, ring) in enumerate(((0.6, 0.45), (0.8, 0.55))):
            if i % 3 == 0 or (i + c) % 4 == 0:  # empty pair
                if c == 0:
                    ys, xs = rng.integers(0, size, 3), rng.integers(0, size, 3)
                    probs[i, ys, xs, 0] = 0.9
                continue
            y, x, side = *rng.integers(2, size - 9, 2), int(rng.integers(4, 7))
            probs[i, y - 1:y + side + 1, x - 1:x + side + 1, c] = ring
            probs[i, y:y + side, x:x + side, c] = inside
            truth[i, y:y + side, x:x + side, c] = 1
    return probs, truth, np.arange(n) % 4


def test_the_known_threshold_and_size_are_chosen_per_class_and_score_perfectly():
    probs, truth, folds = _generated()
    chosen = choose_postprocess(probs, truth, folds, THRESHOLDS, MIN_SIZES)
    assert chosen.thresholds == (0.5, 0.7) and chosen.min_sizes == (5, 0)
    assert all(values == ((0.5, 0.7), (5, 0)) for values in chosen.per_fold.values())
    assert set(chosen.per_fold) == {0, 1, 2, 3}
    assert chosen.honest_score == pytest.approx(1.0) and chosen.plain_score < 0.9
    np.testing.assert_array_equal(apply_postprocess(probs, chosen.thresholds, chosen.min_sizes), truth)
    saved = chosen.to_dict()
    assert saved["thresholds"] == [0.5, 0.7] and saved["per_fold"]["2"]["min_sizes"] == [5, 0]


def test_the_honest_score_is_each_fold_scored_with_the_values_chosen_on_the_others():
    rng = np.random.default_rng(1)
    truth = (rng.random((12, 8, 8, 2)) > 0.8).astype(np.uint8)
    probs = np.clip(truth * 0.5 + rng.random(truth.shape) * 0.6, 0, 1)
    folds = np.arange(12) % 3
    chosen = choose_postprocess(probs, truth, folds, THRESHOLDS, MIN_SIZES)
    pairs = np.concatenate([dice_per_pair(truth[folds == f], apply_postprocess(probs[folds == f], *chosen.per_fold[f]))
                            for f in range(3)])
    assert chosen.honest_score == pytest.approx(pairs.mean())


def test_the_fast_table_equals_postprocessing_then_dice_per_pair():
    rng = np.random.default_rng(2)
    truth = (rng.random((5, 10, 10, 3)) > 0.7).astype(np.uint8)
    probs = rng.random(truth.shape)
    table = dice_table(probs, truth, THRESHOLDS, MIN_SIZES)
    for t, threshold in enumerate(THRESHOLDS):
        for k, min_size in enumerate(MIN_SIZES):
            masks = apply_postprocess(probs, [threshold] * 3, [min_size] * 3)
            np.testing.assert_allclose(table[:, :, t, k], dice_per_pair(truth, masks))


def test_bad_inputs_are_refused():
    probs, truth, folds = _generated(n=6)
    with pytest.raises(PodiumError, match="at least two folds"):
        choose_postprocess(probs, truth, np.zeros(6, int), THRESHOLDS, MIN_SIZES)
    with pytest.raises(PodiumError, match="do not line up"):
        choose_postprocess(probs, truth[..., :1], folds, THRESHOLDS, MIN_SIZES)
    with pytest.raises(PodiumError, match="one threshold and one minimum size per class"):
        apply_postprocess(probs, [0.5], [0])
    with pytest.raises(PodiumError, match="NaN"):
        choose_postprocess(np.full(probs.shape, np.nan), truth, folds)
    with pytest.raises(PodiumError, match="one channel per class"):
        apply_postprocess(probs[..., 0], [0.5], [0])
