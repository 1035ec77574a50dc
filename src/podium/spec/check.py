"""A spec (drafted or written by hand) read against the folder as `make data` would see it: every problem
with its fix, without unpacking anything.

Files the spec names that are not there, CSV columns that do not exist, labels naming no image, sample ids
that match no test file, a sample that does not fit the submission's form. Ids are matched to files by the
index's own rule (podium.data.index). What the labels column must hold is asked of the task object.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pandas as pd

from podium.data.competitions import CompetitionSpec
from podium.data.index import FileLookup
from podium.errors import PodiumError
from podium.spec.scan import SourceFile, SourceView, few, parent, read_csv, scan_source, under
from podium.spec.scan_pixels import PixelCsv, pixel_csv, pixel_shape
from podium.submission.form_checks import sample_form_problems
from podium.task_keys import TASK_KEYS
from podium.tasks.base import Task


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


def check_spec(spec: CompetitionSpec, task: Task, source: str | os.PathLike) -> SpecCheck:
    """Dry-run what `make data COMP=<spec> SRC=<source>` needs, without unpacking: every problem, with its fix.
    `task`: the spec's task object, resolved by the entry point (make spec), which reads the label values."""
    view = scan_source(source)
    check = SpecCheck(problems=list(view.problems))
    _check_archives(spec, view, check)
    if spec.flip_invariant not in (None, True, False):
        check.problems.append(f"flip_invariant is {spec.flip_invariant!r}. Fix: write true, false, or leave it out")
    if spec.layout == "pixels":  # no image files: CSVs of pixel columns
        _check_pixels(spec, view, check)
    else:
        _check_images(spec, task, view, check)
    return check


def _check_archives(spec: CompetitionSpec, view: SourceView, check: SpecCheck) -> None:
    """Every file the spec's archives lists is there (a zip also counts when unpacked as a folder of its name)."""
    for name in spec.archives:
        if name not in view.entries and not (name.lower().endswith(".zip") and view.entries.get(name[:-4]) == "folder"):
            check.problems.append(f"archives lists {name!r}, which is not in {view.source} (found: "
                                  f"{few(sorted(view.entries))}). Fix: remove it from archives or add the file")


def _check_images(spec: CompetitionSpec, task: Task, view: SourceView, check: SpecCheck) -> None:
    """The train images and their labels as the spec's layout reads them, then the test images and the sample."""
    train = view.images(spec.train_dir, spec.image_extensions)
    test = view.images(spec.test_dir, spec.image_extensions)
    holding = sorted({parent(f.rel) for f in view.images()})
    if not train:
        check.problems.append(f"train_dir {spec.train_dir!r} holds no images. Fix: set train_dir to the folder of the "
                              f"train images (folders with images: {few(holding)})")
    elif spec.layout == "folder":
        _check_folders(spec, view, train, check)
    elif spec.layout == "filename":
        _check_filename(spec, train, check)
    else:
        _check_labels_csv(spec, task, view, train, check)
    if not test:
        check.problems.append(f"test_dir {spec.test_dir!r} holds no images. Fix: set test_dir to the folder of the "
                              f"test images (folders with images: {few(holding)})")
    elif spec.layout == "folder" and under(spec.test_dir, spec.train_dir):
        check.problems.append(f"test_dir {spec.test_dir!r} lies inside train_dir {spec.train_dir!r}, so its images "
                              f"would be read as a class of train images. Fix: point train_dir at the folder of "
                              f"class folders")
    check.n_test = len(test)
    if test:
        _check_sample(spec, task, view, test, check)


# ---- layout folder: a folder per class ----------------------------------------------------------------
def _sibling_splits(spec: CompetitionSpec, view: SourceView, classes: set[str]) -> list[str]:
    """Other folders whose subfolders carry the class names (a pre-made valid/ split beside train/)."""
    base = spec.train_dir.rstrip("/")
    found: dict[str, set[str]] = {}
    for f in view.images(extensions=spec.image_extensions):
        parts = PurePosixPath(f.rel).parts
        if len(parts) >= 3 and "/".join(parts[:-2]) != base and parts[-2] in classes:
            found.setdefault("/".join(parts[:-2]) or ".", set()).add(parts[-2])
    return sorted(d for d, names in found.items() if len(names) >= 2 and d != spec.test_dir
                  and not under(d, spec.test_dir))


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
        check.notes.append(f"{few(siblings)} also hold(s) folders of these classes: `make data` reads only "
                           f"train_dir and podium makes its own split, so move those images into "
                           f"{spec.train_dir!r} to train on them")
    if len(classes) < 2:
        check.problems.append(f"layout folder needs a folder per class in {spec.train_dir!r}; found "
                              f"{len(classes)} ({few(sorted(classes))}). Fix: set train_dir one level deeper, or "
                              f"layout: csv with the labels CSV")
    if loose:
        check.notes.append(f"{loose} images lie directly in {spec.train_dir!r}, outside any class folder: "
                           f"`make data` ignores them")
    _check_classes(spec, list(classes), check)
    _note_singles(classes, check)
    check.n_train = sum(classes.values())
    check.classes = sorted(classes)


