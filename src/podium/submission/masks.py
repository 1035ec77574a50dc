"""Segmentation submissions in Airbus' form, right the first time.

Every test image of the sample appears at least once; each predicted object is its own run-length row
(1-indexed, column-major), an image without objects has one empty row, runs are sorted and inside the
image, and no two objects of an image share a pixel (Airbus' scorer rejects overlaps). Predictions
come at the model's size and are resized back to each image's own size before thresholding: a mask
encoded at 256 px against a 768 px image would validate as numbers and score zero.

With several classes (Severstal, Understanding Clouds) the rows are the sample's image–class pairs instead,
each exactly once, its mask at the image's own size or empty (`class_mask_submission_problems`); exclusive
classes may not share a pixel.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from podium.data import rle
from podium.data.class_masks import join_id, split_id
from podium.data.images import resize_plane
from podium.errors import PodiumError
from podium.io import atomic_path
from podium.submission.validate import column_problems, few_quoted, refuse_problems

SHOWN = 5


def predicted_mask(probabilities: np.ndarray, height: int, width: int, threshold: float) -> np.ndarray:
    """(S,S,1) or (S,S) probabilities at the model's size -> (height, width) bool mask of the image."""
    return resize_plane(probabilities, height, width) > threshold


def mask_rows(ids: Sequence[str], probabilities: np.ndarray, shapes: Mapping[str, tuple[int, int]],
              threshold: float, min_pixels: int, id_column: str, rle_column: str) -> pd.DataFrame:
    """Submission rows for predicted images, in the order given; shapes: id -> (height, width)."""
    rows = []
    for image_id, probability in zip(ids, probabilities):
        height, width = shapes[image_id]
        rows += rle.object_rows(image_id, predicted_mask(probability, height, width, threshold), min_pixels)
    return pd.DataFrame(rows, columns=[id_column, rle_column])


def in_sample_order(frame: pd.DataFrame, sample: pd.DataFrame, id_column: str, rle_column: str) -> pd.DataFrame:
    """The sample's ids in the sample's order, each with its rows; an image with no row gets an empty one."""
    by_id = defaultdict(list)
    for image_id, value in zip(frame[id_column].astype(str), frame[rle_column]):
        by_id[image_id].append("" if rle.is_empty(value) else str(value))
    rows = [(image_id, value) for image_id in sample[id_column].astype(str) for value in by_id.get(image_id, [""])]
    return pd.DataFrame(rows, columns=[id_column, rle_column])


def mask_submission_problems(frame: pd.DataFrame, sample: pd.DataFrame, id_column: str, rle_column: str,
                             shapes: Mapping[str, tuple[int, int]]) -> list[str]:
    """Every way `frame` would be refused or mis-scored, one sentence each; [] when valid.

    shapes: id -> (height, width) of the test images; ids without a known shape (undecodable images)
    are checked for syntax only.
    """
    problems = column_problems(frame, sample)
    if problems:
        return problems
    ids = frame[id_column].fillna("").astype(str).tolist()
    values = frame[rle_column].tolist()
    blank = [n for n, image_id in enumerate(ids, start=1) if not image_id.strip()]
    if blank:
        problems.append(f"{len(blank)} empty id(s), on row(s) {', '.join(map(str, blank[:SHOWN]))}")
    expected = set(sample[id_column].astype(str))
    extra = list(dict.fromkeys(i for i in ids if i.strip() and i not in expected))
    present = set(ids)
    missing = [i for i in sample[id_column].astype(str) if i not in present]
    if missing:
        problems.append(f"{len(missing)} id(s) of the sample have no row: {few_quoted(missing)}")
    if extra:
        problems.append(f"{len(extra)} id(s) not in the sample: {few_quoted(extra)}")
    problems += _run_problems(ids, values, shapes)
    return problems


def validate_mask_submission(frame: pd.DataFrame, sample: pd.DataFrame, id_column: str, rle_column: str,
                             shapes: Mapping[str, tuple[int, int]]) -> None:
    refuse_problems(mask_submission_problems(frame, sample, id_column, rle_column, shapes),
                    "The segmentation submission would be refused or mis-scored",
                    expected=f"columns {list(sample.columns)}; every sample id at least once; one run-length row "
                             f"per object (1-indexed, column-major, sorted runs inside the image), an empty row for "
                             f"an image without objects, no overlapping objects",
                    fix="build it with podium.submission.masks.mask_rows + in_sample_order, which encode each "
                        "connected object at the image's own size")


def write_mask_submission(path: str | os.PathLike, frame: pd.DataFrame, sample: pd.DataFrame, id_column: str,
                          rle_column: str, shapes: Mapping[str, tuple[int, int]]) -> Path:
    """Validate, then write atomically: an invalid file is never written, an older one survives."""
    validate_mask_submission(frame, sample, id_column, rle_column, shapes)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(path)


