"""`make spec SRC=<folder>`: draft a competition spec from the files a user downloaded, then check it.

A new competition should never need reading podium's source. The folder is looked at as `make data`
would leave it (zips unpacked in place, folders linked under their own name, other files copied), without
unpacking anything: zip listings and a sample of member bytes are enough. From that view the draft finds
the sample submission (its id column names the test images, with or without extension), the test folder,
a labels CSV (a column whose values name train images) or a folder per class, the task (a run-length
column: segmentation; four box columns: localization) and the images' size and channels.

The check reads a spec (drafted or written by hand) against the same view and lists every problem with
its fix: files the spec names that are not there, CSV columns that do not exist, labels naming no image,
sample ids that match no test file. It uses the index's own rule for matching ids to files.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import re
import statistics
import textwrap
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
import yaml

from podium.data.advice import looks_like_symbols
from podium.data.competitions import DEFAULT_LABEL_PATTERN, CompetitionSpec
from podium.data.sample_form import infer_submission_form
from podium.data.index import _FileLookup
from podium.data.pixels import PIXEL_NAME
from podium.errors import PodiumError
from podium.io import write_text
from podium.submission.validate import sample_form_problems
from podium.task_keys import TASK_KEYS

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
SAMPLED_IMAGES = 48  # decoded for size and channels: spread over train and test
LABEL_NAMES = ("label", "labels", "class", "category", "target", "y", "breed", "species", "expected", "diagnosis")
BOX_NAMES = {  # lower-case column names -> box_format
    ("x1", "y1", "x2", "y2"): "xyxy", ("xmin", "ymin", "xmax", "ymax"): "xyxy",
    ("x_min", "y_min", "x_max", "y_max"): "xyxy", ("left", "top", "right", "bottom"): "xyxy",
    ("x", "y", "w", "h"): "xywh", ("x", "y", "width", "height"): "xywh",
    ("bbox_x", "bbox_y", "bbox_w", "bbox_h"): "xywh",
}
RLE_NAMES = ("encodedpixels", "rle", "rle_mask", "mask", "encoded_pixels", "segmentation")
_RLE = re.compile(r"^\s*\d+(\s+\d+)+\s*$")
_SHOW = 5
LINE = 110  # width of the drafted YAML


# ---- the folder as `make data` would leave it -------------------------------------------------------
@dataclass(frozen=True)
class SourceFile:
    rel: str  # path under data/<slug>/ once `make data` has run
    entry: str  # the top-level name in the source folder it comes from: train.zip, train/, labels.csv
    origin: Path  # the file itself, or the zip that holds it
    member: str = ""  # the zip member name

    def read(self) -> bytes:
        if not self.member:
            return self.origin.read_bytes()
        with zipfile.ZipFile(self.origin) as archive:
            return archive.read(self.member)

    @property
    def is_image(self) -> bool:
        return PurePosixPath(self.rel).suffix.lower() in IMAGE_EXTENSIONS


@dataclass
class SourceView:
    source: Path
    files: list[SourceFile]
    entries: dict[str, str]  # top-level name -> "zip" | "folder" | "file"
    problems: list[str] = field(default_factory=list)  # unreadable zips, nested zips

    def images(self, under: str = "", extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[SourceFile]:
        exts = {e.lower() for e in extensions}
        return [f for f in self.files if _under(f.rel, under) and PurePosixPath(f.rel).suffix.lower() in exts]

    def find(self, rel: str) -> SourceFile | None:
        rel = _clean(rel)
        return next((f for f in self.files if f.rel == rel), None)

    def csvs(self) -> list[SourceFile]:
        return [f for f in self.files if f.rel.lower().endswith(".csv")]


def scan_source(source: str | os.PathLike) -> SourceView:
    """Every file of the source folder under the path it will have in data/<slug>/ (nothing unpacked)."""
    source = Path(source)
    if not source.is_dir():
        raise PodiumError(f"Source folder {source} does not exist.",
                          expected="a folder holding the competition's files as downloaded (zips, CSVs, folders)",
                          received=str(source), fix="pass SRC=<folder with train.zip, test.zip, ...>")
    files: list[SourceFile] = []
    entries: dict[str, str] = {}
    problems: list[str] = []
    for path in sorted(source.iterdir()):
        if path.name.startswith((".", "__")) or path.suffix == ".py":  # as _copy_files skips them
            continue
        if path.is_dir():
            entries[path.name] = "folder"
            for directory, subdirs, names in os.walk(path, followlinks=True):
                subdirs[:] = sorted(d for d in subdirs if not _ignored(d))
                for name in sorted(names):
                    if not _ignored(name):
                        full = Path(directory, name)
                        files.append(SourceFile(f"{path.name}/{full.relative_to(path).as_posix()}", path.name, full))
        elif path.suffix.lower() == ".zip":
            entries[path.name] = "zip"
            try:
                with zipfile.ZipFile(path) as archive:
                    members = [m for m in archive.infolist() if not m.is_dir()]
            except zipfile.BadZipFile as exc:
                problems.append(f"{path.name} is not a readable zip ({exc}); download it again")
                continue
            for member in members:
                rel = _clean(member.filename)
                if any(_ignored(part) for part in PurePosixPath(rel).parts):
                    continue
                files.append(SourceFile(rel, path.name, path, member.filename))
                if rel.lower().endswith(".zip"):
                    problems.append(f"{path.name} holds another zip ({rel}): unpack the outer zip into SRC "
                                    f"and draft again")
        elif path.is_file():
            entries[path.name] = "file"
            files.append(SourceFile(path.name, path.name, path))
    return SourceView(source, files, entries, problems)


def _clean(rel: str) -> str:
    return PurePosixPath(rel.replace("\\", "/").lstrip("/")).as_posix().removeprefix("./")


def _ignored(name: str) -> bool:
    return name.startswith(".") or name in ("__MACOSX", "Thumbs.db", "desktop.ini")


def _under(rel: str, folder: str) -> bool:
    return not folder or folder == "." or rel.startswith(folder.rstrip("/") + "/")


def _parent(rel: str) -> str:
    parent = PurePosixPath(rel).parent.as_posix()
    return "" if parent == "." else parent


def _ancestors(rel: str) -> list[str]:
    """"" (the root) and every folder above rel."""
    parts = PurePosixPath(rel).parts[:-1]
    return [""] + ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]


def read_csv(file: SourceFile) -> pd.DataFrame:
    """Every cell as written (ids like "007" survive, empty cells are ""), as the index reads them."""
    try:
        return pd.read_csv(io.BytesIO(file.read()), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise PodiumError(f"{file.rel} is not a readable CSV.", expected="a UTF-8 CSV with a header",
                          received=str(exc).strip()[:200], fix="download it again") from None


# ---- drafting ---------------------------------------------------------------------------------------
@dataclass
class Draft:
    values: dict[str, Any]  # spec field -> value, in the order written
    notes: dict[str, str]  # spec field -> the comment written beside it
    header: list[str]  # comment lines above the fields: what was found
    images: dict[str, Any]  # size and channel facts of the sampled images

    def yaml_text(self) -> str:
        lines = [f"# {part}" for line in self.header for part in textwrap.wrap(line, LINE - 2)]
        for key, value in self.values.items():
            line = f"{key}: {_yaml_value(value)}"
            note = self.notes.get(key, "")
            if note and len(line) + len(note) + 4 > LINE:  # a long comment goes above its field
                lines += [f"# {part}" for part in textwrap.wrap(note, LINE - 2)] + [line]
            else:
                lines.append(f"{line}  # {note}" if note else line)
        return "\n".join(lines) + "\n"


def draft_spec(source: str | os.PathLike, slug: str | None = None) -> Draft:
    """A spec for the files in `source`, with a comment per field saying how it was found."""
    view = scan_source(source)
    pixels = _draft_pixels(view, source, slug)  # images as CSV pixel columns: no image files to look at
    if pixels is not None:
        return pixels
    if view.problems and not view.images():
        raise PodiumError(f"No images can be read in {view.source}.", expected="zips or folders of images",
                          received="; ".join(view.problems), fix="unpack or re-download the files named")
    slug = slug or _slug(Path(source).resolve().name)
    values: dict[str, Any] = {"slug": slug, "title": ""}
    notes: dict[str, str] = {"slug": "the Kaggle competition's slug (its URL); `make data` without SRC downloads it",
                             "title": "free text"}
    header: list[str] = []
    images = view.images()
    if not images:
        raise PodiumError(f"No image files found in {view.source}.",
                          expected=f"images ({', '.join(IMAGE_EXTENSIONS)}) in zips or folders",
                          received=", ".join(sorted(view.entries)) or "an empty folder",
                          fix="point SRC= at the folder holding the competition's downloaded files")
    samples = _find_samples(view, images)
    test_dir = samples[0].test_dir if samples else _guess_test_dir(images)
    train_images = [f for f in images if not _under(f.rel, test_dir)] if test_dir else images
    candidates = _find_labels(view, train_images, samples[0] if samples else None, {s.file.rel for s in samples})
    labels = candidates[0] if candidates else None
    sample = _sample_for(labels, samples)
    if len(candidates) > 1:
        header.append("other labels CSVs found: " + ", ".join(f"{c.file.rel} ({c.task}, {c.matched} images)"
                                                             for c in candidates[1:])
                      + ": set labels_csv, task and its columns to use one instead")
    task, layout, classes = "classification", "folder", []
    by_name = None  # layout filename: the labels found in the file names
    if labels:
        layout, task, train_dir = "csv", labels.task, labels.train_dir
    else:
        train_dir, classes = _find_class_folders(train_images)
        if not train_dir:
            by_name = _find_filename_classes(train_images)
            if by_name:
                layout, train_dir, classes = "filename", by_name.train_dir, by_name.classes
        if not train_dir:
            cause = labels_csv_cause(view, train_images)
            if cause:
                raise PodiumError(f"Cannot tell how the train images in {view.source} are labelled: {cause[0]}",
                                  expected=cause[1], received=cause[2], fix=cause[3])
            raise PodiumError(f"Cannot tell how the train images in {view.source} are labelled.",
                              expected="a folder per class (train/<class>/<image>) or a CSV whose column names "
                                       "the train images (file name or stem) beside a label column",
                              received=f"{len(train_images)} images, e.g. {_few([f.rel for f in train_images])}; "
                                       f"CSVs: {_few([f.rel for f in view.csvs()]) or 'none'}",
                              fix="write the spec by hand (docs/competition-spec.md)")
    values.update(task=task, source="kaggle", layout=layout)
    notes["task"] = {"classification": "one label per image",
                     "multilabel": "the labels CSV's label column holds space-separated label sets",
                     "segmentation": "found a column of run-length strings in the labels CSV",
                     "localization": "found four box columns in the labels CSV"}[task]
    notes["source"] = "kaggle: downloaded by `make data`, or copied from SRC=<folder>"
    notes["layout"] = (f"labels in {labels.file.rel}" if labels else _filename_note(by_name) if by_name else
                       f"a folder per class under {train_dir}: {len(classes)} classes, e.g. {_few(classes)}")
    if by_name and by_name.pattern:
        values["label_pattern"] = by_name.pattern
        notes["label_pattern"] = "a regex matched at each train file name's start; its group is the label"
    values["archives"] = _archives(view, train_dir, test_dir, labels, sample)
    notes["archives"] = ("top-level files `make data` must find (a zip may also be there unpacked, as a folder "
                         "of the same name); every other file is copied too")
    values["train_dir"] = train_dir
    notes["train_dir"] = "folder of the train images under data/<slug>/"
    if labels:
        values.update(labels_csv=labels.file.rel, id_column=labels.id_column)
        notes["labels_csv"] = f"{labels.rows} rows"
        notes["id_column"] = f"{labels.matched} of its values name a train image ({labels.how})"
        if task == "segmentation":
            values["rle_column"] = labels.rle_column
            notes["rle_column"] = "run-length strings, one row per object, empty for an image without"
        else:
            values["label_column"] = labels.label_column
            notes["label_column"] = f"{labels.n_classes} classes, e.g. {_few(labels.class_examples)}"
        if task == "localization":
            values.update(box_columns=list(labels.box_columns), box_format=labels.box_format)
            notes["box_columns"] = "pixels of the original image"
            notes["box_format"] = "read from the column names (xyxy: two corners; xywh: corner, width, height): check"
    values["test_dir"] = test_dir or "test"
    notes["test_dir"] = "folder of the test images" + (
        f": {sample.matched} of {sample.rows} sample ids match its files" if sample
        else ": GUESSED, no sample submission found")
    if sample:
        values.update(sample_submission=sample.file.rel, submission_id_column=sample.id_column,
                      submission_label_column=sample.label_column, submission_id=sample.submission_id)
        notes["sample_submission"] = f"{sample.rows} rows, columns {list(sample.columns)}"
        notes["submission_id_column"] = "names the test image"
        notes["submission_label_column"] = "the prediction"
        notes["submission_id"] = ("filename: ids carry the extension (img0.jpg)" if sample.submission_id == "filename"
                                  else "stem: ids are file names without extension")
    else:
        values.update(sample_submission="sample_submission.csv", submission_id_column="id",
                      submission_label_column="label", submission_id="stem")
        notes["sample_submission"] = "NOT FOUND: name the competition's sample submission CSV here"
    facts = _image_facts(train_images, view.images(test_dir) if test_dir else [])
    exts = sorted({PurePosixPath(f.rel).suffix.lower() for f in images})
    values["image_extensions"] = exts
    notes["image_extensions"] = "extensions of the images found"
    values["classes"] = []
    notes["classes"] = "empty: the sorted labels found in train; list them to fix the order a submission needs"
    values["metric"] = {"classification": "accuracy", "multilabel": "micro_f1", "segmentation": "dice",
                        "localization": "mean_iou"}[task]
    notes["metric"] = "the task's usual metric: check the competition's Evaluation page"
    if sample and task in ("classification", "multilabel"):
        header += _draft_form(values, notes, read_csv(sample.file), sample,
                              labels.class_examples if labels else classes, task == "multilabel")
    if "flip_invariant" not in values:  # a number or a grade target set its own
        values["flip_invariant"], notes["flip_invariant"] = _flip_guess(labels.class_examples if labels else classes)
    values["submission_kind"] = "csv"
    notes["submission_kind"] = "csv: upload submission.csv; code: Kaggle re-runs a kernel version (check the page)"
    values["rules_url"] = f"https://www.kaggle.com/competitions/{slug}/rules"
    notes["rules_url"] = "accept the rules there once before `make data` can download"
    header[:0] = [f"Competition spec drafted by `podium spec` from {Path(source)}. Read every line: each comment",
                  "says how the value was found. Reference: docs/competition-spec.md.",
                  f"images: {facts['summary']}"] + ([facts["advice"]] if facts.get("advice") else [])
    ordered = [f.name for f in dataclasses.fields(CompetitionSpec)]
    values = {k: values[k] for k in sorted(values, key=ordered.index)}
    return Draft(values, notes, header, facts)


def _draft_form(values: dict[str, Any], notes: dict[str, str], frame: pd.DataFrame, sample: _Sample,
                classes: list[str], label_sets: bool) -> list[str]:
    """submission_format (and positive_class, top_k, the metric) from what the sample's columns hold, each
    with how it was decided; returns lines for the header."""
    guess = infer_submission_form(frame, sample.id_column, sample.label_column, classes, label_sets)
    if guess.form == "number" and "regression" not in TASK_KEYS:
        return [f"submission: {guess.reason}; this podium has no regression task: check the sample"]
    if guess.form == "number":
        targets = [float(value) for value in classes]
        values["task"], notes["task"] = "regression", "the sample holds a number per image"
        notes["label_column"] = (f"the target: {len(targets)} distinct numbers, from {min(targets):g} to "
                                 f"{max(targets):g}" if targets else "the target: a number per image")
        values.pop("classes", None)  # a regression has no classes
        values["flip_invariant"] = None
        notes["flip_invariant"] = "unset: flips allowed; false if a mirror image changes the target"
    if guess.ordinal:
        notes["label_column"] = (f"grades {guess.grades[0]}..{guess.grades[-1]}: whole numbers in a row, an ordinal "
                                 f"target (see metric)")
        values["flip_invariant"] = None
        notes["flip_invariant"] = ("unset: flips allowed (grades are not symbols drawn in the image); false if a "
                                   "mirror image changes the grade")
    values["submission_label_column"] = guess.label_column
    values["submission_format"] = guess.form
    notes["submission_format"] = guess.reason
    if guess.form == "probabilities":
        notes["submission_label_column"] = "unused by probabilities: the sample's class columns are written"
    if guess.form == "probability":
        values["positive_class"] = guess.positive_class
        notes["positive_class"] = guess.positive_note
    if guess.form == "top_k":
        values["top_k"] = guess.k
        notes["top_k"] = "labels per row, as the sample writes them"
    values["metric"] = guess.metric
    notes["metric"] = guess.metric_note
    return guess.notes


def write_draft(draft: Draft, out: str | os.PathLike, force: bool = False) -> Path:
    """Write the draft; an existing spec is someone's work and is only replaced with force."""
    out = Path(out)
    if out.exists() and not force:
        raise PodiumError(f"Competition spec {out} already exists.", expected="a new file, or --force",
                          received=str(out), fix="pass FORCE=1 to draft over it, or OUT=<another path>")
    return write_text(out, draft.yaml_text())


