"""Validation splits made once, deterministically, and saved: the same inputs give the same folds on
every run and machine, and images sharing a `group` (duplicates) or a `group_key` (the spec's
group_column: a patient, a scene) never sit on both sides of a split (podium.data.groups merges the two).

Every class keeps images in training: a class too small to be split (one image, or one near-duplicate
group) trains in every fold and is never validated, and the split says so in its notes instead of
letting the model never see the class. The split's sidecar (`<split>.json`) records the fingerprint
of the index it was made from (ids, labels, groups of the readable train images), the group_column and
a fingerprint of its values, so a split of changed labels or groups is refused, not silently reused.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from podium.data.groups import check_index_groups, group_fingerprint, index_group_column, split_groups
from podium.errors import PodiumError
from podium.io import write_csv, write_json

VALIDATION_FOLD_OF_HOLDOUT = 0
TRAINING_FOLD_OF_HOLDOUT = 1
TRAIN_ONLY = -1  # k-fold: rows in training for every fold, validated in none (a class too small to split)
FINGERPRINT_COLUMNS = ("id", "label", "group")  # what a split is made from


def labeled_rows(index: pd.DataFrame) -> pd.DataFrame:
    """The train rows a split is made of: decodable ones, sorted by id so order never depends on disk."""
    rows = index[(index["split"] == "train") & index["ok"]]
    return rows.sort_values("id", kind="stable").reset_index(drop=True)


def _grouped_rows(index: pd.DataFrame) -> pd.DataFrame:
    """labeled_rows with `group` = what the split keeps whole: near-duplicates and group_column merged."""
    rows = labeled_rows(index)
    return rows.assign(group=split_groups(rows).to_numpy())


def index_fingerprint(index: pd.DataFrame, columns: tuple[str, ...] = FINGERPRINT_COLUMNS) -> str:
    """Short sha256 of the labeled rows' `columns`: which images train (id, readable, train side), with
    which labels and duplicate groups. Changes exactly when a split made from it would."""
    rows = labeled_rows(index)
    payload = json.dumps([rows[c].astype(str).tolist() for c in columns])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def split_fingerprint(split: pd.DataFrame) -> str:
    """Short sha256 of a split's content (id, fold), whatever its row order."""
    ordered = split.sort_values("id", kind="stable")
    payload = json.dumps([ordered["id"].astype(str).tolist(), ordered["fold"].astype(int).tolist()])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def split_notes(split: pd.DataFrame) -> list[str]:
    """What a split had to do differently from a plain stratified split (small classes), in words."""
    return list(split.attrs.get("notes", []))


# ---- making splits --------------------------------------------------------------------------------
def make_kfold(index: pd.DataFrame, n_folds: int, seed: int) -> pd.DataFrame:
    """Stratified, grouped k-fold. A class with one group trains in every fold (fold -1); a class with
    fewer groups than folds is validated in some folds only; both are noted (`split_notes`). A group is
    a near-duplicate group merged with the group_column's (podium.data.groups.split_groups)."""
    rows = _grouped_rows(index)
    if len(rows) < n_folds:
        raise PodiumError("Too few labeled images for k-fold.", expected=f">= {n_folds} images",
                          received=str(len(rows)), fix="lower n_folds or use val_split")
    group_label = rows.groupby("group", sort=True)["label"].first()
    notes, train_only = _single_group_classes(group_label, "in training for every fold, never validated")
    splittable = rows[~rows["group"].isin(train_only)]
    n_groups = splittable["group"].nunique()
    if n_groups < n_folds:
        raise PodiumError(f"Too few independent images for {n_folds}-fold validation.",
                          expected=f">= {n_folds} groups (near-duplicates, group_column) in classes with 2 or "
                                   "more groups",
                          received=f"{n_groups} groups ({len(rows)} images)",
                          fix=f"lower n_folds (n_folds={max(2, n_groups)}) or use val_split=0.2")
    folds = np.full(len(rows), TRAIN_ONLY, dtype=int)
    positions = np.flatnonzero(~rows["group"].isin(train_only).to_numpy())
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # sklearn warns about classes smaller than n_folds: noted above
        warnings.simplefilter("ignore", UserWarning)
        for fold, (_, val_idx) in enumerate(splitter.split(splittable, splittable["label"],
                                                           groups=splittable["group"])):
            folds[positions[val_idx]] = fold
    split = pd.DataFrame({"id": rows["id"], "fold": folds})
    notes += _keep_every_class_in_training(split, rows, range(n_folds), TRAIN_ONLY)
    per_class = splittable.groupby("label")["group"].nunique()
    for label, count in per_class[per_class < n_folds].items():
        validated = split.loc[(rows["label"] == label) & (split["fold"] != TRAIN_ONLY), "fold"].nunique()
        notes.append(f"class {label!r} has {count} image group(s), fewer than n_folds={n_folds}: it is validated "
                     f"in {validated} of {n_folds} folds only")
    split.attrs["notes"] = notes
    return split


