"""The ellipse-and-rectangle shapes written as a Kaggle competition's raw files, so demos and tests go through the
same `make data` -> train -> predict -> submission path as Airbus does.

What lands in the folder (as Kaggle serves a competition):
  train.zip   train/<id>.png          test.zip   test/<id>.png
  train_ship_segmentations.csv        ImageId, EncodedPixels: one row per ellipse, one empty row per
                                      image without one (Airbus' layout)
  train_boxes.csv                     ImageId, label (dark/bright), x1, y1, x2, y2 in pixels; only the
                                      images that have an ellipse
  sample_submission.csv               ImageId, EncodedPixels ("1 2" placeholders, as Airbus ships it)
  sample_submission_boxes.csv         ImageId, label, x1, y1, x2, y2 for the test images with an ellipse
  answers/                            the test set's true rows, kept apart like a leaderboard's
shapes-multilabel instead writes 64 x 64 images holding any non-empty subset of {ellipse, rectangle,
triangle}: train_labels.csv (ImageId, labels: space-separated, in that order) and
sample_submission_labels.csv (ImageId, labels "ellipse"), answers/test_labels.csv.
shapes-regression writes one ellipse per image and the share of the image it covers: train_shares.csv
(ImageId, share), sample_submission_shares.csv (ImageId, share 0.0), answers/test_shares.csv; shapes-ordinal
the same images with that share as a grade 0..4 (train_grades.csv: ImageId, grade; sample 0; answers).
shapes-multiclass writes 64 x 64 images holding 0-2 ellipses and 0-2 rectangles, two mask classes (ClassId 1 =
ellipse, 2 = rectangle; some images hold neither), in Severstal's layout: train.csv (ImageId_ClassId,
EncodedPixels: one row per image–class pair, empty where the class is absent), sample_submission.csv (every
test pair, "1 1"), answers/test.csv.
shapes-detection writes 96 x 96 images (stored at 120 x 96) holding 0-8 ellipses, rectangles and triangles, some
partly over others, in Global Wheat's layout with a class: train.csv (image_id, x, y, w, h in pixels, class; one
row per box, images without boxes absent), sample_submission.csv (image_id, PredictionString empty),
answers/test.csv.
Images are generated square and written at `file_size` (width, height), so the code that brings masks
and boxes to the model's size and back is exercised with a non-square original.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from podium.data.class_masks import join_id, rows_from_masks
from podium.data.competitions import CompetitionSpec
from podium.data.rle import submission_frame
from podium.errors import PodiumError
from podium.io import atomic_path, guarded_write, write_csv
from podium.experiments.synthetic import (CLASS_MASK_CLASSES, DETECTION_CLASSES, LABEL_SET_CLASSES, ShapeSet,
                                          make_class_masks, make_detection_set, make_ellipse_shares, make_label_sets,
                                          make_shapes, mask_box, share_grades)

# The built-in competitions whose spec says `source: generated`: what `make data` writes for them.
GENERATED = {
    "shapes-segmentation": dict(n_train=400, n_test=100, size=64, file_size=(96, 80), seed=0, object_probability=0.8),
    "shapes-localization": dict(n_train=400, n_test=100, size=64, file_size=(96, 80), seed=1, object_probability=1.0),
    "shapes-multilabel": dict(n_train=400, n_test=100, size=64, seed=2),
    "shapes-regression": dict(n_train=400, n_test=100, size=64, seed=3),
    "shapes-ordinal": dict(n_train=400, n_test=100, size=64, seed=4, grades=True),
    "shapes-multiclass": dict(n_train=400, n_test=100, size=64, seed=5),
    "shapes-detection": dict(n_train=400, n_test=100, size=96, file_size=(120, 96), seed=6),
}
DETECTION_COLUMNS = ["image_id", "x", "y", "w", "h", "class"]  # shapes-detection's labels: xywh pixels
MULTICLASS_IDS = tuple(str(k + 1) for k in range(len(CLASS_MASK_CLASSES)))  # Severstal's ClassId: 1 = ellipse


def write_generated(slug: str, out_dir: str | Path) -> Path:
    if slug not in GENERATED:
        raise PodiumError(f"No generator for competition '{slug}'.", expected=f"one of: {', '.join(GENERATED)}",
                          received=repr(slug), fix="use source: kaggle or embedded in the spec")
    writer = {"shapes-multilabel": write_label_set_competition, "shapes-regression": write_share_competition,
              "shapes-ordinal": write_share_competition,
              "shapes-multiclass": write_class_mask_competition,
              "shapes-detection": write_detection_competition}.get(slug, write_shapes_competition)
    return writer(out_dir, **GENERATED[slug])


@dataclass(frozen=True)
class GeneratedSource:
    """`make data`'s source for a spec with `source: generated` (podium.data.sources.Source): the files written
    when one is missing (or force), seeded, so the same bytes on every machine."""

    name: str = "generated"
    remote: bool = False

    def fetch(self, spec: CompetitionSpec, raw_dir: Path, force: bool = False) -> None:
        if force or not all((raw_dir / name).is_file() for name in spec.archives):
            with guarded_write(raw_dir):
                write_generated(spec.slug, raw_dir)


GENERATED_SOURCE = GeneratedSource()


def write_share_competition(out_dir: str | Path, n_train: int, n_test: int, size: int = 64, seed: int = 0,
                            grades: bool = False) -> Path:
    """The ellipse shares (synthetic.make_ellipse_shares) as a regression competition of one number per image
    (PetFinder Pawpularity's form), or with `grades` as integer grades 0..4 scored by QWK (APTOS' form)."""
    out = Path(out_dir)
    name, column = ("grades", "grade") if grades else ("shares", "share")
    for split, ids, share in _image_splits(out, n_train, n_test, seed, lambda n, s: make_ellipse_shares(n, size, s)):
        values = share_grades(share) if grades else np.round(share.astype(float), 6)
        frame = pd.DataFrame({"ImageId": ids, column: values})
        _write_split(out, split, frame, frame.assign(**{column: 0 if grades else 0.0}), f"_{name}")
    return out


def write_label_set_competition(out_dir: str | Path, n_train: int, n_test: int, size: int = 64,
                                seed: int = 0) -> Path:
    """The multi-label shapes (synthetic.make_label_sets) as a competition of space-separated labels."""
    out = Path(out_dir)
    for split, ids, present in _image_splits(out, n_train, n_test, seed, lambda n, s: make_label_sets(n, size, s)):
        labels = [" ".join(name for name, on in zip(LABEL_SET_CLASSES, row) if on) for row in present]
        frame = pd.DataFrame({"ImageId": ids, "labels": labels})
        _write_split(out, split, frame, frame.assign(labels=LABEL_SET_CLASSES[0]), "_labels")
    return out


def write_class_mask_competition(out_dir: str | Path, n_train: int, n_test: int, size: int = 64,
                                 seed: int = 0) -> Path:
    """The ellipse-and-rectangle masks (synthetic.make_class_masks) as a Severstal-form competition: one
    `ImageId_ClassId, EncodedPixels` row per image–class pair, empty where the class is absent."""
    out = Path(out_dir)
    for split, ids, masks in _image_splits(out, n_train, n_test, seed, lambda n, s: make_class_masks(n, size, s)):
        pairs = pd.DataFrame({"ImageId_ClassId": [join_id(i, c) for i in ids for c in MULTICLASS_IDS],
                              "EncodedPixels": ""})
        frame = rows_from_masks(pairs, dict(zip(ids, masks)), MULTICLASS_IDS)
        _write_split(out, split, frame, pairs.assign(EncodedPixels="1 1"), "")
    return out


def write_detection_competition(out_dir: str | Path, n_train: int, n_test: int, size: int = 96,
                                file_size: tuple[int, int] | None = None, seed: int = 0) -> Path:
    """The detection shapes (synthetic.make_detection_set), drawn square and written at file_size (width, height),
    as a Global Wheat-form competition: train.csv one row per box (image_id, x, y, w, h in pixels, class; an
    image without boxes has no row), sample_submission.csv (image_id, PredictionString empty), answers/test.csv."""
    out = Path(out_dir)
    width, height = file_size or (size, size)

    def make(n: int, split_seed: int):
        images, boxes = make_detection_set(n, size, split_seed)
        return _stretched(images, width, height), boxes

    for split, ids, boxes in _image_splits(out, n_train, n_test, seed, make):
        frame = pd.DataFrame([_box_row(i, row, width, height) for i, rows in zip(ids, boxes) for row in rows],
                             columns=DETECTION_COLUMNS)
        _write_split(out, split, frame, pd.DataFrame({"image_id": ids, "PredictionString": ""}), "")
    return out


def _box_row(image_id: str, row: np.ndarray, width: int, height: int) -> list:
    """One box [class, x1, y1, x2, y2] (fractions) as image_id, x, y, w, h (pixels, 2 decimals), class name."""
    x1, y1, x2, y2 = (float(v) for v in row[1:] * [width, height, width, height])
    return [image_id, *(round(v, 2) for v in (x1, y1, x2 - x1, y2 - y1)), DETECTION_CLASSES[int(row[0])]]


def _stretched(images: np.ndarray, width: int, height: int) -> np.ndarray:
    """Images resized (bicubic) to width x height; boxes in fractions of the side need no change."""
    from PIL import Image

    if images.shape[1:3] == (height, width):
        return images
    return np.stack([np.asarray(Image.fromarray(im).resize((width, height), Image.BICUBIC)) for im in images])


def _image_splits(out: Path, n_train: int, n_test: int, seed: int, make):
    """Per split (train, test): `make(n, split_seed) -> (images, drawn)`, the images written to <split>.zip;
    yields (split, ids, drawn)."""
    out.mkdir(parents=True, exist_ok=True)
    for split, n, split_seed in (("train", n_train, seed * 2), ("test", n_test, seed * 2 + 1)):
        images, drawn = make(n, split_seed)
        ids = [f"{split}-{seed}-{i:05d}.png" for i in range(n)]
        _write_zip(out / f"{split}.zip", split, ids, images)
        yield split, ids, drawn


def _write_split(out: Path, split: str, frame: pd.DataFrame, sample: pd.DataFrame, suffix: str) -> None:
    """train<suffix>.csv; or the test set's answers/test<suffix>.csv, kept apart, and sample_submission<suffix>.csv."""
    if split == "train":
        write_csv(out / f"train{suffix}.csv", frame)
    else:
        write_csv(out / "answers" / f"test{suffix}.csv", frame)
        write_csv(out / f"sample_submission{suffix}.csv", sample)


