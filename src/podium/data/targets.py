"""Per-image targets of segmentation and localization competitions, read from their labels CSV.

Segmentation (Airbus): one row per object with its run-length string, one empty row for an image
without objects. An image's mask is the union of its rows, decoded at the image's own size (from the
index), brought to the model's size once and kept in a uint8 cache beside the images'.
Localization: one row per image with its class and a box in pixels (the spec's box_format). The model
sees the box as fractions of width and height, which the square resize of the image leaves unchanged.
Both are checked in full at `make data`, so a bad row fails there, with its id, not mid-training.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from podium.data import rle
from podium.data.competitions import CompetitionSpec
from podium.data.cache import cached_uint8
from podium.data.images import check_image_size, resize_plane
from podium.data.source_files import first_few, read_labels_table
from podium.boxes import to_xyxy
from podium.errors import PodiumError

MASK_CACHE_VERSION = 1  # bump when decoding or resizing masks changes their bytes
OBJECT, EMPTY = "object", "empty"  # a segmentation image's index label: folds stratify on "has objects"
_SHOW = 5


# ---- reading the labels CSV -----------------------------------------------------------------------
def read_mask_rows(spec: CompetitionSpec, data_root: Path) -> pd.DataFrame:
    """(id, run-length) rows exactly as written; "" where an image has no object."""
    path, frame = read_labels_table(spec, data_root)
    require_columns(frame, path, {"id": spec.id_column, "run-length": spec.rle_column})
    return frame[[spec.id_column, spec.rle_column]]


def mask_labels(spec: CompetitionSpec, data_root: Path) -> pd.DataFrame:
    """One row per image for the index: its id and OBJECT or EMPTY under the spec's label column."""
    rows = read_mask_rows(spec, data_root)
    has_object = rows[spec.rle_column].map(lambda value: not rle.is_empty(value))
    per_image = has_object.groupby(rows[spec.id_column], sort=True).any()
    return pd.DataFrame({spec.id_column: per_image.index.astype(str),
                         spec.label_column: np.where(per_image.to_numpy(), OBJECT, EMPTY)})


def read_boxes(spec: CompetitionSpec, data_root: Path) -> pd.DataFrame:
    """id, class label and the four box columns as numbers (pixels, box_format), one row per image."""
    path, frame = read_labels_table(spec, data_root)
    require_columns(frame, path, {"id": spec.id_column, "label": spec.label_column,
                                   **{f"box ({spec.box_format})": column for column in spec.box_columns}})
    numbers = frame[list(spec.box_columns)].apply(pd.to_numeric, errors="coerce").astype("float64")
    bad = ~np.isfinite(numbers.to_numpy()).all(axis=1)
    if bad.any():
        raise PodiumError(f"{int(bad.sum())} rows of {path} have a box value that is not a number.",
                          expected=f"numbers in {list(spec.box_columns)} on every row",
                          received=f"ids {first_few(frame.loc[bad, spec.id_column].tolist())}",
                          fix="fix or drop those rows (keep a copy of the original)")
    out = frame[[spec.id_column, spec.label_column]].copy()
    out[list(spec.box_columns)] = numbers.to_numpy(dtype=np.float32)
    return out


def image_shapes(rows: pd.DataFrame) -> dict[str, tuple[int, int]]:
    """id -> (height, width) of the decodable images among index rows: what masks and boxes are sized by."""
    readable = rows[rows["ok"].astype(bool)]
    return {str(i): (int(h), int(w)) for i, h, w in zip(readable["id"], readable["height"], readable["width"])}


# ---- the check at `make data` ---------------------------------------------------------------------
def check_targets(spec: CompetitionSpec, data_root: Path, index: pd.DataFrame, find_problems) -> None:
    """Every target row fits its image: `find_problems(spec, data_root, shapes)` is mask_problems (sorted,
    disjoint, inside) or box_problems (inside, positive size). All problems in one error, each with its id."""
    problems = find_problems(spec, data_root, image_shapes(index[index["split"] == "train"]))
    if problems:
        raise PodiumError(f"{len(problems)} target rows in {Path(data_root) / spec.labels_csv} do not fit their "
                          f"images.", expected="run-length masks inside their image (segmentation) or boxes "
                                               f"inside their image with positive size ({spec.box_format}, pixels)",
                          received="; ".join(problems[:_SHOW]) + (f"; and {len(problems) - _SHOW} more"
                                                                   if len(problems) > _SHOW else ""),
                          fix="check the spec's box_format/rle_column and the CSV rows named")


