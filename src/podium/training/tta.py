"""Test-time augmentation: fixed, named, deterministic views of a batch, and the averaging loop.

Each view is a pure keras.ops function of a float32 (B,S,S,3) batch, so TTA runs on the accelerator
under any backend and gives the same answer every time (a random "TTA" is noise, not an ensemble).
The shifted views are the "shifted crops" of airbench/fastai: translate by ~S/8 with reflect padding
and crop back to S, so no black borders the model never saw in training.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import keras
import numpy as np
from keras import ops

from podium import catalog
from podium.errors import PodiumError
from podium.training import orientation

ZOOM_FRACTION = 0.875  # zoom views keep/shrink to 7/8 of the side, the same ~S/8 as the shifts


def shift_pixels(image_size: int) -> int:
    """~S/8, at least 1 and less than S (reflect padding needs pad < S)."""
    return min(max(1, round(image_size / 8)), max(1, image_size - 1))


def _zoom_side(image_size: int) -> int:
    return min(max(1, round(image_size * ZOOM_FRACTION)), max(1, image_size - 1))


def _size(images) -> int:
    return int(images.shape[1])


def identity(images):
    return ops.cast(images, "float32")


def hflip(images):
    return ops.flip(ops.cast(images, "float32"), axis=2)


def _oriented(name: str) -> Callable[[Any], Any]:
    """A flip, quarter turn or transpose of the square batch (podium.training.orientation): for top-down
    images, where no side is up."""

    def view(images):
        return orientation.orient(ops.cast(images, "float32"), name)

    view.__name__ = name
    view.__doc__ = f"The batch in orientation {name!r} (podium.training.orientation)."
    return view


vflip, rot90, rot180, rot270, transpose = (_oriented(name) for name in
                                           ("vflip", "rot90", "rot180", "rot270", "transpose"))


def _shift(images, rows: int, cols: int):
    """Move content by (rows, cols) pixels (positive = down/right), filling the gap by reflection."""
    images = ops.cast(images, "float32")
    size, pad = _size(images), shift_pixels(_size(images))
    padded = ops.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="reflect")
    top, left = pad - rows, pad - cols
    return padded[:, top:top + size, left:left + size, :]


def shift_left(images):
    return _shift(images, 0, -shift_pixels(_size(images)))


def shift_right(images):
    return _shift(images, 0, shift_pixels(_size(images)))


def shift_up(images):
    return _shift(images, -shift_pixels(_size(images)), 0)


def shift_down(images):
    return _shift(images, shift_pixels(_size(images)), 0)


def zoom_in(images):
    """Central ~87.5% crop resized back to S: what a model trained with zoom/crop often sees."""
    images = ops.cast(images, "float32")
    size = _size(images)
    side = _zoom_side(size)
    start = (size - side) // 2
    centre = images[:, start:start + side, start:start + side, :]
    return ops.cast(ops.image.resize(centre, (size, size), interpolation="bilinear"), "float32")


def zoom_out(images):
    """Shrink to ~87.5% and reflect-pad back to S, so the object appears smaller, not framed in black."""
    images = ops.cast(images, "float32")
    size = _size(images)
    side = _zoom_side(size)
    small = ops.cast(ops.image.resize(images, (side, side), interpolation="bilinear", antialias=True),
                     "float32")
    before = (size - side) // 2
    after = size - side - before
    return ops.pad(small, [[0, 0], [before, after], [before, after], [0, 0]], mode="reflect")


VIEWS: dict[str, Callable[[Any], Any]] = {
    "identity": identity,
    "hflip": hflip,
    "vflip": vflip,
    "rot90": rot90,
    "rot180": rot180,
    "rot270": rot270,
    "transpose": transpose,
    "shift_left": shift_left,
    "shift_right": shift_right,
    "shift_up": shift_up,
    "shift_down": shift_down,
    "zoom_in": zoom_in,
    "zoom_out": zoom_out,
}


def view_names() -> list[str]:
    return list(catalog.TTA_VIEWS)  # VIEWS' keys (tests/test_catalog.py)


def apply_view(name: str, images):
    """One named view of a float32 (B,S,S,3) batch; returns a backend tensor of the same shape."""
    _check_views([name])
    shape = tuple(images.shape)
    if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 3:
        raise PodiumError("A TTA view needs a batch of square RGB images.",
                          expected="(batch, S, S, 3) float32 pixels 0..255", received=str(shape),
                          fix="pass whole batches from the prediction pipeline")
    return VIEWS[name](ops.convert_to_tensor(images, dtype="float32"))


# A dense prediction (a mask) made on a moved image must be moved back before averaging, or the
# average blurs two different places together. Zooms lose the border, so they have no exact inverse.
# A quarter turn is undone by the opposite turn; flips and the transpose undo themselves.
UNDO: dict[str, Callable[[Any], Any]] = {
    "identity": identity,
    "hflip": hflip,
    "vflip": vflip,
    "rot90": rot270,
    "rot180": rot180,
    "rot270": rot90,
    "transpose": transpose,
    "shift_left": shift_right,
    "shift_right": shift_left,
    "shift_up": shift_down,
    "shift_down": shift_up,
}


def undo_view(name: str, predictions: np.ndarray) -> np.ndarray:
    """Map a (B,S,S,C) prediction made on view `name` back onto the original image's pixels."""
    if name not in UNDO:
        raise PodiumError(f"TTA view {name!r} cannot be undone on a mask.", expected=f"one of: {', '.join(UNDO)}",
                          received=repr(name), fix="drop zoom views from tta for segmentation")
    return np.asarray(ops.convert_to_numpy(UNDO[name](ops.convert_to_tensor(predictions, dtype="float32"))))