def write_shapes_competition(out_dir: str | Path, n_train: int, n_test: int, size: int = 64,
                             file_size: tuple[int, int] | None = None, seed: int = 0,
                             object_probability: float = 1.0) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    width, height = file_size or (size, size)
    for split, n, split_seed in (("train", n_train, seed * 2), ("test", n_test, seed * 2 + 1)):
        shapes = _at_size(make_shapes(n, size, split_seed, object_probability), width, height)
        ids = [f"{split}-{seed}-{i:05d}.png" for i in range(n)]
        _write_zip(out / f"{split}.zip", split, ids, shapes.images)
        masks, boxes = submission_frame(ids, shapes.masks), _box_frame(ids, shapes)
        if split == "train":
            write_csv(out / "train_ship_segmentations.csv", masks)
            write_csv(out / "train_boxes.csv", boxes)
        else:
            write_csv(out / "answers" / "test_ship_segmentations.csv", masks)
            write_csv(out / "answers" / "test_boxes.csv", boxes)
            write_csv(out / "sample_submission.csv", pd.DataFrame({"ImageId": ids, "EncodedPixels": "1 2"}))
            placeholder = boxes.assign(label="dark", x1=0, y1=0, x2=width, y2=height)
            write_csv(out / "sample_submission_boxes.csv", placeholder)
    return out


