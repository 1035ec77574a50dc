"""The symmetries of a square image — flips, quarter turns, the transpose — as whole-batch keras.ops, on
images, masks and boxes alike, so an augment, a TTA view and the inverse that undoes it on a target are
one definition.

Top-down images (plants, satellites, cells, X-rays) have no "up": every one of these is a fair augment and
a fair TTA view. Each is an optional transpose, then an optional flip of the rows (upside down), then of the
columns (left-right); that triple is all an image, a mask (more channels, same pixels) or a box (x1, y1,
x2, y2 in 0..1 of the side) needs, and per-image random picks are three `where`s over the batch (no
per-image Python, no tf.data layer: docs/speed.md). Batches are square (B, S, S, C), so every one is exact.
"""

from __future__ import annotations

import keras
from keras import ops

# name: (transpose, flip rows, flip columns), applied in that order. rot90 is a quarter turn counter-clockwise
# (numpy's rot90 on the image plane).
ORIENTATIONS: dict[str, tuple[bool, bool, bool]] = {
    "identity": (False, False, False),
    "hflip": (False, False, True),
    "vflip": (False, True, False),
    "rot90": (True, True, False),
    "rot180": (False, True, True),
    "rot270": (True, False, True),
    "transpose": (True, False, False),
}
INVERSE = {"identity": "identity", "hflip": "hflip", "vflip": "vflip", "rot90": "rot270", "rot180": "rot180",
           "rot270": "rot90", "transpose": "transpose"}


def orient(images, name: str):
    """One named orientation of a (B, S, S, C) batch (any C: a mask rides as extra channels)."""
    transpose, rows, cols = ORIENTATIONS[name]
    if transpose:
        images = ops.transpose(images, (0, 2, 1, 3))
    if rows:
        images = ops.flip(images, axis=1)
    if cols:
        images = ops.flip(images, axis=2)
    return images


def orient_boxes(boxes, name: str):
    """The same orientation on boxes (..., 4) = x1, y1, x2, y2 in 0..1 of the square's side."""
    transpose, rows, cols = ORIENTATIONS[name]
    return _boxes_where(boxes, *(ops.convert_to_tensor(flag) for flag in (transpose, rows, cols)))


def random_flags(batch, choices: list[str], seed_generator) -> tuple:
    """Per image, one of `choices` drawn uniformly: its (transpose, rows, cols) as three (B,) boolean tensors."""
    table = ops.convert_to_tensor([[int(flag) for flag in ORIENTATIONS[name]] for name in choices], dtype="int32")
    picks = keras.random.randint((batch,), 0, len(choices), seed=seed_generator)
    flags = ops.take(table, picks, axis=0) > 0  # (B, 3)
    return flags[:, 0], flags[:, 1], flags[:, 2]


def orient_where(images, transpose, rows, cols):
    """Each image of the batch in its own orientation, given per-image booleans (random_flags)."""
    images = ops.where(transpose[:, None, None, None], ops.transpose(images, (0, 2, 1, 3)), images)
    images = ops.where(rows[:, None, None, None], ops.flip(images, axis=1), images)
    return ops.where(cols[:, None, None, None], ops.flip(images, axis=2), images)


def orient_boxes_where(boxes, transpose, rows, cols):
    """Each (B, 4) box moved with its image (orient_where's flags)."""
    return _boxes_where(boxes, transpose, rows, cols)


def _boxes_where(boxes, transpose, rows, cols):
    x1, y1, x2, y2 = (boxes[..., k] for k in range(4))
    x1, y1, x2, y2 = (ops.where(transpose, y1, x1), ops.where(transpose, x1, y1),
                      ops.where(transpose, y2, x2), ops.where(transpose, x2, y2))
    y1, y2 = ops.where(rows, 1.0 - y2, y1), ops.where(rows, 1.0 - y1, y2)
    x1, x2 = ops.where(cols, 1.0 - x2, x1), ops.where(cols, 1.0 - x1, x2)
    return ops.stack([x1, y1, x2, y2], axis=-1)
