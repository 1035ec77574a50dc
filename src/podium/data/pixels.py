"""Competitions whose images are CSV rows of pixel values (Digit Recognizer, Fashion-MNIST, Kannada-MNIST).

`make data` reads each CSV once, in chunks, into a uint8 array file beside the index (data/<slug>/pixels/
train.npy: (N, H, W) gray or (N, H, W, 3) RGB); each index row names a row of it (`pixels/train.npy#17`),
which podium.data.images reads like an image file. So no PNG is ever written, and the CSV's table is never
held whole as int64 (42,000 x 785 int64 is 264 MB; the array is 33 MB).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from podium.data.competitions import CompetitionSpec
from podium.errors import PodiumError
from podium.io import atomic_path

PIXELS_DIR = "pixels"  # under data/<slug>/
CHUNK_ROWS = 2000  # CSV rows parsed at a time: 2,000 x 785 int64 is 12.5 MB
PIXEL_NAME = re.compile(r"^pixel_?\d+$", re.IGNORECASE)
_SHOW = 5


@dataclass(frozen=True)
class PixelRows:
    """The images of one pixel CSV, converted: row k of array_file is the image of ids[k]."""

    ids: list[str]
    labels: list[str]  # "" for a test CSV
    array_file: Path
    shape: tuple[int, ...]  # (N, H, W) or (N, H, W, 3)


def pixel_csv_rows(spec: CompetitionSpec, data_root: Path, split: str, out_dir: Path | None = None) -> PixelRows:
    """Convert the spec's train or test CSV (`split`) into out_dir/<split>.npy (default data_root/pixels)."""
    name = (spec.labels_csv or "train.csv") if split == "train" else spec.test_csv
    path = Path(data_root) / name
    if not path.is_file():
        field = "labels_csv" if split == "train" else "test_csv"
        present = sorted(p.name for p in Path(data_root).glob("*.csv")) if Path(data_root).is_dir() else []
        raise PodiumError(f"The {split} CSV of competition '{spec.slug}' does not exist.",
                          expected=f"a CSV of pixel columns at {path} (the spec's {field})",
                          received=f"CSVs there: {', '.join(present) or 'none'}",
                          fix=f"set {field} in the competition spec, or run `make data COMP={spec.slug}` first")
    out_dir = Path(out_dir) if out_dir is not None else Path(data_root) / PIXELS_DIR
    return convert_pixel_csv(path, out_dir / f"{split}.npy", label_column=spec.label_column if split == "train"
                             else None, id_column=spec.id_column, image_shape=spec.image_shape)


def convert_pixel_csv(csv_path: Path, out_path: Path, *, label_column: str | None, id_column: str,
                      image_shape: tuple[int, ...] = ()) -> PixelRows:
    """Read a pixel CSV chunk by chunk into a uint8 .npy at out_path (atomically).

    Pixel columns: those named pixel<N> when there are any (other columns are ignored), else every column
    but the label and id; in file order, row-major, channels last for RGB (R, G, B of the first pixel, ...).
    Ids: the id column when the CSV has one, else 1-based row numbers (Digit Recognizer's ImageId)."""
    csv_path = Path(csv_path)
    pixel_columns, id_col = _pixel_columns(csv_path, label_column, id_column)
    shape = image_shape_of(len(pixel_columns), image_shape, csv_path)
    text_columns = {c: str for c in (label_column, id_col) if c}
    expected = _data_lines(csv_path)
    if not expected:
        raise PodiumError(f"The pixel CSV {csv_path} has no rows.", expected="one image per row after the header",
                          received="a header only", fix="download the file again")
    reader = pd.read_csv(csv_path, usecols=pixel_columns + list(text_columns), dtype=text_columns,
                         keep_default_na=False, chunksize=CHUNK_ROWS)
    with atomic_path(out_path) as tmp:
        # written in place, chunk by chunk: one chunk in memory, never a second copy of the array
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(expected, *shape))
        ids, labels = _fill_rows(array, reader, pixel_columns, id_col, label_column, csv_path)
        array.flush()
        del array  # the map closes before the file is renamed into place
    return PixelRows(ids=ids, labels=labels or [""] * len(ids), array_file=Path(out_path), shape=(len(ids), *shape))


def _pixel_columns(csv_path: Path, label_column: str | None, id_column: str) -> tuple[list[str], str | None]:
    """(pixel columns, the id column or None) from the CSV's header; a missing label column is refused."""
    header = [str(c) for c in pd.read_csv(csv_path, nrows=0).columns]
    if label_column is not None and label_column not in header:
        raise PodiumError(f"The pixel CSV {csv_path} has no label column '{label_column}'.",
                          expected=f"a label column {label_column!r} beside the pixel columns",
                          received=f"columns {_few(header)}",
                          fix="set label_column in the competition spec to the column holding the labels")
    id_col = id_column if id_column in header else None
    named = [c for c in header if PIXEL_NAME.match(c) and c not in (label_column, id_col)]
    pixel_columns = named or [c for c in header if c not in (label_column, id_col)]
    if not pixel_columns:
        raise PodiumError(f"The pixel CSV {csv_path} has no pixel columns.", expected="columns pixel0, pixel1, ...",
                          received=f"columns {_few(header)}", fix="check labels_csv/test_csv in the spec")
    return pixel_columns, id_col


