"""Augmentation that moves the target with the image: masks for segmentation, boxes for localization.

A mask rides through the same Keras layers as a fourth channel of the image, so every geometric
recipe (flip, crop, rotation, zoom, translation) moves pixels and mask by the same random transform by
construction; interpolation blurs its edge, and thresholding at half restores a binary mask. Colour
recipes would recolour the mask and mixing recipes have no meaning for a mask: both are refused.
Boxes get the transforms a box survives exactly: a horizontal or vertical flip, a quarter turn of the square
image (podium.training.orientation moves the box with it), and "crop" as a shift (pad by
~S/8 with grey, crop back to S at a per-image offset, the box moved by the same offset and clipped).
Reflect padding, which the image-only crop uses, would mirror a copy of the object into the frame.
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import ops

from podium.training import augment_boxes, orientation
from podium.training.augment import BATCH_RECIPES, VALUE_RANGE
from podium.training.augment_layers import FLOAT, derive_seed
from podium.errors import PodiumError
from podium.task_keys import TASK_KEYS

GEOMETRIC_RECIPES = TASK_KEYS["segmentation"].augments  # what a mask rides through exactly
BOX_RECIPES = TASK_KEYS["localization"].augments  # what a box survives exactly


class MaskAugmenter:
    """(images (B,S,S,3) 0..255, masks (B,S,S,1) 0/1) -> the same, one transform per image for both."""

    def __init__(self, names: Sequence[str], image_size: int, seed: int):
        _check_supported(names, GEOMETRIC_RECIPES, "segmentation")
        self.layers = [BATCH_RECIPES[name].build(image_size, derive_seed(seed, i)) for i, name in enumerate(names)]

    def __call__(self, images, masks):
        stacked = ops.concatenate([ops.cast(images, FLOAT), ops.cast(masks, FLOAT) * 255.0], axis=-1)
        for layer in self.layers:
            stacked = layer(stacked, training=True)
        images = ops.clip(stacked[..., :3], *VALUE_RANGE)
        masks = ops.cast(stacked[..., 3:] > 127.5, FLOAT)
        return ops.convert_to_numpy(images), ops.convert_to_numpy(masks)


class BoxAugmenter:
    """Flip half the images left-right (flip) or upside down (vflip), turn each by a random quarter (rot90),
    and/or shift each image (crop), moving its box the same way.

    targets are (B, C + 4), the box xyxy in 0..1 of the image side."""

    def __init__(self, names: Sequence[str], image_size: int, seed: int):
        _check_supported(names, BOX_RECIPES, "localization")
        self.flip, self.pad, self.orientations = augment_boxes.box_recipes(names, image_size)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def __call__(self, images, targets):
        images = ops.convert_to_tensor(images, dtype=FLOAT)
        targets = ops.convert_to_tensor(targets, dtype=FLOAT)
        if self.flip:
            flip = keras.random.uniform((ops.shape(images)[0],), seed=self.seed_generator) < 0.5
            images = ops.where(flip[:, None, None, None], ops.flip(images, axis=2), images)
            targets = ops.where(flip[:, None], flip_box_targets(targets), targets)
        for choices in self.orientations:
            flags = orientation.random_flags(ops.shape(images)[0], list(choices), self.seed_generator)
            images = orientation.orient_where(images, *flags)
            moved = orientation.orient_boxes_where(targets[:, -4:], *flags)
            targets = ops.concatenate([targets[:, :-4], moved], axis=1)
        if self.pad:
            images, targets = self._shift(images, targets)
        return ops.convert_to_numpy(images), ops.convert_to_numpy(targets)

    def _shift(self, images, targets):
        shifted, dx, dy = augment_boxes.random_shift(images, self.pad, self.seed_generator)
        head, box = targets[:, :-4], targets[:, -4:]
        moved = ops.clip(box + ops.stack([dx, dy, dx, dy], axis=1), 0.0, 1.0)
        return shifted, ops.concatenate([head, moved], axis=1)


def flip_box_targets(targets):
    """Mirror the last four columns (x1, y1, x2, y2 in 0..1) left-right; class columns are untouched."""
    head, box = targets[:, :-4], targets[:, -4:]
    mirrored = ops.stack([1.0 - box[:, 2], box[:, 1], 1.0 - box[:, 0], box[:, 3]], axis=1)
    return ops.concatenate([head, mirrored], axis=1)


def _check_supported(names: Sequence[str], supported: Sequence[str], task: str) -> None:
    unsupported = [name for name in names if name not in supported]
    if unsupported:
        raise PodiumError(f"Augmentation {unsupported[0]!r} cannot move a {task} target with the image.",
                          expected=f"recipes among: {', '.join(supported)}", received=str(list(names)),
                          fix=f"set augment= to a subset of [{', '.join(supported)}] for task={task}")
