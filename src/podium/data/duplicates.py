"""The `make dups` stage: near-duplicate groups written into the index, and what they mean for the split
(a group never spans folds) and for the test set (train<->test copies).

Why: a validation score is honest only when no validation image has a copy in training. Copies are rarely
byte-identical: the same photo re-saved, resized, brightened, or the same piece of sea on two satellite
tiles. The content hash (sha1, already in the index) catches byte copies; the perceptual hash
(perceptual_hash.py), searched without comparing all pairs (hash_search.py), catches re-saved, resized and
brightened copies; overlapping tiles need their blocks compared (tile_overlaps.py, `dups --tiles`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from podium.data.hash_search import DEFAULT_THRESHOLD, check_threshold, components, find_groups, same_value_chain
from podium.data.index import load_index, save_index
from podium.data.perceptual_hash import ImageHashes, hamming, hash_images
from podium.data.source_files import require_files
from podium.data.tile_overlaps import block_hashes, check_grid, overlap_pairs
from podium.io import write_csv, write_json, write_parquet


# ---- the index: hashes cached per file, groups written into the `group` column ---------------------
HASH_COLUMNS = ["path", "hash", "phash", "mirrored", "flat", "ok"]


def base_group(index: pd.DataFrame) -> pd.Series:
    """The group before any near-duplicate search, as build_index writes it: the content hash (byte copies
    share it), or 'unreadable:<path>' for a file that could not even be read. A singleton keeps this id, so
    an index without near-duplicates is unchanged by `dups` and its saved splits stay valid."""
    return index["hash"].where(index["hash"].astype(bool), "unreadable:" + index["path"])


def load_or_hash(index: pd.DataFrame, data_root: Path, cache_path: Path, force: bool = False,
                 workers: int | None = None, progress: bool = False) -> ImageHashes:
    """Hashes aligned with the index rows, computed once per (path, content hash) and cached, so a second
    `make dups` with another threshold takes seconds, not another pass over 200,000 files."""
    cached = _read_hash_cache(cache_path) if not force else None
    key = index["path"] + "\0" + index["hash"]
    known = pd.Series(dtype=object) if cached is None else pd.Series(
        range(len(cached)), index=cached["path"] + "\0" + cached["hash"])
    known = known[~known.index.duplicated()]
    position = key.map(known)
    todo = np.flatnonzero(position.isna().to_numpy() & index["ok"].to_numpy())
    fresh = hash_images([Path(data_root) / p for p in index["path"].iloc[todo]], workers, progress)
    phash = np.zeros(len(index), np.uint64)
    mirrored, flat, ok = np.zeros(len(index), np.uint64), np.zeros(len(index), bool), np.zeros(len(index), bool)
    hit = np.flatnonzero(position.notna().to_numpy())
    if len(hit):
        rows = position.iloc[hit].astype(int).to_numpy()
        phash[hit], mirrored[hit] = cached["phash"].to_numpy()[rows], cached["mirrored"].to_numpy()[rows]
        flat[hit], ok[hit] = cached["flat"].to_numpy()[rows], cached["ok"].to_numpy()[rows]
    phash[todo], mirrored[todo], flat[todo], ok[todo] = fresh.phash, fresh.mirrored, fresh.flat, fresh.ok
    hashes = ImageHashes(phash, mirrored, flat, ok)
    if len(todo) or cached is None:
        current = pd.DataFrame({"path": index["path"].to_numpy(), "hash": index["hash"].to_numpy(),
                                "phash": phash, "mirrored": mirrored, "flat": flat, "ok": ok})
        kept = [] if cached is None else [cached[~(cached["path"] + "\0" + cached["hash"]).isin(set(key))]]
        write_parquet(cache_path, pd.concat([current, *kept], ignore_index=True))  # other rows stay cached
    return hashes


def _read_hash_cache(path: Path) -> pd.DataFrame | None:
    path = Path(path)
    if not path.is_file():
        return None
    frame = pd.read_parquet(path)
    return frame if list(frame.columns) == HASH_COLUMNS else None  # another version's cache: rebuild


def group_labels(index: pd.DataFrame, hashes: ImageHashes, threshold: int = DEFAULT_THRESHOLD,
                 mirrored: bool = False, extra_pairs: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Row position of each row's group representative: byte copies (same content hash), perceptual
    near-duplicates (matchable rows within `threshold`) and `extra_pairs` of rows (overlapping tiles)
    joined transitively."""
    check_threshold(threshold)
    n = len(index)
    base = base_group(index).to_numpy()
    _, same_bytes = np.unique(base, return_inverse=True)
    chain_left, chain_right = same_value_chain(same_bytes)
    rows = np.flatnonzero(hashes.matchable)
    local = find_groups(hashes.phash[rows], threshold, hashes.mirrored[rows] if mirrored else None)
    extra_left, extra_right = extra_pairs if extra_pairs is not None else (np.zeros(0, np.int64),) * 2
    return components(n, np.concatenate([chain_left, rows, extra_left]),
                      np.concatenate([chain_right, rows[local], extra_right]))


