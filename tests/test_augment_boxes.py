"""MultiBoxAugmenter on real pixels: every box drawn as a bright rectangle on a dark image is still exactly
over its moved box after each recipe; padding rows stay -1; a box the shift pushes mostly out becomes padding."""

from __future__ import annotations

import numpy as np
import pytest

from podium.errors import PodiumError
from podium.training.augment_boxes import MIN_VISIBLE, MultiBoxAugmenter

SIZE = 64


def _drawn(seed: int, batch: int = 8, slots: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Dark images with 1..slots-1 bright, non-overlapping rectangles each, on whole pixels; the rest padding."""
    rng = np.random.default_rng(seed)
    images = np.full((batch, SIZE, SIZE, 3), 10.0, np.float32)
    targets = np.full((batch, slots, 5), -1.0, np.float32)
    for b in range(batch):
        for k in range(rng.integers(1, slots)):
            left, top = 4 + 20 * k, int(rng.integers(4, 40))  # columns apart: no overlap
            width, height = int(rng.integers(6, 14)), int(rng.integers(6, 20))
            images[b, top:top + height, left:left + width] = 250.0
            targets[b, k] = [left / SIZE, top / SIZE, (left + width) / SIZE, (top + height) / SIZE, k]
    return images, targets


def _bright_boxes(image: np.ndarray, targets: np.ndarray) -> None:
    """Each real box covers bright pixels only, and every bright pixel lies in a box."""
    bright = image[..., 0] > 200
    covered = np.zeros_like(bright)
    for x1, y1, x2, y2, cls in targets:
        if cls < 0:
            assert (np.array([x1, y1, x2, y2]) == -1).all()
            continue
        c1, r1, c2, r2 = (int(round(v * SIZE)) for v in (x1, y1, x2, y2))
        assert c2 > c1 and r2 > r1
        assert bright[r1:r2, c1:c2].all()
        covered[r1:r2, c1:c2] = True
    assert not (bright & ~covered).any()


@pytest.mark.parametrize("recipe", ["flip", "vflip", "rot90", "crop"])
def test_each_recipe_moves_every_box_with_its_pixels(recipe):
    images, targets = _drawn(seed=1)
    augmenter = MultiBoxAugmenter([recipe], SIZE, seed=3)
    changed = False
    for _ in range(3):
        out_images, out_targets = augmenter(images, targets)
        assert out_images.shape == images.shape and out_targets.shape == targets.shape
        assert isinstance(out_targets, np.ndarray) and out_targets.dtype == np.float32
        for image, rows in zip(out_images, out_targets):
            _bright_boxes(image, rows)
        changed = changed or not np.array_equal(out_targets, targets)
        kept = (out_targets[..., 4] >= 0).sum(axis=1)
        if recipe != "crop":
            np.testing.assert_array_equal(kept, (targets[..., 4] >= 0).sum(axis=1))  # nothing lost
    assert changed


def test_recipes_chained_keep_boxes_on_their_pixels_and_padding_last():
    images, targets = _drawn(seed=2, batch=16)
    out_images, out_targets = MultiBoxAugmenter(["flip", "vflip", "rot90", "crop"], SIZE, seed=0)(images, targets)
    for image, rows in zip(out_images, out_targets):
        _bright_boxes(image, rows)
        real = rows[:, 4] >= 0
        assert not (~real[:-1] & real[1:]).any()  # boxes first, then padding


def test_a_box_shifted_mostly_out_of_the_image_becomes_padding():
    """A box at the right edge, 6 px wide: a shift of 5-8 px right leaves under 30% of it (the shift is at most
    SIZE/8 = 8 px); a big centred box always stays."""
    images = np.full((64, SIZE, SIZE, 3), 10.0, np.float32)
    edge = [(SIZE - 6) / SIZE, 0.25, 1.0, 0.5, 0]
    centre = [0.3, 0.3, 0.7, 0.7, 1]
    targets = np.tile(np.array([edge, centre, [-1] * 5], np.float32), (64, 1, 1))
    _, out = MultiBoxAugmenter(["crop"], SIZE, seed=5)(images, targets)
    centre_kept = (out[..., 4] == 1).any(axis=1)
    edge_kept = (out[..., 4] == 0).any(axis=1)
    assert centre_kept.all()
    assert (~edge_kept).any() and edge_kept.any()
    for rows in out[edge_kept]:
        x1, _, x2, _ = rows[rows[:, 4] == 0][0, :4]
        assert (x2 - x1) * SIZE >= MIN_VISIBLE * 6 - 1e-4
    assert (out[~edge_kept][:, 1:] == -1).all()  # the lost box's row is padding, moved behind the kept one


def test_a_recipe_that_cannot_move_boxes_exactly_is_refused():
    with pytest.raises(PodiumError, match="cannot move detection boxes"):
        MultiBoxAugmenter(["flip", "rotation"], SIZE, seed=0)
