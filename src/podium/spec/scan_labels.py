"""Where the train and test images are and how the train images are labelled, read from the folder's files.

The sample submission's id column names the test images (with or without extension), which gives the test
folder; a labels CSV has a column whose values name train images (the task follows from its other columns:
run-length strings are segmentation, four box columns localization, space-separated sets multi-label);
without one, a folder per class, or a label at the start of each file name (Dogs vs. Cats: cat.123.jpg).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import pandas as pd

from podium.data.competitions import DEFAULT_LABEL_PATTERN
from podium.errors import PodiumError
from podium.spec.scan import (IMAGE_EXTENSIONS, LABEL_NAMES, SHOW, SourceFile, SourceView, ancestors, few,
                              is_sample_name, parent, read_csv, under)
from podium.spec.scan_objects import (ObjectFacts, box_list_column, box_numbers, detection_classes,
                                      joined_images, mask_classes, read_box_format)
from podium.task_keys import TASK_KEYS

BOX_NAMES = {  # lower-case column names -> box_format
    ("x1", "y1", "x2", "y2"): "xyxy", ("xmin", "ymin", "xmax", "ymax"): "xyxy",
    ("x_min", "y_min", "x_max", "y_max"): "xyxy", ("left", "top", "right", "bottom"): "xyxy",
    ("x", "y", "w", "h"): "xywh", ("x", "y", "width", "height"): "xywh",
    ("bbox_x", "bbox_y", "bbox_w", "bbox_h"): "xywh",
}
RLE_NAMES = ("encodedpixels", "rle", "rle_mask", "mask", "encoded_pixels", "segmentation")
_RLE = re.compile(r"^\s*\d+(\s+\d+)+\s*$")
ONE_LABEL = "one label per image"  # why the task is classification


# ---- the sample submission and the test folder ------------------------------------------------------
@dataclass
class Sample:
    file: SourceFile
    columns: list[str]
    rows: int
    id_column: str
    label_column: str
    submission_id: str
    test_dir: str
    matched: int
    joined: bool = False  # each id joins a test image and a class (`img.jpg_1`): a row per image–class pair


def _names_below(images: list[SourceFile]) -> dict[str, tuple[set[str], set[str]]]:
    """folder -> (file names, stems) of the images anywhere below it."""
    below: dict[str, tuple[set[str], set[str]]] = {}
    for f in images:
        name = PurePosixPath(f.rel).name
        stem = PurePosixPath(f.rel).stem
        for folder in ancestors(f.rel):
            names, stems = below.setdefault(folder, (set(), set()))
            names.add(name)
            stems.add(stem)
    return below


def _best_folder(ids: set[str], below: dict[str, tuple[set[str], set[str]]]) -> tuple[str, str, int]:
    """(folder, "filename"|"stem", matches): the folder whose images the ids name best; deepest on a tie."""
    best = ("", "stem", 0)
    for folder in sorted(below, key=lambda d: (d.count("/") + bool(d), d)):
        names, stems = below[folder]
        for how, pool in (("filename", names), ("stem", stems)):
            matched = len(ids & pool)
            if matched > best[2] or (matched == best[2] and matched and folder.startswith(best[0])):
                best = (folder, how, matched)
    return best


def find_samples(view: SourceView, images: list[SourceFile]) -> list[Sample]:
    """Sample submission candidates, best first: the most ids naming images, then a name with "sample"."""
    candidates = [f for f in view.csvs() if is_sample_name(f.rel)]
    below = _names_below(images)
    found = []
    for file in candidates:
        frame = read_csv(file)
        if frame.empty or len(frame.columns) < 2:
            continue
        id_column = frame.columns[0]
        folder, how, matched = _best_folder(set(frame[id_column]), below)
        images = joined_images(frame[id_column])
        joined = _best_folder(set(images), below) if images else ("", "", 0)
        others = [c for c in frame.columns if c != id_column]
        label_column = next((c for c in others if c.lower() in LABEL_NAMES), others[0])
        is_joined = joined[2] > matched  # Severstal's sample: ImageId_ClassId
        if is_joined:
            folder, how, matched = joined
        found.append(Sample(file, list(frame.columns), len(frame), id_column, label_column, how, folder, matched,
                            is_joined))
    return sorted(found, key=lambda s: (-s.matched, "sample" not in s.file.rel.lower(), len(s.file.rel)))


def _sample_for(labels: Labels | None, samples: list[Sample]) -> Sample | None:
    """The first candidate that has the columns the task writes (boxes, run-lengths), else the best one."""
    if not samples:
        return None
    if not labels:
        return samples[0]
    boxes = set(labels.box_columns) if "box_columns" in TASK_KEYS[labels.task].submission_fields else set()
    needed = boxes | ({labels.rle_column} if labels.rle_column else set())
    return next((s for s in samples if needed <= set(s.columns)), samples[0])


def _guess_test_dir(images: list[SourceFile]) -> str:
    folders = Counter(parent(f.rel) for f in images)
    named = [d for d in folders if PurePosixPath(d).name.lower().startswith("test")]
    return max(named, key=lambda d: folders[d]) if named else ""


# ---- the labels CSV ---------------------------------------------------------------------------------
@dataclass
class Labels:
    file: SourceFile
    rows: int
    id_column: str
    matched: int
    how: str
    train_dir: str
    task: str = "classification"
    task_reason: str = ONE_LABEL  # what in the CSV said so: written beside the drafted task
    label_column: str = "label"
    n_classes: int = 0
    class_examples: list[str] = field(default_factory=list)
    rle_column: str = ""
    box_columns: tuple[str, ...] = ()
    box_format: str = "xyxy"
    joined_id: bool = False  # the id column joins the image and a class (`img.jpg_1`): image–class pairs
    objects: ObjectFacts | None = None  # many rows per image: detection's boxes, or masks of several classes


def find_labels(view: SourceView, train_images: list[SourceFile], sample: Sample | None,
                skip: set[str]) -> list[Labels]:
    """Labels CSV candidates (each with its best id column), the one naming the most train images first."""
    below = _names_below(train_images)
    found: list[Labels] = []
    for file in view.csvs():
        if file.rel in skip:
            continue
        frame = read_csv(file)
        if frame.empty:
            continue
        best = _best_id_column(file, frame, below, train_images)
        if best:
            _read_targets(best, frame, sample)
            found.append(best)
    return sorted(found, key=lambda labels: -labels.matched)


def _best_id_column(file: SourceFile, frame: pd.DataFrame, below: dict[str, tuple[set[str], set[str]]],
                    train_images: list[SourceFile]) -> Labels | None:
    """The column naming the most train images (at least half its values), or None."""
    best: Labels | None = None
    for column in frame.columns:
        ids = set(frame[column])
        paths = sum("/" in i for i in ids) > len(ids) // 2  # ids like "cats/1.jpg"
        folder, how, matched = _best_folder({PurePosixPath(i).name for i in ids} if paths else ids, below)
        images = set(joined_images(ids) or ()) if not paths else set()
        joined = _best_folder(images, below) if images else ("", "", 0)
        if joined[2] > matched:  # Severstal's ImageId_ClassId: img.jpg_1
            ids, (folder, how, matched) = images, joined
        if matched < max(1, len(ids) // 2) or (best and matched <= best.matched):
            continue
        how = "paths relative to train_dir" if paths else "file names" if how == "filename" else "file stems"
        if paths:
            folder = _path_prefix(ids, train_images) or folder
        best = Labels(file, len(frame), column, matched, how, folder, joined_id=ids is images)
        if best.joined_id:
            best.how += " joined with a class by the last `_`"
    return best


def _path_prefix(ids: set[str], train_images: list[SourceFile]) -> str:
    """The folder that ids written as relative paths (cats/1.jpg) are relative to; "." for the root."""
    rels = {f.rel for f in train_images}
    by_name: dict[str, list[str]] = {}
    for rel in rels:
        by_name.setdefault(PurePosixPath(rel).name, []).append(rel)
    prefixes: Counter = Counter()
    for image_id in ids:
        for rel in by_name.get(PurePosixPath(image_id).name, []):
            if rel == image_id:
                prefixes["."] += 1
            elif rel.endswith("/" + image_id):
                prefixes[rel[:-len(image_id) - 1]] += 1
    return prefixes.most_common(1)[0][0] if prefixes else ""


def _read_targets(labels: Labels, frame: pd.DataFrame, sample: Sample | None) -> None:
    """The task and its columns from the CSV's other columns: run-lengths, boxes, else a label column."""
    others = [c for c in frame.columns if c != labels.id_column]
    lower = {c.lower(): c for c in others}
    rle = next((c for c in others if c.lower() in RLE_NAMES or _looks_like_rle(frame[c])), "")
    if rle:
        labels.task, labels.rle_column = "segmentation", rle
        labels.task_reason = "found a column of run-length strings in the labels CSV"
        labels.objects = mask_classes(frame, labels.id_column, rle, labels.joined_id)
        if labels.objects:
            labels.task_reason += f", one row per image–class pair ({labels.objects.class_reason})"
            labels.class_examples = labels.objects.classes
        return
    names = next((names for names in BOX_NAMES if all(n in lower for n in names)), ())
    listed = "" if names else box_list_column(frame, others)
    labels.box_columns = tuple(lower[n] for n in names) or ((listed,) if listed else ())
    if labels.box_columns:
        numbers = box_numbers(frame, labels.box_columns)
        labels.box_format, box_reason = read_box_format(numbers, BOX_NAMES.get(names, ""))
        others = [c for c in others if c not in labels.box_columns]
        if _many_boxes(labels, frame, sample):
            _read_detection(labels, frame, box_reason)
            return
        labels.task, labels.task_reason = "localization", "found four box columns in the labels CSV"
    _read_label_column(labels, frame, others, sample)