def _run_problems(ids: list[str], values: list, shapes: Mapping[str, tuple[int, int]]) -> list[str]:
    """Bad run strings, an empty row beside objects, and objects of one image that overlap."""
    bad, mixed, overlapping = [], [], []
    rows_by_id = defaultdict(list)
    for row, (image_id, value) in enumerate(zip(ids, values), start=1):
        rows_by_id[image_id].append((row, value))
    for image_id, rows in rows_by_id.items():
        shape = shapes.get(image_id)
        filled = [(row, value) for row, value in rows if not rle.is_empty(value)]
        if filled and len(filled) < len(rows):
            mixed.append(image_id)
        covered = np.zeros(shape[0] * shape[1], bool) if shape and len(filled) > 1 else None
        overlaps = False
        for row, value in filled:
            try:
                starts, lengths = rle.runs(value, shape or (1, 2**62))
            except PodiumError as exc:
                bad.append(f"row {row} ({image_id!r}): {exc.what}")
                continue
            if covered is not None:
                for start, length in zip(starts, lengths):
                    overlaps = overlaps or bool(covered[start:start + length].any())
                    covered[start:start + length] = True
        if overlaps:
            overlapping.append(image_id)
    problems = []
    if bad:
        problems.append(f"{len(bad)} row(s) with an invalid run-length string: {'; '.join(bad[:SHOWN])}")
    if mixed:
        problems.append(f"{len(mixed)} image(s) with an empty row beside object rows: {few_quoted(mixed)}")
    if overlapping:
        problems.append(f"{len(overlapping)} image(s) whose objects overlap: {few_quoted(overlapping)}")
    return problems


# ---- several classes: one row per image–class pair ------------------------------------------------------
def class_mask_submission_problems(frame: pd.DataFrame, sample: pd.DataFrame, classes: Sequence[str],
                                   shapes: Mapping[str, tuple[int, int]], exclusive: bool, id_column: str,
                                   rle_column: str, class_column: str = "") -> list[str]:
    """Every way a pair submission would be refused or mis-scored, one sentence each; [] when valid. A pair is
    the id `<image>_<class>`, or the id and class columns; shapes: image -> (height, width) (an image without
    one is checked for syntax only)."""
    problems = column_problems(frame, sample)
    if problems:
        return problems
    found, unknown = _pair_keys(frame, classes, id_column, class_column)
    expected, _ = _pair_keys(sample, classes, id_column, class_column)
    if unknown:
        problems.append(f"{len(unknown)} row(s) name no known image–class pair: {'; '.join(unknown[:SHOWN])}")
    counts = pd.Series([key for key in found if key is not None], dtype=object).value_counts()
    repeated = [join_id(*key) for key, n in counts.items() if n > 1]
    missing = [join_id(*key) for key in expected if key is not None and key not in counts.index]
    wanted = set(expected)
    extra = [join_id(*key) for key in found if key is not None and key not in wanted]
    for count, what in ((repeated, "pair(s) on more than one row"), (missing, "pair(s) of the sample without a row"),
                        (extra, "pair(s) not in the sample")):
        if count:
            problems.append(f"{len(count)} {what}: {few_quoted(count)}")
    return problems + _pair_run_problems(found, frame[rle_column].tolist(), shapes, exclusive)


def validate_class_mask_submission(frame: pd.DataFrame, sample: pd.DataFrame, classes: Sequence[str],
                                   shapes: Mapping[str, tuple[int, int]], exclusive: bool, id_column: str,
                                   rle_column: str, class_column: str = "") -> None:
    refuse_problems(class_mask_submission_problems(frame, sample, classes, shapes, exclusive, id_column, rle_column,
                                                   class_column),
                    "The segmentation submission would be refused or mis-scored",
                    expected=f"columns {list(sample.columns)}; every image–class pair of the sample exactly once; a "
                             f"run-length mask (1-indexed, column-major, sorted runs inside the image) or an empty "
                             f"cell per pair" + ("; no pixel in two classes" if exclusive else ""),
                    fix="build it with podium.data.class_masks.rows_from_masks(sample, masks, classes), masks at "
                        "each image's own size")


def _pair_keys(frame: pd.DataFrame, classes: Sequence[str], id_column: str, class_column: str
               ) -> tuple[list, list[str]]:
    """(image, class) per row (None where the row names no known pair) and what is wrong with those rows."""
    keys, unknown = [], []
    for row, record in enumerate(frame.to_dict("records"), start=1):
        try:
            if class_column:
                image, class_name = str(record[id_column]), str(record[class_column])
                split_id(join_id(image, class_name), classes)
            else:
                image, class_name = split_id(record[id_column], classes)
            keys.append((image, class_name))
        except PodiumError as exc:
            keys.append(None)
            unknown.append(f"row {row}: {exc.what}")
    return keys, unknown


def _pair_run_problems(keys: list, values: list, shapes: Mapping[str, tuple[int, int]], exclusive: bool) -> list[str]:
    bad, overlapping, covered = [], [], {}
    for row, (key, value) in enumerate(zip(keys, values), start=1):
        if key is None or rle.is_empty(value):
            continue
        shape = shapes.get(key[0])
        try:
            starts, lengths = rle.runs(value, shape or (1, 2**62))
        except PodiumError as exc:
            bad.append(f"row {row} ({join_id(*key)!r}): {exc.what}")
            continue
        if exclusive and shape:
            pixels = covered.setdefault(key[0], np.zeros(shape[0] * shape[1], bool))
            for start, length in zip(starts, lengths):
                if pixels[start:start + length].any() and key[0] not in overlapping:
                    overlapping.append(key[0])
                pixels[start:start + length] = True
    problems = []
    if bad:
        problems.append(f"{len(bad)} row(s) with an invalid run-length string: {'; '.join(bad[:SHOWN])}")
    if overlapping:
        problems.append(f"{len(overlapping)} image(s) where two classes share a pixel (exclusive classes): "
                        f"{few_quoted(overlapping)}")
    return problems
