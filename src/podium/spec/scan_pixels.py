"""Layout pixels: images stored as CSV pixel columns (Digit Recognizer, Fashion-/Kannada-MNIST).

A folder is one when a CSV has at least PIXEL_COLUMNS_MIN pixel<N> columns and a label column (train), and
another has the same pixel columns without one (test). There are no image files to look at: the CSVs'
headers, their other columns and the sample submission say everything the spec needs.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import pandas as pd

from podium.data.pixels import PIXEL_NAME
from podium.spec.scan import LABEL_NAMES, SourceFile, SourceView, is_sample_name, read_csv

PIXEL_COLUMNS_MIN = 16  # fewer pixel<N> columns is a table of features, not an image


@dataclass
class PixelCsv:
    file: SourceFile
    pixel_columns: list[str]
    others: pd.DataFrame  # the CSV's other columns (ids, labels), every cell as written
    rows: int


def pixel_csv(file: SourceFile) -> PixelCsv | None:
    """The CSV when most of its columns are pixel<N> (at least PIXEL_COLUMNS_MIN), else None."""
    data = file.read()
    try:
        header = [str(c) for c in pd.read_csv(io.BytesIO(data), nrows=0).columns]
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return None
    pixel_columns = [c for c in header if PIXEL_NAME.match(c)]
    if len(pixel_columns) < PIXEL_COLUMNS_MIN or len(pixel_columns) < 0.9 * len(header):
        return None
    others = [c for c in header if c not in pixel_columns]
    frame = pd.read_csv(io.BytesIO(data), usecols=others, dtype=str, keep_default_na=False) if others else None
    rows = len(frame) if frame is not None else max(0, data.count(b"\n") - 1 + (not data.endswith(b"\n")))
    return PixelCsv(file, pixel_columns, frame if frame is not None else pd.DataFrame(index=range(rows)), rows)


def pixel_label_column(csv: PixelCsv) -> str:
    """The label column of a train pixel CSV: a usual label name, else its only non-id column; "" if none."""
    columns = list(csv.others.columns)
    named = next((c for c in columns if c.lower() in LABEL_NAMES), "")
    if named or len(columns) != 1:
        return named
    return columns[0] if csv.others[columns[0]].nunique() < max(2, csv.rows // 2) else ""


def pixel_shape(count: int) -> tuple[list[int], str]:
    """(image_shape, how it was decided) for a count of pixel columns; [] when no shape fits."""
    side = math.isqrt(count)
    if side * side == count:
        return [side, side], f"{count} pixel columns = {side} x {side}: square gray images"
    side = math.isqrt(count // 3)
    if count % 3 == 0 and side * side * 3 == count:
        return [side, side, 3], (f"{count} pixel columns = {side} x {side} x 3: GUESSED square RGB images, channels "
                                 f"last (R, G, B of pixel 0 first); check")
    return [], f"CHECK: {count} pixel columns is neither a square nor 3 x a square: set [height, width]"


def find_pixel_csvs(view: SourceView) -> tuple[PixelCsv, PixelCsv] | None:
    """(train, test): a pixel CSV with a label column and one with the same pixel columns without; None when
    the folder holds no such pair."""
    pixel_csvs = [c for c in (pixel_csv(f) for f in view.csvs() if not is_sample_name(f.rel)) if c]
    trains = [c for c in pixel_csvs if pixel_label_column(c)]
    if not trains:
        return None
    train = max(trains, key=lambda c: ("train" in c.file.rel.lower(), c.rows))
    tests = [c for c in pixel_csvs if c is not train and len(c.pixel_columns) == len(train.pixel_columns)
             and not pixel_label_column(c)]
    if not tests:
        return None
    return train, max(tests, key=lambda c: ("test" in c.file.rel.lower(), c.rows))


@dataclass
class PixelSample:
    file: SourceFile
    columns: list[str]
    rows: int
    ids: list[str]


def pixel_sample(view: SourceView, test: PixelCsv) -> PixelSample | None:
    """The sample submission: a "sample"/"submission" CSV of two or more columns, as many rows as the test CSV."""
    found = []
    for file in view.csvs():
        if not is_sample_name(file.rel):
            continue
        frame = read_csv(file)
        if len(frame.columns) >= 2 and len(frame) == test.rows:
            found.append(PixelSample(file, list(frame.columns), len(frame), frame[frame.columns[0]].tolist()))
    return min(found, key=lambda s: ("sample" not in s.file.rel.lower(), len(s.file.rel))) if found else None


def pixel_ids(test: PixelCsv, sample: PixelSample | None) -> tuple[str, str]:
    """(id_column, how): a test CSV column holding the sample's ids, else 1-based row numbers."""
    wanted = set(sample.ids) if sample else set()
    for column in test.others.columns:
        if wanted and set(test.others[column]) == wanted:
            return column, f"the test CSV's {column} column holds the sample submission's ids"
    rows = [str(k) for k in range(1, test.rows + 1)]
    if sample and sample.ids == rows:
        return "id", (f"the test CSV has no id column: ids are its 1-based row numbers, as the sample's "
                      f"{sample.columns[0]} (1..{test.rows})")
    return "id", ("CHECK: the test CSV has no column of the sample's ids; podium uses 1-based row numbers "
                  "(the column named here is used when the CSV has it)")