def _fill_rows(array: np.ndarray, reader, pixel_columns: list[str], id_col: str | None, label_column: str | None,
               csv_path: Path) -> tuple[list[str], list[str]]:
    """Each chunk's pixels into its rows of `array`; (ids, labels) in row order. As many rows as the file has
    non-blank lines, or the CSV is refused (a line break inside a quoted cell)."""
    expected, shape = array.shape[0], array.shape[1:]
    ids: list[str] = []
    labels: list[str] = []
    seen = 0
    for chunk in reader:
        if seen + len(chunk) > expected:
            raise PodiumError(f"The pixel CSV {csv_path} has more rows than lines.", expected="one row per line",
                              received=f"more than {expected} rows", fix="remove line breaks inside quoted cells")
        array[seen:seen + len(chunk)] = _pixels(chunk[pixel_columns], seen, csv_path).reshape((len(chunk), *shape))
        ids += chunk[id_col].tolist() if id_col else [str(seen + k + 1) for k in range(len(chunk))]
        if label_column:
            labels += _chunk_labels(chunk[label_column], seen, csv_path)
        seen += len(chunk)
    if seen != expected:
        raise PodiumError(f"The pixel CSV {csv_path} has fewer rows than lines.", expected="one row per line",
                          received=f"{seen} rows in {expected} non-blank lines after the header",
                          fix="remove line breaks inside quoted cells")
    return ids, labels


def _chunk_labels(column: pd.Series, seen: int, csv_path: Path) -> list[str]:
    """A chunk's labels, stripped; an empty one is refused with its CSV row numbers."""
    values = column.str.strip()
    empty = np.flatnonzero((values == "").to_numpy())
    if len(empty):
        raise PodiumError(f"{len(empty)} rows of {csv_path} have no label.",
                          expected="a label on every row",
                          received=f"empty labels on CSV rows {_few([seen + k + 1 for k in empty])}",
                          fix="fill or drop those rows (keep a copy of the original)")
    return values.tolist()


def _data_lines(csv_path: Path) -> int:
    """Non-blank lines after the header: the rows pandas will read (it skips blank lines)."""
    with open(csv_path, "rb") as handle:
        return max(0, sum(1 for line in handle if line.strip()) - 1)


def image_shape_of(count: int, image_shape: tuple[int, ...], where: Path | str) -> tuple[int, ...]:
    """(H, W) or (H, W, 3) for `count` pixel columns: the spec's image_shape, else the square root (gray)."""
    if image_shape:
        if math.prod(image_shape) != count:
            raise PodiumError(f"The spec's image_shape {list(image_shape)} does not fit the {count} pixel columns of "
                              f"{where}.", expected=f"height x width x channels = {count}",
                              received=f"{' x '.join(map(str, image_shape))} = {math.prod(image_shape)}",
                              fix=f"set image_shape to {_suggest(count)}")
        return tuple(image_shape[:2]) if len(image_shape) == 3 and image_shape[2] == 1 else tuple(image_shape)
    side = math.isqrt(count)
    if side * side != count:
        raise PodiumError(f"{where} has {count} pixel columns, which is not a square number, and the spec gives no "
                          f"image_shape.", expected="a square gray image (784 = 28 x 28) or image_shape in the spec",
                          received=f"{count} pixel columns", fix=f"set image_shape: {_suggest(count)}")
    return side, side


def _suggest(count: int) -> str:
    side = math.isqrt(count // 3)
    if count % 3 == 0 and side * side * 3 == count:
        return f"[{side}, {side}, 3] if the images are RGB (channels last), or [height, width] with height x " \
               f"width = {count}"
    side = math.isqrt(count)
    if side * side == count:
        return f"[{side}, {side}] (gray)"
    return f"[height, width] with height x width = {count} (gray), or [height, width, 3] with 3 x height x width"


def _pixels(frame: pd.DataFrame, first_row: int, csv_path: Path) -> np.ndarray:
    """The chunk's pixel values as uint8, refused when a cell is not a whole number in 0..255."""
    values = frame.to_numpy()
    if values.dtype.kind not in "iuf":
        numbers = frame.apply(pd.to_numeric, errors="coerce").to_numpy(dtype="float64")
        _refuse(np.isnan(numbers), values, frame, first_row, csv_path, "not a number")
        values = numbers
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values) | (values != np.round(values))
        _refuse(bad, values, frame, first_row, csv_path, "not a whole number")
    _refuse((values < 0) | (values > 255), values, frame, first_row, csv_path, "outside 0..255")
    return values.astype(np.uint8)


def _refuse(bad: np.ndarray, values: np.ndarray, frame: pd.DataFrame, first_row: int, csv_path: Path,
            why: str) -> None:
    if not bad.any():
        return
    row, column = np.argwhere(bad)[0]
    raise PodiumError(f"The pixel CSV {csv_path} has a pixel value that is {why}.",
                      expected="whole numbers 0..255 in every pixel column (uint8 gray levels)",
                      received=f"{values[row, column]!r} in column {frame.columns[column]!r} on CSV row "
                               f"{first_row + row + 1} ({int(bad.sum())} such cells in rows {first_row + 1}.."
                               f"{first_row + len(frame)})",
                      fix="fix or drop those rows; values scaled to 0..1 must be multiplied by 255 first")


def _few(items: list) -> str:
    shown = ", ".join(repr(str(i)) for i in items[:_SHOW])
    return shown + (f" and {len(items) - _SHOW} more" if len(items) > _SHOW else "")
