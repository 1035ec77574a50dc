"""The leak audit: does a saved split put copies of one image on both sides? Fails loudly if so.

Why a separate check when `dups` + `make folds` already keep groups together: splits outlive the code that
made them. A split made before `make dups`, by another tool, or by hand (a re-split that pulled validation
images into training turned a true 86% into a reported 97%) is checked here from the pixels, not from the
index's group column, so it cannot pass by trusting the thing it is meant to check. Groups of the spec's
group_column (a patient's images: podium.data.groups) are checked from the index's group_key, which comes
straight from the labels CSV: a group with images in two folds is a leak too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from podium.data.duplicates import duplicates_dir, load_or_hash
from podium.data.hash_search import components, find_pairs
from podium.data.gallery import pair_gallery
from podium.data.groups import GROUP_KEY, groups_across_folds
from podium.data.images import ImageDecodeError, decode_image
from podium.errors import PodiumError
from podium.io import write_csv
from podium.data.tile_overlaps import block_hashes, overlap_pairs

GALLERY_PAIRS = 24  # more pairs make an unreadable picture; the CSV lists them all
LEAK_COLUMNS = ["id_a", "fold_a", "id_b", "fold_b", "distance", "exact"]
TILE_OVERLAP = -1  # the distance column's value for two tiles sharing a piece of one scene
GROUP_SPLIT = -2  # ... for two images of one group_column group (a patient) in different folds


@dataclass
class AuditReport:
    """A clean split's facts (a leaky one raises LeakError instead)."""

    split_path: Path
    images: int
    folds: int
    threshold: int
    mirrored: bool
    duplicate_pairs_within_folds: int  # copies that sit in one fold: harmless, and why it is clean
    group_column: str = ""  # the spec's group_column the index's keys came from ("" = none)
    groups: int = 0  # its groups checked, each inside one fold


class LeakError(PodiumError):
    """A split with copies across folds. Carries the pairs and where their pictures are."""

    def __init__(self, split_path: Path, leaks: pd.DataFrame, groups: int, gallery: Path, table: Path,
                 split_groups: pd.DataFrame | None = None):
        self.leaks, self.gallery, self.table = leaks, gallery, table
        self.split_groups = split_groups if split_groups is not None else pd.DataFrame()
        copies = leaks[leaks["distance"] != GROUP_SPLIT]
        found = []
        if len(copies):
            found.append(f"copies of the same image in different folds: {len(copies)} pairs in {groups} duplicate "
                         f"groups, {len(set(copies['id_a']) | set(copies['id_b']))} images involved")
        if len(self.split_groups):
            shown = ", ".join(f"{row.group_key} in folds {row.folds}" for row in self.split_groups.head(3).itertuples())
            found.append(f"{len(self.split_groups)} group(s) of the group column across folds ({shown})")
        super().__init__(
            f"LEAK: the split {split_path} puts {'; and '.join(found)}. Validation scores on it are too optimistic.",
            expected="every duplicate group, and every group of the spec's group_column, inside one fold",
            received=f"pairs listed in {table}, pictures in {gallery}",
            fix="run `make dups`, then rebuild the split with `make folds FORCE=1` (results trained on the old "
                "split used leaked validation)")


def cross_fold_pairs(rows: pd.DataFrame, pairs_left: np.ndarray, pairs_right: np.ndarray,
                     distance: np.ndarray) -> pd.DataFrame:
    """The pairs (row positions into `rows`, which has id, fold, hash) whose folds differ."""
    fold = rows["fold"].to_numpy()
    leak = fold[pairs_left] != fold[pairs_right]
    a, b = pairs_left[leak], pairs_right[leak]
    return pd.DataFrame({"id_a": rows["id"].to_numpy()[a], "fold_a": fold[a], "id_b": rows["id"].to_numpy()[b],
                         "fold_b": fold[b], "distance": distance[leak],
                         "exact": rows["hash"].to_numpy()[a] == rows["hash"].to_numpy()[b]},
                        columns=LEAK_COLUMNS)


def audit_split(index: pd.DataFrame, split: pd.DataFrame, data_root: Path, split_path: Path, threshold: int,
                mirrored: bool = False, out_dir: Path | None = None, progress: bool = False, tiles: int = 0,
                tile_min_blocks: int = 2) -> AuditReport:
    """Check `split` (id, fold) against the pixels of the indexed images. Clean -> a report; leaky ->
    LeakError with a CSV of the pairs and a PNG gallery of the worst ones. With `tiles`, images that share
    a piece of one scene count as copies too (distance -1 in the CSV)."""
    data_root = Path(data_root)
    rows = _split_rows(index, split, split_path)
    hashes = load_or_hash(rows, data_root, duplicates_dir(data_root) / "hashes.parquet", progress=progress)
    left, right, distance = _all_pairs(rows, hashes, threshold, mirrored)
    if tiles:
        phash, usable = block_hashes([data_root / p for p in rows["path"]], tiles, progress=progress)
        tile_left, tile_right = overlap_pairs(phash, usable, tiles, threshold, tile_min_blocks)
        left, right = np.concatenate([left, tile_left]), np.concatenate([right, tile_right])
        distance = np.concatenate([distance, np.full(len(tile_left), TILE_OVERLAP)])
    within = len(left)
    split_groups = groups_across_folds(rows)
    group_left, group_right = _group_pairs(rows, split_groups)
    left, right = np.concatenate([left, group_left]), np.concatenate([right, group_right])
    distance = np.concatenate([distance, np.full(len(group_left), GROUP_SPLIT)])
    leaks = cross_fold_pairs(rows, left, right, distance)
    if leaks.empty:
        keys = rows[GROUP_KEY].astype(str) if GROUP_KEY in rows.columns else pd.Series(dtype=str)
        keys = keys[keys != ""]
        return AuditReport(split_path=Path(split_path), images=len(rows), folds=int(rows["fold"].nunique()),
                           threshold=threshold, mirrored=mirrored, duplicate_pairs_within_folds=within,
                           group_column=keys.iloc[0].partition("=")[0] if len(keys) else "",
                           groups=int(keys.nunique()))
    out_dir = Path(out_dir) if out_dir else data_root / "audit"
    stem = Path(split_path).stem
    leaks = leaks.sort_values(["distance", "id_a", "id_b"], kind="stable").reset_index(drop=True)
    table = write_csv(out_dir / f"leaks-{stem}.csv", leaks)
    gallery = _leak_gallery(leaks, rows, data_root, out_dir / f"leaks-{stem}.png", stem)
    position = {image_id: k for k, image_id in enumerate(rows["id"])}
    copies = leaks[leaks["distance"] != GROUP_SPLIT]
    groups = components(len(rows), copies["id_a"].map(position).to_numpy(), copies["id_b"].map(position).to_numpy())
    involved = np.unique(np.concatenate([copies["id_a"].map(position), copies["id_b"].map(position)])).astype(int)
    raise LeakError(Path(split_path), leaks, len(np.unique(groups[involved])), gallery, table, split_groups)


