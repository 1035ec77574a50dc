"""The draft for a competition whose images are pixel columns of CSVs (podium.spec.scan_pixels): the train
CSV's label column, the test CSV's ids, the image shape from the count of pixel columns, the sample."""

from __future__ import annotations

import os
from typing import Any

from podium.spec.record import (CLASSES_NOTE, NO_SAMPLE, Draft, Drafted, closing_fields, finished, flip_guess,
                                identity_fields, sample_note)
from podium.spec.scan import LABEL_NAMES, SourceView, few
from podium.spec.scan_labels import ONE_LABEL
from podium.spec.scan_pixels import PixelCsv, PixelSample, pixel_ids, pixel_label_column, pixel_sample, pixel_shape


def draft_pixels(view: SourceView, train: PixelCsv, test: PixelCsv, source: str | os.PathLike, slug: str) -> Draft:
    """The spec of a pixels layout: `make data` converts both CSVs into arrays, so there are no image folders."""
    label_column = pixel_label_column(train)
    classes = sorted(train.others[label_column].unique())
    shape, how = pixel_shape(len(train.pixel_columns))
    sample = pixel_sample(view, test)
    fields = identity_fields(slug) | {
        "task": Drafted("classification", ONE_LABEL),
        "layout": Drafted("pixels", f"the images are CSV rows: {train.file.rel} has {len(train.pixel_columns)} "
                                    f"pixel<N> columns and a label column, {test.file.rel} the same pixel columns "
                                    f"without one; `make data` converts them into data/<slug>/pixels/*.npy (no "
                                    f"image files)"),
        "labels_csv": Drafted(train.file.rel, f"train: {train.rows} rows"),
        "id_column": Drafted(*pixel_ids(test, sample)),
        "label_column": Drafted(label_column, f"{len(classes)} classes, e.g. {few(classes)}"),
        "test_csv": Drafted(test.file.rel, f"test: {test.rows} rows of pixel columns"),
        "image_shape": Drafted(shape, how)}
    fields |= _sample_fields(sample)
    wanted = [train.file, test.file] + ([sample.file] if sample else [])
    fields["archives"] = Drafted(list(dict.fromkeys(f.entry for f in wanted if view.entries.get(f.entry) != "folder")),
                                 "top-level files `make data` must find; every other file is copied too")
    fields["classes"] = Drafted([], CLASSES_NOTE)
    fields["metric"] = Drafted("accuracy", "check the competition's page")
    fields["flip_invariant"] = flip_guess(classes)
    fields |= closing_fields(slug)
    return finished(fields, [], _facts(train, test, shape), source)


def _sample_fields(sample: PixelSample | None) -> dict[str, Drafted]:
    """The sample submission and its id and label columns (placeholders when none was found)."""
    if not sample:
        return {"sample_submission": Drafted("sample_submission.csv", NO_SAMPLE),
                "submission_id_column": Drafted("id"), "submission_label_column": Drafted("label")}
    label = next((c for c in sample.columns[1:] if c.lower() in LABEL_NAMES), sample.columns[1])
    return {"sample_submission": Drafted(sample.file.rel, sample_note(sample.rows, sample.columns)),
            "submission_id_column": Drafted(sample.columns[0]), "submission_label_column": Drafted(label)}


def _facts(train: PixelCsv, test: PixelCsv, shape: list[int]) -> dict[str, Any]:
    """What the header says about the images: their count and shape, and advice for small ones."""
    side = min(shape[:2]) if shape else 0
    facts: dict[str, Any] = {"summary": f"{train.rows} train and {test.rows} test images as CSV rows of "
                                        f"{len(train.pixel_columns)} pixel columns"
                                        + (f" ({' x '.join(map(str, shape))})" if shape else "")}
    if 0 < side < 32:
        facts["advice"] = (f"small images ({side}x{side}): set image_size: {max(8, side)} in the experiment config "
                           f"with a from-scratch backbone (tiny_cnn, resnet9)")
    return facts
