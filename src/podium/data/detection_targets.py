"""Detection targets: any number of boxes per image, read from a labels CSV of one row per box.

A row names its image (id_column), a box in pixels of the image (the four box_columns in box_format, or one
column holding the box as a list, Global Wheat's `bbox` "[834.0, 222.0, 56.0, 36.0]") and, with a
class_column, its class. A row whose box cells are empty means "this image has no box" (VinBigData's
"No finding", whose class is then no class); an image with no row at all has no box (Global Wheat lists only
images with wheat). So the index lists every train image, not only the CSV's: its label is what folds
stratify on, the box count's bin with one class ("0 boxes", "1 box", "2-3 boxes", ...), else the rarest class the
image holds ("none" without boxes). Training reads `(N, M, 5)` rows `[x1, y1, x2, y2, class]` in fractions
of the image's width and height (the square resize keeps fractions), padded with -1 (PLAN detection contract).
Every row is checked at `make data` (detection_problems), so a bad box fails there with its id.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from podium.boxes import to_xyxy
from podium.data.competitions import DEFAULT_BOX_CLASS, CompetitionSpec
from podium.data.source_files import first_few, read_labels_table
from podium.data.targets import require_columns
from podium.errors import PodiumError

NO_BOX = "none"  # the index label of an image without boxes, with several classes
PAD = -1.0  # a padding row of the targets: all four coordinates and the class
BOX = ["x1", "y1", "x2", "y2"]  # read_box_rows' box columns: xyxy pixels, NaN on a row without a box
_EMPTY = {"", "nan", "none", "null"}  # a box cell that says "no box" (pandas writes NaN as "" or "nan")
_SHOW = 5


# ---- reading the labels CSV -----------------------------------------------------------------------
def read_box_rows(spec: CompetitionSpec, data_root: Path) -> pd.DataFrame:
    """One row per CSV row: id, class ("" without a class column or box), x1 y1 x2 y2 pixels (NaN: the row
    says "no box"), line (in the file) and problem ("" or why the box cannot be read)."""
    path, frame = read_labels_table(spec, data_root)
    roles = {"id": spec.id_column, **({"class": spec.class_column} if spec.class_column else {}),
             **{f"box ({spec.box_format})": column for column in spec.box_columns}}
    require_columns(frame, path, roles, fix="set id_column/class_column/box_columns in the competition spec")
    cells = frame[list(spec.box_columns)].to_numpy(dtype=object)
    values, problems = zip(*(_box_values(row) for row in cells)) if len(cells) else ((), ())
    pixels = np.array(values, np.float64).reshape(-1, 4)
    empty = np.isnan(pixels).all(axis=1)
    xyxy = np.where(empty[:, None], np.nan, to_xyxy(np.nan_to_num(pixels), spec.box_format).astype(np.float64))
    classes = frame[spec.class_column] if spec.class_column else pd.Series("", index=frame.index)
    out = pd.DataFrame({"id": frame[spec.id_column].astype(str), "class": np.where(empty, "", classes)})
    out[BOX] = xyxy
    out["line"] = np.arange(len(frame)) + 2
    out["problem"] = list(problems)
    return out


def _box_values(cells) -> tuple[list[float], str]:
    """The four numbers of one row's box cells (NaN x 4 when all are empty), and what is wrong with them."""
    texts = ["" if str(cell).strip().lower() in _EMPTY else str(cell).strip() for cell in cells]
    if len(texts) == 1:  # one column holding the box as a list
        texts = [t for t in re.split(r"[\s,;]+", texts[0].strip("[]() ")) if t]
        if not texts:
            return [np.nan] * 4, ""
        if len(texts) != 4:
            return [np.nan] * 4, f"a box list of {len(texts)} numbers ({str(cells[0])[:40]!r}), not 4"
    if all(text == "" for text in texts):
        return [np.nan] * 4, ""
    numbers = [_number(text) for text in texts]
    if any(n is None for n in numbers):
        return [np.nan] * 4, f"a box value that is not a number ({', '.join(texts)})"
    return numbers, ""


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if np.isfinite(value) else None