def mask_problems(spec: CompetitionSpec, data_root: Path, shapes: dict) -> list[str]:
    problems = []
    for image_id, value in read_mask_rows(spec, data_root).itertuples(index=False):
        if image_id not in shapes or rle.is_empty(value):
            continue  # an unreadable image is reported by the index already
        try:
            rle.runs(value, shapes[image_id])
        except PodiumError as exc:
            problems.append(f"{image_id!r}: {exc.what} ({str(value)[:40]!r} for height x width "
                            f"{shapes[image_id][0]} x {shapes[image_id][1]})")
    return problems


def box_problems(spec: CompetitionSpec, data_root: Path, shapes: dict) -> list[str]:
    table = read_boxes(spec, data_root)
    table = table[table[spec.id_column].isin(list(shapes))]
    boxes = to_xyxy(table[list(spec.box_columns)].to_numpy(), spec.box_format)
    problems = []
    for image_id, (x1, y1, x2, y2) in zip(table[spec.id_column], boxes):
        height, width = shapes[image_id]
        if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
            problems.append(f"{image_id!r}: box x1={x1:g} y1={y1:g} x2={x2:g} y2={y2:g} for a {width} x {height} "
                            f"(width x height) image")
    return problems


# ---- what training reads --------------------------------------------------------------------------
def load_masks(spec: CompetitionSpec, data_root: Path, rows: pd.DataFrame, size: int, cache_dir: Path,
               progress: bool = True, cache: str = "disk") -> np.ndarray:
    """Read-only (len(rows), size, size, 1) uint8 0/1 masks of index `rows`, in their order, cached."""
    check_image_size(size)
    table = read_mask_rows(spec, data_root)
    by_id = table.groupby(spec.id_column, sort=False)[spec.rle_column].apply(list).to_dict()
    ids = rows["id"].astype(str).tolist()
    heights, widths = rows["height"].astype(int).tolist(), rows["width"].astype(int).tolist()
    csv_hash = hashlib.sha1((Path(data_root) / spec.labels_csv).read_bytes()).hexdigest()
    payload = json.dumps([MASK_CACHE_VERSION, int(size), ids, heights, widths, csv_hash])
    fingerprint = hashlib.sha1(payload.encode()).hexdigest()[:12]

    def mask(position: int) -> np.ndarray:
        full = rle.image_mask(by_id.get(ids[position], []), (heights[position], widths[position]))
        return (resize_plane(full, size, size) >= 0.5).astype(np.uint8)[..., None]

    shape = (len(rows), size, size, 1)
    if not len(rows):
        return np.zeros(shape, np.uint8)
    return cached_uint8(Path(cache_dir) / f"masks-{size}-{fingerprint}.u8", shape,
                        {"fingerprint": fingerprint, "size": size, "mask_cache_version": MASK_CACHE_VERSION},
                        mask, progress, f"masks {size}px", mode=cache)


def load_boxes(spec: CompetitionSpec, data_root: Path, rows: pd.DataFrame) -> np.ndarray:
    """(len(rows), 4) float32 xyxy boxes as fractions of each image's width and height."""
    table = read_boxes(spec, data_root).set_index(spec.id_column)
    missing = [i for i in rows["id"].astype(str) if i not in table.index]
    if missing:
        raise PodiumError(f"{len(missing)} training images have no box in {spec.labels_csv}.",
                          expected="one box row per indexed training image", received=f"ids {first_few(missing)}",
                          fix="rebuild the index (`make data FORCE=1`) after changing the CSV")
    pixels = to_xyxy(table.loc[rows["id"].astype(str), list(spec.box_columns)].to_numpy(), spec.box_format)
    scale = np.stack([rows["width"], rows["height"], rows["width"], rows["height"]], axis=1).astype(np.float32)
    return (pixels / scale).astype(np.float32)


# ---- helpers --------------------------------------------------------------------------------------
def require_columns(frame: pd.DataFrame, path: Path, roles: dict[str, str],
                    fix: str = "set id_column/label_column/rle_column/box_columns in the competition spec") -> None:
    """Every role's column is in the labels CSV, else one error naming the first missing and the columns there."""
    missing = {role: column for role, column in roles.items() if column not in frame.columns}
    if missing:
        role, column = next(iter(missing.items()))
        raise PodiumError(f"The labels CSV {path} has no {role} column {column!r}.",
                          expected=f"columns {list(roles.values())}", received=f"columns {list(frame.columns)}",
                          fix=fix)
