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


# ---- multi-label: any non-empty subset of three shapes per image ------------------------------------
LABEL_SET_CLASSES = ("ellipse", "rectangle", "triangle")
LABEL_SET_RADIUS = (0.12, 0.18)  # of the side: larger than the ellipse-and-rectangle set's, so a small CNN can tell the outlines apart


def make_label_sets(n: int, size: int = 64, seed: int = 0, probability: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(images (N,S,S,3) uint8, present (N,3) 0/1 in LABEL_SET_CLASSES order): each shape is drawn with
    `probability`, an image drawing none gets one at random, and shapes never touch. Every shape has one
    colour, darker or brighter than the sea (a coin flip per image), so brightness finds objects but only
    the outline tells which: less noise than the ellipse-and-rectangle set's overlapping ranges, for a small CNN on few images."""
    if n < 1 or size < 16:
        raise PodiumError("make_label_sets needs at least one image of at least 16 pixels.",
                          expected="n >= 1, size >= 16", received=f"n={n}, size={size}", fix="raise n or size")
    rng = np.random.default_rng(seed)
    radius = (LABEL_SET_RADIUS[0] * size, LABEL_SET_RADIUS[1] * size)
    images = np.zeros((n, size, size, 3), np.uint8)
    present = np.zeros((n, len(LABEL_SET_CLASSES)), np.uint8)
    rows, cols = np.mgrid[0:size, 0:size]
    draw = (lambda: _ellipse(rng, rows, cols, size, radius), lambda: _rectangle(rng, size, radius),
            lambda: _triangle(rng, rows, cols, size, radius))
    for i in range(n):
        wanted = rng.random(len(draw)) < probability
        if not wanted.any():
            wanted[rng.integers(len(draw))] = True
        union = np.zeros((size, size), bool)
        for k in np.flatnonzero(wanted):
            shape = _apart(draw[k], union)
            if shape is not None:
                union |= shape
                present[i, k] = 1
        images[i] = _paint(rng, union)
    return images, present


def _paint(rng, union: np.ndarray) -> np.ndarray:
    """The shapes in one colour, darker or brighter than the sea (a coin flip), both on per-pixel noise."""
    size = union.shape[0]
    bright = rng.random() < 0.5
    dark_noise = rng.random((size, size, 3)) * 0.4 + 0.1
    light_noise = rng.random((size, size, 3)) * 0.4 + 0.5
    sea, objects = (dark_noise, light_noise) if bright else (light_noise, dark_noise)
    return np.clip(np.rint(np.where(union[..., None], objects, sea) * 255), 0, 255).astype(np.uint8)


def _apart(draw, union: np.ndarray, attempts: int = 50) -> np.ndarray | None:
    """A drawn shape not touching `union`; None when there is no room (the label then says it is absent)."""
    near = _dilate(union)
    for _ in range(attempts):
        shape = draw()
        if shape.any() and not (shape & near).any():
            return shape
    return None


def _rectangle(rng, size: int, radius) -> np.ndarray:
    low, high = radius
    top, left = np.rint(rng.random(2) * (size - 2 * high) + high / 2).astype(int)
    height, width = np.rint(rng.random(2) * (high - low) + low).astype(int) * 2
    rectangle = np.zeros((size, size), bool)
    rectangle[top:top + height, left:left + width] = True
    return rectangle


def _triangle(rng, rows, cols, size: int, radius) -> np.ndarray:
    """A filled, rotated equilateral triangle kept inside the image."""
    low, high = radius
    centre_r, centre_c = rng.random(2) * (size - 2 * high) + high
    r = rng.random() * (high - low) + low * 1.3
    angles = rng.random() * 2 * np.pi + np.array([0, 2 * np.pi / 3, 4 * np.pi / 3])
    corners = np.stack([centre_r + r * np.sin(angles), centre_c + r * np.cos(angles)], axis=1)
    inside = np.ones((size, size), bool)
    for k in range(3):
        (r1, c1), (r2, c2) = corners[k], corners[(k + 1) % 3]
        inside &= (c2 - c1) * (rows - r1) - (r2 - r1) * (cols - c1) >= 0
    if not inside.any():  # the other winding
        inside = np.ones((size, size), bool)
        for k in range(3):
            (r1, c1), (r2, c2) = corners[k], corners[(k + 1) % 3]
            inside &= (c2 - c1) * (rows - r1) - (r2 - r1) * (cols - c1) <= 0
    return inside


# ---- segmentation with several classes: ellipses and rectangles, each its own mask channel -----------
CLASS_MASK_CLASSES = ("ellipse", "rectangle")
CLASS_MASK_COUNTS = (0.45, 0.35, 0.2)  # P(0, 1, 2 shapes of a class): about a fifth of the images hold neither


def make_class_masks(n: int, size: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(images (N,S,S,3) uint8, masks (N,S,S,2) uint8 0/1, channel k = CLASS_MASK_CLASSES[k]): 0-2 ellipses and
    0-2 rectangles per image, never touching (a shape with no room is left out, and so absent from its mask),
    one colour darker or brighter than the sea as make_label_sets draws them."""
    if n < 1 or size < 16:
        raise PodiumError("make_class_masks needs at least one image of at least 16 pixels.",
                          expected="n >= 1, size >= 16", received=f"n={n}, size={size}", fix="raise n or size")
    rng = np.random.default_rng(seed)
    radius = (LABEL_SET_RADIUS[0] * size * 0.8, LABEL_SET_RADIUS[1] * size * 0.8)
    images = np.zeros((n, size, size, 3), np.uint8)
    masks = np.zeros((n, size, size, len(CLASS_MASK_CLASSES)), np.uint8)
    rows, cols = np.mgrid[0:size, 0:size]
    draw = (lambda: _ellipse(rng, rows, cols, size, radius), lambda: _rectangle(rng, size, radius))
    for i in range(n):
        union = np.zeros((size, size), bool)
        for k in range(len(draw)):
            for _ in range(rng.choice(len(CLASS_MASK_COUNTS), p=CLASS_MASK_COUNTS)):
                shape = _apart(draw[k], union)
                if shape is not None:
                    union |= shape
                    masks[i, ..., k] |= shape
        images[i] = _paint(rng, union)
    return images, masks


# ---- regression: how much of the image one ellipse covers --------------------------------------------
SHARE_RADIUS = (0.06, 0.42)  # of the side: shares from about 1% to about half the image
GRADE_EDGES = (0.08, 0.125, 0.19, 0.28)  # ordinal grades 0..4 of the share (shapes-ordinal): about a fifth each


def make_ellipse_shares(n: int, size: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(images (N,S,S,3) uint8, share (N,) float32): one filled, rotated ellipse per image, kept inside it;
    `share` is the fraction of pixels it covers (the regression target). The ellipse is one colour, darker or
    brighter than the noisy sea (a coin flip per image), so the answer is the blob's area, not a brightness."""
    if n < 1 or size < 16:
        raise PodiumError("make_ellipse_shares needs at least one image of at least 16 pixels.",
                          expected="n >= 1, size >= 16", received=f"n={n}, size={size}", fix="raise n or size")
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size, 3), np.uint8)
    share = np.zeros(n, np.float32)
    rows, cols = np.mgrid[0:size, 0:size]
    low, high = SHARE_RADIUS[0] * size, SHARE_RADIUS[1] * size
    for i in range(n):
        radius_r, radius_c = rng.random(2) * (high - low) + low
        reach = max(radius_r, radius_c)
        centre_r, centre_c = rng.random(2) * (size - 2 * reach) + reach
        angle = np.deg2rad(rng.random() * 180)
        dr, dc = rows - centre_r, cols - centre_c
        along = dr * np.cos(angle) + dc * np.sin(angle)
        across = -dr * np.sin(angle) + dc * np.cos(angle)
        ellipse = (along / radius_r) ** 2 + (across / radius_c) ** 2 <= 1.0
        bright = rng.random() < 0.5
        dark_noise = rng.random((size, size, 3)) * 0.4 + 0.1
        light_noise = rng.random((size, size, 3)) * 0.4 + 0.5
        sea, objects = (dark_noise, light_noise) if bright else (light_noise, dark_noise)
        images[i] = np.clip(np.rint(np.where(ellipse[..., None], objects, sea) * 255), 0, 255).astype(np.uint8)
        share[i] = ellipse.mean()
    return images, share