def write_shapes(shapes: ShapeSet, out_dir: str | Path, prefix: str = "shape") -> Path:
    """`make synth`: the images as loose PNGs with both CSVs, to look at or feed elsewhere."""
    from PIL import Image

    out = Path(out_dir)
    (out / "train").mkdir(parents=True, exist_ok=True)
    ids = [f"{prefix}-{i:06d}.png" for i in range(len(shapes))]
    for image_id, image in zip(ids, shapes.images):
        Image.fromarray(image).save(out / "train" / image_id)
    write_csv(out / "train_ship_segmentations.csv", submission_frame(ids, shapes.masks))
    write_csv(out / "train_boxes.csv", _box_frame(ids, shapes))
    return out


def _box_frame(ids: list[str], shapes: ShapeSet) -> pd.DataFrame:
    """Pixel boxes of the images that have an ellipse (a localization image always has its object)."""
    height, width = shapes.images.shape[1:3]
    scale = np.array([width, height, width, height], dtype=np.float32)
    boxes = pd.DataFrame(np.rint(shapes.boxes * scale).astype(int), columns=["x1", "y1", "x2", "y2"])
    boxes.insert(0, "label", np.where(shapes.bright == 1, "bright", "dark"))
    boxes.insert(0, "ImageId", ids)
    return boxes[shapes.has_object == 1].reset_index(drop=True)


def _at_size(shapes: ShapeSet, width: int, height: int) -> ShapeSet:
    """Stretch images (bicubic) and masks (nearest) to width x height; boxes are re-read off the masks."""
    from PIL import Image

    if shapes.images.shape[1:3] == (height, width):
        return shapes
    images = np.stack([np.asarray(Image.fromarray(im).resize((width, height), Image.BICUBIC)) for im in shapes.images])
    masks = np.stack([np.asarray(Image.fromarray(m[..., 0]).resize((width, height), Image.NEAREST))
                      for m in shapes.masks])[..., None]
    boxes = np.array([mask_box(mask) for mask in masks[..., 0]], dtype=np.float32)
    return ShapeSet(images, masks, boxes, shapes.has_object, shapes.bright)


def _write_zip(path: Path, folder: str, ids: list[str], images: np.ndarray) -> None:
    import io

    from PIL import Image

    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        for image_id, image in zip(ids, images):
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="PNG")
            archive.writestr(f"{folder}/{image_id}", buffer.getvalue())
