"""A detection row's PredictionString, parsed and written in the competition's format.

A format is a small record: the box format (`xywh` or `xyxy`), whether each box carries a class (always the
first field), whether the score comes before the box or after it, and what a row with no box holds. The three
Kaggle formats podium knows:

| format | one box | a row with no box |
|---|---|---|
| `global_wheat` (Global Wheat Detection) | `score x y w h` | empty |
| `vinbigdata` (VinBigData Chest X-ray) | `class score x1 y1 x2 y2` | `14 1 0 0 1 1` ("no finding") |
| `great_barrier_reef` (TensorFlow - Help Protect the Great Barrier Reef) | `conf x y w h` | empty |

Boxes are in pixels of the image. `parse` returns xyxy boxes, scores and classes (`Detections`); `write` is
its inverse (within the decimals written). A malformed string is a PodiumError naming the row id, what was
expected and what was found: a field count that is not a multiple of the box's fields, a field that is not a
number, a score outside 0..1, a class that is not a non-negative integer, a negative width or height, a box
outside the image when the image's size is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from podium.boxes import BOX_FORMATS
from podium.errors import PodiumError

BOX_FIELDS = {"xywh": ("x", "y", "w", "h"), "xyxy": ("x1", "y1", "x2", "y2")}


@dataclass(frozen=True)
class StringFormat:
    """How one box is written in a PredictionString."""

    box_format: str  # xywh or xyxy (podium.boxes.BOX_FORMATS)
    has_class: bool = False  # a class index before everything else
    score_first: bool = True  # the score before the box (all three Kaggle formats), else after it
    empty_row: str = ""  # what a row with no box holds

    def __post_init__(self):
        if self.box_format not in BOX_FORMATS:
            raise PodiumError(f"Unknown box format {self.box_format!r} for a PredictionString.",
                              expected=f"one of: {', '.join(BOX_FORMATS)}", received=repr(self.box_format),
                              fix="set box_format: xywh or xyxy")

    @property
    def fields(self) -> tuple[str, ...]:
        """The names of one box's fields, in order."""
        box = BOX_FIELDS[self.box_format]
        scored = ("score", *box) if self.score_first else (*box, "score")
        return ("class", *scored) if self.has_class else scored

    @property
    def pattern(self) -> str:
        return " ".join(self.fields)


FORMATS: dict[str, StringFormat] = {
    "global_wheat": StringFormat("xywh"),
    "vinbigdata": StringFormat("xyxy", has_class=True, empty_row="14 1 0 0 1 1"),
    "great_barrier_reef": StringFormat("xywh"),
}


