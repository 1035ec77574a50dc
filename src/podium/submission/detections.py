"""Detection submissions: one row per sample id, in the sample's order, its boxes as one PredictionString in
the competition's format (podium.submission.prediction_string; the spec's `prediction_string`).

The model's boxes are fractions of the image; the string wants pixels of the image's own size, so each box is
scaled by its image's (height, width) and clipped into it. A box left in fractions, or at the model's input
size, still parses as numbers and scores near zero: every box is checked against its image, every score
against 0..1 and every class against the run's, and the whole file is refused before a byte is written.
A class is written as its name when every class name is a whole number (VinBigData's class_id 0..13), else as
its index in the run's classes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from podium.data.competitions import CompetitionSpec
from podium.errors import PodiumError
from podium.io import atomic_path
from podium.submission.prediction_string import Detections, StringFormat, parse, write
from podium.submission.text import SHOWN, column_text, few_quoted, repeated_values
from podium.submission.validate import column_problems, refuse_problems


def class_codes(classes: Sequence[str]) -> list[int]:
    """What the string writes for each class: its name as a number when every name is a whole number, else
    its index (0, 1, ...)."""
    names = [str(name) for name in classes]
    return [int(name) for name in names] if names and all(n.isdigit() for n in names) else list(range(len(names)))


def detection_string(dets: np.ndarray, shape: tuple[int, int], form: StringFormat, codes: Sequence[int]) -> str:
    """One image's PredictionString from its (m, 6) `[class, score, x1, y1, x2, y2]` fraction rows; shape is the
    image's (height, width). No row: the format's empty row."""
    dets = np.asarray(dets, np.float64).reshape(-1, 6)
    height, width = shape
    pixels = np.clip(dets[:, 2:], 0.0, 1.0) * [width, height, width, height]
    scores = np.clip(dets[:, 1], 0.0, 1.0)
    classes = np.asarray(codes, np.int64)[dets[:, 0].astype(np.int64)] if len(dets) else np.zeros(0, np.int64)
    return write(Detections(pixels, scores, classes if form.has_class else None), form)


def detection_frame(sample: pd.DataFrame, spec: CompetitionSpec, classes: Sequence[str],
                    detections: Mapping[str, np.ndarray], shapes: Mapping[str, tuple[int, int]]) -> pd.DataFrame:
    """The sample's rows (its ids, order and columns) with the PredictionString filled from `detections`
    (id -> (m, 6) `[class, score, x1, y1, x2, y2]` fractions; shapes: id -> (height, width)). An id without
    detections or a shape (an undecodable image) gets the format's empty row."""
    form, codes = spec.resolved_prediction_string, class_codes(classes)
    label_column = spec.submission_label_column
    frame = sample.copy()
    frame[label_column] = [
        detection_string(detections[i], shapes[i], form, codes) if i in detections and i in shapes else form.empty_row
        for i in frame[spec.submission_id_column].astype(str)]
    return frame


def detection_submission_problems(frame: pd.DataFrame, sample: pd.DataFrame, spec: CompetitionSpec,
                                  classes: Sequence[str], shapes: Mapping[str, tuple[int, int]] | None = None
                                  ) -> list[str]:
    """Every way `frame` would be refused or mis-scored, one sentence each; [] when valid: the sample's columns,
    its ids once each in its order, and per row a PredictionString that parses in the spec's format, with
    scores in 0..1, known classes and (where shapes gives the image's (height, width)) boxes inside the image."""
    problems = column_problems(frame, sample)
    id_column, label_column = spec.submission_id_column, spec.submission_label_column
    if problems or id_column not in frame.columns or label_column not in frame.columns:
        return problems or [f"columns {id_column!r} and {label_column!r} are needed"]
    ids, sample_ids = column_text(frame[id_column]), column_text(sample[id_column])
    problems += _id_problems(ids, sample_ids)
    problems += _string_problems(ids, column_text(frame[label_column]), spec.resolved_prediction_string,
                                 set(class_codes(classes)), shapes or {})
    return problems


