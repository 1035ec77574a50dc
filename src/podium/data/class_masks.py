"""Segmentation with several classes in Kaggle's row form: one row per image–class pair, its run-length string
empty where the class is absent.

The id that joins image and class is `ImageId_ClassId` (Severstal: `0002cc93b.jpg_1`) or `Image_Label`
(Understanding Clouds: `0011165.jpg_Fish`), or the image and the class sit in separate columns. An image
name may itself hold `_`, so an id is split on its last one. Labels rows are read into one (H, W, C) uint8
mask per image (channel c = classes[c]; empty where a pair is absent or its cell is empty/NaN), and
prediction masks are written back as rows in the sample submission's order (podium.data.rle's convention).

A spec with `class_masks` (podium.data.competitions) reads its labels CSV here: the index label of an image is
the rarest class it holds, or "empty" (what folds stratify on), and the masks are brought to the model's size
once, (N, S, S, C) uint8, cached beside the images as the one-class masks are (podium.data.targets).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from podium.data.cache import cached_uint8
from podium.data.competitions import CompetitionSpec
from podium.data.images import check_image_size, resize_plane
from podium.data.rle import decode, encode, is_empty, runs
from podium.data.source_files import read_labels_table
from podium.errors import PodiumError

Shape = tuple[int, int]


def join_id(image: str, class_name: str) -> str:
    """`0002cc93b.jpg` and `1` -> `0002cc93b.jpg_1`."""
    return f"{image}_{class_name}"


def split_id(pair_id: str, classes: Sequence[str], row: int | None = None) -> tuple[str, str]:
    """`0002cc93b.jpg_1` -> (`0002cc93b.jpg`, `1`): split on the last `_`, the class checked against `classes`."""
    where = f" (row {row})" if row is not None else ""
    image, sep, class_name = str(pair_id).rpartition("_")
    if not sep or not image or not class_name:
        raise PodiumError(f"The id {pair_id!r}{where} does not join an image and a class.",
                          expected="<image>_<class>, e.g. 0002cc93b.jpg_1 or 0011165.jpg_Fish",
                          received=repr(pair_id), fix="check the id column of the labels CSV or the sample")
    _check_class(class_name, classes, pair_id, where)
    return image, class_name


def _check_class(class_name: str, classes: Sequence[str], pair_id, where: str) -> None:
    if class_name not in [str(c) for c in classes]:
        raise PodiumError(f"The id {pair_id!r}{where} names an unknown class {class_name!r}.",
                          expected=f"one of: {', '.join(str(c) for c in classes)}", received=repr(class_name),
                          fix="list every class in the spec's classes, in the submission's order")


def pairs(frame: pd.DataFrame, classes: Sequence[str], id_column: str = "ImageId_ClassId",
          image_column: str | None = None, class_column: str | None = None) -> list[tuple[str, str]]:
    """(image, class) of every row: from the joined id, or from separate image and class columns."""
    if image_column is None:
        _require_columns(frame, [id_column])
        return [split_id(value, classes, row) for row, value in enumerate(frame[id_column].tolist())]
    _require_columns(frame, [image_column, class_column or ""])
    found = []
    for row, (image, class_name) in enumerate(zip(frame[image_column].astype(str), frame[class_column].astype(str))):
        _check_class(class_name, classes, join_id(image, class_name), f" (row {row})")
        found.append((image, class_name))
    return found


def masks_from_rows(frame: pd.DataFrame, classes: Sequence[str], shapes: Shape | Mapping[str, Shape],
                    id_column: str = "ImageId_ClassId", rle_column: str = "EncodedPixels",
                    image_column: str | None = None, class_column: str | None = None) -> dict[str, np.ndarray]:
    """image -> (H, W, C) uint8 0/1 masks, in the order images first appear. shapes: one (H, W) for every
    image (Severstal 256 x 1600) or image -> (H, W)."""
    _require_columns(frame, [rle_column])
    channel = {str(c): i for i, c in enumerate(classes)}
    masks: dict[str, np.ndarray] = {}
    for row, ((image, class_name), rle) in enumerate(zip(pairs(frame, classes, id_column, image_column,
                                                               class_column), frame[rle_column].tolist())):
        shape = _shape_of(shapes, image, row)
        if image not in masks:
            masks[image] = np.zeros((*shape, len(classes)), dtype=np.uint8)
        if not is_empty(rle):
            masks[image][..., channel[class_name]] |= decode(rle, shape)
    return masks


def rows_from_masks(sample: pd.DataFrame, masks: Mapping[str, np.ndarray], classes: Sequence[str],
                    id_column: str = "ImageId_ClassId", rle_column: str = "EncodedPixels",
                    image_column: str | None = None, class_column: str | None = None) -> pd.DataFrame:
    """The sample's rows, in its order, with each pair's run-length string ("" where the class is absent).
    masks: image -> (H, W, C) 0/1 (anything > 0 is the class)."""
    channel = {str(c): i for i, c in enumerate(classes)}
    encoded = []
    for row, (image, class_name) in enumerate(pairs(sample, classes, id_column, image_column, class_column)):
        if image not in masks:
            raise PodiumError(f"No predicted mask for image {image!r} (row {row} of the sample).",
                              expected="a mask for every image of the sample submission",
                              received=f"{len(masks)} predicted images", fix="predict every test image")
        mask = np.asarray(masks[image])
        if mask.ndim != 3 or mask.shape[-1] != len(classes):
            raise PodiumError(f"The mask of image {image!r} (row {row}) has not one channel per class.",
                              expected=f"(H, W, {len(classes)})", received=str(mask.shape),
                              fix="predict one channel per class, in the order of classes")
        encoded.append(encode(mask[..., channel[class_name]]))
    out = sample.copy()
    out[rle_column] = encoded
    return out


def _shape_of(shapes: Shape | Mapping[str, Shape], image: str, row: int) -> Shape:
    if not isinstance(shapes, Mapping):
        return int(shapes[0]), int(shapes[1])
    if image not in shapes:
        raise PodiumError(f"No image size for image {image!r} (row {row}).", expected="(height, width) per image",
                          received=f"sizes of {len(shapes)} images", fix="read the sizes of every listed image")
    height, width = shapes[image]
    return int(height), int(width)


def _require_columns(frame: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise PodiumError(f"The rows have no column {', '.join(map(repr, missing))}.",
                          expected=", ".join(columns), received=", ".join(map(str, frame.columns)),
                          fix="name the id, class and run-length columns as the CSV spells them")


# ---- a spec's labels CSV (class_masks) -----------------------------------------------------------------
CLASS_MASK_CACHE_VERSION = 1  # bump when decoding or resizing class masks changes their bytes
EMPTY = "empty"  # the index label of an image that holds no class


def spec_columns(spec: CompetitionSpec, submission: bool = False) -> dict:
    """The id / image / class column arguments of `pairs` for the spec's labels CSV or its submission."""
    id_column = spec.submission_id_column if submission else spec.id_column
    class_column = spec.submission_class_column if submission else spec.class_column
    if class_column:
        return {"id_column": id_column, "image_column": id_column, "class_column": class_column}
    return {"id_column": id_column}


