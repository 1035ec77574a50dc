"""The index: one row per image, the table every later stage reads instead of walking folders again.

Columns: id, split, path, label, width, height, hash, group, group_key, ok, error (group: byte copies,
near-duplicates after `make dups`; group_key: the spec's group_column, podium.data.groups). Every image is fully decoded
once here, so a corrupt file becomes an ok=False row with its reason instead of a crash mid-epoch.
Rows are sorted by (split, id), so the same files give the same table on every machine.

What differs between tasks (where a csv layout's labels come from, how a label names classes, which targets
`make data` checks) is asked of the task object the stage above passes in: data/ never imports the tasks.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pandas as pd

from podium.data.competitions import CompetitionSpec
from podium.data.extract import MARKER, describe_contents, find_folders
from podium.data.groups import GROUP_KEY, attach_group_keys
from podium.data.images import (ImageDecodeError, pixel_array, pixel_ref, pixel_ref_path, probe_image,
                                read_image_bytes)
from podium.data.pixels import pixel_csv_rows
from podium.data.source_files import first_few, read_labels_table
from podium.errors import PodiumError
from podium.io import write_parquet
from podium.progress import progress as progress_bar

COLUMNS = ["id", "split", "path", "label", "width", "height", "hash", "group", GROUP_KEY, "ok", "error"]
_ADDED_LATER = {GROUP_KEY: ""}  # columns an older index lacks, and the value they mean there
_IGNORED_NAMES = {"__MACOSX", "Thumbs.db", "desktop.ini"}
_SHOW = 5  # how many offending names an error message lists


class IndexTask(Protocol):
    """What the index asks the competition's task: the task object its entry point resolved, passed in."""

    def index_labels(self, spec: CompetitionSpec, data_root: Path) -> pd.DataFrame | None: ...

    def class_names(self, labels: pd.Series) -> list[str]: ...

    def check_targets(self, spec: CompetitionSpec, data_root: Path, index: pd.DataFrame) -> None: ...


@dataclass(frozen=True)
class _Entry:
    id: str
    split: str
    path: Path  # absolute
    label: str


# ---- public ---------------------------------------------------------------------------------------
def build_index(spec: CompetitionSpec, data_root: Path, task: IndexTask, progress: bool = False) -> pd.DataFrame:
    """Find, label, hash and fully decode every train and test image of the competition; `task` is the
    spec's task object (its labels and targets)."""
    data_root = Path(data_root)
    _require_dir(data_root, spec, "data folder")
    if spec.layout == "pixels":
        train = _pixel_entries(spec, data_root, "train")
    elif spec.layout == "filename":
        train = _filename_entries(spec, data_root)
    elif spec.layout == "folder":
        train = _folder_entries(spec, data_root)
    else:
        train = _csv_entries(spec, data_root, task)
    _check_labels(spec, train, task)
    entries = train + _test_entries(spec, data_root)
    facts = _inspect_all([entry.path for entry in entries], progress)
    frame = attach_group_keys(_to_frame(entries, facts, data_root), spec, data_root)
    task.check_targets(spec, data_root, frame)
    return frame


def build_test_index(spec: CompetitionSpec, data_root: Path, progress: bool = False,
                     pixels_dir: Path | None = None) -> pd.DataFrame:
    """Index rows of the test images only: what an inference kernel indexes at run time (a code
    competition's hidden test set is only known then, and its train set is large and not needed).
    `pixels_dir`: where a pixels layout's test array is written when data_root is read-only (Kaggle's
    input); its rows then name the array by its absolute path."""
    data_root = Path(data_root)
    entries = _test_entries(spec, data_root, pixels_dir)
    return _to_frame(entries, _inspect_all([entry.path for entry in entries], progress), data_root)


def save_index(frame: pd.DataFrame, path: Path) -> Path:
    return write_parquet(path, frame)