def assign_groups(index: pd.DataFrame, hashes: ImageHashes, threshold: int = DEFAULT_THRESHOLD,
                  mirrored: bool = False, extra_pairs: tuple[np.ndarray, np.ndarray] | None = None) -> pd.DataFrame:
    """The index with `group` = one id per connected component: the smallest base id (content hash) among
    its members. Deterministic, independent of row order, and a singleton keeps its old id."""
    labels = group_labels(index, hashes, threshold, mirrored, extra_pairs)
    base = base_group(index)
    group_id = base.groupby(labels).transform("min")
    out = index.copy()
    out["group"] = group_id.to_numpy()
    return out


@dataclass(frozen=True)
class GroupSummary:
    """What `dups` found, in numbers a user can check."""

    images: int
    hashed: int
    flat: int  # too little structure to hash: grouped by content hash only
    exact_groups: int  # groups of byte-identical files
    exact_images: int
    groups: int  # groups with more than one image, after near-duplicate search
    grouped_images: int
    largest_group: int
    cross_split_groups: int  # holding both train and test images
    label_conflicts: int  # groups whose train images carry different labels
    changed: bool  # the partition differs from the index's previous one: splits must be rebuilt

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def summarize_groups(before: pd.DataFrame, after: pd.DataFrame, hashes: ImageHashes) -> GroupSummary:
    base = base_group(after)
    exact_sizes = base.value_counts()
    sizes = after["group"].value_counts()
    multi = sizes[sizes > 1].index
    in_multi = after[after["group"].isin(multi)]
    splits = in_multi.groupby("group")["split"].nunique()
    train = in_multi[in_multi["split"] == "train"]
    labels = train.groupby("group")["label"].nunique()
    return GroupSummary(
        images=len(after), hashed=int(hashes.ok.sum()), flat=int(hashes.flat.sum()),
        exact_groups=int((exact_sizes > 1).sum()), exact_images=int(exact_sizes[exact_sizes > 1].sum()),
        groups=len(multi), grouped_images=len(in_multi), largest_group=int(sizes.max()) if len(sizes) else 0,
        cross_split_groups=int((splits > 1).sum()), label_conflicts=int((labels > 1).sum()),
        changed=not same_partition(before["group"], after["group"]))


def same_partition(a: pd.Series, b: pd.Series) -> bool:
    """True when two group columns put the same rows together, whatever the ids are called."""
    codes_a = pd.factorize(a.to_numpy())[0]
    codes_b = pd.factorize(b.to_numpy())[0]
    return bool(np.array_equal(codes_a, codes_b))


def train_test_matches(index: pd.DataFrame, hashes: ImageHashes) -> pd.DataFrame:
    """Test images in a group with labeled train images: one row per (test, train) pair, closest first.
    Where they are copies, the test answer is in the training data: know it before trusting a score."""
    columns = ["test_id", "train_id", "train_label", "distance", "exact", "group"]
    ok = index["ok"].to_numpy()
    frame = index.assign(_phash=hashes.phash, _mirrored=hashes.mirrored, _row=np.arange(len(index)))
    test = frame[(frame["split"] == "test")]
    train = frame[(frame["split"] == "train") & ok]
    pairs = test.merge(train, on="group", suffixes=("_test", "_train"))
    if pairs.empty:
        return pd.DataFrame(columns=columns)
    distance = np.minimum(hamming(pairs["_phash_test"].to_numpy(np.uint64), pairs["_phash_train"].to_numpy(np.uint64)),
                          hamming(pairs["_mirrored_test"].to_numpy(np.uint64), pairs["_phash_train"].to_numpy(np.uint64)))
    out = pd.DataFrame({"test_id": pairs["id_test"], "train_id": pairs["id_train"],
                        "train_label": pairs["label_train"], "distance": distance,
                        "exact": (pairs["hash_test"] == pairs["hash_train"]).to_numpy(), "group": pairs["group"]})
    return out.sort_values(["test_id", "distance", "train_id"], kind="stable").reset_index(drop=True)