def detection_class_names(spec: CompetitionSpec, data_root: Path) -> list[str]:
    """The run's classes: the spec's when fixed; else the classes of the CSV's boxes, sorted (as numbers when
    every name is one: VinBigData's 0..13); without a class column, one class."""
    if spec.classes:
        return list(spec.classes)
    if not spec.class_column:
        return [DEFAULT_BOX_CLASS]
    rows = read_box_rows(spec, data_root)
    return sort_classes(rows.loc[rows["class"] != "", "class"].unique())


def sort_classes(names) -> list[str]:
    names = sorted({str(name) for name in names})
    return sorted(names, key=int) if names and all(name.isdigit() for name in names) else names


def _class_of(rows: pd.DataFrame, spec: CompetitionSpec, classes: list[str]) -> np.ndarray:
    """Each row's class index (-1: no box, or a class outside `classes`)."""
    if not spec.class_column:
        return np.where(rows[BOX[0]].notna(), 0, -1)
    position = {name: k for k, name in enumerate(classes)}
    return np.array([position.get(name, -1) for name in rows["class"]], np.int64)


# ---- the index ------------------------------------------------------------------------------------
def count_bin(n: int) -> str:
    """A box count as a power-of-two bin, in words: "0 boxes", "1 box", "2-3 boxes", "4-7 boxes", ... (folds keep
    each bin's share; never a class name, even a numeric one)."""
    if n < 2:
        return f"{n} box{'' if n == 1 else 'es'}"
    low = 2 ** int(np.log2(n))
    return f"{low}-{2 * low - 1} boxes"


def detection_labels(spec: CompetitionSpec, data_root: Path) -> pd.DataFrame:
    """One row per train image for the index (id_column, label_column): the CSV's ids, then every image under
    train_dir the CSV does not name (no box). The label is count_bin of its boxes with one class, else the
    rarest class it holds (fewest images over the CSV) or NO_BOX."""
    rows = read_box_rows(spec, data_root)
    boxed = rows[rows[BOX[0]].notna()]
    ids = list(dict.fromkeys(rows["id"])) + unlisted_train_ids(spec, data_root, set(rows["id"]))
    if len(detection_class_names(spec, data_root)) == 1:
        counts = boxed.groupby("id").size()
        labels = [count_bin(int(counts.get(i, 0))) for i in ids]
    else:
        images_of = boxed.groupby("class")["id"].nunique()
        rarest = boxed.assign(n=boxed["class"].map(images_of)).sort_values(["n", "class"]).groupby("id")["class"].first()
        labels = [str(rarest.get(i, NO_BOX)) for i in ids]
    return pd.DataFrame({spec.id_column: ids, spec.label_column: labels})


def unlisted_train_ids(spec: CompetitionSpec, data_root: Path, listed: set[str]) -> list[str]:
    """Ids of the images under train_dir that no CSV id names (by relative path, file name or stem), spelled
    as the CSV spells its ids: file names when they carry an image extension, else stems."""
    train_dir = Path(data_root) / spec.train_dir
    extensions = {ext.lower() for ext in spec.image_extensions}
    with_extension = bool(listed) and all(Path(i).suffix.lower() in extensions for i in listed)
    found = []
    for folder, subdirs, files in os.walk(train_dir):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(".") and d != "__MACOSX")
        for name in sorted(files):
            path = Path(folder, name)
            if name.startswith(".") or path.suffix.lower() not in extensions:
                continue
            relative = path.relative_to(train_dir).as_posix()
            if not {relative, name, path.stem} & listed:
                found.append(name if with_extension else path.stem)
    return found


