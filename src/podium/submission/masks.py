"""Segmentation submissions in Airbus' form, right the first time.

Every test image of the sample appears at least once; each predicted object is its own run-length row
(1-indexed, column-major), an image without objects has one empty row, runs are sorted and inside the
image, and no two objects of an image share a pixel (Airbus' scorer rejects overlaps). Predictions
come at the model's size and are resized back to each image's own size before thresholding: a mask
encoded at 256 px against a 768 px image would validate as numbers and score zero.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from podium.data import rle
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