def make_holdout(index: pd.DataFrame, val_split: float, seed: int) -> pd.DataFrame:
    """One stratified split of whole groups: fold 0 is validation, fold 1 is training. A class with one
    group stays in training; when stratifying is impossible the split says so (`split_notes`). Groups as
    in make_kfold: near-duplicates merged with the group_column's."""
    rows = _grouped_rows(index)
    group_label = rows.groupby("group", sort=True)["label"].first()
    notes, train_only = _single_group_classes(group_label, "kept in training, never validated")
    candidates = group_label[~group_label.index.isin(train_only)]
    n_val = int(np.ceil(len(candidates) * val_split))
    if len(candidates) < 2 or n_val < 1 or n_val >= len(candidates):
        raise PodiumError(f"Too few independent images to hold out {val_split:.0%} for validation.",
                          expected="2 or more groups (near-duplicates, group_column) in classes with 2 or more groups",
                          received=f"{len(candidates)} such groups ({len(rows)} images)",
                          fix="add labeled images, or change val_split")
    n_classes = candidates.nunique()
    stratify = candidates.to_numpy() if min(n_val, len(candidates) - n_val) >= n_classes else None
    if stratify is None:
        notes.append(f"the split is not stratified: {n_val} validation group(s) cannot hold one of each of "
                     f"{n_classes} classes (a larger val_split or more images can)")
    _, val_groups = train_test_split(candidates.index.to_numpy(), test_size=val_split, random_state=seed,
                                     stratify=stratify)
    fold = np.where(rows["group"].isin(set(val_groups)), VALIDATION_FOLD_OF_HOLDOUT, TRAINING_FOLD_OF_HOLDOUT)
    split = pd.DataFrame({"id": rows["id"], "fold": fold})
    split.attrs["notes"] = notes + _keep_every_class_in_training(
        split, rows, [VALIDATION_FOLD_OF_HOLDOUT], TRAINING_FOLD_OF_HOLDOUT)
    if not (split["fold"] == VALIDATION_FOLD_OF_HOLDOUT).any():
        raise PodiumError("Keeping every class in training left nothing to validate on.",
                          expected="a validation share beside one training group per class",
                          received=f"{len(rows)} images in {group_label.nunique()} classes",
                          fix="add labeled images, or use val_split=0 with k-fold")
    return split


def _single_group_classes(group_label: pd.Series, what: str) -> tuple[list[str], list[str]]:
    """Notes and groups of classes with one group: they cannot sit on both sides, so they train."""
    counts = group_label.value_counts()
    single = sorted(str(label) for label in counts[counts < 2].index)
    notes = [f"class {label!r} has a single image (group): {what}" for label in single]
    return notes, group_label[group_label.astype(str).isin(single)].index.tolist()


def _keep_every_class_in_training(split: pd.DataFrame, rows: pd.DataFrame, validation_folds,
                                  train_fold: int) -> list[str]:
    """Whatever the splitter did, every class keeps a training group for every validation fold: if one
    fold took all of a class, its first group moves to `train_fold` (in place), and a note says so."""
    notes = []
    for fold in validation_folds:
        labels = rows["label"].astype(str)
        in_training = set(labels[split["fold"] != fold])
        for label in sorted(set(labels) - in_training):
            first_group = rows.loc[(labels == label) & (split["fold"] == fold), "group"].min()
            moved = rows["group"] == first_group
            split.loc[moved, "fold"] = train_fold
            notes.append(f"class {label!r} had all its images in validation fold {fold}: {int(moved.sum())} image(s) "
                         "moved to training so the model sees the class")
    return notes


# ---- saved splits ---------------------------------------------------------------------------------
def split_path(data_root: Path, n_folds: int, val_split: float, seed: int) -> Path:
    name = f"holdout-{val_split:.2f}-s{seed}.csv" if val_split else f"folds-k{n_folds}-s{seed}.csv"
    return Path(data_root) / "splits" / name