# ---- the check at `make data` ---------------------------------------------------------------------
def detection_problems(spec: CompetitionSpec, data_root: Path, shapes: dict) -> list[str]:
    """Every row that does not fit, one sentence each (data.targets.check_targets' `find_problems`): a box
    that is not four numbers, outside its image or of no size, a class outside the spec's classes. Ids
    without a shape (unreadable images, which the index reports) are not checked against a size."""
    rows = read_box_rows(spec, data_root)
    problems = [f"{i!r} (line {line}): {problem}" for i, line, problem in
                zip(rows["id"], rows["line"], rows["problem"]) if problem]
    if spec.class_column and spec.classes:
        unknown = rows[(rows["class"] != "") & ~rows["class"].isin(spec.classes)]
        problems += [f"{i!r} (line {line}): class {name!r} is not among the spec's classes {list(spec.classes)}"
                     for i, line, name in zip(unknown["id"], unknown["line"], unknown["class"])]
    for image_id, line, x1, y1, x2, y2 in rows[rows[BOX[0]].notna()][["id", "line", *BOX]].itertuples(index=False):
        if image_id not in shapes:
            continue
        height, width = shapes[image_id]
        if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
            problems.append(f"{image_id!r} (line {line}): box x1={x1:g} y1={y1:g} x2={x2:g} y2={y2:g} for a "
                            f"{width} x {height} (width x height) image")
    return problems


# ---- what training reads --------------------------------------------------------------------------
def image_boxes(spec: CompetitionSpec, data_root: Path, classes: list[str]) -> dict[str, np.ndarray]:
    """id -> (k, 5) float64 `[class, x1, y1, x2, y2]` pixel boxes of each image with a box (the metrics' truth
    rows, podium.scoring.detection); an image without boxes is absent. A row that does not read is an error."""
    rows = read_box_rows(spec, data_root)
    bad = rows[rows["problem"] != ""]
    if len(bad):
        raise PodiumError(f"{len(bad)} rows of {spec.labels_csv} have a box that does not read.",
                          expected="four numbers per box (or empty cells: no box)",
                          received="; ".join(f"line {line}: {p}" for line, p in zip(bad["line"][:_SHOW], bad["problem"])),
                          fix="fix or drop those rows (`make data` lists them all)")
    rows = rows.assign(k=_class_of(rows, spec, classes))
    unknown = rows[(rows["k"] < 0) & rows[BOX[0]].notna()]
    if len(unknown):
        raise PodiumError(f"{len(unknown)} boxes in {spec.labels_csv} have a class outside the run's classes.",
                          expected=f"classes among {classes}", received=f"classes {first_few(unknown['class'].unique().tolist())}",
                          fix="add them to the spec's classes, or empty classes to use the classes found")
    rows = rows[rows["k"] >= 0]
    return {image_id: group[["k", *BOX]].to_numpy(np.float64) for image_id, group in rows.groupby("id", sort=False)}


def detection_targets(spec: CompetitionSpec, data_root: Path, rows: pd.DataFrame, classes: list[str],
                      max_boxes: int = 0) -> np.ndarray:
    """(len(rows), M, 5) float32 `[x1, y1, x2, y2, class]` of index `rows` (id, width, height), in their order:
    fractions of each image's width and height, padding rows all -1. M = max_boxes, else the most boxes any
    of `rows` has (at least 1); an image with more than max_boxes keeps its first max_boxes."""
    by_id = image_boxes(spec, data_root, classes)
    ids = rows["id"].astype(str).tolist()
    m = max_boxes or max([1, *(len(by_id.get(i, ())) for i in ids)])
    targets = np.full((len(ids), m, 5), PAD, np.float32)
    for n, (image_id, width, height) in enumerate(zip(ids, rows["width"], rows["height"])):
        boxes = by_id.get(image_id, np.zeros((0, 5)))[:m]
        scale = np.array([width, height, width, height], np.float64)
        targets[n, :len(boxes), :4] = np.clip(boxes[:, 1:] / scale, 0.0, 1.0)
        targets[n, :len(boxes), 4] = boxes[:, 0]
    return targets


def targets_to_detections(targets: np.ndarray) -> list[np.ndarray]:
    """Training targets back to the metrics' truth rows: per image (k, 5) `[class, x1, y1, x2, y2]` fractions."""
    out = []
    for rows in np.asarray(targets, np.float64):
        real = rows[rows[:, 4] >= 0]
        out.append(np.concatenate([real[:, 4:5], real[:, :4]], axis=1))
    return out
