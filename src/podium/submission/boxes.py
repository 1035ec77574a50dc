"""Localization submissions: one row per sample id, in the sample's order, with the class and the box
in pixels of the image's own size, written in the competition's box_format.

The model predicts xyxy fractions of the square input; a box left in those units, or in the model's
pixel size, validates as numbers and scores near zero, so every box is checked against its image.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from podium.data.competitions import CompetitionSpec
from podium.io import atomic_path
from podium.boxes import from_xyxy, to_xyxy
from podium.submission.validate import few_quoted, refuse_problems, submission_problems


def box_frame(sample: pd.DataFrame, spec: CompetitionSpec, predicted: Mapping[str, tuple[str, np.ndarray]],
              shapes: Mapping[str, tuple[int, int]]) -> pd.DataFrame:
    """The sample's rows with class and box filled from `predicted` (id -> (class, xyxy fractions)).

    An id without a prediction (an undecodable image) keeps the sample's own placeholder row.
    """
    frame = sample.copy()
    id_column, label_column, box_columns = spec.submission_id_column, spec.submission_label_column, list(spec.box_columns)
    frame[box_columns] = frame[box_columns].astype(object)
    for position, image_id in enumerate(frame[id_column].astype(str)):
        if image_id not in predicted:
            continue
        label, box = predicted[image_id]
        height, width = shapes[image_id]
        pixels = np.clip(np.asarray(box, np.float64), 0.0, 1.0) * [width, height, width, height]
        frame.at[position, label_column] = label
        values = from_xyxy(pixels[None], spec.box_format)[0]
        for column, value in zip(box_columns, values):
            frame.at[position, column] = f"{value:.1f}"
    return frame


def box_submission_problems(frame: pd.DataFrame, sample: pd.DataFrame, spec: CompetitionSpec, classes: Sequence[str],
                            shapes: Mapping[str, tuple[int, int]]) -> list[str]:
    """The classification checks (columns, ids once each in the sample's order, known classes) plus
    boxes: numbers, positive size, inside the image. shapes: id -> (height, width) where known."""
    problems = submission_problems(frame, sample, spec.submission_id_column, spec.submission_label_column, classes)
    if problems or any(column not in frame.columns for column in spec.box_columns):
        return problems or [f"box columns {list(spec.box_columns)} missing from the frame"]
    numbers = frame[list(spec.box_columns)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    ids = frame[spec.submission_id_column].astype(str).tolist()
    not_numbers = [i for i, row in zip(ids, numbers) if not np.isfinite(row).all()]
    if not_numbers:
        problems.append(f"{len(not_numbers)} box(es) with a value that is not a number: {few_quoted(not_numbers)}")
    outside = []
    for image_id, box in zip(ids, to_xyxy(np.nan_to_num(numbers), spec.box_format)):
        if image_id in shapes and image_id not in not_numbers:
            height, width = shapes[image_id]
            x1, y1, x2, y2 = box
            if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
                outside.append(image_id)
    if outside:
        problems.append(f"{len(outside)} box(es) outside their image or of no size: {few_quoted(outside)}")
    return problems


def validate_box_submission(frame: pd.DataFrame, sample: pd.DataFrame, spec: CompetitionSpec, classes: Sequence[str],
                            shapes: Mapping[str, tuple[int, int]]) -> None:
    refuse_problems(box_submission_problems(frame, sample, spec, classes, shapes),
                    "The localization submission does not match the sample",
                    expected=f"columns {list(sample.columns)}; the sample's ids once each, in its order; a known "
                             f"class; boxes ({spec.box_format}, pixels) inside their image",
                    fix="build it with podium.submission.boxes.box_frame, which scales each box to its image's "
                        "own size")


def write_box_submission(path: str | os.PathLike, frame: pd.DataFrame, sample: pd.DataFrame, spec: CompetitionSpec,
                         classes: Sequence[str], shapes: Mapping[str, tuple[int, int]]) -> Path:
    """Validate, then write atomically: an invalid file is never written, an older one survives."""
    validate_box_submission(frame, sample, spec, classes, shapes)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(path)
