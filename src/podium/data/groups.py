"""Groups the split keeps whole: the spec's `group_column` (a patient, a scene, a photographer: a column of
the labels CSV) merged with the near-duplicate groups of `make dups`.

Why: images of one patient look alike in ways the labels do not say (same skin, same camera); a model that
saw a patient's other images in training scores them too well in validation. The index carries each train
image's key in `group_key`, written `<column>=<value>` so the index says which column it came from (a spec
whose group_column changed is noticed, not silently split by the old column). An empty cell is no group:
the image stands alone (still with its near-duplicates).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from podium.data.competitions import CompetitionSpec
from podium.data.hash_search import components, same_value_chain
from podium.data.source_files import first_few, read_labels_table
from podium.errors import PodiumError

GROUP_KEY = "group_key"  # index column: "<group_column>=<value>", "" for no group (test images, empty cells)


def read_group_values(spec: CompetitionSpec, data_root: Path) -> dict[str, str]:
    """id -> the group_column's value, from the labels CSV; a missing column is an error naming the ones
    there, and an id given two different values is an error too (one image, one patient)."""
    path, frame = read_labels_table(spec, data_root)
    column = spec.group_column
    if column not in frame.columns:
        raise PodiumError(f"The labels CSV {path} has no group column '{column}'.",
                          expected=f"a column {column!r} (the spec's group_column) beside {spec.id_column!r}",
                          received=f"columns {list(frame.columns)}",
                          fix="set group_column in the competition spec to one of those columns, or remove it")
    if spec.id_column not in frame.columns:
        raise PodiumError(f"The labels CSV {path} has no id column '{spec.id_column}'.",
                          expected=f"a column {spec.id_column!r} naming each image",
                          received=f"columns {list(frame.columns)}",
                          fix="set id_column in the competition spec to the right column name")
    pairs = frame[[spec.id_column, column]].drop_duplicates()
    conflicting = pairs.loc[pairs[spec.id_column].duplicated(), spec.id_column].tolist()
    if conflicting:
        raise PodiumError(f"{len(conflicting)} ids of {path} have two different values in '{column}'.",
                          expected=f"one {column} per image", received=f"ids {first_few(conflicting)}",
                          fix="correct those rows of the labels CSV")
    return dict(zip(pairs[spec.id_column], pairs[column].str.strip()))


def attach_group_keys(index: pd.DataFrame, spec: CompetitionSpec, data_root: Path) -> pd.DataFrame:
    """The index with `group_key` set from the spec's group_column ("" everywhere when it names none).

    A train image is found in the CSV by its id, else its file name, else its stem; one that is not found
    is an error (a group split cannot guess)."""
    out = index.copy()
    out[GROUP_KEY] = ""
    if not spec.group_column:
        return out
    values = read_group_values(spec, data_root)
    train = (out["split"] == "train").to_numpy()
    keys, missing = [], []
    for image_id, path in zip(out.loc[train, "id"].astype(str), out.loc[train, "path"].astype(str)):
        found = next((values[k] for k in (image_id, Path(path).name, Path(path).stem) if k in values), None)
        if found is None:
            missing.append(image_id)
        keys.append(f"{spec.group_column}={found}" if found else "")
    if missing:
        raise PodiumError(f"{len(missing)} train images have no row in {spec.labels_csv} for group_column "
                          f"'{spec.group_column}'.", expected=f"every train image's id in column {spec.id_column!r}",
                          received=f"ids {first_few(missing)}", fix="add their rows, or check id_column")
    if keys and not any(keys):
        raise PodiumError(f"group_column '{spec.group_column}' of {spec.labels_csv} is empty for every train image.",
                          expected="a patient / scene id on the rows of images that share one",
                          received=f"{len(keys)} empty cells", fix="name the column that holds the ids, or remove "
                                                                   "group_column")
    out.loc[train, GROUP_KEY] = keys
    return out


def index_group_column(index: pd.DataFrame) -> str:
    """The group_column the index's keys came from ("" for none)."""
    if GROUP_KEY not in index.columns:
        return ""
    keys = index.loc[index[GROUP_KEY].astype(str) != "", GROUP_KEY].astype(str)
    return keys.iloc[0].partition("=")[0] if len(keys) else ""


def check_index_groups(index: pd.DataFrame, group_column: str) -> None:
    """The index's group keys come from `group_column`: a spec changed since `make data` is refused."""
    keys = index[GROUP_KEY].astype(str) if GROUP_KEY in index.columns else pd.Series([""] * len(index))
    train = (index["split"] == "train").to_numpy()
    keyed = keys[train][keys[train] != ""]
    wrong = keyed[~keyed.str.startswith(f"{group_column}=")] if group_column else keyed
    if len(wrong) or (group_column and keyed.empty):
        held = index_group_column(index)
        raise PodiumError(f"The index holds the groups of column {held or '(none)'!r}, the spec names "
                          f"group_column {group_column or '(none)'!r}.",
                          expected=f"an index made with group_column {group_column!r}",
                          received=f"group keys of {held!r}" if held else "no group keys",
                          fix="run `make data` (it reads the groups again), then `make folds FORCE=1`")


def split_groups(rows: pd.DataFrame) -> pd.Series:
    """One id per set of rows the split must keep together: rows sharing a near-duplicate `group` or a
    non-empty `group_key` joined transitively (union-find over both keys). The id is the smallest
    `group` among the members: deterministic, and unchanged for an index without group keys."""
    n = len(rows)
    if GROUP_KEY not in rows.columns or not (rows[GROUP_KEY].astype(str) != "").any():
        return rows["group"].astype(str).reset_index(drop=True)
    lefts, rights = [], []
    for column in ("group", GROUP_KEY):
        values = rows[column].astype(str).to_numpy()
        keyed = np.flatnonzero(values != "")
        _, inverse = np.unique(values[keyed], return_inverse=True)
        left, right = same_value_chain(inverse)
        lefts.append(keyed[left])
        rights.append(keyed[right])
    labels = components(n, np.concatenate(lefts), np.concatenate(rights))
    base = rows["group"].astype(str).reset_index(drop=True)
    return base.groupby(labels).transform("min")


def group_fingerprint(rows: pd.DataFrame) -> str:
    """Short sha256 of the group keys of `rows` (id order): changes when the column or a value does."""
    keys = rows[GROUP_KEY].astype(str).tolist() if GROUP_KEY in rows.columns else [""] * len(rows)
    payload = json.dumps([rows["id"].astype(str).tolist(), keys])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def groups_across_folds(rows: pd.DataFrame) -> pd.DataFrame:
    """Group keys (non-empty) whose images sit in more than one fold: key, folds, images. `rows` has id,
    fold and group_key."""
    columns = ["group_key", "folds", "images", "ids"]
    if GROUP_KEY not in rows.columns:
        return pd.DataFrame(columns=columns)
    keyed = rows[rows[GROUP_KEY].astype(str) != ""]
    per_key = keyed.groupby(GROUP_KEY, sort=True).agg(folds=("fold", lambda f: sorted(set(int(x) for x in f))),
                                                       images=("id", "size"), ids=("id", lambda i: sorted(i)))
    split = per_key[per_key["folds"].map(len) > 1].reset_index()
    return split.rename(columns={GROUP_KEY: "group_key"})[columns].reset_index(drop=True)