def _note_singles(counts: Counter | pd.Series, check: SpecCheck) -> None:
    """Classes with a single image are worth a note (a fold cannot both train and validate on them)."""
    singles = sorted(str(c) for c, n in counts.items() if n == 1)
    if singles:
        check.notes.append(f"{len(singles)} classes have a single image ({few(singles)})")


# ---- layout filename: the label is the start of each train file's name ------------------------------
def _check_filename(spec: CompetitionSpec, train: list[SourceFile], check: SpecCheck) -> None:
    """Every train name matches label_pattern (else `make data` stops) and the labels form classes."""
    base = spec.train_dir.rstrip("/")
    pattern = re.compile(spec.resolved_label_pattern)
    labels: Counter = Counter()
    unmatched = []
    for f in train:
        if under(f.rel, spec.test_dir) and spec.test_dir not in ("", "."):
            continue
        match = pattern.match(PurePosixPath(f.rel).name)
        if match and (match.group(1) or "").strip():
            labels[match.group(1).strip()] += 1
        else:
            unmatched.append(f.rel)
    if unmatched:
        check.problems.append(f"{len(unmatched)} train file names in {base!r} do not match label_pattern "
                              f"{spec.resolved_label_pattern!r} ({few(unmatched)}). Fix: set label_pattern, or move "
                              f"those files out of train_dir")
    if len(labels) < 2:
        check.problems.append(f"label_pattern finds {len(labels)} label(s) in {base!r} ({few(sorted(labels))}). Fix: "
                              f"set label_pattern to the part of the name that is the class")
    _check_classes(spec, list(labels), check)
    check.n_train = sum(labels.values())
    check.classes = sorted(labels)


# ---- layout csv: a labels CSV -------------------------------------------------------------------------
def _check_labels_csv(spec: CompetitionSpec, task: Task, view: SourceView, train: list[SourceFile],
                      check: SpecCheck) -> None:
    """The labels CSV is there with the columns the task reads, its ids name train images, its labels fit."""
    file = view.find(spec.labels_csv) if spec.labels_csv else None
    if file is None:
        check.problems.append(f"labels_csv {spec.labels_csv!r} is not among the files. Fix: set labels_csv to one of "
                              f"{few([f.rel for f in view.csvs()]) or 'the CSVs (none found)'}")
        return
    frame = read_csv(file)
    roles = {"id_column": spec.id_column, **_spec_columns(spec, TASK_KEYS[spec.task].label_fields),
             **_spec_columns(spec, ("class_column",) if spec.class_column else ())}
    missing = {role: column for role, column in roles.items() if column not in frame.columns}
    for role, column in missing.items():
        check.problems.append(f"{role} {column!r} is not a column of {file.rel}. Fix: pick one of "
                              f"{list(frame.columns)}")
    if missing:
        return
    ids = list(frame[spec.id_column])
    if TASK_KEYS[spec.task].rows_per_image != "one":  # rows per object: the images as the task reads them
        ids = _object_image_ids(spec, task, file, train, check)
        check.classes = list(spec.classes)
    check.n_train = _check_ids(spec, ids, file, train, check)
    _check_label_values(spec, task, frame, file, check)


def _object_image_ids(spec: CompetitionSpec, task: Task, file: SourceFile, train: list[SourceFile],
                      check: SpecCheck) -> list[str]:
    """The images of a labels CSV of one row per object (box, mask, image–class pair), read by the task's own
    readers from a copy of the CSV beside empty stand-ins of the train images (a reader may list the images the
    CSV never names: no boxes, no mask), and what they find wrong in its rows (no image sizes: `make data`
    checks the rows against the images)."""
    with tempfile.TemporaryDirectory() as folder:
        for stand_in in [f.rel for f in train] + [spec.labels_csv]:
            (Path(folder) / stand_in).parent.mkdir(parents=True, exist_ok=True)
            (Path(folder) / stand_in).touch()
        (Path(folder) / spec.labels_csv).write_bytes(file.read())
        try:
            problems = task.spec_label_problems(spec, Path(folder))
            labels = task.index_labels(spec, Path(folder))
        except PodiumError as exc:
            check.problems.append(f"{file.rel} does not read as the spec says: {exc.what}. Fix: {exc.fix}")
            return []
    if problems:
        check.problems.append(f"{len(problems)} rows of {file.rel} do not fit the spec ({few(problems)}). Fix: "
                              f"check the spec's columns and classes against the CSV")
    return [str(i) for i in labels[spec.id_column]] if labels is not None else []