def load_index(path: Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise PodiumError(f"The image index {path} does not exist.", expected="an index.parquet written by "
                          "`make data`", received="no file", fix="run `make data COMP=<slug>` first")
    frame = pd.read_parquet(path)
    missing = [column for column in COLUMNS if column not in frame.columns and column not in _ADDED_LATER]
    if missing:
        raise PodiumError(f"The image index {path} is from another podium version.",
                          expected=", ".join(COLUMNS), received=", ".join(map(str, frame.columns)),
                          fix="rebuild it: delete the file and run `make data COMP=<slug>`")
    for column, value in _ADDED_LATER.items():  # an index made before the column existed: it meant this
        if column not in frame.columns:
            frame.insert(COLUMNS.index(column), column, value)
    return frame


def class_names(index: pd.DataFrame, spec: CompetitionSpec, task: IndexTask) -> list[str]:
    """The class order for model outputs: the spec's when fixed (the submission may require it), else the
    names the task reads from the train labels of readable images (sorted)."""
    if spec.classes:
        return list(spec.classes)
    train = index[(index["split"] == "train") & index["ok"]]
    return task.class_names(train["label"])


# ---- finding files --------------------------------------------------------------------------------
def _image_files(folder: Path, spec: CompetitionSpec) -> list[Path]:
    """Image files under `folder`, sorted; hidden files and macOS archive litter are not images."""
    extensions = {ext.lower() for ext in spec.image_extensions}
    found = []
    for directory, subdirs, files in os.walk(folder):
        subdirs[:] = sorted(d for d in subdirs if not _ignored(d))
        found.extend(Path(directory, name) for name in files
                     if not _ignored(name) and Path(name).suffix.lower() in extensions)
    return sorted(found)


def _ignored(name: str) -> bool:
    return name.startswith(".") or name in _IGNORED_NAMES


def _folder_entries(spec: CompetitionSpec, data_root: Path) -> list[_Entry]:
    train_dir = data_root / spec.train_dir
    _require_dir(train_dir, spec, "train folder", data_root)
    class_dirs = sorted(p for p in train_dir.iterdir() if p.is_dir() and not _ignored(p.name))
    entries = []
    for class_dir in class_dirs:
        files = _image_files(class_dir, spec)
        if not files:
            raise PodiumError(f"Class folder '{class_dir.name}' in {train_dir} has no images.",
                              expected=f"image files ({', '.join(spec.image_extensions)}) in every class folder",
                              received=f"{class_dir} with no images",
                              fix="remove the empty folder or check the spec's train_dir")
        entries += [_Entry(_posix(f.relative_to(train_dir).with_suffix("")), "train", f, class_dir.name)
                    for f in files]
    if not entries:
        _raise_no_images(spec, train_dir, "class folders (<train_dir>/<class>/<image>) holding images")
    _check_unique_ids(entries, "train")
    return entries


def _csv_entries(spec: CompetitionSpec, data_root: Path, task: IndexTask) -> list[_Entry]:
    train_dir = data_root / spec.train_dir
    _require_dir(train_dir, spec, "train folder", data_root)
    labels = task.index_labels(spec, data_root)
    if labels is None:
        labels = _read_labels_csv(spec, data_root)
    files = _image_files(train_dir, spec)
    if not files:
        _raise_no_images(spec, train_dir, f"the images named in {spec.labels_csv}")
    lookup = FileLookup(files, train_dir)
    ids = labels[spec.id_column].tolist()
    _check_unique_ids([_Entry(i, "train", Path(), "") for i in ids], "train", source=spec.labels_csv)
    paths = [lookup.find(i) for i in ids]
    _check_found(spec, ids, paths, lookup)
    return [_Entry(i, "train", p, label) for i, p, label in zip(ids, paths, labels[spec.label_column])]


def _filename_entries(spec: CompetitionSpec, data_root: Path) -> list[_Entry]:
    """layout filename: every image under train_dir, labelled by label_pattern's group on its file name.
    A name the pattern does not match stops `make data` naming it: dropping it would silently change the
    classes' counts, and a wrong pattern would otherwise pass as a tiny dataset."""
    train_dir = data_root / spec.train_dir
    _require_dir(train_dir, spec, "train folder", data_root)
    files = _image_files(train_dir, spec)
    if not files:
        _raise_no_images(spec, train_dir, "images whose file names carry their label (cat.123.jpg)")
    pattern = re.compile(spec.resolved_label_pattern)
    entries, unmatched = [], []
    for f in files:
        match = pattern.match(f.name)
        label = (match.group(1) or "").strip() if match else ""
        if not label:
            unmatched.append(_posix(f.relative_to(train_dir)))
            continue
        entries.append(_Entry(_posix(f.relative_to(train_dir).with_suffix("")), "train", f, label))
    if unmatched:
        raise PodiumError(f"{len(unmatched)} of {len(files)} train file names in {train_dir} do not match the "
                          f"label pattern {spec.resolved_label_pattern!r}.",
                          expected="every train file name to start with its label, the pattern's group "
                                   "(default: the text before the first dot of name.part.ext, cat.123.jpg -> cat)",
                          received=f"unmatched {first_few(unmatched)}",
                          fix="move the files that are not train images out of train_dir, or set label_pattern in "
                              "the competition spec (a regex with one group, matched at the name's start)")
    _check_unique_ids(entries, "train")
    return entries


def _pixel_entries(spec: CompetitionSpec, data_root: Path, split: str, out_dir: Path | None = None) -> list[_Entry]:
    """layout pixels: the CSV's rows become rows of an array file; each entry names its row."""
    rows = pixel_csv_rows(spec, data_root, split, out_dir)
    return [_Entry(image_id, split, Path(pixel_ref_path(rows.array_file.resolve(), k)), label)
            for k, (image_id, label) in enumerate(zip(rows.ids, rows.labels))]


def _read_labels_csv(spec: CompetitionSpec, data_root: Path) -> pd.DataFrame:
    path, frame = read_labels_table(spec, data_root)
    for role, column in (("id", spec.id_column), ("label", spec.label_column)):
        if column not in frame.columns:
            raise PodiumError(f"The labels CSV {path} has no {role} column '{column}'.",
                              expected=f"columns {spec.id_column!r} and {spec.label_column!r}",
                              received=f"columns {list(frame.columns)}",
                              fix=f"set {role}_column in the competition spec to the right column name")
    unlabeled = frame.loc[frame[spec.label_column].str.strip() == "", spec.id_column].tolist()
    if unlabeled:
        raise PodiumError(f"{len(unlabeled)} rows of {path} have no label.", expected="a label on every row",
                          received=f"empty labels for ids {first_few(unlabeled)}",
                          fix="fill or drop those rows (keep a copy of the original)")
    return frame


class FileLookup:
    """Resolve a CSV id to a file: relative path, then exact file name, then stem. Kaggle CSVs use all three."""

    def __init__(self, files: list[Path], train_dir: Path):
        self.by_relative = {_posix(f.relative_to(train_dir)): f for f in files}
        self.by_name: dict[str, list[Path]] = {}
        self.by_stem: dict[str, list[Path]] = {}
        for f in files:
            self.by_name.setdefault(f.name, []).append(f)
            self.by_stem.setdefault(f.stem, []).append(f)
        self.ambiguous: list[str] = []

    def find(self, image_id: str) -> Path | None:
        if image_id in self.by_relative:
            return self.by_relative[image_id]
        candidates = self.by_name.get(image_id) or self.by_stem.get(image_id) or []
        if len(candidates) > 1:
            self.ambiguous.append(image_id)
            return None
        return candidates[0] if candidates else None


def _check_found(spec: CompetitionSpec, ids: list[str], paths: list[Path | None], lookup: FileLookup) -> None:
    if lookup.ambiguous:
        raise PodiumError(f"{len(lookup.ambiguous)} ids in {spec.labels_csv} match more than one file.",
                          expected="each id naming exactly one image under " + spec.train_dir,
                          received=f"ambiguous ids {first_few(lookup.ambiguous)}",
                          fix="write those ids as paths relative to train_dir, e.g. 'cats/1.jpg'")
    missing = [i for i, p in zip(ids, paths) if p is None]
    if missing:
        raise PodiumError(f"{len(missing)} of {len(ids)} rows in {spec.labels_csv} name images that do not exist "
                          f"under {spec.train_dir}.",
                          expected="every id to be a file name or stem of an image under " + spec.train_dir,
                          received=f"missing ids {first_few(missing)}",
                          fix="check train_dir and id_column in the spec, or re-extract with `make data FORCE=1`")


def _test_entries(spec: CompetitionSpec, data_root: Path, pixels_dir: Path | None = None) -> list[_Entry]:
    if spec.layout == "pixels":
        return _pixel_entries(spec, data_root, "test", pixels_dir)
    test_dir = data_root / spec.test_dir
    _require_dir(test_dir, spec, "test folder", data_root)
    files = _image_files(test_dir, spec)
    if not files:
        _raise_no_images(spec, test_dir, "the test images")
    name = (lambda f: f.stem) if spec.submission_id == "stem" else (lambda f: f.name)
    entries = [_Entry(name(f), "test", f, "") for f in files]
    _check_unique_ids(entries, "test")
    return entries


# ---- checks ---------------------------------------------------------------------------------------
def _require_dir(folder: Path, spec: CompetitionSpec, role: str, data_root: Path | None = None) -> None:
    """A missing folder before `make data` ran means: run it. After it ran (the unpack marker is there),
    running it again changes nothing: the spec names a folder the archives do not hold, so say what
    they do hold and which spec field to change."""
    if folder.is_dir():
        return
    if data_root is None or not (data_root / MARKER).is_file():
        raise PodiumError(f"The {role} of competition '{spec.slug}' does not exist.",
                          expected=f"a folder at {folder}", received="nothing there",
                          fix=f"run `make data COMP={spec.slug}` first (or check the spec's paths)")
    field = {"train folder": "train_dir", "test folder": "test_dir"}.get(role, "paths")
    named = folder.relative_to(data_root).as_posix()
    candidates = find_folders(data_root, named)
    zips = sorted(p.name for p in data_root.rglob("*.zip"))[:_SHOW]
    if candidates:
        hint = f"set {field}: {candidates[0]} in the competition spec"
    elif zips:  # a zip in a zip in a zip: podium unpacks one level inside an archive
        hint = (f"the archives hold zips deeper than podium unpacks (one level inside an archive): "
                f"{', '.join(zips)}; unzip the outer archives yourself, put the zip that holds the images into a "
                f"folder, name it in the spec's archives and run `make data SRC=<that folder>`; or set {field}")
    else:
        hint = f"set {field} in the competition spec to the folder above that holds the {role.split()[0]} images"
    raise PodiumError(f"The unpacked files of competition '{spec.slug}' have no {role} '{named}'.",
                      expected=f"a folder {named}/ in {data_root} (the spec's {field})",
                      received=f"the archives unpacked to: {describe_contents(data_root)}",
                      fix=f"{hint}, then run `make data` again (unpacking is kept, only the index is built)")


def _raise_no_images(spec: CompetitionSpec, folder: Path, expected: str) -> None:
    present = sorted(p.name for p in folder.iterdir())[:_SHOW]
    raise PodiumError(f"No images found in {folder}.",
                      expected=f"{expected}, with extensions {', '.join(spec.image_extensions)}",
                      received=f"{', '.join(present) or 'an empty folder'}",
                      fix="check the spec's train_dir/test_dir/layout/image_extensions against the archive")


def _check_unique_ids(entries: list[_Entry], split: str, source: str = "") -> None:
    counts = Counter(e.id for e in entries)
    duplicates = sorted(image_id for image_id, count in counts.items() if count > 1)
    if duplicates:
        where = source or f"the {split} files"
        raise PodiumError(f"{len(duplicates)} {split} ids occur more than once in {where}.",
                          expected="one row per id (ids name the image in folds and the submission)",
                          received=f"duplicated ids {first_few(duplicates)}",
                          fix="remove the duplicates, e.g. the same name with two extensions")


def _check_labels(spec: CompetitionSpec, entries: list[_Entry], task: IndexTask) -> None:
    if not spec.classes:
        return
    found = task.class_names(pd.Series([e.label for e in entries]))  # a label set: its names
    unknown = sorted(set(found) - set(spec.classes))
    if unknown:
        raise PodiumError(f"Train labels are not among the classes of competition '{spec.slug}'.",
                          expected=f"labels in {list(spec.classes)}", received=f"unknown labels {first_few(unknown)}",
                          fix="fix the labels, or the spec's classes list (or empty it to use the labels found)")


# ---- hashing and decoding -------------------------------------------------------------------------
def _inspect(path: Path) -> tuple[str, int, int, bool, str]:
    """(sha1, width, height, ok, error) from a single read of the file."""
    try:
        data = read_image_bytes(path)  # a file, or a row of a pixel array as PGM/PPM bytes
    except ImageDecodeError as exc:
        return "", 0, 0, False, exc.reason
    ref = pixel_ref(path)
    if ref is not None:  # a row of a uint8 array: nothing can be corrupt, its shape is its size
        height, width = pixel_array(ref[0]).shape[1:3]
        return hashlib.sha1(data).hexdigest(), int(width), int(height), True, ""
    width, height, ok, error = probe_image(path, data=data)
    return hashlib.sha1(data).hexdigest(), width, height, ok, error


def _inspect_all(paths: list[Path], progress: bool) -> list[tuple[str, int, int, bool, str]]:
    """Hashing and decoding are I/O and C bound (Pillow releases the GIL): threads scale; map keeps order."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = pool.map(_inspect, paths)
        return list(progress_bar(results, total=len(paths), desc="index", unit="img", enabled=progress))


def _to_frame(entries: list[_Entry], facts: list[tuple], data_root: Path) -> pd.DataFrame:
    hashes, widths, heights, oks, errors = zip(*facts) if facts else ((),) * 5
    frame = pd.DataFrame({
        "id": [e.id for e in entries],
        "split": [e.split for e in entries],
        "path": [_relative(e.path, data_root) for e in entries],
        "label": [str(e.label) for e in entries],
        "width": pd.array(widths, dtype="int64"),
        "height": pd.array(heights, dtype="int64"),
        "hash": list(hashes),
        # exact duplicates share a group (near-duplicate grouping comes later); an unreadable file is its own
        "group": [h or f"unreadable:{_relative(e.path, data_root)}" for h, e in zip(hashes, entries)],
        GROUP_KEY: "",  # filled from the spec's group_column by build_index (attach_group_keys)
        "ok": pd.array(oks, dtype="bool"),
        "error": list(errors),
    }, columns=COLUMNS)
    return frame.sort_values(["split", "id"], kind="stable").reset_index(drop=True)


def _posix(path: Path) -> str:
    return path.as_posix()


def _relative(path: Path, data_root: Path) -> str:
    """The path relative to data_root; absolute when outside it (a kernel's pixel array in its scratch)."""
    try:
        return _posix(path.relative_to(data_root))
    except ValueError:
        try:
            return _posix(path.relative_to(data_root.resolve()))
        except ValueError:
            return _posix(path)