@dataclass(frozen=True)
class Detections:
    """One image's boxes: (n, 4) xyxy pixels, (n,) scores, (n,) int classes (None without a class field)."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.boxes)


def string_format(name: str | StringFormat) -> StringFormat:
    if isinstance(name, StringFormat):
        return name
    if name not in FORMATS:
        raise PodiumError(f"Unknown PredictionString format {name!r}.", expected=f"one of: {', '.join(FORMATS)}",
                          received=repr(name), fix="name one of the formats, or describe it with StringFormat")
    return FORMATS[name]


def parse(text, form: str | StringFormat, row_id: str = "?", image_size: tuple[int, int] | None = None) -> Detections:
    """The boxes of one row's PredictionString (an empty string or NaN: none). image_size (width, height)
    in pixels: every box must lie inside it."""
    form = string_format(form)
    tokens = [] if text is None or (isinstance(text, float) and math.isnan(text)) else str(text).split()
    width = len(form.fields)
    if len(tokens) % width:
        raise _row_error(row_id, "has a field count that is not a whole number of boxes",
                         f"groups of {width} fields: {form.pattern}", f"{len(tokens)} fields: {_few(tokens)}")
    values = np.array([_number(token, row_id, form, position) for position, token in enumerate(tokens)],
                      np.float64).reshape(-1, width)
    named = {name: values[:, k] for k, name in enumerate(form.fields)}
    scores = named["score"]
    _check_scores(scores, row_id)
    classes = _classes(named["class"], row_id) if form.has_class else None
    box = np.stack([named[name] for name in BOX_FIELDS[form.box_format]], axis=1) if len(values) else \
        np.zeros((0, 4))
    boxes = _to_xyxy(box, form.box_format, row_id)
    if image_size is not None:
        _check_inside(boxes, image_size, row_id)
    return Detections(boxes, scores, classes)


def write(detections: Detections, form: str | StringFormat, decimals: int = 4) -> str:
    """The PredictionString of one image's boxes (xyxy pixels), best score first; no box: the format's
    empty row."""
    form = string_format(form)
    if len(detections) == 0:
        return form.empty_row
    if form.has_class and detections.classes is None:
        raise PodiumError("This PredictionString format needs a class per box.", expected=form.pattern,
                          received="boxes without classes", fix="give Detections its classes")
    boxes = np.asarray(detections.boxes, np.float64).reshape(-1, 4)
    box = boxes if form.box_format == "xyxy" else np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
    columns = dict(zip(BOX_FIELDS[form.box_format], box.T))
    columns["score"] = np.asarray(detections.scores, np.float64)
    if form.has_class:
        columns["class"] = np.asarray(detections.classes)
    order = np.argsort(-columns["score"], kind="mergesort")
    return " ".join(_text(columns[name][i], name, decimals) for i in order for name in form.fields)


def _text(value, name: str, decimals: int) -> str:
    if name == "class":
        return str(int(value))
    text = f"{float(value):.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _number(token: str, row_id: str, form: StringFormat, position: int) -> float:
    try:
        value = float(token)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        field = form.fields[position % len(form.fields)]
        box = position // len(form.fields) + 1
        raise _row_error(row_id, f"has a field that is not a number ({field} of box {box})",
                         f"numbers in groups of: {form.pattern}", repr(token))
    return value


def _check_scores(scores: np.ndarray, row_id: str) -> None:
    bad = scores[(scores < 0) | (scores > 1)]
    if len(bad):
        raise _row_error(row_id, "has a score outside 0..1", "scores in [0, 1]", f"{_few(bad.tolist())}")


def _classes(values: np.ndarray, row_id: str) -> np.ndarray:
    bad = values[(values < 0) | (values != np.round(values))]
    if len(bad):
        raise _row_error(row_id, "has a class that is not a non-negative integer", "class indices 0, 1, 2, ...",
                         f"{_few(bad.tolist())}")
    return values.astype(np.int64)


def _to_xyxy(box: np.ndarray, box_format: str, row_id: str) -> np.ndarray:
    xywh = box_format == "xywh"
    negative = (box[:, 2:] < 0 if xywh else box[:, 2:] < box[:, :2]).any(axis=1)
    if negative.any():
        first = int(np.flatnonzero(negative)[0])
        raise _row_error(row_id, "has a box of negative width or height",
                         "w >= 0 and h >= 0" if xywh else "x1 <= x2 and y1 <= y2",
                         f"box {first + 1}: {_few(box[first].tolist())}")
    return np.concatenate([box[:, :2], box[:, :2] + box[:, 2:]], axis=1) if xywh else box


def _check_inside(boxes: np.ndarray, image_size: tuple[int, int], row_id: str) -> None:
    width, height = image_size
    outside = (boxes[:, 0] < 0) | (boxes[:, 1] < 0) | (boxes[:, 2] > width) | (boxes[:, 3] > height)
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        raise _row_error(row_id, "has a box outside the image",
                         f"x in 0..{width}, y in 0..{height} (the image's pixels)",
                         f"box {first + 1}: xyxy {_few(boxes[first].tolist())}")


def _row_error(row_id: str, what: str, expected: str, received: str) -> PodiumError:
    return PodiumError(f"PredictionString of row {row_id!r} {what}.", expected=expected, received=received,
                       fix="write boxes in pixels of the image, in the competition's field order")


def _few(values, limit: int = 8) -> str:
    shown = " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in list(values)[:limit])
    return shown + (" ..." if len(values) > limit else "")