def share_grades(share: np.ndarray) -> np.ndarray:
    """The ordinal version of the share: grade 0..4 between GRADE_EDGES (as APTOS grades 0..4)."""
    return np.digitize(np.asarray(share, dtype=float), GRADE_EDGES).astype(int)


# ---- detection: 0-8 ellipses, rectangles and triangles per image, some partly covering others --------
DETECTION_CLASSES = ("ellipse", "rectangle", "triangle")
DETECTION_EXTENT = (0.04, 0.2)  # half the extent of a shape, of the side: boxes of about 8% to 40% of it
DETECTION_MAX_OBJECTS = 8
DETECTION_OVERLAP = 0.25  # the most of its own area, or of an earlier shape's, a new shape may cover


def make_detection_set(n: int, size: int = 96, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """(images (N,S,S,3) uint8, boxes: per image a (k, 5) float32 `[class, x1, y1, x2, y2]` array, fractions of
    the side, class in DETECTION_CLASSES order): 0-8 shapes of varied size per image, each in its own dark or
    bright colour on a noisy grey, later shapes drawn over earlier ones by at most DETECTION_OVERLAP of either
    (a shape with no room is left out). A box is its whole shape's, the covered part included."""
    if n < 1 or size < 32:
        raise PodiumError("make_detection_set needs at least one image of at least 32 pixels.",
                          expected="n >= 1, size >= 32", received=f"n={n}, size={size}", fix="raise n or size")
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size, 3), np.uint8)
    boxes = []
    rows, cols = np.mgrid[0:size, 0:size]
    draw = (lambda r: _ellipse(rng, rows, cols, size, (0.6 * r, r)), lambda r: _rectangle(rng, size, (0.6 * r, r)),
            lambda r: _triangle(rng, rows, cols, size, (0.6 * r, r)))
    for i in range(n):
        picture = rng.random((size, size, 3)) * 0.3 + 0.35
        shapes, found = [], []
        for _ in range(rng.integers(0, DETECTION_MAX_OBJECTS + 1)):
            k = int(rng.integers(len(draw)))
            extent = rng.uniform(*DETECTION_EXTENT) * size
            shape = _partly_over(lambda: draw[k](extent), shapes)
            if shape is None:
                continue
            shapes.append(shape)
            found.append((k, *mask_box(shape)))
            level = rng.uniform(0.05, 0.25) if rng.random() < 0.5 else rng.uniform(0.75, 0.95)
            colour = level + rng.uniform(-0.05, 0.05, 3) + (rng.random((size, size, 3)) - 0.5) * 0.1
            picture = np.where(shape[..., None], colour, picture)
        images[i] = np.clip(np.rint(picture * 255), 0, 255).astype(np.uint8)
        boxes.append(np.array(found, np.float32).reshape(-1, 5))
    return images, boxes


def _partly_over(draw, shapes: list[np.ndarray], attempts: int = 30) -> np.ndarray | None:
    """A drawn shape covering at most DETECTION_OVERLAP of itself and of each earlier shape; None: no room."""
    for _ in range(attempts):
        shape = draw()
        area = shape.sum()
        if area and all((shape & other).sum() <= DETECTION_OVERLAP * min(area, other.sum()) for other in shapes):
            return shape
    return None