def read_split_record(path: Path) -> dict:
    """The sidecar of a saved split (index fingerprint, notes); {} for a split without one."""
    sidecar = Path(path).with_suffix(".json")
    if not sidecar.is_file():
        return {}
    try:
        return json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def load_or_make_split(index: pd.DataFrame, data_root: Path, n_folds: int, val_split: float, seed: int,
                       force: bool = False, group_column: str | None = None) -> tuple[pd.DataFrame, Path]:
    """Reuse the saved split when it was made from this index; a stale one is an error, not a silent redo.

    `group_column` is the spec's (None: whatever the index's group keys came from); an index whose keys
    came from another column is refused, and so is a saved split made with another column or other values.
    The split's notes (`split_notes`) come back with it, from the sidecar when it is reused.
    """
    if group_column is None:
        group_column = index_group_column(index)
    check_index_groups(index, group_column)
    path = split_path(data_root, n_folds, val_split, seed)
    fingerprint = index_fingerprint(index)
    groups = {"group_column": group_column, "group_fingerprint": group_fingerprint(labeled_rows(index))}
    expected_ids = set(labeled_rows(index)["id"])
    if path.is_file() and not force:
        split = pd.read_csv(path, dtype={"id": str, "fold": int}, keep_default_na=False)
        if set(split["id"]) != expected_ids:
            raise PodiumError(f"The saved split {path} does not match the current index.",
                              expected=f"{len(expected_ids)} ids of the indexed training images",
                              received=f"{len(split)} ids, {len(set(split['id']) ^ expected_ids)} different",
                              fix="rebuild it with `make folds FORCE=1` (old results used the old split)")
        record = read_split_record(path)
        recorded = record.get("index_fingerprint")
        if recorded is None:  # made by hand, or by a podium that kept no record: adopted, and said
            notes = ["this split had no record of the index it was made from (made by hand or by an older "
                     "podium): adopted for the current index"]
            try:
                record = _write_record(path, split, fingerprint, n_folds, val_split, seed, notes, groups)
            except (OSError, PodiumError):  # a read-only data folder: still readable, the adoption unrecorded
                record = {"notes": notes}
        elif recorded != fingerprint:
            raise PodiumError(f"The saved split {path} was made from other labels: the index changed since "
                              "(labels or duplicate groups, e.g. after `make data FORCE=1` or `make dups`).",
                              expected=f"index fingerprint {recorded} (when the split was made)",
                              received=f"index fingerprint {fingerprint} now",
                              fix="rebuild it with `make folds FORCE=1`, then retrain with `make train FORCE=1` "
                                  "(runs trained on the old split learned the old labels)")
        else:
            _check_recorded_groups(path, record, groups)
        split.attrs["notes"] = list(record.get("notes", []))
        return split, path
    split = make_holdout(index, val_split, seed) if val_split else make_kfold(index, n_folds, seed)
    write_csv(path, split)
    _write_record(path, split, fingerprint, n_folds, val_split, seed, split_notes(split), groups)
    return split, path


def _check_recorded_groups(path: Path, record: dict, groups: dict) -> None:
    """A split made with another group_column, or other values in it, keeps other images together: stale.
    A sidecar from before group_column recorded none, which is what it was made with."""
    recorded = record.get("group_column", "")
    fix = ("rebuild it with `make folds FORCE=1`, then retrain with `make train FORCE=1` (runs trained on the "
           "old split validated on images whose group was in training)")
    if recorded != groups["group_column"]:
        raise PodiumError(f"The saved split {path} was made with group_column {recorded or '(none)'!r}, the spec "
                          f"now names {groups['group_column'] or '(none)'!r}.",
                          expected=f"a split made with group_column {recorded or '(none)'!r}",
                          received=f"group_column {groups['group_column'] or '(none)'!r}", fix=fix)
    if "group_fingerprint" in record and record["group_fingerprint"] != groups["group_fingerprint"]:
        raise PodiumError(f"The saved split {path} was made from other values of group_column "
                          f"{recorded!r}: the labels CSV changed since.",
                          expected=f"group fingerprint {record['group_fingerprint']} (when the split was made)",
                          received=f"group fingerprint {groups['group_fingerprint']} now", fix=fix)


def _write_record(path: Path, split: pd.DataFrame, fingerprint: str, n_folds: int, val_split: float, seed: int,
                  notes: list[str], groups: dict) -> dict:
    record = {"index_fingerprint": fingerprint, "split_fingerprint": split_fingerprint(split),
              "n_folds": n_folds, "val_split": val_split, "seed": seed, **groups, "notes": notes}
    write_json(Path(path).with_suffix(".json"), record)
    return record