def _many_boxes(labels: Labels, frame: pd.DataFrame, sample: Sample | None) -> bool:
    """Boxes are detection's (many per image) when an image has several rows, a box is one list column, or the
    sample has no box columns to fill but a PredictionString."""
    strings = sample is not None and not set(labels.box_columns) <= set(sample.columns) and any(
        "prediction" in c.lower() for c in sample.columns)
    return bool(frame[labels.id_column].duplicated().any() or len(labels.box_columns) == 1 or strings)


def _read_detection(labels: Labels, frame: pd.DataFrame, box_reason: str) -> None:
    """Detection: the box columns, their format, and the class column with its classes."""
    repeated = int(frame[labels.id_column].duplicated().sum())
    labels.task = "detection"
    labels.task_reason = (f"found {'a box list column' if len(labels.box_columns) == 1 else 'four box columns'} in "
                          f"the labels CSV, {repeated} rows repeating an image: several boxes per image")
    filled = frame[list(labels.box_columns)].apply(lambda column: column.str.strip() != "").any(axis=1)
    labels.objects = detection_classes(frame, [labels.id_column, *labels.box_columns], filled)
    labels.objects.box_reason = box_reason
    labels.class_examples = labels.objects.classes


def _read_label_column(labels: Labels, frame: pd.DataFrame, others: list[str], sample: Sample | None) -> None:
    """The label column (the sample's, a usual name, else the fewest distinct values) and its classes."""
    label = ""
    if sample and sample.label_column in others:
        label = sample.label_column
    label = label or next((c for c in others if c.lower() in LABEL_NAMES), "")
    if not label and others:  # the column with the fewest distinct values, at least two
        counts = {c: frame[c].nunique() for c in others}
        label = min(others, key=lambda c: (counts[c] < 2, counts[c]))
    labels.label_column = label or "label"
    if label:
        values = sorted(frame[label].unique())
        labels.n_classes, labels.class_examples = len(values), [str(v) for v in values]
        if not labels.box_columns and any(len(str(v).split()) > 1 for v in values):  # a box has one label
            names = sorted({name for value in values for name in str(value).split()})  # label sets
            labels.task, labels.n_classes, labels.class_examples = "multilabel", len(names), names
            labels.task_reason = "the labels CSV's label column holds space-separated label sets"


