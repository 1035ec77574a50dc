"""Labels CSVs of many rows per image, read for `make spec`: boxes of several objects (detection: Global Wheat,
VinBigData) and masks of several classes (segmentation with class_masks: Severstal, Understanding Clouds).

A row's image is named by the id column, or joined with its class in one id (`0002cc93b.jpg_1`, split on the
last `_` as podium.data.class_masks splits it); a class sits in its own column (class, class_id) or in that
joined id. The rows say the rest: a box's format (the second corner right of and below the first on every row
is xyxy), the classes (sorted as the detection reader sorts them: as numbers when every name is one), and
whether two mask classes of one image share a pixel (overlapping) or never do in the rows scanned (exclusive).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from podium.data.detection_targets import sort_classes
from podium.spec.scan import few

NUMBER = r"-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?"
BOX_LIST = re.compile(rf"^\s*[\[(]\s*{NUMBER}(?:\s*[,\s]\s*{NUMBER}){{3}}\s*[\])]\s*$")  # "[834.0, 222.0, 56.0, 36.0]"
CLASS_HINTS = ("class", "label", "category", "species", "type")  # words naming a column of classes
SCANNED_ROWS = 5000  # rows of run-lengths decoded to see whether two classes share a pixel
MAX_CLASSES = 200  # more distinct values is not a class column


@dataclass
class ObjectFacts:
    """What the rows of a many-rows-per-image labels CSV say about its classes (and boxes)."""

    class_column: str = ""  # "" = no class column (one class), or the class is in the joined id
    classes: list[str] = field(default_factory=list)
    class_reason: str = ""
    box_reason: str = ""  # detection: how the box format was decided
    class_masks: str = ""  # segmentation: exclusive | overlapping ("" = one mask per image)
    masks_reason: str = ""


def joined_images(ids) -> list[str] | None:
    """The image part of ids that join an image and a class (`img.jpg_Fish` -> `img.jpg`); None unless every
    id holds a `_` with text on both sides."""
    parts = [str(i).rpartition("_") for i in ids]
    if not parts or not all(sep and image and name for image, sep, name in parts):
        return None
    return [image for image, _, _ in parts]


# ---- boxes ------------------------------------------------------------------------------------------
def box_list_column(frame: pd.DataFrame, columns: list[str]) -> str:
    """The column holding each box as a list of four numbers (Global Wheat's bbox), "" when none does."""
    for column in columns:
        filled = [v for v in frame[column].head(2000) if str(v).strip()]
        if filled and all(BOX_LIST.match(str(v)) for v in filled):
            return column
    return ""


def box_numbers(frame: pd.DataFrame, box_columns: tuple[str, ...]) -> np.ndarray:
    """(n, 4) float numbers of the rows whose box cells read (rows without a box left out)."""
    rows = []
    for cells in frame[list(box_columns)].head(SCANNED_ROWS).itertuples(index=False):
        texts = re.split(r"[\s,;]+", str(cells[0]).strip("[]() ")) if len(cells) == 1 else [str(c) for c in cells]
        try:
            values = [float(t) for t in texts if t.strip()]
        except ValueError:
            continue
        if len(values) == 4 and np.isfinite(values).all():
            rows.append(values)
    return np.asarray(rows, np.float64).reshape(-1, 4)


def read_box_format(numbers: np.ndarray, named: str) -> tuple[str, str]:
    """(box_format, why): the column names' format checked against the rows, else read from the rows alone."""
    corners = bool(len(numbers)) and bool(((numbers[:, 2] > numbers[:, 0]) & (numbers[:, 3] > numbers[:, 1])).all())
    if named:
        what = {"xyxy": "two corners", "xywh": "corner, width, height"}[named]
        if named == "xyxy" and len(numbers) and not corners:
            return named, (f"CHECK: the column names say {named} ({what}), but on some rows the second corner is "
                           f"not right of and below the first: xywh?")
        return named, f"read from the column names ({what}) and the {len(numbers)} boxes read"
    if corners:
        return "xyxy", (f"the third number is more than the first and the fourth more than the second on all "
                        f"{len(numbers)} boxes read: two corners (xyxy); check, small boxes far from the corner "
                        f"read the same as xywh")
    return "xywh", ("the third number is not more than the first on some boxes, so it is a width: corner, "
                    "width, height (xywh, COCO's order)")


def detection_classes(frame: pd.DataFrame, skip: list[str], has_box: pd.Series) -> ObjectFacts:
    """The class column (a name with a class word, numbers preferred: a class id is what a PredictionString
    writes) and its classes on the rows that hold a box; none: every box is one class."""
    candidates = [c for c in frame.columns if c not in skip and any(w in c.lower() for w in CLASS_HINTS)
                  and 1 <= frame.loc[has_box, c].nunique() <= MAX_CLASSES]
    if not candidates:
        return ObjectFacts(class_reason="no column named like a class (class, label, category): every box is one "
                                        "class; set class_column if one holds the box's class")
    values = {c: sorted(set(frame.loc[has_box, c]) - {""}) for c in candidates}
    column = min(candidates, key=lambda c: (not all(v.isdigit() for v in values[c]), candidates.index(c)))
    classes = sort_classes(values[column])
    others = [c for c in candidates if c != column]
    no_box = sorted(set(frame.loc[~has_box, column]) - {""})
    reason = (f"{len(classes)} classes on the rows with a box"
              + (f" (rows without a box say {few(no_box)}: no class)" if no_box else "")
              + (f"; {few(others)} also name(s) classes: the class ids are what a PredictionString writes"
                 if others else ""))
    return ObjectFacts(column, classes, reason)


# ---- class masks ------------------------------------------------------------------------------------
def mask_classes(frame: pd.DataFrame, id_column: str, rle_column: str, joined: bool) -> ObjectFacts | None:
    """The classes of a run-length CSV with one row per image–class pair, from the joined id or a class column,
    and whether two classes share a pixel; None: one mask per image (Airbus)."""
    if joined:
        images = joined_images(frame[id_column])
        names = [str(i).rpartition("_")[2] for i in frame[id_column]]
        facts = ObjectFacts(class_reason=f"the id column {id_column!r} joins the image and its class with the last "
                                         f"`_`")
    else:
        column = _mask_class_column(frame, id_column, rle_column)
        if not column:
            return None
        images, names = frame[id_column].tolist(), frame[column].tolist()
        facts = ObjectFacts(class_column=column, class_reason="the class of each row beside its image")
    facts.classes = sort_classes(set(names) - {""})
    facts.class_reason = f"{len(facts.classes)} classes as the CSV writes them; " + facts.class_reason
    facts.class_masks, facts.masks_reason = _sharing(images, names, frame[rle_column].tolist())
    return facts


def _mask_class_column(frame: pd.DataFrame, id_column: str, rle_column: str) -> str:
    """A column beside the image and run-length columns naming a class, where an image has rows of two
    classes (ClassId); "" when there is none."""
    repeated = frame[id_column].duplicated(keep=False)
    for column in frame.columns:
        if column in (id_column, rle_column) or not 2 <= frame[column].nunique() <= MAX_CLASSES:
            continue
        named = any(w in column.lower() for w in CLASS_HINTS)
        differs = repeated.any() and frame[repeated].groupby(id_column)[column].nunique().max() > 1
        if named and differs:
            return column
    return ""


def _sharing(images: list[str], names: list[str], rles: list[str]) -> tuple[str, str]:
    """(class_masks, why): overlapping when runs of two classes of one image cover a pixel in the rows scanned."""
    spans: dict[str, list[tuple[int, int, str]]] = {}
    scanned = 0
    for image, name, rle in zip(images, names, rles):
        numbers = str(rle).split()
        if len(numbers) < 2 or len(numbers) % 2 or not all(n.isdigit() for n in numbers):
            continue
        scanned += 1
        starts, lengths = np.asarray(numbers[0::2], np.int64), np.asarray(numbers[1::2], np.int64)
        spans.setdefault(image, []).extend(zip(starts.tolist(), (starts + lengths).tolist(), [name] * len(starts)))
        if scanned >= SCANNED_ROWS:
            break
    several = [image for image, runs in spans.items() if len({name for _, _, name in runs}) > 1]
    shared = [(image, pair) for image in several if (pair := _shared_pair(spans[image]))]
    if shared:
        image, (a, b) = shared[0]
        return "overlapping", (f"{len(shared)} of the {len(several)} images with two classes have pixels in two "
                               f"classes (e.g. {image}: {a} and {b}): a sigmoid per class")
    return "exclusive", (f"no pixel is in two classes of one image in the {scanned} masks scanned ({len(several)} "
                         f"images hold two classes or more): check the competition's description, overlapping if "
                         f"classes may share pixels")


def _shared_pair(runs: list[tuple[int, int, str]]) -> tuple[str, str] | None:
    """Two classes whose runs (start, end, class) cover a common pixel, or None."""
    ends: dict[str, int] = {}  # class -> the furthest end of its runs started so far
    for start, end, name in sorted(runs):
        other = next((c for c, e in ends.items() if c != name and e > start), None)
        if other is not None:
            return other, name
        ends[name] = max(ends.get(name, 0), end)
    return None
