"""Segmentation with several classes in Kaggle's row form: one row per image–class pair, its run-length string
empty where the class is absent.

The id that joins image and class is `ImageId_ClassId` (Severstal: `0002cc93b.jpg_1`) or `Image_Label`
(Understanding Clouds: `0011165.jpg_Fish`), or the image and the class sit in separate columns. An image
name may itself hold `_`, so an id is split on its last one. Labels rows are read into one (H, W, C) uint8
mask per image (channel c = classes[c]; empty where a pair is absent or its cell is empty/NaN), and
prediction masks are written back as rows in the sample submission's order (podium.data.rle's convention).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from podium.data.rle import decode, encode, is_empty
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