def predict_tta(model: keras.Model, batches: Iterable, views: Sequence[str],
                invert: Callable[[str, np.ndarray], np.ndarray] | None = None
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Average a model's probabilities over views; rows keep the order of `batches` (never shuffled).

    `batches` yields x or (x, y, ...) in order: a list, a generator or a finite keras PyDataset.
    Returns (mean over views (N,C), {view: probs (N,C)}). `invert(view, predictions)` maps each view's
    predictions back to the original frame first (masks, boxes); class probabilities need none.
    """
    views = list(views)
    _check_views(views)
    if not views:
        raise PodiumError("No TTA views were given.", expected=f"one or more of: {', '.join(VIEWS)}",
                          received="[]", fix="use tta=[identity] for plain prediction")
    per_view: dict[str, list[np.ndarray]] = {name: [] for name in views}
    for batch in _iterate(batches):
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        for name in views:
            probs = model.predict_on_batch(apply_view(name, images))
            probs = np.asarray(ops.convert_to_numpy(probs), dtype=np.float32)
            per_view[name].append(invert(name, probs) if invert is not None else probs)
    if not per_view[views[0]]:
        raise PodiumError("predict_tta received no batches.", expected="at least one batch of images",
                          received="an empty iterable", fix="check the test split is not empty")
    stacked = {name: np.concatenate(parts, axis=0) for name, parts in per_view.items()}
    mean = np.mean(np.stack([stacked[name] for name in views]), axis=0)
    return mean, stacked


def _iterate(batches: Iterable) -> Iterable:
    """An infinite PyDataset would loop forever; refuse it rather than hang."""
    if isinstance(batches, keras.utils.PyDataset) and batches.num_batches is None:
        raise PodiumError("predict_tta needs a finite dataset.", expected="a PyDataset with __len__",
                          received=type(batches).__name__, fix="give the prediction dataset a length")
    return batches


def _check_views(names: Sequence[str]) -> None:
    unknown = [name for name in names if name not in VIEWS]
    if unknown:
        raise PodiumError(f"Unknown TTA view {unknown[0]!r}.", expected=f"one of: {', '.join(VIEWS)}",
                          received=repr(unknown[0]), fix="pick tta names from the expected list")