def _looks_like_rle(values: pd.Series) -> bool:
    filled = [v for v in values.head(2000) if str(v).strip()]
    if not filled:
        return False
    runs = [v for v in filled if _RLE.match(str(v)) and len(str(v).split()) % 2 == 0]
    return len(runs) >= 0.9 * len(filled)


SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "'|'"}


def labels_csv_cause(view: SourceView, train_images: list[SourceFile]) -> tuple[str, str, str, str] | None:
    """Why no CSV labels the train images, where the cause is a known accident to a labels CSV: saved
    with another separator, or ids that lost their leading zeros (Excel turns 0012 into 12).
    (what, expected, received, fix), or None."""
    stems = {PurePosixPath(f.rel).stem for f in train_images}
    widths = {len(s) for s in stems if s.isdigit()}
    for file in view.csvs():
        try:
            frame = read_csv(file)
        except PodiumError:
            continue
        cause = _separator_cause(file, frame) or _lost_zeros_cause(file, frame, stems, widths)
        if cause:
            return cause
    return None


def _separator_cause(file: SourceFile, frame: pd.DataFrame) -> tuple[str, str, str, str] | None:
    """A CSV read as one column whose header holds semicolons, tabs or '|': saved with another separator."""
    header = str(frame.columns[0]) if len(frame.columns) == 1 else ""
    used = [sep for sep in SEPARATORS if sep in header]
    if not used:
        return None
    name = PurePosixPath(file.rel).name
    return (f"{file.rel} is separated by {SEPARATORS[used[0]]}, not commas.",
            "a comma-separated labels CSV (id,label)", f"header {header!r}",
            f"save {file.rel} comma-separated (Excel: 'CSV UTF-8 (comma delimited)'), or convert it: "
            f"python -c \"import pandas as p; p.read_csv('{name}', sep='{used[0]}', "
            f"dtype=str).to_csv('{name}', index=False)\"")