def read_class_rows(spec: CompetitionSpec, data_root: Path) -> pd.DataFrame:
    """(image, class, rle, row) of every labels CSV row, as written; an unknown class or a bad id is an error."""
    path, frame = read_labels_table(spec, data_root)
    _require_columns(frame, [spec.rle_column])
    found = pairs(frame, spec.classes, **spec_columns(spec))
    return pd.DataFrame({"image": [image for image, _ in found], "class": [c for _, c in found],
                         "rle": frame[spec.rle_column].tolist(), "row": np.arange(len(frame))})


def class_mask_labels(spec: CompetitionSpec, data_root: Path) -> pd.DataFrame:
    """One row per image for the index: its id and the rarest class it holds (fewest images), or EMPTY. An image
    file of train_dir that the CSV does not name holds no class (Severstal's train.csv lists only its masks)."""
    rows = read_class_rows(spec, data_root)
    filled = rows[~rows["rle"].map(is_empty)]
    counts = filled.drop_duplicates(["image", "class"])["class"].value_counts()
    rank = {c: (int(counts.get(c, 0)), k) for k, c in enumerate(spec.classes)}
    held = filled.groupby("image")["class"].agg(lambda names: min(set(names), key=rank.__getitem__)).to_dict()
    extensions = {e.lower() for e in spec.image_extensions}
    train_dir = Path(data_root) / spec.train_dir
    files = {p.name for p in train_dir.rglob("*") if p.suffix.lower() in extensions and not p.name.startswith(".")} \
        if train_dir.is_dir() else set()
    images = sorted(set(rows["image"]) | files)
    return pd.DataFrame({spec.id_column: images, spec.label_column: [held.get(i, EMPTY) for i in images]})


