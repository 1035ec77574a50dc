"""Ellipse-and-rectangle images: a known problem for tests, demos and the pruning experiment.

The ellipse is the object ("ship"), the rectangle a distractor of the *same* colour, both on per-pixel
noise. Sea and objects draw from overlapping ranges (0..0.75 and 0.25..1.0, which one is the sea is a
coin flip per image), so neither colour nor brightness gives the answer away: only shape does. Being
generated, its statistics are known and it carries none of the leaks real data has (why the pruning experiment uses it).
Everything is drawn from one numpy Generator, so a seed gives the same set on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from podium.errors import PodiumError

# the original pruning experiment's w_size and radius_min/max; radii scale with the size
SEED_SIZE, SEED_RADIUS = 128, (10, 20)


@dataclass
class ShapeSet:
    images: np.ndarray  # (N,S,S,3) uint8 0..255, what every podium model takes
    masks: np.ndarray  # (N,S,S,1) uint8 0/1: the ellipse only, never the rectangle
    boxes: np.ndarray  # (N,4) float32 ellipse box x1,y1,x2,y2 in 0..1 of the side; zeros without an ellipse
    has_object: np.ndarray  # (N,) int 0/1: an ellipse is present (a classification label)
    bright: np.ndarray  # (N,) int 0/1: objects brighter than the sea (the other coin flip per image)

    def __len__(self) -> int:
        return len(self.images)


def make_shapes(n: int, size: int = 64, seed: int = 0, object_probability: float = 1.0) -> ShapeSet:
    """n image/mask pairs; each has a rectangle, and an ellipse with `object_probability`."""
    if n < 1 or size < 16:
        raise PodiumError("make_shapes needs at least one image of at least 16 pixels.",
                          expected="n >= 1, size >= 16", received=f"n={n}, size={size}", fix="raise n or size")
    rng = np.random.default_rng(seed)
    radius = (SEED_RADIUS[0] * size / SEED_SIZE, SEED_RADIUS[1] * size / SEED_SIZE)
    images = np.zeros((n, size, size, 3), np.uint8)
    masks = np.zeros((n, size, size, 1), np.uint8)
    boxes = np.zeros((n, 4), np.float32)
    has_object = (rng.random(n) < object_probability).astype(int)
    bright = (rng.random(n) < 0.5).astype(int)
    rows, cols = np.mgrid[0:size, 0:size]
    for i in range(n):
        dark_noise = rng.random((size, size, 3)) * 0.75
        light_noise = rng.random((size, size, 3)) * 0.75 + 0.25
        ellipse = _ellipse(rng, rows, cols, size, radius) if has_object[i] else np.zeros((size, size), bool)
        rectangle = _rectangle_apart(rng, ellipse, size, radius)
        sea, objects = (dark_noise, light_noise) if bright[i] else (light_noise, dark_noise)
        picture = np.where((ellipse | rectangle)[..., None], objects, sea)
        images[i] = np.clip(np.rint(picture * 255), 0, 255).astype(np.uint8)
        masks[i, ..., 0] = ellipse
        boxes[i] = mask_box(ellipse)
    return ShapeSet(images, masks, boxes, has_object, bright)


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """The tight box x1, y1, x2, y2 of a 2-D mask as fractions of its width and height; zeros if empty."""
    if not mask.any():
        return (0.0, 0.0, 0.0, 0.0)
    height, width = mask.shape
    ys, xs = np.nonzero(mask)
    return (xs.min() / width, ys.min() / height, (xs.max() + 1) / width, (ys.max() + 1) / height)


def _ellipse(rng, rows, cols, size, radius) -> np.ndarray:
    """A filled, rotated ellipse kept inside the image, as the original experiment's skimage.draw.ellipse
    call draws it."""
    low, high = radius
    centre_r, centre_c = rng.random(2) * (size - 2 * high) + high
    radius_r, radius_c = rng.random(2) * (high - low) + low
    angle = np.deg2rad(rng.random() * 360)
    dr, dc = rows - centre_r, cols - centre_c
    along = dr * np.cos(angle) + dc * np.sin(angle)
    across = -dr * np.sin(angle) + dc * np.cos(angle)
    return (along / radius_r) ** 2 + (across / radius_c) ** 2 <= 1.0


def _rectangle_apart(rng, ellipse: np.ndarray, size: int, radius, attempts: int = 50) -> np.ndarray:
    """An axis-aligned rectangle that does not touch the ellipse (the original experiment shifts it aside;
    we redraw)."""
    low, high = radius
    near_ellipse = _dilate(ellipse)
    for _ in range(attempts):
        top, left = np.rint(rng.random(2) * (size - 2 * high) + high).astype(int)
        height, width = np.rint(rng.random(2) * (2 * high - low) + low).astype(int)
        rectangle = np.zeros((size, size), bool)
        rectangle[top:top + height, left:left + width] = True
        if not (rectangle & near_ellipse).any():
            return rectangle
    return np.zeros((size, size), bool)  # no room: an image without distractor beats a merged shape


def _dilate(mask: np.ndarray) -> np.ndarray:
    """One pixel of margin, so the distractor never forms one connected component with the object."""
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= grown[:, :-1].copy()
    grown[:, :-1] |= grown[:, 1:].copy()
    return grown