def _lost_zeros_cause(file: SourceFile, frame: pd.DataFrame, stems: set[str],
                      widths: set[int]) -> tuple[str, str, str, str] | None:
    """A column of numbers that name train images once zero-padded: a spreadsheet dropped the zeros."""
    name = PurePosixPath(file.rel).name
    for column in frame.columns:
        ids = [i for i in frame[column] if i.isdigit()]
        if not ids or not widths or len(ids) < len(frame) // 2:
            continue
        width = max(widths, key=lambda w: sum(i.zfill(w) in stems for i in ids))
        padded = sum(i.zfill(width) in stems for i in ids)
        if padded >= max(1, len(ids) // 2) and padded > sum(i in stems for i in ids):
            example = next(i for i in ids if i.zfill(width) in stems and i not in stems)
            return (f"column {column!r} of {file.rel} holds numbers that lost their leading zeros.",
                    f"ids as the file names write them ({example.zfill(width)!r} for "
                    f"{example.zfill(width)}.<ext>)", f"{example!r} ({padded} of {len(ids)} ids match a "
                    f"file once zero-padded to {width} digits)",
                    f"use the CSV as downloaded (a spreadsheet program drops the zeros when it saves), or "
                    f"pad the column back: python -c \"import pandas as p; f=p.read_csv('"
                    f"{name}', dtype=str); f['{column}']=f['{column}'].str.zfill({width}); "
                    f"f.to_csv('{name}', index=False)\"")
    return None


# ---- a folder per class -----------------------------------------------------------------------------
def _find_class_folders(train_images: list[SourceFile]) -> tuple[str, list[str]]:
    """(train_dir, classes): the folder whose subfolders hold the most images directly; "" if none has two."""
    direct: dict[str, Counter] = {}
    for f in train_images:
        parts = PurePosixPath(f.rel).parts
        if len(parts) < 2:
            continue
        folder = "/".join(parts[:-2])
        direct.setdefault(folder, Counter())[parts[-2]] += 1
    candidates = {d: c for d, c in direct.items() if len(c) >= 2}
    if not candidates:
        return "", []
    folder = max(candidates, key=lambda d: (sum(candidates[d].values()), d.count("/")))
    return folder or ".", sorted(candidates[folder])


# ---- layout filename: the label is part of each train file's name (Dogs vs. Cats: cat.123.jpg) -----------
FILENAME_CLASSES_MAX = 50
FILENAME_MIN_PER_CLASS = 3
_SEPARATED = re.compile(r"([^._-]+)[_-]")  # cat_12.jpg, dog-7.png: the label before a separator


@dataclass
class FilenameClasses:
    train_dir: str
    classes: list[str]
    counts: Counter
    pattern: str  # "" = the default, the text before the first dot
    how: str

    def note(self) -> str:
        """How the labels were found, for the drafted layout."""
        shown = ", ".join(f"{c} ({self.counts[c]})" for c in self.classes[:SHOW])
        return (f"no class folders and no labels CSV, but the {sum(self.counts.values())} image names in "
                f"{self.train_dir} start with one of {len(self.classes)} labels ({self.how}): {shown}")


def _find_filename_classes(train_images: list[SourceFile]) -> FilenameClasses | None:
    """The folder whose images' name prefixes form a handful of classes (2..FILENAME_CLASSES_MAX, each with
    FILENAME_MIN_PER_CLASS files or more): before the first dot first, else before a '_' or '-'."""
    folders: dict[str, list[str]] = {}
    for f in train_images:
        folders.setdefault(parent(f.rel), []).append(PurePosixPath(f.rel).name)
    found = []
    for folder, names in folders.items():
        for pattern, compiled, how in (("", re.compile(DEFAULT_LABEL_PATTERN), "the text before the first dot"),
                                       (_SEPARATED.pattern, _SEPARATED, "the text before the first '_' or '-'")):
            matches = [compiled.match(n) for n in names]
            if not all(matches):
                continue
            counts = Counter(m.group(1) for m in matches)
            if 2 <= len(counts) <= FILENAME_CLASSES_MAX and min(counts.values()) >= FILENAME_MIN_PER_CLASS:
                found.append(FilenameClasses(folder or ".", sorted(counts), counts, pattern, how))
                break
    return max(found, key=lambda c: sum(c.counts.values())) if found else None


# ---- the whole picture ------------------------------------------------------------------------------
@dataclass
class Layout:
    """Where the images are and how the train images are labelled: what a draft writes down."""

    images: list[SourceFile]  # every image file
    train_images: list[SourceFile]  # those outside the test folder
    test_dir: str  # "" when neither a sample nor a folder name says
    sample: Sample | None
    labels: Labels | None  # the labels CSV naming the most train images
    other_labels: list[Labels]  # further candidates, named in the draft's header
    layout: str = "csv"  # csv | folder | filename
    train_dir: str = ""
    classes: list[str] = field(default_factory=list)  # the class folders' names
    by_name: FilenameClasses | None = None  # layout filename: the labels in the file names

    @property
    def class_examples(self) -> list[str]:
        return self.labels.class_examples if self.labels else self.classes


def find_layout(view: SourceView) -> Layout:
    """The test folder (from the sample), the labels (a CSV, class folders, or file names) and the train folder;
    a folder whose train images carry no labels podium can find is refused with what was seen."""
    images = view.images()
    if not images:
        raise PodiumError(f"No image files found in {view.source}.",
                          expected=f"images ({', '.join(IMAGE_EXTENSIONS)}) in zips or folders",
                          received=", ".join(sorted(view.entries)) or "an empty folder",
                          fix="point SRC= at the folder holding the competition's downloaded files")
    samples = find_samples(view, images)
    test_dir = samples[0].test_dir if samples else _guess_test_dir(images)
    train_images = [f for f in images if not under(f.rel, test_dir)] if test_dir else images
    candidates = find_labels(view, train_images, samples[0] if samples else None, {s.file.rel for s in samples})
    labels = candidates[0] if candidates else None
    found = Layout(images, train_images, test_dir, _sample_for(labels, samples), labels, candidates[1:])
    if labels:
        found.train_dir = labels.train_dir
        return found
    found.layout = "folder"
    found.train_dir, found.classes = _find_class_folders(train_images)
    if not found.train_dir:
        found.by_name = _find_filename_classes(train_images)
        if found.by_name:
            found.layout, found.train_dir, found.classes = "filename", found.by_name.train_dir, found.by_name.classes
    if not found.train_dir:
        _refuse_unlabelled(view, train_images)
    return found


def _refuse_unlabelled(view: SourceView, train_images: list[SourceFile]) -> None:
    """No labels CSV, class folders or labelled file names: the known accident, else what was seen."""
    cause = labels_csv_cause(view, train_images)
    if cause:
        raise PodiumError(f"Cannot tell how the train images in {view.source} are labelled: {cause[0]}",
                          expected=cause[1], received=cause[2], fix=cause[3])
    raise PodiumError(f"Cannot tell how the train images in {view.source} are labelled.",
                      expected="a folder per class (train/<class>/<image>) or a CSV whose column names "
                               "the train images (file name or stem) beside a label column",
                      received=f"{len(train_images)} images, e.g. {few([f.rel for f in train_images])}; "
                               f"CSVs: {few([f.rel for f in view.csvs()]) or 'none'}",
                      fix="write the spec by hand (docs/competition-spec.md)")