def default_out(source: str | os.PathLike, slug: str | None = None) -> Path:
    """Where `make spec` writes without OUT=: beside the experiment configs that will name it."""
    return Path("configs") / "competitions" / f"{slug or _slug(Path(source).resolve().name)}.yaml"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "my-competition"


def _yaml_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    if text and re.fullmatch(r"[A-Za-z0-9_./:-]+", text) and yaml.safe_load(text) == text:
        return text
    return json.dumps(text)


def _few(items: list[str]) -> str:
    shown = ", ".join(str(i) for i in items[:_SHOW])
    return shown + (f" and {len(items) - _SHOW} more" if len(items) > _SHOW else "")


# ---- the sample submission and the test folder ------------------------------------------------------
@dataclass
class _Sample:
    file: SourceFile
    columns: list[str]
    rows: int
    id_column: str
    label_column: str
    submission_id: str
    test_dir: str
    matched: int


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
        header = str(frame.columns[0]) if len(frame.columns) == 1 else ""
        used = [sep for sep in SEPARATORS if sep in header]
        if used:
            return (f"{file.rel} is separated by {SEPARATORS[used[0]]}, not commas.",
                    "a comma-separated labels CSV (id,label)", f"header {header!r}",
                    f"save {file.rel} comma-separated (Excel: 'CSV UTF-8 (comma delimited)'), or convert it: "
                    f"python -c \"import pandas as p; p.read_csv('{PurePosixPath(file.rel).name}', sep='{used[0]}', "
                    f"dtype=str).to_csv('{PurePosixPath(file.rel).name}', index=False)\"")
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
                        f"{PurePosixPath(file.rel).name}', dtype=str); f['{column}']=f['{column}'].str.zfill({width}); "
                        f"f.to_csv('{PurePosixPath(file.rel).name}', index=False)\"")
    return None