def _group_pairs(rows: pd.DataFrame, split_groups: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """For each group across folds, its first image in its first fold paired with its first image in each
    other fold (row positions): one pair per extra fold, enough to show and count the leak."""
    position = {image_id: k for k, image_id in enumerate(rows["id"])}
    fold_of = dict(zip(rows["id"], rows["fold"].astype(int)))
    left, right = [], []
    for ids in split_groups["ids"] if len(split_groups) else []:
        first_per_fold: dict[int, str] = {}
        for image_id in ids:
            first_per_fold.setdefault(fold_of[image_id], image_id)
        folds = sorted(first_per_fold)
        left += [position[first_per_fold[folds[0]]]] * (len(folds) - 1)
        right += [position[first_per_fold[f]] for f in folds[1:]]
    return np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)


def read_split(path: Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise PodiumError(f"The split {path} does not exist.", expected="a split CSV (id, fold) written by "
                          "`make folds`", received="no file", fix="run `make folds` first, or pass --split PATH")
    split = pd.read_csv(path, dtype={"id": str}, keep_default_na=False)
    if not {"id", "fold"} <= set(split.columns):
        raise PodiumError(f"The split {path} has the wrong columns.", expected="columns id, fold",
                          received=f"columns {list(split.columns)}", fix="audit a file written by `make folds`")
    return split


def _split_rows(index: pd.DataFrame, split: pd.DataFrame, split_path: Path) -> pd.DataFrame:
    train = index[index["split"] == "train"]
    rows = split[["id", "fold"]].merge(train, on="id", how="left", indicator=True)
    unknown = rows.loc[rows["_merge"] == "left_only", "id"].tolist()
    if unknown:
        raise PodiumError(f"The split {split_path} names images the index does not have.",
                          expected="ids of indexed training images", received=f"{len(unknown)} unknown ids, "
                          f"e.g. {unknown[:5]}", fix="rebuild the split with `make folds FORCE=1`")
    rows = rows[rows["ok"].astype(bool)].drop(columns="_merge")
    return rows.sort_values("id", kind="stable").reset_index(drop=True)


def _all_pairs(rows: pd.DataFrame, hashes, threshold: int, mirrored: bool
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Perceptual pairs among matchable rows, plus byte copies (each joined to the first of its kind)."""
    usable = np.flatnonzero(hashes.matchable)
    found = find_pairs(hashes.phash[usable], threshold, hashes.mirrored[usable] if mirrored else None)
    _, first_of_value, value = np.unique(rows["hash"].to_numpy(), return_index=True, return_inverse=True)
    first = first_of_value[value]
    copies = np.flatnonzero(first != np.arange(len(rows)))
    left = np.concatenate([usable[found.left], first[copies]]).astype(np.int64)
    right = np.concatenate([usable[found.right], copies]).astype(np.int64)
    distance = np.concatenate([found.distance, np.zeros(len(copies), np.int64)])
    key = np.minimum(left, right) * len(rows) + np.maximum(left, right)
    _, unique = np.unique(key, return_index=True)
    lo, hi = np.minimum(left, right)[unique], np.maximum(left, right)[unique]
    return lo, hi, distance[unique]


def _leak_gallery(leaks: pd.DataFrame, rows: pd.DataFrame, data_root: Path, out_path: Path, name: str) -> Path:
    path_of = dict(zip(rows["id"], rows["path"]))
    key_of = dict(zip(rows["id"], rows[GROUP_KEY])) if GROUP_KEY in rows.columns else {}
    cells = []
    for leak in leaks.head(GALLERY_PAIRS).itertuples():
        kind = "identical bytes" if leak.exact else ("overlapping tiles" if leak.distance == TILE_OVERLAP
                                                     else f"same {key_of.get(leak.id_a, 'group')}"
                                                     if leak.distance == GROUP_SPLIT else f"distance {leak.distance}")
        cells.append((_pixels(data_root / path_of[leak.id_a]), _pixels(data_root / path_of[leak.id_b]),
                      f"{leak.id_a}\nfold {leak.fold_a}", f"{leak.id_b}\nfold {leak.fold_b}", kind))
    shown = f" (first {GALLERY_PAIRS})" if len(leaks) > GALLERY_PAIRS else ""
    return pair_gallery(cells, out_path, f"{name}: {len(leaks)} duplicate pairs across folds{shown}")


def _pixels(path: Path) -> np.ndarray:
    try:
        return decode_image(path)
    except ImageDecodeError:
        return np.zeros((8, 8, 3), np.uint8)