def _check_ids(spec: CompetitionSpec, ids: list[str], file: SourceFile, train: list[SourceFile],
               check: SpecCheck) -> int:
    """Each id names one train image (as the index finds it), once per image; returns how many are found."""
    base = spec.train_dir.rstrip("/")
    root = Path("/") / "virtual"
    train_root = root / base if base not in ("", ".") else root
    lookup = FileLookup([root / f.rel for f in train], train_root)
    repeated = [i for i, n in Counter(ids).items() if n > 1]
    if repeated:
        check.problems.append(f"{len(repeated)} ids occur more than once in {file.rel} ({few(repeated)}). "
                              f"Fix: one row per image (remove the duplicates)")
    found = [lookup.find(i) for i in ids]
    missing_ids = [i for i, p in zip(ids, found) if p is None and i not in lookup.ambiguous]
    if lookup.ambiguous:
        check.problems.append(f"{len(lookup.ambiguous)} ids match more than one file ({few(lookup.ambiguous)}). "
                              f"Fix: write them as paths relative to train_dir")
    if missing_ids:
        check.problems.append(f"{len(missing_ids)} of {len(ids)} ids in {file.rel} name no image under "
                              f"{spec.train_dir!r} ({few(missing_ids)}). Fix: check id_column and train_dir")
    unlabelled = len(train) - sum(p is not None for p in found)
    if unlabelled > 0:
        check.notes.append(f"{unlabelled} images under {spec.train_dir!r} have no row in {file.rel}: not used")
    return sum(p is not None for p in found)


def _check_label_values(spec: CompetitionSpec, task: Task, frame: pd.DataFrame, file: SourceFile,
                        check: SpecCheck) -> None:
    """The label column's classes, as the task reads them; a task that checks them wants every row labelled
    with a class the spec lists."""
    column = frame[spec.label_column] if spec.label_column in frame.columns else None
    classes = task.spec_classes(column) if column is not None else None
    if classes is not None and task.spec_checks_labels:
        empty = frame.loc[column.str.strip() == "", spec.id_column].tolist()
        if empty:
            check.problems.append(f"{len(empty)} rows of {file.rel} have an empty label ({few(empty)}). "
                                  f"Fix: fill or drop them")
        _note_singles(column.value_counts(), check)
        _check_classes(spec, classes, check)
    if classes is not None:
        check.classes = classes


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
            check.problems.append(f"labels {few(unknown)} are not in the spec's classes. Fix: add them to "
                                  f"classes, or empty classes to use the labels found")


# ---- the sample submission ----------------------------------------------------------------------------
def _sample_file(spec: CompetitionSpec, view: SourceView, check: SpecCheck) -> SourceFile | None:
    """The spec's sample submission among the files, or None with the problem noted."""
    file = view.find(spec.sample_submission)
    if file is None:
        check.problems.append(f"sample_submission {spec.sample_submission!r} is not among the files. Fix: set it "
                              f"to one of {few([f.rel for f in view.csvs()]) or 'the CSVs (none found)'}")
    return file


def _sample_columns(frame: pd.DataFrame, file: SourceFile, needed: list[str], check: SpecCheck) -> bool:
    """The sample has the columns named (else the problem is noted and False returned)."""
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        check.problems.append(f"the sample submission {file.rel} has no column {few(absent)}. Fix: set "
                              f"submission_id_column / submission_label_column to names among {list(frame.columns)}")
    return not absent


def _check_sample(spec: CompetitionSpec, task: Task, view: SourceView, test: list[SourceFile],
                  check: SpecCheck) -> None:
    """The sample's columns, its ids against the test files' names, and its form against submission_format."""
    file = _sample_file(spec, view, check)
    if file is None:
        return
    frame = read_csv(file)
    fields = TASK_KEYS[spec.task].submission_fields + (("submission_class_column",) if spec.submission_class_column
                                                       else ())
    needed = list(_spec_columns(spec, fields).values())
    if spec.resolved_submission_format == "probabilities":  # a column per class instead of one label column
        needed = [spec.submission_id_column]
    if not _sample_columns(frame, file, needed, check):
        return
    _check_sample_ids(spec, task, frame, test, check)
    for problem in sample_form_problems(frame, spec, check.classes or None):
        check.problems.append(f"the sample submission {file.rel} does not fit submission_format: "
                              f"{spec.resolved_submission_format}: {problem}. Fix: set submission_format (and the "
                              f"metric, positive_class, top_k) to what the sample holds (draft again to see)")