def _names_below(images: list[SourceFile]) -> dict[str, tuple[set[str], set[str]]]:
    """folder -> (file names, stems) of the images anywhere below it."""
    below: dict[str, tuple[set[str], set[str]]] = {}
    for f in images:
        name = PurePosixPath(f.rel).name
        stem = PurePosixPath(f.rel).stem
        for folder in _ancestors(f.rel):
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


def _find_samples(view: SourceView, images: list[SourceFile]) -> list[_Sample]:
    """Sample submission candidates, best first: the most ids naming images, then a name with "sample"."""
    candidates = [f for f in view.csvs() if "sample" in f.rel.lower() or "submission" in f.rel.lower()]
    below = _names_below(images)
    found = []
    for file in candidates:
        frame = read_csv(file)
        if frame.empty or len(frame.columns) < 2:
            continue
        id_column = frame.columns[0]
        folder, how, matched = _best_folder(set(frame[id_column]), below)
        others = [c for c in frame.columns if c != id_column]
        label_column = next((c for c in others if c.lower() in LABEL_NAMES), others[0])
        found.append(_Sample(file, list(frame.columns), len(frame), id_column, label_column, how, folder, matched))
    return sorted(found, key=lambda s: (-s.matched, "sample" not in s.file.rel.lower(), len(s.file.rel)))


