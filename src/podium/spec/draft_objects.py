"""The drafted fields of a labels CSV with many rows per image (podium.spec.scan_objects): detection's class
column, classes and PredictionString format, or the class masks of a segmentation with several classes.

Which of the two is asked of the task's keys (`box_lists`: many boxes per image), not of its name.
"""

from __future__ import annotations

import pandas as pd

from podium.data.competitions import DEFAULT_BOX_CLASS, STRING_FIELDS
from podium.spec.record import Drafted
from podium.spec.scan import few, read_csv
from podium.spec.scan_labels import RLE_NAMES, Labels, Sample
from podium.submission.prediction_string import FORMATS, StringFormat
from podium.task_keys import TASK_KEYS

METRIC_CHOICES = ("check the competition's Evaluation page: wheat_map (Global Wheat), \"map_at_iou(iou=0.4)\" "
                  "(VinBigData), f2_iou (Great Barrier Reef), coco_map (mAP@0.5:0.95)")


def object_fields(labels: Labels, sample: Sample | None) -> dict[str, Drafted]:
    """The fields a many-rows-per-image labels CSV adds to the draft (each with its reason)."""
    frame = read_csv(sample.file) if sample else None
    flips = Drafted(None, "unset: flips allowed (the classes name objects, not symbols); false if a mirror image "
                          "changes what a box or mask holds")
    if TASK_KEYS[labels.task].box_lists:
        return detection_fields(labels, sample, frame) | {"flip_invariant": flips}
    return class_mask_fields(labels, sample, frame) | {"flip_invariant": flips}


# ---- detection ----------------------------------------------------------------------------------------
def detection_fields(labels: Labels, sample: Sample | None, frame: pd.DataFrame | None) -> dict[str, Drafted]:
    """Box columns and format, the class column and its classes, the PredictionString format and column."""
    facts = labels.objects
    listed = len(labels.box_columns) == 1
    fields = {"box_columns": Drafted(list(labels.box_columns), "pixels of the original image"
                                     + (": one column holding each box as a list" if listed else "")),
              "box_format": Drafted(labels.box_format, facts.box_reason),
              "class_column": Drafted(facts.class_column, facts.class_reason)}
    if facts.class_column:
        fields["classes"] = Drafted(facts.classes, f"{len(facts.classes)} classes of {facts.class_column!r}, sorted "
                                                   f"(as numbers when every name is one): a class's position is "
                                                   f"the index a PredictionString writes: keep the competition's order")
    else:
        fields["classes"] = Drafted([], f"empty: one class, named {DEFAULT_BOX_CLASS!r}; write its name here")
    fields["metric"] = Drafted("coco_map", METRIC_CHOICES)
    if sample is not None and frame is not None:
        fields["submission_label_column"] = Drafted(sample.label_column, "the PredictionString: the boxes of the "
                                                                         "image, as prediction_string writes them")
        fields["prediction_string"] = prediction_string(labels, frame[sample.label_column])
    return fields


def prediction_string(labels: Labels, column: pd.Series) -> Drafted:
    """The submission's box format: the labels' box format, a class first when there is a class column, and the
    sample's one placeholder as the row of an image without boxes; a preset's name when it is one."""
    has_class = bool(labels.objects.class_column)
    fields = {"box_format": labels.box_format, "has_class": has_class, "score_first": True,
              "empty_row": no_box_row(column, len(labels.objects.classes)) if has_class else ""}
    empty_row = fields["empty_row"]
    said = (f"{'class ' if has_class else ''}score and the box in {labels.box_format} as the labels write it"
            + (f"; the sample's every row {empty_row!r} names class {empty_row.split()[0]}, which no box has: the "
               f"row of an image without boxes" if empty_row else ""))
    preset = next((name for name, form in FORMATS.items() if form == StringFormat(**fields)), "")
    if preset:
        same = [name for name, form in FORMATS.items() if form == FORMATS[preset] and name != preset]
        return Drafted(preset, f"{said}: the {preset} preset" + (f" (the same as {few(same)})" if same else ""))
    written = {key: fields[key] for key in STRING_FIELDS if key != "score_first" and fields[key] != ""}
    return Drafted(written, f"{said}; score first (every Kaggle format so far): check the Evaluation page")


def no_box_row(column: pd.Series, n_classes: int) -> str:
    """The sample's one value when it names a class past the boxes' (VinBigData's "14 1 0 0 1 1", "no finding"),
    else "" (a placeholder box, Global Wheat's "1.0 0 0 50 50")."""
    values = {str(v).strip() for v in column}
    first = values.pop().split() if len(values) == 1 else []
    return " ".join(first) if len(first) == 6 and first[0].isdigit() and int(first[0]) >= n_classes else ""


# ---- several mask classes -----------------------------------------------------------------------------
def class_mask_fields(labels: Labels, sample: Sample | None, frame: pd.DataFrame | None) -> dict[str, Drafted]:
    """class_masks and the classes (as written, in channel order), the class columns, the sample's run-length
    column, and the mean Dice over image–class pairs."""
    facts = labels.objects
    fields = {"class_masks": Drafted(facts.class_masks, facts.masks_reason),
              "classes": Drafted(facts.classes, facts.class_reason + "; their order is the model's channels"),
              "metric": Drafted("mean_dice_pairs", "the mean Dice over image–class pairs (Severstal, Clouds): check "
                                                   "the Evaluation page")}
    if facts.class_column:
        fields["class_column"] = Drafted(facts.class_column, "the class of each row beside its image")
    fields["rle_column"] = Drafted(labels.rle_column, "run-length strings, one row per image–class pair, empty where "
                                                      "the image does not hold the class")
    if sample is None or frame is None:
        return fields
    rle = next((c for c in sample.columns if c == labels.rle_column), "") or \
        next((c for c in sample.columns if c.lower() in RLE_NAMES), sample.label_column)
    fields["submission_label_column"] = Drafted(rle, "the run-length string of each image–class pair")
    if sample.joined:
        fields["submission_id_column"] = Drafted(sample.id_column, "joins the test image and its class with the "
                                                                   "last `_`")
        return fields
    column = next((c for c in sample.columns if c not in (sample.id_column, rle)
                   and set(frame[c].astype(str)) <= set(facts.classes)), "")
    if column:
        fields["submission_class_column"] = Drafted(column, "the class of each row beside its test image")
    return fields