def pseudo_labels(matches: pd.DataFrame) -> pd.DataFrame:
    """A suggested label for each test image whose train duplicates all agree on one label; conflicting
    ones get none (the copies disagree, so the label is not known)."""
    columns = ["test_id", "label", "train_matches", "closest_distance", "exact"]
    if matches.empty:
        return pd.DataFrame(columns=columns)
    per_test = matches.groupby("test_id", sort=True).agg(
        labels=("train_label", "nunique"), label=("train_label", "first"), train_matches=("train_id", "size"),
        closest_distance=("distance", "min"), exact=("exact", "any"))
    agreed = per_test[per_test["labels"] == 1].reset_index()
    return agreed[columns].reset_index(drop=True)


# ---- the `dups` stage --------------------------------------------------------------------------------
@dataclass
class DupsResult:
    index_path: Path
    summary: GroupSummary
    threshold: int
    mirrored: bool
    tiles: int  # grid of the overlapping-tile search; 0: off
    tile_pairs: int  # image pairs found sharing a piece of scene
    train_test_path: Path  # test images with a train copy, one row per pair
    pseudo_labels_path: Path  # a suggested label per test image whose train copies agree
    test_with_train_copies: int
    pseudo_labeled: int
    stale_splits: list[Path]  # saved splits made with the old groups: rebuild them
    seconds: float


def duplicates_dir(data_root: Path) -> Path:
    return Path(data_root) / "duplicates"


def run_dups(data_root: Path, threshold: int = DEFAULT_THRESHOLD, mirrored: bool = False, force: bool = False,
             workers: int | None = None, progress: bool = False, tiles: int = 0,
             tile_min_blocks: int = 2) -> DupsResult:
    """make dups: hash every image (cached), group byte copies and near-duplicates, write the groups into
    the index atomically, and report train<->test copies. Folds made afterwards keep each group together.

    tiles > 0 also joins images that share a piece of one scene (data/tile_overlaps.py, grid `tiles`)."""
    started = time.perf_counter()
    check_threshold(threshold)
    data_root = Path(data_root)
    index_path = data_root / "index.parquet"
    before = load_index(index_path)
    require_files(before, data_root)  # a file deleted since `make data`: named, with the fix that works
    out_dir = duplicates_dir(data_root)
    hashes = load_or_hash(before, data_root, out_dir / "hashes.parquet", force=force, workers=workers,
                          progress=progress)
    extra = None
    if tiles:
        check_grid(tiles)
        rows = np.flatnonzero(before["ok"].to_numpy())
        phash, usable = block_hashes([data_root / p for p in before["path"].iloc[rows]], tiles, workers, progress)
        left, right = overlap_pairs(phash, usable, tiles, threshold, tile_min_blocks)
        extra = (rows[left], rows[right])
    after = assign_groups(before, hashes, threshold, mirrored, extra)
    summary = summarize_groups(before, after, hashes)
    matches = train_test_matches(after, hashes)
    suggestions = pseudo_labels(matches)
    save_index(after, index_path)
    train_test_path = write_csv(out_dir / "train_test.csv", matches)
    pseudo_path = write_csv(out_dir / "pseudo_labels.csv", suggestions)
    tile_pairs = 0 if extra is None else len(extra[0])
    write_json(out_dir / "summary.json", {"threshold": threshold, "mirrored": mirrored, "tiles": tiles,
                                          "tile_min_blocks": tile_min_blocks, "tile_pairs": tile_pairs,
                                          **summary.to_dict(),
                                          "test_with_train_copies": int(matches["test_id"].nunique()),
                                          "pseudo_labeled": len(suggestions)})
    stale = sorted((data_root / "splits").glob("*.csv")) if summary.changed else []
    return DupsResult(index_path=index_path, summary=summary, threshold=threshold, mirrored=mirrored,
                      tiles=tiles, tile_pairs=tile_pairs, train_test_path=train_test_path, pseudo_labels_path=pseudo_path,
                      test_with_train_copies=int(matches["test_id"].nunique()), pseudo_labeled=len(suggestions),
                      stale_splits=stale, seconds=time.perf_counter() - started)


def dups_settings(data_root: Path) -> tuple[int, bool]:
    """(threshold, mirrored) of the last `make dups`, so audit and EDA judge with the same eyes."""
    path = duplicates_dir(data_root) / "summary.json"
    if not path.is_file():
        return DEFAULT_THRESHOLD, False
    saved = json.loads(path.read_text(encoding="utf-8"))
    return int(saved.get("threshold", DEFAULT_THRESHOLD)), bool(saved.get("mirrored", False))


def dups_tiles(data_root: Path) -> tuple[int, int]:
    """(tiles, tile_min_blocks) of the last `make dups`: audit checks overlapping tiles when dups grouped them."""
    path = duplicates_dir(data_root) / "summary.json"
    if not path.is_file():
        return 0, 2
    saved = json.loads(path.read_text(encoding="utf-8"))
    return int(saved.get("tiles", 0)), int(saved.get("tile_min_blocks", 2))
