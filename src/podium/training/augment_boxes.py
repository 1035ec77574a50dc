"""Augmentation that moves every box of an image with it: detection's (B, M, 5) targets.

The transforms are the ones a box survives exactly (as training.augment_pairs.BoxAugmenter does for one box):
a left-right or upside-down flip, a quarter turn of the square image (podium.training.orientation), and
"crop" as a shift (pad by ~S/8 with grey, crop back to S at a per-image offset, every box moved by the same
offset and clipped to the image). A shift can push a box mostly out of the frame: one whose visible part is
under MIN_VISIBLE of its area, or was cut to under MIN_SIDE_PX on a side, becomes padding, since a sliver
at the border teaches the detector to fire on nothing. Padding rows (class -1) stay all -1, and the rows
that remain boxes come first, in their order. keras.ops only, one whole-batch op per step.
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import ops

from podium.errors import PodiumError
from podium.training import orientation
from podium.training.augment_layers import FLOAT, ROT90_CHOICES, VFLIP_CHOICES, crop_pad, gather_rows

MULTI_BOX_RECIPES = ("flip", "vflip", "rot90", "crop")  # what every box of an image survives exactly
BOX_FILL = 127.5  # grey: neither the dark nor the bright end of the pixel range
MIN_VISIBLE = 0.3  # a shifted box keeping less of its area than this becomes padding
MIN_SIDE_PX = 2.0  # ... and so does a cut box narrower or lower than this, in pixels of the input


class MultiBoxAugmenter:
    """(images (B,S,S,3) 0..255, targets (B,M,5) `[x1, y1, x2, y2, class]` in 0..1, padding -1) -> the same
    as numpy, each image flipped (flip, vflip), turned (rot90) and/or shifted (crop) with its boxes."""

    def __init__(self, names: Sequence[str], image_size: int, seed: int):
        unsupported = [name for name in names if name not in MULTI_BOX_RECIPES]
        if unsupported:
            raise PodiumError(f"Augmentation {unsupported[0]!r} cannot move detection boxes with the image.",
                              expected=f"recipes among: {', '.join(MULTI_BOX_RECIPES)}", received=str(list(names)),
                              fix=f"set augment= to a subset of [{', '.join(MULTI_BOX_RECIPES)}] for task=detection")
        self.image_size = int(image_size)
        self.flip, self.pad, self.orientations = box_recipes(names, image_size)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def __call__(self, images, targets):
        images = ops.convert_to_tensor(images, dtype=FLOAT)
        targets = ops.convert_to_tensor(targets, dtype=FLOAT)
        boxes, classes = targets[..., :4], targets[..., 4]
        batch = ops.shape(images)[0]
        if self.flip:
            flip = keras.random.uniform((batch,), seed=self.seed_generator) < 0.5
            images = ops.where(flip[:, None, None, None], ops.flip(images, axis=2), images)
            mirrored = ops.stack([1.0 - boxes[..., 2], boxes[..., 1], 1.0 - boxes[..., 0], boxes[..., 3]], axis=-1)
            boxes = ops.where(flip[:, None, None], mirrored, boxes)
        for choices in self.orientations:
            flags = orientation.random_flags(batch, list(choices), self.seed_generator)
            images = orientation.orient_where(images, *flags)
            boxes = orientation.orient_boxes_where(boxes, *(flag[:, None] for flag in flags))
        keep = classes >= 0
        if self.pad:
            images, moved = self._shift(images, boxes)
            keep = ops.logical_and(keep, self._visible(boxes, moved))
            boxes = moved
        out = ops.where(keep[..., None], ops.concatenate([boxes, classes[..., None]], axis=-1), -1.0)
        return ops.convert_to_numpy(images), ops.convert_to_numpy(_boxes_first(out, keep))

    def _shift(self, images, boxes):
        """Each image moved by a random offset within +-pad pixels (grey fill), its boxes moved and clipped."""
        shifted, dx, dy = random_shift(images, self.pad, self.seed_generator)
        return shifted, ops.clip(boxes + ops.stack([dx, dy, dx, dy], axis=1)[:, None, :], 0.0, 1.0)

    def _visible(self, before, after):
        """(B, M) true where the clipped box keeps enough of itself: MIN_VISIBLE of its area and, if it was
        cut, MIN_SIDE_PX on each side."""
        size_before = ops.maximum(before[..., 2:] - before[..., :2], 0.0)
        size_after = ops.maximum(after[..., 2:] - after[..., :2], 0.0)
        area_before, area_after = ops.prod(size_before, axis=-1), ops.prod(size_after, axis=-1)
        cut = area_after < area_before * (1.0 - 1e-6)
        thin = ops.min(size_after, axis=-1) * float(self.image_size) < MIN_SIDE_PX
        enough = area_after >= MIN_VISIBLE * area_before
        return ops.logical_and(enough, ops.logical_not(ops.logical_and(cut, thin)))


def box_recipes(names: Sequence[str], image_size: int) -> tuple[bool, int, list[tuple[str, ...]]]:
    """(flip left-right?, the shift's pad in pixels or 0, the orientation choices drawn in turn) of `names`."""
    pad = crop_pad(image_size) if "crop" in names else 0
    orientations = [choices for name, choices in (("vflip", VFLIP_CHOICES), ("rot90", ROT90_CHOICES)) if name in names]
    return "flip" in names, pad, orientations


def random_shift(images, pad: int, seed_generator):
    """(shifted images, dx, dy): each image of the batch padded by `pad` with grey and cropped back to its size
    at a random offset, so its content moves by (dx, dy) fractions of the side, each (B,), in -pad..pad pixels.
    Grey, not reflect padding: a mirrored copy of an object at the border would be an object without a box."""
    batch, height, width, _ = ops.shape(images)
    padded = ops.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], constant_values=BOX_FILL)
    offsets = keras.random.randint((batch, 2), 0, 2 * pad + 1, seed=seed_generator)  # (row, col)
    rows_first = gather_rows(padded, offsets[:, 0], height)
    shifted = ops.transpose(gather_rows(ops.transpose(rows_first, (0, 2, 1, 3)), offsets[:, 1], width), (0, 2, 1, 3))
    # the crop starts at offset in padded pixels, so content moves by (pad - offset) pixels
    dx = ops.cast(pad - offsets[:, 1], FLOAT) / ops.cast(width, FLOAT)
    dy = ops.cast(pad - offsets[:, 0], FLOAT) / ops.cast(height, FLOAT)
    return shifted, dx, dy


def _boxes_first(targets, keep):
    """The kept rows of each image first, in their order, then the padding (a per-image stable reorder)."""
    m = ops.shape(targets)[1]
    position = ops.arange(m, dtype="int32")[None, :]
    key = ops.where(keep, position, position + m)
    order = ops.argsort(key, axis=-1)
    return ops.take_along_axis(targets, order[..., None], axis=1)
