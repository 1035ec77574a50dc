"""Validation splits made once, deterministically, and saved: the same inputs give the same folds on
every run and machine, and images sharing a `group` (duplicates) never sit on both sides of a split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from podium.errors import PodiumError
from podium.io import write_csv

VALIDATION_FOLD_OF_HOLDOUT = 0


def labeled_rows(index: pd.DataFrame) -> pd.DataFrame:
    """The train rows a split is made of: decodable ones, sorted by id so order never depends on disk."""
    rows = index[(index["split"] == "train") & index["ok"]]
    return rows.sort_values("id", kind="stable").reset_index(drop=True)


def make_kfold(index: pd.DataFrame, n_folds: int, seed: int) -> pd.DataFrame:
    rows = labeled_rows(index)
    smallest = rows["label"].value_counts().min()
    if len(rows) < n_folds:
        raise PodiumError("Too few labeled images for k-fold.", expected=f">= {n_folds} images",
                          received=str(len(rows)), fix="lower n_folds or use val_split")
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    folds = np.full(len(rows), -1, dtype=int)
    import warnings

    with warnings.catch_warnings():
        if smallest < n_folds:  # sklearn warns; rare classes simply miss some folds
            warnings.simplefilter("ignore", UserWarning)
        for fold, (_, val_idx) in enumerate(splitter.split(rows, rows["label"], groups=rows["group"])):
            folds[val_idx] = fold
    return pd.DataFrame({"id": rows["id"], "fold": folds})


def make_holdout(index: pd.DataFrame, val_split: float, seed: int) -> pd.DataFrame:
    """One stratified split of whole groups: fold 0 is validation, fold 1 is training."""
    rows = labeled_rows(index)
    groups = rows.groupby("group", sort=True)["label"].first()
    counts = groups.value_counts()
    stratify = groups.values if counts.min() >= 2 and len(groups) * val_split >= len(counts) else None
    _, val_groups = train_test_split(groups.index.to_numpy(), test_size=val_split, random_state=seed,
                                     stratify=stratify)
    fold = np.where(rows["group"].isin(set(val_groups)), VALIDATION_FOLD_OF_HOLDOUT, 1)
    return pd.DataFrame({"id": rows["id"], "fold": fold})


def split_path(data_root: Path, n_folds: int, val_split: float, seed: int) -> Path:
    name = f"holdout-{val_split:.2f}-s{seed}.csv" if val_split else f"folds-k{n_folds}-s{seed}.csv"
    return Path(data_root) / "splits" / name


def load_or_make_split(index: pd.DataFrame, data_root: Path, n_folds: int, val_split: float, seed: int,
                       force: bool = False) -> tuple[pd.DataFrame, Path]:
    """Reuse the saved split when it still matches the index; a stale one is an error, not a silent redo."""
    path = split_path(data_root, n_folds, val_split, seed)
    expected_ids = set(labeled_rows(index)["id"])
    if path.is_file() and not force:
        split = pd.read_csv(path, dtype={"id": str, "fold": int}, keep_default_na=False)
        if set(split["id"]) != expected_ids:
            raise PodiumError(f"The saved split {path} does not match the current index.",
                              expected=f"{len(expected_ids)} ids of the indexed training images",
                              received=f"{len(split)} ids, {len(set(split['id']) ^ expected_ids)} different",
                              fix="rebuild it with `make folds FORCE=1` (old results used the old split)")
        return split, path
    split = make_holdout(index, val_split, seed) if val_split else make_kfold(index, n_folds, seed)
    write_csv(path, split)
    return split, path