def class_mask_problems(spec: CompetitionSpec, data_root: Path, shapes: dict) -> list[str]:
    """Every labels row whose class is unknown or whose run-length string does not fit its image; for exclusive
    classes, every image where two classes share a pixel."""
    path, frame = read_labels_table(spec, data_root)
    _require_columns(frame, [spec.rle_column])
    problems, covered = [], {}
    _require_columns(frame, [c for c in (spec.id_column, spec.class_column) if c])
    for row, record in enumerate(frame.to_dict("records")):
        try:
            image, class_name = _record_pair(record, spec, row)
        except PodiumError as exc:
            problems.append(f"row {row}: {exc.what}")
            continue
        value = record[spec.rle_column]
        if image not in shapes or is_empty(value):
            continue  # an unreadable image is reported by the index already
        try:
            starts, lengths = runs(value, shapes[image])
        except PodiumError as exc:
            problems.append(f"row {row} ({image!r}, class {class_name}): {exc.what} (height x width "
                            f"{shapes[image][0]} x {shapes[image][1]})")
            continue
        if spec.class_masks == "exclusive":
            problems += _overlap(covered, image, class_name, starts, lengths, shapes[image], row)
    return problems


def _record_pair(record: dict, spec: CompetitionSpec, row: int) -> tuple[str, str]:
    """(image, class) of one labels row, the class checked against the spec's."""
    if not spec.class_column:
        return split_id(record[spec.id_column], spec.classes, row)
    image, class_name = str(record[spec.id_column]), str(record[spec.class_column])
    _check_class(class_name, spec.classes, join_id(image, class_name), f" (row {row})")
    return image, class_name


def _overlap(covered: dict, image: str, class_name: str, starts, lengths, shape, row: int) -> list[str]:
    """Mark the runs of one row in its image's pixels; a pixel another class holds already is a problem."""
    pixels = covered.setdefault(image, np.zeros(shape[0] * shape[1], dtype=np.int16))
    index = np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lengths)]) if len(starts) else \
        np.zeros(0, np.int64)
    clash = pixels[index]
    pixels[index] = 1
    if clash.any():
        return [f"row {row} ({image!r}, class {class_name}): {int(clash.sum())} pixels another class holds "
                f"(class_masks: exclusive)"]
    return []


def load_class_masks(spec: CompetitionSpec, data_root: Path, rows: pd.DataFrame, size: int, cache_dir: Path,
                     progress: bool = True, cache: str = "disk") -> np.ndarray:
    """Read-only (len(rows), size, size, C) uint8 0/1 masks of index `rows`, in their order, cached; channel c is
    spec.classes[c], each brought to the model's size on its own."""
    check_image_size(size)
    table = read_class_rows(spec, data_root)
    table = table[~table["rle"].map(is_empty)]
    by_image = {image: list(zip(part["class"], part["rle"])) for image, part in table.groupby("image", sort=False)}
    ids = rows["id"].astype(str).tolist()
    heights, widths = rows["height"].astype(int).tolist(), rows["width"].astype(int).tolist()
    channel = {c: k for k, c in enumerate(spec.classes)}
    csv_hash = hashlib.sha1((Path(data_root) / spec.labels_csv).read_bytes()).hexdigest()
    payload = json.dumps([CLASS_MASK_CACHE_VERSION, int(size), ids, heights, widths, list(spec.classes), csv_hash])
    fingerprint = hashlib.sha1(payload.encode()).hexdigest()[:12]

    def mask(position: int) -> np.ndarray:
        shape = (heights[position], widths[position])
        out = np.zeros((size, size, len(spec.classes)), np.uint8)
        for class_name, rle in by_image.get(ids[position], []):
            full = decode(rle, shape)
            out[..., channel[class_name]] |= (resize_plane(full, size, size) >= 0.5).astype(np.uint8)
        return out

    shape = (len(rows), size, size, len(spec.classes))
    if not len(rows):
        return np.zeros(shape, np.uint8)
    return cached_uint8(Path(cache_dir) / f"class-masks-{size}-{fingerprint}.u8", shape,
                        {"fingerprint": fingerprint, "size": size,
                         "class_mask_cache_version": CLASS_MASK_CACHE_VERSION},
                        mask, progress, f"class masks {size}px", mode=cache)