def _id_problems(ids: list[str], sample_ids: list[str]) -> list[str]:
    problems = []
    repeated = repeated_values(ids)
    if repeated:
        problems.append(f"{len(repeated)} id(s) on more than one row: {few_quoted(repeated)}")
    present, expected = set(ids), set(sample_ids)
    missing = [i for i in sample_ids if i not in present]
    extra = list(dict.fromkeys(i for i in ids if i not in expected))
    if missing:
        problems.append(f"{len(missing)} id(s) of the sample have no row: {few_quoted(missing)}")
    if extra:
        problems.append(f"{len(extra)} id(s) not in the sample: {few_quoted(extra)}")
    if not problems and ids != sample_ids:
        row = next(n for n, (got, want) in enumerate(zip(ids, sample_ids), start=1) if got != want)
        problems.append(f"ids are in a different order than the sample's: row {row} has {ids[row - 1]!r} where "
                        f"the sample has {sample_ids[row - 1]!r}")
    return problems


def _string_problems(ids: list[str], texts: list[str], form: StringFormat, codes: set[int],
                     shapes: Mapping[str, tuple[int, int]]) -> list[str]:
    """Rows whose PredictionString does not parse, holds an unknown class or a box outside its image."""
    malformed, unknown, empty = [], [], []
    empty_row = " ".join(form.empty_row.split())
    for image_id, text in zip(ids, texts):
        text = " ".join(text.split())
        if empty_row and text == empty_row:
            continue  # the format's "no box" row (VinBigData's "14 1 0 0 1 1")
        if empty_row and not text:
            empty.append(image_id)
            continue
        shape = shapes.get(image_id)
        try:
            parsed = parse(text, form, image_id, image_size=(shape[1], shape[0]) if shape else None)
        except PodiumError as exc:
            malformed.append(f"{exc.what[:-1]}: {exc.received}")
            continue
        if parsed.classes is not None and not set(parsed.classes.tolist()) <= codes:
            unknown.append(f"{image_id!r} ({', '.join(map(str, sorted(set(parsed.classes.tolist()) - codes)))})")
    problems = []
    if malformed:
        problems.append(f"{len(malformed)} row(s) with a malformed PredictionString ({form.pattern}): "
                        f"{'; '.join(malformed[:SHOWN])}" + (f"; and {len(malformed) - SHOWN} more"
                                                            if len(malformed) > SHOWN else ""))
    if unknown:
        problems.append(f"{len(unknown)} row(s) with a class outside {sorted(codes)}: {', '.join(unknown[:SHOWN])}")
    if empty:
        problems.append(f"{len(empty)} empty row(s) where the format's no-box row is {form.empty_row!r}: "
                        f"{few_quoted(empty)}")
    return problems


def validate_detection_submission(frame: pd.DataFrame, sample: pd.DataFrame, spec: CompetitionSpec,
                                  classes: Sequence[str], shapes: Mapping[str, tuple[int, int]] | None = None) -> None:
    form = spec.resolved_prediction_string
    refuse_problems(detection_submission_problems(frame, sample, spec, classes, shapes),
                    "The detection submission would be refused or mis-scored",
                    expected=f"columns {list(sample.columns)}; the sample's ids once each, in its order; per row "
                             f"boxes as '{form.pattern}' in pixels inside the image, scores in 0..1, known classes, "
                             f"{form.empty_row!r} for an image without boxes",
                    fix="build it with podium.submission.detections.detection_frame, which scales each box to its "
                        "image's own size")


def rehearsal_problems(frame: pd.DataFrame, sample: pd.DataFrame, spec: CompetitionSpec,
                       classes: Sequence[str]) -> list[str]:
    """A kernel's submission.csv checked without the index (the offline rehearsal): everything but whether
    each box lies inside its image, whose size only the index knows."""
    return detection_submission_problems(frame, sample, spec, classes, None)


def write_detection_submission(path: str | os.PathLike, frame: pd.DataFrame, sample: pd.DataFrame,
                               spec: CompetitionSpec, classes: Sequence[str],
                               shapes: Mapping[str, tuple[int, int]]) -> Path:
    """Validate, then write atomically: an invalid file is never written, an older one survives."""
    validate_detection_submission(frame, sample, spec, classes, shapes)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(path)