def _check_sample_ids(spec: CompetitionSpec, task: Task, frame: pd.DataFrame, test: list[SourceFile],
                      check: SpecCheck) -> None:
    """Each sample id names one test file as submission_id says (stem or file name); the hint names the other."""
    names = [PurePosixPath(f.rel).name for f in test]
    test_ids = [PurePosixPath(n).stem for n in names] if spec.submission_id == "stem" else names
    doubled = [i for i, n in Counter(test_ids).items() if n > 1]
    if doubled:
        check.problems.append(f"{len(doubled)} test ids occur twice under {spec.test_dir!r} ({few(doubled)}). "
                              f"Fix: submission_id: filename if the sample ids carry the extension")
    try:
        sample_ids = list(dict.fromkeys(task.spec_sample_images(spec, frame)))
    except PodiumError as exc:
        check.problems.append(f"the sample submission's ids do not read as the spec says: {exc.what}. Fix: {exc.fix}")
        return
    unmatched = sorted(set(sample_ids) - set(test_ids))
    if unmatched:
        other = "stem" if spec.submission_id == "filename" else "filename"
        other_ids = set(names) if other == "filename" else {PurePosixPath(n).stem for n in names}
        hint = (f"submission_id: {other} matches {len(set(sample_ids) & other_ids)} of them"
                if set(sample_ids) & other_ids else "check test_dir and submission_id_column")
        check.problems.append(f"{len(unmatched)} of {len(sample_ids)} sample submission ids name no file under "
                              f"{spec.test_dir!r} as {spec.submission_id} ({few(unmatched)}). Fix: {hint}")
    extra = len(set(test_ids) - set(sample_ids))
    if extra:
        check.notes.append(f"{extra} test images are not in the sample submission: predicted, then left out")


# ---- layout pixels: images stored as CSV pixel columns ------------------------------------------------
def _check_pixels(spec: CompetitionSpec, view: SourceView, check: SpecCheck) -> None:
    """What `make data` needs of a pixels layout: both CSVs, the label column, a shape that fits, the sample."""
    csvs = {}
    for split, name in (("train", spec.labels_csv or "train.csv"), ("test", spec.test_csv)):
        csv = _pixel_file(spec, view, split, name, check)
        if csv is not None:
            csvs[split] = csv
    if "train" in csvs:
        train = csvs["train"]
        if spec.label_column not in train.others.columns:
            check.problems.append(f"{train.file.rel} has no label column {spec.label_column!r}. Fix: set "
                                  f"label_column to one of {few(list(train.others.columns)) or 'none found'}")
        else:
            check.classes = sorted(train.others[spec.label_column].unique())
            _check_classes(spec, check.classes, check)
        check.n_train = train.rows
    if "test" in csvs:
        check.n_test = csvs["test"].rows
        _check_pixel_sample(spec, view, csvs["test"], check)


def _pixel_file(spec: CompetitionSpec, view: SourceView, split: str, name: str, check: SpecCheck) -> PixelCsv | None:
    """The split's CSV of pixel columns, with a count of columns the spec's image_shape fits (else noted)."""
    file = view.find(name)
    csv = pixel_csv(file) if file else None
    if csv is None:
        field_name = "labels_csv" if split == "train" else "test_csv"
        check.problems.append(f"{field_name} {name!r} is not a CSV of pixel<N> columns among the files. Fix: set "
                              f"{field_name} to one of {few([f.rel for f in view.csvs()]) or 'none found'}")
        return None
    count = len(csv.pixel_columns)
    fits = math.prod(spec.image_shape) == count if spec.image_shape else math.isqrt(count) ** 2 == count
    if not fits:
        check.problems.append(f"{name} has {count} pixel columns, which image_shape "
                              f"{list(spec.image_shape) or '(empty: a square)'} does not fit. Fix: image_shape: "
                              f"{pixel_shape(count)[0] or '[height, width]'}")
    return csv


def _check_pixel_sample(spec: CompetitionSpec, view: SourceView, test: PixelCsv, check: SpecCheck) -> None:
    """The sample's columns, and its ids against the test CSV's id column (else its 1-based row numbers)."""
    file = _sample_file(spec, view, check)
    if file is None:
        return
    frame = read_csv(file)
    if not _sample_columns(frame, file, [spec.submission_id_column, spec.submission_label_column], check):
        return
    ids = (set(test.others[spec.id_column]) if spec.id_column in test.others.columns
           else {str(k) for k in range(1, test.rows + 1)})
    unmatched = sorted(set(frame[spec.submission_id_column]) - ids)
    if unmatched:
        check.problems.append(f"{len(unmatched)} sample submission ids name no test row ({few(unmatched)}). Fix: "
                              f"set id_column to the test CSV's id column (without one, ids are 1-based row "
                              f"numbers)")
