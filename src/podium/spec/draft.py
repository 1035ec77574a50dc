"""`make spec SRC=<folder>`: a competition spec drafted from what the folder holds, each field with the reason
it was chosen (podium.spec.record), for a folder of image files (the pixels layout: podium.spec.draft_pixels).

The task's own questions are asked of the task object (podium.tasks): which label columns its labels CSV has
(`keys.label_fields`), its usual metric, whether the sample's prediction column says the submission's form.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import PurePosixPath
from typing import Callable

import pandas as pd

from podium.data.sample_form import infer_submission_form
from podium.errors import PodiumError
from podium.spec.draft_objects import object_fields
from podium.spec.draft_pixels import draft_pixels
from podium.spec.record import (CLASSES_NOTE, NO_SAMPLE, Draft, Drafted, closing_fields, finished, flip_guess,
                                identity_fields, sample_note, slug_of)
from podium.spec.scan import SourceView, few, image_facts, read_csv, scan_source, under
from podium.spec.scan_labels import ONE_LABEL, Labels, Layout, Sample, find_layout
from podium.spec.scan_pixels import find_pixel_csvs
from podium.task_keys import TASK_KEYS
from podium.tasks import get_task


def draft_spec(source: str | os.PathLike, slug: str | None = None) -> Draft:
    """A spec for the files in `source`, with a comment per field saying how it was found."""
    view = scan_source(source)
    pixels = find_pixel_csvs(view)  # images as CSV pixel columns: no image files to look at
    if pixels is not None:
        return draft_pixels(view, *pixels, source, slug_of(source, slug))
    if view.problems and not view.images():
        raise PodiumError(f"No images can be read in {view.source}.", expected="zips or folders of images",
                          received="; ".join(view.problems), fix="unpack or re-download the files named")
    slug = slug_of(source, slug)
    found = find_layout(view)
    header = _other_labels(found)
    task = get_task(found.labels.task if found.labels else "classification")  # found in the files: no spec names it yet
    fields = {**identity_fields(slug), **_layout_fields(view, found), **_test_fields(found.test_dir, found.sample)}
    fields["image_extensions"] = Drafted(sorted({PurePosixPath(f.rel).suffix.lower() for f in found.images}),
                                         "extensions of the images found")
    fields["classes"] = Drafted([], CLASSES_NOTE)
    fields["metric"] = Drafted(task.keys.default_metric, "the task's usual metric: check the competition's "
                                                         "Evaluation page")
    if found.labels and found.labels.objects:  # many rows per image: boxes, or masks of several classes
        fields.update(object_fields(found.labels, found.sample))
    if found.sample and task.spec_form_from_sample:
        header += _draft_form(fields, read_csv(found.sample.file), found.sample, found.class_examples,
                              task.spec_label_sets)
    if "flip_invariant" not in fields:  # a number or a grade target set its own
        fields["flip_invariant"] = flip_guess(found.class_examples)
    fields.update(closing_fields(slug))
    facts = image_facts(found.train_images, view.images(found.test_dir) if found.test_dir else [])
    return finished(fields, header, facts, source)


def _other_labels(found: Layout) -> list[str]:
    """A header line naming the labels CSVs not chosen, when there are any."""
    if not found.other_labels:
        return []
    return ["other labels CSVs found: " + ", ".join(f"{c.file.rel} ({c.task}, {c.matched} images)"
                                                    for c in found.other_labels)
            + ": set labels_csv, task and its columns to use one instead"]


def _layout_fields(view: SourceView, found: Layout) -> dict[str, Drafted]:
    """The task, how the train images are labelled, and which files and folders hold them."""
    labels, by_name = found.labels, found.by_name
    layout_note = (f"labels in {labels.file.rel}" if labels else by_name.note() if by_name else
                   f"a folder per class under {found.train_dir}: {len(found.classes)} classes, e.g. "
                   f"{few(found.classes)}")
    fields = {"task": Drafted(labels.task, labels.task_reason) if labels else Drafted("classification", ONE_LABEL),
              "layout": Drafted(found.layout, layout_note)}
    if by_name and by_name.pattern:
        fields["label_pattern"] = Drafted(by_name.pattern, "a regex matched at each train file name's start; its "
                                                           "group is the label")
    fields["archives"] = Drafted(_archives(view, found), "top-level files `make data` must find (a zip may also be "
                                                         "there unpacked, as a folder of the same name); every other "
                                                         "file is copied too")
    fields["train_dir"] = Drafted(found.train_dir, "folder of the train images under data/<slug>/")
    if labels:
        fields.update(_labels_fields(labels))
    return fields


def _labels_fields(labels: Labels) -> dict[str, Drafted]:
    """The labels CSV, its id column, and the columns the task reads from it (its keys' label_fields)."""
    fields = {"labels_csv": Drafted(labels.file.rel, f"{labels.rows} rows"),
              "id_column": Drafted(labels.id_column, f"{labels.matched} of its values name a train image "
                                                     f"({labels.how})")}
    for name in TASK_KEYS[labels.task].label_fields:
        fields.update(LABEL_FIELDS[name](labels))
    return fields


LABEL_FIELDS: dict[str, Callable[[Labels], dict[str, Drafted]]] = {  # a label field -> its drafted fields
    "label_column": lambda labels: {"label_column": Drafted(
        labels.label_column, f"{labels.n_classes} classes, e.g. {few(labels.class_examples)}")},
    "rle_column": lambda labels: {"rle_column": Drafted(
        labels.rle_column, "run-length strings, one row per object, empty for an image without")},
    "box_columns": lambda labels: {
        "box_columns": Drafted(list(labels.box_columns), "pixels of the original image"),
        "box_format": Drafted(labels.box_format, "read from the column names (xyxy: two corners; xywh: corner, "
                                                 "width, height): check")},
}


def _test_fields(test_dir: str, sample: Sample | None) -> dict[str, Drafted]:
    """The test folder and the sample submission's file and columns (placeholders when none was found)."""
    matched = (f": {sample.matched} test images named by the {sample.rows} sample rows (image–class pairs)"
               if sample and sample.joined else f": {sample.matched} of {sample.rows} sample ids match its files"
               if sample else ": GUESSED, no sample submission found")
    fields = {"test_dir": Drafted(test_dir or "test", "folder of the test images" + matched)}
    if not sample:
        return fields | {"sample_submission": Drafted("sample_submission.csv", NO_SAMPLE),
                         "submission_id_column": Drafted("id"), "submission_label_column": Drafted("label"),
                         "submission_id": Drafted("stem")}
    ids = ("filename: ids carry the extension (img0.jpg)" if sample.submission_id == "filename"
           else "stem: ids are file names without extension")
    return fields | {"sample_submission": Drafted(sample.file.rel, sample_note(sample.rows, sample.columns)),
                     "submission_id_column": Drafted(sample.id_column, "names the test image"),
                     "submission_label_column": Drafted(sample.label_column, "the prediction"),
                     "submission_id": Drafted(sample.submission_id, ids)}


def _archives(view: SourceView, found: Layout) -> list[str]:
    """The top-level files the spec needs: those holding train or test images, the labels and the sample."""
    needed: list[str] = []
    wanted = [f for f in view.files if (f.is_image and (under(f.rel, found.train_dir)
                                                        or under(f.rel, found.test_dir)))]
    wanted += [x.file for x in (found.labels, found.sample) if x is not None]
    for f in wanted:
        kind = view.entries.get(f.entry)
        name = f.entry if kind != "folder" else None
        if name and name not in needed:
            needed.append(name)
    return needed


def _draft_form(fields: dict[str, Drafted], frame: pd.DataFrame, sample: Sample, classes: list[str],
                label_sets: bool) -> list[str]:
    """submission_format (and positive_class, top_k, the metric) from what the sample's columns hold, each
    with how it was decided; returns lines for the header."""
    guess = infer_submission_form(frame, sample.id_column, sample.label_column, classes, label_sets)
    if guess.form == "number" and "regression" not in TASK_KEYS:
        return [f"submission: {guess.reason}; this podium has no regression task: check the sample"]
    if guess.form == "number":
        _as_number_target(fields, classes)
    if guess.ordinal:
        _reason(fields, "label_column", f"grades {guess.grades[0]}..{guess.grades[-1]}: whole numbers in a row, an "
                                        f"ordinal target (see metric)")
        fields["flip_invariant"] = Drafted(None, "unset: flips allowed (grades are not symbols drawn in the image); "
                                                 "false if a mirror image changes the grade")
    label_note = ("unused by probabilities: the sample's class columns are written" if guess.form == "probabilities"
                  else fields["submission_label_column"].reason)
    fields["submission_label_column"] = Drafted(guess.label_column, label_note)
    fields["submission_format"] = Drafted(guess.form, guess.reason)
    if guess.form == "probability":
        fields["positive_class"] = Drafted(guess.positive_class, guess.positive_note)
    if guess.form == "top_k":
        fields["top_k"] = Drafted(guess.k, "labels per row, as the sample writes them")
    fields["metric"] = Drafted(guess.metric, guess.metric_note)
    return guess.notes


def _as_number_target(fields: dict[str, Drafted], classes: list[str]) -> None:
    """The sample holds a number per image: a regression, whose labels are targets, not classes."""
    targets = [float(value) for value in classes]
    fields["task"] = Drafted("regression", "the sample holds a number per image")
    _reason(fields, "label_column", f"the target: {len(targets)} distinct numbers, from {min(targets):g} to "
                                    f"{max(targets):g}" if targets else "the target: a number per image")
    fields.pop("classes", None)  # a regression has no classes
    fields["flip_invariant"] = Drafted(None, "unset: flips allowed; false if a mirror image changes the target")


def _reason(fields: dict[str, Drafted], key: str, reason: str) -> None:
    """Another reason for a drafted field's value (nothing when the field was not drafted)."""
    if key in fields:
        fields[key] = dataclasses.replace(fields[key], reason=reason)