def _sample_for(labels: _Labels | None, samples: list[_Sample]) -> _Sample | None:
    """The first candidate that has the columns the task writes (boxes, run-lengths), else the best one."""
    if not samples:
        return None
    needed = set(labels.box_columns) | ({labels.rle_column} if labels.rle_column else set()) if labels else set()
    return next((s for s in samples if needed <= set(s.columns)), samples[0])


def _guess_test_dir(images: list[SourceFile]) -> str:
    folders = Counter(_parent(f.rel) for f in images)
    named = [d for d in folders if PurePosixPath(d).name.lower().startswith("test")]
    return max(named, key=lambda d: folders[d]) if named else ""


# ---- the labels: a CSV, or a folder per class -------------------------------------------------------
@dataclass
class _Labels:
    file: SourceFile
    rows: int
    id_column: str
    matched: int
    how: str
    train_dir: str
    task: str = "classification"
    label_column: str = "label"
    n_classes: int = 0
    class_examples: list[str] = field(default_factory=list)
    rle_column: str = ""
    box_columns: tuple[str, ...] = ()
    box_format: str = "xyxy"


def _find_labels(view: SourceView, train_images: list[SourceFile], sample: _Sample | None,
                 skip: set[str]) -> list[_Labels]:
    """Labels CSV candidates (each with its best id column), the one naming the most train images first."""
    below = _names_below(train_images)
    found: list[_Labels] = []
    for file in view.csvs():
        if file.rel in skip:
            continue
        frame = read_csv(file)
        if frame.empty:
            continue
        best: _Labels | None = None
        for column in frame.columns:
            ids = set(frame[column])
            paths = sum("/" in i for i in ids) > len(ids) // 2  # ids like "cats/1.jpg"
            folder, how, matched = _best_folder({PurePosixPath(i).name for i in ids} if paths else ids, below)
            if matched < max(1, len(ids) // 2) or (best and matched <= best.matched):
                continue
            how = "paths relative to train_dir" if paths else "file names" if how == "filename" else "file stems"
            if paths:
                folder = _path_prefix(ids, train_images) or folder
            best = _Labels(file, len(frame), column, matched, how, folder)
            _read_targets(best, frame, sample)
        if best:
            found.append(best)
    return sorted(found, key=lambda labels: -labels.matched)


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


def _read_targets(labels: _Labels, frame: pd.DataFrame, sample: _Sample | None) -> None:
    others = [c for c in frame.columns if c != labels.id_column]
    lower = {c.lower(): c for c in others}
    rle = next((c for c in others if c.lower() in RLE_NAMES or _looks_like_rle(frame[c])), "")
    if rle:
        labels.task, labels.rle_column = "segmentation", rle
        return
    for names, box_format in BOX_NAMES.items():
        if all(n in lower for n in names):
            labels.task, labels.box_format = "localization", box_format
            labels.box_columns = tuple(lower[n] for n in names)
            others = [c for c in others if c not in labels.box_columns]
            break
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
        if labels.task == "classification" and any(len(str(v).split()) > 1 for v in values):
            names = sorted({name for value in values for name in str(value).split()})  # label sets
            labels.task, labels.n_classes, labels.class_examples = "multilabel", len(names), names


def _looks_like_rle(values: pd.Series) -> bool:
    filled = [v for v in values.head(2000) if str(v).strip()]
    if not filled:
        return False
    runs = [v for v in filled if _RLE.match(str(v)) and len(str(v).split()) % 2 == 0]
    return len(runs) >= 0.9 * len(filled)


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


def _archives(view: SourceView, train_dir: str, test_dir: str, labels: _Labels | None,
              sample: _Sample | None) -> list[str]:
    """The top-level files the spec needs: those holding train or test images, the labels and the sample."""
    needed: list[str] = []
    wanted = [f for f in view.files if (f.is_image and (_under(f.rel, train_dir) or _under(f.rel, test_dir)))]
    wanted += [x.file for x in (labels, sample) if x is not None]
    for f in wanted:
        kind = view.entries.get(f.entry)
        name = f.entry if kind != "folder" else None
        if name and name not in needed:
            needed.append(name)
    return needed


# ---- image size and channels --------------------------------------------------------------------------
def _image_facts(train: list[SourceFile], test: list[SourceFile]) -> dict[str, Any]:
    from PIL import Image

    picked = _spread(train, SAMPLED_IMAGES * 3 // 4) + _spread(test, SAMPLED_IMAGES // 4)
    sizes, modes, unreadable = [], Counter(), 0
    archives: dict[Path, zipfile.ZipFile] = {}  # a big zip's directory is read once, not once per image
    try:
        for f in picked:
            try:
                if f.member:
                    archive = archives.get(f.origin) or archives.setdefault(f.origin, zipfile.ZipFile(f.origin))
                    data = archive.read(f.member)
                else:
                    data = f.read()
                with Image.open(io.BytesIO(data)) as image:
                    sizes.append(image.size)
                    modes[image.mode] += 1
            except Exception:  # noqa: BLE001 - an undecodable file is only counted here; `make data` names it
                unreadable += 1
    finally:
        for archive in archives.values():
            archive.close()
    if not sizes:
        return {"summary": f"none of {len(picked)} sampled images could be read", "sampled": len(picked)}
    widths, heights = [w for w, _ in sizes], [h for _, h in sizes]
    width, height = int(statistics.median(widths)), int(statistics.median(heights))
    gray = sum(n for m, n in modes.items() if m in ("1", "L", "I", "I;16", "F", "LA"))
    channels = "grayscale" if gray == len(sizes) else "colour" if gray == 0 else f"mixed ({gray} grayscale)"
    same = len(set(sizes)) == 1
    size_text = f"all {width}x{height} px" if same else (
        f"{min(widths)}..{max(widths)} x {min(heights)}..{max(heights)} px (median {width}x{height})")
    summary = (f"{len(sizes)} sampled: {size_text}, {channels} (modes {dict(modes)})"
               + (f", {unreadable} unreadable" if unreadable else ""))
    facts = {"summary": summary, "width": width, "height": height, "channels": channels, "modes": dict(modes),
             "sampled": len(picked), "unreadable": unreadable}
    side = max(width, height)
    if side < 32:
        facts["advice"] = (f"small images ({width}x{height}): set image_size: {max(8, side)} in the experiment config "
                           f"with a from-scratch backbone (tiny_cnn, resnet9); their default 32 upscales "
                           f"{32 / side:.1f}x")
    return facts


def _spread(files: list[SourceFile], count: int) -> list[SourceFile]:
    if len(files) <= count:
        return list(files)
    step = len(files) / count
    return [files[int(k * step)] for k in range(count)]


def _flip_guess(classes: list[str]) -> tuple[bool | None, str]:
    if classes and looks_like_symbols(classes):
        return False, (f"class names are single characters ({_few(classes)}): digits/letters change meaning when "
                       f"mirrored, so flips are refused. Set true if these are codes of pictures that keep their class")
    return None, "unset: flips allowed; false if a mirror image changes the class (digits, letters, text)"


# ---- checking a spec against the folder ---------------------------------------------------------------
@dataclass
class SpecCheck:
    problems: list[str]  # each "what. Fix: how"
    n_train: int = 0
    n_test: int = 0
    classes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # facts worth reading that are not problems

    @property
    def ok(self) -> bool:
        return not self.problems


def check_spec(spec: CompetitionSpec, source: str | os.PathLike) -> SpecCheck:
    """Dry-run what `make data COMP=<spec> SRC=<source>` needs, without unpacking: every problem, with its fix."""
    view = scan_source(source)
    check = SpecCheck(problems=list(view.problems))
    problems = check.problems
    for name in spec.archives:
        if name not in view.entries and not (name.lower().endswith(".zip") and view.entries.get(name[:-4]) == "folder"):
            problems.append(f"archives lists {name!r}, which is not in {view.source} (found: "
                            f"{_few(sorted(view.entries))}). Fix: remove it from archives or add the file")
    if spec.flip_invariant not in (None, True, False):
        problems.append(f"flip_invariant is {spec.flip_invariant!r}. Fix: write true, false, or leave it out")
    if spec.layout == "pixels":  # no image files: CSVs of pixel columns
        _check_pixels(spec, view, check)
        return check
    train = view.images(spec.train_dir, spec.image_extensions)
    test = view.images(spec.test_dir, spec.image_extensions)
    holding = sorted({_parent(f.rel) for f in view.images()})
    if not train:
        problems.append(f"train_dir {spec.train_dir!r} holds no images. Fix: set train_dir to the folder of the "
                        f"train images (folders with images: {_few(holding)})")
    elif spec.layout == "folder":
        _check_folders(spec, view, train, check)
    elif spec.layout == "filename":
        _check_filename(spec, train, check)
    else:
        _check_labels_csv(spec, view, train, check)
    if not test:
        problems.append(f"test_dir {spec.test_dir!r} holds no images. Fix: set test_dir to the folder of the test "
                        f"images (folders with images: {_few(holding)})")
    elif spec.layout == "folder" and _under(spec.test_dir, spec.train_dir):
        problems.append(f"test_dir {spec.test_dir!r} lies inside train_dir {spec.train_dir!r}, so its images would "
                        f"be read as a class of train images. Fix: point train_dir at the folder of class folders")
    check.n_test = len(test)
    if test:
        _check_sample(spec, view, test, check)
    return check


def _sibling_splits(spec: CompetitionSpec, view: SourceView, classes: set[str]) -> list[str]:
    """Other folders whose subfolders carry the class names (a pre-made valid/ split beside train/)."""
    base = spec.train_dir.rstrip("/")
    found: dict[str, set[str]] = {}
    for f in view.images(extensions=spec.image_extensions):
        parts = PurePosixPath(f.rel).parts
        if len(parts) >= 3 and "/".join(parts[:-2]) != base and parts[-2] in classes:
            found.setdefault("/".join(parts[:-2]) or ".", set()).add(parts[-2])
    return sorted(d for d, names in found.items() if len(names) >= 2 and d != spec.test_dir
                  and not _under(d, spec.test_dir))


def _check_folders(spec: CompetitionSpec, view: SourceView, train: list[SourceFile], check: SpecCheck) -> None:
    base = spec.train_dir.rstrip("/")
    prefix = "" if base in ("", ".") else base + "/"
    classes: Counter = Counter()
    loose = 0
    for f in train:
        rest = f.rel[len(prefix):].split("/")
        if len(rest) < 2:
            loose += 1
        else:
            classes[rest[0]] += 1
    siblings = _sibling_splits(spec, view, set(classes))
    if siblings:
        check.notes.append(f"{_few(siblings)} also hold(s) folders of these classes: `make data` reads only "
                           f"train_dir and podium makes its own split, so move those images into "
                           f"{spec.train_dir!r} to train on them")
    if len(classes) < 2:
        check.problems.append(f"layout folder needs a folder per class in {spec.train_dir!r}; found "
                              f"{len(classes)} ({_few(sorted(classes))}). Fix: set train_dir one level deeper, or "
                              f"layout: csv with the labels CSV")
    if loose:
        check.notes.append(f"{loose} images lie directly in {spec.train_dir!r}, outside any class folder: "
                           f"`make data` ignores them")
    _check_classes(spec, list(classes), check)
    singles = sorted(c for c, n in classes.items() if n == 1)
    if singles:
        check.notes.append(f"{len(singles)} classes have a single image ({_few(singles)})")
    check.n_train = sum(classes.values())
    check.classes = sorted(classes)


def _check_labels_csv(spec: CompetitionSpec, view: SourceView, train: list[SourceFile], check: SpecCheck) -> None:
    file = view.find(spec.labels_csv) if spec.labels_csv else None
    if file is None:
        check.problems.append(f"labels_csv {spec.labels_csv!r} is not among the files. Fix: set labels_csv to one of "
                              f"{_few([f.rel for f in view.csvs()]) or 'the CSVs (none found)'}")
        return
    frame = read_csv(file)
    keys = TASK_KEYS[spec.task]
    roles = {"id_column": spec.id_column, **_spec_columns(spec, keys.label_fields)}
    missing = {role: column for role, column in roles.items() if column not in frame.columns}
    for role, column in missing.items():
        check.problems.append(f"{role} {column!r} is not a column of {file.rel}. Fix: pick one of "
                              f"{list(frame.columns)}")
    if missing:
        return
    base = spec.train_dir.rstrip("/")
    root = Path("/") / "virtual"
    train_root = root / base if base not in ("", ".") else root
    lookup = _FileLookup([root / f.rel for f in train], train_root)
    ids = list(frame[spec.id_column]) if keys.rows_per_image == "one" else list(dict.fromkeys(frame[spec.id_column]))
    repeated = [i for i, n in Counter(ids).items() if n > 1]
    if repeated:
        check.problems.append(f"{len(repeated)} ids occur more than once in {file.rel} ({_few(repeated)}). "
                              f"Fix: one row per image (remove the duplicates)")
    found = [lookup.find(i) for i in ids]
    missing_ids = [i for i, p in zip(ids, found) if p is None and i not in lookup.ambiguous]
    if lookup.ambiguous:
        check.problems.append(f"{len(lookup.ambiguous)} ids match more than one file ({_few(lookup.ambiguous)}). "
                              f"Fix: write them as paths relative to train_dir")
    if missing_ids:
        check.problems.append(f"{len(missing_ids)} of {len(ids)} ids in {file.rel} name no image under "
                              f"{spec.train_dir!r} ({_few(missing_ids)}). Fix: check id_column and train_dir")
    unlabelled = len(train) - sum(p is not None for p in found)
    if unlabelled > 0:
        check.notes.append(f"{unlabelled} images under {spec.train_dir!r} have no row in {file.rel}: not used")
    if spec.task == "classification":
        empty = frame.loc[frame[spec.label_column].str.strip() == "", spec.id_column].tolist()
        if empty:
            check.problems.append(f"{len(empty)} rows of {file.rel} have an empty label ({_few(empty)}). "
                                  f"Fix: fill or drop them")
        labels = sorted(set(frame[spec.label_column]) - {""})
        counts = frame[spec.label_column].value_counts()
        singles = sorted(str(c) for c, n in counts.items() if n == 1)
        if singles:
            check.notes.append(f"{len(singles)} classes have a single image ({_few(singles)})")
        _check_classes(spec, labels, check)
        check.classes = labels
    elif spec.task == "localization":
        check.classes = sorted(set(frame[spec.label_column]))
    check.n_train = sum(p is not None for p in found)


def _spec_columns(spec: CompetitionSpec, fields: tuple[str, ...]) -> dict[str, str]:
    """role -> column for the spec fields named; a list field (box_columns) gives one role per item."""
    columns = {}
    for name in fields:
        value = getattr(spec, name)
        if isinstance(value, tuple):
            columns.update({f"{name}[{k}]": column for k, column in enumerate(value)})
        else:
            columns[name] = value
    return columns


def _check_classes(spec: CompetitionSpec, labels: list[str], check: SpecCheck) -> None:
    if spec.classes:
        unknown = sorted(set(labels) - set(spec.classes))
        if unknown:
            check.problems.append(f"labels {_few(unknown)} are not in the spec's classes. Fix: add them to "
                                  f"classes, or empty classes to use the labels found")


def _sample_file(spec: CompetitionSpec, view: SourceView, check: SpecCheck) -> SourceFile | None:
    """The spec's sample submission among the files, or None with the problem noted."""
    file = view.find(spec.sample_submission)
    if file is None:
        check.problems.append(f"sample_submission {spec.sample_submission!r} is not among the files. Fix: set it "
                              f"to one of {_few([f.rel for f in view.csvs()]) or 'the CSVs (none found)'}")
    return file


def _check_sample(spec: CompetitionSpec, view: SourceView, test: list[SourceFile], check: SpecCheck) -> None:
    file = _sample_file(spec, view, check)
    if file is None:
        return
    frame = read_csv(file)
    needed = list(_spec_columns(spec, TASK_KEYS[spec.task].submission_fields).values())
    if spec.resolved_submission_format == "probabilities":  # a column per class instead of one label column
        needed = [spec.submission_id_column]
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        check.problems.append(f"the sample submission {file.rel} has no column {_few(absent)}. Fix: set "
                              f"submission_id_column / submission_label_column to names among {list(frame.columns)}")
        return
    names = [PurePosixPath(f.rel).name for f in test]
    test_ids = [PurePosixPath(n).stem for n in names] if spec.submission_id == "stem" else names
    doubled = [i for i, n in Counter(test_ids).items() if n > 1]
    if doubled:
        check.problems.append(f"{len(doubled)} test ids occur twice under {spec.test_dir!r} ({_few(doubled)}). "
                              f"Fix: submission_id: filename if the sample ids carry the extension")
    sample_ids = list(dict.fromkeys(frame[spec.submission_id_column]))
    unmatched = sorted(set(sample_ids) - set(test_ids))
    if unmatched:
        other = "stem" if spec.submission_id == "filename" else "filename"
        other_ids = set(names) if other == "filename" else {PurePosixPath(n).stem for n in names}
        hint = (f"submission_id: {other} matches {len(set(sample_ids) & other_ids)} of them"
                if set(sample_ids) & other_ids else "check test_dir and submission_id_column")
        check.problems.append(f"{len(unmatched)} of {len(sample_ids)} sample submission ids name no file under "
                              f"{spec.test_dir!r} as {spec.submission_id} ({_few(unmatched)}). Fix: {hint}")
    extra = len(set(test_ids) - set(sample_ids))
    if extra:
        check.notes.append(f"{extra} test images are not in the sample submission: predicted, then left out")
    for problem in sample_form_problems(frame, spec, check.classes or None):
        check.problems.append(f"the sample submission {file.rel} does not fit submission_format: "
                              f"{spec.resolved_submission_format}: {problem}. Fix: set submission_format (and the "
                              f"metric, positive_class, top_k) to what the sample holds (draft again to see)")


# ---- layout pixels: images stored as CSV pixel columns (Digit Recognizer, Fashion-/Kannada-MNIST) ---------
PIXEL_COLUMNS_MIN = 16  # fewer pixel<N> columns is a table of features, not an image


@dataclass
class _PixelCsv:
    file: SourceFile
    pixel_columns: list[str]
    others: pd.DataFrame  # the CSV's other columns (ids, labels), every cell as written
    rows: int


def _pixel_csv(file: SourceFile) -> _PixelCsv | None:
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
    return _PixelCsv(file, pixel_columns, frame if frame is not None else pd.DataFrame(index=range(rows)), rows)


def _pixel_label_column(csv: _PixelCsv) -> str:
    """The label column of a train pixel CSV: a usual label name, else its only non-id column; "" if none."""
    columns = list(csv.others.columns)
    named = next((c for c in columns if c.lower() in LABEL_NAMES), "")
    if named or len(columns) != 1:
        return named
    return columns[0] if csv.others[columns[0]].nunique() < max(2, csv.rows // 2) else ""


def _pixel_shape(count: int) -> tuple[list[int], str]:
    """(image_shape, how it was decided) for a count of pixel columns; [] when no shape fits."""
    side = math.isqrt(count)
    if side * side == count:
        return [side, side], f"{count} pixel columns = {side} x {side}: square gray images"
    side = math.isqrt(count // 3)
    if count % 3 == 0 and side * side * 3 == count:
        return [side, side, 3], (f"{count} pixel columns = {side} x {side} x 3: GUESSED square RGB images, channels "
                                 f"last (R, G, B of pixel 0 first); check")
    return [], f"CHECK: {count} pixel columns is neither a square nor 3 x a square: set [height, width]"


def _draft_pixels(view: SourceView, source: str | os.PathLike, slug: str | None) -> Draft | None:
    """A draft for a competition whose images are pixel columns of CSVs, or None when it is not one.

    It is one when a CSV has at least PIXEL_COLUMNS_MIN pixel<N> columns and a label column (train), and
    another has the same pixel columns without one (test)."""
    pixel_csvs = [c for c in (_pixel_csv(f) for f in view.csvs() if not _is_sample_name(f.rel)) if c]
    trains = [c for c in pixel_csvs if _pixel_label_column(c)]
    if not trains:
        return None
    train = max(trains, key=lambda c: ("train" in c.file.rel.lower(), c.rows))
    tests = [c for c in pixel_csvs if c is not train and len(c.pixel_columns) == len(train.pixel_columns)
             and not _pixel_label_column(c)]
    if not tests:
        return None
    test = max(tests, key=lambda c: ("test" in c.file.rel.lower(), c.rows))
    label_column = _pixel_label_column(train)
    classes = sorted(train.others[label_column].unique())
    slug = slug or _slug(Path(source).resolve().name)
    values: dict[str, Any] = {"slug": slug, "title": "", "task": "classification", "source": "kaggle",
                              "layout": "pixels"}
    notes = {"slug": "the Kaggle competition's slug (its URL); `make data` without SRC downloads it",
             "title": "free text", "task": "one label per image",
             "source": "kaggle: downloaded by `make data`, or copied from SRC=<folder>",
             "layout": (f"the images are CSV rows: {train.file.rel} has {len(train.pixel_columns)} pixel<N> columns and "
                        f"a label column, {test.file.rel} the same pixel columns without one; `make data` converts "
                        f"them into data/<slug>/pixels/*.npy (no image files)")}
    shape, how = _pixel_shape(len(train.pixel_columns))
    sample = _pixel_sample(view, test)
    id_column, id_note = _pixel_ids(test, sample)
    values["labels_csv"] = train.file.rel
    notes["labels_csv"] = f"train: {train.rows} rows"
    values["id_column"] = id_column
    notes["id_column"] = id_note
    values["label_column"] = label_column
    notes["label_column"] = f"{len(classes)} classes, e.g. {_few(classes)}"
    values["test_csv"] = test.file.rel
    notes["test_csv"] = f"test: {test.rows} rows of pixel columns"
    values["image_shape"] = shape
    notes["image_shape"] = how
    if sample:
        values.update(sample_submission=sample.file.rel, submission_id_column=sample.columns[0],
                      submission_label_column=next((c for c in sample.columns[1:] if c.lower() in LABEL_NAMES),
                                                   sample.columns[1]))
        notes["sample_submission"] = f"{sample.rows} rows, columns {list(sample.columns)}"
    else:
        values.update(sample_submission="sample_submission.csv", submission_id_column="id",
                      submission_label_column="label")
        notes["sample_submission"] = "NOT FOUND: name the competition's sample submission CSV here"
    wanted = [train.file, test.file] + ([sample.file] if sample else [])
    values["archives"] = list(dict.fromkeys(f.entry for f in wanted if view.entries.get(f.entry) != "folder"))
    notes["archives"] = "top-level files `make data` must find; every other file is copied too"
    values["classes"] = []
    notes["classes"] = "empty: the sorted labels found in train; list them to fix the order a submission needs"
    values["metric"] = "accuracy"
    notes["metric"] = "check the competition's page"
    values["flip_invariant"], notes["flip_invariant"] = _flip_guess(classes)
    values["submission_kind"] = "csv"
    notes["submission_kind"] = "csv: upload submission.csv; code: Kaggle re-runs a kernel version (check the page)"
    values["rules_url"] = f"https://www.kaggle.com/competitions/{slug}/rules"
    notes["rules_url"] = "accept the rules there once before `make data` can download"
    side = min(shape[:2]) if shape else 0
    facts: dict[str, Any] = {"summary": f"{train.rows} train and {test.rows} test images as CSV rows of "
                                        f"{len(train.pixel_columns)} pixel columns"
                                        + (f" ({' x '.join(map(str, shape))})" if shape else "")}
    if 0 < side < 32:
        facts["advice"] = (f"small images ({side}x{side}): set image_size: {max(8, side)} in the experiment config "
                           f"with a from-scratch backbone (tiny_cnn, resnet9)")
    header = [f"Competition spec drafted by `podium spec` from {Path(source)}. Read every line: each comment",
              "says how the value was found. Reference: docs/competition-spec.md.",
              f"images: {facts['summary']}"] + ([facts["advice"]] if facts.get("advice") else [])
    ordered = [f.name for f in dataclasses.fields(CompetitionSpec)]
    values = {k: values[k] for k in sorted(values, key=ordered.index)}
    return Draft(values, notes, header, facts)


def _is_sample_name(rel: str) -> bool:
    return "sample" in rel.lower() or "submission" in rel.lower()


@dataclass
class _PixelSample:
    file: SourceFile
    columns: list[str]
    rows: int
    ids: list[str]


def _pixel_sample(view: SourceView, test: _PixelCsv) -> _PixelSample | None:
    """The sample submission: a "sample"/"submission" CSV of two or more columns, as many rows as the test CSV."""
    found = []
    for file in view.csvs():
        if not _is_sample_name(file.rel):
            continue
        frame = read_csv(file)
        if len(frame.columns) >= 2 and len(frame) == test.rows:
            found.append(_PixelSample(file, list(frame.columns), len(frame), frame[frame.columns[0]].tolist()))
    return min(found, key=lambda s: ("sample" not in s.file.rel.lower(), len(s.file.rel))) if found else None


def _pixel_ids(test: _PixelCsv, sample: _PixelSample | None) -> tuple[str, str]:
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


def _check_pixels(spec: CompetitionSpec, view: SourceView, check: SpecCheck) -> None:
    """What `make data` needs of a pixels layout: both CSVs, the label column, a shape that fits, the sample."""
    csvs = {}
    for split, name in (("train", spec.labels_csv or "train.csv"), ("test", spec.test_csv)):
        file = view.find(name)
        csv = _pixel_csv(file) if file else None
        if csv is None:
            field_name = "labels_csv" if split == "train" else "test_csv"
            check.problems.append(f"{field_name} {name!r} is not a CSV of pixel<N> columns among the files. Fix: set "
                                  f"{field_name} to one of {_few([f.rel for f in view.csvs()]) or 'none found'}")
            continue
        csvs[split] = csv
        count = len(csv.pixel_columns)
        fits = math.prod(spec.image_shape) == count if spec.image_shape else math.isqrt(count) ** 2 == count
        if not fits:
            check.problems.append(f"{name} has {count} pixel columns, which image_shape "
                                  f"{list(spec.image_shape) or '(empty: a square)'} does not fit. Fix: image_shape: "
                                  f"{_pixel_shape(count)[0] or '[height, width]'}")
    if "train" in csvs:
        train = csvs["train"]
        if spec.label_column not in train.others.columns:
            check.problems.append(f"{train.file.rel} has no label column {spec.label_column!r}. Fix: set "
                                  f"label_column to one of {_few(list(train.others.columns)) or 'none found'}")
        else:
            check.classes = sorted(train.others[spec.label_column].unique())
            _check_classes(spec, check.classes, check)
        check.n_train = train.rows
    if "test" in csvs:
        check.n_test = csvs["test"].rows
        file = _sample_file(spec, view, check)
        if file is None:
            return
        frame = read_csv(file)
        absent = [c for c in (spec.submission_id_column, spec.submission_label_column) if c not in frame.columns]
        if absent:
            check.problems.append(f"the sample submission {file.rel} has no column {_few(absent)}. Fix: set "
                                  f"submission_id_column / submission_label_column to names among {list(frame.columns)}")
            return
        test = csvs["test"]
        ids = (set(test.others[spec.id_column]) if spec.id_column in test.others.columns
               else {str(k) for k in range(1, test.rows + 1)})
        unmatched = sorted(set(frame[spec.submission_id_column]) - ids)
        if unmatched:
            check.problems.append(f"{len(unmatched)} sample submission ids name no test row ({_few(unmatched)}). Fix: "
                                  f"set id_column to the test CSV's id column (without one, ids are 1-based row "
                                  f"numbers)")


# ---- layout filename: the label is part of each train file's name (Dogs vs. Cats: cat.123.jpg) -----------
FILENAME_CLASSES_MAX = 50
FILENAME_MIN_PER_CLASS = 3
_SEPARATED = re.compile(r"([^._-]+)[_-]")  # cat_12.jpg, dog-7.png: the label before a separator


@dataclass
class _FilenameClasses:
    train_dir: str
    classes: list[str]
    counts: Counter
    pattern: str  # "" = the default, the text before the first dot
    how: str


def _find_filename_classes(train_images: list[SourceFile]) -> _FilenameClasses | None:
    """The folder whose images' name prefixes form a handful of classes (2..FILENAME_CLASSES_MAX, each with
    FILENAME_MIN_PER_CLASS files or more): before the first dot first, else before a '_' or '-'."""
    folders: dict[str, list[str]] = {}
    for f in train_images:
        folders.setdefault(_parent(f.rel), []).append(PurePosixPath(f.rel).name)
    found = []
    for folder, names in folders.items():
        for pattern, compiled, how in (("", re.compile(DEFAULT_LABEL_PATTERN), "the text before the first dot"),
                                       (_SEPARATED.pattern, _SEPARATED, "the text before the first '_' or '-'")):
            matches = [compiled.match(n) for n in names]
            if not all(matches):
                continue
            counts = Counter(m.group(1) for m in matches)
            if 2 <= len(counts) <= FILENAME_CLASSES_MAX and min(counts.values()) >= FILENAME_MIN_PER_CLASS:
                found.append(_FilenameClasses(folder or ".", sorted(counts), counts, pattern, how))
                break
    return max(found, key=lambda c: sum(c.counts.values())) if found else None


def _filename_note(found: _FilenameClasses) -> str:
    shown = ", ".join(f"{c} ({found.counts[c]})" for c in found.classes[:_SHOW])
    return (f"no class folders and no labels CSV, but the {sum(found.counts.values())} image names in "
            f"{found.train_dir} start with one of {len(found.classes)} labels ({found.how}): {shown}")


def _check_filename(spec: CompetitionSpec, train: list[SourceFile], check: SpecCheck) -> None:
    """Every train name matches label_pattern (else `make data` stops) and the labels form classes."""
    base = spec.train_dir.rstrip("/")
    pattern = re.compile(spec.resolved_label_pattern)
    labels: Counter = Counter()
    unmatched = []
    for f in train:
        if _under(f.rel, spec.test_dir) and spec.test_dir not in ("", "."):
            continue
        match = pattern.match(PurePosixPath(f.rel).name)
        if match and (match.group(1) or "").strip():
            labels[match.group(1).strip()] += 1
        else:
            unmatched.append(f.rel)
    if unmatched:
        check.problems.append(f"{len(unmatched)} train file names in {base!r} do not match label_pattern "
                              f"{spec.resolved_label_pattern!r} ({_few(unmatched)}). Fix: set label_pattern, or move "
                              f"those files out of train_dir")
    if len(labels) < 2:
        check.problems.append(f"label_pattern finds {len(labels)} label(s) in {base!r} ({_few(sorted(labels))}). Fix: "
                              f"set label_pattern to the part of the name that is the class")
    _check_classes(spec, list(labels), check)
    check.n_train = sum(labels.values())
    check.classes = sorted(labels)
